// The engine's parity suite, written once for every executor of the plan
// (the WebGPU engine, webgpu/*_test.ts; the CPU engine, cpu/*_test.ts),
// with the tfjs Transformer on its `cpu` backend as the reference (llm.c's
// test_gpt2): logits, loss, every parameter gradient and the parameters
// after 3 clipped AdamW steps; per-row scoring; run-to-run determinism and
// bit-identical resume; greedy generation with the KV cache (with and
// without a prompt); the samplers' laws — the first AR draw at temperature
// 1, with top-k and top-p, and after a prompt (χ²), and masked diffusion
// against the exact float64 law of the sampler (core/_test_stats.ts). An
// executor hands in how to build its engine and the checks only it has
// (one sync, buffers left). Private (test code).
//
// Tolerances, per tensor, as max|engine − tfjs| / max|tfjs|: logits 1e-5,
// loss 1e-5 (relative), gradients 1e-4, parameters after 3 steps 1e-3, row
// losses 1e-5. The looser parameter bound is Adam's: it divides by √v, so a
// gradient that is analytically zero and only rounding noise in both engines
// (the key biases: softmax ignores a shift shared by all scores) moves by
// noise/(noise + eps)·lr, a different amount in each; measured 1.1e-4 – 4e-4
// on WebGPU, about 1e-5 absolute.
//
// Power. Each law test names the near misses it must reject (temperature 0.9
// instead of 1, top-p or top-k off, reveal probabilities halved, the reveal
// schedule or the model's time one step late, the prompt shifted), asserts
// its power against each (≥ 0.99 at its own sample size and level), and
// checks that rows drawn in float64 from each near miss are rejected.

import { prng, type StoredTensor, tokenProbabilities } from "@d3pm/core";
import type {
  CausalGenerationOptions,
  CausalGenerator,
  Generation,
  MaskedGenerator,
  TermScorer,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLess, assertRejects } from "@std/assert";
import { initBackend } from "@d3pm/backend";
import {
  type ModelConfig,
  Transformer,
  validateConfig,
} from "@d3pm/transformer";
import {
  AdamW,
  clipByGlobalNorm,
  loadCheckpoint,
  type StepEngine,
  train,
  trainEngine,
} from "@d3pm/train";
import { causalLmLoss, generate } from "@d3pm/autoregressive";
import { maskedDiffusion, subsCrossEntropy } from "@d3pm/diffusion";
import type { TrainBatch } from "./types.ts";
import {
  firstDrawFit,
  greedyAfter,
  parityConfig,
  perturbedModel,
  randomIds,
  relError,
  softmaxAfter,
} from "./_test_models.ts";
import {
  checkRows,
  chiSquare,
  chiSquarePower,
  drawFrom,
  histogram,
  type LawOptions,
  lawPower,
  type LawStates,
  lawStates,
  type NearMiss,
  rowsOf,
  samplerLaw,
} from "../core/_test_stats.ts";

/**
 * What the suite calls on an engine: the contracts both executors implement
 * (training steps, scoring, both generators) and the methods the parity
 * checks read.
 */
export interface ParityEngine
  extends StepEngine, TermScorer, CausalGenerator, MaskedGenerator {
  /** The model's configuration. */
  readonly config: ModelConfig;
  /** Whether the model reads t. */
  readonly timeConditioned: boolean;
  /** AdamW's step count. */
  readonly stepCount: number;
  /** Logits of the given rows. */
  forward(
    tokens: tf.Tensor2D,
    options?: { t?: tf.Tensor1D },
  ): Promise<tf.Tensor3D>;
  /** Forward and backward of one batch: gradients and loss, no step. */
  backward(batch: TrainBatch): void;
  /** One training step on a batch of the engine's shape. */
  step(batch: TrainBatch, lr: number): void;
  /** The last backward's gradients by parameter name. */
  readGradients(): Promise<Map<string, StoredTensor>>;
  /** The EMA. */
  emaWeights(): Promise<Map<string, StoredTensor>>;
  /** Replace the EMA. */
  setEmaWeights(weights: ReadonlyMap<string, StoredTensor>): void;
  /** Free everything. */
  dispose(): void;
}

/** The options of the engines' `create` that the suite uses. */
export interface ParityOptions {
  batchSize?: number;
  length?: number;
  evaluationOnly?: boolean;
  seed?: number;
  weights?: ReadonlyMap<string, StoredTensor>;
  clipNorm?: number;
  emaDecay?: number;
  excludeToken?: number;
  /**
   * Rows of one scoring or decoding pass (the CPU engine's `scoreRows`);
   * only passed where the executor lists it in {@linkcode Executor.rowChunks}.
   */
  scoreRows?: number;
}

/** One executor of the plan, as the suite sees it. */
export interface Executor {
  /** The engine's class, the first word of every test name. */
  name: string;
  /**
   * `Deno.test` options: `ignore` when the executor is missing here (then
   * skipped with the reason, or failed where it is required: `CI=true`).
   */
  test: { ignore: boolean; sanitizeResources: boolean; sanitizeOps: boolean };
  /** Build an engine. */
  create(config: ModelConfig, options: ParityOptions): Promise<ParityEngine>;
  /**
   * `scoreRows` values to run scoring and generation under, one that makes
   * every call run in chunks of one row included (`[undefined]`: the
   * executor has no such option).
   */
  rowChunks: readonly (number | undefined)[];
  /** GPU→CPU syncs so far, where the executor counts them (each generation: one). */
  syncs?(engine: ParityEngine): number;
  /** Buffers the engine holds, where it counts them (a generation leaves none). */
  liveBuffers?(engine: ParityEngine): number;
}

const B = 2, T = 7, V = 37, MASK = 36, PAD = 35;
const LR = 1e-2;
// Small enough that every step is clipped (asserted below).
const CLIP = 0.1;

/** A test of the suite on `ex`, tfjs on its reference `cpu` backend. */
function testOf(
  ex: Executor,
  name: string,
  fn: () => Promise<void>,
): void {
  Deno.test({
    name: `${ex.name}${name}`,
    ...ex.test,
    fn: async () => {
      await fn();
    },
  });
}

// ---------------------------------------------------------------------------
// Training: logits, loss, every gradient, 3 AdamW steps.

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

// Bidirectional: MDLM's weighted masked cross-entropy (SUBS: the mask logit
// excluded), row weights 1/t for fixed t, subsCrossEntropy as the reference;
// `times` feeds a time-conditioned model.
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
  assertEquals([...got.keys()].sort(), [...want.keys()].sort());
  for (const [name, ref] of want) {
    const err = relError(got.get(name)!.data, ref);
    assertLess(err, tol, `${what} of ${name}: relative error ${err}`);
  }
}

/**
 * The tfjs model's weights of `seed`, with every adaLN and time weight drawn
 * at random (their initialisation is zero, which would hide the modulation
 * paths); other configs get the init unchanged.
 */
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

