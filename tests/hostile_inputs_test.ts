// End to end: the tokenizer and benchmark tools given hostile or mistaken
// input, as a user would type it: one `error: …` line naming what is wrong
// and what is accepted, no stack trace, nothing written, no work started.
import { assert, assertEquals, assertMatch } from "@std/assert";
import { byteLevelBpe, saveBpeTokenizer } from "@d3pm/tokenizer";
import { type Ran, runScript } from "./_run.ts";

// A tool that ignored its arguments and started a multi-minute benchmark is
// killed after two minutes.
const run = (script: string, args: string[], timeoutMs = 120_000) =>
  runScript(script, args, timeoutMs);

// Exactly one stderr line, `error: …`, and the given exit code.
function assertOneLineError(r: Ran, code: number, fragment: string): void {
  const lines = r.stderr.trim().split("\n");
  const why = `exit ${r.code}, stderr:\n${r.stderr}`;
  assertEquals(r.code, code, why);
  assertEquals(lines.length, 1, why);
  assert(lines[0].startsWith("error: "), why);
  assert(lines[0].includes(fragment), `"${lines[0]}" lacks "${fragment}"`);
  assert(!/^\s+at /m.test(r.stderr), why);
}

async function listing(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir), (e) => e.name)).sort();
}

const TRAIN = "examples/tokenizer_train.ts";

