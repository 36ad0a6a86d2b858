/**
 * GEMM on the device (native/cuda/gemm.cu, through cuBLAS; under the emulator through the
 * emulated cuBLAS of native/cuda/cublas.cu) against the CPU backend: every layout (the
 * row-major to column-major mapping and the op flags), leading dimensions padded beyond the
 * matrices, alpha and beta, odd sizes; outputs poisoned (NaN) before each run, and the ldc
 * padding checked untouched.
 */
import { expect, it } from "vitest";

import { cudaInfo } from "../../src/device.js";
import { binding } from "../../src/native.js";
import { BASE_SEED, randomF32 } from "../helpers/reference.js";
import { describeCuda, downloadF32, emulated, poisoned, upload } from "../helpers/cuda.js";
import { GEMM_LAYOUTS, GEMM_VARIANTS } from "../helpers/gemm-cases.js";

const U = 2 ** -24;
// fp32: both results are within (1.1 K + 8) roundings of the exact product, normwise per
// element (test/kernels/gemm.test.ts's bound), so they differ by at most twice that.
const FP32_UNITS = (K: number): number => 2 * (1.1 * K + 8);
// bf16 on tensor cores: products of bf16 are exact in fp32, but the MMA's fp32 accumulation
// is not rounded to nearest at every step on every GPU; four times the fp32 allowance.
const BF16_UNITS = (K: number): number => 4 * (1.1 * K + 8);
// TF32: each input rounded to 10 mantissa bits (relative error ≤ 2^-11), so each product is
// off by up to 2^-10 relative, on top of the fp32 accumulation.
const TF32_PRODUCT = 2 ** -10;

const SIZES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1],
  [3, 17, 5],
  [33, 65, 129],
  [70, 127, 300],
];

type Mode = "sgemm" | "sgemmTf32" | "gemmBf16";

function bf16Bits(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  return Uint16Array.from(u, (v) => ((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) & 0xffff);
}

/** The dense [rows, cols] matrix x (or its transpose) stored with leading dimension ld. */
function store<T extends Float32Array | Uint16Array>(x: T, rows: number, cols: number, transpose: boolean, ld: number, make: (n: number) => T): T {
  const [r, c] = transpose ? [cols, rows] : [rows, cols];
  const out = make(Math.max(1, (r - 1) * ld + c));
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[transpose ? j * ld + i : i * ld + j] = x[i * cols + j]!;
  return out;
}

/** Σ_k |op(A)[i,k]·op(B)[k,j]| in float64, from the dense [M, K] and [K, N] matrices. */
function absProducts(x: Float32Array, y: Float32Array, M: number, N: number, K: number): Float64Array {
  const abs = new Float64Array(M * N);
  for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) abs[i * N + j]! += Math.abs(x[i * K + k]! * y[k * N + j]!);
  return abs;
}

function widen(bits: Uint16Array): Float32Array {
  return new Float32Array(Uint32Array.from(bits, (h) => h << 16).buffer);
}

