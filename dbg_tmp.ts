import * as tf from "@tensorflow/tfjs";
import { BD3, loadTrained } from "@d3pm/experiment";
const run = await loadTrained("/work/runs/bd3/s0-b4-blk", { seed: 0, model: BD3 });
const m = run.model as any;
console.log(tf.getBackend());
const x = tf.tensor2d(new Int32Array(4 * 128).fill(5), [4, 128], "int32");
for (const o of [{}, { blocks: { size: 4, clean: false } }, {}, { blocks: { size: 4, clean: false } }]) {
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) { const l = m.forward(x, o); await l.data(); l.dispose(); }
  console.log(JSON.stringify(o), ((performance.now() - t0) / 5).toFixed(1), "ms");
}
