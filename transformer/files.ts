/**
 * The file names inside a model directory (`saveModel`'s, and the fused
 * engines'), apart from the tfjs model so an engine reads them without
 * loading tfjs.
 *
 * @module
 */

/**
 * File name of the weights inside a model directory.
 *
 * @example Read a saved model's weights with any safetensors reader
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { decodeSafetensors } from "@d3pm/core";
 * import { parameterCount, preset, saveModel, Transformer, WEIGHTS_FILE } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const model = new Transformer(preset("micro", { vocabSize: 16, contextLength: 8 }));
 * const dir = await Deno.makeTempDir();
 * await saveModel(model, dir);
 * const { tensors } = decodeSafetensors(await Deno.readFile(`${dir}/${WEIGHTS_FILE}`));
 * const total = [...tensors.values()].reduce((n, t) => n + t.data.length, 0);
 * assertEquals(total, parameterCount(model.config));
 * model.dispose();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export const WEIGHTS_FILE = "model.safetensors";

/**
 * File name of the config inside a model directory.
 *
 * @example The config is plain JSON beside the weights
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { CONFIG_FILE, preset, saveModel, Transformer, WEIGHTS_FILE } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const model = new Transformer(preset("micro", { vocabSize: 16, contextLength: 8 }));
 * const dir = await Deno.makeTempDir();
 * await saveModel(model, dir);
 * const names = [];
 * for await (const entry of Deno.readDir(dir)) names.push(entry.name);
 * assertEquals(names.sort(), [CONFIG_FILE, WEIGHTS_FILE]);
 * assertEquals(JSON.parse(await Deno.readTextFile(`${dir}/${CONFIG_FILE}`)), model.config);
 * model.dispose();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export const CONFIG_FILE = "config.json";
