import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertThrows,
} from "@std/assert";
import { prng, type PrngState, randomFloats, restorePrng } from "./prng.ts";

Deno.test("prng() is deterministic for a seed and differs across seeds", () => {
  const draws = (seed: number) => {
    const r = prng(seed);
    return Array.from({ length: 100 }, () => r.nextUint32());
  };
  assertEquals(draws(1), draws(1));
  const other = draws(2);
  assertEquals(draws(1).filter((x, i) => x === other[i]).length, 0);
});

Deno.test("the generator is xoshiro128** (Vigna's reference outputs) seeded by splitmix32", () => {
  // Known answers, exact, computed by a separate Python transcription of
  // the reference C code (prng.di.unimi.it/xoshiro128starstar.c; from state
  // {1, 2, 3, 4} it starts 11520, 0, 5927040, 70819200, the sequence other
  // ports publish) and of this file's splitmix32 (golden-ratio step,
  // MurmurHash3's finaliser) for the seeded state. Every recorded run's data order, noise and samples hang on
  // these numbers. Catches a changed rotation or shift (rotl(s3, 13) for 11:
  // still uniform, so the statistical tests pass), a changed seeding, and
  // next() built from other bits.
  const r = restorePrng([1, 2, 3, 4]);
  assertEquals(
    Array.from({ length: 8 }, () => r.nextUint32()),
    [
      11520,
      0,
      5927040,
      70819200,
      2031721883,
      1637235492,
      1287239034,
      3734860849,
    ],
  );
  assertEquals(restorePrng([1, 2, 3, 4]).next(), 2.682209014892578e-6);
  const seeded = prng(42);
  assertEquals(seeded.state(), [939911724, 3948730756, 321366731, 3317318717]);
  assertEquals(
    Array.from({ length: 4 }, () => seeded.nextUint32()),
    [2837322924, 544945897, 479756282, 3500138142],
  );
});

Deno.test("prng().next() is uniform on [0, 1): mean, variance and decile counts", () => {
  const r = prng(123);
  const n = 200_000;
  const bins = new Array(10).fill(0);
  let sum = 0, sq = 0;
  for (let i = 0; i < n; i++) {
    const x = r.next();
    assert(x >= 0 && x < 1);
    sum += x;
    sq += x * x;
    bins[Math.floor(x * 10)]++;
  }
  // Standard errors: mean 0.00065, so 5 s.e. ≈ 0.003.
  assertAlmostEquals(sum / n, 0.5, 0.003);
  assertAlmostEquals(sq / n - (sum / n) ** 2, 1 / 12, 0.002);
  // Each bin ~ 20000 ± 134 (s.d.); allow 6 s.d.
  for (const b of bins) assert(Math.abs(b - n / 10) < 800, `bin ${b}`);
});

Deno.test("prng().nextInt() covers [0, n) evenly and rejects bad n", () => {
  const r = prng(9);
  const counts = new Array(7).fill(0);
  for (let i = 0; i < 70_000; i++) counts[r.nextInt(7)]++;
  for (const c of counts) assert(Math.abs(c - 10_000) < 600, `count ${c}`);
  assertThrows(() => r.nextInt(0), RangeError, "got 0");
  assertThrows(() => r.nextInt(1.5), RangeError);
});

Deno.test("restorePrng() continues the sequence of a saved state and rejects bad states", () => {
  const a = prng(77);
  for (let i = 0; i < 10; i++) a.next();
  const b = restorePrng(JSON.parse(JSON.stringify(a.state())));
  assertEquals(
    Array.from({ length: 20 }, () => b.next()),
    Array.from({ length: 20 }, () => a.next()),
  );
  assertThrows(
    () => restorePrng([1, 2, 3] as unknown as PrngState),
    RangeError,
    "four unsigned 32-bit integers",
  );
  assertThrows(() => restorePrng([0, 0, 0, 0]), RangeError, "all-zero");
});

Deno.test("prng() refuses a seed that is not a safe integer (a fraction was truncated to another seed's stream) and takes negative ones modulo 2^32", () => {
  for (
    const seed of [
      1.5,
      0.5,
      -1.5,
      NaN,
      Infinity,
      -Infinity,
      2 ** 53,
      -(2 ** 53),
      1e300,
    ]
  ) {
    assertThrows(
      () => prng(seed),
      RangeError,
      `Cannot seed PRNG: seed must be an integer in [-(2^53 - 1), 2^53 - 1] (taken modulo 2^32), got ${seed}`,
    );
    assertThrows(() => randomFloats(seed), RangeError, `got ${seed}`);
  }
  const draw = (p: ReturnType<typeof prng>) =>
    Array.from({ length: 4 }, () => p.nextUint32());
  // The documented domain: negative seeds (data/batches.ts derives int32
  // ones) and the largest safe integers, modulo 2^32.
  assertEquals(draw(prng(-1)), draw(prng(2 ** 32 - 1)));
  assertEquals(draw(prng(2 ** 53 - 1)), draw(prng(2 ** 32 - 1)));
  assertEquals(draw(prng(-(2 ** 53 - 1))), draw(prng(1)));
  assertEquals(draw(prng(2 ** 32 + 5)), draw(prng(5)));
});

Deno.test("fork() gives streams that depend on the label and leave the parent alone", () => {
  const parent = prng(7);
  const before = parent.state();
  const a = parent.fork("a"), a2 = parent.fork("a"), b = parent.fork("b");
  assertEquals(parent.state(), before);
  const draw = (p: ReturnType<typeof prng>) =>
    Array.from({ length: 64 }, () => p.nextUint32());
  const da = draw(a), db = draw(b);
  assertEquals(da, draw(a2));
  // Unrelated streams: about half the bits differ between them and the parent.
  const parentDraw = draw(restorePrng(before));
  for (const other of [db, parentDraw]) {
    let diff = 0;
    for (let i = 0; i < 64; i++) {
      diff += (da[i] ^ other[i]).toString(2).replace(/0/g, "").length;
    }
    assert(diff > 0.4 * 64 * 32 && diff < 0.6 * 64 * 32, `${diff} bits differ`);
  }
  // A fork's own forks are reproducible too.
  assertEquals(
    draw(prng(7).fork("a").fork("x")),
    draw(prng(7).fork("a").fork("x")),
  );
});
