// report.md's figures against a synthetic results.json, each recomputed
// here by brute force: the per-seed table (BPT = NLL/ln 2, PPL = e^NLL,
// bits/byte = BPT / bytes per token) and the "Across seeds" section (mean,
// sample sd over n − 1, best = lowest BPT, range, mean batches/s, and the
// stability sentence's sd ratio). No experiment is run.

import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { resolveConfig } from "./config.ts";
import { likelihoodFigures } from "./evaluation.ts";
import { writeReport } from "./report.ts";
import { RunFolder } from "./run_folder.ts";
import type { ExperimentResult, ModelResult } from "./results.ts";

const BYTES_PER_TOKEN = 3.7;

// NLL (nats) and batches/s by model and seed: deliberately uneven, so that
// best ≠ first, sd(AR) ≠ sd(D3PM), and mean ≠ median.
const NLL: Record<string, number[]> = {
  ar: [3.41, 3.12, 3.9],
  d3pm: [5.6, 4.05, 6.52],
};
const SPEED: Record<string, number[]> = {
  ar: [1.25, 1.75, 2.5],
  d3pm: [3.5, 4.25, 3.0],
};

function result(model: string, seed: number): ModelResult {
  const nll = NLL[model][seed];
  const ctx = { data: { facts: { bytesPerToken: BYTES_PER_TOKEN } } } as never;
  const point = {
    speed: {
      batches: 3,
      seconds: 3 / SPEED[model][seed],
      batchesPerSecond: SPEED[model][seed],
      tokensPerSecond: 64 * SPEED[model][seed],
    },
    genPpl: 100 + seed,
    entropy: 4,
  };
  const bound = model === "d3pm";
  return {
    model,
    seed,
    parameters: 1234,
    training: { seconds: 1, lastLoss: nll + 0.1, tokens: 100 },
    test: likelihoodFigures(
      { nats: nll, stderr: 0.01 * (seed + 1), tokens: 640 },
      ctx,
      bound,
    ),
    generation: point,
    ...(bound
      ? {
        curve: [{ ...point, steps: 16 }],
        infill: {
          fraction: 0.15,
          hiddenFraction: 0.15,
          accuracy: 0.1,
          nll: 5,
          hidden: 10,
        },
      }
      : {}),
  } as ModelResult;
}

