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

// Ctrl-C during the exact bound (one rowLosses call of T passes) was
// handled only when the whole evaluation ended (17.9 s on a micro run with
// 3,000 diffusion steps): rowLosses scored every pass synchronously.
Deno.test("rowLosses turns the event loop during a long list, so a signal listener runs", async () => {
  const { CpuTransformer } = await import("./engine.ts");
  const { preset } = await import("@d3pm/transformer");
  const { assert } = await import("@std/assert");
  const c = preset("micro", { vocabSize: 16, contextLength: 8 });
  const engine = await CpuTransformer.create(c, {
    batchSize: 1,
    length: 8,
    evaluationOnly: true,
  });
  try {
    const terms = {
      rows: 4,
      length: 8,
      inputs: new Int32Array(32).fill(3),
      targets: new Int32Array(32).fill(5),
      weights: new Float32Array(32).fill(1),
    };
    // Enough passes for more than 50 ms.
    // Lists twice as long until one takes 200 ms: a timer set before it
    // must have fired by the time it resolves.
    let n = 32, fired = false, ms = 0;
    while (ms < 200 && n < 1 << 20) {
      n *= 2;
      fired = false;
      setTimeout(() => fired = true, 0);
      const t0 = performance.now();
      const out = await engine.rowLosses(Array(n).fill(terms));
      ms = performance.now() - t0;
      assert(out.length === n);
    }
    assert(
      fired,
      `the timer did not fire during ${n} passes (${ms.toFixed(0)} ms)`,
    );
  } finally {
    engine.dispose();
  }
});
