// Parity of the WebGPU engine with the tfjs Transformer on the `cpu` backend
// (llm.c's test_gpt2, with tfjs as the reference): logits, loss, every
// parameter gradient, and the parameters after 3 AdamW steps, for causal and
// bidirectional attention with learned and rotary positions, at small odd
// shapes (B 2, T 7, d 24, 3 heads, V 37, 2 layers, dMlp 40).
//
// Tolerances, per tensor, as max|engine − tfjs| / max|tfjs|:
// logits and loss 1e-5, gradients 1e-4, parameters after 3 steps 1e-3.
// The looser last bound is Adam's: it divides by √v, so a gradient that is
// analytically zero and only rounding noise in both engines (the key biases:
// softmax ignores a shift shared by all scores) moves by noise/(noise + eps)·lr,
// a different amount in each; measured 1.1e-4 – 4e-4 here, about 1e-5 absolute.

import { prng, type StoredTensor } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { assert, assertLess } from "@std/assert";
import {
  type ModelConfig,
  Transformer,
  validateConfig,
} from "@d3pm/transformer";
import { AdamW, clipByGlobalNorm } from "@d3pm/train";
import { causalLmLoss } from "@d3pm/autoregressive";
import { subsCrossEntropy } from "@d3pm/diffusion";
import { type TrainBatch, WebGpuTransformer } from "./mod.ts";
import {
  gpu,
  parityConfig,
  randomIds,
  relError,
  testDevice,
} from "./_test_util.ts";

const B = 2, T = 7, V = 37, MASK = 36;
const LR = 1e-2;
// Small enough that every step is clipped (asserted below).
const CLIP = 0.1;

interface Case {
  batch: TrainBatch;
  /** The project's loss on the tfjs model. */
  loss: (model: Transformer) => tf.Scalar;
}

// Causal: the project's causalLmLoss on 8-token blocks; the engine sees
// positions 0..6 and predicts 1..7, each weighted 1/(B·7).
function causalCase(): Case {
  const blocks = randomIds(B * (T + 1), V, 11);
  const inputs = new Int32Array(B * T), targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      inputs[b * T + i] = blocks[b * (T + 1) + i];
      targets[b * T + i] = blocks[b * (T + 1) + i + 1];
    }
  }
  return {
    batch: {
      inputs,
      targets,
      weights: new Float32Array(B * T).fill(1 / (B * T)),
    },
    loss: (model) =>
      causalLmLoss(model, { tokens: blocks, batchSize: B, length: T + 1 }, {
        training: false,
      }),
  };
}

// Bidirectional: MDLM's weighted masked cross-entropy (SUBS: mask logit
// excluded), with row weights 1/t for fixed t and the project's
// subsCrossEntropy as the reference.
function maskedCase(): Case {
  const x0 = randomIds(B * T, V - 1, 12);
  const rng = prng(13);
  const xt = x0.map((x) => (rng.next() < 0.5 ? MASK : x));
  xt[0] = MASK;
  const rowWeight = [1 / 0.3, 1 / 0.8];
  const count = B * T;
  const targets = new Int32Array(B * T), weights = new Float32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    const masked = xt[i] === MASK;
    targets[i] = masked ? x0[i] : -1;
    weights[i] = masked ? rowWeight[Math.floor(i / T)] / count : 0;
  }
  return {
    batch: { inputs: xt, targets, weights },
    loss: (model) =>
      tf.tidy(() => {
        const logits = model.forward(tf.tensor2d(xt, [B, T], "int32"));
        const ce = subsCrossEntropy(logits, x0, xt, MASK); // [B, T]
        return ce.mul(tf.tensor2d(rowWeight, [B, 1])).sum().div(count);
      }) as tf.Scalar,
  };
}

async function tfGrads(
  model: Transformer,
  c: Case,
): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
  const { value, grads } = tf.variableGrads(
    () => c.loss(model),
    model.trainableVariables(),
  );
  const byName = new Map<string, tf.Tensor>();
  for (const [name, v] of model.variables) byName.set(name, grads[v.name]);
  const loss = (await value.data())[0];
  value.dispose();
  return { loss, grads: byName };
}

