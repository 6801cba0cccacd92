import type { Prng } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertThrows,
} from "@std/assert";
import type { Batch, Blocks } from "@d3pm/data";
import { adamwUpdate } from "@d3pm/backend/fused-ops";
import { AdamW } from "./adamw.ts";
import { warmupCosine } from "./lr_schedule.ts";
import { clipByGlobalNorm } from "./clip.ts";
import { Ema } from "./ema.ts";
import { MetricsLog } from "./metrics.ts";
import {
  checkpointBytes,
  CheckpointError,
  loadCheckpoint,
} from "./checkpoint.ts";
import { train, TrainError } from "./loop.ts";

await tf.setBackend("cpu");

Deno.test("AdamW matches a float64 reference of decoupled weight decay over 20 steps", () => {
  const init = [0.5, -1.2, 2.0, 0.1];
  const p = tf.variable(tf.tensor2d(init, [2, 2]));
  const b = tf.variable(tf.tensor1d([0.3, -0.3]));
  const opt = new AdamW(new Map<string, tf.Variable>([["p", p], ["b", b]]), {
    beta1: 0.9,
    beta2: 0.99,
    eps: 1e-8,
    weightDecay: 0.1,
  });
  // Reference: loss = Σ p² · c + Σ b, so grads are 2c·p and 1.
  const ref = {
    p: [...init],
    b: [0.3, -0.3],
    mp: [0, 0, 0, 0],
    vp: [0, 0, 0, 0],
    mb: [0, 0],
    vb: [0, 0],
  };
  const c = 0.7;
  for (let t = 1; t <= 20; t++) {
    const lr = 0.01 * (1 + (t % 3));
    const gp = tf.tensor2d(ref.p.map((x) => 2 * c * x), [2, 2]);
    const gb = tf.tensor1d([1, 1]);
    opt.step(new Map<string, tf.Tensor>([["p", gp], ["b", gb]]), lr);
    tf.dispose([gp, gb]);
    const upd = (
      x: number[],
      m: number[],
      v: number[],
      g: number[],
      decay: boolean,
    ) => {
      for (let i = 0; i < x.length; i++) {
        m[i] = 0.9 * m[i] + 0.1 * g[i];
        v[i] = 0.99 * v[i] + 0.01 * g[i] ** 2;
        const step = (m[i] / (1 - 0.9 ** t)) /
          (Math.sqrt(v[i] / (1 - 0.99 ** t)) + 1e-8);
        x[i] -= lr * (step + (decay ? 0.1 * x[i] : 0));
      }
    };
    upd(ref.p, ref.mp, ref.vp, ref.p.map((x) => 2 * c * x), true);
    upd(ref.b, ref.mb, ref.vb, [1, 1], false); // 1-D: no decay by default
  }
  const got = p.dataSync();
  ref.p.forEach((x, i) => assertAlmostEquals(got[i], x, 1e-5));
  const gotB = b.dataSync();
  ref.b.forEach((x, i) => assertAlmostEquals(gotB[i], x, 1e-5));
  assertEquals(opt.stepCount, 20);
  opt.dispose();
  tf.dispose([p, b]);
});

Deno.test("AdamW's defaults are β1 0.9, β2 0.95, ε 1e-8, weight decay 0.1 on rank ≥ 2 only (the engines' defaults), in a 5-step float64 reference", () => {
  // Every run trains with these defaults (train/loop.ts passes only what a
  // config sets), and cpu/_setup.ts and webgpu/_setup.ts default to the same
  // numbers, so a changed default here would split tfjs from the engines.
  // Tolerance 1e-6 on O(1) weights (float32). Catches β2 0.999 (Adam's
  // usual default) and decay on biases.
  const p = tf.variable(tf.tensor2d([0.5, -1.2, 2.0, 0.1], [2, 2]));
  const b = tf.variable(tf.tensor1d([0.3, -0.3]));
  const opt = new AdamW(new Map<string, tf.Variable>([["p", p], ["b", b]]));
  const x = [0.5, -1.2, 2.0, 0.1, 0.3, -0.3];
  const m = x.map(() => 0), v = x.map(() => 0);
  for (let t = 1; t <= 5; t++) {
    const g = x.map((xi, i) => (i < 4 ? xi * xi * 3 - 0.5 : 0.2 * t - 1));
    const grads = new Map<string, tf.Tensor>([
      ["p", tf.tensor2d(g.slice(0, 4), [2, 2])],
      ["b", tf.tensor1d(g.slice(4))],
    ]);
    opt.step(grads, 0.05);
    tf.dispose([...grads.values()]);
    for (let i = 0; i < x.length; i++) {
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.95 * v[i] + 0.05 * g[i] ** 2;
      const u = m[i] / (1 - 0.9 ** t) /
        (Math.sqrt(v[i] / (1 - 0.95 ** t)) + 1e-8);
      x[i] -= 0.05 * (u + (i < 4 ? 0.1 * x[i] : 0));
    }
  }
  const got = [...p.dataSync(), ...b.dataSync()];
  x.forEach((xi, i) => assertAlmostEquals(got[i], xi, 1e-6, `param ${i}`));
  assertEquals(
    [opt.beta1, opt.beta2, opt.eps, opt.weightDecay],
    [0.9, 0.95, 1e-8, 0.1],
  );
  opt.dispose();
  tf.dispose([p, b]);
});

