import * as tf from "@tensorflow/tfjs";
import { type LanguageModel, prng } from "@d3pm/core";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertThrows,
} from "@std/assert";
import {
  blockDiffusion,
  continuousElbo,
  linearAlpha,
  logLinear,
  maskedDiffusion,
  mdlmLoss,
  type Stagger,
  staggeredTime,
} from "./mod.ts";
import { ConstantDenoiser } from "./_test_models.ts";

await tf.setBackend("cpu");

const V = 4, MASK = 4; // ids 0..3, the mask 4

/**
 * A denoiser that reads its left neighbour: when x_{i−1} is visible it puts
 * most of the mass on x_{i−1} + 1 (mod 4), else it is uniform. On counting
 * rows the bound then depends on the order in which positions are revealed.
 */
class LeftReader implements LanguageModel {
  readonly timeConditioned = false;
  calls = 0;
  get config(): LanguageModel["config"] {
    return { kind: "bidirectional", vocabSize: V + 1, contextLength: 64 };
  }
  dispose(): void {}
  forward(tokens: tf.Tensor2D): tf.Tensor3D {
    this.calls++;
    const [b, l] = tokens.shape;
    const x = tokens.dataSync();
    const out = new Float32Array(b * l * (V + 1));
    for (let r = 0; r < b; r++) {
      for (let i = 0; i < l; i++) {
        const o = (r * l + i) * (V + 1);
        const left = i > 0 ? x[r * l + i - 1] : MASK;
        if (left !== MASK) out[o + ((left + 1) % V)] = 3;
        out[o + MASK] = -30; // the mask is never predicted (SUBS)
      }
    }
    return tf.tensor3d(out, [b, l, V + 1]);
  }
}

/** −log p(x_i | the visible ids of z) under LeftReader. */
function leftReaderNll(x: number[], z: number[], i: number): number {
  const logits = [0, 0, 0, 0];
  if (i > 0 && z[i - 1] !== MASK) logits[(z[i - 1] + 1) % V] = 3;
  const lse = Math.log(logits.reduce((s, v) => s + Math.exp(v), 0));
  return lse - logits[x[i]];
}

/**
 * The continuous-time bound of one row under linearAlpha (alpha(τ) = 1 − τ,
 * so a term's weight times its masking probability is its clock's rate),
 * integrated numerically over t (midpoints) with every mask pattern of the
 * other positions enumerated: independent of the Monte-Carlo code.
 */
function exactBound(x: number[], stagger: Stagger): number {
  const l = x.length, n = 4000;
  let total = 0;
  for (let k = 0; k < n; k++) {
    const t = (k + 0.5) / n;
    const clocks = x.map((_, i) => staggeredTime(stagger, i, t));
    for (let i = 0; i < l; i++) {
      if (clocks[i].rate === 0) continue;
      // Σ over the others' patterns of P(pattern) · nll, position i masked.
      for (let m = 0; m < 1 << l; m++) {
        if (!(m & (1 << i))) continue;
        let p = 1;
        const z = x.slice();
        for (let j = 0; j < l; j++) {
          if (j === i) continue;
          const masked = (m & (1 << j)) !== 0;
          p *= masked ? clocks[j].tau : 1 - clocks[j].tau;
          if (masked) z[j] = MASK;
        }
        z[i] = MASK;
        total += (clocks[i].rate * p * leftReaderNll(x, z, i)) / n;
      }
    }
  }
  return total / l;
}

const counting = (rows: number, l: number) => ({
  tokens: Int32Array.from({ length: rows * l }, (_, i) => (i % l) % V),
  batchSize: rows,
  length: l,
});

