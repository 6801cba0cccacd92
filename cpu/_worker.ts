// A kernel thread: the same module instantiated on the shared memory with a
// stack of its own (and, when products are split over the threads, the
// CBLAS loaded here too), running its share [lo, hi) of each job the host
// posts in the control block's ring, in order (see _runtime.ts). Private.

/// <reference lib="deno.worker" />

import { loadCblas, type Sgemm } from "@d3pm/backend/cblas";
import {
  ARG_OFFSET,
  CONTROL,
  SLOT,
  slotOffset,
  SLOTS,
  SPIN,
} from "./_control.ts";
import { JOB_NAMES, makeJobs } from "./_jobs.ts";

interface Start {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  stackTop: number;
  control: number;
  index: number;
  /** The CBLAS to load for product jobs, or null (none run here). */
  library: string | null;
  /** Tests only: sleep this long before each part (a late thread). */
  delayMs: number;
}

// Block this thread for ms milliseconds.
function sleepFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

self.onmessage = async (e: MessageEvent<Start>) => {
  const { module, memory, stackTop, control, index, library, delayMs } = e.data;
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
  const slots = Array.from({ length: SLOTS }, (_, i) => ({
    words: new Int32Array(memory.buffer, control + slotOffset(i), SLOT.words),
    args: new Float64Array(
      memory.buffer,
      control + slotOffset(i) + ARG_OFFSET,
      CONTROL.args,
    ),
  }));
  // The jobs run in the order posted; `seq` is the next one's number.
  let seq = Atomics.load(ctrl, CONTROL.posted);
  self.postMessage("ready");
  run: for (;;) {
    let spins = 0;
    let posted: number;
    while (
      (posted = Atomics.load(ctrl, CONTROL.posted)) === seq &&
      Atomics.load(ctrl, CONTROL.quit) === 0
    ) {
      if (++spins > SPIN) Atomics.wait(ctrl, CONTROL.posted, seq, 1000);
    }
    if (Atomics.load(ctrl, CONTROL.quit) !== 0) break;
    for (; seq !== posted; seq = (seq + 1) | 0) {
      if (Atomics.load(ctrl, CONTROL.quit) !== 0) break run;
      const slot = slots[seq & (SLOTS - 1)], w = slot.words;
      const id = w[SLOT.id];
      if (index < w[SLOT.parts]) {
        const lo = w[SLOT.ranges + 2 * index];
        const hi = w[SLOT.ranges + 2 * index + 1];
        try {
          if (delayMs > 0) sleepFor(delayMs);
          jobs[id](lo, hi, slot.args);
        } catch (error) {
          Atomics.compareExchange(ctrl, CONTROL.failed, 0, 1 + id);
          console.error(
            `cpu job ${JOB_NAMES[id]} failed in thread ${index}:`,
            error,
          );
        }
      }
      // Counted by every thread, taking part or not: the host reuses the
      // slot, and joins, on these counts.
      Atomics.store(ctrl, CONTROL.completed + index, (seq + 1) | 0);
      Atomics.notify(ctrl, CONTROL.completed + index);
    }
  }
  // Out of the library before the host is told: it restores the CBLAS's
  // thread count and closes its own handle once every thread has said so.
  cblas?.close();
  Atomics.add(ctrl, CONTROL.quitDone, 1);
  Atomics.notify(ctrl, CONTROL.quitDone);
  self.close();
};
