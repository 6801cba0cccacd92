// killAt's own guard: a kill-and-resume test is only worth something if the
// kill landed mid-run, so killAt must refuse every other outcome. Each case
// starts examples/experiment.ts but never trains: it ends at once
// (`--help`), is killed within a second, or finds its marker already logged.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { tempDir } from "@d3pm/core/testing";
import { killAt } from "./_run.ts";

const MARKER = '"model":"d3pm","seed":0,"step":3';

Deno.test("killAt throws when the run ends before its marker is logged: nothing was killed", async () => {
  await using tmp = await tempDir();
  await assertRejects(
    () => killAt(["--help"], `${tmp.path}/run`, MARKER),
    Error,
    `the run ended (exit 0) before ${MARKER} was logged: nothing was killed`,
  );
});

Deno.test("killAt throws when the marker is not logged within its time, and kills the run", async () => {
  await using tmp = await tempDir();
  const t0 = Date.now();
  const e = await assertRejects(
    () => killAt(["--preset", "micro"], `${tmp.path}/run`, "never logged", 300),
    Error,
  );
  // The run was killed here at the time limit, not ended by itself: the
  // message names the limit (it named "exit 137 … nothing was killed" while
  // killAt read whether the run had ended after killing it).
  assertEquals(e.message, "never logged was not logged within 300 ms");
  assert(Date.now() - t0 < 30_000, "the run was not killed at its time");
});

Deno.test("killAt throws when the run it killed had already written results, and returns after a kill that landed", async () => {
  await using tmp = await tempDir();
  // The marker is in metrics.jsonl before the run starts: the first poll
  // sees it and kills the run while it is still loading.
  const out = `${tmp.path}/run`;
  await Deno.mkdir(out);
  await Deno.writeTextFile(`${out}/metrics.jsonl`, `{${MARKER}}\n`);
  await killAt(["--preset", "micro"], out, MARKER);
  await Deno.writeTextFile(`${out}/results.json`, "{}");
  await assertRejects(
    () => killAt(["--preset", "micro"], out, MARKER),
    Error,
    `the run killed at ${MARKER} had already written results`,
  );
});
