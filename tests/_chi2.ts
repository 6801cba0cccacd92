// The χ² test of homogeneity of two samples of a categorical variable, and
// of counts against exact probabilities (the tail from the sampling tests' statistics).

import { gammaQ } from "../webgpu/_test_stats.ts";

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
