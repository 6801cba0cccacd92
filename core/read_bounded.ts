/**
 * Reading a file whose size nobody promised: only a regular file (a FIFO
 * would block, a device never ends), and never more than a stated number of
 * bytes — of the file, and after gunzip of what it inflates to. Every
 * reader of a run folder or a user's file goes through here, so a
 * `config.json` pointing at `/dev/zero` or a gzip bomb fails in one line.
 *
 * @module
 */
import { gunzipStream } from "./gzip.ts";
import { pathOf } from "./file_url.ts";

/**
 * A file that is not a regular file, or larger than its reader accepts.
 *
 * @example A reader tells a refused file from a missing one
 * ```ts
 * import { BoundedReadError, readTextBounded } from "@d3pm/core";
 * import { assert, assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * const refused = await readTextBounded(dir, { limit: 16 }).catch((e) => e);
 * assert(refused instanceof BoundedReadError);
 * assertEquals(refused.name, "BoundedReadError");
 * assertEquals(refused.message, `Cannot read ${dir}: it is a folder (expected a regular file)`);
 * await Deno.remove(dir);
 * ```
 */
export class BoundedReadError extends Error {
  /**
   * A read refused; the message is one line naming the file.
   *
   * @param message What is wrong and what is accepted.
   */
  constructor(message: string) {
    super(message);
    this.name = "BoundedReadError";
  }
}

/** Options of {@linkcode readBounded}. */
export interface ReadBoundedOptions {
  /** The most bytes accepted (after gunzip when `gunzip` is set). */
  limit: number;
  /** What the file is, for messages (default "file"), e.g. `run configuration`. */
  what?: string;
  /** Gunzip the file as it is read; `limit` bounds the inflated bytes. */
  gunzip?: boolean;
}

/**
 * A byte count for people: `512 B`, `4.0 KiB`, `1.5 GiB`.
 *
 * @param bytes The count.
 * @returns It, in the largest binary unit below it.
 *
 * @example
 * ```ts
 * import { formatBytes } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(formatBytes(512), "512 B");
 * assertEquals(formatBytes(3 * 2 ** 30 / 2), "1.5 GiB");
 * ```
 */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let x = bytes;
  let u = 0;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return u === 0 ? `${x} B` : `${x.toFixed(1)} ${units[u]}`;
}

/**
 * Why `path` cannot be read as a regular file, as the phrase a message
 * holds (`it is a FIFO`, `it is a character device`, `it is a folder`), or
 * undefined for a regular file. Symbolic links are followed (a Hugging Face
 * cache links every file into its blobs). Check before opening: opening a
 * FIFO blocks until a writer comes, and a device never ends.
 *
 * @param path The file.
 * @returns The reason, or undefined when it is a regular file.
 * @throws {Deno.errors.NotFound} When nothing is there (callers tell
 *   "absent" from "bad"); any other error of `Deno.stat` as it is.
 *
 * @example
 * ```ts
 * import { notRegularFile } from "@d3pm/core";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "hi");
 * await Deno.symlink(`${dir}/a.txt`, `${dir}/link`);
 * assertEquals(await notRegularFile(`${dir}/a.txt`), undefined);
 * assertEquals(await notRegularFile(`${dir}/link`), undefined);
 * assertEquals(await notRegularFile(dir), "it is a folder");
 * await assertRejects(() => notRegularFile(`${dir}/none`), Deno.errors.NotFound);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function notRegularFile(
  path: string | URL,
): Promise<string | undefined> {
  const info = await Deno.stat(path);
  return info.isFile ? undefined : `it is ${kindOf(info)}`;
}

/**
 * What a path's stat says it is, as a message names it: `a folder`,
 * `a FIFO`, `a character device`, `a block device`, `a socket`, or `not a
 * regular file` (a regular file included: callers ask about what is not
 * the kind they expect).
 *
 * @param info The path's `Deno.stat`.
 * @returns The phrase.
 *
 * @example
 * ```ts
 * import { kindOf } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(kindOf(await Deno.stat(Deno.cwd())), "a folder");
 * assertEquals(kindOf(await Deno.stat("/dev/null")), "a character device");
 * ```
 */
