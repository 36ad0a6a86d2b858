import { expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { BASE_SEED, expectBitwiseEqual, expectClose, randomF32 } from "../helpers/reference.js";
import { describeCuda, downloadF32, downloadU16, poisoned, upload } from "../helpers/cuda.js";

const U = 2 ** -24; // fp32 unit roundoff
// The CPU and CUDA kernels each err by at most ~(D + T)·u against float64 in the forward
// (test/kernels/attention.test.ts); they sum in different orders, so they agree to twice that.
const fwdRtol = (d: Dims): number => 2 * (d.D + d.T + 8) * U;
// Backward: dk, dv also sum T·H/Hkv query rows (the CPU test's bound, doubled).
const bwdRtol = (d: Dims): number => 2 * (d.D + d.T * (1 + d.H / d.Hkv) + 8) * U;
// bf16 flash attention against the CPU on the same bf16-rounded inputs: P and dS are rounded to
// bf16 (2^-9 relative) for the second product of each pair and the outputs to bf16 once more;
// a few bf16 roundings of the largest outputs.
const BF16_RTOL = 2 ** -6;
// lse of the bf16 path: fp32 products of bf16 inputs (exact) summed in fp32.
const BF16_LSE_RTOL = 2 ** -16;

interface Dims {
  B: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
}

const label = (d: Dims): string => `B=${d.B} T=${d.T} H=${d.H} Hkv=${d.Hkv} D=${d.D}`;

interface Inputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  dout: Float32Array;
}

function inputs(d: Dims, seed: number): Inputs {
  const nq = d.B * d.T * d.H * d.D, nkv = d.B * d.T * d.Hkv * d.D;
  // Scores of a few units: softmax rows neither uniform nor one-hot.
  return {
    q: randomF32(nq, seed, -2, 2),
    k: randomF32(nkv, seed + 1, -2, 2),
    v: randomF32(nkv, seed + 2),
    dout: randomF32(nq, seed + 3),
  };
}

function cpuAttention(d: Dims, x: Inputs, scale: number) {
  const { B, T, H, Hkv, D } = d;
  const out = new Float32Array(B * T * H * D), lse = new Float32Array(B * H * T);
  binding.attentionForward(out, lse, x.q, x.k, x.v, B, T, H, Hkv, D, scale);
  const dq = new Float32Array(out.length), dk = new Float32Array(x.k.length), dv = new Float32Array(x.k.length);
  binding.attentionBackward(dq, dk, dv, x.dout, x.q, x.k, x.v, out, lse, B, T, H, Hkv, D, scale);
  return { out, lse, dq, dk, dv };
}

function cudaAttention(d: Dims, x: Inputs, scale: number) {
  const { B, T, H, Hkv, D } = d;
  const q = upload(x.q), k = upload(x.k), v = upload(x.v), dout = upload(x.dout);
  const out = poisoned(x.q.byteLength), lse = poisoned(B * H * T * 4);
  binding.cuda.attentionForward(out, lse, q, k, v, B, T, H, Hkv, D, scale);
  const dq = poisoned(x.q.byteLength), dk = poisoned(x.k.byteLength), dv = poisoned(x.k.byteLength);
  binding.cuda.attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, Hkv, D, scale);
  return { out: downloadF32(out), lse: downloadF32(lse), dq: downloadF32(dq), dk: downloadF32(dk), dv: downloadF32(dv) };
}

// bf16 <-> float32 through the bits: round to nearest even, as __float2bfloat16.
function toBf16Bits(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (u[i]! + 0x7fff + ((u[i]! >>> 16) & 1)) >>> 16;
  return out;
}

function fromBf16Bits(b: Uint16Array): Float32Array {
  const u = new Uint32Array(b.length);
  for (let i = 0; i < b.length; i++) u[i] = b[i]! << 16;
  return new Float32Array(u.buffer);
}

const roundBf16 = (x: Float32Array): Float32Array => fromBf16Bits(toBf16Bits(x));

// Small sizes (the emulator is slow): T = 1, odd T over several tiles (16-row query and 32-key
// tiles), MHA, GQA and MQA, D below, at and above a warp, odd D, D in the 8-columns-per-lane case.
const FP32_CASES: Dims[] = [
  { B: 1, T: 1, H: 1, Hkv: 1, D: 1 },
  { B: 2, T: 37, H: 4, Hkv: 2, D: 24 },
  { B: 1, T: 45, H: 3, Hkv: 1, D: 64 },
  { B: 1, T: 19, H: 2, Hkv: 2, D: 97 },
  { B: 1, T: 9, H: 2, Hkv: 1, D: 160 },
];

