/**
 * Training one contestant's model for one seed — on tfjs or on the fused
 * WebGPU engine — with validation, `keep: best`, checkpoints and resume;
 * the trained model is saved with its process.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  BoundedReadError,
  readJsonBounded,
  sha256Hex,
  type StoredTensor,
  type Tensor,
  writeFileAtomic,
} from "@d3pm/core";
import {
  configDifferences,
  MetricsLog,
  type StepInfo,
  train,
  type TrainOptions,
  type TrainResult,
  warmupCosine,
} from "@d3pm/train";
import {
  inspectModel,
  loadModel,
  readWeightsFile,
  saveModel,
  Transformer,
} from "@d3pm/transformer";
import { checkSeed, checkWeights } from "./_weights.ts";
import {
  finishedTraining,
  type RecordedTraining,
  retrainedWarning,
} from "./_retrained.ts";
import type { Contestant, ContestantProcess } from "./contestant.ts";
import type { RunData } from "./data.ts";
import {
  type Engine,
  evaluationModel,
  releaseEvaluationModel,
  storedWeights,
  trainOnEngine,
} from "./engine.ts";
import {
  ADDED_KEYS,
  ConfigError,
  type ExperimentConfig,
  tfjsOnlyOptions,
  VERIFIED_KEYS,
} from "./options.ts";
import type { TrainingFigures } from "./results.ts";
import type { DataRecord, RunFolder } from "./run_folder.ts";
import { trainingFingerprint } from "./config.ts";
import { scheduleOf } from "./_schedule.ts";
import {
  annealWindow,
  type InitFigures,
  initialiseFrom,
  parseInitFrom,
} from "./init_from.ts";

/** A contestant entered into a run: the contestant with the run's process. */
export interface Entrant<P extends ContestantProcess = ContestantProcess> {
  /** The contestant. */
  contestant: Contestant<P>;
  /** Its process for the run. */
  process: P;
}

/**
 * Enter a contestant into a run: build its process for the run's
 * configuration and data.
 *
 * @param contestant The contestant.
 * @param run The run's configuration and data.
 * @returns The entrant.
 *
 * @example
 * ```ts
 * import { D3PM, enter, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const config = resolveConfig({ preset: "micro" });
 * const data = {
 *   tokenizer: { vocabSize: 260 } as never,
 *   specials: { bos: 256, eos: 257, pad: 258, mask: 259 },
 * };
 * const { process } = enter(D3PM, { config, data });
 * assertEquals(process.spec.steps, config.diffusionSteps);
 * ```
 */
export function enter<P extends ContestantProcess>(
  contestant: Contestant<P>,
  run: {
    config: ExperimentConfig;
    data: Pick<RunData, "tokenizer" | "specials">;
  },
): Entrant<P> {
  return { contestant, process: contestant.process(run.config, run.data) };
}

/**
 * The seed of a contestant's initial weights for a run's seed.
 *
 * @param contestant The contestant.
 * @param seed The run's seed.
 * @returns `1000 · seed + contestant.seedStream`.
 *
 * @example
 * ```ts
 * import { AR, D3PM, weightSeed } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals([weightSeed(AR, 2), weightSeed(D3PM, 2)], [2001, 2002]);
 * ```
 */
export function weightSeed(
  contestant: Pick<Contestant, "seedStream">,
  seed: number,
): number {
  return 1000 * seed + contestant.seedStream;
}

/**
 * A contestant's untrained model for a seed.
 *
 * @param entrant The contestant.
 * @param seed The run's seed.
 * @param run The run's configuration and data.
 * @returns The model (the caller disposes it).
 */
export function buildModel(
  entrant: Entrant,
  seed: number,
  run: { config: ExperimentConfig; data: Pick<RunData, "tokenizer"> },
): Transformer {
  const { contestant } = entrant;
  return new Transformer(
    contestant.modelConfig(run.config, run.data.tokenizer.vocabSize),
    { seed: weightSeed(contestant, seed) },
  );
}

// The options only tfjs implements that reach this contestant's training
// (undefined: none): the annealing of its attention, if it anneals, and the
// shift of its network's outputs, if its configuration shifts them.
function tfjsOnlyTraining(
  contestant: Contestant,
  c: ExperimentConfig,
  data: Pick<RunData, "tokenizer">,
): string | undefined {
  return tfjsOnlyOptions({
    annealSteps: contestant.annealsAttention ? c.annealSteps : 0,
    shift: contestant.modelConfig(c, data.tokenizer.vocabSize).shift === true,
  });
}

