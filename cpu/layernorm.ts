/**
 * LayerNorm forward and backward over rows (GPT-2's epsilon 1e−5), with the
 * adaLN modulation of time-conditioned models, as the WebGPU engine's
 * kernels.
 *
 * @module
 */

import type { CpuKernels } from "./kernels.ts";
import { dim, runtimeOf } from "./_runtime.ts";

/** adaLN modulation of a LayerNorm output: y·(1 + scale) + shift. */
export interface Modulation {
  /**
   * The shift of batch row b at view[b·stride ..] (d values), its scale d
   * further.
   */
  view: Float32Array;
  /** Floats between batch rows of the modulation. */
  stride: number;
  /** Rows (tokens) per batch row. */
  length: number;
}

/** Options of {@linkcode layernormForward}. */
export interface LayernormForwardOptions {
  /** Rows normalised. */
  rows: number;
  /** Width. */
  d: number;
  /** x [rows, d]. */
  x: Float32Array;
  /** y [rows, d]. */
  y: Float32Array;
  /** Gain [d]. */
  weight: Float32Array;
  /** Bias [d]. */
  bias: Float32Array;
  /** mean [rows], saved for the backward. */
  mean: Float32Array;
  /** 1/√(var + 1e−5) [rows], saved for the backward. */
  rstd: Float32Array;
  /** adaLN: modulate the output (time-conditioned models). */
  modulation?: Modulation;
}

/**
 * `y = (x − mean)·rstd·weight + bias` per row, saving mean and rstd, then
 * (with a modulation) `y·(1 + scale) + shift`. Rows are split over the
 * threads.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape and views.
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { createCpuKernels, layernormForward } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 256, threads: 1 });
 * const x = k.floats(2), y = k.floats(2), weight = k.floats(2), bias = k.floats(2);
 * const mean = k.floats(1), rstd = k.floats(1);
 * x.set([0, 2]);
 * weight.fill(1);
 * layernormForward(k, { rows: 1, d: 2, x, y, weight, bias, mean, rstd });
 * assertAlmostEquals(y[0], -1, 1e-4);
 * k.dispose();
 * ```
 */
export function layernormForward(
  kernels: CpuKernels,
  o: LayernormForwardOptions,
): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot run layernormForward";
  const rows = dim(o.rows, "rows", what), d = dim(o.d, "d", what);
  const mod = o.modulation;
  let modPtr = 0, stride = 0, length = 1;
  if (mod) {
    length = mod.length;
    stride = mod.stride;
    if (!(Number.isInteger(length) && length >= 1)) {
      throw new RangeError(
        `${what}: modulation.length must be a positive integer, got ${length}`,
      );
    }
    if (!(Number.isInteger(stride) && stride >= 2 * d)) {
      throw new RangeError(
        `${what}: modulation.stride must be an integer ≥ 2d (${
          2 * d
        }), got ${stride}`,
      );
    }
    const batches = Math.ceil(rows / length);
    modPtr = rt.ptr(
      mod.view,
      batches === 0 ? 0 : (batches - 1) * stride + 2 * d,
      `${what}: modulation`,
    );
  }
  rt.run(
    "layernorm_forward",
    rows,
    [
      d,
      rt.ptr(o.x, rows * d, `${what}: x`),
      rt.ptr(o.y, rows * d, `${what}: y`),
      rt.ptr(o.weight, d, `${what}: weight`),
      rt.ptr(o.bias, d, `${what}: bias`),
      rt.ptr(o.mean, rows, `${what}: mean`),
      rt.ptr(o.rstd, rows, `${what}: rstd`),
      modPtr,
      stride,
      length,
    ],
    4 * rows * d,
    1,
    o.modulation ? undefined : [1, 1, rows],
  );
}

/** Options of {@linkcode layernormBackward}. */
export interface LayernormBackwardOptions {
  /** Rows. */
  rows: number;
  /** Width. */
  d: number;
  /** dy [rows, d] (the gradient of the unmodulated output). */
  dy: Float32Array;
  /** The forward's x [rows, d]. */
  x: Float32Array;
  /** The forward's mean [rows]. */
  mean: Float32Array;
  /** The forward's rstd [rows]. */
  rstd: Float32Array;
  /** Gain [d]. */
  weight: Float32Array;
  /** dx [rows, d]. */
  dx: Float32Array;
  /** Add to dx (the residual stream's gradient) instead of writing it. */
  accumulate?: boolean;
  /** The gain's gradient [d], written. */
  gradWeight: Float32Array;
  /** The bias's gradient [d], written. */
  gradBias: Float32Array;
}

/**
 * `dx (=, +=) rstd·(g − mean(g) − x̂·mean(g·x̂))` with `g = dy·weight`, per
 * row; then the gain and bias gradients `Σ dy·x̂` and `Σ dy` over rows, each
 * column summed in row order. dx must not overlap dy.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape and views.
 *
 * @example The gradient of Σ y·c is orthogonal to the ones vector
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { createCpuKernels, layernormBackward, layernormForward } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 1024, threads: 1 });
 * const [x, y, w, b, dy, dx, gw, gb] = Array.from({ length: 8 }, () => k.floats(4));
 * const mean = k.floats(1), rstd = k.floats(1);
 * x.set([1, -2, 0.5, 3]);
 * w.set([1, 2, 3, 4]);
 * dy.set([0.1, 0.2, -0.3, 0.4]);
 * layernormForward(k, { rows: 1, d: 4, x, y, weight: w, bias: b, mean, rstd });
 * layernormBackward(k, {
 *   rows: 1, d: 4, dy, x, mean, rstd, weight: w, dx, gradWeight: gw, gradBias: gb,
 * });
 * assertAlmostEquals(dx.reduce((s, v) => s + v, 0), 0, 1e-6);
 * assertAlmostEquals(gb[3], 0.4, 1e-7);
 * k.dispose();
 * ```
 */
export function layernormBackward(
  kernels: CpuKernels,
  o: LayernormBackwardOptions,
): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot run layernormBackward";
  const rows = dim(o.rows, "rows", what), d = dim(o.d, "d", what);
  const dy = rt.ptr(o.dy, rows * d, `${what}: dy`);
  const x = rt.ptr(o.x, rows * d, `${what}: x`);
  const mean = rt.ptr(o.mean, rows, `${what}: mean`);
  const rstd = rt.ptr(o.rstd, rows, `${what}: rstd`);
  const dx = rt.ptr(o.dx, rows * d, `${what}: dx`);
  const span = 4 * rows * d;
  if (dx < dy + span && dy < dx + span) {
    throw new RangeError(`${what}: dx must not overlap dy`);
  }
  rt.run(
    "layernorm_backward",
    rows,
    [
      d,
      dy,
      x,
      mean,
      rstd,
      rt.ptr(o.weight, d, `${what}: weight`),
      dx,
      o.accumulate ? 1 : 0,
    ],
    6 * rows * d,
    1,
    [1, 1, rows],
  );
  rt.run(
    "layernorm_params_backward",
    d,
    [
      rows,
      d,
      dy,
      x,
      mean,
      rstd,
      rt.ptr(o.gradWeight, d, `${what}: gradWeight`),
      rt.ptr(o.gradBias, d, `${what}: gradBias`),
    ],
    4 * rows * d,
    16,
  );
}
