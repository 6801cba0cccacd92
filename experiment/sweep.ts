/**
 * Sweeps as data: a grid over the experiment's options (and seeds) expands
 * into cells, each one full `deno task experiment` command with its own run
 * folder under one sweep folder (`<dir>/cells/<name>`), recorded in
 * `<dir>/sweep.json`. Every executor runs the same per-cell shell step
 * ({@linkcode cellStep}): a finished cell is skipped, any other resumes its
 * folder (`--resume` starts an empty one afresh), and its log and exit code
 * land in `<dir>/logs/`. {@linkcode sbatchScript} writes the Slurm job array;
 * {@linkcode sweepStatus} reads the folders, whatever ran them.
 *
 * @module
 */
import { convertOption, flagOf, keyOf } from "@d3pm/cli";
import {
  BoundedReadError,
  formatBytes,
  fromFileUrl,
  readJsonBounded,
  readTextBounded,
  sha256Hex,
  writeFileAtomic,
} from "@d3pm/core";
import { MetricsLog } from "@d3pm/train";
import {
  BROKEN_RESULTS,
  cellResults,
  NOT_FINISHED_EXIT,
} from "./_cell_results.ts";
import { resolveConfig } from "./config.ts";
import {
  ConfigError,
  type ExperimentConfig,
  type OptionKey,
  OPTIONS,
} from "./options.ts";
import { estimateRun } from "./budget.ts";
import { readRun } from "./load.ts";
import {
  FOLDER_BUSY_EXIT,
  heldByWords,
  lockFile,
  type LockHolder,
  RunFolder,
} from "./run_folder.ts";
import { lexicalPath, notAFolderOfItsOwn } from "./_paths.ts";
import { parseInitFrom } from "./init_from.ts";
import { shellQuote } from "./_shell.ts";
export { shellQuote };

/**
 * Options a sweep never sets per cell: each cell's folder and seed are the sweep's.
 *
 * @example A grid or fixed option among them is refused
 * ```ts
 * import { ConfigError, planSweep, SWEEP_OWNED } from "@d3pm/experiment";
 * import { assert, assertThrows } from "@std/assert";
 * assert(SWEEP_OWNED.includes("out") && SWEEP_OWNED.includes("seeds"));
 * assertThrows(
 *   () => planSweep({ options: { seeds: 3 } }, { dir: "runs/sw" }),
 *   ConfigError,
 *   "Option --seeds is set by the sweep for each cell (its folder and seed): use --seeds A..B for seeds",
 * );
 * ```
 */
export const SWEEP_OWNED: readonly OptionKey[] = [
  "out",
  "resume",
  "force",
  "seeds",
  "firstSeed",
];

/** One option value as given: a number, a boolean or text. */
export type SweepValue = string | number | boolean;

/** A sweep: fixed options, a grid of swept options, and seeds. */
export interface SweepSpec {
  /** Options every cell shares (camelCase keys of the experiment's `OPTIONS`). */
  options?: Record<string, SweepValue>;
  /** Swept options: each key's values; cells are the product, in key order. */
  grid?: Record<string, SweepValue[]>;
  /** Seeds: a list, a count N (0..N−1), or text `0..7` / `0,3,5`; default 0. */
  seeds?: number[] | number | string;
}

/** One cell of a sweep. */
export interface SweepCell {
  /** Position in the sweep (the Slurm array index). */
  index: number;
  /** Folder name: the swept values, e.g. `lr-0.002_seed-1`. */
  name: string;
  /** The swept values of this cell (the seed under `seed`). */
  values: Record<string, SweepValue>;
  /** Its run folder. */
  out: string;
  /** The `deno task experiment` arguments, `--resume` included. */
  args: string[];
  /**
   * A study's stage: cells of wave k + 1 start once every cell of wave k
   * has finished (a later Slurm array with `--dependency=afterok`); none
   * is wave 0.
   */
  wave?: number;
  /**
   * A study's cell that a re-run resumes (its script runs the experiment
   * with `--resume`); any other study's cell starts again from scratch. An
   * experiment sweep's cells always resume.
   */
  resumes?: boolean;
}

/**
 * A sweep's cells by wave, in order (one list when no cell has a wave).
 *
 * @param cells The cells.
 * @returns Lists of cells, wave 0 first; empty waves left out.
 *
 * @example
 * ```ts
 * import { type SweepCell, waves } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const c = (index: number, wave?: number): SweepCell =>
 *   ({ index, name: `c${index}`, values: {}, out: `o${index}`, args: [], wave });
 * assertEquals(waves([c(0), c(1, 1), c(2)]).map((w) => w.map((x) => x.index)), [[0, 2], [1]]);
 * ```
 */
export function waves(cells: readonly SweepCell[]): SweepCell[][] {
  const by = new Map<number, SweepCell[]>();
  for (const c of cells) {
    const w = c.wave ?? 0;
    by.set(w, [...by.get(w) ?? [], c]);
  }
  return [...by.keys()].sort((a, b) => a - b).map((w) => by.get(w)!);
}

/** An expanded sweep, as saved in `sweep.json`. */
export interface Sweep {
  /** Format version. */
  version: 1;
  /** The sweep folder. */
  dir: string;
  /** What was asked. */
  spec: SweepSpec;
  /** Keys that differ between cells (`seed` for the seed). */
  swept: string[];
  /** The cells. */
  cells: SweepCell[];
  /** Submissions and local runs, oldest first. */
  submissions: { on: string; at: string; jobId?: string }[];
  /**
   * The repository script the cells' `args` go to, when not the experiment
   * (`examples/ablate.ts`, `examples/study.ts`): a study's grid as cells.
   */
  script?: string;
  /**
   * Arguments of `script` that gather the finished cells into the study's
   * own table and report (run after a local run; by hand after Slurm).
   */
  collect?: string[];
}

/** The script a sweep's cells run, relative to the repository. */
export const EXPERIMENT_SCRIPT = "examples/experiment.ts";

/**
 * The command that runs a sweep's cells (and its `collect` step).
 *
 * @param sweep The sweep.
 * @param deno The deno to run it with.
 * @param root The repository.
 * @returns `deno run -A <root>/<script>`.
 *
 * @example
 * ```ts
 * import { planSweep, sweepCommand } from "@d3pm/experiment";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const s = planSweep({ seeds: 1 }, { dir: "runs/s" });
 * assertEquals(sweepCommand(s, "deno", "/repo"), "deno run -A /repo/examples/experiment.ts");
 * assertEquals(
 *   sweepCommand({ ...s, script: "examples/ablate.ts" }, "deno", "/repo"),
 *   "deno run -A /repo/examples/ablate.ts",
 * );
 * assertEquals(
 *   sweepCommand(s, "/opt/my deno/deno", "/a b"),
 *   "'/opt/my deno/deno' run -A '/a b/examples/experiment.ts'",
 * );
 * assertThrows(() => sweepCommand(s, "deno\necho hi", "/repo"), Error, "Option --deno holds a control character");
 * // The node's home, left to the node's shell.
 * assertEquals(sweepCommand(s, "~/.deno/bin/deno", "/repo"), "~/.deno/bin/deno run -A /repo/examples/experiment.ts");
 * assertEquals(sweepCommand(s, "$HOME/my deno/deno", "/repo"), "\"$HOME\"/'my deno/deno' run -A /repo/examples/experiment.ts");
 * ```
 */
export function sweepCommand(sweep: Sweep, deno: string, root: string): string {
  // Quoted: the line goes into a job script and a `bash -c` (a Deno or a
  // checkout path with a space stays one word); a control character is
  // refused (the script indents its lines, so a line break inside the
  // quotes would change the path).
  return denoRun(deno, `${root}/${sweep.script ?? EXPERIMENT_SCRIPT}`);
}

/** `DENO run -A SCRIPT` for a cell's line, both paths checked and quoted. */
function denoRun(deno: string, script: string): string {
  oneLinePath("Option --deno", deno);
  oneLinePath("The checkout's path", script);
  return `${nodePath(deno)} run -A ${shellQuote(script)}`;
}

/** A path written into every cell's command line holds no control character. */
function oneLinePath(what: string, value: string): void {
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new ConfigError(
      `${what} holds a control character (${
        JSON.stringify(value).slice(0, 80)
      }): every cell's command line holds it; give a path without one`,
    );
  }
}

/**
 * The command that tells the job script whether a cell has finished: the
 * rule of `./_cell_results.ts` run as a program (exit 0 finished, 3 not —
 * a broken `results.json` moved aside — any other cannot tell: 2 its own,
 * 1 a failure of `deno run` itself, 127 no deno).
 */
function finishedCheck(deno: string): string {
  const url = new URL("./_cell_results.ts", import.meta.url);
  return denoRun(deno, url.protocol === "file:" ? fromFileUrl(url) : url.href);
}

/**
 * A path for the shell of the node that runs it: quoted, but a leading `~/`
 * or `$HOME/` left to that shell (`--deno '$HOME/.deno/bin/deno'` names the
 * node's home, not this machine's).
 */
function nodePath(path: string): string {
  const home = /^(~|\$HOME|\$\{HOME\})\//.exec(path);
  if (!home) return shellQuote(path);
  const rest = path.slice(home[0].length);
  return `${home[1] === "~" ? "~" : '"$HOME"'}/${rest ? shellQuote(rest) : ""}`;
}

/** A cell of a study's grid, before it has a place in the sweep. */
export interface StudyCell {
  /** Folder-safe name (also its log's name). */
  name: string;
  /** What sets it apart, for people. */
  values: Record<string, SweepValue>;
  /** Its run folder. */
  out: string;
  /** Arguments of the study's script that run this cell alone. */
  args: string[];
  /** Its stage (see {@linkcode SweepCell}'s `wave`). */
  wave?: number;
  /** See {@linkcode SweepCell}'s `resumes`. */
  resumes?: boolean;
}

