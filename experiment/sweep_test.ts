import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { tempDir } from "@d3pm/core/testing";
import {
  cellStep,
  checkMergeable,
  collectRuns,
  ConfigError,
  FOLDER_BUSY_EXIT,
  type MergedRun,
  parseGrid,
  planSweep,
  readSweep,
  recordSubmission,
  resolveConfig,
  RunFolder,
  runLocal,
  saveSweep,
  sbatchScript,
  shellQuote,
  statusLine,
  studySweep,
  SWEEP_FILE_LIMIT,
  SWEEP_PLAN_RULES,
  sweepCommand,
  sweepPaths,
  type SweepSpec,
  sweepStatus,
  writeMergedReport,
} from "./mod.ts";
import { MetricsLog } from "@d3pm/train";
import { sha256Hex } from "@d3pm/core";

Deno.test("planSweep() takes the product of the grid in key order, seeds innermost, each cell its own folder and seed", () => {
  const s = planSweep({
    options: { preset: "micro", steps: 20 },
    grid: { lr: ["1e-3", "2e-3"], "time-conditioning": [false, true] },
    seeds: "3..4",
  }, { dir: "runs/g/" });
  assertEquals(s.dir, "runs/g");
  assertEquals(s.swept, ["lr", "timeConditioning", "seed"]);
  assertEquals(s.cells.length, 8);
  assertEquals(
    s.cells.map((c) => c.name).slice(0, 3),
    [
      "lr-0.001_time-conditioning-false_seed-3",
      "lr-0.001_time-conditioning-false_seed-4",
      "lr-0.001_time-conditioning-true_seed-3",
    ],
  );
  const last = s.cells[7];
  assertEquals(last.index, 7);
  assertEquals(last.values, { lr: 0.002, timeConditioning: true, seed: 4 });
  assertEquals(last.args, [
    "--preset",
    "micro",
    "--steps",
    "20",
    "--lr",
    "0.002",
    "--time-conditioning",
    "true",
    "--seeds",
    "1",
    "--first-seed",
    "4",
    "--out",
    "runs/g/cells/lr-0.002_time-conditioning-true_seed-4",
    "--resume",
  ]);
  // One value is fixed, not swept: it is not in the names.
  const one = planSweep({ grid: { lr: [0.003] } }, { dir: "d" });
  assertEquals(one.swept, []);
  assertEquals(one.cells.map((c) => c.name), ["lr-0.003_seed-0"]);
});

Deno.test("planSweep() refuses unknown options, the sweep's own, bad values and cells that cannot run, in one line", () => {
  const plan = (spec: Parameters<typeof planSweep>[0]) => () =>
    planSweep(spec, { dir: "d" });
  assertThrows(
    plan({ grid: { lrr: [1] } }),
    ConfigError,
    "Unknown option in the grid: --lrr",
  );
  // Shown as given, not as the flag of a camelCase key ("---l-r").
  assertThrows(
    plan({ grid: { LR: [1] } }),
    ConfigError,
    'Unknown option in the grid: "LR": a sweep takes',
  );
  assertThrows(
    plan({ options: { out: "x" } }),
    ConfigError,
    "Option --out is set by the sweep for each cell",
  );
  assertThrows(
    plan({ grid: { seeds: [1, 2] } }),
    ConfigError,
    "use --seeds A..B for seeds",
  );
  assertThrows(
    plan({ grid: { dropout: [0, 1] } }),
    ConfigError,
    "Option --dropout must be a number in [0, 1), got 1",
  );
  assertThrows(
    plan({ options: { steps: 5 }, grid: { warmup: [1, 9] } }),
    ConfigError,
    "Cell warmup-9_seed-0 cannot run: Option --warmup (9) must not exceed --steps (5)",
  );
  assertThrows(plan({ grid: { lr: [1e-3, 0.001] } }), ConfigError, "twice");
  assertThrows(plan({ seeds: "1..0" }), ConfigError, "--seeds");
  for (const e of ["lrr", "out"]) {
    try {
      plan(e === "out" ? { options: { out: "x" } } : { grid: { lrr: [1] } })();
    } catch (err) {
      assert(!(err as Error).message.includes("\n"));
    }
  }
});

Deno.test("sbatchScript() writes one requeueable array task per open cell, with the site's settings", () => {
  const s = planSweep({ seeds: "0..4" }, { dir: "/s/w" });
  const text = sbatchScript(s, {
    workdir: "/repo dir",
    experiment: "/bin/deno run -A /repo/examples/experiment.ts",
    partition: "gpu",
    time: "04:00:00",
    cpusPerTask: 8,
    gpus: 1,
    parallel: 2,
    extra: ["--qos=long", "#SBATCH --mem=32G"],
    cells: [0, 1, 3],
  });
  for (
    const line of [
      "#!/bin/bash\n",
      "#SBATCH --array=0-1,3%2\n",
      "#SBATCH --requeue\n",
      "#SBATCH --open-mode=append\n",
      '#SBATCH --output="/s/w/logs/slurm-%A_%a.out"\n',
      "#SBATCH --partition=gpu\n",
      "#SBATCH --time=04:00:00\n",
      "#SBATCH --cpus-per-task=8\n",
      "#SBATCH --gres=gpu:1\n",
      "#SBATCH --qos=long\n",
      "#SBATCH --mem=32G\n",
      'threads="${SLURM_CPUS_PER_TASK:-1}"\n',
      'export OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"\n',
      "cd '/repo dir' || exit 1\n",
      'case "$SLURM_ARRAY_TASK_ID" in\n',
      "  3)\n",
    ]
  ) assertStringIncludes(text, line);
  assert(!text.includes("  2)\n"), "a finished cell is not submitted");
  assertStringIncludes(
    text,
    "/bin/deno run -A /repo/examples/experiment.ts --seeds 1 --first-seed 3 --out /s/w/cells/seed-3 --resume >> /s/w/logs/seed-3.log 2>&1",
  );
  // Every #SBATCH line comes before the first command.
  const lines = text.split("\n");
  const firstCommand = lines.findIndex((l) => l !== "" && !l.startsWith("#"));
  assert(lines.slice(firstCommand).every((l) => !l.startsWith("#SBATCH")));
  assertThrows(
    () => sbatchScript(s, { workdir: "/", experiment: "x", cells: [] }),
    ConfigError,
    "every cell is finished",
  );
});

