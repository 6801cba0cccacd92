/**
 * The whole comparison, as a function: data → train each contestant of
 * `--models` (from the registry) on a matched token budget → evaluate → a
 * run folder with `config.json`, `metrics.jsonl`, models, `samples.txt`,
 * `results.json`, `report.md` and SVG plots. The pieces: `RunFolder`,
 * `prepareData`, the contestants, `writeReport`.
 *
 * @module
 */
import { initBackend } from "@d3pm/backend";
import { prng, readTextBounded, writeFileAtomic } from "@d3pm/core";
import { MetricsLog } from "@d3pm/train";
import type { Transformer } from "@d3pm/transformer";
import { modelList } from "./config.ts";
import { ConfigError, type ExperimentConfig } from "./options.ts";
import { sameFolder } from "./_paths.ts";
import { checkTrainBatch, prepareData, type RunData } from "./data.ts";
import type { EvalContext } from "./evaluation.ts";
import { contestantOf } from "./registry.ts";
import {
  enter,
  type Entrant,
  parameterTotal,
  trainContestant,
} from "./train.ts";
import type { ExperimentResult, ModelResult } from "./results.ts";
import { RunFolder, type RunLock } from "./run_folder.ts";
import { finishedTraining } from "./_retrained.ts";
import { checkInitFrom } from "./init_from.ts";
import { availableMemory, checkBudget } from "./budget.ts";
import { type Judge, openJudge, selfJudge } from "./judge.ts";
import {
  chooseRunEngine,
  type Engine,
  engineFingerprint,
  type EvaluationModels,
  evaluationModels,
  modelEngine,
} from "./engine.ts";
import { formatSamples, sampleLabel, writeReport } from "./report.ts";

/**
 * The earlier seeds' samples.txt, read back to be rewritten whole: a few KiB
 * a seed, so 64 MiB is never a real run's; a FIFO or device there is refused.
 */
const SAMPLES_READ = { limit: 64 << 20, what: "samples file" } as const;

/** Options of {@linkcode runExperiment}. */
export interface RunOptions {
  /** Where progress lines go (default stderr). */
  log?: (line: string) => void;
  /** Show progress bars (default true). */
  progress?: boolean;
  /** The command line, for the report (default: `deno task experiment` with the preset). */
  command?: string;
  /**
   * How much memory is available (default {@linkcode availableMemory}).
   * Asked once, before the corpus is tokenized: once its ids are held the
   * system's figure has dropped by their size, which the estimate counts.
   */
  availableMemory?: () => number;
}

/**
 * The run's data, with what the run will cost checked before the data and
 * the models are allocated (on `engine`: a model that falls back to tfjs
 * holds its activations in host memory), and again once the corpus is
 * tokenized, before it is packed or a judge trains: its ids cost memory the
 * options alone do not tell.
 */
async function budgetedData(
  config: ExperimentConfig,
  folder: RunFolder,
  options: Pick<RunOptions, "availableMemory"> & {
    engine: "tfjs" | "webgpu" | "cpu";
    log: (line: string) => void;
  },
): Promise<RunData> {
  const { engine, log } = options;
  const available = (options.availableMemory ?? availableMemory)();
  log(checkBudget(config, { engine, available }));
  // The figure from before the ids were read: a second look would count
  // them twice (held, and in the estimate at CORPUS_ID_BYTES each).
  return await prepareData(config, folder, log, {
    // Before each split's ids are allocated (counted from its cache's
    // header): a corpus too large is refused unread, not out of memory.
    beforeHolding: (corpusIds) =>
      void checkBudget(config, {
        engine,
        corpusIds,
        corpusPartial: true,
        available,
      }),
    onTokenized: (corpusIds) =>
      log(checkBudget(config, { engine, corpusIds, available })),
  });
}

