/** growlm pretrain: causal-LM pretraining on a corpus, alone or as the grow-versus-scratch study. */
import fs from "node:fs";
import path from "node:path";

import { packCorpus, readCorpus } from "../data/corpus.js";
import { GrowlmError } from "../errors.js";
import { DEPTH_OPERATORS, type DepthOperator } from "../growth/depth.js";
import type { GrowthOptions } from "../growth/plan.js";
import type { OptimizerStatePolicy } from "../growth/schedule.js";
import { curvesCsv, runGrowthStudy } from "../growth/study.js";
import { WIDTH_OPERATORS, type WidthOperator } from "../growth/width.js";
import { writeFileAtomic } from "../io/atomic.js";
import { byteLevelTokenizer, loadTokenizer, saveTokenizer } from "../io/tokenizer.js";
import { parseLlamaConfig } from "../model/config.js";
import { LlamaModel } from "../model/llama.js";
import { loadPretrained, savePretrained } from "../model/pretrained.js";
import { lineChart } from "../plot/svg.js";
import { LR_SCHEDULER_TYPES, type LrSchedulerType } from "../train/lr.js";
import { type CurvePoint, pretrainRun } from "../train/pretrain.js";
import { Trainer } from "../train/trainer.js";
import type { Command } from "./command.js";
import { DISTRIBUTED_FLAGS, DISTRIBUTED_USAGE, startDistributed } from "./distributed.js";
import { type FlagSpec, parseHfArgs } from "./hf-args.js";

const FLAGS: Record<string, FlagSpec> = {
  config: { kind: "string" },
  model_name_or_path: { kind: "string", aliases: ["model"] },
  corpus: { kind: "string" },
  tokenizer: { kind: "string" },
  output_dir: { kind: "string", aliases: ["out"] },
  block_size: { kind: "int" },
  per_device_train_batch_size: { kind: "int" },
  max_tokens: { kind: "float" },
  learning_rate: { kind: "float" },
  lr_scheduler_type: { kind: "string", choices: LR_SCHEDULER_TYPES },
  warmup_ratio: { kind: "float" },
  weight_decay: { kind: "float" },
  max_grad_norm: { kind: "float" },
  adam_beta1: { kind: "float" },
  adam_beta2: { kind: "float" },
  eval_steps: { kind: "int" },
  validation_share: { kind: "float" },
  seed: { kind: "int" },
  bf16: { kind: "bool" },
  device: { kind: "string" },
  gradient_checkpointing: { kind: "bool" },
  grow_at_tokens: { kind: "float" },
  growth_operator: { kind: "string", choices: DEPTH_OPERATORS },
  growth_factor: { kind: "int" },
  growth_layers: { kind: "int" },
  width_operator: { kind: "string", choices: WIDTH_OPERATORS },
  hidden_size: { kind: "int" },
  intermediate_size: { kind: "int" },
  mask_warmup_steps: { kind: "int" },
  optimizer_state: { kind: "string", choices: ["reset", "carry"] },
  baseline: { kind: "bool" },
  baseline_budget: { kind: "string", choices: ["tokens", "flops"] },
};

function formatPoint(run: string, p: CurvePoint): string {
  const evalText = Number.isFinite(p.evalLoss) ? ` eval ${p.evalLoss.toFixed(4)}` : "";
  const lossText = Number.isFinite(p.loss) ? ` loss ${p.loss.toFixed(4)}` : "";
  return `[${run}] step ${p.step} tokens ${p.tokens} flops ${p.flops.toExponential(2)}${lossText}${evalText} (${(p.parameters / 1e6).toFixed(2)}M params)`;
}

