// Parity of the CPU engine with the tfjs Transformer on the `cpu` backend:
// the WebGPU engine's parity suite (webgpu/_parity_suite.ts) on the other
// executor of the same plan, on two threads splitting every call — logits,
// loss, every gradient, 3 clipped AdamW steps (causal and bidirectional,
// learned and rotary positions, ALiBi in both modes, time conditioning,
// rows of 70 tokens), per-row scoring in chunks of rows, run-to-run
// determinism and bit-identical resume (dropout, EMA), and a checkpoint
// resumed across engines (tfjs → CPU engine and back); tolerances stated
// there. Also: the engine's own one-line errors.

import {
  assertEquals,
  assertLess,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { CpuTransformer } from "./mod.ts";
import {
  crossEngineResume,
  refusalParity,
  resumeParity,
  scoringParity,
  trainingParity,
} from "../webgpu/_parity_suite.ts";
import {
  parityConfig,
  perturbedModel,
  randomIds,
  relError,
} from "../webgpu/_test_models.ts";
import { cpuExecutor } from "./_test_util.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

trainingParity(cpuExecutor);
scoringParity(cpuExecutor);
refusalParity(cpuExecutor);
resumeParity(cpuExecutor);
crossEngineResume(cpuExecutor);

Deno.test({
  name: "CpuTransformer names a bad shape, batch or call in one line",
  ...opts,
  fn: async () => {
    const config = parityConfig("causal", "rotary");
    await assertRejects(
      () => CpuTransformer.create(config, { batchSize: 0, length: 4 }),
      RangeError,
      "batchSize must be a positive integer, got 0",
    );
    const e = await CpuTransformer.create(config, {
      evaluationOnly: true,
      threads: 1,
    });
    try {
      assertThrows(
        () =>
          e.step({
            inputs: randomIds(14, 37, 11),
            targets: randomIds(14, 37, 12),
            weights: new Float32Array(14).fill(1 / 14),
          }, 1e-3),
        RangeError,
        "CpuTransformer: step needs a training engine",
      );
    } finally {
      e.dispose();
    }
  },
});

// Short rows fit more rows into a pass than `scoreRows`, but a
// time-conditioned model's modulations are per row: 48 rows of 3 once
// overflowed the inference region (a RangeError) on masked sampling.
Deno.test({
  name:
    "CpuTransformer.forwardIds runs many short rows of a time-conditioned model, each row's logits as when run alone",
  ...opts,
  fn: async () => {
    const config = parityConfig("bidirectional", "rotary", {
      timeConditioning: true,
    });
    // Weights far from the init (its adaLN is zero: t would not matter).
    const { model, weights } = await perturbedModel(config, 3);
    model.dispose();
    const e = await CpuTransformer.create(config, {
      evaluationOnly: true,
      weights,
      threads: 2,
    });
    try {
      const rows = 50, l = 3, V = 37;
      const ids = randomIds(rows * l, V, 5);
      const t = Array.from({ length: rows }, (_, r) => (r + 1) / (rows + 1));
      const all = await e.forwardIds(ids, rows, l, t);
      for (const r of [0, 17, 49]) {
        const one = await e.forwardIds(ids.slice(r * l, (r + 1) * l), 1, l, [
          t[r],
        ]);
        const err = relError(all.subarray(r * l * V, (r + 1) * l * V), one);
        assertLess(err, 1e-6, `row ${r}: relative error ${err}`);
      }
    } finally {
      e.dispose();
    }
  },
});

// Plans were kept in plain maps, one per shape ever met: a long-lived
// engine (the dashboard's, a sweep's judge) held every one.
Deno.test({
  name:
    "CpuTransformer keeps at most 4 inference and 2 decode plans, a dropped one rebuilt to the same bits, none after dispose",
  ...opts,
  fn: async () => {
    const config = parityConfig("causal", "rotary");
    const e = await CpuTransformer.create(config, {
      evaluationOnly: true,
      seed: 3,
      threads: 1,
    });
    try {
      const ids = randomIds(8, 37, 9);
      const first = await e.forwardIds(ids.subarray(0, 1), 1, 1);
      for (let length = 2; length <= 6; length++) {
        await e.forwardIds(ids.subarray(0, length), 1, length);
      }
      assertEquals(e.plansHeld, { inference: 4, decode: 0 });
      // Length 1's plan was the oldest built: dropped, then rebuilt.
      assertEquals(await e.forwardIds(ids.subarray(0, 1), 1, 1), first);
      assertEquals(e.plansHeld.inference, 4);
      const greedy = (batchSize: number) =>
        e.generateCausal({
          batchSize,
          length: 5,
          start: 1,
          temperature: 0,
          seed: 0,
        });
      const one = await greedy(1);
      await greedy(2);
      await greedy(3);
      assertEquals(e.plansHeld, { inference: 4, decode: 2 });
      assertEquals((await greedy(1)).tokens, one.tokens);
    } finally {
      e.dispose();
    }
    assertEquals(e.plansHeld, { inference: 0, decode: 0 });
  },
});
