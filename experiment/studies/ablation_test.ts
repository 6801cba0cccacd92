import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { pathExists } from "@d3pm/core";
import { saveSweep } from "../sweep.ts";
import {
  ABLATION_BASELINE,
  ablationBase,
  ablationMarkdown,
  ablationSweep,
  checkVariantBatches,
  checkVariantSteps,
  collectAblation,
  grid,
  runAblation,
  runVariant,
  variantFolder,
} from "./ablation.ts";
import { prepareData } from "../data.ts";
import { RunFolder } from "../run_folder.ts";
import { resolveConfig } from "../config.ts";
import { ConfigError } from "../options.ts";
import { PRESETS } from "../presets.ts";
import { assertRefusesHostile, HOSTILE } from "./_hostile_test_util.ts";
import { MetricsLog } from "@d3pm/train";

Deno.test("ablate: the baseline is pinned, whatever the tiny preset says now", () => {
  const base = resolveConfig({ preset: "tiny", ...ABLATION_BASELINE });
  for (const [k, v] of Object.entries(ABLATION_BASELINE)) {
    assertEquals(base[k as keyof typeof base], v, k);
  }
  // The preset has moved on from the baseline (the ablation chose it).
  assert(
    Object.entries(ABLATION_BASELINE).some(([k, v]) =>
      PRESETS.tiny[k as keyof typeof PRESETS.tiny] !== v
    ),
  );
});

Deno.test("ablate: every variant has its own name and resolves at matched tokens", () => {
  const steps = 250;
  const variants = grid(steps);
  assertEquals(new Set(variants.map((v) => v.name)).size, variants.length);
  for (const v of variants) {
    const c = resolveConfig({
      preset: "tiny",
      ...ABLATION_BASELINE,
      steps,
      ...v.overrides,
    });
    // Matched tokens, to within one step of the variant's batch.
    assert(Math.abs(c.steps * c.batchSize - steps * 8) < c.batchSize, v.name);
    if (v.model === "ar") assertEquals(c.alibi, 0, v.name); // causal: none
  }
});

/** A cell's `--flag value` pairs (the ablate script's options). */
function flags(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    if (args[i].startsWith("--")) {
      const value = args[i + 1]?.startsWith("--") ? "" : args[i + 1];
      if (value === undefined) out[args[i]] = "";
      else {
        out[args[i]] = value;
        if (value !== "") i++;
      }
    }
  }
  return out;
}

Deno.test("ablationSweep() gives one cell per variant of the grid, in its order, each running that variant at the same budget into its folder", () => {
  for (const steps of [100, 250]) {
    const s = ablationSweep({ steps, out: "runs/ab/" });
    const variants = grid(steps);
    assertEquals(s.cells.length, variants.length);
    assertEquals(s.script, "examples/ablate.ts");
    s.cells.forEach((c, i) => {
      const f = flags(c.args);
      assertEquals(Object.keys(f), ["--steps", "--out", "--variant"], c.name);
      // The variant a cell runs is the grid's variant at its place, with
      // the same overrides (so the same configuration as the serial run).
      const v = variants.find((v) => v.name === f["--variant"]);
      assertEquals(v, variants[i], c.name);
      assertEquals(f["--steps"], String(steps));
      assertEquals(f["--out"], "runs/ab");
      assertEquals(c.out, variantFolder("runs/ab", variants[i].name));
      assertEquals(`runs/ab/${c.name}`, c.out);
      assertEquals(c.values, { variant: v!.name, model: v!.model });
      assertEquals(c.index, i);
    });
    assertEquals(flags(s.collect!), {
      "--steps": String(steps),
      "--out": "runs/ab",
      "--collect": "",
    });
  }
});

Deno.test("ablationSweep() with --only keeps the variants the serial run would run", () => {
  const only = ["ar lr", "no EMA"];
  const s = ablationSweep({ steps: 250, out: "runs/ab", only });
  const expected = grid(250).filter((v) => only.some((o) => v.name.includes(o)))
    .map((v) => v.name);
  assertEquals(s.cells.map((c) => flags(c.args)["--variant"]), expected);
  assert(expected.length > 4 && expected.length < grid(250).length);
});

Deno.test("ablationSweep() refuses an --only term that matches no variant (a typo left its variants out)", () => {
  assertThrows(
    () =>
      ablationSweep({ steps: 250, out: "runs/ab", only: ["ar lr", "no EMAA"] }),
    ConfigError,
    "Option --only no EMAA matches no variant; the variants are ar lr 0.001",
  );
});

