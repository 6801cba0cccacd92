// Block diffusion's attention (`forward(..., { blocks })`): what reaches a
// noisy block (by moving each input token), the two-stream layout of
// training against the one-stream layout of generation, and the one-stream
// layout's ends against independent paths (one block = the bidirectional
// forward, blocks of one = the causal one).
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import type { ModelConfig } from "./config.ts";
import { Transformer } from "./transformer.ts";
import { maxAbsDiff, tinyConfig } from "./_test_util.ts";

// Masked attention weights are exactly 0; sums may block differently on
// the shorter input, so equal within float32 rounding.
const SAME = 1e-5;

const SHAPES: [string, Partial<ModelConfig>][] = [
  ["learned positions", { positions: "learned" }],
  ["rotary + ALiBi neighbours", {
    positions: "rotary",
    alibi: 1,
    alibiMode: "neighbours",
  }],
  ["rotary + symmetric ALiBi, time-conditioned", {
    positions: "rotary",
    alibi: 0.5,
    timeConditioning: true,
  }],
];

function ids(rows: number, length: number, salt: number): number[][] {
  return Array.from(
    { length: rows },
    (_, r) =>
      Array.from({ length }, (_, i) => (i * 7 + r * 5 + salt * 11 + 1) % 31),
  );
}

// Logits of the noisy stream's block b for [x_t ; x_0].
function noisyBlock(
  model: Transformer,
  xt: number[][],
  x0: number[][],
  b: number,
  size: number,
  t: tf.Tensor1D,
): tf.Tensor {
  const L = xt[0].length;
  return tf.tidy(() => {
    const two = tf.tensor2d(
      xt.map((r, i) => [...r, ...x0[i]]),
      [xt.length, 2 * L],
      "int32",
    );
    const out = model.forward(two, { t, blocks: { size, clean: true } });
    return tf.slice(out, [0, b * size, 0], [-1, size, -1]);
  });
}

for (const [name, overrides] of SHAPES) {
  Deno.test(`block attention (${name}): a noisy block reads itself and the clean blocks before it, nothing else`, async () => {
    await tf.setBackend("cpu");
    const config = tinyConfig({ kind: "bidirectional", ...overrides });
    const model = new Transformer(config, { seed: 3 });
    const L = config.contextLength, size = 4, rows = 2;
    const xt = ids(rows, L, 1), x0 = ids(rows, L, 2);
    const t = tf.tensor1d([0.3, 0.8]);
    const before = tf.memory().numTensors;
    const out = model.forward(
      tf.tensor2d(xt.map((r, i) => [...r, ...x0[i]]), [rows, 2 * L], "int32"),
      { t, blocks: { size, clean: true } },
    );
    assertEquals(out.shape, [rows, L, 32]);
    assertEquals(tf.memory().numTensors, before + 2); // the logits and input
    const changed = (m: number[][], at: number) =>
      m.map((r, i) =>
        r.map((v, j) => (i === 0 && j === at ? (v + 9) % 31 : v))
      );
    for (let b = 0; b < L / size; b++) {
      const end = (b + 1) * size;
      const want = noisyBlock(model, xt, x0, b, size, t);
      // Two streams = the one block-causal stream of generation: the clean
      // blocks before b, then the noisy block b, cut after it.
      const seq = xt.map((r, i) => [
        ...x0[i].slice(0, b * size),
        ...r.slice(b * size, end),
      ]);
      const input = tf.tensor2d(seq, [rows, end], "int32");
      const one = model.forward(input, { t, blocks: { size, clean: false } });
      const gen = tf.slice(one, [0, b * size, 0], [-1, size, -1]);
      assert(maxAbsDiff(gen, want) < SAME, `one stream, block ${b}`);
      tf.dispose([input, one, gen]);
      // Nothing else reaches it: a noisy token of another block, a clean
      // token of block b or later; what should reach it does.
      for (let p = 0; p < L; p++) {
        const noisyMoved = noisyBlock(model, changed(xt, p), x0, b, size, t);
        const cleanMoved = noisyBlock(model, xt, changed(x0, p), b, size, t);
        const inBlock = Math.floor(p / size) === b;
        const dNoisy = maxAbsDiff(noisyMoved, want);
        const dClean = maxAbsDiff(cleanMoved, want);
        assert(
          inBlock ? dNoisy > 0 : dNoisy === 0,
          `x_t ${p} → block ${b}: ${dNoisy}`,
        );
        assert(
          p < b * size ? dClean > 0 : dClean === 0,
          `x_0 ${p} → block ${b}: ${dClean}`,
        );
        tf.dispose([noisyMoved, cleanMoved]);
      }
      want.dispose();
    }
    tf.dispose([out, t]);
    model.dispose();
  });
}

