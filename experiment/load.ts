/**
 * Reading run folders: what a folder holds and in what state (for a
 * dashboard or a sweep), loading a trained model with its tokenizer and
 * process (for the sample and infill tools, benchmarks, exports), and
 * finding which of a model's saved weights are which (the last step's, the
 * best validation's, the EMA). A model's process is rebuilt from its
 * `process.json` by its contestant.
 *
 * @module
 */
import { RESULTS_READ } from "./_limits.ts";
import { shellQuote } from "./_shell.ts";
import {
  BoundedReadError,
  pathExists,
  readJsonBounded,
  readTextBounded,
  SafetensorsError,
  sha256Hex,
} from "@d3pm/core";
import {
  CheckpointError,
  type CheckpointState,
  configDifferences,
  readCheckpointState,
} from "@d3pm/train";
import { BpeFileError, type Tokenizer } from "@d3pm/tokenizer";
import {
  inspectModel,
  loadModel,
  type ModelConfig,
  readWeightsFile,
  type Transformer,
} from "@d3pm/transformer";
import type { Contestant, ContestantProcess } from "./contestant.ts";
import { modelList } from "./config.ts";
import { openTokenizer } from "./data.ts";
import { ADDED_KEYS, ConfigError, type ExperimentConfig } from "./options.ts";
import { DamagedFileError, parseJsonObject } from "./damaged_file.ts";
import { ignoredKeys } from "./_ignored_keys.ts";
import { flagOf } from "@d3pm/cli";
import { contestantOf } from "./registry.ts";
import type { ExperimentResult } from "./results.ts";
import {
  heldByWords,
  processSpec,
  RunFolder,
  TRAINING_RECORD,
  WEIGHTS_SEED,
  WEIGHTS_SHA256,
} from "./run_folder.ts";
import { checkSeed, checkWeights } from "./_weights.ts";
import { checkpointTies } from "./train.ts";

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
   * `running`: a live process of this host holds its lock; `held`: a
   * process of another host holds it, which this host cannot check — it
   * may run there, or its host be gone (`heldBy` says which and the way
   * out; the sweep's word for such a cell); `finished`: it has
   * `results.json`; `imported`: it was written by `deno task import` from
   * a checkpoint of another tool (its models are trained, it has no
   * results); `stopped`: none of these (interrupted; `--resume` continues
   * it).
   */
  status: "running" | "held" | "finished" | "imported" | "stopped";
  /** The pid of the process writing it, while running. */
  writer?: number;
  /**
   * While held: `pid N on host H (boot B), which this host cannot check;
   * if no run writes there, delete DIR/.lock` ({@linkcode heldByWords}).
   */
  heldBy?: string;
  /** The configuration it was started with. */
  config: ExperimentConfig;
  /** Everything it measured, once finished. */
  results?: ExperimentResult;
  /** Every model of its configuration, in training order by seed. */
  models: RunModel[];
}

/** How `results.json` is read: a regular file of at most 64 MiB. */

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
      `Cannot read run ${dir}: no config.json there (not a run folder; deno task experiment --out ${
        shellQuote(dir)
      } makes one)`,
    );
  }
  const holder = await folder.liveHolder();
  const heldBy = holder && heldByWords(holder, folder.lockPath);
  const writer = heldBy === undefined ? holder?.pid : undefined;
  let results: ExperimentResult | undefined;
  try {
    const read = await readJsonBounded(folder.resultsPath, RESULTS_READ);
    if (typeof read === "object" && read !== null && !Array.isArray(read)) {
      results = read as ExperimentResult;
    }
  } catch { /* not finished */ }
  const differs = results && await resultsDiffer(folder, results, config);
  if (differs) {
    throw new ConfigError(
      `${folder.resultsPath} ${differs} (one was copied or edited by hand); restore it, or run the experiment there again`,
    );
  }
  const models: RunModel[] = [];
  const first = config.firstSeed ?? 0;
  for (let seed = first; seed < first + config.seeds; seed++) {
    for (const kind of config.models.split(",")) {
      models.push({ seed, kind, trained: await isTrained(folder, seed, kind) });
    }
  }
  return {
    dir,
    status: writer !== undefined
      ? "running"
      : heldBy !== undefined
      ? "held"
      : results !== undefined
      ? "finished"
      : await pathExists(folder.importPath)
      ? "imported"
      : "stopped",
    ...(writer !== undefined ? { writer } : {}),
    ...(heldBy !== undefined ? { heldBy } : {}),
    config,
    ...(results !== undefined ? { results } : {}),
    models,
  };
}

