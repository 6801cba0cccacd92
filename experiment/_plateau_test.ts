import { assertEquals } from "@std/assert";
import { PlateauScan } from "./_plateau.ts";
import { plateauExit } from "./report.ts";
import { type Prng, prng as seeded } from "@d3pm/core";

/** report.ts' former way: every loss in an array, cut to `step - 1` by each record. */
function arrayExit(
  records: Record<string, unknown>[],
  key: string,
  entropy: number,
  window: number,
): number {
  const losses: number[] = [];
  for (const r of records) {
    if (typeof r.loss !== "number" || `${r.model} ${r.seed}` !== key) continue;
    losses.length = Math.min(losses.length, Number(r.step) - 1);
    losses.push(r.loss);
  }
  return plateauExit(losses, entropy, window);
}

/**
 * The figure by brute force, in steps: the records that survive (a later
 * record at step t drops every earlier one at step ≥ t), then the first
 * step t ≥ window whose records in (t − window, t] average below the line.
 */
function stepExit(
  records: Record<string, unknown>[],
  key: string,
  entropy: number,
  window: number,
): number {
  let kept: [number, number][] = [];
  for (const r of records) {
    if (typeof r.loss !== "number" || `${r.model} ${r.seed}` !== key) continue;
    const t = Number(r.step);
    kept = kept.filter(([s]) => s < t);
    kept.push([t, r.loss]);
  }
  for (const [t] of kept) {
    if (t < window) continue;
    const inside = kept.filter(([s]) => s > t - window && s <= t);
    const mean = inside.reduce((a, [, l]) => a + l, 0) / inside.length;
    if (mean < entropy - 0.25) return t;
  }
  return 0;
}

function scanExit(
  records: Record<string, unknown>[],
  key: string,
  entropy: number,
  window: number,
): number {
  const scan = new PlateauScan(entropy, window);
  for (const r of records) scan.add(r);
  if (scan.needsReplay) {
    scan.replay();
    for (const r of records) scan.add(r);
  }
  return scan.exit(key);
}

/** A log of two seeds falling from 8 nats, each resumed from an earlier step now and then. */
function resumedLog(
  prng: Prng,
  every: number,
  resumes = 0.004,
): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const step = [0, 0];
  for (let n = 0; n < 4000; n++) {
    const seed = prng.next() < 0.5 ? 0 : 1;
    if (prng.next() < resumes) {
      step[seed] = Math.max(0, step[seed] - Math.floor(prng.next() * 300));
    }
    step[seed] += every;
    const loss = 6 + 2 * Math.exp(-step[seed] / 400) +
      0.4 * (prng.next() - 0.5);
    out.push({ model: "ar", seed, step: step[seed], loss });
    if (step[seed] % 100 === 0) {
      out.push({ model: "ar", seed, step: step[seed], valid: loss });
    }
  }
  return out;
}

// Plants (each fails this test): the window counted in records, not steps
// (the code before: a log of every 10th step left the plateau at "step"
// 30 for step 300); the mean over `window` rather than the records in it.
Deno.test("PlateauScan finds the step, in steps, through resumes: the array of losses' figure for a log of every step, brute force for every 10th", () => {
  let resumed = 0, exits = 0;
  for (let k = 0; k < 40; k++) {
    const prng = seeded(k);
    const every = k % 4 === 3 ? 10 : 1;
    const log = resumedLog(prng, every, k % 5 === 4 ? 0 : 0.004);
    const scan = new PlateauScan(6.4, 25);
    for (const r of log) scan.add(r);
    if (scan.needsReplay) resumed++;
    for (const key of ["ar 0", "ar 1"]) {
      const want = stepExit(log, key, 6.4, 25);
      if (every === 1) {
        // A log of every step: what report.md has always said.
        assertEquals(arrayExit(log, key, 6.4, 25), want, `log ${k}, ${key}`);
      }
      if (want > 0) exits++;
      const got = scanExit(log, key, 6.4, 25);
      assertEquals(got, want, `log ${k}, ${key}`);
    }
  }
  // The logs exercise both paths and both answers.
  assertEquals(resumed > 10 && resumed < 40, true, `${resumed} resumed`);
  assertEquals(exits > 20 && exits < 80, true, `${exits} exits`);
});

