// The page's bundle built by two processes' worth of callers at once (the
// test lanes of `deno task test` may both find it stale): each bundles in a
// folder of its own and renames whole files into place.
import { assert, assertEquals } from "@std/assert";
import { buildBundle, DIST } from "./page.ts";

Deno.test("two buildBundle() calls at once both succeed, leave one whole app.js with its hash and no work folders", async () => {
  const built = await Promise.all([
    buildBundle({ force: true }),
    buildBundle({ force: true }),
  ]);
  assertEquals(built.map((b) => b.rebuilt), [true, true]);
  const js = await Deno.readTextFile(`${DIST}/app.js`);
  assert(js.length > 100_000, `app.js is ${js.length} bytes`);
  // Up to date afterwards: the hash beside it is the sources'.
  assertEquals((await buildBundle()).rebuilt, false);
  const left: string[] = [];
  for await (const e of Deno.readDir(DIST)) left.push(e.name);
  assertEquals(left.filter((n) => n.startsWith(".bundling-")), []);
});