Deno.test("adamwUpdate() adds eps to √v̂ (a float64 reference where eps matters) and refuses step 0", () => {
  // The AdamW tests above use eps 1e-8 on gradients of O(1), where ε's sign
  // is below float32. Here eps 0.1 and gradients 0.05–0.3, so m̂/(√v̂ + ε)
  // and m̂/(√v̂ − ε) differ by O(1); 3 steps against a float64 reference,
  // 1e-6. Mutation pass (docs/testing.md): kills `tf.add(√v̂, eps)` →
  // `tf.sub` and the step check `step >= 1` → `>= 0`.
  const g = [[0.2, -0.05], [0.3, 0.1], [-0.1, 0.25]];
  let param: tf.Tensor = tf.tensor1d([0.5, -0.4]);
  let m: tf.Tensor = tf.zeros([2]), v: tf.Tensor = tf.zeros([2]);
  const x = [0.5, -0.4], mr = [0, 0], vr = [0, 0];
  const o = { lr: 0.1, beta1: 0.9, beta2: 0.95, eps: 0.1, weightDecay: 0.2 };
  for (let t = 1; t <= 3; t++) {
    const grad = tf.tensor1d(g[t - 1]);
    const next = adamwUpdate({ param, grad, m, v }, { ...o, step: t });
    tf.dispose([param, grad, m, v]);
    ({ param, m, v } = next);
    for (let i = 0; i < 2; i++) {
      mr[i] = 0.9 * mr[i] + 0.1 * g[t - 1][i];
      vr[i] = 0.95 * vr[i] + 0.05 * g[t - 1][i] ** 2;
      const u = mr[i] / (1 - 0.9 ** t) /
        (Math.sqrt(vr[i] / (1 - 0.95 ** t)) + 0.1);
      x[i] -= 0.1 * (u + 0.2 * x[i]);
    }
  }
  const got = param.dataSync();
  x.forEach((xi, i) => assertAlmostEquals(got[i], xi, 1e-6, `param ${i}`));
  assertThrows(
    () => adamwUpdate({ param, grad: param, m, v }, { ...o, step: 0 }),
    RangeError,
    "step must be an integer ≥ 1, got 0",
  );
  tf.dispose([param, m, v]);
});

/** Float64 AdamW on a flat vector: `decay[i]` says whether entry i decays. */
function adamwReference(
  x0: number[],
  grads: number[][],
  lrs: number[],
  o: { beta1: number; beta2: number; eps: number; weightDecay: number },
  decay: boolean[],
): number[] {
  const x = [...x0], m = x.map(() => 0), v = x.map(() => 0);
  grads.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < x.length; i++) {
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i];
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] ** 2;
      const u = m[i] / (1 - o.beta1 ** t) /
        (Math.sqrt(v[i] / (1 - o.beta2 ** t)) + o.eps);
      x[i] -= lrs[k] * (u + (decay[i] ? o.weightDecay * x[i] : 0));
    }
  });
  return x;
}

Deno.test("AdamW accepts β1 = 0, β2 = 0 and lr 0 (the closed ends of its ranges) in a float64 reference, and refuses β = 1, β > 1 and lr < 0", () => {
  // β ∈ [0, 1) and lr ≥ 0 are half-open / closed ranges: β = 0 is a valid
  // (memoryless) moment, lr 0 a valid step (a warm-up's first: the moments and
  // the step count still advance, so the next step's bias correction uses
  // t = 2). Each optimiser runs 3 steps with lr 0, 0.1, 0.05 against
  // adamwReference, 1e-6 on O(1) weights (float32). Mutation pass
  // (docs/testing.md): kills `x >= 0` → `x > 0`, `x < 1` → `x <= 1` and
  // `1` → `2` in the β check, and `lr < 0` → `lr <= 0`.
  const grads = [[0.4, -0.2, 0.1], [-0.3, 0.5, 0.2], [0.1, 0.1, -0.6]];
  const lrs = [0, 0.1, 0.05];
  for (const [beta1, beta2] of [[0, 0.5], [0.5, 0], [0, 0]]) {
    const o = { beta1, beta2, eps: 1e-8, weightDecay: 0.1 };
    const w = tf.variable(tf.tensor2d([0.5, -1.2], [1, 2]));
    const b = tf.variable(tf.tensor1d([0.3]));
    const opt = new AdamW(
      new Map<string, tf.Variable>([["w", w], ["b", b]]),
      o,
    );
    for (let k = 0; k < 3; k++) {
      const gs = new Map<string, tf.Tensor>([
        ["w", tf.tensor2d(grads[k].slice(0, 2), [1, 2])],
        ["b", tf.tensor1d(grads[k].slice(2))],
      ]);
      opt.step(gs, lrs[k]);
      tf.dispose([...gs.values()]);
    }
    const want = adamwReference([0.5, -1.2, 0.3], grads, lrs, o, [
      true,
      true,
      false,
    ]);
    const got = [...w.dataSync(), ...b.dataSync()];
    want.forEach((x, i) =>
      assertAlmostEquals(got[i], x, 1e-6, `β ${beta1}, ${beta2}: param ${i}`)
    );
    assertEquals(opt.stepCount, 3);
    assertThrows(
      () => opt.step(new Map(), -0.01),
      RangeError,
      "lr must be finite and ≥ 0, got -0.01",
    );
    opt.dispose();
    tf.dispose([w, b]);
  }
  const x = tf.variable(tf.scalar(1));
  for (
    const [k, bad] of [["beta1", 1], ["beta2", 1], ["beta1", 1.5]] as const
  ) {
    assertThrows(
      () => new AdamW(new Map([["x", x]]), { [k]: bad }),
      RangeError,
      `${k} must be in [0, 1), got ${bad}`,
    );
  }
  x.dispose();
});

