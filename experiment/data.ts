/**
 * The data side of a run: corpus sources, the tokenizer (trained, cached or
 * the run's own), tokenized and packed splits, and the facts the report
 * quotes. Nothing here writes into the run folder.
 *
 * @module
 */
import { fromFileUrl, pathExists, readJsonBounded } from "@d3pm/core";
import {
  type Blocks,
  type CorpusSource,
  embeddedWikiText2,
  findCorpus,
  layoutSuffix,
  packBlocks,
  readArticles,
  sha256OfSource,
  type Split,
  TEXT_READING,
  tokenizeCorpus,
  type TokenizedCorpus,
} from "@d3pm/data";
import {
  BpeTokenizer,
  ByteTokenizer,
  loadBpeTokenizer,
  loadGpt2Tokenizer,
  saveBpeTokenizer,
  type Tokenizer,
  trainBpe,
} from "@d3pm/tokenizer";
import { ConfigError, type ExperimentConfig } from "./options.ts";
import type { DataRecord, RunFolder } from "./run_folder.ts";
import type { DataFacts } from "./results.ts";

/** The special ids a run needs. */
export interface Specials {
  /** Begin of a document. */
  bos: number;
  /** End of a document. */
  eos: number;
  /** Padding. */
  pad: number;
  /** The mask of the masked models. */
  mask: number;
}

/** Everything a run trains and evaluates on. */
export interface RunData {
  /** The tokenizer. */
  tokenizer: Tokenizer;
  /** Its special ids. */
  specials: Specials;
  /** The train split, packed. */
  train: Blocks;
  /** The first `validBlocks` blocks of the valid split. */
  valid: Blocks;
  /** The first `evalBlocks` blocks of the test split (all for 0). */
  test: Blocks;
  /** What the report says of the corpus. */
  facts: DataFacts;
  /** SHA-256 of the train split's file (a cache key). */
  trainSha256: string;
  /**
   * `text` for a folder of plain-text splits (documents cut otherwise than
   * WikiText's, so part of every cache key); absent for WikiText.
   */
  format?: "text";
  /**
   * What the run trains on — each split's SHA-256 and the tokenizer's id
   * and real size — as `data.json` records it and a resume checks it.
   */
  record: DataRecord;
  /**
   * Where each split was read: a file's path, or the URL of one not on
   * disk (what an error about the split names).
   */
  files: Record<Split, string>;
  /** Write the tokenizer into the run folder (a trained BPE only). */
  persist(folder: RunFolder): Promise<void>;
}

const TOKEN_CACHE = ".cache/tokens";

/** Options of {@linkcode prepareData}. */
export interface PrepareOptions {
  /**
   * Called with the ids of all three splits once they are tokenized,
   * before they are packed (and before a judge trains): the run checks its
   * memory budget with the corpus counted, and may refuse by throwing.
   */
  onTokenized?: (ids: number) => void;
  /**
   * Called before each split's ids are allocated, with the ids of the
   * splits read so far and this one's (counted from its token cache's
   * header): the run checks its memory budget, and may refuse by throwing,
   * before a corpus too large for the memory is read.
   */
  beforeHolding?: (ids: number) => void;
}

async function source(
  c: ExperimentConfig,
  split: Split,
): Promise<CorpusSource> {
  return c.data ? await findCorpus(c.data, split) : embeddedWikiText2(split);
}

/**
 * Read, tokenize and pack the data of `config`; validates everything (the
 * data folder, the tokenizer, the block length) before any run file exists.
 *
 * @param config The run's configuration.
 * @param folder The run folder (a resumed run's BPE is read from it).
 * @param log Where progress lines go.
 * @param options What to call once the corpus is tokenized.
 * @returns The run's data.
 * @throws {ConfigError} For a tokenizer without the special ids a run needs.
 *
 * @example The embedded WikiText-2 in bytes
 * ```ts
 * import { prepareData, resolveConfig, RunFolder } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const config = resolveConfig({ preset: "micro", evalBlocks: 4 });
 * const data = await prepareData(config, new RunFolder("runs/none"), () => {});
 * assertEquals(data.test.count, 4);
 * assertEquals(data.test.length, config.blockLength);
 * assertEquals(data.specials.mask, 259); // the byte tokenizer's
 * ```
 */
