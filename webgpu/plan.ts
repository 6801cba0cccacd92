/**
 * The engine's plan for other executors: the model as an ordered list of
 * executor-neutral kernel calls (`Kernels`), over the parameter table and
 * an activation arena planned once per shape. The WebGPU engine records it
 * as WGSL dispatches; `@d3pm/cpu`'s `CpuTransformer` runs the same calls on
 * the CPU, with the same weights in and out (`joinWeights`, `splitWeights`)
 * and the same bounded cache of plans by shape (`PlanCache`). Re-exports of
 * the engine's private planning modules, unchanged.
 *
 * @example
 * ```ts
 * import { parameterTable, planArena } from "@d3pm/webgpu/plan";
 * import { preset } from "@d3pm/transformer";
 * import { assert } from "@std/assert";
 * const c = preset("micro");
 * const table = parameterTable(c);
 * const arena = planArena(c, 2, 8, "training", 1 << 20);
 * assert(table.size > 0 && arena.size > 0);
 * ```
 *
 * @module
 */
export type * from "./_kernels.ts";
export {
  checkEngineOptions,
  checkIds,
  checkTerms,
  checkTrainBatch,
  type CommonEngineOptions,
  type EngineShape,
  stepDropoutSeed,
} from "./_engine_checks.ts";
export {
  type Arena,
  embeddingIndex,
  type IntLayout,
  joinWeights,
  type LayerActs,
  type ParameterEntry,
  type ParameterTable,
  parameterTable,
  planArena,
  planInts,
  type PlanMode,
  ropeTables,
  splitWeights,
  timeFeatures,
} from "./_layout.ts";
export {
  type ForwardHooks,
  recordBackward,
  recordEvaluation,
  recordForward,
  recordHead,
  recordScore,
} from "./_plan.ts";
export {
  checkDraw,
  checkMasked,
  checkSuppress,
  type DrawSettings,
  type Fail,
} from "./_generation_checks.ts";
export {
  type DecodeArena,
  type DecodeInts,
  decodeSplitChunk,
  planDecode,
  recordDecode,
} from "./_decode.ts";
export { PlanCache } from "./_plan_cache.ts";
// Types from other workspace packages that appear in these signatures.
export type {
  DeviceDraw,
  MaskedGenerationOptions,
  MaskedStep,
  StoredTensor,
} from "@d3pm/core";
export type {
  AlibiMode,
  ModelConfig,
  ModelKind,
  PositionKind,
} from "@d3pm/transformer/init";
