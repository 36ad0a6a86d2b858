/**
 * Runs a body under each code path and thread count the machine supports, restoring the
 * defaults afterwards, so every kernel test covers AVX-512, AVX2 and portable code.
 */
import { binding, type Isa } from "../../src/native.js";

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
