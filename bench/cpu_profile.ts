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
 * With `--joins every` the engine joins the threads after every job (as
 * before the joins between row-local jobs were left out); `--joins both`
 * runs one engine of each side by side, alternating step by step (order
 * swapped every step), checks their losses are the same bits, and prints
 * each one's figures and the ratio. `elidable_joins` and
 * `elidable_wait_ms` (of an engine joining after every job): the joins
 * between row-local jobs of the same split, and the host's wait in them.
 *
 *   deno task bench:cpu-profile [--shape reference|tiny] [--steps 10]
 *                               [--warmup 3] [--threads 2]
 *                               [--joins elide|every|both]
 */
import { blasThreads, loadCblas } from "@d3pm/backend/cblas";
import { CpuTransformer, MAX_CPU_THREADS } from "@d3pm/cpu";
import type { ModelConfig } from "@d3pm/transformer";
import { readCommandLine } from "@d3pm/cli";
import {
  type JobProfile,
  setJoinElision,
  startJobProfile,
} from "@d3pm/cpu/profile";
import { flopsPerToken, median, sgemmGflops } from "./_measure.ts";
import { PROFILE_SHAPES, profileConfig, randomBatch } from "./_profile_step.ts";

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
    joins: {
      kind: "choice",
      choices: ["elide", "every", "both"],
      default: "elide",
      help:
        "leave out the joins between row-local jobs, join after every job, or both side by side",
    },
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
const config: ModelConfig = profileConfig(args.shape);
const B = PROFILE_SHAPES[args.shape].batch, T = config.contextLength;
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

const modes = args.joins === "both" ? ["every", "elide"] : [args.joins];
const engines: CpuTransformer[] = [];
const batch = randomBatch(n, config.vocabSize);
const stepsOf = modes.map(() => [] as number[]);
const jobsOf = modes.map(() => [] as JobProfile[]);
let sameBits = true;
const bits = new Float64Array(1);
const bitsOf = (x: number) => {
  bits[0] = x;
  return new BigUint64Array(bits.buffer)[0];
};
try {
  for (const mode of modes) {
    const engine = await CpuTransformer.create(config, {
      batchSize: B,
      length: T,
      seed: 1,
      threads: args.threads,
    });
    engines.push(engine);
    setJoinElision(engine.kernels, mode === "elide");
  }
  for (let i = 0; i < args.warmup + args.steps; i++) {
    const losses: number[] = [], gradNorms: number[] = [];
    // Each engine first on every other step.
    const order = engines.map((_, e) => e);
    if (i % 2 === 1) order.reverse();
    for (const e of order) {
      const engine = engines[e];
      const timed = i >= args.warmup;
      const stop = timed ? startJobProfile(engine.kernels) : null;
      const t0 = performance.now();
      engine.step(batch, 3e-4);
      const r = await engine.readLoss();
      losses[e] = r.loss;
      gradNorms[e] = r.gradNorm;
      if (stop) {
        stepsOf[e].push(performance.now() - t0);
        jobsOf[e].push(stop());
      }
    }
    if (
      losses.some((l) => bitsOf(l) !== bitsOf(losses[0])) ||
      gradNorms.some((g) => bitsOf(g) !== bitsOf(gradNorms[0]))
    ) sameBits = false;
  }
} finally {
  for (const engine of engines) engine.dispose();
}
const load = Deno.loadavg().map((x) => round(x, 2));
const fpt = flopsPerToken(config);
const summaries = modes.map((mode, e) => {
  const steps = stepsOf[e], jobs = jobsOf[e];
  const step = median(steps);
  const names = new Set(jobs.flatMap((p) => [...p.keys()]));
  const rows = [...names].map((job) => {
    const at = (
      f: (
        e: {
          calls: number;
          ms: number;
          waitMs: number;
          chained?: number;
          chainedWaitMs?: number;
        },
      ) => number,
    ) => median(jobs.map((p) => (p.has(job) ? f(p.get(job)!) : 0)));
    return {
      job,
      ms: at((e) => e.ms),
      wait: at((e) => e.waitMs),
      calls: at((e) => e.calls),
      chained: at((e) => e.chained ?? 0),
      chainedWait: at((e) => e.chainedWaitMs ?? 0),
    };
  }).sort((a, b) => b.ms - a.ms);
  const inJobs = rows.reduce((t, r) => t + r.ms, 0);
  if (modes.length === 1) {
    for (const r of rows) {
      emit({
        shape: args.shape,
        job: r.job,
        ms_per_step: round(r.ms, 3),
        share: round(r.ms / step, 3),
        calls_per_step: r.calls,
        join_wait_ms: round(r.wait, 3),
        elidable_joins: r.chained,
      });
    }
  }
  const sum = (p: (job: string) => boolean) =>
    rows.filter((r) => p(r.job)).reduce((t, r) => t + r.ms, 0);
  const products = sum((j) => j.startsWith("gemm"));
  const attention = sum((j) => j.startsWith("attention_"));
  // Per step (medians over steps, not sums of per-job medians).
  const perStep = (f: (p: JobProfile) => number) => median(jobs.map(f));
  const total = (
    p: JobProfile,
    f: (e: JobProfile extends Map<string, infer E> ? E : never) => number,
  ) => [...p.values()].reduce((t, e) => t + f(e), 0);
  return {
    joins: mode,
    step,
    record: {
      shape: args.shape,
      threads: args.threads,
      joins: mode,
      steps: steps.length,
      step_ms_median: round(step, 2),
      step_ms: steps.map((t) => round(t, 1)),
      products_ms: round(products, 2),
      attention_ms: round(attention, 2),
      other_kernels_ms: round(inJobs - products - attention, 2),
      split_jobs: perStep((p) => total(p, (e) => e.split)),
      join_wait_ms: round(perStep((p) => total(p, (e) => e.waitMs)), 2),
      elidable_joins: perStep((p) => total(p, (e) => e.chained ?? 0)),
      elidable_wait_ms: round(
        perStep((p) => total(p, (e) => e.chainedWaitMs ?? 0)),
        2,
      ),
      host_other_ms: round(step - inJobs, 2),
      tokens_per_s: round(n / (step / 1000), 1),
    } as Record<string, unknown>,
  };
});
const gflops = sgemmAt(args.threads);
for (const s of summaries) {
  const tps = n / (s.step / 1000);
  emit({
    ...s.record,
    sgemm_gflops: round(gflops, 1),
    mfu: round(tps * fpt / (gflops * 1e9), 3),
    loadavg: load,
  });
}
if (summaries.length === 2) {
  emit({
    shape: args.shape,
    elide_speedup: round(summaries[0].step / summaries[1].step, 3),
    same_loss_bits: sameBits,
    loadavg: load,
  });
}
