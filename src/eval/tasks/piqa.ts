/**
 * piqa (lm-evaluation-harness tasks/piqa/piqa.yaml, version 1.0): physical commonsense, two
 * solutions to a goal. Documents: {"goal", "sol1", "sol2", "label": 0|1} (baber/piqa);
 * evaluated on validation.jsonl, few-shot examples from train.jsonl.
 */
import type { TaskSpec } from "../harness.js";
import { integerField, stringField } from "./doc-fields.js";

const NAME = "piqa";

export const piqa: TaskSpec = {
  name: NAME,
  version: 1.0,
  dataset: { path: "baber/piqa", name: null, dir: "piqa" },
  splits: { training: "train", validation: "validation", test: null, fewshot: null },
  fewshotSampler: "default",
  multipleInputs: false,
  docToText: (doc, where) => `Question: ${stringField(NAME, doc, "goal", where)}\nAnswer:`,
  docToChoice: (doc, where) => [stringField(NAME, doc, "sol1", where), stringField(NAME, doc, "sol2", where)],
  docToTarget: (doc, where) => integerField(NAME, doc, "label", where),
  description: "",
  targetDelimiter: " ",
  fewshotDelimiter: "\n\n",
  metricList: [
    { metric: "acc", aggregation: "mean", higher_is_better: true },
    { metric: "acc_norm", aggregation: "mean", higher_is_better: true },
  ],
  config: {
    doc_to_text: "Question: {{goal}}\nAnswer:",
    doc_to_target: "label",
    doc_to_choice: "{{[sol1, sol2]}}",
    should_decontaminate: true,
    doc_to_decontamination_query: "goal",
  },
};
