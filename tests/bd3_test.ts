// The bd3 contestant (block diffusion) end to end: `--models ar,bd3` on the
// micro preset, cut short — its results and report rows, the engine it runs
// on and why, the tools on seed-0/bd3, and its options' refusals.
import { fromFileUrl, toFileUrl } from "@d3pm/core";
import { assert, assertEquals, assertMatch } from "@std/assert";
import { tempDir } from "@d3pm/core/testing";
import { estimateRun, resolveConfig } from "@d3pm/experiment";
import { assertRefused, errorLine, FAST_EVAL, runTool } from "./_run.ts";

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
    "--times-per",
    "count",
    "--full-mask-share",
    "0.25",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.stderr);
  const result = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
  assertEquals(result.results.map((m: { model: string }) => m.model), [
    "ar",
    "bd3",
  ]);
  const [ar, bd3] = result.results;
  // bd3 alone falls back to tfjs; the AR keeps the engine auto picks.
  assertMatch(bd3.engine, /^tfjs \(the bd3 contestant runs on tfjs only/);
  assertEquals(ar.engine, result.engine);
  assertEquals(bd3.blockSize, 8);
  assertEquals(bd3.test.bound, true);
  assertEquals(bd3.curve.map((p: { steps: number }) => p.steps), [4]);
  assertEquals(bd3.parameters, ar.parameters); // the same backbone
  // Four 8-token blocks of 4 steps each: at most a pass per step, and a
  // pass to commit each block to the KV cache.
  assert(bd3.curve[0].speed.forwardPassesPerBatch <= 4 * 4 + 4);
  for (
    const x of [bd3.test.nll, bd3.generation.genPpl, bd3.training.valid.final]
  ) {
    assert(Number.isFinite(x) && x > 0, JSON.stringify(bd3));
  }
  const process = JSON.parse(
    await Deno.readTextFile(`${out}/seed-0/bd3/process.json`),
  );
  assertEquals([process.kind, process.blockSize], ["block-diffusion", 8]);
  // The D3PM's training draws apply to it too.
  assertEquals(process.times, {
    min: 0.001,
    max: 1,
    perToken: false,
    byCount: true,
    fullMaskShare: 0.25,
  });

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
  assert(
    /^=== sample 1 \(\d+ forward passes\) ===\nThe /.test(s.stdout),
    s.stdout,
  );
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
  // Its steps per block reach the sampler (beyond T: refused there).
  const steps = await runTool("sample.ts", [
    "--run",
    out,
    "--model",
    "bd3",
    "--steps",
    "100000",
  ]);
  assertEquals(steps.code, 1);
  assertMatch(errorLine(steps), /steps/);
  // The judge of another run's AR scores on the CPU engine: bd3 in this
  // run's models does not bind it.
  const judged = await runTool("evaluate.ts", [
    "--run",
    out,
    "--model",
    "ar",
    "--gen-samples",
    "2",
    "--judge",
    out,
    "--engine",
    "cpu",
  ]);
  assertEquals(judged.code, 0, judged.stderr);
  // --init-from starts it from the run's AR: recorded, and its first
  // step already below the first step from scratch.
  // Beside the run, not inside it (a run folder holds one run).
  const adapted = `${await Deno.makeTempDir()}/from-ar`;
  const init = await runTool("experiment.ts", [
    ...SHORT,
    "--models",
    "bd3",
    "--bd3-block",
    "8",
    "--times-per",
    "count",
    "--full-mask-share",
    "0.25",
    "--judge",
    out,
    "--init-from",
    out,
    "--out",
    adapted,
  ]);
  assertEquals(init.code, 0, init.stderr);
  const from = JSON.parse(await Deno.readTextFile(`${adapted}/results.json`))
    .results[0];
  assertEquals([from.training.initFrom.model, from.training.initFrom.seed], [
    "ar",
    0,
  ]);
  const first = async (dir: string) =>
    JSON.parse(
      (await Deno.readTextFile(`${dir}/metrics.jsonl`)).split("\n").find((l) =>
        l.includes('"model":"bd3"')
      )!,
    ).loss;
  assert(await first(adapted) < await first(out) - 0.1);
  // Export refuses it: the exported modeling code has no block attention.
  const exported = await runTool("export.ts", [
    "--run",
    out,
    "--model",
    "bd3",
    "--to",
    `${out}/hf`,
  ]);
  assertEquals(exported.code, 1);
  assertEquals(
    errorLine(exported),
    "error: Cannot export the bd3 model: block diffusion needs block attention, which the fused engines lack, and so does the exported modeling code (it would run the weights with full attention)",
  );
  await Deno.remove(out, { recursive: true });
  await Deno.remove(fromFileUrl(new URL(".", toFileUrl(adapted))), {
    recursive: true,
  });
});

Deno.test("the run's estimate counts bd3's two streams: twice the positions per pass, each attending to twice the keys", () => {
  const part = (
    e: ReturnType<typeof estimateRun>,
    k: keyof typeof e,
    what: string,
  ) =>
    (e[k] as { what: string; amount: number }[]).find((p) =>
      p.what.startsWith(what)
    )!
      .amount;
  const d3pm = estimateRun(resolveConfig({ preset: "tiny", models: "d3pm" }));
  const bd3 = estimateRun(
    resolveConfig({ preset: "tiny", models: "bd3", engine: "tfjs" }),
  );
  const ratio = part(bd3, "training", "training") /
    part(d3pm, "training", "training");
  assert(ratio > 2 && ratio < 4, `training ${ratio}`);
  assertEquals(
    part(bd3, "memory", "activations") / part(d3pm, "memory", "activations"),
    2,
  );
  assertEquals(
    part(bd3, "memory", "attention") / part(d3pm, "memory", "attention"),
    4,
  );
  const scored = part(bd3, "evaluation", "the test bound") /
    part(d3pm, "evaluation", "the test bound");
  assert(scored > 2 && scored < 4, `test bound ${scored}`);
});

Deno.test("bd3's options are refused in one line, before anything is written", async () => {
  await using tmp = await tempDir();
  const out = `${tmp.path}/run`;
  const cases: [string[], string][] = [
    [
      ["--models", "ar,bd3", "--engine", "cpu"],
      "error: the bd3 contestant runs on tfjs only: block diffusion needs block attention, which the fused engines lack, not --engine cpu; use --engine auto (then bd3 alone trains on tfjs) or tfjs",
    ],
    [
      ["--models", "ar,bd3", "--bd3-block", "5"],
      "error: Option --bd3-block (5) must divide --block-length (32): a block is a whole number of bd3 blocks",
    ],
    [
      ["--models", "ar,d3pm,bd3", "--times-per", "block"],
      "error: Option --times-per block draws a time per bd3 block: it needs bd3 in --models and no d3pm (whose rows have no blocks), got --models ar,d3pm,bd3",
    ],
    [
      [
        "--models",
        "bd3",
        "--times-per",
        "block",
        "--time-conditioning",
        "true",
      ],
      "error: Option --times-per block needs --time-conditioning false (a time-conditioned denoiser takes one t per row)",
    ],
    [
      ["--models", "ar,d3pm", "--bd3-block", "8"],
      "error: Option --bd3-block is read by the bd3 contestant only, and --models is ar,d3pm: it would be recorded and never used; add bd3 to --models, or leave it out",
    ],
  ];
  await assertRefused(SHORT, cases, out);
});