describeCuda("attention (cuda, fp32)", () => {
  it.each(FP32_CASES)("forward and backward agree with the CPU backend for %o", (d) => {
    const seed = BASE_SEED + d.T * 100 + d.D;
    const x = inputs(d, seed);
    const scale = 1 / Math.sqrt(d.D);
    const cpu = cpuAttention(d, x, scale);
    const gpu = cudaAttention(d, x, scale);
    expectClose(gpu.out, cpu.out, fwdRtol(d), `out ${label(d)}`);
    expectClose(gpu.lse, cpu.lse, fwdRtol(d), `lse ${label(d)}`);
    expectClose(gpu.dq, cpu.dq, bwdRtol(d), `dq ${label(d)}`);
    expectClose(gpu.dk, cpu.dk, bwdRtol(d), `dk ${label(d)}`);
    expectClose(gpu.dv, cpu.dv, bwdRtol(d), `dv ${label(d)}`);
  });

  it("is causal: changing keys, values and output gradients at positions >= t0 leaves earlier rows' outputs and dq unchanged", () => {
    const d: Dims = { B: 1, T: 40, H: 2, Hkv: 1, D: 16 };
    const t0 = 21;
    const x = inputs(d, BASE_SEED + 11);
    const y = inputs(d, BASE_SEED + 12);
    const mixed: Inputs = { q: x.q.slice(), k: x.k.slice(), v: x.v.slice(), dout: x.dout.slice() };
    mixed.k.set(y.k.subarray(t0 * d.Hkv * d.D), t0 * d.Hkv * d.D);
    mixed.v.set(y.v.subarray(t0 * d.Hkv * d.D), t0 * d.Hkv * d.D);
    mixed.dout.set(y.dout.subarray(t0 * d.H * d.D), t0 * d.H * d.D);
    const a = cudaAttention(d, x, 0.25), b = cudaAttention(d, mixed, 0.25);
    const rows = t0 * d.H * d.D;
    expectBitwiseEqual(a.out.subarray(0, rows), b.out.subarray(0, rows), "out before t0");
    expectBitwiseEqual(a.dq.subarray(0, rows), b.dq.subarray(0, rows), "dq before t0");
  });

  it("gives the same bits on every run (no atomics, fixed-order sums)", () => {
    const d: Dims = { B: 1, T: 40, H: 4, Hkv: 2, D: 16 };
    const x = inputs(d, BASE_SEED + 21);
    const a = cudaAttention(d, x, 0.2), b = cudaAttention(d, x, 0.2);
    for (const key of ["out", "lse", "dq", "dk", "dv"] as const) expectBitwiseEqual(a[key], b[key], key);
  });

  it("cached forward agrees with the CPU backend, with left padding and queries below keyBegin", () => {
    const B = 3, Tq = 4, Tk = 37, S = 41, H = 4, Hkv = 2, D = 20, scale = 0.3;
    const q = randomF32(B * Tq * H * D, BASE_SEED + 31, -2, 2);
    const k = randomF32(B * S * Hkv * D, BASE_SEED + 32, -2, 2);
    const v = randomF32(B * S * Hkv * D, BASE_SEED + 33);
    // Row 1: keys from slot 5 (more than one 32-slot chunk); row 2: the first two queries
    // (slots 33, 34) sit below keyBegin = 35 and get zeros.
    const keyBegin = Int32Array.from([0, 5, 35]);
    const expected = new Float32Array(B * Tq * H * D);
    binding.attentionCachedForward(expected, q, k, v, keyBegin, B, Tq, Tk, S, H, Hkv, D, scale);
    const out = poisoned(expected.byteLength);
    binding.cuda.attentionCachedForward(out, upload(q), upload(k), upload(v), upload(keyBegin), B, Tq, Tk, S, H, Hkv, D, scale);
    const got = downloadF32(out);
    expectClose(got, expected, 2 * (D + Tk + 8) * U, "cached out");
    expect(Array.from(got.subarray(2 * Tq * H * D, (2 * Tq + 2) * H * D)).every((x) => x === 0)).toBe(true);
  });

  it("cached forward: prefill then single steps give bitwise what one call gives", () => {
    const Tk = 12, S = 16, H = 2, Hkv = 1, D = 8, scale = 0.4;
    const q = randomF32(Tk * H * D, BASE_SEED + 41, -2, 2);
    const k = upload(randomF32(S * Hkv * D, BASE_SEED + 42, -2, 2));
    const v = upload(randomF32(S * Hkv * D, BASE_SEED + 43));
    const begin = upload(Int32Array.from([2]));
    const whole = poisoned(q.byteLength);
    binding.cuda.attentionCachedForward(whole, upload(q), k, v, begin, 1, Tk, Tk, S, H, Hkv, D, scale);
    const all = downloadF32(whole);
    for (const t of [7, 11]) {
      const step = poisoned(H * D * 4);
      binding.cuda.attentionCachedForward(step, upload(q.subarray(t * H * D, (t + 1) * H * D)), k, v, begin, 1, 1, t + 1, S, H, Hkv, D, scale);
      expectBitwiseEqual(downloadF32(step), all.subarray(t * H * D, (t + 1) * H * D), `step ${t}`);
    }
  });

  it("names the op and the shape when a buffer has the wrong length, and refuses D > 256", () => {
    const q = upload(new Float32Array(2 * 3 * 4).fill(1));
    const kv = upload(new Float32Array(2 * 3 * 2).fill(1));
    expect(() => binding.cuda.attentionForward(poisoned(20 * 4), poisoned(12), q, kv, kv, 1, 2, 3, 1, 4, 0.5)).toThrow(
      /attentionForward: expected float32 DeviceBuffer of length 24 \(\[B, T, H, D\] = \[1, 2, 3, 4\]\) for "out"/,
    );
    const D = 257;
    const big = upload(new Float32Array(D).fill(1));
    expect(() => binding.cuda.attentionForward(poisoned(D * 4), poisoned(4), big, big, big, 1, 1, 1, 1, D, 0.1)).toThrow(
      /attention_forward: the CUDA fp32 attention supports D <= 256, got D = 257/,
    );
  });
});

