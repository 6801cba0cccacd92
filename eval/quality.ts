/**
 * Sample quality: generative perplexity under a judge model, always with the
 * samples' entropy (low-entropy, repetitive text fools generative
 * perplexity).
 *
 * @module
 */
import type { NllEstimate, TokenBatch } from "@d3pm/core";
import { overBlocks } from "./nll.ts";
import { checkNonNegative, checkPositive } from "./_check.ts";

/**
 * Mean over samples of the entropy (nats) of each sample's token histogram,
 * as MDLM reports it.
 *
 * @param tokens `count × length` ids.
 * @param length Ids per sample.
 * @returns Mean entropy in nats.
 * @throws {RangeError} Unless `tokens` is one or more whole rows of `length`
 *   (a positive integer).
 *
 * @example
 * ```ts
 * import { sampleEntropy } from "@d3pm/eval";
 * import { assertAlmostEquals } from "@std/assert";
 * assertAlmostEquals(sampleEntropy(Int32Array.of(1, 2, 1, 2, 7, 7, 7, 7), 4), Math.LN2 / 2, 1e-12);
 * ```
 */
export function sampleEntropy(tokens: Int32Array, length: number): number {
  if (
    !Number.isInteger(length) || length < 1 || tokens.length === 0 ||
    tokens.length % length
  ) {
    throw new RangeError(
      `sampleEntropy: ${tokens.length} ids are not one or more rows of length ${length} (a positive integer)`,
    );
  }
  const n = tokens.length / length;
  let total = 0;
  for (let s = 0; s < n; s++) {
    const counts = new Map<number, number>();
    for (let i = s * length; i < (s + 1) * length; i++) {
      counts.set(tokens[i], (counts.get(tokens[i]) ?? 0) + 1);
    }
    for (const c of counts.values()) {
      total -= (c / length) * Math.log(c / length);
    }
  }
  return total / n;
}

/**
 * Generative perplexity: `e^NLL` of samples under a judge — a scorer of
 * token batches, normally a causal model that is not under test, e.g.
 * `(x0) => autoregressive(spec).score(judge, x0)`.
 *
 * @param tokens `count × length` ids.
 * @param length Ids per sample.
 * @param judge Scores a batch of samples.
 * @returns Generative perplexity and the judge's NLL in nats per token.
 *
 * @example
 * ```ts
 * import { generativePerplexity } from "@d3pm/eval";
 * import { assertAlmostEquals } from "@std/assert";
 * // A judge that finds every token worth ln 50 nats.
 * const judge = (x0: { batchSize: number; length: number }) =>
 *   Promise.resolve({ nats: Math.log(50), stderr: 0, tokens: x0.batchSize * (x0.length - 1) });
 * const g = await generativePerplexity(new Int32Array(12), 4, judge);
 * assertAlmostEquals(g.genPpl, 50, 1e-9);
 * ```
 */
export async function generativePerplexity(
  tokens: Int32Array,
  length: number,
  judge: (x0: TokenBatch) => Promise<NllEstimate>,
): Promise<{ genPpl: number; nll: number }> {
  if (!Number.isInteger(length) || length < 2 || tokens.length % length) {
    throw new RangeError(
      `generativePerplexity: ${tokens.length} ids are not rows of length ${length} (≥ 2)`,
    );
  }
  const blocks = {
    data: Uint32Array.from(tokens),
    count: tokens.length / length,
    length,
  };
  const { nats } = await overBlocks(blocks, judge);
  return { genPpl: Math.exp(nats), nll: nats };
}

/** Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom. */
const T975 = [
  12.706,
  4.303,
  3.182,
  2.776,
  2.571,
  2.447,
  2.365,
  2.306,
  2.262,
  2.228,
  2.201,
  2.179,
  2.16,
  2.145,
  2.131,
  2.12,
  2.11,
  2.101,
  2.093,
  2.086,
  2.08,
  2.074,
  2.069,
  2.064,
  2.06,
  2.056,
  2.052,
  2.048,
  2.045,
  2.042,
];

