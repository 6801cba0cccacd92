/**
 * The fused WebGPU engine: the project's Transformer (same config, same
 * parameter names, same safetensors) as a fixed list of WGSL dispatches for
 * one (batch, length), with parameters, gradients and AdamW moments in one
 * buffer each, activations in an arena planned once, pipelines and bind
 * groups built once, and one command buffer per training step.
 *
 * @module
 */

import {
  type CausalGenerationOptions,
  type CausalGenerator,
  decodeSafetensors,
  encodeSafetensors,
  type Generation,
  type MaskedGenerationOptions,
  type MaskedGenerator,
  type StoredTensor,
  type Tensor1D,
  type Tensor2D,
  type Tensor3D,
  type TermScorer,
  type WeightedTokens,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  CONFIG_FILE,
  type ModelConfig,
  parameterShapes,
  Transformer,
  validateConfig,
  WEIGHTS_FILE,
} from "@d3pm/transformer";
import { requestEngineDevice } from "./device.ts";
import { defaultChunkFloats } from "./memory.ts";
import {
  type Arena,
  embeddingIndex,
  type IntLayout,
  type ParameterTable,
  parameterTable,
  planArena,
  planInts,
  type PlanMode,
  ropeTables,
  timeFeatures,
} from "./_layout.ts";
import {
  type Dispatch,
  kernelLayout,
  type Kit,
  Recorder,
} from "./_recorder.ts";
import {
  recordBackward,
  recordEvaluation,
  recordForward,
  recordScore,
} from "./_plan.ts";
import { S } from "./_wgsl.ts";
import {
  type DecodeArena,
  type DecodeInts,
  MAX_SUPPRESS,
  planDecode,
  recordDecode,
  SUPPRESS,
} from "./_decode.ts";
import { GATE, type MaskedInts, maskedInts, selectSource } from "./_masked.ts";
import {
  categoricalSource,
  categoricalThreads,
  categoricalWords,
} from "./_sampling.ts";

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
  /** Rows of every training step. */
  batchSize: number;
  /** Tokens per row of every training step (≤ contextLength). */
  length: number;
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
  /** Keep an EMA of the parameters with this decay in [0, 1) (default: none). */
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

interface Plan {
  batch: number;
  length: number;
  mode: PlanMode;
  arena: Arena;
  ints: IntLayout;
  act: GPUBuffer;
  intBuf: GPUBuffer;
  uniform: GPUBuffer;
  lists: Map<string, Dispatch[]>;
  logits: GPUBuffer | null; // forward plans: [N, V] output
}

interface DecodePlan {
  batch: number;
  length: number;
  arena: DecodeArena;
  ints: DecodeInts;
  act: GPUBuffer;
  intBuf: GPUBuffer;
  uniform: GPUBuffer;
  lists: Map<string, Dispatch[]>;
}

interface DrawSettings {
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
}

interface MaskedPlan {
  plan: Plan;
  state: MaskedInts;
  /** The passes a step may skip: forward, head, suppress. */
  gated: Dispatch[];
  template: GPUBuffer;
  args: GPUBuffer;
  confidence: GPUBuffer;
  uniform: GPUBuffer;
}

const USAGE_STORAGE = 0x80 | 0x08 | 0x04; // STORAGE | COPY_DST | COPY_SRC
const FORWARD_PLANS = 4;

// Record prepared dispatches into a compute pass; returns how many.
function dispatchAll(
  pass: GPUComputePassEncoder,
  list: readonly Dispatch[],
): number {
  for (const d of list) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(d.x, d.y);
  }
  return list.length;
}

