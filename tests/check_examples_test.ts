// tools/check_examples.ts, the `deno task ok` check that every exported
// value has an @example, on two fixture modules.
import { assert, assertEquals } from "@std/assert";
import { runScript } from "./_run.ts";

const FIXTURES = "tests/testdata/check_examples";
const check = (...modules: string[]) =>
  runScript("tools/check_examples.ts", modules, 60_000);

Deno.test("check_examples passes a module whose every exported value (a re-exported one too) has an example, and asks none of its types", async () => {
  const r = await check(`${FIXTURES}/complete.ts`);
  assertEquals([r.code, r.stdout, r.stderr], [0, "", ""]);
});

Deno.test("check_examples names a class whose example is only on a method and a re-exported constant with none, not the types, and exits 1", async () => {
  const r = await check(`${FIXTURES}/complete.ts`, `${FIXTURES}/missing.ts`);
  assertEquals(r.code, 1, r.stderr);
  assertEquals(r.stdout.trim().split("\n").sort(), [
    `${FIXTURES}/missing.ts: Circle`,
    `${FIXTURES}/missing.ts: UNIT_CIRCLE`,
  ]);
  assert(r.stderr.includes("2 exported value(s) lack an @example"), r.stderr);
});

Deno.test("check_examples refuses no modules, and a module that does not exist, in one line with exit 2", async () => {
  const none = await check();
  assertEquals(none.code, 2);
  assert(none.stderr.startsWith("usage: "), none.stderr);
  const absent = await check(`${FIXTURES}/absent.ts`);
  assertEquals(absent.code, 2);
  const lines = absent.stderr.trim().split("\n");
  assertEquals(lines.length, 1, absent.stderr);
  assert(lines[0].startsWith("error: deno doc --json cannot read"), lines[0]);
  assert(lines[0].includes("absent.ts"), lines[0]);
});

// `deno task ok` runs this over the workspace, but CI (.ci/run) runs only the
// tests: a new export without an example went unseen for 97 commits
// (STUDY_WAIT_MS). About 4 s.
Deno.test("check_examples passes every published entry point of the workspace (every exported value has an @example)", async () => {
  const r = await check("--workspace");
  assertEquals([r.code, r.stdout], [0, ""], r.stderr);
});
