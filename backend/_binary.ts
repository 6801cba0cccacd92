import * as tf from "@tensorflow/tfjs";
import {
  allocFor,
  type CpuBackend,
  type FastKernel,
  type KernelArgs,
  sizeOf,
  valuesOf,
} from "./_kernel_util.ts";

type Values = Float32Array | Int32Array | Uint8Array;

/**
 * One row of a comparison: `out[o + i] = f(a[ai + i·as], b[bi + i·bs])` for
 * `i < n`, where the strides `as` and `bs` are 0 (broadcast) or 1. Each op has
 * its own loop so that V8 compiles it monomorphic.
 */
type Row = (
  out: Values,
  o: number,
  a: Values,
  ai: number,
  as: number,
  b: Values,
  bi: number,
  bs: number,
  n: number,
) => void;

/**
 * A contiguous row of an arithmetic op on views that start at the row:
 * `mode` 0 both operands vary, 1 `b` is the scalar `b[0]`, 2 `a` is `a[0]`.
 * Each op spells out its loops indexed from 0 (offset indexing defeats V8's
 * bounds-check elimination and costs ~1.6×).
 */
type DenseRow = (out: Values, a: Values, b: Values, mode: number) => void;

const ARITHMETIC: Record<string, DenseRow> = {
  Add: (out, a, b, mode) => {
    const n = out.length;
    if (mode === 0) {
      for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
    } else if (mode === 1) {
      const y = b[0];
      for (let i = 0; i < n; i++) out[i] = a[i] + y;
    } else {
      const x = a[0];
      for (let i = 0; i < n; i++) out[i] = x + b[i];
    }
  },
  Sub: (out, a, b, mode) => {
    const n = out.length;
    if (mode === 0) {
      for (let i = 0; i < n; i++) out[i] = a[i] - b[i];
    } else if (mode === 1) {
      const y = b[0];
      for (let i = 0; i < n; i++) out[i] = a[i] - y;
    } else {
      const x = a[0];
      for (let i = 0; i < n; i++) out[i] = x - b[i];
    }
  },
  Multiply: (out, a, b, mode) => {
    const n = out.length;
    if (mode === 0) {
      for (let i = 0; i < n; i++) out[i] = a[i] * b[i];
    } else if (mode === 1) {
      const y = b[0];
      for (let i = 0; i < n; i++) out[i] = a[i] * y;
    } else {
      const x = a[0];
      for (let i = 0; i < n; i++) out[i] = x * b[i];
    }
  },
  RealDiv: (out, a, b, mode) => {
    const n = out.length;
    if (mode === 0) {
      for (let i = 0; i < n; i++) out[i] = a[i] / b[i];
    } else if (mode === 1) {
      const y = b[0];
      for (let i = 0; i < n; i++) out[i] = a[i] / y;
    } else {
      const x = a[0];
      for (let i = 0; i < n; i++) out[i] = x / b[i];
    }
  },
  Maximum: (out, a, b, mode) => {
    const n = out.length;
    if (mode === 0) {
      for (let i = 0; i < n; i++) out[i] = Math.max(a[i], b[i]);
    } else if (mode === 1) {
      const y = b[0];
      for (let i = 0; i < n; i++) out[i] = Math.max(a[i], y);
    } else {
      const x = a[0];
      for (let i = 0; i < n; i++) out[i] = Math.max(x, b[i]);
    }
  },
  Minimum: (out, a, b, mode) => {
    const n = out.length;
    if (mode === 0) {
      for (let i = 0; i < n; i++) out[i] = Math.min(a[i], b[i]);
    } else if (mode === 1) {
      const y = b[0];
      for (let i = 0; i < n; i++) out[i] = Math.min(a[i], y);
    } else {
      const x = a[0];
      for (let i = 0; i < n; i++) out[i] = Math.min(x, b[i]);
    }
  },
  SquaredDifference: (out, a, b, mode) => {
    const n = out.length;
    if (mode === 0) {
      for (let i = 0; i < n; i++) out[i] = (a[i] - b[i]) * (a[i] - b[i]);
    } else if (mode === 1) {
      const y = b[0];
      for (let i = 0; i < n; i++) out[i] = (a[i] - y) * (a[i] - y);
    } else {
      const x = a[0];
      for (let i = 0; i < n; i++) out[i] = (x - b[i]) * (x - b[i]);
    }
  },
  Pow: (out, a, b, mode) => {
    const n = out.length;
    if (mode === 0) {
      for (let i = 0; i < n; i++) out[i] = Math.pow(a[i], b[i]);
    } else if (mode === 1) {
      const y = b[0];
      for (let i = 0; i < n; i++) out[i] = Math.pow(a[i], y);
    } else {
      const x = a[0];
      for (let i = 0; i < n; i++) out[i] = Math.pow(x, b[i]);
    }
  },
};

