// Words for bash, quoted once here (sweep scripts and the hints in messages).

/**
 * Quote a word for bash (unchanged when it needs no quotes).
 *
 * @param s The word.
 * @returns It, quoted if need be.
 *
 * @example
 * ```ts
 * import { shellQuote } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(shellQuote("runs/a"), "runs/a");
 * assertEquals(shellQuote("it's"), "'it'\\''s'");
 * ```
 */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