/**
 * How a run's `results.json` differs from its `config.json`, if it does:
 * `was measured with --lr 0.002 but its config.json gives 0.001`. Results
 * copied from another run, or a configuration edited since, would report
 * figures under options they were not measured with. The options a
 * `--resume` may change are not compared, nor the `--data` path when the
 * folder's `data.json` verified the files (a resume with a moved `--data`,
 * interrupted, leaves the two naming two paths of the same data).
 *
 * @param folder The run folder.
 * @param result Its results, as read.
 * @param saved Its configuration, as read.
 * @param options Whether the folder's `data.json` verified its files, for
 *   a caller that read it already (a merge reads it once, and refuses a
 *   malformed one); read here when not given, a malformed one as not (and
 *   named, when the `--data` paths are what differ).
 * @throws {ConfigError} A malformed `data.json`, when the `--data` paths
 *   differ.
 * @returns The first difference in words, or undefined when there is none
 *   (or the results record no configuration, which the readers name).
 *
 * @example Results of another learning rate
 * ```ts
 * import { resolveConfig, resultsDiffer, RunFolder } from "@d3pm/experiment";
 * import type { ExperimentResult } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const out = "runs/x";
 * const config = resolveConfig({ preset: "micro", out });
 * const result = { config: { ...config, lr: 0.002 }, results: [] } as unknown as ExperimentResult;
 * assertEquals(
 *   await resultsDiffer(new RunFolder(out), result, config),
 *   "was measured with --lr 0.002 but its config.json gives 0.005",
 * );
 * ```
 */
export async function resultsDiffer(
  folder: RunFolder,
  result: ExperimentResult,
  saved: ExperimentConfig,
  options: { verified?: boolean } = {},
): Promise<string | undefined> {
  if (typeof result.config !== "object" || result.config === null) return;
  let unreadable: unknown;
  const verified = options.verified ?? await folder.savedData().then(
    (d) => d !== undefined,
    (e) => (unreadable = e, false),
  );
  const d = configDifferences(result.config, saved, {
    defaults: ADDED_KEYS,
    ignore: ignoredKeys(verified),
  })[0];
  // The --data paths differ where a damaged data.json could not show they
  // are the same data: that file is what to name, not the two records.
  if (d?.key === "data" && unreadable !== undefined) throw unreadable;
  return d &&
    `was measured with --${flagOf(d.key)} ${
      JSON.stringify(d.saved)
    } but its config.json gives ${JSON.stringify(d.now)}`;
}

