/**
 * The dashboard: a thin HTTP reader of run folders (`deno task serve`) with
 * live training curves over server-sent events, the report's tables and
 * charts, and a playground where the AR model and the D3PM generate side by
 * side — on the server, or in the browser on WebGPU with the project's WGSL
 * engine. Runs are named by id, never by path.
 *
 * @example A run id is a relative path of plain names
 * ```ts
 * import { BadRunIdError, checkRunId } from "@d3pm/dashboard";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(checkRunId("tiny-main"), ["tiny-main"]);
 * assertThrows(() => checkRunId("a/../../etc"), BadRunIdError);
 * ```
 *
 * @module
 */
export {
  BadRunIdError,
  checkRunId,
  checkRunsRoot,
  filesStamp,
  findRuns,
  type FoundRun,
  type InsideFile,
  insideFile,
  linkOutOfRun,
  MAX_RUN_ENTRIES,
  MAX_WALK_DEPTH,
  notServed,
  type OpenedRunFolder,
  openInside,
  openRunFolder,
  resolveRun,
  RunLinksOutError,
  RunUncheckedError,
  type SkippedFolder,
} from "./run_ids.ts";
// Where it was first defined; the one definition is core's.
export { isInside } from "@d3pm/core";
export * from "./follow.ts";
export * from "./sse.ts";
export {
  DEFAULT_LIMITS,
  type Frame,
  generateFrames,
  type GenerationInput,
  type GenerationLimits,
  GenerationService,
  type GenerationStart,
  HttpError,
  inRunFolder,
  type LoadedModel,
  type ModelLoader,
  parseGenerationInput,
  type Sampler,
  SAMPLERS,
  trainedModelLoader,
} from "./generation.ts";
export {
  COMMAND_CHARS,
  type DashboardContext,
  errorResponse,
  json,
  listRunsRoute,
  MAX_METRIC_STREAMS,
  optionsRoute,
  runDir,
  type RunSummary,
} from "./routes.ts";
export * from "./server.ts";
export { type BundleOptions, pageFiles } from "./page.ts";
export * from "./export.ts";
// Types from other workspace packages that appear in this package's signatures.
export type {
  Contestant,
  ContestantProcess,
  PlacedModel,
  RunOverview,
} from "@d3pm/experiment";
export type { Tokenizer } from "@d3pm/tokenizer";
