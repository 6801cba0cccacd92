import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  bestPoint,
  compareCurves,
  type CurvePoint,
  describeVerdict,
} from "./epochs_analysis.ts";

/** A curve from validation losses at epochs 1, 2, …; FLOPs 10 per epoch. */
function curve(valid: number[]): CurvePoint[] {
  return valid.map((v, i) => ({ epoch: i + 1, flops: 10 * (i + 1), valid: v }));
}

Deno.test("bestPoint() finds the lowest validation, the earliest of equals", () => {
  assertEquals(bestPoint(curve([5, 4, 3, 3, 4])).epoch, 3);
  assertEquals(bestPoint(curve([2])).epoch, 1);
  assertThrows(() => bestPoint([]), RangeError, "empty curve");
});

Deno.test("compareCurves() finds the AR's minimum and the first D3PM point below it", () => {
  // The AR over-fits after epoch 3; the D3PM passes its best (4.0) at epoch 5.
  const ar = curve([5, 4.5, 4.0, 4.2, 4.6]);
  const d3pm = curve([6, 5, 4.5, 4.1, 3.9, 3.8]);
  const v = compareCurves(ar, d3pm);
  assertEquals(v.arBest, { epoch: 3, flops: 30, valid: 4.0 });
  assert(v.arOverfits);
  assertEquals(Number(v.arRise.toFixed(6)), 0.6);
  assertEquals(v.d3pmBest.epoch, 6);
  assertEquals(v.d3pmOverfits, false);
  assertEquals(v.crossover, { epoch: 5, flops: 50, valid: 3.9 });
  assertEquals(Number(v.gap.toFixed(6)), -0.2);
  assertEquals(v.epochsToCross, undefined);
  assert(describeVerdict(v).includes("falls below the AR's best at epoch 5"));
});

Deno.test("compareCurves() says there is no crossover, with the D3PM's trend", () => {
  const ar = curve([5, 4, 3.5, 3.6, 3.9]);
  // Falling by 0.1 an epoch at the end, 0.5 above the AR's best.
  const d3pm = curve([6, 5, 4.5, 4.3, 4.2, 4.1, 4.0]);
  const v = compareCurves(ar, d3pm);
  assertEquals(v.crossover, undefined);
  assertEquals(Number(v.gap.toFixed(6)), 0.5);
  assertEquals(Number(v.slope.toFixed(6)), -0.1);
  assertEquals(Number(v.epochsToCross!.toFixed(6)), 5);
  const s = describeVerdict(v);
  assert(s.startsWith("no crossover within the budget"), s);
  assert(s.includes("≥ 5 more epochs"), s);
});

Deno.test("compareCurves() has no extrapolation when the D3PM has stopped falling", () => {
  const v = compareCurves(curve([4, 3, 3.5]), curve([5, 4.5, 4.4, 4.5, 4.6]));
  assertEquals(v.crossover, undefined);
  assert(v.slope > 0);
  assertEquals(v.epochsToCross, undefined);
  assert(v.d3pmOverfits);
  assert(describeVerdict(v).includes("no longer falling"));
});

Deno.test("compareCurves() reads an AR still improving at its last epoch as not over-fitting", () => {
  const v = compareCurves(curve([5, 4, 3]), curve([6, 5, 4]));
  assertEquals(v.arOverfits, false);
  assertEquals(v.arRise, 0);
});
