// The engine's one internal state handle: the device, the parameter table
// and buffers, the training state (absent on an evaluation-only engine), the
// buffers it holds and their bytes, the counters, and the plans — built
// here by recording `_plan.ts` into the WebGPU executor, and cached by
// shape. Every role file (_training.ts, _weights_io.ts, _scoring.ts,
// _generate_causal.ts, _generate_masked.ts) works through it. Private.

import type { ModelConfig } from "@d3pm/transformer/init";
import {
  type Arena,
  type IntLayout,
  type ParameterTable,
  planArena,
  planInts,
  type PlanMode,
  ropeTables,
  timeFeatures,
} from "./_layout.ts";
import {
  type DecodeKernels,
  type Dispatch,
  type Kit,
  Recorder,
} from "./_recorder.ts";
import {
  recordBackward,
  recordEvaluation,
  recordForward,
  recordHead,
  recordScore,
} from "./_plan.ts";
import { PlanCache } from "./_plan_cache.ts";
import { devicePipeline } from "./_pipelines.ts";
import { checkIds } from "./_engine_checks.ts";
import type { EngineAdamW, EngineCounters } from "./types.ts";

/** STORAGE | COPY_DST | COPY_SRC. */
export const USAGE_STORAGE = 0x80 | 0x08 | 0x04;

/** A bad argument: a one-line RangeError naming the engine. */
export function fail(message: string): never {
  throw new RangeError(`WebGpuTransformer: ${message}`);
}

/** A model plan for one (batch, length): forward, and its head or training step. */
export interface Plan {
  batch: number;
  length: number;
  mode: PlanMode;
  arena: Arena;
  ints: IntLayout;
  act: GPUBuffer;
  intBuf: GPUBuffer;
  uniform: GPUBuffer;
  lists: Map<string, Dispatch[]>;
  /** Forward plans: the logits output [N, V]. */
  logits: GPUBuffer | null;
  /** The buffers released with the plan. */
  owned: GPUBuffer[];
}

/** The buffers of a training engine besides the parameters (the same layout). */
export interface TrainingBuffers {
  grads: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
  ema: GPUBuffer | null;
  /** Loss sums, gradient norm, lr and bias corrections, dropout seed (`S`). */
  scalars: GPUBuffer;
}

/** What a training engine holds besides the parameters. */
export interface TrainingState extends TrainingBuffers {
  /** The fixed-shape training step. */
  plan: Plan;
  /** AdamW updates applied so far. */
  adamStep: number;
}

/** The engine's settings, resolved from its options. */
export interface EngineSettings {
  adam: Required<EngineAdamW>;
  clipNorm: number;
  /** −1: no EMA. */
  emaDecay: number;
  /** The loss's excluded id (0xffffffff: none). */
  exclude: number;
  chunkFloats: number;
  /** The engine's seed (dropout streams), as a u32. */
  seed: number;
  matmulTile: "auto" | 64 | 128;
  /** The kernel generation (`old`: the first matmul and attention). */
  kernels: "new" | "old";
  /** The attention set of the new kernels. */
  attentionKernel: "tiled" | "wide";
  /** The matmul of AR decoding passes. */
  decodeMatmul: "tile" | "skinny";
  /** The attention of AR decoding passes. */
  decodeAttention: "single" | "split";
}

/** The state handle every role of the engine works through. */
export class EngineState {
  readonly config: ModelConfig;
  readonly device: GPUDevice;
  /** Whether dispose destroys the device (the engine requested it). */
  ownsDevice: boolean;
  readonly table: ParameterTable;
  readonly settings: EngineSettings;
  readonly kit: Kit;
  readonly params: GPUBuffer;
  /** Gradients, moments, EMA and the step's plan; null when evaluation-only. */
  training: TrainingState | null = null;
  readonly counters: EngineCounters = {
    dispatches: 0,
    submits: 0,
    syncs: 0,
    steps: 0,
    encodeMs: 0,
    submitMs: 0,
  };
  lastStepDispatches = 0;
  /** Set while `profileStep` encodes: one pass per dispatch, timestamped. */
  profiling = false;
  profile:
    | { querySet: GPUQuerySet; resolve: GPUBuffer; keys: string[] }
    | null = null;
  disposed = false;
  #buffers = new Map<GPUBuffer, number>();
  #bytes = 0;
  #caches = new Map<string, PlanCache<{ owned: GPUBuffer[] }>>();

