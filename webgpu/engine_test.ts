import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertEquals,
  assertLess,
  assertRejects,
  assertThrows,
} from "@std/assert";
import {
  deserializeModel,
  saveModel,
  Transformer,
  validateConfig,
} from "@d3pm/transformer";
import { ignoreUnless } from "@d3pm/core/testing";
import { type TrainBatch, WebGpuTransformer } from "./mod.ts";
import {
  gpu,
  parityConfig,
  randomIds,
  relError,
  testDevice,
} from "./_test_util.ts";

const B = 2, T = 7, V = 37;

function batch(seed: number): TrainBatch {
  const inputs = randomIds(B * T, V, seed);
  const targets = randomIds(B * T, V, seed + 100);
  return {
    inputs,
    targets,
    weights: new Float32Array(B * T).fill(1 / (B * T)),
  };
}

function engine(
  seed = 1,
  extra: Partial<Parameters<typeof WebGpuTransformer.create>[1]> = {},
): Promise<WebGpuTransformer> {
  return WebGpuTransformer.create(parityConfig("causal", "learned"), {
    batchSize: B,
    length: T,
    seed,
    device: testDevice(),
    ...extra,
  });
}

Deno.test({
  name: "weights trained on the engine load into tfjs and give the same logits",
  ...gpu,
  fn: async () => {
    await tf.setBackend("cpu");
    const e = await engine();
    for (let s = 0; s < 3; s++) e.step(batch(s), 1e-2);
    const model = deserializeModel(await e.serialize());
    const x = tf.tensor2d(randomIds(B * 5, V, 9), [B, 5], "int32");
    const want = model.forward(x);
    const got = await e.forward(x);
    assertLess(relError(await got.data(), await want.data()), 1e-5);
    tf.dispose([x, want, got]);
    model.dispose();
    e.dispose();
  },
});

