import * as tf from "@tensorflow/tfjs";
import { expArray } from "./_expf.ts";
import {
  type Alloc,
  allocFor,
  type CpuBackend,
  type FastKernel,
  floatsOf,
  freshFloats,
  type KernelArgs,
} from "./_kernel_util.ts";

/** Softmax over the last axis of rows of length `n`, in one read pass each. */
export function softmaxRows(
  x: Float32Array,
  n: number,
  alloc: Alloc = freshFloats,
): Float32Array {
  const out = alloc(x.length);
  for (let o = 0; o < x.length; o += n) {
    // Views indexed from 0: offset indexing defeats bounds-check elimination.
    const row = x.subarray(o, o + n), dst = out.subarray(o, o + n);
    let max = -Infinity;
    for (let i = 0; i < n; i++) if (row[i] > max) max = row[i];
    expArray(row, dst, max);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += dst[i];
    const inv = 1 / sum;
    for (let i = 0; i < n; i++) dst[i] *= inv;
  }
  return out;
}

/** The `Softmax` kernel over the last axis (the only one tfjs allows). */
export function softmaxKernels(): Record<string, FastKernel> {
  const kernel: FastKernel = (args: KernelArgs, fallback) => {
    const backend = args.backend as CpuBackend;
    const { logits } = args.inputs;
    const xv = floatsOf(backend, logits);
    const rank = logits.shape.length;
    const dim = (args.attrs as { dim: number }).dim;
    if (xv === undefined || rank === 0 || (dim !== -1 && dim !== rank - 1)) {
      return fallback(args);
    }
    const n = logits.shape[rank - 1];
    if (n === 0) return fallback(args);
    return backend.makeTensorInfo(
      logits.shape,
      "float32",
      softmaxRows(xv, n, allocFor(backend)),
    );
  };
  return { [tf.Softmax]: kernel };
}