export async function prepareData(
  config: ExperimentConfig,
  folder: RunFolder,
  log: (line: string) => void,
  options: PrepareOptions = {},
): Promise<RunData> {
  if (config.preset === "paper" && !config.data) {
    log(
      "note: the paper preset is meant for WikiText-103 (--data DIR); without it, the embedded WikiText-2 is used",
    );
  }
  // The train split is hashed once: it keys both the BPE and the token cache.
  const trainSource = await source(config, "train");
  const trainSha256 = await sha256OfSource(trainSource);
  const format = trainSource.layout === "text" ? "text" as const : undefined;
  const tokenizer = await loadTokenizer(config, folder, {
    source: trainSource,
    sha256: trainSha256,
  }, log);
  const specials = specialsOf(tokenizer);
  const { bos, eos } = specials;
  const { sha256, corpora, files } = await tokenizeSplits(config, tokenizer, {
    source: trainSource,
    sha256: trainSha256,
  }, options.beforeHolding);
  // Read off the ids before they are packed in place (overwritten).
  const facts = factsOf(config, tokenizer, corpora, 0);
  options.onTokenized?.(
    corpora.train.ids.length + corpora.valid.ids.length +
      corpora.test.ids.length,
  );
  const pack = (split: "train" | "valid" | "test") =>
    packSplit(config, corpora[split], { split, file: files[split], bos, eos });
  const train = pack("train");
  const test = first(pack("test"), config.evalBlocks);
  const valid = first(pack("valid"), config.validBlocks);
  facts.validBlocks = valid.count;
  log(
    `data: ${facts.trainTokens} train / ${facts.testTokens} test tokens, ${train.count} train blocks, ${valid.count} valid and ${test.count} test blocks of ${config.blockLength}`,
  );
  // The report says so of the valid split; of the test split nothing did.
  if (config.evalBlocks > test.count) {
    log(
      `note: the test split (${files.test}) has ${test.count} block(s) of ${config.blockLength}, fewer than the ${config.evalBlocks} of --eval-blocks: the figures are on all ${test.count}`,
    );
  }
  return {
    tokenizer,
    specials,
    train,
    valid,
    test,
    facts,
    trainSha256,
    ...(format ? { format } : {}),
    record: {
      sha256,
      tokenizer: { id: tokenizer.id, vocabSize: tokenizer.vocabSize },
      ...(format
        ? { format, files: baseNames(files), reading: TEXT_READING }
        : {}),
    },
    files,
    persist: async (f) => {
      // Only a BPE trained for this run is kept; byte and GPT-2 are built in.
      if (config.tokenizer !== "bpe" || !(tokenizer instanceof BpeTokenizer)) {
        return;
      }
      if (await pathExists(f.tokenizerPath)) return;
      await saveBpeTokenizer(tokenizer, f.tokenizerPath);
    },
  };
}

/**
 * A split packed in blocks of `--block-length` with bos/eos; a split of no
 * text, or one shorter than one block, is refused naming the split and the
 * option.
 */
function packSplit(
  config: ExperimentConfig,
  corpus: Parameters<typeof packBlocks>[0],
  at: { split: string; file: string; bos: number; eos: number },
): ReturnType<typeof packBlocks> {
  const { split, bos, eos } = at;
  // No block length fits a split of no text: say so, not "lower it".
  if (corpus.ids.length === 0) {
    throw new ConfigError(
      `The ${split} split (${at.file}) holds no text: once read it is empty or only whitespace (spaces, tabs, line breaks), which is dropped; give it text`,
    );
  }
  try {
    return packBlocks(corpus, {
      length: config.blockLength,
      bos,
      eos,
      inPlace: true,
    });
  } catch (e) {
    if (!(e instanceof Error) || !/larger than the corpus/.test(e.message)) {
      throw e;
    }
    throw new ConfigError(
      `The ${split} split is shorter than one block of --block-length ${config.blockLength} (${
        /\((\d+) ids/.exec(e.message)?.[1] ?? "fewer"
      } ids with separators): lower --block-length, or give a longer corpus`,
    );
  }
}

