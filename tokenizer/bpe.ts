/**
 * The byte-level BPE engine: GPT-2 pre-tokenization, then merges by rank
 * inside each piece, with a per-piece cache.
 *
 * @module
 */
import { mergePiece } from "./_merge.ts";
import { PairMap } from "./_pair_map.ts";
import { PieceCache, pieceHash } from "./_piece_cache.ts";
import { pieceEnd } from "./_pretokenize.ts";
import { checkText } from "./_text.ts";
import {
  SPECIAL_ORDER,
  type SpecialTokens,
  specialTokensAfter,
  specialTokenText,
  type Tokenizer,
} from "./tokenizer.ts";

/** The tables of a byte-level BPE: what each id spells and how ids merge. */
export interface BpeVocabulary {
  /** Bytes of every base id (index = id). Each single byte must be one of them. */
  readonly tokens: readonly Uint8Array[];
  /** Merges by rank (first = applied first): `[left, right, merged]` ids. */
  readonly merges: readonly (readonly [number, number, number])[];
}

/** Options of {@linkcode BpeTokenizer}. */
export interface BpeTokenizerOptions {
  /** Stable identity of the vocabulary (cache key), e.g. `"gpt2-r50k"`. */
  id: string;
  /**
   * Base ids that also have a special spelling, such as GPT-2's
   * `{"<|endoftext|>": 50256}`: text spelling them gives those ids only when
   * `encode` is called with `allowSpecial`.
   */
  specialText?: Readonly<Record<string, number>>;
  /**
   * How many distinct pieces the per-piece cache keeps before it starts
   * afresh; 0 disables it.
   *
   * @default {500000}
   */
  cacheSize?: number;
}

/** Options of {@linkcode BpeTokenizer.prototype.encode}. */
export interface EncodeOptions {
  /**
   * Encode the spellings of special tokens (`<|bos|>`, `<|eos|>`, `<|pad|>`,
   * `<|mask|>`, and the vocabulary's own such as `<|endoftext|>`) as their
   * ids. Off by default: such text is ordinary text.
   *
   * @default {false}
   */
  allowSpecial?: boolean;
}

const MAX_CACHED_PIECE = 256;

/**
 * A byte-level BPE tokenizer: GPT-2 pre-tokenization, then BPE merges by rank
 * inside each piece. Base ids come from the vocabulary; the special tokens
 * follow it (`bos` = base size, then `eos`, `pad`, `mask`).
 *
 * Pieces are cached by their text, so repeated words cost one map lookup.
 * Lone surrogates are encoded as U+FFFD (as `TextEncoder` does), so
 * `decode(encode(s)) === s` holds for every well-formed string.
 *
 * @example
 * ```ts
 * import { BpeTokenizer, byteLevelVocabulary } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * // Merge "a"+"b" into 256, then 256+"c" into 257.
 * const vocab = byteLevelVocabulary([[97, 98], [256, 99]]);
 * const tok = new BpeTokenizer(vocab, { id: "example" });
 * assertEquals([...tok.encode("abc ab")], [257, 32, 256]);
 * assertEquals(tok.decode([257, 32, 256]), "abc ab");
 * assertEquals(tok.vocabSize, 258 + 4);
 * ```
 */
export class BpeTokenizer implements Tokenizer {
  /** Stable identity of the vocabulary. */
  readonly id: string;
  /** Base ids plus the four special tokens. */
  readonly vocabSize: number;
  /** Number of base ids (the special tokens start here). */
  readonly baseSize: number;
  /** `bos` = base size, `eos` + 1, `pad` + 2, `mask` + 3. */
  readonly special: Required<SpecialTokens>;
  /** The tables this tokenizer was built from. */
  readonly vocabulary: BpeVocabulary;

  #byteIds = new Int32Array(256);
  #ranks: PairMap;
  #merged: Int32Array;
  #bytes: Uint8Array;
  #offsets: Int32Array;
  #specialText = new Map<string, number>();
  #specialName = new Map<number, string>();
  #maxSpecial = 0;
  #cache: PieceCache | undefined;
  #scratch = new Int32Array(1024);
  #decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  // Output of the encode in progress.
  #out = new Uint32Array(0);
  #len = 0;

