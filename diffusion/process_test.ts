import { prng } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { maskedDiffusion, type MaskedDiffusionSpec } from "./process.ts";
import { mdlmLoss } from "./loss.ts";
import { discreteElbo } from "./elbo.ts";
import { logLinear } from "./schedule.ts";
import { ConstantDenoiser, TinyDenoiser } from "./_test_models.ts";

await tf.setBackend("cpu");

const SPEC: MaskedDiffusionSpec = {
  kind: "masked-diffusion",
  vocab: 6,
  maskId: 5,
  steps: 40,
  schedule: { kind: "log-linear" },
  objective: "mdlm",
  padId: 4,
};

Deno.test("maskedDiffusion() computes the same loss and exact bound as the functions it wraps", async () => {
  const process = maskedDiffusion(SPEC);
  const model = new TinyDenoiser(6, 8, 16, 3);
  const x0 = {
    tokens: Int32Array.from({ length: 24 }, (_, i) => (i * 7) % 5),
    batchSize: 3,
    length: 8,
  };
  const a = process.loss(model, x0, { prng: prng(1), training: false });
  const b = mdlmLoss(model, x0, {
    schedule: logLinear(),
    maskId: 5,
    prng: prng(1),
    padId: 4,
    training: false,
  });
  assertEquals(a.dataSync()[0], b.dataSync()[0]);
  const exact = await process.bound(model, x0, {
    prng: prng(2),
    kind: "exact",
  });
  const direct = await discreteElbo(model, x0, {
    transition: process.transition,
    prng: prng(2),
    padId: 4,
  });
  assertEquals(exact, direct);
  tf.dispose([a, b]);
  model.dispose();
});

Deno.test("maskedDiffusion() round-trips through JSON and never draws the padding id", async () => {
  const process = maskedDiffusion(
    JSON.parse(JSON.stringify(maskedDiffusion(SPEC))),
  );
  assertEquals(process.toJSON(), SPEC);
  const model = new TinyDenoiser(6, 8, 16, 3);
  const out = await process.sample(model, {
    batchSize: 4,
    length: 8,
    steps: 10,
    prng: prng(0),
  });
  assert(!out.tokens.includes(4) && !out.tokens.includes(5));
  model.dispose();
});

Deno.test("maskedDiffusion() rejects malformed specs with one-line errors", () => {
  const bad: [Record<string, unknown>, string][] = [
    [{ ...SPEC, steps: 0 }, "steps must be an integer ≥ 1"],
    [{ ...SPEC, maskId: 6 }, "maskId 6 is not below vocab 6"],
    [{ ...SPEC, objective: "sedd" }, 'objective must be "mdlm" or "d3pm"'],
    [
      { ...SPEC, schedule: { kind: "geometric" } },
      "schedule.kind must be one of",
    ],
    [
      { ...SPEC, schedule: { kind: "log-linear", eps: 2 } },
      "eps must be in (0, 1)",
    ],
    [{ ...SPEC, extra: 1 }, 'unknown key "extra"'],
    [{ ...SPEC, padId: 5 }, "differ from maskId"],
    [
      { ...SPEC, times: { min: 0.9, max: 0.5 } },
      "times need 0 ≤ min < max ≤ 1",
    ],
    [{ ...SPEC, times: { rate: 1 } }, 'unknown times key "rate"'],
  ];
  for (const [spec, fragment] of bad) {
    const e = assertThrows(
      () => maskedDiffusion(spec as unknown as MaskedDiffusionSpec),
      RangeError,
    );
    assert(e.message.includes(fragment), `${e.message} lacks ${fragment}`);
    assert(!e.message.includes("\n"));
  }
});

Deno.test("maskedDiffusion() refuses a spec without steps by name, in one line", () => {
  const { steps: _, ...noSteps } = SPEC;
  const e = assertThrows(
    () => maskedDiffusion(noSteps as unknown as MaskedDiffusionSpec),
    RangeError,
  );
  assertEquals(
    e.message,
    "Invalid masked diffusion process: steps is missing: an integer ≥ 1",
  );
});

