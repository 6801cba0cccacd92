import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { encode as referenceEncode } from "gpt-tokenizer/encoding/r50k_base";
import { randomFloats } from "@d3pm/core";
import { fuzzString } from "./_fuzz.ts";
import { readText } from "./_read.ts";
import { loadGpt2Tokenizer, parseGpt2Vocabulary } from "./gpt2.ts";

const gpt2 = await loadGpt2Tokenizer();
const reference = (text: string): number[] =>
  referenceEncode(text, { disallowedSpecial: new Set() });

const ENCODER = '{"a": 0, "b": 1, "ab": 2}';
const bytes256 = (): Record<string, number> => {
  // A minimal valid encoder: the 256 byte characters in GPT-2's alphabet.
  const enc: Record<string, number> = {};
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) ||
      (b >= 174 && b <= 255);
    enc[String.fromCodePoint(printable ? b : next++)] = b;
  }
  return enc;
};

Deno.test("loadGpt2Tokenizer() gives gpt-tokenizer's ids on the whole WikiText-2 raw test split", async () => {
  const text = await readText(
    new URL("../data/corpus/wikitext-2-raw/wiki.test.raw.gz", import.meta.url),
  );
  const ids = gpt2.encode(text);
  assertEquals(ids.length, 286_221);
  assertEquals([...ids], reference(text));
  assertEquals(gpt2.decode(ids), text);
});

Deno.test("loadGpt2Tokenizer() gives gpt-tokenizer's ids on seeded random Unicode, lone surrogates included", () => {
  const rand = randomFloats(2024);
  for (let k = 0; k < 1500; k++) {
    const s = fuzzString(rand, 1 + Math.floor(rand() * 300));
    assertEquals([...gpt2.encode(s)], reference(s), JSON.stringify(s));
  }
});

Deno.test("loadGpt2Tokenizer() round-trips every well-formed string", () => {
  const rand = randomFloats(99);
  for (let k = 0; k < 1000; k++) {
    const s = fuzzString(rand, 1 + Math.floor(rand() * 300), false);
    assertEquals(gpt2.decode(gpt2.encode(s)), s, JSON.stringify(s));
  }
  assertEquals(gpt2.decode(gpt2.encode("")), "");
});

Deno.test("loadGpt2Tokenizer() matches gpt-tokenizer on pieces far longer than a word", () => {
  for (
    const s of [
      " ".repeat(20_000) + "x",
      "\n".repeat(5_000),
      "=-".repeat(4_000),
      "a".repeat(3_000) + "b".repeat(3_000),
      "😀".repeat(2_000),
      "\u0301".repeat(1_000),
    ]
  ) {
    assertEquals(
      [...gpt2.encode(s)],
      reference(s),
      `${s.slice(0, 4)}… (${s.length})`,
    );
  }
});

Deno.test("loadGpt2Tokenizer() encodes special-token spellings as text unless allowSpecial is set", () => {
  const text = "a<|endoftext|>b<|eos|>";
  assertEquals([...gpt2.encode(text)], reference(text));
  const { eos } = gpt2.special;
  assertEquals(
    [...gpt2.encode(text, { allowSpecial: true })],
    [...gpt2.encode("a"), 50256, ...gpt2.encode("b"), eos],
  );
  assertEquals(gpt2.decode(gpt2.encode(text, { allowSpecial: true })), text);
});

Deno.test("loadGpt2Tokenizer() places bos, eos, pad and mask after the 50,257 GPT-2 ids", () => {
  assertEquals(gpt2.baseSize, 50_257);
  assertEquals(gpt2.vocabSize, 50_261);
  assertEquals(gpt2.special, {
    bos: 50_257,
    eos: 50_258,
    pad: 50_259,
    mask: 50_260,
  });
  assertEquals(gpt2.id, "gpt2-r50k");
  assertEquals(gpt2.decode([50_257, 15496, 50_260]), "<|bos|>Hello<|mask|>");
});

