/**
 * The judge of generative perplexity: a causal model that is not under
 * test. By default an AR model of the run's shape, trained separately (its
 * own seed, longer) on the run's engine and cached per data, tokenizer,
 * block length and engine, so every run on the same data and engine is
 * judged by the same model.
 *
 * @module
 */
import { RESULTS_READ } from "./_limits.ts";
import { autoregressive, type AutoregressiveSpec } from "@d3pm/autoregressive";
import {
  type NllEstimate,
  readJsonBounded,
  sha256Hex,
  type TokenBatch,
} from "@d3pm/core";
import { overBlocks } from "@d3pm/eval";
import { TEXT_READING } from "@d3pm/data";
import { train, warmupCosine } from "@d3pm/train";
import {
  loadModel,
  type ModelConfig,
  saveModel,
  Transformer,
} from "@d3pm/transformer";
import { ADDED_KEYS, ConfigError, type ExperimentConfig } from "./options.ts";
import { scheduleOf } from "./_schedule.ts";
import { openTokenizer, type RunData } from "./data.ts";
import { RunFolder } from "./run_folder.ts";
import { compareData } from "./_same_data.ts";
import { loadTrained } from "./load.ts";
import { AR } from "./contestants/ar.ts";
import type { EvalContext } from "./evaluation.ts";
import { type Entrant, setStoredWeights } from "./train.ts";
import {
  type Engine,
  engineFingerprint,
  type EvalModel,
  evaluationModel,
  releaseEvaluationModel,
  trainOnEngine,
} from "./engine.ts";

// AdamW's β2 of every judge before --adam-beta2 (absent from their plans):
// the option's older-runs value.
const OLDER_BETA2 = ADDED_KEYS.adamBeta2!;

/** A judge: how it scores samples, and what the report says of it. */
export interface Judge {
  /** One line for the report. */
  describe: string;
  /** Scores a batch of samples (nats per predicted token). */
  score(x0: TokenBatch): Promise<NllEstimate>;
  /** Release its model. */
  dispose(): void;
}

const JUDGE_SEED = 7919;

/** What {@linkcode openJudge} needs besides the run's configuration and data. */
export interface JudgeOptions {
  /**
   * The run's resolved engine: the `auto` judge trains there (its cache key
   * names it, see {@linkcode engineFingerprint}), and every judge scores
   * there.
   */
  engine: Engine;
  /**
   * Where the judge scores instead of `engine` (the run passes tfjs when a
   * model of its falls back to tfjs beside the CPU engine: a live CPU engine
   * holds the CBLAS at one thread, which would change that model's bits).
   */
  scoreOn?: Engine;
  /** On tfjs, the backend's one line (`initBackend`'s reason): part of the key. */
  backend?: string;
  /**
   * The engine's fingerprint when the caller already has it
   * ({@linkcode engineFingerprint} of `engine` and `backend`): not computed
   * again (on the CPU engine that starts its kernels).
   */
  engineName?: string;
  /** Where progress lines go. */
  log: (line: string) => void;
  /** The folder of cached `auto` judges (default `.cache/judges`). */
  cacheDir?: string;
}