Deno.test("ablationSweep() refuses an --only with no name, or an empty one (it chose no variant, or every one)", () => {
  for (const only of [[], [""], ["ar lr", " "]]) {
    assertThrows(
      () => ablationSweep({ steps: 250, out: "runs/ab", only }),
      ConfigError,
      "Option --only needs variant names, none empty",
    );
  }
});

Deno.test("collectAblation() gathers the variants' folders into the serial run's table, in the grid's order", async () => {
  const out = await Deno.makeTempDir({ prefix: "ablate-collect-" });
  const steps = 30;
  const [a, b, c] = grid(steps);
  const row = (name: string, model: "ar" | "d3pm", valid: number) => ({
    name,
    model,
    valid,
    validBpt: valid / Math.LN2,
    plateauExit: 0,
    seconds: 3,
  });
  const put = async (
    r: ReturnType<typeof row>,
    at: number,
  ) => {
    const dir = variantFolder(out, r.name);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/results.json`,
      JSON.stringify({ ...r, steps: at, unigramEntropy: 6.5 }),
    );
  };
  // Written out of order; c at another budget is left out.
  await put(row(b.name, b.model, 7.25), steps);
  await put(row(a.name, a.model, 7.5), steps);
  await put(row(c.name, c.model, 1), 250);
  assertEquals(await collectAblation({ steps, out }), 2);
  const md = await Deno.readTextFile(`${out}/ablation.md`);
  assertEquals(
    md,
    ablationMarkdown(
      [row(a.name, a.model, 7.5), row(b.name, b.model, 7.25)],
      steps,
      6.5,
    ),
  );
  const lines = (await Deno.readTextFile(`${out}/ablation.jsonl`)).trim()
    .split("\n").map((l) => JSON.parse(l));
  assertEquals(lines, [
    { ...row(a.name, a.model, 7.5), steps },
    { ...row(b.name, b.model, 7.25), steps },
  ]);
  await Deno.remove(out, { recursive: true });
});

Deno.test("collectAblation() refuses a variant's results.json that is a FIFO, /dev/zero or too large, in one line naming it, within 5 s", async () => {
  const out = await Deno.makeTempDir({ prefix: "ablate-hostile-" });
  const steps = 30;
  const dir = variantFolder(out, grid(steps)[0].name);
  await Deno.mkdir(dir, { recursive: true });
  for (const { kind, says } of HOSTILE) {
    await assertRefusesHostile(
      `${dir}/results.json`,
      kind,
      says,
      () => collectAblation({ steps, out }),
    );
  }
  // The rows kept from earlier runs, read the same way.
  for (const { kind, says } of HOSTILE) {
    await assertRefusesHostile(
      `${out}/ablation.jsonl`,
      kind,
      says,
      () => collectAblation({ steps, out }),
    );
  }
  await Deno.remove(out, { recursive: true });
});

Deno.test("runVariant() refuses a train split shorter than the variant's batch in the experiment's one line, before its folder is made", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = "Some words of text.\n".repeat(40); // 800 bytes
    for (const s of ["train", "valid", "test"]) {
      await Deno.writeTextFile(`${dir}/${s}.txt`, text);
    }
    const out = `${dir}/ablate`;
    // 802 byte ids with bos/eos: 6 blocks of the tiny preset's 128.
    const base = resolveConfig({
      ...ablationBase(250),
      data: dir,
      tokenizer: "byte",
      validBlocks: 1,
    });
    const data = await prepareData(base, new RunFolder(out), () => {});
    const variant = grid(250)[0];
    assertEquals([data.train.count, base.batchSize], [6, 8]);
    const e = await assertRejects(
      () => runVariant(variant, base, data, out),
      ConfigError,
    );
    assertEquals(
      e.message,
      `The train split (${await Deno.realPath(
        dir,
      )}/train.txt) packs into 6 block(s) of --block-length 128, fewer than one batch of --batch-size 8: lower --batch-size or --block-length, or give a longer train split`,
    );
    assertEquals(await pathExists(variantFolder(out, variant.name)), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkVariantBatches() refuses a train split of 8–31 blocks at the batch-32 variant, in the experiment's one line, before any variant trains", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = "Some words of text.\n".repeat(80); // 1,600 bytes
    for (const s of ["train", "valid", "test"]) {
      await Deno.writeTextFile(`${dir}/${s}.txt`, text);
    }
    // 1,602 byte ids with bos/eos: 12 blocks of the tiny preset's 128,
    // enough for the batch-8 variants but not for "d3pm batch 32".
    const base = resolveConfig({
      ...ablationBase(250),
      data: dir,
      tokenizer: "byte",
      validBlocks: 1,
    });
    const data = await prepareData(
      base,
      new RunFolder(`${dir}/ablate`),
      () => {},
    );
    const variants = grid(250);
    assertEquals([data.train.count, base.batchSize], [12, 8]);
    // The eight variants that the serial loop used to train first.
    assertEquals(variants[8].name, "d3pm batch 32 (¼ steps)");
    checkVariantBatches(variants.slice(0, 8), base, data);
    const e = assertThrows(
      () => checkVariantBatches(variants, base, data),
      ConfigError,
    );
    assertEquals(
      e.message,
      `The train split (${await Deno.realPath(
        dir,
      )}/train.txt) packs into 12 block(s) of --block-length 128, fewer than one batch of --batch-size 32: lower --batch-size or --block-length, or give a longer train split`,
    );
    // Only the batch-32 variant in the list: still refused.
    assertThrows(
      () => checkVariantBatches([variants[8]], base, data),
      ConfigError,
      "--batch-size 32",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runVariant() streams its metrics log for the losses of its plateau exit (never MetricsLog.read: every record held at once)", async () => {
  const dir = await Deno.makeTempDir();
  const read = MetricsLog.read;
  try {
    const text = "Some words of text.\n".repeat(200); // 31 blocks of 128
    for (const s of ["train", "valid", "test"]) {
      await Deno.writeTextFile(`${dir}/${s}.txt`, text);
    }
    const out = `${dir}/ablate`;
    const base = resolveConfig({
      ...ablationBase(250),
      // The micro model (seconds, not minutes), 10 steps.
      ...PRESETS.micro,
      ...ABLATION_BASELINE,
      batchSize: 8,
      steps: 10,
      validEvery: 10,
      logEvery: 10,
      warmup: 2,
      data: dir,
      tokenizer: "byte",
      validBlocks: 1,
    });
    const data = await prepareData(base, new RunFolder(out), () => {});
    MetricsLog.read = () => {
      throw new Error("MetricsLog.read holds the whole log");
    };
    const row = await runVariant(grid(10)[0], base, data, out);
    assertEquals(row.name, grid(10)[0].name);
    assert(Number.isFinite(row.valid), `${row.valid}`);
  } finally {
    MetricsLog.read = read;
    await Deno.remove(dir, { recursive: true });
  }
});

/** A variant's row, and its results.json in its folder under `out`. */
function ablRow(name: string, model: "ar" | "d3pm", valid: number) {
  return {
    name,
    model,
    valid,
    validBpt: valid / Math.LN2,
    plateauExit: 0,
    seconds: 3,
  };
}
async function putResult(
  out: string,
  r: ReturnType<typeof ablRow>,
  steps: number,
): Promise<void> {
  const dir = variantFolder(out, r.name);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/results.json`,
    JSON.stringify({ ...r, steps, unigramEntropy: 6.5 }),
  );
}

Deno.test("collectAblation() and runAblation() refuse an ablation.jsonl line that is not a row, naming it, and rewrite nothing (it and every line after it were dropped)", async () => {
  const out = await Deno.makeTempDir({ prefix: "ablate-rows-" });
  try {
    const [a, b, c] = grid(30);
    const lines = [
      JSON.stringify({ ...ablRow(a.name, a.model, 7), steps: 30 }),
      JSON.stringify({ ...ablRow(b.name, b.model, 7), steps: 30 }) + ",",
      JSON.stringify({ ...ablRow(c.name, c.model, 7), steps: 30 }),
    ].join("\n") + "\n";
    await Deno.writeTextFile(`${out}/ablation.jsonl`, lines);
    await putResult(out, ablRow(a.name, a.model, 6), 30);
    const says =
      `${out}/ablation.jsonl line 2 is not a row of the ablation (not JSON: `;
    await assertRejects(
      () => collectAblation({ steps: 30, out }),
      ConfigError,
      says,
    );
    await assertRejects(
      () => runAblation({ steps: 30, out, only: [a.name] }),
      ConfigError,
      says,
    );
    assertEquals(await Deno.readTextFile(`${out}/ablation.jsonl`), lines);
    assertEquals(await pathExists(`${out}/ablation.md`), false);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("collectAblation() at another budget keeps the other budget's rows in ablation.jsonl, and its table says it shows one budget", async () => {
  const out = await Deno.makeTempDir({ prefix: "ablate-budgets-" });
  try {
    const [a, b] = grid(30);
    const earlier = [a, b].map((v) => ({
      ...ablRow(v.name, v.model, 7),
      steps: 30,
    }));
    await Deno.writeTextFile(
      `${out}/ablation.jsonl`,
      earlier.map((r) => JSON.stringify(r)).join("\n") + "\n",
    );
    await putResult(out, ablRow(b.name, b.model, 6), 40);
    assertEquals(await collectAblation({ steps: 40, out }), 1);
    const rows = (await Deno.readTextFile(`${out}/ablation.jsonl`)).trim()
      .split("\n").map((l) => JSON.parse(l));
    assertEquals(rows, [...earlier, {
      ...ablRow(b.name, b.model, 6),
      steps: 40,
    }]);
    const md = await Deno.readTextFile(`${out}/ablation.md`);
    assert(md.includes(`| ${b.name} |`) && !md.includes(`| ${a.name} |`), md);
    assert(
      md.includes(
        "This table shows the rows at 40 steps; ablation.jsonl also holds 2 row(s) at 30 steps.",
      ),
      md,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("collectAblation() refuses, naming them, the variants sweep.json plans that have no results; --partial makes the table and names them", async () => {
  const out = await Deno.makeTempDir({ prefix: "ablate-planned-" });
  try {
    const only = ["ar lr 0.001", "d3pm no EMA"];
    await saveSweep(ablationSweep({ steps: 30, out, only }));
    const [a] = grid(30);
    await putResult(out, ablRow(a.name, a.model, 6), 30);
    await assertRejects(
      () => collectAblation({ steps: 30, out }),
      ConfigError,
      `Cannot collect ${out}: 1 of 2 planned variants have no results at 30 steps (d3pm no EMA): see deno task sweep status ${out} and run them, or give --partial`,
    );
    assertEquals(await pathExists(`${out}/ablation.md`), false);
    await assertRejects(
      () => collectAblation({ steps: 40, out }),
      ConfigError,
      "its sweep.json plans the variants at --steps 30; collect with --steps 30",
    );
    assertEquals(await collectAblation({ steps: 30, out, partial: true }), 1);
    const md = await Deno.readTextFile(`${out}/ablation.md`);
    assert(
      md.includes("Not in this table: d3pm no EMA (planned, not finished)."),
      md,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("ablate refuses, before planning or training, a --steps at which a variant cannot run, naming the variant and the --steps it takes", async () => {
  assertThrows(
    () => ablationSweep({ steps: 25, out: "runs/ab" }),
    ConfigError,
    "Option --steps 25 cannot be the ablation's budget: the baseline validates at its last step, which must be a logged one; --steps takes a multiple of 10",
  );
  for (
    const [name, least] of [["d3pm warm-up 100", 100], [
      "d3pm tuned + batch 4 + lr 0.003 + warm-up 200",
      100,
    ]] as const
  ) {
    assertThrows(
      () => ablationSweep({ steps: 30, out: "runs/ab", only: [name] }),
      ConfigError,
      `Variant ${
        JSON.stringify(name)
      } cannot run at --steps 30: it warms up for `,
    );
    assertThrows(
      () => checkVariantSteps(grid(90).filter((v) => v.name === name), 90),
      ConfigError,
      `it needs --steps ${least}, ${least + 10}, `,
    );
  }
  // Every variant of the grid at 100 steps, as the message says.
  checkVariantSteps(grid(100), 100);
  assertEquals(
    ablationSweep({ steps: 30, out: "runs/ab", only: ["ar lr"] }).cells.length,
    5,
  );
  const out = await Deno.makeTempDir();
  await assertRejects(
    () => runAblation({ steps: 30, out: `${out}/a` }),
    ConfigError,
    'Variant "d3pm warm-up 100" cannot run at --steps 30: it warms up for 100 of its 30 steps; it needs --steps 100, 110, 120, …',
  );
  assertEquals(await pathExists(`${out}/a`), false);
  await Deno.remove(out);
});

Deno.test("saveSweep() tells an ablate user whose folder holds another sweep, or other files, to choose another --out (ablate has no --dir)", async () => {
  const out = await Deno.makeTempDir({ prefix: "ablate-collide-" });
  try {
    await saveSweep(ablationSweep({ steps: 30, out, only: ["ar lr 0.001"] }));
    await assertRejects(
      () => saveSweep(ablationSweep({ steps: 40, out, only: ["ar lr 0.001"] })),
      ConfigError,
      `${out} holds another sweep (1 cells: ar-lr-0.001…): choose another --out, or re-run it`,
    );
    const other = `${out}/other`;
    await Deno.mkdir(other);
    await Deno.writeTextFile(`${other}/notes.txt`, "mine");
    await assertRejects(
      () => saveSweep(ablationSweep({ steps: 100, out: other })),
      ConfigError,
      "a sweep needs a folder of its own: choose another --out",
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("collectAblation() refuses an ablation.jsonl line that parses but is not a variant's row (null, a number, an array, no name, a fractional budget), naming it; a row without steps is of 250", async () => {
  const out = await Deno.makeTempDir({ prefix: "ablate-notrows-" });
  try {
    const [a] = grid(30);
    const good = JSON.stringify({ ...ablRow(a.name, a.model, 7), steps: 30 });
    await putResult(out, ablRow(a.name, a.model, 6), 30);
    for (
      const bad of [
        "null",
        "5",
        "[]",
        '{"steps": 30}',
        `{"name": ${JSON.stringify(a.name)}, "steps": 1.5}`,
      ]
    ) {
      const lines = `${good}\n${bad}\n`;
      await Deno.writeTextFile(`${out}/ablation.jsonl`, lines);
      await assertRejects(
        () => collectAblation({ steps: 30, out }),
        ConfigError,
        `${out}/ablation.jsonl line 2 is not a row of the ablation (not an object with a variant's name): fix or remove that line`,
      );
      assertEquals(await Deno.readTextFile(`${out}/ablation.jsonl`), lines);
    }
    const old = JSON.stringify(ablRow("d3pm no EMA", "d3pm", 8));
    await Deno.writeTextFile(`${out}/ablation.jsonl`, `${old}\n`);
    assertEquals(await collectAblation({ steps: 30, out }), 1);
    const rows = (await Deno.readTextFile(`${out}/ablation.jsonl`)).trim()
      .split("\n").map((l) => JSON.parse(l));
    assertEquals(rows, [
      { ...ablRow("d3pm no EMA", "d3pm", 8), steps: 250 },
      { ...ablRow(a.name, a.model, 6), steps: 30 },
    ]);
    // A row without steps replaced by a collect at 250 steps, not kept beside it.
    await Deno.writeTextFile(`${out}/ablation.jsonl`, `${old}\n`);
    await putResult(out, ablRow("d3pm no EMA", "d3pm", 5), 250);
    assertEquals(await collectAblation({ steps: 250, out }), 1);
    assertEquals(
      (await Deno.readTextFile(`${out}/ablation.jsonl`)).trim().split("\n")
        .map((l) => JSON.parse(l)),
      [{ ...ablRow("d3pm no EMA", "d3pm", 5), steps: 250 }],
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("collectAblation() of an ablate sweep.json without a collect step takes its cells as the plan, at any budget", async () => {
  const out = await Deno.makeTempDir({ prefix: "ablate-nocollect-" });
  try {
    const only = ["ar lr 0.001", "d3pm no EMA"];
    const { collect: _, ...sweep } = ablationSweep({ steps: 30, out, only });
    await saveSweep(sweep);
    const [a] = grid(30);
    await putResult(out, ablRow(a.name, a.model, 6), 30);
    await assertRejects(
      () => collectAblation({ steps: 30, out }),
      ConfigError,
      `Cannot collect ${out}: 1 of 2 planned variants have no results at 30 steps (d3pm no EMA)`,
    );
    await assertRejects(
      () => collectAblation({ steps: 40, out }),
      ConfigError,
      `Cannot collect ${out}: 2 of 2 planned variants have no results at 40 steps (ar lr 0.001, d3pm no EMA)`,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("collectAblation() --partial notes the planned variants left out on stderr, and says nothing when none is", async () => {
  const out = await Deno.makeTempDir({ prefix: "ablate-note-" });
  const error = console.error;
  const said: string[] = [];
  console.error = (...a: unknown[]) => said.push(a.join(" "));
  try {
    await saveSweep(
      ablationSweep({ steps: 30, out, only: ["ar lr 0.001", "d3pm no EMA"] }),
    );
    const [a] = grid(30);
    await putResult(out, ablRow(a.name, a.model, 6), 30);
    assertEquals(await collectAblation({ steps: 30, out, partial: true }), 1);
    assertEquals(said.filter((l) => l.startsWith("note:")), [
      "note: 1 planned variant(s) not in the table (--partial): d3pm no EMA",
    ]);
    said.length = 0;
    await putResult(out, ablRow("d3pm no EMA", "d3pm", 6), 30);
    assertEquals(await collectAblation({ steps: 30, out, partial: true }), 2);
    assertEquals(said.filter((l) => l.startsWith("note:")), []);
  } finally {
    console.error = error;
    await Deno.remove(out, { recursive: true });
  }
});
