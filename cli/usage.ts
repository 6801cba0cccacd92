/**
 * The `--help` text of a script, written from its option table: one line
 * per option with its placeholder, help and default; under a heading per
 * group when the usage names groups, and only the common options unless
 * `--help all` when the table marks some common.
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
  /**
   * Headings by group key, in the order `--help` shows them (e.g.
   * `{ run: "Run", model: "Model" }` prints `Run options:` …). Every option
   * then names one of them as its `group`.
   */
  groups?: Readonly<Record<string, string>>;
}

/** Options of {@linkcode usageText}. */
export interface UsageTextOptions {
  /**
   * Every option (`--help all`), not only the common ones; the same text
   * when the table marks no option `common`.
   */
  all?: boolean;
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
 * The text `--help` prints: the synopsis, the summary, the options (under
 * `HEADING options:` lines when the usage has groups) and the epilogue.
 * Where the table marks options `common`, only those are shown, with a
 * line naming `--help all`, unless `all` is set.
 *
 * @param usage The command, its summary and options.
 * @param options Whether to show every option.
 * @returns The text, ending in a newline.
 * @throws {Error} When the usage has groups and an option names none of
 *   them (it would be missing from the help).
 *
 * @example
 * ```ts
 * import { usageText } from "@d3pm/cli";
 * import { assert, assertStringIncludes } from "@std/assert";
 * const text = usageText({
 *   command: "deno task bench:x",
 *   summary: "Times x.",
 *   options: { reps: { kind: "integer", min: 1, default: 3, help: "repetitions" } },
 * });
 * assertStringIncludes(text, "deno task bench:x [options]");
 * assertStringIncludes(text, "--reps N");
 * assertStringIncludes(text, "repetitions (default 3)");
 * assertStringIncludes(text, "-h, --help");
 *
 * const grouped = {
 *   command: "deno task y",
 *   summary: "Does y.",
 *   groups: { run: "Run", model: "Model" },
 *   options: {
 *     out: { kind: "string", group: "run", common: true, help: "run folder" },
 *     width: { kind: "integer", group: "model", help: "residual width" },
 *   },
 * } as const;
 * const brief = usageText(grouped);
 * assertStringIncludes(brief, "Run options:\n  --out TEXT");
 * assert(!brief.includes("--width"));
 * assertStringIncludes(brief, "deno task y --help all");
 * assertStringIncludes(usageText(grouped, { all: true }), "Model options:\n  --width N");
 * ```
 */
export function usageText(
  usage: Usage,
  options: UsageTextOptions = {},
): string {
  const entries = Object.entries(usage.options);
  const rows = new Map(
    entries.map(([key, spec]) => [key, rowOf(usage, key, spec)]),
  );
  const anyCommon = entries.some(([, spec]) => spec.common);
  const help: [string, string] = [
    "-h, --help",
    anyCommon
      ? "show the common options (--help all: every one)"
      : "show this help",
  ];
  const width = Math.min(
    28,
    Math.max(...[...rows.values(), help].map(([flag]) => flag.length)) + 2,
  );
  const indent = " ".repeat(2 + width);
  const line = ([flag, text]: readonly string[]) => {
    const wrapped = wrap(text, WIDTH - indent.length).join(`\n${indent}`);
    return flag.length + 2 > width
      ? `  ${flag}\n${indent}${wrapped}`
      : `  ${flag.padEnd(width)}${wrapped}`;
  };
  const brief = !options.all && anyCommon;
  const shown = entries.filter(([, spec]) => !brief || spec.common);
  const sections = sectionsOf(usage, shown);
  const body = sections.map(({ heading, keys }, i) => {
    const list = keys.map((k) => line(rows.get(k)!));
    if (!usage.groups && i === sections.length - 1) list.push(line(help));
    return `${heading}:\n${list.join("\n")}`;
  });
  if (usage.groups) body.push(`Help:\n${line(help)}`);
  const more = brief
    ? `\n${shown.length} of ${entries.length} options shown; ${usage.command} --help all lists every one.\n`
    : "";
  const synopsis = usage.synopsis ?? `${usage.command} [options]`;
  return `${synopsis}\n\n${usage.summary.trim()}\n\n${
    body.join("\n\n")
  }\n${more}${usage.epilogue ? `\n${usage.epilogue.trim()}\n` : ""}`;
}

/** An option's `--help` row: the flag with its placeholder, and its text. */
function rowOf(usage: Usage, key: string, spec: OptionSpec): [string, string] {
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
}

/**
 * The options' sections: one `Options` list without groups, else one per
 * group that has a shown option, in the groups' order.
 */
function sectionsOf(
  usage: Usage,
  shown: readonly [string, OptionSpec][],
): { heading: string; keys: string[] }[] {
  if (!usage.groups) {
    return [{ heading: "Options", keys: shown.map(([k]) => k) }];
  }
  const groups = usage.groups;
  const byGroup = new Map(Object.keys(groups).map((g) => [g, [] as string[]]));
  for (const [key, spec] of Object.entries(usage.options)) {
    if (spec.group === undefined || !byGroup.has(spec.group)) {
      throw new Error(
        `Option --${flagOf(key)} names group ${
          JSON.stringify(spec.group)
        }, not one of the usage's groups: ${Object.keys(groups).join(", ")}`,
      );
    }
  }
  for (const [key, spec] of shown) byGroup.get(spec.group!)!.push(key);
  return [...byGroup].filter(([, keys]) => keys.length > 0).map((
    [g, keys],
  ) => ({ heading: `${groups[g]} options`, keys }));
}
