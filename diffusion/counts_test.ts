import * as tf from "@tensorflow/tfjs";
import {
  type LanguageModel,
  prng,
  type Tensor2D,
  type Tensor3D,
} from "@d3pm/core";
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { drawByCount, maskCountLaw } from "./counts.ts";
import { continuousElbo } from "./elbo.ts";
import { mdlmLoss } from "./loss.ts";
import { logLinear } from "./schedule.ts";
import {
  chiSquare,
  chiSquarePower,
  drawFrom,
  histogram,
} from "../core/_test_stats.ts";

/** The χ² tests' level. */
const ALPHA = 1e-4;

await tf.setBackend("cpu");

/** ∫_a^b f by Simpson's rule on n (even) intervals. */
function simpson(f: (x: number) => number, a: number, b: number, n = 4000) {
  const h = (b - a) / n;
  let s = f(a) + f(b);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(a + i * h);
  return (s * h) / 3;
}

function choose(n: number, k: number): number {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c;
}

Deno.test("maskCountLaw: k·w_k against numerical integration of (1/m)·Bin(k; L, m)", () => {
  for (const [l, lo, hi] of [[7, 0.2, 0.9], [7, 0, 0.999], [12, 0.3, 0.8]]) {
    const p = maskCountLaw(l, lo, hi);
    assertAlmostEquals(p.reduce((a, b) => a + b, 0), 1, 1e-12);
    for (let k = 1; k <= l; k++) {
      const wk = simpson(
        (m) => choose(l, k) * m ** (k - 1) * (1 - m) ** (l - k),
        lo,
        hi,
      );
      assertAlmostEquals(p[k - 1], (k * wk) / (l * (hi - lo)), 1e-9);
    }
  }
});

/**
 * A toy cost of predicting token i given which tokens are masked (and the
 * time): it grows with masked neighbours, so context matters.
 */
function toyCost(masked: boolean[], i: number, t: number): number {
  const near = (masked[i - 1] ? 1 : 0) + (masked[i + 1] ? 1 : 0);
  return (1 + 0.7 * near + 0.1 * i) * (1 + 0.5 * t);
}

/**
 * The continuous bound of the toy per token, by brute force: every mask
 * pattern of L tokens, integrated over t on (0, 1], plus the endpoint term.
 */
function exactToyBound(l: number): number {
  const s = logLinear();
  let total = 0;
  for (let bits = 1; bits < 1 << l; bits++) {
    const masked = Array.from({ length: l }, (_, i) => ((bits >> i) & 1) === 1);
    const j = masked.filter(Boolean).length;
    total += simpson(
      (t) => {
        if (t === 0) return 0;
        const m = 1 - s.alpha(t);
        const w = -s.alphaPrime(t) / m;
        let cost = 0;
        for (let i = 0; i < l; i++) {
          if (masked[i]) cost += toyCost(masked, i, t);
        }
        return w * m ** j * (1 - m) ** (l - j) * cost;
      },
      0,
      1,
    );
  }
  const all = new Array(l).fill(true);
  let end = 0;
  for (let i = 0; i < l; i++) end += toyCost(all, i, 1);
  return (total + s.alpha(1) * end) / l;
}

