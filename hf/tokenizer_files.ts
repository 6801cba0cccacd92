/**
 * The project's tokenizers as Hugging Face tokenizer files, and back. Every
 * tokenizer of the project is a byte-level BPE with GPT-2's
 * pre-tokenization — GPT-2's own, a trained BPE (ids 0–255 the bytes, merge
 * r making 256 + r), or plain bytes (a BPE without merges) — so each is
 * written as GPT-2's `vocab.json` (tokens in GPT-2's byte-to-unicode
 * spelling) and `merges.txt`, with the special tokens `<|bos|>`, `<|eos|>`,
 * `<|pad|>`, `<|mask|>` added after the base vocabulary, and
 * `tokenizer_config.json` naming `GPT2Tokenizer`.
 *
 * @module
 */
import {
  BpeTokenizer,
  type BpeVocabulary,
  byteLevelBpe,
  ByteTokenizer,
  GPT2_END_OF_TEXT,
  loadGpt2Tokenizer,
  parseGpt2Vocabulary,
  SPECIAL_ORDER,
  specialTokenText,
  type Tokenizer,
} from "@d3pm/tokenizer";
import { readJsonObject, readSmallText } from "./_file.ts";
import { InteropError } from "./errors.ts";

const MAX_TOKENIZER_BYTES = 64 * 1024 * 1024;

// GPT-2 spells each byte as one printable character: printable bytes (but
// space) stand for themselves, the other 68 move to U+0100 upwards.
function byteSpelling(): string[] {
  const out: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) ||
      (b >= 174 && b <= 255);
    out[b] = String.fromCodePoint(printable ? b : next++);
  }
  return out;
}

function vocabularyOf(tokenizer: Tokenizer): BpeVocabulary {
  if (tokenizer instanceof BpeTokenizer) return tokenizer.vocabulary;
  if (tokenizer instanceof ByteTokenizer) {
    return byteLevelBpe([]).vocabulary;
  }
  throw new InteropError(
    `Cannot write tokenizer ${tokenizer.id}: only byte-level BPE and byte tokenizers have Hugging Face files`,
  );
}

/**
 * The Hugging Face files of a tokenizer: `vocab.json`, `merges.txt`,
 * `tokenizer_config.json` and `special_tokens_map.json`, which
 * `AutoTokenizer.from_pretrained` loads as `GPT2Tokenizer`. Its ids equal
 * the project's `encode(text, { allowSpecial: true })`: the special tokens
 * (and GPT-2's `<|endoftext|>`) are added tokens, matched in text.
 *
 * @param tokenizer A byte-level BPE or the byte tokenizer.
 * @param options The model's context (`model_max_length`).
 * @returns File name → text.
 * @throws {InteropError} For another tokenizer, or one whose tokens are not
 *   all distinct (a dictionary cannot hold two ids for one spelling).
 *
 * @example The byte tokenizer is a BPE without merges
 * ```ts
 * import { tokenizerFiles } from "@d3pm/hf";
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const files = tokenizerFiles(new ByteTokenizer(), { contextLength: 32 });
 * const vocab = JSON.parse(files.get("vocab.json")!);
 * assertEquals([vocab["a"], vocab["Ġ"]], [97, 32]); // a space is spelled Ġ
 * assertEquals(files.get("merges.txt"), "#version: 0.2\n");
 * const config = JSON.parse(files.get("tokenizer_config.json")!);
 * assertEquals(config.added_tokens_decoder["259"].content, "<|mask|>");
 * ```
 */
