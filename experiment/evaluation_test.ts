import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertThrows,
} from "@std/assert";
import { prng } from "@d3pm/core";
import { perplexityInterval } from "@d3pm/eval";
import {
  backbone,
  generateByUnmasking,
  infillFigures,
  measureGeneration,
  staggerOf,
  staggerSentence,
  trainingTimes,
} from "./evaluation.ts";
import { resolveConfig } from "./config.ts";

Deno.test("measureGeneration() with --gen-samples judges the timed rows and then untimed ones, each alone, in order", async () => {
  const config = resolveConfig({
    preset: "micro",
    genTokens: 1,
    genBatch: 2,
    genSamples: 5,
  });
  const L = config.blockLength;
  const test = Uint32Array.from({ length: 3 * L }, (_, i) => 1 + (i % 7));
  const ctx = {
    config,
    data: {
      test: { data: test, count: 3, length: L },
      specials: { bos: 100, eos: 101, pad: 102, mask: 103 },
    } as never,
    rng: prng(0),
    // Each row's NLL is its first id; one judged row at a time.
    judge: (x0: { tokens: Int32Array; batchSize: number }) => {
      assertEquals(x0.batchSize, 1);
      return Promise.resolve({ nats: x0.tokens[0], stderr: 0, tokens: L - 1 });
    },
  };
  let calls = 0;
  const out = await measureGeneration(ctx, () => {
    // Batch k holds rows 2k+1 and 2k+2, each filled with its number.
    const tokens = new Int32Array(2 * L);
    tokens.fill(2 * calls + 1, 0, L);
    tokens.fill(2 * calls + 2, L);
    calls++;
    return Promise.resolve({ tokens, forwardPasses: L });
  });
  assertEquals(out.speed.batches, 1); // a warm-up and one timed batch, one more untimed
  assertEquals(calls, 3);
  // Catches: the last batch alone judged, the timed rows skipped, one row
  // too many or too few.
  const want = perplexityInterval([1, 2, 3, 4, 5]);
  assertAlmostEquals(out.genPpl, want.genPpl, 1e-9);
  assertAlmostEquals(out.genPplInterval!.low, want.low, 1e-9);
  assertAlmostEquals(out.genPplInterval!.high, want.high, 1e-9);
  assertEquals(out.genPplInterval!.samples, 5);
  assert(out.entropy === 0); // every row repeats one id
  assertEquals(out.tokens.length, 2 * L); // samples.txt: the last timed batch
});

Deno.test("measureGeneration() without --gen-samples judges the last timed batch alone, as older runs did", async () => {
  const config = resolveConfig({
    preset: "micro",
    genTokens: 1,
    genBatch: 2,
    genSamples: 0,
  });
  const L = config.blockLength;
  const seen: number[] = [];
  const ctx = {
    config,
    data: {} as never,
    rng: prng(0),
    judge: (x0: { tokens: Int32Array; batchSize: number }) => {
      seen.push(x0.batchSize);
      return Promise.resolve({ nats: 2, stderr: 0, tokens: L - 1 });
    },
  };
  const out = await measureGeneration(
    ctx,
    () => Promise.resolve({ tokens: new Int32Array(2 * L), forwardPasses: L }),
  );
  assertAlmostEquals(out.genPpl, Math.exp(2), 1e-9);
  assertEquals(out.genPplInterval, undefined);
  assertEquals(seen, [2]);
});

/** A run of `genSamples` rows made one row a call, each row filled with its number (1, 2, …). */
function oneRowRun(genSamples: number, quietSeconds?: number) {
  const config = resolveConfig({
    preset: "micro",
    genTokens: 1,
    genBatch: 1,
    genSamples,
  });
  const L = config.blockLength;
  const lines: string[] = [];
  let calls = 0;
  const ctx = {
    config,
    data: {} as never,
    rng: prng(0),
    judge: (x0: { tokens: Int32Array; batchSize: number }) =>
      Promise.resolve({ nats: x0.tokens[0], stderr: 0, tokens: L - 1 }),
    progress: {
      model: "m",
      log: (line: string) => lines.push(line),
      ...(quietSeconds === undefined ? {} : { quietSeconds }),
    },
  };
  const generate = () => {
    calls++;
    return Promise.resolve({
      tokens: new Int32Array(L).fill(calls),
      forwardPasses: L,
    });
  };
  return { ctx, generate, lines, calls: () => calls };
}

