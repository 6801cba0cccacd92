// The memory budget as runExperiment checks it: once from the options,
// again once the corpus is tokenized (its ids counted), both against the
// memory available measured before tokenizing.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { resolveConfig, runExperiment } from "@d3pm/experiment";

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
