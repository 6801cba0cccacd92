import { type CausalLM, prng, type WeightedTokens } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { causalNll } from "./loss.ts";
import { generate } from "./generate.ts";
import { autoregressive, type AutoregressiveSpec } from "./process.ts";

await tf.setBackend("cpu");

const V = 7;

/** Logits depend on the token at each position: a fixed random table W[x] — a bigram model. */
class Bigram implements CausalLM {
  readonly config = {
    kind: "causal" as const,
    vocabSize: V,
    contextLength: 64,
  };
  readonly timeConditioned = false;
  table: Float32Array;
  disposedCaches = 0;
  constructor(seed: number) {
    const r = prng(seed);
    this.table = Float32Array.from(
      { length: V * V },
      () => 4 * (r.next() - 0.5),
    );
  }
  forward(tokens: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() =>
      tf.gather(
        tf.tensor2d(this.table, [V, V]),
        tokens,
      ) as unknown as tf.Tensor3D
    );
  }
  createCache(): { length: number; dispose(): void } {
    return { length: 0, dispose: () => void this.disposedCaches++ };
  }
  decode(tokens: tf.Tensor2D): tf.Tensor3D {
    return this.forward(tokens);
  }
  dispose(): void {}
}

function logSoftmaxRow(row: Float32Array): number[] {
  const m = Math.max(...row);
  const z = Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0)) + m;
  return Array.from(row, (x) => x - z);
}

const x0 = {
  tokens: Int32Array.from({ length: 5 * 6 }, (_, i) => (i * 3 + (i >> 2)) % V),
  batchSize: 5,
  length: 6,
};

Deno.test("causalNll() equals the brute-force bigram NLL over every predicted token", async () => {
  const model = new Bigram(1);
  let want = 0, n = 0;
  for (let b = 0; b < x0.batchSize; b++) {
    for (let i = 1; i < x0.length; i++) {
      const prev = x0.tokens[b * 6 + i - 1], cur = x0.tokens[b * 6 + i];
      want -=
        logSoftmaxRow(model.table.subarray(prev * V, (prev + 1) * V))[cur];
      n++;
    }
  }
  const got = await causalNll(model, x0);
  assertEquals(got.tokens, n);
  assertEquals(got.stderr, 0);
  assertAlmostEquals(got.nats, want / n, 1e-5);
  const padded = await causalNll(model, x0, { padId: x0.tokens[1] });
  assert(padded.tokens < n);
});

Deno.test("generate() decodes token by token from the start token and disposes its cache", async () => {
  // A bigram table that always prefers (x + 1) mod V overwhelmingly.
  const model = new Bigram(0);
  model.table = Float32Array.from(
    { length: V * V },
    (_, i) => ((Math.floor(i / V) + 1) % V === i % V ? 50 : 0),
  );
  const out = await generate(model, {
    batchSize: 2,
    length: 5,
    start: 3,
    prng: prng(0),
  });
  assertEquals(Array.from(out), [3, 4, 5, 6, 0, 3, 4, 5, 6, 0]);
  assertEquals(model.disposedCaches, 1);
});

Deno.test("generate() refuses a length over the model's context up front, and decodes a row of exactly the context", async () => {
  // A tfjs model of context 32 asked for 64 decoded 31 tokens, then failed
  // inside its cache ("need 1 ≤ T ≤ 0").
  const model = new Bigram(1); // context 64
  let decodes = 0;
  const decode = model.decode.bind(model);
  model.decode = (tokens) => (decodes++, decode(tokens));
  for (const length of [65, 128]) {
    await assertRejects(
      () => generate(model, { batchSize: 2, length, start: 1, prng: prng(0) }),
      RangeError,
      `generate: length ${length} exceeds the model's context length 64 (the start token included)`,
    );
  }
  assertEquals([decodes, model.disposedCaches], [0, 0]); // nothing decoded
  const out = await generate(model, {
    batchSize: 1,
    length: 64,
    start: 1,
    prng: prng(0),
  });
  assertEquals(out.length, 64);
});

