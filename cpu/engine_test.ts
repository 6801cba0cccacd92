// Parity of the CPU engine with the tfjs Transformer on the `cpu` backend
// (the WebGPU engine's parity suite, webgpu/parity_test.ts, on the other
// executor of the same plan): logits, loss, every parameter gradient, and the
// parameters after 3 clipped AdamW steps, for causal and bidirectional
// attention with learned and rotary positions, ALiBi in both modes and time
// conditioning, at small odd shapes (B 2, T 7, d 24, 3 heads, V 37, 2
// layers, dMlp 40), on two threads splitting every call.
//
// Tolerances, per tensor, as max|engine − tfjs| / max|tfjs|: logits 1e-5,
// loss 1e-5 (relative), gradients 1e-4, parameters after 3 steps 1e-3 (Adam
// divides by √v: a gradient that is analytically zero, only rounding noise in
// both engines, moves by a different noise/(noise + eps)·lr in each — the
// WebGPU suite's bound and reason). Also: run-to-run determinism (equal
// bits), bit-identical resume, scoring against tfjs, dropout masks that
// depend only on the seed and step.

import { prng, type StoredTensor } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertEquals,
  assertLess,
  assertRejects,
  assertThrows,
} from "@std/assert";
import {
  type ModelConfig,
  Transformer,
  validateConfig,
} from "@d3pm/transformer";
import { AdamW, clipByGlobalNorm } from "@d3pm/train";
import { causalLmLoss } from "@d3pm/autoregressive";
import { subsCrossEntropy } from "@d3pm/diffusion";
import { type CpuTrainBatch, CpuTransformer } from "./mod.ts";

const B = 2, T = 7, V = 37, MASK = 36;
const LR = 1e-2;
// Small enough that every step is clipped (asserted below).
const CLIP = 0.1;
const opts = { sanitizeResources: false, sanitizeOps: false };

function parityConfig(
  kind: "causal" | "bidirectional",
  positions: "learned" | "rotary",
  extra: Partial<ModelConfig> = {},
): ModelConfig {
  return validateConfig({
    kind,
    vocabSize: V,
    contextLength: 9,
    nLayer: 2,
    nHead: 3,
    dModel: 24,
    dMlp: 40,
    positions,
    timeConditioning: false,
    dTime: 8,
    dropout: 0,
    ...extra,
  });
}

function randomIds(n: number, vocab: number, seed: number): Int32Array {
  const rng = prng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(rng.next() * vocab));
}

