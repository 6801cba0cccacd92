import * as tf from "@tensorflow/tfjs";
import { prng, type TokenBatch } from "@d3pm/core";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { maskedDiffusion, maskedLanguageModel } from "./mod.ts";
import { ConstantDenoiser, TinyDenoiser } from "./_test_models.ts";

await tf.setBackend("cpu");

// 7 ids: 0–4 text, 5 padding, 6 the mask.
const V = 7, PAD = 5, MASK = 6;
const mlm = maskedLanguageModel({
  kind: "masked-language-model",
  vocab: V,
  maskId: MASK,
  padId: PAD,
  steps: 20,
});

function text(rows: number, length: number, seed = 0): TokenBatch {
  const rng = prng(seed);
  const tokens = Int32Array.from(
    { length: rows * length },
    (_, i) => (i % length >= length - 2 ? PAD : rng.nextInt(5)),
  );
  return { tokens, batchSize: rows, length };
}

/** −log softmax(logits without the mask)[target], in float64. */
function ce(logits: ArrayLike<number>, target: number): number {
  let max = -Infinity;
  for (let j = 0; j < V; j++) if (j !== MASK) max = Math.max(max, logits[j]);
  let z = 0;
  for (let j = 0; j < V; j++) if (j !== MASK) z += Math.exp(logits[j] - max);
  return Math.log(z) + max - logits[target];
}

async function logitsOf(
  model: TinyDenoiser,
  tokens: Int32Array,
  rows: number,
  length: number,
): Promise<Float32Array> {
  const t = model.forward(tf.tensor2d(tokens, [rows, length], "int32"));
  const data = (await t.data()) as Float32Array;
  t.dispose();
  return data;
}

Deno.test("maskedLanguageModel() loss equals a brute-force mean cross-entropy over the masked tokens", async () => {
  const model = new TinyDenoiser(V, 8, 16, 3);
  const x0 = text(4, 8);
  const terms = mlm.lossTerms(x0, { prng: prng(11) });
  const logits = await logitsOf(model, terms.inputs, 4, 8);
  let sum = 0, count = 0;
  for (let i = 0; i < terms.inputs.length; i++) {
    if (terms.inputs[i] !== MASK) continue;
    sum += ce(logits.subarray(i * V, (i + 1) * V), x0.tokens[i]);
    count++;
  }
  assert(count > 0);
  const loss = mlm.loss(model, x0, { prng: prng(11), training: false });
  assertAlmostEquals((await loss.data())[0], sum / count, 1e-5);
  loss.dispose();
  // The terms weigh each masked token 1/count and score nothing else.
  let wsum = 0;
  for (let i = 0; i < terms.weights.length; i++) {
    const masked = terms.inputs[i] === MASK;
    assertEquals(terms.targets[i], masked ? x0.tokens[i] : -1);
    assertEquals(terms.weights[i] > 0, masked);
    wsum += terms.weights[i];
  }
  assertAlmostEquals(wsum, 1, 1e-6);
  assertEquals(terms.excludeToken, MASK);
  assertEquals(terms.t, undefined); // not time-conditioned
  model.dispose();
});

Deno.test("maskedLanguageModel() masks each token at the fixed rate and never padding", () => {
  const x0 = text(64, 64, 1);
  const { inputs } = mlm.lossTerms(x0, { prng: prng(2) });
  let masked = 0, real = 0;
  for (let i = 0; i < inputs.length; i++) {
    if (x0.tokens[i] === PAD) assertEquals(inputs[i], PAD);
    else {
      real++;
      if (inputs[i] === MASK) masked++;
      else assertEquals(inputs[i], x0.tokens[i]); // plain masking: no random swaps
    }
  }
  const sd = Math.sqrt(0.15 * 0.85 / real);
  assert(Math.abs(masked / real - 0.15) < 4 * sd, `${masked / real}`);
});

Deno.test("maskedLanguageModel() pseudo-log-likelihood is ln(V − 1) for uniform logits and matches one pass per token", async () => {
  const x0 = text(3, 6, 4);
  const counted = x0.tokens.filter((x) => x !== PAD).length;
  const uniform = await mlm.pseudoLogLikelihood(new ConstantDenoiser(V), x0);
  assertAlmostEquals(uniform.nats, Math.log(V - 1), 1e-5); // the mask is never predicted
  assertEquals(uniform.tokens, counted);
  const model = new TinyDenoiser(V, 6, 16, 5);
  const batched = await mlm.pseudoLogLikelihood(model, x0);
  let sum = 0;
  for (let i = 0; i < x0.tokens.length; i++) {
    if (x0.tokens[i] === PAD) continue;
    const r = Math.floor(i / 6);
    const row = x0.tokens.slice(r * 6, (r + 1) * 6);
    row[i % 6] = MASK;
    const logits = await logitsOf(model, row, 1, 6);
    sum += ce(logits.subarray((i % 6) * V, (i % 6 + 1) * V), x0.tokens[i]);
  }
  assertAlmostEquals(batched.nats, sum / counted, 1e-5);
  assert(batched.stderr > 0);
  model.dispose();
});

