import { prng } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertThrows,
} from "@std/assert";
import {
  d3pmLoss,
  mdlmLoss,
  mdlmTerms,
  sampleTimes,
  subsCrossEntropy,
  tokenWeights,
  unmaskRate,
  vbTerms,
} from "./loss.ts";
import {
  absorbingBeta,
  cosineAlpha,
  cosineBeta,
  linearBeta,
  logLinear,
} from "./schedule.ts";
import { absorbing, type Transition, uniform } from "./transition.ts";
import { ConstantDenoiser, TinyDenoiser } from "./_test_models.ts";
import { drawByCount } from "./counts.ts";

await tf.setBackend("cpu");

/** The bound's term for one token, straight from the definitions (float64). */
function referenceTerm(
  q: Transition,
  logits: number[],
  x0: number,
  xt: number,
  t: number,
): number {
  const v = logits.length;
  const shifted = logits.map((
    x,
    j,
  ) => (q.kind === "absorbing" && j === q.maskId ? -Infinity : x));
  const max = Math.max(...shifted);
  const e = shifted.map((x) => Math.exp(x - max));
  const z = e.reduce((s, x) => s + x, 0);
  const pTilde = e.map((x) => x / z);
  const onehot = new Array(v).fill(0);
  onehot[x0] = 1;
  const pTheta = q.posterior(xt, pTilde, t);
  if (t === 1) return -Math.log(pTheta[x0]);
  const qPost = q.posterior(xt, onehot, t);
  let kl = 0;
  for (let j = 0; j < v; j++) {
    if (qPost[j] > 0) kl += qPost[j] * Math.log(qPost[j] / pTheta[j]);
  }
  return kl;
}

for (
  const q of [
    absorbing(absorbingBeta({ steps: 20 }), { numStates: 7, maskId: 6 }),
    absorbing(cosineBeta({ steps: 20 }), { numStates: 7, maskId: 2 }),
    uniform(linearBeta({ steps: 20, start: 0.02, end: 0.4 }), { numStates: 7 }),
    uniform(cosineBeta({ steps: 20 }), { numStates: 7 }),
  ]
) {
  Deno.test(`vbTerms() equals the KL of the posteriors computed from definitions (${q.kind}, ${q.schedule!.name})`, () => {
    const r = prng(9);
    const b = 6, l = 5, v = 7;
    const steps = Int32Array.of(1, 2, 3, 10, 19, 20);
    const x0 = Int32Array.from({ length: b * l }, () => {
      let x;
      do x = r.nextInt(v); while (x === q.maskId);
      return x;
    });
    const xt = new Int32Array(b * l);
    for (let i = 0; i < b; i++) {
      xt.set(q.noise(x0.subarray(i * l, (i + 1) * l), steps[i], r), i * l);
    }
    const logitsArr = Float32Array.from(
      { length: b * l * v },
      () => 3 * (r.next() - 0.5),
    );
    const { vb, ce } = tf.tidy(() => {
      const out = vbTerms(tf.tensor3d(logitsArr, [b, l, v]), x0, xt, steps, q);
      return { vb: out.vb.arraySync().flat(), ce: out.ce.arraySync().flat() };
    });
    for (let i = 0; i < b * l; i++) {
      const row = Math.floor(i / l);
      const want = referenceTerm(
        q,
        Array.from(logitsArr.subarray(i * v, (i + 1) * v)),
        x0[i],
        xt[i],
        steps[row],
      );
      assertAlmostEquals(
        vb[i],
        want,
        2e-4 * Math.max(1, Math.abs(want)),
        `token ${i} step ${steps[row]}`,
      );
      assert(ce[i] >= 0);
    }
  });
}

Deno.test("unmaskRate() is 1/t for D3PM's absorbing schedule", () => {
  const s = absorbingBeta({ steps: 1000 });
  for (const t of [1, 2, 7, 500, 1000]) {
    assertAlmostEquals(unmaskRate(s, t), 1 / t, 1e-12);
  }
});

Deno.test("subsCrossEntropy() never predicts the mask and costs nothing where tokens are kept", () => {
  const logits = tf.tensor3d([[[0, 0, 100], [0, 0, 100]]]); // the model loves the mask (id 2)
  const ce = subsCrossEntropy(
    logits,
    Int32Array.of(0, 1),
    Int32Array.of(2, 1),
    2,
  );
  const [a, b] = ce.arraySync()[0];
  assertAlmostEquals(a, Math.log(2), 1e-5); // mask logit dropped: uniform over {0, 1}
  assertEquals(b, 0);
  tf.dispose([logits, ce]);
});

