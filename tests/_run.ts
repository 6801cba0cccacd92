// Helpers to run the command-line tools as a user would, in a subprocess.
import { assertEquals } from "@std/assert";
import { pathExists } from "@d3pm/core";

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Experiment flags that keep evaluation to seconds (4 test blocks, 32 generated tokens). */
export const FAST_EVAL: readonly string[] = [
  "--eval-blocks",
  "4",
  "--elbo-samples",
  "1",
  "--gen-tokens",
  "32",
  "--gen-steps",
  "4",
];

export const ROOT: string = new URL("..", import.meta.url).pathname;

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
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}examples/experiment.ts`, ...args, "--out", out],
    cwd: ROOT,
    env,
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
  if (!exited) child.kill("SIGKILL");
  const status = await child.status;
  if (!seen) {
    throw new Error(
      exited
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
