// `deno task sweep run` end to end without training anything: a study
// sweep whose script only writes its cells' results.json (or fails), run
// here (`--on local`: the JSON line, the collect step, the exit codes) and
// submitted to a stand-in `sbatch` on the PATH (`--on slurm`: one array
// per wave, each after the one before, `--wait` on the last only, the job
// ids recorded). Seconds, where tests/sweep_test.ts trains micro models.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { readSweep, saveSweep, studySweep } from "@d3pm/experiment";
import { errorLine, ROOT, runTool } from "./_run.ts";

// The study's script: `--cell NAME --out DIR` writes DIR/results.json (a
// name starting "fail" exits 1); `--collect DIR` writes DIR/collected (exit
// 3 when the folder holds "collect-fails").
const SCRIPT = `
const [flag, a, , b] = Deno.args;
if (flag === "--collect") {
  const bad = await Deno.stat(a + "/collect-fails").then(() => true, () => false);
  await Deno.writeTextFile(a + "/collected", "yes");
  Deno.exit(bad ? 3 : 0);
}
if (a.startsWith("fail")) Deno.exit(1);
await Deno.mkdir(b, { recursive: true });
await Deno.writeTextFile(b + "/results.json", "{}");
`;

// A stand-in sbatch: logs its arguments and prints the next job id as
// `sbatch --parsable` does ("ID;CLUSTER"); `--wait` exits $FAKE_WAIT_EXIT.
const SBATCH = `#!/bin/bash
n=$(( $(cat "$FAKE_LOG.n" 2>/dev/null || echo 0) + 1 )); echo $n > "$FAKE_LOG.n"
echo "$*" >> "$FAKE_LOG"
echo "$((100 + n));cluster"
[ "$2" = "--wait" ] && exit "\${FAKE_WAIT_EXIT:-0}"
exit 0
`;

/** A saved study sweep in a new folder: `names` cells, wave 1 for `later`. */
async function study(
  names: string[],
  later: string[] = [],
): Promise<{ dir: string; tmp: string }> {
  const tmp = await Deno.makeTempDir({ prefix: "sweep-runner-" });
  await Deno.writeTextFile(`${tmp}/study.ts`, SCRIPT);
  // The script is named relative to the checkout, as a study's is.
  const up = "../".repeat(ROOT.split("/").filter(Boolean).length);
  const dir = `${tmp}/sw`;
  await saveSweep(studySweep(
    dir,
    `${up}${tmp.slice(1)}/study.ts`,
    names.map((name) => ({
      name,
      values: { cell: name },
      out: `${dir}/cells/${name}`,
      args: ["--cell", name, "--out", `${dir}/cells/${name}`],
      ...(later.includes(name) ? { wave: 1 } : {}),
    })),
    ["--collect", dir],
  ));
  return { dir, tmp };
}

