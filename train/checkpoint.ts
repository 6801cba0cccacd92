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
  BoundedReadError,
  decodeSafetensors,
  encodeSafetensors,
  type PrngState,
  readBounded,
  readSafetensorsHeader,
  safetensorsBound,
  SafetensorsError,
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
  /**
   * The loop's `lastLoss` at this checkpoint: the mean training loss of the
   * last logged interval before it (an older version on tfjs: the last
   * step's loss).
   */
  lastLoss?: number;
  /**
   * The steps `lastLoss` averages, first and last (absent in checkpoints of
   * older versions, and before the first logged interval).
   */
  lastLossSteps?: [number, number];
  /**
   * What ran the steps up to this checkpoint: one entry per session that
   * ran on a different engine than the one before it, with the step it
   * started from (absent in checkpoints of older versions, and when the
   * loop was given no `engineName`).
   */
  engines?: EngineSpan[];
}

/** Steps from `fromStep` on were run by `engine` (until the next span's `fromStep`). */
export interface EngineSpan {
  /** What ran them: the loop's `engineName` option (backend, threads, BLAS kernels). */
  engine: string;
  /** The first step it ran (0-based: the steps completed before it). */
  fromStep: number;
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

/**
 * A checkpoint that cannot be used; the message is one line.
 *
 * @example Tell a missing or foreign file from other failures
 * ```ts
 * import { encodeSafetensors } from "@d3pm/core";
 * import { CheckpointError, loadCheckpoint } from "@d3pm/train";
 * import { assertRejects } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await assertRejects(() => loadCheckpoint(`${dir}/none.safetensors`), CheckpointError, "no such file");
 * // Model weights alone are a safetensors file, but not a checkpoint.
 * await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors(new Map()));
 * await assertRejects(
 *   () => loadCheckpoint(`${dir}/model.safetensors`),
 *   CheckpointError,
 *   "is not a training checkpoint",
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class CheckpointError extends Error {
  /**
   * What is wrong with the file, without its name or what to do about it
   * (`its state is not a JSON object`): for a caller that names the file
   * in its own words. The message, when none is given.
   */
  readonly detail: string;
  /**
   * A checkpoint error.
   *
   * @param message What is wrong, naming the file.
   * @param detail What is wrong, without the file's name (default: the message).
   */
  constructor(message: string, detail?: string) {
    super(message);
    this.name = "CheckpointError";
    this.detail = detail ?? message;
  }
}

// A damaged checkpoint blocks the resume of its model until it is dealt
// with: each refusal says how.
function corrupt(path: string, why: string): CheckpointError {
  return new CheckpointError(
    `Checkpoint ${path} is corrupt: ${why}; restore it, or delete it to train this model again from step 0`,
    why,
  );
}

function absent(path: string, e: unknown): CheckpointError {
  const why = e instanceof Deno.errors.NotFound
    ? "no such file"
    : String(e).split("\n")[0];
  return new CheckpointError(`Cannot read checkpoint ${path}: ${why}`, why);
}

/**
 * The state a checkpoint's header holds (its `format` and `state`
 * metadata), checked: one place reads it, for {@linkcode loadCheckpoint}
 * and {@linkcode readCheckpointState}.
 */
function stateOf(
  path: string,
  metadata: Record<string, string>,
): CheckpointState {
  if (metadata.format !== FORMAT) {
    throw new CheckpointError(
      `${path} is not a training checkpoint (format ${
        JSON.stringify(metadata.format)
      }, expected ${FORMAT})`,
      `no ${FORMAT} state in its header`,
    );
  }
  let state: CheckpointState;
  try {
    state = JSON.parse(metadata.state);
  } catch {
    throw corrupt(path, "its state is not JSON");
  }
  // `null`, a number or a list parse too: their fields would be read off nothing.
  if (typeof state !== "object" || state === null || Array.isArray(state)) {
    throw corrupt(path, "its state is not a JSON object");
  }
  if (
    !Number.isInteger(state.step) || !Number.isInteger(state.optimizerStep) ||
    !Array.isArray(state.prng) || typeof state.data !== "object" ||
    state.data === null || Array.isArray(state.data)
  ) {
    throw corrupt(path, "its state lacks step, optimizerStep, data or prng");
  }
  const spans = state.engines;
  if (
    spans !== undefined &&
    !(Array.isArray(spans) &&
      spans.every((s) =>
        typeof s?.engine === "string" && Number.isInteger(s?.fromStep) &&
        s.fromStep >= 0 && s.fromStep <= state.step
      ))
  ) {
    throw corrupt(
      path,
      `its state's engines is not a list of {engine, fromStep ≤ ${state.step}}`,
    );
  }
  const covered = state.lastLossSteps;
  if (
    covered !== undefined &&
    !(Array.isArray(covered) && covered.length === 2 &&
      covered.every(Number.isInteger) && covered[0] >= 1 &&
      covered[0] <= covered[1] && covered[1] <= state.step)
  ) {
    throw corrupt(
      path,
      `its state's lastLossSteps is not [first, last] with 1 ≤ first ≤ last ≤ ${state.step}`,
    );
  }
  return state;
}

