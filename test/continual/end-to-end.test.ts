/** A tiny continual scenario end to end through growlm continual, and its resumption. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";

import { continual } from "../../src/cli/continual.js";
import { init } from "../../src/cli/init.js";
import { preprocessFolder, writePreprocessed } from "../../src/data/seed.js";
import { writeSyntheticStudy } from "../../src/data/synthetic.js";

describe("growlm continual", () => {
  let dir: string;
  let scenarioFile: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-e2e-"));
    vi.spyOn(console, "log").mockImplementation(() => {});
    const files = writeSyntheticStudy(path.join(dir, "data"), { corpusParagraphs: 10, trainExamples: 12, testExamples: 3 });
    for (const task of ["simplification", "dialogue"] as const) {
      writePreprocessed(path.join(dir, `${task}.json`), preprocessFolder(files.taskFolders[task], { evalDatasetSize: 0.1 }));
    }
    fs.writeFileSync(path.join(dir, "cfg.json"), JSON.stringify({ vocab_size: 259, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4, max_position_embeddings: 256 }));
    for (const [name, seed] of [["a", 1], ["b", 2]] as const) {
      await init.run(["--config", path.join(dir, "cfg.json"), "--seed", String(seed), "--out", path.join(dir, name), "--tokenizer", "byte"]);
    }
    scenarioFile = path.join(dir, "scenario.json");
    fs.writeFileSync(
      scenarioFile,
      JSON.stringify({
        title: "tiny",
        output_dir: "run",
        models: [{ name: "a", path: "a" }, { name: "b", path: "b" }],
        tasks: {
          simp: { dataset: "simplification.json", metrics: ["sari", "bleu", "rouge"], max_test_examples: 3, source_max_len: 160, target_max_len: 48, generation: { max_new_tokens: 6 } },
          dialogue: { dataset: "dialogue.json", metrics: ["bleu"], max_test_examples: 2, source_max_len: 160, target_max_len: 48, generation: { max_new_tokens: 4, num_beams: 2 } },
        },
        probes: { probes: { data_dir: "data" } },
        training: { num_train_epochs: 1, per_device_train_batch_size: 4, learning_rate: 1e-3, save_strategy: "no", logging_steps: 100 },
        stages: [{ task: "simp" }, { task: "dialogue" }, { task: "simp", training: { learning_rate: 5e-4 } }],
      }),
    );
  });
  afterAll(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("every task and probe after every stage, the report with its plots, nothing redone on rerun", async () => {
    await continual.run(["--config", scenarioFile]);
    const run = path.join(dir, "run");
    const results = JSON.parse(fs.readFileSync(path.join(run, "results.json"), "utf8"));
    expect(results.stages).toEqual(["simp", "dialogue", "simp"]);
    expect(results.tasks).toEqual(["simp", "dialogue", "probes"]);
    for (const model of ["a", "b"]) {
      const s = results.scores[model];
      expect(s.simp.eval_loss).toHaveLength(4);
      expect(s.simp.sari).toHaveLength(4);
      expect(s.simp.rougeL).toHaveLength(4);
      expect(s.dialogue.bleu).toHaveLength(4);
      expect(s.probes.acc).toHaveLength(4);
      // Fine-tuning on simp lowers its loss.
      expect(s.simp.eval_loss[1]).toBeLessThan(s.simp.eval_loss[0]);
    }
    const md = fs.readFileSync(path.join(run, "report.md"), "utf8");
    expect(md).toContain("### eval_loss (lower is better)");
    expect(fs.readdirSync(path.join(run, "plots")).length).toBeGreaterThan(5);
    expect(fs.existsSync(path.join(run, "a", "stage-3-simp", "model.safetensors"))).toBe(true);

    const before = fs.statSync(path.join(run, "a", "stage-2-dialogue", "model.safetensors")).mtimeMs;
    await continual.run(["--config", scenarioFile]);
    expect(fs.statSync(path.join(run, "a", "stage-2-dialogue", "model.safetensors")).mtimeMs).toBe(before);
  });

  test("a scenario naming an unknown task is refused by file and stage", async () => {
    const bad = path.join(dir, "bad.json");
    fs.writeFileSync(bad, JSON.stringify({ output_dir: "x", models: [{ name: "a", path: "a" }], tasks: {}, stages: [{ task: "nope" }] }));
    await expect(continual.run(["--config", bad])).rejects.toThrow(/bad\.json: stage 1: task "nope" is not in "tasks"/);
  });
});
