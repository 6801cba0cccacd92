/**
 * Training checkpoints: one safetensors file holding the weights, their EMA
 * and both AdamW moments, with the rest of the state (step, data position,
 * PRNG state, resolved config) as JSON in its metadata. Written atomically:
 * a temporary file is renamed over the old checkpoint, so a crash leaves the
 * last good one in place.
 *
 * Tensor names: `model/<name>`, `ema/<name>`, `adam.m/<name>`, `adam.v/<name>`.
 *
 * @module
 */
import {
  decodeSafetensors,
  encodeSafetensors,
  type PrngState,
  type StoredTensor,
  type Tensor,
  writeFileAtomic,
} from "@d3pm/core";
import type { BatchState } from "@d3pm/data";

const FORMAT = "d3pm-checkpoint-v1";

/** Everything a checkpoint holds besides tensors. */
export interface CheckpointState {
  /** Optimiser steps completed. */
  step: number;
  /** AdamW's own step count. */
  optimizerStep: number;
  /** Where the batch iterator stands. */
  data: BatchState;
  /** The training PRNG. */
  prng: PrngState;
  /** The resolved run configuration. */
  config: unknown;
  /** Seconds spent training up to this checkpoint, over every session. */
  elapsed?: number;
  /** Training loss of the last step before this checkpoint. */
  lastLoss?: number;
}

/** A checkpoint read back. */
export interface Checkpoint {
  /** The state. */
  state: CheckpointState;
  /** Model weights by name. */
  model: Map<string, StoredTensor>;
  /** EMA weights by name (empty without EMA). */
  ema: Map<string, StoredTensor>;
  /** AdamW first moments by name. */
  adamM: Map<string, StoredTensor>;
  /** AdamW second moments by name. */
  adamV: Map<string, StoredTensor>;
}

/** A checkpoint that cannot be used; the message is one line. */
export class CheckpointError extends Error {
  /**
   * A checkpoint error.
   *
   * @param message What is wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "CheckpointError";
  }
}

async function stored(v: Tensor): Promise<StoredTensor> {
  return { shape: v.shape.slice(), data: (await v.data()) as Float32Array };
}

/**
 * Write a checkpoint atomically.
 *
 * @param path The file (e.g. `run/checkpoint.safetensors`).
 * @param parts Weights, EMA, moments and state.
 */
export async function saveCheckpoint(
  path: string,
  parts: {
    model: ReadonlyMap<string, Tensor>;
    ema?: ReadonlyMap<string, Tensor>;
    adamM: ReadonlyMap<string, Float32Array>;
    adamV: ReadonlyMap<string, Float32Array>;
    state: CheckpointState;
  },
): Promise<void> {
  const tensors = new Map<string, StoredTensor>();
  for (const [name, v] of parts.model) {
    const s = await stored(v);
    tensors.set(`model/${name}`, s);
    tensors.set(`adam.m/${name}`, {
      shape: s.shape,
      data: parts.adamM.get(name)!,
    });
    tensors.set(`adam.v/${name}`, {
      shape: s.shape,
      data: parts.adamV.get(name)!,
    });
  }
  for (const [name, v] of parts.ema ?? []) {
    tensors.set(`ema/${name}`, await stored(v));
  }
  const bytes = encodeSafetensors(tensors, {
    format: FORMAT,
    state: JSON.stringify(parts.state),
  });
  await writeFileAtomic(path, bytes);
}

/**
 * Read and validate a checkpoint.
 *
 * @param path The file.
 * @returns Its tensors and state.
 * @throws {CheckpointError} When it is missing, malformed or not a checkpoint.
 */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new CheckpointError(
      `Cannot read checkpoint ${path}: ${
        e instanceof Deno.errors.NotFound ? "no such file" : String(e)
      }`,
    );
  }
  let contents;
  try {
    contents = decodeSafetensors(bytes);
  } catch (e) {
    throw new CheckpointError(
      `Checkpoint ${path} is corrupt: ${(e as Error).message}`,
    );
  }
  if (contents.metadata.format !== FORMAT) {
    throw new CheckpointError(
      `${path} is not a training checkpoint (format ${
        JSON.stringify(contents.metadata.format)
      }, expected ${FORMAT})`,
    );
  }
  let state: CheckpointState;
  try {
    state = JSON.parse(contents.metadata.state);
  } catch {
    throw new CheckpointError(
      `Checkpoint ${path} is corrupt: its state is not JSON`,
    );
  }
  if (
    !Number.isInteger(state?.step) || !Number.isInteger(state?.optimizerStep) ||
    !Array.isArray(state?.prng) || typeof state?.data !== "object"
  ) {
    throw new CheckpointError(
      `Checkpoint ${path} is corrupt: its state lacks step, optimizerStep, data or prng`,
    );
  }
  const out: Checkpoint = {
    state,
    model: new Map(),
    ema: new Map(),
    adamM: new Map(),
    adamV: new Map(),
  };
  const groups = {
    "model": out.model,
    "ema": out.ema,
    "adam.m": out.adamM,
    "adam.v": out.adamV,
  } as const;
  for (const [name, t] of contents.tensors) {
    const slash = name.indexOf("/");
    const group = groups[name.slice(0, slash) as keyof typeof groups];
    if (!group || slash < 0) {
      throw new CheckpointError(
        `Checkpoint ${path} has an unknown tensor ${name}`,
      );
    }
    group.set(name.slice(slash + 1), t);
  }
  return out;
}
