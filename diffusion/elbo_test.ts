import { prng, type TokenBatch, type WeightedTokens } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { continuousElbo, discreteElbo } from "./elbo.ts";
import {
  absorbingBeta,
  cosineAlpha,
  cosineBeta,
  discretize,
  linearAlpha,
  linearBeta,
  logLinear,
} from "./schedule.ts";
import { absorbing, uniform } from "./transition.ts";
import { drawByCount } from "./counts.ts";
import { ConstantDenoiser } from "./_test_models.ts";

await tf.setBackend("cpu");

const V = 9; // 8 real tokens + mask
const MASK = 8;

function randomBatch(b: number, l: number, seed: number): TokenBatch {
  const r = prng(seed);
  return {
    tokens: Int32Array.from({ length: b * l }, () => r.nextInt(MASK)),
    batchSize: b,
    length: l,
  };
}

for (
  const schedule of [
    absorbingBeta({ steps: 40 }),
    cosineBeta({ steps: 40 }),
    discretize(logLinear(), { steps: 40 }),
  ]
) {
  Deno.test(`discreteElbo() scores a uniform denoiser at ln 8 nats per token (${schedule.name})`, async () => {
    const model = new ConstantDenoiser(V);
    const q = absorbing(schedule, { numStates: V, maskId: MASK });
    const est = await discreteElbo(model, randomBatch(32, 64, 1), {
      transition: q,
      prng: prng(2),
    });
    assertEquals(model.calls, 40);
    assertEquals(est.tokens, 32 * 64);
    assert(
      Math.abs(est.nats - Math.log(8)) < 4 * est.stderr,
      `${est.nats} ± ${est.stderr}`,
    );
    assert(est.stderr < 0.02);
  });
}

for (
  const schedule of [
    logLinear(),
    logLinear({ eps: 0.2 }),
    linearAlpha(),
    cosineAlpha(),
  ]
) {
  Deno.test(`continuousElbo() scores a uniform denoiser at ln 8 nats per token (${schedule.name})`, async () => {
    const model = new ConstantDenoiser(V);
    const est = await continuousElbo(model, randomBatch(64, 32, 3), {
      schedule,
      maskId: MASK,
      prng: prng(4),
      samples: 4,
    });
    assert(
      Math.abs(est.nats - Math.log(8)) < 4 * est.stderr,
      `${est.nats} ± ${est.stderr}`,
    );
    // The 1/t weight makes single draws heavy-tailed: ~0.08 here for 2,048 tokens × 4 draws.
    assert(est.stderr < 0.15, `stderr ${est.stderr}`);
  });
}

Deno.test("continuousElbo() includes the endpoint term: with alpha(1) = 0.2 a perfect-at-t model still pays for t = 1", async () => {
  // The model is certain of token 0 everywhere and every token is 0, so the
  // integral is 0; at t = 1 all is masked and it is still right: the bound is 0.
  const logits = new Float32Array(V).fill(-50);
  logits[0] = 50;
  const model = new ConstantDenoiser(V, logits);
  const x0 = { tokens: new Int32Array(64), batchSize: 4, length: 16 };
  const est = await continuousElbo(model, x0, {
    schedule: logLinear({ eps: 0.2 }),
    maskId: MASK,
    prng: prng(0),
  });
  assertAlmostEquals(est.nats, 0, 1e-6);
  // A model sure of the wrong token pays 100 nats on every masked token and
  // 0.2 · 100 at the endpoint; the integral's expectation is 0.8 · 100.
  const wrong = new Float32Array(V).fill(-50);
  wrong[1] = 50;
  const bad = await continuousElbo(new ConstantDenoiser(V, wrong), x0, {
    schedule: logLinear({ eps: 0.2 }),
    maskId: MASK,
    prng: prng(0),
    samples: 64,
  });
  assert(
    Math.abs(bad.nats - 100) < 4 * bad.stderr + 1e-3,
    `${bad.nats} ± ${bad.stderr}`,
  );
});

