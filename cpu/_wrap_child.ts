// The child of wrap_test.ts: the job ring's sequence numbers (int32) run
// across their wrap, 2³¹ − 1 → −2³¹, started near it by testHooks.firstJob,
// against the same work numbered from 0. Two kinds of work: a chain of
// row-local LayerNorms with a late thread (its joins left out: the host
// runs ahead and waits on the ring's slots), and training steps of a small
// model (every job, join and slot), two threads splitting every call.
// Prints one JSON line. Private.

import { validateConfig } from "@d3pm/transformer";
import { CpuTransformer, createCpuKernels, layernormForward } from "./mod.ts";
import { runtimeOf } from "./_runtime.ts";
import { withTestHooks } from "./_test_hooks.ts";

const WRAP = 2 ** 31; // the first number past the int32 range

// Bits of a float array, as numbers (JSON compares them exactly).
const bits = (
  f: Float32Array,
) => [...new Uint32Array(Float32Array.from(f).buffer)];

// Seeded floats in [lo, hi).
function floats(n: number, seed: number, lo: number, hi: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (hi - lo) * (s / 2 ** 32);
  });
}

// Hooks for one creation only.
function made<T>(
  o: { firstJob: number; delayMs: number },
  create: () => Promise<T>,
): Promise<T> {
  return withTestHooks({ grain: 1, ...o }, create);
}

/** `jobs` LayerNorms in a row-local chain, each with its own weight and bias. */
async function chain(firstJob: number, delayMs: number, jobs: number) {
  const rows = 12, d = 16;
  const k = await made(
    { firstJob, delayMs },
    () =>
      createCpuKernels({
        words: 4 * rows * d + 2 * jobs * d + 2 * rows,
        threads: 3,
      }),
  );
  const rt = runtimeOf(k);
  try {
    const xs = [k.floats(rows * d), k.floats(rows * d)];
    xs[0].set(floats(rows * d, 1, -2, 2));
    const weight = k.floats(jobs * d), bias = k.floats(jobs * d);
    weight.set(floats(jobs * d, 2, 0.5, 1.5));
    bias.set(floats(jobs * d, 3, -0.5, 0.5));
    const mean = k.floats(rows), rstd = k.floats(rows);
    const first = rt.posted;
    rt.pipelined(() => {
      for (let i = 0; i < jobs; i++) {
        layernormForward(k, {
          rows,
          d,
          x: xs[i % 2],
          y: xs[(i + 1) % 2],
          weight: weight.subarray(i * d, (i + 1) * d),
          bias: bias.subarray(i * d, (i + 1) * d),
          mean,
          rstd,
        });
      }
    });
    return { first, last: rt.posted, y: bits(xs[jobs % 2]), mean: bits(mean) };
  } finally {
    k.dispose();
  }
}

/** Three training steps of a small causal model; the numbers at each step. */
async function train(firstJob: number) {
  const config = validateConfig({
    kind: "causal",
    vocabSize: 37,
    contextLength: 16,
    nLayer: 2,
    nHead: 3,
    dModel: 24,
    dMlp: 40,
    positions: "learned",
    timeConditioning: false,
    dTime: 8,
    dropout: 0,
  });
  const B = 4, T = 16, n = B * T;
  const e = await made(
    { firstJob, delayMs: 0 },
    () =>
      CpuTransformer.create(config, {
        batchSize: B,
        length: T,
        seed: 5,
        threads: 2,
      }),
  );
  const rt = runtimeOf(e.kernels);
  try {
    const posted = [rt.posted];
    const losses: number[] = [];
    for (let s = 0; s < 3; s++) {
      const ids = floats(2 * n, 10 + s, 0, 37).map(Math.floor);
      e.step({
        inputs: Int32Array.from(ids.slice(0, n)),
        targets: Int32Array.from(ids.slice(n)),
        weights: new Float32Array(n).fill(1 / n),
      }, 1e-2);
      losses.push((await e.readLoss()).loss);
      posted.push(rt.posted);
    }
    const weights = [...(await e.getWeights()).values()].flatMap((w) =>
      bits(w.data as Float32Array)
    );
    return { posted, losses, weights };
  } finally {
    e.dispose();
  }
}

const JOBS = 40;
const start = performance.now();
// The step's job count, numbered from 0: where to start for the wrap to
// fall inside the second step.
const plain = await train(0);
const perStep = plain.posted[1] - plain.posted[0];
const wrapped = await train(WRAP - perStep - Math.floor(perStep / 2));
const chainPlain = await chain(0, 0, JOBS);
const chainWrapped = await chain(WRAP - JOBS / 2, 2, JOBS);
console.log(JSON.stringify({
  perStep,
  train: { plain, wrapped },
  chain: { plain: chainPlain, wrapped: chainWrapped },
  seconds: (performance.now() - start) / 1000,
}));
