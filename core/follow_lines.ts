/**
 * Following an append-only file (a run's `metrics.jsonl`) as it grows:
 * complete lines only, each with the byte offset after it, so a reader that
 * reconnects continues where it left off and never reads the file again
 * from the start.
 *
 * @module
 */

/** What {@linkcode followLines} yields. */
export type Followed =
  /**
   * A complete line (without its newline), the byte offset after it, and
   * its number (1-based, counted from {@linkcode FollowOptions.from}; blank
   * lines, never yielded, are counted too).
   */
  | {
    line: string;
    end: number;
    number: number;
    /** With {@linkcode FollowOptions.checks}: {@linkcode tailCheck} of the bytes before `end`. */
    check?: string;
  }
  /** A complete line longer than `maxLine`, not read: its number and the offset after it. */
  | { skipped: number; end: number; check?: string }
  /** The file shrank or was replaced: what came before is gone; lines start again at 0. */
  | { reset: true }
  /** The folder of {@linkcode FollowOptions.folder} is gone (deleted or moved): nothing more follows. */
  | { gone: true };

/** Options of {@linkcode followLines}. */
export interface FollowOptions {
  /** Byte offset to start at (default 0; a line boundary, e.g. an `end` seen before). */
  from?: number;
  /** Stops following (the generator returns). */
  signal?: AbortSignal;
  /** How often the file's size is checked, ms (default 250). */
  pollMs?: number;
  /** Longest line kept; a longer one is skipped (default 1 MiB). */
  maxLine?: number;
  /** Stop at the end of the file instead of waiting for more (default false). */
  once?: boolean;
  /**
   * The folder the file lives in: while the file is missing, this folder
   * is checked too, and once it is gone (or is no folder) the generator
   * yields `{ gone: true }` and returns, instead of waiting for a file
   * that has nowhere to appear. A missing file in a folder that exists is
   * waited for, as without this option.
   */
  folder?: string;
  /**
   * How the file is opened, and opened again once replaced (default:
   * `Deno.open` for reading; not found gives undefined). Undefined means
   * "not there (yet)"; what it throws ends the generator with that error.
   * A server passes one that refuses a link out of where it serves.
   */
  open?: (path: string) => Promise<Deno.FsFile | undefined>;
  /**
   * Which file `from` is an offset of ({@linkcode fileIdentity} of it, as
   * {@linkcode FollowOptions.onOpen} gave it): when the file now at `path`
   * is another, `{ reset: true }` comes first and it is read from 0.
   * Without it, `from` is taken to be of whatever file is there.
   */
  identity?: string;
  /**
   * Called with the {@linkcode fileIdentity} of each file opened, before
   * any of its lines (and before the `reset` of a file that replaced
   * another): what is yielded after belongs to it.
   */
  onOpen?: (identity: string) => void;
  /**
   * The {@linkcode tailCheck} of the bytes just before `from` in the file
   * it is an offset of (a line's `check`): when the file there now holds
   * other bytes before `from` — a log replaced by one that got the same
   * inode (ext4 hands a freed inode out again at once), or overwritten in
   * place by a longer one — `{ reset: true }` comes first and it is read
   * from 0. Without it, the bytes before `from` are taken as they are.
   */
  check?: string;
  /** Give each line its `check` (default false). */
  checks?: boolean;
}

/** How many bytes before an offset {@linkcode tailCheck} covers. */
const TAIL = 64;

/**
 * What a reader keeps of the bytes just before an offset (the last 64,
 * fewer near the start): a 32-bit FNV-1a hash of them, 8 hex digits. A
 * file whose bytes there changed — replaced by another with the same
 * device and inode, or rewritten in place — is no longer the file the
 * offset was taken in.
 *
 * @param bytes The bytes just before the offset (only the last 64 count).
 * @returns Eight hex digits.
 *
 * @example
 * ```ts
 * import { tailCheck } from "@d3pm/core";
 * import { assertEquals, assertNotEquals } from "@std/assert";
 * const enc = new TextEncoder();
 * assertEquals(tailCheck(new Uint8Array()), "811c9dc5");
 * assertNotEquals(tailCheck(enc.encode('{"a":1}\n')), tailCheck(enc.encode('{"a":2}\n')));
 * ```
 */
