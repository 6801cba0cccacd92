/**
 * The masked denoiser as an any-order autoregressive model: the likelihood
 * of a row under one generation order (tokens revealed one at a time), and,
 * over uniformly random orders, the continuous-time ELBO (their mean) beside
 * the tighter importance-weighted bound (the log of their mean likelihood).
 *
 * @module
 */
import {
  isTermScorer,
  type LanguageModel,
  type Prng,
  type TermScorer,
  type TokenBatch,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { subsCrossEntropy } from "./loss.ts";

/** Options of {@linkcode orderNlls}. */
export interface OrderOptions {
  /** The mask id (the absorbing state). */
  maskId: number;
  /** Orders drawn per row, at least 1. */
  orders: number;
  /** Randomness of the orders. */
  prng: Prng;
  /** Padding id: never masked nor scored (context, as in the bounds). */
  padId?: number;
  /** Called after each row's orders with the rows done. */
  onRow?: (done: number, total: number) => void;
}

/** What {@linkcode orderNlls} measures. */
export interface OrderNlls {
  /** `nll[r * orders + k]`: −log p(x_r | σ_rk) in nats, for row r's k-th order. */
  nll: Float64Array;
  /** Orders per row. */
  orders: number;
  /** Scored tokens per row (its non-padding positions). */
  counts: Float64Array;
}

/**
 * For each row and each of `orders` uniformly random orders σ of its
 * non-padding positions, −log p(x | σ) = −Σ_j log p(x_σ(j) | x_σ(<j)): the
 * denoiser reveals one token at a time, the others masked (SUBS: the mask's
 * logit left out). One forward pass per scored token. The denoiser must not
 * read `t` (MDLM's absorbing case): a time-conditioned one is refused, as its
 * bound needs `t` drawn given the mask count, which no single `t` per pass
 * gives.
 *
 * Over uniform orders the mean of these is the absorbing process's
 * continuous-time ELBO (MDLM), for any schedule; the mixture `E_σ p(x | σ)`
 * is the likelihood of the model that generates one token at a time in a
 * uniform order: {@linkcode orderBounds} turns them into both bounds.
 *
 * @param model The denoiser.
 * @param x0 Clean rows.
 * @param options Mask id, orders per row, PRNG.
 * @returns −log p(x | σ) per row and order.
 * @throws {RangeError} When `orders` is not a positive integer, or the model
 *   reads `t`.
 *
 * @example A denoiser that knows nothing costs ln(V − 1) per token in every order
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { type LanguageModel, prng, type Tensor2D, type Tensor3D } from "@d3pm/core";
 * import { orderBounds, orderNlls } from "@d3pm/diffusion";
 * import { assertAlmostEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const uniform: LanguageModel = { // 5 ids, 4 the mask
 *   config: { kind: "bidirectional", vocabSize: 5, contextLength: 6 },
 *   timeConditioned: false,
 *   forward: (x: Tensor2D) => tf.zeros([...x.shape, 5]) as Tensor3D,
 *   dispose() {},
 * };
 * const x0 = { tokens: Int32Array.of(0, 1, 2, 3, 0, 1), batchSize: 1, length: 6 };
 * const m = await orderNlls(uniform, x0, { maskId: 4, orders: 3, prng: prng(0) });
 * for (const nll of m.nll) assertAlmostEquals(nll, 6 * Math.log(4), 1e-4);
 * const b = orderBounds(m);
 * assertAlmostEquals(b.elbo.nats, Math.log(4), 1e-5);
 * assertAlmostEquals(b.importance.nats, Math.log(4), 1e-5); // no spread: no gain
 * ```
 */
export async function orderNlls(
  model: LanguageModel | TermScorer,
  x0: TokenBatch,
  options: OrderOptions,
): Promise<OrderNlls> {
  const { maskId, orders, prng, padId } = options;
  if (!Number.isInteger(orders) || orders < 1) {
    throw new RangeError(
      `orderNlls: orders must be a positive integer, got ${orders}`,
    );
  }
  if (model.timeConditioned) {
    throw new RangeError(
      "orderNlls: the denoiser reads t; orders bound only a denoiser built with timeConditioning false",
    );
  }
  const { batchSize: rows, length: l, tokens } = x0;
  const nll = new Float64Array(rows * orders);
  const counts = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const x = tokens.subarray(r * l, (r + 1) * l);
    const positions: number[] = [];
    for (let i = 0; i < l; i++) if (x[i] !== padId) positions.push(i);
    const n = positions.length;
    counts[r] = n;
    if (n === 0) {
      options.onRow?.(r + 1, rows);
      continue;
    }
    for (let k = 0; k < orders; k++) {
      const sigma = positions.slice();
      for (let i = n - 1; i > 0; i--) { // Fisher–Yates: a uniform order
        const j = prng.nextInt(i + 1);
        [sigma[i], sigma[j]] = [sigma[j], sigma[i]];
      }
      // Pass j: σ(0..j−1) revealed, σ(j..n−1) masked, σ(j) scored.
      const inputs = new Int32Array(n * l);
      const targets = new Int32Array(n * l).fill(-1);
      const weights = new Float32Array(n * l);
      for (let j = 0; j < n; j++) {
        const row = inputs.subarray(j * l, (j + 1) * l);
        row.set(x);
        for (let q = j; q < n; q++) row[sigma[q]] = maskId;
        targets[j * l + sigma[j]] = x[sigma[j]];
        weights[j * l + sigma[j]] = 1;
      }
      const sums = await rowSums(model, {
        rows: n,
        length: l,
        inputs,
        targets,
        weights,
        excludeToken: maskId,
      });
      nll[r * orders + k] = sums.reduce((a, s) => a + s, 0);
    }
    options.onRow?.(r + 1, rows);
  }
  return { nll, orders, counts };
}

