// Generation on the CPU engine: the parity suite's generation cases
// (webgpu/_parity_suite.ts) on this executor — AR decoding with the KV
// cache gives the tfjs model's greedy continuation, after a prompt too, in
// one chunk of rows or several; the first draw at temperature 1 follows the
// model's softmax, with top-k and top-p, and after a prompt (χ², with the
// power against each near miss asserted); masked-diffusion sampling follows
// the exact float64 law of the sampler and its near misses would not. Also:
// the engine's one-line errors.

import { assertRejects } from "@std/assert";
import { CpuTransformer } from "./mod.ts";
import {
  causalGenerationParity,
  maskedGenerationParity,
} from "../webgpu/_parity_suite.ts";
import { parityConfig } from "../webgpu/_test_models.ts";
import { cpuExecutor } from "./_test_util.ts";

const MASK = 36;
const opts = { sanitizeResources: false, sanitizeOps: false };

causalGenerationParity(cpuExecutor);
maskedGenerationParity(cpuExecutor);

Deno.test({
  name: "CpuTransformer generation: bad options give one-line errors",
  ...opts,
  fn: async () => {
    const causal = await CpuTransformer.create(
      parityConfig("causal", "learned"),
      { evaluationOnly: true, threads: 1 },
    );
    const ok = { batchSize: 1, length: 4, start: 0, temperature: 0, seed: 0 };
    await assertRejects(
      () => causal.generateCausal({ ...ok, length: 10 }),
      RangeError,
      "length must be an integer in [2, 9], got 10",
    );
    await assertRejects(
      () => causal.generateCausal({ ...ok, start: 37 }),
      RangeError,
      "start must be a token id in [0, 37), got 37",
    );
    await assertRejects(
      () =>
        causal.generateMasked({
          batchSize: 1,
          length: 3,
          maskId: MASK,
          steps: [{ t: 1, reveal: 1 }],
          strategy: "ancestral",
          cache: false,
          seed: 0,
        }),
      RangeError,
      "generateMasked needs a bidirectional model",
    );
    causal.dispose();
    const bidi = await CpuTransformer.create(
      parityConfig("bidirectional", "learned"),
      { evaluationOnly: true, threads: 1 },
    );
    await assertRejects(
      () => bidi.generateCausal(ok),
      RangeError,
      "generateCausal needs a causal model",
    );
    await assertRejects(
      () =>
        bidi.generateMasked({
          batchSize: 1,
          length: 3,
          maskId: MASK,
          steps: [{ t: 1, reveal: 1 }],
          strategy: "ancestral",
          cache: false,
          seed: 0,
          temperature: 0,
        }),
      RangeError,
      "temperature must be > 0 for masked sampling",
    );
    bidi.dispose();
  },
});
