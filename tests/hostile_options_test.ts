// A second adversarial pass over the experiment's newer options and tools:
// each hostile value refused in one `error: …` line naming what is wrong and
// what is accepted, before any work starts and with nothing written.
import { assert, assertEquals } from "@std/assert";
import { FAST_EVAL, type Ran, runScript } from "./_run.ts";
import { fakeRun } from "../hf/_test_util.ts";

// A tool that ignored its arguments and started long work is killed.
const run = (script: string, args: string[]) => runScript(script, args, 60_000);

// Exactly one stderr line, `error: …`, exit code 1 or 2, no stack trace.
function assertOneLineError(r: Ran, fragment: string): void {
  const lines = r.stderr.trim().split("\n");
  const why = `exit ${r.code}, stderr:\n${r.stderr}`;
  assert(r.code === 1 || r.code === 2, why);
  assertEquals(lines.length, 1, why);
  assert(lines[0].startsWith("error: "), why);
  assert(lines[0].includes(fragment), `"${lines[0]}" lacks "${fragment}"`);
}

Deno.test("evaluate --gen-samples refuses 1 (no interval) and more rows than a run may judge, before reading the run", async () => {
  const none = "/nonexistent/run";
  assertOneLineError(
    await run("examples/evaluate.ts", ["--run", none, "--gen-samples", "1"]),
    "Option --gen-samples must be 0 (off) or at least 2 (a 95% interval needs two samples), got 1",
  );
  assertOneLineError(
    await run("examples/evaluate.ts", [
      "--run",
      none,
      "--gen-samples",
      "100000000",
    ]),
    "Option --gen-samples must be an integer in [0, 65536], got 100000000",
  );
  assertOneLineError(
    await run("examples/evaluate.ts", ["--run", none, "--judge", "self"]),
    "it needs --gen-samples N (N ≥ 2)",
  );
});

Deno.test("experiment: the auto judge's --judge-steps below --warmup is refused before anything is written", async () => {
  const out = `${await Deno.makeTempDir()}/run`;
  assertOneLineError(
    await run("examples/experiment.ts", [
      "--preset",
      "micro",
      "--judge-steps",
      "10",
      "--out",
      out,
    ]),
    "Option --warmup (20) must not exceed --judge-steps (10)",
  );
  assertEquals(await Deno.stat(out).then(() => true, () => false), false);
  await Deno.remove(out.slice(0, -4), { recursive: true });
});

Deno.test("bench:bound and bench:order-bound name a bad run folder in one error line, without a stack trace", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/file`, "x");
  for (const script of ["bench/bound.ts", "bench/order_bound.ts"]) {
    for (
      const [runDir, fragment] of [
        [`${dir}/none`, `Cannot read run ${dir}/none: no config.json there`],
        [`${dir}/file`, `${dir}/file`],
      ]
    ) {
      const r = await run(
        script,
        ["--run", runDir, "--rates-only"].filter(
          (a) => script === "bench/bound.ts" || a !== "--rates-only",
        ),
      );
      const why = `${script}: exit ${r.code}, stderr:\n${r.stderr}`;
      assertEquals(r.code, 1, why);
      assert(!/^\s+at /m.test(r.stderr), why);
      const last = r.stderr.trim().split("\n").at(-1)!;
      assert(last.startsWith("error: ") && last.includes(fragment), why);
    }
  }
  assertOneLineError(
    await run("bench/order_bound.ts", ["--run", dir, "--orders", "4,4"]),
    'Option --orders: "4,4" is not a list of distinct integers in 1..4096',
  );
  await Deno.remove(dir, { recursive: true });
});

// Plant: a bench's --seed defaulting to 0: on a run made with --first-seed 2
// it looked for seed 0 ("has no d3pm model for seed 0").
Deno.test("bench:bound, bench:order-bound and bench:bd3-generation take the run's first seed when --seed is not given, as evaluate and sample do", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // An AR run of seed 2 only: each bench is refused at its model, of seed 2.
    await fakeRun(dir, { models: "ar", firstSeed: 2 });
    for (
      const [script, kind] of [
        ["bench/bound.ts", "d3pm"],
        ["bench/order_bound.ts", "d3pm"],
        ["bench/bd3_generation.ts", "bd3"],
      ]
    ) {
      // After the backend's lines: the error, one line.
      const r = await run(script, ["--run", dir]);
      const last = r.stderr.trim().split("\n").at(-1)!;
      assertEquals(r.code, 1, r.stderr);
      assert(
        last.startsWith(
          `error: ${dir} has no ${kind} model for seed 2: its config.json trains ar for seed 2`,
        ),
        `${script}: ${last}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench:cpu and bench:cpu-profile refuse more threads than the CPU kernels take, before any work", async () => {
  for (const script of ["bench/cpu.ts", "bench/cpu_profile.ts"]) {
    const r = await run(script, ["--threads", "33"]);
    assertEquals(r.code, 2, r.stderr);
    assertEquals(r.stdout, "", script);
    assertOneLineError(
      r,
      "Option --threads must be an integer in [1, 32], got 33",
    );
  }
});

