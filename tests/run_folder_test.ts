// A run folder never lies: each scenario of the run-folder issue, end to end
// through the experiment command line.
import { assert, assertEquals, assertMatch } from "@std/assert";
import { loadCheckpoint, saveCheckpoint } from "@d3pm/train";
import { tempDir } from "@d3pm/core/testing";
import { curvesOf } from "@d3pm/experiment/charts";
import {
  copyFolder,
  errorLine,
  killAt,
  NO_FIGURES_EVAL,
  once,
  ROOT,
  runTool,
} from "./_run.ts";

// The tfjs path, named: its run folder logs every step, which the kills
// (at the D3PM's step 14) and the metrics checks below count on; `auto`
// trains on the CPU engine where no GPU is, logging every --log-every
// steps (its resume: tests/cpu_engine_test.ts).
const QUICK = [
  "--preset",
  "micro",
  "--steps",
  "6",
  "--warmup",
  "1",
  "--engine",
  "tfjs",
];

async function finishedRun(extra: string[] = []): Promise<string> {
  const out = await Deno.makeTempDir();
  const r = await runTool("experiment.ts", [
    ...QUICK,
    ...NO_FIGURES_EVAL,
    ...extra,
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.stderr);
  return out;
}

// The finished default run, made once: each test that changes it (a
// refused resume, a failed --force, a --force that moves it aside) takes a
// copy of its own.
const plainRun = once(async () => ({ out: await finishedRun() }));
async function copyOfPlainRun(): Promise<string> {
  return await copyFolder((await plainRun()).out);
}

// A 30-step run with a checkpoint every 10 steps, for the kills below.
const KILLED_ARGS = [
  ...QUICK,
  ...NO_FIGURES_EVAL,
  "--steps",
  "30",
  "--checkpoint-every",
  "10",
];

// Two BLAS threads, named: the runs below that are resumed where they were
// begun (the same engine, bit for bit) resume on two, and the thread-count
// test resumes its copy on one.
const TWO_THREADS = { OPENBLAS_NUM_THREADS: "2" };

// The same 30-step run twice, on two threads: once whole, once killed at
// the D3PM's step 14 (its checkpoint of step 10 and the AR's last one on
// disk). Made once for the tests below: they read the whole run and each
// resumes its own copy of the killed one, as it is left on disk.
const madeWholeAndKilled = once(async (tempDir) => {
  const whole = await tempDir();
  const r = await runTool(
    "experiment.ts",
    [...KILLED_ARGS, "--out", whole],
    TWO_THREADS,
  );
  assertEquals(r.code, 0, r.stderr);
  const cut = await tempDir();
  await killAt(
    KILLED_ARGS,
    cut,
    '"model":"d3pm","seed":0,"step":14',
    600_000,
    TWO_THREADS,
  );
  return { whole, cut };
});
async function wholeAndKilled(): Promise<
  { args: string[]; whole: string; cut: string }
> {
  const { whole, cut } = await madeWholeAndKilled();
  return { args: KILLED_ARGS, whole, cut: await copyFolder(cut) };
}

Deno.test("a changed option is refused on resume with its diff, and a fresh run into a used folder is refused", async () => {
  const out = await copyOfPlainRun();
  const config = await Deno.readTextFile(`${out}/config.json`);
  const fresh = await runTool("experiment.ts", [
    ...QUICK,
    "--lr",
    "0.0001",
    "--out",
    out,
  ]);
  assertEquals(fresh.code, 1);
  assertMatch(errorLine(fresh), /already holds a run: pass --resume/);
  const resumed = await runTool("experiment.ts", [
    ...QUICK,
    ...NO_FIGURES_EVAL,
    "--lr",
    "0.0001",
    "--out",
    out,
    "--resume",
  ]);
  assertEquals(resumed.code, 1);
  assertMatch(
    errorLine(resumed),
    /^error: Cannot resume .*: --lr is 0\.0001 but the run used 0\.005/,
  );
  assertEquals(await Deno.readTextFile(`${out}/config.json`), config);
  await Deno.remove(out, { recursive: true });
});

Deno.test("a run that fails validation writes nothing, even with --force", async () => {
  const out = await copyOfPlainRun();
  const before = await Deno.readTextFile(`${out}/config.json`);
  const r = await runTool("experiment.ts", [
    ...QUICK,
    "--data",
    `${out}/missing`,
    "--diffusion-steps",
    "1000",
    "--out",
    out,
    "--force",
  ]);
  assertEquals(r.code, 1);
  assertMatch(errorLine(r), /^error: Cannot read data directory/);
  assertEquals(await Deno.readTextFile(`${out}/config.json`), before);
  const s = await runTool("sample.ts", ["--run", out, "--quiet"]);
  assertEquals(s.code, 0, s.stderr); // default steps min(64, T = 50)
  await Deno.remove(out, { recursive: true });
});

Deno.test("--force moves the earlier run aside instead of mixing with it", async () => {
  const out = await copyOfPlainRun();
  const r = await runTool("experiment.ts", [
    ...QUICK,
    ...NO_FIGURES_EVAL,
    "--seeds",
    "1",
    "--lr",
    "0.002",
    "--out",
    out,
    "--force",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const moved = r.stderr.match(/moved the earlier run in .* to (\S+)/)?.[1];
  assert(moved, r.stderr);
  assertEquals(
    JSON.parse(await Deno.readTextFile(`${moved}/config.json`)).lr,
    0.005,
  );
  assertEquals(
    JSON.parse(await Deno.readTextFile(`${out}/config.json`)).lr,
    0.002,
  );
  const metrics = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim()
    .split("\n").map((l) => JSON.parse(l)).filter((m) => "loss" in m);
  assertEquals(metrics.length, 12); // 6 steps × 2 models, nothing of the old run
  await Deno.remove(out, { recursive: true });
  await Deno.remove(moved!, { recursive: true });
});

Deno.test("a resumed run keeps its own tokenizer only when the vocabulary matches", async () => {
  const out = await finishedRun(["--tokenizer", "bpe", "--vocab-size", "300"]);
  const r = await runTool("experiment.ts", [
    ...QUICK,
    ...NO_FIGURES_EVAL,
    "--tokenizer",
    "bpe",
    "--vocab-size",
    "320",
    "--out",
    out,
    "--resume",
  ]);
  assertEquals(r.code, 1);
  assertMatch(errorLine(r), /--vocab-size is 320 but the run used 300/);
  const results = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
  assertEquals(results.tokenizer.vocabSize, 300);
  await Deno.remove(out, { recursive: true });
});

Deno.test("after a kill, resume reports real training seconds, tokens/s and final loss, drops a torn metrics line and removes orphan temp files", async () => {
  const { args, whole, cut } = await wholeAndKilled();
  // What a full disk or a kill mid-write leaves behind.
  await Deno.writeTextFile(`${cut}/metrics.jsonl`, '{"model":"d3pm","se', {
    append: true,
  });
  const orphan =
    `${cut}/seed-0/d3pm/checkpoint.safetensors.${crypto.randomUUID()}.tmp`;
  await Deno.writeFile(orphan, new Uint8Array(1000));
  const r = await runTool(
    "experiment.ts",
    [...args, "--out", cut, "--resume"],
    TWO_THREADS,
  );
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stderr, /torn record/);
  await Deno.stat(orphan).then(() => assert(false, "orphan kept"), () => {});
  // Only the torn tail went: read as the report and the dashboard read the
  // append-only log (a resumed run's redone steps replace the first try's),
  // every step's loss and validation are the uninterrupted run's, bit for bit.
  const curves = async (dir: string) =>
    curvesOf(
      (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n")
        .map((l) => JSON.parse(l)),
    );
  assertEquals(await curves(cut), await curves(whole));
  const a = JSON.parse(await Deno.readTextFile(`${whole}/results.json`));
  const b = JSON.parse(await Deno.readTextFile(`${cut}/results.json`));
  for (const i of [0, 1]) {
    const [ta, tb] = [a.results[i].training, b.results[i].training];
    assertEquals(tb.lastLoss, ta.lastLoss, `${a.results[i].model} final loss`);
    assert(tb.seconds > 0.3 * ta.seconds, `${tb.seconds} s vs ${ta.seconds} s`);
    assert(tb.tokens / tb.seconds < 4 * (ta.tokens / ta.seconds), "tokens/s");
  }
  const report = await Deno.readTextFile(`${cut}/report.md`);
  const training = report.slice(report.indexOf("## Training"));
  assert(!training.includes("–"), `a training figure is missing: ${training}`);
  // Resumed where it started: one engine span per model, as the whole run's.
  for (const i of [0, 1]) {
    assertEquals(b.results[i].training.engines, a.results[i].training.engines);
    assertEquals(b.results[i].training.engines.length, 1);
    assertEquals(b.results[i].training.engines[0].fromStep, 0);
  }
  assert(!report.includes("Resumed on another engine"));
  await Deno.remove(cut, { recursive: true });
});

Deno.test("a run resumed with another thread count says which steps each trained, in results.json and the report", async () => {
  // Killed on two threads (the AR finished, the D3PM at its step 14).
  const { args, cut } = await wholeAndKilled();
  // The thread count may change on resume (another node of a cluster); the
  // BLAS's rounding then changes with it.
  const r = await runTool(
    "experiment.ts",
    [...args, "--out", cut, "--resume"],
    {
      OPENBLAS_NUM_THREADS: "1",
    },
  );
  assertEquals(r.code, 0, r.stderr);
  const results = JSON.parse(await Deno.readTextFile(`${cut}/results.json`))
    .results;
  const spans = (model: string) =>
    results.find((m: { model: string }) => m.model === model).training.engines;
  const ar = spans("ar"), d3pm = spans("d3pm");
  // The AR had finished on 2 threads: its resume trained nothing.
  assertEquals(ar.length, 1);
  assertMatch(ar[0].engine, /^tfjs on blas.*, 2 threads/);
  assertEquals(d3pm.length, 2);
  assertEquals(d3pm[0], ar[0]);
  assertMatch(d3pm[1].engine, /^tfjs on blas.*, 1 threads/);
  assertEquals(d3pm[1].fromStep, 10); // the last checkpoint before the kill
  const report = await Deno.readTextFile(`${cut}/report.md`);
  assertMatch(
    report.replaceAll("\n", " "),
    /\*\*Resumed on another engine\*\*.*seed 0 d3pm: steps 1–10 on tfjs on blas.*2 threads, steps 11–30 on tfjs on blas.*1 threads/,
  );
  // The AR, finished on 2 threads, was evaluated on 1: said apart (the
  // D3PM's last steps ran where it was evaluated: not).
  const evaluatedOn = (model: string) =>
    results.find((m: { model: string }) => m.model === model).evaluatedOn;
  assertMatch(evaluatedOn("ar"), /^tfjs on blas.*, 1 threads/);
  assertEquals(evaluatedOn("d3pm"), d3pm[1].engine);
  const elsewhere = (report.split(
    "**Evaluated on another engine than trained it**",
  )[1] ?? "").split("\n\n")[0].replaceAll("\n", " ");
  assertMatch(
    elsewhere,
    /: seed 0 AR trained on tfjs on blas.*2 threads, evaluated on tfjs on blas.*1 threads\.$/,
  );
  assert(!elsewhere.includes("D3PM"), elsewhere);
  await Deno.remove(cut, { recursive: true });
});

Deno.test("a run made before --alibi and --alibi-mode existed still resumes, and ends where an uninterrupted run ends", async () => {
  const { args, whole, cut } = await wholeAndKilled();
  // Remove the keys from config.json and from every checkpoint, as an
  // older version wrote them.
  const strip = (c: Record<string, unknown>) => {
    delete c.alibi;
    delete c.alibiMode;
    return c;
  };
  const configPath = `${cut}/config.json`;
  await Deno.writeTextFile(
    configPath,
    JSON.stringify(strip(JSON.parse(await Deno.readTextFile(configPath)))),
  );
  let checkpoints = 0;
  for (const kind of ["ar", "d3pm"]) {
    const path = `${cut}/seed-0/${kind}/checkpoint.safetensors`;
    const ck = await loadCheckpoint(path).catch(() => undefined);
    if (!ck) continue;
    const floats = (m: Map<string, { data: Float32Array }>) =>
      new Map([...m].map(([k, v]) => [k, v.data]));
    await saveCheckpoint(path, {
      model: ck.model,
      ema: ck.ema,
      adamM: floats(ck.adamM),
      adamV: floats(ck.adamV),
      state: {
        ...ck.state,
        config: strip(ck.state.config as Record<string, unknown>),
      },
    });
    checkpoints++;
  }
  assertEquals(checkpoints, 2);
  const r = await runTool(
    "experiment.ts",
    [...args, "--out", cut, "--resume"],
    TWO_THREADS,
  );
  assertEquals(r.code, 0, r.stderr);
  const a = JSON.parse(await Deno.readTextFile(`${whole}/results.json`));
  const b = JSON.parse(await Deno.readTextFile(`${cut}/results.json`));
  for (const i of [0, 1]) {
    assertEquals(
      b.results[i].training.lastLoss,
      a.results[i].training.lastLoss,
      a.results[i].model,
    );
  }
  // A real change is still refused.
  const changed = await runTool("experiment.ts", [
    ...args,
    "--alibi",
    "2",
    "--out",
    cut,
    "--resume",
  ]);
  assertEquals(changed.code, 1);
  assertMatch(errorLine(changed), /--alibi is 2 but the run used 0/);
  await Deno.remove(cut, { recursive: true });
});

Deno.test("a second run into a folder in use is refused; a stale lock is taken over", async () => {
  const out = await Deno.makeTempDir();
  // The first run is stopped (SIGSTOP) once it writes its metrics: alive and
  // holding the lock while the second starts, however long that takes, and
  // leaving it the CPU. Its 40 steps only have to outlast the poll below
  // (they are what the fourth run trains again).
  const args = [...QUICK, ...NO_FIGURES_EVAL, "--steps", "40", "--out", out];
  // Killed below: it cannot remove its temporary files; they go with this.
  await using tmp = await tempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}examples/experiment.ts`, ...args],
    cwd: ROOT,
    env: { TMPDIR: tmp.path },
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 2400; i++) {
    if (await Deno.stat(`${out}/metrics.jsonl`).then(() => true, () => false)) {
      break;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill("SIGSTOP");
  const second = await runTool("experiment.ts", [...args, "--resume"]);
  child.kill("SIGKILL");
  assertEquals((await child.status).signal, "SIGKILL", "the first run ended");
  assertEquals(second.code, 75); // FOLDER_BUSY_EXIT: refused, not failed
  assertMatch(
    errorLine(second),
    /is in use by another run \(pid \d+, deno .*examples\/experiment.ts --preset micro .*\); wait for it, or use --out DIR \(if no such run is alive, delete .*\/\.lock\)$/,
  );
  // The killed run's lock is stale now: a resume takes it over.
  const third = await runTool("experiment.ts", [
    ...QUICK,
    ...NO_FIGURES_EVAL,
    "--steps",
    "40",
    "--out",
    out,
    "--resume",
    "--checkpoint-every",
    "100",
  ]);
  assertEquals(third.code, 1); // checkpoint-every differs: refused, lock released
  const fourth = await runTool("experiment.ts", [
    ...args,
    "--resume",
    "--steps",
    "40",
  ]);
  assertMatch(fourth.stderr, /was left by a process that is gone/);
  assertEquals(fourth.code, 0, fourth.stderr);
  await Deno.remove(out, { recursive: true });
});

Deno.test("the report states the command that ran, labels a one-row exact bound, and gives the fraction actually hidden", async () => {
  const out = await finishedRun([
    "--exact-blocks",
    "1",
    "--infill-fraction",
    "0.3",
  ]);
  const report = await Deno.readTextFile(`${out}/report.md`);
  assertMatch(
    report,
    /Command: `deno task experiment --preset micro --steps 6 .*--infill-fraction 0\.3 --out /,
  );
  assertMatch(report, /\(one draw: no error bar\)/);
  assertMatch(report, /\| 0 +\| 30% +\| \d+ \(\d+\.\d%\) +\|/);
  await Deno.remove(out, { recursive: true });
});

Deno.test("bad options fail before anything is written, in one line that names the option", async () => {
  const out = await Deno.makeTempDir();
  const cases: [string[], RegExp][] = [
    [
      ["--steps", "-5"],
      /^error: Option --steps must be a positive integer, got -5$/,
    ],
    [
      ["--clip-norm", "0"],
      /^error: Option --clip-norm must be a number > 0, got 0$/,
    ],
    [
      ["--weight-decay=-5"],
      /^error: Option --weight-decay must be a number ≥ 0, got -5$/,
    ],
    [
      ["--tokenizer", "bpe", "--vocab-size", "3"],
      /^error: Option --vocab-size must be in \[261, /,
    ],
    [
      ["--block-length", "100000"],
      /^error: Option --block-length must be an integer in \[2, 16384\], got 100000$/,
    ],
    [["--steps"], /^error: Option --steps needs a value: a positive integer$/],
    [
      ["--resume", "--force"],
      /^error: Options --resume and --force contradict/,
    ],
  ];
  for (const [args, want] of cases) {
    const r = await runTool("experiment.ts", [
      ...args,
      "--preset",
      "micro",
      "--warmup",
      "1",
      "--out",
      out,
    ]);
    assertEquals(r.code, 1, args.join(" "));
    assertMatch(errorLine(r), want, args.join(" "));
    assert(!r.stderr.includes("    at "), `stack trace for ${args.join(" ")}`);
  }
  assertEquals([...Deno.readDirSync(out)], []);
  await Deno.remove(out, { recursive: true });
});

Deno.test("a diverging run says no checkpoint was written when none was", async () => {
  const out = await Deno.makeTempDir();
  const r = await runTool("experiment.ts", [
    ...QUICK,
    "--weight-decay",
    "1e6",
    "--checkpoint-every",
    "1000",
    "--out",
    out,
  ]);
  assertEquals(r.code, 1);
  assertMatch(errorLine(r), /no checkpoint was written yet/);
  await Deno.remove(out, { recursive: true });
});

Deno.test("Ctrl-C exits 130 and prints how to resume from the checkpoints on disk", async () => {
  const out = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}examples/experiment.ts`,
      ...QUICK,
      "--steps",
      "400",
      "--checkpoint-every",
      "5",
      "--out",
      out,
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const checkpoint = `${out}/seed-0/ar/checkpoint.safetensors`;
  for (let i = 0; i < 2400; i++) {
    if (await Deno.stat(checkpoint).then(() => true, () => false)) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill("SIGINT");
  const { code, stderr } = await child.output();
  assertEquals(code, 130);
  assertMatch(
    new TextDecoder().decode(stderr),
    /interrupted: 1 checkpoint\(s\) in .* \(seed-0\/ar\/checkpoint\.safetensors\); continue with: deno task experiment .*--resume/,
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("a corrupt cached BPE is trained again with a warning, not fatal", async () => {
  const out = await finishedRun(["--tokenizer", "bpe", "--vocab-size", "301"]);
  const dir = `${ROOT}.cache/tokenizers`;
  const cached = [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((n) => n.startsWith("bpe-301-"));
  assertEquals(cached.length, 1);
  await Deno.writeTextFile(
    `${dir}/${cached[0]}`,
    '{"format": "d3pm-bpe", "ver',
  );
  const again = await Deno.makeTempDir();
  const r = await runTool("experiment.ts", [
    ...QUICK,
    ...NO_FIGURES_EVAL,
    "--tokenizer",
    "bpe",
    "--vocab-size",
    "301",
    "--out",
    again,
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(
    r.stderr,
    /warning: the cached tokenizer .*bpe-301-.* is unreadable .*; training it again/,
  );
  JSON.parse(await Deno.readTextFile(`${dir}/${cached[0]}`)); // whole again
  await Deno.remove(out, { recursive: true });
  await Deno.remove(again, { recursive: true });
});
