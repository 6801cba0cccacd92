/**
 * Generation speed as the thesis measures it: generate a number of tokens
 * at a batch size and report batches/s and tokens/s.
 *
 * @module
 */

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
 *
 * @example
 * ```ts
 * import { measureSpeed } from "@d3pm/eval";
 * import { assertEquals } from "@std/assert";
 * let calls = 0;
 * const s = await measureSpeed(() => Promise.resolve(calls++ && 16), {
 *   totalTokens: 100, batchSize: 4, length: 10,
 * });
 * assertEquals([s.batches, s.tokens, calls], [3, 120, 4]); // one warm-up call
 * assertEquals(s.forwardPassesPerBatch, 16);
 * ```
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