Deno.test("autoregressive() scores exactly, samples from its start token without pad, and round-trips", async () => {
  const model = new Bigram(2);
  const ar = autoregressive({ kind: "autoregressive", start: 3, padId: 0 });
  assertEquals(
    await ar.score(model, x0),
    await causalNll(model, x0, { padId: 0 }),
  );
  const out = await ar.sample(model, {
    batchSize: 8,
    length: 20,
    prng: prng(4),
  });
  assertEquals(out.forwardPasses, 19);
  for (let r = 0; r < 8; r++) assertEquals(out.tokens[r * 20], 3);
  assert(!out.tokens.includes(0));
  assertEquals(
    autoregressive(JSON.parse(JSON.stringify(ar))).toJSON(),
    ar.toJSON(),
  );
  for (
    const [spec, fragment] of [
      [{ kind: "autoregressive", start: -1 }, "start must be a token id"],
      [{ kind: "ar", start: 1 }, 'kind must be "autoregressive"'],
      [{ kind: "autoregressive", start: 1, bos: 2 }, 'unknown key "bos"'],
    ] as const
  ) {
    assertThrows(
      () => autoregressive(spec as unknown as AutoregressiveSpec),
      RangeError,
      fragment,
    );
  }
});

Deno.test("lossTerms() weighs every next-token target 1/n: the same loss as loss()", async () => {
  const model = new Bigram(3);
  const ar = autoregressive({ kind: "autoregressive", start: 3 });
  const terms = ar.lossTerms(x0);
  assertEquals([terms.rows, terms.length], [5, 5]);
  const nll = await causalNll(model, x0);
  const sum = tf.tidy(() => {
    const logp = tf.logSoftmax(
      model.forward(tf.tensor2d(terms.inputs, [5, 5], "int32")).reshape([
        -1,
        V,
      ]),
    );
    return logp.mul(tf.oneHot(tf.tensor1d(terms.targets, "int32"), V)).sum(-1)
      .mul(tf.tensor1d(terms.weights)).sum().neg().dataSync()[0];
  });
  assertAlmostEquals(sum, nll.nats, 1e-5);
  const loss = ar.loss(model, x0);
  assertAlmostEquals(loss.dataSync()[0], sum, 1e-5);
  loss.dispose();
});

Deno.test("generate() continues a prefix: the prompt is kept, the next token follows its last one, and onStep sees each token", async () => {
  const model = new Bigram(0);
  model.table = Float32Array.from(
    { length: V * V },
    (_, i) => ((Math.floor(i / V) + 1) % V === i % V ? 50 : 0),
  );
  const steps: number[][] = [];
  const out = await generate(model, {
    batchSize: 1,
    length: 6,
    start: 3,
    prefix: [0, 5],
    prng: prng(0),
    onStep: (s) => {
      steps.push([s.step, s.steps, s.forwardPasses, ...s.tokens]);
    },
  });
  // 3 (start), 0 5 (kept although the model would say 4 after 3), then 6 0 1.
  assertEquals(Array.from(out), [3, 0, 5, 6, 0, 1]);
  assertEquals(steps, [
    [1, 3, 1, 3, 0, 5, 6, 0, 0],
    [2, 3, 2, 3, 0, 5, 6, 0, 0],
    [3, 3, 3, 3, 0, 5, 6, 0, 1],
  ]);
  await assertRejects(
    () =>
      generate(model, {
        batchSize: 1,
        length: 3,
        start: 3,
        prefix: [1, 2, 3],
        prng: prng(0),
      }),
    RangeError,
    "at most length − 1 = 2",
  );
});

Deno.test("generate() with an empty prefix draws exactly what it draws without one", async () => {
  const model = new Bigram(4);
  const a = await generate(model, {
    batchSize: 2,
    length: 12,
    start: 1,
    prng: prng(9),
  });
  const b = await generate(model, {
    batchSize: 2,
    length: 12,
    start: 1,
    prng: prng(9),
    prefix: [],
    onStep: () => {},
  });
  assertEquals(Array.from(b), Array.from(a));
});

/** Float64 next-token probabilities from a bigram row: softmax(row/T), then the nucleus. */
function referenceProbabilities(
  row: Float32Array,
  temperature: number,
  topP: number,
): number[] {
  const m = Math.max(...row);
  const e = Array.from(row, (x) => Math.exp((x - m) / temperature));
  const z = e.reduce((a, b) => a + b, 0);
  const p = e.map((x) => x / z);
  const order = p.map((_, j) => j).sort((a, b) => p[b] - p[a]);
  const keep = new Set<number>();
  let mass = 0;
  for (const j of order) {
    if (mass >= topP) break;
    keep.add(j);
    mass += p[j];
  }
  return p.map((x, j) => (keep.has(j) ? x / mass : 0));
}

