// Small differentiable building blocks shared by the model and the KV-cache
// decoder. Private: shapes are trusted, callers validate.

import * as tf from "@tensorflow/tfjs";
import {
  gelu as fusedGelu,
  layerNorm as fusedLayerNorm,
} from "@d3pm/backend/fused-ops";

/**
 * LayerNorm over the last axis with GPT-2's epsilon (one fused kernel each
 * way on the blas backend, tfjs ops elsewhere).
 */
export function layerNorm(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor,
): tf.Tensor {
  return fusedLayerNorm(x, { weight, bias, epsilon: 1e-5 });
}

/** GELU, tanh approximation (GPT-2's `gelu_new`); fused on blas. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return fusedGelu(x);
}

/** `x @ weight + bias` on the last axis; x is [..., in], weight [in, out]. */
export function linear(
  x: tf.Tensor,
  weight: tf.Tensor2D,
  bias: tf.Tensor1D,
): tf.Tensor {
  return tf.tidy(() => {
    const shape = x.shape;
    const inDim = shape[shape.length - 1];
    const x2 = tf.reshape(x, [-1, inDim]) as tf.Tensor2D; // [N, in]
    // The fused kernel adds the bias in the same pass on backends that have it.
    const y = tf.fused.matMul({ a: x2, b: weight, bias }); // [N, out]
    return tf.reshape(y, [...shape.slice(0, -1), weight.shape[1]]);
  });
}

/** How the embedding gradient is accumulated into [V, d]. */
export type EmbeddingBackward = "segment-sum" | "scatter" | "one-hot";

/**
 * The cheapest correct way to sum rows of dy into [V, d] on the active
 * backend. `UnsortedSegmentSum` is tf's own gather gradient, but `wasm` lacks
 * it and tfjs `cpu` implements it as one masked reduction per vocabulary
 * entry (O(V·N·d)); there `ScatterNd`, which sums duplicate indices, is one
 * O(N·d) pass. A one-hot matmul works everywhere.
 */
export function embeddingBackward(): EmbeddingBackward {
  const backend = tf.getBackend();
  if (
    backend !== "cpu" &&
    tf.getKernel("UnsortedSegmentSum", backend) !== undefined
  ) return "segment-sum";
  if (tf.getKernel("ScatterNd", backend) !== undefined) return "scatter";
  return "one-hot";
}

/**
 * Embedding lookup `table[ids]` whose gradient works on every backend (see
 * {@linkcode embeddingBackward}).
 *
 * @param table [V, d]
 * @param ids [N] int32
 * @param backward Force one gradient path (tests compare them).
 * @returns [N, d]
 */
export function embeddingLookup(
  table: tf.Tensor2D,
  ids: tf.Tensor1D,
  backward?: EmbeddingBackward,
): tf.Tensor2D {
  const [vocab, d] = table.shape;
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [w, idx, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    // Saved tensors are kept by the engine until backprop, even when the
    // caller's tidy has disposed `idx` by then.
    save([idx]);
    const value = tf.gather(w, idx); // [N, d]
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const savedIds = saved[0] as tf.Tensor1D;
      const dw = tf.tidy(() => {
        switch (backward ?? embeddingBackward()) {
          case "segment-sum":
            return tf.unsortedSegmentSum(dy, savedIds, vocab); // [V, d]
          case "scatter":
            return tf.scatterND(tf.expandDims(savedIds, 1), dy, [vocab, d]); // [V, d]
          case "one-hot": {
            const oneHot = tf.cast(tf.oneHot(savedIds, vocab), "float32"); // [N, V]
            return tf.matMul(oneHot, dy as tf.Tensor2D, true, false); // [V, d]
          }
        }
      });
      // Token ids are integers: they get a zero gradient.
      return [dw, tf.zerosLike(savedIds)];
    };
    return { value, gradFunc };
  });
  return lookup(table, ids) as tf.Tensor2D;
}

/**
 * Rotary tables for positions `offset .. offset + length - 1`, in the
 * "rotate half" layout (GPT-NeoX, LLaMA): channel j pairs with j + headDim/2.
 *
 * @returns cos and sin, each [length, headDim]
 */
export function ropeTables(
  offset: number,
  length: number,
  headDim: number,
): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = headDim / 2;
  const cos = new Float32Array(length * headDim);
  const sin = new Float32Array(length * headDim);
  for (let p = 0; p < length; p++) {
    for (let j = 0; j < half; j++) {
      const angle = (offset + p) * Math.pow(10000, (-2 * j) / headDim);
      const c = Math.cos(angle), s = Math.sin(angle);
      cos[p * headDim + j] = cos[p * headDim + j + half] = c;
      sin[p * headDim + j] = sin[p * headDim + j + half] = s;
    }
  }
  return {
    cos: tf.tensor2d(cos, [length, headDim]),
    sin: tf.tensor2d(sin, [length, headDim]),
  };
}

/** Apply RoPE to x [B, H, T, headDim] with tables [T, headDim]. */
export function applyRope(
  x: tf.Tensor4D,
  cos: tf.Tensor2D,
  sin: tf.Tensor2D,
): tf.Tensor4D {
  return tf.tidy(() => {
    const half = x.shape[3] / 2;
    const [x1, x2] = tf.split(x, [half, half], 3); // each [B, H, T, half]
    const rotated = tf.concat([tf.neg(x2), x1], 3); // [B, H, T, headDim]
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
  });
}

/**
 * Sinusoidal features of t ∈ [0, 1] (DiT / MDLM timestep embedding). t is
 * scaled by 1000 so the fastest frequency turns about 160 times over [0, 1].
 *
 * @param t [B]
 * @returns [B, dim]
 */
export function timeFeatures(t: tf.Tensor1D, dim: number): tf.Tensor2D {
  return tf.tidy(() => {
    const half = dim / 2;
    const freqs = new Float32Array(half);
    for (let j = 0; j < half; j++) {
      freqs[j] = Math.exp(-Math.log(10000) * j / half);
    }
    const args = tf.mul(
      tf.reshape(tf.mul(tf.cast(t, "float32"), 1000), [-1, 1]),
      tf.tensor2d(freqs, [1, half]),
    ); // [B, half]
    return tf.concat([tf.cos(args), tf.sin(args)], 1) as tf.Tensor2D;
  });
}

/** `x * (1 + scale) + shift` with per-row modulation; x [B, T, d], the others [B, d]. */
export function modulate(
  x: tf.Tensor,
  shift: tf.Tensor,
  scale: tf.Tensor,
): tf.Tensor {
  return tf.tidy(() =>
    tf.add(
      tf.mul(x, tf.add(tf.expandDims(scale, 1), 1)),
      tf.expandDims(shift, 1),
    )
  );
}
