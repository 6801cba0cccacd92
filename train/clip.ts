/**
 * Gradient clipping by global norm.
 *
 * @module
 */
import type { Tensor } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";

/**
 * Scale all gradients together so that their global L2 norm is at most
 * `maxNorm`. Returns new tensors (the caller disposes both sets) and the norm
 * before clipping.
 *
 * @param grads Gradients by name.
 * @param maxNorm Largest allowed norm (> 0).
 * @returns The clipped gradients and the original norm.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { clipByGlobalNorm } from "@d3pm/train";
 * import { assertAlmostEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const { grads, norm } = await clipByGlobalNorm(new Map([["a", tf.tensor1d([3, 4])]]), 1);
 * assertAlmostEquals(norm, 5, 1e-6);
 * assertAlmostEquals(grads.get("a")!.dataSync()[1], 0.8, 1e-6);
 * ```
 */
export async function clipByGlobalNorm(
  grads: ReadonlyMap<string, Tensor>,
  maxNorm: number,
): Promise<{ grads: Map<string, Tensor>; norm: number }> {
  if (!(maxNorm > 0)) {
    throw new RangeError(
      `clipByGlobalNorm: maxNorm must be > 0, got ${maxNorm}`,
    );
  }
  if (grads.size === 0) {
    throw new RangeError(
      "clipByGlobalNorm: no gradients given; pass at least one",
    );
  }
  const sq = tf.tidy(() =>
    tf.addN([...grads.values()].map((g) => g.square().sum()))
  );
  const norm = Math.sqrt((await sq.data())[0]);
  sq.dispose();
  const scale = Number.isFinite(norm) && norm > maxNorm ? maxNorm / norm : 1;
  const out = new Map<string, Tensor>();
  for (const [k, g] of grads) {
    out.set(k, tf.tidy(() => (scale === 1 ? g.clone() : g.mul(scale))));
  }
  return { grads: out, norm };
}
