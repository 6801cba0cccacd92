// Masked-diffusion sampling on the engine against the CPU float64 sampler
// of @d3pm/diffusion on the same model: the distributions of the generated
// rows agree (two-sample χ² per position, and of a joint statistic), for
// ancestral sampling with and without the logits cache, confidence-based
// sampling, semi-autoregressive blocks and infilling; one sync per batch.
// Also AR sampling at temperature 1 against the exact next-token law.

import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLess, assertRejects } from "@std/assert";
import { prng, tokenProbabilities } from "@d3pm/core";
import type { ModelConfig } from "@d3pm/transformer";
import { maskedDiffusion } from "@d3pm/diffusion";
import { WebGpuTransformer } from "./mod.ts";
import { gpu, parityConfig, perturbedModel, testDevice } from "./_test_util.ts";

const V = 37, MASK = 36, PAD = 35;

/** A tfjs model and the engine on the same weights, far from the init. */
async function pair(config: ModelConfig, seed: number) {
  const { model, weights } = await perturbedModel(config, seed);
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
 * Two-sample χ² homogeneity of histogram pairs (per pair, categories with
 * fewer than 10 draws in both together merged into one), the χ² and
 * degrees of freedom summed over the pairs, as a Wilson–Hilferty z-score:
 * under the null, z ~ N(0, 1); the tests reject at z > 4.5 (p ≈ 3e-6).
 */
function homogeneity(pairs: [number[], number[]][]): number {
  let chi2 = 0, df = 0;
  for (const [a, b] of pairs) {
    const na = a.reduce((s, x) => s + x, 0);
    const nb = b.reduce((s, x) => s + x, 0);
    const cells: [number, number][] = [];
    let rest: [number, number] = [0, 0];
    a.forEach((x, i) => {
      if (x + b[i] >= 10) cells.push([x, b[i]]);
      else rest = [rest[0] + x, rest[1] + b[i]];
    });
    if (rest[0] + rest[1] > 0) cells.push(rest);
    for (const [x, y] of cells) {
      chi2 += (x * Math.sqrt(nb / na) - y * Math.sqrt(na / nb)) ** 2 / (x + y);
    }
    df += Math.max(1, cells.length - 1);
  }
  return (Math.cbrt(chi2 / df) - (1 - 2 / (9 * df))) / Math.sqrt(2 / (9 * df));
}

function histogram(rows: Int32Array, l: number, pos: number): number[] {
  const h = new Array(V).fill(0);
  for (let i = pos; i < rows.length; i += l) h[rows[i]]++;
  return h;
}

/**
 * The z-score of "same law": every position's histogram, and whether the
 * first two positions hold equal ids (a joint statistic).
 */
function lawZ(x: Int32Array, y: Int32Array, l: number): number {
  const same = (rows: Int32Array) => {
    let n = 0;
    for (let i = 0; i < rows.length; i += l) {
      n += rows[i] === rows[i + 1] ? 1 : 0;
    }
    return [n, rows.length / l - n];
  };
  return homogeneity([
    ...Array.from(
      { length: l },
      (_, pos) =>
        [histogram(x, l, pos), histogram(y, l, pos)] as [number[], number[]],
    ),
    [same(x), same(y)],
  ]);
}

function assertSameLaw(gpuRows: Int32Array, cpuRows: Int32Array, l: number) {
  const z = lawZ(gpuRows, cpuRows, l);
  assertLess(z, 4.5, `z ${z.toFixed(2)}`);
}

const B = 800, L = 3;

for (
  const [label, extra] of [
    ["ancestral, cached", { strategy: "ancestral" as const }],
    ["ancestral, no cache", {
      strategy: "ancestral" as const,
      cache: false,
    }],
    ["confidence", { strategy: "confidence" as const }],
    ["blocks of 2, top-p 0.9", {
      strategy: "ancestral" as const,
      blockLength: 2,
      topP: 0.9,
    }],
  ] as const
) {
  Deno.test({
    name: `generateMasked (${label}): the rows' law equals the CPU sampler's`,
    ...gpu,
    fn: async () => {
      const { model, engine } = await pair(
        parityConfig("bidirectional", "rotary"),
        21,
      );
      const process = diffusion(6, PAD);
      const options = {
        // Blocks narrower than a row draw row by row (a dispatch each).
        batchSize: "blockLength" in extra ? B / 2 : B,
        length: L,
        steps: 6,
        ...extra,
      };
      const syncs = engine.counters.syncs;
      const got = await process.sample(engine, { ...options, prng: prng(1) });
      assertEquals(engine.counters.syncs - syncs, 1);
      const want = await process.sample(model, { ...options, prng: prng(2) });
      assert(got.tokens.every((x) => x !== MASK && x !== PAD));
      assertSameLaw(got.tokens, want.tokens, L);
      if (label === "ancestral, cached") {
        // Passes run only when a token changed (≤ the steps), like the CPU's
        // count (here with 1500 rows: some reveal at nearly every step).
        assert(got.forwardPasses <= 6, `${got.forwardPasses}`);
      }
      model.dispose();
      engine.dispose();
    },
  });
}

Deno.test({
  name:
    "the law check has power: one-shot unmasking is told apart from 6 steps",
  ...gpu,
  fn: async () => {
    const { model, engine } = await pair(
      parityConfig("bidirectional", "rotary"),
      21,
    );
    const process = diffusion(6, PAD);
    // Every position drawn at once from the all-mask logits: no position
    // sees another's token, unlike the 6-step sampler.
    const once = await engine.generateMasked({
      batchSize: B,
      length: L,
      maskId: MASK,
      steps: [{ t: 1, reveal: 1 }],
      strategy: "ancestral",
      cache: false,
      suppress: [PAD],
      seed: 3,
    });
    const want = await process.sample(model, {
      batchSize: B,
      length: L,
      steps: 6,
      prng: prng(2),
    });
    const worst = lawZ(once.tokens, want.tokens, L);
    assert(worst > 4.5, `z ${worst.toFixed(2)}`);
    model.dispose();
    engine.dispose();
  },
});

Deno.test({
  name:
    "generateMasked: infilling keeps the prompt, fills the masks with the CPU's law",
  ...gpu,
  fn: async () => {
    const { model, engine } = await pair(
      parityConfig("bidirectional", "learned"),
      23,
    );
    const process = diffusion(4);
    const prompt = new Int32Array(B * L).fill(MASK);
    for (let r = 0; r < B; r++) prompt[r * L + 1] = 5; // the middle fixed
    const options = { batchSize: B, steps: 4, prompt };
    const got = await process.sample(engine, { ...options, prng: prng(3) });
    const want = await process.sample(model, { ...options, prng: prng(4) });
    for (let r = 0; r < B; r++) assertEquals(got.tokens[r * L + 1], 5);
    assertSameLaw(got.tokens, want.tokens, L);
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
    const { model, engine } = await pair(parityConfig("causal", "learned"), 27);
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
    // One-sample χ² against the exact law, as expected counts.
    const expected = Array.from(p, (x) => Math.round(x * 1e6));
    const z = homogeneity([[h, expected]]);
    assertLess(z, 4.5, `z ${z.toFixed(2)}`);
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
