/**
 * The command line of `deno task study epochs`: the data-constrained study
 * (`@d3pm/experiment/studies`' `runEpochsStudy`) at a scale, with its sizes
 * overridden.
 *
 * @module
 */
import { keyOf, parseCommandLine, UsageError, usageText } from "@d3pm/cli";
import { checkStudyMode } from "./_study_mode.ts";
import {
  ConfigError,
  PRESETS,
  RunFolder,
  shellQuote,
  studyPlanText,
} from "@d3pm/experiment";
import {
  collectEpochs,
  epochsInterruptionNote,
  planEpochsSweep,
  readStudyPlan,
  refuseContradictions,
  runEpochsCell,
  runEpochsStudy,
  SCALES,
  type StudyScale,
} from "@d3pm/experiment/studies";

/** The study's options. */
const STUDY_OPTIONS = {
  scale: {
    kind: "choice",
    choices: ["cpu", "gpu"],
    default: "cpu",
    help:
      "cpu (tiny preset, U 10K,20K,40K, 500K tokens a run; ~30 min on a quiet 2-core CPU) or gpu (small preset, U 200K,500K,1M, 40M tokens a run, the fused engine on a GPU)",
  },
  u: {
    kind: "string",
    value: "LIST",
    help:
      "unique-token budgets, comma-separated (overrides the scale); each from one batch (batch size × context tokens) to the preset's train split with BOS/EOS (10,798,404 at micro): the study names both bounds before it writes anything (--sweep the lower one when it plans, each cell the upper one before it runs)",
  },
  tokens: {
    kind: "integer",
    min: 1,
    help:
      "training tokens of each run, rounded to whole epochs (overrides the scale); at least one epoch of the largest U",
  },
  preset: {
    kind: "choice",
    choices: ["micro", "tiny", "small", "paper"],
    help: "model preset (overrides the scale)",
  },
  dropouts: {
    kind: "string",
    value: "LIST",
    help: "the AR sweep's dropouts (one value each: no sweep)",
  },
  decays: {
    kind: "string",
    value: "LIST",
    help: "the AR sweep's weight decays",
  },
  patience: {
    kind: "integer",
    min: 1,
    help:
      "stop an AR run after N epochs without a new best (the D3PM: --d3pm-patience)",
  },
  d3pmPatience: {
    kind: "integer",
    min: 1,
    help:
      "stop a D3PM run after N epochs without a new best (default: none, the whole budget)",
  },
  validBlocks: {
    kind: "integer",
    min: 1,
    help: "valid blocks per validation",
  },
  settings: {
    kind: "choice",
    choices: ["pinned", "preset"],
    default: "pinned",
    help:
      "training settings: pinned (at tiny, those of the study's first figures: D3PM without ALiBi, tfjs engine) or preset (the preset's own today: at tiny the D3PM with neighbour heads, the preset's batch size, engine auto)",
  },
  engine: {
    kind: "choice",
    choices: ["auto", "tfjs", "webgpu", "cpu"],
    help:
      "training engine (default: the settings'; auto: the fused engine on a real GPU, else cpu)",
  },
  adamBeta2: {
    kind: "number",
    above: 0,
    below: 1,
    help:
      "AdamW's beta2 of every run (default: the settings': 0.95 pinned at tiny, else the preset's, 0.999 at tiny since 2026-12-07; the preset figures of 2026-12-05/06 took 0.95)",
  },
  batchSize: {
    kind: "integer",
    min: 1,
    help:
      "blocks per step (default: the scale's with --settings pinned, the preset's with preset)",
  },
  seed: {
    kind: "integer",
    min: 0,
    default: 0,
    help: "seed of the models and batches",
  },
  out: {
    kind: "string",
    value: "DIR",
    default: "runs/study-epochs",
    help: "output folder",
  },
  sweep: {
    kind: "boolean",
    default: false,
    help:
      "run nothing: write the study's runs as sweep cells (DIR/sweep.json, DIR the --out) for deno task sweep run DIR --on local|slurm",
  },
  cell: {
    kind: "string",
    value: "NAME",
    help: "run one cell of --sweep into --out/NAME",
  },
  collect: {
    kind: "boolean",
    default: false,
    help:
      "run nothing: gather the finished cells into epochs.jsonl and the report (--collect and --cell take the plan in DIR/sweep.json; an option that contradicts it is refused)",
  },
  force: {
    kind: "boolean",
    default: false,
    help:
      "run the study into an --out that holds one (epochs.jsonl or sweep.json), from the start: its epochs.jsonl, report and charts are moved aside to DIR/study.replaced-<time>, its run folders beside themselves as each run starts again (every run is retrained); refused while a study runs there",
  },
  resume: {
    kind: "boolean",
    default: false,
    help:
      "continue an interrupted serial study in --out, given the options it was begun with (on the engine and settings it ran with, as its study.json records them): the runs it finished are kept, the one it was in continues from its last epoch (its checkpoint; from its start where it has none, said on stderr), then the rest",
  },
} as const;

