import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { prng } from "@d3pm/core";
import {
  perplexityInterval,
  perSampleNll,
  studentT975,
  unigramJsd,
} from "./quality.ts";

// Synthetic per-sample NLLs (nats per token).
const NLLS = [5.1, 5.9, 4.7, 6.3, 5.5, 5.0, 6.1, 5.4];

Deno.test("perplexityInterval() is exp of the t-interval of the mean per-sample NLL (closed form)", () => {
  const m = NLLS.length;
  const mean = NLLS.reduce((a, b) => a + b) / m;
  const s2 = NLLS.reduce((a, x) => a + (x - mean) ** 2, 0) / (m - 1);
  const half = 2.365 * Math.sqrt(s2 / m); // t(0.975, 7)
  const r = perplexityInterval(NLLS);
  // Catches: the PPL as the mean of per-sample PPLs (it is e^(mean NLL)).
  assertAlmostEquals(r.genPpl, Math.exp(mean), 1e-9);
  assert(
    Math.abs(r.genPpl - NLLS.reduce((a, x) => a + Math.exp(x), 0) / m) > 1,
  );
  // Catches: variance over m instead of m − 1, z instead of t, the interval
  // on the PPLs rather than mapped from the NLL's.
  assertAlmostEquals(r.low, Math.exp(mean - half), 1e-9);
  assertAlmostEquals(r.high, Math.exp(mean + half), 1e-9);
  assertAlmostEquals(r.stderr, Math.sqrt(s2 / m), 1e-12);
  assert(r.samples === m);
});

Deno.test("perplexityInterval() weights samples by their tokens: equal to the pooled mean, and the delta method by brute force", () => {
  const tokens = [10, 30, 20, 20, 40, 10, 30, 20];
  const r = perplexityInterval(NLLS, tokens);
  // Brute force: the corpus mean is the NLL of every token pooled.
  const pooled: number[] = [];
  NLLS.forEach((x, i) => pooled.push(...Array(tokens[i]).fill(x)));
  const mean = pooled.reduce((a, b) => a + b) / pooled.length;
  assertAlmostEquals(r.nll, mean, 1e-12);
  // The delta method: the sample mean of zᵢ = nᵢ(ℓᵢ − ℓ̄)/n̄ has mean 0 and
  // its standard error is the ratio's.
  const nbar = pooled.length / tokens.length;
  const z = NLLS.map((x, i) => tokens[i] * (x - mean) / nbar);
  const m = z.length;
  const se = Math.sqrt(z.reduce((a, v) => a + v * v, 0) / (m - 1) / m);
  assertAlmostEquals(r.stderr, se, 1e-12);
  // Equal counts give the unweighted interval.
  const same = perplexityInterval(NLLS, NLLS.map(() => 127));
  assertAlmostEquals(same.high, perplexityInterval(NLLS).high, 1e-9);
});

Deno.test("perplexityInterval() covers the true perplexity 95% of the time on few samples (t, not z)", () => {
  // 4000 trials of 5 normal NLLs: the coverage's standard error is 0.0034,
  // and the band ±0.015 is 4.4 of them. The near miss — z = 1.96 for t(4) =
  // 2.776 — covers 0.878, 21 standard errors below the band: power ≈ 1.
  const rng = prng(11);
  const normal = () =>
    Math.sqrt(-2 * Math.log(1 - rng.next())) *
    Math.cos(2 * Math.PI * rng.next());
  const mu = 5, sigma = 0.7, trials = 4000, m = 5;
  let covered = 0, coveredZ = 0;
  for (let t = 0; t < trials; t++) {
    const x = Array.from({ length: m }, () => mu + sigma * normal());
    const r = perplexityInterval(x);
    if (r.low <= Math.exp(mu) && Math.exp(mu) <= r.high) covered++;
    const zHalf = 1.96 * r.stderr;
    if (Math.abs(r.nll - mu) <= zHalf) coveredZ++;
  }
  assert(Math.abs(covered / trials - 0.95) < 0.015, `${covered / trials}`);
  assert(Math.abs(coveredZ / trials - 0.95) > 0.015, `${coveredZ / trials}`);
});

