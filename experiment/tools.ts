/**
 * What `deno task sample` and `deno task infill` do once their options are
 * read: load a trained model of a finished run, generate (showing the
 * unmasking steps of a denoiser) or fill the blanks a user wrote, and print.
 *
 * @module
 */
import { prng } from "@d3pm/core";
import type { Tokenizer } from "@d3pm/tokenizer";
import type {
  Contestant,
  ContestantProcess,
  GenerationRequest,
} from "./contestant.ts";
import { contestants, generatesInSteps } from "./registry.ts";
import { placeModel, processStagger } from "./engine.ts";
import { loadTrained, type TrainedModel } from "./load.ts";
import { ConfigError } from "./options.ts";

/** Where to find the model, and where it runs. */
export interface ToolModel {
  /** The run folder. */
  run: string;
  /** The contestant. */
  model: string;
  /** Which seed's model (default: the run's first seed). */
  seed?: number;
  /**
   * `tfjs`, `webgpu` (the fused engine: a denoiser's steps shown at one
   * sync per step), `cpu` (its plan on the CPU kernels) or `auto`.
   */
  engine: "tfjs" | "webgpu" | "cpu" | "auto";
  /** Unmasking steps (default min(64, T)); denoisers only. */
  steps?: number;
  /** Unmasking strategy (default: the contestant's). */
  strategy?: "ancestral" | "confidence";
  /** Seed of the sampler. */
  rng: number;
  /** Print only the final text. */
  quiet: boolean;
  /**
   * Where the engine line goes (`engine: cpu: the fused plan …`, the
   * engine `auto` picked and why, as `deno task evaluate` prints it),
   * `--quiet` or not: the tools pass stderr; default none.
   */
  log?: (line: string) => void;
}

/** Options of {@linkcode sampleText}. */
export interface SampleTextOptions extends ToolModel {
  /** Samples. */
  count: number;
  /** Softmax temperature; 0 is greedy (the most likely token at each draw). */
  temperature: number;
  /** Nucleus sampling. */
  topP: number;
  /** Show every Nth unmasking step (default: about 16 frames). */
  every?: number;
  /**
   * Text every sample starts from: a causal model continues it; a denoiser
   * keeps its tokens fixed at the start of the row and fills in the rest.
   */
  prompt?: string;
}

/** Options of {@linkcode fillText}. */
export interface FillTextOptions extends ToolModel {
  /** The text, with blanks written `[MASK]` or `[MASK*N]`. */
  text: string;
  /** Softmax temperature (default 1); 0 is greedy (each blank its argmax). */
  temperature?: number;
}

// The line above each sample unless --quiet (samples hold line breaks:
// without it, the AR model's --count 3 ran its texts together).
function sampleHeader(c: number, forwardPasses: number): string {
  return `=== sample ${c + 1} (${forwardPasses} forward passes) ===`;
}

/**
 * Generate `count` samples from a finished run's model and print them; a
 * denoiser's rows are shown as they are unmasked (░ = still masked).
 *
 * @param options The model, the engine and the sampler's settings.
 * @param print Where lines go.
 *
 * @example A folder that is no finished run is refused before anything is printed
 * ```ts
 * import { ConfigError, sampleText } from "@d3pm/experiment";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const run = await Deno.makeTempDir();
 * const lines: string[] = [];
 * await assertRejects(
 *   () =>
 *     sampleText({
 *       run, model: "d3pm", seed: 0, engine: "tfjs", rng: 0, quiet: true,
 *       count: 2, temperature: 1, topP: 1,
 *     }, (line) => lines.push(line)),
 *   ConfigError,
 *   `Cannot read run ${run}: no config.json there (not a run folder; deno task experiment --out ${run} makes one)`,
 * );
 * assertEquals(lines, []);
 * await Deno.remove(run);
 * ```
 */
