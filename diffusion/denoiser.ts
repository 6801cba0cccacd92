/**
 * The backbone contract the diffusion package relies on, and nothing more.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/**
 * Any model with the shared backbone call: token ids `[B, L]` (int32) and an
 * optional time `t` `[B]` in [0, 1] give logits `[B, L, V]`. A model that is
 * not time-conditioned ignores `t`. The transformer package's causal and
 * bidirectional models both satisfy it.
 */
export interface Denoiser {
  /** Logits over the vocabulary at every position. */
  forward(
    tokens: tf.Tensor2D,
    options?: { t?: tf.Tensor1D; training?: boolean },
  ): tf.Tensor3D;
}
