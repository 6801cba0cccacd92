/**
 * Evaluating the bound: the exact discrete-time ELBO (all `T` terms plus the
 * prior term) and a Monte-Carlo estimate of the continuous-time ELBO with its
 * standard error. Both in nats per token; as NLL figures they are upper
 * bounds, so BPT and PPL derived from them are upper bounds too ("≤").
 *
 * @module
 */
import {
  isTermScorer,
  type LanguageModel,
  type NllEstimate,
  type Prng,
  type Tensor1D,
  type TermScorer,
  type TokenBatch,
  type WeightedTokens,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  sampleTimes,
  subsCrossEntropy,
  tokenWeights,
  vbTerms,
} from "./loss.ts";
import type { ContinuousSchedule } from "./schedule.ts";
import { ratioEstimate } from "./_ratio.ts";
import { drawByCount } from "./counts.ts";
import type { Transition } from "./transition.ts";
import { checkStagger, type Stagger } from "./stagger.ts";
import { tokenClock } from "./_clock.ts";

/** Options of {@linkcode discreteElbo}. */
export interface DiscreteElboOptions {
  /** The forward process (`absorbing` or `uniform`). */
  transition: Transition;
  /** Randomness for `x_t`. */
  prng: Prng;
  /** Padding id: never counted. */
  padId?: number;
  /** Called after each step with the steps done. */
  onStep?: (done: number, total: number) => void;
}

/**
 * The discrete-time ELBO `L_T + Σ_{t=1}^{T} L_{t−1}` for a batch: every term
 * is evaluated (one forward pass per step), each with one draw of
 * `x_t ~ q(x_t | x_0)`; the prior term is exact. `stderr` is the standard
 * error across rows.
 *
 * @param model The denoiser (given `t/T` as its time).
 * @param x0 Clean tokens.
 * @param options Transition, PRNG.
 * @returns The bound in nats per token.
 *
 * @example A uniform denoiser is bounded by ln 4 over 4 ids; padding is not scored
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { type LanguageModel, prng, type Tensor2D, type Tensor3D } from "@d3pm/core";
 * import { absorbing, absorbingBeta, discreteElbo } from "@d3pm/diffusion";
 * import { assert, assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * // 6 ids: 0–3 text, 4 padding, 5 the mask.
 * const uniform: LanguageModel = {
 *   config: { kind: "bidirectional", vocabSize: 6, contextLength: 16 },
 *   timeConditioned: false,
 *   // Never predicts padding; uniform over the rest (SUBS rules out the mask).
 *   forward: (x: Tensor2D) => tf.oneHot(tf.fill(x.shape, 4, "int32"), 6).mul(-1e9) as Tensor3D,
 *   dispose() {},
 * };
 * const q = absorbing(absorbingBeta({ steps: 10 }), { numStates: 6, maskId: 5 });
 * const tokens = Int32Array.from({ length: 8 * 16 }, (_, i) => (i % 16 < 12 ? i % 4 : 4));
 * const x0 = { tokens, batchSize: 8, length: 16 };
 * let steps = 0;
 * const est = await discreteElbo(uniform, x0, { transition: q, prng: prng(0), padId: 4, onStep: () => steps++ });
 * assertEquals(steps, 10); // one forward pass per step
 * assertEquals(est.tokens, 8 * 12); // padding excluded
 * assert(Math.abs(est.nats - Math.log(4)) < 4 * est.stderr);
 * ```
 */
export async function discreteElbo(
  model: LanguageModel | TermScorer,
  x0: TokenBatch,
  options: DiscreteElboOptions,
): Promise<NllEstimate> {
  if (isTermScorer(model)) return discreteElboTerms(model, x0, options);
  const { transition: q, prng, padId } = options;
  const { batchSize: b, length: l, tokens } = x0;
  const T = q.steps;
  const w = tokenWeights(x0, padId);
  const rowSums = new Float64Array(b);
  const rowCounts = new Float64Array(b);
  for (let i = 0; i < w.length; i++) rowCounts[Math.floor(i / l)] += w[i];
  const prior = priorTerm(q, tokens, w);
  for (let i = 0; i < prior.length; i++) rowSums[Math.floor(i / l)] += prior[i];
  for (let t = 1; t <= T; t++) {
    const steps = new Int32Array(b).fill(t);
    const xt = new Int32Array(tokens.length);
    for (let r = 0; r < b; r++) {
      xt.set(q.noise(tokens.subarray(r * l, (r + 1) * l), t, prng), r * l);
    }
    for (let i = 0; i < xt.length; i++) if (tokens[i] === padId) xt[i] = padId;
    const perRow = tf.tidy(() => {
      const logits = model.forward(tf.tensor2d(xt, [b, l], "int32"), {
        t: tf.fill([b], t / T) as Tensor1D,
        training: false,
      });
      const { vb } = vbTerms(logits, tokens, xt, steps, q);
      return vb.mul(tf.tensor2d(w, [b, l])).sum(1);
    });
    const sums = await perRow.data();
    perRow.dispose();
    for (let r = 0; r < b; r++) rowSums[r] += sums[r];
    options.onStep?.(t, T);
  }
  return ratioEstimate(rowSums, rowCounts);
}

