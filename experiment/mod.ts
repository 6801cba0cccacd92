/**
 * The experiment as a framework: the run folder, the configuration and its
 * presets, the contestants, results, the report, data preparation, the
 * judge, the engine choice, and loading a finished run.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(resolveConfig().preset, "tiny");
 * ```
 *
 * @module
 */
export {
  ADDED_KEYS,
  ConfigError,
  type ExperimentConfig,
  genStepList,
  MODEL_KINDS,
  modelList,
  type PresetName,
  PRESETS,
  resolveConfig,
  RESUMABLE_KEYS,
} from "./config.ts";
export {
  type ArResult,
  type D3pmResult,
  type DataFacts,
  type ExperimentResult,
  type InfillFigures,
  type MlmResult,
  type ModelResult,
  type ResultBase,
  runExperiment,
  type RunOptions,
  type SpeedQuality,
  type TrainingFigures,
} from "./run.ts";
export {
  configDiff,
  type ModelKind,
  RunFolder,
  trainingFingerprint,
} from "./run_folder.ts";
export {
  openTokenizer,
  prepareData,
  type RunData,
  type Specials,
  trainPrefix,
} from "./data.ts";
export {
  type AnyContestant,
  arContestant,
  d3pmContestant,
  mlmContestant,
  parameterTotal,
  trainContestant,
} from "./train.ts";
export { chooseEngine, type Engine } from "./engine.ts";
export { plateauExit, plateauWindow } from "./report.ts";
export {
  fail,
  loadRun,
  openRun,
  parseToolArgs,
  showMasked,
  strategyOf,
  toolModel,
} from "./load.ts";
