// `deno task sweep` and `deno task report --merge` as a user runs them: a
// two-seed sweep of a few-second micro run, planned, printed as an sbatch
// script, run here as two processes, read back by status, merged, and
// compared with the same seeds run in one process.
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "@std/assert";
import { locateWeights, measuredFigures, RunFolder } from "@d3pm/experiment";
import { errorLine, ROOT, runScript, runTool } from "./_run.ts";

// A cell of a few seconds: micro, 8 steps a model, a tiny evaluation.
const CELL = [
  "--preset",
  "micro",
  "--steps",
  "8",
  "--warmup",
  "1",
  "--batch-size",
  "2",
  "--checkpoint-every",
  "4",
  "--eval-blocks",
  "2",
  "--elbo-samples",
  "1",
  "--exact-blocks",
  "0",
  "--diffusion-steps",
  "4",
  "--gen-steps",
  "2",
  "--gen-tokens",
  "32",
  "--gen-batch",
  "1",
  "--samples",
  "1",
  "--judge",
  "self",
  "--valid-every",
  "4",
  "--log-every",
  "2",
];

const ONE_THREAD = {
  OPENBLAS_NUM_THREADS: "1",
  OMP_NUM_THREADS: "1",
  MKL_NUM_THREADS: "1",
};

Deno.test("a sweep is planned, printed as sbatch, run as local jobs, read by status and merged; each seed as in one process", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sweep-" });
  const plan = await runTool("sweep.ts", [
    "plan",
    "--seeds",
    "0..1",
    ...CELL,
    "--dir",
    dir,
  ]);
  assertEquals(plan.code, 0, plan.stderr);
  assertStringIncludes(plan.stdout, `2 cells in ${dir} (swept: seed):`);
  assertStringIncludes(
    plan.stdout,
    `--seeds 1 --first-seed 1 --out ${dir}/cells/seed-1 --resume`,
  );
  const dry = await runTool("sweep.ts", [
    "run",
    dir,
    "--on",
    "slurm",
    "--dry-run",
    "--time",
    "00:10:00",
  ]);
  assertEquals(dry.code, 0, dry.stderr);
  assertStringIncludes(dry.stdout, "#SBATCH --array=0-1\n#SBATCH --requeue\n");
  assertStringIncludes(dry.stdout, "#SBATCH --time=00:10:00\n");
  const before = await runTool("sweep.ts", ["status", dir]);
  assertStringIncludes(
    before.stdout,
    "2 cells: 0 finished, 0 running, 2 pending",
  );
  const local = await runTool("sweep.ts", [
    "run",
    dir,
    "--on",
    "local",
    "--jobs",
    "2",
  ]);
  assertEquals(local.code, 0, local.stderr);
  assertEquals(JSON.parse(local.stdout.trim().split("\n").at(-1)!).failed, []);
  const after = await runTool("sweep.ts", ["status", dir]);
  assertStringIncludes(
    after.stdout,
    "  1  finished  seed-1 100% (16/16 steps)",
  );
  // Again: every cell is finished, nothing runs.
  const again = await runTool("sweep.ts", ["run", dir, "--on", "local"]);
  assertEquals(again.code, 0, again.stderr);
  assertStringIncludes(again.stdout, "cell seed-0: finished, skipped");
  // The same two seeds in one process, at the cells' thread count
  // (2 jobs on this machine's cores; one thread each on 2 cores).
  const one = await Deno.makeTempDir();
  const threads = Math.max(1, Math.floor(navigator.hardwareConcurrency / 2));
  const whole = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}examples/experiment.ts`,
      ...CELL,
      "--seeds",
      "2",
      "--out",
      one,
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
    env: threads === 1 ? ONE_THREAD : {
      OPENBLAS_NUM_THREADS: String(threads),
      OMP_NUM_THREADS: String(threads),
      MKL_NUM_THREADS: String(threads),
    },
  }).output();
  assertEquals(whole.code, 0, new TextDecoder().decode(whole.stderr));
  const results = async (d: string) =>
    JSON.parse(await Deno.readTextFile(`${d}/results.json`)).results;
  const inOne = await results(one);
  for (const seed of [0, 1]) {
    const cell = await results(`${dir}/cells/seed-${seed}`);
    assertEquals(
      cell.map(measuredFigures),
      inOne.filter((m: { seed: number }) => m.seed === seed).map(
        measuredFigures,
      ),
      `seed ${seed}`,
    );
  }
  // samples.txt of the two seeds in one process is the cells' one after the
  // other (each seed's section added whole after the seeds before it).
  const samples = (d: string) => Deno.readTextFile(`${d}/samples.txt`);
  assertEquals(
    await samples(one),
    (await samples(`${dir}/cells/seed-0`)) +
      (await samples(`${dir}/cells/seed-1`)),
  );
  // The tools find a cell's models without being told its seed.
  await locateWeights(`${dir}/cells/seed-1`, { model: "d3pm" });
  // Merged: the sweep folder gets report.md; the one-process folder merges
  // with the cells (its seeds 0 and 1 next to theirs).
  const merged = await runScript("examples/report.ts", ["--merge", dir]);
  assertEquals(merged.code, 0, merged.stderr);
  const md = await Deno.readTextFile(`${dir}/report.md`);
  assertStringIncludes(md, "| AR | 2 (0, 1) |");
  assertStringIncludes(md, "| seed-1 | D3PM | 1 |");
  // Every cell trained on the same engine and thread count, named once.
  assertMatch(md, /\nTrained on: [^\n;]*\b\d+ threads[^\n;]*\.\n/);
  // A run of another learning rate is refused, naming it, unless varied.
  const other = await Deno.makeTempDir();
  const lr = await runTool("experiment.ts", [
    ...CELL,
    "--lr",
    "0.002",
    "--out",
    other,
  ]);
  assertEquals(lr.code, 0, lr.stderr);
  const refused = await runScript("examples/report.ts", [
    "--merge",
    dir,
    other,
    "--out",
    `${dir}/m`,
  ]);
  assertEquals(refused.code, 1);
  assertStringIncludes(
    errorLine(refused),
    `error: Cannot merge ${dir}/cells/seed-0 and ${other}: --lr is 0.002 in ${other} but 0.005 in ${dir}/cells/seed-0`,
  );
  const varied = await runScript("examples/report.ts", [
    "--merge",
    dir,
    other,
    "--out",
    `${dir}/m`,
    "--vary",
    "lr",
  ]);
  assertEquals(varied.code, 0, varied.stderr);
  const mv = await Deno.readTextFile(`${dir}/m/report.md`);
  assertStringIncludes(mv, "| lr 0.005 | AR | 2 (0, 1) |");
  assertStringIncludes(mv, "| lr 0.002 | AR | 1 (0) |");
  assert((await Deno.stat(`${dir}/m/loss-lr_0.002.svg`)).isFile);
  for (const d of [dir, one, other]) await Deno.remove(d, { recursive: true });
});

Deno.test("deno task sweep refuses a missing command, a bad grid and a re-plan over another sweep, in one line", async () => {
  const dir = await Deno.makeTempDir();
  const none = await runTool("sweep.ts", ["--seeds", "2"]);
  assertEquals(
    errorLine(none),
    "error: deno task sweep needs a command: plan, run or status, got none (see --help)",
  );
  const bad = await runTool("sweep.ts", [
    "plan",
    "--set",
    "lr=fast",
    "--dir",
    dir,
  ]);
  assertEquals(
    errorLine(bad),
    'error: Option --lr must be a number > 0, got "fast"',
  );
  assertEquals(
    (await runTool("sweep.ts", ["plan", "--seeds", "2", "--dir", dir])).code,
    0,
  );
  const other = await runTool("sweep.ts", [
    "plan",
    "--seeds",
    "3",
    "--dir",
    dir,
  ]);
  assertStringIncludes(
    errorLine(other),
    `error: ${dir} holds another sweep (2 cells: seed-0, seed-1…)`,
  );
  // A grid from a JSON file, with command-line options on top.
  const file = `${dir}/grid.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      options: { preset: "micro" },
      grid: { lr: [0.001, 0.002] },
      seeds: "0..1",
    }),
  );
  const fromFile = await runTool("sweep.ts", [
    "plan",
    file,
    "--steps",
    "30",
    "--dir",
    `${dir}/f`,
  ]);
  assertEquals(fromFile.code, 0, fromFile.stderr);
  assertStringIncludes(
    fromFile.stdout,
    `4 cells in ${dir}/f (swept: lr, seed):`,
  );
  assertStringIncludes(
    fromFile.stdout,
    `  3  deno task experiment --preset micro --steps 30 --lr 0.002 --seeds 1 --first-seed 1 --out ${dir}/f/cells/lr-0.002_seed-1 --resume`,
  );
  const noOn = await runTool("sweep.ts", ["run", dir]);
  assertEquals(
    errorLine(noOn),
    "error: deno task sweep run needs --on local or --on slurm",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task sweep run --on slurm --dry-run re-submits failed, interrupted and pending cells, never finished ones", async () => {
  const dir = await Deno.makeTempDir();
  const plan = await runTool("sweep.ts", [
    "plan",
    "--seeds",
    "0..3",
    "--preset",
    "micro",
    "--dir",
    dir,
  ]);
  assertEquals(plan.code, 0, plan.stderr);
  // 0 finished (results.json, its folder's config), 1 failed (exit 1),
  // 2 interrupted (killed: exit 143), 3 never started.
  const { RunFolder, resolveConfig } = await import("@d3pm/experiment");
  for (const i of [0, 1, 2]) {
    const out = `${dir}/cells/seed-${i}`;
    (await new RunFolder(out).start(
      resolveConfig({ preset: "micro", seeds: 1, firstSeed: i, out }),
    ))();
  }
  await Deno.writeTextFile(`${dir}/cells/seed-0/results.json`, "{}");
  await Deno.writeTextFile(`${dir}/logs/seed-1.exit`, "1\n");
  await Deno.writeTextFile(`${dir}/logs/seed-2.exit`, "143\n");
  const status = await runTool("sweep.ts", ["status", dir]);
  assertStringIncludes(
    status.stdout,
    "4 cells: 1 finished, 0 running, 2 pending, 1 failed",
  );
  const dry = await runTool("sweep.ts", [
    "run",
    dir,
    "--on",
    "slurm",
    "--dry-run",
  ]);
  assertEquals(dry.code, 0, dry.stderr);
  // (A planted re-submission of the pending cells only left the failed cell out.)
  assertStringIncludes(dry.stdout, "#SBATCH --array=1-3\n");
  for (const i of [1, 2, 3]) assertStringIncludes(dry.stdout, `\n  ${i})\n`);
  assert(!dry.stdout.includes("\n  0)\n"), "a finished cell is not submitted");
  const owned = await runTool("sweep.ts", [
    "run",
    dir,
    "--on",
    "slurm",
    "--dry-run",
    "--sbatch",
    "--mem=4G; --array=0-9",
  ]);
  assertEquals(
    errorLine(owned),
    'error: Option --sbatch cannot set --array (got "--array=0-9"): the sweep sets the array (one task per open cell; --parallel N for %N) and the waves\' dependencies',
  );
  // Lines as a file holds them (`--sbatch "$(cat extra.sbatch)"`): each its
  // own #SBATCH line (a line break was refused as a control character).
  const lines = await runTool("sweep.ts", [
    "run",
    dir,
    "--on",
    "slurm",
    "--dry-run",
    "--sbatch",
    "--qos=long\n--mem=32G\n",
  ]);
  assertEquals(lines.code, 0, lines.stderr);
  assertStringIncludes(lines.stdout, "#SBATCH --qos=long\n#SBATCH --mem=32G\n");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task sweep refuses a --set key that the sweep file's grid also sweeps, naming both", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/grid.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      options: { preset: "micro" },
      grid: { lr: [0.001, 0.002], arLr: [0] },
    }),
  );
  const plan = (set: string) =>
    runTool("sweep.ts", ["plan", file, "--set", set, "--dir", `${dir}/s`]);
  const same = await plan("lr=0.003");
  assertEquals(
    errorLine(same),
    `error: --lr is swept both by --set (lr=0.003) and by the grid of the sweep file ${file} (lr: [0.001,0.002]): give it in one place`,
  );
  const spelt = await plan("ar-lr=0.001");
  assertEquals(
    errorLine(spelt),
    `error: --ar-lr is swept both by --set (arLr=0.001) and by the grid of the sweep file ${file} (arLr: [0]): give it in one place`,
  );
  // Keys apart: the file's grid and --set's, both swept.
  const apart = await plan("dropout=0,0.1");
  assertEquals(apart.code, 0, apart.stderr);
  assertStringIncludes(
    apart.stdout,
    `4 cells in ${dir}/s (swept: lr, dropout):`,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a Slurm array task of a cell another run holds leaves it to it as --on local does: busy, not failed, exit 75", async () => {
  const dir = await Deno.makeTempDir();
  const plan = await runTool("sweep.ts", [
    "plan",
    ...CELL,
    "--dir",
    `${dir}/s`,
  ]);
  assertEquals(plan.code, 0, plan.stderr);
  const cell = `${dir}/s/cells/seed-0`;
  await Deno.mkdir(cell, { recursive: true });
  const release = await new RunFolder(cell).lock();
  // The array task as Slurm runs it: the script, its task id set.
  const dry = await runTool("sweep.ts", [
    "run",
    `${dir}/s`,
    "--on",
    "slurm",
    "--dry-run",
  ]);
  assertEquals(dry.code, 0, dry.stderr);
  const task = await new Deno.Command("bash", {
    args: ["-c", dry.stdout],
    env: { SLURM_ARRAY_TASK_ID: "0" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  release();
  const stderr = new TextDecoder().decode(task.stderr);
  assertEquals(task.code, 75, stderr);
  assertEquals(
    stderr.trim(),
    `cell seed-0: busy: in use by another run (pid ${Deno.pid}), left to it`,
  );
  assertStringIncludes(
    await Deno.readTextFile(`${dir}/s/logs/seed-0.log`),
    "in use by another run",
  );
  const status = await runTool("sweep.ts", ["status", `${dir}/s`]);
  assertStringIncludes(
    status.stdout,
    "1 cells: 0 finished, 0 running, 1 pending",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task sweep run --on local leaves a cell another run holds to it: busy, not failed, exit 75", async () => {
  const dir = await Deno.makeTempDir();
  const plan = await runTool("sweep.ts", [
    "plan",
    ...CELL,
    "--dir",
    `${dir}/s`,
  ]);
  assertEquals(plan.code, 0, plan.stderr);
  // Another run holds the only cell: this process, alive, its lock taken.
  const cell = `${dir}/s/cells/seed-0`;
  await Deno.mkdir(cell, { recursive: true });
  const release = await new RunFolder(cell).lock();
  const run = await runTool("sweep.ts", ["run", `${dir}/s`, "--on", "local"]);
  release();
  assertEquals(run.code, 75, run.stderr);
  assertStringIncludes(
    run.stderr,
    `cell seed-0: busy: in use by another run (pid ${Deno.pid}), left to it`,
  );
  assert(!run.stderr.includes("failed"), run.stderr);
  const line = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
  assertEquals([line.failed, line.busy], [[], ["seed-0"]]);
  assertStringIncludes(
    await Deno.readTextFile(`${dir}/s/logs/seed-0.log`),
    "in use by another run",
  );
  await Deno.remove(dir, { recursive: true });
});
