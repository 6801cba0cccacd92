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
import {
  initialWeights,
  type ModelConfig,
  validateConfig,
} from "@d3pm/transformer";
import {
  type Arena,
  embeddingIndex,
  type IntLayout,
  joinWeights,
  type ParameterTable,
  parameterTable,
  planArena,
  PlanCache,
  planDecode,
  planInts,
  recordBackward,
  recordEvaluation,
  recordForward,
  recordHead,
  recordScore,
  ropeTables,
  splitWeights,
  timeFeatures,
} from "@d3pm/webgpu/plan";
import {
  CBLAS_NO_TRANS,
  CBLAS_ROW_MAJOR,
  CBLAS_TRANS,
} from "@d3pm/backend/cblas";
import { type CpuKernels, createCpuKernels } from "./kernels.ts";
import { CpuExecutor, type StepScalars, stepScalars } from "./_executor.ts";
import {
  type DecodePlan,
  generateCausal,
  generateMasked,
  type GenerationContext,
} from "./_generate.ts";

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

function fail(message: string): never {
  throw new RangeError(`CpuTransformer: ${message}`);
}

// Most floats of logits a forward pass writes at once.
const LOGITS_FLOATS = 1 << 21;

// Plans kept by shape, as the WebGPU engine keeps them: forward and scoring
// plans together, and decode plans.
const INFERENCE_PLANS = 4;
const DECODE_PLANS = 2;
const forget = () => {};

interface Plan {
  batch: number;
  length: number;
  arena: Arena;
  ints: IntLayout;
  exec: CpuExecutor;
  act: Float32Array;
  intView: Int32Array;
}

// Words a k.floats(n) takes (64-byte alignment).
const words = (n: number) => Math.ceil(n / 16) * 16 + 16;

