/**
 * The adaptation study (`deno task study adaptation`): a D3PM started from
 * a trained AR or MLM model's weights (`--init-from`), against a D3PM and
 * an AR trained from scratch, at matched total compute. A source run trains
 * the AR and the MLM for the first `sourceSteps` of the budget; each adapted
 * D3PM trains the rest; the scratch models train the whole budget. So every
 * row of the table but the sources' costs the same tokens and FLOPs.
 *
 * Its grid is a sweep of `deno task experiment` runs, one cell each: the
 * scratch models and the source in wave 0, the adapted D3PMs (which read the
 * source's weights) in wave 1. The table is made from the cells'
 * `results.json`.
 *
 * @module
 */
import { flagOf } from "@d3pm/cli";
import { writeFileAtomic } from "@d3pm/core";
import { fixed, markdownTable, summarize } from "@d3pm/eval";
import { resolveConfig } from "../config.ts";
import { ADDED_KEYS, ConfigError } from "../options.ts";
import { PRESETS } from "../presets.ts";
import type { ExperimentResult, ModelResult } from "../results.ts";
import {
  parseSeeds,
  type StudyCell,
  studySweep,
  type Sweep,
} from "../sweep.ts";
import { readStudyJson } from "./_results.ts";
import { readStudyPlan, refuseContradictions } from "./study_plan.ts";

/** The study's sizes and folder. */
export interface AdaptationOptions {
  /** Model preset. */
  preset: "micro" | "tiny" | "small" | "paper";
  /** Seeds; each row is trained once per seed. */
  seeds: readonly number[];
  /** The study's folder (the sweep's: cells under `cells/`). */
  dir: string;
  /** Steps of the whole budget (default: the preset's). */
  steps?: number;
  /** Steps of the source models (default: half the budget). */
  sourceSteps?: number;
  /** Annealing steps of the annealed row (default: half the adaptation). */
  annealSteps?: number;
  /**
   * The training engine of every cell (default `tfjs`: the annealed row's
   * `--anneal-steps` and `--shift` run on tfjs only, and the `auto` judge
   * of gen PPL is trained on the run's engine, so one engine for every cell
   * gives every row the same judge).
   */
  engine?: string;
  /**
   * Every cell's `--gen-samples` (generated rows judged for gen PPL; 0: the
   * last timed batch, no interval), default the experiment's.
   */
  genSamples?: number;
  /** Every cell's `--exact-blocks` (0 skips the exact bound), default the experiment's. */
  exactBlocks?: number;
}

/** One row of the table: which cell and which of its models. */
export interface AdaptationRow {
  /** Its key, the cells' name prefix. */
  key: string;
  /** What it is, for people. */
  label: string;
  /** The cell kind that trains it. */
  cell: string;
  /** The model of that cell's results it reads. */
  model: "ar" | "d3pm" | "mlm";
}

/**
 * The table's rows, in order: the two from scratch, the three adapted
 * D3PMs, and the two sources alone (`sourceSteps` of the budget).
 *
 * @example
 * ```ts
 * import { ADAPTATION_ROWS } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * assertEquals(ADAPTATION_ROWS.find((r) => r.key === "source-mlm")?.model, "mlm");
 * ```
 */
export const ADAPTATION_ROWS: readonly AdaptationRow[] = [
  { key: "ar", label: "AR from scratch", cell: "ar", model: "ar" },
  { key: "d3pm", label: "D3PM from scratch", cell: "d3pm", model: "d3pm" },
  {
    key: "from-ar",
    label: "D3PM from the AR",
    cell: "from-ar",
    model: "d3pm",
  },
  {
    key: "from-ar-anneal-shift",
    label: "D3PM from the AR, annealing and shift",
    cell: "from-ar-anneal-shift",
    model: "d3pm",
  },
  {
    key: "from-mlm",
    label: "D3PM from the MLM",
    cell: "from-mlm",
    model: "d3pm",
  },
  {
    key: "source-ar",
    label: "the source AR alone",
    cell: "source",
    model: "ar",
  },
  {
    key: "source-mlm",
    label: "the source MLM alone",
    cell: "source",
    model: "mlm",
  },
];

/** A cell of the study: one experiment run. */
export interface AdaptationCell {
  /** Folder-safe name: `<kind>_seed-<s>`. */
  name: string;
  /** Its kind (`ar`, `d3pm`, `source`, `from-ar`, …). */
  kind: string;
  /** Seed. */
  seed: number;
  /** 0: needs nothing; 1: starts from the same seed's source. */
  wave: number;
  /** Its run folder. */
  out: string;
  /** The experiment's options (camelCase keys), `--resume` included. */
  options: Record<string, string | number | boolean>;
}

