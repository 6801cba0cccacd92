import { fromFileUrl } from "@d3pm/core";
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  embeddedWikiText2,
  findCorpus,
  findWikiText,
  isArticleTitle,
  MAX_ARTICLE,
  MAX_LINE,
  readArticles,
  readLines,
} from "./wikitext.ts";
import { DataError } from "./errors.ts";

Deno.test("embedded WikiText-2 train streams all 36,718 lines and 629 articles", async () => {
  let lines = 0;
  let titles = 0;
  for await (const line of await readLines(embeddedWikiText2("train"))) {
    lines++;
    if (isArticleTitle(line)) titles++;
  }
  assertEquals(lines, 36718);
  assertEquals(titles, 629);
  let articles = 0;
  for await (const text of readArticles(embeddedWikiText2("train"))) {
    assert(text.startsWith(" = ") && isArticleTitle(text.split("\n")[0]));
    articles++;
  }
  assertEquals(articles, 629);
});

Deno.test("embedded splits decompress to the exact bytes of the release", async () => {
  // wc -c of the shared originals: valid 1,121,681 bytes; raw test 1,290,590 bytes.
  for (
    const [source, bytes] of [
      [embeddedWikiText2("valid"), 1121681],
      [embeddedWikiText2("test", { layout: "raw" }), 1290590],
    ] as const
  ) {
    let n = 0;
    for await (const line of await readLines(source)) {
      n += new TextEncoder().encode(line).length + 1;
    }
    assertEquals(n, bytes);
  }
});

Deno.test("isArticleTitle() tells titles from section headings and text", () => {
  assert(isArticleTitle(" = Valkyria Chronicles III = "));
  assert(!isArticleTitle(" = = Gameplay = = "));
  assert(!isArticleTitle(" = = = Sub = = = "));
  assert(!isArticleTitle(" The = sign = "));
  assert(!isArticleTitle(" "));
  // Each end is checked on its own: a lopsided heading is no title; nor is
  // an empty title (6 characters); one character is (7).
  assert(!isArticleTitle(" = = A = "));
  assert(!isArticleTitle(" = A = = "));
  assert(!isArticleTitle(" =  = "));
  assert(isArticleTitle(" = A = "));
});

