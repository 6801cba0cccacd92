// Masked-diffusion sampling on the engine against the exact float64 law of
// the sampler (webgpu/_test_stats.ts: dynamic programming over the
// partially revealed rows of length 3, with the tfjs model's logits and
// core's float64 draw probabilities), for ancestral sampling with and
// without the logits cache, confidence-based sampling, semi-autoregressive
// blocks with top-p, and infilling; one sync per batch. Also AR sampling at
// temperature 1 against the exact next-token law.
//
// Power. Each test names the near misses it must reject — temperature 0.9
// instead of 1, top-p off, reveal probabilities halved, the reveal schedule
// or the model's time one step late — computes its power against each
// (≥ 0.99 at its own sample size and thresholds), and checks that rows drawn
// in float64 from each near miss's exact law are rejected. Final rows say
// little about when a token was revealed, so the reveal schedule is tested
// on a "time-stamp" model: blocks switched off (no context) and a strong
// time modulation, so that the token drawn tells the step it was drawn at.

import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLess, assertRejects } from "@std/assert";
import { prng, tokenProbabilities } from "@d3pm/core";
import { initBackend } from "@d3pm/backend";
import {
  type ModelConfig,
  type Transformer,
  validateConfig,
} from "@d3pm/transformer";
import { maskedDiffusion } from "@d3pm/diffusion";
import { WebGpuTransformer } from "./mod.ts";
import { gpu, parityConfig, perturbedModel, testDevice } from "./_test_util.ts";
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
} from "./_test_stats.ts";

const V = 37, MASK = 36, PAD = 35;
const REPORT = Deno.env.get("SAMPLING_REPORT") === "1";
/** The power every law test must have against each of its near misses. */
const POWER = 0.99;

/**
 * A tfjs model and the engine on the same weights, far from the init;
 * `edit` scales or zeroes parameters by name (1 keeps one).
 */
async function pair(
  config: ModelConfig,
  seed: number,
  edit: (name: string) => number = () => 1,
) {
  const { model, weights } = await perturbedModel(config, seed);
  const changed = new Map<string, tf.Tensor>();
  for (const [name, v] of model.variables) {
    const f = edit(name);
    const w = weights.get(name)!;
    if (f !== 1) w.data = w.data.map((x) => x * f);
    changed.set(name, tf.tensor(w.data, v.shape));
  }
  model.setWeights(changed);
  tf.dispose([...changed.values()]);
  const engine = await WebGpuTransformer.create(config, {
    batchSize: 1,
    length: 2,
    weights,
    device: testDevice(),
  });
  return { model, engine };
}

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
) {
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

const L = 3, B = 1000;
const HALVE = (r: number[]) =>
  r.map((x, k) => (k === r.length - 1 ? x : x / 2));

// A context-dependent model with logits doubled (ln_f scaled): sharper
// distributions, so that temperature 0.9 is told apart at 1000 rows (seeds
// chosen for power; the tests assert it).
const SHARP = (name: string) => (name.startsWith("ln_f.") ? 2 : 1);

for (
  const [label, extra] of [
    ["ancestral, cached", { strategy: "ancestral" as const }],
    ["ancestral, no cache", {
      strategy: "ancestral" as const,
      cache: false,
    }],
    // Learned positions: with rotary ones the all-mask row gives every
    // position the same logits, and which of two equally confident draws is
    // kept would hang on float32 rounding noise.
    ["confidence", { strategy: "confidence" as const, positions: "learned" }],
    ["blocks of 2, top-p 0.9", {
      strategy: "ancestral" as const,
      blockLength: 2,
      topP: 0.9,
    }],
  ] as const
) {
  Deno.test({
    name:
      `generateMasked (${label}): the rows follow the exact float64 law and a near miss would not`,
    ...gpu,
    fn: async () => {
      const learned = "positions" in extra;
      const { model, engine } = await pair(
        parityConfig("bidirectional", learned ? "learned" : "rotary"),
        learned ? 6 : 10,
        SHARP,
      );
      const process = diffusion(6, PAD);
      const { positions: _, ...sampling } = { positions: "", ...extra };
      const options = {
        // Blocks narrower than a row draw row by row (a dispatch each).
        batchSize: "blockLength" in extra ? B / 2 : B,
        length: L,
        steps: 6,
        ...sampling,
      };
      const syncs = engine.counters.syncs;
      const got = await process.sample(engine, { ...options, prng: prng(1) });
      assertEquals(engine.counters.syncs - syncs, 1);
      assert(got.tokens.every((x) => x !== MASK && x !== PAD));
      if (label === "ancestral, cached") {
        // Passes run only when a token changed (≤ the steps).
        assert(got.forwardPasses <= 6, `${got.forwardPasses}`);
      }
      const states = await lawStates(await referenceLogits(model), {
        vocab: V,
        length: L,
        maskId: MASK,
        suppress: [MASK, PAD],
      });
      const reveal = revealSchedule((t) => process.discrete.alphaBar(t), 6);
      const o: LawOptions = {
        vocab: V,
        length: L,
        maskId: MASK,
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
  });
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

for (const strategy of ["ancestral", "confidence"] as const) {
  Deno.test({
    name:
      `generateMasked (${strategy}, time-conditioned): tokens are revealed at the schedule's steps, not half as often nor a step late`,
    ...gpu,
    fn: async () => {
      const config = validateConfig({
        ...parityConfig("bidirectional", "rotary"),
        timeConditioning: true,
      });
      const { model, engine } = await pair(config, 13, STAMP);
      const process = diffusion(6, PAD);
      const rows = 400;
      const got = await process.sample(engine, {
        batchSize: rows,
        length: L,
        steps: 6,
        strategy,
        prng: prng(4),
      });
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
          vocab: V,
          length: L,
          maskId: MASK,
          suppress: [MASK, PAD],
          times: ts,
        });
      const states = await at(times);
      const reveal = revealSchedule((t) => process.discrete.alphaBar(t), 6);
      const o: LawOptions = {
        vocab: V,
        length: L,
        maskId: MASK,
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
            law: samplerLaw(states, { ...o, reveal: [...reveal.slice(1), 1] }),
          },
          { label: "the model's time one step late", law: samplerLaw(late, o) },
        ],
      );
      await tf.setBackend("cpu");
      model.dispose();
      engine.dispose();
    },
  });
}

