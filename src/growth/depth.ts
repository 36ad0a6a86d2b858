/**
 * Depth growth of a LLaMA decoder from L to L' layers: which source layer each target layer
 * comes from and how it starts. The embedding, the final norm and the head carry over
 * unchanged (width growth aside).
 *
 * - `stack` (G_stack, the paper's G↑direct as tongxuluo/prts' Stackingpt does it): target layer
 *   i copies layer i mod L, i.e. the whole trained block repeated: 0..L-1, 0..L-1, ...
 * - `interpolate` (bert2BERT's inner stacking, LiGO's interlace): target layer i copies layer
 *   ⌊i·L/L'⌋, each layer duplicated in place: 0, 0, 1, 1, ...
 * - `zero` (LEMON / LLaMA-Pro block expansion; the official G_zero_depthwise.py with --lemon):
 *   interpolation order, the first copy of each layer unchanged and every further copy with
 *   o_proj and down_proj at zero, so each duplicate is the identity (its residual branches add
 *   exactly 0) and the grown model computes exactly the source's function. Only the output
 *   projections are zeroed: their gradients are non-zero, so the duplicates train (zeroing a
 *   whole block would leave every gradient of it at zero).
 * - `random` (MSG's new layers): the source layers in place and every further layer freshly
 *   drawn from the target's initialisation. New layers go on top by default (stack order:
 *   0..L-1, new, new, ...; MSG's code appends); order "interpolate" inserts each new layer after
 *   its layer. With maskWarmupSteps K, MSG's mask multiplies the new layers' residual branches
 *   by m = min(1, s/K) at the s-th optimizer step after growth: at m = 0 the grown model is
 *   exactly the source (see BranchMask in schedule.ts).
 *
 * stack and interpolate are not function-preserving: every duplicated residual branch adds its
 * output once more.
 */
import { GrowlmError } from "../errors.js";

export type DepthOperator = "stack" | "interpolate" | "zero" | "random";
export const DEPTH_OPERATORS: readonly DepthOperator[] = ["stack", "interpolate", "zero", "random"];

/** Where the target layers' sources sit: cyclic (i mod L) or in place (⌊i·L/L'⌋). */
export type LayerOrder = "stack" | "interpolate";

/**
 * How a target layer starts: "copy" (the source layer's weights), "zero_output" (the source's
 * weights with o_proj and down_proj zero: an identity layer), "random" (the target's
 * initialisation; no source).
 */
export type LayerInit = "copy" | "zero_output" | "random";

/** One target layer: its source layer (null for a new random layer) and how it starts. */
export interface LayerSource {
  readonly source: number | null;
  readonly init: LayerInit;
}

export interface DepthGrowthOptions {
  operator: DepthOperator;
  /** Growth factor g: L' = g·L. */
  factor?: number;
  /** The target number of layers L' >= L (any value: stack then repeats a partial block on top). */
  layers?: number;
  /**
   * An explicit source layer for every target layer (the official code's stacking_list), e.g.
   * [0,1,2,3,0,1,2,3]. The operator then decides how repeated layers start: stack and
   * interpolate copy them, zero zeroes their output projections, random draws them afresh.
   */
  layerMap?: readonly number[];
  /** Order of zero (default "interpolate") and random (default "stack"); stack and interpolate are their own order. */
  order?: LayerOrder;
  /** random only: ramp the new layers' residual branches from 0 to 1 over this many optimizer steps (MSG). */
  maskWarmupSteps?: number;
}

/** The source layer of each of `target` layers in `order`. */
function orderSources(L: number, target: number, order: LayerOrder): number[] {
  return Array.from({ length: target }, (_, i) => (order === "stack" ? i % L : Math.floor((i * L) / target)));
}

/**
 * The target layers of growing L layers by `options`: one LayerSource per target layer.
 * Exactly one of factor, layers and layerMap must be given.
 */
export function planDepth(L: number, options: DepthGrowthOptions): LayerSource[] {
  const op = "growDepth";
  const { operator } = options;
  if (!DEPTH_OPERATORS.includes(operator)) {
    throw new GrowlmError(op, `unknown depth operator ${JSON.stringify(operator)}; expected one of ${DEPTH_OPERATORS.join(", ")}`);
  }
  const given = (["factor", "layers", "layerMap"] as const).filter((k) => options[k] !== undefined);
  if (given.length !== 1) {
    throw new GrowlmError(op, `give exactly one of factor, layers and layerMap${given.length > 1 ? ` (got ${given.join(", ")})` : ""}`);
  }
  if (options.order !== undefined) {
    if (options.order !== "stack" && options.order !== "interpolate") {
      throw new GrowlmError(op, `order must be "stack" or "interpolate" but is ${JSON.stringify(options.order)}`);
    }
    if (operator === "stack" || operator === "interpolate") {
      throw new GrowlmError(op, `operator "${operator}" is its own order; order applies to zero and random`);
    }
    if (options.layerMap !== undefined) throw new GrowlmError(op, "order and layerMap exclude each other (the map is the order)");
  }
  if (options.maskWarmupSteps !== undefined) {
    if (operator !== "random") throw new GrowlmError(op, `maskWarmupSteps applies to operator "random" (MSG) only, not "${operator}"`);
    if (!Number.isSafeInteger(options.maskWarmupSteps) || options.maskWarmupSteps < 1) {
      throw new GrowlmError(op, `maskWarmupSteps must be a positive integer but is ${JSON.stringify(options.maskWarmupSteps)}`);
    }
  }

  let sources: number[];
  if (options.layerMap !== undefined) {
    const map = options.layerMap;
    if (!Array.isArray(map) || map.length < L) {
      throw new GrowlmError(op, `layerMap must list a source layer for each of at least ${L} target layers but has ${Array.isArray(map) ? map.length : "no"} entries`);
    }
    map.forEach((s, i) => {
      if (!Number.isSafeInteger(s) || s < 0 || s >= L) throw new GrowlmError(op, `layerMap[${i}] = ${JSON.stringify(s)} is not a source layer in [0, ${L})`);
    });
    sources = [...map];
  } else {
    let target: number;
    if (options.factor !== undefined) {
      if (!Number.isSafeInteger(options.factor) || options.factor < 1) throw new GrowlmError(op, `factor must be a positive integer but is ${JSON.stringify(options.factor)}`);
      target = options.factor * L;
    } else {
      target = options.layers!;
      if (!Number.isSafeInteger(target) || target < L) {
        throw new GrowlmError(op, `layers must be an integer >= the source's ${L} layers (growth cannot shrink) but is ${JSON.stringify(target)}`);
      }
    }
    const order: LayerOrder = operator === "stack" || operator === "interpolate" ? operator : options.order ?? (operator === "zero" ? "interpolate" : "stack");
    sources = orderSources(L, target, order);
  }

  const seen = new Set<number>();
  return sources.map((s) => {
    const first = !seen.has(s);
    seen.add(s);
    if (first || operator === "stack" || operator === "interpolate") return { source: s, init: "copy" };
    return operator === "zero" ? { source: s, init: "zero_output" } : { source: null, init: "random" };
  });
}