/**
 * The budget's three step counts, defaults filled in and checked.
 *
 * @param options Sizes, seeds and folder.
 * @returns The whole budget, the sources' steps, the annealed row's steps.
 * @throws {ConfigError} When the split leaves the adapted D3PM no steps,
 *   or the annealing is longer than its training.
 *
 * @example
 * ```ts
 * import { adaptationSteps } from "@d3pm/experiment/studies";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(adaptationSteps({ preset: "tiny", seeds: [0], dir: "d" }), { steps: 1000, sourceSteps: 500, annealSteps: 250 });
 * assertEquals(adaptationSteps({ preset: "tiny", seeds: [0], dir: "d", sourceSteps: 750 }).annealSteps, 125);
 * assertThrows(() => adaptationSteps({ preset: "tiny", seeds: [0], dir: "d", sourceSteps: 750, annealSteps: 300 }), Error, "--anneal-steps must be in [1, 250]");
 * ```
 */
export function adaptationSteps(
  options: AdaptationOptions,
): { steps: number; sourceSteps: number; annealSteps: number } {
  const steps = options.steps ?? PRESETS[options.preset].steps;
  const sourceSteps = options.sourceSteps ?? Math.floor(steps / 2);
  if (!(sourceSteps >= 1 && sourceSteps < steps)) {
    throw new ConfigError(
      `Option --source-steps must be in [1, ${
        steps - 1
      }] (below --steps ${steps}: the adapted D3PM trains the rest), got ${sourceSteps}`,
    );
  }
  const rest = steps - sourceSteps;
  const annealSteps = options.annealSteps ?? Math.floor(rest / 2);
  if (!(annealSteps >= 1 && annealSteps <= rest)) {
    throw new ConfigError(
      `Option --anneal-steps must be in [1, ${rest}] (the adapted D3PM's ${rest} steps), got ${annealSteps}`,
    );
  }
  return { steps, sourceSteps, annealSteps };
}

/**
 * The study's cells: per seed, the AR and the D3PM over the whole budget
 * and the source (AR and MLM over `sourceSteps`) in wave 0; the D3PM from
 * the AR, from the AR with annealing and shift, and from the MLM over the
 * rest in wave 1, each from the same seed's source. Every cell's whole
 * configuration is resolved here, so a bad one is refused before any runs.
 *
 * @param options Sizes, seeds and folder.
 * @returns The cells, wave 0 first, by seed.
 * @throws {ConfigError} Naming the cell a configuration fails in.
 *
 * @example
 * ```ts
 * import { adaptationCells } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const cells = adaptationCells({ preset: "tiny", seeds: [0], dir: "runs/ad" });
 * assertEquals(cells.map((c) => `${c.name}:${c.wave}`), [
 *   "ar_seed-0:0", "d3pm_seed-0:0", "source_seed-0:0",
 *   "from-ar_seed-0:1", "from-ar-anneal-shift_seed-0:1", "from-mlm_seed-0:1",
 * ]);
 * assertEquals(cells[5].options.initFrom, "runs/ad/cells/source_seed-0/seed-0/mlm");
 * assertEquals([cells[0].options.steps, cells[2].options.steps, cells[3].options.steps], [1000, 500, 500]);
 * ```
 */
