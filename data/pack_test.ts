import { prng } from "@d3pm/core";
import { assertEquals, assertThrows } from "@std/assert";
import { packBlocks, type PackOptions } from "./pack.ts";
import type { TokenizedCorpus } from "./tokenized.ts";
import { DataError } from "./errors.ts";

function corpusOf(docs: number[][]): TokenizedCorpus {
  const offsets = [0];
  for (const d of docs) offsets.push(offsets.at(-1)! + d.length);
  return {
    ids: Uint32Array.from(docs.flat()),
    docOffsets: Uint32Array.from(offsets),
  };
}

/** The obvious, slow definition of packing, to test against. */
function reference(docs: number[][], o: PackOptions): number[][] {
  const wrap = (d: number[]) => [
    ...(o.bos === undefined ? [] : [o.bos]),
    ...d,
    ...(o.eos === undefined ? [] : [o.eos]),
  ];
  const cut = (stream: number[]) => {
    const out: number[][] = [];
    for (let i = 0; i < stream.length; i += o.length) {
      const block = stream.slice(i, i + o.length);
      if (block.length < o.length) {
        if (o.last !== "pad") continue;
        while (block.length < o.length) block.push(o.pad!);
      }
      out.push(block);
    }
    return out;
  };
  return (o.crossDocuments ?? true)
    ? cut(docs.flatMap(wrap))
    : docs.flatMap((d) => cut(wrap(d)));
}

Deno.test("packBlocks() matches the reference definition on random corpora and options", () => {
  const rng = prng(3);
  for (let trial = 0; trial < 300; trial++) {
    const docs = Array.from(
      { length: 1 + rng.nextInt(6) },
      () => Array.from({ length: rng.nextInt(12) }, () => rng.nextInt(50)),
    );
    const o: PackOptions = {
      length: 2 + rng.nextInt(7),
      bos: rng.next() < 0.7 ? 100 : undefined,
      eos: rng.next() < 0.7 ? 101 : undefined,
      crossDocuments: rng.next() < 0.5,
      last: rng.next() < 0.5 ? "pad" : "drop",
      pad: 102,
    };
    const want = reference(docs, o);
    if (want.length === 0) {
      assertThrows(() => packBlocks(corpusOf(docs), o), DataError);
      continue;
    }
    const got = packBlocks(corpusOf(docs), o);
    assertEquals(got.count, want.length);
    assertEquals(got.length, o.length);
    assertEquals(
      Array.from(got.data),
      want.flat(),
      JSON.stringify({ docs, o }),
    );
  }
});

Deno.test("packBlocks() starts every block at a document when crossDocuments is false", () => {
  const blocks = packBlocks(corpusOf([[1, 2, 3, 4, 5], [6], [7, 8]]), {
    length: 4,
    bos: 9,
    eos: 10,
    crossDocuments: false,
    last: "pad",
    pad: 0,
  });
  assertEquals(Array.from(blocks.data), [
    ...[9, 1, 2, 3],
    ...[4, 5, 10, 0],
    ...[9, 6, 10, 0],
    ...[9, 7, 8, 10],
  ]);
});

Deno.test("packBlocks() rejects impossible options with one-line errors", () => {
  const c = corpusOf([[1, 2, 3]]);
  assertThrows(
    () => packBlocks(c, { length: 1 }),
    DataError,
    "length must be an integer ≥ 2, got 1",
  );
  assertThrows(() => packBlocks(c, { length: 2.5 }), DataError, "got 2.5");
  assertThrows(
    () => packBlocks(c, { length: 4 }),
    DataError,
    "block length 4 is larger than the corpus (3 ids",
  );
  assertThrows(
    () => packBlocks(c, { length: 4, last: "pad" }),
    DataError,
    "needs a pad id",
  );
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => packBlocks(c, { length: 2, last: "keep" as any }),
    DataError,
    'last must be "drop" or "pad"',
  );
});
