// The χ² test of homogeneity of two samples of a categorical variable, and
// of counts against exact probabilities (the tail from the sampling tests' statistics).

import {
  chiSquareCritical,
  gammaQ,
  IMPOSSIBLE_MAX,
  llr,
  llrMoments as moments,
  noncentralTail,
  normalTail,
  Z_REJECT,
} from "../core/_test_stats.ts";

export { IMPOSSIBLE_MAX, Z_REJECT };

/** What {@linkcode homogeneity} found. */
export interface Homogeneity {
  chi2: number;
  df: number;
  p: number;
  /** Categories after pooling the rare ones. */
  categories: number;
}

/**
 * Whether two samples come from one categorical law: categories whose
 * pooled count is under `minExpected · 2` are merged into one, then Pearson's
 * χ² on the 2 × k table.
 */
export function homogeneity(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  minExpected = 5,
): Homogeneity {
  const count = (xs: ArrayLike<number>) => {
    const m = new Map<number, number>();
    for (let i = 0; i < xs.length; i++) m.set(xs[i], (m.get(xs[i]) ?? 0) + 1);
    return m;
  };
  const ca = count(a), cb = count(b);
  const na = a.length, nb = b.length, n = na + nb;
  const keys = [...new Set([...ca.keys(), ...cb.keys()])];
  const cells: [number, number][] = [];
  let rest: [number, number] = [0, 0];
  for (const k of keys) {
    const x = ca.get(k) ?? 0, y = cb.get(k) ?? 0;
    if (((x + y) * Math.min(na, nb)) / n >= minExpected) cells.push([x, y]);
    else rest = [rest[0] + x, rest[1] + y];
  }
  if (rest[0] + rest[1] > 0) cells.push(rest);
  let chi2 = 0;
  for (const [x, y] of cells) {
    const t = x + y;
    const ea = (t * na) / n, eb = (t * nb) / n;
    chi2 += (x - ea) ** 2 / ea + (y - eb) ** 2 / eb;
  }
  const df = Math.max(1, cells.length - 1);
  return { chi2, df, p: gammaQ(df / 2, chi2 / 2), categories: cells.length };
}

/** Pearson's χ² of counts against exact probabilities (cells under 5 expected merged). */
export function goodnessOfFit(
  xs: ArrayLike<number>,
  probs: readonly number[],
): Homogeneity {
  const n = xs.length;
  const counts = probs.map(() => 0);
  for (let i = 0; i < n; i++) counts[xs[i]]++;
  const cells: [number, number][] = [];
  let rest: [number, number] = [0, 0];
  probs.forEach((p, k) => {
    if (p * n >= 5) cells.push([counts[k], p * n]);
    else rest = [rest[0] + counts[k], rest[1] + p * n];
  });
  if (rest[1] > 0) cells.push(rest);
  let chi2 = 0;
  for (const [o, e] of cells) chi2 += (o - e) ** 2 / e;
  const df = Math.max(1, cells.length - 1);
  return { chi2, df, p: gammaQ(df / 2, chi2 / 2), categories: cells.length };
}

// ---- draws from known laws, against near misses ------------------------------

/** One drawn token and the law it was drawn from, with each near miss's law instead. */
export interface Draw {
  /** The id drawn. */
  x: number;
  /** Its draw probabilities (the sampler's, at the row it was drawn from). */
  p: Float64Array;
  /** Per near miss, the probabilities a wrong sampler would have drawn from. */
  q: Float64Array[];
}

/** What {@linkcode drawsTest} found, per near miss. */
export interface Towards {
  label: string;
  /** z of Σ log q/p over the draws (large: they look like the near miss). */
  z: number;
  /**
   * The test's power against the near miss at these draws' laws: the larger
   * of P(more than {@linkcode IMPOSSIBLE_MAX} draws of probability 0 under p)
   * (Poisson) and P(z > {@linkcode Z_REJECT}) (normal, exact moments).
   */
  power: number;
  /**
   * The z expected when the draws come from the near miss (its draws inside
   * p's support; 0 when log q/p is constant there, as for top-p off).
   */
  expected: number;
}

/**
 * Tokens drawn one by one from known laws (each from the law at the row it
 * was drawn from) against near misses: the count of draws of probability 0,
 * and per near miss q the likelihood ratio Σ log q(x)/p(x) standardised by
 * its exact mean and variance under p — the most powerful test against q.
 * Draws are conditionally independent given the rows they were drawn from,
 * so the sum's moments are the sums of the draws' moments.
 *
 * @param draws The draws.
 * @param labels The near misses, in the order of each draw's `q`.
 * @returns The impossible count, each z with its power, and why the draws
 * are rejected (null when they pass).
 */
export function drawsTest(
  draws: readonly Draw[],
  labels: readonly string[],
): { impossible: number; towards: Towards[]; rejected: string | null } {
  let impossible = 0;
  for (const d of draws) if (!(d.p[d.x] > 0)) impossible++;
  const towards = labels.map((label, m) => {
    let s = 0, mean0 = 0, var0 = 0, mean1 = 0, var1 = 0, outside = 0;
    for (const d of draws) {
      const q = d.q[m];
      const h0 = moments(d.p, q, d.p), h1 = moments(d.p, q, q);
      if (d.p[d.x] > 0) {
        s += llr(d.p[d.x], q[d.x]);
        mean0 += h0.mean;
        var0 += h0.variance;
      }
      mean1 += h1.mass * h1.mean;
      var1 += h1.mass * h1.variance;
      outside += 1 - h1.mass;
    }
    const z = (s - mean0) / Math.sqrt(var0);
    const byZeros = 1 -
      Math.exp(-outside) * (1 + outside + (outside * outside) / 2);
    const threshold = mean0 + Z_REJECT * Math.sqrt(var0);
    const byRatio = var1 > 0
      ? normalTail((threshold - mean1) / Math.sqrt(var1))
      : Number(mean1 > threshold);
    return {
      label,
      z,
      power: Math.max(byZeros, byRatio),
      expected: var0 > 1e-12 ? (mean1 - mean0) / Math.sqrt(var0) : 0,
    };
  });
  const worst = towards.reduce(
    (a, b) => (b.z > a.z ? b : a),
    { label: "", z: -Infinity, power: 0, expected: 0 },
  );
  const rejected = impossible > IMPOSSIBLE_MAX
    ? `${impossible} draws of probability 0`
    : worst.z > Z_REJECT
    ? `the draws look like "${worst.label}": z ${worst.z.toFixed(2)}`
    : null;
  return { impossible, towards, rejected };
}

/**
 * The power of {@linkcode goodnessOfFit} at level `alpha` with `n` draws
 * that really come from `q` instead of `probs` (noncentral χ², the same
 * merged cells).
 */
export function goodnessOfFitPower(
  probs: readonly number[],
  q: readonly number[],
  n: number,
  alpha: number,
): number {
  const cells: [number, number][] = [];
  let rest: [number, number] = [0, 0];
  probs.forEach((p, k) => {
    if (p * n >= 5) cells.push([p, q[k]]);
    else rest = [rest[0] + p, rest[1] + q[k]];
  });
  if (rest[0] > 0) cells.push(rest);
  let lambda = 0;
  for (const [p, qq] of cells) lambda += (n * (qq - p) ** 2) / p;
  const df = Math.max(1, cells.length - 1);
  return noncentralTail(df, lambda, chiSquareCritical(df, alpha));
}
