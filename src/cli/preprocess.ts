/** growlm preprocess: the study's raw task folder merged into one train/eval/test JSON. */
import { parseArgs } from "node:util";

import { preprocessFolder, writePreprocessed } from "../data/seed.js";
import type { Command } from "./command.js";
import { integerFlag, required } from "./flags.js";

export const preprocess: Command = {
  name: "preprocess",
  summary: "merge a folder of the study's raw JSON files (src/tgt/src_info) into train/eval/test",
  usage:
    "growlm preprocess --folder DIR --out FILE [--eval_dataset_size 0.01] [--seed 42]\n\n" +
    "  Files whose names contain 'train' go to train, 'test' to test; -LRB- -RRB- -LSB- -RSB- become\n" +
    "  brackets; ceil(eval_dataset_size * n) seeded train examples move to eval.",
  run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        folder: { type: "string" },
        folder_path: { type: "string" },
        out: { type: "string" },
        output_path: { type: "string" },
        eval_dataset_size: { type: "string", default: "0.01" },
        seed: { type: "string", default: "42" },
      },
    });
    // --folder_path/--output_path are the study's data_formatting.py spellings.
    const folder = required("preprocess", "folder", values.folder ?? values.folder_path);
    const out = required("preprocess", "out", values.out ?? values.output_path);
    const dataset = preprocessFolder(folder, { evalDatasetSize: Number(values.eval_dataset_size), seed: integerFlag("preprocess", "seed", values.seed!) });
    writePreprocessed(out, dataset);
    console.log(`wrote ${out}: ${dataset.train.length} train, ${dataset.eval.length} eval, ${dataset.test.length} test examples`);
  },
};
