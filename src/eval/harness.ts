/**
 * Multiple-choice benchmarks scored by log-likelihood, as lm-evaluation-harness 0.4.13 scores
 * them (api/task.py ConfigurableTask, api/samplers.py, api/metrics.py, api/group.py,
 * evaluator_utils.py), so that growlm's numbers can be set beside published ones.
 *
 * A task is a small spec (TaskSpec): how a document becomes a context (docToText), its answer
 * choices (docToChoice) and its gold answer (docToTarget), with the delimiters, description
 * and metrics of the task's YAML. Each document yields one (context, continuation) request per
 * choice, continuation = target_delimiter + choice; in multiple-input mode (Winogrande's
 * partial scoring) each choice is a context and the continuation is shared. Few-shot
 * examples come from the task's few-shot split, drawn with CPython's Random(seed).sample, one
 * generator per task consumed document after document. A LoglikelihoodScorer answers the
 * requests (ModelScorer in model-scorer.ts runs a growlm model; tests inject known values).
 *
 * Per document: acc = [argmax ll == gold], acc_norm divides each ll by the choice's length in
 * code points, acc_bytes by its UTF-8 bytes, exact_match = is_greedy[gold]. Per task: means
 * with stderr = sample std (n − 1) / √n. Per group (mmlu): the size-weighted mean over its
 * leaf tasks and the pooled stderr sqrt(Σ(n_i−1)·se_i²·n_i / (Σn_i − k) / Σn_i).
 * The results object has lm-evaluation-harness's layout (results, groups, group_subtasks,
 * configs, versions, n-shot, higher_is_better, n-samples).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";

import { GrowlmError } from "../errors.js";
import { PythonRandom } from "./python-random.js";
import { pythonLen } from "./python-str.js";

/** One dataset document: a JSON object from a JSONL line (after the task's processDoc). */
export type Doc = Readonly<Record<string, unknown>>;

/** A document and where it came from ("DIR/piqa/validation.jsonl line 12"), for messages. */
export interface SourcedDoc {
  doc: Doc;
  where: string;
}

/** lm-evaluation-harness's loglikelihood request: score `continuation` after `context`. */
export interface LoglikelihoodRequest {
  context: string;
  continuation: string;
}

/** The answer to a request: Σ log p of the continuation's tokens (nats) and whether greedy decoding would produce it. */
export interface LoglikelihoodResult {
  logprob: number;
  isGreedy: boolean;
}

/** Whatever answers loglikelihood requests: a model (ModelScorer) or, in tests, known values. */
export interface LoglikelihoodScorer {
  loglikelihood(requests: readonly LoglikelihoodRequest[]): LoglikelihoodResult[] | Promise<LoglikelihoodResult[]>;
}

/** The metrics a multiple-choice document yields without a custom processResults. */
export const MULTIPLE_CHOICE_METRICS = ["acc", "acc_norm", "acc_bytes", "exact_match"] as const;
export type MultipleChoiceMetric = (typeof MULTIPLE_CHOICE_METRICS)[number];

/** One entry of a task YAML's metric_list (every metric here aggregates by mean). */
export interface MetricConfig {
  metric: string;
  aggregation?: "mean";
  higher_is_better?: boolean;
}

/** Template fields of a task YAML, printed as they are in the results' configs. */
export interface TaskConfigFields {
  tag?: string | readonly string[];
  doc_to_text: string;
  doc_to_target: string | number;
  doc_to_choice: string | readonly string[];
  process_docs?: string;
  process_results?: string;
  should_decontaminate?: boolean;
  doc_to_decontamination_query?: string;
}