  /**
   * Builds the tables, checking that every merge joins two tokens' bytes.
   *
   * @param vocabulary Bytes of each base id and the merges by rank.
   * @param options Identity, special spellings, cache size.
   */
  constructor(vocabulary: BpeVocabulary, options: BpeTokenizerOptions) {
    const { tokens, merges } = vocabulary;
    const n = tokens.length;
    this.id = options.id;
    this.vocabulary = vocabulary;
    this.baseSize = n;
    this.vocabSize = n + SPECIAL_ORDER.length;
    this.special = specialTokensAfter(n);
    const cacheSize = options.cacheSize ?? 500_000;
    if (!(Number.isInteger(cacheSize) && cacheSize >= 0)) {
      throw new RangeError(
        `Cannot build BPE tokenizer: cacheSize must be an integer ≥ 0, got ${cacheSize}`,
      );
    }
    if (cacheSize > 0) this.#cache = new PieceCache(cacheSize);

    let total = 0;
    for (const t of tokens) total += t.length;
    this.#bytes = new Uint8Array(total);
    this.#offsets = new Int32Array(n + 1);
    this.#byteIds.fill(-1);
    for (let id = 0, at = 0; id < n; id++) {
      const t = tokens[id];
      if (t.length === 0) {
        throw new RangeError(
          `Cannot build BPE vocabulary: token ${id} is empty, expected at least one byte`,
        );
      }
      this.#bytes.set(t, at);
      at += t.length;
      this.#offsets[id + 1] = at;
      if (t.length === 1 && this.#byteIds[t[0]] < 0) this.#byteIds[t[0]] = id;
    }
    const missing = this.#byteIds.indexOf(-1);
    if (missing >= 0) {
      throw new RangeError(
        `Cannot build BPE vocabulary: no token spells the single byte ${missing}, expected all 256 bytes`,
      );
    }

    this.#ranks = new PairMap(merges.length);
    this.#merged = new Int32Array(merges.length);
    for (let r = 0; r < merges.length; r++) {
      const [a, b, m] = merges[r];
      for (const x of [a, b, m]) {
        if (!Number.isInteger(x) || x < 0 || x >= n) {
          throw new RangeError(
            `Cannot build BPE vocabulary: merge ${r} uses id ${x}, expected an integer in [0, ${n})`,
          );
        }
      }
      if (!this.#spells(m, a, b)) {
        throw new RangeError(
          `Cannot build BPE vocabulary: merge ${r} makes token ${m}, whose bytes are not those of ${a} and ${b} joined`,
        );
      }
      // A repeated pair takes its last rank, as GPT-2's
      // `dict(zip(bpe_merges, range(len(bpe_merges))))` and the tokenizers
      // library's merge map do (a later entry replaces an earlier one).
      this.#ranks.set(a, b, r);
      this.#merged[r] = m;
    }

    for (const kind of SPECIAL_ORDER) {
      this.#addSpecial(specialTokenText(kind), this.special[kind]);
    }
    for (const [text, id] of Object.entries(options.specialText ?? {})) {
      if (!Number.isInteger(id) || id < 0 || id >= n) {
        throw new RangeError(
          `Cannot build BPE vocabulary: special text ${
            JSON.stringify(text)
          } has id ${id}, expected an integer in [0, ${n})`,
        );
      }
      this.#addSpecial(text, id);
    }
  }

  #addSpecial(text: string, id: number): void {
    this.#specialText.set(text, id);
    if (id >= this.baseSize) this.#specialName.set(id, text);
    this.#maxSpecial = Math.max(this.#maxSpecial, text.length);
  }