Deno.test("studentT975() follows the table and its expansion beyond 30 degrees of freedom", () => {
  assertAlmostEquals(studentT975(1), 12.706, 1e-9);
  assertAlmostEquals(studentT975(30), 2.042, 1e-9);
  // Exact values: t(0.975, 31) = 2.0395, 40: 2.0211, 120: 1.9799.
  assertAlmostEquals(studentT975(31), 2.0395, 2e-4);
  assertAlmostEquals(studentT975(40), 2.0211, 2e-4);
  assertAlmostEquals(studentT975(120), 1.9799, 2e-4);
  assertThrows(() => studentT975(0), RangeError, "integer ≥ 1");
  assertThrows(() => perplexityInterval([1]), RangeError, "at least 2");
});

/**
 * P(|T| < t) for Student's t with integer ν, in closed form (Abramowitz &
 * Stegun 26.7.3–4, θ = atan(t/√ν)): a finite series in cos²θ.
 */
function tTwoSided(t: number, nu: number): number {
  const th = Math.atan(t / Math.sqrt(nu));
  const c2 = Math.cos(th) ** 2;
  let term = 1, sum = 1;
  if (nu % 2 === 1) {
    for (let k = 1; k <= (nu - 3) / 2; k++) {
      term *= ((2 * k) / (2 * k + 1)) * c2;
      sum += term;
    }
    const tail = nu === 1 ? 0 : Math.sin(th) * Math.cos(th) * sum;
    return (2 / Math.PI) * (th + tail);
  }
  for (let k = 1; k <= (nu - 2) / 2; k++) {
    term *= ((2 * k - 1) / (2 * k)) * c2;
    sum += term;
  }
  return Math.sin(th) * sum;
}

/** t(0.975, ν) by bisection on the closed-form CDF, to ~1e-14. */
function tQuantile975(nu: number): number {
  let lo = 0, hi = 100;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (tTwoSided(mid, nu) < 0.95) lo = mid;
    else hi = mid;
  }
  return lo;
}

Deno.test("studentT975() is within the table's rounding, and its expansion within its next term, of the exact quantile", () => {
  // The reference is exact (bisection on the closed-form CDF; it gives
  // 12.7062047 at ν = 1, 2.0395134 at 31). The table rows are printed to 3
  // decimals, so each is within 5e-4. The 4-term Cornish–Fisher expansion's
  // next term is ≈ 1.6/ν⁴ (1.7e-6 at ν = 31), so the bound 2e-6·(31/ν)⁴.
  // Catches: a table row off by 0.001 or more, a wrong coefficient in the
  // expansion (16 → 15 in the ν⁻² term moves ν = 31 by 8e-5; the sign of
  // 15z in the ν⁻³ term by 5e-6), which the 2e-4 checks above let through.
  for (let nu = 1; nu <= 30; nu++) {
    const err = Math.abs(studentT975(nu) - tQuantile975(nu));
    assert(err <= 5e-4 + 1e-12, `table ν = ${nu}: off by ${err}`);
  }
  for (const nu of [31, 32, 35, 40, 50, 60, 90, 120, 200, 1000]) {
    const err = Math.abs(studentT975(nu) - tQuantile975(nu));
    assert(err <= 2e-6 * (31 / nu) ** 4 + 1e-12, `ν = ${nu}: off by ${err}`);
  }
});

Deno.test("perSampleNll() hands each row to the judge alone, in order", async () => {
  const seen: number[][] = [];
  const judge = (x0: { tokens: Int32Array; batchSize: number }) => {
    seen.push([...x0.tokens]);
    assert(x0.batchSize === 1);
    return Promise.resolve({ nats: x0.tokens[0] / 2, stderr: 0, tokens: 2 });
  };
  const r = await perSampleNll(
    Int32Array.of(2, 9, 9, 4, 8, 8, 6, 7, 7),
    3,
    judge,
  );
  assert(JSON.stringify(seen) === "[[2,9,9],[4,8,8],[6,7,7]]");
  assert(JSON.stringify([...r.nlls]) === "[1,2,3]");
  assert(JSON.stringify([...r.tokens]) === "[2,2,2]");
});

