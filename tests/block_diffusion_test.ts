// Block diffusion (@d3pm/diffusion's blockDiffusion) on a real denoiser,
// against independent paths: one block of the whole row is MDLM (the same
// draws give the same loss and bound); blocks of one token make the bound
// an exact autoregressive NLL, computed here by plain causal forward passes;
// and near-greedy sampling with blocks of one is greedy causal decoding.
// (What each position may see is tested at the model, in
// transformer/block_attention_test.ts: an untrained denoiser barely uses
// one token more or less, so the bound's check here is of the estimator —
// weights, the sum over blocks, the endpoint — within 4 standard errors.)
import * as tf from "@tensorflow/tfjs";
import { prng } from "@d3pm/core";
import { initBackend } from "@d3pm/backend";
import {
  blockDiffusion,
  logLinear,
  maskedDiffusion,
  mdlmTerms,
} from "@d3pm/diffusion";
import { preset, Transformer } from "@d3pm/transformer";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertThrows,
} from "@std/assert";

// The project's CPU backend (CBLAS matmuls, fused LayerNorm and GELU, each
// kernel checked against tfjs's reference `cpu` kernels in backend/), as
// `auto` picks on a CPU: what these tests check is the process, not the
// kernels, and the reference kernels took four times the CPU (43 s against
// 10 s for this file). Without a CBLAS it falls back down the ladder.
async function onBlas(): Promise<void> {
  await initBackend({ prefer: "blas", log: () => {} });
}

const V = 12, MASK = 11, L = 8;
const SCHEDULE = { kind: "log-linear" } as const;

// A denoiser trained for a moment on rows that count up by 3 (mod 11),
// with every token masked and blocks of one (next-token prediction): what
// it draws follows its context, so a sampler that loses the context shows.
function countingDenoiser(seed: number): Transformer {
  const model = denoiser(seed);
  const process = blockDiffusion({
    kind: "block-diffusion",
    blockSize: 1,
    vocab: V,
    maskId: MASK,
    steps: 1000,
    schedule: SCHEDULE,
    times: { min: 0.999, max: 1 },
  });
  const rng = prng(seed);
  const optimizer = tf.train.adam(0.03);
  for (let step = 0; step < 150; step++) {
    const tokens = new Int32Array(16 * L);
    for (let r = 0; r < 16; r++) {
      const start = Math.floor(rng.next() * MASK);
      for (let i = 0; i < L; i++) tokens[r * L + i] = (start + 3 * i) % MASK;
    }
    const batch = { tokens, batchSize: 16, length: L };
    optimizer.minimize(
      () => process.loss(model, batch, { prng: rng }),
      false,
      model.trainableVariables(),
    );
  }
  optimizer.dispose();
  return model;
}

function denoiser(seed: number): Transformer {
  return new Transformer(
    preset("micro", {
      kind: "bidirectional",
      vocabSize: V,
      contextLength: L,
      dModel: 16,
      dMlp: 32,
      nHead: 2,
      positions: "rotary",
      alibi: 1,
      alibiMode: "neighbours",
    }),
    { seed },
  );
}

function rows(n: number, salt: number): Int32Array {
  return Int32Array.from({ length: n * L }, (_, i) => (i * 5 + salt) % MASK);
}

function bd3(blockSize: number) {
  return blockDiffusion({
    kind: "block-diffusion",
    blockSize,
    vocab: V,
    maskId: MASK,
    steps: 1000,
    schedule: SCHEDULE,
  });
}