/** What training a contestant needs besides the contestant. */
export interface TrainContext {
  /** The run's configuration. */
  config: ExperimentConfig;
  /** The run's data. */
  data: RunData;
  /** The run folder. */
  folder: RunFolder;
  /** Where each step and validation is recorded. */
  metrics: MetricsLog;
  /** Show a progress line. */
  progress: boolean;
  /** The training engine (default tfjs). */
  engine?: Engine;
  /**
   * What trains, as `engineFingerprint` (engine.ts) names it (kept in the
   * checkpoints: a run resumed on another engine or thread count says
   * which steps each ran, in `training.engines`).
   */
  engineName?: string;
}

/**
 * Train (or resume) one contestant's model for one seed — on tfjs or on the
 * fused WebGPU engine — validating every `validEvery` steps; save it with its
 * process, and give back the model with the weights to evaluate in place
 * (the last step's EMA, or with `keep: best` the best validation's).
 *
 * @param entrant The contestant and its process.
 * @param seed The seed.
 * @param ctx The run: configuration, data, folder, metrics, engine.
 * @returns The model (the caller disposes it) and its training figures.
 */
export async function trainContestant(
  entrant: Entrant,
  seed: number,
  ctx: TrainContext,
): Promise<{ model: Transformer; training: TrainingFigures }> {
  const { config: c, folder } = ctx;
  const kind = entrant.contestant.kind;
  await Deno.mkdir(folder.modelDir(seed, kind), { recursive: true });
  const only = tfjsOnlyTraining(entrant.contestant, c, ctx.data);
  if (only && ctx.engine && ctx.engine.kind !== "tfjs") {
    throw new ConfigError(
      `${only}, not the ${ctx.engine.kind} engine; use --engine tfjs`,
    );
  }
  if (c.resume) {
    const warning = await retrainedWarning(folder, seed, kind);
    if (warning) console.error(warning);
    const finished = warning ? undefined : await finishedTraining(
      folder,
      seed,
      kind,
    );
    if (finished) return await reloadFinished(entrant, seed, ctx, finished);
  }
  const model = buildModel(entrant, seed, ctx);
  let initFrom: InitFigures | undefined;
  const validator = c.validEvery > 0
    ? await Validator.open(entrant, seed, ctx)
    : undefined;
  try {
    if (entrant.contestant.startsFromWeights && c.initFrom !== "") {
      // On resume the checkpoint's weights replace these; the figures stay.
      initFrom = await initialiseFrom(
        model,
        parseInitFrom(c.initFrom, seed),
        ctx.data.tokenizer,
      );
    }
    const common = loopOptions(entrant, seed, ctx, validator, initFrom);
    if (entrant.contestant.annealsAttention && c.annealSteps > 0) {
      const lr = common.lr;
      common.lr = (step) => {
        model.attentionWindow = annealWindow(
          step,
          c.annealSteps,
          c.blockLength,
        );
        return lr(step);
      };
    }
    const result = ctx.engine && ctx.engine.kind !== "tfjs"
      ? await fitOnEngine(model, entrant, ctx.engine, common, c, initFrom)
      : await fitOnTfjs(model, entrant, common, c);
    model.attentionWindow = Infinity; // annealing over: evaluated bidirectional
    if (c.keep === "best" && validator) await validator.restoreBest(model);
    const training = await saveTrained(model, entrant, seed, ctx, {
      ...result,
      initFrom,
    });
    return {
      model,
      training: {
        ...trainingFigures(training, c),
        ...(await validator?.summary().then((valid) => valid && { valid })),
        ...(initFrom ? { initFrom } : {}),
      },
    };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    validator?.dispose();
  }
}

