// For joins_test.ts: the arguments of a layernorm_forward job (a row-local
// job), and, run as a script, the child of its dispose test: kernels on two
// threads, the second late (it sleeps 20 ms before every part), post
// row-local jobs in one pipelined run and are disposed in the middle of it
// with jobs still posted; the run's final join must then return, not wait
// for threads that left. Prints "done" once it has; a hang is killed by
// the test. Private.

import { createCpuKernels } from "./mod.ts";
import { runtimeOf, testHooks } from "./_runtime.ts";

/**
 * The arguments of `layernorm_forward` over `rows` rows of width `d`, from
 * x to y (views of the kernels' memory, or byte addresses), with a weight
 * `w` used as the bias too and the row statistics in `stats` (2 · rows).
 */
export function layernormArgs(
  d: number,
  rows: number,
  x: Float32Array | number,
  y: Float32Array,
  w: Float32Array,
  stats: Float32Array,
): number[] {
  const at = typeof x === "number" ? x : x.byteOffset;
  const mean = stats.byteOffset, rstd = mean + 4 * rows;
  return [
    d,
    at,
    y.byteOffset,
    w.byteOffset,
    w.byteOffset,
    mean,
    rstd,
    0,
    0,
    rows,
  ];
}

if (import.meta.main) {
  testHooks.grain = 1;
  testHooks.delayMs = 20;
  const k = await createCpuKernels({ words: 1 << 16, threads: 2 });
  const rt = runtimeOf(k);
  const rows = 64, d = 16;
  const x = rt.floats(rows * d), y = rt.floats(rows * d);
  const args = layernormArgs(d, rows, x, y, rt.floats(d), rt.floats(2 * rows));
  rt.pipelined(() => {
    // Six jobs posted in a millisecond; the late thread is on the first.
    for (let i = 0; i < 6; i++) {
      rt.run("layernorm_forward", rows, args, 1e9, 1, [1, 1, rows]);
    }
    k.dispose();
  });
  console.log("done");
}
