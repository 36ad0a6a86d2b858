/**
 * The embedded default data of `growlm demo`: a deterministic generator of a small
 * English-like world, written the way the study's data are.
 *
 * The world has animals, people, places and things with fixed facts (what each animal eats,
 * says and where it lives; each thing's colour; each person's job and town). From it come:
 * - a pretraining corpus of short fact sentences and little stories (plain text, one
 *   paragraph a line);
 * - three fine-tuning tasks in the study's raw CT0 format ({"src", "tgt", "src_info"} files
 *   named *.train.json / *.test.json): simplification (long sentences with clauses and
 *   modifiers -> their plain core, with -LRB- -RRB- brackets as in wiki_auto), dialogue (a
 *   speaker's situation and emotion -> an empathetic reply), and question generation (a
 *   short text -> a question it answers);
 * - multiple-choice probes of the world's facts (probes/test.jsonl of {context, choices, gold}), scored by
 *   log-likelihood: what a model learnt in pretraining and may forget in fine-tuning.
 * Everything is a function of the seed (growlm's Philox stream), so every run sees the same data.
 */
import fs from "node:fs";
import path from "node:path";

import { writeFileAtomic } from "../io/atomic.js";
import { RandomStream } from "../train/random.js";

interface Animal {
  name: string;
  plural: string;
  food: string;
  sound: string;
  home: string;
}

const ANIMALS: readonly Animal[] = [
  { name: "cow", plural: "cows", food: "grass", sound: "moo", home: "field" },
  { name: "dog", plural: "dogs", food: "meat", sound: "woof", home: "house" },
  { name: "cat", plural: "cats", food: "fish", sound: "meow", home: "barn" },
  { name: "sheep", plural: "sheep", food: "hay", sound: "baa", home: "hill" },
  { name: "duck", plural: "ducks", food: "bread", sound: "quack", home: "pond" },
  { name: "horse", plural: "horses", food: "oats", sound: "neigh", home: "stable" },
  { name: "owl", plural: "owls", food: "mice", sound: "hoot", home: "tree" },
  { name: "frog", plural: "frogs", food: "flies", sound: "croak", home: "river" },
];

const THINGS: readonly [string, string][] = [
  ["apple", "red"],
  ["banana", "yellow"],
  ["sky", "blue"],
  ["grass", "green"],
  ["snow", "white"],
  ["coal", "black"],
  ["orange", "orange"],
  ["plum", "purple"],
];

const PEOPLE: readonly [string, string, string][] = [
  ["Anna", "farmer", "Millbrook"],
  ["Ben", "baker", "Stonebridge"],
  ["Clara", "teacher", "Ashford"],
  ["David", "doctor", "Millbrook"],
  ["Emma", "painter", "Riverton"],
  ["Frank", "fisher", "Riverton"],
  ["Grace", "singer", "Ashford"],
  ["Henry", "builder", "Stonebridge"],
];

const ADJECTIVES = ["old", "young", "tired", "happy", "quiet", "clever", "small", "kind"];
const ADVERBS = ["slowly", "carefully", "gladly", "quickly", "gently", "proudly"];
const TIMES = ["in the morning", "after lunch", "at night", "on Sunday", "before the rain"];
const VERBS: readonly [string, string][] = [
  ["gave", "to"],
  ["showed", "to"],
  ["sold", "to"],
  ["brought", "to"],
];
const EMOTIONS: readonly [string, string, string][] = [
  ["sad", "my dog is sick", "I am sorry to hear that your dog is sick. I hope it gets better soon."],
  ["proud", "I finished my first painting", "That is wonderful! You must be proud of your first painting."],
  ["afraid", "there is a storm tonight", "Storms can be scary. Stay inside and you will be safe."],
  ["lonely", "my friend moved to Ashford", "I am sorry your friend moved away. Maybe you can visit Ashford soon."],
  ["grateful", "my neighbour fixed my roof", "How kind of your neighbour! It is good to have help like that."],
  ["excited", "we are going to the market", "How fun! I hope you find something nice at the market."],
  ["angry", "someone took my bread", "That is not fair. I hope you get your bread back."],
  ["tired", "I worked all day in the field", "You worked so hard today. You should rest now."],
];

