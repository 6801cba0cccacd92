/**
 * The CPU engine: the WebGPU engine's plan (`@d3pm/webgpu/plan`) executed
 * by this package's kernels — one plan, two executors. Parameters,
 * gradients, AdamW moments, the EMA and the activation arenas are views of
 * one shared kernel memory sized once; a training step is the plan's
 * ~100 calls run in order (products by `cblas_sgemm` on views, everything
 * else WebAssembly SIMD over the threads), with no allocation.
 *
 * @module
 */

import type {
  CausalGenerationOptions,
  CausalGenerator,
  Generation,
  MaskedGenerationOptions,
  MaskedGenerator,
  StoredTensor,
  Tensor1D,
  Tensor2D,
  Tensor3D,
  TermScorer,
  WeightedTokens,
} from "@d3pm/core";
import type { ModelConfig } from "@d3pm/transformer/init";
import type { CpuKernels } from "./kernels.ts";
import { type EngineState, fail } from "./_state.ts";
import { openEngine } from "./_setup.ts";
import * as training from "./_training.ts";
import * as io from "./_weights_io.ts";
import * as scoring from "./_scoring.ts";
import { generateCausal, generateMasked } from "./_generate.ts";

/** AdamW hyper-parameters (the defaults of the tfjs `AdamW`). */
export interface CpuAdamW {
  /** First-moment decay (default 0.9). */
  beta1?: number;
  /** Second-moment decay (default 0.95). */
  beta2?: number;
  /** Denominator epsilon (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay of matrices and embeddings (default 0.1). */
  weightDecay?: number;
}

/** Options of {@linkcode CpuTransformer.create} (those of the WebGPU engine, less the device). */
export interface CpuTransformerOptions {
  /** Rows of every training step (required unless `evaluationOnly`). */
  batchSize?: number;
  /** Tokens per row of every training step, ≤ contextLength (required unless `evaluationOnly`). */
  length?: number;
  /** Scoring and forward passes only: no gradients, moments, EMA or training plan. */
  evaluationOnly?: boolean;
  /** Seed of the initial weights: the same weights as `new Transformer(config, { seed })`. */
  seed?: number;
  /** Initial weights instead (names and shapes of `parameterShapes(config)`). */
  weights?: ReadonlyMap<string, StoredTensor>;
  /** AdamW hyper-parameters. */
  adamw?: CpuAdamW;
  /** Global-norm clip before AdamW (default 1; `Infinity` turns it off). */
  clipNorm?: number;
  /** Keep an EMA of the parameters with this decay in [0, 1) (training engines only). */
  emaDecay?: number;
  /** A token id left out of the training loss's softmax (MDLM's mask id). */
  excludeToken?: number;
  /** Kernel threads (default: `defaultThreads()`: `OPENBLAS_NUM_THREADS` when set, else the cores). */
  threads?: number;
  /** Rows of the head's logits chunk (default 128). */
  chunkRows?: number;
  /** Rows per scoring pass (default 16): a list's batches run in chunks of this many rows. */
  scoreRows?: number;
}

/** What {@linkcode CpuTransformer.readLoss} returns. */
export interface CpuLossReading {
  /** Mean step loss since the last reading (NaN when none). */
  loss: number;
  /** Steps (or backward passes) in that mean. */
  steps: number;
  /** Global gradient norm of the last step, before clipping. */
  gradNorm: number;
}

/** One training batch for the fixed [B, T] (`TrainBatch` of the WebGPU engine). */
export interface CpuTrainBatch {
  /** Input ids, B·T. */
  inputs: Int32Array;
  /** Target id per position; negative: ignored. */
  targets: Int32Array;
  /** Loss weight per position. */
  weights: Float32Array;
  /** Diffusion time per row (time-conditioned models). */
  t?: ArrayLike<number>;
}

/** AdamW's step count and moments by name (tfjs `AdamW.state()` shape). */
export interface CpuAdamWState {
  /** Updates applied so far. */
  step: number;
  /** First moments by name. */
  m: Map<string, Float32Array>;
  /** Second moments by name. */
  v: Map<string, Float32Array>;
}

