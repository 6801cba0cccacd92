import {
  type Generation,
  type LanguageModel,
  type MaskedGenerationOptions,
  type MaskedGenerator,
  prng,
  type TermScorer,
  type WeightedTokens,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
} from "@std/assert";
import { evaluateInfill } from "./infill.ts";
import { maskedDiffusion } from "./process.ts";
import { absorbingBeta, discretize, logLinear } from "./schedule.ts";

await tf.setBackend("cpu");

function toy(forward: (x: tf.Tensor2D) => tf.Tensor3D): LanguageModel {
  return {
    config: { kind: "bidirectional", vocabSize: 9, contextLength: 64 },
    timeConditioned: false,
    forward,
    dispose() {},
  };
}

Deno.test("evaluateInfill() scores an oracle at accuracy 1 and NLL 0, and a uniform model near chance", async () => {
  const x0 = {
    tokens: Int32Array.from({ length: 16 * 32 }, (_, i) => (i * 5) % 8),
    batchSize: 16,
    length: 32,
  };
  // The oracle knows the data rule: token at flat position i is (i·5) mod 8.
  const oracle = toy((x) =>
    tf.tidy(() => {
      const [b, l] = x.shape;
      const truth = Int32Array.from({ length: b * l }, (_, i) => (i * 5) % 8);
      return tf.oneHot(tf.tensor2d(truth, [b, l], "int32"), 9).mul(
        60,
      ) as tf.Tensor3D;
    })
  );
  const opts = {
    fraction: 0.3,
    maskId: 8,
    schedule: absorbingBeta({ steps: 20 }),
    steps: 20,
    prng: prng(1),
  };
  const good = await evaluateInfill(oracle, x0, opts);
  assertEquals(good.accuracy, 1);
  assertAlmostEquals(good.nll, 0, 1e-4);
  assertEquals(good.total, 16 * 32);
  // Each token is hidden with probability 0.3: 154 expected, sd 10.
  assert(Math.abs(good.hidden - 0.3 * 512) < 40, `${good.hidden}`);
  const uniform = toy((x) => tf.zeros([...x.shape, 9]) as tf.Tensor3D);
  const bad = await evaluateInfill(uniform, x0, { ...opts, prng: prng(1) });
  assertAlmostEquals(bad.nll, Math.log(8), 1e-4);
  assert(bad.accuracy < 0.25, `${bad.accuracy}`);
  await assertRejects(
    () => evaluateInfill(uniform, x0, { ...opts, fraction: 1 }),
    RangeError,
    "fraction must be in (0, 1)",
  );
});

// A denoiser that reads t and the context: token (i mod 8) gains 3·t at
// position i, and a revealed right neighbour's token gains 1.5. It records
// the inputs and times of its calls, so the test knows which tokens were
// hidden and at which time they were scored.
const MASK = 8;
function timedLogits(row: ArrayLike<number>, i: number, t: number): number[] {
  const out = [0.4, -0.3, 0.9, 0.1, -0.8, 0.6, -0.2, 0.3, 0];
  out[i % 8] += 3 * t;
  const right = i + 1 < row.length ? row[i + 1] : MASK;
  if (right !== MASK) out[right] += 1.5;
  return out;
}

/** −log softmax(logits without the mask)[target], in float64. */
function ce(logits: number[], target: number): number {
  let z = 0;
  for (let j = 0; j < MASK; j++) z += Math.exp(logits[j]);
  return Math.log(z) - logits[target];
}

class TimedToy implements LanguageModel {
  readonly timeConditioned = true;
  readonly config = {
    kind: "bidirectional" as const,
    vocabSize: 9,
    contextLength: 64,
  };
  calls: { rows: Int32Array; t: Float32Array }[] = [];
  forward(x: tf.Tensor2D, o: { t?: tf.Tensor1D } = {}): tf.Tensor3D {
    const [b, l] = x.shape;
    const rows = x.dataSync() as Int32Array,
      t = o.t!.dataSync() as Float32Array;
    this.calls.push({ rows: rows.slice(), t: t.slice() });
    const out = new Float32Array(b * l * 9);
    for (let r = 0; r < b; r++) {
      const row = rows.subarray(r * l, (r + 1) * l);
      for (let i = 0; i < l; i++) {
        out.set(timedLogits(row, i, t[r]), (r * l + i) * 9);
      }
    }
    return tf.tensor3d(out, [b, l, 9]);
  }
  dispose(): void {}
}

