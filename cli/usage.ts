/**
 * The `--help` text of a script, written from its option table: one line
 * per option with its placeholder, help and default.
 *
 * @module
 */
import { flagOf, type OptionSpec, type OptionTable } from "./options.ts";

/** What `--help` prints: the command, what it does, its options, and more. */
export interface Usage {
  /** The command, e.g. `deno task sample`; the synopsis adds ` [options]`. */
  command: string;
  /** The synopsis when it is not `<command> [options]`. */
  synopsis?: string;
  /** What the script does (may span lines). */
  summary: string;
  /** Its options. */
  options: OptionTable;
  /** Defaults to show instead of the table's (e.g. a preset's), by key. */
  defaults?: Readonly<Record<string, unknown>>;
  /** Text after the options (examples, notes). */
  epilogue?: string;
}

/** Columns of the help text. */
const WIDTH = 80;

/** Words of `text` in lines of at most `width` characters (a longer word stands alone). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}

/** The placeholder of an option's value in `--help` ("" for a boolean). */
function placeholder(spec: OptionSpec): string {
  if (spec.value !== undefined) return spec.value;
  switch (spec.kind) {
    case "boolean":
      return "";
    case "integer":
      return "N";
    case "number":
      return "X";
    case "choice": {
      const all = (spec.choices ?? []).join("|");
      return all.length <= 24 ? all : "NAME";
    }
    default:
      return "TEXT";
  }
}

/**
 * The text `--help` prints.
 *
 * @param usage The command, its summary and options.
 * @returns The text, ending in a newline.
 *
 * @example
 * ```ts
 * import { usageText } from "@d3pm/cli";
 * import { assertStringIncludes } from "@std/assert";
 * const text = usageText({
 *   command: "deno task bench:x",
 *   summary: "Times x.",
 *   options: { reps: { kind: "integer", min: 1, default: 3, help: "repetitions" } },
 * });
 * assertStringIncludes(text, "deno task bench:x [options]");
 * assertStringIncludes(text, "--reps N");
 * assertStringIncludes(text, "repetitions (default 3)");
 * assertStringIncludes(text, "-h, --help");
 * ```
 */
export function usageText(usage: Usage): string {
  const rows = Object.entries(usage.options).map(([key, spec]) => {
    const d = usage.defaults && key in usage.defaults
      ? usage.defaults[key]
      : spec.default;
    const shown = d === undefined || d === "" || spec.kind === "boolean"
      ? ""
      : ` (default ${String(d)})`;
    const value = placeholder(spec);
    // Choices the placeholder does not show are listed after the help.
    const choices = spec.kind === "choice" && !value.includes("|")
      ? `: one of ${(spec.choices ?? []).join(", ")}`
      : "";
    return [
      `--${flagOf(key)}${value ? ` ${value}` : ""}`,
      spec.help + choices + shown,
    ];
  });
  rows.push(["-h, --help", "show this help"]);
  const width = Math.min(
    28,
    Math.max(...rows.map(([flag]) => flag.length)) + 2,
  );
  const indent = " ".repeat(2 + width);
  const lines = rows.map(([flag, help]) => {
    const text = wrap(help, WIDTH - indent.length).join(`\n${indent}`);
    return flag.length + 2 > width
      ? `  ${flag}\n${indent}${text}`
      : `  ${flag.padEnd(width)}${text}`;
  });
  const synopsis = usage.synopsis ?? `${usage.command} [options]`;
  return `${synopsis}\n\n${usage.summary.trim()}\n\nOptions:\n${
    lines.join("\n")
  }\n${usage.epilogue ? `\n${usage.epilogue.trim()}\n` : ""}`;
}
