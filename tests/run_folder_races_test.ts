// Issue 22 end to end, through the command line: no lost run (races,
// --force, --out), no silent wrong figure (checkpoints, data, tokenizer),
// bounded memory and reading, and errors that name what is wrong. Each test
// failed on the code before the fix (see docs/run-folder.md).
import { assert, assertEquals, assertMatch } from "@std/assert";
import {
  AR_FAST_EVAL,
  errorLine,
  NO_FIGURES_EVAL,
  once,
  ROOT,
  runScript,
  runTool,
} from "./_run.ts";
import { tempDir } from "@d3pm/core/testing";

const QUICK = ["--preset", "micro", "--steps", "6", "--warmup", "1"];
const RUN = [...QUICK, ...NO_FIGURES_EVAL, "--judge", "self"];

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

async function until(test: () => Promise<boolean>, ms = 60_000) {
  for (let t = 0; t < ms && !await test(); t += 25) {
    await new Promise((r) => setTimeout(r, 25));
  }
}

// The runs these tests kill cannot remove what they made in the temporary
// folder: theirs is this one, removed when the tests end.
const killedTmp = once(async () => ({ dir: await Deno.makeTempDir() }));

async function spawn(
  args: string[],
  stderr: "piped" | "null" = "null",
): Promise<Deno.ChildProcess> {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}examples/experiment.ts`, ...args],
    cwd: ROOT,
    stdout: "null",
    stderr,
    env: { NO_COLOR: "1", TMPDIR: (await killedTmp()).dir },
  }).spawn();
}

// One finished run, made once (removed when the tests end); each test
// works on its own copy.
const made = once(async (tempDir) => {
  const out = await tempDir();
  const r = await runTool("experiment.ts", [...RUN, "--out", out]);
  assertEquals(r.code, 0, r.stderr);
  return { out };
});
async function finishedCopy(): Promise<string> {
  const copy = await Deno.makeTempDir();
  await new Deno.Command("cp", {
    args: ["-a", `${(await made()).out}/.`, copy],
  })
    .output();
  return copy;
}

// A WikiText folder: the embedded WikiText-2, or given texts.
async function dataDir(texts?: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir();
  for (const split of ["train", "valid", "test"]) {
    if (texts) {
      await Deno.writeTextFile(`${dir}/wiki.${split}.tokens`, texts[split]);
    } else {
      await Deno.copyFile(
        `${ROOT}data/corpus/wikitext-2/wiki.${split}.tokens.gz`,
        `${dir}/wiki.${split}.tokens.gz`,
      );
    }
  }
  return dir;
}

Deno.test("1: --force does not move a folder whose run is alive; the live run keeps it", async () => {
  const out = await Deno.makeTempDir();
  const live = await spawn([...RUN, "--steps", "400", "--out", out]);
  await until(() => exists(`${out}/metrics.jsonl`));
  const forced = await runTool("experiment.ts", [
    ...RUN,
    "--out",
    out,
    "--force",
  ]);
  live.kill("SIGKILL");
  await live.status;
  // Refused, not failed: EX_TEMPFAIL (a sweep leaves such a cell to it).
  assertEquals(forced.code, 75, forced.stderr);
  assertMatch(errorLine(forced), /is in use by another run \(pid \d+, /);
  assertEquals(
    JSON.parse(await Deno.readTextFile(`${out}/config.json`)).steps,
    400,
  );
  const parent = out.slice(0, out.lastIndexOf("/"));
  const name = out.slice(out.lastIndexOf("/") + 1);
  const moved = [...Deno.readDirSync(parent)].filter((e) =>
    e.name.startsWith(`${name}.replaced-`)
  );
  assertEquals(moved, []);
  await Deno.remove(out, { recursive: true });
});

Deno.test("2: a run started while another prepares is refused, and never overwrites it", async () => {
  const out = `${await Deno.makeTempDir()}/run`;
  // The first run's preparation is long: a judge of its own to train.
  const first = await spawn([
    ...QUICK,
    ...NO_FIGURES_EVAL,
    "--judge-steps",
    String(300 + Math.floor(Math.random() * 99)),
    "--out",
    out,
  ]);
  await until(async () => await exists(`${out}/.lock`), 4000);
  const second = await runTool("experiment.ts", [...RUN, "--out", out]);
  if (second.code === 0) {
    // Only possible when the first did not hold the folder: it must not
    // then overwrite what the second finished.
    const finished = await Deno.readTextFile(`${out}/results.json`);
    await first.status;
    assertEquals(
      await Deno.readTextFile(`${out}/results.json`),
      finished,
      "the finished run was overwritten",
    );
  }
  try {
    first.kill("SIGKILL");
  } catch { /* it ended */ }
  await first.status;
  assertEquals(second.code, 75, second.stderr);
  assertMatch(errorLine(second), /is in use by another run/);
  assertEquals(await exists(`${out}/config.json`), false);
  await Deno.remove(out.slice(0, -4), { recursive: true });
});

Deno.test("3: --out and --run must name a folder; --force moves only run folders, trailing slash or not", async () => {
  const empty = await runTool("experiment.ts", [...RUN, "--out="]);
  assertEquals(errorLine(empty), "error: Option --out needs a value: DIR");
  const sample = await runTool("sample.ts", ["--run="]);
  assertEquals(errorLine(sample), "error: Option --run needs a value: DIR");
  // A folder of other things is never moved, with or without --force.
  const other = await Deno.makeTempDir();
  await Deno.writeTextFile(`${other}/notes.txt`, "mine");
  const r = await runTool("experiment.ts", [...RUN, "--out", other, "--force"]);
  assertEquals(r.code, 1);
  assertMatch(
    errorLine(r),
    /holds files but no run .*--force only moves run folders/,
  );
  assertEquals([...Deno.readDirSync(other)].map((e) => e.name), ["notes.txt"]);
  // A run folder given with a trailing slash is moved aside.
  const out = await finishedCopy();
  const forced = await runTool("experiment.ts", [
    ...RUN,
    "--out",
    `${out}/`,
    "--force",
  ]);
  assertEquals(forced.code, 0, forced.stderr);
  const moved = forced.stderr.match(/moved the earlier run in .* to (\S+)/)
    ?.[1];
  assert(moved?.startsWith(`${out}.replaced-`), forced.stderr);
  assert(await exists(`${moved}/results.json`));
  for (const dir of [other, out, moved!]) {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("5, 6: resume refuses a checkpoint of another contestant, and data that changed", async () => {
  const data = await dataDir();
  const out = await Deno.makeTempDir();
  const args = [...RUN, "--data", data, "--out", out];
  assertEquals((await runTool("experiment.ts", args)).code, 0);
  const swapped = await Deno.makeTempDir();
  await new Deno.Command("cp", { args: ["-a", `${out}/.`, swapped] }).output();
  await Deno.copyFile(
    `${swapped}/seed-0/d3pm/checkpoint.safetensors`,
    `${swapped}/seed-0/ar/checkpoint.safetensors`,
  );
  const arBefore = await Deno.readFile(
    `${swapped}/seed-0/ar/model.safetensors`,
  );
  const r5 = await runTool("experiment.ts", [
    ...RUN,
    "--data",
    data,
    "--out",
    swapped,
    "--resume",
  ]);
  assertEquals(r5.code, 1, r5.stderr);
  assertMatch(
    errorLine(r5),
    /different configuration \(contestant: "d3pm" → "ar"\)/,
  );
  assertEquals(
    await Deno.readFile(`${swapped}/seed-0/ar/model.safetensors`),
    arBefore,
  );
  // The train file replaced by another text.
  await Deno.copyFile(
    `${data}/wiki.valid.tokens.gz`,
    `${data}/wiki.train.tokens.gz`,
  );
  const r6 = await runTool("experiment.ts", [...args, "--resume"]);
  assertEquals(r6.code, 1, r6.stderr);
  assertMatch(
    errorLine(r6),
    /Cannot resume .*: the train data changed since the run started \(train SHA-256 [0-9a-f]{12}… then, [0-9a-f]{12}… now\)/,
  );
  for (const dir of [data, out, swapped]) {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("5: resume refuses a checkpoint of another seed copied into a seed's folder, naming both seeds", async () => {
  await using tmp = await tempDir();
  const out = tmp.path;
  const args = [
    ...QUICK,
    ...AR_FAST_EVAL,
    "--gen-samples",
    "0",
    "--judge",
    "self",
    "--models",
    "ar",
    "--seeds",
    "2",
    "--out",
    out,
  ];
  const r = await runTool("experiment.ts", args);
  assertEquals(r.code, 0, r.stderr);
  // Seed 1's checkpoint has seed 0's shapes and contestant: only its seed
  // tells it apart.
  await Deno.copyFile(
    `${out}/seed-1/ar/checkpoint.safetensors`,
    `${out}/seed-0/ar/checkpoint.safetensors`,
  );
  const kept = ["seed-0/ar/model.safetensors", "seed-1/ar/model.safetensors"];
  const before = await Promise.all(
    kept.map((f) => Deno.readFile(`${out}/${f}`)),
  );
  const resumed = await runTool("experiment.ts", [...args, "--resume"]);
  assertEquals(resumed.code, 1, resumed.stderr);
  assertMatch(
    errorLine(resumed),
    /seed-0\/ar\/checkpoint\.safetensors.*different configuration \(seed: 1 → 0\)/,
  );
  assertEquals(
    await Promise.all(kept.map((f) => Deno.readFile(`${out}/${f}`))),
    before,
  );
});

Deno.test("7: a BPE that runs out of pairs is said at the start and recorded; the run then samples and resumes", async () => {
  const article = (i: number) =>
    ` = Article ${i} = \n the cat sat on the mat number ${i} and then it sat again . \n`;
  const text = (n: number, from: number) =>
    Array.from({ length: n }, (_, i) => article(from + i)).join("");
  const data = await dataDir({
    train: text(40, 0),
    valid: text(40, 100),
    test: text(40, 200),
  });
  const out = await Deno.makeTempDir();
  const args = [
    ...RUN,
    "--tokenizer",
    "bpe",
    "--vocab-size",
    "5000",
    "--data",
    data,
    "--out",
    out,
  ];
  const r = await runTool("experiment.ts", args);
  assertEquals(r.code, 0, r.stderr);
  const note = r.stderr.indexOf("note: the train split has no more pairs");
  assert(note >= 0, r.stderr);
  assert(note < r.stderr.indexOf("seed 0"), "said before training");
  const record = JSON.parse(await Deno.readTextFile(`${out}/data.json`));
  assert(record.tokenizer.vocabSize < 5000, JSON.stringify(record));
  assertMatch(
    r.stderr,
    new RegExp(`the BPE has ${record.tokenizer.vocabSize} ids`),
  );
  const s = await runTool("sample.ts", [
    "--run",
    out,
    "--model",
    "ar",
    "--quiet",
  ]);
  assertEquals(s.code, 0, s.stderr);
  const resumed = await runTool("experiment.ts", [...args, "--resume"]);
  assertEquals(resumed.code, 0, resumed.stderr);
  await Deno.remove(data, { recursive: true });
  await Deno.remove(out, { recursive: true });
});

Deno.test("8: the small ones: --rng beyond 32 bits, hex, fractional counts, repeated --gen-steps, --vocab-size of a fixed tokenizer, negative numbers", async () => {
  const none = `${ROOT}runs/none-${crypto.randomUUID()}`;
  const cases: [string, string[], string][] = [
    [
      "sample.ts",
      ["--run", none, "--rng", "4294967296"],
      "Option --rng must be an integer in [0, 4294967295], got 4294967296",
    ],
    [
      "sample.ts",
      ["--run", none, "--rng", "1.5"],
      "Option --rng must be an integer in [0, 4294967295], got 1.5",
    ],
    [
      "sample.ts",
      ["--run", none, "--count", "1.5"],
      "Option --count must be a positive integer, got 1.5",
    ],
    [
      "sample.ts",
      ["--run", none, "--count", "-1"],
      "Option --count must be a positive integer, got -1",
    ],
    [
      "infill.ts",
      ["--text", "a [MASK]", "--rng", "-1"],
      "Option --rng must be an integer in [0, 4294967295], got -1",
    ],
    [
      "tokenizer_train.ts",
      ["--vocab", "-5"],
      "Option --vocab must be an integer ≥ 260, got -5",
    ],
    [
      "experiment.ts",
      [...RUN, "--lr", "0x10"],
      'Option --lr must be a number > 0, got "0x10"',
    ],
    [
      "experiment.ts",
      [...RUN, "--gen-steps", "4,4"],
      "Option --gen-steps must be distinct comma-separated integers",
    ],
    [
      "experiment.ts",
      [...RUN, "--vocab-size", "99999"],
      "Option --vocab-size applies only with --tokenizer bpe, got --tokenizer byte",
    ],
  ];
  for (const [script, args, message] of cases) {
    const r = await runTool(script, args);
    assert(r.code !== 0, `${script} ${args.join(" ")}`);
    assert(
      errorLine(r).startsWith(`error: ${message}`),
      `${script} ${args.join(" ")}: ${errorLine(r)}`,
    );
  }
});

Deno.test("9: sizes that would not fit are refused before allocating, with the figure and the option", async () => {
  const out = `${await Deno.makeTempDir()}/run`;
  const cases: [string[], RegExp][] = [
    [
      ["--batch-size", "65536"],
      /would need about [\d.]+ [GT]iB of memory, .*: lower --batch-size/,
    ],
    [
      ["--n-layer", "100000"],
      /Option --n-layer must be an integer in \[1, 1024\], got 100000/,
    ],
    [
      ["--diffusion-steps", "1e9"],
      /Option --diffusion-steps must be an integer in \[1, 100000\], got 1e9/,
    ],
    [
      ["--gen-batch", "100000"],
      /Option --gen-batch must be an integer in \[1, 65536\], got 100000/,
    ],
    [
      [
        "--diffusion-steps",
        "100000",
        "--eval-blocks",
        "1000",
        "--exact-blocks",
        "1000",
      ],
      /evaluation would cost \d+ times its training .*: lower --exact-blocks or --diffusion-steps/,
    ],
  ];
  for (const [args, want] of cases) {
    const started = performance.now();
    const r = await runTool("experiment.ts", [...RUN, ...args, "--out", out]);
    assertEquals(r.code, 1, args.join(" "));
    assertMatch(errorLine(r), want, args.join(" "));
    assert(performance.now() - started < 30_000, "refused before any work");
    assertEquals(await exists(out), false, "nothing written");
  }
  // The sampler's --steps is bounded by the model's T...
  const run = await finishedCopy();
  const steps = await runTool("sample.ts", [
    "--run",
    run,
    "--steps",
    "1000000",
    "--quiet",
  ]);
  assertEquals(
    errorLine(steps),
    "error: Option --steps must be an integer in [1, 50] (the model's diffusion steps), got 1000000",
  );
  // ...and a process.json claiming 10^9 steps is refused before the
  // sampler allocates.
  const path = `${run}/seed-0/d3pm/process.json`;
  const spec = JSON.parse(await Deno.readTextFile(path));
  await Deno.writeTextFile(path, JSON.stringify({ ...spec, steps: 1e9 }));
  const s = await runTool("sample.ts", ["--run", run, "--quiet"]);
  assertEquals(s.code, 1);
  assertMatch(
    errorLine(s),
    /process.json does not belong to this run: its steps is 1000000000 where the run's configuration gives 50/,
  );
  await Deno.remove(run, { recursive: true });
  await Deno.remove(out.slice(0, -4), { recursive: true });
});

Deno.test("10, 11: run files that are FIFOs, devices or garbage are named; an emptied or damaged metrics log does not block a resume", async () => {
  const run = await finishedCopy();
  const sample = (extra: string[] = []) =>
    runScript(
      "examples/sample.ts",
      ["--run", run, "--quiet", ...extra],
      60_000,
    );
  // A FIFO for config.json: refused at once, not waited on.
  const config = await Deno.readTextFile(`${run}/config.json`);
  await Deno.remove(`${run}/config.json`);
  await new Deno.Command("mkfifo", { args: [`${run}/config.json`] }).output();
  assertMatch(errorLine(await sample()), /config.json: it is a FIFO/);
  await Deno.remove(`${run}/config.json`);
  for (
    const [text, why] of [["null", "got null"], ["[]", "got an array"], [
      "{}",
      "it lacks --preset",
    ]]
  ) {
    await Deno.writeTextFile(`${run}/config.json`, text);
    assertMatch(
      errorLine(await sample()),
      new RegExp(
        `config.json is not a run's configuration: .*${
          why.replace("[", "\\[")
        }`,
      ),
    );
  }
  await Deno.writeTextFile(`${run}/config.json`, config);
  const process = `${run}/seed-0/d3pm/process.json`;
  const spec = await Deno.readTextFile(process);
  await Deno.writeTextFile(process, "{garbage");
  assertMatch(
    errorLine(await sample()),
    /seed-0\/d3pm\/process.json is not valid JSON/,
  );
  await Deno.writeTextFile(process, spec);
  // metrics.jsonl: a device is refused by name...
  const metrics = await Deno.readTextFile(`${run}/metrics.jsonl`);
  await Deno.remove(`${run}/metrics.jsonl`);
  await Deno.symlink("/dev/zero", `${run}/metrics.jsonl`);
  const resume = () =>
    runTool("experiment.ts", [...RUN, "--out", run, "--resume"]);
  const zero = await resume();
  assertEquals(zero.code, 1);
  assertMatch(errorLine(zero), /metrics.jsonl: it is a character device/);
  // ...garbage in the middle is dropped with a warning...
  await Deno.remove(`${run}/metrics.jsonl`);
  const lines = metrics.trim().split("\n");
  lines.splice(3, 0, "garbage, not JSON");
  await Deno.writeTextFile(`${run}/metrics.jsonl`, lines.join("\n") + "\n");
  const damaged = await resume();
  assertEquals(damaged.code, 0, damaged.stderr);
  assertMatch(damaged.stderr, /metrics.jsonl:4 is not a JSON object; ignored/);
  // ...and an emptied log gives results without validation figures.
  await Deno.writeTextFile(`${run}/metrics.jsonl`, "");
  const emptied = await resume();
  assertEquals(emptied.code, 0, emptied.stderr);
  assertMatch(emptied.stderr, /lacks the validation of ar \(seed 0\) at step/);
  await Deno.remove(run, { recursive: true });
});

Deno.test("10: tokenizer:train refuses a FIFO or a device as its input instead of reading it for ever", async () => {
  const dir = await Deno.makeTempDir();
  await new Deno.Command("mkfifo", { args: [`${dir}/in.txt`] }).output();
  for (const input of [`${dir}/in.txt`, "/dev/zero"]) {
    const r = await runScript("examples/tokenizer_train.ts", [
      "--input",
      input,
      "--out",
      `${dir}/bpe.json`,
    ], 30_000);
    assertEquals(r.code, 2, r.stderr);
    assertMatch(
      errorLine(r),
      new RegExp(
        `cannot read --input ${input}: it is a (FIFO|character device)`,
      ),
    );
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("11: Ctrl-C or SIGTERM during preparation does not mention checkpoints that do not exist, and leaves no lock", async () => {
  // SIGTERM (kill, a batch system's time limit) left the folder and its
  // .lock behind, and no note.
  for (const [signal, exit] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    const out = `${await Deno.makeTempDir()}/run`;
    // A judge to train makes the preparation long enough to interrupt.
    const child = await spawn([
      ...QUICK,
      ...NO_FIGURES_EVAL,
      "--judge-steps",
      String(300 + Math.floor(Math.random() * 99)),
      "--out",
      out,
    ], "piped");
    await until(() => exists(`${out}/.lock`), 4000);
    await new Promise((r) => setTimeout(r, 300));
    child.kill(signal);
    const { code, stderr } = await child.output();
    const text = new TextDecoder().decode(stderr);
    assertEquals(code, exit, text);
    assertMatch(
      text,
      /interrupted during preparation: nothing was written to /,
    );
    assert(!text.includes("checkpoint"), text);
    assertEquals(await exists(out), false, "the lock and its folder are gone");
    await Deno.remove(out.slice(0, -4), { recursive: true });
  }
});
