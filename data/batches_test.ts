import {
  assert,
  assertEquals,
  assertNotEquals,
  assertThrows,
} from "@std/assert";
import { BatchIterator } from "./batches.ts";
import type { Blocks } from "./pack.ts";
import { DataError } from "./errors.ts";
import { prng } from "@d3pm/core";
import { chiSquare, chiSquarePower } from "../core/_test_stats.ts";

/** Block i holds [i, i, …] so a batch shows which blocks it took. */
function blocksOf(count: number, length = 3): Blocks {
  const data = new Uint32Array(count * length);
  for (let i = 0; i < count; i++) data.fill(i, i * length, (i + 1) * length);
  return { data, count, length };
}

function take(it: BatchIterator, n: number): number[][] {
  return Array.from({ length: n }, () => {
    const b = it.next();
    return Array.from(
      { length: b.batchSize },
      (_, r) => b.tokens[r * b.length],
    );
  });
}

Deno.test("BatchIterator gives the same batches for the same seed and others for another", () => {
  const blocks = blocksOf(50);
  const a = take(new BatchIterator(blocks, { batchSize: 4, seed: 7 }), 30);
  const b = take(new BatchIterator(blocks, { batchSize: 4, seed: 7 }), 30);
  const c = take(new BatchIterator(blocks, { batchSize: 4, seed: 8 }), 30);
  assertEquals(a, b);
  assertNotEquals(a, c);
});

Deno.test("BatchIterator visits every block once per epoch, in a new order each epoch", () => {
  const it = new BatchIterator(blocksOf(10), { batchSize: 3, seed: 1 });
  assertEquals(it.batchesPerEpoch, 3);
  const epochs = [take(it, 3).flat(), take(it, 3).flat(), take(it, 3).flat()];
  for (const e of epochs) {
    assertEquals(e.length, 9);
    assertEquals(new Set(e).size, 9, "no block twice in an epoch");
  }
  assertNotEquals(epochs[0], epochs[1]);
  assertEquals(it.state, { seed: 1, epoch: 2, batch: 3 });
  const next = it.next();
  assertEquals([next.epoch, next.step], [3, 9]);
});

/** The 6 orders of 3 blocks, in the order of a histogram's bins. */
const ORDERS = ["012", "021", "102", "120", "201", "210"];

/** How often each of {@linkcode ORDERS} came up, as a histogram. */
function orderCounts(keys: string[]): number[] {
  return ORDERS.map((o) => keys.filter((k) => k === o).length);
}