Deno.test("AdamW.state() → load() into a fresh optimiser resumes bit-identical to an uninterrupted run (from step 0 and step 3); bad states are refused", async () => {
  // Independent of train(): 6 steps uninterrupted (checked against
  // adamwReference, 1e-6) versus k steps, state() and the weights copied into
  // new variables and a new AdamW, load(), then 6 − k more steps: equal bit
  // for bit (the same float32 ops on the same inputs). k = 0 loads a fresh
  // optimiser's state, step 0. Mutation pass (docs/testing.md): kills the
  // load check `state.step < 0` → `<= 0` and `< 1`; also fails with load's
  // `#step = state.step` dropped or its m and v swapped (planted by hand).
  const o = { beta1: 0.8, beta2: 0.9, eps: 1e-8, weightDecay: 0.2 };
  const x0 = [0.5, -1.2, 2.0, 0.1, 0.3, -0.3];
  const grads = [1, 2, 3, 4, 5, 6].map((t) =>
    x0.map((_, i) => Math.sin(1.3 * t + 0.7 * i) * (i < 4 ? 1 : 0.2 * t))
  );
  const lrs = [0.02, 0.05, 0.05, 0.04, 0.03, 0.01];
  const make = (x: number[]) => {
    const vars = new Map<string, tf.Variable>([
      ["p", tf.variable(tf.tensor2d(x.slice(0, 4), [2, 2]))],
      ["b", tf.variable(tf.tensor1d(x.slice(4)))],
    ]);
    return { vars, opt: new AdamW(vars, o) };
  };
  const run = (opt: AdamW, from: number, to: number) => {
    for (let k = from; k < to; k++) {
      const gs = new Map<string, tf.Tensor>([
        ["p", tf.tensor2d(grads[k].slice(0, 4), [2, 2])],
        ["b", tf.tensor1d(grads[k].slice(4))],
      ]);
      opt.step(gs, lrs[k]);
      tf.dispose([...gs.values()]);
    }
  };
  const read = (vars: Map<string, tf.Variable>) => [
    ...vars.get("p")!.dataSync(),
    ...vars.get("b")!.dataSync(),
  ];
  const whole = make(x0);
  run(whole.opt, 0, 6);
  const want = read(whole.vars);
  const decay = x0.map((_, i) => i < 4);
  adamwReference(x0, grads, lrs, o, decay).forEach((x, i) =>
    assertAlmostEquals(want[i], x, 1e-6, `param ${i}`)
  );
  for (const k of [0, 3]) {
    const first = make(x0);
    run(first.opt, 0, k);
    const state = await first.opt.state();
    assertEquals(state.step, k);
    const second = make(read(first.vars));
    second.opt.load(state);
    assertEquals(second.opt.stepCount, k);
    run(second.opt, k, 6);
    assertEquals(read(second.vars), want, `resumed at step ${k}`);
    assertEquals(second.opt.stepCount, 6);
    for (const { vars, opt } of [first, second]) {
      opt.dispose();
      tf.dispose([...vars.values()]);
    }
  }
  const state = await whole.opt.state();
  const bad: [Partial<typeof state>, string][] = [
    [{ step: -1 }, "step must be an integer ≥ 0, got -1"],
    [{ step: 1.5 }, "step must be an integer ≥ 0, got 1.5"],
    [{ m: new Map([["p", state.m.get("p")!]]) }, "m of b is missing"],
    [
      { v: new Map([...state.v, ["b", new Float32Array(3)]]) },
      "v of b is 3 values, expected 2",
    ],
  ];
  for (const [change, msg] of bad) {
    assertThrows(
      () => whole.opt.load({ ...state, ...change }),
      RangeError,
      msg,
    );
  }
  assertEquals(whole.opt.stepCount, 6);
  whole.opt.dispose();
  tf.dispose([...whole.vars.values()]);
});

Deno.test("warmupCosine() rises linearly, peaks, decays by a half cosine and holds the minimum", () => {
  const lr = warmupCosine({ peak: 1, warmup: 4, total: 14, min: 0.1 });
  assertEquals([0, 1, 2, 3].map(lr), [0.25, 0.5, 0.75, 1]);
  assertAlmostEquals(lr(9), 0.55, 1e-12);
  assertAlmostEquals(lr(14), 0.1, 1e-12);
  assertAlmostEquals(lr(100), 0.1, 1e-12);
  for (let s = 4; s < 14; s++) assert(lr(s + 1) <= lr(s));
  // The default minimum, peak / 10, is what every experiment trains with
  // (experiment/train.ts and judge.ts pass no min): 0.3 / 10 at the end,
  // and the cosine's midpoint (0.3 + 0.03) / 2. Catches a changed default.
  const byDefault = warmupCosine({ peak: 0.3, warmup: 2, total: 12 });
  assertAlmostEquals(byDefault(12), 0.03, 1e-15);
  assertAlmostEquals(byDefault(7), 0.165, 1e-15);
  assertThrows(
    () => warmupCosine({ peak: 1, warmup: 5, total: 4 }),
    RangeError,
    "0 ≤ warmup ≤ total",
  );
});

Deno.test("warmupCosine() names each missing or invalid field and what it accepts, all at once", () => {
  // It said "need 0 ≤ min ≤ peak and peak > 0, got peak undefined, min NaN"
  // for {}, and nothing of warmup and total.
  const refused = (options: unknown, text: string) =>
    assertThrows(
      () => warmupCosine(options as never),
      RangeError,
      text,
    );
  refused(
    {},
    "warmupCosine: peak must be a finite number > 0, it is missing; " +
      "warmup must be an integer ≥ 0, it is missing; " +
      "total must be an integer ≥ warmup, it is missing",
  );
  refused(
    { peak: "1e-3", warmup: 0, total: 1 },
    'warmupCosine: peak must be a finite number > 0, got "1e-3"',
  );
  refused(
    { peak: Infinity, warmup: 0, total: 1 },
    "peak must be a finite number > 0, got Infinity",
  );
  refused(
    { peak: 1, warmup: 1.5, total: 4 },
    "warmupCosine: warmup must be an integer ≥ 0, got 1.5",
  );
  refused(
    { peak: 1, warmup: 1, total: NaN },
    "warmupCosine: total must be an integer ≥ warmup, got NaN",
  );
  refused(
    { peak: 1, warmup: 5, total: 4 },
    "warmupCosine: total must be ≥ warmup (0 ≤ warmup ≤ total), got total 4, warmup 5",
  );
  refused(
    { peak: 1, warmup: 0, total: 4, min: 2 },
    "warmupCosine: min must be a number with 0 ≤ min ≤ peak (default peak / 10), got 2 with peak 1",
  );
  refused(
    { peak: 1, warmup: 0, total: 4, min: null },
    "min must be a number with 0 ≤ min ≤ peak (default peak / 10), got null",
  );
});