Deno.test("discreteElbo() counts no padding and refuses an infinite prior term", async () => {
  const model = new ConstantDenoiser(10);
  const q = absorbing(absorbingBeta({ steps: 10 }), {
    numStates: 10,
    maskId: 9,
  });
  const tokens = Int32Array.from(
    { length: 40 },
    (_, i) => (i % 4 === 3 ? 8 : i % 8),
  );
  const x0 = { tokens, batchSize: 4, length: 10 };
  const est = await discreteElbo(model, x0, {
    transition: q,
    prng: prng(0),
    padId: 8,
  });
  assertEquals(est.tokens, 30);
  // linearBeta over 5 steps leaves tokens unmasked at T: KL to the all-mask prior is infinite.
  const partial = absorbing(linearBeta({ steps: 5, start: 0.1, end: 0.1 }), {
    numStates: 10,
    maskId: 9,
  });
  await assertRejects(
    () => discreteElbo(model, x0, { transition: partial, prng: prng(0) }),
    RangeError,
    "prior term is infinite",
  );
});

Deno.test("discreteElbo() with a uniform transition adds the exact prior KL to the terms", async () => {
  const s = linearBeta({ steps: 1, start: 0.3, end: 0.3 });
  const q = uniform(s, { numStates: 4 });
  // One step: the bound is KL(q(x_1|x_0) ‖ uniform) + E[−log p_θ(x_0 | x_1)].
  // With p̃ = δ_0 and x_0 = 0, p_θ(x_0 | x_1) ∝ Q_1[x_0, x_1], so the second
  // term is E_{x_1}[−log(Q_1[0, x_1] / Σ_j Q_1[j, x_1] p̃_j)] = 0: only the prior is left.
  const a = s.alphaBar(1);
  const p = [a + (1 - a) / 4, (1 - a) / 4, (1 - a) / 4, (1 - a) / 4];
  const kl = p.reduce((acc, x) => acc + x * Math.log(x / 0.25), 0);
  const est = await discreteElbo(
    new ConstantDenoiser(4, Float32Array.of(80, 0, 0, 0)),
    {
      tokens: new Int32Array(8),
      batchSize: 2,
      length: 4,
    },
    { transition: q, prng: prng(1) },
  );
  assertAlmostEquals(est.nats, kl, 1e-5);
});

Deno.test("ELBO estimators leak no tensors", async () => {
  const model = new ConstantDenoiser(V);
  const q = absorbing(absorbingBeta({ steps: 5 }), {
    numStates: V,
    maskId: MASK,
  });
  const x0 = randomBatch(2, 8, 0);
  await discreteElbo(model, x0, { transition: q, prng: prng(0) });
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    await discreteElbo(model, x0, { transition: q, prng: prng(i) });
    await continuousElbo(model, x0, {
      schedule: logLinear(),
      maskId: MASK,
      prng: prng(i),
    });
  }
  assertEquals(tf.memory().numTensors, before);
});

/** A time-conditioned denoiser that reads its token and t: logits = W[x] + t·U. */
class TimedBigram {
  readonly timeConditioned = true;
  readonly config = {
    kind: "bidirectional" as const,
    vocabSize: V,
    contextLength: 64,
  };
  readonly w: tf.Tensor2D;
  readonly u: tf.Tensor1D;
  constructor(seed: number) {
    this.w = tf.randomNormal([V, V], 0, 1.5, "float32", seed);
    this.u = tf.randomNormal([V], 0, 3, "float32", seed + 1);
  }
  forward(tokens: tf.Tensor2D, options: { t?: tf.Tensor1D } = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const [b] = tokens.shape;
      const base = tf.gather(this.w, tokens) as unknown as tf.Tensor3D; // [B, L, V]
      const t = options.t!.reshape([b, 1, 1]);
      return base.add(t.mul(this.u.reshape([1, 1, V]))) as tf.Tensor3D;
    });
  }
  dispose(): void {
    tf.dispose([this.w, this.u]);
  }
}

