/**
 * winogrande (lm-evaluation-harness tasks/winogrande/default.yaml and
 * preprocess_winogrande.py, version 1.0), with partial scoring (Trinh & Le, 2018): the
 * sentence's blank "_" is filled with each option to make the contexts, and the shared
 * continuation is the rest of the sentence after the blank. Documents: {"sentence" with one
 * "_", "option1", "option2", "answer": "1"|"2"} (allenai/winogrande, winogrande_xl).
 * Evaluated on validation.jsonl, few-shot examples from train.jsonl.
 */
import type { Doc, TaskSpec } from "../harness.js";
import { pythonStrip } from "../python-str.js";
import { badDoc, stringField } from "./doc-fields.js";

const NAME = "winogrande";

function blank(doc: Doc, where: string): { sentence: string; index: number } {
  const sentence = stringField(NAME, doc, "sentence", where);
  const index = sentence.indexOf("_");
  if (index < 0) throw badDoc(NAME, where, `field "sentence" has no blank "_": ${JSON.stringify(sentence)}`);
  return { sentence, index };
}

export const winogrande: TaskSpec = {
  name: NAME,
  version: 1.0,
  dataset: { path: "allenai/winogrande", name: "winogrande_xl", dir: "winogrande" },
  splits: { training: "train", validation: "validation", test: null, fewshot: null },
  fewshotSampler: "default",
  multipleInputs: true,
  docToText: (doc, where) => {
    const answer = doc.answer;
    if (answer !== "1" && answer !== "2") throw badDoc(NAME, where, `field "answer" must be "1" or "2" but is ${answer === undefined ? "missing" : JSON.stringify(answer)}`);
    return answer === "1" ? 0 : 1;
  },
  docToChoice: (doc, where) => {
    const { sentence, index } = blank(doc, where);
    return [stringField(NAME, doc, "option1", where), stringField(NAME, doc, "option2", where)].map((option) => sentence.slice(0, index) + option);
  },
  docToTarget: (doc, where) => {
    const { sentence, index } = blank(doc, where);
    return pythonStrip(sentence.slice(index + 1));
  },
  description: "",
  targetDelimiter: " ",
  fewshotDelimiter: "\n\n",
  metricList: [{ metric: "acc", aggregation: "mean", higher_is_better: true }],
  config: {
    doc_to_text: "!function preprocess_winogrande.doc_to_text",
    doc_to_target: "!function preprocess_winogrande.doc_to_target",
    doc_to_choice: "!function preprocess_winogrande.doc_to_choice",
    should_decontaminate: true,
    doc_to_decontamination_query: "sentence",
  },
};
