import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  embeddedWikiText2,
  findWikiText,
  isArticleTitle,
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
