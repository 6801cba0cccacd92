/**
 * The generative-process contract: what a way of training and using a
 * language model provides — the autoregressive process and masked diffusion
 * are its two implementations. A process holds no weights; it takes the
 * model on every call.
 *
 * @module
 */
import type { DrawOptions } from "./categorical.ts";
import type { LanguageModel, TermScorer, WeightedTokens } from "./model.ts";
import type { Prng } from "./prng.ts";
import type { Scalar } from "./tensor_types.ts";

/** A batch of clean tokens: `tokens` holds `batchSize × length` ids, row-major. */
export interface TokenBatch {
  /** Ids, row-major. */
  tokens: Int32Array;
  /** Rows. */
  batchSize: number;
  /** Ids per row. */
  length: number;
}

/**
 * A negative log-likelihood in nats per token: exact (AR) or an upper bound
 * (a diffusion ELBO), with the standard error of its randomness.
 */
export interface NllEstimate {
  /** Nats per scored token. */
  nats: number;
  /** Standard error of `nats` (0 when exact; NaN when it cannot be measured). */
  stderr: number;
  /** Tokens scored (padding and unscored positions excluded). */
  tokens: number;
}

/** Options of {@linkcode GenerativeProcess.sample}. */
export interface GenerateOptions extends DrawOptions {
  /** Rows. */
  batchSize: number;
  /** Tokens per row. */
  length: number;
  /** Randomness of the draws. */
  prng: Prng;
  /** Denoising steps (diffusion; an AR process makes `length − 1`). */
  steps?: number;
}

/** What {@linkcode GenerativeProcess.sample} returns. */
export interface GenerateResult {
  /** The generated ids, `batchSize × length`. */
  tokens: Int32Array;
  /** Network calls made. */
  forwardPasses: number;
}

/**
 * A generative process: its training loss, its likelihood score, its
 * sampler, and a JSON description from which it can be rebuilt.
 *
 * @typeParam M The models it accepts.
 */
export interface GenerativeProcess<M extends LanguageModel = LanguageModel> {
  /** A short name for tables and logs (e.g. `ar`, `mdlm`). */
  readonly name: string;
  /** Whether {@linkcode GenerativeProcess.score} is exact (false: an upper bound, an ELBO). */
  readonly exact: boolean;
  /**
   * The training loss of a batch (mean nats per token, or the objective's
   * weighted equivalent).
   *
   * @param model The model.
   * @param batch Clean tokens.
   * @param options Randomness of the corruption; training mode (default true).
   * @returns A scalar tensor.
   */
  loss(
    model: M,
    batch: TokenBatch,
    options: { prng: Prng; training?: boolean },
  ): Scalar;
  /**
   * The same loss as {@linkcode GenerativeProcess.loss} (the same draws for
   * the same PRNG state), as weighted token cross-entropy for an engine.
   *
   * @param batch Clean tokens.
   * @param options Randomness of the corruption.
   * @returns Inputs, targets and weights.
   * @throws {RangeError} When the objective has no such form.
   */
  lossTerms(batch: TokenBatch, options: { prng: Prng }): WeightedTokens;
  /**
   * The NLL (or its bound) of a batch, in nats per token.
   *
   * @param model The model.
   * @param x0 Clean tokens.
   * @param options Randomness of a Monte-Carlo estimate.
   * @returns The estimate.
   */
  score(
    model: M | TermScorer,
    x0: TokenBatch,
    options: { prng: Prng },
  ): Promise<NllEstimate>;
  /**
   * Generate a batch.
   *
   * @param model The model.
   * @param options Shape, randomness and draw shaping.
   * @returns The tokens and the forward passes made.
   */
  sample(model: M, options: GenerateOptions): Promise<GenerateResult>;
  /** The description from which the process is rebuilt (plain JSON data). */
  toJSON(): object;
}
