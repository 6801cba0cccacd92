import { assertEquals } from "@std/assert";
import { randomFloats } from "@d3pm/core";
import { fuzzString } from "./_fuzz.ts";
import { GPT2_PATTERN, pieceEnds } from "./_pretokenize.ts";
import { readText } from "./_read.ts";

function regexEnds(text: string): number[] {
  return [...text.matchAll(GPT2_PATTERN)].map((m) => m.index + m[0].length);
}

function scannerEnds(text: string, final = true): number[] {
  const ends = new Int32Array(text.length);
  return [...ends.subarray(0, pieceEnds(text, 0, final, ends))];
}

Deno.test("pieceEnds() cuts the WikiText-2 raw test split exactly where the GPT-2 pattern does", async () => {
  const text = await readText(
    new URL("../data/corpus/wikitext-2-raw/wiki.test.raw.gz", import.meta.url),
  );
  assertEquals(scannerEnds(text), regexEnds(text));
});

Deno.test("pieceEnds() agrees with the GPT-2 pattern on seeded random Unicode", () => {
  const rand = randomFloats(7);
  for (let k = 0; k < 2000; k++) {
    const s = fuzzString(rand, 1 + Math.floor(rand() * 200));
    assertEquals(scannerEnds(s), regexEnds(s), JSON.stringify(s));
  }
});

Deno.test("pieceEnds() agrees with the GPT-2 pattern on every short string over a tricky alphabet", () => {
  const alphabet = [
    "'",
    "s",
    "r",
    "e",
    "l",
    "t",
    " ",
    "\n",
    "1",
    ".",
    "\u0301",
    "😀",
    "\ud800",
    "\udc00",
    "\u00a0",
  ];
  let level = [""];
  const strings: string[] = [];
  for (let len = 1; len <= 4; len++) {
    level = level.flatMap((s) => alphabet.map((c) => s + c));
    strings.push(...level);
  }
  for (const s of strings) {
    assertEquals(scannerEnds(s), regexEnds(s), JSON.stringify(s));
  }
});

Deno.test("pieceEnds() on a prefix keeps only pieces the rest of the text cannot change", () => {
  const rand = randomFloats(11);
  for (let k = 0; k < 500; k++) {
    const s = fuzzString(rand, 1 + Math.floor(rand() * 120));
    const full = regexEnds(s);
    const cut = Math.floor(rand() * (s.length + 1));
    const partial = scannerEnds(s.slice(0, cut), false);
    assertEquals(
      partial,
      full.slice(0, partial.length),
      JSON.stringify([s, cut]),
    );
  }
});
