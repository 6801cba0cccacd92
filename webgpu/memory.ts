/**
 * How much GPU memory an engine needs, before building it: to pick a batch
 * that fits an adapter's limits (every arena is one buffer, bound whole).
 *
 * @module
 */

import { type ModelConfig, validateConfig } from "@d3pm/transformer";
import { parameterTable, planArena } from "./_layout.ts";

/** Options of {@linkcode engineMemory}. */
export interface EngineMemoryOptions {
  /** Rows per step. */
  batchSize: number;
  /** Tokens per row. */
  length: number;
  /** The device's `maxStorageBufferBindingSize` (sets the default head chunk). */
  maxBindingBytes: number;
  /** An EMA copy of the parameters is kept (default false). */
  ema?: boolean;
  /** Head chunk in floats, as `WebGpuTransformerOptions.chunkFloats`. */
  chunkFloats?: number;
}

/** What {@linkcode engineMemory} returns, in bytes. */
export interface EngineMemory {
  /** One copy of the parameters. */
  parameters: number;
  /** Parameters, gradients, Adam m and v (and the EMA). */
  persistent: number;
  /** The training arena of activations (one buffer). */
  arena: number;
  /** The largest single buffer: it must fit `maxStorageBufferBindingSize`. */
  largestBuffer: number;
  /** Everything of the training plan. */
  total: number;
}

/** The head chunk the engine uses by default for a binding limit, in floats. */
export function defaultChunkFloats(maxBindingBytes: number): number {
  return Math.min(32 * 1024 * 1024, Math.floor(maxBindingBytes / 4 / 8));
}

/**
 * The GPU memory of an engine's training plan.
 *
 * @param config The model configuration.
 * @param options Shape, binding limit, EMA, head chunk.
 * @returns Bytes by part.
 *
 * @example
 * ```ts
 * import { engineMemory } from "@d3pm/webgpu";
 * import { preset } from "@d3pm/transformer";
 * import { assert } from "@std/assert";
 * const m = engineMemory(preset("tiny", { vocabSize: 4096 }), {
 *   batchSize: 8, length: 128, maxBindingBytes: 128 * 2 ** 20,
 * });
 * assert(m.largestBuffer <= 128 * 2 ** 20); // the reference step fits lavapipe
 * ```
 */
export function engineMemory(
  config: ModelConfig,
  options: EngineMemoryOptions,
): EngineMemory {
  const c = validateConfig(config);
  const table = parameterTable(c);
  const chunk = options.chunkFloats ??
    defaultChunkFloats(options.maxBindingBytes);
  const arena = planArena(c, options.batchSize, options.length, true, chunk)
    .size * 4;
  const parameters = table.size * 4;
  const persistent = parameters * (options.ema ? 5 : 4);
  const ints = (5 * options.batchSize * options.length + 2) * 4;
  return {
    parameters,
    persistent,
    arena,
    largestBuffer: Math.max(arena, parameters, ints),
    total: persistent + arena + ints,
  };
}