describeCuda("gemm (cuda)", () => {
  it.each(SIZES)("M=%i N=%i K=%i: sgemm, sgemmTf32 and gemmBf16 agree with the CPU backend in every layout", (M, N, K) => {
    const seed = BASE_SEED + 31 * M + N + 7 * K;
    const x = randomF32(M * K, seed);
    const y = randomF32(K * N, seed + 1);
    const xh = bf16Bits(x), yh = bf16Bits(y);
    const abs32 = absProducts(x, y, M, N, K);
    const abs16 = absProducts(widen(xh), widen(yh), M, N, K);
    for (const [ta, tb] of GEMM_LAYOUTS) {
      for (const v of GEMM_VARIANTS) {
        const lda = (ta ? M : K) + v.pad, ldb = (tb ? K : N) + v.pad, ldc = N + v.pad;
        const C0 = randomF32(M * ldc, seed + 2);
        for (const mode of ["sgemm", "sgemmTf32", "gemmBf16"] as Mode[]) {
          const label = `${mode} ${ta ? "T" : "N"}${tb ? "T" : "N"} M=${M} N=${N} K=${K} alpha=${v.alpha} beta=${v.beta} pad=${v.pad}`;
          const bf16 = mode === "gemmBf16";
          // The CPU reference: gemmBf16 for bf16, sgemm for both fp32 modes.
          const expected = C0.slice();
          const gpuC = v.beta === 0 ? poisoned(M * ldc * 4) : upload(C0);
          if (v.beta === 0) {
            // The padding must keep the poison: copy it into the CPU's C too.
            expected.fill(Number.NaN);
          }
          if (bf16) {
            const A = store(xh, M, K, ta, lda, (n) => new Uint16Array(n)), B = store(yh, K, N, tb, ldb, (n) => new Uint16Array(n));
            binding.gemmBf16(ta, tb, M, N, K, v.alpha, A, lda, B, ldb, v.beta, expected, ldc);
            binding.cuda.gemmBf16(ta, tb, M, N, K, v.alpha, upload(A), lda, upload(B), ldb, v.beta, gpuC, ldc);
          } else {
            const A = store(x, M, K, ta, lda, (n) => new Float32Array(n)), B = store(y, K, N, tb, ldb, (n) => new Float32Array(n));
            binding.sgemm(ta, tb, M, N, K, v.alpha, A, lda, B, ldb, v.beta, expected, ldc);
            binding.cuda[mode as "sgemm" | "sgemmTf32"](ta, tb, M, N, K, v.alpha, upload(A), lda, upload(B), ldb, v.beta, gpuC, ldc);
          }
          const got = downloadF32(gpuC);
          const units = bf16 ? BF16_UNITS(K) : FP32_UNITS(K);
          for (let i = 0; i < M; i++) {
            for (let j = 0; j < ldc; j++) {
              const g = got[i * ldc + j]!, e = expected[i * ldc + j]!;
              if (j >= N) {
                if (!Object.is(g, e)) expect.fail(`${label}: C[${i}, ${j}] in the ldc padding was written`);
                continue;
              }
              const c0 = v.beta === 0 ? 0 : Math.abs(v.beta * C0[i * ldc + j]!);
              const a = Math.abs(v.alpha) * (bf16 ? abs16 : abs32)[i * N + j]!;
              const bound = units * U * (a + c0) + (mode === "sgemmTf32" ? TF32_PRODUCT * a : 0) + 1e-30;
              if (!(Math.abs(g - e) <= bound)) expect.fail(`${label}: C[${i}, ${j}] = ${g} but the CPU gives ${e} ± ${bound} (GROWLM_TEST_SEED=${BASE_SEED})`);
            }
          }
        }
      }
    }
  });

  it.runIf(emulated())("sgemmTf32 rounds its inputs to TF32 (the emulator's cuBLAS, as the tensor cores do)", () => {
    const M = 9, N = 11, K = 64;
    const a = upload(randomF32(M * K, BASE_SEED + 41)), b = upload(randomF32(K * N, BASE_SEED + 42));
    const exact = poisoned(M * N * 4), tf32 = poisoned(M * N * 4);
    binding.cuda.sgemm(false, false, M, N, K, 1, a, K, b, N, 0, exact, N);
    binding.cuda.sgemmTf32(false, false, M, N, K, 1, a, K, b, N, 0, tf32, N);
    const e = downloadF32(exact), t = downloadF32(tf32);
    expect(e.some((v, i) => v !== t[i])).toBe(true);
  });

  it("K = 0 and alpha = 0 give beta·C without reading A or B; beta = 0 overwrites NaNs", () => {
    const M = 5, N = 7, K = 3;
    const C0 = randomF32(M * N, BASE_SEED + 51);
    const nanA = poisoned(M * K * 4), nanB = poisoned(K * N * 4);
    for (const [k, alpha, beta] of [[0, 1, 0.5], [K, 0, -2], [0, 1, 0], [K, 0, 0]] as const) {
      for (const mode of ["sgemm", "sgemmTf32"] as const) {
        const C = upload(C0);
        binding.cuda[mode](false, false, M, N, k, alpha, nanA, Math.max(1, k), nanB, N, beta, C, N);
        const got = downloadF32(C);
        const expected = C0.map((c) => (beta === 0 ? 0 : beta * c));
        expect(Array.from(got), `${mode} K=${k} alpha=${alpha} beta=${beta}`).toEqual(Array.from(expected));
      }
    }
    const nanC = poisoned(M * N * 4);
    binding.cuda.sgemm(false, false, M, N, K, 1, upload(randomF32(M * K, 1)), K, upload(randomF32(K * N, 2)), N, 0, nanC, N);
    expect(downloadF32(nanC).every(Number.isFinite)).toBe(true);
  });

  it("names the op, the matrix and the shape when a buffer is short or a stride too large for cuBLAS", () => {
    const a = upload(new Float32Array(6).fill(1)), c = poisoned(16);
    expect(() => binding.cuda.sgemm(false, false, 2, 2, 3, 1, a, 3, poisoned(20), 2, 0, c, 2)).toThrow(
      /sgemm: expected float32 DeviceBuffer of length at least 6 \(B \[K, N\] = \[3, 2\], ldb = 2\) for "B" but received length 5/,
    );
    expect(() => binding.cuda.sgemmTf32(false, false, 2, 2, 3, 1, new Float32Array(6) as never, 3, a, 2, 0, c, 2)).toThrow(
      /sgemmTf32: expected a DeviceBuffer \(float32\) for "A"/,
    );
    // One row of A spans K elements whatever lda is: a stride cuBLAS's int cannot hold.
    expect(() => binding.cuda.sgemm(false, false, 1, 2, 3, 1, a, 2 ** 31, a, 2, 0, c, 2)).toThrow(/sgemm: lda = 2147483648 exceeds cuBLAS's int range/);
  });

  it("loads cuBLAS from GROWLM_CUBLAS_PATH, or names the library and where it looked", () => {
    if (!cudaInfo().compiled) {
      expect(() => binding.cuda.cublasLibrary()).toThrow(/built without nvcc/);
      return;
    }
    const saved = process.env.GROWLM_CUBLAS_PATH;
    try {
      process.env.GROWLM_CUBLAS_PATH = "/nonexistent/cuda/lib64";
      expect(() => binding.cuda.cublasLibrary()).toThrow(/cuBLAS could not be loaded from GROWLM_CUBLAS_PATH=\/nonexistent\/cuda\/lib64[\s\S]*libcublas\.so\.13[\s\S]*libcublas\.so\.12/);
      delete process.env.GROWLM_CUBLAS_PATH;
      let origin: string | null = null;
      try {
        origin = binding.cuda.cublasLibrary();
      } catch (err) {
        expect((err as Error).message).toMatch(/cuBLAS \(libcublas\.so\.13 or libcublas\.so\.12\) is not installed[\s\S]*tried:[\s\S]*GROWLM_CUBLAS_PATH/);
      }
      if (origin !== null) expect(origin).toMatch(/libcublas\.so\.1[23]/);
    } finally {
      if (saved === undefined) delete process.env.GROWLM_CUBLAS_PATH;
      else process.env.GROWLM_CUBLAS_PATH = saved;
    }
  });
});
