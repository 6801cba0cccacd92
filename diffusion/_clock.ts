import type { ContinuousSchedule } from "./schedule.ts";
import { type Stagger, staggeredTime } from "./stagger.ts";

/**
 * The clean probability and the bound's weight of the token at `index` of
 * its row at time `t`: `alpha` and `−alpha′/(1 − alpha)` on its clock
 * (times its clock's rate when staggered).
 */
export function tokenClock(
  schedule: ContinuousSchedule,
  stagger: Stagger | undefined,
  index: number,
  t: number,
): { alpha: number; weight: number } {
  if (!stagger) {
    const alpha = schedule.alpha(t);
    return { alpha, weight: -schedule.alphaPrime(t) / (1 - alpha) };
  }
  const { tau, rate } = staggeredTime(stagger, index, t);
  const alpha = schedule.alpha(tau);
  return {
    alpha,
    weight: rate === 0 ? 0 : (rate * -schedule.alphaPrime(tau)) / (1 - alpha),
  };
}