Deno.test("discreteElbo() on a term scorer equals the dense KL path draw for draw, for a denoiser that reads t (SUBS reveal weights and times)", async () => {
  // Reference: the dense path (vbTerms: the KL of the posteriors from their
  // definitions). The scorer sums Σ w·CE with the mask left out of the
  // softmax, through the same tfjs model at the times it is handed. Same
  // PRNG, so the same x_t at every step; tolerance 1e-5 (float32 logits).
  // Catches the scorer path handing the model (t − 1)/T, or a reveal
  // weight other than (ᾱ_{t−1} − ᾱ_t)/(1 − ᾱ_t) — unseen where only the
  // WebGPU engine (skipped without an adapter) takes this path.
  const model = new TimedBigram(12);
  const scorer = {
    config: model.config,
    timeConditioned: true,
    rowLosses: (list: readonly WeightedTokens[]) =>
      Promise.resolve(list.map((w) =>
        Float64Array.from(
          tf.tidy(() => {
            const logits = model.forward(
              tf.tensor2d(w.inputs, [w.rows, w.length], "int32"),
              { t: tf.tensor1d(w.t!) },
            );
            const keep = tf.oneHot(tf.scalar(w.excludeToken!, "int32"), V)
              .mul(-1e9);
            const logp = tf.logSoftmax(logits.add(keep.reshape([1, 1, V])));
            const target = tf.oneHot(
              tf.tensor2d(w.targets, [w.rows, w.length], "int32"),
              V,
            );
            const ce = logp.mul(target).sum(-1).neg()
              .mul(tf.tensor2d(w.weights, [w.rows, w.length]));
            return ce.sum(1);
          }).dataSync(),
        )
      )),
  };
  for (
    const schedule of [absorbingBeta({ steps: 12 }), cosineBeta({ steps: 12 })]
  ) {
    const q = absorbing(schedule, { numStates: V, maskId: MASK });
    const x0 = randomBatch(6, 10, 5);
    const dense = await discreteElbo(model, x0, {
      transition: q,
      prng: prng(8),
    });
    const terms = await discreteElbo(scorer, x0, {
      transition: q,
      prng: prng(8),
    });
    assertEquals(terms.tokens, dense.tokens);
    assertAlmostEquals(terms.nats, dense.nats, 1e-5, schedule.name);
    assertAlmostEquals(terms.stderr, dense.stderr, 1e-5, schedule.name);
  }
  model.dispose();
});

Deno.test("discreteElbo() on a term scorer hands padding as padding and every unscored position as target −1", async () => {
  // What the scorer is handed, checked directly (its sums hide both: a
  // padded or unscored position has weight 0). Padding at position 0 of a
  // row, the first token the pad-restoring loop visits. Mutation pass
  // (docs/testing.md): kills that loop starting at 1 and the unscored
  // target −1 → 1.
  const padId = 3;
  const x0 = randomBatch(2, 6, 9);
  x0.tokens[0] = padId;
  x0.tokens[6] = padId;
  const seen: WeightedTokens[] = [];
  const scorer = {
    config: { kind: "bidirectional" as const, vocabSize: V, contextLength: 64 },
    timeConditioned: true,
    rowLosses: (list: readonly WeightedTokens[]) => {
      seen.push(...list);
      return Promise.resolve(list.map((w) => new Float64Array(w.rows)));
    },
  };
  const q = absorbing(absorbingBeta({ steps: 5 }), {
    numStates: V,
    maskId: MASK,
  });
  await discreteElbo(scorer, x0, { transition: q, prng: prng(2), padId });
  assertEquals(seen.length, 5);
  for (const w of seen) {
    for (let i = 0; i < x0.tokens.length; i++) {
      if (x0.tokens[i] === padId) {
        assertEquals([w.inputs[i], w.weights[i]], [padId, 0], `pad ${i}`);
      }
      assertEquals(w.targets[i] === -1, w.weights[i] === 0, `token ${i}`);
    }
  }
});

