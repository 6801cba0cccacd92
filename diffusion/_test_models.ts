// Small denoisers for tests: no dependency on the transformer package.
import type { LanguageModel } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";

/** Predicts the same logits everywhere: zeros give a uniform p̃. */
export class ConstantDenoiser implements LanguageModel {
  calls = 0;
  readonly timeConditioned = false;
  constructor(readonly vocab: number, readonly logits?: Float32Array) {}
  get config(): LanguageModel["config"] {
    return {
      kind: "bidirectional",
      vocabSize: this.vocab,
      contextLength: 4096,
    };
  }
  dispose(): void {}
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
export class TinyDenoiser implements LanguageModel {
  readonly w1: tf.Variable;
  readonly b1: tf.Variable;
  readonly w2: tf.Variable;
  readonly b2: tf.Variable;
  readonly timeConditioned = false;
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
  get config(): LanguageModel["config"] {
    const { vocab, length } = this;
    return { kind: "bidirectional", vocabSize: vocab, contextLength: length };
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
