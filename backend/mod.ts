/**
 * Choosing and initialising the tfjs backend, and the project's fast CPU
 * backend.
 *
 * {@linkcode initBackend} walks the ladder `tensorflow` (tfjs-node, when
 * installed) → `webgpu` (a real GPU) → `blas` → `wasm` → `cpu` and says which
 * rung runs and why. `blas` is tfjs's `cpu` backend with the hot kernels
 * replaced: matrix products through a CBLAS loaded with `Deno.dlopen`
 * (OpenBLAS, MKL, BLIS or Accelerate; `D3PM_CBLAS_PATH` overrides the path)
 * and plain-loop kernels for the element-wise ops, reductions, softmax,
 * transpose, gather and its gradient. The fused training ops
 * ({@linkcode sparseSoftmaxCrossEntropy}, {@linkcode gelu},
 * {@linkcode layerNorm}, {@linkcode adamwUpdate}) are one kernel each on
 * `blas` and composites of tfjs ops on the other backends.
 *
 * @example Train on the fastest backend available
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assert } from "@std/assert";
 * import { initBackend } from "@d3pm/backend";
 *
 * const info = await initBackend({ prefer: "blas", log: () => {} });
 * assert(info.reason.startsWith(info.name));
 * const w = tf.variable(tf.zeros([3, 1]));
 * const x = tf.tensor2d([[1, 2, 3]]);
 * tf.train.sgd(0.1).minimize(() => tf.sum(tf.square(tf.sub(tf.matMul(x, w), 1))));
 * assert((await w.data())[2] > 0);
 * ```
 *
 * @module
 */

export * from "./init_backend.ts";
export * from "./blas_backend.ts";
export * from "./cblas.ts";
export * from "./fused_ops.ts";