/**
 * The data of a finished run for a reader that scores it (`deno task
 * evaluate`, the benches that take `--run`): {@linkcode prepareData}, then
 * the check that the files its `--data` names now are those it trained on
 * (`RunFolder.verifyData` against its `data.json`; a run made before data
 * records checks nothing). The one place a reader of a run's data checks
 * them.
 *
 * @param config The run's configuration (its `config.json`, `resume` set
 *   so that its own tokenizer is read).
 * @param folder The run folder.
 * @param options `log`: where progress lines go (default: nowhere).
 * @returns The run's data.
 * @throws {ConfigError} When a split's file changed since the run trained:
 *   one line naming the split, its file and both hashes' first 12 digits.
 *
 * @example A run whose test file is not the one it trained on is refused
 * ```ts
 * import { ConfigError, prepareRunData, resolveConfig, RunFolder } from "@d3pm/experiment";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * const config = resolveConfig({ preset: "micro", evalBlocks: 4, resume: true });
 * const folder = new RunFolder(dir);
 * const { record } = await prepareRunData(config, folder); // no data.json: unchecked
 * const test = "1".repeat(64);
 * await Deno.writeTextFile(folder.dataPath, JSON.stringify({ ...record, sha256: { ...record.sha256, test } }));
 * await assertRejects(() => prepareRunData(config, folder), ConfigError, "The test data of the run in");
 * await Deno.writeTextFile(folder.dataPath, JSON.stringify(record));
 * assertEquals((await prepareRunData(config, folder)).test.count, 4);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function prepareRunData(
  config: ExperimentConfig,
  folder: RunFolder,
  options: { log?: (line: string) => void } = {},
): Promise<RunData> {
  const data = await prepareData(config, folder, options.log ?? (() => {}));
  await folder.verifyData(data.record, { files: data.files });
  return data;
}

/**
 * Refuse, in one line naming the file and the options, a train split that
 * packs into fewer blocks than one batch: found before any run file exists
 * rather than by the batcher ("Cannot batch: batchSize 16 is larger than
 * the 3 blocks available") once a model starts. The experiment checks its
 * run, the ablation each variant (whose batch sizes differ).
 *
 * @param config The run's (or the variant's) batch size and block length.
 * @param data Its train blocks and where they were read.
 * @throws {ConfigError} When the train split is shorter than one batch.
 *
 * @example
 * ```ts
 * import { checkTrainBatch } from "./data.ts";
 * import { assertThrows } from "@std/assert";
 * const data = { train: { count: 3 }, files: { train: "/d/train.txt" } };
 * checkTrainBatch({ batchSize: 3, blockLength: 32 }, data);
 * assertThrows(
 *   () => checkTrainBatch({ batchSize: 16, blockLength: 32 }, data),
 *   Error,
 *   "The train split (/d/train.txt) packs into 3 block(s) of --block-length 32, fewer than one batch of --batch-size 16",
 * );
 * ```
 */
export function checkTrainBatch(
  config: Pick<ExperimentConfig, "batchSize" | "blockLength">,
  data: {
    readonly train: Pick<Blocks, "count">;
    readonly files: Pick<RunData["files"], "train">;
  },
): void {
  if (data.train.count < config.batchSize) {
    throw new ConfigError(
      `The train split (${data.files.train}) packs into ${data.train.count} block(s) of --block-length ${config.blockLength}, fewer than one batch of --batch-size ${config.batchSize}: lower --batch-size or --block-length, or give a longer train split`,
    );
  }
}

/** The special ids a run needs, or a one-line refusal. */
function specialsOf(tokenizer: Tokenizer): Specials {
  const { bos, eos, pad, mask } = tokenizer.special;
  if (
    bos === undefined || eos === undefined || pad === undefined ||
    mask === undefined
  ) {
    throw new ConfigError(
      `Tokenizer ${tokenizer.id} lacks bos/eos/pad/mask special tokens`,
    );
  }
  return { bos, eos, pad, mask };
}