/**
 * Run the experiment described by `config`. Everything is validated (the
 * folder's state, the data, the tokenizer) before the first file is written.
 *
 * @param config A resolved configuration (see `resolveConfig`).
 * @param options Logging, progress, the command line.
 * @returns What was measured; the same is written to `config.out`.
 *
 * @example A few seconds' run of the micro preset, cut down further
 * ```ts
 * import { resolveConfig, runExperiment } from "@d3pm/experiment";
 * import { assert, assertEquals } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * const config = resolveConfig({
 *   preset: "micro", out, backend: "cpu", steps: 4, warmup: 1, batchSize: 2, checkpointEvery: 4,
 *   evalBlocks: 2, elboSamples: 1, exactBlocks: 0, diffusionSteps: 4, genSteps: "2",
 *   genTokens: 32, genBatch: 1, samples: 1,
 * });
 * const result = await runExperiment(config, { log: () => {}, progress: false });
 * assertEquals(result.results.map((r) => r.model), ["ar", "d3pm"]);
 * for (const r of result.results) {
 *   assertEquals(r.training.tokens, 4 * 2 * 32); // steps × batch × block: matched budgets
 *   assert(r.test.nll < Math.log(260)); // both beat a uniform guess over 260 ids
 * }
 * assertEquals(JSON.parse(await Deno.readTextFile(`${out}/results.json`)).config, config);
 * assert((await Deno.readTextFile(`${out}/report.md`)).includes("## Speed vs quality"));
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function runExperiment(
  config: ExperimentConfig,
  options: RunOptions = {},
): Promise<ExperimentResult> {
  const log = options.log ?? ((s: string) => console.error(s));
  const started = performance.now();
  const folder = new RunFolder(config.out);
  // The lock is taken before the (long) preparation: no other process can
  // start, resume or --force this folder meanwhile. Nothing is written into
  // it until lock.begin().
  const lock = await acquireChecked(folder, config);
  let judge: Judge | undefined;
  let engine: Engine | undefined;
  try {
    const backend = await initBackend({ prefer: config.backend }); // prints which and why
    // One engine for the run and judge (a tfjs-only contestant: tfjs alone).
    engine = await chooseRunEngine(config);
    log(`engine: ${engine.reason}`);
    const engineName = await engineFingerprint(engine, backend.reason);
    const engines = await contestantEngines(
      config,
      { engine, name: engineName },
      backend.reason,
      log,
    );
    const onTfjs = [...engines.values()].some((e) => e.engine.kind === "tfjs");
    const data = await budgetedData(config, folder, {
      ...options,
      engine: onTfjs ? "tfjs" : engine.kind,
      log,
    });
    // Before the judge, whose training can take minutes.
    await checkSources(config, data);
    const judgeStarted = performance.now();
    judge = await openJudge(config, data, {
      engine,
      ...(onTfjs && engine.kind === "cpu" ? { scoreOn: tfjsEngine } : {}),
      backend: backend.reason,
      engineName,
      log,
    });
    if (judge) log(`judge: ready in ${seconds(judgeStarted)} s`);
    await lock.begin(data.record);
    await data.persist(folder);
    const ctx: SeedContext = {
      config,
      data,
      folder,
      judge,
      engines,
      cpuAside: onTfjs && engine.kind === "cpu",
      log,
      progress: options.progress !== false,
    };
    const results: ModelResult[] = [];
    const first = config.firstSeed ?? 0;
    for (let seed = first; seed < first + config.seeds; seed++) {
      results.push(...await runSeed(ctx, seed));
    }
    const result: ExperimentResult = {
      command: options.command ??
        `deno task experiment --preset ${config.preset}`,
      config,
      backend: usedBackend(backend.reason, engines, ctx.cpuAside),
      engine: engine.reason,
      tokenizer: { id: data.tokenizer.id, vocabSize: data.tokenizer.vocabSize },
      data: data.facts,
      judge: judge?.describe ??
        "the run's own AR model (--judge self: it judges its own samples)",
      results,
      seconds: (performance.now() - started) / 1000,
    };
    await saveResult(result, folder, log);
    return result;
  } finally {
    judge?.dispose();
    if (engine?.kind === "webgpu") engine.device.destroy();
    lock.release();
  }
}

const tfjsEngine: Engine = {
  kind: "tfjs",
  reason: "tfjs (beside a model that falls back to tfjs)",
};

/**
 * The tfjs backend as results.json records it: for the models that ran on
 * tfjs (all of them, or those named), else "not used" — `--backend` under
 * `--engine auto` on a fused engine picked nothing any model ran on. A
 * model on tfjs beside the CPU engine (`judgeOnTfjs`) moves the judge to
 * tfjs too (it scores every model's samples there, the self judge included:
 * see `SeedContext.cpuAside`), and the line says so — it once named only
 * the model ("for bd3 only, on tfjs") though every gen. PPL was on tfjs.
 */