const SUMMARY =
  `The data-constrained study: an AR model and a D3PM of the same size train for
many epochs on U unique tokens (a prefix of the train split, by articles),
validated every epoch. The AR's dropout and weight decay come first from a
small sweep on the smallest U. Reports each model's best epoch and loss per U,
and whether and where the D3PM's validation bound falls below the AR's best
NLL. Output in --out: epochs.jsonl (one line per run and epoch, also on
stdout; the AR at the smallest U is the sweep's winner, so its lines say
"phase":"sweep"), report.md, valid-vs-epochs.svg, valid-vs-flops.svg,
sweep.svg, and one run folder per model. A folder that holds a study is
refused without --force; every U and run is checked before anything is
written.`;

/** The study's `--help`. */
const STUDY_USAGE = {
  command: "deno task study epochs",
  summary: SUMMARY,
  options: STUDY_OPTIONS,
};

function numberList(
  flag: string,
  raw: string,
  min: number,
  max: number,
  integers = false,
  range = `in [${min}, ${max}]`,
) {
  const items = raw.split(",").map((s) => s.trim());
  const xs = items.map(Number);
  const written = integers
    ? /^\d+$/
    : /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
  if (
    items.some((s) => !written.test(s)) ||
    xs.some((x) => !Number.isFinite(x) || x < min || x > max)
  ) {
    const what = integers ? "whole numbers written in digits" : "numbers";
    throw new UsageError(
      `Option --${flag} must be comma-separated ${what} ${range}, got "${raw}"`,
    );
  }
  // By value (0 and 0.0 are one dropout): each value is a run of its own,
  // and a second would train it again (as the list options and the sweep's
  // grid refuse).
  const i = xs.findIndex((x, j) => xs.indexOf(x) !== j);
  if (i >= 0) {
    throw new UsageError(
      `Option --${flag} lists ${
        xs[i]
      } twice, got "${raw}": each value is one run; give it once`,
    );
  }
  return xs;
}

/** The study's flags, parsed. */
export interface StudyArgs {
  /** The sizes. */
  scale: StudyScale;
  /** Seed of the models and batches. */
  seed: number;
  /** The study's folder. */
  out: string;
  /** Write the sweep cells, run nothing. */
  sweep: boolean;
  /** Run this one cell. */
  cell?: string;
  /** Gather the cells. */
  collect: boolean;
  /** Run the serial study over one in `out`. */
  force: boolean;
  /** Continue the serial study in `out`. */
  resume: boolean;
  /** The options given on the command line, by key. */
  given: string[];
  /** The flags that give this scale, seed and folder, spelt out (a cell's). */
  args: string[];
}

/**
 * The flags that give a scale, seed and folder in full, so that a cell runs
 * the sizes it was planned with even if the scale's defaults move.
 */
function studyArgs(
  name: string,
  scale: StudyScale,
  seed: number,
  out: string,
): string[] {
  return [
    "--scale",
    name,
    "--preset",
    scale.preset,
    "--u",
    scale.u.join(","),
    "--tokens",
    String(scale.tokens),
    "--dropouts",
    scale.dropouts.join(","),
    "--decays",
    scale.decays.join(","),
    "--patience",
    String(scale.patience),
    ...(scale.d3pmPatience !== undefined
      ? ["--d3pm-patience", String(scale.d3pmPatience)]
      : []),
    "--valid-blocks",
    String(scale.validBlocks),
    "--settings",
    scale.settings,
    ...(scale.engine !== undefined ? ["--engine", scale.engine] : []),
    ...(scale.adamBeta2 !== undefined
      ? ["--adam-beta2", String(scale.adamBeta2)]
      : []),
    "--batch-size",
    String(scale.batchSize),
    "--seed",
    String(seed),
    "--out",
    out,
  ];
}