Deno.test("staggeredTime(): each position's clock runs on its window, the right-hand ones first; delta 0 is one clock", () => {
  const s = { span: 4, delta: 0.6 }; // width 0.4; starts 0.6, 0.4, 0.2, 0
  const starts = [0.6, 0.4, 0.2, 0];
  for (let j = 0; j < 8; j++) {
    const a = starts[j % 4];
    for (const t of [0.05, 0.3, 0.5, 0.7, 0.95]) {
      const c = staggeredTime(s, j, t);
      const u = (t - a) / 0.4;
      if (u <= 0) assertEquals(c, { tau: 0, rate: 0 });
      else if (u >= 1) assertEquals(c, { tau: 1, rate: 0 });
      else {
        assertAlmostEquals(c.tau, u, 1e-12);
        assertAlmostEquals(c.rate, 2.5, 1e-12);
      }
    }
  }
  for (const t of [0, 0.3, 1]) {
    assertEquals(staggeredTime({ span: 4, delta: 0 }, 3, t), {
      tau: t,
      rate: 1,
    });
    assertEquals(staggeredTime({ span: 1, delta: 0.9 }, 3, t), {
      tau: t,
      rate: 1,
    });
  }
});

Deno.test("the staggered bound equals its integral, computed by enumerating every mask pattern, and differs from the unstaggered one", async () => {
  const model = new LeftReader();
  const x0 = counting(256, 3);
  const row = Array.from(x0.tokens.subarray(0, 3));
  const flat = exactBound(row, { span: 3, delta: 0 });
  for (const delta of [0.5, 0.8]) {
    const stagger = { span: 3, delta };
    const exact = exactBound(row, stagger);
    const est = await continuousElbo(model, x0, {
      schedule: linearAlpha(),
      maskId: MASK,
      prng: prng(7),
      samples: 64,
      draws: "time",
      stagger,
    });
    assert(
      Math.abs(est.nats - exact) < 4 * est.stderr,
      `delta ${delta}: MC ${est.nats} ± ${est.stderr}, exact ${exact}`,
    );
    // Power: ignoring the stagger would be far outside the error.
    assert(
      Math.abs(exact - flat) > 8 * est.stderr,
      `delta ${delta}: exact ${exact} vs one clock ${flat}, stderr ${est.stderr}`,
    );
    // The training loss over all of [0, 1] estimates the same bound, with
    // a time per row or per span (block diffusion's time per block).
    for (const perToken of [false, true]) {
      let sum = 0;
      const n = 48, gen = prng(3);
      for (let k = 0; k < n; k++) {
        const loss = mdlmLoss(model, x0, {
          schedule: linearAlpha(),
          maskId: MASK,
          prng: gen,
          tMin: 0,
          training: false,
          stagger,
          ...(perToken ? { perToken, timeSpan: 3 } : {}),
        });
        sum += (await loss.data())[0];
        loss.dispose();
      }
      assertAlmostEquals(
        sum / n,
        exact,
        4 * est.stderr * Math.sqrt(64 / n) + 0.01,
      );
    }
  }
  // The staggered order reveals the left neighbour first: a lower bound here.
  assert(exactBound(row, { span: 3, delta: 0.8 }) < flat - 0.1);
});

Deno.test("with windows that do not overlap the bound is the left-to-right chain rule", async () => {
  const model = new LeftReader();
  const x0 = counting(256, 4);
  const row = Array.from(x0.tokens.subarray(0, 4));
  let chain = 0;
  for (let i = 0; i < 4; i++) {
    const z = row.map((v, j) => (j < i ? v : MASK));
    chain += leftReaderNll(row, z, i);
  }
  chain /= 4;
  const est = await continuousElbo(model, x0, {
    schedule: linearAlpha(),
    maskId: MASK,
    prng: prng(1),
    samples: 64,
    draws: "time",
    stagger: { span: 4, delta: 0.8 }, // windows 0.2 wide, 0.267 apart
  });
  assert(
    Math.abs(est.nats - chain) < 4 * est.stderr,
    `MC ${est.nats} ± ${est.stderr}, chain rule ${chain}`,
  );
  assert(est.stderr < 0.05);
});

