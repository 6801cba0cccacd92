/**
 * Autoregressive generation with a KV cache: one cached step per token,
 * drawn in float64 with temperature, nucleus and suppressed ids.
 *
 * @module
 */
import {
  type CausalGenerator,
  type CausalLM,
  checkModelFits,
  type DrawOptions,
  isCausalGenerator,
  type Prng,
  sampleCategorical,
  tokenProbabilities,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";

/** Options of {@linkcode generate}. */
export interface ArGenerateOptions extends DrawOptions {
  /** Rows. */
  batchSize: number;
  /** Tokens per row, the first one included. */
  length: number;
  /** The first token of every row (e.g. BOS). */
  start: number;
  /** Randomness (draws in float64). */
  prng: Prng;
  /**
   * Ids every row continues after `start` (a prompt), kept as given; the
   * rest of the row is generated. At most `length − 1` ids.
   */
  prefix?: ArrayLike<number>;
  /**
   * Called after each generated token with the rows so far (`step` counts
   * generated tokens, `steps` is how many the rows will get); a promise it
   * returns is awaited before the next token. A device generator (a
   * `CausalGenerator`) makes whole rows in one call: it is called once, with
   * the finished rows.
   */
  onStep?: (s: ArStep) => unknown;
}

/** What {@linkcode generate} reports after each token. */
export interface ArStep {
  /** Tokens generated so far (1-based). */
  step: number;
  /** Tokens to generate per row. */
  steps: number;
  /** The rows so far, `batchSize × length`, positions not yet reached 0. */
  tokens: Int32Array;
  /** Decode calls so far (the prompt's counts as one). */
  forwardPasses: number;
}

/**
 * Generate `batchSize` rows of `length` tokens, each starting with `start`,
 * decoding one position at a time through the model's KV cache (disposed at
 * the end, also on errors).
 *
 * @param model A causal model with a cache.
 * @param options Shape, start token, randomness, draw shaping.
 * @returns The ids, `batchSize × length`, row-major.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import type { CausalLM, Tensor2D, Tensor3D } from "@d3pm/core";
 * import { prng } from "@d3pm/core";
 * import { generate } from "@d3pm/autoregressive";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * // Always predicts token 2 with near certainty.
 * const logits = (x: Tensor2D) =>
 *   tf.tidy(() => tf.oneHot(tf.fill(x.shape, 2, "int32"), 4).mul(50)) as Tensor3D;
 * const model: CausalLM = {
 *   config: { kind: "causal", vocabSize: 4, contextLength: 8 },
 *   timeConditioned: false,
 *   forward: logits,
 *   decode: logits,
 *   createCache: () => ({ length: 0, dispose() {} }),
 *   dispose() {},
 * };
 * const ids = await generate(model, { batchSize: 1, length: 4, start: 0, prng: prng(0) });
 * assertEquals(Array.from(ids), [0, 2, 2, 2]);
 * ```
 */
export async function generate(
  model: CausalLM | CausalGenerator,
  options: ArGenerateOptions,
): Promise<Int32Array> {
  const { batchSize: b, length: l, prng } = options;
  checkModelFits(model, { kind: "causal" }, "generate");
  checkRows(model, options);
  const prefix = Int32Array.from(options.prefix ?? []);
  if (prefix.length > l - 1) {
    throw new RangeError(
      `generate: the prefix has ${prefix.length} ids; at most length − 1 = ${
        l - 1
      } fit after the start token`,
    );
  }
  if (isCausalGenerator(model)) {
    // On the model's device: the prefix teacher-forced there, the draws
    // from its own streams, seeded from this PRNG (one sync for the whole
    // batch). Whole rows in one call: onStep is called once, at the end.
    const out = await model.generateCausal({
      batchSize: b,
      length: l,
      start: options.start,
      ...(prefix.length > 0 ? { prefix } : {}),
      temperature: options.temperature ?? 1,
      topP: options.topP,
      suppress: options.suppress,
      seed: Math.floor(prng.next() * 2 ** 32) >>> 0,
    });
    await options.onStep?.({
      step: l - 1 - prefix.length,
      steps: l - 1 - prefix.length,
      tokens: out.tokens.slice(),
      forwardPasses: out.forwardPasses,
    });
    return out.tokens;
  }
  const out = new Int32Array(b * l);
  const given = 1 + prefix.length; // positions fixed before drawing
  for (let r = 0; r < b; r++) {
    out[r * l] = options.start;
    out.set(prefix, r * l + 1);
  }
  const cache = model.createCache(b);
  try {
    // The start and the prefix in one decode call; its last logits give
    // the first drawn token.
    let input = new Int32Array(b * given);
    for (let r = 0; r < b; r++) {
      input.set(out.subarray(r * l, r * l + given), r * given);
    }
    let width = given;
    let passes = 0;
    for (let i = given; i < l; i++) {
      const logits = tf.tidy(() => {
        const all = model.decode(
          tf.tensor2d(input, [b, width], "int32"),
          cache,
        );
        return width === 1 ? all : all.slice([0, width - 1, 0], [b, 1, -1]);
      });
      passes++;
      const data = await logits.data();
      logits.dispose();
      const v = data.length / b;
      input = new Int32Array(b);
      width = 1;
      for (let r = 0; r < b; r++) {
        const p = tokenProbabilities(
          data.subarray(r * v, (r + 1) * v),
          options,
        );
        input[r] = sampleCategorical(p, prng);
        out[r * l + i] = input[r];
      }
      await options.onStep?.({
        step: i - given + 1,
        steps: l - given,
        tokens: out.slice(),
        forwardPasses: passes,
      });
    }
  } finally {
    cache.dispose();
  }
  return out;
}

// The shape and the given ids, against the model's vocabulary where it has
// a config: a length of 2.5 gave rows of 2, a start or prefix id past the
// vocabulary a raw GatherV2 error.
function checkRows(model: object, options: ArGenerateOptions): void {
  const { batchSize: b, length: l } = options;
  if (!(Number.isInteger(b) && b >= 1)) {
    throw new RangeError(
      `generate: batchSize must be an integer ≥ 1, got ${b}`,
    );
  }
  if (!(Number.isInteger(l) && l >= 1)) {
    throw new RangeError(
      `generate: length must be an integer ≥ 1 (the start token included), got ${l}`,
    );
  }
  // Up front: past the context, decoding drew contextLength − 1 tokens and
  // then failed inside the cache ("need 1 ≤ T ≤ 0").
  const context = (model as { config?: { contextLength?: number } }).config
    ?.contextLength;
  if (context !== undefined && l > context) {
    throw new RangeError(
      `generate: length ${l} exceeds the model's context length ${context} (the start token included)`,
    );
  }
  const v = (model as { config?: { vocabSize?: number } }).config?.vocabSize;
  const range = v === undefined
    ? "≥ 0"
    : `in [0, ${v}) (the model's vocabSize)`;
  const id = (x: number, what: string) => {
    if (!(Number.isInteger(x) && x >= 0 && (v === undefined || x < v))) {
      throw new RangeError(
        `generate: ${what} ${x} is not a token id: expected an integer ${range}`,
      );
    }
  };
  id(options.start, "start");
  const prefix = options.prefix ?? [];
  for (let i = 0; i < prefix.length; i++) id(prefix[i], `prefix[${i}]`);
}
