// The refactors must not change training: a short micro run's per-step
// losses are pinned, bit for bit, to those the code gave before them.
import { assertEquals } from "@std/assert";
import { runTool } from "./_run.ts";

const PINNED = JSON.parse(
  await Deno.readTextFile(
    new URL("testdata/pinned_losses.json", import.meta.url),
  ),
) as { command: string; ar: number[]; d3pm: number[] };

Deno.test("a short micro run trains to exactly the pinned losses of both models", async () => {
  const out = await Deno.makeTempDir();
  const r = await runTool("experiment.ts", [
    ...PINNED.command.split(" "),
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.stderr);
  const rows = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim()
    .split("\n").map((l) => JSON.parse(l)).filter((m) => "loss" in m);
  for (const model of ["ar", "d3pm"] as const) {
    assertEquals(
      rows.filter((m) => m.model === model).map((m) => m.loss),
      PINNED[model],
      model,
    );
  }
  await Deno.remove(out, { recursive: true });
});
