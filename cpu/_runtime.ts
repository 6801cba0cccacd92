// The runtime behind CpuKernels: the shared linear memory, the module's
// exports, a bump allocator and the kernel threads. Private.

import type { Cblas } from "@d3pm/backend/cblas";
import { ARG_OFFSET, CONTROL, CONTROL_BYTES, SPIN } from "./_control.ts";
import {
  type Job,
  JOB_NAMES,
  type JobName,
  KERNEL_NAMES,
  makeJobs,
} from "./_jobs.ts";
import { holdSingleThreaded } from "./_blas_threads.ts";
import type { CpuKernels, Dropout } from "./kernels.ts";

/** How products use the threads (see CpuKernelsOptions.products). */
export type Products = "split" | "blas";

/**
 * Time per job name (bench:cpu-profile): calls, wall ms of run(), and of
 * that the ms the host waited for the threads after its own part.
 */
export type JobProfile = Map<
  string,
  { calls: number; ms: number; waitMs: number; split: number }
>;

const STACK_BYTES = 64 * 1024;
// How long dispose waits for the threads to acknowledge the quit.
const QUIT_MS = 5000;
const PAGE = 65536;

/** The memory, the exports and the threads of one CpuKernels. */
export class Runtime {
  readonly memory: WebAssembly.Memory;
  readonly buffer: SharedArrayBuffer;
  readonly threads: number;
  readonly cblas: Cblas;
  // Below this much work (element operations) per part a call runs on one
  // thread: a job's round trip to the threads costs microseconds.
  readonly #grain: number;
  readonly #ownsCblas: boolean;
  readonly products: Products;
  readonly #jobs: Job[];
  readonly #ids = new Map<string, number>();
  readonly #releaseBlasThreads: (() => void) | null;
  readonly #ctrl: Int32Array;
  readonly #args: Float64Array;
  readonly #workers: Worker[];
  #next: number;
  readonly #end: number;
  #disposed = false;
  #scratch: Float32Array | null = null;
  /** Set to collect time per job (bench:cpu-profile); null: not timed. */
  profile: JobProfile | null = null;
  #waited = NaN;

  constructor(o: {
    memory: WebAssembly.Memory;
    exports: Record<string, unknown>;
    threads: number;
    grain: number;
    cblas: Cblas;
    ownsCblas: boolean;
    products: Products;
    releaseBlasThreads: (() => void) | null;
    control: number;
    heap: number;
    end: number;
    workers: Worker[];
  }) {
    this.memory = o.memory;
    // A shared memory's buffer is a SharedArrayBuffer (typed as ArrayBuffer
    // by some lib sets, e.g. with the DOM lib in the same program).
    this.buffer = o.memory.buffer as unknown as SharedArrayBuffer;
    this.threads = o.threads;
    this.#grain = o.grain;
    this.cblas = o.cblas;
    this.#ownsCblas = o.ownsCblas;
    this.products = o.products;
    this.#releaseBlasThreads = o.releaseBlasThreads;
    this.#jobs = makeJobs(o.exports, this.buffer, o.cblas.sgemm);
    JOB_NAMES.forEach((n, i) => this.#ids.set(n, i));
    this.#ctrl = new Int32Array(this.buffer, o.control, CONTROL.words);
    this.#args = new Float64Array(
      this.buffer,
      o.control + ARG_OFFSET,
      CONTROL.args,
    );
    this.#workers = o.workers;
    this.#next = o.heap;
    this.#end = o.end;
  }