export function adaptationCells(options: AdaptationOptions): AdaptationCell[] {
  const { steps, sourceSteps, annealSteps } = adaptationSteps(options);
  const dir = options.dir.replace(/\/+$/, "");
  const cell = (
    kind: string,
    seed: number,
    wave: number,
    own: Record<string, string | number | boolean>,
  ): AdaptationCell => {
    const name = `${kind}_seed-${seed}`;
    const out = `${dir}/cells/${name}`;
    return {
      name,
      kind,
      seed,
      wave,
      out,
      options: {
        preset: options.preset,
        ...(FIGURES_MADE_AT[options.preset] ?? {}),
        ...own,
        engine: options.engine ?? "tfjs",
        ...evaluationOptions(options),
        seeds: 1,
        firstSeed: seed,
        out,
        resume: true,
      },
    };
  };
  const source = (seed: number) => `${dir}/cells/source_seed-${seed}`;
  const rest = steps - sourceSteps;
  const first = options.seeds.flatMap((s) => [
    cell("ar", s, 0, { models: "ar", steps }),
    cell("d3pm", s, 0, { models: "d3pm", steps }),
    cell("source", s, 0, { models: "ar,mlm", steps: sourceSteps }),
  ]);
  const second = options.seeds.flatMap((s) => [
    cell("from-ar", s, 1, { models: "d3pm", steps: rest, initFrom: source(s) }),
    cell("from-ar-anneal-shift", s, 1, {
      models: "d3pm",
      steps: rest,
      initFrom: source(s),
      annealSteps,
      shift: true,
    }),
    cell("from-mlm", s, 1, {
      models: "d3pm",
      steps: rest,
      initFrom: `${source(s)}/seed-${s}/mlm`,
    }),
  ]);
  const cells = [...first, ...second];
  // The preset's warm-up, which the study has no option for: a cell shorter
  // than it was refused in --warmup's words.
  const warmup = resolveConfig({ preset: options.preset }).warmup;
  for (const c of cells) {
    if (Number(c.options.steps) < warmup) {
      throw new ConfigError(
        `Cell ${c.name} of the adaptation study cannot run: it trains ${c.options.steps} steps (${
          partOf(c.kind, options)
        }), fewer than the ${options.preset} preset's ${warmup} warm-up steps: ${
          longEnough(warmup, { steps, sourceSteps }, options)
        }`,
      );
    }
    try {
      resolveConfig(c.options);
    } catch (e) {
      throw new ConfigError(
        `Cell ${c.name} of the adaptation study cannot run: ${
          (e as Error).message
        }`,
      );
    }
  }
  return cells;
}

/**
 * Settings a preset has moved from since the study's figures were made
 * (docs/adaptation.md, items 1 and 2): each cell keeps them, so the study
 * still gives those figures, and a study begun before the move and continued
 * after it trains every cell alike.
 */
const FIGURES_MADE_AT: Partial<
  Record<AdaptationOptions["preset"], Record<string, number>>
> = {
  // The tiny preset's β2 is 0.999 since 2026-12-07.
  tiny: { adamBeta2: 0.95 },
};

/** Which of the study's options sets the steps of a cell of `kind`. */
function partOf(kind: string, options: AdaptationOptions): string {
  if (kind === "ar" || kind === "d3pm") return "--steps";
  const source = options.sourceSteps === undefined
    ? "half of --steps"
    : "--source-steps";
  return kind === "source" ? source : `--steps less --source-steps`;
}

/** The study's options that give every cell `warmup` steps or more. */
function longEnough(
  warmup: number,
  now: { steps: number; sourceSteps: number },
  options: AdaptationOptions,
): string {
  if (options.sourceSteps === undefined) {
    return `raise --steps to ${2 * warmup} or more (each half needs ${warmup})`;
  }
  const source = Math.max(now.sourceSteps, warmup);
  return `give --source-steps ${warmup} or more and --steps at least ${warmup} more than it (here --source-steps ${source} --steps ${
    Math.max(now.steps, source + warmup)
  }), or leave --source-steps out and raise --steps to ${2 * warmup}`;
}

/**
 * A cell's options as `deno task experiment` arguments.
 *
 * @param cell The cell.
 * @returns The arguments, in the options' order.
 *
 * @example
 * ```ts
 * import { adaptationCells, experimentArgs } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const [ar] = adaptationCells({ preset: "tiny", seeds: [2], dir: "runs/ad" });
 * assertEquals(experimentArgs(ar), [
 *   "--preset", "tiny", "--adam-beta2", "0.95", "--models", "ar", "--steps", "1000",
 *   "--engine", "tfjs", "--seeds", "1", "--first-seed", "2", "--out", "runs/ad/cells/ar_seed-2",
 *   "--resume",
 * ]);
 * ```
 */
export function experimentArgs(cell: AdaptationCell): string[] {
  return flagArgs(cell.options);
}

/**
 * Options (camelCase keys) as command-line arguments: `true` as the bare
 * flag, `false` and `undefined` left out, any other value after its flag.
 *
 * @param options The options, in the order the arguments take.
 * @returns The arguments.
 *
 * @example
 * ```ts
 * import { flagArgs } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   flagArgs({ dryRun: true, shift: false, partition: undefined, cpusPerTask: 4 }),
 *   ["--dry-run", "--cpus-per-task", "4"],
 * );
 * ```
 */
export function flagArgs(
  options: Readonly<Record<string, string | number | boolean | undefined>>,
): string[] {
  return Object.entries(options).flatMap(([key, value]) =>
    value === false || value === undefined
      ? []
      : value === true
      ? [`--${flagOf(key)}`]
      : [`--${flagOf(key)}`, String(value)]
  );
}

