/**
 * A user-defined multiple-choice task: DIR/<name>/test.jsonl with one {"context", "choices",
 * "gold"} object a line, scored like the built-in tasks (continuation " " + choice; acc and
 * acc_norm). The demo's probes of its synthetic world are such a task.
 */
import type { TaskSpec } from "../harness.js";
import { integerField, stringField, stringListField } from "./doc-fields.js";

/** The task `name` reading DIR/<dir>/test.jsonl (dir defaults to the name). */
export function jsonlChoiceTask(name: string, dir = name): TaskSpec {
  return {
    name,
    version: 1.0,
    dataset: { path: `local:${dir}`, name: null, dir },
    splits: { training: null, validation: null, test: "test", fewshot: "test" },
    fewshotSampler: "default",
    multipleInputs: false,
    docToText: (doc, where) => stringField(name, doc, "context", where),
    docToChoice: (doc, where) => stringListField(name, doc, "choices", where),
    docToTarget: (doc, where) => integerField(name, doc, "gold", where),
    description: "",
    targetDelimiter: " ",
    fewshotDelimiter: "\n\n",
    metricList: [
      { metric: "acc", aggregation: "mean", higher_is_better: true },
      { metric: "acc_norm", aggregation: "mean", higher_is_better: true },
    ],
    config: { doc_to_text: "{{context}}", doc_to_target: "gold", doc_to_choice: "{{choices}}" },
  };
}