  constructor(
    config: ModelConfig,
    device: GPUDevice,
    ownsDevice: boolean,
    table: ParameterTable,
    settings: EngineSettings,
    kernelLayout: GPUBindGroupLayout,
  ) {
    this.config = config;
    this.device = device;
    this.ownsDevice = ownsDevice;
    this.table = table;
    this.settings = settings;
    // The engine's own index over the device's pipelines (_pipelines.ts:
    // compiled once per device, by layout and WGSL text).
    const pipelines = new Map<string, GPUComputePipeline>();
    this.kit = {
      device,
      tile: settings.matmulTile,
      kernels: settings.kernels,
      attentionKernel: settings.attentionKernel,
      layout: kernelLayout,
      dummy: this.buffer(16),
      dummies: Array.from({ length: 8 }, () => this.buffer(16)),
      pipeline: (key, source, layout) => {
        let p = pipelines.get(key);
        if (!p) {
          p = devicePipeline(device, source(), layout ?? kernelLayout, {
            label: key,
          });
          pipelines.set(key, p);
        }
        return p;
      },
    };
    this.params = this.buffer(table.size * 4);
  }

  /** The training state, or a one-line error naming `what` on an evaluation-only engine. */
  trainingState(what: string): TrainingState {
    this.check();
    if (!this.training) {
      throw new Error(
        `WebGpuTransformer: ${what} needs a training engine; this one was built with evaluationOnly (no gradients or optimiser state)`,
      );
    }
    return this.training;
  }

  /** A GPU buffer the engine holds (destroyed on dispose). */
  buffer(bytes: number, usage = USAGE_STORAGE): GPUBuffer {
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
    this.adopt(b);
    return b;
  }

  /** Hold a buffer made elsewhere (a recorder's uniform blocks). */
  adopt(b: GPUBuffer): void {
    this.#buffers.set(b, b.size);
    this.#bytes += b.size;
  }

  /** Destroy held buffers (nulls skipped). */
  destroy(...list: (GPUBuffer | null)[]): void {
    for (const b of list) {
      if (!b) continue;
      b.destroy();
      this.#bytes -= this.#buffers.get(b) ?? 0;
      this.#buffers.delete(b);
    }
  }

  /** GPU buffers held now. */
  get liveBuffers(): number {
    return this.#buffers.size;
  }

  /** Bytes of the GPU buffers held now. */
  get liveBytes(): number {
    return this.#bytes;
  }

  /**
   * The cache of one kind of plan (`kind` names it), made on first use; a
   * dropped plan's `owned` buffers are destroyed.
   */
  plans<P extends { owned: GPUBuffer[] }>(
    kind: string,
    capacity: number,
  ): PlanCache<P> {
    let cache = this.#caches.get(kind);
    if (!cache) {
      cache = new PlanCache(capacity, (p) => this.destroy(...p.owned));
      this.#caches.set(kind, cache);
    }
    return cache as unknown as PlanCache<P>;
  }

  check(): void {
    if (this.disposed) {
      throw new Error("WebGpuTransformer: the engine has been disposed");
    }
  }

  /** Every id in [0, V), or a one-line error naming `what[i]`. */
  checkIds(ids: Int32Array, what: string): void {
    checkIds(ids, this.config.vocabSize, what, fail);
  }

