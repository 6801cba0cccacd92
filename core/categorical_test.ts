import { assertEquals, assertThrows } from "@std/assert";
import { sampleCategorical, tokenProbabilities } from "./categorical.ts";
import { type Prng, prng } from "./prng.ts";

// Mutation pass (docs/testing.md, "Mutation testing"): the samplers' tests
// draw from normalised probabilities with a real stream, which left
// sampleCategorical's scaling by the total, its interval ends and its
// rounding fallback untested. A stub stream returns chosen uniforms.
const fixed = (u: number): Prng => ({ next: () => u }) as unknown as Prng;

Deno.test("sampleCategorical() is the inverse CDF of unnormalised weights with half-open intervals", () => {
  // Reference, exact in binary: weights [1, 3, 0, 4] (total 8) and u = k/16,
  // so u·8 = k/2; the draw is the first i with u·8 < w₀ + … + wᵢ among
  // positive weights. Kills `next() * total` → `/ total` (correct only for
  // a total of 1) and `u < 0` → `u <= 0` (a draw on a boundary k/2 = 1 or 4
  // goes to the next id, not the one ending there).
  const w = [1, 3, 0, 4];
  for (let k = 0; k < 16; k++) {
    const x = k / 2;
    const want = x < 1 ? 0 : x < 4 ? 1 : 3;
    assertEquals(sampleCategorical(w, fixed(k / 16)), want, `u = ${k}/16`);
  }
  // All-zero weights are refused (kills `total > 0` → `>=`).
  assertThrows(
    () => sampleCategorical([0, 0], fixed(0.5)),
    RangeError,
    "not all zero",
  );
});

Deno.test("sampleCategorical() falls back to the last positive weight when rounding leaves u ≥ 0", () => {
  // With u = 1 − 2⁻⁵³, (0.1 + 0.2 + 0.3)·u − 0.1 − 0.2 − 0.3 is exactly 0 in
  // float64 (found by search), so no id is returned inside the loop. The
  // answer is id 2, never the trailing zero weight (kills `weights[i] <= 0`
  // → `< 0`) nor one past the end (kills `i < weights.length` → `<=`).
  const u = 1 - 2 ** -53;
  assertEquals(sampleCategorical([0.1, 0.2, 0.3], fixed(u)), 2);
  assertEquals(sampleCategorical([0.1, 0.2, 0.3, 0], fixed(u)), 2);
});

Deno.test("tokenProbabilities() at temperature 0 with every id suppressed gives no id any probability", () => {
  // No id is left to be the argmax, so none gets 1 (a draw then refuses
  // all-zero weights). Mutation pass (docs/testing.md), on main's greedy
  // path: kills `first = -1` → `1` and → `-0`, which hand a suppressed id 1.
  const p = tokenProbabilities([3, 1, 2], {
    temperature: 0,
    suppress: [0, 1, 2],
  });
  assertEquals(Array.from(p), [0, 0, 0]);
});

Deno.test("sampleCategorical() refuses a negative or NaN weight instead of drawing from shifted intervals", () => {
  // [-1, 1, 1] summed to 1, so u in [0, 1) always landed on index 1 and
  // index 2, of equal weight, was never drawn.
  for (
    const [weights, bad, at] of [[[-1, 1, 1], -1, 0], [
      [1, NaN],
      NaN,
      1,
    ]] as const
  ) {
    assertThrows(
      () => sampleCategorical(weights, prng(0)),
      RangeError,
      `Cannot sample: weights must be non-negative numbers, got ${bad} at index ${at}`,
    );
  }
});