/** Exact `KL(q(x_T | x_0) ‖ stationary)` for every token (0 for padding). */
// The exact bound on a TermScorer: for the absorbing process with the
// SUBS parameterisation, the KL term of step t at a masked position is
// r_t · CE(x0) with r_t = (ᾱ_{t−1} − ᾱ_t)/(1 − ᾱ_t) (0 elsewhere), so all T
// steps go to the scorer as weighted cross-entropy terms in one call, with
// the noise drawn in the same order as the tfjs path.
async function discreteElboTerms(
  model: TermScorer,
  x0: TokenBatch,
  options: DiscreteElboOptions,
): Promise<NllEstimate> {
  const { transition: q, prng, padId } = options;
  if (q.kind !== "absorbing" || q.maskId === undefined || !q.schedule) {
    throw new RangeError(
      `The exact bound on a term scorer (the WebGPU engine) needs the absorbing transition, got ${q.kind}`,
    );
  }
  const { batchSize: b, length: l, tokens } = x0;
  const T = q.steps, maskId = q.maskId, ab = q.schedule;
  const w = tokenWeights(x0, padId);
  const rowCounts = new Float64Array(b);
  for (let i = 0; i < w.length; i++) rowCounts[Math.floor(i / l)] += w[i];
  const rowSums = new Float64Array(b);
  const prior = priorTerm(q, tokens, w);
  for (let i = 0; i < prior.length; i++) rowSums[Math.floor(i / l)] += prior[i];
  const list: WeightedTokens[] = [];
  for (let t = 1; t <= T; t++) {
    const xt = new Int32Array(tokens.length);
    for (let r = 0; r < b; r++) {
      xt.set(q.noise(tokens.subarray(r * l, (r + 1) * l), t, prng), r * l);
    }
    for (let i = 0; i < xt.length; i++) if (tokens[i] === padId) xt[i] = padId;
    const reveal = (ab.alphaBar(t - 1) - ab.alphaBar(t)) /
      (1 - ab.alphaBar(t));
    const targets = new Int32Array(xt.length);
    const weights = new Float32Array(xt.length);
    for (let i = 0; i < xt.length; i++) {
      const masked = xt[i] === maskId && tokens[i] !== maskId;
      targets[i] = masked ? tokens[i] : -1;
      weights[i] = masked ? reveal * w[i] : 0;
    }
    list.push({
      rows: b,
      length: l,
      inputs: xt,
      targets,
      weights,
      t: new Float32Array(b).fill(t / T),
      excludeToken: maskId,
    });
  }
  const sums = await model.rowLosses(list);
  for (const s of sums) for (let r = 0; r < b; r++) rowSums[r] += s[r];
  options.onStep?.(T, T);
  return ratioEstimate(rowSums, rowCounts);
}

function priorTerm(
  q: Transition,
  tokens: Int32Array,
  w: Float32Array,
): Float64Array {
  const stat = q.stationary();
  const rows = new Float64Array(w.length);
  const cache = new Map<number, number>();
  for (let i = 0; i < tokens.length; i++) {
    if (w[i] === 0) continue;
    let kl = cache.get(tokens[i]);
    if (kl === undefined) {
      const p = q.cumulativeRow(tokens[i], q.steps);
      kl = 0;
      for (let j = 0; j < p.length; j++) {
        if (p[j] === 0) continue;
        if (stat[j] === 0) {
          throw new RangeError(
            `The prior term is infinite: q(x_T | x_0) keeps mass where the prior has none; use a schedule with alphaBar(T) = 0`,
          );
        }
        kl += p[j] * Math.log(p[j] / stat[j]);
      }
      cache.set(tokens[i], kl);
    }
    rows[i] = kl;
  }
  return rows;
}

