// The fused engines start without tfjs (issue 21): importing @d3pm/webgpu or
// @d3pm/cpu, or the tfjs-free face @d3pm/transformer/init, loads no
// @tensorflow module. Only `forward` (the tfjs-tensor contract call) imports
// tfjs, dynamically, on its first call. Read from `deno info --json`: the
// modules reached by static code imports (a type-only import is erased, a
// dynamic one runs only when called). About 1 s per module.
import { assert, assertEquals } from "@std/assert";
import { ROOT } from "./_run.ts";

interface InfoDependency {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface Info {
  roots: string[];
  modules: { specifier: string; dependencies?: InfoDependency[] }[];
  redirects: Record<string, string>;
}

async function info(module: string): Promise<Info> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", module],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(60_000),
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert(out.success, `deno info ${module}: ${err}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/**
 * The modules a static import of the root loads, each with the module that
 * first imports it (breadth first).
 */
function staticGraph(graph: Info): Map<string, string | null> {
  const modules = new Map(graph.modules.map((m) => [m.specifier, m]));
  const root = graph.roots[0];
  const from = new Map<string, string | null>([[root, null]]);
  const queue = [root];
  for (let s = queue.shift(); s !== undefined; s = queue.shift()) {
    for (const dep of modules.get(s)?.dependencies ?? []) {
      if (dep.code === undefined || dep.isDynamic) continue;
      const target = graph.redirects[dep.code.specifier] ?? dep.code.specifier;
      if (!from.has(target)) {
        from.set(target, s);
        queue.push(target);
      }
    }
  }
  return from;
}

/** The tfjs modules a static import loads, each with its import chain. */
async function tfjsChains(module: string): Promise<string[]> {
  const from = staticGraph(await info(module));
  const short = (s: string) => s.replace(`file://${ROOT}`, "");
  return [...from.keys()].filter((s) => s.includes("@tensorflow/")).map(
    (s) => {
      const chain = [s];
      for (let p = from.get(s); p; p = from.get(p)) chain.push(p);
      return chain.map(short).join(" <- ");
    },
  );
}

for (const module of ["webgpu/mod.ts", "cpu/mod.ts", "transformer/init.ts"]) {
  Deno.test(`importing ${module} loads no tfjs module`, async () => {
    assertEquals(await tfjsChains(module), []);
  });
}

Deno.test("the graph reader sees tfjs where it is loaded: @d3pm/transformer's mod.ts", async () => {
  const chains = await tfjsChains("transformer/mod.ts");
  assert(chains.length > 0, "no tfjs found in transformer/mod.ts's graph");
  assert(
    chains.every((c) => c.endsWith("transformer/mod.ts")),
    chains.join("\n"),
  );
});