/**
 * A study's grid as a sweep: cells that run the study's own script (one
 * cell each), in the sweep format, so that `deno task sweep run DIR --on
 * local|slurm` and `deno task sweep status DIR` take them as they are. A
 * cell is finished when its folder's `results.json` reads as a JSON object
 * (one that does not is `broken`, see {@linkcode CellStatus}).
 *
 * @param dir The sweep folder (the study's folder).
 * @param script The study's script, relative to the repository.
 * @param cells The cells, in run order.
 * @param collect Arguments of the script that gather the finished cells.
 * @returns The sweep (not yet saved; see {@linkcode saveSweep}).
 * @throws {ConfigError} When two cells share a name or a folder.
 *
 * @example
 * ```ts
 * import { studySweep } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const s = studySweep("runs/st", "examples/ablate.ts", ["a", "b"].map((v) => ({
 *   name: v, values: { variant: v, model: "ar" }, out: `runs/st/${v}`, args: ["--variant", v],
 * })), ["--collect"]);
 * assertEquals([s.cells[1].index, s.swept, s.script], [1, ["variant"], "examples/ablate.ts"]);
 * ```
 */
export function studySweep(
  dir: string,
  script: string,
  cells: readonly StudyCell[],
  collect?: string[],
): Sweep {
  for (const key of ["name", "out"] as const) {
    const seen = new Set<string>();
    for (const c of cells) {
      if (seen.has(c[key])) {
        throw new ConfigError(
          `Two cells of the study share the ${key} ${
            c[key]
          }: each needs its own`,
        );
      }
      seen.add(c[key]);
    }
  }
  const swept = [...new Set(cells.flatMap((c) => Object.keys(c.values)))]
    .filter((k) => new Set(cells.map((c) => String(c.values[k]))).size > 1);
  return {
    version: 1,
    dir: dir.replace(/\/+$/, ""),
    spec: {},
    swept,
    cells: cells.map((c, index) => ({ index, ...c })),
    submissions: [],
    script,
    ...(collect ? { collect } : {}),
  };
}

/**
 * Seeds from text: `0..7` (inclusive), `0,3,5`, or a count `3` (0..2).
 *
 * @param text What was given.
 * @returns The seeds, each once, in the given order.
 *
 * @example
 * ```ts
 * import { parseSeeds } from "@d3pm/experiment";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(parseSeeds("0..2"), [0, 1, 2]);
 * assertEquals(parseSeeds("3"), [0, 1, 2]);
 * assertEquals(parseSeeds("4,1"), [4, 1]);
 * assertThrows(() => parseSeeds("2..1"), Error, "--seeds");
 * assertThrows(() => parseSeeds("0,1e1"), Error, "--seeds");
 * assertThrows(() => parseSeeds("0..1000000000"), Error, "integers in [0, 1000]");
 * assertThrows(() => parseSeeds("1, 1"), Error, "gives seed 1 twice");
 * ```
 */
export function parseSeeds(text: string | number | number[]): number[] {
  const bad = () =>
    new ConfigError(
      `Option --seeds must be a count N (seeds 0..N−1), a range A..B or a list A,B,… of integers in [0, 1000], got ${
        JSON.stringify(text)
      }`,
    );
  const ok = (n: number) => Number.isInteger(n) && n >= 0 && n <= 1000;
  let seeds: number[];
  // A spec file's "seeds" may be any JSON: an object or true is refused
  // here (it failed on "text.split is not a function").
  if (!["string", "number"].includes(typeof text) && !Array.isArray(text)) {
    throw bad();
  }
  if (Array.isArray(text)) seeds = text;
  else if (typeof text === "number" || /^\s*\d+\s*$/.test(text)) {
    const n = Number(text);
    if (!ok(n) || n < 1) throw bad();
    seeds = [...Array(n).keys()];
  } else {
    const range = /^\s*(\d+)\s*\.\.\s*(\d+)\s*$/.exec(text);
    if (range) {
      const [a, b] = [Number(range[1]), Number(range[2])];
      // Checked before the list is made (`0..1000000000` would be built).
      if (b < a || !ok(a) || !ok(b)) throw bad();
      seeds = Array.from({ length: b - a + 1 }, (_, i) => a + i);
    } else {
      // Each seed is an integer option's value, checked as one (`1e1`,
      // `0x1` are refused); the list's items may be spaced.
      const seed = { kind: "integer", min: 0, max: 1000, help: "" } as const;
      seeds = text.split(",").map((s) => {
        try {
          return convertOption("seeds", seed, s.trim()) as number;
        } catch {
          throw bad();
        }
      });
    }
  }
  if (!seeds.length || !seeds.every(ok)) throw bad();
  const twice = seeds.find((x, i) => seeds.indexOf(x) !== i);
  if (twice !== undefined) {
    // Its own line: the general one read as if "1,1" were no list at all.
    throw new ConfigError(
      `Option --seeds gives seed ${twice} twice (${
        JSON.stringify(text)
      }): a seed is one cell, list each once`,
    );
  }
  return seeds;
}

/**
 * A grid from `--set` text: `key=v1,v2` items separated by `;`, or by
 * spaces before the next `key=` (keys as flags or camelCase); a space
 * inside a value stays (`data=/tmp/a b,/tmp/c`).
 *
 * @param text What was given.
 * @returns The grid, values as text (checked by {@linkcode planSweep}).
 *
 * @example
 * ```ts
 * import { parseGrid } from "@d3pm/experiment";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(parseGrid("lr=1e-3,2e-3; ar-lr=0,1e-3"), {
 *   lr: ["1e-3", "2e-3"],
 *   arLr: ["0", "1e-3"],
 * });
 * assertEquals(parseGrid("data=/tmp/a b,/tmp/c lr=1e-3"), {
 *   data: ["/tmp/a b", "/tmp/c"],
 *   lr: ["1e-3"],
 * });
 * assertThrows(() => parseGrid("lr=1e-3; lr=2e-3"), Error, "Option --set gives --lr twice");
 * ```
 */
export function parseGrid(text: string): Record<string, string[]> {
  const grid: Record<string, string[]> = {};
  // Spaces split only before a key: `data=/tmp/a b,/tmp/c` was cut at the
  // space and refused with a message that named ";" alone.
  const items = text.split(/;|\s+(?=-{0,2}[A-Za-z][\w-]*=)/);
  for (const item of items.map((s) => s.trim()).filter((s) => s !== "")) {
    const m = /^([A-Za-z][\w-]*)=(.+)$/.exec(item);
    if (!m) {
      throw new ConfigError(
        `Option --set takes key=v1,v2 items separated by ";" (or spaces before the next key=), got ${
          JSON.stringify(item)
        }`,
      );
    }
    const key = keyOf(m[1].replace(/^--/, ""));
    if (Object.hasOwn(grid, key)) {
      throw new ConfigError(
        `Option --set gives --${flagOf(key)} twice (${key}=${
          grid[key].join(",")
        } and ${item}): give each option once, its values comma-separated`,
      );
    }
    grid[key] = m[2].split(",").map((v) => v.trim());
  }
  return grid;
}

/** Options of {@linkcode planSweep}. */
export interface PlanOptions {
  /** The sweep folder. */
  dir: string;
}

function checkKey(key: string, where: string): OptionKey {
  if (!Object.hasOwn(OPTIONS, key)) {
    throw new ConfigError(
      `Unknown option ${where} ${
        // A key that is no camelCase key is shown as given: "LR" read
        // as ---l-r.
        /^[a-z][a-zA-Z0-9]*$/.test(key)
          ? `--${flagOf(key)}`
          : JSON.stringify(key)}: a sweep takes the experiment's options (${
        Object.keys(OPTIONS).filter((k) =>
          !SWEEP_OWNED.includes(k as OptionKey)
        ).map((k) => `--${flagOf(k)}`).join(", ")
      })`,
    );
  }
  if (SWEEP_OWNED.includes(key as OptionKey)) {
    throw new ConfigError(
      `Option --${
        flagOf(key)
      } is set by the sweep for each cell (its folder and seed): use --seeds A..B for seeds`,
    );
  }
  return key as OptionKey;
}

/** The longest cell name: 255 bytes a file name, less `.exit`. */
const MAX_NAME = 250;

/** A value as text for a folder name: `0.001`, `true`, `ar,d3pm` → `ar+d3pm`. */
function nameOf(v: SweepValue): string {
  return String(v).replace(/[^\w.+-]/g, "+");
}

/**
 * Expand a sweep into its cells: the product of the grid (in key order),
 * seeds innermost. Every value is checked against the option table and
 * every cell's whole configuration against the experiment's rules before
 * anything runs.
 *
 * @param spec The grid, fixed options and seeds.
 * @param options The sweep folder.
 * @returns The sweep (not yet saved; see {@linkcode saveSweep}).
 * @throws {ConfigError} On an unknown option, a bad value or a cell that
 *   cannot run, naming the cell.
 *
 * @example Two learning rates × two seeds
 * ```ts
 * import { planSweep } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const s = planSweep(
 *   { options: { preset: "micro" }, grid: { lr: [1e-3, 2e-3] }, seeds: "0..1" },
 *   { dir: "runs/sw" },
 * );
 * assertEquals(s.cells.map((c) => c.name), [
 *   "lr-0.001_seed-0", "lr-0.001_seed-1", "lr-0.002_seed-0", "lr-0.002_seed-1",
 * ]);
 * assertEquals(s.swept, ["lr", "seed"]);
 * assertEquals(s.cells[3].args, [
 *   "--preset", "micro", "--lr", "0.002", "--seeds", "1", "--first-seed", "1",
 *   "--out", "runs/sw/cells/lr-0.002_seed-1", "--resume",
 * ]);
 * ```
 */
