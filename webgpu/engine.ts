/**
 * The fused WebGPU engine: the project's Transformer (same config, same
 * parameter names, same safetensors) as a fixed list of WGSL dispatches for
 * one (batch, length), with parameters, gradients and AdamW moments in one
 * buffer each, activations in an arena planned once, pipelines and bind
 * groups built once, and one command buffer per training step.
 *
 * The class is the public face; each role lives in its own private file
 * behind one state handle (`_state.ts`): set-up (`_setup.ts`), training
 * (`_training.ts`), weights and optimiser I/O (`_weights_io.ts`), scoring
 * (`_scoring.ts`), causal and masked generation (`_generate_causal.ts`,
 * `_generate_masked.ts`).
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
import { type EngineState, fail } from "./_state.ts";
import { openEngine } from "./_setup.ts";
import * as training from "./_training.ts";
import * as io from "./_weights_io.ts";
import * as scoring from "./_scoring.ts";
import { generateCausal } from "./_generate_causal.ts";
import { generateMasked } from "./_generate_masked.ts";
import { attentionFamilies } from "./_recorder.ts";
import type {
  AttentionKernels,
  EngineAdamWState,
  EngineCounters,
  KernelTime,
  LossReading,
  TrainBatch,
  WebGpuTransformerOptions,
} from "./types.ts";

/**
 * The Transformer on the fused WebGPU engine. Causal and bidirectional
 * attention, learned and rotary positions, tied embeddings, pre-LN blocks,
 * GELU MLP, optional adaLN time conditioning (pass `t` per row), dropout
 * in training steps (`config.dropout`: embeddings, attention probabilities,
 * both residual branches; masks from a counter-based hash of the step, so
 * not the tfjs masks). The parameters equal a tfjs `Transformer` of the same
 * config and seed, and read and write the same safetensors.
 *
 * @example
 * ```ts ignore
 * import { WebGpuTransformer } from "@d3pm/webgpu";
 * import { preset } from "@d3pm/transformer";
 * const config = preset("tiny", { vocabSize: 64, nLayer: 1, dModel: 16, nHead: 2, dMlp: 32, contextLength: 8 });
 * const engine = await WebGpuTransformer.create(config, { batchSize: 2, length: 8, seed: 0 });
 * const inputs = new Int32Array(16).fill(3);
 * engine.step({ inputs, targets: inputs, weights: new Float32Array(16).fill(1 / 16) }, 1e-3);
 * console.log(await engine.readLoss()); // { loss: ~4.16, steps: 1, gradNorm: ... }
 * engine.dispose();
 * ```
 */
