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

function allocLike(backend: CpuBackend, dtype: tf.DataType, n: number): Values {
  return dtype === "float32" ? allocFor(backend)(n) : allocate(dtype, n);
}

/**
 * Copy the box `[begin, begin + size)` of a row-major array. Trailing axes
 * taken whole merge into one contiguous run, so a column block of a matrix
 * is one copy per row.
 */
export function sliceValues(
  x: Values,
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
  out: Values,
): void {
  const rank = shape.length;
  let inner = 1, d = rank - 1;
  while (d >= 0 && begin[d] === 0 && size[d] === shape[d]) inner *= shape[d--];
  if (d < 0) {
    out.set(x.subarray(0, out.length));
    return;
  }
  const run = size[d] * inner;
  const stride = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i];
  }
  let src = 0;
  for (let i = 0; i <= d; i++) src += begin[i] * stride[i];
  const index = new Array<number>(d).fill(0);
  for (let o = 0; o < out.length; o += run) {
    if (run >= 64) out.set(x.subarray(src, src + run), o);
    else for (let i = 0; i < run; i++) out[o + i] = x[src + i];
    for (let i = d - 1; i >= 0; i--) {
      index[i]++;
      src += stride[i];
      if (index[i] < size[i]) break;
      src -= stride[i] * size[i];
      index[i] = 0;
    }
  }
}

const slice: FastKernel = (args: KernelArgs, fallback) => {
  const backend = args.backend as CpuBackend;
  const { x } = args.inputs;
  const xv = valuesOf(backend, x);
  if (xv === undefined) return fallback(args);
  const attrs = args.attrs as {
    begin: number | number[];
    size: number | number[];
  };
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as tf.Tensor,
    attrs.begin,
    attrs.size,
  );
  tf.slice_util.assertParamsValid(x as tf.Tensor, begin, size);
  const out = allocLike(backend, x.dtype, sizeOf(size));
  sliceValues(xv, x.shape, begin, size, out);
  return backend.makeTensorInfo(size, x.dtype, out);
};

const splitV: FastKernel = (args: KernelArgs, fallback) => {
  const backend = args.backend as CpuBackend;
  const { x } = args.inputs;
  const xv = valuesOf(backend, x);
  if (xv === undefined) return fallback(args);
  const { numOrSizeSplits, axis } = args.attrs as {
    numOrSizeSplits: number | number[];
    axis: number;
  };
  const ax = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(
    x as tf.Tensor,
    numOrSizeSplits,
    ax,
  );
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = [...x.shape];
    size[ax] = s;
    const out = allocLike(backend, x.dtype, sizeOf(size));
    sliceValues(xv, x.shape, begin, size, out);
    begin[ax] += s;
    return backend.makeTensorInfo(size, x.dtype, out);
  });
};

const concat: FastKernel = (args: KernelArgs, fallback) => {
  const backend = args.backend as CpuBackend;
  const inputs = Object.values(args.inputs);
  if (inputs.length === 0) return fallback(args);
  const dtype = inputs[0].dtype;
  const values = inputs.map((t) => valuesOf(backend, t));
  if (values.some((v, i) => v === undefined || inputs[i].dtype !== dtype)) {
    return fallback(args);
  }
  const axis = tf.util.parseAxisParam(
    (args.attrs as { axis: number }).axis,
    inputs[0].shape,
  )[0];
  const shapes = inputs.map((t) => t.shape);
  tf.backend_util.assertParamsConsistent(shapes, axis);
  const shape = tf.backend_util.computeOutShape(shapes, axis);
  const out = allocLike(backend, dtype, sizeOf(shape));
  const outer = sizeOf(shape.slice(0, axis));
  const blocks = shapes.map((s) => sizeOf(s.slice(axis)));
  for (let o = 0, w = 0; o < outer; o++) {
    for (let i = 0; i < inputs.length; i++) {
      const n = blocks[i];
      const v = values[i]!;
      out.set(v.subarray(o * n, (o + 1) * n), w);
      w += n;
    }
  }
  return backend.makeTensorInfo(shape, dtype, out);
};

const addN: FastKernel = (args: KernelArgs, fallback) => {
  const backend = args.backend as CpuBackend;
  const inputs = Object.values(args.inputs);
  const values = inputs.map((t) => valuesOf(backend, t));
  if (
    inputs.length === 0 ||
    values.some((v, i) =>
      !(v instanceof Float32Array) || inputs[i].dtype !== "float32" ||
      v.length !== values[0]!.length
    )
  ) return fallback(args);
  const n = values[0]!.length;
  const out = allocFor(backend)(n);
  out.set(values[0]!);
  for (let k = 1; k < values.length; k++) {
    const v = values[k]!;
    for (let i = 0; i < n; i++) out[i] += v[i];
  }
  return backend.makeTensorInfo(inputs[0].shape, "float32", out);
};

const select: FastKernel = (args: KernelArgs, fallback) => {
  const backend = args.backend as CpuBackend;
  const { condition, t, e } = args.inputs;
  const cv = valuesOf(backend, condition);
  const tv = valuesOf(backend, t), ev = valuesOf(backend, e);
  if (
    cv === undefined || tv === undefined || ev === undefined ||
    t.dtype !== "float32" || e.dtype !== "float32" ||
    tv.length !== ev.length
  ) return fallback(args);
  const n = tv.length;
  const out = allocFor(backend)(n);
  if (cv.length === n) {
    for (let i = 0; i < n; i++) out[i] = cv[i] ? tv[i] : ev[i];
  } else {
    // A rank-1 condition picks whole rows.
    const inner = n / cv.length;
    for (let r = 0, o = 0; r < cv.length; r++, o += inner) {
      const src = cv[r] ? tv : ev;
      for (let i = 0; i < inner; i++) out[o + i] = src[o + i];
    }
  }
  return backend.makeTensorInfo(t.shape, "float32", out);
};

