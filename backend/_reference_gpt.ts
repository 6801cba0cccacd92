/**
 * A compact GPT used as the reference training step of the backend's
 * benchmark and memory test — a stand-in until the transformer package
 * exists. Pre-norm blocks, fused QKV, tanh GELU, tied embeddings, Adam.
 */
import { randomFloats } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";

/** The reference model's shape. */
export interface GptConfig {
  vocab: number;
  seq: number;
  dModel: number;
  heads: number;
  layers: number;
  mlp: number;
}

/** The benchmark's configuration: 4 layers, d 256, 4 heads, MLP 1024, T 128, V 4096. */
export const REFERENCE_CONFIG: GptConfig = {
  vocab: 4096,
  seq: 128,
  dModel: 256,
  heads: 4,
  layers: 4,
  mlp: 1024,
};

/** Parameters that take part in matrix products: all but the positions. */
export function gptMatmulParams(c: GptConfig): number {
  const d = c.dModel;
  const perLayer = 4 * d * d + 2 * d * c.mlp + // wqkv, wo, w1, w2
    3 * d + d + c.mlp + d + // their biases
    4 * d; // two layer norms
  return c.vocab * d + c.layers * perLayer + 2 * d;
}

/** A GPT's variables and its training step. */
export interface ReferenceGpt {
  config: GptConfig;
  variables: tf.Variable[];
  /** Parameters that take part in matrix products (all but positions). */
  matmulParams: number;
  /** One Adam step on a batch of `[B, T]` token ids; returns the loss. */
  step(tokens: Int32Array, batch: number): number | Promise<number>;
  dispose(): void;
}

function normal(shape: number[], std: number, rand: () => number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // Irwin–Hall approximation of a normal: cheap and deterministic.
    v[i] = (rand() + rand() + rand() + rand() - 2) * Math.sqrt(3) * std;
  }
  return tf.tensor(v, shape);
}

/**
 * Build the reference GPT on the current backend.
 *
 * @param config The model's shape.
 * @param options `seed` for the initial weights, `sync` to read the loss with
 *   `dataSync()` (false: `await data()`, for webgpu).
 * @returns The model with its training step.
 */
export function referenceGpt(
  config: GptConfig,
  options: { seed?: number; sync?: boolean; lr?: number } = {},
): ReferenceGpt {
  const { vocab, seq, dModel: d, heads, layers, mlp } = config;
  const rand = randomFloats(options.seed ?? 1);
  const hd = d / heads;
  const vars: tf.Variable[] = [];
  const v = (t: tf.Tensor, name: string) => {
    const variable = tf.variable(t, true, `${name}_${vars.length}`);
    t.dispose();
    vars.push(variable);
    return variable;
  };
  const wte = v(normal([vocab, d], 0.02, rand), "wte");
  const wpe = v(normal([seq, d], 0.02, rand), "wpe");
  const blocks = Array.from({ length: layers }, () => ({
    ln1g: v(tf.ones([d]), "ln1g"),
    ln1b: v(tf.zeros([d]), "ln1b"),
    wqkv: v(normal([d, 3 * d], 0.02, rand), "wqkv"),
    bqkv: v(tf.zeros([3 * d]), "bqkv"),
    wo: v(normal([d, d], 0.02 / Math.sqrt(2 * layers), rand), "wo"),
    bo: v(tf.zeros([d]), "bo"),
    ln2g: v(tf.ones([d]), "ln2g"),
    ln2b: v(tf.zeros([d]), "ln2b"),
    w1: v(normal([d, mlp], 0.02, rand), "w1"),
    b1: v(tf.zeros([mlp]), "b1"),
    w2: v(normal([mlp, d], 0.02 / Math.sqrt(2 * layers), rand), "w2"),
    b2: v(tf.zeros([d]), "b2"),
  }));
  const lnfg = v(tf.ones([d]), "lnfg");
  const lnfb = v(tf.zeros([d]), "lnfb");
  // Additive causal mask [T, T]: 0 on and below the diagonal, -1e9 above.
  const maskValues = new Float32Array(seq * seq);
  for (let i = 0; i < seq; i++) {
    for (let j = i + 1; j < seq; j++) maskValues[i * seq + j] = -1e9;
  }
  const mask = tf.tensor2d(maskValues, [seq, seq]);
  const optimizer = tf.train.adam(options.lr ?? 3e-4);

  const layerNorm = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const mean = tf.mean(x, -1, true);
    const xc = tf.sub(x, mean);
    const variance = tf.mean(tf.square(xc), -1, true);
    return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, 1e-5))), g), b);
  };
  const gelu = (x: tf.Tensor) => {
    // tanh approximation (Hendrycks & Gimpel), as GPT-2 uses.
    const inner = tf.mul(
      tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)),
      Math.sqrt(2 / Math.PI),
    );
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  };

  const loss = (tokens: tf.Tensor2D, targets: tf.Tensor1D, batch: number) => {
    const t = seq;
    let x = tf.add(
      tf.reshape(tf.gather(wte, tf.reshape(tokens, [-1])), [batch, t, d]),
      wpe,
    ); // [B, T, d]
    x = tf.reshape(x, [batch * t, d]);
    for (const blk of blocks) {
      const h = layerNorm(x, blk.ln1g, blk.ln1b);
      const qkv = tf.add(tf.matMul(h, blk.wqkv), blk.bqkv); // [B·T, 3d]
      const heads4 = (m: tf.Tensor) =>
        tf.transpose(tf.reshape(m, [batch, t, heads, hd]), [0, 2, 1, 3]); // [B, H, T, hd]
      const [q, k, vv] = tf.split(qkv, 3, 1).map(heads4);
      const scores = tf.add(
        tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd)),
        mask,
      ); // [B, H, T, T]
      const att = tf.matMul(tf.softmax(scores), vv); // [B, H, T, hd]
      const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [
        batch * t,
        d,
      ]);
      x = tf.add(x, tf.add(tf.matMul(merged, blk.wo), blk.bo));
      const h2 = layerNorm(x, blk.ln2g, blk.ln2b);
      const m = gelu(tf.add(tf.matMul(h2, blk.w1), blk.b1)); // [B·T, mlp]
      x = tf.add(x, tf.add(tf.matMul(m, blk.w2), blk.b2));
    }
    const logits = tf.matMul(layerNorm(x, lnfg, lnfb), wte, false, true); // [B·T, V]
    return tf.losses.softmaxCrossEntropy(tf.oneHot(targets, vocab), logits);
  };

  const matmulParams = gptMatmulParams(config);
  return {
    config,
    variables: vars,
    matmulParams,
    step(tokens: Int32Array, batch: number) {
      // Next-token targets: the input shifted left, wrapping the last token.
      const targetsValues = new Int32Array(tokens.length);
      for (let i = 0; i < tokens.length; i++) {
        targetsValues[i] = (i + 1) % seq === 0 ? tokens[i] : tokens[i + 1];
      }
      const lossTensor = tf.tidy(() => {
        const input = tf.tensor2d(tokens, [batch, seq], "int32");
        const targets = tf.tensor1d(targetsValues, "int32");
        return optimizer.minimize(
          () => loss(input, targets, batch) as tf.Scalar,
          true,
          vars,
        )!;
      });
      if (options.sync === false) {
        return lossTensor.data().then((values) => {
          lossTensor.dispose();
          return values[0];
        });
      }
      const value = lossTensor.dataSync()[0];
      lossTensor.dispose();
      return value;
    },
    dispose() {
      tf.dispose(vars);
      mask.dispose();
      optimizer.dispose();
    },
  };
}
