/**
 * The loglikelihood scorer of a growlm model: lm-evaluation-harness 0.4.13's HFLM
 * tokenisation (TemplateLM.loglikelihood, TemplateLM._encode_pair, HFLM.tok_encode) over
 * scoreContinuations.
 *
 * - Trailing whitespace of the context (Python's isspace) moves to the start of the
 *   continuation; then whole = encode(context + continuation), context_enc =
 *   encode(context) and continuation_enc = whole[len(context_enc):], so the continuation's
 *   tokens are those of the joint encoding.
 * - encode applies the tokenizer's own special tokens (LLaMA: BOS) unless `addBosToken`
 *   overrides them, as add_bos_token=None delegates to the tokenizer; a text that already
 *   starts with the prefix token's text gets none.
 * - An empty context: the continuation is encoded without special tokens and the prefix
 *   token (BOS, else EOS) is its context, unless the continuation already starts with it.
 */
import { GrowlmError } from "../errors.js";
import type { Tokenizer } from "../io/tokenizer.js";
import type { LlamaModel } from "../model/llama.js";
import { scoreContinuations, type ContinuationRequest, type ContinuationScore } from "../model/score.js";
import type { LoglikelihoodRequest, LoglikelihoodScorer } from "./harness.js";
import { pythonRstrip } from "./python-str.js";

export interface ModelScorerOptions {
  /**
   * lm-evaluation-harness's add_bos_token: null (default) keeps the tokenizer's own special
   * tokens, true prepends BOS to every encoding, false adds no special token.
   */
  addBosToken?: boolean | null;
  /** The token an empty context becomes (default: BOS, else EOS). */
  prefixTokenId?: number | null;
  /** Longest model input (default: the model's max_position_embeddings). */
  maxLength?: number;
  /** Most distinct inputs in one forward (default 32). */
  batchSize?: number;
  /** Upper bound on B·T of one forward (default 8192). */
  maxBatchTokens?: number;
  /** Called after each forward with the distinct inputs scored so far and their total. */
  onProgress?: (scored: number, total: number) => void;
}

/** Answers loglikelihood requests with `model`, tokenising with `tokenizer` as lm-evaluation-harness's HFLM does. */
export class ModelScorer implements LoglikelihoodScorer {
  readonly addBosToken: boolean | null;
  readonly prefixTokenId: number;
  readonly maxLength: number;
  readonly #prefixText: string;

  constructor(
    readonly model: LlamaModel,
    readonly tokenizer: Tokenizer,
    readonly options: ModelScorerOptions = {},
  ) {
    const op = "ModelScorer";
    this.addBosToken = options.addBosToken ?? null;
    const prefix = options.prefixTokenId ?? tokenizer.bosId ?? tokenizer.eosId;
    if (prefix === null) throw new GrowlmError(op, `${tokenizer.source} has neither a BOS nor an EOS token to stand for an empty context; give prefixTokenId`);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix >= model.config.vocab_size) {
      throw new GrowlmError(op, `prefixTokenId ${prefix} is not a token id of the model (vocab_size ${model.config.vocab_size})`);
    }
    this.prefixTokenId = prefix;
    this.#prefixText = tokenizer.decode([prefix]);
    this.maxLength = options.maxLength ?? model.config.max_position_embeddings;
    if (tokenizer.vocabSize > model.config.vocab_size) {
      throw new GrowlmError(op, `${tokenizer.source} has ${tokenizer.vocabSize} ids but the model's vocab_size is ${model.config.vocab_size}`);
    }
  }

  /**
   * HFLM.tok_encode: with `addSpecialTokens` null, the special tokens that add_bos_token
   * selects, none for a text that already starts with the prefix token's text; with false, none.
   */
  encode(text: string, addSpecialTokens: false | null = null): number[] {
    const none = addSpecialTokens === false || this.addBosToken === false || (this.#prefixText !== "" && text.startsWith(this.#prefixText));
    if (none) return this.tokenizer.encode(text, { addBos: false, addEos: false });
    return this.addBosToken === true ? this.tokenizer.encode(text, { addBos: true }) : this.tokenizer.encode(text);
  }

  /** The token ids of a request: TemplateLM.loglikelihood's empty-context rule, else _encode_pair. */
  encodePair(request: LoglikelihoodRequest): ContinuationRequest {
    const { context, continuation } = request;
    if (context === "") {
      const cont = this.encode(continuation, false);
      if (cont.length === 0) throw new GrowlmError("ModelScorer", `the continuation ${JSON.stringify(continuation)} of an empty context encodes to no token`);
      return cont[0] === this.prefixTokenId ? { context: cont.slice(0, 1), continuation: cont.slice(1) } : { context: [this.prefixTokenId], continuation: cont };
    }
    const trimmed = pythonRstrip(context);
    const moved = context.slice(trimmed.length);
    const whole = this.encode(trimmed + moved + continuation);
    const contextIds = this.encode(trimmed);
    return { context: contextIds, continuation: whole.slice(contextIds.length) };
  }

  /** The requests' scores; for an ensemble model also each member's log-likelihood (ContinuationScore.memberLogprobs). */
  loglikelihood(requests: readonly LoglikelihoodRequest[]): ContinuationScore[] {
    const encoded = requests.map((request, i) => {
      const pair = this.encodePair(request);
      if (pair.context.length === 0 || pair.continuation.length === 0) {
        throw new GrowlmError(
          "ModelScorer",
          `request ${i} (context ${JSON.stringify(request.context.slice(-80))}, continuation ${JSON.stringify(request.continuation)}) encodes to an empty ${pair.context.length === 0 ? "context" : "continuation"}`,
        );
      }
      return pair;
    });
    return scoreContinuations(this.model, encoded, {
      maxLength: this.maxLength,
      ...(this.options.batchSize !== undefined ? { batchSize: this.options.batchSize } : {}),
      ...(this.options.maxBatchTokens !== undefined ? { maxBatchTokens: this.options.maxBatchTokens } : {}),
      ...(this.options.onProgress !== undefined ? { onProgress: this.options.onProgress } : {}),
    });
  }
}
