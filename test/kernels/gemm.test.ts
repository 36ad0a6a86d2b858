import { describe, expect, it } from "vitest";

import { matmul } from "../../src/kernels/gemm.js";
import { binding, type Isa } from "../../src/native.js";
import { Tensor } from "../../src/tensor.js";
import { BASE_SEED, expectBitwiseEqual, randomF32 } from "../helpers/reference.js";
import { ISAS, withSettings } from "../helpers/native.js";
import { GEMM_LAYOUTS, GEMM_VARIANTS } from "../helpers/gemm-cases.js";

// Normwise-per-element bound, first order in u = 2^-24:
//   |C - C_ref| <= GEMM_UNITS(K) * u * (|alpha| * Σ_k |a_ik b_kj| + |beta c_ij|)
// counting the roundings along one element's path: K (one per FMA, or per product and sum
// without FMA; vdpbf16ps adds both exact products of a bf16 k-pair with at most two
// roundings), 2 per K slice (slices are 512 deep, 1024 for vdpbf16ps: alpha scaling and
// the add to C) and the beta update. The bf16 cases compare with the float64 product of
// the bf16-rounded inputs, so only the accumulation order and rounding differ.
const GEMM_UNITS = (K: number): number => 1.1 * K + 8;
const U = 2 ** -24;

// [M, N, K]: tiny, odd, around the 14x32 / 6x16 tiles, a large-ish case that is a
// multiple of no tile size, and K across two K-slice boundaries of both paths (an odd
// remainder for the bf16 pairs).
const SIZES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1],
  [3, 17, 5],
  [127, 257, 33],
  [257, 127, 300],
  [301, 347, 531],
  [200, 70, 1101],
];

function bf16Bits(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  return Uint16Array.from(u, (v) => ((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) & 0xffff);
}

function widen(bits: Uint16Array): Float32Array {
  const u = Uint32Array.from(bits, (h) => h << 16);
  return new Float32Array(u.buffer);
}

/** Σ_k x[i,k] y[k,j] and Σ_k |x[i,k] y[k,j]| in float64; x is [M, K], y is [K, N] dense. */
function reference(x: Float32Array, y: Float32Array, M: number, N: number, K: number): { prod: Float64Array; abs: Float64Array } {
  const prod = new Float64Array(M * N);
  const abs = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let k = 0; k < K; k++) {
      const a = x[i * K + k]!;
      const aa = Math.abs(a);
      const row = k * N;
      for (let j = 0; j < N; j++) {
        const b = y[row + j]!;
        prod[i * N + j]! += a * b;
        abs[i * N + j]! += aa * Math.abs(b);
      }
    }
  }
  return { prod, abs };
}

/** Stores the dense [rows, cols] matrix x (or its transpose) with leading dimension ld. */
function store<T extends Float32Array | Uint16Array>(x: T, rows: number, cols: number, transpose: boolean, ld: number, make: (n: number) => T): T {
  const [r, c] = transpose ? [cols, rows] : [rows, cols];
  const out = make(Math.max(1, (r - 1) * ld + c + 2));
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) out[transpose ? j * ld + i : i * ld + j] = x[i * cols + j]!;
  }
  return out;
}

interface Case {
  M: number;
  N: number;
  K: number;
  ta: boolean;
  tb: boolean;
  alpha: number;
  beta: number;
  pad: number;
}