export function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a folder";
  if (info.isFifo) return "a FIFO";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

/** The file's stat, refusing anything but a regular file. */
async function regularFile(
  path: string | URL,
  what: string | undefined,
): Promise<{ shown: string; info: Deno.FileInfo }> {
  const shown = pathOf(path);
  const info = await Deno.stat(path);
  if (!info.isFile) {
    throw new BoundedReadError(
      `Cannot read ${shown}: it is ${kindOf(info)} (expected ${
        what ? `a ${what}, a regular file` : "a regular file"
      })`,
    );
  }
  return { shown, info };
}

/**
 * The first bytes of a regular file and its size, for a reader that learns
 * from a header how large the file must be before it reads the rest (with
 * {@linkcode readBounded}, that size as the limit).
 *
 * @param path The file.
 * @param options How many bytes at most (`bytes`), and what the file is.
 * @returns Up to `bytes` bytes from its start (fewer when it is shorter),
 *   and its size when opened.
 * @throws {BoundedReadError} For a FIFO, a device, a folder, or a read error.
 * @throws {Deno.errors.NotFound} When nothing is there.
 *
 * @example
 * ```ts
 * import { readHeadBounded } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.bin`, "HEADbody");
 * const { head, size } = await readHeadBounded(`${dir}/a.bin`, { bytes: 4 });
 * assertEquals([new TextDecoder().decode(head), size], ["HEAD", 8]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readHeadBounded(
  path: string | URL,
  options: { bytes: number; what?: string },
): Promise<{ head: Uint8Array; size: number }> {
  const { shown } = await regularFile(path, options.what);
  using file = await Deno.open(path);
  const size = (await file.stat()).size;
  const head = new Uint8Array(Math.min(options.bytes, size));
  let got = 0;
  try {
    while (got < head.length) {
      const n = await file.read(head.subarray(got));
      if (n === null) break;
      got += n;
    }
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    throw new BoundedReadError(`Cannot read ${shown}: ${why}`);
  }
  return { head: head.subarray(0, got), size };
}

/**
 * The bytes of a regular file, refusing anything else and anything larger
 * than `limit` (a file that grows while read is cut off at the limit and
 * refused, not read on).
 *
 * @param path The file.
 * @param options The limit, what the file is, whether to gunzip.
 * @returns Its bytes (inflated, with `gunzip`).
 * @throws {BoundedReadError} For a FIFO, a device, a folder, a file over the
 *   limit, or gzip that does not inflate.
 * @throws {Deno.errors.NotFound} When nothing is there (callers tell
 *   "absent" from "bad").
 *
 * @example
 * ```ts
 * import { BoundedReadError, readBounded } from "@d3pm/core";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.json`, "[1, 2]");
 * assertEquals((await readBounded(`${dir}/a.json`, { limit: 6 })).length, 6);
 * await assertRejects(
 *   () => readBounded(`${dir}/a.json`, { limit: 5, what: "run configuration" }),
 *   BoundedReadError,
 *   "is larger than the 5 B a run configuration may be",
 * );
 * await assertRejects(() => readBounded(dir, { limit: 5 }), BoundedReadError, "is a folder");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readBounded(
  path: string | URL,
  options: ReadBoundedOptions,
): Promise<Uint8Array> {
  const what = options.what ?? "file";
  const { shown, info } = await regularFile(path, options.what);
  const tooLarge = (inflated: boolean) =>
    new BoundedReadError(
      `Cannot read ${shown}: it ${
        inflated ? "inflates to more" : "is larger"
      } than the ${formatBytes(options.limit)} a ${what} may be`,
    );
  if (!options.gunzip && info.size > options.limit) throw tooLarge(false);
  const file = await Deno.open(path); // closed when its stream ends or is cancelled
  let stream: ReadableStream<Uint8Array> = file.readable;
  if (options.gunzip) stream = gunzipStream(stream);
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of stream) {
      total += chunk.length;
      if (total > options.limit) {
        throw tooLarge(options.gunzip === true);
      }
      parts.push(chunk);
    }
  } catch (e) {
    if (e instanceof BoundedReadError) throw e;
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    throw new BoundedReadError(
      `Cannot read ${shown}: ${
        options.gunzip ? `not valid gzip (${why})` : why
      }`,
    );
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The most bytes {@linkcode readTextBounded} reads into one string, whatever
 * limit it is given: V8's longest string, 2^29 - 24 UTF-16 units (UTF-8
 * decodes to at most one unit per byte, so a file this long always fits).
 *
 * @example
 * ```ts
 * import { MAX_TEXT_BYTES } from "@d3pm/core";
 * import { assert } from "@std/assert";
 * assert(MAX_TEXT_BYTES < 1 << 30); // a 1 GiB limit reads 512 MiB at most
 * ```
 */
