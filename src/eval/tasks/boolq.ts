/**
 * boolq (lm-evaluation-harness tasks/super_glue/boolq/default.yaml, version 2.0): yes/no
 * questions about a passage. Documents: {"passage", "question", "label": 0|1} (aps/super_glue,
 * boolq); google/boolq's {"passage", "question", "answer": true|false} is read as label =
 * answer. Evaluated on validation.jsonl, few-shot examples from train.jsonl.
 */
import type { Doc, TaskSpec } from "../harness.js";
import { integerField, stringField } from "./doc-fields.js";

const NAME = "boolq";

function label(doc: Doc, where: string): number {
  if (!("label" in doc) && typeof doc.answer === "boolean") return doc.answer ? 1 : 0;
  return integerField(NAME, doc, "label", where);
}

export const boolq: TaskSpec = {
  name: NAME,
  version: 2.0,
  dataset: { path: "aps/super_glue", name: "boolq", dir: "boolq" },
  splits: { training: "train", validation: "validation", test: null, fewshot: null },
  fewshotSampler: "default",
  multipleInputs: false,
  docToText: (doc, where) => `${stringField(NAME, doc, "passage", where)}\nQuestion: ${stringField(NAME, doc, "question", where)}?\nAnswer:`,
  docToChoice: () => ["no", "yes"],
  docToTarget: label,
  description: "",
  targetDelimiter: " ",
  fewshotDelimiter: "\n\n",
  metricList: [{ metric: "acc" }],
  config: {
    tag: ["super-glue-lm-eval-v1"],
    doc_to_text: "{{passage}}\nQuestion: {{question}}?\nAnswer:",
    doc_to_target: "label",
    doc_to_choice: ["no", "yes"],
    should_decontaminate: true,
    doc_to_decontamination_query: "passage",
  },
};