/** Options of {@linkcode continuousElbo}. */
export interface ContinuousElboOptions {
  /** The continuous schedule. */
  schedule: ContinuousSchedule;
  /** The mask id. */
  maskId: number;
  /** Randomness for times and masks. */
  prng: Prng;
  /** Time draws per row (default 1). */
  samples?: number;
  /** Low-discrepancy times across the batch (default true). */
  antithetic?: boolean;
  /**
   * `time` (default): a time per row, each token masked with probability
   * `1 − alpha(t)`, weighted `−alpha′(t)/(1 − alpha(t))`; `count`: a mask
   * count per row and a uniform subset of that size ({@linkcode drawByCount}),
   * the same bound in expectation without the `1/t` weight's heavy tail.
   */
  draws?: "time" | "count";
  /**
   * Staggered masking ({@linkcode Stagger}): each position on its own
   * clock, its term weighted by its clock's rate; with `time` draws only.
   */
  stagger?: Stagger;
  /** Padding id: never masked, never counted. */
  padId?: number;
}

/**
 * A Monte-Carlo estimate of the continuous-time ELBO: for `t ~ U(0, 1]`
 * (antithetic across rows and samples: one uniform shift of an even grid of
 * `batchSize · samples` times, each row's samples a stride `1/samples` apart), `E[−alpha′(t)/(1 − alpha(t)) · Σ_masked −log
 * p̃(x_0 | x_t)]`, plus the exact endpoint term `alpha(1) · Σ −log p̃(x_0 |
 * all masked)` for the tokens that `alpha(1) > 0` would leave clean at `t = 1`
 * (this makes the bound proper: a model that predicts the uniform
 * distribution over `K` tokens scores exactly `ln K` in expectation).
 *
 * @param model The denoiser (given `t`).
 * @param x0 Clean tokens.
 * @param options Schedule, mask id, PRNG, samples.
 * @returns The estimate and its standard error, nats per token (the error
 *   treats the draws as independent, so with antithetic times it errs high).
 *
 * @example A uniform denoiser over 4 ids scores ln 4, within the standard error
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { type LanguageModel, prng, type Tensor2D, type Tensor3D } from "@d3pm/core";
 * import { continuousElbo, logLinear } from "@d3pm/diffusion";
 * import { assert, assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const uniform: LanguageModel = { // 5 ids, the last the mask
 *   config: { kind: "bidirectional", vocabSize: 5, contextLength: 16 },
 *   timeConditioned: false,
 *   forward: (x: Tensor2D) => tf.zeros([...x.shape, 5]) as Tensor3D,
 *   dispose() {},
 * };
 * const x0 = { tokens: Int32Array.from({ length: 8 * 16 }, (_, i) => i % 4), batchSize: 8, length: 16 };
 * const est = await continuousElbo(uniform, x0, { schedule: logLinear(), maskId: 4, prng: prng(0), samples: 8 });
 * assertEquals(est.tokens, 8 * 8 * 16); // every token, once per sample
 * assert(est.stderr > 0); // a Monte-Carlo estimate
 * assert(Math.abs(est.nats - Math.log(4)) < 4 * est.stderr);
 * ```
 */
