/**
 * OpenBLAS's kernel sets side by side on this CPU: for every core type the
 * CPU can execute (`runnableCoretypes` of `@d3pm/backend/cblas`), in a fresh
 * process each (OpenBLAS reads `OPENBLAS_CORETYPE` once, when it loads):
 *
 * - `speed`: GFLOP/s of `cblas_sgemm` at the experiment's matrix shapes (the
 *   tiny preset's and the reference step's projections, MLP and head over
 *   one batch of 4 × 128 tokens) and at 1024³, medians after warm-up;
 * - `drift`: how far the pinned micro run moves from its pins under that
 *   kernel set, at each thread count — the measurement that sets the pinned
 *   tests' tolerances: on tfjs (`tests/pinned_losses_test.ts`, pins
 *   `tests/testdata/pinned_losses.json`) and on the CPU engine
 *   (`tests/optimiser_options_test.ts`, pins `pinned_losses_cpu.json`).
 *
 * Prints one JSON line per measurement, then a summary line (the fastest
 * kernel set per shape, the one the backend picks, and the largest drift).
 *
 *   deno task bench:coretypes [--measure speed,drift] [--threads 1,2] [--engines tfjs,cpu] [--reps 20]
 *
 * @module
 */
import {
  coretypeForFlags,
  loadCblas,
  readCpuFlags,
  runnableCoretypes,
} from "@d3pm/backend/cblas";
import { CBLAS_NO_TRANS, CBLAS_ROW_MAJOR } from "@d3pm/backend/cblas";
import { readCommandLine, UsageError } from "@d3pm/cli";

const USAGE = {
  command: "deno task bench:coretypes",
  summary:
    `Times cblas_sgemm under every OpenBLAS kernel set this CPU can run, and how far
the pinned micro run drifts from its pins under each (and each thread count).
One JSON line per measurement, then a summary line.`,
  options: {
    measure: {
      kind: "string",
      value: "LIST",
      default: "speed,drift",
      help: "speed, drift or both",
    },
    threads: {
      kind: "string",
      value: "LIST",
      default: "1,2",
      help: "OpenBLAS thread counts for the drift runs",
    },
    engines: {
      kind: "string",
      value: "LIST",
      default: "tfjs,cpu",
      help:
        "the engines whose pinned run the drift runs train: tfjs, cpu or both",
    },
    reps: {
      kind: "integer",
      min: 1,
      default: 20,
      help: "timed products per shape",
    },
    child: {
      kind: "string",
      value: "CORETYPE",
      default: "",
      help: "(internal) time sgemm in this process under CORETYPE",
    },
  },
} as const;

/** [M, K, N] of C[M, N] = A[M, K] · B[K, N], with a label. */
const SHAPES: readonly [string, number, number, number][] = [
  ["tiny qkv 512x128x384", 512, 128, 384],
  ["tiny mlp 512x128x512", 512, 128, 512],
  ["tiny head 512x128x4096", 512, 128, 4096],
  ["ref qkv 1024x256x768", 1024, 256, 768],
  ["ref mlp-out 1024x1024x256", 1024, 1024, 256],
  ["ref head 1024x256x4096", 1024, 256, 4096],
  ["square 1024^3", 1024, 1024, 1024],
];

const { values } = readCommandLine(Deno.args, USAGE, {
  usageExit: 2,
  check: ({ values }) => {
    for (const m of values.measure.split(",")) {
      if (m !== "speed" && m !== "drift") {
        throw new UsageError(
          `Option --measure takes speed, drift or both, got ${m}`,
        );
      }
    }
    for (const e of values.engines.split(",")) {
      if (e !== "tfjs" && e !== "cpu") {
        throw new UsageError(
          `Option --engines takes tfjs, cpu or both, got ${e}`,
        );
      }
    }
    for (const t of values.threads.split(",")) {
      const n = Number(t);
      if (!Number.isSafeInteger(n) || n < 1 || n > 256) {
        throw new UsageError(
          `Option --threads takes integers in [1, 256], got ${t}`,
        );
      }
    }
  },
});
const args = {
  measure: values.measure.split(","),
  threads: values.threads.split(",").map(Number),
  engines: values.engines.split(",") as ("tfjs" | "cpu")[],
  reps: values.reps,
  child: values.child,
};

function emit(record: Record<string, unknown>): void {
  console.log(JSON.stringify(record));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** In the child: GFLOP/s per shape under the kernel set it was started with. */
function timeShapes(reps: number): void {
  const blas = loadCblas({ coretype: false });
  for (const [label, m, k, n] of SHAPES) {
    const a = Float32Array.from({ length: m * k }, (_, i) => (i % 7) - 3);
    const b = Float32Array.from({ length: k * n }, (_, i) => (i % 5) - 2);
    const c = new Float32Array(m * n);
    const times: number[] = [];
    for (let r = 0; r < reps + 3; r++) {
      const t0 = performance.now();
      blas.sgemm(
        CBLAS_ROW_MAJOR,
        CBLAS_NO_TRANS,
        CBLAS_NO_TRANS,
        m,
        n,
        k,
        1,
        a,
        k,
        b,
        n,
        0,
        c,
        n,
      );
      if (r >= 3) times.push(performance.now() - t0);
    }
    const ms = median(times);
    emit({
      coretype: blas.coretype,
      threads: blas.threads,
      shape: label,
      ms_median: Number(ms.toFixed(4)),
      gflops: Number(((2 * m * k * n) / (ms / 1000) / 1e9).toFixed(1)),
    });
  }
  blas.close();
}

async function child(
  script: string,
  args: string[],
  env: Record<string, string>,
): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (out.code !== 0) {
    throw new Error(
      `${script} ${args.join(" ")} under ${
        JSON.stringify(env)
      } exited ${out.code}: ${
        dec.decode(out.stderr).trim().split("\n").at(-1)
      }`,
    );
  }
  return dec.decode(out.stdout);
}

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname);

