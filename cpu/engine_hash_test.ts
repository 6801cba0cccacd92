import { assert, assertEquals } from "@std/assert";
import { packageSourceHash } from "@d3pm/core/testing";
import { CPU_ENGINE_SHA256 } from "./engine_hash.ts";

Deno.test("CPU_ENGINE_SHA256 is the hash of the engine's committed sources, kernels and host code", async () => {
  const { hash, names } = await packageSourceHash(
    new URL(".", import.meta.url),
    ["engine_hash.ts"],
  );
  // The kernels' module, and the host code that splits and orders them.
  for (
    const name of [
      "_wasm.ts",
      "_executor.ts",
      "_runtime.ts",
      "_jobs.ts",
      "matmul.ts",
      "engine.ts",
    ]
  ) {
    assert(names.includes(name), `${name} not in ${names.join(" ")}`);
  }
  for (
    const name of [
      "engine_hash.ts",
      "_test_util.ts",
      "_exit_child.ts",
      "_joins_child.ts",
    ]
  ) {
    assert(!names.includes(name), name);
  }
  assert(!names.some((n) => n.endsWith("_test.ts")));
  assertEquals(
    CPU_ENGINE_SHA256,
    hash,
    `cpu's sources changed: set CPU_ENGINE_SHA256 in cpu/engine_hash.ts to "${hash}"`,
  );
});
