/**
 * Paths to `file:` URLs and back, in one place. A URL's `pathname` is
 * percent-encoded (`/a%20b/%C3%A9.json`), and `new URL("file://" + path)`
 * reads `#`, `?` and `%41` in a path as URL syntax; writing to either name
 * made a file under another name, or failed.
 *
 * @module
 */

/** A Windows drive (`C:`) as the first segment of a path. */
const DRIVE = /^[a-z]:$/i;

/**
 * The `file:` URL of a path: an absolute one as it is, a relative one
 * against the working directory; each segment percent-encoded, so spaces,
 * non-ASCII letters, `%`, `#` and `?` stay part of the name. So do `\` and
 * a first segment `c:` but on Windows, where they are a separator and a
 * drive.
 *
 * @param path A path on this machine.
 * @returns Its `file:` URL; {@linkcode fromFileUrl} gives `path` back
 *   (made absolute).
 *
 * @example
 * ```ts
 * import { fromFileUrl, toFileUrl } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const url = toFileUrl("/tmp/sp ace/é%41#1?.json");
 * assertEquals(url.href, "file:///tmp/sp%20ace/%C3%A9%2541%231%3F.json");
 * assertEquals(fromFileUrl(url), "/tmp/sp ace/é%41#1?.json");
 * ```
 */
export function toFileUrl(path: string): URL {
  // Only on Windows is `\` a separator and `C:` a drive: elsewhere both are
  // letters a name may hold (`a\b.json` is one file, `c:/x` a relative path).
  const windows = Deno.build.os === "windows";
  const slash = (p: string) => windows ? p.replaceAll("\\", "/") : p;
  const slashed = slash(path);
  const absolute =
    slashed.startsWith("/") || (windows && /^[a-z]:\//i.test(slashed))
      ? slashed
      : `${slash(Deno.cwd())}/${slashed}`;
  const segments = absolute.split("/").map((s, i) =>
    windows && i <= 1 && DRIVE.test(s) ? s : encodeURIComponent(s)
  );
  const joined = segments.join("/");
  return new URL(`file://${joined.startsWith("/") ? "" : "/"}${joined}`);
}

/**
 * The path a `file:` URL names: its `pathname` decoded (`%20` is a space,
 * `%25` a `%`), which is what `Deno.open` and messages need.
 *
 * @param url A `file:` URL (or its text).
 * @returns The path (`C:\…` on Windows).
 * @throws {TypeError} When the URL is not a `file:` URL.
 *
 * @example
 * ```ts
 * import { fromFileUrl } from "@d3pm/core";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(fromFileUrl("file:///tmp/sp%20ace/%C3%A9.json"), "/tmp/sp ace/é.json");
 * assertThrows(() => fromFileUrl("https://example.com/a"), TypeError);
 * ```
 */
export function fromFileUrl(url: string | URL): string {
  const u = url instanceof URL ? url : new URL(url);
  if (u.protocol !== "file:") {
    throw new TypeError(`Expected a file: URL, got ${u.href}`);
  }
  // A lone `%` (not followed by two hex digits) is kept as it is.
  const path = decodeURIComponent(
    u.pathname.replace(/%(?![0-9a-f]{2})/gi, "%25"),
  );
  if (Deno.build.os === "windows" && /^\/[a-z]:/i.test(path)) {
    return path.slice(1).replaceAll("/", "\\");
  }
  return path;
}

/**
 * A path or `file:` URL as a path: a string is returned as it is.
 *
 * @param path A path or a `file:` URL.
 * @returns The path.
 *
 * @example
 * ```ts
 * import { pathOf } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(pathOf("a b/c.json"), "a b/c.json");
 * assertEquals(pathOf(new URL("file:///a%20b/c.json")), "/a b/c.json");
 * ```
 */
export function pathOf(path: string | URL): string {
  return path instanceof URL ? fromFileUrl(path) : path;
}