// What a run holds, for a refusal: "trained there: ar, d3pm of seed 0; ar of
// seed 1" (the --model and --seed values that work), or "none trained there
// yet".
function trainedThere(models: RunModel[]): string {
  const bySeed = new Map<number, string[]>();
  for (const m of models) {
    if (m.trained) bySeed.set(m.seed, [...bySeed.get(m.seed) ?? [], m.kind]);
  }
  if (bySeed.size === 0) return "none trained there yet";
  return `trained there: ${
    [...bySeed].map(([seed, kinds]) => `${kinds.join(", ")} of seed ${seed}`)
      .join("; ")
  }`;
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
 * const dir = await Deno.makeTempDir();
 * assertEquals(await listRuns(`${dir}/none`), []);
 * await Deno.remove(dir);
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
 * A trained model of a run, checked as {@linkcode loadTrained} checks it,
 * its weights not read: the model's configuration in place of the model.
 */
export interface TrainedModelInfo<
  P extends ContestantProcess = ContestantProcess,
> extends Omit<TrainedModel<P>, "model"> {
  /** The model's configuration (its `config.json`). */
  modelConfig: ModelConfig;
  /** The folder of its `config.json` and `model.safetensors`. */
  modelDir: string;
  /**
   * The SHA-256 of its `model.safetensors` as the run wrote it (none in a
   * folder written before it was recorded).
   */
  weightsSha256?: string;
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
 *   registered, that model did not finish training, or its
 *   `model.safetensors` is not the file its `process.json` records the
 *   SHA-256 of (another seed's or run's weights copied in; a folder written
 *   before the SHA-256 was recorded loads unchecked).
 * @throws {DamagedFileError} (a ConfigError) When a file of the model is
 *   there but does not read as the model's: its `process.json` or
 *   `config.json` not JSON or not an object, its `model.safetensors` cut
 *   short or not the model's shapes, the run's BPE file not parsing.
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
  const { modelDir, weightsSha256, ...opened } = await openTrained(
    dir,
    which,
  );
  if (weightsSha256 === undefined) {
    return { ...opened, model: await weightsRead(modelDir, loadModel) };
  }
  // Read once: hashed, checked, and loaded from the same bytes.
  const path = `${modelDir}/model.safetensors`;
  const bytes = await weightsRead(
    modelDir,
    async (at) => readWeightsFile(path, await inspectModel(at)),
  );
  checkWeights(path, weightsSha256, sha256Hex(bytes));
  return {
    ...opened,
    model: await weightsRead(
      modelDir,
      (at) => loadModel(at, { weights: bytes }),
    ),
  };
}

/**
 * A read of a model's weights in `modelDir`: a weights file that does not
 * read as the model's (cut short, its header not JSON, its tensors or
 * config not its `config.json`'s) is a {@linkcode DamagedFileError}.
 */
async function weightsRead<T>(
  modelDir: string,
  read: (modelDir: string) => Promise<T>,
): Promise<T> {
  try {
    return await read(modelDir);
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    throw new DamagedFileError(e.message, {
      path: `${modelDir}/model.safetensors`,
      detail: e.detail,
      cause: e,
    });
  }
}

/**
 * What {@linkcode loadTrained} checks of a trained model — the run, its
 * tokenizer, the process and model configuration the run's configuration
 * gives, the weights file's header against that configuration — without
 * reading the weights (see `inspectModel`): to refuse a model before it is
 * loaded. Its `weightsSha256` is the SHA-256 recorded for them, which a
 * caller that reads them checks (as `loadTrained` and `--init-from` do).
 *
 * @typeParam P The contestant's process.
 * @param dir The run folder.
 * @param which The seed (default 0) and the contestant.
 * @returns The model's configuration and what goes with it.
 * @throws {ConfigError} As {@linkcode loadTrained} does.
 *
 * @example
 * ```ts
 * import { inspectTrained } from "@d3pm/experiment";
 * import { assertRejects } from "@std/assert";
 * await assertRejects(
 *   () => inspectTrained("runs/none", { model: "ar" }),
 *   Error,
 *   "Cannot read run runs/none: no config.json there",
 * );
 * ```
 */
export async function inspectTrained<P extends ContestantProcess>(
  dir: string,
  which: { seed?: number; model: string | Contestant<P> },
): Promise<TrainedModelInfo<P>> {
  const opened = await openTrained(dir, which);
  return {
    ...opened,
    modelConfig: await weightsRead(opened.modelDir, inspectModel),
  };
}

/**
 * Everything {@linkcode loadTrained} checks and reads but the model, and
 * the SHA-256 its weights had when written (none in a folder written
 * before it was recorded).
 */
async function openTrained<P extends ContestantProcess>(
  dir: string,
  which: { seed?: number; model: string | Contestant<P> },
): Promise<Omit<TrainedModelInfo<P>, "modelConfig">> {
  const { config, models } = await readRun(dir);
  const folder = new RunFolder(dir);
  const seed = which.seed ?? config.firstSeed ?? 0;
  const contestant = typeof which.model === "string"
    ? contestantOf(which.model) as unknown as Contestant<P>
    : which.model;
  const kind = contestant.kind;
  const modelDir = folder.modelDir(seed, kind);
  configured(dir, config, seed, kind);
  if (!await isTrained(folder, seed, kind)) {
    throw new ConfigError(
      `No trained ${kind} model for seed ${seed} in ${dir} (expected model.safetensors and process.json in ${modelDir}; a run that did not finish this model has none); ${
        trainedThere(models)
      }`,
    );
  }
  const { tokenizer, specials } = await runTokenizer(dir, config, folder);
  // What the run's configuration says this model and its process are: the
  // saved ones must agree, and are checked before anything is allocated.
  const expected = {
    process: contestant.process(config, {
      tokenizer,
      specials,
    }).toJSON() as Record<string, unknown>,
    model: contestant.modelConfig(config, tokenizer.vocabSize),
  };
  // An imported model's process adds what its import found (the outputs
  // its softmax runs over, see hf/import.ts); one imported before that
  // was recorded (an import record before IMPORT_VERSION 2) whose import
  // added rows and whose process lacks them is refused.
  const imported = await folder.importRecord();
  const saved = await agreeing(
    folder.processPath(seed, kind),
    "process description",
    expected.process,
    [...RECORD_KEYS, ...imported ? IMPORT_KEYS : []],
  );
  const { [WEIGHTS_SHA256]: weightsSha256, [WEIGHTS_SEED]: weightsSeed } =
    saved;
  const spec = processSpec(saved);
  sha256Of(folder.processPath(seed, kind), weightsSha256);
  checkSeed(folder.processPath(seed, kind), weightsSeed, seed);
  if (
    imported && imported.version < 2 && spec.outputs === undefined &&
    Object.keys(imported.added ?? {}).length > 0
  ) {
    throw new ConfigError(staleImport(dir, imported.from));
  }
  await agreeing(
    `${modelDir}/config.json`,
    "model configuration",
    expected.model as unknown as Record<string, unknown>,
  );
  const process = contestant.restore(spec);
  return {
    config,
    tokenizer,
    contestant,
    process,
    modelDir,
    ...(weightsSha256 !== undefined
      ? { weightsSha256: weightsSha256 as string }
      : {}),
  };
}

/**
 * The run's tokenizer, with the special tokens every model needs; its BPE
 * file that does not parse is a {@linkcode DamagedFileError}.
 */
async function runTokenizer(
  dir: string,
  config: ExperimentConfig,
  folder: RunFolder,
): Promise<
  {
    tokenizer: Tokenizer;
    specials: { bos: number; eos: number; pad: number; mask: number };
  }
> {
  const tokenizer = await openTokenizer(config, folder).catch((e) => {
    if (!(e instanceof BpeFileError)) throw e;
    throw new DamagedFileError(e.message, {
      path: e.path,
      detail: e.detail,
      cause: e,
    });
  });
  const { bos, eos, pad, mask } = tokenizer.special;
  if (
    bos === undefined || eos === undefined || pad === undefined ||
    mask === undefined
  ) {
    throw new ConfigError(
      `Tokenizer ${tokenizer.id} of ${dir} lacks bos/eos/pad/mask special tokens`,
    );
  }
  return { tokenizer, specials: { bos, eos, pad, mask } };
}

// The keys of a process.json that are the run folder's records, not the
// process's (processSpec takes them out).
const RECORD_KEYS = [WEIGHTS_SHA256, WEIGHTS_SEED, TRAINING_RECORD];

// Only what the run's configuration trains: a seed-N/KIND folder of
// another seed or contestant (copied in from another run) is not this
// run's model, whatever its files say.
function configured(
  dir: string,
  config: ExperimentConfig,
  seed: number,
  kind: string,
): void {
  const first = config.firstSeed ?? 0;
  const trains = modelList(config);
  if (
    !trains.includes(kind) || seed < first || seed >= first + config.seeds
  ) {
    throw new ConfigError(
      `${dir} has no ${kind} model for seed ${seed}: its config.json trains ${
        trains.join(", ")
      } for seed${config.seeds > 1 ? "s" : ""} ${
        config.seeds > 1 ? `${first}..${first + config.seeds - 1}` : first
      }; choose among those (a folder seed-${seed}/${kind} put there is not the run's)`,
    );
  }
}

// A recorded SHA-256 (or none) must be 64 hex digits.
function sha256Of(path: string, value: unknown): void {
  if (value === undefined || /^[0-9a-f]{64}$/.test(String(value))) return;
  throw new ConfigError(
    `${path} does not belong to this run: its ${WEIGHTS_SHA256} is not a SHA-256 (64 hex digits); restore it`,
  );
}

// The keys of an imported causal model's process its import sets (and the
// run's configuration does not give): its outputs, aliases and suppressed ids.
const IMPORT_KEYS = ["suppress", "outputs", "alias"];

// Why an imported run folder written before its added special rows were
// kept out of the softmax is refused: those rows (copies of <|endoftext|>
// for a GPT-2) drew probability the checkpoint never gave, so its NLL and
// the gen PPL it judged were not the checkpoint's.
function staleImport(dir: string, from: string): string {
  return `${dir} was imported before an imported model's added special rows were kept out of its softmax (those rows drew probability the checkpoint never gave, so its NLL and gen PPL were not the checkpoint's): import it again with deno task import --from ${from} --to ${dir} --force`;
}

/**
 * A saved JSON object of a model (its process or its model configuration),
 * read within 1 MiB, whose every key agrees with what the run's
 * configuration gives (a key the saved file lacks was added since).
 */
async function agreeing(
  path: string,
  what: string,
  expected: Record<string, unknown>,
  own: readonly string[] = [],
): Promise<Record<string, unknown>> {
  const record = await savedObject(path, what);
  for (const [key, value] of Object.entries(record)) {
    if (own.includes(key)) continue;
    if (JSON.stringify(value) !== JSON.stringify(expected[key])) {
      throw new ConfigError(
        `${path} does not belong to this run: its ${key} is ${
          JSON.stringify(value)?.slice(0, 80)
        } where the run's configuration gives ${
          JSON.stringify(expected[key])?.slice(0, 80) ?? "none"
        }`,
      );
    }
  }
  return record;
}

/** A saved JSON object of a model, read within 1 MiB. */
async function savedObject(
  path: string,
  what: string,
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readTextBounded(path, { limit: 1 << 20, what });
  } catch (e) {
    if (e instanceof BoundedReadError) throw new ConfigError(e.message);
    throw new ConfigError(`Cannot read ${path}: ${(e as Error).message}`);
  }
  // Parsed here, not by readJsonBounded: a file that is there but does not
  // parse is damaged, a file too large or not a regular file is not.
  return parseJsonObject(text, path, what);
}

