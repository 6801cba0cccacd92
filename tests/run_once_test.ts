// tests/_run.ts's once(): a shared fixture whose making fails half-way
// leaves no folder behind (it used to register its folders for removal only
// once make() had succeeded).
import { assert, assertRejects } from "@std/assert";
import { exists, once } from "./_run.ts";

Deno.test("once(): the folders a failed make() made with tempDir are removed at unload, and a made fixture's too", async () => {
  let half = "";
  const failing = once(async (tempDir) => {
    half = await tempDir({ prefix: "once-half-" });
    throw new Error("the run failed");
  });
  await assertRejects(() => failing(), Error, "the run failed");
  let whole = "";
  const made = once(async (tempDir) => {
    whole = await tempDir({ prefix: "once-whole-" });
    return { whole };
  });
  assert((await made()).whole === whole);
  assert(await exists(half) && await exists(whole));
  // What the test process does when it ends.
  globalThis.dispatchEvent(new Event("unload"));
  assert(!await exists(half), `${half} left behind`);
  assert(!await exists(whole), `${whole} left behind`);
});
