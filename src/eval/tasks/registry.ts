/**
 * The built-in tasks and groups: piqa, boolq, hellaswag, winogrande, arc_easy,
 * arc_challenge, crows_pairs_english, the 57 mmlu_<subject> tasks and the mmlu groups.
 */
import type { GroupSpec, TaskRegistry, TaskSpec } from "../harness.js";
import { arcChallenge, arcEasy } from "./arc.js";
import { boolq } from "./boolq.js";
import { crowsPairsEnglish } from "./crows-pairs.js";
import { hellaswag } from "./hellaswag.js";
import { mmluGroups, mmluTasks } from "./mmlu.js";
import { piqa } from "./piqa.js";
import { winogrande } from "./winogrande.js";

const tasks: readonly TaskSpec[] = [piqa, boolq, hellaswag, winogrande, arcEasy, arcChallenge, crowsPairsEnglish, ...mmluTasks];
const groups: readonly GroupSpec[] = mmluGroups;

export const BUILTIN_TASKS: TaskRegistry = {
  tasks: new Map(tasks.map((t) => [t.name, t])),
  groups: new Map(groups.map((g) => [g.name, g])),
};
