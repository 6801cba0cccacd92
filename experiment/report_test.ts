import { assertAlmostEquals, assertEquals } from "@std/assert";
import {
  formatSamples,
  genPplCell,
  plateauExit,
  plateauWindow,
} from "./report.ts";

Deno.test("plateauExit: the first step whose window mean is 0.25 nat below the entropy", () => {
  const losses = [7, 7, 7, 6.5, 6.3, 6.2, 6.1, 6.0];
  // Windows of 2: (6.5 + 6.3) / 2 = 6.4 < 6.74 − 0.25 at step 5, not before.
  assertEquals(plateauExit(losses, 6.74, 2), 5);
  // A window of 1 sees step 4's 6.5 (not < 6.49) and exits at step 5 too.
  assertEquals(plateauExit(losses, 6.74, 1), 5);
  // Windows of 4: steps 3–6 average 6.5 (not below 6.49), steps 4–7 6.275.
  assertEquals(plateauExit(losses, 6.74, 4), 7);
  assertEquals(plateauExit(losses, 5, 2), 0); // never
  assertEquals(plateauExit([], 6.74, 2), 0);
  // The first full window counts: catches `i + 1 >= window` → `>`, `i >=`
  // or `i − 1 >=` (exit one step later or never).
  assertEquals(plateauExit([6, 6], 6.74, 2), 2);
  assertEquals(plateauExit([6], 6.74, 1), 1);
  // Strictly below, by the default margin 0.25 (exact in binary): 6.5 is
  // not below 6.75 − 0.25, 6.48 is, 6.47 is not below 6.75 − 0.275.
  assertEquals(plateauExit([6.5, 6.5, 6], 6.75, 1), 3);
  assertEquals(plateauExit([6.6, 6.48], 6.75, 1), 2);
  assertEquals(plateauExit([6.48], 6.75, 1, 0.275), 0);
});

Deno.test("plateauWindow: 25 steps' worth of 8-row batches", () => {
  assertEquals(plateauWindow(8), 25);
  assertEquals(plateauWindow(4), 50);
  assertEquals(plateauWindow(1000), 1);
  // 200 rows: 200/134 = 1.49 rounds to 1 (201 rows would give 2), 200/16 =
  // 12.5 to 13 (199 rows: 12).
  assertEquals(plateauWindow(134), 1);
  assertEquals(plateauWindow(16), 13);
});

Deno.test("formatSamples: no more rows than the ids hold", () => {
  // Catches the rows counted as `ids.length · L` (empty rows printed).
  const text = formatSamples("AR", Int32Array.of(1, 2, 3, 4), {
    length: 2,
    count: 5,
    decode: (x) => [...x].join(" "),
  });
  assertEquals(text, "--- AR sample 1 ---\n1 2\n\n--- AR sample 2 ---\n3 4\n");
});

Deno.test("the loss chart names only the contestants that have curves, and one colour per contestant", async () => {
  const { curvesOf, lossChart } = await import("./charts.ts");
  const records = [
    { model: "ar", seed: 0, step: 1, loss: 5 },
    { model: "ar", seed: 0, step: 1, valid: 5.1 },
    { model: "d3pm", seed: 0, step: 1, loss: 6 },
    { model: "d3pm", seed: 1, step: 1, loss: 6.2 },
  ];
  const spec = lossChart(curvesOf(records), {
    label: (k: string) => k.toUpperCase(),
    validation: (k: string) => (k === "ar" ? "NLL" : "bound"),
  });
  const text = JSON.stringify(spec);
  assertEquals(text.includes("MLM"), false);
  assertEquals(
    spec.options.note,
    "Validation: AR NLL, D3PM bound. Training curves smoothed. Mean ± sd over 2 seeds; each seed faint.",
  );
  const colours = new Map(
    spec.series.map((s) => [s.name.split(" ")[0], s.color]),
  );
  assertEquals(colours.size, 2);
});

Deno.test("genPplCell: gen PPL with its 95% interval and sample count when measured", () => {
  assertEquals(genPplCell({ genPpl: 367.94 }), "367.9");
  assertEquals(
    genPplCell({
      genPpl: 219.3,
      genPplInterval: { low: 202.04, high: 238.06, samples: 128 },
    }),
    "219.3 (95%: 202.0–238.1, n = 128)",
  );
});

