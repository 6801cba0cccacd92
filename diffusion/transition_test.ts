import { prng, sampleCategorical } from "@d3pm/core";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertThrows,
} from "@std/assert";
import {
  absorbingBeta,
  cosineBeta,
  discretize,
  linearBeta,
  logLinear,
} from "./schedule.ts";
import {
  absorbing,
  matrixTransition,
  type Transition,
  uniform,
} from "./transition.ts";

const V = 5;
const T = 12;
const schedules = [
  absorbingBeta({ steps: T }),
  linearBeta({ steps: T, start: 0.05, end: 0.3 }),
  cosineBeta({ steps: T }),
  discretize(logLinear(), { steps: T }),
];
const cases: Transition[] = schedules.flatMap((s) => [
  absorbing(s, { numStates: V, maskId: V - 1 }),
  absorbing(s, { numStates: V, maskId: 0 }),
  uniform(s, { numStates: V }),
]);

function close(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  tol = 1e-12,
  what = "",
) {
  assertEquals(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    assert(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

function rowSums(m: Float64Array): number[] {
  return Array.from(
    { length: V },
    (_, i) => m.subarray(i * V, (i + 1) * V).reduce((s, x) => s + x, 0),
  );
}

for (const q of cases) {
  const name = `${q.kind}(mask ${q.maskId ?? "-"}) ${q.schedule!.name}`;
  const ref = matrixTransition(
    Array.from({ length: T }, (_, i) => q.step(i + 1)),
    { numStates: V },
  );

  Deno.test(`${name}: every Q_t and Q̄_t is row-stochastic and Q̄_0 = I`, () => {
    for (let t = 1; t <= T; t++) {
      close(rowSums(q.step(t)), new Array(V).fill(1), 1e-12, `Q_${t}`);
    }
    for (let t = 0; t <= T; t++) {
      close(rowSums(q.cumulative(t)), new Array(V).fill(1), 1e-12, `Q̄_${t}`);
    }
    const eye = new Float64Array(V * V);
    for (let i = 0; i < V; i++) eye[i * V + i] = 1;
    close(q.cumulative(0), eye);
  });

  Deno.test(`${name}: the closed-form Q̄_t equals the product of the steps`, () => {
    for (let t = 0; t <= T; t++) {
      close(q.cumulative(t), ref.cumulative(t), 1e-12, `Q̄_${t}`);
    }
  });

  Deno.test(`${name}: q(x_T | x_0) is the stationary distribution when alphaBar(T) = 0`, () => {
    if (q.schedule!.alphaBar(T) !== 0) {
      // linearBeta over 12 steps has not mixed; the limit holds as T grows.
      const long = q.kind === "uniform"
        ? uniform(linearBeta({ steps: 2000, start: 0.05, end: 0.3 }), {
          numStates: V,
        })
        : absorbing(linearBeta({ steps: 2000, start: 0.05, end: 0.3 }), {
          numStates: V,
          maskId: q.maskId!,
        });
      for (let x0 = 0; x0 < V; x0++) {
        close(long.cumulativeRow(x0, 2000), long.stationary(), 1e-9);
      }
      return;
    }
    for (let x0 = 0; x0 < V; x0++) {
      close(q.cumulativeRow(x0, T), q.stationary(), 1e-9, `x0=${x0}`);
    }
  });

  Deno.test(`${name}: columns, p Q̄_t and posteriors match the dense reference`, () => {
    const r = prng(5);
    for (let t = 1; t <= T; t++) {
      const p = Array.from({ length: V }, () => r.next());
      const z = p.reduce((s, x) => s + x, 0);
      const pn = p.map((x) => x / z);
      close(q.cumulativeApply(pn, t), ref.cumulativeApply(pn, t), 1e-12);
      const pt = ref.cumulativeApply(pn, t); // marginal of x_t
      for (let xt = 0; xt < V; xt++) {
        close(q.stepColumn(xt, t), ref.stepColumn(xt, t), 1e-12);
        if (pt[xt] === 0) {
          assertThrows(() => q.posterior(xt, pn, t), RangeError, "impossible");
          continue;
        }
        close(q.posterior(xt, pn, t), ref.posterior(xt, pn, t), 1e-12);
      }
    }
  });

  Deno.test(`${name}: the posterior is Bayes' rule on the joint q(x_{t−1}, x_t | x_0)`, () => {
    for (let t = 1; t <= T; t++) {
      for (let x0 = 0; x0 < V; x0++) {
        const onehot = new Float64Array(V);
        onehot[x0] = 1;
        const prev = q.cumulativeRow(x0, t - 1);
        const qt = q.cumulativeRow(x0, t);
        const step = q.step(t);
        for (let xt = 0; xt < V; xt++) {
          if (qt[xt] < 1e-15) continue; // x_t impossible given x_0
          const want = Array.from(
            { length: V },
            (_, j) => (prev[j] * step[j * V + xt]) / qt[xt],
          );
          close(
            q.posterior(xt, onehot, t),
            want,
            1e-9,
            `t=${t} x0=${x0} xt=${xt}`,
          );
        }
      }
    }
  });

  Deno.test(`${name}: noise() draws x_t with the frequencies of q(x_t | x_0)`, () => {
    const r = prng(11);
    const t = Math.ceil(T / 2);
    const n = 20000;
    const x0 = new Int32Array(n).fill(2);
    const counts = new Array(V).fill(0);
    for (const x of q.noise(x0, t, r)) counts[x]++;
    const want = q.cumulativeRow(2, t);
    for (let j = 0; j < V; j++) {
      const sd = Math.sqrt((want[j] * (1 - want[j])) / n);
      assert(
        Math.abs(counts[j] / n - want[j]) <= 5 * sd + 1e-12,
        `state ${j}: ${counts[j] / n} vs ${want[j]}`,
      );
    }
  });
}

Deno.test("absorbing posterior keeps x_0 with probability (ᾱ_{t−1} − ᾱ_t)/(1 − ᾱ_t) given a mask", () => {
  const s = absorbingBeta({ steps: 1000 });
  const q = absorbing(s, { numStates: 6, maskId: 5 });
  const x0 = Float64Array.of(0, 0, 1, 0, 0, 0);
  for (const t of [1, 2, 10, 999, 1000]) {
    const post = q.posterior(5, x0, t);
    assertAlmostEquals(post[2], 1 / t, 1e-12);
    assertAlmostEquals(post[5], 1 - 1 / t, 1e-12);
  }
});

Deno.test("matrixTransition() rejects matrices that are not row-stochastic", () => {
  assertThrows(
    () => matrixTransition([Float64Array.of(0.5, 0.6, 0, 1)], { numStates: 2 }),
    RangeError,
    "row 0 of Q_1 sums to 1.1",
  );
  assertThrows(
    () => matrixTransition([Float64Array.of(1)], { numStates: 2 }),
    RangeError,
    "expected 4",
  );
  assertThrows(
    () => absorbing(absorbingBeta(), { numStates: 4, maskId: 4 }),
    RangeError,
    "maskId must be in [0, 4)",
  );
});

Deno.test("sampleCategorical() draws in float64 with the given frequencies", () => {
  const r = prng(2);
  const w = [1e-3, 0, 2, 7];
  const counts = [0, 0, 0, 0];
  const n = 50000;
  for (let i = 0; i < n; i++) counts[sampleCategorical(w, r)]++;
  const total = w.reduce((s, x) => s + x, 0);
  w.forEach((x, i) => {
    const p = x / total;
    assert(
      Math.abs(counts[i] / n - p) <= 5 * Math.sqrt((p * (1 - p)) / n) + 1e-12,
      `${i}`,
    );
  });
  assertEquals(counts[1], 0);
  assertThrows(() => sampleCategorical([0, 0], r), RangeError, "not all zero");
  assertThrows(() => sampleCategorical([1, NaN], r), RangeError);
});
