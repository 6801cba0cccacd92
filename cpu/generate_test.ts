// Generation on the CPU engine: AR decoding with the KV cache (the WebGPU
// engine's decode plan on the CPU executor) gives the tfjs model's greedy
// continuation, in one chunk of rows or several; sampling at temperature 1
// follows the model's softmax (χ², with its power against temperature 0.9
// asserted and float64 draws at 0.9 rejected); masked-diffusion sampling
// follows the exact float64 law of the sampler (webgpu/_test_stats.ts) and
// a near miss (temperature 0.9; with the cache, reveal probabilities
// halved) would not.

import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLess, assertRejects } from "@std/assert";
import { prng, type StoredTensor, tokenProbabilities } from "@d3pm/core";
import type { ModelConfig, Transformer } from "@d3pm/transformer";
import { maskedDiffusion } from "@d3pm/diffusion";
import { CpuTransformer } from "./mod.ts";
import { parityConfig, perturbedModel } from "../webgpu/_test_util.ts";
import {
  checkRows,
  chiSquare,
  chiSquarePower,
  drawFrom,
  histogram,
  type LawOptions,
  lawPower,
  lawStates,
  type NearMiss,
  rowsOf,
  samplerLaw,
} from "../webgpu/_test_stats.ts";

const V = 37, MASK = 36, PAD = 35;
const opts = { sanitizeResources: false, sanitizeOps: false };

/** Greedy rows by recomputing the tfjs model on each prefix. */
function greedyReference(
  model: Transformer,
  b: number,
  l: number,
  start: number,
  exclude: number,
): Int32Array {
  const out = new Int32Array(b * l);
  for (let r = 0; r < b; r++) out[r * l] = start;
  for (let i = 1; i < l; i++) {
    const prefix = new Int32Array(b * i);
    for (let r = 0; r < b; r++) {
      prefix.set(out.subarray(r * l, r * l + i), r * i);
    }
    const logits = tf.tidy(() =>
      model.forward(tf.tensor2d(prefix, [b, i], "int32")).slice(
        [0, i - 1, 0],
        [b, 1, -1],
      )
    );
    const data = logits.dataSync();
    logits.dispose();
    for (let r = 0; r < b; r++) {
      let best = -1;
      for (let j = 0; j < V; j++) {
        if (j === exclude) continue;
        if (best < 0 || data[r * V + j] > data[r * V + best]) best = j;
      }
      out[r * l + i] = best;
    }
  }
  return out;
}

/** A tfjs model and an evaluation engine on the same (edited) weights. */
async function pair(
  config: ModelConfig,
  seed: number,
  edit: (name: string) => number = () => 1,
  scoreRows?: number,
) {
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
  const engine = await CpuTransformer.create(config, {
    evaluationOnly: true,
    weights: edited,
    threads: 2,
    ...(scoreRows !== undefined ? { scoreRows } : {}),
  });
  return { model, engine };
}

for (const positions of ["learned", "rotary"] as const) {
  Deno.test({
    name:
      `CpuTransformer.generateCausal (${positions}): greedy rows equal tfjs's, in one chunk of rows or several`,
    ...opts,
    fn: async () => {
      await tf.setBackend("cpu");
      const config = parityConfig("causal", positions);
      // scoreRows 1: an inference region of one 9-position row, so that a
      // decode plan of 5 rows does not fit and the rows run in chunks.
      for (const scoreRows of [16, 1]) {
        const { model, engine } = await pair(config, 11, () => 1, scoreRows);
        const plain = greedyReference(model, 5, 9, 4, -1);
        assert(new Set(plain).size >= 2, `${plain}`);
        for (const exclude of [-1, plain[1]]) {
          const want = greedyReference(model, 5, 9, 4, exclude);
          const got = await engine.generateCausal({
            batchSize: 5,
            length: 9,
            start: 4,
            temperature: 0,
            suppress: exclude < 0 ? [] : [exclude],
            seed: 0,
          });
          assertEquals(Array.from(got.tokens), Array.from(want));
          if (scoreRows === 16) assertEquals(got.forwardPasses, 8);
          else assert(got.forwardPasses > 8, `${got.forwardPasses}`);
        }
        model.dispose();
        engine.dispose();
      }
    },
  });
}

