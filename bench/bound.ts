// deno task bench:bound — the spread of the D3PM's Monte-Carlo bound: a
// finished run's trained D3PM scored on its test (or valid) blocks several times with
// different draws, by time and by mask count, at 1 and 16 draws per block.
// One JSON line per estimator: mean, sd across repeats, the reported standard
// error of one evaluation, and seconds per evaluation. A last line: the mean
// cross-entropy of the masked tokens at fixed masking rates (how much the
// denoiser gets from its context, from 5% masked to all of it).
import { prng } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { subsCrossEntropy } from "@d3pm/diffusion";
import { overBlocks } from "@d3pm/eval";
import { initBackend } from "@d3pm/backend";
import { readCommandLine, runCli } from "@d3pm/cli";
import {
  ConfigError,
  D3PM,
  loadTrained,
  prepareRunData,
  processStagger,
  RunFolder,
} from "@d3pm/experiment";

const args = readCommandLine(Deno.args, {
  command: "deno task bench:bound",
  summary:
    `Scores a finished run's D3PM (seed --seed) on its test blocks --repeats
times with different draws, for each estimator of the continuous bound (1 and
16 draws per block, by time and by mask count), and prints one JSON line per
estimator: the mean, the sd across repeats, the standard error one evaluation
reports, and seconds per evaluation; then one line with the mean cross-entropy
of the masked tokens at masking rates from 5% to 100% (minutes on a 2-core
CPU).`,
  options: {
    run: {
      kind: "string",
      value: "DIR",
      default: "runs/latest",
      help: "a finished run folder",
    },
    seed: {
      kind: "integer",
      min: 0,
      help: "which seed's model (default: the run's first seed)",
    },
    split: {
      kind: "choice",
      choices: ["test", "valid"],
      default: "test",
      help:
        "score the test blocks, or the valid blocks (the first --valid-blocks of the run, as its validation does)",
    },
    "single-only": {
      kind: "boolean",
      default: false,
      help: "only the estimators with one draw per block (as validation draws)",
    },
    repeats: {
      kind: "integer",
      min: 2,
      default: 5,
      help: "evaluations per estimator",
    },
    "rates-only": {
      kind: "boolean",
      default: false,
      help: "only the last line: the masked tokens' cross-entropy by rate",
    },
  },
}, { usageExit: 2 }).values;

// A bad run folder, seed or model is one `error: …` line, not a stack trace.
await runCli(async () => {
  await initBackend({ prefer: "auto" });
  const run = await loadTrained(args.run, { seed: args.seed, model: D3PM });
  // No --seed: the run's first seed, as evaluate and sample take it.
  const seed = args.seed ?? run.config.firstSeed ?? 0;
  if (processStagger(run.process) > 0) {
    run.model.dispose();
    throw new ConfigError(
      `Cannot bench ${args.run}: its D3PM's masking is staggered, and it compares draws by mask count, which assume one clock for every position, and masking rates shared by every position`,
    );
  }
  // The files at its --data must be those it trained on (data.json).
  const data = await prepareRunData(run.config, new RunFolder(args.run));
  const blocks = args.split === "valid" ? data.valid : data.test;
  for (
    const [samples, draws] of args["rates-only"] ? [] : [
      [1, "time"],
      [1, "count"],
      [16, "time"],
      [16, "count"],
    ].filter(([samples]) => !args["single-only"] || samples === 1) as [
      number,
      "time" | "count",
    ][]
  ) {
    const xs: number[] = [];
    let stderr = 0;
    const start = performance.now();
    for (let i = 0; i < args.repeats; i++) {
      const rng = prng(1000 + i);
      const est = await overBlocks(
        blocks,
        (x0) => run.process.bound(run.model, x0, { prng: rng, samples, draws }),
      );
      xs.push(est.nats);
      stderr += est.stderr / args.repeats;
    }
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(
      xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1),
    );
    console.log(JSON.stringify({
      bench: "bound-spread",
      run: args.run,
      seed,
      split: args.split,
      blocks: blocks.count,
      draws,
      samplesPerBlock: samples,
      repeats: args.repeats,
      mean,
      sdAcrossRepeats: sd,
      meanReportedStderr: stderr,
      secondsPerEvaluation: (performance.now() - start) / 1000 / args.repeats,
    }));
  }
  // Masked-token cross-entropy at fixed rates: exactly round(rate · L) tokens
  // of each test block masked, a uniform subset.
  const rates = [0.05, 0.15, 0.3, 0.5, 0.7, 0.85, 0.95, 1];
  const maskId = run.process.spec.maskId;
  const { length: l } = data.test;
  const byRate: Record<string, number> = {};
  for (const rate of rates) {
    const k = Math.max(1, Math.round(rate * l));
    const rng = prng(77);
    let sum = 0, n = 0;
    for (let first = 0; first < data.test.count; first += 8) {
      const b = Math.min(8, data.test.count - first);
      const tokens = Int32Array.from(
        data.test.data.subarray(first * l, (first + b) * l),
      );
      const xt = Int32Array.from(tokens);
      for (let r = 0; r < b; r++) {
        const pos = Array.from({ length: l }, (_, i) => r * l + i);
        for (let j = 0; j < k; j++) {
          const pick = j + Math.floor(rng.next() * (l - j));
          [pos[j], pos[pick]] = [pos[pick], pos[j]];
          xt[pos[j]] = maskId;
        }
      }
      const ce = tf.tidy(() =>
        subsCrossEntropy(
          run.model.forward(tf.tensor2d(xt, [b, l], "int32"), {
            training: false,
          }),
          tokens,
          xt,
          maskId,
        )
      );
      const values = await ce.data();
      ce.dispose();
      for (let i = 0; i < values.length; i++) {
        if (xt[i] === maskId) (sum += values[i]), n++;
      }
    }
    byRate[String(rate)] = sum / n;
  }
  console.log(JSON.stringify({
    bench: "masked-ce-by-rate",
    run: args.run,
    seed,
    blocks: data.test.count,
    natsPerMaskedToken: byRate,
    unigramEntropy: data.facts.unigramEntropy,
  }));
  run.model.dispose();
}, { usageExit: 2 });
