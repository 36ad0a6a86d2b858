/**
 * A tiny continual scenario comparing two bases, each fine-tuned deterministically and as a
 * FiLM-Ensemble (and one with MC dropout): every evaluation carries calibration measures and
 * the report puts them beside forgetting.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";

import { continual } from "../../src/cli/continual.js";
import { init } from "../../src/cli/init.js";
import { preprocessFolder, writePreprocessed } from "../../src/data/seed.js";
import { writeSyntheticStudy } from "../../src/data/synthetic.js";

describe("a continual scenario with deterministic and probabilistic fine-tuning", () => {
  let dir: string;
  let scenarioFile: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-prob-scenario-"));
    vi.spyOn(console, "log").mockImplementation(() => {});
    const files = writeSyntheticStudy(path.join(dir, "data"), { corpusParagraphs: 6, trainExamples: 10, testExamples: 3 });
    for (const task of ["simplification", "dialogue"] as const) {
      writePreprocessed(path.join(dir, `${task}.json`), preprocessFolder(files.taskFolders[task], { evalDatasetSize: 0.2 }));
    }
    fs.writeFileSync(path.join(dir, "cfg.json"), JSON.stringify({ vocab_size: 259, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4, max_position_embeddings: 256 }));
    for (const [name, seed] of [["grown", 1], ["naive", 2]] as const) {
      await init.run(["--config", path.join(dir, "cfg.json"), "--seed", String(seed), "--out", path.join(dir, name), "--tokenizer", "byte"]);
    }
    scenarioFile = path.join(dir, "scenario.json");
    const film = { probabilistic: "film", ensemble_size: 2, film_init_gain: 1 };
    fs.writeFileSync(
      scenarioFile,
      JSON.stringify({
        title: "modes",
        output_dir: "run",
        models: [
          { name: "grown", path: "grown" },
          { name: "grown-film", path: "grown", training: film },
          { name: "naive", path: "naive" },
          { name: "naive-film", path: "naive", training: film },
          { name: "grown-mc", path: "grown", training: { probabilistic: "mc_dropout", dropout: 0.1, mc_samples: 2 } },
        ],
        tasks: {
          simp: { dataset: "simplification.json", metrics: ["bleu"], max_test_examples: 3, source_max_len: 160, target_max_len: 48, generation: { max_new_tokens: 4 } },
          dialogue: { dataset: "dialogue.json", metrics: [], max_test_examples: 2, source_max_len: 160, target_max_len: 48 },
        },
        probes: { probes: { data_dir: "data" } },
        training: { num_train_epochs: 1, per_device_train_batch_size: 4, learning_rate: 2e-3, save_strategy: "no", logging_steps: 100 },
        stages: [{ task: "simp" }, { task: "dialogue" }],
      }),
    );
  });
  afterAll(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("every model's mode is kept through the stages; calibration is scored after every stage and reported", async () => {
    await continual.run(["--config", scenarioFile]);
    const run = path.join(dir, "run");
    const mode = (model: string, stage: string): unknown => {
      const file = path.join(run, model, stage, "probabilistic.json");
      return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : null;
    };
    for (const stage of ["stage-1-simp", "stage-2-dialogue"]) {
      expect(mode("grown", stage)).toBeNull();
      expect(mode("grown-film", stage)).toEqual({ method: "film", ensemble_size: 2, film_init_gain: 1 });
      expect(mode("naive-film", stage)).toMatchObject({ method: "film", ensemble_size: 2 });
      expect(mode("grown-mc", stage)).toEqual({ method: "mc_dropout", dropout: 0.1, mc_samples: 2, mc_seed: 42 });
    }
    const results = JSON.parse(fs.readFileSync(path.join(run, "results.json"), "utf8"));
    for (const model of ["grown", "grown-film", "naive", "naive-film", "grown-mc"]) {
      const s = results.scores[model];
      for (const metric of ["token_nll", "token_ece", "token_brier", "token_entropy", "token_mi", "seq_nll", "seq_rmi", "token_nll_ts", "token_ece_ts", "temperature"]) {
        expect(s.simp[metric], `${model} simp ${metric}`).toHaveLength(3);
      }
      for (const metric of ["acc", "nll", "ece", "brier", "entropy", "mi"]) expect(s.probes[metric], `${model} probes ${metric}`).toHaveLength(3);
      // One fitted temperature per evaluation.
      expect(s.simp.temperature.every((t: number) => t > 0)).toBe(true);
    }
    // A deterministic model has no epistemic part; an ensemble has one once its members differ.
    expect(results.scores.grown.simp.token_mi.every((v: number) => v === 0)).toBe(true);
    expect(results.scores["grown-film"].simp.token_mi[0]).toBe(0); // the base is evaluated plain
    expect(results.scores["grown-film"].simp.token_mi[1]).toBeGreaterThan(0);
    expect(results.scores["grown-film"].probes.mi[2]).toBeGreaterThan(0);
    expect(results.scores["grown-mc"].dialogue.seq_rmi[2]).toBeGreaterThan(0);
    // ECE and the other calibration metrics enter the continual-learning summary.
    const analysis = results.analysis["naive-film"].map((r: { metric: string }) => r.metric);
    expect(analysis).toEqual(expect.arrayContaining(["token_ece", "ece", "seq_nll", "eval_loss"]));
    const md = fs.readFileSync(path.join(run, "report.md"), "utf8");
    expect(md).toContain("## Calibration");
    expect(md).toMatch(/\| grown-film \| [\d.]+ \([\d.]+\) \|/);
    expect(md).toContain("### token_ece (lower is better)");
  });
});
