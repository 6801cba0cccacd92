import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { randomFloats } from "@d3pm/core";
import { fuzzString } from "./_fuzz.ts";
import {
  BpeFileError,
  bpeFromJson,
  bpeId,
  bpeToJson,
  byteLevelBpe,
  loadBpeTokenizer,
  saveBpeTokenizer,
} from "./bpe_file.ts";
import { loadGpt2Tokenizer } from "./gpt2.ts";
import { trainBpe } from "./train.ts";

const text = fuzzString(randomFloats(3), 20_000, false) +
  " the cat sat on the mat".repeat(50);
const trained = trainBpe(text, { vocabSize: 700 });

Deno.test("bpeId() is the SHA-256 of the merges' JSON, so any change to the merges changes the id", () => {
  // Pinned with coreutils: printf '%s' '[[104,105],[256,33]]' | sha256sum.
  assertEquals(bpeId([[104, 105], [256, 33]]), "bpe-v1:bbb88c4ea794a492");
  assertEquals(bpeId([]), "bpe-v1:4f53cda18c2baa0c"); // printf '%s' '[]'
  // Caches of tokenized corpora are keyed by the id: a reordered, swapped,
  // shortened or edited merge list is another tokenizer.
  const base: [number, number][] = [[104, 105], [256, 33], [32, 116]];
  const variants: [number, number][][] = [
    base,
    [base[1], base[0], base[2]],
    [[105, 104], base[1], base[2]],
    base.slice(1),
    base.slice(0, -1),
    [base[0], base[1], [32, 117]],
  ];
  const ids = variants.map(bpeId);
  assertEquals(new Set(ids).size, variants.length, ids.join(" "));
  assertEquals(
    trained.id,
    bpeId(
      trained.vocabulary.merges.map(([a, b]) => [a, b] as [number, number]),
    ),
  );
});

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
      BpeFileError,
      `${path} is not valid JSON`,
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("loadBpeTokenizer() throws a one-line BpeFileError naming a truncated, corrupt or invalid file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/bpe.json`;
    await saveBpeTokenizer(trained, path);
    const full = await Deno.readFile(path);
    const gz = `${dir}/bpe.json.gz`;
    await Deno.writeFile(gz, full.subarray(0, 40)); // not gzip at all
    const cases: [Uint8Array | string, string, string][] = [
      [full.subarray(0, full.length >> 1), path, "is not valid JSON"],
      ["", path, "is not valid JSON"],
      ['{"format": "d3pm-bpe", "version": 7}', path, "has version 7"],
      [full.subarray(0, 40), gz, "is not valid gzip"],
    ];
    for (const [content, file, fragment] of cases) {
      if (typeof content === "string") await Deno.writeTextFile(file, content);
      else await Deno.writeFile(file, content);
      const e = await assertRejects(() => loadBpeTokenizer(file), BpeFileError);
      assertEquals(e.path, file);
      assertEquals(e.message.startsWith(`Cannot load BPE: ${file} `), true);
      assertEquals(e.message.includes(fragment), true, e.message);
      assertEquals(e.message.includes("\n"), false, e.message);
    }
    // A missing file is not corrupt: the caller may want to tell them apart.
    const missing = await assertRejects(() =>
      loadBpeTokenizer(`${dir}/none.json`)
    );
    assertEquals(missing instanceof BpeFileError, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveBpeTokenizer() refuses a directory as the path and writes nothing", async () => {
  const parent = await Deno.makeTempDir();
  try {
    const dir = `${parent}/out`;
    await Deno.mkdir(dir);
    for (const target of [dir, `${dir}/`]) {
      const e = await assertRejects(
        () => saveBpeTokenizer(trained, target),
        RangeError,
        `${dir} is a directory; expected the path of a JSON file, such as ${dir}/bpe.json`,
      );
      assertEquals(e.message.includes("\n"), false);
    }
    const left = await Array.fromAsync(Deno.readDir(parent), (e) => e.name);
    assertEquals(left, ["out"]);
    assertEquals((await Array.fromAsync(Deno.readDir(dir))).length, 0);
  } finally {
    await Deno.remove(parent, { recursive: true });
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

Deno.test("saveBpeTokenizer() writes a path with a space, non-ASCII, % or # under that very name, and loadBpeTokenizer() reads it back", async () => {
  const root = await Deno.makeTempDir();
  try {
    const tok = byteLevelBpe([[104, 105]]);
    const names = ["sp ace/c.json", "é.json", "p%41q.json", "h#x.json"];
    for (const name of names) {
      await saveBpeTokenizer(tok, `${root}/${name}`);
      assertEquals((await loadBpeTokenizer(`${root}/${name}`)).id, tok.id);
    }
    assertEquals(
      [...Deno.readDirSync(root)].map((e) => e.name).sort(),
      ["sp ace", "é.json", "p%41q.json", "h#x.json"].sort(),
    );
    assertEquals([...Deno.readDirSync(`${root}/sp ace`)].length, 1);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
