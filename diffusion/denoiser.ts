import type { Tensor1D, Tensor2D, Tensor3D } from "@d3pm/core";
/**
 * The backbone contract the diffusion package relies on, and nothing more.
 *
 * @module
 */

/**
 * Any model with the shared backbone call: token ids `[B, L]` (int32) and an
 * optional time `t` `[B]` in [0, 1] give logits `[B, L, V]`. A model that is
 * not time-conditioned ignores `t`. The transformer package's causal and
 * bidirectional models both satisfy it.
 */
export interface Denoiser {
  /** Logits over the vocabulary at every position. */
  forward(
    tokens: Tensor2D,
    options?: { t?: Tensor1D; training?: boolean },
  ): Tensor3D;
}
