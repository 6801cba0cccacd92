/**
 * Draws by mask count: the continuous-time bound of masked diffusion without
 * the heavy tail of its `1/t` weight.
 *
 * With masking probability `m = 1 − alpha(t)`, the bound's integral over `t`
 * is `∫ (1/m) E_m[Σ_masked CE] dm`. Conditioned on the number `k` of masked
 * tokens of a row of `L`, the masked set is a uniform `k`-subset, so the
 * integral is `Σ_k w_k E_k[Σ_masked CE]` with
 * `k · w_k = P(Bin(L, m_hi) ≥ k) − P(Bin(L, m_lo) ≥ k) =: q_k`, and
 * `Σ_k q_k = L (m_hi − m_lo)`. Drawing `k` with probability `q_k / Z`
 * (`Z = L (m_hi − m_lo)`) gives the unbiased row estimate
 * `Z / k · Σ_masked CE`: the mean cross-entropy of the masked tokens, scaled —
 * bounded by the worst token, where a time draw near 0 weighs a single token
 * by `1/t`. (This is the order-agnostic form of the bound of ARDM,
 * Hoogeboom et al. 2022.) For a time-conditioned model the time is drawn too,
 * from `m | k ~ Beta(k, L − k + 1)` restricted to `[m_lo, m_hi]`, so the
 * estimate stays unbiased for any denoiser.
 *
 * @module
 */
import type { Prng, TokenBatch } from "@d3pm/core";
import type { ContinuousSchedule } from "./schedule.ts";

/**
 * `q_k / Z` for `k = 1..length`: the law of the mask count that makes the
 * count estimator unbiased for masking probabilities in `[mLo, mHi]`.
 *
 * @param length Tokens in the row (`L ≥ 1`).
 * @param mLo Smallest masking probability (`1 − alpha(tMin)`).
 * @param mHi Largest masking probability (`1 − alpha(tMax)`), above `mLo`.
 * @returns Probabilities of `k = 1..L` (index `k − 1`), summing to 1.
 *
 * @example Over all rates, every count is equally likely
 * ```ts
 * import { maskCountLaw } from "@d3pm/diffusion";
 * import { assertAlmostEquals } from "@std/assert";
 * for (const p of maskCountLaw(8, 0, 1)) assertAlmostEquals(p, 1 / 8, 1e-12);
 * ```
 */
export function maskCountLaw(
  length: number,
  mLo: number,
  mHi: number,
): Float64Array {
  if (!Number.isInteger(length) || length < 1) {
    throw new RangeError(
      `maskCountLaw: length must be a positive integer, got ${length}`,
    );
  }
  if (!(mLo >= 0 && mLo < mHi && mHi <= 1)) {
    throw new RangeError(
      `maskCountLaw: need 0 ≤ mLo < mHi ≤ 1, got mLo ${mLo}, mHi ${mHi}`,
    );
  }
  const hi = binomialTails(length, mHi);
  const lo = binomialTails(length, mLo);
  const z = length * (mHi - mLo);
  const p = new Float64Array(length);
  for (let k = 1; k <= length; k++) {
    p[k - 1] = Math.max(0, hi[k] - lo[k]) / z;
  }
  return p;
}

/** `P(Bin(n, m) ≥ k)` for `k = 0..n` (index k). */
function binomialTails(n: number, m: number): Float64Array {
  const tails = new Float64Array(n + 2);
  if (m <= 0) {
    tails[0] = 1;
    return tails;
  }
  if (m >= 1) return tails.fill(1, 0, n + 1);
  const logM = Math.log(m), log1M = Math.log1p(-m);
  let logC = 0; // log C(n, k), built up k by k
  const pmf = new Float64Array(n + 1);
  for (let k = 0; k <= n; k++) {
    if (k > 0) logC += Math.log((n - k + 1) / k);
    pmf[k] = Math.exp(logC + k * logM + (n - k) * log1M);
  }
  for (let k = n; k >= 0; k--) tails[k] = tails[k + 1] + pmf[k];
  return tails;
}

/** Options of {@linkcode drawByCount}. */
export interface CountDrawOptions {
  /** The mask id. */
  maskId: number;
  /** Randomness of the counts, masks and times. */
  prng: Prng;
  /** Smallest time (default 0): the masking probability starts at `1 − alpha(tMin)`. */
  tMin?: number;
  /** Largest time (default 1). */
  tMax?: number;
  /** Low-discrepancy counts across the rows (default true). */
  antithetic?: boolean;
  /** Padding id: never masked, never counted. */
  padId?: number;
}

/** What {@linkcode drawByCount} draws, one entry per row. */
export interface CountDraws {
  /** A time per row, consistent with its count (for time-conditioned models). */
  t: Float64Array;
  /** Noised ids: exactly `k` of each row's non-padding tokens masked. */
  xt: Int32Array;
  /**
   * Weight of each masked token's cross-entropy, per row:
   * `Z / (k · (tMax − tMin))`, so that `Σ_rows weight · Σ_masked CE / tokens`
   * estimates the same as a time draw on `U[tMin, tMax]` with weight
   * `−alpha′(t) / (1 − alpha(t))` (over `[0, 1]`: the bound).
   */
  weight: Float64Array;
  /** The mask count of each row. */
  count: Int32Array;
}

