/**
 * Locating and streaming corpora: the embedded WikiText-2 copy and user
 * directories (WikiText-103, raw WikiText-2, or plain UTF-8 text splits).
 *
 * @module
 */
import { TextLineStream } from "@std/streams";
import { fromFileUrl, gunzipStream, toFileUrl } from "@d3pm/core";
import { DataError } from "./errors.ts";
import { defaultProgress } from "./_progress.ts";
import { gzipEnd } from "./_gzip_end.ts";

/** A split of a WikiText corpus. */
export type Split = "train" | "valid" | "test";
/**
 * `tokens`: WikiText's tokenized release (`<unk>`, ` @-@ `); `raw`: its
 * original text; `text`: any plain UTF-8 text (no WikiText article titles).
 * No layout's text is rewritten: ` @-@ ` and `<unk>` are read as they are.
 */
export type Layout = "tokens" | "raw" | "text";

const SPLITS: readonly Split[] = ["train", "valid", "test"];
const WIKI_LAYOUTS: readonly Layout[] = ["tokens", "raw"];
const LAYOUTS: readonly Layout[] = ["tokens", "raw", "text"];

/** Where a corpus file is and how to read it. */
export interface CorpusSource {
  /** A `file:` or `https:` URL. */
  url: string;
  /** Which split it holds. */
  split: Split;
  /** Which layout it is in. */
  layout: Layout;
  /** Whether the file is gzip-compressed. */
  gzip: boolean;
}

/** Progress of a long read. */
export interface ReadProgress {
  /** Bytes read so far (of the file as stored, compressed or not). */
  bytes: number;
  /** Size of the file in bytes, when known. */
  totalBytes?: number;
}

/** Options of {@linkcode readLines} and {@linkcode readArticles}. */
export interface ReadOptions {
  /**
   * Progress callback. The default prints a line to stderr every 10% for
   * files of 32 MiB or more, and for smaller ones (a small `.gz` can expand
   * to gigabytes) one every 10 s once a read has taken 10 s; `false`
   * silences it.
   */
  onProgress?: ((p: ReadProgress) => void) | false;
  /**
   * Called once, at the end of the file, with a one-line message when the
   * file is not valid UTF-8 (random bytes, another encoding) or holds NUL
   * bytes (a file of zeros, UTF-16 text): it names the file and counts the
   * invalid byte sequences read as U+FFFD and the NUL bytes. The default
   * prints it to stderr as `warning: …`.
   */
  onWarning?: (message: string) => void;
}

function checkSplit(split: string): asserts split is Split {
  if (!SPLITS.includes(split as Split)) {
    throw new DataError(
      `Unknown split "${split}": expected one of ${SPLITS.join(", ")}`,
    );
  }
}

/**
 * The WikiText-2 (v1) copy embedded in this package: all three splits of the
 * tokenized release, and the test split of the raw release (the raw train and
 * valid splits are not embedded; use {@linkcode findWikiText} with a directory).
 *
 * @param split Which split.
 * @param options `layout` (default `tokens`).
 * @returns The source of that split.
 *
 * @example
 * ```ts
 * import { embeddedWikiText2 } from "@d3pm/data";
 * import { assertEquals } from "@std/assert";
 * assertEquals(embeddedWikiText2("valid").gzip, true);
 * ```
 */
export function embeddedWikiText2(
  split: Split,
  options: { layout?: Layout } = {},
): CorpusSource {
  checkSplit(split);
  const layout = options.layout ?? "tokens";
  if (layout === "raw" && split !== "test") {
    throw new DataError(
      `Raw WikiText-2 ${split} split is not embedded (only raw test is): pass a directory holding wiki.${split}.raw`,
    );
  }
  if (!WIKI_LAYOUTS.includes(layout)) {
    throw new DataError(
      `Unknown layout "${layout}": expected tokens or raw`,
    );
  }
  const dir = layout === "raw" ? "wikitext-2-raw" : "wikitext-2";
  return {
    url: new URL(`./corpus/${dir}/wiki.${split}.${layout}.gz`, import.meta.url)
      .href,
    split,
    layout,
    gzip: true,
  };
}

