import { assert, assertEquals } from "@std/assert";
import { CURVE_POINTS, curvesOf, lossChart } from "./charts.ts";

const LABELS = {
  label: (k: string) => k.toUpperCase(),
  validation: () => "NLL",
};

/** Records of one training curve: `loss(step)` at the steps given. */
function log(
  steps: Iterable<number>,
  loss: (step: number) => number,
  seed = 0,
): Iterable<Record<string, unknown>> {
  return (function* () {
    for (const step of steps) {
      yield { model: "ar", seed, step, loss: loss(step) };
    }
  })();
}

function range(from: number, to: number): Iterable<number> {
  return (function* () {
    for (let s = from; s <= to; s++) yield s;
  })();
}

Deno.test("curvesOf() keeps a curve of a million steps within CURVE_POINTS, as contiguous bucket means", () => {
  const N = 1_000_000;
  const pts = curvesOf(log(range(1, N), (s) => s)).train.get("ar")!.get(0)!;
  assert(pts.length <= CURVE_POINTS, `${pts.length} points`);
  assert(pts.length > CURVE_POINTS / 4, `${pts.length} points`);
  assertEquals(pts[0], [1, 1]); // the first record, exact
  assertEquals(pts[pts.length - 1][0], N); // up to the last step
  // With loss = step, each point is the mean of the steps after the one
  // before it up to its own: every record counted once, none lost.
  const widths = new Set<number>();
  for (let i = 1; i < pts.length; i++) {
    const [from, to] = [pts[i - 1][0] + 1, pts[i][0]];
    assertEquals(pts[i][1], (from + to) / 2, `point ${i}`);
    if (i > 1 && i < pts.length - 1) widths.add(to - from + 1);
  }
  // Buckets share one width, a power of two, on a grid of steps (the first
  // is short of step 1, which stands alone; the last may be partial).
  assertEquals(widths.size, 1, `widths ${[...widths]}`);
  const [w] = widths;
  assertEquals(Math.log2(w) % 1, 0, `width ${w}`);
  for (const [x] of pts.slice(1, -1)) assertEquals((x + 1) % w, 0, `x ${x}`);
});

Deno.test("curvesOf() keeps a curve of CURVE_POINTS records exactly, and thins the next", () => {
  const loss = (s: number) => 5 + Math.sin(s);
  const exact = curvesOf(log(range(1, CURVE_POINTS), loss)).train.get("ar")!
    .get(0)!;
  assertEquals(exact, [...range(1, CURVE_POINTS)].map((s) => [s, loss(s)]));
  const one = curvesOf(log(range(1, CURVE_POINTS + 1), loss)).train.get("ar")!
    .get(0)!;
  assert(one.length <= (3 * CURVE_POINTS) / 4, `${one.length} points`);
});

Deno.test("curvesOf() thins sparse steps (every 10th) and validation alike", () => {
  const c = curvesOf(
    [
      ...[...range(1, 100_000)].map((s) => ({
        model: "ar",
        seed: 0,
        step: 10 * s,
        loss: 10 * s,
      })),
      ...[...range(1, 20_000)].map((s) => ({
        model: "ar",
        seed: 0,
        step: 50 * s,
        valid: 1,
      })),
    ],
    undefined,
    64,
  );
  const train = c.train.get("ar")!.get(0)!, valid = c.valid.get("ar")!.get(0)!;
  assert(train.length <= 64 && train.length > 16, `${train.length} points`);
  assert(valid.length <= 64 && valid.length > 16, `${valid.length} points`);
  assertEquals([train[0], train.at(-1)![0]], [[10, 10], 1_000_000]);
  assertEquals([valid[0], valid.at(-1)], [[50, 1], [1_000_000, 1]]);
});