function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertEquals(a.length, b.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

interface Case {
  batch: CpuTrainBatch;
  loss: (model: Transformer) => tf.Scalar;
}

// Causal: causalLmLoss on 8-token blocks; the engine sees positions 0..6
// and predicts 1..7, each weighted 1/(B·7).
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

// Bidirectional: MDLM's weighted masked cross-entropy (SUBS: the mask logit
// excluded), row weights 1/t, subsCrossEntropy as the reference.
function maskedCase(times?: number[]): Case {
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
    batch: { inputs: xt, targets, weights, ...(times ? { t: times } : {}) },
    loss: (model) =>
      tf.tidy(() => {
        const logits = model.forward(
          tf.tensor2d(xt, [B, T], "int32"),
          times ? { t: tf.tensor1d(times) } : {},
        );
        const ce = subsCrossEntropy(logits, x0, xt, MASK);
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
  assertEquals([...got.keys()].sort(), [...want.keys()].sort());
  for (const [name, ref] of want) {
    const err = relError(got.get(name)!.data, ref);
    assertLess(err, tol, `${what} of ${name}: relative error ${err}`);
  }
}

// Weights with every adaLN and time weight drawn at random (their init is
// zero, which would hide the modulation paths).
async function weightsOf(
  config: ModelConfig,
  seed: number,
): Promise<Map<string, StoredTensor>> {
  const init = new Transformer(config, { seed });
  const rng = prng(seed + 1);
  const weights = new Map<string, StoredTensor>();
  for (const [name, v] of init.variables) {
    let data = (await v.data()) as Float32Array;
    if (name.includes("ada") || name.startsWith("time.")) {
      data = data.map(() => (rng.next() - 0.5) * 0.4);
    }
    weights.set(name, { shape: [...v.shape], data });
  }
  init.dispose();
  return weights;
}

async function parity(config: ModelConfig, c: Case): Promise<void> {
  await tf.setBackend("cpu");
  const weights = await weightsOf(config, 5);
  const model = new Transformer(config, { weights });
  const engine = await CpuTransformer.create(config, {
    batchSize: B,
    length: T,
    weights,
    threads: 2,
    excludeToken: config.kind === "causal" ? undefined : MASK,
    clipNorm: CLIP,
  });
  const opt = new AdamW(model.variables);
  try {
    const times = c.batch.t ? tf.tensor1d(Array.from(c.batch.t)) : undefined;
    const x = tf.tensor2d(c.batch.inputs, [B, T], "int32");
    const want = model.forward(x, times ? { t: times } : {});
    const got = await engine.forward(x, times ? { t: times } : {});
    const logitErr = relError(await got.data(), await want.data());
    assertLess(logitErr, 1e-5, `logits: relative error ${logitErr}`);
    tf.dispose([x, want, got, ...(times ? [times] : [])]);

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
    assertEquals(reading.steps, 3);
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
}

for (const kind of ["causal", "bidirectional"] as const) {
  for (const positions of ["learned", "rotary"] as const) {
    Deno.test({
      name:
        `CpuTransformer matches the tfjs model (${kind}, ${positions}): logits, loss, gradients, 3 AdamW steps`,
      ...opts,
      fn: () =>
        parity(
          parityConfig(kind, positions),
          kind === "causal" ? causalCase() : maskedCase(),
        ),
    });
  }
}

// The tiny preset's D3PM: ALiBi neighbours (4 heads: two neighbour heads,
// two symmetric), and the symmetric mode; slope 0.5 keeps every key's
// weight above rounding.
for (const alibiMode of ["symmetric", "neighbours"] as const) {
  Deno.test({
    name:
      `CpuTransformer matches the tfjs model with ALiBi (${alibiMode}): logits, loss, gradients, 3 AdamW steps`,
    ...opts,
    fn: () =>
      parity(
        parityConfig("bidirectional", "rotary", {
          nHead: 4,
          dModel: 32,
          alibi: 0.5,
          alibiMode,
        }),
        maskedCase(),
      ),
  });
}

Deno.test({
  name:
    "CpuTransformer matches the tfjs model with time conditioning (adaLN): logits, loss, gradients, 3 AdamW steps",
  ...opts,
  fn: () =>
    parity(
      parityConfig("bidirectional", "learned", {
        timeConditioning: true,
        dTime: 10,
      }),
      maskedCase([0.3, 0.85]),
    ),
});

// Scoring (TermScorer) against tfjs: per-row weighted CE of a list of
// batches of different shapes, more rows than one scoring pass holds.
Deno.test({
  name:
    "CpuTransformer.rowLosses matches tfjs per row (several shapes, chunked rows, an excluded id)",
  ...opts,
  fn: async () => {
    await tf.setBackend("cpu");
    const config = parityConfig("bidirectional", "rotary");
    const weights = await weightsOf(config, 3);
    const model = new Transformer(config, { weights });
    const engine = await CpuTransformer.create(config, {
      evaluationOnly: true,
      weights,
      threads: 2,
      scoreRows: 3,
    });
    try {
      const list = [[5, 7], [2, 9], [1, 4]].map(([rows, length], i) => {
        const n = rows * length;
        const rng = prng(20 + i);
        return {
          rows,
          length,
          inputs: randomIds(n, V, 30 + i),
          targets: Int32Array.from(
            randomIds(n, V - 1, 40 + i),
            (x) => rng.next() < 0.3 ? -1 : x,
          ),
          weights: Float32Array.from({ length: n }, () => rng.next()),
          excludeToken: i === 0 ? MASK : undefined,
        };
      });
      const got = await engine.rowLosses(list);
      for (const [i, terms] of list.entries()) {
        const { rows, length } = terms;
        const want = tf.tidy(() => {
          const logits = model.forward(
            tf.tensor2d(terms.inputs, [rows, length], "int32"),
          );
          let z = logits;
          if (terms.excludeToken !== undefined) {
            z = tf.add(
              logits,
              tf.mul(
                tf.oneHot([terms.excludeToken], V).reshape([1, 1, V]),
                -1e9,
              ),
            );
          }
          const lp = tf.logSoftmax(z);
          const tgt = tf.tensor2d(
            Int32Array.from(terms.targets, (x) => Math.max(x, 0)),
            [rows, length],
            "int32",
          );
          const picked = tf.sum(tf.mul(lp, tf.oneHot(tgt, V)), 2);
          const w = tf.tensor2d(
            Float32Array.from(
              terms.weights,
              (x, j) => terms.targets[j] < 0 ? 0 : x,
            ),
            [rows, length],
          );
          return tf.neg(tf.sum(tf.mul(picked, w), 1)).dataSync();
        });
        const err = relError(got[i], want);
        assertLess(err, 1e-5, `batch ${i}: relative error ${err}`);
      }
    } finally {
      engine.dispose();
      model.dispose();
    }
  },
});

async function trainRun(
  config: ModelConfig,
  steps: number,
  resumeAt?: number,
): Promise<{ weights: Map<string, StoredTensor>; losses: number[] }> {
  const c = maskedCase();
  const make = () =>
    CpuTransformer.create(config, {
      batchSize: B,
      length: T,
      seed: 4,
      threads: 2,
      excludeToken: MASK,
      emaDecay: 0.9,
    });
  let engine = await make();
  const losses: number[] = [];
  try {
    for (let s = 0; s < steps; s++) {
      if (s === resumeAt) {
        const w = await engine.getWeights(), e = await engine.emaWeights();
        const o = await engine.optimizerState();
        engine.dispose();
        engine = await make();
        engine.setWeights(w);
        engine.setEmaWeights(e);
        engine.loadOptimizerState(o);
      }
      engine.step(c.batch, 1e-2);
      losses.push((await engine.readLoss()).loss);
    }
    const weights = await engine.getWeights();
    for (const [k, v] of await engine.emaWeights()) weights.set(`ema.${k}`, v);
    return { weights, losses };
  } finally {
    engine.dispose();
  }
}

function assertSameBits(
  a: Map<string, StoredTensor>,
  b: Map<string, StoredTensor>,
): void {
  assertEquals([...a.keys()], [...b.keys()]);
  for (const [k, v] of a) {
    const x = new Uint32Array((v.data as Float32Array).buffer);
    const y = new Uint32Array((b.get(k)!.data as Float32Array).buffer);
    assert(x.every((u, i) => u === y[i]), `${k} differs`);
  }
}

// Dropout (the WebGPU engine's counter-based masks) and an EMA: two runs
// give the same bits, and a run resumed from weights, EMA and moments
// continues exactly.
Deno.test({
  name:
    "CpuTransformer is deterministic run to run and resumes bit-identically (dropout, EMA)",
  ...opts,
  fn: async () => {
    const config = parityConfig("bidirectional", "rotary", { dropout: 0.2 });
    const a = await trainRun(config, 4);
    const b = await trainRun(config, 4);
    assertEquals(a.losses, b.losses);
    assertSameBits(a.weights, b.weights);
    const r = await trainRun(config, 4, 2);
    assertEquals(r.losses, a.losses);
    assertSameBits(r.weights, a.weights);
  },
});

Deno.test({
  name: "CpuTransformer names a bad shape, batch or call in one line",
  ...opts,
  fn: async () => {
    const config = parityConfig("causal", "rotary");
    await assertRejects(
      () => CpuTransformer.create(config, { batchSize: 0, length: 4 }),
      RangeError,
      "batchSize must be a positive integer, got 0",
    );
    const e = await CpuTransformer.create(config, {
      evaluationOnly: true,
      threads: 1,
    });
    try {
      assertThrows(
        () => e.step(causalCase().batch, 1e-3),
        RangeError,
        "CpuTransformer: step needs a training engine",
      );
    } finally {
      e.dispose();
    }
  },
});
