/**
 * The command line of `deno task study adaptation`: the adaptation study
 * (`@d3pm/experiment/studies`' `adaptationSweep`) planned as a sweep, run
 * by the sweep's executors, its table collected from the cells.
 *
 * @module
 */
import {
  flagOf,
  type OptionValues,
  parseCommandLine,
  UsageError,
  usageText,
} from "@d3pm/cli";
import { checkStudyMode } from "./_study_mode.ts";
import {
  parseSeeds,
  saveSweep,
  shellQuote,
  studyPlanText,
} from "@d3pm/experiment";
import {
  adaptationCells,
  type AdaptationOptions,
  adaptationSweep,
  collectAdaptation,
  collectOptions,
  experimentArgs,
  flagArgs,
} from "@d3pm/experiment/studies";

/** The options passed on to `deno task sweep run --on slurm`. */
const SLURM_ONLY = [
  "dryRun",
  "partition",
  "time",
  "cpusPerTask",
  "gpus",
  "parallel",
] as const;

/** The repository (where the cells run). */
const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname)
  .replace(/\/$/, "");

/** The study's options. */
export const ADAPTATION_OPTIONS = {
  preset: {
    kind: "choice",
    choices: ["micro", "tiny", "small", "paper"],
    default: "tiny",
    help: "model preset of every run",
  },
  seeds: {
    kind: "string",
    value: "SEEDS",
    default: "0..2",
    help: "seeds: N (0..N−1), A..B or A,B,… — every row once per seed",
  },
  steps: {
    kind: "integer",
    min: 2,
    help:
      "steps of the whole budget: the scratch AR and D3PM train them all, source + adaptation add up to them (default: the preset's)",
  },
  sourceSteps: {
    kind: "integer",
    min: 1,
    help:
      "steps of the source AR and MLM; the adapted D3PMs train the rest (default: half the budget, the 500 + 500 split at tiny)",
  },
  annealSteps: {
    kind: "integer",
    min: 1,
    help:
      "the annealed row's steps from causal to bidirectional attention (default: half the adaptation, 250 at tiny)",
  },
  engine: {
    kind: "choice",
    choices: ["auto", "tfjs", "webgpu", "cpu"],
    default: "tfjs",
    help:
      "training engine of every run: tfjs, as --anneal-steps and --shift need, so that every row's gen PPL has the same judge (the auto judge trains on the run's engine); auto puts the other rows on a fused engine, faster, under a second judge",
  },
  genSamples: {
    kind: "integer",
    min: 0,
    help:
      "every cell's --gen-samples: generated rows judged for gen PPL (0: the last timed batch, no interval; default the experiment's 64)",
  },
  exactBlocks: {
    kind: "integer",
    min: 0,
    help:
      "every cell's --exact-blocks: test blocks for the exact bound (0: skip; default the experiment's 2)",
  },
  dir: {
    kind: "string",
    value: "DIR",
    default: "runs/study-adaptation",
    help: "the study's folder (sweep.json, cells/<cell>/, logs/, the table)",
  },
  on: {
    kind: "choice",
    choices: ["local", "slurm"],
    default: "local",
    help:
      "run the cells here (local) or as Slurm job arrays, one per wave (slurm)",
  },
  jobs: {
    kind: "integer",
    min: 1,
    max: 256,
    help: "local: cells at once (default 1; the cores are divided among them)",
  },
  dryRun: {
    kind: "boolean",
    default: false,
    help: "slurm: print the sbatch scripts, submit nothing",
  },
  partition: { kind: "string", value: "NAME", help: "slurm: --partition" },
  time: { kind: "string", value: "HH:MM:SS", help: "slurm: --time per cell" },
  cpusPerTask: {
    kind: "integer",
    min: 1,
    help: "slurm: --cpus-per-task (also the BLAS threads)",
  },
  gpus: { kind: "integer", min: 0, help: "slurm: GPUs per cell (--gres)" },
  parallel: {
    kind: "integer",
    min: 1,
    help: "slurm: most cells at once (--array=…%N)",
  },
  sweep: {
    kind: "boolean",
    default: false,
    help:
      "run nothing: write DIR/sweep.json and print the cells (deno task sweep run DIR --on … runs them)",
  },
  cell: {
    kind: "string",
    value: "NAME",
    help: "run one cell (what the sweep's executors call)",
  },
  collect: {
    kind: "boolean",
    default: false,
    help:
      "run nothing: gather the finished cells of the plan in DIR/sweep.json into DIR/adaptation.md and adaptation.json (the plan's options; one that contradicts it is refused)",
  },
} as const;

const SUMMARY =
  `The adaptation study at matched total compute: per seed, an AR and a D3PM
trained from scratch over the whole budget; a source run (an AR and an MLM
over the first --source-steps); and three D3PMs over the rest, each starting
from that seed's source (--init-from): from the AR, from the AR with
attention-mask annealing and shift, and from the MLM. The cells are one
deno task experiment run each, planned as a sweep in two waves (the adapted
D3PMs after the sources) and run by the sweep's executors; then the table
(mean ± sd over seeds per row: test BPT, validation, below the unigram
entropy, gen PPL under the judge with each seed's 95% interval, entropy,
infill exact match) is written to DIR/adaptation.md and DIR/adaptation.json.
A cell with results.json is skipped, an interrupted one resumed: run the
same command again to finish a study.`;