// A context-dependent model with logits doubled (ln_f scaled): sharper
// distributions, so that temperature 0.9 is told apart (the tests assert
// the power).
const SHARP = (name: string) => (name.startsWith("ln_f.") ? 2 : 1);

Deno.test({
  name:
    "CpuTransformer.generateCausal at temperature 1: tokens follow the model's softmax, not temperature 0.9",
  ...opts,
  fn: async () => {
    await tf.setBackend("cpu");
    const { model, engine } = await pair(
      parityConfig("causal", "learned"),
      2,
      SHARP,
    );
    const rows = 4000;
    const got = await engine.generateCausal({
      batchSize: rows,
      length: 2,
      start: 3,
      temperature: 1,
      suppress: [PAD],
      seed: 9,
    });
    const logits = tf.tidy(() =>
      model.forward(tf.tensor2d([3], [1, 1], "int32")).dataSync()
    );
    const p = tokenProbabilities(logits, { suppress: [PAD] });
    const h = new Array(V).fill(0);
    for (let r = 0; r < rows; r++) h[got.tokens[r * 2 + 1]]++;
    assertEquals(h[PAD], 0);
    const fit = chiSquare(h, p);
    assert(fit.p >= 1e-5, `χ² ${fit.chi2} on ${fit.df} df: p ${fit.p}`);
    const cold = tokenProbabilities(logits, {
      suppress: [PAD],
      temperature: 0.9,
    });
    const power = chiSquarePower(p, cold, rows, 1e-5);
    assert(power >= 0.99, `power ${power} against temperature 0.9`);
    const rng = prng(10);
    const wrong = chiSquare(
      histogram(drawFrom(cold, rows, () => rng.next()), V),
      p,
    );
    assertLess(wrong.p, 1e-5, "float64 draws at temperature 0.9 pass");
    // The same seed gives the same rows.
    const again = await engine.generateCausal({
      batchSize: rows,
      length: 2,
      start: 3,
      temperature: 1,
      suppress: [PAD],
      seed: 9,
    });
    assertEquals(again.tokens, got.tokens);
    model.dispose();
    engine.dispose();
  },
});

/** Per step of a T-step run, the probability that a masked token is revealed. */
function revealSchedule(alphaBar: (t: number) => number, T: number): number[] {
  return Array.from({ length: T }, (_, k) => {
    const t = T - k, s = t - 1;
    return s === 0 ? 1 : 1 - (1 - alphaBar(s)) / (1 - alphaBar(t));
  });
}

const L = 3, B = 1000;

