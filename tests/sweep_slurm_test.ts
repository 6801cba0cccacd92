// A sweep through a real Slurm: a 4-cell micro sweep submitted with sbatch as
// a job array; one cell is cancelled mid-run (scancel) and the sweep
// re-submitted: only that cell runs again, resumes its folder, and ends bit
// for bit where an uninterrupted run of the same cell ends. The four folders
// are then merged into one report. The cluster is this machine's own
// (tools/slurm_local.sh, which installs Slurm as root); where it cannot
// start, the test is skipped — and fails under CI=true, which requires it.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { ignoreUnless } from "@d3pm/core/testing";
import {
  measuredFigures,
  readSweep,
  RunFolder,
  sweepStatus,
} from "@d3pm/experiment";
import { FAST_EVAL, ROOT, runScript, runTool } from "./_run.ts";

async function sh(
  cmd: string,
  args: string[],
): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await new Deno.Command(cmd, {
      args,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const dec = new TextDecoder();
    return {
      ok: r.success,
      out: (dec.decode(r.stdout) + dec.decode(r.stderr)).trim(),
    };
  } catch (e) {
    return { ok: false, out: (e as Error).message.split("\n")[0] };
  }
}

/** Whether this test started the cluster (it then stops it when the tests end). */
let startedHere = false;

/** Why Slurm is not usable here (undefined: it is; started if need be). */
async function slurmMissing(): Promise<string | undefined> {
  // Bounded: sinfo retries for minutes where the host name does not resolve.
  const up = await sh("bash", ["-c", "timeout 5 sinfo -h -o %T"]);
  if (up.out.match(/idle|mix|alloc/)) {
    return undefined;
  }
  const installed = await sh("bash", [
    "-c",
    "command -v sbatch slurmctld slurmd munged",
  ]);
  // As root, tools/slurm_local.sh start installs slurm-wlm and munge with
  // apt-get (a fresh CI machine has neither) and starts the daemons.
  if (Deno.uid() !== 0) {
    return installed.ok
      ? "starting the local cluster needs root"
      : "slurm-wlm and munge are not installed (tools/slurm_local.sh start installs them, as root)";
  }
  const started = await sh("bash", [`${ROOT}tools/slurm_local.sh`, "start"]);
  startedHere = started.ok;
  return started.ok
    ? undefined
    : `tools/slurm_local.sh start failed: ${started.out.split("\n").at(-1)}`;
}

const missing = Deno.env.get("D3PM_SKIP_SLURM")
  ? "D3PM_SKIP_SLURM is set"
  : await slurmMissing();

// A cluster this file started is stopped when the test process ends.
globalThis.addEventListener("unload", () => {
  if (!startedHere) return;
  new Deno.Command("bash", {
    args: [`${ROOT}tools/slurm_local.sh`, "stop"],
    stdout: "null",
    stderr: "null",
  }).outputSync();
});

// Each cell: micro, 40 steps per model, checkpoints every 10, the run's own
// AR as judge (no judge to train), gen PPL of the last timed batch: a few
// seconds. On tfjs, named: it logs every step, and the cancel waits for the
// AR's step 14 (`auto` trains on the CPU engine where no GPU is, logging
// every --log-every steps).
const CELL = [
  "--preset",
  "micro",
  "--engine",
  "tfjs",
  "--steps",
  "40",
  "--warmup",
  "2",
  "--checkpoint-every",
  "10",
  "--judge",
  "self",
  "--exact-blocks",
  "0",
  "--samples",
  "1",
  ...FAST_EVAL,
  // gen PPL of the last timed batch alone: no 64 rows more to generate
  // and judge in each of the six runs.
  "--gen-samples",
  "0",
];

