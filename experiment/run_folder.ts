/**
 * The run folder: every path of a run, and the rules that keep it honest —
 * one process at a time (a lock naming the process), a fresh run never mixes
 * with an earlier one, a resumed run only continues the configuration and
 * the data it started with, `--force` only ever moves a stopped run aside,
 * and nothing is written before the run is known to be valid.
 * `docs/run-folder.md` states the rules.
 *
 * ```text
 * <out>/.lock                the process writing the run (pid, start time, command, pid namespace)
 * <out>/config.json          the resolved configuration (written atomically, once the run starts)
 * <out>/data.json            what it trained on: the splits' SHA-256, the tokenizer and its real size
 * <out>/metrics.jsonl        per-step training metrics (append-only)
 * <out>/tokenizer.json       the BPE the run trained (bpe tokenizer only)
 * <out>/seed-<s>/<kind>/     (ar, d3pm, mlm, …) model.safetensors + config.json, process.json, checkpoint.safetensors
 * <out>/samples.txt, results.json, report.md, loss.svg, speed_quality.svg
 * <out>/import.json          what an imported run was read from (`deno task import`)
 * ```
 *
 * @module
 */
import {
  BoundedReadError,
  createSha256,
  fileAbove,
  fromFileUrl,
  isProcessAlive,
  kindOf,
  markHost,
  readTextBounded,
  removeStaleTemps,
  thisProcess,
  writeFileAtomic,
} from "@d3pm/core";
import { convertOption, flagOf, UsageError } from "@d3pm/cli";
import { configDiff, modelList, unreadOption } from "./config.ts";
import { dataKind } from "./_same_data.ts";
import { hooks } from "./_run_folder_hooks.ts";
import { checkSeed, checkWeights } from "./_weights.ts";
import { parseJsonFile } from "./damaged_file.ts";
import { PRESET_MOVES, PRESETS } from "./presets.ts";
import {
  ADDED_KEYS,
  ConfigError,
  type ExperimentConfig,
  type OptionKey,
  OPTIONS,
  VERIFIED_KEYS,
} from "./options.ts";

/**
 * The key of a model's `process.json` that records the SHA-256 of its
 * `model.safetensors` as written (not part of the process: the loader
 * takes it out). A `process.json` written before it lacks it; its weights
 * load unchecked.
 *
 * @example
 * ```ts
 * import { WEIGHTS_SHA256 } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(WEIGHTS_SHA256, "weightsSha256");
 * ```
 */
export const WEIGHTS_SHA256 = "weightsSha256";

/**
 * The key of a model's `process.json` that records the seed whose weights
 * its folder holds (a process does not name its seed, so a whole model
 * folder copied from another seed would agree with every other check).
 * Written and read as {@linkcode WEIGHTS_SHA256} is.
 *
 * @example
 * ```ts
 * import { WEIGHTS_SEED } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(WEIGHTS_SEED, "weightsSeed");
 * ```
 */
export const WEIGHTS_SEED = "weightsSeed";

/**
 * The key of a model's `process.json` that records what its training gave
 * (`seconds`, `lastLoss`, `lastLossSteps`, `engines`, `initFrom`: the figures a checkpoint
 * keeps, but for the validations, which are in the log), so that a trained
 * model is whole without its checkpoint: a `--resume` whose checkpoint was
 * deleted evaluates it as it is, not trained again. Written at training
 * (`RunFolder.writeProcess`), read as {@linkcode WEIGHTS_SHA256} is; a
 * `process.json` written before it, or by an import, lacks it.
 *
 * @example
 * ```ts
 * import { TRAINING_RECORD } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(TRAINING_RECORD, "training");
 * ```
 */
export const TRAINING_RECORD = "training";

/**
 * The process description a saved `process.json` holds: the file without
 * its weights record ({@linkcode WEIGHTS_SHA256}, {@linkcode WEIGHTS_SEED},
 * {@linkcode TRAINING_RECORD}),
 * which no process's `restore` accepts. For readers of the file other than
 * the loader (which checks the record): the dashboard's playground.
 *
 * @param saved The parsed `process.json`.
 * @returns The same object without the two keys (a copy).
 *
 * @example
 * ```ts
 * import { processSpec } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const saved = { kind: "autoregressive", start: 256, weightsSha256: "ab", weightsSeed: 0, training: {} };
 * assertEquals(processSpec(saved), { kind: "autoregressive", start: 256 });
 * ```
 */
export function processSpec(
  saved: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const {
    [WEIGHTS_SHA256]: _sha,
    [WEIGHTS_SEED]: _seed,
    [TRAINING_RECORD]: _training,
    ...spec
  } = saved;
  return spec;
}

// The SHA-256 (hex) of a regular file, read in 1 MiB chunks (a FIFO or
// device, which would be read for ever, is refused before it is opened).
async function fileSha256(path: string): Promise<string> {
  const info = await Deno.stat(path);
  if (!info.isFile) {
    throw new ConfigError(
      `${path}: it is ${kindOf(info)} (expected a regular file); restore it`,
    );
  }
  const h = createSha256();
  using file = await Deno.open(path);
  const buf = new Uint8Array(1 << 20);
  for (let n; (n = await file.read(buf)) !== null;) {
    h.update(buf.subarray(0, n));
  }
  return h.hex();
}

/** The largest `config.json`, `data.json` or `.lock` a reader accepts. */
const SMALL_FILE = 1 << 20;

/**
 * The exit code of a script refused because its run folder is in use by
 * another live run (`EX_TEMPFAIL`): nothing failed, try again once that
 * run ends. A sweep's cell that exits with it is left to that run, busy.
 *
 * @example A folder another run holds: the refusal carries this code
 * ```ts
 * import { FOLDER_BUSY_EXIT, RunFolder } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const folder = new RunFolder(await Deno.makeTempDir());
 * const release = await folder.lock();
 * const refused = await folder.lock().catch((e) => e);
 * assertEquals(refused.exitCode, FOLDER_BUSY_EXIT);
 * release();
 * await Deno.remove(folder.dir, { recursive: true });
 * ```
 */
export const FOLDER_BUSY_EXIT = 75;

/**
 * The version of `import.json` that `deno task import` writes, as its
 * `importVersion`. A record without one (version 1) was written before an
 * imported causal model's added special rows were kept out of its softmax
 * (its process's `outputs`/`alias`): loading such a run whose process lacks
 * them is refused with the command that imports it again. Raise it when a
 * change to the importer makes earlier imports wrong.
 *
 * @example
 * ```ts
 * import { IMPORT_VERSION } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(IMPORT_VERSION, 2);
 * ```
 */
export const IMPORT_VERSION = 2;

/**
 * What a run trained on, written to `data.json` when it starts: a resume
 * on other data is refused, and the tokenizer's real size is on record.
 */
export interface DataRecord {
  /** SHA-256 of each split's file as stored. */
  sha256: { train: string; valid: string; test: string };
  /** The tokenizer as built: its id and its real number of ids. */
  tokenizer: { id: string; vocabSize: number };
  /**
   * `text` when the run read a folder of plain-text splits (cut into
   * documents otherwise than WikiText); absent for WikiText.
   */
  format?: "text";
  /** With `format`: each split's file name (e.g. `validation.txt.gz`). */
  files?: { train: string; valid: string; test: string };
  /**
   * With `format`: how the text was read (`TEXT_READING` of `@d3pm/data`; absent
   * in a record made before it was kept: reading 1, a CR kept in its line).
   */
  reading?: number;
}

// Why a run's plain text, read by an earlier version of the reading, cannot
// be taken as read now (the files are the same: restoring them would not
// help); none when both read WikiText, or plain text the same way.
function readingChanged(then: DataRecord, now: DataRecord): string | undefined {
  if (then.format !== "text" || now.format !== "text") return undefined;
  if (dataKind(then) === dataKind(now)) return undefined;
  const read = (r: DataRecord) =>
    (r.reading ?? 1) === 1
      ? "reading 1, a CR kept inside its line"
      : `reading ${r.reading}, CRLF and a lone CR line breaks`;
  return `it read its plain text by ${
    read(then)
  }, and this version reads it by ${
    read(now)
  } (data.json's "reading"): where a file holds a CR the ids differ, so its figures would not be this data's`;
}

