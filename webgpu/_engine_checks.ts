// The checks both engines make of their options, a training batch and the
// rows they score, written once: the WebGPU engine and `@d3pm/cpu` call them
// with their own `fail` (the error names the engine). Private; exported to
// other executors by plan.ts.

import type { ModelConfig } from "@d3pm/transformer/init";
import type { Fail } from "./_generation_checks.ts";

/** The training shape (0 × 0 when evaluation-only and not given). */
export interface EngineShape {
  /** Rows of a training batch. */
  batchSize: number;
  /** Tokens per row. */
  length: number;
}

/** The options every engine takes (each engine checks its own others). */
export interface CommonEngineOptions {
  /** Build for evaluation only: no gradients, optimiser or training plan. */
  evaluationOnly?: boolean;
  /** Rows of a training batch. */
  batchSize?: number;
  /** Tokens per row (at most the context). */
  length?: number;
  /** An id left out of the softmax (the mask). */
  excludeToken?: number;
  /** EMA of the weights (training engines only). */
  emaDecay?: number;
  /** Global gradient-norm clipping (Infinity: off). */
  clipNorm?: number;
}

/**
 * The options both engines share, checked against the config, in one
 * order, so both refuse the same input with the same words.
 *
 * @param c The model's configuration.
 * @param o The engine's options.
 * @param fail Throws the engine's one-line error.
 * @returns The training shape.
 *
 * @example
 * ```ts
 * import { checkEngineOptions } from "@d3pm/webgpu/plan";
 * import { preset } from "@d3pm/transformer";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const fail = (message: string): never => {
 *   throw new RangeError(message);
 * };
 * const c = preset("micro");
 * assertEquals(checkEngineOptions(c, { batchSize: 2, length: 8 }, fail), {
 *   batchSize: 2,
 *   length: 8,
 * });
 * assertEquals(checkEngineOptions(c, { evaluationOnly: true }, fail), {
 *   batchSize: 0,
 *   length: 0,
 * });
 * assertThrows(
 *   () => checkEngineOptions(c, { batchSize: 2, length: 8, emaDecay: 1 }, fail),
 *   RangeError,
 *   "emaDecay must be in [0, 1), got 1",
 * );
 * ```
 */
export function checkEngineOptions(
  c: ModelConfig,
  o: CommonEngineOptions,
  fail: Fail,
): EngineShape {
  const evaluationOnly = o.evaluationOnly ?? false;
  if (typeof evaluationOnly !== "boolean") {
    fail(`evaluationOnly must be true or false, got ${evaluationOnly}`);
  }
  const { batchSize, length } = o;
  if (!evaluationOnly || batchSize !== undefined) {
    if (!Number.isInteger(batchSize) || batchSize! < 1) {
      fail(`batchSize must be a positive integer, got ${batchSize}`);
    }
  }
  if (!evaluationOnly || length !== undefined) {
    if (!Number.isInteger(length) || length! < 1 || length! > c.contextLength) {
      fail(
        `length must be an integer in [1, ${c.contextLength}], got ${length}`,
      );
    }
  }
  if (c.shift) {
    // Its output 0 predicts two tokens; the fused step and scoring read
    // output i as position i only.
    fail(
      "shift (position i predicts token i + 1) is implemented on the tfjs model only, got shift: true",
    );
  }
  const ex = o.excludeToken;
  if (
    ex !== undefined && !(Number.isInteger(ex) && ex >= 0 && ex < c.vocabSize)
  ) {
    fail(`excludeToken must be an id in [0, ${c.vocabSize}), got ${ex}`);
  }
  if (o.emaDecay !== undefined && !(o.emaDecay >= 0 && o.emaDecay < 1)) {
    fail(`emaDecay must be in [0, 1), got ${o.emaDecay}`);
  }
  if (evaluationOnly && o.emaDecay !== undefined) {
    fail("emaDecay needs a training engine, but evaluationOnly is set");
  }
  if (o.clipNorm !== undefined && !(o.clipNorm > 0)) {
    fail(`clipNorm must be > 0 (Infinity: off), got ${o.clipNorm}`);
  }
  return { batchSize: batchSize ?? 0, length: length ?? 0 };
}

