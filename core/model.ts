/**
 * The model contracts every other package programs against. Training,
 * evaluation and diffusion take a `LanguageModel` (or a `CausalLM` where
 * they decode token by token); which engine implements it — the tfjs
 * `Transformer`, or another — is never their concern.
 *
 * @module
 */
import type { Tensor1D, Tensor2D, Tensor3D } from "./tensor_types.ts";

/** What every model exposes of its configuration. */
export interface ModelShape {
  /** `causal` (sees only earlier positions) or `bidirectional`. */
  readonly kind: "causal" | "bidirectional";
  /** Size of the output distribution (token ids, special tokens included). */
  readonly vocabSize: number;
  /** Longest sequence the model accepts. */
  readonly contextLength: number;
}

/**
 * Refuse a model that does not fit a process: one of the other kind (a
 * causal decoder handed to a denoiser's process, or a denoiser handed to
 * the autoregressive one: its score would be no likelihood), or one whose
 * vocabulary is not the process's (its samples drew ids past the process's
 * vocabulary, its losses looked plausible). A model without a `config` (a
 * device generator alone) is not checked.
 *
 * @param model The model handed to the process.
 * @param expected The kind the process needs, and its vocabulary if it has one.
 * @param who The process and method, for the message.
 * @throws {RangeError} Naming the mismatch and what is accepted.
 *
 * @example
 * ```ts
 * import { checkModelFits } from "@d3pm/core";
 * import { assertThrows } from "@std/assert";
 * const denoiser = { config: { kind: "bidirectional", vocabSize: 20, contextLength: 8 } } as const;
 * checkModelFits(denoiser, { kind: "bidirectional", vocabSize: 20 }, "bound");
 * assertThrows(
 *   () => checkModelFits(denoiser, { kind: "bidirectional", vocabSize: 9 }, "bound"),
 *   RangeError,
 *   "the model's vocabSize is 20; expected the process's vocab 9",
 * );
 * assertThrows(() => checkModelFits(denoiser, { kind: "causal" }, "score"), RangeError, "expected a causal model");
 * ```
 */
export function checkModelFits(
  model: object,
  expected: { kind: ModelShape["kind"]; vocabSize?: number },
  who: string,
): void {
  const config = (model as { config?: Partial<ModelShape> }).config;
  if (config === undefined || config === null) return;
  if (config.kind !== undefined && config.kind !== expected.kind) {
    throw new RangeError(
      `${who}: the model is ${config.kind}; expected a ${expected.kind} model`,
    );
  }
  const v = expected.vocabSize;
  if (v !== undefined && config.vocabSize !== v) {
    throw new RangeError(
      `${who}: the model's vocabSize is ${config.vocabSize}; expected the process's vocab ${v}`,
    );
  }
}

/** Options of {@linkcode LanguageModel.forward}. */
export interface ForwardOptions {
  /**
   * Diffusion time per row, in [0, 1], shape `[B]`. A model that is not
   * time-conditioned ignores it, so callers may always pass it.
   */
  t?: Tensor1D;
  /** Training mode (dropout on); default false. */
  training?: boolean;
}

/**
 * A language model: token ids `[B, L]` (int32) give logits `[B, L, V]`. The
 * causal decoder and the bidirectional denoiser share this one call.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import type { LanguageModel, Tensor2D, Tensor3D } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * // A uniform model over 10 ids: the smallest implementation of the contract.
 * const uniform: LanguageModel = {
 *   config: { kind: "bidirectional", vocabSize: 10, contextLength: 8 },
 *   timeConditioned: false,
 *   forward: (x: Tensor2D) => tf.zeros([...x.shape, 10]) as Tensor3D,
 *   dispose() {},
 * };
 * const logits = uniform.forward(tf.tensor2d([[1, 2]], [1, 2], "int32"));
 * assertEquals(logits.shape, [1, 2, 10]);
 * ```
 */