Deno.test("warmupCosine() reaches the peak at step warmup, and allows warm-up 0, min = peak and total = warmup", () => {
  // Closed form, 1e-15: lr(s) = peak·(s + 1)/warmup for s < warmup, then
  // min + ½(peak − min)(1 + cos(π(s − warmup)/(total − warmup))), so
  // lr(warmup) = peak. Mutation pass (docs/testing.md): kills `step < warmup`
  // → `<=` (lr(warmup) = peak·(warmup + 1)/warmup).
  const lr = warmupCosine({ peak: 1, warmup: 4, total: 14, min: 0.1 });
  assertAlmostEquals(lr(4), 1, 1e-15);
  // No warm-up: the cosine starts at the peak (kills `warmup < 0` → `<=`
  // and `< 0` → `< 1`).
  const cold = warmupCosine({ peak: 2, warmup: 0, total: 4, min: 0 });
  assertAlmostEquals(cold(0), 2, 1e-15);
  assertAlmostEquals(cold(2), 1, 1e-15);
  // A constant rate, min = peak (kills `min > peak` → `>=`).
  const flat = warmupCosine({ peak: 0.5, warmup: 0, total: 3, min: 0.5 });
  assertEquals([0, 1, 2, 3].map(flat), [0.5, 0.5, 0.5, 0.5]);
  // Warm-up only, total = warmup: then the minimum (kills `total < warmup`
  // → `<=`).
  const short = warmupCosine({ peak: 1, warmup: 2, total: 2, min: 0.25 });
  assertEquals([0, 1, 2, 9].map(short), [0.5, 1, 0.25, 0.25]);
  // A peak of 0 is refused (kills `peak > 0` → `>=`).
  assertThrows(
    () => warmupCosine({ peak: 0, warmup: 0, total: 1, min: 0 }),
    RangeError,
    "peak must be a finite number > 0, got 0",
  );
});

Deno.test("clipByGlobalNorm() scales only when the norm is above the limit", async () => {
  const grads = new Map<string, tf.Tensor>([["a", tf.tensor1d([1, 2])], [
    "b",
    tf.tensor2d([[2]]),
  ]]);
  const big = await clipByGlobalNorm(grads, 1.5);
  assertAlmostEquals(big.norm, 3, 1e-6);
  assertAlmostEquals(big.grads.get("b")!.dataSync()[0], 1, 1e-6);
  const small = await clipByGlobalNorm(grads, 10);
  assertEquals(Array.from(small.grads.get("a")!.dataSync()), [1, 2]);
  tf.dispose([
    ...grads.values(),
    ...big.grads.values(),
    ...small.grads.values(),
  ]);
});

Deno.test("clipByGlobalNorm() refuses a limit of 0", async () => {
  // A limit of 0 would scale every gradient to 0 (kills `maxNorm > 0` →
  // `>=`; mutation pass, docs/testing.md).
  const g = new Map<string, tf.Tensor>([["a", tf.tensor1d([3, 4])]]);
  await assertRejects(
    () => clipByGlobalNorm(g, 0),
    RangeError,
    "maxNorm must be > 0, got 0",
  );
  tf.dispose([...g.values()]);
});

Deno.test("Ema averages with its decay and withAveraged() puts the trained weights back", async () => {
  const p = tf.variable(tf.tensor1d([0, 0]));
  const ema = new Ema(new Map([["p", p]]), { decay: 0.9 });
  for (let i = 0; i < 10; i++) {
    p.assign(tf.tensor1d([1, 2]));
    ema.update();
  }
  const want = 1 - 0.9 ** 10;
  assertAlmostEquals(ema.values.get("p")!.dataSync()[0], want, 1e-6);
  const seen = await ema.withAveraged(() => p.dataSync()[1]);
  assertAlmostEquals(seen, 2 * want, 1e-6);
  assertEquals(Array.from(p.dataSync()), [1, 2]);
  ema.dispose();
  p.dispose();
});

Deno.test("Ema.load() takes averages of the right sizes and refuses a missing or wrong-sized one", () => {
  const p = tf.variable(tf.tensor1d([4, 8]));
  const ema = new Ema(new Map([["p", p]]));
  ema.load(new Map([["p", new Float32Array([1, 2])]]));
  assertEquals(Array.from(ema.values.get("p")!.dataSync()), [1, 2]);
  // Catches `!data || data.length !== v.size` → `&&` (and either half
  // dropped): a missing entry would read `.length` of undefined, a wrong size
  // reach tfjs; both must be this RangeError.
  assertThrows(
    () => ema.load(new Map([["q", new Float32Array([1, 2])]])),
    RangeError,
    "Ema: p is missing, expected 2",
  );
  assertThrows(
    () => ema.load(new Map([["p", new Float32Array([1, 2, 3])]])),
    RangeError,
    "Ema: p is 3 values, expected 2",
  );
  assertEquals(Array.from(ema.values.get("p")!.dataSync()), [1, 2]);
  ema.dispose();
  p.dispose();
});

Deno.test("Ema's decay: 0.999 by default, 0 accepted (the average is the last weights), 1 and above refused", () => {
  const p = tf.variable(tf.tensor1d([4, 8]));
  const vars = new Map([["p", p]]);
  // Catches the default 0.999 changed (0.999 · 1.1 is refused, too).
  const byDefault = new Ema(vars);
  assertEquals(byDefault.decay, 0.999);
  byDefault.dispose();
  // Decay 0: each update replaces the average by the weights (catches
  // `decay >= 0` → `> 0`).
  const none = new Ema(vars, { decay: 0 });
  p.assign(tf.tensor1d([1, -3]));
  none.update();
  assertEquals(Array.from(none.values.get("p")!.dataSync()), [1, -3]);
  none.dispose();
  // [0, 1): catches `decay < 1` → `<= 1` and `< 2`.
  for (const decay of [1, 1.5, -0.1]) {
    assertThrows(() => new Ema(vars, { decay }), RangeError, "[0, 1)");
  }
  p.dispose();
});

