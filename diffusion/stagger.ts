/**
 * Staggered masking: a position-dependent forward process. Each position
 * follows the schedule on its own clock, a window of the shared time `t`;
 * within each span of `span` positions the windows are staggered so that
 * the right-hand positions are masked first and the left-hand ones last —
 * generation then reveals a span left to right more often than not. `delta`
 * 0 is MDLM's process (one clock for every position); as `delta` nears 1 the
 * windows stop overlapping and the order within a span becomes strictly
 * left to right. Each position's masks stay independent given `t`, so the
 * continuous-time bound is still an ELBO: a position's term is weighted by
 * its own clock's rate.
 *
 * @module
 */

/** Staggered masking within spans of positions (see the module). */
export interface Stagger {
  /** Positions per span; a row's length must be a multiple of it. */
  span: number;
  /**
   * How far the windows are staggered, in [0, 1): position `j` of a span
   * (of `n`) runs its clock on `[a_j, a_j + 1 − delta]` with
   * `a_j = delta · (n − 1 − j)/(n − 1)`; 0 is no stagger.
   */
  delta: number;
}

/** A position's clock at a shared time. */
export interface StaggeredTime {
  /** The position's own time in [0, 1]: its masking probability is `1 − alpha(tau)`. */
  tau: number;
  /** `d tau / d t` (0 outside its window). */
  rate: number;
}

/**
 * Check a stagger: one line naming what is wrong.
 *
 * @param stagger The stagger.
 * @param length A row's length, when known (a multiple of the span).
 * @throws {RangeError} When the span is not a positive integer (dividing
 *   `length`), or `delta` is outside [0, 1).
 *
 * @example
 * ```ts
 * import { checkStagger } from "@d3pm/diffusion";
 * import { assertThrows } from "@std/assert";
 * checkStagger({ span: 4, delta: 0.5 }, 128);
 * assertThrows(() => checkStagger({ span: 4, delta: 0.5 }, 6), RangeError, "stagger.span 4 must divide the row length 6");
 * ```
 */
export function checkStagger(stagger: Stagger, length?: number): void {
  if (typeof stagger !== "object" || stagger === null) {
    throw new RangeError("stagger must be an object { span, delta }");
  }
  const { span, delta } = stagger;
  if (!Number.isInteger(span) || span < 1) {
    throw new RangeError(
      `stagger.span must be an integer ≥ 1, got ${JSON.stringify(span)}`,
    );
  }
  if (!(typeof delta === "number" && delta >= 0 && delta < 1)) {
    throw new RangeError(
      `stagger.delta must be a number in [0, 1), got ${JSON.stringify(delta)}`,
    );
  }
  if (length !== undefined && length % span !== 0) {
    throw new RangeError(
      `stagger.span ${span} must divide the row length ${length}`,
    );
  }
}

/**
 * The clock of the position at `index` of a row (its span position is
 * `index mod span`) at the shared time `t`.
 *
 * @param stagger The stagger.
 * @param index The position in its row.
 * @param t The shared time in [0, 1].
 * @returns Its time and rate.
 *
 * @example The last position of a span is masked first, the first last
 * ```ts
 * import { staggeredTime } from "@d3pm/diffusion";
 * import { assertEquals } from "@std/assert";
 * const s = { span: 3, delta: 0.5 }; // windows [0.5, 1], [0.25, 0.75], [0, 0.5]
 * assertEquals(staggeredTime(s, 0, 0.4), { tau: 0, rate: 0 }); // not started
 * assertEquals(staggeredTime(s, 0, 0.75), { tau: 0.5, rate: 2 });
 * assertEquals(staggeredTime(s, 1, 0.5), { tau: 0.5, rate: 2 });
 * assertEquals(staggeredTime(s, 2, 0.5), { tau: 1, rate: 0 });
 * assertEquals(staggeredTime(s, 5, 0.25), { tau: 0.5, rate: 2 }); // the next span
 * assertEquals(staggeredTime({ span: 3, delta: 0 }, 2, 0.3), { tau: 0.3, rate: 1 }); // MDLM
 * ```
 */
export function staggeredTime(
  stagger: Stagger,
  index: number,
  t: number,
): StaggeredTime {
  const { span, delta } = stagger;
  if (delta === 0 || span === 1) return { tau: t, rate: 1 };
  const j = index % span;
  const start = (delta * (span - 1 - j)) / (span - 1);
  const width = 1 - delta;
  const u = (t - start) / width;
  // Outside its window (its ends included: a null set) the clock stands.
  if (u <= 0) return { tau: 0, rate: 0 };
  if (u >= 1) return { tau: 1, rate: 0 };
  return { tau: u, rate: 1 / width };
}