Deno.test("smooth() is the trailing mean of the last max(1, ⌊n/50⌋) points, fewer at the start; meanCurve() the mean and sample sd at shared x", async () => {
  const { meanCurve, smooth } = await import("./charts.ts");
  // Brute force: average the window directly. Tolerance 1e-12 (running sums
  // of O(1) values over 230 points). Catches the first points divided by
  // the full window (the curve's start dragged toward 0), a window one too
  // wide, and the sd over n instead of n − 1.
  const pts: [number, number][] = Array.from(
    { length: 230 },
    (_, i) => [i + 1, 5 + Math.sin(i) + 3 / (i + 1)],
  );
  const w = 4; // ⌊230 / 50⌋
  const got = smooth(pts);
  assertEquals(got.map(([x]) => x), pts.map(([x]) => x));
  for (let i = 0; i < pts.length; i++) {
    const window = pts.slice(Math.max(0, i - w + 1), i + 1).map(([, y]) => y);
    const want = window.reduce((a, b) => a + b, 0) / window.length;
    assertAlmostEquals(got[i][1], want, 1e-12, `point ${i}`);
  }
  const curves: [number, number][][] = [
    [[1, 5], [2, 4], [3, 3.5]],
    [[1, 6], [3, 3.25]],
    [[1, 7.5], [2, 9], [3, 3]],
  ];
  const mean = meanCurve(curves);
  assertEquals(mean.map(([x]) => x), [1, 3]); // x = 2 is not in every curve
  for (const [x, m, sd] of mean) {
    const ys = curves.map((c) => c.find(([cx]) => cx === x)![1]);
    const mu = (ys[0] + ys[1] + ys[2]) / 3;
    assertAlmostEquals(m, mu, 1e-12);
    assertAlmostEquals(
      sd,
      Math.sqrt(ys.reduce((a, y) => a + (y - mu) ** 2, 0) / 2),
      1e-12,
    );
  }
});

Deno.test("report.md says which engine trained and which evaluated a model a resume evaluated on another engine, and nothing for one that trained where it was evaluated", async () => {
  const { resolveConfig } = await import("./config.ts");
  const { writeReport } = await import("./report.ts");
  const { RunFolder } = await import("./run_folder.ts");
  type Result = import("./results.ts").ModelResult;
  const tfjs = "tfjs on blas (OpenBLAS, 2 threads)";
  const cpu = "cpu: 2 threads, 4 products, OpenBLAS 0.3.26, build 0123456789ab";
  const model = (
    kind: string,
    engine: string,
    evaluatedOn: string,
    trainedOn: string,
  ): Result => ({
    model: kind,
    seed: 0,
    parameters: 1234,
    engine,
    evaluatedOn,
    training: {
      seconds: 1,
      lastLoss: 3,
      tokens: 100,
      engines: [{ engine: trainedOn, fromStep: 0 }],
    },
    test: { nll: 3, bpt: 4.3, ppl: 20, tokens: 64, bound: false },
    generation: {
      speed: {
        batches: 1,
        seconds: 1,
        batchesPerSecond: 1,
        tokensPerSecond: 64,
      },
      genPpl: 100,
      entropy: 4,
    },
  } as Result);
  const report = async (results: Result[], resume = false) => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/metrics.jsonl`, "");
      await writeReport({
        command: "test",
        config: resolveConfig({
          preset: "micro",
          out: dir,
          models: "ar",
          resume,
        }),
        backend: "blas",
        engine: "cpu (auto: no GPU)",
        tokenizer: { id: "byte", vocabSize: 260 },
        data: {
          source: "synthetic",
          trainTokens: 1000,
          testTokens: 640,
          bytesPerToken: 3.7,
          unigramEntropy: 4,
        },
        judge: "none",
        results,
        seconds: 60,
      }, new RunFolder(dir));
      return (await Deno.readTextFile(`${dir}/report.md`)).replaceAll(
        "\n",
        " ",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  };
  // An AR an older run trained on tfjs, evaluated on the CPU engine of
  // the resume: the run's engine is its `engine`, but not what trained it.
  const resumed = await report([
    model("ar", "cpu (auto: no GPU)", cpu, tfjs),
  ]);
  assertEquals(
    resumed.includes(
      `**Evaluated on another engine than trained it** (its test, generation and speed figures are the evaluating engine's): seed 0 AR trained on ${tfjs}, evaluated on ${cpu}.`,
    ),
    true,
    resumed.slice(0, 1200),
  );
  // One trained and evaluated on the CPU engine: no such line.
  const fresh = await report([model("ar", "cpu (auto: no GPU)", cpu, cpu)]);
  // results.json's seconds are the session's: a resume's report says so
  // (a --resume of a finished 18-minute run said "The run took 1.8 minutes").
  assertEquals(fresh.includes("matched. The run took 1.0 minutes."), true);
  const again = await report(
    [model("ar", "cpu (auto: no GPU)", cpu, cpu)],
    true,
  );
  assertEquals(
    again.includes("matched. This session (a --resume) took 1.0 minutes."),
    true,
    again.slice(0, 1200),
  );
  assertEquals(fresh.includes("Evaluated on another engine"), false);
  assertEquals(fresh.includes("trained and evaluated on"), false);
  // A model on an engine of its own that trained there too keeps its line.
  const own = await report([
    model("ar", "tfjs (the ar contestant runs on tfjs only)", tfjs, tfjs),
  ]);
  assertEquals(own.includes("Evaluated on another engine"), false);
  assertEquals(
    own.includes(
      "AR trained and evaluated on tfjs (the ar contestant runs on tfjs only): its times are that engine's.",
    ),
    true,
  );
});