async function stored(v: Tensor | StoredTensor): Promise<StoredTensor> {
  if (v.data instanceof Float32Array) return v as StoredTensor;
  const t = v as Tensor;
  return { shape: t.shape.slice(), data: (await t.data()) as Float32Array };
}

/**
 * Write a checkpoint atomically.
 *
 * @param path The file (e.g. `run/checkpoint.safetensors`).
 * @param parts Weights, EMA, moments and state.
 * @returns Once the file is in place.
 *
 * @example Save and read back
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { loadCheckpoint, saveCheckpoint } from "@d3pm/train";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const w = tf.variable(tf.tensor1d([1, 2]));
 * const tmp = await Deno.makeTempDir();
 * const path = `${tmp}/checkpoint.safetensors`;
 * await saveCheckpoint(path, {
 *   model: new Map([["w", w]]),
 *   adamM: new Map([["w", Float32Array.of(0.1, 0.2)]]),
 *   adamV: new Map([["w", Float32Array.of(0.01, 0.04)]]),
 *   state: {
 *     step: 7, optimizerStep: 7, data: { seed: 0, epoch: 1, batch: 3 },
 *     prng: [1, 2, 3, 4], config: { lr: 0.1 },
 *   },
 * });
 * const back = await loadCheckpoint(path);
 * assertEquals(back.state.step, 7);
 * assertEquals(back.state.config, { lr: 0.1 });
 * assertEquals(Array.from(back.model.get("w")!.data), [1, 2]);
 * assertEquals(Array.from(back.adamV.get("w")!.data), [0.01, 0.04].map(Math.fround));
 * assertEquals(back.ema.size, 0); // none saved
 * w.dispose();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function saveCheckpoint(
  path: string,
  parts: {
    model: ReadonlyMap<string, Tensor | StoredTensor>;
    ema?: ReadonlyMap<string, Tensor | StoredTensor>;
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

/** The most bytes a checkpoint is read with when no model bounds it (8 GiB). */
const MAX_CHECKPOINT = 8 * 2 ** 30;

/** Options of {@linkcode loadCheckpoint}. */
export interface LoadCheckpointOptions {
  /**
   * The most bytes the file may hold, checked before it is read (see
   * {@linkcode checkpointBytes}); default 8 GiB.
   */
  maxBytes?: number;
}

/**
 * The most bytes a checkpoint of a model can hold: four float32 copies of
 * the weights with an EMA (weights, EMA, two AdamW moments), three without,
 * and room for the header (each tensor's entry, and the state with its
 * configuration, up to 1 MiB).
 *
 * @param weights The model's weights, by name (their shapes count).
 * @param ema Whether the checkpoint holds an EMA.
 * @returns The bound, for {@linkcode LoadCheckpointOptions.maxBytes}.
 *
 * @example
 * ```ts
 * import { checkpointBytes } from "@d3pm/train";
 * import { assert } from "@std/assert";
 * const w = new Map([["w", { shape: [1000, 100] }]]);
 * const bound = checkpointBytes(w, false);
 * assert(bound > 3 * 4 * 100_000 && bound < 3 * 4 * 100_000 + (2 << 20));
 * ```
 */
export function checkpointBytes(
  weights: ReadonlyMap<string, { shape: readonly number[] }>,
  ema: boolean,
): number {
  return safetensorsBound(
    [...weights].map(([name, { shape }]) => [name, shape] as const),
    ema ? 4 : 3,
  );
}