export interface LanguageModel {
  /** The model's configuration (an implementation may hold more). */
  readonly config: ModelShape;
  /**
   * Whether the logits depend on `t`. A sampler may reuse the last logits
   * when no token changed only if this is false.
   */
  readonly timeConditioned: boolean;
  /**
   * Logits at every position.
   *
   * @param tokens Token ids `[B, L]`, int32, `L ≤ contextLength`.
   * @param options Time and training mode.
   * @returns Logits `[B, L, V]`; the caller disposes them.
   */
  forward(tokens: Tensor2D, options?: ForwardOptions): Tensor3D;
  /** Release the model's tensors (or GPU buffers). */
  dispose(): void;
}

/** A cache of a {@linkcode CausalLM}: the state of decoding so far. */
export interface DecodeCache {
  /** Tokens held so far. */
  readonly length: number;
  /** Release its tensors. */
  dispose(): void;
}

/**
 * A causal model that also decodes incrementally, keeping keys and values
 * of earlier positions in a cache.
 *
 * @typeParam Cache The implementation's cache type.
 */
export interface CausalLM<Cache extends DecodeCache = DecodeCache>
  extends LanguageModel {
  /**
   * An empty cache for `batchSize` rows.
   *
   * @param batchSize Rows decoded together.
   * @returns The cache; the caller disposes it.
   */
  createCache(batchSize: number): Cache;
  /**
   * Logits for `tokens` placed after the ones already in `cache`, which
   * then holds them too.
   *
   * @param tokens New ids `[B, n]`.
   * @param cache The decoding state.
   * @returns Logits `[B, n, V]`.
   */
  decode(tokens: Tensor2D, cache: Cache): Tensor3D;
}

/**
 * Whether a model decodes incrementally (implements {@linkcode CausalLM}).
 *
 * @param model Any language model.
 * @returns True when it has `createCache` and `decode`.
 *
 * @example
 * ```ts
 * import { isCausalLM, type LanguageModel } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const m = { createCache() {}, decode() {} } as unknown as LanguageModel;
 * assertEquals(isCausalLM(m), true);
 * ```
 */
export function isCausalLM(model: LanguageModel): model is CausalLM {
  const m = model as Partial<CausalLM>;
  return typeof m.createCache === "function" && typeof m.decode === "function";
}

/**
 * Block diffusion's attention layout (BD3-LM, Arriola et al. 2025): the
 * positions form blocks of `size`; a block sees the blocks before it and
 * itself.
 */
export interface BlockLayout {
  /** Positions per block (≥ 1). */
  size: number;
  /**
   * `false`: one stream `[B, L]`, block-causal (generation: the clean
   * blocks so far, then the block being denoised). `true`: two streams
   * `[x_t ; x_0]`, `[B, 2L]`, both at positions 0..L−1 — a noisy block
   * sees itself and the clean blocks before it, a clean block the clean
   * blocks up to itself — and the logits are the noisy stream's, `[B, L, V]`
   * (training and scoring every block in one pass).
   */
  clean: boolean;
}

/**
 * A bidirectional model that also runs with block diffusion's attention
 * ({@linkcode BlockLayout}); `blockAttention` marks the support, so a model
 * that would ignore the layout is refused rather than silently misused.
 */
export interface BlockAttentionLM extends LanguageModel {
  /** Always true. */
  readonly blockAttention: true;
  /**
   * Logits with block attention.
   *
   * @param tokens `[B, L]`, or `[B, 2L]` with `blocks.clean`.
   * @param options Time, training mode and the block layout.
   * @returns Logits `[B, L, V]`.
   */
  forward(
    tokens: Tensor2D,
    options?: ForwardOptions & { blocks?: BlockLayout },
  ): Tensor3D;
}

/**
 * A denoiser with block attention that also generates block by block with
 * a cache of the clean blocks' keys and values (BD3-LM's KV cache): each
 * denoising step reads only the block being generated.
 *
 * @typeParam Cache The implementation's cache type.
 */
