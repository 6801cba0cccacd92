// The bd3 contestant (block diffusion) end to end: `--models ar,bd3` on the
// micro preset, cut short — its results and report rows, the engine it runs
// on and why, the tools on seed-0/bd3, and its options' refusals.
import { assert, assertEquals, assertMatch } from "@std/assert";
import { pathExists } from "@d3pm/core";
import { errorLine, FAST_EVAL, runTool } from "./_run.ts";

const SHORT = [
  "--preset",
  "micro",
  "--steps",
  "30",
  "--warmup",
  "5",
  "--checkpoint-every",
  "30",
  "--valid-every",
  "10",
  "--log-every",
  "10",
  ...FAST_EVAL,
];

Deno.test("an experiment with --models ar,bd3 trains block diffusion on tfjs and reports its bound, speed and samples; the tools read it", async () => {
  const out = await Deno.makeTempDir();
  const r = await runTool("experiment.ts", [
    ...SHORT,
    "--models",
    "ar,bd3",
    "--bd3-block",
    "8",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.stderr);
  const result = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
  assertEquals(result.results.map((m: { model: string }) => m.model), [
    "ar",
    "bd3",
  ]);
  assertMatch(result.engine, /the bd3 contestant runs on tfjs only/);
  const [ar, bd3] = result.results;
  assertEquals(bd3.blockSize, 8);
  assertEquals(bd3.test.bound, true);
  assertEquals(bd3.curve.map((p: { steps: number }) => p.steps), [4]);
  assertEquals(bd3.parameters, ar.parameters); // the same backbone
  // Four 8-token blocks of 4 steps each, at most a pass per step.
  assert(bd3.curve[0].speed.forwardPassesPerBatch <= 16);
  for (
    const x of [bd3.test.nll, bd3.generation.genPpl, bd3.training.valid.final]
  ) {
    assert(Number.isFinite(x) && x > 0, JSON.stringify(bd3));
  }
  const process = JSON.parse(
    await Deno.readTextFile(`${out}/seed-0/bd3/process.json`),
  );
  assertEquals([process.kind, process.blockSize], ["block-diffusion", 8]);

  const report = await Deno.readTextFile(`${out}/report.md`);
  assert(report.startsWith("# AR vs BD3"), report.slice(0, 40));
  assert(report.includes("the sum over blocks of 8 tokens"));
  assert(report.includes(`| 0 | 4/block |`));
  const samples = await Deno.readTextFile(`${out}/samples.txt`);
  assert(samples.includes("BD3 (blocks of 8, 4 steps each)"), samples);

  // The evaluate tool scores the saved model to the run's own figure.
  const ev = await runTool("evaluate.ts", [
    "--run",
    out,
    "--model",
    "bd3",
    "--blocks",
    "4",
  ]);
  assertEquals(ev.code, 0, ev.stderr);
  const figures = JSON.parse(ev.stdout.trim().split("\n").at(-1)!).figures;
  assertEquals(figures.nll.toFixed(9), bd3.test.nll.toFixed(9));

  // Sampling continues a prompt; the CPU engine is refused in one line.
  const s = await runTool("sample.ts", [
    "--run",
    out,
    "--model",
    "bd3",
    "--prompt",
    "The ",
  ]);
  assertEquals(s.code, 0, s.stderr);
  assert(s.stdout.startsWith("The "), s.stdout);
  const cpu = await runTool("sample.ts", [
    "--run",
    out,
    "--model",
    "bd3",
    "--engine",
    "cpu",
  ]);
  assertEquals(cpu.code, 1);
  assertEquals(
    errorLine(cpu),
    "error: the bd3 contestant runs on tfjs only: block diffusion needs block attention, which the fused engines lack, not --engine cpu; use --engine tfjs",
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("bd3's options are refused in one line, before anything is written", async () => {
  const out = `${await Deno.makeTempDir()}/run`;
  const cases: [string[], string][] = [
    [
      ["--models", "ar,bd3", "--engine", "cpu"],
      "error: the bd3 contestant runs on tfjs only: block diffusion needs block attention, which the fused engines lack, not --engine cpu; use --engine tfjs",
    ],
    [
      ["--models", "ar,bd3", "--bd3-block", "5"],
      "error: Option --bd3-block (5) must divide --block-length (32): a block is a whole number of bd3 blocks",
    ],
    [
      ["--models", "ar,d3pm", "--bd3-block", "8"],
      "error: Option --bd3-block applies to the bd3 contestant only, and --models is ar,d3pm: it would be recorded and never used; add bd3 to --models, or leave it out",
    ],
  ];
  for (const [args, line] of cases) {
    const r = await runTool("experiment.ts", [...SHORT, ...args, "--out", out]);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(errorLine(r), line);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    assertEquals(await pathExists(out), false);
  }
});