/**
 * The study's options spelt out in full as `deno task study adaptation`
 * arguments (after the name), so that a cell and the collect step plan the
 * same grid even if the preset's defaults move.
 *
 * @param options Sizes, seeds and folder.
 * @returns The arguments.
 *
 * @example
 * ```ts
 * import { adaptationArgs } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * assertEquals(adaptationArgs({ preset: "tiny", seeds: [0, 1], dir: "runs/ad/" }), [
 *   "--preset", "tiny", "--seeds", "0,1", "--steps", "1000", "--source-steps", "500",
 *   "--anneal-steps", "250", "--engine", "tfjs", "--dir", "runs/ad",
 * ]);
 * ```
 */
export function adaptationArgs(options: AdaptationOptions): string[] {
  const { steps, sourceSteps, annealSteps } = adaptationSteps(options);
  return [
    "--preset",
    options.preset,
    "--seeds",
    // One seed as a range: `--seeds 2` is a count (0 and 1).
    options.seeds.length === 1
      ? `${options.seeds[0]}..${options.seeds[0]}`
      : options.seeds.join(","),
    "--steps",
    String(steps),
    "--source-steps",
    String(sourceSteps),
    "--anneal-steps",
    String(annealSteps),
    "--engine",
    options.engine ?? "tfjs",
    ...flagArgs(evaluationOptions(options)),
    "--dir",
    options.dir.replace(/\/+$/, ""),
  ];
}

/** The options a plan fixes: all but the folder. */
const PLANNED = [
  "preset",
  "seeds",
  "steps",
  "sourceSteps",
  "annealSteps",
  "engine",
  "genSamples",
  "exactBlocks",
] as const;

/** The evaluation options given, those left out omitted. */
function evaluationOptions(
  options: AdaptationOptions,
): { genSamples?: number; exactBlocks?: number } {
  return {
    ...(options.genSamples !== undefined
      ? { genSamples: options.genSamples }
      : {}),
    ...(options.exactBlocks !== undefined
      ? { exactBlocks: options.exactBlocks }
      : {}),
  };
}

/**
 * The study's options as planned in `DIR/sweep.json` (its collect step's
 * arguments, as {@linkcode adaptationArgs} wrote them), or undefined where
 * the folder holds no `sweep.json`.
 *
 * @param dir The study's folder.
 * @returns The planned options, `dir` the one given.
 * @throws {ConfigError} When `sweep.json` is not a sweep or not this
 *   study's.
 *
 * @example
 * ```ts
 * import { adaptationPlan, adaptationSweep } from "@d3pm/experiment/studies";
 * import { saveSweep } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * assertEquals(await adaptationPlan(dir), undefined);
 * await saveSweep(adaptationSweep({ preset: "tiny", seeds: [1], dir, steps: 800 }));
 * assertEquals(await adaptationPlan(dir), {
 *   preset: "tiny", seeds: [1], steps: 800, sourceSteps: 400, annealSteps: 200, engine: "tfjs", dir,
 * });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function adaptationPlan(
  dir: string,
): Promise<AdaptationOptions | undefined> {
  const clean = dir.replace(/\/+$/, "");
  const plan = await readStudyPlan(clean);
  if (!plan) return undefined;
  const { args, flags: found } = plan;
  const preset = found.preset as AdaptationOptions["preset"];
  if (args[0] !== "adaptation" || !(preset in PRESETS) || !found.seeds) {
    throw new ConfigError(
      `${clean}/sweep.json is not an adaptation study's plan (its collect step is not "adaptation --preset … --collect"): give the study's own --dir`,
    );
  }
  const int = (key: string) => Number(found[key]);
  return {
    preset,
    seeds: parseSeeds(found.seeds),
    steps: int("steps"),
    sourceSteps: int("sourceSteps"),
    annealSteps: int("annealSteps"),
    engine: found.engine ?? "tfjs",
    ...(found.genSamples !== undefined
      ? { genSamples: int("genSamples") }
      : {}),
    ...(found.exactBlocks !== undefined
      ? { exactBlocks: int("exactBlocks") }
      : {}),
    dir: clean,
  };
}

/**
 * The options the collect step uses: the plan's where `DIR/sweep.json`
 * holds one, so the table is of the cells that plan ran, else those given.
 * An option given that contradicts the plan is refused.
 *
 * @param dir The study's folder.
 * @param given The options given on the command line (only those).
 * @param fallback The options to use where there is no plan.
 * @returns The options to collect with.
 * @throws {ConfigError} Naming the first option that contradicts the plan.
 *
 * @example
 * ```ts
 * import { adaptationSweep, collectOptions } from "@d3pm/experiment/studies";
 * import { saveSweep } from "@d3pm/experiment";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await saveSweep(adaptationSweep({ preset: "micro", seeds: [0], dir, steps: 800 }));
 * const fallback = { preset: "tiny" as const, seeds: [0, 1, 2], dir };
 * assertEquals((await collectOptions(dir, {}, fallback)).steps, 800);
 * await assertRejects(
 *   () => collectOptions(dir, { steps: 100 }, fallback),
 *   Error,
 *   "Option --steps 100 contradicts the study's plan",
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function collectOptions(
  dir: string,
  given: Partial<AdaptationOptions>,
  fallback: AdaptationOptions,
): Promise<AdaptationOptions> {
  const plan = await adaptationPlan(dir);
  if (!plan) return fallback;
  const text = (v: unknown) =>
    v === undefined ? undefined : Array.isArray(v) ? v.join(",") : String(v);
  const written = (o: Partial<AdaptationOptions>) =>
    Object.fromEntries(PLANNED.map((key) => [key, text(o[key])]));
  refuseContradictions(
    { file: `${plan.dir}/sweep.json`, flags: written(plan) },
    written(given),
    "--collect",
  );
  return plan;
}

/**
 * The study as a sweep whose cells run `examples/study.ts adaptation …
 * --cell NAME` (each one `deno task experiment` run, in its folder under
 * `cells/`), in two waves, and whose collect step (`--collect`) writes the
 * table. Save it with `saveSweep`; run it with `deno task sweep run DIR
 * --on local|slurm` (or `deno task study adaptation --on …`).
 *
 * @param options Sizes, seeds and folder.
 * @returns The sweep.
 *
 * @example
 * ```ts
 * import { adaptationSweep } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const s = adaptationSweep({ preset: "tiny", seeds: [0, 1, 2], dir: "runs/ad" });
 * assertEquals([s.cells.length, s.script, s.cells.filter((c) => c.wave === 1).length], [18, "examples/study.ts", 9]);
 * assertEquals(s.cells[3].args.slice(-2), ["--cell", "ar_seed-1"]);
 * assertEquals(s.collect?.at(-1), "--collect");
 * ```
 */