// bf16: D in {64, 128}; 64-row tiles, so T = 70 has a partial second tile.
const BF16_CASES: Dims[] = [
  { B: 1, T: 70, H: 4, Hkv: 2, D: 64 },
  { B: 2, T: 21, H: 2, Hkv: 1, D: 128 },
];

describeCuda("attention (cuda, bf16 flash)", () => {
  it.each(BF16_CASES)("forward and backward agree with the CPU on the bf16-rounded inputs for %o", (d) => {
    const { B, T, H, Hkv, D } = d;
    const raw = inputs(d, BASE_SEED + 51 + D);
    const x: Inputs = { q: roundBf16(raw.q), k: roundBf16(raw.k), v: roundBf16(raw.v), dout: roundBf16(raw.dout) };
    const scale = 1 / Math.sqrt(D);
    const cpu = cpuAttention(d, x, scale);

    const q = upload(toBf16Bits(x.q)), k = upload(toBf16Bits(x.k)), v = upload(toBf16Bits(x.v));
    const dout = upload(toBf16Bits(x.dout));
    const out = poisoned(x.q.length * 2), lse = poisoned(B * H * T * 4);
    binding.cuda.attentionForwardBf16(out, lse, q, k, v, B, T, H, Hkv, D, scale);
    const dq = poisoned(x.q.length * 2), dk = poisoned(x.k.length * 2), dv = poisoned(x.k.length * 2);
    binding.cuda.attentionBackwardBf16(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, Hkv, D, scale);
    expectClose(fromBf16Bits(downloadU16(out)), cpu.out, BF16_RTOL, `out ${label(d)}`);
    expectClose(downloadF32(lse), cpu.lse, BF16_LSE_RTOL, `lse ${label(d)}`);
    expectClose(fromBf16Bits(downloadU16(dq)), cpu.dq, BF16_RTOL, `dq ${label(d)}`);
    expectClose(fromBf16Bits(downloadU16(dk)), cpu.dk, BF16_RTOL, `dk ${label(d)}`);
    expectClose(fromBf16Bits(downloadU16(dv)), cpu.dv, BF16_RTOL, `dv ${label(d)}`);

    // Same bits on a second run.
    const dq2 = poisoned(x.q.length * 2), dk2 = poisoned(x.k.length * 2), dv2 = poisoned(x.k.length * 2);
    binding.cuda.attentionBackwardBf16(dq2, dk2, dv2, dout, q, k, v, out, lse, B, T, H, Hkv, D, scale);
    expectBitwiseEqual(downloadU16(dq2), downloadU16(dq), "dq rerun");
    expectBitwiseEqual(downloadU16(dk2), downloadU16(dk), "dk rerun");
    expectBitwiseEqual(downloadU16(dv2), downloadU16(dv), "dv rerun");
  });

  it("refuses head sizes other than 64 and 128, and misaligned buffers", () => {
    const D = 32;
    const t = upload(new Uint16Array(D));
    expect(() => binding.cuda.attentionForwardBf16(poisoned(D * 2), poisoned(4), t, t, t, 1, 1, 1, 1, D, 0.1)).toThrow(
      /attention_forward_bf16: the bf16 flash attention supports D = 64 or 128, got D = 32/,
    );
    const n = 64;
    const whole = upload(new Uint16Array(n + 1));
    const shifted = whole.view(2, n * 2);
    expect(() => binding.cuda.attentionForwardBf16(poisoned(n * 2), poisoned(4), shifted, shifted, shifted, 1, 1, 1, 1, n, 0.1)).toThrow(
      /attention_forward_bf16: every bf16 buffer must be 16-byte aligned/,
    );
  });
});
