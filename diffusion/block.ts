/**
 * Block diffusion (BD3-LM, Arriola et al., ICLR 2025): masked diffusion
 * within blocks of `blockSize` tokens, autoregressive across blocks. The
 * likelihood is the sum over blocks of each block's MDLM bound given the
 * clean blocks before it; block size 1 is an autoregressive model, one block
 * of the whole row is MDLM.
 *
 * Training and scoring see every block at once: the denoiser reads two
 * streams `[x_t ; x_0]` with block attention (`BlockLayout`), each noisy
 * block attending to itself and to the clean blocks before it. One time per
 * row noises all of its blocks: each block's masks are then those of its own
 * bound at that time, so the row's estimate is an unbiased estimate of the
 * sum of the blocks' bounds — the same estimators (`mdlmLoss`,
 * `continuousElbo`, by time or by mask count) as for MDLM. Generation
 * denoises one block at a time with MDLM's sampler, the blocks before it
 * clean and fixed.
 *
 * @module
 */
import {
  type BlockAttentionLM,
  type BlockDecoder,
  type BlockLayout,
  checkModelFits,
  type DecodeCache,
  type ForwardOptions,
  type GenerateResult,
  hasBlockAttention,
  hasBlockDecoding,
  type LanguageModel,
  type NllEstimate,
  type Prng,
  type Scalar,
  type Tensor2D,
  type Tensor3D,
  type TokenBatch,
  type WeightedTokens,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { mdlmLoss } from "./loss.ts";
import {
  type MaskedDiffusion,
  maskedDiffusion,
  type MaskedDiffusionSpec,
  type ProcessSampleOptions,
} from "./process.ts";

/** The description of a block diffusion process (its `toJSON()`). */
export interface BlockDiffusionSpec
  extends Omit<MaskedDiffusionSpec, "kind" | "objective" | "times"> {
  /** Always `block-diffusion`. */
  kind: "block-diffusion";
  /** Tokens per block; a row's length must be a multiple of it. */
  blockSize: number;
  /**
   * How training draws times, as MDLM's `times` (the range is BD3-LM's
   * clipped mask rate, a training objective only; bounds use all of
   * [0, 1]); a time per row noises every block of the row.
   */
  times?: MaskedDiffusionSpec["times"] & {
    /**
     * One time per block instead of one per row (BD3-LM's draws; default
     * false): the same bound in expectation, lower variance; not with a
     * time-conditioned denoiser, `perToken` or `byCount`.
     */
    perBlock?: boolean;
  };
}

/** Options of {@linkcode BlockDiffusion.sample}. */
export type BlockSampleOptions =
  & Omit<ProcessSampleOptions, "prompt" | "blockLength" | "length">
  & {
    /** Tokens per row: a multiple of the block size. */
    length: number;
    /** Ids the rows start with, kept as given (a text prompt), `≤ length`. */
    prefix?: Int32Array;
    /**
     * Keep the clean blocks' keys and values (BD3-LM's KV cache), so that a
     * step reads the block being generated only (default: whenever the
     * denoiser can, `hasBlockDecoding`; true insists, false reads the blocks
     * so far at every step). A pass commits each finished block.
     */
    kvCache?: boolean;
  };

/** A block diffusion process over denoisers with block attention. */
export interface BlockDiffusion {
  /** Always `bd3`. */
  readonly name: "bd3";
  /** Always false: scores are upper bounds. */
  readonly exact: false;
  /** Its description. */
  readonly spec: BlockDiffusionSpec;
  /**
   * The clipped MDLM objective of every block at once.
   *
   * @param model A denoiser with block attention.
   * @param batch Clean rows.
   * @param options Randomness; training mode (default true).
   * @returns A scalar tensor.
   */
  loss(
    model: LanguageModel,
    batch: TokenBatch,
    options: { prng: Prng; training?: boolean },
  ): Scalar;
  /**
   * Refused: the fused engines have no block attention.
   *
   * @throws {RangeError} Always.
   */
  lossTerms(batch: TokenBatch, options: { prng: Prng }): WeightedTokens;
  /**
   * The Monte-Carlo bound, one draw per row.
   *
   * @param model A denoiser with block attention.
   * @param x0 Clean rows.
   * @param options Randomness.
   * @returns Nats per token (an upper bound).
   */
  score(
    model: LanguageModel,
    x0: TokenBatch,
    options: { prng: Prng },
  ): Promise<NllEstimate>;
  /**
   * The sum of the blocks' continuous bounds, per token.
   *
   * @param model A denoiser with block attention.
   * @param x0 Clean rows.
   * @param options Randomness, draws per row, by `count` (default) or `time`.
   * @returns Nats per token (an upper bound) with its standard error.
   */
  bound(
    model: LanguageModel,
    x0: TokenBatch,
    options: { prng: Prng; samples?: number; draws?: "time" | "count" },
  ): Promise<NllEstimate>;
  /**
   * Generate block by block, each by MDLM's ancestral sampler with `steps`
   * steps (the blocks before it clean and fixed).
   *
   * @param model A denoiser with block attention.
   * @param options Shape, steps per block, randomness, a text prefix.
   * @returns The rows and the forward passes made.
   */
  sample(
    model: LanguageModel,
    options: BlockSampleOptions,
  ): Promise<GenerateResult>;
  /** The spec. */
  toJSON(): BlockDiffusionSpec;
}

/**
 * A block diffusion process.
 *
 * @param spec Its description.
 * @returns The process.
 * @throws {RangeError} On an invalid spec (one line naming the key).
 *
 * @example A denoiser that knows nothing costs ln 9 nats per token, in every layout
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { type BlockAttentionLM, prng, type Tensor2D, type Tensor3D } from "@d3pm/core";
 * import { blockDiffusion } from "@d3pm/diffusion";
 * import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const layouts: unknown[] = [];
 * const uniform: BlockAttentionLM = { // logits [B, L, V] whatever it reads
 *   config: { kind: "bidirectional", vocabSize: 10, contextLength: 8 },
 *   timeConditioned: false,
 *   blockAttention: true,
 *   forward: (x: Tensor2D, o = {}) => {
 *     layouts.push(o.blocks);
 *     const l = o.blocks?.clean ? x.shape[1] / 2 : x.shape[1];
 *     return tf.zeros([x.shape[0], l, 10]) as Tensor3D;
 *   },
 *   dispose() {},
 * };
 * const process = blockDiffusion({
 *   kind: "block-diffusion", blockSize: 4, vocab: 10, maskId: 9, steps: 100,
 *   schedule: { kind: "log-linear" },
 * });
 * const x0 = { tokens: Int32Array.from({ length: 16 }, (_, i) => i % 9), batchSize: 2, length: 8 };
 * const bound = await process.bound(uniform, x0, { prng: prng(1), samples: 4 });
 * assertAlmostEquals(bound.nats, Math.log(9), 1e-5);
 * assertEquals(layouts.at(-1), { size: 4, clean: true }); // [x_t ; x_0]
 * const out = await process.sample(uniform, { batchSize: 2, length: 8, steps: 4, prng: prng(2) });
 * assert(!out.tokens.includes(9)); // both blocks filled
 * assertEquals(layouts.at(-1), { size: 4, clean: false }); // one block-causal stream
 * ```
 */
export function blockDiffusion(spec: BlockDiffusionSpec): BlockDiffusion {
  const s = checkSpec(spec);
  const { blockSize, kind: _, ...rest } = s;
  const { perBlock: _p, ...innerTimes } = rest.times ?? {};
  const inner: MaskedDiffusion = maskedDiffusion({
    ...rest,
    ...(rest.times ? { times: innerTimes } : {}),
    kind: "masked-diffusion",
    objective: "mdlm",
  });
  const bound = (
    model: LanguageModel,
    x0: TokenBatch,
    options: { prng: Prng; samples?: number; draws?: "time" | "count" },
  ) => inner.bound(twoStreams(model, x0, blockSize), x0, options);
  return {
    name: "bd3",
    exact: false,
    spec: s,
    loss(model, batch, options) {
      if (!s.times?.perBlock) {
        return inner.loss(twoStreams(model, batch, blockSize), batch, options);
      }
      checkModelFits(
        model,
        { kind: "bidirectional", vocabSize: s.vocab },
        "Block diffusion loss",
      );
      return mdlmLoss(twoStreams(model, batch, blockSize), batch, {
        schedule: inner.continuous,
        maskId: s.maskId,
        padId: s.padId,
        prng: options.prng,
        training: options.training,
        tMin: s.times.min,
        tMax: s.times.max,
        perToken: true,
        timeSpan: blockSize,
        fullMaskShare: s.times.fullMaskShare,
        ...(s.stagger && s.stagger.delta > 0 && s.stagger.span > 1
          ? { stagger: s.stagger }
          : {}),
      });
    },
    lossTerms() {
      throw new RangeError(
        "Block diffusion needs block attention, which the fused engines lack; train it on the tfjs engine",
      );
    },
    score: (model, x0, { prng }) => bound(model, x0, { prng }),
    bound,
    sample: (model, options) => sampleBlocks(inner, model, blockSize, options),
    toJSON: () => structuredClone(s),
  };
}

function blockModel(model: LanguageModel): BlockAttentionLM {
  if (!hasBlockAttention(model)) {
    throw new RangeError(
      "Block diffusion needs a denoiser with block attention (a @d3pm/transformer Transformer on tfjs); this model has none",
    );
  }
  return model;
}

/**
 * `model` as a plain denoiser of `x_t` for the clean rows `x0`: its forward
 * reads `[x_t ; x_0]` with block attention.
 */
function twoStreams(
  model: LanguageModel,
  x0: TokenBatch,
  size: number,
): LanguageModel {
  const m = blockModel(model);
  const { batchSize: b, length: l } = x0;
  if (l % size !== 0) {
    throw new RangeError(
      `Block diffusion: a row of ${l} tokens is not a whole number of blocks of ${size}`,
    );
  }
  const blocks: BlockLayout = { size, clean: true };
  return {
    config: m.config,
    timeConditioned: m.timeConditioned,
    forward(xt: Tensor2D, options: ForwardOptions = {}): Tensor3D {
      if (xt.shape[0] !== b || xt.shape[1] !== l) {
        throw new RangeError(
          `Block diffusion: x_t has shape [${xt.shape}], its clean rows [${b}, ${l}]`,
        );
      }
      return tf.tidy(() => {
        const clean = tf.tensor2d(x0.tokens, [b, l], "int32");
        return m.forward(tf.concat([xt, clean], 1) as Tensor2D, {
          ...options,
          blocks,
        });
      });
    },
    dispose() {},
  };
}

/** `model` with one block-causal stream (generation). */
function blockCausal(model: LanguageModel, size: number): LanguageModel {
  const m = blockModel(model);
  const blocks: BlockLayout = { size, clean: false };
  return {
    config: m.config,
    timeConditioned: m.timeConditioned,
    forward: (x, options = {}) => m.forward(x, { ...options, blocks }),
    dispose() {},
  };
}

async function sampleBlocks(
  inner: MaskedDiffusion,
  model: LanguageModel,
  size: number,
  options: BlockSampleOptions,
): Promise<GenerateResult> {
  const { length, prefix, onStep, kvCache, ...draw } = options;
  const rows = options.batchSize ?? 1;
  if (!(Number.isInteger(length) && length >= size && length % size === 0)) {
    throw new RangeError(
      `Block diffusion: length must be a positive multiple of the block size ${size}, got ${length}`,
    );
  }
  if (prefix && prefix.length > length) {
    throw new RangeError(
      `Block diffusion: the prefix has ${prefix.length} tokens, more than the length ${length}`,
    );
  }
  const context = model.config?.contextLength;
  if (context !== undefined && length > context) {
    throw new RangeError(
      `Block diffusion: length must be at most the model's context length ${context}, got ${length}`,
    );
  }
  blockModel(model);
  checkModelFits(
    model,
    { kind: "bidirectional", vocabSize: inner.spec.vocab },
    "Block diffusion sample",
  );
  if (kvCache && !hasBlockDecoding(model)) {
    throw new RangeError(
      "Block diffusion: kvCache needs a denoiser that decodes blocks with a cache (a Transformer without time conditioning)",
    );
  }
  const maskId = inner.spec.maskId;
  const out = new Int32Array(rows * length).fill(maskId);
  for (let r = 0; r < rows; r++) out.set(prefix ?? [], r * length);
  // With a cache, a step reads the block only; without, the blocks so far.
  const cache = kvCache !== false && hasBlockDecoding(model)
    ? model.createCache(rows)
    : undefined;
  const denoiser = cache
    ? fromCache(model as BlockDecoder, cache)
    : blockCausal(model, size);
  const blocks = length / size;
  const steps = options.steps ?? inner.spec.steps;
  let passes = 0;
  try {
    for (let k = 0; k < blocks; k++) {
      const from = cache ? k * size : 0, end = (k + 1) * size;
      const window = (src: Int32Array, at: (r: number) => number) => {
        const w = new Int32Array(rows * (end - from));
        for (let r = 0; r < rows; r++) {
          w.set(src.subarray(at(r), at(r) + end - from), r * (end - from));
        }
        return w;
      };
      const place = (dst: Int32Array, w: Int32Array) => {
        for (let r = 0; r < rows; r++) {
          dst.set(
            w.subarray(r * (end - from), (r + 1) * (end - from)),
            r * length + from,
          );
        }
        return dst;
      };
      let prompt: Int32Array = window(out, (r) => r * length + from);
      if (prompt.includes(maskId)) {
        const before = passes;
        const done = await inner.sample(denoiser, {
          ...draw,
          prompt,
          ...(onStep
            ? {
              onStep: (s) =>
                onStep({
                  step: k * steps + s.step,
                  steps: blocks * steps,
                  tokens: place(out.slice(), s.tokens),
                  forwardPasses: before + s.forwardPasses,
                }),
            }
            : {}),
        });
        passes += done.forwardPasses;
        place(out, done.tokens);
        prompt = done.tokens;
      }
      if (cache) {
        // The clean block's keys and values join the cache: one more pass.
        const block = tf.tensor2d(prompt, [rows, size], "int32");
        (model as BlockDecoder).decodeBlock(block, cache, { commit: true })
          .dispose();
        block.dispose();
        passes++;
      }
    }
  } finally {
    cache?.dispose();
  }
  return { tokens: out, forwardPasses: passes };
}

/** The block being generated, read through the cache of the clean blocks. */
function fromCache(model: BlockDecoder, cache: DecodeCache): LanguageModel {
  return {
    config: model.config,
    timeConditioned: false,
    forward: (x) => model.decodeBlock(x, cache),
    dispose() {},
  };
}

const KEYS = [
  "kind",
  "blockSize",
  "vocab",
  "maskId",
  "steps",
  "schedule",
  "padId",
  "times",
  "stagger",
];

function checkSpec(spec: BlockDiffusionSpec): BlockDiffusionSpec {
  const fail = (what: string): never => {
    throw new RangeError(`Invalid block diffusion process: ${what}`);
  };
  if (typeof spec !== "object" || spec === null) fail("expected an object");
  for (const k of Object.keys(spec)) {
    if (!KEYS.includes(k)) {
      fail(`unknown key "${k}"; accepted: ${KEYS.join(", ")}`);
    }
  }
  if (spec.kind !== "block-diffusion") {
    fail(`kind must be "block-diffusion", got ${JSON.stringify(spec.kind)}`);
  }
  if (!Number.isInteger(spec.blockSize) || spec.blockSize < 1) {
    fail(
      `blockSize must be an integer ≥ 1, got ${JSON.stringify(spec.blockSize)}`,
    );
  }
  const perBlock = (spec.times as { perBlock?: unknown } | undefined)
    ?.perBlock;
  if (perBlock !== undefined && typeof perBlock !== "boolean") {
    fail("times.perBlock must be true or false");
  }
  if (perBlock && (spec.times?.perToken || spec.times?.byCount)) {
    fail(
      "times.perBlock draws one time per block; not with perToken or byCount",
    );
  }
  if (
    spec.stagger && Number.isInteger(spec.stagger.span) &&
    spec.blockSize % spec.stagger.span !== 0
  ) {
    fail(
      `stagger.span ${spec.stagger.span} must divide the block size ${spec.blockSize} (a span lies within one block)`,
    );
  }
  // The rest is MDLM's spec, checked there.
  const { blockSize: _, kind: __, ...rest } = spec;
  if (rest.times) {
    const { perBlock: ___, ...times } = rest.times;
    rest.times = times;
  }
  try {
    maskedDiffusion({ ...rest, kind: "masked-diffusion", objective: "mdlm" });
  } catch (e) {
    fail(
      (e as Error).message.replace(/^Invalid masked diffusion process: /, ""),
    );
  }
  return structuredClone(spec);
}