  /**
   * Build an inference plan: its arena, ints and uniform blocks, and the
   * lists `forward` and `score` (weighted cross-entropy per position, with
   * `exclude` left out of the softmax) or `head` (logits into their own
   * buffer); `extraInts` more ints after the plan's own.
   */
  buildPlan(
    batch: number,
    length: number,
    mode: "forward" | "score",
    exclude = 0xffffffff,
    extraInts = 0,
  ): Plan {
    return this.#plan(batch, length, mode, exclude, extraInts, null);
  }

  /**
   * Build the training step's plan on these buffers: the lists `forward`,
   * `backward`, `evaluation` and `optimizer`.
   */
  buildTrainingPlan(batch: number, length: number, t: TrainingBuffers): Plan {
    return this.#plan(batch, length, "training", this.settings.exclude, 0, t);
  }

  #plan(
    batch: number,
    length: number,
    mode: PlanMode,
    exclude: number,
    extraInts: number,
    t: TrainingBuffers | null,
  ): Plan {
    const c = this.config, table = this.table;
    const training = t !== null;
    const arena = planArena(c, batch, length, mode, this.settings.chunkFloats);
    const n = batch * length;
    const ints = planInts(n);
    const act = this.buffer(arena.size * 4);
    const intBuf = this.buffer((ints.size + extraInts) * 4);
    const logits = mode === "forward" ? this.buffer(n * c.vocabSize * 4) : null;
    const rec = new Recorder(
      this.kit,
      {
        act,
        ints: intBuf,
        params: this.params,
        grads: t?.grads,
        m: t?.m,
        v: t?.v,
        ema: t?.ema,
        scalars: t?.scalars,
        logits,
      },
      training && c.dropout > 0,
    );
    rec.begin("forward");
    recordForward(rec, c, table, arena, ints, batch, length);
    if (t) {
      const s = this.settings;
      rec.begin("backward");
      recordBackward(rec, c, table, arena, ints, batch, length, s.exclude);
      rec.begin("evaluation");
      recordEvaluation(rec, c, table, arena, ints, n, s.exclude);
      rec.begin("optimizer");
      rec.gradNorm(table.size, arena.normPartial);
      rec.adamw(table.size, table.decayEnd, s.adam);
      if (t.ema) rec.ema(table.size);
    } else if (mode === "score") {
      rec.begin("score");
      recordScore(rec, c, table, arena, ints, n, exclude);
    } else {
      rec.begin("head");
      recordHead(rec, c, table, arena, n);
    }
    const { lists, uniform } = this.finish(rec);
    this.writeRope(act, arena.ropeCos, arena.ropeSin, length);
    return {
      batch,
      length,
      mode,
      arena,
      ints,
      act,
      intBuf,
      uniform,
      lists,
      logits,
      owned: [act, intBuf, uniform, ...(logits ? [logits] : [])],
    };
  }

  /** Finish a recorder: its lists, and its uniform blocks, now held. */
  finish(
    rec: Recorder,
  ): { lists: Map<string, Dispatch[]>; uniform: GPUBuffer } {
    const lists = rec.finish();
    this.adopt(rec.uniform!);
    return { lists, uniform: rec.uniform! };
  }

  /** RoPE tables for `length` positions into an arena (rotary models only). */
  writeRope(
    act: GPUBuffer,
    cosOff: number,
    sinOff: number,
    length: number,
  ): void {
    const c = this.config;
    if (c.positions !== "rotary") return;
    const { cos, sin } = ropeTables(length, c.dModel / c.nHead);
    this.device.queue.writeBuffer(act, cosOff * 4, cos);
    this.device.queue.writeBuffer(act, sinOff * 4, sin);
  }

  /**
   * A recorder of inference dispatches (no optimiser state) on these
   * buffers; `decode`: the kernels of an AR decoding plan (its matmul for
   * skinny products, its attention).
   */
  recorder(
    act: GPUBuffer,
    ints: GPUBuffer,
    logits?: GPUBuffer,
    decode: DecodeKernels = {},
  ): Recorder {
    return new Recorder(
      this.kit,
      {
        act,
        ints,
        params: this.params,
        logits: logits ?? null,
      },
      false,
      decode,
    );
  }

  /** Record a plan's named lists into one compute pass; returns the dispatches. */
  encode(encoder: GPUCommandEncoder, plan: Plan, names: string[]): number {
    if (this.profiling) return this.#encodeProfiled(encoder, plan, names);
    const start = performance.now();
    const pass = encoder.beginComputePass();
    let count = 0;
    for (const name of names) count += dispatchAll(pass, plan.lists.get(name)!);
    pass.end();
    this.counters.encodeMs += performance.now() - start;
    this.counters.dispatches += count;
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
    const resolve = this.buffer(list.length * 16, 0x200 | 0x04); // QUERY_RESOLVE | COPY_SRC
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
    this.profile = { querySet, resolve, keys: list.map((d) => d.key) };
    this.counters.dispatches += list.length;
    return list.length;
  }

  submit(encoder: GPUCommandEncoder): void {
    const start = performance.now();
    this.device.queue.submit([encoder.finish()]);
    this.counters.submitMs += performance.now() - start;
    this.counters.submits++;
  }

  /**
   * Count an encoded generation's dispatches and host time, submit it and
   * read `n` ints from `offset` of `buf` (one sync).
   */
  async readInts(
    encoder: GPUCommandEncoder,
    encoded: { start: number; count: number },
    buf: GPUBuffer,
    offset: number,
    n: number,
  ): Promise<{ ints: Int32Array; syncs: number }> {
    this.counters.encodeMs += performance.now() - encoded.start;
    this.counters.dispatches += encoded.count;
    const before = this.counters.syncs;
    const bits = await this.read(buf, offset * 4, n * 4, encoder);
    return {
      ints: new Int32Array(bits.buffer, bits.byteOffset, n),
      syncs: this.counters.syncs - before,
    };
  }

  /** Copy `bytes` of `src` out (after `encoder`'s work, if given): one sync. */
  async read(
    src: GPUBuffer,
    offsetBytes: number,
    bytes: number,
    encoder?: GPUCommandEncoder,
  ): Promise<Float32Array> {
    const staging = this.buffer(bytes, 0x01 | 0x08); // MAP_READ | COPY_DST
    try {
      const enc = encoder ?? this.device.createCommandEncoder();
      enc.copyBufferToBuffer(src, offsetBytes, staging, 0, bytes);
      this.submit(enc);
      this.counters.syncs++;
      await staging.mapAsync(1); // GPUMapMode.READ
      const out = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      return out;
    } finally {
      this.destroy(staging);
    }
  }

  /** Sinusoidal features of t into a plan's arena (time-conditioned models). */
  writeTime(plan: Plan, t: ArrayLike<number> | undefined, what: string): void {
    if (!this.config.timeConditioning) return;
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

  /** Destroy every GPU buffer (and the device when the engine made it). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.#buffers.keys()) b.destroy();
    this.#buffers.clear();
    this.#bytes = 0;
    for (const cache of this.#caches.values()) cache.clear();
    if (this.ownsDevice) this.device.destroy();
  }
}

/**
 * Record prepared dispatches into a compute pass with their workgroup
 * counts read from `args` (the i-th at byte `offsetOf(i)`: three u32s a GPU
 * kernel wrote); returns how many.
 */
export function dispatchAllIndirect(
  pass: GPUComputePassEncoder,
  list: readonly Dispatch[],
  args: GPUBuffer,
  offsetOf: (i: number) => number,
): number {
  list.forEach((d, i) => {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroupsIndirect(args, offsetOf(i));
  });
  return list.length;
}

/** Record prepared dispatches into a compute pass; returns how many. */
export function dispatchAll(
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
