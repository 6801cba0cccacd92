// End to end: the experiment CLI on the micro preset — the report's structure
// and sanity, kill-and-resume, and the sample and infill tools on a finished
// run (one-line errors for bad input: tests/experiment_refusals_test.ts).
import { assert, assertEquals, assertMatch } from "@std/assert";
import { tempDir } from "@d3pm/core/testing";
import { errorLine, FAST_EVAL, ROOT, runTool } from "./_run.ts";

const MICRO = ["--preset", "micro"];
// For the runs below the first, whose figures no test reads: 4 test blocks,
// 32 tokens timed, gen PPL of that last timed batch alone, no exact bound
// (the micro preset's evaluation takes longer than their training).
const NO_FIGURES = [
  ...FAST_EVAL,
  "--gen-samples",
  "0",
  "--exact-blocks",
  "0",
];

Deno.test("the micro experiment writes a complete run whose numbers are finite and beat the unigram entropy", async () => {
  const out = await Deno.makeTempDir();
  const r = await runTool("experiment.ts", [...MICRO, "--out", out]);
  assertEquals(r.code, 0, r.stderr);
  for (
    const f of [
      "config.json",
      "metrics.jsonl",
      "samples.txt",
      "results.json",
      "report.md",
      "loss.svg",
      "speed_quality.svg",
    ]
  ) {
    assert((await Deno.stat(`${out}/${f}`)).size > 0, f);
  }
  for (const m of ["ar", "d3pm"]) {
    for (
      const f of ["model.safetensors", "config.json", "checkpoint.safetensors"]
    ) {
      assert((await Deno.stat(`${out}/seed-0/${m}/${f}`)).isFile, `${m}/${f}`);
    }
  }
  const report = await Deno.readTextFile(`${out}/report.md`);
  for (
    const heading of [
      "## Likelihood and speed (per seed)",
      "## Across seeds",
      "## Exact discrete bound vs Monte-Carlo continuous bound (D3PM)",
      "## Speed vs quality",
      "## Infilling (D3PM)",
      "## Training",
    ]
  ) assert(report.includes(heading), heading);
  assertMatch(report, /\| AR \(causal\) \| 0 \| \d+\.\d\d \|/);
  assertMatch(
    report,
    /\| D3PM \(absorbing, MDLM loss\) \| 0 \| ≤ \d+\.\d\d \|/,
  );

  const result = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
  const h = result.data.unigramEntropy;
  assert(h > 2 && h < 6, `unigram entropy ${h}`);
  for (const m of result.results) {
    for (const k of ["nll", "bpt", "ppl"]) {
      assert(Number.isFinite(m.test[k]), `${m.model} ${k}`);
    }
    assert(m.test.nll > 0.5, `${m.model} NLL ${m.test.nll} is implausibly low`);
    assert(
      m.test.nll < h,
      `${m.model} NLL ${m.test.nll} is not below the unigram entropy ${h}`,
    );
    const speed = m.generation.speed;
    assert(speed.batchesPerSecond > 0 && speed.tokensPerSecond > 0);
    assert(Math.abs(m.test.bpt - m.test.nll / Math.LN2) < 1e-9);
  }
  // The report's per-seed table states results.json's figures, each cell
  // within half a unit of its last printed digit (the right figure in the
  // right column, not just a number of the right shape).
  const titles: Record<string, string> = {
    ar: "AR (causal)",
    d3pm: "D3PM (absorbing, MDLM loss)",
  };
  for (const m of result.results) {
    const row = report.split("\n").find((l) =>
      l.startsWith(`| ${titles[m.model]} | ${m.seed} |`)
    );
    if (row === undefined) throw new Error(`no per-seed row for ${m.model}`);
    const cells = row.split("|").slice(3, -1).map((c) => c.trim());
    const expected = [
      m.test.bpt,
      m.test.nll,
      m.test.ppl,
      m.test.bpb,
      m.generation.speed.batchesPerSecond,
      m.generation.speed.tokensPerSecond,
      m.generation.genPpl,
      m.generation.entropy,
    ];
    expected.forEach((want, i) => {
      const printed = cells[i].replace(/^≤ /, "").split(" ")[0];
      const digits = printed.split(".")[1]?.length ?? 0;
      assert(
        Math.abs(Number(printed) - want) <= 0.5 * 10 ** -digits + 1e-9,
        `${m.model} column ${i + 2}: report ${cells[i]}, results.json ${want}`,
      );
    });
  }
  const records = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim()
    .split("\n").map((l) => JSON.parse(l));
  const steps = records.filter((m) => "loss" in m);
  // The default engine (auto): tfjs logs every step; a fused engine (the
  // CPU one where no GPU is) every --log-every steps.
  const fused = !String(result.engine).startsWith("tfjs");
  assertEquals(
    steps.length,
    2 *
      (fused
        ? Math.floor(result.config.steps / result.config.logEvery)
        : result.config.steps),
    String(result.engine),
  );
  assert(steps.every((m) => Number.isFinite(m.loss)));
  // Validation every 100 steps and at the end, for both models.
  const valid = records.filter((m) => "valid" in m);
  assertEquals(valid.length, 2 * Math.ceil(result.config.steps / 100));
  for (const m of result.results) {
    const v = m.training.valid;
    assert(v.best <= v.final && v.bestStep > 0, JSON.stringify(v));
    assert(v.final < h, `${m.model} valid ${v.final} vs unigram ${h}`);
  }
  await Deno.remove(out, { recursive: true });
});

