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
  // The first id and an id with one after it: its own bytes only.
  const two = new BpeTokenizer(byteLevelVocabulary([[104, 105], [256, 33]]), {
    id: "t",
  });
  assertEquals([...two.token(0)], [0]);
  assertEquals([...two.token(256)], [104, 105]);
  assertEquals([...two.token(257)], [104, 105, 33]);
  // decode() takes [0, vocabSize): the last special id, not one past it.
  assertEquals(two.decode([two.vocabSize - 1, 0]), "<|mask|>\0");
  for (const id of [two.vocabSize, -1, 1.5]) {
    assertThrows(
      () => two.decode([104, id]),
      RangeError,
      `id ${id} at position 1 is outside the vocabulary [0, 262)`,
    );
  }
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

Deno.test("BpeTokenizer decodes its four special ids by name (bos = base size, then eos, pad, mask) and a base id with a special spelling by its bytes", () => {
  // Id 0 (the byte 0) also spelled "<|zero|>": the lowest id is a valid one.
  const tok = new BpeTokenizer(byteLevelVocabulary([]), {
    id: "t",
    specialText: { "<|zero|>": 0 },
  });
  const text = "<|bos|>a<|eos|><|pad|><|mask|><|zero|>";
  assertEquals([...tok.encode(text, { allowSpecial: true })], [
    256,
    97,
    257,
    258,
    259,
    0,
  ]);
  assertEquals(
    tok.decode([256, 97, 257, 258, 259, 0]),
    text.slice(0, -8) + "\0",
  );
  assertThrows(
    () =>
      new BpeTokenizer(byteLevelVocabulary([]), {
        id: "t",
        specialText: { "<|x|>": 256 },
      }),
    RangeError,
    'special text "<|x|>" has id 256, expected an integer in [0, 256)',
  );
});

Deno.test("BpeTokenizer accepts merges of id 0, keeps the first id of a byte spelled twice, and checks every byte a merge makes", () => {
  const bytes = byteLevelVocabulary([]).tokens;
  // "\0\0" merges by id 0 with itself.
  const zero = new BpeTokenizer(byteLevelVocabulary([[0, 0]]), { id: "t" });
  assertEquals([...zero.encode("\0\0\0")], [256, 0]);
  // Id 256 spells the byte 0 again: the byte encodes as id 0, the first.
  const twice = new BpeTokenizer({
    tokens: [...bytes, Uint8Array.of(0)],
    merges: [],
  }, { id: "t" });
  assertEquals([...twice.encode("\0")], [0]);
  // Id 256 (the base size) in a merge is out of range, not a token.
  assertThrows(
    () =>
      new BpeTokenizer({ tokens: bytes, merges: [[1, 256, 2]] }, { id: "t" }),
    RangeError,
    "merge 0 uses id 256, expected an integer in [0, 256)",
  );
  // "xb" is not "a" + "b" (the first byte differs), nor "ax" (the last).
  for (const spelled of [[120, 98], [97, 120]]) {
    assertThrows(
      () =>
        new BpeTokenizer({
          tokens: [...bytes, Uint8Array.from(spelled)],
          merges: [[97, 98, 256]],
        }, { id: "t" }),
      RangeError,
      "merge 0 makes token 256, whose bytes are not those of 97 and 98 joined",
    );
  }
});

Deno.test("encodeStream() with allowSpecial gives encode()'s ids for a chunk boundary anywhere, inside a special spelling too", async () => {
  const tok = new BpeTokenizer(byteLevelVocabulary([[97, 98], [32, 256]]), {
    id: "t",
  });
  const text = "<|bos|>ab ab<|eos|> ab <|no|>  <|mask|>ab";
  const whole = [...tok.encode(text, { allowSpecial: true })];
  assertEquals(whole.filter((id) => id >= 256 + 2), [258, 259, 261]);
  for (let i = 0; i <= text.length; i++) {
    for (let j = i; j <= text.length; j++) {
      const ids: number[] = [];
      const chunks = [text.slice(0, i), text.slice(i, j), text.slice(j)];
      for await (
        const batch of tok.encodeStream(chunks, { allowSpecial: true })
      ) ids.push(...batch);
      assertEquals(ids, whole, `chunks ${JSON.stringify(chunks)}`);
    }
  }
});

Deno.test("BpeTokenizer gives a merge listed twice its last rank, as GPT-2's bpe_ranks dict (and the tokenizers library's merge map) does", () => {
  // encoder.py: bpe_ranks = dict(zip(bpe_merges, range(len(bpe_merges)))),
  // so "a b" listed at ranks 0 and 2 ranks 2, after "b c" (rank 1):
  // "abc" → "a" + "bc", where the first rank would give "ab" + "c".
  const bytes = byteLevelVocabulary([]).tokens;
  const tok = new BpeTokenizer({
    tokens: [...bytes, Uint8Array.of(97, 98), Uint8Array.of(98, 99)],
    merges: [[97, 98, 256], [98, 99, 257], [97, 98, 256]],
  }, { id: "t" });
  assertEquals([...tok.encode("abc")], [97, 257]);
  assertEquals([...tok.encode("ab")], [256]);
});

Deno.test("BpeTokenizer encodes a piece longer than its output buffer whole: the bytes of 5,000 CJK characters, and of a fuzzed text streamed in two chunks split anywhere", async () => {
  const bytes = new BpeTokenizer(byteLevelVocabulary([]), { id: "bytes" });
  for (
    const text of [
      "中".repeat(400),
      "中".repeat(5000),
      "é".repeat(3000),
      "a" + "😀".repeat(2000),
    ]
  ) {
    assertEquals([...bytes.encode(text)], [...new TextEncoder().encode(text)]);
  }
  const trained = trainBpe(corpus(3, 5_000), { vocabSize: 400 });
  const rand = randomFloats(4);
  for (let k = 0; k < 4; k++) {
    const text = fuzzString(rand, 60, false);
    const whole = [...trained.encode(text)];
    for (let i = 0; i <= text.length; i++) {
      const ids: number[] = [];
      for await (
        const batch of trained.encodeStream([text.slice(0, i), text.slice(i)])
      ) ids.push(...batch);
      assertEquals(ids, whole, `split at ${i} of ${JSON.stringify(text)}`);
    }
  }
});

Deno.test("BpeTokenizer encodes the code points at each UTF-8 length boundary, and lone surrogates in any order, as TextEncoder does", () => {
  const tok = new BpeTokenizer(byteLevelVocabulary([]), { id: "bytes" });
  const points = [0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xffff];
  const astral = [0x10000, 0x10ffff];
  const texts = [
    ...[...points, ...astral].map((c) => "a" + String.fromCodePoint(c) + "b"),
    "\udc00\ud800", // low then high: two lone surrogates
    "\udc00\udc00",
    "\ud800\ud800\udc00", // a lone high, then a pair
  ];
  for (const text of texts) {
    assertEquals(
      [...tok.encode(text)],
      [...new TextEncoder().encode(text)],
      JSON.stringify(text),
    );
  }
});