function usedBackend(
  reason: string,
  engines: ReadonlyMap<string, { engine: Engine }>,
  judgeOnTfjs: boolean,
): string {
  const kinds = [...engines].filter(([, e]) => e.engine.kind === "tfjs")
    .map(([kind]) => kind);
  if (kinds.length === engines.size) return reason;
  if (kinds.length === 0) return "not used (no model ran on tfjs)";
  return judgeOnTfjs
    ? `${reason} (for ${
      kinds.join(", ")
    }, and for the judge's scoring of every model's samples, on tfjs)`
    : `${reason} (for ${kinds.join(", ")} only, on tfjs)`;
}

/** A contestant's engine and its fingerprint (`engineFingerprint`). */
interface OwnEngine {
  engine: Engine;
  name: string;
}

/**
 * Each contestant's engine ({@linkcode modelEngine}: the run's, or tfjs for
 * one that runs on tfjs only, said on `log`) and its fingerprint.
 */
async function contestantEngines(
  config: ExperimentConfig,
  run: OwnEngine,
  backend: string,
  log: (line: string) => void,
): Promise<Map<string, OwnEngine>> {
  const engines = new Map<string, OwnEngine>();
  for (const kind of modelList(config)) {
    const own = modelEngine(run.engine, kind);
    if (own === run.engine) {
      engines.set(kind, run);
      continue;
    }
    engines.set(kind, {
      engine: own,
      name: await engineFingerprint(own, backend),
    });
    log(`engine: ${kind} on ${own.reason}`);
  }
  return engines;
}

/**
 * Refuse a train split shorter than one batch, a bad --init-from, or a
 * --judge that is the run's own folder.
 */
async function checkSources(
  config: ExperimentConfig,
  data: RunData,
): Promise<void> {
  // Before any run file exists (not the batcher's "Cannot batch").
  checkTrainBatch(config, data);
  if (modelList(config).some((k) => contestantOf(k).startsFromWeights)) {
    await checkInitFrom(config, data.tokenizer);
  }
  if (
    config.judge !== "auto" && config.judge !== "self" &&
    await sameFolder(config.judge, config.out)
  ) {
    // --force moves the run there aside after its AR was loaded as the
    // judge, and the report would name this run's AR.
    throw new ConfigError(
      `Option --judge ${config.judge} names the run's own --out folder: the report would name this run's AR as the judge; use --judge self, or move or copy the judging run elsewhere`,
    );
  }
}

/**
 * The folder's lock (`RunFolder.acquire`), and on `--resume`, checked
 * before anything is prepared or trained: every model of
 * the configuration whose checkpoint is missing but whose weights are
 * trained must have its training recorded in `process.json`
 * (`finishedTraining`), or the resume would train or evaluate the models
 * before it only to refuse it when reached. The first such model is
 * refused here, in the words it would be refused in then. Under the lock,
 * so that a run still writing the folder is refused as busy first, and no
 * model's files change between this check and its training. What it was
 * trained under (its recorded ties) is compared when it is reached: that
 * needs the data's record and the `--init-from` source's hash.
 */
async function acquireChecked(
  folder: RunFolder,
  config: ExperimentConfig,
): Promise<RunLock> {
  const lock = await folder.acquire(config);
  try {
    if (config.resume) await checkFinishedModels(config, folder);
  } catch (e) {
    lock.release();
    throw e;
  }
  return lock;
}

async function checkFinishedModels(
  config: ExperimentConfig,
  folder: RunFolder,
): Promise<void> {
  const first = config.firstSeed ?? 0;
  for (let seed = first; seed < first + config.seeds; seed++) {
    for (const kind of modelList(config)) {
      await finishedTraining(folder, seed, kind);
    }
  }
}

/** Write `results.json` and the report. */
async function saveResult(
  result: ExperimentResult,
  folder: RunFolder,
  log: (line: string) => void,
): Promise<void> {
  await writeFileAtomic(
    folder.resultsPath,
    JSON.stringify(result, null, 2) + "\n",
  );
  await writeReport(result, folder);
  log(
    `report: ${result.config.out}/report.md (${result.seconds.toFixed(0)} s)`,
  );
}