async function waitFor(
  path: string,
  done: (text: string) => boolean,
  child: Deno.ChildProcess,
): Promise<boolean> {
  for (let i = 0; i < 1200; i++) {
    try {
      if (done(await Deno.readTextFile(path))) return true;
    } catch { /* not there yet */ }
    const exited = await Promise.race([
      child.status.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 50)),
    ]);
    if (exited) return false;
  }
  return false;
}

// The tfjs path's resume (it logs every step, so the kill lands at step 14,
// past the warm-up and the step-10 checkpoint, 6 steps before the end); the
// CPU engine's is tests/cpu_engine_test.ts's.
const KILLED = [
  ...MICRO,
  ...NO_FIGURES,
  "--engine",
  "tfjs",
  "--steps",
  "20",
  "--checkpoint-every",
  "10",
  "--warmup",
  "5",
];

// The uninterrupted run both kill tests compare with (the same arguments):
// made once, beside the first test's killed run, and removed when the
// module unloads.
let uninterrupted: Promise<string> | undefined;
function wholeRun(): Promise<string> {
  return uninterrupted ??= (async () => {
    const out = await Deno.makeTempDir();
    const r = await runTool("experiment.ts", [...KILLED, "--out", out]);
    assertEquals(r.code, 0, r.stderr);
    globalThis.addEventListener(
      "unload",
      () => Deno.removeSync(out, { recursive: true }),
    );
    return out;
  })();
}

