/**
 * Reading run folders: what a folder holds and in what state (for a
 * dashboard or a sweep), and loading a trained model with its tokenizer and
 * process (for the sample and infill tools, benchmarks, exports). A model's
 * process is rebuilt from its `process.json` by its contestant.
 *
 * @module
 */
import { pathExists } from "@d3pm/core";
import type { Tokenizer } from "@d3pm/tokenizer";
import { loadModel, type Transformer } from "@d3pm/transformer";
import type { Contestant, ContestantProcess } from "./contestant.ts";
import { openTokenizer } from "./data.ts";
import { ConfigError, type ExperimentConfig } from "./options.ts";
import { contestantOf } from "./registry.ts";
import type { ExperimentResult } from "./results.ts";
import { RunFolder } from "./run_folder.ts";

/** One model of a run: which seed and contestant, and whether it finished training. */
export interface RunModel {
  /** The seed. */
  seed: number;
  /** The contestant. */
  kind: string;
  /** Its trained weights and process are saved (`model.safetensors`, `process.json`). */
  trained: boolean;
}

/** What a run folder holds and in what state. */
export interface RunState {
  /** The folder. */
  dir: string;
  /**
   * `running`: a live process holds its lock; `finished`: it has
   * `results.json`; `stopped`: neither (interrupted; `--resume` continues it).
   */
  status: "running" | "finished" | "stopped";
  /** The pid of the process writing it, while running. */
  writer?: number;
  /** The configuration it was started with. */
  config: ExperimentConfig;
  /** Everything it measured, once finished. */
  results?: ExperimentResult;
  /** Every model of its configuration, in training order by seed. */
  models: RunModel[];
}

/**
 * The state of the run in `dir`.
 *
 * @param dir The run folder.
 * @returns Its state.
 * @throws {ConfigError} When the folder holds no run (no `config.json`).
 *
 * @example
 * ```ts
 * import { readRun, resolveConfig, RunFolder } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * const release = await new RunFolder(out).start(resolveConfig({ preset: "micro", out }));
 * const state = await readRun(out);
 * assertEquals(state.status, "running");
 * assertEquals(state.models, [
 *   { seed: 0, kind: "ar", trained: false },
 *   { seed: 0, kind: "d3pm", trained: false },
 * ]);
 * release();
 * assertEquals((await readRun(out)).status, "stopped");
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function readRun(dir: string): Promise<RunState> {
  const folder = new RunFolder(dir);
  const config = await folder.savedConfig();
  if (!config) {
    throw new ConfigError(
      `Cannot read run ${dir}: no config.json there (run deno task experiment first, or pass --run DIR)`,
    );
  }
  const writer = await folder.writer();
  let results: ExperimentResult | undefined;
  try {
    results = JSON.parse(await Deno.readTextFile(folder.resultsPath));
  } catch { /* not finished */ }
  const models: RunModel[] = [];
  for (let seed = 0; seed < config.seeds; seed++) {
    for (const kind of config.models.split(",")) {
      models.push({ seed, kind, trained: await isTrained(folder, seed, kind) });
    }
  }
  return {
    dir,
    status: writer !== undefined
      ? "running"
      : results !== undefined
      ? "finished"
      : "stopped",
    ...(writer !== undefined ? { writer } : {}),
    config,
    ...(results !== undefined ? { results } : {}),
    models,
  };
}

async function isTrained(
  folder: RunFolder,
  seed: number,
  kind: string,
): Promise<boolean> {
  return await pathExists(`${folder.modelDir(seed, kind)}/model.safetensors`) &&
    await pathExists(folder.processPath(seed, kind));
}

/**
 * The runs directly inside `root` (folders holding a `config.json`), by
 * name; a folder whose `config.json` is unreadable is left out.
 *
 * @param root A folder of run folders (e.g. `runs`).
 * @returns Their states; none when `root` does not exist.
 *
 * @example
 * ```ts
 * import { listRuns } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(await listRuns(`${await Deno.makeTempDir()}/none`), []);
 * ```
 */
export async function listRuns(root: string): Promise<RunState[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(root)) {
      if (e.isDirectory) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const runs: RunState[] = [];
  for (const name of names.sort()) {
    try {
      runs.push(await readRun(`${root}/${name}`));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
    }
  }
  return runs;
}

/** A trained model of a run with everything needed to use it. */
export interface TrainedModel<P extends ContestantProcess = ContestantProcess> {
  /** The run's configuration. */
  config: ExperimentConfig;
  /** The run's tokenizer. */
  tokenizer: Tokenizer;
  /** Its contestant. */
  contestant: Contestant<P>;
  /** The model (the caller disposes it). */
  model: Transformer;
  /** The process it was trained with, rebuilt from `process.json`. */
  process: P;
}

