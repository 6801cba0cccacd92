/**
 * The data-constrained study's runs (`deno task study epochs`): an AR model
 * and a D3PM of the same size train for many epochs on a fixed budget of U
 * unique tokens (a prefix of the train split, by articles), both validated
 * every epoch on the same valid blocks. The AR model first gets its dropout
 * and weight decay from a small sweep on the smallest U (Gao et al. 2025:
 * without them the comparison is unfair to it).
 *
 * Like with like: the AR's figure is its exact NLL (nats/token); the D3PM's
 * is its continuous ELBO bound with one fixed set of (t, mask) draws, an
 * upper bound on its NLL, so a crossover it shows is not an artefact of the
 * bound. Training FLOPs are 6 · parameters · tokens for both (forward and
 * backward over every position; validation not counted).
 *
 * @module
 */
import { initBackend } from "@d3pm/backend";
import { flagOf } from "@d3pm/cli";
import { pathExists, writeFileAtomic } from "@d3pm/core";
import type { Blocks } from "@d3pm/data";
import { fixed } from "@d3pm/eval";
import { MetricsLog, readCheckpointState } from "@d3pm/train";
import { resolveConfig } from "../config.ts";
import type { Contestant } from "../contestant.ts";
import { AR } from "../contestants/ar.ts";
import { D3PM } from "../contestants/d3pm.ts";
import { prepareData, type RunData } from "../data.ts";
import { readTrainPrefixes } from "./_train_prefixes.ts";
import { chooseEngine, type Engine } from "../engine.ts";
import { ADDED_KEYS, ConfigError, type ExperimentConfig } from "../options.ts";
import { shellQuote } from "../_shell.ts";
import { saveSweep, studySweep, type Sweep } from "../sweep.ts";
import { FOLDER_BUSY_EXIT, replacedPath, RunFolder } from "../run_folder.ts";
import { readStudyJson, readStudyText } from "./_results.ts";
import {
  buildModel,
  enter,
  parameterTotal,
  trainContestant,
} from "../train.ts";
import {
  bestPoint,
  compareCurves,
  type CurvePoint,
  describeVerdict,
} from "./epochs_analysis.ts";
import { writeStudyReport } from "./epochs_report.ts";
import type { RunCurve, StudyScale } from "./epochs_scale.ts";
import type { Verdict } from "./epochs_analysis.ts";

/**
 * The `tiny` preset's training settings when the study's README figures were
 * measured (on the tfjs engine: the CPU engine came later), pinned so that
 * the study stays reproducible as the preset moves. `settings: "preset"`
 * takes the preset's own instead.
 */
const STUDY_TINY: Partial<ExperimentConfig> = {
  engine: "tfjs",
  lr: 2e-3,
  arLr: 4e-3,
  tMin: 0.3,
  tMax: 0.8,
  timesPer: "row",
  alibi: 0,
  alibiMode: "symmetric",
  emaDecay: 0,
  warmup: 30,
  // The preset's β2 since 2026-12-07 is 0.999; the study's figures were 0.95.
  adamBeta2: 0.95,
};

/** Thrown from the validation hook to end a run early. */
class Patience extends Error {}

/** A metrics log that also hands each validation to `onValid`. */
class WatchedLog extends MetricsLog {
  constructor(
    path: string,
    readonly onValid: (step: number, nats: number) => Promise<void>,
  ) {
    super(path);
  }
  override async append(record: Record<string, unknown>): Promise<void> {
    await super.append(record);
    if (typeof record.valid === "number") {
      await this.onValid(Number(record.step), record.valid);
    }
  }
}

/** What every run of the study shares. */
export interface StudyContext {
  /** The configuration every run starts from. */
  base: ExperimentConfig;
  /** The data (each run trains on its own prefix). */
  data: RunData;
  /** The study's sizes. */
  scale: StudyScale;
  /** The study's folder. */
  out: string;
  /** Seed of the models and batches. */
  seed: number;
  /** The training engine. */
  engine: Engine;
  /** The engine's kind, for the report. */
  trainedOn: string;
  /** Parameters of each model (the same for both). */
  params: number;
  /** The train split's unigram entropy, nats. */
  unigramEntropy: number;
  /** Writes one JSON line to stdout and the results file. */
  emit: (record: Record<string, unknown>) => Promise<void>;
  /** A resumed study's earlier lines, replayed (absent: a new study). */
  replay?: Replay;
}

/**
 * A resumed study's `epochs.jsonl` as it was: the study runs again in its
 * order, and each line it emits that equals the next one here is taken as
 * written (a finished run is not trained again, see {@linkcode replayRun});
 * at the first that does not, the file is cut there (atomically: an
 * unfinished run's lines, a torn last line go) and the study writes on.
 *
 * @example A resume that has replayed the first of two earlier lines
 * ```ts
 * import type { Replay } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 *
 * const replay: Replay = { lines: ['{"epoch":1}', '{"epoch":2'], at: 1, cut: false };
 * assertEquals(replay.lines.length - replay.at, 1); // one left to compare
 * ```
 */
export interface Replay {
  /** The earlier lines (a torn last one included: it never matches). */
  lines: string[];
  /** How many have been replayed. */
  at: number;
  /** Whether the file was cut and is written again. */
  cut: boolean;
}

/** One run of the study: which phase, U and model, and its regularisation. */
interface RunSpec {
  phase: "sweep" | "main";
  u: number;
  blocks: Blocks;
  model: "ar" | "d3pm";
  dropout: number;
  weightDecay: number;
  /** Its folder's name, when not the one made of the above (a cell's). */
  name?: string;
}

/**
 * How many epochs without a new best end a run of `model`: the scale's
 * `patience` for the AR, its `d3pmPatience` for the D3PM (absent: none).
 *
 * @param scale The study's sizes.
 * @param model Which model.
 * @returns The patience, or undefined for none.
 *
 * @example
 * ```ts
 * import { runPatience, SCALES } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * assertEquals(runPatience(SCALES.cpu, "ar"), 4);
 * assertEquals(runPatience(SCALES.cpu, "d3pm"), undefined);
 * ```
 */
export function runPatience(
  scale: StudyScale,
  model: "ar" | "d3pm",
): number | undefined {
  return model === "ar" ? scale.patience : scale.d3pmPatience;
}

/**
 * Whether a run stops after the validation of `at.epoch`: `patience` epochs
 * have passed since its best, and it is not its last epoch anyway.
 *
 * @param at This epoch, the best one so far, and the epochs planned.
 * @param patience Epochs without a new best (undefined: never stop early).
 * @returns Whether to stop.
 *
 * @example
 * ```ts
 * import { patienceSpent } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * assertEquals(patienceSpent({ epoch: 7, bestEpoch: 3, epochs: 50 }, 4), true);
 * assertEquals(patienceSpent({ epoch: 7, bestEpoch: 3, epochs: 50 }, undefined), false);
 * ```
 */
export function patienceSpent(
  at: { epoch: number; bestEpoch: number; epochs: number },
  patience: number | undefined,
): boolean {
  return patience !== undefined && at.epoch - at.bestEpoch >= patience &&
    at.epoch < at.epochs;
}

/**
 * One epoch at U = `u` of `count` blocks: its steps and tokens, refused
 * (naming the least each option takes) below one batch of blocks, or when
 * `--tokens` is less than the epoch. The plan checks with the count a
 * prefix of `u` tokens packs into (⌊u / block length⌋), a run with its
 * prefix's own.
 */
function epochOf(
  base: ExperimentConfig,
  scale: StudyScale,
  u: number,
  count: number,
): { perEpoch: number; tokensPerEpoch: number } {
  const perEpoch = Math.floor(count / scale.batchSize);
  if (perEpoch < 1) {
    throw new ConfigError(
      `Option --u ${u} gives ${count} blocks of ${base.blockLength}, fewer than one batch of ${scale.batchSize}: --u takes at least ${
        scale.batchSize * base.blockLength
      } here`,
    );
  }
  const tokensPerEpoch = perEpoch * scale.batchSize * base.blockLength;
  // Fewer tokens than one epoch would be raised to one (validation is once
  // an epoch), a run trained on more than the study says.
  if (scale.tokens < tokensPerEpoch) {
    throw new ConfigError(
      `Option --tokens ${scale.tokens} is less than one epoch at U = ${u} (${perEpoch} steps of ${scale.batchSize} blocks of ${base.blockLength}): --tokens takes at least ${tokensPerEpoch} here`,
    );
  }
  return { perEpoch, tokensPerEpoch };
}

/** A run's configuration: its epochs' steps, one validation per epoch. */
function runConfig(ctx: StudyContext, spec: RunSpec) {
  const { base, scale } = ctx;
  const { perEpoch, tokensPerEpoch } = epochOf(
    base,
    scale,
    spec.u,
    spec.blocks.count,
  );
  const epochs = Math.round(scale.tokens / tokensPerEpoch);
  const steps = epochs * perEpoch;
  const name = spec.name ?? `${spec.phase}-u${spec.u}-${spec.model}` +
      (spec.model === "ar" ? `-do${spec.dropout}-wd${spec.weightDecay}` : "");
  const config = resolveConfig({
    ...base,
    dropout: spec.dropout,
    weightDecay: spec.weightDecay,
    steps,
    validEvery: perEpoch,
    logEvery: perEpoch,
    // After every epoch's validation: a resumed study continues the run it
    // was in from its last epoch ({@linkcode resumePoint}).
    checkpointEvery: perEpoch,
    warmup: Math.min(base.warmup, steps),
    out: `${ctx.out}/${name}`,
    firstSeed: ctx.seed,
    force: true,
  });
  return { config, name, perEpoch, epochs, steps };
}

