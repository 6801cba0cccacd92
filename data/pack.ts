/**
 * Packing documents into fixed-length blocks, like MDLM's "wrap".
 *
 * @module
 */
import { DataError } from "./errors.ts";
import type { TokenizedCorpus } from "./tokenized.ts";

/** `count` blocks of `length` ids each, row-major in `data`. */
export interface Blocks {
  /** `count × length` ids; block `i` is `data.subarray(i * length, (i + 1) * length)`. */
  data: Uint32Array;
  /** Number of blocks. */
  count: number;
  /** Ids per block. */
  length: number;
}

/** Options of {@linkcode packBlocks}. */
export interface PackOptions {
  /** Ids per block, at least 2. */
  length: number;
  /** Id put before every document; none when absent. */
  bos?: number;
  /** Id put after every document; none when absent. */
  eos?: number;
  /**
   * `true` (default, MDLM's "wrap"): documents run on from block to block.
   * `false`: every document starts a new block.
   */
  crossDocuments?: boolean;
  /** What to do with a partial last block: `drop` (default) or `pad`. */
  last?: "drop" | "pad";
  /** The padding id, needed when `last` is `pad`. */
  pad?: number;
  /**
   * Pack into `corpus.ids`'s own buffer, overwriting the ids, when it can:
   * documents run on (`crossDocuments`), the partial last block is dropped,
   * and the buffer (from its start) has room for every separator —
   * `tokenizeCorpus`'s `room` leaves it. The ids are then held once,
   * not twice; otherwise a new buffer is made as without this option.
   */
  inPlace?: boolean;
}

/**
 * Pack documents into blocks: each document becomes `[bos] ids [eos]`, then
 * the documents are concatenated and cut into blocks of `length` ids (or,
 * with `crossDocuments: false`, each document is cut on its own).
 *
 * @param corpus The tokenized documents.
 * @param options Block length, separators and what to do with leftovers.
 * @returns The blocks.
 * @throws {DataError} When `length` < 2, `pad` is missing for `last: "pad"`,
 * the corpus is too short for one block, or the blocks would hold more than
 * 2^31 − 1 ids (8 GiB; counted before anything is allocated).
 *
 * @example
 * ```ts
 * import { packBlocks } from "@d3pm/data";
 * import { assertEquals } from "@std/assert";
 * const corpus = { ids: Uint32Array.of(1, 2, 3, 4, 5), docOffsets: Uint32Array.of(0, 3, 5) };
 * const blocks = packBlocks(corpus, { length: 4, bos: 8, eos: 9 });
 * // [8 1 2 3 9 8 4 5 9] cut into 4s; the partial last block is dropped
 * assertEquals(Array.from(blocks.data), [8, 1, 2, 3, 9, 8, 4, 5]);
 * ```
 */
