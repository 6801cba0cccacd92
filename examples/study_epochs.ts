/**
 * `deno task study epochs`: the data-constrained crossover study (issue 15,
 * after Prabhudesai et al. 2025, "Diffusion Beats Autoregressive in
 * Data-Constrained Settings"). An AR model and a D3PM of the same size train
 * for many epochs on a fixed budget of U unique tokens (a prefix of the train
 * split, by articles), both validated every epoch on the same valid blocks.
 * The AR model first gets its dropout and weight decay from a small sweep on
 * the smallest U (Gao et al. 2025: without them the comparison is unfair to
 * it). Per U the study reports each model's best epoch and validation loss,
 * and the crossover — the first epoch at which the D3PM's validation bound
 * falls below the AR's best NLL — or that there is none, with the D3PM's
 * trend at the end.
 *
 * Like with like: the AR's figure is its exact NLL (nats/token); the D3PM's
 * is its continuous ELBO bound with one fixed set of (t, mask) draws, an
 * upper bound on its NLL, so a crossover it shows is not an artefact of the
 * bound. Training FLOPs are 6 · parameters · tokens for both (forward and
 * backward over every position; validation not counted).
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { initBackend } from "@d3pm/backend";
import type { Blocks } from "@d3pm/data";
import { fixed, lineChart, markdownTable, type Series } from "@d3pm/eval";
import { MetricsLog } from "@d3pm/train";
import { writeFileAtomic } from "@d3pm/core";
import {
  ConfigError,
  type ExperimentConfig,
  resolveConfig,
} from "@d3pm/experiment";
import { prepareData, type RunData, trainPrefix } from "@d3pm/experiment";
import {
  type AnyContestant,
  arContestant,
  d3pmContestant,
  parameterTotal,
  trainContestant,
} from "@d3pm/experiment";
import { chooseEngine, type Engine } from "@d3pm/experiment";
import { RunFolder } from "@d3pm/experiment";

// ---------------------------------------------------------------------------
// The analysis: pure functions over validation curves.

/** One validation of one model. */
export interface CurvePoint {
  /** Epochs completed (passes over the U unique tokens). */
  epoch: number;
  /** Training FLOPs so far (6 · parameters · tokens). */
  flops: number;
  /** Validation nats per token (the D3PM's: its bound). */
  valid: number;
}

/**
 * The lowest point of a curve (the earliest of equals).
 *
 * @param curve Validations in epoch order, at least one.
 * @returns The best point.
 */
export function bestPoint(curve: readonly CurvePoint[]): CurvePoint {
  if (curve.length === 0) {
    throw new RangeError("Cannot find the best point of an empty curve");
  }
  return curve.reduce((b, p) => (p.valid < b.valid ? p : b));
}

/** What one value of U shows. */
export interface Verdict {
  /** The AR's best validation. */
  arBest: CurvePoint;
  /** The D3PM's best validation (bound). */
  d3pmBest: CurvePoint;
  /** The AR's minimum lies inside its run (it over-fits after it). */
  arOverfits: boolean;
  /** The AR's last validation minus its best (nats; > 0 when over-fitting). */
  arRise: number;
  /** The D3PM's minimum lies inside its run. */
  d3pmOverfits: boolean;
  /** The first D3PM validation below the AR's best; absent when none. */
  crossover?: CurvePoint;
  /** The D3PM's best minus the AR's best (nats; < 0 after a crossover). */
  gap: number;
  /**
   * The D3PM's slope over the last third of its curve (at least 3 points),
   * nats per epoch, by least squares.
   */
  slope: number;
  /**
   * Without a crossover, and with the D3PM still falling: epochs past its
   * last at which its line would reach the AR's best (a linear
   * extrapolation; the curve flattens, so this is a lower bound).
   */
  epochsToCross?: number;
}

