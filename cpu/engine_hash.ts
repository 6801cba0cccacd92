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
 * sizes the work grain and orders the plan's calls — names and texts in name
 * order. A change to any of them changes it, so a model trained and cached by
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
  "c0e147d6e4a5a098869738bc18b4fa75e0254d7e3ed01e14b40cc9247e134373";
