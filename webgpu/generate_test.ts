// Generation on the WebGPU engine: the parity suite's AR cases
// (webgpu/_parity_suite.ts) on this executor — decoding with the KV cache on
// the GPU gives the tfjs model's greedy continuation, after a prompt too
// (teacher-forced on the GPU, kept verbatim), in one command buffer and one
// sync, leaving no buffer behind; the first draw at temperature 1 follows
// the model's softmax, with top-k and top-p, and after a prompt. Also: the
// engine's one-line errors.

import { assertRejects } from "@std/assert";
import { causalGenerationParity } from "./_parity_suite.ts";
import { WebGpuTransformer } from "./mod.ts";
import { gpu, parityConfig, testDevice, webgpuExecutor } from "./_test_util.ts";

causalGenerationParity(webgpuExecutor);

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