/**
 * One mask count per row from {@linkcode maskCountLaw} (antithetic across
 * rows), a uniform subset of that many non-padding tokens masked, and a time
 * from the count's posterior; see the module notes.
 *
 * @param x0 Clean rows.
 * @param schedule The continuous schedule.
 * @param options Mask id, randomness, time range.
 * @returns Per-row times, weights and counts, and the noised ids.
 *
 * @example A row of 16 with 5 masked, weighted 16 · (1 − 0.001) / 5
 * ```ts
 * import { prng } from "@d3pm/core";
 * import { drawByCount, logLinear } from "@d3pm/diffusion";
 * import { assertAlmostEquals, assertEquals } from "@std/assert";
 * const x0 = { tokens: new Int32Array(4 * 16).fill(1), batchSize: 4, length: 16 };
 * const d = drawByCount(x0, logLinear(), { maskId: 9, prng: prng(3) });
 * for (let r = 0; r < 4; r++) {
 *   const row = d.xt.subarray(r * 16, (r + 1) * 16);
 *   assertEquals(row.filter((x) => x === 9).length, d.count[r]);
 *   assertAlmostEquals(d.weight[r], 16 * (1 - 1e-3) / d.count[r], 1e-9);
 * }
 * ```
 */
export function drawByCount(
  x0: TokenBatch,
  schedule: ContinuousSchedule,
  options: CountDrawOptions,
): CountDraws {
  const { maskId, prng, padId } = options;
  const tMin = options.tMin ?? 0, tMax = options.tMax ?? 1;
  if (!(tMin >= 0 && tMin < tMax && tMax <= 1)) {
    throw new RangeError(
      `drawByCount: need 0 ≤ tMin < tMax ≤ 1, got tMin ${tMin}, tMax ${tMax}`,
    );
  }
  const mLo = 1 - schedule.alpha(tMin), mHi = 1 - schedule.alpha(tMax);
  const { batchSize: b, length: l, tokens } = x0;
  const t = new Float64Array(b), weight = new Float64Array(b);
  const count = new Int32Array(b);
  const xt = Int32Array.from(tokens);
  const laws = new Map<number, Float64Array>(); // cumulative, by row length
  const u0 = prng.next();
  const antithetic = options.antithetic ?? true;
  for (let r = 0; r < b; r++) {
    const positions: number[] = [];
    for (let i = r * l; i < (r + 1) * l; i++) {
      if (padId === undefined || tokens[i] !== padId) positions.push(i);
    }
    const n = positions.length;
    if (n === 0) {
      t[r] = tMax;
      continue;
    }
    let cdf = laws.get(n);
    if (!cdf) {
      cdf = maskCountLaw(n, mLo, mHi);
      for (let k = 1; k < n; k++) cdf[k] += cdf[k - 1];
      cdf[n - 1] = 1;
      laws.set(n, cdf);
    }
    const u = antithetic ? (u0 + r / b) % 1 : (r === 0 ? u0 : prng.next());
    let lo = 0, hi = n - 1; // the first k with cdf > u (u in [0, 1))
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    const k = lo + 1;
    count[r] = k;
    weight[r] = (n * (mHi - mLo)) / (k * (tMax - tMin));
    // A uniform k-subset: a partial Fisher–Yates shuffle.
    for (let j = 0; j < k; j++) {
      const pick = j + Math.floor(prng.next() * (n - j));
      [positions[j], positions[pick]] = [positions[pick], positions[j]];
      xt[positions[j]] = maskId;
    }
    t[r] = timeOf(betaIn(k, n, mLo, mHi, prng), schedule, tMin, tMax);
  }
  return { t, xt, weight, count };
}

/** `m ~ Beta(k, n − k + 1)` (the k-th of n uniforms) restricted to [lo, hi]. */
function betaIn(
  k: number,
  n: number,
  lo: number,
  hi: number,
  prng: Prng,
): number {
  // About 1/(hi − lo) attempts on average over k (see the module notes).
  for (let attempt = 0; attempt < 1_000_000; attempt++) {
    let below = 0, total = 0;
    for (let i = 0; i <= n; i++) {
      const e = -Math.log(1 - prng.next()); // Exp(1): spacings of uniforms
      total += e;
      if (i < k) below += e;
    }
    const m = below / total;
    if (m >= lo && m <= hi) return m;
  }
  throw new RangeError(
    `drawByCount: masking rates [${lo}, ${hi}] are too narrow to draw a time for ${k} of ${n} masked; widen the time range or draw times instead of counts`,
  );
}

/** The time whose masking probability `1 − alpha(t)` is `m`, by bisection. */
function timeOf(
  m: number,
  schedule: ContinuousSchedule,
  tMin: number,
  tMax: number,
): number {
  let lo = tMin, hi = tMax;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (1 - schedule.alpha(mid) < m) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}
