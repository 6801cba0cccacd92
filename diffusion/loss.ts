/**
 * Training objectives: MDLM's continuous-time SUBS objective and D3PM's
 * discrete-time variational bound with the hybrid cross-entropy term.
 *
 * Both sample the time and the noised tokens on the JavaScript side from the
 * given PRNG (so a seed fixes them), run the model once, and return a scalar
 * tensor: the average over non-padding tokens, in nats per token.
 *
 * @module
 */
import type {
  LanguageModel,
  Prng,
  Scalar,
  Tensor,
  Tensor2D,
  Tensor3D,
  TokenBatch,
  WeightedTokens,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { checkBatch } from "./_batch.ts";
import { sparseSoftmaxCrossEntropy } from "@d3pm/backend/fused-ops";
import type { ContinuousSchedule, DiscreteSchedule } from "./schedule.ts";
import type { Transition } from "./transition.ts";
import { drawByCount } from "./counts.ts";
import { checkStagger, type Stagger } from "./stagger.ts";
import { tokenClock } from "./_clock.ts";

/**
 * 1 for tokens that count, 0 for padding.
 *
 * @param x0 The clean batch.
 * @param padId The padding id; without it every token counts.
 * @returns One weight per token, row-major like `x0.tokens`.
 *
 * @example
 * ```ts
 * import { tokenWeights } from "@d3pm/diffusion";
 * import { assertEquals } from "@std/assert";
 * const x0 = { tokens: Int32Array.of(7, 8, 9, 0, 7, 0), batchSize: 2, length: 3 };
 * assertEquals(Array.from(tokenWeights(x0, 0)), [1, 1, 1, 0, 1, 0]);
 * assertEquals(Array.from(tokenWeights(x0)), [1, 1, 1, 1, 1, 1]);
 * ```
 */
export function tokenWeights(x0: TokenBatch, padId?: number): Float32Array {
  const w = new Float32Array(x0.tokens.length).fill(1);
  if (padId !== undefined) {
    for (let i = 0; i < w.length; i++) if (x0.tokens[i] === padId) w[i] = 0;
  }
  return w;
}

/**
 * Per-token `−log p̃(x_0 | x_t)` under the SUBS parameterisation: the mask
 * logit is set to −∞ (the clean token is never the mask), and positions that
 * are not masked carry their token over, so they cost 0.
 *
 * @param logits Model output `[B, L, V]`.
 * @param x0 Clean ids `[B·L]`.
 * @param xt Noised ids `[B·L]`.
 * @param maskId The mask id.
 * @returns `[B, L]` costs, zero where `xt` is not the mask.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { subsCrossEntropy } from "@d3pm/diffusion";
 * import { assertAlmostEquals, assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * // Uniform logits over 4 ids, 3 of them the mask: p̃ is uniform over the other 3.
 * const logits = tf.zeros([1, 3, 4]) as tf.Tensor3D;
 * const ce = subsCrossEntropy(logits, Int32Array.of(0, 1, 2), Int32Array.of(0, 3, 3), 3);
 * assertEquals(ce.shape, [1, 3]);
 * const [kept, masked1, masked2] = await ce.data();
 * assertEquals(kept, 0); // not masked: carried over, costs nothing
 * assertAlmostEquals(masked1, Math.log(3), 1e-5);
 * assertAlmostEquals(masked2, Math.log(3), 1e-5);
 * tf.dispose([logits, ce]);
 * ```
 */
export function subsCrossEntropy(
  logits: Tensor3D,
  x0: Int32Array,
  xt: Int32Array,
  maskId: number,
): Tensor2D {
  return tf.tidy(() => {
    const [b, l, v] = logits.shape;
    if (maskId < 0 || maskId >= v) {
      throw new RangeError(`maskId must be in [0, ${v}), got ${maskId}`);
    }
    const maskBias = tf.oneHot(tf.tensor1d([maskId], "int32"), v).mul(-1e9)
      .reshape([1, v]);
    // The clean token where x_t is the mask, else −1: the fused op gives an
    // ignored (out-of-range) label a cost and a gradient of 0.
    const labels = new Int32Array(xt.length);
    for (let i = 0; i < xt.length; i++) {
      labels[i] = xt[i] === maskId ? x0[i] : -1;
    }
    const ce = sparseSoftmaxCrossEntropy(
      logits.reshape([b * l, v]).add(maskBias) as Tensor2D,
      tf.tensor1d(labels, "int32"),
    ); // [B·L]
    return ce.reshape([b, l]) as Tensor2D;
  });
}

/**
 * Times in `(tMin, tMax]` for a batch. Antithetic (low-discrepancy) sampling
 * spreads them evenly: `t_b = tMin + (tMax − tMin)·(1 − ((u + b/B) mod 1))`
 * for one uniform `u`, which lowers the variance of the loss (MDLM).
 *
 * @param batchSize How many.
 * @param options The PRNG, `antithetic` (default true), `tMin` (1e-3) and
 * `tMax` (1).
 * @returns The times.
 *
 * @example
 * ```ts
 * import { sampleTimes } from "@d3pm/diffusion";
 * import { prng } from "@d3pm/core";
 * import { assert } from "@std/assert";
 * const t = Array.from(sampleTimes(4, { prng: prng(0) })).sort();
 * assert(t[3] - t[0] < 0.75 + 1e-9); // one per quarter of [0, 1]
 * ```
 */
export function sampleTimes(
  batchSize: number,
  options: { prng: Prng; antithetic?: boolean; tMin?: number; tMax?: number },
): Float64Array {
  const { prng } = options;
  const tMin = options.tMin ?? 1e-3;
  const tMax = options.tMax ?? 1;
  if (!(tMin >= 0 && tMin < tMax && tMax <= 1)) {
    throw new RangeError(
      `Cannot sample times: need 0 ≤ tMin < tMax ≤ 1, got tMin ${tMin}, tMax ${tMax}`,
    );
  }
  const antithetic = options.antithetic ?? true;
  const t = new Float64Array(batchSize);
  const u = prng.next();
  for (let b = 0; b < batchSize; b++) {
    const r = antithetic
      ? (u + b / batchSize) % 1
      : (b === 0 ? u : prng.next());
    t[b] = tMin + (tMax - tMin) * (1 - r); // in (tMin, tMax]: never exactly tMin
  }
  return t;
}

/** Options of {@linkcode mdlmLoss}. */
export interface MdlmLossOptions {
  /** The continuous schedule (e.g. `logLinear()`). */
  schedule: ContinuousSchedule;
  /** The mask id. */
  maskId: number;
  /** Randomness for times and masks. */
  prng: Prng;
  /** Low-discrepancy times across the batch (default true). */
  antithetic?: boolean;
  /** Smallest time drawn (default 1e-3). */
  tMin?: number;
  /**
   * Largest time drawn (default 1). Below 1 (with `tMin` raised too) this is
   * BD3-LM's clipped mask rate: lower-variance gradients, but the loss is
   * then no longer an estimate of the full bound — a training objective only.
   */
  tMax?: number;
  /**
   * One time per token instead of one per row (default false): the masks of
   * a row then mix rates, which lowers the variance further; refused for a
   * time-conditioned model, which takes one `t` per row.
   */
  perToken?: boolean;
  /**
   * With `perToken`: one time per span of this many consecutive tokens of a
   * row (default 1, each token its own) — block diffusion's time per block.
   * It must divide the row's length.
   */
  timeSpan?: number;
  /**
   * One mask count per row instead of one time ({@linkcode drawByCount}):
   * the same objective in expectation, without the `1/t` weight's heavy
   * tail (default false; not with `perToken`).
   */
  byCount?: boolean;
  /**
   * Share of rows trained fully masked, at t = 1 (default 0: none). The
   * clipped range never shows the denoiser a row with nothing visible; this
   * mixes such rows in: `⌊share·B + u⌋` rows of each batch (the first ones,
   * `u` one uniform draw, taken only when the share is above 0), every token
   * but padding masked, weighted `−α′(1)/(1 − α(1))`. A training objective
   * only, like a clipped range.
   */
  fullMaskShare?: number;
  /**
   * Staggered masking ({@linkcode Stagger}): each position on its own clock,
   * a window of `t`, its term weighted by its clock's rate (default none:
   * one clock). Not with `byCount` or `fullMaskShare`.
   */
  stagger?: Stagger;
  /** Padding id: such tokens are never masked and never counted. */
  padId?: number;
  /** Passed to the model (dropout on). Default true. */
  training?: boolean;
}

/**
 * Mask each token with probability `1 − alpha(t)` for one `t` per row, and
 * return a scalar tensor: the mean over tokens of
 * `−alpha′(t)/(1 − alpha(t)) · 1[masked] · −log p̃(x_0 | x_t)` — MDLM's
 * continuous-time bound (without its tiny endpoint term), an unbiased
 * estimate of an upper bound on NLL in nats per token.
 *
 * @param model The denoiser.
 * @param x0 Clean tokens.
 * @param options Schedule, mask id, PRNG.
 * @returns The loss, a scalar tensor.
 *
 * @example A uniform denoiser costs ln 4 nats per token; one that knows the data, 0
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { type LanguageModel, prng, type Tensor2D, type Tensor3D } from "@d3pm/core";
 * import { logLinear, mdlmLoss } from "@d3pm/diffusion";
 * import { assert, assertAlmostEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * // 5 ids, the last the mask; logits from a fixed function of the input shape.
 * const toy = (logits: (x: Tensor2D) => Tensor3D): LanguageModel => ({
 *   config: { kind: "bidirectional", vocabSize: 5, contextLength: 16 },
 *   timeConditioned: false,
 *   forward: logits,
 *   dispose() {},
 * });
 * const uniform = toy((x) => tf.zeros([...x.shape, 5]));
 * const knowsTwos = toy((x) => tf.oneHot(tf.fill(x.shape, 2, "int32"), 5).mul(30) as Tensor3D);
 * const options = { schedule: logLinear(), maskId: 4, prng: prng(0), training: false };
 *
 * const twos = { tokens: new Int32Array(8 * 16).fill(2), batchSize: 8, length: 16 };
 * const perfect = mdlmLoss(knowsTwos, twos, options);
 * assert((await perfect.data())[0] < 1e-6);
 *
 * // The loss is an unbiased estimate: average a few draws.
 * const text = { tokens: Int32Array.from({ length: 8 * 16 }, (_, i) => i % 4), batchSize: 8, length: 16 };
 * let mean = 0;
 * for (let i = 0; i < 32; i++) {
 *   const loss = mdlmLoss(uniform, text, options);
 *   mean += (await loss.data())[0] / 32;
 *   loss.dispose();
 * }
 * assertAlmostEquals(mean, Math.log(4), 0.15);
 * perfect.dispose();
 * ```
 */
export function mdlmLoss(
  model: LanguageModel,
  x0: TokenBatch,
  options: MdlmLossOptions,
): Scalar {
  checkBatch(x0);
  if (options.perToken && model.timeConditioned) {
    throw new RangeError(
      "mdlmLoss: perToken times need a model that is not time-conditioned (it takes one t per row)",
    );
  }
  const { maskId } = options;
  const { batchSize: b, length: l, tokens } = x0;
  const d = mdlmDraws(x0, options);
  return tf.tidy(() => {
    const logits = model.forward(tf.tensor2d(d.xt, [b, l], "int32"), {
      ...(options.perToken ? {} : { t: tf.tensor1d(Float32Array.from(d.t)) }),
      training: options.training ?? true,
    });
    const ce = subsCrossEntropy(logits, tokens, d.xt, maskId); // [B, L]
    const weighted = !d.rowWeight
      ? ce.mul(tf.tensor2d(d.weight, [b, l]))
      : ce.mul(tf.tensor2d(d.rowWeight!, [b, 1])).mul(
        tf.tensor2d(tokenWeights(x0, options.padId), [b, l]),
      );
    return weighted.sum().div(Math.max(d.count, 1)) as Scalar;
  });
}

/** The random part of {@linkcode mdlmLoss}: times, the noised tokens and the weights. */
interface MdlmDraws {
  /** Times: one per row, or one per token. */
  t: Float64Array;
  /** Noised ids. */
  xt: Int32Array;
  /** Weight per token, `−α′(t)/(1 − α(t))` (0 for padding). */
  weight: Float32Array;
  /** Weight per row (row times without a stagger only). */
  rowWeight?: Float32Array;
  /** Tokens counted (padding excluded). */
  count: number;
}

function mdlmDraws(x0: TokenBatch, options: MdlmLossOptions): MdlmDraws {
  const share = options.fullMaskShare ?? 0;
  if (!(share >= 0 && share <= 1)) {
    throw new RangeError(
      `mdlm loss: fullMaskShare must be in [0, 1], got ${share}`,
    );
  }
  if (options.stagger) {
    checkStagger(options.stagger, x0.length);
    if (options.byCount || share > 0) {
      throw new RangeError(
        `mdlm loss: a stagger draws a time per row (or token); it cannot be combined with ${
          options.byCount ? "byCount" : "fullMaskShare"
        }`,
      );
    }
  }
  const d = clippedDraws(x0, options);
  return share > 0 ? withFullRows(d, x0, options, share) : d;
}

/**
 * Mask the first `⌊share·B + u⌋` rows of `d` fully, at t = 1, with the
 * weight of t = 1 (see `fullMaskShare`).
 */
function withFullRows(
  d: MdlmDraws,
  x0: TokenBatch,
  options: MdlmLossOptions,
  share: number,
): MdlmDraws {
  const { schedule, maskId, prng, padId } = options;
  const { batchSize: b, length: l, tokens } = x0;
  const full = Math.min(b, Math.floor(share * b + prng.next()));
  const w = -schedule.alphaPrime(1) / (1 - schedule.alpha(1));
  const perToken = !d.rowWeight;
  for (let r = 0; r < full; r++) {
    if (d.rowWeight) d.rowWeight[r] = w;
    if (!perToken) d.t[r] = 1;
    for (let i = r * l; i < (r + 1) * l; i++) {
      if (perToken) d.t[i] = 1;
      const counted = tokens[i] !== padId;
      d.xt[i] = counted ? maskId : tokens[i];
      d.weight[i] = counted ? w : 0;
    }
  }
  return d;
}

function clippedDraws(x0: TokenBatch, options: MdlmLossOptions): MdlmDraws {
  const { schedule, maskId, prng, padId } = options;
  const { batchSize: b, length: l, tokens } = x0;
  const weight = tokenWeights(x0, padId);
  const count = weight.reduce((s, x) => s + x, 0);
  if (options.byCount) {
    if (options.perToken) {
      throw new RangeError(
        "mdlm loss: byCount draws one mask count per row; it cannot be combined with perToken times",
      );
    }
    const d = drawByCount(x0, schedule, {
      maskId,
      prng,
      padId,
      antithetic: options.antithetic,
      tMin: options.tMin ?? 1e-3,
      tMax: options.tMax ?? 1,
    });
    const rowWeight = Float32Array.from(d.weight);
    for (let i = 0; i < tokens.length; i++) {
      weight[i] *= rowWeight[Math.floor(i / l)];
    }
    return { t: d.t, xt: d.xt, weight, rowWeight, count };
  }
  const xt = new Int32Array(tokens.length);
  if (options.perToken) {
    const span = options.timeSpan ?? 1;
    if (!(Number.isInteger(span) && span >= 1 && l % span === 0)) {
      throw new RangeError(
        `mdlm loss: timeSpan must be a positive divisor of the row length ${l}, got ${span}`,
      );
    }
    const drawn = sampleTimes((b * l) / span, options);
    const t = span === 1
      ? drawn
      : Float64Array.from({ length: b * l }, (_, i) =>
        drawn[Math.floor(i / span)]);
    for (let i = 0; i < tokens.length; i++) {
      const c = tokenClock(schedule, options.stagger, i % l, t[i]);
      weight[i] *= c.weight;
      xt[i] = tokens[i] !== padId && prng.next() >= c.alpha
        ? maskId
        : tokens[i];
    }
    return { t, xt, weight, count };
  }
  const t = sampleTimes(b, options);
  if (options.stagger) {
    for (let i = 0; i < tokens.length; i++) {
      const c = tokenClock(schedule, options.stagger, i % l, t[(i / l) | 0]);
      weight[i] *= c.weight;
      xt[i] = tokens[i] !== padId && prng.next() >= c.alpha
        ? maskId
        : tokens[i];
    }
    return { t, xt, weight, count };
  }
  const rowWeight = new Float32Array(b);
  for (let r = 0; r < b; r++) {
    const a = schedule.alpha(t[r]);
    rowWeight[r] = -schedule.alphaPrime(t[r]) / (1 - a);
    for (let i = r * l; i < (r + 1) * l; i++) {
      xt[i] = tokens[i] !== padId && prng.next() >= a ? maskId : tokens[i];
      weight[i] *= rowWeight[r];
    }
  }
  return { t, xt, weight, rowWeight, count };
}

/**
 * {@linkcode mdlmLoss} as weighted token cross-entropy (the same draws for
 * the same PRNG state): targets are the clean tokens at masked positions,
 * weights `−α′(t)/(1 − α(t))` over the token count, the mask's logit
 * excluded — what a fused engine computes.
 *
 * @param x0 Clean tokens.
 * @param options As for {@linkcode mdlmLoss} (`training` is ignored).
 * @returns The terms.
 *
 * @example
 * ```ts
 * import { prng } from "@d3pm/core";
 * import { logLinear, mdlmTerms } from "@d3pm/diffusion";
 * import { assert, assertEquals } from "@std/assert";
 * const x0 = { tokens: Int32Array.of(0, 1, 2, 3, 0, 1, 2, 3), batchSize: 2, length: 4 };
 * const terms = mdlmTerms(x0, { schedule: logLinear(), maskId: 4, prng: prng(0) });
 * assertEquals(terms.excludeToken, 4);
 * for (let i = 0; i < 8; i++) {
 *   const masked = terms.inputs[i] === 4;
 *   assertEquals(terms.targets[i], masked ? x0.tokens[i] : -1);
 *   assert(masked ? terms.weights[i] > 0 : terms.weights[i] === 0);
 * }
 * ```
 */
export function mdlmTerms(
  x0: TokenBatch,
  options: MdlmLossOptions,
): WeightedTokens {
  checkBatch(x0);
  const d = mdlmDraws(x0, options);
  const targets = new Int32Array(d.xt.length);
  const weights = new Float32Array(d.xt.length);
  for (let i = 0; i < d.xt.length; i++) {
    const scored = d.xt[i] === options.maskId;
    targets[i] = scored ? x0.tokens[i] : -1;
    weights[i] = scored ? d.weight[i] / Math.max(d.count, 1) : 0;
  }
  return {
    rows: x0.batchSize,
    length: x0.length,
    inputs: d.xt,
    targets,
    weights,
    ...(options.perToken ? {} : { t: Float32Array.from(d.t) }),
    excludeToken: options.maskId,
  };
}

/** Options of {@linkcode d3pmLoss}. */
export interface D3pmLossOptions {
  /** The forward process (`absorbing` or `uniform`). */
  transition: Transition;
  /** Randomness for steps and noise. */
  prng: Prng;
  /** Weight λ of the auxiliary cross-entropy (default 0.01). */
  hybridLambda?: number;
  /** Padding id: never noised, never counted. */
  padId?: number;
  /** Passed to the model (dropout on). Default true. */
  training?: boolean;
}

/**
 * D3PM's hybrid loss `L_λ = T · L_{t−1} + λ · CE` for one step `t` drawn
 * uniformly from `1..T` per row, with the x0-parameterisation: the model's
 * `p̃(x_0 | x_t)` goes through the posterior to give `p_θ(x_{t−1} | x_t)`.
 * `T · L_{t−1}` is an unbiased estimate of the whole bound (prior term aside).
 * `L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t))` for `t ≥ 2` and
 * `−log p_θ(x_0 | x_1)` for `t = 1`; `CE = −log p̃(x_0 | x_t)`.
 *
 * For absorbing it uses the closed form `L_{t−1} = r_t · 1[x_t = mask] ·
 * −log p̃(x_0 | x_t)` with `r_t = (ᾱ_{t−1} − ᾱ_t)/(1 − ᾱ_t)` (SUBS: the model
 * never predicts the mask, and the CE counts masked tokens only); for uniform,
 * the full KL over the vocabulary.
 *
 * @param model The denoiser (given `t/T` as its time).
 * @param x0 Clean tokens.
 * @param options Transition, PRNG, λ.
 * @returns The loss, a scalar tensor, nats per token.
 *
 * @example A uniform denoiser's bound term averages ln 4; gradients train it
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { type LanguageModel, prng, type Tensor2D, type Tensor3D } from "@d3pm/core";
 * import { absorbing, absorbingBeta, d3pmLoss } from "@d3pm/diffusion";
 * import { assert, assertAlmostEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * // 5 ids, the last the mask; one learned logit vector shared by every position.
 * const bias = tf.variable(tf.zeros([5]));
 * const model: LanguageModel = {
 *   config: { kind: "bidirectional", vocabSize: 5, contextLength: 16 },
 *   timeConditioned: false,
 *   forward: (x: Tensor2D) => bias.reshape([1, 1, 5]).tile([...x.shape, 1]) as Tensor3D,
 *   dispose: () => bias.dispose(),
 * };
 * const q = absorbing(absorbingBeta({ steps: 100 }), { numStates: 5, maskId: 4 });
 * const x0 = { tokens: Int32Array.from({ length: 8 * 16 }, (_, i) => i % 4), batchSize: 8, length: 16 };
 * const rng = prng(0);
 *
 * // With λ = 0 the loss is T · L_{t−1}, an unbiased estimate of the bound.
 * let mean = 0;
 * for (let i = 0; i < 32; i++) {
 *   const loss = d3pmLoss(model, x0, { transition: q, prng: rng, hybridLambda: 0 });
 *   mean += (await loss.data())[0] / 32;
 *   loss.dispose();
 * }
 * assertAlmostEquals(mean, Math.log(4), 0.15);
 *
 * // On text of 0s, the gradient raises the logit of 0 and lowers the others;
 * // the mask's logit gets none (the model is never asked to predict it).
 * const zeros = { tokens: new Int32Array(8 * 16), batchSize: 8, length: 16 };
 * const { grads } = tf.variableGrads(() => d3pmLoss(model, zeros, { transition: q, prng: rng }));
 * const g = await grads[bias.name].data();
 * assert(g[0] < 0 && g[1] > 0 && g[2] > 0 && g[3] > 0);
 * assertAlmostEquals(g[4], 0, 1e-9);
 * tf.dispose(grads);
 * model.dispose();
 * ```
 */
export function d3pmLoss(
  model: LanguageModel,
  x0: TokenBatch,
  options: D3pmLossOptions,
): Scalar {
  checkBatch(x0);
  const { transition: q, prng, padId } = options;
  const lambda = options.hybridLambda ?? 0.01;
  const { batchSize: b, length: l, tokens } = x0;
  const T = q.steps;
  const steps = new Int32Array(b);
  const xt = new Int32Array(tokens.length);
  for (let r = 0; r < b; r++) {
    steps[r] = 1 + prng.nextInt(T);
    const row = q.noise(tokens.subarray(r * l, (r + 1) * l), steps[r], prng);
    for (let i = 0; i < l; i++) {
      xt[r * l + i] = tokens[r * l + i] === padId ? padId : row[i];
    }
  }
  const w = tokenWeights(x0, padId);
  const count = Math.max(w.reduce((s, x) => s + x, 0), 1);
  return tf.tidy(() => {
    const logits = model.forward(tf.tensor2d(xt, [b, l], "int32"), {
      t: tf.tensor1d(Float32Array.from(steps, (s) => s / T)),
      training: options.training ?? true,
    });
    const { vb, ce } = vbTerms(logits, tokens, xt, steps, q);
    const wt = tf.tensor2d(w, [b, l]);
    return vb.mul(T).add(ce.mul(lambda)).mul(wt).sum().div(count) as Scalar;
  });
}

/**
 * `r_t = (ᾱ_{t−1} − ᾱ_t)/(1 − ᾱ_t)`: the probability that a token masked at
 * step `t` was clean at step `t − 1` (absorbing). It is `1/t` for
 * `absorbingBeta`.
 *
 * @param schedule The discrete schedule.
 * @param t The step, in [1, T].
 * @returns `r_t`.
 *
 * @example
 * ```ts
 * import { absorbingBeta, unmaskRate } from "@d3pm/diffusion";
 * import { assertAlmostEquals } from "@std/assert";
 * assertAlmostEquals(unmaskRate(absorbingBeta({ steps: 1000 }), 40), 1 / 40, 1e-12);
 * ```
 */
export function unmaskRate(schedule: DiscreteSchedule, t: number): number {
  const a = schedule.alphaBar(t);
  return (schedule.alphaBar(t - 1) - a) / (1 - a);
}

/**
 * Per-token bound terms `L_{t−1}` and cross-entropies for rows at steps
 * `steps[r]`, as `[B, L]` tensors (see {@linkcode d3pmLoss}).
 *
 * @param logits Model output `[B, L, V]` for `xt`.
 * @param x0 Clean ids `[B·L]`.
 * @param xt Noised ids `[B·L]`.
 * @param steps The step of each row, in `[1, T]`.
 * @param q The transition (`absorbing` or `uniform`) with `V` states.
 * @returns `vb`, the per-token `L_{t−1}`, and `ce`, the per-token
 * `−log p̃(x_0 | x_t)` (masked tokens only, for absorbing), both `[B, L]`.
 *
 * @example For absorbing, `L_{t−1}` is the cross-entropy scaled by `1/t`
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { absorbing, absorbingBeta, vbTerms } from "@d3pm/diffusion";
 * import { assertAlmostEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const q = absorbing(absorbingBeta({ steps: 10 }), { numStates: 5, maskId: 4 });
 * const logits = tf.zeros([1, 2, 5]) as tf.Tensor3D; // uniform over the 4 non-mask ids
 * // Row at step 2: the first token is masked, the second kept.
 * const { vb, ce } = vbTerms(logits, Int32Array.of(0, 1), Int32Array.of(4, 1), Int32Array.of(2), q);
 * const [ce0, ce1] = await ce.data();
 * const [vb0, vb1] = await vb.data();
 * assertAlmostEquals(ce0, Math.log(4), 1e-5);
 * assertAlmostEquals(ce1, 0, 1e-6);
 * assertAlmostEquals(vb0, Math.log(4) / 2, 1e-5); // r_2 = 1/2
 * assertAlmostEquals(vb1, 0, 1e-6);
 * tf.dispose([logits, vb, ce]);
 * ```
 */
export function vbTerms(
  logits: Tensor3D,
  x0: Int32Array,
  xt: Int32Array,
  steps: Int32Array,
  q: Transition,
): { vb: Tensor2D; ce: Tensor2D } {
  const [b, l, v] = logits.shape;
  if (v !== q.numStates) {
    throw new RangeError(
      `Model vocabulary ${v} does not match the transition's ${q.numStates} states`,
    );
  }
  return tf.tidy(() => {
    if (q.kind === "absorbing") {
      const ce = subsCrossEntropy(logits, x0, xt, q.maskId!);
      const r = Float32Array.from(steps, (t) => unmaskRate(q.schedule!, t));
      return { vb: ce.mul(tf.tensor2d(r, [b, 1])) as Tensor2D, ce };
    }
    if (q.kind !== "uniform") {
      throw new RangeError(
        `d3pmLoss supports absorbing and uniform transitions, got ${q.kind}`,
      );
    }
    // Uniform: Q_t[·, x_t] = β/V + (1 − β)·e_{x_t};  p Q̄_s = ᾱ_s p + (1 − ᾱ_s)/V.
    const s = q.schedule!;
    const beta = Float32Array.from(steps, (t) => s.beta(t));
    const abPrev = Float32Array.from(steps, (t) => s.alphaBar(t - 1));
    const bt = tf.tensor3d(beta, [b, 1, 1]);
    const at = tf.tensor3d(abPrev, [b, 1, 1]);
    const xtHot = tf.oneHot(tf.tensor2d(xt, [b, l], "int32"), v);
    const x0Hot = tf.oneHot(tf.tensor2d(x0, [b, l], "int32"), v);
    const col = bt.div(v).add(xtHot.mul(tf.scalar(1).sub(bt)));
    const post = (p: Tensor) => {
      const un = col.mul(at.mul(p).add(tf.scalar(1).sub(at).div(v)));
      return un.div(un.sum(-1, true));
    };
    const logp0 = tf.logSoftmax(logits);
    const pTheta = post(tf.exp(logp0));
    const qPost = post(x0Hot);
    const tiny = 1e-30;
    const kl = qPost.mul(tf.log(qPost.add(tiny)).sub(tf.log(pTheta.add(tiny))))
      .sum(-1);
    const nllFirst = tf.log(pTheta.add(tiny)).mul(x0Hot).sum(-1).neg();
    const isFirst = tf.tensor2d(
      Float32Array.from(steps, (s) => (s === 1 ? 1 : 0)),
      [b, 1],
    );
    const vb = isFirst.mul(nllFirst).add(tf.scalar(1).sub(isFirst).mul(kl));
    const ce = logp0.mul(x0Hot).sum(-1).neg();
    return { vb: vb as Tensor2D, ce: ce as Tensor2D };
  });
}
