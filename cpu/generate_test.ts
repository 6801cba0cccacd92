// Generation on the CPU engine: the parity suite's generation cases
// (webgpu/_parity_suite.ts) on this executor — AR decoding with the KV
// cache gives the tfjs model's greedy continuation, after a prompt too, in
// one chunk of rows or several; the first draw at temperature 1 follows the
// model's softmax, with top-k and top-p, and after a prompt (χ², with the
// power against each near miss asserted); masked-diffusion sampling follows
// the exact float64 law of the sampler and its near misses would not; bad
// options refused in one line.

import {
  causalGenerationParity,
  generationErrors,
  maskedGenerationParity,
} from "../webgpu/_parity_suite.ts";
import { cpuExecutor } from "./_test_util.ts";

causalGenerationParity(cpuExecutor);
maskedGenerationParity(cpuExecutor);
generationErrors(cpuExecutor);

// The inference region holds a one-row decode plan at full length, whatever
// the depth: the KV cache grows with the layers (2 · layers · length ·
// d_model floats) while the score plan's activations are shared by the
// layers, so a deep, narrow model (`--n-layer 1024 --d-model 64`) trained,
// then failed at evaluation with "length 32 does not fit the engine's
// inference region".
Deno.test("generateCausal: a deep, narrow model decodes at full length", async () => {
  const { CpuTransformer } = await import("./engine.ts");
  const { preset } = await import("@d3pm/transformer");
  const { assertEquals } = await import("@std/assert");
  const c = preset("micro", {
    vocabSize: 16,
    contextLength: 16,
    nLayer: 24,
    nHead: 2,
    dModel: 8,
    dMlp: 16,
  });
  const engine = await CpuTransformer.create(c, {
    batchSize: 1,
    length: 16,
    evaluationOnly: true,
    scoreRows: 1,
    chunkRows: 1,
  });
  try {
    const out = await engine.generateCausal({
      batchSize: 2,
      length: 16,
      start: 1,
      temperature: 0,
      seed: 0,
    });
    assertEquals(out.tokens.length, 2 * 16);
  } finally {
    engine.dispose();
  }
});