/**
 * Find a split in a user directory holding `wiki.{train,valid,test}.tokens`
 * or `.raw` (optionally gzipped, `.gz`), such as an unpacked WikiText-103:
 * {@linkcode findCorpus} restricted to the WikiText layouts.
 *
 * @param dir The directory.
 * @param split Which split.
 * @param options `layout`: which layout to look for; by default `tokens` is
 * tried before `raw`.
 * @returns The source of that split.
 * @throws {DataError} When the directory is missing, not a directory,
 * unreadable, empty, or lacks the split.
 *
 * @example
 * ```ts
 * import { findWikiText } from "@d3pm/data";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/wiki.test.raw`, " = A = \n");
 * assertEquals((await findWikiText(dir, "test")).layout, "raw");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function findWikiText(
  dir: string,
  split: Split,
  options: { layout?: Exclude<Layout, "text"> } = {},
): Promise<CorpusSource> {
  return await findCorpus(dir, split, {
    layout: options.layout ?? WIKI_LAYOUTS,
  });
}

/** The names {@linkcode findCorpus} accepts, as its errors quote them. */
const ACCEPTED =
  "wiki.{train,valid,test}.{tokens,raw}[.gz] (WikiText) or train.txt, valid.txt (or validation.txt), test.txt [.gz] (plain UTF-8 text)";
const WIKI_NAME = /^wiki\.(train|valid|test)\.(tokens|raw)(\.gz)?$/;
const TEXT_NAME = /^(train|valid|validation|test)\.txt(\.gz)?$/;
/** The plain-text file names of each split, in the order they are tried. */
const TEXT_NAMES: Record<Split, string[]> = {
  train: ["train.txt", "train.txt.gz"],
  valid: ["valid.txt", "valid.txt.gz", "validation.txt", "validation.txt.gz"],
  test: ["test.txt", "test.txt.gz"],
};

/**
 * Find a split in a user directory of either kind: WikiText files
 * (`wiki.{train,valid,test}.{tokens,raw}`, e.g. an unpacked WikiText-103) or
 * plain UTF-8 text splits (`train.txt`, `valid.txt` or `validation.txt`,
 * `test.txt`), each optionally gzipped (`.gz`), directly in `dir`. Plain text
 * gets the `text` layout: {@linkcode readArticles} does not split it at
 * WikiText `= Title =` lines. A folder holding both kinds, or plain-text
 * splits lacking one of the three, is refused in one line naming the files
 * found and the names accepted.
 *
 * @param dir The directory.
 * @param split Which split.
 * @param options `layout`: the layout, or the layouts in the order tried;
 * by default `tokens`, `raw`, then `text`.
 * @returns The source of that split.
 * @throws {DataError} When the directory is missing, not a directory,
 * unreadable, empty, mixes WikiText and plain text, or lacks the split.
 *
 * @example
 * ```ts
 * import { findCorpus } from "@d3pm/data";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * for (const s of ["train", "validation", "test"]) {
 *   await Deno.writeTextFile(`${dir}/${s}.txt`, "Some text.\n");
 * }
 * const valid = await findCorpus(dir, "valid");
 * assertEquals(valid.layout, "text");
 * assertEquals(valid.url.endsWith("/validation.txt"), true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function findCorpus(
  dir: string,
  split: Split,
  options: { layout?: Layout | readonly Layout[] } = {},
): Promise<CorpusSource> {
  checkSplit(split);
  const layouts: readonly Layout[] = options.layout === undefined
    ? LAYOUTS
    : typeof options.layout === "string"
    ? [options.layout]
    : options.layout;
  for (const layout of layouts) {
    if (!LAYOUTS.includes(layout)) {
      throw new DataError(
        `Unknown layout "${layout}": expected tokens, raw or text`,
      );
    }
  }
  const names = await listDataDir(dir);
  const wiki = names.filter((n) => WIKI_NAME.test(n)).sort();
  const text = names.filter((n) => TEXT_NAME.test(n)).sort();
  const wantsText = layouts.includes("text");
  const wantsWiki = layouts.some((l) => l !== "text");
  if (wantsText && wantsWiki && wiki.length > 0 && text.length > 0) {
    throw new DataError(
      `Data directory ${dir} holds both WikiText files and plain-text splits (found ${
        [...wiki, ...text].join(", ")
      }): keep one kind, expected ${ACCEPTED}`,
    );
  }
  if (wantsText && (text.length > 0 || !wantsWiki)) {
    return await textSplit(dir, split, text);
  }
  for (const layout of layouts.filter((l) => l !== "text")) {
    for (const gz of [false, true]) {
      const name = `wiki.${split}.${layout}${gz ? ".gz" : ""}`;
      if (names.includes(name)) {
        return await corpusFile(dir, name, { split, layout, gzip: gz });
      }
    }
  }
  const wanted = layouts.map((l) =>
    l === "text"
      ? TEXT_NAMES[split].filter((n) => !n.endsWith(".gz")).join(" or ") +
        "[.gz]"
      : `wiki.${split}.${l}[.gz]`
  ).join(" or ");
  throw new DataError(
    `Data directory ${dir} has no ${split} split: expected ${wanted}, found ${
      names.slice(0, 8).join(", ")
    }${names.length > 8 ? ", …" : ""}`,
  );
}

/** The names in a data directory, or a one-line refusal. */
async function listDataDir(dir: string): Promise<string[]> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    throw new DataError(
      `Cannot read data directory ${dir}: ${
        e instanceof Deno.errors.NotFound ? "it does not exist" : String(e)
      } (expected a directory with ${ACCEPTED})`,
    );
  }
  if (!info.isDirectory) {
    throw new DataError(
      `Data path ${dir} is not a directory (expected a directory with ${ACCEPTED})`,
    );
  }
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch (e) {
    throw new DataError(`Cannot list data directory ${dir}: ${String(e)}`);
  }
  if (names.length === 0) {
    throw new DataError(
      `Data directory ${dir} is empty (expected ${ACCEPTED})`,
    );
  }
  return names;
}