/** Which of a model's saved weights: the last step's, the best validation's, or the EMA. */
export type WeightsChoice = "last" | "best" | "ema";

/** Where a model's chosen weights are, and what they are. */
export interface WeightsSource {
  /** The safetensors file that holds them. */
  path: string;
  /** The prefix of their tensor names in that file (`""`, or `model/` and `ema/` in a checkpoint). */
  prefix: string;
  /** What they are, for a model card: e.g. `the EMA (decay 0.9) of the last step's weights`. */
  description: string;
}

/**
 * Where a trained model's weights of one kind are. Without `weights`: the
 * weights the run evaluated (`model.safetensors`: with `--keep best` the best
 * validation's, else the last step's — their EMA when `--ema-decay` is
 * above 0). `last`: the last step's own weights; `best`: the best
 * validation's (a run with `--keep best`); `ema`: the EMA of the last step
 * (a run with `--ema-decay` above 0). Weights the run evaluated come from
 * `model.safetensors` (checked against its `process.json`'s SHA-256);
 * others from the final training checkpoint (`model/` and `ema/` tensors;
 * checked by the ties it carries and its step).
 *
 * @param dir The run folder.
 * @param which The seed (default 0), the contestant, and the weights.
 * @returns The file, the names' prefix, and a description.
 * @throws {ConfigError} When the model did not finish training, the run
 *   kept no such weights (naming the option that keeps them; a `best/`
 *   folder in a `--keep last` run, which writes none, is not its), `weights`
 *   is none of the three, the weights the run evaluated are not the file
 *   whose SHA-256 its `process.json` records, or the checkpoint the last
 *   step's or EMA weights are read from is not this model's final one (its
 *   ties — training fingerprint, contestant, seed, data — or its step
 *   differ).
 *
 * @example
 * ```ts
 * import { locateWeights, resolveConfig, RunFolder } from "@d3pm/experiment";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * const folder = new RunFolder(out);
 * (await folder.start(resolveConfig({ preset: "micro", out, emaDecay: 0 })))();
 * await Deno.mkdir(folder.modelDir(0, "ar"), { recursive: true });
 * await Deno.writeTextFile(`${folder.modelDir(0, "ar")}/model.safetensors`, "");
 * await Deno.writeTextFile(folder.processPath(0, "ar"), "{}");
 * const last = await locateWeights(out, { model: "ar", weights: "last" });
 * assertEquals(last.path, `${folder.modelDir(0, "ar")}/model.safetensors`);
 * await assertRejects(() => locateWeights(out, { model: "ar", weights: "ema" }), Error, "kept no EMA");
 * // A caller's unknown choice is refused in one line, not a TypeError later.
 * await assertRejects(() => locateWeights(out, { model: "ar", weights: "final" as "last" }), Error, "Unknown weights choice \"final\": expected last, best or ema");
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function locateWeights(
  dir: string,
  which: { seed?: number; model: string; weights?: WeightsChoice },
): Promise<WeightsSource> {
  const { config, models } = await readRun(dir);
  const folder = new RunFolder(dir);
  const seed = which.seed ?? config.firstSeed ?? 0;
  const kind = which.model;
  if (!await isTrained(folder, seed, kind)) {
    throw new ConfigError(
      `No trained ${kind} model for seed ${seed} in ${dir} (expected model.safetensors and process.json in ${
        folder.modelDir(seed, kind)
      }); ${trainedThere(models)}`,
    );
  }
  const source = await chosenWeights(
    { dir, config, folder, seed, kind },
    which.weights,
  );
  // The weights the run evaluated: those its process.json records; the
  // last step's or EMA: its final checkpoint, by the ties it carries.
  if (source.path === folder.weightsPath(seed, kind)) {
    await folder.verifyWeights(seed, kind);
  } else if (source.path === folder.checkpointPath(seed, kind)) {
    await checkFinalCheckpoint({ dir, config, folder, seed, kind });
  }
  return source;
}

/**
 * The checkpoint {@linkcode locateWeights} reads the last step's or the EMA
 * weights from must be this model's final one: the ties `train()` stores
 * in it and compares on resume ({@linkcode checkpointTies}: the training
 * fingerprint, contestant, seed, and the data as `data.json` records them)
 * must be this run's, and its step the run's last. Another seed's, model's
 * or run's checkpoint copied in, or an earlier one of this model, is
 * refused; only its header is read. A checkpoint written before a tie
 * existed reads as matching it, as on resume.
 */