/** A multiple-choice task: lm-evaluation-harness's TaskConfig for output_type multiple_choice. */
export interface TaskSpec {
  /** The task's name ("piqa", "mmlu_anatomy"). */
  readonly name: string;
  /** task_alias: the name the results show (default: name). */
  readonly alias?: string;
  /** metadata.version of the task's YAML. */
  readonly version: number;
  /**
   * path/name: the Hugging Face dataset (recorded in configs); dir: the folder under the data
   * directory that holds one `<split>.jsonl` per split.
   */
  readonly dataset: { readonly path: string; readonly name: string | null; readonly dir: string };
  /** Split names (null where the YAML has none). Evaluation uses test, else validation. */
  readonly splits: { readonly training: string | null; readonly validation: string | null; readonly test: string | null; readonly fewshot: string | null };
  /** "default": Random(seed).sample; "first_n": the first k few-shot documents in order. */
  readonly fewshotSampler: "default" | "first_n";
  /** process_docs, applied to every document of every split (HF datasets' map: its fields are added to the document's). */
  readonly processDoc?: (doc: Doc, where: string) => Doc;
  /** Multiple-input mode: docToText gives the gold index, docToChoice the contexts, docToTarget the shared continuation. */
  readonly multipleInputs: boolean;
  readonly docToText: (doc: Doc, where: string) => string | number;
  readonly docToChoice: (doc: Doc, where: string) => string[];
  /** The gold answer: an index into the choices, or a choice's text (the continuation in multiple-input mode). */
  readonly docToTarget: (doc: Doc, where: string) => string | number;
  /** Text before the few-shot examples (a system prompt without a delimiter after it). */
  readonly description: string;
  readonly targetDelimiter: string;
  readonly fewshotDelimiter: string;
  readonly metricList: readonly MetricConfig[];
  /** A custom process_results (crows_pairs); by default the multiple-choice metrics of metricList. */
  readonly processResults?: (doc: Doc, results: readonly LoglikelihoodResult[], where: string) => Record<string, number>;
  readonly config: TaskConfigFields;
}

/** A group of tasks whose metrics are aggregated over its leaf tasks (lm-evaluation-harness's Group). */
export interface GroupSpec {
  readonly name: string;
  /** group_alias (default: name). */
  readonly alias?: string;
  /** metadata.version as lm-evaluation-harness prints a group's (a string: "2"). */
  readonly version: string;
  /** Task or group names. */
  readonly children: readonly string[];
  readonly aggregateMetricList: readonly { readonly metric: string; readonly weightBySize: boolean }[];
}

/** The tasks and groups `--tasks` names resolve against. */
export interface TaskRegistry {
  readonly tasks: ReadonlyMap<string, TaskSpec>;
  readonly groups: ReadonlyMap<string, GroupSpec>;
}

const OP = "harness";

function taskError(task: string, message: string): GrowlmError {
  return new GrowlmError(`${OP} ${task}`, message);
}

/**
 * Whether two JSON values are equal as Python compares them (dict equality: same keys, equal
 * values; True == 1). The few-shot sampler drops the documents equal to the one evaluated.
 */
export function pythonEqual(a: unknown, b: unknown): boolean {
  if (typeof a === "boolean" && typeof b === "number") return Number(a) === b;
  if (typeof a === "number" && typeof b === "boolean") return a === Number(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => pythonEqual(x, b[i]));
  }
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    const bo = b as Record<string, unknown>;
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(bo, k) && pythonEqual((a as Record<string, unknown>)[k], bo[k]));
  }
  return a === b;
}

/**
 * The documents of `file` (one JSON object a line; blank lines skipped), each passed through
 * the task's processDoc. A missing file or a line that is not an object is an error naming
 * the file and line.
 */
