/**
 * Learning-rate schedules: linear warm-up then cosine decay.
 *
 * @module
 */

/** Options of {@linkcode warmupCosine}. */
export interface WarmupCosineOptions {
  /** Peak learning rate, reached at the end of warm-up. */
  peak: number;
  /** Warm-up steps (linear from `peak / warmup` to `peak`). */
  warmup: number;
  /** Total steps; the cosine reaches `min` there and stays. */
  total: number;
  /** Final learning rate (default `peak / 10`). */
  min?: number;
}

/**
 * Linear warm-up to `peak`, then a half cosine down to `min` at `total`.
 *
 * @param options Peak, warm-up, total and minimum.
 * @returns The learning rate for a 0-based step.
 *
 * @example
 * ```ts
 * import { warmupCosine } from "@d3pm/train";
 * import { assertAlmostEquals } from "@std/assert";
 * const lr = warmupCosine({ peak: 1e-3, warmup: 10, total: 110, min: 0 });
 * assertAlmostEquals(lr(9), 1e-3, 1e-15);
 * assertAlmostEquals(lr(60), 5e-4, 1e-15);
 * assertAlmostEquals(lr(500), 0, 1e-15);
 * ```
 */
export function warmupCosine(
  options: WarmupCosineOptions,
): (step: number) => number {
  const { peak, warmup, total } = options;
  const min = options.min ?? peak / 10;
  if (!(peak > 0) || !(min >= 0) || min > peak) {
    throw new RangeError(
      `warmupCosine: need 0 ≤ min ≤ peak and peak > 0, got peak ${peak}, min ${min}`,
    );
  }
  if (
    !Number.isInteger(warmup) || warmup < 0 || !Number.isInteger(total) ||
    total < warmup
  ) {
    throw new RangeError(
      `warmupCosine: warmup and total must be integers with 0 ≤ warmup ≤ total, got ${warmup}, ${total}`,
    );
  }
  return (step: number) => {
    if (!(step >= 0)) {
      throw new RangeError(`warmupCosine: step must be ≥ 0, got ${step}`);
    }
    if (step < warmup) return (peak * (step + 1)) / warmup;
    if (step >= total || total === warmup) return min;
    const progress = (step - warmup) / (total - warmup);
    return min + 0.5 * (peak - min) * (1 + Math.cos(Math.PI * progress));
  };
}
