import { assertEquals, assertStringIncludes } from "@std/assert";
import { runLocal, sbatchScript, studySweep, type Sweep } from "./sweep.ts";

/** Three cells of a study: a (slow) and b in wave 0, c in wave 1. */
function study(dir: string): Sweep {
  return studySweep(
    dir,
    "examples/none.ts",
    [["a", 0], ["b", 0], ["c", 1]].map(([name, wave]) => ({
      name: name as string,
      values: { cell: name as string },
      out: `${dir}/${name}`,
      args: [name as string],
      wave: wave as number,
    })),
  );
}

Deno.test("runLocal() starts a later wave only when every cell of the earlier one has finished, and skips it after a failure", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sweep-waves-" });
  const order = `${dir}/order`;
  // Each cell sleeps (a longest), then appends its name.
  const experiment =
    `sh -c 'case "$1" in a) sleep 1;; esac; echo "$1" >> ${order}' cell`;
  const lines: string[] = [];
  const failed = await runLocal(study(dir), {
    jobs: 3,
    workdir: dir,
    experiment,
    log: (l) => lines.push(l),
  });
  assertEquals(failed, []);
  // c (wave 1) after both cells of wave 0, whichever of those ends first
  // (a sleeps, but a loaded machine can start b later still).
  const ran = (await Deno.readTextFile(order)).trim().split("\n");
  assertEquals(ran.length, 3);
  assertEquals(ran[2], "c");
  assertEquals(ran.slice(0, 2).sort(), ["a", "b"]);
  const bad = await runLocal(study(`${dir}/bad`), {
    jobs: 3,
    workdir: dir,
    experiment: "false",
    log: (l) => lines.push(l),
  });
  assertEquals(bad.map((c) => c.name), ["a", "b", "c"]);
  assertStringIncludes(
    lines.join("\n"),
    "cell c: not run (an earlier wave failed)",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sbatchScript() puts a later wave after a job: --dependency=afterok", () => {
  const s = study("/x/st");
  const text = sbatchScript(s, {
    workdir: "/repo",
    experiment: "deno run -A /repo/examples/none.ts",
    cells: [2],
    after: "123",
  });
  assertStringIncludes(text, "#SBATCH --array=2\n");
  assertStringIncludes(text, "#SBATCH --dependency=afterok:123\n");
});