Deno.test("bench:cpu-kernels names a revision without the kernels in one error line (or git's absence)", async () => {
  let hasGit: boolean;
  try {
    hasGit = (await new Deno.Command("git", { args: ["--version"] }).output())
      .success;
  } catch { // Deno.Command throws NotFound where git is not installed
    hasGit = false;
  }
  if (hasGit) {
    assertOneLineError(
      await run("bench/cpu_kernels.ts", ["--against", "no-such-revision"]),
      "Option --against no-such-revision: no cpu/_wasm.ts at that revision",
    );
  }
  // Without git on the PATH (a machine set up with only Node and npm).
  assertOneLineError(
    await runScript("bench/cpu_kernels.ts", ["--against", "main"], 60_000, {
      PATH: "/nonexistent",
    }),
    "Option --against main reads cpu/_wasm.ts at a git revision, and git is not installed",
  );
});

Deno.test("sweep plan refuses a spec file with keys it does not know (a run's config.json), writing nothing", async () => {
  const dir = await Deno.makeTempDir();
  const cases: [unknown, string][] = [
    [{ preset: "micro", steps: 5 }, 'not the key "preset"'],
    [{ options: "micro" }, 'got "micro" for options'],
    [{ options: {}, grid: [1, 2] }, "got [1,2] for grid"],
  ];
  for (const [spec, fragment] of cases) {
    await Deno.writeTextFile(`${dir}/spec.json`, JSON.stringify(spec));
    assertOneLineError(
      await run("examples/sweep.ts", [
        "plan",
        `${dir}/spec.json`,
        "--dir",
        `${dir}/sweep`,
      ]),
      fragment,
    );
  }
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["spec.json"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sweep status and run name a folder that holds no sweep in one line", async () => {
  const dir = await Deno.makeTempDir();
  for (const args of [["status", dir], ["run", dir, "--on", "local"]]) {
    assertOneLineError(
      await run("examples/sweep.ts", args),
      `${dir} holds no sweep (no sweep.json)`,
    );
  }
  assertEquals([...Deno.readDirSync(dir)], []);
  await Deno.remove(dir);
});

// `sweep run DIR --on local --dry-run` ran every cell (13 s for a micro
// cell) where a dry run was asked for; the other way's options were ignored.
Deno.test("sweep refuses an option of the other way of running (--dry-run on local, --jobs on slurm) or of run alone (plan --on, status --wait), running nothing", async () => {
  const dir = await Deno.makeTempDir();
  const sweep = `${dir}/sw`;
  const plan = await run("examples/sweep.ts", [
    "plan",
    "--preset",
    "micro",
    "--dir",
    sweep,
  ]);
  assertEquals(plan.code, 0, plan.stderr);
  const cases: [string[], string][] = [
    [
      ["run", sweep, "--on", "local", "--dry-run"],
      "Option --dry-run applies only to deno task sweep run --on slurm, not --on local: leave it out",
    ],
    [
      ["run", sweep, "--on", "local", "--partition", "gpu"],
      "Option --partition applies only to deno task sweep run --on slurm, not --on local",
    ],
    [
      ["run", sweep, "--on", "slurm", "--dry-run", "--jobs", "2"],
      "Option --jobs applies only to deno task sweep run --on local, not --on slurm",
    ],
    [
      ["plan", "--preset", "micro", "--dir", sweep, "--on", "slurm"],
      "Option --on applies only to deno task sweep run; plan does not take it",
    ],
    [
      ["status", sweep, "--wait"],
      "Option --wait applies only to deno task sweep run --on slurm, not to status",
    ],
  ];
  for (const [args, fragment] of cases) {
    assertOneLineError(await run("examples/sweep.ts", args), fragment);
  }
  assertEquals([...Deno.readDirSync(sweep)].map((e) => e.name).sort(), [
    "logs",
    "sweep.json",
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tools/same_figures refuses a second folder that holds no sweep", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/results.json`, '{"results": []}');
  assertOneLineError(
    await run("tools/same_figures.ts", [dir, dir]),
    `${dir} holds no sweep (no sweep.json)`,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bench/cpu_thread_bits.ts prints its usage for --help and refuses options, without training", async () => {
  const help = await run("bench/cpu_thread_bits.ts", ["--help"]);
  assertEquals(help.code, 0, help.stderr);
  assert(help.stdout.startsWith("deno run -A bench/cpu_thread_bits.ts"));
  assert(!help.stdout.includes('"bench"'), help.stdout);
  assertOneLineError(
    await run("bench/cpu_thread_bits.ts", ["--threads", "4"]),
    "Unknown option --threads",
  );
});

Deno.test("bench/cpu_joins_ab.ts reads its options through the CLI helper: --steps abc is refused in one line, not taken as NaN steps", async () => {
  const help = await run("bench/cpu_joins_ab.ts", ["--help"]);
  assertEquals(help.code, 0, help.stderr);
  assert(help.stdout.startsWith("deno run -A bench/cpu_joins_ab.ts"));
  const steps = await run("bench/cpu_joins_ab.ts", [
    "--old",
    "cpu/mod.ts",
    "--steps",
    "abc",
  ]);
  assertEquals(steps.code, 2, steps.stderr);
  assertOneLineError(
    steps,
    'Option --steps must be a positive integer, got "abc"',
  );
});

/**
 * A micro run on a tiny corpus of one repeated 52-byte line (byte tokens,
 * blocks of 32): `valid` and `test` lines in those splits, with
 * `args` added; its folder, and its output.
 */
async function tinyCorpusRun(
  valid: number,
  test: number,
  args: string[],
): Promise<{ dir: string; r: Awaited<ReturnType<typeof runScript>> }> {
  const dir = await Deno.makeTempDir();
  const line = "the cat sat on the mat and the dog ran to the park \n";
  await Deno.writeTextFile(`${dir}/wiki.train.tokens`, line.repeat(400));
  await Deno.writeTextFile(`${dir}/wiki.valid.tokens`, line.repeat(valid));
  await Deno.writeTextFile(`${dir}/wiki.test.tokens`, line.repeat(test));
  const r = await runScript("examples/experiment.ts", [
    "--preset",
    "micro",
    "--data",
    dir,
    "--steps",
    "2",
    "--warmup",
    "1",
    "--exact-blocks",
    "0",
    "--judge",
    "self",
    ...FAST_EVAL,
    ...args,
    "--out",
    `${dir}/run`,
  ], 120_000);
  return { dir, r };
}

Deno.test("a valid split shorter than --valid-blocks: the report names the blocks validated, not the option", async () => {
  const { dir, r } = await tinyCorpusRun(3, 40, [
    "--log-every",
    "1",
    "--valid-every",
    "2",
    "--valid-blocks",
    "16",
  ]);
  assertEquals(r.code, 0, r.stderr);
  // 3 lines of 52 bytes: 4 blocks of 32 byte tokens.
  assert(r.stderr.includes(" 4 valid and "), r.stderr);
  const report = await Deno.readTextFile(`${dir}/run/report.md`);
  assert(
    report.includes(
      "all 4 blocks of the valid split (--valid-blocks 16 asks for more than it has)",
    ),
    report,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a test split shorter than the 8 infilling blocks, all evaluated: the report names the blocks infilled", async () => {
  const { dir, r } = await tinyCorpusRun(40, 3, [
    "--valid-every",
    "0",
    "--eval-blocks",
    "0",
  ]);
  assertEquals(r.code, 0, r.stderr);
  // 3 lines of 52 bytes: 4 test blocks of 32 byte tokens, all evaluated.
  const results = JSON.parse(
    await Deno.readTextFile(`${dir}/run/results.json`),
  );
  const d3pm = results.results.find((m: { model: string }) =>
    m.model === "d3pm"
  );
  assertEquals(d3pm.infill.blocks, 4);
  const report = await Deno.readTextFile(`${dir}/run/report.md`);
  assert(report.includes("The first 4 test blocks, each token hidden"), report);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the experiment's, sample's, infill's and sweep's integer options take digits only (1e1, 10.0, 0x10, padded refused), writing nothing", async () => {
  const dir = await Deno.makeTempDir();
  const none = `${dir}/none`;
  const cases: [string, string[], string][] = [
    [
      "examples/experiment.ts",
      ["--preset", "micro", "--steps", "1e1", "--out", `${dir}/run`],
      "Option --steps must be a positive integer written in digits, got 1e1 (write 10)",
    ],
    [
      "examples/sample.ts",
      ["--run", none, "--count", "10.0"],
      "Option --count must be a positive integer written in digits, got 10.0 (write 10)",
    ],
    [
      "examples/infill.ts",
      ["--run", none, "--text", "a [MASK]", "--rng", "0x10"],
      'Option --rng must be an integer in [0, 4294967295], got "0x10"',
    ],
    [
      "examples/sweep.ts",
      ["plan", "--dir", `${dir}/sweep`, "--jobs", " 10"],
      'Option --jobs must be an integer in [1, 256], got " 10"',
    ],
    [
      "examples/sweep.ts",
      ["plan", "--dir", `${dir}/sweep`, "--set", "steps=8,1e1"],
      "Option --steps must be a positive integer written in digits, got 1e1 (write 10)",
    ],
    [
      "examples/sweep.ts",
      ["plan", "--dir", `${dir}/sweep`, "--seeds", "0,1e1"],
      'Option --seeds must be a count N (seeds 0..N−1), a range A..B or a list A,B,… of integers in [0, 1000], got "0,1e1"',
    ],
  ];
  for (const [script, args, fragment] of cases) {
    assertOneLineError(await run(script, args), fragment);
  }
  assertEquals([...Deno.readDirSync(dir)], []);
  await Deno.remove(dir);
});
