/**
 * The experiment as a framework: the run folder, one option table and its
 * presets, the contestants (a declared interface and a registry, one file
 * each), results, the report, data preparation, the judge, the engine
 * choice, and reading finished runs. The command-line scripts in
 * `examples/` are thin layers over it.
 *
 * @example A contestant's seed stream, model and learning rate, from the registry
 * ```ts
 * import { contestantOf, modelList, resolveConfig, weightSeed } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const config = resolveConfig({ preset: "tiny", models: "d3pm,ar" });
 * assertEquals(modelList(config), ["ar", "d3pm"]); // training order
 * const d3pm = contestantOf("d3pm");
 * assertEquals(weightSeed(d3pm, 1), 1002);
 * assertEquals(d3pm.modelConfig(config, 4096).kind, "bidirectional");
 * assertEquals(d3pm.peakLr(config), config.lr);
 * ```
 *
 * @module
 */
export * from "./options.ts";
export * from "./presets.ts";
export * from "./config.ts";
export * from "./contestant.ts";
export * from "./registry.ts";
export * from "./contestants/ar.ts";
export * from "./contestants/d3pm.ts";
export * from "./contestants/mlm.ts";
export * from "./contestants/bd3.ts";
export {
  backbone,
  type EvalContext,
  exactBoundDraws,
  generateByUnmasking,
  infillFigures,
  likelihoodFigures,
  maskedEngineShape,
  measureGeneration,
  testBound,
  testBoundDraws,
  unmaskingBy,
  validateOver,
  validationDraws,
} from "./evaluation.ts";
export * from "./results.ts";
export * from "./run_folder.ts";
export * from "./budget.ts";
export {
  openTokenizer,
  prepareData,
  type PrepareOptions,
  prepareRunData,
  type RunData,
  type Specials,
} from "./data.ts";
export {
  chooseEngine,
  chooseRunEngine,
  type Engine,
  type EngineChoice,
  engineFingerprint,
  type EngineRun,
  type EvalModel,
  evaluationModel,
  type EvaluationModels,
  evaluationModels,
  modelEngine,
  type PlacedModel,
  placeModel,
  processStagger,
  releaseEvaluationModel,
  trainOnEngine,
} from "./engine.ts";
export {
  type Judge,
  judgeKey,
  type JudgeOptions,
  type JudgePlan,
  judgePlan,
  openJudge,
} from "./judge.ts";
export {
  checkpointTies,
  enter,
  type Entrant,
  type TrainContext,
  validationSummary,
  weightSeed,
} from "./train.ts";
export * from "./init_from.ts";
export * from "./run.ts";
export {
  formatSamples,
  genPplCell,
  plateauExit,
  plateauWindow,
  sampleLabel,
} from "./report.ts";
export * from "./load.ts";
export * from "./damaged_file.ts";
export * from "./tools.ts";
export * from "./score.ts";
export {
  cellCost,
  type CellStatus,
  cellStep,
  commandLineOf,
  type LocalOptions,
  parseGrid,
  parseSeeds,
  type PlanOptions,
  planSweep,
  readSweep,
  recordSubmission,
  runLocal,
  saveSweep,
  sbatchScript,
  shellQuote,
  type SlurmOptions,
  statusLine,
  type StepOptions,
  type StudyCell,
  studyPlanText,
  studySweep,
  type Sweep,
  SWEEP_FILE_LIMIT,
  SWEEP_OWNED,
  SWEEP_PLAN_RULES,
  type SweepCell,
  sweepCommand,
  type SweepPaths,
  sweepPaths,
  type SweepSpec,
  sweepStatus,
  type SweepValue,
  waves,
} from "./sweep.ts";
export {
  checkSweepData,
  moveBrokenAside,
  oldSweepScripts,
  runSweepLocal,
  runSweepOnSlurm,
  type SweepRunResult,
  type SweepSlurmRun,
  sweepSpecOf,
} from "./sweep_run.ts";
export {
  checkMergeable,
  type CollectOptions,
  collectRuns,
  measuredFigures,
  type Merge,
  type MergedRun,
  writeMergedReport,
} from "./merge.ts";
