/**
 * The command line of `deno task study epochs`: the data-constrained study
 * (`@d3pm/experiment/studies`' `runEpochsStudy`) at a scale, with its sizes
 * overridden.
 *
 * @module
 */
import { parseCommandLine, UsageError, usageText } from "@d3pm/cli";
import {
  runEpochsStudy,
  SCALES,
  type StudyScale,
} from "@d3pm/experiment/studies";

/** The study's options. */
export const STUDY_OPTIONS = {
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
    help: "unique-token budgets, comma-separated (overrides the scale)",
  },
  tokens: {
    kind: "integer",
    min: 1,
    help: "training tokens of each run (overrides the scale)",
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
      "stop an AR run after N epochs without a new best (the D3PM always runs its whole budget)",
  },
  validBlocks: {
    kind: "integer",
    min: 1,
    help: "valid blocks per validation",
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
} as const;

const SUMMARY =
  `The data-constrained study: an AR model and a D3PM of the same size train for
many epochs on U unique tokens (a prefix of the train split, by articles),
validated every epoch. The AR's dropout and weight decay come first from a
small sweep on the smallest U. Reports each model's best epoch and loss per U,
and whether and where the D3PM's validation bound falls below the AR's best
NLL. Output in --out: epochs.jsonl (one line per run and epoch, also on
stdout; rewritten by a new run; the AR at the smallest U is the sweep's
winner, so its lines say "phase":"sweep"), report.md, valid-vs-epochs.svg,
valid-vs-flops.svg, sweep.svg, and one run folder per model.`;

/** The study's `--help`. */
export const STUDY_USAGE = {
  command: "deno task study epochs",
  summary: SUMMARY,
  options: STUDY_OPTIONS,
};

function numberList(flag: string, raw: string, min: number, max: number) {
  const xs = raw.split(",").map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isFinite(x) || x < min || x > max)) {
    throw new UsageError(
      `Option --${flag} must be comma-separated numbers in [${min}, ${max}], got "${raw}"`,
    );
  }
  return xs;
}

/** Parse the study's flags (after the study's name). */
export function parseStudyArgs(
  argv: string[],
): { scale: StudyScale; seed: number; out: string } | { help: true } {
  const line = parseCommandLine(argv, STUDY_OPTIONS);
  if (line.help) return { help: true };
  const v = line.values;
  const scale = { ...SCALES[v.scale] };
  if (v.u !== undefined) {
    scale.u = numberList("u", v.u, 2, 1e12).map(Math.round)
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
  if (v.validBlocks !== undefined) scale.validBlocks = v.validBlocks;
  return { scale, seed: v.seed, out: v.out };
}

/**
 * Run the study with its command-line arguments (those after `epochs`).
 *
 * @param argv The arguments.
 */
export async function studyEpochs(argv: string[]): Promise<void> {
  const parsed = parseStudyArgs(argv);
  if ("help" in parsed) {
    console.log(usageText(STUDY_USAGE).trimEnd());
    return;
  }
  await runEpochsStudy(parsed);
}
