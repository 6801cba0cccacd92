/**
 * Generation and its speed, as the thesis measures it: generate a number of
 * tokens at a batch size and report batches/s and tokens/s.
 *
 * @module
 */
import type { Prng, Tensor2D, Tensor3D } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  type Denoiser,
  type DiscreteSchedule,
  sample,
  sampleCategorical,
  tokenProbabilities,
} from "@d3pm/diffusion";

/** A causal model that decodes incrementally with a KV cache. */
export interface CausalLM extends Denoiser {
  /** An empty cache for `batchSize` rows. */
  createCache(batchSize: number): { dispose(): void };
  /** Logits for `tokens` placed after the cached ones. */
  decode(tokens: Tensor2D, cache: { dispose(): void }): Tensor3D;
}

/** Options of {@linkcode generateAr}. */
export interface ArGenerateOptions {
  /** Rows. */
  batchSize: number;
  /** Tokens per row, the first one included. */
  length: number;
  /** The first token of every row (e.g. BOS). */
  start: number;
  /** Randomness (draws in float64). */
  prng: Prng;
  /** Softmax temperature (default 1). */
  temperature?: number;
  /** Nucleus (default 1). */
  topP?: number;
  /** Ids never drawn (e.g. pad, mask). */
  suppress?: number[];
}

/**
 * Sample from a causal model token by token with its KV cache.
 *
 * @param model The causal model.
 * @param options Sizes, start token, PRNG and sampling options.
 * @returns `batchSize × length` ids, row-major.
 */
export async function generateAr(
  model: CausalLM,
  options: ArGenerateOptions,
): Promise<Int32Array> {
  const { batchSize: b, length: l, prng } = options;
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

/** Generation speed. */
export interface SpeedFigures {
  /** Batches generated per second. */
  batchesPerSecond: number;
  /** Tokens generated per second. */
  tokensPerSecond: number;
  /** Batches generated. */
  batches: number;
  /** Tokens generated. */
  tokens: number;
  /** Seconds taken. */
  seconds: number;
  /** Denoising steps per batch (diffusion only). */
  steps?: number;
  /** Forward passes per batch (diffusion: at most `steps`). */
  forwardPassesPerBatch?: number;
}

/**
 * Time a generator: call it until `totalTokens` are generated (batches of
 * `batchSize × length`), after one untimed warm-up batch.
 *
 * @param generate Makes one batch; returns its forward passes when known.
 * @param options Tokens to generate and the batch shape.
 * @returns Batches/s and tokens/s.
 */
export async function measureSpeed(
  generate: () => Promise<number | void>,
  options: { totalTokens: number; batchSize: number; length: number },
): Promise<SpeedFigures> {
  const perBatch = options.batchSize * options.length;
  const batches = Math.max(1, Math.ceil(options.totalTokens / perBatch));
  await generate();
  let passes = 0;
  const start = performance.now();
  for (let i = 0; i < batches; i++) passes += (await generate()) ?? 0;
  const seconds = (performance.now() - start) / 1000;
  return {
    batchesPerSecond: batches / seconds,
    tokensPerSecond: (batches * perBatch) / seconds,
    batches,
    tokens: batches * perBatch,
    seconds,
    ...(passes > 0 ? { forwardPassesPerBatch: passes / batches } : {}),
  };
}

/** Options of {@linkcode generateDiffusion}. */
export interface DiffusionGenerateOptions {
  /** The discrete schedule (T). */
  schedule: DiscreteSchedule;
  /** The mask id. */
  maskId: number;
  /** Denoising steps (≤ T). */
  steps: number;
  /** Rows. */
  batchSize: number;
  /** Tokens per row. */
  length: number;
  /** Randomness. */
  prng: Prng;
  /** Ids never drawn besides the mask. */
  suppress?: number[];
  /** Skip the network when nothing changed (time-independent models). */
  cache?: boolean;
}

/**
 * One batch from a masked-diffusion denoiser (ancestral sampling).
 *
 * @param model The denoiser.
 * @param options Schedule, steps, sizes, PRNG.
 * @returns The ids and the forward passes made.
 */
export async function generateDiffusion(
  model: Denoiser,
  options: DiffusionGenerateOptions,
): Promise<{ tokens: Int32Array; forwardPasses: number }> {
  return await sample(model, options);
}