export class WebGpuTransformer
  implements TermScorer, CausalGenerator, MaskedGenerator {
  /** The validated configuration. */
  readonly config: ModelConfig;
  /** Whether the model reads the diffusion time t (adaLN; `config.timeConditioning`). */
  readonly timeConditioned: boolean;
  /** Rows of a training step (0 on an evaluation-only engine built without it). */
  readonly batchSize: number;
  /** Tokens per row of a training step (0 on an evaluation-only engine built without it). */
  readonly length: number;
  /** Whether the engine was built for evaluation only (no training state). */
  readonly evaluationOnly: boolean;
  /** The device the engine runs on. */
  readonly device: GPUDevice;
  #s: EngineState;

  private constructor(
    state: EngineState,
    shape: { batchSize: number; length: number },
  ) {
    this.#s = state;
    this.config = state.config;
    this.timeConditioned = state.config.timeConditioning;
    this.device = state.device;
    this.batchSize = shape.batchSize;
    this.length = shape.length;
    this.evaluationOnly = state.training === null;
  }

  /**
   * Build an engine: validate the config and shape, request a device when
   * none is given, upload the initial weights (seeded exactly as the tfjs
   * `Transformer`, by `initialWeights` without tfjs, or the given ones) and
   * record every dispatch. With `evaluationOnly`, no gradients, AdamW
   * moments or training plan are allocated.
   *
   * @param config A model configuration (validated again here).
   * @param options The fixed training shape, seed or weights, device,
   *   optimiser settings, or `evaluationOnly`.
   * @returns The engine; call {@linkcode WebGpuTransformer.dispose} when done.
   * @throws {RangeError} On a bad shape or option.
   * @throws {WebGpuUnavailableError} When no adapter exists.
   *
   * @example
   * ```ts
   * import { WebGpuTransformer } from "@d3pm/webgpu";
   * import { preset } from "@d3pm/transformer";
   * import { assertRejects } from "@std/assert";
   * const config = preset("tiny", { kind: "bidirectional" });
   * await assertRejects(
   *   () => WebGpuTransformer.create(config, { batchSize: 1, length: 999 }),
   *   RangeError,
   *   "length must be an integer in [1, 128], got 999",
   * );
   * ```
   */
  static async create(
    config: ModelConfig,
    options: WebGpuTransformerOptions,
  ): Promise<WebGpuTransformer> {
    const { state, shape } = await openEngine(config, options);
    return new WebGpuTransformer(state, shape);
  }

  /**
   * An engine from a model directory written by `saveModel` (tfjs) or
   * {@linkcode WebGpuTransformer.save}.
   *
   * @param dir The directory holding `config.json` and `model.safetensors`.
   * @param options Shape and training options, or `evaluationOnly` (weights
   *   come from the file).
   * @returns The engine.
   */
  static async load(
    dir: string,
    options: Omit<WebGpuTransformerOptions, "weights" | "seed">,
  ): Promise<WebGpuTransformer> {
    const { config, weights } = await io.readModelDir(dir);
    return await WebGpuTransformer.create(config, { ...options, weights });
  }

  /**
   * Forward and backward for one batch, without an update: the loss joins
   * the running sum and the gradients stay readable with
   * {@linkcode WebGpuTransformer.readGradients}. One command buffer, no sync.
   *
   * @param batch Inputs, targets and weights for the fixed [B, T].
   * @param options `dropoutSeed`: this pass's dropout masks (default: those
   *   of the next step).
   */
  backward(batch: TrainBatch, options: { dropoutSeed?: number } = {}): void {
    training.backward(this.#s, batch, options.dropoutSeed);
  }

  /**
   * One training step in one command buffer and without a GPU→CPU sync:
   * forward, weighted cross-entropy (summed on the GPU), backward,
   * global-norm clipping, AdamW, EMA.
   *
   * @param batch Inputs, targets and weights for the fixed [B, T].
   * @param lr Learning rate of this step (finite, ≥ 0).
   * @param options `dropoutSeed`: this step's dropout masks (default: from
   *   the engine's seed and the step number).
   */
  step(
    batch: TrainBatch,
    lr: number,
    options: { dropoutSeed?: number } = {},
  ): void {
    training.step(this.#s, batch, lr, options.dropoutSeed);
  }

  /**
   * One training step (exactly as {@linkcode WebGpuTransformer.step}) with
   * each dispatch in its own compute pass between GPU timestamps, for a
   * per-kernel time profile. Slower than a plain step; needs the device's
   * `timestamp-query` feature (requested by `requestEngineDevice` when the
   * adapter has it). One sync.
   *
   * @param batch Inputs, targets and weights for the fixed [B, T].
   * @param lr Learning rate of this step.
   * @returns GPU time per kernel, largest first, and the total.
   */
  async profileStep(
    batch: TrainBatch,
    lr: number,
  ): Promise<{ kernels: KernelTime[]; totalMs: number }> {
    return await training.profileStep(this.#s, batch, lr);
  }

  /**
   * The loss of a batch without training: forward (no dropout) and the
   * weighted cross-entropy, summed into an evaluation accumulator on the
   * GPU (read with {@linkcode WebGpuTransformer.readEvaluation}). One
   * command buffer, no sync; parameters, gradients and the training loss are
   * untouched. Runs on the training plan (training engines only; scoring of
   * any shape is {@linkcode WebGpuTransformer.rowLosses}).
   *
   * @param batch Inputs, targets and weights for the fixed [B, T] (e.g.
   *   an AR process's `lossTerms` of validation blocks).
   */
  evaluate(batch: TrainBatch): void {
    training.evaluate(this.#s, batch);
  }

  /**
   * The mean loss of the batches evaluated since the last reading (one
   * sync); resets the accumulator.
   *
   * @returns Mean loss (NaN when none) and the number of batches.
   */
  async readEvaluation(): Promise<{ loss: number; batches: number }> {
    return await training.readEvaluation(this.#s);
  }

  /**
   * The mean step loss since the last reading and the last gradient norm;
   * one GPU→CPU sync. Resets the running sum.
   *
   * @returns Loss, step count and gradient norm.
   */
  async readLoss(): Promise<LossReading> {
    return await training.readLoss(this.#s);
  }

  /** Work counters so far, and the dispatches of the last step. */
  get counters(): EngineCounters & { lastStepDispatches: number } {
    const s = this.#s;
    return { ...s.counters, lastStepDispatches: s.lastStepDispatches };
  }

  /**
   * The attention kernels this engine dispatches in its training, scoring
   * and masked-generation plans — what ran, not what was asked for:
   * `attentionKernel: "wide"` falls back to the tiled set with
   * `kernels: "old"` (then the first kernels), at a head size the wide set
   * does not take (not a multiple of 4, or over 64) or where the device's
   * workgroup memory does not hold it. AR decoding uses `decodeAttention`.
   *
   * @example
   * ```ts ignore
   * import { WebGpuTransformer } from "@d3pm/webgpu";
   * import { preset } from "@d3pm/transformer";
   * const engine = await WebGpuTransformer.create(preset("tiny"), {
   *   evaluationOnly: true,
   *   kernels: "old",
   *   attentionKernel: "wide",
   * });
   * console.log(engine.attentionKernels.forward); // "first"
   * engine.dispose();
   * ```
   */
  get attentionKernels(): AttentionKernels {
    const s = this.#s;
    const f = attentionFamilies(s.kit, s.config.dModel / s.config.nHead);
    return {
      forward: f.forward,
      backwardQuery: f.query,
      backwardKeyValue: f.keyValue,
    };
  }

  /** Updates applied so far. */
  get stepCount(): number {
    return this.#s.training?.adamStep ?? 0;
  }

  /**
   * Every parameter by name, in canonical order (one sync).
   *
   * @returns Name → shape and values.
   */
  async getWeights(): Promise<Map<string, StoredTensor>> {
    return await io.getWeights(this.#s);
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
  async readGradients(): Promise<Map<string, StoredTensor>> {
    return await io.readGradients(this.#s);
  }

  /**
   * The EMA of the parameters, by name (requires `emaDecay`).
   *
   * @returns Name → shape and values.
   */
  async emaWeights(): Promise<Map<string, StoredTensor>> {
    return await io.emaWeights(this.#s);
  }

  /**
   * Overwrite the EMA of the parameters (requires `emaDecay`), e.g. from a
   * checkpoint, so that a resumed run continues the same average.
   *
   * @param weights Name → shape and values (exact names and shapes).
   */
  setEmaWeights(weights: ReadonlyMap<string, StoredTensor>): void {
    io.setEmaWeights(this.#s, weights);
  }

  /**
   * The AdamW state (for checkpoints), in the tfjs `AdamW.state()` shape.
   *
   * @returns Step count and both moments by name.
   */
  async optimizerState(): Promise<EngineAdamWState> {
    return await io.optimizerState(this.#s);
  }

  /**
   * Restore an AdamW state (exactly: resuming gives the same updates).
   *
   * @param state From {@linkcode WebGpuTransformer.optimizerState} or the
   *   tfjs `AdamW.state()`.
   */
  loadOptimizerState(state: EngineAdamWState): void {
    io.loadOptimizerState(this.#s, state);
  }

  /**
   * Generate with the KV cache, entirely on the GPU: each step embeds the
   * token at the current position, runs the blocks with one query over the
   * cache, draws the next token into the token buffer and advances the
   * position there, so the steps chain without the host. All `length − 1`
   * steps go into **one command buffer**; the rows are read back once. A
   * `prefix` (a prompt) is teacher-forced: for the steps inside it its ids
   * are copied into the next slots between passes instead of a draw.
   *
   * @param options Rows, length, start token, prefix, temperature (0: greedy).
   * @returns The rows (start token first), passes and syncs.
   */
  async generateCausal(options: CausalGenerationOptions): Promise<Generation> {
    return await generateCausal(this.#s, options);
  }

  /**
   * Masked-diffusion sampling entirely on the GPU: per step, a gate kernel
   * counts the block's masks and decides whether the bidirectional pass
   * runs (skipped when the block is done, or — caching — when no token
   * changed since the last pass: its dispatches are indirect, with zero
   * workgroups when skipped); the pass; the draws (ancestral: each masked
   * position revealed with the step's probability, drawn with the
   * float64-grade categorical kernel; confidence: every masked position
   * drawn, the most probable revealed). Prompts (infilling) and
   * semi-autoregressive blocks are positions the gates never open. All
   * steps go into one command buffer; the rows and the count of passes are
   * read back once.
   *
   * @param o Rows, steps (t and reveal probability each), strategy, cache,
   *   draw settings and seed.
   * @returns The rows, the passes run and the syncs (1).
   */
  async generateMasked(o: MaskedGenerationOptions): Promise<Generation> {
    return await generateMasked(this.#s, o);
  }

  /**
   * Weighted cross-entropy per row, on the GPU: for each batch of terms, the
   * forward (no dropout) and `Σ_j w_ij · CE(logits_ij, target_ij)` per row
   * (the `excludeToken` of the terms left out of the softmax, as MDLM's
   * SUBS). One command buffer per batch, **one sync for the whole list**:
   * the per-position losses are copied into one result buffer and read
   * back once, then summed per row in float64.
   *
   * This is the `TermScorer` contract of `@d3pm/core`: the processes'
   * `score` and `bound` run on it with the same draws as on a tfjs model.
   *
   * @param list Batches of terms (any rows ≥ 1, 1 ≤ length ≤ contextLength;
   *   `t` per row for a time-conditioned model).
   * @returns Per batch, its rows' weighted sums (nats).
   */
  async rowLosses(list: readonly WeightedTokens[]): Promise<Float64Array[]> {
    return await scoring.rowLosses(this.#s, list);
  }

  /**
   * Logits for token ids, on a forward-only plan for [B, T] (built once per
   * shape, a few kept). One sync.
   *
   * @param ids Token ids, B·T, row-major.
   * @param batch B.
   * @param length T (≤ contextLength).
   * @param t Diffusion time per row (B values; time-conditioned models only).
   * @returns Logits B·T·V, row-major.
   */
  async forwardIds(
    ids: Int32Array,
    batch: number,
    length: number,
    t?: ArrayLike<number>,
  ): Promise<Float32Array> {
    return await scoring.forwardIds(this.#s, ids, batch, length, t);
  }

  /**
   * The model contract's call: `forward(tokens [B, T], { t? }) → logits
   * [B, T, V]` as a tfjs tensor (read back once; asynchronous because
   * WebGPU reads back asynchronously). tfjs is loaded here, on the first
   * call: nothing else of the engine uses it.
   *
   * @param tokens Token ids, int32 [B, T].
   * @param options `t` [B] (required when time-conditioned, ignored
   *   otherwise); `training` is accepted and ignored: forward never
   *   applies dropout (the training step does).
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
    if (tokens.dtype !== "int32") {
      fail(`forward: tokens must be int32, got ${tokens.dtype}`);
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
   * The weights as safetensors bytes in the tfjs model's format
   * (`serializeModel`): config in `__metadata__.config`. One sync.
   *
   * @returns The file's bytes.
   */
  async serialize(): Promise<Uint8Array> {
    return await io.serialize(this.#s);
  }

  /**
   * Write `config.json` and `model.safetensors` into a directory, as the
   * tfjs `saveModel` does (each file written then renamed).
   *
   * @param dir The directory (created if missing).
   * @returns When both files are in place.
   */
  async save(dir: string): Promise<void> {
    return await io.save(this.#s, dir);
  }

  /** GPU buffers currently held (0 after dispose). */
  get liveBuffers(): number {
    return this.#s.liveBuffers;
  }

  /**
   * Bytes of the GPU buffers currently held (0 after dispose): parameters,
   * the training state, and the arenas and uniform blocks of the plans
   * built so far (compare `engineMemory`).
   */
  get liveBytes(): number {
    return this.#s.liveBytes;
  }

  /** Destroy every GPU buffer (and the device when the engine made it). */
  dispose(): void {
    this.#s.dispose();
  }
}
