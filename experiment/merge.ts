/**
 * One report across run folders (the cells of a sweep, or any finished
 * runs): per cell, and grouped over seeds (mean ± sd, best, range), with a
 * loss chart and a speed–quality chart per group. Folders are merged only
 * when they share the data, the tokenizer and every option but the swept
 * ones; otherwise the merge is refused with a one-line reason naming the
 * difference.
 *
 * @module
 */
import { RESULTS_READ } from "./_limits.ts";
import { chart, fixed, markdownTable, summarize } from "@d3pm/eval";
import { configDifferences, MetricsLog } from "@d3pm/train";
import { flagOf, keyOf } from "@d3pm/cli";
import { BoundedReadError, readJsonBounded } from "@d3pm/core";
import { type DataRecord, holderHost, RunFolder } from "./run_folder.ts";
import { compareData } from "./_same_data.ts";
import { resultsDiffer } from "./load.ts";
import {
  type ChartLabels,
  curvesOf,
  lossChart,
  speedQualityChart,
} from "./charts.ts";
import { contestants, labelOf } from "./registry.ts";
import { ADDED_KEYS, ConfigError, OPTIONS, RESUMABLE_KEYS } from "./options.ts";
import type { ExperimentResult, ModelResult } from "./results.ts";
import type { ExperimentConfig } from "./options.ts";
import {
  cellConfig,
  EXPERIMENT_SCRIPT,
  readSweep,
  type Sweep,
  type SweepCell,
  sweepPaths,
  type SweepValue,
} from "./sweep.ts";
import { notAFolderOfItsOwn } from "./_paths.ts";
import { PRESET_MOVES } from "./presets.ts";
import { ignoredKeys } from "./_ignored_keys.ts";
import { cellResults } from "./_cell_results.ts";
import { shellQuote } from "./_shell.ts";

/** One finished run in a merge. */
export interface MergedRun {
  /** Its folder. */
  dir: string;
  /** Its name in the report (the sweep cell's, else the folder's). */
  name: string;
  /** The swept values (and `seed`). */
  values: Record<string, SweepValue>;
  /** What it measured. */
  result: ExperimentResult;
  /**
   * What it trained on (its `data.json`), which a merge compares in place
   * of the `--data` path; none for a run made before data records (its
   * path is compared).
   */
  dataRecord?: DataRecord;
}

/** What {@linkcode collectRuns} found. */
export interface Merge {
  /** The finished runs, in the given order. */
  runs: MergedRun[];
  /** The keys that may differ (always `seed`). */
  swept: string[];
  /** Folders of a sweep without results yet (left out, named in the report). */
  unfinished: string[];
}

/** Options of {@linkcode collectRuns}. */
export interface CollectOptions {
  /** Options that may differ between plain run folders (a sweep's own are read from `sweep.json`). */
  vary?: readonly string[];
  /** Where notes go (runs whose data are compared by path alone); default stderr. */
  log?: (line: string) => void;
}

// A run's data.json, which a merge compares (none: a run made before data
// records); a malformed one is named.
async function readDataRecord(dir: string): Promise<DataRecord | undefined> {
  return await new RunFolder(dir).savedData().catch((e: Error) => {
    throw new ConfigError(`Cannot merge ${dir}: ${e.message}`);
  });
}

// A run's results.json: a missing one is "no results" (a run still going
// named), a torn, unreadable or oversized one is named as what it is.
async function readResult(dir: string): Promise<ExperimentResult> {
  let r: unknown;
  try {
    r = await readJsonBounded(`${dir}/results.json`, RESULTS_READ);
  } catch (e) {
    if (e instanceof Deno.errors.NotADirectory) {
      throw new ConfigError(
        `Cannot merge ${dir}: it is a file, not a run folder or a sweep folder`,
      );
    }
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new ConfigError(
        `Cannot merge ${dir}: ${
          e instanceof BoundedReadError
            ? e.message
            : `its results.json cannot be read (${
              e instanceof SyntaxError ? "not JSON: torn or edited" : e
            })`
        }; restore it, or run the experiment there again with --resume to write it`,
      );
    }
    const folder = new RunFolder(dir);
    const writer = await folder.liveHolder().catch(() => undefined);
    const host = writer && holderHost(writer);
    throw new ConfigError(
      writer === undefined
        ? `Cannot merge ${dir}: no results.json there (a finished run folder or a sweep folder with sweep.json is needed)`
        : host !== undefined
        ? `Cannot merge ${dir}: it has no results.json yet and is held by pid ${writer.pid} on ${host}, which this host cannot check; merge it once it has finished (if no run writes there, delete ${folder.lockPath})`
        : `Cannot merge ${dir}: its run is still going (pid ${writer.pid}) and has no results.json yet; merge it once it has finished`,
    );
  }
  const ok = typeof r === "object" && r !== null &&
    Array.isArray((r as ExperimentResult).results) &&
    typeof (r as ExperimentResult).config === "object" &&
    (r as ExperimentResult).config !== null;
  if (!ok) {
    throw new ConfigError(
      `Cannot merge ${dir}: results.json is not a run's results${
        studyCellWords(dir, r)
      }`,
    );
  }
  return r as ExperimentResult;
}

