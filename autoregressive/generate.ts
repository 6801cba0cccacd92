/**
 * Autoregressive generation with a KV cache: one cached step per token,
 * drawn in float64 with temperature, nucleus and suppressed ids.
 *
 * @module
 */
import {
  type CausalGenerator,
  type CausalLM,
  type DrawOptions,
  isCausalGenerator,
  type Prng,
  sampleCategorical,
  tokenProbabilities,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";

/** Options of {@linkcode generate}. */
export interface ArGenerateOptions extends DrawOptions {
  /** Rows. */
  batchSize: number;
  /** Tokens per row, the first one included. */
  length: number;
  /** The first token of every row (e.g. BOS). */
  start: number;
  /** Randomness (draws in float64). */
  prng: Prng;
}

/**
 * Generate `batchSize` rows of `length` tokens, each starting with `start`,
 * decoding one position at a time through the model's KV cache (disposed at
 * the end, also on errors).
 *
 * @param model A causal model with a cache.
 * @param options Shape, start token, randomness, draw shaping.
 * @returns The ids, `batchSize × length`, row-major.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import type { CausalLM, Tensor2D, Tensor3D } from "@d3pm/core";
 * import { prng } from "@d3pm/core";
 * import { generate } from "@d3pm/autoregressive";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * // Always predicts token 2 with near certainty.
 * const logits = (x: Tensor2D) =>
 *   tf.tidy(() => tf.oneHot(tf.fill(x.shape, 2, "int32"), 4).mul(50)) as Tensor3D;
 * const model: CausalLM = {
 *   config: { kind: "causal", vocabSize: 4, contextLength: 8 },
 *   timeConditioned: false,
 *   forward: logits,
 *   decode: logits,
 *   createCache: () => ({ length: 0, dispose() {} }),
 *   dispose() {},
 * };
 * const ids = await generate(model, { batchSize: 1, length: 4, start: 0, prng: prng(0) });
 * assertEquals(Array.from(ids), [0, 2, 2, 2]);
 * ```
 */
export async function generate(
  model: CausalLM | CausalGenerator,
  options: ArGenerateOptions,
): Promise<Int32Array> {
  const { batchSize: b, length: l, prng } = options;
  if (isCausalGenerator(model)) {
    // On the model's device: the draws come from its own streams, seeded
    // from this PRNG (one sync for the whole batch).
    const out = await model.generateCausal({
      batchSize: b,
      length: l,
      start: options.start,
      temperature: options.temperature ?? 1,
      topP: options.topP,
      suppress: options.suppress,
      seed: Math.floor(prng.next() * 2 ** 32) >>> 0,
    });
    return out.tokens;
  }
  const out = new Int32Array(b * l);
  for (let r = 0; r < b; r++) out[r * l] = options.start;
  const cache = model.createCache(b);
  try {
    let next = Int32Array.from({ length: b }, () => options.start);
    for (let i = 1; i < l; i++) {
      const logits = tf.tidy(() =>
        model.decode(tf.tensor2d(next, [b, 1], "int32"), cache)
      );
      const data = await logits.data();
      logits.dispose();
      const v = data.length / b;
      next = new Int32Array(b);
      for (let r = 0; r < b; r++) {
        const p = tokenProbabilities(
          data.subarray(r * v, (r + 1) * v),
          options,
        );
        next[r] = sampleCategorical(p, prng);
        out[r * l + i] = next[r];
      }
    }
  } finally {
    cache.dispose();
  }
  return out;
}
