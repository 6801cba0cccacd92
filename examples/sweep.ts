/**
 * `deno task sweep`: many experiment runs as data. `plan` expands a grid
 * (seeds, `--set key=v1,v2`, or a JSON file) into cells under one sweep
 * folder and prints them; `run` also executes them, here (`--on local
 * --jobs N`) or as a Slurm job array (`--on slurm`, or `--dry-run` to print
 * the script); `status DIR` reads the cells' folders. The work is
 * `@d3pm/experiment`'s sweep functions.
 *
 * @module
 */
import {
  flagOf,
  keyOf,
  type OptionSpec,
  type OptionValues,
  readCommandLine,
  runCli,
  UsageError,
} from "@d3pm/cli";
import { readJsonBounded, readTextBounded } from "@d3pm/core";
import {
  FOLDER_BUSY_EXIT,
  OPTION_GROUPS,
  OPTIONS as EXPERIMENT,
  parseGrid,
  parseSeeds,
  planSweep,
  readSweep,
  recordSubmission,
  runLocal,
  saveSweep,
  sbatchScript,
  shellQuote,
  type SlurmOptions,
  statusLine,
  type Sweep,
  SWEEP_FILE_LIMIT,
  SWEEP_OWNED,
  type SweepCell,
  sweepCommand,
  sweepPaths,
  type SweepSpec,
  sweepStatus,
  type SweepValue,
  waves,
} from "@d3pm/experiment";

/** The repository (where `deno task experiment` runs). */
// Decoded: a checkout path with a space is %20 in the URL.
const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname)
  .replace(/\/$/, "");

/** The sweep's own options, all under "Sweep" and shown by a plain `--help`. */
const SWEEP = ownOptions({
  dir: {
    kind: "string",
    value: "DIR",
    default: "runs/sweep",
    help: "the sweep folder (cells/<name>/ run folders, logs/, sweep.json)",
  },
  seeds: {
    kind: "string",
    value: "SEEDS",
    help:
      "seeds: N (0..N−1), A..B or A,B,… — one cell each (default 0, or the file's)",
  },
  set: {
    kind: "string",
    value: "GRID",
    help: 'swept options: "key=v1,v2; key2=v3,v4" (the product is taken)',
  },
  on: {
    kind: "choice",
    choices: ["local", "slurm"],
    help: "run: local (processes here) or slurm (an sbatch job array)",
  },
  jobs: {
    kind: "integer",
    min: 1,
    max: 256,
    default: 1,
    help: "local: processes at once (the cores are divided among them)",
  },
  dryRun: {
    kind: "boolean",
    default: false,
    help: "slurm: print the sbatch script, submit nothing",
  },
  partition: {
    kind: "string",
    value: "NAME",
    help: "slurm: --partition",
  },
  time: {
    kind: "string",
    value: "HH:MM:SS",
    help: "slurm: --time per cell",
  },
  cpusPerTask: {
    kind: "integer",
    min: 1,
    help: "slurm: --cpus-per-task (also the BLAS threads)",
  },
  gpus: {
    kind: "integer",
    min: 0,
    help: "slurm: GPUs per cell (--gres)",
  },
  parallel: {
    kind: "integer",
    min: 1,
    help: "slurm: most cells at once (--array=…%N)",
  },
  sbatch: {
    kind: "string",
    value: "LINES",
    help:
      'slurm: extra #SBATCH lines, ";"- or newline-separated ("--qos=long; --mem=32G"; a value cannot hold ";")',
  },
  wait: {
    kind: "boolean",
    default: false,
    help: "slurm: wait until the array has finished (sbatch --wait)",
  },
  deno: {
    kind: "string",
    value: "PATH",
    help: "the deno that runs the cells (default: this one)",
  },
});

/** Options in the "sweep" group, each marked common. */
function ownOptions<
  const T extends Record<string, Omit<OptionSpec, "group" | "common">>,