/**
 * Train one model of the study, recording and emitting each validation;
 * `held`: its folder's lock, taken already (a cell's, {@linkcode lockCell}).
 */
async function runOne(
  ctx: StudyContext,
  spec: RunSpec,
  held?: () => void,
): Promise<RunCurve> {
  const { scale } = ctx;
  const planned = runConfig(ctx, spec);
  const { name, perEpoch, epochs, steps } = planned;
  const patience = runPatience(scale, spec.model);
  const earlier = await replayRun(ctx, spec, { epochs, perEpoch, patience });
  if (earlier) {
    console.error(
      `study: ${name}: finished before (its lines in epochs.jsonl): not trained again`,
    );
    return earlier;
  }
  console.error(
    `study: ${name}: ${spec.blocks.count} blocks, ${perEpoch} steps an epoch, up to ${epochs} epochs (${steps} steps)`,
  );
  // The run a resumed study was in: from its checkpoint, its earlier
  // epochs' lines taken as written.
  const before = await resumePoint(ctx, spec, planned);
  const config = before
    ? { ...planned.config, resume: true, force: false }
    : planned.config;
  const data = { ...ctx.data, train: spec.blocks };
  const folder = new RunFolder(config.out);
  const release = await startRun(ctx, folder, { config, held });
  // From here on the lock is let go whatever throws: enter(), a replayed
  // line's emit, training.
  try {
    const contestant: Contestant = spec.model === "ar" ? AR : D3PM;
    const entrant = enter(contestant, { config, data });
    const curve: CurvePoint[] = [];
    let best = Infinity, bestEpoch = 0;
    for (const point of before ?? []) {
      const { epoch, flops, valid } = point;
      curve.push({ epoch, flops, valid });
      await ctx.emit(point); // the replay's own line: taken as written
      if (valid < best) [best, bestEpoch] = [valid, epoch];
    }
    const metrics = new WatchedLog(folder.metricsPath, async (step, valid) => {
      const epoch = step / perEpoch;
      const line = epochLine(ctx, spec, { perEpoch, epoch, valid });
      curve.push({ epoch, flops: line.flops, valid });
      await ctx.emit(line);
      if (valid < best) [best, bestEpoch] = [valid, epoch];
      else if (patienceSpent({ epoch, bestEpoch, epochs }, patience)) {
        throw new Patience();
      }
    });
    let stopped: RunCurve["stopped"] = "budget";
    try {
      const { model } = await trainContestant(entrant, ctx.seed, {
        config,
        data,
        folder,
        metrics,
        progress: true,
        engine: ctx.engine,
      });
      model.dispose();
    } catch (e) {
      if (!(e instanceof Patience)) throw e;
      stopped = "patience";
      console.error(
        `\nstudy: ${name}: stopped at epoch ${
          curve.at(-1)!.epoch
        }, ${patience} epochs after its best (epoch ${bestEpoch})`,
      );
    }
    const { blocks: _, name: _name, ...described } = spec;
    return { ...described, epochs, stopped, curve };
  } finally {
    release();
  }
}

/** How long the serial study waits before its one retry of a held run folder. */
const RUN_START_RETRY_MS = 1_000;

/**
 * Start writing a run's folder (checked, its lock taken unless `held`):
 * like an experiment's run folder, each run's is whole on its own, with its
 * data record and its BPE (loadTrained and bench:bound open it). Its lock's
 * release.
 */
async function startRun(
  ctx: StudyContext,
  folder: RunFolder,
  run: { config: ExperimentConfig; held?: () => void },
): Promise<() => void> {
  await folder.check(run.config);
  const start = () =>
    folder.start(run.config, ctx.data.record, { held: run.held });
  // A cell refused by the study's lock holds its own folder for an instant
  // (see lockCell): try once more before giving up hours of work.
  const release = await start().catch(async (e) => {
    if ((e as { exitCode?: number }).exitCode !== FOLDER_BUSY_EXIT) throw e;
    console.error(
      `study: ${(e as Error).message.split(";")[0]}: trying again in ${
        RUN_START_RETRY_MS / 1000
      } s`,
    );
    await new Promise((r) => setTimeout(r, RUN_START_RETRY_MS));
    return await start();
  });
  try {
    await ctx.data.persist(folder);
  } catch (e) {
    release();
    throw e;
  }
  return release;
}

/**
 * The `epochs.jsonl` line of `spec`'s validation after `at.epoch`: what
 * {@linkcode runOne} emits, and what {@linkcode replayRun} requires of an
 * earlier line, key for key.
 */
function epochLine(
  ctx: StudyContext,
  spec: RunSpec,
  at: { perEpoch: number; epoch: number; valid: number },
) {
  const { blocks: _, name: _name, ...described } = spec;
  const step = at.epoch * at.perEpoch;
  const tokens = step * ctx.scale.batchSize * ctx.base.blockLength;
  return {
    study: "epochs",
    ...described,
    epoch: at.epoch,
    step,
    tokens,
    flops: 6 * ctx.params * tokens,
    valid: at.valid,
    bound: spec.model === "d3pm",
  };
}

/**
 * A resumed study's run that finished before: its validation lines next in
 * the replay, epochs 1, 2, … each exactly the line {@linkcode runOne} would
 * write with its `valid` (its step, tokens, FLOPs, `study`, `bound`), up to
 * its last epoch or its patience spent, emitted again (taken as written)
 * and its curve rebuilt; undefined when the replay has none or only part
 * of it, or a line that does not hold (a torn one, another run's, a step
 * or an epoch out of place): the run continues from its checkpoint where
 * the lines before it hold ({@linkcode resumePoint}), else is trained again
 * from its start, and the file is cut at the first line it writes that
 * differs (the study's own lines are the only truth it resumes from; a line
 * it cannot vouch for is retrained, not refused).
 */
async function replayRun(
  ctx: StudyContext,
  spec: RunSpec,
  plan: { epochs: number; perEpoch: number; patience: number | undefined },
): Promise<RunCurve | undefined> {
  const r = ctx.replay;
  if (!r || r.cut) return undefined;
  const { blocks: _, name: _name, ...described } = spec;
  const points: ReturnType<typeof epochLine>[] = [];
  // As runOne's hook judges it: the last epoch, or patience spent.
  let best = Infinity, bestEpoch = 0, stopped: RunCurve["stopped"] = "budget";
  let finished = false;
  for (const point of replayedLines(ctx, spec, plan)) {
    const { epoch, valid } = point;
    points.push(point);
    finished = epoch === plan.epochs;
    if (valid < best) [best, bestEpoch] = [valid, epoch];
    else if (
      patienceSpent({ epoch, bestEpoch, epochs: plan.epochs }, plan.patience)
    ) {
      stopped = "patience";
      finished = true;
    }
    if (finished) break;
  }
  if (!finished) return undefined;
  for (const p of points) await ctx.emit(p);
  const curve = points.map(({ epoch, flops, valid }) => ({
    epoch,
    flops,
    valid,
  }));
  return { ...described, epochs: plan.epochs, stopped, curve };
}

/**
 * The lines of `spec`'s run next in a resumed study's replay that hold:
 * epochs 1, 2, … (up to its last), each exactly the line
 * {@linkcode runOne} would write with its `valid`; none without a replay,
 * or once it was cut.
 */
function replayedLines(
  ctx: StudyContext,
  spec: RunSpec,
  plan: { epochs: number; perEpoch: number },
): ReturnType<typeof epochLine>[] {
  const r = ctx.replay;
  if (!r || r.cut) return [];
  const points: ReturnType<typeof epochLine>[] = [];
  for (const line of r.lines.slice(r.at, r.at + plan.epochs)) {
    let valid: unknown;
    try {
      valid = JSON.parse(line)?.valid;
    } catch {
      break; // a torn last line
    }
    if (typeof valid !== "number") break;
    const point = epochLine(ctx, spec, {
      perEpoch: plan.perEpoch,
      epoch: points.length + 1,
      valid,
    });
    if (JSON.stringify(point) !== line) break;
    points.push(point);
  }
  return points;
}

/**
 * Where a resumed study continues the run it was in when it stopped (one
 * {@linkcode replayRun} found unfinished): its folder's checkpoint, written
 * after each epoch's validation (so the epoch's line was written first),
 * at epoch j of its plan, with its lines of epochs 1…j in the replay —
 * those lines (taken as written; the training goes on from step j × steps
 * an epoch, bit for bit as if it had not stopped, and writes the next).
 * Undefined when there is no such run, or it cannot continue — then it is
 * trained again from epoch 0, said in one line with the reason: no
 * checkpoint (stopped within its first epoch), one that cannot be read or
 * is not at an epoch this study's lines reach, or a folder whose run is
 * not this one's (its configuration differs: an older version's).
 */
