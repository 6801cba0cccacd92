import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  adaptationCells,
  adaptationMarkdown,
  adaptationPlan,
  adaptationSweep,
  collectAdaptation,
  collectOptions,
  experimentArgs,
} from "./adaptation.ts";
import { parseSeeds, saveSweep, waves } from "../sweep.ts";
import { ConfigError } from "../options.ts";
import { resolveConfig } from "../config.ts";

// The micro preset, cut to a few steps: 60 in all, 30 + 30 (the preset's
// 20 warm-up steps fit the adaptation's 30).
const SMALL = { preset: "micro", steps: 60, sourceSteps: 30 } as const;

Deno.test("adaptation study: the plan's cells, their budgets and their dependencies", () => {
  const dir = "runs/ad";
  const cells = adaptationCells({ ...SMALL, seeds: [0, 1], dir });
  const by = new Map(cells.map((c) => [c.name, c]));
  assertEquals(cells.length, 12);
  for (const s of [0, 1]) {
    const c = (kind: string) => by.get(`${kind}_seed-${s}`)!;
    // Each cell one seed of its own, in its own folder, resumable.
    for (
      const k of [
        "ar",
        "d3pm",
        "source",
        "from-ar",
        "from-ar-anneal-shift",
        "from-mlm",
      ]
    ) {
      assertEquals(c(k).options.seeds, 1, k);
      assertEquals(c(k).options.firstSeed, s, k);
      assertEquals(c(k).options.out, `${dir}/cells/${k}_seed-${s}`, k);
      assertEquals(c(k).options.resume, true, k);
      assertEquals(c(k).options.preset, "micro", k);
    }
    assertEquals([c("ar").options.models, c("ar").options.steps], ["ar", 60]);
    assertEquals([c("d3pm").options.models, c("d3pm").options.steps], [
      "d3pm",
      60,
    ]);
    assertEquals(
      [c("source").options.models, c("source").options.steps],
      ["ar,mlm", 30],
    );
    // Matched total compute: source + adaptation = the scratch budget.
    for (const k of ["from-ar", "from-ar-anneal-shift", "from-mlm"]) {
      assertEquals(c(k).options.models, "d3pm", k);
      assertEquals(
        Number(c(k).options.steps) + Number(c("source").options.steps),
        60,
        k,
      );
      assertEquals(c(k).wave, 1, k);
    }
    for (const k of ["ar", "d3pm", "source"]) assertEquals(c(k).wave, 0, k);
    // The same seed's source: its AR (the folder; the run picks seed s's
    // AR) or its MLM.
    assertEquals(
      c("from-ar").options.initFrom,
      `${dir}/cells/source_seed-${s}`,
    );
    assertEquals(
      c("from-mlm").options.initFrom,
      `${dir}/cells/source_seed-${s}/seed-${s}/mlm`,
    );
    // Annealing (half the adaptation) and shift on one row only.
    assertEquals(c("from-ar-anneal-shift").options.annealSteps, 15);
    assertEquals(c("from-ar-anneal-shift").options.shift, true);
    assertEquals(c("from-ar").options.annealSteps, undefined);
    assertEquals(c("from-ar").options.shift, undefined);
    assertEquals(
      experimentArgs(c("from-ar-anneal-shift")).join(" "),
      `--preset micro --models d3pm --steps 30 --init-from ${dir}/cells/source_seed-${s} --anneal-steps 15 --shift --engine tfjs --seeds 1 --first-seed ${s} --out ${dir}/cells/from-ar-anneal-shift_seed-${s} --resume`,
    );
  }
  // The sweep: wave 1 holds exactly the cells that read a source, and each
  // source they read is a wave-0 cell's folder.
  const sweep = adaptationSweep({ ...SMALL, seeds: [0, 1], dir });
  const [first, second] = waves(sweep.cells);
  assertEquals(first.map((c) => c.name), cells.slice(0, 6).map((c) => c.name));
  for (const c of second) {
    const from = String(by.get(c.name)!.options.initFrom);
    assert(first.some((f) => from.startsWith(`${f.out}/`) || from === f.out));
  }
  for (const c of first) {
    assertEquals(by.get(c.name)!.options.initFrom, undefined);
  }
  assertEquals(sweep.cells[7].args, [
    "adaptation",
    "--preset",
    "micro",
    "--seeds",
    "0,1",
    "--steps",
    "60",
    "--source-steps",
    "30",
    "--anneal-steps",
    "15",
    "--engine",
    "tfjs",
    "--dir",
    dir,
    "--cell",
    "from-ar-anneal-shift_seed-0",
  ]);
  // A cell plans the study's seeds again from its arguments: one seed is
  // spelt as a range (`--seeds 2` would be the count, seeds 0 and 1).
  for (const seeds of [[2], [0], [3, 1]]) {
    const args = adaptationSweep({ ...SMALL, seeds, dir }).cells[0].args;
    assertEquals(parseSeeds(args[args.indexOf("--seeds") + 1]), seeds);
  }
  // A budget a cell cannot run is refused naming the cell.
  assertThrows(
    () => adaptationCells({ ...SMALL, steps: 40, seeds: [0], dir }),
    ConfigError,
    "Cell from-ar_seed-0 of the adaptation study cannot run: it trains 10 steps (--steps less --source-steps), fewer than the micro preset's 20 warm-up steps",
  );
  assertThrows(
    () => adaptationCells({ ...SMALL, sourceSteps: 60, seeds: [0], dir }),
    ConfigError,
    "Option --source-steps must be in [1, 59]",
  );
});

