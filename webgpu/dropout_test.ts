// Dropout in the training step. Its masks come from a hash of (seed, step,
// site, index), not from tfjs's generator, so there is no tfjs reference:
// the gradients are checked against central finite differences of the
// engine's own loss with the masks held fixed (dropoutSeed): per tensor, the
// derivative along the tensor's gradient must equal its norm within 1e-2.

import type { StoredTensor } from "@d3pm/core";
import { assert, assertEquals, assertLess, assertNotEquals } from "@std/assert";
import { validateConfig } from "@d3pm/transformer";
import { type TrainBatch, WebGpuTransformer } from "./mod.ts";
import { gpu, parityConfig, randomIds, testDevice } from "./_test_util.ts";

const B = 2, T = 7, V = 37;

function batch(seed: number, timed = false): TrainBatch {
  return {
    inputs: randomIds(B * T, V, seed),
    targets: randomIds(B * T, V, seed + 50),
    weights: new Float32Array(B * T).fill(1 / (B * T)),
    ...(timed ? { t: [0.25, 0.7] } : {}),
  };
}

async function lossAt(
  e: WebGpuTransformer,
  b: TrainBatch,
  seed: number,
): Promise<number> {
  e.backward(b, { dropoutSeed: seed });
  return (await e.readLoss()).loss;
}

for (
  const [label, kind, timed] of [
    ["causal", "causal", false],
    ["bidirectional, time-conditioned", "bidirectional", true],
  ] as const
) {
  Deno.test({
    name:
      `dropout gradients (${label}) match finite differences of the engine's loss`,
    ...gpu,
    fn: async () => {
      const config = validateConfig({
        ...parityConfig(kind, "learned"),
        dropout: 0.2,
        timeConditioning: timed,
        dTime: 8,
      });
      const e = await WebGpuTransformer.create(config, {
        batchSize: B,
        length: T,
        seed: 4,
        device: testDevice(),
      });
      const b = batch(1, timed);
      const seed = 1234;
      const base = await lossAt(e, b, seed);
      assertNotEquals(base, await lossAt(e, b, seed + 1), "masks vary by seed");
      assertEquals(base, await lossAt(e, b, seed), "masks repeat for a seed");
      e.backward(b, { dropoutSeed: seed });
      await e.readLoss();
      const grads = await e.readGradients();
      const weights = await e.getWeights();
      // Per tensor, the derivative along its own gradient direction ĝ:
      // (L(w + εĝ) − L(w − εĝ)) / 2ε must equal |g| (every entry counts).
      const eps = 1e-2;
      for (const [name, g] of grads) {
        const norm = Math.hypot(...g.data);
        if (norm < 1e-6) continue; // e.g. wpe rows beyond T
        const shifted = (delta: number) => {
          const w = new Map<string, StoredTensor>(weights);
          const data = weights.get(name)!.data.map((x, i) =>
            x + (delta * g.data[i]) / norm
          );
          w.set(name, { shape: g.shape, data });
          return w;
        };
        e.setWeights(shifted(eps));
        const up = await lossAt(e, b, seed);
        e.setWeights(shifted(-eps));
        const down = await lossAt(e, b, seed);
        const fd = (up - down) / (2 * eps);
        assertLess(
          Math.abs(fd - norm),
          1e-2 * norm + 1e-5,
          `${name}: |g| ${norm}, finite difference along g ${fd}`,
        );
      }
      e.setWeights(weights);
      e.dispose();
    },
  });
}

Deno.test({
  name: "with dropout, resuming from weights and AdamW state is bit-identical",
  ...gpu,
  fn: async () => {
    const config = validateConfig({
      ...parityConfig("causal", "rotary"),
      dropout: 0.1,
    });
    const make = (weights?: Map<string, StoredTensor>) =>
      WebGpuTransformer.create(config, {
        batchSize: B,
        length: T,
        seed: 2,
        weights,
        device: testDevice(),
      });
    const straight = await make();
    for (let s = 0; s < 4; s++) straight.step(batch(s), 1e-2);
    const first = await make();
    for (let s = 0; s < 2; s++) first.step(batch(s), 1e-2);
    const resumed = await make(await first.getWeights());
    resumed.loadOptimizerState(await first.optimizerState());
    first.dispose();
    for (let s = 2; s < 4; s++) resumed.step(batch(s), 1e-2);
    const a = await straight.getWeights(), r = await resumed.getWeights();
    for (const [name, t] of a) assertEquals(r.get(name)!.data, t.data, name);
    // And dropout is on: the same run without it ends elsewhere.
    const plain = await WebGpuTransformer.create(
      validateConfig({ ...config, dropout: 0 }),
      { batchSize: B, length: T, seed: 2, device: testDevice() },
    );
    for (let s = 0; s < 4; s++) plain.step(batch(s), 1e-2);
    const p = await plain.getWeights();
    assert(
      [...p].some(([name, t]) =>
        t.data.some((x, i) => x !== a.get(name)!.data[i])
      ),
    );
    straight.dispose();
    resumed.dispose();
    plain.dispose();
  },
});
