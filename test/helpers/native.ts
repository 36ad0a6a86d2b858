/**
 * Runs a body under each code path and thread count the machine supports, restoring the
 * defaults afterwards, so every kernel test covers AVX-512, AVX2 and portable code.
 */
import { binding, type Isa } from "../../src/native.js";
import type { Tensor } from "../../src/tensor.js";
import { expectBitwiseEqual } from "./reference.js";

export const ISAS: readonly Isa[] = binding.info().availableIsas;
const DEFAULT_ISA = binding.info().isa;
const DEFAULT_THREADS = binding.info().threads;

export function withSettings<T>(isa: Isa, threads: number, body: () => T): T {
  binding.setIsa(isa);
  binding.setThreads(threads);
  try {
    return body();
  } finally {
    binding.setIsa(DEFAULT_ISA);
    binding.setThreads(DEFAULT_THREADS);
  }
}

/**
 * Runs `body` under `isa` on 1 thread, on 2 threads and on 1 thread again, and asserts that
 * every output tensor holds the same bits each time. Returns the first run's outputs.
 */
export function expectDeterministic<R extends Record<string, Tensor>>(isa: Isa, body: () => R): R {
  const one = withSettings(isa, 1, body);
  for (const [label, threads] of [
    ["2 threads", 2],
    ["rerun", 1],
  ] as const) {
    const other = withSettings(isa, threads, body);
    for (const [name, t] of Object.entries(one)) expectBitwiseEqual(t.data, other[name]!.data, `${name} ${label}`);
  }
  return one;
}
