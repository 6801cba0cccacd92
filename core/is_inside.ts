/**
 * Whether one path is another or lies below it: the one containment test
 * of the packages that guard a folder (the dashboard serving only what lies
 * in a run, an export never replacing the folder it reads). A string test
 * that touches no file system, so the browser page may bundle it.
 *
 * @module
 */

/**
 * Whether `path` is `root` or lies below it, compared segment by segment
 * after each is made plain: repeated and trailing slashes dropped, `.` and
 * `..` resolved as text (`/a/b/../c` is not inside `/a/b`). `/a/bc` is not
 * inside `/a/b`. Links are not followed: where one could lead out, give
 * real paths (`Deno.realPath`). An absolute path is never inside a
 * relative one, nor the other way round.
 *
 * @param root The folder.
 * @param path The path to test.
 * @returns True when `path` is `root` or below it.
 *
 * @example
 * ```ts
 * import { isInside } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(isInside("/r", "/r/a"), true);
 * assertEquals(isInside("/r/", "/r"), true); // the same folder
 * assertEquals(isInside("/r", "/rx/a"), false); // a prefix, not a parent
 * assertEquals(isInside("/r", "/r/../x"), false);
 * assertEquals(isInside("/", "/x"), true);
 * assertEquals(isInside(".", "../x"), false); // climbs out of a relative root
 * ```
 */
export function isInside(root: string, path: string): boolean {
  if (root.startsWith("/") !== path.startsWith("/")) return false;
  const r = segments(root), p = segments(path);
  // After segments(), `..` can only be a leading run: one past the root's
  // own segments climbs out of it (`.` is [], and `../x` is not below it).
  return r.length <= p.length && r.every((s, i) => s === p[i]) &&
    !p.slice(r.length).includes("..");
}

/**
 * A path's segments with `.` and empty ones dropped and `..` taken back
 * (kept where there is nothing to take back: a relative `../x`; above `/`
 * is `/`).
 */
function segments(path: string): string[] {
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (const s of path.split("/")) {
    if (s === "" || s === ".") continue;
    if (s === ".." && out.length > 0 && out.at(-1) !== "..") out.pop();
    else if (s !== ".." || !absolute) out.push(s);
  }
  return out;
}