/**
 * Parse the study's flags (after the study's name): the scale's sizes with
 * the options given over them, the mode, and the flags that give them all
 * in full (a cell's, {@linkcode StudyArgs.args}).
 *
 * @param argv The arguments after `epochs`.
 * @returns The study, or `{ help: true }` for `--help`.
 * @throws {UsageError} Naming an option that is malformed, or modes that
 *   do not go together.
 *
 * @example
 * ```ts
 * import { parseStudyArgs } from "./study_epochs.ts";
 * import { UsageError } from "@d3pm/cli";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const p = parseStudyArgs(["--u", "40000,10000", "--tokens", "5000", "--out", "runs/e/"]);
 * if ("help" in p) throw new Error("help");
 * assertEquals([p.scale.u, p.scale.tokens, p.out], [[10000, 40000], 5000, "runs/e/"]);
 * // The flags spelt out read back as the same study (the folder without its slash).
 * const back = parseStudyArgs(p.args);
 * if ("help" in back) throw new Error("help");
 * assertEquals([back.scale, back.out], [p.scale, "runs/e"]);
 * assertEquals(parseStudyArgs(["--help"]), { help: true });
 * assertThrows(
 *   () => parseStudyArgs(["--cell", "main-u10000-ar", "--resume"]),
 *   UsageError,
 *   "Option --resume applies only to the serial study (without --sweep, --cell or --collect): leave it out",
 * );
 * ```
 */
export function parseStudyArgs(
  argv: string[],
): StudyArgs | { help: true } {
  const line = parseCommandLine(argv, STUDY_OPTIONS);
  if (line.help) return { help: true };
  const v = line.values;
  const scale = { ...SCALES[v.scale] };
  if (v.u !== undefined) {
    // The real bounds (one batch, the train split) need the data: the
    // study checks them before it writes anything.
    scale.u = numberList(
      "u",
      v.u,
      2,
      1e12,
      true,
      "≥ 2, each at most the train split's tokens (the study names its bounds)",
    )
      .sort((a, b) => a - b);
  }
  if (v.tokens !== undefined) scale.tokens = v.tokens;
  if (v.preset !== undefined) scale.preset = v.preset;
  if (v.dropouts !== undefined) {
    scale.dropouts = numberList("dropouts", v.dropouts, 0, 0.99);
  }
  if (v.decays !== undefined) {
    scale.decays = numberList("decays", v.decays, 0, 100);
  }
  if (v.patience !== undefined) scale.patience = v.patience;
  if (v.d3pmPatience !== undefined) scale.d3pmPatience = v.d3pmPatience;
  if (v.validBlocks !== undefined) scale.validBlocks = v.validBlocks;
  scale.settings = v.settings;
  if (v.engine !== undefined) scale.engine = v.engine;
  if (v.adamBeta2 !== undefined) scale.adamBeta2 = v.adamBeta2;
  if (v.batchSize !== undefined) scale.batchSize = v.batchSize;
  else if (v.settings === "preset") {
    scale.batchSize = PRESETS[scale.preset].batchSize;
  }
  checkStudyMode(v);
  for (const flag of ["force", "resume"] as const) {
    if (v[flag] && (v.sweep || v.collect || v.cell !== undefined)) {
      throw new UsageError(
        `Option --${flag} applies only to the serial study (without --sweep, --cell or --collect): leave it out`,
      );
    }
  }
  if (v.force && v.resume) {
    throw new UsageError(
      "Options --force and --resume do not go together: --resume continues the study in --out, --force runs it again from the start",
    );
  }
  return {
    scale,
    seed: v.seed,
    out: v.out,
    sweep: v.sweep,
    ...(v.cell !== undefined ? { cell: v.cell } : {}),
    collect: v.collect,
    force: v.force,
    resume: v.resume,
    given: Object.keys(line.given),
    args: studyArgs(v.scale, scale, v.seed, v.out.replace(/\/+$/, "")),
  };
}

/** The flags of {@linkcode studyArgs}' list, by option key. */
function flagValues(args: readonly string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (let i = 0; i + 1 < args.length; i += 2) {
    values[keyOf(args[i].replace(/^--/, ""))] = args[i + 1];
  }
  return values;
}

