// Helpers to run the command-line tools as a user would, in a subprocess.
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export const ROOT: string = new URL("..", import.meta.url).pathname;

/** Run `examples/<script>` with `args`. */
export async function runTool(script: string, args: string[]): Promise<Ran> {
  return await runScript(`examples/${script}`, args);
}

/**
 * Run any script of the repository; one that ignores its arguments and
 * starts a long job is killed after `timeoutMs`.
 */
export async function runScript(
  script: string,
  args: string[],
  timeoutMs = 600_000,
): Promise<Ran> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}${script}`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
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