Deno.test("generate() draws each token from softmax(logits / T) cut to the nucleus: replayed exactly by an independent float64 sampler on the same PRNG", async () => {
  // The reference reads the same PRNG in the same order (rows within a
  // step, then the next step) and inverts the CDF of its own probabilities.
  // Exact equality (a draw flips only if u lands within ~1e-16 of a CDF
  // step). Catches: the temperature or top-p ignored, applied as T·logits,
  // or the next token drawn from the wrong row's logits.
  const model = new Bigram(6);
  const b = 4, l = 16, start = 2;
  for (
    const [temperature, topP] of [[0.7, 1], [1.6, 1], [1, 0.8], [0.8, 0.9]]
  ) {
    const out = await generate(model, {
      batchSize: b,
      length: l,
      start,
      prng: prng(21),
      temperature,
      topP,
    });
    const rng = prng(21);
    const want = new Int32Array(b * l);
    for (let r = 0; r < b; r++) want[r * l] = start;
    for (let i = 1; i < l; i++) {
      for (let r = 0; r < b; r++) {
        const prev = want[r * l + i - 1];
        const p = referenceProbabilities(
          model.table.subarray(prev * V, (prev + 1) * V),
          temperature,
          topP,
        );
        const u = rng.next();
        let j = 0, acc = p[0];
        while (u >= acc && j < V - 1) acc += p[++j];
        while (p[j] === 0) j--; // never a cut id
        want[r * l + i] = j;
      }
    }
    assertEquals(
      Array.from(out),
      Array.from(want),
      `T ${temperature} p ${topP}`,
    );
  }
});

Deno.test("generate() at temperature 0 is greedy: each token the brute-force argmax of its row (suppressed ids never), whatever the PRNG", async () => {
  const model = new Bigram(6);
  const b = 2, l = 12, start = 2;
  const row = (x: number) => model.table.subarray(x * V, (x + 1) * V);
  const argmax = (x: number, suppress: number[]) => {
    let best = -1;
    for (let v = 0; v < V; v++) {
      if (suppress.includes(v)) continue;
      if (best < 0 || row(x)[v] > row(x)[best]) best = v;
    }
    return best;
  };
  // Suppressing the start row's argmax: the greedy path must take the next.
  for (const suppress of [[], [argmax(start, [])]]) {
    const want = new Int32Array(b * l);
    for (let r = 0; r < b; r++) {
      want[r * l] = start;
      for (let i = 1; i < l; i++) {
        want[r * l + i] = argmax(want[r * l + i - 1], suppress);
      }
    }
    for (const seed of [0, 1]) {
      const out = await generate(model, {
        batchSize: b,
        length: l,
        start,
        prng: prng(seed),
        temperature: 0,
        topP: 0.9,
        suppress,
      });
      assertEquals(Array.from(out), Array.from(want), `${suppress} ${seed}`);
    }
  }
});

Deno.test("causalNll() leaves out exactly the pad targets, by brute force, on a model and on a TermScorer", async () => {
  // Padding is a *target* property: a pad target is not scored, while a pad
  // input still predicts the next (non-pad) token. Brute force in float64,
  // tolerance 1e-5 (float32 logits). Catches the weight read from the
  // input position, which the old `tokens < n` check let through.
  const model = new Bigram(8);
  const PAD = 0;
  const padded = {
    tokens: Int32Array.of(
      ...[3, 1, 0, 0, 0, 0],
      ...[5, 0, 4, 2, 0, 6],
      ...[1, 2, 3, 4, 5, 6],
    ),
    batchSize: 3,
    length: 6,
  };
  let want = 0, n = 0;
  for (let r = 0; r < 3; r++) {
    for (let i = 1; i < 6; i++) {
      const prev = padded.tokens[r * 6 + i - 1], cur = padded.tokens[r * 6 + i];
      if (cur === PAD) continue;
      want -=
        logSoftmaxRow(model.table.subarray(prev * V, (prev + 1) * V))[cur];
      n++;
    }
  }
  assertEquals(n, 9);
  const got = await causalNll(model, padded, { padId: PAD });
  assertEquals(got.tokens, n);
  assertAlmostEquals(got.nats, want / n, 1e-5);
  // The same through a scorer that sums its weighted terms in float64.
  const scorer = {
    config: model.config,
    timeConditioned: false,
    rowLosses: (list: readonly WeightedTokens[]) =>
      Promise.resolve(
        list.map((w) =>
          Float64Array.from({ length: w.rows }, (_, r) => {
            let s = 0;
            for (let j = r * w.length; j < (r + 1) * w.length; j++) {
              if (w.targets[j] < 0 || w.weights[j] === 0) continue;
              const row = model.table.subarray(
                w.inputs[j] * V,
                (w.inputs[j] + 1) * V,
              );
              s -= w.weights[j] * logSoftmaxRow(row)[w.targets[j]];
            }
            return s;
          })
        ),
      ),
  };
  const viaScorer = await causalNll(scorer, padded, { padId: PAD });
  assertEquals(viaScorer.tokens, n);
  assertAlmostEquals(viaScorer.nats, want / n, 1e-5);
});