Deno.test("cellStep() skips a finished cell, resumes the others and records the exit code", async () => {
  const dir = await Deno.makeTempDir();
  const s = planSweep({ seeds: 2 }, { dir });
  // A stand-in experiment: prints its arguments, fails for seed 1.
  const fake =
    `f() { echo "args: $*"; case "$*" in *"first-seed 1"*) return 3;; esac; }; f`;
  const run = async (i: number) =>
    (await new Deno.Command("bash", {
      args: ["-c", cellStep(s, s.cells[i], { experiment: fake })],
      stdout: "piped",
      stderr: "piped",
    }).output()).code;
  assertEquals(await run(0), 0);
  assertEquals(await run(1), 3);
  const p = sweepPaths(dir);
  assertEquals((await Deno.readTextFile(p.exit(s.cells[1]))).trim(), "3");
  assertStringIncludes(
    await Deno.readTextFile(p.log(s.cells[0])),
    `args: --seeds 1 --first-seed 0 --out ${dir}/cells/seed-0 --resume`,
  );
  await Deno.mkdir(s.cells[1].out, { recursive: true });
  await Deno.writeTextFile(`${s.cells[1].out}/results.json`, "{}");
  assertEquals(await run(1), 0, "a finished cell is skipped");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cellStep() runs a cell whose results.json is broken (a requeued task judges by sweep status's rule), moving it aside; a check that cannot tell (no deno, or deno failing on its own with exit 1) runs nothing", async () => {
  const dir = await Deno.makeTempDir();
  const s = planSweep({ seeds: 1 }, { dir });
  const cell = s.cells[0];
  const p = sweepPaths(dir);
  const step = (deno?: string) =>
    new Deno.Command("bash", {
      args: ["-c", cellStep(s, cell, { experiment: "echo RAN", deno })],
      stdout: "piped",
      stderr: "piped",
    }).output();
  await Deno.mkdir(cell.out, { recursive: true });
  for (const torn of ['{"bpt": ', "[]"]) {
    await Deno.writeTextFile(`${cell.out}/results.json`, torn);
    assertEquals((await sweepStatus(s))[0].state, "broken");
    const out = await step();
    assertEquals(out.code, 0);
    assertEquals(new TextDecoder().decode(out.stdout), "", "not skipped");
    const log = await Deno.readTextFile(p.log(cell));
    assertStringIncludes(log, "RAN --seeds 1 --first-seed 0");
    assertStringIncludes(
      log,
      `; moved it aside to ${cell.out}/results.json.broken, the cell runs again`,
    );
    assertEquals(
      await Deno.readTextFile(`${cell.out}/results.json.broken`),
      torn,
    );
    await Deno.remove(p.log(cell));
  }
  // No deno to check with: the cell is not run, the exit code kept.
  await Deno.writeTextFile(`${cell.out}/results.json`, "[]");
  const out = await step(`${dir}/no-deno`);
  assertEquals(out.code, 127);
  assertStringIncludes(
    new TextDecoder().decode(out.stderr),
    "cell seed-0: cannot tell whether it has finished (exit 127), not run",
  );
  assertEquals((await Deno.readTextFile(p.exit(cell))).trim(), "127");
  assertEquals((await Deno.readTextFile(p.log(cell))).includes("RAN"), false);
  // A check that crashes (deno exits 1 on a module it cannot find, as an
  // older --deno may): it cannot tell either, so the cell is not run.
  await Deno.remove(p.log(cell));
  const crashing = `${dir}/crashing-deno`;
  await Deno.writeTextFile(
    crashing,
    `#!/bin/sh\nexec '${Deno.execPath()}' run -A '${dir}/no-such-module.ts'\n`,
  );
  await Deno.chmod(crashing, 0o755);
  for (const results of ["[]", undefined]) {
    if (results) await Deno.writeTextFile(`${cell.out}/results.json`, results);
    else await Deno.remove(`${cell.out}/results.json`).catch(() => {});
    const out = await step(crashing);
    assertEquals(out.code, 1);
    assertStringIncludes(
      new TextDecoder().decode(out.stderr),
      "cell seed-0: cannot tell whether it has finished (exit 1), not run",
    );
    assertEquals((await Deno.readTextFile(p.exit(cell))).trim(), "1");
    const log = await Deno.readTextFile(p.log(cell));
    assertStringIncludes(log, "Module not found");
    assertEquals(log.includes("RAN"), false, "the crashed check ran the cell");
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sweepStatus() reads pending, running, finished and failed cells and their progress from the folders", async () => {
  const dir = await Deno.makeTempDir();
  const s = await saveSweep(
    planSweep({ options: { preset: "micro", steps: 25 }, seeds: 7 }, { dir }),
  );
  const start = async (i: number) =>
    await new RunFolder(s.cells[i].out).start(
      resolveConfig({
        preset: "micro",
        steps: 25,
        seeds: 1,
        firstSeed: i,
        out: s.cells[i].out,
      }),
    );
  const metrics = (i: number, lines: object[]) =>
    Deno.writeTextFile(
      `${s.cells[i].out}/metrics.jsonl`,
      lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
    );
  // 1: running, AR done (25 steps) and D3PM at step 4 (a resumed step 4 counts once).
  const release = await start(1);
  await metrics(1, [
    ...Array.from({ length: 25 }, (_, k) => ({
      model: "ar",
      seed: 1,
      step: k + 1,
      loss: 5,
    })),
    { model: "d3pm", seed: 1, step: 4, loss: 5 },
    { model: "d3pm", seed: 1, step: 4, loss: 5 },
    { model: "d3pm", seed: 1, step: 4, valid: 5 },
  ]);
  // 2: finished. 3: failed. 4: interrupted (no exit code). 5: cancelled (killed by SIGTERM).
  (await start(2))();
  await Deno.writeTextFile(`${s.cells[2].out}/results.json`, "{}");
  (await start(3))();
  await Deno.writeTextFile(sweepPaths(dir).exit(s.cells[3]), "1\n");
  (await start(4))();
  await metrics(4, [{ model: "ar", seed: 4, step: 3, loss: 5 }]);
  (await start(5))();
  await Deno.writeTextFile(sweepPaths(dir).exit(s.cells[5]), "143\n");
  // 6: preparing: its lock is held, nothing written yet.
  const preparing = await new RunFolder(s.cells[6].out).acquire(
    resolveConfig({
      preset: "micro",
      steps: 25,
      seeds: 1,
      firstSeed: 6,
      out: s.cells[6].out,
    }),
  );
  const st = await sweepStatus(s);
  release();
  preparing.release();
  assertEquals(st.map((x) => x.state), [
    "pending",
    "running",
    "finished",
    "failed",
    "pending",
    "pending",
    "running",
  ]);
  assertEquals(st.map((x) => [x.steps, x.totalSteps]), [
    [0, 0],
    [29, 50],
    [50, 50],
    [0, 50],
    [3, 50],
    [0, 50],
    [0, 0],
  ]);
  assertEquals(st[1].at, "d3pm seed 1 step 4");
  assertEquals(st[3].exitCode, 1);
  assertEquals(st[3].log, `${dir}/logs/seed-3.log`);
  assertStringIncludes(
    statusLine(st[3]),
    `failed    seed-3 0% (0/50 steps) exit 1, log ${dir}/logs/seed-3.log`,
  );
  assertStringIncludes(
    statusLine(st[5]),
    "interrupted by signal 15: a re-run resumes it",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("saveSweep() refuses a folder that holds another sweep and takes back the same one", async () => {
  const dir = await Deno.makeTempDir();
  await saveSweep(planSweep({ seeds: 2 }, { dir }));
  await saveSweep(planSweep({ seeds: 2 }, { dir }));
  const e = await saveSweep(planSweep({ seeds: 3 }, { dir })).catch((e) => e);
  assert(e instanceof ConfigError);
  assertStringIncludes(e.message, `${dir} holds another sweep (2 cells`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("checkMergeable() refuses runs that differ in data, tokenizer or an option not swept, naming it", () => {
  const run = (
    dir: string,
    over: Record<string, unknown> = {},
    extra: { tokenizer?: string; source?: string } = {},
  ): MergedRun => ({
    dir,
    name: dir,
    values: {},
    result: {
      config: resolveConfig({ preset: "micro", out: dir, ...over }),
      data: { source: extra.source ?? "wt2", trainTokens: 10, testTokens: 5 },
      tokenizer: { id: extra.tokenizer ?? "byte", vocabSize: 260 },
    } as never,
  });
  // Seeds, folders and the process's own options may differ.
  checkMergeable([
    run("a", { seeds: 1, firstSeed: 0 }),
    run("b", { seeds: 2, firstSeed: 1, backend: "cpu", resume: true }),
  ], ["seed"]);
  checkMergeable([run("a"), run("b", { lr: 2e-3 })], ["lr", "seed"]);
  const refused = (runs: MergedRun[], swept: string[], text: string) =>
    assertThrows(() => checkMergeable(runs, swept), ConfigError, text);
  refused(
    [run("a"), run("b", { lr: 2e-3 })],
    ["seed"],
    "Cannot merge a and b: --lr is 0.002 in b but 0.005 in a",
  );
  refused(
    [run("a"), run("b", { lr: 2e-3, dropout: 0.2 })],
    ["lr", "seed"],
    "--dropout is 0.2 in b but",
  );
  // An empty value reads "" (as a resume's refusal shows it), not a blank.
  const from = run("b");
  from.result = {
    ...from.result,
    config: { ...from.result.config, initFrom: "/tmp/R1" },
  };
  refused(
    [run("a"), from],
    ["seed"],
    'Cannot merge a and b: --init-from is /tmp/R1 in b but "" in a (',
  );
  refused(
    [from, run("a")],
    ["seed"],
    'Cannot merge b and a: --init-from is "" in a but /tmp/R1 in b (',
  );
  refused(
    [run("a"), run("c", {}, { tokenizer: "bpe-x" })],
    ["seed"],
    "their tokenizers differ (bpe-x in c but byte in a)",
  );
  refused(
    [run("a"), run("d", {}, { source: "wt103" })],
    ["seed"],
    "their data differ (source wt103 in d but wt2 in a)",
  );
});

Deno.test("writeMergedReport() names the engines that trained the cells: one line for one, each with its cells when they differ", async () => {
  const model = (kind: string, seed: number, engines?: string[]) => ({
    model: kind,
    seed,
    test: { bpt: 7, nll: 4.9, bound: kind === "d3pm" },
    generation: { genPpl: 300, entropy: 4, speed: { batchesPerSecond: 1 } },
    training: {
      seconds: 1,
      ...(engines
        ? { engines: engines.map((engine, i) => ({ engine, fromStep: i * 4 })) }
        : {}),
    },
  });
  const run = (name: string, models: unknown[]): MergedRun => ({
    dir: `/nonexistent/${name}`,
    name,
    values: {},
    result: {
      config: resolveConfig({ preset: "micro", out: name }),
      data: { source: "wt2", trainTokens: 10, testTokens: 5 },
      tokenizer: { id: "byte", vocabSize: 260 },
      engine: "cpu: the fused plan on the CPU kernels",
      results: models,
    } as never,
  });
  const out = await Deno.makeTempDir();
  const merged = (runs: MergedRun[]) =>
    writeMergedReport({ runs, swept: ["seed"], unfinished: [] }, out);
  const one = await merged([
    run("a", [model("ar", 0, ["E1"]), model("d3pm", 0, ["E1"])]),
    run("b", [model("ar", 1, ["E1"]), model("d3pm", 1, ["E1"])]),
  ]);
  assertStringIncludes(one, "\nTrained on: E1.\n");
  // A cell resumed on E2, and an older run without spans (its run's engine).
  const three = await merged([
    run("a", [model("ar", 0, ["E1"]), model("d3pm", 0, ["E1", "E2"])]),
    run("b", [model("ar", 1, ["E1"]), model("d3pm", 1, ["E1"])]),
    run("c", [model("ar", 2), model("d3pm", 2)]),
  ]);
  assertStringIncludes(
    three,
    "\nTrained on 3 engines (their rounding differs): E1 (a, b); E2 (a); cpu: the fused plan on the CPU kernels (c).\n",
  );
  // Without spans, a model's own engine (bd3 on tfjs in a CPU run) counts.
  const own = await merged([
    run("d", [model("ar", 3), { ...model("bd3", 3), engine: "tfjs (bd3)" }]),
  ]);
  assertStringIncludes(
    own,
    "\nTrained on 2 engines (their rounding differs): cpu: the fused plan on the CPU kernels (d); tfjs (bd3) (d).\n",
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("checkMergeable() refuses a seed held twice in one setting (a run given twice, or a copy), not across settings", () => {
  const run = (dir: string, seed: number, lr = 5e-3): MergedRun => ({
    dir,
    name: dir,
    values: { lr, seed },
    result: {
      config: resolveConfig({ preset: "micro", out: dir, lr }),
      data: { source: "wt2", trainTokens: 10, testTokens: 5 },
      tokenizer: { id: "byte", vocabSize: 260 },
      results: [{ model: "ar", seed }, { model: "d3pm", seed }],
    } as never,
  });
  checkMergeable([run("a", 0), run("b", 1)], ["seed"]);
  checkMergeable([run("a", 0), run("b", 0, 2e-3)], ["lr", "seed"]);
  assertThrows(
    () => checkMergeable([run("a", 0), run("a", 0)], ["seed"]),
    ConfigError,
    "Cannot merge a and a: both hold seed 0 of ar (the same run given twice, or a copy of it",
  );
  assertThrows(
    () =>
      checkMergeable([run("a", 0), run("b", 0, 2e-3), run("c", 0)], [
        "lr",
        "seed",
      ]),
    ConfigError,
    "Cannot merge a and c: both hold seed 0 of ar at --lr 0.005",
  );
});

Deno.test("collectRuns() refuses to vary what is not an option of the experiment", async () => {
  await assertRejects(
    () => collectRuns(["/nonexistent/a"], { vary: ["learningRate"] }),
    ConfigError,
    "Cannot vary learningRate: not an option of the experiment",
  );
});

Deno.test("writeMergedReport() refuses a folder that holds a run or a model, or a file, and writes nothing there", async () => {
  const dir = await Deno.makeTempDir();
  const runs = [0, 1].map((seed): MergedRun => ({
    dir: `/nonexistent/${seed}`,
    name: String(seed),
    values: {},
    result: {
      config: resolveConfig({ preset: "micro" }),
      data: { source: "wt2", trainTokens: 10, testTokens: 5 },
      tokenizer: { id: "byte", vocabSize: 260 },
      engine: "cpu",
      results: [{
        model: "ar",
        seed,
        test: { bpt: 7, nll: 4.9 },
        generation: { genPpl: 300, entropy: 4, speed: { batchesPerSecond: 1 } },
        training: { seconds: 1 },
      }],
    } as never,
  }));
  const merge = { runs, swept: ["seed"], unfinished: [] };
  for (const name of ["config.json", "results.json"]) {
    const out = `${dir}/${name}-run`;
    await Deno.mkdir(out);
    await Deno.writeTextFile(`${out}/${name}`, "{}");
    await Deno.writeTextFile(`${out}/report.md`, "the run's own");
    await assertRejects(
      () => writeMergedReport(merge, out),
      ConfigError,
      `Cannot write the merged report to ${out}: it holds a run or a model (${name})`,
    );
    assertEquals(await Deno.readTextFile(`${out}/report.md`), "the run's own");
    assertEquals([...Deno.readDirSync(out)].length, 2);
  }
  await Deno.writeTextFile(`${dir}/file`, "x");
  await assertRejects(
    () => writeMergedReport(merge, `${dir}/file`),
    ConfigError,
    "it is a file, not a folder",
  );
  // A new folder, and again over the earlier merged report: written.
  for (let i = 0; i < 2; i++) {
    assertStringIncludes(
      await writeMergedReport(merge, `${dir}/merged`),
      "# Merged report: 2 runs",
    );
  }
  // A folder of the user's notes with their own report.md (no merged.json):
  // it was overwritten; now refused, left as it was.
  const notes = `${dir}/notes`;
  await Deno.mkdir(notes);
  await Deno.writeTextFile(`${notes}/report.md`, "my report");
  await assertRejects(
    () => writeMergedReport(merge, notes),
    ConfigError,
    `Cannot write the merged report to ${notes}: it holds other files (report.md)`,
  );
  assertEquals(await Deno.readTextFile(`${notes}/report.md`), "my report");
  assertEquals([...Deno.readDirSync(notes)].length, 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("saveSweep() plans only into a new or empty folder, or its own sweep, never among a user's files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/notes.txt`, "mine");
    const sweep = planSweep({ options: { preset: "micro" } }, { dir });
    await assertRejects(
      () => saveSweep(sweep),
      ConfigError,
      `Cannot make a sweep in ${dir}: it holds other files (notes.txt)`,
    );
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["notes.txt"]);
    await Deno.remove(`${dir}/notes.txt`);
    await saveSweep(sweep);
    await saveSweep(sweep); // its own sweep: the same again
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveSweep() refuses a folder that holds a run or a model, or a file, and writes nothing there", async () => {
  const dir = await Deno.makeTempDir();
  for (const name of ["config.json", "results.json"]) {
    const at = `${dir}/${name}-run`;
    await Deno.mkdir(at);
    await Deno.writeTextFile(`${at}/${name}`, "{}");
    await assertRejects(
      () => saveSweep(planSweep({ seeds: 1 }, { dir: at })),
      ConfigError,
      `Cannot make a sweep in ${at}: it holds a run or a model (${name})`,
    );
    assertEquals([...Deno.readDirSync(at)].map((e) => e.name), [name]);
  }
  await Deno.writeTextFile(`${dir}/file`, "x");
  await assertRejects(
    () => saveSweep(planSweep({ seeds: 1 }, { dir: `${dir}/file` })),
    ConfigError,
    `Cannot make a sweep in ${dir}/file: it is a file, not a folder`,
  );
  const fresh = await saveSweep(planSweep({ seeds: 1 }, { dir: `${dir}/new` }));
  assertEquals(fresh.cells.length, 1);
  await Deno.remove(dir, { recursive: true });
});

// Found by a hostile pass: `--set "lr=0.001; lr=0.002"` planned lr 0.002
// alone (the first silently dropped), `--seeds 0..1000000000` failed with
// "Invalid array length", and a sweep.json (or sweep file) that is
// /dev/zero was read for ever.
Deno.test("a grid key given twice, a seed range beyond 1000 and a sweep record that is a device are refused in one line", async () => {
  const { parseGrid, parseSeeds, readSweep, ConfigError } = await import(
    "./mod.ts"
  );
  const { assertRejects, assertThrows } = await import("@std/assert");
  assertThrows(
    () => parseGrid("lr=0.001; lr=0.002"),
    ConfigError,
    "Option --set gives --lr twice (lr=0.001 and lr=0.002)",
  );
  assertThrows(() => parseGrid("ar-lr=0 arLr=1"), ConfigError, "--ar-lr twice");
  assertThrows(
    () => parseSeeds("0..1000000000"),
    ConfigError,
    "integers in [0, 1000]",
  );
  assertThrows(() => parseSeeds("1001..1002"), ConfigError, "--seeds");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.symlink("/dev/zero", `${dir}/sweep.json`);
    await assertRejects(
      () => readSweep(dir),
      ConfigError,
      `Cannot read ${dir}/sweep.json: it is a character device`,
    );
    await Deno.remove(`${dir}/sweep.json`);
    await Deno.writeTextFile(`${dir}/sweep.json`, "null");
    await assertRejects(
      () => readSweep(dir),
      ConfigError,
      "not a sweep record",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Ctrl-C's "continue with:" line was Deno.args joined by spaces, less
// "--resume" and "--force": `--out "runs/a b"` came back split, and
// `--force true` left a stray "true" — both refused when pasted.
Deno.test("commandLineOf gives back a command a shell reads as the same options", async () => {
  const { commandLineOf } = await import("./mod.ts");
  const line = commandLineOf("deno task experiment", {
    preset: "micro",
    out: "runs/a b",
    data: "it's",
    timeConditioning: true,
    shift: false,
    lr: 0.001,
    judge: undefined,
  });
  assertEquals(
    line,
    "deno task experiment --preset micro --out 'runs/a b' --data 'it'\\''s' --time-conditioning --shift false --lr 0.001",
  );
  const words = await new Deno.Command("bash", {
    args: [
      "-c",
      `printf '%s\\n' ${line.slice("deno task experiment ".length)}`,
    ],
    stdout: "piped",
  }).output();
  assertEquals(new TextDecoder().decode(words.stdout).trim().split("\n"), [
    "--preset",
    "micro",
    "--out",
    "runs/a b",
    "--data",
    "it's",
    "--time-conditioning",
    "--shift",
    "false",
    "--lr",
    "0.001",
  ]);
});

Deno.test("groupRows() groups runs by every swept value but the seed: BPT mean, sample sd, best (lowest) and range, brute force", async () => {
  const { groupRows } = await import("./merge.ts");
  // 2 learning rates × 3 seeds, an AR and a D3PM in each run. Reference:
  // the group's values listed by hand, mean and sample sd (n − 1) computed
  // here; tolerance 1e-12. Catches the seed kept in the group key (six
  // groups of one, sd 0), the best BPT taken as the highest, and the sd over
  // n.
  const bpt: Record<string, number[]> = {
    "0.001 ar": [5.1, 5.4, 5.0],
    "0.001 d3pm": [7.2, 6.9, 7.8],
    "0.002 ar": [4.8, 4.95, 5.3],
    "0.002 d3pm": [6.6, 7.1, 6.75],
  };
  const runs: MergedRun[] = [];
  for (const lr of [1e-3, 2e-3]) {
    for (const seed of [0, 1, 2]) {
      runs.push({
        dir: `/nonexistent/lr${lr}-s${seed}`,
        name: `lr${lr}-s${seed}`,
        values: { lr, seed },
        result: {
          results: ["ar", "d3pm"].map((model) => ({
            model,
            seed,
            test: { bpt: bpt[`${lr} ${model}`][seed], bound: model === "d3pm" },
            generation: {
              genPpl: 100 * (seed + 1),
              speed: { batchesPerSecond: seed + 2 },
            },
          })),
        } as never,
      });
    }
  }
  const rows = groupRows({ runs, swept: ["lr", "seed"], unfinished: [] });
  assertEquals(rows.length, 4);
  for (const r of rows) {
    const lr = r.group.match(/([\d.e-]+)$/)![1];
    const v = bpt[`${Number(lr)} ${r.model}`];
    const mean = (v[0] + v[1] + v[2]) / 3;
    const sd = Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / 2);
    assertEquals(r.seeds, [0, 1, 2], r.group);
    assertAlmostEquals(r.bpt.mean, mean, 1e-12);
    assertAlmostEquals(r.bpt.sd, sd, 1e-12);
    assertEquals(
      [r.bpt.best, r.bpt.min, r.bpt.max],
      [Math.min(...v), Math.min(...v), Math.max(...v)],
    );
    assertAlmostEquals(r.genPpl, 200, 1e-12);
    assertAlmostEquals(r.batchesPerSecond, 3, 1e-12);
    assertEquals(r.bound, r.model === "d3pm");
  }
});

Deno.test("planSweep() refuses two cells that would share a folder, or are the same run, naming them", () => {
  // Before: both cells ran into cells/init-from-+x+a+b_seed-0; the second
  // was skipped as finished and reported the first one's figures.
  assertThrows(
    () => planSweep({ grid: { initFrom: ["/x/a/b", "/x/a+b"] } }, { dir: "d" }),
    ConfigError,
    'Two cells would share the folder cells/init-from-+x+a+b_seed-0: --init-from "/x/a/b" and "/x/a+b" give the same name',
  );
  // The experiment reads both model lists alike: one run, made twice.
  assertThrows(
    () => planSweep({ grid: { models: ["ar,d3pm", "d3pm,ar"] } }, { dir: "d" }),
    ConfigError,
    "Cells models-ar+d3pm_seed-0 and models-d3pm+ar_seed-0 are the same run",
  );
  // Every cell of a larger grid has its own folder and configuration.
  const s = planSweep({
    options: { preset: "micro" },
    grid: {
      lr: [1e-3, 2e-3, 3e-3],
      dropout: [0, 0.1],
      models: ["ar", "ar,d3pm"],
    },
    seeds: "0..2",
  }, { dir: "d" });
  assertEquals(new Set(s.cells.map((c) => c.out)).size, 36);
});

Deno.test("collectRuns() refuses a sweep cell whose folder holds another run (copied from another cell, another seed, an edited config)", async () => {
  const dir = `${await Deno.makeTempDir()}/sw`;
  const sweep = await saveSweep(planSweep({
    options: { preset: "micro", steps: 20 },
    grid: { lr: [1e-3, 2e-3] },
    seeds: 2,
  }, { dir }));
  const results = (i: number, over: Record<string, unknown> = {}) => {
    const c = sweep.cells[i];
    return {
      config: {
        ...resolveConfig({
          preset: "micro",
          steps: 20,
          lr: c.values.lr,
          seeds: 1,
          firstSeed: c.values.seed,
          out: c.out,
          resume: true,
        }),
        ...over,
      },
      data: { source: "wt2", trainTokens: 10, testTokens: 5 },
      tokenizer: { id: "byte", vocabSize: 260 },
      results: ["ar", "d3pm"].map((model) => ({
        model,
        seed: Number(over.firstSeed ?? c.values.seed),
      })),
    };
  };
  const write = async (i: number, r: unknown) => {
    await Deno.mkdir(sweep.cells[i].out, { recursive: true });
    await Deno.writeTextFile(
      `${sweep.cells[i].out}/results.json`,
      JSON.stringify(r),
    );
  };
  for (let i = 0; i < 4; i++) await write(i, results(i));
  const ok = await collectRuns([dir]);
  assertEquals(ok.runs.map((r) => r.values), sweep.cells.map((c) => c.values));
  // Cell 1 (lr 0.001, seed 1) holds cell 3's run (lr 0.002, seed 1).
  // Before: merged as a second lr 0.002 figure under lr 0.001.
  await write(1, results(3));
  await assertRejects(
    () => collectRuns([dir]),
    ConfigError,
    `Cannot merge ${dir}: cell lr-0.001_seed-1's folder ${dir}/cells/lr-0.001_seed-1 holds another run (--lr is 0.002 there but 0.001 in the cell)`,
  );
  // Another seed of the same setting (cell 0's run).
  await write(1, results(0));
  await assertRejects(
    () => collectRuns([dir]),
    ConfigError,
    "(--first-seed is 0 there but 1 in the cell)",
  );
  // An option the sweep fixed, edited by hand.
  await write(1, results(1, { steps: 30 }));
  await assertRejects(
    () => collectRuns([dir]),
    ConfigError,
    "(--steps is 30 there but 20 in the cell)",
  );
  await write(1, results(1));
  assertEquals((await collectRuns([dir])).runs.length, 4);
  await Deno.remove(dir.replace(/\/sw$/, ""), { recursive: true });
});

Deno.test("planSweep() refuses --backend with --engine cpu at plan time, fixed or swept, in one line naming the cell", () => {
  // The experiment refuses the pair; a sweep of it could be merged but
  // never finished (every cell refused on resume).
  for (
    const [spec, cell] of [
      [{ options: { engine: "cpu", backend: "wasm" } }, "seed-0"],
      [
        { options: { engine: "cpu" }, grid: { backend: ["auto", "wasm"] } },
        "backend-wasm_seed-0",
      ],
    ] as [SweepSpec, string][]
  ) {
    const e = assertThrows(
      () => planSweep(spec, { dir: "d" }),
      ConfigError,
      `Cell ${cell} cannot run: Option --backend wasm picks the tfjs backend, which --engine cpu does not use`,
    );
    assertEquals(e.message.split("\n").length, 1);
  }
});

Deno.test("planSweep() refuses a grid key given twice, as a flag and in camelCase", () => {
  // Before: both spellings were kept; the cells took the product of both
  // lists and the last value won in each (four cells of two settings).
  assertThrows(
    () =>
      planSweep({ grid: { "ar-lr": [1e-3, 2e-3], arLr: [3e-3, 4e-3] } }, {
        dir: "d",
      }),
    ConfigError,
    "The grid gives --ar-lr twice (as arLr and as ar-lr): list its values once",
  );
});

Deno.test("readSweep() names a broken sweep.json in one line, for sweep and merge alike", async () => {
  const { readSweep } = await import("./sweep.ts");
  const dir = await Deno.makeTempDir();
  // Before: the bare "Unexpected end of JSON input"; a record without
  // dir or cells' fields failed later on "undefined"; report --merge took
  // the folder for a run ("no results.json there").
  const record = (why: string) =>
    `${dir}/sweep.json is not a sweep record: ${why}`;
  const cases: [string, string][] = [
    [
      '{"version":1,"cells":[',
      `${dir}/sweep.json is not valid JSON (expected a sweep record): Unexpected end of JSON input`,
    ],
    ['{"version":1,"dir":"x","submissions":[]}', record("no cells")],
    ['{"version":1,"cells":[],"submissions":[]}', record("no dir")],
    [
      '{"version":1,"dir":"x","submissions":[],"cells":[{"index":0}]}',
      record("cell 0 needs index 0, a name, values, out and args"),
    ],
  ];
  for (const [text, line] of cases) {
    await Deno.writeTextFile(`${dir}/sweep.json`, text);
    await assertRejects(() => readSweep(dir), ConfigError, line);
    await assertRejects(() => collectRuns([dir]), ConfigError, line);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a sweep folder moved or copied elsewhere is read at its new place: status, steps and merge use its own cells", async () => {
  const { readSweep } = await import("./sweep.ts");
  const root = await Deno.makeTempDir();
  const planned = await saveSweep(
    planSweep({ options: { preset: "micro", steps: 20 }, seeds: 2 }, {
      dir: `${root}/a`,
    }),
  );
  const finish = async (dir: string, i: number) => {
    const out = `${dir}/cells/seed-${i}`;
    (await new RunFolder(out).start(
      resolveConfig({
        preset: "micro",
        steps: 20,
        seeds: 1,
        firstSeed: i,
        out,
      }),
    ))();
    await Deno.writeTextFile(`${out}/results.json`, "{}");
  };
  await finish(`${root}/a`, 0);
  // A copy next to the original (the original stays), and a move.
  await new Deno.Command("cp", { args: ["-r", `${root}/a`, `${root}/copy`] })
    .output();
  await finish(`${root}/copy`, 1);
  await Deno.rename(`${root}/a`, `${root}/moved`);
  for (const [dir, finished] of [["copy", 2], ["moved", 1]] as const) {
    const s = await readSweep(`${root}/${dir}/`);
    assertEquals(s.dir, `${root}/${dir}`);
    assertEquals(s.cells[1].out, `${root}/${dir}/cells/seed-1`);
    assertEquals(s.cells[1].args.at(-2), `${root}/${dir}/cells/seed-1`);
    // Before: the copy read the original's cells (1 finished), the moved
    // folder read none (0 finished), and a run wrote into the old place.
    const st = await sweepStatus(s);
    assertEquals(
      st.filter((x) => x.state === "finished").length,
      finished,
      dir,
    );
    assertEquals(st[0].log, `${root}/${dir}/logs/seed-0.log`);
    assertStringIncludes(
      cellStep(s, s.cells[0], { experiment: "x" }),
      `--out ${root}/${dir}/cells/seed-0 --resume`,
    );
  }
  // Read where it was planned, spelt otherwise: as saved.
  const b = await saveSweep(planSweep({ seeds: 2 }, { dir: `${root}/b` }));
  assertEquals((await readSweep(`${root}/b/../b`)).cells, b.cells);
  assertEquals(planned.cells[0].out, `${root}/a/cells/seed-0`);
  await Deno.remove(root, { recursive: true });
});

Deno.test("planSweep() refuses a value given twice in two spellings (--set text), before any cell is named", () => {
  // The grid's values are compared once converted: "1e-3" and "0.001" are
  // one learning rate. (A planted comparison of the raw text passed.)
  assertThrows(
    () => planSweep({ grid: { lr: ["1e-3", "0.001"] } }, { dir: "d" }),
    ConfigError,
    "The grid's --lr lists a value twice: 1e-3, 0.001",
  );
  assertThrows(
    () => planSweep({ grid: { steps: ["10", "010"] } }, { dir: "d" }),
    ConfigError,
    "The grid's --steps lists a value twice: 10, 010",
  );
});

Deno.test("checkMergeable() refuses a difference in every option but the process's own, seeds and the swept ones: brute force over the configuration", () => {
  // Independent list of what a merge may ignore (run-folder.md, sweeps.md).
  const free = [
    "backend",
    "logEvery",
    "out",
    "resume",
    "force",
    "seeds",
    "firstSeed",
  ];
  const base = resolveConfig({ preset: "micro" }) as unknown as Record<
    string,
    unknown
  >;
  const run = (dir: string, config: Record<string, unknown>): MergedRun => ({
    dir,
    name: dir,
    values: {},
    result: {
      config,
      data: { source: "wt2", trainTokens: 10, testTokens: 5 },
      tokenizer: { id: "byte", vocabSize: 260 },
      results: [],
    } as never,
  });
  const other = (v: unknown) =>
    typeof v === "number" ? v + 1 : typeof v === "boolean" ? !v : `${v}x`;
  let compared = 0;
  for (const key of Object.keys(base)) {
    const b = run("b", { ...base, [key]: other(base[key]) });
    if (free.includes(key)) {
      checkMergeable([run("a", base), b], ["seed"]);
      continue;
    }
    assertThrows(
      () => checkMergeable([run("a", base), b], ["seed"]),
      ConfigError,
      "Cannot merge a and b: --",
      key,
    );
    // Swept: allowed.
    checkMergeable([run("a", base), b], [key, "seed"]);
    compared++;
  }
  assert(compared > 40, `${compared} options compared`);
});

Deno.test("groupRows() groups by every swept key: lr × dropout × 3 seeds is four groups of three seeds", async () => {
  const { groupRows } = await import("./merge.ts");
  const runs: MergedRun[] = [];
  for (const lr of [1e-3, 2e-3]) {
    for (const dropout of [0, 0.1]) {
      for (const seed of [0, 1, 2]) {
        runs.push({
          dir: `/nonexistent/${lr}-${dropout}-${seed}`,
          name: `${lr}-${dropout}-${seed}`,
          values: { lr, dropout, seed },
          result: {
            results: [{
              model: "ar",
              seed,
              test: { bpt: 1000 * lr + dropout + seed / 100 },
              generation: { genPpl: 1, speed: { batchesPerSecond: 1 } },
            }],
          } as never,
        });
      }
    }
  }
  const rows = groupRows({
    runs,
    swept: ["lr", "dropout", "seed"],
    unfinished: [],
  });
  // (A planted key of the first swept option only made two groups of six.)
  assertEquals(rows.map((r) => [r.group, r.seeds]), [
    ["lr 0.001, dropout 0", [0, 1, 2]],
    ["lr 0.001, dropout 0.1", [0, 1, 2]],
    ["lr 0.002, dropout 0", [0, 1, 2]],
    ["lr 0.002, dropout 0.1", [0, 1, 2]],
  ]);
  for (const r of rows) {
    const [lr, dropout] = r.group.match(/[\d.]+/g)!.map(Number);
    assertAlmostEquals(r.bpt.mean, 1000 * lr + dropout + 0.01, 1e-12);
  }
});

Deno.test("writeMergedReport() prints each group's range lowest–highest and best, and names the unfinished cells", async () => {
  const bpts = [5.25, 4.5, 6.125];
  const runs = bpts.map((bpt, seed): MergedRun => ({
    dir: `/nonexistent/${seed}`,
    name: `seed-${seed}`,
    values: { seed },
    result: {
      config: resolveConfig({ preset: "micro" }),
      data: { source: "wt2", trainTokens: 10, testTokens: 5 },
      tokenizer: { id: "byte", vocabSize: 260 },
      engine: "cpu",
      results: [{
        model: "ar",
        seed,
        test: { bpt, nll: 3 },
        generation: { genPpl: 300, entropy: 4, speed: { batchesPerSecond: 1 } },
        training: { seconds: 1 },
      }],
    } as never,
  }));
  const out = await Deno.makeTempDir();
  const md = await writeMergedReport({
    runs,
    swept: ["seed"],
    unfinished: ["/nonexistent/3"],
  }, out);
  // mean 5.2917, sd 0.8128 (by hand: deviations −0.0417, −0.7917, 0.8333).
  assertStringIncludes(
    md,
    "| AR | 3 (0, 1, 2) | 5.29 ± 0.81 | 4.50 | 4.50–6.13 | 300.0 | 1.000 |",
  );
  assertStringIncludes(md, "Not finished, left out: `/nonexistent/3`.");
  await Deno.remove(out, { recursive: true });
});

Deno.test("collectRuns() leaves a sweep's unfinished cells out and names them", async () => {
  const dir = `${await Deno.makeTempDir()}/sw`;
  const sweep = await saveSweep(
    planSweep({ options: { preset: "micro" }, seeds: 3 }, { dir }),
  );
  for (const i of [0, 2]) {
    const c = sweep.cells[i];
    await Deno.mkdir(c.out, { recursive: true });
    await Deno.writeTextFile(
      `${c.out}/results.json`,
      JSON.stringify({
        config: resolveConfig({
          preset: "micro",
          seeds: 1,
          firstSeed: i,
          out: c.out,
        }),
        data: { source: "wt2", trainTokens: 10, testTokens: 5 },
        tokenizer: { id: "byte", vocabSize: 260 },
        results: [{ model: "ar", seed: i }],
      }),
    );
  }
  const m = await collectRuns([dir]);
  assertEquals(m.runs.map((r) => r.name), ["seed-0", "seed-2"]);
  assertEquals(m.unfinished, [`${dir}/cells/seed-1`]);
  await Deno.remove(dir.replace(/\/sw$/, ""), { recursive: true });
});

Deno.test("sbatchScript() refuses extra #SBATCH lines that set the array or a dependency, in one line", () => {
  const s = planSweep({ seeds: 2 }, { dir: "/s/w" });
  const script = (extra: string[]) => () =>
    sbatchScript(s, { workdir: "/", experiment: "x", extra });
  // Before: written after the sweep's own --array=0-1 and taking effect
  // (Slurm reads the last): task 5 ran "no cell 5 in this sweep".
  assertThrows(
    script(["--array=5"]),
    ConfigError,
    'Option --sbatch cannot set --array (got "--array=5"): the sweep sets the array',
  );
  for (
    const l of ["#SBATCH -a 0-9", "--dependency=afterany:7", "-d afterok:1"]
  ) {
    assertThrows(script([l]), ConfigError, "Option --sbatch cannot set");
  }
  // sbatch takes any unique prefix of a long option (getopt): these passed.
  for (
    const [l, o] of [
      ["--arr=0-3", "--array"],
      ["#SBATCH --ar 0-3", "--array"],
      ["--a=1", "--array"],
      ["--dep=afterok:1", "--dependency"],
      ["--dependenc afterok:1", "--dependency"],
      ["-a5", "-a"],
      ["-dafterok:1", "-d"],
    ]
  ) {
    assertThrows(
      script([l]),
      ConfigError,
      `Option --sbatch cannot set ${o} (got "${l}")`,
    );
  }
  for (
    const l of [
      "--account=a",
      "--array-x",
      "-A proj",
      "--mem=4G",
      "--deadline=now",
      "--arrays=2",
      "--delay-boot=5",
    ]
  ) {
    assertStringIncludes(
      script([l])(),
      l.replace(/^--/, "#SBATCH --").replace(/^-A/, "#SBATCH -A"),
    );
  }
});

Deno.test("planSweep() refuses a cell name longer than a file name holds, before anything runs", () => {
  // Before: planned; the name failed only when a cell ran (its folder,
  // log and exit-code files are longer than a file name).
  const long = `/tmp/${"d".repeat(120)}`;
  assertThrows(
    () =>
      planSweep({
        grid: { initFrom: [`${long}/a`, `${long}/b`], data: [`${long}/c`] },
      }, { dir: "d" }),
    ConfigError,
    "bytes, more than a folder name holds (250)",
  );
  // 250 bytes is fine: init-from- (10) + 233 + _seed-0 (7).
  const s = planSweep({ grid: { initFrom: [`/${"e".repeat(232)}`] } }, {
    dir: "d",
  });
  assertEquals(new TextEncoder().encode(s.cells[0].name).length, 250);
});

Deno.test("sweepStatus() reads a cell with results.json as finished, as the cells' step does, even when its config.json is gone or unreadable", async () => {
  const dir = await Deno.makeTempDir();
  const s = await saveSweep(planSweep({ seeds: 3 }, { dir }));
  for (const i of [0, 1, 2]) {
    const out = s.cells[i].out;
    (await new RunFolder(out).start(
      resolveConfig({ seeds: 1, firstSeed: i, out }),
    ))();
    await Deno.writeTextFile(`${out}/results.json`, "{}");
  }
  await Deno.writeTextFile(`${s.cells[1].out}/config.json`, '{"lr": ');
  await Deno.remove(`${s.cells[2].out}/config.json`);
  // Before: pending, and re-submitted to Slurm, where the step skipped it
  // as finished and the merge took its results.
  assertEquals((await sweepStatus(s)).map((x) => x.state), [
    "finished",
    "finished",
    "finished",
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseSeeds() refuses seeds of a spec file that are no count, text or list, in one line", async () => {
  const { parseSeeds } = await import("./sweep.ts");
  // Before: "text.split is not a function" for an object or true.
  for (const seeds of [{}, true, { from: 0 }]) {
    assertThrows(
      () => parseSeeds(seeds as never),
      ConfigError,
      `Option --seeds must be a count N (seeds 0..N−1), a range A..B or a list A,B,… of integers in [0, 1000], got ${
        JSON.stringify(seeds)
      }`,
    );
  }
});

// `--seeds 1,1` got the general line ("must be a count N …, a range A..B or
// a list A,B,…"), which it is; the repeat is now named.
Deno.test("parseSeeds() names a seed given twice, in a list or a spec file's array, and still takes distinct seeds in any order", async () => {
  const { parseSeeds } = await import("./sweep.ts");
  for (
    const [seeds, twice] of [
      ["1,1", 1],
      ["0, 3,0", 0],
      ["2,5,7,5", 5],
      [[4, 4], 4],
    ] as const
  ) {
    assertThrows(
      () => parseSeeds(seeds as string | number[]),
      ConfigError,
      `Option --seeds gives seed ${twice} twice (${
        JSON.stringify(seeds)
      }): a seed is one cell, list each once`,
    );
  }
  assertEquals(parseSeeds("5,0,3"), [5, 0, 3]);
  assertEquals(parseSeeds([2, 1]), [2, 1]);
  // A list that is no list of seeds keeps the general line.
  assertThrows(() => parseSeeds("1,1,x"), ConfigError, "must be a count N");
});

Deno.test("sweepStatus() reads a cell's exit file bounded: an oversized one is no exit code", async () => {
  const root = await Deno.makeTempDir();
  const sweep = await saveSweep(planSweep({ seeds: 2 }, { dir: `${root}/sw` }));
  const p = sweepPaths(sweep.dir);
  await Deno.mkdir(`${sweep.dir}/logs`, { recursive: true });
  await Deno.writeTextFile(p.exit(sweep.cells[0]), "1\n");
  // A number padded past any exit code: read whole, it said "failed".
  await Deno.writeTextFile(p.exit(sweep.cells[1]), "1" + " ".repeat(1 << 21));
  assertEquals(
    (await sweepStatus(sweep)).map((s) => [s.state, s.exitCode]),
    [["failed", 1], ["pending", undefined]],
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("recordSubmission() serialises writers of sweep.json under a lock: none is lost, a stale lock is taken over", async () => {
  const root = await Deno.makeTempDir();
  const dir = `${root}/sw`;
  await saveSweep(planSweep({ seeds: 2 }, { dir }));
  // Eight at once: each reads, adds its own and writes back.
  await Promise.all(
    Array.from(
      { length: 8 },
      (_, i) => recordSubmission(dir, { on: "slurm", jobId: String(i) }),
    ),
  );
  assertEquals(
    (await readSweep(dir)).submissions.map((s) => s.jobId).sort(),
    ["0", "1", "2", "3", "4", "5", "6", "7"],
  );
  // A lock left by a process that is gone is taken over, and let go.
  await Deno.writeTextFile(`${dir}/sweep.json.lock`, '{"pid": 2147483646}\n');
  await recordSubmission(dir, { on: "local --jobs 1" });
  assertEquals((await readSweep(dir)).submissions.length, 9);
  // Nothing left beside sweep.json: no lock, no temporary file.
  assertEquals(
    [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
    ["logs", "sweep.json"],
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("runLocal() prints each failed cell once (its log line), not again from the cell's step", async () => {
  const root = await Deno.makeTempDir();
  const dir = `${root}/sw`;
  await saveSweep(planSweep({ seeds: 2 }, { dir }));
  // A process of its own: the step's stderr is the process's.
  const code = `
    import { readSweep, runLocal } from ${
    JSON.stringify(new URL("./mod.ts", import.meta.url).href)
  };
    await runLocal(await readSweep(${
    JSON.stringify(dir)
  }), { jobs: 1, workdir: ${JSON.stringify(root)}, experiment: "false" });
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, stderr);
  for (const name of ["seed-0", "seed-1"]) {
    assertEquals(
      stderr.split("\n").filter((l) => l.includes(`cell ${name}: failed`)),
      [`cell ${name}: failed (exit 1), log ${dir}/logs/${name}.log`],
    );
  }
  // The step Slurm runs still prints it (no runLocal there to log it).
  const sweep = planSweep({ seeds: 1 }, { dir });
  assertStringIncludes(
    cellStep(sweep, sweep.cells[0], { experiment: "false" }),
    `echo 'cell seed-0: failed (exit '"$rc"'), log ${dir}/logs/seed-0.log' >&2`,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("runLocal() reports a cell another live run holds as busy, not failed, and runs no later wave", async () => {
  const root = await Deno.makeTempDir();
  const planned = planSweep({ seeds: 2 }, { dir: `${root}/sw` });
  planned.cells[1].wave = 1;
  const sweep = await saveSweep(planned);
  // Another run holds seed-0 (here: this process, alive); the attempt
  // here fails as the experiment does on a locked folder.
  await Deno.mkdir(sweep.cells[0].out, { recursive: true });
  const release = await new RunFolder(sweep.cells[0].out).lock();
  const lines: string[] = [];
  const busy: string[] = [];
  const failed = await runLocal(sweep, {
    jobs: 1,
    workdir: root,
    experiment: "false",
    log: (l) => lines.push(l),
    onBusy: (c) => busy.push(c.name),
  });
  release();
  assertEquals(failed, []);
  assertEquals(busy, ["seed-0"]);
  assertEquals(lines, [
    `cell seed-0: busy: in use by another run (pid ${Deno.pid}), left to it`,
    "cell seed-1: not run (cell seed-0 of an earlier wave is busy in another run)",
  ]);
  // This attempt's exit code is not the cell's: status does not call it failed.
  assertEquals((await sweepStatus(sweep)).map((s) => s.state), [
    "pending",
    "pending",
  ]);
  // Not held: the same exit is a failure.
  assertEquals(
    (await runLocal(sweep, {
      jobs: 1,
      workdir: root,
      experiment: "false",
      log: () => {},
    })).map((c) => c.name),
    ["seed-0", "seed-1"],
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("the Slurm array task of a cell another live run holds leaves it busy, as runLocal does: no exit code kept, exit 75", async () => {
  const root = await Deno.makeTempDir();
  const sweep = await saveSweep(planSweep({ seeds: 1 }, { dir: `${root}/sw` }));
  await Deno.mkdir(sweep.cells[0].out, { recursive: true });
  const release = await new RunFolder(sweep.cells[0].out).lock();
  // The experiment refused as it is on a held folder: FOLDER_BUSY_EXIT.
  const script = sbatchScript(sweep, {
    workdir: root,
    experiment: `bash -c 'exit ${FOLDER_BUSY_EXIT}'`,
  });
  const task = await new Deno.Command("bash", {
    args: ["-c", script],
    env: { SLURM_ARRAY_TASK_ID: "0" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  release();
  assertEquals(task.code, FOLDER_BUSY_EXIT);
  assertEquals(
    new TextDecoder().decode(task.stderr).trim(),
    `cell seed-0: busy: in use by another run (pid ${Deno.pid}), left to it`,
  );
  // The attempt's code is not the cell's: status does not call it failed.
  assertEquals((await sweepStatus(sweep)).map((s) => s.state), ["pending"]);
  // runLocal reads the same code as busy even once the holder has gone.
  const busy: string[] = [];
  const lines: string[] = [];
  assertEquals(
    await runLocal(sweep, {
      jobs: 1,
      workdir: root,
      experiment: `bash -c 'exit ${FOLDER_BUSY_EXIT}'`,
      log: (l) => lines.push(l),
      onBusy: (c) => busy.push(c.name),
    }),
    [],
  );
  assertEquals([busy, lines], [["seed-0"], [
    "cell seed-0: busy: in use by another run, left to it",
  ]]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("planSweep() counts the cells before building them: 300 × 300 values × 1,001 seeds is refused in one line at once; 10,000 are planned", () => {
  const values = (n: number, base: number) =>
    Array.from({ length: n }, (_, i) => base + i * 1e-5);
  const started = performance.now();
  assertThrows(
    () =>
      planSweep({
        grid: { lr: values(300, 1e-3), weightDecay: values(300, 1e-2) },
        seeds: "0..1000",
      }, { dir: "runs/big" }),
    ConfigError,
    "The sweep would have 90,090,000 cells (300 × 300 × 1001, the grid's values times the seeds); a sweep takes at most 10,000",
  );
  assert(performance.now() - started < 1_000, "refused before expanding");
  const s = planSweep({
    grid: { lr: values(100, 1e-3), weightDecay: values(100, 1e-2) },
  }, { dir: "runs/big" });
  assertEquals(s.cells.length, 10_000);
});

// recordSubmission rewrote sweep.json without saveSweep's size check: a
// sweep just under the limit became unreadable after a submission.
Deno.test("recordSubmission() refuses a record that would take sweep.json past what readSweep reads back, leaving it readable", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/sw`;
    // A study's cells (script): an experiment's cells must be its spec's.
    const sweep = {
      ...planSweep({ grid: { lr: [1e-3, 2e-3] } }, { dir }),
      script: "examples/study.ts",
    };
    // The file holds its plan's hash too (64 hex digits).
    const size = () =>
      new TextEncoder().encode(
        JSON.stringify({ ...sweep, planHash: "0".repeat(64) }, null, 2) + "\n",
      ).length;
    sweep.cells[0].args.push("");
    sweep.cells[0].args[sweep.cells[0].args.length - 1] = "x".repeat(
      SWEEP_FILE_LIMIT - size() - 16,
    );
    await saveSweep(sweep);
    await assertRejects(
      () => recordSubmission(dir, { on: "slurm", jobId: "42" }),
      ConfigError,
      `Cannot record the submission of job 42 in ${dir}: its sweep.json would be `,
    );
    assertEquals((await readSweep(dir)).submissions, []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("saveSweep() refuses a sweep whose sweep.json readSweep could not read back (over 64 MiB), making nothing", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/sw`;
    const sweep = planSweep({ grid: { lr: [1e-3, 2e-3] } }, { dir });
    sweep.cells[0].args.push("x".repeat(64 << 20));
    await assertRejects(
      () => saveSweep(sweep),
      ConfigError,
      `Cannot make a sweep in ${dir}: its sweep.json would be `,
    );
    await assertRejects(
      () => saveSweep(sweep),
      ConfigError,
      " bytes, more than the 64.0 MiB a sweep is read back to: sweep fewer cells or shorter values",
    );
    assertEquals(await Array.fromAsync(Deno.readDir(root)), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

// `sweep run --on slurm --partition $'gpu\nrm -rf ~'` wrote "rm -rf ~" as a
// line of the job script, run by every array task.
Deno.test("sbatchScript() refuses a line break in what it writes unquoted (--partition, --time, --sbatch, the sweep's folder), naming the option", () => {
  const s = planSweep({ seeds: 2 }, { dir: "/s/w" });
  const cases: [Record<string, unknown>, string][] = [
    [
      { partition: "gpu\nrm -rf ~" },
      '--partition holds a control character ("gpu\\nrm -rf ~")',
    ],
    [{ time: "1:00:00\rx" }, "--time holds a control character"],
    [
      { extra: ["--mem=1G", "--qos=x\n--wrap=id"] },
      "--sbatch holds a control character",
    ],
  ];
  for (const [options, fragment] of cases) {
    assertThrows(
      () => sbatchScript(s, { workdir: "/", experiment: "x", ...options }),
      ConfigError,
      `Option ${fragment}`,
    );
  }
  const moved = planSweep({ seeds: 2 }, { dir: "/s/w\nid" });
  assertThrows(
    () => sbatchScript(moved, { workdir: "/", experiment: "x" }),
    ConfigError,
    "Option --dir holds a control character",
  );
  const ok = sbatchScript(s, {
    workdir: "/",
    experiment: "x",
    partition: "gpu",
    time: "1:00:00",
  });
  assertStringIncludes(ok, "#SBATCH --partition=gpu\n#SBATCH --time=1:00:00\n");
  // The lines of a file (`--sbatch "$(cat extra.sbatch)"`): its other
  // comments are left out, not written as `#SBATCH #!/bin/bash`.
  const file = sbatchScript(s, {
    workdir: "/",
    experiment: "x",
    extra: [
      "#!/bin/bash",
      "# memory for the big cells",
      "--qos=long",
      "#SBATCH --mem=1G",
    ],
  });
  assertStringIncludes(file, "#SBATCH --qos=long\n#SBATCH --mem=1G\n");
  assert(!file.includes("#SBATCH #"), file);
});

// The cells' command line (--deno and the checkout's path) went into the
// job script and `bash -c` unquoted: `--deno $'/opt/my deno/deno\necho PWNED'`
// wrote "echo PWNED run -A …" as a command of its own, and a path with a
// space broke every cell.
Deno.test("sweepCommand() quotes --deno and the script's path: a space or a line break in them stays inside one word of the job script", () => {
  const s = planSweep({ seeds: 2 }, { dir: "/s/w" });
  const command = sweepCommand(s, "/opt/my deno/deno", "/a b");
  const script = sbatchScript(s, { workdir: "/", experiment: command });
  assertStringIncludes(
    script,
    "\n    '/opt/my deno/deno' run -A '/a b/examples/experiment.ts' --seeds 1",
  );
  // What bash makes of it: the same words.
  const words = new Deno.Command("bash", {
    args: ["-c", `printf '%s|' ${command}`],
  }).outputSync();
  assertEquals(
    new TextDecoder().decode(words.stdout),
    "/opt/my deno/deno|run|-A|/a b/examples/experiment.ts|",
  );
  // A line break: refused, naming the option (the script indents its lines).
  for (
    const [deno, root, what] of [["deno\necho PWNED", "/a", "Option --deno"], [
      "deno",
      "/a\nb",
      "The checkout's path",
    ]]
  ) {
    assertThrows(
      () => sweepCommand(s, deno, root),
      ConfigError,
      `${what} holds a control character`,
    );
  }
});

Deno.test("writeMergedReport() prints each cell's figures to their digits and writes merged.json as indented JSON with a final newline", async () => {
  const run: MergedRun = {
    dir: "/nonexistent/first",
    name: "first",
    values: { seed: 0 },
    result: {
      config: resolveConfig({ preset: "micro" }),
      data: { source: "wt2", trainTokens: 10, testTokens: 5 },
      tokenizer: { id: "byte", vocabSize: 260 },
      engine: "cpu",
      results: [{
        model: "ar",
        seed: 0,
        test: { bpt: 5.25, nll: 3.125 },
        generation: {
          genPpl: 123.456,
          entropy: 4.56789,
          speed: { batchesPerSecond: 1.23456 },
        },
        training: { seconds: 12.6 },
      }],
    } as never,
  };
  const out = await Deno.makeTempDir();
  try {
    const md = await writeMergedReport(
      { runs: [run], swept: ["seed"], unfinished: [] },
      out,
    );
    // gen PPL to 1 digit, entropy 2, batches/s 3, training seconds 0.
    assertStringIncludes(
      md,
      "| first | AR | 0 | 5.25 | 3.13 | 123.5 | 4.57 | 1.235 | 13 |",
    );
    const text = await Deno.readTextFile(`${out}/merged.json`);
    assert(text.startsWith('{\n  "runs": [\n    "/nonexistent/first"\n  ],'));
    assert(text.endsWith("\n}\n"));
    const merged = JSON.parse(text);
    assertEquals([merged.runs, merged.swept], [["/nonexistent/first"], [
      "seed",
    ]]);
    assertEquals(merged.rows.map((r: { seeds: number[] }) => r.seeds), [[0]]);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("collectRuns() names a plain run folder by its last path segment, a trailing slash dropped", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dirs = [`${root}/x/first`, `${root}/y/second`];
    for (const [i, dir] of dirs.entries()) {
      await Deno.mkdir(dir, { recursive: true });
      await Deno.writeTextFile(
        `${dir}/results.json`,
        JSON.stringify({
          config: resolveConfig({
            preset: "micro",
            seeds: 1,
            firstSeed: i,
            out: dir,
          }),
          data: { source: "wt2", trainTokens: 10, testTokens: 5 },
          tokenizer: { id: "byte", vocabSize: 260 },
          results: [{ model: "ar", seed: i }],
        }),
      );
    }
    const m = await collectRuns([dirs[0], `${dirs[1]}/`], { log: () => {} });
    assertEquals(m.runs.map((r) => [r.dir, r.name]), [
      [dirs[0], "first"],
      [dirs[1], "second"],
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

// Found by the ☼ mutation pass: no test had a seed at 1000 or past it, a
// one-seed range, or a study sweep read back.
Deno.test("parseSeeds() takes seeds up to 1000 and a one-seed range A..A, and refuses 1001 as a range's end or in a list", async () => {
  const { parseSeeds } = await import("./sweep.ts");
  assertEquals(parseSeeds("3..3"), [3]);
  assertEquals(parseSeeds("999..1000"), [999, 1000]);
  assertEquals(parseSeeds("0,1000"), [0, 1000]);
  assertEquals(parseSeeds([1000]), [1000]);
  for (const seeds of ["0..1001", "1001..1001", "0,1001", [1001]]) {
    assertThrows(
      () => parseSeeds(seeds),
      ConfigError,
      `integers in [0, 1000], got ${JSON.stringify(seeds)}`,
    );
  }
});

Deno.test("sweepCommand() leaves a Deno path under ~/ or $HOME/ to the node's shell, the rest quoted", () => {
  const sweep = planSweep({ seeds: 1 }, { dir: "runs/s" });
  assertEquals(
    sweepCommand(sweep, "~/.deno/bin/deno", "/r"),
    "~/.deno/bin/deno run -A /r/examples/experiment.ts",
  );
  assertEquals(
    sweepCommand(sweep, "$HOME/my deno", "/r"),
    `"$HOME"/'my deno' run -A /r/examples/experiment.ts`,
  );
  assertEquals(
    sweepCommand(sweep, "${HOME}/d", "/r"),
    `"$HOME"/d run -A /r/examples/experiment.ts`,
  );
});

Deno.test("studySweep() is saved as version 1 and read back; swept are the values that differ, a constant one is not", async () => {
  const { studySweep } = await import("./sweep.ts");
  await using tmp = await tempDir();
  const dir = `${tmp.path}/st`;
  const cells = ["a", "b", "c"].map((v, i) => ({
    name: v,
    values: { variant: v, model: "ar", steps: i < 2 ? 10 : 20, seed: 0 },
    out: `${dir}/${v}`,
    args: ["--variant", v],
  }));
  const sweep = await saveSweep(studySweep(dir, "examples/ablate.ts", cells));
  assertEquals(sweep.swept, ["variant", "steps"]);
  assertEquals(await readSweep(dir), sweep);
  assertEquals(
    JSON.parse(await Deno.readTextFile(`${dir}/sweep.json`)).version,
    1,
  );
});

Deno.test("saveSweep() makes a study's sweep in a folder that already holds its cells' own folders, and refuses one holding another", async () => {
  const { studySweep } = await import("./sweep.ts");
  await using tmp = await tempDir();
  const dir = `${tmp.path}/st`;
  const study = (d: string) =>
    studySweep(
      d,
      "examples/ablate.ts",
      ["a", "b"].map((v) => ({
        name: v,
        values: { variant: v },
        out: `${d}/${v}`,
        args: ["--variant", v],
      })),
    );
  // The study ran its variant "a" before it was made a sweep.
  await Deno.mkdir(`${dir}/a`, { recursive: true });
  await saveSweep(study(dir));
  assertEquals((await readSweep(dir)).cells.map((c) => c.out), [
    `${dir}/a`,
    `${dir}/b`,
  ]);
  await using otherTmp = await tempDir();
  const other = `${otherTmp.path}/st`;
  await Deno.mkdir(`${other}/notes`, { recursive: true });
  await assertRejects(
    () => saveSweep(study(other)),
    ConfigError,
    `Cannot make a sweep in ${other}: it holds other files (notes)`,
  );
});

Deno.test("saveSweep() saves a sweep.json of exactly 64 MiB, which readSweep reads back, and refuses one byte more", async () => {
  const root = await Deno.makeTempDir();
  try {
    for (
      const [extra, dir] of [[0, `${root}/at`], [1, `${root}/over`]] as const
    ) {
      // A study's cells (script): an experiment's cells must be its spec's.
      const sweep = {
        ...planSweep({ seeds: 1 }, { dir }),
        script: "examples/study.ts",
      };
      // The file holds its plan's hash too (64 hex digits).
      const size = () =>
        new TextEncoder().encode(
          JSON.stringify({ ...sweep, planHash: "0".repeat(64) }, null, 2) +
            "\n",
        ).length;
      sweep.cells[0].args.push("");
      const pad = SWEEP_FILE_LIMIT - size() + extra;
      sweep.cells[0].args[sweep.cells[0].args.length - 1] = "x".repeat(pad);
      assertEquals(size(), SWEEP_FILE_LIMIT + extra);
      if (extra === 0) {
        await saveSweep(sweep);
        assertEquals((await readSweep(dir)).cells[0].args.at(-1)!.length, pad);
      } else {
        await assertRejects(
          () => saveSweep(sweep),
          ConfigError,
          `its sweep.json would be ${
            (SWEEP_FILE_LIMIT + 1).toLocaleString("en")
          } bytes`,
        );
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("cellStep()'s own lines: a failed cell's on stderr, none for a finished one; a busy cell's without grep's complaint when no lock is left", async () => {
  const dir = await Deno.makeTempDir();
  const s = planSweep({ seeds: 1 }, { dir });
  const run = async (experiment: string) => {
    const out = await new Deno.Command("bash", {
      args: ["-c", cellStep(s, s.cells[0], { experiment })],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return [out.code, new TextDecoder().decode(out.stderr)];
  };
  assertEquals(await run("true"), [0, ""]);
  assertEquals(await run("false"), [
    1,
    `cell seed-0: failed (exit 1), log ${dir}/logs/seed-0.log\n`,
  ]);
  // Refused as busy, but the holder's lock already gone: no pid, and
  // nothing of grep's on the terminal.
  assertEquals(await run(`f() { return ${FOLDER_BUSY_EXIT}; }; f`), [
    FOLDER_BUSY_EXIT,
    "cell seed-0: busy: in use by another run, left to it\n",
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sbatchScript() writes its cells as sorted runs of consecutive ids, in whatever order they are given", () => {
  const s = planSweep({ seeds: "0..9" }, { dir: "/s/w" });
  const array = (cells: number[]) =>
    sbatchScript(s, { workdir: "/r", experiment: "x", cells })
      .split("\n").find((l) => l.startsWith("#SBATCH --array="));
  assertEquals(array([0, 1, 2, 4, 5, 7]), "#SBATCH --array=0-2,4-5,7");
  assertEquals(array([7, 5, 2, 0, 4, 1]), "#SBATCH --array=0-2,4-5,7");
  assertEquals(array([9]), "#SBATCH --array=9");
  assertEquals(array([8, 9]), "#SBATCH --array=8-9");
});

Deno.test("sweepStatus() reads an exit file of 64 bytes (the code padded), not one of 65", async () => {
  const root = await Deno.makeTempDir();
  const sweep = await saveSweep(planSweep({ seeds: 2 }, { dir: `${root}/sw` }));
  const p = sweepPaths(sweep.dir);
  await Deno.mkdir(`${sweep.dir}/logs`, { recursive: true });
  await Deno.writeTextFile(p.exit(sweep.cells[0]), "1".padEnd(64));
  await Deno.writeTextFile(p.exit(sweep.cells[1]), "1".padEnd(65));
  assertEquals(
    (await sweepStatus(sweep)).map((s) => [s.state, s.exitCode]),
    [["failed", 1], ["pending", undefined]],
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("sweepStatus() counts every seed of a cell's run: two seeds of two models trained to the end are 100%", async () => {
  const dir = await Deno.makeTempDir();
  const s = await saveSweep(planSweep({ seeds: 1 }, { dir }));
  const out = s.cells[0].out;
  const release = await new RunFolder(out).start(
    resolveConfig({ preset: "micro", steps: 25, seeds: 2, out }),
  );
  const rows = ["ar", "d3pm"].flatMap((model) =>
    [0, 1].map((seed) => JSON.stringify({ model, seed, step: 25, loss: 5 }))
  );
  await Deno.writeTextFile(`${out}/metrics.jsonl`, rows.join("\n") + "\n");
  const [st] = await sweepStatus(s);
  release();
  assertEquals([st.steps, st.totalSteps], [100, 100]);
  assertStringIncludes(statusLine(st), "seed-0 100% (100/100 steps");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sweepStatus() takes exit 127 as failed, 128 and above as interrupted (a signal's 128 + n)", async () => {
  const root = await Deno.makeTempDir();
  const sweep = await saveSweep(planSweep({ seeds: 3 }, { dir: `${root}/sw` }));
  const p = sweepPaths(sweep.dir);
  await Deno.mkdir(`${sweep.dir}/logs`, { recursive: true });
  for (const [i, code] of [[0, 127], [1, 128], [2, 129]]) {
    await Deno.writeTextFile(p.exit(sweep.cells[i]), `${code}\n`);
  }
  assertEquals(
    (await sweepStatus(sweep)).map((s) => [s.state, s.exitCode]),
    [["failed", 127], ["pending", 128], ["pending", 129]],
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("statusLine() gives no percentage before a run has steps, and calls a pending cell interrupted only once it trained a step", () => {
  const cell = planSweep({ seeds: 1 }, { dir: "runs/s" }).cells[0];
  const log = "runs/s/logs/seed-0.log";
  const line = (steps: number, totalSteps: number) =>
    statusLine({ cell, state: "pending", steps, totalSteps, log });
  assertEquals(line(0, 0), "  0  pending   seed-0");
  assertEquals(line(0, 1), "  0  pending   seed-0 0% (0/1 steps)");
  assertEquals(
    line(1, 1),
    `  0  pending   seed-0 100% (1/1 steps) (interrupted: a re-run resumes it; log ${log})`,
  );
});

Deno.test("startOrder() keeps the sweep's order among cells of equal cost", async () => {
  const { startOrder } = await import("./sweep.ts");
  const s = planSweep({ options: { preset: "micro" }, seeds: "0..9" }, {
    dir: "runs/s",
  });
  assertEquals(
    startOrder(s, s.cells).map((c) => c.index),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
});

Deno.test("runLocal() logs each finished cell's whole seconds, rounded, from its own start", async () => {
  const root = await Deno.makeTempDir();
  const sweep = await saveSweep(planSweep({ seeds: 2 }, { dir: `${root}/sw` }));
  // The clock runLocal reads: each cell's start and end, in turn (jobs 1).
  const ticks = [5_000, 7_500, 10_000, 11_499.5];
  const now = performance.now;
  performance.now = () => ticks.shift() ?? now.call(performance);
  const lines: string[] = [];
  try {
    assertEquals(
      await runLocal(sweep, {
        jobs: 1,
        workdir: root,
        experiment: "true",
        log: (l) => lines.push(l),
      }),
      [],
    );
  } finally {
    performance.now = now;
  }
  // 2.5 s rounds up to 3, 1.4995 s down to 1.
  assertEquals(lines, ["cell seed-0: done (3 s)", "cell seed-1: done (1 s)"]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("runLocal() runs no later wave after one failed cell of an earlier one", async () => {
  const root = await Deno.makeTempDir();
  const planned = planSweep({ seeds: 3 }, { dir: `${root}/sw` });
  planned.cells[2].wave = 1;
  const sweep = await saveSweep(planned);
  const lines: string[] = [];
  // Seed 1 fails, seed 0 finishes; seed 2 waits on both.
  const failed = await runLocal(sweep, {
    jobs: 1,
    workdir: root,
    experiment: `f() { case "$*" in *"first-seed 1"*) return 1;; esac; }; f`,
    log: (l) => lines.push(l),
  });
  assertEquals(failed.map((c) => c.name), ["seed-1", "seed-2"]);
  assertEquals(lines.at(-1), "cell seed-2: not run (an earlier wave failed)");
  // Never started: no log of its own.
  assertEquals(
    await Deno.stat(`${sweep.dir}/logs/seed-2.log`).then(() => 1, () => 0),
    0,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("sweepStatus() streams a cell's metrics log, keeping the last step per model and seed (never MetricsLog.read: every record of every cell held at once)", async () => {
  const dir = await Deno.makeTempDir();
  const read = MetricsLog.read;
  try {
    const s = await saveSweep(
      planSweep({ options: { preset: "micro", steps: 25 }, seeds: 1 }, {
        dir,
      }),
    );
    const out = s.cells[0].out;
    (await new RunFolder(out).start(
      resolveConfig({ preset: "micro", steps: 25, seeds: 1, out }),
    ))();
    await Deno.writeTextFile(
      `${out}/metrics.jsonl`,
      [
        ...Array.from({ length: 30 }, (_, k) => ({
          model: "ar",
          seed: 0,
          step: k + 1,
          loss: 5,
        })),
        { model: "d3pm", seed: 0, step: 7, loss: 5 },
        { model: "d3pm", seed: 0, step: 7, valid: 5 },
      ].map((l) => JSON.stringify(l)).join("\n") + "\n",
    );
    MetricsLog.read = () => {
      throw new Error("MetricsLog.read holds the whole log");
    };
    const [st] = await sweepStatus(s);
    assertEquals([st.steps, st.totalSteps, st.at], [
      25 + 7,
      50,
      "d3pm seed 0 step 7",
    ]);
  } finally {
    MetricsLog.read = read;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a cell whose lock names another host's process is 'held' there, not 'running': runLocal's busy line and sweep status name the holder's host and boot and the way out; a lock of this host's name from an earlier boot leaves the cell pending", async () => {
  if (Deno.build.os !== "linux") return;
  const root = await Deno.makeTempDir();
  const sweep = await saveSweep(planSweep({ seeds: 1 }, { dir: `${root}/sw` }));
  const [cell] = sweep.cells;
  await Deno.mkdir(cell.out, { recursive: true });
  const lockPath = new RunFolder(cell.out).lockPath;
  const gone = new Deno.Command("true").spawn();
  await gone.status;
  const boot = crypto.randomUUID();
  const lock = (hostname: string) =>
    Deno.writeTextFile(
      lockPath,
      JSON.stringify({ pid: gone.pid, start: "1", host: boot, hostname }),
    );
  const heldBy =
    `pid ${gone.pid} on host node9 (boot ${boot}), which this host cannot check; if no run writes there, delete ${lockPath}`;
  await lock("node9");
  const status = await sweepStatus(sweep);
  assertEquals(status.map((s) => [s.state, s.heldBy]), [["held", heldBy]]);
  assertEquals(
    statusLine(status[0]),
    `  0  held      seed-0: held by ${heldBy}`,
  );
  const lines: string[] = [];
  const busy: string[] = [];
  assertEquals(
    await runLocal(sweep, {
      jobs: 1,
      workdir: root,
      experiment: `bash -c 'exit ${FOLDER_BUSY_EXIT}'`,
      log: (l) => lines.push(l),
      onBusy: (c) => busy.push(c.name),
    }),
    [],
  );
  assertEquals([busy, lines], [["seed-0"], [
    `cell seed-0: busy: held by ${heldBy}`,
  ]]);
  // This host's name, another boot: this machine before a reboot — the
  // lock is stale, the cell pending and run again.
  await lock(Deno.hostname());
  assertEquals((await sweepStatus(sweep)).map((s) => [s.state, s.heldBy]), [[
    "pending",
    undefined,
  ]]);
  assertEquals(
    (await runLocal(sweep, {
      jobs: 1,
      workdir: root,
      experiment: "false",
      log: () => {},
    })).map((c) => c.name),
    ["seed-0"],
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("the Slurm array task of a cell whose lock names another host name says it is held there, with the holder's boot and the way out, as runLocal does", async () => {
  const root = await Deno.makeTempDir();
  const sweep = await saveSweep(planSweep({ seeds: 1 }, { dir: `${root}/sw` }));
  const [cell] = sweep.cells;
  await Deno.mkdir(cell.out, { recursive: true });
  const lockPath = new RunFolder(cell.out).lockPath;
  const boot = crypto.randomUUID();
  const script = sbatchScript(sweep, {
    workdir: root,
    experiment: `bash -c 'exit ${FOLDER_BUSY_EXIT}'`,
  });
  const task = async () =>
    new TextDecoder().decode(
      (await new Deno.Command("bash", {
        args: ["-c", script],
        env: { SLURM_ARRAY_TASK_ID: "0" },
        stdout: "piped",
        stderr: "piped",
      }).output()).stderr,
    ).trim();
  for (const hostname of ["node9", Deno.hostname()]) {
    await Deno.writeTextFile(
      lockPath,
      JSON.stringify({ pid: 4242, start: "1", host: boot, hostname }),
    );
    assertEquals(
      await task(),
      hostname === "node9"
        ? `cell seed-0: busy: held by pid 4242 on host node9 (boot ${boot}), which this host cannot check; if no run writes there, delete ${lockPath}`
        : "cell seed-0: busy: in use by another run (pid 4242), left to it",
    );
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("readSweep() refuses a sweep.json whose cell lacks any one of its fields, each alone, and reads the whole cell", async () => {
  const dir = await Deno.makeTempDir();
  const cell = {
    index: 0,
    name: "seed-0",
    out: `${dir}/cells/seed-0`,
    values: {},
    args: ["--seeds", "1"],
  };
  const write = (c: unknown) =>
    Deno.writeTextFile(
      `${dir}/sweep.json`,
      JSON.stringify({
        version: 1,
        dir,
        submissions: [],
        cells: [c],
        script: "examples/study.ts",
      }),
    );
  await write(cell);
  assertEquals((await readSweep(dir)).cells, [cell]);
  const broken: unknown[] = [
    null,
    5,
    { ...cell, index: 1 },
    { ...cell, name: "" },
    { ...cell, name: 7 },
    { ...cell, out: "" },
    { ...cell, out: ["x"] },
    { ...cell, values: "lr=1" },
    { ...cell, values: null },
    { ...cell, args: "--seeds 1" },
    { ...cell, args: ["--seeds", 1] },
  ];
  for (const c of broken) {
    await write(c);
    await assertRejects(
      () => readSweep(dir),
      ConfigError,
      `${dir}/sweep.json is not a sweep record: cell 0 needs index 0, a name, values, out and args`,
      JSON.stringify(c),
    );
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("planSweep() refuses a grid key whose values are an empty list or no list, naming the key", () => {
  for (const values of [[], 0.001, "0.001,0.002"]) {
    assertThrows(
      () => planSweep({ grid: { lr: values as never } }, { dir: "d" }),
      ConfigError,
      "The grid's --lr needs a non-empty list of values",
    );
  }
});

Deno.test("parseSeeds() reads a count given as text, spaced or not, up to 1000, and refuses a count of 0 or 1001", async () => {
  const { parseSeeds } = await import("./sweep.ts");
  assertEquals(parseSeeds(" 3 "), [0, 1, 2]);
  assertEquals(parseSeeds("1000"), [...Array(1000).keys()]);
  assertEquals(parseSeeds(1000).length, 1000);
  for (const seeds of ["0", "1001", 0, 1001]) {
    assertThrows(
      () => parseSeeds(seeds),
      ConfigError,
      `integers in [0, 1000], got ${JSON.stringify(seeds)}`,
    );
  }
});

Deno.test("sweepStatus() counts only training rows (a step and a loss) as progress: a later validation row or a row without a step does not", async () => {
  const dir = await Deno.makeTempDir();
  const s = await saveSweep(planSweep({ seeds: 1 }, { dir }));
  const out = s.cells[0].out;
  const release = await new RunFolder(out).start(
    resolveConfig({ preset: "micro", steps: 25, seeds: 1, out }),
  );
  const rows = [
    { model: "ar", seed: 0, step: 3, loss: 5 },
    { model: "ar", seed: 0, step: 9, valid: 5 },
    { model: "ar", seed: 0, loss: 5 },
  ];
  await Deno.writeTextFile(
    `${out}/metrics.jsonl`,
    rows.map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  const [st] = await sweepStatus(s);
  release();
  assertEquals([st.state, st.steps, st.at], ["running", 3, "ar seed 0 step 3"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cellConfig() resolves a cell of the experiment script, named or not, and gives none for a study's cell whose values read as options", async () => {
  const { cellConfig, EXPERIMENT_SCRIPT, studySweep } = await import(
    "./sweep.ts"
  );
  const dir = `${await Deno.makeTempDir()}/st`;
  const cells = [{
    name: "a",
    values: { lr: 0.002, seed: 2 },
    out: `${dir}/a`,
    args: ["--lr", "0.002"],
  }];
  const study = studySweep(dir, "examples/ablate.ts", cells);
  assertEquals(cellConfig(study, study.cells[0]), undefined);
  const named = studySweep(dir, EXPERIMENT_SCRIPT, cells);
  const config = cellConfig(named, named.cells[0]);
  assertEquals(
    [config?.lr, config?.firstSeed, config?.seeds, config?.out],
    [0.002, 2, 1, `${dir}/a`],
  );
  await Deno.remove(dir.slice(0, -3), { recursive: true });
});

Deno.test("the job script keeps a sweep folder's $(…), quotes and spaces as text: a failed, a busy and a finished cell run nothing of them", async () => {
  const tmp = await Deno.makeTempDir();
  // A folder that ran `touch` when a cell failed (its log path in the
  // failure line was in double quotes, unquoted).
  const dir =
    `${tmp}/inj$(touch\${IFS}${tmp}/PWNED)\`touch ${tmp}/PWNED2\`/it's a/s`;
  const s = planSweep({ seeds: 1 }, { dir });
  const task = async (experiment: string) => {
    const out = await new Deno.Command("bash", {
      args: ["-c", sbatchScript(s, { workdir: tmp, experiment })],
      env: { SLURM_ARRAY_TASK_ID: "0" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    return [out.code, text.decode(out.stdout) + text.decode(out.stderr)];
  };
  assertEquals(await task("false"), [
    1,
    `cell seed-0: failed (exit 1), log ${dir}/logs/seed-0.log\n`,
  ]);
  assertEquals(await task(`f() { return ${FOLDER_BUSY_EXIT}; }; f`), [
    FOLDER_BUSY_EXIT,
    "cell seed-0: busy: in use by another run, left to it\n",
  ]);
  assertStringIncludes(
    await Deno.readTextFile(sweepPaths(dir).log(s.cells[0])),
    " cell seed-0 on ",
  );
  await Deno.mkdir(s.cells[0].out, { recursive: true });
  await Deno.writeTextFile(`${s.cells[0].out}/results.json`, "{}");
  assertEquals(await task("false"), [0, "cell seed-0: finished, skipped\n"]);
  for (const name of ["PWNED", "PWNED2"]) {
    assertEquals(await Deno.stat(`${tmp}/${name}`).catch(() => null), null);
  }
  await Deno.remove(tmp, { recursive: true });
});

Deno.test('sbatchScript() quotes the folder in #SBATCH --output and --job-name (a space stays one value, a % doubled), and refuses a folder with " or \\ in one line', () => {
  const s = planSweep({ seeds: 1 }, { dir: "/x/my sweep%1" });
  const text = sbatchScript(s, { workdir: "/repo", experiment: "true" });
  assertStringIncludes(
    text,
    '\n#SBATCH --output="/x/my sweep%%1/logs/slurm-%A_%a.out"\n',
  );
  assertStringIncludes(text, '\n#SBATCH --job-name="sweep-my sweep%1"\n');
  for (const odd of ['"', "\\"]) {
    const bad = planSweep({ seeds: 1 }, { dir: `/x/a${odd}b` });
    const e = assertThrows(
      () => sbatchScript(bad, { workdir: "/repo", experiment: "true" }),
      ConfigError,
    );
    assertEquals(e.message.split("\n").length, 1);
    assertStringIncludes(
      e.message,
      `The sweep's folder holds ${JSON.stringify(odd)}`,
    );
  }
});

Deno.test("a cell whose results.json does not read is broken for sweep status and report --merge alike, not finished nor unfinished, with the way to re-run it", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/sw`;
  const s = await saveSweep(planSweep({ seeds: 3 }, { dir }));
  for (
    const [i, text] of [[0, '{"results": [{"seed"'], [1, "[1, 2]"]] as const
  ) {
    await Deno.mkdir(s.cells[i].out, { recursive: true });
    await Deno.writeTextFile(`${s.cells[i].out}/results.json`, text);
  }
  await Deno.mkdir(`${s.cells[2].out}/results.json`, { recursive: true });
  const status = await sweepStatus(s);
  assertEquals(status.map((x) => x.state), ["broken", "broken", "broken"]);
  const line = statusLine(status[0]);
  assert(
    line.startsWith(
      `  0  broken    seed-0: ${s.cells[0].out}/results.json is not valid JSON`,
    ),
    line,
  );
  assert(
    line.endsWith(
      "; sweep run moves it aside (results.json.broken) and runs the cell again",
    ),
    line,
  );
  assertEquals(
    status[1].broken,
    `${s.cells[1].out}/results.json is not a JSON object`,
  );
  assertStringIncludes(status[2].broken!, "it is a folder");
  const e = await assertRejects(() => collectRuns([dir]), ConfigError);
  assertEquals(
    e.message,
    `Cannot merge ${s.cells[0].out}: ${
      status[0].broken
    }; deno task sweep run ${dir} --on … moves it aside and runs the cell again`,
  );
});

Deno.test("readSweep() refuses a sweep.json whose cells are not what its spec plans (edited by hand), in one line, for run, status and merge alike", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/sw`;
  const sweep = await saveSweep(
    planSweep({ options: { preset: "micro", steps: 50 }, seeds: 2 }, { dir }),
  );
  const text = await Deno.readTextFile(`${dir}/sweep.json`);
  const edits: [string, (s: typeof sweep) => void][] = [
    ["spec", (s) => (s.spec.options!.steps = 70)],
    ["args", (s) => (s.cells[1].args[3] = "9")],
    ["a cell gone", (s) => s.cells.pop()],
    ["swept", (s) => (s.swept = [])],
  ];
  for (const [what, edit] of edits) {
    const s = JSON.parse(text);
    edit(s);
    await Deno.writeTextFile(`${dir}/sweep.json`, JSON.stringify(s));
    const e = await assertRejects(() => readSweep(dir), ConfigError);
    assert(
      e.message.startsWith(`${dir}/sweep.json is not a sweep record: `),
      what,
    );
    assertStringIncludes(e.message, "edited by hand", what);
    assertEquals(e.message.split("\n").length, 1, what);
    await assertRejects(() => collectRuns([dir]), ConfigError, e.message);
  }
  await Deno.writeTextFile(`${dir}/sweep.json`, text);
  assertEquals(await readSweep(dir), sweep);
});

Deno.test("readSweep() takes a sweep.json whose planHash matches under this version's planning rules as written, not planned again; one without it (an older record), with a stale one, or hashed under other planning rules is planned again", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/sw`;
  const sweep = await saveSweep(
    planSweep({ options: { preset: "micro", engine: "cpu" }, seeds: 1 }, {
      dir,
    }),
  );
  const record = JSON.parse(await Deno.readTextFile(`${dir}/sweep.json`));
  assertMatch(record.planHash, /^[0-9a-f]{64}$/);
  assertEquals(
    await readSweep(dir),
    sweep,
    "planHash is the file's, not the sweep's",
  );
  // A plan this version would not make (--backend beside --engine cpu, as
  // an older version planned it), its hash written with it.
  const { planHash: _, ...old } = record;
  old.spec.options.backend = "wasm";
  old.cells[0].args.splice(4, 0, "--backend", "wasm");
  const hash = (rules: number) =>
    sha256Hex(JSON.stringify([
      rules,
      old.version,
      old.dir,
      old.spec,
      old.swept,
      old.cells,
      old.script ?? null,
      old.collect ?? null,
    ]));
  const write = (r: object) =>
    Deno.writeTextFile(`${dir}/sweep.json`, JSON.stringify(r));
  // Hashed under this version's rules: read as it is.
  await write({ ...old, planHash: hash(SWEEP_PLAN_RULES) });
  assertEquals((await readSweep(dir)).cells[0].args.slice(4, 6), [
    "--backend",
    "wasm",
  ]);
  // Without the hash, with another's, or hashed under the rules before or
  // after these: planned again, and refused.
  for (
    const r of [
      old,
      { ...old, planHash: record.planHash },
      { ...old, planHash: hash(SWEEP_PLAN_RULES - 1) },
      { ...old, planHash: hash(SWEEP_PLAN_RULES + 1) },
    ]
  ) {
    await write(r);
    await assertRejects(
      () => readSweep(dir),
      ConfigError,
      "its spec cannot be planned by this version",
    );
  }
});

Deno.test("readSweep() refuses, before anything runs, a sweep planned under the older planning rules that this version's refuse or plan otherwise, naming the rules and how its finished cells merge; one they plan the same is read", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/sw`;
  const sweep = await saveSweep(
    planSweep({ options: { preset: "micro", models: "ar" }, seeds: "0..1" }, {
      dir,
    }),
  );
  const { planHash: _, ...record } = JSON.parse(
    await Deno.readTextFile(`${dir}/sweep.json`),
  );
  // Rules 1 planned these sweeps as they are; rules 2 refuse or merge them.
  const under1 = (r: typeof record) => writeUnderRules1(dir, r);
  const refused = async (r: typeof record, ...says: string[]) => {
    await under1(r);
    const e = await assertRejects(() => readSweep(dir), ConfigError);
    for (
      const part of [
        `${dir}/sweep.json was planned under older planning rules (1; this version's are ${SWEEP_PLAN_RULES}), and `,
        `merge its finished cells as runs (deno task report --merge ${dir}/cells/NAME …)`,
        ...says,
      ]
    ) assertStringIncludes(e.message, part);
    assertEquals(e.message.split("\n").length, 1);
    assert(!e.message.includes("edited by hand"), e.message);
    await assertRejects(() => collectRuns([dir]), ConfigError, e.message);
  };
  // A value nothing in a cell reads (--diffusion-loss with --models ar):
  // rules 1 planned it into every cell.
  const unread = structuredClone(record);
  unread.spec.options.diffusionLoss = "d3pm";
  for (const c of unread.cells) {
    c.args.splice(4, 0, "--diffusion-loss", "d3pm");
  }
  await refused(
    unread,
    "its spec cannot be planned by this version (Cell seed-0 cannot run: Option --diffusion-loss is read by the d3pm contestant only",
  );
  // A plan rules 2 make otherwise (here: one cell fewer).
  const fewer = structuredClone(record);
  fewer.cells.pop();
  await refused(
    fewer,
    "this version plans its spec otherwise (cell 1 is not what its spec plans (seed-1: ",
    "or plan the sweep again into a new --dir",
  );
  // One rules 2 plan the same: read, as the version that planned it did.
  await under1(record);
  assertEquals(await readSweep(dir), sweep);
});

Deno.test("the job script sets each cell's threads to its Slurm CPUs (--cpus-per-task, else 1), whatever the submitting shell had", async () => {
  const dir = await Deno.makeTempDir();
  const s = planSweep({ seeds: 1 }, { dir });
  const threads = async (cpus: string | undefined, cpusPerTask?: number) => {
    const text = sbatchScript(s, {
      workdir: dir,
      experiment:
        'f() { echo "$OPENBLAS_NUM_THREADS $OMP_NUM_THREADS $MKL_NUM_THREADS"; }; f',
      cpusPerTask,
    });
    await new Deno.Command("bash", {
      args: ["-c", text],
      // The submitting shell's settings, which sbatch passes on.
      env: {
        SLURM_ARRAY_TASK_ID: "0",
        OPENBLAS_NUM_THREADS: "16",
        OMP_NUM_THREADS: "16",
        MKL_NUM_THREADS: "16",
        ...(cpus ? { SLURM_CPUS_PER_TASK: cpus } : {}),
      },
    }).output();
    const log = await Deno.readTextFile(sweepPaths(dir).log(s.cells[0]));
    await Deno.remove(sweepPaths(dir).log(s.cells[0]));
    return log.split("\n").at(-2);
  };
  assertEquals(await threads(undefined), "1 1 1");
  assertEquals(await threads("4", 4), "4 4 4");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sbatchScript() refuses an extra line that is no #SBATCH option, as --sbatch's split at ';' leaves of a value holding one, in one line", () => {
  const s = planSweep({ seeds: 1 }, { dir: "/s/w" });
  const script = (extra: string[]) => () =>
    sbatchScript(s, { workdir: "/", experiment: "x", extra });
  // What `--sbatch "--comment=a;b"` gives (examples/sweep.ts splits at ";").
  const e = assertThrows(script(["--comment=a", "b"]), ConfigError);
  assertEquals(
    e.message,
    'Option --sbatch gives "b", which is no #SBATCH option (one starts with -): --sbatch is split at ";" and line breaks, so a value holding ";" cannot be given there; add that line to the job script by hand',
  );
  assertThrows(script(["#SBATCH b"]), ConfigError, 'gives "#SBATCH b"');
  // Options, with or without the prefix, and a file's comment lines pass.
  const text = script([
    "--qos=long",
    "#SBATCH -N 1",
    "# a note",
    "#!/bin/bash",
  ])();
  assertStringIncludes(text, "#SBATCH --qos=long\n#SBATCH -N 1\n");
});

Deno.test("sweepStatus() of a study's cells: an interrupted one that does not resume is to start again from scratch, and its total counts only the models its values name", async () => {
  const root = await Deno.makeTempDir();
  const dir = `${root}/ab`;
  const cells = ["ar", "d3pm"].map((model) => ({
    name: `v-${model}`,
    values: { variant: "v", model },
    out: `${dir}/v-${model}`,
    args: ["--variant", "v"],
  }));
  const ablation = await saveSweep(
    studySweep(dir, "examples/ablate.ts", cells),
  );
  // The folder's config names both models; the cell trains its AR only.
  const out = ablation.cells[0].out;
  (await new RunFolder(out).start(
    resolveConfig({ preset: "micro", steps: 300, warmup: 2, out }),
  ))();
  await Deno.writeTextFile(
    `${out}/metrics.jsonl`,
    JSON.stringify({ model: "ar", seed: 0, step: 120, loss: 5 }) + "\n",
  );
  await Deno.mkdir(`${dir}/logs`, { recursive: true });
  await Deno.writeTextFile(sweepPaths(dir).exit(ablation.cells[0]), "143\n");
  const [st] = await sweepStatus(ablation);
  assertEquals([st.state, st.steps, st.totalSteps], ["pending", 120, 300]);
  assertEquals(
    statusLine(st),
    `  0  pending   v-ar 40% (120/300 steps, at ar seed 0 step 120) (interrupted by signal 15: a re-run starts it again from scratch; log ${dir}/logs/v-ar.log)`,
  );
  // A study cell whose script runs the experiment with --resume resumes.
  await Deno.writeTextFile(
    `${dir}/sweep.json`,
    JSON.stringify({
      ...ablation,
      cells: ablation.cells.map((c) => ({ ...c, resumes: true })),
    }),
  );
  const [again] = await sweepStatus(await readSweep(dir));
  assertStringIncludes(statusLine(again), "a re-run resumes it;");
  await Deno.remove(root, { recursive: true });
});

Deno.test("parseGrid() keeps a space inside a value and splits at spaces only before the next key=, or at ';'", () => {
  // Before: cut at every space, "b,/tmp/c" refused as an item without "=".
  assertEquals(parseGrid("data=/tmp/a b,/tmp/c"), {
    data: ["/tmp/a b", "/tmp/c"],
  });
  assertEquals(parseGrid("lr=1e-3, 2e-3  dropout=0,0.1;seed-x=1"), {
    lr: ["1e-3", "2e-3"],
    dropout: ["0", "0.1"],
    seedX: ["1"],
  });
  assertThrows(
    () => parseGrid("lr=1; =2"),
    ConfigError,
    'Option --set takes key=v1,v2 items separated by ";" (or spaces before the next key=), got "=2"',
  );
});

Deno.test("planSweep() refuses an empty value of a yes/no option in the grid (shift=,false) instead of planning a --shift true cell", () => {
  assertThrows(
    () =>
      planSweep({
        options: { preset: "micro" },
        grid: { shift: ["", false] },
      }, { dir: "d" }),
    ConfigError,
    "Option --shift needs a value: true or false",
  );
});

Deno.test("planSweep() reads path values by what they name: base and base/, or base/seed-0 and base at seed 0, are one cell, refused", () => {
  const plan = (grid: Record<string, string[]>) => () =>
    planSweep({ options: { preset: "micro", models: "d3pm" }, grid }, {
      dir: "d",
    });
  assertThrows(
    plan({ initFrom: ["base", "base/"] }),
    ConfigError,
    "The grid's --init-from lists a value twice: base, base/",
  );
  assertThrows(
    plan({ data: ["corpus", "./corpus/"] }),
    ConfigError,
    "The grid's --data lists a value twice",
  );
  for (
    const initFrom of [["base/seed-0", "base"], ["base/./seed-0/ar", "base"]]
  ) {
    assertThrows(
      plan({ initFrom }),
      ConfigError,
      "are the same run (the experiment reads their values alike)",
    );
  }
  // Other sources, or another seed's, are other runs.
  assertEquals(
    plan({ initFrom: ["base", "base/seed-0/mlm"] })().cells.length,
    2,
  );
});

Deno.test("readSweep(): an older-rules sweep's way out names its cells where the sweep is now, quoted for the shell", async () => {
  await using tmp = await tempDir();
  const planned = `${tmp.path}/planned here/sw`;
  await saveSweep(
    planSweep({ options: { preset: "micro", models: "ar" }, seeds: "0..1" }, {
      dir: planned,
    }),
  );
  const { planHash: _, ...record } = JSON.parse(
    await Deno.readTextFile(`${planned}/sweep.json`),
  );
  // Rules 1 planned a value nothing reads into every cell; rules 2 refuse it.
  record.spec.options.diffusionLoss = "d3pm";
  for (const c of record.cells) c.args.splice(4, 0, "--diffusion-loss", "d3pm");
  await writeUnderRules1(planned, record);
  const moved = `${tmp.path}/moved it's`;
  await Deno.rename(planned, moved);
  const e = await assertRejects(() => readSweep(moved), ConfigError);
  assertStringIncludes(
    e.message,
    `(deno task report --merge ${shellQuote(moved)}/cells/NAME …)`,
  );
  assert(shellQuote(moved) !== moved);
});

/** Write `r` into `dir/sweep.json` as planning rules 1 hashed it. */
function writeUnderRules1(
  dir: string,
  // deno-lint-ignore no-explicit-any
  r: any,
): Promise<void> {
  return Deno.writeTextFile(
    `${dir}/sweep.json`,
    JSON.stringify({
      ...r,
      planHash: sha256Hex(JSON.stringify([
        1,
        r.version,
        r.dir,
        r.spec,
        r.swept,
        r.cells,
        r.script ?? null,
        r.collect ?? null,
      ])),
    }),
  );
}
