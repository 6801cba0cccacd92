import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertThrows,
} from "@std/assert";
import type { Blocks } from "@d3pm/data";
import { figures, overBlocks } from "./nll.ts";
import { summarize } from "./aggregate.ts";
import { measureSpeed } from "./speed.ts";
import { generativePerplexity, sampleEntropy } from "./quality.ts";
import { lineChart } from "./svg.ts";

Deno.test("overBlocks() hands every block to the scorer once and weights batches by their tokens", async () => {
  const blocks: Blocks = {
    data: Uint32Array.from({ length: 7 * 3 }, (_, i) => i),
    count: 7,
    length: 3,
  };
  const seen: number[] = [];
  const est = await overBlocks(blocks, (x0) => {
    seen.push(...x0.tokens);
    // Nats per token = the batch's first id; stderr 0.5 each.
    return Promise.resolve({
      nats: x0.tokens[0],
      stderr: 0.5,
      tokens: x0.tokens.length,
    });
  }, { batchSize: 3 });
  assertEquals(seen, Array.from(blocks.data));
  assertEquals(est.tokens, 21);
  assertAlmostEquals(est.nats, (9 * 0 + 9 * 9 + 3 * 18) / 21, 1e-12);
  assertAlmostEquals(
    est.stderr,
    Math.sqrt(2 * (0.5 * 9) ** 2 + (0.5 * 3) ** 2) / 21,
    1e-12,
  );
  const some = await overBlocks(
    blocks,
    (x0) => Promise.resolve({ nats: 1, stderr: NaN, tokens: x0.tokens.length }),
    {
      maxBlocks: 2,
    },
  );
  assertEquals([some.tokens, some.nats], [6, 1]);
  assert(Number.isNaN(some.stderr));
});