/** Each split's SHA-256 and its tokens (through the token cache). */
async function tokenizeSplits(
  config: ExperimentConfig,
  tokenizer: Tokenizer,
  train: { source: CorpusSource; sha256: string },
  beforeHolding?: (ids: number) => void,
): Promise<{
  sha256: Record<Split, string>;
  corpora: Record<Split, TokenizedCorpus>;
  files: Record<Split, string>;
}> {
  const validSource = await source(config, "valid");
  const testSource = await source(config, "test");
  const sha256 = {
    train: train.sha256,
    valid: await sha256OfSource(validSource),
    test: await sha256OfSource(testSource),
  };
  // The ids held so far, added to each split's count before it is held.
  let held = 0;
  const split = async (source: CorpusSource, corpusSha256: string) => {
    const corpus = await tokenizeCorpus(source, tokenizer, {
      cacheDir: TOKEN_CACHE,
      corpusSha256,
      room: 2, // bos and eos: packed in place
      ...beforeHolding ? { beforeHolding: (n) => beforeHolding(held + n) } : {},
    });
    held += corpus.ids.length;
    return corpus;
  };
  const corpora: Record<Split, TokenizedCorpus> = {
    train: await split(train.source, sha256.train),
    valid: await split(validSource, sha256.valid),
    test: await split(testSource, sha256.test),
  };
  const file = (s: CorpusSource) =>
    s.url.startsWith("file:") ? fromFileUrl(s.url) : s.url;
  const files = {
    train: file(train.source),
    valid: file(validSource),
    test: file(testSource),
  };
  return { sha256, corpora, files };
}

/** What the report says of the data. */
function factsOf(
  config: ExperimentConfig,
  tokenizer: Tokenizer,
  corpora: Record<Split, TokenizedCorpus>,
  validBlocks: number,
): DataFacts {
  const testText = tokenizer.decode(corpora.test.ids);
  return {
    source: config.data || "embedded WikiText-2 (v1, tokenized release)",
    trainTokens: corpora.train.ids.length,
    testTokens: corpora.test.ids.length,
    bytesPerToken: new TextEncoder().encode(testText).length /
      corpora.test.ids.length,
    unigramEntropy: unigramEntropy(corpora.train.ids, tokenizer.vocabSize),
    validBlocks,
  };
}

/**
 * The first `tokens` tokens of the train split, by articles: whole articles
 * in corpus order (each wrapped in BOS/EOS), the last one cut so that the
 * total is `tokens`, packed into blocks of the run's length (a partial last
 * block is dropped). The data-constrained study's budget of unique tokens.
 *
 * @param config The run's configuration (data folder, block length).
 * @param data The run's data (its tokenizer and specials).
 * @param tokens How many tokens.
 * @param options The train split, read already ({@linkcode trainCorpus}):
 *   several prefixes from one read.
 * @returns The blocks and how many articles they hold.
 * @throws {ConfigError} When the train split is shorter than `tokens`.
 *
 * @example The first 64 tokens of the embedded WikiText-2, in blocks of 32
 * ```ts
 * import { prepareData, trainPrefix } from "./data.ts";
 * import { resolveConfig, RunFolder } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const config = resolveConfig({ preset: "micro", evalBlocks: 4 });
 * const data = await prepareData(config, new RunFolder("runs/none"), () => {});
 * const { blocks, articles } = await trainPrefix(config, data, 64);
 * assertEquals([blocks.count, blocks.length, articles], [2, 32, 1]);
 * ```
 */
