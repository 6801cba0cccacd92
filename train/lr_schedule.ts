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
  const problems = scheduleProblems(options);
  if (problems.length > 0) {
    throw new RangeError(`warmupCosine: ${problems.join("; ")}`);
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

/** Each field of the options that is missing or out of range, by name with
 * what it accepts (all of them at once: `{}` names peak, warmup and total). */
function scheduleProblems(o: WarmupCosineOptions): string[] {
  const got = (v: unknown) =>
    v === undefined
      ? "it is missing"
      : `got ${typeof v === "string" ? JSON.stringify(v) : String(v)}`;
  const isNumber = (v: unknown): v is number =>
    typeof v === "number" && Number.isFinite(v);
  const isCount = (v: unknown): v is number =>
    Number.isInteger(v) && (v as number) >= 0;
  const problems: string[] = [];
  if (!isNumber(o.peak) || !(o.peak > 0)) {
    problems.push(`peak must be a finite number > 0, ${got(o.peak)}`);
  }
  if (!isCount(o.warmup)) {
    problems.push(`warmup must be an integer ≥ 0, ${got(o.warmup)}`);
  }
  if (!isCount(o.total)) {
    problems.push(`total must be an integer ≥ warmup, ${got(o.total)}`);
  } else if (isCount(o.warmup) && o.total < o.warmup) {
    problems.push(
      `total must be ≥ warmup (0 ≤ warmup ≤ total), got total ${o.total}, warmup ${o.warmup}`,
    );
  }
  if (
    o.min !== undefined &&
    (!isNumber(o.min) || !(o.min >= 0) ||
      (isNumber(o.peak) && o.min > o.peak))
  ) {
    problems.push(
      `min must be a number with 0 ≤ min ≤ peak (default peak / 10), ${
        got(o.min)
      }${isNumber(o.min) ? ` with peak ${o.peak}` : ""}`,
    );
  }
  return problems;
}