async function checkFinalCheckpoint(at: TrainedPlace): Promise<void> {
  const { dir, config, folder, seed, kind } = at;
  const path = folder.checkpointPath(seed, kind);
  const fix =
    "restore the checkpoint this run wrote there, or export the weights it evaluated (no --weights)";
  const refuse = (why: string) =>
    new ConfigError(
      `${path} is not the final checkpoint of the ${kind} model of seed ${seed} in ${dir}: ${why}; ${fix}`,
    );
  let state: CheckpointState;
  try {
    state = await readCheckpointState(path);
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw e;
    throw refuse(`it cannot be read as one (${e.detail})`);
  }
  const record = await folder.savedData();
  const ties = checkpointTies(
    config,
    kind,
    seed,
    record ??
      {
        sha256: { train: "", valid: "", test: "" },
        tokenizer: { id: "", vocabSize: 0 },
      },
  );
  const [d] = configDifferences(state.config, ties.config, {
    defaults: ties.configDefaults,
    ignore: [
      ...ties.configIgnore,
      // Tied to the --init-from source on resume; its weights are not read here.
      "initFromWeightsSha256",
      // A run made before data.json: nothing to compare them with.
      ...record ? [] : ["dataSha256", "tokenizerBuilt"],
    ],
  });
  if (d) {
    throw refuse(
      `its ${d.key} is ${
        JSON.stringify(d.saved)?.slice(0, 80)
      } where this run gives ${
        JSON.stringify(d.now)?.slice(0, 80)
      } (copied from another seed, model or run)`,
    );
  }
  if (state.step !== config.steps) {
    throw refuse(
      `it is at step ${
        JSON.stringify(state.step)?.slice(0, 20)
      }, not the run's last (${config.steps}): an earlier checkpoint put back`,
    );
  }
}

