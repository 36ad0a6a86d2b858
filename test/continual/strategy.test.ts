/**
 * Strategies inside `growlm finetune`: λ = 0 is naive training bitwise, the state that spans
 * stages lands in the stage folders, an interrupted stage resumes exactly, and bad settings are
 * refused by flag name.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";

import { finetune as finetuneCommand } from "../../src/cli/finetune.js";
import { STRATEGY_DEFAULTS, describeStrategy, parseStrategyNames } from "../../src/continual/strategy.js";
import { loadPretrained } from "../../src/model/pretrained.js";
import { type FinetuneOptions, type LogRecord, finetune, listCheckpoints } from "../../src/train/finetune.js";
import { expectBitwiseEqual } from "../helpers/reference.js";
import { tinyOptions, writeArithmetic, writeTinyModel } from "../helpers/tiny-finetune.js";

describe("continual-learning strategies in finetune", () => {
  let dir: string;
  const at = (...p: string[]): string => path.join(dir, ...p);
  const stage = (from: string, dataset: string, out: string, extra: Partial<FinetuneOptions> = {}, logs: LogRecord[] = []) =>
    finetune(tinyOptions(at(from), at(dataset), at(out), extra), { log: (r) => logs.push(r) });
  const params = (folder: string): Float32Array => {
    const m = loadPretrained(at(folder));
    const p = Float32Array.from(m.params.data);
    m.dispose();
    return p;
  };
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-strategy-"));
    await writeTinyModel(at("base"), 5);
    writeArithmetic(at("add.json"), "add", 13);
    writeArithmetic(at("mul.json"), "mul", 11);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("EWC with λ = 0 trains bitwise like naive fine-tuning, through two stages", async () => {
    const ewc = { clStrategy: "ewc", ewcLambda: 0, ewcFisherSamples: 5 };
    await stage("base", "add.json", "ewc-1", ewc);
    const logs: LogRecord[] = [];
    await stage("ewc-1", "mul.json", "ewc-2", ewc, logs);
    await stage("base", "add.json", "naive-1");
    await stage("naive-1", "mul.json", "naive-2");
    expectBitwiseEqual(params("ewc-2"), params("naive-2"), "parameters after stage 2");
    // The penalty did run in stage 2 (the Fisher of stage 1 was there), at weight 0.
    expect(logs.filter((r) => "loss" in r).every((r) => r.ewc_penalty === 0)).toBe(true);
    const record = JSON.parse(fs.readFileSync(at("ewc-2", "cl_strategy.json"), "utf8"));
    expect(record.ewc).toMatchObject({ penalty_applied: true, stages_before: 1, fisher_examples: 5, labels: "sampled" });
    // A positive λ changes the result and reports a positive penalty.
    const positive: LogRecord[] = [];
    await stage("ewc-1", "mul.json", "ewc-2b", { ...ewc, ewcLambda: 1e4 }, positive);
    expect(positive.filter((r) => "loss" in r).at(-1)!.ewc_penalty).toBeGreaterThan(0);
    expect(params("ewc-2b").some((v, i) => v !== params("ewc-2")[i])).toBe(true);
  });

  test("replay + EWC + LwF: state in the stage folders, compute counted, and an interrupted stage resumes bitwise", async () => {
    const all = { clStrategy: "replay+ewc+lwf", ewcLambda: 50, replayBufferSize: 6, replayRatio: 0.5, ewcFisherSamples: 6, lwfTopK: 16 };
    const first = await stage("base", "add.json", "s1", all);
    for (const f of ["replay_buffer.json", "ewc_fisher.safetensors", "cl_strategy.json"]) expect(fs.existsSync(at("s1", f))).toBe(true);
    expect(fs.existsSync(at("s1", "lwf_targets.bin"))).toBe(false);
    expect(first.strategyFlops).toBeGreaterThan(0);
    const r1 = JSON.parse(fs.readFileSync(at("s1", "cl_strategy.json"), "utf8"));
    expect(r1.replay).toEqual({ buffer_before: {}, buffer_after: { add: 6 }, replayed_rows: 0 });
    expect(r1.ewc.penalty_applied).toBe(false);

    const options = { ...all, saveStrategy: "steps" as const, saveSteps: 2 };
    const straight = await stage("s1", "mul.json", "s2", options);
    const naiveTokens = (await stage("s1", "mul.json", "s2-naive")).trainTokens;
    expect(straight.trainTokens).toBeGreaterThan(naiveTokens); // replayed rows are trained on
    const r2 = JSON.parse(fs.readFileSync(at("s2", "cl_strategy.json"), "utf8"));
    // 4 micro-batches per epoch × 2 epochs × 1.5 replayed rows = 12.
    expect(r2.replay).toEqual({ buffer_before: { add: 6 }, buffer_after: { add: 3, mul: 3 }, replayed_rows: 12 });
    expect(r2.ewc).toMatchObject({ penalty_applied: true, stages_before: 1 });

    await expect(
      finetune(tinyOptions(at("s1"), at("mul.json"), at("s2-crash"), options), {
        log: () => {},
        progress: (p) => {
          if (p.step === 3) throw new Error("killed");
        },
      }),
    ).rejects.toThrow("killed");
    expect(fs.existsSync(at("s2-crash", "lwf_targets.bin"))).toBe(true);
    expect(listCheckpoints(at("s2-crash")).map((c) => path.basename(c))).toEqual(["checkpoint-2"]);
    await stage("s1", "mul.json", "s2-crash", { ...options, resumeFromCheckpoint: true });
    expectBitwiseEqual(params("s2-crash"), params("s2"), "parameters after resuming");
    for (const f of ["replay_buffer.json", "ewc_fisher.safetensors"]) {
      expect(fs.readFileSync(at("s2-crash", f)).equals(fs.readFileSync(at("s2", f))), f).toBe(true);
    }
  });

  test("bad settings are refused by flag, file and tensor", async () => {
    await expect(stage("base", "add.json", "x", { clStrategy: "replay+rehearsal" })).rejects.toThrow(/--cl_strategy must be naive or a "\+"-joined combination of replay, ewc, lwf \(each once\) but is "replay\+rehearsal"/);
    await expect(stage("base", "add.json", "x", { clStrategy: "ewc+ewc", ewcLambda: 1 })).rejects.toThrow(/each once/);
    await expect(stage("base", "add.json", "x", { clStrategy: "ewc" })).rejects.toThrow(/--cl_strategy ewc needs --ewc_lambda/);
    await expect(stage("base", "add.json", "x", { clStrategy: "ewc", ewcLambda: -1 })).rejects.toThrow(/--ewc_lambda must be a finite number >= 0 but is -1/);
    await expect(stage("base", "add.json", "x", { clStrategy: "ewc", ewcLambda: 1, ewcDecay: 2 })).rejects.toThrow(/--ewc_decay must be in \[0, 1\] but is 2/);
    await expect(stage("base", "add.json", "x", { clStrategy: "replay", replayRatio: 0 })).rejects.toThrow(/--replay_ratio must be in \(0, 16\]/);
    await expect(stage("base", "add.json", "x", { clStrategy: "replay", replayBufferSize: 0 })).rejects.toThrow(/--replay_buffer_size must be a positive integer but is 0/);
    await expect(stage("base", "add.json", "x", { clStrategy: "lwf", lwfTemperature: 0 })).rejects.toThrow(/--lwf_temperature must be a finite number > 0 but is 0/);
    await expect(stage("base", "add.json", "x", { clStrategy: "lwf", lwfTopK: 0 })).rejects.toThrow(/--lwf_top_k must be a positive integer but is 0/);
    await expect(stage("base", "add.json", "x", { clStrategy: "lwf", seed: 2 ** 32 })).rejects.toThrow(/the seed must be an integer in \[0, 2\^32\)/);
    await stage("base", "add.json", "s1", { clStrategy: "replay+ewc", replayBufferSize: 4, ewcLambda: 1, ewcFisherSamples: 2 });
    await expect(stage("s1", "mul.json", "x", { clStrategy: "replay", replayBufferSize: 5 })).rejects.toThrow(
      /s1\/replay_buffer\.json is a balanced buffer of 4 examples but --replay_policy balanced --replay_buffer_size 5 were given/,
    );
    // A Fisher of another shape (a grown model continuing from it) names the file and the tensor.
    await writeTinyModel(at("deeper"), 6, { num_hidden_layers: 3 });
    fs.copyFileSync(at("s1", "ewc_fisher.safetensors"), at("deeper", "ewc_fisher.safetensors"));
    await expect(stage("deeper", "mul.json", "x", { clStrategy: "ewc", ewcLambda: 1 })).rejects.toThrow(/deeper\/ewc_fisher\.safetensors has no tensor "model\.layers\.2\.self_attn\.q_proj\.weight"/);
  });

  test("the flags of growlm finetune, and the strategy labels of reports", async () => {
    vi.spyOn(console, "log").mockImplementation(() => {});
    await finetuneCommand.run([
      "--model_name_or_path", at("base"), "--dataset", at("add.json"), "--output_dir", at("cli"), "--dataset_format", "prompt",
      "--num_train_epochs", "1", "--per_device_train_batch_size", "4", "--save_strategy", "no", "--source_max_len", "48", "--target_max_len", "8",
      "--cl_strategy", "replay+ewc", "--replay_policy", "reservoir", "--replay_buffer_size", "5", "--ewc_lambda", "10", "--ewc_fisher_labels", "true", "--ewc_fisher_samples", "3",
    ]);
    vi.restoreAllMocks();
    const record = JSON.parse(fs.readFileSync(at("cli", "cl_strategy.json"), "utf8"));
    expect(record.label).toBe("replay (reservoir 5, ratio 0.25) + ewc (λ=10, true Fisher)");
    expect(record.ewc).toMatchObject({ labels: "true", fisher_examples: 3 });
    await expect(finetuneCommand.run(["--model_name_or_path", "m", "--dataset", "d", "--output_dir", "o", "--replay_policy", "fifo"])).rejects.toThrow(/--replay_policy must be one of reservoir, balanced but is "fifo"/);
    await expect(finetuneCommand.run(["--model_name_or_path", "m", "--dataset", "d", "--output_dir", "o", "--ewc_fisher_labels", "empirical"])).rejects.toThrow(/--ewc_fisher_labels must be one of sampled, true/);
    expect(parseStrategyNames("t", "naive")).toEqual([]);
    expect(describeStrategy({ ...STRATEGY_DEFAULTS, clStrategy: "lwf+ewc", ewcLambda: 3, ewcDecay: 0.9 })).toBe("lwf (α=1, T=2, top-32) + ewc (λ=3, sampled Fisher, γ=0.9)");
  });
});