export async function sampleText(
  options: SampleTextOptions,
  print: (line: string) => void,
): Promise<void> {
  const trained = await loadTrained(options.run, options);
  try {
    checkToolOptions(trained.contestant, trained.process, options);
  } catch (e) {
    trained.model.dispose();
    throw e;
  }
  const placed = await placeModel(
    trained.model,
    options.engine,
    trained.contestant.kind,
    processStagger(trained.process),
  );
  options.log?.(`engine: ${placed.engine}`);
  try {
    const { config, tokenizer, contestant, process } = trained;
    const rng = prng(options.rng);
    const prefix = options.prompt
      ? promptIds(options.prompt, {
        tokenizer,
        length: config.blockLength,
        causal: contestant.network === "causal",
      })
      : undefined;
    const request: GenerationRequest = {
      length: config.blockLength,
      prng: rng,
      temperature: options.temperature,
      topP: options.topP,
      ...(prefix ? { prefix } : {}),
    };
    const unmasking = contestant.unmasking;
    if (!unmasking) {
      // Steps per block for block diffusion; an AR model has none.
      const stepped = options.steps !== undefined
        ? { ...request, steps: options.steps }
        : request;
      for (let c = 0; c < options.count; c++) {
        const out = await contestant.generate(process, placed.model, stepped);
        if (!options.quiet) print(sampleHeader(c, out.forwardPasses));
        print(tokenizer.decode(out.tokens));
      }
      return;
    }
    const { steps, strategy } = unmaskingOf(trained, options);
    const every = options.every ?? Math.max(1, Math.round(steps / 16));
    const mask = unmasking.maskId(process);
    for (let c = 0; c < options.count; c++) {
      const out = await contestant.generate(process, placed.model, {
        ...request,
        steps,
        strategy,
        onStep: (s) => {
          if (!options.quiet && (s.step % every === 0 || s.step === s.steps)) {
            print(
              `--- step ${s.step}/${s.steps} (${s.forwardPasses} forward passes) ---`,
            );
            print(showMasked(tokenizer, s.tokens, mask));
          }
        },
      });
      print(
        options.quiet
          ? tokenizer.decode(out.tokens)
          : sampleHeader(c, out.forwardPasses),
      );
      if (!options.quiet) print(tokenizer.decode(out.tokens));
    }
  } finally {
    placed.dispose();
  }
}

/**
 * Fill the blanks of a text with a finished run's denoiser and print the
 * result (and, unless quiet, the unmasking steps).
 *
 * @param options The model, the engine, the text and the sampler's settings.
 * @param print Where lines go.
 * @throws {ConfigError} When the model does not fill blanks, or the text has
 *   no blank or does not fit the model's context.
 *
 * @example A folder that is no finished run is refused before anything is printed
 * ```ts
 * import { ConfigError, fillText } from "@d3pm/experiment";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const run = await Deno.makeTempDir();
 * const lines: string[] = [];
 * await assertRejects(
 *   () =>
 *     fillText({
 *       run, model: "d3pm", seed: 0, engine: "tfjs", rng: 0, quiet: true,
 *       text: "The [MASK*2] of France is Paris.",
 *     }, (line) => lines.push(line)),
 *   ConfigError,
 *   `Cannot read run ${run}: no config.json there`,
 * );
 * assertEquals(lines, []);
 * await Deno.remove(run);
 * ```
 */
export async function fillText(
  options: FillTextOptions,
  print: (line: string) => void,
): Promise<void> {
  const trained = await loadTrained(options.run, options);
  const { config, tokenizer, contestant, process } = trained;
  if (!contestant.unmasking) {
    trained.model.dispose();
    throw new ConfigError(
      `Option --model ${contestant.kind}: it does not fill blanks (it does not generate by unmasking)`,
    );
  }
  const mask = contestant.unmasking.maskId(process);
  let prompt: Int32Array;
  try {
    prompt = blanksOf(options.text, {
      tokenizer,
      maskId: mask,
      length: config.blockLength,
    });
  } catch (e) {
    trained.model.dispose();
    throw e;
  }
  const { steps, strategy } = unmaskingOf(trained, options);
  const every = Math.max(1, Math.round(steps / 16));
  const placed = await placeModel(
    trained.model,
    options.engine,
    trained.contestant.kind,
    processStagger(trained.process),
  );
  options.log?.(`engine: ${placed.engine}`);
  try {
    const out = await contestant.generate(process, placed.model, {
      length: prompt.length,
      prng: prng(options.rng),
      prompt,
      ...(options.temperature !== undefined
        ? { temperature: options.temperature }
        : {}),
      steps,
      strategy,
      onStep: (s) => {
        if (!options.quiet && (s.step % every === 0 || s.step === s.steps)) {
          print(
            `--- step ${s.step}/${s.steps} ---\n${
              showMasked(tokenizer, s.tokens, mask)
            }`,
          );
        }
      },
    });
    if (!options.quiet) print("=== filled ===");
    print(tokenizer.decode(out.tokens));
  } finally {
    placed.dispose();
  }
}

