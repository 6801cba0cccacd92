/**
 * The training loop: learning rate for this step → forward/backward (with
 * gradient accumulation) → NaN check → clip → AdamW step → EMA → log →
 * checkpoint. An exported function with hooks, so that it can be tested and
 * reused; it knows nothing of command lines.
 *
 * @module
 */
import {
  pathExists,
  type Prng,
  prng as seeded,
  restorePrng,
  type Scalar,
  type StoredTensor,
  type Tensor,
  type Variable,
  type WeightedTokens,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { type Batch, BatchIterator, type Blocks } from "@d3pm/data";
import { AdamW, type AdamWOptions } from "./adamw.ts";
import { clipByGlobalNorm } from "./clip.ts";
import { Ema } from "./ema.ts";
import {
  type Checkpoint,
  checkpointBytes,
  type CheckpointState,
  type EngineSpan,
  loadCheckpoint,
  saveCheckpoint,
} from "./checkpoint.ts";
import { configDifferences } from "./config_diff.ts";
import type { MetricsLog } from "./metrics.ts";
import { Progress } from "./progress.ts";

/**
 * Training stopped for a reason the user must see (e.g. a NaN loss); one line.
 *
 * @example A NaN loss stops training at once
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { train, TrainError } from "@d3pm/train";
 * import { assertRejects } from "@std/assert";
 * await tf.setBackend("cpu");
 * const w = tf.variable(tf.scalar(0));
 * await assertRejects(
 *   () => train({
 *     variables: new Map([["w", w]]),
 *     loss: () => tf.tidy(() => w.mul(NaN)) as tf.Scalar,
 *     blocks: { data: Uint32Array.of(1, 2), count: 1, length: 2 },
 *     batchSize: 1, steps: 5, lr: () => 0.1, progress: false,
 *   }),
 *   TrainError,
 *   "Training stopped at step 1: the loss is NaN",
 * );
 * w.dispose();
 * ```
 */
export class TrainError extends Error {
  /**
   * A training error.
   *
   * @param message What happened and what was kept.
   */
  constructor(message: string) {
    super(message);
    this.name = "TrainError";
  }
}

/** What one step did, passed to `onStep` and written to the metrics log. */
export interface StepInfo {
  /** Steps completed, this one included. */
  step: number;
  /**
   * Mean training loss of the steps since the previous record: on
   * {@linkcode train}, which reads every step's loss, the step's own (the
   * mean over its micro-batches); on {@linkcode trainEngine}, the mean of
   * the steps since its last reading (`logEvery` of them, fewer where a
   * checkpoint cut the interval).
   */
  loss: number;
  /** Learning rate used. */
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Tokens seen so far (over all steps, resumed ones included). */
  tokens: number;
  /** Tokens per second over this run so far. */
  tokensPerSecond: number;
  /** Seconds since this run started. */
  elapsed: number;
}

/** Options of {@linkcode train}. */
export interface TrainOptions {
  /** The model's variables, by name. */
  variables: ReadonlyMap<string, Variable>;
  /** The objective on one micro-batch; may draw from `prng`. */
  loss: (batch: Batch, prng: Prng) => Scalar;
  /** Training blocks. */
  blocks: Blocks;
  /** Blocks per micro-batch. */
  batchSize: number;
  /** Optimiser steps in all (a resumed run stops at the same total). */
  steps: number;
  /** Learning rate for a 0-based step. */
  lr: (step: number) => number;
  /** Seed of the batch order and of `prng` (default 0). */
  seed?: number;
  /** AdamW hyper-parameters. */
  adamw?: AdamWOptions;
  /** Clip the global gradient norm to this (default 1; `Infinity` disables). */
  clipNorm?: number;
  /** Micro-batches per step (default 1). */
  accumulate?: number;
  /** EMA decay of the weights; none when absent. */
  emaDecay?: number;
  /** Checkpoint file, written every `checkpointEvery` steps and at the end. */
  checkpoint?: string;
  /** Steps between checkpoints (default: only at the end). */
  checkpointEvery?: number;
  /** Continue from `checkpoint` if it exists (default false: start fresh). */
  resume?: boolean;
  /**
   * The resolved run configuration, stored in checkpoints; a resume from a
   * checkpoint whose stored configuration differs is refused.
   */
  config?: unknown;
  /**
   * Keys added to `config` after checkpoints were written, each with the
   * value that reproduces what those checkpoints did: a stored
   * configuration without the key reads as this value on resume.
   */
  configDefaults?: Readonly<Record<string, unknown>>;
  /**
   * Keys of `config` a resume does not compare: the caller has verified
   * what they name another way (a data path whose files hash to the
   * checkpoint's own record of them).
   */
  configIgnore?: readonly string[];
  /**
   * Steps between loss readings (default 1): a reading is logged at every
   * multiple of `logEvery`, every checkpoint and the last step.
   * {@linkcode trainEngine} reads then only (each one GPU→CPU sync) and
   * logs the mean since the last reading; {@linkcode train} reads and logs
   * every step anyway. On both, {@linkcode TrainResult.lastLoss} is the
   * mean over the last interval, so the engines report the same figure.
   */
  logEvery?: number;
  /** Append one record per logged step here (every step of `train`). */
  metrics?: MetricsLog;
  /**
   * What runs the steps (an engine, its backend, threads and kernels: the
   * things that change the rounding). Kept in checkpoints, so a run resumed
   * on another engine says which steps each one ran
   * ({@linkcode TrainResult.engines}); it does not stop a resume.
   */
  engineName?: string;
  /** Label of the progress line; `false` for none (default `train`). */
  progress?: string | false;
  /**
   * Called after every logged step (every step of `train`) with a reader of
   * the weights an evaluation should use: the EMA when there is one, else
   * the model's.
   */
  onStep?: (
    info: StepInfo,
    weights: () => Promise<ReadonlyMap<string, Tensor | StoredTensor>>,
  ) => void | Promise<void>;
}

/** What {@linkcode train} returns. */
export interface TrainResult {
  /** Seconds spent training, over every session of a resumed run. */
  seconds: number;
  /** Steps completed in all. */
  steps: number;
  /** The step at which this call started (0, or the resumed step). */
  startStep: number;
  /**
   * What ran the steps, in order, when the loop was given an `engineName`: one
   * span unless a resume ran on another engine (a span from a checkpoint
   * of an older version is missing: the first `fromStep` is then above 0).
   */
  engines?: EngineSpan[];
  /**
   * Mean training loss over the last logged interval: the steps after the
   * last reading before the end (the last `logEvery` steps, fewer where a
   * checkpoint or the end cut the interval); the last step's loss when
   * `logEvery` is 1.
   */
  lastLoss: number;
  /**
   * The steps `lastLoss` averages, first and last: `--log-every` and the
   * checkpoints decide them, and a resume keeps the figure of its
   * checkpoint, so a report labels it from this, not from the run's options
   * (absent when no interval was logged, and for a resume from an older
   * version's checkpoint).
   */
  lastLossSteps?: [number, number];
  /** The EMA of the weights, when enabled (dispose it when done). */
  ema?: Ema;
  /** The optimiser (dispose it when done). */
  optimizer: AdamW;
}

/** Longest stretch of training without a turn of the event loop. */
const YIELD_MS = 50;

/**
 * Train variables on batches of blocks. Deterministic: the same options give
 * the same weights, and a run resumed from a checkpoint ends with the same
 * weights as an uninterrupted one (on the same backend).
 *
 * @param options Variables, loss, data, schedule and what to record.
 * @returns Steps done, last loss, the optimiser and the EMA.
 * @throws {TrainError} When a loss or gradient is NaN or infinite; the last
 * checkpoint written before it stays as it was.
 *
 * @example A resumed run ends where an uninterrupted one does
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { train, type TrainOptions } from "@d3pm/train";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * // Fit w so that w · token ≈ 1, on shuffled batches of 2 blocks.
 * const run = async (steps: number, checkpoint?: string) => {
 *   const w = tf.variable(tf.scalar(0));
 *   const options: TrainOptions = {
 *     variables: new Map([["w", w]]),
 *     loss: (batch) =>
 *       tf.tidy(() => w.mul(tf.tensor(batch.tokens, undefined, "float32")).sub(1).square().mean()) as tf.Scalar,
 *     blocks: { data: Uint32Array.of(1, 2, 3, 4, 5, 6, 7, 8), count: 4, length: 2 },
 *     batchSize: 2, steps, lr: () => 0.01, seed: 3, progress: false,
 *     checkpoint, resume: true,
 *   };
 *   const { startStep, optimizer } = await train(options);
 *   optimizer.dispose();
 *   const w1 = (await w.data())[0];
 *   w.dispose();
 *   return { startStep, w1 };
 * };
 * const straight = await run(10);
 * const tmp = await Deno.makeTempDir();
 * const path = `${tmp}/checkpoint.safetensors`;
 * await run(4, path); // interrupted after 4 steps...
 * const resumed = await run(10, path); // ...and resumed to 10
 * assertEquals(resumed.startStep, 4);
 * assertEquals(resumed.w1, straight.w1);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const { variables, blocks, batchSize } = options;
  const accumulate = options.accumulate ?? 1;
  const clipNorm = options.clipNorm ?? 1;
  if (!Number.isInteger(accumulate) || accumulate < 1) {
    throw new RangeError(
      `train: accumulate must be a positive integer, got ${accumulate}`,
    );
  }
  const optimizer = new AdamW(variables, options.adamw);
  const ema = options.emaDecay === undefined
    ? undefined
    : new Ema(variables, { decay: options.emaDecay });
  const names = [...variables.keys()];
  const varList = names.map((n) => variables.get(n)!);
  const stepper: Stepper = {
    tokensPerStep: batchSize * blocks.length * accumulate,
    async step(next, rng, lr) {
      let lossSum = 0;
      let summed: Map<string, Tensor> | undefined;
      for (let micro = 0; micro < accumulate; micro++) {
        const batch = next();
        const { value, grads } = tf.variableGrads(
          () => options.loss(batch, rng),
          varList,
        );
        lossSum += (await value.data())[0];
        value.dispose();
        const named = new Map(names.map((n, i) => [n, grads[varList[i].name]]));
        if (!summed) summed = named;
        else {
          for (const [n, g] of named) {
            const s = summed.get(n)!;
            summed.set(n, tf.tidy(() => s.add(g)));
            tf.dispose([s, g]);
          }
        }
      }
      const loss = lossSum / accumulate;
      if (accumulate > 1) {
        for (const [n, g] of summed!) {
          summed!.set(n, tf.tidy(() => g.div(accumulate)));
          g.dispose();
        }
      }
      const { grads, norm } = await clipByGlobalNorm(
        summed!,
        Number.isFinite(clipNorm) ? clipNorm : Number.MAX_VALUE,
      );
      tf.dispose([...summed!.values()]);
      // A non-finite step is not applied: the loop stops on it.
      if (Number.isFinite(loss) && Number.isFinite(norm)) {
        optimizer.step(grads, lr);
        ema?.update();
      }
      tf.dispose([...grads.values()]);
      return { loss, gradNorm: norm, steps: 1 };
    },
    async state() {
      const st = await optimizer.state();
      return {
        model: variables,
        ema: ema?.values,
        optimizerStep: st.step,
        m: st.m,
        v: st.v,
      };
    },
    load(ck, where) {
      assign(variables, ck.model, where);
      if (ema) {
        if (ck.ema.size === 0) {
          throw new TrainError(
            `${where} has no EMA weights but emaDecay is set`,
          );
        }
        ema.load(new Map([...ck.ema].map(([k, t]) => [k, t.data])));
      }
      optimizer.load({
        step: ck.state.optimizerStep,
        m: new Map([...ck.adamM].map(([k, t]) => [k, t.data])),
        v: new Map([...ck.adamV].map(([k, t]) => [k, t.data])),
      });
    },
    checkpointBytes: () =>
      Promise.resolve(checkpointBytes(variables, ema !== undefined)),
    evalWeights: () => Promise.resolve(ema?.values ?? variables),
  };
  const done = await drive(stepper, options);
  return { ...done, ema, optimizer };
}

/**
 * A training engine that keeps its own weights, gradients and optimiser
 * state (e.g. on a GPU) and trains on weighted token cross-entropy: the
 * loop hands it one batch of terms per step and reads the loss only when it
 * logs.
 */
export interface StepEngine {
  /**
   * Queue one optimiser step: forward, backward, clipping, AdamW, EMA.
   *
   * @param terms Inputs, targets and weights of the batch (its `t` for a time-conditioned model).
   * @param lr The learning rate.
   */
  step(terms: WeightedTokens, lr: number): void;
  /** Mean loss of the steps since the last reading, and the last gradient norm (one sync). */
  readLoss(): Promise<{ loss: number; steps: number; gradNorm: number }>;
  /** The parameters. */
  getWeights(): Promise<Map<string, StoredTensor>>;
  /** Replace the parameters. */
  setWeights(weights: ReadonlyMap<string, StoredTensor>): void;
  /** The EMA of the parameters (when the engine keeps one). */
  emaWeights?(): Promise<Map<string, StoredTensor>>;
  /** Replace the EMA. */
  setEmaWeights?(weights: ReadonlyMap<string, StoredTensor>): void;
  /** AdamW's step count and moments by name. */
  optimizerState(): Promise<
    { step: number; m: Map<string, Float32Array>; v: Map<string, Float32Array> }
  >;
  /** Restore them. */
  loadOptimizerState(
    state: {
      step: number;
      m: ReadonlyMap<string, Float32Array>;
      v: ReadonlyMap<string, Float32Array>;
    },
  ): void;
}

/** Options of {@linkcode trainEngine}: those of {@linkcode train} but for the tfjs-specific ones. */
export interface EngineTrainOptions extends
  Omit<
    TrainOptions,
    "variables" | "loss" | "adamw" | "clipNorm" | "accumulate" | "emaDecay"
  > {
  /** The engine (built with the AdamW, clipping and EMA settings). */
  engine: StepEngine;
  /** Whether the engine keeps an EMA (checkpoints then hold it). */
  ema: boolean;
  /** The objective of one batch as weighted terms; may draw from `prng`. */
  terms: (batch: Batch, prng: Prng) => WeightedTokens;
}

/**
 * Train on a {@linkcode StepEngine}: the same batches, randomness,
 * checkpoints (same format), resume, metrics, progress and NaN stop as
 * {@linkcode train}, with the loss read once per logged step.
 *
 * @param options The engine, the objective as terms, data, schedule and what to record.
 * @returns Steps done, last loss, seconds.
 * @throws {TrainError} When a logged loss or gradient norm is NaN or infinite.
 *
 * @example A toy engine: one weight per token, fitted to the targets
 * ```ts
 * import { type StepEngine, trainEngine } from "@d3pm/train";
 * import { assert } from "@std/assert";
 * // Loss Σ w_i (x_target − 1)²: an engine small enough to read.
 * let x = 0, losses: number[] = [];
 * const engine: StepEngine = {
 *   step(terms, lr) {
 *     const g = terms.weights.reduce((s, w) => s + 2 * w * (x - 1), 0);
 *     losses.push(terms.weights.reduce((s, w) => s + w * (x - 1) ** 2, 0));
 *     x -= lr * g;
 *   },
 *   readLoss: () => {
 *     const loss = losses.reduce((a, b) => a + b, 0) / losses.length;
 *     const steps = losses.length;
 *     losses = [];
 *     return Promise.resolve({ loss, steps, gradNorm: 0 });
 *   },
 *   getWeights: () => Promise.resolve(new Map([["x", { shape: [], data: Float32Array.of(x) }]])),
 *   setWeights: (w) => void (x = w.get("x")!.data[0]),
 *   optimizerState: () => Promise.resolve({ step: 0, m: new Map(), v: new Map() }),
 *   loadOptimizerState() {},
 * };
 * const result = await trainEngine({
 *   engine, ema: false,
 *   terms: (b) => ({ rows: 1, length: 2, inputs: b.tokens, targets: b.tokens, weights: Float32Array.of(0.5, 0.5) }),
 *   blocks: { data: Uint32Array.of(1, 2, 3, 4), count: 2, length: 2 },
 *   batchSize: 1, steps: 50, lr: () => 0.1, logEvery: 10, progress: false,
 * });
 * assert(result.lastLoss < 1e-3 && Math.abs(x - 1) < 0.05);
 * ```
 */
export async function trainEngine(
  options: EngineTrainOptions,
): Promise<Omit<TrainResult, "ema" | "optimizer">> {
  const { engine, blocks, batchSize } = options;
  const logged = loggedSteps(options, "trainEngine");
  let unread = 0; // steps since the last reading
  const stepper: Stepper = {
    tokensPerStep: batchSize * blocks.length,
    async step(next, rng, lr, done) {
      engine.step(options.terms(next(), rng), lr);
      unread++;
      if (!logged(done)) return undefined;
      const { loss, gradNorm } = await engine.readLoss();
      const steps = unread;
      unread = 0;
      return { loss, gradNorm, steps };
    },
    async state() {
      const st = await engine.optimizerState();
      return {
        model: await engine.getWeights(),
        ema: options.ema ? await engine.emaWeights!() : undefined,
        optimizerStep: st.step,
        m: st.m,
        v: st.v,
      };
    },
    load(ck, where) {
      if (options.ema && ck.ema.size === 0) {
        throw new TrainError(
          `${where} has no EMA weights but the engine keeps an EMA`,
        );
      }
      engine.setWeights(ck.model);
      if (options.ema) engine.setEmaWeights!(ck.ema);
      engine.loadOptimizerState({
        step: ck.state.optimizerStep,
        m: new Map([...ck.adamM].map(([k, t]) => [k, t.data])),
        v: new Map([...ck.adamV].map(([k, t]) => [k, t.data])),
      });
    },
    checkpointBytes: async () =>
      checkpointBytes(await engine.getWeights(), options.ema),
    evalWeights: () => options.ema ? engine.emaWeights!() : engine.getWeights(),
  };
  return await drive(stepper, options);
}

/** What the loop needs of an engine; `train` and `trainEngine` each make one. */
interface Stepper {
  tokensPerStep: number;
  /**
   * One optimiser step (`done` counts it). Returns the loss and gradient
   * norm when it knows them, the loss being the mean of the last `steps`
   * steps (1 on tfjs); a non-finite pair stops the loop (the tfjs stepper
   * then has not applied the update).
   */
  step(
    next: () => Batch,
    rng: Prng,
    lr: number,
    done: number,
  ): Promise<{ loss: number; gradNorm: number; steps: number } | undefined>;
  state(): Promise<{
    model: ReadonlyMap<string, Tensor | StoredTensor>;
    ema?: ReadonlyMap<string, Tensor | StoredTensor>;
    optimizerStep: number;
    m: Map<string, Float32Array>;
    v: Map<string, Float32Array>;
  }>;
  load(ck: Checkpoint, where: string): void;
  /** The most bytes this model's checkpoint can hold (read no more). */
  checkpointBytes(): Promise<number>;
  evalWeights(): Promise<ReadonlyMap<string, Tensor | StoredTensor>>;
}

/**
 * Which steps are logged: every multiple of `logEvery`, every checkpoint,
 * the last step. The readings of the fused engines happen there, so the
 * mean loss of an interval is the same figure on every engine.
 */
function loggedSteps(
  options: Pick<TrainOptions, "logEvery" | "checkpointEvery" | "steps">,
  who: string,
): (done: number) => boolean {
  const logEvery = options.logEvery ?? 1;
  if (!Number.isInteger(logEvery) || logEvery < 1) {
    throw new RangeError(
      `${who}: logEvery must be a positive integer, got ${logEvery}`,
    );
  }
  const every = options.checkpointEvery;
  return (done) =>
    done % logEvery === 0 || done === options.steps ||
    Boolean(every && done % every === 0);
}

/** The loop both engines share: data, randomness, resume, NaN stop, logging, checkpoints. */
async function drive(
  stepper: Stepper,
  options: Omit<TrainOptions, "variables" | "loss">,
): Promise<Omit<TrainResult, "ema" | "optimizer">> {
  const { blocks, batchSize, steps } = options;
  if (!Number.isInteger(steps) || steps < 0) {
    throw new RangeError(`train: steps must be an integer ≥ 0, got ${steps}`);
  }
  let batches = new BatchIterator(blocks, {
    batchSize,
    seed: options.seed ?? 0,
  });
  let rng = seeded(options.seed ?? 0);
  let startStep = 0;
  let earlier = 0; // seconds of training in earlier sessions
  let lastLoss = NaN;
  let lastLossSteps: [number, number] | undefined;
  // Loss summed over the steps of the current logged interval.
  let intervalSum = 0, intervalSteps = 0;
  const logged = loggedSteps(options, "train");
  let checkpointed = false;
  let engines: EngineSpan[] | undefined;

  if (
    options.resume && options.checkpoint &&
    (await pathExists(options.checkpoint))
  ) {
    const ck = await loadCheckpoint(options.checkpoint, {
      maxBytes: await stepper.checkpointBytes(),
    });
    if (options.config !== undefined) {
      const [diff] = configDifferences(ck.state.config, options.config, {
        defaults: options.configDefaults,
        ignore: options.configIgnore,
      });
      if (diff) {
        const change = `${JSON.stringify(diff.saved)} → ${
          JSON.stringify(diff.now)
        }`;
        throw new TrainError(
          `Cannot resume from ${options.checkpoint}: it was trained with a different configuration (${
            diff.key ? `${diff.key}: ${change}` : change
          })`,
        );
      }
    }
    stepper.load(ck, `checkpoint ${options.checkpoint}`);
    batches = new BatchIterator(blocks, { batchSize, state: ck.state.data });
    rng = restorePrng(ck.state.prng);
    startStep = ck.state.step;
    earlier = ck.state.elapsed ?? 0;
    lastLoss = ck.state.lastLoss ?? NaN;
    lastLossSteps = ck.state.lastLossSteps;
    checkpointed = true;
    engines = ck.state.engines?.map((s) => ({ ...s }));
  }
  if (options.engineName !== undefined) {
    engines ??= [];
    const last = engines.at(-1);
    if (startStep < steps && last?.engine !== options.engineName) {
      engines.push({ engine: options.engineName, fromStep: startStep });
    }
  }

  const progress = options.progress === false
    ? undefined
    : new Progress({ label: options.progress ?? "train", total: steps });
  const start = performance.now();
  const seconds = () => earlier + (performance.now() - start) / 1000;

  const writeCheckpoint = async (step: number) => {
    if (!options.checkpoint) return;
    const st = await stepper.state();
    const state: CheckpointState = {
      step,
      optimizerStep: st.optimizerStep,
      data: batches.state,
      prng: rng.state(),
      config: options.config ?? null,
      elapsed: seconds(),
      lastLoss,
      ...(lastLossSteps ? { lastLossSteps } : {}),
      ...(engines ? { engines } : {}),
    };
    await saveCheckpoint(options.checkpoint, {
      model: st.model,
      ema: st.ema,
      adamM: st.m,
      adamV: st.v,
      state,
    });
  };

  // An engine's step may never leave the microtask queue (the CPU engine's
  // kernels run synchronously, its readings resolve at once): yield to the
  // event loop now and then, or a signal listener (Ctrl-C) waits until the
  // training ends (the auto judge's 1,000 steps ran on after it).
  let yielded = performance.now();
  for (let step = startStep; step < steps; step++) {
    if (performance.now() - yielded > YIELD_MS) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      yielded = performance.now();
    }
    const lr = options.lr(step);
    const done = step + 1;
    const r = await stepper.step(() => batches.next(), rng, lr, done);
    if (r) {
      if (!Number.isFinite(r.loss) || !Number.isFinite(r.gradNorm)) {
        progress?.done();
        throw new TrainError(
          `Training stopped at step ${done}: the ${
            Number.isFinite(r.loss) ? "gradient norm" : "loss"
          } is ${Number.isFinite(r.loss) ? r.gradNorm : r.loss}; ${
            checkpointed
              ? `the last checkpoint (${options.checkpoint}) was kept`
              : "no checkpoint was written yet"
          } — lower the learning rate or check the data`,
        );
      }
      intervalSum += r.loss * r.steps;
      intervalSteps += r.steps;
      if (logged(done)) {
        lastLoss = intervalSum / intervalSteps;
        lastLossSteps = [done - intervalSteps + 1, done];
        intervalSum = intervalSteps = 0;
      }
      const elapsed = (performance.now() - start) / 1000;
      const info: StepInfo = {
        step: done,
        loss: r.loss,
        lr,
        gradNorm: r.gradNorm,
        tokens: done * stepper.tokensPerStep,
        tokensPerSecond: ((done - startStep) * stepper.tokensPerStep) /
          Math.max(elapsed, 1e-9),
        elapsed,
      };
      await options.metrics?.append({ ...info });
      progress?.update(done, { loss: r.loss, "tok/s": info.tokensPerSecond });
      await options.onStep?.(info, stepper.evalWeights);
    }
    const every = options.checkpointEvery;
    if (done === steps || (every && done % every === 0)) {
      await writeCheckpoint(done);
      checkpointed = Boolean(options.checkpoint);
    }
  }
  progress?.done();
  return {
    steps,
    startStep,
    lastLoss,
    ...(lastLossSteps ? { lastLossSteps } : {}),
    seconds: seconds(),
    ...(engines ? { engines } : {}),
  };
}

function assign(
  variables: ReadonlyMap<string, Variable>,
  values: Map<string, StoredTensor>,
  where: string,
): void {
  for (const [name, v] of variables) {
    const t = values.get(name);
    if (!t || t.data.length !== v.size || t.shape.join() !== v.shape.join()) {
      throw new TrainError(
        `${where}: ${name} is ${
          t ? `shaped [${t.shape}]` : "missing"
        }, the model needs [${v.shape}]`,
      );
    }
    tf.tidy(() => v.assign(tf.tensor(t.data, v.shape)));
  }
  for (const name of values.keys()) {
    if (!variables.has(name)) {
      throw new TrainError(
        `${where}: unexpected tensor ${name} (not in the model)`,
      );
    }
  }
}