// What a results.json that is not a run's is, when it is a study cell's
// (study epochs: `cell`; ablate: a variant's row), and what gathers those.
function studyCellWords(dir: string, r: unknown): string {
  if (typeof r !== "object" || r === null) return "";
  const study = shellQuote(
    dir.replace(/\/+$/, "").replace(/\/[^/]*$/, "") || ".",
  );
  const { cell, name, plateauExit } = r as Record<string, unknown>;
  if (typeof cell === "string") {
    return `: it is study epochs cell ${cell}'s (a study's cells are not runs; deno task study epochs --out ${study} --collect gathers them into its report)`;
  }
  if (typeof name === "string" && typeof plateauExit === "number") {
    return `: it is ablate variant ${
      JSON.stringify(name)
    }'s (deno task ablate --out ${study} --collect gathers the variants into ablation.md)`;
  }
  return "";
}

// The results must be those of the run the folder holds (resultsDiffer),
// judged with the folder's data.json as collectRuns read it (once).
async function checkSavedConfig(
  dir: string,
  result: ExperimentResult,
  record: DataRecord | undefined,
): Promise<void> {
  const folder = new RunFolder(dir);
  const saved = await folder.savedConfig().catch((e) => {
    throw new ConfigError(`Cannot merge ${dir}: ${(e as Error).message}`);
  });
  const d = saved &&
    await resultsDiffer(folder, result, saved, {
      verified: record !== undefined,
    });
  if (d) {
    throw new ConfigError(
      `Cannot merge ${dir}: its results.json ${d} (one was copied or edited by hand); restore it, or run the experiment there again`,
    );
  }
}

/** A finished run's results and data record, as a merge reads them. */
interface FinishedRun {
  result: ExperimentResult;
  dataRecord?: DataRecord;
}

// A finished run folder's results and data record, each file read once:
// results.json, then data.json (a malformed one is named, never read as a
// run without one), then config.json against the results.
async function readFinished(dir: string): Promise<FinishedRun> {
  const result = await readResult(dir);
  const dataRecord = await readDataRecord(dir);
  await checkSavedConfig(dir, result, dataRecord);
  return { result, ...(dataRecord ? { dataRecord } : {}) };
}

// A sweep cell's run, or undefined while it is unfinished: no results.json,
// or results that are not its folder's (left out, named in the report). A
// cell whose results.json is broken (cellResults: sweep status says so too)
// or whose data.json is malformed is refused naming the file, not counted
// as unfinished (a broken one was left out for ever).
async function readCell(
  dir: string,
  sweepDir: string,
): Promise<FinishedRun | undefined> {
  const read = await cellResults(dir);
  if (read.state === "none") return undefined;
  if (read.state === "broken") {
    throw new ConfigError(
      `Cannot merge ${dir}: ${read.reason}; deno task sweep run ${sweepDir} --on … moves it aside and runs the cell again`,
    );
  }
  const result = await readResult(dir);
  const dataRecord = await readDataRecord(dir);
  const ok = await checkSavedConfig(dir, result, dataRecord).then(
    () => true,
    () => false,
  );
  return ok ? { result, ...(dataRecord ? { dataRecord } : {}) } : undefined;
}

