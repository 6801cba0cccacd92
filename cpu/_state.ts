// The CPU engine's one internal state handle: the kernels and the views of
// their memory — parameters, the training state (gradients, AdamW moments,
// the EMA, the step's plan; absent on an evaluation-only engine), the
// inference region every scoring, forward and decode plan shares — the step
// scalars, and the plans, recorded here from `@d3pm/webgpu/plan` into the
// CPU executor and cached by shape. Every role file (_setup.ts,
// _training.ts, _weights_io.ts, _scoring.ts; _generate.ts through the
// context _scoring.ts makes of it) works through it. Private.

import type { StoredTensor } from "@d3pm/core";
import type { ModelConfig } from "@d3pm/transformer/init";
import {
  type Arena,
  checkIds,
  type IntLayout,
  joinWeights,
  type ParameterTable,
  planArena,
  PlanCache,
  planInts,
  recordBackward,
  recordEvaluation,
  recordForward,
  recordHead,
  recordScore,
  ropeTables,
  timeFeatures,
} from "@d3pm/webgpu/plan";
import type { CpuKernels } from "./kernels.ts";
import { CpuExecutor, type StepScalars, stepScalars } from "./_executor.ts";
import type { DecodePlan } from "./_generate.ts";
import type { CpuAdamW } from "./engine.ts";

/** A bad argument: a one-line RangeError naming the engine. */
export function fail(message: string): never {
  throw new RangeError(`CpuTransformer: ${message}`);
}

// Plans kept by shape, as the WebGPU engine keeps them: forward and scoring
// plans together, and decode plans.
const INFERENCE_PLANS = 4;
const DECODE_PLANS = 2;
const forget = () => {};

/** A recorded plan of one (batch, length) and the views it runs on. */
export interface Plan {
  batch: number;
  length: number;
  arena: Arena;
  ints: IntLayout;
  exec: CpuExecutor;
  act: Float32Array;
  intView: Int32Array;
}

/** What a training engine holds besides the parameters. */
export interface TrainingState {
  /** The fixed-shape training step: `forward`, `backward`, `evaluation`, `optimizer`. */
  plan: Plan;
  grads: Float32Array;
  m: Float32Array;
  v: Float32Array;
  ema: Float32Array | null;
}

/** The engine's settings, resolved from its options. */
export interface EngineSettings {
  /** The engine's seed (dropout streams), as a u32. */
  seed: number;
  adam: Required<CpuAdamW>;
  /** The training loss's excluded id (0xffffffff: none). */
  exclude: number;
  /** Floats of the head's logits chunk. */
  chunkFloats: number;
  /** Rows per scoring pass. */
  scoreRows: number;
  clipNorm: number;
  /** Undefined: no EMA. */
  emaDecay: number | undefined;
  evaluationOnly: boolean;
}

/** Floats of each region of the inference memory. */
export interface InferenceSizes {
  evalAct: number;
  evalInts: number;
  probs: number;
  logits: number;
}

/** The state handle every role of the engine works through. */
export class EngineState {
  readonly config: ModelConfig;
  readonly kernels: CpuKernels;
  readonly table: ParameterTable;
  readonly settings: EngineSettings;
  readonly params: Float32Array;
  /** The scalars the plans read and write (lr, loss sums, norm, dropout). */
  readonly scalars: StepScalars;
  /** Gradients, moments, EMA and the step's plan; null when evaluation-only or disposed. */
  training: TrainingState | null = null;
  /** AdamW updates applied so far. */
  adamStep = 0;
  // The inference region every scoring and forward plan shares.
  readonly evalAct: Float32Array;
  readonly evalInts: Int32Array;
  readonly evalProbs: Float32Array;
  readonly evalLogits: Float32Array;
  // Plans by shape, bounded as the WebGPU engine's. A plan owns no memory
  // (its views are of the shared inference region), so a dropped one is
  // only forgotten.
  readonly plans: PlanCache<Plan> = new PlanCache<Plan>(
    INFERENCE_PLANS,
    forget,
  );
  readonly decodePlans: PlanCache<DecodePlan> = new PlanCache<DecodePlan>(
    DECODE_PLANS,
    forget,
  );
  /** headRows's gathered rows, grown to the most a call has asked for. */
  gathered: Float32Array = new Float32Array(0);
  disposed = false;

