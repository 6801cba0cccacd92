import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertThrows,
} from "@std/assert";
import {
  absorbingBeta,
  type ContinuousSchedule,
  cosineAlpha,
  cosineBeta,
  type DiscreteSchedule,
  discretize,
  linearAlpha,
  linearBeta,
  logLinear,
} from "./schedule.ts";

const continuous: ContinuousSchedule[] = [
  logLinear(),
  logLinear({ eps: 0.1 }),
  linearAlpha(),
  cosineAlpha(),
];
const discrete: DiscreteSchedule[] = [
  absorbingBeta({ steps: 1000 }),
  absorbingBeta({ steps: 7 }),
  linearBeta({ steps: 50, start: 0.01, end: 0.2 }),
  cosineBeta({ steps: 100 }),
  ...continuous.map((s) => discretize(s, { steps: 64 })),
];

for (const s of continuous) {
  Deno.test(`${s.name}: alpha falls from 1 and alphaPrime is its derivative`, () => {
    assertEquals(s.alpha(0), 1);
    let prev = 1;
    for (let i = 1; i <= 100; i++) {
      const t = i / 100;
      const a = s.alpha(t);
      assert(a <= prev && a >= 0, `alpha(${t}) = ${a}`);
      prev = a;
    }
    for (const t of [0.01, 0.2, 0.5, 0.77, 0.99]) {
      const h = 1e-6;
      const fd = (s.alpha(t + h) - s.alpha(t - h)) / (2 * h);
      assertAlmostEquals(s.alphaPrime(t), fd, 1e-6);
    }
    assertThrows(() => s.alpha(1.5), RangeError, "[0, 1]");
  });
}

for (const s of discrete) {
  Deno.test(`${s.name}: alphaBar is the running product of 1 − beta and reaches 0 where it should`, () => {
    assertEquals(s.alphaBar(0), 1);
    let prod = 1;
    for (let t = 1; t <= s.steps; t++) {
      const b = s.beta(t);
      assert(b >= 0 && b <= 1, `beta(${t}) = ${b}`);
      prod *= 1 - b;
      assertAlmostEquals(s.alphaBar(t), prod, 1e-9);
    }
    assertThrows(() => s.beta(0), RangeError, `[1, ${s.steps}]`);
    assertThrows(() => s.alphaBar(s.steps + 1), RangeError);
  });
}

Deno.test("absorbingBeta() is D3PM's 1/(T − t + 1), with alphaBar(t) = 1 − t/T", () => {
  const s = absorbingBeta({ steps: 10 });
  for (let t = 1; t <= 10; t++) {
    assertAlmostEquals(s.beta(t), 1 / (10 - t + 1), 1e-12);
    assertAlmostEquals(s.alphaBar(t), 1 - t / 10, 1e-12);
  }
});

Deno.test("linearBeta() is DDPM's linspace(start, end, T): beta(1) = start, beta(T) = end, equal steps between", () => {
  // Closed form, 1e-12: beta(t) = start + (end − start)(t − 1)/(T − 1) and
  // alphaBar(t) = Π_{s ≤ t} (1 − beta(s)). Catches an off-by-one grid
  // (t/T, or t/(T − 1)), which the running-product test above cannot see.
  const T = 50, start = 0.01, end = 0.2;
  const s = linearBeta({ steps: T, start, end });
  let prod = 1;
  for (let t = 1; t <= T; t++) {
    const beta = start + ((end - start) * (t - 1)) / (T - 1);
    assertAlmostEquals(s.beta(t), beta, 1e-12, `beta(${t})`);
    prod *= 1 - beta;
    assertAlmostEquals(s.alphaBar(t), prod, 1e-12, `alphaBar(${t})`);
  }
  assertAlmostEquals(s.beta(1), start, 1e-15);
  assertAlmostEquals(s.beta(T), end, 1e-12);
});

Deno.test("linearBeta({ steps: 1 }) is its last step: beta(1) = end, not numpy's linspace(start, end, 1) = start", () => {
  // Documented choice (see linearBeta): beta(T) = end for every T.
  const s = linearBeta({ steps: 1, start: 0.1, end: 0.3 });
  assertAlmostEquals(s.beta(1), 0.3, 1e-15);
  assertAlmostEquals(s.alphaBar(1), 0.7, 1e-15);
  assertEquals(s.alphaBar(0), 1);
  // T = 2 is the plain linspace: start then end.
  const two = linearBeta({ steps: 2, start: 0.1, end: 0.3 });
  assertAlmostEquals(two.beta(1), 0.1, 1e-15);
  assertAlmostEquals(two.beta(2), 0.3, 1e-15);
  assertAlmostEquals(two.alphaBar(2), 0.9 * 0.7, 1e-15);
});

Deno.test("cosineBeta() follows the Nichol–Dhariwal curve and ends fully noised", () => {
  const s = cosineBeta({ steps: 1000, s: 0.008 });
  const f = (t: number) =>
    Math.cos(((t / 1000 + 0.008) / 1.008) * Math.PI / 2) ** 2;
  for (const t of [1, 100, 500, 900]) {
    assertAlmostEquals(s.alphaBar(t), f(t) / f(0), 1e-9);
  }
  assertEquals(s.alphaBar(1000), 0);
});