/** A trained model of a run folder: where {@linkcode locateWeights} looks. */
interface TrainedPlace {
  dir: string;
  config: ExperimentConfig;
  folder: RunFolder;
  seed: number;
  kind: string;
}

/** The weights `choice` names (see {@linkcode locateWeights}). */
async function chosenWeights(
  at: TrainedPlace,
  choice: WeightsChoice | undefined,
): Promise<WeightsSource> {
  const { dir, config, folder, seed, kind } = at;
  const evaluated = `${folder.modelDir(seed, kind)}/model.safetensors`;
  const imported = await folder.importRecord();
  if (imported !== undefined) {
    return importedWeights(at, choice, imported, evaluated);
  }
  const ema = config.emaDecay > 0;
  const emaOf = (what: string) =>
    `the EMA (decay ${config.emaDecay}) of ${what}`;
  const fromCheckpoint = async (prefix: string, description: string) => {
    const path = folder.checkpointPath(seed, kind);
    if (!await pathExists(path)) {
      throw new ConfigError(
        `The ${kind} model of seed ${seed} in ${dir} has no training checkpoint to read ${description} from (${path} is missing)`,
      );
    }
    return { path, prefix, description };
  };
  switch (choice) {
    case undefined:
      return {
        path: evaluated,
        prefix: "",
        description: config.keep === "best"
          ? "the best validation's weights"
          : ema
          ? emaOf("the last step's weights")
          : "the last step's weights",
      };
    case "best": {
      if (config.keep === "best") {
        return {
          path: evaluated,
          prefix: "",
          description: "the best validation's weights",
        };
      }
      // A --keep last run writes no best/ (the validator keeps the best
      // weights for --keep best only): one there is not this run's.
      const best = `${folder.modelDir(seed, kind)}/best/model.safetensors`;
      const there = await pathExists(best)
        ? ` (${best} is not this run's: a --keep last run writes none)`
        : "";
      throw new ConfigError(
        `The run in ${dir} kept no best weights (it evaluated the last step's)${there}: train with --keep best and --valid-every N to keep the best validation's`,
      );
    }
    case "ema":
      if (!ema) {
        throw new ConfigError(
          `The run in ${dir} kept no EMA (--ema-decay 0): train with --ema-decay above 0 to keep one`,
        );
      }
      return config.keep === "best"
        ? await fromCheckpoint("ema/", emaOf("the last step's weights"))
        : {
          path: evaluated,
          prefix: "",
          description: emaOf("the last step's weights"),
        };
    case "last":
      return !ema && config.keep !== "best"
        ? {
          path: evaluated,
          prefix: "",
          description: "the last step's weights",
        }
        : await fromCheckpoint("model/", "the last step's weights");
    default:
      throw new ConfigError(
        `Unknown weights choice ${
          JSON.stringify(String(choice)).slice(0, 40)
        }: expected last, best or ema (or none: the weights the run evaluated)`,
      );
  }
}