export function packBlocks(
  corpus: TokenizedCorpus,
  options: PackOptions,
): Blocks {
  const { length, bos, eos, pad } = options;
  const crossDocuments = options.crossDocuments ?? true;
  const last = options.last ?? "drop";
  if (!Number.isInteger(length) || length < 2) {
    throw new DataError(
      `Cannot pack blocks: length must be an integer ≥ 2, got ${length}`,
    );
  }
  if (last !== "drop" && last !== "pad") {
    throw new DataError(
      `Cannot pack blocks: last must be "drop" or "pad", got ${
        JSON.stringify(last)
      }`,
    );
  }
  if (last === "pad" && pad === undefined) {
    throw new DataError(
      'Cannot pack blocks: last: "pad" needs a pad id (the tokenizer\'s special.pad)',
    );
  }
  for (
    const [name, id] of [["bos", bos], ["eos", eos], ["pad", pad]] as const
  ) {
    if (
      id !== undefined && !(Number.isInteger(id) && id >= 0 && id < 2 ** 32)
    ) {
      throw new DataError(
        `Cannot pack blocks: ${name} must be an id (an integer in [0, 2^32)), got ${id}`,
      );
    }
  }
  checkOffsets(corpus);
  const numDocs = corpus.docOffsets.length - 1;
  const extra = (bos === undefined ? 0 : 1) + (eos === undefined ? 0 : 1);
  const total = corpus.ids.length + extra * numDocs;
  // The exact output, counted before allocating: a huge length with
  // last: "pad" (or without crossDocuments, where the old upper bound grew
  // with the documents) failed on V8's allocation.
  const count = blockCount(corpus, length, extra, crossDocuments, last);
  if (count === 0) throw new DataError(tooLong(length, total, crossDocuments));
  if (count * length > MAX_PACKED_IDS) {
    throw new DataError(
      `Cannot pack blocks: ${count} block${
        count === 1 ? "" : "s"
      } of length ${length} (last: "${last}") hold${count === 1 ? "s" : ""} ${
        count * length
      } ids, over the ${MAX_PACKED_IDS} (2^31 - 1) a pack may hold; use a shorter length`,
    );
  }

  if (
    options.inPlace && crossDocuments && last === "drop" &&
    corpus.ids.byteOffset === 0 && corpus.ids.buffer.byteLength >= 4 * total
  ) {
    packInPlace(corpus, bos, eos);
    return {
      data: new Uint32Array(corpus.ids.buffer, 0, count * length),
      count,
      length,
    };
  }
  const data = new Uint32Array(count * length);
  // Writes past the end (a tail that is then dropped) are clipped: typed
  // arrays ignore an index past their length, `put` clips a slice.
  let pos = 0; // write position in data
  const put = (ids: Uint32Array) => {
    const room = data.length - pos;
    if (room > 0) {
      data.set(ids.length > room ? ids.subarray(0, room) : ids, pos);
    }
    pos += ids.length;
  };
  const writeDoc = (d: number) => {
    if (bos !== undefined) data[pos++] = bos;
    put(corpus.ids.subarray(corpus.docOffsets[d], corpus.docOffsets[d + 1]));
    if (eos !== undefined) data[pos++] = eos;
  };
  // Finish the current block: pad it, or roll back to its start.
  const closeBlock = () => {
    const rem = pos % length;
    if (rem === 0) return;
    if (last === "pad") {
      data.fill(pad!, pos, pos + length - rem);
      pos += length - rem;
    } else {
      pos -= rem;
    }
  };
  for (let d = 0; d < numDocs; d++) {
    writeDoc(d);
    if (!crossDocuments) closeBlock();
  }
  closeBlock();
  if (pos !== data.length) {
    throw new Error(`packBlocks: wrote ${pos} ids, counted ${data.length}`);
  }
  return { data, count, length };
}

/** The packed output's bound in ids (8 GiB of Uint32), as `validateConfig`'s on a weight matrix. */
const MAX_PACKED_IDS = 2 ** 31 - 1;

/** How many blocks packing gives, without packing. */
function blockCount(
  { ids, docOffsets }: TokenizedCorpus,
  length: number,
  extra: number,
  cross: boolean,
  last: "drop" | "pad",
): number {
  const round = last === "pad" ? Math.ceil : Math.floor;
  const numDocs = docOffsets.length - 1;
  if (cross) return round((ids.length + extra * numDocs) / length);
  let count = 0;
  for (let d = 0; d < numDocs; d++) {
    count += round((docOffsets[d + 1] - docOffsets[d] + extra) / length);
  }
  return count;
}

function tooLong(length: number, total: number, cross: boolean): string {
  return `Cannot pack blocks: block length ${length} is larger than the corpus (${total} ids with separators${
    cross ? "" : ", longest document shorter"
  }); use a shorter length or last: "pad"`;
}

/** Offsets from 0 to `ids.length`, never decreasing. */
function checkOffsets({ ids, docOffsets }: TokenizedCorpus): void {
  const n = docOffsets.length;
  let ok = n >= 1 && docOffsets[0] === 0 && docOffsets[n - 1] === ids.length;
  for (let d = 1; ok && d < n; d++) ok = docOffsets[d] >= docOffsets[d - 1];
  if (!ok) {
    throw new DataError(
      `Cannot pack blocks: docOffsets must rise from 0 to ids.length ${ids.length} without decreasing, got ${
        n > 6
          ? `${n} offsets from ${docOffsets[0]} to ${docOffsets[n - 1]}`
          : `[${docOffsets}]`
      }`,
    );
  }
}

/**
 * Documents wrapped in their separators, back to back, in the ids' own
 * buffer: each document moves right by the separators before it, so the
 * last is moved first and nothing is overwritten before it is moved.
 */
function packInPlace(
  corpus: TokenizedCorpus,
  bos: number | undefined,
  eos: number | undefined,
): void {
  const all = new Uint32Array(corpus.ids.buffer);
  const { docOffsets } = corpus;
  const extra = (bos === undefined ? 0 : 1) + (eos === undefined ? 0 : 1);
  for (let d = docOffsets.length - 2; d >= 0; d--) {
    const from = docOffsets[d], to = docOffsets[d + 1];
    let at = from + d * extra; // where the document's bos goes
    if (bos !== undefined) at++;
    all.copyWithin(at, from, to);
    if (bos !== undefined) all[at - 1] = bos;
    if (eos !== undefined) all[at + to - from] = eos;
  }
}
