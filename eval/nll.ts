/**
 * Likelihood over many blocks, model- and process-agnostic: one loop that
 * scores blocks in batches and combines the estimates, and the conversions
 * between nats, bits per token, perplexity and bits per byte.
 *
 * @module
 */
import type { NllEstimate, TokenBatch } from "@d3pm/core";
import type { Blocks } from "@d3pm/data";
import { checkNonNegative, checkPositive } from "./_check.ts";

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
 * @throws {RangeError} For an nll or token count that is not a finite number
 *   ≥ 0 (a perplexity below 1, or null in JSON), bytes per token that are
 *   not > 0, or a negative stderr.
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
  checkNonNegative(nll, "figures: nll (nats per token)");
  checkNonNegative(options.tokens, "figures: tokens");
  if (options.bytesPerToken !== undefined) {
    checkPositive(options.bytesPerToken, "figures: bytesPerToken");
  }
  if (options.stderr !== undefined && options.stderr < 0) {
    throw new RangeError(
      `figures: stderr must be ≥ 0 (or NaN: not measured), got ${options.stderr}`,
    );
  }
  const bpt = nll / Math.LN2;
  return {
    nll,
    bpt,
    ppl: Math.exp(nll),
    ...(options.bytesPerToken !== undefined
      ? { bpb: bpt / options.bytesPerToken }
      : {}),
    ...(options.stderr !== undefined ? { stderr: options.stderr } : {}),
    bound: options.bound ?? false,
    tokens: options.tokens,
  };
}

/** Options of {@linkcode overBlocks}. */
export interface OverBlocksOptions {
  /** Blocks per scored batch (default 8). */
  batchSize?: number;
  /** Score only the first this many blocks (default all). */
  maxBlocks?: number;
  /** Called with blocks done and total. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Score blocks batch by batch and combine the per-batch estimates into one:
 * nats per token weighted by each batch's tokens, standard errors combined
 * as independent (NaN if any batch could not measure its own).
 *
 * @param blocks The blocks.
 * @param scoreBatch Scores one batch (e.g. `(x0) => process.score(model, x0, { prng })`).
 * @param options Batch size, subset, progress.
 * @returns The estimate over all blocks scored.
 * @throws {RangeError} For a batchSize or maxBlocks that is not a positive
 *   integer, no blocks to score, fewer ids than the blocks need, a
 *   scorer's nats or tokens that are not finite numbers ≥ 0, or no token
 *   scored in them (all padding).
 *
 * @example
 * ```ts
 * import { overBlocks } from "@d3pm/eval";
 * import { assertEquals } from "@std/assert";
 * const blocks = { data: new Uint32Array(5 * 4), count: 5, length: 4 };
 * // A scorer that charges each token as many nats as its batch has rows.
 * const est = await overBlocks(blocks, (x0) =>
 *   Promise.resolve({
 *     nats: x0.batchSize,
 *     stderr: 0,
 *     tokens: x0.batchSize * x0.length,
 *   }), { batchSize: 2 });
 * assertEquals(est.tokens, 20); // batches of 2, 2 and 1 rows
 * assertEquals(est.nats, (8 * 2 + 8 * 2 + 4 * 1) / 20);
 * ```
 */
export async function overBlocks(
  blocks: Blocks,
  scoreBatch: (x0: TokenBatch) => Promise<NllEstimate>,
  options: OverBlocksOptions = {},
): Promise<NllEstimate> {
  const b = options.batchSize ?? 8;
  if (!Number.isInteger(b) || b < 1) {
    throw new RangeError(
      `overBlocks: batchSize must be a positive integer, got ${b}`,
    );
  }
  const max = options.maxBlocks;
  if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
    throw new RangeError(
      `overBlocks: maxBlocks must be a positive integer, got ${max}`,
    );
  }
  const total = Math.min(blocks.count, max ?? blocks.count);
  if (!(total >= 1)) {
    // Else the mean of nothing came back as 0 nats: a perfect score.
    throw new RangeError(
      `overBlocks: no blocks to score (blocks.count ${blocks.count})`,
    );
  }
  const { data, length } = blocks;
  if (!(data.length >= blocks.count * length)) {
    // Else the last batches were short or empty rows under their shape.
    throw new RangeError(
      `overBlocks: ${blocks.count} blocks of ${length} need ${
        blocks.count * length
      } ids, the data has ${data.length}`,
    );
  }
  let sum = 0, tokens = 0, varSum = 0, known = true;
  for (let first = 0; first < total; first += b) {
    const n = Math.min(b, total - first);
    const est = await scoreBatch({
      tokens: Int32Array.from(
        data.subarray(first * length, (first + n) * length),
      ),
      batchSize: n,
      length,
    });
    const at = `overBlocks: the scorer's estimate of blocks ${first}–${
      first + n - 1
    }:`;
    checkNonNegative(est.nats, `${at} nats`);
    checkNonNegative(est.tokens, `${at} tokens`);
    sum += est.nats * est.tokens;
    tokens += est.tokens;
    if (Number.isFinite(est.stderr)) varSum += (est.stderr * est.tokens) ** 2;
    else known = false; // a batch of one row has no spread to measure
    options.onProgress?.(first + n, total);
  }
  if (!(tokens > 0)) {
    // Else 0 nats over 0 tokens came back: a perfect score (perplexity 1).
    throw new RangeError(
      `overBlocks: the ${total} blocks have no tokens (all padding): expected at least one scored token`,
    );
  }
  return {
    nats: sum / tokens,
    stderr: known ? Math.sqrt(varSum) / tokens : NaN,
    tokens,
  };
}
