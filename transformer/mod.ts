/**
 * Transformer backbones for the AR-vs-diffusion comparison: one pre-LayerNorm
 * block shared by a causal decoder (with a KV cache for AR decoding) and a
 * bidirectional denoiser with optional adaLN time conditioning; GPT-2
 * initialisation and tensor names; presets and parameter counts; checkpoints
 * as safetensors plus a JSON config.
 *
 * Every model has the same call: `forward(tokens [B, T] int32, { t? }) →
 * logits [B, T, V]`. The package never picks the tfjs backend: initialise
 * one first (e.g. with `@d3pm/backend`).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { parameterCount, preset, Transformer } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const config = preset("tiny", {
 *   kind: "bidirectional", timeConditioning: true,
 *   vocabSize: 64, nLayer: 1, dModel: 16, nHead: 2, dMlp: 32, dTime: 8,
 * });
 * const model = new Transformer(config, { seed: 42 });
 * assertEquals(
 *   model.trainableVariables().reduce((n, v) => n + v.size, 0),
 *   parameterCount(config),
 * );
 * const tokens = tf.tensor2d([[1, 2, 3, 4]], [1, 4], "int32");
 * const t = tf.tensor1d([0.5]);
 * const logits = model.forward(tokens, { t });
 * assertEquals(logits.shape, [1, 4, 64]);
 * tf.dispose([tokens, t, logits]);
 * model.dispose();
 * ```
 *
 * @module
 */
export * from "./config.ts";
export * from "./parameters.ts";
export * from "./init.ts";
export * from "./transformer.ts";
export * from "./kv_cache.ts";
export * from "./files.ts";
export * from "./weights.ts";
// Types from other workspace packages that appear in this package's signatures.