export async function readTaskDocs(spec: TaskSpec, file: string): Promise<SourcedDoc[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message;
    throw taskError(spec.name, `cannot read ${file} (${reason}); the task reads ${spec.dataset.dir}/<split>.jsonl under the data directory, the splits of ${spec.dataset.path}${spec.dataset.name ? ` (${spec.dataset.name})` : ""}`);
  }
  const docs: SourcedDoc[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${file} line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw taskError(spec.name, `${where} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw taskError(spec.name, `${where} must hold a JSON object`);
    const doc = value as Doc;
    docs.push({ doc: spec.processDoc ? { ...doc, ...spec.processDoc(doc, where) } : doc, where });
  });
  return docs;
}

/** The split a task is evaluated on: test if it has one, else validation. */
export function evaluationSplit(spec: TaskSpec): string {
  const split = spec.splits.test ?? spec.splits.validation;
  if (split === null) throw taskError(spec.name, "the task has neither a test nor a validation split");
  return split;
}

/** The split few-shot examples come from: fewshot_split, else training, validation, test (lm-evaluation-harness's fewshot_docs). */
export function fewshotSplit(spec: TaskSpec): string {
  const split = spec.splits.fewshot ?? spec.splits.training ?? spec.splits.validation ?? spec.splits.test;
  if (split === null) throw taskError(spec.name, "the task has no split to draw few-shot examples from");
  return split;
}

/**
 * lm-evaluation-harness's few-shot samplers over one task's few-shot documents. "default"
 * draws with CPython's Random(seed).sample and, when it must exclude the evaluated document,
 * draws k + 1, removes every copy of that document and keeps the first k (resampling from the
 * pool without it if duplicates left fewer); "first_n" takes the first k.
 */
export class FewshotSampler {
  readonly #random: PythonRandom;

  constructor(
    readonly spec: TaskSpec,
    readonly docs: readonly SourcedDoc[],
    seed: number,
  ) {
    this.#random = new PythonRandom(seed);
  }

  /** k examples for `evalDoc` (excluded when not null). */
  sample(k: number, evalDoc: Doc | null): SourcedDoc[] {
    if (this.spec.fewshotSampler === "first_n") {
      const pool = evalDoc === null ? this.docs : this.docs.filter((d) => !pythonEqual(d.doc, evalDoc));
      if (k > pool.length) throw taskError(this.spec.name, `${k} few-shot examples requested but the few-shot split holds ${pool.length}`);
      return pool.slice(0, k);
    }
    if (k === 0) return [];
    if (this.docs.length === 0) throw taskError(this.spec.name, "the few-shot split holds no documents");
    const draw = (pool: readonly SourcedDoc[], n: number): SourcedDoc[] => {
      if (n > pool.length) throw taskError(this.spec.name, `${k} few-shot examples requested but the few-shot split holds ${pool.length} usable documents`);
      return this.#random.sample(pool, n);
    };
    if (evalDoc === null) return draw(this.docs, k);
    const drawn = draw(this.docs, k + 1)
      .filter((d) => !pythonEqual(d.doc, evalDoc))
      .slice(0, k);
    if (drawn.length === k) return drawn;
    return draw(
      this.docs.filter((d) => !pythonEqual(d.doc, evalDoc)),
      k,
    );
  }
}

/** docToText as a string (a context), with the error lm-evaluation-harness asserts. */
function textOf(spec: TaskSpec, value: string | number, where: string): string {
  if (typeof value !== "string") throw taskError(spec.name, `${where}: doc_to_text gave ${JSON.stringify(value)} where a string context is needed`);
  return value;
}

/** The gold index of a document (lm-evaluation-harness's process_results), checked against the choices. */
export function goldIndex(spec: TaskSpec, doc: Doc, where: string, choices: readonly string[]): number {
  const gold = spec.multipleInputs ? spec.docToText(doc, where) : spec.docToTarget(doc, where);
  const index = typeof gold === "number" ? gold : choices.indexOf(gold);
  if (!Number.isInteger(index) || index < 0 || index >= choices.length) {
    throw taskError(spec.name, `${where}: the gold answer ${JSON.stringify(gold)} is not one of the ${choices.length} choices ${JSON.stringify(choices)}`);
  }
  return index;
}

/**
 * The prompt of a document (ConfigurableTask.fewshot_context, plain text): the description,
 * then each example as docToText + target_delimiter + answer + fewshot_delimiter, then the
 * document's docToText. In multiple-input mode, one context per choice (description,
 * examples, choice) and an example's text is its correct choice.
 */
export function fewshotContext(spec: TaskSpec, doc: Doc, where: string, examples: readonly SourcedDoc[]): string | string[] {
  let prefix = spec.description;
  for (const example of examples) {
    let q = spec.docToText(example.doc, example.where);
    let choices: string[] | null = spec.docToChoice(example.doc, example.where);
    const answer = spec.docToTarget(example.doc, example.where);
    if (spec.multipleInputs) {
      if (typeof q !== "number" || q < 0 || q >= choices.length) {
        throw taskError(spec.name, `${example.where}: doc_to_text gave ${JSON.stringify(q)}, not an index into the ${choices.length} contexts`);
      }
      q = choices[q]!;
      choices = null;
    }
    const text = textOf(spec, q, example.where);
    if (answer === "") {
      prefix += text;
      continue;
    }
    let answerText: string;
    if (typeof answer === "number") {
      if (choices === null || answer < 0 || answer >= choices.length) {
        throw taskError(spec.name, `${example.where}: doc_to_target gave ${answer}, not an index into the choices ${JSON.stringify(choices)}`);
      }
      answerText = choices[answer]!;
    } else {
      answerText = answer;
    }
    prefix += text + spec.targetDelimiter + answerText + spec.fewshotDelimiter;
  }
  if (spec.multipleInputs) return spec.docToChoice(doc, where).map((context) => prefix + context);
  return prefix + textOf(spec, spec.docToText(doc, where), where);
}

/** The requests of a document (ConfigurableTask.construct_requests for multiple_choice), in choice order. */
export function constructRequests(spec: TaskSpec, doc: Doc, where: string, context: string | string[]): LoglikelihoodRequest[] {
  if (spec.multipleInputs) {
    if (!Array.isArray(context)) throw taskError(spec.name, `${where}: a multiple-input task needs one context per choice`);
    const target = spec.docToTarget(doc, where);
    return context.map((c) => ({ context: c, continuation: `${spec.targetDelimiter}${target}` }));
  }
  if (typeof context !== "string") throw taskError(spec.name, `${where}: expected one context`);
  return spec.docToChoice(doc, where).map((choice) => ({ context, continuation: spec.targetDelimiter + choice }));
}

/** numpy.argmax: the first maximum, or the first NaN where there is one. */
export function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) return i;
    if (v > values[best]!) best = i;
  }
  return best;
}

/** The metrics a task's documents report: its metric_list names. */
export function metricNames(spec: TaskSpec): string[] {
  return spec.metricList.map((m) => m.metric);
}

/**
 * Per-document metrics (ConfigurableTask.process_results for multiple_choice): the task's own
 * processResults, else acc / acc_norm / acc_bytes / exact_match as its metric list asks.
 */
export function processResults(spec: TaskSpec, doc: Doc, where: string, results: readonly LoglikelihoodResult[]): Record<string, number> {
  if (spec.processResults) return spec.processResults(doc, results, where);
  const choices = spec.docToChoice(doc, where);
  if (results.length !== choices.length) throw taskError(spec.name, `${where}: ${results.length} results for ${choices.length} choices`);
  const lls = results.map((r) => r.logprob);
  const gold = goldIndex(spec, doc, where, choices);
  const wanted = new Set(metricNames(spec));
  const out: Record<string, number> = {};
  if (wanted.has("acc")) out.acc = argmax(lls) === gold ? 1 : 0;
  if (wanted.has("acc_norm")) out.acc_norm = argmax(lls.map((ll, i) => ll / pythonLen(choices[i]!))) === gold ? 1 : 0;
  if (wanted.has("acc_bytes")) out.acc_bytes = argmax(lls.map((ll, i) => ll / Buffer.byteLength(choices[i]!, "utf8"))) === gold ? 1 : 0;
  if (wanted.has("exact_match")) out.exact_match = results[gold]!.isGreedy ? 1 : 0;
  return out;
}

/** lm-evaluation-harness's `mean`: sum / n, summed left to right. */
export function mean(values: readonly number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** lm-evaluation-harness's `mean_stderr`: sample standard deviation (n − 1) / √n; "N/A" for n <= 1. */
export function meanStderr(values: readonly number[]): number | "N/A" {
  const n = values.length;
  if (n <= 1) return "N/A";
  const mu = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - mu) ** 2;
  return Math.sqrt(ss / (n - 1)) / Math.sqrt(n);
}

/** lm-evaluation-harness's `pooled_sample_stderr` of subtasks with standard errors `stderrs` over `sizes` documents. */
export function pooledSampleStderr(stderrs: readonly number[], sizes: readonly number[]): number {
  let num = 0;
  let total = 0;
  stderrs.forEach((se, i) => {
    const n = sizes[i]!;
    num += (n - 1) * se ** 2 * n;
    total += n;
  });
  return Math.sqrt(num / (total - sizes.length) / total);
}

/** lm-evaluation-harness's `aggregate_subtask_metrics`: Σ m·n / Σ n, or the plain mean of the m. */
export function aggregateSubtaskMetrics(metrics: readonly number[], sizes: readonly number[], weightBySize: boolean): number {
  let num = 0;
  let den = 0;
  metrics.forEach((m, i) => {
    const n = weightBySize ? sizes[i]! : 1;
    num += m * n;
    den += n;
  });
  return num / den;
}

/** One entry of results / groups: name, alias, sample_len and "metric,none" / "metric_stderr,none" values. */
export type ResultEntry = Record<string, string | number | Record<string, number>>;

/** One document's line of lm-evaluation-harness's samples_<task>.jsonl: its requests, answers and metrics. */
export interface SampleRecord {
  doc_id: number;
  doc: Doc;
  target: string | number;
  arguments: Record<string, { arg_0: string; arg_1: string }>;
  resps: [number, boolean][][];
  filtered_resps: [number, boolean][];
  filter: "none";
  metrics: string[];
  [metric: string]: unknown;
}

/** The results object in lm-evaluation-harness's layout, without the run's `config` (the CLI adds it). */
export interface HarnessResults {
  results: Record<string, ResultEntry>;
  groups?: Record<string, ResultEntry>;
  group_subtasks: Record<string, string[]>;
  configs: Record<string, Record<string, unknown>>;
  /** A task's metadata.version (a number), a group's as a string. */
  versions: Record<string, number | string>;
  "n-shot": Record<string, number>;
  higher_is_better: Record<string, Record<string, boolean | null>>;
  "n-samples": Record<string, { original: number; effective: number }>;
}

export interface HarnessOptions {
  /** Task and group names (resolved in `registry`), in the order results list them. */
  tasks: readonly string[];
  registry: TaskRegistry;
  /** The folder holding `<task dir>/<split>.jsonl`. */
  dataDir: string;
  scorer: LoglikelihoodScorer;
  /** Few-shot examples per document (default 0). */
  numFewshot?: number;
  /** Documents per task: an integer, or a fraction < 1 of the split (rounded up). Default: all. */
  limit?: number | null;
  /** Seed of each task's few-shot sampler (lm-evaluation-harness's fewshot_random_seed, default 1234). */
  fewshotSeed?: number;
  /** Multiple-choice metrics to report besides each task's own (acc_bytes, exact_match, ...). */
  extraMetrics?: readonly MultipleChoiceMetric[];
  /** Keep every document's requests, answers and metrics (lm-evaluation-harness's log_samples). */
  logSamples?: boolean;
}

export interface HarnessRun {
  results: HarnessResults;
  /** Per task, present with logSamples. */
  samples?: Record<string, SampleRecord[]>;
}

/** The tasks and groups `names` denote: groups expand into their children, each task once, in order of first mention. */
export function resolveTasks(names: readonly string[], registry: TaskRegistry): { tasks: TaskSpec[]; groups: GroupSpec[] } {
  const tasks: TaskSpec[] = [];
  const groups: GroupSpec[] = [];
  const visit = (name: string, path: readonly string[]): void => {
    const group = registry.groups.get(name);
    if (group) {
      if (path.includes(name)) throw new GrowlmError(OP, `group "${name}" contains itself (${[...path, name].join(" > ")})`);
      if (!groups.includes(group)) groups.push(group);
      for (const child of group.children) visit(child, [...path, name]);
      return;
    }
    const task = registry.tasks.get(name);
    if (!task) {
      const known = [...registry.groups.keys(), ...[...registry.tasks.keys()].filter((t) => !t.startsWith("mmlu_"))];
      throw new GrowlmError(OP, `unknown task "${name}"${path.length > 0 ? ` in group "${path[path.length - 1]}"` : ""}; known: ${known.join(", ")}, and the mmlu_<subject> tasks`);
    }
    if (!tasks.includes(task)) tasks.push(task);
  };
  if (names.length === 0) throw new GrowlmError(OP, "no task given");
  for (const name of names) visit(name, []);
  return { tasks, groups };
}

/** The leaf tasks of a group, in order. */
function leafTasks(group: GroupSpec, registry: TaskRegistry): string[] {
  const out: string[] = [];
  for (const child of group.children) {
    const sub = registry.groups.get(child);
    if (sub) out.push(...leafTasks(sub, registry));
    else out.push(child);
  }
  return out;
}

/** Default higher_is_better of the metrics lm-evaluation-harness registers (api/metrics.py). */
function higherIsBetter(metric: MetricConfig): boolean | null {
  if (metric.higher_is_better !== undefined) return metric.higher_is_better;
  return (MULTIPLE_CHOICE_METRICS as readonly string[]).includes(metric.metric) ? true : null;
}

/** The task's config as lm-evaluation-harness's TaskConfig.to_dict prints it (null fields left out). */
function taskConfigJson(spec: TaskSpec, numFewshot: number, metricList: readonly MetricConfig[]): Record<string, unknown> {
  const c = spec.config;
  const out: Record<string, unknown> = { task: spec.name };
  if (spec.alias !== undefined) out.task_alias = spec.alias;
  if (c.tag !== undefined) out.tag = c.tag;
  out.dataset_path = spec.dataset.path;
  if (spec.dataset.name !== null) out.dataset_name = spec.dataset.name;
  if (spec.splits.training !== null) out.training_split = spec.splits.training;
  if (spec.splits.validation !== null) out.validation_split = spec.splits.validation;
  if (spec.splits.test !== null) out.test_split = spec.splits.test;
  if (spec.splits.fewshot !== null) out.fewshot_split = spec.splits.fewshot;
  if (c.process_docs !== undefined) out.process_docs = c.process_docs;
  out.doc_to_text = c.doc_to_text;
  out.doc_to_target = c.doc_to_target;
  out.unsafe_code = false;
  out.doc_to_choice = c.doc_to_choice;
  if (c.process_results !== undefined) out.process_results = c.process_results;
  out.description = spec.description;
  out.target_delimiter = spec.targetDelimiter;
  out.fewshot_delimiter = spec.fewshotDelimiter;
  out.fewshot_config = {
    sampler: spec.fewshotSampler,
    split: spec.splits.fewshot,
    process_docs: c.process_docs ?? null,
    fewshot_indices: null,
    samples: null,
    doc_to_text: c.doc_to_text,
    doc_to_choice: c.doc_to_choice,
    doc_to_target: c.doc_to_target,
    gen_prefix: null,
    fewshot_delimiter: spec.fewshotDelimiter,
    target_delimiter: spec.targetDelimiter,
  };
  out.num_fewshot = numFewshot;
  out.metric_list = metricList;
  out.output_type = "multiple_choice";
  out.repeats = 1;
  out.should_decontaminate = c.should_decontaminate ?? false;
  if (c.doc_to_decontamination_query !== undefined) out.doc_to_decontamination_query = c.doc_to_decontamination_query;
  out.metadata = { version: spec.version };
  return out;
}

/** The task with the extra metrics appended to its metric list (tasks with a custom processResults keep theirs). */
function withExtraMetrics(spec: TaskSpec, extra: readonly MultipleChoiceMetric[]): TaskSpec {
  if (spec.processResults || extra.length === 0) return spec;
  const have = new Set(metricNames(spec));
  const added = extra.filter((m) => !have.has(m)).map((metric) => ({ metric, aggregation: "mean" as const, higher_is_better: true }));
  return added.length === 0 ? spec : { ...spec, metricList: [...spec.metricList, ...added] };
}

/** The number of documents `limit` selects from `total` (lm-evaluation-harness's get_sample_size). */
export function sampleSize(limit: number | null | undefined, total: number): number {
  if (limit === null || limit === undefined) return total;
  if (!(limit > 0) || !Number.isFinite(limit)) throw new GrowlmError(OP, `limit must be a positive number but is ${limit}`);
  const n = limit < 1 ? Math.ceil(total * limit) : Math.trunc(limit);
  return Math.min(n, total);
}

/**
 * Runs the tasks: reads each task's documents from `dataDir`, builds every prompt (few-shot
 * examples drawn per task with `fewshotSeed`), asks the scorer for all requests at once,
 * then computes per-document metrics, task means with stderr and group aggregates.
 */
export async function runHarness(options: HarnessOptions): Promise<HarnessRun> {
  const numFewshot = options.numFewshot ?? 0;
  const seed = options.fewshotSeed ?? 1234;
  if (!Number.isInteger(numFewshot) || numFewshot < 0) throw new GrowlmError(OP, `numFewshot must be a non-negative integer but is ${numFewshot}`);
  const extra = options.extraMetrics ?? [];
  for (const m of extra) {
    if (!(MULTIPLE_CHOICE_METRICS as readonly string[]).includes(m)) throw new GrowlmError(OP, `unknown extra metric "${m}"; known: ${MULTIPLE_CHOICE_METRICS.join(", ")}`);
  }
  const resolved = resolveTasks(options.tasks, options.registry);
  const specs = resolved.tasks.map((t) => withExtraMetrics(t, extra));

  // Prompts and requests, task by task, document by document (the sampler's draws follow this order).
  interface Prepared {
    spec: TaskSpec;
    original: number;
    docs: SourcedDoc[];
    requests: LoglikelihoodRequest[][];
  }
  const prepared: Prepared[] = [];
  for (const spec of specs) {
    const all = await readTaskDocs(spec, join(options.dataDir, spec.dataset.dir, `${evaluationSplit(spec)}.jsonl`));
    if (all.length === 0) throw taskError(spec.name, `${join(options.dataDir, spec.dataset.dir, `${evaluationSplit(spec)}.jsonl`)} holds no documents`);
    const docs = all.slice(0, sampleSize(options.limit, all.length));
    let sampler: FewshotSampler | null = null;
    if (numFewshot > 0) {
      const file = join(options.dataDir, spec.dataset.dir, `${fewshotSplit(spec)}.jsonl`);
      sampler = new FewshotSampler(spec, await readTaskDocs(spec, file), seed);
    }
    const excludeEvalDoc = spec.splits.fewshot === spec.splits.test;
    const requests = docs.map(({ doc, where }) => {
      const examples = sampler ? sampler.sample(numFewshot, excludeEvalDoc ? doc : null) : [];
      return constructRequests(spec, doc, where, fewshotContext(spec, doc, where, examples));
    });
    prepared.push({ spec, original: all.length, docs, requests });
  }

  const flat = prepared.flatMap((p) => p.requests.flat());
  const answers = await options.scorer.loglikelihood(flat);
  if (answers.length !== flat.length) throw new GrowlmError(OP, `the scorer answered ${answers.length} of ${flat.length} requests`);

  const results: Record<string, ResultEntry> = {};
  const configs: Record<string, Record<string, unknown>> = {};
  const versions: Record<string, number | string> = {};
  const nShot: Record<string, number> = {};
  const higher: Record<string, Record<string, boolean | null>> = {};
  const nSamples: Record<string, { original: number; effective: number }> = {};
  const samples: Record<string, SampleRecord[]> = {};
  let next = 0;
  for (const { spec, original, docs, requests } of prepared) {
    const values = new Map<string, number[]>();
    const logged: SampleRecord[] = [];
    docs.forEach(({ doc, where }, d) => {
      const docRequests = requests[d]!;
      const docAnswers = answers.slice(next, next + docRequests.length);
      next += docRequests.length;
      const metrics = processResults(spec, doc, where, docAnswers);
      for (const [name, value] of Object.entries(metrics)) {
        let list = values.get(name);
        if (!list) values.set(name, (list = []));
        list.push(value);
      }
      if (options.logSamples) {
        const pairs = docAnswers.map((a): [number, boolean] => [a.logprob, a.isGreedy]);
        logged.push({
          doc_id: d,
          doc,
          target: spec.docToTarget(doc, where),
          arguments: Object.fromEntries(docRequests.map((r, i) => [`gen_args_${i}`, { arg_0: r.context, arg_1: r.continuation }])),
          resps: pairs.map((p) => [p]),
          filtered_resps: pairs,
          filter: "none",
          metrics: Object.keys(metrics),
          ...metrics,
        });
      }
    });
    const entry: ResultEntry = { name: spec.name, alias: spec.alias ?? spec.name, sample_len: docs.length };
    for (const [name, list] of values) {
      entry[`${name},none`] = mean(list);
      entry[`${name}_stderr,none`] = meanStderr(list);
    }
    results[spec.name] = entry;
    configs[spec.name] = taskConfigJson(spec, numFewshot, spec.metricList);
    versions[spec.name] = spec.version;
    nShot[spec.name] = numFewshot;
    higher[spec.name] = Object.fromEntries(spec.metricList.map((m) => [m.metric, higherIsBetter(m)]));
    nSamples[spec.name] = { original, effective: docs.length };
    if (options.logSamples) samples[spec.name] = logged;
  }

  // Groups, children before parents; each aggregates over its leaf tasks (api/group.py).
  const groupResults: Record<string, ResultEntry> = {};
  const groupSubtasks: Record<string, string[]> = {};
  const done = new Set<string>();
  const aggregate = (group: GroupSpec): void => {
    if (done.has(group.name)) return;
    for (const child of group.children) {
      const sub = options.registry.groups.get(child);
      if (sub) aggregate(sub);
    }
    done.add(group.name);
    const leaves = leafTasks(group, options.registry);
    const entry: ResultEntry = {
      alias: group.alias ?? group.name,
      name: group.name,
      sample_len: leaves.reduce((s, t) => s + ((results[t]?.sample_len as number | undefined) ?? 0), 0),
    };
    const counts: Record<string, number> = {};
    for (const { metric, weightBySize } of group.aggregateMetricList) {
      const key = `${metric},none`;
      const stderrKey = `${metric}_stderr,none`;
      const vals: number[] = [];
      const stderrs: (number | string)[] = [];
      const sizes: number[] = [];
      for (const t of leaves) {
        const r = results[t];
        if (r === undefined || !(key in r)) continue;
        vals.push(r[key] as number);
        sizes.push(r.sample_len as number);
        if (stderrKey in r) stderrs.push(r[stderrKey] as number | string);
      }
      if (vals.length === 0) continue;
      entry[key] = aggregateSubtaskMetrics(vals, sizes, weightBySize);
      counts[key] = sizes.reduce((s, n) => s + n, 0);
      const numeric = stderrs.filter((s): s is number => typeof s === "number");
      if (stderrs.length === vals.length && numeric.length === stderrs.length) {
        entry[stderrKey] = weightBySize ? pooledSampleStderr(numeric, sizes) : Math.sqrt(numeric.reduce((s, se) => s + se ** 2, 0)) / numeric.length;
      } else {
        entry[stderrKey] = "N/A";
      }
    }
    if (Object.keys(counts).length > 0) entry.sample_count = counts;
    results[group.name] = entry;
    if (group.aggregateMetricList.length > 0) groupResults[group.name] = entry;
    versions[group.name] = group.version;
  };
  for (const group of resolved.groups) aggregate(group);
  // group_subtasks, n-shot and higher_is_better follow the groups in the order they were named
  // (parents first), and a group takes a child's n-shot or higher_is_better only where its
  // children already have one and agree (evaluator_utils.py), so mmlu gets neither.
  for (const group of resolved.groups) {
    groupSubtasks[group.name] = [...group.children];
    const shots = new Set(group.children.filter((c) => c in nShot).map((c) => nShot[c]!));
    if (shots.size === 1) nShot[group.name] = [...shots][0]!;
    const hib: Record<string, boolean | null> = {};
    for (const child of group.children) {
      for (const [m, h] of Object.entries(higher[child] ?? {})) {
        if (!(m in hib)) hib[m] = h;
        else if (hib[m] !== null && hib[m] !== h) hib[m] = null;
      }
    }
    if (Object.keys(hib).length > 0) higher[group.name] = hib;
  }

  const sorted = <T>(record: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const out: HarnessResults = {
    results,
    ...(Object.keys(groupResults).length > 0 ? { groups: groupResults } : {}),
    group_subtasks: groupSubtasks,
    configs: sorted(configs),
    versions: sorted(versions),
    "n-shot": sorted(nShot),
    higher_is_better: sorted(higher),
    "n-samples": nSamples,
  };
  return options.logSamples ? { results: out, samples } : { results: out };
}

