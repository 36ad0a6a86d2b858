/**
 * growlm's public library API.
 *
 * Tensors in native memory, the CPU kernels (each with its backward where it has one) and
 * the runtime settings; the LLaMA decoder with its flat parameter buffers, Hugging Face
 * checkpoints and tokenizers, scoring, the training step with its checkpoints, model
 * growth (depth and width operators, on disk and in the middle of training), fine-tuning
 * data, text metrics and the multiple-choice benchmark harness. Kernels
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
  attentionCachedForward,
  attentionForward,
  type AttentionBackwardOptions,
  type AttentionCachedOptions,
  type AttentionForwardOptions,
} from "./kernels/attention.js";
export { rmsnormBackward, rmsnormFilmBackward, rmsnormFilmForward, rmsnormForward } from "./kernels/norm.js";
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
export { ewcFisherAccumulate, ewcPenalty, type EwcState } from "./kernels/ewc.js";
export { distillStudent, distillTeacher, type DistillTargets } from "./kernels/distill.js";
export { dropout, fillNormal, fillUniform, rand, randn, type NormalOptions, type RngStream, type UniformOptions } from "./kernels/rng.js";

export { LLAMA_DEFAULTS, headDim, llamaConfigToJson, parseLlamaConfig, type LlamaConfig } from "./model/config.js";
export { LAYER_KINDS, ParamLayout, layerParamName, parameterSpecs, type ModuleKind, type ParamEntry, type ParamSpec } from "./model/params.js";
export {
  LlamaModel,
  type BackwardOptions,
  type ForwardOptions,
  type ForwardResult,
  type LlamaModelOptions,
  type LogitsTerm,
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
export { KvCache } from "./model/kv-cache.js";
export { generate, type GenerateOptions, type GeneratedSequence } from "./eval/generate.js";
export type { EarlyStopping } from "./eval/beam-search.js";

export {
  listCheckpointTensors,
  loadModelDir,
  loadWeights,
  parseShardSize,
  readGenerationConfig,
  readModelConfig,
  readTensor,
  saveModelDir,
  writeModelDir,
  type CheckpointTensor,
  type GenerationConfig,
  type LoadedModelDir,
  type SaveModelOptions,
  type SavedModelDir,
  type WriteModelDirOptions,
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
export { Trainer, countedTokens, type Batch, type ObjectiveTerms, type StepResult, type TrainerOptions } from "./train/trainer.js";
export { RandomStream, type RandomState } from "./train/random.js";
export {
  COMM_BACKENDS,
  DEFAULT_COMM_TIMEOUT_SECONDS,
  distributedEnv,
  initProcessGroup,
  sumAcrossRanks,
  type CommArray,
  type CommBackend,
  type CommWork,
  type Communicator,
  type DistributedEnv,
  type ProcessGroupOptions,
  type ReduceOp,
} from "./train/comm.js";
export { TcpStoreClient, TcpStoreServer } from "./train/comm-store.js";
export { TcpCommunicator } from "./train/comm-tcp.js";
export { DEFAULT_BUCKET_CAP_MB, DataParallel, gradientBuckets, shardIndices, type DistributedTraining, type GradientBucket } from "./train/data-parallel.js";
export { freePort, launchWorkers, workerEnv, type LaunchOptions } from "./train/launch.js";
export { DEPTH_OPERATORS, planDepth, type DepthGrowthOptions, type DepthOperator, type LayerInit, type LayerOrder, type LayerSource } from "./growth/depth.js";
export {
  UNIT_SELECTIONS,
  WIDTH_OPERATORS,
  identityAxis,
  planWidth,
  widthTargetConfig,
  type AxisMap,
  type UnitSelection,
  type WidthGrowthOptions,
  type WidthMaps,
  type WidthOperator,
} from "./growth/width.js";
export {
  describeGrowth,
  formatUnitMap,
  growMoment,
  growTensor,
  planGrowth,
  type GrowthMask,
  type GrowthOptions,
  type GrowthPlan,
  type SourceTensorReader,
} from "./growth/plan.js";
export {
  BranchMask,
  growModel,
  growTrainer,
  type GrowTrainerOptions,
  type GrownTraining,
  type OptimizerStatePolicy,
  type SchedulePolicy,
} from "./growth/schedule.js";
export {
  GROWTH_RECORD_NAME,
  TOKENIZER_FILE_NAMES,
  growCheckpoint,
  growthRecord,
  readGrowthRecord,
  type GrowCheckpointOptions,
  type GrownCheckpoint,
  type GrowthRecord,
} from "./growth/checkpoint.js";
export {
  GROWTH_TIMING_FIT,
  GROWTH_TIMING_NOTES,
  G_STACK_FACTOR,
  suggestGrowthTiming,
  type GrowthTimingInput,
  type GrowthTimingSuggestion,
} from "./growth/timing.js";

export {
  OPTIMIZER_STATE_NAME,
  TRAINER_STATE_NAME,
  loadTrainingCheckpoint,
  saveTrainingCheckpoint,
  type TrainerStateJson,
} from "./train/checkpoint.js";

export { bleu, tokenizeBleu13a, type BleuOptions, type BleuResult } from "./eval/metrics/bleu.js";
export {
  bleuFromStatistics,
  corpusBleu,
  sentenceBleu,
  type SacreBleuOptions,
  type SacreBleuResult,
  type SmoothMethod,
} from "./eval/metrics/sacrebleu.js";
export {
  DEFAULT_ROUGE_TYPES,
  rouge,
  rougePerExample,
  rougeScore,
  rougeScoreMulti,
  rougeTokenize,
  type RougeOptions,
  type RougeScore,
} from "./eval/metrics/rouge.js";
export { porterStem } from "./eval/metrics/porter.js";
export {
  EASSE_SARI_VARIANT,
  HF_SARI_VARIANT,
  easseCorpusSari,
  normalizeForSari,
  sari,
  sariSentenceNormalized,
  type EasseSariOptions,
  type EasseSariResult,
  type SariResult,
} from "./eval/metrics/sari.js";
export { pythonSplit, tokenize13a, type SacreTokenizerName } from "./eval/metrics/text.js";
export { readJsonlInputs, readStudyPredictions, readTextInputs, type MetricInputs } from "./eval/metrics/inputs.js";
export {
  METRIC_NAMES,
  computeMetrics,
  defaultMetrics,
  parseMetricNames,
  type MetricName,
  type MetricResult,
  type MetricSuiteOptions,
  type SentenceBleuResult,
} from "./eval/metrics/suite.js";
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

// Probabilistic fine-tuning: FiLM-Ensemble, MC dropout, calibration and temperature scaling.
export { FilmEnsemble, filmSites, initializeFilm, xavierUniformBound, type FilmSite } from "./probabilistic/film.js";
export { samplingDropoutDraw, trainingDropoutDraw, trainingDropoutElements, type DropoutDraw } from "./probabilistic/mc-dropout.js";
export {
  ECE_BINS,
  PROBABILITY_FLOOR,
  TemperatureData,
  UncertaintyAccumulator,
  averageProbabilities,
  brierScore,
  classificationUncertainty,
  entropy,
  entropyDecomposition,
  expectedCalibrationError,
  fitTemperature,
  logMeanProbability,
  sequenceUncertainty,
  softmax,
  type CalibrationBin,
  type CalibrationError,
  type EntropyDecomposition,
  type SequenceUncertainty,
  type TemperatureFit,
  type UncertaintySummary,
} from "./probabilistic/calibration.js";
export {
  MAX_TEMPERATURE_VALUES,
  choiceTemperatureData,
  fitTokenTemperature,
  multipleChoiceUncertainty,
  teacherForcedUncertainty,
  type ChoiceDocument,
  type SequenceSummary,
  type TeacherForcedOptions,
  type TeacherForcedUncertainty,
} from "./probabilistic/evaluate.js";
export {
  FILM_WEIGHTS_NAME,
  PROBABILISTIC_CONFIG_NAME,
  loadProbabilistic,
  probabilisticConfigOf,
  readProbabilisticConfig,
  saveProbabilistic,
  type ProbabilisticConfig,
} from "./probabilistic/checkpoint.js";
export { EXPORT_FORMATS, exportMember, maxAbsBeta, memberDeviation, type ExportFormat, type MemberDeviation } from "./probabilistic/export.js";
export {
  DEFAULT_ENSEMBLE_SIZE,
  DEFAULT_FILM_INIT_GAIN,
  DEFAULT_MC_SAMPLES,
  PROBABILISTIC_METHODS,
  methodOf,
  prepareProbabilisticModel,
  type ProbabilisticFinetuneOptions,
  type ProbabilisticMethod,
} from "./probabilistic/finetune-mode.js";
export {
  STRATEGY_DEFAULTS,
  STRATEGY_FLAGS,
  STRATEGY_NAMES,
  ContinualStrategy,
  checkStrategyOptions,
  describeStrategy,
  parseStrategyNames,
  type StrategyContext,
  type StrategyName,
  type StrategyOptions,
  type StrategyRecord,
} from "./continual/strategy.js";
export { REPLAY_BUFFER_NAME, REPLAY_POLICIES, ReplayBuffer, ReplaySchedule, balancedShares, type ReplayExample, type ReplayPolicy } from "./continual/replay.js";
export {
  EWC_FISHER_NAME,
  FISHER_LABELS,
  EwcRegularizer,
  accumulateFisher,
  estimateFisher,
  readFisher,
  writeFisher,
  type FisherEstimate,
  type FisherLabels,
  type FisherOptions,
  type FisherRecord,
} from "./continual/ewc.js";
export {
  LWF_TARGETS_NAME,
  computeTeacherTargets,
  distillationTerm,
  readTeacherTargets,
  writeTeacherTargets,
  type TeacherTargets,
  type TeacherTargetsKey,
  type TrackedBatch,
} from "./continual/lwf.js";
export {
  copiesHeatmap,
  diffCheckpoints,
  driftHeatmap,
  driftJson,
  summarizeDrift,
  type CopyDrift,
  type DiffOptions,
  type DriftMeasures,
  type DriftReport,
  type DriftSummary,
  type LayerDrift,
  type ModuleDrift,
  type TensorDrift,
} from "./continual/drift.js";
