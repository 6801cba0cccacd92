/**
 * Seeded samplers for absorbing-state (masked) diffusion: ancestral (D3PM),
 * cached ancestral, confidence-based unmasking (MaskGIT/LLaDA), infilling and
 * semi-autoregressive blocks, with temperature and nucleus sampling. All
 * categorical draws are made in float64 on the JavaScript side: float32
 * Gumbel noise lowers the effective temperature and makes samples look
 * better than they are. Temperature 0 is greedy: each revealed token is its
 * position's argmax.
 *
 * @module
 */
import {
  isMaskedGenerator,
  type LanguageModel,
  type MaskedGenerator,
  type Prng,
  type Tensor1D,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import type { DiscreteSchedule } from "./schedule.ts";
import { sampleCategorical, tokenProbabilities } from "@d3pm/core";

/**
 * How many of `masked` positions a confidence step reveals: round(m·reveal),
 * halves up, in float32 as the engines compute it. A schedule's exact halves
 * (2 × ¼ for the log-linear schedule) come out of float64 as 0.4999…, which
 * would reveal one token fewer here than on an engine.
 */
function revealCount(masked: number, reveal: number): number {
  return Math.floor(
    Math.fround(Math.fround(masked * Math.fround(reveal)) + 0.5),
  );
}

/** The probability that a token masked at step t is revealed by step s. */
function positionReveal(
  alphaBar: (index: number, t: number) => number,
  index: number,
  t: number,
  s: number,
): number {
  const aT = alphaBar(index, t), aS = alphaBar(index, s);
  return aT >= 1 ? 1 : (aS - aT) / (1 - aT);
}

// Every value the sampler will read, before the first forward pass: a NaN
// or a value outside [0, 1] gave NaN reveal chances and no error.
function checkPositionAlphaBar(
  alphaBar: (index: number, t: number) => number,
  l: number,
  grid: readonly number[],
): void {
  for (const t of grid) {
    for (let i = 0; i < l; i++) {
      const a = alphaBar(i, t);
      if (!(a >= 0 && a <= 1)) {
        throw new RangeError(
          `positionAlphaBar(${i}, ${t}) is ${a}: it must be a probability in [0, 1]`,
        );
      }
    }
  }
}

/** What the sampler is doing at one step (for progress displays). */
export interface SampleStep {
  /** Step index, 1-based. */
  step: number;
  /** Total steps (per block for semi-autoregressive sampling). */
  steps: number;
  /** The tokens after this step, `batchSize × length`. */
  tokens: Int32Array;
  /** Forward passes so far. */
  forwardPasses: number;
}

/** Options of {@linkcode sample}. */
export interface SampleOptions {
  /** The discrete schedule: it fixes `T` and how many tokens each step reveals. */
  schedule: DiscreteSchedule;
  /** The mask id. */
  maskId: number;
  /** Randomness. */
  prng: Prng;
  /** Rows (default 1). */
  batchSize?: number;
  /**
   * Tokens per row; needed unless `prompt` is given. At most the model's
   * `config.contextLength` (a prompt's rows too), refused before anything is
   * allocated; a device generator without a `config` checks it itself.
   */
  length?: number;
  /**
   * A starting sequence, `batchSize × length`: positions holding `maskId` are
   * generated, all others are kept (infilling, prefixes).
   */
  prompt?: Int32Array;
  /** Denoising steps, at most `T` (default `T`): times `T·k/steps` are visited. */
  steps?: number;
  /**
   * `ancestral` (default): each masked token is revealed with the posterior's
   * probability, drawn from `p̃(x_0 | x_t)`. `confidence`: at each step, reveal
   * the masked tokens whose drawn value has the highest probability, as many
   * as the schedule says should be revealed.
   */
  strategy?: "ancestral" | "confidence";
  /**
   * Skip the network when no token changed since its last call (ancestral
   * only). Exact only for a model that ignores `t`; with `T` steps it makes
   * at most `L + 1` forward passes for `L` masked tokens. Default: on
   * exactly when `model.timeConditioned` is false; `true` for a
   * time-conditioned model is refused (it would change the samples).
   */
  cache?: boolean;
  /**
   * The probability that the token at `index` of its row is still clean at
   * step `t` (0..T), when it differs by position (a staggered process,
   * {@linkcode Stagger}); default: `schedule.alphaBar(t)` everywhere. Each
   * masked token is then revealed with its own posterior probability.
   * Ancestral only, and on the JavaScript side (a device generator takes
   * one reveal rate per step: the model's `forward` is used instead).
   */
  positionAlphaBar?: (index: number, t: number) => number;
  /**
   * Softmax temperature (default 1), ≥ 0. 0 is greedy: each revealed token
   * is the first largest logit of its position (not the mask, not a
   * suppressed id); `confidence` then ranks them by their probability at
   * temperature 1. Greedy runs on the JavaScript side, reading the model's
   * `forward` (a device generator draws at a temperature > 0 only).
   */
  temperature?: number;
  /** Nucleus: keep the smallest set of tokens with this much probability (default 1). */
  topP?: number;
  /** Token ids never drawn besides the mask (e.g. padding). */
  suppress?: number[];
  /**
   * Semi-autoregressive: generate blocks of this many positions left to right,
   * each with the full step schedule, later blocks still masked.
   */
  blockLength?: number;
  /**
   * Called after each step; a promise it returns is awaited before the next
   * step (a server streaming the steps lets its I/O run). On a device
   * generator (one block), the steps then run one call each instead of all
   * in one call.
   */
  onStep?: (s: SampleStep) => unknown;
}

/**
 * A row is at most the model's context (`forward`'s `L ≤ contextLength`); a
 * device generator without a `config` checks its own length.
 */
function checkContext(
  model: LanguageModel | MaskedGenerator,
  l: number,
  what: string,
): void {
  const context = (model as Partial<LanguageModel>).config?.contextLength;
  if (context !== undefined && l > context) {
    throw new RangeError(
      `${what} must be at most the model's context length ${context}, got ${l}`,
    );
  }
}

/** What {@linkcode sample} returns. */
export interface SampleResult {
  /** The generated tokens, `batchSize × length`, no mask left. */
  tokens: Int32Array;
  /** Network calls made. */
  forwardPasses: number;
}

/**
 * Generate with an absorbing-state denoiser: start from masks (or a prompt)
 * and unmask over `steps` steps from `t = T` down to 0.
 *
 * @param model The denoiser (given `t/T` as its time).
 * @param options Schedule, mask id, PRNG, sizes and strategy.
 * @returns The tokens and the number of forward passes.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { absorbingBeta, sample } from "@d3pm/diffusion";
 * import { prng } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * // A denoiser that always predicts token 3 (of 5; the mask is 4).
 * const model = {
 *   config: { kind: "bidirectional" as const, vocabSize: 5, contextLength: 8 },
 *   timeConditioned: false,
 *   forward: (x: tf.Tensor2D) =>
 *     tf.tidy(() => tf.oneHot(tf.fill(x.shape, 3, "int32"), 5).mul(20)) as tf.Tensor3D,
 *   dispose() {},
 * };
 * const out = await sample(model, {
 *   schedule: absorbingBeta({ steps: 100 }), maskId: 4, prng: prng(0), length: 6, cache: true,
 * });
 * assertEquals(Array.from(out.tokens), [3, 3, 3, 3, 3, 3]);
 * ```
 */
export async function sample(
  model: LanguageModel | MaskedGenerator,
  options: SampleOptions,
): Promise<SampleResult> {
  const { schedule, maskId, prng } = options;
  const T = schedule.steps;
  const steps = options.steps ?? T;
  const strategy = options.strategy ?? "ancestral";
  const b = options.batchSize ?? 1;
  if (!Number.isInteger(steps) || steps < 1 || steps > T) {
    throw new RangeError(`steps must be an integer in [1, ${T}], got ${steps}`);
  }
  if (strategy !== "ancestral" && strategy !== "confidence") {
    throw new RangeError(
      `strategy must be "ancestral" or "confidence", got ${
        JSON.stringify(strategy)
      }`,
    );
  }
  if (!Number.isInteger(b) || b < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${b}`);
  }
  let tokens: Int32Array;
  let l: number;
  if (options.prompt) {
    if (options.prompt.length === 0) {
      throw new RangeError("prompt is empty: give at least one id per row");
    }
    if (options.prompt.length % b !== 0) {
      throw new RangeError(
        `prompt has ${options.prompt.length} ids, not a multiple of batchSize ${b}`,
      );
    }
    l = options.prompt.length / b;
    if (options.length !== undefined && options.length !== l) {
      throw new RangeError(
        `length ${options.length} does not match the prompt's ${l}`,
      );
    }
    checkContext(model, l, "the prompt's rows");
    tokens = options.prompt.slice();
  } else {
    l = options.length ?? 0;
    if (!Number.isInteger(l) || l < 1) {
      throw new RangeError(
        `length must be a positive integer (or give a prompt), got ${l}`,
      );
    }
    // Before allocating: length 1e9 failed on V8's "Invalid array length".
    checkContext(model, l, "length");
    tokens = new Int32Array(b * l).fill(maskId);
  }
  const blockLength = options.blockLength ?? l;
  if (!Number.isInteger(blockLength) || blockLength < 1) {
    throw new RangeError(
      `blockLength must be a positive integer, got ${blockLength}`,
    );
  }
  if (options.cache && model.timeConditioned) {
    throw new RangeError(
      "Cannot cache logits: the model is time-conditioned, so its logits change with t even when no token does; leave cache unset or false",
    );
  }
  const perPosition = options.positionAlphaBar;
  if (perPosition && strategy !== "ancestral") {
    throw new RangeError(
      'positionAlphaBar reveals each token with its own probability: use strategy "ancestral"',
    );
  }
  const noSyncForward =
    "positionAlphaBar needs the JavaScript sampler, so a model whose forward() returns logits (a tfjs model); this device generator's is asynchronous or missing: sample it on tfjs or the CPU engine";
  const greedy = options.temperature === 0;
  const noGreedyForward =
    "temperature 0 (greedy) needs the JavaScript sampler, so a model whose forward() returns logits; this device generator's is asynchronous or missing and it draws at a temperature > 0 only: sample it on tfjs or the CPU engine, or give a small temperature such as 0.01";
  if (perPosition && !("forward" in model)) throw new RangeError(noSyncForward);
  if (greedy && !("forward" in model)) throw new RangeError(noGreedyForward);
  const useCache = options.cache ?? !model.timeConditioned;
  const suppress = [maskId, ...(options.suppress ?? [])];
  const draw = {
    temperature: options.temperature,
    topP: options.topP,
    suppress,
  };
  // Visited times, from T down to 0.
  const grid = Array.from(
    { length: steps + 1 },
    (_, k) => Math.round((T * (steps - k)) / steps),
  );
  if (perPosition) checkPositionAlphaBar(perPosition, l, grid);

  if (isMaskedGenerator(model) && !perPosition && !greedy) {
    // The same steps on the model's device, the reveal logic there too; its
    // draws come from its own streams, seeded from this PRNG (one sync; with
    // onStep and one block, one sync per step, so each step can be shown).
    const deviceSteps = grid.slice(0, steps).map((t, k) => {
      const s = grid[k + 1];
      const aT = schedule.alphaBar(t), aS = schedule.alphaBar(s);
      return {
        t: t / T,
        reveal: s === 0 || aT >= 1 ? 1 : (aS - aT) / (1 - aT),
      };
    });
    const run = (
      prompt: Int32Array | undefined,
      list: typeof deviceSteps,
      revealAllAtEnd = true,
    ) =>
      model.generateMasked({
        batchSize: b,
        length: l,
        maskId,
        prompt,
        steps: list,
        blockLength,
        strategy,
        cache: useCache && strategy === "ancestral",
        temperature: options.temperature,
        topP: options.topP,
        suppress,
        seed: Math.floor(prng.next() * 2 ** 32) >>> 0,
        revealAllAtEnd,
      });
    if (options.onStep && blockLength === l) {
      // A Markov chain: step k depends only on the rows after step k − 1,
      // so running it one step per call draws from the same law.
      let passes = 0;
      for (let k = 0; k < steps; k++) {
        const out = await run(tokens, [deviceSteps[k]], k === steps - 1);
        tokens = out.tokens;
        passes += out.forwardPasses;
        await options.onStep({
          step: k + 1,
          steps,
          tokens: tokens.slice(),
          forwardPasses: passes,
        });
      }
      return { tokens, forwardPasses: passes };
    }
    const out = await run(options.prompt ? tokens : undefined, deviceSteps);
    return { tokens: out.tokens, forwardPasses: out.forwardPasses };
  }
  let forwardPasses = 0;
  let cached: Float32Array | undefined;
  let vocab = 0;
  const predict = async (t: number): Promise<Float32Array> => {
    forwardPasses++;
    const logits = tf.tidy(() => {
      const out = (model as LanguageModel).forward(
        tf.tensor2d(tokens, [b, l], "int32"),
        { t: tf.fill([b], t / T) as Tensor1D, training: false },
      );
      // A device engine's forward() is asynchronous: not a LanguageModel.
      if (typeof (out as { then?: unknown }).then === "function") {
        (out as unknown as Promise<unknown>).catch(() => {});
        throw new RangeError(
          perPosition
            ? noSyncForward
            : greedy
            ? noGreedyForward
            : "sample needs a model whose forward() returns logits, or a device generator; this forward() is asynchronous",
        );
      }
      return out;
    });
    vocab = logits.shape[2];
    const data = (await logits.data()) as Float32Array;
    logits.dispose();
    return data;
  };

  let stepNo = 0;
  const totalSteps = Math.ceil(l / blockLength) * steps;
  for (let start = 0; start < l; start += blockLength) {
    const end = Math.min(l, start + blockLength);
    cached = undefined;
    for (let k = 0; k < steps; k++) {
      const t = grid[k], s = grid[k + 1];
      const eligible: number[] = [];
      for (let r = 0; r < b; r++) {
        for (let i = start; i < end; i++) {
          if (tokens[r * l + i] === maskId) eligible.push(r * l + i);
        }
      }
      if (eligible.length > 0) {
        const logits: Float32Array =
          useCache && strategy === "ancestral" && cached
            ? cached
            : await predict(t);
        cached = logits;
        const aT = schedule.alphaBar(t), aS = schedule.alphaBar(s);
        // Probability that a token masked at t is revealed by s.
        const reveal = aT >= 1 ? 1 : (aS - aT) / (1 - aT);
        let changed = false;
        if (strategy === "ancestral") {
          for (const pos of eligible) {
            const chance = perPosition
              ? positionReveal(perPosition, pos % l, t, s)
              : reveal;
            if (s > 0 && prng.next() >= chance) continue;
            const p = tokenProbabilities(
              logits.subarray(pos * vocab, (pos + 1) * vocab),
              draw,
            );
            tokens[pos] = sampleCategorical(p, prng);
            changed = true;
          }
        } else {
          // Reveal as many as the schedule expects, most confident first (per row).
          for (let r = 0; r < b; r++) {
            const rowPos = eligible.filter((p) => Math.floor(p / l) === r);
            const n = s === 0
              ? rowPos.length
              : revealCount(rowPos.length, reveal);
            const scored = rowPos.map((pos) => {
              const row = logits.subarray(pos * vocab, (pos + 1) * vocab);
              const p = tokenProbabilities(row, draw);
              const x = sampleCategorical(p, prng);
              // Greedy: every pick has probability 1; rank them by the
              // model's own (temperature 1).
              const conf = greedy
                ? tokenProbabilities(row, { ...draw, temperature: 1 })[x]
                : p[x];
              return { pos, x, conf };
            });
            scored.sort((a, c) => c.conf - a.conf);
            for (const { pos, x } of scored.slice(0, n)) tokens[pos] = x;
            if (n > 0) changed = true;
          }
        }
        if (changed) cached = undefined;
      }
      stepNo++;
      await options.onStep?.({
        step: stepNo,
        steps: totalSteps,
        tokens: tokens.slice(),
        forwardPasses,
      });
    }
  }
  return { tokens, forwardPasses };
}
