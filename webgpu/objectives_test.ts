// The engine trained on the project's objectives gives the tfjs numbers:
// MDLM's mdlmLoss through mdlmTerms, and a 20-step causal loss curve
// (causalLmLoss + clipByGlobalNorm + AdamW on `cpu`) step by step.

import { prng } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { assertLess } from "@std/assert";
import { Transformer } from "@d3pm/transformer";
import { AdamW, clipByGlobalNorm } from "@d3pm/train";
import { autoregressive, causalLmLoss } from "@d3pm/autoregressive";
import { logLinear, mdlmLoss, mdlmTerms } from "@d3pm/diffusion";
import { WebGpuTransformer } from "./mod.ts";
import { gpu, parityConfig, randomIds, testDevice } from "./_test_util.ts";

const B = 2, T = 7, V = 37, MASK = 36, PAD = 35;

Deno.test({
  name: "mdlmTerms on the engine gives mdlmLoss for the same draws",
  ...gpu,
  fn: async () => {
    await tf.setBackend("cpu");
    const config = parityConfig("bidirectional", "rotary");
    const model = new Transformer(config, { seed: 2 });
    const engine = await WebGpuTransformer.create(config, {
      batchSize: B,
      length: T,
      seed: 2,
      device: testDevice(),
      excludeToken: MASK,
    });
    const tokens = randomIds(B * T, V - 1, 21); // may hold PAD, never MASK
    const schedule = logLinear();
    const want = mdlmLoss(model, { tokens, batchSize: B, length: T }, {
      schedule,
      maskId: MASK,
      padId: PAD,
      prng: prng(7),
      training: false,
    });
    // The same draws as mdlmLoss, as weighted terms.
    engine.backward(
      mdlmTerms({ tokens, batchSize: B, length: T }, {
        schedule,
        maskId: MASK,
        padId: PAD,
        prng: prng(7),
      }),
    );
    const got = (await engine.readLoss()).loss;
    const ref = (await want.data())[0];
    assertLess(Math.abs(got - ref) / ref, 1e-5, `${got} vs ${ref}`);
    want.dispose();
    model.dispose();
    engine.dispose();
  },
});

Deno.test({
  name: "a 20-step causal loss curve on the engine follows tfjs within 1e-3",
  ...gpu,
  fn: async () => {
    await tf.setBackend("cpu");
    const config = parityConfig("causal", "learned");
    const model = new Transformer(config, { seed: 3 });
    const opt = new AdamW(model.variables);
    const engine = await WebGpuTransformer.create(config, {
      batchSize: B,
      length: T,
      seed: 3,
      device: testDevice(),
    });
    const lr = 3e-3;
    const causal = autoregressive({ kind: "autoregressive", start: 0 });
    for (let step = 0; step < 20; step++) {
      // A tiny repeating corpus so the loss falls.
      const blocks = randomIds(B * (T + 1), 8, step % 4);
      const ref = tf.variableGrads(
        () =>
          causalLmLoss(model, { tokens: blocks, batchSize: B, length: T + 1 }),
        model.trainableVariables(),
      );
      const grads = new Map(
        [...model.variables].map(([k, v]) => [k, ref.grads[v.name]]),
      );
      const clipped = await clipByGlobalNorm(grads, 1);
      opt.step(clipped.grads, lr);
      const want = (await ref.value.data())[0];
      tf.dispose([ref.value, ...grads.values(), ...clipped.grads.values()]);
      engine.step(
        causal.lossTerms({ tokens: blocks, batchSize: B, length: T + 1 }),
        lr,
      );
      const got = (await engine.readLoss()).loss;
      assertLess(
        Math.abs(got - want) / want,
        1e-3,
        `step ${step}: engine ${got}, tfjs ${want}`,
      );
    }
    opt.dispose();
    model.dispose();
    engine.dispose();
  },
});