Deno.test("decode() names an id outside the vocabulary and its position", () => {
  assertThrows(
    () => gpt2.decode([1, 50_261]),
    RangeError,
    "id 50261 at position 1",
  );
  assertThrows(() => gpt2.decode([-1]), RangeError, "[0, 50261)");
  assertThrows(() => gpt2.decode([1.5]), RangeError, "id 1.5");
});

Deno.test("encodeStream() gives the ids of encode() however the text is chunked", async () => {
  const rand = randomFloats(5);
  for (let k = 0; k < 200; k++) {
    const s = fuzzString(rand, 1 + Math.floor(rand() * 400)) +
      (k % 3 === 0 ? "<|endoftext|><|pad|>" : "");
    const chunks: string[] = [];
    for (let i = 0; i < s.length;) {
      const n = Math.floor(rand() * 12);
      chunks.push(s.slice(i, i + n));
      i += n;
    }
    for (const allowSpecial of [false, true]) {
      const ids: number[] = [];
      for await (const batch of gpt2.encodeStream(chunks, { allowSpecial })) {
        ids.push(...batch);
      }
      assertEquals(
        ids,
        [...gpt2.encode(s, { allowSpecial })],
        JSON.stringify(chunks),
      );
    }
  }
});

Deno.test("parseGpt2Vocabulary() rejects malformed encoder.json with a one-line error naming the file", () => {
  const files = (encoderJson: string, vocabBpe = "#version: 0.2\n") => ({
    encoderJson,
    vocabBpe,
  });
  const names = { encoderName: "enc.json", mergesName: "m.bpe" };
  const cases: [string, string][] = [
    ["{", "enc.json is not valid JSON"],
    ["[]", "enc.json must be a JSON object"],
    ['{"a": "x"}', 'enc.json gives token "a" the id "x"'],
    ['{"a": 0, "b": 0}', "enc.json gives id 0 to two tokens"],
    [
      '{"a": 0, "b": 2}',
      'enc.json gives token "b" the id 2, expected an integer in [0, 2)',
    ],
    ['{"a": 0, " ": 1}', 'enc.json token " " has the character " "'],
  ];
  for (const [json, message] of cases) {
    const e = assertThrows(() => parseGpt2Vocabulary(files(json), names));
    assertEquals(
      (e as Error).message.includes(message),
      true,
      (e as Error).message,
    );
    assertEquals((e as Error).message.includes("\n"), false);
  }
  // A valid encoder that lacks byte tokens fails when the tokenizer is built.
  assertEquals(
    parseGpt2Vocabulary(files(ENCODER, "#version: 0.2\na b\n")).merges,
    [[0, 1, 2]],
  );
});

Deno.test("parseGpt2Vocabulary() rejects malformed vocab.bpe with the line number", () => {
  const encoderJson = JSON.stringify({ ...bytes256(), "ab": 256 });
  const names = { encoderName: "enc.json", mergesName: "m.bpe" };
  assertThrows(
    () =>
      parseGpt2Vocabulary(
        { encoderJson, vocabBpe: "#version: 0.2\na b c\n" },
        names,
      ),
    SyntaxError,
    'm.bpe line 2 is "a b c", expected two tokens separated by one space',
  );
  assertThrows(
    () =>
      parseGpt2Vocabulary({
        encoderJson,
        vocabBpe: "#version: 0.2\na b\nb c\n",
      }, names),
    RangeError,
    'm.bpe line 3 needs the token "bc", which enc.json lacks',
  );
});

Deno.test("loadGpt2Tokenizer() names a missing or corrupt file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertRejects(
      () => loadGpt2Tokenizer({ encoder: `${dir}/nope.json` }),
      Error,
      `${dir}/nope.json`,
    );
    await Deno.writeTextFile(`${dir}/bad.json.gz`, "not gzip");
    await assertRejects(
      () => loadGpt2Tokenizer({ encoder: `${dir}/bad.json.gz` }),
      Error,
      `${dir}/bad.json.gz: not valid gzip`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
