// A kernel thread: the same module instantiated on the shared memory with a
// stack of its own (and, when products are split over the threads, the
// CBLAS loaded here too), running its share [lo, hi) of each job the host
// posts in the control block (see _runtime.ts). Private.

/// <reference lib="deno.worker" />

import { loadCblas, type Sgemm } from "@d3pm/backend/cblas";
import { ARG_OFFSET, CONTROL, SPIN } from "./_control.ts";
import { JOB_NAMES, makeJobs } from "./_jobs.ts";

interface Start {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  stackTop: number;
  control: number;
  index: number;
  /** The CBLAS to load for product jobs, or null (none run here). */
  library: string | null;
}

self.onmessage = async (e: MessageEvent<Start>) => {
  const { module, memory, stackTop, control, index, library } = e.data;
  const instance = await WebAssembly.instantiate(module, {
    env: { memory, log: Math.log },
  });
  const exports = instance.exports as Record<string, unknown>;
  (exports.__stack_pointer as WebAssembly.Global).value = stackTop;
  const cblas = library === null
    ? null
    : loadCblas({ path: library, coretype: false });
  const noBlas: Sgemm = () => {
    throw new Error("no CBLAS in this kernel thread");
  };
  const jobs = makeJobs(exports, memory.buffer, cblas?.sgemm ?? noBlas);
  const ctrl = new Int32Array(memory.buffer, control, CONTROL.words);
  const a = new Float64Array(
    memory.buffer,
    control + ARG_OFFSET,
    CONTROL.args,
  );
  // Read before saying ready: the host posts the first job on "ready".
  let gen = Atomics.load(ctrl, CONTROL.gen);
  self.postMessage("ready");
  for (;;) {
    let spins = 0;
    while (Atomics.load(ctrl, CONTROL.gen) === gen) {
      if (++spins > SPIN) Atomics.wait(ctrl, CONTROL.gen, gen);
    }
    gen = Atomics.load(ctrl, CONTROL.gen);
    const id = ctrl[CONTROL.id];
    if (id < 0) break;
    if (index < ctrl[CONTROL.parts]) {
      const lo = ctrl[CONTROL.ranges + 2 * index];
      const hi = ctrl[CONTROL.ranges + 2 * index + 1];
      try {
        jobs[id](lo, hi, a);
      } catch (error) {
        Atomics.store(ctrl, CONTROL.failed, 1);
        console.error(
          `cpu job ${JOB_NAMES[id]} failed in thread ${index}:`,
          error,
        );
      }
    }
    // Acknowledged by every thread, taking part or not (see _runtime.ts).
    Atomics.add(ctrl, CONTROL.done, 1);
    Atomics.notify(ctrl, CONTROL.done);
  }
  // Out of the library before the host is told: it restores the CBLAS's
  // thread count and closes its own handle once every thread has said so.
  cblas?.close();
  Atomics.add(ctrl, CONTROL.done, 1);
  Atomics.notify(ctrl, CONTROL.done);
  self.close();
};