export interface BlockDecoder<Cache extends DecodeCache = DecodeCache>
  extends BlockAttentionLM {
  /**
   * An empty cache for `batchSize` rows.
   *
   * @param batchSize Rows generated together.
   * @returns The cache; the caller disposes it.
   */
  createCache(batchSize: number): Cache;
  /**
   * Logits of one block placed after the clean blocks in `cache`, the block
   * seeing every cached position and itself (the one-stream layout's last
   * block). With `commit`, the block's keys and values join the cache (call
   * it once the block is clean); without, the cache is unchanged.
   *
   * @param tokens The block, `[B, S]`.
   * @param cache The clean blocks so far.
   * @param options Whether to commit the block.
   * @returns Logits `[B, S, V]`.
   */
  decodeBlock(
    tokens: Tensor2D,
    cache: Cache,
    options?: { commit?: boolean },
  ): Tensor3D;
}

/**
 * Whether a model generates block by block with a cache
 * ({@linkcode BlockDecoder}); a time-conditioned one does not (its clean
 * blocks' keys would depend on the time).
 *
 * @param model Any language model.
 * @returns True when it has block attention, `createCache` and `decodeBlock`.
 *
 * @example
 * ```ts
 * import { hasBlockDecoding, type LanguageModel } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const m = { blockAttention: true, timeConditioned: false, createCache() {}, decodeBlock() {} };
 * assertEquals(hasBlockDecoding(m as unknown as LanguageModel), true);
 * assertEquals(hasBlockDecoding({ ...m, timeConditioned: true } as unknown as LanguageModel), false);
 * ```
 */
export function hasBlockDecoding(model: LanguageModel): model is BlockDecoder {
  const m = model as Partial<BlockDecoder>;
  return hasBlockAttention(model) && !model.timeConditioned &&
    typeof m.createCache === "function" && typeof m.decodeBlock === "function";
}

/**
 * Whether a model runs block diffusion's attention.
 *
 * @param model Any language model.
 * @returns True when it declares `blockAttention`.
 *
 * @example
 * ```ts
 * import { hasBlockAttention, type LanguageModel } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(hasBlockAttention({ blockAttention: true } as unknown as LanguageModel), true);
 * assertEquals(hasBlockAttention({} as LanguageModel), false);
 * ```
 */
export function hasBlockAttention(
  model: LanguageModel,
): model is BlockAttentionLM {
  return (model as Partial<BlockAttentionLM>).blockAttention === true;
}

/**
 * A training loss written as weighted cross-entropy over token positions —
 * `Σ_i weights[i] · −log softmax(logits_i)[targets[i]]` — the form a fused
 * engine computes without knowing which process it trains.
 */
export interface WeightedTokens {
  /** Rows. */
  rows: number;
  /** Positions per row. */
  length: number;
  /** Model input ids, `rows × length`. */
  inputs: Int32Array;
  /** Target id per position; −1 where nothing is scored. */
  targets: Int32Array;
  /** Weight per position (0 where nothing is scored). */
  weights: Float32Array;
  /** Diffusion time per row, for time-conditioned models. */
  t?: Float32Array;
  /** An id whose logit is left out of the softmax (masked diffusion's mask: SUBS). */
  excludeToken?: number;
}

/**
 * A model that sums weighted cross-entropy per row itself — the fused WebGPU
 * engine does it on the GPU with one readback per call. The processes'
 * `score` and `bound` accept it beside a {@linkcode LanguageModel} and draw
 * exactly the same noise for both.
 */
export interface TermScorer {
  /** The model's shape. */
  readonly config: ModelShape;
  /** Whether the model reads the diffusion time t. */
  readonly timeConditioned: boolean;
  /**
   * For each batch of terms, its rows' sums `Σ_j w_ij · CE(logits_ij,
   * target_ij)` (a negative target or zero weight counts 0; `excludeToken`
   * is left out of the softmax).
   */
  rowLosses(
    list: readonly WeightedTokens[],
  ): Promise<Float64Array[]>;
}

/**
 * Whether a model scores terms itself ({@linkcode TermScorer}).
 *
 * @param model Any model object.
 * @returns True when it has `rowLosses`.
 *
 * @example
 * ```ts
 * import { isTermScorer } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(isTermScorer({ rowLosses: () => Promise.resolve([]) }), true);
 * assertEquals(isTermScorer({}), false);
 * ```
 */
export function isTermScorer(model: object): model is TermScorer {
  return typeof (model as Partial<TermScorer>).rowLosses === "function";
}