Deno.test("subsCrossEntropy() takes the mask at id 0 and refuses ids outside the vocabulary", () => {
  // Mask id 0, loved by the model: dropped, so uniform over {1, 2}: ln 2,
  // 1e-5 (float32). Mutation pass (docs/testing.md): kills `maskId < 0` →
  // `<= 0`.
  const logits = tf.tensor3d([[[100, 0, 0]]]);
  const ce = subsCrossEntropy(logits, Int32Array.of(1), Int32Array.of(0), 0);
  assertAlmostEquals(ce.arraySync()[0][0], Math.log(2), 1e-5);
  for (const maskId of [-1, 3]) {
    assertThrows(
      () =>
        subsCrossEntropy(logits, Int32Array.of(1), Int32Array.of(0), maskId),
      RangeError,
      `maskId must be in [0, 3), got ${maskId}`,
    );
  }
  tf.dispose([logits, ce]);
});

Deno.test("sampleTimes() puts one antithetic time in each 1/B stratum of (tMin, 1]", () => {
  const t = Array.from(sampleTimes(8, { prng: prng(3), tMin: 0 })).sort();
  const strata = new Set(t.map((x) => Math.min(7, Math.floor(x * 8 - 1e-12))));
  assertEquals(strata.size, 8);
  assert(t.every((x) => x > 0 && x <= 1));
  const free = sampleTimes(8, { prng: prng(3), antithetic: false, tMin: 0.5 });
  assert(free.every((x) => x > 0.5 && x <= 1));
});

Deno.test("sampleTimes() is the documented closed form t_b = tMin + (tMax − tMin)(1 − ((u + b/B) mod 1)), tMin 1e-3 and tMax 1 by default", () => {
  // u is the PRNG's first draw; exact up to float64 rounding (1e-15). The
  // defaults are what mdlmLoss() trains with when a process sets no times
  // (it hands its options to sampleTimes()). Catches a changed default tMin
  // (1e-2 for 1e-3: every strata test above passes tMin itself), the
  // strata shifted by one, and tMax ignored.
  const B = 8;
  for (
    const [options, lo, hi] of [
      [{}, 1e-3, 1],
      [{ tMin: 0.2, tMax: 0.7 }, 0.2, 0.7],
    ] as const
  ) {
    const u = prng(17).next();
    const t = sampleTimes(B, { prng: prng(17), ...options });
    for (let b = 0; b < B; b++) {
      const want = lo + (hi - lo) * (1 - ((u + b / B) % 1));
      assertAlmostEquals(
        t[b],
        want,
        1e-15,
        `${JSON.stringify(options)} b ${b}`,
      );
    }
  }
});

Deno.test("mdlmLoss() with a uniform denoiser averages ln K over many batches", () => {
  const model = new ConstantDenoiser(9);
  const r = prng(1);
  let total = 0;
  const n = 60;
  for (let i = 0; i < n; i++) {
    const tokens = Int32Array.from({ length: 8 * 32 }, () => r.nextInt(8));
    const loss = mdlmLoss(model, { tokens, batchSize: 8, length: 32 }, {
      schedule: logLinear(),
      maskId: 8,
      prng: r,
      tMin: 0,
    });
    total += loss.dataSync()[0];
    loss.dispose();
  }
  // Expectation (1 − eps)·ln 8 (no endpoint term in the training loss); loose 5% band.
  assertAlmostEquals(total / n, 0.999 * Math.log(8), 0.05 * Math.log(8));
});

