/**
 * Likelihood figures: exact AR NLL over blocks, the D3PM bound over blocks,
 * and the conversions between nats, bits per token, perplexity and bits per
 * byte.
 *
 * @module
 */
import type { Prng, Tensor2D } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import type { Blocks } from "@d3pm/data";
import {
  type BoundEstimate,
  continuousElbo,
  type ContinuousSchedule,
  type Denoiser,
  discreteElbo,
  type Transition,
} from "@d3pm/diffusion";

/** Nats per token and the figures derived from it. */
export interface LikelihoodFigures {
  /** Nats per token. */
  nll: number;
  /** Bits per token, `nll / ln 2`. */
  bpt: number;
  /** Perplexity, `e^nll`. */
  ppl: number;
  /** Bits per UTF-8 byte of text, when the bytes per token are known. */
  bpb?: number;
  /** Standard error of `nll` (Monte-Carlo bounds only). */
  stderr?: number;
  /** Whether the figures are upper bounds (diffusion ELBOs). */
  bound: boolean;
  /** Tokens evaluated. */
  tokens: number;
}

/**
 * Figures from nats per token.
 *
 * @param nll Nats per token.
 * @param options Bytes per token of the text, whether it is a bound, its
 * standard error and the token count.
 * @returns The figures.
 *
 * @example
 * ```ts
 * import { figures } from "@d3pm/eval";
 * import { assertAlmostEquals } from "@std/assert";
 * const f = figures(3.18, { tokens: 100 });
 * assertAlmostEquals(f.bpt, 4.588, 1e-3);
 * ```
 */
export function figures(
  nll: number,
  options: {
    bytesPerToken?: number;
    bound?: boolean;
    stderr?: number;
    tokens: number;
  },
): LikelihoodFigures {
  const bpt = nll / Math.LN2;
  return {
    nll,
    bpt,
    ppl: Math.exp(nll),
    ...(options.bytesPerToken ? { bpb: bpt / options.bytesPerToken } : {}),
    ...(options.stderr !== undefined ? { stderr: options.stderr } : {}),
    bound: options.bound ?? false,
    tokens: options.tokens,
  };
}

/** A model with the backbone call (causal for {@linkcode arNll}). */
export type Backbone = Denoiser;

function blockBatch(blocks: Blocks, first: number, count: number): Int32Array {
  const { data, length } = blocks;
  return Int32Array.from(
    data.subarray(first * length, (first + count) * length),
  );
}

/** Options shared by the evaluators. */
export interface EvalOptions {
  /** Blocks per forward pass (default 8). */
  batchSize?: number;
  /** Evaluate only the first this many blocks (default all). */
  maxBlocks?: number;
  /** Padding id: never counted. */
  padId?: number;
  /** Called with blocks done and total. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Exact NLL of a causal model: every block predicts its tokens 2..L from
 * the ones before (the first token of a block has no context and is not
 * scored), in nats per predicted token.
 *
 * @param model A causal model.
 * @param blocks Evaluation blocks.
 * @param options Batch size, subset, padding.
 * @returns Summed nats and the tokens scored.
 */
export async function arNll(
  model: Backbone,
  blocks: Blocks,
  options: EvalOptions = {},
): Promise<{ nats: number; tokens: number }> {
  const b = options.batchSize ?? 8;
  const total = Math.min(blocks.count, options.maxBlocks ?? blocks.count);
  const l = blocks.length;
  let nats = 0, tokens = 0;
  for (let first = 0; first < total; first += b) {
    const n = Math.min(b, total - first);
    const ids = blockBatch(blocks, first, n);
    const weights = new Float32Array(n * (l - 1));
    for (let r = 0; r < n; r++) {
      for (let i = 1; i < l; i++) {
        weights[r * (l - 1) + i - 1] = ids[r * l + i] === options.padId ? 0 : 1;
      }
    }
    const sum = tf.tidy(() => {
      const x = tf.tensor2d(ids, [n, l], "int32");
      const logits = model.forward(x.slice([0, 0], [n, l - 1]) as Tensor2D, {
        training: false,
      });
      const logp = tf.logSoftmax(logits); // [n, L−1, V]
      const target = tf.oneHot(x.slice([0, 1], [n, l - 1]), logits.shape[2]);
      return logp.mul(target).sum(-1).mul(tf.tensor2d(weights, [n, l - 1]))
        .sum().neg();
    });
    nats += (await sum.data())[0];
    sum.dispose();
    tokens += weights.reduce((s, w) => s + w, 0);
    options.onProgress?.(first + n, total);
  }
  return { nats: nats / Math.max(tokens, 1), tokens };
}

/** Options of {@linkcode diffusionBound}. */
export type BoundOptions =
  & EvalOptions
  & { prng: Prng }
  & (
    | {
      kind: "continuous";
      schedule: ContinuousSchedule;
      maskId: number;
      samples?: number;
    }
    | { kind: "discrete"; transition: Transition }
  );

/**
 * The diffusion ELBO over blocks: the Monte-Carlo continuous-time bound, or
 * the exact discrete-time bound (all `T` steps; `T` forward passes per batch
 * of blocks). In nats per token, an upper bound on NLL, with its standard
 * error.
 *
 * @param model A denoiser.
 * @param blocks Evaluation blocks.
 * @param options Which bound, its process, the PRNG, and the subset.
 * @returns The bound over all blocks evaluated.
 */
export async function diffusionBound(
  model: Denoiser,
  blocks: Blocks,
  options: BoundOptions,
): Promise<BoundEstimate> {
  const b = options.batchSize ?? 8;
  const total = Math.min(blocks.count, options.maxBlocks ?? blocks.count);
  let sum = 0, tokens = 0, varSum = 0, known = true;
  for (let first = 0; first < total; first += b) {
    const n = Math.min(b, total - first);
    const x0 = {
      tokens: blockBatch(blocks, first, n),
      batchSize: n,
      length: blocks.length,
    };
    const est = options.kind === "continuous"
      ? await continuousElbo(model, x0, {
        schedule: options.schedule,
        maskId: options.maskId,
        prng: options.prng,
        samples: options.samples,
        padId: options.padId,
      })
      : await discreteElbo(model, x0, {
        transition: options.transition,
        prng: options.prng,
        padId: options.padId,
      });
    sum += est.nats * est.tokens;
    tokens += est.tokens;
    if (Number.isFinite(est.stderr)) varSum += (est.stderr * est.tokens) ** 2;
    else known = false; // a batch of one row has no spread to measure
    options.onProgress?.(first + n, total);
  }
  return {
    nats: sum / tokens,
    stderr: known ? Math.sqrt(varSum) / tokens : NaN,
    tokens,
  };
}
