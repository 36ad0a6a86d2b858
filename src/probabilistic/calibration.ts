/**
 * Uncertainty and calibration measures of a (possibly ensembled) predictive distribution.
 *
 * Notation: N predictions over K classes (the choices of a multiple-choice document, or the
 * vocabulary at one token); M members (FiLM-Ensemble members, MC-dropout samples; M = 1 for a
 * deterministic model) with distributions p_m; the prediction is the members' averaged
 * probability p̄ = (1/M) Σ_m p_m (probabilities are averaged, never logits), its label
 * ŷ = argmax_k p̄_k and its confidence conf = max_k p̄_k. Natural logarithms throughout, so
 * NLL and entropies are in nats; 0·log 0 = 0.
 *
 *   NLL      = −(1/N) Σ_n log max(p̄_{n,y_n}, 1e-12)
 *   Brier    = (1/N) Σ_n Σ_k (p̄_{n,k} − 1[y_n = k])²          (summed over classes, not divided by K)
 *   ECE      = Σ_b (|B_b| / N) · |acc(B_b) − conf(B_b)|          (top-label, 15 equal-width bins)
 *              B_b = {n : (b−1)/15 < conf_n ≤ b/15}, acc(B_b) = mean 1[ŷ_n = y_n], conf(B_b) = mean conf_n
 *   MCE      = max_b |acc(B_b) − conf(B_b)| over non-empty bins
 *   H[p̄]     = −Σ_k p̄_k log p̄_k                                  (total / predictive entropy)
 *   E_m H[p_m] = −(1/M) Σ_m Σ_k p_{m,k} log p_{m,k}               (expected entropy, aleatoric)
 *   MI       = H[p̄] − E_m H[p_m] = (1/M) Σ_m KL(p_m ‖ p̄) ≥ 0     (mutual information, epistemic; 0 for M = 1)
 *
 * ECE follows Guo et al. (2017) and torchmetrics' default of 15 bins, on p̄ (FiLM-Ensemble's
 * code bins softmax(mean logits) into 11 bins; growlm does not). Bins are right-closed as in
 * Guo et al.; a confidence of exactly 0 (impossible for a distribution) would fall in bin 1.
 *
 * For sequences (generation) two readings exist; both are here:
 * - token level: every target token is one prediction over the vocabulary, the measures above
 *   averaged over tokens (teacher forcing on a reference, or on the model's own output);
 * - sequence level: the members' sequence log-likelihoods ℓ_m = Σ_t log p_m(y_t | y_<t):
 *   NLL_seq = −log((1/M) Σ_m exp(ℓ_m)) (the members' averaged sequence probability), and the
 *   knowledge-uncertainty estimate RMI = log p̄(y) − (1/M) Σ_m ℓ_m ≥ 0 (Malinin & Gales, ICLR
 *   2021: the single-sample estimate of the reverse mutual information E_m KL(p̄ ‖ p_m) on
 *   y ~ p̄, e.g. the generated output).
 */
import { GrowlmError } from "../errors.js";

/** The floor under a probability before its log (NLL): log(1e-12) = −27.6 nats at most. */
export const PROBABILITY_FLOOR = 1e-12;
/** Bins of the expected calibration error (Guo et al. 2017; torchmetrics' default). */
export const ECE_BINS = 15;

/** softmax(z / T), in float64. */
export function softmax(logits: ArrayLike<number>, temperature = 1): Float64Array {
  const out = new Float64Array(logits.length);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]! / temperature);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i]! / temperature - max);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / sum;
  return out;
}

/** p̄ = (1/M) Σ_m p_m of M distributions over the same classes. */
export function averageProbabilities(members: readonly ArrayLike<number>[]): Float64Array {
  if (members.length === 0) throw new GrowlmError("averageProbabilities", "no member distribution");
  const K = members[0]!.length;
  const out = new Float64Array(K);
  for (const p of members) {
    if (p.length !== K) throw new GrowlmError("averageProbabilities", `members disagree on the number of classes (${K} vs ${p.length})`);
    for (let k = 0; k < K; k++) out[k] = out[k]! + p[k]!;
  }
  for (let k = 0; k < K; k++) out[k] = out[k]! / members.length;
  return out;
}

