// Prompted generation on the WebGPU engine: a prefix is teacher-forced on the
// GPU (its ids copied into the next slots between passes, no draw there), kept
// verbatim, and the greedy continuation equals the tfjs model's token for
// token (learned and rotary positions), still in one sync; drawn rows keep it
// too, and the call leaves no buffer behind.

import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { prng } from "@d3pm/core";
import { generate } from "@d3pm/autoregressive";
import { WebGpuTransformer } from "./mod.ts";
import { chiSquarePower } from "./_test_stats.ts";
import {
  firstDrawFit,
  gpu,
  greedyAfter,
  parityConfig,
  perturbedModel,
  softmaxAfter,
  testDevice,
} from "./_test_util.ts";

for (const positions of ["learned", "rotary"] as const) {
  Deno.test({
    name:
      `generateCausal (${positions}) with a prefix: kept verbatim, greedy continuation equals tfjs's, one sync`,
    ...gpu,
    fn: async () => {
      await tf.setBackend("cpu");
      const config = parityConfig("causal", positions);
      const { model, weights } = await perturbedModel(config, 11);
      const engine = await WebGpuTransformer.create(config, {
        batchSize: 2,
        length: 7,
        weights,
        device: testDevice(),
      });
      const b = 3, l = 9, start = 4;
      // A prompt off the greedy path, so forcing it matters everywhere.
      const free = greedyAfter(model, 1, l, start, []);
      const prefix = [
        (free[1] + 5) % 37,
        (free[2] + 9) % 37,
        (free[3] + 13) % 37,
      ];
      const want = greedyAfter(model, b, l, start, prefix);
      const got = await engine.generateCausal({
        batchSize: b,
        length: l,
        start,
        prefix,
        temperature: 0,
        seed: 0,
      });
      assertEquals(got.syncs, 1);
      assertEquals(Array.from(got.tokens), Array.from(want));
      const live = engine.liveBuffers;
      const drawn = await engine.generateCausal({
        batchSize: b,
        length: l,
        start,
        prefix,
        temperature: 1,
        seed: 3,
      });
      for (let r = 0; r < b; r++) {
        assertEquals(
          Array.from(drawn.tokens.subarray(r * l, r * l + 4)),
          [start, ...prefix],
        );
      }
      // The prompt's copy buffer (and the draws' uniforms) are released.
      assertEquals(engine.liveBuffers, live);
      const later = drawn.tokens.filter((_, k) => k % l >= 4);
      assert(later.every((x) => x >= 0 && x < 37), `${later}`);
      const viaGenerate = await generate(engine, {
        batchSize: b,
        length: l,
        start,
        prefix,
        temperature: 0,
        prng: prng(0),
      });
      assertEquals(Array.from(viaGenerate), Array.from(want));
      // A prompt filling the row: nothing drawn.
      const full = await engine.generateCausal({
        batchSize: 2,
        length: 4,
        start: 1,
        prefix: [5, 6, 7],
        temperature: 1,
        seed: 0,
      });
      assertEquals(Array.from(full.tokens), [1, 5, 6, 7, 1, 5, 6, 7]);
      await assertRejects(
        () =>
          engine.generateCausal({
            batchSize: 1,
            length: 4,
            start: 1,
            prefix: [5, 6, 7, 8],
            seed: 0,
          }),
        RangeError,
        "at most length − 1 = 3",
      );
      model.dispose();
      engine.dispose();
    },
  });
}

Deno.test({
  name:
    "generateCausal at temperature 1 after a prefix: the first drawn token follows tfjs's softmax given the prompt",
  ...gpu,
  fn: async () => {
    await tf.setBackend("cpu");
    const config = parityConfig("causal", "learned");
    const { model, weights } = await perturbedModel(config, 2);
    const engine = await WebGpuTransformer.create(config, {
      batchSize: 2,
      length: 7,
      weights,
      device: testDevice(),
    });
    const rows = 4000, start = 3, prefix = [7, 20];
    const got = await engine.generateCausal({
      batchSize: rows,
      length: 4,
      start,
      prefix,
      temperature: 1,
      seed: 9,
    });
    for (let r = 0; r < rows; r++) {
      assertEquals([got.tokens[r * 4 + 1], got.tokens[r * 4 + 2]], prefix);
    }
    const fit = firstDrawFit(model, got.tokens, rows, [start, ...prefix]);
    assert(fit.ok.p >= 1e-5, `χ² ${fit.ok.chi2} on ${fit.ok.df} df`);
    for (const wrong of [[start, 7], [start, 20, 7]]) {
      const power = chiSquarePower(
        fit.probs,
        softmaxAfter(model, wrong),
        rows,
        1e-5,
      );
      assert(power >= 0.99, `power ${power} against ${wrong}`);
    }
    model.dispose();
    engine.dispose();
  },
});