// A tiny next-token model: logits = onehot(x_i) · W, predicting x_{i+1}; the
// loss also draws from the PRNG, so resuming must restore its state exactly.
const V = 6;
function setup(seed = 1) {
  const w = tf.variable(tf.randomNormal([V, V], 0, 0.1, "float32", seed));
  const bias = tf.variable(tf.zeros([V]));
  const variables = new Map<string, tf.Variable>([["w", w], ["bias", bias]]);
  const loss = (batch: Batch, rng: Prng) =>
    tf.tidy(() => {
      const x = tf.tensor2d(
        batch.tokens,
        [batch.batchSize, batch.length],
        "int32",
      );
      const inputs = x.slice([0, 0], [-1, batch.length - 1]);
      const targets = x.slice([0, 1], [-1, batch.length - 1]);
      const logits = tf.oneHot(inputs, V).reshape([-1, V]).matMul(w).add(bias);
      const ce = tf.losses.softmaxCrossEntropy(
        tf.oneHot(targets.reshape([-1]), V),
        logits,
      );
      return ce.add(w.square().sum().mul(0.01 * rng.next())) as tf.Scalar;
    });
  return { variables, loss, dispose: () => tf.dispose([w, bias]) };
}
const blocks: Blocks = {
  data: Uint32Array.from(
    { length: 40 * 5 },
    (_, i) => (i * 7 + Math.floor(i / 5)) % V,
  ),
  count: 40,
  length: 5,
};