Deno.test("outputs and alias: the softmax runs over ids below outputs, aliased targets score as their id, the spec round-trips", async () => {
  const model = new Bigram(3);
  const ar = autoregressive({
    kind: "autoregressive",
    start: 0,
    outputs: 5,
    alias: [[6, 4]],
  });
  assertEquals(autoregressive(ar.toJSON()).toJSON(), ar.toJSON());
  // By hand: log-softmax over ids 0..4 of the bigram table, 6 read as 4.
  const row = [0, 2, 6, 1, 6];
  const x0 = { tokens: Int32Array.from(row), batchSize: 1, length: 5 };
  let nats = 0;
  for (let i = 1; i < row.length; i++) {
    const logits = [
      ...model.table.subarray(row[i - 1] * V, row[i - 1] * V + 5),
    ];
    const max = Math.max(...logits);
    const lse = max +
      Math.log(logits.reduce((s, x) => s + Math.exp(x - max), 0));
    nats += lse - logits[row[i] === 6 ? 4 : row[i]];
  }
  assertAlmostEquals((await ar.score(model, x0)).nats, nats / 4, 1e-5);
  // A target outside the outputs and not aliased has probability 0.
  const five = { tokens: Int32Array.of(0, 5), batchSize: 1, length: 2 };
  assertEquals((await ar.score(model, five)).nats, Infinity);
  assertThrows(
    () =>
      autoregressive(
        { kind: "autoregressive", start: 0, alias: [[1]] } as never,
      ),
    RangeError,
    "alias must be an array of [from, to] id pairs",
  );
});

// Mutation pass (docs/testing.md, "Mutation testing"): each assertion below
// kills a mutant of autoregressive/loss.ts that the tests above let pass.
Deno.test("causalNll() edge cases: length 1 refused, a scorer handed rows × (L − 1) terms, one token not halved, a padded row's out-of-range target still infinite", async () => {
  const model = new Bigram(4);
  // Length 1 has no next token (kills `l < 2` → `l < 1`).
  await assertRejects(
    () =>
      causalNll(model, { tokens: Int32Array.of(3), batchSize: 1, length: 1 }),
    RangeError,
    "length ≥ 2",
  );
  // A scorer is handed exactly rows × (L − 1) inputs and targets (kills
  // `n * (l - 1)` → `n * (l - 0)`), and one scored token's mean is its own
  // loss (kills `Math.max(tokens, 1)` → `Math.max(tokens, 2)`).
  const seen: WeightedTokens[] = [];
  const scorer = {
    config: model.config,
    timeConditioned: false,
    rowLosses: (list: readonly WeightedTokens[]) => {
      seen.push(...list);
      // 2.5 nats per weighted term.
      return Promise.resolve(
        list.map((w) =>
          Float64Array.from({ length: w.rows }, (_, r) =>
            2.5 * w.weights
              .slice(r * w.length, (r + 1) * w.length)
              .reduce((a, x) => a + x, 0))
        ),
      );
    },
  };
  const one = { tokens: Int32Array.of(1, 2), batchSize: 1, length: 2 };
  const got = await causalNll(scorer, one);
  assertEquals([got.nats, got.stderr, got.tokens], [2.5, 0, 1]);
  // Every target padding: refused, not 0 nats over 0 tokens (a perfect
  // score) nor 0/0; the scorer is not called.
  await assertRejects(
    () => causalNll(scorer, one, { padId: 2 }),
    RangeError,
    "causalNll: the batch has no tokens (all padding)",
  );
  assertEquals(seen.length, 1);
  assertEquals([seen[0].inputs.length, seen[0].targets.length], [1, 1]);
  // Outputs below 5: row 1's target 5 follows a pad target, so the check
  // must read each target's own weight (kills the row stride `l − 1` →
  // `l − 2`, which reads the pad's weight 0 and scores the 5 as 0 nats).
  const rows = {
    tokens: Int32Array.of(1, 2, 3, 1, 0, 5),
    batchSize: 2,
    length: 3,
  };
  assertEquals(
    (await causalNll(model, rows, { padId: 0, outputs: 5 })).nats,
    Infinity,
  );
  // A pad id at or above the outputs is not scored, so it is no target of
  // probability 0 (kills `weight > 0` → `>= 0`).
  const padHigh = { tokens: Int32Array.of(1, 2, 6), batchSize: 1, length: 3 };
  assert(
    Number.isFinite(
      (await causalNll(model, padHigh, { padId: 6, outputs: 5 })).nats,
    ),
  );
});

