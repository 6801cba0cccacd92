import { prng } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertThrows,
} from "@std/assert";
import type { Blocks } from "@d3pm/data";
import { absorbingBeta, type Denoiser } from "@d3pm/diffusion";
import { arNll, diffusionBound, figures } from "./nll.ts";
import { summarize } from "./aggregate.ts";
import { type CausalLM, generateAr, measureSpeed } from "./generate.ts";
import { generativePerplexity, infill, sampleEntropy } from "./quality.ts";
import { lineChart } from "./svg.ts";
import { logLinear } from "@d3pm/diffusion";

await tf.setBackend("cpu");

const V = 7;

/** Logits depend on the token at each position: a fixed random table W[x] — a bigram model. */
class Bigram implements CausalLM {
  table: Float32Array;
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
  createCache(): { dispose(): void; disposed: boolean } {
    return {
      disposed: false,
      dispose() {
        this.disposed = true;
      },
    };
  }
  decode(tokens: tf.Tensor2D): tf.Tensor3D {
    return this.forward(tokens);
  }
}

function logSoftmaxRow(row: Float32Array): number[] {
  const m = Math.max(...row);
  const z = Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0)) + m;
  return Array.from(row, (x) => x - z);
}

const blocks: Blocks = {
  data: Uint32Array.from({ length: 5 * 6 }, (_, i) => (i * 3 + (i >> 2)) % V),
  count: 5,
  length: 6,
};

Deno.test("arNll() equals the brute-force bigram NLL over every predicted token", async () => {
  const model = new Bigram(1);
  let want = 0, n = 0;
  for (let b = 0; b < blocks.count; b++) {
    for (let i = 1; i < blocks.length; i++) {
      const prev = blocks.data[b * 6 + i - 1], cur = blocks.data[b * 6 + i];
      want -=
        logSoftmaxRow(model.table.subarray(prev * V, (prev + 1) * V))[cur];
      n++;
    }
  }
  const got = await arNll(model, blocks, { batchSize: 2 });
  assertEquals(got.tokens, n);
  assertAlmostEquals(got.nats, want / n, 1e-5);
  const padded = await arNll(model, blocks, { padId: blocks.data[1] });
  assert(padded.tokens < n);
});

Deno.test("diffusionBound() over blocks scores a uniform denoiser at ln K", async () => {
  const uniform: Denoiser = {
    forward: (x: tf.Tensor2D) => tf.zeros([...x.shape, 9]) as tf.Tensor3D,
  };
  const many: Blocks = {
    data: Uint32Array.from({ length: 64 * 16 }, (_, i) => i % 8),
    count: 64,
    length: 16,
  };
  const est = await diffusionBound(uniform, many, {
    kind: "continuous",
    schedule: logLinear(),
    maskId: 8,
    prng: prng(0),
    samples: 4,
    batchSize: 16,
  });
  assertEquals(est.tokens, 64 * 16 * 4);
  assert(
    Math.abs(est.nats - Math.log(8)) < 4 * est.stderr,
    `${est.nats} ± ${est.stderr}`,
  );
});

Deno.test("figures() converts nats and marks bounds", () => {
  const f = figures(Math.LN2 * 4.6, {
    tokens: 10,
    bound: true,
    bytesPerToken: 2,
  });
  assertAlmostEquals(f.bpt, 4.6, 1e-12);
  assertAlmostEquals(f.ppl, 2 ** 4.6, 1e-9);
  assertAlmostEquals(f.bpb!, 2.3, 1e-12);
  assert(f.bound);
});

Deno.test("generateAr() decodes token by token from the start token and disposes its cache", async () => {
  // A bigram table that always prefers (x + 1) mod V overwhelmingly.
  const model = new Bigram(0);
  model.table = Float32Array.from(
    { length: V * V },
    (_, i) => ((Math.floor(i / V) + 1) % V === i % V ? 50 : 0),
  );
  let cache: { disposed: boolean } | undefined;
  const create = model.createCache.bind(model);
  model.createCache = () => (cache = create());
  const out = await generateAr(model, {
    batchSize: 2,
    length: 5,
    start: 3,
    prng: prng(0),
  });
  assertEquals(Array.from(out), [3, 4, 5, 6, 0, 3, 4, 5, 6, 0]);
  assert(cache!.disposed);
});

