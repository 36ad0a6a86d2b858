/** growlm grow: grow a checkpoint in depth and/or width, or print G_stack's growth-timing guideline. */
import { parseArgs } from "node:util";

import { GrowlmError } from "../errors.js";
import { growCheckpoint, growthRecord } from "../growth/checkpoint.js";
import { DEPTH_OPERATORS, type DepthGrowthOptions, type DepthOperator, type LayerOrder } from "../growth/depth.js";
import { type GrowthOptions, describeGrowth } from "../growth/plan.js";
import { GROWTH_TIMING_NOTES, suggestGrowthTiming } from "../growth/timing.js";
import { UNIT_SELECTIONS, WIDTH_OPERATORS, type WidthGrowthOptions, type WidthOperator } from "../growth/width.js";
import type { Command } from "./command.js";
import { choiceFlag, integerFlag, required } from "./flags.js";

const SUFFIXES: Record<string, number> = { K: 1e3, M: 1e6, B: 1e9, G: 1e9, T: 1e12, P: 1e15 };

/** A positive count such as 7e9, 7000000000, 7B, 1.5T or 300M (K, M, B/G, T, P: powers of 1000). */
function quantityFlag(name: string, value: string): number {
  const m = /^\s*(\d+(?:\.\d*)?(?:e[+-]?\d+)?)\s*([KMBGTP])?\s*$/i.exec(value);
  const n = m ? Number(m[1]) * (m[2] ? SUFFIXES[m[2].toUpperCase()]! : 1) : NaN;
  if (!(n > 0) || !Number.isFinite(n)) throw new GrowlmError("growlm grow", `--${name} must be a positive number such as 7e9 or 7B but is ${JSON.stringify(value)}`);
  return n;
}

/** 1.11e10 as "11.11B". */
function humanCount(n: number): string {
  for (const [suffix, size] of [["T", 1e12], ["B", 1e9], ["M", 1e6], ["K", 1e3]] as const) if (n >= size) return `${(n / size).toFixed(2)}${suffix}`;
  return n.toFixed(0);
}

function suggest(values: Record<string, string | boolean | undefined>): void {
  const params = quantityFlag("params", required("grow", "params", values.params as string | undefined));
  const compute = values.compute === undefined ? undefined : quantityFlag("compute", values.compute as string);
  const tokens = values.tokens === undefined ? undefined : quantityFlag("tokens", values.tokens as string);
  if ((compute === undefined) === (tokens === undefined)) throw new GrowlmError("growlm grow", "--suggest needs exactly one of --compute (FLOPs) and --tokens (C = 6·N·D)");
  const s = suggestGrowthTiming({ params, ...(compute !== undefined ? { compute } : {}), ...(tokens !== undefined ? { tokens } : {}) });
  if (values.json) {
    console.log(JSON.stringify({ params: s.params, compute: s.compute, tokens: s.tokens, growth_tokens: s.growthTokens, growth_factor: s.factor, fraction: s.fraction, notes: GROWTH_TIMING_NOTES }, null, 2));
    return;
  }
  console.log(`target: N = ${s.params.toExponential(3)} parameters, C = ${s.compute.toExponential(3)} FLOPs (D = ${s.tokens.toExponential(3)} tokens)`);
  console.log(`grow at d = ${s.growthTokens.toExponential(3)} tokens (${humanCount(s.growthTokens)}, ${(100 * s.fraction).toPrecision(3)}% of D) with g = ${s.factor}:`);
  console.log(`  train a model with 1/${s.factor} of the target's layers for d tokens, then: growlm grow --operator stack --factor ${s.factor}`);
  console.log("");
  for (const line of GROWTH_TIMING_NOTES) console.log(line);
}

