/**
 * Multi-head self-attention over qkv [B, T, 3d] (causal or bidirectional,
 * ALiBi in both modes), forward and backward, and rotary positions. The
 * four products per head run `cblas_sgemm` on strided views of qkv (row
 * stride 3d), so no head is ever copied out; each head's products and its
 * softmax (or gradient) kernel run together, heads split over the threads. The
 * probabilities [B, H, T, T] are kept for the backward (llm.c's `att`).
 *
 * @module
 */

import type { CpuKernels, Dropout } from "./kernels.ts";
import { dim, dropArgs, runtimeOf } from "./_runtime.ts";

/**
 * ALiBi of a bidirectional model: head h adds −m_h·|j − i − c_h| to the
 * score of query i for key j, m_h = slope·2^(−8h/H), c_h = 0; with
 * `neighbours`, heads 0 and 1 use m = slope and c = −1, +1.
 */
export interface AttentionBias {
  /** The first head's slope. */
  slope: number;
  /** Heads 0 and 1 centred on the left and right neighbour. */
  neighbours: boolean;
}

/** Attention dropout: the mask of probability (b, h, i, j) is element (b·H + h)·T·T + i·T + j of the site. */
export interface AttentionDropout extends Dropout {
  /** Scratch [B, H, T, T] for the dropped probabilities. */
  dropped: Float32Array;
}

/** The shape shared by the forward and the backward. */
export interface AttentionShape {
  /** Sequences. */
  batch: number;
  /** Positions per sequence (T). */
  length: number;
  /** Heads (H). */
  heads: number;
  /** Channels per head; d = heads·headDim. */
  headDim: number;
  /** Query i sees keys j ≤ i only. */
  causal: boolean;
  /** ALiBi, or none. */
  alibi?: AttentionBias | null;
}

/** Options of {@linkcode attentionForward}. */
export interface AttentionForwardOptions extends AttentionShape {
  /** qkv [B, T, 3d]: q, k (after RoPE), v. */
  qkv: Float32Array;
  /** y [B, T, d]: each head's output at channels h·hd. */
  y: Float32Array;
  /** Log-sum-exp of each query's scores [B, H, T]. */
  lse: Float32Array;
  /** The probabilities [B, H, T, T] (0 where masked), kept for the backward. */
  probs: Float32Array;
  /** Dropout on the probabilities (training). */
  dropout?: AttentionDropout;
}

interface Geometry {
  B: number;
  T: number;
  H: number;
  hd: number;
  d: number;
}

function geometry(s: AttentionShape, what: string): Geometry {
  const B = dim(s.batch, "batch", what), T = dim(s.length, "length", what);
  const H = dim(s.heads, "heads", what), hd = dim(s.headDim, "headDim", what);
  if (H < 1 || hd < 1) {
    throw new RangeError(`${what}: heads and headDim must be ≥ 1`);
  }
  if (s.alibi && !(Number.isFinite(s.alibi.slope) && s.alibi.slope >= 0)) {
    throw new RangeError(
      `${what}: alibi.slope must be a finite number ≥ 0, got ${s.alibi.slope}`,
    );
  }
  return { B, T, H, hd, d: H * hd };
}

/**
 * Attention forward: per head, S = q·kᵀ/√hd (+ ALiBi, causal mask), the
 * softmax P (kept in `probs`, log-sum-exp in `lse`), then y = P·v (P with
 * dropout when given).
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape and views.
 *
 * @example One head attending to two positions
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { attentionForward, createCpuKernels } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 256, threads: 1 });
 * const qkv = k.floats(2 * 3), y = k.floats(2), lse = k.floats(2), probs = k.floats(4);
 * qkv.set([0, 0, 1, 0, 0, 3]); // (q, k, v) per position; q, k = 0: uniform weights
 * attentionForward(k, {
 *   batch: 1, length: 2, heads: 1, headDim: 1, causal: false, qkv, y, lse, probs,
 * });
 * assertAlmostEquals(y[0], 2, 1e-6); // (1 + 3) / 2
 * assertAlmostEquals(lse[0], Math.log(2), 1e-6);
 * k.dispose();
 * ```
 */
export function attentionForward(
  kernels: CpuKernels,
  o: AttentionForwardOptions,
): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot run attentionForward";
  const g = geometry(o, what);
  const { B, T, H, hd, d } = g;
  const n = B * T, rows = B * H * T;
  const qkv = rt.ptr(o.qkv, n * 3 * d, `${what}: qkv`);
  const y = rt.ptr(o.y, n * d, `${what}: y`);
  const lse = rt.ptr(o.lse, rows, `${what}: lse`);
  const probs = rt.ptr(o.probs, rows * T, `${what}: probs`);
  const drop = dropArgs(o.dropout, what);
  const dropped = drop[2] > 0
    ? rt.ptr(o.dropout!.dropped, rows * T, `${what}: dropout.dropped`)
    : 0;
  rt.run(
    "attention_forward_heads",
    B * H,
    [
      T,
      H,
      hd,
      o.causal ? 1 : 0,
      qkv,
      y,
      lse,
      probs,
      o.alibi?.slope ?? 0,
      o.alibi?.neighbours ? 1 : 0,
      dropped,
      ...drop,
      1 / Math.sqrt(hd),
    ],
    B * H * T * T * (hd + 8),
    1,
    [H, T, n],
  );
}

