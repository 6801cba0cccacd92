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