/**
 * The 0.975 quantile of Student's t with `df` degrees of freedom: a table to
 * 30, then the Cornish–Fisher expansion (within 1e-4 of the exact value).
 *
 * @param df Degrees of freedom, ≥ 1.
 * @returns The quantile (1.96 as `df` grows).
 *
 * @example
 * ```ts
 * import { studentT975 } from "@d3pm/eval";
 * import { assertAlmostEquals } from "@std/assert";
 * assertAlmostEquals(studentT975(60), 2.0003, 1e-3);
 * ```
 */
export function studentT975(df: number): number {
  if (!Number.isInteger(df) || df < 1) {
    throw new RangeError(
      `studentT975: degrees of freedom must be an integer ≥ 1, got ${df}`,
    );
  }
  if (df <= T975.length) return T975[df - 1];
  const z = 1.959963984540054;
  const z3 = z ** 3, z5 = z ** 5, z7 = z ** 7;
  return z + (z3 + z) / 4 / df + (5 * z5 + 16 * z3 + 3 * z) / 96 / df ** 2 +
    (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384 / df ** 3;
}

/** Generative perplexity of many samples with its 95% interval. */
export interface PerplexityInterval {
  /** `e^nll`: the corpus-level perplexity of the samples. */
  genPpl: number;
  /** The token-weighted mean NLL of the samples, nats per token. */
  nll: number;
  /** Its standard error (delta method over samples), nats. */
  stderr: number;
  /** Lower end of the 95% interval of the perplexity. */
  low: number;
  /** Upper end. */
  high: number;
  /** Samples it rests on. */
  samples: number;
}

/**
 * The 95% interval of the corpus-level perplexity `e^(Σ nᵢ·ℓᵢ / Σ nᵢ)` of
 * samples whose judge NLLs are `ℓᵢ` nats per token over `nᵢ` tokens: the
 * samples are independent draws, so the ratio mean NLL has the delta-method
 * standard error `√(Σ nᵢ²(ℓᵢ − ℓ̄)² / (m(m−1))) / n̄`, and the interval
 * `ℓ̄ ± t₀.₉₇₅,ₘ₋₁ · se` (Student's t) is mapped through `exp` (monotone, so
 * its coverage is kept; the interval is asymmetric about the PPL). With
 * equal token counts this is the t-interval of the mean per-sample NLL,
 * in closed form.
 *
 * @param nlls Each sample's NLL, nats per token.
 * @param tokens Each sample's scored tokens (default: the same for all).
 * @returns PPL, mean NLL, its standard error and the interval.
 * @throws {RangeError} With fewer than 2 samples, mismatched lengths, an
 *   NLL that is not a finite number ≥ 0 or a token count that is not > 0.
 *
 * @example
 * ```ts
 * import { perplexityInterval } from "@d3pm/eval";
 * import { assert, assertAlmostEquals } from "@std/assert";
 * const r = perplexityInterval([4, 5, 6, 5]);
 * assertAlmostEquals(r.genPpl, Math.exp(5), 1e-9);
 * assert(r.low < r.genPpl && r.genPpl < r.high);
 * ```
 */
export function perplexityInterval(
  nlls: ArrayLike<number>,
  tokens?: ArrayLike<number>,
): PerplexityInterval {
  const m = nlls.length;
  if (m < 2) {
    throw new RangeError(
      `perplexityInterval: ${m} sample(s); an interval needs at least 2`,
    );
  }
  if (tokens !== undefined && tokens.length !== m) {
    throw new RangeError(
      `perplexityInterval: ${m} NLLs but ${tokens.length} token counts; give one count per sample`,
    );
  }
  for (let i = 0; i < m; i++) {
    checkNonNegative(nlls[i], `perplexityInterval: sample ${i}'s NLL`);
    if (tokens !== undefined) {
      checkPositive(tokens[i], `perplexityInterval: sample ${i}'s tokens`);
    }
  }
  const w = (i: number) => tokens === undefined ? 1 : tokens[i];
  let total = 0, weighted = 0;
  for (let i = 0; i < m; i++) {
    total += w(i);
    weighted += w(i) * nlls[i];
  }
  const nll = weighted / total;
  const meanTokens = total / m;
  let ss = 0;
  for (let i = 0; i < m; i++) ss += (w(i) * (nlls[i] - nll)) ** 2;
  const stderr = Math.sqrt(ss / (m * (m - 1))) / meanTokens;
  const half = studentT975(m - 1) * stderr;
  return {
    genPpl: Math.exp(nll),
    nll,
    stderr,
    low: Math.exp(nll - half),
    high: Math.exp(nll + half),
    samples: m,
  };
}

/**
 * Each sample's judge NLL: the judge is called on one row at a time.
 *
 * @param tokens `count × length` ids.
 * @param length Ids per sample.
 * @param judge Scores a batch of samples.
 * @returns Each row's NLL (nats per token) and its scored tokens.
 *
 * @example
 * ```ts
 * import { perSampleNll } from "@d3pm/eval";
 * import { assertEquals } from "@std/assert";
 * const judge = (x0: { tokens: Int32Array; length: number }) =>
 *   Promise.resolve({ nats: x0.tokens[0], stderr: 0, tokens: x0.length - 1 });
 * const r = await perSampleNll(Int32Array.of(1, 0, 2, 0), 2, judge);
 * assertEquals([...r.nlls], [1, 2]);
 * ```
 */
export async function perSampleNll(
  tokens: Int32Array,
  length: number,
  judge: (x0: TokenBatch) => Promise<NllEstimate>,
): Promise<{ nlls: Float64Array; tokens: Float64Array }> {
  if (!Number.isInteger(length) || length < 2 || tokens.length % length) {
    throw new RangeError(
      `perSampleNll: ${tokens.length} ids are not rows of length ${length} (≥ 2)`,
    );
  }
  const rows = tokens.length / length;
  const nlls = new Float64Array(rows);
  const counts = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const est = await judge({
      tokens: tokens.slice(r * length, (r + 1) * length),
      batchSize: 1,
      length,
    });
    nlls[r] = est.nats;
    counts[r] = est.tokens;
  }
  return { nlls, tokens: counts };
}