/**
 * A split of a plain-text folder: all three splits must be there (a run
 * needs them), `valid.txt` and `validation.txt` not both; plain before `.gz`.
 */
async function textSplit(
  dir: string,
  split: Split,
  text: string[],
): Promise<CorpusSource> {
  const found = `found ${text.join(", ") || "none"}`;
  const missing = SPLITS.filter((s) =>
    !TEXT_NAMES[s].some((n) => text.includes(n))
  );
  if (text.length === 0) {
    throw new DataError(
      `Data directory ${dir} has no plain-text splits: expected train.txt, valid.txt (or validation.txt) and test.txt, each plain or .gz`,
    );
  }
  if (missing.length > 0) {
    throw new DataError(
      `Data directory ${dir} has plain-text splits but no ${
        missing.join(" or ")
      } split (${found}): expected train.txt, valid.txt (or validation.txt) and test.txt, each plain or .gz`,
    );
  }
  // A split both plain and gzipped: the two may differ, and either could be
  // the one meant (WikiText's folders keep taking the plain one).
  const twin = text.find((n) =>
    n.endsWith(".gz") && text.includes(n.slice(0, -3))
  );
  if (twin) {
    throw new DataError(
      `Data directory ${dir} has both ${
        twin.slice(0, -3)
      } and ${twin} (${found}): keep one of the two`,
    );
  }
  const stems = new Set(
    text.filter((n) => /^valid/.test(n)).map((n) => n.split(".")[0]),
  );
  if (stems.size > 1) {
    throw new DataError(
      `Data directory ${dir} has both ${
        text.filter((n) => /^valid/.test(n)).join(" and ")
      }: keep one as the valid split`,
    );
  }
  const name = TEXT_NAMES[split].find((n) => text.includes(n))!;
  return await corpusFile(dir, name, {
    split,
    layout: "text",
    gzip: name.endsWith(".gz"),
  });
}

/**
 * The source of `dir/name`, which must be a non-empty file, gzip exactly
 * when its name ends in `.gz`: the caches are keyed by the stored bytes'
 * hash, so the same bytes must never be read both ways.
 */