async function parity(
  ex: Executor,
  config: ModelConfig,
  c: Case,
  seed: number,
): Promise<void> {
  const weights = await weightsOf(config, seed);
  const model = new Transformer(config, { weights });
  const engine = await ex.create(config, {
    batchSize: B,
    length: T,
    weights,
    excludeToken: config.kind === "causal" ? undefined : MASK,
    clipNorm: CLIP,
  });
  const opt = new AdamW(model.variables);
  try {
    // Logits.
    const times = c.batch.t ? tf.tensor1d(Array.from(c.batch.t)) : undefined;
    const x = tf.tensor2d(c.batch.inputs, [B, T], "int32");
    const want = model.forward(x, times ? { t: times } : {});
    const got = await engine.forward(x, times ? { t: times } : {});
    const logitErr = relError(await got.data(), await want.data());
    assertLess(logitErr, 1e-5, `logits: relative error ${logitErr}`);
    tf.dispose([x, want, got, ...(times ? [times] : [])]);

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

/**
 * The engine's loss (after its backward) within 1e-5 of tfjs's `value`, and
 * every gradient within 1e-4; disposes `value` and `grads`.
 */
export async function assertLossAndGradients(
  engine: ParityEngine,
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

// One row of 70 tokens, a mean cross-entropy over every position: the
// engine's loss and gradients against tfjs's.
async function longRowParity(
  ex: Executor,
  config: ModelConfig,
): Promise<void> {
  const length = 70;
  const inputs = randomIds(length, V, 31);
  const targets = randomIds(length, V, 32);
  const batch: TrainBatch = {
    inputs,
    targets,
    weights: new Float32Array(length).fill(1 / length),
  };
  const model = new Transformer(config, { seed: 6 });
  const engine = await ex.create(config, { batchSize: 1, length, seed: 6 });
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

/**
 * Logits, loss, every gradient and 3 clipped AdamW steps against tfjs:
 * causal and bidirectional attention with learned and rotary positions,
 * ALiBi in both modes, time conditioning (adaLN), and rows of 70 tokens
 * over several query blocks and key tiles.
 */
export function trainingParity(ex: Executor): void {
  for (const kind of ["causal", "bidirectional"] as const) {
    for (const positions of ["learned", "rotary"] as const) {
      testOf(
        ex,
        ` matches the tfjs model (${kind}, ${positions}): logits, loss, gradients, 3 AdamW steps`,
        () =>
          parity(
            ex,
            parityConfig(kind, positions),
            kind === "causal" ? causalCase() : maskedCase(),
            5,
          ),
      );
    }
  }

  // The tiny preset's D3PM: ALiBi neighbours (4 heads: two neighbour heads,
  // two symmetric), and the symmetric mode; slope 0.5 keeps every key's
  // weight above rounding.
  for (const alibiMode of ["symmetric", "neighbours"] as const) {
    testOf(
      ex,
      ` matches the tfjs model with ALiBi (${alibiMode}): logits, loss, gradients, 3 AdamW steps`,
      () =>
        parity(
          ex,
          parityConfig("bidirectional", "rotary", {
            nHead: 4,
            dModel: 32,
            alibi: 0.5,
            alibiMode,
          }),
          maskedCase(),
          5,
        ),
    );
  }

  // Time conditioning (adaLN): the time MLP, six modulations per block and
  // the final shift/scale, every adaLN and time weight drawn at random.
  for (const positions of ["learned", "rotary"] as const) {
    testOf(
      ex,
      ` matches the tfjs model with time conditioning (${positions}): logits, loss, gradients, 3 AdamW steps`,
      () =>
        parity(
          ex,
          parityConfig("bidirectional", positions, {
            timeConditioning: true,
            dTime: 10,
          }),
          maskedCase([0.3, 0.85]),
          8,
        ),
    );
  }

  // Longer rows and GPT-2's head size 64: several 64-query blocks and
  // several key tiles per block (tiles of 31 keys at hd 64), causal and not.
  for (const kind of ["causal", "bidirectional"] as const) {
    testOf(
      ex,
      ` matches tfjs across attention tiles (${kind}, T 70, head size 64)`,
      () =>
        longRowParity(
          ex,
          parityConfig(kind, "rotary", {
            contextLength: 70,
            nLayer: 1,
            nHead: 2,
            dModel: 128,
            dMlp: 64,
          }),
        ),
    );
  }

  // ALiBi on a bidirectional model, both modes, over several query blocks
  // and key tiles: 4 heads, so that the neighbour mode has symmetric heads
  // too; a slope of 0.5 keeps every key's weight above rounding.
  for (const alibiMode of ["symmetric", "neighbours"] as const) {
    testOf(
      ex,
      ` matches tfjs with ALiBi (${alibiMode}, T 70, 4 heads)`,
      () =>
        longRowParity(
          ex,
          parityConfig("bidirectional", "rotary", {
            contextLength: 70,
            nLayer: 1,
            nHead: 4,
            dModel: 128,
            dMlp: 64,
            alibi: 0.5,
            alibiMode,
          }),
        ),
    );
  }
}

// ---------------------------------------------------------------------------
// Scoring.

/**
 * `rowLosses` against tfjs per row: a list of batches of different shapes,
 * more rows than one scoring pass holds where the executor chunks rows, an
 * excluded id, ignored targets and arbitrary weights.
 */
export function scoringParity(ex: Executor): void {
  testOf(
    ex,
    ".rowLosses matches tfjs per row (several shapes, chunked rows, an excluded id)",
    async () => {
      const config = parityConfig("bidirectional", "rotary");
      const weights = await weightsOf(config, 3);
      const model = new Transformer(config, { weights });
      const engine = await ex.create(config, {
        evaluationOnly: true,
        weights,
        ...scoreRowsOption(ex, 3),
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
  );
}

/** `{ scoreRows }` where the executor has the option, else nothing. */
function scoreRowsOption(ex: Executor, rows: number): { scoreRows?: number } {
  return ex.rowChunks.some((r) => r !== undefined) ? { scoreRows: rows } : {};
}

// ---------------------------------------------------------------------------
// Determinism and resume.

async function trainRun(
  ex: Executor,
  config: ModelConfig,
  steps: number,
  resumeAt?: number,
): Promise<{ weights: Map<string, StoredTensor>; losses: number[] }> {
  const c = maskedCase();
  const options: ParityOptions = {
    batchSize: B,
    length: T,
    seed: 4,
    excludeToken: MASK,
    emaDecay: 0.9,
  };
  let engine = await ex.create(config, options);
  const losses: number[] = [];
  try {
    for (let s = 0; s < steps; s++) {
      if (s === resumeAt) {
        const w = await engine.getWeights(), e = await engine.emaWeights();
        const o = await engine.optimizerState();
        engine.dispose();
        engine = await ex.create(config, options);
        engine.setWeights(w);
        engine.setEmaWeights(e);
        engine.loadOptimizerState(o);
        assertEquals(engine.stepCount, resumeAt);
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

/**
 * With dropout (the counter-based masks) and an EMA: two runs give the same
 * bits, and a run resumed from weights, EMA and AdamW moments continues
 * exactly.
 */
export function resumeParity(ex: Executor): void {
  testOf(
    ex,
    " is deterministic run to run and resumes bit-identically (dropout, EMA)",
    async () => {
      const config = parityConfig("bidirectional", "rotary", { dropout: 0.2 });
      const a = await trainRun(ex, config, 4);
      const b = await trainRun(ex, config, 4);
      assertEquals(a.losses, b.losses);
      assertSameBits(a.weights, b.weights);
      const r = await trainRun(ex, config, 4, 2);
      assertEquals(r.losses, a.losses);
      assertSameBits(r.weights, a.weights);
    },
  );
}

// ---------------------------------------------------------------------------
// Generation.

/**
 * A tfjs model and an engine on the same weights, far from the init; `edit`
 * scales or zeroes parameters by name (1 keeps one). An evaluation engine,
 * or with `training` one of the training shape B 2, T 7 (generation runs in
 * the same inference region beside the training state).
 */
async function pair(
  ex: Executor,
  config: ModelConfig,
  seed: number,
  edit: (name: string) => number = () => 1,
  scoreRows?: number,
  training = false,
): Promise<{ model: Transformer; engine: ParityEngine }> {
  const { model, weights } = await perturbedModel(config, seed);
  const changed = new Map<string, tf.Tensor>();
  const edited = new Map<string, StoredTensor>();
  for (const [name, v] of model.variables) {
    const f = edit(name);
    const w = weights.get(name)!;
    const data = f === 1 ? w.data : w.data.map((x) => x * f);
    edited.set(name, { shape: w.shape, data });
    changed.set(name, tf.tensor(data, v.shape));
  }
  model.setWeights(changed);
  tf.dispose([...changed.values()]);
  const engine = await ex.create(config, {
    ...(training ? { batchSize: B, length: T } : { evaluationOnly: true }),
    weights: edited,
    ...(scoreRows !== undefined ? { scoreRows } : {}),
  });
  return { model, engine };
}

// A context-dependent model with logits doubled (ln_f scaled): sharper
// distributions, so that temperature 0.9 is told apart (the tests assert
// the power).
const SHARP = (name: string) => (name.startsWith("ln_f.") ? 2 : 1);

/** The row shapes each engine has generated (its decode plans). */
const shapesSeen = new WeakMap<ParityEngine, Set<string>>();

/**
 * One sync per generation, where the executor counts them; and where it
 * counts buffers, a shape it has generated before leaves none behind (the
 * first call of a shape builds and keeps its decode plan).
 */
async function generation(
  ex: Executor,
  engine: ParityEngine,
  options: CausalGenerationOptions,
): Promise<Generation> {
  const seen = shapesSeen.get(engine) ?? new Set<string>();
  shapesSeen.set(engine, seen);
  const shape = `${options.batchSize}x${options.length}`;
  const live = seen.has(shape) ? ex.liveBuffers?.(engine) : undefined;
  seen.add(shape);
  const syncs = ex.syncs?.(engine);
  const got = await engine.generateCausal(options);
  if (syncs !== undefined) {
    assertEquals(got.syncs, 1);
    assertEquals(ex.syncs!(engine) - syncs, 1);
  }
  if (live !== undefined) {
    assertEquals(ex.liveBuffers!(engine), live, "buffers left behind");
  }
  return got;
}

/**
 * The float64 law of a draw with top-k, then top-p on the renormalised
 * rest (the engines' order), from probabilities with temperature and
 * suppressed ids applied; ties broken by the smaller id.
 */
function truncated(p: Float64Array, topK: number, topP: number): Float64Array {
  const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b);
  const k = topK > 0 ? Math.min(topK, p.length) : p.length;
  let z = 0;
  for (let i = 0; i < k; i++) z += p[order[i]];
  const out = new Float64Array(p.length);
  let acc = 0;
  for (let i = 0; i < k && acc < topP; i++) {
    out[order[i]] = p[order[i]] / z;
    acc += out[order[i]];
  }
  for (let i = 0; i < out.length; i++) out[i] /= acc;
  return out;
}

/**
 * `rows` rows `3, drawn` on the engine of a causal model (learned positions,
 * seed 2, `edit` as in `pair`) with `draw` and PAD suppressed: the engine
 * and model, the generation's options and rows, the drawn ids' histogram,
 * and the tfjs model's logits after token 3.
 */
async function firstDraws(
  ex: Executor,
  edit: (name: string) => number,
  rows: number,
  draw: { topK?: number; topP?: number; seed: number },
) {
  const { model, engine } = await pair(
    ex,
    parityConfig("causal", "learned"),
    2,
    edit,
  );
  const options: CausalGenerationOptions = {
    batchSize: rows,
    length: 2,
    start: 3,
    temperature: 1,
    suppress: [PAD],
    ...draw,
  };
  const got = await generation(ex, engine, options);
  const logits = tf.tidy(() =>
    model.forward(tf.tensor2d([3], [1, 1], "int32")).dataSync()
  );
  const h = new Array(V).fill(0);
  for (let r = 0; r < rows; r++) h[got.tokens[r * 2 + 1]]++;
  return { model, engine, options, got, h, logits };
}

/**
 * The one-sample χ² at level 1e-5 against `p` tells each near miss apart:
 * its power at `rows` draws is ≥ 0.99, and float64 draws from it are
 * rejected.
 */
function assertNearMisses(
  p: Float64Array,
  misses: [string, Float64Array][],
  rows: number,
): void {
  const rng = prng(10);
  for (const [label, q] of misses) {
    const power = chiSquarePower(p, q, rows, 1e-5);
    assert(power >= 0.99, `power ${power} against ${label}`);
    const wrong = chiSquare(
      histogram(drawFrom(q, rows, () => rng.next()), V),
      p,
    );
    assert(
      wrong.impossible > 0 || wrong.p < 1e-5,
      `float64 draws with ${label} pass`,
    );
  }
}

/** `fn` on an evaluation engine of the causal model of `seed` (its init). */
async function withEvaluationEngine(
  ex: Executor,
  positions: "learned" | "rotary",
  seed: number,
  fn: (engine: ParityEngine) => Promise<void>,
): Promise<void> {
  const config = parityConfig("causal", positions);
  const engine = await ex.create(config, { evaluationOnly: true, seed });
  try {
    await fn(engine);
  } finally {
    engine.dispose();
  }
}

/**
 * AR generation with the KV cache: greedy rows equal tfjs's (in one chunk
 * of rows or several; with a suppressed id; after a prompt, kept verbatim;
 * through `@d3pm/autoregressive`'s `generate`), and the first draw at
 * temperature 1 follows the model's softmax — plain, with top-k and top-p
 * (a sampler that ignored either would be rejected), and after a prompt.
 */
export function causalGenerationParity(ex: Executor): void {
  for (const positions of ["learned", "rotary"] as const) {
    testOf(
      ex,
      `.generateCausal (${positions}): greedy rows equal tfjs's, in one chunk of rows or several`,
      async () => {
        const config = parityConfig("causal", positions);
        // scoreRows 1 (CPU): an inference region of one 9-position row, so
        // that a decode plan of 5 rows does not fit and the rows run in
        // chunks. A training engine with learned positions, an evaluation
        // one with rotary positions.
        for (const scoreRows of ex.rowChunks) {
          const { model, engine } = await pair(
            ex,
            config,
            11,
            () => 1,
            scoreRows,
            positions === "learned",
          );
          // The greedy rows vary, and excluding the first pick changes them.
          const plain = greedyAfter(model, 5, 9, 4, []);
          assert(new Set(plain).size >= 2, `${plain}`);
          for (const exclude of [-1, plain[1]]) {
            const want = greedyAfter(model, 5, 9, 4, [], exclude);
            const got = await generation(ex, engine, {
              batchSize: 5,
              length: 9,
              start: 4,
              temperature: 0,
              suppress: exclude < 0 ? [] : [exclude],
              seed: 0,
            });
            assertEquals(Array.from(got.tokens), Array.from(want));
            if (scoreRows === 1) {
              assert(got.forwardPasses > 8, `${got.forwardPasses}`);
            } else assertEquals(got.forwardPasses, 8);
          }
          model.dispose();
          engine.dispose();
        }
      },
    );
  }

  for (const positions of ["learned", "rotary"] as const) {
    testOf(
      ex,
      `.generateCausal (${positions}) with a prefix: kept verbatim, greedy continuation equals tfjs's`,
      async () => {
        const config = parityConfig("causal", positions);
        const { model, weights } = await perturbedModel(config, 11);
        const b = 3, l = 9, start = 4;
        // A prompt off the greedy path (each id differs from what greedy
        // would draw there), so forcing it matters at every position.
        const free = greedyAfter(model, 1, l, start, []);
        const prefix = [
          (free[1] + 5) % 37,
          (free[2] + 9) % 37,
          (free[3] + 13) % 37,
        ];
        const want = greedyAfter(model, b, l, start, prefix);
        const greedyAfterFirst = greedyAfter(
          model,
          1,
          l,
          start,
          prefix.slice(0, 1),
        );
        assert(
          want[2] !== greedyAfterFirst[2] || want[3] !== greedyAfterFirst[3],
          "the prompt must leave the greedy path",
        );
        for (const scoreRows of ex.rowChunks) {
          const engine = await ex.create(config, {
            evaluationOnly: true,
            weights,
            ...(scoreRows !== undefined ? { scoreRows } : {}),
          });
          try {
            const got = await generation(ex, engine, {
              batchSize: b,
              length: l,
              start,
              prefix,
              temperature: 0,
              seed: 0,
            });
            assertEquals(Array.from(got.tokens), Array.from(want));
            // Drawn rows keep the prompt verbatim too (the prompt's copy
            // and the draws' uniforms are released).
            const drawn = await generation(ex, engine, {
              batchSize: b,
              length: l,
              start,
              prefix,
              temperature: 1,
              seed: 3,
            });
            for (let r = 0; r < b; r++) {
              assertEquals(
                Array.from(drawn.tokens.subarray(r * l, r * l + 4)),
                [start, ...prefix],
              );
            }
            const later = drawn.tokens.filter((_, k) => k % l >= 4);
            assert(later.every((x) => x >= 0 && x < 37), `${later}`);
            // Through the autoregressive generate (the sample tool's path).
            const viaGenerate = await generate(engine, {
              batchSize: b,
              length: l,
              start,
              prefix,
              temperature: 0,
              prng: prng(0),
            });
            assertEquals(Array.from(viaGenerate), Array.from(want));
          } finally {
            engine.dispose();
          }
        }
        model.dispose();
      },
    );
  }

  testOf(
    ex,
    ".generateCausal: a prefix filling the row, and bad prefixes refused",
    () =>
      withEvaluationEngine(ex, "learned", 0, async (engine) => {
        const full = await engine.generateCausal({
          batchSize: 2,
          length: 4,
          start: 1,
          prefix: [5, 6, 7],
          temperature: 1,
          seed: 0,
        });
        assertEquals(Array.from(full.tokens), [1, 5, 6, 7, 1, 5, 6, 7]);
        for (
          const [prefix, message] of [
            [[5, 6, 7, 8], "at most length − 1 = 3"],
            [[37], "prefix ids must be token ids in [0, 37)"],
          ] as const
        ) {
          await assertRejects(
            () =>
              engine.generateCausal({
                batchSize: 1,
                length: 4,
                start: 1,
                prefix,
                seed: 0,
              }),
            RangeError,
            message,
          );
        }
      }),
  );

  testOf(
    ex,
    ": generate on a device generator hands the prefix to the engine and calls onStep once with the finished rows",
    () =>
      withEvaluationEngine(ex, "rotary", 2, async (engine) => {
        const steps: { step: number; steps: number; tokens: number[] }[] = [];
        const out = await generate(engine, {
          batchSize: 2,
          length: 7,
          start: 3,
          prefix: [8, 9],
          prng: prng(1),
          onStep: (s) => {
            steps.push({
              step: s.step,
              steps: s.steps,
              tokens: Array.from(s.tokens),
            });
          },
        });
        assertEquals(steps.length, 1);
        assertEquals([steps[0].step, steps[0].steps], [4, 4]);
        assertEquals(steps[0].tokens, Array.from(out));
        assertEquals(Array.from(out.subarray(7, 10)), [3, 8, 9]);
      }),
  );

  testOf(
    ex,
    ".generateCausal at temperature 1: tokens follow the model's softmax, not temperature 0.9",
    async () => {
      // Sharpened: temperature 0.9 is told apart at 4000 rows.
      const rows = 4000;
      const { model, engine, options, got, h, logits } = await firstDraws(
        ex,
        SHARP,
        rows,
        { seed: 9 },
      );
      const p = tokenProbabilities(logits, { suppress: [PAD] });
      assertEquals(h[PAD], 0);
      const fit = chiSquare(h, p);
      assert(fit.p >= 1e-5, `χ² ${fit.chi2} on ${fit.df} df: p ${fit.p}`);
      assertNearMisses(p, [[
        "temperature 0.9",
        tokenProbabilities(logits, { suppress: [PAD], temperature: 0.9 }),
      ]], rows);
      // The same seed gives the same rows.
      const again = await generation(ex, engine, options);
      assertEquals(again.tokens, got.tokens);
      model.dispose();
      engine.dispose();
    },
  );

  testOf(
    ex,
    ".generateCausal with top-k and top-p: tokens follow the truncated softmax, and a sampler ignoring either would not",
    async () => {
      // The unsharpened model: a flat enough softmax after token 3 that
      // top-k 12 and top-p 0.8 each cut ids the other keeps (the
      // temperature's near miss is the plain test's, on a sharper model).
      const rows = 4000, topK = 12, topP = 0.8;
      const { model, engine, h, logits } = await firstDraws(
        ex,
        () => 1,
        rows,
        { topK, topP, seed: 7 },
      );
      const full = tokenProbabilities(logits, { suppress: [PAD] });
      const p = truncated(full, topK, topP);
      // The nucleus boundary far from rounding: float32 engines may keep one
      // id more or fewer than float64 where the mass sits within ~1e-6 of
      // top-p.
      const kept = [...p.keys()].filter((i) => p[i] > 0);
      const sorted = [...truncated(full, topK, 1)].sort((a, b) => b - a);
      let mass = 0;
      for (const q of sorted.slice(0, kept.length - 1)) mass += q;
      assert(
        topP - mass > 1e-3 && mass + sorted[kept.length - 1] - topP > 1e-3,
        `the nucleus edge ${mass} is too close to top-p`,
      );
      const fit = chiSquare(h, p);
      assertEquals(fit.impossible, 0, "ids outside the top-k/top-p set drawn");
      assert(fit.p >= 1e-5, `χ² ${fit.chi2} on ${fit.df} df: p ${fit.p}`);
      assertNearMisses(p, [
        ["top-p off", truncated(full, topK, 1)],
        ["top-k off", truncated(full, 0, topP)],
      ], rows);
      model.dispose();
      engine.dispose();
    },
  );

  testOf(
    ex,
    ".generateCausal at temperature 1 after a prefix: the first drawn token follows tfjs's softmax given the prompt",
    async () => {
      const config = parityConfig("causal", "learned");
      const { model, weights } = await perturbedModel(config, 2);
      const engine = await ex.create(config, { evaluationOnly: true, weights });
      try {
        const rows = 4000, start = 3, prefix = [7, 20];
        const got = await generation(ex, engine, {
          batchSize: rows,
          length: 4,
          start,
          prefix,
          temperature: 1,
          seed: 9,
        });
        for (let r = 0; r < rows; r++) {
          assertEquals([got.tokens[r * 4 + 1], got.tokens[r * 4 + 2]], prefix);
        }
        const fit = firstDrawFit(model, got.tokens, rows, [start, ...prefix]);
        assert(fit.ok.p >= 1e-5, `χ² ${fit.ok.chi2} on ${fit.ok.df} df`);
        // Near misses the test tells apart: the prompt shifted by one, the
        // prompt's ids reversed.
        for (const wrong of [[start, 7], [start, 20, 7]]) {
          const power = chiSquarePower(
            fit.probs,
            softmaxAfter(model, wrong),
            rows,
            1e-5,
          );
          assert(power >= 0.99, `power ${power} against ${wrong}`);
        }
      } finally {
        engine.dispose();
        model.dispose();
      }
    },
  );
}

/**
 * A generation's bad options, on either generator and on the wrong kind of
 * model, each refused with the one-line error naming the value.
 */
export function generationErrors(ex: Executor): void {
  testOf(ex, " generation: bad options give one-line errors", async () => {
    const causal = await ex.create(parityConfig("causal", "learned"), {
      batchSize: 1,
      length: 4,
      seed: 0,
    });
    const bidi = await ex.create(parityConfig("bidirectional", "learned"), {
      evaluationOnly: true,
      seed: 1,
    });
    try {
      const ar = { batchSize: 1, length: 4, start: 0, temperature: 0, seed: 0 };
      const masked = {
        batchSize: 1,
        length: 3,
        maskId: MASK,
        steps: [{ t: 1, reveal: 1 }],
        strategy: "ancestral" as const,
        cache: false,
        seed: 0,
      };
      const cases: [() => Promise<unknown>, string][] = [
        [
          () => causal.generateCausal({ ...ar, length: 10 }),
          "length must be an integer in [2, 9], got 10",
        ],
        [
          () => causal.generateCausal({ ...ar, start: 37 }),
          "start must be a token id in [0, 37), got 37",
        ],
        [
          () => causal.generateMasked(masked),
          "generateMasked needs a bidirectional model",
        ],
        [() => bidi.generateCausal(ar), "generateCausal needs a causal model"],
        [
          () =>
            bidi.generateMasked({ ...masked, steps: [{ t: 2, reveal: 1 }] }),
          "steps[0] needs t and reveal in [0, 1], got t 2, reveal 1",
        ],
        [
          () => bidi.generateMasked({ ...masked, prompt: Int32Array.of(1, 2) }),
          "prompt must hold B·L = 3 ids, got 2",
        ],
        [
          () => bidi.generateMasked({ ...masked, temperature: 0 }),
          "temperature must be > 0 for masked sampling",
        ],
      ];
      for (const [call, message] of cases) {
        await assertRejects(call, RangeError, message);
      }
    } finally {
      causal.dispose();
      bidi.dispose();
    }
  });
}

// ---------------------------------------------------------------------------
// Masked-diffusion sampling against the exact float64 law of the sampler
// (dynamic programming over the partially revealed rows of length 3, with
// the tfjs model's logits and core's float64 draw probabilities). Final rows
// say little about when a token was revealed, so the reveal schedule is
// tested on a "time-stamp" model: blocks switched off (no context) and a
// strong time modulation, so that the token drawn tells the step it was
// drawn at.

const REPORT = Deno.env.get("SAMPLING_REPORT") === "1";
/** The power every law test must have against each of its near misses. */
const POWER = 0.99;
const L = 3;

/**
 * Rows each masked law test draws (its power against every near miss it
 * names is asserted at that count, ≥ POWER, so too few fail the test).
 */
export interface MaskedRows {
  /** The two ancestral cases (cached, no cache). */
  ancestral: number;
  /** Confidence-based. */
  confidence: number;
  /** Blocks of 2 with top-p (fewer: narrower blocks draw row by row). */
  blocks: number;
  /** The two time-stamp cases. */
  stamped: number;
  /** Infilling. */
  infilling: number;
}

/** The masked law tests' default rows. */
export const MASKED_ROWS: Readonly<MaskedRows> = {
  ancestral: 1000,
  confidence: 1000,
  blocks: 500,
  stamped: 400,
  infilling: 1500,
};
/** The rows of the law tests: L positions over V ids, MASK the mask. */
const ROW = { vocab: V, length: L, maskId: MASK } as const;
const HALVE = (r: number[]) =>
  r.map((x, k) => (k === r.length - 1 ? x : x / 2));

/** The masked-diffusion process of these tests with T steps. */
function diffusion(steps: number, padId?: number) {
  return maskedDiffusion({
    kind: "masked-diffusion",
    vocab: V,
    maskId: MASK,
    steps,
    schedule: { kind: "log-linear" },
    objective: "mdlm",
    ...(padId !== undefined ? { padId } : {}),
  });
}

/**
 * Per step of a T-step run visiting every step, the probability that a
 * masked token is revealed: P(masked at s | masked at t) = (1 − ᾱ_s)/(1 − ᾱ_t),
 * from the schedule's marginals; the last step reveals the rest.
 */
function revealSchedule(alphaBar: (t: number) => number, T: number): number[] {
  return Array.from({ length: T }, (_, k) => {
    const t = T - k, s = t - 1;
    return s === 0 ? 1 : 1 - (1 - alphaBar(s)) / (1 - alphaBar(t));
  });
}

/** Logits of the tfjs model (on blas when it is here: 10× the cpu backend). */
async function referenceLogits(
  model: Transformer,
): Promise<(rows: Int32Array, n: number, t: number) => Promise<Float32Array>> {
  await initBackend({ prefer: "blas", log: () => {} }).catch(() =>
    tf.setBackend("cpu")
  );
  return async (rows, n, t) => {
    const out = tf.tidy(() =>
      model.forward(tf.tensor2d(rows, [n, rows.length / n], "int32"), {
        t: tf.fill([n], t) as tf.Tensor1D,
      })
    );
    const data = (await out.data()) as Float32Array;
    out.dispose();
    return data;
  };
}

/**
 * Rows from the engine must follow the exact law; each near miss must be
 * rejected (power ≥ POWER at `n` rows, and float64 draws from it fail).
 */
function assertLaw(
  label: string,
  rows: Int32Array,
  l: number,
  law: Float64Array,
  misses: NearMiss[],
): void {
  const n = rows.length / l;
  const rng = prng(12345);
  for (const miss of misses) {
    const power = lawPower(law, miss.law, n);
    assert(
      power >= POWER,
      `${label}: power ${
        power.toFixed(4)
      } against "${miss.label}" at ${n} rows`,
    );
    const wrong = rowsOf(drawFrom(miss.law, n, () => rng.next()), l, V);
    const verdict = checkRows(wrong, l, V, law, misses);
    assert(
      verdict.rejected !== null,
      `${label}: float64 rows of "${miss.label}" were not rejected`,
    );
    if (REPORT) {
      console.log(
        `${label}: "${miss.label}" power ${
          power.toFixed(4)
        }, its rows: ${verdict.rejected}`,
      );
    }
  }
  const verdict = checkRows(rows, l, V, law, misses);
  if (REPORT) {
    console.log(
      `${label}: ${verdict.impossible} impossible, marginal χ² p ${
        verdict.marginals.p.toExponential(2)
      }, ${
        verdict.towards.map((t) => `${t.label} z ${t.z.toFixed(2)}`).join(", ")
      }`,
    );
  }
  assertEquals(verdict.rejected, null, label);
}

// The time-stamp model: every block's output projections zeroed (each
// block is the identity, so a masked position's logits do not depend on
// the other tokens) and the final adaLN's modulation ×30, so that each of
// the 6 steps' times makes a different token near certain (seed 13: six
// distinct most-likely tokens). The rows then say at which step each token
// was revealed.
const STAMP = (name: string) =>
  name.startsWith("h.") && name.includes(".c_proj.")
    ? 0
    : name.startsWith("ln_f.ada.")
    ? 30
    : 1;

/** Syncs of one masked sampling run where the executor counts them: one. */
async function sampled<R>(
  ex: Executor,
  engine: ParityEngine,
  run: () => Promise<R>,
): Promise<R> {
  const syncs = ex.syncs?.(engine);
  const got = await run();
  if (syncs !== undefined) assertEquals(ex.syncs!(engine) - syncs, 1);
  return got;
}

/**
 * Masked-diffusion sampling through the process's `sample` on the engine:
 * ancestral with and without the logits cache, confidence-based,
 * semi-autoregressive blocks with top-p, the reveal schedule on a
 * time-stamp model, infilling, and the cache skipping passes.
 */
export function maskedGenerationParity(
  ex: Executor,
  options: { rows?: Partial<MaskedRows> } = {},
): void {
  const ROWS: MaskedRows = { ...MASKED_ROWS, ...options.rows };
  for (const [key, n] of Object.entries(ROWS)) {
    if (!(Number.isInteger(n) && n >= 1)) {
      throw new RangeError(`rows.${key} must be a positive integer, got ${n}`);
    }
  }
  for (
    const [label, extra] of [
      ["ancestral, cached", { strategy: "ancestral" as const }],
      ["ancestral, no cache", {
        strategy: "ancestral" as const,
        cache: false,
      }],
      // Learned positions: with rotary ones the all-mask row gives every
      // position the same logits, and which of two equally confident draws
      // is kept would hang on float32 rounding noise.
      ["confidence", { strategy: "confidence" as const, positions: "learned" }],
      ["blocks of 2, top-p 0.9", {
        strategy: "ancestral" as const,
        blockLength: 2,
        topP: 0.9,
      }],
    ] as const
  ) {
    testOf(
      ex,
      `.generateMasked (${label}): rows follow the exact float64 law and a near miss would not`,
      async () => {
        const learned = "positions" in extra;
        // Sharp models: rotary positions (seed 10), learned ones (seed 6);
        // ancestral sampling on training engines, the others on evaluation
        // ones.
        const { model, engine } = await pair(
          ex,
          parityConfig("bidirectional", learned ? "learned" : "rotary"),
          learned ? 6 : 10,
          SHARP,
          undefined,
          label.startsWith("ancestral"),
        );
        const process = diffusion(6, PAD);
        const { positions: _, ...sampling } = { positions: "", ...extra };
        const rows = "blockLength" in extra
          ? ROWS.blocks
          : extra.strategy === "confidence"
          ? ROWS.confidence
          : ROWS.ancestral;
        const options = {
          // Blocks narrower than a row draw row by row (a dispatch each):
          // fewer rows there by default.
          batchSize: rows,
          length: L,
          steps: 6,
          ...sampling,
        };
        const got = await sampled(
          ex,
          engine,
          () => process.sample(engine, { ...options, prng: prng(1) }),
        );
        assertEquals(got.tokens.length, rows * L);
        assert(got.tokens.every((x) => x !== MASK && x !== PAD));
        if (label === "ancestral, cached") {
          // Passes run only when a token changed (≤ the steps).
          assert(got.forwardPasses <= 6, `${got.forwardPasses}`);
        }
        const states = await lawStates(await referenceLogits(model), {
          ...ROW,
          suppress: [MASK, PAD],
        });
        const reveal = revealSchedule((t) => process.discrete.alphaBar(t), 6);
        const o: LawOptions = {
          ...ROW,
          reveal,
          suppress: [MASK, PAD],
          strategy: extra.strategy,
          blockLength: "blockLength" in extra ? extra.blockLength : undefined,
          topP: "topP" in extra ? extra.topP : undefined,
        };
        const misses: NearMiss[] = [
          {
            label: "temperature 0.9",
            law: samplerLaw(states, { ...o, temperature: 0.9 }),
          },
        ];
        if (o.topP) {
          misses.push({
            label: "top-p off",
            law: samplerLaw(states, { ...o, topP: 1 }),
          });
        }
        if (label === "ancestral, cached") {
          // With the cache, a halved reveal changes which logits draw.
          misses.push({
            label: "reveal halved",
            law: samplerLaw(states, { ...o, reveal: HALVE(reveal) }),
          });
        }
        assertLaw(label, got.tokens, L, samplerLaw(states, o), misses);
        await tf.setBackend("cpu");
        model.dispose();
        engine.dispose();
      },
    );
  }

  for (const strategy of ["ancestral", "confidence"] as const) {
    testOf(
      ex,
      `.generateMasked (${strategy}, time-conditioned): tokens are revealed at the schedule's steps, not half as often nor a step late`,
      async () => {
        const config = validateConfig({
          ...parityConfig("bidirectional", "rotary"),
          timeConditioning: true,
        });
        const { model, engine } = await pair(ex, config, 13, STAMP);
        const process = diffusion(6, PAD);
        const rows = ROWS.stamped;
        const got = await sampled(ex, engine, () =>
          process.sample(engine, {
            batchSize: rows,
            length: L,
            steps: 6,
            strategy,
            prng: prng(4),
          }));
        // Context-free by construction: the logits of every state are those
        // of the all-mask row at the same time (checked on a few states).
        const logits = await referenceLogits(model);
        const stamp = async (n: number, t: number) => {
          const one = await logits(new Int32Array(L).fill(MASK), 1, t);
          const all = new Float32Array(n * L * V);
          for (let r = 0; r < n; r++) all.set(one, r * L * V);
          return all;
        };
        const probe = Int32Array.of(MASK, 4, MASK, 7, MASK, 20, MASK, MASK, 3);
        const [a, b] = [await logits(probe, 3, 0.5), await stamp(3, 0.5)];
        for (const i of [0, 2, 4, 6, 7]) {
          for (let x = 0; x < V; x++) {
            assertLess(Math.abs(a[i * V + x] - b[i * V + x]), 1e-4);
          }
        }
        const times = [6, 5, 4, 3, 2, 1].map((t) => t / 6);
        const at = (ts: number[]) =>
          lawStates((_, n, t) => stamp(n, t), {
            ...ROW,
            suppress: [MASK, PAD],
            times: ts,
          });
        const states = await at(times);
        const reveal = revealSchedule((t) => process.discrete.alphaBar(t), 6);
        const o: LawOptions = {
          ...ROW,
          reveal,
          times,
          suppress: [MASK, PAD],
          strategy,
        };
        const late: LawStates = await at([...times.slice(1), 0]);
        assertLaw(
          `time-stamped ${strategy}`,
          got.tokens,
          L,
          samplerLaw(states, o),
          [
            {
              label: "reveal halved",
              law: samplerLaw(states, { ...o, reveal: HALVE(reveal) }),
            },
            {
              label: "reveal one step late",
              law: samplerLaw(states, {
                ...o,
                reveal: [...reveal.slice(1), 1],
              }),
            },
            {
              label: "the model's time one step late",
              law: samplerLaw(late, o),
            },
          ],
        );
        await tf.setBackend("cpu");
        model.dispose();
        engine.dispose();
      },
    );
  }

  testOf(
    ex,
    ".generateMasked: infilling keeps the prompt and fills the masks with the exact law",
    async () => {
      const { model, engine } = await pair(
        ex,
        parityConfig("bidirectional", "learned"),
        15,
        SHARP,
      );
      const process = diffusion(4);
      // Two positions drawn per row: 1500 rows for the power by default.
      const rows = ROWS.infilling;
      const prompt = new Int32Array(rows * L).fill(MASK);
      for (let r = 0; r < rows; r++) prompt[r * L + 1] = 5; // the middle fixed
      const got = await sampled(ex, engine, () =>
        process.sample(engine, {
          batchSize: rows,
          steps: 4,
          prompt,
          prng: prng(3),
        }));
      for (let r = 0; r < rows; r++) assertEquals(got.tokens[r * L + 1], 5);
      const one = Int32Array.of(MASK, 5, MASK);
      const states = await lawStates(await referenceLogits(model), {
        ...ROW,
        suppress: [MASK],
        prompt: one,
      });
      const reveal = revealSchedule((t) => process.discrete.alphaBar(t), 4);
      const o: LawOptions = {
        ...ROW,
        reveal,
        suppress: [MASK],
        strategy: "ancestral",
        prompt: one,
      };
      assertLaw("infilling", got.tokens, L, samplerLaw(states, o), [
        {
          label: "temperature 0.9",
          law: samplerLaw(states, { ...o, temperature: 0.9 }),
        },
      ]);
      await tf.setBackend("cpu");
      model.dispose();
      engine.dispose();
    },
  );

  testOf(
    ex,
    ".generateMasked: caching skips passes while no token changes; one row of many steps",
    async () => {
      const { model, engine } = await pair(
        ex,
        parityConfig("bidirectional", "learned"),
        25,
      );
      const process = diffusion(200);
      const options = { batchSize: 1, length: L, steps: 200 };
      const cached = await process.sample(engine, {
        ...options,
        prng: prng(5),
      });
      const full = await process.sample(engine, {
        ...options,
        cache: false,
        prng: prng(5),
      });
      // L = 3 positions change at most 3 times: ≤ 3 passes, against one per
      // step until the last reveal without the cache (none once nothing is
      // masked); same draws on the same logits, so the same rows.
      assert(cached.forwardPasses <= L, `${cached.forwardPasses}`);
      assert(full.forwardPasses > 20, `${full.forwardPasses}`);
      assertEquals(Array.from(cached.tokens), Array.from(full.tokens));
      model.dispose();
      engine.dispose();
    },
  );
}

// ---------------------------------------------------------------------------
// Resume across engines.

/** Training weights by name. */
type Weights = Map<string, Float32Array>;

/** The largest per-tensor relative error (max |a − b| / max |b|) and where. */
function worstOf(
  a: ReadonlyMap<string, Float32Array>,
  b: ReadonlyMap<string, Float32Array>,
): { error: number; at: string } {
  assertEquals([...a.keys()].sort(), [...b.keys()].sort());
  let error = 0, at = "";
  for (const [k, x] of a) {
    const e = relError(x, b.get(k)!);
    if (e > error) [error, at] = [e, k];
  }
  return { error, at };
}

/**
 * A training checkpoint is the same file whichever engine wrote it: one
 * written by tfjs training (`train`) resumes on the executor's engine
 * (`trainEngine`), and one written by the engine resumes on tfjs, each
 * ending where an uninterrupted run on either ends. Drift: 8 AdamW steps
 * apart, the engines' weights differ by ≤ 7e-4 (per tensor, relative to its
 * largest weight; WebGPU and the CPU engine alike); a resume that lost the
 * optimiser's step, swapped its moments or restarted the data differs by
 * far more (docs/testing.md), so the bound is 2e-3.
 */
export function crossEngineResume(ex: Executor): void {
  const steps = 8, cut = 4, drift = 2e-3;
  const config = parityConfig("bidirectional", "rotary");
  const process = diffusion(100);
  const common = {
    blocks: {
      data: Uint32Array.from(randomIds(12 * T, V - 1, 3)),
      count: 12,
      length: T,
    },
    batchSize: B,
    lr: (s: number) => 2e-2 * (1 - s / (2 * steps)),
    seed: 4,
    config: { test: "cross-engine resume" },
    progress: false as const,
  };
  const onTfjs = async (n: number, checkpoint: string, resume: boolean) => {
    await tf.setBackend("cpu");
    const model = new Transformer(config, { seed: 9 });
    const r = await train({
      ...common,
      variables: model.variables,
      loss: (batch, rng) =>
        process.loss(model, { ...batch, length: T }, { prng: rng }),
      steps: n,
      checkpoint,
      resume,
    });
    r.optimizer.dispose();
    const weights: Weights = new Map();
    for (const [k, v] of model.variables) {
      weights.set(k, (await v.data()) as Float32Array);
    }
    model.dispose();
    return { weights, startStep: r.startStep };
  };
  const onEngine = async (n: number, checkpoint: string, resume: boolean) => {
    const engine = await ex.create(config, {
      batchSize: B,
      length: T,
      seed: 9,
      excludeToken: MASK,
    });
    const r = await trainEngine({
      ...common,
      engine,
      ema: false,
      terms: (batch, rng) =>
        process.lossTerms({ ...batch, length: T }, { prng: rng }),
      steps: n,
      checkpoint,
      resume,
    });
    const weights: Weights = new Map();
    for (const [k, v] of await engine.getWeights()) weights.set(k, v.data);
    engine.dispose();
    return { weights, startStep: r.startStep };
  };
  const section = (
    ck: Awaited<ReturnType<typeof loadCheckpoint>>,
    part: "model" | "adamM" | "adamV",
  ): Weights =>
    new Map(
      [...ck[part]].map(([k, t]: [string, StoredTensor]) => [k, t.data]),
    );
  testOf(
    ex,
    ": a checkpoint written by tfjs resumes on the engine, and one written by the engine resumes on tfjs, ending where uninterrupted runs end",
    async () => {
      const dir = await Deno.makeTempDir();
      const tfjsWhole = await onTfjs(steps, `${dir}/a.safetensors`, false);
      const engineWhole = await onEngine(steps, `${dir}/b.safetensors`, false);
      await onTfjs(cut, `${dir}/tfjs.safetensors`, false);
      await onEngine(cut, `${dir}/engine.safetensors`, false);
      // The same checkpoint from either engine: state, names, shapes, values.
      const a = await loadCheckpoint(`${dir}/tfjs.safetensors`);
      const b = await loadCheckpoint(`${dir}/engine.safetensors`);
      const { elapsed: _a, lastLoss: la, ...sa } = a.state;
      const { elapsed: _b, lastLoss: lb, ...sb } = b.state;
      assertEquals(sa, sb);
      assertEquals(sa.step, cut);
      assertLess(Math.abs(la! - lb!) / la!, 1e-4, `last loss ${la} vs ${lb}`);
      for (const part of ["model", "adamM", "adamV"] as const) {
        const { error, at } = worstOf(section(b, part), section(a, part));
        assertLess(error, drift, `${part} ${at}: ${error}`);
      }
      assertEquals(b.ema.size, 0);
      // Each resumed on the other engine.
      const toEngine = await onEngine(steps, `${dir}/tfjs.safetensors`, true);
      const toTfjs = await onTfjs(steps, `${dir}/engine.safetensors`, true);
      assertEquals([toEngine.startStep, toTfjs.startStep], [cut, cut]);
      for (
        const [label, got, want] of [
          ["tfjs → engine vs the engine throughout", toEngine, engineWhole],
          ["tfjs → engine vs tfjs throughout", toEngine, tfjsWhole],
          ["engine → tfjs vs tfjs throughout", toTfjs, tfjsWhole],
          ["engine → tfjs vs the engine throughout", toTfjs, engineWhole],
        ] as const
      ) {
        const { error, at } = worstOf(got.weights, want.weights);
        assertLess(error, drift, `${label}: ${at} ${error}`);
      }
      // And the resumed runs did train on from the checkpoint.
      assert(
        worstOf(toEngine.weights, section(a, "model")).error > 10 * drift,
      );
      assert(worstOf(toTfjs.weights, section(b, "model")).error > 10 * drift);
      await Deno.remove(dir, { recursive: true });
    },
  );
}

// ---------------------------------------------------------------------------
// Refusals: the checks both engines share (_engine_checks.ts) give the same
// one-line error on each executor, before any work.

// The message of a call that must throw (at once or as a rejection).
async function refusal(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected a refusal, got none");
}

/**
 * Bad options, training batches and scoring rows: each executor refuses
 * them with the same words, its class's name first.
 */
export function refusalParity(ex: Executor): void {
  testOf(
    ex,
    " refuses bad options, batches and scoring rows with the shared one-line errors",
    async () => {
      const config = parityConfig("causal", "learned");
      const v = config.vocabSize;
      const said = (m: string) => `${ex.name}: ${m}`;
      const create = (o: ParityOptions) => refusal(() => ex.create(config, o));
      assertEquals(
        await create({ batchSize: 0, length: 4 }),
        said("batchSize must be a positive integer, got 0"),
      );
      assertEquals(
        await create({ batchSize: 2, length: config.contextLength + 1 }),
        said(
          `length must be an integer in [1, ${config.contextLength}], got ${
            config.contextLength + 1
          }`,
        ),
      );
      assertEquals(
        await create({ batchSize: 2, length: 4, excludeToken: v }),
        said(`excludeToken must be an id in [0, ${v}), got ${v}`),
      );
      assertEquals(
        await create({ evaluationOnly: true, emaDecay: 0.9 }),
        said("emaDecay needs a training engine, but evaluationOnly is set"),
      );
      assertEquals(
        await create({ batchSize: 2, length: 4, clipNorm: 0 }),
        said("clipNorm must be > 0 (Infinity: off), got 0"),
      );
      const engine = await ex.create(config, { batchSize: 2, length: 4 });
      try {
        const batch = {
          inputs: Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]),
          targets: Int32Array.from([1, 2, 3, 4, 5, 6, 7, -1]),
          weights: new Float32Array(8).fill(1 / 8),
        };
        assertEquals(
          await refusal(() =>
            engine.step({
              ...batch,
              inputs: Array.from(batch.inputs) as unknown as Int32Array,
            }, 1e-3)
          ),
          said("batch.inputs must be an Int32Array of B·T values, got Array"),
        );
        assertEquals(
          await refusal(() =>
            engine.step({ ...batch, targets: batch.targets.slice(1) }, 1e-3)
          ),
          said("batch.targets must hold B·T = 2·4 = 8 values, got 7"),
        );
        assertEquals(
          await refusal(() =>
            engine.step({
              ...batch,
              inputs: Int32Array.from([...batch.inputs.slice(0, 7), v]),
            }, 1e-3)
          ),
          said(`batch.inputs[7] must be a token id in [0, ${v}), got ${v}`),
        );
        assertEquals(
          await refusal(() =>
            engine.step({
              ...batch,
              targets: Int32Array.from([...batch.targets.slice(0, 7), v]),
            }, 1e-3)
          ),
          said(`batch.targets[7] must be < ${v} (negative: ignored), got ${v}`),
        );
        assertEquals(engine.stepCount, 0, "a refused batch takes no step");
        const rows = { rows: 2, length: 4, ...batch };
        assertEquals(
          await refusal(() =>
            engine.rowLosses([rows, {
              ...rows,
              targets: Int32Array.from([...batch.targets.slice(0, 7), v]),
            }])
          ),
          said(`rowLosses: batch 1: targets[7] must be < ${v}, got ${v}`),
        );
        assertEquals(
          await refusal(() => engine.rowLosses([{ ...rows, length: 3 }])),
          said(
            "rowLosses: batch 0: inputs must hold rows·length = 6 values, got 8",
          ),
        );
        assertEquals(
          await refusal(() =>
            engine.rowLosses([{ ...rows, excludeToken: -1 }])
          ),
          said(
            `rowLosses: batch 0: excludeToken must be an id in [0, ${v}), got -1`,
          ),
        );
      } finally {
        engine.dispose();
      }
    },
  );
}
