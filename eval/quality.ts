/**
 * Sample quality: generative perplexity under a judge model, always with the
 * samples' entropy (low-entropy, repetitive text fools generative
 * perplexity), and infilling accuracy.
 *
 * @module
 */
import type { Prng, Tensor1D } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import type { Blocks } from "@d3pm/data";
import {
  type Denoiser,
  type DiscreteSchedule,
  sample,
  subsCrossEntropy,
} from "@d3pm/diffusion";
import { arNll, type Backbone } from "./nll.ts";

/**
 * Mean over samples of the entropy (nats) of each sample's token histogram,
 * as MDLM reports it.
 *
 * @param tokens `count × length` ids.
 * @param length Ids per sample.
 * @returns Mean entropy in nats.
 *
 * @example
 * ```ts
 * import { sampleEntropy } from "@d3pm/eval";
 * import { assertAlmostEquals } from "@std/assert";
 * assertAlmostEquals(sampleEntropy(Int32Array.of(1, 2, 1, 2, 7, 7, 7, 7), 4), Math.LN2 / 2, 1e-12);
 * ```
 */
export function sampleEntropy(tokens: Int32Array, length: number): number {
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
 * Generative perplexity: `e^NLL` of samples under a causal judge.
 *
 * @param judge A causal model.
 * @param tokens `count × length` ids.
 * @param length Ids per sample.
 * @returns Generative perplexity and the judge's NLL in nats per token.
 */
export async function generativePerplexity(
  judge: Backbone,
  tokens: Int32Array,
  length: number,
): Promise<{ genPpl: number; nll: number }> {
  const blocks: Blocks = {
    data: Uint32Array.from(tokens),
    count: tokens.length / length,
    length,
  };
  const { nats } = await arNll(judge, blocks);
  return { genPpl: Math.exp(nats), nll: nats };
}

/** Options of {@linkcode infill}. */
export interface InfillOptions {
  /** Fraction of tokens to hide, in (0, 1). */
  fraction: number;
  /** The mask id. */
  maskId: number;
  /** The schedule the sampler follows. */
  schedule: DiscreteSchedule;
  /** Denoising steps. */
  steps: number;
  /** Randomness: which tokens are hidden, and the sampler's draws. */
  prng: Prng;
  /** Blocks to use (default 16). */
  maxBlocks?: number;
  /** Ids never drawn besides the mask. */
  suppress?: number[];
}

/**
 * Hide a fraction of the tokens of each block, fill them with the sampler,
 * and report exact-match accuracy on the hidden tokens and their NLL
 * (`−log p̃(x_0 | visible tokens)` in one pass, nats per hidden token).
 *
 * @param model A denoiser.
 * @param blocks Test blocks.
 * @param options Fraction, sampler and PRNG.
 * @returns Accuracy, NLL and the count of hidden tokens.
 */
export async function infill(
  model: Denoiser,
  blocks: Blocks,
  options: InfillOptions,
): Promise<{ accuracy: number; nll: number; hidden: number }> {
  const { fraction, maskId, prng } = options;
  if (!(fraction > 0 && fraction < 1)) {
    throw new RangeError(`infill: fraction must be in (0, 1), got ${fraction}`);
  }
  const n = Math.min(blocks.count, options.maxBlocks ?? 16);
  const l = blocks.length;
  const x0 = Int32Array.from(blocks.data.subarray(0, n * l));
  const prompt = x0.slice();
  for (let i = 0; i < prompt.length; i++) {
    if (prng.next() < fraction) prompt[i] = maskId;
  }
  const hidden = prompt.reduce((s, x) => s + (x === maskId ? 1 : 0), 0);
  // The time at which this fraction is masked: alphaBar(t) = 1 − fraction.
  const T = options.schedule.steps;
  let t = T;
  while (t > 0 && options.schedule.alphaBar(t - 1) <= 1 - fraction) t--;
  const ce = tf.tidy(() => {
    const logits = model.forward(tf.tensor2d(prompt, [n, l], "int32"), {
      t: tf.fill([n], t / T) as Tensor1D,
      training: false,
    });
    return subsCrossEntropy(logits, x0, prompt, maskId).sum();
  });
  const nll = (await ce.data())[0] / Math.max(hidden, 1);
  ce.dispose();
  const filled = await sample(model, {
    schedule: options.schedule,
    maskId,
    prng,
    prompt,
    batchSize: n,
    steps: Math.min(options.steps, T),
    suppress: options.suppress,
  });
  let right = 0;
  for (let i = 0; i < prompt.length; i++) {
    if (prompt[i] === maskId && filled.tokens[i] === x0[i]) right++;
  }
  return { accuracy: right / Math.max(hidden, 1), nll, hidden };
}
