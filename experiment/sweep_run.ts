/**
 * Running a sweep as `deno task sweep` does: the spec file read and merged
 * with the command line's values, the `--data` folders checked, broken
 * results moved aside, the cells run here or submitted to Slurm one job
 * array per wave. Each run returns what the script prints on stdout and its
 * exit code, so the script stays a thin reader of its command line.
 *
 * @module
 */
import { flagOf, keyOf, UsageError } from "@d3pm/cli";
import { readJsonBounded, readTextBounded } from "@d3pm/core";
import { FOLDER_BUSY_EXIT } from "./run_folder.ts";
import { shellQuote } from "./_shell.ts";
import {
  parseGrid,
  parseSeeds,
  recordSubmission,
  runLocal,
  sbatchScript,
  type SlurmOptions,
  type Sweep,
  SWEEP_FILE_LIMIT,
  type SweepCell,
  sweepPaths,
  type SweepSpec,
  sweepStatus,
  type SweepValue,
  waves,
} from "./sweep.ts";

/** What a sweep run prints on stdout, and the exit code it ends with. */
export interface SweepRunResult {
  /** Its stdout: a JSON line, or the job scripts of a dry run. */
  output: string;
  /** 0; 1 when a cell or the collect step failed; `FOLDER_BUSY_EXIT` when cells were left to another run. */
  exitCode: number;
}

// A sweep file: a JSON object {"options", "grid", "seeds"}, checked.
async function readSpecFile(file: string): Promise<SweepSpec> {
  let spec: SweepSpec;
  try {
    spec = await readJsonBounded(file, {
      limit: SWEEP_FILE_LIMIT,
      what: "sweep file",
    }) as SweepSpec;
  } catch (e) {
    throw new UsageError(
      `Cannot read the sweep file ${file}: ${
        (e as Error).message.split("\n")[0]
      } (a JSON object {"options", "grid", "seeds"})`,
    );
  }
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new UsageError(
      `The sweep file ${file} must hold a JSON object {"options", "grid", "seeds"}`,
    );
  }
  // A key it does not know (a run's config.json given by mistake) would
  // be ignored, and a sweep of the defaults planned.
  const unknown = Object.keys(spec).find((k) =>
    !["options", "grid", "seeds"].includes(k)
  );
  const notObject = (["options", "grid"] as const).find((k) =>
    spec[k] !== undefined &&
    (typeof spec[k] !== "object" || spec[k] === null ||
      Array.isArray(spec[k]))
  );
  if (unknown !== undefined || notObject !== undefined) {
    throw new UsageError(
      `The sweep file ${file} must hold a JSON object {"options", "grid", "seeds"} (options and grid objects), ${
        unknown !== undefined
          ? `not the key "${unknown}"`
          : `got ${JSON.stringify(spec[notObject!])} for ${notObject}`
      }`,
    );
  }
  return spec;
}

/**
 * The fixed options and the grid of a new sweep, from a spec file and the
 * command line: its options given override the file's, `--set` adds to
 * the file's grid (a key in both is refused), `--seeds` replaces its seeds.
 *
 * @param file The sweep file (a JSON object `{"options", "grid", "seeds"}`), if any.
 * @param flags The experiment options given, `--set` and `--seeds`.
 * @returns The spec to plan.
 * @throws {UsageError} On a file that cannot be read or holds anything
 *   else, or a key swept in both places.
 *
 * @example
 * ```ts
 * import { sweepSpecOf } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const file = await Deno.makeTempFile({ suffix: ".json" });
 * await Deno.writeTextFile(file, JSON.stringify({ options: { preset: "tiny", steps: 9 }, seeds: [1] }));
 * const spec = await sweepSpecOf(file, { options: { steps: 20 }, set: "lr=1e-3,2e-3" });
 * assertEquals(spec, { options: { preset: "tiny", steps: 20 }, grid: { lr: ["1e-3", "2e-3"] }, seeds: [1] });
 * await Deno.remove(file);
 * ```
 */
export async function sweepSpecOf(
  file: string | undefined,
  flags: {
    options: Record<string, SweepValue>;
    set?: string;
    seeds?: string;
  },
): Promise<SweepSpec> {
  const spec: SweepSpec = file ? await readSpecFile(file) : {};
  const options: Record<string, SweepValue> = {
    ...spec.options,
    ...flags.options,
  };
  const grid: Record<string, SweepValue[]> = { ...spec.grid };
  if (typeof flags.set === "string") {
    // A key in both would have --set silently replace the file's values
    // (or, spelt otherwise, sweep it twice): refused, naming both.
    const set = parseGrid(flags.set);
    const inFile = new Map(Object.keys(grid).map((k) => [keyOf(k), k]));
    const both = Object.keys(set).find((k) => inFile.has(k));
    if (both !== undefined) {
      throw new UsageError(
        `--${flagOf(both)} is swept both by --set (${both}=${
          set[both].join(",")
        }) and by the grid of the sweep file ${file} (${inFile.get(both)}: ${
          JSON.stringify(grid[inFile.get(both)!])
        }): give it in one place`,
      );
    }
    Object.assign(grid, set);
  }
  return {
    options,
    grid,
    seeds: typeof flags.seeds === "string"
      ? parseSeeds(flags.seeds)
      : spec.seeds ?? [0],
  };
}