/** The rows of the markdown table under `## heading`, split into cells. */
function tableOf(md: string, heading: string): string[][] {
  const section = md.split(`## ${heading}`)[1].split("\n## ")[0];
  return section.split("\n").filter((l) => l.startsWith("|")).slice(2).map(
    (l) => l.split("|").slice(1, -1).map((c) => c.trim()),
  );
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sampleSd = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

Deno.test("likelihoodFigures(): BPT = NLL/ln 2, PPL = e^NLL, bits/byte = BPT/bytes per token; a bound keeps its stderr", () => {
  const ctx = { data: { facts: { bytesPerToken: BYTES_PER_TOKEN } } } as never;
  const est = { nats: 3.3, stderr: 0.02, tokens: 99 };
  const exact = likelihoodFigures(est, ctx, false);
  const bound = likelihoodFigures(est, ctx, true);
  for (const f of [exact, bound]) {
    assertAlmostEquals(f.nll, 3.3, 1e-15);
    assertAlmostEquals(f.bpt, 3.3 / 0.6931471805599453, 1e-12);
    assertAlmostEquals(f.ppl, 27.112638920657883, 1e-9); // e^3.3
    assertAlmostEquals(f.bpb!, 3.3 / 0.6931471805599453 / 3.7, 1e-12);
    assertEquals(f.tokens, 99);
  }
  assertEquals([exact.bound, exact.stderr], [false, undefined]);
  assertEquals([bound.bound, bound.stderr], [true, 0.02]);
});

Deno.test("report.md: the per-seed figures and the Across seeds section against brute force over 2 models × 3 seeds", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = resolveConfig({ preset: "micro", out: dir, seeds: 3 });
    const r: ExperimentResult = {
      command: "test",
      config,
      backend: "cpu",
      engine: "tfjs",
      tokenizer: { id: "byte", vocabSize: 260 },
      data: {
        source: "synthetic",
        trainTokens: 1000,
        testTokens: 640,
        bytesPerToken: BYTES_PER_TOKEN,
        unigramEntropy: 4,
      },
      judge: "none",
      results: ["ar", "d3pm"].flatMap((m) =>
        [0, 1, 2].map((s) => result(m, s))
      ),
      seconds: 60,
    };
    await Deno.writeTextFile(`${dir}/metrics.jsonl`, "");
    await writeReport(r, new RunFolder(dir));
    const md = await Deno.readTextFile(`${dir}/report.md`);

    // Per seed: Model, Seed, BPT, NLL, PPL, bits/byte, batches/s, ...
    const perSeed = tableOf(md, "Likelihood and speed (per seed)");
    assertEquals(perSeed.length, 6);
    for (const row of perSeed) {
      const model = row[0].startsWith("AR") ? "ar" : "d3pm";
      const seed = Number(row[1]);
      const nll = NLL[model][seed];
      const p = model === "d3pm" ? "≤ " : "";
      const bpt = nll / Math.log(2);
      assertEquals(row[2], `${p}${bpt.toFixed(2)}`, `BPT ${model} ${seed}`);
      assertEquals(row[3].split(" ±")[0], `${p}${nll.toFixed(2)}`);
      assertEquals(row[4], `${p}${Math.exp(nll).toFixed(1)}`, "PPL");
      assertEquals(row[5], `${p}${(bpt / BYTES_PER_TOKEN).toFixed(3)}`);
      assertEquals(row[6], SPEED[model][seed].toFixed(3));
    }

    // Across seeds: Model, Seeds, BPT mean ± sd, best, range, batches/s.
    const across = tableOf(md, "Across seeds");
    assertEquals(across.length, 2);
    const sds: number[] = [];
    for (const [i, model] of ["ar", "d3pm"].entries()) {
      const bpts = NLL[model].map((n) => n / Math.log(2));
      const p = model === "d3pm" ? "≤ " : "";
      const lo = Math.min(...bpts), hi = Math.max(...bpts);
      sds.push(sampleSd(bpts));
      assertEquals(across[i].slice(1), [
        "3",
        `${p}${mean(bpts).toFixed(2)} ± ${sampleSd(bpts).toFixed(2)}`,
        `${p}${lo.toFixed(2)}`,
        `${lo.toFixed(2)}–${hi.toFixed(2)}`,
        mean(SPEED[model]).toFixed(3),
      ], model);
    }
    const stability = md.split("## Across seeds")[1].split("\n").find((l) =>
      l.startsWith("Stability:")
    )!;
    assertEquals(
      stability.includes(
        `is ${sds[0].toFixed(3)} for AR, ${sds[1].toFixed(3)} for D3PM (${
          (sds[1] / sds[0]).toFixed(1)
        }× AR's)`,
      ),
      true,
      stability,
    );

    // Written again, each file is replaced whole (a new file renamed over
    // it), never rewritten in place: a second name of the old file (a hard
    // link) keeps the old bytes, so a Ctrl-C mid-write cannot tear it.
    const files = ["report.md", "loss.svg", "speed_quality.svg"];
    for (const f of files) {
      await Deno.writeTextFile(`${dir}/${f}`, "old");
      await Deno.link(`${dir}/${f}`, `${dir}/${f}.kept`);
    }
    await writeReport(r, new RunFolder(dir));
    for (const f of files) {
      assertEquals(await Deno.readTextFile(`${dir}/${f}.kept`), "old", f);
      assert((await Deno.readTextFile(`${dir}/${f}`)).length > 100, f);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** report.md of `results` under `config`, with `metrics` as metrics.jsonl. */
async function reportOf(
  results: ModelResult[],
  config: Record<string, unknown>,
  metrics: Record<string, unknown>[] = [],
  data: Record<string, unknown> = {},
): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/metrics.jsonl`,
      metrics.map((m) => JSON.stringify(m) + "\n").join(""),
    );
    await writeReport({
      command: "test",
      config: resolveConfig({ preset: "micro", out: dir, ...config }),
      backend: "cpu",
      engine: "tfjs",
      tokenizer: { id: "byte", vocabSize: 260 },
      data: {
        source: "synthetic",
        trainTokens: 1000,
        testTokens: 640,
        bytesPerToken: BYTES_PER_TOKEN,
        unigramEntropy: 4,
        ...data,
      },
      judge: "none",
      results,
      seconds: 60,
    }, new RunFolder(dir));
    return await Deno.readTextFile(`${dir}/report.md`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("report.md: every table's cells, the token counts and the plateau step of a resumed run, against figures by hand", async () => {
  // Uneven figures, so that each cell's rounding shows: 2 models, 2 seeds.
  const results = ["ar", "d3pm"].flatMap((model, k) =>
    [0, 1].map((seed) => {
      const m = result(model, seed) as ModelResult & Record<string, unknown>;
      const g = {
        ...m.generation,
        speed: {
          ...m.generation.speed,
          batches: 3 + 2 * k + seed, // the first result's: 3
          tokensPerSecond: 80.4 + 10 * k + seed,
          forwardPassesPerBatch: 15.25,
        },
        entropy: 3.14159 + seed,
      };
      return {
        ...m,
        generation: g,
        training: {
          seconds: 7.6,
          lastLoss: 2.71828 + seed,
          lastLossSteps: [91, 100] as [number, number],
          tokens: 1000,
        },
        ...(model === "d3pm"
          ? {
            curve: [{ ...g, steps: 16 }],
            infill: {
              fraction: 0.15,
              hiddenFraction: 0.15,
              accuracy: 0.123456,
              nll: 4.56789,
              hidden: 10,
              blocks: 2,
            },
          }
          : {}),
      } as ModelResult;
    })
  );
  // Window of 1 step (200 rows a step); AR seed 0 trained steps 1–3, then
  // was resumed from step 2: its losses are 5, 3.7, 3.0, and it first goes
  // 0.25 nat below the entropy 4 at step 2 (3.7 < 3.75).
  const metrics = [
    [1, 5],
    [2, 4],
    [3, 3.9],
    [2, 3.7],
    [3, 3.0],
  ].map(([step, loss]) => ({ model: "ar", seed: 0, step, loss }));
  const config = { seeds: 2, batchSize: 200, genBatch: 2, steps: 300 };
  const md = await reportOf(results, config, metrics);
  const L = resolveConfig({ preset: "micro" }).blockLength;

  // The header's training tokens and the speed sentence's generated tokens
  // (the first result's batches). Catches a `*` → `/` in either product, or
  // the batches read from another result.
  assert(
    md.includes(
      `300 steps × 200 blocks × ${L} tokens\n(${300 * 200 * L} tokens)`,
    ),
    md.slice(0, 1500),
  );
  assert(
    md.includes(
      `generating 3 batches of 2 × ${L} tokens\n(${3 * 2 * L} tokens;`,
    ),
    md,
  );
  // Per seed: tokens/s to 0 digits, entropy to 2.
  for (const row of tableOf(md, "Likelihood and speed (per seed)")) {
    const k = row[0].startsWith("AR") ? 0 : 1, seed = Number(row[1]);
    assertEquals(row[7], String(Math.round(80.4 + 10 * k + seed)));
    assertEquals(row[9], (3.14159 + seed).toFixed(2));
  }
  // Speed vs quality: passes to 1 digit, batches/s to 3, tokens/s to 0,
  // entropy to 2 (the AR's row has no passes).
  const curve = tableOf(md, "Speed vs quality");
  assertEquals(curve.length, 4);
  for (const row of curve) {
    const d3pm = row[1] === "16", seed = Number(row[0]);
    const k = d3pm ? 1 : 0, model = d3pm ? "d3pm" : "ar";
    assertEquals(row.slice(2, 5), [
      d3pm ? "15.3" : "–",
      SPEED[model][seed].toFixed(3),
      String(Math.round(80.4 + 10 * k + seed)),
    ]);
    assertEquals(row[6], (3.14159 + seed).toFixed(2));
  }
  // Infilling: accuracy and NLL to 3 digits.
  for (const row of tableOf(md, "Infilling (D3PM)")) {
    assertEquals(row.slice(4), ["0.123", "4.568"]);
  }
  // Training: seconds to 0 digits, tokens/s = 1000 / 7.6 to 0, the final
  // loss to 3; the plateau step of the resumed AR seed 0 (catches the
  // resume's truncation `min(losses, step − 1)` changed), never for the rest.
  const training = tableOf(md, "Training");
  assertEquals(training.length, 4);
  for (const row of training) {
    const seed = Number(row[1]);
    assertEquals(row.slice(2, 5), [
      "8",
      "132",
      `${(2.71828 + seed).toFixed(3)} (steps 91 to 100)`,
    ]);
    assertEquals(row[7], row[0].startsWith("AR") && seed === 0 ? "2" : "never");
  }
  // Two models and two seeds: the stability sentence.
  assert(md.includes("Stability: the sd of test BPT across 2 seeds"));
});

Deno.test("report.md: the Across seeds sentence for one seed, and for one model over seeds; the valid blocks scored", async () => {
  // Catches `seeds > 1` → `>= 1` / `> 0` (one seed called stable) or
  // `> 2` (two seeds called one), and `rest.length > 0` → `>= 0` (one
  // model compared with nothing).
  const oneSeed = await reportOf(
    [result("ar", 0), result("d3pm", 0)],
    {
      seeds: 1,
      validBlocks: 16,
    },
    [],
    { validBlocks: 16 },
  );
  assert(oneSeed.includes("One seed: run with --seeds N"));
  assert(!oneSeed.includes("Stability:"));
  const oneModel = await reportOf([result("ar", 0), result("ar", 1)], {
    seeds: 2,
    models: "ar",
  });
  assert(oneModel.includes("Across 2 seeds:"));
  assert(!oneModel.includes("Stability:"));
  assert(!oneModel.includes("One seed"));
  // The valid split held the 16 blocks asked for: the first 16, not "all"
  // (catches `n < validBlocks` → `<=`); 5 of 16: all of them, said so.
  assert(oneSeed.includes("the first 16 blocks of the valid split"));
  const short = await reportOf(
    [result("ar", 0)],
    {
      models: "ar",
      validBlocks: 16,
    },
    [],
    { validBlocks: 5 },
  );
  assert(
    short.includes(
      "all 5 blocks of the valid split (--valid-blocks 16 asks for more than it has)",
    ),
  );
});

Deno.test("report.md names a resume on other engines, span by span, and only a model whose last span is not where it was evaluated", async () => {
  const spans = (...engines: string[]) =>
    engines.map((engine, i) => ({ engine, fromStep: 3 * i }));
  const withSpans = (engines: string[], evaluatedOn: string) => {
    const m = result("ar", 0);
    return {
      ...m,
      evaluatedOn,
      training: { ...m.training, engines: spans(...engines) },
    } as ModelResult;
  };
  const config = { models: "ar", steps: 300 };
  // Three spans, evaluated where the last ran. Catches `spans.length < 2`
  // → `< 3` / `< 1` / `<= 2`... (by the one-span case below) and the last
  // span read as `at(1)` (the second, "b": evaluated elsewhere).
  const three = (await reportOf([withSpans(["a", "b", "c"], "c")], config))
    .replaceAll("\n", " ");
  assert(
    three.includes(
      "**Resumed on another engine** (its rounding differs, so these figures are not bit-identical to an uninterrupted run's): seed 0 ar: steps 1–3 on a, steps 4–6 on b, steps 7–300 on c.",
    ),
    three.slice(0, 2000),
  );
  assert(!three.includes("Evaluated on another engine"));
  // Two spans: said too (catches `< 2` → `< 3`).
  const two = await reportOf([withSpans(["a", "c"], "c")], config);
  assert(
    two.replaceAll("\n", " ").includes("steps 1–3 on a, steps 4–300 on c."),
  );
  // One span: no sentence (catches `< 2` → `< 1` and `=== 0` → `=== 1`).
  const one = await reportOf([withSpans(["c"], "c")], config);
  assert(!one.includes("Resumed on another engine"));
});
