/**
 * Byte-level BPE vocabularies as versioned JSON: building a tokenizer from
 * its merges, its identity, and saving and loading it.
 *
 * @module
 */
import { BpeTokenizer, byteLevelVocabulary } from "./bpe.ts";
import { displayName, readText, toUrl } from "./_read.ts";
import { sha256Hex, writeFileAtomic } from "@d3pm/core";
import { SPECIAL_ORDER, type SpecialTokens } from "./tokenizer.ts";

/**
 * The `format` field of a saved BPE.
 *
 * @example A file of another format is refused by name
 * ```ts
 * import { BPE_FORMAT, bpeFromJson, bpeToJson, byteLevelBpe } from "@d3pm/tokenizer";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const json = bpeToJson(byteLevelBpe([[104, 105]]));
 * assertEquals(json.format, BPE_FORMAT);
 * assertThrows(
 *   () => bpeFromJson({ ...json, format: "tiktoken" }),
 *   RangeError,
 *   `expected "${BPE_FORMAT}"`,
 * );
 * ```
 */
export const BPE_FORMAT = "d3pm-bpe";
/**
 * The `version` field this code writes and reads.
 *
 * @example A file from another version is refused
 * ```ts
 * import { BPE_VERSION, bpeFromJson, bpeToJson, byteLevelBpe } from "@d3pm/tokenizer";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const json = bpeToJson(byteLevelBpe([[104, 105]]));
 * assertEquals(json.version, BPE_VERSION);
 * assertThrows(
 *   () => bpeFromJson({ ...json, version: BPE_VERSION + 1 }),
 *   RangeError,
 *   `expected ${BPE_VERSION}`,
 * );
 * ```
 */
export const BPE_VERSION = 1;

/**
 * A byte-level BPE as saved (version 1). Ids 0–255 are bytes, merge `r` of
 * `merges` makes id `256 + r`, then come `bos`, `eos`, `pad`, `mask`.
 * Pieces are GPT-2's (`pretokenizer: "gpt2"`).
 */
export interface BpeFile {
  /** Always {@linkcode BPE_FORMAT}. */
  format: typeof BPE_FORMAT;
  /** Always {@linkcode BPE_VERSION}. */
  version: typeof BPE_VERSION;
  /** `bpe-v1:` and the first 16 hex digits of the SHA-256 of the merges. */
  id: string;
  /** How text is cut into pieces before merging. */
  pretokenizer: "gpt2";
  /** `256 + merges.length + 4`. */
  vocabSize: number;
  /** Ids of the special tokens. */
  special: Required<SpecialTokens>;
  /** `[left, right]` id pairs, first merged first. */
  merges: [number, number][];
  /** Free-form notes (corpus, options, time); ignored when loading. */
  meta?: Record<string, unknown>;
}

/** Options of the functions that build a tokenizer from merges. */
export interface ByteLevelBpeOptions {
  /** Size of the piece cache; see {@linkcode BpeTokenizerOptions}. */
  cacheSize?: number;
}

/**
 * The identity of a byte-level BPE: `bpe-v1:` and the first 16 hex digits
 * of the SHA-256 of `JSON.stringify(merges)`.
 *
 * @param merges `[left, right]` id pairs by rank.
 * @returns The identity string.
 *
 * @example
 * ```ts
 * import { bpeId } from "@d3pm/tokenizer";
 * import { assertMatch } from "@std/assert";
 * assertMatch(bpeId([[104, 105]]), /^bpe-v1:[0-9a-f]{16}$/);
 * ```
 */
export function bpeId(merges: readonly (readonly [number, number])[]): string {
  const bytes = new TextEncoder().encode(JSON.stringify(merges));
  return `bpe-v1:${sha256Hex(bytes).slice(0, 16)}`;
}

