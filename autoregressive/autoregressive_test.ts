import { type CausalLM, prng } from "@d3pm/core";
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
