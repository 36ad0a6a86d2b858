/**
 * Training compute, counted as the growth literature does (Kaplan et al.; Du et al. 2024):
 * 6 FLOPs per matrix parameter per token (forward 2, backward 4) — the embedding lookup is
 * free, the LM head is a matrix — plus causal attention: forward 4·T·C per token and layer,
 * halved by the mask, and the backward 2.5 times the forward (FlashAttention's count).
 */
import { type LlamaConfig, headDim } from "./config.js";

/** Parameters that multiply activations (every linear layer and the LM head; not embeddings or norms). */
export function matrixParameters(config: LlamaConfig): number {
  const C = config.hidden_size;
  const kvC = config.num_key_value_heads * headDim(config);
  const perLayer = 2 * C * C + 2 * C * kvC + 3 * C * config.intermediate_size;
  return config.num_hidden_layers * perLayer + config.vocab_size * C;
}

/** FLOPs of training on one token of a sequence of length T (forward and backward). */
export function trainFlopsPerToken(config: LlamaConfig, T: number): number {
  const attentionForward = 2 * T * config.hidden_size;
  return 6 * matrixParameters(config) + 3.5 * attentionForward * config.num_hidden_layers;
}
