/**
 * One FiLM-Ensemble member as a model of its own (`growlm export-member`).
 *
 * Member m computes (rmsnorm(x) ⊙ w) ⊙ γ_m + β_m after every norm. A plain LLaMA has only the
 * norm weight there, so:
 * - γ folds into the weight: w' = w ⊙ γ_m. The function is the same; the bits may differ by
 *   one float32 rounding per channel ((n·w)·γ against n·(w·γ)).
 * - β cannot fold into an RMSNorm, which has no bias. In the linear layers after the norm it
 *   would be a bias (β·Wᵀ on q, k, v and on gate, up), which LLaMA has none of
 *   (attention_bias / mlp_bias false), and after the final norm a bias on the LM head, which
 *   transformers' LlamaForCausalLM cannot express at all. So the "llama" export drops β: it is
 *   exact only where β_m = 0 (film_init_gain 0 and untrained shifts), and otherwise an
 *   approximation whose deviation memberDeviation measures.
 * - The "film" export keeps the member exactly: the shared weights unchanged plus a one-member
 *   film.safetensors (γ_m, β_m), which growlm loads as a FiLM-Ensemble of size 1 and whose
 *   outputs are bitwise the member's.
 */
import { GrowlmError } from "../errors.js";
import { LlamaModel } from "../model/llama.js";
import { Tensor } from "../tensor.js";
import { FilmEnsemble } from "./film.js";

/** "llama": a plain LLaMA checkpoint (γ folded, β dropped); "film": a one-member ensemble (exact). */
export type ExportFormat = "llama" | "film";
export const EXPORT_FORMATS: readonly ExportFormat[] = ["llama", "film"];

/** The largest |β_m| over every site (0: the "llama" export is exact up to rounding). */
export function maxAbsBeta(film: FilmEnsemble, member: number): number {
  let max = 0;
  const C = film.hiddenSize;
  for (let s = 0; s < film.sites.length; s++) {
    for (const v of film.beta(s).subarray(member * C, (member + 1) * C)) max = Math.max(max, Math.abs(v));
  }
  return max;
}

/** A new model holding member `member` of `model`'s ensemble in `format` (see the module comment). */
export function exportMember(model: LlamaModel, member: number, format: ExportFormat): LlamaModel {
  const op = "exportMember";
  const film = model.film;
  if (!film) throw new GrowlmError(op, "the model is not a FiLM-Ensemble (no film.safetensors)");
  if (!Number.isSafeInteger(member) || member < 0 || member >= film.ensembleSize) {
    throw new GrowlmError(op, `--member must be an integer in [0, ${film.ensembleSize}) but is ${member}`);
  }
  if (!EXPORT_FORMATS.includes(format)) throw new GrowlmError(op, `--format must be llama or film but is ${JSON.stringify(format)}`);
  const out = new LlamaModel(model.config, { matmul: model.matmul });
  out.params.data.set(model.params.data);
  const C = film.hiddenSize;
  if (format === "llama") {
    film.sites.forEach((site, s) => {
      const w = out.param(site.norm).data;
      const gamma = film.gamma(s).subarray(member * C, (member + 1) * C);
      for (let c = 0; c < C; c++) w[c] = w[c]! * gamma[c]!;
    });
  } else {
    const one = new FilmEnsemble(model.config, 1);
    for (let s = 0; s < film.sites.length; s++) {
      one.gamma(s).set(film.gamma(s).subarray(member * C, (member + 1) * C));
      one.beta(s).set(film.beta(s).subarray(member * C, (member + 1) * C));
    }
    one.initGain = film.initGain;
    out.attachFilm(one);
  }
  out.markParamsChanged();
  return out;
}

export interface MemberDeviation {
  /** Predictions compared (positions of the probe sequences). */
  positions: number;
  /** Mean KL(p_member ‖ p_export) per position (nats). */
  meanKl: number;
  /** max |log p_member − log p_export| over positions and tokens. */
  maxAbsLogprobDiff: number;
}

/**
 * How far an export is from its member: both score the same probe sequences (`ids`, int32
 * [B, T]) and their next-token distributions are compared position by position.
 */
export function memberDeviation(ensemble: LlamaModel, member: number, exported: LlamaModel, ids: Tensor): MemberDeviation {
  const V = ensemble.config.vocab_size;
  const [B, T] = ids.shape as [number, number];
  const M = ensemble.film?.ensembleSize ?? 1;
  const a = Float32Array.from(ensemble.forward(ids, { returnLogits: true }).logits!.data);
  const b = exported.forward(ids, { returnLogits: true }).logits!.data;
  const logSoftmax = (z: Float32Array, base: number): Float64Array => {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, z[base + v]!);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(z[base + v]! - max);
    const lse = max + Math.log(sum);
    return Float64Array.from({ length: V }, (_, v) => z[base + v]! - lse);
  };
  let kl = 0;
  let maxDiff = 0;
  for (let r = 0; r < B; r++) {
    for (let t = 0; t < T; t++) {
      const p = logSoftmax(a, ((r * M + member) * T + t) * V);
      const q = logSoftmax(b as Float32Array, (r * T + t) * V);
      for (let v = 0; v < V; v++) {
        kl += Math.exp(p[v]!) * (p[v]! - q[v]!);
        maxDiff = Math.max(maxDiff, Math.abs(p[v]! - q[v]!));
      }
    }
  }
  return { positions: B * T, meanKl: kl / (B * T), maxAbsLogprobDiff: maxDiff };
}
