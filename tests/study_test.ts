// `deno task study epochs` end to end at a minuscule size (seconds), and its
// one-line errors.
import { assert, assertEquals, assertMatch } from "@std/assert";
import { resolveConfig } from "@d3pm/experiment";
import { adaptationCells } from "@d3pm/experiment/studies";
import { errorLine, exists, runTool } from "./_run.ts";

Deno.test({
  name:
    "study epochs writes a JSON line per run and epoch, a report and its charts",
  fn: async () => {
    const out = await Deno.makeTempDir();
    try {
      const r = await runTool("study.ts", [
        "epochs",
        "--preset",
        "micro",
        "--u",
        "1000,2000",
        "--tokens",
        "6000",
        "--dropouts",
        "0,0.1",
        "--decays",
        "0.1",
        "--patience",
        "2",
        "--valid-blocks",
        "2",
        "--out",
        out,
      ]);
      assertEquals(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      // The same lines on stdout and in the results file.
      const file = (await Deno.readTextFile(`${out}/epochs.jsonl`)).trim();
      assertEquals(file.split("\n").map((l) => JSON.parse(l)), lines);
      const points = lines.filter((l) => typeof l.epoch === "number");
      for (const p of points) {
        assertEquals(p.study, "epochs");
        assert(Number.isFinite(p.valid) && p.valid > 0);
        assert(p.flops > 0 && p.tokens > 0);
        assertEquals(p.bound, p.model === "d3pm");
      }
      // Both sweep runs validate from epoch 1; both U have a D3PM curve.
      for (const dropout of [0, 0.1]) {
        assert(
          points.some((p) =>
            p.phase === "sweep" && p.dropout === dropout && p.epoch === 1
          ),
        );
      }
      for (const u of [1000, 2000]) {
        assert(points.some((p) => p.u === u && p.model === "d3pm"));
        const v = lines.find((l) => l.u === u && l.verdict)?.verdict;
        assert(v, `no verdict for U = ${u}`);
        assert(v.arBest.epoch >= 1 && v.d3pmBest.epoch >= 1);
      }
      // The D3PM runs its whole budget: at U = 1000, 31 blocks of 32 make
      // 3 steps of 8 blocks an epoch, and 6000 tokens make 8 epochs.
      const d3pm = points.filter((p) => p.u === 1000 && p.model === "d3pm");
      assertEquals(d3pm.map((p) => p.epoch), [1, 2, 3, 4, 5, 6, 7, 8]);
      assert(lines.some((l) => l.chosen));
      const report = await Deno.readTextFile(`${out}/report.md`);
      assertMatch(report, /\n\| 1K \| .*\n\| 2K \| /);
      assertMatch(report, /- U = 2K: (no crossover|the D3PM's bound falls)/);
      for (const svg of ["valid-vs-epochs", "valid-vs-flops", "sweep"]) {
        const text = await Deno.readTextFile(`${out}/${svg}.svg`);
        assert(text.startsWith("<svg"), svg);
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("study refuses a bad study name or flag with one line, before writing the study's folder", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["nope"],
      /^error: Unknown study "nope": expected one of epochs, adaptation$/,
    ],
    [
      ["epochs", "--scale", "huge"],
      /^error: Option --scale must be one of cpu, gpu, got "huge"$/,
    ],
    [
      ["epochs", "--tokens", "0"],
      /^error: Option --tokens must be a positive integer, got 0$/,
    ],
    [["epochs", "--bogus", "1"], /^error: Unknown option --bogus: accepted/],
    [
      ["adaptation", "--on", "slurm", "--jobs", "2"],
      /^error: Option --jobs applies only to --on local, not --on slurm: leave it out$/,
    ],
    [
      ["adaptation", "--time", "01:00:00"],
      /^error: Option --time applies only to --on slurm, not --on local: leave it out$/,
    ],
    [
      ["adaptation", "--source-steps", "1000"],
      /^error: Option --source-steps must be in \[1, 999\] \(below --steps 1000: the adapted D3PM trains the rest\), got 1000$/,
    ],
    [
      ["adaptation", "--cell", "nope"],
      /^error: Unknown cell "nope" of the adaptation study: --cell takes a name of its plan/,
    ],
    [
      ["adaptation", "--sweep", "--collect"],
      /^error: Options --sweep and --collect do not go together/,
    ],
  ];
  const tmp = await Deno.makeTempDir();
  try {
    for (const [given, pattern] of cases) {
      // Each refusal comes before the study writes its folder.
      const dir = `${tmp}/x`;
      const args = given[0] === "adaptation" ? [...given, "--dir", dir] : given;
      const r = await runTool("study.ts", args);
      assertEquals(r.code, 1, args.join(" "));
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
      assertMatch(errorLine(r), pattern);
      assertEquals(await exists(dir), false, `${args.join(" ")} wrote ${dir}`);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("study epochs --help lists its options", async () => {
  const r = await runTool("study.ts", ["epochs", "--help"]);
  assertEquals(r.code, 0);
  for (const flag of ["--scale", "--out", "--seed", "--u", "--tokens"]) {
    assert(r.stdout.includes(flag), flag);
  }
});

Deno.test("study adaptation --help lists its options", async () => {
  const r = await runTool("study.ts", ["adaptation", "--help"]);
  assertEquals(r.code, 0);
  for (
    const flag of [
      "--preset",
      "--seeds",
      "--source-steps",
      "--anneal-steps",
      "--gen-samples",
      "--exact-blocks",
      "--dir",
      "--on local|slurm",
      "--jobs",
      "--dry-run",
      "--collect",
    ]
  ) {
    assert(r.stdout.includes(flag), flag);
  }
});

Deno.test("study adaptation --collect tables the plan in DIR/sweep.json, and refuses an option that contradicts it", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const dir = `${tmp}/s`;
    const plan = { preset: "micro", seeds: [0], steps: 100, dir } as const;
    const args = ["--preset", "micro", "--seeds", "1", "--steps", "100"];
    const swept = await runTool("study.ts", [
      "adaptation",
      ...args,
      "--dir",
      dir,
      "--sweep",
    ]);
    assertEquals(swept.code, 0, swept.stderr);
    // The AR cell of that plan, finished.
    const ar = adaptationCells(plan).find((c) => c.name === "ar_seed-0")!;
    await Deno.mkdir(ar.out, { recursive: true });
    await Deno.writeTextFile(
      `${ar.out}/results.json`,
      JSON.stringify({
        config: resolveConfig(ar.options),
        judge: "a judge",
        data: { unigramEntropy: 6.5 },
        results: [{
          model: "ar",
          seed: 0,
          training: { tokens: 3200 },
          test: { bpt: 6.85, bound: false },
          generation: { genPpl: 262.5, entropy: 4.37 },
        }],
      }),
    );
    // Another budget than the plan's: refused in one line, nothing written.
    const other = await runTool("study.ts", [
      "adaptation",
      "--collect",
      "--steps",
      "800",
      "--dir",
      dir,
    ]);
    assertEquals(other.code, 1, other.stderr);
    assertEquals(other.stderr.trim().split("\n").length, 1, other.stderr);
    assertMatch(
      errorLine(other),
      /^error: Option --steps 800 contradicts the study's plan in .*\/sweep\.json \(--steps 100\): leave it out, --collect takes the plan's$/,
    );
    assertEquals(await exists(`${dir}/adaptation.json`), false);
    // No options but the folder (the defaults are tiny, seeds 0..2): the
    // plan's micro preset, 100 steps, seed 0.
    const r = await runTool("study.ts", [
      "adaptation",
      "--collect",
      "--dir",
      dir,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const t = JSON.parse(await Deno.readTextFile(`${dir}/adaptation.json`));
    assertEquals([t.preset, t.steps, t.sourceSteps, t.seeds], [
      "micro",
      100,
      50,
      [0],
    ]);
    assertEquals(t.rows[0].seeds.length, 1);
    assertEquals(t.missing.length, 5);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
