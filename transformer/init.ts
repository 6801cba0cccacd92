/**
 * The package without tfjs (`@d3pm/transformer/init`): the seeded initial
 * weights as plain arrays — what `new Transformer(config, { seed })` starts
 * from — with the configs, presets, parameter shapes and counts, and a model
 * directory's file names. The fused engines (`@d3pm/webgpu`, `@d3pm/cpu`)
 * import this face, not the package's, so loading them never loads tfjs.
 *
 * @example An engine's starting weights, tfjs never loaded
 * ```ts
 * import { initialWeights, parameterCount, preset } from "@d3pm/transformer/init";
 * import { assertEquals } from "@std/assert";
 *
 * const config = preset("micro", { vocabSize: 16, contextLength: 8 });
 * const weights = initialWeights(config, 7);
 * const total = [...weights.values()].reduce((n, w) => n + w.data.length, 0);
 * assertEquals(total, parameterCount(config));
 * ```
 *
 * @module
 */

import { prng, type StoredTensor } from "@d3pm/core";
import { type ModelConfig, validateConfig } from "./config.ts";
import { drawWeights } from "./_init.ts";

export * from "./config.ts";
export * from "./parameters.ts";
export * from "./files.ts";

/**
 * The initial weights of a model seeded with `seed`, bit for bit those of
 * `new Transformer(config, { seed })`: GPT-2 initialisation (see
 * `parameterShapes` for the names; weights N(0, 0.02²), residual output
 * projections N(0, (0.02/√(2·nLayer))²), LayerNorm gains 1, biases 0, adaLN
 * projections 0, the time MLP N(0, 1/dTime)), drawn from the project PRNG in
 * canonical order after the model's dropout seed.
 *
 * @param config A model configuration (validated here).
 * @param seed An integer seed, as the `Transformer`'s `seed` option.
 * @returns Name → shape and float32 values, in canonical order.
 * @throws {RangeError} On a bad config or a seed that is not an integer.
 *
 * @example The same weights as the tfjs model's
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initialWeights, preset, Transformer } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const config = preset("micro", { vocabSize: 16, contextLength: 8 });
 * const weights = initialWeights(config, 7);
 * const model = new Transformer(config, { seed: 7 });
 * for (const [name, v] of model.variables) {
 *   assertEquals(weights.get(name)!.shape, v.shape);
 *   assertEquals(weights.get(name)!.data, await v.data());
 * }
 * assertEquals(weights.get("ln_f.weight")!.data[0], 1); // gains start at 1
 * model.dispose();
 * ```
 */
export function initialWeights(
  config: ModelConfig,
  seed: number,
): Map<string, StoredTensor> {
  const c = validateConfig(config);
  if (!Number.isInteger(seed)) {
    throw new RangeError(
      `Cannot draw initial weights: seed must be an integer, got ${seed}`,
    );
  }
  const rng = prng(seed);
  // The Transformer draws its dropout seed first (see its constructor).
  rng.nextUint32();
  return drawWeights(c, rng);
}