Deno.test("the bounds' per-row ratio estimate: with equal rows, the mean of the row means and its textbook standard error", async () => {
  const { ratioEstimate } = await import("./_ratio.ts");
  // Reference: with every row of c tokens the estimate is the mean of the
  // per-row means m_r = S_r / c, and its standard error is the sample sd of
  // the m_r (n − 1) over √n. Tolerance 1e-12. Unequal rows with one
  // per-token mean have no spread: standard error 0. Catches the variance over n
  // instead of n − 1 (×0.89 at n = 5, unseen by every bound test: they
  // only compare a mean with a few of its standard errors) and a missing √n.
  const sums = Float64Array.of(12.5, 9.75, 14, 11.25, 10);
  const c = 5;
  const est = ratioEstimate(sums, new Float64Array(5).fill(c));
  const means = Array.from(sums, (s) => s / c);
  const mu = means.reduce((a, b) => a + b, 0) / 5;
  const sd = Math.sqrt(means.reduce((a, m) => a + (m - mu) ** 2, 0) / 4);
  assertEquals(est.tokens, 25);
  assertAlmostEquals(est.nats, mu, 1e-12);
  assertAlmostEquals(est.stderr, sd / Math.sqrt(5), 1e-12);
  // Rows of 2, 4 and 6 tokens at 1.5 nats each: no spread at all.
  const flat = ratioEstimate(
    Float64Array.of(3, 6, 9),
    Float64Array.of(2, 4, 6),
  );
  assertAlmostEquals(flat.nats, 1.5, 1e-12);
  assertAlmostEquals(flat.stderr, 0, 1e-12);
  assert(
    Number.isNaN(ratioEstimate(Float64Array.of(3), Float64Array.of(2)).stderr),
  );
});

Deno.test("ratioEstimate() at its edges: one token, two rows, one row (NaN), no tokens (refused)", async () => {
  const { ratioEstimate } = await import("./_ratio.ts");
  // Mutation pass (docs/testing.md). Two rows of one token, 2 and 4 nats:
  // mean 3, standard error sd/√n = √2/√2 = 1 (kills `n > 1` → `n > 2`).
  const two = ratioEstimate(Float64Array.of(2, 4), Float64Array.of(1, 1));
  assertEquals([two.nats, two.tokens], [3, 2]);
  assertAlmostEquals(two.stderr, 1, 1e-12);
  // One row has no spread to measure: NaN, also where (S/c)·c ≠ S in
  // float64 (0.9 over 3 tokens), which would give ∞ with `n > 1` → `n >= 1`
  // or `n > 0`.
  const one = ratioEstimate(Float64Array.of(0.9), Float64Array.of(3));
  assert(Number.isNaN(one.stderr), `stderr ${one.stderr}`);
  // One token is enough; none is refused (kills `tokens === 0` → `=== 1`).
  assertEquals(ratioEstimate(Float64Array.of(2), Float64Array.of(1)).nats, 2);
  assertThrows(
    () => ratioEstimate(Float64Array.of(0, 0), Float64Array.of(0, 0)),
    RangeError,
    "no tokens",
  );
});

Deno.test("continuousElbo() hands a term scorer one time per row and target −1 wherever the weight is 0, for every sample", async () => {
  // What the scorer is handed, checked directly. Mutation pass
  // (docs/testing.md): kills a sample's times taken over two samples'
  // span (`times.subarray(s·b, (s + 2)·b)`) and the unscored target −1 → −2.
  const seen: WeightedTokens[] = [];
  const scorer = {
    config: { kind: "bidirectional" as const, vocabSize: V, contextLength: 64 },
    timeConditioned: true,
    rowLosses: (list: readonly WeightedTokens[]) => {
      seen.push(...list);
      return Promise.resolve(list.map((w) => new Float64Array(w.rows)));
    },
  };
  const x0 = randomBatch(3, 4, 11);
  await continuousElbo(scorer, x0, {
    schedule: logLinear(),
    maskId: MASK,
    prng: prng(4),
    samples: 3,
  });
  assertEquals(seen.length, 4); // the endpoint pass (alpha(1) = 1e-3) and 3 samples
  for (const w of seen) {
    assertEquals([w.t!.length, w.inputs.length], [3, 12]);
    for (let i = 0; i < 12; i++) {
      assertEquals(w.targets[i] === -1, w.weights[i] === 0, `token ${i}`);
    }
  }
});