/**
 * Every id a token id in [0, vocab): integers, not NaN.
 *
 * @param ids The ids.
 * @param vocab The vocabulary's size.
 * @param what The argument's name in the error.
 * @param fail Throws the engine's one-line error.
 *
 * @example
 * ```ts
 * import { checkIds } from "@d3pm/webgpu/plan";
 * import { assertThrows } from "@std/assert";
 * const fail = (message: string): never => {
 *   throw new RangeError(message);
 * };
 * checkIds([0, 3], 4, "ids", fail);
 * assertThrows(
 *   () => checkIds([0, 1.5], 4, "ids", fail),
 *   RangeError,
 *   "ids[1] must be a token id in [0, 4), got 1.5",
 * );
 * ```
 */
export function checkIds(
  ids: ArrayLike<number>,
  vocab: number,
  what: string,
  fail: Fail,
): void {
  for (let i = 0; i < ids.length; i++) {
    const x = ids[i];
    if (!(Number.isInteger(x) && x >= 0 && x < vocab)) {
      fail(`${what}[${i}] must be a token id in [0, ${vocab}), got ${x}`);
    }
  }
}

/**
 * The dropout seed of training step `step`: the one given (a u32), or one
 * derived from the engine's seed and the step alone, so a resumed run draws
 * the masks of the run it continues.
 *
 * @param seed The engine's seed.
 * @param step The step (1-based).
 * @param given A seed given for this step, or undefined.
 * @param fail Throws the engine's one-line error.
 * @returns The step's seed, a u32.
 *
 * @example
 * ```ts
 * import { stepDropoutSeed } from "@d3pm/webgpu/plan";
 * import { assertEquals, assertNotEquals, assertThrows } from "@std/assert";
 * const fail = (message: string): never => {
 *   throw new RangeError(message);
 * };
 * assertEquals(stepDropoutSeed(0, 3, 9, fail), 9);
 * assertEquals(stepDropoutSeed(0, 3, undefined, fail), stepDropoutSeed(0, 3, undefined, fail));
 * assertNotEquals(stepDropoutSeed(0, 3, undefined, fail), stepDropoutSeed(0, 4, undefined, fail));
 * assertThrows(() => stepDropoutSeed(0, 3, -1, fail), RangeError, "dropoutSeed must be a u32, got -1");
 * ```
 */
export function stepDropoutSeed(
  seed: number,
  step: number,
  given: number | undefined,
  fail: Fail,
): number {
  if (
    given !== undefined &&
    !(Number.isInteger(given) && given >= 0 && given < 2 ** 32)
  ) {
    fail(`dropoutSeed must be a u32, got ${given}`);
  }
  return given ??
    ((Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) +
      Math.imul(step, 0xc2b2ae35)) >>> 0);
}

/**
 * A training batch for the fixed [B, T]: typed arrays of B·T values, input
 * ids in the vocabulary, targets below it (negative: ignored).
 *
 * @param batch The batch's ids, targets and weights.
 * @param shape Its rows and length.
 * @param vocab The vocabulary's size.
 * @param fail Throws the engine's one-line error.
 *
 * @example
 * ```ts
 * import { checkTrainBatch } from "@d3pm/webgpu/plan";
 * import { assertThrows } from "@std/assert";
 * const fail = (message: string): never => {
 *   throw new RangeError(message);
 * };
 * const ok = {
 *   inputs: Int32Array.from([0, 1]),
 *   targets: Int32Array.from([1, -1]),
 *   weights: new Float32Array(2),
 * };
 * checkTrainBatch(ok, { batch: 1, length: 2 }, 4, fail);
 * assertThrows(
 *   () => checkTrainBatch({ ...ok, targets: Int32Array.from([1, 4]) }, { batch: 1, length: 2 }, 4, fail),
 *   RangeError,
 *   "batch.targets[1] must be < 4 (negative: ignored), got 4",
 * );
 * ```
 */