Deno.test("measureSpeed() reports batches and tokens per second over enough batches", async () => {
  let calls = 0;
  const s = await measureSpeed(async () => {
    calls++;
    await new Promise((r) => setTimeout(r, 5));
    return 3;
  }, { totalTokens: 100, batchSize: 4, length: 10 });
  assertEquals(s.batches, 3);
  assertEquals(calls, 4); // one warm-up
  assertEquals(s.tokens, 120);
  assertAlmostEquals(s.tokensPerSecond, 40 * s.batchesPerSecond, 1e-9);
  assertEquals(s.forwardPassesPerBatch, 3);
});

Deno.test("sampleEntropy() and generativePerplexity() agree with closed forms", async () => {
  assertAlmostEquals(
    sampleEntropy(Int32Array.of(0, 1, 2, 3), 4),
    Math.log(4),
    1e-12,
  );
  assertEquals(sampleEntropy(Int32Array.of(5, 5, 5, 5), 4), 0);
  const uniformJudge = {
    forward: (x: tf.Tensor2D) => tf.zeros([...x.shape, V]) as tf.Tensor3D,
  };
  const g = await generativePerplexity(
    uniformJudge,
    Int32Array.of(1, 2, 3, 4, 5, 6),
    3,
  );
  assertAlmostEquals(g.genPpl, V, 1e-4);
});

Deno.test("infill() scores an oracle at accuracy 1 and NLL 0, and a uniform model near chance", async () => {
  const many: Blocks = {
    data: Uint32Array.from({ length: 16 * 32 }, (_, i) => (i * 5) % 8),
    count: 16,
    length: 32,
  };
  // The oracle knows the data rule: token at position i of block b is ((b·32 + i)·5) mod 8.
  const oracle: Denoiser = {
    forward: (x: tf.Tensor2D) =>
      tf.tidy(() => {
        const [b, l] = x.shape;
        const truth = Int32Array.from({ length: b * l }, (_, i) => (i * 5) % 8);
        return tf.oneHot(tf.tensor2d(truth, [b, l], "int32"), 9).mul(
          60,
        ) as tf.Tensor3D;
      }),
  };
  const opts = {
    fraction: 0.3,
    maskId: 8,
    schedule: absorbingBeta({ steps: 20 }),
    steps: 20,
    prng: prng(1),
  };
  const good = await infill(oracle, many, opts);
  assertEquals(good.accuracy, 1);
  assertAlmostEquals(good.nll, 0, 1e-4);
  assert(good.hidden > 100);
  const uniform: Denoiser = {
    forward: (x: tf.Tensor2D) => tf.zeros([...x.shape, 9]) as tf.Tensor3D,
  };
  const bad = await infill(uniform, many, { ...opts, prng: prng(1) });
  assertAlmostEquals(bad.nll, Math.log(8), 1e-4);
  assert(bad.accuracy < 0.25, `${bad.accuracy}`);
  await assertRejects(
    () => infill(uniform, many, { ...opts, fraction: 1 }),
    RangeError,
    "fraction must be in (0, 1)",
  );
});

Deno.test("summarize() gives mean, sample s.d., best and range", () => {
  const s = summarize([5.72, 9.41, 9.05]);
  assertAlmostEquals(s.mean, 8.06, 1e-12);
  assertAlmostEquals(
    s.sd,
    Math.sqrt(
      ((5.72 - 8.06) ** 2 + (9.41 - 8.06) ** 2 + (9.05 - 8.06) ** 2) / 2,
    ),
    1e-12,
  );
  assertEquals([s.min, s.max, s.n], [5.72, 9.41, 3]);
  assertEquals(summarize([4.6]).sd, 0);
  assertThrows(() => summarize([]), RangeError);
});

Deno.test("lineChart() draws one polyline per series inside the plot area", () => {
  const svg = lineChart([
    { name: "AR <causal>", points: [[1, 5], [10, 4], [100, 3]] },
    { name: "D3PM", points: [[1, 6], [10, 5.5], [100, NaN]] },
  ], { title: "t", xLabel: "x", yLabel: "y", logX: true });
  assertEquals(svg.match(/<polyline/g)!.length, 2);
  assert(svg.includes("AR &lt;causal&gt;"));
  for (const m of svg.matchAll(/points="([^"]+)"/g)) {
    for (const pair of m[1].split(" ")) {
      const [x, y] = pair.split(",").map(Number);
      assert(x >= 70 && x <= 620 && y >= 40 && y <= 345, pair);
    }
  }
});
