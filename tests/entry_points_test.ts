// tools/_entry_points.ts: the published entry points that `deno task ok`
// lints and checks for examples, read from each workspace member's exports.
import { assertEquals, assertThrows } from "@std/assert";
import { workspaceEntryPoints } from "../tools/_entry_points.ts";
import { ROOT } from "./_run.ts";

Deno.test("workspaceEntryPoints() lists every subpath export of every member, a string export too, and skips a member without exports", () => {
  const root = Deno.makeTempDirSync();
  try {
    const write = (path: string, json: unknown) => {
      Deno.mkdirSync(`${root}/${path}`.replace(/\/[^/]+$/, ""), {
        recursive: true,
      });
      Deno.writeTextFileSync(`${root}/${path}`, JSON.stringify(json));
    };
    write("deno.json", { workspace: ["./a", "./b", "./tools"] });
    write("a/deno.json", {
      name: "@x/a",
      exports: { ".": "./mod.ts", "./deep": "./sub/deep.ts" },
    });
    write("b/deno.json", { name: "@x/b", exports: "./b.ts" });
    write("tools/deno.json", {});
    assertEquals(workspaceEntryPoints(root), [
      "a/mod.ts",
      "a/sub/deep.ts",
      "b/b.ts",
    ]);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("workspaceEntryPoints() refuses a deno.json without a workspace in one line naming it", () => {
  const root = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${root}/deno.json`, "{}");
    assertThrows(
      () => workspaceEntryPoints(root),
      Error,
      `${root}/deno.json has no "workspace" array`,
    );
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("the repository's entry points include the subpaths `deno task ok` once missed, and the ok task reads them rather than a hand list", () => {
  const points = workspaceEntryPoints(ROOT);
  for (
    const p of [
      "core/mod.ts",
      "backend/blas_backend.ts",
      "backend/cblas.ts",
      "backend/fused_ops.ts",
      "backend/init_backend.ts",
      "eval/chart.ts",
      "webgpu/plan.ts",
      "cpu/profile.ts",
    ]
  ) {
    assertEquals(points.includes(p), true, `${p} missing from ${points}`);
  }
  const ok = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks.ok;
  assertEquals(ok.includes("deno run -A tools/doc_lint.ts"), true, ok);
  assertEquals(
    ok.includes("deno run -A tools/check_examples.ts --workspace"),
    true,
    ok,
  );
  assertEquals(ok.includes("doc --lint core/"), false, ok);
});