Deno.test("BatchIterator shuffles uniformly: the 6 orders of 3 blocks equally often over 6,000 epochs", () => {
  // Pearson's χ² (5 degrees of freedom) against 1,000 per order, p > 1e-3
  // (the stream is seeded, so the test is deterministic). The near miss:
  // the naive shuffle (j < n for every i, not j ≤ i), whose 27 equally
  // likely swaps give 3 orders 5/27 and 3 orders 4/27 (which ones does not
  // change the power). Its power at 6,000 epochs is asserted ≥ 0.99, and
  // float64 naive shuffles are rejected. Sattolo's shuffle (j < i) gives
  // only the 2 cyclic orders: caught by the list of orders seen.
  const epochs = 6000, alpha = 1e-3, uniform = ORDERS.map(() => 1 / 6);
  const it = new BatchIterator(blocksOf(3), { batchSize: 3, seed: 5 });
  const keys = Array.from({ length: epochs }, () => take(it, 1)[0].join(""));
  assertEquals([...new Set(keys)].sort(), ORDERS);
  const fit = chiSquare(orderCounts(keys), uniform);
  assert(
    fit.p > alpha,
    `χ² = ${fit.chi2.toFixed(1)} over ${orderCounts(keys)}`,
  );
  const naive = [5, 5, 5, 4, 4, 4].map((c) => c / 27);
  const power = chiSquarePower(uniform, naive, epochs, alpha);
  assert(power >= 0.99, `power against the naive shuffle: ${power}`);
  const rng = prng(9);
  const naiveKeys = Array.from({ length: epochs }, () => {
    const order = [0, 1, 2];
    for (let i = 2; i >= 0; i--) {
      const j = rng.nextInt(3);
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order.join("");
  });
  const miss = chiSquare(orderCounts(naiveKeys), uniform);
  assert(miss.p < alpha, `naive shuffle: χ² ${miss.chi2.toFixed(1)}`);
});

Deno.test("BatchIterator resumed from a saved state continues exactly, across epochs", () => {
  const blocks = blocksOf(17);
  const whole = new BatchIterator(blocks, { batchSize: 4, seed: 42 });
  const expected = take(whole, 20);
  for (const cut of [0, 1, 3, 4, 5, 11]) {
    const first = new BatchIterator(blocks, { batchSize: 4, seed: 42 });
    const head = take(first, cut);
    const saved = JSON.parse(JSON.stringify(first.state));
    const resumed = new BatchIterator(blocks, {
      batchSize: 4,
      seed: 0,
      state: saved,
    });
    assertEquals(
      [...head, ...take(resumed, 20 - cut)],
      expected,
      `cut at ${cut}`,
    );
  }
});

Deno.test("BatchIterator without shuffling yields blocks in order", () => {
  const it = new BatchIterator(blocksOf(5), { batchSize: 2, shuffle: false });
  assertEquals(take(it, 3), [[0, 1], [2, 3], [0, 1]]);
});

Deno.test("BatchIterator is iterable and yields int32 rows of the block length", () => {
  let n = 0;
  for (const b of new BatchIterator(blocksOf(4, 5), { batchSize: 2 })) {
    assert(b.tokens instanceof Int32Array);
    assertEquals(b.tokens.length, 10);
    if (++n === 5) break;
  }
});

Deno.test("BatchIterator rejects bad sizes and states with one-line errors", () => {
  const blocks = blocksOf(4);
  assertThrows(
    () => new BatchIterator(blocks, { batchSize: 0 }),
    DataError,
    "positive integer",
  );
  assertThrows(
    () => new BatchIterator(blocks, { batchSize: 5 }),
    DataError,
    "larger than the 4 blocks",
  );
  assertThrows(
    () =>
      new BatchIterator(blocks, {
        batchSize: 2,
        state: { seed: 0, epoch: -1, batch: 0 },
      }),
    DataError,
    "Cannot resume batches",
  );
  assertThrows(
    () =>
      new BatchIterator(blocks, {
        batchSize: 2,
        state: { seed: 0, epoch: 0, batch: 3 },
      }),
    DataError,
    "batch in [0, 2]",
  );
});

Deno.test("BatchIterator copies each drawn block whole: row r is ids [k·L, (k + 1)·L) of one block k, every block once per epoch", () => {
  // Every id distinct (id = position), so a row shifted by one id, or cut
  // short, shows; the first-id tests above see only a block's first id.
  const length = 4, count = 7;
  const blocks: Blocks = {
    data: Uint32Array.from({ length: count * length }, (_, i) => i),
    count,
    length,
  };
  for (const shuffle of [true, false]) {
    const it = new BatchIterator(blocks, { batchSize: 3, seed: 9, shuffle });
    for (let epoch = 0; epoch < 3; epoch++) {
      const seen: number[] = [];
      for (let b = 0; b < 2; b++) {
        const batch = it.next();
        for (let r = 0; r < 3; r++) {
          const row = Array.from(
            batch.tokens.subarray(r * length, (r + 1) * length),
          );
          const k = row[0] / length;
          assert(Number.isInteger(k) && k < count, `row ${row}`);
          assertEquals(row, [0, 1, 2, 3].map((j) => k * length + j));
          seen.push(k);
        }
      }
      assertEquals(new Set(seen).size, 6, "no block twice in an epoch");
    }
  }
});

Deno.test("BatchIterator's orders are pinned: seed 7's first three epochs of 6 blocks (a changed stream silently changes every run's batches)", () => {
  // Recorded from the Fisher–Yates over prng(imul(seed ^ 0x5bd1e995,
  // 0x27d4eb2f) ^ epoch) this file tests for uniformity above; a rewrite
  // that keeps the law but changes the stream (seed + epoch for seed ^
  // epoch, another hash) breaks the resumption of every saved run.
  const it = new BatchIterator(blocksOf(6), { batchSize: 6, seed: 7 });
  assertEquals(take(it, 3), [
    [3, 1, 5, 2, 4, 0],
    [2, 3, 5, 0, 1, 4],
    [4, 3, 1, 2, 5, 0],
  ]);
});

Deno.test("BatchIterator takes batchSize 1 (one block a batch, every block an epoch), defaults to seed 0 and numbers its steps across epochs", () => {
  const blocks = blocksOf(5);
  const one = new BatchIterator(blocks, { batchSize: 1, seed: 3 });
  assertEquals(one.batchesPerEpoch, 5);
  assertEquals(take(one, 5).flat().sort(), [0, 1, 2, 3, 4]);
  assertEquals(
    take(new BatchIterator(blocks, { batchSize: 2 }), 6),
    take(new BatchIterator(blocks, { batchSize: 2, seed: 0 }), 6),
  );
  assertEquals(new BatchIterator(blocks, { batchSize: 2 }).state.seed, 0);
  // step counts the batches before this one, over epochs of 5 batches.
  const steps = new BatchIterator(blocks, { batchSize: 1 });
  assertEquals(
    Array.from({ length: 12 }, () => steps.next()).map((
      b,
    ) => [b.epoch, b.step]),
    Array.from({ length: 12 }, (_, i) => [Math.floor(i / 5), i]),
  );
});

Deno.test("BatchIterator names the seed, not a state, when the seed is no integer", () => {
  const blocks = { data: new Uint32Array(8), count: 4, length: 2 };
  for (const seed of [1.5, NaN, Infinity]) {
    assertThrows(
      () => new BatchIterator(blocks, { batchSize: 2, seed }),
      DataError,
      `Cannot batch: seed must be an integer, got ${seed}`,
    );
  }
  // A saved state's seed wins over a bad option, and a bad state still
  // names the state.
  const state = { seed: 3, epoch: 0, batch: 0 };
  assertEquals(
    new BatchIterator(blocks, { batchSize: 2, seed: 1.5, state }).state,
    state,
  );
  assertThrows(
    () =>
      new BatchIterator(blocks, {
        batchSize: 2,
        state: { ...state, seed: 1.5 },
      }),
    DataError,
    "Cannot resume batches: state must have integer seed",
  );
});