export const grow: Command = {
  name: "grow",
  summary: "grow a checkpoint in depth (stack, interpolate, zero, random) and/or width (direct, zero, random), or suggest when to grow",
  usage:
    "growlm grow --model DIR --out DIR2 --operator OP (--factor G | --layers N | --layer_map 0,1,0,1)\n" +
    "                   [--hidden_size C] [--intermediate_size I] [--num_attention_heads H] [--num_key_value_heads K]\n" +
    "                   [--width_operator OP] [--layer_order stack|interpolate] [--unit_selection cyclic|random]\n" +
    "                   [--mask_warmup_steps K] [--seed S] [--dtype float32|bfloat16] [--max_shard_size 5GB] [--json]\n" +
    "       growlm grow --suggest --params N (--compute C | --tokens D) [--json]\n\n" +
    "  Depth operators: stack (G_stack: layer i <- i mod L), interpolate (i <- floor(i*L/L')), zero (interpolation\n" +
    "  order, duplicates with o_proj and down_proj at 0: the same function), random (new layers from the initialisation;\n" +
    "  --mask_warmup_steps K records MSG masks ramping them in over K steps, applied by a trainer reading growth.json).\n" +
    "  Width operators: direct (copies with split outgoing weights: the same function), zero (new units' outgoing\n" +
    "  weights 0: the same function), random. With both depth and width growth, --operator is the depth operator and\n" +
    "  --width_operator the width one. New parameters are LlamaModel.initialize(--seed) of the target (default 42).\n" +
    "  Weights are read and written tensor by tensor; dtype and sharding follow the source unless given;\n" +
    "  tokenizer files and generation_config.json are copied, growth.json records the growth.\n" +
    "  --suggest prints G_stack's growth timing d for a target of N parameters trained with C FLOPs (or D tokens).",
  run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: "string" },
        out: { type: "string" },
        operator: { type: "string" },
        width_operator: { type: "string" },
        factor: { type: "string" },
        layers: { type: "string" },
        layer_map: { type: "string" },
        layer_order: { type: "string" },
        hidden_size: { type: "string" },
        intermediate_size: { type: "string" },
        num_attention_heads: { type: "string" },
        num_key_value_heads: { type: "string" },
        unit_selection: { type: "string" },
        mask_warmup_steps: { type: "string" },
        seed: { type: "string", default: "42" },
        dtype: { type: "string" },
        max_shard_size: { type: "string" },
        json: { type: "boolean", default: false },
        suggest: { type: "boolean", default: false },
        params: { type: "string" },
        compute: { type: "string" },
        tokens: { type: "string" },
      },
    });
    const op = "growlm grow";
    if (values.suggest) {
      suggest(values);
      return;
    }
    for (const flag of ["params", "compute", "tokens"] as const) {
      if (values[flag] !== undefined) throw new GrowlmError(op, `--${flag} belongs to --suggest`);
    }
    const model = required("grow", "model", values.model);
    const out = required("grow", "out", values.out);
    const operator = required("grow", "operator", values.operator);
    const seed = integerFlag("grow", "seed", values.seed!);
    const int = (name: "factor" | "layers" | "hidden_size" | "intermediate_size" | "num_attention_heads" | "num_key_value_heads" | "mask_warmup_steps"): number | undefined =>
      values[name] === undefined ? undefined : integerFlag("grow", name, values[name]!, 1);

    const depthGiven = values.factor !== undefined || values.layers !== undefined || values.layer_map !== undefined;
    const widthGiven = (["hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads"] as const).some((k) => values[k] !== undefined);
    if (!depthGiven && !widthGiven) {
      throw new GrowlmError(op, "nothing to grow: give --factor, --layers or --layer_map (depth) and/or --hidden_size, --intermediate_size (width)");
    }
    const growth: GrowthOptions = { seed };
    let widthOperator: WidthOperator | undefined;
    if (depthGiven) {
      const depthOperator: DepthOperator = choiceFlag("grow", "operator", operator, DEPTH_OPERATORS);
      let layerMap: number[] | undefined;
      if (values.layer_map !== undefined) {
        layerMap = values.layer_map.split(",").map((s) => integerFlag("grow", "layer_map", s, 0));
      }
      const depth: DepthGrowthOptions = { operator: depthOperator };
      const factor = int("factor");
      const layers = int("layers");
      const mask = int("mask_warmup_steps");
      if (factor !== undefined) depth.factor = factor;
      if (layers !== undefined) depth.layers = layers;
      if (layerMap !== undefined) depth.layerMap = layerMap;
      if (mask !== undefined) depth.maskWarmupSteps = mask;
      if (values.layer_order !== undefined) depth.order = choiceFlag("grow", "layer_order", values.layer_order, ["stack", "interpolate"] as const satisfies readonly LayerOrder[]);
      growth.depth = depth;
      if (widthGiven) {
        if (values.width_operator === undefined) {
          throw new GrowlmError(op, `growing depth and width together: --operator ${operator} is the depth operator; give --width_operator (${WIDTH_OPERATORS.join(", ")})`);
        }
        widthOperator = choiceFlag("grow", "width_operator", values.width_operator, WIDTH_OPERATORS);
      } else if (values.width_operator !== undefined) {
        throw new GrowlmError(op, "--width_operator needs a width to grow (--hidden_size, --intermediate_size)");
      }
    } else {
      for (const flag of ["layer_order", "mask_warmup_steps", "width_operator"] as const) {
        if (values[flag] !== undefined) throw new GrowlmError(op, `--${flag} needs depth growth (--factor, --layers or --layer_map)`);
      }
      widthOperator = choiceFlag("grow", "operator", operator, WIDTH_OPERATORS);
    }
    if (widthOperator !== undefined) {
      const width: WidthGrowthOptions = { operator: widthOperator };
      for (const k of ["hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads"] as const) {
        const v = int(k);
        if (v !== undefined) width[k] = v;
      }
      if (values.unit_selection !== undefined) width.selection = choiceFlag("grow", "unit_selection", values.unit_selection, UNIT_SELECTIONS);
      growth.width = width;
    } else if (values.unit_selection !== undefined) {
      throw new GrowlmError(op, "--unit_selection needs width growth");
    }
    const dtype = values.dtype === undefined ? undefined : choiceFlag("grow", "dtype", values.dtype, ["float32", "bfloat16"] as const);

    const result = growCheckpoint(model, out, growth, { ...(dtype ? { dtype } : {}), ...(values.max_shard_size !== undefined ? { maxShardSize: values.max_shard_size } : {}) });
    const { plan, saved } = result;
    if (values.json) {
      console.log(JSON.stringify({ out, dtype: result.dtype, weight_files: saved.weightFiles, total_size: saved.totalSize, copied_files: result.copiedFiles, growth: growthRecord(plan, model, growth) }, null, 2));
      return;
    }
    for (const line of describeGrowth(plan)) console.log(line);
    console.log(
      `wrote ${out}: ${plan.targetLayout.parameterCount.toLocaleString("en-US")} parameters (from ${plan.sourceLayout.parameterCount.toLocaleString("en-US")}), ` +
        `${saved.weightFiles.length} weight file(s), ${result.dtype}${result.copiedFiles.length > 0 ? `, tokenizer files copied` : ""}`,
    );
    if (plan.mask) console.log(`note: the weights are the unmasked model; growth.json lists the layers a trainer must ramp in over ${plan.mask.warmupSteps} steps`);
  },
};