/** The same ops element by element, for rows too short for views. */
const SCALAR: Record<string, (x: number, y: number) => number> = {
  Add: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Multiply: (x, y) => x * y,
  RealDiv: (x, y) => x / y,
  Maximum: (x, y) => Math.max(x, y),
  Minimum: (x, y) => Math.min(x, y),
  SquaredDifference: (x, y) => (x - y) * (x - y),
  Pow: (x, y) => Math.pow(x, y),
};

const COMPARISON: Record<string, Row> = {
  Greater: (out, o, a, ai, as, b, bi, bs, n) => {
    for (let i = 0; i < n; i++) {
      out[o + i] = a[ai + i * as] > b[bi + i * bs] ? 1 : 0;
    }
  },
  GreaterEqual: (out, o, a, ai, as, b, bi, bs, n) => {
    for (let i = 0; i < n; i++) {
      out[o + i] = a[ai + i * as] >= b[bi + i * bs] ? 1 : 0;
    }
  },
  Less: (out, o, a, ai, as, b, bi, bs, n) => {
    for (let i = 0; i < n; i++) {
      out[o + i] = a[ai + i * as] < b[bi + i * bs] ? 1 : 0;
    }
  },
  LessEqual: (out, o, a, ai, as, b, bi, bs, n) => {
    for (let i = 0; i < n; i++) {
      out[o + i] = a[ai + i * as] <= b[bi + i * bs] ? 1 : 0;
    }
  },
  Equal: (out, o, a, ai, as, b, bi, bs, n) => {
    for (let i = 0; i < n; i++) {
      out[o + i] = a[ai + i * as] === b[bi + i * bs] ? 1 : 0;
    }
  },
  NotEqual: (out, o, a, ai, as, b, bi, bs, n) => {
    for (let i = 0; i < n; i++) {
      out[o + i] = a[ai + i * as] !== b[bi + i * bs] ? 1 : 0;
    }
  },
};

/**
 * Apply a binary op with NumPy broadcasting. Dimensions where both operands
 * broadcast the same way are merged, so the common cases (same shape, a
 * scalar, a trailing-dimension bias) run as one or two plain loops.
 */
