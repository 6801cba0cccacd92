/**
 * Where the CPU kernels' time goes: every kernel job a set of kernels runs
 * (a `CpuTransformer`'s too, through its `kernels`) timed on the host around
 * its whole call, products keyed by their shape. For benchmarks
 * (`deno task bench:cpu-profile`); a profiled call is slower than an
 * unprofiled one by the timing itself.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createCpuKernels, geluForward } from "@d3pm/cpu";
 * import { startJobProfile } from "@d3pm/cpu/profile";
 *
 * const k = await createCpuKernels({ words: 1024, threads: 1 });
 * const x = k.floats(8), y = k.floats(8);
 * const stop = startJobProfile(k);
 * geluForward(k, { rows: 1, cols: 8, x, y });
 * const profile = stop();
 * assert([...profile.values()].some((e) => e.calls === 1 && e.ms >= 0));
 * k.dispose();
 * ```
 *
 * @module
 */

import type { CpuKernels } from "./kernels.ts";
import { type JobProfile, runtimeOf } from "./_runtime.ts";

export type { JobProfile };

/**
 * Time every kernel job of `kernels` from now until the returned `stop` is
 * called: per job name (products: `gemm M×N×K` with the transposes and any
 * fused epilogue) its calls, the wall milliseconds of those calls, and of
 * that the milliseconds the host waited for the threads after its own part
 * (`split`: how many calls were split over the threads).
 *
 * @param kernels Kernels made by `createCpuKernels`, not being profiled.
 * @returns `stop`: ends the profile and returns it.
 * @throws {Error} When `kernels` are already being profiled.
 *
 * @example One profile at a time
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { createCpuKernels } from "@d3pm/cpu";
 * import { startJobProfile } from "@d3pm/cpu/profile";
 *
 * const k = await createCpuKernels({ words: 1024, threads: 1 });
 * const stop = startJobProfile(k);
 * assertThrows(() => startJobProfile(k), Error, "already being profiled");
 * assertEquals(stop().size, 0); // no kernel ran
 * startJobProfile(k)(); // a stopped profile frees the kernels for another
 * k.dispose();
 * ```
 */
export function startJobProfile(kernels: CpuKernels): () => JobProfile {
  const rt = runtimeOf(kernels);
  if (rt.profile !== null) {
    throw new Error(
      "startJobProfile: these kernels are already being profiled; stop that profile first",
    );
  }
  const profile: JobProfile = new Map();
  rt.profile = profile;
  return () => {
    if (rt.profile === profile) rt.profile = null;
    return profile;
  };
}

/**
 * Leave out the joins between row-local jobs of the same split (the
 * default, `true`), or join after every job (`false`): for side-by-side
 * timings (bench:cpu-profile --joins both). Results are the same bits
 * either way.
 *
 * @param kernels An engine's kernels (`CpuTransformer.kernels`).
 * @param on Whether to leave the joins out.
 *
 * @example
 * ```ts
 * import { createCpuKernels } from "@d3pm/cpu";
 * import { setJoinElision } from "@d3pm/cpu/profile";
 *
 * const k = await createCpuKernels({ words: 64, threads: 1 });
 * setJoinElision(k, false);
 * k.dispose();
 * ```
 */
export function setJoinElision(kernels: CpuKernels, on: boolean): void {
  runtimeOf(kernels).elide = on;
}
