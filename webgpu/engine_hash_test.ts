import { assert, assertEquals } from "@std/assert";
import { packageSourceHash } from "@d3pm/core/testing";
import { WEBGPU_ENGINE_SHA256 } from "./engine_hash.ts";

Deno.test("WEBGPU_ENGINE_SHA256 is the hash of the engine's committed sources, WGSL and host code", async () => {
  const { hash, names } = await packageSourceHash(
    new URL(".", import.meta.url),
    { leftOut: ["engine_hash.ts"] },
  );
  // The shaders, and the host code that picks tiles, packs uniforms and
  // orders dispatches: all of it decides the rounding.
  for (
    const name of [
      "_wgsl.ts",
      "_attention_wgsl.ts",
      "matmul.ts",
      "_recorder.ts",
      "_plan.ts",
      "_layout.ts",
      "_training.ts",
      "engine.ts",
    ]
  ) {
    assert(names.includes(name), `${name} not in ${names.join(" ")}`);
  }
  // Tests, test helpers and the hash's own file are not the engine.
  for (const name of ["engine_hash.ts", "_test_util.ts", "_parity_suite.ts"]) {
    assert(!names.includes(name), name);
  }
  assert(!names.some((n) => n.endsWith("_test.ts")));
  assertEquals(
    WEBGPU_ENGINE_SHA256,
    hash,
    `webgpu's sources changed: set WEBGPU_ENGINE_SHA256 in webgpu/engine_hash.ts to "${hash}"`,
  );
});
