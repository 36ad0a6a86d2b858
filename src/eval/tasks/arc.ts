/**
 * arc_easy and arc_challenge (lm-evaluation-harness tasks/arc/arc_easy.yaml and
 * arc_challenge.yaml, version 1.0): grade-school science questions with 3 to 5 choices.
 * Documents: {"question", "choices": {"text": [...], "label": ["A", ...]}, "answerKey"}
 * (allenai/ai2_arc, ARC-Easy / ARC-Challenge). Evaluated on test.jsonl, few-shot examples
 * from train.jsonl.
 */
import type { Doc, TaskSpec } from "../harness.js";
import { badDoc, objectField, stringField, stringListField } from "./doc-fields.js";

function arcTask(name: "arc_easy" | "arc_challenge", datasetName: "ARC-Easy" | "ARC-Challenge"): TaskSpec {
  const choiceTexts = (doc: Doc, where: string): string[] => stringListField(name, objectField(name, doc, "choices", where), "text", `${where}, field "choices"`);
  return {
    name,
    version: 1.0,
    dataset: { path: "allenai/ai2_arc", name: datasetName, dir: name },
    splits: { training: "train", validation: "validation", test: "test", fewshot: null },
    fewshotSampler: "default",
    multipleInputs: false,
    docToText: (doc, where) => `Question: ${stringField(name, doc, "question", where)}\nAnswer:`,
    docToChoice: choiceTexts,
    docToTarget: (doc, where) => {
      const labels = stringListField(name, objectField(name, doc, "choices", where), "label", `${where}, field "choices"`);
      const key = stringField(name, doc, "answerKey", where);
      const index = labels.indexOf(key);
      if (index < 0) throw badDoc(name, where, `answerKey ${JSON.stringify(key)} is not one of the choice labels ${JSON.stringify(labels)}`);
      return index;
    },
    description: "",
    targetDelimiter: " ",
    fewshotDelimiter: "\n\n",
    metricList: [
      { metric: "acc", aggregation: "mean", higher_is_better: true },
      { metric: "acc_norm", aggregation: "mean", higher_is_better: true },
    ],
    config: {
      tag: ["ai2_arc"],
      doc_to_text: "Question: {{question}}\nAnswer:",
      doc_to_target: "{{choices.label.index(answerKey)}}",
      doc_to_choice: "{{choices.text}}",
      should_decontaminate: true,
      doc_to_decontamination_query: "Question: {{question}}\nAnswer:",
    },
  };
}

export const arcEasy: TaskSpec = arcTask("arc_easy", "ARC-Easy");
export const arcChallenge: TaskSpec = arcTask("arc_challenge", "ARC-Challenge");
