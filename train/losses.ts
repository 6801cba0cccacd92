/**
 * The autoregressive objective.
 *
 * @module
 */
import type { Scalar, Tensor1D, Tensor2D, Tensor3D } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { sparseSoftmaxCrossEntropy } from "@d3pm/backend/fused-ops";

/** A model with the backbone call. */
export interface Backbone {
  /** Logits `[B, T, V]` for ids `[B, T]`. */
  forward(tokens: Tensor2D, options?: { training?: boolean }): Tensor3D;
}

/**
 * Mean next-token cross-entropy (nats per token) of a causal model on a batch
 * of blocks: positions `0..L−2` predict tokens `1..L−1`.
 *
 * @param model A causal model.
 * @param batch `batchSize × length` ids.
 * @param options `training` (dropout on; default true).
 * @returns The loss, a scalar tensor.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { causalLmLoss } from "@d3pm/train";
 * import { assertAlmostEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const uniform = { forward: (x: tf.Tensor2D) => tf.zeros([...x.shape, 10]) as tf.Tensor3D };
 * const loss = causalLmLoss(uniform, { tokens: Int32Array.of(1, 2, 3, 4), batchSize: 1, length: 4 });
 * assertAlmostEquals(loss.dataSync()[0], Math.log(10), 1e-5);
 * ```
 */
export function causalLmLoss(
  model: Backbone,
  batch: { tokens: Int32Array; batchSize: number; length: number },
  options: { training?: boolean } = {},
): Scalar {
  const { batchSize: b, length: l } = batch;
  if (batch.tokens.length !== b * l || l < 2) {
    throw new RangeError(
      `causalLmLoss: expected ${b} × ${l} ids (length ≥ 2), got ${batch.tokens.length}`,
    );
  }
  return tf.tidy(() => {
    const x = tf.tensor2d(batch.tokens, [b, l], "int32");
    const logits = model.forward(x.slice([0, 0], [b, l - 1]) as Tensor2D, {
      training: options.training ?? true,
    });
    const [, t, v] = logits.shape;
    const losses = sparseSoftmaxCrossEntropy(
      tf.reshape(logits, [b * t, v]) as Tensor2D,
      tf.reshape(x.slice([0, 1], [b, l - 1]), [-1]) as Tensor1D,
    ); // [B·(L−1)], one fused kernel each way on blas
    return tf.mean(losses) as Scalar;
  });
}
