// `--stagger` end to end on the micro preset: the D3PM on the CPU engine and
// the BD3 on tfjs train and score the staggered process, the run folder
// records it, the tools read it back, and its options are refused in one
// line before anything is written.
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertNotEquals,
} from "@std/assert";
import { tempDir } from "@d3pm/core/testing";
import {
  assertRefused,
  errorLine,
  FAST_EVAL,
  runScript,
  runTool,
} from "./_run.ts";

const SHORT = [
  "--preset",
  "micro",
  "--steps",
  "20",
  "--warmup",
  "5",
  "--checkpoint-every",
  "20",
  "--valid-every",
  "10",
  "--log-every",
  "10",
  ...FAST_EVAL,
];

/** The first logged training loss of `model` in a run. */
async function firstLoss(out: string, model: string): Promise<number> {
  const line = (await Deno.readTextFile(`${out}/metrics.jsonl`)).split("\n")
    .find((l) => l.includes(`"model":"${model}"`) && l.includes('"loss"'))!;
  return JSON.parse(line).loss;
}

/** `evaluate --run out --model kind --blocks 4`'s test NLL. */
async function evaluated(out: string, kind: string): Promise<number> {
  const ev = await runTool("evaluate.ts", [
    "--run",
    out,
    "--model",
    kind,
    "--blocks",
    "4",
  ]);
  assertEquals(ev.code, 0, ev.stderr);
  return JSON.parse(ev.stdout.trim().split("\n").at(-1)!).figures.nll;
}