/**
 * A byte-level BPE tokenizer from its merges (ids 0–255 are bytes, merge `r`
 * makes `256 + r`), with the identity {@linkcode bpeId}.
 *
 * @param merges `[left, right]` id pairs by rank.
 * @param options Cache size.
 * @returns The tokenizer.
 *
 * @example
 * ```ts
 * import { byteLevelBpe } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const tok = byteLevelBpe([[104, 105]]);
 * assertEquals([...tok.encode("hi!")], [256, 33]);
 * ```
 */
export function byteLevelBpe(
  merges: readonly (readonly [number, number])[],
  options: ByteLevelBpeOptions = {},
): BpeTokenizer {
  return new BpeTokenizer(byteLevelVocabulary(merges), {
    id: bpeId(merges),
    cacheSize: options.cacheSize,
  });
}

/**
 * The savable form of a byte-level BPE tokenizer (one built by
 * {@linkcode trainBpe}, {@linkcode byteLevelBpe} or loaded from a file).
 *
 * @param tokenizer The tokenizer.
 * @param meta Free-form notes to store with it.
 * @returns The JSON object; `JSON.stringify` it to save.
 *
 * @example
 * ```ts
 * import { bpeFromJson, bpeToJson, byteLevelBpe } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const tok = byteLevelBpe([[104, 105]]);
 * const json = bpeToJson(tok);
 * assertEquals(json.merges, [[104, 105]]);
 * assertEquals(bpeFromJson(JSON.parse(JSON.stringify(json))).id, tok.id);
 * ```
 */
export function bpeToJson(
  tokenizer: BpeTokenizer,
  meta?: Record<string, unknown>,
): BpeFile {
  const { tokens, merges } = tokenizer.vocabulary;
  const byteLevel = tokens.length === 256 + merges.length &&
    tokens.slice(0, 256).every((t, b) => t.length === 1 && t[0] === b) &&
    merges.every((m, r) => m[2] === 256 + r);
  if (!byteLevel) {
    throw new TypeError(
      `Cannot save tokenizer ${tokenizer.id}: only byte-level BPE (ids 0–255 bytes, merge r makes 256 + r) can be saved, such as trainBpe() gives`,
    );
  }
  const pairs = merges.map(([a, b]) => [a, b] as [number, number]);
  const file: BpeFile = {
    format: BPE_FORMAT,
    version: BPE_VERSION,
    id: bpeId(pairs),
    pretokenizer: "gpt2",
    vocabSize: tokenizer.vocabSize,
    special: tokenizer.special,
    merges: pairs,
  };
  if (meta !== undefined) file.meta = meta;
  return file;
}

/** Options of {@linkcode bpeFromJson}. */
export interface BpeFromJsonOptions extends ByteLevelBpeOptions {
  /** Name of the file in error messages. @default {"BPE JSON"} */
  source?: string;
}

/**
 * A tokenizer from the object {@linkcode bpeToJson} made (after a JSON round
 * trip), checking every field.
 *
 * @param json The parsed JSON.
 * @param options Name for errors; cache size.
 * @returns The tokenizer.
 *
 * @example
 * ```ts
 * import { bpeFromJson } from "@d3pm/tokenizer";
 * import { assertThrows } from "@std/assert";
 * assertThrows(
 *   () => bpeFromJson({ format: "d3pm-bpe", version: 2 }, { source: "tok.json" }),
 *   RangeError,
 *   "tok.json",
 * );
 * ```
 */