/** The `done` of each progress line of `verb`. */
function rowsDone(lines: string[], verb: string): number[] {
  return lines.filter((l) => l.startsWith(`${verb} m: rows `)).map((l) =>
    Number(/rows (-?\d+)\/5/.exec(l)![1])
  );
}

Deno.test("measureGeneration() with --gen-samples and one-row batches generates each missing row once and counts rows done on its progress", async () => {
  const run = oneRowRun(5, 0);
  const out = await measureGeneration(run.ctx, run.generate);
  // A warm-up and one timed row, then exactly the 3 missing ones. Catches
  // the rows counted as tokens (`/ L` → `* L`: the loop stops after one).
  assertEquals(run.calls(), 5);
  const want = perplexityInterval([1, 2, 3, 4, 5]);
  assertAlmostEquals(out.genPpl, want.genPpl, 1e-9);
  assertEquals(out.genPplInterval!.samples, 5);
  // Every update is a tenth or more of the work, so each is a line. Catches
  // the generated count capped from below (max) and the judged count
  // starting at 1 or counting down.
  assertEquals(rowsDone(run.lines, "generate"), [3, 4, 5]);
  assertEquals(rowsDone(run.lines, "judge"), [1, 2, 3, 4, 5]);
});

Deno.test("measureGeneration() with --gen-samples met by the timed rows generates nothing more", async () => {
  const config = resolveConfig({
    preset: "micro",
    genTokens: 1,
    genBatch: 2,
    genSamples: 4,
  });
  const L = config.blockLength;
  let calls = 0;
  const ctx = {
    config,
    data: {} as never,
    rng: prng(0),
    judge: () => Promise.resolve({ nats: 1, stderr: 0, tokens: L - 1 }),
  };
  await measureGeneration(ctx, () => {
    calls++;
    return Promise.resolve({ tokens: new Int32Array(2 * L), forwardPasses: L });
  });
  // The warm-up and the timed batch hold the 4 rows. Catches `have <
  // genSamples` → `<=` (one more, untimed, batch generated for nothing).
  assertEquals(calls, 2);
});

Deno.test("measureGeneration()'s row progress is quiet for 10 s by default", async () => {
  const run = oneRowRun(5);
  let clock = 0; // ms
  const generate = async () => {
    const out = await run.generate();
    // Rows 3, 4, 5 (untimed) arrive 9.5 s, 10.5 s and 11.5 s after the
    // progress starts (rows 1 and 2 are the warm-up and the timed one).
    if (run.calls() === 3) clock += 9500;
    else if (run.calls() > 3) clock += 1000;
    return out;
  };
  const real = Object.getOwnPropertyDescriptor(performance, "now");
  Object.defineProperty(performance, "now", {
    value: () => clock,
    configurable: true,
  });
  try {
    await measureGeneration(run.ctx, generate);
  } finally {
    if (real) Object.defineProperty(performance, "now", real);
    else delete (performance as { now?: unknown }).now;
  }
  // Catches a default of 9 s (row 3 shown) or 11 s (row 4 hidden).
  assertEquals(rowsDone(run.lines, "generate"), [4, 5]);
});

/** A stand-in process that records what infilling and generation are asked. */
function recordingProcess(maskId: number) {
  const seen: {
    infill?: { tokens: Int32Array; batchSize: number; length: number };
    steps?: number;
    prompt?: Int32Array;
    sampled?: number;
  } = {};
  const process = {
    spec: { maskId },
    evaluateInfill: (
      _model: unknown,
      x0: { tokens: Int32Array; batchSize: number; length: number },
      options: { steps: number },
    ) => {
      seen.infill = x0;
      seen.steps = options.steps;
      return Promise.resolve({
        accuracy: 0.5,
        nll: 1,
        hidden: 3,
        total: x0.batchSize * x0.length,
      });
    },
    fillBlanks: (_model: unknown, prompt: Int32Array) => {
      seen.prompt = prompt;
      return Promise.resolve({ tokens: prompt });
    },
    sample: (_model: unknown, options: { length: number }) => {
      seen.sampled = options.length;
      return Promise.resolve({ tokens: new Int32Array(options.length) });
    },
  };
  return { process: process as never, seen };
}

