// The per-row ratio estimate shared by the bounds and the pseudo-likelihood.
import type { NllEstimate } from "@d3pm/core";

/** Σ sums / Σ counts, with the delta-method standard error of a ratio. */
export function ratioEstimate(
  sums: Float64Array,
  counts: Float64Array,
  what = "the bound",
): NllEstimate {
  const n = sums.length;
  const tokens = counts.reduce((s, x) => s + x, 0);
  if (tokens === 0) {
    throw new RangeError(
      `Cannot estimate ${what}: the batch has no tokens (all padding)`,
    );
  }
  const nats = sums.reduce((s, x) => s + x, 0) / tokens;
  const meanCount = tokens / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (sums[i] - nats * counts[i]) ** 2;
  const stderr = n > 1 ? Math.sqrt(v / (n - 1) / n) / meanCount : NaN;
  return { nats, stderr, tokens };
}