/**
 * The Transformer on the CPU engine: the config, parameter names and
 * safetensors of `@d3pm/transformer`, causal and bidirectional attention,
 * learned and rotary positions, ALiBi, adaLN time conditioning, dropout
 * (the WebGPU engine's counter-based masks), clipping, AdamW and an EMA —
 * the WebGPU engine's plan, run on the CPU. Implements the training loop's
 * `StepEngine` and `@d3pm/core`'s `TermScorer`, `CausalGenerator` (the
 * KV cache) and `MaskedGenerator`.
 *
 * @example
 * ```ts
 * import { CpuTransformer } from "@d3pm/cpu";
 * import { preset } from "@d3pm/transformer";
 * import { assert } from "@std/assert";
 * const config = preset("micro", { vocabSize: 16, contextLength: 8 });
 * const engine = await CpuTransformer.create(config, { batchSize: 2, length: 8, seed: 0, threads: 1 });
 * const inputs = new Int32Array(16).fill(3);
 * engine.step({ inputs, targets: inputs, weights: new Float32Array(16).fill(1 / 16) }, 1e-3);
 * const { loss, steps } = await engine.readLoss();
 * assert(steps === 1 && loss > 0);
 * engine.dispose();
 * ```
 */
export class CpuTransformer
  implements TermScorer, CausalGenerator, MaskedGenerator {
  /** The validated configuration. */
  readonly config: ModelConfig;
  /** Whether the model reads the diffusion time t. */
  readonly timeConditioned: boolean;
  /** Rows of a training step (0 on an evaluation-only engine). */
  readonly batchSize: number;
  /** Tokens per row of a training step (0 on an evaluation-only engine). */
  readonly length: number;
  /** Whether the engine was built for evaluation only. */
  readonly evaluationOnly: boolean;
  /** The kernels (memory, threads, CBLAS) the engine runs on. */
  readonly kernels: CpuKernels;
  #s: EngineState;

  private constructor(
    state: EngineState,
    shape: { batchSize: number; length: number },
  ) {
    this.#s = state;
    this.config = state.config;
    this.timeConditioned = state.config.timeConditioning;
    this.kernels = state.kernels;
    this.batchSize = shape.batchSize;
    this.length = shape.length;
    this.evaluationOnly = state.settings.evaluationOnly;
  }

  /**
   * Build an engine: validate the config and shape, size the kernel memory
   * once (parameters, training state, the training arena, one inference
   * region), start the threads, and turn the plan into calls.
   *
   * @param config A model configuration.
   * @param options The training shape, seed or weights, optimiser settings,
   *   threads, or `evaluationOnly`.
   * @returns The engine; call {@linkcode CpuTransformer.dispose} when done
   *   (its threads keep the process alive until then).
   * @throws {RangeError} On a bad shape or option.
   *
   * @example
   * ```ts
   * import { CpuTransformer } from "@d3pm/cpu";
   * import { preset } from "@d3pm/transformer";
   * import { assertRejects } from "@std/assert";
   * await assertRejects(
   *   () => CpuTransformer.create(preset("tiny"), { batchSize: 1, length: 999 }),
   *   RangeError,
   *   "length must be an integer in [1, 128], got 999",
   * );
   * ```
   */
  static async create(
    config: ModelConfig,
    options: CpuTransformerOptions,
  ): Promise<CpuTransformer> {
    const { state, shape } = await openEngine(config, options);
    return new CpuTransformer(state, shape);
  }

  /**
   * Forward and backward for one batch, without an update: the loss joins
   * the running sum, the gradients stay readable with
   * {@linkcode CpuTransformer.readGradients}.
   *
   * @param batch Inputs, targets and weights for the fixed [B, T].
   * @param options `dropoutSeed`: this pass's dropout masks.
   */
  backward(batch: CpuTrainBatch, options: { dropoutSeed?: number } = {}): void {
    training.backward(this.#s, batch, options);
  }

  /**
   * One training step: forward, weighted cross-entropy, backward,
   * global-norm clipping, AdamW, EMA.
   *
   * @param batch Inputs, targets and weights for the fixed [B, T].
   * @param lr Learning rate of this step (finite, ≥ 0).
   * @param options `dropoutSeed`: this step's dropout masks (default: from
   *   the engine's seed and the step number, as the WebGPU engine).
   */
  step(
    batch: CpuTrainBatch,
    lr: number,
    options: { dropoutSeed?: number } = {},
  ): void {
    training.step(this.#s, batch, lr, options);
  }

  /**
   * The loss of a batch without training (no dropout), into the evaluation
   * accumulator read by {@linkcode CpuTransformer.readEvaluation}.
   *
   * @param batch Inputs, targets and weights for the fixed [B, T].
   */
  evaluate(batch: CpuTrainBatch): void {
    training.evaluate(this.#s, batch);
  }

  /**
   * The mean loss of the batches evaluated since the last reading; resets.
   *
   * @returns Mean loss (NaN when none) and the number of batches.
   */
  readEvaluation(): Promise<{ loss: number; batches: number }> {
    return Promise.resolve(training.readEvaluation(this.#s));
  }

  /**
   * The mean step loss since the last reading and the last gradient norm;
   * resets the running sum.
   *
   * @returns Loss, step count and gradient norm.
   */
  readLoss(): Promise<CpuLossReading> {
    return Promise.resolve(training.readLoss(this.#s));
  }

  /**
   * Recorded plans the engine holds now, by kind: forward and scoring plans
   * (at most 4) and decode plans (at most 2), one per shape met, the oldest
   * built dropped beyond that (as the WebGPU engine bounds its own).
   *
   * @example
   * ```ts
   * import { CpuTransformer } from "@d3pm/cpu";
   * import { preset } from "@d3pm/transformer";
   * import { assertEquals } from "@std/assert";
   * const config = preset("micro", { vocabSize: 16, contextLength: 8 });
   * const engine = await CpuTransformer.create(config, { evaluationOnly: true, seed: 0, threads: 1 });
   * for (let length = 1; length <= 6; length++) {
   *   await engine.forwardIds(new Int32Array(length).fill(3), 1, length);
   * }
   * assertEquals(engine.plansHeld, { inference: 4, decode: 0 });
   * engine.dispose();
   * ```
   */
  get plansHeld(): { inference: number; decode: number } {
    const s = this.#s;
    return { inference: s.plans.size, decode: s.decodePlans.size };
  }

  /** Updates applied so far. */
  get stepCount(): number {
    return this.#s.adamStep;
  }

  /**
   * Every parameter by name, in canonical order.
   *
   * @returns Name → shape and values (copies).
   */
  getWeights(): Promise<Map<string, StoredTensor>> {
    return Promise.resolve(io.getWeights(this.#s));
  }

  /**
   * Overwrite every parameter (exact names and shapes). Moments are kept.
   *
   * @param weights Name → shape and values.
   */
  setWeights(weights: ReadonlyMap<string, StoredTensor>): void {
    io.setWeights(this.#s, weights);
  }

  /**
   * The gradients of the last `backward`/`step` (before clipping), by name.
   *
   * @returns Name → shape and values.
   */
  readGradients(): Promise<Map<string, StoredTensor>> {
    return Promise.resolve(io.readGradients(this.#s));
  }

  /**
   * The EMA of the parameters, by name (requires `emaDecay`).
   *
   * @returns Name → shape and values.
   */
  emaWeights(): Promise<Map<string, StoredTensor>> {
    return Promise.resolve(io.emaWeights(this.#s));
  }

  /**
   * Overwrite the EMA of the parameters (requires `emaDecay`).
   *
   * @param weights Name → shape and values.
   */
  setEmaWeights(weights: ReadonlyMap<string, StoredTensor>): void {
    io.setEmaWeights(this.#s, weights);
  }

  /**
   * The AdamW state (for checkpoints), in the tfjs `AdamW.state()` shape.
   *
   * @returns Step count and both moments by name.
   */
  optimizerState(): Promise<CpuAdamWState> {
    return Promise.resolve(io.optimizerState(this.#s));
  }

  /**
   * Restore an AdamW state exactly (resuming gives the same updates).
   *
   * @param state From {@linkcode CpuTransformer.optimizerState} or tfjs.
   */
  loadOptimizerState(
    state: {
      step: number;
      m: ReadonlyMap<string, Float32Array>;
      v: ReadonlyMap<string, Float32Array>;
    },
  ): void {
    io.loadOptimizerState(this.#s, state);
  }

  /**
   * Weighted cross-entropy per row (`@d3pm/core`'s `TermScorer`): each
   * batch's forward (no dropout) and `Σ_j w_ij · CE(logits_ij, target_ij)`
   * per row, in chunks of `scoreRows` rows, summed per row in float64.
   *
   * @param list Batches of terms (rows ≥ 1, 1 ≤ length ≤ contextLength).
   * @returns Per batch, its rows' weighted sums (nats).
   */
  async rowLosses(list: readonly WeightedTokens[]): Promise<Float64Array[]> {
    return await scoring.rowLosses(this.#s, list);
  }

  /**
   * Logits for token ids (forward plans by shape, in chunks of rows).
   *
   * @param ids Token ids, B·T, row-major.
   * @param batch B.
   * @param length T (≤ contextLength).
   * @param t Diffusion time per row (time-conditioned models only).
   * @returns Logits B·T·V, row-major.
   */
  forwardIds(
    ids: Int32Array,
    batch: number,
    length: number,
    t?: ArrayLike<number>,
  ): Promise<Float32Array> {
    return Promise.resolve(scoring.forwardIds(this.#s, ids, batch, length, t));
  }

  /**
   * The model contract's call: logits [B, T, V] as a tfjs tensor (tfjs is
   * loaded here, on the first call).
   *
   * @param tokens Token ids, int32 [B, T].
   * @param options `t` [B] for a time-conditioned model.
   * @returns Logits [B, T, V]; the caller disposes them.
   */
  async forward(
    tokens: Tensor2D,
    options: { t?: Tensor1D; training?: boolean } = {},
  ): Promise<Tensor3D> {
    const tf = await import("@tensorflow/tfjs");
    if (!(tokens instanceof tf.Tensor) || tokens.rank !== 2) {
      fail("forward: tokens must be a rank-2 int32 tensor [B, T]");
    }
    const [b, length] = tokens.shape;
    const ids = (await tokens.data()) as Int32Array;
    const t = this.timeConditioned && options.t
      ? ((await options.t.data()) as Float32Array)
      : undefined;
    const logits = await this.forwardIds(ids, b, length, t);
    return tf.tensor3d(logits, [b, length, this.config.vocabSize]);
  }

  /**
   * Autoregressive generation with the KV cache (`@d3pm/core`'s
   * `CausalGenerator`): the WebGPU engine's decode plan, one step per
   * position serving every position, run by the CPU executor in chunks of
   * rows that fit the inference region. Greedy (temperature 0) is the
   * plan's argmax; otherwise each row draws in JS in float64 (temperature,
   * top-k, top-p, suppressed ids) from its own stream of `seed`. A
   * `prefix` (a prompt) is teacher-forced: its ids follow `start` in every
   * row as given and the draws continue after it.
   *
   * @param options Rows, length (start token included), start id, prefix, draw.
   * @returns B·L ids, the decode steps run, and 0 syncs.
   *
   * @example
   * ```ts
   * import { CpuTransformer } from "@d3pm/cpu";
   * import { preset } from "@d3pm/transformer";
   * import { assertEquals } from "@std/assert";
   * const config = preset("micro", { vocabSize: 16, contextLength: 8 });
   * const engine = await CpuTransformer.create(config, { evaluationOnly: true, seed: 0, threads: 1 });
   * const out = await engine.generateCausal({ batchSize: 2, length: 5, start: 1, temperature: 0, seed: 0 });
   * assertEquals(out.tokens.length, 10);
   * const prompted = await engine.generateCausal({ batchSize: 1, length: 5, start: 1, prefix: [7, 3], temperature: 0, seed: 0 });
   * assertEquals(Array.from(prompted.tokens.subarray(0, 3)), [1, 7, 3]);
   * engine.dispose();
   * ```
   */
  async generateCausal(
    options: CausalGenerationOptions,
  ): Promise<Generation> {
    this.#s.check();
    return await Promise.resolve(
      generateCausal(scoring.generationContext(this.#s), options),
    );
  }

  /**
   * Masked-diffusion sampling (`@d3pm/core`'s `MaskedGenerator`): the
   * engine's forward passes, gated as the WebGPU engine gates them (a pass
   * only when the block holds masks and, with `cache`, a token changed);
   * the draws and the reveal (ancestral or confidence) in JS in float64,
   * one stream per row of `seed`.
   *
   * @param options Rows, length, mask id, steps, blocks, strategy, draw.
   * @returns B·L ids, the passes run, and 0 syncs.
   *
   * @example
   * ```ts
   * import { CpuTransformer } from "@d3pm/cpu";
   * import { preset } from "@d3pm/transformer";
   * import { assert } from "@std/assert";
   * const config = preset("micro", { vocabSize: 16, contextLength: 8, kind: "bidirectional" });
   * const engine = await CpuTransformer.create(config, { evaluationOnly: true, seed: 0, threads: 1 });
   * const out = await engine.generateMasked({
   *   batchSize: 1, length: 8, maskId: 15, steps: [{ t: 1, reveal: 1 }],
   *   strategy: "ancestral", cache: true, seed: 0,
   * });
   * assert(!out.tokens.includes(15));
   * engine.dispose();
   * ```
   */
  async generateMasked(
    options: MaskedGenerationOptions,
  ): Promise<Generation> {
    this.#s.check();
    return await Promise.resolve(
      generateMasked(scoring.generationContext(this.#s), options),
    );
  }

  /**
   * Stop the threads and release the kernel memory. Until then the worker
   * threads keep the process alive: a script that never disposes its engine
   * does not exit when its work is done.
   */
  dispose(): void {
    this.#s.dispose();
  }
}