Deno.test("mdlmLoss() with one time per token is still an unbiased estimate, with less spread", () => {
  const model = new ConstantDenoiser(9);
  const draws = (perToken: boolean) => {
    const r = prng(5);
    return Array.from({ length: 60 }, () => {
      const tokens = Int32Array.from({ length: 4 * 32 }, () => r.nextInt(8));
      const loss = mdlmLoss(model, { tokens, batchSize: 4, length: 32 }, {
        schedule: logLinear(),
        maskId: 8,
        prng: r,
        tMin: 0,
        perToken,
      });
      const v = loss.dataSync()[0];
      loss.dispose();
      return v;
    });
  };
  const stats = (xs: number[]) => {
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    return {
      m,
      sd: Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / xs.length),
    };
  };
  const row = stats(draws(false)), token = stats(draws(true));
  assertAlmostEquals(token.m, 0.999 * Math.log(8), 0.03 * Math.log(8));
  assert(token.sd < row.sd, `per-token sd ${token.sd} vs per-row ${row.sd}`);
  // A clipped range stays inside it; bad ranges are refused in one line.
  assert(
    sampleTimes(64, { prng: prng(0), tMin: 0.45, tMax: 0.95 }).every((t) =>
      t > 0.45 && t <= 0.95
    ),
  );
  assertThrows(
    () => sampleTimes(4, { prng: prng(0), tMin: 0.5, tMax: 0.5 }),
    RangeError,
    "need 0 ≤ tMin < tMax ≤ 1",
  );
  const timed = Object.assign(new ConstantDenoiser(9), {
    timeConditioned: true,
  });
  assertThrows(
    () =>
      mdlmLoss(timed, { tokens: new Int32Array(8), batchSize: 1, length: 8 }, {
        schedule: logLinear(),
        maskId: 8,
        prng: prng(0),
        perToken: true,
      }),
    RangeError,
    "not time-conditioned",
  );
});

Deno.test("mdlmLoss() and d3pmLoss() are deterministic for a seed and give gradients to every weight", () => {
  const model = new TinyDenoiser(9, 6, 16, 1);
  const x0 = {
    tokens: Int32Array.from({ length: 24 }, (_, i) => i % 8),
    batchSize: 4,
    length: 6,
  };
  const q = absorbing(absorbingBeta({ steps: 100 }), {
    numStates: 9,
    maskId: 8,
  });
  const losses = [
    (seed: number) =>
      mdlmLoss(model, x0, {
        schedule: logLinear(),
        maskId: 8,
        prng: prng(seed),
      }),
    (seed: number) => d3pmLoss(model, x0, { transition: q, prng: prng(seed) }),
    (seed: number) =>
      d3pmLoss(new TinyDenoiser(9, 6, 16, 1), x0, {
        transition: uniform(linearBeta({ steps: 50 }), { numStates: 9 }),
        prng: prng(seed),
      }),
  ];
  for (const f of losses.slice(0, 2)) {
    const a = f(5), b = f(5);
    assertEquals(a.dataSync()[0], b.dataSync()[0]);
    assert(Number.isFinite(a.dataSync()[0]));
    tf.dispose([a, b]);
    const { value, grads } = tf.variableGrads(() => f(5));
    for (const [name, g] of Object.entries(grads)) {
      assert(g.abs().max().dataSync()[0] > 0, `no gradient for ${name}`);
    }
    tf.dispose([value, ...Object.values(grads)]);
  }
  const u = losses[2](1);
  assert(Number.isFinite(u.dataSync()[0]));
  u.dispose();
  model.dispose();
});

Deno.test("losses reject mismatched batches and vocabularies with one-line errors", () => {
  const model = new ConstantDenoiser(5);
  const q = absorbing(absorbingBeta({ steps: 10 }), {
    numStates: 9,
    maskId: 8,
  });
  assertThrows(
    () =>
      mdlmLoss(model, { tokens: new Int32Array(5), batchSize: 2, length: 3 }, {
        schedule: logLinear(),
        maskId: 4,
        prng: prng(0),
      }),
    RangeError,
    "expected batchSize × length = 2 × 3 ids, got 5",
  );
  assertThrows(
    () =>
      d3pmLoss(model, { tokens: new Int32Array(6), batchSize: 2, length: 3 }, {
        transition: q,
        prng: prng(0),
      }),
    RangeError,
    "Model vocabulary 5 does not match the transition's 9 states",
  );
});

