/**
 * `deno task bench:sgemm-libraries --library PATH [--threads 1,2]`: the
 * default CBLAS against another library (any `D3PM_CBLAS_PATH` would take:
 * MKL's, BLIS's, PyTorch's `libtorch_cpu.so`) on the products of the CPU
 * engine's reference step (d 256, MLP 1024, V 4096, 1,024 rows) and a 1024³
 * one, alternating call by call in one process, at each thread count. One
 * JSON line per shape and thread count: GFLOP/s of each (median of 5 timed
 * rounds) and the largest difference of their results.
 *
 * @module
 */
import { blasThreads, type Cblas, loadCblas } from "@d3pm/backend/cblas";
import { readCommandLine } from "@d3pm/cli";
import { prng } from "@d3pm/core";
import { median } from "./_measure.ts";

const { values: args } = readCommandLine(
  Deno.args,
  {
    command: "deno task bench:sgemm-libraries",
    summary:
      "Products of the CPU engine's reference step on the default CBLAS and on another library, alternating, at 1 and 2 threads (JSON lines).",
    options: {
      library: {
        kind: "string",
        value: "PATH",
        default: "",
        help:
          "the other library (required): a CBLAS, or one with Fortran sgemm_",
      },
      threads: {
        kind: "string",
        value: "LIST",
        default: "1,2",
        help: "thread counts, comma-separated",
      },
    },
  } as const,
  { usageExit: 2 },
);
if (args.library === "") {
  console.error("--library: give the other library's path (see --help)");
  Deno.exit(2);
}
const threadCounts = args.threads.split(",").map(Number);
if (threadCounts.some((t) => !Number.isInteger(t) || t < 1)) {
  console.error(`--threads: positive integers, got "${args.threads}"`);
  Deno.exit(2);
}

let base: Cblas, other: Cblas;
try {
  base = loadCblas();
  other = loadCblas({ path: args.library, coretype: false });
} catch (error) {
  console.error(`--library: ${error instanceof Error ? error.message : error}`);
  Deno.exit(2);
}
const controls = [blasThreads(base.library), blasThreads(other.library)];
console.log(JSON.stringify({
  bench: "sgemm-libraries",
  base: base.description,
  other: other.description,
}));

// [name, transA, transB, m, n, k], row-major.
const N = 111, T = 112;
const SHAPES: [string, number, number, number, number, number][] = [
  ["1024³", N, N, 1024, 1024, 1024],
  ["qkv forward (K 256)", N, T, 1024, 768, 256],
  ["MLP up (K 256)", N, T, 1024, 1024, 256],
  ["MLP down (K 1024)", N, T, 1024, 256, 1024],
  ["MLP up weight gradient (K 1024 rows)", T, N, 1024, 256, 1024],
  ["head (K 256)", N, T, 1024, 4096, 256],
  ["head weight gradient (K 1024 rows)", T, N, 4096, 256, 1024],
  ["half the rows, MLP up (split over 2)", N, T, 512, 1024, 256],
];

const rand = prng(5);
const fill = (n: number) =>
  Float32Array.from({ length: n }, () => rand.next() - 0.5);
for (const threads of threadCounts) {
  for (const c of controls) c?.set(threads);
  for (const [name, ta, tb, m, n, k] of SHAPES) {
    const a = fill(m * k), b = fill(k * n);
    const lda = ta === T ? m : k, ldb = tb === T ? k : n;
    const c1 = new Float32Array(m * n), c2 = new Float32Array(m * n);
    const call = (lib: Cblas, c: Float32Array) =>
      lib.sgemm(101, ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c, n);
    call(base, c1); // warm-up
    call(other, c2);
    let diff = 0;
    for (let i = 0; i < c1.length; i++) {
      diff = Math.max(diff, Math.abs(c1[i] - c2[i]));
    }
    const reps = Math.max(3, Math.round(2e10 / (2 * m * n * k)));
    const times: [number[], number[]] = [[], []];
    for (let round = 0; round < 5; round++) {
      for (const [side, lib, c] of [[0, base, c1], [1, other, c2]] as const) {
        const t0 = performance.now();
        for (let i = 0; i < reps; i++) call(lib, c);
        times[side].push((performance.now() - t0) / reps);
      }
    }
    const gflops = (ms: number) => +(2 * m * n * k / ms / 1e6).toFixed(1);
    const [g0, g1] = [gflops(median(times[0])), gflops(median(times[1]))];
    console.log(JSON.stringify({
      shape: name,
      m,
      n,
      k,
      threads,
      base_gflops: g0,
      other_gflops: g1,
      other_vs_base: +(g1 / g0).toFixed(3),
      max_abs_diff: diff,
    }));
  }
}
for (const c of controls) c?.close();
base.close();
other.close();
