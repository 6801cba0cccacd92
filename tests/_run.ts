// Helpers to run the command-line tools as a user would, in a subprocess.
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export const ROOT: string = new URL("..", import.meta.url).pathname;

export async function runTool(script: string, args: string[]): Promise<Ran> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}examples/${script}`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
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
