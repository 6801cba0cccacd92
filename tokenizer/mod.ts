/**
 * Tokenizers: the `Tokenizer` interface, the plain byte-level tokenizer and
 * (soon) byte-level BPE compatible with GPT-2.
 *
 * @example
 * ```ts
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const tok = new ByteTokenizer();
 * assertEquals(tok.decode(tok.encode("a = b")), "a = b");
 * ```
 *
 * @module
 */
export * from "./tokenizer.ts";
export * from "./byte.ts";
