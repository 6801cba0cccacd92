/**
 * The token (+ learned position) embedding and its gradients. The tied
 * `wte`'s gradient is a deterministic scatter-add over the batch's distinct
 * tokens (an index built on the host, {@linkcode embeddingIndex}), so
 * threads own whole rows and each row sums its positions in order.
 *
 * @module
 */

import type { CpuKernels, Dropout } from "./kernels.ts";
import { dim, dropArgs, runtimeOf } from "./_runtime.ts";

/** Options of {@linkcode embeddingForward}. */
export interface EmbeddingForwardOptions {
  /** Rows N = B·T. */
  rows: number;
  /** Width. */
  d: number;
  /** Positions per sequence: row n is position n mod length. */
  length: number;
  /** tokens [N], each in [0, V). */
  tokens: Int32Array;
  /** wte [V, d]. */
  wte: Float32Array;
  /** wpe [length, d] (learned positions), or none. */
  wpe?: Float32Array | null;
  /** x [N, d]. */
  out: Float32Array;
  /** Dropout on the sum (site: usually the arena offset of out). */
  dropout?: Dropout;
}

/**
 * `x[n] = wte[tokens[n]] + wpe[n mod length]` (times the dropout mask).
 * Token ids are not checked here (the host validates its batches).
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape and views.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { createCpuKernels, embeddingForward } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 64, threads: 1 });
 * const wte = k.floats(6), out = k.floats(4), tokens = k.ints(2);
 * wte.set([1, 2, 3, 4, 5, 6]); // V 3, d 2
 * tokens.set([2, 0]);
 * embeddingForward(k, { rows: 2, d: 2, length: 2, tokens, wte, out });
 * assertEquals([...out], [5, 6, 1, 2]);
 * k.dispose();
 * ```
 */
export function embeddingForward(
  kernels: CpuKernels,
  o: EmbeddingForwardOptions,
): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot run embeddingForward";
  const n = dim(o.rows, "rows", what), d = dim(o.d, "d", what);
  const T = dim(o.length, "length", what);
  rt.run(
    "embed_forward",
    n,
    [
      d,
      T,
      rt.ptr(o.tokens, n, `${what}: tokens`),
      rt.ptr(o.wte, d, `${what}: wte`),
      o.wpe ? rt.ptr(o.wpe, T * d, `${what}: wpe`) : 0,
      rt.ptr(o.out, n * d, `${what}: out`),
      ...dropArgs(o.dropout, what),
    ],
    2 * n * d,
    1,
    [1, 1, n],
  );
}

/** The embedding-gradient index of a batch (CSR), views of kernel memory. */
export interface EmbeddingIndex {
  /** Distinct tokens, ascending [≤ N]. */
  uniq: Int32Array;
  /** starts[k] .. starts[k + 1] are token k's slots in `positions` [≤ N + 1]. */
  starts: Int32Array;
  /** The rows holding each distinct token, in order [N]. */
  positions: Int32Array;
}

/**
 * Build the embedding-gradient index of `tokens`: its distinct tokens and,
 * for each, the rows holding it (ascending), as the WebGPU engine's.
 *
 * @param tokens The batch's token ids [N].
 * @param index Where to write it (each view at least N + 1 long for starts, N for the others).
 * @returns The number of distinct tokens.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { embeddingIndex } from "@d3pm/cpu";
 *
 * const index = { uniq: new Int32Array(3), starts: new Int32Array(4), positions: new Int32Array(3) };
 * assertEquals(embeddingIndex(Int32Array.from([7, 2, 7]), index), 2);
 * assertEquals([...index.uniq.slice(0, 2)], [2, 7]);
 * assertEquals([...index.starts.slice(0, 3)], [0, 1, 3]);
 * assertEquals([...index.positions], [1, 0, 2]);
 * ```
 */
export function embeddingIndex(
  tokens: Int32Array,
  index: EmbeddingIndex,
): number {
  const n = tokens.length;
  if (
    index.uniq.length < n || index.positions.length < n ||
    index.starts.length < n + 1
  ) {
    throw new RangeError(
      `Cannot build the embedding index of ${n} tokens: uniq and positions need ${n} slots and starts ${
        n + 1
      }`,
    );
  }
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => tokens[a] - tokens[b] || a - b);
  let count = 0;
  for (let q = 0; q < n; q++) {
    const tok = tokens[order[q]];
    if (q === 0 || tok !== tokens[order[q - 1]]) {
      index.uniq[count] = tok;
      index.starts[count] = q;
      count++;
    }
    index.positions[q] = order[q];
  }
  index.starts[count] = n;
  return count;
}

/** Options of {@linkcode embeddingBackward}. */
export interface EmbeddingBackwardOptions {
  /** Sequences. */
  batch: number;
  /** Positions per sequence. */
  length: number;
  /** Width. */
  d: number;
  /** dx [B·T, d]: the gradient of the embedding's output. */
  dx: Float32Array;
  /** The batch's index ({@linkcode embeddingIndex}), views of kernel memory. */
  index: EmbeddingIndex;
  /** Distinct tokens in the index. */
  count: number;
  /** The wte gradient [V, d]: each distinct token's row gets its sum added. */
  gradWte: Float32Array;
  /** The wpe gradient [length, d], written; none without learned positions. */
  gradWpe?: Float32Array | null;
  /** The forward's dropout. */
  dropout?: Dropout;
}

/**
 * `gradWte[tok] += Σ dx[rows holding tok]` (each sum in row order, then
 * added: the head's product may have written the tied gradient first) and
 * `gradWpe[t] = Σ_b dx[b, t]`, times the forward's dropout mask.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape, views and index.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { createCpuKernels, embeddingBackward, embeddingIndex } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 256, threads: 1 });
 * const tokens = Int32Array.from([1, 1]);
 * const index = { uniq: k.ints(2), starts: k.ints(3), positions: k.ints(2) };
 * const count = embeddingIndex(tokens, index);
 * const dx = k.floats(2), gradWte = k.floats(2); // V 2, d 1
 * dx.set([0.5, 0.25]);
 * embeddingBackward(k, { batch: 1, length: 2, d: 1, dx, index, count, gradWte });
 * assertEquals([...gradWte], [0, 0.75]);
 * k.dispose();
 * ```
 */
export function embeddingBackward(
  kernels: CpuKernels,
  o: EmbeddingBackwardOptions,
): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot run embeddingBackward";
  const B = dim(o.batch, "batch", what), T = dim(o.length, "length", what);
  const d = dim(o.d, "d", what), n = B * T;
  const count = dim(o.count, "count", what);
  if (count > n) {
    throw new RangeError(`${what}: count must be ≤ B·T (${n}), got ${count}`);
  }
  const dx = rt.ptr(o.dx, n * d, `${what}: dx`);
  const drop = dropArgs(o.dropout, what);
  rt.run("embed_backward_wte", count, [
    d,
    dx,
    rt.ptr(o.index.uniq, count, `${what}: index.uniq`),
    rt.ptr(o.index.starts, count + 1, `${what}: index.starts`),
    rt.ptr(o.index.positions, n, `${what}: index.positions`),
    rt.ptr(o.gradWte, d, `${what}: gradWte`),
    ...drop,
  ], n * d);
  if (o.gradWpe) {
    rt.run("embed_backward_wpe", T, [
      d,
      T,
      B,
      dx,
      rt.ptr(o.gradWpe, T * d, `${what}: gradWpe`),
      ...drop,
    ], n * d);
  }
}
