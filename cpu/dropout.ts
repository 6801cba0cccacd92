/**
 * Dropout's backward for a residual branch, with the masks of the WebGPU
 * engine's counter-based stream (the forward applies them inside the
 * embedding, residual and attention kernels).
 *
 * @module
 */

import type { CpuKernels, Dropout } from "./kernels.ts";
import { dropArgs, runtimeOf } from "./_runtime.ts";

/**
 * `dst[i] = src[i]·keep(site, i)`, keep being 0 with probability rate and
 * 1/(1 − rate) otherwise: `lowbias32(lowbias32(seed ^ lowbias32(site)) ^
 * lowbias32(i ^ 0x9e3779b9))`, its top 24 bits compared with rate.
 *
 * @param kernels From {@linkcode createCpuKernels}.
 * @param o The views (of equal length; may be the same) and the dropout.
 *
 * @example About rate of the elements are dropped
 * ```ts
 * import { assert } from "@std/assert";
 * import { createCpuKernels, dropoutBackward } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 20000, threads: 1 });
 * const src = k.floats(10000), dst = k.floats(10000);
 * src.fill(1);
 * dropoutBackward(k, { src, dst, dropout: { seed: 7, site: 0, rate: 0.25 } });
 * const dropped = dst.filter((v) => v === 0).length;
 * assert(dropped > 2300 && dropped < 2700);
 * assert(dst.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6));
 * k.dispose();
 * ```
 */
export function dropoutBackward(
  kernels: CpuKernels,
  o: { src: Float32Array; dst: Float32Array; dropout: Dropout },
): void {
  const rt = runtimeOf(kernels);
  const what = "Cannot run dropoutBackward";
  const n = o.src.length;
  rt.run(
    "dropout_backward",
    n,
    [
      rt.ptr(o.src, n, `${what}: src`),
      rt.ptr(o.dst, n, `${what}: dst`),
      ...dropArgs(o.dropout, what),
    ],
    4 * n,
    64,
  );
}
