/**
 * Hugging Face interop: a trained model of a run folder as a directory that
 * transformers loads (`exportRun`), and a GPT-2-family checkpoint on disk as
 * a run folder of the project (`importCheckpoint`). Causal models become
 * `GPT2LMHeadModel` (learned positions) or `GPTNeoXForCausalLM` (rotary);
 * denoisers keep the project's network in `modeling_d3pm.py`
 * (`trust_remote_code=True`). Nothing is downloaded; nothing pickled is run.
 *
 * @example Tokenizer files round-trip
 * ```ts
 * import { readTokenizerFiles, tokenizerFiles } from "@d3pm/hf";
 * import { byteLevelBpe } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const bpe = byteLevelBpe([[116, 104], [256, 101]]); // "th", "the"
 * const dir = await Deno.makeTempDir();
 * for (const [name, text] of tokenizerFiles(bpe, { contextLength: 64 })) {
 *   await Deno.writeTextFile(`${dir}/${name}`, text);
 * }
 * const back = (await readTokenizerFiles(dir))!;
 * assertEquals(back.kind, "bpe");
 * assertEquals([...back.tokenizer.encode("the theme")], [...bpe.encode("the theme")]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export * from "./errors.ts";
export * from "./export.ts";
export * from "./import.ts";
export * from "./model_card.ts";
export * from "./tokenizer_files.ts";