// A trained model's weights, and beside them in its process.json its
// training's figures and what it was trained under (as a checkpoint holds
// it): a resume that finds the checkpoint deleted evaluates this model as
// it is (reloadFinished). Returns the figures.
async function saveTrained(
  model: Transformer,
  entrant: Entrant,
  seed: number,
  ctx: TrainContext,
  fit: Fit & { initFrom?: InitFigures },
): Promise<Fit> {
  const { config: c, folder } = ctx;
  const kind = entrant.contestant.kind;
  await saveModel(model, folder.modelDir(seed, kind));
  const { seconds, lastLoss, lastLossSteps, engines, initFrom } = fit;
  const training = {
    seconds,
    lastLoss,
    ...(lastLossSteps ? { lastLossSteps } : {}),
    ...(engines ? { engines } : {}),
  };
  const { config } = checkpointTies(
    c,
    kind,
    seed,
    ctx.data.record,
    initFrom?.weightsSha256,
  );
  await folder.writeProcess(seed, kind, entrant.process.toJSON(), {
    training: { ...training, ...(initFrom ? { initFrom } : {}), config },
  });
  return training;
}

// A model's training figures in results.json's order, but for `valid` and
// `initFrom`: its steps' tokens are the configuration's.
function trainingFigures(
  t: Pick<
    TrainingFigures,
    "seconds" | "lastLoss" | "lastLossSteps" | "engines"
  >,
  c: ExperimentConfig,
): TrainingFigures {
  return {
    seconds: t.seconds,
    lastLoss: t.lastLoss,
    ...(t.lastLossSteps ? { lastLossSteps: t.lastLossSteps } : {}),
    tokens: c.steps * c.batchSize * c.blockLength,
    ...(t.engines ? { engines: t.engines } : {}),
  };
}

/**
 * A trained model whose checkpoint is missing (`finishedTraining`): its
 * weights, checked again as read, and the figures its `process.json`
 * records, with the validations from the log — not trained again, once
 * what it was trained under is this run's (as a checkpoint's ties are
 * compared on resume: another configuration, contestant, seed, data or
 * `--init-from` source is refused in one line).
 */
async function reloadFinished(
  entrant: Entrant,
  seed: number,
  ctx: TrainContext,
  recorded: RecordedTraining,
): Promise<{ model: Transformer; training: TrainingFigures }> {
  const { config: c, folder } = ctx;
  const kind = entrant.contestant.kind;
  const dir = folder.modelDir(seed, kind);
  const path = folder.weightsPath(seed, kind);
  const model = buildModel(entrant, seed, ctx);
  const validator = c.validEvery > 0
    ? await Validator.open(entrant, seed, ctx)
    : undefined;
  try {
    // The source's weights as they are now (hashed as read); the saved
    // weights replace them below, as a checkpoint's do.
    const initFrom = entrant.contestant.startsFromWeights && c.initFrom !== ""
      ? await initialiseFrom(
        model,
        parseInitFrom(c.initFrom, seed),
        ctx.data.tokenizer,
      )
      : undefined;
    checkRecordedTies(recorded, c, kind, seed, ctx, initFrom, dir);
    const bytes = await readWeightsFile(path, await inspectModel(dir));
    checkWeights(path, recorded.weightsSha256, sha256Hex(bytes));
    const saved = await loadModel(dir, { weights: bytes });
    model.setWeights(saved.variables);
    saved.dispose();
    console.error(
      `note: ${
        folder.checkpointPath(seed, kind)
      } is missing, but the ${kind} model of seed ${seed} is trained (${path} is the one its process.json records, with its training's figures): it is evaluated as it is, not trained again`,
    );
    return {
      model,
      training: {
        ...trainingFigures(recorded, c),
        ...(await validator?.summary().then((valid) => valid && { valid })),
        ...(initFrom ?? recorded.initFrom
          ? { initFrom: initFrom ?? recorded.initFrom }
          : {}),
      },
    };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    validator?.dispose();
  }
}

// A finished model's recorded ties against this run's, as train() compares
// a checkpoint's on resume: the first difference refused in one line.
function checkRecordedTies(
  recorded: RecordedTraining,
  c: ExperimentConfig,
  kind: string,
  seed: number,
  ctx: TrainContext,
  initFrom: InitFigures | undefined,
  dir: string,
): void {
  const ties = checkpointTies(
    c,
    kind,
    seed,
    ctx.data.record,
    initFrom?.weightsSha256,
  );
  const [d] = configDifferences(recorded.config, ties.config, {
    defaults: ties.configDefaults,
    ignore: ties.configIgnore,
  });
  if (!d) return;
  throw new ConfigError(
    `Cannot resume the ${kind} model of seed ${seed} in ${dir}: its checkpoint is missing and its process.json says it was trained with a different configuration (${d.key}: ${
      JSON.stringify(d.saved)?.slice(0, 80)
    } → ${
      JSON.stringify(d.now)?.slice(0, 80)
    }); restore the checkpoint, or remove ${dir} to train it anew`,
  );
}

