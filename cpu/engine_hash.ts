/**
 * Which build of the CPU engine is this: the SHA-256 of its sources, for the
 * cache keys of what the engine trains.
 *
 * @module
 */

/**
 * SHA-256 of this build of the CPU engine's sources: every module the package
 * publishes — the WASM kernels (`_wasm.ts`, whose own hash is
 * `KERNELS_SHA256`) and the host code that splits products over the threads,
 * sizes the work grain and orders the plan's calls — and the modules of
 * `@d3pm/webgpu` that the plan it executes loads (`@d3pm/webgpu/plan`: what
 * it records, and in what order, decides the rounding as much), names and
 * texts in name order. A change to any of them changes it, so a model trained and cached by
 * another build (the experiment's `auto` judge) is not taken for this one's:
 * builds may agree to float32 rounding only. Its test recomputes it from the
 * files and names the new value after a change.
 *
 * @example
 * ```ts
 * import { CPU_ENGINE_SHA256 } from "@d3pm/cpu";
 * import { assertMatch } from "@std/assert";
 * assertMatch(CPU_ENGINE_SHA256, /^[0-9a-f]{64}$/);
 * ```
 */
export const CPU_ENGINE_SHA256: string =
  "cb0b46d71157a270fc327ff9bc33a6d45ce7323221b229ad7553c551cd76452b";
