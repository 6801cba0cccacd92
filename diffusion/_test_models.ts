// Small denoisers for tests: no dependency on the transformer package.
import * as tf from "@tensorflow/tfjs";
import type { Denoiser } from "./denoiser.ts";

/** Predicts the same logits everywhere: zeros give a uniform p̃. */
export class ConstantDenoiser implements Denoiser {
  calls = 0;
  constructor(readonly vocab: number, readonly logits?: Float32Array) {}
  forward(tokens: tf.Tensor2D): tf.Tensor3D {
    this.calls++;
    const [b, l] = tokens.shape;
    return tf.tidy(() => {
      const row = this.logits
        ? tf.tensor1d(this.logits)
        : tf.zeros([this.vocab]);
      return row.reshape([1, 1, this.vocab]).tile([b, l, 1]) as tf.Tensor3D;
    });
  }
}

/**
 * A bidirectional denoiser small enough to train in seconds: the one-hot of
 * the whole sequence, through one hidden layer, to logits at every position.
 */
export class TinyDenoiser implements Denoiser {
  readonly w1: tf.Variable;
  readonly b1: tf.Variable;
  readonly w2: tf.Variable;
  readonly b2: tf.Variable;
  constructor(
    readonly vocab: number,
    readonly length: number,
    hidden = 64,
    seed = 0,
  ) {
    const n = vocab * length;
    this.w1 = tf.variable(
      tf.randomNormal([n, hidden], 0, 0.1, "float32", seed),
    );
    this.b1 = tf.variable(tf.zeros([hidden]));
    this.w2 = tf.variable(
      tf.randomNormal([hidden, n], 0, 0.1, "float32", seed + 1),
    );
    this.b2 = tf.variable(tf.zeros([n]));
  }
  forward(tokens: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, l] = tokens.shape;
      const x = tf.oneHot(tokens, this.vocab).reshape([b, l * this.vocab]);
      const h = tf.relu(x.matMul(this.w1).add(this.b1));
      return h.matMul(this.w2).add(this.b2).reshape([
        b,
        l,
        this.vocab,
      ]) as tf.Tensor3D;
    });
  }
  dispose(): void {
    for (const v of [this.w1, this.b1, this.w2, this.b2]) v.dispose();
  }
}
