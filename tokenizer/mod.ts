/**
 * Tokenizers: the `Tokenizer` interface, a plain byte-level tokenizer, and a
 * byte-level BPE engine that reproduces GPT-2's ids exactly
 * ({@linkcode loadGpt2Tokenizer}), trains small vocabularies on a corpus
 * ({@linkcode trainBpe}), and saves and loads them as versioned JSON
 * ({@linkcode saveBpeTokenizer}, {@linkcode loadBpeTokenizer}).
 *
 * Every tokenizer places its special tokens after its base vocabulary in the
 * order `bos`, `eos`, `pad`, `mask`.
 *
 * @example
 * ```ts
 * import { ByteTokenizer, loadGpt2Tokenizer, trainBpe } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 *
 * const gpt2 = await loadGpt2Tokenizer();
 * assertEquals(gpt2.encode(" = Valkyria Chronicles III = ").length, 8);
 *
 * const bpe = trainBpe("the cat sat on the mat ".repeat(10), { vocabSize: 270 });
 * assertEquals(bpe.decode(bpe.encode("the rat")), "the rat");
 *
 * const bytes = new ByteTokenizer();
 * assertEquals(bytes.decode(bytes.encode("a = b")), "a = b");
 * ```
 *
 * @module
 */
export * from "./tokenizer.ts";
export * from "./byte.ts";
export * from "./bpe.ts";
export * from "./gpt2.ts";
export * from "./train.ts";
export * from "./bpe_file.ts";
