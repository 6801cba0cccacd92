// The third contestant end to end: `--models ar,d3pm,mlm` on the micro
// preset, cut short — the MLM's rows in the report and results, the same
// infilling blanks as the D3PM, the tools on seed-0/mlm, resume and input
// errors.
import { assert, assertEquals, assertMatch } from "@std/assert";
import { ConfigError, contestants, resolveConfig } from "@d3pm/experiment";
import { assertThrows } from "@std/assert";
import { errorLine, FAST_EVAL, runTool } from "./_run.ts";

const SHORT = [
  "--preset",
  "micro",
  "--steps",
  "40",
  "--warmup",
  "5",
  "--checkpoint-every",
  "40",
  "--valid-every",
  "20",
  ...FAST_EVAL,
];

Deno.test("an experiment with --models ar,d3pm,mlm reports the MLM beside the AR and the D3PM, and its tools and resume rules hold", async () => {
  const out = await Deno.makeTempDir();
  const r = await runTool("experiment.ts", [
    ...SHORT,
    "--models",
    "ar,d3pm,mlm",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.stderr);
  const result = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
  assertEquals(result.results.map((m: { model: string }) => m.model), [
    "ar",
    "d3pm",
    "mlm",
  ]);
  const [, d3pm, mlm] = result.results;
  assertEquals(mlm.rate, 0.15);
  assertEquals(mlm.test.bound, true); // the D3PM bound with the MLM as denoiser
  for (const x of [mlm.test.nll, mlm.pll.nats, mlm.generation.genPpl]) {
    assert(Number.isFinite(x) && x > 0, JSON.stringify(mlm));
  }
  // The bound's value, against two figures it does not compute: a denoiser
  // that learned nothing (uniform over the vocabulary) scores ln V exactly,
  // and 40 steps take the MLM well below it (measured: 3.17 ± 0.31 against
  // ln 260 = 5.56); the D3PM, the same backbone on the same data and steps,
  // scores within 4 combined standard errors of it (3.12 ± 0.31). Gross
  // errors only: a bound × 1.5 fails the first check (4.75 + 4 s.e. > ln V)
  // but not the second (unpaired, its band is ±1.2 nats or more), which
  // catches × 2 or a bound summed over the row; the weight × 0.85 is
  // caught by diffusion/mlm_test.ts.
  const lnV = Math.log(result.tokenizer.vocabSize);
  assert(
    mlm.test.nll + 4 * mlm.test.stderr < lnV,
    `MLM bound ${mlm.test.nll} ± ${mlm.test.stderr} vs uniform ${lnV}`,
  );
  assert(
    Math.abs(mlm.test.nll - d3pm.test.nll) <
      4 * Math.hypot(mlm.test.stderr, d3pm.test.stderr),
    `MLM bound ${mlm.test.nll} vs D3PM's ${d3pm.test.nll}`,
  );
  // The same blanks as the D3PM's infilling.
  assertEquals(mlm.infill.hidden, d3pm.infill.hidden);
  assertEquals(mlm.infill.hiddenFraction, d3pm.infill.hiddenFraction);
  assertEquals(mlm.genSteps, 4);
  assertEquals(mlm.parameters, d3pm.parameters); // the same backbone
  assert(mlm.training.valid.final > 0);

  const report = await Deno.readTextFile(`${out}/report.md`);
  assert(report.startsWith("# AR vs D3PM vs MLM"), report.slice(0, 40));
  assert(report.includes("## AR, D3PM and MLM (mean ± sd across seeds)"));
  assert(report.includes("**not a likelihood**"));
  assertMatch(
    report,
    /\| MLM \| 1 \| \d\.\d{3} \| \d+\.\d\d \| \d+ \| \d\.\d\d \| ≤ \d+\.\d\d \| \d+\.\d\d \|/,
  );
  assertMatch(
    report,
    /\| MLM \(BERT objective, D3PM bound\) \| 0 \| ≤ \d+\.\d\d \|/,
  );
  assert(report.includes("## Infilling (D3PM and MLM)"));
  const process = JSON.parse(
    await Deno.readTextFile(`${out}/seed-0/mlm/process.json`),
  );
  assertEquals(process.kind, "masked-language-model");
  assert(
    (await Deno.readTextFile(`${out}/samples.txt`)).includes(
      "MLM (confidence unmasking, 4 steps) sample 1",
    ),
  );

  // The tools use seed-0/mlm.
  const sample = await runTool("sample.ts", [
    "--run",
    out,
    "--model",
    "mlm",
    "--steps",
    "4",
    "--quiet",
  ]);
  assertEquals(sample.code, 0, sample.stderr);
  assert(sample.stdout.trim().length > 0);
  const infill = await runTool("infill.ts", [
    "--run",
    out,
    "--model",
    "mlm",
    "--steps",
    "4",
    "--quiet",
    "--text",
    "The [MASK*3] of the",
  ]);
  assertEquals(infill.code, 0, infill.stderr);
  assert(infill.stdout.startsWith("The "), infill.stdout);

  // A resume with another model list is refused before anything is written.
  const resumed = await runTool("experiment.ts", [
    ...SHORT,
    "--models",
    "ar,d3pm",
    "--out",
    out,
    "--resume",
  ]);
  assertEquals(resumed.code, 1);
  assertEquals(
    errorLine(resumed),
    `error: Cannot resume ${out}: --models is "ar,d3pm" but the run used "ar,d3pm,mlm" (start a new run with --out DIR, or --force to replace this one)`,
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("--models accepts only the registered contestants, and says so in one line", async () => {
  const r = await runTool("experiment.ts", ["--models", "x"]);
  assertEquals(r.code, 1);
  assertEquals(
    errorLine(r),
    `error: Option --models must be a comma-separated list of distinct models from ${
      contestants().map((c) => c.kind).join(", ")
    }, got "x"`,
  );
  assertEquals(r.stderr.trim().split("\n").length, 1);
  assertThrows(
    () => resolveConfig({ models: "ar,ar" }),
    ConfigError,
    "distinct models",
  );
  assertThrows(
    () => resolveConfig({ models: "d3pm,mlm", judge: "self" }),
    ConfigError,
    "Option --judge self needs the AR model in --models",
  );
  assertEquals(resolveConfig({ models: "mlm,ar" }).models, "ar,mlm");
});
