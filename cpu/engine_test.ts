// Parity of the CPU engine with the tfjs Transformer on the `cpu` backend:
// the WebGPU engine's parity suite (webgpu/_parity_suite.ts) on the other
// executor of the same plan, on two threads splitting every call — logits,
// loss, every gradient, 3 clipped AdamW steps (causal and bidirectional,
// learned and rotary positions, ALiBi in both modes, time conditioning,
// rows of 70 tokens), per-row scoring in chunks of rows, run-to-run
// determinism and bit-identical resume (dropout, EMA); tolerances stated
// there. Also: the engine's own one-line errors.

import { assertRejects, assertThrows } from "@std/assert";
import { CpuTransformer } from "./mod.ts";
import {
  resumeParity,
  scoringParity,
  trainingParity,
} from "../webgpu/_parity_suite.ts";
import { parityConfig, randomIds } from "../webgpu/_test_models.ts";
import { cpuExecutor } from "./_test_util.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

trainingParity(cpuExecutor);
scoringParity(cpuExecutor);
resumeParity(cpuExecutor);

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
