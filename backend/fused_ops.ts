/**
 * Fused training ops: sparse softmax cross-entropy, tanh GELU, layer norm and
 * the AdamW update. On a backend that registers their kernels (`blas`) each
 * is one kernel forward and one backward, with its own gradient; elsewhere
 * (`cpu`, `wasm`, `webgpu`, …) it is composed of tfjs ops, so every backend
 * computes the same function and the composite is the reference the fused
 * kernels are tested against.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { FUSED } from "./_fused.ts";

/** A tfjs tensor (an alias, so the docs can name it). */
export type Tensor = tf.Tensor;
/** A rank-1 tfjs tensor. */
export type Tensor1D = tf.Tensor1D;
/** A rank-2 tfjs tensor. */
export type Tensor2D = tf.Tensor2D;

function fused(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}

function run<T extends tf.Tensor | tf.Tensor[]>(
  kernelName: string,
  inputs: tf.NamedTensorMap,
  attrs: tf.NamedAttrMap = {},
): T {
  return tf.engine().runKernel(kernelName, inputs, attrs) as T;
}

/**
 * Per-row cross-entropy `−log softmax(logits)[label]` of integer labels, in
 * nats. A label outside `[0, V)` marks a row to ignore: its loss and its
 * gradient are 0. On `blas` one pass forward (the softmax is kept for the
 * gradient) and one backward, `dy · (softmax − onehot)`, with no one-hot
 * tensor; elsewhere `logSoftmax` and a one-hot product.
 *
 * @param logits `[N, V]` float32.
 * @param labels `[N]` int32.
 * @returns `[N]` losses.
 * @throws {RangeError} When the shapes do not match.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertAlmostEquals } from "@std/assert";
 * import { sparseSoftmaxCrossEntropy } from "@d3pm/backend";
 *
 * const loss = sparseSoftmaxCrossEntropy(tf.zeros([2, 4]), tf.tensor1d([1, -1], "int32"));
 * const [a, b] = loss.dataSync();
 * assertAlmostEquals(a, Math.log(4), 1e-6);
 * assertAlmostEquals(b, 0); // ignored
 * ```
 */
export function sparseSoftmaxCrossEntropy(
  logits: Tensor2D,
  labels: Tensor1D,
): Tensor1D {
  if (
    logits.rank !== 2 || labels.rank !== 1 ||
    labels.shape[0] !== logits.shape[0]
  ) {
    throw new RangeError(
      `sparseSoftmaxCrossEntropy: expected logits [N, V] and labels [N], got [${logits.shape}] and [${labels.shape}]`,
    );
  }
  const ids = labels.dtype === "int32" ? labels : tf.cast(labels, "int32");
  try {
    if (logits.dtype === "float32" && fused(FUSED.sparseCe)) {
      return fusedSparseCe(logits, ids);
    }
    return tf.tidy(() => {
      const v = logits.shape[1];
      const valid = tf.logicalAnd(
        tf.greaterEqual(ids, 0),
        tf.less(ids, v),
      ); // [N]
      const safe = tf.where(valid, ids, tf.zerosLike(ids));
      const picked = tf.sum(
        tf.mul(tf.logSoftmax(logits), tf.oneHot(safe, v)),
        -1,
      ); // [N]
      return tf.neg(tf.mul(picked, tf.cast(valid, "float32"))) as tf.Tensor1D;
    });
  } finally {
    if (ids !== labels) ids.dispose();
  }
}

function fusedSparseCe(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, ids, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const [loss, probs] = run<tf.Tensor[]>(FUSED.sparseCe, {
      logits: x,
      labels: ids,
    });
    save([probs, ids]);
    return {
      value: loss,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        run<tf.Tensor>(FUSED.sparseCeGrad, {
          dy,
          probs: saved[0],
          labels: saved[1],
        }),
        tf.zerosLike(saved[1]),
      ],
    };
  });
  return op(logits, labels) as tf.Tensor1D;
}

const GELU_C = Math.sqrt(2 / Math.PI);

/**
 * GELU, tanh approximation (GPT-2's `gelu_new`):
 * `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`. On `blas` one pass forward, which
 * keeps `½(1 + tanh(…))` for the gradient, and one backward.
 *
 * @param x Any float32 tensor.
 * @returns The same shape.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertAlmostEquals } from "@std/assert";
 * import { gelu } from "@d3pm/backend";
 *
 * const [a, b] = gelu(tf.tensor1d([0, 1])).dataSync();
 * assertAlmostEquals(a, 0);
 * assertAlmostEquals(b, 0.8412, 1e-4);
 * ```
 */
export function gelu<T extends Tensor>(x: T): T {
  if (x.dtype === "float32" && fused(FUSED.gelu)) {
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
      const [y, s] = run<tf.Tensor[]>(FUSED.gelu, { x: input });
      save([input, s]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          run<tf.Tensor>(FUSED.geluGrad, { dy, x: saved[0], s: saved[1] }),
      };
    });
    return op(x) as T;
  }
  return tf.tidy(() => {
    // x³ as x·x² (tf.pow is a slow generic kernel on CPU backends).
    const cube = tf.mul(x, tf.square(x));
    const inner = tf.mul(tf.add(x, tf.mul(cube, 0.044715)), GELU_C);
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1)) as T;
  });
}

/** Options of {@linkcode layerNorm}. */
export interface LayerNormOptions {
  /** Gain, broadcast against x (usually `[d]`). */
  weight: Tensor;
  /** Shift, broadcast against x (usually `[d]`). */
  bias: Tensor;
  /** Added to the variance; default 1e-5 (GPT-2). */
  epsilon?: number;
}

