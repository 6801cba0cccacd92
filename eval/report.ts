/**
 * Markdown tables for reports.
 *
 * @module
 */

/**
 * A Markdown table.
 *
 * @param header Column titles.
 * @param rows Cells (strings or numbers; numbers are shown as given).
 * @returns The table, one line per row.
 *
 * @example
 * ```ts
 * import { markdownTable } from "@d3pm/eval";
 * import { assertEquals } from "@std/assert";
 * assertEquals(markdownTable(["a", "b"], [[1, "x"]]), "| a | b |\n|---|---|\n| 1 | x |");
 * ```
 */
export function markdownTable(
  header: string[],
  rows: (string | number)[][],
): string {
  const line = (cells: (string | number)[]) =>
    `| ${cells.map((c) => String(c).replace(/\|/g, "\\|")).join(" | ")} |`;
  return [
    line(header),
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map(line),
  ].join("\n");
}

/**
 * A number with a fixed count of decimals, or "–" when not finite.
 *
 * @param x The number.
 * @param digits Decimals (default 2).
 * @returns The text.
 *
 * @example
 * ```ts
 * import { fixed } from "@d3pm/eval";
 * import { assertEquals } from "@std/assert";
 * assertEquals(fixed(4.6049), "4.60");
 * assertEquals(fixed(NaN), "–");
 * ```
 */
export function fixed(x: number | undefined, digits = 2): string {
  return x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}
