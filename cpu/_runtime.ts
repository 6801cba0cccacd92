// The runtime behind CpuKernels: the shared linear memory, the module's
// exports, a bump allocator and the kernel threads. Private.

import type { Cblas } from "@d3pm/backend/cblas";
import {
  ARG_OFFSET,
  CONTROL,
  CONTROL_BYTES,
  SLOT,
  slotOffset,
  SLOTS,
  SPIN,
} from "./_control.ts";
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
 * that the ms the host waited for the threads after its own part (and,
 * after row-local jobs whose join was left out, before it).
 */
export type JobProfile = Map<
  string,
  {
    calls: number;
    ms: number;
    waitMs: number;
    split: number;
    /** Calls that followed a row-local job of the same split (see Local). */
    chained?: number;
    /** The host's wait in the join before those calls (none: elided). */
    chainedWaitMs?: number;
  }
>;

/**
 * A row-local job: every `unit` indices of its outer range cover `rows`
 * rows of a row space of `total` rows (the step's token rows, or one
 * chunk's), and each thread's part reads and writes, of the data any other
 * job writes, only the rows of its own part (read-only data — the weights
 * — aside). Two such jobs in a row whose parts cover the same rows need no
 * join between them: each thread only reads rows it wrote itself, and runs
 * its jobs in order.
 */
export type Local = readonly [unit: number, rows: number, total: number];

// A split's rows: threads, and the rows each part (but the last) covers.
interface Chain {
  parts: number;
  rows: number;
  total: number;
}

// The chain key of a local job split into parts of `per` indices, or null
// when its parts do not fall on whole units.
function chainKey(
  local: Local,
  per: number,
  outer: number,
  parts: number,
): Chain | null {
  const [unit, rows, total] = local;
  if (per % unit !== 0 || outer % unit !== 0) return null;
  return { parts, rows: (per / unit) * rows, total };
}

function sameChain(a: Chain, b: Chain): boolean {
  return a.parts === b.parts && a.rows === b.rows && a.total === b.total;
}

const STACK_BYTES = 64 * 1024;
// How long dispose waits for the threads to acknowledge the quit.
const QUIT_MS = 5000;
const PAGE = 65536;

/**
 * Tests only: kernel threads started from now on sleep `delayMs` before
 * each part of a job (a late thread, so that a missing join reads stale
 * rows); `grain`, when set, replaces every new runtime's grain; `firstJob`
 * is a new runtime's first sequence number (an int32; near 2³¹ − 1 the
 * ring's numbers wrap within a test, wrap_test.ts).
 */
