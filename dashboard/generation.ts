/**
 * Generation for the playground, on the server: requests validated, queued
 * per model with a bound (429 beyond it), bounded in number running over all
 * models (429 beyond it), timed out, cancelled when the client goes away, and
 * each step streamed as a frame. Models are loaded
 * once and kept (the least recently used dropped beyond a bound).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { prng } from "@d3pm/core";
import {
  type Contestant,
  contestantOf,
  type ContestantProcess,
  DamagedFileError,
  type GenerationRequest,
  loadTrained,
  type PlacedModel,
  placeModel,
  processStagger,
  promptIds,
  RunFolder,
} from "@d3pm/experiment";
import { filesStamp, openRunFolder } from "./run_ids.ts";
import { BpeFileError, type Tokenizer } from "@d3pm/tokenizer";

/**
 * An error with the HTTP status it answers with.
 *
 * @example A bad request is a 400 naming the field
 * ```ts
 * import { DEFAULT_LIMITS, HttpError, parseGenerationInput } from "@d3pm/dashboard";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const e = assertThrows(() => parseGenerationInput({ run: "a", model: "d3pm", sampler: "beam" }, DEFAULT_LIMITS), HttpError);
 * assertEquals(e.status, 400);
 * assertEquals(e.message, 'Bad generation request: sampler must be one of ancestral, cached, confidence, got "beam"');
 * assertEquals(new HttpError(404, "No run x").status, 404);
 * ```
 */
export class HttpError extends Error {
  /**
   * An error for a response.
   *
   * @param status The HTTP status (400, 404, 429, …).
   * @param message One line saying what is wrong and what is accepted.
   */
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "HttpError";
  }
}

/** The bounds of generation. */
export interface GenerationLimits {
  /** Longest prompt, in characters (default 2,000). */
  maxPromptChars: number;
  /** Requests waiting per model beyond the one running (default 4); more get 429. */
  maxWaiting: number;
  /**
   * Generations running at once over all models (default 4): a request for
   * a model with none running gets 429 beyond it (one waiting for a busy
   * model takes over its place when it ends).
   */
  maxRunning: number;
  /** Models kept loaded (default 4). */
  maxLoaded: number;
  /** A request's time limit, ms, waiting included (default 120,000). */
  timeoutMs: number;
  /** Highest temperature (default 5; the lowest is 0, greedy). */
  maxTemperature: number;
}

/**
 * The defaults of {@linkcode GenerationLimits}.
 *
 * @example A prompt over the default bound is refused
 * ```ts
 * import { DEFAULT_LIMITS, HttpError, parseGenerationInput } from "@d3pm/dashboard";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(DEFAULT_LIMITS.maxPromptChars, 2000);
 * const prompt = "x".repeat(DEFAULT_LIMITS.maxPromptChars + 1);
 * assertThrows(
 *   () => parseGenerationInput({ run: "a", model: "ar", prompt }, DEFAULT_LIMITS),
 *   HttpError,
 *   "prompt is 2001 characters; at most 2000",
 * );
 * ```
 */
export const DEFAULT_LIMITS: GenerationLimits = {
  maxPromptChars: 2000,
  maxWaiting: 4,
  maxRunning: 4,
  maxLoaded: 4,
  timeoutMs: 120_000,
  maxTemperature: 5,
};

/**
 * The samplers the playground offers.
 *
 * @example Each is accepted by name
 * ```ts
 * import { DEFAULT_LIMITS, parseGenerationInput, SAMPLERS } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * assertEquals(SAMPLERS, ["ancestral", "cached", "confidence"]);
 * for (const sampler of SAMPLERS) {
 *   assertEquals(parseGenerationInput({ run: "a", model: "d3pm", sampler }, DEFAULT_LIMITS).sampler, sampler);
 * }
 * ```
 */
export const SAMPLERS = ["ancestral", "cached", "confidence"] as const;
/** One of {@linkcode SAMPLERS}: `cached` is ancestral reusing logits while no token changed. */
export type Sampler = typeof SAMPLERS[number];

/** A checked generation request. */
export interface GenerationInput {
  /** The run id. */
  run: string;
  /** Which seed's model. */
  seed: number;
  /** The contestant. */
  model: string;
  /** Text the row starts from. */
  prompt?: string;
  /** A whole row to fill in: ids, with the mask id where to generate (denoisers that fill blanks; not block diffusion). */
  tokens?: number[];
  /** Unmasking steps (denoisers; default min(64, T)); block diffusion: per block. */
  steps?: number;
  /** The sampler (denoisers). */
  sampler: Sampler;
  /** Softmax temperature; 0 is greedy (the most likely token at each draw). */
  temperature: number;
  /** Nucleus mass. */
  topP: number;
  /** Seed of the draws. */
  rng: number;
}