export function adaptationSweep(options: AdaptationOptions): Sweep {
  const common = ["adaptation", ...adaptationArgs(options)];
  const cells: StudyCell[] = adaptationCells(options).map((c) => ({
    name: c.name,
    values: {
      row: c.kind,
      model: String(c.options.models),
      seed: c.seed,
    },
    out: c.out,
    args: [...common, "--cell", c.name],
    wave: c.wave,
    // Its run is the experiment's, with --resume: a re-run resumes it.
    resumes: true,
  }));
  return studySweep(options.dir, "examples/study.ts", cells, [
    ...common,
    "--collect",
  ]);
}

/** One row's figures at one seed. */
export interface AdaptationFigures {
  /** Seed. */
  seed: number;
  /** Tokens its source trained on (0 from scratch). */
  sourceTokens: number;
  /** Tokens it trained on itself. */
  tokens: number;
  /** Test bits per token (a bound for the D3PM and the MLM). */
  testBpt: number;
  /** Whether the test figure is a bound. */
  bound: boolean;
  /** Validation, nats per token, of the weights kept (the D3PM's a bound). */
  valid?: number;
  /** The train split's unigram entropy minus `valid`, nats. */
  belowUnigram?: number;
  /** Generative perplexity under the judge. */
  genPpl: number;
  /** Its 95% interval, when the run measured one. */
  genPplInterval?: { low: number; high: number; samples: number };
  /** Mean per-sample entropy of the samples, nats. */
  entropy: number;
  /** Infilling exact-match accuracy (none for the AR). */
  infillExact?: number;
  /** The judge. */
  judge: string;
}

/** A figure over seeds. */
export interface SeedStat {
  /** Seeds it averages. */
  n: number;
  /** Mean. */
  mean: number;
  /** Sample standard deviation (0 for one seed). */
  sd: number;
}

/** One row of the table, over seeds. */
export interface AdaptationTableRow {
  /** The row's key. */
  key: string;
  /** What it is. */
  label: string;
  /** Per seed, as read from the cell's `results.json`. */
  seeds: AdaptationFigures[];
  /** Means ± sd over `seeds` (absent for a row none of whose cells finished). */
  testBpt?: SeedStat;
  /** Validation of the kept weights. */
  valid?: SeedStat;
  /** Validation below the unigram entropy. */
  belowUnigram?: SeedStat;
  /** Generative perplexity. */
  genPpl?: SeedStat;
  /** Sample entropy. */
  entropy?: SeedStat;
  /** Infill exact match. */
  infillExact?: SeedStat;
}

