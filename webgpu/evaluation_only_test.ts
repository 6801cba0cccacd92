// An engine built with `evaluationOnly` holds the parameters and nothing of
// training (no gradients, AdamW moments, EMA or training plan), computes
// exactly what a training engine computes, and refuses to train.

import {
  assert,
  assertEquals,
  assertLessOrEqual,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { saveModel, Transformer, validateConfig } from "@d3pm/transformer";
import * as tf from "@tensorflow/tfjs";
import { engineMemory, type TrainBatch, WebGpuTransformer } from "./mod.ts";
import { gpu, parityConfig, randomIds, testDevice } from "./_test_util.ts";
import { preset } from "@d3pm/transformer";

// Large enough that the parameters (≈ 0.4 MB) dwarf the uniform blocks.
const config = validateConfig({
  kind: "causal",
  vocabSize: 512,
  contextLength: 16,
  nLayer: 2,
  nHead: 2,
  dModel: 64,
  dMlp: 128,
  positions: "rotary",
  timeConditioning: false,
  dTime: 8,
  dropout: 0,
});
const B = 2, T = 16;
// Uniform blocks (256 bytes a dispatch), the scalars and the dummy binding.
const SMALL = 64 * 1024;

Deno.test({
  name:
    "an evaluation-only engine allocates the parameters alone: 3 × parameters and the training arena less",
  ...gpu,
  fn: async () => {
    const device = testDevice();
    const maxBindingBytes = device.limits.maxStorageBufferBindingSize;
    const shape = { batchSize: B, length: T, maxBindingBytes };
    const train = engineMemory(config, shape);
    const evalOnly = engineMemory(config, { ...shape, evaluationOnly: true });
    const trainer = await WebGpuTransformer.create(config, {
      batchSize: B,
      length: T,
      seed: 1,
      device,
    });
    const scorer = await WebGpuTransformer.create(config, {
      seed: 1,
      device,
      evaluationOnly: true,
    });
    assertEquals([trainer.evaluationOnly, scorer.evaluationOnly], [
      false,
      true,
    ]);
    // What engineMemory predicts is what is allocated, up to the uniform
    // blocks and two small buffers.
    for (
      const [engine, m] of [[trainer, train], [scorer, evalOnly]] as const
    ) {
      assertLessOrEqual(m.total, engine.liveBytes);
      assertLessOrEqual(engine.liveBytes, m.total + SMALL);
    }
    assertEquals(evalOnly.total, train.parameters);
    assertLessOrEqual(
      3 * train.parameters + train.arena,
      trainer.liveBytes - scorer.liveBytes,
    );
    trainer.dispose();
    scorer.dispose();
    assertEquals([scorer.liveBuffers, scorer.liveBytes], [0, 0]);
  },
});

Deno.test("engineMemory(): at the paper size an evaluation-only engine needs 1.49 GB less than a training engine's persistent buffers", () => {
  const shape = {
    batchSize: 4,
    length: 1024,
    maxBindingBytes: 2 ** 31,
  };
  const paper = preset("paper");
  const train = engineMemory(paper, shape);
  const evalOnly = engineMemory(paper, { ...shape, evaluationOnly: true });
  assertEquals(train.parameters, 124_442_880 * 4);
  assertEquals(evalOnly.total, train.parameters);
  assertEquals(train.persistent - evalOnly.persistent, 1_493_314_560);
  assert(train.total - evalOnly.total > train.persistent - evalOnly.persistent);
});

Deno.test({
  name:
    "an evaluation-only engine scores, runs forward and generates exactly as a training engine",
  ...gpu,
  fn: async () => {
    const device = testDevice();
    const trainer = await WebGpuTransformer.create(config, {
      batchSize: B,
      length: T,
      seed: 5,
      device,
    });
    const scorer = await WebGpuTransformer.create(config, {
      seed: 5,
      device,
      evaluationOnly: true,
    });
    const n = 3 * 9;
    const terms = {
      inputs: randomIds(n, 512, 1),
      targets: randomIds(n, 512, 2),
      weights: new Float32Array(n).fill(1 / n),
      rows: 3,
      length: 9,
    };
    assertEquals(
      await scorer.rowLosses([terms]),
      await trainer.rowLosses([terms]),
    );
    assertEquals(
      await scorer.forwardIds(terms.inputs, 3, 9),
      await trainer.forwardIds(terms.inputs, 3, 9),
    );
    for (const temperature of [0, 1]) {
      const o = { batchSize: 2, length: 12, start: 3, temperature, seed: 9 };
      assertEquals(
        (await scorer.generateCausal(o)).tokens,
        (await trainer.generateCausal(o)).tokens,
      );
    }
    trainer.dispose();
    scorer.dispose();

    const bi = parityConfig("bidirectional", "learned");
    const a = await WebGpuTransformer.create(bi, {
      batchSize: 2,
      length: 7,
      seed: 6,
      device,
    });
    const b = await WebGpuTransformer.create(bi, {
      seed: 6,
      device,
      evaluationOnly: true,
    });
    const o = {
      batchSize: 3,
      length: 6,
      maskId: 36,
      steps: [{ t: 1, reveal: 0.5 }, { t: 0.5, reveal: 1 }],
      strategy: "confidence" as const,
      cache: false,
      seed: 4,
    };
    assertEquals(
      (await b.generateMasked(o)).tokens,
      (await a.generateMasked(o)).tokens,
    );
    a.dispose();
    b.dispose();
  },
});

Deno.test({
  name:
    "an evaluation-only engine refuses to train, with a one-line error naming the option",
  ...gpu,
  fn: async () => {
    const device = testDevice();
    const e = await WebGpuTransformer.create(config, {
      device,
      evaluationOnly: true,
    });
    assertEquals([e.batchSize, e.length, e.stepCount], [0, 0, 0]);
    const inputs = randomIds(B * T, 512, 3);
    const batch: TrainBatch = {
      inputs,
      targets: inputs,
      weights: new Float32Array(B * T).fill(1),
    };
    const message = "evaluationOnly";
    assertThrows(
      () => e.step(batch, 1e-3),
      Error,
      `step needs a training engine`,
    );
    assertThrows(() => e.backward(batch), Error, message);
    assertThrows(() => e.evaluate(batch), Error, message);
    assertThrows(
      () => e.loadOptimizerState({ step: 0, m: new Map(), v: new Map() }),
      Error,
      message,
    );
    for (
      const call of [
        () => e.readLoss(),
        () => e.readEvaluation(),
        () => e.readGradients(),
        () => e.optimizerState(),
        () => e.emaWeights(),
        () => e.profileStep(batch, 1e-3),
      ]
    ) await assertRejects(call, Error, message);
    // Weights still go both ways.
    const w = await e.getWeights();
    e.setWeights(w);
    assertEquals(await e.getWeights(), w);
    e.dispose();
    await assertRejects(
      () =>
        WebGpuTransformer.create(config, {
          device,
          evaluationOnly: true,
          emaDecay: 0.9,
        }),
      RangeError,
      "emaDecay needs a training engine",
    );
    await assertRejects(
      () => WebGpuTransformer.create(config, { device }),
      RangeError,
      "batchSize must be a positive integer, got undefined",
    );
  },
});

Deno.test({
  name: "load() builds an evaluation-only engine from a saved tfjs model",
  ...gpu,
  fn: async () => {
    await tf.setBackend("cpu");
    const model = new Transformer(config, { seed: 2 });
    const dir = await Deno.makeTempDir();
    await saveModel(model, dir);
    const e = await WebGpuTransformer.load(dir, {
      device: testDevice(),
      evaluationOnly: true,
    });
    assert(e.evaluationOnly);
    const ids = randomIds(2 * 5, 512, 7);
    const x = tf.tensor2d(ids, [2, 5], "int32");
    const want = model.forward(x);
    const got = await e.forward(x);
    const a = await got.data(), b = await want.data();
    let diff = 0, scale = 0;
    for (let i = 0; i < a.length; i++) {
      diff = Math.max(diff, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(b[i]));
    }
    assertLessOrEqual(diff / scale, 1e-5);
    tf.dispose([x, want, got]);
    model.dispose();
    e.dispose();
    await Deno.remove(dir, { recursive: true });
  },
});
