/**
 * Command-line options of the `bench:*` tasks: `--help` prints the usage and
 * exits 0; an unknown option, a stray argument or a bad value prints one
 * `error: …` line and exits 2, before any benchmark work starts.
 *
 * @module
 */
import { parseArgs } from "@std/cli";

/** One option of a benchmark. */
export interface BenchOption {
  /** The name without dashes, e.g. `"steps"`. */
  name: string;
  /** Placeholder of its value in the usage, e.g. `"N"`. */
  value: string;
  /** What it sets, with its default, for the usage. */
  help: string;
  /** The value when the option is absent. */
  default: string;
}

/** The usage of a benchmark: what it does and its options. */
export interface BenchUsage {
  /** The command, e.g. `"deno task bench:backend"`. */
  command: string;
  /** What the benchmark does and prints (may span lines). */
  summary: string;
  /** Its options, all taking a value. */
  options: readonly BenchOption[];
}

/** A bad command line: the message is one line, without "error: ". */
export class BenchArgsError extends Error {
  /**
   * A command-line error.
   *
   * @param message What is wrong and what is accepted.
   */
  constructor(message: string) {
    super(message);
    this.name = "BenchArgsError";
  }
}

/**
 * The usage text: the command, the summary and one line per option.
 *
 * @param usage The benchmark's usage.
 * @returns The text `--help` prints.
 *
 * @example
 * ```ts
 * import { usageText } from "./_args.ts";
 * import { assertStringIncludes } from "@std/assert";
 * const text = usageText({
 *   command: "deno task bench:x",
 *   summary: "Times x.",
 *   options: [{ name: "reps", value: "N", help: "repetitions (default 3)", default: "3" }],
 * });
 * assertStringIncludes(text, "--reps N");
 * assertStringIncludes(text, "-h, --help");
 * ```
 */
export function usageText(usage: BenchUsage): string {
  const rows = [
    ...usage.options.map((o) => [`--${o.name} ${o.value}`, o.help]),
    ["-h, --help", "show this help"],
  ];
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return `${usage.command} [options]\n\n${usage.summary}\n\nOptions:\n${
    rows.map(([flag, help]) => `  ${flag.padEnd(width)}${help}`).join("\n")
  }\n`;
}

/**
 * Parse a benchmark's command line without side effects.
 *
 * @param argv The arguments (`Deno.args`).
 * @param usage The accepted options.
 * @returns `"help"` for `-h`/`--help`, else every option's value (the
 * default when absent).
 * @throws {BenchArgsError} On an unknown option, a positional argument or an
 * option without a value.
 *
 * @example
 * ```ts
 * import { BenchArgsError, parseBenchArgs } from "./_args.ts";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const usage = {
 *   command: "deno task bench:x",
 *   summary: "Times x.",
 *   options: [{ name: "reps", value: "N", help: "repetitions", default: "3" }],
 * };
 * assertEquals(parseBenchArgs(["--reps", "5"], usage), { reps: "5" });
 * assertEquals(parseBenchArgs([], usage), { reps: "3" });
 * assertEquals(parseBenchArgs(["--help"], usage), "help");
 * assertThrows(() => parseBenchArgs(["--rep", "5"], usage), BenchArgsError, "unknown option --rep");
 * ```
 */
export function parseBenchArgs(
  argv: readonly string[],
  usage: BenchUsage,
): Record<string, string> | "help" {
  const names = usage.options.map((o) => o.name);
  const accepted = `accepted: ${
    [...names.map((n) => `--${n}`), "--help"].join(", ")
  }`;
  // `--steps -5`: a negative number is the option's value, not an option.
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (
      names.includes(argv[i].replace(/^--/, "")) && argv[i].startsWith("--") &&
      next !== undefined && /^-[\d.]/.test(next)
    ) {
      joined.push(`${argv[i]}=${next}`);
      i++;
    } else joined.push(argv[i]);
  }
  let unknown: string | undefined;
  const args = parseArgs(joined, {
    boolean: ["help"],
    string: names,
    alias: { h: "help" },
    unknown: (arg: string) => {
      unknown ??= arg;
      return false;
    },
  });
  if (args.help) return "help";
  if (unknown !== undefined) {
    throw new BenchArgsError(
      `unknown ${
        unknown.startsWith("-") ? "option" : "argument"
      } ${unknown}; ${accepted}`,
    );
  }
  const out: Record<string, string> = {};
  for (const o of usage.options) {
    const raw = args[o.name] as string | string[] | undefined;
    const value = Array.isArray(raw) ? raw.at(-1) : raw;
    if (value === "") {
      throw new BenchArgsError(
        `--${o.name} needs a value ${o.value}: ${o.help}`,
      );
    }
    out[o.name] = value ?? o.default;
  }
  return out;
}

/**
 * An option's value as an integer of at least `least`.
 *
 * @param args Parsed options ({@linkcode parseBenchArgs}).
 * @param name The option's name, without dashes.
 * @param least The smallest accepted value.
 * @returns The integer.
 * @throws {BenchArgsError} When the value is not such an integer.
 *
 * @example
 * ```ts
 * import { BenchArgsError, intOption } from "./_args.ts";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(intOption({ steps: "5" }, "steps", 1), 5);
 * assertThrows(() => intOption({ steps: "-5" }, "steps", 1), BenchArgsError, "got -5");
 * ```
 */
export function intOption(
  args: Record<string, string>,
  name: string,
  least: number,
): number {
  const raw = args[name];
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isSafeInteger(n) || n < least) {
    throw new BenchArgsError(
      `--${name} must be an integer ≥ ${least}, got ${raw}`,
    );
  }
  return n;
}

/**
 * Parse a benchmark's command line as a tool: `--help` prints the usage and
 * exits 0; a bad command line, or a `check` that throws
 * {@linkcode BenchArgsError}, prints `error: …` and exits 2.
 *
 * @param argv The arguments (`Deno.args`).
 * @param usage The accepted options.
 * @param check Validates and converts the values (e.g. with
 * {@linkcode intOption}).
 * @returns What `check` returns.
 *
 * @example
 * ```ts
 * import { benchArgs, intOption } from "./_args.ts";
 * import { assertEquals } from "@std/assert";
 * const usage = {
 *   command: "deno task bench:x",
 *   summary: "Times x.",
 *   options: [{ name: "reps", value: "N", help: "repetitions", default: "3" }],
 * };
 * const { reps } = benchArgs([], usage, (a) => ({ reps: intOption(a, "reps", 1) }));
 * assertEquals(reps, 3);
 * ```
 */
export function benchArgs<T>(
  argv: readonly string[],
  usage: BenchUsage,
  check: (args: Record<string, string>) => T,
): T {
  try {
    const args = parseBenchArgs(argv, usage);
    if (args === "help") {
      console.log(usageText(usage).trimEnd());
      Deno.exit(0);
    }
    return check(args);
  } catch (e) {
    if (!(e instanceof BenchArgsError)) throw e;
    console.error(`error: ${e.message}`);
    Deno.exit(2);
  }
}