/**
 * The runs of the given folders (sweep folders expand to their cells) and
 * the check that they may be merged.
 *
 * @param targets Run folders and sweep folders.
 * @param options Options plain run folders may differ in.
 * @returns The runs.
 * @throws {ConfigError} A one-line reason: a folder without results, or
 *   two runs that differ in data, tokenizer or an option not swept.
 *
 * @example What cannot be merged is named in one line
 * ```ts
 * import { collectRuns, ConfigError, planSweep, saveSweep } from "@d3pm/experiment";
 * import { assertRejects } from "@std/assert";
 * const root = await Deno.makeTempDir();
 * await assertRejects(
 *   () => collectRuns([root]),
 *   ConfigError,
 *   `Cannot merge ${root}: no results.json there (a finished run folder or a sweep folder with sweep.json is needed)`,
 * );
 * await assertRejects(() => collectRuns([root], { vary: ["colour"] }), ConfigError, "Cannot vary colour");
 * await saveSweep(planSweep({ seeds: 2 }, { dir: `${root}/sw` })); // planned, not run
 * await assertRejects(
 *   () => collectRuns([`${root}/sw`]),
 *   ConfigError,
 *   `Nothing to merge: no cell of ${root}/sw has finished`,
 * );
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function collectRuns(
  targets: readonly string[],
  options: CollectOptions = {},
): Promise<Merge> {
  if (targets.length === 0) {
    throw new ConfigError(
      "Nothing to merge: give run folders or a sweep folder",
    );
  }
  const unknown = options.vary?.find((k) =>
    k !== "seed" && !Object.hasOwn(OPTIONS, k)
  );
  if (unknown !== undefined) {
    throw new ConfigError(
      `Cannot vary ${unknown}: not an option of the experiment (deno task experiment --help lists them; kebab-case or camelCase)`,
    );
  }
  const runs: MergedRun[] = [];
  const unfinished: string[] = [];
  const swept = new Set<string>(["seed", ...(options.vary ?? [])]);
  for (const target of targets) {
    const dir = target.replace(/\/+$/, "");
    // A folder without sweep.json is a run; a broken sweep.json is named.
    const sweep = await Deno.stat(sweepPaths(dir).json).then(
      () => readSweep(dir),
      () => undefined,
    );
    if (sweep) {
      sweep.swept.forEach((k) => swept.add(k));
      for (const cell of sweep.cells) {
        const read = await readCell(cell.out, dir);
        if (!read) unfinished.push(cell.out);
        else {
          checkCell(
            dir,
            cell,
            beforeMoves(sweep, cell, expectedConfig(dir, sweep, cell), read),
            read.result,
            read.dataRecord,
          );
          runs.push({
            dir: cell.out,
            name: cell.name,
            values: cell.values,
            ...read,
          });
        }
      }
    } else {
      runs.push({
        dir,
        name: dir.split("/").at(-1)!,
        values: {},
        ...await readFinished(dir),
      });
    }
  }
  for (const run of runs) {
    const c = run.result.config as unknown as Record<string, SweepValue>;
    for (const k of swept) {
      if (k !== "seed" && !(k in run.values)) run.values[k] = c[k];
    }
    const seeds = [...new Set(run.result.results.map((m) => m.seed))];
    run.values.seed = seeds.length === 1 ? seeds[0] : seeds.join("+");
  }
  if (runs.length === 0) {
    throw new ConfigError(
      `Nothing to merge: no cell of ${targets.join(", ")} has finished`,
    );
  }
  checkMergeable(runs, [...swept], options.log ?? console.error);
  return { runs, swept: [...swept], unfinished };
}

/**
 * `expected` with the value the cell's run holds of each option its preset
 * has moved since ({@linkcode PRESET_MOVES}) where that value is one the
 * preset held before and neither the sweep's options nor the cell's values
 * name the option: the cell ran before the move. (An option missing from
 * an older results.json reads as its `ADDED_KEYS` value.)
 */
function beforeMoves(
  sweep: Sweep,
  cell: SweepCell,
  expected: ExperimentConfig | undefined,
  read: { result: ExperimentResult },
): ExperimentConfig | undefined {
  if (expected === undefined) return undefined;
  const named = new Set<string>([
    ...Object.keys(sweep.spec.options ?? {}).map(keyOf),
    ...Object.keys(cell.values),
  ]);
  const saved = { ...ADDED_KEYS, ...read.result.config } as Record<
    string,
    unknown
  >;
  const moved = PRESET_MOVES[expected.preset] ?? {};
  const then: Record<string, unknown> = {};
  for (const [key, before] of Object.entries(moved)) {
    if (!named.has(key) && before.includes(saved[key])) then[key] = saved[key];
  }
  return { ...expected, ...then } as ExperimentConfig;
}

