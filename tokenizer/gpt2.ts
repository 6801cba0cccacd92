/**
 * GPT-2's tokenizer (r50k), read from its `encoder.json` and `vocab.bpe`
 * (copies are committed beside this module).
 *
 * @module
 */
import { BpeTokenizer, type BpeVocabulary } from "./bpe.ts";
import { displayName, readText, toUrl } from "./_read.ts";

/**
 * GPT-2's own end-of-text spelling; a base id (50256), not our `eos`.
 *
 * @example
 * ```ts
 * import { GPT2_END_OF_TEXT, loadGpt2Tokenizer } from "@d3pm/tokenizer";
 * import { assertEquals, assertNotEquals } from "@std/assert";
 * const gpt2 = await loadGpt2Tokenizer();
 * const ids = gpt2.encode(GPT2_END_OF_TEXT, { allowSpecial: true });
 * assertEquals([...ids], [50256]);
 * assertNotEquals(ids[0], gpt2.special.eos);
 * assertEquals(gpt2.decode(ids), GPT2_END_OF_TEXT);
 * ```
 */
export const GPT2_END_OF_TEXT = "<|endoftext|>";

/** The two files that define GPT-2's vocabulary, as text. */
export interface Gpt2Files {
  /** `encoder.json`: token (in GPT-2's byte-to-unicode spelling) → id. */
  encoderJson: string;
  /** `vocab.bpe`: `#version` line, then one `left right` merge per line. */
  vocabBpe: string;
}

/** Options of {@linkcode parseGpt2Vocabulary}. */
export interface ParseGpt2Options {
  /** Name of `encoder.json` in error messages. @default {"encoder.json"} */
  encoderName?: string;
  /** Name of `vocab.bpe` in error messages. @default {"vocab.bpe"} */
  mergesName?: string;
}

/** Options of {@linkcode loadGpt2Tokenizer}. */
export interface LoadGpt2Options {
  /**
   * Where `encoder.json` is (path or URL; `.gz` is gunzipped).
   * @default {the committed copy beside this module}
   */
  encoder?: string | URL;
  /**
   * Where `vocab.bpe` is (path or URL; `.gz` is gunzipped).
   * @default {the committed copy beside this module}
   */
  merges?: string | URL;
  /**
   * Identity of the vocabulary; set it when the files are not GPT-2's.
   * @default {"gpt2-r50k"}
   */
  id?: string;
  /** Size of the per-piece cache; see {@linkcode BpeTokenizerOptions}. */
  cacheSize?: number;
}

// GPT-2 spells each byte as one printable character: bytes that are already
// printable (and not a space) stand for themselves, the other 68 are moved to
// U+0100 upwards in byte order.
function unicodeToByte(): Map<number, number> {
  const map = new Map<number, number>();
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) ||
      (b >= 174 && b <= 255);
    map.set(printable ? b : next++, b);
  }
  return map;
}

/**
 * Builds the GPT-2 vocabulary from the text of `encoder.json` and
 * `vocab.bpe`, checking both: every id once, every token spelled in GPT-2's
 * byte alphabet, every merge joining two tokens into a third.
 *
 * @param files The text of both files.
 * @param options File names for error messages.
 * @returns The vocabulary (50,257 tokens and 50,000 merges for GPT-2).
 *
 * @example
 * ```ts
 * import { parseGpt2Vocabulary } from "@d3pm/tokenizer";
 * import { assertThrows } from "@std/assert";
 * assertThrows(
 *   () => parseGpt2Vocabulary({ encoderJson: "[1, 2]", vocabBpe: "" }),
 *   SyntaxError,
 *   "encoder.json",
 * );
 * ```
 */
