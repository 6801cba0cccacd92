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
 * <out>/seed-<s>/<kind>/     (ar, d3pm, mlm, …) model.safetensors + config.json, process.json, checkpoint.safetensors
 * <out>/samples.txt, results.json, report.md, loss.svg, speed_quality.svg
 * <out>/import.json          what an imported run was read from (`deno task import`)
 * ```
 *
 * @module
 */
import { removeStaleTemps, writeFileAtomic } from "@d3pm/core";
import { configDiff } from "./config.ts";
import { ConfigError, type ExperimentConfig } from "./options.ts";

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
   * needs the same configuration (but for the resumable options); a
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

  /**
   * The process writing the run now, if any: the pid in the lock when that
   * process is alive (a stale lock counts as none).
   *
   * @returns The pid, or undefined.
   */
  async writer(): Promise<number | undefined> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.lockPath);
    } catch {
      return undefined;
    }
    const pid = Number(text.trim());
    return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
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