/**
 * The configuration an experiment sweep's cell must hold: undefined only
 * for a study's cell (its values are the study's). One that no longer
 * resolves (options an older version planned, refused now) is refused:
 * its folder was once let through unchecked.
 */
function expectedConfig(
  dir: string,
  sweep: Sweep,
  cell: SweepCell,
): ExperimentConfig | undefined {
  if (sweep.script !== undefined && sweep.script !== EXPERIMENT_SCRIPT) {
    return undefined;
  }
  const expected = cellConfig(sweep, cell);
  if (expected !== undefined) return expected;
  throw new ConfigError(
    `Cannot merge ${dir}: cell ${cell.name}'s options no longer resolve to a run's configuration (planned by an older version, or sweep.json edited), so its folder ${cell.out} cannot be checked to hold its run; merge the finished cells as runs (deno task report --merge ${
      shellQuote(cell.out)
    } …), or merge with the version that planned the sweep`,
  );
}

/**
 * A sweep cell's folder must hold the cell's run: a folder copied from
 * another cell or sweep, or a config edited by hand, would be reported
 * under the cell's values (and its swept options are not compared between
 * cells). Its data are identified as everywhere in a merge: by its
 * `data.json` where it has one (then compared with the other runs' in
 * {@linkcode checkMergeable}), so a sweep whose data moved (its cells
 * resumed with `--data NEW`) merges; by the `--data` path where not, and
 * always when `--data` is swept (the path is then the cell's value).
 */
function checkCell(
  dir: string,
  cell: SweepCell,
  expected: ExperimentConfig | undefined,
  r: ExperimentResult,
  record: DataRecord | undefined,
): void {
  if (expected === undefined) return; // a study's cell (expectedConfig): its values are the study's
  const d = configDifferences(r.config, expected, {
    defaults: ADDED_KEYS,
    // The --data path is passed over where data.json shows what the data
    // are (moved data are the same data), but not when --data is swept: then
    // the path is the cell's value, and a run on another is another cell's.
    ignore: ignoredKeys(record !== undefined && !("data" in cell.values)),
  })[0] ?? (r.results.some((m) => m.seed !== cell.values.seed)
    ? {
      key: "seed",
      saved: [...new Set(r.results.map((m) => m.seed))].join(","),
      now: cell.values.seed,
    }
    : undefined);
  if (d !== undefined) {
    throw new ConfigError(
      `Cannot merge ${dir}: cell ${cell.name}'s folder ${cell.out} holds another run (${
        d.key === "seed" ? "its seed" : `--${flagOf(d.key)}`
      } is ${shownValue(d.saved)} there but ${
        shownValue(d.now)
      } in the cell): a folder copied or edited by hand, or another sweep's; re-run the cell in a folder of its own`,
    );
  }
}

/**
 * Why two runs of a merge differ in their data, or undefined: the same
 * data by what they are (their data.json, {@linkcode compareData}), not by
 * the --data path (which the results' `source` is) — moved data are the
 * same data, and a file replaced at the same path is not; then the corpus
 * facts. A note (data compared by path alone) goes into `notes`.
 */
function dataDifference(
  first: MergedRun,
  run: MergedRun,
  notes: Set<string>,
): string | undefined {
  const a = first.result, b = run.result;
  const { differ, note } = compareData(
    {
      name: first.dir,
      data: a.config.data,
      ...(first.dataRecord ? { record: first.dataRecord } : {}),
    },
    {
      name: run.dir,
      data: b.config.data,
      ...(run.dataRecord ? { record: run.dataRecord } : {}),
    },
  );
  if (differ) return differ;
  if (note) notes.add(note);
  const verified = first.dataRecord !== undefined &&
    run.dataRecord !== undefined;
  const da = a.data ?? {}, db = b.data ?? {};
  const facts = verified
    ? ["trainTokens", "testTokens"] as const
    : ["source", "trainTokens", "testTokens"] as const;
  const k = facts.find((k) => da[k] !== db[k]);
  return k === undefined
    ? undefined
    : `their data differ (${k} ${db[k]} in ${run.dir} but ${
      da[k]
    } in ${first.dir})`;
}

