// prepareData()'s splits and blocks against an independent packing of the
// embedded WikiText-2 read here (byte tokenizer: the ids are the UTF-8
// bytes; each article wrapped in bos … eos, cut into blocks, a partial last
// block dropped), and its bytes per token against the UTF-8 byte count.

import { assertEquals } from "@std/assert";
import { embeddedWikiText2, readArticles, type Split } from "@d3pm/data";
import { resolveConfig } from "./config.ts";
import { prepareData } from "./data.ts";
import { RunFolder } from "./run_folder.ts";

/** The split's ids with separators, cut into blocks of `length`. */
async function blocksOf(
  split: Split,
  length: number,
  bos: number,
  eos: number,
) {
  const docs: Uint8Array[] = [];
  for await (const text of readArticles(embeddedWikiText2(split))) {
    docs.push(new TextEncoder().encode(text));
  }
  const bytes = docs.reduce((a, d) => a + d.length, 0);
  const stream = new Uint32Array(bytes + 2 * docs.length);
  let at = 0;
  for (const d of docs) {
    stream[at++] = bos;
    stream.set(d, at);
    at += d.length;
    stream[at++] = eos;
  }
  const count = Math.floor(stream.length / length);
  return { stream: stream.subarray(0, count * length), count, bytes };
}

Deno.test("prepareData(): train, valid and test blocks are their own splits' articles packed with bos/eos, the first --eval-blocks/--valid-blocks kept", async () => {
  const out = await Deno.makeTempDir();
  try {
    const config = resolveConfig({
      preset: "micro",
      out,
      tokenizer: "byte",
      evalBlocks: 5,
      validBlocks: 3,
    });
    const data = await prepareData(config, new RunFolder(out), () => {});
    const { bos, eos } = data.specials;
    const L = config.blockLength;
    assertEquals([bos, eos], [256, 257]);
    for (
      const [split, got, keep] of [
        ["train", data.train, 0],
        ["valid", data.valid, 3],
        ["test", data.test, 5],
      ] as const
    ) {
      const want = await blocksOf(split, L, bos, eos);
      const n = keep > 0 ? Math.min(keep, want.count) : want.count;
      assertEquals([got.count, got.length], [n, L], split);
      assertEquals(got.data, want.stream.slice(0, n * L), split);
    }
    const test = await blocksOf("test", L, bos, eos);
    // Byte tokens: one UTF-8 byte each, separators not counted.
    assertEquals(data.facts.bytesPerToken, 1);
    assertEquals(data.facts.testTokens, test.bytes);
    assertEquals(data.facts.validBlocks, 3);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
