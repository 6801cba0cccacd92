/**
 * Names for the tfjs tensor types in this package's signatures (aliases of
 * `@tensorflow/tfjs`'s own, so any tfjs tensor fits).
 *
 * @module
 */

import type * as tf from "@tensorflow/tfjs";

/** A tfjs tensor of any rank. */
export type Tensor = tf.Tensor;
/** A rank-1 tfjs tensor, e.g. the diffusion time t [B]. */
export type Tensor1D = tf.Tensor1D;
/** A rank-2 tfjs tensor, e.g. token ids [B, T]. */
export type Tensor2D = tf.Tensor2D;
/** A rank-3 tfjs tensor, e.g. logits [B, T, V]. */
export type Tensor3D = tf.Tensor3D;
/** A rank-4 tfjs tensor, e.g. cached keys [B, nHead, T, headDim]. */
export type Tensor4D = tf.Tensor4D;
/** A trainable tfjs variable. */
export type Variable = tf.Variable;
/** A rank-0 tfjs tensor, e.g. a loss. */
export type Scalar = tf.Scalar;