/** H[p] = −Σ_k p_k log p_k (nats; 0·log 0 = 0). */
export function entropy(p: ArrayLike<number>): number {
  let h = 0;
  for (let k = 0; k < p.length; k++) if (p[k]! > 0) h -= p[k]! * Math.log(p[k]!);
  return h;
}

export interface EntropyDecomposition {
  /** H[p̄], the total (predictive) entropy. */
  total: number;
  /** E_m H[p_m], the expected entropy (aleatoric part). */
  expected: number;
  /** H[p̄] − E_m H[p_m] (epistemic part), clamped at 0 against rounding. */
  mutualInformation: number;
}

/** The entropy decomposition of M member distributions (see the module comment). */
export function entropyDecomposition(members: readonly ArrayLike<number>[]): EntropyDecomposition {
  const total = entropy(averageProbabilities(members));
  const expected = members.reduce((s, p) => s + entropy(p), 0) / members.length;
  return { total, expected, mutualInformation: Math.max(0, total - expected) };
}

/** Σ_k (p_k − 1[y = k])², one prediction's Brier score. */
export function brierScore(p: ArrayLike<number>, label: number): number {
  let s = 0;
  for (let k = 0; k < p.length; k++) s += (p[k]! - (k === label ? 1 : 0)) ** 2;
  return s;
}

export interface CalibrationBin {
  /** (lower, upper]: the confidences this bin holds. */
  lower: number;
  upper: number;
  count: number;
  /** Mean accuracy and mean confidence of the bin (NaN when empty). */
  accuracy: number;
  confidence: number;
}

export interface CalibrationError {
  /** Expected calibration error (a fraction in [0, 1]; × 100 for %). */
  ece: number;
  /** Maximum calibration error over the non-empty bins. */
  mce: number;
  bins: CalibrationBin[];
}

