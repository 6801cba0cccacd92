import { type LanguageModel, prng } from "@d3pm/core";
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
import { tokenProbabilities } from "@d3pm/core";
import { absorbingBeta, cosineBeta } from "./schedule.ts";
import { ConstantDenoiser } from "./_test_models.ts";

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

Deno.test("ancestral samples follow p̃ in float64 (frequencies within 5 s.d.)", async () => {
  const out = await sample(constant(), {
    schedule: absorbingBeta({ steps: 10 }),
    maskId: MASK,
    prng: prng(1),
    length: 500,
    batchSize: 8,
    cache: true,
  });
  const n = out.tokens.length;
  const counts = new Array(V).fill(0);
  for (const x of out.tokens) counts[x]++;
  P.forEach((p, j) => {
    assert(
      Math.abs(counts[j] / n - p) <= 5 * Math.sqrt((p * (1 - p)) / n) + 1e-12,
      `token ${j}: ${counts[j] / n}`,
    );
  });
  assertEquals(counts[MASK], 0);
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
    () => tokenProbabilities(logits, { temperature: 0 }),
    RangeError,
    "temperature must be > 0",
  );
  assertThrows(
    () => tokenProbabilities(logits, { topP: 1.5 }),
    RangeError,
    "topP must be in (0, 1]",
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