/**
 * Refuse runs that differ in what a comparison holds fixed: the data, the
 * tokenizer, and every option but the swept ones (and those that only steer
 * the process). The data are compared by what they are — each run's
 * `dataRecord` (its `data.json`: the splits' SHA-256 and the tokenizer) —
 * whatever `--data` path each gave; a run without one (made before data
 * records) is compared by its `--data` path, with a note when that is the
 * same. With `data` swept, runs on other `--data` values are what is
 * compared, and the runs of one value must share their data, the same way.
 *
 * @param runs The runs.
 * @param swept Options that may differ (`seed`: seeds and first seed).
 * @param log Where notes go (default: nowhere).
 * @throws {ConfigError} Naming the first difference.
 *
 * @example
 * ```ts
 * import { checkMergeable, ConfigError, resolveConfig } from "@d3pm/experiment";
 * import { assertThrows } from "@std/assert";
 * const run = (dir: string, lr: number) => ({
 *   dir, name: dir, values: {},
 *   result: { config: resolveConfig({ lr, out: dir }), data: { source: "wt2" }, tokenizer: { id: "byte" } } as never,
 * });
 * checkMergeable([run("a", 1e-3), run("b", 2e-3)], ["lr"]);
 * assertThrows(
 *   () => checkMergeable([run("a", 1e-3), run("b", 2e-3)], ["seed"]),
 *   ConfigError,
 *   "Cannot merge a and b: --lr is 0.002 in b but 0.001 in a",
 * );
 * ```
 */
export function checkMergeable(
  runs: readonly MergedRun[],
  swept: readonly string[],
  log: (line: string) => void = () => {},
): void {
  const [first, ...rest] = runs;
  const ignore = [
    ...RESUMABLE_KEYS,
    "seeds",
    "firstSeed",
    // What the data are is compared below (or they are swept).
    "data",
    ...swept.filter((k) => k !== "seed"),
  ];
  const notes = new Set<string>();
  for (const run of rest) {
    const a = first.result, b = run.result;
    const why = (what: string, ref = first) =>
      new ConfigError(
        `Cannot merge ${ref.dir} and ${run.dir}: ${what} (a merge compares runs that differ only in the swept options${
          swept.length > 1 ? `: ${swept.join(", ")}` : ": seeds"
        }; pass --vary KEY to compare an option)`,
      );
    // Whose data a run must share: the first run's, or with `data` swept
    // the first run's of its --data value (runs on other data are what is
    // compared; those of one value share theirs, by data.json as anywhere).
    const dataOf = (r: MergedRun) => r.values.data ?? r.result.config.data;
    const ref = swept.includes("data")
      ? runs.find((r) => dataOf(r) === dataOf(run))!
      : first;
    const data = ref === run ? undefined : dataDifference(ref, run, notes);
    if (data) throw why(data, ref);
    if (a.tokenizer?.id !== b.tokenizer?.id) {
      throw why(
        `their tokenizers differ (${b.tokenizer?.id} in ${run.dir} but ${a.tokenizer?.id} in ${first.dir})`,
      );
    }
    // Both sides read as older runs read: a key neither run's version
    // wrote is its ADDED_KEYS value in each (defaults fill `saved` only).
    const diff = configDifferences(a.config, { ...ADDED_KEYS, ...b.config }, {
      defaults: ADDED_KEYS,
      ignore,
    });
    if (diff.length > 0) {
      const d = diff[0];
      throw why(
        `--${flagOf(d.key)} is ${shownValue(d.now)} in ${run.dir} but ${
          shownValue(d.saved)
        } in ${first.dir}`,
      );
    }
  }
  for (const note of notes) log(note);
  // Each seed once per setting: a run given twice (or a copy of it) would
  // count as two seeds in the means, spreads and ranges.
  const setting = (run: MergedRun) =>
    swept.filter((k) => k !== "seed").map((k) =>
      `--${flagOf(k)} ${run.values[k]}`
    ).join(", ");
  const seen = new Map<string, string>();
  for (const run of runs) {
    const at = setting(run);
    for (const m of run.result.results ?? []) {
      const key = JSON.stringify([at, m.model, m.seed]);
      const other = seen.get(key);
      if (other !== undefined) {
        throw new ConfigError(
          `Cannot merge ${other} and ${run.dir}: both hold seed ${m.seed} of ${m.model}${
            at ? ` at ${at}` : ""
          } (the same run given twice, or a copy of it: the figures over seeds would count it twice)`,
        );
      }
      seen.set(key, run.dir);
    }
  }
}