/** The study's table, as `adaptation.json` holds it. */
export interface AdaptationTable {
  /** The study's settings. */
  preset: string;
  /** Steps of the whole budget. */
  steps: number;
  /** Steps of the sources. */
  sourceSteps: number;
  /** Annealing steps of the annealed row. */
  annealSteps: number;
  /** Seeds asked for. */
  seeds: number[];
  /** The rows, in {@linkcode ADAPTATION_ROWS}' order. */
  rows: AdaptationTableRow[];
  /** Cells without a `results.json` (not run, or not finished). */
  missing: string[];
  /**
   * Cells whose `results.json` is of other options than the plan's (steps,
   * seed, `--init-from`, annealing), each with why; not in the rows. Absent
   * when there are none.
   */
  mismatched?: string[];
}

/**
 * Why a cell's results are not of its planned run (its resolved config's
 * steps, seed, source or annealing differ), or undefined when they are.
 */
function mismatchOf(
  r: ExperimentResult,
  c: AdaptationCell,
): string | undefined {
  const got = r.config as Partial<ExperimentResult["config"]> | undefined;
  if (!got) return `${c.name} (its results.json has no config)`;
  // The source by its place in the study's folder: the folder may be
  // spelt otherwise (relative, absolute) than when the cell ran.
  const place = (p: unknown) =>
    typeof p === "string" && p !== "" ? p.slice(p.lastIndexOf("/cells/")) : "";
  const checks: [string, unknown, unknown][] = [
    ["steps", got.steps, c.options.steps],
    ["first seed", got.firstSeed, c.seed],
    ["seeds", got.seeds, 1],
    ["init from", place(got.initFrom), place(c.options.initFrom)],
    ["anneal steps", got.annealSteps ?? 0, c.options.annealSteps ?? 0],
    // A results.json from before the option holds no β2: its older-runs value.
    [
      "AdamW β2",
      got.adamBeta2 ?? ADDED_KEYS.adamBeta2,
      resolveConfig(c.options as Partial<ExperimentResult["config"]>).adamBeta2,
    ],
  ];
  const off = checks.filter(([, a, b]) => a !== b).map(([what, a, b]) =>
    `${what} ${a === "" ? "none" : a}, planned ${b === "" ? "none" : b}`
  );
  return off.length ? `${c.name} (${off.join("; ")})` : undefined;
}

/** A row's figures from its cell's results, or undefined if absent. */
function figuresOf(
  r: ExperimentResult,
  row: AdaptationRow,
  seed: number,
): AdaptationFigures | undefined {
  const m: ModelResult | undefined = r.results.find((x) =>
    x.model === row.model && x.seed === seed
  );
  if (!m) return undefined;
  const v = m.training.valid;
  const valid = v ? (v.kept === "best" ? v.best : v.final) : undefined;
  const interval = m.generation.genPplInterval;
  return {
    seed,
    sourceTokens: m.training.initFrom?.tokens ?? 0,
    tokens: m.training.tokens,
    testBpt: m.test.bpt,
    bound: m.test.bound,
    ...(valid !== undefined
      ? { valid, belowUnigram: r.data.unigramEntropy - valid }
      : {}),
    genPpl: m.generation.genPpl,
    ...(interval ? { genPplInterval: interval } : {}),
    entropy: m.generation.entropy,
    ...(m.infill ? { infillExact: m.infill.accuracy } : {}),
    judge: r.judge,
  };
}

/** Mean and sd of the defined values, or undefined when none is. */
function stat(values: (number | undefined)[]): SeedStat | undefined {
  const xs = values.filter((x): x is number => x !== undefined);
  if (xs.length === 0) return undefined;
  const { n, mean, sd } = summarize(xs);
  return { n, mean, sd };
}

/**
 * Read the finished cells' `results.json` into the table (each row, each
 * seed: the row's model and seed of its cell's results).
 *
 * @param options Sizes, seeds and folder.
 * @returns The table; cells not finished are listed in `missing`.
 *
 * @example Nothing run yet: every cell missing, every row empty
 * ```ts
 * import { adaptationTable } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * const t = await adaptationTable({ preset: "tiny", seeds: [0], dir });
 * assertEquals([t.missing.length, t.rows.length, t.rows[0].seeds.length], [6, 7, 0]);
 * await Deno.remove(dir);
 * ```
 */