export function parseGpt2Vocabulary(
  files: Gpt2Files,
  options: ParseGpt2Options = {},
): BpeVocabulary {
  const encName = options.encoderName ?? "encoder.json";
  const bpeName = options.mergesName ?? "vocab.bpe";
  let encoder: unknown;
  try {
    encoder = JSON.parse(files.encoderJson);
  } catch (e) {
    throw new SyntaxError(
      `Cannot load GPT-2 vocabulary: ${encName} is not valid JSON (${
        (e as Error).message
      })`,
    );
  }
  if (
    typeof encoder !== "object" || encoder === null || Array.isArray(encoder)
  ) {
    throw new SyntaxError(
      `Cannot load GPT-2 vocabulary: ${encName} must be a JSON object of token → id, got ${
        Array.isArray(encoder) ? "an array" : typeof encoder
      }`,
    );
  }
  const entries = Object.entries(encoder as Record<string, unknown>);
  const n = entries.length;
  const tokens: Uint8Array[] = new Array(n);
  const ids = new Map<string, number>();
  const toByte = unicodeToByte();
  for (const [text, id] of entries) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= n) {
      throw new RangeError(
        `Cannot load GPT-2 vocabulary: ${encName} gives token ${
          JSON.stringify(text)
        } the id ${JSON.stringify(id)}, expected an integer in [0, ${n})`,
      );
    }
    if (tokens[id] !== undefined) {
      throw new RangeError(
        `Cannot load GPT-2 vocabulary: ${encName} gives id ${id} to two tokens, expected each id once`,
      );
    }
    const bytes: number[] = [];
    for (const ch of text) {
      const b = toByte.get(ch.codePointAt(0)!);
      if (b === undefined) {
        throw new SyntaxError(
          `Cannot load GPT-2 vocabulary: ${encName} token ${
            JSON.stringify(text)
          } has the character ${
            JSON.stringify(ch)
          }, which is not in GPT-2's byte alphabet`,
        );
      }
      bytes.push(b);
    }
    if (bytes.length === 0) {
      throw new SyntaxError(
        `Cannot load GPT-2 vocabulary: ${encName} has an empty token, expected at least one character`,
      );
    }
    tokens[id] = Uint8Array.from(bytes);
    ids.set(text, id);
  }

  const lines = files.vocabBpe.split("\n");
  const merges: [number, number, number][] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (line === "" || (i === 0 && line.startsWith("#version"))) continue;
    const parts = line.split(" ");
    if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
      throw new SyntaxError(
        `Cannot load GPT-2 merges: ${bpeName} line ${i + 1} is ${
          JSON.stringify(line)
        }, expected two tokens separated by one space`,
      );
    }
    const [a, b] = parts;
    const left = ids.get(a);
    const right = ids.get(b);
    const joined = ids.get(a + b);
    for (const [t, id] of [[a, left], [b, right], [a + b, joined]] as const) {
      if (id === undefined) {
        throw new RangeError(
          `Cannot load GPT-2 merges: ${bpeName} line ${i + 1} needs the token ${
            JSON.stringify(t)
          }, which ${encName} lacks`,
        );
      }
    }
    merges.push([left!, right!, joined!]);
  }
  return { tokens, merges };
}

/**
 * Loads the GPT-2 tokenizer (r50k: 50,257 base ids, `<|endoftext|>` = 50256)
 * from the copies of `encoder.json` and `vocab.bpe` committed beside this
 * module. Our special tokens follow the base vocabulary: `bos` 50257, `eos`
 * 50258, `pad` 50259, `mask` 50260 (`vocabSize` 50261). `<|endoftext|>` in
 * text is ordinary text unless `encode` gets `allowSpecial`.
 *
 * Ids equal those of OpenAI's GPT-2 encoder (checked against npm
 * `gpt-tokenizer` in the tests).
 *
 * @param options Other file locations; cache size.
 * @returns The tokenizer, with `id` `"gpt2-r50k"`.
 *
 * @example
 * ```ts
 * import { loadGpt2Tokenizer } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const gpt2 = await loadGpt2Tokenizer();
 * assertEquals([...gpt2.encode("Hello world")], [15496, 995]);
 * assertEquals(gpt2.encode("<|endoftext|>").length, 7);
 * assertEquals([...gpt2.encode("<|endoftext|>", { allowSpecial: true })], [50256]);
 * assertEquals(gpt2.special, { bos: 50257, eos: 50258, pad: 50259, mask: 50260 });
 * ```
 */
export async function loadGpt2Tokenizer(
  options: LoadGpt2Options = {},
): Promise<BpeTokenizer> {
  const encUrl = toUrl(
    options.encoder ?? new URL("./gpt2/encoder.json.gz", import.meta.url),
  );
  const bpeUrl = toUrl(
    options.merges ?? new URL("./gpt2/vocab.bpe.gz", import.meta.url),
  );
  const [encoderJson, vocabBpe] = await Promise.all([
    readText(encUrl),
    readText(bpeUrl),
  ]);
  const vocabulary = parseGpt2Vocabulary({ encoderJson, vocabBpe }, {
    encoderName: displayName(encUrl),
    mergesName: displayName(bpeUrl),
  });
  const eot = new TextEncoder().encode(GPT2_END_OF_TEXT).join();
  const eotId = vocabulary.tokens.findIndex((t) => t.join() === eot);
  return new BpeTokenizer(vocabulary, {
    id: options.id ?? "gpt2-r50k",
    specialText: eotId >= 0 ? { [GPT2_END_OF_TEXT]: eotId } : {},
    cacheSize: options.cacheSize,
  });
}