Deno.test("block diffusion with one block per row is MDLM: the same loss and bound for the same draws", async () => {
  await onBlas();
  const model = denoiser(1);
  const x0 = { tokens: rows(3, 2), batchSize: 3, length: L };
  const mdlm = maskedDiffusion({
    kind: "masked-diffusion",
    vocab: V,
    maskId: MASK,
    steps: 1000,
    schedule: SCHEDULE,
    objective: "mdlm",
  });
  const whole = bd3(L);
  const a = whole.loss(model, x0, { prng: prng(4), training: false });
  const b = mdlm.loss(model, x0, { prng: prng(4), training: false });
  assertAlmostEquals(a.dataSync()[0], b.dataSync()[0], 1e-5);
  for (const draws of ["count", "time"] as const) {
    const p = await whole.bound(model, x0, {
      prng: prng(5),
      samples: 3,
      draws,
    });
    const q = await mdlm.bound(model, x0, { prng: prng(5), samples: 3, draws });
    assertAlmostEquals(p.nats, q.nats, 1e-5);
    assertAlmostEquals(p.stderr, q.stderr, 1e-5);
  }
  // Two blocks are not one: the second block's first token no longer sees
  // the tokens after it.
  const halves = await bd3(L / 2).bound(model, x0, {
    prng: prng(5),
    samples: 3,
  });
  const one = await whole.bound(model, x0, { prng: prng(5), samples: 3 });
  assert(Math.abs(halves.nats - one.nats) > 1e-4);
  tf.dispose([a, b]);
  model.dispose();
});

Deno.test("block diffusion's time per block: one time per span of the row, the same objective as a time per row", async () => {
  await onBlas();
  // The weights −α′(t)/(1 − α(t)) show the times: equal within a block of
  // 4, different across blocks (mdlmTerms shares the loss's draws).
  const x0 = { tokens: rows(2, 1), batchSize: 2, length: L };
  const terms = mdlmTerms(x0, {
    schedule: logLinear(),
    maskId: MASK,
    prng: prng(3),
    perToken: true,
    timeSpan: 4,
    tMin: 0.5,
    tMax: 1,
  });
  const perBlock = new Map<number, Set<number>>();
  terms.weights.forEach((w, i) => {
    if (w === 0) return;
    const k = Math.floor(i / 4);
    perBlock.set(k, (perBlock.get(k) ?? new Set()).add(w));
  });
  assert(perBlock.size >= 3, `${perBlock.size} blocks with masks`);
  for (const ws of perBlock.values()) assertEquals(ws.size, 1);
  assert(new Set([...perBlock.values()].map((ws) => [...ws][0])).size > 1);
  // A block of the whole row: exactly the time-per-row loss (the same
  // draws in the same order).
  const model = denoiser(6);
  const spec = {
    kind: "block-diffusion",
    blockSize: L,
    vocab: V,
    maskId: MASK,
    steps: 1000,
    schedule: SCHEDULE,
  } as const;
  const a = blockDiffusion({ ...spec, times: { perBlock: true } }).loss(
    model,
    x0,
    { prng: prng(4), training: false },
  );
  const b = blockDiffusion(spec).loss(model, x0, {
    prng: prng(4),
    training: false,
  });
  assertAlmostEquals(a.dataSync()[0], b.dataSync()[0], 1e-5);
  // Blocks of 4: the same objective in expectation (400 draws each).
  const mean = (perBlockTimes: boolean) => {
    const p = blockDiffusion({
      ...spec,
      blockSize: 4,
      ...(perBlockTimes ? { times: { perBlock: true } } : {}),
    });
    const rng = prng(perBlockTimes ? 7 : 8);
    const xs: number[] = [];
    for (let i = 0; i < 400; i++) {
      const loss = p.loss(model, x0, { prng: rng, training: false });
      xs.push(loss.dataSync()[0]);
      loss.dispose();
    }
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    const v = xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1);
    return { m, se: Math.sqrt(v / xs.length), sd: Math.sqrt(v) };
  };
  const byBlock = mean(true), byRow = mean(false);
  assert(
    Math.abs(byBlock.m - byRow.m) <
      4 * Math.hypot(byBlock.se, byRow.se),
    `${JSON.stringify(byBlock)} vs ${JSON.stringify(byRow)}`,
  );
  assertThrows(
    () => blockDiffusion({ ...spec, times: { perBlock: true, byCount: true } }),
    RangeError,
    "times.perBlock draws one time per block; not with perToken or byCount",
  );
  tf.dispose([a, b]);
  model.dispose();
});

