/**
 * The benchmark harness: prompts, few-shot sampling, metrics and results against
 * lm-evaluation-harness 0.4.13 itself (fixtures from tools/make_harness_fixtures.py, which
 * ran lm-eval's simple_evaluate on test/fixtures/harness/data with a fake model whose answers
 * are a SHA-256 function of the request strings, reproduced here), hand-written expectations
 * for each adapter, metric math by hand, errors by name, and an end-to-end run of
 * `growlm harness` on a tiny random model with the byte-level tokenizer.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";

import { harness } from "../../src/cli/harness.js";
import { init } from "../../src/cli/init.js";
import {
  FewshotSampler,
  aggregateSubtaskMetrics,
  constructRequests,
  fewshotContext,
  meanStderr,
  pooledSampleStderr,
  processResults,
  readTaskDocs,
  runHarness,
  sampleSize,
  type Doc,
  type GroupSpec,
  type LoglikelihoodRequest,
  type LoglikelihoodResult,
  type LoglikelihoodScorer,
  type TaskRegistry,
  type TaskSpec,
} from "../../src/eval/harness.js";
import { ModelScorer } from "../../src/eval/model-scorer.js";
import { hellaswagPreprocess } from "../../src/eval/tasks/hellaswag.js";
import { BUILTIN_TASKS } from "../../src/eval/tasks/registry.js";
import { loadTokenizer } from "../../src/io/tokenizer.js";
import { parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { loadPretrained } from "../../src/model/pretrained.js";
import { scoreSequences } from "../../src/model/score.js";
import { Tensor } from "../../src/tensor.js";

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/harness");
const TASKS = ["piqa", "boolq", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "crows_pairs_english", "mmlu"];

/** tools/make_harness_fixtures.py's fake_loglikelihood: exact binary fractions of a SHA-256 of the request. */
function fakeLoglikelihood(context: string, continuation: string): LoglikelihoodResult {
  const h = createHash("sha256").update(`${context}\u241f${continuation}`, "utf8").digest("hex");
  const logprob = -(parseInt(h.slice(0, 8), 16) / 4294967296) * 8 - parseInt(h.slice(8, 10), 16) / 64;
  return { logprob, isGreedy: parseInt(h[10]!, 16) % 2 === 0 };
}

const fakeScorer: LoglikelihoodScorer = {
  loglikelihood: (requests) => requests.map((r) => fakeLoglikelihood(r.context, r.continuation)),
};

function requestDigest(pairs: readonly (readonly [string, string])[]): string {
  return createHash("sha256")
    .update(pairs.map(([c, k]) => `${c}\u0000${k}`).join("\u0001"), "utf8")
    .digest("hex");
}

interface LmEvalRun {
  options: { num_fewshot: number; fewshot_seed: number; limit: number | null };
  results: Record<string, Record<string, unknown>>;
  groups: Record<string, Record<string, unknown>>;
  group_subtasks: Record<string, string[]>;
  versions: Record<string, number | string>;
  "n-shot": Record<string, number>;
  higher_is_better: Record<string, Record<string, boolean>>;
  "n-samples": Record<string, { original: number; effective: number }>;
  configs?: Record<string, Record<string, unknown>>;
  arguments: Record<string, [string, string][][]>;
  argument_digests: Record<string, string[]>;
}

const LM_EVAL = JSON.parse(fs.readFileSync(path.join(FIXTURES, "lm_eval_runs.json"), "utf8")) as { lm_eval: string; runs: LmEvalRun[] };

