#!/usr/bin/env node
/** The growlm command-line tool: `growlm <command> [--help]`. */
import type { Command } from "./command.js";
import { continual } from "./continual.js";
import { demo } from "./demo.js";
import { diff } from "./diff.js";
import { exportMemberCommand } from "./export-member.js";
import { finetune } from "./finetune.js";
import { grow } from "./grow.js";
import { harness } from "./harness.js";
import { info } from "./info.js";
import { init } from "./init.js";
import { metrics } from "./metrics.js";
import { predict } from "./predict.js";
import { preprocess } from "./preprocess.js";
import { pretrain } from "./pretrain.js";
import { score } from "./score.js";

const commands: readonly Command[] = [info, init, score, pretrain, grow, preprocess, finetune, continual, predict, metrics, harness, diff, demo, exportMemberCommand];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "usage: growlm <command> [options]",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "growlm <command> --help shows a command's options.",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name === undefined ? 1 : 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`growlm: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(`usage: ${command.usage}\n\n${command.summary}`);
    return 0;
  }
  await command.run(rest);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`growlm: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
