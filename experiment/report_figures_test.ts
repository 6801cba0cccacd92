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