function compare(
  what: string,
  got: Map<string, StoredTensor>,
  want: Map<string, Float32Array>,
  tol: number,
): void {
  for (const [name, ref] of want) {
    const err = relError(got.get(name)!.data, ref);
    assertLess(err, tol, `${what} of ${name}: relative error ${err}`);
  }
}

for (const kind of ["causal", "bidirectional"] as const) {
  for (const positions of ["learned", "rotary"] as const) {
    Deno.test({
      name:
        `WebGpuTransformer matches the tfjs model (${kind}, ${positions}): logits, loss, gradients, 3 AdamW steps`,
      ignore: gpu.ignore,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: async () => {
        await tf.setBackend("cpu");
        const config = parityConfig(kind, positions);
        const c = kind === "causal" ? causalCase() : maskedCase();
        const model = new Transformer(config, { seed: 5 });
        const engine = await WebGpuTransformer.create(config, {
          batchSize: B,
          length: T,
          seed: 5,
          device: testDevice(),
          excludeToken: kind === "causal" ? undefined : MASK,
          clipNorm: CLIP,
        });
        const opt = new AdamW(model.variables);
        try {
          // Logits.
          const x = tf.tensor2d(c.batch.inputs, [B, T], "int32");
          const want = model.forward(x);
          const got = await engine.forward(x);
          const logitErr = relError(await got.data(), await want.data());
          assertLess(logitErr, 1e-5, `logits: relative error ${logitErr}`);
          tf.dispose([x, want, got]);

          // Loss and every gradient.
          const ref = await tfGrads(model, c);
          engine.backward(c.batch);
          const { loss } = await engine.readLoss();
          assertLess(
            Math.abs(loss - ref.loss) / ref.loss,
            1e-5,
            `loss ${loss} vs ${ref.loss}`,
          );
          const refGrads = new Map<string, Float32Array>();
          for (const [k, g] of ref.grads) {
            refGrads.set(k, (await g.data()) as Float32Array);
          }
          compare("gradient", await engine.readGradients(), refGrads, 1e-4);
          tf.dispose([...ref.grads.values()]);

          // Three AdamW steps with global-norm clipping (train()'s order).
          const losses: number[] = [];
          let norm = NaN;
          for (let s = 0; s < 3; s++) {
            const r = await tfGrads(model, c);
            losses.push(r.loss);
            const clipped = await clipByGlobalNorm(r.grads, CLIP);
            norm = clipped.norm;
            assert(norm > CLIP, `norm ${norm} does not exercise clipping`);
            opt.step(clipped.grads, LR);
            tf.dispose([...r.grads.values(), ...clipped.grads.values()]);
            engine.step(c.batch, LR);
          }
          const reading = await engine.readLoss();
          const meanLoss = losses.reduce((a, b) => a + b) / 3;
          assert(reading.steps === 3);
          assertLess(Math.abs(reading.gradNorm - norm) / norm, 1e-4);
          assertLess(Math.abs(reading.loss - meanLoss) / meanLoss, 1e-5);
          const refParams = new Map<string, Float32Array>();
          for (const [k, v] of model.variables) {
            refParams.set(k, (await v.data()) as Float32Array);
          }
          compare("parameter", await engine.getWeights(), refParams, 1e-3);
        } finally {
          engine.dispose();
          model.dispose();
          opt.dispose();
        }
      },
    });
  }
}

// Longer rows and GPT-2's head size 64: several 64-query blocks and several
// key tiles per block (tiles of 31 keys at hd 64), causal and not.
for (const kind of ["causal", "bidirectional"] as const) {
  Deno.test({
    name:
      `WebGpuTransformer matches tfjs across attention tiles (${kind}, T 70, head size 64)`,
    ignore: gpu.ignore,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () =>
      longRowParity(validateConfig({
        ...parityConfig(kind, "rotary"),
        contextLength: 70,
        nLayer: 1,
        nHead: 2,
        dModel: 128,
        dMlp: 64,
      })),
  });
}

