/**
 * The project's studies on top of the experiment: the ablation of training
 * at a small budget (`deno task ablate`), and the data-constrained study of
 * AR and D3PM over many epochs (`deno task study epochs`) — its analysis,
 * runs and report.
 *
 * @example
 * ```ts
 * import { ABLATION_BASELINE, grid, SCALES } from "@d3pm/experiment/studies";
 * import { assert, assertEquals } from "@std/assert";
 * assertEquals(ABLATION_BASELINE.alibi, 0); // pinned: the preset's ALiBi does not leak in
 * assert(grid(250).some((v) => v.model === "d3pm"));
 * assertEquals(SCALES.gpu.preset, "small");
 * ```
 *
 * @module
 */
export {
  ABLATION_BASELINE,
  ablationBase,
  type AblationCellOptions,
  ablationMarkdown,
  type AblationOptions,
  type AblationRow,
  ablationSweep,
  type AblationSweepOptions,
  checkVariantBatches,
  checkVariantSteps,
  collectAblation,
  grid,
  runAblation,
  runAblationCell,
  type Variant,
  variantFolder,
  type VariantResult,
} from "./ablation.ts";
export * from "./adaptation.ts";
export * from "./epochs_analysis.ts";
export * from "./epochs_scale.ts";
export * from "./epochs_runner.ts";
export * from "./study_plan.ts";