/** Longest stretch of scoring without a turn of the event loop. */
const TURN_MS = 50;

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
  #table: ParameterTable;
  // #headRows's gathered rows, grown to the most a call has asked for.
  #gathered = new Float32Array(0);
  #params: Float32Array;
  #grads: Float32Array | null = null;
  #m: Float32Array | null = null;
  #v: Float32Array | null = null;
  #ema: Float32Array | null = null;
  #s: StepScalars;
  #train: Plan | null = null;
  #adamStep = 0;
  #seed: number;
  #adam: Required<CpuAdamW>;
  #exclude: number;
  #chunkFloats: number;
  #scoreRows: number;
  // The inference region every scoring and forward plan shares.
  #evalAct: Float32Array;
  #evalInts: Int32Array;
  #evalProbs: Float32Array;
  #evalLogits: Float32Array;
  // Plans by shape, bounded as the WebGPU engine's. A plan owns no memory
  // (its views are of the shared inference region), so a dropped one is
  // only forgotten.
  #plans = new PlanCache<Plan>(INFERENCE_PLANS, forget);
  #decodePlans = new PlanCache<DecodePlan>(DECODE_PLANS, forget);
  #disposed = false;

  private constructor(
    c: ModelConfig,
    k: CpuKernels,
    o: CpuTransformerOptions,
    shape: { batchSize: number; length: number },
    weights: ReadonlyMap<string, StoredTensor>,
    sizes: { evalAct: number; evalInts: number; probs: number; logits: number },
  ) {
    this.config = c;
    this.timeConditioned = c.timeConditioning;
    this.kernels = k;
    this.batchSize = shape.batchSize;
    this.length = shape.length;
    this.evaluationOnly = o.evaluationOnly ?? false;
    this.#table = parameterTable(c);
    this.#seed = (o.seed ?? 0) >>> 0;
    this.#adam = {
      beta1: o.adamw?.beta1 ?? 0.9,
      beta2: o.adamw?.beta2 ?? 0.95,
      eps: o.adamw?.eps ?? 1e-8,
      weightDecay: o.adamw?.weightDecay ?? 0.1,
    };
    this.#exclude = o.excludeToken ?? 0xffffffff;
    this.#chunkFloats = (o.chunkRows ?? 128) * c.vocabSize;
    this.#scoreRows = o.scoreRows ?? 16;
    this.#s = stepScalars(o.clipNorm ?? 1, o.emaDecay ?? -1);
    const P = this.#table.size;
    this.#params = k.floats(P);
    this.#params.set(
      joinWeights(this.#table, weights, { what: "weights", fail }),
    );
    this.#evalAct = k.floats(sizes.evalAct);
    this.#evalInts = k.ints(sizes.evalInts);
    this.#evalProbs = k.floats(sizes.probs);
    this.#evalLogits = k.floats(sizes.logits);
    if (this.evaluationOnly) return;
    this.#grads = k.floats(P);
    this.#m = k.floats(P);
    this.#v = k.floats(P);
    if (o.emaDecay !== undefined) {
      this.#ema = k.floats(P);
      this.#ema.set(this.#params);
    }
    const B = shape.batchSize, T = shape.length;
    const arena = planArena(c, B, T, "training", this.#chunkFloats);
    const ints = planInts(B * T);
    const att = B * c.nHead * T * T;
    const act = k.floats(arena.size), intView = k.ints(ints.size);
    const exec = new CpuExecutor(
      k,
      {
        act,
        params: this.#params,
        grads: this.#grads,
        ints: intView,
        m: this.#m,
        v: this.#v,
        ema: this.#ema,
        probs: k.floats(c.nLayer * att),
        scratch: k.floats(att),
        dropped: c.dropout > 0 ? k.floats(c.nLayer * att) : undefined,
      },
      this.#s,
      c.dropout > 0,
    );
    const n = B * T;
    exec.begin("forward");
    recordForward(exec, c, this.#table, arena, ints, B, T);
    exec.begin("backward");
    recordBackward(exec, c, this.#table, arena, ints, B, T, this.#exclude);
    exec.begin("evaluation");
    recordEvaluation(exec, c, this.#table, arena, ints, n, this.#exclude);
    exec.begin("optimizer");
    exec.gradNorm(P, arena.normPartial);
    exec.adamw(P, this.#table.decayEnd, this.#adam);
    if (this.#ema) exec.ema(P);
    this.#train = { batch: B, length: T, arena, ints, exec, act, intView };
    this.#writeRope(this.#train);
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
    const c = validateConfig(config);
    const shape = check(c, options);
    const weights = options.weights ?? initialWeights(c, options.seed ?? 0);
    const table = parameterTable(c);
    const P = table.size, H = c.nHead, Tm = c.contextLength;
    const chunkFloats = (options.chunkRows ?? 128) * c.vocabSize;
    const SR = options.scoreRows ?? 16;
    // The region serves scoring and forward passes of `SR` rows, and a
    // causal model's decode plan of at least one row at full length: its KV
    // cache grows with the layers, the score plan's activations do not.
    const decode = c.kind === "causal" && !c.timeConditioning
      ? planDecode(c, 1, Tm, chunkFloats)
      : undefined;
    const evalAct = Math.max(
      planArena(c, SR, Tm, "score", chunkFloats).size,
      decode?.arena.size ?? 0,
    );
    const evalInts = Math.max(
      planInts(SR * Tm).size,
      decode?.ints.size ?? 0,
    );
    const probs = SR * H * Tm * Tm;
    const fr = forwardRows(c, SR, Tm);
    const logits = fr * Tm * c.vocabSize;
    let total = words(P) + words(evalAct) + words(evalInts) + words(probs) +
      words(logits);
    if (!options.evaluationOnly) {
      const B = shape.batchSize, T = shape.length;
      const att = B * H * T * T;
      total += 3 * words(P) + (options.emaDecay !== undefined ? words(P) : 0);
      total += words(planArena(c, B, T, "training", chunkFloats).size);
      total += words(planInts(B * T).size) + words(c.nLayer * att) +
        words(att) + (c.dropout > 0 ? words(c.nLayer * att) : 0);
    }
    // The norm's partial sums and the kernels' own scratch.
    total += words(Math.ceil(P / 16384) + 1) + (1 << 14);
    const k = await createCpuKernels({
      words: total,
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
    });
    try {
      return new CpuTransformer(c, k, options, shape, weights, {
        evalAct,
        evalInts,
        probs,
        logits,
      });
    } catch (e) {
      k.dispose();
      throw e;
    }
  }

  #check(): void {
    if (this.#disposed) fail("the engine was disposed");
  }

  #training(what: string): Plan {
    this.#check();
    if (!this.#train) fail(`${what} needs a training engine`);
    return this.#train;
  }

  #writeRope(p: Plan): void {
    if (this.config.positions !== "rotary") return;
    const { cos, sin } = ropeTables(
      p.length,
      this.config.dModel / this.config.nHead,
    );
    p.act.set(cos, p.arena.ropeCos);
    p.act.set(sin, p.arena.ropeSin);
  }

  #writeTime(p: Plan, t: ArrayLike<number> | undefined, what: string): void {
    if (!this.config.timeConditioning) return;
    if (t === undefined || t.length !== p.batch) {
      fail(
        `${what}: this model is time-conditioned, pass t with ${p.batch} values in [0, 1], got ${
          t === undefined ? "none" : `${t.length} values`
        }`,
      );
    }
    for (let i = 0; i < t.length; i++) {
      if (!(t[i] >= 0 && t[i] <= 1)) {
        fail(`${what}: t[${i}] must be in [0, 1], got ${t[i]}`);
      }
    }
    p.act.set(timeFeatures(t, this.config.dTime), p.arena.tfeat);
  }

  #checkIds(ids: ArrayLike<number>, what: string): void {
    const v = this.config.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      const x = ids[i];
      if (!(Number.isInteger(x) && x >= 0 && x < v)) {
        fail(`${what}[${i}] must be a token id in [0, ${v}), got ${x}`);
      }
    }
  }

  #writeBatch(batch: CpuTrainBatch, step: number, dropoutSeed?: number): void {
    const p = this.#train!, c = this.config;
    const n = p.batch * p.length;
    if (c.dropout > 0) {
      if (
        dropoutSeed !== undefined &&
        !(Number.isInteger(dropoutSeed) && dropoutSeed >= 0 &&
          dropoutSeed < 2 ** 32)
      ) {
        fail(`dropoutSeed must be a u32, got ${dropoutSeed}`);
      }
      // The WebGPU engine's seed of step k: a resumed run draws the same masks.
      this.#s.dropSeed = dropoutSeed ??
        ((Math.imul(this.#seed ^ 0x9e3779b9, 0x85ebca6b) +
          Math.imul(step, 0xc2b2ae35)) >>> 0);
      this.#s.dropRate = c.dropout;
    }
    for (const key of ["inputs", "targets", "weights"] as const) {
      const arr = batch[key];
      if (!(arr instanceof (key === "weights" ? Float32Array : Int32Array))) {
        fail(
          `batch.${key} must be a ${
            key === "weights" ? "Float32Array" : "Int32Array"
          }`,
        );
      }
      if (arr.length !== n) {
        fail(
          `batch.${key} must hold B·T = ${p.batch}·${p.length} = ${n} values, got ${arr.length}`,
        );
      }
    }
    this.#checkIds(batch.inputs, "batch.inputs");
    for (let i = 0; i < n; i++) {
      if (batch.targets[i] >= c.vocabSize) {
        fail(
          `batch.targets[${i}] must be < ${c.vocabSize} (negative: ignored), got ${
            batch.targets[i]
          }`,
        );
      }
    }
    this.#writeTime(p, batch.t, "batch.t");
    p.intView.set(batch.inputs, p.ints.tokens);
    p.intView.set(batch.targets, p.ints.targets);
    embeddingIndex(batch.inputs, p.intView, p.ints);
    p.act.set(batch.weights, p.arena.weights);
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
    const p = this.#training("backward");
    this.#writeBatch(batch, this.#adamStep + 1, options.dropoutSeed);
    this.#grads!.fill(0);
    p.exec.run(["forward", "backward"]);
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
    const p = this.#training("step");
    if (!(Number.isFinite(lr) && lr >= 0)) {
      fail(`lr must be finite and ≥ 0, got ${lr}`);
    }
    this.#writeBatch(batch, this.#adamStep + 1, options.dropoutSeed);
    this.#adamStep++;
    this.#s.lr = lr;
    this.#s.step = this.#adamStep;
    this.#grads!.fill(0);
    p.exec.run(["forward", "backward", "optimizer"]);
  }

  /**
   * The loss of a batch without training (no dropout), into the evaluation
   * accumulator read by {@linkcode CpuTransformer.readEvaluation}.
   *
   * @param batch Inputs, targets and weights for the fixed [B, T].
   */
  evaluate(batch: CpuTrainBatch): void {
    const p = this.#training("evaluate");
    this.#writeBatch(batch, this.#adamStep + 1);
    this.#s.dropRate = 0;
    p.exec.run(["forward", "evaluation"]);
  }

  /**
   * The mean loss of the batches evaluated since the last reading; resets.
   *
   * @returns Mean loss (NaN when none) and the number of batches.
   */
  readEvaluation(): Promise<{ loss: number; batches: number }> {
    this.#training("readEvaluation");
    const s = this.#s;
    const out = {
      loss: s.evalCount > 0 ? Math.fround(s.evalSum) / s.evalCount : NaN,
      batches: s.evalCount,
    };
    s.evalSum = 0;
    s.evalCount = 0;
    return Promise.resolve(out);
  }

  /**
   * The mean step loss since the last reading and the last gradient norm;
   * resets the running sum.
   *
   * @returns Loss, step count and gradient norm.
   */
  readLoss(): Promise<CpuLossReading> {
    this.#training("readLoss");
    const s = this.#s;
    const out = {
      loss: s.lossSteps > 0 ? s.lossSum / s.lossSteps : NaN,
      steps: s.lossSteps,
      gradNorm: s.gradNorm,
    };
    s.lossSum = 0;
    s.lossSteps = 0;
    return Promise.resolve(out);
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
    return { inference: this.#plans.size, decode: this.#decodePlans.size };
  }

  /** Updates applied so far. */
  get stepCount(): number {
    return this.#adamStep;
  }

  /**
   * Every parameter by name, in canonical order.
   *
   * @returns Name → shape and values (copies).
   */
  getWeights(): Promise<Map<string, StoredTensor>> {
    this.#check();
    return Promise.resolve(splitWeights(this.config, this.#params));
  }

  /**
   * Overwrite every parameter (exact names and shapes). Moments are kept.
   *
   * @param weights Name → shape and values.
   */
  setWeights(weights: ReadonlyMap<string, StoredTensor>): void {
    this.#check();
    this.#params.set(
      joinWeights(this.#table, weights, { what: "setWeights", fail }),
    );
  }

  /**
   * The gradients of the last `backward`/`step` (before clipping), by name.
   *
   * @returns Name → shape and values.
   */
  readGradients(): Promise<Map<string, StoredTensor>> {
    this.#training("readGradients");
    return Promise.resolve(splitWeights(this.config, this.#grads!));
  }

  /**
   * The EMA of the parameters, by name (requires `emaDecay`).
   *
   * @returns Name → shape and values.
   */
  emaWeights(): Promise<Map<string, StoredTensor>> {
    this.#training("emaWeights");
    if (!this.#ema) fail("emaWeights needs the emaDecay option");
    return Promise.resolve(splitWeights(this.config, this.#ema));
  }

  /**
   * Overwrite the EMA of the parameters (requires `emaDecay`).
   *
   * @param weights Name → shape and values.
   */
  setEmaWeights(weights: ReadonlyMap<string, StoredTensor>): void {
    this.#training("setEmaWeights");
    if (!this.#ema) fail("setEmaWeights needs the emaDecay option");
    this.#ema.set(
      joinWeights(this.#table, weights, { what: "setEmaWeights", fail }),
    );
  }

  /**
   * The AdamW state (for checkpoints), in the tfjs `AdamW.state()` shape.
   *
   * @returns Step count and both moments by name.
   */
  optimizerState(): Promise<CpuAdamWState> {
    this.#training("optimizerState");
    const data = (x: Map<string, StoredTensor>) =>
      new Map([...x].map(([k, w]) => [k, w.data as Float32Array]));
    return Promise.resolve({
      step: this.#adamStep,
      m: data(splitWeights(this.config, this.#m!)),
      v: data(splitWeights(this.config, this.#v!)),
    });
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
    this.#training("loadOptimizerState");
    if (!Number.isInteger(state.step) || state.step < 0) {
      fail(`optimizer state step must be an integer ≥ 0, got ${state.step}`);
    }
    const wrap = (x: ReadonlyMap<string, Float32Array>) =>
      new Map(
        [...x].map((
          [k, data],
        ) => [k, { shape: this.#table.byName.get(k)?.shape ?? [], data }]),
      );
    this.#m!.set(joinWeights(this.#table, wrap(state.m), { what: "m", fail }));
    this.#v!.set(joinWeights(this.#table, wrap(state.v), { what: "v", fail }));
    this.#adamStep = state.step;
  }

  // An inference plan of a shape on the shared inference region.
  #plan(
    batch: number,
    length: number,
    mode: "forward" | "score",
    exclude: number,
  ): Plan {
    const key = `${mode}:${batch}x${length}:${exclude}`;
    return this.#plans.get(
      key,
      () => this.#record(batch, length, mode, exclude),
    );
  }

  #record(
    batch: number,
    length: number,
    mode: "forward" | "score",
    exclude: number,
  ): Plan {
    const c = this.config, n = batch * length;
    const arena = planArena(c, batch, length, mode, this.#chunkFloats);
    const ints = planInts(n);
    const exec = new CpuExecutor(this.kernels, {
      act: this.#evalAct,
      params: this.#params,
      ints: this.#evalInts,
      logits: this.#evalLogits,
      probs: this.#evalProbs,
    }, this.#s);
    exec.begin("forward");
    recordForward(exec, c, this.#table, arena, ints, batch, length);
    if (mode === "score") {
      exec.begin("score");
      recordScore(exec, c, this.#table, arena, ints, n, exclude);
    } else {
      exec.begin("head");
      recordHead(exec, c, this.#table, arena, n);
    }
    return {
      batch,
      length,
      arena,
      ints,
      exec,
      act: this.#evalAct,
      intView: this.#evalInts,
    };
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
    this.#check();
    // A list may hold thousands of passes (the exact bound: one per
    // diffusion step): between batches, turn the event loop now and then,
    // so that a signal listener (Ctrl-C) runs. Each batch is scored and
    // read out in one synchronous stretch of the shared region.
    const out: Float64Array[] = [];
    let turned = performance.now();
    for (let b = 0; b < list.length; b++) {
      if (performance.now() - turned > TURN_MS) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        turned = performance.now();
        this.#check();
      }
      out.push(this.#rowLossesOf(list[b], b));
    }
    return out;
  }

  #rowLossesOf(terms: WeightedTokens, b: number): Float64Array {
    const c = this.config;
    const { rows, length } = terms;
    const what = `rowLosses: batch ${b}`;
    if (
      !Number.isInteger(rows) || rows < 1 || !Number.isInteger(length) ||
      length < 1 || length > c.contextLength
    ) {
      fail(
        `${what} needs rows ≥ 1 and 1 ≤ length ≤ ${c.contextLength}, got ${rows} × ${length}`,
      );
    }
    const n = rows * length;
    for (const key of ["inputs", "targets", "weights"] as const) {
      if (terms[key].length !== n) {
        fail(
          `${what}: ${key} must hold rows·length = ${n} values, got ${
            terms[key].length
          }`,
        );
      }
    }
    this.#checkIds(terms.inputs, `${what}: inputs`);
    const ex = terms.excludeToken;
    if (
      ex !== undefined &&
      !(Number.isInteger(ex) && ex >= 0 && ex < c.vocabSize)
    ) {
      fail(
        `${what}: excludeToken must be an id in [0, ${c.vocabSize}), got ${ex}`,
      );
    }
    const sums = new Float64Array(rows);
    for (let r0 = 0; r0 < rows; r0 += this.#scoreRows) {
      const r = Math.min(this.#scoreRows, rows - r0);
      const p = this.#plan(r, length, "score", ex ?? 0xffffffff);
      const a = r0 * length, m = r * length;
      this.#writeRope(p);
      this.#writeTime(p, terms.t?.subarray(r0, r0 + r), what);
      for (let i = 0; i < m; i++) {
        if (terms.targets[a + i] >= c.vocabSize) {
          fail(`${what}: targets[${a + i}] must be < ${c.vocabSize}`);
        }
      }
      p.intView.set(terms.inputs.subarray(a, a + m), p.ints.tokens);
      p.intView.set(terms.targets.subarray(a, a + m), p.ints.targets);
      p.act.set(terms.weights.subarray(a, a + m), p.arena.weights);
      p.exec.run(["forward", "score"]);
      const loss = p.act.subarray(p.arena.rowLoss, p.arena.rowLoss + m);
      for (let i = 0; i < r; i++) {
        let s = 0;
        for (let j = 0; j < length; j++) s += loss[i * length + j];
        sums[r0 + i] = s;
      }
    }
    return sums;
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
    this.#check();
    const c = this.config, V = c.vocabSize;
    if (
      !Number.isInteger(batch) || batch < 1 || !Number.isInteger(length) ||
      length < 1 || length > c.contextLength || ids.length !== batch * length
    ) {
      fail(
        `forward needs 1 ≤ B, 1 ≤ T ≤ ${c.contextLength} and B·T ids, got B ${batch}, T ${length}, ${ids.length} ids`,
      );
    }
    this.#checkIds(ids, "tokens");
    const out = new Float32Array(batch * length * V);
    this.#passes(
      ids,
      batch,
      length,
      t,
      ["forward", "head"],
      (_, r0, r) =>
        out.set(
          this.#evalLogits.subarray(0, r * length * V),
          r0 * length * V,
        ),
    );
    return Promise.resolve(out);
  }

  // The forward passes of B·T ids in chunks of rows — as many as the logits
  // buffer holds at this length, but a time-conditioned model's modulations
  // are per row, and the inference region holds them for `scoreRows` rows
  // only — each chunk's plan run over `segments`, then `take` reads it.
  #passes(
    ids: Int32Array,
    batch: number,
    length: number,
    t: ArrayLike<number> | undefined,
    segments: string[],
    take: (p: Plan, r0: number, r: number) => void,
  ): void {
    const c = this.config;
    const fr = Math.max(
      1,
      Math.min(
        batch,
        Math.floor(this.#evalLogits.length / (length * c.vocabSize)),
        c.timeConditioning ? this.#scoreRows : Infinity,
      ),
    );
    for (let r0 = 0; r0 < batch; r0 += fr) {
      const r = Math.min(fr, batch - r0);
      const p = this.#plan(r, length, "forward", 0xffffffff);
      this.#writeRope(p);
      this.#writeTime(
        p,
        t === undefined ? undefined : Array.from(t).slice(r0, r0 + r),
        "forward",
      );
      p.intView.set(
        ids.subarray(r0 * length, (r0 + r) * length),
        p.ints.tokens,
      );
      p.exec.run(segments);
      take(p, r0, r);
    }
  }

  // The final hidden states (lnf, B·T·d) of forwardIds's passes (the same
  // chunks, so the same products and bits) without the head: masked
  // generation makes logits only for the positions it draws (#headRows).
  #hiddenIds(
    ids: Int32Array,
    batch: number,
    length: number,
    t?: ArrayLike<number>,
  ): Float32Array {
    const d = this.config.dModel;
    this.#checkIds(ids, "tokens");
    const out = new Float32Array(batch * length * d);
    this.#passes(ids, batch, length, t, ["forward"], (p, r0, r) =>
      out.set(
        p.act.subarray(p.arena.lnf, p.arena.lnf + r * length * d),
        r0 * length * d,
      ));
    return out;
  }

  // Logits (k, V) = hidden[rows] · wteᵀ for k chosen rows of #hiddenIds's
  // states: one product on this thread.
  #headRows(
    hidden: Float32Array,
    rows: ArrayLike<number>,
    out: Float32Array,
  ): void {
    const c = this.config, V = c.vocabSize, d = c.dModel, k = rows.length;
    if (k === 0) return;
    if (this.#gathered.length < k * d) this.#gathered = new Float32Array(k * d);
    const gathered = this.#gathered;
    for (let j = 0; j < k; j++) {
      gathered.set(hidden.subarray(rows[j] * d, (rows[j] + 1) * d), j * d);
    }
    const wte = this.#table.byName.get("wte.weight")!.offset;
    this.kernels.cblas.sgemm(
      CBLAS_ROW_MAJOR,
      CBLAS_NO_TRANS,
      CBLAS_TRANS,
      k,
      V,
      d,
      1,
      gathered,
      d,
      this.#params.subarray(wte, wte + V * d),
      d,
      0,
      out,
      V,
    );
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

  #generation(): GenerationContext {
    return {
      config: this.config,
      table: this.#table,
      kernels: this.kernels,
      params: this.#params,
      act: this.#evalAct,
      ints: this.#evalInts,
      probs: this.#evalProbs,
      scalars: this.#s,
      chunkFloats: this.#chunkFloats,
      plans: this.#decodePlans,
      hidden: (ids, b, l, t) => this.#hiddenIds(ids, b, l, t),
      headRows: (hidden, rows, out) => this.#headRows(hidden, rows, out),
      checkIds: (ids, what) => this.#checkIds(ids, what),
    };
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
    this.#check();
    return await Promise.resolve(generateCausal(this.#generation(), options));
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
    this.#check();
    return await Promise.resolve(generateMasked(this.#generation(), options));
  }

  /**
   * Stop the threads and release the kernel memory. Until then the worker
   * threads keep the process alive: a script that never disposes its engine
   * does not exit when its work is done.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#plans.clear();
    this.#decodePlans.clear();
    this.#train = null;
    this.kernels.dispose();
  }
}

function forwardRows(c: ModelConfig, rows: number, length: number): number {
  return Math.max(
    1,
    Math.min(rows, Math.floor(LOGITS_FLOATS / (length * c.vocabSize))),
  );
}

function check(
  c: ModelConfig,
  o: CpuTransformerOptions,
): { batchSize: number; length: number } {
  const evaluationOnly = o.evaluationOnly ?? false;
  if (typeof evaluationOnly !== "boolean") {
    fail(`evaluationOnly must be true or false, got ${evaluationOnly}`);
  }
  if (c.shift) {
    // Its output 0 predicts two tokens; the fused step and scoring read
    // output i as position i only.
    fail(
      "shift (position i predicts token i + 1) is implemented on the tfjs model only, got shift: true",
    );
  }
  const { batchSize, length } = o;
  if (!evaluationOnly || batchSize !== undefined) {
    if (!Number.isInteger(batchSize) || batchSize! < 1) {
      fail(`batchSize must be a positive integer, got ${batchSize}`);
    }
  }
  if (!evaluationOnly || length !== undefined) {
    if (!Number.isInteger(length) || length! < 1 || length! > c.contextLength) {
      fail(
        `length must be an integer in [1, ${c.contextLength}], got ${length}`,
      );
    }
  }
  if (
    o.excludeToken !== undefined &&
    !(Number.isInteger(o.excludeToken) && o.excludeToken >= 0 &&
      o.excludeToken < c.vocabSize)
  ) {
    fail(
      `excludeToken must be an id in [0, ${c.vocabSize}), got ${o.excludeToken}`,
    );
  }
  if (o.emaDecay !== undefined && !(o.emaDecay >= 0 && o.emaDecay < 1)) {
    fail(`emaDecay must be in [0, 1), got ${o.emaDecay}`);
  }
  if (evaluationOnly && o.emaDecay !== undefined) {
    fail("emaDecay needs a training engine, but evaluationOnly is set");
  }
  if (o.clipNorm !== undefined && !(o.clipNorm > 0)) {
    fail(`clipNorm must be > 0 (Infinity: off), got ${o.clipNorm}`);
  }
  for (const key of ["chunkRows", "scoreRows"] as const) {
    const v = o[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) {
      fail(`${key} must be a positive integer, got ${v}`);
    }
  }
  return { batchSize: batchSize ?? 0, length: length ?? 0 };
}
