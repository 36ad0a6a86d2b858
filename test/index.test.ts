/**
 * The public API composes: a one-layer language model (embedding -> RMSNorm -> tied-free
 * head -> cross-entropy) trained with AdamW over one flat parameter buffer, using only what
 * src/index.ts exports. It must learn, and be bitwise reproducible across thread counts.
 */
import { describe, expect, it } from "vitest";

import {
  Tensor,
  adamwStep,
  crossEntropy,
  crossEntropyBackward,
  embeddingBackward,
  embeddingForward,
  fillNormal,
  matmul,
  rmsnormBackward,
  rmsnormForward,
  runtimeInfo,
  setThreads,
} from "../src/index.js";
import { expectBitwiseEqual, randomInts } from "./helpers/reference.js";

const V = 37; // vocabulary
const C = 16; // hidden size
const N = 24; // tokens per batch

function view(flat: Tensor, begin: number, shape: number[]): Tensor<"float32"> {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor((flat.data as Float32Array).subarray(begin, begin + n), shape, "float32");
}

function train(threads: number, steps: number): { losses: number[]; params: Tensor } {
  setThreads(threads);
  const total = V * C + C + V * C;
  const params = Tensor.zeros([total]);
  const grads = Tensor.zeros([total]);
  const m = Tensor.zeros([total]);
  const v = Tensor.zeros([total]);
  const emb = view(params, 0, [V, C]);
  const normW = view(params, V * C, [C]);
  const head = view(params, V * C + C, [V, C]);
  const dEmb = view(grads, 0, [V, C]);
  const dNormW = view(grads, V * C, [C]);
  const dHead = view(grads, V * C + C, [V, C]);
  fillNormal(emb, { seed: 7, std: 0.5 });
  fillNormal(head, { seed: 8, offset: V * C, std: 0.5 });
  normW.data.fill(1);
  const segments = [
    { begin: 0, end: V * C, decay: true },
    { begin: V * C, end: V * C + C, decay: false }, // norms do not decay
    { begin: V * C + C, end: total, decay: true },
  ];
  // The task: predict (3·id + 1) mod V from id.
  const ids = Tensor.from(randomInts(N, 11, V), [N], "int32");
  const targets = Tensor.from(Array.from(ids.data, (id) => (3 * id + 1) % V), [N], "int32");
  targets.data[5] = -100; // an ignored position

  const losses: number[] = [];
  for (let step = 1; step <= steps; step++) {
    grads.data.fill(0);
    const x = embeddingForward(ids, emb);
    const { out: h, rstd } = rmsnormForward(x, normW, 1e-5);
    const logits = matmul(h, head, { transB: true });
    const { loss, lse, count } = crossEntropy(logits, targets);
    losses.push(loss);
    const dLogits = crossEntropyBackward(logits, targets, lse, { dloss: 1 / count, inPlace: true });
    const dh = matmul(dLogits, head);
    matmul(dLogits, h, { transA: true, beta: 1, out: dHead });
    const dx = rmsnormBackward(dh, x, normW, rstd, dNormW);
    embeddingBackward(dx, ids, dEmb);
    adamwStep({ params, grads, m, v }, segments, { lr: 3e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step });
  }
  return { losses, params };
}

describe("public API", () => {
  it("trains a one-layer LM that learns, bitwise the same on 1 and 2 threads", () => {
    const threads = runtimeInfo().threads;
    try {
      const one = train(1, 60);
      const two = train(2, 60);
      expect(one.losses[0]).toBeGreaterThan(2);
      expect(one.losses.at(-1)!).toBeLessThan(0.25 * one.losses[0]!);
      expect(two.losses).toEqual(one.losses);
      expectBitwiseEqual(one.params.data, two.params.data, "parameters after 60 steps");
    } finally {
      setThreads(threads);
    }
  });
});
