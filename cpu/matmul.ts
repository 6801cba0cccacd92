/**
 * Matrix products on views of kernel memory through `cblas_sgemm` (leading
 * dimensions and transposes as flags, never a copy), with the WebGPU
 * engine's fused epilogues as one pass of a kernel after the product, and
 * the bias gradient (column sums).
 *
 * @module
 */

import type { CpuKernels, Dropout } from "./kernels.ts";
import { dim, dropArgs, runtimeOf } from "./_runtime.ts";
import { JOB_NAMES, type JobName } from "./_jobs.ts";

/** An operand: a view, its row stride, and whether it is stored transposed. */
export interface MatrixOperand {
  /** The view the matrix starts at. */
  view: Float32Array;
  /** Row stride (floats) as stored. */
  ld: number;
  /** Stored transposed: A as [K, M], B as [N, K]. */
  trans?: boolean;
}

/** An output (or residual, or pre-activation) matrix: a view and its row stride. */
export interface OutputOperand {
  /** The view the matrix starts at. */
  view: Float32Array;
  /** Row stride (floats). */
  ld: number;
}

/**
 * What is done with the product P = op(A)·op(B), as the WebGPU engine's
 * matmul epilogues:
 *
 * | epilogue | result |
 * |---|---|
 * | `store` | C = P |
 * | `accumulate` | C += P |
 * | `bias` | C = P + bias |
 * | `bias_gelu` | E = P + bias; C = gelu(E) |
 * | `bias_silu` | E = P + bias; C = silu(E) |
 * | `bias_residual` | C = (P + bias)·keep + E |
 * | `gelu_backward` | C = P·gelu'(E) |
 * | `silu_backward` | C = P·silu'(E) |
 * | `bias_gate_residual` | aux = (P + bias)·keep; C = E + aux·(1 + gate of the row's batch) |
 */
export type Epilogue =
  | "store"
  | "accumulate"
  | "bias"
  | "bias_gelu"
  | "bias_silu"
  | "bias_residual"
  | "gelu_backward"
  | "silu_backward"
  | "bias_gate_residual";

/** Options of {@linkcode matmul}. */
export interface MatmulOptions {
  /** Rows of C. */
  m: number;
  /** Columns of C. */
  n: number;
  /** The inner dimension. */
  k: number;
  /** op(A) [m, k]. */
  a: MatrixOperand;
  /** op(B) [k, n]. */
  b: MatrixOperand;
  /** C [m, n]. */
  c: OutputOperand;
  /** Default `store`. */
  epilogue?: Epilogue;
  /** [n], for the `bias*` epilogues. */
  bias?: Float32Array;
  /** E [m, n]: the residual, or the pre-activation. Must not overlap C. */
  e?: OutputOperand;
  /**
   * The adaLN gate of `bias_gate_residual`: row r of C uses the gate at
   * view[(r / rows)·stride ..]; the branch is kept in aux (row stride c.ld).
   */
  gate?: {
    view: Float32Array;
    stride: number;
    rows: number;
    aux: Float32Array;
  };
  /** The residual branch's dropout (`bias_residual`, `bias_gate_residual`). */
  dropout?: Dropout;
  /**
   * The rows of C are rows of the caller's row space (A not transposed, so
   * A's rows with them; the epilogue's E rows with them), and B (with the
   * bias and gate) is data no other job of a run writes, the weights: the
   * product then needs no join with row-local jobs of the same split before
   * or after it (`CpuExecutor` sets it). Default false.
   */
  rowLocal?: boolean;
}

function extent(rows: number, cols: number, ld: number): number {
  return rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
}

function overlaps(x: Float32Array, nx: number, y: Float32Array, ny: number) {
  const a0 = x.byteOffset, a1 = a0 + 4 * nx;
  const b0 = y.byteOffset, b1 = b0 + 4 * ny;
  return a0 < b1 && b0 < a1;
}

