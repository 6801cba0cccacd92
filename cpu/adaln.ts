/**
 * The backward of adaLN time conditioning (time-conditioned denoisers): the
 * gate of a residual branch and the modulation of a LayerNorm output, as
 * the WebGPU engine's kernels. The forward is in {@linkcode matmul}'s
 * `bias_gate_residual` epilogue and {@linkcode layernormForward}'s
 * modulation; the time MLP's SiLU in the activation kernels.
 *
 * @module
 */

import type { CpuKernels, Dropout } from "./kernels.ts";
import { dim, dropArgs, runtimeOf } from "./_runtime.ts";

/** Options of {@linkcode gateBackward}. */
export interface GateBackwardOptions {
  /** Sequences. */
  batch: number;
  /** Positions per sequence. */
  length: number;
  /** Width. */
  d: number;
  /** dout [B·T, d]: the gradient of out = res + br·(1 + g). */
  dout: Float32Array;
  /** br [B·T, d]: the branch as the forward kept it (already dropped). */
  br: Float32Array;
  /** The gate of batch row b at g[b·stride ..] (d values). */
  g: Float32Array;
  /** Floats between batch rows of g and dg. */
  stride: number;
  /** dbr [B·T, d] = dout·(1 + g) (times the mask), written. */
  dbr: Float32Array;
  /** dg of batch row b at dg[b·stride ..] = Σ_t dout·br, written. */
  dg: Float32Array;
  /** The branch's dropout (site: the residual sum's offset). */
  dropout?: Dropout;
}

/**
 * The gate's backward: `dg_b = Σ_t dout·br`, `dbr = dout·(1 + g_b)·keep`.
 * (batch row, channel) pairs are split over the threads; each sums over t
 * in order.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape and views.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { createCpuKernels, gateBackward } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 64, threads: 1 });
 * const dout = k.floats(2), br = k.floats(2), g = k.floats(1), dbr = k.floats(2), dg = k.floats(1);
 * dout.set([1, 2]); // B 1, T 2, d 1
 * br.set([3, 4]);
 * g[0] = 0.5;
 * gateBackward(k, { batch: 1, length: 2, d: 1, dout, br, g, stride: 1, dbr, dg });
 * assertEquals([...dbr, ...dg], [1.5, 3, 11]);
 * k.dispose();
 * ```
 */
export function gateBackward(
  kernels: CpuKernels,
  o: GateBackwardOptions,
): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot run gateBackward";
  const B = dim(o.batch, "batch", what), T = dim(o.length, "length", what);
  const d = dim(o.d, "d", what), n = B * T * d;
  const rowsNeed = B === 0 ? 0 : (B - 1) * o.stride + d;
  rt.run(
    "gate_backward",
    B * d,
    [
      d,
      T,
      rt.ptr(o.dout, n, `${what}: dout`),
      rt.ptr(o.br, n, `${what}: br`),
      rt.ptr(o.g, rowsNeed, `${what}: g`),
      o.stride,
      rt.ptr(o.dbr, n, `${what}: dbr`),
      rt.ptr(o.dg, rowsNeed, `${what}: dg`),
      ...dropArgs(o.dropout, what),
    ],
    3 * n,
    16,
  );
}

/** Options of {@linkcode modulateBackward}. */
export interface ModulateBackwardOptions {
  /** Sequences. */
  batch: number;
  /** Positions per sequence. */
  length: number;
  /** Width. */
  d: number;
  /** dh [B·T, d]: the modulated output's gradient, replaced by dĥ in place. */
  dh: Float32Array;
  /** The LayerNorm's input x [B·T, d]. */
  x: Float32Array;
  /** Its mean [B·T]. */
  mean: Float32Array;
  /** Its rstd [B·T]. */
  rstd: Float32Array;
  /** Its gain [d]. */
  weight: Float32Array;
  /** Its bias [d]. */
  bias: Float32Array;
  /** The shift of batch row b at mods[b·stride ..], its scale d further. */
  mods: Float32Array;
  /** Floats between batch rows of mods and dmods. */
  stride: number;
  /** dshift, dscale of batch row b at dmods[b·stride ..], written. */
  dmods: Float32Array;
}

/**
 * The modulation's backward for `h = ĥ·(1 + scale_b) + shift_b` (ĥ the
 * LayerNorm output, recomputed from x, mean, rstd, weight and bias):
 * `dshift = Σ_t dh`, `dscale = Σ_t dh·ĥ`, `dh ← dh·(1 + scale_b)`.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape and views.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { createCpuKernels, modulateBackward } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 64, threads: 1 });
 * const dh = k.floats(1), x = k.floats(1), mean = k.floats(1), rstd = k.floats(1);
 * const weight = k.floats(1), bias = k.floats(1), mods = k.floats(2), dmods = k.floats(2);
 * dh[0] = 2; x[0] = 3; rstd[0] = 1; weight[0] = 1; // ĥ = 3
 * mods.set([0, 0.5]); // shift 0, scale 0.5
 * modulateBackward(k, {
 *   batch: 1, length: 1, d: 1, dh, x, mean, rstd, weight, bias, mods, stride: 2, dmods,
 * });
 * assertEquals([...dmods, dh[0]], [2, 6, 3]);
 * k.dispose();
 * ```
 */
export function modulateBackward(
  kernels: CpuKernels,
  o: ModulateBackwardOptions,
): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot run modulateBackward";
  const B = dim(o.batch, "batch", what), T = dim(o.length, "length", what);
  const d = dim(o.d, "d", what), n = B * T * d;
  if (!(Number.isInteger(o.stride) && o.stride >= 2 * d)) {
    throw new RangeError(
      `${what}: stride must be an integer ≥ 2d (${2 * d}), got ${o.stride}`,
    );
  }
  const rowsNeed = B === 0 ? 0 : (B - 1) * o.stride + 2 * d;
  rt.run(
    "modulate_backward",
    B * d,
    [
      d,
      T,
      rt.ptr(o.dh, n, `${what}: dh`),
      rt.ptr(o.x, n, `${what}: x`),
      rt.ptr(o.mean, B * T, `${what}: mean`),
      rt.ptr(o.rstd, B * T, `${what}: rstd`),
      rt.ptr(o.weight, d, `${what}: weight`),
      rt.ptr(o.bias, d, `${what}: bias`),
      rt.ptr(o.mods, rowsNeed, `${what}: mods`),
      o.stride,
      rt.ptr(o.dmods, rowsNeed, `${what}: dmods`),
    ],
    6 * n,
    16,
  );
}