// The splits whose SHA-256 differ between a data record then and now, as
// "valid and test" and "valid SHA-256 ab… then, cd… now; …"; none when
// every split agrees.
function changedSplits(
  then: DataRecord,
  now: DataRecord,
):
  | { which: ("train" | "valid" | "test")[]; splits: string; hashes: string }
  | undefined {
  // The same bytes read as the other format are cut into other ids (another
  // reading of plain text: readingChanged, before this).
  const kind = (r: DataRecord) =>
    r.format === "text" ? "plain text" : "WikiText";
  if (kind(then) !== kind(now)) {
    return {
      which: ["train", "valid", "test"],
      splits: "train, valid and test",
      hashes: `read as ${kind(then)} then, as ${kind(now)} now`,
    };
  }
  const changed = (["train", "valid", "test"] as const).filter((s) =>
    then.sha256[s] !== now.sha256[s]
  );
  if (changed.length === 0) return undefined;
  const short = (h: string) => `${h.slice(0, 12)}…`;
  return {
    which: changed,
    splits: changed.join(" and "),
    hashes: changed.map((s) =>
      `${s} SHA-256 ${short(then.sha256[s])} then, ${short(now.sha256[s])} now`
    ).join("; "),
  };
}

/** The holder of a lock, as written in `.lock`. */
export interface LockHolder {
  /** Its pid. */
  pid: number;
  /** Its start time (`/proc/<pid>/stat` field 22, clock ticks since boot), where known. */
  start?: string;
  /** Its command line, where known. */
  command?: string;
  /**
   * Its pid namespace (`pid:[4026531836]`), where known; absent: this
   * process's. A holder of another namespace is taken to be alive.
   */
  ns?: string;
  /**
   * Its host's boot (`/proc/sys/kernel/random/boot_id`), where known.
   * With `hostname` it places the holder ({@linkcode markHost}): another
   * host name is another host (a cluster node sharing the folder), taken
   * to be alive; this host's name and another boot is this host before a
   * reboot, gone; another boot where a name is unknown cannot be placed,
   * taken to be alive. Absent (an older lock): this host's.
   */
  host?: string;
  /** Its host's name (`Deno.hostname()`), where known. */
  hostname?: string;
  /**
   * When its process started (ms since the epoch), where known: this
   * host's name and another boot since this host booted is another machine
   * of the same name, taken to be alive ({@linkcode markHost}).
   */
  since?: number;
}

/** A taken lock: start writing the run, or let it go. */
export interface RunLock {
  /**
   * Start writing under the lock: check the data against the run's record
   * on resume, move an earlier stopped run aside (`force`), remove
   * temporary files a killed process left, write `config.json` and
   * `data.json`.
   *
   * @param data What the run trains on (checked on resume, recorded).
   * @returns Once `config.json` is written.
   * @throws {ConfigError} When a resume's data differ from the record.
   */
  begin(data?: DataRecord): Promise<void>;
  /**
   * Release the lock; a folder this lock created and nothing was written
   * to is removed again.
   */
  release(): void;
}