Deno.test("discretize() samples alpha on the grid and forces alphaBar(T) = 0", () => {
  const s = discretize(logLinear({ eps: 1e-3 }), { steps: 100 });
  assertAlmostEquals(s.alphaBar(30), 1 - 0.999 * 0.3, 1e-12);
  assertEquals(s.alphaBar(100), 0);
  assertEquals(s.beta(100), 1);
});

Deno.test("schedule factories reject bad options with one-line errors", () => {
  assertThrows(
    () => logLinear({ eps: 2 }),
    RangeError,
    "eps must be in (0, 1), got 2",
  );
  assertThrows(
    () => absorbingBeta({ steps: 0 }),
    RangeError,
    "steps must be a positive integer, got 0",
  );
  assertThrows(
    () => linearBeta({ start: -1 }),
    RangeError,
    "start must be in [0, 1], got -1",
  );
  assertThrows(() => cosineBeta({ s: -0.1 }), RangeError, "s must be ≥ 0");
});

// Mutation pass (docs/testing.md, "Mutation testing"): each assertion below
// kills a mutant that survived the tests above.
Deno.test("logLinear() defaults to MDLM's eps 1e-3 and rejects eps 0 and 1; cosineAlpha(1) is exactly 0", () => {
  // alpha(1) = 1 − (1 − eps) = eps, to 1e-15 (kills the default 1e-3 → 0.0011).
  assertAlmostEquals(logLinear().alpha(1), 1e-3, 1e-15);
  assertEquals(logLinear().name, "logLinear(eps=0.001)");
  // Both ends of (0, 1) are open (kills `eps > 0` → `>=`, `eps < 1` → `<=`
  // and `< 1` → `< 2`).
  for (const eps of [0, 1, 1.5]) {
    assertThrows(() => logLinear({ eps }), RangeError, "eps must be in (0, 1)");
  }
  // Exactly 0, not cos(π/2) = 6.1e-17 (kills `t === 1` → `t === 2`).
  assertEquals(cosineAlpha().alpha(1), 0);
});

Deno.test("a discrete schedule that is fully masked before T corrupts with probability 1 afterwards", () => {
  // linearBeta with start = end = 1: alphaBar = [1, 0, 0, 0]; beta(t) for
  // t ≥ 2 is the 0/0 case, defined as 1 (kills the zero test reading
  // alphaBar[t − 2], which gives NaN, and `? 1` → `? 0` / `? 2`).
  const s = linearBeta({ steps: 3, start: 1, end: 1 });
  assertEquals([0, 1, 2, 3].map((t) => s.alphaBar(t)), [1, 0, 0, 0]);
  assertEquals([1, 2, 3].map((t) => s.beta(t)), [1, 1, 1]);
});

Deno.test("absorbingBeta() has exactly T steps, D3PM's T = 1000 by default", () => {
  // Kills the default 1000 → 999 / 1001 and a table one entry too long
  // (`steps + 1` → `steps + 2`, which adds a step T + 1).
  const d = absorbingBeta();
  assertEquals(d.steps, 1000);
  assertAlmostEquals(d.alphaBar(999), 0.001, 1e-15);
  const s = absorbingBeta({ steps: 10 });
  assertEquals(s.steps, 10);
  assertThrows(() => s.alphaBar(11), RangeError, "[0, 10]");
});

Deno.test("linearBeta(), cosineBeta() and discretize() default to DDPM's, Nichol–Dhariwal's and T = 1000, with exactly T steps and closed ranges", () => {
  // DDPM: T 1000, β from 1e-4 to 0.02; Nichol–Dhariwal: T 1000, s 0.008
  // (closed forms, 1e-15 and 1e-12). Mutation pass (docs/testing.md): kills
  // the defaults ± 1 or × 1.1, linearBeta's table one entry too long, and
  // the range checks `v >= 0` → `> 0`, `v <= 1` → `<= 2`, `s >= 0` → `> 0`.
  const d = linearBeta();
  assertEquals(d.steps, 1000);
  assertAlmostEquals(d.beta(1), 1e-4, 1e-15);
  assertAlmostEquals(d.beta(1000), 0.02, 1e-15);
  assertEquals(linearBeta({ steps: 10 }).steps, 10);
  assertEquals(linearBeta({ steps: 4, start: 0, end: 1 }).beta(1), 0);
  assertThrows(
    () => linearBeta({ end: 1.5 }),
    RangeError,
    "end must be in [0, 1]",
  );
  const c = cosineBeta();
  assertEquals(c.steps, 1000);
  const f = (t: number) =>
    Math.cos(((t / 1000 + 0.008) / 1.008) * Math.PI / 2) ** 2;
  assertAlmostEquals(c.alphaBar(500), f(500) / f(0), 1e-12);
  const s0 = cosineBeta({ steps: 4, s: 0 });
  assertAlmostEquals(s0.alphaBar(2), Math.cos(Math.PI / 4) ** 2, 1e-12);
  // discretize: T 1000 by default, exactly T steps.
  assertEquals(discretize(linearAlpha()).steps, 1000);
  assertEquals(discretize(linearAlpha(), { steps: 10 }).steps, 10);
});
