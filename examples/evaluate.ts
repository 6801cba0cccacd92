/**
 * `deno task evaluate`: a trained model of a run folder (finished, or
 * imported) scored on the test split again (`@d3pm/experiment`'s
 * `scoreTest`); prints one JSON line. With `--gen-samples N`, instead: N
 * rows generated and judged by the run's auto judge — generative perplexity
 * with its 95% interval, and the unigram Jensen–Shannon divergence to the
 * test split (beside its floor: real test text of the same size).
 *
 * @module
 */
import { autoregressive } from "@d3pm/autoregressive";
import { initBackend } from "@d3pm/backend";
import { readCommandLine, runCli } from "@d3pm/cli";
import { prng, type TokenBatch } from "@d3pm/core";
import { perplexityInterval, perSampleNll, unigramJsd } from "@d3pm/eval";
import {
  chooseEngine,
  engineFingerprint,
  genStepList,
  judgeKey,
  judgePlan,
  loadTrained,
  placeModel,
  prepareData,
  readRun,
  RunFolder,
  scoreTest,
} from "@d3pm/experiment";
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
    log: (line: string) => void;
  },
): Promise<Record<string, unknown>> {
  const { config: saved } = await readRun(dir);
  // Every test block: the unigram reference and its floor need real text.
  const config = { ...saved, resume: true, evalBlocks: 0 };
  const data = await prepareData(config, new RunFolder(dir), o.log);
  const trained = await loadTrained(dir, { seed: o.seed, model: o.model });
  const placed = await placeModel(trained.model, o.engine);
  o.log(`engine: ${placed.engine}`);
  const L = config.blockLength;
  const steps = Math.max(...genStepList(config));
  const rng = prng(o.seed).fork(`gen-samples-${o.model}`);
  const rows = new Int32Array(o.samples * L);
  const started = performance.now();
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
        ...(o.model === "ar" ? {} : { steps }),
      });
      rows.set(out.tokens.subarray(0, batch * L), r * L);
    }
  } finally {
    placed.dispose();
  }
  const genSeconds = (performance.now() - started) / 1000;
  // The run's auto judge: cached per engine, so the one the run's own
  // engine choice resolves to here (scoring then runs on --engine).
  const runEngine = await chooseEngine(config);
  if (runEngine.kind === "webgpu") runEngine.device.destroy();
  const fingerprint = await engineFingerprint(runEngine, o.backend);
  const judgeDir = `.cache/judges/${
    judgeKey(judgePlan(config, data, fingerprint))
  }`;
  const judgeModel = await loadModel(judgeDir).catch((e: Error) => {
    throw new Error(
      `No auto judge of this run's data and engine (${fingerprint}) in ${judgeDir}: ${e.message}; a run with --judge auto on this machine trains it`,
    );
  });
  const judgePlaced = await placeModel(judgeModel, o.engine);
  const ar = autoregressive({
    kind: "autoregressive",
    start: data.specials.bos,
    padId: data.specials.pad,
  });
  const t0 = performance.now();
  let judged;
  try {
    judged = await perSampleNll(
      rows,
      L,
      (x0: TokenBatch) => ar.score(judgePlaced.model, x0),
    );
  } finally {
    judgePlaced.dispose();
  }
  const judgeSeconds = (performance.now() - t0) / 1000;
  const ppl = perplexityInterval(judged.nlls, judged.tokens);
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
  return {
    model: o.model,
    seed: o.seed,
    ...(o.model === "ar" ? {} : { steps }),
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
    judge: judgeDir,
  };
}

const OPTIONS = {
  run: {
    kind: "string",
    value: "DIR",
    default: "runs/latest",
    help: "the run folder",
  },
  model: {
    kind: "string",
    value: "NAME",
    default: "ar",
    help: "the contestant: ar, d3pm, mlm (one the run trained)",
  },
  seed: { kind: "integer", min: 0, default: 0, help: "which seed's model" },
  blocks: {
    kind: "integer",
    min: 0,
    help: "test blocks (0: all; default: the run's --eval-blocks)",
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
  "gen-samples": {
    kind: "integer",
    min: 0,
    default: 0,
    help:
      "instead of the test split: generate this many rows (the D3PM at its largest --gen-steps) and judge them with the run's auto judge: gen PPL with its 95% interval and the unigram JS divergence to the test split (0: off)",
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
    });
    const backend = await initBackend({ prefer: values.backend });
    if (values["gen-samples"] > 0) {
      const out = await scoreGeneration(values.run, {
        model: values.model,
        seed: values.seed,
        samples: values["gen-samples"],
        engine: values.engine,
        backend: backend.reason,
        log: (line) => console.error(line),
      });
      console.log(JSON.stringify({ run: values.run, ...out }));
      tf.disposeVariables();
      return;
    }
    const score = await scoreTest(values.run, {
      model: values.model,
      seed: values.seed,
      blocks: values.blocks,
      engine: values.engine,
      log: (line) => console.error(line),
    });
    console.log(JSON.stringify({ run: values.run, ...score }));
    tf.disposeVariables();
  });
}
