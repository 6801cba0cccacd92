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
  type OptionSpec,
  type OptionValues,
  readCommandLine,
  runCli,
  UsageError,
} from "@d3pm/cli";
import {
  checkSweepData,
  oldSweepScripts,
  OPTION_GROUPS,
  OPTIONS as EXPERIMENT,
  planSweep,
  readSweep,
  runSweepLocal,
  runSweepOnSlurm,
  saveSweep,
  shellQuote,
  statusLine,
  type Sweep,
  SWEEP_OWNED,
  sweepCommand,
  type SweepRunResult,
  type SweepSpec,
  sweepSpecOf,
  sweepStatus,
  type SweepValue,
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
function specOf(
  file: string | undefined,
  values: Record<string, unknown>,
  given: Record<string, unknown>,
): Promise<SweepSpec> {
  const options: Record<string, SweepValue> = {};
  for (const k of Object.keys(PASSED)) {
    if (given[k] !== undefined) options[k] = given[k] as SweepValue;
  }
  return sweepSpecOf(file, {
    options,
    ...(typeof values.set === "string" ? { set: values.set } : {}),
    ...(typeof values.seeds === "string" ? { seeds: values.seeds } : {}),
  });
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
  const old = count("broken") > 0 ? await oldSweepScripts(sweep.dir) : [];
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
    await checkSweepData(sweep);
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

/** Print a run's output, and end with its exit code when not 0. */
function finish(r: SweepRunResult): void {
  console.log(r.output);
  if (r.exitCode !== 0) Deno.exit(r.exitCode);
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
    const deno = values.deno ?? Deno.execPath();
    if (values.on === "local") {
      return finish(
        await runSweepLocal(sweep, { jobs: values.jobs, experiment, deno }),
      );
    }
    finish(
      await runSweepOnSlurm(sweep, {
        experiment,
        deno,
        partition: values.partition,
        time: values.time,
        cpusPerTask: values.cpusPerTask,
        gpus: values.gpus,
        parallel: values.parallel,
        sbatch: values.sbatch,
        dryRun: values.dryRun,
        wait: values.wait,
        collect,
      }),
    );
  });
}
