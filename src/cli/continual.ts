/** growlm continual: run (or resume) a continual-learning scenario and write its report. */
import { parseArgs } from "node:util";

import { diffCheckpoints, summarizeDrift } from "../continual/drift.js";
import { studyEvaluator } from "../continual/evaluate.js";
import { runScenario } from "../continual/scenario.js";
import { finetuneStageTrainer, readScenarioFile } from "../continual/scenario-file.js";
import type { Command } from "./command.js";
import { required } from "./flags.js";

function formatScores(scores: Record<string, Record<string, number>>): string {
  return Object.entries(scores)
    .map(([task, m]) => `${task}: ${Object.entries(m).map(([k, v]) => `${k} ${Number.isFinite(v) ? Number(v.toPrecision(4)) : "–"}`).join(", ")}`)
    .join("; ");
}

export const continual: Command = {
  name: "continual",
  summary: "fine-tune models through a sequence of tasks, evaluate everything after every stage, report forgetting",
  usage:
    "growlm continual --config scenario.json\n\n" +
    "  scenario.json: title, output_dir, models [{name, path, training?}], tasks {name: {dataset, dataset_format,\n" +
    "  metrics, max_test_examples, source_max_len, target_max_len, generation}}, probes {name: {data_dir}}, training\n" +
    "  (TrainingArguments for every stage; a model's own, e.g. {\"probabilistic\": \"film\", \"ensemble_size\": 4}, set its\n" +
    "  fine-tuning mode), stages [{task, training?}], bf16, calibration (default true; see src/continual/scenario-file.ts).\n" +
    "  A model's training may choose a continual-learning strategy with growlm finetune's flags ({\"cl_strategy\":\n" +
    "  \"replay+ewc\", \"ewc_lambda\": 1000, ...}); the report puts the strategies side by side. After every stage each\n" +
    "  model is compared with its base (growlm diff) and the drift goes into the results and the report.\n" +
    "  Writes OUTPUT_DIR/<model>/stage-N-<task>/ models, results.json, results.csv, plots/*.svg and report.md;\n" +
    "  rerunning after a crash resumes at the first unfinished stage.",
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { config: { type: "string" } } });
    const study = readScenarioFile(required("continual", "config", values.config));
    const started = performance.now();
    const elapsed = (): string => `${((performance.now() - started) / 1000).toFixed(0)} s`;
    await runScenario(
      study.scenario,
      finetuneStageTrainer(study, (dir, r) => {
        if ("loss" in r) console.log(`  [${elapsed()}] ${dir}: step ${r.step} loss ${r.loss!.toFixed(4)}`);
      }),
      studyEvaluator({ tasks: study.tasks, probes: study.probes, bf16: study.bf16, calibration: study.calibration }),
      {
        onStage: (model, stage, scores) =>
          console.log(`[${elapsed()}] ${model} after ${stage === 0 ? "nothing (base)" : `stage ${stage} (${study.scenario.stages[stage - 1]!.task})`}: ${formatScores(scores)}`),
      },
      { measure: (base, dir) => summarizeDrift(diffCheckpoints(base, dir)) },
    );
    console.log(`report: ${study.scenario.outputDir}/report.md`);
  },
};