// ALiBi on a bidirectional model, both modes, over several query blocks and
// key tiles: 4 heads, so that the neighbour mode has symmetric heads too; a
// slope of 0.5 keeps every key's weight above rounding.
for (const alibiMode of ["symmetric", "neighbours"] as const) {
  Deno.test({
    name:
      `WebGpuTransformer matches tfjs with ALiBi (${alibiMode}, T 70, 4 heads)`,
    ignore: gpu.ignore,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () =>
      longRowParity(validateConfig({
        ...parityConfig("bidirectional", "rotary"),
        contextLength: 70,
        nLayer: 1,
        nHead: 4,
        dModel: 128,
        dMlp: 64,
        alibi: 0.5,
        alibiMode,
      })),
  });
}

// One row of 70 tokens, a mean cross-entropy over every position: the
// engine's loss and gradients against tfjs's.
async function longRowParity(config: ModelConfig): Promise<void> {
  await tf.setBackend("cpu");
  const length = 70;
  const inputs = randomIds(length, V, 31);
  const targets = randomIds(length, V, 32);
  const batch: TrainBatch = {
    inputs,
    targets,
    weights: new Float32Array(length).fill(1 / length),
  };
  const model = new Transformer(config, { seed: 6 });
  const engine = await WebGpuTransformer.create(config, {
    batchSize: 1,
    length,
    seed: 6,
    device: testDevice(),
  });
  try {
    const x = tf.tensor2d(inputs, [1, length], "int32");
    const { value, grads } = tf.variableGrads(() =>
      tf.tidy(() => {
        const logits = tf.reshape(model.forward(x), [length, V]);
        const lp = tf.logSoftmax(logits);
        const picked = tf.sum(
          tf.mul(lp, tf.oneHot(tf.tensor1d(targets, "int32"), V)),
          1,
        );
        return tf.neg(tf.mean(picked)) as tf.Scalar;
      }), model.trainableVariables());
    engine.backward(batch);
    await assertLossAndGradients(engine, model, value, grads);
    x.dispose();
  } finally {
    engine.dispose();
    model.dispose();
  }
}

// The engine's loss (after its backward) within 1e-5 of tfjs's `value`, and
// every gradient within 1e-4; disposes `value` and `grads`.
async function assertLossAndGradients(
  engine: WebGpuTransformer,
  model: Transformer,
  value: tf.Scalar,
  grads: tf.NamedTensorMap,
): Promise<void> {
  const { loss } = await engine.readLoss();
  const want = (await value.data())[0];
  assertLess(Math.abs(loss - want) / want, 1e-5, `${loss} vs ${want}`);
  const refGrads = new Map<string, Float32Array>();
  for (const [k, v] of model.variables) {
    refGrads.set(k, (await grads[v.name].data()) as Float32Array);
  }
  compare("gradient", await engine.readGradients(), refGrads, 1e-4);
  tf.dispose([value, ...Object.values(grads)]);
}

