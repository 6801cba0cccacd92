/**
 * Model checkpoints: weights as safetensors (GPT-2 tensor names, see
 * `parameterShapes`) plus the JSON model config, written atomically.
 *
 * @module
 */

import {
  BoundedReadError,
  decodeSafetensors,
  encodeSafetensors,
  readBounded,
  readSafetensorsHeader,
  readTextBounded,
  safetensorsBound,
  SafetensorsError,
  type StoredTensor,
  writeFileAtomic,
} from "@d3pm/core";
import { type ModelConfig, validateConfig } from "./config.ts";
import { parameterShapes } from "./parameters.ts";
import { Transformer } from "./transformer.ts";
import { CONFIG_FILE, WEIGHTS_FILE } from "./files.ts";

/** Options of {@linkcode loadModel}. */
export interface LoadModelOptions {
  /** Seed of the dropout stream of the loaded model (default 0). */
  seed?: number;
  /**
   * The bytes of the directory's `model.safetensors` when the caller has
   * read them already (to hash them, say): checked and loaded as the file
   * would be, and the file is not read again.
   */
  weights?: Uint8Array;
}

/** Options of {@linkcode deserializeModel}. */
export interface DeserializeModelOptions extends LoadModelOptions {
  /**
   * The configuration to check the file against; by default the one stored
   * in the file's `__metadata__.config`.
   */
  config?: ModelConfig;
}

/**
 * The model's weights as safetensors bytes, its config stored in
 * `__metadata__.config` (JSON) so the file stands alone.
 *
 * @param model The model to save.
 * @returns The file's bytes.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { deserializeModel, preset, serializeModel, Transformer } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const model = new Transformer(preset("tiny", {
 *   vocabSize: 16, nLayer: 1, dModel: 8, nHead: 2, dMlp: 16, contextLength: 8,
 * }));
 * const copy = deserializeModel(serializeModel(model));
 * assertEquals(copy.config, model.config);
 * model.dispose();
 * copy.dispose();
 * ```
 */
export function serializeModel(model: Transformer): Uint8Array {
  const tensors = new Map<string, StoredTensor>();
  for (const [name, v] of model.variables) {
    tensors.set(name, { shape: v.shape, data: v.dataSync() as Float32Array });
  }
  return encodeSafetensors(tensors, {
    format: "d3pm-transformer",
    config: JSON.stringify(model.config),
  });
}

/**
 * A model rebuilt from safetensors bytes. Besides the file's own checks
 * (see `decodeSafetensors`), the tensor names and shapes must be exactly
 * those of the config.
 *
 * @param bytes A file written by {@linkcode serializeModel} (or any
 *   safetensors file with this package's names).
 * @param options The config to check against; the dropout seed.
 * @returns A new model on the active backend.
 * @throws {SafetensorsError} On a malformed file or a config mismatch.
 *
 * @example
 * ```ts
 * import { deserializeModel } from "@d3pm/transformer";
 * import { SafetensorsError } from "@d3pm/core";
 * import { assertThrows } from "@std/assert";
 * const junk = new Uint8Array([255, 255, 255, 255, 0, 0, 0, 0, 1, 2]);
 * assertThrows(() => deserializeModel(junk), SafetensorsError, "header length");
 * ```
 */
export function deserializeModel(
  bytes: Uint8Array,
  options: DeserializeModelOptions = {},
): Transformer {
  let config = options.config && validateConfig(options.config);
  const { tensors } = decodeSafetensors(bytes, {
    expect: (metadata) => {
      config ??= configFromMetadata(metadata);
      return parameterShapes(config);
    },
  });
  return new Transformer(config!, { weights: tensors, seed: options.seed });
}

/**
 * Write `config.json` and `model.safetensors` into a directory (created if
 * missing), each atomically: a temporary file in the same directory, then a
 * rename, so a crash never leaves a half-written file under the real name.
 *
 * @param model The model to save.
 * @param dir The directory.
 * @returns When both files are in place.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { loadModel, preset, saveModel, Transformer } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const model = new Transformer(preset("tiny", {
 *   vocabSize: 16, nLayer: 1, dModel: 8, nHead: 2, dMlp: 16, contextLength: 8,
 * }));
 * const dir = await Deno.makeTempDir();
 * await saveModel(model, dir);
 * const back = await loadModel(dir);
 * assertEquals(back.config, model.config);
 * model.dispose();
 * back.dispose();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveModel(
  model: Transformer,
  dir: string,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const weights = serializeModel(model);
  await writeFileAtomic(
    `${dir}/${CONFIG_FILE}`,
    new TextEncoder().encode(JSON.stringify(model.config, null, 2) + "\n"),
  );
  await writeFileAtomic(`${dir}/${WEIGHTS_FILE}`, weights);
}

/**
 * Load a model saved by {@linkcode saveModel}: `config.json` is validated,
 * then the weights are checked against it (and against the config stored in
 * the file, when present).
 *
 * @param dir The directory holding `config.json` and `model.safetensors`.
 * @param options The dropout seed; the weights' bytes when already read.
 * @returns A new model on the active backend.
 * @throws {SafetensorsError} On a malformed or mismatched weights file.
 * @throws {RangeError} On a missing or invalid `config.json`.
 *
 * @example
 * ```ts
 * import { loadModel } from "@d3pm/transformer";
 * import { assertRejects } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await assertRejects(() => loadModel(dir), RangeError, "config.json");
 * await Deno.remove(dir);
 * ```
 */
export async function loadModel(
  dir: string,
  options: LoadModelOptions = {},
): Promise<Transformer> {
  const config = await readConfigFile(dir);
  const weightsPath = `${dir}/${WEIGHTS_FILE}`;
  const bytes = options.weights ?? await readWeightsFile(weightsPath, config);
  const { tensors } = decodeSafetensors(bytes, {
    source: weightsPath,
    expect: expectedBy(config),
  });
  return new Transformer(config, { weights: tensors, seed: options.seed });
}