Deno.test("discreteElbo() on a tfjs model hands it padding as padding at every step, position 0 of a row included", async () => {
  // What the denoiser reads, checked directly (the sums hide it: a padded
  // position has weight 0, and this model ignores its input). Mutation pass
  // of 2026-12-06: the pad-restoring loop starting at 1 (elbo.ts 102) fed
  // a row's first padding token to the model noised, and survived.
  const padId = 3;
  const x0 = randomBatch(2, 6, 9);
  x0.tokens[0] = padId;
  x0.tokens[6] = padId;
  x0.tokens[11] = padId;
  const seen: Int32Array[] = [];
  const spy = new ConstantDenoiser(V);
  const forward = spy.forward.bind(spy);
  spy.forward = (x: tf.Tensor2D) => {
    seen.push(Int32Array.from(x.dataSync()));
    return forward(x);
  };
  const q = absorbing(absorbingBeta({ steps: 5 }), {
    numStates: V,
    maskId: MASK,
  });
  const est = await discreteElbo(spy, x0, {
    transition: q,
    prng: prng(2),
    padId,
  });
  assertEquals(est.tokens, x0.tokens.filter((x) => x !== padId).length);
  assertEquals(seen.length, 5);
  // Step 5 masks every token (ᾱ_5 = 0): what is not padding is the mask.
  for (const [k, xt] of seen.entries()) {
    for (let i = 0; i < xt.length; i++) {
      if (x0.tokens[i] === padId) assertEquals(xt[i], padId, `pad ${i}`);
      else if (k === 4) assertEquals(xt[i], MASK, `token ${i} at t = 5`);
    }
  }
});

Deno.test("continuousElbo() draws one time per row by default and refuses samples 0", async () => {
  // Mutation pass of 2026-12-06: the default `samples ?? 1` → `?? 2` and
  // the check `samples < 1` → `< 0` survived.
  const model = new ConstantDenoiser(V);
  const x0 = randomBatch(3, 5, 4);
  const est = await continuousElbo(model, x0, {
    schedule: logLinear(),
    maskId: MASK,
    prng: prng(0),
  });
  assertEquals(est.tokens, 3 * 5);
  // The endpoint pass (logLinear: alpha(1) = eps > 0), then one sample.
  assert(logLinear().alpha(1) > 0);
  assertEquals(model.calls, 2);
  for (const samples of [0, -1, 1.5]) {
    await assertRejects(
      () =>
        continuousElbo(model, x0, {
          schedule: logLinear(),
          maskId: MASK,
          prng: prng(0),
          samples,
        }),
      RangeError,
      `continuousElbo: samples must be a positive integer, got ${samples}`,
    );
  }
});

Deno.test("continuousElbo() scores the endpoint term at t = 1: alpha(1) · ln 8 for a model uniform at t = 1 and exact before", async () => {
  // A time-conditioned model: uniform over the 8 tokens when told t = 1,
  // certain of the right token (0) otherwise. The integral over (0, 1) is 0
  // (a drawn time is never exactly 1), so the bound is alpha(1) · ln 8,
  // exactly (1e-6). Mutation pass of 2026-12-06: the endpoint pass's time
  // 1 → 2 or 0 survived.
  const model = {
    config: { kind: "bidirectional" as const, vocabSize: V, contextLength: 16 },
    timeConditioned: true,
    dispose() {},
    forward: (x: tf.Tensor2D, o?: { t?: tf.Tensor1D }) =>
      tf.tidy(() => {
        const [b, l] = x.shape;
        const t = o!.t!.dataSync();
        const out = new Float32Array(b * l * V);
        for (let r = 0; r < b; r++) {
          if (t[r] === 1) continue; // zeros: uniform (the mask is ruled out)
          for (let i = 0; i < l; i++) {
            out.fill(-50, (r * l + i) * V, (r * l + i + 1) * V);
            out[(r * l + i) * V] = 50;
          }
        }
        return tf.tensor3d(out, [b, l, V]);
      }),
  };
  const x0 = { tokens: new Int32Array(64), batchSize: 4, length: 16 };
  const schedule = logLinear({ eps: 0.2 });
  const est = await continuousElbo(model, x0, {
    schedule,
    maskId: MASK,
    prng: prng(0),
    samples: 2,
  });
  assertAlmostEquals(est.nats, schedule.alpha(1) * Math.log(8), 1e-6);
});