Deno.test("causalNll() with outputs checks the targets only: a row's first id (an input) may lie outside the outputs; a target outside gives +∞ with stderr 0", async () => {
  // Mutation pass of 2026-12-06: the restricted check's loop over ids from
  // 0 or to L (`i = 1` → `0`, `i < l` → `<=`) read a row's first id as the
  // previous row's target, and the infinite estimate's `stderr: 0` → 1,
  // survived. Reference: a model with zero logits is uniform over the 3
  // outputs, ln 3 per target.
  const uniform = {
    config: { kind: "causal" as const, vocabSize: V, contextLength: 8 },
    timeConditioned: false,
    dispose() {},
    forward: (x: tf.Tensor2D) => tf.zeros([...x.shape, V]) as tf.Tensor3D,
  };
  const rows = {
    tokens: Int32Array.of(0, 1, 2, 5, 1, 0),
    batchSize: 2,
    length: 3,
  };
  const est = await causalNll(uniform, rows, { outputs: 3 });
  assertEquals(est.tokens, 4);
  assertAlmostEquals(est.nats, Math.log(3), 1e-6);
  const out = {
    tokens: Int32Array.of(0, 1, 2, 0, 1, 5),
    batchSize: 2,
    length: 3,
  };
  assertEquals(await causalNll(uniform, out, { outputs: 3 }), {
    nats: Infinity,
    stderr: 0,
    tokens: 4,
  });
  // The forward path's mean as the scorer's: one token is not halved, and
  // no token is refused (it gave 0 nats, a perfect score).
  const one = { tokens: Int32Array.of(1, 2), batchSize: 1, length: 2 };
  const single = await causalNll(uniform, one);
  assertEquals(single.tokens, 1);
  assertAlmostEquals(single.nats, Math.log(V), 1e-6);
  await assertRejects(
    () => causalNll(uniform, one, { padId: 2 }),
    RangeError,
    "the batch has no tokens (all padding)",
  );
});

Deno.test("autoregressive() refuses a bidirectional model in loss, score and sample: its score would be no likelihood", async () => {
  const ar = autoregressive({ kind: "autoregressive", start: 1 });
  const causal = new Bigram(3);
  const bidirectional = Object.assign(new Bigram(3), {
    config: { ...causal.config, kind: "bidirectional" as const },
  });
  const why = "the model is bidirectional; expected a causal model";
  assertThrows(() => ar.loss(bidirectional, x0), RangeError, why);
  await assertRejects(() => ar.score(bidirectional, x0), RangeError, why);
  await assertRejects(
    () => ar.sample(bidirectional, { batchSize: 1, length: 4, prng: prng(0) }),
    RangeError,
    why,
  );
  // A term scorer (an engine) is checked by its config.
  const terms = (kind: "causal" | "bidirectional") => ({
    config: { ...causal.config, kind },
    timeConditioned: false,
    rowLosses: (list: readonly WeightedTokens[]) =>
      Promise.resolve(list.map((t) => new Float64Array(t.rows).fill(1))),
  });
  await assertRejects(
    () => ar.score(terms("bidirectional"), x0),
    RangeError,
    why,
  );
  assertEquals((await ar.score(terms("causal"), x0)).tokens, 25);
  // The causal model scores as before.
  assertEquals(
    (await ar.score(causal, x0)).nats,
    (await causalNll(causal, x0)).nats,
  );
  assert(Number.isFinite(ar.loss(causal, x0).dataSync()[0]));
});

