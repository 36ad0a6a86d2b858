/**
 * growlm's public library API.
 *
 * Tensors in native memory, the CPU kernels (each with its backward where it has one) and
 * the runtime settings; the LLaMA decoder with its flat parameter buffers, Hugging Face
 * checkpoints and tokenizers, scoring, the training step with its checkpoints, and the
 * multiple-choice benchmark harness (lm-evaluation-harness's scoring). Kernels
 * throw a TypeError or RangeError naming the op and the shapes before touching memory;
 * everything above them throws a GrowlmError naming the operation and the file, tensor or
 * field at fault.
 */
export { GrowlmError } from "./errors.js";
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

export { LLAMA_DEFAULTS, headDim, llamaConfigToJson, parseLlamaConfig, type LlamaConfig } from "./model/config.js";
export { LAYER_KINDS, ParamLayout, layerParamName, parameterSpecs, type ModuleKind, type ParamEntry, type ParamSpec } from "./model/params.js";
export {
  LlamaModel,
  type BackwardOptions,
  type ForwardOptions,
  type ForwardResult,
  type LlamaModelOptions,
  type MatmulPrecision,
} from "./model/llama.js";
export { loadPretrained, savePretrained, type SavePretrainedOptions } from "./model/pretrained.js";
export {
  scoreContinuations,
  scoreSequences,
  type ContinuationOptions,
  type ContinuationRequest,
  type ContinuationScore,
  type ScoreOptions,
  type ScoreResult,
} from "./model/score.js";

export {
  listCheckpointTensors,
  loadModelDir,
  loadWeights,
  parseShardSize,
  readGenerationConfig,
  readModelConfig,
  readTensor,
  saveModelDir,
  type CheckpointTensor,
  type GenerationConfig,
  type LoadedModelDir,
  type SaveModelOptions,
  type SavedModelDir,
} from "./io/hf.js";
export { openSafetensors, writeSafetensors, type SafetensorsReader, type TensorToWrite } from "./io/safetensors.js";
export {
  Tokenizer,
  byteLevelTokenizer,
  loadTokenizer,
  saveTokenizer,
  type ByteLevelSpecialTokens,
  type ByteLevelTokenizerOptions,
  type TokenizerDecodeOptions,
  type TokenizerEncodeOptions,
  type TokenizerFileNames,
  type TokenizerFiles,
} from "./io/tokenizer.js";

export { LR_SCHEDULER_TYPES, LrSchedule, type LrScheduleConfig, type LrSchedulerType } from "./train/lr.js";
export { AdamW, type AdamwOptions, type StepStats } from "./train/optimizer.js";
export { Trainer, countedTokens, type Batch, type StepResult, type TrainerOptions } from "./train/trainer.js";
export { RandomStream, type RandomState } from "./train/random.js";
export {
  OPTIMIZER_STATE_NAME,
  TRAINER_STATE_NAME,
  loadTrainingCheckpoint,
  saveTrainingCheckpoint,
  type TrainerStateJson,
} from "./train/checkpoint.js";

export {
  FewshotSampler,
  MULTIPLE_CHOICE_METRICS,
  aggregateSubtaskMetrics,
  constructRequests,
  fewshotContext,
  mean,
  meanStderr,
  pooledSampleStderr,
  processResults,
  readTaskDocs,
  resolveTasks,
  runHarness,
  type Doc,
  type GroupSpec,
  type HarnessOptions,
  type HarnessResults,
  type HarnessRun,
  type LoglikelihoodRequest,
  type LoglikelihoodResult,
  type LoglikelihoodScorer,
  type MetricConfig,
  type MultipleChoiceMetric,
  type SampleRecord,
  type SourcedDoc,
  type TaskRegistry,
  type TaskSpec,
} from "./eval/harness.js";
export { ModelScorer, type ModelScorerOptions } from "./eval/model-scorer.js";
export { BUILTIN_TASKS } from "./eval/tasks/registry.js";
export { PythonRandom } from "./eval/python-random.js";
