/**
 * Categorical draws in float64, shared by every sampler: softmax with
 * temperature, nucleus and suppressed ids, then an inverse-CDF draw. Float64
 * matters: float32 draws lose the tail and lower the effective temperature.
 * Temperature 0 is greedy: all the probability on the first largest logit.
 *
 * @module
 */
import type { Prng } from "./prng.ts";

/** How a token distribution is shaped before a draw. */
export interface DrawOptions {
  /**
   * Softmax temperature, ≥ 0 (default 1); 0 is greedy: the first largest
   * logit of the ids not suppressed gets probability 1 (its limit as the
   * temperature falls to 0, ties to the lowest id).
   */
  temperature?: number;
  /** Nucleus: keep the smallest set of ids with this much probability (default 1). */
  topP?: number;
  /** Ids never drawn (e.g. pad, mask). */
  suppress?: number[];
}

/**
 * Probabilities of the next token from one position's logits, in float64,
 * with temperature, nucleus and suppressed ids applied.
 *
 * @param logits The position's logits.
 * @param options Temperature (0: greedy), top-p and ids to suppress.
 * @returns Probabilities summing to 1 (at temperature 0, one 1).
 * @throws {RangeError} For a temperature below 0 or NaN, a top-p outside
 *   (0, 1], a suppressed id outside the logits, a NaN or +Infinity logit,
 *   or no id left to draw (every logit −Infinity or suppressed).
 *
 * @example
 * ```ts
 * import { tokenProbabilities } from "@d3pm/core";
 * import { assertAlmostEquals, assertEquals } from "@std/assert";
 * const p = tokenProbabilities([0, Math.log(3), 5], { suppress: [2] });
 * assertAlmostEquals(p[1], 0.75, 1e-12);
 * assertEquals(p[2], 0);
 * // Greedy: the largest logit not suppressed.
 * const greedy = tokenProbabilities([0, Math.log(3), 5], { temperature: 0, suppress: [2] });
 * assertEquals([...greedy], [0, 1, 0]);
 * ```
 */
export function tokenProbabilities(
  logits: ArrayLike<number>,
  options: DrawOptions = {},
): Float64Array {
  const temperature = options.temperature ?? 1;
  const topP = options.topP ?? 1;
  if (!(temperature >= 0)) {
    throw new RangeError(
      `temperature must be ≥ 0 (0: greedy), got ${temperature}`,
    );
  }
  if (!(topP > 0 && topP <= 1)) {
    throw new RangeError(`topP must be in (0, 1], got ${topP}`);
  }
  const v = logits.length;
  const p = new Float64Array(v);
  const banned = new Set(options.suppress ?? []);
  for (const id of banned) {
    if (!(Number.isInteger(id) && id >= 0 && id < v)) {
      // Else it was silently ignored.
      throw new RangeError(
        `suppress: id ${id} is not one of the ${v} logits' ids: expected an integer in [0, ${v})`,
      );
    }
  }
  let max = -Infinity;
  let first = -1;
  for (let j = 0; j < v; j++) {
    if (banned.has(j)) continue;
    const x = logits[j];
    if (x > max) {
      max = x;
      first = j;
    } else if (x !== x) {
      throw new RangeError(
        `Cannot draw a token: logit ${j} of ${v} is NaN`,
      );
    }
  }
  // Else the probabilities came back NaN (0/0 or ∞ − ∞), not summing to 1.
  if (first < 0 || max === Infinity) {
    throw new RangeError(
      max === Infinity
        ? `Cannot draw a token: logit ${first} of ${v} is Infinity`
        : `Cannot draw a token: every one of the ${v} logits is −Infinity or suppressed (suppress: [${[
          ...banned,
        ]}])`,
    );
  }
  if (temperature === 0) {
    // The limit of the softmax as the temperature falls to 0; the nucleus
    // keeps it whole.
    p[first] = 1;
    return p;
  }
  let z = 0;
  for (let j = 0; j < v; j++) {
    if (banned.has(j)) continue;
    p[j] = Math.exp((logits[j] - max) / temperature);
    z += p[j];
  }
  for (let j = 0; j < v; j++) p[j] /= z;
  if (topP < 1) {
    const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a]);
    let acc = 0;
    let k = 0;
    while (k < order.length && acc < topP) acc += p[order[k++]];
    for (let i = k; i < order.length; i++) p[order[i]] = 0;
    for (let j = 0; j < v; j++) p[j] /= acc;
  }
  return p;
}

/**
 * Draw an index from unnormalised non-negative weights, in float64.
 *
 * @param weights Non-negative weights, not all zero.
 * @param prng The randomness.
 * @returns An index `i` with probability `weights[i] / Σ weights`.
 *
 * @example
 * ```ts
 * import { prng, sampleCategorical } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(sampleCategorical([0, 0, 3], prng(1)), 2);
 * ```
 */
export function sampleCategorical(
  weights: ArrayLike<number>,
  prng: Prng,
): number {
  let total = 0;
  for (let i = 0; i < weights.length; i++) {
    if (!(weights[i] >= 0)) {
      // A negative weight lowered the total and shifted every interval.
      throw new RangeError(
        `Cannot sample: weights must be non-negative numbers, got ${
          weights[i]
        } at index ${i}`,
      );
    }
    total += weights[i];
  }
  if (!(total > 0) || !Number.isFinite(total)) {
    throw new RangeError(
      `Cannot sample: weights must be finite, non-negative and not all zero (sum ${total})`,
    );
  }
  let u = prng.next() * total;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] <= 0) continue;
    last = i;
    u -= weights[i];
    if (u < 0) return i;
  }
  return last; // rounding left u ≥ 0: the last positive weight
}
