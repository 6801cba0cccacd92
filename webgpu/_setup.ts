// Setting an engine up: the options checked, the initial weights (seeded
// as the tfjs Transformer's, without tfjs), the device, and the state —
// parameters, and for a training engine the gradients, AdamW moments, EMA,
// scalars and the training step's plan — built inside error scopes, so an
// out-of-memory or invalid build is one error and leaves nothing behind.
// Private.

import type { StoredTensor } from "@d3pm/core";
import {
  initialWeights,
  type ModelConfig,
  validateConfig,
} from "@d3pm/transformer/init";
import { requestEngineDevice } from "./device.ts";
import { checkEngineOptions, type EngineShape } from "./_engine_checks.ts";
import { defaultChunkFloats } from "./memory.ts";
import { joinWeights, parameterTable } from "./_layout.ts";
import { kernelLayout } from "./_recorder.ts";
import { S } from "./_wgsl.ts";
import { type EngineSettings, EngineState, fail } from "./_state.ts";
import type { WebGpuTransformerOptions } from "./types.ts";

// Check the options against the config; returns the training shape.
function check(c: ModelConfig, options: WebGpuTransformerOptions): EngineShape {
  const shape = checkEngineOptions(c, options, fail);
  const hd = c.dModel / c.nHead;
  if (hd > 256) fail(`head size dModel/nHead must be ≤ 256, got ${hd}`);
  if (![undefined, "auto", 64, 128].includes(options.matmulTile)) {
    fail(
      `matmulTile must be "auto", 64 or 128, got ${
        JSON.stringify(options.matmulTile)
      }`,
    );
  }
  if (![undefined, "new", "old"].includes(options.kernels)) {
    fail(
      `kernels must be "new" or "old", got ${JSON.stringify(options.kernels)}`,
    );
  }
  if (![undefined, "tiled", "wide"].includes(options.attentionKernel)) {
    fail(
      `attentionKernel must be "tiled" or "wide", got ${
        JSON.stringify(options.attentionKernel)
      }`,
    );
  }
  if (![undefined, "tile", "skinny"].includes(options.decodeMatmul)) {
    fail(
      `decodeMatmul must be "tile" or "skinny", got ${
        JSON.stringify(options.decodeMatmul)
      }`,
    );
  }
  if (![undefined, "single", "split"].includes(options.decodeAttention)) {
    fail(
      `decodeAttention must be "single" or "split", got ${
        JSON.stringify(options.decodeAttention)
      }`,
    );
  }
  return shape;
}

function settings(
  device: GPUDevice,
  options: WebGpuTransformerOptions,
): EngineSettings {
  return {
    adam: {
      beta1: options.adamw?.beta1 ?? 0.9,
      beta2: options.adamw?.beta2 ?? 0.95,
      eps: options.adamw?.eps ?? 1e-8,
      weightDecay: options.adamw?.weightDecay ?? 0.1,
    },
    clipNorm: options.clipNorm ?? 1,
    emaDecay: options.emaDecay ?? -1,
    exclude: options.excludeToken ?? 0xffffffff,
    chunkFloats: options.chunkFloats ??
      defaultChunkFloats(device.limits.maxStorageBufferBindingSize),
    seed: (options.seed ?? 0) >>> 0,
    matmulTile: options.matmulTile ?? "auto",
    kernels: options.kernels ?? "new",
    attentionKernel: options.attentionKernel ?? "tiled",
    decodeMatmul: options.decodeMatmul ?? "tile",
    decodeAttention: options.decodeAttention ?? "single",
  };
}

// Allocate and upload: parameters, then (training) gradients, moments, the
// EMA (starting at the weights), scalars and the step's plan.
function build(
  c: ModelConfig,
  device: GPUDevice,
  ownsDevice: boolean,
  options: WebGpuTransformerOptions,
  shape: EngineShape,
  weights: ReadonlyMap<string, StoredTensor>,
): EngineState {
  const table = parameterTable(c);
  const state = new EngineState(
    c,
    device,
    ownsDevice,
    table,
    settings(device, options),
    kernelLayout(device),
  );
  try {
    const flat = joinWeights(table, weights, { what: "setWeights", fail });
    device.queue.writeBuffer(state.params, 0, flat);
    if (options.evaluationOnly) return state;
    const bytes = table.size * 4;
    const buffers = {
      grads: state.buffer(bytes),
      m: state.buffer(bytes),
      v: state.buffer(bytes),
      ema: state.settings.emaDecay >= 0 ? state.buffer(bytes) : null,
      scalars: state.buffer(S.size * 4),
    };
    const plan = state.buildTrainingPlan(
      shape.batchSize,
      shape.length,
      buffers,
    );
    state.training = { ...buffers, plan, adamStep: 0 };
    if (buffers.ema) device.queue.writeBuffer(buffers.ema, 0, flat);
    return state;
  } catch (e) {
    // The device stays: the caller still owns it, or destroys it.
    state.dispose();
    throw e;
  }
}

/**
 * Check the options, take the initial weights, get a device and build the
 * engine's state (see `WebGpuTransformer.create`).
 */
export async function openEngine(
  config: ModelConfig,
  options: WebGpuTransformerOptions,
): Promise<{ state: EngineState; shape: EngineShape }> {
  const c = validateConfig(config);
  const shape = check(c, options);
  const weights = options.weights ?? initialWeights(c, options.seed ?? 0);
  const ownsDevice = options.device === undefined;
  const device = options.device ?? (await requestEngineDevice()).device;
  device.pushErrorScope("validation");
  device.pushErrorScope("out-of-memory");
  let state: EngineState | undefined;
  let thrown: unknown = null;
  try {
    state = build(c, device, false, options, shape, weights);
  } catch (e) {
    thrown = e;
  }
  // Both scopes popped before anything awaits (innermost first): another
  // engine opening on a shared device would otherwise push its own scopes
  // in between, and this one would pop and blame (or lose) its errors.
  const [oom, invalid] = await Promise.all([
    device.popErrorScope(),
    device.popErrorScope(),
  ]);
  const error = oom ?? invalid;
  if (thrown !== null || error) {
    state?.dispose();
    if (ownsDevice) device.destroy();
    if (thrown !== null) throw thrown;
    throw new Error(
      `WebGpuTransformer: building the engine failed: ${
        error!.message.split("\n")[0]
      }`,
    );
  }
  state!.ownsDevice = ownsDevice;
  return { state: state!, shape };
}