const oneHot: FastKernel = (args: KernelArgs, fallback) => {
  const backend = args.backend as CpuBackend;
  const { indices } = args.inputs;
  const iv = valuesOf(backend, indices);
  const { depth, onValue, offValue, dtype } = args.attrs as {
    depth: number;
    onValue: number;
    offValue: number;
    dtype: tf.DataType;
  };
  if (iv === undefined || (dtype !== "float32" && dtype !== "int32")) {
    return fallback(args);
  }
  const out = allocLike(backend, dtype, iv.length * depth);
  out.fill(offValue);
  for (let i = 0; i < iv.length; i++) {
    const id = iv[i];
    if (id >= 0 && id < depth) out[i * depth + id] = onValue;
  }
  return backend.makeTensorInfo([...indices.shape, depth], dtype, out);
};

const tile: FastKernel = (args: KernelArgs, fallback) => {
  const backend = args.backend as CpuBackend;
  const { x } = args.inputs;
  const xv = valuesOf(backend, x);
  if (xv === undefined) return fallback(args);
  const reps = (args.attrs as { reps: number[] }).reps;
  const shape = x.shape.map((d, i) => d * reps[i]);
  const out = allocLike(backend, x.dtype, sizeOf(shape));
  // Build up from the innermost axis: each step repeats the block so far.
  const rank = shape.length;
  if (rank === 0) {
    out.set(xv);
    return backend.makeTensorInfo(shape, x.dtype, out);
  }
  // out viewed as [outer..., d·r, inner] is filled axis by axis from x.
  const tileRec = (axis: number, src: number, dst: number): void => {
    const innerIn = sizeOf(x.shape.slice(axis + 1));
    const innerOut = sizeOf(shape.slice(axis + 1));
    const d = x.shape[axis];
    if (axis === rank - 1) {
      for (let i = 0; i < d; i++) out[dst + i] = xv[src + i];
    } else {
      for (let i = 0; i < d; i++) {
        tileRec(axis + 1, src + i * innerIn, dst + i * innerOut);
      }
    }
    const block = d * innerOut;
    for (let r = 1; r < reps[axis]; r++) {
      out.copyWithin(dst + r * block, dst, dst + block);
    }
  };
  tileRec(0, 0, 0);
  return backend.makeTensorInfo(shape, x.dtype, out);
};

const cast: FastKernel = (args: KernelArgs, fallback) => {
  const backend = args.backend as CpuBackend;
  const { x } = args.inputs;
  const dtype = (args.attrs as { dtype: tf.DataType }).dtype;
  const xv = valuesOf(backend, x);
  if (
    xv === undefined || x.dtype === dtype || dtype === "complex64" ||
    dtype === "string" || x.dtype === "complex64" || x.dtype === "string"
  ) return fallback(args);
  const out = allocLike(backend, dtype, xv.length);
  const n = xv.length;
  if (dtype === "bool") {
    for (let i = 0; i < n; i++) out[i] = xv[i] !== 0 ? 1 : 0;
  } else if (dtype === "int32") {
    for (let i = 0; i < n; i++) out[i] = xv[i];
  } else {
    for (let i = 0; i < n; i++) out[i] = xv[i];
  }
  return backend.makeTensorInfo(x.shape, dtype, out);
};

// The gradient of Slice: the constant everywhere, then x's rows copied into
// place (tfjs cpu's PadV2 is a generic per-element loop: 9 ms for [128, 256]).
const padV2: FastKernel = (args: KernelArgs, fallback) => {
  const backend = args.backend as CpuBackend;
  const { x } = args.inputs;
  const xv = valuesOf(backend, x);
  const { paddings, constantValue } = args.attrs as {
    paddings: [number, number][];
    constantValue: number;
  };
  const rank = x.shape.length;
  if (x.dtype !== "float32" || xv === undefined || rank === 0) {
    return fallback(args);
  }
  const shape = x.shape.map((n, i) => paddings[i][0] + n + paddings[i][1]);
  const out = allocLike(backend, "float32", sizeOf(shape));
  out.fill(constantValue);
  const stride = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i];
  }
  let dst = 0;
  for (let i = 0; i < rank; i++) dst += paddings[i][0] * stride[i];
  const run = x.shape[rank - 1];
  const index = new Array<number>(rank - 1).fill(0);
  for (let o = 0; o < xv.length; o += run) {
    out.set(xv.subarray(o, o + run), dst);
    for (let i = rank - 2; i >= 0; i--) {
      index[i]++;
      dst += stride[i];
      if (index[i] < x.shape[i]) break;
      dst -= stride[i] * x.shape[i];
      index[i] = 0;
    }
  }
  return backend.makeTensorInfo(shape, "float32", out);
};

/** Slicing, splitting, concatenation, tiling, casts, `Select`, `OneHot`, `AddN`, `PadV2`. */
export function miscKernels(): Record<string, FastKernel> {
  return {
    [tf.Slice]: slice,
    [tf.SplitV]: splitV,
    [tf.Concat]: concat,
    [tf.AddN]: addN,
    [tf.Select]: select,
    [tf.OneHot]: oneHot,
    [tf.Tile]: tile,
    [tf.Cast]: cast,
    [tf.PadV2]: padV2,
  };
}
