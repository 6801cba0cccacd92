import { assert, assertEquals, assertRejects } from "@std/assert";
import { ByteTokenizer, type Tokenizer } from "@d3pm/tokenizer";
import { within } from "../core/_within_test_util.ts";
import { fromFileUrl, sha256Hex, thisProcess } from "@d3pm/core";
import { sha256OfSource, tokenizeCorpus } from "./tokenized.ts";
import { embeddedWikiText2, findWikiText } from "./wikitext.ts";
import { DataError } from "./errors.ts";
import { MAY_MOUNT, withTmpfs } from "../core/_mount_test_util.ts";

async function setup(text: string) {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/wiki.test.tokens`, text);
  const cacheDir = `${dir}/cache`;
  const source = await findWikiText(dir, "test");
  return { dir, cacheDir, source };
}

async function cacheFiles(cacheDir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(cacheDir)) {
    names.push(`${cacheDir}/${e.name}`);
  }
  return names.sort();
}

/** A byte tokenizer with another identity and shifted ids. */
class ShiftedBytes implements Tokenizer {
  readonly special = {};
  constructor(
    readonly id = "shifted-test",
    readonly vocabSize = 300,
    readonly shift = 1,
  ) {}
  encode(text: string): Uint32Array {
    return new ByteTokenizer().encode(text).map((x) => x + this.shift);
  }
  decode(): string {
    throw new Error("unused");
  }
}

Deno.test("tokenizeCorpus() writes a cache once and reloads the same ids from it", async () => {
  const { dir, cacheDir, source } = await setup(" = A = \n x \n = B = \n y \n");
  const warnings: string[] = [];
  const opts = { cacheDir, onWarning: (m: string) => warnings.push(m) };
  const first = await tokenizeCorpus(source, new ByteTokenizer(), opts);
  const [file] = await cacheFiles(cacheDir);
  const mtime = (await Deno.stat(file)).mtime;
  const second = await tokenizeCorpus(source, new ByteTokenizer(), opts);
  assertEquals(second, first);
  assertEquals((await Deno.stat(file)).mtime, mtime);
  assertEquals(warnings, []);
  assertEquals(
    new ByteTokenizer().decode(first.ids.subarray(first.docOffsets[1])),
    " = B = \n y \n",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tokenizeCorpus() keys the cache by corpus content and tokenizer identity", async () => {
  const { dir, cacheDir, source } = await setup(" = A = \n x \n");
  const a = await tokenizeCorpus(source, new ByteTokenizer(), { cacheDir });
  const b = await tokenizeCorpus(source, new ShiftedBytes(), { cacheDir });
  assertEquals(b.ids, a.ids.map((x) => x + 1));
  await Deno.writeTextFile(new URL(source.url), " = A = \n changed \n");
  const c = await tokenizeCorpus(source, new ByteTokenizer(), { cacheDir });
  assertEquals(new ByteTokenizer().decode(c.ids), " = A = \n changed \n");
  assertEquals((await cacheFiles(cacheDir)).length, 3);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tokenizeCorpus() detects corrupt and truncated caches and rebuilds them", async () => {
  const { dir, cacheDir, source } = await setup(
    " = A = \n some text \n".repeat(50),
  );
  const tok = new ByteTokenizer();
  const good = await tokenizeCorpus(source, tok, { cacheDir });
  const [file] = await cacheFiles(cacheDir);
  const original = await Deno.readFile(file);
  const damages: [string, (b: Uint8Array) => Uint8Array][] = [
    ["checksum mismatch", (b) => {
      const c = b.slice();
      c[c.length - 3] ^= 0xff;
      return c;
    }],
    ["size does not match", (b) => b.slice(0, b.length - 2)],
    ["bad magic", (b) => {
      const c = b.slice();
      c[0] = 0;
      return c;
    }],
    ["truncated", (b) => b.slice(0, 14)],
    ["header is not JSON", (b) => {
      const c = b.slice();
      c[12] = 0x7b; // "{" then garbage
      c[13] = 0x7b;
      return c;
    }],
  ];
  for (const [why, damage] of damages) {
    await Deno.writeFile(file, damage(original));
    const warnings: string[] = [];
    const again = await tokenizeCorpus(source, tok, {
      cacheDir,
      onWarning: (m) => warnings.push(m),
    });
    assertEquals(again, good);
    assertEquals(warnings.length, 1);
    assert(warnings[0].includes(why), `${why}: ${warnings[0]}`);
    assertEquals(await Deno.readFile(file), original, "rebuilt cache");
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tokenizeCorpus() stores ids wider than 16 bits", async () => {
  const { dir, cacheDir, source } = await setup(" = A = \n x \n");
  const wide = new ShiftedBytes("wide-test", 100_000, 70_000);
  const a = await tokenizeCorpus(source, wide, { cacheDir });
  const b = await tokenizeCorpus(source, wide, { cacheDir });
  assertEquals(b, a);
  assertEquals(a.ids[0], 32 + 70_000);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tokenizeCorpus() without a cache dir tokenizes the embedded valid split", async () => {
  const corpus = await tokenizeCorpus(
    embeddedWikiText2("valid"),
    new ByteTokenizer(),
  );
  // Every byte of the file but its leading blank line " \n" (before the first title).
  assertEquals(corpus.ids.length, 1121681 - 2);
  assertEquals(corpus.docOffsets.length - 1, 60); // grep -c '^ = [^=]' wiki.valid.tokens
  assertEquals(corpus.docOffsets.at(-1), corpus.ids.length);
});

Deno.test("tokenizeCorpus() names a corrupt .gz or a directory and reports invalid UTF-8 through onWarning", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cacheDir = `${dir}/cache`;
    const tok = new ByteTokenizer();
    // Invalid UTF-8: tokenized (as U+FFFD), with one warning naming the file.
    await Deno.writeFile(
      `${dir}/wiki.test.tokens`,
      new Uint8Array([0x20, 0x3d, 0x20, 0xff, 0x20, 0x3d, 0x20, 0x0a]),
    );
    const warnings: string[] = [];
    const corpus = await tokenizeCorpus(await findWikiText(dir, "test"), tok, {
      cacheDir,
      onWarning: (m) => warnings.push(m),
    });
    assertEquals(corpus.docOffsets.length, 2);
    assertEquals(warnings.length, 1);
    assert(warnings[0].includes("wiki.test.tokens is not valid UTF-8: 1 "));
    await Deno.remove(`${dir}/wiki.test.tokens`);

    // A corrupt .gz (gzip's first bytes, then text): a one-line DataError
    // naming the file; no cache written.
    await Deno.writeFile(
      `${dir}/wiki.valid.tokens.gz`,
      Uint8Array.of(0x1f, 0x8b, ...new TextEncoder().encode(" = A = \n")),
    );
    const gz = await findWikiText(dir, "valid");
    const e = await assertRejects(
      () => tokenizeCorpus(gz, tok, { cacheDir, onWarning: () => {} }),
      DataError,
    );
    assert(e.message.includes(`${fromFileUrl(gz.url)}: `), e.message);
    assertEquals((await cacheFiles(cacheDir)).length, 1);

    // A directory where the file should be, past findWikiText().
    await Deno.mkdir(`${dir}/wiki.train.tokens`);
    await assertRejects(
      () =>
        tokenizeCorpus(
          {
            url: `file://${dir}/wiki.train.tokens`,
            split: "train",
            layout: "tokens",
            gzip: false,
          },
          tok,
          { cacheDir },
        ),
      DataError,
      `${dir}/wiki.train.tokens is not a file`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// The token cache was read whole with Deno.readFile before its header was
