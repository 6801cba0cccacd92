import { assertEquals, assertThrows } from "@std/assert";
import { randomFloats } from "@d3pm/core";
import { fuzzString } from "./_fuzz.ts";
import { BpeTokenizer, byteLevelVocabulary } from "./bpe.ts";
import { trainBpe } from "./train.ts";

const corpus = (seed: number, length: number): string => {
  const rand = randomFloats(seed);
  let s = "";
  while (s.length < length) s += fuzzString(rand, 200, false) + "\n";
  return s;
};

Deno.test("BpeTokenizer gives the same ids with and without its piece cache, for short and very long pieces", () => {
  const trained = trainBpe(
    corpus(1, 20_000) + "ab".repeat(500) + " ".repeat(300),
    {
      vocabSize: 600,
    },
  );
  const uncached = new BpeTokenizer(trained.vocabulary, {
    id: "x",
    cacheSize: 0,
  });
  const tiny = new BpeTokenizer(trained.vocabulary, { id: "x", cacheSize: 3 });
  const rand = randomFloats(2);
  for (let k = 0; k < 300; k++) {
    const s = fuzzString(rand, 300, false) + "ab".repeat(k) + " ".repeat(k) +
      "x";
    const ids = [...trained.encode(s)];
    assertEquals([...uncached.encode(s)], ids);
    assertEquals([...tiny.encode(s)], ids);
    assertEquals([...trained.encode(s)], ids); // now from the cache
    assertEquals(trained.decode(ids), s);
  }
});

Deno.test("BpeTokenizer merges the lowest-ranked pair first, leftmost among equals", () => {
  // 256: "bc", 257: "ab"; "abc" → "a" + "bc" because "bc" ranks first.
  const tok = new BpeTokenizer(byteLevelVocabulary([[98, 99], [97, 98]]), {
    id: "t",
  });
  assertEquals([...tok.encode("abc")], [97, 256]);
  // "aaa" with "aa" → "aa" + "a", leftmost first.
  const aa = new BpeTokenizer(byteLevelVocabulary([[97, 97]]), { id: "t" });
  assertEquals([...aa.encode("aaaaa")], [256, 256, 97]);
  assertEquals([...aa.encode("a".repeat(101))], [...Array(50).fill(256), 97]);
});

Deno.test("BpeTokenizer encodes lone surrogates as U+FFFD like TextEncoder", () => {
  const tok = new BpeTokenizer(byteLevelVocabulary([]), { id: "bytes" });
  assertEquals([...tok.encode("\ud800x\udc00")], [
    0xef,
    0xbf,
    0xbd,
    0x78,
    0xef,
    0xbf,
    0xbd,
  ]);
  assertEquals([...tok.encode("😀")], [...new TextEncoder().encode("😀")]);
});

Deno.test("BpeTokenizer rejects inconsistent vocabularies with one-line errors", () => {
  const bytes = byteLevelVocabulary([]).tokens;
  assertThrows(
    () => new BpeTokenizer({ tokens: bytes.slice(1), merges: [] }, { id: "t" }),
    RangeError,
    "no token spells the single byte 0",
  );
  assertThrows(
    () =>
      new BpeTokenizer({
        tokens: [...bytes, Uint8Array.of(1, 2)],
        merges: [[1, 3, 256]],
      }, { id: "t" }),
    RangeError,
    "merge 0 makes token 256, whose bytes are not those of 1 and 3 joined",
  );
  assertThrows(
    () =>
      new BpeTokenizer({ tokens: bytes, merges: [[1, 300, 2]] }, { id: "t" }),
    RangeError,
    "merge 0 uses id 300, expected an integer in [0, 256)",
  );
  assertThrows(
    () =>
      new BpeTokenizer({ tokens: [...bytes, new Uint8Array()], merges: [] }, {
        id: "t",
      }),
    RangeError,
    "token 256 is empty",
  );
  assertThrows(
    () =>
      new BpeTokenizer({ tokens: bytes, merges: [] }, {
        id: "t",
        cacheSize: -1,
      }),
    RangeError,
    "cacheSize must be an integer ≥ 0, got -1",
  );
  assertThrows(
    () => byteLevelVocabulary([[97, 256]]),
    RangeError,
    "merge 0 uses id 256",
  );
});

Deno.test("token() returns the bytes of a base id and rejects special ids", () => {
  const tok = new BpeTokenizer(byteLevelVocabulary([[104, 105]]), { id: "t" });
  assertEquals([...tok.token(256)], [104, 105]);
  assertThrows(() => tok.token(tok.special.bos), RangeError, "not a base id");
});

Deno.test("BpeTokenizer.encode() refuses a value that is not a string instead of returning no ids or a TypeError inside", () => {
  const tok = new BpeTokenizer(byteLevelVocabulary([]), { id: "t" });
  // 5 gave [] (no .length to walk), null failed reading "length" of null.
  for (
    const [text, got] of [[5, "number"], [null, "null"], [["a"], "object"]]
  ) {
    assertThrows(
      () => tok.encode(text as unknown as string),
      TypeError,
      `Cannot encode: text must be a string, got ${got}`,
    );
  }
});
