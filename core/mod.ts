/**
 * The bottom of the workspace: what every other package may import and that
 * imports none of them — the seeded PRNG (with independent forks), the tfjs
 * tensor type aliases, safetensors I/O, atomic writes, gzip, SHA-256, and
 * the model contracts (`LanguageModel`, `CausalLM`).
 *
 * @example
 * ```ts
 * import { prng, sha256Hex } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const data = prng(0).fork("data"), init = prng(0).fork("init");
 * assertEquals(data.next() === init.next(), false);
 * assertEquals(sha256Hex("abc").length, 64);
 * ```
 *
 * @module
 */
export * from "./prng.ts";
export * from "./tensor_types.ts";
export * from "./safetensors.ts";
export * from "./atomic_write.ts";
export * from "./file_url.ts";
export * from "./exists.ts";
export * from "./is_inside.ts";
export * from "./gzip.ts";
export * from "./read_bounded.ts";
export * from "./follow_lines.ts";
export * from "./sha256.ts";
export * from "./model.ts";
export * from "./categorical.ts";
export * from "./process.ts";
export * from "./liveness.ts";