/**
 * The judge named by `config.judge`; `self` returns undefined (the run's AR
 * model judges, once trained). Validated before the run writes anything.
 * The `auto` judge trains on the run's engine (tfjs, or the fused CPU or
 * WebGPU engine, as the contestants do) and is cached per engine; every
 * judge scores on the run's engine.
 *
 * @param config The run's configuration.
 * @param data The run's data (the auto judge trains on its train split).
 * @param options The engine, the log, the cache folder.
 * @returns The judge (dispose it when done), or undefined for `self`.
 * @throws {ConfigError} When the folder of `--judge` holds no usable run.
 *
 * @example `self` waits for the run's AR model; a folder that is no run is refused
 * ```ts
 * import { ConfigError, openJudge, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const c = resolveConfig({ preset: "micro" });
 * const data = { tokenizer: { id: "byte", vocabSize: 260 }, specials: { bos: 256, pad: 258 } } as never;
 * const options = { engine: { kind: "tfjs", reason: "tfjs" } as const, log: () => {} };
 * assertEquals(await openJudge({ ...c, judge: "self" }, data, options), undefined);
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/file`, "x");
 * await assertRejects(
 *   () => openJudge({ ...c, judge: `${dir}/file` }, data, options),
 *   ConfigError,
 *   `Option --judge ${dir}/file: ${dir}/file is not a run folder`,
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openJudge(
  config: ExperimentConfig,
  data: Pick<
    RunData,
    | "train"
    | "valid"
    | "specials"
    | "tokenizer"
    | "trainSha256"
    | "format"
    | "record"
  >,
  options: JudgeOptions,
): Promise<Judge | undefined> {
  if (config.judge === "self") return undefined;
  const { engine, log } = options;
  // An imported judge scores over its own outputs (see hf/import.ts).
  const other = config.judge !== "auto"
    ? await otherRun(config, data, log)
    : [];
  const process = autoregressive({
    kind: "autoregressive",
    start: data.specials.bos,
    padId: data.specials.pad,
    ...other[2],
  });
  // The judge scores where the contestants are evaluated: on the run's engine.
  const judged = async (
    model: Transformer,
    describe: (score: Judge["score"]) => Promise<string>,
  ): Promise<Judge> => {
    let placed: EvalModel | undefined;
    const dispose = () => {
      if (placed) releaseEvaluationModel(placed);
      model.dispose();
    };
    try {
      placed = await evaluationModel(model, options.scoreOn ?? engine);
      const score = (x0: TokenBatch) => process.score(placed!, x0);
      return { describe: await describe(score), score, dispose };
    } catch (e) {
      dispose();
      throw e;
    }
  };
  if (config.judge !== "auto") {
    const [model, describe] = other as [Transformer, string];
    return await judged(model, () => Promise.resolve(describe));
  }
  const plan = judgePlan(
    config,
    data,
    options.engineName ?? await engineFingerprint(engine, options.backend),
  );
  const dir = `${options.cacheDir ?? ".cache/judges"}/${judgeKey(plan)}`;
  let model: Transformer;
  try {
    model = await loadModel(dir);
    log(`judge: cached AR model from ${dir}`);
  } catch {
    model = await trainJudge(plan, data, engine, dir, log);
  }
  return await judged(model, async (score) => {
    const valid = await overBlocks(data.valid, score);
    return `a separate AR model of the same shape, trained for ${config.judgeSteps} steps on the ${engine.kind} engine (seed ${JUDGE_SEED}; valid NLL ${
      valid.nats.toFixed(3)
    } nats), cached in ${dir}`;
  });
}

/**
 * Everything that decides the `auto` judge's training — its data, model,
 * schedule, optimiser, clipping and EMA — and nothing else. The judge is
 * trained from this plan alone ({@linkcode trainJudge} reads no
 * configuration), and cached under its hash ({@linkcode judgeKey}): a
 * setting that changes the judge's training changes its key by
 * construction, so a cached judge is never one trained otherwise.
 */
export interface JudgePlan {
  /** The tokenizer's id (its vocabulary). */
  tokenizer: string;
  /** SHA-256 of the train split. */
  train: string;
  /** `text` for plain-text splits (other documents than WikiText's). */
  format?: "text";
  /** With `format`, how plain text was read ({@linkcode TEXT_READING}). */
  reading?: number;
  /** Tokens per block. */
  blockLength: number;
  /** The judge's model. */
  shape: ModelConfig;
  /** Its initial weights and batch order. */
  seed: number;
  /** Optimiser steps. */
  steps: number;
  /** Blocks per step. */
  batchSize: number;
  /** The warm-up–cosine schedule (`min` absent: `peak / 10`). */
  lr: { peak: number; warmup: number; total: number; min?: number };
  /** AdamW's weight decay. */
  weightDecay: number;
  /** AdamW's β2 (absent: 0.95, so older judges keep their keys). */
  adamBeta2?: number;
  /** Gradient clipping (global norm). */
  clipNorm: number;
  /** EMA decay of the judged weights (undefined: none). */
  emaDecay?: number;
  /**
   * The engine that trains it, as {@linkcode engineFingerprint} names it
   * (kind, backend, threads, CBLAS): engines round differently, so one
   * engine's judge never stands for another's.
   */
  engine: string;
}

