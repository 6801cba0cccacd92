// A kernel thread: the same module instantiated on the shared memory with a
// stack of its own, running its share [lo, hi) of each job the host posts
// in the control block (see _runtime.ts). Private.

/// <reference lib="deno.worker" />

import { ARG_OFFSET, CONTROL, SPIN } from "./_control.ts";

interface Start {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  stackTop: number;
  control: number;
  names: string[];
  index: number;
}

self.onmessage = async (e: MessageEvent<Start>) => {
  const { module, memory, stackTop, control, names, index } = e.data;
  const instance = await WebAssembly.instantiate(module, {
    env: { memory, log: Math.log },
  });
  const exports = instance.exports as Record<string, unknown>;
  (exports.__stack_pointer as WebAssembly.Global).value = stackTop;
  const fns = names.map((n) => exports[n] as (...a: number[]) => void);
  const ctrl = new Int32Array(memory.buffer, control, CONTROL.words);
  const a = new Float64Array(memory.buffer, control + ARG_OFFSET, CONTROL.args);
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
        // deno-fmt-ignore
        fns[id](lo, hi, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8],
          a[9], a[10], a[11], a[12], a[13], a[14], a[15]);
      } catch (error) {
        Atomics.store(ctrl, CONTROL.failed, 1);
        console.error(
          `cpu kernel ${names[id]} failed in thread ${index}:`,
          error,
        );
      }
    }
    // Acknowledged by every thread, taking part or not (see _runtime.ts).
    Atomics.add(ctrl, CONTROL.done, 1);
    Atomics.notify(ctrl, CONTROL.done);
  }
  self.close();
};