async function corpusFile(
  dir: string,
  name: string,
  kind: Omit<CorpusSource, "url">,
): Promise<CorpusSource> {
  const expected = `expected ${name} to be ${
    kind.gzip ? "gzip-compressed" : "plain"
  } UTF-8 text`;
  let path: string;
  let info: Deno.FileInfo;
  try {
    // The folder's links resolved, not the file's: a corpus file that is a
    // link keeps the name the folder gives it (what data.json records, and
    // messages say); its bytes, and so its hash, are its target's.
    path = `${await Deno.realPath(dir)}/${name}`;
    info = await Deno.stat(path);
  } catch (e) {
    // A dangling link or a link loop: listed by readDir, unreadable here.
    throw new DataError(
      `Cannot read corpus file ${dir}/${name}: ${
        e instanceof Deno.errors.NotFound
          ? "it is a link to a file that does not exist"
          : systemLine(e)
      } (${expected})`,
    );
  }
  if (!info.isFile) {
    throw new DataError(`Corpus file ${path} is not a file (${expected})`);
  }
  if (info.size === 0) {
    throw new DataError(`Corpus file ${path} is empty (${expected})`);
  }
  const gzip = await startsAsGzip(path, expected);
  if (gzip !== kind.gzip) {
    const other = kind.gzip ? name.slice(0, -3) : `${name}.gz`;
    throw new DataError(
      kind.gzip
        ? `Corpus file ${path} is named .gz but is not gzip (it does not start with the gzip bytes 1f 8b): rename it ${other} if it is plain text, or compress it (gzip)`
        : `Corpus file ${path} is gzip-compressed (it starts with the gzip bytes 1f 8b) but its name lacks .gz: rename it ${other}`,
    );
  }
  // Each segment percent-encoded: a folder named `p%41q` or `h#x` was
  // checked here and read from `pAq` or `h` (the URL's own reading).
  return { url: toFileUrl(path).href, ...kind };
}

/** Whether a file starts with gzip's magic bytes 1f 8b. */
async function startsAsGzip(
  path: string,
  expected: string,
): Promise<boolean> {
  let opened: Deno.FsFile;
  try {
    opened = await Deno.open(path);
  } catch (e) {
    throw new DataError(
      `Cannot read corpus file ${path}: ${systemLine(e)} (${expected})`,
    );
  }
  using file = opened;
  const head = new Uint8Array(2);
  let n = 0;
  while (n < 2) {
    const got = await file.read(head.subarray(n));
    if (got === null) break;
    n += got;
  }
  return isGzipHead(head.subarray(0, n));
}

/**
 * Whether bytes begin with gzip's magic 1f 8b (valid UTF-8 text cannot:
 * 0x8b is a continuation byte). Shared with the token cache's hash, which
 * checks a source's bytes against its `gzip` flag.
 *
 * @param head The first bytes (two suffice).
 * @returns Whether they are `1f 8b`.
 *
 * @example
 * ```ts
 * import { isGzipHead } from "./wikitext.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(isGzipHead([0x1f, 0x8b, 8]), true);
 * assertEquals(isGzipHead(new TextEncoder().encode("text")), false);
 * ```
 */
export function isGzipHead(head: ArrayLike<number>): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** The first line of a system error without its repeated path ("…: open '/a/b'"). */
function systemLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]
    .replace(/: \w+ '.*'$/, "");
}