  /**
   * Size the views once, in this order: parameters (set to `weights`), the
   * inference region, then for a training engine gradients, moments, the
   * EMA, and the training step's plan on its own arena.
   */
  constructor(
    c: ModelConfig,
    k: CpuKernels,
    table: ParameterTable,
    settings: EngineSettings,
    shape: { batchSize: number; length: number },
    weights: ReadonlyMap<string, StoredTensor>,
    sizes: InferenceSizes,
  ) {
    this.config = c;
    this.kernels = k;
    this.table = table;
    this.settings = settings;
    this.scalars = stepScalars(settings.clipNorm, settings.emaDecay ?? -1);
    const P = table.size;
    this.params = k.floats(P);
    this.params.set(joinWeights(table, weights, { what: "weights", fail }));
    this.evalAct = k.floats(sizes.evalAct);
    this.evalInts = k.ints(sizes.evalInts);
    this.evalProbs = k.floats(sizes.probs);
    this.evalLogits = k.floats(sizes.logits);
    if (settings.evaluationOnly) return;
    const grads = k.floats(P), m = k.floats(P), v = k.floats(P);
    let ema: Float32Array | null = null;
    if (settings.emaDecay !== undefined) {
      ema = k.floats(P);
      ema.set(this.params);
    }
    const B = shape.batchSize, T = shape.length;
    const arena = planArena(c, B, T, "training", settings.chunkFloats);
    const ints = planInts(B * T);
    const att = B * c.nHead * T * T;
    const act = k.floats(arena.size), intView = k.ints(ints.size);
    const exec = new CpuExecutor(
      k,
      {
        act,
        params: this.params,
        grads,
        ints: intView,
        m,
        v,
        ema,
        probs: k.floats(c.nLayer * att),
        scratch: k.floats(att),
        dropped: c.dropout > 0 ? k.floats(c.nLayer * att) : undefined,
      },
      this.scalars,
      c.dropout > 0,
    );
    const n = B * T, exclude = settings.exclude;
    exec.begin("forward");
    recordForward(exec, c, table, arena, ints, B, T);
    exec.begin("backward");
    recordBackward(exec, c, table, arena, ints, B, T, exclude);
    exec.begin("evaluation");
    recordEvaluation(exec, c, table, arena, ints, n, exclude);
    exec.begin("optimizer");
    exec.gradNorm(P, arena.normPartial);
    exec.adamw(P, table.decayEnd, settings.adam);
    if (ema) exec.ema(P);
    const plan = { batch: B, length: T, arena, ints, exec, act, intView };
    this.training = { plan, grads, m, v, ema };
    this.writeRope(plan);
  }

  /** A one-line error once the engine is disposed. */
  check(): void {
    if (this.disposed) fail("the engine was disposed");
  }

  /** The training state, or a one-line error naming `what` on an evaluation-only engine. */
  trainingState(what: string): TrainingState {
    this.check();
    if (!this.training) fail(`${what} needs a training engine`);
    return this.training;
  }

  /** RoPE tables for the plan's length into its arena (rotary models only). */
  writeRope(p: Plan): void {
    if (this.config.positions !== "rotary") return;
    const { cos, sin } = ropeTables(
      p.length,
      this.config.dModel / this.config.nHead,
    );
    p.act.set(cos, p.arena.ropeCos);
    p.act.set(sin, p.arena.ropeSin);
  }

  /** Sinusoidal features of t into a plan's arena (time-conditioned models). */
  writeTime(p: Plan, t: ArrayLike<number> | undefined, what: string): void {
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

  /** Every id an integer in [0, V), or a one-line error naming `what[i]`. */
  checkIds(ids: ArrayLike<number>, what: string): void {
    checkIds(ids, this.config.vocabSize, what, fail);
  }

  /** An inference plan of a shape on the shared inference region, cached. */
  plan(
    batch: number,
    length: number,
    mode: "forward" | "score",
    exclude: number,
  ): Plan {
    const key = `${mode}:${batch}x${length}:${exclude}`;
    return this.plans.get(
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
    const arena = planArena(c, batch, length, mode, this.settings.chunkFloats);
    const ints = planInts(n);
    const exec = new CpuExecutor(this.kernels, {
      act: this.evalAct,
      params: this.params,
      ints: this.evalInts,
      logits: this.evalLogits,
      probs: this.evalProbs,
    }, this.scalars);
    exec.begin("forward");
    recordForward(exec, c, this.table, arena, ints, batch, length);
    if (mode === "score") {
      exec.begin("score");
      recordScore(exec, c, this.table, arena, ints, n, exclude);
    } else {
      exec.begin("head");
      recordHead(exec, c, this.table, arena, n);
    }
    return {
      batch,
      length,
      arena,
      ints,
      exec,
      act: this.evalAct,
      intView: this.evalInts,
    };
  }

  /** Forget the plans and the training state, and release the kernels. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.plans.clear();
    this.decodePlans.clear();
    this.training = null;
    this.kernels.dispose();
  }
}