// Time conditioning (adaLN): the time MLP, six modulations per block and the
// final shift/scale, with every adaLN and time weight drawn at random (their
// initialisation is zero, which would hide the modulation paths).
for (const positions of ["learned", "rotary"] as const) {
  Deno.test({
    name:
      `WebGpuTransformer matches the tfjs model with time conditioning (${positions}): logits, loss, gradients, 3 AdamW steps`,
    ignore: gpu.ignore,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      await tf.setBackend("cpu");
      const config = validateConfig({
        ...parityConfig("bidirectional", positions),
        timeConditioning: true,
        dTime: 10,
      });
      const init = new Transformer(config, { seed: 8 });
      const rng = prng(9);
      const weights = new Map<string, StoredTensor>();
      for (const [name, v] of init.variables) {
        let data = (await v.data()) as Float32Array;
        if (name.includes("ada") || name.startsWith("time.")) {
          data = data.map(() => (rng.next() - 0.5) * 0.4);
        }
        weights.set(name, { shape: [...v.shape], data });
      }
      init.dispose();
      const model = new Transformer(config, { weights });
      const engine = await WebGpuTransformer.create(config, {
        batchSize: B,
        length: T,
        weights,
        device: testDevice(),
        excludeToken: MASK,
        clipNorm: CLIP,
      });
      const opt = new AdamW(model.variables);
      const times = [0.3, 0.85];
      const c = maskedCase();
      const batch = { ...c.batch, t: times };
      const loss = () =>
        tf.tidy(() => {
          const x0 = randomIds(B * T, V - 1, 12); // maskedCase's clean ids
          const logits = model.forward(
            tf.tensor2d(batch.inputs, [B, T], "int32"),
            { t: tf.tensor1d(times) },
          );
          const ce = subsCrossEntropy(logits, x0, batch.inputs, MASK);
          return ce.mul(tf.tensor2d([1 / 0.3, 1 / 0.8], [B, 1])).sum().div(
            B * T,
          );
        }) as tf.Scalar;
      try {
        const x = tf.tensor2d(batch.inputs, [B, T], "int32");
        const tt = tf.tensor1d(times);
        const want = model.forward(x, { t: tt });
        const got = await engine.forward(x, { t: tt });
        const logitErr = relError(await got.data(), await want.data());
        assertLess(logitErr, 1e-5, `logits: relative error ${logitErr}`);
        tf.dispose([x, tt, want, got]);

        const ref = await tfGrads(model, { batch, loss: () => loss() });
        engine.backward(batch);
        const reading = await engine.readLoss();
        assertLess(
          Math.abs(reading.loss - ref.loss) / ref.loss,
          1e-5,
          `loss ${reading.loss} vs ${ref.loss}`,
        );
        const refGrads = new Map<string, Float32Array>();
        for (const [k, g] of ref.grads) {
          refGrads.set(k, (await g.data()) as Float32Array);
        }
        compare("gradient", await engine.readGradients(), refGrads, 1e-4);
        tf.dispose([...ref.grads.values()]);

        for (let s = 0; s < 3; s++) {
          const r = await tfGrads(model, { batch, loss: () => loss() });
          const clipped = await clipByGlobalNorm(r.grads, CLIP);
          opt.step(clipped.grads, LR);
          tf.dispose([...r.grads.values(), ...clipped.grads.values()]);
          engine.step(batch, LR);
        }
        const refParams = new Map<string, Float32Array>();
        for (const [k, v] of model.variables) {
          refParams.set(k, (await v.data()) as Float32Array);
        }
        compare("parameter", await engine.getWeights(), refParams, 1e-3);
      } finally {
        engine.dispose();
        model.dispose();
        opt.dispose();
      }
    },
  });
}

// More rows than one dispatch dimension holds (65,535 workgroups): the
// per-row kernels (LayerNorm, cross-entropy) run on a 2-D grid.
Deno.test({
  name: "WebGpuTransformer matches tfjs with more than 65,535 rows (2-D grids)",
  ignore: gpu.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await tf.setBackend("cpu");
    const config = validateConfig({
      ...parityConfig("causal", "learned"),
      vocabSize: 16,
      contextLength: 64,
      nLayer: 1,
      nHead: 2,
      dModel: 8,
      dMlp: 16,
    });
    const batchSize = 1040, length = 64, n = batchSize * length; // 66,560
    const inputs = randomIds(n, 16, 41), targets = randomIds(n, 16, 42);
    const model = new Transformer(config, { seed: 7 });
    const engine = await WebGpuTransformer.create(config, {
      batchSize,
      length,
      seed: 7,
      device: testDevice(),
    });
    try {
      const x = tf.tensor2d(inputs, [batchSize, length], "int32");
      const { value, grads } = tf.variableGrads(() =>
        tf.tidy(() => {
          const lp = tf.logSoftmax(tf.reshape(model.forward(x), [n, 16]));
          const picked = tf.sum(
            tf.mul(lp, tf.oneHot(tf.tensor1d(targets, "int32"), 16)),
            1,
          );
          return tf.neg(tf.mean(picked)) as tf.Scalar;
        }), model.trainableVariables());
      engine.backward({
        inputs,
        targets,
        weights: new Float32Array(n).fill(1 / n),
      });
      await assertLossAndGradients(engine, model, value, grads);
      x.dispose();
    } finally {
      engine.dispose();
      model.dispose();
    }
  },
});
