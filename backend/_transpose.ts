import * as tf from "@tensorflow/tfjs";
import {
  allocate,
  allocFor,
  type CpuBackend,
  type FastKernel,
  type KernelArgs,
  valuesOf,
} from "./_kernel_util.ts";

type Values = Float32Array | Int32Array | Uint8Array;

const TILE = 32;

function transpose2d(
  x: Values,
  xo: number,
  out: Values,
  oo: number,
  rows: number,
  cols: number,
): void {
  // Tiled so that both the reads and the writes stay in cache.
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        const src = xo + r * cols;
        for (let c = c0; c < c1; c++) out[oo + c * rows + r] = x[src + c];
      }
    }
  }
}

/**
 * Permute the axes of a row-major array. Unit axes are dropped and axes that
 * stay adjacent are merged first, so most permutations become either a batch
 * of 2-D transposes or a gather of contiguous rows.
 */
export function transposeValues(
  x: Values,
  shape: readonly number[],
  perm: readonly number[],
  out?: Values,
): Values {
  const result = out ?? new (x.constructor as new (n: number) => Values)(
    x.length,
  );
  // Drop unit axes.
  const keep = perm.filter((p) => shape[p] !== 1);
  const kept = [...keep].sort((a, b) => a - b);
  const rankOf = new Map(kept.map((p, i) => [p, i]));
  let dims = kept.map((p) => shape[p]);
  let order = keep.map((p) => rankOf.get(p)!);
  // Merge axes that are adjacent in both input and output.
  {
    const groups: number[][] = [];
    for (const p of order) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[last.length - 1] + 1 === p) last.push(p);
      else groups.push([p]);
    }
    const byStart = [...groups].sort((a, b) => a[0] - b[0]);
    const newDims = byStart.map((g) => g.reduce((s, p) => s * dims[p], 1));
    const index = new Map(byStart.map((g, i) => [g[0], i]));
    order = groups.map((g) => index.get(g[0])!);
    dims = newDims;
  }
  const rank = dims.length;
  if (rank <= 1 || order.every((p, i) => p === i)) {
    result.set(x);
    return result;
  }
  const batchSwap = order.slice(0, rank - 2).every((p, i) => p === i) &&
    order[rank - 2] === rank - 1 && order[rank - 1] === rank - 2;
  if (batchSwap) {
    const rows = dims[rank - 2], cols = dims[rank - 1], block = rows * cols;
    for (let o = 0; o < x.length; o += block) {
      transpose2d(x, o, result, o, rows, cols);
    }
    return result;
  }
  const inStride = new Array<number>(rank);
  for (let d = rank - 1, s = 1; d >= 0; d--) {
    inStride[d] = s;
    s *= dims[d];
  }
  const outDims = order.map((p) => dims[p]);
  const stride = order.map((p) => inStride[p]);
  const inner = outDims[rank - 1], innerStride = stride[rank - 1];
  const index = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < result.length; o += inner) {
    if (innerStride === 1) {
      if (inner >= 16) result.set(x.subarray(src, src + inner), o);
      else for (let i = 0; i < inner; i++) result[o + i] = x[src + i];
    } else {
      for (let i = 0, s = src; i < inner; i++, s += innerStride) {
        result[o + i] = x[s];
      }
    }
    for (let d = rank - 2; d >= 0; d--) {
      index[d]++;
      src += stride[d];
      if (index[d] < outDims[d]) break;
      src -= stride[d] * outDims[d];
      index[d] = 0;
    }
  }
  return result;
}

/** The `Transpose` kernel for float32, int32 and bool tensors. */
export function transposeKernels(): Record<string, FastKernel> {
  const kernel: FastKernel = (args: KernelArgs, fallback) => {
    const backend = args.backend as CpuBackend;
    const { x } = args.inputs;
    const xv = valuesOf(backend, x);
    if (xv === undefined) return fallback(args);
    const perm = (args.attrs as { perm: number[] }).perm;
    const out = transposeValues(
      xv,
      x.shape,
      perm,
      x.dtype === "float32"
        ? allocFor(backend)(xv.length)
        : allocate(x.dtype, xv.length),
    );
    return backend.makeTensorInfo(perm.map((p) => x.shape[p]), x.dtype, out);
  };
  return { [tf.Transpose]: kernel };
}
