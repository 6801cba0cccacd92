/**
 * A small, fast, seedable PRNG (xoshiro128**, seeded through splitmix32) whose
 * state can be saved and restored, so that every random thing in a run is
 * reproducible and resumable.
 *
 * @module
 */

/** Saved state of a {@linkcode Prng}: four unsigned 32-bit words. */
export type PrngState = [number, number, number, number];

/** A seeded source of randomness. */
export interface Prng {
  /** A uniform float64 in [0, 1) with 53 random bits. */
  next(): number;
  /** A uniform unsigned 32-bit integer. */
  nextUint32(): number;
  /** A uniform integer in [0, n), without modulo bias; `n` ≤ 2^32. */
  nextInt(n: number): number;
  /** A copy of the current state; {@linkcode restorePrng} continues from it. */
  state(): PrngState;
  /**
   * An independent stream named `label`, derived from this PRNG's current
   * state without advancing it: the same state and label always give the
   * same stream, and drawing from the fork never changes this one. Give each
   * consumer (a measurement, a data order) its own fork, so that turning
   * one off does not change another's numbers.
   */
  fork(label: string): Prng;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

class Xoshiro128 implements Prng {
  #s: Uint32Array;
  constructor(state: PrngState) {
    this.#s = Uint32Array.from(state);
    if (this.#s.every((w) => w === 0)) {
      throw new RangeError("Cannot restore PRNG: an all-zero state is invalid");
    }
  }
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) {
      throw new RangeError(
        `nextInt: n must be an integer in [1, 2^32], got ${n}`,
      );
    }
    // Rejection sampling removes the bias of a plain modulo.
    const limit = 2 ** 32 - (2 ** 32 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }
  state(): PrngState {
    return [this.#s[0], this.#s[1], this.#s[2], this.#s[3]];
  }
  fork(label: string): Prng {
    // Mix the label's FNV-1a hash into each state word through splitmix32:
    // distinct labels land on unrelated states.
    let h = 0x811c9dc5;
    for (const b of new TextEncoder().encode(label)) {
      h = Math.imul(h ^ b, 0x01000193) >>> 0;
    }
    const words = this.state().map((w, i) =>
      splitmix32((w ^ Math.imul(h, 2 * i + 1)) >>> 0)()
    );
    if (!words.some((w) => w !== 0)) words[0] = 1;
    return new Xoshiro128(words as PrngState);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * A PRNG seeded with an integer; the same seed gives the same sequence.
 *
 * @param seed Any safe integer, negative ones included (taken modulo 2^32:
 *   -1 gives 2^32 - 1's stream); a fraction, NaN, ±Infinity or an integer
 *   beyond ±(2^53 - 1) is refused with a `RangeError`.
 * @returns A fresh PRNG.
 *
 * @example
 * ```ts
 * import { prng } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const a = prng(42), b = prng(42);
 * assertEquals([a.next(), a.next()], [b.next(), b.next()]);
 * // A fork is a separate stream that leaves its parent untouched.
 * const eval1 = a.fork("eval").next();
 * assertEquals(a.next(), b.next());
 * assertEquals(a.fork("eval").next(), b.fork("eval").next());
 * assertEquals(eval1 === a.fork("eval").next(), false); // a moved on
 * ```
 */
export function prng(seed: number): Prng {
  // A fraction was truncated (1.5 gave 1's stream), and past 2^53 a number
  // stands for several integers: both are refused, not guessed at.
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(
      `Cannot seed PRNG: seed must be an integer in [-(2^53 - 1), 2^53 - 1] (taken modulo 2^32), got ${seed}`,
    );
  }
  const sm = splitmix32(seed);
  return new Xoshiro128([sm(), sm(), sm(), sm()]);
}

/**
 * A PRNG continuing from a saved state.
 *
 * @param state A state from {@linkcode Prng.state}.
 * @returns A PRNG that yields what the saved one would have yielded next.
 *
 * @example
 * ```ts
 * import { prng, restorePrng } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const a = prng(7);
 * a.next();
 * const b = restorePrng(a.state());
 * assertEquals(b.next(), a.next());
 * ```
 */
export function restorePrng(state: PrngState): Prng {
  if (
    !Array.isArray(state) || state.length !== 4 ||
    !state.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32)
  ) {
    throw new RangeError(
      `Cannot restore PRNG: state must be four unsigned 32-bit integers, got ${
        JSON.stringify(state)
      }`,
    );
  }
  return new Xoshiro128(state);
}

/**
 * A function of uniform floats in [0, 1) from a seeded {@linkcode prng}: for
 * test fixtures and generators that only need `() => number`.
 *
 * @param seed Any safe integer, as {@linkcode prng} takes.
 * @returns The draw function.
 *
 * @example
 * ```ts
 * import { prng, randomFloats } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(randomFloats(5)(), prng(5).next());
 * ```
 */
export function randomFloats(seed: number): () => number {
  const p = prng(seed);
  return () => p.next();
}
