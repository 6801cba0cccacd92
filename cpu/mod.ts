/**
 * The CPU executor's kernels: the WebGPU engine's semantic kernels
 * (LayerNorm, attention, GELU, the chunked cross-entropy head, clipping,
 * AdamW, EMA, dropout, adaLN) as plain `*Forward` / `*Backward` functions
 * over views of one shared memory, in WebAssembly SIMD built from
 * `csrc/` (`deno task build:cpu`), split over threads where it pays; every
 * product through `cblas_sgemm` on the same views. Results are the same
 * bits run to run and for any thread count.
 *
 * @example A linear layer with GELU
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { createCpuKernels, matmul } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 1024 });
 * const x = k.floats(2 * 3), w = k.floats(3 * 4), bias = k.floats(4);
 * const pre = k.floats(2 * 4), out = k.floats(2 * 4);
 * x.fill(1);
 * w.fill(0.5);
 * matmul(k, {
 *   m: 2, n: 4, k: 3,
 *   a: { view: x, ld: 3 }, b: { view: w, ld: 4 }, c: { view: out, ld: 4 },
 *   epilogue: "bias_gelu", bias, e: { view: pre, ld: 4 },
 * });
 * assertAlmostEquals(pre[0], 1.5, 1e-6);
 * assertAlmostEquals(out[0], 1.3995715, 1e-5);
 * k.dispose();
 * ```
 *
 * @module
 */

export * from "./kernels.ts";
export * from "./engine_hash.ts";
export * from "./matmul.ts";
export * from "./layernorm.ts";
export * from "./attention.ts";
export * from "./activation.ts";
export * from "./embedding.ts";
export * from "./cross_entropy.ts";
export * from "./optimizer.ts";
export * from "./dropout.ts";
export * from "./adaln.ts";
export * from "./engine.ts";
// Types from other workspace packages that appear in this package's signatures.
export type {
  AlibiMode,
  ModelConfig,
  ModelKind,
  PositionKind,
} from "@d3pm/transformer/init";
export type {
  CausalGenerationOptions,
  CausalGenerator,
  Generation,
  MaskedGenerationOptions,
  MaskedGenerator,
  ModelShape,
  StoredTensor,
  Tensor1D,
  Tensor2D,
  Tensor3D,
  TermScorer,
  WeightedTokens,
} from "@d3pm/core";
