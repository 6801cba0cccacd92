import { assertEquals } from "@std/assert";
import type { TokenizedCorpus } from "@d3pm/data";
import { prepareData, type RunData } from "../data.ts";
import { resolveConfig } from "../config.ts";
import type { ExperimentConfig } from "../options.ts";
import { RunFolder } from "../run_folder.ts";
import { readTrainPrefixes } from "./_train_prefixes.ts";

Deno.test("readTrainPrefixes() reads the train split once, and takes its bound and every prefix from that read", async () => {
  const config = resolveConfig({
    preset: "micro",
    evalBlocks: 4,
    blockLength: 4,
  });
  const data = await prepareData(config, new RunFolder("runs/none"), () => {});
  // A split of its own (two articles: 5 and 7 ids), so a prefix or a bound
  // taken from another read of the real split shows.
  const corpus: TokenizedCorpus = {
    ids: Uint32Array.from({ length: 12 }, (_, i) => 10 + i),
    docOffsets: Uint32Array.of(0, 5, 12),
  };
  const reads: string[] = [];
  const read = (c: ExperimentConfig, d: RunData) => {
    assertEquals([c, d], [config, data]);
    reads.push("read");
    return Promise.resolve(corpus);
  };
  const split = await readTrainPrefixes(config, data, read);
  assertEquals(split.most, 12 + 2 * 2); // with each article's BOS and EOS
  const { bos, eos } = data.specials;
  const eight = await split.prefix(8);
  assertEquals(eight.articles, 2);
  assertEquals([...eight.blocks.data], [bos, 10, 11, 12, 13, 14, eos, bos]);
  const whole = await split.prefix(16);
  assertEquals(whole.blocks.count, 4);
  assertEquals(reads, ["read"]);
});