/**
 * Open the stored bytes of a source (still compressed when it is `.gz`),
 * with its size when known.
 *
 * @param source A `file:` or `https:` corpus.
 * @returns A stream of the bytes and, for a file or a response with a
 * `content-length`, their number.
 * @throws {DataError} When the file cannot be opened or is not a file, or the
 * URL answers with an HTTP error.
 *
 * @example
 * ```ts
 * import { openBytes } from "@d3pm/data";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/wiki.test.raw`, " = A = \n x \n");
 * const source = { url: `file://${dir}/wiki.test.raw`, split: "test", layout: "raw", gzip: false } as const;
 * const { stream, size } = await openBytes(source);
 * const text = await new Response(stream).text();
 * assertEquals(text, " = A = \n x \n");
 * assertEquals(size, 12);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openBytes(
  source: CorpusSource,
): Promise<{ stream: ReadableStream<Uint8Array>; size?: number }> {
  const url = new URL(source.url);
  if (url.protocol === "file:") {
    let file: Deno.FsFile;
    let info: Deno.FileInfo;
    try {
      file = await Deno.open(url);
      info = await file.stat();
    } catch (e) {
      throw new DataError(
        `Cannot open corpus file ${fileName(source)}: ${e}`,
      );
    }
    if (!info.isFile) {
      file.close();
      throw new DataError(
        `Corpus file ${
          fileName(source)
        } is not a file (expected UTF-8 text, plain or .gz)`,
      );
    }
    return { stream: file.readable, size: info.size };
  }
  const res = await fetch(url);
  if (!res.ok || !res.body) {
    throw new DataError(`Cannot fetch corpus ${url}: HTTP ${res.status}`);
  }
  const len = Number(res.headers.get("content-length"));
  return { stream: res.body, size: Number.isFinite(len) ? len : undefined };
}

/** Pass bytes through, reporting how many went by. */
function counting(
  onBytes: (n: number) => void,
): TransformStream<Uint8Array, Uint8Array> {
  let n = 0;
  return new TransformStream({
    transform(chunk, ctl) {
      n += chunk.byteLength;
      onBytes(n);
      ctl.enqueue(chunk);
    },
  });
}

/**
 * Stream the lines of a corpus file (without their `\n`), decompressing and
 * decoding on the fly: the file is never held in memory as one string.
 *
 * @param source Where the corpus is.
 * @param options Progress reporting.
 * @returns A stream of lines.
 *
 * @example
 * ```ts
 * import { embeddedWikiText2, readLines } from "@d3pm/data";
 * import { assertEquals } from "@std/assert";
 * const lines = await readLines(embeddedWikiText2("valid"));
 * const first: string[] = [];
 * for await (const line of lines) {
 *   first.push(line);
 *   if (first.length === 2) break;
 * }
 * assertEquals(first, [" ", " = Homarus gammarus = "]);
 * ```
 */
export async function readLines(
  source: CorpusSource,
  options: ReadOptions = {},
): Promise<ReadableStream<string>> {
  const { stream, size } = await openBytes(source);
  const report = options.onProgress === false
    ? undefined
    : options.onProgress ??
      defaultProgress(`reading ${fileName(source).split("/").pop()}`);
  let bytes = report
    ? stream.pipeThrough(
      counting((n) => report({ bytes: n, totalBytes: size })),
    )
    : stream;
  if (source.gzip) {
    bytes = gunzipWhole(bytes);
  }
  const text = bytes.pipeThrough(decodeUtf8(source, options.onWarning));
  // WikiText is read as it always was (its token ids must not move).
  return (source.layout === "text"
    ? text.pipeThrough(universalNewlines())
    : text)
    .pipeThrough(boundedLines(source))
    .pipeThrough(new TextLineStream());
}

/**
 * Gunzip, and check that the stream read is the whole file: a decompressor
 * that stopped at the end of the first gzip member in silence, or read
 * several, would give a count of bytes other than the size in the file's
 * last 4 bytes (gzip's ISIZE, the last member's size mod 2^32).
 */
function gunzipWhole(
  stored: ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  const last = new Uint8Array(4);
  let seen = 0;
  let out = 0;
  const tail = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, ctl) {
      for (const b of chunk.subarray(Math.max(0, chunk.length - 4))) {
        last.copyWithin(0, 1);
        last[3] = b;
        seen++;
      }
      ctl.enqueue(chunk);
    },
  });
  return gunzipStream(stored.pipeThrough(tail)).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        out += chunk.length;
        ctl.enqueue(chunk);
      },
      flush() {
        const size = new DataView(last.buffer).getUint32(0, true);
        if (seen >= 4 && size !== out % 2 ** 32) {
          throw new DataError(
            `it has bytes after the end of its gzip stream: the size in its last 4 bytes (${size}) is not the ${out} bytes decompressed (several gzip members, as cat a.gz b.gz or gzip -c a b make, or data appended): recompress it as one (zcat FILE | gzip > NEW.gz)`,
          );
        }
      },
    }),
  );
}

