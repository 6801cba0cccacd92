// The ablation's and the epochs study's grids as sweep cells, as a user
// runs them: planned by the study (--sweep), printed as Slurm job arrays by
// `deno task sweep run DIR --on slurm --dry-run`, and — the epochs study at
// micro size — run as local jobs, collected, and compared with the serial
// study.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { grid } from "@d3pm/experiment/studies";
import { errorLine, ROOT, runScript, runTool } from "./_run.ts";

/** The `#SBATCH --array=` lines of a dry run, in order. */
function arrays(text: string): string[] {
  return [...text.matchAll(/^#SBATCH --array=(.*)$/gm)].map((m) => m[1]);
}

Deno.test("deno task ablate --sweep writes one cell per variant; the dry run is an sbatch array of that length", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ablate-sweep-" });
  // Too few steps for the whole grid (its warm-up 100 and 200 variants):
  // refused naming a variant, and nothing planned.
  const few = await runTool("ablate.ts", [
    "--steps",
    "30",
    "--out",
    dir,
    "--sweep",
  ]);
  assertEquals(
    errorLine(few),
    'error: Variant "d3pm warm-up 100" cannot run at --steps 30: it warms up for 100 of its 30 steps; it needs --steps 100, 110, 120, … (or choose other variants with --only)',
  );
  assertEquals([...Deno.readDirSync(dir)], []);
  const plan = await runTool("ablate.ts", [
    "--steps",
    "100",
    "--out",
    dir,
    "--sweep",
  ]);
  assertEquals(plan.code, 0, plan.stderr);
  const n = grid(100).length;
  assertStringIncludes(plan.stdout, `${n} cells in ${dir}:`);
  assertStringIncludes(
    plan.stdout,
    `deno run -A examples/ablate.ts --steps 100 --out ${dir} --variant 'd3pm no EMA'`,
  );
  const dry = await runTool("sweep.ts", [
    "run",
    dir,
    "--on",
    "slurm",
    "--dry-run",
    "--cpus-per-task",
    "2",
  ]);
  assertEquals(dry.code, 0, dry.stderr);
  assertEquals(arrays(dry.stdout), [`0-${n - 1}`]);
  assertEquals(dry.stdout.match(/--variant /g)?.length, n);
  assertStringIncludes(dry.stdout, "examples/ablate.ts --steps 100 --out");
  const status = await runTool("sweep.ts", ["status", dir]);
  assertStringIncludes(
    status.stdout,
    `${n} cells: 0 finished, 0 running, ${n} pending, 0 failed`,
  );
  const unknown = await runTool("ablate.ts", [
    "--steps",
    "30",
    "--out",
    dir,
    "--variant",
    "ar lr 9",
  ]);
  assertEquals(
    errorLine(unknown),
    'error: Unknown variant "ar lr 9": --variant takes a name of the grid (deno task ablate --sweep lists them)',
  );
  // The plan's variants have not run: --collect names them.
  const collect = await runTool("ablate.ts", [
    "--steps",
    "100",
    "--out",
    dir,
    "--collect",
  ]);
  assertStringIncludes(
    errorLine(collect),
    `error: Cannot collect ${dir}: ${n} of ${n} planned variants have no results at 100 steps (ar lr 0.001, `,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task study epochs --sweep: two waves, printed as two sbatch arrays, the second after the first", async () => {
  const dir = await Deno.makeTempDir({ prefix: "epochs-sweep-" });
  const plan = await runTool("study.ts", ["epochs", "--out", dir, "--sweep"]);
  assertEquals(plan.code, 0, plan.stderr);
  // The cpu scale: 3 dropouts × 2 decays, 3 U: 6 + 3 D3PM, then 2 AR.
  assertStringIncludes(plan.stdout, `11 cells in ${dir}:`);
  const dry = await runTool("sweep.ts", [
    "run",
    dir,
    "--on",
    "slurm",
    "--dry-run",
  ]);
  assertEquals(dry.code, 0, dry.stderr);
  assertEquals(arrays(dry.stdout), ["0-8", "9-10"]);
  assertEquals(
    dry.stdout.match(/^#SBATCH --dependency=afterok:\$JOB_OF_WAVE_0$/gm)
      ?.length,
    1,
  );
  assertStringIncludes(dry.stdout, "--cell main-u40000-ar >>");
  // The second wave's script follows a blank line and its own heading.
  assertStringIncludes(
    dry.stdout,
    "\n\n# wave 1: sbatch --parsable this after wave 0\n#!/bin/bash\n",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the epochs study at micro size as local jobs ends as the serial study: the same epochs.jsonl and charts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "epochs-cells-" });
  const study = [
    "epochs",
    "--preset",
    "micro",
    "--u",
    "4000,8000",
    "--tokens",
    "16000",
    "--dropouts",
    "0,0.1",
    "--decays",
    "0.1",
    "--valid-blocks",
    "8",
  ];
  // The same BLAS threads as each of the two local jobs (see docs/sweeps.md).
  const threads = String(
    Math.max(1, Math.floor((navigator.hardwareConcurrency ?? 1) / 2)),
  );
  const serial = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}examples/study.ts`,
      ...study,
      "--out",
      `${dir}/serial`,
    ],
    cwd: ROOT,
    env: {
      NO_COLOR: "1",
      OPENBLAS_NUM_THREADS: threads,
      OMP_NUM_THREADS: threads,
      MKL_NUM_THREADS: threads,
    },
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(serial.code, 0, new TextDecoder().decode(serial.stderr));
  const plan = await runTool("study.ts", [
    ...study,
    "--out",
    `${dir}/cells`,
    "--sweep",
  ]);
  assertEquals(plan.code, 0, plan.stderr);
  const run = await runScript("examples/sweep.ts", [
    "run",
    `${dir}/cells`,
    "--on",
    "local",
    "--jobs",
    "2",
  ]);
  assertEquals(run.code, 0, run.stderr);
  assertStringIncludes(run.stdout, '"cells":5,"failed":[]');
  for (const file of ["epochs.jsonl", "sweep.svg", "valid-vs-epochs.svg"]) {
    assertEquals(
      await Deno.readTextFile(`${dir}/cells/${file}`),
      await Deno.readTextFile(`${dir}/serial/${file}`),
      file,
    );
  }
  const status = await runTool("sweep.ts", ["status", `${dir}/cells`]);
  assertStringIncludes(status.stdout, "5 cells: 5 finished");
  assert(
    (await Deno.readTextFile(`${dir}/cells/report.md`)).includes("AR dropout"),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test('deno task ablate --only with no variant name (" ; ") is refused before anything runs, not a run of nothing', async () => {
  const dir = await Deno.makeTempDir({ prefix: "ablate-only-" });
  try {
    for (const mode of [[], ["--sweep"]]) {
      const r = await runTool("ablate.ts", [
        "--steps",
        "100",
        "--out",
        dir,
        "--only",
        " ; ",
        ...mode,
      ]);
      assert(r.code !== 0, r.stdout);
      assertEquals(
        errorLine(r),
        'error: Option --only needs a variant name (or several, separated by ;), got " ; "',
      );
      assertEquals([...Deno.readDirSync(dir)], []);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