function fail(message: string): never {
  throw new RangeError(`WebGpuTransformer: ${message}`);
}

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
  /** Rows of a training step. */
  readonly batchSize: number;
  /** Tokens per row of a training step. */
  readonly length: number;
  /** The device the engine runs on. */
  readonly device: GPUDevice;
  #ownsDevice: boolean;
  #table: ParameterTable;
  #kit: Kit;
  #params: GPUBuffer;
  #grads: GPUBuffer;
  #m: GPUBuffer;
  #v: GPUBuffer;
  #ema: GPUBuffer | null;
  #scalars: GPUBuffer;
  #train: Plan;
  #forwardPlans = new Map<string, Plan>();
  #decodePlans = new Map<string, DecodePlan>();
  #maskedPlans = new Map<string, MaskedPlan>();
  #buffers = new Set<GPUBuffer>();
  #adam: Required<EngineAdamW>;
  #clipNorm: number;
  #emaDecay: number;
  #exclude: number;
  #chunkFloats: number;
  #adamStep = 0;
  #profiling = false;
  #profile: {
    querySet: GPUQuerySet;
    resolve: GPUBuffer;
    keys: string[];
  } | null = null;
  #seed: number;
  #disposed = false;
  #counters: EngineCounters = {
    dispatches: 0,
    submits: 0,
    syncs: 0,
    steps: 0,
    encodeMs: 0,
    submitMs: 0,
  };
  #lastStepDispatches = 0;

  private constructor(
    config: ModelConfig,
    device: GPUDevice,
    ownsDevice: boolean,
    options: WebGpuTransformerOptions,
  ) {
    this.config = config;
    this.timeConditioned = config.timeConditioning;
    this.device = device;
    this.#ownsDevice = ownsDevice;
    this.batchSize = options.batchSize;
    this.length = options.length;
    this.#seed = (options.seed ?? 0) >>> 0;
    this.#adam = {
      beta1: options.adamw?.beta1 ?? 0.9,
      beta2: options.adamw?.beta2 ?? 0.95,
      eps: options.adamw?.eps ?? 1e-8,
      weightDecay: options.adamw?.weightDecay ?? 0.1,
    };
    this.#clipNorm = options.clipNorm ?? 1;
    this.#emaDecay = options.emaDecay ?? -1;
    this.#exclude = options.excludeToken ?? 0xffffffff;
    this.#chunkFloats = options.chunkFloats ??
      defaultChunkFloats(device.limits.maxStorageBufferBindingSize);
    this.#table = parameterTable(config);
    const layout = kernelLayout(device);
    const pipelineLayout = device.createPipelineLayout({
      bindGroupLayouts: [layout],
    });
    const pipelines = new Map<string, GPUComputePipeline>();
    this.#kit = {
      device,
      tile: options.matmulTile ?? "auto",
      layout,
      dummy: this.#buffer(16),
      pipeline: (key, source) => {
        let p = pipelines.get(key);
        if (!p) {
          p = device.createComputePipeline({
            layout: pipelineLayout,
            compute: {
              module: device.createShaderModule({ code: source(), label: key }),
              entryPoint: "main",
            },
            label: key,
          });
          pipelines.set(key, p);
        }
        return p;
      },
    };
    const n = this.#table.size;
    this.#params = this.#buffer(n * 4);
    this.#grads = this.#buffer(n * 4);
    this.#m = this.#buffer(n * 4);
    this.#v = this.#buffer(n * 4);
    this.#ema = this.#emaDecay >= 0 ? this.#buffer(n * 4) : null;
    this.#scalars = this.#buffer(S.size * 4);
    this.#train = this.#plan(options.batchSize, options.length, "training");
  }

  /**
   * Build an engine: validate the config and shape, request a device when
   * none is given, upload the initial weights (seeded exactly as the tfjs
   * `Transformer`, or the given ones) and record every dispatch.
   *
   * @param config A model configuration (validated again here).
   * @param options The fixed training shape, seed or weights, device,
   *   optimiser settings.
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
    const c = validateConfig(config);
    const { batchSize, length } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      fail(`batchSize must be a positive integer, got ${batchSize}`);
    }
    if (!Number.isInteger(length) || length < 1 || length > c.contextLength) {
      fail(
        `length must be an integer in [1, ${c.contextLength}], got ${length}`,
      );
    }
    const hd = c.dModel / c.nHead;
    if (hd > 256) fail(`head size dModel/nHead must be ≤ 256, got ${hd}`);
    if (
      options.excludeToken !== undefined &&
      !(Number.isInteger(options.excludeToken) && options.excludeToken >= 0 &&
        options.excludeToken < c.vocabSize)
    ) {
      fail(
        `excludeToken must be an id in [0, ${c.vocabSize}), got ${options.excludeToken}`,
      );
    }
    if (
      options.emaDecay !== undefined &&
      !(options.emaDecay >= 0 && options.emaDecay < 1)
    ) {
      fail(`emaDecay must be in [0, 1), got ${options.emaDecay}`);
    }
    if (![undefined, "auto", 64, 128].includes(options.matmulTile)) {
      fail(
        `matmulTile must be "auto", 64 or 128, got ${
          JSON.stringify(options.matmulTile)
        }`,
      );
    }
    if (options.clipNorm !== undefined && !(options.clipNorm > 0)) {
      fail(`clipNorm must be > 0 (Infinity: off), got ${options.clipNorm}`);
    }
    let weights = options.weights;
    if (!weights) {
      // The tfjs model's own seeded initialisation, so both engines start
      // from identical weights.
      const model = new Transformer(c, { seed: options.seed ?? 0 });
      const init = new Map<string, StoredTensor>();
      for (const [name, v] of model.variables) {
        init.set(name, {
          shape: [...v.shape],
          data: (await v.data()) as Float32Array,
        });
      }
      model.dispose();
      weights = init;
    }
    const ownsDevice = options.device === undefined;
    const device = options.device ?? (await requestEngineDevice()).device;
    device.pushErrorScope("validation");
    device.pushErrorScope("out-of-memory");
    let engine: WebGpuTransformer | undefined;
    let thrown: unknown = null;
    try {
      engine = new WebGpuTransformer(c, device, ownsDevice, options);
      engine.setWeights(weights);
      if (engine.#ema) {
        const e = new Float32Array(engine.#table.size);
        for (const entry of engine.#table.entries) {
          e.set(weights.get(entry.name)!.data, entry.offset);
        }
        device.queue.writeBuffer(engine.#ema, 0, e);
      }
    } catch (e) {
      thrown = e;
    }
    const oom = await device.popErrorScope();
    const invalid = await device.popErrorScope();
    const error = oom ?? invalid;
    if (thrown !== null || error) {
      engine?.dispose();
      if (!engine && ownsDevice) device.destroy();
      if (thrown !== null) throw thrown;
      throw new Error(
        `WebGpuTransformer: building the engine failed: ${
          error!.message.split("\n")[0]
        }`,
      );
    }
    return engine!;
  }

  #buffer(bytes: number, usage = USAGE_STORAGE): GPUBuffer {
    const limits = this.device.limits;
    const limit = Math.min(
      limits.maxStorageBufferBindingSize,
      limits.maxBufferSize,
    );
    if (usage & 0x80 && bytes > limit) {
      fail(
        `a ${bytes}-byte buffer exceeds this device's largest storage buffer (${limit} bytes); use a smaller batchSize or length (see engineMemory)`,
      );
    }
    const b = this.device.createBuffer({
      size: Math.max(16, Math.ceil(bytes / 4) * 4),
      usage,
    });
    this.#buffers.add(b);
    return b;
  }

  #destroy(b: GPUBuffer | null): void {
    if (!b) return;
    b.destroy();
    this.#buffers.delete(b);
  }

  #plan(
    batch: number,
    length: number,
    mode: PlanMode,
    exclude = this.#exclude,
    extraInts = 0,
  ): Plan {
    const c = this.config;
    const training = mode === "training";
    const arena = planArena(c, batch, length, mode, this.#chunkFloats);
    const n = batch * length;
    const ints = planInts(n);
    const act = this.#buffer(arena.size * 4);
    const intBuf = this.#buffer((ints.size + extraInts) * 4);
    const logits = mode === "forward"
      ? this.#buffer(n * c.vocabSize * 4)
      : null;
    const rec = new Recorder(
      this.#kit,
      {
        params: this.#params,
        grads: training ? this.#grads : null,
        m: training ? this.#m : null,
        v: training ? this.#v : null,
        ema: this.#ema,
        scalars: training ? this.#scalars : null,
      },
      act,
      intBuf,
      training && c.dropout > 0,
    );
    rec.begin("forward");
    recordForward(rec, c, this.#table, arena, ints, batch, length);
    if (training) {
      rec.begin("backward");
      recordBackward(
        rec,
        c,
        this.#table,
        arena,
        ints,
        batch,
        length,
        this.#exclude,
      );
      rec.begin("evaluation");
      recordEvaluation(
        rec,
        c,
        this.#table,
        arena,
        ints,
        batch * length,
        this.#exclude,
      );
      rec.begin("optimizer");
      rec.gradNorm(this.#table.size, arena.normPartial);
      rec.adamw(this.#table.size, this.#table.decayEnd, this.#adam);
      if (this.#ema) rec.ema(this.#table.size);
    } else if (mode === "score") {
      rec.begin("score");
      recordScore(rec, c, this.#table, arena, ints, n, exclude);
    } else {
      rec.begin("head");
      rec.matmul( // logits (N, V) = lnf (N, d) · wteᵀ
        { m: n, n: c.vocabSize, k: c.dModel },
        { buf: act, off: arena.lnf, ld: c.dModel },
        {
          buf: this.#params,
          off: this.#table.byName.get("wte.weight")!.offset,
          ld: c.dModel,
          trans: true,
        },
        { buf: logits!, off: 0, ld: c.vocabSize },
        "store",
      );
    }
    const lists = rec.finish();
    this.#buffers.add(rec.uniform!);
    if (c.positions === "rotary") {
      const { cos, sin } = ropeTables(length, c.dModel / c.nHead);
      this.device.queue.writeBuffer(act, arena.ropeCos * 4, cos);
      this.device.queue.writeBuffer(act, arena.ropeSin * 4, sin);
    }
    return {
      batch,
      length,
      mode,
      arena,
      ints,
      act,
      intBuf,
      uniform: rec.uniform!,
      lists,
      logits,
    };
  }

  #check(): void {
    if (this.#disposed) {
      throw new Error("WebGpuTransformer: the engine has been disposed");
    }
  }

  #checkIds(ids: Int32Array, what: string): void {
    const v = this.config.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < v)) {
        fail(`${what}[${i}] must be a token id in [0, ${v}), got ${ids[i]}`);
      }
    }
  }

  #encode(
    encoder: GPUCommandEncoder,
    plan: Plan,
    names: string[],
  ): number {
    if (this.#profiling) return this.#encodeProfiled(encoder, plan, names);
    const start = performance.now();
    const pass = encoder.beginComputePass();
    let count = 0;
    for (const name of names) count += dispatchAll(pass, plan.lists.get(name)!);
    pass.end();
    this.#counters.encodeMs += performance.now() - start;
    this.#counters.dispatches += count;
    return count;
  }

  // One pass per dispatch, each between two timestamps.
  #encodeProfiled(
    encoder: GPUCommandEncoder,
    plan: Plan,
    names: string[],
  ): number {
    const list = names.flatMap((name) => plan.lists.get(name)!);
    const querySet = this.device.createQuerySet({
      type: "timestamp",
      count: list.length * 2,
    });
    const resolve = this.#buffer(list.length * 16, 0x200 | 0x04); // QUERY_RESOLVE | COPY_SRC
    list.forEach((d, i) => {
      const pass = encoder.beginComputePass({
        timestampWrites: {
          querySet,
          beginningOfPassWriteIndex: 2 * i,
          endOfPassWriteIndex: 2 * i + 1,
        },
      });
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.x, d.y);
      pass.end();
    });
    this.#profile = { querySet, resolve, keys: list.map((d) => d.key) };
    this.#counters.dispatches += list.length;
    return list.length;
  }

  #submit(encoder: GPUCommandEncoder): void {
    const start = performance.now();
    this.device.queue.submit([encoder.finish()]);
    this.#counters.submitMs += performance.now() - start;
    this.#counters.submits++;
  }

  // Count an encoded generation's dispatches and host time, submit it and
  // read `n` ints from `offset` of `buf` (one sync).
  async #readInts(
    encoder: GPUCommandEncoder,
    encoded: { start: number; count: number },
    buf: GPUBuffer,
    offset: number,
    n: number,
  ): Promise<{ ints: Int32Array; syncs: number }> {
    this.#counters.encodeMs += performance.now() - encoded.start;
    this.#counters.dispatches += encoded.count;
    const before = this.#counters.syncs;
    const bits = await this.#read(buf, offset * 4, n * 4, encoder);
    return {
      ints: new Int32Array(bits.buffer, bits.byteOffset, n),
      syncs: this.#counters.syncs - before,
    };
  }

  async #read(
    src: GPUBuffer,
    offsetBytes: number,
    bytes: number,
    encoder?: GPUCommandEncoder,
  ): Promise<Float32Array> {
    const staging = this.#buffer(bytes, 0x01 | 0x08); // MAP_READ | COPY_DST
    try {
      const enc = encoder ?? this.device.createCommandEncoder();
      enc.copyBufferToBuffer(src, offsetBytes, staging, 0, bytes);
      this.#submit(enc);
      this.#counters.syncs++;
      await staging.mapAsync(1); // GPUMapMode.READ
      const out = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      return out;
    } finally {
      this.#destroy(staging);
    }
  }

  // Sinusoidal features of t into a plan's arena (time-conditioned models).
  #writeTime(plan: Plan, t: ArrayLike<number> | undefined, what: string): void {
    if (!this.timeConditioned) return;
    if (t === undefined || t.length !== plan.batch) {
      fail(
        `${what}: this model is time-conditioned, pass t with ${plan.batch} values in [0, 1], got ${
          t === undefined ? "none" : `${t.length} values`
        }`,
      );
    }
    for (let i = 0; i < t.length; i++) {
      if (!(t[i] >= 0 && t[i] <= 1)) {
        fail(`${what}: t[${i}] must be in [0, 1], got ${t[i]}`);
      }
    }
    this.device.queue.writeBuffer(
      plan.act,
      plan.arena.tfeat * 4,
      timeFeatures(t, this.config.dTime),
    );
  }

  #writeBatch(batch: TrainBatch, step: number, dropoutSeed?: number): void {
    const n = this.batchSize * this.length;
    if (this.config.dropout > 0) {
      if (
        dropoutSeed !== undefined &&
        !(Number.isInteger(dropoutSeed) && dropoutSeed >= 0 &&
          dropoutSeed < 2 ** 32)
      ) {
        fail(`dropoutSeed must be a u32, got ${dropoutSeed}`);
      }
      // The masks of step k depend only on the seed and k, so a resumed run
      // draws the masks of the run it continues.
      const seed = dropoutSeed ??
        ((Math.imul(this.#seed ^ 0x9e3779b9, 0x85ebca6b) +
          Math.imul(step, 0xc2b2ae35)) >>> 0);
      const words = new ArrayBuffer(8);
      new Uint32Array(words)[0] = seed;
      new Float32Array(words)[1] = this.config.dropout;
      this.device.queue.writeBuffer(this.#scalars, S.dropSeed * 4, words);
    }
    this.#writeTime(this.#train, batch.t, "batch.t");
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
          `batch.${key} must hold B·T = ${this.batchSize}·${this.length} = ${n} values, got ${arr.length}`,
        );
      }
    }
    this.#checkIds(batch.inputs, "batch.inputs");
    const v = this.config.vocabSize;
    for (let i = 0; i < n; i++) {
      if (batch.targets[i] >= v) {
        fail(
          `batch.targets[${i}] must be < ${v} (negative: ignored), got ${
            batch.targets[i]
          }`,
        );
      }
    }
    const plan = this.#train;
    const ints = new Int32Array(plan.ints.size);
    ints.set(batch.inputs, plan.ints.tokens);
    ints.set(batch.targets, plan.ints.targets);
    embeddingIndex(batch.inputs, ints, plan.ints);
    this.device.queue.writeBuffer(plan.intBuf, 0, ints);
    this.device.queue.writeBuffer(
      plan.act,
      plan.arena.weights * 4,
      new Float32Array(batch.weights),
    );
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
    this.#check();
    this.#writeBatch(batch, this.#adamStep + 1, options.dropoutSeed);
    const encoder = this.device.createCommandEncoder();
    encoder.clearBuffer(this.#grads);
    this.#lastStepDispatches = this.#encode(encoder, this.#train, [
      "forward",
      "backward",
    ]);
    this.#submit(encoder);
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
    this.#check();
    if (!(Number.isFinite(lr) && lr >= 0)) {
      fail(`lr must be finite and ≥ 0, got ${lr}`);
    }
    this.#writeBatch(batch, this.#adamStep + 1, options.dropoutSeed);
    this.#adamStep++;
    const { beta1, beta2 } = this.#adam;
    this.device.queue.writeBuffer(
      this.#scalars,
      S.lr * 4,
      new Float32Array([
        lr,
        1 - beta1 ** this.#adamStep,
        1 - beta2 ** this.#adamStep,
        this.#clipNorm,
        Math.max(this.#emaDecay, 0),
      ]),
    );
    const encoder = this.device.createCommandEncoder();
    encoder.clearBuffer(this.#grads);
    this.#lastStepDispatches = this.#encode(encoder, this.#train, [
      "forward",
      "backward",
      "optimizer",
    ]);
    this.#submit(encoder);
    this.#counters.steps++;
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
    this.#check();
    if (!this.device.features.has("timestamp-query")) {
      throw new Error(
        "WebGpuTransformer: profileStep needs the device feature timestamp-query (this device lacks it)",
      );
    }
    this.#profiling = true;
    try {
      this.step(batch, lr);
    } finally {
      this.#profiling = false;
    }
    const { querySet, resolve, keys } = this.#profile!;
    this.#profile = null;
    const bytes = keys.length * 16;
    const staging = this.#buffer(bytes, 0x01 | 0x08);
    try {
      const encoder = this.device.createCommandEncoder();
      encoder.resolveQuerySet(querySet, 0, keys.length * 2, resolve, 0);
      encoder.copyBufferToBuffer(resolve, 0, staging, 0, bytes);
      this.#submit(encoder);
      this.#counters.syncs++;
      await staging.mapAsync(1);
      const stamps = new BigUint64Array(staging.getMappedRange().slice(0));
      staging.unmap();
      const byKernel = new Map<string, KernelTime>();
      let totalMs = 0;
      keys.forEach((kernel, i) => {
        const ms = Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6;
        const k = byKernel.get(kernel) ?? { kernel, count: 0, ms: 0 };
        k.count++;
        k.ms += ms;
        byKernel.set(kernel, k);
        totalMs += ms;
      });
      return {
        kernels: [...byKernel.values()].sort((a, b) => b.ms - a.ms),
        totalMs,
      };
    } finally {
      this.#destroy(staging);
      this.#destroy(resolve);
      querySet.destroy();
    }
  }

  /**
   * The loss of a batch without training: forward (no dropout) and the
   * weighted cross-entropy, summed into an evaluation accumulator on the
   * GPU (read with {@linkcode WebGpuTransformer.readEvaluation}). One
   * command buffer, no sync; parameters, gradients and the training loss are
   * untouched.
   *
   * @param batch Inputs, targets and weights for the fixed [B, T] (e.g.
   *   an AR process's `lossTerms` of validation blocks).
   */
  evaluate(batch: TrainBatch): void {
    this.#check();
    this.#writeBatch(batch, this.#adamStep + 1);
    if (this.config.dropout > 0) {
      // Rate 0 makes every dropout mask 1 (the forward is the training one).
      this.device.queue.writeBuffer(
        this.#scalars,
        S.dropRate * 4,
        new Float32Array([0]),
      );
    }
    const encoder = this.device.createCommandEncoder();
    this.#encode(encoder, this.#train, ["forward", "evaluation"]);
    this.#submit(encoder);
  }

  /**
   * The mean loss of the batches evaluated since the last reading (one
   * sync); resets the accumulator.
   *
   * @returns Mean loss (NaN when none) and the number of batches.
   */
  async readEvaluation(): Promise<{ loss: number; batches: number }> {
    this.#check();
    const s = await this.#read(this.#scalars, 0, 8 * 4);
    this.device.queue.writeBuffer(
      this.#scalars,
      S.evalSum * 4,
      new Float32Array(2),
    );
    return {
      loss: s[S.evalCount] > 0 ? s[S.evalSum] / s[S.evalCount] : NaN,
      batches: s[S.evalCount],
    };
  }

  /**
   * The mean step loss since the last reading and the last gradient norm;
   * one GPU→CPU sync. Resets the running sum.
   *
   * @returns Loss, step count and gradient norm.
   */
  async readLoss(): Promise<LossReading> {
    this.#check();
    const s = await this.#read(this.#scalars, 0, 4 * 4);
    this.device.queue.writeBuffer(this.#scalars, 0, new Float32Array(2));
    return {
      loss: s[S.lossSteps] > 0 ? s[S.lossSum] / s[S.lossSteps] : NaN,
      steps: s[S.lossSteps],
      gradNorm: s[S.gradNorm],
    };
  }

  /** Work counters so far, and the dispatches of the last step. */
  get counters(): EngineCounters & { lastStepDispatches: number } {
    return { ...this.#counters, lastStepDispatches: this.#lastStepDispatches };
  }

  /** Updates applied so far. */
  get stepCount(): number {
    return this.#adamStep;
  }

  #split(data: Float32Array): Map<string, StoredTensor> {
    const out = new Map<string, StoredTensor>();
    for (const name of parameterShapes(this.config).keys()) {
      const e = this.#table.byName.get(name)!;
      out.set(name, {
        shape: [...e.shape],
        data: data.slice(e.offset, e.offset + e.size),
      });
    }
    return out;
  }

  #join(
    weights: ReadonlyMap<string, StoredTensor>,
    what: string,
  ): Float32Array<ArrayBuffer> {
    for (const name of weights.keys()) {
      if (!this.#table.byName.has(name)) {
        fail(`${what}: unexpected tensor "${name}" for this config`);
      }
    }
    const out = new Float32Array(this.#table.size);
    for (const e of this.#table.entries) {
      const w = weights.get(e.name);
      if (!w) fail(`${what}: missing tensor "${e.name}"`);
      if (w.shape.join(",") !== e.shape.join(",")) {
        fail(
          `${what}: "${e.name}" has shape [${w.shape}], expected [${e.shape}]`,
        );
      }
      out.set(w.data, e.offset);
    }
    return out;
  }

  /**
   * Every parameter by name, in canonical order (one sync).
   *
   * @returns Name → shape and values.
   */
  async getWeights(): Promise<Map<string, StoredTensor>> {
    this.#check();
    return this.#split(await this.#read(this.#params, 0, this.#table.size * 4));
  }

  /**
   * Overwrite every parameter (exact names and shapes). Moments are kept.
   *
   * @param weights Name → shape and values.
   */
  setWeights(weights: ReadonlyMap<string, StoredTensor>): void {
    this.#check();
    this.device.queue.writeBuffer(
      this.#params,
      0,
      this.#join(weights, "setWeights"),
    );
  }

  /**
   * The gradients of the last `backward`/`step` (before clipping), by name.
   *
   * @returns Name → shape and values.
   */
  async readGradients(): Promise<Map<string, StoredTensor>> {
    this.#check();
    return this.#split(await this.#read(this.#grads, 0, this.#table.size * 4));
  }

  /**
   * The EMA of the parameters, by name (requires `emaDecay`).
   *
   * @returns Name → shape and values.
   */
  async emaWeights(): Promise<Map<string, StoredTensor>> {
    this.#check();
    if (!this.#ema) fail("emaWeights needs the emaDecay option");
    return this.#split(await this.#read(this.#ema, 0, this.#table.size * 4));
  }

  /**
   * Overwrite the EMA of the parameters (requires `emaDecay`), e.g. from a
   * checkpoint, so that a resumed run continues the same average.
   *
   * @param weights Name → shape and values (exact names and shapes).
   */
  setEmaWeights(weights: ReadonlyMap<string, StoredTensor>): void {
    this.#check();
    if (!this.#ema) fail("setEmaWeights needs the emaDecay option");
    this.device.queue.writeBuffer(
      this.#ema,
      0,
      this.#join(weights, "setEmaWeights"),
    );
  }

  /**
   * The AdamW state (for checkpoints), in the tfjs `AdamW.state()` shape.
   *
   * @returns Step count and both moments by name.
   */
  async optimizerState(): Promise<EngineAdamWState> {
    this.#check();
    const m = this.#split(await this.#read(this.#m, 0, this.#table.size * 4));
    const v = this.#split(await this.#read(this.#v, 0, this.#table.size * 4));
    const data = (x: Map<string, StoredTensor>) =>
      new Map([...x].map(([k, t]) => [k, t.data]));
    return { step: this.#adamStep, m: data(m), v: data(v) };
  }

  /**
   * Restore an AdamW state (exactly: resuming gives the same updates).
   *
   * @param state From {@linkcode WebGpuTransformer.optimizerState} or the
   *   tfjs `AdamW.state()`.
   */
  loadOptimizerState(state: EngineAdamWState): void {
    this.#check();
    if (!Number.isInteger(state.step) || state.step < 0) {
      fail(`optimizer state step must be an integer ≥ 0, got ${state.step}`);
    }
    const wrap = (x: Map<string, Float32Array>) =>
      new Map(
        [...x].map((
          [k, data],
        ) => [k, { shape: this.#table.byName.get(k)?.shape ?? [], data }]),
      );
    this.device.queue.writeBuffer(this.#m, 0, this.#join(wrap(state.m), "m"));
    this.device.queue.writeBuffer(this.#v, 0, this.#join(wrap(state.v), "v"));
    this.#adamStep = state.step;
  }

  // The count and ids of a suppress list, checked.
  #suppressList(ids: readonly number[] = []): Int32Array {
    const v = this.config.vocabSize;
    const unique = [...new Set(ids)];
    if (unique.length > MAX_SUPPRESS) {
      fail(`suppress holds at most ${MAX_SUPPRESS} ids, got ${unique.length}`);
    }
    for (const id of unique) {
      if (!(Number.isInteger(id) && id >= 0 && id < v)) {
        fail(`suppress ids must be token ids in [0, ${v}), got ${id}`);
      }
    }
    return Int32Array.of(unique.length, ...unique);
  }

  // The draw settings shared by both generators, checked.
  #drawSettings(o: {
    temperature?: number;
    topK?: number;
    topP?: number;
    seed: number;
  }): DrawSettings {
    const temperature = o.temperature ?? 1;
    const topK = o.topK ?? 0;
    const topP = o.topP ?? 1;
    if (!(temperature >= 0 && Number.isFinite(temperature))) {
      fail(`temperature must be ≥ 0 (0: greedy), got ${temperature}`);
    }
    if (!(Number.isInteger(topK) && topK >= 0)) {
      fail(`topK must be an integer ≥ 0 (0: off), got ${topK}`);
    }
    if (!(topP > 0 && topP <= 1)) fail(`topP must be in (0, 1], got ${topP}`);
    if (!(Number.isInteger(o.seed) && o.seed >= 0 && o.seed < 2 ** 32)) {
      fail(`seed must be a u32, got ${o.seed}`);
    }
    return { temperature, topK, topP, seed: o.seed };
  }

  // A recorder of inference dispatches (no optimizer state) on these buffers.
  #callRecorder(act: GPUBuffer, ints: GPUBuffer): Recorder {
    return new Recorder(
      this.#kit,
      {
        params: this.#params,
        grads: null,
        m: null,
        v: null,
        ema: null,
        scalars: null,
      },
      act,
      ints,
    );
  }

  // One categorical dispatch: rows of logits at `logitsOffset` in `logits`.
  #recordDraw(
    rec: Recorder,
    logits: GPUBuffer,
    draw: DrawSettings,
    p: {
      logitsOffset: number;
      rows: number;
      stream: number;
      outputOffset: number;
      gate?: { maskId: number; reveal: number; currentOffset: number };
      confidence?: { buffer: GPUBuffer; offset: number };
    },
  ): void {
    const v = this.config.vocabSize;
    const threads = categoricalThreads(v);
    const words = categoricalWords({
      logitsOffset: p.logitsOffset,
      rowStride: v,
      vocab: v,
      rows: p.rows,
      temperature: draw.temperature,
      topK: draw.topK,
      topP: draw.topP,
      exclude: 0xffffffff,
      seed0: draw.seed,
      seed1: 0x243f6a88,
      stream: p.stream,
      outputOffset: p.outputOffset,
      gateId: p.gate ? p.gate.maskId : 0xffffffff,
      reveal: p.gate ? p.gate.reveal : 1,
      confidenceOffset: p.confidence ? p.confidence.offset : 0xffffffff,
      currentOffset: p.gate ? p.gate.currentOffset : 0,
    });
    rec.kernel(
      `categorical:${threads}`,
      () => categoricalSource({ threads }),
      Array.from(words),
      p.rows,
      1,
      p.confidence ? { 1: logits, 3: p.confidence.buffer } : { 1: logits },
    );
  }

  #maskedPlan(batch: number, length: number): MaskedPlan {
    const key = `${batch}x${length}`;
    let mp = this.#maskedPlans.get(key);
    if (mp) return mp;
    if (this.#maskedPlans.size >= 2) {
      const [oldKey, old] = this.#maskedPlans.entries().next().value!;
      this.#maskedPlans.delete(oldKey);
      for (
        const b of [
          old.plan.act,
          old.plan.intBuf,
          old.plan.uniform,
          old.plan.logits,
          old.template,
          old.args,
          old.confidence,
          old.uniform,
        ]
      ) this.#destroy(b);
    }
    const n = batch * length, v = this.config.vocabSize;
    const base = planInts(n).size;
    const state = maskedInts(base, n, MAX_SUPPRESS);
    const plan = this.#plan(batch, length, "forward", 0xffffffff, state.size);
    const rec = this.#callRecorder(plan.act, plan.intBuf);
    rec.begin("suppress");
    rec.kernel("suppress", () => SUPPRESS, [n, v, 0, state.suppress], 1, 1, {
      1: plan.logits!,
    });
    const suppress = rec.finish().get("suppress")!;
    this.#buffers.add(rec.uniform!);
    const gated = [
      ...plan.lists.get("forward")!,
      ...plan.lists.get("head")!,
      ...suppress,
    ];
    const words = new Uint32Array(gated.length * 3);
    gated.forEach((d, i) => words.set([d.x, d.y, 1], 3 * i));
    const template = this.#buffer(words.byteLength);
    this.device.queue.writeBuffer(template, 0, words);
    const args = this.#buffer(words.byteLength, USAGE_STORAGE | 0x100); // INDIRECT
    mp = {
      plan,
      state,
      gated,
      template,
      args,
      confidence: this.#buffer(n * 4),
      uniform: rec.uniform!,
    };
    this.#maskedPlans.set(key, mp);
    return mp;
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
    this.#check();
    const c = this.config;
    const { batchSize: b, length: l, maskId } = o;
    if (c.kind !== "bidirectional") {
      fail("generateMasked needs a bidirectional model");
    }
    if (!Number.isInteger(b) || b < 1 || b > 65535) {
      fail(`batchSize must be an integer in [1, 65535], got ${b}`);
    }
    const maxL = Math.min(c.contextLength, 3072);
    if (!Number.isInteger(l) || l < 1 || l > maxL) {
      fail(`length must be an integer in [1, ${maxL}], got ${l}`);
    }
    if (!(Number.isInteger(maskId) && maskId >= 0 && maskId < c.vocabSize)) {
      fail(`maskId must be a token id in [0, ${c.vocabSize}), got ${maskId}`);
    }
    if (o.steps.length < 1) fail("steps must hold at least one step");
    o.steps.forEach(({ t, reveal }, k) => {
      if (!(t >= 0 && t <= 1) || !(reveal >= 0 && reveal <= 1)) {
        fail(
          `steps[${k}] needs t and reveal in [0, 1], got t ${t}, reveal ${reveal}`,
        );
      }
    });
    const blockLength = o.blockLength ?? l;
    if (!Number.isInteger(blockLength) || blockLength < 1) {
      fail(`blockLength must be a positive integer, got ${blockLength}`);
    }
    if (o.strategy !== "ancestral" && o.strategy !== "confidence") {
      fail(
        `strategy must be "ancestral" or "confidence", got ${
          JSON.stringify(o.strategy)
        }`,
      );
    }
    if (o.cache && this.timeConditioned) {
      fail(
        "cannot cache logits: the model is time-conditioned (its logits change with t even when no token does)",
      );
    }
    const draw = this.#drawSettings(o);
    if (draw.temperature === 0) {
      fail("temperature must be > 0 for masked sampling");
    }
    if (o.prompt !== undefined) {
      if (o.prompt.length !== b * l) {
        fail(`prompt must hold B·L = ${b * l} ids, got ${o.prompt.length}`);
      }
      this.#checkIds(o.prompt, "prompt");
    }
    const suppress = this.#suppressList([maskId, ...(o.suppress ?? [])]);
    const mp = this.#maskedPlan(b, l);
    const { plan, state } = mp;
    const n = b * l;
    const ints = new Int32Array(state.proposals + n);
    if (o.prompt) ints.set(o.prompt, plan.ints.tokens);
    else ints.fill(maskId, plan.ints.tokens, plan.ints.tokens + n);
    ints[state.count] = -1;
    ints.set(suppress, state.suppress);
    this.device.queue.writeBuffer(plan.intBuf, 0, ints);

    // This call's gates and draws, recorded once (one uniform block each).
    const rec = this.#callRecorder(plan.act, plan.intBuf);
    const blocks: [number, number][] = [];
    for (let s0 = 0; s0 < l; s0 += blockLength) {
      blocks.push([s0, Math.min(l, s0 + blockLength)]);
    }
    const steps = o.steps.length;
    blocks.forEach(([s0, s1], bi) => {
      o.steps.forEach(({ reveal }, k) => {
        const last = k === steps - 1;
        rec.begin(`gate:${bi}:${k}`);
        rec.kernel(
          "gate",
          () => GATE,
          [
            b,
            l,
            plan.ints.tokens,
            maskId,
            s0,
            s1,
            k === 0 ? 1 : 0,
            state.count,
            mp.gated.length * 3,
            o.cache ? 1 : 0,
            state.passes,
          ],
          1,
          1,
          { 4: mp.template, 5: mp.args },
        );
        rec.begin(`draw:${bi}:${k}`);
        // A whole-row block is one dispatch over all B·L positions; a
        // narrower one, one dispatch per row.
        const whole = s0 === 0 && s1 === l;
        for (let r = 0; r < (whole ? 1 : b); r++) {
          const at = r * l + s0;
          const stream = ((bi * steps + k) * b + r) >>> 0;
          const rows = whole ? b * l : s1 - s0;
          if (o.strategy === "ancestral") {
            this.#recordDraw(rec, plan.logits!, draw, {
              logitsOffset: at * c.vocabSize,
              rows,
              stream,
              outputOffset: plan.ints.tokens + at,
              gate: {
                maskId,
                reveal: last ? 1 : reveal,
                currentOffset: plan.ints.tokens + at,
              },
            });
          } else {
            this.#recordDraw(rec, plan.logits!, draw, {
              logitsOffset: at * c.vocabSize,
              rows,
              stream,
              outputOffset: state.proposals + at,
              gate: { maskId, reveal: 1, currentOffset: plan.ints.tokens + at },
              confidence: { buffer: mp.confidence, offset: at },
            });
          }
        }
        if (o.strategy === "confidence") {
          rec.kernel(
            `select:${l}`,
            () => selectSource(l),
            [
              l,
              plan.ints.tokens,
              state.proposals,
              maskId,
              s0,
              s1,
              { f: last ? 1 : reveal },
              last ? 1 : 0,
              0,
            ],
            b,
            1,
            { 3: mp.confidence },
          );
        }
      });
    });
    const lists = rec.finish();
    const uniform = rec.uniform!;
    this.#buffers.add(uniform);
    let times: GPUBuffer | null = null;
    const dt = c.dTime;
    try {
      if (this.timeConditioned) {
        const table = new Float32Array(steps * b * dt);
        o.steps.forEach(({ t }, k) =>
          table.set(timeFeatures(new Float32Array(b).fill(t), dt), k * b * dt)
        );
        times = this.#buffer(table.byteLength);
        this.device.queue.writeBuffer(times, 0, table);
      }
      const encoder = this.device.createCommandEncoder();
      const start0 = performance.now();
      let count = 0;
      blocks.forEach((_, bi) => {
        for (let k = 0; k < steps; k++) {
          if (times) {
            encoder.copyBufferToBuffer(
              times,
              k * b * dt * 4,
              plan.act,
              plan.arena.tfeat * 4,
              b * dt * 4,
            );
          }
          const pass = encoder.beginComputePass();
          count += dispatchAll(pass, lists.get(`gate:${bi}:${k}`)!);
          mp.gated.forEach((d, i) => {
            pass.setPipeline(d.pipeline);
            pass.setBindGroup(0, d.bindGroup);
            pass.dispatchWorkgroupsIndirect(mp.args, 12 * i);
            count++;
          });
          count += dispatchAll(pass, lists.get(`draw:${bi}:${k}`)!);
          pass.end();
        }
      });
      const { ints: out, syncs } = await this.#readInts(
        encoder,
        { start: start0, count },
        plan.intBuf,
        0,
        state.passes + 1,
      );
      return {
        tokens: out.slice(plan.ints.tokens, plan.ints.tokens + n),
        forwardPasses: out[state.passes],
        syncs,
      };
    } finally {
      this.#destroy(uniform);
      this.#destroy(times);
    }
  }

  #decodePlan(batch: number, length: number): DecodePlan {
    const key = `${batch}x${length}`;
    let plan = this.#decodePlans.get(key);
    if (plan) return plan;
    if (this.#decodePlans.size >= 2) {
      const [oldKey, old] = this.#decodePlans.entries().next().value!;
      this.#decodePlans.delete(oldKey);
      for (const b of [old.act, old.intBuf, old.uniform]) this.#destroy(b);
    }
    const c = this.config;
    const { arena, ints } = planDecode(c, batch, length, this.#chunkFloats);
    const act = this.#buffer(arena.size * 4);
    const intBuf = this.#buffer(ints.size * 4);
    const rec = this.#callRecorder(act, intBuf);
    recordDecode(rec, c, this.#table, arena, ints, batch, length);
    const lists = rec.finish();
    this.#buffers.add(rec.uniform!);
    if (c.positions === "rotary") {
      const { cos, sin } = ropeTables(length, c.dModel / c.nHead);
      this.device.queue.writeBuffer(act, arena.cos * 4, cos);
      this.device.queue.writeBuffer(act, arena.sin * 4, sin);
    }
    plan = {
      batch,
      length,
      arena,
      ints,
      act,
      intBuf,
      uniform: rec.uniform!,
      lists,
    };
    this.#decodePlans.set(key, plan);
    return plan;
  }

  /**
   * Generate with the KV cache, entirely on the GPU: each step embeds the
   * token at the current position, runs the blocks with one query over the
   * cache, draws the next token into the token buffer and advances the
   * position there, so the steps chain without the host. All `length − 1`
   * steps go into **one command buffer**; the rows are read back once.
   *
   * @param options Rows, length, start token, temperature (0: greedy).
   * @returns The rows (start token first), passes and syncs.
   */
  async generateCausal(
    options: CausalGenerationOptions,
  ): Promise<Generation> {
    this.#check();
    const c = this.config;
    const { batchSize: b, length: l, start } = options;
    if (c.kind !== "causal" || c.timeConditioning) {
      fail("generateCausal needs a causal model without time conditioning");
    }
    if (!Number.isInteger(b) || b < 1 || b > 65535 / c.nHead) {
      fail(
        `batchSize must be an integer in [1, ${
          Math.floor(65535 / c.nHead)
        }], got ${b}`,
      );
    }
    if (!Number.isInteger(l) || l < 2 || l > Math.min(c.contextLength, 3072)) {
      fail(
        `length must be an integer in [2, ${
          Math.min(c.contextLength, 3072)
        }], got ${l}`,
      );
    }
    if (!(Number.isInteger(start) && start >= 0 && start < c.vocabSize)) {
      fail(`start must be a token id in [0, ${c.vocabSize}), got ${start}`);
    }
    const draw = this.#drawSettings(options);
    const plan = this.#decodePlan(b, l);
    const ints = new Int32Array(plan.ints.size);
    for (let r = 0; r < b; r++) ints[plan.ints.tokens + r * l] = start;
    ints.set(this.#suppressList(options.suppress), plan.ints.suppress);
    this.device.queue.writeBuffer(plan.intBuf, 0, ints);
    // Greedy: the recorded argmax. Otherwise this call's draws, one
    // categorical dispatch per step (its own stream), recorded once.
    let draws: Dispatch[][] | null = null;
    let uniform: GPUBuffer | null = null;
    if (draw.temperature > 0) {
      const rec = this.#callRecorder(plan.act, plan.intBuf);
      for (let i = 1; i < l; i++) {
        rec.begin(`draw:${i}`);
        this.#recordDraw(rec, plan.act, draw, {
          logitsOffset: plan.arena.logits,
          rows: b,
          stream: i,
          outputOffset: plan.ints.next,
        });
      }
      const lists = rec.finish();
      uniform = rec.uniform!;
      this.#buffers.add(uniform);
      draws = Array.from(
        { length: l - 1 },
        (_, k) => lists.get(`draw:${k + 1}`)!,
      );
    }
    try {
      const encoder = this.device.createCommandEncoder();
      const start0 = performance.now();
      const pass = encoder.beginComputePass();
      const stepList = plan.lists.get("step")!;
      const greedy = plan.lists.get("argmax")!;
      const commit = plan.lists.get("commit")!;
      let count = 0;
      for (let i = 1; i < l; i++) {
        count += dispatchAll(pass, stepList);
        count += dispatchAll(pass, draws?.[i - 1] ?? greedy);
        count += dispatchAll(pass, commit);
      }
      pass.end();
      const { ints: tokens, syncs } = await this.#readInts(
        encoder,
        { start: start0, count },
        plan.intBuf,
        plan.ints.tokens,
        b * l,
      );
      return { tokens, forwardPasses: l - 1, syncs };
    } finally {
      this.#destroy(uniform);
    }
  }

  // Plans of other shapes than the training step's (forward to logits, or
  // scoring), the least recently built dropped beyond FORWARD_PLANS.
  #cachedPlan(
    batch: number,
    length: number,
    mode: "forward" | "score",
    exclude = 0xffffffff,
  ): Plan {
    const key = `${mode}:${batch}x${length}:${exclude}`;
    let plan = this.#forwardPlans.get(key);
    if (!plan) {
      if (this.#forwardPlans.size >= FORWARD_PLANS) {
        const [oldKey, old] = this.#forwardPlans.entries().next().value!;
        this.#forwardPlans.delete(oldKey);
        for (const b of [old.act, old.intBuf, old.uniform, old.logits]) {
          this.#destroy(b);
        }
      }
      plan = this.#plan(batch, length, mode, exclude);
      this.#forwardPlans.set(key, plan);
    }
    return plan;
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
  async rowLosses(
    list: readonly WeightedTokens[],
  ): Promise<Float64Array[]> {
    this.#check();
    if (list.length === 0) return [];
    const v = this.config.vocabSize;
    let total = 0;
    list.forEach((terms, k) => {
      const { rows, length } = terms;
      const what = `rowLosses: batch ${k}`;
      if (
        !Number.isInteger(rows) || rows < 1 || !Number.isInteger(length) ||
        length < 1 || length > this.config.contextLength
      ) {
        fail(
          `${what} needs rows ≥ 1 and 1 ≤ length ≤ ${this.config.contextLength}, got ${rows} × ${length}`,
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
      for (let i = 0; i < n; i++) {
        if (terms.targets[i] >= v) {
          fail(
            `${what}: targets[${i}] must be < ${v}, got ${terms.targets[i]}`,
          );
        }
      }
      const ex = terms.excludeToken;
      if (ex !== undefined && !(Number.isInteger(ex) && ex >= 0 && ex < v)) {
        fail(`${what}: excludeToken must be an id in [0, ${v}), got ${ex}`);
      }
      total += n;
    });
    const out = this.#buffer(total * 4, 0x04 | 0x08); // COPY_SRC | COPY_DST
    try {
      let at = 0;
      for (const terms of list) {
        const n = terms.rows * terms.length;
        const plan = this.#cachedPlan(
          terms.rows,
          terms.length,
          "score",
          terms.excludeToken ?? 0xffffffff,
        );
        this.#writeTime(plan, terms.t, "rowLosses: t");
        const ints = new Int32Array(plan.ints.size);
        ints.set(terms.inputs, plan.ints.tokens);
        ints.set(terms.targets, plan.ints.targets);
        this.device.queue.writeBuffer(plan.intBuf, 0, ints);
        this.device.queue.writeBuffer(
          plan.act,
          plan.arena.weights * 4,
          Float32Array.from(terms.weights),
        );
        const encoder = this.device.createCommandEncoder();
        this.#encode(encoder, plan, ["forward", "score"]);
        encoder.copyBufferToBuffer(
          plan.act,
          plan.arena.rowLoss * 4,
          out,
          at * 4,
          n * 4,
        );
        this.#submit(encoder);
        at += n;
      }
      const losses = await this.#read(out, 0, total * 4);
      at = 0;
      return list.map(({ rows, length }) => {
        const sums = new Float64Array(rows);
        for (let r = 0; r < rows; r++) {
          let s = 0;
          for (let j = 0; j < length; j++) s += losses[at + r * length + j];
          sums[r] = s;
        }
        at += rows * length;
        return sums;
      });
    } finally {
      this.#destroy(out);
    }
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
    this.#check();
    if (
      !Number.isInteger(batch) || batch < 1 || !Number.isInteger(length) ||
      length < 1 || length > this.config.contextLength ||
      ids.length !== batch * length
    ) {
      fail(
        `forward needs 1 ≤ B, 1 ≤ T ≤ ${this.config.contextLength} and B·T ids, got B ${batch}, T ${length}, ${ids.length} ids`,
      );
    }
    this.#checkIds(ids, "tokens");
    const plan = this.#cachedPlan(batch, length, "forward");
    this.#writeTime(plan, t, "forward");
    const ints = new Int32Array(plan.ints.size);
    ints.set(ids, plan.ints.tokens);
    this.device.queue.writeBuffer(plan.intBuf, 0, ints);
    const encoder = this.device.createCommandEncoder();
    this.#encode(encoder, plan, ["forward", "head"]);
    return await this.#read(
      plan.logits!,
      0,
      batch * length * this.config.vocabSize * 4,
      encoder,
    );
  }

  /**
   * The model contract's call: `forward(tokens [B, T], { t? }) → logits
   * [B, T, V]` as a tfjs tensor (read back once; asynchronous because
   * WebGPU reads back asynchronously).
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
    return encodeSafetensors(await this.getWeights(), {
      format: "d3pm-transformer",
      config: JSON.stringify(this.config),
    });
  }

  /**
   * Write `config.json` and `model.safetensors` into a directory, as the
   * tfjs `saveModel` does (each file written then renamed).
   *
   * @param dir The directory (created if missing).
   * @returns When both files are in place.
   */
  async save(dir: string): Promise<void> {
    await Deno.mkdir(dir, { recursive: true });
    const weights = await this.serialize();
    await writeAtomic(
      `${dir}/${CONFIG_FILE}`,
      new TextEncoder().encode(JSON.stringify(this.config, null, 2) + "\n"),
    );
    await writeAtomic(`${dir}/${WEIGHTS_FILE}`, weights);
  }

  /**
   * An engine from a model directory written by `saveModel` (tfjs) or
   * {@linkcode WebGpuTransformer.save}.
   *
   * @param dir The directory holding `config.json` and `model.safetensors`.
   * @param options Shape and training options (weights come from the file).
   * @returns The engine.
   */
  static async load(
    dir: string,
    options: Omit<WebGpuTransformerOptions, "weights" | "seed">,
  ): Promise<WebGpuTransformer> {
    const config = validateConfig(
      JSON.parse(await Deno.readTextFile(`${dir}/${CONFIG_FILE}`)),
    );
    const { tensors } = decodeSafetensors(
      await Deno.readFile(`${dir}/${WEIGHTS_FILE}`),
      { expect: parameterShapes(config) },
    );
    return await WebGpuTransformer.create(config, {
      ...options,
      weights: tensors,
    });
  }

  /** GPU buffers currently held (0 after dispose). */
  get liveBuffers(): number {
    return this.#buffers.size;
  }

  /** Destroy every GPU buffer (and the device when the engine made it). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const b of this.#buffers) b.destroy();
    this.#buffers.clear();
    this.#forwardPlans.clear();
    this.#decodePlans.clear();
    this.#maskedPlans.clear();
    if (this.#ownsDevice) this.device.destroy();
  }
}

async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