for (const [name, overrides] of SHAPES.slice(0, 2)) {
  Deno.test(`decodeBlock (${name}): block by block through the KV cache, the one-stream layout's logits`, async () => {
    await tf.setBackend("cpu");
    const config = tinyConfig({ kind: "bidirectional", ...overrides });
    const model = new Transformer(config, { seed: 7 });
    const L = config.contextLength, size = 4, rows = 2;
    const x = ids(rows, L, 5);
    const whole = model.forward(tf.tensor2d(x, [rows, L], "int32"), {
      blocks: { size, clean: false },
    });
    const cache = model.createCache(rows);
    const before = tf.memory().numTensors;
    for (let b = 0; b < L / size; b++) {
      const block = tf.tensor2d(
        x.map((r) => r.slice(b * size, (b + 1) * size)),
        [rows, size],
        "int32",
      );
      // A step that does not commit leaves the cache as it was.
      const peek = model.decodeBlock(block, cache);
      assertEquals(cache.length, b * size);
      const got = model.decodeBlock(block, cache, { commit: true });
      assertEquals(cache.length, (b + 1) * size);
      const want = tf.slice(whole, [0, b * size, 0], [-1, size, -1]);
      assert(
        maxAbsDiff(got, want) < SAME,
        `block ${b}: ${maxAbsDiff(got, want)}`,
      );
      assertEquals(maxAbsDiff(peek, got), 0);
      tf.dispose([block, peek, got, want]);
    }
    // Only the cache's own tensors remain (its keys and values per layer).
    assert(tf.memory().numTensors - before <= 2 * config.nLayer);
    cache.dispose();
    whole.dispose();
    const timed = new Transformer(
      tinyConfig({ kind: "bidirectional", timeConditioning: true }),
      { seed: 1 },
    );
    const c2 = timed.createCache(1);
    const one = tf.tensor2d([[1, 2]], [1, 2], "int32");
    assertThrows(
      () => timed.decodeBlock(one, c2),
      Error,
      "needs a bidirectional model without time conditioning",
    );
    tf.dispose(one);
    c2.dispose();
    timed.dispose();
    model.dispose();
  });
}

Deno.test("block attention: one block is the bidirectional forward, blocks of one the causal one", async () => {
  await tf.setBackend("cpu");
  const config = tinyConfig({
    kind: "bidirectional",
    positions: "rotary",
    alibi: 4,
    alibiMode: "neighbours",
  });
  const model = new Transformer(config, { seed: 5 });
  const x = tf.tensor2d(ids(2, 12, 4), [2, 12], "int32");
  const full = model.forward(x);
  const whole = model.forward(x, { blocks: { size: 12, clean: false } });
  assert(maxAbsDiff(full, whole) < SAME);
  model.attentionWindow = 0; // causal
  const causal = model.forward(x);
  model.attentionWindow = Infinity;
  const ones = model.forward(x, { blocks: { size: 1, clean: false } });
  assert(maxAbsDiff(causal, ones) < SAME);
  assert(maxAbsDiff(full, ones) > 1e-3); // the layouts do differ
  tf.dispose([x, full, whole, causal, ones]);
  model.dispose();
});

Deno.test("block attention refuses what it cannot run, in one line", async () => {
  await tf.setBackend("cpu");
  const causal = new Transformer(tinyConfig(), { seed: 1 });
  const model = new Transformer(tinyConfig({ kind: "bidirectional" }), {
    seed: 1,
  });
  const x = tf.tensor2d(ids(1, 6, 0), [1, 6], "int32");
  const odd = tf.tensor2d([ids(1, 7, 0)[0]], [1, 7], "int32");
  const long = tf.tensor2d([ids(1, 26, 0)[0]], [1, 26], "int32");
  const cases: [() => unknown, string][] = [
    [
      () => causal.forward(x, { blocks: { size: 2, clean: false } }),
      "needs a bidirectional model, got kind causal",
    ],
    [
      () => model.forward(x, { blocks: { size: 0, clean: false } }),
      "blocks.size must be an integer ≥ 1, got 0",
    ],
    [
      () => model.forward(odd, { blocks: { size: 2, clean: true } }),
      "need an even length, got 7",
    ],
    [
      () => model.forward(long, { blocks: { size: 2, clean: true } }),
      "1 ≤ T ≤ 12 per stream (2 streams)",
    ],
    [
      () =>
        model.forward(x, { blocks: { size: 2, clean: false }, lastOnly: true }),
      "not with shift, lastOnly or an attention window",
    ],
  ];
  for (const [f, message] of cases) assertThrows(f, RangeError, message);
  tf.dispose([x, odd, long]);
  causal.dispose();
  model.dispose();
});

Deno.test("block attention's masks are kept per layout: two streams of 2·4 and one stream of 8 do not share one", async () => {
  await tf.setBackend("cpu");
  const config = tinyConfig({ kind: "bidirectional" });
  const x = tf.tensor2d(ids(1, 8, 2), [1, 8], "int32");
  const fresh = new Transformer(config, { seed: 9 });
  const want = fresh.forward(x, { blocks: { size: 2, clean: false } });
  const used = new Transformer(config, { seed: 9 });
  used.forward(x, { blocks: { size: 2, clean: true } }).dispose();
  const got = used.forward(x, { blocks: { size: 2, clean: false } });
  assertEquals(maxAbsDiff(got, want), 0);
  tf.dispose([x, want, got]);
  fresh.dispose();
  used.dispose();
});