export const testHooks: {
  delayMs: number;
  grain: number | null;
  firstJob: number;
} = {
  delayMs: 0,
  grain: null,
  firstJob: 0,
};

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
  readonly #slots: { words: Int32Array; args: Float64Array }[];
  readonly #workers: Worker[];
  // Jobs posted (wrapping as an int32, as in the control block): the next
  // job's sequence number. It does wrap — the control block's words are
  // Int32, not 2⁵³-exact doubles — after 2³¹ jobs of one engine's life: the
  // tiny preset's AR step posts 118 on 2 threads, 570 jobs/s measured (load
  // 3.5 on 2 cores), so about 44 days (a long-lived serve, not a run).
  // Every comparison is modulo 2³² (#waitAll; the worker's
  // `seq !== posted`); wrap_test.ts runs across the wrap.
  #posted: number;
  // Inside pipelined(): a row-local job's join may be left to the next job.
  #defer = false;
  // The split of the row-local job still running on the threads (its join
  // left out), or null.
  #open: Chain | null = null;
  // The split of the last split job when row-local, null otherwise: what
  // the profile counts as a join that could be left out.
  #last: Chain | null = null;
  #chained = false;
  #lastWait = 0;
  /**
   * Leave out the joins between row-local jobs of the same split inside
   * pipelined() (default); false: join after every job, as before
   * (bench:cpu-profile compares the two).
   */
  elide = true;
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
    firstJob: number;
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
    this.#slots = Array.from({ length: SLOTS }, (_, i) => ({
      words: new Int32Array(
        this.buffer,
        o.control + slotOffset(i),
        SLOT.words,
      ),
      args: new Float64Array(
        this.buffer,
        o.control + slotOffset(i) + ARG_OFFSET,
        CONTROL.args,
      ),
    }));
    this.#workers = o.workers;
    this.#posted = o.firstJob;
    this.#next = o.heap;
    this.#end = o.end;
  }

  /** The next job's sequence number (an int32, wrapping; tests read it). */
  get posted(): number {
    return this.#posted;
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
   * start a multiple of it. `local`: the job is row-local (see Local); inside
   * pipelined() the join after it is left to the next job, which joins
   * first unless it is row-local with the same split.
   */
  run(
    name: JobName,
    outer: number,
    args: number[],
    work: number,
    align = 1,
    local?: Local,
  ): void {
    if (this.#disposed) throw new Error("Cannot run a kernel: disposed");
    if (outer <= 0) return;
    if (this.profile !== null) {
      return this.#timed(name, outer, args, work, align, local);
    }
    const id = this.#ids.get(name)!;
    const job = this.#jobs[id];
    // Products on the host alone when the CBLAS threads them itself.
    const host = this.products === "blas" && id >= KERNEL_NAMES.length;
    let parts = host ? 1 : this.parts(work, Math.ceil(outer / align));
    if (parts <= 1) {
      // All rows on the host: the threads finish theirs first.
      this.sync();
      job(0, outer, args);
      return;
    }
    if (args.length > CONTROL.args) {
      throw new Error(
        `${name}: ${args.length} arguments, at most ${CONTROL.args}`,
      );
    }
    const per = Math.ceil(outer / parts / align) * align;
    parts = Math.ceil(outer / per);
    const key = local === undefined ? null : chainKey(local, per, outer, parts);
    this.#chained = key !== null && this.#last !== null &&
      sameChain(key, this.#last);
    this.#last = key;
    // Timed (under #timed): how long the host waits for the threads.
    const timed = this.#waited === -1;
    let waited = 0;
    if (!(this.#open !== null && key !== null && sameChain(key, this.#open))) {
      const t0 = timed ? performance.now() : 0;
      this.#open = null;
      this.#join();
      if (timed) waited += performance.now() - t0;
    }
    // The slot's previous job done by every thread before it is rewritten.
    const seq = this.#posted;
    this.#waitAll((seq - SLOTS + 1) | 0);
    const slot = this.#slots[seq & (SLOTS - 1)], w = slot.words;
    for (let t = 0; t < parts; t++) {
      w[SLOT.ranges + 2 * t] = t * per;
      w[SLOT.ranges + 2 * t + 1] = Math.min(outer, (t + 1) * per);
    }
    for (let i = 0; i < args.length; i++) slot.args[i] = args[i];
    w[SLOT.id] = id;
    w[SLOT.parts] = parts;
    const ctrl = this.#ctrl;
    this.#posted = (seq + 1) | 0;
    Atomics.store(ctrl, CONTROL.posted, this.#posted);
    Atomics.notify(ctrl, CONTROL.posted);
    try {
      job(0, per, args);
    } catch (error) {
      // The threads finish their parts before the error is thrown.
      this.#open = null;
      this.#last = null;
      this.#waitAll(this.#posted);
      Atomics.store(ctrl, CONTROL.failed, 0);
      throw error;
    }
    if (key !== null && this.#defer && this.elide) {
      this.#open = key;
      this.#lastWait = 0;
      if (timed) this.#waited = waited;
      return;
    }
    const t0 = timed ? performance.now() : 0;
    this.#join();
    if (timed) {
      this.#lastWait = performance.now() - t0;
      this.#waited = waited + this.#lastWait;
    }
  }

  /**
   * Wait for the threads to finish every job posted (a join), then throw
   * if one of them failed in a kernel.
   */
  sync(): void {
    this.#open = null;
    this.#last = null;
    this.#join();
  }

  /**
   * Run f with the joins between row-local jobs of the same split left out
   * (see run); every job posted is joined before it returns or throws. Its
   * code outside run() must call sync() before it touches kernel memory.
   */
  pipelined<T>(f: () => T): T {
    if (this.#defer) return f();
    this.#defer = true;
    let ok = false;
    try {
      const r = f();
      ok = true;
      return r;
    } finally {
      this.#defer = false;
      if (ok) this.sync();
      else {
        try {
          this.sync();
        } catch {
          // f's own error is the one thrown.
        }
      }
    }
  }

  #join(): void {
    this.#waitAll(this.#posted);
    const failed = Atomics.load(this.#ctrl, CONTROL.failed);
    if (failed !== 0) {
      Atomics.store(this.#ctrl, CONTROL.failed, 0);
      throw new Error(
        `cpu job ${JOB_NAMES[failed - 1]} failed in a kernel thread`,
      );
    }
  }

  // Wait until every thread has finished the jobs before number `target`
  // (int32 sequence numbers, compared modulo 2³²).
  #waitAll(target: number): void {
    // Disposed: the threads left, with jobs posted or not.
    if (this.#disposed) return;
    const ctrl = this.#ctrl;
    for (let t = 1; t <= this.#workers.length; t++) {
      const at = CONTROL.completed + t;
      let spins = 0;
      for (;;) {
        const done = Atomics.load(ctrl, at);
        if (((done - target) | 0) >= 0) break;
        if (++spins > SPIN) Atomics.wait(ctrl, at, done, 1000);
      }
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
    local: Local | undefined,
  ): void {
    const profile = this.profile!;
    this.profile = null;
    this.#waited = -1;
    this.#chained = false;
    const before = this.#lastWait;
    const t0 = performance.now();
    try {
      this.run(name, outer, args, work, align, local);
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
      if (this.#chained) {
        e.chained = (e.chained ?? 0) + 1;
        e.chainedWaitMs = (e.chainedWaitMs ?? 0) + before;
      }
      profile.set(key, e);
      this.#waited = NaN;
    }
  }

  /**
   * Tell the threads to quit (each leaves after the job it is on, jobs
   * still posted or not), then release the CBLAS: each worker closes its
   * CBLAS and acknowledges the quit before it is terminated, so no thread is in
   * the library (or its close) when the thread count is restored and the
   * host's handle closed.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const all = this.#workers.length;
    if (all > 0) {
      const ctrl = this.#ctrl;
      Atomics.store(ctrl, CONTROL.quit, 1);
      Atomics.notify(ctrl, CONTROL.posted);
      // A thread stuck in a kernel is not waited for past the deadline.
      const deadline = Date.now() + QUIT_MS;
      for (;;) {
        const done = Atomics.load(ctrl, CONTROL.quitDone);
        if (done >= all || Date.now() > deadline) break;
        Atomics.wait(ctrl, CONTROL.quitDone, done, 50);
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
  // The ring's numbers start at firstJob (0 but in tests): posted, and
  // every thread's count of jobs finished, before any thread reads them.
  const firstJob = testHooks.firstJob | 0;
  const ctrl = new Int32Array(memory.buffer, control, CONTROL.words);
  ctrl[CONTROL.posted] = firstJob;
  for (let t = 1; t <= workers; t++) ctrl[CONTROL.completed + t] = firstJob;
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
              delayMs: testHooks.delayMs,
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
    grain: testHooks.grain ?? o.grain,
    cblas: o.cblas,
    ownsCblas: o.ownsCblas,
    products,
    releaseBlasThreads: release,
    control,
    heap,
    end: pages * PAGE,
    workers: started,
    firstJob,
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