/** Σ weights · CE of the terms, computed directly in tfjs. */
function weightedCe(
  model: TinyDenoiser,
  terms: ReturnType<ReturnType<typeof maskedDiffusion>["lossTerms"]>,
): number {
  return tf.tidy(() => {
    const logits = model.forward(
      tf.tensor2d(terms.inputs, [terms.rows, terms.length], "int32"),
    );
    const v = logits.shape[2];
    const bias = tf.oneHot(tf.tensor1d([terms.excludeToken!], "int32"), v)
      .mul(-1e9);
    const logp = tf.logSoftmax(logits.reshape([-1, v]).add(bias));
    const targets = Int32Array.from(terms.targets, (x) => Math.max(x, 0));
    const picked = logp.mul(tf.oneHot(tf.tensor1d(targets, "int32"), v)).sum(
      -1,
    );
    return picked.mul(tf.tensor1d(terms.weights)).sum().neg().dataSync()[0];
  });
}

Deno.test("lossTerms() is the same loss as loss() for the same draws, per row and per token", () => {
  const model = new TinyDenoiser(6, 8, 16, 5);
  const x0 = {
    tokens: Int32Array.from({ length: 32 }, (_, i) => (i * 3) % 5),
    batchSize: 4,
    length: 8,
  };
  for (const perToken of [false, true]) {
    const process = maskedDiffusion({ ...SPEC, times: { perToken } });
    const loss = process.loss(model, x0, { prng: prng(9), training: false });
    const terms = process.lossTerms(x0, { prng: prng(9) });
    const want = loss.dataSync()[0];
    assert(
      Math.abs(weightedCe(model, terms) - want) < 1e-5 * Math.max(1, want),
      `perToken ${perToken}: ${weightedCe(model, terms)} vs ${want}`,
    );
    loss.dispose();
  }
  assertThrows(
    () =>
      maskedDiffusion({ ...SPEC, objective: "d3pm" }).lossTerms(x0, {
        prng: prng(0),
      }),
    RangeError,
    "no weighted cross-entropy form",
  );
  model.dispose();
});

Deno.test("bound() refuses an unknown kind or draws and a samples count that is not a positive integer", async () => {
  // kind "bogus" ran the exact bound, draws "bogus" drew by time, and
  // samples 0 blamed the batch ("no tokens (all padding)").
  const process = maskedDiffusion(SPEC);
  const model = new TinyDenoiser(6, 8, 16, 3);
  const x0 = { tokens: Int32Array.of(0, 1, 2, 3), batchSize: 1, length: 4 };
  const cases: [Record<string, unknown>, string][] = [
    [
      { kind: "bogus" },
      'bound: kind must be "continuous" or "exact", got "bogus"',
    ],
    [
      { draws: "bogus" },
      'continuousElbo: draws must be "time" or "count", got "bogus"',
    ],
    [
      { samples: 0 },
      "continuousElbo: samples must be a positive integer, got 0",
    ],
    [
      { samples: 2.5 },
      "continuousElbo: samples must be a positive integer, got 2.5",
    ],
  ];
  for (const [bad, message] of cases) {
    await assertRejects(
      async () => await process.bound(model, x0, { prng: prng(0), ...bad }),
      RangeError,
      message,
    );
  }
  model.dispose();
});

Deno.test("the process refuses clean rows with ids outside the vocabulary or the mask id, and prompts with ids outside the vocabulary", async () => {
  // An id past the vocabulary gave a loss of 0 and a bound of 1.56 nats, a
  // mask id in x0 a bound of 2.5e8 nats, and a prompt's id 50 came back in
  // the sample.
  const process = maskedDiffusion(SPEC); // vocab 6, mask 5, pad 4
  const model = new TinyDenoiser(6, 8, 16, 3);
  const rows = (...tokens: number[]) => ({
    tokens: Int32Array.from(tokens),
    batchSize: 1,
    length: tokens.length,
  });
  for (const [id, at] of [[6, 2], [-1, 0], [5, 3]]) {
    const x0 = rows(0, 1, 2, 3);
    x0.tokens[at] = id;
    const message =
      `Clean rows: id ${id} at index ${at} is not a token id: expected an integer in [0, 6) other than the mask id 5`;
    assertThrows(
      () => process.loss(model, x0, { prng: prng(0) }),
      RangeError,
      message,
    );
    assertThrows(
      () => process.lossTerms(x0, { prng: prng(0) }),
      RangeError,
      message,
    );
    await assertRejects(
      async () => await process.bound(model, x0, { prng: prng(0) }),
      RangeError,
      message,
    );
    await assertRejects(
      async () =>
        await process.evaluateInfill(model, x0, {
          fraction: 0.5,
          steps: 4,
          prng: prng(0),
        }),
      RangeError,
      message,
    );
  }
  assertThrows(
    () =>
      process.loss(model, {
        tokens: Int32Array.of(0, 1, 2),
        batchSize: 1,
        length: 4,
      }, { prng: prng(0) }),
    RangeError,
    "Clean rows: 3 ids are not batchSize 1 × length 4",
  );
  for (
    const prompt of [Int32Array.of(1, 50, 5, 5), Int32Array.of(1, -3, 5, 5)]
  ) {
    await assertRejects(
      async () => await process.fillBlanks(model, prompt, { prng: prng(1) }),
      RangeError,
      `prompt: id ${
        prompt[1]
      } at index 1 is outside the vocabulary [0, 6) (the mask id 5 marks a blank)`,
    );
    await assertRejects(
      async () => await process.sample(model, { prompt, prng: prng(1) }),
      RangeError,
      `prompt: id ${prompt[1]} at index 1 is outside the vocabulary [0, 6)`,
    );
  }
  // Padding (4) is a clean id.
  tf.dispose(
    process.loss(model, rows(0, 1, 4, 4, 0, 1, 2, 3), { prng: prng(0) }),
  );
  model.dispose();
});

