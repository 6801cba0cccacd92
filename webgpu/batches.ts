/**
 * Building the engine's {@linkcode TrainBatch} (inputs, targets, per-token
 * weights) for the project's two objectives, so that the loss the engine sums
 * on the GPU is exactly the tfjs loss: `causalLmLoss` (mean next-token
 * cross-entropy) and MDLM's weighted masked cross-entropy (`mdlmLoss`, given
 * the noised tokens and row weights it samples).
 *
 * @module
 */

import type { TrainBatch } from "./engine.ts";

function checkShape(
  what: string,
  tokens: Int32Array,
  batchSize: number,
  length: number,
): void {
  if (
    !Number.isInteger(batchSize) || !Number.isInteger(length) ||
    batchSize < 1 || length < 1 || tokens.length !== batchSize * length
  ) {
    throw new RangeError(
      `${what}: expected batchSize × length = ${batchSize} × ${length} ids, got ${tokens.length}`,
    );
  }
}

/**
 * The causal objective of `causalLmLoss` on blocks of `length` ids: the
 * engine (built with `length − 1`) reads positions `0..L−2` and predicts
 * `1..L−1`, each weighted `1 / (B·(L−1))`, so the step's loss is the mean.
 *
 * @param blocks `batchSize × length` ids, row-major.
 * @param batchSize Rows.
 * @param length Ids per row (≥ 2).
 * @returns The batch for an engine of shape [batchSize, length − 1].
 *
 * @example
 * ```ts
 * import { causalBatch } from "@d3pm/webgpu";
 * import { assertEquals } from "@std/assert";
 * const b = causalBatch(Int32Array.of(1, 2, 3, 4, 5, 6), 2, 3);
 * assertEquals([...b.inputs], [1, 2, 4, 5]);
 * assertEquals([...b.targets], [2, 3, 5, 6]);
 * assertEquals(b.weights[0], 0.25);
 * ```
 */
export function causalBatch(
  blocks: Int32Array,
  batchSize: number,
  length: number,
): TrainBatch {
  checkShape("causalBatch", blocks, batchSize, length);
  if (length < 2) {
    throw new RangeError(`causalBatch: length must be ≥ 2, got ${length}`);
  }
  const t = length - 1, n = batchSize * t;
  const inputs = new Int32Array(n), targets = new Int32Array(n);
  for (let b = 0; b < batchSize; b++) {
    for (let i = 0; i < t; i++) {
      inputs[b * t + i] = blocks[b * length + i];
      targets[b * t + i] = blocks[b * length + i + 1];
    }
  }
  return { inputs, targets, weights: new Float32Array(n).fill(1 / n) };
}

/** Options of {@linkcode maskedBatch}. */
export interface MaskedBatchOptions {
  /** The mask id (build the engine with `excludeToken: maskId`). */
  maskId: number;
  /** Per-row weight, e.g. MDLM's `−α′(t)/(1 − α(t))` (1/t for log-linear). */
  rowWeight: ArrayLike<number>;
  /** Padding id: such tokens are never counted. */
  padId?: number;
}

/**
 * MDLM's objective for given noised tokens: the cost of masked positions
 * only, weighted by their row's weight, averaged over all non-padding tokens
 * (the value of `mdlmLoss` for the same `x_t` and times).
 *
 * @param x0 Clean ids, `batchSize × length`.
 * @param xt Noised ids (the mask id where masked), same shape.
 * @param batchSize Rows.
 * @param options Mask id, row weights, padding id.
 * @returns The batch: inputs `xt`, targets `x0` where masked (−1 elsewhere).
 *
 * @example
 * ```ts
 * import { maskedBatch } from "@d3pm/webgpu";
 * import { assertEquals } from "@std/assert";
 * const b = maskedBatch(Int32Array.of(5, 6, 7, 8), Int32Array.of(9, 6, 9, 9), 2, {
 *   maskId: 9, rowWeight: [2, 4],
 * });
 * assertEquals([...b.targets], [5, -1, 7, 8]);
 * assertEquals([...b.weights], [0.5, 0, 1, 1]);
 * ```
 */
export function maskedBatch(
  x0: Int32Array,
  xt: Int32Array,
  batchSize: number,
  options: MaskedBatchOptions,
): TrainBatch {
  const length = x0.length / batchSize;
  checkShape("maskedBatch", x0, batchSize, length);
  checkShape("maskedBatch", xt, batchSize, length);
  const { maskId, rowWeight, padId } = options;
  if (rowWeight.length !== batchSize) {
    throw new RangeError(
      `maskedBatch: rowWeight must hold ${batchSize} values, got ${rowWeight.length}`,
    );
  }
  let count = 0;
  for (let i = 0; i < x0.length; i++) if (x0[i] !== padId) count++;
  const scale = 1 / Math.max(count, 1);
  const targets = new Int32Array(x0.length),
    weights = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) {
    const live = xt[i] === maskId && x0[i] !== padId;
    targets[i] = live ? x0[i] : -1;
    weights[i] = live ? rowWeight[Math.floor(i / length)] * scale : 0;
  }
  return { inputs: Int32Array.from(xt), targets, weights };
}