Deno.test("train() resumed from a checkpoint ends bit-identical to an uninterrupted run", async () => {
  const dir = await Deno.makeTempDir();
  const common = {
    blocks,
    batchSize: 4,
    steps: 12,
    lr: warmupCosine({ peak: 0.05, warmup: 2, total: 12 }),
    seed: 3,
    emaDecay: 0.9,
    accumulate: 2,
    progress: false as const,
  };
  const whole = setup();
  const r1 = await train({
    ...common,
    variables: whole.variables,
    loss: whole.loss,
  });
  const wantW = whole.variables.get("w")!.dataSync().slice();
  const wantEma = r1.ema!.values.get("w")!.dataSync().slice();

  // Interrupted after 5 steps (the checkpoint of step 5 is the last one written).
  const ck = `${dir}/ck.safetensors`;
  const first = setup();
  const metrics = new MetricsLog(`${dir}/metrics.jsonl`);
  const stopAt = {
    ...common,
    steps: 12,
    checkpoint: ck,
    checkpointEvery: 5,
    metrics,
  };
  await assertRejects(
    () =>
      train({
        ...stopAt,
        variables: first.variables,
        loss: first.loss,
        onStep: (s) => {
          if (s.step === 7) throw new Error("killed");
        },
      }),
    Error,
    "killed",
  );
  assertEquals((await loadCheckpoint(ck)).state.step, 5);

  const second = setup(99); // different init: everything must come from the checkpoint
  const r2 = await train({
    ...stopAt,
    variables: second.variables,
    loss: second.loss,
    resume: true,
  });
  assertEquals(r2.startStep, 5);
  assertEquals(second.variables.get("w")!.dataSync(), wantW);
  assertEquals(r2.ema!.values.get("w")!.dataSync(), wantEma);
  const records = await MetricsLog.read(`${dir}/metrics.jsonl`);
  assertEquals(records.map((r) => r.step), [
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
  ]);
  for (const r of [r1, r2]) {
    r.ema!.dispose();
    r.optimizer.dispose();
  }
  for (const s of [whole, first, second]) s.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train() resumed from a finished run's checkpoint reports that run's final loss and carries its training time", async () => {
  // Nothing is left to train, so the result comes from the checkpoint alone:
  // the last loss exactly, and seconds counted from the checkpoint's elapsed
  // time (what results.json reports as training seconds and tokens/s after a
  // resume). Catches the checkpoint's lastLoss or elapsed dropped on resume
  // (NaN, and a few microseconds instead of the run's time).
  const dir = await Deno.makeTempDir();
  const ck = `${dir}/ck.safetensors`;
  const common = {
    blocks,
    batchSize: 4,
    steps: 4,
    lr: () => 0.05,
    seed: 3,
    checkpoint: ck,
    progress: false as const,
  };
  const a = setup();
  const r1 = await train({ ...common, variables: a.variables, loss: a.loss });
  const elapsed = (await loadCheckpoint(ck)).state.elapsed!;
  assert(elapsed > 0 && elapsed <= r1.seconds, `${elapsed} vs ${r1.seconds}`);
  const b = setup(7);
  const r2 = await train({
    ...common,
    variables: b.variables,
    loss: b.loss,
    resume: true,
  });
  assertEquals([r2.startStep, r2.steps], [4, 4]);
  assert(Number.isFinite(r1.lastLoss));
  assertEquals(r2.lastLoss, r1.lastLoss);
  // And the steps it averages, kept in the checkpoint (a report labels the
  // figure from them, not from the resuming session's options).
  assertEquals(r1.lastLossSteps, [4, 4]);
  assertEquals((await loadCheckpoint(ck)).state.lastLossSteps, [4, 4]);
  assertEquals(r2.lastLossSteps, [4, 4]);
  assert(
    r2.seconds >= elapsed,
    `${r2.seconds} s after resume, ${elapsed} s saved`,
  );
  for (const r of [r1, r2]) r.optimizer.dispose();
  a.dispose();
  b.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train() resume: a changed config is refused; a key added since the checkpoint reads as its configDefaults value", async () => {
  const dir = await Deno.makeTempDir();
  const ck = `${dir}/ck.safetensors`;
  const common = {
    blocks,
    batchSize: 4,
    lr: () => 0.05,
    seed: 3,
    checkpoint: ck,
    progress: false as const,
  };
  const first = setup();
  // Written before the key `prior` existed.
  const r0 = await train({
    ...common,
    steps: 2,
    variables: first.variables,
    loss: first.loss,
    config: { lr: 0.05 },
  });
  r0.optimizer.dispose();
  const again = (config: unknown, configDefaults?: Record<string, unknown>) => {
    const m = setup();
    return train({
      ...common,
      steps: 3,
      resume: true,
      variables: m.variables,
      loss: m.loss,
      config,
      configDefaults,
    }).then((r) => {
      r.optimizer.dispose();
      m.dispose();
      return r.startStep;
    });
  };
  await assertRejects(
    () => again({ lr: 0.05, prior: 0 }),
    Error,
    "different configuration (prior: undefined → 0)",
  );
  await assertRejects(
    () => again({ lr: 0.05, prior: 1 }, { prior: 0 }),
    Error,
    "different configuration (prior: 0 → 1)",
  );
  assertEquals(await again({ lr: 0.05, prior: 0 }, { prior: 0 }), 2);
  first.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train() keeps which engine ran which steps in its checkpoints, across resumes", async () => {
  const dir = await Deno.makeTempDir();
  const ck = `${dir}/ck.safetensors`;
  const common = {
    blocks,
    batchSize: 4,
    steps: 12,
    lr: () => 0.05,
    seed: 3,
    checkpoint: ck,
    checkpointEvery: 5,
    progress: false as const,
  };
  const run = async (
    engineName: string | undefined,
    killAt?: number,
  ) => {
    const m = setup();
    try {
      const r = await train({
        ...common,
        engineName,
        resume: true,
        variables: m.variables,
        loss: m.loss,
        onStep: (s) => {
          if (s.step === killAt) throw new Error("killed");
        },
      });
      r.optimizer.dispose();
      return r.engines;
    } finally {
      m.dispose();
    }
  };
  // Killed at step 7 on A: the checkpoint of step 5 says A ran 0–5.
  await assertRejects(() => run("A", 7), Error, "killed");
  assertEquals((await loadCheckpoint(ck)).state.engines, [
    { engine: "A", fromStep: 0 },
  ]);
  // Resumed on A again: still one span (no new entry for the same engine).
  await assertRejects(() => run("A", 11), Error, "killed");
  assertEquals((await loadCheckpoint(ck)).state.engines, [
    { engine: "A", fromStep: 0 },
  ]);
  // Resumed on B from step 10: two spans, in the result and the checkpoint.
  const spans = [
    { engine: "A", fromStep: 0 },
    { engine: "B", fromStep: 10 },
  ];
  assertEquals(await run("B"), spans);
  assertEquals((await loadCheckpoint(ck)).state.engines, spans);
  // A finished run "resumed" on C trains nothing and records nothing.
  assertEquals(await run("C"), spans);
  assertEquals((await loadCheckpoint(ck)).state.step, 12);

  // A checkpoint without spans (an older version's, or no engine given):
  // the resumed steps are attributed from where they start, not from 0.
  await Deno.remove(ck);
  await assertRejects(() => run(undefined, 7), Error, "killed");
  assertEquals((await loadCheckpoint(ck)).state.engines, undefined);
  assertEquals(await run("B"), [{ engine: "B", fromStep: 5 }]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train() stops on a NaN loss with a one-line error and keeps the last checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  const ck = `${dir}/ck.safetensors`;
  const m = setup();
  let calls = 0;
  const err = await assertRejects(
    () =>
      train({
        variables: m.variables,
        loss: (b, r) => (++calls > 3
          ? tf.tidy(() => m.loss(b, r).mul(NaN))
          : m.loss(b, r)),
        blocks,
        batchSize: 2,
        steps: 10,
        lr: () => 0.01,
        checkpoint: ck,
        checkpointEvery: 2,
        progress: false,
      }),
    TrainError,
    "Training stopped at step 4: the loss is NaN",
  );
  assert(!err.message.includes("\n"));
  assertEquals((await loadCheckpoint(ck)).state.step, 2);
  m.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train() leaks no tensors across steps", async () => {
  const m = setup();
  const run = async () => {
    const r = await train({
      variables: m.variables,
      loss: m.loss,
      blocks,
      batchSize: 2,
      steps: 3,
      lr: () => 0.01,
      progress: false,
      emaDecay: 0.5,
    });
    r.optimizer.dispose();
    r.ema!.dispose();
  };
  await run();
  const before = tf.memory().numTensors;
  await run();
  assertEquals(tf.memory().numTensors, before);
  m.dispose();
});

Deno.test("loadCheckpoint() names the file and the problem for missing, corrupt and foreign files", async () => {
  const dir = await Deno.makeTempDir();
  await assertRejects(
    () => loadCheckpoint(`${dir}/none`),
    CheckpointError,
    "no such file",
  );
  await Deno.writeFile(
    `${dir}/junk`,
    new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]),
  );
  // A corrupt checkpoint blocked its model's resume with no way out named.
  await assertRejects(
    () => loadCheckpoint(`${dir}/junk`),
    CheckpointError,
    `Checkpoint ${dir}/junk is corrupt`,
  );
  await assertRejects(
    () => loadCheckpoint(`${dir}/junk`),
    CheckpointError,
    "; restore it, or delete it to train this model again from step 0",
  );
  // A device is named, never read.
  await Deno.symlink("/dev/zero", `${dir}/zero`);
  await assertRejects(
    () => loadCheckpoint(`${dir}/zero`),
    CheckpointError,
    `Cannot read ${dir}/zero: it is a character device (expected a training checkpoint, a regular file)`,
  );
  const { encodeSafetensors } = await import("@d3pm/core");
  await Deno.writeFile(
    `${dir}/weights`,
    encodeSafetensors(
      new Map([["w", { shape: [1], data: Float32Array.of(1) }]]),
    ),
  );
  await assertRejects(
    () => loadCheckpoint(`${dir}/weights`),
    CheckpointError,
    "is not a training checkpoint",
  );
  const m = setup();
  const r = await train({
    blocks,
    batchSize: 4,
    steps: 2,
    lr: () => 0.05,
    checkpoint: `${dir}/ck`,
    engineName: "A",
    variables: m.variables,
    loss: m.loss,
    progress: false,
  });
  r.optimizer.dispose();
  m.dispose();
  const { decodeSafetensors } = await import("@d3pm/core");
  const bytes = await Deno.readFile(`${dir}/ck`);
  const parsed = decodeSafetensors(bytes);
  const state = JSON.parse(parsed.metadata.state);
  for (
    const engines of [[{ engine: "A", fromStep: 3 }], "A", [{
      engine: 1,
      fromStep: 0,
    }]]
  ) {
    await Deno.writeFile(
      `${dir}/bad`,
      encodeSafetensors(parsed.tensors, {
        ...parsed.metadata,
        state: JSON.stringify({ ...state, engines }),
      }),
    );
    await assertRejects(
      () => loadCheckpoint(`${dir}/bad`),
      CheckpointError,
      "its state's engines is not a list of {engine, fromStep ≤ 2}",
    );
  }
  await Deno.remove(dir, { recursive: true });
});