/** Checks C (stride ldc) against alpha * prod + beta * C0 elementwise; C's padding must be untouched. */
function expectGemm(C: Float32Array, C0: Float32Array, ref: { prod: Float64Array; abs: Float64Array }, c: Case, label: string): void {
  const ldc = c.N + c.pad;
  const units = GEMM_UNITS(c.K);
  let worst = 0;
  for (let i = 0; i < c.M; i++) {
    for (let j = 0; j < ldc; j++) {
      const got = C[i * ldc + j]!;
      if (j >= c.N) {
        if (!Object.is(got, C0[i * ldc + j]!)) expect.fail(`${label}: C[${i}, ${j}] in the ldc padding was written (seed ${BASE_SEED})`);
        continue;
      }
      const c0 = c.beta === 0 ? 0 : c.beta * C0[i * ldc + j]!;
      const expected = c.alpha * ref.prod[i * c.N + j]! + c0;
      const bound = units * U * (Math.abs(c.alpha) * ref.abs[i * c.N + j]! + Math.abs(c0)) + 1e-30;
      const ratio = Math.abs(got - expected) / bound;
      if (!(ratio <= 1)) {
        expect.fail(`${label}: C[${i}, ${j}] = ${got} but expected ${expected} ± ${bound} (GROWLM_TEST_SEED=${BASE_SEED})`);
      }
      worst = Math.max(worst, ratio);
    }
  }
  expect(worst).toBeLessThanOrEqual(1);
}

function bf16DotAvailable(isa: Isa): boolean {
  return isa === "avx512" && binding.info().cpuFeatures.avx512bf16 === true;
}

