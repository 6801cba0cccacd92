/**
 * Finding what follows a gzip file's first member (private to the package):
 * Deno's DecompressionStream reads one member and fails on any byte after
 * it, saying only "failed to write whole buffer" (denoland/deno#29829), a
 * text that may change. The checks here rest on what the stream does, not
 * on what it says.
 *
 * @module
 */
import { gunzipStream } from "@d3pm/core";

/** Where a gzip file's first member ends, and what follows it. */
export interface GzipEnd {
  /** The offset of the first byte after the first member. */
  end: number;
  /** The file's size in bytes (more than `end`). */
  size: number;
  /** Whether the bytes after it start another member (`1f 8b`). */
  member: boolean;
}

/**
 * Where the first gzip member of a file ends, when bytes follow it; else
 * `undefined` (one whole member, a truncated or corrupt one, an unreadable
 * file). Only for a file the decompressor refused: it reads the file two or
 * three times. The stream takes a member's bytes and refuses the first byte
 * after its trailer (a write fails, where a truncated or bad-checksum member
 * fails only at the close): the file is fed until a write fails, then again,
 * byte by byte from the chunk that failed, to find that byte; its prefix must
 * then decompress cleanly on its own (checksum and size checked).
 *
 * @param path The file.
 * @returns The end of the first member and what follows, or `undefined`.
 *
 * @example Two members, as `cat a.gz b.gz` makes
 * ```ts
 * import { gzipEnd } from "./_gzip_end.ts";
 * import { assertEquals } from "@std/assert";
 * const gz = async (t: string) =>
 *   await new Response(
 *     new Blob([t]).stream().pipeThrough(new CompressionStream("gzip")),
 *   ).bytes();
 * const a = await gz("a\n");
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, new Uint8Array([...a, ...await gz("b\n")]));
 * const end = await gzipEnd(path);
 * assertEquals(end?.end, a.length);
 * assertEquals(end?.member, true);
 * await Deno.writeFile(path, a);
 * assertEquals(await gzipEnd(path), undefined);
 * await Deno.remove(path);
 * ```
 */
export async function gzipEnd(path: string): Promise<GzipEnd | undefined> {
  try {
    const refused = await feed(path, Infinity);
    if (refused === undefined) return undefined;
    const end = await feed(path, refused);
    if (end === undefined || !await decodesWhole(path, end)) return undefined;
    using file = await Deno.open(path);
    const size = (await file.stat()).size;
    await file.seek(end, Deno.SeekMode.Start);
    const next = new Uint8Array(2);
    const got = (await file.read(next)) ?? 0;
    return {
      end,
      size,
      member: got === 2 && next[0] === 0x1f && next[1] === 0x8b,
    };
  } catch {
    return undefined;
  }
}

/**
 * Write a file to a fresh decompressor, in the chunks it is read in until
 * offset `byteFrom`, then byte by byte; the offset of the first byte of the
 * write that failed, or `undefined` when none did.
 */
async function feed(
  path: string,
  byteFrom: number,
): Promise<number | undefined> {
  const ds = new DecompressionStream("gzip");
  const writer = ds.writable.getWriter();
  // Read the output as it comes: a write waits for room downstream.
  const drain = ds.readable.pipeTo(new WritableStream()).catch(() => {});
  const file = await Deno.open(path); // closed by its readable
  let at = 0;
  let refused: number | undefined;
  read: for await (const chunk of file.readable) {
    const pieces = at + chunk.length <= byteFrom ? [chunk] : Array.from(
      { length: chunk.length },
      (_, i) => chunk.subarray(i, i + 1),
    );
    for (const piece of pieces) {
      try {
        await writer.write(piece);
      } catch {
        refused = at;
        break read;
      }
      at += piece.length;
    }
  }
  if (refused === undefined) await writer.close().catch(() => {});
  await drain;
  return refused;
}

/** Whether the first `end` bytes of a file decompress cleanly. */
async function decodesWhole(path: string, end: number): Promise<boolean> {
  const file = await Deno.open(path); // closed by its readable
  let left = end;
  const head = file.readable.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        if (left > 0) ctl.enqueue(chunk.subarray(0, left));
        left -= Math.min(left, chunk.length);
        if (left === 0) ctl.terminate();
      },
    }),
  );
  try {
    await gunzipStream(head).pipeTo(new WritableStream());
    return left === 0;
  } catch {
    return false;
  }
}