/**
 * The plan of the `auto` judge of a run.
 *
 * @param c The run's configuration.
 * @param data The run's tokenizer and train split's hash.
 * @param engine The engine that trains it ({@linkcode engineFingerprint}).
 * @returns The plan.
 *
 * @example The judge follows the run's optimiser settings and engine, not its length
 * ```ts
 * import { judgeKey, judgePlan, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals, assertNotEquals } from "@std/assert";
 * const data = { tokenizer: { id: "byte", vocabSize: 260 }, trainSha256: "ab" } as const;
 * const c = resolveConfig({ preset: "micro" });
 * const key = judgeKey(judgePlan(c, data, "tfjs on cpu"));
 * assertNotEquals(judgeKey(judgePlan({ ...c, warmup: 5 }, data, "tfjs on cpu")), key);
 * assertNotEquals(judgeKey(judgePlan(c, data, "cpu: 2 threads")), key);
 * assertEquals(judgeKey(judgePlan({ ...c, steps: 5 }, data, "tfjs on cpu")), key);
 * ```
 */
export function judgePlan(
  c: ExperimentConfig,
  data: {
    readonly tokenizer: Pick<RunData["tokenizer"], "id" | "vocabSize">;
    readonly trainSha256: string;
    readonly format?: "text";
  },
  engine: string,
): JudgePlan {
  return {
    tokenizer: data.tokenizer.id,
    train: data.trainSha256,
    // Absent for WikiText, so that WikiText judges keep their keys.
    ...(data.format ? { format: data.format, reading: TEXT_READING } : {}),
    blockLength: c.blockLength,
    shape: AR.modelConfig(c, data.tokenizer.vocabSize),
    seed: JUDGE_SEED,
    steps: c.judgeSteps,
    batchSize: c.batchSize,
    lr: scheduleOf(AR.peakLr(c), c.warmup, c.judgeSteps, c.lrFinal),
    weightDecay: c.weightDecay,
    // As the weight decay: the judge trains with the run's optimiser.
    ...(c.adamBeta2 !== OLDER_BETA2 ? { adamBeta2: c.adamBeta2 } : {}),
    clipNorm: c.clipNorm,
    ...(c.emaDecay > 0 ? { emaDecay: c.emaDecay } : {}),
    engine,
  };
}

/**
 * The cache key of a judge: a hash of its whole plan.
 *
 * @param plan The judge's plan.
 * @returns 16 hex digits.
 *
 * @example The cache folder of a run's `auto` judge
 * ```ts
 * import { judgeKey, judgePlan, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals, assertMatch, assertNotEquals } from "@std/assert";
 * const data = { tokenizer: { id: "byte", vocabSize: 260 }, trainSha256: "ab" } as const;
 * const plan = judgePlan(resolveConfig({ preset: "micro" }), data, "tfjs on cpu");
 * assertMatch(judgeKey(plan), /^[0-9a-f]{16}$/);
 * assertEquals(judgeKey(structuredClone(plan)), judgeKey(plan)); // the plan alone decides
 * assertNotEquals(judgeKey({ ...plan, train: "cd" }), judgeKey(plan)); // other training data
 * ```
 */
export function judgeKey(plan: JudgePlan): string {
  // Version 3: the plan names its engine (version 2 judges were tfjs's).
  return sha256Hex(JSON.stringify({ version: 3, plan })).slice(0, 16);
}

/**
 * Train the judge of `plan` on the run's train split, on `engine` (tfjs, or
 * the fused engine through the contestants' seam, its weights exported into
 * a tfjs model); it is saved to `dir` with `saveModel` either way.
 */
