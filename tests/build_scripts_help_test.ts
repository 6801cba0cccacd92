// The build tasks written in TypeScript (deno task bundle, deno task
// build:cpu) answer -h/--help with what they do and refuse anything else in
// one line, before any work: both took every argument as "build now". They
// run here without write or subprocess permission, so a regression that
// starts building fails with a permission error instead of working.

import { fromFileUrl } from "@d3pm/core";
import { assert, assertEquals, assertStringIncludes } from "@std/assert";

const ROOT = fromFileUrl(new URL("..", import.meta.url));

async function run(script: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-read",
      "--allow-env",
      script,
      ...args,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

const SCRIPTS = [
  ["dashboard/bundle.ts", "deno task bundle", "--forse"],
  ["cpu/_build.ts", "deno task build:cpu", "--force"],
] as const;

for (const [script, task, wrong] of SCRIPTS) {
  Deno.test(`${task}: -h/--help says what it does and builds nothing; ${wrong} is refused in one line`, async () => {
    for (const help of ["-h", "--help"]) {
      const r = await run(script, [help]);
      assertEquals(r.code, 0, r.stderr);
      assert(r.stdout.startsWith(task), r.stdout);
    }
    const r = await run(script, [wrong]);
    assertEquals(r.code, 2, r.stderr);
    const lines = r.stderr.trimEnd().split("\n");
    assertEquals(lines.length, 1, r.stderr);
    assert(lines[0].startsWith("error: "), lines[0]);
    assertStringIncludes(lines[0], wrong);
    assertEquals(r.stdout, "");
  });
}