function unigramCounts(
  ids: ArrayLike<number>,
  ignore: ReadonlySet<number>,
): { counts: Map<number, number>; total: number } {
  const counts = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (ignore.has(id)) continue;
    if (!(Number.isInteger(id) && id >= 0)) {
      throw new RangeError(
        `unigramJsd: id ${id} at index ${i} is not a token id: expected an integer ≥ 0`,
      );
    }
    counts.set(id, (counts.get(id) ?? 0) + 1);
    total++;
  }
  return { counts, total };
}

/**
 * Jensen–Shannon divergence, in bits (0 to 1), between the token unigram
 * frequencies of `samples` and of `reference` (e.g. the test split):
 * `½ KL(p‖m) + ½ KL(q‖m)` with `m = (p + q)/2`. The plug-in estimate is
 * biased upward on few tokens: compare it with a same-size sample of real
 * text (its floor).
 *
 * @param samples Ids of generated text.
 * @param reference Ids of real text.
 * @param ignore Ids left out of both (padding, special tokens).
 * @returns The divergence in bits.
 * @throws {RangeError} When either side has no counted id, or holds an id
 *   that is not an integer ≥ 0.
 *
 * @example
 * ```ts
 * import { unigramJsd } from "@d3pm/eval";
 * import { assertAlmostEquals } from "@std/assert";
 * assertAlmostEquals(unigramJsd([1, 1], [2, 2]), 1, 1e-12); // disjoint
 * assertAlmostEquals(unigramJsd([1, 2], [2, 1, 1, 2]), 0, 1e-12);
 * ```
 */
export function unigramJsd(
  samples: ArrayLike<number>,
  reference: ArrayLike<number>,
  ignore: ReadonlySet<number> = new Set(),
): number {
  const p = unigramCounts(samples, ignore);
  const q = unigramCounts(reference, ignore);
  if (p.total === 0 || q.total === 0) {
    throw new RangeError(
      `unigramJsd: ${
        p.total === 0 ? "the samples" : "the reference"
      } hold no counted id (${ignore.size} ignored)`,
    );
  }
  let jsd = 0;
  const term = (a: number, mid: number) => a > 0 ? a * Math.log2(a / mid) : 0;
  for (const id of new Set([...p.counts.keys(), ...q.counts.keys()])) {
    const a = (p.counts.get(id) ?? 0) / p.total;
    const b = (q.counts.get(id) ?? 0) / q.total;
    const mid = (a + b) / 2;
    jsd += (term(a, mid) + term(b, mid)) / 2;
  }
  return Math.max(0, jsd);
}
