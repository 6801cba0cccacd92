/**
 * Training a byte-level BPE vocabulary on a corpus.
 *
 * @module
 */
import type { BpeTokenizer } from "./bpe.ts";
import { byteLevelBpe } from "./bpe_file.ts";
import { PairMap } from "./_pair_map.ts";
import { pieceEnd } from "./_pretokenize.ts";
import { SPECIAL_ORDER } from "./tokenizer.ts";

/** Options of {@linkcode trainBpe}. */
export interface TrainBpeOptions {
  /**
   * Size of the vocabulary to reach, the four special tokens included:
   * `256 + merges + 4`. At least 260.
   */
  vocabSize: number;
  /**
   * Stop early when the most frequent pair occurs fewer times than this.
   *
   * @default {2}
   */
  minFrequency?: number;
  /** Size of the resulting tokenizer's piece cache. */
  cacheSize?: number;
  /** Called every 256 merges and at the end with `(done, wanted)`. */
  onProgress?: (done: number, wanted: number) => void;
}

// Growable column of numbers.
class Column<T extends Int32Array | Float64Array> {
  data: T;
  constructor(data: T) {
    this.data = data;
  }
  ensure(n: number): T {
    if (n > this.data.length) {
      const bigger = new (this.data.constructor as {
        new (n: number): T;
      })(Math.max(n, this.data.length * 2));
      bigger.set(this.data);
      this.data = bigger;
    }
    return this.data;
  }
}

/** Counts of the distinct GPT-2 pieces of a corpus. */
/** The longest piece counted when training from chunks (UTF-16 code units). */
const MAX_PIECE = 1 << 16;

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function countPieces(corpus: string | Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (text: string, final: boolean): number => {
    const n = text.length;
    const limit = final ? n : n - 2;
    let i = 0;
    while (i < n) {
      const e = pieceEnd(text, i, n);
      if (e > limit) break;
      const key = text.slice(i, e);
      counts.set(key, (counts.get(key) ?? 0) + 1);
      i = e;
    }
    return i;
  };
  if (typeof corpus === "string") add(corpus, true);
  else {
    let carry = "";
    for (const chunk of corpus) {
      const text = carry + chunk;
      carry = text.slice(add(text, false));
      // A piece that never ends (a run of zeros, of one symbol) is counted
      // in parts of MAX_PIECE characters rather than grown without bound;
      // no piece of real text comes near it.
      while (carry.length > MAX_PIECE) {
        const cut = isHighSurrogate(carry.charCodeAt(MAX_PIECE - 1))
          ? MAX_PIECE - 1
          : MAX_PIECE;
        const key = carry.slice(0, cut);
        counts.set(key, (counts.get(key) ?? 0) + 1);
        carry = carry.slice(cut);
      }
    }
    add(carry, true);
  }
  return counts;
}

/**
 * Trains a byte-level BPE on a corpus: the corpus is cut into GPT-2 pieces
 * (as `encode` does), then the most frequent adjacent pair of ids is merged
 * into a new id, again and again, until the vocabulary is `vocabSize` (or no
 * pair occurs `minFrequency` times). Ties go to the pair with the smaller
 * left id, then the smaller right id, so the result depends only on the text.
 *
 * Pair counts are updated incrementally: each pair keeps the list of distinct
 * pieces it occurs in, and a merge revisits only those pieces; the next pair
 * comes from a max-heap with lazy deletion.
 *
 * @param corpus The text, or its consecutive chunks.
 * @param options Target size and stopping rule.
 * @returns The tokenizer; ids 0–255 are bytes, merge `r` makes id `256 + r`,
 * then `bos`, `eos`, `pad`, `mask`.
 *
 * @example
 * ```ts
 * import { trainBpe } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const tok = trainBpe("low lower lowest low low", { vocabSize: 256 + 3 + 4 });
 * assertEquals(tok.vocabSize, 263);
 * // "l"+"o" and "o"+"w" both occur 5 times: the smaller left id wins.
 * assertEquals(tok.decode([256, 257, 258]), "lolow low");
 * assertEquals([...tok.encode(" lowest")], [258, 101, 115, 116]);
 * ```
 */