async function resumePoint(
  ctx: StudyContext,
  spec: RunSpec,
  planned: ReturnType<typeof runConfig>,
): Promise<ReturnType<typeof epochLine>[] | undefined> {
  const r = ctx.replay;
  if (!r || r.cut) return undefined;
  const { config, name, perEpoch, epochs } = planned;
  const folder = new RunFolder(config.out);
  const lines = replayedLines(ctx, spec, planned);
  if (!lines.length && !await pathExists(folder.configPath)) return undefined;
  const again = (why: string) => {
    console.error(`study: ${name}: restarts from epoch 0: ${why}`);
    return undefined;
  };
  const kind = spec.model === "ar" ? AR.kind : D3PM.kind;
  const path = folder.checkpointPath(ctx.seed, kind);
  if (!await pathExists(path)) {
    return again(
      "its folder holds no checkpoint (it stopped within its first epoch)",
    );
  }
  let step: number;
  try {
    step = (await readCheckpointState(path)).step;
  } catch (e) {
    return again(`its checkpoint cannot be read (${errorText(e)})`);
  }
  const epoch = step / perEpoch;
  if (!Number.isInteger(epoch) || epoch < 1 || epoch >= epochs) {
    return again(
      `its checkpoint is at step ${step}, not the end of epoch 1 to ${
        epochs - 1
      } (${perEpoch} steps an epoch)`,
    );
  }
  if (lines.length < epoch) {
    return again(
      `its checkpoint is at epoch ${epoch}, and epochs.jsonl holds its lines to epoch ${lines.length} only`,
    );
  }
  try {
    await folder.check({ ...config, resume: true, force: false });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return again(`its folder cannot be resumed (${e.message})`);
  }
  console.error(
    `study: ${name}: continues from epoch ${epoch} of ${epochs} (its checkpoint at step ${step}; its lines of epochs 1 to ${epoch} in epochs.jsonl are kept)`,
  );
  return lines.slice(0, epoch);
}

/** An error's message, or the value as text. */
function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Options of {@linkcode runEpochsStudy}. */
export interface EpochsStudyOptions {
  /** The study's sizes. */
  scale: StudyScale;
  /** Seed of the models and batches. */
  seed: number;
  /** The study's folder. */
  out: string;
  /**
   * Run a serial study into a folder that already holds one (its
   * `epochs.jsonl` or `sweep.json`): its run folders are moved aside, its
   * `epochs.jsonl`, report and charts rewritten. Default false: refused.
   */
  force?: boolean;
  /**
   * Continue an interrupted serial study in `out` (begun with the same
   * sizes and seed: its `study.json`): the runs it finished are kept, the
   * one it was in continues from its checkpoint of its last epoch (from
   * its start where it cannot: said on stderr), then the rest.
   */
  resume?: boolean;
}

/**
 * Run the whole study: the AR's regularisation sweep on the smallest U,
 * then the AR and the D3PM at every U; write `epochs.jsonl` (also on
 * stdout), the report and its charts into `out` after every run. Every
 * run's sizes are checked before anything is written, and a folder that
 * holds a study already is refused unless `force`.
 *
 * @param options Sizes, seed and folder.
 *
 * @example A scale the experiment cannot run is refused before any work
 * ```ts
 * import { ConfigError } from "@d3pm/experiment";
 * import { runEpochsStudy, SCALES } from "@d3pm/experiment/studies";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * await assertRejects(
 *   () => runEpochsStudy({ scale: { ...SCALES.cpu, batchSize: 0 }, seed: 0, out }),
 *   ConfigError,
 *   "Option --batch-size must be an integer in [1, 65536], got 0",
 * );
 * assertEquals([...Deno.readDirSync(out)], []); // nothing written
 * await Deno.remove(out);
 * ```
 */
export async function runEpochsStudy(
  options: EpochsStudyOptions,
): Promise<void> {
  const start = performance.now();
  // Before anything is judged or moved: a second study (or a --force) in
  // this folder while one runs would move its files and write between its
  // lines.
  const unlock = await lockStudy(options.out);
  try {
    // A cell of a sweep in this folder that runs now would share run
    // folders with this study (it checked this lock before it began).
    await refuseLiveRuns(options.out, "run the study in");
    await studyUnderLock(options, start);
  } finally {
    unlock();
  }
}

/** {@linkcode runEpochsStudy}, its folder's lock held. */
async function studyUnderLock(
  options: EpochsStudyOptions,
  start: number,
): Promise<void> {
  const earlier = options.resume ? await resumable(options) : undefined;
  if (!options.force && !earlier) {
    await refuseFinished(options.out, options.scale);
  }
  const replay = earlier?.replay;
  const ctx = await studyContext(options, undefined, replay);
  // A resumed study's wall time: its earlier processes' (up to their last
  // report) and this one's.
  const earlierSeconds = earlier?.record.seconds;
  const before = typeof earlierSeconds === "number" ? earlierSeconds : 0;
  const seconds = () => before + (performance.now() - start) / 1000;
  const report = async (runs: RunCurve[], chosen?: RunCurve) => {
    const s = seconds();
    await writeStudyReport(ctx, runs, chosen, s);
    await writeFileAtomic(
      `${ctx.out}/study.json`,
      JSON.stringify({ ...studyRecord(ctx), seconds: s }) + "\n",
    );
  };
  try {
    if (earlier) refuseOtherRun(options.out, earlier.record, ctx);
    const prefixes = await checkStudy(ctx);
    await Deno.mkdir(ctx.out, { recursive: true });
    if (!replay) {
      // An earlier study's results go aside whole before anything new is
      // written: an interrupted --force loses none of them.
      await moveStudyAside(ctx.out);
      await writeFileAtomic(
        `${ctx.out}/study.json`,
        JSON.stringify(studyRecord(ctx)) + "\n",
      );
      await Deno.writeTextFile(`${ctx.out}/epochs.jsonl`, "");
    }
    const runs: RunCurve[] = [];
    const chosen = await sweep(ctx, prefixes, runs, report);
    for (const u of ctx.scale.u) {
      await compareAt(ctx, { u, blocks: prefixes.get(u)!, chosen }, runs);
      await report(runs, chosen);
    }
  } finally {
    if (ctx.engine.kind === "webgpu") ctx.engine.device.destroy();
  }
  console.error(
    `study: ${ctx.out}/report.md (${fixed(seconds() / 60, 1)} minutes)`,
  );
}

/**
 * What each of the study's modes does in its folder, for the refusals of
 * {@linkcode lockStudy}: the serial study, `--sweep`, `--collect`.
 */
const MODE_WORDS = {
  serial: "run the study in",
  plan: "plan the study's sweep in",
  collect: "collect",
} as const;

/**
 * Take the study's lock, `<out>/.lock` (the run folder's, see
 * {@linkcode RunFolder.lock}: a live holder refuses, naming it, with exit
 * code {@linkcode FOLDER_BUSY_EXIT}; a dead one's is taken over), creating
 * `out` when it is missing: the serial study holds it to its end, a
 * `--sweep` while it writes the plan, a `--collect` while it gathers the
 * cells (a cell only checks it: {@linkcode lockCell}). Its release (also
 * by {@linkcode RunFolder.releaseHeld}, the signal handler's) removes a
 * folder it created that is still empty. `--force` does not override it.
 */
async function lockStudy(
  out: string,
  mode: keyof typeof MODE_WORDS = "serial",
): Promise<() => void> {
  const created = !await Deno.lstat(out).then(() => true, () => false);
  if (created) await Deno.mkdir(out, { recursive: true });
  const removeCreated = () => {
    if (created) {
      try {
        Deno.removeSync(out); // only while empty
      } catch { /* written to, or gone */ }
    }
  };
  let unlock: () => void;
  try {
    // Its release, the signal handler's too, removes `out` while empty.
    unlock = await new RunFolder(out).lock(created);
  } catch (e) {
    removeCreated();
    const code = (e as { exitCode?: number }).exitCode;
    if (e instanceof ConfigError && code === FOLDER_BUSY_EXIT) {
      throw Object.assign(
        new ConfigError(
          `Cannot ${MODE_WORDS[mode]} ${out}: ${
            anotherStudy(e.message, mode === "collect")
          }${
            mode === "serial"
              ? " (--force and --resume do not override a live one)"
              : ""
          }`,
        ),
        { exitCode: FOLDER_BUSY_EXIT },
      );
    }
    throw e;
  }
  return unlock;
}

/**
 * A run folder's busy refusal, of a folder a study or a run may hold;
 * `wait`: for a step that cannot go elsewhere (a cell, `--collect`), whose
 * only advice is to wait for the holder or remove a stale lock.
 */
function anotherStudy(message: string, wait = false): string {
  const named = message.replace(
    "in use by another run",
    "in use by another study or run",
  );
  return wait ? named.replace(", or use --out DIR (", " (") : named;
}

/**
 * Refuse, naming its holder (exit code {@linkcode FOLDER_BUSY_EXIT}), while
 * a live process holds a folder directly in `out`: a cell of a sweep there
 * (or a run of another study) that the serial study or `--collect` would
 * write beside, or read half-written. Run under the study's lock, which a
 * cell checks after it takes its own: of the two, the later sees the other.
 */
async function refuseLiveRuns(
  out: string,
  what: (typeof MODE_WORDS)[keyof typeof MODE_WORDS],
): Promise<void> {
  const names: string[] = [];
  for await (const e of Deno.readDir(out)) {
    if (e.isDirectory) names.push(e.name);
  }
  for (const name of names.sort()) {
    const busy = await new RunFolder(`${out}/${name}`).whyBusy();
    if (busy) {
      throw Object.assign(
        new ConfigError(
          `Cannot ${what} ${out}: ${
            anotherStudy(busy.message, what === MODE_WORDS.collect)
          }`,
        ),
        { exitCode: FOLDER_BUSY_EXIT },
      );
    }
  }
}

