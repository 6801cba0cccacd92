import * as tf from "@tensorflow/tfjs";
import {
  CBLAS_NO_TRANS,
  CBLAS_ROW_MAJOR,
  CBLAS_TRANS,
  type Sgemm,
} from "./cblas.ts";
import { applyBinary } from "./_binary.ts";
import {
  type Alloc,
  allocFor,
  type CpuBackend,
  type FastKernel,
  floatsOf,
  freshFloats,
  type KernelArgs,
  sizeOf,
} from "./_kernel_util.ts";

/**
 * `C = op(A)·op(B)` for row-major batched operands whose batch dimensions
 * broadcast against each other, through `cblas_sgemm`.
 */
export function batchMatMul(
  sgemm: Sgemm,
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
  alloc: Alloc = freshFloats,
): { shape: number[]; values: Float32Array } {
  const ra = aShape.length, rb = bShape.length;
  if (ra < 2 || rb < 2) {
    throw new RangeError(
      `Cannot multiply: BatchMatMul needs rank >= 2, got ${ra} and ${rb}`,
    );
  }
  const aRows = aShape[ra - 2], aCols = aShape[ra - 1];
  const bRows = bShape[rb - 2], bCols = bShape[rb - 1];
  const m = transposeA ? aCols : aRows;
  const k = transposeA ? aRows : aCols;
  const kb = transposeB ? bCols : bRows;
  const n = transposeB ? bRows : bCols;
  if (k !== kb) {
    throw new RangeError(
      `Cannot multiply [${aShape}] by [${bShape}] (transposeA ${transposeA}, transposeB ${transposeB}): inner sizes ${k} and ${kb} differ`,
    );
  }
  const aBatch = aShape.slice(0, -2), bBatch = bShape.slice(0, -2);
  const batch = tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
  const nBatch = sizeOf(batch);
  const out = alloc(nBatch * m * n);
  const shape = [...batch, m, n];
  if (out.length === 0) return { shape, values: out };
  if (k === 0) return { shape, values: out.fill(0) };
  const tA = transposeA ? CBLAS_TRANS : CBLAS_NO_TRANS;
  const tB = transposeB ? CBLAS_TRANS : CBLAS_NO_TRANS;
  const aSize = m * k, bSize = k * n, cSize = m * n;
  const aBatchSize = sizeOf(aBatch), bBatchSize = sizeOf(bBatch);
  if (bBatchSize === 1 && !transposeA && aBatchSize === nBatch) {
    // A's batch folds into its rows: one large product instead of many.
    sgemm(
      CBLAS_ROW_MAJOR,
      tA,
      tB,
      nBatch * m,
      n,
      k,
      1,
      a,
      aCols,
      b,
      bCols,
      0,
      out,
      n,
    );
    return { shape, values: out };
  }
  // Offsets of each output batch into A and B under broadcasting.
  const rank = batch.length;
  const aPad = [...new Array(rank - aBatch.length).fill(1), ...aBatch];
  const bPad = [...new Array(rank - bBatch.length).fill(1), ...bBatch];
  const aStride = new Array<number>(rank), bStride = new Array<number>(rank);
  for (let d = rank - 1, sa = aSize, sb = bSize; d >= 0; d--) {
    aStride[d] = aPad[d] === 1 ? 0 : sa;
    bStride[d] = bPad[d] === 1 ? 0 : sb;
    sa *= aPad[d];
    sb *= bPad[d];
  }
  const index = new Array<number>(rank).fill(0);
  let aOff = 0, bOff = 0;
  for (let i = 0; i < nBatch; i++) {
    sgemm(
      CBLAS_ROW_MAJOR,
      tA,
      tB,
      m,
      n,
      k,
      1,
      a.subarray(aOff, aOff + aSize),
      aCols,
      b.subarray(bOff, bOff + bSize),
      bCols,
      0,
      out.subarray(i * cSize, (i + 1) * cSize),
      n,
    );
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      aOff += aStride[d];
      bOff += bStride[d];
      if (index[d] < batch[d]) break;
      aOff -= aStride[d] * batch[d];
      bOff -= bStride[d] * batch[d];
      index[d] = 0;
    }
  }
  return { shape, values: out };
}

function activate(
  x: Float32Array,
  activation: string,
  alpha: number,
): boolean {
  const n = x.length;
  switch (activation) {
    case "linear":
      return true;
    case "relu":
      for (let i = 0; i < n; i++) if (x[i] < 0) x[i] = 0;
      return true;
    case "relu6":
      for (let i = 0; i < n; i++) x[i] = x[i] < 0 ? 0 : x[i] > 6 ? 6 : x[i];
      return true;
    case "elu":
      for (let i = 0; i < n; i++) if (x[i] < 0) x[i] = Math.exp(x[i]) - 1;
      return true;
    case "leakyrelu":
      for (let i = 0; i < n; i++) if (x[i] < 0) x[i] *= alpha;
      return true;
    case "sigmoid":
      for (let i = 0; i < n; i++) x[i] = 1 / (1 + Math.exp(-x[i]));
      return true;
    default:
      return false;
  }
}

/** `BatchMatMul` and `_FusedMatMul` through `cblas_sgemm`. */
export function matmulKernels(sgemm: Sgemm): Record<string, FastKernel> {
  const batchMatMulKernel: FastKernel = (args: KernelArgs, fallback) => {
    const backend = args.backend as CpuBackend;
    const { a, b } = args.inputs;
    const av = floatsOf(backend, a), bv = floatsOf(backend, b);
    if (av === undefined || bv === undefined) return fallback(args);
    const { transposeA, transposeB } = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
    };
    const r = batchMatMul(
      sgemm,
      av,
      a.shape,
      bv,
      b.shape,
      transposeA,
      transposeB,
      allocFor(backend),
    );
    return backend.makeTensorInfo(r.shape, "float32", r.values);
  };
  const fusedMatMulKernel: FastKernel = (args: KernelArgs, fallback) => {
    const backend = args.backend as CpuBackend;
    const { a, b, bias, preluActivationWeights } = args.inputs as
      & Record<
        string,
        tf.TensorInfo | undefined
      >
      & { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB, activation, leakyreluAlpha } = args
      .attrs as {
        transposeA: boolean;
        transposeB: boolean;
        activation: string;
        leakyreluAlpha?: number;
      };
    const av = floatsOf(backend, a), bv = floatsOf(backend, b);
    const biasv = floatsOf(backend, bias);
    if (
      av === undefined || bv === undefined ||
      (bias !== undefined && biasv === undefined) ||
      preluActivationWeights !== undefined ||
      !["linear", "relu", "relu6", "elu", "leakyrelu", "sigmoid"].includes(
        activation,
      )
    ) return fallback(args);
    const r = batchMatMul(
      sgemm,
      av,
      a.shape,
      bv,
      b.shape,
      transposeA,
      transposeB,
      allocFor(backend),
    );
    let values = r.values, shape = r.shape;
    if (bias !== undefined && biasv !== undefined) {
      const sum = applyBinary("Add", values, shape, biasv, bias.shape, values);
      values = sum.values as Float32Array;
      shape = sum.shape;
    }
    activate(values, activation, leakyreluAlpha ?? 0.2);
    return backend.makeTensorInfo(shape, "float32", values);
  };
  return {
    [tf.BatchMatMul]: batchMatMulKernel,
    [tf._FusedMatMul]: fusedMatMulKernel,
  };
}