async function trainJudge(
  plan: JudgePlan,
  data: Pick<RunData, "train" | "specials">,
  engine: Engine,
  dir: string,
  log: (line: string) => void,
): Promise<Transformer> {
  log(
    `judge: training a separate AR model for ${plan.steps} steps on the ${engine.kind} engine (cached in ${dir} for later runs)`,
  );
  const model = new Transformer(plan.shape, { seed: plan.seed });
  const process = autoregressive({
    kind: "autoregressive",
    start: data.specials.bos,
  });
  const loop = {
    blocks: data.train,
    batchSize: plan.batchSize,
    steps: plan.steps,
    lr: warmupCosine(plan.lr),
    seed: plan.seed,
    progress: "judge",
  };
  try {
    if (engine.kind === "tfjs") {
      const result = await train({
        ...loop,
        variables: model.variables,
        loss: (batch) =>
          process.loss(model, { ...batch, length: plan.blockLength }),
        adamw: {
          weightDecay: plan.weightDecay,
          beta2: plan.adamBeta2 ?? OLDER_BETA2,
        },
        clipNorm: plan.clipNorm,
        emaDecay: plan.emaDecay,
      });
      if (result.ema) {
        model.setWeights(result.ema.values);
        result.ema.dispose();
      }
      result.optimizer.dispose();
    } else {
      const { weights } = await trainOnEngine({
        engine,
        model: plan.shape,
        seed: plan.seed,
        length: AR.engine(process, plan.blockLength).length,
        options: {
          ...loop,
          terms: (batch, rng) =>
            process.lossTerms({ ...batch, length: plan.blockLength }, {
              prng: rng,
            }),
          logEvery: JUDGE_LOG_EVERY,
        },
        config: {
          batchSize: plan.batchSize,
          weightDecay: plan.weightDecay,
          adamBeta2: plan.adamBeta2 ?? OLDER_BETA2,
          clipNorm: plan.clipNorm,
          emaDecay: plan.emaDecay ?? 0,
        },
      });
      setStoredWeights(model, weights);
    }
    await saveModel(model, dir);
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

// Steps between the engine's loss readings while the judge trains (the
// progress line's loss; training is the same for any value).
const JUDGE_LOG_EVERY = 50;

// What an imported judge's process adds to the judge's: its outputs and
// target aliases.
type ImportedScoring = Pick<AutoregressiveSpec, "outputs" | "alias">;

/** The first seed's AR model of another finished run, checked against this run's data. */
async function otherRun(
  c: ExperimentConfig,
  data: Pick<RunData, "tokenizer" | "record">,
  log: (line: string) => void,
): Promise<[Transformer, string, ImportedScoring?]> {
  const folder = new RunFolder(c.judge);
  const other = await folder.savedConfig().catch((e: Error) => {
    throw new ConfigError(`Option --judge ${c.judge}: ${e.message}`);
  });
  if (!other) {
    throw new ConfigError(
      `Option --judge ${c.judge}: no finished run there (expected auto, self, or a run folder)`,
    );
  }
  const imported = await importedJudge(c, folder, other, data);
  if (imported) return imported;
  let tokenizerId: unknown;
  try {
    const results = await readJsonBounded(
      folder.resultsPath,
      RESULTS_READ,
    ) as { tokenizer?: { id?: unknown } } | null;
    tokenizerId = results?.tokenizer?.id;
  } catch {
    throw new ConfigError(
      `Option --judge ${c.judge}: that run has not finished (no readable results.json)`,
    );
  }
  // The same data by what they are (data.json), not by the --data path.
  const record = await folder.savedData().catch((e: Error) => {
    throw new ConfigError(`Option --judge ${c.judge}: ${e.message}`);
  });
  const { differ, note } = compareData(
    { name: "this run", data: c.data, record: data.record },
    { name: c.judge, data: other.data, ...(record ? { record } : {}) },
  );
  if (differ) {
    throw new ConfigError(
      `Option --judge ${c.judge}: ${differ}; a judge must share the run's data`,
    );
  }
  if (note) log(note);
  const same = other.blockLength === c.blockLength &&
    tokenizerId === data.tokenizer.id;
  if (!same) {
    throw new ConfigError(
      `Option --judge ${c.judge}: that run used another tokenizer or block length (${tokenizerId}, ${other.blockLength}); a judge must share them (${data.tokenizer.id}, ${c.blockLength})`,
    );
  }
  if (!other.models.split(",").includes("ar")) {
    throw new ConfigError(
      `Option --judge ${c.judge}: that run trained no AR model (--models ${other.models}); a judge is a run's AR model`,
    );
  }
  const seed = other.firstSeed ?? 0; // a sweep's cell may start at seed k
  try {
    await folder.verifyWeights(seed, "ar");
    return [
      await loadModel(folder.modelDir(seed, "ar")),
      `the AR model of seed ${seed} of the run in ${c.judge}`,
    ];
  } catch (e) {
    throw new ConfigError(
      `Option --judge ${c.judge}: cannot load its AR model (${
        (e as Error).message
      })`,
    );
  }
}

/**
 * `--judge` naming a checkpoint brought in by `deno task import` (a folder
 * with `import.json`), such as a GPT-2, the judge of the literature's gen
 * PPL: trained elsewhere, so on any data, but it must read the run's ids
 * (the same tokenizer) and hold a block (a context at least as long).
 * Undefined when the folder holds no import.
 */
async function importedJudge(
  c: ExperimentConfig,
  folder: RunFolder,
  other: ExperimentConfig,
  data: Pick<RunData, "tokenizer">,
): Promise<[Transformer, string, ImportedScoring] | undefined> {
  const record = await folder.importRecord().catch((e: Error) => {
    throw new ConfigError(`Option --judge ${c.judge}: ${e.message}`);
  });
  if (record === undefined) return undefined;
  const tokenizer = await openTokenizer(other, folder).catch((e: Error) => {
    throw new ConfigError(`Option --judge ${c.judge}: ${e.message}`);
  });
  if (
    tokenizer.id !== data.tokenizer.id || other.blockLength < c.blockLength
  ) {
    throw new ConfigError(
      `Option --judge ${c.judge}: that imported model (${tokenizer.id}, context ${other.blockLength}) cannot score this run's samples (${data.tokenizer.id}, blocks of ${c.blockLength}): a judge needs the same tokenizer and a context at least as long`,
    );
  }
  const seed = other.firstSeed ?? 0;
  try {
    // Its process: the outputs its softmax runs over, the targets it reads
    // as <|endoftext|> (an import that predates them is refused).
    // Loaded as any run's model: its weights checked against their
    // recorded SHA-256 too.
    const { process, model } = await loadTrained(c.judge, { seed, model: AR });
    const { outputs, alias } = process.spec;
    return [
      model,
      `${record.architecture} imported from ${record.from} (deno task import, in ${c.judge})`,
      {
        ...(outputs !== undefined ? { outputs } : {}),
        ...(alias ? { alias } : {}),
      },
    ];
  } catch (e) {
    throw new ConfigError(
      `Option --judge ${c.judge}: cannot load its imported model (${
        (e as Error).message
      })`,
    );
  }
}

/**
 * `--judge self`: the seed's own AR model scores the samples (config
 * validation ensures it is trained), on the run's engine as the other
 * judges do: `place` hands it over where the run evaluates
 * ({@linkcode evaluationModels}), not the tfjs model a fused engine's run
 * only holds for its weights.
 *
 * @param entrants The seed's contestants.
 * @param place The `i`-th entrant's trained model where the run evaluates.
 * @returns The scorer.
 */
export function selfJudge(
  entrants: readonly Entrant[],
  place: (i: number) => Promise<EvalModel>,
): EvalContext["judge"] {
  const i = entrants.findIndex((e) => e.contestant.kind === AR.kind);
  if (i < 0) throw new Error("--judge self needs the AR model in --models");
  const ar = entrants[i].process as ReturnType<typeof AR.restore>;
  return async (x0) => ar.score(await place(i), x0);
}
