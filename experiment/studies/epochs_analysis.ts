/**
 * The data-constrained study's analysis (after Prabhudesai et al. 2025,
 * "Diffusion Beats Autoregressive in Data-Constrained Settings"): pure
 * functions over validation curves — each model's best epoch, over-fitting,
 * and the crossover, the first epoch at which the D3PM's validation bound
 * falls below the AR's best NLL.
 *
 * @module
 */
import { fixed } from "@d3pm/eval";

/** One validation of one model. */
export interface CurvePoint {
  /** Epochs completed (passes over the U unique tokens). */
  epoch: number;
  /** Training FLOPs so far (6 · parameters · tokens). */
  flops: number;
  /** Validation nats per token (the D3PM's: its bound). */
  valid: number;
}

/**
 * The lowest point of a curve (the earliest of equals).
 *
 * @param curve Validations in epoch order, at least one.
 * @returns The best point.
 * @throws {RangeError} For an empty curve.
 *
 * @example
 * ```ts
 * import { bestPoint } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const curve = [3, 2, 2, 4].map((valid, i) => ({ epoch: i + 1, flops: 0, valid }));
 * assertEquals(bestPoint(curve).epoch, 2);
 * ```
 */
export function bestPoint(curve: readonly CurvePoint[]): CurvePoint {
  if (curve.length === 0) {
    throw new RangeError("Cannot find the best point of an empty curve");
  }
  return curve.reduce((b, p) => (p.valid < b.valid ? p : b));
}

/** What one value of U shows. */
export interface Verdict {
  /** The AR's best validation. */
  arBest: CurvePoint;
  /** The D3PM's best validation (bound). */
  d3pmBest: CurvePoint;
  /** The AR's minimum lies inside its run (it over-fits after it). */
  arOverfits: boolean;
  /** The AR's last validation minus its best (nats; > 0 when over-fitting). */
  arRise: number;
  /** The D3PM's minimum lies inside its run. */
  d3pmOverfits: boolean;
  /** The first D3PM validation below the AR's best; absent when none. */
  crossover?: CurvePoint;
  /** The D3PM's best minus the AR's best (nats; < 0 after a crossover). */
  gap: number;
  /**
   * The D3PM's slope over the last third of its curve (at least 3 points),
   * nats per epoch, by least squares.
   */
  slope: number;
  /**
   * Without a crossover, and with the D3PM still falling: epochs past its
   * last at which its line would reach the AR's best (a linear
   * extrapolation; the curve flattens, so this is a lower bound).
   */
  epochsToCross?: number;
}

function lastThirdSlope(curve: readonly CurvePoint[]): number {
  const n = Math.min(curve.length, Math.max(3, Math.ceil(curve.length / 3)));
  const tail = curve.slice(curve.length - n);
  if (tail.length < 2) return 0;
  const mx = tail.reduce((a, p) => a + p.epoch, 0) / tail.length;
  const my = tail.reduce((a, p) => a + p.valid, 0) / tail.length;
  let sxy = 0, sxx = 0;
  for (const p of tail) {
    sxy += (p.epoch - mx) * (p.valid - my);
    sxx += (p.epoch - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : 0;
}

/**
 * Compare the two curves of one U: best epochs, over-fitting, and the
 * crossover (the D3PM below the AR's best).
 *
 * @param ar The AR's validations, in epoch order.
 * @param d3pm The D3PM's validations, in epoch order.
 * @returns The verdict.
 *
 * @example
 * ```ts
 * import { compareCurves } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const curve = (xs: number[]) => xs.map((valid, i) => ({ epoch: i + 1, flops: i + 1, valid }));
 * const v = compareCurves(curve([5, 4, 4.5]), curve([6, 4.5, 3.9]));
 * assertEquals(v.arOverfits, true);
 * assertEquals(v.crossover?.epoch, 3);
 * ```
 */
export function compareCurves(
  ar: readonly CurvePoint[],
  d3pm: readonly CurvePoint[],
): Verdict {
  const arBest = bestPoint(ar);
  const d3pmBest = bestPoint(d3pm);
  const crossover = d3pm.find((p) => p.valid < arBest.valid);
  const slope = lastThirdSlope(d3pm);
  const gap = d3pmBest.valid - arBest.valid;
  const last = d3pm[d3pm.length - 1];
  const verdict: Verdict = {
    arBest,
    d3pmBest,
    arOverfits: arBest !== ar[ar.length - 1],
    arRise: ar[ar.length - 1].valid - arBest.valid,
    d3pmOverfits: d3pmBest !== last,
    gap,
    slope,
  };
  if (crossover) verdict.crossover = crossover;
  else if (slope < 0) {
    verdict.epochsToCross = (last.valid - arBest.valid) / -slope;
  }
  return verdict;
}

/**
 * One sentence on a verdict, for the report.
 *
 * @param v The verdict.
 * @returns The sentence.
 *
 * @example
 * ```ts
 * import { compareCurves, describeVerdict } from "@d3pm/experiment/studies";
 * import { assertStringIncludes } from "@std/assert";
 * const curve = (xs: number[]) => xs.map((valid, i) => ({ epoch: i + 1, flops: i + 1, valid }));
 * const v = compareCurves(curve([5, 4]), curve([6, 5, 4.5]));
 * assertStringIncludes(describeVerdict(v), "no crossover within the budget");
 * ```
 */
export function describeVerdict(v: Verdict): string {
  if (v.crossover) {
    return `the D3PM's bound falls below the AR's best at epoch ${v.crossover.epoch} (${
      sci(v.crossover.flops)
    } FLOPs): ≤ ${fixed(v.crossover.valid, 3)} < ${fixed(v.arBest.valid, 3)}`;
  }
  const trend = v.slope < 0
    ? `still falling ${fixed(-v.slope, 4)} nats/epoch at the end${
      v.epochsToCross !== undefined
        ? `; on that line it would need ≥ ${
          Math.ceil(v.epochsToCross)
        } more epochs`
        : ""
    }`
    : `no longer falling at the end (${fixed(v.slope, 4)} nats/epoch)`;
  return `no crossover within the budget: the D3PM's best bound is ${
    fixed(v.gap, 3)
  } nats above the AR's best; ${trend}`;
}

/**
 * A count of FLOPs in short scientific notation.
 *
 * @param x The count.
 * @returns E.g. `1.23e15`.
 *
 * @example
 * ```ts
 * import { sci } from "./epochs_analysis.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(sci(1234e12), "1.23e15");
 * ```
 */
export function sci(x: number): string {
  return x.toExponential(2).replace("e+", "e");
}