export function tailCheck(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const b of bytes.subarray(Math.max(0, bytes.length - TAIL))) {
    h = Math.imul(h ^ b, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/**
 * A file's identity, its device and inode (`DEV-INO`): a file replaced by
 * another of the same path (`mv`, a rerun writing a new log) has another,
 * however long it is. Empty where the platform gives no inode.
 *
 * @param info The file's `stat()`.
 * @returns `DEV-INO`, or "".
 *
 * @example
 * ```ts
 * import { fileIdentity } from "@d3pm/core";
 * import { assertMatch } from "@std/assert";
 * const path = await Deno.makeTempFile();
 * assertMatch(fileIdentity(await Deno.stat(path)), /^\d+-\d+$/);
 * await Deno.remove(path);
 * ```
 */
export function fileIdentity(info: Deno.FileInfo): string {
  return info.ino === null ? "" : `${info.dev}-${info.ino}`;
}

async function openByPath(path: string): Promise<Deno.FsFile | undefined> {
  try {
    return await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** The file followed: its handle and identity (read from the handle, never by path again). */
interface Opened {
  file: Deno.FsFile;
  identity: string;
}

/**
 * Yield the complete lines of `path` from `from` on, then wait for lines
 * appended later (polling the size), until `signal` aborts. A torn last
 * line is held back until its newline arrives; a file that does not exist
 * yet is waited for (unless its `folder` is gone: then `{ gone: true }`
 * ends it); a file that shrinks, or is replaced by another file (another
 * device and inode, longer or not), yields `{ reset: true }` and is read
 * again from the start. The file is read through one open handle, opened
 * again (by `open`) only when the path names another file.
 *
 * @param path The file.
 * @param options Start offset, abort signal, poll interval, line limit.
 * @returns The lines, as they arrive.
 *
 * @example
 * ```ts
 * import { followLines } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, '{"step":1}\n{"step":2}\n{"ste');
 * const got = [];
 * for await (const f of followLines(path, { once: true })) got.push(f);
 * assertEquals(got, [
 *   { line: '{"step":1}', end: 11, number: 1 },
 *   { line: '{"step":2}', end: 22, number: 2 },
 * ]);
 * await Deno.remove(path);
 * ```
 */
export async function* followLines(
  path: string,
  options: FollowOptions = {},
): AsyncGenerator<Followed> {
  const open = options.open ?? openByPath;
  const lines = new LineSplitter(options.maxLine ?? 1 << 20);
  let offset = Math.max(0, Math.floor(options.from ?? 0));
  let expected = options.identity; // what `from` is an offset of
  let current: Opened | undefined;
  // The bytes just before `offset` as read (undefined: not read yet, then
  // checked against `options.check` where given); a read that finds other
  // bytes there reads another file, whatever its identity.
  let tail: Uint8Array | undefined = offset === 0
    ? new Uint8Array()
    : undefined;
  try {
    while (!options.signal?.aborted) {
      const now = await statOf(path);
      if (now && (!current || fileIdentity(now) !== current.identity)) {
        const next = await reopen(path, open);
        if (next) {
          const replaced = current !== undefined ||
            (expected !== undefined && expected !== next.identity);
          current?.file.close();
          current = next;
          expected = undefined;
          options.onOpen?.(next.identity);
          if (replaced && (offset > 0 || lines.started)) {
            offset = 0;
            tail = new Uint8Array();
            lines.clear();
            yield { reset: true };
          }
        }
      }
      // The path's size is the handle's while both name one file.
      const size = current && now && fileIdentity(now) === current.identity
        ? now.size
        : undefined;
      // Shorter, or other bytes before the offset: another log.
      if (
        size !== undefined &&
        (size < offset ||
          !(await sameTail(current!, offset, size, tail, options.check)))
      ) {
        offset = 0;
        tail = new Uint8Array();
        lines.clear();
        yield { reset: true };
        continue;
      }
      if (size !== undefined && tail === undefined) {
        const t = await readAt(current!.file, Math.max(0, offset - TAIL), TAIL);
        tail = t.subarray(0, Math.min(t.length, offset));
      }
      if (size !== undefined && size > offset) {
        const chunk = await readAt(
          current!.file,
          offset,
          Math.min(size, offset + (4 << 20)) - offset,
        );
        const read = lines.push(chunk, offset);
        const all = options.checks ? checked(read, tail!, chunk, offset) : read;
        for (const f of all) {
          yield f;
          if (options.signal?.aborted) return;
        }
        offset += chunk.length;
        tail = chunk.length >= TAIL
          ? chunk.slice(-TAIL)
          : concat([tail!, chunk]).slice(-TAIL);
        continue;
      }
      if (options.once) return;
      if (!now && options.folder !== undefined) {
        if (!(await isFolder(options.folder))) {
          yield { gone: true };
          return;
        }
      }
      await sleep(options.pollMs ?? 250, options.signal);
    }
  } finally {
    current?.file.close();
  }
}

/**
 * The lines of `chunk` (read at `offset`), each with the
 * {@linkcode tailCheck} of the 64 bytes before its end; `before` holds the
 * bytes just before the chunk.
 */
function* checked(
  read: Iterable<Followed>,
  before: Uint8Array,
  chunk: Uint8Array,
  offset: number,
): Generator<Followed> {
  for (const f of read) {
    if ("end" in f) {
      const at = f.end - offset; // the line's end within the chunk
      f.check = tailCheck(
        at >= TAIL ? chunk.subarray(at - TAIL, at) : concat([
          before.subarray(Math.max(0, before.length - (TAIL - at))),
          chunk.subarray(0, at),
        ]),
      );
    }
    yield f;
  }
}

/**
 * Whether the bytes before `offset` are still those read (`tail`), or,
 * before any read, those whose {@linkcode tailCheck} is `check` (none
 * given: taken as they are).
 */
async function sameTail(
  { file }: Opened,
  offset: number,
  size: number,
  tail: Uint8Array | undefined,
  check: string | undefined,
): Promise<boolean> {
  // Looked at before each read, and once before the first (a resume).
  if (size === offset && tail !== undefined) return true;
  if (offset === 0 || (tail === undefined && check === undefined)) return true;
  const n = tail?.length ?? Math.min(offset, TAIL);
  const now = await readAt(file, offset - n, n);
  if (tail === undefined) return tailCheck(now) === check;
  return now.length === n && now.every((b, i) => b === tail[i]);
}

/** The file at `path` opened by `open`, with its handle's identity. */
async function reopen(
  path: string,
  open: (path: string) => Promise<Deno.FsFile | undefined>,
): Promise<Opened | undefined> {
  const file = await open(path);
  if (!file) return undefined;
  try {
    return { file, identity: fileIdentity(await file.stat()) };
  } catch (e) {
    file.close();
    throw e;
  }
}

async function statOf(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch {
    return undefined;
  }
}

/** Complete lines out of chunks read in order; a line over `maxLine` skipped. */
class LineSplitter {
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #skipping = false; // inside a line longer than maxLine
  #number = 0; // lines ended since `from`
  #decoder = new TextDecoder();
  constructor(readonly maxLine: number) {}
  /** Whether anything was read since the start or the last clear. */
  get started(): boolean {
    return this.#number > 0 || this.#pendingBytes > 0 || this.#skipping;
  }
  clear(): void {
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#skipping = false;
    this.#number = 0;
  }
  /** The lines a chunk read at `offset` ends. */
  *push(chunk: Uint8Array, offset: number): Generator<Followed> {
    let start = 0;
    // indexOf, not a loop over bytes: a 600 MB log is scanned in ~0.1 s.
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) {
      const number = ++this.#number;
      const piece = chunk.subarray(start, i);
      const end = offset + i + 1;
      if (
        !this.#skipping && this.#pendingBytes + piece.length <= this.maxLine
      ) {
        const bytes = this.#pending.length
          ? concat([...this.#pending, piece])
          : piece;
        const line = this.#decoder.decode(bytes);
        if (line.trim() !== "") yield { line, end, number };
      } else yield { skipped: number, end };
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#skipping = false;
      start = i + 1;
    }
    const rest = chunk.subarray(start);
    if (!this.#skipping && this.#pendingBytes + rest.length <= this.maxLine) {
      this.#pending.push(rest.slice());
      this.#pendingBytes += rest.length;
    } else {
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#skipping = true;
    }
  }
}

/** Whether `path` is a folder now; only a missing path or a non-folder is false. */
async function isFolder(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (e) {
    // Anything but "not there" (a permission error, say) is not taken as
    // gone: the stream keeps waiting, as it did.
    return !(e instanceof Deno.errors.NotFound ||
      e instanceof Deno.errors.NotADirectory);
  }
}

/**
 * Up to `length` bytes of an open file from byte `at` (fewer where it ends
 * sooner), read into one buffer.
 *
 * @param file The open file.
 * @param at Byte offset.
 * @param length Bytes wanted.
 * @returns The bytes read.
 *
 * @example
 * ```ts
 * import { readAt } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abcdef");
 * using file = await Deno.open(path);
 * assertEquals(new TextDecoder().decode(await readAt(file, 2, 10)), "cdef");
 * await Deno.remove(path);
 * ```
 */
export async function readAt(
  file: Deno.FsFile,
  at: number,
  length: number,
): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  await file.seek(at, Deno.SeekMode.Start);
  let got = 0;
  while (got < buf.length) {
    const n = await file.read(buf.subarray(got));
    if (n === null || n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Wait `ms`, or less when `signal` aborts.
 *
 * @param ms Milliseconds.
 * @param signal Ends the wait early.
 * @returns When done.
 *
 * @example
 * ```ts
 * import { sleep } from "@d3pm/core";
 * import { assert } from "@std/assert";
 * const t0 = performance.now();
 * await sleep(60_000, AbortSignal.abort()); // already aborted: at once
 * assert(performance.now() - t0 < 1000);
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
