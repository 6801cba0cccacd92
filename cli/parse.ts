/**
 * The command line of every script: `--key value`, `--key=value`, bare
 * boolean flags (`--resume`, `--resume false`, `--no-matmul`), negative
 * numbers as values (`--alibi -1` reaches validation, which names the
 * option), `-h`/`--help` (`--help all`: every option, where a plain
 * `--help` shows the common ones), and one-line errors for anything else —
 * an argument that was not UTF-8 among them.
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import {
  convertOption,
  flagOf,
  type OptionTable,
  type OptionValues,
  UsageError,
} from "./options.ts";

/** Options of {@linkcode parseCommandLine}. */
export interface ParseOptions {
  /** Accept arguments that are not options (default false: one is an error). */
  positionals?: boolean;
}

/** A parsed command line. */
export type CommandLine<T extends OptionTable> = {
  /** `-h` or `--help` was given: nothing else is read. */
  help: true;
  /** `--help all` (or `-h all`, `--help=all`): every option, not only the common ones. */
  all: boolean;
} | {
  /** Not asked for help. */
  help: false;
  /** Every option: as given, else its default (else undefined). */
  values: OptionValues<T>;
  /** Only the options given on the command line. */
  given: Partial<OptionValues<T>>;
  /** Arguments that are not options (empty unless accepted). */
  positionals: string[];
};

/**
 * Parse `argv` against a table of options, converting and checking every
 * value ({@linkcode convertOption}). An option given twice takes its last
 * value, as in most command-line tools, so a script may append an override
 * to a base command; only that value is converted and checked.
 *
 * @param argv The arguments (`Deno.args`).
 * @param table The accepted options.
 * @param options Whether other arguments are accepted.
 * @returns Help, or the values.
 * @throws {UsageError} On an unknown option, a stray argument, a bad value,
 *   or an argument holding U+FFFD ({@linkcode checkArgumentText}).
 *
 * @example
 * ```ts
 * import { parseCommandLine, UsageError } from "@d3pm/cli";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const table = {
 *   steps: { kind: "integer", min: 1, default: 10, help: "steps" },
 *   alibi: { kind: "number", help: "slope" },
 *   resume: { kind: "boolean", default: false, help: "continue" },
 * } as const;
 * const line = parseCommandLine(["--alibi", "-1", "--resume"], table);
 * assertEquals(line.help, false);
 * if (!line.help) {
 *   assertEquals(line.values, { steps: 10, alibi: -1, resume: true });
 *   assertEquals(line.given, { alibi: -1, resume: true });
 * }
 * assertEquals(parseCommandLine(["-h"], table), { help: true, all: false });
 * assertEquals(parseCommandLine(["--help", "all"], table), { help: true, all: true });
 * const twice = parseCommandLine(["--steps", "4", "--steps", "8"], table);
 * if (!twice.help) assertEquals(twice.values.steps, 8);
 * assertThrows(() => parseCommandLine(["--stepz", "3"], table), UsageError, "Unknown option --stepz: accepted options are --steps, --alibi, --resume, --help");
 * assertThrows(() => parseCommandLine(["stray"], table), UsageError, 'Unexpected argument "stray"');
 * assertThrows(() => parseCommandLine(["--", "--steps", "2"], table), UsageError, 'Unexpected argument "--steps" after --');
 * ```
 */
export function parseCommandLine<const T extends OptionTable>(
  argv: readonly string[],
  table: T,
  options: ParseOptions = {},
): CommandLine<T> {
  const byFlag = new Map(Object.keys(table).map((k) => [flagOf(k), k]));
  checkArgumentText(argv, (flag) => {
    const key = byFlag.get(flag.slice(2));
    return key !== undefined && table[key].kind !== "boolean";
  });
  const tokens = normalize(argv, table, byFlag);
  let unknown: string | undefined;
  const args = parseArgs(tokens, {
    string: [...byFlag.keys()],
    boolean: ["help"],
    alias: { h: "help" },
    unknown: (arg: string) => {
      if (arg.startsWith("-") || !options.positionals) unknown ??= arg;
      return !arg.startsWith("-");
    },
  });
  if (args.help) {
    const all = argv.some((a, i) =>
      a === "--help=all" ||
      ((a === "--help" || a === "-h") && argv[i + 1] === "all")
    );
    return { help: true, all };
  }
  // What follows `--` is never an option; a command without positional
  // arguments would otherwise drop it unread (`-- --steps 2`).
  const ended = tokens.indexOf("--");
  if (unknown === undefined && !options.positionals && ended >= 0) {
    const rest = tokens.slice(ended + 1);
    if (rest.length > 0) {
      throw new UsageError(
        `Unexpected argument ${
          JSON.stringify(rest[0])
        } after --: this command takes only options (--key value), and -- ends them`,
      );
    }
  }
  if (unknown !== undefined) {
    const accepted = [...byFlag.keys(), "help"].map((f) => `--${f}`).join(", ");
    throw new UsageError(
      unknown.startsWith("-")
        ? `Unknown option ${
          unknown.split("=")[0]
        }: accepted options are ${accepted}`
        : `Unexpected argument ${
          JSON.stringify(unknown)
        }: options look like --key value (see --help)`,
    );
  }
  const values: Record<string, unknown> = {};
  const given: Record<string, unknown> = {};
  for (const [flag, key] of byFlag) {
    const raw = args[flag] as string | string[] | undefined;
    const spec = table[key];
    if (raw !== undefined) {
      given[key] = convertOption(
        key,
        spec,
        Array.isArray(raw) ? raw.at(-1) : raw,
      );
      values[key] = given[key];
    } else if (spec.required) {
      throw new UsageError(`Option --${flag} is required: ${spec.help}`);
    } else values[key] = spec.default;
  }
  return {
    help: false,
    values: values as OptionValues<T>,
    given: given as Partial<OptionValues<T>>,
    positionals: args._.map(String),
  };
}