Deno.test("PlateauScan drops the losses a resume redoes", () => {
  // Steps 1–4 leave the plateau at 4; the resume from step 2 redoes 3–5 above it, so it leaves at 7.
  const log = [7, 7, 6, 6, 7, 7, 7, 6, 6].map((loss, i) => ({
    model: "ar",
    seed: 0,
    step: i < 4 ? i + 1 : i - 1,
    loss,
  }));
  assertEquals(arrayExit(log, "ar 0", 6.75, 2), 7);
  assertEquals(scanExit(log, "ar 0", 6.75, 2), 7);
});

// Plant: the finite check dropped (a foreign log's 1e999 parses to
// Infinity; once it leaves the window the sum is NaN and no exit is found).
Deno.test("PlateauScan passes over a non-finite loss", () => {
  const log = [
    { model: "ar", seed: 0, step: 1, loss: Infinity },
    ...Array.from(
      { length: 20 },
      (_, i) => ({ model: "ar", seed: 0, step: i + 2, loss: 3 }),
    ),
  ];
  assertEquals(scanExit(log, "ar 0", 7, 5), 5);
});

// Plants (each fails this test): the least cut from each cut on left out
// for the first cut (`i >= 0` → `> 0`, `>= 1`: records before the first
// resume kept though the second resume, further back, redoes them).
Deno.test("PlateauScan drops what a later resume redoes further back than an earlier one", () => {
  // Steps 1–6 (2–4 below the line), a resume from step 4 (5–7), then one
  // from step 1 redoing 2–9: only step 1 of the first stretch survives, and
  // the curve leaves the plateau at 7, not at 3.
  const stretches = [
    [1, [7, 6, 6, 6, 7, 7]],
    [5, [7, 7, 7]],
    [2, [7, 7, 7, 7, 6, 6, 6, 6]],
  ] as const;
  const log = stretches.flatMap(([first, losses]) =>
    losses.map((loss, i) => ({ model: "ar", seed: 0, step: first + i, loss }))
  );
  assertEquals(stepExit(log, "ar 0", 6.75, 2), 7);
  assertEquals(arrayExit(log, "ar 0", 6.75, 2), 7);
  assertEquals(scanExit(log, "ar 0", 6.75, 2), 7);
});

// Plants (each fails this test): step 1 dropped (`step < 1` → `<= 1`,
// `< 2`), step 0 taken (`< 0`: a cut, and the log read twice), a step
// that is not an integer taken (`||` → `&&`), a record at the last
// step logged not taken as redoing it (`s.length = at + 1` → `at + 0`),
// a curve with no losses said to leave at step 1 (`?? 0` → `?? 1`).
Deno.test("PlateauScan reads from step 1, ignores a step 0 or one that is not an integer, and takes a record at the last step logged as a resume redoing it", () => {
  const rec = (step: unknown, loss: number) => ({
    model: "ar",
    seed: 0,
    step,
    loss,
  });
  const scan = (log: Record<string, unknown>[]) => {
    const s = new PlateauScan(6.75, 1);
    for (const r of log) s.add(r);
    return s;
  };
  // Step 1 leaves the plateau at once; step 0 is no step.
  const first = [rec(0, 1), rec(1, 6), rec(2, 7)];
  assertEquals(scan(first).needsReplay, false);
  assertEquals(scan(first).exit("ar 0"), 1);
  assertEquals(scan(first).exit("ar 1"), 0); // no such curve
  // Steps 1.5 and "x" are no steps: never below the line.
  const fractional = [rec(1, 7), rec(1.5, 1), rec("x", 1), rec(2, 7)];
  assertEquals(scan(fractional).needsReplay, false);
  assertEquals(scan(fractional).exit("ar 0"), 0);
  // Step 3 logged again (a resume from step 2): its first loss is gone.
  const redone = [rec(1, 7), rec(2, 7), rec(3, 6), rec(3, 7), rec(4, 7)];
  assertEquals(scan(redone).needsReplay, true);
  assertEquals(stepExit(redone, "ar 0", 6.75, 1), 0);
  assertEquals(scanExit(redone, "ar 0", 6.75, 1), 0);
  assertEquals(scanExit(redone.slice(0, 3), "ar 0", 6.75, 1), 3);
});