/**
 * The version of how plain text (the `text` layout) is read, part of the
 * keys of what is built from it (the token cache, the BPE, the judge), so
 * that nothing read the old way is served for a new reading. 2: universal
 * newlines, CRLF and a lone CR both read as LF (2026-12-06).
 *
 * @example
 * ```ts
 * import { TEXT_READING } from "@d3pm/data";
 * import { assertEquals } from "@std/assert";
 * assertEquals(TEXT_READING, 2);
 * ```
 */
export const TEXT_READING = 2;

/**
 * The suffix of a cache name built from a source in this layout: none for
 * WikiText (whose caches keep their names), `-text-v2` for plain text (see
 * {@linkcode TEXT_READING}): the same bytes read as plain text give other
 * documents (no titles) and other lines.
 *
 * @param layout The source's layout.
 * @returns The suffix.
 *
 * @example
 * ```ts
 * import { layoutSuffix } from "@d3pm/data";
 * import { assertEquals } from "@std/assert";
 * assertEquals(layoutSuffix("tokens"), "");
 * assertEquals(layoutSuffix("text"), "-text-v2");
 * ```
 */
export function layoutSuffix(layout: Layout): string {
  return layout === "text" ? `-text-v${TEXT_READING}` : "";
}

/**
 * Universal newlines for plain text, as Python's text mode reads: CRLF and
 * a lone CR (old Mac text) become LF, a pair split across chunks included,
 * so an unterminated last line keeps no `\r`.
 */
function universalNewlines(): TransformStream<string, string> {
  let cr = false; // the last chunk ended in CR: an LF first in this one is its pair
  return new TransformStream({
    transform(text, ctl) {
      if (cr && text.startsWith("\n")) text = text.slice(1);
      cr = text.endsWith("\r");
      const lf = text.replace(/\r\n?/g, "\n");
      if (lf !== "") ctl.enqueue(lf);
    },
  });
}

/**
 * The longest line a corpus may have (in UTF-16 code units).
 *
 * @example
 * ```ts
 * import { MAX_LINE } from "./wikitext.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(MAX_LINE, 16 * 2 ** 20);
 * ```
 */
export const MAX_LINE = 16 << 20;

/**
 * Text passed through unchanged, but a line longer than {@linkcode MAX_LINE}
 * is an error naming the file: a file without line breaks (a binary file,
 * a gzip of zeros read as text) would otherwise become one string.
 */
function boundedLines(source: CorpusSource): TransformStream<string, string> {
  let run = 0; // characters since the last line break
  return new TransformStream({
    transform(text, ctl) {
      const first = text.indexOf("\n");
      const longest = first < 0 ? run + text.length : Math.max(
        run + first,
        text.length - text.lastIndexOf("\n") - 1,
      );
      run = first < 0 ? longest : text.length - text.lastIndexOf("\n") - 1;
      if (longest > MAX_LINE) {
        throw new DataError(
          `Corpus file ${
            fileName(source)
          } has a line longer than ${MAX_LINE} characters (expected text with line breaks)`,
        );
      }
      ctl.enqueue(text);
    },
  });
}

/**
 * A source's file path (decoded) or its URL, as messages name it.
 *
 * @param source The corpus.
 * @returns The path of a `file:` URL, else the URL.
 *
 * @example
 * ```ts
 * import { fileName } from "./wikitext.ts";
 * import { assertEquals } from "@std/assert";
 * const source = { url: "file:///d/p%2541q/test.txt", split: "test", layout: "text", gzip: false } as const;
 * assertEquals(fileName(source), "/d/p%41q/test.txt");
 * ```
 */
export function fileName(source: CorpusSource): string {
  const url = new URL(source.url);
  return url.protocol === "file:" ? fromFileUrl(url) : url.href;
}

/**
 * UTF-8 decoding as a pipe stage that (1) turns any upstream failure (an
 * unreadable file, a corrupt gzip stream) into a one-line DataError naming
 * the file, since a pipe aborts its destination with the source's error, and
 * (2) counts the invalid sequences decoded as U+FFFD: those produced, less
 * the EF BF BD sequences (a real U+FFFD) in the input.
 */