  #spells(m: number, a: number, b: number): boolean {
    const o = this.#offsets;
    const bytes = this.#bytes;
    const la = o[a + 1] - o[a];
    if (o[m + 1] - o[m] !== la + o[b + 1] - o[b]) return false;
    for (let i = 0; i < la; i++) {
      if (bytes[o[m] + i] !== bytes[o[a] + i]) return false;
    }
    for (let i = 0; i < o[b + 1] - o[b]; i++) {
      if (bytes[o[m] + la + i] !== bytes[o[b] + i]) return false;
    }
    return true;
  }

  /**
   * The bytes that a base id spells.
   *
   * @param id A base id (below {@linkcode BpeTokenizer.prototype.baseSize}).
   * @returns A copy of its bytes.
   */
  token(id: number): Uint8Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.baseSize) {
      throw new RangeError(
        `Cannot look up token: id ${id} is not a base id, expected an integer in [0, ${this.baseSize})`,
      );
    }
    return this.#bytes.slice(this.#offsets[id], this.#offsets[id + 1]);
  }

  /**
   * Text to ids.
   *
   * @param text Any string (lone surrogates are encoded as U+FFFD).
   * @param options Whether special spellings become special ids.
   * @returns The ids.
   */
  encode(text: string, options: EncodeOptions = {}): Uint32Array {
    checkText(text);
    this.#begin(text.length);
    this.#encodeText(text, true, options.allowSpecial ?? false);
    return this.#finish();
  }

  /**
   * Encodes a stream of text chunks (for instance a file through
   * `TextDecoderStream`) chunk by chunk, with the same ids as encoding the
   * whole text at once. Only a piece that may continue into the next chunk is
   * held back, so memory stays that of one chunk.
   *
   * @param chunks The text, in order.
   * @param options Whether special spellings become special ids.
   * @returns The ids, a batch per chunk (a batch may be empty).
   *
   * @example
   * ```ts
   * import { BpeTokenizer, byteLevelVocabulary } from "@d3pm/tokenizer";
   * import { assertEquals } from "@std/assert";
   * const tok = new BpeTokenizer(byteLevelVocabulary([[97, 98]]), { id: "ab" });
   * const ids: number[] = [];
   * for await (const batch of tok.encodeStream(["a", "b a", "b"])) ids.push(...batch);
   * assertEquals(ids, [...tok.encode("ab ab")]);
   * ```
   */
  async *encodeStream(
    chunks: AsyncIterable<string> | Iterable<string>,
    options: EncodeOptions = {},
  ): AsyncGenerator<Uint32Array> {
    const allow = options.allowSpecial ?? false;
    let carry = "";
    for await (const chunk of chunks) {
      const text = carry + chunk;
      this.#begin(text.length);
      const used = this.#encodeText(text, false, allow);
      carry = text.slice(used);
      yield this.#finish();
    }
    this.#begin(carry.length);
    this.#encodeText(carry, true, allow);
    yield this.#finish();
  }

  /**
   * Ids to text. Special tokens are shown as `<|bos|>`, `<|eos|>`, `<|pad|>`
   * and `<|mask|>`; bytes that are not valid UTF-8 become U+FFFD.
   *
   * @param ids Ids below {@linkcode BpeTokenizer.prototype.vocabSize}.
   * @returns The text.
   */
  decode(ids: ArrayLike<number>): string {
    const base = this.baseSize;
    const o = this.#offsets;
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id >= 0 && id < base && Number.isInteger(id)) {
        total += o[id + 1] - o[id];
      } else if (!(id >= base && id < this.vocabSize && Number.isInteger(id))) {
        throw new RangeError(
          `Cannot decode: id ${id} at position ${i} is outside the vocabulary [0, ${this.vocabSize})`,
        );
      }
    }
    const buf = new Uint8Array(total);
    const bytes = this.#bytes;
    let out = "";
    let at = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id >= base) {
        out += this.#decoder.decode(buf.subarray(0, at)) +
          this.#specialName.get(id);
        at = 0;
        continue;
      }
      const start = o[id];
      const end = o[id + 1];
      if (end - start === 1) buf[at++] = bytes[start];
      else {
        buf.set(bytes.subarray(start, end), at);
        at += end - start;
      }
    }
    return out + this.#decoder.decode(buf.subarray(0, at));
  }

  #begin(chars: number): void {
    this.#out = new Uint32Array((chars >> 2) + 16);
    this.#len = 0;
  }

  #finish(): Uint32Array {
    const ids = this.#out.slice(0, this.#len);
    this.#out = new Uint32Array(0);
    return ids;
  }

  #push(id: number): void {
    if (this.#len === this.#out.length) this.#grow(1);
    this.#out[this.#len++] = id;
  }

  #grow(need: number): void {
    const bigger = new Uint32Array(
      Math.max(this.#out.length * 2, this.#len + need),
    );
    bigger.set(this.#out.subarray(0, this.#len));
    this.#out = bigger;
  }

  // Encodes `text`, splitting at special spellings when `allow`; returns how
  // far it got (all of it when `final`).
  #encodeText(text: string, final: boolean, allow: boolean): number {
    const n = text.length;
    let pos = 0;
    if (allow) {
      let at = text.indexOf("<|");
      while (at >= 0) {
        let found = "";
        for (const s of this.#specialText.keys()) {
          if (text.startsWith(s, at)) found = s;
        }
        if (found) {
          this.#encodeRange(text, pos, at, at);
          this.#push(this.#specialText.get(found)!);
          pos = at + found.length;
          at = text.indexOf("<|", pos);
        } else {
          at = text.indexOf("<|", at + 1);
        }
      }
    }
    if (final) return this.#encodeRange(text, pos, n, n);
    let limit = n - 2;
    if (allow) {
      // A "<" near the end may start a special spelling, which would end the
      // text before it: keep only pieces that such an end cannot change.
      const lt = text.lastIndexOf("<");
      if (lt >= pos && lt > n - this.#maxSpecial) {
        limit = Math.min(limit, lt - 2);
      }
    }
    return this.#encodeRange(text, pos, n, limit);
  }

  // Encodes the pieces of `text[start, end)` that end at or before `limit`
  // and returns where the first piece left out starts.
  #encodeRange(
    text: string,
    start: number,
    end: number,
    limit: number,
  ): number {
    const cache = this.#cache;
    let i = start;
    while (i < end) {
      const e = pieceEnd(text, i, end);
      if (e > limit) return i;
      let len = this.#len;
      if (len + 3 * (e - i) > this.#out.length) this.#grow(3 * (e - i));
      const out = this.#out;
      const h = cache === undefined ? 0 : pieceHash(text, i, e);
      const slot = cache === undefined ? -1 : cache.find(text, i, e, h);
      if (slot >= 0) {
        const v = cache!.value(slot);
        if (v >= 0) out[len++] = v;
        else {
          const pool = cache!.pool;
          const at = -v - 1;
          const stop = at + 1 + pool[at];
          for (let k = at + 1; k < stop; k++) out[len++] = pool[k];
        }
      } else {
        const n = this.#encodePiece(text, i, e);
        const ids = this.#scratch;
        for (let k = 0; k < n; k++) out[len++] = ids[k];
        if (cache !== undefined && e - i <= MAX_CACHED_PIECE) {
          cache.insert(text, i, e, h, ids, n);
        }
      }
      this.#len = len;
      i = e;
    }
    return end;
  }

  // Ids of the piece `text[start, end)` into #scratch; returns their count.
  #encodePiece(text: string, start: number, end: number): number {
    if (this.#scratch.length < 3 * (end - start)) {
      this.#scratch = new Int32Array(3 * (end - start));
    }
    const ids = this.#scratch;
    const byteIds = this.#byteIds;
    let n = 0;
    for (let i = start; i < end; i++) {
      let c = text.charCodeAt(i);
      if (c < 0x80) {
        ids[n++] = byteIds[c];
        continue;
      }
      if (c < 0x800) {
        ids[n++] = byteIds[0xc0 | (c >> 6)];
        ids[n++] = byteIds[0x80 | (c & 63)];
        continue;
      }
      if ((c & 0xf800) === 0xd800) {
        const d = i + 1 < end ? text.charCodeAt(i + 1) : 0;
        if (c < 0xdc00 && (d & 0xfc00) === 0xdc00) {
          c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
          i++;
          ids[n++] = byteIds[0xf0 | (c >> 18)];
          ids[n++] = byteIds[0x80 | ((c >> 12) & 63)];
          ids[n++] = byteIds[0x80 | ((c >> 6) & 63)];
          ids[n++] = byteIds[0x80 | (c & 63)];
          continue;
        }
        c = 0xfffd; // a lone surrogate, as TextEncoder writes it
      }
      ids[n++] = byteIds[0xe0 | (c >> 12)];
      ids[n++] = byteIds[0x80 | ((c >> 6) & 63)];
      ids[n++] = byteIds[0x80 | (c & 63)];
    }
    return mergePiece(ids, n, this.#ranks, this.#merged);
  }
}