Deno.test({
  name:
    "a 4-cell sweep runs as a Slurm job array; a cancelled cell resumes bit-identically on re-submission; the folders merge",
  ignore: ignoreUnless("slurm", missing),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sweep-slurm-" });
    const sweep = (args: string[]) =>
      runTool("sweep.ts", [...args, "--cpus-per-task", "1"]);
    // Submit (without waiting), then cancel cell 2 once its AR model has
    // passed its first checkpoint (step 10): most of the cell is still to
    // run when scancel lands.
    const first = await sweep([
      "run",
      "--seeds",
      "0..3",
      ...CELL,
      "--dir",
      dir,
      "--on",
      "slurm",
    ]);
    assertEquals(first.code, 0, first.stderr);
    const { jobId } = JSON.parse(first.stdout.trim().split("\n").at(-1)!);
    const s = await readSweep(dir);
    const victim = s.cells[2];
    const marker = `"model":"ar","seed":2,"step":14`;
    const deadline = Date.now() + 300_000;
    while (Date.now() < deadline) {
      const text = await Deno.readTextFile(`${victim.out}/metrics.jsonl`)
        .catch(() => "");
      if (text.includes(marker)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const cancel = await sh("scancel", [`${jobId}_2`]);
    assert(cancel.ok, cancel.out);
    // Wait for the array to drain.
    while (Date.now() < deadline) {
      const q = await sh("squeue", ["-h", "-j", jobId]);
      if (q.out === "") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const cut = await Deno.stat(`${victim.out}/results.json`).then(
      () => true,
      () => false,
    );
    assert(!cut, "cell 2 finished before it could be cancelled mid-run");
    // squeue can drain before the cancelled process has exited (and let go
    // of its lock): wait for it to stop reading as running.
    let mid = await sweepStatus(s);
    while (mid[2].state === "running" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      mid = await sweepStatus(s);
    }
    assertEquals(mid.map((c) => c.state), [
      "finished",
      "finished",
      "pending",
      "finished",
    ]);
    assert(mid[2].steps >= 14, `cell 2 was cut at ${mid[2].steps} steps`);
    // Re-submit: only cell 2 is in the array; it resumes.
    const again = await sweep(["run", dir, "--on", "slurm", "--wait"]);
    assertEquals(again.code, 0, again.stderr);
    assertEquals(JSON.parse(again.stdout.trim().split("\n").at(-1)!).cells, 1);
    assertStringIncludes(
      await Deno.readTextFile(`${dir}/sweep.sbatch`),
      "#SBATCH --array=2\n",
    );
    const status = await runTool("sweep.ts", ["status", dir]);
    assertStringIncludes(status.stdout, "4 cells: 4 finished");
    // An uninterrupted run of the same cell, with the cell's BLAS threads
    // (a different thread count changes the sums), ends in the same place.
    const whole = await Deno.makeTempDir();
    const args = victim.args.slice(0, victim.args.indexOf("--out"));
    const ref = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}examples/experiment.ts`,
        ...args,
        "--out",
        whole,
      ],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
      env: {
        OPENBLAS_NUM_THREADS: "1",
        OMP_NUM_THREADS: "1",
        MKL_NUM_THREADS: "1",
      },
    }).output();
    assertEquals(ref.code, 0, new TextDecoder().decode(ref.stderr));
    const read = async (d: string) =>
      JSON.parse(await Deno.readTextFile(`${d}/results.json`)).results.map(
        measuredFigures,
      );
    assertEquals(await read(victim.out), await read(whole));
    assertEquals(
      await Deno.readTextFile(`${victim.out}/samples.txt`),
      await Deno.readTextFile(`${whole}/samples.txt`),
    );
    // One report over the four folders.
    const merged = await runScript("examples/report.ts", ["--merge", dir]);
    assertEquals(merged.code, 0, merged.stderr);
    const md = await Deno.readTextFile(`${dir}/report.md`);
    assertStringIncludes(md, "| AR | 4 (0, 1, 2, 3) |");
    assertStringIncludes(md, "| D3PM | 4 (0, 1, 2, 3) |");
    assertStringIncludes(md, "| seed-2 | AR | 2 |");
    assert(
      (await Deno.stat(`${dir}/loss-all_runs.svg`)).size > 1000,
      "the merged loss chart is missing",
    );
    await Deno.remove(whole, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name:
    "a Slurm array task whose cell another live run holds leaves it to it: busy, no exit code kept, --wait exits 75",
  ignore: ignoreUnless("slurm", missing),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sweep-slurm-busy-" });
    const plan = await runTool("sweep.ts", [
      "plan",
      "--seeds",
      "1",
      ...CELL,
      "--dir",
      dir,
    ]);
    assertEquals(plan.code, 0, plan.stderr);
    const [cell] = (await readSweep(dir)).cells;
    // Another run holds the cell: this process, alive, its lock taken.
    await Deno.mkdir(cell.out, { recursive: true });
    const release = await new RunFolder(cell.out).lock();
    const run = await runTool("sweep.ts", [
      "run",
      dir,
      "--on",
      "slurm",
      "--wait",
      "--cpus-per-task",
      "1",
    ]);
    release();
    assertEquals(run.code, 75, run.stderr);
    const { jobId, exit } = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
    assertEquals(exit, 75);
    assertStringIncludes(
      await Deno.readTextFile(`${dir}/logs/slurm-${jobId}_0.out`),
      `cell seed-0: busy: in use by another run (pid ${Deno.pid}), left to it`,
    );
    assertEquals((await sweepStatus(await readSweep(dir)))[0].state, "pending");
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name:
    "sweep run --on slurm --wait exits 1, not 75, when a cell failed beside one left busy (sbatch --wait gives the highest task code, 75)",
  ignore: ignoreUnless("slurm", missing),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sweep-slurm-mixed-" });
    const plan = await runTool("sweep.ts", [
      "plan",
      "--seeds",
      "2",
      ...CELL,
      "--dir",
      dir,
    ]);
    assertEquals(plan.code, 0, plan.stderr);
    const [held, broken] = (await readSweep(dir)).cells;
    await Deno.mkdir(held.out, { recursive: true });
    const release = await new RunFolder(held.out).lock();
    // A folder holding a user's file is never used: that cell fails (exit 1).
    await Deno.mkdir(broken.out, { recursive: true });
    await Deno.writeTextFile(`${broken.out}/notes.txt`, "mine");
    const run = await runTool("sweep.ts", [
      "run",
      dir,
      "--on",
      "slurm",
      "--wait",
      "--cpus-per-task",
      "1",
    ]);
    release();
    assertEquals(run.code, 1, run.stderr);
    assertEquals(JSON.parse(run.stdout.trim().split("\n").at(-1)!).exit, 75);
    assertEquals(
      (await sweepStatus(await readSweep(dir))).map((s) => s.state),
      ["pending", "failed"],
    );
    await Deno.remove(dir, { recursive: true });
  },
});