for (const during of ["ar", "d3pm"] as const) {
  Deno.test(`an experiment killed during ${during} training and resumed ends with the same weights as an uninterrupted one`, async () => {
    const args = KILLED;
    const made = wholeRun();
    // Awaited below; a failure here must not leave it unhandled.
    made.catch(() => {});
    const cut = await Deno.makeTempDir();
    // Killed below: it cannot remove its temporary files; they go with this.
    await using tmp = await tempDir();

    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}examples/experiment.ts`,
        ...args,
        "--out",
        cut,
      ],
      cwd: ROOT,
      env: { TMPDIR: tmp.path },
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Kill a few steps after the step-10 checkpoint of the chosen model.
    const reached = await waitFor(
      `${cut}/metrics.jsonl`,
      (t) => t.includes(`"model":"${during}","seed":0,"step":14`),
      child,
    );
    assert(reached, "the run ended before it could be killed");
    child.kill("SIGKILL");
    await child.status;
    await Deno.stat(`${cut}/results.json`).then(
      () => assert(false, "the killed run finished"),
      () => {},
    );

    const resumed = await runTool("experiment.ts", [
      ...args,
      "--out",
      cut,
      "--resume",
    ]);
    assertEquals(resumed.code, 0, resumed.stderr);
    const whole = await made;
    for (const m of ["ar", "d3pm"]) {
      const a = await Deno.readFile(`${whole}/seed-0/${m}/model.safetensors`);
      const b = await Deno.readFile(`${cut}/seed-0/${m}/model.safetensors`);
      assertEquals(b, a, `${m} weights differ after resume`);
    }
    await Deno.remove(cut, { recursive: true });
  });
}

Deno.test("the sample and infill tools run on a finished run and refuse bad options", async () => {
  const out = await Deno.makeTempDir();
  assertEquals(
    (await runTool("experiment.ts", [
      ...MICRO,
      ...NO_FIGURES,
      "--steps",
      "4",
      "--warmup",
      "1",
      "--out",
      out,
    ]))
      .code,
    0,
  );
  const s = await runTool("sample.ts", [
    "--run",
    out,
    "--steps",
    "8",
    "--every",
    "4",
  ]);
  assertEquals(s.code, 0, s.stderr);
  assert(
    s.stdout.includes("--- step 4/8") && s.stdout.includes("=== sample 1"),
  );
  const f = await runTool("infill.ts", [
    "--run",
    out,
    "--text",
    "ab[MASK*3]cd",
    "--steps",
    "4",
    "--quiet",
  ]);
  assertEquals(f.code, 0, f.stderr);
  const filled = f.stdout.trim();
  assert(filled.startsWith("ab") && filled.endsWith("cd"), filled);
  // --temperature 0 is greedy: the same text whatever the sampler's seed
  // (a denoiser's by confidence: under ancestral the order of reveals is
  // drawn).
  for (
    const [tool, args] of [
      ["sample.ts", ["--model", "ar", "--quiet"]],
      ["sample.ts", ["--steps", "4", "--strategy", "confidence", "--quiet"]],
      // On the CPU engine: the AR by its argmax plan, the D3PM by the
      // JavaScript sampler reading the engine's forward pass.
      ["sample.ts", ["--model", "ar", "--engine", "cpu", "--quiet"]],
      ["sample.ts", [
        "--engine",
        "cpu",
        "--steps",
        "4",
        "--strategy",
        "confidence",
        "--quiet",
      ]],
      ["infill.ts", [
        "--text",
        "ab[MASK*3]cd",
        "--steps",
        "4",
        "--strategy",
        "confidence",
        "--quiet",
      ]],
    ] as const
  ) {
    const texts: string[] = [];
    for (const rng of ["1", "2"]) {
      const g = await runTool(tool, [
        "--run",
        out,
        ...args,
        "--temperature",
        "0",
        "--rng",
        rng,
      ]);
      assertEquals(g.code, 0, g.stderr);
      texts.push(g.stdout);
    }
    assertEquals(texts[0], texts[1], `${tool} ${args.join(" ")}`);
  }
  const cold = await runTool("sample.ts", [
    "--run",
    out,
    "--temperature",
    "-1",
  ]);
  assertMatch(
    errorLine(cold),
    /^error: Option --temperature must be a number ≥ 0 \(0: greedy\), got -1/,
  );
  const bad = await runTool("infill.ts", ["--run", out, "--text", "no blanks"]);
  assertMatch(errorLine(bad), /^error: The text has no blank/);
  const missing = await runTool("sample.ts", ["--run", `${out}/nope`]);
  assertMatch(
    errorLine(missing),
    /^error: Cannot read run .*nope: no config.json there/,
  );
  await Deno.remove(out, { recursive: true });
});
