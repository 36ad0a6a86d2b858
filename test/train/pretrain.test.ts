/** Pretraining runs: packing, the growth hook, FLOP accounting and the paper's speedup. */
import { describe, expect, test } from "vitest";

import { packCorpus } from "../../src/data/corpus.js";
import { syntheticCorpus } from "../../src/data/synthetic.js";
import { byteLevelTokenizer } from "../../src/io/tokenizer.js";
import { parseLlamaConfig } from "../../src/model/config.js";
import { trainFlopsPerToken } from "../../src/model/flops.js";
import { LlamaModel } from "../../src/model/llama.js";
import { type CurvePoint, growthSpeedup, pretrainRun, reachAt } from "../../src/train/pretrain.js";
import { Trainer } from "../../src/train/trainer.js";

const tokenizer = byteLevelTokenizer();
const FIELDS = { vocab_size: 259, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4, max_position_embeddings: 64 };
const config = parseLlamaConfig(FIELDS);

function trainerOf(c = config): Trainer {
  const model = new LlamaModel(c);
  model.initialize(1);
  return new Trainer(model, { schedule: { type: "constant", learningRate: 3e-3, totalSteps: 1000 } });
}

describe("pretraining", () => {
  test("packing: BOS + text + EOS per document, whole blocks, a seeded validation share", () => {
    const packed = packCorpus(["ab", "cde"], tokenizer, 3, 0.4, 1);
    const all = [...packed.train, ...packed.validation].flatMap((b) => Array.from(b)).sort();
    // <s> a b </s> <s> c d e </s>: 9 tokens, 3 blocks of 3.
    expect(all).toEqual([256, 97, 98, 257, 256, 99, 100, 101, 257].sort());
    expect(packed.validation).toHaveLength(1);
    expect(() => packCorpus(["a"], tokenizer, 8, 0.1, 1)).toThrow(/fewer than two blocks/);
  });

  test("a run counts tokens and FLOPs, evaluates, and grows once at the given token count", () => {
    const corpus = packCorpus(syntheticCorpus(60), tokenizer, 32, 0.1, 2);
    let grownAt = -1;
    const bigger = parseLlamaConfig({ ...FIELDS, num_hidden_layers: 2 });
    const { curve, trainer } = pretrainRun(trainerOf(), {
      corpus,
      batchSize: 4,
      maxTokens: 4 * 32 * 6,
      evalSteps: 2,
      seed: 3,
      growth: {
        atTokens: 4 * 32 * 3,
        apply: (t) => {
          grownAt = t.step;
          t.dispose();
          t.model.dispose();
          return { trainer: trainerOf(bigger) };
        },
      },
    });
    expect(grownAt).toBe(3);
    const last = curve.at(-1)!;
    expect(last.tokens).toBe(4 * 32 * 6);
    const small = trainFlopsPerToken(config, 32) * 4 * 32;
    const big = trainFlopsPerToken(bigger, 32) * 4 * 32;
    expect(last.flops).toBeCloseTo(3 * small + 3 * big, 0);
    expect(curve.filter((p) => p.step === 3).length).toBe(2); // before and after growth
    expect(curve.every((p) => Number.isFinite(p.evalLoss))).toBe(true);
    expect(trainer.model.config.num_hidden_layers).toBe(2);
    trainer.dispose();
  });

  test("speedup: tokens and FLOPs the grown run needs to reach the scratch run's final loss", () => {
    const pt = (tokens: number, flops: number, evalLoss: number): CurvePoint => ({ step: 0, tokens, flops, loss: evalLoss, evalLoss, parameters: 1 });
    const scratch = [pt(0, 0, 5), pt(100, 1000, 3), pt(300, 3000, 2)];
    const grown = [pt(0, 0, 5), pt(100, 500, 2.5), pt(200, 1500, 1.5)];
    expect(reachAt(grown, 2, "tokens")).toBeCloseTo(150, 12);
    const s = growthSpeedup(scratch, grown);
    expect(s.targetLoss).toBe(2);
    expect(s.grownTokens).toBeCloseTo(150, 12);
    expect(s.tokenSpeedup).toBeCloseTo(1, 12);
    expect(s.flopSpeedup).toBeCloseTo(3000 / 1000 - 1, 12);
    expect(growthSpeedup(scratch, [pt(0, 0, 5), pt(10, 10, 4)]).tokenSpeedup).toBeNull();
  });
});
