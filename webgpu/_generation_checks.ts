// The checks of a generation's options that do not depend on the executor:
// the draw settings, the suppress list and a masked generation's options.
// Both engines call them with their own `fail` (the error names the engine).
// Private; exported to other executors by plan.ts.

import type { MaskedGenerationOptions } from "@d3pm/core";
import type { ModelConfig } from "@d3pm/transformer/init";
import { MAX_SUPPRESS } from "./_decode.ts";

/** Throws a one-line error naming the engine. */
export type Fail = (message: string) => never;

/** Temperature (0: greedy), top-k (0: off), top-p and the seed of a generation. */
export interface DrawSettings {
  /** The softmax temperature (0: greedy). */
  temperature: number;
  /** Draw among the k likeliest ids (0: off). */
  topK: number;
  /** Draw among the likeliest ids holding this mass (1: off). */
  topP: number;
  /** The seed of the generation's draws (a u32). */
  seed: number;
}

/**
 * The draw settings of a generation's options, checked (defaults:
 * temperature 1, top-k 0, top-p 1).
 *
 * @param o The generation's options.
 * @param fail Throws the engine's one-line error.
 * @returns The settings, defaults filled in.
 *
 * @example
 * ```ts
 * import { checkDraw } from "@d3pm/webgpu/plan";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const fail = (message: string): never => {
 *   throw new RangeError(message);
 * };
 * assertEquals(checkDraw({ seed: 7 }, fail), {
 *   temperature: 1,
 *   topK: 0,
 *   topP: 1,
 *   seed: 7,
 * });
 * assertThrows(() => checkDraw({ topP: 0, seed: 7 }, fail), RangeError, "topP");
 * ```
 */
export function checkDraw(o: {
  temperature?: number;
  topK?: number;
  topP?: number;
  seed: number;
}, fail: Fail): DrawSettings {
  const temperature = o.temperature ?? 1;
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  if (!(temperature >= 0 && Number.isFinite(temperature))) {
    fail(`temperature must be ≥ 0 (0: greedy), got ${temperature}`);
  }
  if (!(Number.isInteger(topK) && topK >= 0)) {
    fail(`topK must be an integer ≥ 0 (0: off), got ${topK}`);
  }
  if (!(topP > 0 && topP <= 1)) fail(`topP must be in (0, 1], got ${topP}`);
  if (!(Number.isInteger(o.seed) && o.seed >= 0 && o.seed < 2 ** 32)) {
    fail(`seed must be a u32, got ${o.seed}`);
  }
  return { temperature, topK, topP, seed: o.seed };
}

/**
 * The distinct ids of a suppress list (at most 8 token ids), checked.
 *
 * @param vocab V: ids must lie in [0, V).
 * @param ids The ids never to draw.
 * @param fail Throws the engine's one-line error.
 * @returns The distinct ids, in first-seen order.
 *
 * @example
 * ```ts
 * import { checkSuppress } from "@d3pm/webgpu/plan";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const fail = (message: string): never => {
 *   throw new RangeError(message);
 * };
 * assertEquals(checkSuppress(16, [3, 3, 15], fail), [3, 15]);
 * assertThrows(() => checkSuppress(16, [16], fail), RangeError, "[0, 16)");
 * ```
 */
export function checkSuppress(
  vocab: number,
  ids: readonly number[],
  fail: Fail,
): number[] {
  const unique = [...new Set(ids)];
  if (unique.length > MAX_SUPPRESS) {
    fail(`suppress holds at most ${MAX_SUPPRESS} ids, got ${unique.length}`);
  }
  for (const id of unique) {
    if (!(Number.isInteger(id) && id >= 0 && id < vocab)) {
      fail(`suppress ids must be token ids in [0, ${vocab}), got ${id}`);
    }
  }
  return unique;
}