function lastThirdSlope(curve: readonly CurvePoint[]): number {
  const n = Math.min(curve.length, Math.max(3, Math.ceil(curve.length / 3)));
  const tail = curve.slice(curve.length - n);
  if (tail.length < 2) return 0;
  const mx = tail.reduce((a, p) => a + p.epoch, 0) / tail.length;
  const my = tail.reduce((a, p) => a + p.valid, 0) / tail.length;
  let sxy = 0, sxx = 0;
  for (const p of tail) {
    sxy += (p.epoch - mx) * (p.valid - my);
    sxx += (p.epoch - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : 0;
}

/**
 * Compare the two curves of one U: best epochs, over-fitting, and the
 * crossover (the D3PM below the AR's best).
 *
 * @param ar The AR's validations, in epoch order.
 * @param d3pm The D3PM's validations, in epoch order.
 * @returns The verdict.
 */
export function compareCurves(
  ar: readonly CurvePoint[],
  d3pm: readonly CurvePoint[],
): Verdict {
  const arBest = bestPoint(ar);
  const d3pmBest = bestPoint(d3pm);
  const crossover = d3pm.find((p) => p.valid < arBest.valid);
  const slope = lastThirdSlope(d3pm);
  const gap = d3pmBest.valid - arBest.valid;
  const last = d3pm[d3pm.length - 1];
  const verdict: Verdict = {
    arBest,
    d3pmBest,
    arOverfits: arBest !== ar[ar.length - 1],
    arRise: ar[ar.length - 1].valid - arBest.valid,
    d3pmOverfits: d3pmBest !== last,
    gap,
    slope,
  };
  if (crossover) verdict.crossover = crossover;
  else if (slope < 0) {
    verdict.epochsToCross = (last.valid - arBest.valid) / -slope;
  }
  return verdict;
}

/**
 * One sentence on a verdict, for the report.
 *
 * @param v The verdict.
 * @returns The sentence.
 */
export function describeVerdict(v: Verdict): string {
  if (v.crossover) {
    return `the D3PM's bound falls below the AR's best at epoch ${v.crossover.epoch} (${
      sci(v.crossover.flops)
    } FLOPs): ≤ ${fixed(v.crossover.valid, 3)} < ${fixed(v.arBest.valid, 3)}`;
  }
  const trend = v.slope < 0
    ? `still falling ${fixed(-v.slope, 4)} nats/epoch at the end${
      v.epochsToCross !== undefined
        ? `; on that line it would need ≥ ${
          Math.ceil(v.epochsToCross)
        } more epochs`
        : ""
    }`
    : `no longer falling at the end (${fixed(v.slope, 4)} nats/epoch)`;
  return `no crossover within the budget: the D3PM's best bound is ${
    fixed(v.gap, 3)
  } nats above the AR's best; ${trend}`;
}

function sci(x: number): string {
  return x.toExponential(2).replace("e+", "e");
}

// ---------------------------------------------------------------------------
// The study.

/** Sizes of the study. */
export interface StudyScale {
  /** The experiment preset of both models. */
  preset: "micro" | "tiny" | "small" | "paper";
  /** Unique-token budgets, ascending. */
  u: number[];
  /** Training tokens of each run (epochs = tokens / U): the same compute at every U. */
  tokens: number;
  /** AR dropouts of the sweep. */
  dropouts: number[];
  /** AR weight decays of the sweep. */
  decays: number[];
  /**
   * Stop an AR run after this many epochs without a new best validation. The
   * D3PM always runs its whole budget: it sits on the unigram plateau, its
   * bound flat or rising, for hundreds of steps before it uses its context,
   * and a patience rule would cut it off there.
   */
  patience: number;
  /** Valid blocks per validation. */
  validBlocks: number;
  /** Blocks per step. */
  batchSize: number;
}

/** The presets of `--scale`. */
export const SCALES: Record<"cpu" | "gpu", StudyScale> = {
  // The default: about half an hour on a quiet 2-core CPU.
  cpu: {
    preset: "tiny",
    u: [10_000, 20_000, 40_000],
    tokens: 500_000,
    dropouts: [0, 0.1, 0.2],
    decays: [0.1, 0.5],
    patience: 4,
    validBlocks: 32,
    batchSize: 8,
  },
  // A GPU (the fused engine when there is one): a larger model, U and compute.
  gpu: {
    preset: "small",
    u: [200_000, 500_000, 1_000_000],
    tokens: 40_000_000,
    dropouts: [0, 0.1, 0.2],
    decays: [0.1, 0.5],
    patience: 10,
    validBlocks: 128,
    batchSize: 32,
  },
};

/** One finished run's curve. */
export interface RunCurve {
  phase: "sweep" | "main";
  u: number;
  model: "ar" | "d3pm";
  dropout: number;
  weightDecay: number;
  /** Epochs planned (the LR schedule's length). */
  epochs: number;
  /** Why the run ended: all epochs, or `patience` epochs without a new best. */
  stopped: "budget" | "patience";
  curve: CurvePoint[];
}

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

interface StudyContext {
  base: ExperimentConfig;
  data: RunData;
  scale: StudyScale;
  out: string;
  seed: number;
  engine: Engine;
  params: number;
  /** Writes one JSON line to stdout and the results file. */
  emit: (record: Record<string, unknown>) => Promise<void>;
}

async function runOne(
  ctx: StudyContext,
  spec: {
    phase: "sweep" | "main";
    u: number;
    blocks: Blocks;
    model: "ar" | "d3pm";
    dropout: number;
    weightDecay: number;
  },
): Promise<RunCurve> {
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
  console.error(
    `study: ${name}: ${spec.blocks.count} blocks, ${perEpoch} steps an epoch, up to ${epochs} epochs (${steps} steps)`,
  );
  const data = { ...ctx.data, train: spec.blocks };
  const folder = new RunFolder(config.out);
  await folder.check(config);
  const release = await folder.start(config);
  const contestant: AnyContestant = spec.model === "ar"
    ? arContestant(config, data)
    : d3pmContestant(config, data);
  const curve: CurvePoint[] = [];
  let best = Infinity, bestEpoch = 0;
  const metrics = new WatchedLog(folder.metricsPath, async (step, valid) => {
    const epoch = step / perEpoch;
    const tokens = step * scale.batchSize * base.blockLength;
    const point = { epoch, flops: 6 * ctx.params * tokens, valid };
    curve.push(point);
    await ctx.emit({
      study: "epochs",
      phase: spec.phase,
      u: spec.u,
      model: spec.model,
      dropout: spec.dropout,
      weightDecay: spec.weightDecay,
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
    ) {
      throw new Patience();
    }
  });
  let stopped: RunCurve["stopped"] = "budget";
  try {
    const { model } = await trainContestant(contestant, ctx.seed, {
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
  return { ...spec, epochs, stopped, curve };
}

function kilo(u: number): string {
  return u >= 1e6 ? `${u / 1e6}M` : u >= 1e3 ? `${u / 1e3}K` : `${u}`;
}

/** The figures and the report from the runs finished so far. */
async function writeReport(
  ctx: StudyContext,
  runs: RunCurve[],
  chosen: { dropout: number; weightDecay: number } | undefined,
  seconds: number,
): Promise<void> {
  const { out, scale, base } = ctx;
  const main = runs.filter((r) => r.phase === "main");
  const label = (r: RunCurve) =>
    `${r.model === "ar" ? "AR" : "D3PM ≤"} U=${kilo(r.u)}`;
  const series = (x: "epoch" | "flops"): Series[] =>
    main.map((r) => ({
      name: label(r),
      points: r.curve.map((p) => [p[x], p.valid] as [number, number]),
    }));
  const yLabel = "valid nats/token (AR: NLL, D3PM: bound)";
  await Deno.writeTextFile(
    `${out}/valid-vs-epochs.svg`,
    lineChart(series("epoch"), {
      title: "Validation loss against epochs over U unique tokens",
      xLabel: "epochs",
      yLabel,
      markers: false,
    }),
  );
  await Deno.writeTextFile(
    `${out}/valid-vs-flops.svg`,
    lineChart(series("flops"), {
      title: "Validation loss against training FLOPs (6·N·D)",
      xLabel: "training FLOPs",
      yLabel,
      logX: true,
      markers: false,
    }),
  );
  const sweep = runs.filter((r) => r.phase === "sweep");
  if (sweep.length) {
    await Deno.writeTextFile(
      `${out}/sweep.svg`,
      lineChart(
        sweep.map((r) => ({
          name: `dropout ${r.dropout}, wd ${r.weightDecay}`,
          points: r.curve.map((p) => [p.epoch, p.valid] as [number, number]),
        })),
        {
          title: `AR regularisation sweep, U=${kilo(sweep[0].u)}`,
          xLabel: "epochs",
          yLabel: "valid NLL (nats/token)",
          markers: false,
        },
      ),
    );
  }
  const sweepTable = markdownTable(
    ["dropout", "weight decay", "best epoch", "best valid NLL", "epochs run"],
    sweep.map((r) => {
      const b = bestPoint(r.curve);
      return [
        r.dropout,
        r.weightDecay,
        b.epoch,
        fixed(b.valid, 3),
        `${r.curve.at(-1)!.epoch} of ${r.epochs}`,
      ];
    }),
  );
  const rows: (string | number)[][] = [];
  const sentences: string[] = [];
  for (const u of scale.u) {
    const ar = main.find((r) => r.u === u && r.model === "ar");
    const d = main.find((r) => r.u === u && r.model === "d3pm");
    if (!ar || !d) continue;
    const v = compareCurves(ar.curve, d.curve);
    rows.push([
      kilo(u),
      `${ar.curve.at(-1)!.epoch} of ${ar.epochs}`,
      `${v.arBest.epoch}`,
      fixed(v.arBest.valid, 3),
      `${v.arOverfits ? "+" : ""}${fixed(v.arRise, 3)}`,
      `${d.curve.at(-1)!.epoch} of ${d.epochs}`,
      `${v.d3pmBest.epoch}`,
      `≤ ${fixed(v.d3pmBest.valid, 3)}`,
      v.crossover
        ? `epoch ${v.crossover.epoch} (${sci(v.crossover.flops)} FLOPs)`
        : "none",
    ]);
    sentences.push(`- U = ${kilo(u)}: ${describeVerdict(v)}.`);
  }
  const table = markdownTable(
    [
      "U",
      "AR epochs run",
      "AR best epoch",
      "AR best NLL",
      "AR last − best",
      "D3PM epochs run",
      "D3PM best epoch",
      "D3PM best bound",
      "D3PM below AR best",
    ],
    rows,
  );
  await writeFileAtomic(
    `${out}/report.md`,
    `# Data-constrained study: AR vs D3PM over many epochs

Preset ${base.preset} for both models (${ctx.params} parameters, context ${base.blockLength}, batch ${scale.batchSize}), seed ${ctx.seed}; each run trains on ${scale.tokens} tokens (epochs = tokens / U) with a cosine schedule over them, validated every epoch on the first ${base.validBlocks} valid blocks; an AR run stops after ${scale.patience} epochs without a new best, a D3PM run goes to the end (it sits on the unigram plateau for hundreds of steps first). U: a prefix of the train split, by articles. AR: exact NLL; D3PM: its ELBO bound with one fixed set of draws (an upper bound). FLOPs: 6 · parameters · training tokens. ${
      chosen
        ? `AR dropout ${chosen.dropout} and weight decay ${chosen.weightDecay}, chosen by the sweep below; the D3PM keeps the preset's (dropout ${base.dropout}, weight decay ${base.weightDecay}).`
        : ""
    } Wall time so far: ${fixed(seconds / 60, 1)} minutes.

${table}

${sentences.join("\n")}

![validation against epochs](valid-vs-epochs.svg)
![validation against FLOPs](valid-vs-flops.svg)

## AR regularisation sweep (U = ${
      sweep.length ? kilo(sweep[0].u) : "–"
    }; the lowest best valid NLL wins)

${sweepTable}

![sweep](sweep.svg)
`,
  );
}

const HELP = `deno task study epochs [options]

The data-constrained study: an AR model and a D3PM of the same size train for
many epochs on U unique tokens (a prefix of the train split, by articles),
validated every epoch. The AR's dropout and weight decay come first from a
small sweep on the smallest U. Reports each model's best epoch and loss per U,
and whether and where the D3PM's validation bound falls below the AR's best
NLL. Output in --out: epochs.jsonl (one line per run and epoch, also on
stdout; rewritten by a new run; the AR at the smallest U is the sweep's
winner, so its lines say "phase":"sweep"), report.md, valid-vs-epochs.svg,
valid-vs-flops.svg, sweep.svg, and one run folder per model.

Options:
  --scale NAME      cpu (default: tiny preset, U 10K,20K,40K, 500K tokens a
                    run; ~30 min on a quiet 2-core CPU) or gpu (small preset,
                    U 200K,500K,1M, 40M tokens a run, the fused engine on a GPU)
  --u LIST          unique-token budgets, comma-separated (overrides the scale)
  --tokens N        training tokens of each run (overrides the scale)
  --preset NAME     model preset: micro, tiny, small or paper (overrides the scale)
  --dropouts LIST   the AR sweep's dropouts (one value each: no sweep)
  --decays LIST     the AR sweep's weight decays
  --patience N      stop an AR run after N epochs without a new best (the
                    D3PM always runs its whole budget)
  --valid-blocks N  valid blocks per validation
  --seed N          seed of the models and batches (default 0)
  --out DIR         output folder (default runs/study-epochs)
  -h, --help        show this help
`;

const FLAGS = [
  "scale",
  "u",
  "tokens",
  "preset",
  "dropouts",
  "decays",
  "patience",
  "valid-blocks",
  "seed",
  "out",
];

function numberList(flag: string, raw: string, min: number, max: number) {
  const xs = raw.split(",").map((s) => Number(s.trim()));
  if (!xs.length || xs.some((x) => !Number.isFinite(x) || x < min || x > max)) {
    throw new ConfigError(
      `Option --${flag} must be comma-separated numbers in [${min}, ${max}], got "${raw}"`,
    );
  }
  return xs;
}

function integer(flag: string, raw: unknown, min: number): number {
  const x = Number(raw);
  if (!Number.isInteger(x) || x < min || String(raw).trim() === "") {
    throw new ConfigError(
      `Option --${flag} must be an integer ≥ ${min}, got ${
        JSON.stringify(raw)
      }`,
    );
  }
  return x;
}

/** Parse the study's flags (after the study's name). */
export function parseStudyArgs(
  argv: string[],
): { scale: StudyScale; scaleName: string; seed: number; out: string } | {
  help: true;
} {
  const args = parseArgs(argv, {
    string: FLAGS,
    boolean: ["help"],
    alias: { h: "help" },
  });
  if (args.help) return { help: true };
  const known = new Set(["_", ...FLAGS, "help", "h"]);
  const unknown = Object.keys(args).find((k) => !known.has(k));
  if (unknown || args._.length) {
    throw new ConfigError(
      `Unknown option ${
        unknown ? `--${unknown}` : `"${args._[0]}"`
      }: accepted ${FLAGS.map((f) => `--${f}`).join(", ")}, --help`,
    );
  }
  const scaleName = String(args.scale ?? "cpu");
  if (!(scaleName in SCALES)) {
    throw new ConfigError(
      `Option --scale must be one of ${
        Object.keys(SCALES).join(", ")
      }, got "${scaleName}"`,
    );
  }
  const scale = { ...SCALES[scaleName as keyof typeof SCALES] };
  const str = (k: string) => args[k] as string | undefined;
  if (str("u") !== undefined) {
    scale.u = numberList("u", str("u")!, 2, 1e12).map(Math.round)
      .sort((a, b) => a - b);
  }
  if (str("tokens") !== undefined) {
    scale.tokens = integer("tokens", str("tokens"), 1);
  }
  if (str("preset") !== undefined) {
    const p = str("preset")!;
    if (!["micro", "tiny", "small", "paper"].includes(p)) {
      throw new ConfigError(
        `Option --preset must be one of micro, tiny, small, paper, got "${p}"`,
      );
    }
    scale.preset = p as StudyScale["preset"];
  }
  if (str("dropouts") !== undefined) {
    scale.dropouts = numberList("dropouts", str("dropouts")!, 0, 0.99);
  }
  if (str("decays") !== undefined) {
    scale.decays = numberList("decays", str("decays")!, 0, 100);
  }
  if (str("patience") !== undefined) {
    scale.patience = integer("patience", str("patience"), 1);
  }
  if (str("valid-blocks") !== undefined) {
    scale.validBlocks = integer("valid-blocks", str("valid-blocks"), 1);
  }
  const seed = str("seed") === undefined ? 0 : integer("seed", str("seed"), 0);
  const out = str("out") ?? "runs/study-epochs";
  if (out.trim() === "") throw new ConfigError("Option --out needs a folder");
  return { scale, scaleName, seed, out };
}

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

/**
 * Run the study with its command-line arguments (those after `epochs`).
 *
 * @param argv The arguments.
 */
export async function studyEpochs(argv: string[]): Promise<void> {
  const parsed = parseStudyArgs(argv);
  if ("help" in parsed) {
    console.log(HELP);
    return;
  }
  const { scale, seed, out } = parsed;
  const start = performance.now();
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
  const probe = arContestant(base, data).build(seed);
  const params = parameterTotal(probe);
  probe.dispose();
  const results = `${out}/epochs.jsonl`;
  await Deno.writeTextFile(results, "");
  const emit = async (record: Record<string, unknown>) => {
    const line = JSON.stringify(record);
    console.log(line);
    await Deno.writeTextFile(results, line + "\n", { append: true });
  };
  const ctx: StudyContext = {
    base,
    data,
    scale,
    out,
    seed,
    engine,
    params,
    emit,
  };
  const prefixes = new Map<number, Blocks>();
  for (const u of scale.u) {
    const { blocks, articles } = await trainPrefix(base, data, u);
    prefixes.set(u, blocks);
    console.error(
      `study: U = ${u}: ${articles} articles, ${blocks.count} blocks of ${base.blockLength}`,
    );
  }
  const runs: RunCurve[] = [];
  const seconds = () => (performance.now() - start) / 1000;
  try {
    // The AR's regularisation, on the smallest U.
    const u0 = scale.u[0];
    const sweep: RunCurve[] = [];
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
        sweep.push(r);
        if (scale.dropouts.length * scale.decays.length > 1) runs.push(r);
        await writeReport(ctx, runs, undefined, seconds());
      }
    }
    const chosen = sweep.reduce((b, r) =>
      bestPoint(r.curve).valid < bestPoint(b.curve).valid ? r : b
    );
    await emit({
      study: "epochs",
      phase: "sweep",
      chosen: { dropout: chosen.dropout, weightDecay: chosen.weightDecay },
      valid: bestPoint(chosen.curve).valid,
    });
    for (const u of scale.u) {
      const blocks = prefixes.get(u)!;
      // The sweep's winner already ran on the smallest U: the same run.
      const ar = u === u0
        ? { ...chosen, phase: "main" as const }
        : await runOne(
          ctx,
          {
            phase: "main",
            u,
            blocks,
            model: "ar",
            dropout: chosen.dropout,
            weightDecay: chosen.weightDecay,
          },
        );
      runs.push(ar);
      const d3pm = await runOne(ctx, {
        phase: "main",
        u,
        blocks,
        model: "d3pm",
        dropout: base.dropout,
        weightDecay: base.weightDecay,
      });
      runs.push(d3pm);
      const v = compareCurves(ar.curve, d3pm.curve);
      await emit({ study: "epochs", phase: "main", u, verdict: v });
      console.error(`study: U = ${u}: ${describeVerdict(v)}`);
      await writeReport(ctx, runs, chosen, seconds());
    }
  } finally {
    if (engine.kind === "webgpu") engine.device.destroy();
  }
  console.error(
    `study: ${out}/report.md (${fixed(seconds() / 60, 1)} minutes)`,
  );
}