export function planSweep(spec: SweepSpec, options: PlanOptions): Sweep {
  const fixed: Record<string, SweepValue> = {};
  for (const [k, v] of Object.entries(spec.options ?? {})) {
    const key = checkKey(keyOf(k), "in the sweep's options:");
    fixed[key] = convert(key, v);
  }
  const grid = gridOf(spec, fixed);
  const seeds = parseSeeds(spec.seeds ?? [0]);
  checkCellCount(grid, seeds);
  const swept = [
    ...grid.filter(([, vs]) => vs.length > 1).map(([k]) => k as string),
    ...(seeds.length > 1 ? ["seed"] : []),
  ];
  let combos: Record<string, SweepValue>[] = [{}];
  for (const [key, vs] of grid) {
    combos = combos.flatMap((c) => vs.map((v) => ({ ...c, [key]: v })));
  }
  const dir = options.dir.replace(/\/+$/, "");
  const cells: SweepCell[] = [];
  const distinct = distinctCells();
  for (const combo of combos) {
    for (const seed of seeds) {
      const values: Record<string, SweepValue> = { ...combo, seed };
      const name = Object.entries(values).map(([k, v]) =>
        `${flagOf(k)}-${nameOf(v)}`
      ).join("_");
      const out = `${dir}/cells/${name}`;
      const given = { ...fixed, ...combo };
      let config: ExperimentConfig;
      try {
        config = resolveConfig({ ...given, seeds: 1, firstSeed: seed, out });
      } catch (e) {
        throw new ConfigError(
          `Cell ${name} cannot run: ${(e as Error).message}`,
        );
      }
      distinct(name, values, config);
      cells.push({
        index: cells.length,
        name,
        values,
        out,
        args: [
          ...Object.entries(given).flatMap(([k, v]) => [
            `--${flagOf(k)}`,
            String(v),
          ]),
          "--seeds",
          "1",
          "--first-seed",
          String(seed),
          "--out",
          out,
          "--resume",
        ],
      });
    }
  }
  return { version: 1, dir, spec, swept, cells, submissions: [] };
}

/** The most cells a sweep is planned with (its sweep.json about 6 MB). */
const MAX_CELLS = 10_000;

// The grid's product is counted before it is built: 300 × 300 values × 1,001
// seeds (90 million cells) was expanded, each checked, for minutes of CPU
// and gigabytes of memory, with no answer.
function checkCellCount(
  grid: [OptionKey, SweepValue[]][],
  seeds: number[],
): void {
  const counts = [...grid.map(([, vs]) => vs.length), seeds.length];
  const cells = counts.reduce((a, b) => a * b, 1);
  if (cells > MAX_CELLS) {
    throw new ConfigError(
      `The sweep would have ${cells.toLocaleString("en")} cells (${
        counts.join(" × ")
      }, the grid's values times the seeds); a sweep takes at most ${
        MAX_CELLS.toLocaleString("en")
      }: sweep fewer values, or split it into sweeps in their own --dir`,
    );
  }
}

/** The grid's keys and their values, each checked and converted. */
function gridOf(
  spec: SweepSpec,
  fixed: Record<string, SweepValue>,
): [OptionKey, SweepValue[]][] {
  const seen = new Set<string>();
  return Object.entries(spec.grid ?? {})
    .map(([k, vs]) => {
      const key = checkKey(keyOf(k), "in the grid:");
      if (seen.has(key)) {
        throw new ConfigError(
          `The grid gives --${flagOf(key)} twice (as ${k} and as ${
            Object.keys(spec.grid!).find((j) => j !== k && keyOf(j) === key)
          }): list its values once`,
        );
      }
      seen.add(key);
      if (key in fixed) {
        throw new ConfigError(
          `Option --${
            flagOf(key)
          } is both fixed and swept: give it in one place`,
        );
      }
      if (!Array.isArray(vs) || vs.length === 0) {
        throw new ConfigError(
          `The grid's --${flagOf(key)} needs a non-empty list of values`,
        );
      }
      const converted = vs.map((v) => convert(key, v));
      // Paths by what they name (`base` and `base/` are one folder).
      const read = converted.map((v) =>
        PATH_OPTIONS.has(key) ? pathValue(key, String(v)) : String(v)
      );
      if (new Set(read).size < converted.length) {
        throw new ConfigError(
          `The grid's --${flagOf(key)} lists a value twice: ${vs.join(", ")}`,
        );
      }
      return [key, converted];
    });
}

/**
 * A check that each cell has a folder and a configuration of its own.
 * Values that differ only in characters a folder name cannot hold (`a/b`,
 * `a+b`) would share one run folder: the second cell would be skipped as
 * finished and report the first one's figures. Two cells of one
 * configuration (values the experiment reads alike, `--models ar,d3pm` and
 * `d3pm,ar`) are one run made twice, counted as two settings when merged.
 */
function distinctCells(): (
  name: string,
  values: Record<string, SweepValue>,
  config: ExperimentConfig,
) => void {
  const named = new Map<string, Record<string, SweepValue>>();
  const configs = new Map<string, string>();
  return (name, values, config) => {
    // Its log is `<name>.log`, its exit code `<name>.exit`: a longer name
    // than a file system's 255 bytes fails only when the cell runs.
    const bytes = new TextEncoder().encode(name).length;
    if (bytes > MAX_NAME) {
      throw new ConfigError(
        `Cell ${
          name.slice(0, 40)
        }… would be named in ${bytes} bytes, more than a folder name holds (${MAX_NAME}): sweep shorter values (paths: a shorter folder or a link) or fewer options`,
      );
    }
    const twin = named.get(name);
    if (twin !== undefined) {
      const key = Object.keys(values).find((k) => twin[k] !== values[k])!;
      throw new ConfigError(
        `Two cells would share the folder cells/${name}: --${flagOf(key)} ${
          JSON.stringify(twin[key])
        } and ${
          JSON.stringify(values[key])
        } give the same name (folder names keep letters, digits and . + - _): make the values differ in those`,
      );
    }
    named.set(name, values);
    const same = JSON.stringify(readAlike(config));
    const sameAs = configs.get(same);
    if (sameAs !== undefined) {
      throw new ConfigError(
        `Cells ${sameAs} and ${name} are the same run (the experiment reads their values alike): list each setting once`,
      );
    }
    configs.set(same, name);
  };
}

/** The options whose values are paths (a run folder's `--judge` too). */
const PATH_OPTIONS: ReadonlySet<OptionKey> = new Set([
  "data",
  "initFrom",
  "judge",
]);

/** A path option's value written one way ({@linkcode lexicalPath}). */
function pathValue(key: OptionKey, v: string): string {
  if (v === "" || (key === "judge" && (v === "auto" || v === "self"))) return v;
  return lexicalPath(v);
}

/**
 * A cell's configuration as the experiment reads it, for finding two cells
 * of one run: without its folder, paths written one way, and `--init-from`
 * as the model it names for the cell's seed (`base` is `base/seed-0/ar` at
 * seed 0).
 */
function readAlike(config: ExperimentConfig): Record<string, unknown> {
  const { out: _, ...same } = config;
  const read: Record<string, unknown> = { ...same };
  for (const key of PATH_OPTIONS) {
    read[key] = pathValue(key, String(config[key]));
  }
  if (same.initFrom !== "") {
    const s = parseInitFrom(same.initFrom, same.firstSeed);
    read.initFrom = `${lexicalPath(s.dir)}/seed-${s.seed}/${s.model}`;
  }
  return read;
}