// Ctrl-C during the auto judge's training was handled only when the
// training ended (19 s later on a micro run): the CPU engine's steps never
// left the microtask queue, so the signal listener never ran. A timer set
// before training must fire while it runs.
Deno.test("trainEngine turns the event loop while it trains, so a signal listener runs", async () => {
  const { trainEngine } = await import("./loop.ts");
  let steps = 0;
  let firedAt: number | undefined;
  const timer = setTimeout(() => firedAt = steps, 0);
  const busy = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end) { /* a synchronous kernel */ }
  };
  const engine = {
    step() {
      busy(2);
      steps++;
    },
    readLoss: () => Promise.resolve({ loss: 1, steps: 1, gradNorm: 0 }),
    getWeights: () => Promise.resolve(new Map()),
    setWeights() {},
    optimizerState: () =>
      Promise.resolve({ step: 0, m: new Map(), v: new Map() }),
    loadOptimizerState() {},
  };
  await trainEngine({
    engine,
    ema: false,
    terms: (b) => ({
      rows: 1,
      length: 2,
      inputs: b.tokens,
      targets: b.tokens,
      weights: Float32Array.of(0.5, 0.5),
    }),
    blocks: { data: Uint32Array.of(1, 2, 3, 4), count: 2, length: 2 },
    batchSize: 1,
    steps: 200,
    lr: () => 0.1,
    progress: false,
  });
  clearTimeout(timer);
  assert(
    firedAt !== undefined && firedAt < 200,
    `the timer fired at step ${firedAt}`,
  );
});

Deno.test("MetricsLog.append() drops a torn last record exactly (short, and longer than its 64 KiB read-back chunk) and appends on a line of its own", async () => {
  // Reference: the file is the complete lines before the torn tail, then the
  // new record; read() then returns every complete record and warns of
  // nothing. Catches an off-by-one cut (keeping the tail's newline out, so
  // the next record glues onto the last good one, which read() would then
  // drop as not JSON) and a chunked read-back that loses its place.
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  const good = '{"step":1}\n{"step":2}\n';
  const orig = console.error;
  const stderr: string[] = [];
  console.error = (m: string) => void stderr.push(m);
  try {
    for (const torn of ['{"step":3,"lo', `{"pad":"${"x".repeat(70_000)}`]) {
      await Deno.writeTextFile(path, good + torn);
      await new MetricsLog(path).append({ step: 4 });
      assertEquals(await Deno.readTextFile(path), good + '{"step":4}\n');
      const warnings: string[] = [];
      const records = await MetricsLog.read(path, (m) => warnings.push(m));
      assertEquals(records, [{ step: 1 }, { step: 2 }, { step: 4 }]);
      assertEquals(warnings, []);
    }
    // A clean file is left as it is; a file of one torn record is emptied.
    await new MetricsLog(path).append({ step: 5 });
    assertEquals(
      await Deno.readTextFile(path),
      good + '{"step":4}\n{"step":5}\n',
    );
    await Deno.writeTextFile(path, '{"st');
    await new MetricsLog(path).append({ step: 1 });
    assertEquals(await Deno.readTextFile(path), '{"step":1}\n');
  } finally {
    console.error = orig;
  }
  assertEquals(stderr.filter((m) => m.includes("torn record")).length, 3);
  await Deno.remove(dir, { recursive: true });
});

