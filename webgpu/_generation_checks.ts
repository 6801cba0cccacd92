// The checks of a generation's options that do not depend on the executor:
// the draw settings, the suppress list and a masked generation's options.
// Both engines call them with their own `fail` (the error names the engine).
// Private; exported to other executors by plan.ts.

import type { MaskedGenerationOptions } from "@d3pm/core";
import type { ModelConfig } from "@d3pm/transformer";
import { MAX_SUPPRESS } from "./_decode.ts";

/** Throws a one-line error naming the engine. */
export type Fail = (message: string) => never;

/** Temperature (0: greedy), top-k (0: off), top-p and the seed of a generation. */
export interface DrawSettings {
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
}

/** The draw settings of a generation's options, checked. */
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

/** The distinct ids of a suppress list (at most MAX_SUPPRESS token ids), checked. */
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
