// Helpers to run the command-line tools as a user would, in a subprocess.
import { assertEquals } from "@std/assert";
import { pathExists } from "@d3pm/core";
import { tempDir } from "@d3pm/core/testing";

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * {@linkcode FAST_EVAL} for a run of the AR model alone: the bound's draws
 * and the unmasking steps are the denoisers' options, refused without one
 * (recorded and never used).
 */
export const AR_FAST_EVAL: readonly string[] = [
  "--eval-blocks",
  "4",
  "--gen-tokens",
  "32",
];

/** The denoisers' part of {@linkcode FAST_EVAL}: one bound draw, 4 unmasking steps. */
export const DENOISER_FAST_EVAL: readonly string[] = [
  "--elbo-samples",
  "1",
  "--gen-steps",
  "4",
];

/** Experiment flags that keep evaluation to seconds (4 test blocks, 32 generated tokens). */
export const FAST_EVAL: readonly string[] = [
  ...AR_FAST_EVAL,
  ...DENOISER_FAST_EVAL,
];

/**
 * {@linkcode FAST_EVAL} for runs whose figures no test reads (only the
 * folder, the training and the report's wording): no exact bound, and gen
 * PPL of the last timed batch alone, not of 64 rows more.
 */
export const NO_FIGURES_EVAL: readonly string[] = [
  ...FAST_EVAL,
  "--exact-blocks",
  "0",
  "--gen-samples",
  "0",
];

/** Whether `path` names anything (a link itself, not followed). */
export function exists(path: string): Promise<boolean> {
  return Deno.lstat(path).then(() => true, () => false);
}

export const ROOT: string = decodeURIComponent(
  new URL("..", import.meta.url).pathname,
);

/** Run `examples/<script>` with `args` (and `env` added to this process's). */
export async function runTool(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Ran> {
  return await runScript(`examples/${script}`, args, 600_000, env);
}

/**
 * Run any script of the repository; one that ignores its arguments and
 * starts a long job is killed after `timeoutMs`.
 */
export async function runScript(
  script: string,
  args: string[],
  timeoutMs = 600_000,
  env: Record<string, string> = {},
): Promise<Ran> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}${script}`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

/** The error line of a failed tool: its last stderr line. */
export function errorLine(r: Ran): string {
  return r.stderr.trim().split("\n").at(-1) ?? "";
}

/**
 * Start the experiment with `args` into `out`, SIGKILL it once
 * `metrics.jsonl` contains `marker`, and make sure the kill landed mid-run:
 * the run must still be going when the marker appears (a run that finishes
 * first, or never writes the marker within `timeoutMs`, is an error), it
 * must die of the signal, and it must have written no results — otherwise
 * a "resume gives the same results" test would test nothing.
 */
export async function killAt(
  args: string[],
  out: string,
  marker: string,
  timeoutMs = 600_000,
  env: Record<string, string> = {},
): Promise<void> {
  // A killed process cannot remove what it made in the temporary folder
  // (its XDG_RUNTIME_DIR): it gets a folder of its own, removed here.
  await using tmp = await tempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}examples/experiment.ts`, ...args, "--out", out],
    cwd: ROOT,
    env: { TMPDIR: tmp.path, ...env },
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + timeoutMs;
  let seen = false;
  while (!seen && !exited && Date.now() < deadline) {
    const text = await Deno.readTextFile(`${out}/metrics.jsonl`).catch(() =>
      ""
    );
    seen = text.includes(marker);
    if (!seen) await new Promise((r) => setTimeout(r, 25));
  }
  // Whether the run had ended by itself, before it was killed here.
  const endedFirst = exited;
  if (!exited) child.kill("SIGKILL");
  const status = await child.status;
  if (!seen) {
    throw new Error(
      endedFirst
        ? `the run ended (exit ${status.code}) before ${marker} was logged: nothing was killed`
        : `${marker} was not logged within ${timeoutMs} ms`,
    );
  }
  if (status.signal !== "SIGKILL") {
    throw new Error(
      `the run ended (exit ${status.code}) before it could be killed at ${marker}`,
    );
  }
  if (await Deno.stat(`${out}/results.json`).then(() => true, () => false)) {
    throw new Error(`the run killed at ${marker} had already written results`);
  }
}

/**
 * Start `examples/<script>` with `args`, send it `signal` (default
 * SIGKILL) once `seen()` holds, and make sure it landed mid-run, as
 * {@linkcode killAt} does: the tool must still be going when `seen()`
 * first holds (one that ends first, or never gets there within
 * `timeoutMs`, is an error) and must end by the signal (killed by it, or
 * its handler's exit 128 + the signal's number). Its output, for what a
 * signal handler printed.
 */
