/**
 * The `Tokenizer` interface every other package depends on.
 *
 * Special tokens are placed after the base vocabulary, always in the order
 * {@linkcode SPECIAL_ORDER} (`bos`, `eos`, `pad`, `mask`): a tokenizer with a
 * base vocabulary of `n` ids gives `bos = n`, `eos = n + 1`, `pad = n + 2`,
 * `mask = n + 3`, and `vocabSize = n + 4`.
 *
 * @module
 */

/** Ids of the special tokens; absent when a tokenizer has none of that kind. */
export interface SpecialTokens {
  /** Beginning of a document. */
  bos?: number;
  /** End of a document. */
  eos?: number;
  /** Padding (never predicted, excluded from losses). */
  pad?: number;
  /** The absorbing state of masked diffusion. */
  mask?: number;
}

/**
 * The order in which special tokens follow the base vocabulary.
 *
 * @example Special ids count up from the base vocabulary in this order
 * ```ts
 * import { ByteTokenizer, SPECIAL_ORDER } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const tok = new ByteTokenizer(); // 256 base ids
 * assertEquals(SPECIAL_ORDER.map((kind) => tok.special[kind]), [256, 257, 258, 259]);
 * assertEquals(tok.vocabSize, 256 + SPECIAL_ORDER.length);
 * ```
 */
export const SPECIAL_ORDER: readonly (keyof SpecialTokens)[] = [
  "bos",
  "eos",
  "pad",
  "mask",
];

/** A text ↔ ids mapping. */
export interface Tokenizer {
  /**
   * A stable identity: two tokenizers with equal `id` give equal ids for
   * every text. Caches of tokenized corpora are keyed by it.
   */
  readonly id: string;
  /** Number of ids, special tokens included. */
  readonly vocabSize: number;
  /** Ids of the special tokens. */
  readonly special: SpecialTokens;
  /** Text to ids. Text that looks like a special token is ordinary text. */
  encode(text: string): Uint32Array;
  /** Ids to text; throws a `RangeError` for an id outside the vocabulary. */
  decode(ids: ArrayLike<number>): string;
}

/**
 * The special tokens for a base vocabulary of `baseSize` ids, laid out in
 * {@linkcode SPECIAL_ORDER}.
 *
 * @param baseSize Number of ordinary ids.
 * @returns The special token ids.
 *
 * @example
 * ```ts
 * import { specialTokensAfter } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * assertEquals(specialTokensAfter(256), { bos: 256, eos: 257, pad: 258, mask: 259 });
 * ```
 */
export function specialTokensAfter(baseSize: number): Required<SpecialTokens> {
  return {
    bos: baseSize,
    eos: baseSize + 1,
    pad: baseSize + 2,
    mask: baseSize + 3,
  };
}

/**
 * How a special token is shown by `decode` (and, with `allowSpecial`, the
 * text a BPE tokenizer encodes as its id).
 *
 * @param kind Which special token.
 * @returns Its spelling, `<|kind|>`.
 *
 * @example
 * ```ts
 * import { byteLevelBpe, ByteTokenizer, specialTokenText } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * assertEquals(specialTokenText("mask"), "<|mask|>");
 * const bytes = new ByteTokenizer();
 * assertEquals(bytes.decode([104, 105, bytes.special.mask]), "hi<|mask|>");
 * const bpe = byteLevelBpe([]);
 * assertEquals([...bpe.encode(specialTokenText("eos"), { allowSpecial: true })], [bpe.special.eos]);
 * ```
 */
export function specialTokenText(kind: keyof SpecialTokens): string {
  return `<|${kind}|>`;
}
