import { assert, assertEquals } from "@std/assert";
import { wgslSourceHash, wgslSources } from "./_wgsl_sources.ts";
import { WGSL_SHA256 } from "./wgsl_hash.ts";

Deno.test("WGSL_SHA256 is the hash of the committed WGSL sources", async () => {
  const names = (await wgslSources()).map((s) => s.name);
  // The rule finds the kernel files without a list (these hold the shaders).
  for (const name of ["_wgsl.ts", "_attention_wgsl.ts", "matmul.ts"]) {
    assert(names.includes(name), names.join(" "));
  }
  assert(
    !names.includes("wgsl_hash.ts") && !names.includes("_wgsl_sources.ts") &&
      !names.some((n) => n.endsWith("_test.ts")),
  );
  const hash = await wgslSourceHash();
  assertEquals(
    WGSL_SHA256,
    hash,
    `webgpu's WGSL sources changed: set WGSL_SHA256 in webgpu/wgsl_hash.ts to "${hash}"`,
  );
});
