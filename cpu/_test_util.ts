// Shared by the kernels' tests: kernels on two threads splitting every
// call, seeded data, the tolerance check, tfjs on its reference `cpu`
// backend, and an independent copy of the dropout hash. Private.

import { prng } from "@d3pm/core";
import { ignoreUnless } from "@d3pm/core/testing";
import { loadCblas } from "@d3pm/backend/cblas";
import * as tf from "@tensorflow/tfjs";
import { assert } from "@std/assert";
import { type CpuKernels, createCpuKernels } from "./kernels.ts";
import { CpuTransformer } from "./engine.ts";
import type { Executor } from "../webgpu/_parity_suite.ts";

let missing: string | null = null;
try {
  loadCblas().close();
} catch (e) {
  missing = (e as Error).message;
}

/** What a child script printed, and how it ended. */
export interface ChildRun {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/**
 * Run the script `child` (a module of this package) in its own Deno
 * process with the workspace's config; killed (SIGTERM) after `timeoutMs`,
 * so that a hang in it fails the test that runs it.
 */
export async function runChild(
  child: string,
  timeoutMs = 300_000,
): Promise<ChildRun> {
  const config = new URL("../deno.json", import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      decodeURIComponent(config.pathname),
      decodeURIComponent(new URL(child, import.meta.url).pathname),
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    signal: out.signal,
    stdout: text(out.stdout),
    stderr: text(out.stderr),
  };
}

/** Options of every kernel test: skipped (or failed where required) without a CBLAS. */
export const blas = { ignore: ignoreUnless("blas", missing) };

/**
 * The CPU engine for the parity suite (webgpu/_parity_suite.ts), on two
 * threads splitting every call; it always runs. Its scoring and decoding
 * run in one chunk of rows (16) or in chunks of one row.
 */
export const cpuExecutor: Executor = {
  name: "CpuTransformer",
  test: { ignore: false, sanitizeResources: false, sanitizeOps: false },
  create: (config, options) =>
    CpuTransformer.create(config, { ...options, threads: 2 }),
  rowChunks: [16, 1],
};

/**
 * Run `fn` with kernels of `words` words on `threads` threads (default 2)
 * that split every call (grain 1), disposing them after.
 */
export async function withKernels<R>(
  words: number,
  fn: (k: CpuKernels) => R | Promise<R>,
  threads = 2,
  products: "split" | "blas" = "split",
): Promise<R> {
  const k = await createCpuKernels({ words, threads, grain: 1, products });
  try {
    return await fn(k);
  } finally {
    k.dispose();
  }
}

/** Fill a view with seeded uniform values in [−scale, scale]. */
export function fill<T extends Float32Array>(
  view: T,
  seed: number,
  scale = 1,
): T {
  const rng = prng(seed);
  for (let i = 0; i < view.length; i++) {
    view[i] = (rng.next() * 2 - 1) * scale;
  }
  return view;
}

/** Largest |a − b| over max |b|. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new Error(`length ${a.length} vs ${b.length}`);
  }
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

/** Assert relError(actual, expected) ≤ tol, naming the tensor. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number> | tf.Tensor,
  tol: number,
  what: string,
): void {
  const e = expected instanceof tf.Tensor
    ? expected.dataSync() as Float32Array
    : expected;
  const err = relError(actual, e);
  assert(
    err <= tol,
    `${what}: relative error ${err.toExponential(2)} > ${tol}`,
  );
}

/** tfjs on its reference `cpu` backend. */
export async function tfCpu(): Promise<void> {
  await tf.setBackend("cpu");
}

function lowbias32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * The WebGPU engine's dropout factor of element i of a site, written out
 * from its WGSL (`keep` in webgpu/_wgsl.ts): 0 or 1/(1 − rate) in float32.
 */
export function keepRef(
  seed: number,
  site: number,
  rate: number,
  i: number,
): number {
  const h = lowbias32(
    (lowbias32((seed ^ lowbias32(site)) >>> 0) ^
      lowbias32((i ^ 0x9e3779b9) >>> 0)) >>> 0,
  );
  if (Math.fround((h >>> 8) * (1 / 16777216)) < Math.fround(rate)) return 0;
  return Math.fround(1 / Math.fround(1 - Math.fround(rate)));
}

/** A Float32Array copy of a tensor's values. */
export function values(t: tf.Tensor): Float32Array {
  return Float32Array.from(t.dataSync());
}