// Seconds since `t0` (a performance.now()), for the log.
const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);

/** What every seed of a run shares. */
interface SeedContext {
  config: ExperimentConfig;
  data: RunData;
  folder: RunFolder;
  judge: Judge | undefined;
  /** Each contestant's engine ({@linkcode modelEngine}) and its fingerprint. */
  engines: ReadonlyMap<string, OwnEngine>;
  /**
   * A model falls back to tfjs beside the CPU engine. A live CPU engine
   * holds the CBLAS at one thread (its threads split the products), which
   * would change that model's bits: none stays alive while it trains or
   * evaluates (each placed model is released after its evaluation, the
   * judge scores on tfjs), so its figures are those of a run on tfjs alone.
   */
  cpuAside: boolean;
  log: (line: string) => void;
  progress: boolean;
}

/** Train one contestant of a seed on its engine, saying how long it took. */
async function trainOne(
  run: SeedContext,
  e: Entrant,
  seed: number,
  metrics: MetricsLog,
  own: OwnEngine,
): Promise<{ model: Transformer; training: ModelResult["training"] }> {
  const trainStarted = performance.now();
  const trained = await trainContestant(e, seed, {
    ...run,
    metrics,
    engine: own.engine,
    engineName: own.name,
  });
  run.log(
    `seed ${seed} ${e.contestant.kind}: trained in ${
      seconds(trainStarted)
    } s (validation and saving included)`,
  );
  return trained;
}

/** Train the models of one seed, evaluate them, append their samples. */
async function runSeed(run: SeedContext, seed: number): Promise<ModelResult[]> {
  const { config, data, folder } = run;
  const entrants = modelList(config).map((k) =>
    enter(contestantOf(k), { config, data })
  );
  const engineOf = (e: (typeof entrants)[number]) =>
    run.engines.get(e.contestant.kind)!;
  const metrics = new MetricsLog(folder.metricsPath);
  const trained: { model: Transformer; training: ModelResult["training"] }[] =
    [];
  let evals: EvaluationModels | undefined;
  try {
    for (const e of entrants) {
      trained.push(await trainOne(run, e, seed, metrics, engineOf(e)));
    }
    run.log(`seed ${seed}: evaluating`);
    // On the fused engine's runs, evaluation, generation and the self judge
    // run there too, on one placed model each.
    evals = evaluationModels(
      trained.map((t) => t.model),
      entrants.map((e) => engineOf(e).engine),
    );
    const ctx: EvalContext = {
      config,
      data,
      rng: prng(10_000 + seed),
      judge: run.judge?.score ??
        selfJudge(
          entrants,
          run.cpuAside ? (i) => Promise.resolve(trained[i].model) : evals.place,
        ),
    };
    const results: ModelResult[] = [];
    const shown: string[] = [];
    for (const [i, e] of entrants.entries()) {
      const evalStarted = performance.now();
      const { result, samples } = await e.contestant.evaluate(
        e.process,
        await evals.place(i),
        { ...ctx, progress: { model: e.contestant.kind, log: run.log } },
      );
      if (run.cpuAside) await evals.release();
      run.log(
        `seed ${seed} ${e.contestant.kind}: evaluated in ${
          seconds(evalStarted)
        } s`,
      );
      const full: ModelResult = {
        ...result,
        seed,
        parameters: parameterTotal(trained[i].model),
        engine: engineOf(e).engine.reason,
        evaluatedOn: engineOf(e).name,
        training: trained[i].training,
      };
      results.push(full);
      shown.push(formatSamples(sampleLabel(full), samples, {
        length: config.blockLength,
        count: config.samples,
        decode: (x) => data.tokenizer.decode(x),
      }));
    }
    // The seeds so far and this one, written whole (never a torn append).
    const before = seed > (config.firstSeed ?? 0)
      ? await readTextBounded(folder.samplesPath, SAMPLES_READ).catch((e) => {
        if (e instanceof Deno.errors.NotFound) return "";
        throw e;
      })
      : "";
    await writeFileAtomic(
      folder.samplesPath,
      `${before}=== seed ${seed} ===\n${shown.join("\n")}\n`,
    );
    return results;
  } finally {
    await evals?.release();
    for (const t of trained) t.model.dispose();
  }
}