Deno.test("block diffusion with blocks of one token: its bound estimates the exact causal NLL", async () => {
  await onBlas();
  const model = denoiser(2);
  const n = 4;
  const x0 = { tokens: rows(n, 3), batchSize: n, length: L };
  // The exact NLL of this denoiser read causally: token i given the clean
  // tokens before it and the mask at i, every other position absent.
  let exact = 0;
  model.attentionWindow = 0;
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < L; i++) {
      const input = Int32Array.from(x0.tokens.subarray(r * L, r * L + i + 1));
      input[i] = MASK;
      exact += tf.tidy(() => {
        const logits = model.forward(tf.tensor2d(input, [1, i + 1], "int32"));
        const row = tf.slice(logits, [0, i, 0], [1, 1, MASK]).reshape([MASK]); // mask's logit out
        const logp = tf.sub(row, tf.logSumExp(row));
        return -logp.dataSync()[x0.tokens[r * L + i]];
      });
    }
  }
  model.attentionWindow = Infinity;
  exact /= n * L;
  for (const draws of ["count", "time"] as const) {
    const est = await bd3(1).bound(model, x0, {
      prng: prng(6),
      samples: 400,
      draws,
    });
    assert(
      Math.abs(est.nats - exact) < 4 * est.stderr,
      `${draws}: ${est.nats} ± ${est.stderr} vs exact ${exact}`,
    );
  }
  model.dispose();
});

Deno.test("block diffusion samples block by block: near-greedy with blocks of one is greedy causal decoding", async () => {
  await onBlas();
  const model = countingDenoiser(3);
  const prefix = Int32Array.of(4, 7, 10);
  // With the KV cache (the default for this model) and without.
  const greedy = (kvCache: boolean) =>
    bd3(1).sample(model, {
      batchSize: 1,
      length: L,
      steps: 1,
      prng: prng(8),
      temperature: 1e-4,
      prefix,
      kvCache,
    });
  const out = await greedy(true);
  const uncached = await greedy(false);
  // Greedy: each token the argmax given the tokens before it and a mask.
  const want = Int32Array.from([...prefix, ...new Array(L - 3).fill(0)]);
  model.attentionWindow = 0;
  for (let i = prefix.length; i < L; i++) {
    const input = want.slice(0, i + 1);
    input[i] = MASK;
    want[i] = tf.tidy(() => {
      const logits = model.forward(tf.tensor2d(input, [1, i + 1], "int32"));
      const row = tf.slice(logits, [0, i, 0], [1, 1, MASK]).reshape([MASK]);
      return tf.argMax(row).dataSync()[0];
    });
  }
  model.attentionWindow = Infinity;
  assertEquals([...want], [4, 7, 10, 2, 5, 8, 0, 3]); // it learnt to count
  assertEquals([...out.tokens], [...want]);
  assertEquals([...uncached.tokens], [...want]);
  assertEquals(uncached.forwardPasses, L - prefix.length); // one a new block
  // With the cache, also one pass a block to commit it (the prefix too).
  assertEquals(out.forwardPasses, L - prefix.length + L);
  // An untrained denoiser's argmax moves with how the prefix attends (its
  // tokens see only earlier ones): the uncached path's layout.
  const fresh = denoiser(3);
  const start = Int32Array.of(4, 7, 1);
  const plain = await bd3(1).sample(fresh, {
    batchSize: 1,
    length: L,
    steps: 1,
    prng: prng(8),
    temperature: 1e-4,
    prefix: start,
    kvCache: false,
  });
  fresh.attentionWindow = 0;
  const seq = [...start];
  for (let i = start.length; i < L; i++) {
    const input = Int32Array.from([...seq, MASK]);
    seq.push(tf.tidy(() => {
      const logits = fresh.forward(tf.tensor2d(input, [1, i + 1], "int32"));
      const row = tf.slice(logits, [0, i, 0], [1, 1, MASK]).reshape([MASK]);
      return tf.argMax(row).dataSync()[0];
    }));
  }
  assertEquals([...plain.tokens], seq);
  fresh.dispose();
  // Without a cache every pass reads the rows so far with the one-stream,
  // block-causal layout (a model without decodeBlock takes this path).
  const layouts: unknown[] = [];
  const spy = spyOn(model, (x, o) => layouts.push([x.shape[1], o.blocks]));
  await bd3(4).sample(spy, { length: L, steps: 2, prng: prng(11) });
  assertEquals(layouts, [
    [4, { size: 4, clean: false }],
    [4, { size: 4, clean: false }],
    [8, { size: 4, clean: false }],
    [8, { size: 4, clean: false }],
  ]);
  // Blocks of 4 at temperature 1, three rows, a prefix ending inside the
  // first block: the cache gives the draws of the uncached path (its
  // logits equal within float32 rounding), the prefix kept.
  const drawn = (kvCache: boolean) =>
    bd3(4).sample(model, {
      batchSize: 3,
      length: L,
      steps: 3,
      prng: prng(10),
      prefix,
      kvCache,
    });
  const [c, u] = [await drawn(true), await drawn(false)];
  assertEquals([...c.tokens], [...u.tokens]);
  for (let r = 0; r < 3; r++) {
    assertEquals([...c.tokens.subarray(r * L, r * L + 3)], [...prefix]);
  }
  // Blocks of 4, several rows: every position filled, no mask drawn, and
  // each row's steps reported with the whole row.
  const seen: number[] = [];
  const big = await bd3(4).sample(model, {
    batchSize: 3,
    length: L,
    steps: 8,
    prng: prng(9),
    onStep: (s) => {
      assertEquals(s.tokens.length, 3 * L);
      seen.push(s.step);
    },
  });
  assert(!big.tokens.includes(MASK));
  assertEquals(seen.at(-1), 16); // 2 blocks × 8 steps
  model.dispose();
});