/** A small deterministic picker over the Philox stream. */
class Picker {
  readonly #rng: RandomStream;
  constructor(seed: number) {
    this.#rng = new RandomStream(seed);
  }
  index(n: number): number {
    return Math.min(n - 1, Math.floor(this.#rng.uniform(1)[0]! * n));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.index(items.length)]!;
  }
  chance(p: number): boolean {
    return this.#rng.uniform(1)[0]! < p;
  }
}

const capitalise = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
/** "a" or "an" with the word. */
const article = (word: string): string => `${/^[aeiou]/.test(word) ? "an" : "a"} ${word}`;

function factSentences(): string[] {
  const facts: string[] = [];
  for (const a of ANIMALS) {
    facts.push(`The ${a.name} eats ${a.food}.`, `The ${a.name} says ${a.sound}.`, `The ${a.name} lives in the ${a.home}.`);
    facts.push(`${capitalise(a.plural)} eat ${a.food} and say ${a.sound}.`);
  }
  for (const [thing, colour] of THINGS) facts.push(`The ${thing} is ${colour}.`);
  for (const [name, job, town] of PEOPLE) facts.push(`${name} is ${article(job)}.`, `${name} lives in ${town}.`, `${name} the ${job} lives in ${town}.`);
  return facts;
}

function story(p: Picker): string {
  const [name, job, town] = p.pick(PEOPLE);
  const a = p.pick(ANIMALS);
  const [thing, colour] = p.pick(THINGS);
  const [, , other] = p.pick(PEOPLE);
  const lines = [
    `${name} is ${article(job)} in ${town}.`,
    `${capitalise(p.pick(TIMES))}, ${name} went to the ${a.home} and saw ${article(a.name)}.`,
    `The ${a.name} said ${a.sound} and ate some ${a.food}.`,
    `${name} had ${article(colour)} ${thing} and went to ${other}.`,
  ];
  return lines.slice(0, 2 + p.index(3)).join(" ");
}

/** The pretraining corpus: `paragraphs` lines of facts and stories. */
export function syntheticCorpus(paragraphs: number, seed = 1): string[] {
  const p = new Picker(seed);
  const facts = factSentences();
  return Array.from({ length: paragraphs }, (_, i) => (i % 3 === 0 ? Array.from({ length: 3 }, () => p.pick(facts)).join(" ") : story(p)));
}

interface TaskExample {
  src: string;
  tgt: string;
  info: Record<string, unknown>;
}

function simplification(p: Picker): TaskExample {
  const [name, job, town] = p.pick(PEOPLE);
  const [other] = p.pick(PEOPLE);
  const [thing, colour] = p.pick(THINGS);
  const [verb, prep] = p.pick(VERBS);
  const simple = `${name} ${verb} the ${thing} ${prep} ${other}.`;
  const adj = p.pick(ADJECTIVES);
  const parts = [`${capitalise(adj)} ${name}`];
  if (p.chance(0.6)) parts.push(`, the ${job} from ${town},`);
  parts.push(` ${p.pick(ADVERBS)} ${verb} the ${colour} ${thing}`);
  if (p.chance(0.5)) parts.push(` -LRB-a ${p.pick(["fresh", "big", "fine"])} one-RRB-`);
  parts.push(` ${prep} ${other} ${p.pick(TIMES)}.`);
  const normal = parts.join("");
  return {
    src: `${normal}\n\n===\n\nGiven this text, write it with, simpler words:`,
    tgt: simple,
    info: { normal_sentence: `${normal}\n`, simple_sentence: `${simple}\n`, prompt_name: "simplification_1", prompt_mode: "custom" },
  };
}

function dialogue(p: Picker, i: number): TaskExample {
  const [emotion, situation, reply] = p.pick(EMOTIONS);
  const [name] = p.pick(PEOPLE);
  const said = `${p.pick(["Hi.", "Hello.", "You know what?", "Guess what."])} ${capitalise(situation)}.`;
  return {
    src: `${name} feels ${emotion}. ${name} says: ${said}\n\nWrite a reply that shows empathy:`,
    tgt: reply,
    info: { context_emotion: emotion, context_prompt: situation, conv_id: `conv:${i}`, input_text: said, output_text: reply, prompt_name: "dialogue_with_emotion", prompt_mode: "custom" },
  };
}

function questionGeneration(p: Picker): TaskExample {
  const [name, job, town] = p.pick(PEOPLE);
  const a = p.pick(ANIMALS);
  const kind = p.index(3);
  const text = `${name} the ${job} lives in ${town}. ${capitalise(p.pick(TIMES))}, ${name} saw ${article(a.name)} near the ${a.home}.`;
  const question = [`Where does ${name} live?`, `What did ${name} see?`, `What is ${name}'s job?`][kind]!;
  return {
    src: `${text}\n\nAsk a question about this text:`,
    tgt: question,
    info: { text, question, prompt_name: "generate_a_question_1", prompt_mode: "custom" },
  };
}

export type SyntheticTask = "simplification" | "dialogue" | "question_generation";
export const SYNTHETIC_TASKS: readonly SyntheticTask[] = ["simplification", "dialogue", "question_generation"];

/** `n` examples of a task in the study's raw layout. */
export function syntheticTask(task: SyntheticTask, n: number, seed: number): { src: string[]; tgt: string[]; src_info: Record<string, unknown>[] } {
  const p = new Picker(seed);
  const examples = Array.from({ length: n }, (_, i) => (task === "simplification" ? simplification(p) : task === "dialogue" ? dialogue(p, i) : questionGeneration(p)));
  return { src: examples.map((e) => e.src), tgt: examples.map((e) => e.tgt), src_info: examples.map((e) => e.info) };
}

/** One multiple-choice probe: context + " " + the gold choice states a fact of the world. */
export interface ProbeItem {
  context: string;
  choices: string[];
  gold: number;
}

/** Multiple-choice probes of the world's facts (each fact asked once, choices in a seeded order). */
export function syntheticProbes(seed = 3): ProbeItem[] {
  const p = new Picker(seed);
  const items: ProbeItem[] = [];
  const ask = (context: string, answer: string, pool: readonly string[]): void => {
    const wrong = pool.filter((x) => x !== answer);
    const distractors: string[] = [];
    while (distractors.length < 3 && wrong.length > 0) distractors.push(wrong.splice(p.index(wrong.length), 1)[0]!);
    const choices = [answer, ...distractors];
    for (let i = choices.length - 1; i > 0; i--) {
      const j = p.index(i + 1);
      [choices[i], choices[j]] = [choices[j]!, choices[i]!];
    }
    items.push({ context, choices: choices.map((c) => `${c}.`), gold: choices.indexOf(answer) });
  };
  for (const a of ANIMALS) {
    ask(`The ${a.name} eats`, a.food, ANIMALS.map((x) => x.food));
    ask(`The ${a.name} says`, a.sound, ANIMALS.map((x) => x.sound));
    ask(`The ${a.name} lives in the`, a.home, ANIMALS.map((x) => x.home));
  }
  for (const [thing, colour] of THINGS) ask(`The ${thing} is`, colour, THINGS.map(([, c]) => c));
  for (const [name, job, town] of PEOPLE) {
    ask(`${name} works as`, article(job), PEOPLE.map(([, j]) => article(j)));
    ask(`${name} lives in`, town, [...new Set(PEOPLE.map(([, , t]) => t))]);
  }
  return items;
}

export interface SyntheticStudyFiles {
  corpus: string;
  /** One raw folder per task (simplification_1.train.json, ...test.json). */
  taskFolders: Record<SyntheticTask, string>;
  /** The folder holding probes/test.jsonl: the data directory of the probe task (jsonlChoiceTask("probes")). */
  probesDataDir: string;
}

/** Writes the corpus, the three raw task folders and the probes under `dir`. */
export function writeSyntheticStudy(dir: string, sizes: { corpusParagraphs: number; trainExamples: number; testExamples: number }, seed = 1): SyntheticStudyFiles {
  fs.mkdirSync(dir, { recursive: true });
  const corpus = path.join(dir, "corpus.txt");
  writeFileAtomic("writeSyntheticStudy", corpus, `${syntheticCorpus(sizes.corpusParagraphs, seed).join("\n")}\n`);
  const prompts: Record<SyntheticTask, string> = { simplification: "simplification_1", dialogue: "dialogue_with_emotion", question_generation: "generate_a_question_1" };
  const taskFolders = {} as Record<SyntheticTask, string>;
  SYNTHETIC_TASKS.forEach((task, k) => {
    const folder = path.join(dir, task);
    fs.mkdirSync(folder, { recursive: true });
    writeFileAtomic("writeSyntheticStudy", path.join(folder, `${prompts[task]}.train.json`), JSON.stringify(syntheticTask(task, sizes.trainExamples, seed * 100 + 2 * k)));
    writeFileAtomic("writeSyntheticStudy", path.join(folder, `${prompts[task]}.test.json`), JSON.stringify(syntheticTask(task, sizes.testExamples, seed * 100 + 2 * k + 1)));
    taskFolders[task] = folder;
  });
  fs.mkdirSync(path.join(dir, "probes"), { recursive: true });
  writeFileAtomic("writeSyntheticStudy", path.join(dir, "probes", "test.jsonl"), syntheticProbes(seed + 2).map((item) => JSON.stringify(item)).join("\n") + "\n");
  return { corpus, taskFolders, probesDataDir: dir };
}