Deno.test("infillFigures() fills the first 8 test blocks (all when fewer) at the largest of --gen-steps", async () => {
  const config = resolveConfig({ preset: "micro", genSteps: "4,16,8" });
  const L = 4;
  for (const count of [10, 3]) {
    const test = Uint32Array.from({ length: count * L }, (_, i) => i);
    const { process, seen } = recordingProcess(99);
    const fill = await infillFigures({} as never, process, {
      config,
      data: { test: { data: test, count, length: L } } as never,
      rng: prng(0),
      judge: () => Promise.reject(new Error("not judged")),
    });
    const rows = Math.min(8, count);
    // Catches INFILL_BLOCKS 8 → 7 or 9, and Math.max → min over the steps.
    assertEquals(seen.infill!.batchSize, rows);
    assertEquals(seen.infill!.length, L);
    assertEquals(
      Array.from(seen.infill!.tokens),
      Array.from({ length: rows * L }, (_, i) => i),
    );
    assertEquals(seen.steps, 16);
    assertEquals(fill.blocks, rows);
    assertEquals(fill.hiddenFraction, 3 / (rows * L));
  }
});

Deno.test("backbone() gives ALiBi only with a positive slope, and only to a model that asks", () => {
  const c = resolveConfig({ preset: "micro" });
  const alibiOf = (alibi: number, asks: boolean) =>
    backbone({ ...c, alibi }, 16, { kind: "bidirectional", alibi: asks })
      .alibi;
  // Catches `alibi > 0` → `>= 0` (slope 0 given) and → `> 1` (slope 1 dropped).
  assertEquals(alibiOf(0, true), undefined);
  assertEquals(alibiOf(1, true), 1);
  assertEquals(alibiOf(0.5, true), 0.5);
  assertEquals(alibiOf(1, false), undefined);
});

Deno.test("generateByUnmasking() refuses a text prompt that fills the row, and fills the rest of a shorter one", async () => {
  const { process, seen } = recordingProcess(9);
  const request = (prefix: number[]) => ({
    length: 4,
    prng: prng(0),
    steps: 4,
    prefix: Int32Array.from(prefix),
  });
  // Catches `prefix.length >= length` → `>` (a full row accepted).
  assertThrows(
    () => generateByUnmasking(process, {} as never, request([1, 2, 3, 4])),
    RangeError,
    "it must leave room in the row of 4",
  );
  await generateByUnmasking(process, {} as never, request([1, 2, 3]));
  assertEquals(Array.from(seen.prompt!), [1, 2, 3, 9]);
  await generateByUnmasking(process, {} as never, {
    length: 4,
    prng: prng(0),
    steps: 4,
  });
  assertEquals(seen.sampled, 4);
});

Deno.test("trainingTimes() is empty at MDLM's defaults and names only what differs", () => {
  const c = resolveConfig({ preset: "micro" });
  // MDLM's draws, the options' defaults: t in [0.001, 1] per row, no fully
  // masked rows. Catches any of the four default values misspelt.
  assertEquals([c.tMin, c.tMax, c.timesPer, c.fullMaskShare], [
    0.001,
    1,
    "row",
    0,
  ]);
  assertEquals(trainingTimes(c), {});
  // Catches `fullMaskShare > 0` → `>= 0` (a share of 0 named) or `> 1`.
  assertEquals(trainingTimes({ ...c, tMin: 0.01 }), {
    times: { min: 0.01, max: 1, perToken: false },
  });
  assertEquals(trainingTimes({ ...c, fullMaskShare: 0.5 }), {
    times: { min: 0.001, max: 1, perToken: false, fullMaskShare: 0.5 },
  });
  assertEquals(trainingTimes({ ...c, timesPer: "token" }), {
    times: { min: 0.001, max: 1, perToken: true },
  });
});

Deno.test("staggerOf() and staggerSentence() say nothing at 0 and give the window's width 1 − δ otherwise", () => {
  // Catches `stagger > 0` → `>= 0` or `> 1`, `stagger === 0` → `=== 1`,
  // and the width 1 − δ as 2 − δ, 0 − δ or 1 + δ.
  assertEquals(staggerOf({ stagger: 0, staggerSpan: 4 }), {});
  assertEquals(staggerOf({ stagger: 0.5, staggerSpan: 4 }), {
    stagger: { span: 4, delta: 0.5 },
  });
  assertEquals(staggerSentence({ stagger: 0, staggerSpan: 4 }), "");
  const s = staggerSentence({ stagger: 0.25, staggerSpan: 8 });
  assert(s.includes("(--stagger 0.25)"), s);
  assert(s.includes("each span of 8 positions"), s);
  assert(s.includes(" 0.75 wide,"), s);
});
