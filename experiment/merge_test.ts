// What `report --merge` takes from one finished run folder: its
// results.json must be a run's results, and the run's own.
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  checkMergeable,
  collectRuns,
  ConfigError,
  planSweep,
  resolveConfig,
  saveSweep,
  writeMergedReport,
} from "./mod.ts";

// A finished run folder written by hand: config.json, data.json when a
// record is given, and results.json (`results`, or one measured with the
// folder's configuration).
async function finishedRun(
  out: string,
  options: { results?: unknown; data?: string; record?: boolean } = {},
): Promise<void> {
  const config = resolveConfig({ preset: "micro", out });
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(`${out}/config.json`, JSON.stringify(config));
  if (options.record) {
    await Deno.writeTextFile(
      `${out}/data.json`,
      JSON.stringify({
        sha256: { train: "a", valid: "b", test: "c" },
        tokenizer: { id: "byte-v1", vocabSize: 260 },
      }),
    );
  }
  const results = "results" in options ? options.results : {
    config: { ...config, ...options.data ? { data: options.data } : {} },
    data: { source: "wt2", trainTokens: 10, testTokens: 5 },
    tokenizer: { id: "byte-v1", vocabSize: 260 },
    results: [{ model: "ar", seed: 0 }],
  };
  await Deno.writeTextFile(`${out}/results.json`, JSON.stringify(results));
}

