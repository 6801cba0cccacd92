/**
 * GELU (tanh approximation, GPT-2's `gelu_new`) and SiLU over rows, forward
 * and backward. GELU is computed as `x·σ(2u) = x/(1 + e^{−2u})` (the same
 * function as the WebGPU engine's `½x(1 + tanh u)`, one exp and one divide,
 * −2u clamped to ±30 as its tanh to ±15): within 5e-7·max(|f|, 1) of
 * float64 `gelu_new` and its derivative (activation_test.ts). The
 * matmul epilogues `bias_gelu`, `gelu_backward`, … run the same kernels.
 *
 * @module
 */

import type { CpuKernels } from "./kernels.ts";
import { dim, runtimeOf } from "./_runtime.ts";

/** Options of the activation kernels: rows × cols, with row strides. */
export interface ActivationOptions {
  /** Rows. */
  rows: number;
  /** Columns. */
  cols: number;
  /** The pre-activation x [rows, cols] (row stride xLd, default cols). */
  x: Float32Array;
  /** Row stride of x. */
  xLd?: number;
  /**
   * Forward: the output act(x). Backward: the output's gradient, multiplied
   * in place by act'(x). [rows, cols], row stride yLd (default cols).
   */
  y: Float32Array;
  /** Row stride of y. */
  yLd?: number;
}

type Act = "gelu" | "silu";

function run(
  kernels: CpuKernels,
  o: ActivationOptions,
  act: Act,
  backward: boolean,
): void {
  const rt = runtimeOf(kernels);
  const what = `Cannot run ${act}${backward ? "Backward" : "Forward"}`;
  const rows = dim(o.rows, "rows", what), cols = dim(o.cols, "cols", what);
  const xLd = o.xLd ?? cols, yLd = o.yLd ?? cols;
  for (const [name, ld] of [["xLd", xLd], ["yLd", yLd]] as const) {
    if (!(Number.isInteger(ld) && ld >= cols)) {
      throw new RangeError(
        `${what}: ${name} must be an integer ≥ cols, got ${ld}`,
      );
    }
  }
  const span = (ld: number) => (rows === 0 ? 0 : (rows - 1) * ld + cols);
  const x = rt.ptr(o.x, span(xLd), `${what}: x`);
  const y = rt.ptr(o.y, span(yLd), `${what}: y`);
  const code = act === "silu" ? 1 : 0;
  if (backward) {
    rt.run(
      "activation_backward_rows",
      rows,
      [cols, y, yLd, x, xLd, code],
      8 * rows * cols,
    );
  } else {
    rt.run(
      "activation_rows",
      rows,
      [cols, x, xLd, y, yLd, 0, code],
      8 * rows * cols,
    );
  }
}

/**
 * `y = gelu(x)`, `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape and views.
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { createCpuKernels, geluForward } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 64, threads: 1 });
 * const x = k.floats(1), y = k.floats(1);
 * x[0] = 1;
 * geluForward(k, { rows: 1, cols: 1, x, y });
 * assertAlmostEquals(y[0], 0.8411920, 1e-6);
 * k.dispose();
 * ```
 */
export function geluForward(kernels: CpuKernels, o: ActivationOptions): void {
  run(kernels, o, "gelu", false);
}

/**
 * `y ← y·gelu'(x)`: the gradient through GELU, in place.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape and views (y holds the output's gradient).
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { createCpuKernels, geluBackward } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 64, threads: 1 });
 * const x = k.floats(1), y = k.floats(1);
 * y[0] = 2; // x = 0: gelu'(0) = ½
 * geluBackward(k, { rows: 1, cols: 1, x, y });
 * assertAlmostEquals(y[0], 1, 1e-7);
 * k.dispose();
 * ```
 */
export function geluBackward(kernels: CpuKernels, o: ActivationOptions): void {
  run(kernels, o, "gelu", true);
}

/**
 * `y = silu(x) = x·σ(x)`.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape and views.
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { createCpuKernels, siluForward } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 64, threads: 1 });
 * const x = k.floats(1), y = k.floats(1);
 * x[0] = 2;
 * siluForward(k, { rows: 1, cols: 1, x, y });
 * assertAlmostEquals(y[0], 2 / (1 + Math.exp(-2)), 1e-6);
 * k.dispose();
 * ```
 */
export function siluForward(kernels: CpuKernels, o: ActivationOptions): void {
  run(kernels, o, "silu", false);
}

/**
 * `y ← y·silu'(x)`, `silu' = σ(x)(1 + x(1 − σ(x)))`, in place.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Shape and views (y holds the output's gradient).
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { createCpuKernels, siluBackward } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 64, threads: 1 });
 * const x = k.floats(1), y = k.floats(1);
 * y[0] = 1; // x = 0: silu'(0) = ½
 * siluBackward(k, { rows: 1, cols: 1, x, y });
 * assertAlmostEquals(y[0], 0.5, 1e-7);
 * k.dispose();
 * ```
 */
export function siluBackward(kernels: CpuKernels, o: ActivationOptions): void {
  run(kernels, o, "silu", true);
}
