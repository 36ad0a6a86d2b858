/** growlm finetune --probabilistic (film, mc_dropout), resumption, and growlm export-member. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";

import { exportMemberCommand } from "../../src/cli/export-member.js";
import { finetune } from "../../src/cli/finetune.js";
import { init } from "../../src/cli/init.js";
import { preprocessFolder, writePreprocessed } from "../../src/data/seed.js";
import { writeSyntheticStudy } from "../../src/data/synthetic.js";
import { loadPretrained, savePretrained } from "../../src/model/pretrained.js";
import { Tensor } from "../../src/tensor.js";
import { expectBitwiseEqual } from "../helpers/reference.js";

/** A γ-only export differs from the member by one fp32 rounding per norm weight. */
const FOLD_LOGPROB_ATOL = 1e-4;

describe("probabilistic fine-tuning from the command line", () => {
  let dir: string;
  let data: string;
  let base: string;
  const common = (out: string): string[] =>
    `--model_name_or_path ${base} --dataset ${data} --output_dir ${out} --num_train_epochs 1 --per_device_train_batch_size 4 --learning_rate 1e-3 --save_strategy steps --save_steps 2 --logging_steps 1 --source_max_len 96 --target_max_len 32 --seed 3`.split(" ");

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-prob-cli-"));
    vi.spyOn(console, "log").mockImplementation(() => {});
    vi.spyOn(console, "error").mockImplementation(() => {});
    const files = writeSyntheticStudy(path.join(dir, "synthetic"), { corpusParagraphs: 4, trainExamples: 12, testExamples: 2 });
    data = path.join(dir, "simp.json");
    writePreprocessed(data, preprocessFolder(files.taskFolders.simplification, { evalDatasetSize: 0.2 }));
    fs.writeFileSync(path.join(dir, "cfg.json"), JSON.stringify({ vocab_size: 259, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 160 }));
    base = path.join(dir, "base");
    await init.run(["--config", path.join(dir, "cfg.json"), "--seed", "1", "--out", base, "--tokenizer", "byte"]);
  });
  afterAll(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test.each([
    ["film", ["--probabilistic", "film", "--ensemble_size", "2", "--film_init_gain", "0.5"], { method: "film", ensemble_size: 2, film_init_gain: 0.5 }],
    ["mc_dropout", ["--probabilistic", "mc_dropout", "--dropout", "0.1", "--mc_samples", "3"], { method: "mc_dropout", dropout: 0.1, mc_samples: 3, mc_seed: 3 }],
  ])("--probabilistic %s trains, saves its mode, and resumes from a checkpoint bitwise", async (name, flags, config) => {
    const straight = path.join(dir, `${name}-straight`);
    await finetune.run([...common(straight), ...flags, "--do_eval", "true"]);
    expect(JSON.parse(fs.readFileSync(path.join(straight, "probabilistic.json"), "utf8"))).toEqual(config);
    expect(JSON.parse(fs.readFileSync(path.join(straight, "checkpoint-2", "probabilistic.json"), "utf8"))).toEqual(config);
    expect(fs.existsSync(path.join(straight, "film.safetensors"))).toBe(name === "film");
    // Resuming at step 2 reaches the uninterrupted run's weights (masks and members included).
    const resumed = path.join(dir, `${name}-resumed`);
    fs.cpSync(path.join(straight, "checkpoint-2"), path.join(resumed, "checkpoint-2"), { recursive: true });
    await finetune.run([...common(resumed), ...flags, "--resume_from_checkpoint", "true"]);
    const a = loadPretrained(straight);
    const b = loadPretrained(resumed);
    expectBitwiseEqual(b.params.data, a.params.data, "shared weights");
    if (a.film) expectBitwiseEqual(b.film!.params.data, a.film.params.data, "members");
    expect(b.inferenceMembers).toBe(a.inferenceMembers);
  });

  test("a FiLM model continues as one (stage after stage) and refuses another mode", async () => {
    const first = path.join(dir, "film-straight");
    const next = path.join(dir, "film-stage2");
    await finetune.run([...common(next).map((a) => (a === base ? first : a)), "--max_steps", "1"]);
    const before = loadPretrained(first);
    const after = loadPretrained(next);
    expect(after.film!.ensembleSize).toBe(2);
    // Trained on from the previous members, not drawn again.
    let moved = 0;
    after.film!.params.data.forEach((v, i) => (moved += Math.abs(v - before.film!.params.data[i]!) < 0.05 ? 1 : 0));
    expect(moved).toBe(after.film!.params.numel);
    await expect(finetune.run([...common(path.join(dir, "x")).map((a) => (a === base ? first : a)), "--probabilistic", "mc_dropout", "--dropout", "0.1"])).rejects.toThrow(
      /the model is a FiLM-Ensemble but --probabilistic is mc_dropout/,
    );
    await expect(finetune.run([...common(path.join(dir, "y")).map((a) => (a === base ? first : a)), "--ensemble_size", "3"])).rejects.toThrow(
      /FiLM-Ensemble of 2 members but --ensemble_size is 3/,
    );
    await expect(finetune.run([...common(path.join(dir, "z")), "--probabilistic", "mc_dropout"])).rejects.toThrow(/--probabilistic mc_dropout needs --dropout p > 0/);
  });

  test("export-member: γ folded (exact where β = 0, the deviation recorded otherwise) or the member kept exactly", async () => {
    const source = path.join(dir, "film-straight");
    const llama = path.join(dir, "member1-llama");
    await exportMemberCommand.run(["--model", source, "--member", "1", "--out", llama]);
    const record = JSON.parse(fs.readFileSync(path.join(llama, "export_member.json"), "utf8"));
    expect(record).toMatchObject({ member: 1, ensemble_size: 2, format: "llama", beta: "dropped (an RMSNorm has no bias)" });
    expect(record.max_abs_beta).toBeGreaterThan(0);
    expect(record.deviation.mean_kl).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(llama, "probabilistic.json"))).toBe(false);
    expect(fs.existsSync(path.join(llama, "tokenizer.json"))).toBe(true);
    const plain = loadPretrained(llama);
    expect(plain.film).toBeNull();

    // With β = 0 the γ-folded export is the member up to one rounding per weight.
    const zeroBeta = loadPretrained(source);
    for (let s = 0; s < zeroBeta.film!.sites.length; s++) zeroBeta.film!.beta(s).fill(0);
    savePretrained(zeroBeta, path.join(dir, "zero-beta"));
    await exportMemberCommand.run(["--model", path.join(dir, "zero-beta"), "--member", "0", "--out", path.join(dir, "zero-beta-0")]);
    const exact = JSON.parse(fs.readFileSync(path.join(dir, "zero-beta-0", "export_member.json"), "utf8"));
    expect(exact.beta).toBe("zero: nothing dropped");
    expect(exact.deviation.max_abs_logprob_diff).toBeLessThan(FOLD_LOGPROB_ATOL);

    // The film format is the member bit for bit.
    const kept = path.join(dir, "member1-film");
    await exportMemberCommand.run(["--model", source, "--member", "1", "--out", kept, "--format", "film"]);
    const ensemble = loadPretrained(source);
    const one = loadPretrained(kept);
    expect(one.film!.ensembleSize).toBe(1);
    const ids = Tensor.from([1, 50, 60, 70, 80, 90, 100, 3], [1, 8], "int32");
    const all = Float32Array.from(ensemble.forward(ids, { returnLogits: true }).logits!.data);
    const member = one.forward(ids, { returnLogits: true }).logits!.data;
    expectBitwiseEqual(member, all.subarray(8 * 259, 16 * 259), "member 1");
    expect(JSON.parse(fs.readFileSync(path.join(kept, "export_member.json"), "utf8")).deviation.max_abs_logprob_diff).toBe(0);

    await expect(exportMemberCommand.run(["--model", source, "--member", "2", "--out", path.join(dir, "bad")])).rejects.toThrow(/--member must be an integer in \[0, 2\) but is 2/);
    await expect(exportMemberCommand.run(["--model", base, "--member", "0", "--out", path.join(dir, "bad")])).rejects.toThrow(/the model is not a FiLM-Ensemble/);
  });
});