/**
 * The job scripts of a sweep folder written before the cells' step asked
 * whether a cell has finished: they test `[ -f …/results.json ]`, which a
 * broken one passes (`sweep status` warns of them).
 *
 * @param dir The sweep folder.
 * @returns Their paths, sorted.
 *
 * @example
 * ```ts
 * import { oldSweepScripts } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/sweep.sbatch`, "  if [ -f cells/a/results.json ]; then\n");
 * await Deno.writeTextFile(`${dir}/sweep-wave1.sbatch`, "deno run _cell_results.ts\n");
 * assertEquals(await oldSweepScripts(dir), [`${dir}/sweep.sbatch`]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function oldSweepScripts(dir: string): Promise<string[]> {
  const old: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !/^sweep(-wave\d+)?\.sbatch$/.test(e.name)) continue;
    const text = await readTextBounded(`${dir}/${e.name}`, {
      limit: SWEEP_FILE_LIMIT,
      what: "job script",
    }).catch(() => "");
    if (/^\s*if \[ -f .*\/results\.json \]; then$/m.test(text)) {
      old.push(`${dir}/${e.name}`);
    }
  }
  return old.sort();
}

/**
 * Before a run: each cell whose results.json is broken (there, but not a
 * JSON object: torn, edited) has it moved aside to results.json.broken and
 * said so (the cells' step, which judges by the same rule, would move it
 * too, saying so in the cell's log only).
 *
 * @param sweep The sweep.
 * @param log Where the line for each goes (default stderr).
 *
 * @example
 * ```ts
 * import { moveBrokenAside, planSweep, saveSweep } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const root = await Deno.makeTempDir();
 * const sweep = await saveSweep(planSweep({ seeds: 1 }, { dir: `${root}/sw` }));
 * const out = sweep.cells[0].out;
 * await Deno.mkdir(out, { recursive: true });
 * await Deno.writeTextFile(`${out}/results.json`, "{ torn");
 * const lines: string[] = [];
 * await moveBrokenAside(sweep, (l) => lines.push(l));
 * assertEquals(await Deno.readTextFile(`${out}/results.json.broken`), "{ torn");
 * assertEquals(lines.length, 1);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function moveBrokenAside(
  sweep: Sweep,
  log: (line: string) => void = console.error,
): Promise<void> {
  for (const s of await sweepStatus(sweep)) {
    if (s.state !== "broken") continue;
    const file = `${s.cell.out}/results.json`;
    await Deno.rename(file, `${file}.broken`);
    log(
      `cell ${s.cell.name}: ${s.broken}; moved it aside to ${file}.broken, the cell runs again`,
    );
  }
}

/**
 * A `--data` folder (fixed or swept) that is not there is refused at plan
 * time: every cell run on it would fail (the cells run where the sweep is
 * planned from, or on nodes that see the same paths).
 *
 * @param sweep The sweep.
 * @throws {UsageError} Naming the first missing path.
 *
 * @example
 * ```ts
 * import { checkSweepData, planSweep } from "@d3pm/experiment";
 * import { UsageError } from "@d3pm/cli";
 * import { assertRejects } from "@std/assert";
 * const sweep = planSweep({ options: { data: "/nowhere/wikitext" } }, { dir: "/tmp/sw" });
 * await assertRejects(() => checkSweepData(sweep), UsageError, "Option --data /nowhere/wikitext: no such file or folder");
 * ```
 */
export async function checkSweepData(sweep: Sweep): Promise<void> {
  const paths = new Set(
    sweep.cells.map((c) => c.args[c.args.indexOf("--data") + 1])
      .filter((p, i) => sweep.cells[i].args.includes("--data") && p !== ""),
  );
  for (const path of paths) {
    if (await Deno.stat(path).then(() => false, () => true)) {
      throw new UsageError(
        `Option --data ${path}: no such file or folder here (${Deno.cwd()}), so every cell on it would fail; give a corpus folder the cells can read`,
      );
    }
  }
}

