// Weights and optimiser state in and out of the engine: the parameter table
// as named tensors (the tfjs model's names and shapes), the gradients, the
// EMA, AdamW's moments, and the model directory (config.json +
// model.safetensors, the format of the tfjs `saveModel`). Private.

import {
  decodeSafetensors,
  encodeSafetensors,
  type StoredTensor,
  writeFileAtomic,
} from "@d3pm/core";
import {
  CONFIG_FILE,
  type ModelConfig,
  parameterShapes,
  validateConfig,
  WEIGHTS_FILE,
} from "@d3pm/transformer/init";
import { joinWeights, splitWeights } from "./_layout.ts";
import { type EngineState, fail } from "./_state.ts";
import type { EngineAdamWState } from "./types.ts";

// A table-shaped buffer read back as named tensors (one sync).
async function readTable(
  state: EngineState,
  buf: GPUBuffer,
): Promise<Map<string, StoredTensor>> {
  const data = await state.read(buf, 0, state.table.size * 4);
  return splitWeights(state.config, data);
}

/** Every parameter by name (one sync). */
export function getWeights(
  state: EngineState,
): Promise<Map<string, StoredTensor>> {
  state.check();
  return readTable(state, state.params);
}

/** Overwrite every parameter (exact names and shapes); moments are kept. */
export function setWeights(
  state: EngineState,
  weights: ReadonlyMap<string, StoredTensor>,
): void {
  state.check();
  state.device.queue.writeBuffer(
    state.params,
    0,
    joinWeights(state.table, weights, { what: "setWeights", fail }),
  );
}

/** The gradients of the last backward or step, by name. */
export function readGradients(
  state: EngineState,
): Promise<Map<string, StoredTensor>> {
  return readTable(state, state.trainingState("readGradients").grads);
}

// The EMA buffer, or a one-line error naming `what`.
function emaBuffer(state: EngineState, what: string): GPUBuffer {
  const ema = state.trainingState(what).ema;
  if (!ema) fail(`${what} needs the emaDecay option`);
  return ema;
}

/** The EMA of the parameters, by name. */
export function emaWeights(
  state: EngineState,
): Promise<Map<string, StoredTensor>> {
  return readTable(state, emaBuffer(state, "emaWeights"));
}

/** Overwrite the EMA of the parameters (exact names and shapes). */
export function setEmaWeights(
  state: EngineState,
  weights: ReadonlyMap<string, StoredTensor>,
): void {
  state.device.queue.writeBuffer(
    emaBuffer(state, "setEmaWeights"),
    0,
    joinWeights(state.table, weights, { what: "setEmaWeights", fail }),
  );
}

/** AdamW's step count and moments by name (two syncs). */
export async function optimizerState(
  state: EngineState,
): Promise<EngineAdamWState> {
  const t = state.trainingState("optimizerState");
  const data = (x: Map<string, StoredTensor>) =>
    new Map([...x].map(([k, w]) => [k, w.data]));
  const m = data(await readTable(state, t.m));
  const v = data(await readTable(state, t.v));
  return { step: t.adamStep, m, v };
}

/** Restore AdamW's step count and moments (exact names and sizes). */
export function loadOptimizerState(
  state: EngineState,
  adam: EngineAdamWState,
): void {
  const t = state.trainingState("loadOptimizerState");
  if (!Number.isInteger(adam.step) || adam.step < 0) {
    fail(`optimizer state step must be an integer ≥ 0, got ${adam.step}`);
  }
  const wrap = (x: Map<string, Float32Array>) =>
    new Map(
      [...x].map((
        [k, data],
      ) => [k, { shape: state.table.byName.get(k)?.shape ?? [], data }]),
    );
  const queue = state.device.queue;
  queue.writeBuffer(
    t.m,
    0,
    joinWeights(state.table, wrap(adam.m), { what: "m", fail }),
  );
  queue.writeBuffer(
    t.v,
    0,
    joinWeights(state.table, wrap(adam.v), { what: "v", fail }),
  );
  t.adamStep = adam.step;
}

/** The weights as safetensors bytes, config in `__metadata__.config` (one sync). */
export async function serialize(state: EngineState): Promise<Uint8Array> {
  return encodeSafetensors(await getWeights(state), {
    format: "d3pm-transformer",
    config: JSON.stringify(state.config),
  });
}

/** `config.json` and `model.safetensors` into `dir`, each written atomically. */
export async function save(state: EngineState, dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const weights = await serialize(state);
  await writeFileAtomic(
    `${dir}/${CONFIG_FILE}`,
    new TextEncoder().encode(JSON.stringify(state.config, null, 2) + "\n"),
  );
  await writeFileAtomic(`${dir}/${WEIGHTS_FILE}`, weights);
}

/** The config and weights of a model directory (written by either engine). */
export async function readModelDir(
  dir: string,
): Promise<
  { config: ModelConfig; weights: Map<string, StoredTensor> }
> {
  const config = validateConfig(
    JSON.parse(await Deno.readTextFile(`${dir}/${CONFIG_FILE}`)),
  );
  const { tensors } = decodeSafetensors(
    await Deno.readFile(`${dir}/${WEIGHTS_FILE}`),
    { expect: parameterShapes(config) },
  );
  return { config, weights: tensors };
}