/**
 * Check a generation request's body (before any model is touched).
 *
 * @param body The parsed JSON body.
 * @param limits The bounds.
 * @returns The checked request.
 * @throws {HttpError} 400 naming the field and what it accepts.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS, HttpError, parseGenerationInput } from "@d3pm/dashboard";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const ok = parseGenerationInput({ run: "a", model: "d3pm", steps: 8 }, DEFAULT_LIMITS);
 * assertEquals([ok.seed, ok.sampler, ok.temperature, ok.topP], [0, "ancestral", 1, 1]);
 * // 0 is greedy; below it, or above the bound, is refused.
 * assertEquals(parseGenerationInput({ run: "a", model: "d3pm", temperature: 0 }, DEFAULT_LIMITS).temperature, 0);
 * assertThrows(
 *   () => parseGenerationInput({ run: "a", model: "d3pm", temperature: -0.5 }, DEFAULT_LIMITS),
 *   HttpError,
 *   "temperature must be a number in [0, 5] (0: greedy), got -0.5",
 * );
 * ```
 */
export function parseGenerationInput(
  body: unknown,
  limits: GenerationLimits,
): GenerationInput {
  const bad = (msg: string): never => {
    throw new HttpError(400, `Bad generation request: ${msg}`);
  };
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    bad("the body must be a JSON object");
  }
  const b = body as Record<string, unknown>;
  const known = new Set([
    "run",
    "seed",
    "model",
    "prompt",
    "tokens",
    "steps",
    "sampler",
    "temperature",
    "topP",
    "rng",
  ]);
  for (const k of Object.keys(b)) {
    if (!known.has(k)) {
      bad(
        `unknown field "${k.slice(0, 40)}"; accepted: ${[...known].join(", ")}`,
      );
    }
  }
  const int = (k: string, lo: number, hi: number, dflt?: number) => {
    const v = b[k] ?? dflt;
    if (v === undefined) return undefined;
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) {
      bad(
        `${k} must be an integer in [${lo}, ${hi}], got ${
          JSON.stringify(v)?.slice(0, 40)
        }`,
      );
    }
    return v as number;
  };
  const number = (
    k: string,
    ok: (v: number) => boolean,
    what: string,
    dflt: number,
  ) => {
    const v = b[k] ?? dflt;
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) {
      bad(`${k} must be ${what}, got ${JSON.stringify(v)?.slice(0, 40)}`);
    }
    return v as number;
  };
  if (typeof b.run !== "string" || b.run === "") {
    bad("run must be a run id (a string)");
  }
  if (
    typeof b.model !== "string" ||
    !/^[a-z][a-z0-9-]{0,39}$/.test(b.model as string)
  ) {
    bad("model must be a contestant's kind, e.g. ar or d3pm");
  }
  if (b.prompt !== undefined) {
    if (typeof b.prompt !== "string") bad("prompt must be a string");
    if ((b.prompt as string).length > limits.maxPromptChars) {
      bad(
        `prompt is ${
          (b.prompt as string).length
        } characters; at most ${limits.maxPromptChars}`,
      );
    }
  }
  if (b.tokens !== undefined) {
    if (b.prompt !== undefined) bad("give prompt or tokens, not both");
    if (
      !Array.isArray(b.tokens) || b.tokens.length === 0 ||
      b.tokens.length > 4096 ||
      !b.tokens.every((x) => Number.isInteger(x) && x >= 0 && x < 1 << 24)
    ) {
      bad("tokens must be a non-empty array of at most 4,096 token ids");
    }
  }
  const sampler = b.sampler ?? "ancestral";
  if (!SAMPLERS.includes(sampler as Sampler)) {
    bad(
      `sampler must be one of ${SAMPLERS.join(", ")}, got ${
        JSON.stringify(sampler)?.slice(0, 40)
      }`,
    );
  }
  return {
    run: b.run as string,
    seed: int("seed", 0, 999, 0)!,
    model: b.model as string,
    ...(b.prompt !== undefined && b.prompt !== ""
      ? { prompt: b.prompt as string }
      : {}),
    ...(b.tokens !== undefined ? { tokens: b.tokens as number[] } : {}),
    ...(b.steps !== undefined ? { steps: int("steps", 1, 100_000)! } : {}),
    sampler: sampler as Sampler,
    temperature: number(
      "temperature",
      (v) => v >= 0 && v <= limits.maxTemperature,
      `a number in [0, ${limits.maxTemperature}] (0: greedy)`,
      1,
    ),
    topP: number("topP", (v) => v > 0 && v <= 1, "a number in (0, 1]", 1),
    rng: int("rng", 0, 2 ** 32 - 1, 0)!,
  };
}

/** A model loaded for generation. */
export interface LoadedModel {
  /** Its contestant. */
  contestant: Contestant;
  /** Its process. */
  process: ContestantProcess;
  /** The run's tokenizer. */
  tokenizer: Tokenizer;
  /** Tokens per row. */
  length: number;
  /** The placed model. */
  placed: PlacedModel;
}

