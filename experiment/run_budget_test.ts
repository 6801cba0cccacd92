// The memory budget as runExperiment checks it: once from the options,
// again once the corpus is tokenized (its ids counted), both against the
// memory available measured before tokenizing.
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import {
  checkBudget,
  ConfigError,
  resolveConfig,
  runExperiment,
} from "@d3pm/experiment";

/** Thrown from the log to stop a run once its budget is checked. */
class Checked extends Error {}

function microConfig(out: string) {
  return resolveConfig({
    preset: "micro",
    out,
    backend: "cpu",
    steps: 4,
    warmup: 1,
    batchSize: 2,
    checkpointEvery: 4,
    evalBlocks: 2,
  });
}

Deno.test("runExperiment() measures the memory available once, before tokenizing: the corpus's ids, then held, are not counted twice", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // The system's figure drops once the ids are held: a second look would
    // refuse the run.
    let asked = 0;
    const availableMemory = () => asked++ === 0 ? 2 ** 40 : 0;
    const lines: string[] = [];
    await assertRejects(
      () =>
        runExperiment(microConfig(`${dir}/run`), {
          progress: false,
          availableMemory,
          log: (line) => {
            lines.push(line);
            if (line.includes("with the corpus")) throw new Checked();
          },
        }),
      Checked,
    );
    assertEquals(asked, 1);
    const estimates = lines.filter((l) => l.startsWith("estimate:"));
    assertEquals(estimates.length, 2);
    assert(
      estimates.every((l) => l.includes("(1.0 TiB available)")),
      String(estimates),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runExperiment() refuses in one line a run that the tokenized corpus tips over the memory available, before any run file is written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/run`;
    const config = microConfig(out);
    // The least memory the options alone fit in: the corpus tips it over.
    let lo = 0, hi = 2 ** 40;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      try {
        checkBudget(config, { engine: "cpu", available: mid });
        hi = mid;
      } catch {
        lo = mid;
      }
    }
    const lines: string[] = [];
    const refused = await assertRejects(
      () =>
        runExperiment(config, {
          progress: false,
          availableMemory: () => hi,
          log: (line) => lines.push(line),
        }),
      ConfigError,
    );
    assertMatch(
      refused.message,
      /^The corpus of the embedded WikiText-2 is \d+ ids, about [\d.]+ MiB of memory at 5 bytes an id, which brings the run to about [\d.]+ MiB, more than the [\d.]+ MiB available; besides the corpus, most is for .*, or free memory$/,
    );
    assert(!refused.message.includes("\n"));
    // The options alone passed: the first estimate was logged.
    assertEquals(lines.filter((l) => l.startsWith("estimate:")).length, 1);
    assertEquals(await Deno.stat(out).then(() => true, () => false), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