// An imported run (import.json) holds one set of weights, those imported:
// none of a run's EMA, best validation or checkpoint. Its config.json's
// keep and emaDecay are those of the run an export came from (or a
// preset's), not of these weights.
function importedWeights(
  at: TrainedPlace,
  choice: WeightsChoice | undefined,
  imported: { from: string; architecture: string; weights?: string },
  evaluated: string,
): WeightsSource {
  const source =
    `the weights imported from ${imported.from} (${imported.architecture}${
      imported.weights ? `; its export: ${imported.weights}` : ""
    })`;
  if (choice === undefined || choice === "last") {
    return { path: evaluated, prefix: "", description: source };
  }
  if (choice === "best" || choice === "ema") {
    throw new ConfigError(
      `The run in ${at.dir} was imported (import.json): it holds ${source} only, no ${
        choice === "best" ? "best validation's weights" : "EMA"
      }; leave out --weights (or pass --weights last) to take them`,
    );
  }
  throw new ConfigError(
    `Unknown weights choice ${
      JSON.stringify(String(choice)).slice(0, 40)
    }: expected last, best or ema (or none: the weights the run evaluated)`,
  );
}

/** What a dashboard shows of a run folder, whatever state it is in. */
export interface RunOverview {
  /** The folder. */
  dir: string;
  /**
   * `running`, `held` (by a process of another host: `reason` says which,
   * with the way out), `finished` or `stopped` (failed or interrupted: the
   * folder cannot tell which; `--resume` continues it) as
   * {@linkcode readRun} says; `corrupt` when its files cannot be read as a
   * run (`reason` says which and why).
   */
  status: RunState["status"] | "corrupt";
  /** Why a corrupt run is corrupt, or what holds a held one (one line). */
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
 * import { assert, assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/config.json`, '{"seeds": 1, "mod');
 * const o = await inspectRun(dir);
 * assertEquals(o.status, "corrupt");
 * assert(o.reason?.startsWith(`${dir}/config.json is not valid JSON`));
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
    // readRun reads an unreadable results file as "not finished"; read
    // again, as bounded (a FIFO or /dev/zero was read for ever here), to
    // say why.
    try {
      await readJsonBounded(folder.resultsPath, RESULTS_READ);
    } catch (e) {
      return {
        dir,
        status: "corrupt",
        reason: e instanceof BoundedReadError
          ? oneLine(e)
          : `${folder.resultsPath} is not valid JSON (${oneLine(e)})`,
        state,
        ...at,
      };
    }
  }
  return {
    dir,
    status: state.status,
    ...(state.heldBy !== undefined
      ? { reason: `held by ${state.heldBy}` }
      : {}),
    state,
    ...at,
  };
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