Deno.test("continuousElbo() with count draws hands each sample its own rows of one drawByCount draw and weighs them exactly", async () => {
  // Reference: drawByCount on the batch tiled S times, from the same seed
  // (continuousElbo draws nothing before it). A scorer that costs 1 nat per
  // scored token makes the bound exact: (Σ_{s,r} w_{s,r}·masked_{s,r} +
  // S·alpha(1)·Σ_r L) / (S·B·L), to 1e-9. Mutation pass of 2026-12-06:
  // every index of the count path (elbo.ts 320–332) survived elbo_test.ts.
  const b = 3, l = 4, S = 3;
  const x0 = randomBatch(b, l, 12);
  const schedule = logLinear({ eps: 0.2 });
  const seen: WeightedTokens[] = [];
  const scorer = {
    config: { kind: "bidirectional" as const, vocabSize: V, contextLength: 64 },
    timeConditioned: true,
    rowLosses: (list: readonly WeightedTokens[]) => {
      seen.push(...list);
      return Promise.resolve(list.map((w) => {
        const rows = new Float64Array(w.rows);
        w.weights.forEach((x, i) => rows[Math.floor(i / w.length)] += x);
        return rows;
      }));
    },
  };
  const est = await continuousElbo(scorer, x0, {
    schedule,
    maskId: MASK,
    prng: prng(6),
    samples: S,
    draws: "count",
  });
  const tiled = new Int32Array(S * b * l);
  for (let s = 0; s < S; s++) tiled.set(x0.tokens, s * b * l);
  const ref = drawByCount(
    { tokens: tiled, batchSize: S * b, length: l },
    schedule,
    {
      maskId: MASK,
      prng: prng(6),
    },
  );
  assertEquals(seen.length, 1 + S); // the endpoint pass, then the samples
  assert(seen[0].inputs.every((x) => x === MASK));
  let sum = 0;
  for (let s = 0; s < S; s++) {
    const pass = seen[1 + s];
    assertEquals(pass.inputs, ref.xt.subarray(s * b * l, (s + 1) * b * l));
    assertEquals(pass.t, Float32Array.from(ref.t.subarray(s * b, (s + 1) * b)));
    for (let r = 0; r < b; r++) {
      let masked = 0;
      for (let i = 0; i < l; i++) {
        masked += +(ref.xt[(s * b + r) * l + i] === MASK);
      }
      sum += ref.weight[s * b + r] * masked + schedule.alpha(1) * l;
    }
  }
  assertEquals(est.tokens, S * b * l);
  assertAlmostEquals(est.nats, sum / (S * b * l), 1e-9);
});

Deno.test("continuousElbo() on a tfjs model leaves padding out: a uniform denoiser still scores ln 8 over the other tokens", async () => {
  // Mutation pass of 2026-12-06: the per-token weight multiplied in as a
  // divisor (`.mul(w)` → `.div(w)`, elbo.ts 421) survived: no test gave
  // the tfjs path padding (0/0 there).
  const padId = 3;
  const x0 = randomBatch(8, 16, 13);
  for (let r = 0; r < 8; r++) x0.tokens.fill(padId, r * 16 + 10, r * 16 + 16);
  const est = await continuousElbo(new ConstantDenoiser(V), x0, {
    schedule: logLinear(),
    maskId: MASK,
    prng: prng(1),
    samples: 8,
    padId,
  });
  const counted = x0.tokens.filter((x) => x !== padId).length;
  assertEquals(est.tokens, 8 * counted);
  assert(
    Math.abs(est.nats - Math.log(8)) < 4 * est.stderr,
    `${est.nats} ± ${est.stderr}`,
  );
});