Deno.test("a staggered D3PM trains on the CPU engine and a staggered BD3 on tfjs; both runs record the stagger and the tools reproduce their bounds", async () => {
  const root = await Deno.makeTempDir();
  const plain = `${root}/plain`, d3pm = `${root}/d3pm`, bd3 = `${root}/bd3`;
  for (
    const [out, args] of [
      [plain, ["--models", "ar,d3pm", "--engine", "cpu", "--judge", "self"]],
      [d3pm, [
        "--models",
        "d3pm",
        "--engine",
        "cpu",
        "--stagger",
        "0.6",
        "--judge",
        plain,
      ]],
      [bd3, [
        "--judge",
        plain,
        "--models",
        "bd3",
        "--bd3-block",
        "8",
        "--stagger",
        "0.6",
        "--stagger-span",
        "8",
      ]],
    ] as const
  ) {
    const r = await runTool("experiment.ts", [...SHORT, ...args, "--out", out]);
    assertEquals(r.code, 0, r.stderr);
  }
  const process = async (out: string, kind: string) =>
    JSON.parse(await Deno.readTextFile(`${out}/seed-0/${kind}/process.json`));
  assertEquals((await process(d3pm, "d3pm")).stagger, { span: 4, delta: 0.6 });
  assertEquals((await process(bd3, "bd3")).stagger, { span: 8, delta: 0.6 });
  assertEquals("stagger" in await process(plain, "d3pm"), false);
  // The same seed's first step sees other masks: the stagger is trained.
  assertNotEquals(
    await firstLoss(d3pm, "d3pm"),
    await firstLoss(plain, "d3pm"),
  );

  const result = JSON.parse(await Deno.readTextFile(`${d3pm}/results.json`));
  assert(result.engine.startsWith("cpu"), result.engine);
  const [m] = result.results;
  // No exact discrete bound for a staggered process; the report says why.
  assertEquals(m.exact, undefined);
  const report = await Deno.readTextFile(`${d3pm}/report.md`);
  assert(report.includes("Its masking is staggered (--stagger 0.6)"), report);
  assert(report.includes("(skipped: a staggered process has no exact"));
  assert(report.includes("per test block by time (staggered clocks)"));
  assert(Number.isFinite(m.generation.genPpl), JSON.stringify(m));

  // The tools read the process back: the same bound, to 1e-6 nats (sums of
  // per-token weights, some large, are taken in another order: 1.6e-7 seen on
  // an AMD EPYC under load; a process read without its stagger moves the
  // bound by far more than that).
  assertAlmostEquals(await evaluated(d3pm, "d3pm"), m.test.nll, 1e-6);
  // More draws than the run's one: a smaller standard error, the same bound
  // within it.
  const more = await runTool("evaluate.ts", [
    "--run",
    d3pm,
    "--model",
    "d3pm",
    "--blocks",
    "4",
    "--samples",
    "16",
  ]);
  assertEquals(more.code, 0, more.stderr);
  const tight = JSON.parse(more.stdout.trim().split("\n").at(-1)!).figures;
  assert(
    tight.stderr < m.test.stderr / 2,
    `${tight.stderr} vs ${m.test.stderr}`,
  );
  assert(Math.abs(tight.nll - m.test.nll) < 4 * m.test.stderr);
  const both = await runTool("evaluate.ts", [
    "--run",
    d3pm,
    "--samples",
    "16",
    "--gen-samples",
    "2",
  ]);
  assertEquals(
    errorLine(both),
    "error: Option --samples sets the test bound's draws; with --gen-samples no bound is scored: leave one out",
  );
  const b = JSON.parse(await Deno.readTextFile(`${bd3}/results.json`))
    .results[0];
  assertAlmostEquals(await evaluated(bd3, "bd3"), b.test.nll, 1e-6);
  assert(
    (await Deno.readTextFile(`${bd3}/report.md`)).includes(
      "The BD3's masking is staggered (--stagger 0.6)",
    ),
  );
  // Sampling the staggered D3PM on the CPU engine (its sampler reads the
  // model's forward pass) continues the prompt.
  const s = await runTool("sample.ts", [
    "--run",
    d3pm,
    "--model",
    "d3pm",
    "--prompt",
    "The ",
    "--engine",
    "cpu",
  ]);
  assertEquals(s.code, 0, s.stderr);
  // Frames as it unmasks; the last one holds no mask.
  const last = s.stdout.trim().split(/^--- step .*$/m).at(-1)!.trim();
  assert(last.startsWith("The ") && !last.includes("░"), s.stdout);
  // The WebGPU engine's forward pass is asynchronous: refused in one line
  // (before any adapter is asked for), as are the benches whose estimators
  // assume one clock.
  const gpu = await runTool("sample.ts", [
    "--run",
    d3pm,
    "--model",
    "d3pm",
    "--engine",
    "webgpu",
  ]);
  assertEquals(gpu.code, 1);
  assertEquals(
    errorLine(gpu),
    "error: Option --engine webgpu: the model's process is staggered, and its sampler runs on the JavaScript side, which reads the model's logits from a synchronous forward pass, and the WebGPU engine's is asynchronous; use --engine cpu or tfjs",
  );
  for (const bench of ["bench/order_bound.ts", "bench/bound.ts"]) {
    const r = await runScript(bench, ["--run", d3pm]);
    assertEquals(r.code, 1, r.stderr);
    assert(
      errorLine(r).startsWith(
        `error: Cannot bench ${d3pm}: its D3PM's masking is staggered, and `,
      ),
      r.stderr,
    );
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("--stagger's options are refused in one line, before anything is written", async () => {
  await using tmp = await tempDir();
  const out = `${tmp.path}/run`;
  const cases: [string[], string][] = [
    [
      ["--models", "ar", "--stagger", "0.5"],
      "error: Option --stagger is read by the d3pm and bd3 contestants only, and --models is ar: it would be recorded and never used; add one of them to --models, or leave it out",
    ],
    [
      ["--models", "d3pm", "--stagger-span", "8"],
      "error: Option --stagger-span applies only with --stagger above 0, got --stagger 0: it would be recorded and never used; set --stagger, or leave --stagger-span out",
    ],
    [
      ["--models", "bd3", "--stagger", "0.5", "--bd3-block", "2"],
      "error: Option --stagger-span (4) must divide --bd3-block (2): a span lies within one bd3 block",
    ],
    [
      ["--models", "d3pm", "--stagger", "0.5", "--stagger-span", "5"],
      "error: Option --stagger-span (5) must divide --block-length (32)",
    ],
    [
      ["--models", "d3pm", "--stagger", "0.5", "--times-per", "count"],
      "error: Option --stagger needs the mdlm loss drawn by a time per row or per bd3 block (each position's clock runs on that time), not --times-per count",
    ],
    [
      ["--models", "d3pm", "--stagger", "0.5", "--times-per", "token"],
      "error: Option --stagger needs the mdlm loss drawn by a time per row or per bd3 block (each position's clock runs on that time), not --times-per token",
    ],
    [
      ["--models", "d3pm", "--stagger", "0.5", "--engine", "webgpu"],
      "error: Option --stagger samples on the JavaScript side, which reads the model's logits from a synchronous forward pass, and the WebGPU engine's is asynchronous; use --engine cpu or tfjs",
    ],
    [
      ["--models", "d3pm", "--stagger", "1"],
      "error: Option --stagger must be a number in [0, 1) (0: none), got 1",
    ],
  ];
  await assertRefused(SHORT, cases, out);
});
