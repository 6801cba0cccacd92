// The child of exit_test.ts: CPU engines with overlapping lives, one
// disposed while the other runs, and one still live when the process exits
// (as a test runner exits), products large enough for OpenBLAS's kernels.
// Private.

import { validateConfig } from "@d3pm/transformer";
import { CpuTransformer } from "./mod.ts";

const config = validateConfig({
  kind: "causal",
  vocabSize: 256,
  contextLength: 64,
  nLayer: 2,
  nHead: 4,
  dModel: 128,
  dMlp: 512,
  positions: "learned",
  timeConditioning: false,
  dTime: 8,
  dropout: 0,
});
const B = 4, T = 64, n = B * T;
const batch = {
  inputs: Int32Array.from({ length: n }, (_, i) => (i * 7) % 256),
  targets: Int32Array.from({ length: n }, (_, i) => (i * 11) % 256),
  weights: new Float32Array(n).fill(1 / n),
};
const make = () =>
  CpuTransformer.create(config, {
    batchSize: B,
    length: T,
    seed: 1,
    threads: 2,
  });
const a = await make();
a.step(batch, 1e-3);
const b = await make();
b.step(batch, 1e-3);
a.dispose();
b.step(batch, 1e-3);
const c = await make();
c.step(batch, 1e-3);
b.dispose();
const { loss } = await c.readLoss();
if (!Number.isFinite(loss)) throw new Error(`loss ${loss}`);
console.log("done");
Deno.exit(0); // c is live: its threads are running when the process ends
