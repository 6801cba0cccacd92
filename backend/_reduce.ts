import * as tf from "@tensorflow/tfjs";
import {
  type Alloc,
  allocFor,
  type CpuBackend,
  type FastKernel,
  floatsOf,
  freshFloats,
  type KernelArgs,
  normaliseAxes,
  sizeOf,
} from "./_kernel_util.ts";
import { transposeValues } from "./_transpose.ts";

type Op = "Sum" | "Mean" | "Max" | "Min" | "Prod";

/** Reduce contiguous rows: `out[r] = op(x[r·inner .. (r+1)·inner))`. */
function reduceInner(
  op: Op,
  x: Float32Array,
  rows: number,
  inner: number,
  alloc: Alloc,
): Float32Array {
  const out = alloc(rows);
  for (let r = 0, o = 0; r < rows; r++, o += inner) {
    // A view indexed from 0: offset indexing defeats bounds-check elimination.
    const row = x.subarray(o, o + inner);
    let acc: number;
    switch (op) {
      case "Sum":
      case "Mean":
        acc = 0;
        for (let i = 0; i < inner; i++) acc += row[i];
        if (op === "Mean") acc /= inner;
        break;
      case "Max":
        acc = -Infinity;
        for (let i = 0; i < inner; i++) {
          const v = row[i];
          if (v > acc || v !== v) acc = v;
        }
        break;
      case "Min":
        acc = Infinity;
        for (let i = 0; i < inner; i++) {
          const v = row[i];
          if (v < acc || v !== v) acc = v;
        }
        break;
      case "Prod":
        acc = 1;
        for (let i = 0; i < inner; i++) acc *= row[i];
        break;
    }
    out[r] = acc;
  }
  return out;
}

/** Reduce over leading rows: `out[j] = op over r of x[r·cols + j]`. */
function reduceOuter(
  op: Op,
  x: Float32Array,
  rows: number,
  cols: number,
  alloc: Alloc,
): Float32Array {
  const acc = new Float64Array(cols);
  const init = op === "Max"
    ? -Infinity
    : op === "Min"
    ? Infinity
    : op === "Prod"
    ? 1
    : 0;
  acc.fill(init);
  for (let r = 0, o = 0; r < rows; r++, o += cols) {
    const row = x.subarray(o, o + cols);
    switch (op) {
      case "Sum":
      case "Mean":
        for (let j = 0; j < cols; j++) acc[j] += row[j];
        break;
      case "Max":
        for (let j = 0; j < cols; j++) {
          const v = row[j];
          if (v > acc[j] || v !== v) acc[j] = v;
        }
        break;
      case "Min":
        for (let j = 0; j < cols; j++) {
          const v = row[j];
          if (v < acc[j] || v !== v) acc[j] = v;
        }
        break;
      case "Prod":
        for (let j = 0; j < cols; j++) acc[j] *= row[j];
        break;
    }
  }
  const out = alloc(cols);
  const scale = op === "Mean" ? 1 / rows : 1;
  for (let j = 0; j < cols; j++) out[j] = acc[j] * scale;
  return out;
}

/**
 * Reduce a float32 array over `axes` (normalised, sorted). Trailing and
 * leading axes reduce in place; other sets are transposed to the end first.
 */
export function reduceValues(
  op: Op,
  x: Float32Array,
  shape: readonly number[],
  axes: readonly number[],
  alloc: Alloc = freshFloats,
): Float32Array {
  const rank = shape.length;
  const reduced = sizeOf(axes.map((a) => shape[a]));
  const kept = x.length / Math.max(reduced, 1);
  if (reduced === 0) {
    return alloc(kept).fill(
      op === "Max"
        ? -Infinity
        : op === "Min"
        ? Infinity
        : op === "Prod"
        ? 1
        : op === "Mean"
        ? NaN
        : 0,
    );
  }
  const trailing = axes.every((a, i) => a === rank - axes.length + i);
  if (trailing) return reduceInner(op, x, kept, reduced, alloc);
  const leading = axes.every((a, i) => a === i);
  if (leading) return reduceOuter(op, x, reduced, kept, alloc);
  const keep = [...Array(rank).keys()].filter((d) => !axes.includes(d));
  const moved = transposeValues(x, shape, [...keep, ...axes]) as Float32Array;
  return reduceInner(op, moved, kept, reduced, alloc);
}

function reduceKernel(op: Op): FastKernel {
  return (args: KernelArgs, fallback) => {
    const backend = args.backend as CpuBackend;
    const { x } = args.inputs;
    const xv = floatsOf(backend, x);
    if (xv === undefined) return fallback(args);
    // Max names its axes `reductionIndices`; the others name them `axis`.
    const { axis, reductionIndices, keepDims } = args.attrs as {
      axis?: number | number[];
      reductionIndices?: number | number[];
      keepDims: boolean;
    };
    const axes = normaliseAxes(axis ?? reductionIndices, x.shape.length);
    const out = reduceValues(op, xv, x.shape, axes, allocFor(backend));
    const shape = keepDims
      ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !axes.includes(i));
    return backend.makeTensorInfo(shape, "float32", out);
  };
}

/** Sum, Mean, Max, Min and Prod of float32 tensors over any axes. */
export function reduceKernels(): Record<string, FastKernel> {
  return {
    [tf.Sum]: reduceKernel("Sum"),
    [tf.Mean]: reduceKernel("Mean"),
    [tf.Max]: reduceKernel("Max"),
    [tf.Min]: reduceKernel("Min"),
    [tf.Prod]: reduceKernel("Prod"),
  };
}
