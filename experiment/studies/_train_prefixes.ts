/**
 * The train split as the epochs study takes it: read once, then its bound
 * on U and each U's prefix from that one read.
 *
 * @module
 */
import type { Blocks, TokenizedCorpus } from "@d3pm/data";
import {
  type RunData,
  trainCorpus,
  trainPrefix,
  trainPrefixLimit,
} from "../data.ts";
import type { ExperimentConfig } from "../options.ts";

/** The train split, read once: its bound on U and its prefixes. */
export interface TrainPrefixes {
  /** The most tokens a prefix takes: the whole split with BOS/EOS. */
  most: number;
  /**
   * The first `u` tokens by articles, packed into blocks
   * ({@linkcode trainPrefix}), from the one read.
   */
  prefix(u: number): Promise<{ blocks: Blocks; articles: number }>;
}

/**
 * Read the train split once ({@linkcode trainCorpus}, or `read`) for its
 * bound and every prefix the study asks of it.
 *
 * @param config The study's base configuration (data folder, block length).
 * @param data The study's data (its tokenizer and specials).
 * @param read How the split is read (a test counts its reads).
 * @returns The bound and the prefixes.
 *
 * @example
 * ```ts
 * import { readTrainPrefixes } from "./_train_prefixes.ts";
 * import { prepareData, resolveConfig, RunFolder } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const config = resolveConfig({ preset: "micro", evalBlocks: 4 });
 * const data = await prepareData(config, new RunFolder("runs/none"), () => {});
 * const split = await readTrainPrefixes(config, data);
 * assertEquals((await split.prefix(64)).blocks.count, 64 / config.blockLength);
 * ```
 */
export async function readTrainPrefixes(
  config: ExperimentConfig,
  data: RunData,
  read: (
    config: ExperimentConfig,
    data: RunData,
  ) => Promise<TokenizedCorpus> = trainCorpus,
): Promise<TrainPrefixes> {
  const corpus = await read(config, data);
  return {
    most: await trainPrefixLimit(config, data, { corpus }),
    prefix: (u) => trainPrefix(config, data, u, { corpus }),
  };
}
