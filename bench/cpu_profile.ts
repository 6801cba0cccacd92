/**
 * Where the CPU engine's training step goes (issue 23's MFU target): the
 * bench:cpu reference step (4 layers, d 256, 4 heads, MLP 1024, T 128,
 * batch 8, V 4096; or `--shape tiny`) on `CpuTransformer`, every kernel job
 * timed on the host around its whole call (its split over the threads and
 * the join included), products keyed by their shape. Per job: ms per step,
 * its share of the step, calls, and the ms the host spent waiting for the
 * threads after its own part (the join: uneven parts, wake-up latency, and
 * on a loaded machine the other threads' lost time slices). `host_other`
 * is the step's time outside any job (the plan's closures, argument
 * checks, the loss read). Also the step's MFU against a 1024³ sgemm on the
 * same threads, measured in the same window. JSON lines.
 *
 *   deno task bench:cpu-profile [--shape reference|tiny] [--steps 10]
 *                               [--warmup 3] [--threads 2]
 */
import { prng } from "@d3pm/core";
import { blasThreads, loadCblas } from "@d3pm/backend/cblas";
import { CpuTransformer, MAX_CPU_THREADS } from "@d3pm/cpu";
import { type ModelConfig, preset } from "@d3pm/transformer";
import { readCommandLine } from "@d3pm/cli";
import { type JobProfile, startJobProfile } from "@d3pm/cpu/profile";
import { flopsPerToken, median, sgemmGflops } from "./_measure.ts";

const SHAPES: Record<string, { d: number; mlp: number; batch: number }> = {
  tiny: { d: 128, mlp: 512, batch: 4 },
  reference: { d: 256, mlp: 1024, batch: 8 },
};

const USAGE = {
  command: "deno task bench:cpu-profile",
  summary:
    `Times the CPU engine's training step kernel job by kernel job (products by
shape), with the host's wait for the threads after its own part, and the
step's MFU against a 1024³ sgemm on the same threads. Prints JSON lines.`,
  options: {
    shape: {
      kind: "choice",
      choices: ["reference", "tiny"],
      default: "reference",
      help: "bench:cpu's reference step or the tiny preset's",
    },
    steps: { kind: "integer", min: 1, default: 10, help: "timed steps" },
    warmup: { kind: "integer", min: 0, default: 3, help: "untimed steps" },
    threads: {
      kind: "integer",
      min: 1,
      max: MAX_CPU_THREADS,
      default: Math.min(navigator.hardwareConcurrency, MAX_CPU_THREADS),
      help: "kernel threads (the cores)",
    },
  },
} as const;

const args = readCommandLine(Deno.args, USAGE, { usageExit: 2 }).values;
const shape = SHAPES[args.shape];
const config: ModelConfig = preset("tiny", {
  kind: "causal",
  vocabSize: 4096,
  contextLength: 128,
  nLayer: 4,
  dModel: shape.d,
  nHead: 4,
  dMlp: shape.mlp,
  positions: "learned",
  dropout: 0,
});
const B = shape.batch, T = config.contextLength, V = config.vocabSize;
const n = B * T;

function emit(record: Record<string, unknown>): void {
  console.log(JSON.stringify(record));
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function sgemmAt(threads: number): number {
  const cblas = loadCblas();
  const control = blasThreads(cblas.library);
  const before = control?.get();
  control?.set(threads);
  try {
    return sgemmGflops(cblas);
  } finally {
    if (control && before !== undefined) control.set(before);
    control?.close();
    cblas.close();
  }
}

const engine = await CpuTransformer.create(config, {
  batchSize: B,
  length: T,
  seed: 1,
  threads: args.threads,
});
const rand = prng(7);
const inputs = Int32Array.from(
  { length: n },
  () => Math.floor(rand.next() * V),
);
const targets = Int32Array.from(
  { length: n },
  () => Math.floor(rand.next() * V),
);
const batch = { inputs, targets, weights: new Float32Array(n).fill(1 / n) };
const steps: number[] = [];
const jobs: JobProfile[] = [];
try {
  for (let i = 0; i < args.warmup; i++) {
    engine.step(batch, 3e-4);
    await engine.readLoss();
  }
  for (let i = 0; i < args.steps; i++) {
    const stop = startJobProfile(engine.kernels);
    const t0 = performance.now();
    engine.step(batch, 3e-4);
    await engine.readLoss();
    steps.push(performance.now() - t0);
    jobs.push(stop());
  }
} finally {
  engine.dispose();
}
const gflops = sgemmAt(args.threads);

const step = median(steps);
const names = new Set(jobs.flatMap((p) => [...p.keys()]));
const rows = [...names].map((job) => {
  const at = (
    f: (e: { calls: number; ms: number; waitMs: number }) => number,
  ) => median(jobs.map((p) => (p.has(job) ? f(p.get(job)!) : 0)));
  return {
    job,
    ms: at((e) => e.ms),
    wait: at((e) => e.waitMs),
    calls: at((e) => e.calls),
  };
}).sort((a, b) => b.ms - a.ms);
const inJobs = rows.reduce((t, r) => t + r.ms, 0);
for (const r of rows) {
  emit({
    shape: args.shape,
    job: r.job,
    ms_per_step: round(r.ms, 3),
    share: round(r.ms / step, 3),
    calls_per_step: r.calls,
    join_wait_ms: round(r.wait, 3),
  });
}
const sum = (p: (job: string) => boolean) =>
  rows.filter((r) => p(r.job)).reduce((t, r) => t + r.ms, 0);
const products = sum((j) => j.startsWith("gemm"));
const attention = sum((j) => j.startsWith("attention_"));
const fpt = flopsPerToken(config);
emit({
  shape: args.shape,
  threads: args.threads,
  steps: steps.length,
  step_ms_median: round(step, 2),
  step_ms: steps.map((t) => round(t, 1)),
  products_ms: round(products, 2),
  attention_ms: round(attention, 2),
  other_kernels_ms: round(inJobs - products - attention, 2),
  join_wait_ms: round(rows.reduce((t, r) => t + r.wait, 0), 2),
  host_other_ms: round(step - inJobs, 2),
  sgemm_gflops: round(gflops, 1),
  tokens_per_s: round(n / (step / 1000), 1),
  mfu: round((n / (step / 1000)) * fpt / (gflops * 1e9), 3),
});
