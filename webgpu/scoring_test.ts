// Evaluation on the engine (`rowLosses`, the TermScorer contract): the AR
// NLL, both D3PM bounds and infilling's NLL equal the tfjs model's for the
// same blocks and the same draws, with one GPU→CPU sync per evaluated batch.

import { prng, type TokenBatch } from "@d3pm/core";
import { assertEquals, assertLess, assertRejects } from "@std/assert";
import type { ModelConfig } from "@d3pm/transformer";
import { causalNll } from "@d3pm/autoregressive";
import { maskedDiffusion } from "@d3pm/diffusion";
import { WebGpuTransformer } from "./mod.ts";
import {
  gpu,
  parityConfig,
  perturbedModel,
  randomIds,
  testDevice,
} from "./_test_util.ts";

const V = 37, MASK = 36, PAD = 35;

// Perturbed weights: at the init, adaLN is zero and a time-conditioned
// model ignores t, so a wrong time would go unseen.
async function pair(config: ModelConfig, seed: number) {
  const { model, weights } = await perturbedModel(config, seed);
  const engine = await WebGpuTransformer.create(config, {
    batchSize: 2,
    length: 7,
    weights,
    device: testDevice(),
  });
  return { model, engine };
}

function rel(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
}

Deno.test({
  name: "rowLosses: the AR NLL on the engine equals tfjs (1e-5), one sync",
  ...gpu,
  fn: async () => {
    const { model, engine } = await pair(parityConfig("causal", "learned"), 3);
    // 3 rows of 9: another shape than the training step's 2 × 7.
    const tokens = randomIds(27, V, 4);
    tokens[5] = PAD;
    const x0: TokenBatch = { tokens, batchSize: 3, length: 9 };
    const want = await causalNll(model, x0, { padId: PAD });
    const syncs = engine.counters.syncs;
    const got = await causalNll(engine, x0, { padId: PAD });
    assertEquals(engine.counters.syncs - syncs, 1);
    assertEquals(got.tokens, want.tokens);
    assertLess(rel(got.nats, want.nats), 1e-5, `${got.nats} vs ${want.nats}`);
    // A second call reuses the cached plan: no buffer is left behind.
    const live = engine.liveBuffers;
    await causalNll(engine, x0, { padId: PAD });
    assertEquals(engine.liveBuffers, live);
    model.dispose();
    engine.dispose();
  },
});

for (const timed of [false, true]) {
  Deno.test({
    name: `rowLosses: both D3PM bounds on the engine equal tfjs${
      timed ? " (time-conditioned)" : ""
    }, one sync per batch`,
    ...gpu,
    fn: async () => {
      const config = {
        ...parityConfig("bidirectional", "rotary"),
        timeConditioning: timed,
      };
      const { model, engine } = await pair(config, 5);
      const process = maskedDiffusion({
        kind: "masked-diffusion",
        vocab: V,
        maskId: MASK,
        padId: PAD,
        steps: 12,
        schedule: { kind: "log-linear" },
        objective: "mdlm",
      });
      const tokens = randomIds(24, V - 1, 6); // may hold PAD, never MASK
      const x0: TokenBatch = { tokens, batchSize: 3, length: 8 };
      for (const kind of ["continuous", "exact"] as const) {
        const options = () => ({ prng: prng(9), kind, samples: 3 });
        const want = await process.bound(model, x0, options());
        const syncs = engine.counters.syncs;
        const got = await process.bound(engine, x0, options());
        assertEquals(engine.counters.syncs - syncs, 1, kind);
        assertEquals(got.tokens, want.tokens);
        // Float32 logits summed in another order: 1e-5 relative (the exact
        // bound sums 12 passes of the same terms).
        assertLess(
          rel(got.nats, want.nats),
          1e-5,
          `${kind}: ${got.nats} vs ${want.nats}`,
        );
        if (kind === "continuous") {
          assertLess(rel(got.stderr, want.stderr), 1e-4, "stderr");
        }
      }
      model.dispose();
      engine.dispose();
    },
  });
}

Deno.test({
  name:
    "infill's NLL on the engine (rowLosses) equals tfjs's for the same hidden tokens (time-conditioned)",
  ...gpu,
  fn: async () => {
    const config = {
      ...parityConfig("bidirectional", "rotary"),
      timeConditioning: true,
    };
    const { model, engine } = await pair(config, 7);
    const process = maskedDiffusion({
      kind: "masked-diffusion",
      vocab: V,
      maskId: MASK,
      padId: PAD,
      steps: 12,
      schedule: { kind: "log-linear" },
      objective: "mdlm",
    });
    const x0: TokenBatch = {
      tokens: randomIds(32, V - 2, 8),
      batchSize: 4,
      length: 8,
    };
    const options = () => ({ fraction: 0.4, steps: 3, prng: prng(2) });
    const want = await process.evaluateInfill(model, x0, options());
    const got = await process.evaluateInfill(engine, x0, options());
    assertEquals(got.hidden, want.hidden);
    assertLess(rel(got.nll, want.nll), 1e-5, `${got.nll} vs ${want.nll}`);
    model.dispose();
    engine.dispose();
  },
});

Deno.test({
  name: "rowLosses: bad terms give one-line errors",
  ...gpu,
  fn: async () => {
    const { model, engine } = await pair(parityConfig("causal", "learned"), 1);
    const terms = {
      rows: 1,
      length: 3,
      inputs: Int32Array.of(1, 2, 3),
      targets: Int32Array.of(2, 3, 4),
      weights: new Float32Array(3).fill(1),
    };
    await assertRejects(
      () => engine.rowLosses([{ ...terms, length: 10 }]),
      RangeError,
      "needs rows ≥ 1 and 1 ≤ length ≤ 9, got 1 × 10",
    );
    await assertRejects(
      () => engine.rowLosses([{ ...terms, inputs: Int32Array.of(1, 99, 3) }]),
      RangeError,
      "inputs[1] must be a token id in [0, 37), got 99",
    );
    await assertRejects(
      () => engine.rowLosses([{ ...terms, targets: Int32Array.of(1, 2) }]),
      RangeError,
      "targets must hold rows·length = 3 values, got 2",
    );
    model.dispose();
    engine.dispose();
  },
});