Deno.test({
  name:
    "a tfjs model saved with saveModel loads into the engine with the same logits",
  ...gpu,
  fn: async () => {
    await tf.setBackend("cpu");
    const model = new Transformer(parityConfig("bidirectional", "rotary"), {
      seed: 4,
    });
    const dir = await Deno.makeTempDir();
    await saveModel(model, dir);
    const e = await WebGpuTransformer.load(dir, {
      batchSize: 1,
      length: 3,
      device: testDevice(),
    });
    const x = tf.tensor2d(randomIds(3 * 9, V, 8), [3, 9], "int32");
    const want = model.forward(x);
    const got = await e.forward(x);
    assertLess(relError(await got.data(), await want.data()), 1e-5);
    // And back: the engine's own save reads into tfjs unchanged.
    await e.save(dir);
    const back = deserializeModel(
      await Deno.readFile(`${dir}/model.safetensors`),
    );
    for (const [name, v] of model.variables) {
      assertEquals(
        await back.variables.get(name)!.data(),
        await v.data(),
        name,
      );
    }
    tf.dispose([x, want, got]);
    model.dispose();
    back.dispose();
    e.dispose();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name:
    "a step is one command buffer with no GPU→CPU sync; the loss is read once",
  ...gpu,
  fn: async () => {
    const e = await engine();
    const before = e.counters;
    e.step(batch(1), 1e-3);
    e.step(batch(2), 1e-3);
    const after = e.counters;
    assertEquals(after.submits - before.submits, 2);
    assertEquals(after.syncs - before.syncs, 0);
    // 2 layers: embed 1 + 7/layer + ln_f 1 = 16 forward, head 4 + loss 1,
    // backward ln_f 2 + 18/layer + embedding 2 = 40, optimizer 3.
    assertEquals(after.lastStepDispatches, 16 + 5 + 40 + 3);
    const r = await e.readLoss();
    assertEquals(r.steps, 2);
    assert(Number.isFinite(r.loss) && r.loss > 0);
    assertEquals(e.counters.syncs - after.syncs, 1);
    assertEquals((await e.readLoss()).steps, 0);
    e.dispose();
  },
});

Deno.test({
  name: "resuming from saved weights and AdamW state is bit-identical",
  ...gpu,
  fn: async () => {
    const straight = await engine();
    for (let s = 0; s < 4; s++) straight.step(batch(s), 1e-2);
    const first = await engine();
    for (let s = 0; s < 2; s++) first.step(batch(s), 1e-2);
    const weights = await first.getWeights();
    const state = await first.optimizerState();
    first.dispose();
    const resumed = await engine(99, { weights });
    resumed.loadOptimizerState(state);
    assertEquals(resumed.stepCount, 2);
    for (let s = 2; s < 4; s++) resumed.step(batch(s), 1e-2);
    const a = await straight.getWeights(), b = await resumed.getWeights();
    for (const [name, t] of a) assertEquals(b.get(name)!.data, t.data, name);
    straight.dispose();
    resumed.dispose();
  },
});

Deno.test({
  name: "the EMA follows e ← decay·e + (1 − decay)·p",
  ...gpu,
  fn: async () => {
    const e = await engine(1, { emaDecay: 0.75 });
    const p0 = await e.getWeights();
    e.step(batch(1), 1e-2);
    const p1 = await e.getWeights();
    const ema = await e.emaWeights();
    for (const [name, t] of p1) {
      const want = t.data.map((x, i) =>
        0.75 * p0.get(name)!.data[i] + 0.25 * x
      );
      assertLess(relError(ema.get(name)!.data, want), 1e-6, name);
    }
    e.dispose();
  },
});

Deno.test({
  name: "dispose destroys every GPU buffer, forward plans included",
  ...gpu,
  fn: async () => {
    const e = await engine();
    const base = e.liveBuffers;
    for (let len = 1; len <= 6; len++) {
      await e.forwardIds(randomIds(len, V, len), 1, len);
    }
    // At most 4 forward plans of 4 buffers each are kept.
    assert(e.liveBuffers <= base + 16, `${e.liveBuffers} buffers`);
    e.dispose();
    assertEquals(e.liveBuffers, 0);
    assertThrows(() => e.step(batch(0), 1e-3), Error, "disposed");
  },
});

Deno.test({
  name: "bad inputs get one-line errors naming the value",
  ...gpu,
  fn: async () => {
    const e = await engine();
    const bad = batch(0);
    bad.inputs[3] = V;
    assertThrows(() => e.step(bad, 1e-3), RangeError, "batch.inputs[3]");
    assertThrows(
      () => e.step({ ...batch(0), weights: new Float32Array(3) }, 1e-3),
      RangeError,
      "batch.weights must hold",
    );
    assertThrows(() => e.step(batch(0), NaN), RangeError, "lr");
    await assertRejects(
      () => e.forwardIds(new Int32Array(10), 1, 10),
      RangeError,
      "T ≤ 9",
    );
    e.dispose();
    const timed = await WebGpuTransformer.create(
      validateConfig({
        ...parityConfig("bidirectional", "learned"),
        timeConditioning: true,
      }),
      { batchSize: B, length: T, device: testDevice() },
    );
    assertThrows(() => timed.step(batch(0), 1e-3), RangeError, "pass t");
    assertThrows(
      () => timed.step({ ...batch(0), t: [0.5, 2] }, 1e-3),
      RangeError,
      "t[1] must be in [0, 1], got 2",
    );
    await assertRejects(
      () => timed.forwardIds(new Int32Array(3), 1, 3),
      RangeError,
      "time-conditioned",
    );
    timed.dispose();
    await assertRejects(
      () =>
        WebGpuTransformer.create(parityConfig("causal", "learned"), {
          batchSize: 1,
          length: 10,
          device: testDevice(),
        }),
      RangeError,
      "length must be",
    );
  },
});

Deno.test({
  name: "a head split into row chunks gives the same loss and gradients",
  ...gpu,
  fn: async () => {
    const whole = await engine();
    const chunked = await engine(1, { chunkFloats: V * 5 }); // 5 + 5 + 4 rows
    whole.backward(batch(3));
    chunked.backward(batch(3));
    const a = await whole.readLoss(), b = await chunked.readLoss();
    assertLess(Math.abs(a.loss - b.loss) / a.loss, 1e-6);
    assert(
      chunked.counters.lastStepDispatches > whole.counters.lastStepDispatches,
    );
    const ga = await whole.readGradients(), gb = await chunked.readGradients();
    for (const [name, t] of ga) {
      assertLess(relError(gb.get(name)!.data, t.data), 1e-5, name);
    }
    whole.dispose();
    chunked.dispose();
  },
});

Deno.test({
  name: "engineMemory() counts the parameters the engine holds",
  ...gpu,
  fn: async () => {
    const { engineMemory } = await import("./mod.ts");
    const config = parityConfig("causal", "learned");
    const m = engineMemory(config, {
      batchSize: B,
      length: T,
      maxBindingBytes: testDevice().limits.maxStorageBufferBindingSize,
    });
    const e = await engine(1);
    assertEquals(
      m.parameters,
      (await e.getWeights()).values().reduce(
        (s, t) => s + t.data.length * 4,
        0,
      ),
    );
    assert(m.arena > 0 && m.total > m.persistent);
    e.dispose();
  },
});

Deno.test({
  name: "profileStep() times every kernel of a step and still takes the step",
  ...gpu,
  // Without the feature: a visible skip (or a failure where required).
  ignore: gpu.ignore ||
    ignoreUnless(
      "timestamp-query",
      testDevice().features.has("timestamp-query")
        ? null
        : "the adapter has no timestamp-query feature",
    ),
  fn: async () => {
    const e = await engine();
    const before = await e.getWeights();
    const { kernels, totalMs } = await e.profileStep(batch(1), 1e-2);
    assertEquals(
      kernels.reduce((n, k) => n + k.count, 0),
      e.counters.lastStepDispatches,
    );
    assert(kernels.some((k) => k.kernel.startsWith("attn_fwd")));
    assert(totalMs >= 0 && kernels.every((k) => k.ms >= 0));
    assertEquals(e.stepCount, 1);
    const after = await e.getWeights();
    assert(
      after.get("wte.weight")!.data.some((x, i) =>
        x !== before.get("wte.weight")!.data[i]
      ),
    );
    e.dispose();
    assertEquals(e.liveBuffers, 0);
  },
});

Deno.test({
  name:
    "128-wide matmul tiles give the gradients of 64-wide ones (every epilogue)",
  ...gpu,
  fn: async () => {
    const config = validateConfig({
      ...parityConfig("bidirectional", "rotary"),
      timeConditioning: true,
      dropout: 0.1,
      dTime: 8,
    });
    const make = (matmulTile: 64 | 128) =>
      WebGpuTransformer.create(config, {
        batchSize: B,
        length: T,
        seed: 3,
        device: testDevice(),
        matmulTile,
      });
    const small = await make(64), big = await make(128);
    const b = { ...batch(2), t: [0.1, 0.9] };
    small.backward(b);
    big.backward(b);
    const ls = await small.readLoss(), lb = await big.readLoss();
    assertLess(Math.abs(ls.loss - lb.loss) / ls.loss, 1e-6);
    const gs = await small.readGradients(), gb = await big.readGradients();
    for (const [name, t] of gs) {
      assertLess(relError(gb.get(name)!.data, t.data), 1e-6, name);
    }
    small.dispose();
    big.dispose();
  },
});

Deno.test({
  name:
    "evaluate() sums the loss without dropout and without touching training",
  ...gpu,
  fn: async () => {
    const config = validateConfig({
      ...parityConfig("causal", "learned"),
      dropout: 0.3,
    });
    const e = await WebGpuTransformer.create(config, {
      batchSize: B,
      length: T,
      seed: 1,
      device: testDevice(),
    });
    const plain = await engine(1); // same weights, no dropout
    e.step(batch(5), 1e-2); // a training step first: the rate must come back
    plain.setWeights(await e.getWeights());
    const before = await e.getWeights();
    e.evaluate(batch(1));
    e.evaluate(batch(2));
    const ev = await e.readEvaluation();
    assertEquals(ev.batches, 2);
    plain.backward(batch(1));
    plain.backward(batch(2));
    const want = (await plain.readLoss()).loss;
    assertLess(Math.abs(ev.loss - want) / want, 1e-6);
    assertEquals((await e.readLoss()).steps, 1); // the training sum is apart
    const after = await e.getWeights();
    for (const [name, t] of before) assertEquals(after.get(name)!.data, t.data);
    assertEquals((await e.readEvaluation()).batches, 0);
    // Dropout is back on for training: a step differs from a plain one.
    e.step(batch(3), 1e-2);
    plain.step(batch(3), 1e-2);
    assert(
      (await e.readLoss()).loss !== (await plain.readLoss()).loss,
    );
    e.dispose();
    plain.dispose();
  },
});