/** A group: runs with the same swept values but the seed. */
interface Group {
  key: string;
  values: Record<string, SweepValue>;
  runs: MergedRun[];
}

function groupsOf(merge: Merge): Group[] {
  const groups = new Map<string, Group>();
  for (const run of merge.runs) {
    const values = Object.fromEntries(
      merge.swept.filter((k) => k !== "seed").map((k) => [k, run.values[k]]),
    );
    const key = Object.entries(values).map(([k, v]) => `${flagOf(k)} ${v}`)
      .join(", ") || "all runs";
    const g = groups.get(key) ?? { key, values, runs: [] };
    g.runs.push(run);
    groups.set(key, g);
  }
  return [...groups.values()];
}

const LABELS: ChartLabels = {
  label: (kind) => labelOf(kind).short,
  validation: (kind) =>
    contestants().find((c) => c.kind === kind)?.validation.name ??
      "validation",
};

/** One row per model of a group: seeds, BPT mean ± sd, best, range, means of gen PPL and speed. */
export interface GroupRow {
  /** The swept values but the seed (`all runs` when nothing else is swept). */
  group: string;
  /** The contestant. */
  model: string;
  /** The seeds merged. */
  seeds: number[];
  /** Test bits per token over the seeds. */
  bpt: { mean: number; sd: number; best: number; min: number; max: number };
  /** Mean generative perplexity. */
  genPpl: number;
  /** Mean generation speed (batches/s). */
  batchesPerSecond: number;
  /** Whether BPT is a bound. */
  bound: boolean;
}

/**
 * The grouped figures of a merge: per swept setting (but the seed) and
 * model, test BPT over seeds.
 *
 * @param merge The runs.
 * @returns One row per group and model.
 */
export function groupRows(merge: Merge): GroupRow[] {
  return groupsOf(merge).flatMap((g) => {
    const all = g.runs.flatMap((r) => r.result.results);
    const kinds = [...new Set(all.map((m) => m.model))];
    return kinds.map((model) => {
      const ms = all.filter((m) => m.model === model);
      const s = summarize(ms.map((m) => m.test.bpt));
      return {
        group: g.key,
        model,
        seeds: ms.map((m) => m.seed),
        bpt: { mean: s.mean, sd: s.sd, best: s.min, min: s.min, max: s.max },
        genPpl: summarize(ms.map((m) => m.generation.genPpl)).mean,
        batchesPerSecond: summarize(ms.map((m) =>
          m.generation.speed.batchesPerSecond
        )).mean,
        bound: ms[0].test.bound === true,
      };
    });
  });
}

/** A file-name-safe form of a group key. */
const slug = (s: string) => s.replace(/[^\w.+-]+/g, "_");

/**
 * Write the merged report: `report.md`, one `loss-<group>.svg` and one
 * `speed_quality-<group>.svg` per group, and `merged.json` (the grouped rows).
 *
 * @param merge The runs.
 * @param out The folder to write to: new, a sweep folder, or one that
 *   holds an earlier merged report; never a run's own folder.
 * @returns The report's text.
 * @throws {ConfigError} When `out` is a file or holds a run or a model,
 *   before anything is written.
 *
 * @example A run's own folder is refused, its files untouched
 * ```ts
 * import { ConfigError, writeMergedReport } from "@d3pm/experiment";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const run = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${run}/config.json`, "{}");
 * await assertRejects(
 *   () => writeMergedReport({ runs: [], swept: ["seed"], unfinished: [] }, run),
 *   ConfigError,
 *   `Cannot write the merged report to ${run}: it holds a run or a model (config.json), whose own report.md and plots would be overwritten; choose a new folder`,
 * );
 * assertEquals([...Deno.readDirSync(run)].map((e) => e.name), ["config.json"]);
 * await Deno.remove(run, { recursive: true });
 * ```
 */