Deno.test("collectRuns() refuses a results.json that is not a run's results (null, no results list, no configuration) in one line", async () => {
  const root = await Deno.makeTempDir();
  try {
    const config = resolveConfig({ preset: "micro", out: `${root}/r` });
    for (
      const bad of [
        null,
        { config },
        { config, results: {} },
        { config: null, results: [] },
        { results: [] },
      ]
    ) {
      await finishedRun(`${root}/r`, { results: bad });
      await assertRejects(
        () => collectRuns([`${root}/r`]),
        ConfigError,
        `Cannot merge ${root}/r: results.json is not a run's results`,
        JSON.stringify(bad),
      );
    }
    await finishedRun(`${root}/r`);
    assertEquals((await collectRuns([`${root}/r`])).runs.length, 1);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("collectRuns() says a results.json that is a study cell's (study epochs, ablate) is one, and what gathers it", async () => {
  const root = await Deno.makeTempDir();
  try {
    const study = `${root}/sp ace`;
    await finishedRun(`${study}/main-u4000-ar`, {
      results: { cell: "main-u4000-ar", params: 1, seconds: 1, lines: [] },
    });
    await assertRejects(
      () => collectRuns([`${study}/main-u4000-ar`]),
      ConfigError,
      `Cannot merge ${study}/main-u4000-ar: results.json is not a run's results: it is study epochs cell main-u4000-ar's (a study's cells are not runs; deno task study epochs --out '${study}' --collect gathers them into its report)`,
    );
    await finishedRun(`${root}/ab/ar-lr-0.001`, {
      results: { name: "ar lr 0.001", model: "ar", valid: 5, plateauExit: 0 },
    });
    await assertRejects(
      () => collectRuns([`${root}/ab/ar-lr-0.001`]),
      ConfigError,
      `: it is ablate variant "ar lr 0.001"'s (deno task ablate --out ${root}/ab --collect gathers the variants into ablation.md)`,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("collectRuns() takes a run measured on another --data path when its data.json verified the files, and refuses it without one", async () => {
  const root = await Deno.makeTempDir();
  try {
    const out = `${root}/r`;
    await finishedRun(out, { data: "/moved", record: true });
    assertEquals((await collectRuns([out])).runs.length, 1);
    await Deno.remove(`${out}/data.json`);
    await assertRejects(
      () => collectRuns([out]),
      ConfigError,
      `Cannot merge ${out}: its results.json was measured with --data "/moved"`,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("collectRuns() varies an option of the experiment or the seed, a run folder's values taken from its configuration", async () => {
  const root = await Deno.makeTempDir();
  try {
    const out = `${root}/r`;
    await finishedRun(out);
    for (const vary of [["lr"], ["seed"], ["seed", "lr"]]) {
      const merge = await collectRuns([out], { vary });
      assertEquals(merge.swept, [...new Set(["seed", ...vary])]);
      // A run folder's values of the varied options are its configuration's.
      assertEquals(
        merge.runs[0].values,
        vary.includes("lr") ? { lr: 0.005, seed: 0 } : { seed: 0 },
      );
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("checkMergeable() compares the data's source name only where a run lacks data.json (the records say what the data are)", () => {
  const record = {
    sha256: { train: "a", valid: "b", test: "c" },
    tokenizer: { id: "byte-v1", vocabSize: 260 },
  };
  const run = (dir: string, source: string, withRecord: boolean) => ({
    dir,
    name: dir,
    values: {},
    result: {
      config: resolveConfig({ preset: "micro", out: dir }),
      data: { source, trainTokens: 10, testTokens: 5 },
      tokenizer: { id: "byte-v1" },
      results: [],
    } as never,
    ...withRecord ? { dataRecord: record } : {},
  });
  // The same files, read under two names: the same data.
  checkMergeable([run("a", "wt2", true), run("b", "/data/wt2", true)], [
    "seed",
  ]);
  for (const [a, b] of [[false, false], [true, false], [false, true]]) {
    assertThrows(
      () =>
        checkMergeable([run("a", "wt2", a), run("b", "wt103", b)], ["seed"]),
      ConfigError,
      "their data differ (source wt103 in b but wt2 in a)",
    );
  }
});

Deno.test("writeMergedReport() names the swept options, not the seed, in its title and grouped table (no setting column over seeds alone)", async () => {
  const model = (seed: number) => ({
    model: "ar",
    seed,
    test: { bpt: 7 + seed, nll: 4.9, bound: false },
    generation: { genPpl: 300, entropy: 4, speed: { batchesPerSecond: 1 } },
    training: { seconds: 1 },
  });
  const run = (name: string, lr: number, seed: number) => ({
    dir: `/nonexistent/${name}`,
    name,
    values: { lr, seed },
    result: {
      config: resolveConfig({ preset: "micro", out: name, lr }),
      data: { source: "wt2", trainTokens: 10, testTokens: 5 },
      tokenizer: { id: "byte", vocabSize: 260 },
      engine: "cpu",
      results: [model(seed)],
    } as never,
  });
  const out = await Deno.makeTempDir();
  try {
    const md = await writeMergedReport({
      runs: [run("a", 0.001, 0), run("b", 0.002, 0), run("c", 0.002, 1)],
      swept: ["seed", "lr"],
      unfinished: [],
    }, `${out}/m`);
    assertEquals(
      md.split("\n")[0],
      "# Merged report: 3 runs, swept over --lr and seeds",
    );
    const grouped = md.slice(
      md.indexOf("| Setting"),
      md.indexOf("\n\n", md.indexOf("| Setting")),
    );
    assertEquals(grouped.split("\n").slice(2), [
      "| lr 0.001 | AR | 1 (0) | 7.00 ± 0.00 | 7.00 | 7.00–7.00 | 300.0 | 1.000 |",
      "| lr 0.002 | AR | 2 (0, 1) | 7.50 ± 0.71 | 7.00 | 7.00–8.00 | 300.0 | 1.000 |",
    ]);
    // Over seeds alone: one group, no setting column.
    const seeds = await writeMergedReport({
      runs: [run("b", 0.002, 0), run("c", 0.002, 1)],
      swept: ["seed"],
      unfinished: [],
    }, `${out}/s`);
    assertEquals(seeds.split("\n")[0], "# Merged report: 2 runs and seeds");
    assertEquals(
      seeds.split("\n").find((l) => l.includes("| BPT mean")),
      "| Model | Seeds | BPT mean ± sd | best | range | gen PPL (mean) | batches/s (mean) |",
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("collectRuns() takes a sweep's cells resumed on a moved --data where their data.json verified the files, and refuses a cell without one", async () => {
  const dir = `${await Deno.makeTempDir()}/sw`;
  try {
    const sweep = await saveSweep(planSweep({
      options: { preset: "micro", steps: 20 },
      grid: { lr: [1e-3, 2e-3] },
      seeds: 1,
    }, { dir }));
    for (const c of sweep.cells) {
      await Deno.mkdir(c.out, { recursive: true });
      await Deno.writeTextFile(
        `${c.out}/data.json`,
        JSON.stringify({
          sha256: { train: "a", valid: "b", test: "c" },
          tokenizer: { id: "byte-v1", vocabSize: 260 },
        }),
      );
      await Deno.writeTextFile(
        `${c.out}/results.json`,
        JSON.stringify({
          config: resolveConfig({
            preset: "micro",
            steps: 20,
            lr: c.values.lr,
            seeds: 1,
            firstSeed: c.values.seed,
            out: c.out,
            resume: true,
            data: "/moved",
          }),
          data: { source: "wt2", trainTokens: 10, testTokens: 5 },
          tokenizer: { id: "byte-v1", vocabSize: 260 },
          results: [{ model: "ar", seed: c.values.seed }],
        }),
      );
    }
    assertEquals((await collectRuns([dir])).runs.length, 2);
    const cell = sweep.cells[1];
    await Deno.remove(`${cell.out}/data.json`);
    await assertRejects(
      () => collectRuns([dir]),
      ConfigError,
      `Cannot merge ${dir}: cell ${cell.name}'s folder ${cell.out} holds another run (--data is /moved there`,
    );
  } finally {
    await Deno.remove(dir.slice(0, -3), { recursive: true });
  }
});

Deno.test("writeMergedReport() draws the curves of a group whose log has 200,000 records, streamed a record at a time (the records spread into one array, or the chart's points into Math.min, overflowed the call stack)", async () => {
  const out = await Deno.makeTempDir();
  try {
    const dir = `${out}/run`;
    await Deno.mkdir(dir);
    const lines: string[] = [];
    for (let step = 1; step <= 200_000; step++) {
      lines.push(JSON.stringify({ model: "ar", seed: 0, step, loss: 3 }));
    }
    lines.push(
      JSON.stringify({ model: "ar", seed: 0, step: 200_000, valid: 4 }),
    );
    await Deno.writeTextFile(`${dir}/metrics.jsonl`, lines.join("\n") + "\n");
    lines.length = 0;
    const md = await writeMergedReport({
      runs: [{
        dir,
        name: "run",
        values: { seed: 0 },
        result: {
          config: resolveConfig({ preset: "micro", out: dir }),
          data: { source: "wt2", trainTokens: 10, testTokens: 5 },
          tokenizer: { id: "byte", vocabSize: 260 },
          engine: "cpu",
          results: [{
            model: "ar",
            seed: 0,
            test: { bpt: 7, nll: 4.9, bound: false },
            generation: {
              genPpl: 300,
              entropy: 4,
              speed: { batchesPerSecond: 1 },
            },
            training: { seconds: 1 },
          }],
        } as never,
      }],
      swept: ["seed"],
      unfinished: [],
    }, `${out}/m`);
    assert(md.includes("![loss, "), md);
    const svg = await Deno.readTextFile(
      `${out}/m/${
        [...Deno.readDirSync(`${out}/m`)].find((e) =>
          e.name.startsWith("loss-")
        )!.name
      }`,
    );
    assert(svg.startsWith("<svg") && svg.includes("200"), svg.slice(0, 200));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("collectRuns() refuses, naming a way out, a sweep whose cells' options no longer resolve (planned by an older version with --backend under --engine cpu), instead of merging their folders unchecked", async () => {
  const dir = `${await Deno.makeTempDir()}/sw`;
  try {
    const sweep = await saveSweep(planSweep({
      options: { preset: "micro", steps: 20, engine: "cpu" },
      seeds: 1,
    }, { dir }));
    const cell = sweep.cells[0];
    await finishedRun(cell.out);
    // As an older version wrote it: --backend wasm beside --engine cpu,
    // which resolveConfig refuses now.
    const record = JSON.parse(await Deno.readTextFile(`${dir}/sweep.json`));
    record.spec.options.backend = "wasm";
    await Deno.writeTextFile(`${dir}/sweep.json`, JSON.stringify(record));
    await assertRejects(
      () => collectRuns([dir]),
      ConfigError,
      `${dir}/sweep.json is not a sweep record: its spec cannot be planned by this version (Cell seed-0 cannot run: Option --backend wasm picks the tfjs backend, which --engine cpu does not use`,
    );
    const e = await assertRejects(() => collectRuns([dir]), ConfigError);
    assert(
      e.message.endsWith(
        `finish it with the version that planned it, or merge its finished cells as runs (deno task report --merge ${dir}/cells/NAME …)`,
      ),
      e.message,
    );
    // Its script named (a record that skips the re-plan): cellConfig gives
    // nothing, and the cell's folder is not let through unchecked.
    record.script = "examples/experiment.ts";
    await Deno.writeTextFile(`${dir}/sweep.json`, JSON.stringify(record));
    await assertRejects(
      () => collectRuns([dir]),
      ConfigError,
      `Cannot merge ${dir}: cell seed-0's options no longer resolve to a run's configuration (planned by an older version, or sweep.json edited), so its folder ${cell.out} cannot be checked to hold its run; merge the finished cells as runs (deno task report --merge ${cell.out} …)`,
    );
  } finally {
    await Deno.remove(dir.slice(0, -3), { recursive: true });
  }
});

Deno.test("collectRuns() merges a tiny sweep that finished before the preset's β2 moved to 0.999, and refuses one with cells from both sides of the move or one that named another β2", async () => {
  // Before: every tiny sweep finished before 2026-12-07 was refused, its
  // cells said to hold "another run (--adam-beta2 is 0.95 there but 0.999
  // in the cell): a folder copied or edited by hand".
  const dir = `${await Deno.makeTempDir()}/sw`;
  try {
    // Planned again in place (sweep.json replaced): the cells' folders stay.
    const plan = async (options: Record<string, unknown>) => {
      await Deno.remove(`${dir}/sweep.json`).catch(() => {});
      return await saveSweep(
        planSweep({ options: { preset: "tiny", ...options }, seeds: 2 }, {
          dir,
        }),
      );
    };
    const write = async (
      cell: { out: string; values: Record<string, unknown> },
      over: Record<string, unknown>,
      drop: string[] = [],
    ) => {
      const config: Record<string, unknown> = {
        ...resolveConfig({
          preset: "tiny",
          seeds: 1,
          firstSeed: Number(cell.values.seed),
          out: cell.out,
          resume: true,
        }),
        ...over,
      };
      for (const k of drop) delete config[k];
      await Deno.mkdir(cell.out, { recursive: true });
      await Deno.writeTextFile(
        `${cell.out}/results.json`,
        JSON.stringify({
          config,
          data: { source: "wt2", trainTokens: 10, testTokens: 5 },
          tokenizer: { id: "bpe", vocabSize: 4096 },
          results: [{ model: "ar", seed: cell.values.seed }],
        }),
      );
    };
    let sweep = await plan({});
    // Written before the options existed: neither key in results.json.
    for (const c of sweep.cells) {
      await write(c, {}, ["adamBeta2", "lrFinal"]);
    }
    assertEquals((await collectRuns([dir])).runs.length, 2);
    // Today's runs, at the preset's 0.999, merge too.
    for (const c of sweep.cells) await write(c, {});
    assertEquals((await collectRuns([dir])).runs.length, 2);
    // One cell from before the move, one after: not one setting.
    await write(sweep.cells[0], { adamBeta2: 0.95 });
    await assertRejects(
      () => collectRuns([dir]),
      ConfigError,
      "--adam-beta2 is 0.999 in",
    );
    // A sweep that named β2 0.999 holds its cell to it.
    sweep = await plan({ adamBeta2: 0.999 });
    await assertRejects(
      () => collectRuns([dir]),
      ConfigError,
      "(--adam-beta2 is 0.95 there but 0.999 in the cell)",
    );
    // A value the preset never held is another run's, as before.
    await write(sweep.cells[0], { adamBeta2: 0.9 });
    await plan({});
    await assertRejects(
      () => collectRuns([dir]),
      ConfigError,
      "(--adam-beta2 is 0.9 there but 0.999 in the cell)",
    );
  } finally {
    await Deno.remove(dir.slice(0, -3), { recursive: true });
  }
});

Deno.test("collectRuns() merges two runs made before --lr-final and --adam-beta2 existed: a key neither results.json has reads as its older-runs value in both", async () => {
  // Before: "--lr-final is (none) in B but 0.1 in A": the older-runs value
  // filled the first run's configuration only, so no two runs made before
  // the newest option merged.
  const root = await Deno.makeTempDir();
  try {
    const older = async (out: string, seed: number) => {
      const config: Record<string, unknown> = resolveConfig({
        preset: "micro",
        firstSeed: seed,
        out,
      });
      delete config.lrFinal;
      delete config.adamBeta2;
      await Deno.mkdir(out, { recursive: true });
      await Deno.writeTextFile(`${out}/config.json`, JSON.stringify(config));
      await Deno.writeTextFile(
        `${out}/results.json`,
        JSON.stringify({
          config,
          data: { source: "wt2", trainTokens: 10, testTokens: 5 },
          tokenizer: { id: "byte-v1", vocabSize: 260 },
          results: [{ model: "ar", seed }],
        }),
      );
    };
    await older(`${root}/a`, 0);
    await older(`${root}/b`, 1);
    const { runs } = await collectRuns([`${root}/a`, `${root}/b`]);
    assertEquals(runs.map((r) => r.values.seed), [0, 1]);
    // Still compared: a run at another final rate is another setting.
    const config = resolveConfig({ preset: "micro", out: `${root}/b` });
    await Deno.writeTextFile(
      `${root}/b/results.json`,
      JSON.stringify({
        config: { ...config, firstSeed: 1, lrFinal: 0 },
        data: { source: "wt2", trainTokens: 10, testTokens: 5 },
        tokenizer: { id: "byte-v1", vocabSize: 260 },
        results: [{ model: "ar", seed: 1 }],
      }),
    );
    await Deno.writeTextFile(
      `${root}/b/config.json`,
      JSON.stringify({ ...config, firstSeed: 1, lrFinal: 0 }),
    );
    await assertRejects(
      () => collectRuns([`${root}/a`, `${root}/b`]),
      ConfigError,
      "--lr-final is 0 in",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