Deno.test("mdlmTerms() with fullMaskShare trains that share of rows fully masked at t = 1", () => {
  const l = 16, b = 4;
  const x0 = {
    tokens: Int32Array.from({ length: b * l }, (_, i) => i % 7),
    batchSize: b,
    length: l,
  };
  const base = { schedule: logLinear(), maskId: 9, tMin: 0.3, tMax: 0.8 };
  const rowFull = (terms: ReturnType<typeof mdlmTerms>, r: number) =>
    terms.inputs.slice(r * l, (r + 1) * l).every((x) => x === 9);
  for (const byCount of [false, true]) {
    // A share of 1/2 at batch 4: ⌊2 + u⌋ = 2 rows, the first two, at t = 1
    // with weight −α′(1)/(1 − α(1)) = 1 per token over the token count.
    const half = mdlmTerms(x0, {
      ...base,
      byCount,
      prng: prng(1),
      fullMaskShare: 0.5,
    });
    assertEquals([0, 1, 2, 3].map((r) => rowFull(half, r)), [
      true,
      true,
      false,
      false,
    ]);
    assertEquals(Array.from(half.t!.slice(0, 2)), [1, 1]);
    for (let i = 0; i < 2 * l; i++) {
      assertAlmostEquals(half.weights[i], 1 / (b * l), 1e-7);
    }
    // A share of 0 draws exactly what no share draws (older runs).
    const none = mdlmTerms(x0, { ...base, byCount, prng: prng(2) });
    const zero = mdlmTerms(x0, {
      ...base,
      byCount,
      prng: prng(2),
      fullMaskShare: 0,
    });
    assertEquals(zero.inputs, none.inputs);
    assertEquals(zero.weights, none.weights);
  }
  // Over many batches a share of 1/4 masks a quarter of the rows fully; the
  // clipped range alone (t ≤ 0.8) seldom does (0.8^16 at best).
  const rng = prng(3);
  let full = 0, clipped = 0;
  for (let k = 0; k < 200; k++) {
    const on = mdlmTerms(x0, { ...base, prng: rng, fullMaskShare: 0.25 });
    const off = mdlmTerms(x0, { ...base, prng: rng });
    for (let r = 0; r < b; r++) {
      full += rowFull(on, r) ? 1 : 0;
      clipped += rowFull(off, r) ? 1 : 0;
    }
  }
  assertAlmostEquals(full / (200 * b), 0.25, 0.04);
  assert(clipped < 0.02 * 200 * b, `${clipped} rows fully masked by chance`);
  assertThrows(
    () => mdlmTerms(x0, { ...base, prng: prng(0), fullMaskShare: 1.5 }),
    RangeError,
    "fullMaskShare must be in [0, 1], got 1.5",
  );
  // Mutation pass of 2026-12-06: a share of 1 refused (`share <= 1` → `< 1`),
  // the full rows' weight read at t = 0 (`alphaPrime(1)` → `alphaPrime(0)`,
  // the same for the log-linear schedule's constant slope) and a stagger
  // taken with a share (`share > 0` → `> 1`) survived.
  const all = mdlmTerms(x0, { ...base, prng: prng(4), fullMaskShare: 1 });
  assertEquals([0, 1, 2, 3].map((r) => rowFull(all, r)), [
    true,
    true,
    true,
    true,
  ]);
  // The rows after the full ones are the draws without a share (the share's
  // uniform is drawn after them), to the token: the full rows stop at their
  // end (mutation pass of 2026-12-06: `i < (r + 1)·l` → `<=` masked the next
  // row's first token and survived).
  for (const perToken of [false, true]) {
    const shared = mdlmTerms(x0, {
      ...base,
      perToken,
      prng: prng(5),
      fullMaskShare: 0.5,
    });
    const plain = mdlmTerms(x0, { ...base, perToken, prng: prng(5) });
    assertEquals(shared.inputs.slice(2 * l), plain.inputs.slice(2 * l));
    assertEquals(shared.weights.slice(2 * l), plain.weights.slice(2 * l));
  }
  // Cosine: the weight −α′(1)/(1 − α(1)) over the token count, α′(1) by a
  // second-order backward difference (step 1e-4; 1e-6 relative here).
  const cos = cosineAlpha();
  const h = 1e-4;
  const slope =
    (3 * cos.alpha(1) - 4 * cos.alpha(1 - h) + cos.alpha(1 - 2 * h)) /
    (2 * h);
  const want = -slope / (1 - cos.alpha(1)) / (b * l);
  const curved = mdlmTerms(x0, {
    ...base,
    schedule: cos,
    prng: prng(1),
    fullMaskShare: 0.5,
  });
  for (let i = 0; i < 2 * l; i++) {
    assertAlmostEquals(curved.weights[i], want, 1e-5 * want);
  }
  assertThrows(
    () =>
      mdlmTerms(x0, {
        ...base,
        prng: prng(0),
        fullMaskShare: 0.5,
        stagger: { span: 4, delta: 0.5 },
      }),
    RangeError,
    "mdlm loss: a stagger draws a time per row (or token); it cannot be combined with fullMaskShare",
  );
});