type Common = Omit<TrainOptions, "variables" | "loss">;
type Fit = Pick<
  TrainResult,
  "seconds" | "lastLoss" | "lastLossSteps" | "engines"
>;

/** The training loop's options both engines share: data, schedule, checkpoints, hooks. */
function loopOptions(
  entrant: Entrant,
  seed: number,
  ctx: TrainContext,
  validator: Validator | undefined,
  initFrom?: InitFigures,
): Common {
  const { config: c, folder } = ctx;
  const kind = entrant.contestant.kind;
  return {
    blocks: ctx.data.train,
    batchSize: c.batchSize,
    steps: c.steps,
    lr: warmupCosine(
      scheduleOf(entrant.contestant.peakLr(c), c.warmup, c.steps, c.lrFinal),
    ),
    seed,
    checkpoint: folder.checkpointPath(seed, kind),
    checkpointEvery: c.checkpointEvery,
    // Both engines report the mean loss of the last interval as lastLoss.
    logEvery: c.logEvery,
    engineName: ctx.engineName,
    resume: c.resume,
    // A source replaced at its path (say by --force) is refused on resume.
    ...checkpointTies(
      c,
      kind,
      seed,
      ctx.data.record,
      initFrom?.weightsSha256,
    ),
    progress: ctx.progress ? `seed ${seed} ${kind}` : false as const,
    onStep: async (
      s: StepInfo,
      weights: () => Promise<ReadonlyMap<string, Tensor | StoredTensor>>,
    ) => {
      await ctx.metrics.append({ model: kind, seed, ...s });
      if (s.step % c.validEvery === 0 || s.step === c.steps) {
        await validator?.run(s.step, weights);
      }
    },
  };
}

/**
 * What a checkpoint is tied to — the run's training fingerprint, the
 * contestant and seed it belongs to, and the data (each split's SHA-256 and
 * the tokenizer; for a D3PM started `--init-from` a model, that model's
 * weights, since the fingerprint names it only by its path) — as `train()`
 * stores it in the checkpoint and compares it on resume. A checkpoint
 * written before a tie existed reads as this contestant, seed, data and
 * source (and older options as their `olderRuns` value).
 *
 * @param c The run's configuration.
 * @param kind The contestant.
 * @param seed The seed.
 * @param data What the run trains on.
 * @param initFromWeightsSha256 The SHA-256 of the `--init-from` source's
 *   weights, when the contestant starts from one.
 * @returns `train()`'s `config`, `configDefaults` and `configIgnore` (the
 *   {@linkcode VERIFIED_KEYS}: a moved `--data` resumes once `data.json`
 *   verified its files, which `dataSha256` ties too).
 *
 * @example A checkpoint of another contestant, seed or corpus does not match
 * ```ts
 * import { checkpointTies, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals, assertNotEquals } from "@std/assert";
 * const c = resolveConfig({ preset: "micro" });
 * const data = { sha256: { train: "a", valid: "b", test: "c" }, tokenizer: { id: "byte", vocabSize: 260 } };
 * const ar = checkpointTies(c, "ar", 0, data).config;
 * assertNotEquals(checkpointTies(c, "d3pm", 0, data).config, ar);
 * assertNotEquals(checkpointTies(c, "ar", 1, data).config, ar);
 * assertNotEquals(checkpointTies(c, "ar", 0, { ...data, sha256: { ...data.sha256, train: "x" } }).config, ar);
 * assertEquals(checkpointTies({ ...c, out: "elsewhere" }, "ar", 0, data).config, ar);
 * ```
 */