Deno.test("report.md's budget counts an --init-from source's tokens and FLOPs, and says matched only when the totals are", async () => {
  const { resolveConfig } = await import("./config.ts");
  const { writeReport } = await import("./report.ts");
  const { RunFolder } = await import("./run_folder.ts");
  type Result = import("./results.ts").ModelResult;
  const config = resolveConfig({ preset: "micro", models: "ar,d3pm" });
  const own = config.steps * config.batchSize * config.blockLength;
  const model = (
    kind: string,
    seed: number,
    from?: { tokens?: number; seed?: number; dir?: string },
  ): Result => ({
    model: kind,
    seed,
    parameters: 1000,
    training: {
      seconds: 1,
      lastLoss: 3,
      tokens: own,
      ...(from
        ? {
          initFrom: {
            dir: from.dir ?? "runs/src",
            seed: from.seed ?? seed,
            model: "ar",
            parameters: 1000,
            ...(from.tokens !== undefined
              ? { tokens: from.tokens, flops: 6 * 1000 * from.tokens }
              : {}),
          },
        }
        : {}),
    },
    test: { nll: 3, bpt: 4.3, ppl: 20, tokens: 64, bound: kind !== "ar" },
    generation: {
      speed: {
        batches: 1,
        seconds: 1,
        batchesPerSecond: 1,
        tokensPerSecond: 64,
      },
      genPpl: 100,
      entropy: 4,
    },
    curve: [],
  } as unknown as Result);
  const report = async (results: Result[]) => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/metrics.jsonl`, "");
      await writeReport({
        command: "test",
        config: { ...config, out: dir },
        backend: "blas",
        engine: "cpu (auto: no GPU)",
        tokenizer: { id: "byte", vocabSize: 260 },
        data: {
          source: "synthetic",
          trainTokens: 1000,
          testTokens: 640,
          bytesPerToken: 3.7,
          unigramEntropy: 4,
        },
        judge: "none",
        results,
        seconds: 60,
      }, new RunFolder(dir));
      const text = await Deno.readTextFile(`${dir}/report.md`);
      return text.replaceAll("\n", " ").split("The run took")[0];
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  };
  // Hand-computed: micro trains `own` tokens a model; 1000 parameters, so
  // 6000 FLOPs a token. A source of 3 × own tokens: in all 4 × own.
  const flops = (tokens: number) => {
    let x = 6000 * tokens, u = 0;
    while (x >= 1000) (x /= 1000, u++);
    return `${x.toPrecision(3)} ${["", "k", "M", "G", "T"][u]}FLOP`;
  };
  const line = `the AR of runs/src (seed 0), trained on ${3 * own} tokens (${
    flops(3 * own)
  }): in all ${4 * own} tokens, ${flops(4 * own)}.`;
  // The AR trained from scratch beside the adapted D3PM: not matched.
  const mixed = await report([
    model("ar", 0),
    model("d3pm", 0, { tokens: 3 * own }),
  ]);
  assertEquals(mixed.includes(`The D3PM started from ${line}`), true, mixed);
  assertEquals(mixed.includes("per model, matched"), false, mixed);
  assertEquals(
    mixed.includes("Total compute not matched: the models' totals differ."),
    true,
    mixed,
  );
  // The D3PM alone: nothing in the run to match it with.
  const alone = await report([model("d3pm", 0, { tokens: 3 * own })]);
  assertEquals(alone.includes(`The D3PM started from ${line}`), true, alone);
  assertEquals(
    /\bmatched\b/.test(alone.replace("nothing to match", "")),
    false,
    alone,
  );
  // Two models whose totals agree: matched.
  const both = await report([
    model("ar", 0, { tokens: 3 * own }),
    model("d3pm", 0, { tokens: 3 * own }),
  ]);
  assertEquals(both.includes("Total compute matched."), true, both);
  // Two seeds, each from its own seed's source: said once.
  const seeds = await report([
    model("d3pm", 0, { tokens: 3 * own }),
    model("d3pm", 1, { tokens: 3 * own }),
  ]);
  assertEquals(
    seeds.includes(
      `The D3PM started from ${line.replace("seed 0", "each seed's own")}`,
    ),
    true,
    seeds,
  );
  // Two seeds both from seed 0's source (--seeds 2 --init-from RUN/seed-0):
  // said once, as seed 0's, not "each seed's own".
  const one = await report([
    model("d3pm", 0, { tokens: 3 * own, seed: 0 }),
    model("d3pm", 1, { tokens: 3 * own, seed: 0 }),
  ]);
  assertEquals(one.includes(`The D3PM started from ${line}`), true, one);
  assertEquals(one.includes("each seed's own"), false, one);
  // Seeds whose sources differ: one clause each.
  const apart = await report([
    model("d3pm", 0, { tokens: 3 * own }),
    model("d3pm", 1, { tokens: own }),
  ]);
  assertEquals(
    apart.includes(
      `at seed 1 from the AR of runs/src (seed 1), trained on ${own} tokens (${
        flops(own)
      }): in all ${2 * own} tokens, ${flops(2 * own)}.`,
    ),
    true,
    apart,
  );
  // An imported checkpoint: not counted, and said; never matched.
  const imported = await report([model("ar", 0), model("d3pm", 0, {})]);
  assertEquals(
    imported.includes("an imported checkpoint: its training is not known"),
    true,
    imported,
  );
  assertEquals(
    imported.includes(
      "Total compute not known: an imported source's training is not.",
    ),
    true,
    imported,
  );
  // Without --init-from, the line is as it was.
  const plain = await report([model("ar", 0), model("d3pm", 0)]);
  assertEquals(
    plain.includes(`(${own} tokens) per model, matched.`),
    true,
    plain,
  );
});

Deno.test("report.md's plateau step counts only the losses a resume kept", async () => {
  const { resolveConfig } = await import("./config.ts");
  const { writeReport } = await import("./report.ts");
  const { RunFolder } = await import("./run_folder.ts");
  const config = resolveConfig({ preset: "micro", models: "ar" });
  const window = plateauWindow(config.batchSize);
  // Below the plateau (3 < 4 - 0.25) from step 1; resumed from step 4 and
  // redone above it (5) up to step 59, just below from 60 (3.7: it leaves
  // when a whole window is past step 59).
  const loss = (step: number, redo: boolean) =>
    redo ? (step < 60 ? 5 : 3.7) : 3;
  const records = [
    ...Array.from({ length: window + 20 }, (_, i) => [i + 1, false] as const),
    ...Array.from({ length: 100 + window }, (_, i) => [i + 5, true] as const),
  ].map(([step, redo]) => ({
    model: "ar",
    seed: 0,
    step,
    loss: loss(step, redo),
  }));
  const kept = [
    ...Array.from({ length: 4 }, () => 3),
    ...Array.from({ length: 100 + window }, (_, i) => loss(i + 5, true)),
  ];
  const want = plateauExit(kept, 4, window);
  assertEquals(want, 59 + window);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/metrics.jsonl`,
      records.map((r) => JSON.stringify(r) + "\n").join(""),
    );
    await writeReport({
      command: "test",
      config: { ...config, out: dir },
      backend: "blas",
      engine: "cpu (auto: no GPU)",
      tokenizer: { id: "byte", vocabSize: 260 },
      data: {
        source: "synthetic",
        trainTokens: 1000,
        testTokens: 640,
        bytesPerToken: 3.7,
        unigramEntropy: 4,
      },
      judge: "none",
      results: [{
        model: "ar",
        seed: 0,
        parameters: 1000,
        training: { seconds: 1, lastLoss: 3, tokens: 1000 },
        test: { nll: 3, bpt: 4.3, ppl: 20, tokens: 64, bound: false },
        generation: {
          speed: {
            batches: 1,
            seconds: 1,
            batchesPerSecond: 1,
            tokensPerSecond: 64,
          },
          genPpl: 100,
          entropy: 4,
        },
      }],
      seconds: 60,
    } as never, new RunFolder(dir));
    const text = await Deno.readTextFile(`${dir}/report.md`);
    const row = text.split("## Training")[1].split("\n")
      .find((l) => l.startsWith("| AR"))!;
    assertEquals(row.split("|").map((c) => c.trim())[8], String(want), row);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plant: a record with a numeric loss but no step count taken into the
// plateau scan or the curves (the code before: `losses.length = step − 1`
// threw "Invalid array length" at a step of "x", ending a resumed run
// after its training and evaluation).
Deno.test("writeReport passes over metrics records without a step count instead of failing the run", async () => {
  const { resolveConfig } = await import("./config.ts");
  const { writeReport } = await import("./report.ts");
  const { RunFolder } = await import("./run_folder.ts");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/metrics.jsonl`,
      [
        { model: "ar", seed: 0, step: 1, loss: 5 },
        { model: "ar", seed: 0, step: "x", loss: 1 },
        { model: "ar", seed: 0, step: -3, loss: 1 },
        { model: "ar", seed: 0, loss: 1 },
        { model: "ar", seed: 0, step: 2, loss: 4 },
      ].map((r) => JSON.stringify(r) + "\n").join(""),
    );
    await writeReport({
      command: "test",
      config: resolveConfig({ preset: "micro", out: dir, models: "ar" }),
      backend: "blas",
      engine: "cpu",
      tokenizer: { id: "byte", vocabSize: 260 },
      data: {
        source: "synthetic",
        trainTokens: 1000,
        testTokens: 640,
        bytesPerToken: 3.7,
        unigramEntropy: 4,
      },
      judge: "none",
      results: [],
      seconds: 60,
    }, new RunFolder(dir));
    assertEquals((await Deno.stat(`${dir}/loss.svg`)).isFile, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report.md labels each model's final train loss with the steps its training recorded, and a model without them as the last logged figure, not from this run's --log-every", async () => {
  const { resolveConfig } = await import("./config.ts");
  const { writeReport } = await import("./report.ts");
  const { RunFolder } = await import("./run_folder.ts");
  type Result = import("./results.ts").ModelResult;
  const model = (seed: number, steps?: [number, number]): Result => ({
    model: "ar",
    seed,
    parameters: 1234,
    engine: "tfjs",
    training: {
      seconds: 1,
      lastLoss: 3,
      ...(steps ? { lastLossSteps: steps } : {}),
      tokens: 100,
    },
    test: { nll: 3, bpt: 4.3, ppl: 20, tokens: 64, bound: false },
    generation: {
      speed: {
        batches: 1,
        seconds: 1,
        batchesPerSecond: 1,
        tokensPerSecond: 64,
      },
      genPpl: 100,
      entropy: 4,
    },
  } as Result);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/metrics.jsonl`, "");
    // This session: 100 steps logged every 10 (its own last interval would
    // be steps 91–100); the AR finished in an earlier session that read
    // its loss every 15 up to 90, seed 1 under an older version.
    await writeReport({
      command: "test",
      config: resolveConfig({
        preset: "micro",
        out: dir,
        models: "ar",
        seeds: 2,
        steps: 100,
        logEvery: 10,
      }),
      backend: "blas",
      engine: "tfjs",
      tokenizer: { id: "byte", vocabSize: 260 },
      data: {
        source: "synthetic",
        trainTokens: 1000,
        testTokens: 640,
        bytesPerToken: 3.7,
        unigramEntropy: 4,
      },
      judge: "none",
      results: [model(0, [76, 90]), model(1)],
      seconds: 60,
    }, new RunFolder(dir));
    const report = await Deno.readTextFile(`${dir}/report.md`);
    const rows = report.split("\n").filter((l) => l.includes("| 3.000 ("));
    assertEquals(rows.length, 2, report);
    assertEquals(rows[0].includes("| 3.000 (steps 76 to 90) |"), true, rows[0]);
    assertEquals(
      rows[1].includes("| 3.000 (last logged figure) |"),
      true,
      rows[1],
    );
    assertEquals(
      report.includes("91"),
      false,
      "no step of this session's claimed",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
