/**
 * The warm-up–cosine schedule of a run's models and of its `auto` judge,
 * from the run's options.
 *
 * @module
 */
import type { WarmupCosineOptions } from "@d3pm/train";
import { ADDED_KEYS } from "./options.ts";

/**
 * The schedule's options: warm-up to `peak`, then the cosine down to
 * `final` × `peak` at `total`. The default fraction (0.1) leaves `min`
 * unset, so `warmupCosine` takes its own `peak / 10`: `0.1 * peak` differs
 * from it in the last bit for some peaks, and older runs' bits (and the
 * judges' cache keys, which hash the plan) stay as they were.
 *
 * @param peak The peak learning rate.
 * @param warmup Warm-up steps.
 * @param total Total steps.
 * @param final The final learning rate as a fraction of the peak, in [0, 1].
 * @returns The options of `warmupCosine`.
 *
 * @example
 * ```ts
 * import { scheduleOf } from "./_schedule.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(scheduleOf(1e-3, 10, 100, 0.1), { peak: 1e-3, warmup: 10, total: 100 });
 * assertEquals(scheduleOf(1e-3, 10, 100, 0).min, 0);
 * assertEquals(scheduleOf(1e-3, 10, 100, 0.5).min, 5e-4);
 * ```
 */
export function scheduleOf(
  peak: number,
  warmup: number,
  total: number,
  final: number,
): WarmupCosineOptions {
  return {
    peak,
    warmup,
    total,
    ...(final === ADDED_KEYS.lrFinal ? {} : { min: final * peak }),
  };
}