/**
 * How long a cell waits, by default, while the study's folder is held (a
 * `--sweep` writing its plan or a `--collect` gathering the cells holds it
 * for seconds) before it fails; `D3PM_STUDY_WAIT_S` overrides it.
 *
 * @example Two minutes
 * ```ts
 * import { STUDY_WAIT_MS } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(STUDY_WAIT_MS / 1000, 120);
 * ```
 */
export const STUDY_WAIT_MS = 120_000;

/**
 * Take a cell's lock, `<out>/<cell>/.lock` (its run folder's, creating the
 * folder when missing), held from before the cell prepares to after its
 * `results.json` is written: the same cell run twice at once is refused,
 * naming the one that runs it (exit {@linkcode FOLDER_BUSY_EXIT}: busy, left
 * to that run), while other cells run beside it. The study's lock is
 * checked, not taken (cells would block each other), before and after: while
 * a serial study, a `--sweep` or a `--collect` holds `out`, the cell waits
 * for it, its own lock not held, up to `waitMs`, then fails (not busy: no
 * other run will do this cell) naming the holder.
 */
async function lockCell(
  out: string,
  cell: string,
  waitMs: number = STUDY_WAIT_MS,
): Promise<() => void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    await waitForStudy(out, cell, { deadline, waitMs });
    const unlock = await takeCellLock(out, cell);
    if (!await new RunFolder(out).whyBusy()) return unlock;
    unlock(); // the study's lock was taken in between: wait again
  }
}