/**
 * The ids of a text prompt, checked to leave room for generation: a causal
 * model's row holds its start token, the prompt and at least one drawn
 * token; a denoiser's holds the prompt and at least one blank.
 *
 * @param text The prompt.
 * @param options The tokenizer, the row length and whether the model is causal.
 * @returns The ids.
 * @throws {ConfigError} When the prompt is empty, too long for the row, or
 *   not well-formed Unicode (a lone surrogate).
 *
 * @example
 * ```ts
 * import { promptIds } from "@d3pm/experiment";
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const tokenizer = new ByteTokenizer();
 * assertEquals([...promptIds("ab", { tokenizer, length: 4, causal: true })], [97, 98]);
 * assertThrows(() => promptIds("abc", { tokenizer, length: 4, causal: true }), Error, "at most 2");
 * ```
 */
export function promptIds(
  text: string,
  options: { tokenizer: Tokenizer; length: number; causal: boolean },
): Int32Array {
  // A lone surrogate (JSON's "\ud800") is no text: UTF-8 encoding made it
  // U+FFFD, and the model continued a prompt that was not the one sent.
  if (!text.isWellFormed()) {
    const at = [...text].findIndex((c) => c.isWellFormed() === false);
    throw new ConfigError(
      `The prompt holds a lone UTF-16 surrogate at character ${at} (U+${
        [...text][at].charCodeAt(0).toString(16).toUpperCase()
      }): it is not text and would be read as U+FFFD; send well-formed Unicode`,
    );
  }
  const ids = Int32Array.from(options.tokenizer.encode(text));
  const room = options.length - (options.causal ? 2 : 1);
  if (ids.length === 0) {
    throw new ConfigError(
      "The prompt is empty: give some text, or leave --prompt out",
    );
  }
  if (ids.length > room) {
    throw new ConfigError(
      `The prompt is ${ids.length} tokens; the ${
        options.causal ? "causal" : "masked"
      } model's row of ${options.length} takes at most ${room} so that something is generated`,
    );
  }
  return ids;
}

/** The unmasking steps and strategy of a tool's request. */
/**
 * Refuse a tool's option that the chosen model would not use, rather than
 * ignore it: `--strategy` and `--every` need a model that generates by
 * unmasking (the D3PM, the MLM), `--steps` one that generates in steps (or
 * block diffusion's steps per block, at most its `T`).
 *
 * @param contestant The model's contestant.
 * @param process Its process.
 * @param options The tool's options (`every` for `deno task sample`).
 * @throws {ConfigError} Naming the option and the models that take it.
 *
 * @example `--strategy` is not ignored for the AR model
 * ```ts
 * import { AR, checkToolOptions, ConfigError } from "@d3pm/experiment";
 * import { assertThrows } from "@std/assert";
 * assertThrows(
 *   () => checkToolOptions(AR, undefined as never, { strategy: "confidence" }),
 *   ConfigError,
 *   "Option --strategy applies only to a model that generates by unmasking (d3pm, mlm); --model ar does not: leave it out",
 * );
 * ```
 */
export function checkToolOptions<P extends ContestantProcess>(
  contestant: Pick<Contestant<P>, "kind" | "unmasking" | "blockUnmasking">,
  process: P,
  options: { steps?: number; strategy?: string; every?: number },
): void {
  const takers = (has: (c: Contestant) => unknown) =>
    contestants().filter(has).map((c) => c.kind).join(", ");
  const refuse = (flag: string, what: string) => {
    throw new ConfigError(
      `Option ${flag} applies only to a model that ${what}; --model ${contestant.kind} does not: leave it out`,
    );
  };
  const unmasks = (c: Pick<Contestant, "unmasking">) => c.unmasking;
  if (!contestant.unmasking) {
    const what = `generates by unmasking (${takers(unmasks)})`;
    if (options.strategy !== undefined) refuse("--strategy", what);
    if (options.every !== undefined) refuse("--every", what);
  }
  const block = contestant.blockUnmasking;
  if (!generatesInSteps(contestant) && options.steps !== undefined) {
    refuse("--steps", `generates in steps (${takers(generatesInSteps)})`);
  }
  if (block && options.steps !== undefined) {
    const T = block.steps(process);
    if (options.steps > T) {
      throw new ConfigError(
        `Option --steps must be an integer in [1, ${T}] (the model's diffusion steps per block), got ${options.steps}`,
      );
    }
  }
}