export async function writeMergedReport(
  merge: Merge,
  out: string,
): Promise<string> {
  // A new folder, a sweep's (its report goes beside its cells, batch
  // scripts and logs: a sweep's folder is its own), or an earlier merged
  // report (its merged.json marks it).
  const why = await notAFolderOfItsOwn(
    out,
    (name, names) =>
      names.has("sweep.json") ||
      ["merged.json", "cells", "logs"].includes(name) ||
      (names.has("merged.json") &&
        (name === "report.md" || /^(loss|speed_quality)-.*\.svg$/.test(name))),
  );
  if (why) {
    throw new ConfigError(
      `Cannot write the merged report to ${out}: ${why}${
        why.startsWith("it holds a run")
          ? ", whose own report.md and plots would be overwritten; choose a new folder"
          : ""
      }`,
    );
  }
  await Deno.mkdir(out, { recursive: true });
  const perCell = perCellTable(merge);
  const rows = groupRows(merge);
  const grouped = groupedTable(rows, merge.swept.filter((k) => k !== "seed"));
  const charts = await writeGroupCharts(groupsOf(merge), out);
  const md = mergedMarkdown(merge, { grouped, perCell, charts });
  await Deno.writeTextFile(`${out}/report.md`, md);
  await Deno.writeTextFile(
    `${out}/merged.json`,
    JSON.stringify(
      { runs: merge.runs.map((r) => r.dir), swept: merge.swept, rows },
      null,
      2,
    ) + "\n",
  );
  return md;
}

/** The merged report's table of every model of every cell. */
function perCellTable(merge: Merge): string {
  const le = (m: ModelResult) => (m.test.bound ? "≤ " : "");
  return markdownTable(
    [
      "Cell",
      "Model",
      "Seed",
      "BPT",
      "NLL (nats)",
      "gen PPL",
      "entropy",
      "batches/s",
      "train s",
    ],
    merge.runs.flatMap((run) =>
      run.result.results.map((m) => [
        run.name,
        labelOf(m.model).short,
        m.seed,
        `${le(m)}${fixed(m.test.bpt)}`,
        `${le(m)}${fixed(m.test.nll)}`,
        fixed(m.generation.genPpl, 1),
        fixed(m.generation.entropy, 2),
        fixed(m.generation.speed.batchesPerSecond, 3),
        fixed(m.training.seconds, 0),
      ])
    ),
  );
}

/** The merged report's table of each group's models over seeds. */
function groupedTable(
  rows: readonly GroupRow[],
  swept: readonly string[],
): string {
  return markdownTable(
    [
      ...(swept.length ? ["Setting"] : []),
      "Model",
      "Seeds",
      "BPT mean ± sd",
      "best",
      "range",
      "gen PPL (mean)",
      "batches/s (mean)",
    ],
    rows.map((r) => [
      ...(swept.length ? [r.group] : []),
      labelOf(r.model).short,
      `${r.seeds.length} (${r.seeds.join(", ")})`,
      `${r.bound ? "≤ " : ""}${fixed(r.bpt.mean)} ± ${fixed(r.bpt.sd)}`,
      `${r.bound ? "≤ " : ""}${fixed(r.bpt.best)}`,
      `${fixed(r.bpt.min)}–${fixed(r.bpt.max)}`,
      fixed(r.genPpl, 1),
      fixed(r.batchesPerSecond, 3),
    ]),
  );
}

/** Write each group's loss and speed–quality charts; their Markdown sections. */
async function writeGroupCharts(
  groups: readonly Group[],
  out: string,
): Promise<string[]> {
  const charts: string[] = [];
  for (const g of groups) {
    // Streamed into the curves a record at a time, as report.ts does: the
    // group's logs whole (every run's in one array) held a record object
    // per line, 656 MB of memory for a 315 MB log.
    const curves = curvesOf([]);
    for (const run of g.runs) {
      try {
        for await (const r of MetricsLog.records(`${run.dir}/metrics.jsonl`)) {
          curvesOf([r], curves);
        }
      } catch { /* no log: no curve */ }
    }
    const name = slug(g.key);
    const loss = lossChart(curves, LABELS);
    await Deno.writeTextFile(
      `${out}/loss-${name}.svg`,
      chart(loss.series, loss.options),
    );
    const speed = speedQualityChart(
      { results: g.runs.flatMap((r) => r.result.results) },
      LABELS,
    );
    await Deno.writeTextFile(
      `${out}/speed_quality-${name}.svg`,
      chart(speed.series, speed.options),
    );
    charts.push(
      `### ${g.key}\n\n![loss, ${g.key}](loss-${name}.svg)\n![speed vs quality, ${g.key}](speed_quality-${name}.svg)`,
    );
  }
  return charts;
}

