// An untrained model with the paper's GPT-2 vocabulary on the engine: its
// loss is ≈ ln V, and the engine's losses (the training plan's chunked head,
// the scoring plan) equal float64 cross-entropies of the engine's own logits.
//
// The `paper` preset itself (124M parameters) needs one binding of 498 MB
// for its parameters: on a device that allows it (a GPU) the test runs the
// preset; on lavapipe (128 MiB per binding) it runs the paper's vocabulary
// (50,261), context (1,024) and head size (64) at d 128 (2 heads) and 2
// layers, and says so in the log. The vocabulary is what the test is
// about (ln V, the head in chunks of rows × V); lavapipe's cost is mostly
// the head's products, linear in d (at d 512, the widest that fits, the
// file took 89 CPU-s instead of 28).
//
// The band on the CE over all targets scales with d. At init the head's
// input h is the final LayerNorm's output (gain 1, bias 0), so |h|² ≈ d,
// and the logits z_v = h · wte_v with wte_v ~ N(0, σ² I), σ = 0.02, are
// ≈ N(0, s²) over v with s² = d·σ². Over all targets the CE is
// LSE − mean z = ln V + ln(mean_v e^{z_v}) − mean_v z_v, and for V this
// large mean_v e^{z_v} ≈ E e^z = e^{s²/2}, mean_v z_v ≈ 0 (±s/√V), so it is
// ln V + s²/2 = ln V + d·σ²/2: 0.026 at d 128, 0.154 at d 768 (≥ ln V by
// Jensen at any scale). The band [ln V + s²/4, ln V + s²], half and twice
// the excess, fails a logit scale off by more than √2 either way: wte at
// std 0.04 gives 4× the excess (ln V + 0.103 at d 128, which the old fixed
// band ln V + 0.25 let pass), std 0.01 a quarter (+ 0.0064 at d 128).
// Measured clean: + 0.0255 at d 128, + 0.1023 at d 512 (lavapipe).

import { assert } from "@std/assert";
import { preset } from "@d3pm/transformer";
import { engineMemory, WebGpuTransformer } from "./mod.ts";
import { gpu, randomIds, testDevice } from "./_test_util.ts";

const B = 2, L = 64, CHUNK_ROWS = 48; // 128 rows: head chunks of 48, 48, 32
const INIT_STD = 0.02; // GPT-2's init of wte (transformer/_init.ts)

Deno.test({
  name:
    "an untrained paper-vocabulary model on the engine: loss ≈ ln V, and the chunked head's losses equal float64 cross-entropies of its logits",
  ...gpu,
  fn: async () => {
    const device = testDevice();
    const limit = Math.min(
      device.limits.maxStorageBufferBindingSize,
      device.limits.maxBufferSize,
    );
    let config = preset("paper");
    const V = config.vocabSize;
    const fits = (c: typeof config) =>
      engineMemory(c, {
        batchSize: B,
        length: L,
        maxBindingBytes: limit,
        chunkFloats: CHUNK_ROWS * V,
      }).largestBuffer <= limit;
    if (!fits(config)) {
      config = preset("paper", {
        nLayer: 2,
        dModel: 128,
        nHead: 2,
        dMlp: 512,
      });
      console.log(
        `paper preset exceeds this device's ${limit}-byte binding: d 128, 2 layers, V ${V}`,
      );
    }
    assert(fits(config), "no paper-vocabulary model fits this device");
    const engine = await WebGpuTransformer.create(config, {
      batchSize: B,
      length: L,
      seed: 0,
      device,
      chunkFloats: CHUNK_ROWS * V,
    });
    try {
      const n = B * L;
      const inputs = randomIds(n, V, 1);
      const targets = randomIds(n, V, 2);
      engine.evaluate({
        inputs,
        targets,
        weights: new Float32Array(n).fill(1 / n),
      });
      const evaluated = (await engine.readEvaluation()).loss;
      const [rows] = await engine.rowLosses([{
        rows: B,
        length: L,
        inputs,
        targets,
        weights: new Float32Array(n).fill(1),
      }]);
      const logits = await engine.forwardIds(inputs, B, L);
      // Float64 from the logits: CE of each target, and LSE − mean logit
      // (the CE averaged over every possible target: ≥ ln V by Jensen,
      // ≈ ln V + d·σ²/2 at init: see the band above).
      let ceSum = 0, uniformSum = 0;
      const rowRef = new Float64Array(B);
      for (let i = 0; i < n; i++) {
        let max = -Infinity, sum = 0, total = 0;
        for (let v = 0; v < V; v++) max = Math.max(max, logits[i * V + v]);
        for (let v = 0; v < V; v++) {
          const x = logits[i * V + v];
          sum += Math.exp(x - max);
          total += x;
        }
        const lse = max + Math.log(sum);
        const ce = lse - logits[i * V + targets[i]];
        ceSum += ce;
        rowRef[Math.floor(i / L)] += ce;
        uniformSum += lse - total / V;
      }
      const mean = ceSum / n, uniform = uniformSum / n, lnV = Math.log(V);
      console.log(
        `ln V ${lnV.toFixed(4)}; engine ${evaluated.toFixed(5)}, float64 ${
          mean.toFixed(5)
        }; over all targets ${uniform.toFixed(4)}`,
      );
      assert(
        Math.abs(evaluated - mean) <= 1e-5 * mean,
        `evaluate() ${evaluated} vs float64 ${mean}`,
      );
      for (let r = 0; r < B; r++) {
        assert(
          Math.abs(rows[r] - rowRef[r]) <= 1e-5 * rowRef[r],
          `rowLosses row ${r}: ${rows[r]} vs float64 ${rowRef[r]}`,
        );
      }
      const excess = (config.dModel * INIT_STD ** 2) / 2; // s²/2, above
      console.log(
        `over all targets ln V + ${(uniform - lnV).toFixed(4)}, expected + ${
          excess.toFixed(4)
        } (d ${config.dModel}), band [+${(excess / 2).toFixed(4)}, +${
          (2 * excess).toFixed(4)
        }]`,
      );
      assert(
        uniform >= lnV + excess / 2 && uniform <= lnV + 2 * excess,
        `untrained: mean CE over all targets ${uniform}, ln V ${lnV}, expected ln V + ${excess} (d ${config.dModel})`,
      );
      assert(
        Math.abs(evaluated - lnV) <= 0.3,
        `untrained: loss ${evaluated}, ln V ${lnV}`,
      );
    } finally {
      engine.dispose();
    }
  },
});
