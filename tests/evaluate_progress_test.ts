// `deno task evaluate` (scoreTest) on a long scoring: progress lines with an
// ETA once it has run past its quiet seconds (here 0), and the very figures
// of a silent scoring.
import { assert, assertEquals, assertMatch } from "@std/assert";
import { scoreTest } from "@d3pm/experiment";
import { fakeRun } from "../hf/_test_util.ts";

Deno.test("scoreTest() prints progress lines with an ETA past its quiet seconds, and the same figures as a silent scoring", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  // 24 test blocks: three batches of 8.
  await fakeRun(run, {
    steps: 10,
    warmup: 1,
    evalBlocks: 24,
    elboSamples: 2,
    models: "ar,d3pm",
  });
  for (const model of ["ar", "d3pm"]) {
    const lines: string[] = [];
    const loud = await scoreTest(run, {
      model,
      log: (l) => lines.push(l),
      quietSeconds: 0,
    });
    const progress = lines.filter((l) => l.startsWith(`score ${model}:`));
    assertEquals(progress.length, 3, lines.join("\n"));
    for (const [i, line] of progress.entries()) {
      assertMatch(
        line,
        new RegExp(
          `^score ${model}: test blocks ${
            8 * (i + 1)
          }/24  elapsed \\d+s  ETA \\d+s$`,
        ),
      );
    }
    // Silent within its quiet seconds.
    const quiet: string[] = [];
    await scoreTest(run, {
      model,
      log: (l) => quiet.push(l),
      quietSeconds: 3600,
    });
    assert(!quiet.some((l) => l.startsWith("score ")), quiet.join("\n"));
    // The figures of a scoring with no progress at all (no log).
    assertEquals(await scoreTest(run, { model }), loud);
    assertEquals(loud.blocks, 24);
  }
  await Deno.remove(root, { recursive: true });
});