/**
 * `sweep run --on local`: broken results moved aside, the cells run here
 * (`runLocal`, in the current folder), then a study's collect step when
 * every cell finished.
 *
 * @param sweep The sweep.
 * @param o Processes at once, the experiment command and the deno that
 *   checks a cell (default this one).
 * @returns One JSON line (cells, failed, busy, seconds) and the exit code:
 *   1 when a cell or the collect failed, `FOLDER_BUSY_EXIT` when cells were
 *   left to another run.
 *
 * @example A command that fails
 * ```ts
 * import { planSweep, runSweepLocal, saveSweep } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const root = await Deno.makeTempDir();
 * const sweep = await saveSweep(planSweep({ seeds: 1 }, { dir: `${root}/sw` }));
 * const r = await runSweepLocal(sweep, { jobs: 1, experiment: "false", log: () => {} });
 * assertEquals([JSON.parse(r.output).failed, r.exitCode], [["seed-0"], 1]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function runSweepLocal(
  sweep: Sweep,
  o: {
    jobs: number;
    experiment: string;
    deno?: string;
    log?: (line: string) => void;
  },
): Promise<SweepRunResult> {
  const started = performance.now();
  await moveBrokenAside(sweep, o.log);
  await recordSubmission(sweep.dir, { on: `local --jobs ${o.jobs}` });
  const busy: string[] = [];
  const failedCells = await runLocal(sweep, {
    jobs: o.jobs,
    workdir: Deno.cwd(),
    experiment: o.experiment,
    deno: o.deno ?? Deno.execPath(),
    onBusy: (c) => busy.push(c.name),
    ...(o.log ? { log: o.log } : {}),
  });
  const failed = failedCells.map((c) => c.name);
  if (sweep.collect && failed.length === 0 && busy.length === 0) {
    // The study's own table and report from the finished cells.
    const { code } = await new Deno.Command("bash", {
      args: [
        "-c",
        `${o.experiment} ${sweep.collect.map(shellQuote).join(" ")}`,
      ],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    if (code !== 0) failed.push("collect");
  }
  const output = JSON.stringify({
    sweep: sweep.dir,
    on: "local",
    jobs: o.jobs,
    cells: sweep.cells.length,
    failed,
    busy,
    seconds: Math.round((performance.now() - started) / 1000),
  });
  // None failed, but cells in use by another run were left to it (and any
  // later wave not run): not done yet, nothing wrong; 75 is EX_TEMPFAIL.
  const exitCode = failed.length ? 1 : busy.length ? FOLDER_BUSY_EXIT : 0;
  return { output, exitCode };
}

/** Settings of {@linkcode runSweepOnSlurm}. */
export interface SweepSlurmRun
  extends Omit<SlurmOptions, "workdir" | "extra" | "cells" | "after"> {
  /** `#SBATCH` lines, split at `;` or line breaks. */
  sbatch?: string;
  /** Print each wave's script, submit nothing. */
  dryRun?: boolean;
  /** `sbatch --wait` on the last wave; the exit code follows the array's. */
  wait?: boolean;
  /** The study's collect command, named in the JSON line. */
  collect?: string;
}

// Each wave's script, one after the other, none submitted (a dry run).
function waveScripts(
  sweep: Sweep,
  parts: readonly SweepCell[][],
  settings: SlurmOptions,
): string {
  const text: string[] = [];
  parts.forEach((part, k) => {
    const script = sbatchScript(sweep, {
      ...settings,
      cells: part.map((c) => c.index),
      ...(k > 0 ? { after: `$JOB_OF_WAVE_${k - 1}` } : {}),
    });
    if (k > 0) {
      text.push(`\n# wave ${k}: sbatch --parsable this after wave ${k - 1}`);
    }
    text.push(script.trimEnd());
  });
  return text.join("\n");
}

