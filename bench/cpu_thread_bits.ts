/**
 * Whether the CPU engine's training depends on its thread count: 5 AdamW
 * steps of the tiny preset's causal shape (batch 4 × 127, seeded weights and
 * seeded random ids) on 1, 2 and 3 kernel threads, compared bit for bit with
 * the 1-thread run. Prints one JSON line per thread count: weights that
 * differ, the largest difference, and the mean loss of each. (It may: a
 * product's bits follow its split over the threads where the BLAS kernel's
 * rounding depends on the block's rows — `cpu/README.md`, "Threads and
 * determinism" — so the `auto` judge's cache key names the threads. With
 * OpenBLAS 0.3.21 on a SkylakeX CPU: none differ under its own kernels,
 * 1,143,130 of 1,317,632 under `OPENBLAS_CORETYPE=Haswell`.)
 *
 *   deno run -A bench/cpu_thread_bits.ts
 *
 * @module
 */
import { CpuTransformer } from "@d3pm/cpu";
import { preset } from "@d3pm/transformer";
import { prng } from "@d3pm/core";
import { readCommandLine } from "@d3pm/cli";

// No options: --help prints this, anything else is refused before the runs.
readCommandLine(Deno.args, {
  command: "deno run -A bench/cpu_thread_bits.ts",
  summary:
    `Trains 5 AdamW steps of the tiny preset's causal shape on 1, 2 and 3 CPU
kernel threads and prints, per thread count, the weights that differ from the
1-thread run's bits, the largest difference, and the mean loss (JSON lines).`,
  options: {},
}, { usageExit: 2 });

const config = preset("tiny", { kind: "causal" });
const B = 4, T = 127, V = config.vocabSize;

async function train(threads: number) {
  const e = await CpuTransformer.create(config, {
    batchSize: B,
    length: T,
    seed: 7919,
    threads,
  });
  try {
    const r = prng(1);
    for (let s = 0; s < 5; s++) {
      const inputs = new Int32Array(B * T), targets = new Int32Array(B * T);
      for (let i = 0; i < B * T; i++) {
        inputs[i] = r.nextInt(V);
        targets[i] = r.nextInt(V);
      }
      const weights = new Float32Array(B * T).fill(1 / (B * T));
      e.step({ inputs, targets, weights }, 1e-3);
    }
    return { weights: await e.getWeights(), loss: (await e.readLoss()).loss };
  } finally {
    e.dispose();
  }
}

const one = await train(1);
let total = 0;
for (const w of one.weights.values()) total += w.data.length;
for (const threads of [1, 2, 3]) {
  const other = threads === 1 ? await train(1) : await train(threads);
  let differ = 0, largest = 0;
  for (const [name, w] of one.weights) {
    const a = w.data, b = other.weights.get(name)!.data;
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) {
        differ++;
        largest = Math.max(largest, Math.abs(a[i] - b[i]));
      }
    }
  }
  console.log(JSON.stringify({
    bench: "cpu_thread_bits",
    threads,
    against: 1,
    weights: total,
    differ,
    largest,
    loss: other.loss,
    loss1: one.loss,
  }));
}