function convert(key: OptionKey, v: unknown): SweepValue {
  try {
    return convertOption(key, OPTIONS[key], v) as SweepValue;
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
}

/** Where a sweep's files are. */
export interface SweepPaths {
  /** The sweep's record. */
  json: string;
  /** The Slurm job-array script. */
  sbatch: string;
  /** The log of a cell (both executors append to it). */
  log(cell: SweepCell): string;
  /** The exit code of a cell's last attempt. */
  exit(cell: SweepCell): string;
}

/**
 * Where a sweep's files are.
 *
 * @param dir The sweep folder.
 * @returns Its paths.
 *
 * @example
 * ```ts
 * import { planSweep, sweepPaths } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const s = planSweep({ seeds: 1 }, { dir: "runs/s" });
 * assertEquals(sweepPaths("runs/s").log(s.cells[0]), "runs/s/logs/seed-0.log");
 * ```
 */
export function sweepPaths(dir: string): SweepPaths {
  return {
    json: `${dir}/sweep.json`,
    sbatch: `${dir}/sweep.sbatch`,
    log: (cell) => `${dir}/logs/${cell.name}.log`,
    exit: (cell) => `${dir}/logs/${cell.name}.exit`,
  };
}

/**
 * Save a sweep into its folder, or take the one already there: a folder
 * that holds another sweep (other cells) is refused.
 *
 * @param sweep The planned sweep.
 * @returns The sweep as saved (with the submissions already recorded).
 * @throws {ConfigError} When the folder holds a different sweep, or a run
 *   or a model, or is a file.
 *
 * @example Saved once; the same plan again takes it, another is refused
 * ```ts
 * import { ConfigError, planSweep, readSweep, saveSweep } from "@d3pm/experiment";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const tmp = await Deno.makeTempDir();
 * const dir = `${tmp}/sw`;
 * const sweep = await saveSweep(planSweep({ options: { preset: "micro" }, seeds: 2 }, { dir }));
 * assertEquals(await readSweep(dir), sweep);
 * assertEquals(await saveSweep(planSweep({ options: { preset: "micro" }, seeds: 2 }, { dir })), sweep);
 * await assertRejects(
 *   () => saveSweep(planSweep({ seeds: 3 }, { dir })),
 *   ConfigError,
 *   `${dir} holds another sweep (2 cells: seed-0, seed-1…): choose another --dir`,
 * );
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function saveSweep(sweep: Sweep): Promise<Sweep> {
  const another = `choose another ${folderOption(sweep)}`;
  const path = sweepPaths(sweep.dir).json;
  // None there: a new folder (a file in its place is named below).
  const old = await Deno.stat(path).then(
    () => readSweep(sweep.dir),
    () => undefined,
  );
  if (old) {
    const key = (s: Sweep) =>
      JSON.stringify(s.cells.map((c) => [c.name, c.args]));
    if (key(old) !== key(sweep)) {
      throw new ConfigError(
        `${sweep.dir} holds another sweep (${old.cells.length} cells: ${
          old.cells.slice(0, 3).map((c) => c.name).join(", ")
        }…): ${another}, or re-run it with: deno task sweep run ${sweep.dir} --on …`,
      );
    }
    return old;
  }
  // A new sweep: a folder holding at most a sweep's logs/ and its cells'
  // folders (cells/, or a study's variant folders, perhaps run before).
  const roots = new Set(["logs", "cells"]);
  for (const c of sweep.cells) {
    if (c.out.startsWith(`${sweep.dir}/`)) {
      roots.add(c.out.slice(sweep.dir.length + 1).split("/")[0]);
    }
  }
  const why = await notAFolderOfItsOwn(sweep.dir, (name) => roots.has(name));
  if (why) {
    throw new ConfigError(
      `Cannot make a sweep in ${sweep.dir}: ${why}; a sweep needs a folder of its own: ${another}`,
    );
  }
  // One readSweep could not read back (its values long, its cells many) is
  // refused before anything is made.
  const text = sweepText(
    sweep,
    `Cannot make a sweep in ${sweep.dir}`,
    "sweep fewer cells or shorter values",
  );
  await Deno.mkdir(`${sweep.dir}/logs`, { recursive: true });
  await writeFileAtomic(path, text);
  return sweep;
}

/**
 * The option that named a sweep's folder, for messages: a study's own
 * (`ablate --out`, `study epochs --out`, `study adaptation --dir`: the flag
 * its arguments give the folder with), else `sweep plan`'s `--dir`.
 */
function folderOption(sweep: Sweep): string {
  if (sweep.script === undefined) return "--dir";
  const args = sweep.collect ?? sweep.cells[0]?.args ?? [];
  const at = args.findIndex((a, i) =>
    a.startsWith("--") && args[i + 1] === sweep.dir
  );
  return at >= 0 ? args[at] : "--dir";
}

/**
 * The most bytes a sweep file or record is read to (a FIFO or a device: refused).
 *
 * @example
 * ```ts
 * import { SWEEP_FILE_LIMIT } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(SWEEP_FILE_LIMIT, 64 * 2 ** 20); // 64 MiB
 * ```
 */
export const SWEEP_FILE_LIMIT = 64 << 20;

/**
 * The version of `planSweep`'s rules (how a spec expands into cells, and
 * what it refuses), hashed into each `sweep.json`'s `planHash`. Bump it
 * whenever those rules change: a record planned under other rules then no
 * longer matches its hash, so it is planned again and checked, not taken
 * as written. One this version plans the same is read as before; one it
 * refuses or plans otherwise is refused by `sweep status`, `run` and
 * `merge` before anything runs, saying it was planned under older rules
 * and how its finished cells merge (as runs).
 *
 * 1: the first. 2: a value nothing in a cell reads is refused; path values
 * (`--data`, `--init-from`, `--judge`) are compared by what they name
 * (`base` and `base/` are one cell); an empty yes/no value is missing.
 *
 * @example
 * ```ts
 * import { SWEEP_PLAN_RULES } from "@d3pm/experiment";
 * import { assert } from "@std/assert";
 * assert(Number.isInteger(SWEEP_PLAN_RULES) && SWEEP_PLAN_RULES >= 1);
 * ```
 */
export const SWEEP_PLAN_RULES = 2;

/**
 * Read a saved sweep. Its cells are taken as written when the record's
 * `planHash` (written with it) matches them and their spec under this
 * version's planning rules ({@linkcode SWEEP_PLAN_RULES}); a record
 * without one, edited since, or planned under other rules is checked
 * against its spec planned again. One planned under older rules that this
 * version refuses or plans otherwise is refused saying so, with the way
 * out (its finished cells merge as runs).
 *
 * @param dir The sweep folder.
 * @returns The sweep.
 * @throws {ConfigError} When `dir` holds no sweep (another run folder, a
 *   file, a typo), its `sweep.json` is not a sweep record, or it was
 *   planned under older rules that this version's refuse or plan otherwise.
 *
 * @example A folder without `sweep.json` is named in one line
 * ```ts
 * import { ConfigError, readSweep } from "@d3pm/experiment";
 * import { assertRejects } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await assertRejects(
 *   () => readSweep(dir),
 *   ConfigError,
 *   `${dir} holds no sweep (no sweep.json): deno task sweep plan|run … --dir DIR makes one`,
 * );
 * await Deno.remove(dir);
 * ```
 */
export async function readSweep(dir: string): Promise<Sweep> {
  // A regular file of bounded size: a FIFO or /dev/zero is refused, not read.
  const sweep = await readJsonBounded(sweepPaths(dir).json, {
    limit: SWEEP_FILE_LIMIT,
    what: "sweep record",
  }).catch((e) => {
    if (
      e instanceof Deno.errors.NotFound ||
      e instanceof Deno.errors.NotADirectory
    ) {
      throw new ConfigError(
        `${dir} holds no sweep (no sweep.json): deno task sweep plan|run … --dir DIR makes one`,
      );
    }
    if (e instanceof BoundedReadError) throw new ConfigError(e.message);
    throw e;
  }) as Sweep;
  let record = sweep, hash: unknown;
  if (typeof sweep === "object" && sweep !== null && "planHash" in sweep) {
    ({ planHash: hash, ...record } = sweep as Sweep & { planHash: unknown });
  }
  // The plan as written (its hash matches): not planned again, which took
  // 0.8 s at 10,000 cells on every status and run. Any other (edited,
  // written before the hash, or under other planning rules) is checked
  // against its spec planned again.
  const broken = notASweep(record);
  const current = broken === undefined && hash === planHash(record);
  const older = broken === undefined && !current
    ? olderRules(record, hash)
    : undefined;
  const why = broken ?? (current ? undefined : editedCells(record, older, dir));
  if (why) {
    throw new ConfigError(
      older === undefined
        ? `${dir}/sweep.json is not a sweep record: ${why}`
        : `${dir}/sweep.json ${why}`,
    );
  }
  return await movedTo(record, dir);
}

/**
 * The hash `sweep.json` carries of its plan (`planHash`): the planning
 * rules' version, what it was planned from and what it planned, as
 * written. The submissions, which `recordSubmission` adds, are not part
 * of it.
 */
function planHash(s: Sweep, rules = SWEEP_PLAN_RULES): string {
  return sha256Hex(JSON.stringify([
    rules,
    s.version,
    s.dir,
    s.spec,
    s.swept,
    s.cells,
    s.script ?? null,
    s.collect ?? null,
  ]));
}

/**
 * The older planning rules a record's hash was written under (not edited
 * since: a version with those rules planned it as it is); none when its
 * hash matches no earlier rules.
 */
function olderRules(s: Sweep, hash: unknown): number | undefined {
  if (typeof hash !== "string") return undefined;
  for (let rules = SWEEP_PLAN_RULES - 1; rules >= 1; rules--) {
    if (hash === planHash(s, rules)) return rules;
  }
  return undefined;
}

/**
 * Where an experiment sweep's cells differ from its spec expanded again
 * (one edited by hand: `run` and `status` read the cells' args, `merge`
 * the spec, and they disagreed; or one planned under the older planning
 * rules `older`, which this version's plan otherwise); none when they
 * agree. A study's cells (`script`) have no spec to expand.
 */
function editedCells(
  s: Sweep,
  older: number | undefined,
  dir: string,
): string | undefined {
  if (s.script !== undefined) return undefined;
  // Its cells' own folders still hold what they ran: named where the sweep
  // is now (`dir`, not the folder it was planned in), quoted for the shell.
  const wayOut =
    `finish it with the version that planned it, or merge its finished cells as runs (deno task report --merge ${
      shellQuote(dir)
    }/cells/NAME …)`;
  const rules = older === undefined
    ? ""
    : `was planned under older planning rules (${older}; this version's are ${SWEEP_PLAN_RULES}), and `;
  let planned: Sweep;
  try {
    planned = planSweep(s.spec ?? {}, { dir: s.dir });
  } catch (e) {
    // Planned by an older version (say --backend with --engine cpu, now
    // refused).
    return `${rules}its spec cannot be planned by this version (${
      (e as Error).message
    }); ${wayOut}`;
  }
  const otherwise = cellsDiffer(s, planned);
  if (otherwise === undefined) return undefined;
  return older === undefined
    ? `${otherwise}: edited by hand; plan the sweep again into a new --dir`
    : `${rules}this version plans its spec otherwise (${otherwise}); ${wayOut}, or plan the sweep again into a new --dir`;
}

/** The first of `s`'s cells (or its swept keys) that `planned`'s are not. */
function cellsDiffer(s: Sweep, planned: Sweep): string | undefined {
  const fields = (c: SweepCell) =>
    JSON.stringify([c.index, c.name, c.values, c.out, c.args, c.wave]);
  const at = Math.max(s.cells.length, planned.cells.length);
  for (let i = 0; i < at; i++) {
    const [saved, now] = [s.cells[i], planned.cells[i]];
    if (saved && now && fields(saved) === fields(now)) continue;
    return `${
      saved ? `cell ${i} (${saved.name})` : `cell ${i}`
    } is not what its spec plans (${
      now ? `${now.name}: ${now.args.join(" ")}` : "no such cell"
    })`;
  }
  return JSON.stringify(s.swept) === JSON.stringify(planned.swept)
    ? undefined
    : `swept ${JSON.stringify(s.swept)} is not what its spec plans (${
      JSON.stringify(planned.swept)
    })`;
}

/** What a parsed `sweep.json` lacks (edited by hand, cut short); none when it is whole. */
function notASweep(s: Sweep): string | undefined {
  if (typeof s !== "object" || s === null || s.version !== 1) {
    return "no version 1";
  }
  if (typeof s.dir !== "string") return "no dir";
  if (!Array.isArray(s.cells)) return "no cells";
  if (!Array.isArray(s.submissions)) return "no submissions";
  const text = (x: unknown) => typeof x === "string" && x !== "";
  const bad = s.cells.findIndex((c, i) =>
    typeof c !== "object" || c === null || c.index !== i || !text(c.name) ||
    !text(c.out) || typeof c.values !== "object" || c.values === null ||
    !Array.isArray(c.args) || !c.args.every((a) => typeof a === "string")
  );
  return bad >= 0
    ? `cell ${bad} needs index ${bad}, a name, values, out and args`
    : undefined;
}

/**
 * A sweep read from a folder it was not planned in (moved, or copied
 * elsewhere): its cells' folders, logs and arguments are the ones under
 * the folder it is read from. Without this, status read the old place's
 * cells (or none), and a run wrote into the old place.
 */
async function movedTo(sweep: Sweep, dir: string): Promise<Sweep> {
  const to = dir.replace(/\/+$/, "") || "/";
  const real = (p: string) => Deno.realPath(p).catch(() => undefined);
  const from = sweep.dir;
  if (from === to || await real(from) === await real(to)) return sweep;
  const move = (p: string) =>
    p === from ? to : p.startsWith(`${from}/`) ? to + p.slice(from.length) : p;
  return {
    ...sweep,
    dir: to,
    cells: sweep.cells.map((c) => ({
      ...c,
      out: move(c.out),
      args: c.args.map(move),
    })),
    ...(sweep.collect ? { collect: sweep.collect.map(move) } : {}),
  };
}

/**
 * Record a submission (or a local run) in `sweep.json`.
 *
 * @param dir The sweep folder.
 * @param entry Which executor, and the Slurm job id.
 *
 * @example
 * ```ts
 * import { planSweep, readSweep, recordSubmission, saveSweep } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const tmp = await Deno.makeTempDir();
 * const dir = `${tmp}/sw`;
 * await saveSweep(planSweep({ seeds: 2 }, { dir }));
 * await recordSubmission(dir, { on: "slurm", jobId: "42" });
 * const [entry] = (await readSweep(dir)).submissions;
 * assertEquals([entry.on, entry.jobId], ["slurm", "42"]);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function recordSubmission(
  dir: string,
  entry: { on: string; jobId?: string },
): Promise<void> {
  // Read, changed and written back under the sweep folder's lock (two
  // `sweep run`s at once would each keep only their own record), and
  // written atomically (a reader never sees half a sweep.json).
  const release = await lockFile(sweepLock(dir), SWEEP_LOCK_WAIT_MS);
  try {
    const sweep = await readSweep(dir);
    sweep.submissions.push({ ...entry, at: new Date().toISOString() });
    await writeFileAtomic(
      sweepPaths(dir).json,
      sweepText(
        sweep,
        `Cannot record the submission${
          entry.jobId ? ` of job ${entry.jobId}` : ""
        } in ${dir}`,
        entry.jobId
          ? `job ${entry.jobId} was submitted before this record: cancel it (scancel ${entry.jobId}), then plan the sweep again in a new folder`
          : "plan the sweep again in a new folder",
      ),
    );
  } finally {
    release();
  }
}

/**
 * A sweep's `sweep.json` text, refused (`what: … bytes, more than …; fix`)
 * when {@linkcode readSweep} could not read it back: the one check of both
 * writers, the plan's and a submission's.
 */
function sweepText(sweep: Sweep, what: string, fix: string): string {
  const text =
    JSON.stringify({ ...sweep, planHash: planHash(sweep) }, null, 2) + "\n";
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > SWEEP_FILE_LIMIT) {
    throw new ConfigError(
      `${what}: its sweep.json would be ${
        bytes.toLocaleString("en")
      } bytes, more than the ${
        formatBytes(SWEEP_FILE_LIMIT)
      } a sweep is read back to: ${fix}`,
    );
  }
  return text;
}

