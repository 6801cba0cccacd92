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
  | { line: string; end: number; number: number }
  /** A complete line longer than `maxLine`, not read: its number and the offset after it. */
  | { skipped: number; end: number }
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
}

/**
 * Yield the complete lines of `path` from `from` on, then wait for lines
 * appended later (polling the size), until `signal` aborts. A torn last
 * line is held back until its newline arrives; a file that does not exist
 * yet is waited for (unless its `folder` is gone: then `{ gone: true }`
 * ends it); a file that shrinks yields `{ reset: true }` and is read again
 * from the start.
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
  const pollMs = options.pollMs ?? 250;
  const maxLine = options.maxLine ?? 1 << 20;
  const signal = options.signal;
  let offset = Math.max(0, Math.floor(options.from ?? 0));
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let skipping = false; // inside a line longer than maxLine
  let number = 0; // lines ended since `from`
  const decoder = new TextDecoder();
  while (!signal?.aborted) {
    let size: number | undefined;
    try {
      size = (await Deno.stat(path)).size;
    } catch {
      size = undefined;
    }
    if (size !== undefined && size < offset) {
      offset = 0;
      number = 0;
      pending = [];
      pendingBytes = 0;
      skipping = false;
      yield { reset: true };
      continue;
    }
    if (size !== undefined && size > offset) {
      const chunk = await readRange(
        path,
        offset,
        Math.min(size, offset + (4 << 20)),
      );
      let start = 0;
      // indexOf, not a loop over bytes: a 600 MB log is scanned in ~0.1 s.
      for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) {
        number++;
        const piece = chunk.subarray(start, i);
        const lineEnd = offset + i + 1;
        if (!skipping && pendingBytes + piece.length <= maxLine) {
          const bytes = pending.length ? concat([...pending, piece]) : piece;
          const line = decoder.decode(bytes);
          if (line.trim() !== "") yield { line, end: lineEnd, number };
        } else yield { skipped: number, end: lineEnd };
        pending = [];
        pendingBytes = 0;
        skipping = false;
        start = i + 1;
        if (signal?.aborted) return;
      }
      const rest = chunk.subarray(start);
      if (!skipping && pendingBytes + rest.length <= maxLine) {
        pending.push(rest.slice());
        pendingBytes += rest.length;
      } else {
        pending = [];
        pendingBytes = 0;
        skipping = true;
      }
      offset += chunk.length;
      continue;
    }
    if (options.once) return;
    if (size === undefined && options.folder !== undefined) {
      if (!(await isFolder(options.folder))) {
        yield { gone: true };
        return;
      }
    }
    await sleep(pollMs, signal);
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

async function readRange(
  path: string,
  from: number,
  to: number,
): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  return await readAt(file, from, to - from);
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
