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
import type { Blocks } from "@d3pm/data";
import { fixed } from "@d3pm/eval";
import { MetricsLog } from "@d3pm/train";
import { resolveConfig } from "../config.ts";
import type { Contestant } from "../contestant.ts";
import { AR } from "../contestants/ar.ts";
import { D3PM } from "../contestants/d3pm.ts";
import { prepareData, type RunData, trainPrefix } from "../data.ts";
import { chooseEngine, type Engine } from "../engine.ts";
import { ConfigError, type ExperimentConfig } from "../options.ts";
import { RunFolder } from "../run_folder.ts";
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

/**
 * The `tiny` preset's training settings when the study's README figures were
 * measured, pinned so that the study stays reproducible as the preset moves.
 */
const STUDY_TINY: Partial<ExperimentConfig> = {
  lr: 2e-3,
  arLr: 4e-3,
  tMin: 0.3,
  tMax: 0.8,
  timesPer: "row",
  alibi: 0,
  alibiMode: "symmetric",
  emaDecay: 0,
  warmup: 30,
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
  /** Parameters of each model (the same for both). */
  params: number;
  /** Writes one JSON line to stdout and the results file. */
  emit: (record: Record<string, unknown>) => Promise<void>;
}

/** One run of the study: which phase, U and model, and its regularisation. */
interface RunSpec {
  phase: "sweep" | "main";
  u: number;
  blocks: Blocks;
  model: "ar" | "d3pm";
  dropout: number;
  weightDecay: number;
}

/** A run's configuration: its epochs' steps, one validation per epoch. */
function runConfig(ctx: StudyContext, spec: RunSpec) {
  const { base, scale } = ctx;
  const perEpoch = Math.floor(spec.blocks.count / scale.batchSize);
  if (perEpoch < 1) {
    throw new ConfigError(
      `U = ${spec.u} gives ${spec.blocks.count} blocks of ${base.blockLength}, fewer than one batch of ${scale.batchSize}: raise --u`,
    );
  }
  const tokensPerEpoch = perEpoch * scale.batchSize * base.blockLength;
  const epochs = Math.max(1, Math.round(scale.tokens / tokensPerEpoch));
  const steps = epochs * perEpoch;
  const name = `${spec.phase}-u${spec.u}-${spec.model}` +
    (spec.model === "ar" ? `-do${spec.dropout}-wd${spec.weightDecay}` : "");
  const config = resolveConfig({
    ...base,
    dropout: spec.dropout,
    weightDecay: spec.weightDecay,
    steps,
    validEvery: perEpoch,
    logEvery: perEpoch,
    checkpointEvery: steps,
    warmup: Math.min(base.warmup, steps),
    out: `${ctx.out}/${name}`,
    force: true,
  });
  return { config, name, perEpoch, epochs, steps };
}