export async function trainPrefix(
  config: ExperimentConfig,
  data: RunData,
  tokens: number,
  options: TrainCorpusOptions = {},
): Promise<{ blocks: Blocks; articles: number }> {
  const corpus = options.corpus ?? await trainCorpus(config, data);
  // Checked before the prefix is allocated: a huge `tokens` is refused,
  // not an allocation failure.
  const most = prefixLimit(corpus);
  if (tokens > most) {
    throw new ConfigError(
      `The train split has ${most} tokens with BOS/EOS, fewer than the ${tokens} asked for`,
    );
  }
  // The separators go in here: the prefix is then packed as one document.
  const prefix = new Uint32Array(tokens);
  const { bos, eos } = data.specials;
  let n = 0;
  let articles = 0;
  const put = (id: number) => {
    if (n < tokens) prefix[n++] = id;
  };
  for (let d = 0; d + 1 < corpus.docOffsets.length && n < tokens; d++) {
    put(bos);
    for (
      const id of corpus.ids.subarray(
        corpus.docOffsets[d],
        corpus.docOffsets[d + 1],
      )
    ) {
      if (n === tokens) break;
      put(id);
    }
    put(eos);
    articles++;
  }
  if (n < tokens) {
    throw new ConfigError(
      `The train split has ${n} tokens with BOS/EOS, fewer than the ${tokens} asked for`,
    );
  }
  const blocks = packBlocks(
    { ids: prefix, docOffsets: Uint32Array.of(0, tokens) },
    { length: config.blockLength },
  );
  return { blocks, articles };
}

/** Options of {@linkcode trainPrefix} and {@linkcode trainPrefixLimit}. */
export interface TrainCorpusOptions {
  /** The train split, read already (default: read it). */
  corpus?: TokenizedCorpus;
}

/**
 * The train split, tokenized (from the token cache when it is there), read
 * once for {@linkcode trainPrefix} and {@linkcode trainPrefixLimit}.
 *
 * @param config The run's configuration (data folder).
 * @param data The run's data (its tokenizer).
 * @returns The corpus.
 *
 * @example
 * ```ts
 * import { prepareData, trainCorpus, trainPrefixLimit } from "./data.ts";
 * import { resolveConfig, RunFolder } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const config = resolveConfig({ preset: "micro", evalBlocks: 4 });
 * const data = await prepareData(config, new RunFolder("runs/none"), () => {});
 * const corpus = await trainCorpus(config, data);
 * assertEquals(corpus.ids.length, data.facts.trainTokens);
 * assertEquals(
 *   await trainPrefixLimit(config, data, { corpus }),
 *   await trainPrefixLimit(config, data),
 * );
 * ```
 */
export async function trainCorpus(
  config: ExperimentConfig,
  data: RunData,
): Promise<TokenizedCorpus> {
  return await tokenizeCorpus(await source(config, "train"), data.tokenizer, {
    cacheDir: TOKEN_CACHE,
    corpusSha256: data.trainSha256,
  });
}

/** The train split's tokens with a BOS and an EOS around each article. */
function prefixLimit(corpus: TokenizedCorpus): number {
  return corpus.ids.length + 2 * (corpus.docOffsets.length - 1);
}

/**
 * The most tokens {@linkcode trainPrefix} takes: the whole train split,
 * each article wrapped in BOS/EOS.
 *
 * @param config The run's configuration (data folder).
 * @param data The run's data (its tokenizer).
 * @param options The train split, read already ({@linkcode trainCorpus}).
 * @returns The count.
 *
 * @example The embedded WikiText-2 in bytes: more than its bare tokens
 * ```ts
 * import { prepareData, trainPrefix, trainPrefixLimit } from "./data.ts";
 * import { ConfigError, resolveConfig, RunFolder } from "@d3pm/experiment";
 * import { assert, assertRejects } from "@std/assert";
 * const config = resolveConfig({ preset: "micro", evalBlocks: 4 });
 * const data = await prepareData(config, new RunFolder("runs/none"), () => {});
 * const most = await trainPrefixLimit(config, data);
 * assert(most > data.facts.trainTokens);
 * await assertRejects(() => trainPrefix(config, data, 1e12), ConfigError, `has ${most} tokens`);
 * ```
 */
export async function trainPrefixLimit(
  config: ExperimentConfig,
  data: RunData,
  options: TrainCorpusOptions = {},
): Promise<number> {
  return prefixLimit(options.corpus ?? await trainCorpus(config, data));
}

/** Each split's file name, without its folder. */
function baseNames(files: Record<Split, string>): Record<Split, string> {
  const base = (f: string) => f.split("/").pop() ?? f;
  return {
    train: base(files.train),
    valid: base(files.valid),
    test: base(files.test),
  };
}

