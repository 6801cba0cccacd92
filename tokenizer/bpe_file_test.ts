import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { randomFloats } from "@d3pm/core";
import { fuzzString } from "./_fuzz.ts";
import {
  bpeFromJson,
  bpeToJson,
  loadBpeTokenizer,
  saveBpeTokenizer,
} from "./bpe_file.ts";
import { loadGpt2Tokenizer } from "./gpt2.ts";
import { trainBpe } from "./train.ts";

const text = fuzzString(randomFloats(3), 20_000, false) +
  " the cat sat on the mat".repeat(50);
const trained = trainBpe(text, { vocabSize: 700 });

Deno.test("saveBpeTokenizer() and loadBpeTokenizer() round-trip the merges, id and ids", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sub/bpe.json`;
    await saveBpeTokenizer(trained, path, { meta: { corpus: "fuzz" } });
    const loaded = await loadBpeTokenizer(path);
    assertEquals(loaded.id, trained.id);
    assertEquals(loaded.vocabSize, trained.vocabSize);
    assertEquals(loaded.special, trained.special);
    assertEquals(loaded.vocabulary.merges, trained.vocabulary.merges);
    assertEquals([...loaded.encode(text)], [...trained.encode(text)]);
    const json = JSON.parse(await Deno.readTextFile(path));
    assertEquals(json.format, "d3pm-bpe");
    assertEquals(json.version, 1);
    assertEquals(json.meta, { corpus: "fuzz" });
    assertEquals(json.id.startsWith("bpe-v1:"), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bpeFromJson() rejects malformed files with a one-line error naming the file and field", () => {
  const good = bpeToJson(trained);
  const cases: [unknown, string][] = [
    [[], "f.json is not a JSON object"],
    [{ ...good, format: "x" }, 'f.json has format "x", expected "d3pm-bpe"'],
    [{ ...good, version: 2 }, "f.json has version 2, expected 1"],
    [{ ...good, extra: 1 }, 'f.json has the unknown field "extra"'],
    [
      { ...good, pretokenizer: "bert" },
      'f.json has pretokenizer "bert", expected "gpt2"',
    ],
    [{ ...good, merges: undefined }, "f.json has no merges array"],
    [
      { ...good, merges: [[1, 256]] },
      "f.json merge 0 is [1,256], expected [left, right] ids in [0, 256)",
    ],
    [{ ...good, merges: [[1, 2, 3]] }, "f.json merge 0 is [1,2,3]"],
    [
      { ...good, vocabSize: 5 },
      "f.json has vocabSize 5, but its 440 merges give 700",
    ],
    [
      { ...good, id: "bpe-v1:0" },
      'f.json has id "bpe-v1:0", but its merges hash to',
    ],
    [
      { ...good, special: { ...good.special, pad: 1 } },
      "f.json has special.pad 1, expected 698",
    ],
  ];
  for (const [json, message] of cases) {
    const e = assertThrows(() => bpeFromJson(json, { source: "f.json" }));
    const m = (e as Error).message;
    assertEquals(m.includes(message), true, m);
    assertEquals(m.includes("\n"), false, m);
  }
});

Deno.test("loadBpeTokenizer() names a file that is not JSON", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(path, "{ merges: ");
    await assertRejects(
      () => loadBpeTokenizer(path),
      SyntaxError,
      `${path} is not valid JSON`,
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("bpeToJson() refuses a vocabulary that is not byte-level, such as GPT-2's", async () => {
  const gpt2 = await loadGpt2Tokenizer();
  assertThrows(
    () => bpeToJson(gpt2),
    TypeError,
    "Cannot save tokenizer gpt2-r50k",
  );
});