/** A results.json of one cell: each model given as [kind, seed, figures]. */
/** The resolved config a cell of the plan runs with (as its results hold). */
function planned(
  options: Parameters<typeof adaptationCells>[0],
  name: string,
  change: Record<string, unknown> = {},
) {
  const c = adaptationCells(options).find((c) => c.name === name)!;
  return { ...resolveConfig(c.options), ...change };
}

/** A cell's results.json of `config`: its model (ar or d3pm) at seed 0, `bpt`. */
async function putCell(dir: string, cell: string, config: object, bpt: number) {
  await Deno.mkdir(`${dir}/cells/${cell}`, { recursive: true });
  const model = cell.startsWith("ar") ? "ar" : "d3pm";
  const body = results([[model, 0, {
    bpt,
    valid: [5, 5, "last"],
    gen: 100,
    entropy: 4,
  }]]);
  await Deno.writeTextFile(
    `${dir}/cells/${cell}/results.json`,
    JSON.stringify({ config, ...body }),
  );
}

Deno.test("adaptation study: a cell whose results.json is of another plan (steps, seed, source) is listed, not counted", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const options = { ...SMALL, seeds: [0], dir };
    const put = (cell: string, config: object, bpt: number) =>
      putCell(dir, cell, config, bpt);
    // Every cell of another plan (800 steps; seed 1): none of this one.
    await put("ar_seed-0", planned(options, "ar_seed-0", { steps: 800 }), 6);
    // Collecting with the cell's options is refused as contradicting the
    // plan, so the message points to another folder instead.
    const refused = await assertRejects(
      () => collectAdaptation(options),
      ConfigError,
    );
    assertEquals(
      refused.message,
      `No cell of the adaptation study in ${dir} has results of this plan: ar_seed-0 (steps 800, planned 60). These cells were run by another plan than ${dir}/sweep.json's: re-plan with their options in another --dir, or collect them from the folder that planned them`,
    );
    // The from-AR cell ran from the MLM; the D3PM at seed 1; the D3PM from
    // scratch of this plan is the one row counted.
    await put(
      "from-ar_seed-0",
      planned(options, "from-ar_seed-0", {
        initFrom: `/elsewhere/cells/source_seed-0/seed-0/mlm`,
      }),
      7,
    );
    await put("d3pm_seed-0", planned(options, "d3pm_seed-0"), 7.7);
    await put(
      "from-mlm_seed-0",
      planned(options, "from-mlm_seed-0", { firstSeed: 1 }),
      7.9,
    );
    const t = await collectAdaptation(options);
    assertEquals(t.mismatched, [
      "ar_seed-0 (steps 800, planned 60)",
      "from-ar_seed-0 (init from /cells/source_seed-0/seed-0/mlm, planned /cells/source_seed-0)",
      "from-mlm_seed-0 (first seed 1, planned 0)",
    ]);
    const rows = t.rows.filter((r) => r.seeds.length).map((r) => r.key);
    assertEquals(rows, ["d3pm"]);
    const md = await Deno.readTextFile(`${dir}/adaptation.md`);
    assertStringIncludes(
      md,
      "**Not of this plan** (results.json of other options; left out of the rows): ar_seed-0 (steps 800, planned 60),",
    );
    // The same folder spelt otherwise (a trailing slash, ./) still matches.
    const spelt = await collectAdaptation({ ...options, dir: `${dir}/./` });
    assertEquals(spelt.mismatched?.length, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function results(
  models: [string, number, {
    bpt: number;
    valid: [number, number, "last" | "best"];
    gen: number;
    interval?: [number, number];
    entropy: number;
    infill?: number;
    source?: number;
  }][],
  judge = "the cached AR judge",
) {
  return {
    judge,
    data: { unigramEntropy: 6.5 },
    results: models.map(([model, seed, f]) => ({
      model,
      seed,
      training: {
        tokens: 960,
        valid: {
          final: f.valid[0],
          best: f.valid[1],
          bestStep: 1,
          kept: f.valid[2],
        },
        ...(f.source !== undefined
          ? {
            initFrom: {
              dir: "x",
              seed,
              model: "ar",
              parameters: 1,
              tokens: f.source,
              flops: 6,
            },
          }
          : {}),
      },
      test: { bpt: f.bpt, bound: model !== "ar" },
      generation: {
        genPpl: f.gen,
        entropy: f.entropy,
        ...(f.interval
          ? {
            genPplInterval: {
              low: f.interval[0],
              high: f.interval[1],
              samples: 64,
            },
          }
          : {}),
      },
      ...(f.infill !== undefined ? { infill: { accuracy: f.infill } } : {}),
    })),
  };
}

Deno.test("adaptation study: the table says the sources' real share of an uneven split", () => {
  const md = adaptationMarkdown({
    preset: "tiny",
    steps: 1000,
    sourceSteps: 750,
    annealSteps: 125,
    seeds: [0],
    rows: [],
    missing: [],
  });
  const flat = md.replace(/\s+/g, " ");
  assertStringIncludes(flat, "the sources alone, 750 of the 1000 steps (75%).");
  assert(!/\bhalf\b/.test(flat), flat);
});

Deno.test("adaptation study: the table is each row's model and seed of its own cell's results.json, mean ± sd", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const options = { ...SMALL, seeds: [0, 1], dir };
    await assertRejects(
      () => collectAdaptation(options),
      ConfigError,
      "No cell of the adaptation study",
    );
    const put = async (cell: string, body: object) => {
      await Deno.mkdir(`${dir}/cells/${cell}`, { recursive: true });
      await Deno.writeTextFile(
        `${dir}/cells/${cell}/results.json`,
        JSON.stringify({ config: planned(options, cell), ...body }),
      );
    };
    const d3 = (bpt: number, valid: number, extra = {}) => ({
      bpt,
      valid: [valid, valid - 0.1, "last"] as [number, number, "last"],
      gen: 500,
      entropy: 4.4,
      infill: 0.15,
      ...extra,
    });
    for (const s of [0, 1]) {
      await put(
        `ar_seed-${s}`,
        results([["ar", s, {
          bpt: 6.8 + 0.1 * s,
          valid: [5.0, 4.9 + 0.2 * s, "best"], // kept best: 4.9, 5.1
          gen: 260 + 20 * s,
          interval: [240 + s, 290 + s],
          entropy: 4.3,
        }]]),
      );
      await put(
        `d3pm_seed-${s}`,
        results([["d3pm", s, d3(7.7 + 0.2 * s, 5.6)]]),
      );
      // The source: the AR and the MLM; the MLM row must read the MLM.
      await put(
        `source_seed-${s}`,
        results([
          ["ar", s, {
            bpt: 7.2,
            valid: [5.3, 5.3, "last"],
            gen: 571,
            entropy: 4.5,
          }],
          ["mlm", s, {
            bpt: 8.3 + s,
            valid: [5.7, 5.6, "last"],
            gen: 132,
            entropy: 3.0,
            infill: 0.1,
          }],
        ]),
      );
      await put(
        `from-ar_seed-${s}`,
        results([[
          "d3pm",
          s,
          d3(7.5, 5.48 + 0.02 * s, { source: 480, infill: 0.2 + 0.1 * s }),
        ]]),
      );
      await put(
        `from-ar-anneal-shift_seed-${s}`,
        results([["d3pm", s, d3(7.56, 5.51, { source: 480 })]]),
      );
    }
    // from-mlm: seed 0 only (seed 1 not finished); its file also holds a
    // stray result of another seed, which is not read.
    await put(
      "from-mlm_seed-0",
      results([
        ["d3pm", 3, d3(1, 1)],
        ["d3pm", 0, d3(7.84, 5.8, { source: 480 })],
      ]),
    );
    const t = await collectAdaptation(options);
    assertEquals(t.missing, ["from-mlm_seed-1"]);
    const row = (key: string) => t.rows.find((r) => r.key === key)!;
    const close = (x: number | undefined, y: number) =>
      assertAlmostEquals(x!, y, 1e-9);
    // Hand-computed: two values a and b have mean (a+b)/2 and sd |a−b|/√2.
    close(row("ar").testBpt?.mean, 6.85);
    close(row("ar").testBpt?.sd, 0.1 / Math.SQRT2);
    close(row("ar").valid?.mean, 5.0); // the kept (best) weights: 4.9, 5.1
    close(row("ar").valid?.sd, 0.2 / Math.SQRT2);
    close(row("ar").belowUnigram?.mean, 1.5);
    close(row("ar").genPpl?.mean, 270);
    assertEquals(row("ar").infillExact, undefined);
    close(row("d3pm").testBpt?.mean, 7.8);
    close(row("d3pm").valid?.mean, 5.6); // kept last: final, not best
    close(row("from-ar").testBpt?.sd, 0);
    close(row("from-ar").valid?.mean, 5.49);
    close(row("from-ar").infillExact?.mean, 0.25);
    close(row("from-ar").infillExact?.sd, 0.1 / Math.SQRT2);
    assertEquals(row("from-ar").seeds[0].sourceTokens, 480);
    close(row("from-ar-anneal-shift").testBpt?.mean, 7.56);
    assertEquals(row("from-mlm").seeds.map((f) => f.seed), [0]);
    close(row("from-mlm").testBpt?.mean, 7.84);
    assertEquals(row("from-mlm").testBpt?.n, 1);
    close(row("source-ar").testBpt?.mean, 7.2);
    close(row("source-mlm").testBpt?.mean, 8.8);
    close(row("source-mlm").entropy?.mean, 3.0);
    // The files: the JSON is the table, the Markdown its lines.
    assertEquals(
      JSON.parse(await Deno.readTextFile(`${dir}/adaptation.json`)),
      JSON.parse(JSON.stringify(t)),
    );
    const md = await Deno.readTextFile(`${dir}/adaptation.md`);
    assertStringIncludes(
      md,
      "| AR from scratch | 2 | 0 + 960 | 6.850 ± 0.071 | 5.000 ± 0.141 | 1.50 ± 0.14 | 270 ± 14 | 240–290, 241–291 | 4.30 ± 0.00 | – |",
    );
    assertStringIncludes(
      md,
      "| D3PM from the AR | 2 | 480 + 960 | ≤ 7.500 ± 0.000 | ≤ 5.490 ± 0.014 | 1.01 ± 0.01 | 500 ± 0 | –, – | 4.40 ± 0.00 | 0.250 ± 0.071 |",
    );
    assertStringIncludes(
      md,
      "| D3PM from the MLM | 1 | 480 + 960 | ≤ 7.840 ± 0.000 |",
    );
    assertStringIncludes(
      md,
      "| the source MLM alone | 2 | 0 + 960 | ≤ 8.800 ± 0.707 | 5.700 ± 0.000 |",
    );
    assertStringIncludes(
      md,
      "**Not finished** (no results.json; their rows average the other seeds): from-mlm_seed-1.",
    );
    assertStringIncludes(md, "Gen PPL: under the cached AR judge. Infill");
    // The sources' share is SMALL's split (30 of 60), not a fixed "half".
    assertStringIncludes(
      md.replace(/\s+/g, " "),
      "the sources alone, 30 of the 60 steps (50%).",
    );
    // A row scored by another judge (a cell on another engine): said, with
    // which rows each judge scored.
    await put(
      "from-ar-anneal-shift_seed-1",
      results([["d3pm", 1, d3(7.56, 5.51, { source: 480 })]], "judge B"),
    );
    await collectAdaptation(options);
    assertStringIncludes(
      await Deno.readTextFile(`${dir}/adaptation.md`),
      "Gen PPL: under several judges. Gen PPL compares only under one judge: judge 1 (the cached AR judge) scored AR from scratch, D3PM from scratch, D3PM from the AR, D3PM from the AR, annealing and shift, D3PM from the MLM, the source AR alone, the source MLM alone; judge 2 (judge B) scored D3PM from the AR, annealing and shift.",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("adaptation study: a cell shorter than the preset's warm-up is refused in the study's own options (--steps, --source-steps), not --warmup's", () => {
  const refused = (o: { steps: number; sourceSteps?: number }) =>
    assertThrows(
      () => adaptationCells({ preset: "micro", seeds: [1], dir: "d", ...o }),
      ConfigError,
    ).message;
  assertEquals(
    refused({ steps: 20 }),
    "Cell source_seed-1 of the adaptation study cannot run: it trains 10 steps (half of --steps), fewer than the micro preset's 20 warm-up steps: raise --steps to 40 or more (each half needs 20)",
  );
  assertEquals(
    refused({ steps: 30, sourceSteps: 25 }),
    "Cell from-ar_seed-1 of the adaptation study cannot run: it trains 5 steps (--steps less --source-steps), fewer than the micro preset's 20 warm-up steps: give --source-steps 20 or more and --steps at least 20 more than it (here --source-steps 25 --steps 45), or leave --source-steps out and raise --steps to 40",
  );
  for (const o of [{ steps: 10 }, { steps: 30, sourceSteps: 5 }]) {
    assert(!refused(o).includes("--warmup"), refused(o));
  }
  adaptationCells({ preset: "micro", seeds: [1], dir: "d", steps: 40 });
});

Deno.test("adaptation study: --gen-samples and --exact-blocks reach every cell, the plan and the collect step's check, and a bad value names its cell", async () => {
  const options = {
    ...SMALL,
    seeds: [0],
    genSamples: 8,
    exactBlocks: 0,
  } as const;
  const cells = adaptationCells({ ...options, dir: "d" });
  assertEquals(cells.length, 6);
  for (const c of cells) {
    const args = experimentArgs(c).join(" ");
    assertStringIncludes(args, "--gen-samples 8 --exact-blocks 0", c.name);
    const config = resolveConfig(c.options);
    assertEquals([config.genSamples, config.exactBlocks], [8, 0], c.name);
  }
  // Left out, the cells take the experiment's defaults.
  for (const c of adaptationCells({ ...SMALL, seeds: [0], dir: "d" })) {
    assert(!("genSamples" in c.options || "exactBlocks" in c.options));
  }
  assertEquals(
    assertThrows(
      () => adaptationCells({ ...options, genSamples: 1, dir: "d" }),
      ConfigError,
    ).message.split(":")[0],
    "Cell ar_seed-0 of the adaptation study cannot run",
  );
  const dir = await Deno.makeTempDir();
  try {
    const sweep = adaptationSweep({ ...options, dir });
    assertStringIncludes(
      sweep.cells[0].args.join(" "),
      "--gen-samples 8 --exact-blocks 0",
    );
    await saveSweep(sweep);
    const plan = (await adaptationPlan(dir))!;
    assertEquals([plan.genSamples, plan.exactBlocks], [8, 0]);
    await assertRejects(
      () => collectOptions(dir, { genSamples: 64 }, { ...options, dir }),
      ConfigError,
      "Option --gen-samples 64 contradicts the study's plan",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("adaptation study: tiny cells train at the β2 its figures were made with (0.95), and a cell of another β2 is listed, not counted", async () => {
  for (const c of adaptationCells({ preset: "tiny", seeds: [0], dir: "d" })) {
    assertEquals(resolveConfig(c.options).adamBeta2, 0.95, c.name);
  }
  const dir = await Deno.makeTempDir();
  try {
    const options = { ...SMALL, seeds: [0], dir };
    const put = (cell: string, config: object) => putCell(dir, cell, config, 7);
    // A results.json from before --adam-beta2 holds no β2: it trained at 0.95.
    const { adamBeta2: _, ...older } = planned(options, "ar_seed-0");
    await put("ar_seed-0", older);
    await put(
      "d3pm_seed-0",
      planned(options, "d3pm_seed-0", { adamBeta2: 0.999 }),
    );
    const t = await collectAdaptation(options);
    assertEquals(t.mismatched, ["d3pm_seed-0 (AdamW β2 0.999, planned 0.95)"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
