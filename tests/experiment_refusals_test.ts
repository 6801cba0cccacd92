// End to end: the experiment CLI's one-line errors for bad input on the
// micro preset, and a corrupt checkpoint refused on resume (no float is
// compared: out of test:portable's numerics scope; the rest of the end to
// end run is tests/experiment_test.ts).
import { assert, assertEquals, assertMatch } from "@std/assert";
import { errorLine, runTool } from "./_run.ts";

const MICRO = ["--preset", "micro"];

Deno.test("bad input fails with a one-line error and no stack trace", async () => {
  const out = await Deno.makeTempDir();
  const cases: [string[], RegExp][] = [
    [
      [...MICRO, "--data", `${out}/missing`, "--out", out],
      /^error: Cannot read data directory .*missing: it does not exist/,
    ],
    [
      [...MICRO, "--bogus", "1"],
      /^error: Unknown option --bogus: accepted options are --preset, --models, /,
    ],
    [
      ["--preset", "huge"],
      /^error: Option --preset must be one of micro, tiny, small, paper, got "huge"/,
    ],
    [
      [...MICRO, "--steps", "many"],
      /^error: Option --steps must be a positive integer, got "many"/,
    ],
    [
      [...MICRO, "--alibi", "-1", "--out", `${out}/a`],
      /^error: Option --alibi must be a number ≥ 0 \(0: none\), got -1/,
    ],
    [
      [...MICRO, "--alibi-mode", "left", "--out", `${out}/c`],
      /^error: Option --alibi-mode must be one of symmetric, neighbours, got "left"/,
    ],
    [
      [
        ...MICRO,
        ...["--alibi", "2", "--alibi-mode", "neighbours", "--n-head", "1"],
        ...["--out", `${out}/d`],
      ],
      /^error: Option --alibi-mode neighbours needs --n-head ≥ 2 \(heads 0 and 1 look left and right\), got 1$/,
    ],
  ];
  for (const [args, want] of cases) {
    const r = await runTool("experiment.ts", args);
    assertEquals(r.code, 1, args.join(" "));
    assertMatch(errorLine(r), want);
    assert(!r.stderr.includes("    at "), `stack trace for ${args.join(" ")}`);
  }
  // A corrupt checkpoint: resume refuses it by name; nothing else is overwritten.
  const args = [...MICRO, "--steps", "4", "--warmup", "1", "--out", out];
  assertEquals((await runTool("experiment.ts", args)).code, 0);
  const ck = `${out}/seed-0/ar/checkpoint.safetensors`;
  const bytes = await Deno.readFile(ck);
  await Deno.writeFile(ck, bytes.subarray(0, 100));
  const model = await Deno.readFile(`${out}/seed-0/ar/model.safetensors`);
  const r = await runTool("experiment.ts", [...args, "--resume"]);
  assertEquals(r.code, 1);
  assertMatch(
    errorLine(r),
    /^error: Checkpoint .*checkpoint\.safetensors is corrupt: /,
  );
  assertEquals(
    await Deno.readFile(`${out}/seed-0/ar/model.safetensors`),
    model,
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("a train split shorter than one batch is refused naming the file and both options, before any run file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = "Some words of text.\n".repeat(40); // 800 bytes
    for (const s of ["train", "valid", "test"]) {
      await Deno.writeTextFile(`${dir}/${s}.txt`, text);
    }
    // 802 ids with bos/eos: 25 blocks of 32, fewer than --batch-size 26.
    const out = `${dir}/run`;
    const r = await runTool("experiment.ts", [
      ...MICRO,
      ...["--batch-size", "26", "--data", dir, "--out", out],
    ]);
    assertEquals(r.code, 1);
    assertEquals(
      errorLine(r),
      `error: The train split (${await Deno.realPath(
        dir,
      )}/train.txt) packs into 25 block(s) of --block-length 32, fewer than one batch of --batch-size 26: lower --batch-size or --block-length, or give a longer train split`,
    );
    assertEquals(
      await Array.fromAsync(Deno.readDir(dir), (e) => e.name).then((n) =>
        n.sort()
      ),
      ["test.txt", "train.txt", "valid.txt"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