export function bpeFromJson(
  json: unknown,
  options: BpeFromJsonOptions = {},
): BpeTokenizer {
  const source = options.source ?? "BPE JSON";
  const fail = (what: string): never => {
    throw new RangeError(`Cannot load BPE: ${source} ${what}`);
  };
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return fail("is not a JSON object");
  }
  const f = json as Record<string, unknown>;
  if (f.format !== BPE_FORMAT) {
    fail(
      `has format ${JSON.stringify(f.format)}, expected "${BPE_FORMAT}"`,
    );
  }
  if (f.version !== BPE_VERSION) {
    fail(
      `has version ${JSON.stringify(f.version)}, expected ${BPE_VERSION}`,
    );
  }
  const known = new Set([
    "format",
    "version",
    "id",
    "pretokenizer",
    "vocabSize",
    "special",
    "merges",
    "meta",
  ]);
  for (const key of Object.keys(f)) {
    if (!known.has(key)) {
      fail(
        `has the unknown field ${JSON.stringify(key)}, expected only ${
          [...known].join(", ")
        }`,
      );
    }
  }
  if (f.pretokenizer !== "gpt2") {
    fail(
      `has pretokenizer ${JSON.stringify(f.pretokenizer)}, expected "gpt2"`,
    );
  }
  if (!Array.isArray(f.merges)) fail("has no merges array");
  const merges = f.merges as unknown[];
  for (let r = 0; r < merges.length; r++) {
    const m = merges[r];
    const ok = Array.isArray(m) && m.length === 2 &&
      m.every((x) => Number.isInteger(x) && x >= 0 && x < 256 + r);
    if (!ok) {
      fail(
        `merge ${r} is ${
          JSON.stringify(m)
        }, expected [left, right] ids in [0, ${256 + r})`,
      );
    }
  }
  const pairs = merges as [number, number][];
  const tokenizer = byteLevelBpe(pairs, options);
  if (f.vocabSize !== tokenizer.vocabSize) {
    fail(
      `has vocabSize ${
        JSON.stringify(f.vocabSize)
      }, but its ${pairs.length} merges give ${tokenizer.vocabSize}`,
    );
  }
  if (f.id !== tokenizer.id) {
    fail(
      `has id ${
        JSON.stringify(f.id)
      }, but its merges hash to "${tokenizer.id}" (edited by hand?)`,
    );
  }
  const special = f.special as Record<string, unknown> | undefined;
  for (const kind of SPECIAL_ORDER) {
    if (special?.[kind] !== tokenizer.special[kind]) {
      fail(
        `has special.${kind} ${JSON.stringify(special?.[kind])}, expected ${
          tokenizer.special[kind]
        }`,
      );
    }
  }
  return tokenizer;
}

/**
 * Saves a byte-level BPE tokenizer as JSON (format {@linkcode BpeFile}),
 * creating the folder if needed.
 *
 * @param tokenizer The tokenizer.
 * @param path Where to write: a file path (an existing file is replaced).
 * @param options Notes to store (`meta`).
 * @throws {RangeError} When `path` is an existing directory or ends in `/`;
 * nothing is written.
 *
 * @example
 * ```ts
 * import { byteLevelBpe, loadBpeTokenizer, saveBpeTokenizer } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const path = await Deno.makeTempFile({ suffix: ".json" });
 * const tok = byteLevelBpe([[104, 105]]);
 * await saveBpeTokenizer(tok, path, { meta: { note: "example" } });
 * assertEquals((await loadBpeTokenizer(path)).id, tok.id);
 * await Deno.remove(path);
 * ```
 */
export async function saveBpeTokenizer(
  tokenizer: BpeTokenizer,
  path: string | URL,
  options: { meta?: Record<string, unknown> } = {},
): Promise<void> {
  const file = bpeToJson(tokenizer, options.meta);
  const url = toUrl(path);
  await checkWritableFilePath(url);
  const dir = new URL(".", url);
  await Deno.mkdir(dir, { recursive: true });
  // One merge per line: diffable and still compact.
  const { merges, ...head } = file;
  const body = JSON.stringify(head, null, 2).slice(0, -2) +
    ',\n  "merges": [\n' +
    merges.map((m) => `    [${m[0]}, ${m[1]}]`).join(",\n") +
    "\n  ]\n}\n";
  await writeFileAtomic(url, body);
}

/**
 * Refuses a save target that is a directory, before anything is written
 * (otherwise the temporary file would land beside it and the rename fail).
 */