export async function adaptationTable(
  options: AdaptationOptions,
): Promise<AdaptationTable> {
  const { steps, sourceSteps, annealSteps } = adaptationSteps(options);
  const cells = adaptationCells(options);
  const results = new Map<string, ExperimentResult>();
  const missing: string[] = [];
  const mismatched: string[] = [];
  for (const c of cells) {
    const r = await readStudyJson(
      `${c.out}/results.json`,
      "cell's results file",
    ) as ExperimentResult | undefined;
    const off = r && mismatchOf(r, c);
    if (r === undefined) missing.push(c.name);
    else if (off) mismatched.push(off);
    else results.set(c.name, r);
  }
  const rows = ADAPTATION_ROWS.map((row): AdaptationTableRow => {
    const seeds = options.seeds.flatMap((s) => {
      const r = results.get(`${row.cell}_seed-${s}`);
      const f = r ? figuresOf(r, row, s) : undefined;
      return f ? [f] : [];
    });
    const of = (pick: (f: AdaptationFigures) => number | undefined) =>
      stat(seeds.map(pick));
    const stats = {
      testBpt: of((f) => f.testBpt),
      valid: of((f) => f.valid),
      belowUnigram: of((f) => f.belowUnigram),
      genPpl: of((f) => f.genPpl),
      entropy: of((f) => f.entropy),
      infillExact: of((f) => f.infillExact),
    };
    return {
      key: row.key,
      label: row.label,
      seeds,
      ...Object.fromEntries(
        Object.entries(stats).filter(([, v]) => v !== undefined),
      ),
    };
  });
  return {
    preset: options.preset,
    steps,
    sourceSteps,
    annealSteps,
    seeds: [...options.seeds],
    rows,
    missing,
    ...(mismatched.length ? { mismatched } : {}),
  };
}

/** `mean ± sd` with `digits`, `–` when absent; a bound gets `≤ `. */
function cell(s: SeedStat | undefined, digits: number, le = false): string {
  if (!s) return "–";
  return `${le ? "≤ " : ""}${fixed(s.mean, digits)} ± ${fixed(s.sd, digits)}`;
}

/** The sources' share of the budget: `${a} of the ${b} steps (75%)`. */
function sourceShare(sourceSteps: number, steps: number): string {
  const percent = Number((100 * sourceSteps / steps).toFixed(1));
  return `${sourceSteps} of the ${steps} steps (${percent}%)`;
}

/** The paragraphs on cells left out: not finished, not of this plan. */
function cellNotes(t: AdaptationTable): string {
  const missing = t.missing.length
    ? `\n**Not finished** (no results.json; their rows average the other seeds): ${
      t.missing.join(", ")
    }.\n`
    : "";
  const mismatched = t.mismatched?.length
    ? `\n**Not of this plan** (results.json of other options; left out of the rows): ${
      t.mismatched.join(", ")
    }.\n`
    : "";
  return missing + mismatched;
}

/**
 * The table as Markdown: one line per row, mean ± sd over its seeds, with
 * a paragraph saying what was run and what is missing.
 *
 * @param t The table.
 * @returns The Markdown.
 *
 * @example
 * ```ts
 * import { adaptationMarkdown, type AdaptationTable } from "@d3pm/experiment/studies";
 * import { assertStringIncludes } from "@std/assert";
 * const t: AdaptationTable = {
 *   preset: "tiny", steps: 1000, sourceSteps: 500, annealSteps: 250, seeds: [0], missing: ["ar_seed-0"],
 *   rows: [{ key: "d3pm", label: "D3PM from scratch", seeds: [], testBpt: { n: 2, mean: 7.7, sd: 0.01 } }],
 * };
 * assertStringIncludes(adaptationMarkdown(t), "| D3PM from scratch | 2 | – | ≤ 7.700 ± 0.010 |");
 * ```
 */