/**
 * The configuration of a model saved by {@linkcode saveModel}, checked as
 * {@linkcode loadModel} checks the model — `config.json` valid, the weights
 * file well formed and as long as its header says, the config stored in it
 * `config.json`'s, its tensors the config's names and shapes — reading only
 * the header of `model.safetensors`, not the weights: to refuse a model
 * before loading it costs a few kilobytes, not the model.
 *
 * @param dir The directory holding `config.json` and `model.safetensors`.
 * @returns The model's configuration.
 * @throws {SafetensorsError} On a malformed or mismatched weights file.
 * @throws {RangeError} On a missing or invalid `config.json`.
 *
 * @example A model's shape, its weights unread; a truncated file refused
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { inspectModel, preset, saveModel, Transformer, WEIGHTS_FILE } from "@d3pm/transformer";
 * import { SafetensorsError } from "@d3pm/core";
 * import { assertEquals, assertRejects } from "@std/assert";
 * await tf.setBackend("cpu");
 * const model = new Transformer(preset("micro", { vocabSize: 16, contextLength: 8 }));
 * const dir = await Deno.makeTempDir();
 * await saveModel(model, dir);
 * assertEquals(await inspectModel(dir), model.config);
 * const { size } = await Deno.stat(`${dir}/${WEIGHTS_FILE}`);
 * await Deno.truncate(`${dir}/${WEIGHTS_FILE}`, size - 4);
 * await assertRejects(() => inspectModel(dir), SafetensorsError, "data section");
 * model.dispose();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function inspectModel(dir: string): Promise<ModelConfig> {
  const config = await readConfigFile(dir);
  await readSafetensorsHeader(`${dir}/${WEIGHTS_FILE}`, {
    expect: expectedBy(config),
  });
  return config;
}

/**
 * The most bytes a weights file of `config` can hold: its float32
 * parameters, and room for the header (each tensor's entry and the config,
 * 1 MiB and a few hundred bytes a tensor).
 *
 * @param config The model's configuration.
 * @returns The bound.
 *
 * @example
 * ```ts
 * import { parameterCount, preset, weightsFileBytes } from "@d3pm/transformer";
 * import { assert } from "@std/assert";
 * const config = preset("tiny");
 * assert(weightsFileBytes(config) > 4 * parameterCount(config));
 * ```
 */
export function weightsFileBytes(config: ModelConfig): number {
  return safetensorsBound(parameterShapes(config));
}

/**
 * A model's weights file, read bounded by what its config can hold (a 1.5
 * GB file in place of a micro model's 0.2 MB took 3.2 GB of memory before
 * "the data section has …"); a FIFO or a device is refused unread.
 *
 * @param path The `model.safetensors`.
 * @param config The configuration of the model it holds.
 * @returns Its bytes (for {@linkcode LoadModelOptions.weights}).
 * @throws {RangeError} In one line naming the file, for a FIFO, a device, or
 *   a file over {@linkcode weightsFileBytes}.
 *
 * @example
 * ```ts
 * import { preset, readWeightsFile } from "@d3pm/transformer";
 * import { assertRejects } from "@std/assert";
 * await assertRejects(() => readWeightsFile("/dev/zero", preset("tiny")), RangeError, "character device");
 * ```
 */
export async function readWeightsFile(
  path: string,
  config: ModelConfig,
): Promise<Uint8Array> {
  try {
    return await readBounded(path, {
      limit: weightsFileBytes(config),
      what: "weights file for its config.json",
    });
  } catch (e) {
    if (e instanceof BoundedReadError) {
      throw new RangeError(
        `Cannot load model: ${e.message}; restore it, or train the model again`,
      );
    }
    throw e;
  }
}

/** A model directory's `config.json`, validated. */
async function readConfigFile(dir: string): Promise<ModelConfig> {
  const configPath = `${dir}/${CONFIG_FILE}`;
  let text: string;
  try {
    text = await readTextBounded(configPath, {
      limit: 1 << 20,
      what: "model configuration",
    });
  } catch (e) {
    if (e instanceof BoundedReadError) {
      throw new RangeError(`Cannot load model: ${e.message}`);
    }
    throw new RangeError(
      `Cannot load model: cannot read ${configPath} (${
        e instanceof Error ? e.message.split("\n")[0] : e
      })`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new RangeError(`Cannot load model: ${configPath} is not valid JSON`);
  }
  return validateConfig(parsed);
}

/**
 * What a weights file of `config` holds: its tensors' names and shapes,
 * and, when it stores a config, that one.
 */
function expectedBy(
  config: ModelConfig,
): (metadata: Record<string, string>) => Map<string, number[]> {
  return (metadata) => {
    if (
      metadata.config !== undefined &&
      JSON.stringify(configFromMetadata(metadata)) !== JSON.stringify(config)
    ) {
      throw new SafetensorsError(
        `the config in ${WEIGHTS_FILE} differs from ${CONFIG_FILE}`,
      );
    }
    return parameterShapes(config);
  };
}

function configFromMetadata(metadata: Record<string, string>): ModelConfig {
  if (metadata.config === undefined) {
    throw new SafetensorsError(
      "no config in __metadata__; pass options.config",
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(metadata.config);
  } catch {
    throw new SafetensorsError("__metadata__.config is not valid JSON");
  }
  try {
    return validateConfig(parsed);
  } catch (e) {
    throw new SafetensorsError(
      `__metadata__.config: ${e instanceof Error ? e.message : e}`,
    );
  }
}
