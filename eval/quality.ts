/**
 * Sample quality: generative perplexity under a judge model, always with the
 * samples' entropy (low-entropy, repetitive text fools generative
 * perplexity).
 *
 * @module
 */
import type { NllEstimate, TokenBatch } from "@d3pm/core";
import { overBlocks } from "./nll.ts";

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