/**
 * `C [m, n] (=, +=, epilogue) op(A) [m, k] · op(B) [k, n]` by `cblas_sgemm`
 * on the views, then the epilogue's kernel over the rows of C. With split
 * products (the default) the rows (or, for a wide C, the columns) are
 * divided among the threads, each running its own product and then the
 * epilogue on its rows.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shapes, operands, epilogue and its extra operands.
 * @throws {RangeError} On a view too short for its shape and stride, a
 *   stride below the row length, a missing operand, or E overlapping C.
 *
 * @example C = A·Bᵀ + bias
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { createCpuKernels, matmul } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 256, threads: 1 });
 * const a = k.floats(4), b = k.floats(4), c = k.floats(4), bias = k.floats(2);
 * a.set([1, 2, 3, 4]); // [[1, 2], [3, 4]]
 * b.set([1, 0, 1, 1]); // stored [N, K]: Bᵀ = [[1, 1], [0, 1]]
 * bias.set([10, 20]);
 * matmul(k, {
 *   m: 2, n: 2, k: 2,
 *   a: { view: a, ld: 2 }, b: { view: b, ld: 2, trans: true },
 *   c: { view: c, ld: 2 }, epilogue: "bias", bias,
 * });
 * assertEquals([...c], [11, 23, 13, 27]);
 * k.dispose();
 * ```
 */
export function matmul(kernels: CpuKernels, o: MatmulOptions): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot matmul";
  const m = dim(o.m, "m", what), n = dim(o.n, "n", what);
  const k = dim(o.k, "k", what);
  const epilogue = o.epilogue ?? "store";
  const ta = o.a.trans ?? false, tb = o.b.trans ?? false;
  const check = (
    x: OutputOperand,
    rows: number,
    cols: number,
    name: string,
  ) => {
    if (!(Number.isInteger(x.ld) && x.ld >= Math.max(1, cols))) {
      throw new RangeError(
        `${what}: ${name}.ld must be an integer ≥ ${cols} (its stored row length), got ${x.ld}`,
      );
    }
    rt.ptr(x.view, extent(rows, cols, x.ld), `${what}: ${name}`);
  };
  check(o.a, ta ? k : m, ta ? m : k, "a");
  check(o.b, tb ? n : k, tb ? k : n, "b");
  check(o.c, m, n, "c");
  const needBias = epilogue.startsWith("bias");
  const needE = epilogue !== "store" && epilogue !== "accumulate" &&
    epilogue !== "bias";
  if (needBias) {
    if (!o.bias) throw new RangeError(`${what}: ${epilogue} needs bias`);
    rt.ptr(o.bias, n, `${what}: bias`);
  }
  if (needE) {
    if (!o.e) throw new RangeError(`${what}: ${epilogue} needs e`);
    check(o.e, m, n, "e");
    if (
      overlaps(o.c.view, extent(m, n, o.c.ld), o.e.view, extent(m, n, o.e.ld))
    ) {
      throw new RangeError(`${what}: e must not overlap c`);
    }
  }
  const gate = o.gate;
  if (epilogue === "bias_gate_residual") {
    if (!gate) throw new RangeError(`${what}: bias_gate_residual needs gate`);
    rt.ptr(gate.aux, extent(m, n, o.c.ld), `${what}: gate.aux`);
    const batches = Math.ceil(m / gate.rows);
    rt.ptr(gate.view, extent(batches, n, gate.stride), `${what}: gate`);
  }
  const drop = dropArgs(o.dropout, what);
  // Where the product lands: E for the activations, aux for the gate, else C.
  const target = epilogue === "bias_gelu" || epilogue === "bias_silu"
    ? o.e!
    : epilogue === "bias_gate_residual"
    ? { view: gate!.aux, ld: o.c.ld }
    : o.c;
  const p = (v: Float32Array) => v.byteOffset;
  const c = o.c, e = o.e!;
  // The epilogue: a kernel over the rows of C, and its arguments.
  let kernel: JobName | null = null, args: number[] = [];
  switch (epilogue) {
    case "store":
    case "accumulate":
      break;
    case "bias":
      kernel = "bias_rows";
      args = [n, p(c.view), c.ld, p(o.bias!)];
      break;
    case "bias_gelu":
    case "bias_silu":
      kernel = "activation_rows";
      args = [
        n,
        p(e.view),
        e.ld,
        p(c.view),
        c.ld,
        p(o.bias!),
        epilogue === "bias_silu" ? 1 : 0,
      ];
      break;
    case "gelu_backward":
    case "silu_backward":
      kernel = "activation_backward_rows";
      args = [
        n,
        p(c.view),
        c.ld,
        p(e.view),
        e.ld,
        epilogue === "silu_backward" ? 1 : 0,
      ];
      break;
    case "bias_residual":
      kernel = "residual_rows";
      args = [n, p(c.view), c.ld, p(o.bias!), p(e.view), e.ld, ...drop];
      break;
    case "bias_gate_residual":
      kernel = "gate_rows";
      args = [
        n,
        p(c.view),
        c.ld,
        p(o.bias!),
        p(e.view),
        e.ld,
        p(gate!.aux),
        p(gate!.view),
        gate!.stride,
        gate!.rows,
        ...drop,
      ];
      break;
    default:
      throw new RangeError(
        `${what}: unknown epilogue ${
          JSON.stringify(epilogue)
        }; accepted: store, accumulate, bias, bias_gelu, bias_silu, bias_residual, gelu_backward, silu_backward, bias_gate_residual`,
      );
  }
  if (m === 0 || n === 0) return;
  // One block of rows of C per thread (the epilogue fused on each block's
  // rows), or of columns when C is much wider than tall (the epilogue
  // after): each block one single-threaded product. Fewer, larger calls
  // keep the CBLAS's packing and blocking efficient.
  const byCols = n >= 4 * m;
  const along = byCols ? n : m;
  const work = (m * n * k) / 4;
  const parts = rt.products === "split"
    ? rt.parts(work, Math.ceil(along / 16))
    : 1;
  const block = Math.ceil(along / parts / 16) * 16;
  const blocks = Math.ceil(along / block);
  const product = [
    ta ? 1 : 0,
    tb ? 1 : 0,
    m,
    n,
    k,
    1,
    p(o.a.view),
    o.a.ld,
    p(o.b.view),
    o.b.ld,
    epilogue === "accumulate" ? 1 : 0,
    p(target.view),
    target.ld,
    byCols ? 1 : 0,
    kernel === null || byCols ? -1 : JOB_NAMES.indexOf(kernel),
    block,
  ];
  const local = o.rowLocal === true && !ta && o.gate === undefined;
  rt.run(
    "gemm",
    blocks,
    byCols ? product : [...product, ...args],
    work,
    1,
    local && !byCols ? [1, block, m] : undefined,
  );
  if (byCols && kernel !== null) {
    rt.run(kernel, m, args, 8 * m * n, 1, local ? [1, 1, m] : undefined);
  }
}

