/**
 * growlm demo: the whole study on the embedded synthetic data, in minutes on a laptop CPU.
 *  1. writes the data: a small English-like corpus, three tasks in the study's raw format
 *     (simplification, empathetic dialogue, question generation) and probes of the world's facts;
 *  2. pretrains a small base for d tokens, grows it with G_stack (×2 layers) and trains on,
 *     and trains a from-scratch twin of the grown size for the same FLOPs;
 *  3. fine-tunes both through simplification → dialogue → question generation → simplification
 *     again, evaluating every task (eval loss and text metrics of greedy predictions) and the
 *     probes after every stage;
 *  4. writes the pretraining study (curves, speedup) and the scenario report (report.md).
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { diffCheckpoints, summarizeDrift } from "../continual/drift.js";
import { studyEvaluator } from "../continual/evaluate.js";
import { type ScenarioConfig, runScenario } from "../continual/scenario.js";
import { packCorpus, readCorpus } from "../data/corpus.js";
import { preprocessFolder, writePreprocessed } from "../data/seed.js";
import { SYNTHETIC_TASKS, type SyntheticTask, writeSyntheticStudy } from "../data/synthetic.js";
import { runGrowthStudy } from "../growth/study.js";
import { byteLevelTokenizer, saveTokenizer } from "../io/tokenizer.js";
import { parseLlamaConfig } from "../model/config.js";
import { finetuneOptions } from "../train/finetune-args.js";
import { finetune } from "../train/finetune.js";
import type { Command } from "./command.js";

/** The demo's sizes: small enough for minutes on 2 cores, large enough to learn the world. */
const SIZES = { corpusParagraphs: 8000, trainExamples: 320, testExamples: 16 };
const SMALL = { vocab_size: 259, hidden_size: 96, intermediate_size: 256, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 256 };
const BLOCK = 128;
const TOKENS = { growAt: 250_000, total: 1_000_000 };
const TASK_METRICS: Record<SyntheticTask, ("sari" | "bleu" | "rouge")[]> = {
  simplification: ["sari", "bleu", "rouge"],
  dialogue: ["bleu", "rouge"],
  question_generation: ["bleu", "rouge"],
};