/** The bounds {@linkcode orderBounds} gives, in nats per token. */
export interface OrderBounds {
  /**
   * The mean over orders: an unbiased estimate of the continuous-time ELBO
   * (as an NLL, an upper bound); `stderr` across rows (of each row's mean).
   */
  elbo: { nats: number; stderr: number; tokens: number };
  /**
   * −log of the mean likelihood over each row's orders (importance weighting
   * with the uniform order as proposal): a stochastic upper bound on the NLL
   * of the one-token-at-a-time model, never above `elbo` row by row, and
   * tighter as `orders` grows. `stderr` across rows.
   */
  importance: { nats: number; stderr: number; tokens: number };
  /**
   * `elbo − importance` (≥ 0), with its paired standard error across rows:
   * both bounds come from the same orders, so their difference is far
   * steadier than either.
   */
  gain: { nats: number; stderr: number; tokens: number };
  /** Mean over rows of the standard deviation of −log p(x | σ) across orders, in nats per row. */
  orderSpread: number;
  /**
   * The gain infinitely many orders would give were −log p(x | σ) normal
   * across orders: half of each row's variance, in nats per token (NaN with
   * one order).
   */
  normalLimitGain: number;
}

/**
 * The ELBO and the importance-weighted bound from {@linkcode orderNlls}.
 *
 * @param m Per-order NLLs.
 * @returns Both bounds in nats per token, and the spread across orders.
 * @throws {RangeError} When no row has a token, or `nll` does not hold
 *   `orders` values per row.
 *
 * @example Two orders at 2 and 4 nats over 2 tokens
 * ```ts
 * import { orderBounds } from "@d3pm/diffusion";
 * import { assertAlmostEquals } from "@std/assert";
 * const b = orderBounds({ nll: Float64Array.of(2, 4), orders: 2, counts: Float64Array.of(2) });
 * assertAlmostEquals(b.elbo.nats, 1.5); // (2 + 4) / 2 / 2
 * const lme = -Math.log((Math.exp(-2) + Math.exp(-4)) / 2);
 * assertAlmostEquals(b.importance.nats, lme / 2);
 * ```
 */
export function orderBounds(m: OrderNlls): OrderBounds {
  const { nll, orders: k, counts } = m;
  const rows = counts.length;
  if (!Number.isInteger(k) || k < 1 || nll.length !== rows * k) {
    throw new RangeError(
      `orderBounds: nll holds ${nll.length} values for ${rows} rows × ${k} orders`,
    );
  }
  const tokens = counts.reduce((a, c) => a + c, 0);
  if (tokens === 0) {
    throw new RangeError("orderBounds: no row has a token (all padding)");
  }
  const mean = new Float64Array(rows), iw = new Float64Array(rows);
  let spread = 0, halfVariance = 0, scored = 0;
  for (let r = 0; r < rows; r++) {
    if (counts[r] === 0) continue;
    const v = nll.subarray(r * k, (r + 1) * k);
    mean[r] = v.reduce((a, x) => a + x, 0) / k;
    const low = Math.min(...v); // log-mean-exp of −v, shifted
    iw[r] = low - Math.log(v.reduce((a, x) => a + Math.exp(low - x), 0) / k);
    if (k > 1) {
      const variance = v.reduce((a, x) => a + (x - mean[r]) ** 2, 0) / (k - 1);
      spread += Math.sqrt(variance);
      halfVariance += variance / 2;
      scored++;
    }
  }
  const estimate = (sums: Float64Array) => {
    const nats = sums.reduce((a, x) => a + x, 0) / tokens;
    let v = 0;
    for (let r = 0; r < rows; r++) v += (sums[r] - nats * counts[r]) ** 2;
    const stderr = rows > 1
      ? Math.sqrt(v / (rows - 1) / rows) / (tokens / rows)
      : NaN;
    return { nats, stderr, tokens };
  };
  return {
    elbo: estimate(mean),
    importance: estimate(iw),
    gain: estimate(mean.map((x, r) => x - iw[r])),
    orderSpread: scored > 0 ? spread / scored : NaN,
    normalLimitGain: scored > 0 ? halfVariance / tokens : NaN,
  };
}

/** Per-row sums of weighted SUBS cross-entropy, on either kind of model. */
async function rowSums(
  model: LanguageModel | TermScorer,
  b: {
    rows: number;
    length: number;
    inputs: Int32Array;
    targets: Int32Array;
    weights: Float32Array;
    excludeToken: number;
  },
): Promise<Float64Array> {
  if (isTermScorer(model)) return (await model.rowLosses([b]))[0];
  // The targets where scored; elsewhere any id but the mask, whose cross-
  // entropy (weight 0) must stay finite.
  const other = b.excludeToken === 0 ? 1 : 0;
  const x0 = b.targets.map((y) => (y < 0 ? other : y));
  const per = tf.tidy(() => {
    const logits = model.forward(
      tf.tensor2d(b.inputs, [b.rows, b.length], "int32"),
      { training: false },
    );
    return subsCrossEntropy(logits, x0, b.inputs, b.excludeToken)
      .mul(tf.tensor2d(b.weights, [b.rows, b.length])).sum(1);
  });
  const out = Float64Array.from(await per.data());
  per.dispose();
  return out;
}