export async function killWhen(
  script: string,
  args: string[],
  seen: () => Promise<boolean>,
  options: { signal?: "SIGKILL" | "SIGINT"; timeoutMs?: number } = {},
): Promise<Ran> {
  const { signal = "SIGKILL", timeoutMs = 600_000 } = options;
  await using tmp = await tempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}examples/${script}`, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", TMPDIR: tmp.path },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exited = false;
  const output = child.output();
  output.then(() => exited = true, () => exited = true);
  const deadline = Date.now() + timeoutMs;
  let hit = false;
  while (!hit && !exited && Date.now() < deadline) {
    hit = await seen();
    if (!hit) await new Promise((r) => setTimeout(r, 10));
  }
  if (!exited) child.kill(hit ? signal : "SIGKILL");
  const out = await output;
  const dec = new TextDecoder();
  const ran = {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
  if (!hit) {
    throw new Error(
      exited
        ? `${script} ended (exit ${out.code}) before the awaited state: nothing was killed\n${ran.stderr}`
        : `${script} did not reach the awaited state within ${timeoutMs} ms`,
    );
  }
  const byHandler = { SIGINT: 130, SIGKILL: -1 }[signal];
  if (out.signal !== signal && out.code !== byHandler) {
    throw new Error(
      `${script} ended (exit ${out.code}) before it could be sent ${signal}\n${ran.stderr}`,
    );
  }
  return ran;
}

/**
 * Each `[args, line]` of `cases`: the experiment with `base`, `args` and
 * `--out out` exits 1 with exactly `line` as its one stderr line, and
 * creates nothing at `out`.
 */
export async function assertRefused(
  base: readonly string[],
  cases: readonly (readonly [readonly string[], string])[],
  out: string,
): Promise<void> {
  for (const [args, line] of cases) {
    const r = await runTool("experiment.ts", [...base, ...args, "--out", out]);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(errorLine(r), line);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    assertEquals(await pathExists(out), false, `${args.join(" ")}: ${out}`);
  }
}

/**
 * A copy of the folder `src` (its files and folders, nothing else) in a new
 * temporary folder: a test that changes a shared run works on its own copy,
 * as if it had made the run itself.
 */
export async function copyFolder(src: string): Promise<string> {
  const to = await Deno.makeTempDir();
  await copyInto(src, to);
  return to;
}

async function copyInto(src: string, to: string): Promise<void> {
  for await (const e of Deno.readDir(src)) {
    if (e.isDirectory) {
      await Deno.mkdir(`${to}/${e.name}`);
      await copyInto(`${src}/${e.name}`, `${to}/${e.name}`);
    } else if (e.isFile) {
      await Deno.copyFile(`${src}/${e.name}`, `${to}/${e.name}`);
    } else {
      throw new Error(`${src}/${e.name}: not a file or a folder`);
    }
  }
}

/**
 * Made once for the test file, on its first use: `make(tempDir)`. The
 * folders it returns, and every folder it made with `tempDir` (registered
 * when made, so a `make` that fails half-way leaves none behind), are
 * removed when the test process ends. The tests that share it only read it,
 * or work on a {@linkcode copyFolder} of it.
 */
export function once<T extends Record<string, string>>(
  make: (
    tempDir: (options?: Deno.MakeTempOptions) => Promise<string>,
  ) => Promise<T>,
): () => Promise<T> {
  let made: Promise<T> | undefined;
  const folders = new Set<string>();
  const tempDir = async (options?: Deno.MakeTempOptions) => {
    const dir = await Deno.makeTempDir(options);
    folders.add(dir);
    return dir;
  };
  return () => {
    if (made === undefined) {
      globalThis.addEventListener("unload", () => {
        for (const dir of folders) {
          try {
            Deno.removeSync(dir, { recursive: true });
          } catch {
            // already gone
          }
        }
      });
      made = make(tempDir);
      made.then((out) => {
        for (const dir of Object.values(out)) folders.add(dir);
      }, () => {});
    }
    return made;
  };
}

/**
 * A micro serial epochs study (U 2K and 4K, a two-run sweep; ~10 s): the
 * study the interrupt and lock tests run, as `deno task study` arguments.
 */
export const MICRO_EPOCHS_STUDY: readonly string[] = [
  "epochs",
  "--preset",
  "micro",
  "--u",
  "2000,4000",
  "--tokens",
  "20000",
  "--dropouts",
  "0,0.1",
  "--decays",
  "0",
];
