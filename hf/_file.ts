// Random access to a file: bounded reads at offsets, so a reader never holds
// more of a checkpoint than the tensor it converts.

import { BoundedReadError, notRegularFile, readTextBounded } from "@d3pm/core";
import { InteropError } from "./errors.ts";

/** An open file read at offsets. */
export class RandomAccessFile {
  /** Its size in bytes. */
  readonly size: number;
  #file: Deno.FsFile;

  private constructor(readonly path: string, file: Deno.FsFile, size: number) {
    this.#file = file;
    this.size = size;
  }

  /**
   * Open `path` for reading: a regular file only, checked before it is
   * opened (opening a FIFO blocks until a writer comes; a device never ends).
   *
   * @throws {InteropError} For anything but a regular file, or nothing there.
   */
  static async open(path: string): Promise<RandomAccessFile> {
    await regularFile(path);
    const file = await Deno.open(path, { read: true });
    try {
      const info = await file.stat();
      if (!info.isFile) throw new InteropError(`${path} is not a file`);
      return new RandomAccessFile(path, file, info.size);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** Bytes `[offset, offset + length)`; the range must lie inside the file. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new InteropError(
        `${this.path}: bytes [${offset}, ${
          offset + length
        }) lie outside the file of ${this.size} bytes (truncated file?)`,
      );
    }
    const out = new Uint8Array(length);
    await this.#file.seek(offset, Deno.SeekMode.Start);
    let at = 0;
    while (at < length) {
      const n = await this.#file.read(out.subarray(at));
      if (n === null) {
        throw new InteropError(
          `${this.path} ended at byte ${
            offset + at
          } while ${length} bytes from ${offset} were read (truncated file?)`,
        );
      }
      at += n;
    }
    return out;
  }

  /** Close it. */
  close(): void {
    try {
      this.#file.close();
    } catch { /* already closed */ }
  }
}

/**
 * Why `path` cannot be read as a file: nothing there, or not a regular file
 * (core's {@linkcode notRegularFile}: a folder, a FIFO, a device); undefined
 * for a regular file. Symbolic links are followed.
 */
export async function notRegular(path: string): Promise<string | undefined> {
  try {
    return await notRegularFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "nothing is there";
    return (e instanceof Error ? e.message : String(e)).split("\n")[0];
  }
}

async function regularFile(path: string): Promise<void> {
  const why = await notRegular(path);
  if (why) {
    throw new InteropError(
      `Cannot read ${path}: ${why} (expected a regular file)`,
    );
  }
}

/**
 * Read a small text file whole through core's bounded reader: a regular
 * file of at most `limit` bytes (a FIFO, a device or a folder is refused,
 * never read). A missing file throws `Deno.errors.NotFound`.
 */
export async function readSmallText(
  path: string,
  limit: number,
): Promise<string> {
  try {
    return await readTextBounded(path, { limit });
  } catch (e) {
    if (e instanceof BoundedReadError) throw new InteropError(e.message);
    throw e;
  }
}

/** Parse a small JSON file whose top level must be an object. */
export async function readJsonObject(
  path: string,
  limit: number,
): Promise<Record<string, unknown>> {
  const text = await readSmallText(path, limit);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InteropError(
      `${path} is not valid JSON (${
        (e instanceof Error ? e.message : String(e)).split("\n")[0]
      })`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InteropError(`${path} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}
