/**
 * `deno task evaluate`: a trained model of a run folder (finished, or
 * imported) scored on the test split again (`@d3pm/experiment`'s
 * `scoreTest`); prints one JSON line. With `--gen-samples N`, instead: N
 * rows generated and judged by the run's auto judge (or, with `--judge`, the
 * AR model of a run folder: one judge for runs whose auto judges differ) —
 * generative perplexity with its 95% interval, and the unigram
 * Jensen–Shannon divergence to the test split (beside its floor: real test
 * text of the same size).
 *
 * @module
 */
import {
  RUN_OPTION,
  SEED_OPTION,
  TRAINED_MODEL_OPTION,
} from "./_tool_options.ts";
import { autoregressive } from "@d3pm/autoregressive";
import { initBackend } from "@d3pm/backend";
import { readCommandLine, runCli, UsageError } from "@d3pm/cli";
import { type NllEstimate, prng, type TokenBatch } from "@d3pm/core";
import { perplexityInterval, perSampleNll, unigramJsd } from "@d3pm/eval";
import {
  chooseEngine,
  chooseRunEngine,
  contestantOf,
  type Engine,
  engineFingerprint,
  generatesInSteps,
  genStepList,
  judgeKey,
  judgePlan,
  loadTrained,
  openJudge,
  OPTIONS as EXPERIMENT_OPTIONS,
  placeModel,
  prepareData,
  prepareRunData,
  processStagger,
  readRun,
  RunFolder,
  scoreTest,
} from "@d3pm/experiment";
import { Progress } from "@d3pm/train";
import { loadModel } from "@d3pm/transformer";
import * as tf from "@tensorflow/tfjs";

/** Generate `samples` rows of a run's model and judge them (see the module doc). */
async function scoreGeneration(
  dir: string,
  o: {
    model: string;
    seed: number;
    samples: number;
    engine: "tfjs" | "webgpu" | "cpu" | "auto";
    /** The tfjs backend's one line (initBackend's reason). */
    backend: string;
    /** `auto`: the run's cached auto judge; `self` or a run folder: its AR model. */
    judge: string;
    log: (line: string) => void;
  },
): Promise<Record<string, unknown>> {
  const { config: saved, results } = await readRun(dir);
  // Every test block: the unigram reference and its floor need real text.
  const config = { ...saved, resume: true, evalBlocks: 0 };
  const folder = new RunFolder(dir);
  // The files at its --data must be those it trained on (data.json): so
  // the judge run is compared with what this run trained on.
  const data = await prepareRunData(config, folder, { log: o.log });
  // The judge first: a wrong --judge is refused before any generation.
  const judge = o.judge === "auto"
    ? await autoJudge(config, data, { ...o, runEngine: results?.engine })
    : await runJudge(o.judge === "self" ? dir : o.judge, config, data, o);
  const L = config.blockLength;
  const steps = Math.max(...genStepList(config));
  let generated;
  try {
    generated = await generateRows(dir, config, { ...o, steps });
  } catch (e) {
    judge.dispose();
    throw e;
  }
  const { rows, seconds: genSeconds } = generated;
  const t0 = performance.now();
  const onJudged = rowProgress(`judge ${o.model}`, o.samples, o.log);
  let done = 0;
  let judged;
  try {
    judged = await perSampleNll(rows, L, async (x0) => {
      const est = await judge.score(x0);
      onJudged(done += x0.batchSize);
      return est;
    });
  } finally {
    judge.dispose();
  }
  const judgeSeconds = (performance.now() - t0) / 1000;
  const ppl = perplexityInterval(judged.nlls, judged.tokens);
  const { jsd, floors } = unigramDivergence(rows, data, {
    length: L,
    samples: o.samples,
  });
  return {
    model: o.model,
    seed: o.seed,
    ...(generatesInSteps(contestantOf(o.model)) ? { steps } : {}),
    samples: o.samples,
    genPpl: ppl.genPpl,
    genPpl95: [ppl.low, ppl.high],
    judgeNll: ppl.nll,
    judgeNllStderr: ppl.stderr,
    unigramJsdBits: jsd,
    unigramJsdFloor: {
      draws: floors.length,
      min: Math.min(...floors),
      max: Math.max(...floors),
    },
    seconds: { generate: genSeconds, judge: judgeSeconds },
    judge: judge.describe,
  };
}

/**
 * Rows generated or judged: silent for 10 s (as the test scoring's
 * `quietSeconds`), then training's lines with an ETA on `log`.
 */
function rowProgress(
  label: string,
  total: number,
  log: (line: string) => void,
): (done: number) => void {
  const progress = new Progress({
    label: `${label}: rows`,
    total,
    interactive: false,
    quietSeconds: 10,
    write: (s) => log(s.trimEnd()),
  });
  return (done) => progress.update(done);
}