// One sbatch submission of a wave's script; its job id.
async function submitWave(
  path: string,
  wait: boolean,
): Promise<{ jobId: string; out: Deno.CommandOutput }> {
  const out = await new Deno.Command("sbatch", {
    args: ["--parsable", ...(wait ? ["--wait"] : []), path],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((e) => {
    throw new Error(
      `Cannot run sbatch (${
        (e as Error).message.split("\n")[0]
      }): is Slurm installed here? (tools/slurm_local.sh start; or --dry-run to print the script)`,
    );
  });
  const text = new TextDecoder().decode(out.stdout).trim();
  const jobId = text.split(";")[0].split("\n")[0];
  if (!/^\d+$/.test(jobId)) {
    throw new Error(
      `sbatch failed: ${
        new TextDecoder().decode(out.stderr).trim().split("\n")[0]
      }`,
    );
  }
  return { jobId, out };
}

// Submit one array per wave, each after the one before; the job ids.
async function submitWaves(
  sweep: Sweep,
  parts: readonly SweepCell[][],
  o: { settings: SlurmOptions; wait: boolean },
): Promise<{ jobIds: string[]; out?: Deno.CommandOutput; path: string }> {
  const jobIds: string[] = [];
  let out: Deno.CommandOutput | undefined, path = "";
  // Slurm opens each task's --output (DIR/logs/slurm-…) before the task
  // runs: without the folder (cleaned, or a sweep copied without it) every
  // task died unstarted, leaving no trace, and status said all pending.
  await Deno.mkdir(`${sweep.dir}/logs`, { recursive: true });
  for (const [k, part] of parts.entries()) {
    const script = sbatchScript(sweep, {
      ...o.settings,
      cells: part.map((c) => c.index),
      ...(k > 0 ? { after: jobIds[k - 1] } : {}),
    });
    path = k === 0
      ? sweepPaths(sweep.dir).sbatch
      : sweepPaths(sweep.dir).sbatch.replace(/\.sbatch$/, `-wave${k}.sbatch`);
    await Deno.writeTextFile(path, script);
    const wave = await submitWave(path, o.wait && k === parts.length - 1);
    out = wave.out;
    jobIds.push(wave.jobId);
    await recordSubmission(sweep.dir, { on: "slurm", jobId: wave.jobId });
  }
  return { jobIds, out, path };
}

/**
 * `sweep run --on slurm`: broken results moved aside, then the cells that
 * are not finished submitted as job arrays, one per wave of a study, each
 * after the one before it has ended well (`sbatch` from the PATH); or, on
 * a dry run, each wave's script.
 *
 * @param sweep The sweep.
 * @param o Where, how long, which resources; `dryRun`, `wait`.
 * @returns One JSON line (job ids, cells, script) or the scripts, and the
 *   exit code (with `wait`: 1 when a cell failed, `FOLDER_BUSY_EXIT` when
 *   cells were left to another run).
 * @throws {UsageError} When every cell has finished.
 *
 * @example A dry run: the script of the array
 * ```ts
 * import { planSweep, runSweepOnSlurm } from "@d3pm/experiment";
 * import { assertEquals, assertStringIncludes } from "@std/assert";
 * const sweep = planSweep({ seeds: 2 }, { dir: "/tmp/not-there/sw" });
 * const r = await runSweepOnSlurm(sweep, { experiment: "deno task experiment", dryRun: true, time: "01:00:00" });
 * assertStringIncludes(r.output, "#SBATCH --array=0-1\n");
 * assertEquals(r.exitCode, 0);
 * ```
 */
export async function runSweepOnSlurm(
  sweep: Sweep,
  o: SweepSlurmRun,
): Promise<SweepRunResult> {
  if (!o.dryRun) await moveBrokenAside(sweep);
  const open = (await sweepStatus(sweep)).filter((s) => s.state !== "finished")
    .map((s) => s.cell);
  const parts = waves(open);
  if (parts.length === 0) {
    throw new UsageError(
      `Nothing to submit: every cell of ${sweep.dir} is finished`,
    );
  }
  const { sbatch, dryRun: _, wait, collect, ...rest } = o;
  const settings: SlurmOptions = {
    ...rest,
    workdir: Deno.cwd(),
    deno: o.deno ?? Deno.execPath(),
    // ";" or line breaks (`--sbatch "$(cat extra.sbatch)"`): each piece is
    // its own #SBATCH line.
    extra: sbatch?.split(/[;\n\r]/).map((s) => s.trim()).filter(Boolean),
  };
  if (o.dryRun) {
    return { output: waveScripts(sweep, parts, settings), exitCode: 0 };
  }
  const { jobIds, out, path } = await submitWaves(sweep, parts, {
    settings,
    wait: wait === true,
  });
  const output = JSON.stringify({
    sweep: sweep.dir,
    on: "slurm",
    jobId: jobIds[0],
    ...(jobIds.length > 1 ? { jobIds } : {}),
    cells: open.length,
    script: path,
    ...(wait ? { exit: out!.code } : {}),
    ...(collect ? { then: collect } : {}),
  });
  if (!wait || out!.success) return { output, exitCode: 0 };
  // sbatch --wait exits with the array's highest task code: 75 only when
  // no task failed above it; a failed cell (exit 1) is known by its file.
  const failed = (await sweepStatus(sweep)).some((s) =>
    s.state === "failed" && open.includes(s.cell)
  );
  const busy = out!.code === FOLDER_BUSY_EXIT && !failed;
  return { output, exitCode: busy ? FOLDER_BUSY_EXIT : 1 };
}
