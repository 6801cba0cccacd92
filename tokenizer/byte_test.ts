import { assertEquals, assertThrows } from "@std/assert";
import { ByteTokenizer } from "./byte.ts";

Deno.test("ByteTokenizer round-trips well-formed text, emoji and CJK included", () => {
  const tok = new ByteTokenizer();
  for (
    const s of [
      "",
      " = Title = \n",
      "naïve 😀👨‍👩‍👧 漢字",
      "\u0000\t\r\n",
      "\ufeffleading BOM",
    ]
  ) {
    assertEquals(tok.decode(tok.encode(s)), s);
  }
});

Deno.test("ByteTokenizer shows special tokens by name and rejects ids outside the vocabulary", () => {
  const tok = new ByteTokenizer();
  assertEquals(
    tok.decode([tok.special.bos, 104, 105, tok.special.eos]),
    "<|bos|>hi<|eos|>",
  );
  assertThrows(() => tok.decode([260]), RangeError, "outside the vocabulary");
  assertThrows(() => tok.decode([-1]), RangeError, "position 0");
});

Deno.test("ByteTokenizer.encode() refuses a value that is not a string instead of encoding its spelling", () => {
  const tok = new ByteTokenizer();
  // 42 was encoded as "42", null as "null", undefined as nothing.
  for (
    const [text, got] of [[42, "number"], [null, "null"], [
      undefined,
      "undefined",
    ]]
  ) {
    assertThrows(
      () => tok.encode(text as unknown as string),
      TypeError,
      `Cannot encode: text must be a string, got ${got}`,
    );
  }
});

Deno.test("ByteTokenizer's special ids are 256..259 (bos, eos, pad, mask) and the byte 255 decodes as a byte (U+FFFD), not a name", () => {
  const tok = new ByteTokenizer();
  assertEquals(tok.special, { bos: 256, eos: 257, pad: 258, mask: 259 });
  assertEquals(
    tok.decode([256, 257, 258, 259]),
    "<|bos|><|eos|><|pad|><|mask|>",
  );
  // 0xff is never valid UTF-8; 0xc3 0xbf is "ÿ".
  assertEquals(tok.decode([255, 0xc3, 0xbf]), "\ufffdÿ");
});