/**
 * The study a `--cell` or `--collect` runs: the plan in `OUT/sweep.json`
 * where there is one (its sizes and seed, so the cells and the report are
 * of one plan), else the one given. An option given that contradicts the
 * plan is refused, as `study adaptation --collect` refuses one.
 *
 * @param parsed The command line, parsed.
 * @returns The study to run the cell of, or collect.
 * @throws {ConfigError} Naming the first option that contradicts the plan,
 *   or when `OUT/sweep.json` is not an epochs study's.
 *
 * @example
 * ```ts
 * import { parseStudyArgs, plannedStudy } from "./study_epochs.ts";
 * import { epochsSweep, SCALES } from "@d3pm/experiment/studies";
 * import { saveSweep } from "@d3pm/experiment";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * const planned = parseStudyArgs(["--preset", "micro", "--u", "4000,8000", "--tokens", "16000", "--out", out]);
 * if ("help" in planned) throw new Error("help");
 * await saveSweep(epochsSweep({ ...planned, args: planned.args }));
 * const given = parseStudyArgs(["--collect", "--out", out]);
 * if ("help" in given) throw new Error("help");
 * assertEquals((await plannedStudy(given)).scale.tokens, 16000);
 * const other = parseStudyArgs(["--collect", "--tokens", "4000", "--out", out]);
 * if ("help" in other) throw new Error("help");
 * await assertRejects(() => plannedStudy(other), Error, "Option --tokens 4000 contradicts the study's plan");
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function plannedStudy(parsed: StudyArgs): Promise<StudyArgs> {
  const plan = await readStudyPlan(parsed.out);
  if (!plan) return parsed;
  const planned = plan.args[0] === "epochs"
    ? parseStudyArgs(plan.args.slice(1).filter((a) => a !== "--collect"))
    : undefined;
  if (!planned || "help" in planned) {
    throw new ConfigError(
      `${plan.file} is not an epochs study's plan (its collect step is not "epochs --scale … --collect"): give the study's own --out`,
    );
  }
  const mine = flagValues(parsed.args);
  const given = parsed.given.filter((key) => key !== "out" && key in mine);
  refuseContradictions(
    { file: plan.file, flags: flagValues(planned.args) },
    Object.fromEntries(given.map((key) => [key, mine[key]])),
    parsed.cell !== undefined ? "--cell" : "--collect",
  );
  return { ...parsed, scale: planned.scale, seed: planned.seed };
}

/**
 * Run the study with its command-line arguments (those after `epochs`):
 * the serial study, or with `--sweep` its plan, with `--cell NAME` one of
 * its cells, with `--collect` its report from the cells; `--help` prints
 * the options.
 *
 * @param argv The arguments.
 * @throws {UsageError} For a malformed command line.
 * @throws {ConfigError} For a study that cannot run as asked (naming why).
 *
 * @example Plan a micro study as sweep cells: nothing trains
 * ```ts
 * import { studyEpochs } from "./study_epochs.ts";
 * import { readSweep } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * await studyEpochs(["--preset", "micro", "--u", "4000,8000", "--tokens", "16000", "--dropouts", "0", "--decays", "0.1", "--out", out, "--sweep"]);
 * const sweep = await readSweep(out);
 * assertEquals(sweep.cells.map((c) => c.name), ["sweep-u4000-ar-do0-wd0.1", "main-u4000-d3pm", "main-u8000-d3pm", "main-u8000-ar"]);
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function studyEpochs(argv: string[]): Promise<void> {
  const parsed = parseStudyArgs(argv);
  if ("help" in parsed) {
    console.log(usageText(STUDY_USAGE).trimEnd());
    return;
  }
  const { scale, seed, out } = parsed;
  if (parsed.sweep) {
    const sweep = await planEpochsSweep({
      scale,
      seed,
      out,
      args: parsed.args,
    });
    console.log(studyPlanText(sweep));
  } else if (parsed.cell !== undefined) {
    const p = await plannedStudy(parsed);
    await runEpochsCell({
      scale: p.scale,
      seed: p.seed,
      out,
      cell: p.cell!,
      studyWaitMs: studyWaitMs(),
    });
  } else if (parsed.collect) {
    const p = await plannedStudy(parsed);
    await collectEpochs({ scale: p.scale, seed: p.seed, out });
  } else {
    onInterrupt(() => {
      const again = [
        "deno task study epochs",
        ...argv.filter((a) => a !== "--force" && a !== "--resume").map(
          shellQuote,
        ),
      ].join(" ");
      return epochsInterruptionNote(out, scale, again);
    });
    await runEpochsStudy({
      scale,
      seed,
      out,
      force: parsed.force,
      resume: parsed.resume,
    });
  }
}

/**
 * On Ctrl-C or SIGTERM (kill, a batch system's time limit): print `note()`
 * (what is finished, how to go on), release the run folders' locks, and
 * exit 130 or 143 as the signal's default would.
 */
function onInterrupt(note: () => string): void {
  const signals = Deno.build.os === "windows"
    ? [["SIGINT", 130] as const]
    : [["SIGINT", 130] as const, ["SIGTERM", 143] as const];
  for (const [signal, code] of signals) {
    Deno.addSignalListener(signal, () => {
      console.error(`\n${note()}`);
      RunFolder.releaseHeld();
      Deno.exit(code);
    });
  }
}

/**
 * `D3PM_STUDY_WAIT_S`: how long a cell waits while the study's folder is
 * held (default: the runner's, 120 s).
 */
function studyWaitMs(): number | undefined {
  const text = Deno.env.get("D3PM_STUDY_WAIT_S");
  if (text === undefined || text === "") return undefined;
  const s = Number(text);
  if (!Number.isFinite(s) || s < 0) {
    throw new ConfigError(
      `D3PM_STUDY_WAIT_S must be a number of seconds >= 0, got ${
        JSON.stringify(text)
      }`,
    );
  }
  return s * 1000;
}
