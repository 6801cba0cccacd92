/**
 * Atomic file writes: a reader sees the old file or the new one, never a
 * torn one, and a failed write leaves no temporary file behind.
 *
 * @module
 */
import { pathOf } from "./file_url.ts";

/** How temporary files are named: `<name>.<uuid>.tmp` in the target's folder. */
const TEMP =
  /\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;

/**
 * Write `data` to `path` atomically: a temporary file in the same folder,
 * flushed to disk, then renamed over `path`. On any failure the temporary
 * file is removed and the error rethrown; `path` keeps its old contents.
 *
 * @param path Target file (path or `file:` URL).
 * @param data Bytes, text written as UTF-8, or pieces of bytes (an
 *   iterable or async iterable) written one after another as they are made:
 *   a large file is never held whole.
 * @param options `tag`: a word put in the temporary file's name before its
 *   uuid (`<name>.<tag>.<uuid>.tmp`), e.g. the writer's pid, so a sweep can
 *   tell whose it is.
 * @returns When the file is in place.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/a.json`, '{"x": 1}');
 * assertEquals(await Deno.readTextFile(`${dir}/a.json`), '{"x": 1}');
 * assertEquals([...Deno.readDirSync(dir)].length, 1);
 * await writeFileAtomic(`${dir}/b.bin`, [Uint8Array.of(1), Uint8Array.of(2, 3)]);
 * assertEquals(await Deno.readFile(`${dir}/b.bin`), Uint8Array.of(1, 2, 3));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(
  path: string | URL,
  data:
    | Uint8Array
    | string
    | Iterable<Uint8Array>
    | AsyncIterable<Uint8Array>,
  options: { tag?: string } = {},
): Promise<void> {
  const target = pathOf(path);
  const tag = options.tag === undefined ? "" : `.${options.tag}`;
  const tmp = `${target}${tag}.${crypto.randomUUID()}.tmp`;
  const pieces = typeof data === "string"
    ? [new TextEncoder().encode(data)]
    : data instanceof Uint8Array
    ? [data]
    : data;
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true });
    try {
      for await (const bytes of pieces) {
        let at = 0;
        while (at < bytes.length) at += await file.write(bytes.subarray(at));
      }
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, target);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    // A failed write names the file (a full disk said only "No space left
    // on device (os error 28)"); the error keeps its class.
    if (e instanceof Error && !e.message.includes(target)) {
      e.message = `Cannot write ${target}: ${e.message}`;
    }
    throw e;
  }
}

/**
 * Remove the temporary files that {@linkcode writeFileAtomic} left in `dir`
 * (and its subfolders) when a process was killed mid-write. A file that
 * vanishes meanwhile (its writer renamed or removed it) is passed over.
 *
 * @param dir A folder; a missing one is fine.
 * @param keep Names of temporary files to leave (another process's, still
 *   being written: a run folder's lock attempts, `.lock.<uuid>.tmp`).
 * @returns The paths removed.
 *
 * @example
 * ```ts
 * import { removeStaleTemps } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * const orphan = `${dir}/w.safetensors.${crypto.randomUUID()}.tmp`;
 * await Deno.writeTextFile(orphan, "half");
 * await Deno.writeTextFile(`${dir}/keep.tmp`, "not ours");
 * assertEquals(await removeStaleTemps(dir), [orphan]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function removeStaleTemps(
  dir: string,
  keep: (name: string) => boolean = () => false,
): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return removed;
    throw e;
  }
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) removed.push(...await removeStaleTemps(path, keep));
    else if (entry.isFile && TEMP.test(entry.name) && !keep(entry.name)) {
      try {
        await Deno.remove(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) continue; // gone meanwhile
        throw e;
      }
      removed.push(path);
    }
  }
  return removed;
}
