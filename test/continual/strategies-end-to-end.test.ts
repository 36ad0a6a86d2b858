/** growlm continual with a strategy per model on a grown base: side-by-side report, drift of the stacked copies, scenario-file refusals. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";

import { continual } from "../../src/cli/continual.js";
import { init } from "../../src/cli/init.js";
import { preprocessFolder, writePreprocessed } from "../../src/data/seed.js";
import { writeSyntheticStudy } from "../../src/data/synthetic.js";
import { growCheckpoint } from "../../src/growth/checkpoint.js";
import { readModelConfig } from "../../src/io/hf.js";

describe("growlm continual with strategies", () => {
  let dir: string;
  const at = (...p: string[]): string => path.join(dir, ...p);
  const scenario = (models: unknown[], file = "scenario.json"): string => {
    fs.writeFileSync(
      at(file),
      JSON.stringify({
        title: "strategies",
        output_dir: "run",
        models,
        tasks: {
          simp: { dataset: "simplification.json", metrics: ["bleu"], max_test_examples: 2, source_max_len: 160, target_max_len: 48, generation: { max_new_tokens: 4 } },
          dialogue: { dataset: "dialogue.json", max_test_examples: 2, source_max_len: 160, target_max_len: 48 },
        },
        training: { num_train_epochs: 1, per_device_train_batch_size: 4, learning_rate: 1e-3, save_strategy: "no", logging_steps: 100 },
        stages: [{ task: "simp" }, { task: "dialogue" }, { task: "simp" }],
      }),
    );
    return at(file);
  };
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-e2e-strategies-"));
    vi.spyOn(console, "log").mockImplementation(() => {});
    const files = writeSyntheticStudy(at("data"), { corpusParagraphs: 10, trainExamples: 12, testExamples: 3 });
    for (const task of ["simplification", "dialogue"] as const) {
      writePreprocessed(at(`${task}.json`), preprocessFolder(files.taskFolders[task], { evalDatasetSize: 0.1 }));
    }
    fs.writeFileSync(at("cfg.json"), JSON.stringify({ vocab_size: 259, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4, max_position_embeddings: 256 }));
    await init.run(["--config", at("cfg.json"), "--seed", "1", "--out", at("small"), "--tokenizer", "byte"]);
    growCheckpoint(at("small"), at("grown"), { depth: { operator: "stack", factor: 2 } });
  });
  afterAll(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("naive, replay + EWC and LwF side by side, with the drift of every stage and of the stacked copies", async () => {
    const file = scenario([
      { name: "naive", path: "grown" },
      { name: "replay-ewc", path: "grown", training: { cl_strategy: "replay+ewc", replay_buffer_size: 8, ewc_lambda: 100, ewc_fisher_samples: 4 } },
      { name: "lwf", path: "grown", training: { cl_strategy: "lwf", lwf_top_k: 8 } },
    ]);
    await continual.run(["--config", file]);
    const results = JSON.parse(fs.readFileSync(at("run", "results.json"), "utf8"));
    expect(results.strategies).toEqual({
      naive: "naive",
      "replay-ewc": "replay (balanced 8, ratio 0.25) + ewc (λ=100, sampled Fisher)",
      lwf: "lwf (α=1, T=2, top-8)",
    });
    for (const model of ["naive", "replay-ewc", "lwf"]) {
      const drift = results.drift[model];
      expect(drift).toHaveLength(3);
      expect(drift[0].overall.relL2).toBeGreaterThan(0);
      expect(drift[0].layerSources).toEqual([0, 0]);
      expect(drift[2].copyDivergence).toBeGreaterThan(0); // the two copies of layer 0 moved apart
    }
    expect(results.compute["replay-ewc"].strategyFlops.every((f: number) => f > 0)).toBe(true);
    expect(results.compute.naive.strategyFlops).toEqual([0, 0, 0]);
    // The buffer holds both tasks after stage 2; the revisit of simp adds nothing.
    const record = (s: string) => JSON.parse(fs.readFileSync(at("run", "replay-ewc", s, "cl_strategy.json"), "utf8"));
    expect(record("stage-2-dialogue").replay.buffer_after).toEqual({ simp: 4, dialogue: 4 });
    expect(record("stage-3-simp").replay.buffer_after).toEqual({ simp: 4, dialogue: 4 });
    expect(record("stage-3-simp").ewc.stages_before).toBe(2);
    // finetune records each stage's parent, as transformers does.
    expect(readModelConfig(at("run", "lwf", "stage-2-dialogue")).metadata._name_or_path).toBe(at("run", "lwf", "stage-1-simp"));
    const md = fs.readFileSync(at("run", "report.md"), "utf8");
    expect(md).toContain("## Strategies side by side");
    expect(md).toMatch(/\| lwf \| lwf \(α=1, T=2, top-8\) \| [\d,]+ \| /);
    expect(md).toContain("## Drift from the base");
    expect(md).toContain("![copy-divergence](plots/copy-divergence.svg)");
    for (const f of ["drift.svg", "copy-divergence.svg", "drift-modules-replay-ewc.svg", "drift-layers-lwf.svg"]) expect(fs.existsSync(at("run", "plots", f)), f).toBe(true);
  });

  test("a model's strategy is checked when the scenario is read, by file, model and setting", async () => {
    await expect(continual.run(["--config", scenario([{ name: "m", path: "grown", training: { cl_strategy: "ewc", ewc_gamma: 1 } }], "bad1.json")])).rejects.toThrow(
      /bad1\.json: models\[0\]: unknown training argument "ewc_gamma"/,
    );
    await expect(continual.run(["--config", scenario([{ name: "m", path: "grown", training: { cl_strategy: "ewc" } }], "bad2.json")])).rejects.toThrow(
      /bad2\.json: models\[0\]: --cl_strategy ewc needs --ewc_lambda/,
    );
    await expect(continual.run(["--config", scenario([{ name: "m", path: "grown", training: { cl_strategy: "replay", replay_ratio: "half" } }], "bad3.json")])).rejects.toThrow(
      /bad3\.json: models\[0\]: "replay_ratio" must be a number but is "half"/,
    );
    await expect(continual.run(["--config", scenario([{ name: "m", path: "grown", training: { cl_strategy: "lwf", probabilistic: "film" } }], "bad4.json")])).rejects.toThrow(
      /--cl_strategy lwf needs a deterministic model, but this one predicts with 4 FiLM-Ensemble members/,
    );
  });
});
