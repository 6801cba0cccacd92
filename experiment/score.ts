/**
 * Scoring a trained model of a run folder on the test split again — a
 * finished run's, or an imported one's (`deno task import`) — with the same
 * blocks, draws and estimator as the run's evaluation, as its contestant
 * declares (`Contestant.scoring`): the exact NLL of the AR model, the
 * continuous bound of a denoiser.
 *
 * @module
 */
import type { LikelihoodFigures } from "@d3pm/eval";
import { prepareRunData } from "./data.ts";
import { likelihoodFigures } from "./evaluation.ts";
import { loadTrained, readRun } from "./load.ts";
import { ConfigError } from "./options.ts";
import { checkBudget } from "./budget.ts";
import { RunFolder } from "./run_folder.ts";
import { placeModel, processStagger } from "./engine.ts";
import { Progress } from "@d3pm/train";

/** Options of {@linkcode scoreTest}. */
export interface ScoreOptions {
  /** The contestant. */
  model: string;
  /** The seed (default the run's first seed: 0 unless made with `--first-seed`). */
  seed?: number;
  /** Test blocks (0: all; default: the run's `--eval-blocks`). */
  blocks?: number;
  /**
   * Draws per test block of a bound (default: the run's `--elbo-samples`,
   * which reproduces its figure); more draws, a smaller standard error.
   */
  samples?: number;
  /** Where progress lines go (default: nowhere). */
  log?: (line: string) => void;
  /**
   * Where scoring runs (default `tfjs`): `cpu` (the CPU engine), `webgpu`
   * or `auto` (see `chooseEngine`); said on `log`.
   */
  engine?: "tfjs" | "webgpu" | "cpu" | "auto";
  /**
   * Scoring that runs longer than this many seconds (default 10) says on
   * `log` how far it is, batch by batch of test blocks: a line every tenth
   * of the blocks or every 30 s, with an ETA (as training's progress lines).
   * Shorter scoring prints none.
   */
  quietSeconds?: number;
}

/** A model's test likelihood. */
export interface TestScore {
  /** The contestant. */
  model: string;
  /** The seed. */
  seed: number;
  /** Test blocks scored. */
  blocks: number;
  /** NLL, BPT, PPL, bits per byte (upper bounds for a denoiser). */
  figures: LikelihoodFigures;
}

/**
 * Score a trained model of the run in `dir` on the test split, on the
 * active tfjs backend: the same estimate its run reported (`results.json`)
 * when the blocks are the same.
 *
 * @param dir The run folder.
 * @param options The contestant, seed and blocks.
 * @returns The figures.
 * @throws {ConfigError} When the folder has no such trained model, or its
 *   contestant declares no test scoring (`Contestant.scoring`).
 *
 * @example
 * ```ts
 * import { scoreTest } from "@d3pm/experiment";
 * import { assertRejects } from "@std/assert";
 * await assertRejects(
 *   () => scoreTest("runs/none", { model: "ar" }),
 *   Error,
 *   "Cannot read run runs/none: no config.json there",
 * );
 * ```
 */
export async function scoreTest(
  dir: string,
  options: ScoreOptions,
): Promise<TestScore> {
  const { config: saved } = await readRun(dir);
  const seed = options.seed ?? saved.firstSeed ?? 0;
  // `resume` keeps the run's own tokenizer (a trained BPE is in the folder).
  const config = {
    ...saved,
    resume: true,
    evalBlocks: options.blocks ?? saved.evalBlocks,
    elboSamples: options.samples ?? saved.elboSamples,
  };
  // Before the data or the model: `--samples 1e9` would allocate its draws.
  checkBudget(config, {
    memoryOnly: true,
    flags: { "--elbo-samples": "--samples", "--eval-blocks": "--blocks" },
  });
  const folder = new RunFolder(dir);
  // The files at its --data must be those it trained on (data.json).
  const data = await prepareRunData(config, folder, { log: options.log });
  const trained = await loadTrained(dir, { seed, model: options.model });
  // The contestant says how it is scored again (Contestant.scoring).
  const scoring = trained.contestant.scoring;
  if (!scoring) {
    trained.model.dispose();
    throw new ConfigError(
      `The ${options.model} contestant declares no test scoring (Contestant.scoring): deno task evaluate cannot score it; its run's results.json has its test figures`,
    );
  }
  if (options.samples !== undefined && !scoring.draws) {
    trained.model.dispose();
    throw new ConfigError(
      `Option --samples sets the draws of a denoiser's bound; the ${options.model} model is scored exactly: leave it out`,
    );
  }
  const placed = await placeModel(
    trained.model,
    options.engine ?? "tfjs",
    trained.contestant.kind,
    processStagger(trained.process),
  );
  options.log?.(`engine: ${placed.engine}`);
  const model = placed.model;
  const onProgress = scoringProgress(
    `score ${options.model}`,
    data.test.count,
    options,
  );
  try {
    const estimate = await scoring.score(
      trained.process,
      model,
      { config, data },
      { onProgress },
    );
    return {
      model: options.model,
      seed,
      blocks: data.test.count,
      figures: likelihoodFigures(estimate, { data }, trained.contestant.bound),
    };
  } finally {
    placed.dispose(); // the tfjs model too
  }
}

/**
 * The progress of a scoring of `total` test blocks, for `overBlocks`:
 * silent for its first `quietSeconds`, then training's lines (blocks done,
 * elapsed, ETA: both counted from the scoring's start) on `log`.
 */
function scoringProgress(
  label: string,
  total: number,
  options: Pick<ScoreOptions, "log" | "quietSeconds">,
): ((done: number) => void) | undefined {
  const log = options.log;
  if (!log) return undefined;
  const progress = new Progress({
    label: `${label}: test blocks`,
    total,
    interactive: false,
    quietSeconds: options.quietSeconds ?? 10,
    write: (s) => log(s.trimEnd()),
  });
  return (done) => progress.update(done);
}
