/**
 * The run folder: every path of a run, and the rules that keep it honest —
 * one process at a time (a lock with its pid), a fresh run never mixes with
 * an earlier one, a resumed run only continues the configuration it started
 * with, and nothing is written before the run is known to be valid.
 *
 * ```text
 * <out>/config.json          the resolved configuration (written atomically, once the run starts)
 * <out>/metrics.jsonl        per-step training metrics (append-only)
 * <out>/tokenizer.json       the BPE the run trained (bpe tokenizer only)
 * <out>/seed-<s>/<kind>/     (ar, d3pm, mlm) model.safetensors + config.json, process.json, checkpoint.safetensors
 * <out>/samples.txt, results.json, report.md, loss.svg, speed_quality.svg
 * ```
 *
 * @module
 */
import { removeStaleTemps, writeFileAtomic } from "@d3pm/core";
import {
  ADDED_KEYS,
  ConfigError,
  type ExperimentConfig,
  kebab,
  type ModelKind,
  RESUMABLE_KEYS,
} from "./config.ts";

export type { ModelKind } from "./config.ts";

/**
 * The paths of one run and its rules.
 *
 * @example A folder holds one run: a second fresh run is refused, a resume is not
 * ```ts
 * import { ConfigError, resolveConfig, RunFolder } from "@d3pm/experiment";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const out = `${await Deno.makeTempDir()}/run`;
 * const folder = new RunFolder(out);
 * assertEquals(folder.checkpointPath(0, "d3pm"), `${out}/seed-0/d3pm/checkpoint.safetensors`);
 * const config = resolveConfig({ preset: "micro", out });
 * await folder.check(config); // an empty folder: fine
 * const release = await folder.start(config); // takes the lock, writes config.json
 * assertEquals(await folder.savedConfig(), config);
 * await assertRejects(() => folder.lock(), ConfigError, "in use by another run");
 * release();
 * await assertRejects(() => folder.check(config), ConfigError, "already holds a run");
 * await folder.check({ ...config, resume: true }); // the same configuration may continue
 * await assertRejects(
 *   () => folder.check({ ...config, resume: true, steps: 5 }),
 *   ConfigError,
 *   "--steps is 5 but the run used 800",
 * );
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export class RunFolder {
  /**
   * A run folder at `dir` (nothing is touched until a method is called).
   *
   * @param dir The folder.
   */
  constructor(readonly dir: string) {}

  /** The resolved configuration. */
  get configPath(): string {
    return `${this.dir}/config.json`;
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
  /** The lock of the process writing the run. */
  get lockPath(): string {
    return `${this.dir}/.lock`;
  }
  /**
   * A model's folder.
   *
   * @param seed The seed.
   * @param kind `ar`, `d3pm` or `mlm`.
   * @returns Its path.
   */
  modelDir(seed: number, kind: ModelKind): string {
    return `${this.dir}/seed-${seed}/${kind}`;
  }
  /**
   * A model's training checkpoint.
   *
   * @param seed The seed.
   * @param kind `ar`, `d3pm` or `mlm`.
   * @returns Its path.
   */
  checkpointPath(seed: number, kind: ModelKind): string {
    return `${this.modelDir(seed, kind)}/checkpoint.safetensors`;
  }
  /**
   * A model's process description (`process.toJSON()`).
   *
   * @param seed The seed.
   * @param kind `ar`, `d3pm` or `mlm`.
   * @returns Its path.
   */
  processPath(seed: number, kind: ModelKind): string {
    return `${this.modelDir(seed, kind)}/process.json`;
  }

  /**
   * The configuration the run was started with.
   *
   * @returns It, or undefined when the folder holds none.
   * @throws {ConfigError} When `config.json` exists but is not JSON.
   */
  async savedConfig(): Promise<ExperimentConfig | undefined> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.configPath);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw new ConfigError(`Cannot read ${this.configPath}: ${e}`);
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new ConfigError(`${this.configPath} is not valid JSON`);
    }
  }

  /**
   * Check, before anything is written, that `config` may run here: a resume
   * needs the same configuration (but for {@linkcode RESUMABLE_KEYS}); a
   * fresh run needs an empty folder, or `force` (the old run is then moved
   * aside by {@linkcode RunFolder.start}).
   *
   * @param config The resolved configuration.
   * @throws {ConfigError} A one-line reason and what to do instead.
   */
  async check(config: ExperimentConfig): Promise<void> {
    const saved = await this.savedConfig();
    if (config.resume) {
      if (!saved) return; // nothing to resume: a fresh start
      const diff = configDiff(saved, config);
      if (diff) {
        throw new ConfigError(
          `Cannot resume ${this.dir}: ${diff} (start a new run with --out DIR, or --force to replace this one)`,
        );
      }
      return;
    }
    if (await this.#hasRun() && !config.force) {
      throw new ConfigError(
        `${this.dir} already holds a run: pass --resume to continue it, --force to replace it (it is moved aside), or --out DIR for a new folder`,
      );
    }
  }

  async #hasRun(): Promise<boolean> {
    try {
      for await (const e of Deno.readDir(this.dir)) {
        if (e.name !== ".lock") return true;
      }
      return false;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      if (e instanceof Deno.errors.NotADirectory) {
        throw new ConfigError(`--out ${this.dir} is a file, not a folder`);
      }
      throw e;
    }
  }

  /**
   * Start writing: take the lock, move an earlier run aside (`force`),
   * remove temporary files a killed process left, write `config.json`
   * atomically.
   *
   * @param config The checked configuration.
   * @returns A function that releases the lock.
   * @throws {ConfigError} When another live process holds the lock.
   */
  async start(config: ExperimentConfig): Promise<() => void> {
    if (config.force && !config.resume && await this.#hasRun()) {
      const aside = `${this.dir}.replaced-${
        new Date().toISOString().replace(/[:.]/g, "-")
      }`;
      await Deno.rename(this.dir, aside);
      console.error(`note: moved the earlier run in ${this.dir} to ${aside}`);
    }
    await Deno.mkdir(this.dir, { recursive: true });
    const release = await this.lock();
    try {
      for (const path of await removeStaleTemps(this.dir)) {
        console.error(`note: removed ${path}, left by an interrupted write`);
      }
      await writeFileAtomic(
        this.configPath,
        JSON.stringify(config, null, 2) + "\n",
      );
    } catch (e) {
      release();
      throw e;
    }
    return release;
  }

  /**
   * Take the folder's lock: a file holding this process's pid, created
   * exclusively. A lock whose process is gone is stale and taken over.
   *
   * @returns A function that releases it.
   * @throws {ConfigError} When a live process holds it.
   */
  async lock(): Promise<() => void> {
    const mine = `${Deno.pid}\n`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await Deno.writeTextFile(this.lockPath, mine, { createNew: true });
        let held = true;
        return () => {
          if (!held) return;
          held = false;
          try {
            if (Deno.readTextFileSync(this.lockPath) === mine) {
              Deno.removeSync(this.lockPath);
            }
          } catch { /* already gone */ }
        };
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
      const pid = Number((await Deno.readTextFile(this.lockPath)).trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw new ConfigError(
          `${this.dir} is in use by another run (pid ${pid}); wait for it, or use --out DIR`,
        );
      }
      console.error(
        `note: ${this.lockPath} was left by a process that is gone (pid ${pid}); taking it over`,
      );
      await Deno.remove(this.lockPath).catch(() => {});
    }
    throw new ConfigError(
      `Cannot lock ${this.dir}: another run keeps taking it`,
    );
  }
}

