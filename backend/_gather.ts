import * as tf from "@tensorflow/tfjs";
import {
  allocate,
  allocFor,
  type CpuBackend,
  type FastKernel,
  type KernelArgs,
  sizeOf,
  valuesOf,
} from "./_kernel_util.ts";

type Values = Float32Array | Int32Array | Uint8Array;

/**
 * Gather slices along `axis`: `out[o, j, i] = x[o, indices[j], i]`, copying
 * whole inner rows (an embedding lookup is one `set` per id).
 */
export function gatherValues(
  x: Values,
  shape: readonly number[],
  indices: ArrayLike<number>,
  axis: number,
  out: Values,
): void {
  const outer = sizeOf(shape.slice(0, axis));
  const size = shape[axis];
  const inner = sizeOf(shape.slice(axis + 1));
  const n = indices.length;
  for (let j = 0; j < n; j++) {
    const id = indices[j];
    if (!(id >= 0 && id < size)) {
      throw new RangeError(
        `Cannot gather index ${id} at position ${j}: expected an integer in [0, ${
          size - 1
        }]`,
      );
    }
  }
  for (let o = 0, w = 0; o < outer; o++) {
    const base = o * size * inner;
    for (let j = 0; j < n; j++, w += inner) {
      const src = base + indices[j] * inner;
      if (inner >= 64) out.set(x.subarray(src, src + inner), w);
      else for (let i = 0; i < inner; i++) out[w + i] = x[src + i];
    }
  }
}

/**
 * Sum rows into segments: `out[ids[j]] += x[j]` over rows of
 * `x.length / ids.length` elements; ids outside `[0, numSegments)` are dropped
 * as TensorFlow does. This is the gradient of a gather.
 */
export function segmentSumValues(
  x: Float32Array | Int32Array,
  ids: ArrayLike<number>,
  numSegments: number,
  out: Float32Array | Int32Array,
): void {
  const n = ids.length;
  const inner = n === 0 ? 0 : x.length / n;
  for (let j = 0; j < n; j++) {
    const id = ids[j];
    if (id < 0 || id >= numSegments) continue;
    const dst = out.subarray(id * inner, (id + 1) * inner);
    const src = x.subarray(j * inner, (j + 1) * inner);
    for (let i = 0; i < inner; i++) dst[i] += src[i];
  }
}

/** `GatherV2` (without batch dimensions) and `UnsortedSegmentSum`. */
export function gatherKernels(): Record<string, FastKernel> {
  const gather: FastKernel = (args: KernelArgs, fallback) => {
    const backend = args.backend as CpuBackend;
    const { x, indices } = args.inputs;
    const { axis, batchDims } = args.attrs as {
      axis: number;
      batchDims: number;
    };
    const xv = valuesOf(backend, x), iv = valuesOf(backend, indices);
    if (
      xv === undefined || iv === undefined || (batchDims ?? 0) !== 0 ||
      indices.dtype !== "int32"
    ) return fallback(args);
    const ax = axis < 0 ? axis + x.shape.length : axis;
    const shape = [
      ...x.shape.slice(0, ax),
      ...indices.shape,
      ...x.shape.slice(ax + 1),
    ];
    const out = x.dtype === "float32"
      ? allocFor(backend)(sizeOf(shape))
      : allocate(x.dtype, sizeOf(shape));
    gatherValues(xv, x.shape, iv, ax, out);
    return backend.makeTensorInfo(shape, x.dtype, out);
  };
  const segmentSum: FastKernel = (args: KernelArgs, fallback) => {
    const backend = args.backend as CpuBackend;
    const { x, segmentIds } = args.inputs;
    const { numSegments } = args.attrs as { numSegments: number };
    const xv = valuesOf(backend, x), iv = valuesOf(backend, segmentIds);
    if (
      xv === undefined || iv === undefined || xv instanceof Uint8Array ||
      segmentIds.dtype !== "int32"
    ) return fallback(args);
    const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
    const out = x.dtype === "float32"
      ? allocFor(backend)(sizeOf(shape)).fill(0)
      : allocate(x.dtype, sizeOf(shape)) as Int32Array;
    segmentSumValues(xv, iv, numSegments, out);
    return backend.makeTensorInfo(shape, x.dtype, out);
  };
  return { [tf.GatherV2]: gather, [tf.UnsortedSegmentSum]: segmentSum };
}
