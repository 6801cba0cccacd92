/**
 * The default progress lines of a long corpus read (private to the package).
 *
 * @module
 */
import type { ReadProgress } from "./wikitext.ts";

/** When {@linkcode defaultProgress} speaks, and where. */
export interface ProgressOptions {
  /** Seconds since the read began (default: the clock). */
  seconds?: () => number;
  /** Where a line goes (default: stderr). */
  print?: (line: string) => void;
}

/**
 * A progress callback that prints a line every 10% for files of 32 MiB or
 * more, and for smaller ones still being read after 10 s, one every 10 s: a
 * small `.gz` that expands to gigabytes (a gzip bomb, or just a very
 * repetitive text) was read for minutes in silence. The lines of a `.gz`
 * say that it can expand far beyond its size.
 *
 * @param label What the lines start with (`reading test.txt.gz`).
 * @param options The clock and the printer.
 * @returns The callback.
 *
 * @example A small .gz still being read after 12 s
 * ```ts
 * import { defaultProgress } from "./_progress.ts";
 * import { assertEquals } from "@std/assert";
 * const lines: string[] = [];
 * const report = defaultProgress("reading test.txt.gz", {
 *   seconds: () => 12,
 *   print: (l) => lines.push(l),
 * });
 * report({ bytes: 2 ** 20, totalBytes: 4 * 2 ** 20 });
 * assertEquals(lines, [
 *   "reading test.txt.gz: 25% of 4.0 MiB read after 12 s (a .gz can expand far beyond its size)",
 * ]);
 * ```
 */
export function defaultProgress(
  label: string,
  options: ProgressOptions = {},
): (p: ReadProgress) => void {
  const start = performance.now();
  const seconds = options.seconds ??
    (() => (performance.now() - start) / 1000);
  const print = options.print ?? ((line: string) => console.error(line));
  let next = 0.1;
  let nextSlow = 10;
  return ({ bytes, totalBytes }) => {
    const s = seconds();
    const mb = bytes / 2 ** 20;
    if (!totalBytes || totalBytes < 32 * 2 ** 20) {
      if (s < nextSlow) return;
      while (nextSlow <= s) nextSlow += 10;
      const of = totalBytes
        ? `${(100 * bytes / totalBytes).toFixed(0)}% of ${
          (totalBytes / 2 ** 20).toFixed(1)
        } MiB`
        : `${mb.toFixed(1)} MiB`;
      const hint = label.endsWith(".gz")
        ? " (a .gz can expand far beyond its size)"
        : "";
      print(`${label}: ${of} read after ${s.toFixed(0)} s${hint}`);
      return;
    }
    const f = bytes / totalBytes;
    if (f < next && bytes < totalBytes) return;
    while (next <= f) next += 0.1;
    print(
      `${label}: ${(100 * f).toFixed(0)}% (${mb.toFixed(0)} MiB, ${
        (mb / Math.max(s, 1e-3)).toFixed(0)
      } MiB/s)`,
    );
  };
}