/**
 * The vocabulary of a byte-level BPE whose ids are the 256 bytes followed by
 * one id per merge (merge `r` makes id `256 + r`), the layout that
 * {@linkcode trainBpe} produces.
 *
 * @param merges `[left, right]` id pairs by rank; each id must exist before
 * its merge.
 * @returns Tokens and merges for {@linkcode BpeTokenizer}.
 *
 * @example
 * ```ts
 * import { byteLevelVocabulary } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const vocab = byteLevelVocabulary([[104, 105]]);
 * assertEquals(vocab.tokens.length, 257);
 * assertEquals([...vocab.tokens[256]], [104, 105]);
 * assertEquals(vocab.merges[0], [104, 105, 256]);
 * ```
 */
export function byteLevelVocabulary(
  merges: readonly (readonly [number, number])[],
): BpeVocabulary {
  const tokens: Uint8Array[] = [];
  for (let b = 0; b < 256; b++) tokens.push(Uint8Array.of(b));
  const triples: [number, number, number][] = [];
  for (let r = 0; r < merges.length; r++) {
    const pair = merges[r];
    const id = 256 + r;
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new TypeError(
        `Cannot build BPE vocabulary: merge ${r} is ${
          JSON.stringify(pair)
        }, expected a pair [left, right]`,
      );
    }
    const [a, b] = pair;
    for (const x of [a, b]) {
      if (!Number.isInteger(x) || x < 0 || x >= id) {
        throw new RangeError(
          `Cannot build BPE vocabulary: merge ${r} uses id ${x}, expected an integer in [0, ${id})`,
        );
      }
    }
    const t = new Uint8Array(tokens[a].length + tokens[b].length);
    t.set(tokens[a]);
    t.set(tokens[b], tokens[a].length);
    tokens.push(t);
    triples.push([a, b, id]);
  }
  return { tokens, merges: triples };
}