export const demo: Command = {
  name: "demo",
  summary: "run the whole grow-vs-scratch forgetting study on the embedded synthetic data (a few minutes)",
  usage: "growlm demo [--out DIR]   (default growlm-demo/; rerunning resumes the scenario where it stopped)",
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { out: { type: "string", default: "growlm-demo" } } });
    const out = path.resolve(values.out!);
    const started = performance.now();
    const say = (text: string): void => console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${text}`);

    say(`writing the synthetic world into ${path.join(out, "data")}`);
    const files = writeSyntheticStudy(path.join(out, "data"), SIZES);
    const datasets: Record<string, string> = {};
    for (const task of SYNTHETIC_TASKS) {
      datasets[task] = path.join(out, "data", `${task}.json`);
      writePreprocessed(datasets[task], preprocessFolder(files.taskFolders[task], { evalDatasetSize: 0.05 }));
    }

    const tokenizer = byteLevelTokenizer();
    const studyDir = path.join(out, "pretraining");
    if (!fs.existsSync(path.join(studyDir, "study.json"))) {
      say(`pretraining: a ${SMALL.num_hidden_layers}-layer base for ${TOKENS.growAt} tokens, G_stack x2, then on to ${TOKENS.total} tokens; a from-scratch twin for the same FLOPs`);
      const corpus = packCorpus(readCorpus(files.corpus), tokenizer, BLOCK, 0.03, 1);
      const result = runGrowthStudy({
        smallConfig: parseLlamaConfig({ ...SMALL, bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId, pad_token_id: tokenizer.padId }),
        growth: { depth: { operator: "stack", factor: 2 } },
        growAtTokens: TOKENS.growAt,
        maxTokens: TOKENS.total,
        corpus,
        batchSize: 16,
        evalSteps: 40,
        schedule: { type: "cosine", learningRate: 3e-3, warmupRatio: 0.05 },
        optimizer: { weightDecay: 0.1, beta2: 0.95, maxGradNorm: 1 },
        baselineBudget: "flops",
        seed: 1,
        outputDir: studyDir,
        onPoint: (run, p) => {
          if (Number.isFinite(p.evalLoss) && Number.isFinite(p.loss)) say(`  ${run.padEnd(7)} ${String(p.tokens).padStart(7)} tokens  ${p.flops.toExponential(2)} FLOPs  validation loss ${p.evalLoss.toFixed(3)}`);
        },
      });
      for (const run of ["grown", "scratch"]) await saveTokenizer(path.join(studyDir, run), tokenizer);
      const s = result.speedup!;
      say(
        s.grownFlops === null
          ? `pretraining done: the grown model did not reach the scratch twin's final validation loss ${s.targetLoss.toFixed(3)}`
          : `pretraining done: the grown model reached the scratch twin's final validation loss ${s.targetLoss.toFixed(3)} with ${s.grownFlops.toExponential(2)} FLOPs instead of ${s.scratchFlops.toExponential(2)}: a ${(100 * s.flopSpeedup!).toFixed(0)}% FLOPs speedup`,
      );
    } else {
      say("pretraining: already done (pretraining/study.json)");
    }

    const scenario: ScenarioConfig = {
      title: "growlm demo: grown (G_stack) vs from-scratch, fine-tuned through three tasks and back",
      outputDir: path.join(out, "scenario"),
      models: [
        { name: "grown", path: path.join(studyDir, "grown") },
        { name: "scratch", path: path.join(studyDir, "scratch") },
      ],
      stages: [...SYNTHETIC_TASKS, "simplification"].map((task) => ({ task, training: {} })),
      evaluate: [...SYNTHETIC_TASKS, "probes"],
    };
    const tasks = SYNTHETIC_TASKS.map((task) => ({
      name: task,
      dataset: datasets[task]!,
      datasetFormat: "none" as const,
      metrics: TASK_METRICS[task],
      maxTestExamples: SIZES.testExamples,
      sourceMaxLen: 192,
      targetMaxLen: 64,
      generation: { maxNewTokens: 48 },
    }));
    say("fine-tuning both models through simplification → dialogue → question_generation → simplification, evaluating after every stage");
    await runScenario(
      scenario,
      {
        async train(from, stage, outputDir) {
          const task = tasks.find((t) => t.name === stage.task)!;
          const options = finetuneOptions("growlm demo", { num_train_epochs: 2, per_device_train_batch_size: 8, learning_rate: 3e-4, lr_scheduler_type: "cosine", warmup_ratio: 0.1, save_strategy: "no", logging_steps: 10 }, {
            modelNameOrPath: from,
            dataset: task.dataset,
            datasetFormat: task.datasetFormat,
            outputDir,
            sourceMaxLen: task.sourceMaxLen,
            targetMaxLen: task.targetMaxLen,
          });
          const r = await finetune(options, { log: () => {} });
          say(`  ${path.basename(path.dirname(outputDir))}: ${path.basename(outputDir)} trained (${r.globalStep} steps, final loss ${r.logHistory.filter((l) => "loss" in l).at(-1)?.loss?.toFixed(3) ?? "–"})`);
          return { tokens: r.trainTokens, flops: r.trainFlops };
        },
      },
      studyEvaluator({ tasks, probes: [{ name: "probes", dataDir: files.probesDataDir }] }),
      {
        onStage: (model, stage, scores) =>
          say(
            `  ${model} after ${stage === 0 ? "pretraining" : `stage ${stage}`}: ` +
              Object.entries(scores)
                .map(([t, m]) => `${t} ${m.sari !== undefined ? `SARI ${m.sari.toFixed(1)}` : m.eval_loss !== undefined ? `loss ${m.eval_loss.toFixed(3)}` : `acc ${m.acc?.toFixed(2)}`}`)
                .join(", "),
          ),
      },
      { measure: (base, dir) => summarizeDrift(diffCheckpoints(base, dir)) },
    );
    say(`done. The study: ${path.join(studyDir, "study.json")}; the report: ${path.join(scenario.outputDir, "report.md")}`);
  },
};
