// Prompted generation on the CPU engine: a prefix is teacher-forced (kept
// verbatim, its ids go in as the steps' inputs) and the greedy continuation
// after it equals the tfjs model's, token for token, with learned and rotary
// positions, in one chunk of rows or several; through `@d3pm/autoregressive`'s
// `generate` too, which hands the prefix to the device generator.

import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { prng } from "@d3pm/core";
import { generate } from "@d3pm/autoregressive";
import { CpuTransformer } from "./mod.ts";
import { chiSquarePower } from "../webgpu/_test_stats.ts";
import {
  firstDrawFit,
  greedyAfter,
  parityConfig,
  perturbedModel,
  softmaxAfter,
} from "../webgpu/_test_util.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

for (const positions of ["learned", "rotary"] as const) {
  Deno.test({
    name:
      `CpuTransformer.generateCausal (${positions}) with a prefix: kept verbatim, greedy continuation equals tfjs's`,
    ...opts,
    fn: async () => {
      await tf.setBackend("cpu");
      const config = parityConfig("causal", positions);
      const { model, weights } = await perturbedModel(config, 11);
      const b = 3, l = 9, start = 4;
      // A prompt off the greedy path (each id differs from what greedy
      // would draw there), so forcing it matters at every position.
      const free = greedyAfter(model, 1, l, start, []);
      const prefix = [
        (free[1] + 5) % 37,
        (free[2] + 9) % 37,
        (free[3] + 13) % 37,
      ];
      const want = greedyAfter(model, b, l, start, prefix);
      const greedyAfterFirst = greedyAfter(
        model,
        1,
        l,
        start,
        prefix.slice(0, 1),
      );
      assert(
        want[2] !== greedyAfterFirst[2] || want[3] !== greedyAfterFirst[3],
        "the prompt must leave the greedy path",
      );
      for (const scoreRows of [16, 1]) {
        const engine = await CpuTransformer.create(config, {
          evaluationOnly: true,
          weights,
          threads: 2,
          scoreRows,
        });
        try {
          const got = await engine.generateCausal({
            batchSize: b,
            length: l,
            start,
            prefix,
            temperature: 0,
            seed: 0,
          });
          assertEquals(Array.from(got.tokens), Array.from(want));
          // Drawn rows keep the prompt verbatim too.
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
          // Through the autoregressive generate (the sample tool's path).
          const viaGenerate = await generate(engine, {
            batchSize: b,
            length: l,
            start,
            prefix,
            temperature: 0,
            prng: prng(0),
          });
          assertEquals(Array.from(viaGenerate), Array.from(want));
        } finally {
          engine.dispose();
        }
      }
      model.dispose();
    },
  });
}

Deno.test({
  name:
    "CpuTransformer.generateCausal: a prefix filling the row, and bad prefixes refused",
  ...opts,
  fn: async () => {
    const config = parityConfig("causal", "learned");
    const engine = await CpuTransformer.create(config, {
      evaluationOnly: true,
      seed: 0,
      threads: 1,
    });
    try {
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
      await assertRejects(
        () =>
          engine.generateCausal({
            batchSize: 1,
            length: 4,
            start: 1,
            prefix: [37],
            seed: 0,
          }),
        RangeError,
        "prefix ids must be token ids in [0, 37)",
      );
    } finally {
      engine.dispose();
    }
  },
});

Deno.test({
  name:
    "generate on a device generator: the prefix goes to the engine, onStep is called once with the finished rows",
  ...opts,
  fn: async () => {
    const config = parityConfig("causal", "rotary");
    const engine = await CpuTransformer.create(config, {
      evaluationOnly: true,
      seed: 2,
      threads: 1,
    });
    try {
      const steps: { step: number; steps: number; tokens: number[] }[] = [];
      const out = await generate(engine, {
        batchSize: 2,
        length: 7,
        start: 3,
        prefix: [8, 9],
        prng: prng(1),
        onStep: (s) => {
          steps.push({
            step: s.step,
            steps: s.steps,
            tokens: Array.from(s.tokens),
          });
        },
      });
      assertEquals(steps.length, 1);
      assertEquals([steps[0].step, steps[0].steps], [4, 4]);
      assertEquals(steps[0].tokens, Array.from(out));
      assertEquals(Array.from(out.subarray(7, 10)), [3, 8, 9]);
    } finally {
      engine.dispose();
    }
  },
});

Deno.test({
  name:
    "CpuTransformer.generateCausal at temperature 1 after a prefix: the first drawn token follows tfjs's softmax given the prompt",
  ...opts,
  fn: async () => {
    await tf.setBackend("cpu");
    const config = parityConfig("causal", "learned");
    const { model, weights } = await perturbedModel(config, 2);
    const engine = await CpuTransformer.create(config, {
      evaluationOnly: true,
      weights,
      threads: 2,
    });
    try {
      const rows = 4000, start = 3, prefix = [7, 20];
      const got = await engine.generateCausal({
        batchSize: rows,
        length: 4,
        start,
        prefix,
        temperature: 1,
        seed: 9,
      });
      const fit = firstDrawFit(model, got.tokens, rows, [start, ...prefix]);
      assert(fit.ok.p >= 1e-5, `χ² ${fit.ok.chi2} on ${fit.ok.df} df`);
      // Near misses the test tells apart: the prompt shifted by one, the
      // prompt's ids reversed.
      for (const wrong of [[start, 7], [start, 20, 7]]) {
        const power = chiSquarePower(
          fit.probs,
          softmaxAfter(model, wrong),
          rows,
          1e-5,
        );
        assert(power >= 0.99, `power ${power} against ${wrong}`);
      }
    } finally {
      engine.dispose();
      model.dispose();
    }
  },
});
