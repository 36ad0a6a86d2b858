/**
 * `node --import tsx bench/cl-memory.ts naive|ewc|lwf|lwf-teacher-model`: three training steps
 * of config S with the strategy (bench/cl-setup.ts) in this fresh process; prints its peak
 * resident set in bytes (VmHWM, as train-memory.ts) and the strategy's own state in bytes.
 */
import { readFileSync } from "node:fs";

import { CL_MODES, type ClMode, makeClStep } from "./cl-setup.js";

const mode = process.argv[2] as ClMode;
if (!CL_MODES.includes(mode)) throw new Error(`usage: cl-memory.ts ${CL_MODES.join("|")}`);
const { step, stateBytes } = makeClStep(mode);
for (let i = 0; i < 3; i++) step();
const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
console.log(JSON.stringify({ peak: hwm ? Number(hwm[1]) * 1024 : process.resourceUsage().maxRSS * 1024, state: stateBytes }));
