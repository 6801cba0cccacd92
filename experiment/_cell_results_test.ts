import { assertEquals, assertStringIncludes } from "@std/assert";
import { BROKEN_RESULTS, NOT_FINISHED_EXIT } from "./_cell_results.ts";

/** Run `_cell_results.ts` as the job script does, with `args`. */
async function check(
  ...args: string[]
): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-check",
      new URL("./_cell_results.ts", import.meta.url).href,
      ...args,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("_cell_results.ts as a program: exit 0 finished, 3 not (a broken file moved aside), 2 when it cannot tell or is not given one folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assertEquals((await check(dir)).code, NOT_FINISHED_EXIT, "no results.json");
    await Deno.writeTextFile(`${dir}/results.json`, "{}");
    assertEquals((await check(dir)).code, 0, "finished");
    await Deno.writeTextFile(`${dir}/results.json`, "[]");
    const moved = await check(dir);
    assertEquals(
      moved.code,
      NOT_FINISHED_EXIT,
      "broken: moved aside, the cell runs again",
    );
    assertStringIncludes(
      moved.stderr,
      `moved it aside to ${dir}/${BROKEN_RESULTS}`,
    );
    assertEquals(await Deno.readTextFile(`${dir}/${BROKEN_RESULTS}`), "[]");
    // The aside name taken by a folder with a file in it: rename fails even
    // as root, and a cell whose broken file stays must not run.
    await Deno.remove(`${dir}/${BROKEN_RESULTS}`);
    await Deno.mkdir(`${dir}/${BROKEN_RESULTS}`);
    await Deno.writeTextFile(`${dir}/${BROKEN_RESULTS}/x`, "");
    await Deno.writeTextFile(`${dir}/results.json`, "[]");
    const stuck = await check(dir);
    assertEquals(stuck.code, 2, stuck.stderr);
    assertStringIncludes(stuck.stderr, "; cannot move it aside (");
    assertEquals(await Deno.readTextFile(`${dir}/results.json`), "[]");
    for (const args of [[], [dir, dir]]) {
      const usage = await check(...args);
      assertEquals(usage.code, 2, `${args.length} arguments`);
      assertStringIncludes(
        usage.stderr,
        "usage: deno run -A _cell_results.ts CELL_FOLDER",
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