/**
 * The paths of one run and its rules.
 *
 * @example A folder holds one run: a second fresh run is refused, a resume is not
 * ```ts
 * import { ConfigError, resolveConfig, RunFolder } from "@d3pm/experiment";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const tmp = await Deno.makeTempDir();
 * const out = `${tmp}/run`;
 * const folder = new RunFolder(`${out}/`); // a trailing slash is the same folder
 * assertEquals(folder.checkpointPath(0, "d3pm"), `${out}/seed-0/d3pm/checkpoint.safetensors`);
 * const config = resolveConfig({ preset: "micro", out });
 * await folder.check(config); // an empty folder: fine
 * const release = await folder.start(config); // takes the lock, writes config.json
 * assertEquals(await folder.savedConfig(), config);
 * await assertRejects(() => folder.lock(), ConfigError, "in use by another run");
 * assertEquals(await folder.writer(), Deno.pid);
 * release();
 * assertEquals(await folder.writer(), undefined);
 * await assertRejects(() => folder.check(config), ConfigError, "already holds a run");
 * await folder.check({ ...config, resume: true }); // the same configuration may continue
 * await assertRejects(
 *   () => folder.check({ ...config, resume: true, steps: 5 }),
 *   ConfigError,
 *   "--steps is 5 but the run used 800",
 * );
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export class RunFolder {
  /** The folder, without trailing slashes. */
  readonly dir: string;

  /**
   * A run folder at `dir` (nothing is touched until a method is called).
   *
   * @param dir The folder; trailing slashes are dropped (`runs/a/` is `runs/a`).
   * @throws {ConfigError} For an empty path.
   */
  constructor(dir: string) {
    if (dir === "") {
      throw new ConfigError(
        "A run folder needs a path: got an empty one (expected --out DIR)",
      );
    }
    this.dir = dir.length > 1 ? dir.replace(/\/+$/, "") || "/" : dir;
  }

  /** The resolved configuration. */
  get configPath(): string {
    return `${this.dir}/config.json`;
  }
  /** What the run trained on (see {@linkcode DataRecord}). */
  get dataPath(): string {
    return `${this.dir}/data.json`;
  }
  /** Per-step metrics. */
  get metricsPath(): string {
    return `${this.dir}/metrics.jsonl`;
  }
  /** The run's trained BPE. */
  get tokenizerPath(): string {
    return `${this.dir}/tokenizer.json`;
  }
  /** Samples of every seed. */
  get samplesPath(): string {
    return `${this.dir}/samples.txt`;
  }
  /** Everything measured, as JSON. */
  get resultsPath(): string {
    return `${this.dir}/results.json`;
  }
  /** What `deno task import` read to write this folder (imported runs only). */
  get importPath(): string {
    return `${this.dir}/import.json`;
  }
  /** The lock of the process writing the run. */
  get lockPath(): string {
    return `${this.dir}/.lock`;
  }
  /**
   * A model's folder.
   *
   * @param seed The seed.
   * @param kind The contestant (`ar`, `d3pm`, `mlm`, …).
   * @returns Its path.
   */
  modelDir(seed: number, kind: string): string {
    return `${this.dir}/seed-${seed}/${kind}`;
  }
  /**
   * A model's training checkpoint.
   *
   * @param seed The seed.
   * @param kind The contestant (`ar`, `d3pm`, `mlm`, …).
   * @returns Its path.
   */
  checkpointPath(seed: number, kind: string): string {
    return `${this.modelDir(seed, kind)}/checkpoint.safetensors`;
  }
  /**
   * A model's process description (`process.toJSON()`).
   *
   * @param seed The seed.
   * @param kind The contestant (`ar`, `d3pm`, `mlm`, …).
   * @returns Its path.
   */
  processPath(seed: number, kind: string): string {
    return `${this.modelDir(seed, kind)}/process.json`;
  }
  /**
   * A model's weights file (`model.safetensors`).
   *
   * @param seed The seed.
   * @param kind The contestant (`ar`, `d3pm`, `mlm`, …).
   * @returns Its path.
   */
  weightsPath(seed: number, kind: string): string {
    return `${this.modelDir(seed, kind)}/model.safetensors`;
  }

  /**
   * The SHA-256 of a model's `model.safetensors` as it is now.
   *
   * @param seed The seed.
   * @param kind The contestant.
   * @returns 64 hex digits.
   */
  async weightsSha256(seed: number, kind: string): Promise<string> {
    return await fileSha256(this.weightsPath(seed, kind));
  }

  /**
   * Check a model's `model.safetensors` against the SHA-256 its
   * `process.json` records (see {@linkcode RunFolder.writeProcess}); a
   * `process.json` without one (written before it was recorded), or none at
   * all, checks nothing; one that cannot be read or is no JSON object is
   * refused, naming it. Its recorded seed must be `seed`.
   *
   * @param seed The seed.
   * @param kind The contestant.
   * @returns When the file is the one recorded.
   * @throws {ConfigError} When it is not (naming both hashes and what to
   *   do), or `process.json` cannot be read.
   */
  async verifyWeights(seed: number, kind: string): Promise<void> {
    const path = this.processPath(seed, kind);
    // Only a missing file is no record: one that cannot be read or parsed
    // (torn, a FIFO) passed the check, whatever weights were beside it.
    const refuse = (why: string) =>
      new ConfigError(
        `${
          why.split("\n")[0]
        }; the weights beside it cannot be checked against it: restore it, or --resume the run to write it again`,
      );
    const saved = await this.#readJson(path, "process description").catch(
      (e) => {
        throw refuse((e as Error).message);
      },
    ) as Record<string, unknown> | undefined;
    if (
      saved !== undefined &&
      (typeof saved !== "object" || saved === null || Array.isArray(saved))
    ) {
      throw refuse(
        `${path} is not a process description (expected a JSON object)`,
      );
    }
    checkSeed(path, saved?.[WEIGHTS_SEED], seed);
    const recorded = saved?.[WEIGHTS_SHA256];
    if (typeof recorded !== "string") return;
    checkWeights(
      this.weightsPath(seed, kind),
      recorded,
      await this.weightsSha256(seed, kind),
    );
  }

  /**
   * Write a model's `process.json` — the last of its files: a model is
   * trained once it has one — with the SHA-256 of the `model.safetensors`
   * now beside it as `weightsSha256` (see {@linkcode WEIGHTS_SHA256}) and
   * the seed as `weightsSeed`,
   * which the loader (`loadTrained`, `inspectTrained`, `locateWeights`)
   * checks. Every writer of a model folder (training, a resume, an import)
   * writes its process so.
   *
   * @param seed The seed.
   * @param kind The contestant.
   * @param process Its process description (`process.toJSON()`), and
   *   what its training gave (see {@linkcode TRAINING_RECORD}; training
   *   writes it, an import has none).
   * @returns When the file is in place.
   */
  async writeProcess(
    seed: number,
    kind: string,
    process: object,
    options: { training?: object } = {},
  ): Promise<void> {
    const sha = await this.weightsSha256(seed, kind);
    await writeFileAtomic(
      this.processPath(seed, kind),
      JSON.stringify(
        {
          ...process,
          [WEIGHTS_SHA256]: sha,
          [WEIGHTS_SEED]: seed,
          ...options.training ? { [TRAINING_RECORD]: options.training } : {},
        },
        null,
        2,
      ) + "\n",
    );
  }

  /**
   * The training checkpoints on disk now (read synchronously, for a signal
   * handler that must say what can be resumed).
   *
   * @returns Their paths, by seed and contestant; none when the folder
   *   holds none (or does not exist).
   */
  checkpointFiles(): string[] {
    const found: string[] = [];
    const list = (dir: string) => {
      try {
        return [...Deno.readDirSync(dir)].filter((e) => e.isDirectory)
          .map((e) => e.name).sort();
      } catch {
        return [];
      }
    };
    for (const seed of list(this.dir).filter((n) => /^seed-\d+$/.test(n))) {
      for (const kind of list(`${this.dir}/${seed}`)) {
        const path = `${this.dir}/${seed}/${kind}/checkpoint.safetensors`;
        try {
          if (Deno.statSync(path).isFile) found.push(path);
        } catch { /* none */ }
      }
    }
    return found;
  }

  /**
   * The configuration the run was started with, checked against the
   * option table (a key older runs lack reads as its `olderRuns` value).
   *
   * @returns It, or undefined when the folder holds none.
   * @throws {ConfigError} When `config.json` is not a regular file of at
   *   most 1 MiB, not JSON (a `DamagedFileError`), or not a run's
   *   configuration — naming the file and what is wrong.
   */
  async savedConfig(): Promise<ExperimentConfig | undefined> {
    const raw = await this.#readJson(this.configPath, "run configuration");
    if (raw === undefined) return undefined;
    const bad = (why: string) =>
      new ConfigError(
        `${this.configPath} is not a run's configuration: ${why} (it is written by deno task experiment; restore it or start a new run)`,
      );
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw bad(
        `expected a JSON object of options, got ${
          raw === null ? "null" : Array.isArray(raw) ? "an array" : typeof raw
        }`,
      );
    }
    const values = { ...ADDED_KEYS, ...raw } as Record<string, unknown>;
    const unknown = Object.keys(values).find((k) => !Object.hasOwn(OPTIONS, k));
    if (unknown !== undefined) {
      throw bad(`it has an option this version does not know (${unknown})`);
    }
    const config: Record<string, unknown> = {};
    for (const key of Object.keys(OPTIONS) as OptionKey[]) {
      try {
        config[key] = convertOption(key, OPTIONS[key], values[key]);
      } catch (e) {
        if (!(e instanceof UsageError)) throw e;
        throw bad(
          values[key] === undefined
            ? `it lacks --${flagOf(key)}`
            : e.message.replace(/^Option /, "option "),
        );
      }
    }
    return config as ExperimentConfig;
  }

  /**
   * Where an imported run's model came from (`deno task import`).
   *
   * @returns Its origin and architecture, the vocabulary rows the import
   *   added (with how each was initialised), what the source's export said
   *   of its weights (`weights`, for the project's own export), where the
   *   run's options came from (`options`: `source`, the project's own
   *   export's record of its run; `preset`, made up by the import — a
   *   preset's with the checkpoint's shape) and the record's `version`
   *   (1 when it has none: see {@linkcode IMPORT_VERSION}), or undefined for
   *   a run that was trained here (no `import.json`).
   * @throws {ConfigError} When `import.json` is unreadable or malformed
   *   (one that is not JSON: a `DamagedFileError`).
   */
  async importRecord(): Promise<
    | {
      from: string;
      architecture: string;
      version: number;
      added?: Record<string, string>;
      weights?: string;
      options: "source" | "preset";
    }
    | undefined
  > {
    const raw = await this.#readJson(this.importPath, "import record") as
      | {
        from?: unknown;
        architecture?: unknown;
        vocabulary?: unknown;
        importVersion?: unknown;
        sourceWeights?: unknown;
        options?: unknown;
      }
      | undefined;
    if (raw === undefined) return undefined;
    if (
      typeof raw !== "object" || raw === null ||
      typeof raw.from !== "string" || typeof raw.architecture !== "string" ||
      !(raw.importVersion === undefined ||
        (Number.isSafeInteger(raw.importVersion) &&
          (raw.importVersion as number) >= 2))
    ) {
      throw new ConfigError(
        `${this.importPath} is not an import record (expected {"from", "architecture", …} and an importVersion ≥ 2 if any, as deno task import writes it)`,
      );
    }
    const added = (raw.vocabulary as { added?: unknown } | undefined)?.added;
    return {
      from: raw.from,
      architecture: raw.architecture,
      version: (raw.importVersion as number | undefined) ?? 1,
      ...(typeof added === "object" && added !== null && !Array.isArray(added)
        ? { added: added as Record<string, string> }
        : {}),
      ...(typeof raw.sourceWeights === "string"
        ? { weights: raw.sourceWeights }
        : {}),
      // A record without it: only the project's export, which always wrote
      // its run's options, said what its weights are (sourceWeights).
      options: raw.options === "source" || raw.options === "preset"
        ? raw.options
        : typeof raw.sourceWeights === "string"
        ? "source"
        : "preset",
    };
  }

  /**
   * What the run recorded of its data when it started.
   *
   * @returns The record, or undefined for a run made before records were kept.
   * @throws {ConfigError} When `data.json` is unreadable or malformed
   *   (one that is not JSON: a `DamagedFileError`).
   */
  async savedData(): Promise<DataRecord | undefined> {
    const raw = await this.#readJson(this.dataPath, "data record") as
      | DataRecord
      | undefined;
    if (raw === undefined) return undefined;
    const ok = typeof raw === "object" && raw !== null &&
      ["train", "valid", "test"].every((s) =>
        typeof (raw.sha256 as Record<string, unknown> | undefined)?.[s] ===
          "string"
      ) && typeof raw.tokenizer?.id === "string" &&
      Number.isSafeInteger(raw.tokenizer?.vocabSize);
    if (!ok) {
      throw new ConfigError(
        `${this.dataPath} is not a data record (expected {"sha256": {"train", "valid", "test"}, "tokenizer": {"id", "vocabSize"}}); restore it, or delete it to skip the data check`,
      );
    }
    return raw;
  }

  /**
   * For a reader of the run's data (`deno task evaluate`): the files its
   * `--data` names now must be those it trained on, as `data.json`
   * records them (a run made before data records checks nothing).
   *
   * @param now The data as read now (`prepareData`'s `record`).
   * @param options `files`: where each split was read now (`prepareData`'s
   *   `files`), named in the error.
   * @returns When they are the recorded ones.
   * @throws {ConfigError} Naming the split that changed (and its file),
   *   both hashes' first 12 digits and what to do.
   */
  async verifyData(
    now: DataRecord,
    options: { files?: Partial<Record<keyof DataRecord["sha256"], string>> } =
      {},
  ): Promise<void> {
    const then = await this.savedData();
    const reading = then && readingChanged(then, now);
    if (reading) {
      throw new ConfigError(
        `The run in ${this.dir}: ${reading}; train it anew, or read it with the version that made it`,
      );
    }
    const changed = then && changedSplits(then, now);
    if (!changed) return;
    const config = await this.savedConfig().catch(() => undefined);
    const files = changed.which.flatMap((s) => options.files?.[s] ?? []);
    throw new ConfigError(
      `The ${changed.splits} data of the run in ${this.dir} (--data ${
        JSON.stringify(config?.data ?? "")
      }${
        files.length > 0 ? `: ${files.join(", ")}` : ""
      }) changed since it trained (${changed.hashes}; then: its data.json): its figures would be of other files; restore the files it trained on`,
    );
  }

  // A file that is there but does not parse is damaged (a DamagedFileError,
  // as the model's own files are to loadTrained); one too large, not a
  // regular file or unreadable is not.
  async #readJson(path: string, what: string): Promise<unknown> {
    let text: string;
    try {
      text = await readTextBounded(path, { limit: SMALL_FILE, what });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      if (e instanceof BoundedReadError) throw new ConfigError(e.message);
      if (e instanceof Deno.errors.NotADirectory) {
        throw new ConfigError(
          `${this.dir} is not a run folder: it is a file, or a file is in its path`,
        );
      }
      throw new ConfigError(`Cannot read ${path}: ${e}`);
    }
    return parseJsonFile(text, path, what);
  }

  /**
   * Check that `config` may run here: a resume needs the same configuration
   * (but for the resumable options); a fresh run needs an empty or new
   * folder, or `force` with a folder that holds a run (which
   * {@linkcode RunLock.begin} then moves aside). A folder that holds files
   * but no run is never used, with or without `force`. Checked again under
   * the lock ({@linkcode RunFolder.acquire}).
   *
   * @param config The resolved configuration.
   * @throws {ConfigError} A one-line reason and what to do instead.
   */
  async check(config: ExperimentConfig): Promise<void> {
    const outer = await enclosingRun(this.dir);
    if (outer !== undefined) {
      throw new ConfigError(
        `--out ${this.dir} is inside the run folder ${outer} (it has a run's config.json): a run folder holds one run, and a --force of it would move this one aside, even while it runs; choose an --out outside it`,
      );
    }
    const contents = await this.#contents();
    if (contents === "other") {
      throw new ConfigError(
        `--out ${this.dir} holds files but no run (no config.json): a run needs a new or empty folder, and --force only moves run folders aside; choose another --out`,
      );
    }
    const saved = await this.savedConfig();
    if (config.resume) {
      if (!saved) {
        // Nothing to resume: a fresh start, whose values are all read.
        const unread = unreadOption(config);
        if (unread) throw new ConfigError(unread);
        return;
      }
      // --data may name another folder when data.json will verify its
      // files (RunLock.begin refuses a split that differs, by name).
      const verified = await this.savedData().then(
        (d) => d !== undefined,
        () => false,
      );
      const diff = configDiff(saved, config, { verified });
      if (diff) {
        const auto = saved.engine === "auto" && config.engine !== "auto";
        throw new ConfigError(
          `Cannot resume ${this.dir}: ${diff}${
            auto ? await this.#autoPicked() : ""
          } (${auto ? "resume with --engine auto, or " : ""}${
            movedSince(saved, config)
          }${await this
            .#elsewhere(
              "start a new run with --out DIR, or --force to replace this one",
            )})`,
        );
      }
      await this.#checkModelFolders(config);
      return;
    }
    if (contents === "run" && !config.force) {
      throw new ConfigError(
        `${this.dir} already holds a run: pass --resume to continue it, --force to replace it (it is moved aside), or --out DIR for a new folder`,
      );
    }
  }

  /**
   * On resume, every `seed-N` and `seed-N/KIND` the run will write must be a
   * folder where it exists: a file there failed the run only when that
   * model's turn came (`Not a directory (os error 20): mkdir …`), after the
   * models before it had trained.
   */
  async #checkModelFolders(config: ExperimentConfig): Promise<void> {
    const absent = async (path: string) => {
      // A link to nothing read as absent: the run failed at that model's
      // turn (`File exists (os error 17): mkdir …`).
      const entry = await Deno.lstat(path).catch(() => undefined);
      if (entry === undefined) return true;
      const info = entry.isSymlink
        ? await Deno.stat(path).catch(() => undefined)
        : entry;
      if (info === undefined) {
        const to = await Deno.readLink(path).catch(() => "?");
        throw new ConfigError(
          `Cannot resume ${this.dir}: ${path} is a symbolic link to ${to}, which does not exist, where the run keeps its models (a folder); restore that folder, or remove the link`,
        );
      }
      if (!info.isDirectory) {
        throw new ConfigError(
          `Cannot resume ${this.dir}: ${path} is ${
            entry.isSymlink ? "a symbolic link to " : ""
          }${
            info.isFile ? "a file" : kindOf(info)
          }, where the run keeps its models (a folder); move it away, or restore the folder`,
        );
      }
      return false;
    };
    const first = config.firstSeed ?? 0;
    for (let seed = first; seed < first + config.seeds; seed++) {
      if (await absent(`${this.dir}/seed-${seed}`)) continue; // none yet
      for (const kind of modelList(config)) {
        await absent(this.modelDir(seed, kind));
      }
    }
  }

  /**
   * How to start afresh instead of resuming: `alone` for a run of its own;
   * for a sweep's cell (a folder under `<sweep>/cells/` beside a
   * `sweep.json`), whose command the sweep gives (`--out` and `--force`
   * are the sweep's), the sweep-level remedy.
   */
  async #elsewhere(alone: string): Promise<string> {
    const at = this.dir.lastIndexOf("/");
    const parent = at < 0 ? "." : this.dir.slice(0, at) || "/";
    const name = this.dir.slice(at + 1);
    if (!/(^|\/)cells$/.test(parent)) return alone;
    const sweep = parent.replace(/\/?cells$/, "") || ".";
    const isSweep = await Deno.stat(`${sweep}/sweep.json`).then(
      (s) => s.isFile,
      () => false,
    );
    return isSweep
      ? `this is cell ${name} of the sweep ${sweep}: move ${this.dir} aside and run the sweep again to start the cell afresh, or plan a new sweep with --dir DIR`
      : alone;
  }

  // For a resume of an `--engine auto` run under another --engine: what
  // auto picked for it (results.json's engine, where the run finished), and
  // that a resume keeps --engine auto, which picks again on this machine.
  async #autoPicked(): Promise<string> {
    const results = await this.#readJson(this.resultsPath, "results").catch(
      () => undefined,
    ) as { engine?: unknown } | undefined;
    const picked = typeof results?.engine === "string"
      ? ` picked ${JSON.stringify(results.engine)} (results.json) and`
      : "";
    return `; the run's --engine auto${picked} picks again on resume, on this machine`;
  }

  /** `empty` (nothing, or only a lock and temporary files), `run` (a config.json), or `other`. */
  async #contents(): Promise<"empty" | "run" | "other"> {
    let other = false;
    try {
      for await (const e of Deno.readDir(this.dir)) {
        if (e.name === "config.json") return "run";
        // Whatever is at `.lock` may be taken over, but a folder with
        // something in it: that is the user's.
        const ours = e.name === ".lock"
          ? !(e.isDirectory && !await isEmptyFolder(`${this.dir}/.lock`))
          : TEMP.test(e.name);
        if (!ours) other = true;
      }
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return "empty";
      if (e instanceof Deno.errors.NotADirectory) {
        // `--out F/run` with F a file: F is the file, not F/run.
        const file = await fileAbove(this.dir);
        throw new ConfigError(
          file === undefined
            ? `--out ${this.dir} is a file, not a folder`
            : `--out ${this.dir} is inside ${file}, which is a file, not a folder; --out takes a folder: choose another`,
        );
      }
      throw cannotUse(this.dir, "read", e); // a link loop, a name too long
    }
    return other ? "other" : "empty";
  }

  /**
   * Take the lock (creating the folder if needed), then check `config`
   * under it ({@linkcode RunFolder.check}): from here until
   * {@linkcode RunLock.release} no other process can start, resume or
   * `--force` this folder, so the preparation that follows cannot race.
   *
   * @param config The resolved configuration.
   * @param options `held`: the folder's lock, already taken by this process
   *   ({@linkcode RunFolder.lock}) and kept by its caller, who releases it
   *   (the release returned then leaves it held).
   * @returns The lock.
   * @throws {ConfigError} When another live process holds the lock, or the
   *   check fails (the lock is then released, and a folder it created
   *   removed).
   */
  async acquire(
    config: ExperimentConfig,
    options: { held?: () => void } = {},
  ): Promise<RunLock> {
    await this.check(config); // before creating anything
    const created = options.held ? false : await this.#make();
    // Whichever acquire in this process wins the lock may remove the folder
    // another one created (a losing creator cannot: the lock is in it).
    if (created) CREATED.add(this.dir);
    let unlock: () => void;
    try {
      unlock = options.held ? () => {} : await this.lock();
    } catch (e) {
      if (created) removeCreated(this.dir);
      throw e;
    }
    let written = false;
    const release = () => {
      HELD.delete(release);
      unlock();
      if (CREATED.has(this.dir) && !written) removeCreated(this.dir);
    };
    HELD.add(release);
    try {
      await this.check(config); // again, under the lock
    } catch (e) {
      release();
      throw e;
    }
    return {
      release,
      begin: async (data) => {
        if (config.resume) await this.#checkData(config, data);
        // A --resume of a folder holding no run (a mistyped --out) starts
        // one: said, not silent.
        if (config.resume && !await this.savedConfig()) {
          console.error(
            `note: --out ${this.dir} holds no run yet: --resume starts one there (check --out if you meant to continue a run)`,
          );
        }
        written = true;
        BEGUN.add(this.dir);
        CREATED.delete(this.dir);
        PARENTS.delete(this.dir);
        if (config.force && !config.resume) await this.#moveAside();
        await this.#removeLeftovers();
        await writeFileAtomic(
          this.configPath,
          JSON.stringify(config, null, 2) + "\n",
        );
        if (data) {
          await writeFileAtomic(
            this.dataPath,
            JSON.stringify(data, null, 2) + "\n",
          );
        }
      },
    };
  }

  // Files left by interrupted writes, and lock attempts (or takeovers) whose
  // process is gone; another process's live lock attempt (`.lock.<uuid>.tmp`,
  // created and removed by any lock()) is not this run's to remove mid-write.
  async #removeLeftovers(): Promise<void> {
    for (
      const path of await removeStaleTemps(
        this.dir,
        (name) => LOCK_TEMP.test(name),
      )
    ) {
      console.error(`note: removed ${path}, left by an interrupted write`);
    }
    // A lock attempt (or takeover) whose process is gone stays for ever
    // otherwise: it names a process, like a lock.
    for (const e of [...Deno.readDirSync(this.dir)]) {
      if (!LOCK_TEMP.test(e.name)) continue;
      const path = `${this.dir}/${e.name}`;
      const text = await readTextBounded(path, {
        limit: SMALL_FILE,
        what: "lock",
      }).catch(() => undefined);
      const holder = text === undefined ? undefined : parseLock(text);
      if (holder && !isAlive(holder)) {
        await Deno.remove(path).catch(() => {});
        console.error(
          `note: removed ${path}, left by a lock attempt of a process that is gone`,
        );
      }
    }
  }

  /**
   * Make the folder (false: it was there); a folder that cannot be made,
   * or a link to nothing, is named in one line.
   */
  async #make(): Promise<boolean> {
    let created = false;
    // A folder that cannot be made names --out and why, in one line.
    const cannot = (e: unknown) => cannotUse(this.dir, "create", e);
    try {
      await Deno.mkdir(this.dir); // not recursive: tells who made it
      created = true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        // The folders above it that are made too: removed with it when the
        // run is refused (they were left behind, empty).
        const parents: string[] = [];
        for (
          let p = parentOf(this.dir);
          !await Deno.stat(p).then(() => true, () => false);
          p = parentOf(p)
        ) if (!/(^|\/)\.\.?$/.test(p)) parents.push(p);
        await Deno.mkdir(this.dir, { recursive: true }).catch((e) => {
          throw cannot(e);
        });
        PARENTS.set(this.dir, parents);
        created = true;
      } else if (!(e instanceof Deno.errors.AlreadyExists)) throw cannot(e);
    }
    // A link to a folder that is not there.
    if (!created && !(await Deno.stat(this.dir).catch(() => undefined))) {
      const to = await Deno.readLink(this.dir).catch(() => "?");
      throw new ConfigError(
        `--out ${this.dir} is a symbolic link to ${to}, which does not exist: create that folder, or choose another --out`,
      );
    }
    return created;
  }

  /** A resume on data other than the run's own is refused. */
  async #checkData(
    config: ExperimentConfig,
    now: DataRecord | undefined,
  ): Promise<void> {
    // A moved --data (a VERIFIED_KEYS change RunFolder.check let through)
    // is taken only once its files are hashed here.
    const saved = await this.savedConfig();
    const moved = VERIFIED_KEYS.filter((k) =>
      saved !== undefined && saved[k] !== undefined && saved[k] !== config[k]
    ).map((k) =>
      `--${flagOf(k)} is ${JSON.stringify(config[k])} but the run used ${
        JSON.stringify(saved![k])
      }`
    ).join("; ");
    if (!now) {
      if (!moved) return;
      throw new ConfigError(
        `Cannot resume ${this.dir}: ${moved}, and no data record was given to verify the files there; resume with the run's --data`,
      );
    }
    const then = await this.savedData();
    if (!then) return; // a run made before data records: nothing to compare
    const reading = readingChanged(then, now);
    if (reading) {
      throw new ConfigError(
        `Cannot resume ${this.dir}: ${reading}; ${await this.#elsewhere(
          "start a new run with --out DIR",
        )}`,
      );
    }
    const changed = changedSplits(then, now);
    if (changed) {
      throw new ConfigError(
        `Cannot resume ${this.dir}: ${
          moved ? `${moved}, and there ` : ""
        }the ${changed.splits} data ${
          moved ? "differ from the run's" : "changed since the run started"
        } (${changed.hashes}); restore the files it started with, or ${await this
          .#elsewhere(
            "start a new run with --out DIR",
          )}`,
      );
    }
    if (
      then.tokenizer.id !== now.tokenizer.id ||
      then.tokenizer.vocabSize !== now.tokenizer.vocabSize
    ) {
      throw new ConfigError(
        `Cannot resume ${this.dir}: its tokenizer was ${then.tokenizer.id} with ${then.tokenizer.vocabSize} ids, now ${now.tokenizer.id} with ${now.tokenizer.vocabSize}; restore ${this.tokenizerPath}, or ${await this
          .#elsewhere(
            "start a new run with --out DIR",
          )}`,
      );
    }
  }

  /**
   * Move a stopped run's files into `<dir>.replaced-<time>`, under this
   * process's lock (which stays where it is, so no other process can step
   * in between).
   */
  async #moveAside(): Promise<void> {
    if (await this.#contents() !== "run") return;
    // Beside the folder itself, not beside a link to it (a rename across
    // filesystems fails), nor inside it (`--out .`: `..replaced-…`).
    const real = await Deno.realPath(this.dir);
    const aside = replacedPath(real);
    const cannot = (e: unknown, moved: boolean) =>
      new ConfigError(
        `Cannot move the earlier run in ${this.dir} aside to ${aside}: ${
          e instanceof Error ? e.message.split(/[:(]/)[0].trim() : e
        }; ${
          moved
            ? `part of it is there now: move it back into ${this.dir}`
            : `the run is left whole in ${this.dir}`
        } (move the run away yourself, or choose another --out)`,
      );
    await Deno.mkdir(aside).catch((e) => {
      throw cannot(e, false);
    });
    // All but the lock and other processes' lock attempts (which come and
    // go: one moved made that process's lock fail), renamed synchronously
    // so that a signal (whose handler exits) cannot split the run between
    // the two folders; an entry gone since the listing is passed over.
    const names = [...Deno.readDirSync(this.dir)].map((e) => e.name)
      .filter((name) => name !== ".lock" && !LOCK_TEMP.test(name));
    hooks.beforeMoveAside?.(this.dir, names);
    const moved: string[] = [];
    for (const name of names) {
      try {
        Deno.renameSync(`${this.dir}/${name}`, `${aside}/${name}`);
        moved.push(name);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) continue;
        // One that cannot move (another filesystem mounted inside): the
        // ones moved go back, the aside folder goes, the run is whole.
        for (const back of moved) {
          try {
            Deno.renameSync(`${aside}/${back}`, `${this.dir}/${back}`);
          } catch { /* left there: said */ }
        }
        let emptied = true;
        try {
          Deno.removeSync(aside); // only when empty
        } catch {
          emptied = false;
        }
        throw cannot(e, !emptied);
      }
    }
    console.error(`note: moved the earlier run in ${this.dir} to ${aside}`);
  }

  /**
   * Take the lock and start writing at once ({@linkcode RunFolder.acquire},
   * then {@linkcode RunLock.begin}): for a run with nothing to prepare.
   *
   * @param config The checked configuration.
   * @param data What the run trains on, to check and record.
   * @param options `held`: the lock, taken already (see
   *   {@linkcode RunFolder.acquire}).
   * @returns A function that releases the lock.
   * @throws {ConfigError} When another live process holds the lock, or the
   *   folder cannot take the run.
   */
  async start(
    config: ExperimentConfig,
    data?: DataRecord,
    options: { held?: () => void } = {},
  ): Promise<() => void> {
    const lock = await this.acquire(config, options);
    try {
      await lock.begin(data);
    } catch (e) {
      lock.release();
      throw e;
    }
    return lock.release;
  }

  /**
   * Take the folder's lock: a file naming this process (pid, start time,
   * command), created exclusively. A lock whose process is gone — or whose
   * pid now belongs to a process started at another time — is stale and
   * taken over.
   *
   * @param created Whether the caller created the folder: its release
   *   (also {@linkcode RunFolder.releaseHeld}'s, on Ctrl-C) then removes
   *   the folder too while it is empty.
   * @returns A function that releases it.
   * @throws {ConfigError} When a live process holds it, naming it and how
   *   to clear a lock that is wrong (with `exitCode` {@linkcode FOLDER_BUSY_EXIT}).
   */
  async lock(created = false): Promise<() => void> {
    const mine = JSON.stringify(SELF) + "\n";
    for (let attempt = 0; attempt < 2; attempt++) {
      hooks.beforeLockAttempt?.(this.lockPath, attempt);
      try {
        await createWhole(this.lockPath, mine);
        return holding(this.lockPath, mine, created ? this.dir : undefined);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) {
          // Our attempt's file vanished under a folder that is there: try
          // again (a --force of an older version moved it aside).
          if (
            await Deno.stat(this.dir).then((i) => i.isDirectory, () => false)
          ) {
            continue;
          }
          throw new ConfigError(
            `Cannot lock ${this.dir}: the folder does not exist`,
          );
        }
        if (!(e instanceof Deno.errors.AlreadyExists)) {
          throw cannotUse(this.dir, "lock", e);
        }
      }
      // A folder with something in it at the path is the user's: never
      // taken over (its takeover removed it recursively, files and all).
      if (!await isEmptyFolder(this.lockPath).then((e) => e, () => true)) {
        throw new ConfigError(
          `${this.lockPath} is a folder with files in it, not a lock this tool wrote (a lock is a file): move it away, or choose another --out`,
        );
      }
      const seen = await this.#lockText();
      const holder = seen === undefined ? undefined : parseLock(seen);
      // runCli exits with its code: a sweep leaves the cell to that run.
      if (holder && isAlive(holder)) throw this.#busy(holder);
      console.error(
        `note: ${this.lockPath} was left by a process that is gone (${
          holder ? `pid ${holder.pid}` : "unreadable"
        }); taking it over`,
      );
      // Only the lock judged stale: another process may have replaced it.
      // A lock that cannot be removed (a read-only disk) is said so, not
      // taken for another run that keeps taking it.
      await takeOver(this.lockPath, seen).catch((e) => {
        throw cannotUse(this.dir, "lock", e);
      });
    }
    throw new ConfigError(
      `Cannot lock ${this.dir}: another run keeps taking it`,
    );
  }

  /**
   * The refusal {@linkcode RunFolder.lock} gives while a live process
   * holds the lock, naming it (with `exitCode` {@linkcode FOLDER_BUSY_EXIT}),
   * without taking the lock; undefined when it is free or stale. For a
   * process that must not start while another holds this folder, but must
   * not hold it itself (a study's cell while its serial study runs).
   *
   * @returns The refusal, or undefined.
   *
   * @example
   * ```ts
   * import { FOLDER_BUSY_EXIT, RunFolder } from "@d3pm/experiment";
   * import { assertEquals, assertStringIncludes } from "@std/assert";
   * const folder = new RunFolder(await Deno.makeTempDir());
   * assertEquals(await folder.whyBusy(), undefined);
   * const release = await folder.lock();
   * const busy = await folder.whyBusy();
   * assertEquals(busy?.exitCode, FOLDER_BUSY_EXIT);
   * assertStringIncludes(busy!.message, `${folder.dir} is in use by another run (pid ${Deno.pid}`);
   * release();
   * await Deno.remove(folder.dir, { recursive: true });
   * ```
   */
  async whyBusy(): Promise<(ConfigError & { exitCode: number }) | undefined> {
    const holder = await this.#holder();
    return holder && isAlive(holder) ? this.#busy(holder) : undefined;
  }

  /**
   * Whether this very process holds the lock (it took it with
   * {@linkcode RunFolder.lock} and has not let it go).
   *
   * @returns Whether it does.
   *
   * @example
   * ```ts
   * import { RunFolder } from "@d3pm/experiment";
   * import { assertEquals } from "@std/assert";
   * const folder = new RunFolder(await Deno.makeTempDir());
   * const release = await folder.lock();
   * assertEquals(await folder.heldHere(), true);
   * release();
   * assertEquals(await folder.heldHere(), false);
   * await Deno.remove(folder.dir, { recursive: true });
   * ```
   */
  async heldHere(): Promise<boolean> {
    return await this.#lockText() === JSON.stringify(SELF) + "\n";
  }

  /** The refusal of a lock a live process holds, naming it. */
  #busy(holder: LockHolder): ConfigError & { exitCode: number } {
    const there = elsewhere(holder);
    return Object.assign(
      new ConfigError(
        there
          ? `${this.dir} is in use by a run ${there.there} (${
            describeHolder(holder)
          }): whether it still runs cannot be told from here; wait for it, or use --out DIR (if ${there.gone}, and no run writes here, delete ${this.lockPath})`
          : `${this.dir} is in use by another run (${
            describeHolder(holder)
          }); wait for it, or use --out DIR (if no such run is alive, delete ${this.lockPath})`,
      ),
      { exitCode: FOLDER_BUSY_EXIT },
    );
  }

  /** The lock's holder as written (undefined: no lock, or no pid in it). */
  async #holder(): Promise<LockHolder | undefined> {
    const text = await this.#lockText();
    return text === undefined ? undefined : parseLock(text);
  }

  /** The lock's text (undefined: no lock, or unreadable). */
  async #lockText(): Promise<string | undefined> {
    try {
      return await readTextBounded(this.lockPath, {
        limit: SMALL_FILE,
        what: "lock",
      });
    } catch {
      return undefined;
    }
  }

  /**
   * Release every lock this process holds (and remove a folder a lock
   * created while nothing was written to it): for a signal handler that
   * exits at once, without the `finally` blocks that would release them.
   */
  static releaseHeld(): void {
    for (const release of [...HELD]) release();
  }

  /**
   * What an interrupted run has left here, and how to go on: for Ctrl-C.
   * Before this process began writing (the preparation: data, tokenizer,
   * judge) the folder is as it was — even with `--force` its earlier run
   * is untouched, and its checkpoints are not this run's to resume.
   *
   * @param again The command that gives the run's options again, without
   *   `--resume` and `--force`.
   * @returns One line (after a newline).
   *
   * @example Nothing begun: nothing to resume, whatever the folder holds
   * ```ts
   * import { RunFolder } from "@d3pm/experiment";
   * import { assertEquals } from "@std/assert";
   * const folder = new RunFolder(await Deno.makeTempDir());
   * assertEquals(
   *   folder.interruptionNote("deno task experiment --out x"),
   *   `\ninterrupted during preparation: nothing was written to ${folder.dir}; run the same command again`,
   * );
   * await Deno.remove(folder.dir);
   * ```
   */
  interruptionNote(again: string): string {
    if (!BEGUN.has(this.dir)) {
      return `\ninterrupted during preparation: nothing was written to ${this.dir}; run the same command again`;
    }
    const checkpoints = this.checkpointFiles();
    return checkpoints.length > 0
      ? `\ninterrupted: ${checkpoints.length} checkpoint(s) in ${this.dir} (${
        checkpoints.map((p) => p.slice(this.dir.length + 1)).join(", ")
      }); continue with: ${again} --resume`
      : `\ninterrupted before any checkpoint was written: nothing in ${this.dir} can be resumed; start again with: ${again} --force (the partial run is moved aside)`;
  }

  /**
   * The process writing the run now, if any: the pid in the lock when that
   * very process is alive (a stale lock counts as none).
   *
   * @returns The pid, or undefined.
   */
  async writer(): Promise<number | undefined> {
    const holder = await this.#holder();
    return holder && isAlive(holder) ? holder.pid : undefined;
  }

  /**
   * The holder of the lock when it counts as live (a stale lock counts as
   * none): this host's process that runs, or one this host cannot check
   * ({@linkcode holderHost}: another host's).
   *
   * @returns The holder as its lock names it, or undefined.
   *
   * @example
   * ```ts
   * import { RunFolder } from "@d3pm/experiment";
   * import { assertEquals } from "@std/assert";
   * const folder = new RunFolder(await Deno.makeTempDir());
   * const release = await folder.lock();
   * assertEquals((await folder.liveHolder())?.pid, Deno.pid);
   * release();
   * assertEquals(await folder.liveHolder(), undefined);
   * await Deno.remove(folder.dir, { recursive: true });
   * ```
   */
  async liveHolder(): Promise<LockHolder | undefined> {
    const holder = await this.#holder();
    return holder && isAlive(holder) ? holder : undefined;
  }
}

