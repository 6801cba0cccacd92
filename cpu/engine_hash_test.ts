import { assert, assertEquals } from "@std/assert";
import { packageSourceHash } from "@d3pm/core/testing";
import { CPU_ENGINE_SHA256 } from "./engine_hash.ts";

/**
 * The modules of `@d3pm/webgpu` that its plan (`@d3pm/webgpu/plan`, which
 * the CPU engine executes) loads: what the plan records decides the CPU
 * engine's rounding as much as its own kernels do.
 */
async function planModules(): Promise<URL[]> {
  const webgpu = new URL("../webgpu/", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "info",
      "--json",
      new URL("../webgpu/plan.ts", import.meta.url).href,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert(out.success, "deno info failed");
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  return graph.modules.map((m) => m.specifier)
    .filter((s) =>
      s.startsWith(webgpu) && !s.slice(webgpu.length).includes("/")
    )
    .map((s) => new URL(s));
}

Deno.test("CPU_ENGINE_SHA256 is the hash of the engine's committed sources, kernels and host code, and of the plan it runs", async () => {
  const { hash, names } = await packageSourceHash(
    new URL(".", import.meta.url),
    { leftOut: ["engine_hash.ts"], also: await planModules() },
  );
  // The plan's own modules, from @d3pm/webgpu.
  for (const name of ["../webgpu/plan.ts", "../webgpu/_plan.ts"]) {
    assert(names.includes(name), `${name} not in ${names.join(" ")}`);
  }
  assert(!names.includes("../webgpu/_wgsl.ts"), "the WGSL is not the CPU's");
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
      "_wrap_child.ts",
      "_test_hooks.ts",
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