/** The same denoiser as a term scorer (the engines' contract), in float64. */
class TimedScorer extends TimedToy implements TermScorer {
  terms: WeightedTokens[] = [];
  rowLosses(list: readonly WeightedTokens[]): Promise<Float64Array[]> {
    this.terms.push(...list);
    return Promise.resolve(list.map((w) => {
      const sums = new Float64Array(w.rows);
      for (let r = 0; r < w.rows; r++) {
        const row = w.inputs.subarray(r * w.length, (r + 1) * w.length);
        for (let i = 0; i < w.length; i++) {
          const k = r * w.length + i;
          if (w.targets[k] < 0 || w.weights[k] === 0) continue;
          const logits = timedLogits(row, i, w.t![r]);
          sums[r] += w.weights[k] * ce(logits, w.targets[k]);
        }
      }
      return sums;
    }));
  }
}

Deno.test("evaluateInfill() scores exactly the hidden tokens, with their context, at the first time where that fraction is masked — through a model and through a term scorer", async () => {
  const x0 = {
    tokens: Int32Array.from({ length: 8 * 24 }, (_, i) => (i * 7 + 3) % 8),
    batchSize: 8,
    length: 24,
  };
  const schedule = discretize(logLinear(), { steps: 20 });
  for (const fraction of [0.3, 0.47]) {
    // The first step whose masked fraction 1 − ᾱ(t) reaches the fraction.
    const T = 20;
    let want = 0;
    while (1 - schedule.alphaBar(want) < fraction) want++;
    const opts = { fraction, maskId: MASK, schedule, steps: 5, prng: prng(3) };
    const model = new TimedToy();
    const r = await evaluateInfill(model, x0, opts);
    // The scoring pass is the first call: the prompt and its time.
    const { rows, t } = model.calls[0];
    assert(t.every((x) => Math.abs(x - want / T) < 1e-6), `t ${t[0]}`);
    let sum = 0, hidden = 0;
    for (let k = 0; k < rows.length; k++) {
      if (rows[k] !== MASK) {
        assertEquals(rows[k], x0.tokens[k]); // the rest is the clean row
        continue;
      }
      const i = k % 24, row = rows.subarray(k - i, k - i + 24);
      sum += ce(timedLogits(row, i, want / T), x0.tokens[k]);
      hidden++;
    }
    assertEquals(r.hidden, hidden);
    assert(Math.abs(hidden / rows.length - fraction) < 0.1, `${hidden}`);
    assertAlmostEquals(r.nll, sum / hidden, 1e-5);
    // The term-scorer path (the engines') gives the same figure from the
    // same draws, its terms at the same time.
    const scorer = new TimedScorer();
    const s = await evaluateInfill(scorer, x0, { ...opts, prng: prng(3) });
    assertEquals(s.hidden, r.hidden);
    assertAlmostEquals(s.nll, r.nll, 1e-5);
    assert(scorer.terms[0].t!.every((x) => Math.abs(x - want / T) < 1e-6));
    assertEquals(scorer.terms[0].inputs, rows);
  }
});

Deno.test("evaluateInfill() of a staggered process scores at the step where the row's mean masked fraction reaches the fraction, not where one clock would", async () => {
  // Span 4, delta 0.5: position j's clock runs over [(3 − j)/6, (3 − j)/6 + 0.5],
  // so for t in [1/6, 1/3] the masked share of a row is (1 − eps)(t − 1/12)
  // (positions 3 and 2 at 2t and 2t − 1/3, the others clean), in closed form.
  const T = 60, fraction = 0.16, eps = 1e-3;
  const process = maskedDiffusion({
    kind: "masked-diffusion",
    vocab: 9,
    maskId: MASK,
    steps: T,
    schedule: { kind: "log-linear", eps },
    objective: "mdlm",
    stagger: { span: 4, delta: 0.5 },
  });
  let want = 10; // inside [1/6, 1/3]: step 10 is t = 1/6
  while ((1 - eps) * (want / T - 1 / 12) < fraction) want++;
  assertEquals(want, 15); // t = 0.25; one clock would give step 10 (t ≈ 0.16)
  const x0 = {
    tokens: Int32Array.from({ length: 4 * 24 }, (_, i) => (i * 7 + 3) % 8),
    batchSize: 4,
    length: 24,
  };
  const opts = { fraction, steps: 4, prng: prng(5) };
  const model = new TimedToy();
  await process.evaluateInfill(model, x0, opts);
  const { t } = model.calls[0];
  assert(t.every((x) => Math.abs(x - want / T) < 1e-6), `t ${t[0]}`);
  const scorer = new TimedScorer();
  await process.evaluateInfill(scorer, x0, { ...opts, prng: prng(5) });
  assert(scorer.terms[0].t!.every((x) => Math.abs(x - want / T) < 1e-6));
});

/**
 * A term scorer and device generator that records what it is asked: each
 * hidden target costs `loss` nats, and generation fills every blank with
 * `fill`'s token there.
 */