Deno.test("maskedDiffusion() refuses a model of another vocabulary or a causal one in every method", async () => {
  const process = maskedDiffusion({
    kind: "masked-diffusion",
    vocab: 9,
    maskId: 8,
    steps: 10,
    schedule: { kind: "log-linear" },
    objective: "mdlm",
  });
  const x0 = {
    tokens: Int32Array.from({ length: 16 }, (_, i) => i % 8),
    batchSize: 2,
    length: 8,
  };
  const prompt = Int32Array.of(1, 8, 2, 8, 3, 8, 4, 8);
  const wide = new ConstantDenoiser(20), narrow = new ConstantDenoiser(5);
  const causal = {
    config: { kind: "causal" as const, vocabSize: 9, contextLength: 64 },
    timeConditioned: false,
    forward: (x: tf.Tensor2D) => tf.zeros([...x.shape, 9]) as tf.Tensor3D,
    dispose() {},
  };
  for (
    const [model, why] of [
      [wide, "the model's vocabSize is 20; expected the process's vocab 9"],
      [narrow, "the model's vocabSize is 5; expected the process's vocab 9"],
      [causal, "the model is causal; expected a bidirectional model"],
    ] as const
  ) {
    assertThrows(
      () => process.loss(model, x0, { prng: prng(0) }),
      RangeError,
      why,
    );
    await assertRejects(
      async () => await process.bound(model, x0, { prng: prng(0) }),
      RangeError,
      why,
    );
    await assertRejects(
      async () =>
        await process.bound(model, x0, { prng: prng(0), kind: "exact" }),
      RangeError,
      why,
    );
    await assertRejects(
      async () => await process.score(model, x0, { prng: prng(0) }),
      RangeError,
      why,
    );
    assertThrows(
      () => process.sample(model, { length: 8, prng: prng(0) }),
      RangeError,
      why,
    );
    assertThrows(
      () => process.fillBlanks(model, prompt, { prng: prng(0) }),
      RangeError,
      why,
    );
    assertThrows(
      () =>
        process.evaluateInfill(model, x0, {
          fraction: 0.5,
          steps: 4,
          prng: prng(0),
        }),
      RangeError,
      why,
    );
  }
  // The model of the process's vocabulary still runs; its draws stay below it.
  const fits = new ConstantDenoiser(9);
  const out = await process.sample(fits, {
    length: 8,
    prng: prng(0),
    batchSize: 4,
  });
  assert(out.tokens.every((id) => id >= 0 && id < 8));
  const filled = await process.fillBlanks(fits, prompt, { prng: prng(0) });
  assert(filled.tokens.every((id) => id >= 0 && id < 8));
  assert((await process.bound(fits, x0, { prng: prng(0) })).nats > 0);
  // A device generator without a config is not checked.
  const gen = {
    timeConditioned: false,
    generateMasked: (o: { batchSize: number; length: number }) =>
      Promise.resolve({
        tokens: new Int32Array(o.batchSize * o.length),
        forwardPasses: 1,
        syncs: 1,
      }),
  };
  assertEquals(
    (await process.sample(gen, { length: 8, prng: prng(0) })).tokens.length,
    8,
  );
});