export function tokenizerFiles(
  tokenizer: Tokenizer,
  options: { contextLength: number },
): Map<string, string> {
  const { tokens, merges } = vocabularyOf(tokenizer);
  const spell = byteSpelling();
  const spelling = tokens.map((t) => Array.from(t, (b) => spell[b]).join(""));
  const vocab: Record<string, number> = {};
  for (const [id, s] of spelling.entries()) {
    if (Object.hasOwn(vocab, s)) {
      throw new InteropError(
        `Cannot write tokenizer ${tokenizer.id}: ids ${
          vocab[s]
        } and ${id} spell the same bytes, which vocab.json cannot hold`,
      );
    }
    vocab[s] = id;
  }
  const mergeLines = merges.map(([a, b]) => `${spelling[a]} ${spelling[b]}`);
  const added: Record<string, Record<string, unknown>> = {};
  const addToken = (id: number, content: string) => {
    added[String(id)] = {
      content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
  };
  const eot = spelling.indexOf(spellBytes(GPT2_END_OF_TEXT, spell));
  if (eot >= 0) addToken(eot, GPT2_END_OF_TEXT);
  const names: Record<string, string> = {};
  for (const kind of SPECIAL_ORDER) {
    const id = tokenizer.special[kind];
    if (id === undefined) continue;
    addToken(id, specialTokenText(kind));
    names[`${kind}_token`] = specialTokenText(kind);
  }
  const config = {
    tokenizer_class: "GPT2Tokenizer",
    model_max_length: options.contextLength,
    add_prefix_space: false,
    add_bos_token: false,
    clean_up_tokenization_spaces: false,
    errors: "replace",
    unk_token: null,
    ...names,
    added_tokens_decoder: added,
  };
  const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";
  return new Map([
    ["vocab.json", JSON.stringify(vocab) + "\n"],
    ["merges.txt", ["#version: 0.2", ...mergeLines].join("\n") + "\n"],
    ["tokenizer_config.json", json(config)],
    ["special_tokens_map.json", json(names)],
  ]);
}

function spellBytes(text: string, spell: string[]): string {
  return Array.from(new TextEncoder().encode(text), (b) => spell[b]).join("");
}

/** A Hugging Face tokenizer read back as one of the project's. */
export interface ReadTokenizer {
  /** `gpt2` (GPT-2's own), `bpe` (the project's layout) or `byte`. */
  kind: "gpt2" | "bpe" | "byte";
  /** The project's tokenizer for it. */
  tokenizer: Tokenizer;
  /** Its base ids (without the project's special tokens). */
  baseSize: number;
  /** Whether the files add the project's four special tokens right after the base ids. */
  hasSpecials: boolean;
  /** The id of GPT-2's `<|endoftext|>`, when the vocabulary has it. */
  endOfText?: number;
  /**
   * Tokens the files add beyond the ids the project's tokenizer keeps (the
   * base ids, and the four special tokens when the files add them there),
   * by id: the project's tokenizer has no such token, so an import drops
   * their rows and reads their text as plain text.
   */
  extra: { id: number; content: string }[];
  /** The file(s) it was read from. */
  files: string[];
}

async function present(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * Read the tokenizer files of a Hugging Face directory: `vocab.json` and
 * `merges.txt`, or `tokenizer.json` (a byte-level BPE), with the added
 * tokens of `tokenizer_config.json` or `tokenizer.json`.
 *
 * @param dir The directory.
 * @param options `loadGpt2`: how GPT-2's tokenizer is loaded to compare a
 *   vocabulary that is not laid out as the project's (default
 *   `loadGpt2Tokenizer`); byte and BPE files never load it.
 * @returns The tokenizer, or undefined when the directory has no tokenizer files.
 * @throws {InteropError} For files that are malformed, not a byte-level BPE,
 *   or a BPE laid out neither as GPT-2's nor as the project's.
 *
 * @example
 * ```ts
 * import { readTokenizerFiles, tokenizerFiles } from "@d3pm/hf";
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * assertEquals(await readTokenizerFiles(dir), undefined);
 * for (const [name, text] of tokenizerFiles(new ByteTokenizer(), { contextLength: 32 })) {
 *   await Deno.writeTextFile(`${dir}/${name}`, text);
 * }
 * const back = (await readTokenizerFiles(dir))!;
 * assertEquals([back.kind, back.baseSize, back.hasSpecials], ["byte", 256, true]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readTokenizerFiles(
  dir: string,
  options: { loadGpt2?: () => Promise<BpeTokenizer> } = {},
): Promise<ReadTokenizer | undefined> {
  let encoderJson: string, vocabBpe: string;
  const files: string[] = [];
  let added: { id: number; content: string }[] = [];
  if (
    await present(`${dir}/vocab.json`) && await present(`${dir}/merges.txt`)
  ) {
    encoderJson = await readSmallText(`${dir}/vocab.json`, MAX_TOKENIZER_BYTES);
    vocabBpe = await readSmallText(`${dir}/merges.txt`, MAX_TOKENIZER_BYTES);
    files.push("vocab.json", "merges.txt");
  } else if (await present(`${dir}/tokenizer.json`)) {
    const path = `${dir}/tokenizer.json`;
    const json = await readJsonObject(path, MAX_TOKENIZER_BYTES);
    const model = json.model as Record<string, unknown> | undefined;
    const pre = JSON.stringify(json.pre_tokenizer ?? null);
    if (model?.type !== "BPE" || !pre.includes('"ByteLevel"')) {
      throw new InteropError(
        `${path} is not a byte-level BPE (model ${
          JSON.stringify(model?.type)
        }); the importer reads GPT-2-style byte-level BPE tokenizers`,
      );
    }
    encoderJson = JSON.stringify(model.vocab);
    const merges = Array.isArray(model.merges) ? model.merges : [];
    vocabBpe = merges.map((m) => Array.isArray(m) ? m.join(" ") : String(m))
      .join("\n");
    added = addedList(json.added_tokens);
    files.push("tokenizer.json");
  } else {
    return undefined;
  }
  if (await present(`${dir}/tokenizer_config.json`)) {
    const config = await readJsonObject(
      `${dir}/tokenizer_config.json`,
      MAX_TOKENIZER_BYTES,
    );
    const decoder = config.added_tokens_decoder;
    if (decoder && typeof decoder === "object") {
      for (const [id, t] of Object.entries(decoder)) {
        const content = (t as { content?: unknown })?.content;
        if (typeof content === "string") {
          added.push({ id: Number(id), content });
        }
      }
    }
  }
  let vocabulary: BpeVocabulary;
  try {
    vocabulary = parseGpt2Vocabulary({ encoderJson, vocabBpe }, {
      encoderName: `${dir}/${files[0]}`,
      mergesName: `${dir}/${files.at(-1)}`,
    });
  } catch (e) {
    throw new InteropError((e as Error).message.split("\n")[0]);
  }
  const baseSize = vocabulary.tokens.length;
  const at = new Map(added.map((a) => [a.id, a.content]));
  const hasSpecials = SPECIAL_ORDER.every((kind, i) =>
    at.get(baseSize + i) === specialTokenText(kind)
  );
  // All four of the project's special tokens, but not at the ids an export
  // gives them: the rows there are the model's own specials, which an
  // import would otherwise drop and replace by mean rows.
  if (
    !hasSpecials &&
    SPECIAL_ORDER.every((kind) =>
      added.some((a) =>
        a.content === specialTokenText(kind) && a.id >= baseSize
      )
    )
  ) {
    throw new InteropError(
      `The tokenizer files in ${dir} add ${
        SPECIAL_ORDER.map((k) => specialTokenText(k)).join(", ")
      } but not at ids ${baseSize}..${
        baseSize + 3
      } in that order, where an export puts them: restore the tokenizer files deno task export wrote`,
    );
  }
  const kept = hasSpecials ? baseSize + 4 : baseSize;
  const extra = [...at].filter(([id]) => id >= kept).sort(([a], [b]) => a - b)
    .map(([id, content]) => ({ id, content }));
  const eotBytes = new TextEncoder().encode(GPT2_END_OF_TEXT).join();
  const eot = vocabulary.tokens.findIndex((t) => t.join() === eotBytes);
  const common = {
    baseSize,
    hasSpecials,
    ...(eot >= 0 ? { endOfText: eot } : {}),
    extra,
    files,
  };
  const { tokens, merges } = vocabulary;
  // The project's layout is checked first: GPT-2's vocabulary (whose id 0
  // is "!") never has it, and parsing GPT-2's own 50,257 tokens to compare
  // costs a second that byte and BPE imports need not pay.
  const projectLayout = tokens.length === 256 + merges.length &&
    tokens.slice(0, 256).every((t, b) => t.length === 1 && t[0] === b) &&
    merges.every((m, r) => m[2] === 256 + r);
  if (projectLayout && merges.length === 0) {
    return { kind: "byte", tokenizer: new ByteTokenizer(), ...common };
  }
  if (projectLayout) {
    return {
      kind: "bpe",
      tokenizer: byteLevelBpe(merges.map(([a, b]) => [a, b])),
      ...common,
    };
  }
  const gpt2 = await (options.loadGpt2 ?? loadGpt2Tokenizer)();
  if (sameVocabulary(vocabulary, gpt2.vocabulary)) {
    return { kind: "gpt2", tokenizer: gpt2, ...common };
  }
  throw new InteropError(
    `The tokenizer in ${dir} (${baseSize} ids) is neither GPT-2's nor laid out as the project's BPE (ids 0–255 the bytes in order, merge r making id 256 + r); the importer reads those two`,
  );
}

function addedList(value: unknown): { id: number; content: string }[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((t) =>
    typeof t?.id === "number" && typeof t?.content === "string"
      ? [{ id: t.id, content: t.content }]
      : []
  );
}

function sameVocabulary(a: BpeVocabulary, b: BpeVocabulary): boolean {
  if (
    a.tokens.length !== b.tokens.length || a.merges.length !== b.merges.length
  ) return false;
  for (let i = 0; i < a.tokens.length; i++) {
    const x = a.tokens[i], y = b.tokens[i];
    if (x.length !== y.length || x.some((v, j) => v !== y[j])) return false;
  }
  return a.merges.every((m, r) =>
    m[0] === b.merges[r][0] && m[1] === b.merges[r][1] &&
    m[2] === b.merges[r][2]
  );
}