function decodeUtf8(
  source: CorpusSource,
  onWarning: ((message: string) => void) | undefined,
): { writable: WritableStream<Uint8Array>; readable: ReadableStream<string> } {
  const name = fileName(source);
  const decoder = new TextDecoder("utf-8");
  let produced = 0;
  let present = 0;
  let nul = 0; // NUL bytes: valid UTF-8, but no text holds them
  let utf16 = false; // the file starts with a UTF-16 byte order mark
  let started = false;
  let b2 = -1, b1 = -1; // the last two bytes before the current chunk
  const replacements = (text: string) => {
    for (
      let i = text.indexOf("\uFFFD");
      i >= 0;
      i = text.indexOf("\uFFFD", i + 1)
    ) {
      produced++;
    }
  };
  const decode = new TransformStream<Uint8Array, string>({
    transform(chunk, ctl) {
      if (!started && chunk.length >= 2) {
        started = true;
        utf16 = (chunk[0] === 0xff && chunk[1] === 0xfe) ||
          (chunk[0] === 0xfe && chunk[1] === 0xff);
      }
      for (let i = chunk.indexOf(0); i >= 0; i = chunk.indexOf(0, i + 1)) {
        nul++;
      }
      const at = (i: number) => i < 0 ? (i === -1 ? b1 : b2) : chunk[i];
      // EF BF BD starting at -2, -1 (across chunks) or inside the chunk.
      for (
        let i = chunk.indexOf(0xef);
        i >= 0;
        i = chunk.indexOf(0xef, i + 1)
      ) {
        if (chunk[i + 1] === 0xbf && chunk[i + 2] === 0xbd) present++;
      }
      for (const i of [-2, -1]) {
        if (at(i) === 0xef && at(i + 1) === 0xbf && at(i + 2) === 0xbd) {
          present++;
        }
      }
      if (chunk.length >= 2) [b2, b1] = [chunk.at(-2)!, chunk.at(-1)!];
      else if (chunk.length === 1) [b2, b1] = [b1, chunk[0]];
      const text = decoder.decode(chunk, { stream: true });
      replacements(text);
      if (text !== "") ctl.enqueue(text);
    },
    flush(ctl) {
      const text = decoder.decode();
      replacements(text);
      if (text !== "") ctl.enqueue(text);
      const invalid = produced - present;
      if (invalid > 0 || nul > 0) {
        // One warning per file: the invalid sequences, the NUL bytes (a file
        // of zeros, UTF-16 text) and, when it has one, the UTF-16 mark.
        const parts = [
          ...(invalid > 0
            ? [`${invalid} invalid byte sequence(s) were read as U+FFFD`]
            : []),
          ...(nul > 0 ? [`${nul} NUL byte(s) were read as U+0000`] : []),
        ];
        const hint = utf16
          ? "; it starts with a UTF-16 byte order mark: convert it (iconv -f UTF-16 -t UTF-8)"
          : nul > 0
          ? "; a binary file?"
          : "";
        (onWarning ?? ((m) => console.error(`warning: ${m}`)))(
          `corpus file ${name} is not ${
            nul > 0 ? "UTF-8 text" : "valid UTF-8"
          }: ${parts.join(", and ")}${hint} (expected UTF-8 text)`,
        );
      }
    },
  });
  const writer = decode.writable.getWriter();
  const writable = new WritableStream<Uint8Array>({
    write: (chunk) => writer.write(chunk),
    close: () => writer.close(),
    abort: async (reason) =>
      await writer.abort(
        new DataError(
          `Cannot read corpus file ${name}: ${await upstreamReason(
            source,
            reason,
          )} (expected ${source.gzip ? "gzip-compressed " : ""}UTF-8 text)`,
        ),
      ),
  });
  return { writable, readable: decode.readable };
}

/**
 * Why a corpus file could not be read, in one line. For a `.gz` file the
 * decompressor refused, what follows its first gzip member is found from
 * the stream's behaviour ({@linkcode gzipEnd}), not from its message
 * (Deno's says only "failed to write whole buffer").
 */