function unmaskingOf(
  trained: TrainedModel,
  options: ToolModel,
): { steps: number; strategy: "ancestral" | "confidence" } {
  const u = trained.contestant.unmasking!;
  const T = u.steps(trained.process);
  if (options.steps !== undefined && options.steps > T) {
    throw new ConfigError(
      `Option --steps must be an integer in [1, ${T}] (the model's diffusion steps), got ${options.steps}`,
    );
  }
  return {
    steps: options.steps ?? Math.min(64, T),
    strategy: options.strategy ?? u.strategy,
  };
}

/**
 * The ids of a text with blanks: `[MASK]` is one mask id, `[MASK*N]` is N.
 *
 * @param text The text.
 * @param options The tokenizer, the mask id and the model's context.
 * @returns The ids.
 * @throws {ConfigError} When the text has no blank, a count is out of
 *   range, or the ids do not fit the context.
 *
 * @example
 * ```ts
 * import { blanksOf } from "@d3pm/experiment";
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const ids = blanksOf("ab[MASK*2]c", { tokenizer: new ByteTokenizer(), maskId: 259, length: 8 });
 * assertEquals([...ids], [97, 98, 259, 259, 99]);
 * ```
 *
 * @example A blank that is not well formed is refused, not kept as text
 * ```ts
 * import { blanksOf, ConfigError } from "@d3pm/experiment";
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { assertThrows } from "@std/assert";
 * const options = { tokenizer: new ByteTokenizer(), maskId: 259, length: 8 };
 * assertThrows(() => blanksOf("a[MASK] b[MASK*-1]", options), ConfigError, "[MASK*-1]: the count must be an integer in [1, 8]");
 * assertThrows(() => blanksOf("a[MASK] b[MASK*2", options), ConfigError, 'malformed blank at "[MASK*2"');
 * ```
 */
export function blanksOf(
  text: string,
  options: { tokenizer: Tokenizer; maskId: number; length: number },
): Int32Array {
  const { tokenizer, maskId, length } = options;
  const ids: number[] = [];
  let last = 0;
  // Text between blanks, where a `[MASK` that is no blank is a mistake
  // (`[MASK*-1]`, `[MASK*3.5]`, an unclosed `[MASK*2`), not words to keep.
  const literal = (part: string) => {
    const at = part.indexOf("[MASK");
    if (at >= 0) {
      throw new ConfigError(
        `The text has a malformed blank at ${
          JSON.stringify(part.slice(at, at + 16))
        }: write [MASK] or [MASK*N] with N in digits, 1 to ${length}`,
      );
    }
    ids.push(...tokenizer.encode(part));
  };
  for (const m of text.matchAll(/\[MASK(?:\*([^\][]*))?\]/g)) {
    literal(text.slice(last, m.index));
    const n = m[1] === undefined ? 1 : /^\d+$/.test(m[1]) ? Number(m[1]) : NaN;
    if (!(n >= 1 && n <= length)) {
      throw new ConfigError(
        `[MASK*${
          m[1]
        }]: the count must be an integer in [1, ${length}], in digits`,
      );
    }
    for (let i = 0; i < n; i++) ids.push(maskId);
    last = m.index! + m[0].length;
  }
  literal(text.slice(last));
  if (!ids.includes(maskId)) {
    throw new ConfigError(
      "The text has no blank: write [MASK] or [MASK*N] where tokens should be filled",
    );
  }
  if (ids.length > length) {
    throw new ConfigError(
      `The text is ${ids.length} tokens; the model's context is ${length}`,
    );
  }
  return Int32Array.from(ids);
}

/**
 * Text of ids with masks shown as a block character, for terminal displays.
 *
 * @param tokenizer Decodes the ids between masks.
 * @param ids The ids.
 * @param maskId The mask id.
 * @returns The text, `░` for each mask.
 *
 * @example
 * ```ts
 * import { showMasked } from "@d3pm/experiment";
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * assertEquals(showMasked(new ByteTokenizer(), [104, 259, 105], 259), "h░i");
 * ```
 */
export function showMasked(
  tokenizer: Tokenizer,
  ids: ArrayLike<number>,
  maskId: number,
): string {
  let out = "";
  let run: number[] = [];
  const flush = () => {
    if (run.length) out += tokenizer.decode(run);
    run = [];
  };
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === maskId) {
      flush();
      out += "░";
    } else run.push(ids[i]);
  }
  flush();
  return out;
}