Deno.test("a denoiser that ignores its context scores its own NLL under any stagger (the rates integrate to one)", async () => {
  const logits = Float32Array.of(2, 0, 1, -1, -30);
  const model = new ConstantDenoiser(5, logits);
  const lse = Math.log([2, 0, 1, -1].reduce((s, v) => s + Math.exp(v), 0));
  const x0 = counting(32, 8);
  let nll = 0;
  for (const x of x0.tokens) nll += (lse - logits[x]) / x0.tokens.length;
  for (const stagger of [{ span: 8, delta: 0.7 }, { span: 2, delta: 0.5 }]) {
    const est = await continuousElbo(model, x0, {
      schedule: logLinear(),
      maskId: MASK,
      prng: prng(2),
      samples: 32,
      draws: "time",
      stagger,
    });
    assert(
      Math.abs(est.nats - nll) < 4 * est.stderr,
      `${JSON.stringify(stagger)}: ${est.nats} ± ${est.stderr} vs ${nll}`,
    );
    assert(est.stderr < 0.1 * nll);
  }
});

Deno.test("a staggered process samples each span left to right when its windows do not overlap, and delta 0 samples as no stagger", async () => {
  const base = {
    kind: "masked-diffusion" as const,
    vocab: 5,
    maskId: MASK,
    steps: 100,
    schedule: { kind: "log-linear" as const },
    objective: "mdlm" as const,
  };
  const process = maskedDiffusion({
    ...base,
    stagger: { span: 4, delta: 0.8 },
  });
  const model = new ConstantDenoiser(5, Float32Array.of(0, 0, 0, 0, -30));
  const revealedAt: number[][] = [];
  await process.sample(model, {
    length: 8,
    batchSize: 3,
    steps: 100,
    prng: prng(4),
    onStep: (s) => {
      for (let i = 0; i < s.tokens.length; i++) {
        revealedAt[i] ??= [];
        if (s.tokens[i] !== MASK && revealedAt[i].length === 0) {
          revealedAt[i].push(s.step);
        }
      }
    },
  });
  for (let r = 0; r < 3; r++) {
    for (let i = 0; i < 8; i++) {
      const at = revealedAt[r * 8 + i][0];
      if (i % 4 > 0) {
        assert(
          at > revealedAt[r * 8 + i - 1][0],
          `row ${r}: position ${i} revealed at step ${at}, its left neighbour at ${
            revealedAt[r * 8 + i - 1][0]
          }`,
        );
      }
    }
  }
  // delta 0: the same draws as the process without a stagger.
  const plain = maskedDiffusion(base);
  const flat = maskedDiffusion({ ...base, stagger: { span: 4, delta: 0 } });
  const a = await plain.sample(model, {
    length: 8,
    batchSize: 2,
    steps: 10,
    prng: prng(5),
  });
  const b = await flat.sample(model, {
    length: 8,
    batchSize: 2,
    steps: 10,
    prng: prng(5),
  });
  assertEquals(b.tokens, a.tokens);
});

Deno.test("the staggered sampler is the exact reverse: after each step each position is clean with its own forward probability, with or without a prompt", async () => {
  // eps 0.2: a position whose window has ended is still clean with
  // probability alpha(1) = 0.2, which the sampler must reveal at once.
  const spec = {
    kind: "masked-diffusion" as const,
    vocab: 5,
    maskId: MASK,
    steps: 4,
    schedule: { kind: "log-linear" as const, eps: 0.2 },
    objective: "mdlm" as const,
    stagger: { span: 2, delta: 0.5 }, // windows [0.5, 1] and [0, 0.5]
  };
  const process = maskedDiffusion(spec);
  const alpha = logLinear({ eps: 0.2 }).alpha;
  const model = new ConstantDenoiser(5, Float32Array.of(0, 0, 0, 0, -30));
  const rows = 4000;
  for (const prompted of [false, true]) {
    const clean: number[][] = [[], []];
    await process.sample(model, {
      batchSize: rows,
      steps: 4,
      prng: prng(prompted ? 12 : 11),
      ...(prompted
        ? { prompt: new Int32Array(rows * 2).fill(MASK) }
        : { length: 2 }),
      onStep: (st) => {
        for (const j of [0, 1]) {
          let n = 0;
          for (let r = 0; r < rows; r++) {
            n += st.tokens[r * 2 + j] !== MASK ? 1 : 0;
          }
          clean[j].push(n / rows);
        }
      },
    });
    for (const j of [0, 1]) {
      for (let m = 1; m <= 4; m++) {
        const s = (4 - m) / 4;
        const want = m === 4 ? 1 : alpha(staggeredTime(spec.stagger, j, s).tau);
        const se = Math.sqrt(Math.max(want * (1 - want), 0.01) / rows);
        assert(
          Math.abs(clean[j][m - 1] - want) < 4.5 * se,
          `prompt ${prompted}, position ${j}, step ${m}: clean ${
            clean[j][m - 1]
          }, forward ${want}`,
        );
      }
    }
  }
});