async function upstreamReason(
  source: CorpusSource,
  reason: unknown,
): Promise<string> {
  const message = (reason instanceof Error ? reason.message : String(reason))
    .split("\n")[0];
  const url = new URL(source.url);
  if (
    !source.gzip || url.protocol !== "file:" || reason instanceof DataError
  ) {
    return message;
  }
  const end = await gzipEnd(fileName(source));
  if (end === undefined) return message;
  const after =
    `it has bytes after the end of its gzip stream at byte ${end.end} of ${end.size}`;
  return end.member
    ? `${after}: another gzip member (several members, as cat a.gz b.gz or gzip -c a b make): recompress it as one (zcat FILE | gzip > NEW.gz)`
    : `${after}: ${
      end.size - end.end
    } byte(s) appended that are not gzip: cut them off (head -c ${end.end} FILE > NEW.gz)`;
}

/**
 * True for a WikiText article title line such as ` = Valkyria Chronicles III = `
 * (not a section heading such as ` = = Section = = `).
 *
 * @param line One line of the corpus, without its newline.
 * @returns Whether the line starts a new article.
 *
 * @example
 * ```ts
 * import { isArticleTitle } from "@d3pm/data";
 * import { assertEquals } from "@std/assert";
 * assertEquals(isArticleTitle(" = Valkyria Chronicles III = "), true);
 * assertEquals(isArticleTitle(" = = Gameplay = = "), false);
 * assertEquals(isArticleTitle(" = = = Plot = = = "), false);
 * assertEquals(isArticleTitle(" The game 's = sign = "), false);
 * ```
 */
export function isArticleTitle(line: string): boolean {
  return line.length > 6 && line.startsWith(" = ") && line.endsWith(" = ") &&
    line[3] !== "=" && line[line.length - 4] !== "=";
}

/**
 * Stream the articles of a corpus: each starts at a ` = Title = ` line and
 * runs to the next one; its text is its lines, each followed by `\n`.
 * Whitespace-only text before the first title is dropped. A plain-text
 * source (layout `text`) has no titles: it is read as one document, in
 * pieces of at most {@linkcode MAX_ARTICLE} characters cut at line breaks
 * (silently; for WikiText such a cut is a warning).
 *
 * @param source Where the corpus is.
 * @param options Progress reporting.
 * @returns The articles' texts, in file order.
 *
 * @example
 * ```ts
 * import { readArticles } from "@d3pm/data";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/wiki.test.tokens`;
 * await Deno.writeTextFile(path, " \n = A = \n x \n = = S = = \n = B = \n y \n");
 * const docs = await Array.fromAsync(readArticles(
 *   { url: `file://${path}`, split: "test", layout: "tokens", gzip: false },
 * ));
 * assertEquals(docs, [" = A = \n x \n = = S = = \n", " = B = \n y \n"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function* readArticles(
  source: CorpusSource,
  options: ReadOptions = {},
): AsyncGenerator<string> {
  let parts: string[] = [];
  let size = 0;
  let cut = false;
  // Plain text is not WikiText: a " = Title = " line in it is just a line.
  const plain = source.layout === "text";
  for await (const line of await readLines(source, options)) {
    // A file without ` = Title = ` lines (or with a giant article) is read
    // in documents of at most MAX_ARTICLE characters, cut at line breaks.
    const long = size + line.length + 1 > MAX_ARTICLE && parts.length > 0;
    const title = !plain && isArticleTitle(line);
    if ((title || long) && parts.length > 0) {
      if (long && !cut && !plain) {
        cut = true;
        (options.onWarning ?? ((m) => console.error(`warning: ${m}`)))(
          `corpus file ${
            fileName(source)
          } has an article (or a stretch without " = Title = " lines) longer than ${MAX_ARTICLE} characters; it is read in documents of that size, cut at line breaks`,
        );
      }
      const text = parts.join("");
      if (text.trim() !== "") yield text;
      parts = [];
      size = 0;
    }
    parts.push(line + "\n");
    size += line.length + 1;
  }
  const text = parts.join("");
  if (text.trim() !== "") yield text;
}

/**
 * The longest document {@linkcode readArticles} yields (in UTF-16 code
 * units): far above any WikiText article, so that a file without titles
 * is read in pieces rather than as one string.
 *
 * @example
 * ```ts
 * import { MAX_ARTICLE } from "./wikitext.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(MAX_ARTICLE, 4 * 2 ** 20);
 * ```
 */
export const MAX_ARTICLE = 4 << 20;