// looked at: a FIFO in its place hung the run's data preparation, a link
// to /dev/zero never ended, and a planted or padded file of any size was
// allocated whole before "truncated or padded".
Deno.test("tokenizeCorpus() refuses a FIFO, a device or an oversized cache without reading it, and rebuilds it with a warning", async () => {
  const { dir, cacheDir, source } = await setup(
    " = A = \n some text \n".repeat(50),
  );
  const tok = new ByteTokenizer();
  const good = await tokenizeCorpus(source, tok, { cacheDir });
  const [file] = await cacheFiles(cacheDir);
  const original = await Deno.readFile(file);
  const plants: [string, string, () => Promise<void>][] = [
    ["a FIFO", "it is a FIFO", async () => {
      await new Deno.Command("mkfifo", { args: [file] }).output();
    }],
    [
      "/dev/zero",
      "it is a character device",
      () => Deno.symlink("/dev/zero", file),
    ],
    ["padded to 256 MiB", "size does not match its header", async () => {
      await Deno.writeFile(file, original);
      await (await Deno.open(file, { write: true })).truncate(256 << 20);
    }],
    ["a header of 2 GiB", "header over 1 MiB", async () => {
      const b = original.slice();
      new DataView(b.buffer).setUint32(8, 2 ** 31, true);
      await Deno.writeFile(file, b);
      await (await Deno.open(file, { write: true })).truncate(256 << 20);
    }],
  ];
  try {
    for (const [what, why, plant] of plants) {
      await Deno.remove(file);
      await plant();
      const warnings: string[] = [];
      const rss = Deno.memoryUsage().rss;
      const got = await within(
        5000,
        () =>
          tokenizeCorpus(source, tok, {
            cacheDir,
            onWarning: (m) => warnings.push(m),
          }),
        file,
      );
      if (got === "timeout") {
        throw new Error(`${what}: still reading after 5 s`);
      }
      if ("error" in got) throw got.error;
      assert(Deno.memoryUsage().rss - rss < 96 << 20, `${what}: read whole`);
      assertEquals(got.value, good, what);
      assertEquals(warnings.length, 1, `${what}: ${warnings}`);
      assert(
        warnings[0].includes(file) && warnings[0].includes(why) &&
          warnings[0].endsWith("; rebuilding it"),
        `${what}: ${warnings[0]}`,
      );
      assertEquals(await Deno.readFile(file), original, `${what}: rebuilt`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizeCorpus() keeps the same bytes read as plain text in another cache file (named for its reading) than read as WikiText, each with its own documents", async () => {
  const text = " = A = \n x \n = B = \n y \n";
  const { dir, cacheDir, source } = await setup(text);
  try {
    const tok = new ByteTokenizer();
    const wiki = await tokenizeCorpus(source, tok, { cacheDir });
    const plain = { ...source, layout: "text" as const };
    const asText = await tokenizeCorpus(plain, tok, { cacheDir });
    assertEquals(wiki.docOffsets.length, 3); // two articles
    assertEquals(Array.from(asText.docOffsets), [0, text.length]); // one text
    const files = await cacheFiles(cacheDir);
    assertEquals(files.length, 2);
    // Plain text's cache names its reading (universal newlines since
    // version 2): a cache its first reading wrote (`-text.tok`) is not read.
    assertEquals(files.filter((f) => f.endsWith("-text-v2.tok")).length, 1);
    assertEquals(files.filter((f) => f.includes("-text")).length, 1);
    // Each is read back from its own file.
    assertEquals(await tokenizeCorpus(plain, tok, { cacheDir }), asText);
    assertEquals(await tokenizeCorpus(source, tok, { cacheDir }), wiki);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sha256OfSource() refuses bytes read the other way than the source says (gzip bytes marked plain, plain marked gzip): the caches are keyed by it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const gz = new Uint8Array(
      await new Response(
        new Blob(["x\n"]).stream().pipeThrough(new CompressionStream("gzip")),
      ).arrayBuffer(),
    );
    await Deno.writeFile(`${dir}/a.gz`, gz);
    await Deno.writeTextFile(`${dir}/a.txt`, "x\n");
    const source = (name: string, gzip: boolean) =>
      ({
        url: `file://${dir}/${name}`,
        split: "test",
        layout: "text",
        gzip,
      }) as const;
    // A source made by hand, or a file swapped after findCorpus checked it.
    await assertRejects(
      () => sha256OfSource(source("a.gz", false)),
      DataError,
      "is marked plain but does start with the gzip bytes 1f 8b",
    );
    await assertRejects(
      () => sha256OfSource(source("a.txt", true)),
      DataError,
      "is marked gzip but does not start with the gzip bytes 1f 8b",
    );
    assertEquals((await sha256OfSource(source("a.txt", false))).length, 64);
    assertEquals((await sha256OfSource(source("a.gz", true))).length, 64);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizeCorpus() keeps every id and document boundary when its buffer grows past 2^20 ids (a first article of 2.5 MB grows it twice, a later one again), fresh, cached and uncached, in 2 and 4 bytes", async () => {
  // Articles whose ids are known by construction; the reference is each
  // article encoded on its own, concatenated.
  const articles = [
    " = Big = \n" + ` ${"w".repeat(98)} \n`.repeat(25_000),
    " = B = \n b \n",
    " = C = \n" + ` ${"c".repeat(48)} \n`.repeat(40_000),
    " = D = \n d \n",
  ];
  const { dir, cacheDir, source } = await setup(articles.join(""));
  try {
    // 4-byte ids (a vocabulary over 65536) go to the cache as views of each
    // document's own buffer, parts of 2^20 ids at their offset in it.
    for (
      const tokenizer of [new ByteTokenizer(), new ShiftedBytes("w", 65537)]
    ) {
      const encoded = articles.map((a) => tokenizer.encode(a));
      const want = {
        ids: Uint32Array.from(encoded.flatMap((b) => Array.from(b))),
        docOffsets: Uint32Array.from(
          [0, 1, 2, 3, 4],
          (d) => encoded.slice(0, d).reduce((a, b) => a + b.length, 0),
        ),
      };
      assert(
        want.ids.length > 4 * 2 ** 20 - 2 ** 20 && encoded[0].length > 2 ** 21,
      );
      const opts = { cacheDir, onProgress: false as const };
      const fresh = await tokenizeCorpus(source, tokenizer, opts);
      const cached = await tokenizeCorpus(source, tokenizer, opts);
      const uncached = await tokenizeCorpus(source, tokenizer, {
        onProgress: false,
      });
      for (const [how, got] of Object.entries({ fresh, cached, uncached })) {
        const what = `${how} ids of ${tokenizer.id}`;
        assertEquals(got.docOffsets, want.docOffsets, what);
        assert(got.ids.length === want.ids.length, what);
        assert(got.ids.every((x, i) => x === want.ids[i]), `${what} differ`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizeCorpus() checks the header's corpus and tokenizer, not only the file name, and stores id 65536 of a 65,537-id vocabulary in 4 bytes", async () => {
  const { dir, cacheDir, source } = await setup(" = A = \n x \n");
  try {
    // Another tokenizer's cache (or another corpus's) under this one's
    // name, as a 64-bit prefix collision or a copied file would put it.
    const shifted = new ShiftedBytes();
    const own = await tokenizeCorpus(source, shifted, { cacheDir });
    const [ownFile] = await cacheFiles(cacheDir);
    const other = `${dir}/other`;
    await tokenizeCorpus(source, new ByteTokenizer(), { cacheDir: other });
    const [otherFile] = await cacheFiles(other);
    await Deno.copyFile(otherFile, ownFile);
    const warnings: string[] = [];
    const onWarning = (m: string) => warnings.push(m);
    const again = await tokenizeCorpus(source, shifted, {
      cacheDir,
      onWarning,
    });
    assertEquals(again, own);
    assertEquals(warnings.length, 1);
    assert(warnings[0].includes("stale (corpus or tokenizer changed)"));
    // The same tokenizer, another corpus's cache under this corpus's name.
    const { dir: dir2, source: source2 } = await setup(" = B = \n y \n");
    try {
      const moved = `${dir}/moved`;
      await tokenizeCorpus(source2, shifted, { cacheDir: moved });
      const [movedFile] = await cacheFiles(moved);
      await Deno.copyFile(movedFile, ownFile);
      warnings.length = 0;
      assertEquals(
        await tokenizeCorpus(source, shifted, { cacheDir, onWarning }),
        own,
      );
      assert(warnings[0]?.includes("stale"), String(warnings));
    } finally {
      await Deno.remove(dir2, { recursive: true });
    }
    // 'x' (byte 120) becomes id 65536: past 16 bits, in a 65,537-id vocabulary.
    const edge = new ShiftedBytes("edge-test", 65537, 65536 - 120);
    const fresh = await tokenizeCorpus(source, edge, { cacheDir });
    const cached = await tokenizeCorpus(source, edge, { cacheDir });
    assert(fresh.ids.includes(65536));
    assertEquals(cached, fresh);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Rewrite a cache file: its JSON header (padded with spaces to `pad` bytes) and payload. */
async function rewriteCache(
  file: string,
  edit: (header: Record<string, unknown>, payload: Uint8Array) => void,
  pad = 0,
): Promise<void> {
  const bytes = await Deno.readFile(file);
  const length = new DataView(bytes.buffer).getUint32(8, true);
  const header = JSON.parse(
    new TextDecoder().decode(bytes.subarray(12, 12 + length)),
  );
  const payload = bytes.slice(12 + length);
  edit(header, payload);
  header.payloadSha256 = sha256Hex(payload);
  let json = JSON.stringify(header);
  json += " ".repeat(Math.max(0, pad - json.length));
  const head = new Uint8Array(12);
  head.set(new TextEncoder().encode("D3PMTOK1"));
  new DataView(head.buffer).setUint32(8, json.length, true);
  await Deno.writeFile(
    file,
    new Uint8Array([...head, ...new TextEncoder().encode(json), ...payload]),
  );
}

Deno.test("tokenizeCorpus() reads a cache header of exactly 1 MiB, refuses one byte more, refuses offsets that do not run from 0 to its ids (the last read high byte and all), and reloads 4-byte and empty caches without a warning", async () => {
  const { dir, cacheDir, source } = await setup(" = A = \n x \n");
  try {
    const warnings: string[] = [];
    const opts = { cacheDir, onWarning: (m: string) => warnings.push(m) };
    const want = await tokenizeCorpus(source, new ByteTokenizer(), opts);
    const [file] = await cacheFiles(cacheDir);
    await rewriteCache(file, () => {}, 2 ** 20);
    assertEquals(await tokenizeCorpus(source, new ByteTokenizer(), opts), want);
    assertEquals(warnings, []);
    await rewriteCache(file, () => {}, 2 ** 20 + 1);
    assertEquals(await tokenizeCorpus(source, new ByteTokenizer(), opts), want);
    assertEquals(warnings.length, 1);
    assert(warnings[0].includes("corrupt (header over 1 MiB)"), warnings[0]);
    warnings.length = 0;
    // A cache whose checksum holds but whose offsets do not run from 0
    // upward to its count of ids (a writer's bug, or made by hand) is
    // refused, naming the file; the last offset is read whole, high byte
    // included (a corpus of 2^24 ids or more, as WikiText-103's).
    const offsets = async (edit: (o: DataView) => void, says: string) => {
      await rewriteCache(
        file,
        (_, payload) => edit(new DataView(payload.buffer)),
      );
      await assertRejects(
        () => tokenizeCorpus(source, new ByteTokenizer(), opts),
        DataError,
        `Token cache ${file} is inconsistent: ${says} (the offsets must run from 0 upward to the count of ids): delete it, and the next run rebuilds it`,
      );
      await Deno.remove(file);
      assertEquals(
        await tokenizeCorpus(source, new ByteTokenizer(), opts),
        want,
      );
    };
    await offsets(
      (o) => o.setUint32(4, 2 ** 24 + 12, true), // its ids' count but for the high byte
      "its last document offset is 16777228, not its 12 ids",
    );
    await offsets(
      (o) => o.setUint32(4, 11, true),
      "its last document offset is 11, not its 12 ids",
    );
    await offsets(
      (o) => o.setUint32(0, 1, true),
      "its first document offset is 1, not 0",
    );
    assertEquals(warnings, []);
    // 4-byte ids and an empty corpus (0 documents, 0 ids) reload quietly.
    const wide = new ShiftedBytes("wide-quiet", 100_000, 70_000);
    const a = await tokenizeCorpus(source, wide, opts);
    assertEquals(await tokenizeCorpus(source, wide, opts), a);
    await Deno.writeTextFile(new URL(source.url), " \n");
    const empty = await tokenizeCorpus(source, new ByteTokenizer(), opts);
    assertEquals([empty.ids.length, Array.from(empty.docOffsets)], [0, [0]]);
    assertEquals(
      await tokenizeCorpus(source, new ByteTokenizer(), opts),
      empty,
    );
    assertEquals(warnings, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizeCorpus() refuses a cache whose document offsets go down, naming the cache and the offsets", async () => {
  const { dir, cacheDir, source } = await setup(" = A = \n x \n = B = \n y \n");
  try {
    const opts = { cacheDir, onWarning: () => {} };
    const want = await tokenizeCorpus(source, new ByteTokenizer(), opts);
    assertEquals(Array.from(want.docOffsets), [0, 12, 24]);
    const [file] = await cacheFiles(cacheDir);
    await rewriteCache(file, (_, payload) => {
      new DataView(payload.buffer).setUint32(4, 25, true);
    });
    await assertRejects(
      () => tokenizeCorpus(source, new ByteTokenizer(), opts),
      DataError,
      `Token cache ${file} is inconsistent: its document offset 2 (24) is below offset 1 (25) (the offsets`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizeCorpus() with room leaves that many spare ids per document after the ids in their buffer, fresh, cached, without a cache, in 2 and 4 bytes", async () => {
  // The room lets packBlocks wrap each document in bos/eos in place, so a
  // run holds its corpus once (4 bytes an id), not ids and blocks apart.
  const { dir, cacheDir, source } = await setup(
    " = A = \n xy \n = B = \n z \n",
  );
  try {
    for (
      const tokenizer of [new ByteTokenizer(), new ShiftedBytes("w", 65537)]
    ) {
      const bare = await tokenizeCorpus(source, tokenizer); // no room
      // Fresh (written, read back), then from the cache, then uncached.
      const docs = bare.docOffsets.length - 1;
      assertEquals(docs, 2);
      for (const cache of [cacheDir, cacheDir, undefined]) {
        const c = await tokenizeCorpus(source, tokenizer, {
          ...(cache ? { cacheDir: cache } : {}),
          room: 2,
        });
        assertEquals(Array.from(c.ids), Array.from(bare.ids));
        assertEquals(c.ids.byteOffset, 0);
        assertEquals(c.ids.buffer.byteLength, 4 * (c.ids.length + 2 * docs));
      }
      await Deno.remove(cacheDir, { recursive: true });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizeCorpus() streams a fresh corpus's ids through a temporary file into the cache, and leaves nothing behind when the tokenizer fails", async () => {
  // The ids go to a temporary file as each document is tokenized (so that
  // they are never all held twice); a failure midway removes it.
  const { dir, cacheDir, source } = await setup(" = A = \n x \n = B = \n y \n");
  try {
    let docs = 0;
    const failing = new (class extends ShiftedBytes {
      override encode(text: string): Uint32Array {
        if (++docs === 2) throw new Error("tokenizer broke on document 2");
        return super.encode(text);
      }
    })("failing");
    await assertRejects(
      () => tokenizeCorpus(source, failing, { cacheDir }),
      Error,
      "tokenizer broke on document 2",
    );
    assertEquals(await cacheFiles(cacheDir), []);
    const ok = await tokenizeCorpus(source, new ShiftedBytes(), { cacheDir });
    assertEquals((await cacheFiles(cacheDir)).length, 1); // the cache alone
    assertEquals(ok.docOffsets.length, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A host tag as the temp names write it: 8 hex of each SHA-256, name then boot. */
function hostTagOf(hostname?: string, boot?: string): string {
  const part = (id?: string) =>
    id === undefined ? "00000000" : sha256Hex(id).slice(0, 8);
  return `-h${part(hostname)}${part(boot)}`;
}

Deno.test("tokenizeCorpus() removes the temporary ids files of its cache left by a process of its pid namespace on this host that is gone (a Ctrl-C exits without the finally), and keeps a live writer's, another host's, another namespace's, namespace-untagged ones and other caches'", async () => {
  const { dir, cacheDir, source } = await setup(" = A = \n x \n = B = \n y \n");
  try {
    await tokenizeCorpus(source, new ByteTokenizer(), { cacheDir });
    const [cache] = await cacheFiles(cacheDir);
    // A pid that ran and is gone: a child that has exited.
    const child = new Deno.Command("true").spawn();
    await child.status;
    const me = thisProcess();
    // This process's pid namespace and host, as the tag writes them:
    // `-ns<inode>-h<8 hex of the host name's SHA-256><8 of the boot's>`.
    const ns = `-ns${/\[(\d+)\]/.exec(me.ns ?? "")?.[1]}`;
    const here = `${ns}${hostTagOf(me.hostname, me.host)}`;
    const temp = (tag: string, of = cache) =>
      `${of}.${tag}.${crypto.randomUUID()}.tmp`;
    const dead = temp(`pid${child.pid}-1${here}`);
    const reused = temp(`pid${me.pid}-${Number(me.start ?? 0) + 1}${here}`);
    const live = temp(`pid${me.pid}${me.start ? `-${me.start}` : ""}${here}`);
    const other = temp(`pid${child.pid}-1${here}`, `${cacheDir}/other.tok`);
    // The same gone pid on another host with the same namespace inode (a
    // Slurm node sharing the cache: every host's first pid namespace is
    // 4026531836, and its writer may run), in another namespace (a
    // container), and untagged by namespace (left before the tag had one):
    // all kept.
    const otherHost = temp(
      `pid${child.pid}-1${ns}${hostTagOf(`${me.hostname}-2`, me.host)}`,
    );
    const elsewhere = temp(
      `pid${child.pid}-1-ns1${hostTagOf(me.hostname, me.host)}`,
    );
    const untagged = temp(`pid${child.pid}-1`);
    // Without a host tag (the previous version's format): this host's,
    // judged by namespace and /proc — gone, removed.
    const noHost = temp(`pid${child.pid}-1${ns}`);
    // Today's development format (16 hex of the boot id's SHA-256): this
    // host's when it is ours — gone, removed.
    const devTag = temp(
      `pid${child.pid}-1${ns}-h${sha256Hex(me.host ?? "").slice(0, 16)}`,
    );
    for (
      const f of [
        devTag,
        dead,
        reused,
        live,
        other,
        otherHost,
        elsewhere,
        noHost,
        untagged,
      ]
    ) {
      await Deno.writeTextFile(f, "ids");
    }
    await Deno.remove(cache); // tokenized afresh
    await tokenizeCorpus(source, new ByteTokenizer(), { cacheDir });
    assertEquals(
      await cacheFiles(cacheDir),
      [cache, live, other, otherHost, elsewhere, untagged].sort(),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizeCorpus() removes a temporary of this host's name written before its last boot (a reboot ended the writer), even of a pid and start alive now, keeps the same written since (another machine of the same name), and keeps one of another boot whose host name is unknown (another host, or this one rebooted) and one of another host name whatever its boot", async () => {
  if (Deno.build.os !== "linux") return;
  const { dir, cacheDir, source } = await setup(" = A = \n x \n = B = \n y \n");
  try {
    await tokenizeCorpus(source, new ByteTokenizer(), { cacheDir });
    const [cache] = await cacheFiles(cacheDir);
    const me = thisProcess();
    const before = crypto.randomUUID();
    // This very process's pid and start (alive now) in another namespace
    // (/proc cannot tell): only the boot says its writer is gone.
    const mine = `pid${me.pid}${me.start ? `-${me.start}` : ""}-ns1`;
    const temp = (host: string) =>
      `${cache}.${mine}${host}.${crypto.randomUUID()}.tmp`;
    const rebooted = temp(hostTagOf(me.hostname, before));
    const nameless = temp(hostTagOf(undefined, before));
    const otherHost = temp(hostTagOf(`${me.hostname}-2`, before));
    // The same tag written since this host booted: a machine of the same
    // name (a cloned image) whose writer may be alive.
    const twin = temp(hostTagOf(me.hostname, before));
    for (const f of [rebooted, nameless, otherHost, twin]) {
      await Deno.writeTextFile(f, "ids");
    }
    for (const f of [rebooted, nameless, otherHost]) {
      await Deno.utime(f, 0, 0); // written before this host booted
    }
    await Deno.remove(cache); // tokenized afresh
    await tokenizeCorpus(source, new ByteTokenizer(), { cacheDir });
    assertEquals(
      await cacheFiles(cacheDir),
      [cache, nameless, otherHost, twin].sort(),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizeCorpus() says in one line, naming both files, that its temporary ids file vanished while it was written (removed by another process sharing the cache), not a raw NotFound", async () => {
  const { dir, cacheDir, source } = await setup(" = A = \n x \n = B = \n y \n");
  try {
    let docs = 0;
    // Another process (a cleaner; an older version on another host) removes
    // the temporary while the ids of the last document are made.
    const remover = new (class extends ShiftedBytes {
      override encode(text: string): Uint32Array {
        if (++docs === 2) {
          for (const e of Deno.readDirSync(cacheDir)) {
            if (e.name.endsWith(".tmp")) {
              Deno.removeSync(`${cacheDir}/${e.name}`);
            }
          }
        }
        return super.encode(text);
      }
    })("remover");
    const e = await assertRejects(
      () => tokenizeCorpus(source, remover, { cacheDir }),
      DataError,
    );
    const m =
      /^Cannot write token cache (\S+) \(temporary (\S+)\): the temporary file vanished while it was written \(another process sharing the folder removed it: a run of an older version on another host, or a cleaner\); run again$/
        .exec(e.message);
    if (!m) throw new Error(`not the one line: ${e.message}`);
    assert(m[1].startsWith(`${cacheDir}/`) && m[2].startsWith(`${m[1]}.pid`));
    assertEquals(await cacheFiles(cacheDir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizeCorpus() writes the cache through a temporary file tagged with this process (pid, start, namespace, host), so a sweep by another process can tell it is alive", async () => {
  const { dir, cacheDir, source } = await setup(" = A = \n x \n");
  const rename = Deno.rename;
  const renamed: string[] = [];
  Deno.rename = (from: string | URL, to: string | URL) => {
    renamed.push(`${from}`.slice(`${to}`.length));
    return rename(from, to);
  };
  try {
    await tokenizeCorpus(source, new ByteTokenizer(), { cacheDir });
    const me = thisProcess();
    const tag = `pid${me.pid}${me.start ? `-${me.start}` : ""}-ns${
      /\[(\d+)\]/.exec(me.ns ?? "")?.[1]
    }${hostTagOf(me.hostname, me.host)}`;
    assertEquals(renamed.length, 1); // the cache, in place
    assertEquals(renamed[0].slice(0, tag.length + 2), `.${tag}.`);
    assert(renamed[0].endsWith(".tmp"), renamed[0]);
  } finally {
    Deno.rename = rename;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "tokenizeCorpus() on a full disk (a 64 KiB tmpfs) says in one line which token cache and temporary it could not write, and leaves neither: the ids temporary too large, and the cache beside a temporary that fits",
  ignore: !MAY_MOUNT,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const cacheDir = `${dir}/cache`;
    await Deno.mkdir(cacheDir);
    try {
      // 48,000 bytes: 96 KB of 2-byte ids, over the disk; 24,000 bytes: 48
      // KB of ids fit, but not the 48 KB cache beside them.
      for (const repeats of [4000, 2000]) {
        await Deno.writeTextFile(
          `${dir}/train.txt`,
          "hello world\n".repeat(repeats),
        );
        const source = {
          url: `file://${dir}/train.txt`,
          split: "train",
          layout: "text",
          gzip: false,
        } as const;
        await withTmpfs(cacheDir, async () => {
          const e = await assertRejects(
            () =>
              tokenizeCorpus(source, new ByteTokenizer(), {
                cacheDir,
                onWarning: () => {},
              }),
            DataError,
          );
          const m =
            /^Cannot write token cache (\S+\.tok) \(temporary (\S+\.tmp)\): No space left on device \(os error 28\)$/
              .exec(e.message);
          if (!m) throw new Error(`${repeats}: not the one line: ${e.message}`);
          assert(m[1].startsWith(`${cacheDir}/`), e.message);
          assert(m[2].startsWith(`${m[1]}.pid`), e.message);
          assertEquals(await cacheFiles(cacheDir), [], `${repeats}`);
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