// Mutation pass (docs/testing.md, "Mutation testing"): the loss tests checked
// the terms (vbTerms, the draws) but not how d3pmLoss and mdlmTerms assemble
// them on every path.
Deno.test("d3pmLoss() is the padding-weighted mean of T·vb + λ·ce at the replayed draws", () => {
  // Reference: replay the stream (per row: step 1 + nextInt(T), then
  // q.noise), padding kept as padding, vbTerms (held to the definitions
  // above) at those draws, and Σ w(T·vb + λ·ce)/Σ w; float32, 1e-5
  // relative. λ 0.3 so that the ce term shows. Kills the first token of each
  // row left un-noised (`i = 0` → `i = 1`) and `vb·T + λ·ce` → `− λ·ce`.
  const q = absorbing(absorbingBeta({ steps: 10 }), {
    numStates: 7,
    maskId: 6,
  });
  const logits = Float32Array.of(0.3, -0.2, 1.1, 0.4, -0.7, 0.9, 2);
  const model = new ConstantDenoiser(7, logits);
  const b = 3, l = 5, T = 10, padId = 0;
  const tokens = Int32Array.from(
    { length: b * l },
    (_, i) => i % l === l - 1 ? padId : 1 + ((i * 3) % 5),
  );
  const x0 = { tokens, batchSize: b, length: l };
  // λ unset is the documented default 0.01 (mutation pass of 2026-12-06:
  // 0.01 → 0.011 survived; it moves this loss by ≥ 1e-4 relative).
  for (const [seed, hybridLambda] of [[1, 0.3], [2, 0.3], [3, 0.3], [4]]) {
    const lambda = hybridLambda ?? 0.01;
    const got = d3pmLoss(model, x0, {
      transition: q,
      prng: prng(seed),
      hybridLambda,
      padId,
    });
    const rng = prng(seed);
    const steps = new Int32Array(b), xt = new Int32Array(b * l);
    for (let r = 0; r < b; r++) {
      steps[r] = 1 + rng.nextInt(T);
      const row = q.noise(tokens.subarray(r * l, (r + 1) * l), steps[r], rng);
      for (let i = 0; i < l; i++) {
        xt[r * l + i] = tokens[r * l + i] === padId ? padId : row[i];
      }
    }
    const out = model.forward(tf.zeros([b, l], "int32"));
    const { vb, ce } = vbTerms(out, tokens, xt, steps, q);
    const [v, c] = [vb.dataSync(), ce.dataSync()];
    let sum = 0, count = 0;
    for (let i = 0; i < b * l; i++) {
      if (tokens[i] === padId) continue;
      sum += T * v[i] + lambda * c[i];
      count++;
    }
    const want = sum / count;
    assertAlmostEquals(got.dataSync()[0], want, 1e-5 * want, `seed ${seed}`);
    tf.dispose([got, out, vb, ce]);
  }
});

Deno.test("mdlmTerms() by count weighs each masked token by its row's drawByCount weight, over (1e-3, 1] by default", () => {
  // Reference: drawByCount on the same stream with the documented default
  // range tMin 1e-3, tMax 1; a masked token's weight is its row's weight
  // over the token count (float32, 1e-6 relative). Kills the default
  // tMax 1 → 2 or 0, `weight[i] *= rowWeight[row]` → `/=`, and the row
  // index `⌊i/l⌋` → `⌈i/l⌉` or `i·l`.
  const b = 4, l = 6;
  const x0 = {
    tokens: Int32Array.from({ length: b * l }, (_, i) => i % 5),
    batchSize: b,
    length: l,
  };
  for (const seed of [4, 5]) {
    const terms = mdlmTerms(x0, {
      schedule: logLinear(),
      maskId: 7,
      prng: prng(seed),
      byCount: true,
    });
    const d = drawByCount(x0, logLinear(), {
      maskId: 7,
      prng: prng(seed),
      tMin: 1e-3,
      tMax: 1,
    });
    assertEquals(terms.inputs, d.xt);
    for (let i = 0; i < b * l; i++) {
      const want = d.xt[i] === 7 ? d.weight[Math.floor(i / l)] / (b * l) : 0;
      assertAlmostEquals(terms.weights[i], want, 1e-6 * want, `token ${i}`);
    }
  }
});