Deno.test("staggered block diffusion: its training masks and its sampler both follow each block's clocks (rows and time per block; with and without the KV cache)", async () => {
  await onBlas();
  const model = denoiser(5);
  // Windows 0.2 wide that do not overlap, the linear schedule (alpha(1) =
  // 0): at any t the masked positions of a block are a suffix of it.
  const staggered = (perBlock: boolean) =>
    blockDiffusion({
      kind: "block-diffusion",
      blockSize: 4,
      vocab: V,
      maskId: MASK,
      steps: 100,
      schedule: { kind: "linear" },
      stagger: { span: 4, delta: 0.8 },
      ...(perBlock ? { times: { perBlock: true } } : {}),
    });
  const inputs: Int32Array[] = [];
  const spy = spyOn(
    model,
    (x) => inputs.push(x.dataSync() as Int32Array),
  );
  const batch = { tokens: rows(32, 1), batchSize: 32, length: L };
  for (const perBlock of [false, true]) {
    inputs.length = 0;
    tf.tidy(() => staggered(perBlock).loss(spy, batch, { prng: prng(2) }));
    // The pass reads [x_t ; x_0]: x_t is each row's first L ids.
    const [x] = inputs;
    let masked = 0;
    for (let r = 0; r < 32; r++) {
      for (let k = 0; k < L; k += 4) {
        const block = Array.from(x.subarray(r * 2 * L + k, r * 2 * L + k + 4));
        const first = block.indexOf(MASK);
        masked += block.filter((v) => v === MASK).length;
        if (first >= 0) {
          assertEquals(
            block.slice(first).every((v) => v === MASK),
            true,
            `perBlock ${perBlock}: row ${r}, block ${block}`,
          );
        }
      }
    }
    assert(masked > 32 && masked < 32 * L - 32, `masked ${masked}`);
  }
  // Generation reveals each block left to right, a prefix kept.
  for (const kvCache of [true, false]) {
    const revealed = new Map<number, number>();
    await staggered(false).sample(model, {
      batchSize: 2,
      length: L,
      steps: 50,
      prng: prng(6),
      prefix: Int32Array.of(1),
      kvCache,
      onStep: (st) => {
        st.tokens.forEach((v, i) => {
          if (v !== MASK && !revealed.has(i)) revealed.set(i, st.step);
        });
      },
    });
    for (let r = 0; r < 2; r++) {
      for (let i = 2; i < L; i++) {
        if (i % 4 === 0) continue; // a block's first: after the block before
        assert(
          revealed.get(r * L + i)! > revealed.get(r * L + i - 1)!,
          `kvCache ${kvCache}: row ${r}, position ${i} at step ${
            revealed.get(r * L + i)
          }, position ${i - 1} at ${revealed.get(r * L + i - 1)}`,
        );
      }
    }
  }
  model.dispose();
});