Deno.test("block diffusion carries the stagger, whose span must lie within a block", () => {
  const bd3 = blockDiffusion({
    kind: "block-diffusion",
    blockSize: 4,
    vocab: 5,
    maskId: MASK,
    steps: 100,
    schedule: { kind: "log-linear" },
    stagger: { span: 4, delta: 0.8 },
  });
  assertEquals(bd3.toJSON().stagger, { span: 4, delta: 0.8 });
  assertThrows(
    () => blockDiffusion({ ...bd3.toJSON(), stagger: { span: 3, delta: 0.5 } }),
    RangeError,
    "stagger.span 3 must divide the block size 4",
  );
});

Deno.test("a stagger is refused where one clock is assumed, in one line", async () => {
  const base = {
    kind: "masked-diffusion" as const,
    vocab: 5,
    maskId: MASK,
    steps: 10,
    schedule: { kind: "log-linear" as const },
    objective: "mdlm" as const,
  };
  const bad: [unknown, string][] = [
    [{ span: 0, delta: 0.5 }, "stagger.span must be an integer ≥ 1, got 0"],
    [{ span: 4, delta: 1 }, "stagger.delta must be a number in [0, 1), got 1"],
    [{ span: 4, delta: 0.5, x: 1 }, 'unknown stagger key "x"'],
  ];
  for (const [stagger, message] of bad) {
    assertThrows(
      () => maskedDiffusion({ ...base, stagger: stagger as Stagger }),
      RangeError,
      message,
    );
  }
  assertThrows(
    () =>
      maskedDiffusion({
        ...base,
        stagger: { span: 2, delta: 0.5 },
        times: { byCount: true },
      }),
    RangeError,
    "stagger needs the mdlm objective drawn by time",
  );
  const p = maskedDiffusion({ ...base, stagger: { span: 2, delta: 0.5 } });
  const model = new ConstantDenoiser(5);
  const x0 = counting(2, 4);
  await assertRejectsMessage(
    () => p.bound(model, x0, { prng: prng(0), draws: "count" }),
    "a stagger needs time draws",
  );
  await assertRejectsMessage(
    () => p.bound(model, x0, { prng: prng(0), kind: "exact" }),
    "a staggered process has the continuous bound only",
  );
  await assertRejectsMessage(
    () => p.bound(model, counting(2, 3), { prng: prng(0) }),
    "stagger.span 2 must divide the row length 3",
  );
  await assertRejectsMessage(
    () =>
      p.sample(model, {
        length: 4,
        prng: prng(0),
        strategy: "confidence",
      }),
    'use strategy "ancestral"',
  );
  // A device engine's forward() is asynchronous: refused in one line.
  const device = {
    config: model.config,
    timeConditioned: false,
    forward: () => Promise.resolve(new Float32Array(0)),
    generateMasked: () => {
      throw new Error("not reached: the staggered sampler runs here");
    },
    dispose() {},
  };
  await assertRejectsMessage(
    () => p.sample(device as never, { length: 4, prng: prng(0) }),
    "this device generator's is asynchronous or missing",
  );
  // By time is the staggered process's default.
  const est = await p.bound(model, x0, { prng: prng(0) });
  assertAlmostEquals(est.nats, Math.log(4), 4 * est.stderr + 1e-6);
});

async function assertRejectsMessage(
  f: () => Promise<unknown>,
  message: string,
): Promise<void> {
  try {
    await f();
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    assert(e.message.includes(message), e.message);
    assert(!e.message.includes("\n"), e.message);
    return;
  }
  throw new Error(`expected a RangeError with "${message}"`);
}