/** How long {@linkcode recordSubmission} waits for another writer of `sweep.json`. */
const SWEEP_LOCK_WAIT_MS = 30_000;

/** The lock a writer of `sweep.json` holds (beside it). */
function sweepLock(dir: string): string {
  return `${sweepPaths(dir).json}.lock`;
}

/**
 * A study's planned sweep as its `--sweep` prints it: the count, a line a
 * cell (index, wave, the `deno task study` command that runs it) and how to
 * run them.
 *
 * @param sweep A saved study sweep (its cells' args start with the study).
 * @returns The lines, joined by newlines.
 *
 * @example
 * ```ts
 * import { studyPlanText, type Sweep } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const sweep = {
 *   dir: "runs/s",
 *   cells: [{ index: 0, wave: 0, args: ["epochs", "--cell", "a b"] }],
 * } as unknown as Sweep;
 * assertEquals(
 *   studyPlanText(sweep),
 *   "1 cells in runs/s:\n  0  wave 0  deno task study epochs --cell 'a b'\nrun: deno task sweep run runs/s --on local --jobs N | --on slurm [--dry-run]",
 * );
 * ```
 */
export function studyPlanText(sweep: Sweep): string {
  return [
    `${sweep.cells.length} cells in ${sweep.dir}:`,
    ...sweep.cells.map((c) =>
      `${String(c.index).padStart(3)}  wave ${c.wave}  deno task study ${
        c.args.map(shellQuote).join(" ")
      }`
    ),
    `run: deno task sweep run ${sweep.dir} --on local --jobs N | --on slurm [--dry-run]`,
  ].join("\n");
}

/**
 * The command line that gives `options` again, each value quoted for bash:
 * for a message that says how to continue a run (`--resume` and `--force`
 * left out by the caller). Rebuilt from the parsed options, not the
 * arguments as typed: `--force true` or `--out "a b"` would otherwise leave
 * a stray `true` or split a path.
 *
 * @param command The command, e.g. `deno task experiment`.
 * @param options The options given (camelCase keys).
 * @returns The line.
 *
 * @example
 * ```ts
 * import { commandLineOf } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   commandLineOf("deno task experiment", { preset: "micro", out: "runs/a b", shift: true, lr: 0.001 }),
 *   "deno task experiment --preset micro --out 'runs/a b' --shift --lr 0.001",
 * );
 * ```
 */
export function commandLineOf(
  command: string,
  options: Readonly<Record<string, string | number | boolean | undefined>>,
): string {
  const words = [command];
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const flag = `--${flagOf(key)}`;
    if (value === true) words.push(flag);
    else words.push(flag, shellQuote(String(value)));
  }
  return words.join(" ");
}

/** How a cell's step runs the experiment. */
export interface StepOptions {
  /** The command that runs the experiment script, e.g. `deno run -A examples/experiment.ts`. */
  experiment: string;
  /**
   * The deno that checks whether a cell has finished, by the rule of
   * `sweep status` (its `results.json` reads as a JSON object); default:
   * this one (`Deno.execPath()`). Give the one of `experiment` where the
   * cells run elsewhere (`--deno`).
   */
  deno?: string;
  /**
   * Print a failed or busy cell's line (`cell NAME: failed (exit N), log …`)
   * to stderr; default true. {@linkcode runLocal} turns it off: it reports
   * each cell's end itself, once.
   */
  failureLine?: boolean;
}

/**
 * The shell lines that run one cell, the same for every executor: skip a
 * finished cell (judged by `sweep status`'s rule, run as a Deno program:
 * a broken `results.json` is moved aside and the cell runs again; where
 * the check cannot tell — any exit but 0 (finished) and 3 (not finished),
 * such as 1 when `deno run` itself fails or 127 without deno — its exit
 * code is the cell's and nothing runs);
 * otherwise run (or resume) it, appending to its log, and
 * record its exit code — unless the experiment was refused because another
 * live run holds the cell's folder ({@linkcode FOLDER_BUSY_EXIT}): then the
 * cell is left to that run (`cell NAME: busy: in use by another run (pid N),
 * left to it`; where the lock names another host name, `cell NAME: busy:
 * held by pid N on host H (boot B), which this host cannot check; if no run
 * writes there, delete DIR/.lock`), no exit code is kept, and the step
 * exits with that code.
 *
 * @param sweep The sweep.
 * @param cell The cell.
 * @param options The experiment command.
 * @returns Bash lines.
 *
 * @example
 * ```ts
 * import { cellStep, planSweep } from "@d3pm/experiment";
 * import { assertStringIncludes } from "@std/assert";
 * const s = planSweep({ seeds: 2 }, { dir: "runs/s" });
 * const step = cellStep(s, s.cells[1], { experiment: "deno task experiment" });
 * assertStringIncludes(step, "_cell_results.ts runs/s/cells/seed-1 2>> runs/s/logs/seed-1.log");
 * assertStringIncludes(step, "--first-seed 1 --out runs/s/cells/seed-1 --resume >> runs/s/logs/seed-1.log 2>&1");
 * ```
 */
