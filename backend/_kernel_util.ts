import type * as tf from "@tensorflow/tfjs";

/** The parts of tfjs's `MathBackendCPU` that the fast kernels use. */
export interface CpuBackend {
  data: {
    get(dataId: tf.DataId): { values?: unknown; complexTensorInfos?: unknown };
  };
  makeTensorInfo(
    shape: number[],
    dtype: tf.DataType,
    values?: tf.BackendValues,
  ): tf.TensorInfo;
}

/** A kernel's arguments, as tfjs passes them. */
export interface KernelArgs {
  /** The inputs by name; optional ones (a fused bias) may be missing. */
  inputs: Record<string, tf.TensorInfo>;
  backend: object;
  attrs?: tf.NamedAttrMap;
}

/** A kernel function with the arguments typed as the fast kernels use them. */
export type FastKernel = (
  args: KernelArgs,
  fallback: tf.KernelFunc,
) => tf.TensorInfo | tf.TensorInfo[];

/** Allocates a float32 array whose contents are arbitrary. */
export type Alloc = (n: number) => Float32Array;

/** Plain allocation, for callers without a backend. */
export const freshFloats: Alloc = (n) => new Float32Array(n);

/**
 * The backend's allocator: recycled arrays on the blas backend (contents are
 * arbitrary: every kernel writes each element), fresh ones elsewhere.
 */
export function allocFor(backend: object): Alloc {
  const pool = (backend as { pool?: { take(n: number): Float32Array } }).pool;
  return pool === undefined ? freshFloats : (n) => pool.take(n);
}

/** The dense values of a tensor on the CPU backend, or `undefined`. */
export function valuesOf(
  backend: CpuBackend,
  t: tf.TensorInfo,
): Float32Array | Int32Array | Uint8Array | undefined {
  const v = backend.data.get(t.dataId).values;
  if (
    v instanceof Float32Array || v instanceof Int32Array ||
    v instanceof Uint8Array
  ) return v;
  return undefined;
}

/** The float32 values of a tensor, or `undefined` when it is not float32. */
export function floatsOf(
  backend: CpuBackend,
  t: tf.TensorInfo | undefined,
): Float32Array | undefined {
  if (t === undefined || t.dtype !== "float32") return undefined;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : undefined;
}

/** The number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A new typed array of the tfjs dtype's storage type. */
export function allocate(
  dtype: tf.DataType,
  n: number,
): Float32Array | Int32Array | Uint8Array {
  if (dtype === "float32") return new Float32Array(n);
  if (dtype === "int32") return new Int32Array(n);
  if (dtype === "bool") return new Uint8Array(n);
  throw new TypeError(
    `Cannot allocate dtype ${dtype}: expected float32, int32 or bool`,
  );
}

/** Axes normalised to `[0, rank)`, sorted, without duplicates. */
export function normaliseAxes(
  axis: number | number[] | undefined | null,
  rank: number,
): number[] {
  if (axis === undefined || axis === null) {
    return Array.from({ length: rank }, (_, i) => i);
  }
  const list = Array.isArray(axis) ? axis : [axis];
  const out = [...new Set(list.map((a) => (a < 0 ? a + rank : a)))];
  return out.sort((a, b) => a - b);
}
