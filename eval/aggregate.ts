/**
 * Aggregating a figure over seeds.
 *
 * @module
 */
import { checkFinite } from "./_check.ts";

/** A figure over seeds. */
export interface SeedSummary {
  /** Number of seeds. */
  n: number;
  /** Mean. */
  mean: number;
  /** Sample standard deviation (0 for one seed). */
  sd: number;
  /** Smallest value (the best, for losses). */
  min: number;
  /** Largest value. */
  max: number;
}

/**
 * Mean, standard deviation, best and range over seeds.
 *
 * @param values One value per seed.
 * @returns The summary.
 * @throws {RangeError} With no values, or one that is not a finite number.
 *
 * @example
 * ```ts
 * import { summarize } from "@d3pm/eval";
 * import { assertEquals } from "@std/assert";
 * assertEquals(summarize([5.72, 9.41, 9.05]).min, 5.72);
 * ```
 */
export function summarize(values: readonly number[]): SeedSummary {
  if (values.length === 0) throw new RangeError("summarize: no values");
  // A NaN or an infinity gave a NaN mean (null in JSON); a null read back
  // from one counted as 0.
  values.forEach((x, i) => checkFinite(x, `summarize: value ${i}`));
  const n = values.length;
  const mean = values.reduce((s, x) => s + x, 0) / n;
  const sd = n > 1
    ? Math.sqrt(values.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1))
    : 0;
  return { n, mean, sd, min: Math.min(...values), max: Math.max(...values) };
}