/** What a frame of a generation carries. */
export interface Frame {
  /** Steps done (a causal model: tokens drawn). */
  step: number;
  /** Steps in all. */
  steps: number;
  /** The row so far. */
  tokens: number[];
  /** Forward passes so far. */
  forwardPasses: number;
  /** Seconds since the generation started. */
  elapsed: number;
  /** Tokens generated per second so far. */
  tokensPerSecond: number;
  /** Rows (batches of one) per second, at this rate. */
  batchesPerSecond: number;
}

/** The first event of a generation: what the row starts as. */
export interface GenerationStart {
  /** The contestant. */
  model: string;
  /** The row before any step: given ids, the mask id where to generate (a causal model: 0 past the prompt). */
  tokens: number[];
  /** Positions given (not generated). */
  given: number[];
  /** The mask id of a denoiser. */
  maskId?: number;
  /**
   * Steps it will make; block generation: steps per block × blocks, the
   * numbering of its frames (block k's step j is k × `stepsPerBlock` + j;
   * blocks the prompt fills are skipped).
   */
  steps: number;
  /** Tokens per block (block generation). */
  blockSize?: number;
  /** Steps per block (block generation). */
  stepsPerBlock?: number;
  /** Where it runs. */
  engine: string;
}

/** The request's cancellation, with why. */
class Cancelled extends Error {
  constructor(why: string) {
    super(why);
    this.name = "Cancelled";
  }
}

/**
 * Run one checked request on a loaded model: the start row, then a frame
 * per step (a causal model: per token; block diffusion: per step of each
 * block, `steps` per block; a contestant that neither draws tokens left to
 * right nor unmasks: its own `generate`'s steps, or one frame at its end),
 * until done or `signal` aborts.
 *
 * @param loaded The model.
 * @param input The checked request.
 * @param signal Aborts the generation between steps.
 * @returns The start, then frames.
 * @throws {HttpError} 400 when the request does not fit the model.
 *
 * @example A micro denoiser unmasks a row of 8 in 4 steps
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { DEFAULT_LIMITS, type Frame, generateFrames, HttpError, parseGenerationInput } from "@d3pm/dashboard";
 * import { maskedDiffusion } from "@d3pm/diffusion";
 * import { D3PM, placeModel } from "@d3pm/experiment";
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { preset, Transformer } from "@d3pm/transformer";
 * import { assertEquals, assertRejects } from "@std/assert";
 * await tf.setBackend("cpu");
 * const model = new Transformer(
 *   preset("micro", { kind: "bidirectional", vocabSize: 260, contextLength: 8, dModel: 8, dMlp: 16, dTime: 8 }),
 *   { seed: 0 },
 * );
 * const loaded = {
 *   contestant: D3PM,
 *   process: maskedDiffusion({
 *     kind: "masked-diffusion", vocab: 260, maskId: 259, steps: 100,
 *     schedule: { kind: "log-linear" }, objective: "mdlm",
 *   }),
 *   tokenizer: new ByteTokenizer(),
 *   length: 8,
 *   placed: await placeModel(model, "tfjs"),
 * };
 * const input = parseGenerationInput({ run: "a", model: "d3pm", steps: 4 }, DEFAULT_LIMITS);
 * const frames: Frame[] = [];
 * for await (const event of generateFrames(loaded, input, new AbortController().signal)) {
 *   if ("start" in event) assertEquals([event.start.maskId, event.start.steps, event.start.tokens], [259, 4, Array(8).fill(259)]);
 *   else frames.push(event.frame);
 * }
 * assertEquals(frames.map((f) => f.step), [1, 2, 3, 4]);
 * assertEquals(frames[3].tokens.includes(259), false); // nothing masked at the end
 * const tooMany = parseGenerationInput({ run: "a", model: "d3pm", steps: 101 }, DEFAULT_LIMITS);
 * await assertRejects(
 *   async () => {
 *     for await (const _ of generateFrames(loaded, tooMany, new AbortController().signal));
 *   },
 *   HttpError,
 *   "steps must be at most the process's T = 100, got 101",
 * );
 * loaded.placed.dispose();
 * ```
 */
