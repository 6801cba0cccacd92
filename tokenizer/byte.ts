/**
 * The plain byte-level tokenizer (UTF-8 bytes, then the special tokens).
 *
 * @module
 */
import {
  type SpecialTokens,
  specialTokensAfter,
  specialTokenText,
  type Tokenizer,
} from "./tokenizer.ts";
import { checkText } from "./_text.ts";

/**
 * The plain byte-level tokenizer: ids 0–255 are the UTF-8 bytes of the text,
 * then `bos` 256, `eos` 257, `pad` 258, `mask` 259 (vocabulary 260).
 *
 * Decoding replaces invalid UTF-8 with U+FFFD, as `TextDecoder` does.
 *
 * @example
 * ```ts
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const tok = new ByteTokenizer();
 * const ids = tok.encode("héllo");
 * assertEquals(ids.length, 6); // "é" is two bytes
 * assertEquals(tok.decode(ids), "héllo");
 * assertEquals(tok.vocabSize, 260);
 * ```
 */
export class ByteTokenizer implements Tokenizer {
  /** Identity used by caches. */
  readonly id: string = "byte-v1";
  /** 256 bytes + 4 special tokens. */
  readonly vocabSize: number = 260;
  /** `bos` 256, `eos` 257, `pad` 258, `mask` 259. */
  readonly special: Required<SpecialTokens> = specialTokensAfter(256);
  #encoder = new TextEncoder();

  /** UTF-8 bytes of `text`. */
  encode(text: string): Uint32Array {
    checkText(text);
    return Uint32Array.from(this.#encoder.encode(text));
  }

  /** Text of `ids`; special tokens are shown as `<|bos|>` and so on. */
  decode(ids: ArrayLike<number>): string {
    const names = new Map<number, string>();
    for (const [k, v] of Object.entries(this.special)) {
      names.set(v, specialTokenText(k as keyof SpecialTokens));
    }
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    let out = "";
    let bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(
          `Cannot decode: id ${id} at position ${i} is outside the vocabulary [0, ${this.vocabSize})`,
        );
      }
      if (id < 256) {
        bytes.push(id);
        continue;
      }
      out += decoder.decode(new Uint8Array(bytes)) + names.get(id);
      bytes = [];
    }
    return out + decoder.decode(new Uint8Array(bytes));
  }
}
