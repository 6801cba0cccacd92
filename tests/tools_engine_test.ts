// deno task sample and infill on the fused engines, as a user runs them:
// the --engine help said "no intermediate steps shown" and "one sync per
// sample" while `sample --model d3pm --engine webgpu --every 2` printed 25
// frames (the sampler runs the engine one step per call when a step is to
// be shown), and neither tool said which engine --engine auto picked
// (deno task evaluate prints "engine: cpu: the fused plan …").
import { assert, assertEquals, assertMatch } from "@std/assert";
import { ignoreUnless } from "@d3pm/core/testing";
import { requestEngineDevice, WebGpuUnavailableError } from "@d3pm/webgpu";
import { FAST_EVAL, runTool } from "./_run.ts";

let noGpu: string | null = null;
try {
  (await requestEngineDevice()).device.destroy();
} catch (e) {
  if (!(e instanceof WebGpuUnavailableError)) throw e;
  noGpu = e.message;
}

/** The --engine option's help line(s) of a tool's --help. */
async function engineHelp(tool: string): Promise<string> {
  const r = await runTool(tool, ["--help"]);
  assertEquals(r.code, 0, r.stderr);
  const at = r.stdout.indexOf("--engine");
  const next = r.stdout.slice(at + 1).search(/\n {2}--/);
  return r.stdout.slice(at, next < 0 ? undefined : at + 1 + next)
    .replace(/\s+/g, " ");
}

Deno.test("sample and infill --help say the fused engines show a denoiser's steps, one sync per step, and that the engine used is printed", async () => {
  for (const tool of ["sample.ts", "infill.ts"]) {
    const help = await engineHelp(tool);
    assert(!help.includes("no intermediate steps"), `${tool}: ${help}`);
    assert(!help.includes("one sync per sample"), `${tool}: ${help}`);
    assert(
      help.includes("a denoiser's steps are shown, at one sync per step"),
      `${tool}: ${help}`,
    );
    assert(
      help.includes("The engine used is printed on stderr"),
      `${tool}: ${help}`,
    );
  }
});

Deno.test("sample and infill on --engine auto, cpu and webgpu show a denoiser's steps and print the engine used on stderr, with --quiet too", async () => {
  const out = await Deno.makeTempDir();
  try {
    const made = await runTool("experiment.ts", [
      "--preset",
      "micro",
      "--models",
      "ar,d3pm",
      "--steps",
      "2",
      "--warmup",
      "1",
      "--exact-blocks",
      "0",
      "--judge",
      "self",
      ...FAST_EVAL,
      "--engine",
      "cpu",
      "--out",
      out,
    ]);
    assertEquals(made.code, 0, made.stderr);
    const engines = noGpu === null
      ? ["auto", "cpu", "webgpu"]
      : (ignoreUnless("webgpu", noGpu), ["auto", "cpu"]);
    for (const engine of engines) {
      const s = await runTool("sample.ts", [
        "--run",
        out,
        "--model",
        "d3pm",
        "--engine",
        engine,
        "--steps",
        "6",
        "--every",
        "2",
      ]);
      assertEquals(s.code, 0, s.stderr);
      assertEquals(
        s.stdout.match(/^--- step \d+\/6 /gm),
        ["--- step 2/6 ", "--- step 4/6 ", "--- step 6/6 "],
        `${engine}: ${s.stdout}`,
      );
      const said = engine === "auto" ? "(cpu|webgpu)" : engine;
      assertMatch(s.stderr, new RegExp(`^engine: ${said}: `, "m"));
      const f = await runTool("infill.ts", [
        "--run",
        out,
        "--engine",
        engine,
        "--text",
        "ab[MASK*3]cd",
        "--steps",
        "4",
        "--quiet",
      ]);
      assertEquals(f.code, 0, f.stderr);
      assertEquals(f.stdout.trim().split("\n").length, 1, f.stdout);
      assertMatch(f.stderr, new RegExp(`^engine: ${said}: `, "m"));
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