export function cellStep(
  sweep: Sweep,
  cell: SweepCell,
  options: StepOptions,
): string {
  const p = sweepPaths(sweep.dir);
  const q = shellQuote;
  const check = finishedCheck(options.deno ?? Deno.execPath());
  return [
    // Every name and path goes through shellQuote, in echo lines too: a
    // folder like `inj$(touch${IFS}x)` inside double quotes ran the command.
    // Finished by the one rule of sweep status and merge, not a shell
    // `[ -f …/results.json ]`, which took a torn or edited file for
    // finished (a requeued task skipped the cell for ever).
    `mkdir -p ${q(`${sweep.dir}/logs`)}`,
    `${check} ${q(cell.out)} 2>> ${q(p.log(cell))}`,
    `rc=$?`,
    `if [ $rc -eq 0 ]; then`,
    `  echo ${q(`cell ${cell.name}: finished, skipped`)}; exit 0`,
    `fi`,
    `rm -f ${q(p.exit(cell))}`,
    // Only the check's own "not finished" runs the cell: deno exits 1 on
    // its own failures (a module not found), which tell nothing.
    `if [ $rc -ne ${NOT_FINISHED_EXIT} ]; then`,
    `  echo $rc > ${q(p.exit(cell))}`,
    ...options.failureLine === false ? [] : [
      `  echo ${
        q(`cell ${cell.name}: cannot tell whether it has finished (exit `)
      }"$rc"${q(`), not run; log ${p.log(cell)}`)} >&2`,
    ],
    `  exit $rc`,
    `fi`,
    `echo "=== $(date -u +%FT%TZ)" ${
      q(`cell ${cell.name}`)
    } "on $(hostname)" >> ${q(p.log(cell))}`,
    `${options.experiment} ${cell.args.map(q).join(" ")} >> ${
      q(p.log(cell))
    } 2>&1`,
    `rc=$?`,
    // Refused: another live run holds the folder. Not this cell's end (its
    // holder records that): no exit code kept, the cell left to it.
    `if [ $rc -eq ${FOLDER_BUSY_EXIT} ]; then`,
    ...options.failureLine === false ? [] : busyShell(cell),
    `  exit $rc`,
    `fi`,
    `echo $rc > ${q(p.exit(cell))}`,
    ...options.failureLine === false ? [] : [
      `[ $rc -eq 0 ] || echo ${q(`cell ${cell.name}: failed (exit `)}"$rc"${
        q(`), log ${p.log(cell)}`)
      } >&2`,
    ],
    `exit $rc`,
  ].join("\n");
}

/**
 * The shell lines that print a busy cell's line: held by a process of
 * another host name (read from the lock as `runLocal` does, so the task
 * says the same), with its host, boot and the way out; else left to it.
 */
function busyShell(cell: SweepCell): string[] {
  const lock = shellQuote(new RunFolder(cell.out).lockPath);
  const field = (name: string, value: string) =>
    `$(grep -o '"${name}":${value}' ${lock} 2>/dev/null | head -n 1 | cut -d: -f2 | tr -d '"')`;
  return [
    `  holder=${field("pid", "[0-9]*")}`,
    `  holderhost=${field("hostname", '"[^"]*"')}`,
    `  holderboot=${field("host", '"[^"]*"')}`,
    `  if [ -n "$holder" ] && [ -n "$holderhost" ] && [ "$holderhost" != "$(hostname)" ]; then`,
    `    echo ${
      shellQuote(`cell ${cell.name}: busy: held by pid `)
    }"$holder on host $holderhost (boot \${holderboot:-unknown}), which this host cannot check; if no run writes there, delete "${lock} >&2`,
    `  else`,
    `    echo ${
      shellQuote(`cell ${cell.name}: busy: in use by another run`)
    }"\${holder:+ (pid $holder)}"${shellQuote(", left to it")} >&2`,
    `  fi`,
  ];
}

/** The line of a cell left to the live run that holds its folder. */
function busyLine(cell: SweepCell, pid: string): string {
  return `cell ${cell.name}: busy: in use by another run${pid}, left to it`;
}

/**
 * The line of a cell found busy by `runLocal`: left to the live run of this
 * host that holds it, or held by a process this host cannot check, with
 * the way out ({@linkcode heldElsewhere}).
 */
function busyCellLine(cell: SweepCell, holder?: LockHolder): string {
  const held = heldElsewhere(cell, holder);
  return held !== undefined
    ? `cell ${cell.name}: busy: held by ${held}`
    : busyLine(cell, holder === undefined ? "" : ` (pid ${holder.pid})`);
}

/**
 * What holds a cell whose lock this host cannot check (another host's:
 * {@linkcode heldByWords}), with the way out: `pid N on host H (boot B),
 * which this host cannot check; if no run writes there, delete DIR/.lock`;
 * undefined where the holder is this host's.
 */
function heldElsewhere(
  cell: SweepCell,
  holder: LockHolder | undefined,
): string | undefined {
  return holder && heldByWords(holder, new RunFolder(cell.out).lockPath);
}