export function adaptationMarkdown(t: AdaptationTable): string {
  const bounds = new Map(ADAPTATION_ROWS.map((r) => [r.key, r.model]));
  const lines = t.rows.map((r) => {
    const model = bounds.get(r.key);
    const first = r.seeds[0];
    const intervals = r.seeds.map((f) =>
      f.genPplInterval
        ? `${fixed(f.genPplInterval.low, 0)}–${fixed(f.genPplInterval.high, 0)}`
        : "–"
    );
    return [
      r.label,
      r.seeds.length ? String(r.seeds.length) : String(r.testBpt?.n ?? 0),
      first ? `${first.sourceTokens} + ${first.tokens}` : "–",
      cell(r.testBpt, 3, model !== "ar"),
      cell(r.valid, 3, model === "d3pm"),
      cell(r.belowUnigram, 2),
      cell(r.genPpl, 0),
      intervals.length ? intervals.join(", ") : "–",
      cell(r.entropy, 2),
      cell(r.infillExact, 3),
    ];
  });
  const judges = [
    ...new Set(t.rows.flatMap((r) => r.seeds.map((f) => f.judge))),
  ];
  // Gen PPL compares only under one judge: with several, which row had which.
  const under = judges.length < 2
    ? ""
    : ` Gen PPL compares only under one judge: ${
      judges.map((j, i) =>
        `judge ${i + 1} (${j}) scored ${
          t.rows.filter((r) => r.seeds.some((f) => f.judge === j)).map((r) =>
            r.label
          ).join(", ")
        }`
      ).join("; ")
    }.`;
  return `# The adaptation study — ${t.preset} preset

The budget: ${t.steps} steps a model. The source trains an AR and an MLM for
${t.sourceSteps} steps; each adapted D3PM starts from the same seed's source
and trains the other ${t.steps - t.sourceSteps} (the annealed row relaxes its
attention from causal to bidirectional over its first ${t.annealSteps} steps and
predicts the next token at each position, DiffuGPT's shift). The rows from
scratch and the adapted rows cost the same tokens and FLOPs; the sources alone,
${sourceShare(t.sourceSteps, t.steps)}. Seeds: ${
    t.seeds.join(", ")
  }. Each figure is the mean ± sd over the
seeds whose cell finished (sd 0 for one seed).

${
    markdownTable([
      "model",
      "seeds",
      "tokens: source + own",
      "test BPT",
      "valid (nats)",
      "below unigram",
      "gen PPL (judge)",
      "gen PPL 95% interval, per seed",
      "entropy",
      "infill exact",
    ], lines)
  }

Test BPT is a bound (≤) for the D3PM and the MLM (the D3PM's bound with the
MLM as its denoiser). Valid is the kept weights' validation: the AR's exact
NLL, the D3PM's bound (≤), the MLM's own objective (no bound). Below unigram:
the train split's unigram entropy minus valid. Gen PPL: under ${
    judges.length === 1 ? judges[0] : "several judges"
  }.${under} Infill exact: exact-match accuracy of the hidden tokens (none for the AR).
${cellNotes(t)}`;
}

/**
 * The collect step: the table from the finished cells, as
 * `adaptation.json` and `adaptation.md` in the study's folder.
 *
 * @param options Sizes, seeds and folder.
 * @returns The table.
 * @throws {ConfigError} When no cell has finished.
 *
 * @example One finished cell: the AR's row, the rest listed as missing
 * ```ts
 * import { collectAdaptation } from "@d3pm/experiment/studies";
 * import { assertEquals, assertStringIncludes } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/cells/ar_seed-0`, { recursive: true });
 * await Deno.writeTextFile(`${dir}/cells/ar_seed-0/results.json`, JSON.stringify({
 *   config: { steps: 1000, firstSeed: 0, seeds: 1, initFrom: "", annealSteps: 0 },
 *   judge: "a judge", data: { unigramEntropy: 6.5 },
 *   results: [{ model: "ar", seed: 0, training: { tokens: 512000 }, test: { bpt: 6.85, bound: false },
 *     generation: { genPpl: 262.5, entropy: 4.37 } }],
 * }));
 * const t = await collectAdaptation({ preset: "tiny", seeds: [0], dir });
 * assertEquals(t.missing.length, 5);
 * assertStringIncludes(await Deno.readTextFile(`${dir}/adaptation.md`), "| AR from scratch | 1 | 0 + 512000 | 6.850 ± 0.000 |");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function collectAdaptation(
  options: AdaptationOptions,
): Promise<AdaptationTable> {
  const t = await adaptationTable(options);
  const dir = options.dir.replace(/\/+$/, "");
  if (t.rows.every((r) => r.seeds.length === 0)) {
    // Options that differ from the plan are refused with --collect, so the
    // way out is another folder: a new plan, or the one that ran them.
    throw new ConfigError(
      t.mismatched?.length
        ? `No cell of the adaptation study in ${options.dir} has results of this plan: ${
          t.mismatched.join(", ")
        }. These cells were run by another plan than ${dir}/sweep.json's: re-plan with their options in another --dir, or collect them from the folder that planned them`
        : `No cell of the adaptation study in ${options.dir} has finished (no cells/<cell>/results.json): run the cells first (deno task study adaptation --on local, or deno task sweep run ${options.dir} --on …)`,
    );
  }
  await writeFileAtomic(
    `${dir}/adaptation.json`,
    JSON.stringify(t, null, 2) + "\n",
  );
  await writeFileAtomic(`${dir}/adaptation.md`, adaptationMarkdown(t));
  return t;
}
