// Generation on the engine: AR decoding with the KV cache on the GPU gives
// the tfjs model's greedy continuation, in one command buffer and one sync.

import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertRejects } from "@std/assert";
import type { ModelConfig, Transformer } from "@d3pm/transformer";
import { WebGpuTransformer } from "./mod.ts";
import { gpu, parityConfig, perturbedModel, testDevice } from "./_test_util.ts";

/** Greedy rows by recomputing the tfjs model on each prefix. */
function greedyReference(
  model: Transformer,
  b: number,
  l: number,
  start: number,
  exclude: number,
): Int32Array {
  const out = new Int32Array(b * l);
  for (let r = 0; r < b; r++) out[r * l] = start;
  for (let i = 1; i < l; i++) {
    const prefix = new Int32Array(b * i);
    for (let r = 0; r < b; r++) {
      prefix.set(out.subarray(r * l, r * l + i), r * i);
    }
    const logits = tf.tidy(() =>
      model.forward(tf.tensor2d(prefix, [b, i], "int32")).slice(
        [0, i - 1, 0],
        [b, 1, -1],
      )
    );
    const data = logits.dataSync();
    logits.dispose();
    const v = data.length / b;
    for (let r = 0; r < b; r++) {
      let best = -1;
      for (let j = 0; j < v; j++) {
        if (j === exclude) continue;
        if (best < 0 || data[r * v + j] > data[r * v + best]) best = j;
      }
      out[r * l + i] = best;
    }
  }
  return out;
}

for (const positions of ["learned", "rotary"] as const) {
  Deno.test({
    name: `generateCausal (${positions}): greedy rows equal tfjs's, one sync`,
    ...gpu,
    fn: async () => {
      await tf.setBackend("cpu");
      const config: ModelConfig = parityConfig("causal", positions);
      const { model, weights } = await perturbedModel(config, 11);
      const engine = await WebGpuTransformer.create(config, {
        batchSize: 2,
        length: 7,
        weights,
        device: testDevice(),
      });
      // The greedy rows vary, and excluding the first pick changes them.
      const plain = greedyReference(model, 3, 9, 4, -1);
      assertEquals(new Set(plain).size >= 2, true, `${plain}`);
      for (const [b, start, exclude] of [[3, 4, -1], [3, 4, plain[1]]]) {
        const want = greedyReference(model, b, 9, start, exclude);
        const got = await engine.generateCausal({
          batchSize: b,
          length: 9,
          start,
          temperature: 0,
          suppress: exclude < 0 ? [] : [exclude],
          seed: 0,
        });
        assertEquals(got.syncs, 1);
        assertEquals(got.forwardPasses, 8);
        assertEquals(Array.from(got.tokens), Array.from(want));
      }
      const live = engine.liveBuffers;
      await engine.generateCausal({
        batchSize: 3,
        length: 9,
        start: 4,
        temperature: 0,
        seed: 0,
      });
      assertEquals(engine.liveBuffers, live);
      model.dispose();
      engine.dispose();
    },
  });
}

Deno.test({
  name: "generateCausal: bad options give one-line errors",
  ...gpu,
  fn: async () => {
    const engine = await WebGpuTransformer.create(
      parityConfig("causal", "learned"),
      { batchSize: 1, length: 4, device: testDevice() },
    );
    const ok = { batchSize: 1, length: 4, start: 0, temperature: 0, seed: 0 };
    await assertRejects(
      () => engine.generateCausal({ ...ok, length: 10 }),
      RangeError,
      "length must be an integer in [2, 9], got 10",
    );
    await assertRejects(
      () => engine.generateCausal({ ...ok, start: 37 }),
      RangeError,
      "start must be a token id in [0, 37), got 37",
    );
    engine.dispose();
    const bidi = await WebGpuTransformer.create(
      parityConfig("bidirectional", "learned"),
      { batchSize: 1, length: 4, device: testDevice() },
    );
    await assertRejects(
      () => bidi.generateCausal(ok),
      RangeError,
      "generateCausal needs a causal model",
    );
    bidi.dispose();
  },
});