/**
 * Refuse an argument holding U+FFFD, the replacement character: Deno
 * decodes the command line lossily, so bytes that are not UTF-8 (a Latin-1
 * path, `$'\xff'`) reach a script as U+FFFD and would name another file or
 * become other text in silence. A U+FFFD typed as such is refused too: in
 * `Deno.args` the two cannot be told apart, and no option here needs it.
 * Every script's command line goes through {@linkcode parseCommandLine},
 * which calls this first.
 *
 * @param argv The arguments (`Deno.args`).
 * @param takesValue Whether a flag takes a value (default: any does): a
 *   U+FFFD after one that does not is named as a stray argument.
 * @throws {UsageError} In one line naming the option (or the argument's
 *   position) and the value.
 *
 * @example
 * ```ts
 * import { checkArgumentText, UsageError } from "@d3pm/cli";
 * import { assertThrows } from "@std/assert";
 * checkArgumentText(["--prompt", "café"]);
 * assertThrows(
 *   () => checkArgumentText(["--steps", "2", "--prompt", "caf\uFFFD"]),
 *   UsageError,
 *   'The value of --prompt ("caf\uFFFD") is not UTF-8',
 * );
 * assertThrows(() => checkArgumentText(["--out=r\uFFFD"]), UsageError, "The value of --out");
 * assertThrows(() => checkArgumentText(["x\uFFFD"]), UsageError, "Argument 1");
 * // After a flag that takes no value (as the caller's table says): a stray argument.
 * assertThrows(() => checkArgumentText(["--resume", "x\uFFFD"], (f) => f !== "--resume"), UsageError, "Argument 2");
 * ```
 */
export function checkArgumentText(
  argv: readonly string[],
  takesValue: (flag: string) => boolean = () => true,
): void {
  const at = argv.findIndex((a) => a.includes("\uFFFD"));
  if (at < 0) return;
  const a = argv[at];
  const before = argv[at - 1];
  const what = a.startsWith("--")
    ? a.includes("=") ? `The value of ${a.split("=")[0]}` : `Option ${a}`
    : before?.startsWith("--") && !before.includes("=") && takesValue(before)
    ? `The value of ${before}`
    : `Argument ${at + 1}`;
  throw new UsageError(
    `${what} (${
      JSON.stringify(a)
    }) is not UTF-8: it holds U+FFFD, which stands for bytes that are not UTF-8 text (Deno reads the command line so); give it as UTF-8 (a file name: rename the file, or use a link with a UTF-8 name)`,
  );
}

/**
 * Rewrite the arguments so that every known option carries its value after
 * `=`: a boolean takes a following true/false/1/0 or stands alone (`--no-x`
 * is `--x=false`); any other option takes the next argument unless that is
 * itself an option, so `--alibi -1` and `--text "-x"` keep their values.
 */
function normalize(
  argv: readonly string[],
  table: OptionTable,
  byFlag: ReadonlyMap<string, string>,
): string[] {
  const isOption = (a: string) => {
    if (a === "-h" || a === "--help") return true;
    const name = a.replace(/^--/, "").split("=")[0];
    return a.startsWith("--") &&
      (byFlag.has(name) ||
        (name.startsWith("no-") && byFlag.has(name.slice(3))));
  };
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      // The end of the options: what follows is kept as given.
      out.push(...argv.slice(i));
      break;
    }
    if (!a.startsWith("--") || a.includes("=")) {
      out.push(a);
      continue;
    }
    const name = a.slice(2);
    const key = byFlag.get(name);
    const next = argv[i + 1];
    if (key === undefined) {
      const negated = byFlag.get(name.slice(3));
      const negatable = name.startsWith("no-") && negated !== undefined &&
        table[negated].kind === "boolean";
      out.push(negatable ? `--${name.slice(3)}=false` : a);
    } else if (table[key].kind === "boolean") {
      const word = next !== undefined && /^(true|false|1|0)$/.test(next);
      out.push(`${a}=${word ? next : "true"}`);
      if (word) i++;
    } else if (next !== undefined && !isOption(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(`${a}=`);
  }
  return out;
}