/** The releases of the locks this process holds. */
/**
 * Where `--force` moves an earlier run (or study) at `path` aside:
 * `<path>.replaced-<time>`, the time in ISO form with `:` and `.` as `-`.
 *
 * @param path The folder or file moved aside (its real path).
 * @param at When (default now).
 * @returns The path beside it.
 *
 * @example
 * ```ts
 * import { replacedPath } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   replacedPath("/r/main", new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6))),
 *   "/r/main.replaced-2026-01-02T03-04-05-006Z",
 * );
 * ```
 */
export function replacedPath(path: string, at: Date = new Date()): string {
  return `${path}.replaced-${at.toISOString().replace(/[:.]/g, "-")}`;
}

const HELD = new Set<() => void>();

/**
 * Take a lock file guarding a short read-modify-write of a shared file (a
 * sweep's `sweep.json`): a file naming this process (pid, start time,
 * command) and this call, created whole and exclusively. While a live
 * process — or another call of this one — holds it, wait (up to `waitMs`);
 * a lock whose process is gone is taken over, as a run folder's is.
 *
 * @param path The lock file.
 * @param waitMs How long to wait for a live holder.
 * @returns A function that releases it.
 * @throws {ConfigError} When a live holder keeps it past `waitMs`, or the
 *   path cannot be taken (a folder with files in it).
 *
 * @example Two calls at once: the second waits for the first
 * ```ts
 * import { lockFile } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * const order: string[] = [];
 * const first = await lockFile(`${dir}/x.lock`, 5000);
 * const second = lockFile(`${dir}/x.lock`, 5000).then((release) => {
 *   order.push("second");
 *   release();
 * });
 * await new Promise((r) => setTimeout(r, 50));
 * order.push("first");
 * first();
 * await second;
 * assertEquals(order, ["first", "second"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function lockFile(
  path: string,
  waitMs: number,
): Promise<() => void> {
  const mine = JSON.stringify({ ...SELF, call: crypto.randomUUID() }) + "\n";
  const until = Date.now() + waitMs;
  const text = () =>
    readTextBounded(path, { limit: SMALL_FILE, what: "lock" }).catch((e) =>
      e instanceof Deno.errors.NotFound ? null : undefined
    );
  for (let takeovers = 0;;) {
    try {
      await createWhole(path, mine);
      return holding(path, mine);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    const seen = await text();
    if (seen === null) continue; // let go meanwhile
    const holder = seen === undefined ? undefined : parseLock(seen);
    if (holder && isAlive(holder)) {
      if (Date.now() > until) {
        const there = elsewhere(holder);
        throw new ConfigError(
          `${path} has been held by another process${
            there ? ` ${there.there}` : ""
          } (${describeHolder(holder)}) for over ${
            waitMs / 1000
          } s; wait for it (if no such process is alive${
            there ? `, or ${there.gone}` : ""
          }, delete ${path})`,
        );
      }
      await new Promise((r) => setTimeout(r, 10 + 20 * Math.random()));
      continue;
    }
    if (++takeovers > 3) {
      throw new ConfigError(
        `Cannot take ${path}: it is not a lock this tool can take over (a lock is a file); move it away`,
      );
    }
    console.error(
      `note: ${path} was left by a process that is gone (${
        holder ? `pid ${holder.pid}` : "unreadable"
      }); taking it over`,
    );
    // Only the lock judged stale: another process may have replaced it.
    await takeOver(path, seen ?? undefined).catch(() => {});
  }
}

/**
 * Remove the lock at `path` judged stale when it read `seen`, atomically:
 * it is renamed to a name of its own first (`<path>.<uuid>.tmp`), then
 * removed only if it still reads `seen`; a lock another process took over
 * and wrote meanwhile is put back. (Reading, then removing, removed such a
 * fresh lock when the takeover came between the two.)
 */
