/**
 * Options as data: each one's kind, default, help text and accepted range,
 * and the one conversion from what a user typed (or a program passed) to a
 * checked value, with a one-line error that names the option.
 *
 * @module
 */

/** What an option holds. */
export type OptionKind = "string" | "integer" | "number" | "boolean" | "choice";

/**
 * One option: what it holds, what it accepts, and what `--help` says of it.
 * Bounds are inclusive (`min`, `max`) or exclusive (`above`, `below`). A
 * `number` is besides 0 or a float32 normal in size (2⁻¹²⁶ ≈ 1.18e-38 to
 * ≈ 3.40e38): the models compute in float32, where a subnormal such as
 * `--lr 1e-320` flushes to 0 and a larger value overflows.
 */
export interface OptionSpec {
  /** What it holds. */
  readonly kind: OptionKind;
  /** One line for `--help`. */
  readonly help: string;
  /**
   * The value when the option is absent (none: absent stays undefined). An
   * empty default makes an empty value acceptable; otherwise it is missing.
   */
  readonly default?: string | number | boolean;
  /** The accepted values of a `choice`. */
  readonly choices?: readonly string[];
  /** Smallest accepted number. */
  readonly min?: number;
  /** Largest accepted number. */
  readonly max?: number;
  /** Accepted numbers are greater than this. */
  readonly above?: number;
  /** Accepted numbers are less than this. */
  readonly below?: number;
  /** A remark on the accepted values for error messages, e.g. `0: none`. */
  readonly note?: string;
  /** Placeholder of the value in `--help` (default by kind: N, X, TEXT, a|b). */
  readonly value?: string;
  /** The option must be given (there is no default). */
  readonly required?: boolean;
  /**
   * The heading `--help` lists it under: a key of the usage's `groups`
   * (see `usageText`); without groups, options are one list.
   */
  readonly group?: string;
  /**
   * A plain `--help` shows it. When any option of a table is common, a
   * plain `--help` shows only those, and `--help all` every option.
   */
  readonly common?: boolean;
}

/** Options by camelCase key; the flag is the kebab-case key (`blockLength` → `--block-length`). */
export type OptionTable = Readonly<Record<string, OptionSpec>>;

/** The value type of one option. */
export type OptionValue<S extends OptionSpec> = S["kind"] extends
  "integer" | "number" ? number
  : S["kind"] extends "boolean" ? boolean
  : S extends { choices: readonly (infer C)[] } ? C
  : string;

/** The parsed values of a table: options without a default may be undefined. */
export type OptionValues<T extends OptionTable> = {
  -readonly [K in keyof T]: T[K] extends { default: unknown }
    ? OptionValue<T[K]>
    : T[K] extends { required: true } ? OptionValue<T[K]>
    : OptionValue<T[K]> | undefined;
};

/**
 * A bad command line or option value; the message is one line, without
 * "error: ".
 *
 * @example
 * ```ts
 * import { convertOption, UsageError } from "@d3pm/cli";
 * import { assertThrows } from "@std/assert";
 * assertThrows(
 *   () => convertOption("steps", { kind: "integer", min: 1, help: "steps" }, "x"),
 *   UsageError,
 *   'Option --steps must be a positive integer, got "x"',
 * );
 * ```
 */
