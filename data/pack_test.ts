import { prng } from "@d3pm/core";
import { assert, assertEquals, assertThrows } from "@std/assert";
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

Deno.test("packBlocks() refuses malformed docOffsets, ids that are not ids and a block longer than the corpus before allocating", () => {
  const ids = Uint32Array.of(5, 6, 7, 8);
  const pack = (docOffsets: number[], options: Partial<PackOptions> = {}) =>
    packBlocks(
      { ids, docOffsets: Uint32Array.from(docOffsets) },
      { length: 2, ...options },
    );
  // Decreasing offsets packed 5 blocks out of 4 ids; offsets past the ids
  // packed 16; no offsets reported a corpus of -2 ids.
  for (const offsets of [[0, 3, 1, 4], [0, 30], [], [1, 4], [0, 3]]) {
    assertThrows(
      () => pack(offsets),
      DataError,
      `Cannot pack blocks: docOffsets must rise from 0 to ids.length 4 without decreasing, got [${offsets}]`,
    );
  }
  // bos -1 was written as 4294967295.
  for (const [name, id] of [["bos", -1], ["eos", 1.5], ["pad", NaN]] as const) {
    assertThrows(
      () =>
        pack([0, 4], { [name]: id, last: "pad", pad: name === "pad" ? id : 0 }),
      DataError,
      `Cannot pack blocks: ${name} must be an id (an integer in [0, 2^32)), got ${id}`,
    );
  }
  // length 1e12 asked for a 4 TB buffer before finding no block fits.
  assertThrows(
    () => pack([0, 4], { length: 1e12 }),
    DataError,
    "Cannot pack blocks: block length 1000000000000 is larger than the corpus (4 ids with separators)",
  );
  assertEquals(pack([0, 1, 4], { bos: 1 }).count, 3);
});

Deno.test('packBlocks() counts its blocks before allocating and refuses more than 2^31 - 1 ids by name (last: "pad" with length 1e12 failed on V8\'s allocation)', () => {
  const ids = Uint32Array.of(5, 6, 7, 8);
  const pad = { last: "pad", pad: 0 } as const;
  for (
    const [docOffsets, options, blocks, held] of [
      [[0, 4], { length: 1e12 }, "1 block of length 1000000000000", 1e12],
      [[0, 4], { length: 2 ** 31 }, "1 block of length 2147483648", 2 ** 31],
      // Two blocks of 2^30 each: the ids over the bound, not the length.
      [
        [0, 2, 4],
        { length: 2 ** 30, crossDocuments: false },
        "2 blocks of length 1073741824",
        2 ** 31,
      ],
    ] as const
  ) {
    assertThrows(
      () =>
        packBlocks({ ids, docOffsets: Uint32Array.from(docOffsets) }, {
          ...pad,
          ...options,
        }),
      DataError,
      `Cannot pack blocks: ${blocks} (last: "pad") ${
        blocks.startsWith("1 ") ? "holds" : "hold"
      } ${held} ids, over the 2147483647 (2^31 - 1) a pack may hold; use a shorter length`,
    );
  }
  // Without crossDocuments the old bound, (documents + blocks) × length ids,
  // asked for 40 GB here (100,000 one-id documents, length 100,000) before
  // finding that no document fills a block.
  const n = 100_000;
  assertThrows(
    () =>
      packBlocks({
        ids: new Uint32Array(n),
        docOffsets: Uint32Array.from({ length: n + 1 }, (_, i) => i),
      }, { length: n, crossDocuments: false }),
    DataError,
    "block length 100000 is larger than the corpus (100000 ids with separators, longest document shorter)",
  );
  // The output is the counted buffer itself, not a trimmed copy.
  const out = packBlocks({ ids, docOffsets: Uint32Array.of(0, 3, 4) }, {
    length: 3,
    crossDocuments: false,
    ...pad,
  });
  assertEquals([...out.data], [5, 6, 7, 8, 0, 0]);
  assertEquals(out.data.buffer.byteLength, 6 * 4);
});

Deno.test("packBlocks() takes 2^32 - 1 as a separator or pad id, refuses 2^32, and counts separators in the too-long message", () => {
  const c = corpusOf([[1, 2, 3], [4]]);
  const top = 2 ** 32 - 1;
  // bos 2^31 and 2^32 - 1 are ids (an integer in [0, 2^32)); 2^32 is not.
  const big = packBlocks(c, { length: 2, bos: 2 ** 31, eos: top });
  assertEquals(Array.from(big.data), [2 ** 31, 1, 2, 3, top, 2 ** 31, 4, top]);
  assertEquals(
    Array.from(packBlocks(c, { length: 3, last: "pad", pad: top }).data),
    [1, 2, 3, 4, top, top],
  );
  assertThrows(
    () => packBlocks(c, { length: 2, eos: 2 ** 32 }),
    DataError,
    "eos must be an id (an integer in [0, 2^32)), got 4294967296",
  );
  // No documents (offsets [0]) is well-formed: too short, not malformed.
  assertThrows(
    () =>
      packBlocks({ ids: new Uint32Array(0), docOffsets: Uint32Array.of(0) }, {
        length: 2,
      }),
    DataError,
    "block length 2 is larger than the corpus (0 ids with separators)",
  );
  // 4 ids + a bos and an eos around each of the 2 documents = 8.
  assertThrows(
    () => packBlocks(c, { length: 9, bos: 0, eos: 0 }),
    DataError,
    "block length 9 is larger than the corpus (8 ids with separators)",
  );
});

Deno.test("packBlocks() with inPlace packs into the ids' own buffer when it has room for the separators, and as before when not", () => {
  // A corpus's ids and its packed blocks were held side by side (8 bytes a
  // token); packed in place they are held once. Documents of 0 to 9 ids.
  const r = prng(7);
  const docs = Array.from(
    { length: 40 },
    () => Array.from({ length: Math.floor(r.next() * 10) }, (_, i) => i + 1),
  );
  const plain = corpusOf(docs);
  const n = plain.ids.length;
  const options = { length: 8, bos: 100, eos: 101 };
  const expected = packBlocks(plain, options);
  const roomy = {
    ids: new Uint32Array(n + 2 * docs.length).subarray(0, n),
    docOffsets: plain.docOffsets,
  };
  roomy.ids.set(plain.ids);
  const packed = packBlocks(roomy, { ...options, inPlace: true });
  assertEquals(packed.data.buffer, roomy.ids.buffer);
  assertEquals(packed.count, expected.count);
  assertEquals(Array.from(packed.data), Array.from(expected.data));
  // One id short of room for every separator: a new buffer, the same blocks.
  const tight = {
    ids: new Uint32Array(n + 2 * docs.length - 1).subarray(0, n),
    docOffsets: plain.docOffsets,
  };
  tight.ids.set(plain.ids);
  const copied = packBlocks(tight, { ...options, inPlace: true });
  assert(copied.data.buffer !== tight.ids.buffer);
  assertEquals(Array.from(copied.data), Array.from(expected.data));
  assertEquals(Array.from(tight.ids), Array.from(plain.ids)); // untouched
});
