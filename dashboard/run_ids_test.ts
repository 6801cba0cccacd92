import { assertEquals } from "@std/assert";
import { findRuns, type SkippedFolder } from "./run_ids.ts";

const UUID = "0b5c2d3e-1f2a-4b3c-8d4e-5f6a7b8c9d0e";

Deno.test("findRuns() skips an import killed midway (<to>.<uuid>.partial), naming it, and lists the whole copies --force moved aside", async () => {
  const root = await Deno.makeTempDir();
  try {
    const folders = [
      "imp",
      `imp.${UUID}.partial`, // half-written: its config.json, no weights
      `imp.${UUID}.replaced`, // the earlier import, whole
      "main.replaced-2026-12-06T21-00-00-000Z", // a run moved aside, whole
      "sweep/cell.partial", // a user's name: not an import's temporary one
    ];
    for (const f of folders) {
      await Deno.mkdir(`${root}/${f}`, { recursive: true });
      await Deno.writeTextFile(`${root}/${f}/config.json`, "{}");
    }
    const skipped: SkippedFolder[] = [];
    assertEquals((await findRuns(root, { skipped })).map((r) => r.id), [
      "imp",
      `imp.${UUID}.replaced`,
      "main.replaced-2026-12-06T21-00-00-000Z",
      "sweep/cell.partial",
    ]);
    assertEquals(skipped, [{
      folder: `imp.${UUID}.partial`,
      reason:
        `folder "imp.${UUID}.partial" is not listed: an import or export that has not finished (interrupted, or still writing); once nothing writes it, remove it`,
    }]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