export function checkTrainBatch(
  batch: { inputs: Int32Array; targets: Int32Array; weights: Float32Array },
  shape: { batch: number; length: number },
  vocab: number,
  fail: Fail,
): void {
  const n = shape.batch * shape.length;
  for (const key of ["inputs", "targets", "weights"] as const) {
    const arr = batch[key];
    const type = key === "weights" ? Float32Array : Int32Array;
    if (!(arr instanceof type)) {
      const got = (arr as unknown as object)?.constructor?.name ?? arr;
      fail(
        `batch.${key} must be ${
          key === "weights" ? "a" : "an"
        } ${type.name} of B·T values, got ${got}`,
      );
    }
    if (arr.length !== n) {
      fail(
        `batch.${key} must hold B·T = ${shape.batch}·${shape.length} = ${n} values, got ${arr.length}`,
      );
    }
  }
  checkIds(batch.inputs, vocab, "batch.inputs", fail);
  for (let i = 0; i < n; i++) {
    if (batch.targets[i] >= vocab) {
      fail(
        `batch.targets[${i}] must be < ${vocab} (negative: ignored), got ${
          batch.targets[i]
        }`,
      );
    }
  }
}

/**
 * Rows to score: rows × length within the context, inputs, targets and
 * weights of rows·length values each, ids in the vocabulary, targets below
 * it, and the excluded id (if any) an id.
 *
 * @param terms The rows.
 * @param maxLength The longest row scored (the context).
 * @param vocab The vocabulary's size.
 * @param what The call, for the error.
 * @param fail Throws the engine's one-line error.
 *
 * @example
 * ```ts
 * import { checkTerms } from "@d3pm/webgpu/plan";
 * import { assertThrows } from "@std/assert";
 * const fail = (message: string): never => {
 *   throw new RangeError(message);
 * };
 * const terms = {
 *   rows: 1,
 *   length: 2,
 *   inputs: Int32Array.from([0, 1]),
 *   targets: Int32Array.from([1, 2]),
 *   weights: new Float32Array(2),
 * };
 * checkTerms(terms, 8, 4, "score", fail);
 * assertThrows(
 *   () => checkTerms({ ...terms, length: 9 }, 8, 4, "score", fail),
 *   RangeError,
 *   "score needs rows ≥ 1 and 1 ≤ length ≤ 8, got 1 × 9",
 * );
 * ```
 */
export function checkTerms(
  terms: {
    rows: number;
    length: number;
    inputs: ArrayLike<number>;
    targets: ArrayLike<number>;
    weights: ArrayLike<number>;
    excludeToken?: number;
  },
  maxLength: number,
  vocab: number,
  what: string,
  fail: Fail,
): void {
  const { rows, length } = terms;
  if (
    !Number.isInteger(rows) || rows < 1 || !Number.isInteger(length) ||
    length < 1 || length > maxLength
  ) {
    fail(
      `${what} needs rows ≥ 1 and 1 ≤ length ≤ ${maxLength}, got ${rows} × ${length}`,
    );
  }
  const n = rows * length;
  for (const key of ["inputs", "targets", "weights"] as const) {
    if (terms[key].length !== n) {
      fail(
        `${what}: ${key} must hold rows·length = ${n} values, got ${
          terms[key].length
        }`,
      );
    }
  }
  checkIds(terms.inputs, vocab, `${what}: inputs`, fail);
  for (let i = 0; i < n; i++) {
    if (terms.targets[i] >= vocab) {
      fail(
        `${what}: targets[${i}] must be < ${vocab}, got ${terms.targets[i]}`,
      );
    }
  }
  const ex = terms.excludeToken;
  if (ex !== undefined && !(Number.isInteger(ex) && ex >= 0 && ex < vocab)) {
    fail(`${what}: excludeToken must be an id in [0, ${vocab}), got ${ex}`);
  }
}