const EPILOGUE = `Examples:
  # tiny, seeds 0..2, one cell at a time:
  deno task study adaptation
  deno task study adaptation --on local --jobs 2
  # print both waves' scripts:
  deno task study adaptation --on slurm --dry-run
  deno task study adaptation --preset micro --seeds 0..1 --dir runs/ad-micro
  # the table from what has finished:
  deno task study adaptation --collect`;

/** The study's `--help`. */
export const ADAPTATION_USAGE = {
  command: "deno task study adaptation",
  summary: SUMMARY,
  options: ADAPTATION_OPTIONS,
  epilogue: EPILOGUE,
};

/** The study's option values, as parsed. */
type AdaptationValues = OptionValues<typeof ADAPTATION_OPTIONS>;

/**
 * Run the study with its command-line arguments (those after
 * `adaptation`).
 *
 * @param argv The arguments.
 */
export async function studyAdaptation(argv: string[]): Promise<void> {
  const line = parseCommandLine(argv, ADAPTATION_OPTIONS);
  if (line.help) {
    console.log(usageText(ADAPTATION_USAGE).trimEnd());
    return;
  }
  const v = line.values;
  checkCompatible(v);
  const options: AdaptationOptions = {
    preset: v.preset,
    seeds: parseSeeds(v.seeds),
    dir: v.dir.replace(/\/+$/, ""),
    ...(v.steps !== undefined ? { steps: v.steps } : {}),
    ...(v.sourceSteps !== undefined ? { sourceSteps: v.sourceSteps } : {}),
    ...(v.annealSteps !== undefined ? { annealSteps: v.annealSteps } : {}),
    engine: v.engine,
    ...(v.genSamples !== undefined ? { genSamples: v.genSamples } : {}),
    ...(v.exactBlocks !== undefined ? { exactBlocks: v.exactBlocks } : {}),
  };
  if (v.cell !== undefined) return await runCell(options, v.cell);
  if (v.collect) return await collect(options, givenOptions(line.given));
  const sweep = await saveSweep(adaptationSweep(options));
  if (v.sweep) {
    console.log(studyPlanText(sweep));
    return;
  }
  // The sweep's own executors, as `deno task sweep run DIR` would run them
  // (a local run ends with the collect step).
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}/examples/sweep.ts`,
      ...sweepRunArgs(sweep.dir, v),
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (code !== 0) Deno.exit(code);
}

/** Refuse options that do not go together, before anything is written. */
function checkCompatible(v: AdaptationValues): void {
  checkStudyMode(v);
  if (v.jobs !== undefined && v.on !== "local") {
    throw new UsageError(
      "Option --jobs applies only to --on local, not --on slurm: leave it out",
    );
  }
  for (const key of SLURM_ONLY) {
    if (v.on !== "slurm" && v[key] !== undefined && v[key] !== false) {
      throw new UsageError(
        `Option --${
          flagOf(key)
        } applies only to --on slurm, not --on local: leave it out`,
      );
    }
  }
}

/** `deno task sweep run`'s arguments (after `run`) for the study's sweep. */
function sweepRunArgs(dir: string, v: AdaptationValues): string[] {
  return [
    "run",
    dir,
    ...flagArgs({
      on: v.on,
      jobs: v.jobs,
      ...Object.fromEntries(SLURM_ONLY.map((key) => [key, v[key]])),
    }),
  ];
}

/** One cell: its `deno task experiment` run, exit code passed on. */
async function runCell(options: AdaptationOptions, name: string) {
  const cell = adaptationCells(options).find((c) => c.name === name);
  if (!cell) {
    throw new UsageError(
      `Unknown cell "${name}" of the adaptation study: --cell takes a name of its plan (deno task study adaptation --sweep lists them)`,
    );
  }
  const args = experimentArgs(cell);
  console.error(
    `cell ${name}: deno task experiment ${args.map(shellQuote).join(" ")}`,
  );
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/examples/experiment.ts`, ...args],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (code !== 0) Deno.exit(code);
}

/** The study's options given on the command line, parsed (only those). */
function givenOptions(
  given: Partial<AdaptationValues>,
): Partial<AdaptationOptions> {
  return {
    ...(given.preset !== undefined ? { preset: given.preset } : {}),
    ...(given.seeds !== undefined ? { seeds: parseSeeds(given.seeds) } : {}),
    ...(given.steps !== undefined ? { steps: given.steps } : {}),
    ...(given.sourceSteps !== undefined
      ? { sourceSteps: given.sourceSteps }
      : {}),
    ...(given.annealSteps !== undefined
      ? { annealSteps: given.annealSteps }
      : {}),
    ...(given.engine !== undefined ? { engine: given.engine } : {}),
    ...(given.genSamples !== undefined ? { genSamples: given.genSamples } : {}),
    ...(given.exactBlocks !== undefined
      ? { exactBlocks: given.exactBlocks }
      : {}),
  };
}

/**
 * The collect step: the table of the plan in DIR/sweep.json (options that
 * contradict it refused), and where it went.
 */
async function collect(
  options: AdaptationOptions,
  given: Partial<AdaptationOptions>,
) {
  const planned = await collectOptions(options.dir, given, options);
  const t = await collectAdaptation(planned);
  const off = t.mismatched ?? [];
  console.log(
    `${options.dir}/adaptation.md, adaptation.json: ${
      t.rows.filter((r) => r.seeds.length).length
    } rows${t.missing.length ? `; not finished: ${t.missing.join(", ")}` : ""}${
      off.length ? `; not of this plan: ${off.join(", ")}` : ""
    }`,
  );
}