/** Train one model of the study, recording and emitting each validation. */
async function runOne(ctx: StudyContext, spec: RunSpec): Promise<RunCurve> {
  const { base, scale } = ctx;
  const { config, name, perEpoch, epochs, steps } = runConfig(ctx, spec);
  console.error(
    `study: ${name}: ${spec.blocks.count} blocks, ${perEpoch} steps an epoch, up to ${epochs} epochs (${steps} steps)`,
  );
  const data = { ...ctx.data, train: spec.blocks };
  const folder = new RunFolder(config.out);
  await folder.check(config);
  const release = await folder.start(config);
  const contestant: Contestant = spec.model === "ar" ? AR : D3PM;
  const entrant = enter(contestant, { config, data });
  const curve: CurvePoint[] = [];
  let best = Infinity, bestEpoch = 0;
  const metrics = new WatchedLog(folder.metricsPath, async (step, valid) => {
    const epoch = step / perEpoch;
    const tokens = step * scale.batchSize * base.blockLength;
    const point = { epoch, flops: 6 * ctx.params * tokens, valid };
    curve.push(point);
    const { blocks: _, ...described } = spec;
    await ctx.emit({
      study: "epochs",
      ...described,
      epoch,
      step,
      tokens,
      flops: point.flops,
      valid,
      bound: spec.model === "d3pm",
    });
    if (valid < best) [best, bestEpoch] = [valid, epoch];
    else if (
      spec.model === "ar" && epoch - bestEpoch >= scale.patience &&
      epoch < epochs
    ) throw new Patience();
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
      }, ${scale.patience} epochs after its best (epoch ${bestEpoch})`,
    );
  } finally {
    release();
  }
  const { blocks: _, ...described } = spec;
  return { ...described, epochs, stopped, curve };
}

/** Options of {@linkcode runEpochsStudy}. */
export interface EpochsStudyOptions {
  /** The study's sizes. */
  scale: StudyScale;
  /** Seed of the models and batches. */
  seed: number;
  /** The study's folder. */
  out: string;
}

/**
 * Run the whole study: the AR's regularisation sweep on the smallest U,
 * then the AR and the D3PM at every U; write `epochs.jsonl` (also on
 * stdout), the report and its charts into `out` after every run.
 *
 * @param options Sizes, seed and folder.
 */
export async function runEpochsStudy(
  options: EpochsStudyOptions,
): Promise<void> {
  const start = performance.now();
  const ctx = await studyContext(options);
  const seconds = () => (performance.now() - start) / 1000;
  const prefixes = new Map<number, Blocks>();
  for (const u of ctx.scale.u) {
    const { blocks, articles } = await trainPrefix(ctx.base, ctx.data, u);
    prefixes.set(u, blocks);
    console.error(
      `study: U = ${u}: ${articles} articles, ${blocks.count} blocks of ${ctx.base.blockLength}`,
    );
  }
  try {
    const runs: RunCurve[] = [];
    const chosen = await sweep(ctx, prefixes, runs, seconds);
    for (const u of ctx.scale.u) {
      await compareAt(ctx, { u, blocks: prefixes.get(u)!, chosen }, runs);
      await writeStudyReport(ctx, runs, chosen, seconds());
    }
  } finally {
    if (ctx.engine.kind === "webgpu") ctx.engine.device.destroy();
  }
  console.error(
    `study: ${ctx.out}/report.md (${fixed(seconds() / 60, 1)} minutes)`,
  );
}

/** The shared context: the base configuration, data, engine, results file. */
async function studyContext(
  options: EpochsStudyOptions,
): Promise<StudyContext> {
  const { scale, seed, out } = options;
  const base = resolveConfig({
    preset: scale.preset,
    ...(scale.preset === "tiny" ? STUDY_TINY : {}),
    batchSize: scale.batchSize,
    validBlocks: scale.validBlocks,
    keep: "last",
    judge: "self",
    seeds: 1,
    // One validation per epoch, set per run.
    validEvery: 0,
  });
  await initBackend({ prefer: base.backend });
  const engine = await chooseEngine(base);
  console.error(`engine: ${engine.reason}`);
  const data = await prepareData(base, new RunFolder(out), console.error);
  await Deno.mkdir(out, { recursive: true });
  const probe = buildModel(enter(AR, { config: base, data }), seed, {
    config: base,
    data,
  });
  const params = parameterTotal(probe);
  probe.dispose();
  const results = `${out}/epochs.jsonl`;
  await Deno.writeTextFile(results, "");
  const emit = async (record: Record<string, unknown>) => {
    const line = JSON.stringify(record);
    console.log(line);
    await Deno.writeTextFile(results, line + "\n", { append: true });
  };
  return { base, data, scale, out, seed, engine, params, emit };
}

/** The AR's regularisation sweep on the smallest U; the winner's run. */
async function sweep(
  ctx: StudyContext,
  prefixes: ReadonlyMap<number, Blocks>,
  runs: RunCurve[],
  seconds: () => number,
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
      await writeStudyReport(ctx, runs, undefined, seconds());
    }
  }
  const chosen = swept.reduce((b, r) =>
    bestPoint(r.curve).valid < bestPoint(b.curve).valid ? r : b
  );
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
