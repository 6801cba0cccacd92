import {
  type LanguageModel,
  type MaskedGenerationOptions,
  prng,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { sample, type SampleStep } from "./sampler.ts";
import type { DiscreteSchedule } from "./schedule.ts";
import { tokenProbabilities } from "@d3pm/core";
import {
  absorbingBeta,
  cosineBeta,
  discretize,
  logLinear,
} from "./schedule.ts";
import { ConstantDenoiser } from "./_test_models.ts";
import { normalTail, Z_REJECT } from "../core/_test_stats.ts";

await tf.setBackend("cpu");

const V = 6; // 5 tokens + mask
const MASK = 5;
const P = [0.1, 0.2, 0.3, 0.4, 0]; // p̃ over the 5 tokens

function constant(): ConstantDenoiser {
  return new ConstantDenoiser(
    V,
    Float32Array.from([...P.map((p) => (p > 0 ? Math.log(p) : -30)), 0]),
  );
}

/** Position i is predicted as token i mod 5, with confidence growing with i. */
class PositionDenoiser implements LanguageModel {
  calls = 0;
  readonly timeConditioned = false;
  readonly config = {
    kind: "bidirectional" as const,
    vocabSize: V,
    contextLength: 64,
  };
  dispose(): void {}
  forward(tokens: tf.Tensor2D): tf.Tensor3D {
    this.calls++;
    const [b, l] = tokens.shape;
    const out = new Float32Array(b * l * V);
    for (let r = 0; r < b; r++) {
      for (let i = 0; i < l; i++) out[(r * l + i) * V + (i % 5)] = 20 + i;
    }
    return tf.tensor3d(out, [b, l, V]);
  }
}

Deno.test("cached ancestral sampling over T = 1000 makes at most L + 1 forward passes and matches uncached", async () => {
  const schedule = absorbingBeta({ steps: 1000 });
  const L = 24;
  const a = constant(), b = constant();
  const cachedOut = await sample(a, {
    schedule,
    maskId: MASK,
    prng: prng(7),
    length: L,
    batchSize: 2,
    cache: true,
  });
  const plainOut = await sample(b, {
    schedule,
    maskId: MASK,
    prng: prng(7),
    length: L,
    batchSize: 2,
    cache: false,
  });
  assertEquals(cachedOut.tokens, plainOut.tokens);
  assert(plainOut.forwardPasses <= 1000); // steps with nothing masked left skip the network
  assert(cachedOut.forwardPasses <= 2 * L + 1, `${cachedOut.forwardPasses}`); // 2 rows share passes
  assertEquals(cachedOut.forwardPasses, a.calls);
  assert(!cachedOut.tokens.includes(MASK));
});

/**
 * A denoiser whose predictions depend on the context: p̃ ∝ (0.1, 0.2, 0.3,
 * 0.4) over tokens 0–3 (4 is never predicted), times e² for the successor
 * of a revealed left neighbour and e^1.5 for a revealed right neighbour. So
 * a draw made from the wrong row state, at the wrong step or temperature,
 * shows in the draw's probability.
 */
class NeighbourDenoiser implements LanguageModel {
  readonly timeConditioned = false;
  readonly config = {
    kind: "bidirectional" as const,
    vocabSize: V,
    contextLength: 64,
  };
  dispose(): void {}
  /** The logits of position i of a row. */
  static logits(row: ArrayLike<number>, i: number): Float64Array {
    const out = Float64Array.from([...P.slice(0, 4).map(Math.log), -30, 0]);
    const left = i > 0 ? row[i - 1] : MASK;
    const right = i + 1 < row.length ? row[i + 1] : MASK;
    if (left !== MASK) out[(left + 1) % 4] += 2;
    if (right !== MASK && right < 4) out[right] += 1.5;
    return out;
  }
  forward(tokens: tf.Tensor2D): tf.Tensor3D {
    const [b, l] = tokens.shape;
    const ids = tokens.dataSync();
    const out = new Float32Array(b * l * V);
    for (let r = 0; r < b; r++) {
      const row = ids.subarray(r * l, (r + 1) * l);
      for (let i = 0; i < l; i++) {
        out.set(NeighbourDenoiser.logits(row, i), (r * l + i) * V);
      }
    }
    return tf.tensor3d(out, [b, l, V]);
  }
}

/** A schedule with the given per-step reveal probabilities r_t (t = T..1). */
function revealing(reveal: (t: number) => number, T: number): DiscreteSchedule {
  const masked = new Float64Array(T + 1);
  masked[T] = 1;
  for (let t = T; t > 1; t--) masked[t - 1] = masked[t] * (1 - reveal(t));
  return {
    name: "test",
    steps: T,
    beta: () => 0,
    alphaBar: (t: number) => 1 - masked[t],
  };
}

/** Wilson–Hilferty z of a χ² on df degrees of freedom (N(0, 1) under the null). */
function chiZ(chi2: number, df: number): number {
  const v = 2 / (9 * df);
  return (Math.cbrt(chi2 / df) - (1 - v)) / Math.sqrt(v);
}

/**
 * The power of "χ² z of the reveal counts > {@linkcode Z_REJECT}" when
 * `rows · length` masks are revealed with `wrong(t)` instead of `right(t)`
 * at t = T..2: the counts' expected masked numbers under `wrong`, each
 * step's term (c − m·r)²/(m·r(1 − r)) with its exact binomial mean and
 * variance, and the normal law of their sum against the χ² value that
 * {@linkcode chiZ} turns into z = 4.5.
 */
function revealPower(
  masks: number,
  right: (t: number) => number,
  wrong: (t: number) => number,
  T: number,
): number {
  let mean = 0, variance = 0, df = 0, m = masks;
  for (let t = T; t > 1; t--) {
    const r = right(t), q = wrong(t);
    const s2 = m * q * (1 - q), a = m * (q - r), scale = m * r * (1 - r);
    const d4 = 3 * s2 * s2 + s2 * (1 - 6 * q * (1 - q));
    const d3 = s2 * (1 - 2 * q);
    mean += (s2 + a * a) / scale;
    variance += (d4 - s2 * s2 + 4 * a * a * s2 + 4 * a * d3) / scale ** 2;
    df++;
    m *= 1 - q;
  }
  const v = 2 / (9 * df);
  const critical = df * (1 - v + Z_REJECT * Math.sqrt(v)) ** 3;
  return normalTail((critical - mean) / Math.sqrt(variance));
}

/** Σ log p and its moments under p (null) and under q (a near miss). */
class LogScore {
  s = 0;
  mean = 0;
  variance = 0;
  meanQ = 0;
  varianceQ = 0;
  /** Add the log-probability of a draw `x` from `p`, with the near miss `q`. */
  add(p: ArrayLike<number>, x: number, q: ArrayLike<number>): void {
    let e = 0, e2 = 0, f = 0, f2 = 0;
    for (let i = 0; i < p.length; i++) {
      if (!(p[i] > 0)) continue;
      const lp = Math.log(p[i]);
      e += p[i] * lp;
      e2 += p[i] * lp * lp;
      f += q[i] * lp;
      f2 += q[i] * lp * lp;
    }
    this.s += Math.log(p[x]);
    this.mean += e;
    this.variance += e2 - e * e;
    this.meanQ += f;
    this.varianceQ += f2 - f * f;
  }
  /** The z-score of Σ log p under p. */
  get z(): number {
    return (this.s - this.mean) / Math.sqrt(this.variance);
  }
  /** P(z > Z_REJECT) when the draws come from q (normal law of Σ log p). */
  get power(): number {
    const sd = Math.sqrt(this.variance);
    const shift = (this.meanQ - this.mean) / sd;
    return normalTail(
      (Z_REJECT - shift) / (Math.sqrt(this.varianceQ) / sd),
    );
  }
}

/**
 * Per step, from the rows before and after it: the reveal counts against
 * Binomial(masked, r_t) of the true schedule (a χ² z-score over the steps),
 * and every new token's probability under the denoiser at the row before
 * the step (z-score of Σ log p against its exact mean and variance; draws
 * of probability 0 counted). Along the way, the power of the draws' z
 * against temperature 0.9 at these very draws, and the chance that as many
 * draws from the whole p (top-p off) all stay inside the 0.8 nucleus.
 */
function stepStatistics(
  steps: SampleStep[],
  start: Int32Array,
  l: number,
  reveal: (t: number) => number,
  T: number,
  draw: { topP?: number } = {},
) {
  let chi2 = 0, df = 0, impossible = 0, logMissTopP = 0;
  const score = new LogScore();
  let before = start;
  steps.forEach((step, k) => {
    const t = T - k;
    const after = step.tokens;
    let m = 0, c = 0;
    for (let r = 0; r < after.length / l; r++) {
      const row = before.subarray(r * l, (r + 1) * l);
      for (let i = 0; i < l; i++) {
        if (row[i] !== MASK) continue;
        m++;
        const x = after[r * l + i];
        if (x === MASK) continue;
        c++;
        const logits = NeighbourDenoiser.logits(row, i);
        const at = (o: { topP?: number; temperature?: number }) =>
          tokenProbabilities(logits, { suppress: [MASK], ...o });
        const p = at(draw);
        if (!(p[x] > 0)) {
          impossible++;
          continue;
        }
        score.add(p, x, at({ ...draw, temperature: 0.9 }));
        const whole = at({}), nucleus = at({ topP: 0.8 });
        let inside = 0;
        whole.forEach((w, j) => inside += nucleus[j] > 0 ? w : 0);
        logMissTopP += Math.log(inside);
      }
    }
    const r = reveal(t);
    if (t > 1 && m > 0 && r > 0 && r < 1) {
      chi2 += (c - m * r) ** 2 / (m * r * (1 - r));
      df++;
    }
    before = after;
  });
  return {
    reveals: chiZ(chi2, df),
    draws: score.z,
    impossible,
    coldPower: score.power,
    topPOffPower: 1 - Math.exp(logMissTopP),
  };
}

Deno.test("ancestral sampling reveals with the schedule's probabilities and draws each token from the denoiser at the row it was drawn from; near misses fail", async () => {
  // absorbingBeta: alphaBar = 1 − t/T, so a token masked at t is revealed
  // by t − 1 with probability 1/t.
  const T = 10, L = 16, B = 1024;
  const reveal = (t: number) => 1 / t;
  const run = async (options: {
    schedule?: DiscreteSchedule;
    temperature?: number;
    topP?: number;
  }) => {
    const steps: SampleStep[] = [];
    await sample(new NeighbourDenoiser(), {
      schedule: absorbingBeta({ steps: T }),
      maskId: MASK,
      prng: prng(5),
      length: L,
      batchSize: B,
      cache: true,
      onStep: (x) => steps.push(x),
      ...options,
    });
    return stepStatistics(
      steps,
      new Int32Array(B * L).fill(MASK),
      L,
      reveal,
      T,
      options.topP ? { topP: 0.8 } : {},
    );
  };
  // Thresholds: |z| < 4.5 (two-sided p ≈ 7e-6) for the draws, z < 4.5 for
  // the reveal counts, no draw of probability 0.
  const good = await run({});
  assert(Math.abs(good.draws) < 4.5, `draws z ${good.draws}`);
  assert(good.reveals < 4.5, `reveals z ${good.reveals}`);
  assertEquals(good.impossible, 0);
  const nucleus = await run({ topP: 0.8 });
  assertEquals(nucleus.impossible, 0);
  assert(Math.abs(nucleus.draws) < 4.5, `top-p draws z ${nucleus.draws}`);
  // Power at this sample size, each ≥ 0.99 (SAMPLING_REPORT=1 prints it;
  // measured: temperature 0.9 0.999996, its expected z ≈ 7.5; reveal halved
  // and one step late 1 − 1e-16 or closer, z ≈ 50 and ≈ 37; top-p off 1).
  const halve = (t: number) => reveal(t) / 2;
  const lag = (t: number) => reveal(Math.max(1, t - 1));
  const power = {
    "temperature 0.9": good.coldPower,
    "reveal halved": revealPower(B * L, reveal, halve, T),
    "reveal one step late": revealPower(B * L, reveal, lag, T),
    "top-p off": good.topPOffPower,
  };
  if (Deno.env.get("SAMPLING_REPORT")) console.log(power);
  for (const [name, p] of Object.entries(power)) {
    assert(p >= 0.99, `power against ${name}: ${p}`);
  }
  // The same statistics reject each near miss of the float64 sampler.
  const cold = await run({ temperature: 0.9 });
  assert(cold.draws > 4.5, `temperature 0.9: draws z ${cold.draws}`);
  const halved = await run({ schedule: revealing(halve, T) });
  assert(halved.reveals > 4.5, `reveal halved: z ${halved.reveals}`);
  const late = await run({ schedule: revealing(lag, T) });
  assert(late.reveals > 4.5, `reveal one step late: z ${late.reveals}`);
  const steps: SampleStep[] = [];
  await sample(new NeighbourDenoiser(), {
    schedule: absorbingBeta({ steps: T }),
    maskId: MASK,
    prng: prng(5),
    length: L,
    batchSize: B,
    onStep: (x) => steps.push(x),
  });
  const open = stepStatistics(
    steps,
    new Int32Array(B * L).fill(MASK),
    L,
    reveal,
    T,
    { topP: 0.8 },
  );
  assert(open.impossible > 0, "top-p off: no draw outside the nucleus");
});

Deno.test("sample() takes any step count up to T, one forward pass per step", async () => {
  for (const steps of [1, 3, 17, 100]) {
    const m = constant();
    const out = await sample(m, {
      schedule: cosineBeta({ steps: 100 }),
      maskId: MASK,
      prng: prng(steps),
      length: 30,
      steps,
    });
    assert(!out.tokens.includes(MASK));
    assert(out.forwardPasses <= steps);
  }
  await assertRejects(
    () =>
      sample(constant(), {
        schedule: absorbingBeta({ steps: 10 }),
        maskId: MASK,
        prng: prng(0),
        length: 3,
        steps: 11,
      }),
    RangeError,
    "steps must be an integer in [1, 10], got 11",
  );
  // Both ends are closed: 0 steps and length 0 are refused (mutation pass,
  // docs/testing.md: kills `steps < 1` → `steps < 0` and `l < 1` → `l < 0`).
  for (
    const [steps, length, message] of [
      [0, 3, "steps must be an integer in [1, 10], got 0"],
      [10, 0, "length must be a positive integer (or give a prompt), got 0"],
    ] as const
  ) {
    await assertRejects(
      () =>
        sample(constant(), {
          schedule: absorbingBeta({ steps: 10 }),
          maskId: MASK,
          prng: prng(0),
          length,
          steps,
        }),
      RangeError,
      message,
    );
  }
  // Neither a length nor a prompt: refused, not one token (mutation pass of
  // 2026-12-06: `options.length ?? 0` → `?? 1` sampled a row of length 1).
  await assertRejects(
    () =>
      sample(constant(), {
        schedule: absorbingBeta({ steps: 10 }),
        maskId: MASK,
        prng: prng(0),
      }),
    RangeError,
    "length must be a positive integer (or give a prompt), got 0",
  );
  // The smallest row, length 1, is generated (`l < 1` → `l <= 1` refused it).
  const one = await sample(constant(), {
    schedule: absorbingBeta({ steps: 10 }),
    maskId: MASK,
    prng: prng(0),
    length: 1,
    batchSize: 3,
  });
  assertEquals(one.tokens.length, 3);
  assert(!one.tokens.includes(MASK));
});

Deno.test("sample() is deterministic for a seed", async () => {
  const run = (seed: number) =>
    sample(constant(), {
      schedule: absorbingBeta({ steps: 50 }),
      maskId: MASK,
      prng: prng(seed),
      length: 40,
    });
  assertEquals((await run(3)).tokens, (await run(3)).tokens);
  assertNotEquals((await run(3)).tokens, (await run(4)).tokens);
});

Deno.test("infilling keeps every given token and fills only the masks", async () => {
  const prompt = Int32Array.from(
    { length: 40 },
    (_, i) => (i % 3 === 0 ? MASK : 4),
  );
  for (const strategy of ["ancestral", "confidence"] as const) {
    const out = await sample(constant(), {
      schedule: absorbingBeta({ steps: 20 }),
      maskId: MASK,
      prng: prng(0),
      prompt,
      batchSize: 2,
      strategy,
    });
    for (let i = 0; i < prompt.length; i++) {
      if (prompt[i] !== MASK) assertEquals(out.tokens[i], prompt[i]);
      else assertNotEquals(out.tokens[i], MASK);
    }
  }
});

Deno.test("confidence sampling reveals the most confident positions first, as many as the schedule says", async () => {
  const L = 20;
  const steps: SampleStep[] = [];
  const schedule = absorbingBeta({ steps: 4 });
  const out = await sample(new PositionDenoiser(), {
    schedule,
    maskId: MASK,
    prng: prng(0),
    length: L,
    strategy: "confidence",
    onStep: (s) => steps.push(s),
  });
  // alphaBar: 1 − t/4, so a quarter of the positions is revealed each step, highest confidence (latest) first.
  const masked = steps.map((s) => s.tokens.filter((x) => x === MASK).length);
  assertEquals(masked, [15, 10, 5, 0]);
  const firstRevealed = Array.from(steps[0].tokens.keys()).filter((i) =>
    steps[0].tokens[i] !== MASK
  );
  assertEquals(firstRevealed, [15, 16, 17, 18, 19]);
  assertEquals(
    Array.from(out.tokens),
    Array.from({ length: L }, (_, i) => i % 5),
  );
});

Deno.test("confidence sampling reveals round(m·reveal) with exact halves rounded up, as the engines do", async () => {
  // The log-linear schedule over 6 steps reveals 1/4 at t = 4, which
  // float64 computes as 0.2499…: 2 masked × ¼ must still reveal 1.
  const schedule = discretize(logLinear(), { steps: 6 });
  const t4 = (schedule.alphaBar(3) - schedule.alphaBar(4)) /
    (1 - schedule.alphaBar(4));
  assert(2 * t4 < 0.5, `${t4}`); // the float64 rounding this guards against
  const steps: SampleStep[] = [];
  await sample(new PositionDenoiser(), {
    schedule,
    maskId: MASK,
    prng: prng(0),
    length: 2,
    strategy: "confidence",
    onStep: (s) => steps.push(s),
  });
  // 2 × 1/6 and 2 × 1/5 round to 0, 2 × 1/4 to 1, 1 × 1/3 to 0, 1 × 1/2 to 1.
  assertEquals(
    steps.map((s) => s.tokens.filter((x) => x === MASK).length),
    [2, 2, 1, 1, 0, 0],
  );
  // Just under and just over a half: 10 × 0.048 = 0.48 reveals none, 10 ×
  // 0.052 = 0.52 one (mutation pass of 2026-12-06: `+ 0.5` → `+ 0.55`
  // revealed one at 0.48 and survived).
  for (const [r, left] of [[0.048, 10], [0.052, 9]]) {
    const seen: SampleStep[] = [];
    await sample(new PositionDenoiser(), {
      schedule: revealing(() => r, 2),
      maskId: MASK,
      prng: prng(0),
      length: 10,
      strategy: "confidence",
      onStep: (s) => seen.push(s),
    });
    assertEquals(seen[0].tokens.filter((x) => x === MASK).length, left);
  }
});

Deno.test("semi-autoregressive sampling fills blocks left to right", async () => {
  const seen: SampleStep[] = [];
  const model = constant();
  await sample(model, {
    schedule: absorbingBeta({ steps: 8 }),
    maskId: MASK,
    prng: prng(2),
    length: 12,
    blockLength: 4,
    onStep: (s) => seen.push(s),
  });
  assertEquals(seen.length, 24);
  assertEquals(seen[0].steps, 24);
  const afterFirstBlock = seen[7].tokens;
  assert(Array.from(afterFirstBlock.subarray(0, 4)).every((x) => x !== MASK));
  assert(Array.from(afterFirstBlock.subarray(4)).every((x) => x === MASK));
  assert(seen[15].tokens.subarray(0, 8).every((x) => x !== MASK));
  // Blocks of one position: each filled in its own T steps, left to right
  // (mutation pass of 2026-12-06: `blockLength < 1` → `<= 1` refused it).
  const ones: SampleStep[] = [];
  await sample(constant(), {
    schedule: absorbingBeta({ steps: 2 }),
    maskId: MASK,
    prng: prng(2),
    length: 3,
    blockLength: 1,
    onStep: (s) => ones.push(s),
  });
  assertEquals(
    ones.filter((_, k) => k % 2 === 1).map((s) =>
      Array.from(s.tokens, (x) => x === MASK)
    ),
    [[false, true, true], [false, false, true], [false, false, false]],
  );
  // Block length 0 is refused (`< 0` let it through: an endless loop).
  for (const blockLength of [0, -1, 1.5]) {
    await assertRejects(
      () =>
        sample(constant(), {
          schedule: absorbingBeta({ steps: 2 }),
          maskId: MASK,
          prng: prng(2),
          length: 3,
          blockLength,
          onStep: (s) => {
            if (s.step > 100) throw new Error("endless blocks");
          },
        }),
      RangeError,
      `blockLength must be a positive integer, got ${blockLength}`,
    );
  }
});

Deno.test("tokenProbabilities() applies temperature and nucleus in float64", () => {
  const logits = [Math.log(0.1), Math.log(0.2), Math.log(0.3), Math.log(0.4)];
  const hot = tokenProbabilities(logits, { temperature: 0.5 });
  const z = 0.01 + 0.04 + 0.09 + 0.16;
  [0.01, 0.04, 0.09, 0.16].forEach((p, j) =>
    assertAlmostEquals(hot[j], p / z, 1e-12)
  );
  const nucleus = tokenProbabilities(logits, { topP: 0.65 });
  assertEquals(nucleus[0], 0);
  assertEquals(nucleus[1], 0);
  assertAlmostEquals(nucleus[2], 3 / 7, 1e-12);
  assertAlmostEquals(nucleus[3], 4 / 7, 1e-12);
  // A tiny probability survives in float64 where float32 would round it away.
  const tiny = tokenProbabilities([0, -100]);
  assert(tiny[1] > 0 && tiny[1] < 1e-40);
  assertThrows(
    () => tokenProbabilities(logits, { temperature: -0.5 }),
    RangeError,
    "temperature must be ≥ 0 (0: greedy), got -0.5",
  );
  assertThrows(
    () => tokenProbabilities(logits, { topP: 1.5 }),
    RangeError,
    "topP must be in (0, 1]",
  );
});

Deno.test("tokenProbabilities() nucleus is the smallest set with mass ≥ topP, by brute force over every subset, boundaries included", () => {
  // Reference: enumerate all 2^V subsets, keep those with mass ≥ topP, take
  // the fewest ids (ties: the most mass); the result is that set's
  // renormalised probabilities. Tolerance 1e-12 (float64 sums of 6 terms).
  // A topP exactly equal to a prefix sum of the sorted probabilities is the
  // boundary: that prefix already has mass ≥ topP, so nothing more is kept.
  // Catches: `acc <= topP` (one id too many at the boundary), dropping the
  // id that crosses topP, renormalising by 1 instead of the kept mass.
  const rng = prng(5);
  const n = 6;
  for (let trial = 0; trial < 40; trial++) {
    const logits = Array.from({ length: n }, () => 3 * rng.next());
    const full = tokenProbabilities(logits);
    const sorted = Array.from(full.keys()).sort((a, b) => full[b] - full[a]);
    const prefix: number[] = [];
    let acc = 0;
    for (const j of sorted) prefix.push(acc += full[j]);
    const tops = [0.05 + 0.9 * rng.next(), prefix[trial % (n - 1)]];
    for (const topP of tops) {
      let best = -1, bestSize = Infinity, bestMass = -1;
      for (let mask = 1; mask < 1 << n; mask++) {
        let mass = 0, size = 0;
        // Sum in descending-probability order, as a prefix sum would.
        for (const j of sorted) if (mask & (1 << j)) (mass += full[j], size++);
        if (mass < topP) continue;
        if (size < bestSize || (size === bestSize && mass > bestMass)) {
          [best, bestSize, bestMass] = [mask, size, mass];
        }
      }
      const got = tokenProbabilities(logits, { topP });
      for (let j = 0; j < n; j++) {
        const want = best & (1 << j) ? full[j] / bestMass : 0;
        assertAlmostEquals(got[j], want, 1e-12, `trial ${trial} topP ${topP}`);
      }
    }
  }
});

Deno.test("tokenProbabilities() subtracts the largest logit (no overflow at ±1000) and rejects topP 0", () => {
  // Closed form: logits (a, a − 1) give (1, e⁻¹)/(1 + e⁻¹) for any a; 1e-12.
  // At a = ±1000 exp overflows or underflows unless the largest logit is
  // subtracted first (kills `logits[j] - max` → `+ max`). Mutation pass,
  // docs/testing.md.
  const want = [1 / (1 + Math.exp(-1)), Math.exp(-1) / (1 + Math.exp(-1))];
  for (const a of [1000, -1000, 0]) {
    const p = tokenProbabilities([a, a - 1]);
    want.forEach((w, j) => assertAlmostEquals(p[j], w, 1e-12, `a ${a}`));
  }
  // Logit 0 far above the rest: exp(800) overflows unless it is the one
  // subtracted (kills the max loop starting at j = 1); e^−800 underflows to 0.
  assertEquals(Array.from(tokenProbabilities([800, 0, -5])), [1, 0, 0]);
  // topP 0 would keep nothing and divide by 0 (kills `topP > 0` → `>=`).
  assertThrows(
    () => tokenProbabilities([0, 1], { topP: 0 }),
    RangeError,
    "topP must be in (0, 1], got 0",
  );
});

Deno.test("sampling leaks no tensors", async () => {
  const m = constant();
  await sample(m, {
    schedule: absorbingBeta({ steps: 5 }),
    maskId: MASK,
    prng: prng(0),
    length: 4,
  });
  const before = tf.memory().numTensors;
  await sample(m, {
    schedule: absorbingBeta({ steps: 20 }),
    maskId: MASK,
    prng: prng(1),
    length: 8,
    batchSize: 2,
  });
  assertEquals(tf.memory().numTensors, before);
});

/** Logits that depend on t: token (round(10·t) mod 5) is favoured. */
class TimeToy implements LanguageModel {
  readonly timeConditioned = true;
  readonly config = {
    kind: "bidirectional" as const,
    vocabSize: V,
    contextLength: 64,
  };
  calls = 0;
  forward(tokens: tf.Tensor2D, options: { t?: tf.Tensor1D } = {}): tf.Tensor3D {
    this.calls++;
    const [b, l] = tokens.shape;
    const t = options.t!.dataSync();
    const out = new Float32Array(b * l * V);
    for (let r = 0; r < b; r++) {
      for (let i = 0; i < l; i++) {
        out[(r * l + i) * V + (Math.round(10 * t[r]) % 5)] = 3;
      }
    }
    return tf.tensor3d(out, [b, l, V]);
  }
  dispose(): void {}
}

Deno.test("sample() never caches for a time-conditioned model and refuses cache: true", async () => {
  const schedule = absorbingBeta({ steps: 200 });
  const opts = { schedule, maskId: MASK, length: 6, batchSize: 2, steps: 200 };
  await assertRejects(
    () => sample(new TimeToy(), { ...opts, prng: prng(0), cache: true }),
    RangeError,
    "time-conditioned",
  );
  for (let seed = 0; seed < 20; seed++) {
    const auto = new TimeToy(), plain = new TimeToy();
    const a = await sample(auto, { ...opts, prng: prng(seed) });
    const p = await sample(plain, { ...opts, prng: prng(seed), cache: false });
    assertEquals(a.tokens, p.tokens, `seed ${seed}`);
    assertEquals(auto.calls, plain.calls);
  }
});

Deno.test("sample() hands a device generator the schedule's steps: t/T, reveal (ᾱ_s − ᾱ_t)/(1 − ᾱ_t) (1 at s = 0), the stream's 32-bit seed, all revealed after the last", async () => {
  // A stub generator records what it is asked (the device path, otherwise
  // run only by the engine tests). Reference: the grid round(T(S − k)/S) for
  // T 12, S 4 is 12, 9, 6, 3, 0; reveal from the schedule's ᾱ, 1e-15; the
  // seed is ⌊u·2³²⌋ of the stream's first uniform. Mutation pass
  // (docs/testing.md): kills `grid[k + 1]` → `grid[k + 2]`, the reveal's
  // `1 − ᾱ_t` → `0 − ᾱ_t` and `ᾱ_s − ᾱ_t` → `+`, the seed ⌊u·2³¹⌋, and
  // revealAllAtEnd on the step before the last.
  const calls: MaskedGenerationOptions[] = [];
  const gen = {
    timeConditioned: true,
    generateMasked: (o: MaskedGenerationOptions) => {
      calls.push(o);
      return Promise.resolve({
        tokens: (o.prompt ?? new Int32Array(o.batchSize * o.length)).slice(),
        forwardPasses: o.steps.length,
        syncs: 1,
      });
    },
  };
  const schedule = cosineBeta({ steps: 12 });
  const grid = [12, 9, 6, 3, 0];
  const options = { schedule, maskId: MASK, length: 5, steps: 4 };
  await sample(gen, { ...options, prng: prng(1) });
  assertEquals(calls.length, 1);
  assertEquals(calls[0].seed, Math.floor(prng(1).next() * 2 ** 32) >>> 0);
  assertEquals(calls[0].steps.length, 4);
  calls[0].steps.forEach((step, k) => {
    const t = grid[k], s = grid[k + 1];
    const aT = schedule.alphaBar(t), aS = schedule.alphaBar(s);
    assertAlmostEquals(step.t, t / 12, 1e-15, `step ${k}`);
    const want = s === 0 ? 1 : (aS - aT) / (1 - aT);
    assertAlmostEquals(step.reveal, want, 1e-15, `step ${k}`);
  });
  // With onStep, one call per step; only the last reveals what is left.
  calls.length = 0;
  await sample(gen, { ...options, prng: prng(1), onStep: () => {} });
  assertEquals(calls.map((c) => c.revealAllAtEnd), [false, false, false, true]);
  // Every step of T (s = 1 is visited: its reveal is the posterior's, not
  // the last step's 1), and a schedule that starts noising late (ᾱ_t = 1
  // for t ≤ 2: reveal 1 there, not 0/0). Mutation pass of 2026-12-06:
  // `s === 0` → `s === 1`, `aT >= 1` → `aT > 1`, `aT >= 2` survived.
  const late: DiscreteSchedule = {
    name: "late",
    steps: 4,
    beta: () => 0,
    alphaBar: (t: number) => [1, 1, 1, 0.5, 0][t],
  };
  for (
    const [sched, want] of [
      [schedule, undefined],
      [late, [0.5, 1, 1, 1]],
    ] as const
  ) {
    calls.length = 0;
    await sample(gen, {
      schedule: sched,
      maskId: MASK,
      length: 5,
      prng: prng(1),
    });
    const T = sched.steps;
    const reveals = calls[0].steps.map((x) => x.reveal);
    const expected = want ?? Array.from({ length: T }, (_, k) => {
      const aT = sched.alphaBar(T - k), aS = sched.alphaBar(T - k - 1);
      return k === T - 1 ? 1 : (aS - aT) / (1 - aT);
    });
    assertEquals(reveals.length, T);
    reveals.forEach((r, k) =>
      assertAlmostEquals(r, expected[k], 1e-15, `${sched.name} step ${k}`)
    );
    if (!want) assert(expected[T - 2] < 0.99, `${expected[T - 2]}`);
  }
});

Deno.test("tokenProbabilities() at temperature 0 puts 1 on the brute-force argmax: suppressed ids skipped, ties to the lowest id, the nucleus kept whole", () => {
  const r = prng(5);
  for (let trial = 0; trial < 200; trial++) {
    // Few distinct values, so that ties are common.
    const logits = Float32Array.from(
      { length: 9 },
      () => Math.floor(r.next() * 4),
    );
    const suppress = [0, 1, 2, 3, 4, 5, 6, 7, 8].filter(() => r.next() < 0.3);
    if (suppress.length === 9) continue;
    let best = -1;
    for (let j = 0; j < 9; j++) {
      if (suppress.includes(j)) continue;
      if (best < 0 || logits[j] > logits[best]) best = j;
    }
    const want = Array.from({ length: 9 }, (_, j) => (j === best ? 1 : 0));
    for (const topP of [1, 0.3]) {
      const p = tokenProbabilities(logits, { temperature: 0, suppress, topP });
      assertEquals(Array.from(p), want, `${logits} ${suppress} ${topP}`);
    }
  }
});

/**
 * Logits at position i from its neighbours' tokens (a fixed random table
 * per side; the mask has rows too), so that what is revealed changes what
 * the others predict.
 */
class RandomNeighbours implements LanguageModel {
  calls = 0;
  readonly timeConditioned = false;
  readonly config = {
    kind: "bidirectional" as const,
    vocabSize: V,
    contextLength: 64,
  };
  readonly left: Float32Array;
  readonly right: Float32Array;
  constructor(seed: number) {
    const r = prng(seed);
    this.left = Float32Array.from({ length: V * V }, () => 4 * r.next());
    this.right = Float32Array.from({ length: V * V }, () => 4 * r.next());
  }
  /** Logits of every position, in plain JavaScript: the brute force's. */
  logits(tokens: Int32Array, b: number, l: number): Float32Array {
    const out = new Float32Array(b * l * V);
    for (let r = 0; r < b; r++) {
      for (let i = 0; i < l; i++) {
        const a = i > 0 ? tokens[r * l + i - 1] : MASK;
        const c = i < l - 1 ? tokens[r * l + i + 1] : MASK;
        for (let v = 0; v < V; v++) {
          out[(r * l + i) * V + v] = this.left[a * V + v] +
            this.right[c * V + v];
        }
      }
    }
    return out;
  }
  forward(tokens: tf.Tensor2D): tf.Tensor3D {
    this.calls++;
    const [b, l] = tokens.shape;
    const x = Int32Array.from(tokens.dataSync());
    return tf.tensor3d(this.logits(x, b, l), [b, l, V]);
  }
  dispose(): void {}
}

Deno.test("sample() at temperature 0 reveals each token as the brute-force argmax of the denoiser's logits at that step (never the mask or a suppressed id), ranking confidence at temperature 1", async () => {
  const b = 3, l = 12;
  const model = new RandomNeighbours(4);
  // Brute force over one step: every position revealed at it holds the
  // first largest logit of the tokens before it, mask and suppressed out.
  const argmax = (row: Float32Array, out: number[]) => {
    let best = -1;
    for (let v = 0; v < V; v++) {
      if (v === MASK || out.includes(v)) continue;
      if (best < 0 || row[v] > row[best]) best = v;
    }
    return best;
  };
  const maxProb = (row: Float32Array, out: number[]) => {
    const keep = [...row.keys()].filter((v) => v !== MASK && !out.includes(v));
    const m = Math.max(...keep.map((v) => row[v]));
    const z = keep.reduce((s, v) => s + Math.exp(row[v] - m), 0);
    return 1 / z; // the argmax's probability at temperature 1
  };
  for (const strategy of ["ancestral", "confidence"] as const) {
    for (const suppress of [[], [1]]) {
      const runs: Int32Array[] = [];
      for (const seed of [0, 1]) {
        const seen: SampleStep[] = [];
        const out = await sample(model, {
          schedule: absorbingBeta({ steps: 6 }),
          maskId: MASK,
          prng: prng(seed),
          batchSize: b,
          length: l,
          strategy,
          suppress,
          temperature: 0,
          onStep: (s) => seen.push(s),
        });
        let before = new Int32Array(b * l).fill(MASK);
        for (const s of seen) {
          const logits = model.logits(before, b, l);
          const row = (i: number) => logits.subarray(i * V, (i + 1) * V);
          for (let i = 0; i < b * l; i++) {
            if (before[i] !== MASK || s.tokens[i] === MASK) continue;
            assertEquals(
              s.tokens[i],
              argmax(row(i), suppress),
              `${strategy} step ${s.step} position ${i}`,
            );
            if (strategy !== "confidence") continue;
            // Most confident first: none left masked in its row beats it.
            const r0 = Math.floor(i / l) * l;
            for (let j = r0; j < r0 + l; j++) {
              if (s.tokens[j] !== MASK) continue;
              assert(
                maxProb(row(j), suppress) <= maxProb(row(i), suppress),
                `${strategy} step ${s.step}: ${j} left masked, ${i} revealed`,
              );
            }
          }
          before = Int32Array.from(s.tokens);
        }
        assertEquals(before, out.tokens);
        assert(out.tokens.every((x) => x !== MASK && !suppress.includes(x)));
        runs.push(out.tokens);
      }
      // Greedy: the same text whatever the seed (ancestral: only the
      // order of reveals is random, and it changes the text).
      if (strategy === "confidence") assertEquals(runs[0], runs[1]);
    }
  }
});

Deno.test("sample() at temperature 0 reads a device generator's forward (its own sampler draws at a temperature > 0), and refuses one without, naming the alternative", async () => {
  const model = new RandomNeighbours(4);
  const generateMasked = () => {
    throw new Error("the device's sampler was called");
  };
  const options = {
    schedule: absorbingBeta({ steps: 4 }),
    maskId: MASK,
    length: 6,
    temperature: 0,
  };
  const plain = await sample(model, { ...options, prng: prng(0) });
  const device = Object.assign(new RandomNeighbours(4), { generateMasked });
  const viaForward = await sample(device, { ...options, prng: prng(0) });
  assertEquals(viaForward.tokens, plain.tokens);
  await assertRejects(
    () =>
      sample({
        config: model.config,
        timeConditioned: false,
        generateMasked,
        dispose() {},
      } as never, { ...options, prng: prng(0) }),
    RangeError,
    "temperature 0 (greedy) needs the JavaScript sampler, so a model whose forward() returns logits; this device generator's is asynchronous or missing and it draws at a temperature > 0 only: sample it on tfjs or the CPU engine, or give a small temperature such as 0.01",
  );
});

Deno.test("sample() refuses a length or a prompt's rows over the model's context length before allocating (length 1e9 failed on V8's array length)", async () => {
  const schedule = absorbingBeta({ steps: 10 });
  const model = new PositionDenoiser(); // context 64
  for (const length of [65, 1e9, 2 ** 53 - 1]) {
    await assertRejects(
      () => sample(model, { schedule, maskId: MASK, prng: prng(0), length }),
      RangeError,
      `length must be at most the model's context length 64, got ${length}`,
    );
  }
  await assertRejects(
    () =>
      sample(model, {
        schedule,
        maskId: MASK,
        prng: prng(0),
        prompt: new Int32Array(2 * 65).fill(MASK),
        batchSize: 2,
      }),
    RangeError,
    "the prompt's rows must be at most the model's context length 64, got 65",
  );
  assertEquals(model.calls, 0);
  // The bound is closed: a row of exactly the context is sampled.
  for (
    const o of [{ length: 64 }, { prompt: new Int32Array(64).fill(MASK) }]
  ) {
    const out = await sample(model, {
      schedule,
      maskId: MASK,
      prng: prng(0),
      steps: 2,
      ...o,
    });
    assertEquals(out.tokens.length, 64);
  }
});

Deno.test("sample() refuses a batchSize that is not a positive integer and an empty prompt, naming them", async () => {
  // batchSize 0 returned no rows; -1 and 1.5 failed inside a typed array or tfjs.
  const schedule = absorbingBeta({ steps: 10 });
  for (const batchSize of [0, -1, 1.5, NaN]) {
    await assertRejects(
      () =>
        sample(constant(), {
          schedule,
          maskId: MASK,
          prng: prng(0),
          length: 4,
          batchSize,
        }),
      RangeError,
      `batchSize must be a positive integer, got ${batchSize}`,
    );
  }
  await assertRejects(
    () =>
      sample(constant(), {
        schedule,
        maskId: MASK,
        prng: prng(0),
        prompt: new Int32Array(0),
      }),
    RangeError,
    "prompt is empty: give at least one id per row",
  );
});

/**
 * Per position of a positionAlphaBar run, the reveal counts of steps
 * t = T..2 against Binomial(masked, r_t) with r_t = (ᾱ_s − ᾱ_t)/(1 − ᾱ_t)
 * of `curves`: a χ² z-score per position (a position whose ᾱ_t is 1 must
 * reveal all its masks at once: asserted, z 0).
 */
function positionZ(
  steps: SampleStep[],
  curves: ((t: number) => number)[],
  B: number,
  T: number,
): number[] {
  const L = curves.length;
  let before: Int32Array = new Int32Array(B * L).fill(MASK);
  const chi2 = curves.map(() => 0), df = curves.map(() => 0);
  steps.forEach((step, k) => {
    const t = T - k, s = t - 1;
    for (let i = 0; i < L; i++) {
      let m = 0, c = 0;
      for (let r = 0; r < B; r++) {
        if (before[r * L + i] !== MASK) continue;
        m++;
        if (step.tokens[r * L + i] !== MASK) c++;
      }
      const aT = curves[i](t), aS = curves[i](s);
      if (aT === 1) {
        assertEquals(c, m, `position ${i} at t = ${t}: ${c} of ${m} revealed`);
        continue;
      }
      const rate = (aS - aT) / (1 - aT);
      if (s > 0 && m > 0) {
        chi2[i] += (c - m * rate) ** 2 / (m * rate * (1 - rate));
        df[i]++;
      } else assertEquals(c, m); // the last step reveals everything
    }
    before = step.tokens;
  });
  return chi2.map((x, i) => df[i] > 0 ? chiZ(x, df[i]) : 0);
}

Deno.test("sample() with positionAlphaBar reveals each position with its own posterior (ᾱ_s − ᾱ_t)/(1 − ᾱ_t), and a position with ᾱ_t = 1 at once; near misses fail", async () => {
  // Three positions on three clocks, the schedule (1 − t/T) only the first's:
  // position 0 reveals with 1/t, position 1 (ᾱ = 1 − (t/T)²) with
  // 1 − (t − 1)²/t², position 2 (ᾱ ≡ 1, never noised) at the first step.
  const T = 10, L = 3, B = 3000;
  const curves = [
    (t: number) => 1 - t / T,
    (t: number) => 1 - (t / T) ** 2,
    (_t: number) => 1,
  ];
  const run = async (alphaBar: (i: number, t: number) => number) => {
    const steps: SampleStep[] = [];
    await sample(constant(), {
      schedule: absorbingBeta({ steps: T }),
      maskId: MASK,
      prng: prng(11),
      length: L,
      batchSize: B,
      cache: true,
      positionAlphaBar: alphaBar,
      onStep: (x) => steps.push(x),
    });
    return positionZ(steps, curves, B, T);
  };
  // Per position (0 and 1), the reveal counts' χ² on 9 degrees of freedom
  // as a z-score, < 4.5 (p ≈ 7e-6 under the law). The near miss: each
  // clock read one step late (nothing revealed at t = T, then each step
  // with the rate of the step before); its power is asserted per position.
  const good = await run((i, t) => curves[i](t));
  const lateCurve = (i: number) => (t: number) => curves[i](Math.min(T, t + 1));
  const rateOf = (a: (t: number) => number) => (t: number) =>
    (a(t - 1) - a(t)) / (1 - a(t));
  for (const i of [0, 1]) {
    assert(good[i] < 4.5, `position ${i}: reveals z ${good[i]}`);
    const power = revealPower(
      B,
      rateOf(curves[i]),
      rateOf(lateCurve(i)),
      T,
    );
    if (Deno.env.get("SAMPLING_REPORT")) console.log({ i, z: good[i], power });
    assert(
      power >= 0.99,
      `position ${i}: power ${power} against one step late`,
    );
  }
  const late = await run((i, t) => lateCurve(i)(t));
  if (Deno.env.get("SAMPLING_REPORT")) console.log({ late });
  for (const i of [0, 1]) {
    assert(late[i] > 4.5, `position ${i} one step late: reveals z ${late[i]}`);
  }
  // The last step reveals what is left even where a clock never reaches
  // ᾱ = 1 (here ᾱ_0 = 0.5): no mask is returned (`s > 0` → `s >= 0` drew
  // a reveal there too and survived).
  const out = await sample(constant(), {
    schedule: absorbingBeta({ steps: T }),
    maskId: MASK,
    prng: prng(12),
    length: L,
    batchSize: 100,
    positionAlphaBar: (_i, t) => 0.5 * (1 - t / T),
  });
  assert(!out.tokens.includes(MASK));
});

Deno.test("sample() refuses a positionAlphaBar value that is not a probability in [0, 1], at any position and visited step, before the first forward pass", async () => {
  // A NaN gave NaN reveal chances and no error.
  const T = 10, L = 4;
  const good = (_i: number, t: number) => 1 - t / T;
  for (const bad of [NaN, 1.5, -0.1, Infinity]) {
    for (const [at, atT] of [[3, 0], [0, T], [2, 5]]) {
      const model = new PositionDenoiser();
      await assertRejects(
        () =>
          sample(model, {
            schedule: absorbingBeta({ steps: T }),
            maskId: MASK,
            prng: prng(0),
            length: L,
            positionAlphaBar: (i, t) =>
              i === at && t === atT ? bad : good(i, t),
          }),
        RangeError,
        `positionAlphaBar(${at}, ${atT}) is ${bad}: it must be a probability in [0, 1]`,
      );
      assertEquals(model.calls, 0);
    }
  }
  // Both ends of [0, 1] are probabilities.
  const out = await sample(new PositionDenoiser(), {
    schedule: absorbingBeta({ steps: T }),
    maskId: MASK,
    prng: prng(0),
    length: L,
    positionAlphaBar: (i, t) => (i === 0 ? 1 : t === T ? 0 : good(i, t)),
  });
  assert(!out.tokens.includes(MASK));
});

Deno.test("sample() tells the model t/T of each visited step and numbers the steps 1..⌈L/block⌉·S, a short last block included", async () => {
  // Mutation pass of 2026-12-06: the model's time t·T for t/T, the step
  // count 0-based, and ⌊L/block⌋ blocks in `steps` survived.
  const T = 12, S = 4, L = 5, block = 2;
  const times: number[][] = [];
  const model = {
    config: { kind: "bidirectional" as const, vocabSize: V, contextLength: 8 },
    timeConditioned: true,
    dispose() {},
    forward: (x: tf.Tensor2D, o?: { t?: tf.Tensor1D }) => {
      times.push(Array.from(o!.t!.dataSync()));
      return tf.zeros([...x.shape, V]) as tf.Tensor3D;
    },
  };
  const seen: SampleStep[] = [];
  const out = await sample(model, {
    schedule: cosineBeta({ steps: T }),
    maskId: MASK,
    prng: prng(3),
    length: L,
    batchSize: 2,
    steps: S,
    blockLength: block,
    onStep: (s) => seen.push(s),
  });
  // Three blocks (2, 2, 1), each over the grid round(T(S − k)/S) = 12, 9, 6, 3.
  assertEquals(
    seen.map((s) => s.step),
    Array.from({ length: 12 }, (_, k) => k + 1),
  );
  assert(seen.every((s) => s.steps === 3 * S));
  assertEquals(seen.at(-1)!.forwardPasses, out.forwardPasses);
  assertEquals(out.forwardPasses, times.length);
  const grid = [12, 9, 6, 3].map((t) => t / T);
  for (const t of times) {
    assertEquals(t.length, 2);
    assert(grid.some((g) => Math.abs(t[0] - g) < 1e-7), `t ${t}`);
    assertEquals(t[0], t[1]);
  }
  // A block's first step always calls the network (its positions are all
  // masked): t = 1 three times.
  assertEquals(times.filter((t) => t[0] === 1).length, 3);
});

Deno.test("sample() with onStep on a device generator reports steps 1..S and the passes summed over its calls", async () => {
  // Mutation pass of 2026-12-06: the count starting at 1, `-=` for `+=`,
  // and step k − 1, k + 2 or k for k + 1 survived.
  const passes = [3, 1, 4, 1, 5];
  let call = 0;
  const gen = {
    timeConditioned: true,
    generateMasked: (o: MaskedGenerationOptions) =>
      Promise.resolve({
        tokens: (o.prompt ?? new Int32Array(o.batchSize * o.length)).slice(),
        forwardPasses: passes[call++],
        syncs: 1,
      }),
  };
  const seen: SampleStep[] = [];
  const out = await sample(gen, {
    schedule: cosineBeta({ steps: 10 }),
    maskId: MASK,
    prng: prng(0),
    length: 3,
    steps: 5,
    onStep: (s) => seen.push(s),
  });
  assertEquals(seen.map((s) => s.step), [1, 2, 3, 4, 5]);
  assert(seen.every((s) => s.steps === 5));
  assertEquals(seen.map((s) => s.forwardPasses), [3, 4, 8, 9, 14]);
  assertEquals(out.forwardPasses, 14);
});

Deno.test("sample() makes no forward pass for a prompt with nothing masked, and reveals all at once where ᾱ_t = 1", async () => {
  // Mutation pass of 2026-12-06: `eligible.length > 0` → `>= 0` (a pass per
  // step with nothing to reveal) and `aT >= 1` → `aT > 1` (0/0: confidence
  // revealed nothing until the last step) survived.
  for (const strategy of ["ancestral", "confidence"] as const) {
    const m = constant();
    const prompt = Int32Array.of(0, 1, 2, 3, 4, 0);
    const out = await sample(m, {
      schedule: absorbingBeta({ steps: 5 }),
      maskId: MASK,
      prng: prng(0),
      prompt,
      batchSize: 2,
      strategy,
    });
    assertEquals([out.tokens, out.forwardPasses, m.calls], [prompt, 0, 0]);
    // No noise at any step (ᾱ ≡ 1): a masked token is revealed at the first.
    const still: DiscreteSchedule = {
      name: "still",
      steps: 4,
      beta: () => 0,
      alphaBar: () => 1,
    };
    const seen: SampleStep[] = [];
    await sample(constant(), {
      schedule: still,
      maskId: MASK,
      prng: prng(0),
      length: 4,
      strategy,
      onStep: (s) => seen.push(s),
    });
    assert(!seen[0].tokens.includes(MASK), `${strategy}: ${seen[0].tokens}`);
  }
});

Deno.test("greedy confidence sampling ranks by the probability at temperature 1, where temperature 2 would rank the other way", async () => {
  // Position 0: logits (2, 0, 0, 0, 0): p = e²/(e² + 4) ≈ 0.649 at
  // temperature 1, e/(e + 4) ≈ 0.405 at 2. Position 1: (1.6, 1.5, −30, …):
  // 1/(1 + e^−0.1) ≈ 0.525 at 1, 1/(1 + e^−0.05) ≈ 0.512 at 2. One of the
  // two is revealed at the first step: position 0 (mutation pass of
  // 2026-12-06: the ranking's temperature 1 → 2 revealed position 1).
  const rows = [
    [2, 0, 0, 0, 0, 0],
    [1.6, 1.5, -30, -30, -30, 0],
  ];
  const model = {
    config: { kind: "bidirectional" as const, vocabSize: V, contextLength: 8 },
    timeConditioned: false,
    dispose() {},
    forward: (x: tf.Tensor2D) =>
      tf.tensor3d(rows.flat(), [1, 2, V]).tile([
        x.shape[0],
        1,
        1,
      ]) as tf.Tensor3D,
  };
  const p = (row: number[], temp: number) =>
    Math.exp(row[0] / temp) /
    row.slice(0, 5).reduce((s, x) => s + Math.exp(x / temp), 0);
  assert(p(rows[0], 1) > p(rows[1], 1) && p(rows[0], 2) < p(rows[1], 2));
  const seen: SampleStep[] = [];
  const out = await sample(model, {
    schedule: revealing(() => 0.5, 2),
    maskId: MASK,
    prng: prng(0),
    length: 2,
    strategy: "confidence",
    temperature: 0,
    onStep: (s) => seen.push(s),
  });
  assertEquals(Array.from(seen[0].tokens), [0, MASK]);
  assertEquals(Array.from(out.tokens), [0, 0]);
});
