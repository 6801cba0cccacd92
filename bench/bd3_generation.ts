// deno task bench:bd3-generation — block diffusion's generation with and
// without the KV cache of the clean blocks, side by side in one process, on
// a finished run's bd3 model: batches of --batch rows of the run's block
// length at --steps steps per block, alternating the two paths, medians
// after a warm-up. One JSON line per path: batches/s, forward passes per
// batch, and how many of the sampled tokens the two paths drew alike.
import { initBackend } from "@d3pm/backend";
import { prng } from "@d3pm/core";
import { readCommandLine, runCli } from "@d3pm/cli";
import { BD3, loadTrained } from "@d3pm/experiment";
import type { BlockDiffusion } from "@d3pm/diffusion";

const args = readCommandLine(Deno.args, {
  command: "deno task bench:bd3-generation",
  summary:
    `Generates with a finished run's bd3 model (seed --seed) on tfjs, with the
KV cache of the clean blocks (a step reads the block only) and without (a step
reads the blocks so far), alternating, --rounds rounds of --batches batches;
prints one JSON line per path with the median batches/s.`,
  options: {
    run: {
      kind: "string",
      value: "DIR",
      default: "runs/latest",
      help: "a finished run folder with a bd3 model",
    },
    seed: {
      kind: "integer",
      min: 0,
      help: "which seed's model (default: the run's first seed)",
    },
    batch: { kind: "integer", min: 1, max: 64, default: 4, help: "rows" },
    steps: {
      kind: "integer",
      min: 1,
      max: 1000,
      default: 16,
      help: "steps per block",
    },
    batches: {
      kind: "integer",
      min: 1,
      max: 100,
      default: 2,
      help: "batches a round",
    },
    rounds: { kind: "integer", min: 1, max: 20, default: 3, help: "rounds" },
  },
}, { usageExit: 2 }).values;

await runCli(async () => {
  // As the experiment's tools: the fastest tfjs backend here (blas on a CPU).
  await initBackend({ prefer: "auto" });
  const run = await loadTrained(args.run, { seed: args.seed, model: BD3 });
  const process = run.process as BlockDiffusion;
  const length = run.config.blockLength;
  const generate = (kvCache: boolean, i: number) =>
    process.sample(run.model, {
      batchSize: args.batch,
      length,
      steps: args.steps,
      prng: prng(i),
      kvCache,
    });
  await generate(true, 1000); // warm-up
  await generate(false, 1000);
  const rates: Record<string, number[]> = { cached: [], uncached: [] };
  const passes: Record<string, number> = {};
  let same = 0, drawn = 0;
  for (let r = 0; r < args.rounds; r++) {
    const outs: Record<string, { tokens: Int32Array }[]> = {};
    for (const kv of r % 2 === 0 ? [true, false] : [false, true]) {
      const name = kv ? "cached" : "uncached";
      const start = performance.now();
      outs[name] = [];
      for (let i = 0; i < args.batches; i++) {
        const out = await generate(kv, i);
        outs[name].push(out);
        passes[name] = out.forwardPasses;
      }
      rates[name].push(args.batches / ((performance.now() - start) / 1000));
    }
    // The same draws (seeds i) on both paths: how many tokens came out alike.
    outs.cached.forEach((c, i) => {
      drawn += c.tokens.length;
      same += c.tokens.filter((t, j) => t === outs.uncached[i].tokens[j])
        .length;
    });
  }
  const median = (xs: number[]) =>
    [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const name of ["cached", "uncached"]) {
    console.log(JSON.stringify({
      bench: "bd3.generate",
      path: name,
      run: args.run,
      blockSize: process.spec.blockSize,
      stepsPerBlock: args.steps,
      batch: args.batch,
      length,
      batchesPerS: median(rates[name]),
      roundsBatchesPerS: rates[name],
      forwardPassesPerBatch: passes[name],
      tokensAlike: same / drawn,
    }));
  }
  run.model.dispose();
});
