/**
 * The CPU executor's kernel memory: one shared WebAssembly memory that
 * holds the arena (parameters, gradients, moments, activations), the
 * kernels' WebAssembly SIMD module instantiated on it, kernel threads on the
 * same memory, and a CBLAS for the products. Every kernel takes views of
 * this memory (from {@linkcode CpuKernels.floats} and
 * {@linkcode CpuKernels.ints}, or subarrays of them); the products run
 * `cblas_sgemm` on the same views.
 *
 * @module
 */

import { type Cblas, loadCblas } from "@d3pm/backend/cblas";
import { createRuntime } from "./_runtime.ts";

export type { Cblas, Sgemm } from "@d3pm/backend/cblas";
import { WASM_BASE64, WASM_SHA256 } from "./_wasm.ts";

/** Options of {@linkcode createCpuKernels}. */
export interface CpuKernelsOptions {
  /** Capacity of the kernel memory in 4-byte words (floats and ints). */
  words: number;
  /**
   * Threads that run the kernels (the host and threads − 1 workers; default
   * {@linkcode defaultThreads}: `OPENBLAS_NUM_THREADS` when set, else the
   * cores, at most 32). Each kernel splits its outermost
   * independent index (rows, heads, columns) over them; results are the
   * same bits for any count. With `split` products these are all the
   * threads, products included: 1 is one thread for everything.
   */
  threads?: number;
  /** The CBLAS for products (default: `loadCblas()`, closed on dispose). */
  cblas?: Cblas;
  /**
   * How products use the threads. `split` (default): each product is split
   * by rows or columns of C over the kernel threads, each calling a
   * single-threaded CBLAS, with the epilogue fused on its rows, and attention
   * runs head by head on the threads — one team of threads for everything;
   * the kernels set the CBLAS's own thread count to 1 while they exist and
   * restore it on dispose (OpenBLAS, MKL and BLIS; any other CBLAS falls back
   * to `blas`). `blas`: each product is one call on the host with the
   * CBLAS's own threads. With `split`, a product's blocks follow the thread
   * count, so its bits may differ between thread counts (as with any
   * threaded BLAS); run to run they are the same, and every other kernel's
   * bits are the same for any thread count.
   */
  products?: "split" | "blas";
  /**
   * The least work (element operations) worth a thread (default 65,536):
   * smaller calls run on the host alone. Tests pass 1 to split every call.
   */
  grain?: number;
}

/**
 * SHA-256 of the kernels' WebAssembly module (built from `cpu/csrc` by
 * `deno task build:cpu`): it changes whenever the kernels' code, and so
 * possibly their rounding, does. Caches of trained models and records of
 * what trained a run name it.
 *
 * @example
 * ```ts
 * import { KERNELS_SHA256 } from "@d3pm/cpu";
 * import { assertMatch } from "@std/assert";
 * assertMatch(KERNELS_SHA256, /^[0-9a-f]{64}$/);
 * ```
 */
export const KERNELS_SHA256: string = WASM_SHA256;

/** Kernel memory, the module on it, its threads and a CBLAS. */
export interface CpuKernels {
  /** Threads that run the kernels. */
  readonly threads: number;
  /** The CBLAS the products use. */
  readonly cblas: Cblas;
  /** How products use the threads (`blas` where `split` was not possible). */
  readonly products: "split" | "blas";
  /** Words still free for allocation. */
  readonly free: number;
  /**
   * Allocate n floats of kernel memory (zeroed, 64-byte aligned; never
   * freed before {@linkcode CpuKernels.dispose}).
   *
   * @param n How many.
   * @returns A view of them.
   */
  floats(n: number): Float32Array;
  /**
   * Allocate n int32 of kernel memory (zeroed, 64-byte aligned).
   *
   * @param n How many.
   * @returns A view of them.
   */
  ints(n: number): Int32Array;
  /** Stop the threads and unload the CBLAS if these kernels loaded it. */
  dispose(): void;
}

/**
 * A residual-branch or attention dropout of the counter-based stream the
 * WebGPU engine uses: element i of a site is kept with probability
 * 1 − rate (and scaled by 1/(1 − rate)) by a hash of (seed, site, i).
 */
export interface Dropout {
  /** This step's seed (a u32). */
  seed: number;
  /** The site: the arena offset (floats) of the tensor the mask belongs to. */
  site: number;
  /** The rate in [0, 1); 0 keeps everything. */
  rate: number;
}