export function applyBinary(
  op: string,
  a: Values,
  aShape: readonly number[],
  b: Values,
  bShape: readonly number[],
  out?: Values,
): { shape: number[]; values: Values } {
  const dense = ARITHMETIC[op];
  const strided = COMPARISON[op];
  if (dense === undefined && strided === undefined) {
    throw new RangeError(
      `Cannot apply binary op ${op}: expected one of ${
        Object.keys(ARITHMETIC).concat(Object.keys(COMPARISON)).join(", ")
      }`,
    );
  }
  const shape = tf.broadcast_util.assertAndGetBroadcastShape(
    aShape as number[],
    bShape as number[],
  );
  const n = sizeOf(shape);
  const values = out ??
    (strided !== undefined
      ? new Uint8Array(n)
      : a instanceof Float32Array || b instanceof Float32Array
      ? new Float32Array(n)
      : new Int32Array(n));
  if (n === 0) return { shape, values };
  const target = values.length === n ? values : values.subarray(0, n);
  if (a.length === n && b.length === n) {
    if (dense) dense(target, a, b, 0);
    else strided(target, 0, a, 0, 1, b, 0, 1, n);
    return { shape, values };
  }
  if (b.length === 1 && a.length === n) {
    if (dense) dense(target, a, b, 1);
    else strided(target, 0, a, 0, 1, b, 0, 0, n);
    return { shape, values };
  }
  if (a.length === 1 && b.length === n) {
    if (dense) dense(target, a, b, 2);
    else strided(target, 0, a, 0, 0, b, 0, 1, n);
    return { shape, values };
  }
  // Groups of adjacent dimensions with the same (a varies, b varies) pattern.
  const rank = shape.length;
  const pa = [...new Array(rank - aShape.length).fill(1), ...aShape];
  const pb = [...new Array(rank - bShape.length).fill(1), ...bShape];
  const sizes: number[] = [], va: boolean[] = [], vb: boolean[] = [];
  for (let d = rank - 1; d >= 0; d--) {
    if (shape[d] === 1) continue;
    const fa = pa[d] !== 1, fb = pb[d] !== 1;
    const g = sizes.length - 1;
    if (g >= 0 && va[g] === fa && vb[g] === fb) sizes[g] *= shape[d];
    else {
      sizes.push(shape[d]);
      va.push(fa);
      vb.push(fb);
    }
  }
  // sizes[0] is the innermost group.
  const groups = sizes.length;
  const aStride: number[] = [], bStride: number[] = [];
  for (let g = 0, sa = 1, sb = 1; g < groups; g++) {
    aStride.push(va[g] ? sa : 0);
    bStride.push(vb[g] ? sb : 0);
    if (va[g]) sa *= sizes[g];
    if (vb[g]) sb *= sizes[g];
  }
  const inner = sizes[0];
  const ias = va[0] ? 1 : 0, ibs = vb[0] ? 1 : 0;
  const mode = ias && ibs ? 0 : ias ? 1 : 2;
  const f = SCALAR[op];
  const outer = n / inner;
  const index = new Array<number>(groups).fill(0);
  let ai = 0, bi = 0;
  for (let r = 0, o = 0; r < outer; r++, o += inner) {
    if (dense !== undefined && inner >= 32) {
      dense(
        values.subarray(o, o + inner),
        a.subarray(ai, ai + (ias ? inner : 1)),
        b.subarray(bi, bi + (ibs ? inner : 1)),
        mode,
      );
    } else if (dense !== undefined) {
      for (let i = 0; i < inner; i++) {
        values[o + i] = f(a[ai + i * ias], b[bi + i * ibs]);
      }
    } else strided(values, o, a, ai, ias, b, bi, ibs, inner);
    for (let g = 1; g < groups; g++) {
      index[g]++;
      ai += aStride[g];
      bi += bStride[g];
      if (index[g] < sizes[g]) break;
      ai -= aStride[g] * sizes[g];
      bi -= bStride[g] * sizes[g];
      index[g] = 0;
    }
  }
  return { shape, values };
}

function binaryKernel(op: string): FastKernel {
  const comparison = op in COMPARISON;
  return (args: KernelArgs, fallback) => {
    const backend = args.backend as CpuBackend;
    const { a, b } = args.inputs;
    if (a.dtype !== b.dtype) return fallback(args);
    if (comparison ? a.dtype === "string" : a.dtype !== "float32") {
      return fallback(args);
    }
    const av = valuesOf(backend, a), bv = valuesOf(backend, b);
    if (av === undefined || bv === undefined) return fallback(args);
    const r = applyBinary(
      op,
      av,
      a.shape,
      bv,
      b.shape,
      comparison ? undefined : allocFor(backend)(
        sizeOf(tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape)),
      ),
    );
    return backend.makeTensorInfo(
      r.shape,
      comparison ? "bool" : "float32",
      r.values,
    );
  };
}

/** Element-wise binary kernels: arithmetic on float32, comparisons. */
export function binaryKernels(): Record<string, FastKernel> {
  const out: Record<string, FastKernel> = {};
  for (const op of Object.keys(ARITHMETIC)) out[op] = binaryKernel(op);
  for (const op of Object.keys(COMPARISON)) out[op] = binaryKernel(op);
  return out;
}
