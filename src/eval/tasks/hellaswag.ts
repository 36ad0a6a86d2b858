/**
 * hellaswag (lm-evaluation-harness tasks/hellaswag/hellaswag.yaml and utils.py, version 1.0):
 * choose the ending of an activity description. Documents: {"activity_label", "ctx_a",
 * "ctx_b", "endings": [4 strings], "label": "0".."3"} (Rowan/hellaswag; an integer label is
 * read too). Evaluated on validation.jsonl, few-shot examples from train.jsonl.
 *
 * process_docs: query = preprocess(activity_label + ": " + ctx_a + " " + capitalize(ctx_b)),
 * choices = preprocess(each ending), gold = int(label), where preprocess strips, turns
 * " [title]" into ". ", removes every "[...]" and replaces "  " by " " in one pass.
 */
import type { Doc, TaskSpec } from "../harness.js";
import { pythonCapitalize, pythonStrip } from "../python-str.js";
import { badDoc, stringField, stringListField } from "./doc-fields.js";

const NAME = "hellaswag";

/** utils.preprocess. Python's "." stops only at "\n", so the bracket pattern uses [^\n]. */
export function hellaswagPreprocess(text: string): string {
  return pythonStrip(text).replaceAll(" [title]", ". ").replace(/\[[^\n]*?\]/g, "").replaceAll("  ", " ");
}

/** The label as Jinja renders "{{label}}": its text, which must be decimal digits. */
function labelText(doc: Doc, where: string): string {
  const value = doc.label;
  const text = typeof value === "number" && Number.isInteger(value) ? String(value) : value;
  if (typeof text !== "string" || !/^[0-9]+$/.test(text)) {
    throw badDoc(NAME, where, `field "label" must be an answer index ("0".."3") but is ${value === undefined ? "missing" : JSON.stringify(value)}`);
  }
  return text;
}

function processDoc(doc: Doc, where: string): Doc {
  const ctx = `${stringField(NAME, doc, "ctx_a", where)} ${pythonCapitalize(stringField(NAME, doc, "ctx_b", where))}`;
  return {
    query: hellaswagPreprocess(`${stringField(NAME, doc, "activity_label", where)}: ${ctx}`),
    choices: stringListField(NAME, doc, "endings", where).map(hellaswagPreprocess),
    gold: Number(labelText(doc, where)),
  };
}

export const hellaswag: TaskSpec = {
  name: NAME,
  version: 1.0,
  dataset: { path: "Rowan/hellaswag", name: null, dir: "hellaswag" },
  splits: { training: "train", validation: "validation", test: null, fewshot: null },
  fewshotSampler: "default",
  processDoc,
  multipleInputs: false,
  docToText: (doc, where) => stringField(NAME, doc, "query", where),
  docToChoice: (doc, where) => stringListField(NAME, doc, "choices", where),
  docToTarget: (doc, where) => Number(labelText(doc, where)),
  description: "",
  targetDelimiter: " ",
  fewshotDelimiter: "\n\n",
  metricList: [
    { metric: "acc", aggregation: "mean", higher_is_better: true },
    { metric: "acc_norm", aggregation: "mean", higher_is_better: true },
  ],
  config: {
    tag: ["multiple_choice"],
    process_docs: "!function utils.process_docs",
    doc_to_text: "{{query}}",
    doc_to_target: "{{label}}",
    doc_to_choice: "choices",
  },
};
