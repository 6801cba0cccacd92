/**
 * Which build of the engine is this: the SHA-256 of its sources, for the
 * cache keys of what the engine trains (as `@d3pm/cpu`'s `CPU_ENGINE_SHA256`
 * names the CPU engine's).
 *
 * @module
 */

/**
 * SHA-256 of this build of the engine's sources: every module the package
 * publishes (its WGSL and the host code that picks, sizes, packs and orders
 * the dispatches), names and texts in name order. A change to any of them
 * changes it, so a model trained and cached by another build (the
 * experiment's `auto` judge) is not taken for this one's: builds may agree
 * to float32 rounding only. Its test recomputes it from the files and names
 * the new value after a change.
 *
 * @example
 * ```ts
 * import { WEBGPU_ENGINE_SHA256 } from "@d3pm/webgpu";
 * import { assertMatch } from "@std/assert";
 * assertMatch(WEBGPU_ENGINE_SHA256, /^[0-9a-f]{64}$/);
 * ```
 */
export const WEBGPU_ENGINE_SHA256: string =
  "2b7a0abf9a3dbe91734969422f8cec61cf167c528568a6ff58c0d4125c2cd06a";