/** What a generation on a device engine gives back. */
export interface Generation {
  /** B·L ids, row-major. */
  tokens: Int32Array;
  /** Model passes run (decode steps, or full bidirectional passes). */
  forwardPasses: number;
  /** GPU→CPU syncs it took. */
  syncs: number;
}

/** Draw settings of a device generation (the CPU samplers' `DrawOptions`, plus top-k). */
export interface DeviceDraw {
  /** Softmax temperature; 0 = greedy (the first largest logit). Default 1. */
  temperature?: number;
  /** Keep the k most probable ids (0 or absent: all). */
  topK?: number;
  /** Nucleus mass (default 1). */
  topP?: number;
  /** Ids never drawn. */
  suppress?: number[];
  /** Seed of the device's random streams (a u32). */
  seed: number;
}

/** Options of {@linkcode CausalGenerator.generateCausal}. */
export interface CausalGenerationOptions extends DeviceDraw {
  /** Rows generated together. */
  batchSize: number;
  /** Tokens per row, the start token included. */
  length: number;
  /** The first token of every row (e.g. BOS). */
  start: number;
  /**
   * Ids every row continues after `start` (a prompt; default none), at
   * most `length − 1`: each is teacher-forced (the step's input is the given
   * id, no draw is made there) and the rest of the row is drawn.
   */
  prefix?: ArrayLike<number>;
}

/** One step of a masked-diffusion sampler, from t down to s. */
export interface MaskedStep {
  /** The model's time input t/T in [0, 1] (time-conditioned models). */
  t: number;
  /** Probability that a masked position is revealed at this step (1: all; the last step). */
  reveal: number;
}

/** Options of {@linkcode MaskedGenerator.generateMasked}. */
export interface MaskedGenerationOptions extends DeviceDraw {
  /** Rows generated together. */
  batchSize: number;
  /** Positions per row. */
  length: number;
  /** The mask id (absorbing state). */
  maskId: number;
  /** Start rows (B·L), `maskId` where to generate; absent: all masked. */
  prompt?: Int32Array;
  /** The steps of one block, in order (repeated for each block). */
  steps: readonly MaskedStep[];
  /** Semi-autoregressive blocks of this many positions, left to right (default: one block). */
  blockLength?: number;
  /** `ancestral` reveals each masked position with probability `reveal`; `confidence` the round(reveal·m) most confident of a row's m. */
  strategy: "ancestral" | "confidence";
  /** Reuse the last logits while no token changed (models without time conditioning only). */
  cache: boolean;
  /**
   * Whether the last step of `steps` reveals every position still masked
   * (default true: a generation ends with no mask). A caller that runs a
   * generation one step per call passes false for all but its final step.
   */
  revealAllAtEnd?: boolean;
}

/** A model that generates autoregressively on its device, one sync per batch. */
export interface CausalGenerator {
  /** Generate `batchSize` rows from the start token (one sync). */
  generateCausal(options: CausalGenerationOptions): Promise<Generation>;
}

/** A model that runs masked-diffusion samplers on its device, one sync per batch. */
export interface MaskedGenerator {
  /** Whether the model reads t (then logits are never cached). */
  readonly timeConditioned: boolean;
  /** Run the steps over `batchSize` rows (one sync). */
  generateMasked(options: MaskedGenerationOptions): Promise<Generation>;
}

/**
 * Whether a model generates autoregressively on its own device.
 *
 * @param model Any model object.
 * @returns True when it has `generateCausal`.
 *
 * @example
 * ```ts
 * import { isCausalGenerator } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(isCausalGenerator({}), false);
 * ```
 */
export function isCausalGenerator(model: object): model is CausalGenerator {
  return typeof (model as Partial<CausalGenerator>).generateCausal ===
    "function";
}

/**
 * Whether a model runs masked-diffusion samplers on its own device.
 *
 * @param model Any model object.
 * @returns True when it has `generateMasked`.
 *
 * @example
 * ```ts
 * import { isMaskedGenerator } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(isMaskedGenerator({}), false);
 * ```
 */
export function isMaskedGenerator(model: object): model is MaskedGenerator {
  return typeof (model as Partial<MaskedGenerator>).generateMasked ===
    "function";
}