/**
 * Layer normalisation over the last axis:
 * `(x − mean) / √(variance + ε) · weight + bias`. On `blas`, with a `[d]`
 * weight and bias, one pass forward (keeping each row's mean and 1/σ) and one
 * backward giving all three gradients.
 *
 * @param x `[..., d]` float32.
 * @param options Weight, bias and epsilon.
 * @returns The same shape as x.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertAlmostEquals } from "@std/assert";
 * import { layerNorm } from "@d3pm/backend";
 *
 * const y = layerNorm(tf.tensor2d([[1, 3]]), { weight: tf.ones([2]), bias: tf.zeros([2]) });
 * assertAlmostEquals(y.dataSync()[1], 1, 1e-4);
 * ```
 */
export function layerNorm<T extends Tensor>(
  x: T,
  options: LayerNormOptions,
): T {
  const { weight, bias } = options;
  const epsilon = options.epsilon ?? 1e-5;
  const d = x.shape[x.rank - 1];
  if (
    x.dtype === "float32" && weight.dtype === "float32" &&
    bias.dtype === "float32" && x.rank >= 1 && d > 0 &&
    weight.rank === 1 && weight.shape[0] === d &&
    bias.rank === 1 && bias.shape[0] === d && fused(FUSED.layerNorm)
  ) {
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [input, w, b, save] = args as [
        tf.Tensor,
        tf.Tensor,
        tf.Tensor,
        tf.GradSaveFunc,
      ];
      const [y, mean, rstd] = run<tf.Tensor[]>(
        FUSED.layerNorm,
        { x: input, weight: w, bias: b },
        { epsilon },
      );
      save([input, w, mean, rstd]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          run<tf.Tensor[]>(FUSED.layerNormGrad, {
            dy,
            x: saved[0],
            weight: saved[1],
            mean: saved[2],
            rstd: saved[3],
          }),
      };
    });
    return op(x, weight, bias) as T;
  }
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon)));
    return tf.add(tf.mul(normed, weight), bias) as T;
  });
}

/** One parameter's AdamW state, the input of {@linkcode adamwUpdate}. */
export interface AdamWSlots {
  /** The parameter. */
  param: Tensor;
  /** Its gradient (same shape). */
  grad: Tensor;
  /** First moment. */
  m: Tensor;
  /** Second moment. */
  v: Tensor;
}

/** Hyper-parameters of one {@linkcode adamwUpdate}. */
export interface AdamWUpdateOptions {
  /** Learning rate. */
  lr: number;
  /** First-moment decay. */
  beta1: number;
  /** Second-moment decay. */
  beta2: number;
  /** Denominator epsilon. */
  eps: number;
  /** Decoupled weight decay of this parameter (0 for none). */
  weightDecay: number;
  /** The update's number, from 1 (for the bias corrections). */
  step: number;
}

/**
 * One AdamW update (Loshchilov & Hutter, decoupled decay):
 * `m' = β₁m + (1−β₁)g`, `v' = β₂v + (1−β₂)g²`,
 * `p' = p − lr·(m̂ / (√v̂ + eps) + wd·p)` with `m̂ = m'/(1−β₁ᵗ)`,
 * `v̂ = v'/(1−β₂ᵗ)`. On `blas` one pass over the four arrays; elsewhere ~12
 * tfjs ops. Returns new tensors; the caller assigns them.
 *
 * @param slots Parameter, gradient and both moments (same shapes).
 * @param options Hyper-parameters and the step number.
 * @returns The new parameter and moments.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertAlmostEquals } from "@std/assert";
 * import { adamwUpdate } from "@d3pm/backend";
 *
 * const z = tf.zeros([1]);
 * const next = adamwUpdate(
 *   { param: tf.ones([1]), grad: tf.ones([1]), m: z, v: z },
 *   { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 0, weightDecay: 0, step: 1 },
 * );
 * assertAlmostEquals(next.param.dataSync()[0], 0.9, 1e-6); // first step moves by lr
 * ```
 */
export function adamwUpdate(
  slots: AdamWSlots,
  options: AdamWUpdateOptions,
): { param: Tensor; m: Tensor; v: Tensor } {
  const { param, grad, m, v } = slots;
  const { lr, beta1, beta2, eps, weightDecay, step } = options;
  if (!(Number.isInteger(step) && step >= 1)) {
    throw new RangeError(
      `adamwUpdate: step must be an integer ≥ 1, got ${step}`,
    );
  }
  const c1 = 1 - beta1 ** step, c2 = 1 - beta2 ** step;
  const same = [grad, m, v].every((t) =>
    t.dtype === "float32" && tf.util.arraysEqual(t.shape, param.shape)
  );
  if (param.dtype === "float32" && same && fused(FUSED.adamw)) {
    const [p1, m1, v1] = run<tf.Tensor[]>(
      FUSED.adamw,
      { param, grad, m, v },
      { lr, beta1, beta2, eps, weightDecay, c1, c2 },
    );
    return { param: p1, m: m1, v: v1 };
  }
  return tf.tidy(() => {
    const m1 = tf.add(tf.mul(m, beta1), tf.mul(grad, 1 - beta1));
    const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(grad), 1 - beta2));
    let update = tf.div(
      tf.div(m1, c1),
      tf.add(tf.sqrt(tf.div(v1, c2)), eps),
    );
    if (weightDecay > 0) update = tf.add(update, tf.mul(param, weightDecay));
    return { param: tf.sub(param, tf.mul(update, lr)), m: m1, v: v1 };
  });
}
