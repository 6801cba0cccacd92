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

Deno.test("tokenProbabilities() at temperature 0 with every id suppressed refuses: no id is left to be the argmax", () => {
  // It gave all zeros (a draw then refused all-zero weights; a summing
  // caller read 0). Mutation pass (docs/testing.md), on main's greedy path:
  // `first = -1` → `1` or → `-0` handed a suppressed id 1.
  assertThrows(
    () =>
      tokenProbabilities([3, 1, 2], { temperature: 0, suppress: [0, 1, 2] }),
    RangeError,
    "every one of the 3 logits is −Infinity or suppressed (suppress: [0,1,2])",
  );
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

Deno.test("tokenProbabilities() refuses logits it cannot turn into probabilities summing to 1, and suppressed ids outside them", () => {
  const cases: [number[], number[], string][] = [
    [[0, NaN, 1], [], "Cannot draw a token: logit 1 of 3 is NaN"],
    [[NaN, NaN], [], "Cannot draw a token: logit 0 of 2 is NaN"],
    [[0, Infinity, 1], [], "Cannot draw a token: logit 1 of 3 is Infinity"],
    [
      [-Infinity, -Infinity],
      [],
      "Cannot draw a token: every one of the 2 logits is −Infinity or suppressed (suppress: [])",
    ],
    [
      [0, 1],
      [0, 1],
      "Cannot draw a token: every one of the 2 logits is −Infinity or suppressed (suppress: [0,1])",
    ],
    [
      [0, 1],
      [2],
      "suppress: id 2 is not one of the 2 logits' ids: expected an integer in [0, 2)",
    ],
    [[0, 1], [-1], "suppress: id -1 is not one of the 2 logits' ids"],
  ];
  for (const [logits, suppress, why] of cases) {
    for (const temperature of [1, 0]) {
      assertThrows(
        () => tokenProbabilities(logits, { suppress, temperature }),
        RangeError,
        why,
      );
    }
  }
  // A suppressed NaN or Infinity is never read; −Infinity beside a finite
  // logit has probability 0.
  assertEquals([...tokenProbabilities([NaN, 0], { suppress: [0] })], [0, 1]);
  assertEquals([...tokenProbabilities([Infinity, 0], { suppress: [0] })], [
    0,
    1,
  ]);
  assertEquals([...tokenProbabilities([-Infinity, 0])], [0, 1]);
});