export class UsageError extends Error {
  /**
   * A usage error.
   *
   * @param message What is wrong and what is accepted.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * The flag of a key: kebab-case (`blockLength` → `block-length`).
 *
 * @param key A camelCase key.
 * @returns The flag without dashes.
 *
 * @example
 * ```ts
 * import { flagOf } from "@d3pm/cli";
 * import { assertEquals } from "@std/assert";
 * assertEquals(flagOf("blockLength"), "block-length");
 * ```
 */
export function flagOf(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/**
 * The key of a flag: camelCase (`block-length` → `blockLength`).
 *
 * @param flag A kebab-case flag without dashes.
 * @returns The key.
 *
 * @example
 * ```ts
 * import { keyOf } from "@d3pm/cli";
 * import { assertEquals } from "@std/assert";
 * assertEquals(keyOf("top-p"), "topP");
 * ```
 */
export function keyOf(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * What an option accepts, as words for messages and help.
 *
 * @param spec The option.
 * @returns E.g. `a positive integer`, `a number in [0, 1)`, `one of a, b`.
 *
 * @example
 * ```ts
 * import { acceptedValues } from "@d3pm/cli";
 * import { assertEquals } from "@std/assert";
 * assertEquals(acceptedValues({ kind: "integer", min: 1, help: "" }), "a positive integer");
 * assertEquals(acceptedValues({ kind: "number", min: 0, below: 1, help: "" }), "a number in [0, 1)");
 * assertEquals(acceptedValues({ kind: "number", min: 0, note: "0: none", help: "" }), "a number ≥ 0 (0: none)");
 * assertEquals(acceptedValues({ kind: "choice", choices: ["a", "b"], help: "" }), "one of a, b");
 * ```
 */
export function acceptedValues(spec: OptionSpec): string {
  const note = spec.note ? ` (${spec.note})` : "";
  switch (spec.kind) {
    case "choice":
      return `one of ${(spec.choices ?? []).join(", ")}${note}`;
    case "boolean":
      return `true or false${note}`;
    case "string":
      return `${spec.value ?? "a value"}${note}`;
    default:
      return `${numberPhrase(spec)}${note}`;
  }
}

function numberPhrase(spec: OptionSpec): string {
  const integer = spec.kind === "integer";
  if (integer && spec.min === 1 && spec.max === undefined) {
    return "a positive integer";
  }
  const noun = integer ? "an integer" : "a number";
  const lo = spec.min !== undefined
    ? { open: "[", x: spec.min, word: "≥" }
    : spec.above !== undefined
    ? { open: "(", x: spec.above, word: ">" }
    : undefined;
  const hi = spec.max !== undefined
    ? { close: "]", x: spec.max, word: "≤" }
    : spec.below !== undefined
    ? { close: ")", x: spec.below, word: "<" }
    : undefined;
  if (lo && hi) return `${noun} in ${lo.open}${lo.x}, ${hi.x}${hi.close}`;
  if (lo) return `${noun} ${lo.word} ${lo.x}`;
  if (hi) return `${noun} ${hi.word} ${hi.x}`;
  return noun;
}

function inRange(spec: OptionSpec, x: number): boolean {
  return (spec.min === undefined || x >= spec.min) &&
    (spec.max === undefined || x <= spec.max) &&
    (spec.above === undefined || x > spec.above) &&
    (spec.below === undefined || x < spec.below);
}

/**
 * Convert a value to an option's kind and check it: a string from the
 * command line (`"5"`, `"true"`, `""` for a bare boolean flag) or a typed
 * value from a program.
 *
 * @param key The option's camelCase key (named in errors as its flag).
 * @param spec The option.
 * @param raw The value.
 * @returns The checked value.
 * @throws {UsageError} One line naming the option, what it accepts and what it got.
 *
 * @example
 * ```ts
 * import { convertOption, UsageError } from "@d3pm/cli";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const steps = { kind: "integer", min: 1, help: "steps" } as const;
 * assertEquals(convertOption("steps", steps, "30"), 30);
 * const resume = { kind: "boolean", default: false, help: "" } as const;
 * assertEquals(convertOption("resume", resume, "true"), true); // a bare --resume
 * assertThrows(() => convertOption("resume", resume, ""), UsageError, "Option --resume needs a value: true or false"); // --resume=
 * assertThrows(() => convertOption("steps", steps, "-5"), UsageError, "Option --steps must be a positive integer, got -5");
 * assertThrows(() => convertOption("steps", steps, "1e1"), UsageError, "Option --steps must be a positive integer written in digits, got 1e1 (write 10)");
 * assertThrows(() => convertOption("steps", steps, undefined), UsageError, "Option --steps needs a value: a positive integer");
 * const lr = { kind: "number", above: 0, help: "learning rate" } as const;
 * assertThrows(() => convertOption("lr", lr, "1e-320"), UsageError, "Option --lr must be a number > 0 that float32 holds"); // a subnormal
 * ```
 */
export function convertOption(
  key: string,
  spec: OptionSpec,
  raw: unknown,
): string | number | boolean {
  const flag = `--${flagOf(key)}`;
  const accepts = acceptedValues(spec);
  // An empty value is missing, unless it is the option's default: a yes/no
  // option's too (a bare `--force` reads `--force=true`, see readCommandLine;
  // an empty one only comes from `--force=` or a sweep's grid).
  const missing = raw === undefined || raw === null ||
    (raw === "" && spec.default !== "");
  if (missing) throw new UsageError(`Option ${flag} needs a value: ${accepts}`);
  const bad = () =>
    new UsageError(`Option ${flag} must be ${accepts}, got ${shown(raw)}`);
  switch (spec.kind) {
    case "boolean":
      if (raw === true || raw === "true" || raw === "1") {
        return true;
      }
      if (raw === false || raw === "false" || raw === "0") return false;
      throw bad();
    case "choice":
      if (!(spec.choices ?? []).includes(String(raw))) {
        throw new UsageError(
          `Option ${flag} must be ${accepts}, got ${
            JSON.stringify(String(raw))
          }`,
        );
      }
      return String(raw);
    case "string":
      if (typeof raw !== "string") throw bad();
      return raw;
    default: {
      // Decimal notation only: `Number()` would also read hex, binary,
      // octal, "Infinity" and padded text ("0x10" as 16). An integer is
      // written in digits, as a count is: not "1e1" or "10.0".
      const integer = spec.kind === "integer";
      const x = typeof raw === "number"
        ? raw
        : typeof raw === "string" && (integer ? INTEGER : DECIMAL).test(raw)
        ? Number(raw)
        : NaN;
      // A whole number in range, not in digits: say how to write it.
      const whole = typeof raw === "string" && DECIMAL.test(raw) &&
        Number.isSafeInteger(Number(raw)) && inRange(spec, Number(raw));
      if (integer && Number.isNaN(x) && whole) {
        throw new UsageError(
          `Option ${flag} must be ${accepts} written in digits, got ${raw} (write ${
            Number(raw)
          })`,
        );
      }
      // An integer beyond 2^53 is not exact (1e300 "is" an integer).
      if (
        !Number.isFinite(x) || (integer && !Number.isSafeInteger(x)) ||
        !inRange(spec, x)
      ) throw bad();
      if (!integer && !float32Normal(x)) {
        throw new UsageError(
          `Option ${flag} must be ${accepts} that float32 holds (0, or about 1.18e-38 to 3.40e38 in size: the models compute in float32, where it would flush to 0 or overflow), got ${
            shown(raw)
          }`,
        );
      }
      return x;
    }
  }
}

/**
 * The items of a comma-separated list option (`--gen-steps 16,64`): each
 * trimmed, none empty, none given twice.
 *
 * @param key The option's camelCase key (named in errors as its flag).
 * @param text The list.
 * @returns The items, in the given order.
 * @throws {UsageError} For an empty item or one given twice.
 *
 * @example
 * ```ts
 * import { listItems, UsageError } from "@d3pm/cli";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(listItems("genSteps", "16, 64"), ["16", "64"]);
 * assertThrows(() => listItems("genSteps", "16,16"), UsageError, "Option --gen-steps lists 16 twice");
 * assertThrows(() => listItems("genSteps", "16,,4"), UsageError, "Option --gen-steps has an empty item");
 * ```
 */
export function listItems(key: string, text: string): string[] {
  const flag = `--${flagOf(key)}`;
  const items = text.split(",").map((s) => s.trim());
  const seen = new Set<string>();
  for (const item of items) {
    if (item === "") {
      throw new UsageError(
        `Option ${flag} has an empty item in ${JSON.stringify(text)}`,
      );
    }
    if (seen.has(item)) {
      throw new UsageError(
        `Option ${flag} lists ${item} twice in ${
          JSON.stringify(text)
        }: give each value once`,
      );
    }
    seen.add(item);
  }
  return items;
}

/** float32's smallest normal number, 2⁻¹²⁶. */
const FLOAT32_MIN_NORMAL = 2 ** -126;

/** float32's largest finite number. */
const FLOAT32_MAX = (2 - 2 ** -23) * 2 ** 127;

/** 0, or a number float32 holds as a normal (neither subnormal nor infinite). */
function float32Normal(x: number): boolean {
  const size = Math.abs(x);
  return size === 0 || (size >= FLOAT32_MIN_NORMAL && size <= FLOAT32_MAX);
}

/** A number as a person writes one: `12`, `-0.5`, `.5`, `3e-4`, `1E6`. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** An integer as a person writes one: digits, perhaps signed (`12`, `-1`). */
const INTEGER = /^[+-]?\d+$/;

function shown(raw: unknown): string {
  if (typeof raw === "number") return String(raw);
  const s = String(raw);
  return DECIMAL.test(s) ? s : JSON.stringify(raw);
}