for (
  const [label, strategy, cache] of [
    ["ancestral, cached", "ancestral", true],
    ["confidence", "confidence", false],
  ] as const
) {
  Deno.test({
    name:
      `CpuTransformer.generateMasked (${label}): rows follow the exact float64 law and a near miss would not`,
    ...opts,
    fn: async () => {
      await tf.setBackend("cpu");
      // The WebGPU suite's models: rotary positions (seed 10) for
      // ancestral sampling; learned ones (seed 6) for confidence, where
      // rotary positions would give every position of the all-mask row the
      // same logits and ties would hang on rounding.
      const learned = strategy === "confidence";
      const { model, engine } = await pair(
        parityConfig("bidirectional", learned ? "learned" : "rotary"),
        learned ? 6 : 10,
        SHARP,
      );
      const process = maskedDiffusion({
        kind: "masked-diffusion",
        vocab: V,
        maskId: MASK,
        steps: 6,
        schedule: { kind: "log-linear" },
        objective: "mdlm",
        padId: PAD,
      });
      const got = await process.sample(engine, {
        batchSize: B,
        length: L,
        steps: 6,
        strategy,
        cache,
        prng: prng(1),
      });
      assert(got.tokens.every((x) => x !== MASK && x !== PAD));
      if (cache) assert(got.forwardPasses <= 6, `${got.forwardPasses}`);
      const states = await lawStates(async (rows, n, t) => {
        const out = tf.tidy(() =>
          model.forward(tf.tensor2d(rows, [n, rows.length / n], "int32"), {
            t: tf.fill([n], t) as tf.Tensor1D,
          })
        );
        const data = (await out.data()) as Float32Array;
        out.dispose();
        return data;
      }, { vocab: V, length: L, maskId: MASK, suppress: [MASK, PAD] });
      const reveal = revealSchedule((t) => process.discrete.alphaBar(t), 6);
      const o: LawOptions = {
        vocab: V,
        length: L,
        maskId: MASK,
        reveal,
        suppress: [MASK, PAD],
        strategy,
      };
      const misses: NearMiss[] = [
        {
          label: "temperature 0.9",
          law: samplerLaw(states, { ...o, temperature: 0.9 }),
        },
      ];
      if (cache) {
        // With the cache, a halved reveal changes which logits draw.
        const halved = reveal.map((x, k) =>
          k === reveal.length - 1 ? x : x / 2
        );
        misses.push({
          label: "reveal halved",
          law: samplerLaw(states, { ...o, reveal: halved }),
        });
      }
      const law = samplerLaw(states, o);
      const rng = prng(12345);
      for (const miss of misses) {
        const power = lawPower(law, miss.law, B);
        assert(power >= 0.99, `${label}: power ${power} vs ${miss.label}`);
        const wrong = rowsOf(drawFrom(miss.law, B, () => rng.next()), L, V);
        assert(
          checkRows(wrong, L, V, law, misses).rejected !== null,
          `${label}: float64 rows of "${miss.label}" were not rejected`,
        );
      }
      assertEquals(checkRows(got.tokens, L, V, law, misses).rejected, null);
      model.dispose();
      engine.dispose();
    },
  });
}

Deno.test({
  name: "CpuTransformer generation: bad options give one-line errors",
  ...opts,
  fn: async () => {
    const causal = await CpuTransformer.create(
      parityConfig("causal", "learned"),
      { evaluationOnly: true, threads: 1 },
    );
    const ok = { batchSize: 1, length: 4, start: 0, temperature: 0, seed: 0 };
    await assertRejects(
      () => causal.generateCausal({ ...ok, length: 10 }),
      RangeError,
      "length must be an integer in [2, 9], got 10",
    );
    await assertRejects(
      () => causal.generateCausal({ ...ok, start: 37 }),
      RangeError,
      "start must be a token id in [0, 37), got 37",
    );
    await assertRejects(
      () =>
        causal.generateMasked({
          batchSize: 1,
          length: 3,
          maskId: MASK,
          steps: [{ t: 1, reveal: 1 }],
          strategy: "ancestral",
          cache: false,
          seed: 0,
        }),
      RangeError,
      "generateMasked needs a bidirectional model",
    );
    causal.dispose();
    const bidi = await CpuTransformer.create(
      parityConfig("bidirectional", "learned"),
      { evaluationOnly: true, threads: 1 },
    );
    await assertRejects(
      () => bidi.generateCausal(ok),
      RangeError,
      "generateCausal needs a causal model",
    );
    await assertRejects(
      () =>
        bidi.generateMasked({
          batchSize: 1,
          length: 3,
          maskId: MASK,
          steps: [{ t: 1, reveal: 1 }],
          strategy: "ancestral",
          cache: false,
          seed: 0,
          temperature: 0,
        }),
      RangeError,
      "temperature must be > 0 for masked sampling",
    );
    bidi.dispose();
  },
});