Deno.test("block diffusion refuses what it cannot run, in one line", async () => {
  await onBlas();
  const model = denoiser(4);
  const x0 = { tokens: rows(1, 0), batchSize: 1, length: L };
  const plain = {
    config: model.config,
    timeConditioned: false,
    forward: (x: tf.Tensor2D) => model.forward(x),
    dispose() {},
  };
  assertThrows(
    () => bd3(4).loss(plain, x0, { prng: prng(0) }),
    RangeError,
    "needs a denoiser with block attention",
  );
  assertThrows(
    () => bd3(3).loss(model, x0, { prng: prng(0) }),
    RangeError,
    "a row of 8 tokens is not a whole number of blocks of 3",
  );
  assertThrows(
    () => bd3(4).lossTerms(x0, { prng: prng(0) }),
    RangeError,
    "train it on the tfjs engine",
  );
  assertThrows(
    () => bd3(0),
    RangeError,
    "Invalid block diffusion process: blockSize must be an integer ≥ 1, got 0",
  );
  assertThrows(
    () =>
      blockDiffusion({
        kind: "block-diffusion",
        blockSize: 2,
        vocab: V,
        maskId: V,
        steps: 10,
        schedule: SCHEDULE,
      }),
    RangeError,
    "Invalid block diffusion process: maskId 12 is not below vocab 12",
  );
  // Past the context, named before any pass (the rows' check said "the
  // prompt's rows" for a length the user gave), with the cache or without.
  for (const kvCache of [true, false]) {
    await assertRejects(
      () =>
        bd3(4).sample(model, {
          length: 2 * L,
          batchSize: 1,
          kvCache,
          prng: prng(0),
        }),
      RangeError,
      `Block diffusion: length must be at most the model's context length ${L}, got ${
        2 * L
      }`,
    );
  }
  model.dispose();
});

/**
 * A block-attention denoiser that calls `model` and shows `seen` each
 * forward pass's input and options first (a model without `decodeBlock`).
 */
function spyOn(
  model: Transformer,
  seen: (
    x: tf.Tensor2D,
    o: Parameters<Transformer["forward"]>[1] & object,
  ) => void,
) {
  return {
    config: model.config,
    timeConditioned: false,
    blockAttention: true as const,
    forward: (
      x: tf.Tensor2D,
      o: Parameters<Transformer["forward"]>[1] = {},
    ) => {
      seen(x, o);
      return model.forward(x, o);
    },
    dispose() {},
  };
}

Deno.test("block diffusion refuses a denoiser of another vocabulary or a causal model in loss, bound and sample", async () => {
  await onBlas();
  const wide = new Transformer(
    preset("micro", {
      kind: "bidirectional",
      vocabSize: 20,
      contextLength: L,
      dModel: 16,
      dMlp: 32,
      nHead: 2,
    }),
    { seed: 1 },
  );
  const model = denoiser(5);
  const causal = {
    ...spyOn(model, () => {}),
    config: { ...model.config, kind: "causal" as const },
  };
  const x0 = { tokens: rows(2, 0), batchSize: 2, length: L };
  const perBlock = blockDiffusion({
    kind: "block-diffusion",
    blockSize: 4,
    vocab: V,
    maskId: MASK,
    steps: 100,
    schedule: SCHEDULE,
    times: { perBlock: true },
  });
  for (
    const [m, why] of [
      [wide, "the model's vocabSize is 20; expected the process's vocab 12"],
      [causal, "the model is causal; expected a bidirectional model"],
    ] as const
  ) {
    for (const p of [bd3(4), perBlock]) {
      assertThrows(() => p.loss(m, x0, { prng: prng(0) }), RangeError, why);
      await assertRejects(
        async () => await p.bound(m, x0, { prng: prng(0) }),
        RangeError,
        why,
      );
      for (const kvCache of [true, false]) {
        await assertRejects(
          () => p.sample(m, { length: L, kvCache, prng: prng(0) }),
          RangeError,
          why,
        );
      }
    }
  }
  // The process's own vocabulary still trains.
  assert(Number.isFinite(
    perBlock.loss(model, x0, { prng: prng(0) }).dataSync()[0],
  ));
  wide.dispose();
  model.dispose();
});