async function checkWritableFilePath(url: URL): Promise<void> {
  const name = displayName(url);
  let isDirectory = url.pathname.endsWith("/");
  if (!isDirectory && url.protocol === "file:") {
    try {
      isDirectory = (await Deno.stat(url)).isDirectory;
    } catch {
      // Missing (the usual case) or unreachable: writing reports the latter.
    }
  }
  if (isDirectory) {
    const dir = name.replace(/\/+$/, "");
    throw new RangeError(
      `Cannot save BPE: ${dir} is a directory; expected the path of a JSON file, such as ${dir}/bpe.json`,
    );
  }
}

/**
 * A saved BPE file that was read but cannot be used: not valid gzip, not
 * JSON (a truncated file, say), or JSON whose fields fail the checks of
 * {@linkcode bpeFromJson}. The message is one line naming the file. A caller
 * that caches tokenizers can catch it, warn and rebuild the file; a missing
 * or unreadable file throws a plain `Error` instead.
 *
 * @example
 * ```ts
 * import { BpeFileError, loadBpeTokenizer } from "@d3pm/tokenizer";
 * import { assertRejects } from "@std/assert";
 * const path = await Deno.makeTempFile({ suffix: ".json" });
 * await Deno.writeTextFile(path, '{"format": "d3pm-bpe", "merg');
 * const e = await assertRejects(() => loadBpeTokenizer(path), BpeFileError);
 * if (e.path !== path) throw new Error(e.path);
 * if (!e.detail.startsWith("is not valid JSON")) throw new Error(e.detail);
 * await Deno.remove(path);
 * ```
 */
export class BpeFileError extends Error {
  /** The file, as named in the message. */
  readonly path: string;
  /** What is wrong with it (the message's `<what>`), without the file's name. */
  readonly detail: string;
  /**
   * An error whose message is `Cannot load BPE: <path> <what>`.
   *
   * @param path The file.
   * @param what What is wrong with it.
   */
  constructor(path: string, what: string) {
    super(`Cannot load BPE: ${path} ${what}`);
    this.name = "BpeFileError";
    this.path = path;
    this.detail = what;
  }
}

/**
 * Loads a tokenizer saved by {@linkcode saveBpeTokenizer} (`.gz` is
 * gunzipped).
 *
 * @param path Path or URL of the JSON file.
 * @param options Cache size.
 * @returns The tokenizer.
 * @throws {BpeFileError} When the file is corrupt: not valid gzip, not JSON
 * (e.g. truncated) or with invalid fields. Rebuilding it is safe.
 * @throws {Error} When the file is missing or cannot be read.
 *
 * @example
 * ```ts
 * import { BpeFileError, byteLevelBpe, loadBpeTokenizer, saveBpeTokenizer } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const path = await Deno.makeTempFile({ suffix: ".json" });
 * await Deno.writeTextFile(path, "{}");
 * const tok = await loadBpeTokenizer(path).catch(async (e) => {
 *   if (!(e instanceof BpeFileError)) throw e;
 *   const rebuilt = byteLevelBpe([[104, 105]]);
 *   await saveBpeTokenizer(rebuilt, path);
 *   return rebuilt;
 * });
 * assertEquals(tok.vocabSize, 261);
 * await Deno.remove(path);
 * ```
 */
export async function loadBpeTokenizer(
  path: string | URL,
  options: ByteLevelBpeOptions = {},
): Promise<BpeTokenizer> {
  const url = toUrl(path);
  const name = displayName(url);
  let text: string;
  try {
    text = await readText(url);
  } catch (e) {
    // readText names the file; only a bad gzip stream means corrupt content.
    const message = (e as Error).message.split("\n")[0];
    if (/not valid gzip/.test(message)) {
      throw new BpeFileError(name, "is not valid gzip (truncated?)");
    }
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new BpeFileError(
      name,
      `is not valid JSON (${
        (e as Error).message.split("\n")[0]
      }; truncated or edited?)`,
    );
  }
  try {
    return bpeFromJson(json, { ...options, source: name });
  } catch (e) {
    const message = (e as Error).message.split("\n")[0];
    throw new BpeFileError(
      name,
      message.replace(`Cannot load BPE: ${name} `, ""),
    );
  }
}
