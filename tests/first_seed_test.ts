// A run made with --first-seed K (every sweep cell but seed 0's) has no seed
// 0: the tools that read a run's model take its first seed when --seed is
// not given, and name the missing seed in one line when it is.
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { tempDir } from "@d3pm/core/testing";
import { scoreTest } from "@d3pm/experiment";
import { AR_FAST_EVAL, errorLine, runTool } from "./_run.ts";

Deno.test("without --seed, evaluate, sample and the library's scoreTest read the first seed of a run made with --first-seed", async () => {
  await using tmp = await tempDir();
  const out = `${tmp.path}/run`;
  const run = await runTool("experiment.ts", [
    "--preset",
    "micro",
    "--models",
    "ar",
    "--seeds",
    "1",
    "--first-seed",
    "2",
    "--steps",
    "10",
    "--warmup",
    "2",
    "--judge",
    "self",
    ...AR_FAST_EVAL,
    "--out",
    out,
  ]);
  assertEquals(run.code, 0, run.stderr);
  const [ar] = JSON.parse(await Deno.readTextFile(`${out}/results.json`))
    .results;
  assertEquals(ar.seed, 2);

  const ev = await runTool("evaluate.ts", [
    "--run",
    out,
    "--model",
    "ar",
    "--blocks",
    "4",
  ]);
  assertEquals(ev.code, 0, ev.stderr);
  const got = JSON.parse(ev.stdout.trim().split("\n").at(-1)!);
  assertEquals(got.seed, 2);
  // The same model: the run's exact test NLL on its 4 blocks.
  assertAlmostEquals(got.figures.nll, ar.test.nll, 1e-6);

  // The library's scoreTest takes the same default as the tool.
  const lib = await scoreTest(out, { model: "ar", blocks: 4 });
  assertEquals(lib.seed, 2);
  assertAlmostEquals(lib.figures.nll, ar.test.nll, 1e-6);

  const sample = await runTool("sample.ts", ["--run", out, "--model", "ar"]);
  assertEquals(sample.code, 0, sample.stderr);
  assert(sample.stdout.trim().length > 0, sample.stdout);

  const zero = await runTool("evaluate.ts", [
    "--run",
    out,
    "--model",
    "ar",
    "--seed",
    "0",
  ]);
  assertEquals(zero.code, 1);
  assert(
    errorLine(zero).startsWith(
      `error: ${out} has no ar model for seed 0: its config.json trains ar for seed 2`,
    ),
    zero.stderr,
  );
});