/** The first `n` blocks (all when `n` is 0 or more than there are). */
function first(blocks: Blocks, n: number): Blocks {
  return n > 0 && n < blocks.count
    ? {
      ...blocks,
      count: n,
      data: blocks.data.subarray(0, n * blocks.length),
    }
    : blocks;
}

/**
 * The tokenizer of a finished or resumed run: the byte or GPT-2 tokenizer,
 * or the BPE saved in its folder.
 *
 * @param config The run's configuration.
 * @param folder The run folder.
 * @returns The tokenizer.
 * @throws {ConfigError} When the saved BPE's size is not the configured one.
 *
 * @example
 * ```ts
 * import { openTokenizer, resolveConfig, RunFolder } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const tok = await openTokenizer(resolveConfig({ preset: "micro" }), new RunFolder("runs/none"));
 * assertEquals(tok.vocabSize, 260); // bytes and 4 special ids
 * ```
 */
export async function openTokenizer(
  config: ExperimentConfig,
  folder: RunFolder,
): Promise<Tokenizer> {
  // The run recorded the tokenizer it built (a run made before records has
  // none): another one put in its place is refused.
  const record = await folder.savedData();
  // A config.json of another run (a BPE run's copied into a byte run) failed
  // as "Cannot read RUN/tokenizer.json: No such file or directory", naming a
  // file the run never had.
  const built = record?.tokenizer.id.split(/[-:]/)[0];
  if (
    built !== undefined && ["byte", "bpe", "gpt2"].includes(built) &&
    built !== config.tokenizer
  ) {
    throw new ConfigError(
      `${folder.configPath} gives --tokenizer ${config.tokenizer}, not the tokenizer the run built (${
        record!.tokenizer.id
      }, recorded in ${folder.dataPath}): one of the two is another run's or was edited; restore it`,
    );
  }
  const tok = await builtTokenizer(config, folder, record);
  if (record && record.tokenizer.id !== tok.id) {
    throw new ConfigError(
      `${
        config.tokenizer === "bpe"
          ? folder.tokenizerPath
          : `--tokenizer ${config.tokenizer}`
      } is ${tok.id}, not the tokenizer the run built (${record.tokenizer.id}, recorded in ${folder.dataPath})`,
    );
  }
  return tok;
}

async function builtTokenizer(
  config: ExperimentConfig,
  folder: RunFolder,
  record: DataRecord | undefined,
): Promise<Tokenizer> {
  if (config.tokenizer === "byte") return new ByteTokenizer();
  if (config.tokenizer === "gpt2") return await loadGpt2Tokenizer();
  const own = await loadBpeTokenizer(folder.tokenizerPath);
  if (record && record.tokenizer.id !== own.id) return own; // refused above
  if (own.vocabSize === config.vocabSize) return own;
  // A BPE that ran out of pairs to merge is smaller than asked: the record
  // has its real size.
  if (
    own.vocabSize < config.vocabSize &&
    record?.tokenizer.vocabSize === own.vocabSize
  ) return own;
  throw new ConfigError(
    `${folder.tokenizerPath} has ${own.vocabSize} ids but --vocab-size is ${config.vocabSize}${
      record
        ? ` and ${folder.dataPath} records ${record.tokenizer.vocabSize}`
        : ""
    }`,
  );
}

/** Say, before anything trains, that a BPE is smaller than asked. */
function noteShrunk(
  tok: Tokenizer,
  config: ExperimentConfig,
  log: (s: string) => void,
): void {
  if (tok.vocabSize >= config.vocabSize) return;
  log(
    `note: the train split has no more pairs to merge (each seen twice) beyond ${tok.vocabSize} ids: the BPE has ${tok.vocabSize} ids, not the ${config.vocabSize} of --vocab-size; the models are built for ${tok.vocabSize}, and data.json records it`,
  );
}

