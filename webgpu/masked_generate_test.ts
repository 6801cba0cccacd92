// Masked-diffusion sampling on the WebGPU engine: the parity suite's
// masked cases (webgpu/_parity_suite.ts) on this executor — ancestral with
// and without the logits cache, confidence-based, semi-autoregressive
// blocks with top-p, the reveal schedule on a time-stamp model, infilling —
// against the exact float64 law of the sampler, with the power against each
// near miss asserted; one sync per batch. Also: the engine's one-line
// errors.

import { assertRejects } from "@std/assert";
import { maskedGenerationParity } from "./_parity_suite.ts";
import { WebGpuTransformer } from "./mod.ts";
import { gpu, parityConfig, testDevice, webgpuExecutor } from "./_test_util.ts";

const MASK = 36;

maskedGenerationParity(webgpuExecutor);

Deno.test({
  name: "generateMasked: bad options give one-line errors",
  ...gpu,
  fn: async () => {
    const engine = await WebGpuTransformer.create(
      parityConfig("bidirectional", "learned"),
      { batchSize: 1, length: 2, seed: 1, device: testDevice() },
    );
    const ok = {
      batchSize: 1,
      length: 3,
      maskId: MASK,
      steps: [{ t: 1, reveal: 1 }],
      strategy: "ancestral" as const,
      cache: false,
      seed: 0,
    };
    await assertRejects(
      () => engine.generateMasked({ ...ok, steps: [{ t: 2, reveal: 1 }] }),
      RangeError,
      "steps[0] needs t and reveal in [0, 1], got t 2, reveal 1",
    );
    await assertRejects(
      () => engine.generateMasked({ ...ok, prompt: Int32Array.of(1, 2) }),
      RangeError,
      "prompt must hold B·L = 3 ids, got 2",
    );
    await assertRejects(
      () => engine.generateMasked({ ...ok, temperature: 0 }),
      RangeError,
      "temperature must be > 0 for masked sampling",
    );
    engine.dispose();
  },
});