/** The merged report's Markdown around its tables and charts. */
function mergedMarkdown(
  merge: Merge,
  parts: { grouped: string; perCell: string; charts: readonly string[] },
): string {
  const ref = merge.runs[0].result;
  const swept = merge.swept.filter((k) => k !== "seed");
  const c = ref.config;
  const n = merge.runs.length;
  return `# Merged report: ${n} run${n === 1 ? "" : "s"}${
    swept.length
      ? `, swept over ${swept.map((k) => `--${flagOf(k)}`).join(", ")}`
      : ""
  } and seeds

Shared by every run (checked): ${c.preset} preset, models ${c.models}, data ${ref.data.source}
(${ref.data.trainTokens} train tokens), tokenizer \`${ref.tokenizer.id}\` (${ref.tokenizer.vocabSize} ids),
${c.steps} steps × ${c.batchSize} blocks × ${c.blockLength} tokens; every other option but the swept ones.
${enginesLine(merge.runs)}
Folders: ${merge.runs.map((r) => `\`${r.dir}\``).join(", ")}.${
    merge.unfinished.length
      ? `\nNot finished, left out: ${
        merge.unfinished.map((d) => `\`${d}\``).join(", ")
      }.`
      : ""
  }

## Grouped over seeds

BPT = test bits per token (≤: an upper bound); best = the lowest; range = lowest–highest.

${parts.grouped}

## Per cell

${parts.perCell}

## Curves

${parts.charts.join("\n\n")}
`;
}

// Which engines trained the cells (each model's spans; a cell's evaluation
// engine when it has none, older runs): the cells' bits follow them.
function enginesLine(runs: readonly MergedRun[]): string {
  const cells = new Map<string, string[]>();
  for (const run of runs) {
    const names = new Set(
      run.result.results.flatMap((m) =>
        m.training.engines?.map((s) => s.engine) ??
          [m.engine ?? run.result.engine]
      ),
    );
    for (const name of names) {
      cells.set(name, [...(cells.get(name) ?? []), run.name]);
    }
  }
  if (cells.size === 1) return `Trained on: ${[...cells.keys()][0]}.`;
  return `Trained on ${cells.size} engines (their rounding differs): ${
    [...cells].map(([e, names]) => `${e} (${names.join(", ")})`).join("; ")
  }.`;
}

/**
 * What a run measured that does not depend on the machine or the clock:
 * its results with every time and speed figure, and the engines that
 * trained and evaluated it (`training.engines`, the model's `engine` and
 * `evaluatedOn`), removed, for comparing two runs bit for bit.
 *
 * @param m One model's result.
 * @returns The result without seconds, rates and speeds.
 *
 * @example
 * ```ts
 * import { measuredFigures } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   measuredFigures({ test: { nll: 2 }, training: { seconds: 5, lastLoss: 3 } } as never),
 *   { test: { nll: 2 }, training: { lastLoss: 3 } },
 * );
 * ```
 */
export function measuredFigures(m: ModelResult): unknown {
  const strip = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(strip);
    if (typeof x !== "object" || x === null) return x;
    return Object.fromEntries(
      Object.entries(x).filter(([k]) =>
        !/seconds|PerSecond|^speed$|^tokensPer|elapsed|^engines?$|^evaluatedOn$/i
          .test(k)
      ).map(([k, v]) => [k, strip(v)]),
    );
  };
  return strip(m);
}

/** An option's value in a merge's message: a path or name as it is, but an
 * empty string as `""` and a value the run lacks as `(none)`, as
 * configDiff (config.ts) shows them (a blank would read as a typo). */
function shownValue(v: unknown): string {
  if (v === undefined) return "(none)";
  return typeof v === "string" && v !== "" ? v : JSON.stringify(v);
}
