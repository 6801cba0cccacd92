/**
 * Whether a path exists, and which file above it stops it being made.
 *
 * @module
 */

/**
 * Whether something exists at `path` (a file, a folder, or a link to one).
 *
 * @param path The path.
 * @returns False when nothing is there.
 * @throws {Deno.errors.PermissionDenied} And any other error than "not
 *   found": an unreadable path is not reported as absent.
 *
 * @example
 * ```ts
 * import { pathExists } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * assertEquals(await pathExists(dir), true);
 * assertEquals(await pathExists(`${dir}/none`), false);
 * await Deno.remove(dir);
 * ```
 */
export async function pathExists(path: string | URL): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * The first folder of `path`'s ancestors that exists and is not a folder
 * (a file, or a link to one): the file that stops `path` being made. For
 * `F/run` where `F` is a file the system says "Not a directory" and names
 * neither; this names `F`. `path` itself is not looked at.
 *
 * @param path A path whose creation failed, or may fail, with "Not a directory".
 * @returns That ancestor, as a prefix of `path`; `undefined` when every
 *   ancestor that exists is a folder (or one up to the first missing is).
 *
 * @example
 * ```ts
 * import { fileAbove } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/F`, "");
 * assertEquals(await fileAbove(`${dir}/F/run/out`), `${dir}/F`);
 * assertEquals(await fileAbove(`${dir}/F`), undefined);
 * assertEquals(await fileAbove(`${dir}/none/run`), undefined);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function fileAbove(path: string): Promise<string | undefined> {
  const parts = path.split("/");
  for (let i = 1; i < parts.length; i++) {
    const above = parts.slice(0, i).join("/");
    if (above === "") continue; // the root of an absolute path
    const info = await Deno.stat(above).catch(() => undefined);
    if (info === undefined) return undefined;
    if (!info.isDirectory) return above;
  }
  return undefined;
}