/**
 * Load the run's model, place it on `o.engine`, and generate `o.samples`
 * rows with it, `genBatch` at a time; the seconds the generation took.
 */
async function generateRows(
  dir: string,
  config: RunConfig,
  o: {
    model: string;
    seed: number;
    samples: number;
    engine: "tfjs" | "webgpu" | "cpu" | "auto";
    steps: number;
    log: (line: string) => void;
  },
): Promise<{ rows: Int32Array; seconds: number }> {
  const trained = await loadTrained(dir, { seed: o.seed, model: o.model });
  const placed = await placeModel(
    trained.model,
    o.engine,
    trained.contestant.kind,
    processStagger(trained.process),
  );
  o.log(`engine: ${placed.engine}`);
  const L = config.blockLength;
  const rng = prng(o.seed).fork(`gen-samples-${o.model}`);
  const rows = new Int32Array(o.samples * L);
  const started = performance.now();
  const onRows = rowProgress(`generate ${o.model}`, o.samples, o.log);
  const process = trained.process as unknown as {
    sample(m: unknown, opt: Record<string, unknown>): Promise<
      { tokens: Int32Array }
    >;
  };
  try {
    for (let r = 0; r < o.samples; r += config.genBatch) {
      const batch = Math.min(config.genBatch, o.samples - r);
      const out = await process.sample(placed.model, {
        batchSize: batch,
        length: L,
        prng: rng,
        ...(generatesInSteps(trained.contestant) ? { steps: o.steps } : {}),
      });
      rows.set(out.tokens.subarray(0, batch * L), r * L);
      onRows(r + batch);
    }
  } finally {
    placed.dispose();
  }
  return { rows, seconds: (performance.now() - started) / 1000 };
}

/**
 * The samples' unigram Jensen–Shannon divergence to the test split, and
 * its floor: that of real test text of the samples' size, 8 draws.
 */
function unigramDivergence(
  rows: Int32Array,
  data: Data,
  o: { length: number; samples: number },
): { jsd: number; floors: number[] } {
  const L = o.length;
  const { bos, eos, pad, mask } = data.specials;
  const ignore = new Set([bos, eos, pad, mask]);
  // The reference: the second half of the whole test split; the floor:
  // real text of the samples' size, rows drawn at random from its first
  // half (contiguous rows share their articles' topics, which samples don't).
  const half = Math.floor(data.test.count / 2);
  const reference = data.test.data.subarray(half * L);
  const jsd = unigramJsd(rows, reference, ignore);
  const pick = prng(0xf100);
  const floors: number[] = [];
  const real = new Uint32Array(o.samples * L);
  for (let k = 0; k < 8; k++) {
    for (let r = 0; r < o.samples; r++) {
      const from = pick.nextInt(half);
      real.set(data.test.data.subarray(from * L, (from + 1) * L), r * L);
    }
    floors.push(unigramJsd(real, reference, ignore));
  }
  return { jsd, floors };
}

type Judged = {
  score(x0: TokenBatch): Promise<NllEstimate>;
  describe: string;
  dispose(): void;
};
type RunConfig = Awaited<ReturnType<typeof readRun>>["config"];
type Data = Awaited<ReturnType<typeof prepareData>>;

/** The run's auto judge, from the cache (scoring on `o.engine`). */
async function autoJudge(
  config: RunConfig,
  data: Data,
  o: {
    engine: "tfjs" | "webgpu" | "cpu" | "auto";
    backend: string;
    /** The finished run's `engine` (results.json), which trained its judge. */
    runEngine?: string;
  },
): Promise<Judged> {
  // Cached per engine, so the one the run trained its judge on: tfjs when
  // its results say so (a run before bd3 fell back alone kept every model
  // and the judge there), else the run's own engine choice resolved here
  // (scoring then runs on --engine).
  const runEngine: Engine = o.runEngine?.startsWith("tfjs")
    ? { kind: "tfjs", reason: o.runEngine }
    : await chooseRunEngine(config);
  if (runEngine.kind === "webgpu") runEngine.device.destroy();
  const fingerprint = await engineFingerprint(runEngine, o.backend);
  const judgeDir = `.cache/judges/${
    judgeKey(judgePlan(config, data, fingerprint))
  }`;
  const judgeModel = await loadModel(judgeDir).catch((e: Error) => {
    throw new Error(
      `No auto judge of this run's data and engine (${fingerprint}) in ${judgeDir}: ${e.message}; a run with --judge auto on this machine trains it, or pass --judge RUN`,
    );
  });
  const placed = await placeModel(judgeModel, o.engine);
  const ar = autoregressive({
    kind: "autoregressive",
    start: data.specials.bos,
    padId: data.specials.pad,
  });
  return {
    score: (x0) => ar.score(placed.model, x0),
    describe: judgeDir,
    dispose: () => placed.dispose(),
  };
}