async function takeOver(path: string, seen: string | undefined) {
  hooks.beforeTakeover?.(path);
  const taken = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.rename(path, taken);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return; // let go meanwhile
    throw e;
  }
  const text = await readTextBounded(taken, { limit: SMALL_FILE, what: "lock" })
    .catch(() => undefined);
  if (text !== seen) {
    // Another's live lock: back in place (unless a third took the path).
    await Deno.link(taken, path).catch(() => {});
  }
  // A folder that is not empty now (the user's) goes back where it was.
  await Deno.remove(taken).catch(() =>
    Deno.rename(taken, path).catch(() => {})
  );
}

/**
 * The release of a lock file this process has just created with `mine`:
 * it removes the file only while it still holds `mine` (a takeover may have
 * replaced it), once, and is registered in `HELD` until then; with `dir`
 * (a folder its caller created), it removes that too while empty.
 */
function holding(path: string, mine: string, dir?: string): () => void {
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    HELD.delete(release);
    try {
      if (Deno.readTextFileSync(path) === mine) Deno.removeSync(path);
    } catch { /* already gone */ }
    if (dir !== undefined) {
      try {
        Deno.removeSync(dir); // only while empty
      } catch { /* written to, or gone */ }
    }
  };
  HELD.add(release);
  return release;
}