Deno.test("drawByCount: unbiased for the bound, times included (brute force over every mask pattern)", () => {
  const l = 5, b = 50, batches = 400;
  const exact = exactToyBound(l);
  const s = logLinear();
  const x0 = { tokens: new Int32Array(b * l).fill(1), batchSize: b, length: l };
  const rng = prng(11);
  const rows: number[] = [];
  const all = new Array(l).fill(true);
  let end = 0;
  for (let i = 0; i < l; i++) end += toyCost(all, i, 1);
  for (let n = 0; n < batches; n++) {
    const d = drawByCount(x0, s, { maskId: 9, prng: rng });
    for (let r = 0; r < b; r++) {
      const masked = Array.from({ length: l }, (_, i) => d.xt[r * l + i] === 9);
      assertEquals(masked.filter(Boolean).length, d.count[r]);
      let cost = 0;
      for (let i = 0; i < l; i++) {
        if (masked[i]) cost += toyCost(masked, i, d.t[r]);
      }
      rows.push((d.weight[r] * cost + s.alpha(1) * end) / l);
    }
  }
  // Rows within a batch are stratified, so use batch means as the samples.
  const means = Array.from(
    { length: batches },
    (_, n) => rows.slice(n * b, (n + 1) * b).reduce((a, c) => a + c, 0) / b,
  );
  const mean = means.reduce((a, c) => a + c, 0) / batches;
  const sd = Math.sqrt(
    means.reduce((a, c) => a + (c - mean) ** 2, 0) / (batches - 1),
  );
  const stderr = sd / Math.sqrt(batches);
  assert(
    Math.abs(mean - exact) < 4 * stderr,
    `count estimate ${mean} ± ${stderr} vs exact ${exact}`,
  );
  assert(stderr < 0.01 * exact, `stderr ${stderr} too large to test`);
});

Deno.test("drawByCount: the counts follow maskCountLaw and the times their range", () => {
  const l = 6, b = 30, s = logLinear();
  const law = maskCountLaw(l, 1 - s.alpha(0.3), 1 - s.alpha(0.8));
  const hist = new Float64Array(l);
  const rng = prng(4);
  const x0 = { tokens: new Int32Array(b * l).fill(2), batchSize: b, length: l };
  const n = 2000;
  for (let i = 0; i < n; i++) {
    const d = drawByCount(x0, s, {
      maskId: 7,
      prng: rng,
      tMin: 0.3,
      tMax: 0.8,
    });
    for (let r = 0; r < b; r++) {
      hist[d.count[r] - 1]++;
      assert(d.t[r] >= 0.3 && d.t[r] <= 0.8, `t ${d.t[r]}`);
    }
  }
  // Pearson's χ² (df 5), p > 1e-4; stratified draws make it smaller still.
  const fit = chiSquare(hist, law);
  assert(
    fit.p > ALPHA,
    `χ² ${fit.chi2}: ${hist} vs ${law.map((p) => p * n * b)}`,
  );
  // Near misses: times from [0.28, 0.8] (tMin a little low), and every
  // count one too high. The power of the same χ² at n·b draws (noncentral
  // χ², multinomial: the stratified draws only sharpen it) is ≥ 0.99
  // (measured 0.99999999 and 1), and float64 draws from each are rejected.
  const wide = maskCountLaw(l, 1 - s.alpha(0.28), 1 - s.alpha(0.8));
  const high = law.map((_, k) =>
    k === 0 ? 0 : k === l - 1 ? law[k - 1] + law[k] : law[k - 1]
  );
  const rng6 = prng(6);
  const next = () => rng6.next();
  for (const [name, q] of [["tMin 0.28", wide], ["count + 1", high]] as const) {
    const power = chiSquarePower(law, q, n * b, ALPHA);
    assert(power >= 0.99, `power against ${name}: ${power}`);
    const miss = chiSquare(histogram(drawFrom(q, n * b, next), l), law);
    assert(miss.p < ALPHA, `${name}: χ² ${miss.chi2}, p ${miss.p}`);
  }
});

Deno.test("drawByCount: padding is never masked and rows of padding weigh nothing", () => {
  const x0 = {
    tokens: Int32Array.of(3, 3, 0, 0, 0, 0, 0, 0),
    batchSize: 2,
    length: 4,
  };
  const d = drawByCount(x0, logLinear(), {
    maskId: 9,
    prng: prng(2),
    padId: 0,
  });
  assertEquals(Array.from(d.xt.subarray(2)), [0, 0, 0, 0, 0, 0]);
  assert(d.count[0] >= 1 && d.count[0] <= 2);
  assertEquals(d.weight[1], 0);
});