/**
 * A masked generation's options, checked against the model and the
 * executor's limits (`maxBatch` undefined: none): its draw settings, block
 * length and suppress list (the mask id first). The prompt's ids are the
 * caller's to check (against its vocabulary).
 *
 * @param c The model's configuration (bidirectional).
 * @param o The generation's options.
 * @param limits The executor's largest batch and length.
 * @param fail Throws the engine's one-line error.
 * @returns The draw settings, the block length and the ids never drawn.
 *
 * @example
 * ```ts
 * import { checkMasked } from "@d3pm/webgpu/plan";
 * import { preset } from "@d3pm/transformer";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const fail = (message: string): never => {
 *   throw new RangeError(message);
 * };
 * const c = preset("micro", { vocabSize: 16, contextLength: 8, kind: "bidirectional" });
 * const o = {
 *   batchSize: 2,
 *   length: 8,
 *   maskId: 15,
 *   steps: [{ t: 1, reveal: 1 }],
 *   strategy: "ancestral" as const,
 *   cache: true,
 *   seed: 0,
 * };
 * const checked = checkMasked(c, o, { maxLength: 8 }, fail);
 * assertEquals([checked.blockLength, checked.suppress], [8, [15]]);
 * assertThrows(
 *   () => checkMasked(c, { ...o, length: 9 }, { maxLength: 8 }, fail),
 *   RangeError,
 *   "length must be an integer in [1, 8], got 9",
 * );
 * ```
 */
export function checkMasked(
  c: ModelConfig,
  o: MaskedGenerationOptions,
  limits: { maxBatch?: number; maxLength: number },
  fail: Fail,
): { draw: DrawSettings; blockLength: number; suppress: number[] } {
  const { batchSize: b, length: l, maskId } = o;
  if (c.kind !== "bidirectional") {
    fail("generateMasked needs a bidirectional model");
  }
  const { maxBatch, maxLength } = limits;
  if (
    !Number.isInteger(b) || b < 1 || (maxBatch !== undefined && b > maxBatch)
  ) {
    fail(
      maxBatch === undefined
        ? `batchSize must be an integer ≥ 1, got ${b}`
        : `batchSize must be an integer in [1, ${maxBatch}], got ${b}`,
    );
  }
  if (!Number.isInteger(l) || l < 1 || l > maxLength) {
    fail(`length must be an integer in [1, ${maxLength}], got ${l}`);
  }
  if (!(Number.isInteger(maskId) && maskId >= 0 && maskId < c.vocabSize)) {
    fail(`maskId must be a token id in [0, ${c.vocabSize}), got ${maskId}`);
  }
  if (o.steps.length < 1) fail("steps must hold at least one step");
  o.steps.forEach(({ t, reveal }, k) => {
    if (!(t >= 0 && t <= 1) || !(reveal >= 0 && reveal <= 1)) {
      fail(
        `steps[${k}] needs t and reveal in [0, 1], got t ${t}, reveal ${reveal}`,
      );
    }
  });
  const blockLength = o.blockLength ?? l;
  if (!Number.isInteger(blockLength) || blockLength < 1) {
    fail(`blockLength must be a positive integer, got ${blockLength}`);
  }
  if (o.strategy !== "ancestral" && o.strategy !== "confidence") {
    fail(
      `strategy must be "ancestral" or "confidence", got ${
        JSON.stringify(o.strategy)
      }`,
    );
  }
  if (o.cache && c.timeConditioning) {
    fail(
      "cannot cache logits: the model is time-conditioned (its logits change with t even when no token does)",
    );
  }
  const draw = checkDraw(o, fail);
  if (draw.temperature === 0) {
    fail("temperature must be > 0 for masked sampling");
  }
  if (o.prompt !== undefined && o.prompt.length !== b * l) {
    fail(`prompt must hold B·L = ${b * l} ids, got ${o.prompt.length}`);
  }
  const suppress = checkSuppress(
    c.vocabSize,
    [maskId, ...(o.suppress ?? [])],
    fail,
  );
  return { draw, blockLength, suppress };
}