export async function* generateFrames(
  loaded: LoadedModel,
  input: GenerationInput,
  signal: AbortSignal,
): AsyncGenerator<{ start: GenerationStart } | { frame: Frame }> {
  const { contestant, process, tokenizer, length } = loaded;
  const causal = contestant.network === "causal";
  const unmasking = contestant.unmasking;
  // Block by block: steps per block, a prefix but no blanks.
  const blockwise = unmasking ? undefined : contestant.blockUnmasking;
  // Neither: the contestant's own generator, whole rows (a prompt is its
  // to take or refuse; no steps, no blanks).
  const own = !causal && !unmasking && !blockwise;
  const maskId = (unmasking ?? blockwise)?.maskId(process);
  const T = (unmasking ?? blockwise)?.steps(process) ?? 0;
  const blockSize = blockwise?.blockSize(process);
  if (causal && input.steps !== undefined) {
    throw new HttpError(
      400,
      `steps sets a denoiser's unmasking steps; the causal model ${contestant.kind} draws one token per position: leave steps out, got ${input.steps}`,
    );
  }
  if (own && input.steps !== undefined) {
    throw new HttpError(
      400,
      `steps sets a denoiser's unmasking steps; the ${contestant.kind} model generates by its own generator, which takes none: leave steps out, got ${input.steps}`,
    );
  }
  if (
    input.temperature === 0 && !causal && !own &&
    !(await syncForward(loaded.placed.model, length, maskId ?? 0))
  ) {
    // The denoisers' greedy runs in the JavaScript sampler, which reads a
    // synchronous forward pass; a device generator draws at a temperature
    // > 0 only (a causal model's engines take 0 as their argmax). A
    // contestant's own generator uses neither: temperature 0 is its to take
    // or refuse, and it has no mask id to probe with.
    throw new HttpError(
      400,
      `temperature 0 (greedy) unmasks in the JavaScript sampler, which reads a synchronous forward pass; the ${contestant.kind} model here runs on ${
        loaded.placed.engine.split(/[:( ]/)[0]
      }, whose generator draws at a temperature > 0 only: give a small temperature such as 0.01, or serve with --engine tfjs or cpu`,
    );
  }
  const request: GenerationRequest = {
    length,
    prng: prng(input.rng),
    temperature: input.temperature,
    topP: input.topP,
  };
  let row: number[];
  let given: number[];
  if (input.tokens) {
    if (blockwise) {
      throw new HttpError(
        400,
        `Model ${contestant.kind} generates block by block, left to right: it cannot fill blanks given later context; send a prompt instead of tokens`,
      );
    }
    if (causal || maskId === undefined) {
      throw new HttpError(
        400,
        `Model ${contestant.kind} does not fill blanks: send a prompt instead of tokens`,
      );
    }
    if (input.tokens.length !== length) {
      throw new HttpError(
        400,
        `tokens must be a row of ${length} ids (the model's context), got ${input.tokens.length}`,
      );
    }
    if (input.tokens.some((x) => x >= tokenizer.vocabSize)) {
      throw new HttpError(
        400,
        `tokens must be ids below ${tokenizer.vocabSize}`,
      );
    }
    if (!input.tokens.includes(maskId)) {
      throw new HttpError(
        400,
        `tokens hold no blank: put the mask id ${maskId} where tokens should be filled`,
      );
    }
    request.prompt = Int32Array.from(input.tokens);
    row = [...input.tokens];
    given = row.flatMap((x, i) => (x === maskId ? [] : [i]));
  } else {
    let prefix: Int32Array | undefined;
    if (input.prompt) {
      try {
        prefix = promptIds(input.prompt, { tokenizer, length, causal });
      } catch (e) {
        throw new HttpError(400, (e as Error).message);
      }
      request.prefix = prefix;
    }
    const p = [...(prefix ?? [])];
    if (causal) {
      const start = (process.toJSON() as { start?: number }).start ?? 0;
      row = [start, ...p, ...new Array(length - 1 - p.length).fill(0)];
      given = Array.from({ length: 1 + p.length }, (_, i) => i);
    } else {
      // Its own generator's positions are shown as zeros until its row comes.
      row = [...p, ...new Array(length - p.length).fill(maskId ?? 0)];
      given = p.map((_, i) => i);
    }
  }
  let steps = length - given.length;
  // Steps of blocks the prefix fills (skipped; the frames count from there).
  let skipped = 0;
  if (!causal && !own) {
    const s = input.steps ?? Math.min(64, T);
    if (s > T) {
      throw new HttpError(
        400,
        `steps must be at most the process's T = ${T}${
          blockwise ? " (per block)" : ""
        }, got ${s}`,
      );
    }
    request.steps = steps = s;
    if (blockSize !== undefined) {
      if (input.sampler === "confidence") {
        throw new HttpError(
          400,
          `Model ${contestant.kind} unmasks each block ancestrally: sampler must be ancestral or cached, got confidence`,
        );
      }
      // The frames number the steps of every block: block k's step j is k·s + j.
      steps = Math.ceil(length / blockSize) * s;
      skipped = Math.floor(given.length / blockSize) * s;
    } else {
      request.strategy = input.sampler === "confidence"
        ? "confidence"
        : "ancestral";
    }
    if (input.sampler === "cached" && loaded.placed.model.timeConditioned) {
      throw new HttpError(
        400,
        "sampler cached needs a model that ignores t; this one is time-conditioned",
      );
    }
    request.cache = input.sampler === "cached";
  }
  yield {
    start: {
      model: contestant.kind,
      tokens: row,
      given,
      ...(maskId !== undefined ? { maskId } : {}),
      steps,
      ...(blockSize !== undefined
        ? { blockSize, stepsPerBlock: request.steps! }
        : {}),
      engine: loaded.placed.engine,
    },
  };
  const frames: Frame[] = [];
  let made = 0;
  let wake: (() => void) | undefined;
  const toGenerate = length - given.length;
  const t0 = performance.now();
  request.onStep = (s) => {
    if (signal.aborted) {
      throw new Cancelled(String(signal.reason ?? "cancelled"));
    }
    const elapsed = (performance.now() - t0) / 1000;
    const done = causal
      ? s.step
      : own
      ? toGenerate * s.step / s.steps
      : countGenerated(s.tokens, given, maskId);
    made++;
    frames.push({
      step: s.step,
      steps: s.steps,
      tokens: Array.from(s.tokens.subarray(0, length)),
      forwardPasses: s.forwardPasses,
      elapsed,
      tokensPerSecond: elapsed > 0 ? done / elapsed : 0,
      batchesPerSecond: elapsed > 0
        ? ((s.step - skipped) / (s.steps - skipped)) / elapsed
        : 0,
    });
    wake?.();
    // A turn of the event loop: the frame goes out while the next step
    // computes (tfjs's reads resolve without one on a CPU backend).
    return new Promise<void>((r) => setTimeout(r, 0));
  };
  let finished = false;
  let failure: unknown;
  const work = contestant.generate(process, loaded.placed.model, request).then(
    (out) => {
      // A device generator without steps: one frame at the end.
      if (made === 0) {
        const elapsed = (performance.now() - t0) / 1000;
        frames.push({
          step: steps,
          steps,
          tokens: Array.from(out.tokens.subarray(0, length)),
          forwardPasses: out.forwardPasses,
          elapsed,
          tokensPerSecond: toGenerate / Math.max(elapsed, 1e-9),
          batchesPerSecond: 1 / Math.max(elapsed, 1e-9),
        });
      }
    },
    (e) => {
      failure = e;
    },
  ).finally(() => {
    finished = true;
    wake?.();
  });
  try {
    while (true) {
      if (frames.length) {
        yield { frame: frames.shift()! };
        continue;
      }
      if (finished) break;
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
    await work;
    if (failure !== undefined && !(failure instanceof Cancelled)) throw failure;
  } finally {
    if (!finished) {
      // The consumer left: stop at the next step, and wait for the model to be free.
      await work;
    }
  }
}

/** What {@linkcode syncForward} found, per placed model (it never changes engine). */
const SYNC_FORWARD = new WeakMap<object, boolean>();

/**
 * Whether a placed model's `forward` returns logits synchronously (tfjs, the
 * CPU engine's), not a promise (WebGPU's) — what the JavaScript sampler
 * reads. Found by calling it, once per placed model, as the sampler does
 * (one row of masks at t = 1): how the function is written says nothing
 * (a plain function may return a promise). A forward that throws is taken
 * as synchronous: the sampler then fails as it would have.
 */
async function syncForward(
  model: unknown,
  length: number,
  maskId: number,
): Promise<boolean> {
  const m = model as {
    forward?: (x: tf.Tensor2D, o: object) => unknown;
  };
  if (typeof m.forward !== "function") return false;
  const known = SYNC_FORWARD.get(m);
  if (known !== undefined) return known;
  let pending: PromiseLike<unknown> | undefined;
  try {
    tf.tidy(() => {
      const out = m.forward!(
        tf.fill([1, length], maskId, "int32") as tf.Tensor2D,
        { t: tf.ones([1]), training: false },
      );
      // Not returned: the tidy disposes a tensor; a promise is kept.
      if (typeof (out as { then?: unknown } | null)?.then === "function") {
        pending = out as PromiseLike<unknown>;
      }
    });
  } catch {
    // Not known: the next request tries again.
    return true;
  }
  const sync = pending === undefined;
  if (pending) {
    // Settled before the refusal, so no work of it outlives the request.
    await Promise.resolve(pending).then(
      (v) => tf.dispose(v as never),
      () => {},
    );
  }
  SYNC_FORWARD.set(m, sync);
  return sync;
}

function countGenerated(
  tokens: Int32Array,
  given: number[],
  maskId: number | undefined,
): number {
  let n = 0;
  for (let i = 0; i < tokens.length; i++) if (tokens[i] !== maskId) n++;
  return n - given.length;
}

const AsyncGeneratorProto = Object.getPrototypeOf(
  Object.getPrototypeOf((async function* () {})()),
) as AsyncGenerator<unknown>;

/** Loads a model of a run (the server's way: the run folder and the engine). */
export type ModelLoader = (
  dir: string,
  seed: number,
  kind: string,
) => Promise<LoadedModel>;

/**
 * Run `read` over a run folder opened once ({@linkcode openRunFolder}):
 * `read` gets the path to read its files under, so every file comes from
 * the folder that lay at `dir` when it was opened, whatever is renamed on
 * its path meanwhile. An error's message names `dir`, not that path (and
 * so does a `DamagedFileError`'s `path`).
 *
 * @param dir The run folder's real path.
 * @param read What reads it.
 * @returns What `read` returns.
 * @throws {HttpError} 404 when `dir` no longer led to that folder.
 *
 * @example
 * ```ts
 * import { HttpError, inRunFolder } from "@d3pm/dashboard";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const dir = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.writeTextFile(`${dir}/config.json`, "{}");
 * assertEquals(await inRunFolder(dir, (at) => Deno.readTextFile(`${at}/config.json`)), "{}");
 * await Deno.remove(dir, { recursive: true });
 * await assertRejects(() => inRunFolder(dir, () => Promise.resolve(1)), HttpError, "moved or replaced");
 * ```
 */
export async function inRunFolder<T>(
  dir: string,
  read: (at: string) => Promise<T>,
): Promise<T> {
  const opened = await openRunFolder(dir);
  if (!opened) {
    throw new HttpError(
      404,
      "The run folder was moved or replaced as it was opened; try again",
    );
  }
  try {
    return await read(opened.at);
  } catch (e) {
    if (!(e instanceof Error) || opened.at === dir) throw e;
    e.message = e.message.replaceAll(opened.at, dir);
    // A damaged file's own name too: the folder's, not the descriptor's.
    if (e instanceof DamagedFileError && e.path.startsWith(`${opened.at}/`)) {
      throw new DamagedFileError(e.message, {
        path: dir + e.path.slice(opened.at.length),
        detail: e.detail,
        cause: e.cause,
      });
    }
    throw e;
  } finally {
    opened.close();
  }
}

/**
 * The default loader: the run's trained model on `engine`, every file of
 * it read from the run folder opened once ({@linkcode inRunFolder}). Files
 * that cannot be read as the model (a truncated `model.safetensors`, a bad
 * `process.json`) are an {@linkcode HttpError} 503 in one line.
 *
 * @param engine Where generation runs (`tfjs` shows every step).
 * @returns The loader.
 *
 * @example A folder that holds no run is refused in one line
 * ```ts
 * import { HttpError, trainedModelLoader } from "@d3pm/dashboard";
 * import { assertRejects } from "@std/assert";
 * const load = trainedModelLoader("tfjs");
 * const dir = await Deno.makeTempDir();
 * await assertRejects(() => load(dir, 0, "d3pm"), HttpError, `Cannot load model d3pm of seed 0: Cannot read run ${dir}: no config.json there`);
 * await Deno.remove(dir);
 * ```
 */
export function trainedModelLoader(
  engine: "tfjs" | "webgpu" | "cpu" | "auto",
): ModelLoader {
  return async (dir, seed, kind) => {
    // Every file (config, tokenizer, weights) read from the folder opened
    // once: a swap of it for a link out, mid-load, does not reach them.
    const t = await inRunFolder(
      dir,
      (at) => loadTrained(at, { seed, model: contestantOf(kind) }),
    ).catch((e) => {
      throw damaged(e, `Cannot load model ${kind} of seed ${seed}`);
    });
    const placed = await placeModel(
      t.model,
      engine,
      t.contestant.kind,
      processStagger(t.process),
    );
    return {
      contestant: t.contestant,
      process: t.process,
      tokenizer: t.tokenizer,
      length: t.config.blockLength,
      placed,
    };
  };
}

/**
 * A model, or what the routes read of its run (its vocabulary), that could
 * not be read: the client's one line, a 503, not a 500 "Internal error".
 * Files found there but not readable as the model's (a `DamagedFileError`:
 * a truncated `model.safetensors`, a `process.json` not JSON or not an
 * object, a BPE file or a `data.json` that does not parse) are called
 * damaged, and so is a BPE file `openTokenizer` refuses (its `BpeFileError`,
 * which the vocabulary and tokenize routes get as it is where `loadTrained`
 * wraps it): every route says the same of the same file. Anything else (a
 * missing `config.json`, another run's, a system error such as too many
 * open files or a permission denied) keeps its own wording. A refusal
 * already made (an HttpError: the folder moved) is kept.
 *
 * @param e What reading threw.
 * @param what What could not be read, the answer's start (`Cannot load
 *   model ar of seed 0`).
 * @returns The error to throw: an HttpError 503, or `e` as it was.
 *
 * @example
 * ```ts
 * import { damaged, HttpError } from "./generation.ts";
 * import { DamagedFileError } from "@d3pm/experiment";
 * import { BpeFileError } from "@d3pm/tokenizer";
 * import { assertEquals, assertInstanceOf } from "@std/assert";
 * const cut = new DamagedFileError("r/data.json is not valid JSON", {
 *   path: "r/data.json",
 *   detail: "is not valid JSON",
 * });
 * const e = damaged(cut, "Cannot read the vocabulary of run r") as HttpError;
 * assertInstanceOf(e, HttpError);
 * assertEquals(
 *   [e.status, e.message],
 *   [503, "Cannot read the vocabulary of run r: the model's files are damaged: r/data.json is not valid JSON"],
 * );
 * const bpe = new BpeFileError("r/tokenizer.json", "is not valid JSON");
 * assertEquals(
 *   (damaged(bpe, "x") as HttpError).message,
 *   "x: the model's files are damaged: Cannot load BPE: r/tokenizer.json is not valid JSON",
 * );
 * assertEquals((damaged(new Error("EMFILE\nmore"), "x") as HttpError).message, "x: EMFILE");
 * const kept = new HttpError(404, "moved");
 * assertEquals(damaged(kept, "x"), kept);
 * ```
 */
export function damaged(e: unknown, what: string): unknown {
  if (e instanceof HttpError || !(e instanceof Error)) return e;
  const first = e.message.split("\n")[0];
  return new HttpError(
    503,
    `${what}: ${
      e instanceof DamagedFileError || e instanceof BpeFileError
        ? "the model's files are damaged: "
        : ""
    }${first}`,
  );
}

interface Slot {
  key: string;
  running: boolean;
  waiting: { go: () => void; fail: (e: unknown) => void }[];
}

/**
 * The queue and the loaded models: at most one generation per model at a
 * time, at most `maxWaiting` waiting per model, at most `maxRunning`
 * running over all models, models loaded on first use and kept up to
 * `maxLoaded`.
 *
 * @example One running, one waiting, the next refused with 429
 * ```ts
 * import { GenerationService, HttpError } from "@d3pm/dashboard";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const service = new GenerationService(() => Promise.reject(new Error("unused")), { maxWaiting: 1 });
 * const signal = new AbortController().signal;
 * const release = await service.acquire("model", signal);
 * const waiting = service.acquire("model", signal);
 * assertEquals(service.waiting, 1);
 * const e = await assertRejects(() => service.acquire("model", signal), HttpError);
 * assertEquals(e.status, 429);
 * release();
 * (await waiting)();
 * ```
 *
 * @example Two running over all models at most: a third model waits for none, it is refused
 * ```ts
 * import { GenerationService, HttpError } from "@d3pm/dashboard";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const service = new GenerationService(() => Promise.reject(new Error("unused")), { maxRunning: 2 });
 * const signal = new AbortController().signal;
 * const a = await service.acquire("a", signal);
 * const b = await service.acquire("b", signal);
 * assertEquals(service.running, 2);
 * await assertRejects(() => service.acquire("c", signal), HttpError, "2 generations run over all models (the bound)");
 * a();
 * (await service.acquire("c", signal))(); // a's place is free
 * b();
 * assertEquals(service.running, 0);
 * ```
 */
export class GenerationService {
  /** The bounds in force. */
  readonly limits: GenerationLimits;
  #load: ModelLoader;
  #slots = new Map<string, Slot>();
  #running = 0;
  #models = new Map<string, { model: Promise<LoadedModel>; used: number }>();
  /** Requests answered 429 (a model's queue full, or `maxRunning` reached). */
  refused = 0;
  /** Generations completed. */
  completed = 0;

  /** Generations running now, over all models (waiting ones aside). */
  get running(): number {
    return this.#running;
  }
  /** Requests waiting now for their model's turn, over all models. */
  get waiting(): number {
    let n = 0;
    for (const s of this.#slots.values()) n += s.waiting.length;
    return n;
  }
  /** Generations cancelled (client gone or time-out, waiting included). */
  cancelled = 0;
  /** Generations that failed: an error of the server or the model. */
  failed = 0;
  /**
   * Requests the model refused as bad, with a 400 before any event (steps
   * over its T, a row that does not fit, a sampler it lacks): the client's
   * mistake, counted apart from `failed`.
   */
  invalid = 0;

  /**
   * A service.
   *
   * @param load How models are loaded.
   * @param limits The bounds (defaults: {@linkcode DEFAULT_LIMITS}).
   */
  constructor(load: ModelLoader, limits: Partial<GenerationLimits> = {}) {
    this.#load = load;
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /**
   * Wait for the model's turn.
   *
   * @param key The model (`dir seed kind`).
   * @param signal Gives up waiting.
   * @returns A function that frees the turn (call it once).
   * @throws {HttpError} 429 when the model's queue is full, or when the
   *   model has none running and `maxRunning` generations run.
   */
  async acquire(key: string, signal: AbortSignal): Promise<() => void> {
    let slot = this.#slots.get(key);
    if (!slot) {
      if (this.#running >= this.limits.maxRunning) {
        this.refused++;
        throw new HttpError(
          429,
          `The server is busy: ${this.#running} generations run over all models (the bound); retry in a moment`,
        );
      }
      slot = { key, running: false, waiting: [] };
      this.#slots.set(key, slot);
    }
    const s = slot;
    const release = () => {
      const next = s.waiting.shift();
      // The next in the model's queue takes over its place in the bound.
      if (next) next.go();
      else {
        s.running = false;
        this.#running--;
        this.#slots.delete(key);
      }
    };
    if (!s.running) {
      s.running = true;
      this.#running++;
      return release;
    }
    if (s.waiting.length >= this.limits.maxWaiting) {
      this.refused++;
      throw new HttpError(
        429,
        `This model is busy: one generation runs and ${s.waiting.length} wait (the bound); retry in a moment`,
      );
    }
    return await new Promise<() => void>((resolve, reject) => {
      const entry = {
        go: () => {
          signal.removeEventListener("abort", onAbort);
          resolve(release);
        },
        fail: reject,
      };
      const onAbort = () => {
        const i = s.waiting.indexOf(entry);
        if (i >= 0) s.waiting.splice(i, 1);
        reject(new Cancelled("gave up waiting"));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      s.waiting.push(entry);
    });
  }

  /**
   * The loaded model (loading it on first use; the least recently used
   * beyond `maxLoaded` is released).
   *
   * @param dir The run folder.
   * @param seed The seed.
   * @param kind The contestant.
   * @returns The model.
   */
  async model(dir: string, seed: number, kind: string): Promise<LoadedModel> {
    const base = `${dir}\u0000${seed}\u0000${kind}`;
    // The files as they are now: a run retrained in its folder (--force) is
    // loaded again — the old weights were kept and generated from.
    const folder = new RunFolder(dir);
    const m = folder.modelDir(seed, kind);
    const key = `${base}\u0000${await filesStamp([
      folder.configPath,
      folder.tokenizerPath,
      `${m}/model.safetensors`,
      `${m}/config.json`,
      `${m}/process.json`,
    ])}`;
    for (const [k, old] of this.#models) {
      if (k !== key && k.startsWith(`${base}\u0000`)) {
        this.#models.delete(k);
        old.model.then((x) => x.placed.dispose(), () => {});
      }
    }
    let entry = this.#models.get(key);
    if (!entry) {
      entry = { model: this.#load(dir, seed, kind), used: 0 };
      this.#models.set(key, entry);
      entry.model.catch(() => this.#models.delete(key));
    }
    entry.used = performance.now();
    const model = await entry.model;
    while (this.#models.size > this.limits.maxLoaded) {
      const [oldest] = [...this.#models].filter(([k]) => !this.#busy(k))
        .sort((a, b) => a[1].used - b[1].used);
      if (!oldest) break;
      this.#models.delete(oldest[0]);
      oldest[1].model.then((m) => m.placed.dispose(), () => {});
    }
    return model;
  }

  #busy(modelKey: string): boolean {
    // A model's key is its slot's key and the stamp of its files.
    return this.#slots.has(modelKey.split("\u0000").slice(0, 3).join("\u0000"));
  }

  /**
   * Run a checked request: wait for the model, load it, stream the start
   * and the frames; the time limit and `signal` cancel it.
   *
   * @param dir The run's folder.
   * @param input The checked request.
   * @param signal The client's signal.
   * @returns The events.
   * @throws {HttpError} 429 when the model's queue is full (before any event).
   */
  async open(
    dir: string,
    input: GenerationInput,
    signal: AbortSignal,
  ): Promise<AsyncGenerator<{ start: GenerationStart } | { frame: Frame }>> {
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort("timed out"),
      this.limits.timeoutMs,
    );
    const all = AbortSignal.any([signal, timeout.signal]);
    const key = `${dir}\u0000${input.seed}\u0000${input.model}`;
    let release: () => void;
    try {
      release = await this.acquire(key, all);
    } catch (e) {
      clearTimeout(timer);
      if (!(e instanceof Cancelled)) throw e;
      this.cancelled++;
      // A wait over the time limit is a time-out, as a generation over it
      // is (it was a 500 naming "Cancelled: gave up waiting").
      throw timeout.signal.aborted && !signal.aborted
        ? new HttpError(
          504,
          `Generation timed out after ${
            this.limits.timeoutMs / 1000
          } s waiting for the model (another generation held it)`,
        )
        : new HttpError(503, "The client left while waiting for the model");
    }
    let started = false, freed = false;
    const free = () => {
      if (freed) return;
      freed = true;
      clearTimeout(timer);
      release();
    };
    // deno-lint-ignore no-this-alias
    const self = this;
    const gen = (async function* () {
      started = true;
      let done = false, invalid = false;
      try {
        const loaded = await self.model(dir, input.seed, input.model);
        for await (const e of generateFrames(loaded, input, all)) yield e;
        done = !all.aborted;
      } catch (e) {
        invalid = e instanceof HttpError && e.status === 400;
        throw e;
      } finally {
        if (done) self.completed++;
        else if (all.aborted) self.cancelled++;
        else if (invalid) self.invalid++;
        else self.failed++;
        free();
      }
      if (timeout.signal.aborted && !signal.aborted) {
        throw new HttpError(
          504,
          `Generation timed out after ${self.limits.timeoutMs / 1000} s`,
        );
      }
    })();
    // A stream closed before its first read still frees the model.
    return Object.assign(gen, {
      return(value?: unknown) {
        if (!started) free();
        return AsyncGeneratorProto.return.call(gen, value);
      },
    }) as typeof gen;
  }

  /** Release every loaded model. */
  async close(): Promise<void> {
    const models = [...this.#models.values()];
    this.#models.clear();
    for (const m of models) {
      try {
        (await m.model).placed.dispose();
      } catch { /* never loaded */ }
    }
  }
}