export function checkpointTies(
  c: ExperimentConfig,
  kind: string,
  seed: number,
  data: DataRecord,
  initFromWeightsSha256?: string,
): {
  config: Record<string, unknown>;
  configDefaults: Record<string, unknown>;
  configIgnore: readonly string[];
} {
  // Keys of their own: `data` and `tokenizer` are options.
  const ties = {
    contestant: kind,
    seed,
    dataSha256: data.sha256,
    tokenizerBuilt: data.tokenizer,
    ...(initFromWeightsSha256 !== undefined ? { initFromWeightsSha256 } : {}),
  };
  return {
    config: { ...trainingFingerprint(c), ...ties },
    configDefaults: { ...ADDED_KEYS, ...ties },
    // A moved --data is resumed only once data.json verified its files
    // (RunFolder.check, RunLock.begin), and dataSha256 ties them here.
    configIgnore: VERIFIED_KEYS,
  };
}

/** Train with tfjs on the active backend; the EMA (if any) ends in `model`. */
async function fitOnTfjs(
  model: Transformer,
  entrant: Entrant,
  common: Common,
  c: ExperimentConfig,
): Promise<Fit> {
  const result = await train({
    ...common,
    variables: model.variables,
    loss: (batch, rng) =>
      entrant.process.loss(model, { ...batch, length: c.blockLength }, {
        prng: rng,
      }),
    adamw: { weightDecay: c.weightDecay, beta2: c.adamBeta2 },
    clipNorm: c.clipNorm,
    emaDecay: c.emaDecay > 0 ? c.emaDecay : undefined,
  });
  if (result.ema) {
    model.setWeights(result.ema.values);
    result.ema.dispose();
  }
  result.optimizer.dispose();
  return result;
}

/** Train on the fused engine (the same initial weights and data); its weights end in `model`. */
async function fitOnEngine(
  model: Transformer,
  entrant: Entrant,
  engine: Exclude<Engine, { kind: "tfjs" }>,
  common: Common,
  c: ExperimentConfig,
  initFrom: InitFigures | undefined,
): Promise<Fit> {
  const L = c.blockLength;
  const shape = entrant.contestant.engine(entrant.process, L);
  const { result, weights } = await trainOnEngine({
    engine,
    model: model.config,
    seed: weightSeed(entrant.contestant, common.seed ?? 0),
    // Started from a trained model: the engine takes the tfjs model's
    // weights (the source's, the mask row freshly drawn), not its own draw.
    ...(initFrom ? { weights: await storedWeights(model) } : {}),
    length: shape.length,
    excludeToken: shape.excludeToken,
    options: {
      ...common,
      terms: (batch, rng) =>
        entrant.process.lossTerms({ ...batch, length: L }, { prng: rng }),
    },
    config: c,
  });
  setStoredWeights(model, weights);
  return result;
}

/**
 * The best validation so far that a `keep: best` run recorded in its
 * `best.json`: a few bytes, so read bounded (a FIFO or a device put there
 * hung the resume, or filled memory) and checked for its shape (a damaged
 * one was taken as "no best yet", silently).
 *
 * @param path The model's `best.json`.
 * @returns The record, or undefined when there is none yet.
 * @throws {ConfigError} In one line naming the file, when it is not a small
 *   regular file holding `{"step", "nats"}`.
 */
export async function readBestRecord(
  path: string,
): Promise<BestRecord | undefined> {
  const fix =
    "restore it, or delete it (the best weights are then chosen among the validations after the resume)";
  let raw: unknown;
  try {
    raw = await readJsonBounded(path, {
      limit: 64 << 10,
      what: "best-validation record",
    });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    const why = e instanceof BoundedReadError
      ? e.message
      : `Cannot read ${path}: ${(e as Error).message?.split("\n")[0] ?? e}`;
    throw new ConfigError(`${why}; ${fix}`);
  }
  const r = raw as { step?: unknown; nats?: unknown } | null;
  if (
    typeof r !== "object" || r === null || !Number.isSafeInteger(r.step) ||
    !(typeof r.nats === "number" || r.nats === null) // NaN is written null
  ) {
    throw new ConfigError(
      `${path} is not a best-validation record (expected {"step", "nats"}); ${fix}`,
    );
  }
  const { weightsSha256, weightsSeed } = raw as Record<string, unknown>;
  return {
    step: r.step as number,
    nats: r.nats ?? NaN,
    ...(typeof weightsSha256 === "string" ? { weightsSha256 } : {}),
    ...(weightsSeed !== undefined ? { weightsSeed } : {}),
  };
}

/**
 * A `keep: best` model's `best.json`: the best validation so far, and the
 * SHA-256 and seed of the `best/model.safetensors` it was kept in (as
 * `process.json` records the model's; none in a record written before).
 */
