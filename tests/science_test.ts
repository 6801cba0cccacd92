// The science features end to end: validation with --keep best, and the
// judge of generative perplexity.
import { assert, assertEquals, assertMatch } from "@std/assert";
import { errorLine, FAST_EVAL, runTool } from "./_run.ts";

const QUICK = [
  "--preset",
  "micro",
  "--steps",
  "60",
  "--warmup",
  "5",
  "--valid-every",
  "20",
  "--exact-blocks",
  "0",
  ...FAST_EVAL,
];

Deno.test("--keep best evaluates the weights of the best validation and says so", async () => {
  const out = await Deno.makeTempDir();
  const r = await runTool("experiment.ts", [
    ...QUICK,
    "--keep",
    "best",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.stderr);
  const results = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
  for (const m of results.results) {
    const dir = `${out}/seed-0/${m.model}`;
    const best = JSON.parse(await Deno.readTextFile(`${dir}/best.json`));
    assertEquals(best.step, m.training.valid.bestStep);
    assertEquals(best.nats, m.training.valid.best);
    assertEquals(
      await Deno.readFile(`${dir}/model.safetensors`),
      await Deno.readFile(`${dir}/best/model.safetensors`),
    );
    // Validations at steps 20, 40 and 60; the best is the lowest of them.
    const valid = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim()
      .split("\n").map((l) => JSON.parse(l))
      .filter((x) => x.model === m.model && "valid" in x);
    assertEquals(valid.map((x) => x.step), [20, 40, 60]);
    assertEquals(best.nats, Math.min(...valid.map((x) => x.valid)));
  }
  assertMatch(
    await Deno.readTextFile(`${out}/report.md`),
    /\| best validation \|/,
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("the judge is a model not under test, named in the report; a mismatched --judge run is refused", async () => {
  const first = await Deno.makeTempDir();
  const a = await runTool("experiment.ts", [
    ...QUICK,
    "--judge",
    "self",
    "--out",
    first,
  ]);
  assertEquals(a.code, 0, a.stderr);
  assertMatch(
    await Deno.readTextFile(`${first}/report.md`),
    /Judge of generative perplexity: the run's own AR model \(--judge self/,
  );
  const second = await Deno.makeTempDir();
  const b = await runTool("experiment.ts", [
    ...QUICK,
    "--judge",
    first,
    "--out",
    second,
  ]);
  assertEquals(b.code, 0, b.stderr);
  assertMatch(
    await Deno.readTextFile(`${second}/report.md`),
    /Judge of generative perplexity: the AR model of seed 0 of the run in /,
  );
  const third = await Deno.makeTempDir();
  const c = await runTool("experiment.ts", [
    ...QUICK,
    "--block-length",
    "16",
    "--judge",
    first,
    "--out",
    third,
  ]);
  assertEquals(c.code, 1);
  assertMatch(
    errorLine(c),
    /^error: Option --judge .*: that run used another tokenizer or block length/,
  );
  assertEquals([...Deno.readDirSync(third)], []);
  const d = await runTool("experiment.ts", [...QUICK, "--out", third]);
  assertEquals(d.code, 0, d.stderr);
  const report = await Deno.readTextFile(`${third}/report.md`);
  assertMatch(
    report,
    /Judge of generative perplexity: a separate AR model of the same shape, trained for 400 steps/,
  );
  assert(!report.includes("(AR judge)"));
  for (const dir of [first, second, third]) {
    await Deno.remove(dir, { recursive: true });
  }
});