/**
 * Load a trained model of the run in `dir`, with its tokenizer and process.
 *
 * @typeParam P The contestant's process.
 * @param dir The run folder.
 * @param which The seed (default 0) and the contestant: its kind, or the
 *   contestant itself (which types the process).
 * @returns The model and what goes with it.
 * @throws {ConfigError} When the folder holds no run, the contestant is not
 *   registered, or that model did not finish training.
 *
 * @example
 * ```ts
 * import { loadTrained } from "@d3pm/experiment";
 * import { assertRejects } from "@std/assert";
 * await assertRejects(
 *   () => loadTrained("runs/none", { model: "d3pm" }),
 *   Error,
 *   "Cannot read run runs/none: no config.json there",
 * );
 * ```
 */
export async function loadTrained<P extends ContestantProcess>(
  dir: string,
  which: { seed?: number; model: string | Contestant<P> },
): Promise<TrainedModel<P>> {
  const { config } = await readRun(dir);
  const folder = new RunFolder(dir);
  const seed = which.seed ?? 0;
  const contestant = typeof which.model === "string"
    ? contestantOf(which.model) as unknown as Contestant<P>
    : which.model;
  const kind = contestant.kind;
  if (!await isTrained(folder, seed, kind)) {
    const modelDir = folder.modelDir(seed, kind);
    throw new ConfigError(
      `No trained ${kind} model for seed ${seed} in ${dir} (expected model.safetensors and process.json in ${modelDir}; a run that did not finish this model has none)`,
    );
  }
  const spec = JSON.parse(
    await Deno.readTextFile(folder.processPath(seed, kind)),
  );
  const process = contestant.restore(spec);
  const tokenizer = await openTokenizer(config, folder);
  const model = await loadModel(folder.modelDir(seed, kind));
  return { config, tokenizer, contestant, model, process };
}

/** What a dashboard shows of a run folder, whatever state it is in. */
export interface RunOverview {
  /** The folder. */
  dir: string;
  /**
   * `running`, `finished` or `stopped` (failed or interrupted: the folder
   * cannot tell which; `--resume` continues it) as {@linkcode readRun}
   * says; `corrupt` when its files cannot be read as a run (`reason` says
   * which and why).
   */
  status: RunState["status"] | "corrupt";
  /** Why a corrupt run is corrupt (one line). */
  reason?: string;
  /** Its state, unless corrupt. */
  state?: RunState;
  /** When its metrics log (else its configuration) was last written. */
  updated?: Date;
}

/**
 * The state of the run in `dir` for a reader that must never fail on a bad
 * folder (a dashboard): a folder whose `config.json` is missing, not JSON
 * or not a configuration, or whose `results.json` exists but is not JSON
 * (a half-written or damaged file), is `corrupt` with the reason.
 *
 * @param dir The run folder.
 * @returns Its overview; never throws for what the folder holds.
 *
 * @example
 * ```ts
 * import { inspectRun } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/config.json`, '{"seeds": 1, "mod');
 * const o = await inspectRun(dir);
 * assertEquals([o.status, o.reason], ["corrupt", `${dir}/config.json is not valid JSON`]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function inspectRun(dir: string): Promise<RunOverview> {
  const folder = new RunFolder(dir);
  const updated = await modified(folder.metricsPath) ??
    await modified(folder.configPath);
  const at = updated ? { updated } : {};
  try {
    const c = await folder.savedConfig() as unknown;
    if (c !== undefined && !isRunConfig(c)) {
      return {
        dir,
        status: "corrupt",
        reason:
          `${folder.configPath} is not a run configuration (models and seeds missing or out of range)`,
        ...at,
      };
    }
  } catch (e) {
    return { dir, status: "corrupt", reason: oneLine(e), ...at };
  }
  let state: RunState;
  try {
    state = await readRun(dir);
  } catch (e) {
    return { dir, status: "corrupt", reason: oneLine(e), ...at };
  }
  if (state.results === undefined && await pathExists(folder.resultsPath)) {
    // readRun reads an unreadable results file as "not finished".
    try {
      JSON.parse(await Deno.readTextFile(folder.resultsPath));
    } catch (e) {
      return {
        dir,
        status: "corrupt",
        reason: `${folder.resultsPath} is not valid JSON (${oneLine(e)})`,
        state,
        ...at,
      };
    }
  }
  return { dir, status: state.status, state, ...at };
}

async function modified(path: string): Promise<Date | undefined> {
  try {
    return (await Deno.stat(path)).mtime ?? undefined;
  } catch {
    return undefined;
  }
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/** Whether parsed JSON has the fields {@linkcode readRun} walks, in range. */
function isRunConfig(c: unknown): boolean {
  if (typeof c !== "object" || c === null || Array.isArray(c)) return false;
  const { models, seeds } = c as Record<string, unknown>;
  return typeof models === "string" &&
    /^[a-z][a-z0-9-]*(,[a-z][a-z0-9-]*)*$/.test(models) &&
    Number.isInteger(seeds) && (seeds as number) >= 1 &&
    (seeds as number) <= 1000;
}
