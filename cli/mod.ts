/**
 * The command line of every script in the project, from one table of
 * options: each option's kind, default, accepted range and help, defined
 * once; parsing with negative numbers and bare boolean flags; `--help` text;
 * and one-line errors that name the option and what it accepts.
 *
 * @example
 * ```ts
 * import { parseCommandLine, usageText, UsageError } from "@d3pm/cli";
 * import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
 * const usage = {
 *   command: "deno task sample",
 *   summary: "Generates text.",
 *   options: {
 *     count: { kind: "integer", min: 1, default: 1, help: "samples" },
 *     temperature: { kind: "number", above: 0, default: 1, help: "softmax temperature" },
 *   },
 * } as const;
 * const line = parseCommandLine(["--count", "2"], usage.options);
 * assertEquals(line.help ? undefined : line.values, { count: 2, temperature: 1 });
 * assertThrows(
 *   () => parseCommandLine(["--temperature", "-1"], usage.options),
 *   UsageError,
 *   "Option --temperature must be a number > 0, got -1",
 * );
 * assertStringIncludes(usageText(usage), "--temperature X");
 * ```
 *
 * @module
 */
export * from "./options.ts";
export * from "./parse.ts";
export * from "./usage.ts";
export * from "./run.ts";