export const MAX_TEXT_BYTES: number = 2 ** 29 - 24;

/**
 * The text of a regular UTF-8 file of at most `limit` bytes (see
 * {@linkcode readBounded}).
 *
 * @param path The file.
 * @param options The limit and what the file is; a limit over
 *   {@linkcode MAX_TEXT_BYTES} is taken as that.
 * @returns Its text.
 * @throws {BoundedReadError} As {@linkcode readBounded}, and for a file
 *   over {@linkcode MAX_TEXT_BYTES} (refused unread, naming it).
 *
 * @example
 * ```ts
 * import { readTextBounded } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "héllo");
 * assertEquals(await readTextBounded(`${dir}/a.txt`, { limit: 100 }), "héllo");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readTextBounded(
  path: string | URL,
  options: ReadBoundedOptions,
): Promise<string> {
  const limit = Math.min(options.limit, MAX_TEXT_BYTES);
  const { shown, info } = await regularFile(path, options.what);
  if (limit < options.limit && !options.gunzip && info.size > limit) {
    // Refused by its size, unread: decoding it would fail after reading
    // it all ("buffer exceeds maximum length", naming nothing).
    throw new BoundedReadError(
      `Cannot read ${shown}: it is larger than the ${
        formatBytes(limit)
      } a string can hold, and a ${
        options.what ?? "file"
      } is read whole as one string`,
    );
  }
  const bytes = await readBounded(path, { ...options, limit });
  try {
    return new TextDecoder().decode(bytes);
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    throw new BoundedReadError(
      `Cannot read ${shown}: its ${
        formatBytes(bytes.length)
      } do not decode to one string (${why})`,
    );
  }
}

/**
 * The JSON value of a regular file of at most `limit` bytes; a parse error
 * names the file (see {@linkcode readBounded}).
 *
 * @param path The file.
 * @param options The limit and what the file is.
 * @returns The parsed value (anything JSON holds: check its shape).
 * @throws {BoundedReadError} As {@linkcode readBounded}, or when the text is
 *   not JSON.
 *
 * @example
 * ```ts
 * import { BoundedReadError, readJsonBounded } from "@d3pm/core";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/p.json`, '{"steps": 50}');
 * assertEquals(await readJsonBounded(`${dir}/p.json`, { limit: 1024 }), { steps: 50 });
 * await Deno.writeTextFile(`${dir}/p.json`, "{steps");
 * await assertRejects(
 *   () => readJsonBounded(`${dir}/p.json`, { limit: 1024, what: "process description" }),
 *   BoundedReadError,
 *   `${dir}/p.json is not valid JSON (expected a process description)`,
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readJsonBounded(
  path: string | URL,
  options: ReadBoundedOptions,
): Promise<unknown> {
  const text = await readTextBounded(path, options);
  try {
    return JSON.parse(text);
  } catch (e) {
    const shown = pathOf(path);
    throw new BoundedReadError(
      `${shown} is not valid JSON (expected a ${
        options.what ?? "JSON file"
      }): ${oneLine((e as Error).message)}`,
    );
  }
}

/** V8 quotes the text it failed on, line breaks included: keep every line
 * (the closing quote and "is not valid JSON" come last) on one line. */
function oneLine(message: string): string {
  return message.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
