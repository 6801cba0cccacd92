/**
 * Which build of the engine's kernels is this: the SHA-256 of their WGSL
 * sources, for the cache keys of what the engine trains (as
 * `@d3pm/cpu`'s `KERNELS_SHA256` names the CPU engine's kernels).
 *
 * @module
 */

/**
 * SHA-256 of the WGSL sources of this build of the engine: every module of the
 * package that holds or compiles a compute shader, names and texts in name
 * order. A change to any kernel changes it, so a model trained and cached by
 * another build (the experiment's `auto` judge) is not taken for this one's.
 * Its test recomputes it from the files and names the new value when a
 * source changed.
 *
 * @example
 * ```ts
 * import { WGSL_SHA256 } from "@d3pm/webgpu";
 * import { assertMatch } from "@std/assert";
 * assertMatch(WGSL_SHA256, /^[0-9a-f]{64}$/);
 * ```
 */
export const WGSL_SHA256: string =
  "84c6cc14c68ecd96155b1d116be2f1ba826a245037a437b18f1b5b16ae173299";