Deno.test("maskedLanguageModel() maskedNll is ln(V − 1) for uniform logits, counted over the masked tokens", async () => {
  const x0 = text(8, 16, 6);
  const est = await mlm.maskedNll(new ConstantDenoiser(V), x0, {
    prng: prng(7),
  });
  assertAlmostEquals(est.nats, Math.log(V - 1), 1e-5);
  const terms = mlm.lossTerms(x0, { prng: prng(7) });
  assertEquals(est.tokens, terms.targets.filter((t) => t >= 0).length);
});

Deno.test("maskedLanguageModel() scores with the D3PM bound: a context-free denoiser's bound is its cross-entropy", async () => {
  // A denoiser that ignores its input: the continuous bound's integrand is
  // then its cross-entropy times the masking density, which integrates to
  // exactly the mean cross-entropy over the unpadded tokens (in float64
  // here: SUBS leaves the mask's logit out; padding is never scored).
  const logits = Float32Array.of(1.2, 0.1, -0.7, 0.5, -1.5, 0.3, 2.0);
  const model = new ConstantDenoiser(V, logits);
  const x0 = text(512, 8, 12);
  let sum = 0, count = 0;
  for (const x of x0.tokens) {
    if (x === PAD) continue;
    sum += ce(logits, x);
    count++;
  }
  const want = sum / count;
  const est = await mlm.score(model, x0, { prng: prng(1) });
  assertEquals(est.tokens, count);
  assert(
    Math.abs(est.nats - want) < 4 * est.stderr,
    `${est.nats} ± ${est.stderr} vs ${want}`,
  );
  // Power: a bound 15 % off (the weight scaled by 0.85) lands ≥ 4 s.e.
  // beyond the band.
  assert(0.15 * want > 8 * est.stderr, `stderr ${est.stderr} of ${want}`);
});

Deno.test("maskedLanguageModel() samples by confidence unmasking", async () => {
  const diffusion = maskedDiffusion({
    kind: "masked-diffusion",
    vocab: V,
    maskId: MASK,
    padId: PAD,
    steps: 20,
    schedule: { kind: "log-linear" },
    objective: "mdlm",
  });
  const model = new TinyDenoiser(V, 8, 16, 8);
  const a = await mlm.sample(model, {
    batchSize: 2,
    length: 8,
    steps: 5,
    prng: prng(3),
  });
  const b = await diffusion.sample(model, {
    batchSize: 2,
    length: 8,
    steps: 5,
    prng: prng(3),
    strategy: "confidence",
  });
  assertEquals(a, b);
  assert(!a.tokens.includes(MASK) && !a.tokens.includes(PAD));
  model.dispose();
});

Deno.test("maskedLanguageModel() round-trips its JSON and refuses bad specs and time-conditioned networks", () => {
  assertEquals(maskedLanguageModel(mlm.toJSON()).toJSON(), mlm.toJSON());
  assertEquals(mlm.toJSON(), {
    kind: "masked-language-model",
    vocab: V,
    maskId: MASK,
    rate: 0.15,
    padId: PAD,
    steps: 20,
    schedule: { kind: "log-linear" },
  });
  const base = { kind: "masked-language-model" as const, vocab: V, maskId: 6 };
  assertThrows(
    () => maskedLanguageModel({ ...base, rate: 1 }),
    RangeError,
    "rate must be in (0, 1), got 1",
  );
  assertThrows(
    () => maskedLanguageModel({ ...base, maskId: 7 }),
    RangeError,
    "Invalid masked language model: maskId 7 is not below vocab 7",
  );
  assertThrows(
    () => maskedLanguageModel({ ...base, objective: "mdlm" } as never),
    RangeError,
    'unknown key "objective"',
  );
  const timed = Object.assign(new ConstantDenoiser(V), {
    timeConditioned: true,
  });
  assertThrows(
    () => mlm.loss(timed, text(1, 4), { prng: prng(0) }),
    RangeError,
    "not time-conditioned",
  );
});