/** Options of {@linkcode columnSum}. */
export interface ColumnSumOptions {
  /** Rows summed. */
  rows: number;
  /** Columns. */
  cols: number;
  /** x [rows, cols] (row stride `ld`, default cols). */
  x: Float32Array;
  /** Row stride of x. */
  ld?: number;
  /** out [cols] = Σ_rows x, written. */
  out: Float32Array;
}

/**
 * A bias gradient: the column sums of x, each in row order (deterministic
 * for any thread count; columns are split over the threads).
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape and views.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { columnSum, createCpuKernels } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 64, threads: 1 });
 * const x = k.floats(6), out = k.floats(3);
 * x.set([1, 2, 3, 4, 5, 6]);
 * columnSum(k, { rows: 2, cols: 3, x, out });
 * assertEquals([...out], [5, 7, 9]);
 * k.dispose();
 * ```
 */
export function columnSum(kernels: CpuKernels, o: ColumnSumOptions): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot sum columns";
  const rows = dim(o.rows, "rows", what), cols = dim(o.cols, "cols", what);
  const ld = o.ld ?? cols;
  if (!(Number.isInteger(ld) && ld >= cols)) {
    throw new RangeError(`${what}: ld must be an integer ≥ cols, got ${ld}`);
  }
  const x = rt.ptr(o.x, extent(rows, cols, ld), `${what}: x`);
  const out = rt.ptr(o.out, cols, `${what}: out`);
  rt.run("column_sum", cols, [rows, ld, x, out], rows * cols, 16);
}
