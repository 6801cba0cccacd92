/**
 * Infilling as an evaluation: hide a random fraction of known tokens, score
 * the hidden ones and fill them in, and count how many come back. (Filling
 * blanks a user chose is a process's `fillBlanks`: the sampler with a
 * prompt.)
 *
 * @module
 */
import {
  isTermScorer,
  type LanguageModel,
  type MaskedGenerator,
  type Prng,
  type Tensor1D,
  type TermScorer,
  type TokenBatch,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { subsCrossEntropy } from "./loss.ts";
import { sample, type SampleOptions } from "./sampler.ts";
import type { DiscreteSchedule } from "./schedule.ts";

/** Options of {@linkcode evaluateInfill}. */
export interface EvaluateInfillOptions {
  /** Fraction of tokens to hide, in (0, 1); each token is hidden independently. */
  fraction: number;
  /** The mask id. */
  maskId: number;
  /** The schedule the sampler follows. */
  schedule: DiscreteSchedule;
  /** Denoising steps (at most `T`). */
  steps: number;
  /** Randomness: which tokens are hidden, and the sampler's draws. */
  prng: Prng;
  /** Ids never drawn besides the mask. */
  suppress?: number[];
  /** Reuse logits when nothing changed (see `sample`). */
  cache?: SampleOptions["cache"];
  /** How the sampler fills the blanks (see `sample`; default `ancestral`). */
  strategy?: SampleOptions["strategy"];
  /** Per-position clean probabilities of a staggered process (see `sample`); the scoring time follows their row mean. */
  positionAlphaBar?: SampleOptions["positionAlphaBar"];
}

/** What {@linkcode evaluateInfill} measured. */
export interface InfillEvaluation {
  /** Fraction of hidden tokens filled in exactly. */
  accuracy: number;
  /** Nats per hidden token of `−log p̃(x_0 | x_t)` in one pass at the matching time. */
  nll: number;
  /** Tokens hidden. */
  hidden: number;
  /** Tokens in the batch. */
  total: number;
}

/**
 * Evaluate infilling: hide each token of `x0` with probability `fraction`,
 * score the hidden ones in one pass at the time where that fraction is
 * masked (with `positionAlphaBar`, a staggered process's clocks, where the
 * row's mean masked fraction reaches it), then fill them in with the sampler
 * and count exact matches.
 *
 * @param model A denoiser.
 * @param x0 Clean rows.
 * @param options Fraction, process and randomness.
 * @returns Accuracy, NLL of the hidden tokens, and how many were hidden.
 * @throws {RangeError} When `fraction` is not in (0, 1).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { prng, type LanguageModel, type Tensor2D, type Tensor3D } from "@d3pm/core";
 * import { absorbingBeta, evaluateInfill } from "@d3pm/diffusion";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * // An oracle that knows every row is 0 1 2 3 …
 * const oracle: LanguageModel = {
 *   config: { kind: "bidirectional", vocabSize: 9, contextLength: 8 },
 *   timeConditioned: false,
 *   forward: (x: Tensor2D) =>
 *     tf.tidy(() => tf.oneHot(tf.range(0, x.shape[1], 1, "int32"), 9).mul(60)
 *       .expandDims(0).tile([x.shape[0], 1, 1])) as Tensor3D,
 *   dispose() {},
 * };
 * const x0 = { tokens: Int32Array.of(0, 1, 2, 3, 4, 5, 6, 7), batchSize: 1, length: 8 };
 * const r = await evaluateInfill(oracle, x0, {
 *   fraction: 0.5, maskId: 8, schedule: absorbingBeta({ steps: 10 }), steps: 10, prng: prng(0),
 * });
 * assertEquals(r.accuracy, 1);
 * ```
 */
export async function evaluateInfill(
  model: LanguageModel | (TermScorer & MaskedGenerator),
  x0: TokenBatch,
  options: EvaluateInfillOptions,
): Promise<InfillEvaluation> {
  const { fraction, maskId, prng } = options;
  if (!(fraction > 0 && fraction < 1)) {
    throw new RangeError(
      `evaluateInfill: fraction must be in (0, 1), got ${fraction}`,
    );
  }
  const { batchSize: n, length: l } = x0;
  const prompt = x0.tokens.slice();
  for (let i = 0; i < prompt.length; i++) {
    if (prng.next() < fraction) prompt[i] = maskId;
  }
  const hidden = prompt.reduce((s, x) => s + (x === maskId ? 1 : 0), 0);
  // The time at which this fraction is masked: alphaBar(t) = 1 − fraction.
  // A staggered process keeps a clock per position, so its masked fraction
  // at a step is the row's mean over them (the model reads that one t).
  const T = options.schedule.steps;
  const perPosition = options.positionAlphaBar;
  const alphaBar = perPosition
    ? (k: number) => {
      let s = 0;
      for (let i = 0; i < l; i++) s += perPosition(i, k);
      return s / l;
    }
    : (k: number) => options.schedule.alphaBar(k);
  let t = T;
  while (t > 0 && alphaBar(t - 1) <= 1 - fraction) t--;
  let sum: number;
  if (isTermScorer(model)) {
    const targets = prompt.map((x, i) => (x === maskId ? x0.tokens[i] : -1));
    const [rows] = await model.rowLosses([{
      rows: n,
      length: l,
      inputs: prompt,
      targets,
      weights: new Float32Array(prompt.length).fill(1),
      t: new Float32Array(n).fill(t / T),
      excludeToken: maskId,
    }]);
    sum = rows.reduce((a, x) => a + x, 0);
  } else {
    const ce = tf.tidy(() => {
      const logits = model.forward(tf.tensor2d(prompt, [n, l], "int32"), {
        t: tf.fill([n], t / T) as Tensor1D,
        training: false,
      });
      return subsCrossEntropy(logits, x0.tokens, prompt, maskId).sum();
    });
    sum = (await ce.data())[0];
    ce.dispose();
  }
  const nll = sum / Math.max(hidden, 1);
  const filled = await sample(model, {
    schedule: options.schedule,
    maskId,
    prng,
    prompt,
    batchSize: n,
    steps: Math.min(options.steps, T),
    suppress: options.suppress,
    cache: options.cache,
    strategy: options.strategy,
    positionAlphaBar: options.positionAlphaBar,
  });
  let right = 0;
  for (let i = 0; i < prompt.length; i++) {
    if (prompt[i] === maskId && filled.tokens[i] === x0.tokens[i]) right++;
  }
  return {
    accuracy: right / Math.max(hidden, 1),
    nll,
    hidden,
    total: prompt.length,
  };
}