Deno.test("tokenizer:train --out DIR with an existing directory fails in one line and writes nothing", async () => {
  const parent = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${parent}/in.txt`, "hello world ".repeat(50));
    await Deno.mkdir(`${parent}/out`);
    const r = await run(TRAIN, [
      "--input",
      `${parent}/in.txt`,
      "--vocab",
      "260",
      "--out",
      `${parent}/out`,
    ]);
    assertOneLineError(
      r,
      2,
      `--out ${parent}/out is a directory; expected the path of a JSON file to write, such as ${parent}/out/bpe.json`,
    );
    assertEquals(await listing(parent), ["in.txt", "out"]);
    assertEquals(await listing(`${parent}/out`), []);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("tokenizer:train reports other bad input in one line without a stack trace", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const input = `${dir}/in.txt`;
    await Deno.writeTextFile(input, "hello world ".repeat(50));
    await Deno.writeTextFile(`${dir}/bad.gz`, "not gzip");
    await Deno.mkdir(`${dir}/adir`);
    const base = ["--vocab", "260", "--out", `${dir}/bpe.json`];
    const cases: [string[], number, string][] = [
      [["--input", `${dir}/adir`], 2, `cannot read --input ${dir}/adir`],
      [["--input", `${dir}/bad.gz`], 2, `cannot gunzip --input ${dir}/bad.gz`],
      [
        ["--input", `${dir}/none.txt`],
        2,
        `cannot read --input ${dir}/none.txt`,
      ],
      [["--input="], 2, "Option --input needs a value: PATH"],
      [
        ["--input", input, "--out", `${input}/x.json`],
        2,
        `--out ${input}/x.json is inside ${input}, which is a file`,
      ],
      // Not only the parent: the file may be further up.
      [
        ["--input", input, "--out", `${input}/sub/x.json`],
        2,
        `--out ${input}/sub/x.json is inside ${input}, which is a file`,
      ],
      [["--input", input, "--out="], 2, "Option --out needs a value: PATH"],
      [["--input", input, "--out", `${dir}/adir/`], 2, "is not a file path"],
      [
        ["--input", input, "--vocab", "3"],
        2,
        "Option --vocab must be an integer ≥ 260, got 3",
      ],
      [
        ["--input", input, "--bogus"],
        2,
        "Unknown option --bogus: accepted options are --vocab, --out, --input, --min-frequency, --help",
      ],
      [["--input", input, "stray"], 2, 'Unexpected argument "stray"'],
    ];
    for (const [args, code, fragment] of cases) {
      assertOneLineError(await run(TRAIN, [...base, ...args]), code, fragment);
    }
    assertEquals(await listing(dir), ["adir", "bad.gz", "in.txt"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizer:train keeps an existing --out that is not its tokenizer (a user's file, its own --input, a FIFO, a link), and replaces its own", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const input = `${dir}/in.txt`;
    const text = "hello world ".repeat(50);
    await Deno.writeTextFile(input, text);
    await Deno.writeTextFile(`${dir}/notes.json`, '{"mine": true}');
    await Deno.symlink(`${dir}/notes.json`, `${dir}/link.json`);
    await Deno.symlink(`${dir}/none.json`, `${dir}/dangling.json`);
    const fifo = `${dir}/fifo`;
    await new Deno.Command("mkfifo", { args: [fifo] }).output();
    const kept = "exists and is not a tokenizer this command wrote";
    const link = "is a symbolic link (writing would replace the link";
    const cases: [string, string][] = [
      [`${dir}/notes.json`, kept],
      [input, kept],
      [fifo, kept],
      [`${dir}/link.json`, link],
      [`${dir}/dangling.json`, link],
    ];
    const args = (
      out: string,
    ) => ["--input", input, "--vocab", "260", "--out", out];
    for (const [out, fragment] of cases) {
      assertOneLineError(await run(TRAIN, args(out)), 2, fragment);
    }
    assertEquals(await Deno.readTextFile(input), text);
    assertEquals(
      await Deno.readTextFile(`${dir}/notes.json`),
      '{"mine": true}',
    );
    assert((await Deno.lstat(`${dir}/link.json`)).isSymlink);
    assert((await Deno.lstat(`${dir}/dangling.json`)).isSymlink);
    // Its own tokenizer is replaced (running the same command twice works).
    for (let i = 0; i < 2; i++) {
      const r = await run(TRAIN, args(`${dir}/bpe.json`));
      assertEquals(r.code, 0, r.stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizer:train keeps a run's tokenizer and the experiment's cached BPE (d3pm-bpe files it did not write), writes no new file into a run folder or the cache, and replaces its own, old ones included", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const input = `${dir}/in.txt`;
    await Deno.writeTextFile(input, "hello world ".repeat(50));
    const tok = byteLevelBpe([[104, 105]]);
    await Deno.mkdir(`${dir}/run`);
    await Deno.writeTextFile(`${dir}/run/config.json`, "{}");
    await saveBpeTokenizer(tok, `${dir}/run/tokenizer.json`);
    await saveBpeTokenizer(tok, `${dir}/cache.json`, {
      meta: { command: "experiment", vocabSize: 300 },
    });
    await saveBpeTokenizer(tok, `${dir}/bare.json`);
    const old = { input, vocabSize: 261, minFrequency: 2, trainSeconds: 0 };
    await saveBpeTokenizer(tok, `${dir}/old.json`, { meta: old });
    const args = (
      out: string,
    ) => ["--input", input, "--vocab", "260", "--out", out];
    const cases: [string, string][] = [
      ["run/tokenizer.json", "is in a run folder ("],
      ["run/new.json", "is in a run folder ("],
      [
        ".cache/tokenizers/bpe-300-0c202e0b5d919429.json",
        "is in the experiment's tokenizer cache",
      ],
      ["cache.json", "it is the experiment's cached tokenizer"],
      ["bare.json", `without "meta": {"command": "tokenizer:train"}`],
    ];
    await Deno.mkdir(`${dir}/.cache/tokenizers`, { recursive: true });
    for (const [out, fragment] of cases) {
      const before = await Deno.readTextFile(`${dir}/${out}`).catch(() => null);
      assertOneLineError(await run(TRAIN, args(`${dir}/${out}`)), 2, fragment);
      assertEquals(
        await Deno.readTextFile(`${dir}/${out}`).catch(() => null),
        before,
      );
    }
    const r = await run(TRAIN, args(`${dir}/old.json`));
    assertEquals(r.code, 0, r.stderr);
    const meta = JSON.parse(await Deno.readTextFile(`${dir}/old.json`)).meta;
    assertEquals(meta.command, "tokenizer:train");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizer:train --help prints the usage and exits 0", async () => {
  const r = await run(TRAIN, ["--help"]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stdout, /^deno task tokenizer:train \[options\]/);
  assert(r.stdout.includes("--out PATH"));
});

Deno.test("tokenizer:train warns with the count of invalid UTF-8 sequences in its input", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const input = `${dir}/in.bin`;
    const text = new TextEncoder().encode("hello world ".repeat(20));
    await Deno.writeFile(input, new Uint8Array([...text, 0xff, 0xfe, 0x20]));
    const r = await run(TRAIN, [
      "--input",
      input,
      "--vocab",
      "260",
      "--out",
      `${dir}/bpe.json`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const warnings = r.stderr.split("\n").filter((l) =>
      l.startsWith("warning: ")
    );
    assertEquals(warnings, [
      `warning: --input ${input} is not valid UTF-8: 2 invalid byte sequence(s) were replaced by U+FFFD and trained on as such`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const BENCHES: [string, string[], string][] = [
  // script, a bad value of one of its options, the error it gives
  [
    "bench/backend.ts",
    ["--steps", "-5"],
    "Option --steps must be a positive integer, got -5",
  ],
  [
    "bench/transformer.ts",
    ["--backend", "gpu"],
    "Option --backend must be one of auto,",
  ],
  [
    "bench/tokenizer.ts",
    ["--reps", "0"],
    "Option --reps must be a positive integer, got 0",
  ],
  ["bench/diffusion.ts", ["--steps", "5"], "Unknown option --steps"],
  [
    "bench/cpu.ts",
    ["--shapes", "tiny,huge"],
    "Option --shapes has huge; accepted: a comma-separated list of tiny, reference",
  ],
];

for (const [script, bad, message] of BENCHES) {
  const task = `bench:${script.slice("bench/".length, -3)}`;
  Deno.test(`${task} --help prints its usage and exits 0 without running`, async () => {
    for (const flag of ["--help", "-h"]) {
      const r = await run(script, [flag], 60_000);
      assertEquals(r.code, 0, r.stderr);
      assertMatch(r.stdout, new RegExp(`^deno task ${task} \\[options\\]`));
      assert(r.stdout.includes("-h, --help"), r.stdout);
    }
  });

  Deno.test(`${task} refuses unknown options, stray arguments and bad values with exit code 2 before any work`, async () => {
    assertOneLineError(
      await run(script, ["--bogus", "1"], 60_000),
      2,
      "Unknown option --bogus: accepted options are ",
    );
    assertOneLineError(
      await run(script, ["stray"], 60_000),
      2,
      'Unexpected argument "stray"',
    );
    assertOneLineError(await run(script, bad, 60_000), 2, message);
  });
}

// Through bash, since Deno.Command takes its arguments as strings: printf
// writes the bytes. Plants (each fails this test): parseCommandLine not
// calling checkArgumentText (the code before: the sample ran on a prompt of
// U+FFFD, and the experiment made `runs-<U+FFFD>`); the check reading only
// the arguments after an option, or only `--key=value`.
Deno.test("an argument that is not UTF-8 is refused in one line naming its option, before anything is read or written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const byBash = async (script: string, args: string) => {
      const out = await new Deno.Command("bash", {
        args: [
          "-c",
          `exec "$0" run -A ${script} ${args}`,
          Deno.execPath(),
        ],
        cwd: new URL("..", import.meta.url),
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
        signal: AbortSignal.timeout(120_000),
      }).output();
      const dec = new TextDecoder();
      return {
        code: out.code,
        stdout: dec.decode(out.stdout),
        stderr: dec.decode(out.stderr),
      };
    };
    const prompt = await byBash(
      "examples/sample.ts",
      `--run ${dir}/none --prompt "$(printf 'caf\\xe9')"`,
    );
    assertOneLineError(
      prompt,
      1,
      'The value of --prompt ("caf\uFFFD") is not UTF-8: it holds U+FFFD',
    );
    const out = await byBash(
      "examples/experiment.ts",
      `--preset micro "--out=${dir}/run-$(printf '\\xff')"`,
    );
    assertOneLineError(
      out,
      1,
      `The value of --out ("--out=${dir}/run-\uFFFD")`,
    );
    const stray = await byBash("examples/sample.ts", `"$(printf '\\xfe')"`);
    assertOneLineError(stray, 1, 'Argument 1 ("\uFFFD") is not UTF-8');
    assertEquals(await listing(dir), []);
    // A UTF-8 value passes the check (and fails later, on the missing run).
    const ok = await byBash(
      "examples/sample.ts",
      `--run ${dir}/none --prompt "$(printf 'caf\\xc3\\xa9')"`,
    );
    assertEquals(ok.code, 1, ok.stderr);
    assert(!ok.stderr.includes("UTF-8"), ok.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