>(table: T): { [K in keyof T]: T[K] & { group: "sweep"; common: true } } {
  return Object.fromEntries(
    Object.entries(table).map(([k, spec]) => [
      k,
      { ...spec, group: "sweep", common: true },
    ]),
  ) as { [K in keyof T]: T[K] & { group: "sweep"; common: true } };
}

/**
 * The experiment's options a sweep passes on, without defaults: only what
 * is given is fixed. They keep their groups and which are common: `--help`
 * shows the sweep's own options and the experiment's common ones, `--help
 * all` every one, under the experiment's headings.
 */
const PASSED: Record<string, OptionSpec> = Object.fromEntries(
  Object.entries(EXPERIMENT)
    .filter(([k]) => !(SWEEP_OWNED as readonly string[]).includes(k))
    .map(([k, spec]) => {
      const { default: _, ...rest } = spec as OptionSpec;
      return [k, rest];
    }),
);

/** The sweep's own options first, then the experiment's groups. */
const GROUPS = { sweep: "Sweep", ...OPTION_GROUPS };

const OPTIONS = { ...SWEEP, ...PASSED };

const SUMMARY =
  `Runs many experiments as one sweep. A sweep is a grid: the product of the
--set values, times the seeds; each cell is one \`deno task experiment\` run
with its own run folder DIR/cells/<name> (seed k is --seeds 1 --first-seed k,
bit for bit seed k of --seeds N in one process at the same BLAS thread count:
--jobs N gives each cell cores/N threads). Experiment options given here are
fixed for every cell.

  deno task sweep plan [SPEC.json] [options]   expand and print the cells; write DIR/sweep.json
  deno task sweep run [SPEC.json] --on local|slurm [options]
  deno task sweep run DIR --on …               re-run a saved sweep (finished cells are skipped,
                                               interrupted ones resume)
  deno task sweep status DIR                   pending, running, finished or failed, per cell

SPEC.json: {"options": {"preset": "tiny"}, "grid": {"lr": [0.001, 0.002]}, "seeds": "0..2"}`;

const EPILOGUE = `Examples:
  deno task sweep plan --seeds 0..2 --preset tiny --dir runs/tiny-3seed
  deno task sweep run --seeds 0..2 --preset tiny --dir runs/tiny-3seed --on local --jobs 3
  deno task sweep run --seeds 0..2 --set "lr=1e-3,2e-3" --dir runs/lr --on slurm --time 01:00:00 --cpus-per-task 2
  deno task sweep run runs/lr --on slurm --dry-run      # print the script
  deno task sweep status runs/lr
  deno task report --merge runs/lr                      # one report over the cells
  deno task ablate --out runs/ablate --sweep            # a study's grid as cells (also: deno task study epochs --sweep)
  deno task sweep run runs/ablate --on local --jobs 2   # runs them, then the study's --collect`;

/** The fixed options and the grid from the command line and a spec file. */
async function specOf(
  file: string | undefined,
  values: Record<string, unknown>,
  given: Record<string, unknown>,
): Promise<SweepSpec> {
  let spec: SweepSpec = {};
  if (file) {
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
  }
  const options: Record<string, SweepValue> = { ...spec.options };
  for (const k of Object.keys(PASSED)) {
    if (given[k] !== undefined) options[k] = given[k] as SweepValue;
  }
  const grid: Record<string, SweepValue[]> = { ...spec.grid };
  if (typeof values.set === "string") {
    // A key in both would have --set silently replace the file's values
    // (or, spelt otherwise, sweep it twice): refused, naming both.
    const set = parseGrid(values.set);
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
    seeds: typeof values.seeds === "string"
      ? parseSeeds(values.seeds)
      : spec.seeds ?? [0],
  };
}

/** The parsed command line. */
type Values = OptionValues<typeof OPTIONS>;