let compiled: Promise<WebAssembly.Module> | null = null;

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const raw = atob(WASM_BASE64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/**
 * The most threads the CPU kernels take (`createCpuKernels` refuses more).
 *
 * @example A thread option bounded like the kernels' own
 * ```ts
 * import { createCpuKernels, defaultThreads, MAX_CPU_THREADS } from "@d3pm/cpu";
 * import { assert, assertRejects } from "@std/assert";
 * assert(defaultThreads() <= MAX_CPU_THREADS);
 * await assertRejects(
 *   () => createCpuKernels({ words: 16, threads: MAX_CPU_THREADS + 1 }),
 *   RangeError,
 *   `threads must be an integer in [1, ${MAX_CPU_THREADS}], got ${MAX_CPU_THREADS + 1}`,
 * );
 * ```
 */
export const MAX_CPU_THREADS = 32;

/**
 * The thread count kernels take by default: `OPENBLAS_NUM_THREADS` when it is
 * set (the one knob for BLAS work on either engine, and what
 * `sweep --on local --jobs N` gives each cell), else the cores; at most 32.
 *
 * @returns An integer in [1, 32].
 * @throws {RangeError} When `OPENBLAS_NUM_THREADS` is set but is not an
 *   integer ≥ 1.
 *
 * @example
 * ```ts
 * import { defaultThreads } from "@d3pm/cpu";
 * import { assert } from "@std/assert";
 * const n = defaultThreads();
 * assert(Number.isInteger(n) && n >= 1 && n <= 32);
 * ```
 */
export function defaultThreads(): number {
  let set: string | undefined;
  try {
    set = Deno.env.get("OPENBLAS_NUM_THREADS");
  } catch { /* no env permission: the cores */ }
  if (set !== undefined && set.trim() !== "") {
    const n = Number(set);
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(
        `OPENBLAS_NUM_THREADS must be an integer ≥ 1 (the CPU kernels' threads), got ${
          JSON.stringify(set)
        }`,
      );
    }
    return Math.min(n, MAX_CPU_THREADS);
  }
  return Math.max(
    1,
    Math.min(navigator.hardwareConcurrency ?? 1, MAX_CPU_THREADS),
  );
}

/**
 * Create kernel memory of `words` 4-byte words with the kernels' module and
 * threads on it.
 *
 * @param options The capacity, the thread count and the CBLAS.
 * @returns The kernels; call `dispose()` when done.
 * @throws {RangeError} On a bad capacity or thread count.
 * @throws {Error} When no CBLAS loads.
 *
 * @example Allocate views and normalise a row
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { createCpuKernels, layernormForward } from "@d3pm/cpu";
 *
 * const k = await createCpuKernels({ words: 1024, threads: 1 });
 * const x = k.floats(4), y = k.floats(4), w = k.floats(4), b = k.floats(4);
 * const mean = k.floats(1), rstd = k.floats(1);
 * x.set([1, 2, 3, 4]);
 * w.fill(1);
 * layernormForward(k, { rows: 1, d: 4, x, y, weight: w, bias: b, mean, rstd });
 * assertAlmostEquals(mean[0], 2.5, 1e-6);
 * assertAlmostEquals(y[3], 1.5 / Math.sqrt(1.25 + 1e-5), 1e-5);
 * k.dispose();
 * ```
 */
export async function createCpuKernels(
  options: CpuKernelsOptions,
): Promise<CpuKernels> {
  const { words } = options;
  if (!Number.isInteger(words) || words < 0 || words > 2 ** 30) {
    throw new RangeError(
      `Cannot create CPU kernels: words must be an integer in [0, 2^30], got ${words}`,
    );
  }
  const threads = options.threads ?? defaultThreads();
  if (
    !Number.isInteger(threads) || threads < 1 || threads > MAX_CPU_THREADS
  ) {
    throw new RangeError(
      `Cannot create CPU kernels: threads must be an integer in [1, ${MAX_CPU_THREADS}], got ${threads}`,
    );
  }
  const grain = options.grain ?? 65536;
  if (
    options.products !== undefined && options.products !== "split" &&
    options.products !== "blas"
  ) {
    throw new RangeError(
      `Cannot create CPU kernels: products must be "split" or "blas", got ${
        JSON.stringify(options.products)
      }`,
    );
  }
  if (!(Number.isFinite(grain) && grain >= 1)) {
    throw new RangeError(
      `Cannot create CPU kernels: grain must be a number ≥ 1, got ${grain}`,
    );
  }
  compiled ??= WebAssembly.compile(moduleBytes());
  const module = await compiled;
  const cblas = options.cblas ?? loadCblas();
  try {
    return await createRuntime({
      module,
      words,
      threads,
      grain,
      products: options.products ?? "split",
      cblas,
      ownsCblas: options.cblas === undefined,
    });
  } catch (error) {
    if (options.cblas === undefined) cblas.close();
    throw error;
  }
}