// A checkpoint was read whole before anything checked its size: a 1.5 GB
// file where a micro model's 0.8 MB checkpoint belongs took 3.4 GB of
// memory before "corrupt". The resume now bounds it by the model's own
// checkpoint size (all weights, EMA, both moments, and the header), before
// a byte is read.
Deno.test("a checkpoint larger than the model's can be is refused before it is read, naming the file and the bound", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/checkpoint.safetensors`;
  const w = tf.variable(tf.zeros([64, 64]));
  const variables = new Map([["w", w]]);
  const options = {
    variables,
    loss: () => tf.tidy(() => w.sub(1).square().mean()) as tf.Scalar,
    blocks: { data: Uint32Array.of(1, 2, 3, 4), count: 2, length: 2 },
    batchSize: 1,
    lr: () => 0.1,
    checkpoint: path,
    progress: false as const,
    emaDecay: 0.5,
  };
  try {
    const first = await train({ ...options, steps: 2 });
    first.optimizer.dispose();
    first.ema!.dispose();
    // Its own checkpoint is within the bound (weights, EMA, two moments).
    const size = (await Deno.stat(path)).size;
    assert(size < checkpointBytes(variables, true), `${size}`);
    assert(size > checkpointBytes(variables, false) - (1 << 20), `${size}`);
    // Grown to 256 MiB (sparse: no disk used), it is refused unread.
    await (await Deno.open(path, { write: true })).truncate(256 << 20);
    const rss = Deno.memoryUsage().rss;
    const e = await assertRejects(
      () => train({ ...options, steps: 4, resume: true }),
      CheckpointError,
    );
    assert(
      e.message.startsWith(`Cannot read ${path}: it is larger than the `) &&
        e.message.includes("a training checkpoint of this model may be") &&
        e.message.endsWith(
          "; restore it, or delete it to train this model again from step 0",
        ),
      e.message,
    );
    assert(Deno.memoryUsage().rss - rss < 128 << 20, "read before refused");
    // With no model to bound it, loadCheckpoint takes a bound.
    await assertRejects(
      () => loadCheckpoint(path, { maxBytes: 1 << 20 }),
      CheckpointError,
      "is larger than the 1.0 MiB a training checkpoint of this model may be",
    );
  } finally {
    w.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AdamW refuses an eps that is not finite and > 0 and an infinite weightDecay, which would make every weight NaN", () => {
  const w = tf.variable(tf.ones([2, 2]));
  const vars = new Map<string, tf.Variable>([["w", w]]);
  for (const eps of [NaN, -1, 0, Infinity]) {
    assertThrows(
      () => new AdamW(vars, { eps }),
      RangeError,
      `AdamW: eps must be finite and > 0, got ${eps}`,
    );
  }
  for (const weightDecay of [Infinity, NaN, -0.1]) {
    assertThrows(
      () => new AdamW(vars, { weightDecay }),
      RangeError,
      `AdamW: weightDecay must be finite and ≥ 0, got ${weightDecay}`,
    );
  }
  w.dispose();
});

Deno.test("AdamW.step() refuses a gradient for a variable it does not know, or of another shape, before updating anything", () => {
  const w = tf.variable(tf.ones([2, 2]));
  const b = tf.variable(tf.ones([2]));
  const opt = new AdamW(new Map([["w", w], ["b", b]]), { weightDecay: 0 });
  const gw = tf.onesLike(w), gb = tf.onesLike(b), g3 = tf.ones([3]);
  // The known gradient comes first: a check made while updating would have
  // moved w before finding "wte" (the old step ignored "wte" altogether).
  assertThrows(
    () => opt.step(new Map([["w", gw], ["wte", gb]]), 0.1),
    RangeError,
    `AdamW: a gradient for "wte", which is not one of the optimiser's 2 variables ("w", "b")`,
  );
  assertThrows(
    () => opt.step(new Map<string, tf.Tensor>([["w", gw], ["b", g3]]), 0.1),
    RangeError,
    `AdamW: the gradient for "b" has shape [3], its variable [2]`,
  );
  assertThrows(
    () => opt.step(new Map<string, tf.Tensor>([["b", gw]]), 0.1),
    RangeError,
    `AdamW: the gradient for "b" has shape [2, 2], its variable [2]`,
  );
  // As many values, another shape: a flat kernel would have taken it.
  const g4 = tf.ones([4]);
  assertThrows(
    () => opt.step(new Map<string, tf.Tensor>([["w", g4]]), 0.1),
    RangeError,
    `AdamW: the gradient for "w" has shape [4], its variable [2, 2]`,
  );
  g4.dispose();
  assertEquals(opt.stepCount, 0);
  assertEquals([...w.dataSync()], [1, 1, 1, 1]);
  // A gradient left out leaves its variable as it is, as does one given as
  // undefined (tf.variableGrads' maps hold such entries).
  opt.step(
    new Map([["b", gb], ["w", undefined as unknown as tf.Tensor]]),
    0.1,
  );
  assertEquals(opt.stepCount, 1);
  assertEquals([...w.dataSync()], [1, 1, 1, 1]);
  assert(b.dataSync()[0] < 1);
  const many = new Map(
    Array.from({ length: 7 }, (_, i) => [`v${i}`, tf.variable(tf.zeros([1]))]),
  );
  const big = new AdamW(many);
  assertThrows(
    () => big.step(new Map([["x", gb]]), 0.1),
    RangeError,
    `not one of the optimiser's 7 variables ("v0", "v1", "v2", "v3", "v4", … 2 more)`,
  );
  opt.dispose();
  big.dispose();
  tf.dispose([w, b, gw, gb, g3, ...many.values()]);
});

Deno.test("warmupCosine()'s schedule refuses a negative or NaN step instead of returning a negative or NaN rate", () => {
  const lr = warmupCosine({ peak: 1, warmup: 2, total: 10 });
  // lr(-5) was -2 (the warm-up line extended), lr(NaN) NaN.
  for (const step of [-5, -1, NaN]) {
    assertThrows(
      () => lr(step),
      RangeError,
      `warmupCosine: step must be ≥ 0, got ${step}`,
    );
  }
  assertEquals(lr(0), 0.5);
});

Deno.test("clipByGlobalNorm() refuses an empty gradient map with its own message", async () => {
  // It failed inside tf.addN ("Must pass at least one tensor").
  await assertRejects(
    () => clipByGlobalNorm(new Map(), 1),
    RangeError,
    "clipByGlobalNorm: no gradients given; pass at least one",
  );
});

// `lastLoss` (results.json's training.lastLoss, report.md's train loss) was
// the last step's loss on tfjs but the mean since the last reading on the
// fused engines: the same training reported 3.131 on one and 3.207 on the
// other. Both now report the mean over the last logged interval: with
// logEvery 4 over 10 steps the readings are at 4, 8 and 10, so steps 9–10.
Deno.test("train() and trainEngine() report the same lastLoss: the mean loss of the last logged interval", async () => {
  const { trainEngine } = await import("./loop.ts");
  const a = setup();
  const perStep: number[] = [];
  const common = {
    blocks,
    batchSize: 4,
    steps: 10,
    lr: () => 0.05,
    seed: 3,
    logEvery: 4,
    progress: false as const,
  };
  const r = await train({
    ...common,
    variables: a.variables,
    loss: a.loss,
    onStep: (info) => void perStep.push(info.loss),
  });
  r.optimizer.dispose();
  a.dispose();
  assertEquals(perStep.length, 10); // tfjs still logs every step
  const tail = (perStep[8] + perStep[9]) / 2;
  assertAlmostEquals(r.lastLoss, tail, 1e-12);
  // An engine with the same per-step losses, read as the fused engines do.
  let step = 0, pending: number[] = [];
  const readings: number[] = [];
  const engine = {
    step() {
      pending.push(perStep[step++]);
    },
    readLoss() {
      const loss = pending.reduce((s, x) => s + x, 0) / pending.length;
      const steps = pending.length;
      pending = [];
      readings.push(step);
      return Promise.resolve({ loss, steps, gradNorm: 1 });
    },
    getWeights: () => Promise.resolve(new Map()),
    setWeights() {},
    optimizerState: () =>
      Promise.resolve({ step: 0, m: new Map(), v: new Map() }),
    loadOptimizerState() {},
  };
  const e = await trainEngine({
    ...common,
    engine,
    ema: false,
    terms: (b) => ({
      rows: 1,
      length: 5,
      inputs: b.tokens,
      targets: b.tokens,
      weights: new Float32Array(5),
    }),
  });
  assertEquals(readings, [4, 8, 10]);
  assertAlmostEquals(e.lastLoss, r.lastLoss, 1e-6);
  // Both record which steps the figure averages.
  assertEquals([r.lastLossSteps, e.lastLossSteps], [[9, 10], [9, 10]]);
});
