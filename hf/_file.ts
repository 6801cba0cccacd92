// Random access to a file: bounded reads at offsets, so a reader never holds
// more of a checkpoint than the tensor it converts.

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

  /** Open `path` for reading. */
  static async open(path: string): Promise<RandomAccessFile> {
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

/** Read a small text file whole, refusing one over `limit` bytes. */
export async function readSmallText(
  path: string,
  limit: number,
): Promise<string> {
  const info = await Deno.stat(path);
  if (info.size > limit) {
    throw new InteropError(
      `${path} is ${info.size} bytes, more than the ${limit} a file of its kind may have`,
    );
  }
  return await Deno.readTextFile(path);
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
