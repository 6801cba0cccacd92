/**
 * The error a trained model's loader throws for a file that is there but
 * cannot be read as what it should be: a `model.safetensors` cut short, a
 * `process.json` or model `config.json` that is not JSON or not an object,
 * a BPE tokenizer file that does not parse, a run's `config.json`,
 * `data.json` or `import.json` that does not parse (as `RunFolder` reads
 * them). A file missing, a file of another run, or a system error (too
 * many open files, permission denied) is not one.
 *
 * @module
 */
import { ConfigError } from "./options.ts";

/**
 * A file of a run folder that is there but damaged: its bytes do not read
 * as the file it should be. A {@linkcode ConfigError} (a refusal of the
 * folder, in one line), whose message is the reader's own; `path` and
 * `detail` say which file and what is wrong, apart.
 *
 * @example A truncated model file, told apart from a missing one
 * ```ts
 * import { ConfigError, DamagedFileError } from "@d3pm/experiment";
 * import { assert, assertEquals } from "@std/assert";
 * const e = new DamagedFileError(
 *   "Cannot read safetensors m/model.safetensors: file is 4 bytes, shorter than the 8-byte header length",
 *   { path: "m/model.safetensors", detail: "file is 4 bytes, shorter than the 8-byte header length" },
 * );
 * assert(e instanceof ConfigError);
 * assertEquals(e.name, "DamagedFileError");
 * assertEquals(e.path, "m/model.safetensors");
 * assert(!(new ConfigError("Cannot read m/config.json: No such file") instanceof DamagedFileError));
 * ```
 */
export class DamagedFileError extends ConfigError {
  /** The damaged file. */
  readonly path: string;
  /** What is wrong with it, in one line, without the file's name. */
  readonly detail: string;
  /**
   * A damaged file.
   *
   * @param message The reader's one line, naming the file.
   * @param options The file, what is wrong with it, and the reader's own
   *   error (`cause`).
   */
  constructor(
    message: string,
    options: { path: string; detail: string; cause?: unknown },
  ) {
    super(message);
    this.name = "DamagedFileError";
    this.path = options.path;
    this.detail = options.detail;
    if (options.cause !== undefined) this.cause = options.cause;
  }
}

/**
 * `text`, the contents of the JSON file `path` (a `what`), parsed; text that
 * is not JSON is a {@linkcode DamagedFileError} whose message is
 * `readJsonBounded`'s: `PATH is not valid JSON (expected a WHAT): WHY`, in
 * one line.
 *
 * @example
 * ```ts
 * import { DamagedFileError, parseJsonFile } from "@d3pm/experiment";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(parseJsonFile("[1]", "r/a.json", "list"), [1]);
 * const e = assertThrows(() => parseJsonFile('{"a', "r/a.json", "list"), DamagedFileError);
 * assertEquals(e.detail.startsWith("is not valid JSON (expected a list): "), true);
 * ```
 */
export function parseJsonFile(
  text: string,
  path: string,
  what: string,
): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    // V8 quotes the text it failed on, line breaks included: one line.
    const why = (e as Error).message.replace(/\s*[\r\n]+\s*/g, " ").trim();
    const detail = `is not valid JSON (expected a ${what}): ${why}`;
    throw new DamagedFileError(`${path} ${detail}`, { path, detail, cause: e });
  }
}

/**
 * {@linkcode parseJsonFile}, and JSON that is not an object (an array,
 * `null`, a string) is damaged too: `PATH is not a WHAT (expected a JSON
 * object)`.
 *
 * @example
 * ```ts
 * import { DamagedFileError, parseJsonObject } from "@d3pm/experiment";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(parseJsonObject('{"kind":"x"}', "p.json", "process description"), { kind: "x" });
 * const e = assertThrows(() => parseJsonObject("[1, 2]", "p.json", "process description"), DamagedFileError);
 * assertEquals(e.message, "p.json is not a process description (expected a JSON object)");
 * ```
 */
export function parseJsonObject(
  text: string,
  path: string,
  what: string,
): Record<string, unknown> {
  const saved = parseJsonFile(text, path, what);
  if (typeof saved !== "object" || saved === null || Array.isArray(saved)) {
    const detail = `is not a ${what} (expected a JSON object)`;
    throw new DamagedFileError(`${path} ${detail}`, { path, detail });
  }
  return saved as Record<string, unknown>;
}