export async function continuousElbo(
  model: LanguageModel | TermScorer,
  x0: TokenBatch,
  options: ContinuousElboOptions,
): Promise<NllEstimate> {
  const { schedule, maskId, prng, padId } = options;
  const samples = options.samples ?? 1;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new RangeError(
      `continuousElbo: samples must be a positive integer, got ${samples}`,
    );
  }
  if (
    options.draws !== undefined && options.draws !== "time" &&
    options.draws !== "count"
  ) {
    throw new RangeError(
      `continuousElbo: draws must be "time" or "count", got ${
        JSON.stringify(options.draws)
      }`,
    );
  }
  const { batchSize: b, length: l, tokens } = x0;
  const w = tokenWeights(x0, padId);
  const rowCounts = new Float64Array(b);
  for (let i = 0; i < w.length; i++) rowCounts[Math.floor(i / l)] += w[i];

  // The draws first (the passes draw nothing), then every pass at once: the
  // endpoint term, exact, on the fully masked input at t = 1, and one
  // Monte-Carlo pass per sample.
  if (options.stagger) {
    checkStagger(options.stagger, l);
    if (options.draws === "count") {
      throw new RangeError(
        'continuousElbo: a stagger needs time draws (a mask count per row assumes every position on one clock); use draws: "time"',
      );
    }
  }
  const passes: { xt: Int32Array; t: Float64Array; w?: Float32Array }[] = [];
  const a1 = schedule.alpha(1);
  if (a1 > 0) {
    passes.push({
      xt: tokens.map((x) => (x === padId ? x : maskId)),
      t: new Float64Array(b).fill(1),
    });
  }
  const weights: Float64Array[] = [];
  // All b · samples draws at once: with antithetic draws, row r's samples are
  // spread evenly (stride 1/samples) and rows are offset from one another,
  // so each row's estimate is itself stratified.
  if (options.draws === "count") {
    const all = new Int32Array(tokens.length * samples);
    for (let s = 0; s < samples; s++) all.set(tokens, s * tokens.length);
    const d = drawByCount(
      { tokens: all, batchSize: b * samples, length: l },
      schedule,
      { maskId, prng, padId, antithetic: options.antithetic },
    );
    for (let s = 0; s < samples; s++) {
      passes.push({
        xt: d.xt.subarray(s * b * l, (s + 1) * b * l),
        t: d.t.subarray(s * b, (s + 1) * b),
      });
      weights.push(d.weight.subarray(s * b, (s + 1) * b));
    }
  } else {
    const times = sampleTimes(b * samples, {
      prng,
      antithetic: options.antithetic,
      tMin: 0,
    });
    for (let s = 0; s < samples; s++) {
      const t = times.subarray(s * b, (s + 1) * b);
      const xt = new Int32Array(tokens.length);
      const weight = new Float64Array(b);
      // Staggered: each token its own weight, the rows' weights 1.
      const tokenW = options.stagger ? w.slice() : undefined;
      for (let r = 0; r < b; r++) {
        if (tokenW) {
          weight[r] = 1;
          for (let i = r * l; i < (r + 1) * l; i++) {
            const c = tokenClock(schedule, options.stagger, i - r * l, t[r]);
            tokenW[i] *= c.weight;
            xt[i] = tokens[i] !== padId && prng.next() >= c.alpha
              ? maskId
              : tokens[i];
          }
          continue;
        }
        const a = schedule.alpha(t[r]);
        weight[r] = -schedule.alphaPrime(t[r]) / (1 - a);
        for (let i = r * l; i < (r + 1) * l; i++) {
          xt[i] = tokens[i] !== padId && prng.next() >= a ? maskId : tokens[i];
        }
      }
      passes.push({ xt, t, ...(tokenW ? { w: tokenW } : {}) });
      weights.push(weight);
    }
  }
  const sums = await rowSumsOf(model, x0, passes, maskId, w);
  const endpoint = a1 > 0
    ? sums.shift()!.map((x) => a1 * x)
    : new Float64Array(b);
  const estimates = sums.map((s, i) =>
    s.map((x, r) => weights[i][r] * x + endpoint[r])
  );
  const rowSums = new Float64Array(b * samples);
  const counts = new Float64Array(b * samples);
  estimates.forEach((e, s) => {
    rowSums.set(e, s * b);
    counts.set(rowCounts, s * b);
  });
  return ratioEstimate(rowSums, counts);
}

/** Σ over each row of `1[masked] · −log p̃(x_0 | x_t)` (SUBS), weighted. */
async function rowSumsOf(
  model: LanguageModel | TermScorer,
  x0: TokenBatch,
  passes: readonly { xt: Int32Array; t: Float64Array; w?: Float32Array }[],
  maskId: number,
  shared: Float32Array,
): Promise<Float64Array[]> {
  const { batchSize: b, length: l, tokens } = x0;
  if (isTermScorer(model)) {
    return await model.rowLosses(passes.map(({ xt, t, w = shared }) => {
      const targets = new Int32Array(xt.length);
      const weights = new Float32Array(xt.length);
      for (let i = 0; i < xt.length; i++) {
        const masked = xt[i] === maskId;
        targets[i] = masked ? tokens[i] : -1;
        weights[i] = masked ? w[i] : 0;
      }
      return {
        rows: b,
        length: l,
        inputs: xt,
        targets,
        weights,
        t: Float32Array.from(t),
        excludeToken: maskId,
      };
    }));
  }
  const out: Float64Array[] = [];
  for (const { xt, t, w = shared } of passes) {
    const perRow = tf.tidy(() => {
      const logits = model.forward(tf.tensor2d(xt, [b, l], "int32"), {
        t: tf.tensor1d(Float32Array.from(t)),
        training: false,
      });
      return subsCrossEntropy(logits, tokens, xt, maskId)
        .mul(tf.tensor2d(w, [b, l])).sum(1);
    });
    out.push(Float64Array.from(await perRow.data()));
    perRow.dispose();
  }
  return out;
}