function alive(pid: number): boolean {
  if (pid === Deno.pid) return true;
  try {
    // Signal 0 would be ideal; Deno has none, so ask the OS for the process.
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return Deno.build.os !== "linux"; // without /proc, assume it lives
  }
}

/**
 * The differences that forbid a resume, as one line, or "" when none.
 * Keys in {@linkcode RESUMABLE_KEYS} are ignored.
 *
 * @param saved The configuration the run started with.
 * @param now The configuration asked for now.
 * @returns One `--key is X but the run used Y` clause per difference,
 * joined by `; `, or the empty string.
 *
 * @example
 * ```ts
 * import { configDiff, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const saved = resolveConfig({ preset: "micro" });
 * assertEquals(configDiff(saved, { ...saved, out: "elsewhere" }), "");
 * assertEquals(
 *   configDiff(saved, { ...saved, steps: 100, tokenizer: "gpt2" }),
 *   '--tokenizer is "gpt2" but the run used "byte"; --steps is 100 but the run used 800',
 * );
 * ```
 */
export function configDiff(
  saved: ExperimentConfig,
  now: ExperimentConfig,
): string {
  const keys = new Set([...Object.keys(saved), ...Object.keys(now)]);
  const diffs: string[] = [];
  for (const k of keys) {
    if (RESUMABLE_KEYS.includes(k as keyof ExperimentConfig)) continue;
    const a = k in saved
      ? (saved as unknown as Record<string, unknown>)[k]
      : (ADDED_KEYS as Record<string, unknown>)[k];
    const b = (now as unknown as Record<string, unknown>)[k];
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      diffs.push(
        `--${kebab(k)} is ${JSON.stringify(b)} but the run used ${
          JSON.stringify(a)
        }`,
      );
    }
  }
  return diffs.join("; ");
}

/**
 * The configuration as it enters checkpoints: without the keys that may
 * change on resume, so a checkpoint only matches the training it belongs to.
 *
 * @param config The resolved configuration.
 * @returns A copy without {@linkcode RESUMABLE_KEYS}.
 *
 * @example
 * ```ts
 * import { resolveConfig, trainingFingerprint } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const first = resolveConfig({ preset: "micro", out: "runs/a" });
 * const resumed = resolveConfig({ preset: "micro", out: "runs/b", resume: true });
 * assertEquals(trainingFingerprint(first), trainingFingerprint(resumed));
 * assertEquals("out" in trainingFingerprint(first), false);
 * assertEquals(trainingFingerprint(first).steps, 800);
 * ```
 */
export function trainingFingerprint(
  config: ExperimentConfig,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const k of RESUMABLE_KEYS) delete out[k];
  return out;
}
