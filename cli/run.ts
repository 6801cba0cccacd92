/**
 * How a script starts and ends: `--help` prints the usage and exits 0; an
 * error prints one `error: …` line (no stack trace unless `D3PM_DEBUG` is
 * set) and exits 1, or the script's usage code for a bad command line, or
 * the error's own `exitCode` where it has one (a run folder in use by
 * another run: 75).
 *
 * @module
 */
import { type OptionTable, type OptionValues, UsageError } from "./options.ts";
import { parseCommandLine, type ParseOptions } from "./parse.ts";
import { type Usage, usageText } from "./usage.ts";

/** The parsed command line of a script that did not ask for help. */
export interface Arguments<T extends OptionTable> {
  /** Every option: as given, else its default. */
  values: OptionValues<T>;
  /** Only the options given. */
  given: Partial<OptionValues<T>>;
  /** Arguments that are not options (when accepted). */
  positionals: string[];
}

/** Options of {@linkcode readCommandLine}. */
export interface ReadOptions<T extends OptionTable> extends ParseOptions {
  /**
   * Checks beyond the table (throwing {@linkcode UsageError}), run on the
   * parsed values.
   */
  check?: (args: Arguments<T>) => void;
  /**
   * For a script that runs at the top level: a bad command line prints one
   * `error: …` line and exits with this code instead of throwing.
   */
  usageExit?: number;
}

/**
 * Parse a script's command line; on `-h`/`--help` print the usage and exit 0
 * (`--help all`: with every option, where the table marks common ones).
 *
 * @param argv The arguments (`Deno.args`).
 * @param usage The command, summary and option table.
 * @param options Other arguments, further checks, and the exit code of a
 *   bad command line.
 * @returns The values.
 * @throws {UsageError} On a bad command line (see {@linkcode parseCommandLine}),
 *   unless `usageExit` is given.
 *
 * @example
 * ```ts
 * import { readCommandLine } from "@d3pm/cli";
 * import { assertEquals } from "@std/assert";
 * const usage = {
 *   command: "deno task x",
 *   summary: "Does x.",
 *   options: { count: { kind: "integer", min: 1, default: 1, help: "how many" } },
 * } as const;
 * assertEquals(readCommandLine(["--count", "3"], usage).values.count, 3);
 * ```
 */
export function readCommandLine<const T extends OptionTable>(
  argv: readonly string[],
  usage: Usage & { options: T },
  options: ReadOptions<T> = {},
): Arguments<T> {
  try {
    const line = parseCommandLine(argv, usage.options, options);
    if (line.help) {
      console.log(usageText(usage, { all: line.all }).trimEnd());
      Deno.exit(0);
    }
    options.check?.(line);
    return line;
  } catch (e) {
    if (!(e instanceof UsageError) || options.usageExit === undefined) throw e;
    console.error(`error: ${e.message}`);
    Deno.exit(options.usageExit);
  }
}

/** Options of {@linkcode runCli}. */
export interface RunCliOptions {
  /** Exit code of a bad command line ({@linkcode UsageError}; default 1). */
  usageExit?: number;
}

/**
 * Run a script's main function: an error becomes one `error: …` line on
 * stderr and exit code 1 (a {@linkcode UsageError}: `usageExit`; an error
 * with an integer `exitCode` from 1 to 125: that code).
 *
 * @param main The script.
 * @param options The exit code of a usage error.
 * @returns When `main` has finished without an error.
 *
 * @example
 * ```ts
 * import { runCli } from "@d3pm/cli";
 * let ran = false;
 * await runCli(() => { ran = true; });
 * if (!ran) throw new Error("main did not run");
 * ```
 */
export async function runCli(
  main: () => void | Promise<void>,
  options: RunCliOptions = {},
): Promise<void> {
  try {
    await main();
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    console.error(`error: ${message.split("\n")[0]}`);
    if (Deno.env.get("D3PM_DEBUG")) console.error((e as Error).stack);
    Deno.exit(
      e instanceof UsageError ? options.usageExit ?? 1 : ownExitCode(e) ?? 1,
    );
  }
}

/** An error's own exit code (`exitCode`, 1 to 125; above are the shell's). */
function ownExitCode(e: unknown): number | undefined {
  const code = (e as { exitCode?: unknown } | null)?.exitCode;
  return Number.isInteger(code) && (code as number) >= 1 &&
      (code as number) <= 125
    ? code as number
    : undefined;
}
