/**
 * Softmax cross-entropy with per-token weights over a chunk of logits rows
 * (the chunked, tied LM head), as the WebGPU engine's kernel.
 *
 * @module
 */

import type { CpuKernels } from "./kernels.ts";
import { dim, runtimeOf } from "./_runtime.ts";

/** Options of {@linkcode crossEntropy}. */
export interface CrossEntropyOptions {
  /** Rows of the chunk. */
  rows: number;
  /** Vocabulary (row length). */
  vocab: number;
  /** logits [rows, V], overwritten by their gradient. */
  logits: Float32Array;
  /** targets [rows]; < 0 (or ≥ V) is ignored. */
  targets: Int32Array;
  /** weights [rows]; 0 is ignored. */
  weights: Float32Array;
  /** Per-row loss [rows], written. */
  loss: Float32Array;
  /** A column left out of the softmax (the mask id), or none. */
  exclude?: number | null;
}

/**
 * Per row: `loss = w·(lse − logit[target])`, and the logits become their
 * gradient `w·(softmax − onehot)`; an ignored row gets 0 loss and 0
 * gradient, an excluded column probability 0 and gradient 0. Rows are split
 * over the threads.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape and views.
 *
 * @example Uniform logits cost log V
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { createCpuKernels, crossEntropy } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 64, threads: 1 });
 * const logits = k.floats(4), targets = k.ints(1), weights = k.floats(1), loss = k.floats(1);
 * targets[0] = 2;
 * weights[0] = 1;
 * crossEntropy(k, { rows: 1, vocab: 4, logits, targets, weights, loss });
 * assertAlmostEquals(loss[0], Math.log(4), 1e-6);
 * assertAlmostEquals(logits[2], 0.25 - 1, 1e-6);
 * k.dispose();
 * ```
 */
export function crossEntropy(
  kernels: CpuKernels,
  o: CrossEntropyOptions,
): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot run crossEntropy";
  const rows = dim(o.rows, "rows", what), V = dim(o.vocab, "vocab", what);
  const exclude = o.exclude ?? null;
  if (exclude !== null && !(Number.isInteger(exclude) && exclude >= 0)) {
    throw new RangeError(
      `${what}: exclude must be a token id ≥ 0 or null, got ${exclude}`,
    );
  }
  rt.run(
    "cross_entropy",
    rows,
    [
      V,
      rt.ptr(o.logits, rows * V, `${what}: logits`),
      rt.ptr(o.targets, rows, `${what}: targets`),
      rt.ptr(o.weights, rows, `${what}: weights`),
      rt.ptr(o.loss, rows, `${what}: loss`),
      exclude === null || exclude >= V ? 0xffffffff : exclude,
    ],
    8 * rows * V,
    1,
    [1, 1, rows],
  );
}