Deno.test("curvesOf() keeps seeds' x values aligned when one of them was resumed", () => {
  const loss = (s: number) => 1 / s;
  const plain = [...log(range(1, 50_000), loss, 0)];
  // Seed 1 ran to 30,000, resumed from 20,000 (redoing 20,001–30,000).
  const resumed = [
    ...log(range(1, 30_000), loss, 1),
    ...log(range(20_001, 50_000), loss, 1),
  ];
  const c = curvesOf([...plain, ...resumed], undefined, 256);
  const a = c.train.get("ar")!.get(0)!, b = c.train.get("ar")!.get(1)!;
  assertEquals(b.map(([x]) => x), a.map(([x]) => x));
  // Away from the bucket the resume cut, the means agree too.
  const differ = a.filter(([, y], i) => Math.abs(y - b[i][1]) > 1e-12);
  assert(differ.length <= 1, `${differ.length} points differ`);
  const spec = lossChart(c, LABELS);
  const mean = spec.series.find((s) => s.name === "AR train, mean ± sd")!;
  assertEquals(mean.points.length, a.length);
});

Deno.test("curvesOf() refuses a bound under 4", () => {
  let message = "";
  try {
    curvesOf([], undefined, 3);
  } catch (e) {
    message = (e as Error).message;
  }
  assertEquals(
    message,
    "Cannot build curves: max must be an integer of at least 4, got 3",
  );
});

Deno.test("curvesOf() replaces a resumed run's redone steps, thinned or not", () => {
  const exact = curvesOf([
    ...log([1, 2, 3], (s) => s),
    ...log([2, 3], (s) => 10 * s),
  ]).train.get("ar")!.get(0)!;
  assertEquals(exact, [[1, 1], [2, 20], [3, 30]]);
  // Thinned, then resumed from the first step: it stays alone and exact.
  const loss = (s: number) => 1 / s;
  const thinned = curvesOf(
    [...log(range(1, 10_000), loss), ...log(range(2, 10_000), (s) => 2 / s)],
    undefined,
    64,
  ).train.get("ar")!.get(0)!;
  assertEquals(thinned[0], [1, 1]);
  assertEquals(thinned[1][0] > 2, true);
  assert(thinned.length <= 64);
});

// Plant: a bucket's point at its last record's step (the code before: the
// seeds' x values disagreed past step 2,000, and the band between them
// was one straight segment, 1,001 points against 2,600 unthinned).
Deno.test("curvesOf() keeps the mean ± sd band of seeds logged at different intervals", () => {
  const loss = (s: number) => 1 + 1 / s;
  const every = [...log(range(1, 8000), loss, 0)];
  // Seed 1 logged every step to 2,000, then resumed logging every 10th.
  const tenth = [
    ...log(range(1, 2000), loss, 1),
    ...log([...range(201, 800)].map((s) => 10 * s), loss, 1),
  ];
  const c = curvesOf([...every, ...tenth], undefined, 1024);
  const spec = lossChart(c, LABELS);
  const mean = spec.series.find((s) => s.name === "AR train, mean ± sd")!;
  const late = mean.points.filter(([x]) => x > 2000).length;
  assert(late >= 100, `${late} points of the band past step 2,000`);
});

// Plant: onCommonGrid returning the curves as they are (a review's
// reproduction: one seed of 20,000 steps thinned, one logged every 10th
// step not — one point of the band in common).
Deno.test("curvesOf() keeps the mean ± sd band of a thinned seed and an unthinned one logged every 10th step", () => {
  const loss = (s: number) => 2 + 8 / Math.sqrt(s);
  const c = curvesOf([
    ...log(range(1, 20_000), loss, 0),
    ...log([...range(1, 2000)].map((s) => 10 * s), loss, 1),
  ]);
  const spec = lossChart(c, LABELS);
  const mean = spec.series.find((s) => s.name === "AR train, mean ± sd")!;
  // A point wherever the sparser seed has a record in the coarser grid's
  // buckets: all its 2,000 but its first, kept at its own step.
  assertEquals(mean.points.length, 1999);
  assertEquals(mean.points.at(-1)![0], 20_000);
});