/** The AR model of the run in `judgeRun`, checked as the experiment's --judge RUN. */
async function runJudge(
  judgeRun: string,
  config: RunConfig,
  data: Data,
  o: {
    engine: "tfjs" | "webgpu" | "cpu" | "auto";
    backend: string;
    log: (line: string) => void;
  },
): Promise<Judged> {
  // The judge is an AR model: the run's other contestants do not bind it.
  const engine = await chooseEngine({
    ...config,
    models: "ar",
    engine: o.engine,
  });
  let judge;
  try {
    judge = await openJudge({ ...config, judge: judgeRun }, data, {
      engine,
      backend: o.backend,
      log: o.log,
    });
  } catch (e) {
    if (engine.kind === "webgpu") engine.device.destroy();
    throw e;
  }
  const j = judge!;
  return {
    score: (x0) => j.score(x0),
    describe: j.describe,
    dispose: () => {
      j.dispose();
      if (engine.kind === "webgpu") engine.device.destroy();
    },
  };
}

const OPTIONS = {
  run: RUN_OPTION,
  model: TRAINED_MODEL_OPTION,
  seed: SEED_OPTION,
  blocks: {
    kind: "integer",
    min: 0,
    help: "test blocks (0: all; default: the run's --eval-blocks)",
  },
  samples: {
    kind: "integer",
    min: 1,
    help:
      "draws per test block of a denoiser's bound (default: the run's --elbo-samples, which reproduces its figure; more: a smaller standard error)",
  },
  backend: {
    kind: "choice",
    choices: ["auto", "tensorflow", "webgpu", "blas", "wasm", "cpu"],
    default: "auto",
    help: "tfjs backend",
  },
  engine: {
    kind: "choice",
    choices: ["tfjs", "cpu", "webgpu", "auto"],
    default: "tfjs",
    help:
      "where scoring runs: tfjs (on --backend), cpu (the fused plan on the CPU kernels), webgpu (the fused engine) or auto (webgpu on a real GPU, else cpu)",
  },
  judge: {
    kind: "string",
    value: "auto|self|RUN",
    default: "auto",
    help:
      "with --gen-samples: the judge — auto (the run's cached auto judge), self (this run's AR model) or a run folder with the same data, tokenizer and block length (its AR model: one judge for runs whose auto judges differ)",
  },
  "gen-samples": {
    kind: "integer",
    min: 0,
    max: EXPERIMENT_OPTIONS.genSamples.max, // the rows are held at once
    default: 0,
    help:
      "instead of the test split: generate this many rows (a denoiser at the run's largest --gen-steps) and score them under --judge: gen PPL with its 95% interval and the unigram JS divergence to the test split (0: off)",
  },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const { values } = readCommandLine(Deno.args, {
      command: "deno task evaluate",
      summary:
        `Scores a trained model of a run folder on the test split, as the run's
evaluation did: the exact NLL of a causal model, the continuous bound of a
denoiser. Prints one JSON line with NLL, BPT, PPL and bits per byte.`,
      options: OPTIONS,
    }, {
      check: ({ values }) => {
        if (values["gen-samples"] === 1) {
          throw new UsageError(
            "Option --gen-samples must be 0 (off) or at least 2 (a 95% interval needs two samples), got 1",
          );
        }
        if (values.samples !== undefined && values["gen-samples"] > 0) {
          throw new UsageError(
            "Option --samples sets the test bound's draws; with --gen-samples no bound is scored: leave one out",
          );
        }
        if (values.blocks !== undefined && values["gen-samples"] > 0) {
          throw new UsageError(
            "Option --blocks sets the test blocks scored; with --gen-samples the generated rows are scored and every test block is the unigram reference: leave one out",
          );
        }
        if (values.judge !== "auto" && values["gen-samples"] === 0) {
          throw new UsageError(
            `Option --judge ${values.judge} judges generated rows: it needs --gen-samples N (N ≥ 2)`,
          );
        }
      },
    });
    const backend = await initBackend({ prefer: values.backend });
    // No --seed: the run's first seed (a run made with --first-seed K has
    // no seed 0).
    const seed = values.seed ??
      (await readRun(values.run)).config.firstSeed ?? 0;
    if (values["gen-samples"] > 0) {
      const out = await scoreGeneration(values.run, {
        model: values.model,
        seed,
        samples: values["gen-samples"],
        engine: values.engine,
        backend: backend.reason,
        judge: values.judge,
        log: (line) => console.error(line),
      });
      console.log(JSON.stringify({ run: values.run, ...out }));
      tf.disposeVariables();
      return;
    }
    const score = await scoreTest(values.run, {
      model: values.model,
      seed,
      blocks: values.blocks,
      samples: values.samples,
      engine: values.engine,
      log: (line) => console.error(line),
    });
    console.log(JSON.stringify({ run: values.run, ...score }));
    tf.disposeVariables();
  });
}