export const pretrain: Command = {
  name: "pretrain",
  summary: "pretrain on a text/JSONL corpus; with --grow_at_tokens, the grow-versus-scratch study (loss vs tokens and FLOPs, speedup)",
  usage:
    "growlm pretrain (--config CFG.json | --model_name_or_path DIR) --corpus FILE --output_dir DIR [--tokenizer byte|DIR]\n" +
    "                [--block_size 128] [--per_device_train_batch_size 8] [--max_tokens N] [--learning_rate 1e-3]\n" +
    "                [--lr_scheduler_type cosine] [--warmup_ratio 0.05] [--weight_decay 0.1] [--max_grad_norm 1]\n" +
    "                [--adam_beta1 0.9] [--adam_beta2 0.95] [--eval_steps 50] [--validation_share 0.05] [--seed 42] [--bf16] [--device cpu|cuda|cuda:N]\n" +
    "                [--grow_at_tokens d --growth_operator stack (--growth_factor g | --growth_layers L')\n" +
    "                 [--width_operator direct --hidden_size C --intermediate_size I] [--mask_warmup_steps K]\n" +
    "                 [--optimizer_state reset|carry] [--baseline true|false] [--baseline_budget tokens|flops]]\n\n" +
    "  The corpus is plain text (a document a line) or JSONL with \"text\". Without growth flags it pretrains the model\n" +
    "  and writes it to OUTPUT_DIR; with them the small model trains d tokens, grows and trains on, a from-scratch model\n" +
    "  of the grown size trains on the same tokens (unless --baseline false), and OUTPUT_DIR gets grown/, scratch/,\n" +
    "  curves.csv, loss-vs-tokens.svg, loss-vs-flops.svg and study.json with the speedup.\n" +
    DISTRIBUTED_USAGE,
  async run(argv) {
    const op = "growlm pretrain";
    const { values } = parseHfArgs(op, argv, { ...FLAGS, ...DISTRIBUTED_FLAGS }, new Set());
    const get = <T>(name: string, fallback: T): T => (values.has(name) ? (values.get(name) as T) : fallback);
    const corpusFile = get<string>("corpus", "");
    const outputDir = get<string>("output_dir", "");
    if (!corpusFile) throw new GrowlmError(op, "--corpus is required");
    if (!outputDir) throw new GrowlmError(op, "--output_dir is required");
    const configFile = get<string>("config", "");
    const modelDir = get<string>("model_name_or_path", "");
    if ((configFile === "") === (modelDir === "")) throw new GrowlmError(op, "give exactly one of --config and --model_name_or_path");
    const start = await startDistributed("pretrain", argv, values);
    if (start.launched) return;
    const { distributed } = start;
    // Data-parallel, every rank trains; rank 0 alone prints and writes.
    const writer = start.rank === 0;
    const log = (line: string): void => {
      if (writer) console.log(line);
    };
    const tokenizerArg = get<string>("tokenizer", modelDir !== "" ? modelDir : "byte");
    const tokenizer = tokenizerArg === "byte" ? byteLevelTokenizer() : await loadTokenizer(tokenizerArg);
    const seed = get("seed", 42);
    const modelOptions = {
      matmul: get("bf16", false) ? ("bfloat16" as const) : ("float32" as const), recompute: get("gradient_checkpointing", false), device: get("device", "cpu"),
    };
    let model: LlamaModel;
    if (configFile) {
      let raw: unknown;
      try {
        raw = JSON.parse(fs.readFileSync(configFile, "utf8"));
      } catch (err) {
        throw new GrowlmError(op, `cannot read ${configFile}: ${(err as Error).message}`, { cause: err });
      }
      model = new LlamaModel(parseLlamaConfig(raw, configFile), modelOptions);
      model.initialize(seed);
    } else {
      model = loadPretrained(modelDir, modelOptions);
    }
    if (tokenizer.vocabSize > model.config.vocab_size) throw new GrowlmError(op, `the tokenizer has ${tokenizer.vocabSize} ids but vocab_size is ${model.config.vocab_size}`);
    const blockSize = get("block_size", Math.min(128, model.config.max_position_embeddings));
    const batchSize = get("per_device_train_batch_size", 8);
    const corpus = packCorpus(readCorpus(corpusFile), tokenizer, blockSize, get("validation_share", 0.05), seed);
    const maxTokens = get("max_tokens", corpus.train.length * blockSize);
    const schedule = { type: get<LrSchedulerType>("lr_scheduler_type", "cosine"), learningRate: get("learning_rate", 1e-3), warmupRatio: get("warmup_ratio", 0.05) };
    const optimizer = { weightDecay: get("weight_decay", 0.1), maxGradNorm: get("max_grad_norm", 1), beta1: get("adam_beta1", 0.9), beta2: get("adam_beta2", 0.95) };
    const evalSteps = get("eval_steps", 50);
    fs.mkdirSync(outputDir, { recursive: true });
    log(`corpus: ${corpus.train.length} training and ${corpus.validation.length} validation blocks of ${blockSize} tokens`);

    if (!values.has("grow_at_tokens")) {
      const steps = Math.ceil(maxTokens / (batchSize * (distributed?.communicator.worldSize ?? 1) * blockSize));
      const trainer = new Trainer(model, { schedule: { ...schedule, totalSteps: steps }, optimizer, seed });
      const { curve } = pretrainRun(trainer, { corpus, batchSize, maxTokens, evalSteps, seed, onPoint: (p) => log(formatPoint("pretrain", p)), ...(distributed ? { distributed } : {}) });
      const evaluated = curve.filter((p) => Number.isFinite(p.evalLoss));
      if (writer) {
        savePretrained(model, outputDir);
        await saveTokenizer(outputDir, tokenizer);
        writeFileAtomic(op, path.join(outputDir, "curves.csv"), curvesCsv({ pretrain: curve }));
        writeFileAtomic(op, path.join(outputDir, "loss-vs-tokens.svg"), lineChart({ title: "validation loss", xLabel: "training tokens", yLabel: "validation NLL", series: [{ name: "pretrain", x: evaluated.map((p) => p.tokens), y: evaluated.map((p) => p.evalLoss) }] }));
      }
      trainer.dispose();
      model.dispose();
      await distributed?.communicator.close();
      log(`wrote ${outputDir}: final validation loss ${evaluated.at(-1)!.evalLoss.toFixed(4)}`);
      return;
    }

    const growth: GrowthOptions = { seed };
    if (values.has("growth_operator")) {
      const depth = { operator: get<DepthOperator>("growth_operator", "stack") } as NonNullable<GrowthOptions["depth"]>;
      if (values.has("growth_factor")) depth.factor = get("growth_factor", 4);
      if (values.has("growth_layers")) depth.layers = get("growth_layers", 0);
      if (values.has("mask_warmup_steps")) depth.maskWarmupSteps = get("mask_warmup_steps", 0);
      growth.depth = depth;
    }
    if (values.has("width_operator") || values.has("hidden_size") || values.has("intermediate_size")) {
      growth.width = { operator: get<WidthOperator>("width_operator", "direct") };
      if (values.has("hidden_size")) growth.width.hidden_size = get("hidden_size", 0);
      if (values.has("intermediate_size")) growth.width.intermediate_size = get("intermediate_size", 0);
    }
    const smallConfig = model.config;
    model.dispose();
    const result = runGrowthStudy({
      smallConfig,
      growth,
      growAtTokens: get("grow_at_tokens", 0),
      maxTokens,
      corpus,
      batchSize,
      evalSteps,
      schedule,
      optimizer,
      optimizerState: get<OptimizerStatePolicy>("optimizer_state", "reset"),
      baseline: get("baseline", true),
      baselineBudget: get<"tokens" | "flops">("baseline_budget", "tokens"),
      seed,
      modelOptions,
      outputDir,
      onPoint: (run, p) => log(formatPoint(run, p)),
      ...(distributed ? { distributed } : {}),
    });
    await distributed?.communicator.close();
    if (writer) for (const run of ["grown", "scratch"]) if (fs.existsSync(path.join(outputDir, run))) await saveTokenizer(path.join(outputDir, run), tokenizer);
    const s = result.speedup;
    if (s) {
      const fmt = (v: number | null): string => (v === null ? "not reached" : `${(100 * v).toFixed(1)}%`);
      log(`scratch final validation loss ${s.targetLoss.toFixed(4)} after ${s.scratchTokens} tokens; grown reaches it at ${s.grownTokens === null ? "—" : s.grownTokens.toFixed(0)} tokens`);
      log(`speedup: ${fmt(s.tokenSpeedup)} in tokens, ${fmt(s.flopSpeedup)} in FLOPs (scratch / grown − 1, the paper's definition)`);
    }
    log(`wrote ${outputDir}: ${result.files.map((f) => path.basename(f)).join(", ")}`);
  },
};