Deno.test("mdlmTerms() with a stagger of delta 0 draws exactly what no stagger draws", () => {
  // delta 0 leaves every token on the row's clock, and both paths take one
  // uniform per token in order, so the draws and weights are identical.
  // Kills the stagger path's token loop starting at 1 (token 0 never
  // noised, every later draw shifted).
  const b = 3, l = 8;
  const x0 = {
    tokens: Int32Array.from({ length: b * l }, (_, i) => 1 + (i % 6)),
    batchSize: b,
    length: l,
  };
  const base = { schedule: logLinear(), maskId: 9 };
  for (const seed of [6, 7]) {
    const plain = mdlmTerms(x0, { ...base, prng: prng(seed) });
    const flat = mdlmTerms(x0, {
      ...base,
      prng: prng(seed),
      stagger: { span: 4, delta: 0 },
    });
    assertEquals(flat.inputs, plain.inputs);
    assertEquals(flat.weights, plain.weights);
  }
});

Deno.test("tokenWeights() is 0 exactly at padding, by brute force over every 2 × 2 batch of ids 0–2, a row's first position included", () => {
  // Mutation pass of 2026-12-06: the loop from 1 (position 0's padding
  // weighted 1) survived; the doc example has no padding at position 0.
  for (let code = 0; code < 3 ** 4; code++) {
    const tokens = Int32Array.from(
      { length: 4 },
      (_, i) => Math.floor(code / 3 ** i) % 3,
    );
    const x0 = { tokens, batchSize: 2, length: 2 };
    for (const padId of [0, 2]) {
      assertEquals(
        Array.from(tokenWeights(x0, padId)),
        Array.from(tokens, (x) => (x === padId ? 0 : 1)),
      );
    }
    assertEquals(Array.from(tokenWeights(x0)), [1, 1, 1, 1]);
  }
});

Deno.test("sampleTimes() refuses a range outside [0, 1] or empty, naming both ends, and takes [0, 1] itself", () => {
  // Mutation pass of 2026-12-06: `tMax <= 1` → `<= 2` (times past 1, where
  // alpha is undefined) survived: no test gave a bad range.
  for (
    const [tMin, tMax] of [[0, 1.5], [-0.1, 1], [0.5, 0.5], [0.6, 0.5], [
      NaN,
      1,
    ]]
  ) {
    assertThrows(
      () => sampleTimes(4, { prng: prng(0), tMin, tMax }),
      RangeError,
      `Cannot sample times: need 0 ≤ tMin < tMax ≤ 1, got tMin ${tMin}, tMax ${tMax}`,
    );
  }
  const t = sampleTimes(64, { prng: prng(0), tMin: 0, tMax: 1 });
  assert(t.every((x) => x > 0 && x <= 1));
});

Deno.test("mdlmLoss() is Σ weight · (−log p̃) over mdlmTerms' targets at the same draws, padding included, on every path", () => {
  // Reference: mdlmTerms on the same PRNG state gives the targets and the
  // weights (w/count); the cost of a target is −log of the softmax over the
  // non-mask ids of the constant logits, in float64. 1e-5 relative.
  // Mutation pass of 2026-12-06: the row path's padding weight multiplied
  // in as a divisor (`.mul(tokenWeights)` → `.div`, loss.ts 277: 0/0 at
  // padding) survived: no test gave mdlmLoss padding.
  const V = 7, maskId = 6, padId = 0;
  const logits = Float32Array.of(0.3, -0.2, 1.1, 0.4, -0.7, 0.9, 2);
  const model = new ConstantDenoiser(V, logits);
  const lse = Math.log(
    Array.from(logits.subarray(0, maskId)).reduce((s, x) => s + Math.exp(x), 0),
  );
  const b = 4, l = 8;
  const tokens = Int32Array.from(
    { length: b * l },
    (_, i) => (i % l >= 6 ? padId : 1 + ((i * 3) % 5)),
  );
  const x0 = { tokens, batchSize: b, length: l };
  const paths = [
    {},
    { perToken: true },
    { perToken: true, timeSpan: 2 },
    { byCount: true },
    { fullMaskShare: 0.5 },
    { stagger: { span: 4, delta: 0.5 } },
  ];
  for (const path of paths) {
    for (const seed of [1, 2]) {
      const options = { schedule: logLinear(), maskId, padId, ...path };
      const got = mdlmLoss(model, x0, { ...options, prng: prng(seed) });
      const terms = mdlmTerms(x0, { ...options, prng: prng(seed) });
      let want = 0;
      terms.targets.forEach((x, i) => {
        if (x >= 0) want += terms.weights[i] * (lse - logits[x]);
      });
      assert(want > 0, JSON.stringify(path));
      assertAlmostEquals(
        got.dataSync()[0],
        want,
        1e-5 * want,
        `${JSON.stringify(path)} seed ${seed}`,
      );
      got.dispose();
    }
  }
});