export interface BestRecord {
  /** The step of the best validation. */
  step: number;
  /** Its validation NLL (nats per token; NaN written as null). */
  nats: number;
  /** The SHA-256 of `best/model.safetensors` as written. */
  weightsSha256?: string;
  /** The seed whose weights they are. */
  weightsSeed?: unknown;
}

/** Validation during training: metrics records, and the best weights for `keep: best`. */
class Validator {
  #best: BestRecord | undefined;
  private constructor(
    readonly entrant: Entrant,
    readonly seed: number,
    readonly ctx: TrainContext,
    readonly scratch: Transformer,
  ) {}

  /** A validator; on resume it knows the best validation so far. */
  static async open(
    entrant: Entrant,
    seed: number,
    ctx: TrainContext,
  ): Promise<Validator> {
    const scratch = buildModel(entrant, seed, ctx);
    const v = new Validator(entrant, seed, ctx, scratch);
    v.#best = await readBestRecord(v.#bestJson);
    return v;
  }

  get #kind(): string {
    return this.entrant.contestant.kind;
  }
  get #bestDir(): string {
    return `${this.ctx.folder.modelDir(this.seed, this.#kind)}/best`;
  }
  get #bestJson(): string {
    return `${this.#bestDir}.json`;
  }

  /** Validate the weights at `step`; keep them if they are the best so far. */
  async run(
    step: number,
    weights: () => Promise<ReadonlyMap<string, Tensor | StoredTensor>>,
  ): Promise<void> {
    setStoredWeights(this.scratch, await weights());
    const { contestant, process } = this.entrant;
    // On the fused engines' runs, validation scores there too (as the test
    // evaluation does): the tfjs model's scoring was most of its time.
    const placed = this.ctx.engine
      ? await evaluationModel(this.scratch, this.ctx.engine)
      : this.scratch;
    let nats: number;
    try {
      ({ nats } = await contestant.validate(process, placed, this.ctx.data));
    } finally {
      releaseEvaluationModel(placed);
    }
    await this.ctx.metrics.append({
      model: this.#kind,
      seed: this.seed,
      step,
      valid: nats,
    });
    if (this.#best && !(nats < this.#best.nats)) return;
    this.#best = { step, nats };
    if (this.ctx.config.keep !== "best") return;
    await saveModel(this.scratch, this.#bestDir);
    // Its record: the weights' SHA-256 and seed, checked by restoreBest.
    this.#best = {
      step,
      nats,
      weightsSha256: sha256Hex(await Deno.readFile(this.#bestWeights)),
      weightsSeed: this.seed,
    };
    await writeFileAtomic(this.#bestJson, JSON.stringify(this.#best) + "\n");
  }

  get #bestWeights(): string {
    return `${this.#bestDir}/model.safetensors`;
  }

  /**
   * Put the best validation's weights into `model`: those `best.json`
   * records (another seed's or run's `best/` copied in before a resume is
   * refused, not evaluated as this model). Checked only here, at the end:
   * a kill between writing `best/` and `best.json` left them apart, and
   * the resume validates that step again and rewrites both.
   */
  async restoreBest(model: Transformer): Promise<void> {
    const path = this.#bestWeights;
    const bytes = await readWeightsFile(
      path,
      await inspectModel(this.#bestDir),
    );
    checkSeed(this.#bestJson, this.#best?.weightsSeed, this.seed);
    if (this.#best?.weightsSha256 !== undefined) {
      checkWeights(path, this.#best.weightsSha256, sha256Hex(bytes), {
        record: this.#bestJson,
        fix:
          "restore this model's best/ and best.json, or train the model anew (remove its folder, then --resume)",
      });
    }
    const best = await loadModel(this.#bestDir, { weights: bytes });
    model.setWeights(best.variables);
    best.dispose();
  }

  /**
   * Final and best validation, from the log (so a resumed run counts all of
   * it); none, with a warning, when the log lacks any of this model's
   * scheduled validations ({@linkcode validationSummary}).
   */
  async summary(): Promise<TrainingFigures["valid"]> {
    const path = this.ctx.folder.metricsPath;
    // Streamed, keeping only this model's validations: a log of any size
    // up to its 1 GiB cap resumes in little memory.
    const records: Record<string, unknown>[] = [];
    try {
      for await (const r of MetricsLog.records(path)) {
        if (
          typeof r.valid === "number" && r.model === this.#kind &&
          r.seed === this.seed
        ) records.push(r);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const { valid, missing } = validationSummary(
      records,
      this.#kind,
      this.seed,
      this.ctx.config,
    );
    if (missing.length > 0) {
      const shown = missing.length > 4
        ? `${missing.slice(0, 4).join(", ")}, … (${missing.length} steps)`
        : missing.join(", ");
      console.error(
        `warning: ${path} lacks the validation of ${this.#kind} (seed ${this.seed}) at step ${shown} — emptied, cut short or replaced since it trained; its results have no validation figures`,
      );
    }
    return valid;
  }

  dispose(): void {
    this.scratch.dispose();
  }
}

/**
 * Put weights (tfjs tensors, or stored ones read back from an engine) into
 * a model.
 *
 * @param model The model.
 * @param weights Name → tensor, as `model.variables` names them.
 */
export function setStoredWeights(
  model: Transformer,
  weights: ReadonlyMap<string, Tensor | StoredTensor>,
): void {
  const made: tf.Tensor[] = [];
  const tensors = new Map<string, Tensor>();
  for (const [name, w] of weights) {
    if (w.data instanceof Float32Array) {
      const t = tf.tensor(w.data, (w as StoredTensor).shape);
      made.push(t);
      tensors.set(name, t);
    } else tensors.set(name, w as Tensor);
  }
  model.setWeights(tensors);
  tf.dispose(made);
}

/**
 * The parameters of a model.
 *
 * @param model The model.
 * @returns How many numbers its weights hold.
 */
export function parameterTotal(model: Transformer): number {
  let n = 0;
  for (const v of model.variables.values()) n += v.size;
  return n;
}

/**
 * A model's final and best validation from the metrics log's records, or
 * none when the log lacks any validation the run made: every
 * `validEvery`-th step and the last (`steps`). A log cut short would
 * otherwise give an earlier step's figure as the final one, and a best
 * chosen among what is left.
 *
 * @param records The log's records.
 * @param kind The contestant.
 * @param seed The seed.
 * @param config The run's steps, validation interval and `keep`.
 * @returns The figures (undefined when any validation is missing, or the
 *   run validates none) and the steps whose validation is missing.
 *
 * @example A log cut after step 100 of 300 gives no figures
 * ```ts
 * import { validationSummary } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const config = { steps: 300, validEvery: 100, keep: "last" } as const;
 * const at = (step: number, valid: number) => ({ model: "ar", seed: 0, step, valid });
 * const whole = [at(100, 3), at(200, 2.5), at(300, 2.6)];
 * assertEquals(validationSummary(whole, "ar", 0, config).valid, {
 *   final: 2.6, best: 2.5, bestStep: 200, kept: "last",
 * });
 * const cut = validationSummary(whole.slice(0, 1), "ar", 0, config);
 * assertEquals([cut.valid, cut.missing], [undefined, [200, 300]]);
 * ```
 */
export function validationSummary(
  records: readonly Record<string, unknown>[],
  kind: string,
  seed: number,
  config: Pick<ExperimentConfig, "steps" | "validEvery" | "keep">,
): { valid: TrainingFigures["valid"]; missing: number[] } {
  const byStep = new Map<number, number>();
  for (const r of records) {
    if (
      r.model === kind && r.seed === seed &&
      typeof r.valid === "number" && Number.isSafeInteger(r.step)
    ) byStep.set(Number(r.step), r.valid);
  }
  const { steps, validEvery } = config;
  const scheduled: number[] = [];
  if (validEvery > 0) {
    for (let s = validEvery; s < steps; s += validEvery) scheduled.push(s);
    scheduled.push(steps);
  }
  const missing = scheduled.filter((s) => !byStep.has(s));
  if (scheduled.length === 0 || missing.length > 0) {
    return { valid: undefined, missing };
  }
  const best = scheduled.reduce((b, s) =>
    byStep.get(s)! < byStep.get(b)! ? s : b
  );
  return {
    valid: {
      final: byStep.get(steps)!,
      best: byStep.get(best)!,
      bestStep: best,
      kept: config.keep,
    },
    missing,
  };
}
