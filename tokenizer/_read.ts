// Reads a text file next to the code or anywhere else: `file:` URLs through
// Deno.readFile, others through fetch; names ending in `.gz` are gunzipped.

import {
  BoundedReadError,
  fromFileUrl,
  gunzip,
  readBounded,
  toFileUrl,
} from "@d3pm/core";
/** Resolves a path or URL (relative paths against the working directory). */
export function toUrl(path: string | URL): URL {
  if (path instanceof URL) return path;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) return new URL(path);
  return toFileUrl(path);
}

/** Name of a URL for messages: its path for files, else the whole URL. */
export function displayName(url: URL): string {
  return url.protocol === "file:" ? fromFileUrl(url) : url.href;
}

/** The largest tokenizer file read (after gunzip): a BPE of 2^20 ids is ~40 MB. */
const LIMIT = 256 << 20;

/** The bytes of `url`, gunzipped when its name ends in `.gz`. */
export async function readBytes(url: URL): Promise<Uint8Array> {
  let bytes: Uint8Array;
  if (url.protocol === "file:") {
    // A regular file only, and bounded before and after gunzip.
    try {
      return await readBounded(url, {
        limit: LIMIT,
        what: "tokenizer file",
        gunzip: url.pathname.endsWith(".gz"),
      });
    } catch (e) {
      if (e instanceof BoundedReadError) throw new Error(e.message);
      throw new Error(
        `Cannot read ${displayName(url)}: ${(e as Error).message}`,
      );
    }
  }
  try {
    const res = await fetch(url);
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status}`);
    }
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new Error(
      `Cannot read ${displayName(url)}: ${(e as Error).message}`,
    );
  }
  if (!url.pathname.endsWith(".gz")) return bytes;
  try {
    return await gunzip(bytes);
  } catch (e) {
    throw new Error(
      `Cannot read ${displayName(url)}: not valid gzip (${
        (e as Error).message
      })`,
    );
  }
}

/** The UTF-8 text of `url`, gunzipped when its name ends in `.gz`. */
export async function readText(url: URL): Promise<string> {
  return new TextDecoder().decode(await readBytes(url));
}