/**
 * Read and validate a checkpoint.
 *
 * @param path The file.
 * @param options The most bytes it may hold.
 * @returns Its tensors and state.
 * @throws {CheckpointError} When it is missing, malformed or not a
 *   checkpoint, not a regular file, or larger than `maxBytes`.
 *
 * @example Inspect the checkpoint a training run wrote
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { loadCheckpoint, train } from "@d3pm/train";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const w = tf.variable(tf.scalar(0));
 * const tmp = await Deno.makeTempDir();
 * const path = `${tmp}/checkpoint.safetensors`;
 * const result = await train({
 *   variables: new Map([["w", w]]),
 *   loss: () => tf.tidy(() => w.sub(1).square()) as tf.Scalar,
 *   blocks: { data: Uint32Array.of(1, 2, 3, 4), count: 2, length: 2 },
 *   batchSize: 1, steps: 3, lr: () => 0.1, checkpoint: path, config: { run: "demo" },
 *   progress: false,
 * });
 * const ck = await loadCheckpoint(path);
 * assertEquals(ck.state.step, 3);
 * assertEquals(ck.state.config, { run: "demo" });
 * assertEquals(ck.state.lastLoss, result.lastLoss);
 * assertEquals(ck.model.get("w")!.data[0], (await w.data())[0]);
 * assertEquals([...ck.adamM.keys()], ["w"]);
 * result.optimizer.dispose();
 * w.dispose();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function loadCheckpoint(
  path: string,
  options: LoadCheckpointOptions = {},
): Promise<Checkpoint> {
  let bytes: Uint8Array;
  try {
    // Only a regular file (a FIFO or a device is never read), and never
    // more than the model's checkpoint can be: checked before reading, so
    // a planted or damaged large file is not allocated first.
    bytes = await readBounded(path, {
      limit: options.maxBytes ?? MAX_CHECKPOINT,
      what: options.maxBytes === undefined
        ? "training checkpoint"
        : "training checkpoint of this model",
    });
  } catch (e) {
    if (e instanceof BoundedReadError) {
      throw new CheckpointError(
        `${e.message}; restore it, or delete it to train this model again from step 0`,
      );
    }
    throw absent(path, e);
  }
  let contents;
  try {
    contents = decodeSafetensors(bytes);
  } catch (e) {
    throw corrupt(path, (e as Error).message);
  }
  const state = stateOf(path, contents.metadata);
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
    const prefix = name.slice(0, slash);
    // Own keys only: `constructor/x` must not find Object's constructor.
    if (slash < 0 || !Object.hasOwn(groups, prefix)) {
      throw new CheckpointError(
        `Checkpoint ${path} has an unknown tensor ${name}`,
      );
    }
    groups[prefix as keyof typeof groups].set(name.slice(slash + 1), t);
  }
  return out;
}

/**
 * The state of a training checkpoint — its step, data position, PRNG,
 * resolved configuration, engines — read from its header alone: no tensor
 * is read, however large the checkpoint. The header is checked as
 * {@linkcode loadCheckpoint} checks it (a regular file, a safetensors
 * header of at most 100 MiB that fits the file, the format `train()`
 * writes, a state that is a JSON object with its fields).
 *
 * @param path The file.
 * @returns Its state.
 * @throws {CheckpointError} In one line naming the file, when it is
 *   missing, not a regular file, torn or malformed, not a checkpoint, or its
 *   state is not an object with step, optimizerStep, data and prng; its
 *   `detail` says what is wrong without the file's name.
 *
 * @example Read where a checkpoint stands, and tell a file that is none
 * ```ts
 * import { encodeSafetensors } from "@d3pm/core";
 * import { CheckpointError, readCheckpointState, saveCheckpoint } from "@d3pm/train";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await saveCheckpoint(`${dir}/checkpoint.safetensors`, {
 *   model: new Map([["w", { shape: [2], data: Float32Array.of(1, 2) }]]),
 *   adamM: new Map([["w", new Float32Array(2)]]),
 *   adamV: new Map([["w", new Float32Array(2)]]),
 *   state: {
 *     step: 7, optimizerStep: 7, data: { seed: 0, epoch: 1, batch: 3 },
 *     prng: [1, 2, 3, 4], config: { lr: 0.1 },
 *   },
 * });
 * const state = await readCheckpointState(`${dir}/checkpoint.safetensors`);
 * assertEquals([state.step, state.config], [7, { lr: 0.1 }]);
 * // Model weights alone are a safetensors file, but not a checkpoint.
 * await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors(new Map()));
 * const e = await assertRejects(
 *   () => readCheckpointState(`${dir}/model.safetensors`),
 *   CheckpointError,
 *   `${dir}/model.safetensors is not a training checkpoint`,
 * );
 * assertEquals(e.detail, "no d3pm-checkpoint-v1 state in its header");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readCheckpointState(
  path: string,
): Promise<CheckpointState> {
  let metadata: Record<string, string>;
  try {
    // Only the first 8 + n bytes, n bounded (100 MiB), after the file is
    // found to be a regular one: a FIFO or a device is never opened.
    ({ metadata } = await readSafetensorsHeader(path));
  } catch (e) {
    if (e instanceof SafetensorsError) throw corrupt(path, e.detail);
    throw absent(path, e);
  }
  return stateOf(path, metadata);
}