/** The last stdout line of a run, parsed. */
function summary(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

Deno.test("sweep run --on local: every cell done, then the study's collect step; jobs 1 by default; exit 0", async () => {
  const { dir, tmp } = await study(["a", "b"]);
  const t0 = performance.now();
  const r = await runTool("sweep.ts", ["run", dir, "--on", "local"]);
  const took = (performance.now() - t0) / 1000;
  assertEquals(r.code, 0, r.stderr);
  const s = summary(r.stdout);
  assertEquals(
    { ...s, seconds: undefined },
    {
      sweep: dir,
      on: "local",
      jobs: 1,
      cells: 2,
      failed: [],
      busy: [],
      seconds: undefined,
    },
  );
  // Whole seconds, no more than the command took as seen from here.
  assert(
    Number.isInteger(s.seconds) && s.seconds as number <= Math.ceil(took),
    `${s.seconds} s of ${took} s`,
  );
  assertEquals(await Deno.readTextFile(`${dir}/collected`), "yes");
  const extra = await runTool("sweep.ts", ["status", dir, "more"]);
  assertEquals(
    [extra.code, errorLine(extra)],
    [1, 'error: Unexpected argument "more": one SPEC.json or DIR'],
  );
  const sweep = await readSweep(dir);
  assertEquals(sweep.version, 1);
  assertEquals(sweep.submissions.map((e) => e.on), ["local --jobs 1"]);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("sweep run --on local: a failed cell skips the collect step and exits 1; a failed collect is named", async () => {
  const { dir, tmp } = await study(["a", "fail-b"]);
  const r = await runTool("sweep.ts", ["run", dir, "--on", "local"]);
  assertEquals(r.code, 1, r.stderr);
  assertEquals(summary(r.stdout).failed, ["fail-b"]);
  assert(
    !(await Deno.stat(`${dir}/collected`).then(() => true, () => false)),
    "no collect after a failed cell",
  );
  const two = await study(["a"]);
  await Deno.writeTextFile(`${two.dir}/collect-fails`, "");
  const c = await runTool("sweep.ts", ["run", two.dir, "--on", "local"]);
  assertEquals(c.code, 1, c.stderr);
  assertEquals(summary(c.stdout).failed, ["collect"]);
  await Deno.remove(tmp, { recursive: true });
  await Deno.remove(two.tmp, { recursive: true });
});

Deno.test("sweep run takes --jobs 1 and 256 but not 0 or 257; --cpus-per-task and --parallel 1 but not 0; --gpus 0 but not -1", async () => {
  const { dir, tmp } = await study(["a"]);
  for (const jobs of ["256", "1"]) {
    const r = await runTool("sweep.ts", [
      "run",
      dir,
      "--on",
      "local",
      "--jobs",
      jobs,
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(summary(r.stdout).jobs, Number(jobs));
  }
  for (const jobs of ["0", "257"]) {
    const r = await runTool("sweep.ts", [
      "run",
      dir,
      "--on",
      "local",
      "--jobs",
      jobs,
    ]);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(
      errorLine(r),
      `error: Option --jobs must be an integer in [1, 256], got ${jobs}`,
    );
  }
  await Deno.remove(`${dir}/cells/a/results.json`);
  const dry = ["run", dir, "--on", "slurm", "--dry-run"];
  const ok = await runTool("sweep.ts", [
    ...dry,
    "--cpus-per-task",
    "1",
    "--parallel",
    "1",
    "--gpus",
    "0",
  ]);
  assertEquals(ok.code, 0, ok.stderr);
  assertStringIncludes(ok.stdout, "#SBATCH --array=0%1\n#SBATCH --requeue\n");
  assertStringIncludes(ok.stdout, "#SBATCH --cpus-per-task=1\n");
  assert(!ok.stdout.includes("--gres"), "no GPU line for --gpus 0");
  for (
    const [flag, v, must] of [
      ["cpus-per-task", "0", "a positive integer"],
      ["parallel", "0", "a positive integer"],
      ["gpus", "-1", "an integer ≥ 0"],
    ]
  ) {
    const r = await runTool("sweep.ts", [...dry, `--${flag}`, v]);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(
      errorLine(r),
      `error: Option --${flag} must be ${must}, got ${v}`,
    );
  }
  await Deno.remove(tmp, { recursive: true });
});

/** A stand-in `sbatch` first on the PATH; its log. */
async function fakeSbatch(
  tmp: string,
  waitExit = 0,
): Promise<{ env: Record<string, string>; log: string }> {
  await Deno.mkdir(`${tmp}/bin`);
  await Deno.writeTextFile(`${tmp}/bin/sbatch`, SBATCH, { mode: 0o755 });
  const log = `${tmp}/sbatch.log`;
  return {
    log,
    env: {
      PATH: `${tmp}/bin:${Deno.env.get("PATH")}`,
      FAKE_LOG: log,
      FAKE_WAIT_EXIT: String(waitExit),
    },
  };
}

Deno.test("sweep run --on slurm submits one array per wave, the second after the first's job id, and records both", async () => {
  const { dir, tmp } = await study(["a", "b", "c"], ["c"]);
  const { env, log } = await fakeSbatch(tmp);
  // Printed first: the second wave waits on the first's job id.
  const dry = await runTool("sweep.ts", [
    "run",
    dir,
    "--on",
    "slurm",
    "--dry-run",
  ]);
  assertEquals(dry.code, 0, dry.stderr);
  assertEquals(
    dry.stdout.match(/^#SBATCH --(array|dependency)=.*$|^# wave .*$/gm),
    [
      "#SBATCH --array=0-1",
      "# wave 1: sbatch --parsable this after wave 0",
      "#SBATCH --array=2",
      "#SBATCH --dependency=afterok:$JOB_OF_WAVE_0",
    ],
  );
  const r = await runTool("sweep.ts", ["run", dir, "--on", "slurm"], env);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(summary(r.stdout), {
    sweep: dir,
    on: "slurm",
    jobId: "101",
    jobIds: ["101", "102"],
    cells: 3,
    script: `${dir}/sweep-wave1.sbatch`,
    then: summary(r.stdout).then,
  });
  assertEquals((await Deno.readTextFile(log)).split("\n"), [
    `--parsable ${dir}/sweep.sbatch`,
    `--parsable ${dir}/sweep-wave1.sbatch`,
    "",
  ]);
  const first = await Deno.readTextFile(`${dir}/sweep.sbatch`);
  const second = await Deno.readTextFile(`${dir}/sweep-wave1.sbatch`);
  assertStringIncludes(first, "#SBATCH --array=0-1\n");
  assert(!first.includes("--dependency"), first);
  assertStringIncludes(
    second,
    "#SBATCH --array=2\n#SBATCH --requeue\n",
  );
  assertStringIncludes(
    second,
    "#SBATCH --dependency=afterok:101\n#SBATCH --kill-on-invalid-dep=yes\n",
  );
  assert(!first.includes("--kill-on-invalid-dep"), first);
  assertEquals(
    (await readSweep(dir)).submissions.map((e) => [e.on, e.jobId]),
    [["slurm", "101"], ["slurm", "102"]],
  );
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("sweep run --on slurm --wait waits on the last wave only and exits 1 on a failed array, 75 when only busy", async () => {
  const one = await study(["a"]);
  const fail = await fakeSbatch(one.tmp, 1);
  const r = await runTool(
    "sweep.ts",
    ["run", one.dir, "--on", "slurm", "--wait"],
    fail.env,
  );
  assertEquals(r.code, 1, r.stderr);
  const s = summary(r.stdout);
  assertEquals([s.jobId, s.jobIds, s.exit], ["101", undefined, 1]);
  assertEquals(
    await Deno.readTextFile(fail.log),
    `--parsable --wait ${one.dir}/sweep.sbatch\n`,
  );
  const two = await study(["a", "b"], ["b"]);
  const busy = await fakeSbatch(two.tmp, 75);
  const b = await runTool(
    "sweep.ts",
    ["run", two.dir, "--on", "slurm", "--wait"],
    busy.env,
  );
  assertEquals(b.code, 75, b.stderr);
  assertEquals((await Deno.readTextFile(busy.log)).split("\n"), [
    `--parsable ${two.dir}/sweep.sbatch`,
    `--parsable --wait ${two.dir}/sweep-wave1.sbatch`,
    "",
  ]);
  await Deno.remove(one.tmp, { recursive: true });
  await Deno.remove(two.tmp, { recursive: true });
});

Deno.test("sweep run --on slurm makes the sweep's logs folder before sbatch: Slurm opens each task's output there before the task runs", async () => {
  const { dir, tmp } = await study(["a", "b"], ["b"]);
  await Deno.remove(`${dir}/logs`, { recursive: true }).catch(() => {});
  const { env, log } = await fakeSbatch(tmp);
  // The stand-in fails as Slurm's tasks did when the folder is missing.
  await Deno.writeTextFile(
    `${tmp}/bin/sbatch`,
    SBATCH.replace(
      "#!/bin/bash\n",
      `#!/bin/bash\n[ -d ${dir}/logs ] || { echo "no ${dir}/logs" >&2; exit 1; }\n`,
    ),
  );
  const r = await runTool("sweep.ts", ["run", dir, "--on", "slurm"], env);
  assertEquals(r.code, 0, r.stderr);
  assertEquals((await Deno.readTextFile(log)).split("\n").length, 3);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("sweep run moves a cell's broken results.json aside and runs the cell again; status said broken, not finished", async () => {
  const { dir, tmp } = await study(["a", "b"]);
  await Deno.mkdir(`${dir}/cells/a`, { recursive: true });
  await Deno.writeTextFile(`${dir}/cells/a/results.json`, '{"torn');
  const before = await runTool("sweep.ts", ["status", dir]);
  assertStringIncludes(before.stdout, "  0  broken    a: ");
  assertStringIncludes(before.stdout, "2 cells: 0 finished");
  const r = await runTool("sweep.ts", ["run", dir, "--on", "local"]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(
    r.stderr,
    `; moved it aside to ${dir}/cells/a/results.json.broken, the cell runs again`,
  );
  assertEquals(await Deno.readTextFile(`${dir}/cells/a/results.json`), "{}");
  assertEquals(
    await Deno.readTextFile(`${dir}/cells/a/results.json.broken`),
    '{"torn',
  );
  const after = await runTool("sweep.ts", ["status", dir]);
  assertStringIncludes(after.stdout, "2 cells: 2 finished");
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("sweep status notes a job script written before the cells' step judged by its rule, which skips a broken cell, only while a cell is broken", async () => {
  const { dir, tmp } = await study(["a"]);
  // The step of such a script (what sbatchScript wrote before).
  await Deno.writeTextFile(
    `${dir}/sweep.sbatch`,
    `#!/bin/bash\ncase "$SLURM_ARRAY_TASK_ID" in\n  0)\n    if [ -f ${dir}/cells/a/results.json ]; then\n      echo 'cell a: finished, skipped'; exit 0\n    fi\n    ;;\nesac\n`,
  );
  const note =
    `note: ${dir}/sweep.sbatch was written before the job script judged a cell by this rule: a task of it (requeued by Slurm, or submitted again) takes a broken results.json for finished and skips its cell; deno task sweep run ${dir} --on slurm moves it aside and submits a script that checks`;
  const status = () => runTool("sweep.ts", ["status", dir]);
  assert(!(await status()).stderr.includes("note:"), "no cell broken");
  await Deno.mkdir(`${dir}/cells/a`, { recursive: true });
  await Deno.writeTextFile(`${dir}/cells/a/results.json`, "[]");
  const r = await status();
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "  0  broken    a: ");
  assertStringIncludes(r.stderr, note);
  // A script of this version asks the rule: no note.
  await Deno.writeTextFile(
    `${dir}/sweep.sbatch`,
    `if [ $rc -eq 0 ]; then\n  echo 'cell a: finished, skipped'; exit 0\nfi\n`,
  );
  assert(!(await status()).stderr.includes("note:"));
  // The sweep moved to a folder whose name has a space: the command the
  // note gives quotes it, so that it runs as printed.
  await Deno.writeTextFile(
    `${dir}/sweep.sbatch`,
    `    if [ -f ${dir}/cells/a/results.json ]; then\n`,
  );
  const moved = `${tmp}/my sweep`;
  await Deno.rename(dir, moved);
  const quoted = await runTool("sweep.ts", ["status", moved]);
  assertEquals(quoted.code, 0, quoted.stderr);
  assertStringIncludes(
    quoted.stderr,
    `; deno task sweep run '${moved}' --on slurm moves it aside`,
  );
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("sweep plan refuses a --data folder that is not there, fixed or swept, in one line, and saves nothing", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "sweep-runner-" });
  for (
    const args of [
      ["--data", `${tmp}/none`],
      ["--set", `data=${tmp},${tmp}/none`],
    ]
  ) {
    const r = await runTool("sweep.ts", [
      "plan",
      "--preset",
      "micro",
      ...args,
      "--dir",
      `${tmp}/sw`,
    ]);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(
      errorLine(r),
      `error: Option --data ${tmp}/none: no such file or folder here (${
        ROOT.replace(/\/$/, "")
      }), so every cell on it would fail; give a corpus folder the cells can read`,
    );
    assertEquals(await Deno.stat(`${tmp}/sw`).catch(() => null), null);
  }
  await Deno.remove(tmp, { recursive: true });
});