export function trainBpe(
  corpus: string | Iterable<string>,
  options: TrainBpeOptions,
): BpeTokenizer {
  const { vocabSize, minFrequency = 2, onProgress } = options;
  const least = 256 + SPECIAL_ORDER.length;
  if (!Number.isInteger(vocabSize) || vocabSize < least) {
    throw new RangeError(
      `Cannot train BPE: vocabSize must be an integer ≥ ${least} (256 bytes + ${SPECIAL_ORDER.length} special tokens), got ${vocabSize}`,
    );
  }
  if (!(minFrequency >= 1)) {
    throw new RangeError(
      `Cannot train BPE: minFrequency must be ≥ 1, got ${minFrequency}`,
    );
  }
  const wanted = vocabSize - least;

  // Distinct pieces as byte sequences, in first-seen order.
  const counts = countPieces(corpus);
  const encoder = new TextEncoder();
  const wordCount = counts.size;
  const freq = new Float64Array(wordCount);
  const start = new Int32Array(wordCount + 1);
  const len = new Int32Array(wordCount);
  let total = 0;
  const encoded: Uint8Array[] = [];
  for (const [piece, f] of counts) {
    const bytes = encoder.encode(piece);
    freq[encoded.length] = f;
    len[encoded.length] = bytes.length;
    encoded.push(bytes);
    total += bytes.length;
  }
  counts.clear();
  const sym = new Int32Array(total);
  for (let w = 0, at = 0; w < wordCount; w++) {
    start[w] = at;
    sym.set(encoded[w], at);
    at += encoded[w].length;
  }
  start[wordCount] = total;
  encoded.length = 0;

  // Pairs: index by (left, right); count; the words they occur in.
  const pairIndex = new PairMap(1 << 16);
  const pairLeft = new Column(new Int32Array(1 << 16));
  const pairRight = new Column(new Int32Array(1 << 16));
  const pairCount = new Column(new Float64Array(1 << 16));
  const pairWords: number[][] = [];
  const delta = new Column(new Float64Array(1 << 16));
  const touched = new Column(new Int32Array(1 << 16));
  let touchedLen = 0;
  const pairOf = (a: number, b: number): number => {
    let p = pairIndex.get(a, b);
    if (p < 0) {
      p = pairWords.length;
      pairIndex.set(a, b, p);
      pairLeft.ensure(p + 1)[p] = a;
      pairRight.ensure(p + 1)[p] = b;
      pairCount.ensure(p + 1)[p] = 0;
      delta.ensure(p + 1)[p] = 0;
      pairWords.push([]);
    }
    return p;
  };
  for (let w = 0; w < wordCount; w++) {
    const s = start[w];
    const f = freq[w];
    for (let i = s; i < s + len[w] - 1; i++) {
      const p = pairOf(sym[i], sym[i + 1]);
      pairCount.data[p] += f;
      const list = pairWords[p];
      if (list.length === 0 || list[list.length - 1] !== w) list.push(w);
    }
  }

  // Max-heap of (count, pair) with lazy deletion: an entry whose count is no
  // longer the pair's count is skipped when it surfaces.
  const heapCount = new Column(new Float64Array(1 << 16));
  const heapPair = new Column(new Int32Array(1 << 16));
  let heapSize = 0;
  const before = (i: number, j: number): boolean => {
    const ci = heapCount.data[i];
    const cj = heapCount.data[j];
    if (ci !== cj) return ci > cj;
    const pi = heapPair.data[i];
    const pj = heapPair.data[j];
    const li = pairLeft.data[pi];
    const lj = pairLeft.data[pj];
    return li !== lj ? li < lj : pairRight.data[pi] < pairRight.data[pj];
  };
  const swap = (i: number, j: number) => {
    const hc = heapCount.data;
    const hp = heapPair.data;
    const c = hc[i];
    hc[i] = hc[j];
    hc[j] = c;
    const p = hp[i];
    hp[i] = hp[j];
    hp[j] = p;
  };
  const push = (count: number, pair: number) => {
    heapCount.ensure(heapSize + 1)[heapSize] = count;
    heapPair.ensure(heapSize + 1)[heapSize] = pair;
    let i = heapSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(i, parent)) break;
      swap(i, parent);
      i = parent;
    }
  };
  const pop = () => {
    heapSize--;
    heapCount.data[0] = heapCount.data[heapSize];
    heapPair.data[0] = heapPair.data[heapSize];
    let i = 0;
    while (true) {
      const a = 2 * i + 1;
      if (a >= heapSize) break;
      const b = a + 1;
      const c = b < heapSize && before(b, a) ? b : a;
      if (!before(c, i)) break;
      swap(c, i);
      i = c;
    }
  };
  for (let p = 0; p < pairWords.length; p++) {
    if (pairCount.data[p] > 0) push(pairCount.data[p], p);
  }

  const addDelta = (a: number, b: number, d: number): number => {
    const p = pairOf(a, b);
    if (delta.data[p] === 0) touched.ensure(touchedLen + 1)[touchedLen++] = p;
    delta.data[p] += d;
    // A pair whose delta returns to exactly 0 is listed twice; harmless.
    return p;
  };

  const merges: [number, number][] = [];
  const seen = new Int32Array(wordCount).fill(-1);
  while (merges.length < wanted && heapSize > 0) {
    const count = heapCount.data[0];
    const p = heapPair.data[0];
    pop();
    if (count !== pairCount.data[p]) continue; // stale
    if (count < minFrequency) break;
    const a = pairLeft.data[p];
    const b = pairRight.data[p];
    const id = 256 + merges.length;
    merges.push([a, b]);
    const words = pairWords[p];
    pairWords[p] = [];
    touchedLen = 0;
    for (const w of words) {
      if (seen[w] === id) continue;
      seen[w] = id;
      const s = start[w];
      const end = s + len[w];
      let i = s;
      while (i < end - 1 && !(sym[i] === a && sym[i + 1] === b)) i++;
      if (i >= end - 1) continue; // no longer in this word
      const f = freq[w];
      for (let k = s; k < end - 1; k++) addDelta(sym[k], sym[k + 1], -f);
      let out = i;
      while (i < end) {
        if (i < end - 1 && sym[i] === a && sym[i + 1] === b) {
          sym[out++] = id;
          i += 2;
        } else sym[out++] = sym[i++];
      }
      len[w] = out - s;
      for (let k = s; k < out - 1; k++) {
        const q = addDelta(sym[k], sym[k + 1], f);
        if (sym[k] === id || sym[k + 1] === id) {
          const list = pairWords[q];
          if (list.length === 0 || list[list.length - 1] !== w) list.push(w);
        }
      }
    }
    for (let t = 0; t < touchedLen; t++) {
      const q = touched.data[t];
      const d = delta.data[q];
      if (d === 0) continue;
      delta.data[q] = 0;
      const c = (pairCount.data[q] += d);
      if (c > 0) push(c, q);
    }
    if (onProgress && merges.length % 256 === 0) {
      onProgress(merges.length, wanted);
    }
  }
  onProgress?.(merges.length, wanted);
  return byteLevelBpe(merges, { cacheSize: options.cacheSize });
}