Deno.test("d3pmLoss() of one counted token is that token's T·vb + λ·ce, not half of it", () => {
  // One step (T = 1, ᾱ_1 = 0): the token is masked, r_1 = 1, so the loss
  // is (1 + λ)·(−log p̃(x_0)) over the non-mask ids, float64 by hand, 1e-5
  // relative. Mutation pass of 2026-12-06: the count's floor
  // `Math.max(count, 1)` → 2 (loss.ts 557) survived.
  const logits = Float32Array.of(0.3, -0.2, 1.1, 0.4, -0.7, 0.9, 2);
  const q = absorbing(absorbingBeta({ steps: 1 }), {
    numStates: 7,
    maskId: 6,
  });
  const x0 = { tokens: Int32Array.of(3, 0), batchSize: 1, length: 2 };
  const got = d3pmLoss(new ConstantDenoiser(7, logits), x0, {
    transition: q,
    prng: prng(0),
    padId: 0,
  });
  const lse = Math.log(
    Array.from(logits.subarray(0, 6)).reduce((s, x) => s + Math.exp(x), 0),
  );
  const want = 1.01 * (lse - logits[3]);
  assertAlmostEquals(got.dataSync()[0], want, 1e-5 * want);
  got.dispose();
  // No counted token: 0, not 0/0 (`Math.max(count, 1)` → 0).
  const pads = { tokens: Int32Array.of(0, 0), batchSize: 1, length: 2 };
  const zero = d3pmLoss(new ConstantDenoiser(7, logits), pads, {
    transition: q,
    prng: prng(0),
    padId: 0,
  });
  assertEquals(zero.dataSync()[0], 0);
  zero.dispose();
});

Deno.test("mdlmLoss() over one counted token is that token's term, over none 0; d3pmLoss() tells the model each row's step as s/T", () => {
  // Mutation pass of 2026-12-06: mdlmLoss's `Math.max(count, 1)` → 2 or 0
  // (loss.ts 280: one token halved, no token 0/0) and d3pmLoss's model
  // time `s / T` → `s · T` (560) survived.
  const logits = Float32Array.of(0.3, -0.2, 1.1, 0.4, -0.7, 0.9, 2);
  const model = new ConstantDenoiser(7, logits);
  const lse = Math.log(
    Array.from(logits.subarray(0, 6)).reduce((s, x) => s + Math.exp(x), 0),
  );
  const options = { schedule: logLinear(), maskId: 6, padId: 0 };
  const one = { tokens: Int32Array.of(0, 3, 0), batchSize: 1, length: 3 };
  let scored = 0;
  for (let seed = 0; scored < 3; seed++) {
    const got = mdlmLoss(model, one, { ...options, prng: prng(seed) });
    const terms = mdlmTerms(one, { ...options, prng: prng(seed) });
    if (terms.targets[1] < 0) {
      assertEquals(got.dataSync()[0], 0); // not masked this time
    } else {
      scored++;
      // The term over a count of 1: the token's weight times its cost.
      const want = terms.weights[1] * (lse - logits[3]);
      assertAlmostEquals(got.dataSync()[0], want, 1e-5 * want);
    }
    got.dispose();
  }
  const none = { tokens: Int32Array.of(0, 0), batchSize: 1, length: 2 };
  const zero = mdlmLoss(model, none, { ...options, prng: prng(0) });
  assertEquals(zero.dataSync()[0], 0);
  zero.dispose();
  // d3pmLoss: a time-conditioned spy sees each row's step s ∈ [1, T] as s/T.
  const T = 10, b = 6, l = 3;
  const q = absorbing(absorbingBeta({ steps: T }), { numStates: 7, maskId: 6 });
  const times: number[] = [];
  const spy = new ConstantDenoiser(7, logits);
  const forward = spy.forward.bind(spy);
  spy.forward = (x: tf.Tensor2D, o?: { t?: tf.Tensor1D }) => {
    times.push(...o!.t!.dataSync());
    return forward(x);
  };
  const tokens = Int32Array.from({ length: b * l }, (_, i) => 1 + (i % 5));
  d3pmLoss(spy, { tokens, batchSize: b, length: l }, {
    transition: q,
    prng: prng(3),
  }).dispose();
  const rng = prng(3), want: number[] = [];
  for (let r = 0; r < b; r++) {
    const s = 1 + rng.nextInt(T);
    want.push(s / T);
    q.noise(tokens.subarray(r * l, (r + 1) * l), s, rng);
  }
  assertEquals(times.length, b);
  times.forEach((t, r) => assertAlmostEquals(t, want[r], 1e-7));
});