Deno.test({
  name:
    "generateMasked: infilling keeps the prompt and fills the masks with the exact law",
  ...gpu,
  fn: async () => {
    const { model, engine } = await pair(
      parityConfig("bidirectional", "learned"),
      15,
      SHARP,
    );
    const process = diffusion(4);
    // Two positions drawn per row: 1500 rows for the power.
    const rows = 1500;
    const prompt = new Int32Array(rows * L).fill(MASK);
    for (let r = 0; r < rows; r++) prompt[r * L + 1] = 5; // the middle fixed
    const got = await process.sample(engine, {
      batchSize: rows,
      steps: 4,
      prompt,
      prng: prng(3),
    });
    for (let r = 0; r < rows; r++) assertEquals(got.tokens[r * L + 1], 5);
    const one = Int32Array.of(MASK, 5, MASK);
    const states = await lawStates(await referenceLogits(model), {
      vocab: V,
      length: L,
      maskId: MASK,
      suppress: [MASK],
      prompt: one,
    });
    const reveal = revealSchedule((t) => process.discrete.alphaBar(t), 4);
    const o: LawOptions = {
      vocab: V,
      length: L,
      maskId: MASK,
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
});

Deno.test({
  name:
    "generateMasked: caching skips passes while no token changes; one row of many steps",
  ...gpu,
  fn: async () => {
    const { model, engine } = await pair(
      parityConfig("bidirectional", "learned"),
      25,
    );
    const process = diffusion(200);
    const options = { batchSize: 1, length: L, steps: 200 };
    const cached = await process.sample(engine, { ...options, prng: prng(5) });
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
});

Deno.test({
  name:
    "generateCausal at temperature 1: the first token follows the model's softmax",
  ...gpu,
  fn: async () => {
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
    // One-sample χ² against the exact law, level 1e-5; its power against
    // temperature 0.9 at these rows must be ≥ 0.99, and float64 draws at
    // temperature 0.9 must be rejected.
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
    model.dispose();
    engine.dispose();
  },
});

Deno.test({
  name: "generateMasked: bad options give one-line errors",
  ...gpu,
  fn: async () => {
    const { model, engine } = await pair(
      parityConfig("bidirectional", "learned"),
      1,
    );
    const ok = {
      batchSize: 1,
      length: 3,
      maskId: MASK,
      steps: [{ t: 1, reveal: 1 }],
      strategy: "ancestral" as const,
      cache: false,
      seed: 0,
    };
    await assertRejects(
      () => engine.generateMasked({ ...ok, steps: [{ t: 2, reveal: 1 }] }),
      RangeError,
      "steps[0] needs t and reveal in [0, 1], got t 2, reveal 1",
    );
    await assertRejects(
      () => engine.generateMasked({ ...ok, prompt: Int32Array.of(1, 2) }),
      RangeError,
      "prompt must hold B·L = 3 ids, got 2",
    );
    await assertRejects(
      () => engine.generateMasked({ ...ok, temperature: 0 }),
      RangeError,
      "temperature must be > 0 for masked sampling",
    );
    model.dispose();
    engine.dispose();
  },
});
