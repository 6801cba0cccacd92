/**
 * Corpus readers (the embedded WikiText-2, user directories such as
 * WikiText-103, and folders of plain-text splits), a tokenized-corpus cache, packing into fixed blocks with
 * BOS/EOS, and a seeded, resumable batch iterator. Depends only on the
 * `Tokenizer` interface.
 *
 * @example
 * ```ts
 * import { BatchIterator, embeddedWikiText2, packBlocks, tokenizeCorpus } from "@d3pm/data";
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const tok = new ByteTokenizer();
 * const corpus = await tokenizeCorpus(embeddedWikiText2("valid"), tok);
 * const blocks = packBlocks(corpus, { length: 128, bos: tok.special.bos, eos: tok.special.eos });
 * const batches = new BatchIterator(blocks, { batchSize: 4, seed: 0 });
 * assertEquals(batches.next().tokens.length, 4 * 128);
 * ```
 *
 * @module
 */
export * from "./errors.ts";
export {
  type CorpusSource,
  embeddedWikiText2,
  findCorpus,
  findWikiText,
  isArticleTitle,
  type Layout,
  layoutSuffix,
  openBytes,
  readArticles,
  readLines,
  type ReadOptions,
  type ReadProgress,
  type Split,
  TEXT_READING,
} from "./wikitext.ts";
export * from "./tokenized.ts";
export * from "./pack.ts";
export * from "./batches.ts";
