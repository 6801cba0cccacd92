// `deno task evaluate` (scoreTest) on a long scoring: progress lines with an
// ETA once it has run past its quiet seconds (here 0), and the very figures
// of a silent scoring.
import { assert, assertEquals, assertMatch } from "@std/assert";
import { measureGeneration, resolveConfig, scoreTest } from "@d3pm/experiment";
import { prng } from "@d3pm/core";
import { fakeRun } from "../hf/_test_util.ts";

Deno.test("scoreTest() prints progress lines with an ETA past its quiet seconds, and the same figures as a silent scoring", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  // 24 test blocks: three batches of 8.
  await fakeRun(run, {
    steps: 10,
    warmup: 1,
    evalBlocks: 24,
    elboSamples: 2,
    models: "ar,d3pm",
  });
  for (const model of ["ar", "d3pm"]) {
    const lines: string[] = [];
    const loud = await scoreTest(run, {
      model,
      log: (l) => lines.push(l),
      quietSeconds: 0,
    });
    const progress = lines.filter((l) => l.startsWith(`score ${model}:`));
    assertEquals(progress.length, 3, lines.join("\n"));
    for (const [i, line] of progress.entries()) {
      assertMatch(
        line,
        new RegExp(
          `^score ${model}: test blocks ${
            8 * (i + 1)
          }/24  elapsed \\d+s  ETA \\d+s$`,
        ),
      );
    }
    // Silent within its quiet seconds.
    const quiet: string[] = [];
    await scoreTest(run, {
      model,
      log: (l) => quiet.push(l),
      quietSeconds: 3600,
    });
    assert(!quiet.some((l) => l.startsWith("score ")), quiet.join("\n"));
    // The figures of a scoring with no progress at all (no log).
    assertEquals(await scoreTest(run, { model }), loud);
    assertEquals(loud.blocks, 24);
  }
  await Deno.remove(root, { recursive: true });
});

// The generation-quality step (--gen-samples): rows generated, then judged,
// with progress lines past the quiet seconds, and the very figures and
// random draws of a silent one.
Deno.test("measureGeneration() with --gen-samples prints generate and judge progress lines past its quiet seconds, with the same figures and draws as a silent one", async () => {
  const config = resolveConfig({
    preset: "micro",
    genTokens: 1,
    genBatch: 2,
    genSamples: 20,
  });
  const L = config.blockLength;
  const measure = async (progress?: { quietSeconds: number }) => {
    const lines: string[] = [];
    const rng = prng(3);
    const stream = rng.fork("gen");
    let calls = 0;
    const ctx = {
      config,
      data: {} as never,
      rng,
      // A row's NLL from its ids, one judged row at a time.
      judge: (x0: { tokens: Int32Array; batchSize: number }) =>
        Promise.resolve({
          nats: x0.tokens.reduce((a, b) => a + b, 0) / L,
          stderr: 0,
          tokens: L - 1,
        }),
      ...(progress
        ? {
          progress: {
            model: "toy",
            log: (l: string) => lines.push(l),
            ...progress,
          },
        }
        : {}),
    };
    const out = await measureGeneration(ctx, () => {
      calls++;
      const tokens = Int32Array.from(
        { length: 2 * L },
        () => stream.nextInt(9),
      );
      return Promise.resolve({ tokens, forwardPasses: L });
    });
    const { speed: _, ...figures } = out;
    return {
      figures,
      calls,
      draws: [rng.state(), stream.state()],
      lines,
    };
  };
  const loud = await measure({ quietSeconds: 0 });
  // Rows 1–4 generated timed; 6, 8, …, 20 untimed (each a tenth or more).
  const generated = loud.lines.filter((l) => l.startsWith("generate toy:"));
  assertEquals(generated.length, 8, loud.lines.join("\n"));
  for (const [i, line] of generated.entries()) {
    assertMatch(
      line,
      new RegExp(
        `^generate toy: rows ${6 + 2 * i}/20  elapsed \\d+s  ETA \\d+s$`,
      ),
    );
  }
  // Row by row: a line every tenth (rounding may shift one by a row).
  const judged = loud.lines.filter((l) => l.startsWith("judge toy:"));
  assertEquals(judged.length, 10, loud.lines.join("\n"));
  for (const line of judged) {
    assertMatch(line, /^judge toy: rows \d+\/20 {2}elapsed \d+s {2}ETA \d+s$/);
  }
  assert(judged.at(-1)!.startsWith("judge toy: rows 20/20 "));
  // Silent within its quiet seconds.
  const quiet = await measure({ quietSeconds: 3600 });
  assertEquals(quiet.lines, []);
  // The figures (gen PPL, its interval and samples, entropy, the samples)
  // and the streams' draws of a generation with no progress at all.
  const silent = await measure();
  assertEquals(loud.figures.genPplInterval?.samples, 20);
  for (const other of [quiet, silent]) {
    assertEquals(other.figures, loud.figures);
    assertEquals(other.calls, loud.calls);
    assertEquals(other.draws, loud.draws);
  }
});

Deno.test("scoreTest()'s progress is quiet for 10 s by default (a stubbed clock for the progress line alone)", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  // 24 test blocks: three batches of 8, updated at 9.5 s, 10.5 s and 11.5 s
  // after the progress starts. Only the progress line's clock reads are
  // stubbed (told by the caller's file), so the scoring runs as ever.
  await fakeRun(run, { steps: 10, warmup: 1, evalBlocks: 24, models: "ar" });
  const real = Object.getOwnPropertyDescriptor(performance, "now");
  const realNow = performance.now.bind(performance);
  const ticks = [0, 9_500, 10_500, 11_500];
  let reads = 0;
  Object.defineProperty(performance, "now", {
    configurable: true,
    value: () =>
      /train\/progress\.ts/.test(new Error().stack ?? "")
        ? ticks[Math.min(reads++, ticks.length - 1)]
        : realNow(),
  });
  const lines: string[] = [];
  try {
    await scoreTest(run, { model: "ar", log: (l) => lines.push(l) });
  } finally {
    if (real) Object.defineProperty(performance, "now", real);
    else delete (performance as { now?: unknown }).now;
    await Deno.remove(root, { recursive: true });
  }
  assertEquals(reads, 4); // the start and three updates
  // Catches a default of 9 s (8/24 shown) or 11 s (16/24 hidden).
  const done = lines.filter((l) => l.startsWith("score ar:")).map((l) =>
    /blocks (\d+)\/24/.exec(l)![1]
  );
  assertEquals(done, ["16", "24"]);
});