/** Options of {@linkcode attentionBackward}. */
export interface AttentionBackwardOptions extends AttentionShape {
  /** The forward's qkv [B, T, 3d]. */
  qkv: Float32Array;
  /** The forward's y [B, T, d]. */
  y: Float32Array;
  /** dy [B, T, d]. */
  dy: Float32Array;
  /** The forward's probabilities [B, H, T, T]. */
  probs: Float32Array;
  /** dqkv [B, T, 3d], written (before the RoPE backward). */
  dqkv: Float32Array;
  /** Scratch [B, H, T, T] for dS. */
  scratch: Float32Array;
  /** D = dy·y per query [B, H, T], written when given. */
  D?: Float32Array;
  /** The forward's dropout (same seed and site). */
  dropout?: AttentionDropout;
}

/**
 * Attention backward: per head dP = dy·vᵀ, then per row
 * dS = P·(dP·keep − D) with D = dy·y, then dv = (P·keep)ᵀ·dy,
 * dq = dS·k/√hd, dk = dSᵀ·q/√hd.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape and views.
 *
 * @example Uniform attention passes dy to v in equal parts
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { attentionBackward, attentionForward, createCpuKernels } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 512, threads: 1 });
 * const shape = { batch: 1, length: 2, heads: 1, headDim: 1, causal: false };
 * const qkv = k.floats(6), y = k.floats(2), lse = k.floats(2), probs = k.floats(4);
 * const dy = k.floats(2), dqkv = k.floats(6), scratch = k.floats(4);
 * qkv.set([0, 0, 1, 0, 0, 3]);
 * dy.set([1, 0]);
 * attentionForward(k, { ...shape, qkv, y, lse, probs });
 * attentionBackward(k, { ...shape, qkv, y, dy, probs, dqkv, scratch });
 * assertAlmostEquals(dqkv[2], 0.5, 1e-6); // dv of position 0
 * assertAlmostEquals(dqkv[5], 0.5, 1e-6); // dv of position 1
 * k.dispose();
 * ```
 */
export function attentionBackward(
  kernels: CpuKernels,
  o: AttentionBackwardOptions,
): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot run attentionBackward";
  const g = geometry(o, what);
  const { B, T, H, hd, d } = g;
  const n = B * T, rows = B * H * T;
  const qkv = rt.ptr(o.qkv, n * 3 * d, `${what}: qkv`);
  const y = rt.ptr(o.y, n * d, `${what}: y`);
  const dy = rt.ptr(o.dy, n * d, `${what}: dy`);
  const probs = rt.ptr(o.probs, rows * T, `${what}: probs`);
  const dqkv = rt.ptr(o.dqkv, n * 3 * d, `${what}: dqkv`);
  const ds = rt.ptr(o.scratch, rows * T, `${what}: scratch`);
  const D = o.D ? rt.ptr(o.D, rows, `${what}: D`) : 0;
  const drop = dropArgs(o.dropout, what);
  const dropped = drop[2] > 0
    ? rt.ptr(o.dropout!.dropped, rows * T, `${what}: dropout.dropped`)
    : 0;
  rt.run(
    "attention_backward_heads",
    B * H,
    [
      T,
      H,
      hd,
      o.causal ? 1 : 0,
      qkv,
      y,
      dy,
      probs,
      dqkv,
      ds,
      D,
      dropped,
      ...drop,
      1 / Math.sqrt(hd),
    ],
    2 * B * H * T * T * (hd + 4),
    1,
    [H, T, n],
  );
}

/** Options of {@linkcode rope}. */
export interface RopeOptions {
  /** Rows of qkv (B·T). */
  rows: number;
  /** Positions per sequence: row n is position n mod length. */
  length: number;
  /** Heads. */
  heads: number;
  /** Channels per head (even). */
  headDim: number;
  /** qkv [rows, 3d], rotated in place on its q and k thirds. */
  qkv: Float32Array;
  /** cos [length, headDim/2]. */
  cos: Float32Array;
  /** sin [length, headDim/2]. */
  sin: Float32Array;
  /** Apply the transpose (the gradient) instead. */
  backward?: boolean;
}

/**
 * Rotary positions in place ("rotate half": channel j pairs with
 * j + hd/2): (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin), or its
 * transpose for the backward.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape, views and direction.
 *
 * @example A quarter turn and back
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { createCpuKernels, rope } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 64, threads: 1 });
 * const qkv = k.floats(6), cos = k.floats(1), sin = k.floats(1);
 * qkv.set([1, 0, 1, 0, 5, 5]); // q = (1, 0), k = (1, 0), v
 * sin[0] = 1; // cos 0
 * rope(k, { rows: 1, length: 1, heads: 1, headDim: 2, qkv, cos, sin });
 * assertAlmostEquals(qkv[1], 1, 1e-7);
 * rope(k, { rows: 1, length: 1, heads: 1, headDim: 2, qkv, cos, sin, backward: true });
 * assertAlmostEquals(qkv[0], 1, 1e-7);
 * k.dispose();
 * ```
 */
export function rope(kernels: CpuKernels, o: RopeOptions): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot run rope";
  const rows = dim(o.rows, "rows", what);
  const T = dim(o.length, "length", what), H = dim(o.heads, "heads", what);
  const hd = dim(o.headDim, "headDim", what);
  if (hd % 2 !== 0) {
    throw new RangeError(`${what}: headDim must be even, got ${hd}`);
  }
  rt.run(
    "rope_rows",
    rows,
    [
      T,
      H,
      hd,
      rt.ptr(o.qkv, rows * 3 * H * hd, `${what}: qkv`),
      rt.ptr(o.cos, (T * hd) / 2, `${what}: cos`),
      rt.ptr(o.sin, (T * hd) / 2, `${what}: sin`),
      o.backward ? 1 : 0,
    ],
    4 * rows * H * hd,
    1,
    [1, 1, rows],
  );
}