  /** Words (4 bytes) still free. */
  get free(): number {
    return (this.#end - this.#next) >> 2;
  }

  #take(words: number, what: string): number {
    if (this.#disposed) throw new Error("Cannot allocate: kernels disposed");
    if (!Number.isInteger(words) || words < 0) {
      throw new RangeError(
        `Cannot allocate ${what}: need a non-negative integer count, got ${words}`,
      );
    }
    const bytes = Math.ceil((words * 4) / 64) * 64;
    if (this.#next + bytes > this.#end) {
      throw new RangeError(
        `Cannot allocate ${words} ${what}: only ${this.free} words of kernel memory are free (create the kernels with a larger \`words\`)`,
      );
    }
    const at = this.#next;
    this.#next += bytes;
    return at;
  }

  floats(n: number): Float32Array {
    return new Float32Array(this.buffer, this.#take(n, "floats"), n);
  }

  ints(n: number): Int32Array {
    return new Int32Array(this.buffer, this.#take(n, "ints"), n);
  }

  /** A scratch area of at least n floats, reused by every call that asks. */
  scratch(n: number): Float32Array {
    if (this.#scratch === null || this.#scratch.length < n) {
      this.#scratch = this.floats(n);
    }
    return this.#scratch.subarray(0, n);
  }

  /**
   * The byte address of a view, checking that it lies in this memory and
   * holds at least `need` elements.
   */
  ptr(
    view: Float32Array | Int32Array,
    need: number,
    what: string,
  ): number {
    if (view.buffer !== this.buffer) {
      throw new RangeError(
        `${what} must be a view of these kernels' memory (from kernels.floats or kernels.ints, or a subarray of one)`,
      );
    }
    if (view.length < need) {
      throw new RangeError(
        `${what} is too short: needs ${need} elements, got ${view.length}`,
      );
    }
    return view.byteOffset;
  }

  /** How many threads a call of this much work over `outer` indices gets. */
  parts(work: number, outer: number): number {
    return Math.min(
      this.threads,
      Math.max(1, Math.floor(work / this.#grain)),
      Math.max(1, outer),
    );
  }

  /**
   * Run a kernel over the outer range [0, outer), split over the threads
   * when `work` (element operations) pays for it; `align` keeps each part's
   * start a multiple of it.
   */
  run(
    name: JobName,
    outer: number,
    args: number[],
    work: number,
    align = 1,
  ): void {
    if (this.#disposed) throw new Error("Cannot run a kernel: disposed");
    if (outer <= 0) return;
    if (this.profile !== null) {
      return this.#timed(name, outer, args, work, align);
    }
    const id = this.#ids.get(name)!;
    const job = this.#jobs[id];
    // Products on the host alone when the CBLAS threads them itself.
    const host = this.products === "blas" && id >= KERNEL_NAMES.length;
    let parts = host ? 1 : this.parts(work, Math.ceil(outer / align));
    if (parts <= 1) {
      job(0, outer, args);
      return;
    }
    if (args.length > CONTROL.args) {
      throw new Error(
        `${name}: ${args.length} arguments, at most ${CONTROL.args}`,
      );
    }
    const ctrl = this.#ctrl;
    const per = Math.ceil(outer / parts / align) * align;
    parts = Math.ceil(outer / per);
    for (let t = 0; t < parts; t++) {
      ctrl[CONTROL.ranges + 2 * t] = t * per;
      ctrl[CONTROL.ranges + 2 * t + 1] = Math.min(outer, (t + 1) * per);
    }
    for (let i = 0; i < args.length; i++) this.#args[i] = args[i];
    ctrl[CONTROL.id] = id;
    ctrl[CONTROL.parts] = parts;
    Atomics.store(ctrl, CONTROL.done, 0);
    Atomics.add(ctrl, CONTROL.gen, 1);
    Atomics.notify(ctrl, CONTROL.gen);
    let error: unknown = null;
    try {
      job(0, per, args);
    } catch (e) {
      error = e;
    }
    // Timed (under #timed): how long the host waits for the threads.
    const t0 = this.#waited === -1 ? performance.now() : 0;
    // Every thread acknowledges every job, taking part or not, so none can
    // still be reading this job's words when the next one is written.
    const all = this.#workers.length;
    let spins = 0;
    for (;;) {
      const done = Atomics.load(ctrl, CONTROL.done);
      if (done >= all) break;
      if (++spins > SPIN) Atomics.wait(ctrl, CONTROL.done, done, 1000);
    }
    if (t0 !== 0) this.#waited = performance.now() - t0;
    if (error !== null) throw error;
    if (Atomics.exchange(ctrl, CONTROL.failed, 0) !== 0) {
      throw new Error(`cpu job ${name} failed in a kernel thread`);
    }
  }

  // run() timed into the profile: the whole call, and the host's wait for
  // the threads after its own part.
  #timed(
    name: JobName,
    outer: number,
    args: number[],
    work: number,
    align: number,
  ): void {
    const profile = this.profile!;
    this.profile = null;
    this.#waited = -1;
    const t0 = performance.now();
    try {
      this.run(name, outer, args, work, align);
    } finally {
      const ms = performance.now() - t0;
      this.profile = profile;
      // Products by shape: C's rows × columns × the inner dimension, the
      // transposes, and the epilogue fused on the rows.
      const key = name !== "gemm"
        ? name
        : `gemm ${args[2]}×${args[3]}×${args[4]} ${args[0] ? "T" : "N"}${
          args[1] ? "T" : "N"
        }${args[14] >= 0 ? ` +${JOB_NAMES[args[14]]}` : ""}`;
      const e = profile.get(key) ??
        { calls: 0, ms: 0, waitMs: 0, split: 0 };
      e.calls++;
      e.ms += ms;
      if (this.#waited >= 0) {
        e.waitMs += this.#waited;
        e.split++;
      }
      profile.set(key, e);
      this.#waited = NaN;
    }
  }

  /**
   * Join the threads, then release the CBLAS: each worker closes its CBLAS
   * and acknowledges the quit before it is terminated, so no thread is in
   * the library (or its close) when the thread count is restored and the
   * host's handle closed.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const all = this.#workers.length;
    if (all > 0) {
      const ctrl = this.#ctrl;
      Atomics.store(ctrl, CONTROL.done, 0);
      ctrl[CONTROL.id] = -1;
      Atomics.add(ctrl, CONTROL.gen, 1);
      Atomics.notify(ctrl, CONTROL.gen);
      // A thread stuck in a kernel is not waited for past the deadline.
      const deadline = Date.now() + QUIT_MS;
      for (;;) {
        const done = Atomics.load(ctrl, CONTROL.done);
        if (done >= all || Date.now() > deadline) break;
        Atomics.wait(ctrl, CONTROL.done, done, 50);
      }
      for (const w of this.#workers) w.terminate();
    }
    this.#releaseBlasThreads?.();
    if (this.#ownsCblas) this.cblas.close();
  }
}

/** Instantiate the module on a fresh shared memory and start the threads. */
export async function createRuntime(o: {
  module: WebAssembly.Module;
  words: number;
  threads: number;
  grain: number;
  cblas: Cblas;
  ownsCblas: boolean;
  products: Products;
}): Promise<Runtime> {
  const probe = WebAssembly.Module.imports(o.module);
  if (!probe.some((i) => i.kind === "memory")) {
    throw new Error("the kernel module imports no memory");
  }
  // Layout: the module's data and stack below __heap_base, then the control
  // block, a stack per extra thread, then the allocations.
  const workers = o.threads - 1;
  // __heap_base is only known after instantiation; reserve generously.
  const reserve = 4 * PAGE;
  const control = reserve;
  const stacks = control + Math.ceil(CONTROL_BYTES / 64) * 64;
  const heap = stacks + workers * STACK_BYTES;
  const end = heap + Math.ceil((o.words * 4) / 64) * 64 + 64 * 64;
  const pages = Math.ceil(end / PAGE);
  const memory = new WebAssembly.Memory({
    initial: pages,
    maximum: 65536,
    shared: true,
  });
  const { exports } = await WebAssembly.instantiate(o.module, {
    env: { memory, log: Math.log },
  });
  const heapBase = (exports.__heap_base as WebAssembly.Global).value as number;
  if (heapBase > reserve) {
    throw new Error(
      `the kernel module's data and stack (${heapBase} bytes) exceed the ${reserve} reserved`,
    );
  }
  for (const n of KERNEL_NAMES) {
    if (typeof exports[n] !== "function") {
      throw new Error(
        `the kernel module lacks ${n}; rebuild it (deno task build:cpu)`,
      );
    }
  }
  // Split products run a single-threaded CBLAS on each kernel thread (one
  // thread too: `threads: 1` is one thread for everything, not the CBLAS's
  // own count for the products).
  let products = o.products;
  let release: (() => void) | null = null;
  if (products === "split") {
    release = holdSingleThreaded(o.cblas.library);
    if (release === null) products = "blas";
  }
  const started: Worker[] = [];
  try {
    await Promise.all(
      Array.from(
        { length: workers },
        (_, i) =>
          new Promise<void>((resolve, reject) => {
            const w = new Worker(new URL("./_worker.ts", import.meta.url), {
              type: "module",
            });
            started.push(w);
            w.onmessage = () => resolve();
            w.onerror = (e) => {
              e.preventDefault();
              reject(
                new Error(`a kernel thread failed to start: ${e.message}`),
              );
            };
            w.postMessage({
              module: o.module,
              memory,
              stackTop: stacks + (i + 1) * STACK_BYTES,
              control,
              index: i + 1,
              // Products run on the workers only when split.
              library: products === "split" ? o.cblas.library : null,
            });
          }),
      ),
    );
  } catch (error) {
    for (const w of started) w.terminate();
    release?.();
    throw error;
  }
  return new Runtime({
    memory,
    exports: exports as Record<string, unknown>,
    threads: o.threads,
    grain: o.grain,
    cblas: o.cblas,
    ownsCblas: o.ownsCblas,
    products,
    releaseBlasThreads: release,
    control,
    heap,
    end: pages * PAGE,
    workers: started,
  });
}

/** The runtime of kernels made by createCpuKernels. */
export function runtimeOf(kernels: CpuKernels): Runtime {
  if (!(kernels instanceof Runtime)) {
    throw new TypeError("kernels must come from createCpuKernels (@d3pm/cpu)");
  }
  return kernels;
}

/** A dropout's kernel arguments (seed, site, rate); none: rate 0. */
export function dropArgs(d: Dropout | undefined, what: string): number[] {
  if (d === undefined || d.rate === 0) return [0, 0, 0];
  if (!(d.rate > 0 && d.rate < 1)) {
    throw new RangeError(
      `${what}: dropout rate must be in [0, 1), got ${d.rate}`,
    );
  }
  for (const key of ["seed", "site"] as const) {
    const v = d[key];
    if (!Number.isInteger(v) || v < 0 || v >= 2 ** 32) {
      throw new RangeError(`${what}: dropout ${key} must be a u32, got ${v}`);
    }
  }
  return [d.seed, d.site, d.rate];
}

/** Check that n is a non-negative integer (a shape). */
export function dim(n: number, name: string, what: string): number {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(
      `${what}: ${name} must be a non-negative integer, got ${n}`,
    );
  }
  return n;
}
