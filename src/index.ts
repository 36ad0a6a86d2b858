/**
 * growlm's public library API.
 *
 * Today: tensors in native memory, the CPU kernels (each with its backward where it has
 * one), and the runtime settings. Every kernel validates its arguments and throws a
 * TypeError or RangeError naming the op and the shapes before touching memory.
 */
export { Tensor, numelOf, type DType, type DTypeArray, type Device } from "./tensor.js";
export { runtimeInfo, setIsa, setThreads, type Isa, type RuntimeInfo } from "./runtime.js";

export { add, copy, scaleInPlace, toBf16, toFloat32 } from "./kernels/elementwise.js";
export { matmul, type MatmulOptions } from "./kernels/gemm.js";
export {
  attentionBackward,
  attentionForward,
  type AttentionBackwardOptions,
  type AttentionForwardOptions,
} from "./kernels/attention.js";
export { rmsnormBackward, rmsnormForward } from "./kernels/norm.js";
export { ropeBackward, ropeForward } from "./kernels/rope.js";
export { swigluBackward, swigluForward } from "./kernels/swiglu.js";
export { embeddingBackward, embeddingForward } from "./kernels/embedding.js";
export {
  IGNORE_INDEX,
  crossEntropy,
  crossEntropyBackward,
  type CrossEntropyBackwardOptions,
  type CrossEntropyOptions,
  type CrossEntropyResult,
} from "./kernels/xent.js";
export {
  adamwStep,
  clipGradNorm,
  globalGradNorm,
  type AdamwHyper,
  type AdamwSegment,
  type AdamwState,
} from "./kernels/adamw.js";
export { fillNormal, fillUniform, rand, randn, type NormalOptions, type RngStream, type UniformOptions } from "./kernels/rng.js";