async function loadTokenizer(
  config: ExperimentConfig,
  folder: RunFolder,
  train: { source: CorpusSource; sha256: string },
  log: (s: string) => void,
): Promise<Tokenizer> {
  if (
    config.tokenizer !== "bpe" ||
    (config.resume && await pathExists(folder.tokenizerPath))
  ) {
    // A resumed run keeps its own tokenizer: the models were trained on it.
    return await openTokenizer(config, folder);
  }
  // A plain-text train split is cut into other documents than WikiText's:
  // the same bytes train another BPE.
  const cached = `.cache/tokenizers/bpe-${config.vocabSize}-${
    train.sha256.slice(0, 16)
  }${layoutSuffix(train.source.layout)}.json`;
  // What the cache file must record: the key its name stands for.
  const key: CacheKey = {
    command: "experiment",
    vocabSize: config.vocabSize,
    trainSha256: train.sha256,
    layout: train.source.layout,
  };
  const tok = await cachedBpe(cached, key, log);
  if (tok !== undefined) {
    log(`tokenizer: BPE ${tok.vocabSize} from ${cached}`);
    noteShrunk(tok, config, log);
    return tok;
  }
  log(`tokenizer: training BPE to ${config.vocabSize} ids on the train split`);
  const start = performance.now();
  const texts: string[] = [];
  for await (const t of readArticles(train.source)) texts.push(t);
  const trained = trainBpe(texts, { vocabSize: config.vocabSize });
  await saveBpeTokenizer(trained, cached, { meta: { ...key } });
  log(
    `tokenizer: trained in ${
      ((performance.now() - start) / 1000).toFixed(1)
    } s`,
  );
  noteShrunk(trained, config, log);
  return trained;
}

/** The training record a cached BPE carries in its `meta`. */
interface CacheKey {
  /** Who wrote it: always `"experiment"`. */
  command: "experiment";
  /** The --vocab-size it was trained for. */
  vocabSize: number;
  /** SHA-256 of the train split it was trained on. */
  trainSha256: string;
  /** How that split was read (`wikitext` or `text`). */
  layout: string;
}

/** The most bytes of a cached BPE read for its `meta` (a 2^20-id BPE is ~40 MB). */
const MAX_CACHED = 256 << 20;

/**
 * The cached BPE at `path` when it is the one `key` describes; undefined
 * (with a warning) when it is unreadable or another tokenizer (one that
 * `tokenizer:train --out` or a hand copied there, or a cache written before
 * files carried their key), so the caller trains it again.
 */
async function cachedBpe(
  path: string,
  key: CacheKey,
  log: (s: string) => void,
): Promise<BpeTokenizer | undefined> {
  if (!await pathExists(path)) return undefined;
  let tok: BpeTokenizer;
  let meta: unknown;
  try {
    tok = await loadBpeTokenizer(path);
    meta = (await readJsonBounded(path, { limit: MAX_CACHED }) as {
      meta?: unknown;
    }).meta;
  } catch (e) {
    log(
      `warning: the cached tokenizer ${path} is unreadable (${
        (e as Error).message
      }); training it again`,
    );
    return undefined;
  }
  const m = (meta ?? {}) as Record<string, unknown>;
  const differs = (Object.keys(key) as (keyof CacheKey)[])
    .filter((k) => m[k] !== key[k]);
  if (differs.length > 0) {
    const got = meta === undefined
      ? "it has no training record"
      : `it records ${
        differs.map((k) => `${k} ${k in m ? JSON.stringify(m[k]) : "none"}`)
          .join(", ")
      }`;
    log(
      `warning: the cached tokenizer ${path} is not the one its name stands for (${got}; expected ${
        differs.map((k) => `${k} ${JSON.stringify(key[k])}`).join(", ")
      }); training it again`,
    );
    return undefined;
  }
  // Smaller than asked: the corpus ran out of pairs when it was trained.
  return tok.vocabSize <= key.vocabSize ? tok : undefined;
}

function unigramEntropy(ids: Uint32Array, vocab: number): number {
  const counts = new Float64Array(vocab);
  for (const x of ids) counts[x]++;
  let h = 0;
  for (const c of counts) {
    if (c > 0) h -= (c / ids.length) * Math.log(c / ids.length);
  }
  return h;
}