Deno.test("unigramJsd() equals a brute-force Jensen–Shannon divergence over the whole vocabulary", () => {
  const rng = prng(3);
  const V = 12;
  const a = Array.from({ length: 200 }, () => rng.nextInt(V));
  const b = Array.from({ length: 317 }, () => rng.nextInt(V) % 7);
  // Brute force: dense distributions, KL to the midpoint in bits.
  const dist = (xs: number[], skip: Set<number>) => {
    const kept = xs.filter((x) => !skip.has(x));
    return Array.from(
      { length: V },
      (_, v) => kept.filter((x) => x === v).length / kept.length,
    );
  };
  const brute = (skip: Set<number>) => {
    const p = dist(a, skip), q = dist(b, skip);
    let kl1 = 0, kl2 = 0;
    for (let v = 0; v < V; v++) {
      const m = (p[v] + q[v]) / 2;
      if (p[v] > 0) kl1 += p[v] * Math.log2(p[v] / m);
      if (q[v] > 0) kl2 += q[v] * Math.log2(q[v] / m);
    }
    return (kl1 + kl2) / 2;
  };
  // Catches: natural log instead of bits, the midpoint left out (plain KL),
  // the ignored ids kept in one side's total.
  assertAlmostEquals(unigramJsd(a, b), brute(new Set()), 1e-12);
  assertAlmostEquals(
    unigramJsd(a, b, new Set([0, 3])),
    brute(new Set([0, 3])),
    1e-12,
  );
  assertAlmostEquals(unigramJsd(b, a), unigramJsd(a, b), 1e-12);
  assertThrows(
    () => unigramJsd([1, 1], [2], new Set([1])),
    RangeError,
    "samples",
  );
});

Deno.test("perplexityInterval() of 2 samples is the closed form with t₀.₉₇₅(1) = 12.706", () => {
  // Catches `m < 2` → `<= 2` or `< 3` (2 samples refused).
  const q = perplexityInterval([1, 3]);
  const se = Math.sqrt(((1 - 2) ** 2 + (3 - 2) ** 2) / 1) / Math.SQRT2;
  assertAlmostEquals(q.nll, 2, 1e-12);
  assertAlmostEquals(q.stderr, se, 1e-12);
  assertAlmostEquals(q.low, Math.exp(2 - 12.706 * se), 1e-12);
  assertAlmostEquals(q.high, Math.exp(2 + 12.706 * se), 1e-9);
  assertThrows(() => perplexityInterval([1]), RangeError, "at least 2");
});

Deno.test("perSampleNll() takes rows of 2 ids and refuses rows of 1", async () => {
  // Catches `length < 2` → `< 1` (rows of one id judged).
  const r = await perSampleNll(
    Int32Array.of(4, 5),
    2,
    (x0) => Promise.resolve({ nats: x0.tokens[0], stderr: 0, tokens: 1 }),
  );
  assertEquals([...r.nlls], [4]);
  await assertRejects(
    () => perSampleNll(Int32Array.of(4, 5), 1, () => Promise.reject()),
    RangeError,
    "not rows of length 1",
  );
});

Deno.test("unigramJsd() of a single counted id: 1 bit from a disjoint reference, 0 from itself; no counted samples refused", () => {
  // JSD(δ_a, δ_b) = 1 bit for a ≠ b. Catches the emptiness test on the
  // samples as `total === 1` (one counted id refused, none accepted).
  assertAlmostEquals(unigramJsd([1], [2]), 1, 1e-12);
  assertEquals(unigramJsd([3, 9], [3], new Set([9])), 0);
  assertThrows(() => unigramJsd([], [2]), RangeError, "the samples");
  assertThrows(() => unigramJsd([2], []), RangeError, "the reference");
});

Deno.test("perplexityInterval() and unigramJsd() refuse figures and ids that are no NLL, count or token id", () => {
  for (const x of [NaN, Infinity, -1]) {
    assertThrows(
      () => perplexityInterval([4, x, 5]),
      RangeError,
      `perplexityInterval: sample 1's NLL must be a finite number ≥ 0, got ${x}`,
    );
  }
  for (const n of [-3, 0, NaN]) {
    assertThrows(
      () => perplexityInterval([4, 5, 6], [10, n, 10]),
      RangeError,
      `perplexityInterval: sample 1's tokens must be a finite number > 0, got ${n}`,
    );
  }
  // [-1, 2] against [1, 2] gave 0.5 bits.
  assertThrows(
    () => unigramJsd([-1, 2], [1, 2]),
    RangeError,
    "unigramJsd: id -1 at index 0 is not a token id: expected an integer ≥ 0",
  );
  assertThrows(
    () => unigramJsd([1, 2], [1, 2.5]),
    RangeError,
    "unigramJsd: id 2.5 at index 1",
  );
  // An ignored id is never checked.
  assertEquals(unigramJsd([-1, 2], [2], new Set([-1])), 0);
});
