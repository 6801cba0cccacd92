/**
 * SHA-256, synchronous and incremental, as lowercase hex: the one hash the
 * project uses for cache keys, tokenizer identities and payload checksums.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   sha256Hex(new TextEncoder().encode("abc")),
 *   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
 * );
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";

/** An incremental SHA-256: feed it bytes, then read the digest once. */
export interface Sha256 {
  /**
   * Add bytes.
   *
   * @param data More input.
   * @returns The same hasher, for chaining.
   */
  update(data: Uint8Array | string): Sha256;
  /**
   * The digest of everything added, as 64 lowercase hex digits.
   *
   * @returns The digest; the hasher cannot be used afterwards.
   */
  hex(): string;
}

/**
 * A new incremental SHA-256 (for streams too large to hold at once).
 *
 * @returns An empty hasher.
 *
 * @example
 * ```ts
 * import { createSha256, sha256Hex } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const bytes = new TextEncoder().encode("hello world");
 * const h = createSha256().update(bytes.subarray(0, 5)).update(bytes.subarray(5));
 * assertEquals(h.hex(), sha256Hex(bytes));
 * ```
 */
export function createSha256(): Sha256 {
  const hash = createHash("sha256");
  const self: Sha256 = {
    update(data) {
      hash.update(data);
      return self;
    },
    hex: () => hash.digest("hex"),
  };
  return self;
}

/**
 * SHA-256 of bytes or of a string's UTF-8 encoding, as lowercase hex.
 *
 * @param data The input.
 * @returns 64 hex digits.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(sha256Hex("").slice(0, 8), "e3b0c442");
 * ```
 */
export function sha256Hex(data: Uint8Array | string): string {
  return createSha256().update(data).hex();
}