describe.each(ISAS)("gemm (%s)", (isa) => {
  it.each(SIZES)("M=%i N=%i K=%i: every layout, stride, alpha and beta against float64", (M, N, K) => {
    const x = randomF32(M * K, 11 + M);
    const y = randomF32(K * N, 12 + N);
    const ref = reference(x, y, M, N, K);
    const xh = bf16Bits(x);
    const yh = bf16Bits(y);
    const refBf16 = reference(widen(xh), widen(yh), M, N, K);
    for (const [ta, tb] of GEMM_LAYOUTS) {
      for (const v of GEMM_VARIANTS) {
        const c: Case = { M, N, K, ta, tb, ...v };
        const lda = (ta ? M : K) + v.pad;
        const ldb = (tb ? K : N) + v.pad;
        const ldc = N + v.pad;
        const label = `${isa} ${ta ? "T" : "N"}${tb ? "T" : "N"} M=${M} N=${N} K=${K} alpha=${v.alpha} beta=${v.beta} pad=${v.pad}`;
        const C0 = randomF32(M * ldc, 13);
        const fresh = (): Float32Array => {
          const C = C0.slice();
          // beta = 0 must overwrite C without reading it.
          if (v.beta === 0) for (let i = 0; i < M; i++) C.fill(NaN, i * ldc, i * ldc + N);
          return C;
        };
        const A = store(x, M, K, ta, lda, (n) => new Float32Array(n));
        const B = store(y, K, N, tb, ldb, (n) => new Float32Array(n));
        const Ah = store(xh, M, K, ta, lda, (n) => new Uint16Array(n));
        const Bh = store(yh, K, N, tb, ldb, (n) => new Uint16Array(n));
        const run = (threads: number, body: (C: Float32Array) => void, dot?: boolean): Float32Array =>
          withSettings(isa, threads, () => {
            if (dot !== undefined) binding.setBf16Dot(dot);
            const C = fresh();
            body(C);
            return C;
          });
        const sgemm = (C: Float32Array): void => binding.sgemm(ta, tb, M, N, K, v.alpha, A, lda, B, ldb, v.beta, C, ldc);
        const gemmBf16 = (C: Float32Array): void => binding.gemmBf16(ta, tb, M, N, K, v.alpha, Ah, lda, Bh, ldb, v.beta, C, ldc);

        const two = run(2, sgemm);
        expectGemm(two, C0, ref, c, `sgemm ${label}`);
        expectBitwiseEqual(run(1, sgemm), two, `sgemm ${label} 1 vs 2 threads`);
        expectBitwiseEqual(run(2, sgemm), two, `sgemm ${label} rerun`);

        // Without vdpbf16ps, bf16 is widened exactly while packing: bitwise sgemm of the widened values.
        const widened = run(2, gemmBf16, false);
        const Aw = store(widen(xh), M, K, ta, lda, (n) => new Float32Array(n));
        const Bw = store(widen(yh), K, N, tb, ldb, (n) => new Float32Array(n));
        const viaSgemm = run(2, (C) => binding.sgemm(ta, tb, M, N, K, v.alpha, Aw, lda, Bw, ldb, v.beta, C, ldc));
        expectBitwiseEqual(widened, viaSgemm, `gemmBf16 (widened) ${label} vs sgemm of the widened values`);
        expectGemm(widened, C0, refBf16, c, `gemmBf16 (widened) ${label}`);
        expectBitwiseEqual(run(1, gemmBf16, false), widened, `gemmBf16 (widened) ${label} 1 vs 2 threads`);

        if (bf16DotAvailable(isa)) {
          const dot = run(2, gemmBf16, true);
          expectGemm(dot, C0, refBf16, c, `gemmBf16 (vdpbf16ps) ${label}`);
          expectBitwiseEqual(run(1, gemmBf16, true), dot, `gemmBf16 (vdpbf16ps) ${label} 1 vs 2 threads`);
          expectBitwiseEqual(run(2, gemmBf16, true), dot, `gemmBf16 (vdpbf16ps) ${label} rerun`);
        }
      }
    }
  });

  // A linear layer at decode time (A [M, K], B [N, K]) takes a few-row path on AVX-512 (fp32
  // B up to 32 rows in 4, 8, 16 or 32 lanes, bf16 B up to 8): every row must hold the bits the
  // packed path gives it inside a 40-row product, across K slices (512, and 1024 for
  // vdpbf16ps), odd K, column edges, strides and beta.
  it("few rows (A·Bᵀ, M <= 32): each row bitwise as in a many-row product", () => {
    const ROWS = 40;
    for (const [N, K] of [[37, 1101], [16, 16], [33, 2051], [5, 3], [64, 1024]] as const) {
      const [lda, ldb, ldc] = [K + 3, K + 1, N + 2];
      const A = randomF32(ROWS * lda, 31 + K);
      const B = randomF32(N * ldb, 32 + N);
      const C0 = randomF32(ROWS * ldc, 33);
      const Ah = bf16Bits(A);
      const Bh = bf16Bits(B);
      for (const [alpha, beta] of [[1, 0], [-0.75, 1], [1.5, -0.5]] as const) {
        for (const kind of ["sgemm", "bf16 widened", "bf16 vdpbf16ps"] as const) {
          if (kind === "bf16 vdpbf16ps" && !bf16DotAvailable(isa)) continue;
          const product = (M: number): Float32Array =>
            withSettings(isa, 2, () => {
              binding.setBf16Dot(kind === "bf16 vdpbf16ps");
              const C = C0.slice();
              if (kind === "sgemm") binding.sgemm(false, true, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
              else binding.gemmBf16(false, true, M, N, K, alpha, Ah, lda, Bh, ldb, beta, C, ldc);
              return C;
            });
          const many = product(ROWS);
          for (const M of [1, 3, 4, 5, 8, 9, 13, 16, 17, 31, 32, 33]) {
            const few = product(M);
            const label = `${isa} ${kind} M=${M} N=${N} K=${K} alpha=${alpha} beta=${beta}`;
            expectBitwiseEqual(few.subarray(0, M * ldc), many.subarray(0, M * ldc), label);
            expectBitwiseEqual(few.subarray(M * ldc), C0.subarray(M * ldc), `${label}: rows past M untouched`);
          }
        }
      }
    }
  });

  it("K = 0 scales C by beta (beta = 0 overwrites NaN)", () => {
    const C = Float32Array.from([1, -2, NaN, 4, 5, 6]);
    withSettings(isa, 2, () => binding.sgemm(false, false, 2, 3, 0, 1, new Float32Array(0), 1, new Float32Array(0), 3, 0, C, 3));
    expect(Array.from(C)).toEqual([0, 0, 0, 0, 0, 0]);
    const D = Float32Array.from([1, -2, 3, 4, 5, 6]);
    withSettings(isa, 2, () => binding.gemmBf16(true, true, 2, 3, 0, 1, new Uint16Array(0), 2, new Uint16Array(0), 1, -0.5, D, 3));
    expect(Array.from(D)).toEqual([-0.5, 1, -1.5, -2, -2.5, -3]);
  });

  it.runIf(bf16DotAvailable(isa))("vdpbf16ps reads bf16 subnormals as zero; the widened path keeps them", () => {
    // 2^-127 (a bf16 subnormal) times 2^100: 2^-27 exactly, or 0 when the input is flushed.
    const A = Uint16Array.of(0x0040);
    const B = Uint16Array.of(0x7180);
    const run = (dot: boolean): number =>
      withSettings(isa, 1, () => {
        binding.setBf16Dot(dot);
        const C = new Float32Array(1);
        binding.gemmBf16(false, false, 1, 1, 1, 1, A, 1, B, 1, 0, C, 1);
        return C[0]!;
      });
    expect(run(false)).toBe(2 ** -27);
    expect(run(true)).toBe(0);
  });

  it("matmul on tensors: the three training layouts and bf16", () => {
    const [BT, C, OC] = [37, 45, 29];
    const x = Tensor.from(randomF32(BT * C, 21), [BT, C]);
    const w = Tensor.from(randomF32(OC * C, 22), [OC, C]);
    const dy = Tensor.from(randomF32(BT * OC, 23), [BT, OC]);
    const dense = (t: Tensor, transpose: boolean): Float32Array => {
      const [r, c] = t.shape as [number, number];
      const d = t.data as Float32Array;
      if (!transpose) return d;
      const out = new Float32Array(r * c);
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = d[i * c + j]!;
      return out;
    };
    withSettings(isa, 2, () => {
      const y = matmul(x, w, { transB: true });
      expect(y.shape).toEqual([BT, OC]);
      expectGemm(y.data, new Float32Array(BT * OC), reference(x.data, dense(w, true), BT, OC, C), { M: BT, N: OC, K: C, ta: false, tb: true, alpha: 1, beta: 0, pad: 0 }, "forward");
      const dx = matmul(dy, w);
      expectGemm(dx.data, new Float32Array(BT * C), reference(dy.data, w.data, BT, C, OC), { M: BT, N: C, K: OC, ta: false, tb: false, alpha: 1, beta: 0, pad: 0 }, "input grad");
      const dW0 = Tensor.from(randomF32(OC * C, 24), [OC, C]);
      const dW = dW0.clone();
      expect(matmul(dy, x, { transA: true, beta: 1, out: dW })).toBe(dW);
      expectGemm(dW.data, dW0.data, reference(dense(dy, true), x.data, OC, C, BT), { M: OC, N: C, K: BT, ta: true, tb: false, alpha: 1, beta: 1, pad: 0 }, "weight grad");
      const xh = Tensor.from(bf16Bits(x.data), [BT, C], "bfloat16");
      const wh = Tensor.from(bf16Bits(w.data), [OC, C], "bfloat16");
      const yh = matmul(xh, wh, { transB: true, alpha: 0.5 });
      expect(yh.dtype).toBe("float32");
      expectGemm(yh.data, new Float32Array(BT * OC), reference(widen(xh.data), dense(new Tensor(widen(wh.data), [OC, C], "float32"), true), BT, OC, C), { M: BT, N: OC, K: C, ta: false, tb: true, alpha: 0.5, beta: 0, pad: 0 }, "bf16 forward");
    });
  });
});

describe("gemm errors", () => {
  const a = Tensor.from(randomF32(6, 31), [2, 3]);
  const b = Tensor.from(randomF32(12, 32), [3, 4]);

  it("matmul refuses bad shapes, dtypes and hyperparameters", () => {
    expect(() => matmul(a, a)).toThrow(/matmul: inner dimensions differ: op\(a\) is \[M, K\] = \[2, 3\] .* op\(b\) is \[K, N\] = \[2, 3\]/);
    expect(() => matmul(a, b, { transA: true })).toThrow(RangeError);
    expect(() => matmul(a, Tensor.zeros([3, 4], "bfloat16"))).toThrow(/matmul: expected "b" of dtype float32 but received bfloat16/);
    expect(() => matmul(Tensor.zeros([2, 3], "int32"), b)).toThrow(TypeError);
    expect(() => matmul(a.reshape([6]), b)).toThrow(/matmul: expected "a" of rank 2/);
    expect(() => matmul(a, b, { out: Tensor.zeros([2, 5]) })).toThrow(/matmul: expected "out" of shape \[M, N\] = \[2, 4\] but received \[2, 5\]/);
    expect(() => matmul(a, b, { out: Tensor.zeros([2, 4], "bfloat16") })).toThrow(TypeError);
    expect(() => matmul(a, b, { alpha: NaN })).toThrow(/matmul: expected a finite number for "alpha"/);
    expect(() => matmul(a, b, { beta: 1 })).toThrow(/matmul: beta = 1 needs an "out" tensor/);
    expect(matmul(Tensor.zeros([0, 3]), b).shape).toEqual([0, 4]);
  });

  it("the binding checks sizes, strides, lengths and types before any memory is touched", () => {
    const A = new Float32Array(6);
    const B = new Float32Array(12);
    const C = new Float32Array(8);
    expect(() => binding.sgemm(false, false, 2, 4, 3, 1, A, 2, B, 4, 0, C, 4)).toThrow(/sgemm: expected "lda" >= 3 \(A is \[M, K\] = \[2, 3\]\) but received 2/);
    expect(() => binding.sgemm(true, false, 2, 4, 3, 1, A, 2, B, 4, 0, C, 4)).not.toThrow();
    expect(() => binding.sgemm(false, false, 2, 4, 3, 1, A, 3, B, 3, 0, C, 4)).toThrow(/sgemm: expected "ldb" >= 4 \(B is \[K, N\] = \[3, 4\]\) but received 3/);
    expect(() => binding.sgemm(false, true, 2, 4, 3, 1, A, 3, B, 4, 0, C, 4)).toThrow(/sgemm: expected Float32Array of length at least 15 \(B \[N, K\] = \[4, 3\], ldb = 4\) for "B"/);
    expect(() => binding.sgemm(false, false, 2, 4, 3, 1, A, 4, B, 4, 0, C, 4)).toThrow(/sgemm: expected Float32Array of length at least 7 \(A \[M, K\] = \[2, 3\], lda = 4\) for "A" but received length 6/);
    expect(() => binding.sgemm(false, false, 2, 4, 3, 1, A, 3, B, 4, 0, C, 5)).toThrow(/sgemm: expected Float32Array of length at least 9 .* for "C"/);
    expect(() => binding.sgemm(false, false, 0, 4, 3, 1, A, 3, B, 4, 0, C, 4)).toThrow(/sgemm: expected an integer in \[1, .*\] for "M"/);
    expect(() => binding.sgemm(false, false, 2, 4, 3, NaN, A, 3, B, 4, 0, C, 4)).toThrow(/sgemm: expected a finite number for "alpha"/);
    expect(() => binding.sgemm(false, false, 2, 4, 3, 1, A, 3, B, 4, 1e39, C, 4)).toThrow(/sgemm: expected "beta" within the float32 range/);
    expect(() => binding.sgemm(false, false, 2, 4, 3, 1, new Uint16Array(6) as unknown as Float32Array, 3, B, 4, 0, C, 4)).toThrow(TypeError);
    expect(() => binding.gemmBf16(false, false, 2, 4, 3, 1, A as unknown as Uint16Array, 3, new Uint16Array(12), 4, 0, C, 4)).toThrow(/gemmBf16: expected Uint16Array \(bf16\) for "A"/);
    expect(() => binding.gemmBf16(false, false, 2, 4, 3, 1, new Uint16Array(6), 3, new Uint16Array(11), 4, 0, C, 4)).toThrow(/gemmBf16: expected Uint16Array \(bf16\) of length at least 12/);
  });
});
