// The GPU tasks' shell scripts (deno task gpu:check, gpu:rehearse,
// gpu:bundle) answer -h/--help with their header comment and refuse another
// option in one line, before any work: `deno task gpu:rehearse --help` took
// --help for its OUT_DIR and began building the bundle into a folder of that
// name. Each script runs from a copy in a temporary folder (no tree, no
// gpu_run.sh beside it), so a regression fails there instead of working.

import { fromFileUrl } from "@d3pm/core";
import { assert, assertEquals } from "@std/assert";

const TOOLS = fromFileUrl(new URL("../tools/", import.meta.url));
const SCRIPTS = [
  ["gpu_check.sh", "The GPU check on a machine that has Deno"],
  ["gpu_rehearse.sh", "Rehearse the first GPU run here, on lavapipe"],
  ["offline_bundle.sh", "What a bare, air-gapped x86-64 Linux machine needs"],
] as const;

async function run(dir: string, script: string, args: string[]) {
  const out = await new Deno.Command("bash", {
    args: [`${dir}/tools/${script}`, ...args],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

for (const [script, first] of SCRIPTS) {
  Deno.test(`tools/${script}: -h/--help prints its header and exits 0; an unknown option is refused in one line`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${dir}/tools`);
      await Deno.copyFile(`${TOOLS}${script}`, `${dir}/tools/${script}`);
      for (const flag of ["-h", "--help"]) {
        const r = await run(dir, script, [flag]);
        assertEquals(r.code, 0, r.stderr);
        assert(r.stdout.startsWith(`${first}`), r.stdout);
        assert(!r.stdout.includes("set -"), "the header only: " + r.stdout);
        assert(/\[OUT_DIR\]/.test(r.stdout), r.stdout);
      }
      const bad = await run(dir, script, ["--bogus"]);
      assertEquals(bad.code, 2, bad.stderr);
      assertEquals(bad.stdout, "");
      const name = script.slice(0, -3);
      assert(
        bad.stderr.startsWith(`${name}: unknown option --bogus (accepted: `) &&
          bad.stderr.trimEnd().split("\n").length === 1,
        bad.stderr,
      );
      if (script !== "gpu_check.sh") {
        const two = await run(dir, script, ["a", "b"]);
        assertEquals(two.code, 2, two.stderr);
        assertEquals(
          two.stderr.trim(),
          `${name}: one argument at most, OUT_DIR (given: a b)`,
        );
      }
      // Nothing was made: no folder named after a flag, no runs/ or dist/.
      const made = [];
      for await (const e of Deno.readDir(dir)) made.push(e.name);
      assertEquals(made, ["tools"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
