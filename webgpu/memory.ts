/**
 * How much GPU memory an engine needs, before building it: to pick a batch
 * that fits an adapter's limits (every arena is one buffer, bound whole).
 *
 * @module
 */

import { type ModelConfig, validateConfig } from "@d3pm/transformer/init";
import { parameterTable, planArena } from "./_layout.ts";

/** Options of {@linkcode engineMemory}. */
export interface EngineMemoryOptions {
  /** Rows per step (ignored when `evaluationOnly`). */
  batchSize: number;
  /** Tokens per row (ignored when `evaluationOnly`). */
  length: number;
  /** The device's `maxStorageBufferBindingSize` (sets the default head chunk). */
  maxBindingBytes: number;
  /** An EMA copy of the parameters is kept (default false). */
  ema?: boolean;
  /** Head chunk in floats, as `WebGpuTransformerOptions.chunkFloats`. */
  chunkFloats?: number;
  /**
   * An engine built with `evaluationOnly`: the parameters alone, no
   * gradients, moments, EMA or training plan (default false).
   */
  evaluationOnly?: boolean;
}

/** What {@linkcode engineMemory} returns, in bytes. */
export interface EngineMemory {
  /** One copy of the parameters. */
  parameters: number;
  /** Parameters, gradients, Adam m and v (and the EMA); the parameters alone when evaluation-only. */
  persistent: number;
  /** The training arena of activations (one buffer; 0 when evaluation-only). */
  arena: number;
  /** The largest single buffer: it must fit `maxStorageBufferBindingSize`. */
  largestBuffer: number;
  /**
   * Everything allocated when the engine is built (the persistent buffers,
   * the training arena and ints; not the uniform blocks and scalars, a few
   * KiB, nor the plans that scoring and generation build for their shapes).
   */
  total: number;
}

/**
 * The head chunk the engine uses by default for a binding limit, in floats:
 * an eighth of the binding, at most 32M floats (128 MiB).
 *
 * @param maxBindingBytes The device's `maxStorageBufferBindingSize`.
 * @returns Floats per logits chunk of the training head.
 *
 * @example
 * ```ts
 * import { defaultChunkFloats } from "@d3pm/webgpu";
 * import { assertEquals } from "@std/assert";
 * assertEquals(defaultChunkFloats(128 * 2 ** 20), 4 * 2 ** 20); // lavapipe: 16 MiB chunks
 * assertEquals(defaultChunkFloats(2 ** 32), 32 * 2 ** 20); // capped
 * ```
 */
export function defaultChunkFloats(maxBindingBytes: number): number {
  return Math.min(32 * 1024 * 1024, Math.floor(maxBindingBytes / 4 / 8));
}

/**
 * The GPU memory an engine allocates when it is built: for training, the
 * parameters, their gradients, AdamW moments (and EMA) and the training
 * plan; for evaluation only, the parameters.
 *
 * @param config The model configuration.
 * @param options Shape, binding limit, EMA, head chunk, evaluation only.
 * @returns Bytes by part.
 *
 * @example
 * ```ts
 * import { engineMemory } from "@d3pm/webgpu";
 * import { preset } from "@d3pm/transformer";
 * import { assert, assertEquals } from "@std/assert";
 * const m = engineMemory(preset("tiny", { vocabSize: 4096 }), {
 *   batchSize: 8, length: 128, maxBindingBytes: 128 * 2 ** 20,
 * });
 * assert(m.largestBuffer <= 128 * 2 ** 20); // the reference step fits lavapipe
 * const e = engineMemory(preset("tiny", { vocabSize: 4096 }), {
 *   batchSize: 8, length: 128, maxBindingBytes: 128 * 2 ** 20, evaluationOnly: true,
 * });
 * assertEquals(e.total, m.parameters); // no gradients, moments or arena
 * ```
 */
export function engineMemory(
  config: ModelConfig,
  options: EngineMemoryOptions,
): EngineMemory {
  const c = validateConfig(config);
  const table = parameterTable(c);
  const parameters = table.size * 4;
  if (options.evaluationOnly) {
    return {
      parameters,
      persistent: parameters,
      arena: 0,
      largestBuffer: parameters,
      total: parameters,
    };
  }
  const chunk = options.chunkFloats ??
    defaultChunkFloats(options.maxBindingBytes);
  const arena = planArena(c, options.batchSize, options.length, true, chunk)
    .size * 4;
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