/** Wait while a live process holds `out`'s lock; past `deadline`, fail. */
async function waitForStudy(
  out: string,
  cell: string,
  at: { deadline: number; waitMs: number },
): Promise<void> {
  let told = false;
  for (;;) {
    const busy = await new RunFolder(out).whyBusy();
    if (!busy) return;
    if (Date.now() >= at.deadline) {
      throw new ConfigError(
        `Cannot run cell ${cell} in ${out}: the study's folder stayed held for ${
          at.waitMs / 1000
        } s (a serial study, or a --sweep or --collect that did not end): ${
          anotherStudy(busy.message, true)
        }`,
      );
    }
    if (!told) {
      console.error(
        `study: cell ${cell}: waiting up to ${at.waitMs / 1000} s: ${
          anotherStudy(busy.message, true).split(";")[0]
        }`,
      );
      told = true;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Take `<out>/<cell>/.lock`: refused (busy, exit 75) while a live run holds it. */
async function takeCellLock(out: string, cell: string): Promise<() => void> {
  const dir = `${out}/${cell}`;
  const created = !await Deno.lstat(dir).then(() => true, () => false);
  if (created) await Deno.mkdir(dir, { recursive: true });
  try {
    return await new RunFolder(dir).lock(created);
  } catch (e) {
    if (created) await Deno.remove(dir).catch(() => {});
    const code = (e as { exitCode?: number }).exitCode;
    if (e instanceof ConfigError && code === FOLDER_BUSY_EXIT) {
      throw Object.assign(
        new ConfigError(
          `Cannot run cell ${cell} in ${out}: ${anotherStudy(e.message, true)}`,
        ),
        { exitCode: FOLDER_BUSY_EXIT },
      );
    }
    throw e;
  }
}

/** What the serial study writes in its folder besides its run folders. */
const STUDY_FILES = [
  "study.json",
  "epochs.jsonl",
  "report.md",
  "valid-vs-epochs.svg",
  "valid-vs-flops.svg",
  "sweep.svg",
] as const;

/** Where this process moved an earlier study aside, for the Ctrl-C note. */
let movedAside: string | undefined;

/**
 * Move an earlier study's files ({@linkcode STUDY_FILES}; an empty
 * `epochs.jsonl` holds nothing and stays) into one folder
 * `<out>/study.replaced-<time>`, where the report still finds its charts.
 * Its run folders are moved aside as each run starts again.
 */
async function moveStudyAside(out: string): Promise<void> {
  const present: string[] = [];
  for (const name of STUDY_FILES) {
    const info = await Deno.lstat(`${out}/${name}`).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    });
    if (info && !(name === "epochs.jsonl" && info.size === 0)) {
      present.push(name);
    }
  }
  if (!present.length) return;
  const aside = replacedPath(`${await Deno.realPath(out)}/study`);
  await Deno.mkdir(aside);
  // Synchronously: a signal (whose handler exits) cannot split them.
  for (const name of present) {
    Deno.renameSync(`${out}/${name}`, `${aside}/${name}`);
  }
  movedAside = aside;
  console.error(
    `note: moved the earlier study's ${
      present.join(", ")
    } to ${aside} (its run folders are moved aside as each run starts again)`,
  );
}

/**
 * The replay of the serial study in `options.out` to resume, refused when
 * it cannot be: no `study.json` (no study, or one begun before `--resume`)
 * or no `epochs.jsonl`, or begun with other sizes or another seed.
 */
async function resumable(
  options: EpochsStudyOptions,
): Promise<{ replay: Replay; record: StudyRecord }> {
  const { out } = options;
  const record = await readStudyJson(`${out}/study.json`, "study record") as
    | Partial<StudyRecord>
    | undefined;
  // study.json is written just before epochs.jsonl: a study stopped
  // between the two has no results yet, and resumes from the start.
  const text = await readStudyText(`${out}/epochs.jsonl`, "study's results") ??
    (record?.scale === undefined ? undefined : "");
  if (record?.scale === undefined || text === undefined) {
    throw new ConfigError(
      `Cannot resume ${out}: it holds no serial study to continue (no ${
        record?.scale === undefined ? "study.json" : "epochs.jsonl"
      }: none there, or one begun before --resume); ${AGAIN}, or choose another --out`,
    );
  }
  const want: Record<string, unknown> = {
    ...options.scale,
    seed: options.seed,
  };
  const got: Record<string, unknown> = { ...record.scale, seed: record.seed };
  // β2 is compared as the runs train with it: a study begun before
  // --adam-beta2 existed records none, its runs took its base's. (One
  // that records no base is refused below, by refuseOtherRun.)
  if (record.base !== undefined) {
    want.adamBeta2 = studyBase(options.scale).adamBeta2;
    got.adamBeta2 = record.scale.adamBeta2 ??
      { ...ADDED_KEYS, ...record.base }.adamBeta2;
  }
  const key = [...new Set([...Object.keys(want), ...Object.keys(got)])]
    .find((k) =>
      show(want[k]) !== show(got[k]) &&
      // An explicit --engine naming the engine it ran on continues it.
      !(k === "engine" && want[k] !== undefined && want[k] === record.engine)
    );
  if (key === "engine" && typeof record.engine === "string") {
    throw new ConfigError(
      `Cannot resume ${out}: it was begun with --engine ${
        show(got[key])
      } and ran on the ${record.engine} engine, not --engine ${
        show(want[key])
      }: ${
        resumeOn(record.engine, got[key] === undefined || got[key] === "auto")
      }, or ${AGAIN}`,
    );
  }
  if (key !== undefined) {
    const flag = `--${flagOf(key)}`;
    throw new ConfigError(
      `Cannot resume ${out}: it was begun with ${flag} ${
        show(got[key])
      }, not ${flag} ${
        show(want[key])
      }: give the options it was begun with, or ${AGAIN}`,
    );
  }
  const lines = text.split("\n").filter((l) => l !== "");
  return {
    replay: { lines, at: 0, cut: false },
    record: record as StudyRecord,
  };
}

/** How a refusal to resume says to continue on the engine it ran on. */
function resumeOn(engine: string, auto = true): string {
  return `resume it with --engine ${engine}${
    auto ? `, or where auto picks ${engine}` : ""
  }`;
}

/** How a refusal to resume says to start again. */
const AGAIN = "run it again from the start with --force (every run retrained)";

/** A value as a refusal names it (a list comma-separated). */
function show(v: unknown): string {
  return v === undefined
    ? "unset"
    : Array.isArray(v)
    ? v.join(",")
    : typeof v === "object" && v !== null
    ? JSON.stringify(v)
    : String(v);
}

/**
 * What the serial study records in `study.json`: its sizes and seed, the
 * engine that trained it and the configuration every run started from
 * (resolved: a preset's settings changed since are seen).
 */
interface StudyRecord {
  scale: StudyScale;
  seed: number;
  engine: string;
  base: ExperimentConfig;
  /** Wall time of its processes up to the last report, seconds. */
  seconds?: number;
}

/** The study's `study.json`. */
function studyRecord(ctx: StudyContext): StudyRecord {
  return {
    scale: ctx.scale,
    seed: ctx.seed,
    engine: ctx.trainedOn,
    base: ctx.base,
  };
}

/**
 * Refuse to resume a study on another engine than it began on, or from
 * another resolved configuration (a preset changed since): its runs would
 * not continue its curves. A `study.json` that records neither (written
 * before they were) cannot be vouched for: refused too, with `--force`.
 */
function refuseOtherRun(
  out: string,
  record: Partial<StudyRecord>,
  ctx: StudyContext,
): void {
  if (record.engine === undefined || record.base === undefined) {
    throw new ConfigError(
      `Cannot resume ${out}: its study.json records no engine or settings (written before they were recorded), so whether this one would continue its runs cannot be told; ${AGAIN}`,
    );
  }
  if (record.engine !== ctx.trainedOn) {
    throw new ConfigError(
      `Cannot resume ${out}: it ran on the ${record.engine} engine, and this one would train on ${ctx.trainedOn}: ${
        resumeOn(record.engine)
      }, or ${AGAIN}`,
    );
  }
  const want = ctx.base as unknown as Record<string, unknown>;
  // A study.json written before an option existed lacks it: its runs trained
  // with the value that option's older runs read as.
  const got = { ...ADDED_KEYS, ...record.base } as Record<string, unknown>;
  // The engine chosen (`auto`, or one named) is judged by the one it resolved
  // to, above: a study begun with auto continues with --engine cpu on cpu.
  const key = [...new Set([...Object.keys(want), ...Object.keys(got)])]
    .find((k) => k !== "engine" && show(want[k]) !== show(got[k]));
  if (key !== undefined) {
    throw new ConfigError(
      `Cannot resume ${out}: its runs started from ${key} ${
        show(got[key])
      }, and this process's from ${key} ${
        show(want[key])
      } (the preset or its settings changed since): ${AGAIN}`,
    );
  }
}

/** Whether `path` exists (synchronously: for a signal handler). */
function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The U whose comparison `out/epochs.jsonl` holds (its verdict line: both
 * runs at that U finished), in the order of `us`; none for a missing or
 * unreadable file. Synchronous: for a signal handler.
 *
 * @param out The study's folder.
 * @param us The study's U.
 * @returns The finished U.
 *
 * @example
 * ```ts
 * import { finishedUs } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * assertEquals(finishedUs(out, [2000, 4000]), []);
 * await Deno.writeTextFile(`${out}/epochs.jsonl`, '{"phase":"main","u":2000,"verdict":{}}\n{"valid":3');
 * assertEquals(finishedUs(out, [2000, 4000]), [2000]);
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export function finishedUs(out: string, us: readonly number[]): number[] {
  let text = "";
  try {
    text = Deno.readTextFileSync(`${out}/epochs.jsonl`);
  } catch {
    return [];
  }
  const done = new Set<number>();
  for (const line of text.split("\n")) {
    try {
      const r = JSON.parse(line);
      if (r?.phase === "main" && r.verdict !== undefined) done.add(r.u);
    } catch { /* a torn last line */ }
  }
  return us.filter((u) => done.has(u));
}

/**
 * What an interrupted serial study has left in `out`, and how to go on:
 * the U finished (their comparison in `epochs.jsonl` and the report) and
 * those not, and the `--resume` that continues it; before its `study.json`
 * is written, that nothing was (and where a `--force` moved the earlier
 * study, if it did).
 *
 * @param out The study's folder.
 * @param scale The study's sizes.
 * @param again The command that runs the study again, without `--force`.
 * @returns One line.
 *
 * @example
 * ```ts
 * import { epochsInterruptionNote, SCALES } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * assertEquals(
 *   epochsInterruptionNote(out, { ...SCALES.cpu, u: [2000, 4000] }, "deno task study epochs"),
 *   `interrupted during preparation: nothing was written to ${out}; run the same command again`,
 * );
 * await Deno.writeTextFile(`${out}/study.json`, "{}");
 * assertEquals(
 *   epochsInterruptionNote(out, { ...SCALES.cpu, u: [2000, 4000] }, "deno task study epochs"),
 *   `interrupted: the study in ${out} finished no U (U = 2000, 4000 not run); continue with: deno task study epochs --resume (the runs finished are kept)`,
 * );
 * const verdict = (u: number) => JSON.stringify({ phase: "main", u, verdict: {} }) + "\n";
 * await Deno.writeTextFile(`${out}/epochs.jsonl`, verdict(2000) + verdict(4000));
 * assertEquals(
 *   epochsInterruptionNote(out, { ...SCALES.cpu, u: [2000, 4000] }, "deno task study epochs"),
 *   `interrupted: ${out} holds a finished study (U = 2000, 4000 in epochs.jsonl and report.md)`,
 * );
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export function epochsInterruptionNote(
  out: string,
  scale: StudyScale,
  again: string,
): string {
  // Before study.json is written (a new study still preparing): nothing.
  if (!existsSync(`${out}/study.json`)) {
    // A --force between moving the earlier study aside and writing its own.
    return movedAside
      ? `interrupted: the earlier study in ${out} was moved to ${movedAside}, and nothing new was written; run the same command again`
      : `interrupted during preparation: nothing was written to ${out}; run the same command again`;
  }
  const done = finishedUs(out, scale.u);
  const left = scale.u.filter((u) => !done.includes(u));
  // Before the study began writing (a --force still preparing): the
  // earlier study, whole.
  if (!left.length) {
    return `interrupted: ${out} holds a finished study (U = ${
      done.join(", ")
    } in epochs.jsonl and report.md)`;
  }
  return `interrupted: the study in ${out} finished ${
    done.length
      ? `U = ${done.join(", ")} (in epochs.jsonl and report.md)`
      : "no U"
  } (U = ${
    left.join(", ")
  } not run); continue with: ${again} --resume (the runs finished are kept)`;
}

/**
 * Refuse a folder that holds a study already (a non-empty `epochs.jsonl`,
 * or a sweep's `sweep.json`): a serial study moves its results and
 * same-named run folders aside, so it needs `--force`. An unfinished one
 * (a U of its own `study.json`'s without its comparison) is named as
 * such, with `--resume` where it has a `study.json` to resume from. A
 * folder holding the study's file names but no study recognised (no
 * results, no plan, no `study.json` with sizes) is refused too: those are
 * not an earlier study's to move aside without `--force`.
 */
async function refuseFinished(out: string, scale: StudyScale): Promise<void> {
  const held: string[] = [];
  const size = async (name: string) => {
    try {
      return (await Deno.lstat(`${out}/${name}`)).size;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
  };
  if (((await size("epochs.jsonl")) ?? 0) > 0) held.push("epochs.jsonl");
  if ((await size("sweep.json")) !== undefined) held.push("sweep.json");
  let unreadable = "";
  const record = await readStudyJson(`${out}/study.json`, "study record")
    .catch((e) => {
      unreadable = e instanceof Error ? e.message : String(e);
      return undefined;
    }) as Partial<StudyRecord> | undefined;
  const own = record?.scale;
  if (!held.length) {
    if (own !== undefined) return; // begun, nothing written: moved aside
    return await refuseStrangers(out, size);
  }
  const aside =
    "epochs.jsonl, the report and charts are moved aside to study.replaced-<time>, its run folders beside themselves";
  if (held.length === 1 && held[0] === "epochs.jsonl") {
    const us = Array.isArray(own?.u) ? own.u : scale.u;
    const done = finishedUs(out, us);
    if (done.length < us.length) {
      throw new ConfigError(
        `--out ${out} holds an unfinished study (epochs.jsonl: ${
          done.length ? `U = ${done.join(", ")} finished` : "no U finished"
        }, U = ${us.filter((u) => !done.includes(u)).join(", ")} not): ${
          own !== undefined
            ? "pass --resume to continue it (with the options it was begun with: the runs finished are kept), or --force"
            : unreadable
            ? `its study.json cannot be read (${unreadable}), so it cannot be resumed: pass --force`
            : "it was begun before --resume (no study.json): pass --force"
        } to run it again from the start (every run is retrained; ${aside}), or choose another --out`,
      );
    }
  }
  throw new ConfigError(
    `--out ${out} already holds a study (${
      held.join(", ")
    }): pass --force to run the study again there (${aside}), or choose another --out`,
  );
}

/**
 * Refuse a folder holding files of the study's names (a report, a
 * `study.json` without sizes) but no study: moving them aside as an earlier
 * study's would be a guess.
 */
async function refuseStrangers(
  out: string,
  size: (name: string) => Promise<number | undefined>,
): Promise<void> {
  const present: string[] = [];
  for (const name of STUDY_FILES) {
    if (name === "epochs.jsonl") continue; // empty: nothing in it
    if ((await size(name)) !== undefined) present.push(name);
  }
  if (!present.length) return;
  throw new ConfigError(
    `--out ${out} holds ${
      present.join(", ")
    } but no study (no results in epochs.jsonl, no sweep.json, no study.json with its sizes): the study would write over them; move them away, pass --force to move them aside to study.replaced-<time>, or choose another --out`,
  );
}

/**
 * Check every U and every run of the serial study, writing nothing: U
 * within what the train split and one batch allow, each run's sizes and
 * configuration, its folder. The prefixes, by U.
 */
async function checkStudy(ctx: StudyContext): Promise<Map<number, Blocks>> {
  const { scale, base } = ctx;
  // One read of the train split for its bound and every prefix.
  const split = await readTrainPrefixes(base, ctx.data);
  checkBudgets(ctx, scale.u, split.most);
  const prefixes = new Map<number, Blocks>();
  for (const u of scale.u) {
    const { blocks, articles } = await split.prefix(u);
    prefixes.set(u, blocks);
    console.error(
      `study: U = ${u}: ${articles} articles, ${blocks.count} blocks of ${base.blockLength}`,
    );
  }
  // The largest U first: it has the most tokens an epoch, so a --tokens
  // too small is refused with the minimum every U needs.
  for (const u of [...scale.u].reverse()) {
    const blocks = prefixes.get(u)!;
    const specs: RunSpec[] = [
      ...scale.dropouts.flatMap((dropout) =>
        scale.decays.map((weightDecay): RunSpec => ({
          phase: u === scale.u[0] ? "sweep" : "main",
          u,
          blocks,
          model: "ar",
          dropout,
          weightDecay,
        }))
      ),
      {
        phase: "main",
        u,
        blocks,
        model: "d3pm",
        dropout: base.dropout,
        weightDecay: base.weightDecay,
      },
    ];
    for (const spec of specs) {
      const { config } = runConfig(ctx, spec);
      if (spec.phase === "sweep" || spec.model === "d3pm") {
        await new RunFolder(config.out).check(config);
      }
    }
  }
  return prefixes;
}

/**
 * Refuse a U outside what a run can take: at least one batch of blocks,
 * at most `most`, the train split (with BOS/EOS), checked before a prefix
 * is allocated.
 */
function checkBudgets(
  ctx: StudyContext,
  us: readonly number[],
  most: number,
): void {
  const { base, scale } = ctx;
  const least = scale.batchSize * base.blockLength;
  for (const u of us) {
    if (u < least || u > most) {
      throw new ConfigError(
        `Option --u ${u} is outside what the study can train on: --u takes values in [${least}, ${most}] here (one batch of ${scale.batchSize} blocks of ${base.blockLength} tokens, up to the ${base.preset} preset's train split with BOS/EOS)`,
      );
    }
  }
}

/**
 * The shared context: the base configuration, data, engine, results
 * lines. Writes nothing: the serial study starts its `epochs.jsonl` once
 * every run is checked.
 */
async function studyContext(
  options: EpochsStudyOptions,
  lines?: Record<string, unknown>[],
  replay?: Replay,
): Promise<StudyContext> {
  const { scale, seed, out } = options;
  const base = studyBase(scale);
  await initBackend({ prefer: base.backend });
  const engine = await chooseEngine(base);
  console.error(`engine: ${engine.reason}`);
  const data = await prepareData(base, new RunFolder(out), console.error);
  const probe = buildModel(enter(AR, { config: base, data }), seed, {
    config: base,
    data,
  });
  const params = parameterTotal(probe);
  probe.dispose();
  const results = `${out}/epochs.jsonl`;
  // A cell keeps its lines (for its results.json) and leaves the study's file alone.
  const emit = async (record: Record<string, unknown>) => {
    const line = JSON.stringify(record);
    console.log(line);
    if (lines) return void lines.push(record);
    if (replay && !replay.cut) {
      if (replay.lines[replay.at] === line) return void replay.at++;
      await writeFileAtomic(
        results,
        replay.lines.slice(0, replay.at).map((l) => l + "\n").join(""),
      );
      replay.cut = true;
    }
    await Deno.writeTextFile(results, line + "\n", { append: true });
  };
  const { unigramEntropy } = data.facts;
  return {
    base,
    data,
    scale,
    out,
    seed,
    engine,
    trainedOn: engine.kind,
    params,
    unigramEntropy,
    emit,
    ...(replay ? { replay } : {}),
  };
}

/**
 * The configuration every run of the study starts from: the preset, at
 * `tiny` with `settings: "pinned"` the settings of the study's first
 * figures, then the scale's engine, batch and validation blocks.
 *
 * @param scale The study's sizes and settings.
 * @returns The configuration.
 *
 * @example
 * ```ts
 * import { SCALES, studyBase } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const pinned = studyBase(SCALES.cpu);
 * assertEquals([pinned.alibi, pinned.lr, pinned.engine], [0, 2e-3, "tfjs"]);
 * const today = studyBase({ ...SCALES.cpu, settings: "preset", batchSize: 4 });
 * assertEquals([today.alibi, today.alibiMode, today.engine], [16, "neighbours", "auto"]);
 * assertEquals(today.adamBeta2, 0.999);
 * const then = studyBase({ ...SCALES.cpu, settings: "preset", batchSize: 4, adamBeta2: 0.95 });
 * assertEquals(then.adamBeta2, 0.95);
 * ```
 */
export function studyBase(scale: StudyScale): ExperimentConfig {
  return resolveConfig({
    preset: scale.preset,
    ...(scale.preset === "tiny" && scale.settings === "pinned"
      ? STUDY_TINY
      : {}),
    ...(scale.engine !== undefined ? { engine: scale.engine } : {}),
    ...(scale.adamBeta2 !== undefined ? { adamBeta2: scale.adamBeta2 } : {}),
    batchSize: scale.batchSize,
    validBlocks: scale.validBlocks,
    keep: "last",
    judge: "self",
    seeds: 1,
    // One validation per epoch, set per run.
    validEvery: 0,
  });
}

/** The run of the AR's sweep with the best validation (the first of equals). */
function winner(swept: readonly RunCurve[]): RunCurve {
  return swept.reduce((b, r) =>
    bestPoint(r.curve).valid < bestPoint(b.curve).valid ? r : b
  );
}

/** The AR's regularisation sweep on the smallest U; the winner's run. */
async function sweep(
  ctx: StudyContext,
  prefixes: ReadonlyMap<number, Blocks>,
  runs: RunCurve[],
  report: (runs: RunCurve[]) => Promise<void>,
): Promise<RunCurve> {
  const { scale } = ctx;
  const u0 = scale.u[0];
  const swept: RunCurve[] = [];
  for (const dropout of scale.dropouts) {
    for (const weightDecay of scale.decays) {
      const r = await runOne(ctx, {
        phase: "sweep",
        u: u0,
        blocks: prefixes.get(u0)!,
        model: "ar",
        dropout,
        weightDecay,
      });
      swept.push(r);
      if (scale.dropouts.length * scale.decays.length > 1) runs.push(r);
      await report(runs);
    }
  }
  const chosen = winner(swept);
  await ctx.emit({
    study: "epochs",
    phase: "sweep",
    chosen: { dropout: chosen.dropout, weightDecay: chosen.weightDecay },
    valid: bestPoint(chosen.curve).valid,
  });
  return chosen;
}

/** The AR (the sweep's winner's settings) and the D3PM at one U, and the verdict. */
async function compareAt(
  ctx: StudyContext,
  at: { u: number; blocks: Blocks; chosen: RunCurve },
  runs: RunCurve[],
): Promise<void> {
  const { u, blocks, chosen } = at;
  // The sweep's winner already ran on the smallest U: the same run.
  const ar = u === ctx.scale.u[0]
    ? { ...chosen, phase: "main" as const }
    : await runOne(ctx, {
      phase: "main",
      u,
      blocks,
      model: "ar",
      dropout: chosen.dropout,
      weightDecay: chosen.weightDecay,
    });
  runs.push(ar);
  const d3pm = await runOne(ctx, {
    phase: "main",
    u,
    blocks,
    model: "d3pm",
    dropout: ctx.base.dropout,
    weightDecay: ctx.base.weightDecay,
  });
  runs.push(d3pm);
  const v = compareCurves(ar.curve, d3pm.curve);
  await ctx.emit({ study: "epochs", phase: "main", u, verdict: v });
  console.error(`study: U = ${u}: ${describeVerdict(v)}`);
}

/** One run of the study as a sweep cell. */
export interface EpochsCell {
  /** Its name and folder (`sweep-u10000-ar-do0-wd0.1`, `main-u20000-d3pm`, `main-u20000-ar`). */
  name: string;
  /** The AR's sweep, or the main comparison. */
  phase: "sweep" | "main";
  /** Unique tokens. */
  u: number;
  /** Which model. */
  model: "ar" | "d3pm";
  /** The sweep's AR dropout (a main AR takes the sweep's winner's). */
  dropout?: number;
  /** The sweep's AR weight decay. */
  weightDecay?: number;
  /** 0, or 1 for a main AR run: it needs the sweep's winner. */
  wave: 0 | 1;
}

/**
 * The study's runs as cells: the AR's sweep on the smallest U and the D3PM
 * at every U (wave 0, independent), then the AR at every larger U with the
 * sweep's winner's dropout and weight decay (wave 1). The AR at the
 * smallest U is the sweep's winner itself, as in the serial study.
 *
 * @param scale The study's sizes.
 * @returns The cells, in run order.
 *
 * @example
 * ```ts
 * import { epochsCells, SCALES } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const cells = epochsCells({ ...SCALES.cpu, u: [100, 200], dropouts: [0, 0.1], decays: [0.1] });
 * assertEquals(cells.map((c) => `${c.wave} ${c.name}`), [
 *   "0 sweep-u100-ar-do0-wd0.1", "0 sweep-u100-ar-do0.1-wd0.1",
 *   "0 main-u100-d3pm", "0 main-u200-d3pm", "1 main-u200-ar",
 * ]);
 * ```
 */
export function epochsCells(scale: StudyScale): EpochsCell[] {
  const u0 = scale.u[0];
  return [
    ...scale.dropouts.flatMap((dropout) =>
      scale.decays.map((weightDecay): EpochsCell => ({
        name: `sweep-u${u0}-ar-do${dropout}-wd${weightDecay}`,
        phase: "sweep",
        u: u0,
        model: "ar",
        dropout,
        weightDecay,
        wave: 0,
      }))
    ),
    ...scale.u.map((u): EpochsCell => ({
      name: `main-u${u}-d3pm`,
      phase: "main",
      u,
      model: "d3pm",
      wave: 0,
    })),
    ...scale.u.slice(1).map((u): EpochsCell => ({
      name: `main-u${u}-ar`,
      phase: "main",
      u,
      model: "ar",
      wave: 1,
    })),
  ];
}

/** Options of {@linkcode epochsSweep}. */
export interface EpochsSweepOptions extends EpochsStudyOptions {
  /** The study's arguments that give this scale, seed and folder (after `epochs`). */
  args: readonly string[];
}

/**
 * The study as a sweep in its folder: one cell per run
 * ({@linkcode epochsCells}), each `deno run -A examples/study.ts epochs
 * ARGS --cell NAME`, then `--collect` writes `epochs.jsonl` and the report
 * as the serial study does.
 *
 * @param options The scale, seed, folder and the arguments that give them.
 * @returns The sweep.
 * @throws {ConfigError} As its cells would refuse: a U below one batch of
 *   blocks, or `--tokens` below one epoch of the largest U. (The upper
 *   bound of U, the train split, needs the data: each cell checks it.)
 *
 * @example
 * ```ts
 * import { epochsSweep, SCALES } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const s = epochsSweep({ scale: SCALES.cpu, seed: 0, out: "runs/e", args: ["--out", "runs/e"] });
 * assertEquals(s.cells.length, 6 + 3 + 2);
 * assertEquals(s.cells[10].args, ["epochs", "--out", "runs/e", "--cell", "main-u40000-ar"]);
 * assertEquals(s.cells[10].wave, 1);
 * ```
 */
export function epochsSweep(options: EpochsSweepOptions): Sweep {
  checkPlan(options.scale);
  const out = options.out.replace(/\/+$/, "");
  return studySweep(
    out,
    "examples/study.ts",
    epochsCells(options.scale).map((c) => ({
      name: c.name,
      values: {
        phase: c.phase,
        u: c.u,
        model: c.model,
        ...(c.dropout !== undefined ? { dropout: c.dropout } : {}),
        ...(c.weightDecay !== undefined ? { weightDecay: c.weightDecay } : {}),
      },
      out: `${out}/${c.name}`,
      args: ["epochs", ...options.args, "--cell", c.name],
      wave: c.wave,
    })),
    ["epochs", ...options.args, "--collect"],
  );
}

/**
 * Write the study's sweep ({@linkcode epochsSweep}) into its folder's
 * `sweep.json`, or take the same plan already there
 * ({@linkcode saveSweep}), under the study's lock (`<out>/.lock`): refused
 * while a serial study, a `--collect` or another `--sweep` holds the
 * folder, naming it (exit code {@linkcode FOLDER_BUSY_EXIT}), so that two
 * plans never race and a serial study never starts in a folder being
 * planned. A plan that fails its checks writes nothing, lock included.
 *
 * @param options The scale, seed, folder and the arguments that give them.
 * @returns The sweep as saved.
 * @throws {ConfigError} As {@linkcode epochsSweep} and
 *   {@linkcode saveSweep} refuse, or while another process holds `out`.
 *
 * @example Planned once; again while a study holds the folder: refused
 * ```ts
 * import { FOLDER_BUSY_EXIT, RunFolder } from "@d3pm/experiment";
 * import { planEpochsSweep, SCALES } from "@d3pm/experiment/studies";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * const options = { scale: SCALES.cpu, seed: 0, out, args: ["--out", out] };
 * assertEquals((await planEpochsSweep(options)).cells.length, 11);
 * const release = await new RunFolder(out).lock(); // as a serial study holds it
 * const refused = await planEpochsSweep(options).catch((e) => e);
 * assertEquals(refused.exitCode, FOLDER_BUSY_EXIT);
 * assertEquals(refused.message.startsWith(`Cannot plan the study's sweep in ${out}: ${out} is in use by another study or run (pid ${Deno.pid}`), true);
 * release();
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function planEpochsSweep(
  options: EpochsSweepOptions,
): Promise<Sweep> {
  const sweep = epochsSweep(options); // its checks, before anything is made
  const unlock = await lockStudy(sweep.dir, "plan");
  try {
    return await saveSweep(sweep);
  } finally {
    unlock();
  }
}

/**
 * What a plan can check without the data, as its cells will: every U at
 * least one batch of blocks, then `--tokens` at least one epoch of the
 * largest U (the most tokens an epoch), with the cells' messages. The
 * upper bound of U (the train split) needs the data: each cell checks it.
 */
function checkPlan(scale: StudyScale): void {
  const base = studyBase(scale);
  const epochAt = (u: number) =>
    epochOf(
      base,
      { ...scale, tokens: Infinity },
      u,
      Math.floor(u / base.blockLength),
    );
  for (const u of scale.u) epochAt(u);
  const largest = Math.max(...scale.u);
  epochOf(base, scale, largest, Math.floor(largest / base.blockLength));
}

/**
 * A cell's `--tokens` against one epoch of its U, as its run checks it,
 * with the way out: a plan written before `--sweep` checked `--tokens`
 * may hold cells below one epoch (then raised to one, now refused), which
 * no run of this version finishes, so it is planned again.
 */
function checkOlderPlan(ctx: StudyContext, u: number): void {
  const { base, scale } = ctx;
  try {
    epochOf(base, scale, u, Math.floor(u / base.blockLength));
  } catch (e) {
    if (
      !(e instanceof ConfigError) || !e.message.startsWith("Option --tokens")
    ) {
      throw e;
    }
    const largest = Math.max(...scale.u);
    const least = epochOf(
      base,
      { ...scale, tokens: Infinity },
      largest,
      Math.floor(largest / base.blockLength),
    ).tokensPerEpoch;
    throw new ConfigError(
      `${e.message}; a plan written before --sweep checked --tokens cannot finish this cell: plan the study again into a new --out with --tokens at least ${least} (one epoch of its largest U, ${largest}) and run that`,
    );
  }
}

/** A cell's `results.json`: its run, its lines of `epochs.jsonl`, its time. */
interface CellResult {
  cell: string;
  params: number;
  /** The train split's unigram entropy (absent in cells run before it was kept). */
  unigramEntropy?: number;
  seconds: number;
  run: RunCurve;
  lines: Record<string, unknown>[];
  /** The sizes and seed it ran with (absent in cells run before they were kept). */
  scale?: StudyScale;
  seed?: number;
  /** The engine that trained it (absent likewise). */
  engine?: string;
}

/** The finished cells' results by name; the missing ones named. */
async function cellResults(
  out: string,
  cells: readonly EpochsCell[],
): Promise<{ found: Map<string, CellResult>; missing: string[] }> {
  const found = new Map<string, CellResult>();
  const missing: string[] = [];
  for (const c of cells) {
    // Bounded: a results.json that is a FIFO, a device or too large is
    // refused naming it; a missing one (or another cell's) is not done.
    const r = await readStudyJson(
      `${out}/${c.name}/results.json`,
      "cell's results file",
    ) as CellResult | undefined;
    if (r?.cell === c.name) found.set(c.name, r);
    else missing.push(c.name);
  }
  return { found, missing };
}

/** Options of {@linkcode runEpochsCell}. */
export interface EpochsCellOptions extends EpochsStudyOptions {
  /** The cell's name (see {@linkcode epochsCells}). */
  cell: string;
  /**
   * How long to wait while the study's folder is held before failing
   * (default {@linkcode STUDY_WAIT_MS}).
   */
  studyWaitMs?: number;
}

/**
 * Run one cell of the study into its folder (`out/<cell>`); its run and its
 * lines land in the folder's `results.json`. A main AR cell reads the
 * sweep's winner from the sweep cells' folders.
 *
 * @param options Scale, seed, folder and the cell.
 * @throws {ConfigError} On an unknown cell, or a main AR cell whose sweep
 *   has not finished.
 *
 * @example The cells are the study's; a main AR cell waits for the sweep's winner
 * ```ts
 * import { ConfigError } from "@d3pm/experiment";
 * import { runEpochsCell, SCALES } from "@d3pm/experiment/studies";
 * import { assertRejects } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * const scale = { ...SCALES.cpu, u: [10_000, 20_000], dropouts: [0, 0.1], decays: [0.1] };
 * await assertRejects(
 *   () => runEpochsCell({ scale, seed: 0, out, cell: "main-u5-ar" }),
 *   ConfigError,
 *   'Unknown cell "main-u5-ar": --cell takes one of sweep-u10000-ar-do0-wd0.1, sweep-u10000-ar-do0.1-wd0.1, main-u10000-d3pm,',
 * );
 * await assertRejects(
 *   () => runEpochsCell({ scale, seed: 0, out, cell: "main-u20000-ar" }),
 *   ConfigError,
 *   "Cell main-u20000-ar needs the AR sweep's winner, but sweep-u10000-ar-do0-wd0.1, sweep-u10000-ar-do0.1-wd0.1 has not finished",
 * );
 * await Deno.remove(out);
 * ```
 */
export async function runEpochsCell(options: EpochsCellOptions): Promise<void> {
  const start = performance.now();
  const cells = epochsCells(options.scale);
  const cell = cells.find((c) => c.name === options.cell);
  if (!cell) {
    throw new ConfigError(
      `Unknown cell ${JSON.stringify(options.cell)}: --cell takes one of ${
        cells.map((c) => c.name).join(", ")
      }`,
    );
  }
  let chosen: RunCurve | undefined;
  if (cell.model === "ar" && cell.phase === "main") {
    const sweepCells = cells.filter((c) => c.phase === "sweep");
    const { found, missing } = await cellResults(options.out, sweepCells);
    if (missing.length) {
      throw new ConfigError(
        `Cell ${cell.name} needs the AR sweep's winner, but ${
          missing.join(", ")
        } has not finished (no results.json): run wave 0 first`,
      );
    }
    chosen = winner(sweepCells.map((c) => found.get(c.name)!.run));
  }
  const unlock = await lockCell(options.out, cell.name, options.studyWaitMs);
  try {
    await cellUnderLock(options, { cell, chosen, start, held: unlock });
  } finally {
    unlock();
  }
}

/** {@linkcode runEpochsCell}, its folder's lock held. */
async function cellUnderLock(
  options: EpochsCellOptions,
  at: {
    cell: EpochsCell;
    chosen: RunCurve | undefined;
    start: number;
    held: () => void;
  },
): Promise<void> {
  const { cell, chosen, start } = at;
  const lines: Record<string, unknown>[] = [];
  const ctx = await studyContext(options, lines);
  try {
    const split = await readTrainPrefixes(ctx.base, ctx.data);
    checkBudgets(ctx, [cell.u], split.most);
    checkOlderPlan(ctx, cell.u);
    const { blocks } = await split.prefix(cell.u);
    await Deno.mkdir(ctx.out, { recursive: true });
    const run = await runOne(ctx, {
      phase: cell.phase,
      u: cell.u,
      blocks,
      model: cell.model,
      dropout: chosen?.dropout ?? cell.dropout ?? ctx.base.dropout,
      weightDecay: chosen?.weightDecay ?? cell.weightDecay ??
        ctx.base.weightDecay,
      name: cell.name,
    }, at.held);
    const result: CellResult = {
      cell: cell.name,
      params: ctx.params,
      unigramEntropy: ctx.unigramEntropy,
      seconds: (performance.now() - start) / 1000,
      run,
      lines,
      scale: options.scale,
      seed: options.seed,
      engine: ctx.trainedOn,
    };
    // Whole or not at all: its presence marks the cell finished.
    await writeFileAtomic(
      `${ctx.out}/${cell.name}/results.json`,
      JSON.stringify(result) + "\n",
    );
  } finally {
    if (ctx.engine.kind === "webgpu") ctx.engine.device.destroy();
  }
}

/**
 * Gather the finished cells into the study's `epochs.jsonl` (also on
 * stdout), report and charts, in the serial study's order: the sweep's
 * runs, its choice, then per U the AR, the D3PM and the verdict. The wall
 * time in the report is the cells' summed time.
 *
 * @param options Scale, seed, folder.
 * @throws {ConfigError} When a cell has not finished.
 *
 * @example Cells not yet run are named, nothing written
 * ```ts
 * import { ConfigError } from "@d3pm/experiment";
 * import { collectEpochs, SCALES } from "@d3pm/experiment/studies";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * const scale = { ...SCALES.cpu, u: [10_000], dropouts: [0], decays: [0.1] };
 * await assertRejects(
 *   () => collectEpochs({ scale, seed: 0, out }),
 *   ConfigError,
 *   `Cannot collect ${out}: 2 of 2 cells have not finished (sweep-u10000-ar-do0-wd0.1, main-u10000-d3pm); see deno task sweep status ${out}`,
 * );
 * assertEquals([...Deno.readDirSync(out)], []);
 * await Deno.remove(out);
 * ```
 */
export async function collectEpochs(
  options: EpochsStudyOptions,
): Promise<void> {
  // Two collects (or a serial study) at once would write the study's files
  // over each other; a cell that runs now is not finished.
  const unlock = await lockStudy(options.out, "collect");
  try {
    await refuseLiveRuns(options.out, MODE_WORDS.collect);
    await collectUnderLock(options);
  } finally {
    unlock();
  }
}

/** {@linkcode collectEpochs}, the study's lock held. */
async function collectUnderLock(options: EpochsStudyOptions): Promise<void> {
  const { scale, seed, out } = options;
  const cells = epochsCells(scale);
  const { found, missing } = await cellResults(out, cells);
  if (missing.length) {
    throw new ConfigError(
      `Cannot collect ${out}: ${missing.length} of ${cells.length} cells have not finished (${
        missing.join(", ")
      }); see deno task sweep status ${shellQuote(out)}`,
    );
  }
  refuseOtherPlans(options, found);
  const lines: Record<string, unknown>[] = [];
  const runs: RunCurve[] = [];
  const take = (name: string): RunCurve => {
    const r = found.get(name)!;
    lines.push(...r.lines);
    return r.run;
  };
  const swept = cells.filter((c) => c.phase === "sweep").map((c) => {
    const r = take(c.name);
    if (scale.dropouts.length * scale.decays.length > 1) runs.push(r);
    return r;
  });
  const chosen = winner(swept);
  lines.push({
    study: "epochs",
    phase: "sweep",
    chosen: { dropout: chosen.dropout, weightDecay: chosen.weightDecay },
    valid: bestPoint(chosen.curve).valid,
  });
  for (const u of scale.u) {
    const ar = u === scale.u[0]
      ? { ...chosen, phase: "main" as const }
      : take(`main-u${u}-ar`);
    runs.push(ar);
    const d3pm = take(`main-u${u}-d3pm`);
    runs.push(d3pm);
    const verdict: Verdict = compareCurves(ar.curve, d3pm.curve);
    lines.push({ study: "epochs", phase: "main", u, verdict });
    console.error(`study: U = ${u}: ${describeVerdict(verdict)}`);
  }
  const text = lines.map((l) => JSON.stringify(l) + "\n").join("");
  // Whole or not at all: a reader (or a kill) never sees it torn.
  await writeFileAtomic(`${out}/epochs.jsonl`, text);
  console.log(text.trimEnd());
  const first = found.values().next().value!;
  const seconds = [...found.values()].reduce((s, r) => s + r.seconds, 0);
  const engines = new Set([...found.values()].map((r) => r.engine));
  await writeStudyReport(
    {
      out,
      scale,
      base: studyBase(scale),
      params: first.params,
      seed,
      unigramEntropy: first.unigramEntropy,
      // Cells run before the engine was kept: the report says it is unknown.
      ...(engines.has(undefined) ? {} : { trainedOn: [...engines].join(", ") }),
    },
    runs,
    chosen,
    seconds,
  );
  console.error(`study: ${out}/report.md (from ${cells.length} cells)`);
}

/**
 * Refuse a finished cell that ran with other sizes or another seed than
 * the study collects (a `--cell` run with other options): its curve is not
 * comparable. A cell whose `results.json` predates the record of its sizes
 * is judged by its own lines: its tokens a step (batch size × context) and
 * its epochs for the study's `--tokens`.
 */
function refuseOtherPlans(
  options: EpochsStudyOptions,
  found: ReadonlyMap<string, CellResult>,
): void {
  const want: Record<string, unknown> = {
    ...options.scale,
    seed: options.seed,
  };
  const text = (v: unknown) =>
    v === undefined ? "unset" : Array.isArray(v) ? v.join(",") : String(v);
  for (const [name, r] of found) {
    const again = `run it again (deno task study epochs --out ${
      shellQuote(options.out)
    } --cell ${shellQuote(name)})`;
    if (r.scale === undefined) {
      const off = legacyMismatch(options.scale, r);
      if (off) {
        throw new ConfigError(
          `Cannot collect ${options.out}: cell ${name} ${off}: ${again}`,
        );
      }
      continue;
    }
    const got: Record<string, unknown> = { ...r.scale, seed: r.seed };
    const keys = [...new Set([...Object.keys(want), ...Object.keys(got)])];
    const key = keys.find((k) => text(want[k]) !== text(got[k]));
    if (key === undefined) continue;
    const flag = `--${flagOf(key)}`;
    throw new ConfigError(
      `Cannot collect ${options.out}: cell ${name} ran with ${flag} ${
        text(got[key])
      }, the study's is ${flag} ${text(want[key])}: ${again}`,
    );
  }
}

/**
 * How a cell without a record of its sizes differs from `scale`, by its
 * first validation line (undefined: it does not, or it has none): its
 * tokens a step, and its epochs as the study then rounded them.
 */
function legacyMismatch(
  scale: StudyScale,
  r: CellResult,
): string | undefined {
  const first = r.lines.find((l) =>
    typeof l.epoch === "number" && typeof l.step === "number" &&
    typeof l.tokens === "number" && l.epoch > 0 && l.step > 0
  );
  if (!first) return undefined;
  const [epoch, step, tokens] = [
    first.epoch,
    first.step,
    first.tokens,
  ] as number[];
  const base = studyBase(scale);
  const perStep = scale.batchSize * base.blockLength;
  if (tokens / step !== perStep) {
    return `trained on ${
      tokens / step
    } tokens a step, the study's --batch-size ${scale.batchSize} and --preset ${scale.preset} make ${perStep}`;
  }
  const perEpoch = tokens / epoch;
  const epochs = Math.max(1, Math.round(scale.tokens / perEpoch));
  if (r.run.epochs !== epochs) {
    return `was planned for ${r.run.epochs} epochs of ${perEpoch} tokens, the study's --tokens ${scale.tokens} makes ${epochs}`;
  }
  return undefined;
}
