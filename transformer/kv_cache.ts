/**
 * The key/value cache of autoregressive decoding.
 *
 * @module
 */

import type { Tensor4D } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";

/** Keys and values of one layer, each [B, nHead, length, headDim]. */
export interface LayerKV {
  /** Keys after rotary positions (when used), [B, nHead, length, headDim]. */
  k: Tensor4D;
  /** Values, [B, nHead, length, headDim]. */
  v: Tensor4D;
}

/**
 * Keys and values of every layer for the tokens decoded so far. Create one
 * with `Transformer.createCache`, feed it to `Transformer.decode`, and
 * dispose it when done. It owns its tensors.
 *
 * @example Grow a cache token by token
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { preset, Transformer } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const model = new Transformer(preset("micro", { vocabSize: 16, contextLength: 8 }), { seed: 0 });
 * const cache = model.createCache(2);
 * assertEquals([cache.batchSize, cache.capacity, cache.length], [2, 8, 0]);
 * assertEquals(cache.layer(0), null);
 * const prompt = tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], "int32");
 * tf.dispose(model.decode(prompt, cache));
 * assertEquals(cache.length, 3);
 * assertEquals(cache.layer(0)!.k.shape, [2, 2, 3, 32]); // [B, nHead, length, headDim]
 * cache.dispose();
 * assertEquals(cache.length, 0);
 * prompt.dispose();
 * model.dispose();
 * ```
 */
export class KVCache {
  /** Rows in the batch. */
  readonly batchSize: number;
  /** Most tokens the cache may hold (the model's context length). */
  readonly capacity: number;
  #layers: (LayerKV | null)[];
  #length = 0;

  /**
   * An empty cache.
   *
   * @param nLayer Number of layers.
   * @param options Batch size and capacity.
   */
  constructor(
    nLayer: number,
    options: { batchSize: number; capacity: number },
  ) {
    const { batchSize, capacity } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(
        `Cannot create KV cache: batchSize must be a positive integer, got ${batchSize}`,
      );
    }
    this.batchSize = batchSize;
    this.capacity = capacity;
    this.#layers = new Array(nLayer).fill(null);
  }

  /** Tokens held so far (the position of the next token). */
  get length(): number {
    return this.#length;
  }

  /**
   * Keys and values of layer `i`, or null while the cache is empty.
   *
   * @param i Layer index.
   * @returns The layer's tensors (owned by the cache: do not dispose).
   */
  layer(i: number): LayerKV | null {
    return this.#layers[i];
  }

  /**
   * Replace every layer's tensors after `added` more tokens; the old tensors
   * are disposed and the new ones are kept (owned by the cache).
   *
   * @param layers New keys and values, one entry per layer.
   * @param added How many tokens they add.
   */
  update(layers: LayerKV[], added: number): void {
    if (layers.length !== this.#layers.length) {
      throw new RangeError(
        `Cannot update KV cache: expected ${this.#layers.length} layers, got ${layers.length}`,
      );
    }
    for (let i = 0; i < layers.length; i++) {
      const old = this.#layers[i];
      tf.keep(layers[i].k);
      tf.keep(layers[i].v);
      if (old !== null) {
        if (old.k !== layers[i].k) old.k.dispose();
        if (old.v !== layers[i].v) old.v.dispose();
      }
      this.#layers[i] = layers[i];
    }
    this.#length += added;
  }

  /** Free every tensor and empty the cache. */
  dispose(): void {
    for (const entry of this.#layers) {
      entry?.k.dispose();
      entry?.v.dispose();
    }
    this.#layers.fill(null);
    this.#length = 0;
  }
}
