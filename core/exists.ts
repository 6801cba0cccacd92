/**
 * Whether a path exists.
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