async function speed(
  coretypes: string[],
  reps: number,
): Promise<Map<string, Map<string, number>>> {
  const byShape = new Map<string, Map<string, number>>();
  for (const coretype of coretypes) {
    const text = await child(
      new URL(import.meta.url).pathname,
      ["--child", coretype, "--reps", String(reps)],
      { OPENBLAS_CORETYPE: coretype },
    );
    for (const line of text.trim().split("\n")) {
      console.log(line);
      const r = JSON.parse(line);
      if (!byShape.has(r.shape)) byShape.set(r.shape, new Map());
      byShape.get(r.shape)!.set(coretype, r.gflops);
    }
  }
  return byShape;
}

/** Each engine's pin file and the flags its run adds to the pins' command. */
const PINNED_RUNS = {
  // `--engine tfjs` named: `auto` trains on the CPU engine where no GPU is.
  tfjs: { pins: "pinned_losses.json", flags: ["--engine", "tfjs"] },
  // The fused engine logs every `--log-every` steps: every step here.
  cpu: {
    pins: "pinned_losses_cpu.json",
    flags: ["--engine", "cpu", "--log-every", "1"],
  },
} as const;

/**
 * Largest |loss − pin| of each model over steps 1–12 and 13–end, per run;
 * the largest of each engine's runs.
 */
async function drift(
  coretypes: string[],
  threads: number[],
  engines: ("tfjs" | "cpu")[],
): Promise<Record<string, number>> {
  // Per engine: their pinned tests' tolerances differ.
  const largest: Record<string, number> = {};
  for (const engine of engines) {
    largest[engine] = 0;
    const run = PINNED_RUNS[engine];
    const pins = JSON.parse(
      await Deno.readTextFile(`${ROOT}tests/testdata/${run.pins}`),
    ) as { command: string; ar: number[]; d3pm: number[] };
    for (const coretype of coretypes) {
      for (const t of threads) {
        const record = await driftOf(pins, run.flags, coretype, t);
        largest[engine] = Math.max(
          largest[engine],
          ...Object.values(record.drift),
        );
        emit({ engine, coretype, threads: t, ...record.drift });
      }
    }
  }
  return largest;
}

/** One pinned run under `coretype` and `threads`: each model's drift. */
async function driftOf(
  pins: { command: string; ar: number[]; d3pm: number[] },
  flags: readonly string[],
  coretype: string,
  threads: number,
): Promise<{ drift: Record<string, number> }> {
  const out = await Deno.makeTempDir();
  try {
    await child(
      `${ROOT}examples/experiment.ts`,
      [...pins.command.split(" "), ...flags, "--out", out],
      { OPENBLAS_CORETYPE: coretype, OPENBLAS_NUM_THREADS: String(threads) },
    );
    const rows = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim()
      .split("\n").map((l) => JSON.parse(l)).filter((m) => "loss" in m);
    const drift: Record<string, number> = {};
    for (const model of ["ar", "d3pm"] as const) {
      const got = rows.filter((m) => m.model === model).map((m) =>
        m.loss as number
      );
      // A missing step is NaN, which no tolerance takes.
      const d = pins[model].map((p, i) => Math.abs((got[i] ?? NaN) - p));
      drift[`${model}_drift_steps_1_12`] = Math.max(...d.slice(0, 12));
      drift[`${model}_drift_steps_13_${d.length}`] = Math.max(...d.slice(12));
    }
    return { drift };
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

if (args.child !== "") {
  timeShapes(args.reps);
} else {
  const flags = Deno.build.arch === "x86_64" ? readCpuFlags() : undefined;
  if (flags === undefined) {
    emit({
      skipped:
        `no x86-64 CPU flags to choose kernel sets from (${Deno.build.os}/${Deno.build.arch})`,
    });
  } else {
    const coretypes = runnableCoretypes(flags);
    const picked = coretypeForFlags(flags);
    emit({ cpu_coretypes: coretypes, backend_picks: picked });
    const summary: Record<string, unknown> = {
      summary: true,
      backend_picks: picked,
    };
    if (args.measure.includes("speed")) {
      const byShape = await speed(coretypes, args.reps);
      summary.fastest = Object.fromEntries(
        [...byShape].map(([shape, g]) => {
          const best = [...g].sort((a, b) => b[1] - a[1])[0];
          const pickedG = g.get(
            coretypes.find((c) => c.toUpperCase() === picked) ?? "",
          );
          return [shape, {
            fastest: best[0],
            gflops: best[1],
            picked_gflops: pickedG,
          }];
        }),
      );
    }
    if (args.measure.includes("drift")) {
      summary.largest_drift = await drift(
        coretypes,
        args.threads,
        args.engines,
      );
    }
    emit(summary);
  }
}
