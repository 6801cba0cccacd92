/**
 * The option and result types of the fused WebGPU engine
 * ({@linkcode WebGpuTransformer}).
 *
 * @module
 */

import type { StoredTensor } from "@d3pm/core";

/** AdamW hyper-parameters (the defaults of the tfjs `AdamW`). */
export interface EngineAdamW {
  /** First-moment decay (default 0.9). */
  beta1?: number;
  /** Second-moment decay (default 0.95). */
  beta2?: number;
  /** Denominator epsilon (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay of matrices and embeddings (default 0.1). */
  weightDecay?: number;
}

/** Options of {@linkcode WebGpuTransformer.create}. */
export interface WebGpuTransformerOptions {
  /** Rows of every training step (required unless `evaluationOnly`). */
  batchSize?: number;
  /** Tokens per row of every training step, ≤ contextLength (required unless `evaluationOnly`). */
  length?: number;
  /**
   * Build an engine for scoring, forward passes and generation only: no
   * gradients, AdamW moments, EMA or training-step plan are allocated
   * (3 × parameters × 4 bytes less, 1.5 GB at the `paper` size, plus the
   * training arena), and the training methods throw (default false).
   */
  evaluationOnly?: boolean;
  /** Seed of the initial weights: the same weights as `new Transformer(config, { seed })`. */
  seed?: number;
  /** Initial weights instead (names and shapes of `parameterShapes(config)`). */
  weights?: ReadonlyMap<string, StoredTensor>;
  /** A device from {@linkcode requestEngineDevice}; by default one is requested (and destroyed on dispose). */
  device?: GPUDevice;
  /** AdamW hyper-parameters. */
  adamw?: EngineAdamW;
  /** Global-norm clip before AdamW (default 1; `Infinity` turns it off). */
  clipNorm?: number;
  /** Keep an EMA of the parameters with this decay in [0, 1) (default: none; training engines only). */
  emaDecay?: number;
  /**
   * A token id whose logit is left out of the softmax in the loss (MDLM's
   * SUBS: the mask id); default none.
   */
  excludeToken?: number;
  /**
   * Matmul output tile per workgroup: 64, 128, or `auto` (default: 128 for
   * matmuls that still get ≥ 256 workgroups, i.e. GPT-2-sized ones).
   */
  matmulTile?: "auto" | 64 | 128;
  /**
   * `new` (default): the double-buffered vec4 matmul and the tiled
   * attention (where the device's workgroup memory holds it); `old`: the
   * first kernels (scalar f32 matmul, one query per thread), for
   * comparisons (`bench:webgpu --kernels old`).
   */
  kernels?: "new" | "old";
  /**
   * The attention kernels of `kernels: "new"`: `tiled` (default), 32
   * positions per workgroup, 1 × 4 scores per thread; `wide`, 64 positions
   * per workgroup of 256 threads, 4 × 2 scores and 4 × 4 outputs per thread
   * from vec4 loads (webgpu/_attention_wide_wgsl.ts), used where the
   * device's workgroup memory holds all three kernels (32 KiB at head
   * size 64) and the head size is a multiple of 4 up to 64, with
   * `kernels: "new"`; elsewhere the tiled (or first) kernels run, as
   * {@linkcode WebGpuTransformer.attentionKernels} reports. Not yet timed
   * on a GPU: `bench:webgpu` prints both sets' attention lines.
   */
  attentionKernel?: "tiled" | "wide";
  /**
   * The matmul of AR generation's cached decoding passes (M = batch rows):
   * `tile` (default), the tiled matmul every other plan uses; `skinny`, a
   * kernel for at most 8 rows — a workgroup per block of columns, K split
   * among its threads, all rows accumulated per thread — for batches of
   * ≤ 8 rows (larger batches keep the tiled one). Not yet measured on a
   * GPU; `bench:webgpu --decode-matmul both` times the two.
   */
  decodeMatmul?: "tile" | "skinny";
  /**
   * The attention of AR generation's cached decoding passes: `single`
   * (default), one workgroup per (row, head) over all keys 0..p; `split`,
   * split-key ("flash-decoding"): the keys in chunks of 16–64 positions
   * over a grid of (row, head, chunk) workgroups, each writing its max, sum
   * and unnormalised output, then a merge kernel (log-sum-exp) — two
   * dispatches a layer instead of one, many more workgroups. Not yet
   * measured on a GPU; `bench:webgpu --decode-attention both` times the two.
   */
  decodeAttention?: "single" | "split";
  /**
   * Largest logits chunk of the training head, in floats (default: an
   * eighth of the device's largest binding, at most 32M floats; the head
   * runs ⌈B·T·V / chunk⌉ times, 4 dispatches each).
   */
  chunkFloats?: number;
}

/** One training batch for the fixed shape [B, T], row-major. */
export interface TrainBatch {
  /** Input ids, B·T. */
  inputs: Int32Array;
  /** Target id per position, B·T; a negative id is ignored. */
  targets: Int32Array;
  /**
   * Loss weight per position, B·T: the step's loss is Σ w·CE (e.g. 1/count
   * for a mean; MDLM's −α′/(1−α)/count on masked tokens, 0 elsewhere).
   */
  weights: Float32Array;
  /** Diffusion time per row, B values in [0, 1]; required when time-conditioned. */
  t?: ArrayLike<number>;
}

/** Work counters since the engine was built. */
export interface EngineCounters {
  /** Compute dispatches recorded. */
  dispatches: number;
  /** Command buffers submitted. */
  submits: number;
  /** GPU→CPU waits (`mapAsync`). */
  syncs: number;
  /** Training steps (AdamW updates). */
  steps: number;
  /** Host milliseconds spent recording dispatches into passes. */
  encodeMs: number;
  /** Host milliseconds spent in `queue.submit` (a software adapter may run the work there). */
  submitMs: number;
}

/**
 * The attention kernels an engine dispatches (its
 * {@linkcode WebGpuTransformer.attentionKernels}), one family per kernel:
 * `wide` (the register-tiled set, `attentionKernel: "wide"`), `tiled`, or
 * `first` (one query per thread: `kernels: "old"`, or where the head size
 * or the device's workgroup memory rules the others out).
 */
export interface AttentionKernels {
  /** The forward kernel (`attn_fwd…` pipelines). */
  forward: "wide" | "tiled" | "first";
  /** The backward kernel for dQ (`attn_bwd_q…`). */
  backwardQuery: "wide" | "tiled" | "first";
  /** The backward kernel for dK and dV (`attn_bwd_kv…`). */
  backwardKeyValue: "wide" | "tiled" | "first";
}

/** GPU time of one kernel (pipeline) over a profiled step. */
export interface KernelTime {
  /** The pipeline key, e.g. `mm:false:true:store:false` or `attn_fwd:64:true:false`. */
  kernel: string;
  /** Dispatches of it in the step. */
  count: number;
  /** Their summed GPU time, milliseconds. */
  ms: number;
}

/** What {@linkcode WebGpuTransformer.readLoss} returns. */
export interface LossReading {
  /** Mean step loss since the last reading (NaN when no step ran). */
  loss: number;
  /** Steps (or backward passes) in that mean. */
  steps: number;
  /** Global gradient norm of the last step, before clipping. */
  gradNorm: number;
}

/** The AdamW state, in the tfjs `AdamWState` shape (for checkpoints). */
export interface EngineAdamWState {
  /** Updates applied so far. */
  step: number;
  /** First moments by parameter name. */
  m: Map<string, Float32Array>;
  /** Second moments by parameter name. */
  v: Map<string, Float32Array>;
}
