// The memory budget as runExperiment checks it: once from the options,
// again once the corpus is tokenized (its ids counted), both against the
// memory available measured before tokenizing.
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import {
  checkBudget,
  ConfigError,
  prepareData,
  resolveConfig,
  runExperiment,
  RunFolder,
} from "@d3pm/experiment";
import { DataError } from "@d3pm/data";
import { sha256Hex } from "@d3pm/core";

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
      /^The corpus of the embedded WikiText-2 is at least \d+ ids \(the splits read so far\), about [\d.]+ MiB of memory at 5 bytes an id, which brings the run to about [\d.]+ MiB, more than the [\d.]+ MiB available; besides the corpus, most is for .*, or free memory$/,
    );
    assert(!refused.message.includes("\n"));
    // The options alone passed: the first estimate was logged.
    assertEquals(lines.filter((l) => l.startsWith("estimate:")).length, 1);
    assertEquals(await Deno.stat(out).then(() => true, () => false), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A train split whose token cache (in `<dir>/.cache/tokens`, the cache of a
 * run started there) claims `ids` ids: its header rewritten, the file a
 * sparse one of the size that header gives.
 */
async function hugeTrainCache(dir: string, ids: number): Promise<void> {
  const train = sha256Hex(await Deno.readFile(`${dir}/train.txt`));
  const tokens = `${dir}/.cache/tokens`;
  const name =
    [...Deno.readDirSync(tokens)].find((e) =>
      e.name.startsWith(train.slice(0, 16)) && e.name.endsWith(".tok")
    )!.name;
  const bytes = await Deno.readFile(`${tokens}/${name}`);
  const length = new DataView(bytes.buffer).getUint32(8, true);
  const header = JSON.parse(
    new TextDecoder().decode(bytes.subarray(12, 12 + length)),
  );
  const json = new TextEncoder().encode(JSON.stringify({
    ...header,
    numDocs: 1,
    numTokens: ids,
    idBytes: 2,
    payloadSha256: "0".repeat(64),
  }));
  const head = new Uint8Array(12 + json.length);
  head.set(new TextEncoder().encode("D3PMTOK1"));
  new DataView(head.buffer).setUint32(8, json.length, true);
  head.set(json, 12);
  await Deno.writeFile(`${tokens}/${name}`, head);
  await Deno.truncate(`${tokens}/${name}`, head.length + 8 + 2 * ids);
}

Deno.test("runExperiment() checks the memory budget from the train split's token-cache header before its ids are allocated, and says an allocation that fails is out of memory in one line (not a corrupt cache, rebuilt)", async () => {
  const dir = await Deno.makeTempDir();
  const cwd = Deno.cwd();
  // 2^28 ids (1 GiB at 4 bytes): an allocation that large fails here, and
  // is counted (a machine without the memory, without using it).
  const ids = 2 ** 28;
  const Real = Uint32Array;
  let huge = 0;
  class Limited extends Real {
    constructor(...args: unknown[]) {
      if (typeof args[0] === "number" && args[0] >= ids) {
        huge++;
        throw new RangeError("Array buffer allocation failed");
      }
      super(...(args as []));
    }
  }
  try {
    for (const s of ["train", "valid", "test"]) {
      await Deno.writeTextFile(
        `${dir}/${s}.txt`,
        "Some words of text.\n".repeat(200),
      );
    }
    Deno.chdir(dir); // the token cache is the run's .cache/tokens
    const config = (out: string) =>
      resolveConfig({ ...microConfig(`${dir}/${out}`), data: dir });
    await prepareData(config("none"), new RunFolder(`${dir}/none`), () => {});
    globalThis.Uint32Array = Limited as typeof Uint32Array;
    const run = (out: string, available: number) =>
      runExperiment(config(out), {
        progress: false,
        availableMemory: () => available,
        log: (line) => {
          if (line.includes("with the corpus")) throw new Checked();
        },
      });
    // 2^28 ids at 5 bytes an id tip 1 GiB over: refused from the header,
    // nothing allocated.
    await hugeTrainCache(dir, ids);
    const refused = await assertRejects(() => run("a", 2 ** 30), ConfigError);
    assertMatch(
      refused.message,
      new RegExp(
        `^The corpus of --data ${dir} is at least ${ids} ids \\(the splits read so far\\), about 1\\.3 GiB of memory`,
      ),
    );
    assertEquals(huge, 0);
    // Within the budget, the allocation fails: out of memory, one line.
    const oom = await assertRejects(() => run("b", 2 ** 40), DataError);
    assertEquals(huge, 1);
    assertMatch(
      oom.message,
      new RegExp(
        `^Out of memory: cannot hold the ${ids} ids of token cache \\.cache/tokens/[0-9a-f-]+-text-v2\\.tok \\(1024 MiB at 4 bytes each: Array buffer allocation failed\\); free memory, or use a smaller corpus$`,
      ),
    );
  } finally {
    globalThis.Uint32Array = Real;
    Deno.chdir(cwd);
    await Deno.remove(dir, { recursive: true });
  }
});