/** A toy denoiser: confident in its left neighbour's id when it is visible. */
function leftCopier(v: number): LanguageModel {
  return {
    config: { kind: "bidirectional", vocabSize: v, contextLength: 32 },
    timeConditioned: false,
    forward: (x: Tensor2D) =>
      tf.tidy(() => {
        const [b, l] = x.shape;
        const left = tf.concat([
          tf.fill([b, 1], v - 1, "int32"),
          x.slice([0, 0], [b, l - 1]),
        ], 1);
        return tf.oneHot(left as Tensor2D, v).mul(3) as Tensor3D;
      }),
    dispose() {},
  };
}

Deno.test("continuousElbo: count and time draws estimate the same bound; counts with less spread", async () => {
  const v = 9, l = 32, b = 8;
  const model = leftCopier(v);
  // Rows where each token often equals its left neighbour.
  const gen = prng(5);
  const tokens = new Int32Array(b * l);
  for (let i = 0; i < tokens.length; i++) {
    tokens[i] = i % l > 0 && gen.next() < 0.6
      ? tokens[i - 1]
      : Math.floor(gen.next() * (v - 1));
  }
  const x0 = { tokens, batchSize: b, length: l };
  const estimate = async (draws: "time" | "count", seed: number) =>
    await continuousElbo(model, x0, {
      schedule: logLinear(),
      maskId: v - 1,
      prng: prng(seed),
      samples: 4,
      draws,
    });
  const spread = async (draws: "time" | "count") => {
    const xs: number[] = [];
    for (let seed = 0; seed < 24; seed++) {
      xs.push((await estimate(draws, seed)).nats);
    }
    const m = xs.reduce((a, c) => a + c, 0) / xs.length;
    const sd = Math.sqrt(
      xs.reduce((a, c) => a + (c - m) ** 2, 0) / (xs.length - 1),
    );
    return { m, sd, stderr: sd / Math.sqrt(xs.length) };
  };
  const byTime = await spread("time");
  const byCount = await spread("count");
  const z = Math.abs(byTime.m - byCount.m) /
    Math.hypot(byTime.stderr, byCount.stderr);
  assert(
    z < 4,
    `time ${byTime.m} ± ${byTime.stderr}, count ${byCount.m} ± ${byCount.stderr}`,
  );
  assert(
    byCount.sd < 0.8 * byTime.sd,
    `sd: count ${byCount.sd}, time ${byTime.sd}`,
  );
});

Deno.test("mdlmLoss: byCount draws estimate the same clipped objective as time draws", async () => {
  const v = 9, l = 32, b = 8;
  const model = leftCopier(v);
  const gen = prng(6);
  const tokens = Int32Array.from(
    { length: b * l },
    () => Math.floor(gen.next() * (v - 1)),
  );
  const x0 = { tokens, batchSize: b, length: l };
  const stats = async (byCount: boolean) => {
    const rng = prng(byCount ? 1 : 2);
    const xs: number[] = [];
    for (let i = 0; i < 200; i++) {
      const loss = mdlmLoss(model, x0, {
        schedule: logLinear(),
        maskId: v - 1,
        prng: rng,
        tMin: 0.3,
        tMax: 0.8,
        byCount,
        training: false,
      });
      xs.push((await loss.data())[0]);
      loss.dispose();
    }
    const m = xs.reduce((a, c) => a + c, 0) / xs.length;
    const sd = Math.sqrt(
      xs.reduce((a, c) => a + (c - m) ** 2, 0) / (xs.length - 1),
    );
    return { m, stderr: sd / Math.sqrt(xs.length) };
  };
  const t = await stats(false), c = await stats(true);
  const z = Math.abs(t.m - c.m) / Math.hypot(t.stderr, c.stderr);
  assert(z < 4, `time ${t.m} ± ${t.stderr}, count ${c.m} ± ${c.stderr}`);
});