/** `status DIR`: one line per cell, then the counts. */
async function printStatus(
  target: string | undefined,
  isDir: boolean,
): Promise<void> {
  if (!target || !isDir) {
    throw new UsageError(
      `deno task sweep status needs a sweep folder (holding sweep.json), got ${
        target ?? "none"
      }`,
    );
  }
  const sweep = await readSweep(target);
  const all = await sweepStatus(sweep);
  for (const s of all) console.log(statusLine(s));
  const count = (st: string) => all.filter((s) => s.state === st).length;
  console.log(
    `${all.length} cells: ${count("finished")} finished, ${
      count("running")
    } running, ${
      count("held") > 0 ? `${count("held")} held on other hosts, ` : ""
    }${count("pending")} pending, ${count("failed")} failed${
      count("broken") > 0 ? `, ${count("broken")} broken` : ""
    }`,
  );
  const old = count("broken") > 0 ? await oldScripts(sweep.dir) : [];
  if (old.length > 0) {
    console.error(
      `note: ${old.join(", ")} ${
        old.length === 1 ? "was" : "were"
      } written before the job script judged a cell by this rule: a task of ${
        old.length === 1 ? "it" : "them"
      } (requeued by Slurm, or submitted again) takes a broken results.json for finished and skips its cell; deno task sweep run ${
        shellQuote(sweep.dir)
      } --on slurm moves it aside and submits a script that checks`,
    );
  }
}

/**
 * The job scripts of a sweep folder written before the cells' step asked
 * `_cell_results.ts` whether a cell has finished: they test `[ -f
 * …/results.json ]`, which a broken one passes.
 */