// A short row often drew no mask (0.85² = 72% of 2-token rows): training
// logged a loss of 0 for such a batch, and a validation batch of them threw
// "the batch has no tokens (all padding)" after the whole training.
Deno.test("maskedLanguageModel() masks at least one token per row: the least draw of a row that drew none, every other row as drawn", async () => {
  const rows = 400, length = 4; // the last 2 of each row are padding
  const x0 = text(rows, length, 3);
  const terms = mlm.lossTerms(x0, { prng: prng(5) });
  // The plain Bernoulli draws of the same stream, one per unpadded token.
  const rng = prng(5);
  let filled = 0;
  for (let r = 0; r < rows; r++) {
    const draws: [number, number][] = [];
    for (let i = r * length; i < (r + 1) * length; i++) {
      if (x0.tokens[i] !== PAD) draws.push([i, rng.next()]);
    }
    const plain = draws.filter(([, u]) => u < 0.15).map(([i]) => i);
    const least = draws.reduce((a, b) => (b[1] < a[1] ? b : a))[0];
    const want = plain.length > 0 ? plain : [least];
    if (plain.length === 0) filled++;
    const got = [];
    for (let i = r * length; i < (r + 1) * length; i++) {
      if (terms.inputs[i] === MASK) got.push(i);
    }
    assertEquals(got, want, `row ${r}`);
  }
  assert(filled > 200, `${filled} rows drew no mask`); // 0.85² of 400 ≈ 289
  // One row of two tokens: the estimate and the loss have a token to score.
  const one = { tokens: Int32Array.of(1, 2), batchSize: 1, length: 2 };
  for (let seed = 0; seed < 20; seed++) {
    const est = await mlm.maskedNll(new ConstantDenoiser(V), one, {
      prng: prng(seed),
    });
    assertEquals(est.tokens, 1);
    assertAlmostEquals(est.nats, Math.log(V - 1), 1e-5);
  }
});

Deno.test("maskedLanguageModel() refuses a network of another vocabulary or a causal one", async () => {
  const x0 = text(2, 8);
  const causal = {
    config: { kind: "causal" as const, vocabSize: V, contextLength: 64 },
    timeConditioned: false,
    forward: (x: tf.Tensor2D) => tf.zeros([...x.shape, V]) as tf.Tensor3D,
    dispose() {},
  };
  for (
    const [model, why] of [
      [
        new ConstantDenoiser(20),
        "vocabSize is 20; expected the process's vocab 7",
      ],
      [
        new ConstantDenoiser(5),
        "vocabSize is 5; expected the process's vocab 7",
      ],
      [causal, "the model is causal; expected a bidirectional model"],
    ] as const
  ) {
    assertThrows(() => mlm.loss(model, x0, { prng: prng(0) }), RangeError, why);
    await assertRejects(
      () => mlm.maskedNll(model, x0, { prng: prng(0) }),
      RangeError,
      why,
    );
    await assertRejects(
      () => mlm.pseudoLogLikelihood(model, x0),
      RangeError,
      why,
    );
    await assertRejects(
      async () => await mlm.bound(model, x0, { prng: prng(0) }),
      RangeError,
      why,
    );
    assertThrows(
      () => mlm.sample(model, { length: 8, prng: prng(0) }),
      RangeError,
      why,
    );
  }
});

Deno.test("maskedLanguageModel() refuses clean rows holding the mask id or an id past the vocabulary, as the masked diffusion does", async () => {
  const model = new ConstantDenoiser(V);
  for (const bad of [MASK, 99, -1]) {
    const x0 = text(2, 8);
    x0.tokens[3] = bad;
    const why =
      `Clean rows: id ${bad} at index 3 is not a token id: expected an integer in [0, ${V}) other than the mask id ${MASK}`;
    // The mask id gave 5e8 nats; 99 a raw GatherV2 error.
    await assertRejects(
      () => mlm.pseudoLogLikelihood(model, x0),
      RangeError,
      why,
    );
    await assertRejects(
      () => mlm.maskedNll(model, x0, { prng: prng(0) }),
      RangeError,
      why,
    );
    assertThrows(() => mlm.loss(model, x0, { prng: prng(0) }), RangeError, why);
    assertThrows(() => mlm.lossTerms(x0, { prng: prng(0) }), RangeError, why);
    assertThrows(
      () => mlm.diffusion.loss(model, x0, { prng: prng(0) }),
      RangeError,
      why,
    );
  }
  // Padding is a clean id.
  assertAlmostEquals(
    (await mlm.pseudoLogLikelihood(model, text(2, 8))).nats,
    Math.log(V - 1),
    1e-5,
  );
});
