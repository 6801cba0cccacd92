/**
 * WikiText readers, tokenized-corpus cache, packing into fixed blocks and a
 * seeded, resumable batch iterator.
 *
 * @example
 * ```ts
 * import { prng } from "@d3pm/data";
 * import { assert } from "@std/assert";
 * const x = prng(1).next();
 * assert(x >= 0 && x < 1);
 * ```
 *
 * @module
 */
export * from "./prng.ts";
