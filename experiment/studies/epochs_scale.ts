/**
 * The data-constrained study's sizes and records: how many unique tokens,
 * how much compute, the AR's sweep; one finished run's curve.
 *
 * @module
 */
import type { CurvePoint } from "./epochs_analysis.ts";

/** Sizes of the study. */
export interface StudyScale {
  /** The experiment preset of both models. */
  preset: "micro" | "tiny" | "small" | "paper";
  /** Unique-token budgets, ascending. */
  u: number[];
  /** Training tokens of each run (epochs = tokens / U): the same compute at every U. */
  tokens: number;
  /** AR dropouts of the sweep. */
  dropouts: number[];
  /** AR weight decays of the sweep. */
  decays: number[];
  /**
   * Stop an AR run after this many epochs without a new best validation. The
   * D3PM always runs its whole budget: it sits on the unigram plateau, its
   * bound flat or rising, for hundreds of steps before it uses its context,
   * and a patience rule would cut it off there.
   */
  patience: number;
  /**
   * Stop a D3PM run after this many epochs without a new best; absent: it
   * runs its whole budget. For a D3PM that leaves the plateau at once (the
   * `tiny` preset's, with its neighbour-head prior) and over-fits at a small U.
   */
  d3pmPatience?: number;
  /** Valid blocks per validation. */
  validBlocks: number;
  /** Blocks per step. */
  batchSize: number;
  /**
   * The models' training settings: `pinned` (at the `tiny` preset, those the
   * preset had when the study's first figures were measured, on the tfjs
   * engine, so that they stay reproducible as the preset moves) or `preset`
   * (the preset's own today: at `tiny`, the D3PM with the neighbour-head
   * ALiBi prior and its own lr).
   */
  settings: "pinned" | "preset";
  /**
   * The training engine; absent: the settings' (tfjs for `pinned` at
   * `tiny`, else the experiment's `auto`: the fused engine on a real GPU,
   * else the CPU engine).
   */
  engine?: "auto" | "tfjs" | "webgpu" | "cpu";
  /**
   * AdamW's β2 of every run; absent: the settings' (0.95 for `pinned` at
   * `tiny`, else the preset's: 0.999 at `tiny` since 2026-12-07). The
   * study's `preset` figures of 2026-12-05/06 were measured at 0.95.
   */
  adamBeta2?: number;
}

/**
 * The study's sizes by name: `cpu` (the default) and `gpu`.
 *
 * @example
 * ```ts
 * import { SCALES } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * assertEquals(SCALES.cpu.u, [10_000, 20_000, 40_000]);
 * ```
 */
export const SCALES: Readonly<Record<"cpu" | "gpu", StudyScale>> = {
  // The default: about half an hour on a quiet 2-core CPU.
  cpu: {
    preset: "tiny",
    u: [10_000, 20_000, 40_000],
    tokens: 500_000,
    dropouts: [0, 0.1, 0.2],
    decays: [0.1, 0.5],
    patience: 4,
    validBlocks: 32,
    batchSize: 8,
    settings: "pinned",
  },
  // A GPU (the fused engine when there is one): a larger model, U and compute.
  gpu: {
    preset: "small",
    u: [200_000, 500_000, 1_000_000],
    tokens: 40_000_000,
    dropouts: [0, 0.1, 0.2],
    decays: [0.1, 0.5],
    patience: 10,
    validBlocks: 128,
    batchSize: 32,
    settings: "pinned",
  },
};

/** One finished run's curve. */
export interface RunCurve {
  /** The AR's regularisation sweep, or the main comparison. */
  phase: "sweep" | "main";
  /** Unique tokens. */
  u: number;
  /** Which model. */
  model: "ar" | "d3pm";
  /** Its dropout. */
  dropout: number;
  /** Its weight decay. */
  weightDecay: number;
  /** Epochs planned (the LR schedule's length). */
  epochs: number;
  /** Why the run ended: all epochs, or `patience` epochs without a new best. */
  stopped: "budget" | "patience";
  /** Its validations. */
  curve: CurvePoint[];
}