// What the script writes into an `#SBATCH` or comment line unquoted: a
// line break there (`--partition $'gpu\nrm -rf ~'`) ended the line, and the
// rest ran as a command of every array task.
function checkOneLine(sweep: Sweep, options: SlurmOptions): void {
  const written: [string, string | undefined][] = [
    ["--dir", sweep.dir],
    ["--partition", options.partition],
    ["--time", options.time],
    ["the study script", sweep.script],
    ...(options.extra ?? []).map((l): [string, string] => ["--sbatch", l]),
  ];
  // In Slurm's quoting a `"` ends the value and a `\` is an escape (in
  // --output it also turns the %A patterns off: the logs went nowhere).
  const odd = /["\\]/.exec(sweep.dir);
  if (odd) {
    throw new ConfigError(
      `The sweep's folder holds ${
        JSON.stringify(odd[0])
      } (${sweep.dir}): the job script writes it into quoted #SBATCH lines (--output, --job-name), where Slurm reads " and \\ as its own quoting; choose a folder without " and \\`,
    );
  }
  for (const [flag, value] of written) {
    // deno-lint-ignore no-control-regex
    if (value !== undefined && /[\u0000-\u001f\u007f]/.test(value)) {
      throw new ConfigError(
        `Option ${flag} holds a control character (${
          JSON.stringify(value).slice(0, 80)
        }): the job script writes it into an #SBATCH line, which it would end, running the rest as a command; give it on one line`,
      );
    }
  }
}

/** Slurm settings of {@linkcode sbatchScript}. */
export interface SlurmOptions extends StepOptions {
  /** The folder the experiment runs in (the repository). */
  workdir: string;
  /** `--partition`. */
  partition?: string;
  /** `--time` (e.g. `01:00:00`). */
  time?: string;
  /**
   * `--cpus-per-task`. Each cell's OpenBLAS, OpenMP and MKL threads are the
   * task's CPUs (`$SLURM_CPUS_PER_TASK`, 1 when this is not given).
   */
  cpusPerTask?: number;
  /** GPUs per task (`--gres=gpu:N`). */
  gpus?: number;
  /** Most array tasks at once (`%N`). */
  parallel?: number;
  /** Extra `#SBATCH` lines (with or without the `#SBATCH` prefix). */
  extra?: string[];
  /** Only these cells (re-submitting some). */
  cells?: readonly number[];
  /**
   * Start after this job has ended well (`--dependency=afterok:ID` with
   * `--kill-on-invalid-dep=yes`, so Slurm ends this wave if that one fails
   * or is cancelled; a later wave).
   */
  after?: string;
}

/**
 * The sbatch job-array script of a sweep: one array task per cell,
 * `--requeue` (a requeued task resumes its folder), the cell's step chosen
 * by `SLURM_ARRAY_TASK_ID`.
 *
 * @param sweep The sweep.
 * @param options Where, how long, which resources.
 * @returns The script.
 * @throws {ConfigError} For an extra line that sets the array or a
 *   dependency (by any prefix sbatch takes), or that is no `#SBATCH`
 *   option (what `--sbatch`'s split at `;` leaves of a value holding one),
 *   a folder holding `"` or `\`, or a value written into the script (the
 *   folder, --partition, --time, --sbatch) that holds a line break or
 *   another control character.
 *
 * @example
 * ```ts
 * import { planSweep, sbatchScript } from "@d3pm/experiment";
 * import { assertStringIncludes } from "@std/assert";
 * const s = planSweep({ seeds: 3 }, { dir: "/x/s" });
 * const text = sbatchScript(s, {
 *   workdir: "/repo", experiment: "deno task experiment", gpus: 1, time: "02:00:00",
 * });
 * assertStringIncludes(text, "#SBATCH --array=0-2\n");
 * assertStringIncludes(text, "#SBATCH --requeue\n");
 * assertStringIncludes(text, "#SBATCH --gres=gpu:1\n");
 * assertStringIncludes(text, "  2)\n");
 * ```
 */
export function sbatchScript(sweep: Sweep, options: SlurmOptions): string {
  checkOneLine(sweep, options);
  const ids = options.cells ?? sweep.cells.map((c) => c.index);
  // An extra line that sets the array or a dependency would come after the
  // sweep's own and win: tasks of no cell, or a wave started too soon.
  for (const line of options.extra ?? []) {
    // A piece that is no option: the rest of a value cut at ";", which
    // --sbatch splits at (`--comment=a;b` wrote `#SBATCH b`).
    const option = line.trim().replace(/^#SBATCH\s+/, "");
    const comment = line.trim().startsWith("#") &&
      !line.trim().startsWith("#SBATCH");
    if (!option.startsWith("-") && !comment) {
      throw new ConfigError(
        `Option --sbatch gives "${line.trim()}", which is no #SBATCH option (one starts with -): --sbatch is split at ";" and line breaks, so a value holding ";" cannot be given there; add that line to the job script by hand`,
      );
    }
    const owned = ownedOption(line);
    if (owned !== undefined) {
      throw new ConfigError(
        `Option --sbatch cannot set ${owned} (got "${line.trim()}"): the sweep sets the array (one task per open cell; --parallel N for %N) and the waves' dependencies`,
      );
    }
  }
  if (ids.length === 0) {
    throw new ConfigError("Nothing to submit: every cell is finished");
  }
  const array = ranges(ids) + (options.parallel ? `%${options.parallel}` : "");
  const lines = [
    "#!/bin/bash",
    // Quoted (Slurm reads `"…"` in #SBATCH lines: a folder with a space is
    // one value); `%` doubled in the output path, where `%A` is a pattern.
    `#SBATCH --job-name="sweep-${sweep.dir.split("/").at(-1)}"`,
    `#SBATCH --array=${array}`,
    "#SBATCH --requeue",
    "#SBATCH --open-mode=append",
    `#SBATCH --output="${
      sweep.dir.replaceAll("%", "%%")
    }/logs/slurm-%A_%a.out"`,
    ...(options.partition ? [`#SBATCH --partition=${options.partition}`] : []),
    ...(options.time ? [`#SBATCH --time=${options.time}`] : []),
    ...(options.cpusPerTask
      ? [`#SBATCH --cpus-per-task=${options.cpusPerTask}`]
      : []),
    ...(options.gpus ? [`#SBATCH --gres=gpu:${options.gpus}`] : []),
    // A later wave whose earlier one failed or was cancelled is ended by
    // Slurm, not left PENDING (DependencyNeverSatisfied) for ever, where a
    // re-submission did not see it.
    ...(options.after
      ? [
        `#SBATCH --dependency=afterok:${options.after}`,
        "#SBATCH --kill-on-invalid-dep=yes",
      ]
      : []),
    // A file's other comment lines (`--sbatch "$(cat extra.sbatch)"`: its
    // `#!/bin/bash`, a `# note`) are not #SBATCH options: left out.
    ...(options.extra ?? []).filter((l) =>
      l.startsWith("#SBATCH") || !l.startsWith("#")
    ).map((l) => l.startsWith("#SBATCH") ? l : `#SBATCH ${l}`),
    `# ${sweep.cells.length} cells of the sweep in ${sweep.dir} (sweep.json);`,
    sweep.script
      ? `# cells of ${sweep.script}: a requeued or re-submitted task runs its cell again; a finished one is skipped.`
      : "# a requeued or re-submitted task resumes its run folder; a finished one is skipped.",
    // Each cell's threads are its CPUs: Slurm's count (--cpus-per-task, 1
    // when not given, as Slurm allots). Without this line every task took
    // every core (or the submitting shell's thread settings, which sbatch
    // passes on): two tasks on a 2-CPU node ran 2 threads each.
    'threads="${SLURM_CPUS_PER_TASK:-1}"',
    'export OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"',
    `cd ${shellQuote(options.workdir)} || exit 1`,
    'case "$SLURM_ARRAY_TASK_ID" in',
    ...sweep.cells.filter((c) => ids.includes(c.index)).flatMap((c) => [
      `  ${c.index})`,
      ...cellStep(sweep, c, options).split("\n").map((l) => `    ${l}`),
      "    ;;",
    ]),
    '  *) echo "no cell $SLURM_ARRAY_TASK_ID in this sweep" >&2; exit 2 ;;',
    "esac",
  ];
  return lines.join("\n") + "\n";
}

/**
 * The option of the sweep's own an extra `#SBATCH` line sets, if any:
 * `--array` or `--dependency` by any prefix sbatch takes for it (`--arr=`,
 * `--dep=`: getopt's abbreviations, which passed a whole-word check) or
 * their short forms `-a`, `-d` (a value joined or not).
 */
function ownedOption(line: string): string | undefined {
  const option = line.trim().replace(/^#SBATCH\s+/, "");
  const long = /^--([^=\s]+)/.exec(option);
  if (long) {
    return ["--array", "--dependency"].find((o) =>
      o.startsWith(`--${long[1]}`)
    );
  }
  const short = /^-([ad])/.exec(option);
  return short ? `-${short[1]}` : undefined;
}

/** `0,1,2,5` → `0-2,5`. */
function ranges(ids: readonly number[]): string {
  const sorted = [...ids].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(",");
}

/** A cell's state. */
export interface CellStatus {
  /** The cell. */
  cell: SweepCell;
  /**
   * `pending`: not started, or interrupted (a re-run resumes it, or
   * starts it again from scratch: `restarts`);
   * `running`: a live process of this host holds its lock; `held`: a
   * process this host cannot check holds it (another host's: it may run
   * there, or its host be gone — see `heldBy`); `finished`: its
   * `results.json` reads as a JSON object; `broken`: a `results.json` is
   * there but does not (torn, edited: see `broken`; `sweep run` moves it
   * aside and runs the cell again); `failed`: its last attempt exited with
   * an error (not killed by a signal: a cancelled or preempted cell is
   * pending).
   */
  state: "pending" | "running" | "held" | "finished" | "broken" | "failed";
  /** Where `broken`: what is wrong with its `results.json`. */
  broken?: string;
  /**
   * Where `held`: the holder and the way out (`pid N on host H (boot B),
   * which this host cannot check; if no run writes there, delete
   * DIR/.lock`).
   */
  heldBy?: string;
  /** Training steps done (every model, every seed), from `metrics.jsonl`. */
  steps: number;
  /** Training steps of the whole cell. */
  totalSteps: number;
  /** The last training line: `model seed step`. */
  at?: string;
  /** The exit code of the last attempt, when it was not 0. */
  exitCode?: number;
  /** The cell's log. */
  log: string;
  /**
   * A re-run starts the cell again from scratch (a study's cell that does
   * not resume: see {@linkcode SweepCell}'s `resumes`), not where it was.
   */
  restarts?: true;
}

/** Whether a re-run starts a cell again from scratch. */
function restarts(sweep: Sweep, cell: SweepCell): boolean {
  return sweep.script !== undefined && sweep.script !== EXPERIMENT_SCRIPT &&
    cell.resumes !== true;
}

/** The largest cell exit file read: a number and a newline. */
const EXIT_FILE_LIMIT = 64;

// A cell's last exit code from its exit file; none when no attempt finished
// or the file holds no number (bounded: not whatever was put there).
async function readExitCode(path: string): Promise<number | undefined> {
  try {
    const text = await readTextBounded(path, {
      limit: EXIT_FILE_LIMIT,
      what: "cell exit code",
    });
    return /^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The state of every cell of a sweep, from its run folders and logs.
 *
 * @param sweep The sweep.
 * @returns One status per cell.
 *
 * @example A sweep saved but not run: every cell pending, at step 0
 * ```ts
 * import { planSweep, saveSweep, sweepStatus } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const tmp = await Deno.makeTempDir();
 * const dir = `${tmp}/sw`;
 * const sweep = await saveSweep(planSweep({ options: { preset: "micro" }, seeds: 2 }, { dir }));
 * const status = await sweepStatus(sweep);
 * assertEquals(status.map((s) => [s.cell.name, s.state, s.steps]), [["seed-0", "pending", 0], ["seed-1", "pending", 0]]);
 * assertEquals(status[1].log, `${dir}/logs/seed-1.log`);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function sweepStatus(sweep: Sweep): Promise<CellStatus[]> {
  const p = sweepPaths(sweep.dir);
  const out: CellStatus[] = [];
  for (const cell of sweep.cells) {
    const exitCode = await readExitCode(p.exit(cell));
    let run;
    try {
      run = await readRun(cell.out);
    } catch { /* not started */ }
    const steps = run?.config.steps ?? 0;
    // A study's cell trains the models its values name (an ablation's
    // AR-only variant: 300 steps, not the 600 of its folder's two models).
    const models = typeof cell.values.model === "string"
      ? cell.values.model.split(",").length
      : run?.config.models.split(",").length ?? 0;
    const totalSteps = steps * models * (run?.config.seeds ?? 1);
    let done = 0, at: string | undefined;
    if (run) {
      // Streamed, keeping the last step per model and seed: the log whole
      // (every cell's, at each status) held a record object per line.
      const last = new Map<string, number>();
      try {
        for await (
          const r of MetricsLog.records(`${cell.out}/metrics.jsonl`)
        ) {
          if (typeof r.step !== "number" || typeof r.loss !== "number") {
            continue;
          }
          const k = `${r.model} seed ${r.seed}`;
          last.set(k, Math.max(last.get(k) ?? 0, r.step));
          at = `${k} step ${r.step}`;
        }
      } catch { /* none yet */ }
      for (const s of last.values()) done += Math.min(s, steps);
    }
    // Preparing (tokenizing, training the judge): locked, no config.json yet.
    const holder = await new RunFolder(cell.out).liveHolder().catch(() =>
      undefined
    );
    const preparing = !run && holder !== undefined;
    // Finished by one rule (cellResults) for status, re-submission and
    // merge, even for a cell whose config.json is missing or was edited
    // beyond reading; a results.json that does not read is broken, not
    // finished (it was skipped and left out for ever).
    const results = await cellResults(cell.out);
    const heldBy = heldElsewhere(cell, holder);
    const state = run?.status === "running" || run?.status === "held" ||
        preparing
      ? heldBy === undefined ? "running" : "held"
      : results.state === "finished"
      ? "finished"
      : results.state === "broken"
      ? "broken"
      : exitCode !== undefined && exitCode !== 0 && exitCode < 128
      ? "failed" // above 128: killed by a signal (scancel, preemption) — resumable
      : "pending";
    out.push({
      cell,
      state,
      steps: state === "finished" ? totalSteps : done,
      totalSteps,
      at,
      exitCode: exitCode !== 0 ? exitCode : undefined,
      log: p.log(cell),
      ...(state === "held" ? { heldBy } : {}),
      ...(restarts(sweep, cell) ? { restarts: true } : {}),
      ...(results.state === "broken" && state === "broken"
        ? { broken: results.reason }
        : {}),
    });
  }
  return out;
}

/**
 * One line per cell for people.
 *
 * @param s A cell's status.
 * @returns The line.
 *
 * @example
 * ```ts
 * import { planSweep, statusLine } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const [cell] = planSweep({ seeds: 1 }, { dir: "runs/sw" }).cells;
 * const log = "runs/sw/logs/seed-0.log";
 * assertEquals(
 *   statusLine({ cell, state: "running", steps: 30, totalSteps: 120, at: "ar seed 0 step 30", log }),
 *   "  0  running   seed-0 25% (30/120 steps, at ar seed 0 step 30)",
 * );
 * assertEquals(
 *   statusLine({ cell, state: "failed", steps: 0, totalSteps: 0, exitCode: 1, log }),
 *   "  0  failed    seed-0 exit 1, log runs/sw/logs/seed-0.log",
 * );
 * const heldBy = "pid 7 on host node9 (boot 5f3c…), which this host cannot check; if no run writes there, delete runs/sw/cells/seed-0/.lock";
 * assertEquals(
 *   statusLine({ cell, state: "held", steps: 0, totalSteps: 0, heldBy, log }),
 *   `  0  held      seed-0: held by ${heldBy}`,
 * );
 * ```
 */
export function statusLine(s: CellStatus): string {
  const pct = s.totalSteps > 0
    ? ` ${
      Math.round((100 * s.steps) / s.totalSteps)
    }% (${s.steps}/${s.totalSteps} steps${
      s.at && s.state !== "finished" ? `, at ${s.at}` : ""
    })`
    : "";
  const why = s.state === "failed"
    ? ` exit ${s.exitCode}, log ${s.log}`
    : s.state === "held"
    ? `: held by ${s.heldBy ?? "a process this host cannot check"}`
    : s.state === "broken"
    ? `: ${s.broken}; sweep run moves it aside (${BROKEN_RESULTS}) and runs the cell again`
    : s.state === "pending" && (s.steps > 0 || s.exitCode !== undefined)
    ? ` (interrupted${
      s.exitCode !== undefined ? ` by signal ${s.exitCode - 128}` : ""
    }: a re-run ${
      s.restarts ? "starts it again from scratch" : "resumes it"
    }; log ${s.log})`
    : "";
  return `${String(s.cell.index).padStart(3)}  ${
    s.state.padEnd(8)
  }  ${s.cell.name}${pct}${why}`;
}

/**
 * What a cell will cost, to start the longest first: an experiment cell's
 * estimated work (training and evaluation FLOPs of its configuration, see
 * `estimateRun`); a study's cell (whose values are the study's, not the
 * experiment's options) 1 for a D3PM and 0 for any other model — the
 * epochs study's D3PM runs its whole budget where an AR run stops on
 * patience, and a D3PM's evaluation draws several bounds where the AR's
 * NLL is one pass.
 *
 * @param sweep The sweep.
 * @param cell One of its cells.
 * @returns A cost; only its order among the sweep's cells means anything.
 *
 * @example
 * ```ts
 * import { cellCost, planSweep } from "@d3pm/experiment";
 * import { assert } from "@std/assert";
 * const s = planSweep({ options: { preset: "micro" }, grid: { steps: [100, 400] } }, { dir: "runs/s" });
 * assert(cellCost(s, s.cells[1]) > cellCost(s, s.cells[0]));
 * ```
 */
export function cellCost(sweep: Sweep, cell: SweepCell): number {
  if (sweep.script !== undefined && sweep.script !== EXPERIMENT_SCRIPT) {
    return cell.values.model === "d3pm" ? 1 : 0;
  }
  const c = cellConfig(sweep, cell);
  if (c === undefined) return 0; // planSweep checked every cell: a sweep.json edited by hand
  const e = estimateRun(c);
  return [...e.training, ...e.evaluation].reduce((t, p) => t + p.amount, 0);
}

/**
 * The whole configuration an experiment cell runs with: the sweep's fixed
 * options, the cell's swept values, one seed, its folder.
 *
 * @param sweep The sweep.
 * @param cell One of its cells.
 * @returns The configuration; undefined for a study's cell (its values are
 *   the study's) or one that no longer resolves (a `sweep.json` edited by
 *   hand).
 */
export function cellConfig(
  sweep: Sweep,
  cell: SweepCell,
): ExperimentConfig | undefined {
  if (sweep.script !== undefined && sweep.script !== EXPERIMENT_SCRIPT) {
    return undefined;
  }
  try {
    const given: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(sweep.spec.options ?? {})) {
      const key = keyOf(k) as OptionKey;
      given[key] = convert(key, v);
    }
    const { seed, ...values } = cell.values;
    // As recorded: a sweep planned by an older version may hold a value
    // that version accepted and nothing read (its cells run with --resume).
    return resolveConfig({
      ...given,
      ...values,
      seeds: 1,
      firstSeed: Number(seed ?? 0),
      out: cell.out,
    }, { unread: "keep" });
  } catch {
    return undefined;
  }
}

/**
 * The order a wave's cells start in when run here: the costliest first
 * ({@linkcode cellCost}), so that the last cell to finish is not a long one
 * started last; equal costs keep the sweep's order.
 *
 * @param sweep The sweep.
 * @param wave Cells of one wave.
 * @returns The same cells, costliest first.
 */
export function startOrder(
  sweep: Sweep,
  wave: readonly SweepCell[],
): SweepCell[] {
  return wave.map((cell) => ({ cell, cost: cellCost(sweep, cell) }))
    .sort((a, b) => b.cost - a.cost || a.cell.index - b.cell.index)
    .map((x) => x.cell);
}

/** Options of {@linkcode runLocal}. */
export interface LocalOptions extends StepOptions {
  /** Processes at once. */
  jobs: number;
  /** The folder the experiment runs in (the repository). */
  workdir: string;
  /** CPU cores to divide among the jobs (default: this machine's). */
  cores?: number;
  /** Where progress lines go (default stderr). */
  log?: (line: string) => void;
  /**
   * Called for a cell that another process is running (its folder's lock
   * held by a live process: another `sweep run`, a Slurm task): left to
   * it, neither failed nor finished here.
   */
  onBusy?: (cell: SweepCell) => void;
}

/**
 * Run a sweep's cells here, `jobs` processes at once, the cores divided
 * among them (each gets `OPENBLAS_NUM_THREADS`, `OMP_NUM_THREADS` and
 * `MKL_NUM_THREADS` of `cores / jobs`, at least 1); wave by wave, each
 * wave's costliest cells first.
 *
 * @param sweep The sweep.
 * @param options Processes, the experiment command.
 * @returns The cells that failed (empty when all finished). A cell that
 *   another live process is running is not among them: it is logged as
 *   `busy` and given to `onBusy`, and the later waves are not run.
 *
 * @example A command that fails: each cell's exit code recorded, the cells returned
 * ```ts
 * import { planSweep, runLocal, saveSweep, sweepStatus } from "@d3pm/experiment";
 * import { assert, assertEquals } from "@std/assert";
 * const root = await Deno.makeTempDir();
 * const sweep = await saveSweep(planSweep({ seeds: 2 }, { dir: `${root}/sw` }));
 * const lines: string[] = [];
 * const failed = await runLocal(sweep, { jobs: 2, workdir: root, experiment: "false", log: (l) => lines.push(l) });
 * assertEquals(failed.map((c) => c.name).sort(), ["seed-0", "seed-1"]); // in the order they ended
 * assert(lines.includes(`cell seed-1: failed (exit 1), log ${root}/sw/logs/seed-1.log`));
 * assertEquals((await sweepStatus(sweep)).map((s) => [s.state, s.exitCode]), [["failed", 1], ["failed", 1]]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function runLocal(
  sweep: Sweep,
  options: LocalOptions,
): Promise<SweepCell[]> {
  const log = options.log ?? ((s: string) => console.error(s));
  const cores = options.cores ?? navigator.hardwareConcurrency ?? 1;
  const threads = String(Math.max(1, Math.floor(cores / options.jobs)));
  let queue: SweepCell[] = [];
  const failed: SweepCell[] = [];
  const busy: SweepCell[] = [];
  const worker = async () => {
    for (let cell = queue.shift(); cell; cell = queue.shift()) {
      const started = performance.now();
      const child = new Deno.Command("bash", {
        // The step's own failure line left out: the log below is the one.
        args: ["-c", cellStep(sweep, cell, { ...options, failureLine: false })],
        cwd: options.workdir,
        env: {
          OPENBLAS_NUM_THREADS: threads,
          OMP_NUM_THREADS: threads,
          MKL_NUM_THREADS: threads,
        },
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
      const { code } = await child.status;
      const s = ((performance.now() - started) / 1000).toFixed(0);
      // Refused because another live process holds the cell's folder: not
      // a failure of the cell, and the exit code this attempt wrote is not
      // the cell's (its holder's step writes that).
      const holder = code === 0
        ? undefined
        : await new RunFolder(cell.out).liveHolder().catch(() => undefined);
      if (code === FOLDER_BUSY_EXIT || holder !== undefined) {
        await Deno.remove(sweepPaths(sweep.dir).exit(cell)).catch(() => {});
        busy.push(cell);
        options.onBusy?.(cell);
        log(busyCellLine(cell, holder));
        continue;
      }
      if (code !== 0) failed.push(cell);
      log(
        code === 0
          ? `cell ${cell.name}: done (${s} s)`
          : `cell ${cell.name}: failed (exit ${code}), log ${
            sweepPaths(sweep.dir).log(cell)
          }`,
      );
    }
  };
  // Wave by wave: a later wave needs every cell of the earlier ones.
  for (const wave of waves(sweep.cells)) {
    if (failed.length > 0) {
      for (const cell of wave) {
        log(`cell ${cell.name}: not run (an earlier wave failed)`);
        failed.push(cell);
      }
      continue;
    }
    if (busy.length > 0) {
      // Not failed: the run holding the earlier cell may start these.
      for (const cell of wave) {
        log(
          `cell ${cell.name}: not run (cell ${
            busy[0].name
          } of an earlier wave is busy in another run)`,
        );
      }
      continue;
    }
    queue = startOrder(sweep, wave);
    await Promise.all(
      Array.from({ length: Math.min(options.jobs, wave.length) }, worker),
    );
  }
  return failed;
}