/**
 * Why `--out` cannot be read, created or locked, in one line: the system's reason
 * without its error code and path (`Read-only file system`), and what to do.
 * An error that is not the system's (a bug) is passed on as it is.
 */
function cannotUse(
  dir: string,
  action: "read" | "create" | "lock",
  e: unknown,
) {
  if (
    !(e instanceof Error) ||
    !(Object.values(Deno.errors).some((kind) => e instanceof kind) ||
      /\(os error \d+\)/.test(e.message))
  ) return e;
  const reason = e.message.split(/[:(]/)[0].trim();
  // A full disk (or quota): the folder is fine, the space is not.
  if (/\(os error (28|122)\)/.test(e.message)) {
    return new ConfigError(
      `Cannot ${action} --out ${dir}: ${reason}; free space there, or choose an --out on another disk`,
    );
  }
  return new ConfigError(
    `Cannot ${action} --out ${dir}: ${reason}; choose ${
      action === "read" ? "another --out" : "a folder you can write"
    }${
      action === "lock"
        ? " (a run there can still be read by sample, evaluate and report --merge; copy it elsewhere to resume it)"
        : ""
    }`,
  );
}

/** Run folders this process created and has not yet written to or removed. */
const CREATED = new Set<string>();
/** The folders above a created run folder that its creation made, deepest first. */
const PARENTS = new Map<string, string[]>();

/**
 * Remove a run folder this process created, and the folders made with it,
 * each only while empty (deepest first; the first that is not ends it).
 */
function removeCreated(dir: string): void {
  try {
    Deno.removeSync(dir); // only when empty
  } catch {
    // Something is in it (another acquire's lock, which may remove it).
    return;
  }
  CREATED.delete(dir);
  const made = PARENTS.get(dir) ?? [];
  PARENTS.delete(dir);
  for (const path of made) {
    try {
      Deno.removeSync(path);
    } catch {
      return; // something else is in it
    }
  }
}

/**
 * The run folder a path is inside, if any: the path's real form (that of its
 * nearest existing folder, links and `..` resolved, and the rest of it), then
 * each folder above it, whose `config.json` is a run's configuration (another
 * tool's config.json is not). Walked from the real path's parent: a run
 * folder is not inside itself, and a link to a folder inside a run is inside
 * that run. Every writer that must not write into a run (`--out` of a run,
 * `export`/`import --to`) asks this.
 *
 * @param path A folder about to be written (it need not exist).
 * @returns The enclosing run folder's real path, or `undefined`.
 *
 * @example
 * ```ts
 * import { enclosingRun, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const run = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.writeTextFile(
 *   `${run}/config.json`,
 *   JSON.stringify(resolveConfig({ preset: "micro", out: run })),
 * );
 * assertEquals(await enclosingRun(`${run}/sub/export`), run);
 * assertEquals(await enclosingRun(run), undefined); // not inside itself
 * await Deno.remove(run, { recursive: true });
 * ```
 */
export async function enclosingRun(path: string): Promise<string | undefined> {
  const tail: string[] = [];
  let real: string | undefined;
  for (let p = path; real === undefined;) {
    real = await Deno.realPath(p).catch(() => undefined);
    if (real !== undefined) break;
    const parent = parentOf(p);
    if (parent === p) return undefined;
    const bare = p.replace(/\/+$/, "");
    tail.unshift(bare.slice(bare.lastIndexOf("/") + 1));
    p = parent;
  }
  // The part not there yet is made as named (folders, not links).
  const parts: string[] = [];
  for (const part of [...real.split("/"), ...tail]) {
    if (part === "..") parts.pop();
    else if (part !== "" && part !== ".") parts.push(part);
  }
  const out = `/${parts.join("/")}`;
  if (out === "/") return undefined;
  for (let q = parentOf(out);; q = parentOf(q)) {
    const isRun = await new RunFolder(q).savedConfig().then(
      (c) => c !== undefined,
      () => false,
    );
    if (isRun) return q;
    if (parentOf(q) === q) return undefined;
  }
}

/** The folder `path` is in (`.` for a bare name). */
function parentOf(path: string): string {
  const bare = path.replace(/\/+$/, "");
  if (bare === "") return path === "" ? "." : "/"; // the root is its own
  const at = bare.lastIndexOf("/");
  return at < 0 ? "." : at === 0 ? "/" : bare.slice(0, at);
}
/** Folders this process has begun writing a run into (`RunLock.begin`). */
const BEGUN = new Set<string>();

/**
 * Create `path` holding `text`, whole: a reader never sees it empty or
 * half-written (an empty lock would read as stale and be taken over). The
 * text goes to a temporary file that is hard-linked into place, which fails
 * with `AlreadyExists` when `path` exists; where links are not supported,
 * an exclusive create.
 */
async function createWhole(path: string, text: string): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    // A failure to write the text (a full disk) is no reason to try
    // another way: it would fail too, and leave an empty file at `path`.
    await Deno.writeTextFile(tmp, text, { createNew: true });
    try {
      await Deno.link(tmp, path);
      return;
    } catch (e) {
      if (
        e instanceof Deno.errors.AlreadyExists ||
        e instanceof Deno.errors.NotFound
      ) throw e;
    }
    // No hard links here: an exclusive create, removed again when its
    // text cannot be written (created by this call: no one else's).
    const file = await Deno.open(path, { write: true, createNew: true });
    try {
      const bytes = new TextEncoder().encode(text);
      for (let at = 0; at < bytes.length;) {
        at += await file.write(bytes.subarray(at));
      }
    } catch (e) {
      file.close();
      await Deno.remove(path).catch(() => {});
      throw e;
    }
    file.close();
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

/**
 * Whether `path` is a folder holding nothing (false: a folder with
 * entries; true: an empty folder; a path that is no folder throws).
 */
async function isEmptyFolder(path: string): Promise<boolean> {
  for await (const _ of Deno.readDir(path)) return false;
  return true;
}

/** Temporary files of `writeFileAtomic` (`<name>.<uuid>.tmp`). */
const TEMP =
  /\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;
/** A lock attempt's temporary file (`createWhole`'s `.lock.<uuid>.tmp`). */
const LOCK_TEMP =
  /^\.lock\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;

/**
 * A lock's text: JSON naming the holder, or (written by older versions) a
 * bare pid.
 */
function parseLock(text: string): LockHolder | undefined {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return { pid: Number(trimmed) };
  try {
    const v = JSON.parse(trimmed);
    if (!Number.isSafeInteger(v?.pid) || v.pid <= 0) return undefined;
    return {
      pid: v.pid,
      ...(typeof v.start === "string" ? { start: v.start } : {}),
      ...(typeof v.command === "string" ? { command: v.command } : {}),
      ...(typeof v.ns === "string" ? { ns: v.ns } : {}),
      ...(typeof v.host === "string" ? { host: v.host } : {}),
      ...(typeof v.hostname === "string" ? { hostname: v.hostname } : {}),
      ...(Number.isFinite(v.since) ? { since: v.since } : {}),
    };
  } catch {
    return undefined;
  }
}

/** This process, as its lock names it. */
const SELF: LockHolder = {
  ...thisProcess(),
  command: ["deno", mainScript(), ...Deno.args].join(" "),
};

function mainScript(): string {
  try {
    const url = new URL(Deno.mainModule);
    return url.protocol === "file:" ? fromFileUrl(url) : url.href;
  } catch {
    return Deno.execPath();
  }
}

/** Whether the process a lock names still runs ({@linkcode isProcessAlive}). */
function isAlive(holder: LockHolder): boolean {
  return isProcessAlive(holder);
}

/**
 * A lock's holder in a message: its pid and command, and its host where it
 * is not this one (its liveness cannot be told from here).
 */
function describeHolder(holder: LockHolder): string {
  return `pid ${holder.pid}${
    holder.command ? `, ${shorten(holder.command)}` : ""
  }`;
}

/**
 * Where a live lock's holder runs when this host cannot check it
 * ({@linkcode markHost}): `host node1 (boot 5f3c…)`; undefined where it is
 * this host's (judged by /proc).
 *
 * @param holder The lock's holder, as written.
 * @returns Its host and boot in words, or undefined.
 *
 * @example
 * ```ts
 * import { holderHost } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const boot = "5f3c9a0e-0000-4000-8000-000000000001";
 * const other = `not-${Deno.hostname()}`;
 * assertEquals(holderHost({ pid: 7, host: boot, hostname: other }), `host ${other} (boot ${boot})`);
 * assertEquals(holderHost({ pid: 7 }), undefined); // an older lock: this host's
 * ```
 */
export function holderHost(holder: LockHolder): string | undefined {
  const place = markHost(holder);
  if (place !== "another" && place !== "unknown") return undefined;
  return `host ${holder.hostname ?? "of unknown name"} (boot ${
    holder.host ?? "unknown"
  })`;
}

/**
 * What holds a run folder whose live lock this host cannot check (another
 * host's: {@linkcode holderHost}), with the way out — the words of a
 * sweep's `held` cell and of a run's `held` state: `pid N on host H (boot
 * B), which this host cannot check; if no run writes there, delete
 * DIR/.lock`; undefined where the holder is this host's.
 *
 * @param holder The lock's holder, as written.
 * @param lockPath The lock file.
 * @returns The words, or undefined.
 *
 * @example
 * ```ts
 * import { heldByWords } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const boot = "5f3c9a0e-0000-4000-8000-000000000001";
 * const other = `not-${Deno.hostname()}`;
 * assertEquals(
 *   heldByWords({ pid: 7, host: boot, hostname: other }, "runs/a/.lock"),
 *   `pid 7 on host ${other} (boot ${boot}), which this host cannot check; if no run writes there, delete runs/a/.lock`,
 * );
 * assertEquals(heldByWords({ pid: 7 }, "runs/a/.lock"), undefined);
 * ```
 */
export function heldByWords(
  holder: LockHolder,
  lockPath: string,
): string | undefined {
  const host = holderHost(holder);
  return host === undefined
    ? undefined
    : `pid ${holder.pid} on ${host}, which this host cannot check; if no run writes there, delete ${lockPath}`;
}

/**
 * A refusal's words for a live lock this host cannot check: where it runs
 * and why that cannot be told, and when deleting it is right; undefined
 * where it is this host's.
 */
function elsewhere(
  holder: LockHolder,
): { there: string; gone: string } | undefined {
  const there = holderHost(holder);
  if (there === undefined) return undefined;
  if (markHost(holder) === "another" && holder.hostname === SELF.hostname) {
    // This host's name and another boot, since this host booted.
    return {
      there:
        `on ${there}, another machine of this host's name (this one's boot is ${SELF.host})`,
      gone: "that machine is gone or was rebooted since",
    };
  }
  if (markHost(holder) === "another") {
    return {
      there: `on ${there}, not this one (${SELF.hostname})`,
      gone: "that host is gone or was rebooted since",
    };
  }
  // Another boot, a host name unknown on one side: this host rebooted, or
  // another host — which cannot be told.
  return {
    there: `on ${there}, not this boot (${
      SELF.host ?? "unknown"
    }) — this host before a reboot or another host, which cannot be told with ${
      holder.hostname === undefined ? "its" : "this host's"
    } name unknown`,
    gone: "this host was rebooted since, or that host is gone",
  };
}

function shorten(command: string): string {
  return command.length > 120 ? `${command.slice(0, 117)}…` : command;
}

/**
 * How to continue a run whose configuration differs from the command's only
 * where its preset has moved since it began ({@linkcode PRESET_MOVES}: the
 * run holds a value the preset held before, the command the preset's value
 * now): "the tiny preset's --adam-beta2 moved since this run began: pass
 * --adam-beta2 0.95 to continue it, or "; else "".
 */
function movedSince(saved: ExperimentConfig, now: ExperimentConfig): string {
  if (saved.preset !== now.preset) return "";
  const moved = (Object.entries(PRESET_MOVES[now.preset] ?? {}) as [
    OptionKey,
    readonly unknown[],
  ][]).filter(([k, before]) =>
    saved[k] !== now[k] && before.includes(saved[k]) &&
    now[k] === PRESETS[now.preset][k]
  ).map(([k]) => k);
  if (moved.length === 0) return "";
  // Only the moved options differ: the rest of the command is the run's.
  const then = {
    ...now,
    ...Object.fromEntries(moved.map((k) => [k, saved[k]])),
  };
  if (configDiff(saved, then as ExperimentConfig) !== "") return "";
  return `the ${now.preset} preset's ${
    moved.map((k) => `--${flagOf(k)}`).join(" and ")
  } moved since this run began: pass ${
    moved.map((k) => `--${flagOf(k)} ${saved[k]}`).join(" ")
  } to continue it, or `;
}
