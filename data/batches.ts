/**
 * A seeded, shuffling, resumable iterator over batches of blocks.
 *
 * @module
 */
import { prng } from "@d3pm/core";
import { DataError } from "./errors.ts";
import type { Blocks } from "./pack.ts";

/** Where a {@linkcode BatchIterator} stands; save it to resume later. */
export interface BatchState {
  /** The seed of the shuffles. */
  seed: number;
  /** Epochs completed. */
  epoch: number;
  /** Batches already taken from the current epoch. */
  batch: number;
}

/** One batch: `batchSize × length` ids, row-major. */
export interface Batch {
  /** The ids (int32, as tensors want them). */
  tokens: Int32Array;
  /** Rows. */
  batchSize: number;
  /** Ids per row. */
  length: number;
  /** Epoch this batch belongs to (0-based). */
  epoch: number;
  /** Batches taken before this one, over all epochs. */
  step: number;
}

/** Options of {@linkcode BatchIterator}. */
export interface BatchIteratorOptions {
  /** Blocks per batch. */
  batchSize: number;
  /** Seed of the per-epoch shuffles (default 0). */
  seed?: number;
  /** Shuffle each epoch (default `true`); otherwise blocks come in order. */
  shuffle?: boolean;
  /** Continue from a saved {@linkcode BatchState} (its seed wins). */
  state?: BatchState;
}

/**
 * Endless batches over blocks, epoch after epoch. Each epoch visits every
 * block once in an order drawn from `(seed, epoch)`; the last incomplete batch
 * of an epoch is dropped. The same seed gives the same batches, and an
 * iterator made from a saved `state` continues exactly where it stood.
 *
 * @example
 * ```ts
 * import { BatchIterator } from "@d3pm/data";
 * import { assertEquals } from "@std/assert";
 * const blocks = { data: Uint32Array.from({ length: 12 }, (_, i) => i), count: 6, length: 2 };
 * const a = new BatchIterator(blocks, { batchSize: 2, seed: 1 });
 * a.next();
 * const saved = a.state;
 * const b = new BatchIterator(blocks, { batchSize: 2, state: saved });
 * assertEquals(b.next().tokens, a.next().tokens);
 * ```
 */
export class BatchIterator implements Iterable<Batch> {
  #blocks: Blocks;
  #batchSize: number;
  #shuffle: boolean;
  #seed: number;
  #epoch: number;
  #batch: number;
  #order: Uint32Array;

  /**
   * An iterator at the start of epoch 0, or at a saved state.
   *
   * @param blocks What to batch.
   * @param options Batch size, seed, shuffling and a state to resume from.
   */
  constructor(blocks: Blocks, options: BatchIteratorOptions) {
    const { batchSize } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new DataError(
        `Cannot batch: batchSize must be a positive integer, got ${batchSize}`,
      );
    }
    if (batchSize > blocks.count) {
      throw new DataError(
        `Cannot batch: batchSize ${batchSize} is larger than the ${blocks.count} blocks available`,
      );
    }
    this.#blocks = blocks;
    this.#batchSize = batchSize;
    this.#shuffle = options.shuffle ?? true;
    if (
      options.state === undefined && options.seed !== undefined &&
      !Number.isInteger(options.seed)
    ) {
      // Else the message spoke of a state the caller never gave.
      throw new DataError(
        `Cannot batch: seed must be an integer, got ${options.seed}`,
      );
    }
    const state = options.state ??
      { seed: options.seed ?? 0, epoch: 0, batch: 0 };
    if (
      !Number.isInteger(state.seed) || !Number.isInteger(state.epoch) ||
      !Number.isInteger(state.batch) || state.epoch < 0 || state.batch < 0 ||
      state.batch > this.batchesPerEpoch
    ) {
      throw new DataError(
        `Cannot resume batches: state must have integer seed, epoch ≥ 0 and batch in [0, ${this.batchesPerEpoch}], got ${
          JSON.stringify(state)
        }`,
      );
    }
    this.#seed = state.seed;
    this.#epoch = state.epoch;
    this.#batch = state.batch;
    this.#order = this.#orderOf(this.#epoch);
  }

  /** Full batches in one epoch. */
  get batchesPerEpoch(): number {
    return Math.floor(this.#blocks.count / this.#batchSize);
  }

  /** Where the iterator stands; pass it as `options.state` to resume. */
  get state(): BatchState {
    return { seed: this.#seed, epoch: this.#epoch, batch: this.#batch };
  }

  #orderOf(epoch: number): Uint32Array {
    const n = this.#blocks.count;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    if (!this.#shuffle) return order;
    // Fisher–Yates with a PRNG drawn from (seed, epoch): no state to carry.
    const rng = prng(Math.imul(this.#seed ^ 0x5bd1e995, 0x27d4eb2f) ^ epoch);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.nextInt(i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    return order;
  }

  /** The next batch; epochs repeat without end. */
  next(): Batch {
    if (this.#batch >= this.batchesPerEpoch) {
      this.#epoch++;
      this.#batch = 0;
      this.#order = this.#orderOf(this.#epoch);
    }
    const { data, length } = this.#blocks;
    const b = this.#batchSize;
    const tokens = new Int32Array(b * length);
    for (let r = 0; r < b; r++) {
      const block = this.#order[this.#batch * b + r];
      tokens.set(
        data.subarray(block * length, (block + 1) * length),
        r * length,
      );
    }
    const value: Batch = {
      tokens,
      batchSize: b,
      length,
      epoch: this.#epoch,
      step: this.#epoch * this.batchesPerEpoch + this.#batch,
    };
    this.#batch++;
    return value;
  }

  /** Batches forever (use `break`, or `take` a number of them). */
  *[Symbol.iterator](): Iterator<Batch> {
    while (true) yield this.next();
  }
}