Deno.test("readLines() reports progress up to the file size", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/wiki.valid.tokens`;
  await Deno.writeTextFile(path, " = A = \n".repeat(10000));
  const seen: number[] = [];
  let total = 0;
  const source = await findWikiText(dir, "valid");
  for await (
    const _ of await readLines(source, {
      onProgress: ({ bytes, totalBytes }) => {
        seen.push(bytes);
        total = totalBytes ?? -1;
      },
    })
  ) { /* drain */ }
  assertEquals(total, 80000);
  assertEquals(seen.at(-1), 80000);
  assert(seen.every((b, i) => i === 0 || b > seen[i - 1]));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("findWikiText() reads gzipped and plain files in both layouts", async () => {
  const dir = await Deno.makeTempDir();
  const text = " = A = \n a \n = B = \n b \n";
  const gz = new Response(
    new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")),
  );
  await Deno.writeFile(
    `${dir}/wiki.train.raw.gz`,
    new Uint8Array(await gz.arrayBuffer()),
  );
  await Deno.writeTextFile(`${dir}/wiki.train.tokens`, text);
  const tokens = await findWikiText(dir, "train");
  assertEquals([tokens.layout, tokens.gzip], ["tokens", false]);
  const raw = await findWikiText(dir, "train", { layout: "raw" });
  assertEquals([raw.layout, raw.gzip], ["raw", true]);
  assertEquals(await Array.fromAsync(readArticles(raw)), [
    " = A = \n a \n",
    " = B = \n b \n",
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("findWikiText() names the path and what is accepted for bad directories", async () => {
  const dir = await Deno.makeTempDir();
  await assertRejects(
    () => findWikiText(`${dir}/nope`, "train"),
    DataError,
    "does not exist",
  );
  await assertRejects(() => findWikiText(dir, "train"), DataError, "is empty");
  await Deno.writeTextFile(`${dir}/wiki.test.tokens`, " = A = \n");
  await assertRejects(
    () => findWikiText(dir, "train"),
    DataError,
    "has no train split: expected wiki.train.tokens[.gz] or wiki.train.raw[.gz], found wiki.test.tokens",
  );
  await assertRejects(
    () => findWikiText(`${dir}/wiki.test.tokens`, "test"),
    DataError,
    "is not a directory",
  );
  await Deno.writeTextFile(`${dir}/wiki.valid.raw`, "");
  await assertRejects(() => findWikiText(dir, "valid"), DataError, "is empty");
  await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => findWikiText(dir, "dev" as any),
    DataError,
    "expected one of train, valid, test",
  );
  for (const e of [new DataError("x")]) assert(!e.message.includes("\n"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("embeddedWikiText2() refuses raw splits it does not hold", () => {
  assertThrows(
    () => embeddedWikiText2("train", { layout: "raw" }),
    DataError,
    "only raw test is",
  );
});

Deno.test("findWikiText() and readLines() name a corpus path that is a directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/wiki.train.tokens`);
    await Deno.writeTextFile(`${dir}/wiki.train.tokens/x`, "x");
    const real = await Deno.realPath(dir);
    const e = await assertRejects(() => findWikiText(dir, "train"), DataError);
    assertEquals(
      e.message,
      `Corpus file ${real}/wiki.train.tokens is not a file (expected wiki.train.tokens to be plain UTF-8 text)`,
    );
    // A source built by hand, past findWikiText().
    const source = {
      url: `file://${real}/wiki.train.tokens`,
      split: "train",
      layout: "tokens",
      gzip: false,
    } as const;
    await assertRejects(
      () => readLines(source),
      DataError,
      `Corpus file ${real}/wiki.train.tokens is not a file`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readArticles() names a corrupt .gz corpus in a one-line DataError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = " = A = \n a \n".repeat(2000);
    const gz = new Uint8Array(
      await new Response(
        new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")),
      ).arrayBuffer(),
    );
    for (
      const [what, bytes] of [
        ["truncated", gz.subarray(0, gz.length >> 1)],
        ["bad checksum", gz.map((b, i) => i === gz.length - 6 ? b ^ 1 : b)],
      ] as const
    ) {
      await Deno.writeFile(`${dir}/wiki.test.tokens.gz`, bytes);
      const source = await findWikiText(dir, "test");
      const e = await assertRejects(
        () => Array.fromAsync(readArticles(source, { onWarning: () => {} })),
        DataError,
        undefined,
        what,
      );
      assert(
        e.message.startsWith(
          `Cannot read corpus file ${fromFileUrl(source.url)}: `,
        ),
        e.message,
      );
      assert(e.message.endsWith("(expected gzip-compressed UTF-8 text)"));
      assert(!e.message.includes("\n"), e.message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readLines() warns once with the count of invalid UTF-8 sequences, not real U+FFFD", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/wiki.test.raw`;
    const read = async () => {
      const warnings: string[] = [];
      const source = await findWikiText(dir, "test");
      const lines = await Array.fromAsync(
        await readLines(source, { onWarning: (m) => warnings.push(m) }),
      );
      return { lines, warnings };
    };
    // Valid text with many real U+FFFD (EF BF BD), some across read chunks.
    await Deno.writeTextFile(path, "a\uFFFDcd\n".repeat(100_000)); // 7 bytes
    const valid = await read();
    assertEquals(valid.warnings, []);
    assertEquals(valid.lines.length, 100_000);
    // 3 invalid sequences: FF, FE and a lone lead byte C3 before a space.
    const bad = new Uint8Array([
      ...new TextEncoder().encode("ok \uFFFD "),
      0xff,
      0xfe,
      0x20,
      0xc3,
      0x20,
      0x0a,
    ]);
    await Deno.writeFile(path, bad);
    const { warnings } = await read();
    assertEquals(warnings, [
      `corpus file ${await Deno.realPath(
        path,
      )} is not valid UTF-8: 3 invalid byte sequence(s) were read as U+FFFD (expected UTF-8 text)`,
    ]);
    // Random bytes: the count is large, still one warning.
    let state = 12345;
    const random = Uint8Array.from({ length: 100_000 }, () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 24;
    });
    await Deno.writeFile(path, random);
    const noisy = await read();
    assertEquals(noisy.warnings.length, 1);
    const count = Number(/: (\d+) invalid/.exec(noisy.warnings[0])?.[1]);
    assert(count > 10_000, noisy.warnings[0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readArticles() reads a file without title lines in bounded documents, cut at line breaks, with one warning", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/wiki.train.raw`;
    const line = "no title here , just text .\n";
    const text = line.repeat(Math.ceil((2.5 * MAX_ARTICLE) / line.length));
    await Deno.writeTextFile(path, text);
    const warnings: string[] = [];
    const docs = await Array.fromAsync(readArticles(
      { url: `file://${path}`, split: "train", layout: "raw", gzip: false },
      { onWarning: (m) => warnings.push(m), onProgress: false },
    ));
    assertEquals(docs.length, 3);
    assert(docs.every((d) => d.length <= MAX_ARTICLE && d.endsWith("\n")));
    assertEquals(docs.join(""), text); // nothing lost or added
    assertEquals(warnings.length, 1);
    assert(warnings[0].includes('without " = Title = " lines'), warnings[0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readLines() refuses a line longer than MAX_LINE, naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/wiki.train.raw`;
    await Deno.writeFile(path, new Uint8Array(MAX_LINE + 10).fill(97));
    await assertRejects(
      async () => {
        for await (
          const _ of await readLines(
            {
              url: `file://${path}`,
              split: "train",
              layout: "raw",
              gzip: false,
            },
            { onProgress: false },
          )
        ) { /* read on */ }
      },
      DataError,
      `Corpus file ${path} has a line longer than ${MAX_LINE} characters`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findCorpus() reads a folder of plain-text splits (validation.txt, .gz) as the text layout, never cut at WikiText title lines", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = "A first line.\n = Not a title = \nA last line.\n";
    const gz = new Response(
      new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")),
    );
    await Deno.writeFile(
      `${dir}/train.txt.gz`,
      new Uint8Array(await gz.arrayBuffer()),
    );
    await Deno.writeTextFile(`${dir}/validation.txt`, text);
    await Deno.writeTextFile(`${dir}/test.txt`, text);
    const train = await findCorpus(dir, "train");
    assertEquals([train.layout, train.gzip], ["text", true]);
    const valid = await findCorpus(dir, "valid");
    assertEquals([valid.layout, valid.url.split("/").pop()], [
      "text",
      "validation.txt",
    ]);
    const warnings: string[] = [];
    // One document, the title-like line kept inside it.
    assertEquals(
      await Array.fromAsync(
        readArticles(train, { onWarning: (m) => warnings.push(m) }),
      ),
      [text],
    );
    assertEquals(warnings, []);
    // findWikiText() still looks only for WikiText names.
    await assertRejects(
      () => findWikiText(dir, "test"),
      DataError,
      "expected wiki.test.tokens[.gz] or wiki.test.raw[.gz], found",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findCorpus() refuses in one line a folder mixing WikiText and plain text, or lacking a plain-text split, naming the files found and the names accepted", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/train.txt`, "x\n");
    await Deno.writeTextFile(`${dir}/test.txt`, "x\n");
    const partial = await assertRejects(
      () => findCorpus(dir, "train"),
      DataError,
      "has plain-text splits but no valid split (found test.txt, train.txt): expected train.txt, valid.txt (or validation.txt) and test.txt",
    );
    assert(!partial.message.includes("\n"));
    await Deno.writeTextFile(`${dir}/valid.txt`, "x\n");
    assertEquals((await findCorpus(dir, "train")).layout, "text");
    await Deno.writeTextFile(`${dir}/validation.txt`, "x\n");
    await assertRejects(
      () => findCorpus(dir, "train"),
      DataError,
      "has both valid.txt and validation.txt: keep one as the valid split",
    );
    // The files named as they are (it said valid.txt and validation.txt).
    await Deno.remove(`${dir}/validation.txt`);
    await Deno.writeFile(`${dir}/validation.txt.gz`, await gzipped("x\n"));
    await assertRejects(
      () => findCorpus(dir, "train"),
      DataError,
      "has both valid.txt and validation.txt.gz: keep one",
    );
    await Deno.remove(`${dir}/validation.txt.gz`);
    await Deno.writeTextFile(`${dir}/wiki.train.tokens`, " = A = \n");
    const mixed = await assertRejects(
      () => findCorpus(dir, "test"),
      DataError,
      "holds both WikiText files and plain-text splits (found wiki.train.tokens, test.txt, train.txt, valid.txt): keep one kind, expected wiki.{train,valid,test}.{tokens,raw}[.gz] (WikiText) or train.txt, valid.txt (or validation.txt), test.txt [.gz] (plain UTF-8 text)",
    );
    assert(!mixed.message.includes("\n"));
    // Asked for plain text where there is none: not "has plain-text splits".
    const none = await Deno.makeTempDir({ dir });
    await Deno.writeTextFile(`${none}/wiki.test.tokens`, " = A = \n");
    await assertRejects(
      () => findCorpus(none, "test", { layout: "text" }),
      DataError,
      `Data directory ${none} has no plain-text splits: expected train.txt`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function gzipped(text: string): Promise<Uint8Array> {
  return new Uint8Array(
    await new Response(
      new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
}

Deno.test("findCorpus() refuses in one line a link to nothing, a link loop, a .gz that is not gzip, gzip named without .gz, and a split both plain and .gz", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const real = await Deno.realPath(dir);
    for (const s of ["valid", "test"]) {
      await Deno.writeTextFile(`${dir}/${s}.txt`, "Some text.\n");
    }
    const refused = async (what: string, message: string) => {
      const e = await assertRejects(
        () => findCorpus(dir, "train"),
        DataError,
        undefined,
        what,
      );
      assertEquals(e.message, message, what);
    };
    await Deno.symlink(`${dir}/nowhere`, `${dir}/train.txt`);
    await refused(
      "dangling link",
      `Cannot read corpus file ${dir}/train.txt: it is a link to a file that does not exist (expected train.txt to be plain UTF-8 text)`,
    );
    await Deno.remove(`${dir}/train.txt`);
    await Deno.symlink(`${dir}/loop`, `${dir}/train.txt`);
    await Deno.symlink(`${dir}/train.txt`, `${dir}/loop`);
    await refused(
      "link loop",
      `Cannot read corpus file ${dir}/train.txt: Too many levels of symbolic links (os error 40) (expected train.txt to be plain UTF-8 text)`,
    );
    await Deno.remove(`${dir}/train.txt`);
    await Deno.remove(`${dir}/loop`);
    // The same bytes read both ways would share the caches' keys (the
    // stored bytes' SHA-256): a plain file named .gz trained as text after
    // its plain twin had filled the token cache.
    await Deno.writeTextFile(`${dir}/train.txt.gz`, "Some text.\n");
    await refused(
      "not gzip",
      `Corpus file ${real}/train.txt.gz is named .gz but is not gzip (it does not start with the gzip bytes 1f 8b): rename it train.txt if it is plain text, or compress it (gzip)`,
    );
    await Deno.remove(`${dir}/train.txt.gz`);
    await Deno.writeFile(`${dir}/train.txt`, await gzipped("Some text.\n"));
    await refused(
      "gzip without .gz",
      `Corpus file ${real}/train.txt is gzip-compressed (it starts with the gzip bytes 1f 8b) but its name lacks .gz: rename it train.txt.gz`,
    );
    await Deno.rename(`${dir}/train.txt`, `${dir}/train.txt.gz`);
    assertEquals((await findCorpus(dir, "train")).gzip, true);
    await Deno.writeTextFile(`${dir}/train.txt`, "Other text.\n");
    await refused(
      "both",
      `Data directory ${dir} has both train.txt and train.txt.gz (found test.txt, train.txt, train.txt.gz, valid.txt): keep one of the two`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readArticles() says a .gz of several gzip members, or with bytes appended, has bytes after its gzip stream", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const one = await gzipped("A first line.\n");
    const two = await gzipped("A second line.\n");
    const n = one.length;
    for (
      const [what, bytes, says] of [
        [
          "two members",
          new Uint8Array([...one, ...two]),
          `at byte ${n} of ${
            n + two.length
          }: another gzip member (several members, as cat a.gz b.gz or gzip -c a b make): recompress it as one (zcat FILE | gzip > NEW.gz)`,
        ],
        [
          "appended",
          new Uint8Array([...one, 0x67, 0, 0]),
          `at byte ${n} of ${
            n + 3
          }: 3 byte(s) appended that are not gzip: cut them off (head -c ${n} FILE > NEW.gz)`,
        ],
      ] as const
    ) {
      await Deno.writeFile(`${dir}/test.txt.gz`, bytes);
      const source = {
        url: `file://${dir}/test.txt.gz`,
        split: "test",
        layout: "text",
        gzip: true,
      } as const;
      const e = await assertRejects(
        () => Array.fromAsync(readArticles(source)),
        DataError,
        undefined,
        what,
      );
      assertEquals(
        e.message,
        `Cannot read corpus file ${dir}/test.txt.gz: it has bytes after the end of its gzip stream ${says} (expected gzip-compressed UTF-8 text)`,
        what,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Run `body` with the global DecompressionStream replaced by one over the
 * real stream whose errors all say `message`, and which, with `stopAt`,
 * decompresses only the first `stopAt` bytes and ignores the rest.
 */
async function withDecompressor(
  options: { message?: string; stopAt?: number },
  body: () => Promise<void>,
): Promise<void> {
  const Real = globalThis.DecompressionStream;
  const retold = () => new TypeError(options.message ?? "decompression failed");
  class Retold {
    readable: ReadableStream<Uint8Array>;
    writable: WritableStream<Uint8Array>;
    constructor(format: CompressionFormat) {
      const real = new Real(format);
      const writer = real.writable.getWriter();
      const reader = real.readable.getReader();
      let taken = 0;
      this.writable = new WritableStream({
        write: async (chunk) => {
          const room = (options.stopAt ?? Infinity) - taken;
          taken += chunk.length;
          if (room <= 0) return;
          await writer.write(
            chunk.subarray(0, room) as Uint8Array<ArrayBuffer>,
          ).catch(() => {
            throw retold();
          });
        },
        close: () =>
          writer.close().catch(() => {
            throw retold();
          }),
        abort: (r) => writer.abort(r),
      });
      this.readable = new ReadableStream({
        async pull(ctl) {
          try {
            const r = await reader.read();
            if (r.done) ctl.close();
            else ctl.enqueue(r.value);
          } catch {
            ctl.error(retold());
          }
        },
      });
    }
  }
  globalThis.DecompressionStream = Retold as unknown as typeof Real;
  try {
    await body();
  } finally {
    globalThis.DecompressionStream = Real;
  }
}

Deno.test("readArticles() finds the bytes after a .gz's first member whatever the decompressor's error says, and whether or not it stops there in silence", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const one = await gzipped("A first line.\n".repeat(500));
    const two = await gzipped("A second line.\n");
    const path = `${dir}/test.txt.gz`;
    await Deno.writeFile(path, new Uint8Array([...one, ...two]));
    const source = {
      url: `file://${path}`,
      split: "test",
      layout: "text",
      gzip: true,
    } as const;
    const read = () => Array.fromAsync(readArticles(source));
    await withDecompressor({ message: "some other words" }, async () => {
      const e = await assertRejects(read, DataError);
      assertStringIncludes(
        e.message,
        `it has bytes after the end of its gzip stream at byte ${one.length} of ${
          one.length + two.length
        }: another gzip member`,
      );
    });
    // A decompressor that stops at the first member's end: its 7000 bytes
    // are not the 15 in the file's last 4 (the second member's size).
    await withDecompressor({ stopAt: one.length }, async () => {
      const e = await assertRejects(read, DataError);
      assertStringIncludes(
        e.message,
        "it has bytes after the end of its gzip stream: the size in its last 4 bytes (15) is not the 7000 bytes decompressed (several gzip members",
      );
    });
    // Whatever the stream says of a truncated file is passed on.
    await Deno.writeFile(path, one.subarray(0, one.length - 3));
    await withDecompressor({ message: "cut short" }, async () => {
      await assertRejects(read, DataError, `${path}: cut short (expected`);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readLines() warns once of NUL bytes (a file of zeros, UTF-16 text), naming a UTF-16 byte order mark", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/test.txt`;
    const source = {
      url: `file://${path}`,
      split: "test",
      layout: "text",
      gzip: false,
    } as const;
    const warned = async (bytes: Uint8Array) => {
      await Deno.writeFile(path, bytes);
      const warnings: string[] = [];
      await Array.fromAsync(
        await readLines(source, { onWarning: (m) => warnings.push(m) }),
      );
      return warnings;
    };
    // Zeros are valid UTF-8: they trained in silence.
    assertEquals(await warned(new Uint8Array(300_000)), [
      `corpus file ${path} is not UTF-8 text: 300000 NUL byte(s) were read as U+0000; a binary file? (expected UTF-8 text)`,
    ]);
    // "hi\n" in UTF-16LE after its mark FF FE: 3 NUL bytes, FF and FE invalid.
    assertEquals(
      await warned(Uint8Array.of(0xff, 0xfe, 0x68, 0, 0x69, 0, 0x0a, 0)),
      [
        `corpus file ${path} is not UTF-8 text: 2 invalid byte sequence(s) were read as U+FFFD, and 3 NUL byte(s) were read as U+0000; it starts with a UTF-16 byte order mark: convert it (iconv -f UTF-16 -t UTF-8) (expected UTF-8 text)`,
      ],
    );
    assertEquals(await warned(new TextEncoder().encode("hi\n")), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findCorpus() reads the file it checked in a folder whose name holds % or # (a URL read p%41q as pAq, h#x as h)", async () => {
  const base = await Deno.makeTempDir();
  try {
    for (const [name, decoy] of [["p%41q", "pAq"], ["h#x", "h"]]) {
      for (const [folder, text] of [[name, "meant\n"], [decoy, "decoy\n"]]) {
        await Deno.mkdir(`${base}/${folder}`);
        for (const split of ["train", "valid", "test"]) {
          await Deno.writeTextFile(`${base}/${folder}/${split}.txt`, text);
        }
      }
      const source = await findCorpus(`${base}/${name}`, "test");
      const lines: string[] = [];
      for await (const line of await readLines(source)) lines.push(line);
      assertEquals(lines, ["meant"], name);
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("findCorpus() with its default layouts reads a WikiText folder as WikiText, refuses one stray plain-text split beside it, and names the missing splits of a lone train.txt", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const s of ["train", "valid", "test"]) {
      await Deno.writeTextFile(`${dir}/wiki.${s}.tokens`, " = A = \n a \n");
    }
    const source = await findCorpus(dir, "valid");
    assertEquals(
      [source.layout, source.gzip, source.url.split("/").pop()],
      ["tokens", false, "wiki.valid.tokens"],
    );
    await Deno.writeTextFile(`${dir}/test.txt`, "x\n");
    await assertRejects(
      () => findCorpus(dir, "valid"),
      DataError,
      "holds both WikiText files and plain-text splits (found wiki.test.tokens, wiki.train.tokens, wiki.valid.tokens, test.txt)",
    );
    for (const s of ["train", "valid", "test"]) {
      await Deno.remove(`${dir}/wiki.${s}.tokens`);
    }
    await assertRejects(
      () => findCorpus(dir, "test"),
      DataError,
      "has plain-text splits but no train or valid split (found test.txt)",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readArticles() cuts a text without titles exactly where the greedy reference does: a document of MAX_ARTICLE characters whole, one more character in the next", async () => {
  /** Greedy reference: lines (with their \n) while the document fits. */
  const reference = (lines: string[]): string[] => {
    const docs: string[] = [];
    let doc = "";
    for (const line of lines) {
      if (doc !== "" && doc.length + line.length + 1 > MAX_ARTICLE) {
        docs.push(doc);
        doc = "";
      }
      doc += line + "\n";
    }
    if (doc !== "") docs.push(doc);
    return docs;
  };
  const row = "a".repeat(63); // 64 characters with its \n
  const rows = (n: number) => Array<string>(n).fill(row);
  const full = MAX_ARTICLE / 64; // rows in exactly MAX_ARTICLE characters
  const cases: Record<string, string[]> = {
    // Two documents of exactly MAX_ARTICLE, then one line.
    exact: [...rows(full), ...rows(full), "y"],
    // MAX_ARTICLE + 1: the 65-character last line starts a document.
    over: [...rows(full - 1), "b".repeat(64)],
    // One line of MAX_ARTICLE characters, then another: two documents.
    single: ["c".repeat(MAX_ARTICLE - 1), "z"],
  };
  const dir = await Deno.makeTempDir();
  try {
    for (const [name, lines] of Object.entries(cases)) {
      const path = `${dir}/${name}.txt`;
      await Deno.writeTextFile(path, lines.join("\n") + "\n");
      const docs = await Array.fromAsync(readArticles(
        { url: `file://${path}`, split: "train", layout: "text", gzip: false },
        { onProgress: false },
      ));
      const want = reference(lines);
      assertEquals(docs.map((d) => d.length), want.map((d) => d.length), name);
      assert(docs.every((d, i) => d === want[i]), name);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readLines() takes lines of exactly MAX_LINE characters across its chunks and refuses one of MAX_LINE + 1 after a line break", async () => {
  const dir = await Deno.makeTempDir();
  try {
    /** Lines of these lengths ("a"s), each ended by \n. */
    const file = async (name: string, lengths: number[]) => {
      const bytes = new Uint8Array(lengths.reduce((a, n) => a + n + 1, 0));
      bytes.fill(97);
      let at = 0;
      for (const n of lengths) bytes[at += n] = 10, at++;
      const path = `${dir}/${name}`;
      await Deno.writeFile(path, bytes);
      return {
        url: `file://${path}`,
        split: "train",
        layout: "text",
        gzip: false,
      } as const;
    };
    const lengths = async (source: Awaited<ReturnType<typeof file>>) => {
      const out: number[] = [];
      for await (const line of await readLines(source, { onProgress: false })) {
        out.push(line.length);
      }
      return out;
    };
    // Two lines of MAX_LINE: the second's \n starts a read chunk (MAX_LINE
    // is a multiple of the reads' size), the first byte after a long run.
    assertEquals(
      await lengths(await file("exact.txt", [MAX_LINE, MAX_LINE, 3])),
      [MAX_LINE, MAX_LINE, 3],
    );
    // One of MAX_LINE after a line break inside a chunk.
    assertEquals(
      await lengths(await file("inside.txt", [5, MAX_LINE, 2])),
      [5, MAX_LINE, 2],
    );
    for (const ls of [[0, MAX_LINE + 1], [5, MAX_LINE + 1, 2]]) {
      const source = await file(`over${ls[0]}.txt`, ls);
      await assertRejects(
        () => lengths(source),
        DataError,
        `has a line longer than ${MAX_LINE} characters`,
        String(ls),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readLines() reads plain text with universal newlines (CRLF and a lone CR are breaks, across chunks and in a .gz), and WikiText as before", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // CRLF pairs across each power-of-two boundary a read may cut at, a
    // lone CR, a CR at the end of a chunk whose next one starts with text,
    // and an unterminated last line.
    const chars = Array.from({ length: 140_000 }, () => "a");
    for (const b of [16_384, 32_768, 65_536, 131_072]) {
      chars[b - 1] = "\r";
      chars[b] = "\n";
    }
    chars[100] = "\r"; // a lone CR (old Mac text)
    chars[49_151] = "\r"; // a lone CR at a 16 KiB boundary
    chars[200] = "\n";
    const text = chars.join("") + "b\r\n\r\nc\rlast\r";
    const want = text.slice(0, -1).split(/\r\n|\r|\n/);
    const gz = await gzipped(text);
    for (
      const [name, bytes] of [["test.txt", undefined], [
        "test.txt.gz",
        gz,
      ]] as const
    ) {
      const path = `${dir}/${name}`;
      if (bytes) await Deno.writeFile(path, bytes);
      else await Deno.writeTextFile(path, text);
      const read = (layout: "text" | "raw") =>
        readLines({
          url: `file://${path}`,
          split: "test",
          layout,
          gzip: !!bytes,
        }, {
          onProgress: false,
        }).then((l) => Array.fromAsync(l));
      assertEquals(await read("text"), want, name);
      // WikiText keeps its reading (its token ids must not move): only LF
      // and CRLF break a line, and the last line keeps its CR.
      assertEquals(await read("raw"), text.split(/\r?\n/), name);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
