/**
 * The optimiser's kernels over the whole parameter table at once: the
 * global gradient norm (for clipping), AdamW in one pass over every
 * parameter, and the EMA of the parameters, as the WebGPU engine's.
 *
 * @module
 */

import type { CpuKernels } from "./kernels.ts";
import { runtimeOf } from "./_runtime.ts";

// Floats per partial sum of the norm: fixed, so the norm's summation order
// does not depend on the thread count.
const NORM_CHUNK = 16384;

/**
 * The global L2 norm of `grads`: sums of squares over fixed chunks of
 * 16,384 (float32, split over the threads), added in chunk order.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param grads Every gradient (a view of kernel memory).
 * @returns √Σ g².
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { createCpuKernels, gradNorm } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 64, threads: 1 });
 * const g = k.floats(2);
 * g.set([3, 4]);
 * assertEquals(gradNorm(k, g), 5);
 * k.dispose();
 * ```
 */
export function gradNorm(kernels: CpuKernels, grads: Float32Array): number {
  const rt = runtimeOf(kernels);
  const n = grads.length;
  const chunks = Math.ceil(n / NORM_CHUNK);
  const partial = rt.scratch(Math.max(1, chunks));
  rt.run("sum_squares", chunks, [
    n,
    NORM_CHUNK,
    rt.ptr(grads, n, "Cannot compute the gradient norm: grads"),
    partial.byteOffset,
  ], 2 * n);
  let s = 0;
  for (let c = 0; c < chunks; c++) s += partial[c];
  return Math.fround(Math.sqrt(s));
}

/**
 * Global-norm clipping's factor: `maxNorm / norm` when the norm exceeds
 * maxNorm, else 1 (also 1 when the norm is not finite, as
 * `clipByGlobalNorm`).
 *
 * @param norm The gradient norm.
 * @param maxNorm The clip threshold (Infinity: no clipping).
 * @returns The factor every gradient is multiplied by.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { clipFactor } from "@d3pm/cpu";
 *
 * assertEquals(clipFactor(4, 1), 0.25);
 * assertEquals(clipFactor(0.5, 1), 1);
 * ```
 */
export function clipFactor(norm: number, maxNorm: number): number {
  return Number.isFinite(norm) && norm > maxNorm ? maxNorm / norm : 1;
}

/** Options of {@linkcode adamw}. */
export interface AdamwOptions {
  /** Every parameter [P]. */
  params: Float32Array;
  /** Their gradients [P]. */
  grads: Float32Array;
  /** First moments [P]. */
  m: Float32Array;
  /** Second moments [P]. */
  v: Float32Array;
  /** Parameters below this index decay (the table lays decayed tensors out first). */
  decayEnd: number;
  /** Learning rate. */
  lr: number;
  /** The step number, from 1 (for the bias corrections). */
  step: number;
  /** β1 (default 0.9). */
  beta1?: number;
  /** β2 (default 0.95, as `AdamW` of @d3pm/train). */
  beta2?: number;
  /** ε (default 1e−8). */
  eps?: number;
  /** Decoupled weight decay (default 0.1, as `AdamW` of @d3pm/train). */
  weightDecay?: number;
  /** Gradients are multiplied by this first (the clip factor; default 1). */
  gradScale?: number;
}

/**
 * One AdamW step over every parameter in one pass: `g = grad·gradScale`,
 * `m ← β1 m + (1−β1) g`, `v ← β2 v + (1−β2) g²`,
 * `p ← p − lr·((m/c1)/(√(v/c2) + ε) + wd·p)` with `c1 = 1 − β1^step`,
 * `c2 = 1 − β2^step`, decay only below `decayEnd`.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o Views and hyper-parameters.
 *
 * @example The first step moves each parameter by lr against its gradient's sign
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { adamw, createCpuKernels } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 256, threads: 1 });
 * const [params, grads, m, v] = [k.floats(2), k.floats(2), k.floats(2), k.floats(2)];
 * grads.set([0.5, -2]);
 * adamw(k, { params, grads, m, v, decayEnd: 0, lr: 0.1, step: 1 });
 * assertAlmostEquals(params[0], -0.1, 1e-6);
 * assertAlmostEquals(params[1], 0.1, 1e-6);
 * k.dispose();
 * ```
 */
export function adamw(kernels: CpuKernels, o: AdamwOptions): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot run adamw";
  const n = o.params.length;
  const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.95;
  if (!(Number.isInteger(o.step) && o.step >= 1)) {
    throw new RangeError(`${what}: step must be an integer ≥ 1, got ${o.step}`);
  }
  if (!(Number.isFinite(o.lr) && o.lr >= 0)) {
    throw new RangeError(`${what}: lr must be finite and ≥ 0, got ${o.lr}`);
  }
  if (!(Number.isInteger(o.decayEnd) && o.decayEnd >= 0 && o.decayEnd <= n)) {
    throw new RangeError(
      `${what}: decayEnd must be an integer in [0, ${n}], got ${o.decayEnd}`,
    );
  }
  rt.run(
    "adamw",
    n,
    [
      o.decayEnd,
      rt.ptr(o.params, n, `${what}: params`),
      rt.ptr(o.grads, n, `${what}: grads`),
      rt.ptr(o.m, n, `${what}: m`),
      rt.ptr(o.v, n, `${what}: v`),
      b1,
      b2,
      o.eps ?? 1e-8,
      o.weightDecay ?? 0.1,
      o.lr,
      1 - b1 ** o.step,
      1 - b2 ** o.step,
      o.gradScale ?? 1,
    ],
    8 * n,
    64,
  );
}

/**
 * The EMA of the parameters: `ema ← decay·ema + (1 − decay)·params`.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o The views and the decay in [0, 1).
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { createCpuKernels, ema } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 64, threads: 1 });
 * const params = k.floats(1), average = k.floats(1);
 * params[0] = 1;
 * ema(k, { params, ema: average, decay: 0.9 });
 * assertAlmostEquals(average[0], 0.1, 1e-7);
 * k.dispose();
 * ```
 */
export function ema(
  kernels: CpuKernels,
  o: { params: Float32Array; ema: Float32Array; decay: number },
): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot run ema";
  if (!(o.decay >= 0 && o.decay < 1)) {
    throw new RangeError(`${what}: decay must be in [0, 1), got ${o.decay}`);
  }
  const n = o.params.length;
  rt.run(
    "ema",
    n,
    [
      rt.ptr(o.params, n, `${what}: params`),
      rt.ptr(o.ema, n, `${what}: ema`),
      o.decay,
    ],
    2 * n,
    64,
  );
}