class Recorder implements TermScorer, MaskedGenerator {
  readonly timeConditioned = false;
  readonly config = {
    kind: "bidirectional" as const,
    vocabSize: 9,
    contextLength: 64,
  };
  terms: WeightedTokens[] = [];
  generations: MaskedGenerationOptions[] = [];
  constructor(readonly loss: number, readonly fill: Int32Array) {}
  rowLosses(list: readonly WeightedTokens[]): Promise<Float64Array[]> {
    this.terms.push(...list);
    return Promise.resolve(list.map((w) => {
      const sums = new Float64Array(w.rows);
      for (let k = 0; k < w.rows * w.length; k++) {
        if (w.targets[k] >= 0) sums[Math.floor(k / w.length)] += this.loss;
      }
      return sums;
    }));
  }
  generateMasked(o: MaskedGenerationOptions): Promise<Generation> {
    this.generations.push(o);
    const tokens = o.prompt!.map((x, k) => x === o.maskId ? this.fill[k] : x);
    return Promise.resolve({ tokens, forwardPasses: 1, syncs: 1 });
  }
}

Deno.test("evaluateInfill() hides exactly the positions whose draw is below the fraction, fills them with the draws after those, in at most T steps", async () => {
  const x0 = {
    tokens: Int32Array.from({ length: 3 * 8 }, (_, i) => (i * 3) % 8),
    batchSize: 3,
    length: 8,
  };
  const schedule = absorbingBeta({ steps: 20 });
  const model = new Recorder(1, x0.tokens);
  await evaluateInfill(model, x0, {
    fraction: 0.4,
    maskId: MASK,
    schedule,
    steps: 50,
    prng: prng(11),
  });
  // Replayed: one draw per position in order, then the generator's seed.
  // Catches the first position never drawn (`i = 1`), and one draw too
  // many (`i <= length`: the generator's seed from the next draw).
  const u = prng(11);
  const want = x0.tokens.map((x) => u.next() < 0.4 ? MASK : x);
  assertEquals(model.terms[0].inputs, want);
  assertEquals(
    model.generations[0].seed,
    Math.floor(u.next() * 2 ** 32) >>> 0,
  );
  // 50 steps asked of a T = 20 process: 20 (catches `min` → `max`).
  assertEquals(model.generations[0].steps.length, 20);
});

Deno.test("evaluateInfill() scores at the step where exactly the fraction is masked, when one is", async () => {
  const schedule = absorbingBeta({ steps: 20 });
  // 1 − ᾱ(5) is exact (Sterbenz), and so is 1 − (1 − ᾱ(5)) = ᾱ(5): the
  // masked fraction reaches the asked one at step 5 exactly. Catches
  // `ᾱ(t − 1) <= 1 − fraction` → `<` (step 6).
  const fraction = 1 - schedule.alphaBar(5);
  assertEquals(1 - fraction, schedule.alphaBar(5));
  const x0 = {
    tokens: Int32Array.from({ length: 16 }, (_, i) => i % 8),
    batchSize: 2,
    length: 8,
  };
  const model = new Recorder(1, x0.tokens);
  await evaluateInfill(model, x0, {
    fraction,
    maskId: MASK,
    schedule,
    steps: 4,
    prng: prng(2),
  });
  assert(model.terms[0].t!.every((t) => Math.abs(t - 5 / 20) < 1e-7));
  await assertRejects(
    () =>
      evaluateInfill(model, x0, {
        fraction: 0,
        maskId: MASK,
        schedule,
        steps: 4,
        prng: prng(2),
      }),
    RangeError,
    "fraction must be in (0, 1)",
  );
});

Deno.test("evaluateInfill() with one hidden token counts it, the first position included; with none, 0 rather than 0/0", async () => {
  const schedule = absorbingBeta({ steps: 20 });
  const x0 = { tokens: Int32Array.of(3, 1, 4, 1), batchSize: 1, length: 4 };
  // A seed whose draws hide the first position and no other, found by replay.
  let seed = 0;
  for (;; seed++) {
    const u = prng(seed);
    const draws = [u.next(), u.next(), u.next(), u.next()];
    if (draws[0] < 0.3 && draws.slice(1).every((d) => d >= 0.3)) break;
  }
  const model = new Recorder(2.5, x0.tokens);
  const one = await evaluateInfill(model, x0, {
    fraction: 0.3,
    maskId: MASK,
    schedule,
    steps: 4,
    prng: prng(seed),
  });
  // Catches the divisor `max(hidden, 1)` → `max(hidden, 2)` (NLL 1.25,
  // accuracy 0.5) and the accuracy's loop from position 1 (accuracy 0).
  assertEquals([one.hidden, one.nll, one.accuracy], [1, 2.5, 1]);
  // A fraction no draw goes below: nothing hidden, NLL and accuracy 0
  // (catches `max(hidden, 1)` → `max(hidden, 0)`: 0/0).
  const none = await evaluateInfill(model, x0, {
    fraction: 1e-12,
    maskId: MASK,
    schedule,
    steps: 4,
    prng: prng(seed),
  });
  assertEquals([none.hidden, none.nll, none.accuracy], [0, 0, 0]);
});