async function oldScripts(dir: string): Promise<string[]> {
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
 * said so here (the cells' step, which judges by the same rule, would move
 * it too, saying so in the cell's log only).
 */
async function moveBrokenAside(sweep: Sweep): Promise<void> {
  for (const s of await sweepStatus(sweep)) {
    if (s.state !== "broken") continue;
    const file = `${s.cell.out}/results.json`;
    await Deno.rename(file, `${file}.broken`);
    console.error(
      `cell ${s.cell.name}: ${s.broken}; moved it aside to ${file}.broken, the cell runs again`,
    );
  }
}

/**
 * A --data folder (fixed or swept) that is not there is refused at plan
 * time: every cell run on it failed (the cells run where the sweep is
 * planned from, or on nodes that see the same paths).
 */
async function checkData(sweep: Sweep): Promise<void> {
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

/** The sweep to plan or run: a saved one as it is, else a new one, saved. */
async function sweepOf(
  target: string | undefined,
  isDir: boolean,
  line: { values: Values; given: Partial<Values> },
): Promise<Sweep> {
  const { values, given } = line;
  if (!isDir) {
    const spec = await specOf(target, values, given);
    const sweep = planSweep(spec, { dir: values.dir });
    await checkData(sweep);
    return await saveSweep(sweep);
  }
  const fixed = Object.keys(given).filter((k) => k in PASSED);
  if (fixed.length || values.set || values.seeds) {
    throw new UsageError(
      `A saved sweep (${target}) is re-run as it is: drop ${
        [
          ...fixed,
          ...(values.set ? ["set"] : []),
          ...(values.seeds ? ["seeds"] : []),
        ]
          .map((k) => `--${flagOf(k)}`).join(", ")
      }, or plan a new one with --dir`,
    );
  }
  return await readSweep(target!);
}

/** `plan`: the cells, each as the command line that runs it. */
function printPlan(
  sweep: Sweep,
  program: string,
  collect: string | undefined,
): void {
  console.log(
    `${sweep.cells.length} cells in ${sweep.dir} (swept: ${
      sweep.swept.join(", ") || "nothing"
    }):`,
  );
  for (const c of sweep.cells) {
    console.log(
      `${String(c.index).padStart(3)}  ${program} ${
        c.args.map(shellQuote).join(" ")
      }`,
    );
  }
  if (collect) console.log(`then: ${collect}`);
}

/** `run --on local`: the cells here, then a study's collect step; one JSON line. */
async function runHere(
  sweep: Sweep,
  values: Values,
  experiment: string,
): Promise<void> {
  const started = performance.now();
  await moveBrokenAside(sweep);
  await recordSubmission(sweep.dir, { on: `local --jobs ${values.jobs}` });
  const busy: string[] = [];
  const failedCells = await runLocal(sweep, {
    jobs: values.jobs,
    workdir: Deno.cwd(),
    experiment,
    deno: values.deno ?? Deno.execPath(),
    onBusy: (c) => busy.push(c.name),
  });
  const failed = failedCells.map((c) => c.name);
  if (sweep.collect && failed.length === 0 && busy.length === 0) {
    // The study's own table and report from the finished cells.
    const { code } = await new Deno.Command("bash", {
      args: [
        "-c",
        `${experiment} ${sweep.collect.map(shellQuote).join(" ")}`,
      ],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    if (code !== 0) failed.push("collect");
  }
  console.log(JSON.stringify({
    sweep: sweep.dir,
    on: "local",
    jobs: values.jobs,
    cells: sweep.cells.length,
    failed,
    busy,
    seconds: Math.round((performance.now() - started) / 1000),
  }));
  if (failed.length) Deno.exit(1);
  // None failed, but cells in use by another run were left to it (and any
  // later wave not run): not done yet, nothing wrong; 75 is EX_TEMPFAIL.
  if (busy.length) Deno.exit(FOLDER_BUSY_EXIT);
}

/** `run --on slurm --dry-run`: each wave's script, none submitted. */
function printWaves(
  sweep: Sweep,
  parts: readonly SweepCell[][],
  settings: SlurmOptions,
): void {
  parts.forEach((part, k) => {
    const script = sbatchScript(sweep, {
      ...settings,
      cells: part.map((c) => c.index),
      ...(k > 0 ? { after: `$JOB_OF_WAVE_${k - 1}` } : {}),
    });
    if (k > 0) {
      console.log(
        `\n# wave ${k}: sbatch --parsable this after wave ${k - 1}`,
      );
    }
    console.log(script.trimEnd());
  });
}

/** Submit one array per wave, each after the one before; the job ids. */
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
    const last = k === parts.length - 1;
    const script = sbatchScript(sweep, {
      ...o.settings,
      cells: part.map((c) => c.index),
      ...(k > 0 ? { after: jobIds[k - 1] } : {}),
    });
    path = k === 0
      ? sweepPaths(sweep.dir).sbatch
      : sweepPaths(sweep.dir).sbatch.replace(/\.sbatch$/, `-wave${k}.sbatch`);
    await Deno.writeTextFile(path, script);
    out = await new Deno.Command("sbatch", {
      args: [
        "--parsable",
        ...(o.wait && last ? ["--wait"] : []),
        path,
      ],
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
    jobIds.push(jobId);
    await recordSubmission(sweep.dir, { on: "slurm", jobId });
  }
  return { jobIds, out, path };
}

/** `run --on slurm`: the cells that are not finished, as job arrays; one JSON line. */
async function runOnSlurm(
  sweep: Sweep,
  values: Values,
  o: { experiment: string; collect: string | undefined },
): Promise<void> {
  // Slurm: submit only the cells that are not finished; one array per
  // wave of a study, each after the one before it has ended well.
  if (!values.dryRun) await moveBrokenAside(sweep);
  const open = (await sweepStatus(sweep)).filter((s) => s.state !== "finished")
    .map((s) => s.cell);
  const parts = waves(open);
  if (parts.length === 0) {
    throw new UsageError(
      `Nothing to submit: every cell of ${sweep.dir} is finished`,
    );
  }
  const settings = {
    workdir: Deno.cwd(),
    experiment: o.experiment,
    deno: values.deno ?? Deno.execPath(),
    partition: values.partition,
    time: values.time,
    cpusPerTask: values.cpusPerTask,
    gpus: values.gpus,
    parallel: values.parallel,
    // ";" or line breaks (`--sbatch "$(cat extra.sbatch)"`): each piece is
    // its own #SBATCH line.
    extra: values.sbatch?.split(/[;\n\r]/).map((s) => s.trim()).filter(Boolean),
  };
  if (values.dryRun) return printWaves(sweep, parts, settings);
  const { jobIds, out, path } = await submitWaves(sweep, parts, {
    settings,
    wait: values.wait,
  });
  console.log(JSON.stringify({
    sweep: sweep.dir,
    on: "slurm",
    jobId: jobIds[0],
    ...(jobIds.length > 1 ? { jobIds } : {}),
    cells: open.length,
    script: path,
    ...(values.wait ? { exit: out!.code } : {}),
    ...(o.collect ? { then: o.collect } : {}),
  }));
  if (values.wait && !out!.success) {
    // sbatch --wait exits with the array's highest task code: 75 only when
    // no task failed above it; a failed cell (exit 1) is known by its file.
    const failed = (await sweepStatus(sweep)).some((s) =>
      s.state === "failed" && open.includes(s.cell)
    );
    Deno.exit(out!.code === FOLDER_BUSY_EXIT && !failed ? FOLDER_BUSY_EXIT : 1);
  }
}

/** The options only one way of running takes (the help's "local:", "slurm:"). */
const ONLY_ON: Partial<Record<keyof typeof OPTIONS, "local" | "slurm">> = {
  jobs: "local",
  dryRun: "slurm",
  partition: "slurm",
  time: "slurm",
  cpusPerTask: "slurm",
  gpus: "slurm",
  parallel: "slurm",
  sbatch: "slurm",
  wait: "slurm",
};

// An option of the other way of running was ignored: `run --on local
// --dry-run` ran every cell; `--on slurm --jobs 4`, `plan --on slurm` took
// nothing from it. Refused, as the tools refuse an option a model ignores.
function checkWhere(verb: string, given: Record<string, unknown>): void {
  const on = given.on as string | undefined;
  if (verb !== "run" && on !== undefined) {
    throw new UsageError(
      `Option --on applies only to deno task sweep run; ${verb} does not take it: leave it out`,
    );
  }
  for (const [key, where] of Object.entries(ONLY_ON)) {
    if (given[key] === undefined) continue;
    if (verb === "run" && (on === where || on === undefined)) continue;
    throw new UsageError(
      `Option --${
        flagOf(key)
      } applies only to deno task sweep run --on ${where}${
        verb === "run" ? `, not --on ${on}` : `, not to ${verb}`
      }: leave it out`,
    );
  }
}

if (import.meta.main) {
  await runCli(async () => {
    const { values, given, positionals } = readCommandLine(Deno.args, {
      command: "deno task sweep",
      synopsis: "deno task sweep plan|run|status [options]",
      summary: SUMMARY,
      options: OPTIONS,
      groups: GROUPS,
      epilogue: EPILOGUE,
    }, { positionals: true });
    const [verb, target, ...extra] = positionals;
    if (!["plan", "run", "status"].includes(verb ?? "")) {
      throw new UsageError(
        `deno task sweep needs a command: plan, run or status, got ${
          verb === undefined ? "none" : JSON.stringify(verb)
        } (see --help)`,
      );
    }
    if (extra.length > 0) {
      throw new UsageError(
        `Unexpected argument ${JSON.stringify(extra[0])}: one SPEC.json or DIR`,
      );
    }
    checkWhere(verb!, given);
    const isDir = target !== undefined &&
      (await Deno.stat(target).catch(() => undefined))?.isDirectory === true;
    if (verb === "status") return await printStatus(target, isDir);
    const sweep = await sweepOf(target, isDir, { values, given });
    // The experiment, or a study's own script (a study's grid as cells).
    const experiment = sweepCommand(
      sweep,
      values.deno ?? Deno.execPath(),
      ROOT,
    );
    const program = sweep.script
      ? `deno run -A ${sweep.script}`
      : "deno task experiment";
    const collect = sweep.collect
      ? `${program} ${sweep.collect.map(shellQuote).join(" ")}`
      : undefined;
    if (verb === "plan") return printPlan(sweep, program, collect);
    if (values.on === undefined) {
      throw new UsageError(
        "deno task sweep run needs --on local or --on slurm",
      );
    }
    if (values.on === "local") return await runHere(sweep, values, experiment);
    await runOnSlurm(sweep, values, { experiment, collect });
  });
}