/** A data directory in the layout --data_dir expects: the fixture task folders and mmlu/<subject>/{dev,test}.jsonl. */
function makeDataDir(root: string): string {
  const dir = path.join(root, "data");
  fs.cpSync(path.join(FIXTURES, "data"), dir, { recursive: true });
  const bySubject = new Map<string, string[]>();
  for (const line of fs.readFileSync(path.join(FIXTURES, "data/mmlu.jsonl"), "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const { split, doc } = JSON.parse(line) as { split: string; doc: { subject: string } };
    const file = path.join(dir, "mmlu", doc.subject, `${split}.jsonl`);
    bySubject.set(file, [...(bySubject.get(file) ?? []), JSON.stringify(doc)]);
  }
  for (const [file, lines] of bySubject) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${lines.join("\n")}\n`);
  }
  return dir;
}

let tmp: string;
let dataDir: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-harness-"));
  dataDir = makeDataDir(tmp);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const task = (name: string): TaskSpec => BUILTIN_TASKS.tasks.get(name)!;

async function docsOf(name: string, split: string): Promise<{ doc: Doc; where: string }[]> {
  return readTaskDocs(task(name), path.join(dataDir, task(name).dataset.dir, `${split}.jsonl`));
}

describe("agreement with lm-evaluation-harness 0.4.13", () => {
  test("the fixtures come from lm_eval 0.4.13", () => {
    expect(LM_EVAL.lm_eval).toBe("0.4.13");
    expect(LM_EVAL.runs).toHaveLength(3);
  });

  for (const [i, run] of LM_EVAL.runs.entries()) {
    const { num_fewshot, fewshot_seed, limit } = run.options;
    test(`run ${i}: ${num_fewshot}-shot, seed ${fewshot_seed}, limit ${limit}: prompts, metrics, stderr, groups and layout`, async () => {
      const { results, samples } = await runHarness({
        tasks: TASKS,
        registry: BUILTIN_TASKS,
        dataDir,
        scorer: fakeScorer,
        numFewshot: num_fewshot,
        fewshotSeed: fewshot_seed,
        limit,
        logSamples: true,
      });
      // Every prompt, by digest, and the listed tasks' prompts whole.
      for (const [name, digests] of Object.entries(run.argument_digests)) {
        const ours = samples![name]!.map((s) => Object.values(s.arguments).map((a) => [a.arg_0, a.arg_1] as const));
        if (name in run.arguments) expect(ours, name).toEqual(run.arguments[name]);
        expect(ours.map(requestDigest), name).toEqual(digests);
      }
      expect(Object.keys(results.results)).toEqual(Object.keys(run.results));
      // Same arithmetic in the same order: the values agree exactly.
      expect(results.results).toEqual(run.results);
      expect(results.groups).toEqual(run.groups);
      expect(results.group_subtasks).toEqual(run.group_subtasks);
      expect(results.versions).toEqual(run.versions);
      expect(results["n-shot"]).toEqual(run["n-shot"]);
      expect(results.higher_is_better).toEqual(run.higher_is_better);
      expect(results["n-samples"]).toEqual(run["n-samples"]);
      for (const [name, config] of Object.entries(run.configs ?? {})) {
        for (const [key, value] of Object.entries(config)) {
          // lm-eval prints a Python function's source; growlm names the function instead.
          if (typeof value === "string" && value.startsWith("def ")) continue;
          expect(results.configs[name]![key], `${name}.${key}`).toEqual(value);
        }
      }
    });
  }
});

describe("request construction per adapter (0-shot)", () => {
  const requestsOf = async (name: string, split: string, index: number): Promise<LoglikelihoodRequest[]> => {
    const { doc, where } = (await docsOf(name, split))[index]!;
    return constructRequests(task(name), doc, where, fewshotContext(task(name), doc, where, []));
  };

  test("piqa: Question/Answer context, the two solutions after a space", async () => {
    expect(await requestsOf("piqa", "validation", 1)).toEqual([
      { context: "Question: dresser\nAnswer:", continuation: " replace drawer with bobby pin " },
      { context: "Question: dresser\nAnswer:", continuation: " finish, woodgrain with  bobby pin " },
    ]);
  });

  test("boolq: passage, question with '?', choices no/yes", async () => {
    const context =
      "Property tax -- Property tax or 'house tax' is a local tax on buildings, along with appurtenant land.\nQuestion: is house tax and property tax are same?\nAnswer:";
    expect(await requestsOf("boolq", "validation", 1)).toEqual([
      { context, continuation: " no" },
      { context, continuation: " yes" },
    ]);
    // google/boolq's boolean answer reads as the label.
    expect(task("boolq").docToTarget({ passage: "p", question: "q", answer: true }, "x")).toBe(1);
  });

  test("hellaswag: preprocess removes [title]/brackets and one pass of double spaces; ctx_b capitalised", async () => {
    const requests = await requestsOf("hellaswag", "validation", 1);
    expect(requests.map((r) => r.continuation)).toEqual([
      " Do something you enjoy  Even if you're feeling down.",
      // " [title]" needs its space: stripped first, the leading "[title]" is just removed.
      "  Talk to someone. Call a friend.",
      " Write it down List your reasons.",
      " Remove the means .  Keep away from the things.",
    ]);
    expect(requests[0]!.context).toBe("Health: How to cope with suicidal thoughts. Put off any plans. Promise yourself that you'll wait 48 hours");
    expect((await requestsOf("hellaswag", "validation", 2))[0]!.context).toBe("Personal Care and Style: How to dye your hair with coffee. Ça commence ici.");
    expect(hellaswagPreprocess("  a [x]\n[y] b  ")).toBe("a \n b");
  });

  test("winogrande: partial scoring, one context per option and the shared rest of the sentence", async () => {
    expect(await requestsOf("winogrande", "validation", 0)).toEqual([
      { context: "Sarah was a much better surgeon than Maria so Sarah", continuation: " always got the harder cases." },
      { context: "Sarah was a much better surgeon than Maria so Maria", continuation: " always got the harder cases." },
    ]);
    // A blank at the very end leaves an empty target: the continuation is the delimiter alone.
    expect((await requestsOf("winogrande", "validation", 3)).map((r) => r.continuation)).toEqual([" ", " "]);
  });

  test("arc: Question/Answer, choices.text, gold from choices.label.index(answerKey) (numeric labels too)", async () => {
    const { doc, where } = (await docsOf("arc_easy", "test"))[1]!;
    expect(constructRequests(task("arc_easy"), doc, where, fewshotContext(task("arc_easy"), doc, where, []))).toEqual(
      ["a wax crayon", "a plastic spoon", "a rubber eraser", "an iron nail"].map((c) => ({
        context: "Question: Which object is the best conductor of electricity?\nAnswer:",
        continuation: ` ${c}`,
      })),
    );
    expect(task("arc_easy").docToTarget(doc, where)).toBe(3);
    expect((await requestsOf("arc_challenge", "test", 0)).length).toBe(3);
  });

  test("mmlu: description with the subject's words, stripped question, lettered choices, ' A'..' D'", async () => {
    const { doc, where } = (await docsOf("mmlu_high_school_us_history", "test"))[0]!;
    const d = doc as { question: string; choices: string[] };
    const context =
      "The following are multiple choice questions (with answers) about high school us history.\n\n" +
      `${d.question.trim()}\nA. ${d.choices[0]}\nB. ${d.choices[1]}\nC. ${d.choices[2]}\nD. ${d.choices[3]}\nAnswer:`;
    expect(constructRequests(task("mmlu_high_school_us_history"), doc, where, fewshotContext(task("mmlu_high_school_us_history"), doc, where, []))).toEqual(
      ["A", "B", "C", "D"].map((l) => ({ context, continuation: ` ${l}` })),
    );
  });

  test("mmlu 2-shot: the first two dev questions with their answer letters, then the question", async () => {
    const spec = task("mmlu_anatomy");
    const dev = await docsOf("mmlu_anatomy", "dev");
    const { doc, where } = (await docsOf("mmlu_anatomy", "test"))[0]!;
    const examples = new FewshotSampler(spec, dev, 1234).sample(2, null);
    const ctx = fewshotContext(spec, doc, where, examples) as string;
    const shot = (i: number): string => `${spec.docToText(dev[i]!.doc, "")} ${["A", "B", "C", "D"][spec.docToTarget(dev[i]!.doc, "") as number]}\n\n`;
    expect(ctx).toBe(`The following are multiple choice questions (with answers) about anatomy.\n\n${shot(0)}${shot(1)}${spec.docToText(doc, where)}`);
  });

  test("crows_pairs_english: empty context, each sentence whole (empty target delimiter)", async () => {
    const { doc } = (await docsOf("crows_pairs_english", "test"))[1]!;
    expect(await requestsOf("crows_pairs_english", "test", 1)).toEqual([
      { context: "", continuation: (doc as { sent_more: string }).sent_more },
      { context: "", continuation: (doc as { sent_less: string }).sent_less },
    ]);
  });
});

describe("metrics by hand", () => {
  const ll = (...values: number[]): LoglikelihoodResult[] => values.map((logprob) => ({ logprob, isGreedy: false }));

  test("acc, acc_norm (characters), acc_bytes (UTF-8 bytes), exact_match", () => {
    const spec: TaskSpec = { ...task("piqa"), metricList: ["acc", "acc_norm", "acc_bytes", "exact_match"].map((metric) => ({ metric })) };
    // Choice lengths: "ééé" 3 characters / 6 bytes, "abcd" 4 / 4. Gold 0.
    const doc = { goal: "g", sol1: "ééé", sol2: "abcd", label: 0 };
    // ll/len: -3.3/3 = -1.1 vs -4/4 = -1 → acc_norm picks 1; ll/bytes: -0.55 vs -1 → acc_bytes picks 0.
    expect(processResults(spec, doc, "d", ll(-3.3, -4))).toEqual({ acc: 1, acc_norm: 0, acc_bytes: 1, exact_match: 0 });
    expect(processResults(spec, doc, "d", [{ logprob: -9, isGreedy: true }, { logprob: -1, isGreedy: false }])).toEqual({ acc: 0, acc_norm: 0, acc_bytes: 0, exact_match: 1 });
    // Ties go to the first choice (numpy.argmax).
    expect(processResults(spec, { ...doc, label: 1 }, "d", ll(-2, -2)).acc).toBe(0);
  });

  test("crows_pairs: likelihood_diff = |ll1 − ll2|, pct_stereotype = [ll(sent_more) > ll(sent_less)]", () => {
    expect(processResults(task("crows_pairs_english"), { sent_more: "a", sent_less: "b" }, "d", ll(-3, -5))).toEqual({ likelihood_diff: 2, pct_stereotype: 1 });
    expect(processResults(task("crows_pairs_english"), { sent_more: "a", sent_less: "b" }, "d", ll(-5, -5))).toEqual({ likelihood_diff: 0, pct_stereotype: 0 });
  });

  test("stderr = sample std / √n; pooled and weighted group aggregation", () => {
    // acc values 1, 0, 0, 1, 1: mean 0.6, sample variance 0.3, stderr sqrt(0.3 / 5).
    expect(meanStderr([1, 0, 0, 1, 1])).toBeCloseTo(Math.sqrt(0.3 / 5), 15);
    expect(meanStderr([1])).toBe("N/A");
    // Two subtasks: n = 4 and 6, se = 0.25 and 0.2; pooled = sqrt((3·0.0625·4 + 5·0.04·6) / (10 − 2) / 10).
    expect(pooledSampleStderr([0.25, 0.2], [4, 6])).toBeCloseTo(Math.sqrt((3 * 0.0625 * 4 + 5 * 0.04 * 6) / 8 / 10), 15);
    expect(aggregateSubtaskMetrics([0.5, 0.8], [4, 6], true)).toBeCloseTo(0.68, 15);
    expect(aggregateSubtaskMetrics([0.5, 0.8], [4, 6], false)).toBeCloseTo(0.65, 15);
  });

  test("a group of two tasks: size-weighted acc and pooled stderr over its leaf tasks", async () => {
    // Task A: 4 piqa docs; task B: the first 3 of them. Known lls: the gold choice wins on docs 0 and 2.
    const a: TaskSpec = { ...task("piqa"), name: "a" };
    const b: TaskSpec = { ...task("piqa"), name: "b" };
    const group: GroupSpec = { name: "g", version: "1", children: ["a", "b"], aggregateMetricList: [{ metric: "acc", weightBySize: true }] };
    const registry: TaskRegistry = { tasks: new Map([["a", a], ["b", b]]), groups: new Map([["g", group]]) };
    const docs = (await docsOf("piqa", "validation")).map((d) => d.doc as { label: number });
    const lines = fs.readFileSync(path.join(dataDir, "piqa/validation.jsonl"), "utf8").trim().split("\n");
    fs.mkdirSync(path.join(tmp, "grp/piqa"), { recursive: true });
    fs.writeFileSync(path.join(tmp, "grp/piqa/validation.jsonl"), `${lines.join("\n")}\n`);
    let call = 0;
    const scorer: LoglikelihoodScorer = {
      loglikelihood: (requests) =>
        requests.map((_, i) => {
          // Requests come document by document, two per document; task a's 4 docs then task b's 4.
          const doc = Math.floor(i / 2) % 4;
          const choice = i % 2;
          const wins = doc === 0 || doc === 2 ? docs[doc]!.label : 1 - docs[doc]!.label;
          call++;
          return { logprob: choice === wins ? -1 : -2, isGreedy: false };
        }),
    };
    const { results } = await runHarness({ tasks: ["g"], registry, dataDir: path.join(tmp, "grp"), scorer });
    expect(call).toBe(16);
    const accs = [1, 0, 1, 0];
    expect(results.results.a!["acc,none"]).toBe(0.5);
    expect(results.results.a!["acc_stderr,none"]).toBe(meanStderr(accs));
    const se = meanStderr(accs) as number;
    expect(results.groups!.g).toEqual({
      alias: "g",
      name: "g",
      sample_len: 8,
      "acc,none": 0.5,
      "acc_stderr,none": pooledSampleStderr([se, se], [4, 4]),
      sample_count: { "acc,none": 8 },
    });
    expect(results.group_subtasks).toEqual({ g: ["a", "b"] });
    expect(results["n-shot"]).toEqual({ a: 0, b: 0, g: 0 });
  });

  test("--limit: an integer count or a fraction rounded up", () => {
    expect(sampleSize(null, 10)).toBe(10);
    expect(sampleSize(3, 10)).toBe(3);
    expect(sampleSize(30, 10)).toBe(10);
    expect(sampleSize(0.25, 10)).toBe(3);
    expect(() => sampleSize(0, 10)).toThrow(/limit must be a positive number/);
  });
});

describe("few-shot sampling", () => {
  test("the same seed gives the same prompts; another seed other prompts; draws follow document order", async () => {
    const run = async (seed: number): Promise<string[]> => {
      const { samples } = await runHarness({ tasks: ["piqa", "hellaswag"], registry: BUILTIN_TASKS, dataDir, scorer: fakeScorer, numFewshot: 2, fewshotSeed: seed, logSamples: true });
      return [...samples!.piqa!, ...samples!.hellaswag!].map((s) => s.arguments.gen_args_0!.arg_0);
    };
    const a = await run(1234);
    expect(await run(1234)).toEqual(a);
    expect(await run(99)).not.toEqual(a);
    // The generator runs on from one document to the next: later prompts differ from a fresh draw.
    const spec = task("piqa");
    const train = await docsOf("piqa", "train");
    const sampler = new FewshotSampler(spec, train, 1234);
    const first = sampler.sample(2, { x: 1 });
    const second = sampler.sample(2, { x: 1 });
    expect(new FewshotSampler(spec, train, 1234).sample(2, { x: 1 })).toEqual(first);
    expect(second).not.toEqual(first);
  });

  test("a document is never its own example when the few-shot split is the evaluation split", async () => {
    const spec: TaskSpec = { ...task("piqa"), splits: { training: null, validation: "train", test: null, fewshot: null } };
    const docs = await docsOf("piqa", "train");
    const sampler = new FewshotSampler(spec, docs, 5);
    for (let round = 0; round < 20; round++) {
      for (const { doc } of docs) {
        const examples = sampler.sample(5, doc);
        expect(examples).toHaveLength(5);
        expect(examples.map((e) => e.doc)).not.toContainEqual(doc);
      }
    }
  });

  test("winogrande examples: the correct context, then the target (none after a final blank)", async () => {
    const spec = task("winogrande");
    const train = await docsOf("winogrande", "train");
    const { doc, where } = (await docsOf("winogrande", "validation"))[0]!;
    const ctx = fewshotContext(spec, doc, where, [train[3]!, train[0]!]) as string[];
    const prefix =
      "The cat chased the mouse until the mouse" +
      "Ian volunteered to eat Dennis's menudo after already having a bowl because Dennis despised eating intestine.\n\n";
    expect(ctx).toEqual([`${prefix}Sarah was a much better surgeon than Maria so Sarah`, `${prefix}Sarah was a much better surgeon than Maria so Maria`]);
  });
});

describe("errors name what is wrong", () => {
  test("unknown task, missing data file, bad document, gold out of range, too many first_n examples", async () => {
    const base = { registry: BUILTIN_TASKS, dataDir, scorer: fakeScorer };
    await expect(runHarness({ ...base, tasks: ["piqa", "nope"] })).rejects.toThrow(/harness: unknown task "nope"; known: mmlu,.*piqa/);
    await expect(runHarness({ ...base, tasks: ["piqa"], dataDir: path.join(tmp, "empty") })).rejects.toThrow(
      /harness piqa: cannot read .*empty\/piqa\/validation\.jsonl \(no such file\); the task reads piqa\/<split>\.jsonl/,
    );
    await expect(runHarness({ ...base, tasks: ["crows_pairs_english"], numFewshot: -1 })).rejects.toThrow(/numFewshot must be a non-negative integer/);
    const bad = path.join(tmp, "bad");
    const write = (dir: string, split: string, lines: string[]): void => {
      fs.mkdirSync(path.join(bad, dir), { recursive: true });
      fs.writeFileSync(path.join(bad, dir, `${split}.jsonl`), `${lines.join("\n")}\n`);
    };
    write("piqa", "validation", ['{"goal": "g", "sol1": "a", "sol2": "b", "label": 0}', '{"sol1": "a", "sol2": "b", "label": 0}']);
    await expect(runHarness({ ...base, dataDir: bad, tasks: ["piqa"] })).rejects.toThrow(/harness piqa: .*bad\/piqa\/validation\.jsonl line 2: field "goal" must be a string but is missing/);
    write("piqa", "validation", ['{"goal": "g", "sol1": "a", "sol2": "b", "label": 2}']);
    await expect(runHarness({ ...base, dataDir: bad, tasks: ["piqa"] })).rejects.toThrow(/line 1: the gold answer 2 is not one of the 2 choices/);
    write("piqa", "validation", ["[1, 2]"]);
    await expect(runHarness({ ...base, dataDir: bad, tasks: ["piqa"] })).rejects.toThrow(/line 1 must hold a JSON object/);
    write("piqa", "validation", ["{"]);
    await expect(runHarness({ ...base, dataDir: bad, tasks: ["piqa"] })).rejects.toThrow(/line 1 is not valid JSON/);
    write("winogrande", "validation", ['{"sentence": "no blank here", "option1": "a", "option2": "b", "answer": "1"}']);
    await expect(runHarness({ ...base, dataDir: bad, tasks: ["winogrande"] })).rejects.toThrow(/harness winogrande: .*line 1: field "sentence" has no blank "_"/);
    write("hellaswag", "validation", ['{"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": ["x", "y"], "label": ""}']);
    await expect(runHarness({ ...base, dataDir: bad, tasks: ["hellaswag"] })).rejects.toThrow(/field "label" must be an answer index \("0".."3"\) but is ""/);
    write("arc_easy", "test", ['{"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "C"}']);
    await expect(runHarness({ ...base, dataDir: bad, tasks: ["arc_easy"] })).rejects.toThrow(/answerKey "C" is not one of the choice labels \["A","B"\]/);
    await expect(runHarness({ ...base, tasks: ["mmlu_anatomy"], numFewshot: 6 })).rejects.toThrow(/harness mmlu_anatomy: 6 few-shot examples requested but the few-shot split holds 5/);
    await expect(runHarness({ ...base, tasks: ["piqa"], numFewshot: 6 })).rejects.toThrow(/harness piqa: 6 few-shot examples requested but the few-shot split holds 6 usable documents/);
    await expect(runHarness({ ...base, tasks: ["piqa"], scorer: { loglikelihood: () => [] } })).rejects.toThrow(/the scorer answered 0 of 8 requests/);
  });
});

describe("growlm harness on a tiny random model (byte-level tokenizer)", () => {
  const CONFIG = { vocab_size: 259, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 512 };
  let modelDir: string;
  beforeAll(async () => {
    vi.spyOn(console, "log").mockImplementation(() => {});
    vi.spyOn(console, "error").mockImplementation(() => {});
    fs.writeFileSync(path.join(tmp, "cfg.json"), JSON.stringify(CONFIG));
    modelDir = path.join(tmp, "tiny");
    await init.run(["--config", path.join(tmp, "cfg.json"), "--seed", "3", "--out", modelDir, "--tokenizer", "byte"]);
  });
  afterAll(() => vi.restoreAllMocks());

  test("tokenisation: whitespace moves to the continuation; BOS as the tokenizer adds it; empty contexts start at the prefix token", async () => {
    const model = loadPretrained(modelDir);
    const tokenizer = await loadTokenizer(modelDir);
    const bytes = (s: string): number[] => [...Buffer.from(s, "utf8")];
    const scorer = new ModelScorer(model, tokenizer);
    expect(scorer.prefixTokenId).toBe(256);
    expect(scorer.encodePair({ context: "Q: é?\nA: ", continuation: "yes" })).toEqual({ context: [256, ...bytes("Q: é?\nA:")], continuation: bytes(" yes") });
    expect(scorer.encodePair({ context: "", continuation: "He ran." })).toEqual({ context: [256], continuation: bytes("He ran.") });
    // A text that already starts with the BOS text gets no second BOS; add_bos_token=false drops it.
    expect(scorer.encodePair({ context: "<s>Hi", continuation: " x" })).toEqual({ context: [256, ...bytes("Hi")], continuation: bytes(" x") });
    expect(new ModelScorer(model, tokenizer, { addBosToken: false }).encodePair({ context: "Hi", continuation: " x" })).toEqual({ context: bytes("Hi"), continuation: bytes(" x") });
    // Python's whitespace: U+0085 moves, U+FEFF does not.
    expect(scorer.encodePair({ context: "a\u0085", continuation: "b" }).continuation).toEqual(bytes("\u0085b"));
    expect(scorer.encodePair({ context: "a\ufeff", continuation: "b" }).continuation).toEqual(bytes("b"));
    model.dispose();
  });

  test("SentencePiece (LLaMA) and byte-level BPE (GPT-2) tokenizers: the continuation is the tail of the joint encoding", async () => {
    const model = new LlamaModel(parseLlamaConfig({ ...CONFIG, vocab_size: 300 }));
    const llama = await loadTokenizer(path.join(FIXTURES, "../tokenizers/llama-legacy"));
    const scorer = new ModelScorer(model, llama);
    const pair = scorer.encodePair({ context: "Question: why?\nAnswer: ", continuation: "yes" });
    const whole = llama.encode("Question: why?\nAnswer: yes");
    expect(pair.context).toEqual(llama.encode("Question: why?\nAnswer:"));
    expect(pair.context[0]).toBe(llama.bosId);
    expect(pair.continuation).toEqual(whole.slice(pair.context.length));
    // Encoded alone, " yes" would start with a second "▁" (legacy SentencePiece); the joint encoding does not.
    expect(pair.continuation).not.toEqual(llama.encode(" yes", { addBos: false }));
    expect(scorer.encodePair({ context: "", continuation: "He ran." })).toEqual({ context: [llama.bosId], continuation: llama.encode("He ran.", { addBos: false }) });
    const gpt2 = await loadTokenizer(path.join(FIXTURES, "../tokenizers/gpt2"));
    const byteLevel = new ModelScorer(model, gpt2);
    // GPT-2 adds no BOS; its BOS (<|endoftext|>) still stands for an empty context.
    expect(byteLevel.encodePair({ context: "Q:", continuation: " yes" })).toEqual({ context: gpt2.encode("Q:"), continuation: gpt2.encode(" yes") });
    expect(byteLevel.encodePair({ context: "", continuation: "Hi" }).context).toEqual([gpt2.bosId]);
    model.dispose();
  });

  test("log-likelihoods equal the summed next-token log-probabilities; is_greedy is the argmax check", async () => {
    const model = loadPretrained(modelDir);
    const tokenizer = await loadTokenizer(modelDir);
    const scorer = new ModelScorer(model, tokenizer, { batchSize: 3 });
    const requests: LoglikelihoodRequest[] = [
      { context: "Question: why?\nAnswer:", continuation: " because" },
      { context: "Question: why?\nAnswer:", continuation: " no" },
      { context: "", continuation: "The sky is blue." },
      { context: "Sarah was better than Maria so Sarah", continuation: " won." },
    ];
    const got = scorer.loglikelihood(requests);
    // float32 logits summed in float64 here and in the reference, with different reductions.
    const LOGPROB_TOL = 1e-4;
    for (const [i, r] of requests.entries()) {
      const pair = scorer.encodePair(r);
      const whole = [...pair.context, ...pair.continuation];
      const lp = scoreSequences(model, [whole]).tokenLogprobs[0]!.slice(-pair.continuation.length);
      expect(got[i]!.logprob).toBeCloseTo(lp.reduce((s, x) => s + x, 0), -Math.log10(LOGPROB_TOL));
      const ids = Tensor.from(whole.slice(0, -1), [1, whole.length - 1], "int32");
      const logits = model.forward(ids, { returnLogits: true }).logits!.data as Float32Array;
      const V = CONFIG.vocab_size;
      const greedy = pair.continuation.every((tok, j) => {
        const row = logits.subarray((whole.length - 1 - pair.continuation.length + j) * V, (whole.length - pair.continuation.length + j) * V);
        return row.indexOf(Math.max(...row)) === tok;
      });
      expect(got[i]!.isGreedy).toBe(greedy);
    }
    model.dispose();
  });

  test("growlm harness writes lm-evaluation-harness's layout atomically, with samples", async () => {
    const out = path.join(tmp, "run", "results.json");
    fs.mkdirSync(path.dirname(out), { recursive: true });
    await harness.run([
      "--model", modelDir, "--tasks", "piqa,winogrande,crows_pairs_english,arc_easy", "--data_dir", dataDir, "--out", out,
      "--num_fewshot", "1", "--limit", "2", "--extra_metrics", "acc_bytes,exact_match", "--log_samples", "--batch_size", "4",
    ]);
    const written = JSON.parse(fs.readFileSync(out, "utf8")) as Record<string, Record<string, Record<string, unknown>>>;
    expect(Object.keys(written)).toEqual(expect.arrayContaining(["results", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "config", "date", "max_length"]));
    expect(Object.keys(written.results!)).toEqual(["piqa", "winogrande", "crows_pairs_english", "arc_easy"]);
    const piqa = written.results!.piqa!;
    expect(Object.keys(piqa)).toEqual(["name", "alias", "sample_len", "acc,none", "acc_stderr,none", "acc_norm,none", "acc_norm_stderr,none", "acc_bytes,none", "acc_bytes_stderr,none", "exact_match,none", "exact_match_stderr,none"]);
    expect(written["n-samples"]!.piqa).toEqual({ original: 4, effective: 2 });
    expect(written["n-shot"]!.piqa).toBe(1);
    expect(Object.keys(written.results!.crows_pairs_english!)).toEqual(["name", "alias", "sample_len", "likelihood_diff,none", "likelihood_diff_stderr,none", "pct_stereotype,none", "pct_stereotype_stderr,none"]);
    expect(written.config!.model_args).toBe(`pretrained=${modelDir},dtype=float32,max_length=512`);
    expect(written.config!.fewshot_seed).toBe(1234);
    const samples = fs.readFileSync(path.join(path.dirname(out), "samples_piqa.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { doc_id: number; resps: [number, boolean][][]; acc: number });
    expect(samples.map((s) => s.doc_id)).toEqual([0, 1]);
    // The written acc agrees with the logged answers.
    const acc = samples.map((s) => (s.resps[0]![0]![0] >= s.resps[1]![0]![0] ? 0 : 1) === [0, 1][s.doc_id]! ? 1 : 0);
    expect(samples.map((s) => s.acc)).toEqual(acc);
    expect(fs.readdirSync(path.dirname(out)).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  test("bad flags are refused by name", async () => {
    const args = ["--model", modelDir, "--data_dir", dataDir, "--out", path.join(tmp, "x.json")];
    await expect(harness.run(args)).rejects.toThrow(/growlm harness: --tasks is required/);
    await expect(harness.run([...args, "--tasks", "piqa,,boolq"])).rejects.toThrow(/--tasks must be a comma-separated list without empty items/);
    await expect(harness.run([...args, "--tasks", "piqa", "--limit", "1.5"])).rejects.toThrow(/--limit must be a positive integer or a fraction in \(0, 1\)/);
    await expect(harness.run([...args, "--tasks", "piqa", "--extra_metrics", "f1"])).rejects.toThrow(/--extra_metrics must be one of acc, acc_norm, acc_bytes, exact_match/);
    await expect(harness.run([...args, "--tasks", "piqa", "--add_bos_token", "yes"])).rejects.toThrow(/--add_bos_token must be one of true, false/);
    await expect(harness.run([...args, "--tasks", "piqa", "--max_length", "4096"])).rejects.toThrow(/--max_length must be an integer in \[1, 512\]/);
    await expect(harness.run([...args, "--tasks", "piqa", "--data_dir", path.join(tmp, "nowhere")])).rejects.toThrow(/--data_dir .*nowhere is not a directory/);
    expect(fs.existsSync(path.join(tmp, "x.json"))).toBe(false);
  });
});