Deno.test("mdlmTerms()'s defaults are the documented ones: byCount over tMin 1e-3, per-token times one per token (timeSpan 1)", () => {
  // The defaults against the same options given explicitly, draw for draw.
  // Mutation pass of 2026-12-06: byCount's default tMin 1e-3 → 1.1e-3 and
  // perToken's default timeSpan 1 → 2 survived.
  const x0 = {
    tokens: Int32Array.from({ length: 4 * 6 }, (_, i) => i % 5),
    batchSize: 4,
    length: 6,
  };
  const base = { schedule: logLinear(), maskId: 5 };
  for (
    const [implicit, explicit] of [
      // Cosine: the weight n(m(tMax) − m(tMin))/(k(tMax − tMin)) then
      // depends on tMin (the log-linear slope cancels it).
      [{ byCount: true, schedule: cosineAlpha() }, {
        byCount: true,
        schedule: cosineAlpha(),
        tMin: 1e-3,
        tMax: 1,
      }],
      [{ perToken: true }, { perToken: true, timeSpan: 1 }],
    ]
  ) {
    for (const seed of [1, 2, 3]) {
      const a = mdlmTerms(x0, { ...base, ...implicit, prng: prng(seed) });
      const b = mdlmTerms(x0, { ...base, ...explicit, prng: prng(seed) });
      assertEquals([a.inputs, a.weights, a.t], [b.inputs, b.weights, b.t]);
    }
  }
});

Deno.test("mdlmTerms() per token with timeSpan s: one time per s positions, each token masked and weighted by its own time, replayed draw for draw", () => {
  // Reference: the stream replayed (sampleTimes of B·L/s times, then one
  // uniform per token, masked when ≥ α(t)); weight −α′(t)/(1 − α(t)) over
  // the token count, float32, 1e-6 relative. Mutation pass of 2026-12-06:
  // the span's time index ⌊i/s⌋ (→ ⌈i/s⌉, i·s), the count of times B·L/s
  // (→ B·L·s) and the `span === 1` shortcut (→ `=== 2`, `=== 0`) survived
  // loss_test.ts.
  const b = 3, l = 8, schedule = cosineAlpha();
  const x0 = {
    tokens: Int32Array.from({ length: b * l }, (_, i) => i % 5),
    batchSize: b,
    length: l,
  };
  for (const timeSpan of [1, 2, 4]) {
    for (const seed of [1, 2]) {
      const terms = mdlmTerms(x0, {
        schedule,
        maskId: 5,
        prng: prng(seed),
        perToken: true,
        timeSpan,
      });
      const rng = prng(seed);
      const times = sampleTimes((b * l) / timeSpan, { prng: rng });
      for (let i = 0; i < b * l; i++) {
        const t = times[Math.floor(i / timeSpan)];
        const masked = rng.next() >= schedule.alpha(t);
        assertEquals(terms.inputs[i], masked ? 5 : x0.tokens[i], `token ${i}`);
        const w = -schedule.alphaPrime(t) / (1 - schedule.alpha(t)) / (b * l);
        assertAlmostEquals(terms.weights[i], masked ? w : 0, 1e-6 * w);
      }
    }
  }
});