/** The bin of a confidence: b (0-based) with b/n < conf ≤ (b+1)/n, conf ≤ 0 in bin 0. */
function binOf(confidence: number, nBins: number): number {
  let lo = 0;
  let hi = nBins - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (confidence <= (mid + 1) / nBins) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * Top-label ECE and MCE with `nBins` equal-width, right-closed bins (see the module comment).
 * @param confidences conf_n = max_k p̄_{n,k}, in [0, 1]
 * @param correct 1[ŷ_n = y_n]
 */
export function expectedCalibrationError(confidences: ArrayLike<number>, correct: ArrayLike<boolean>, nBins = ECE_BINS): CalibrationError {
  const op = "expectedCalibrationError";
  if (confidences.length !== correct.length) throw new GrowlmError(op, `${confidences.length} confidences but ${correct.length} correctness flags`);
  if (!Number.isSafeInteger(nBins) || nBins < 1) throw new GrowlmError(op, `nBins must be a positive integer but is ${nBins}`);
  const count = new Float64Array(nBins);
  const hits = new Float64Array(nBins);
  const conf = new Float64Array(nBins);
  for (let n = 0; n < confidences.length; n++) {
    const c = confidences[n]!;
    if (!(c >= 0 && c <= 1)) throw new GrowlmError(op, `confidence ${n} is ${c}, outside [0, 1]`);
    const b = binOf(c, nBins);
    count[b] = count[b]! + 1;
    hits[b] = hits[b]! + (correct[n] ? 1 : 0);
    conf[b] = conf[b]! + c;
  }
  const N = confidences.length;
  let ece = 0;
  let mce = 0;
  const bins: CalibrationBin[] = [];
  for (let b = 0; b < nBins; b++) {
    const n = count[b]!;
    const accuracy = n > 0 ? hits[b]! / n : Number.NaN;
    const confidence = n > 0 ? conf[b]! / n : Number.NaN;
    if (n > 0) {
      const gap = Math.abs(accuracy - confidence);
      ece += (n / N) * gap;
      mce = Math.max(mce, gap);
    }
    bins.push({ lower: b / nBins, upper: (b + 1) / nBins, count: n, accuracy, confidence });
  }
  return { ece: N === 0 ? Number.NaN : ece, mce: N === 0 ? Number.NaN : mce, bins };
}

/** Every measure of a set of predictions (means over the N predictions). */
export interface UncertaintySummary {
  /** N, the predictions summarised. */
  count: number;
  /** mean 1[argmax p̄ = y]. */
  accuracy: number;
  nll: number;
  brier: number;
  ece: number;
  mce: number;
  /** Mean H[p̄], E_m H[p_m] and MI. */
  entropy: number;
  expectedEntropy: number;
  mutualInformation: number;
  /** Mean confidence max_k p̄_k. */
  confidence: number;
  /** Members per prediction. */
  members: number;
  nBins: number;
}

/**
 * Accumulates predictions one at a time (token-level measures over a large vocabulary never
 * hold more than one prediction's distributions) and summarises them.
 */
export class UncertaintyAccumulator {
  #n = 0;
  #members = 0;
  #hits = 0;
  #nll = 0;
  #brier = 0;
  #entropy = 0;
  #expected = 0;
  #mi = 0;
  readonly #confidences: number[] = [];
  readonly #correct: boolean[] = [];

  constructor(readonly nBins = ECE_BINS) {}

  /**
   * One prediction from its members' probabilities.
   * @param memberProbs M × K values, member m's distribution at [m·K, (m + 1)·K)
   * @param members M
   * @param label the true class y in [0, K)
   */
  addProbabilities(memberProbs: ArrayLike<number>, members: number, label: number): void {
    const op = "UncertaintyAccumulator";
    const K = memberProbs.length / members;
    if (!Number.isSafeInteger(members) || members < 1 || !Number.isSafeInteger(K) || K < 1) {
      throw new GrowlmError(op, `${memberProbs.length} probabilities do not split into ${members} members`);
    }
    if (!Number.isSafeInteger(label) || label < 0 || label >= K) throw new GrowlmError(op, `label ${label} is not a class in [0, ${K})`);
    if (this.#n > 0 && members !== this.#members) throw new GrowlmError(op, `predictions with ${this.#members} and ${members} members`);
    this.#members = members;
    const pbar = new Float64Array(K);
    let expected = 0;
    for (let m = 0; m < members; m++) {
      let h = 0;
      for (let k = 0; k < K; k++) {
        const p = memberProbs[m * K + k]!;
        pbar[k] = pbar[k]! + p;
        if (p > 0) h -= p * Math.log(p);
      }
      expected += h;
    }
    let argmax = 0;
    let total = 0;
    let squares = 0;
    for (let k = 0; k < K; k++) {
      const p = (pbar[k] = pbar[k]! / members);
      if (p > pbar[argmax]!) argmax = k;
      if (p > 0) total -= p * Math.log(p);
      squares += p * p;
    }
    expected /= members;
    const py = pbar[label]!;
    this.#n++;
    this.#hits += argmax === label ? 1 : 0;
    this.#nll -= Math.log(Math.max(py, PROBABILITY_FLOOR));
    this.#brier += squares - 2 * py + 1;
    this.#entropy += total;
    this.#expected += expected;
    this.#mi += Math.max(0, total - expected);
    this.#confidences.push(Math.min(1, pbar[argmax]!));
    this.#correct.push(argmax === label);
  }

  /**
   * One prediction from its members' logits (each member's distribution is softmax(z_m / T)).
   * @param memberLogits M × K values
   */
  addLogits(memberLogits: ArrayLike<number>, members: number, label: number, temperature = 1): void {
    const K = memberLogits.length / members;
    const probs = new Float64Array(memberLogits.length);
    for (let m = 0; m < members; m++) {
      let max = -Infinity;
      for (let k = 0; k < K; k++) max = Math.max(max, memberLogits[m * K + k]! / temperature);
      let sum = 0;
      for (let k = 0; k < K; k++) sum += probs[m * K + k] = Math.exp(memberLogits[m * K + k]! / temperature - max);
      for (let k = 0; k < K; k++) probs[m * K + k] = probs[m * K + k]! / sum;
    }
    this.addProbabilities(probs, members, label);
  }

  get count(): number {
    return this.#n;
  }

  summary(): UncertaintySummary {
    const n = this.#n;
    const mean = (s: number): number => (n === 0 ? Number.NaN : s / n);
    const { ece, mce } = expectedCalibrationError(this.#confidences, this.#correct, this.nBins);
    return {
      count: n,
      accuracy: mean(this.#hits),
      nll: mean(this.#nll),
      brier: mean(this.#brier),
      ece,
      mce,
      entropy: mean(this.#entropy),
      expectedEntropy: mean(this.#expected),
      mutualInformation: mean(this.#mi),
      confidence: mean(this.#confidences.reduce((a, b) => a + b, 0)),
      members: this.#members,
      nBins: this.nBins,
    };
  }
}

/**
 * The measures of N classification predictions (multiple-choice documents: p_m = softmax over
 * the choices of member m's log-likelihoods).
 * @param memberProbs per prediction, per member, the class distribution ([N][M][K]; K may vary between predictions)
 * @param labels y_n
 */
export function classificationUncertainty(memberProbs: readonly (readonly ArrayLike<number>[])[], labels: readonly number[], nBins = ECE_BINS): UncertaintySummary {
  if (memberProbs.length !== labels.length) throw new GrowlmError("classificationUncertainty", `${memberProbs.length} predictions but ${labels.length} labels`);
  const acc = new UncertaintyAccumulator(nBins);
  memberProbs.forEach((members, n) => {
    const K = members[0]?.length ?? 0;
    const flat = new Float64Array(members.length * K);
    members.forEach((p, m) => {
      if (p.length !== K) throw new GrowlmError("classificationUncertainty", `prediction ${n}: members disagree on the number of classes`);
      flat.set(Array.from(p), m * K);
    });
    acc.addProbabilities(flat, members.length, labels[n]!);
  });
  return acc.summary();
}

/** Sequence-level measures of one sequence from its members' log-likelihoods. */
export interface SequenceUncertainty {
  /** −log((1/M) Σ_m exp(ℓ_m)): the NLL of the members' averaged sequence probability (nats). */
  nll: number;
  /** nll / length (nats per token). */
  nllPerToken: number;
  /** −(1/M) Σ_m ℓ_m: the members' mean NLL. */
  memberNll: number;
  /** log p̄(y) − (1/M) Σ_m ℓ_m ≥ 0: the reverse-mutual-information estimate (knowledge uncertainty). */
  rmi: number;
}

/**
 * @param memberLogprobs ℓ_m = Σ_t log p_m(y_t | y_<t, x) of each member (nats)
 * @param length tokens of y (> 0)
 */
export function sequenceUncertainty(memberLogprobs: readonly number[], length: number): SequenceUncertainty {
  const op = "sequenceUncertainty";
  if (memberLogprobs.length === 0) throw new GrowlmError(op, "no member log-likelihood");
  if (!(length > 0)) throw new GrowlmError(op, `the sequence length must be > 0 but is ${length}`);
  const M = memberLogprobs.length;
  const max = Math.max(...memberLogprobs);
  const logMean = max + Math.log(memberLogprobs.reduce((s, l) => s + Math.exp(l - max), 0) / M);
  const meanLogprob = memberLogprobs.reduce((s, l) => s + l, 0) / M;
  return { nll: -logMean, nllPerToken: -logMean / length, memberNll: -meanLogprob, rmi: Math.max(0, logMean - meanLogprob) };
}

/**
 * log p̄_y at temperature T: log((1/M) Σ_m softmax(z_m / T)_y), in float64.
 * @param memberLogits M × K values
 */
export function logMeanProbability(memberLogits: ArrayLike<number>, members: number, label: number, temperature = 1): number {
  const K = memberLogits.length / members;
  const terms = new Float64Array(members);
  for (let m = 0; m < members; m++) {
    let max = -Infinity;
    for (let k = 0; k < K; k++) max = Math.max(max, memberLogits[m * K + k]! / temperature);
    let sum = 0;
    for (let k = 0; k < K; k++) sum += Math.exp(memberLogits[m * K + k]! / temperature - max);
    terms[m] = memberLogits[m * K + label]! / temperature - max - Math.log(sum);
  }
  let max = -Infinity;
  for (const t of terms) max = Math.max(max, t);
  let sum = 0;
  for (const t of terms) sum += Math.exp(t - max);
  return max + Math.log(sum / members);
}

export interface TemperatureFit {
  /** The fitted T (> 0); p_m = softmax(z_m / T). */
  temperature: number;
  /** Mean NLL at the fitted T and at T = 1. */
  nll: number;
  nllAtOne: number;
}

/** Search range of the temperature and the relative width at which the search stops. */
const TEMPERATURE_RANGE: [number, number] = [0.05, 20];
const TEMPERATURE_TOLERANCE = 1e-5;

/**
 * Temperature scaling (Guo et al., 2017): the one T > 0 that minimises the mean NLL of
 * p̄_T = (1/M) Σ_m softmax(z_m / T) over a held-out set, the cheap post-hoc calibration
 * baseline. 1-D minimisation: a grid of 41 log-spaced temperatures in [0.05, 20] brackets
 * the minimum, then golden-section search on log T narrows it to a relative width of 1e-5
 * (for M = 1 the NLL is convex in 1/T, so the minimum is unique).
 * @param nllAt the mean NLL at a temperature (e.g. TemperatureData.nll)
 */
export function fitTemperature(nllAt: (temperature: number) => number): TemperatureFit {
  const [lo, hi] = TEMPERATURE_RANGE.map(Math.log) as [number, number];
  const f = (logT: number): number => nllAt(Math.exp(logT));
  const grid = Array.from({ length: 41 }, (_, i) => lo + ((hi - lo) * i) / 40);
  const values = grid.map(f);
  let best = 0;
  values.forEach((v, i) => {
    if (v < values[best]!) best = i;
  });
  let a = grid[Math.max(0, best - 1)]!;
  let b = grid[Math.min(grid.length - 1, best + 1)]!;
  const ratio = (Math.sqrt(5) - 1) / 2;
  let c = b - ratio * (b - a);
  let d = a + ratio * (b - a);
  let fc = f(c);
  let fd = f(d);
  while (b - a > TEMPERATURE_TOLERANCE) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - ratio * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + ratio * (b - a);
      fd = f(d);
    }
  }
  const logT = (a + b) / 2;
  let temperature = Math.exp(logT);
  let nll = f(logT);
  if (values[best]! < nll) {
    temperature = Math.exp(grid[best]!);
    nll = values[best]!;
  }
  return { temperature, nll, nllAtOne: nllAt(1) };
}

/**
 * Held-out predictions kept for temperature scaling: each one's member logits (M × K, K may
 * vary: choices of different documents) and label. The NLL at any T is then recomputed
 * exactly; memory is M·K floats per prediction.
 */
export class TemperatureData {
  readonly #logits: Float32Array[] = [];
  readonly #labels: number[] = [];
  readonly #members: number[] = [];

  /** Adds one prediction: member logits M × K and its label. */
  add(memberLogits: ArrayLike<number>, members: number, label: number): void {
    const K = memberLogits.length / members;
    if (!Number.isSafeInteger(K) || K < 1 || !Number.isSafeInteger(label) || label < 0 || label >= K) {
      throw new GrowlmError("TemperatureData.add", `label ${label} with ${memberLogits.length} logits of ${members} members`);
    }
    this.#logits.push(Float32Array.from(memberLogits));
    this.#labels.push(label);
    this.#members.push(members);
  }

  get count(): number {
    return this.#labels.length;
  }

  /** Mean −log p̄_T(y) over the predictions. */
  nll(temperature: number): number {
    let s = 0;
    this.#logits.forEach((z, i) => {
      s -= Math.max(logMeanProbability(z, this.#members[i]!, this.#labels[i]!, temperature), Math.log(PROBABILITY_FLOOR));
    });
    return this.count === 0 ? Number.NaN : s / this.count;
  }

  /** fitTemperature on these predictions. */
  fit(): TemperatureFit {
    if (this.count === 0) throw new GrowlmError("TemperatureData.fit", "no held-out prediction to fit a temperature on");
    return fitTemperature((t) => this.nll(t));
  }
}