Deno.test("overBlocks() scores batches of 8 by default, reports progress after each, and takes batchSize 1 but not 0", async () => {
  // 16 blocks: exactly two batches of 8, progress (8, 16) and (16, 16), and
  // no third, empty batch. Mutation pass (docs/testing.md): kills the
  // default 8 → 7 or 9, `first < total` → `<=`, progress `first + n` →
  // `first - n`, and the batch-size check `b < 1` → `b <= 1` / `b < 2` /
  // `b < 0` (batch size 0 would loop for ever).
  const blocks: Blocks = {
    data: new Uint32Array(16 * 2),
    count: 16,
    length: 2,
  };
  const sizes: number[] = [];
  const progress: [number, number][] = [];
  const scorer = (x0: { batchSize: number; tokens: Int32Array }) => {
    sizes.push(x0.batchSize);
    return Promise.resolve({ nats: 1, stderr: 0, tokens: x0.tokens.length });
  };
  await overBlocks(blocks, scorer, {
    onProgress: (done, total) => progress.push([done, total]),
  });
  assertEquals(sizes, [8, 8]);
  assertEquals(progress, [[8, 16], [16, 16]]);
  sizes.length = 0;
  const one = await overBlocks(blocks, scorer, { batchSize: 1, maxBlocks: 3 });
  assertEquals([sizes, one.tokens], [[1, 1, 1], 6]);
  await assertRejects(
    () => overBlocks(blocks, scorer, { batchSize: 0 }),
    RangeError,
    "batchSize must be a positive integer, got 0",
  );
  // One token: its own nats and stderr, not halved (kills `Math.max(tokens,
  // 1)` → `Math.max(tokens, 2)`); no tokens scored (all padding) is
  // refused: 0 nats over 0 tokens read as a perfect score (perplexity 1).
  // No blocks at all is refused too (test below).
  const single: Blocks = { data: Uint32Array.of(3), count: 1, length: 1 };
  const alone = await overBlocks(
    single,
    () => Promise.resolve({ nats: 2.5, stderr: 0.5, tokens: 1 }),
  );
  assertEquals([alone.nats, alone.stderr, alone.tokens], [2.5, 0.5, 1]);
  await assertRejects(
    () =>
      overBlocks(
        { data: new Uint32Array(6), count: 3, length: 2 },
        () => Promise.resolve({ nats: 0, stderr: 0, tokens: 0 }),
        { batchSize: 2 },
      ),
    RangeError,
    "overBlocks: the 3 blocks have no tokens (all padding)",
  );
  // A batch of padding among others counts for nothing.
  let call = 0;
  const some = await overBlocks(
    { data: new Uint32Array(6), count: 3, length: 2 },
    () => Promise.resolve({ nats: 3, stderr: 0, tokens: call++ === 0 ? 0 : 2 }),
    { batchSize: 2 },
  );
  assertEquals([some.nats, some.tokens], [3, 2]);
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

Deno.test("measureSpeed() times the measured batches only, not the warm-up (a stubbed clock)", async () => {
  // The generator advances a fake clock: 50 s for the warm-up (compiling
  // kernels, say), 2 s for each measured batch. Exact: 3 batches in 6 s.
  // Catches the warm-up counted in the time (56 s) or in the batches.
  const now = performance.now;
  let clock = 0, calls = 0;
  performance.now = () => clock;
  try {
    const s = await measureSpeed(() => {
      clock += ++calls === 1 ? 50_000 : 2_000;
      return Promise.resolve(2);
    }, { totalTokens: 100, batchSize: 4, length: 10 });
    assertEquals(calls, 4);
    assertEquals(s.seconds, 6);
    assertEquals(s.batchesPerSecond, 0.5);
    assertEquals(s.tokensPerSecond, 20);
    assertEquals(s.forwardPassesPerBatch, 2);
  } finally {
    performance.now = now;
  }
});

Deno.test("sampleEntropy() and generativePerplexity() agree with closed forms", async () => {
  assertAlmostEquals(
    sampleEntropy(Int32Array.of(0, 1, 2, 3), 4),
    Math.log(4),
    1e-12,
  );
  assertEquals(sampleEntropy(Int32Array.of(5, 5, 5, 5), 4), 0);
  const rows: number[] = [];
  const g = await generativePerplexity(
    Int32Array.of(1, 2, 3, 4, 5, 6),
    3,
    (x0) => {
      rows.push(x0.batchSize);
      return Promise.resolve({ nats: Math.log(7), stderr: 0, tokens: 4 });
    },
  );
  assertEquals(rows, [2]);
  assertAlmostEquals(g.genPpl, 7, 1e-9);
  await assertRejects(
    () =>
      generativePerplexity(Int32Array.of(1, 2, 3), 2, () => Promise.reject()),
    RangeError,
    "not rows of length 2",
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
  const box = JSON.parse(
    svg.match(/data-chart='([^']+)'/)![1].replace(/&quot;/g, '"'),
  ).plot;
  for (const m of svg.matchAll(/points="([^"]+)"/g)) {
    for (const pair of m[1].split(" ")) {
      const [x, y] = pair.split(",").map(Number);
      assert(
        x > box.left && x < box.left + box.width && y > box.top &&
          y < box.top + box.height,
        pair,
      );
    }
  }
});

Deno.test("sampleEntropy() is the mean over rows of each row's own entropy", () => {
  // Row 1 repeats one id (0 nats), row 2 holds 4 distinct ids (ln 4), row 3
  // two ids twice each (ln 2). Catches a row's counts running into the next
  // row, and the rows' mean taken over one row too many.
  const ids = Int32Array.of(7, 7, 7, 7, 0, 1, 2, 3, 5, 6, 5, 6);
  assertAlmostEquals(
    sampleEntropy(ids, 4),
    (0 + Math.log(4) + Math.log(2)) / 3,
    1e-12,
  );
});

Deno.test("generativePerplexity() takes rows of 2 ids and refuses rows of 1", async () => {
  // The judge scores a row from its second token on, so a row needs 2.
  // Catches `length < 2` → `<= 2`, `< 3` (2 refused) and `< 1` (1 taken).
  const g = await generativePerplexity(
    Int32Array.of(1, 2, 3, 4),
    2,
    (x0) => Promise.resolve({ nats: 0.5, stderr: 0, tokens: x0.batchSize }),
  );
  assertAlmostEquals(g.genPpl, Math.exp(0.5), 1e-12);
  await assertRejects(
    () => generativePerplexity(Int32Array.of(1, 2), 1, () => Promise.reject()),
    RangeError,
    "not rows of length 1",
  );
});

Deno.test("summarize() of two seeds has the sample s.d. |a − b|/√2", () => {
  // Catches the sd given only from 3 seeds on (`n > 1` → `n > 2`).
  const s = summarize([1, 4]);
  assertAlmostEquals(s.sd, 3 / Math.SQRT2, 1e-12);
  assertEquals([s.mean, s.min, s.max, s.n], [2.5, 1, 4, 2]);
});

Deno.test("measureSpeed() times one batch at least, and reports the passes a generator gives, none when it gives none", async () => {
  // Fewer tokens than a batch holds, or none: one timed batch after the
  // warm-up. Catches `Math.max(1, …)` → `max(2, …)` or `max(0, …)` (no
  // batch timed: 0/0 batches per second).
  for (const totalTokens of [1, 0]) {
    for (const passes of [undefined, 1]) {
      let calls = 0;
      const s = await measureSpeed(() => {
        calls++;
        return Promise.resolve(passes);
      }, { totalTokens, batchSize: 4, length: 10 });
      assertEquals([s.batches, s.tokens, calls], [1, 40, 2]);
      // Catches a missing count taken as 1 pass (`?? 0` → `?? 1`), and the
      // passes reported from 0 on (`passes > 0` → `>= 0`) or from 2 (`> 1`).
      assertEquals(s.forwardPassesPerBatch, passes);
    }
  }
});

Deno.test("sampleEntropy() refuses a length that is not whole rows instead of looping or averaging a ragged tail", () => {
  // length 0 looped forever (n = Infinity); 3 over 10 ids averaged 3⅓ rows.
  for (const [n, length] of [[10, 0], [10, 3], [0, 4], [8, -4], [8, 2.5]]) {
    assertThrows(
      () => sampleEntropy(new Int32Array(n), length),
      RangeError,
      `sampleEntropy: ${n} ids are not one or more rows of length ${length}`,
    );
  }
  assertEquals(sampleEntropy(new Int32Array(8), 4), 0);
});

Deno.test("overBlocks() refuses to score no blocks and a maxBlocks that is not a positive integer, instead of reporting 0 nats", async () => {
  const score = () => Promise.resolve({ nats: 2, stderr: 0, tokens: 4 });
  // count 0 (or maxBlocks 0) returned { nats: 0, tokens: 0 }: BPT 0.
  await assertRejects(
    () => overBlocks({ data: new Uint32Array(0), count: 0, length: 4 }, score),
    RangeError,
    "overBlocks: no blocks to score (blocks.count 0)",
  );
  const blocks: Blocks = { data: new Uint32Array(12), count: 3, length: 4 };
  for (const maxBlocks of [0, 2.5, -1, NaN]) {
    await assertRejects(
      () => overBlocks(blocks, score, { maxBlocks }),
      RangeError,
      `overBlocks: maxBlocks must be a positive integer, got ${maxBlocks}`,
    );
  }
  assertEquals((await overBlocks(blocks, score, { maxBlocks: 2 })).tokens, 4);
});

Deno.test("figures() refuses an NLL or count that is not a finite number ≥ 0 and bytes per token that are not > 0", () => {
  for (const nll of [-1, NaN, Infinity, -Infinity]) {
    // -1 gave a perplexity of 0.368; NaN and Infinity null in results.json.
    assertThrows(
      () => figures(nll, { tokens: 10 }),
      RangeError,
      `figures: nll (nats per token) must be a finite number ≥ 0, got ${nll}`,
    );
  }
  assertThrows(
    () => figures(1, { tokens: -3 }),
    RangeError,
    "figures: tokens must be a finite number ≥ 0, got -3",
  );
  for (const bytesPerToken of [-1, 0, NaN]) {
    // -1 gave a negative bpb; 0 dropped bpb silently.
    assertThrows(
      () => figures(1, { tokens: 10, bytesPerToken }),
      RangeError,
      `figures: bytesPerToken must be a finite number > 0, got ${bytesPerToken}`,
    );
  }
  assertThrows(
    () => figures(1, { tokens: 10, stderr: -0.1 }),
    RangeError,
    "figures: stderr must be ≥ 0",
  );
  // A perfect score and an unmeasured stderr are figures.
  const zero = figures(0, { tokens: 10, stderr: NaN });
  assertEquals([zero.nll, zero.ppl, zero.bpt], [0, 1, 0]);
  assert(Number.isNaN(zero.stderr));
});

Deno.test("overBlocks() refuses a scorer's NaN, infinite or negative figures and blocks the data cannot hold", async () => {
  const blocks: Blocks = { data: new Uint32Array(8), count: 4, length: 2 };
  for (
    const [nats, tokens, bad] of [
      [NaN, 2, "nats must be a finite number ≥ 0, got NaN"],
      [Infinity, 2, "nats must be a finite number ≥ 0, got Infinity"],
      [-1, 2, "nats must be a finite number ≥ 0, got -1"],
      [1, -2, "tokens must be a finite number ≥ 0, got -2"],
    ] as const
  ) {
    await assertRejects(
      () =>
        overBlocks(
          blocks,
          () => Promise.resolve({ nats, stderr: 0, tokens }),
          { batchSize: 2 },
        ),
      RangeError,
      `overBlocks: the scorer's estimate of blocks 0–1: ${bad}`,
    );
  }
  // Five blocks of two claimed over eight ids: the scorer was handed a
  // short last batch.
  let calls = 0;
  await assertRejects(
    () =>
      overBlocks(
        { ...blocks, count: 5 },
        () => Promise.resolve({ nats: 1, stderr: 0, tokens: ++calls }),
      ),
    RangeError,
    "overBlocks: 5 blocks of 2 need 10 ids, the data has 8",
  );
  assertEquals(calls, 0);
});

Deno.test("summarize() refuses a value that is not a finite number", () => {
  for (const x of [NaN, Infinity, null as unknown as number]) {
    assertThrows(
      () => summarize([5.72, x]),
      RangeError,
      `summarize: value 1 must be a finite number, got ${x}`,
    );
  }
  assertEquals(summarize([-1, 1]).mean, 0); // any sign
});