Deno.test("autoregressive() refuses to score rows that are all padding: 0 nats over 0 tokens was a perplexity of 1", async () => {
  const ar = autoregressive({ kind: "autoregressive", start: 1, padId: 0 });
  const pads = { tokens: new Int32Array(16), batchSize: 2, length: 8 };
  await assertRejects(
    () => ar.score(new Bigram(1), pads),
    RangeError,
    "causalNll: the batch has no tokens (all padding)",
  );
  // One target that is not padding is enough.
  pads.tokens[15] = 3;
  assertEquals((await ar.score(new Bigram(1), pads)).tokens, 1);
});

Deno.test("autoregressive() sampling refuses a suppressed id outside the model's logits instead of ignoring it", async () => {
  const ar = autoregressive({
    kind: "autoregressive",
    start: 1,
    suppress: [V],
  });
  await assertRejects(
    () => ar.sample(new Bigram(2), { batchSize: 1, length: 4, prng: prng(0) }),
    RangeError,
    `suppress: id ${V} is not one of the ${V} logits' ids: expected an integer in [0, ${V})`,
  );
  const inRange = autoregressive({
    kind: "autoregressive",
    start: 1,
    suppress: [V - 1],
  });
  const out = await inRange.sample(new Bigram(2), {
    batchSize: 2,
    length: 6,
    prng: prng(0),
  });
  assert(!out.tokens.includes(V - 1));
});

Deno.test("autoregressive() names an id outside the model's vocabulary, a non-integer length and a pad id equal to the start", async () => {
  const model = new Bigram(5);
  const ar = (start: number) =>
    autoregressive({ kind: "autoregressive", start });
  // These failed in tfjs with a raw GatherV2 error.
  await assertRejects(
    () => ar(V).sample(model, { batchSize: 1, length: 4, prng: prng(0) }),
    RangeError,
    `generate: start ${V} is not a token id: expected an integer in [0, ${V}) (the model's vocabSize)`,
  );
  await assertRejects(
    () =>
      ar(1).sample(model, {
        batchSize: 1,
        length: 4,
        prefix: [2, 99],
        prng: prng(0),
      }),
    RangeError,
    `generate: prefix[1] 99 is not a token id: expected an integer in [0, ${V})`,
  );
  for (const bad of [V, -1, 1e9]) {
    const rows = {
      tokens: Int32Array.of(1, 2, 3, 1, bad, 2),
      batchSize: 2,
      length: 3,
    };
    const why =
      `id ${bad} at index 4 of the batch is not a token id: expected an integer in [0, ${V}) (the model's vocabSize)`;
    await assertRejects(
      () => ar(1).score(model, rows),
      RangeError,
      `causalNll: ${why}`,
    );
    assertThrows(
      () => ar(1).loss(model, rows),
      RangeError,
      `causalLmLoss: ${why}`,
    );
  }
  // A length of 2.5 gave rows of 2.
  for (const length of [2.5, 0, NaN]) {
    await assertRejects(
      () => ar(1).sample(model, { batchSize: 1, length, prng: prng(0) }),
      RangeError,
      `generate: length must be an integer ≥ 1 (the start token included), got ${length}`,
    );
  }
  await assertRejects(
    () => ar(1).sample(model, { batchSize: 1.5, length: 4, prng: prng(0) }),
    RangeError,
    "generate: batchSize must be an integer ≥ 1, got 1.5",
  );
  assertThrows(
    () => autoregressive({ kind: "autoregressive", start: 1, padId: 1 }),
    RangeError,
    "Invalid autoregressive process: padId 1 must differ from start 1",
  );
  // The last id of the vocabulary is a token id.
  const last = await ar(V - 1).sample(model, {
    batchSize: 1,
    length: 3,
    prefix: [V - 1],
    prng: prng(0),
  });
  assertEquals([last.tokens[0], last.tokens[1]], [V - 1, V - 1]);
});
