import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { finishedTraining, retrainedWarning } from "./_retrained.ts";
import { RunFolder } from "./run_folder.ts";
import { ConfigError } from "./options.ts";

Deno.test("retrainedWarning() names a trained model whose weights fail their check when no checkpoint resumes it, and nothing else", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const folder = new RunFolder(dir);
    const weights = folder.weightsPath(0, "ar");
    const warning = () => retrainedWarning(folder, 0, "ar");
    // Nothing trained yet: a first training, not a retraining.
    assertEquals(await warning(), undefined);
    await Deno.mkdir(folder.modelDir(0, "ar"), { recursive: true });
    await Deno.writeTextFile(weights, "the AR's weights");
    assertEquals(await warning(), undefined); // no process.json: unfinished
    await folder.writeProcess(0, "ar", { kind: "autoregressive" });
    // Its own weights, no checkpoint: passes its check, not this warning.
    assertEquals(await warning(), undefined);
    // Another model's weights copied in (the D3PM's, say).
    await Deno.writeTextFile(weights, "the D3PM's weights");
    const line = await warning();
    assertMatch(
      line ?? "",
      new RegExp(
        `^warning: ${weights} is not the weights this run wrote there: SHA-256 [0-9a-f]{12}…, where its process.json records [0-9a-f]{12}… \\(copied from another seed or run, or changed\\); with no ${
          folder.checkpointPath(0, "ar")
        } to resume from, the ar model of seed 0 is trained again from its first step, replacing it$`,
      ),
    );
    // A checkpoint resumes it and rewrites the weights: nothing to say.
    await Deno.writeTextFile(folder.checkpointPath(0, "ar"), "");
    assertEquals(await warning(), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("retrainedWarning() names a model folder of another seed by its reason alone, without the refusal's advice to remove it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const folder = new RunFolder(dir);
    await Deno.mkdir(folder.modelDir(0, "ar"), { recursive: true });
    await Deno.writeTextFile(folder.weightsPath(0, "ar"), "the AR's weights");
    await folder.writeProcess(0, "ar", { kind: "autoregressive" });
    // Seed 1's folder copied over seed 0's: its weights match their
    // SHA-256, its seed does not.
    const path = folder.processPath(0, "ar");
    const process = JSON.parse(await Deno.readTextFile(path));
    assertEquals(process.weightsSeed, 0);
    await Deno.writeTextFile(
      path,
      JSON.stringify({ ...process, weightsSeed: 1 }),
    );
    assertEquals(
      await retrainedWarning(folder, 0, "ar"),
      `warning: ${path} records the weights of seed 1, not of seed 0 (the model folder was copied from another seed); with no ${
        folder.checkpointPath(0, "ar")
      } to resume from, the ar model of seed 0 is trained again from its first step, replacing it`,
    );
    // The refusal itself, as every other reader sees it, keeps its advice.
    const e = await assertRejects(
      () => folder.verifyWeights(0, "ar"),
      ConfigError,
    );
    assertEquals(
      e.message,
      `${path} records the weights of seed 1, not of seed 0 (the model folder was copied from another seed): restore this seed's folder, or train it anew (remove the folder, then --resume)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plants (each fails this test): finishedTraining taking a model with a
// checkpoint as finished (the checkpoint would not be resumed from), or
// one whose weights fail their check (another model's weights evaluated
// as this one's); a malformed record read as figures; one without what
// it was trained under (`config`) taken.
Deno.test("finishedTraining() is a trained model without a checkpoint whose weights pass and whose record is whole, and refuses one without a record", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const folder = new RunFolder(dir);
    const weights = folder.weightsPath(0, "ar");
    const finished = () => finishedTraining(folder, 0, "ar");
    const config = { contestant: "ar", seed: 0 };
    const training = { seconds: 9, lastLoss: null, engines: [], config };
    assertEquals(await finished(), undefined); // nothing trained
    await Deno.mkdir(folder.modelDir(0, "ar"), { recursive: true });
    await Deno.writeTextFile(weights, "the AR's weights");
    assertEquals(await finished(), undefined); // no process.json: unfinished
    await folder.writeProcess(0, "ar", { kind: "autoregressive" }, {
      training,
    });
    const sha = JSON.parse(
      await Deno.readTextFile(folder.processPath(0, "ar")),
    ).weightsSha256;
    assertEquals(await finished(), {
      weightsSha256: sha,
      seconds: 9,
      lastLoss: NaN,
      engines: [],
      config,
    });
    // A checkpoint resumes it instead.
    await Deno.writeTextFile(folder.checkpointPath(0, "ar"), "");
    assertEquals(await finished(), undefined);
    await Deno.remove(folder.checkpointPath(0, "ar"));
    // Weights that fail their check are trained again (retrainedWarning).
    await Deno.writeTextFile(weights, "the D3PM's weights");
    assertEquals(await finished(), undefined);
    await Deno.writeTextFile(weights, "the AR's weights");
    // A record of another shape is no record.
    const path = folder.processPath(0, "ar");
    const saved = JSON.parse(await Deno.readTextFile(path));
    const { config: _, ...untied } = training; // this morning's records
    for (const bad of [{ ...training, seconds: "9" }, untied, [], null]) {
      await Deno.writeTextFile(
        path,
        JSON.stringify({ ...saved, training: bad }),
      );
      await assertRejects(
        finished,
        ConfigError,
        `does not record the training's figures a resume would read from the checkpoint: restore the checkpoint, or remove ${
          folder.modelDir(0, "ar")
        } to train the model anew`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plants (each fails this test): the reason taken from a later line or
// after the first "; " (`[0]` → `[1]` in either split: a TypeError, or
// the refusal's advice said as the reason).
Deno.test("retrainedWarning() names a process.json that cannot be read as a record by the first line of its refusal, without the advice", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const folder = new RunFolder(dir);
    await Deno.mkdir(folder.modelDir(0, "ar"), { recursive: true });
    await Deno.writeTextFile(folder.weightsPath(0, "ar"), "the AR's weights");
    const path = folder.processPath(0, "ar");
    const tail = `; with no ${
      folder.checkpointPath(0, "ar")
    } to resume from, the ar model of seed 0 is trained again from its first step, replacing it`;
    await Deno.writeTextFile(path, "[]");
    assertEquals(
      await retrainedWarning(folder, 0, "ar"),
      `warning: ${path} is not a process description (expected a JSON object)${tail}`,
    );
    await Deno.writeTextFile(path, '{"kind": "autoregr');
    const line = (await retrainedWarning(folder, 0, "ar"))!;
    assertEquals(line.endsWith(tail), true, line);
    assertEquals(line.includes("\n"), false, line);
    assertEquals(line.includes("cannot be checked"), false, line);
    assertMatch(line, new RegExp(`^warning: .*${path}`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plants (each fails this test): a span's engine or step unchecked
// (`=== "string"` → `!==`, `&&` → `||`), `initFrom` null or a string
// taken or an object refused (line 186's `===`, `&&`, `!==`), an array
// taken as `config` (`||` → `&&`), a process.json over 512 KiB refused
// (`1 << 20` → `1 << 19`).
Deno.test("finishedTraining() takes engine spans and an --init-from record of their shapes, refuses others and an array config, and reads a process.json of 1 MiB", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const folder = new RunFolder(dir);
    await Deno.mkdir(folder.modelDir(0, "ar"), { recursive: true });
    await Deno.writeTextFile(folder.weightsPath(0, "ar"), "the AR's weights");
    await folder.writeProcess(0, "ar", { kind: "autoregressive" });
    const path = folder.processPath(0, "ar");
    const saved = JSON.parse(await Deno.readTextFile(path));
    const config = { contestant: "ar", seed: 0 };
    const engines = [
      { engine: "tfjs", fromStep: 1 },
      { engine: "webgpu", fromStep: 40 },
    ];
    const initFrom = { from: "runs/other", step: 7 };
    const training = { seconds: 9, lastLoss: 2.5, engines, initFrom, config };
    const write = (t: unknown, extra = {}) =>
      Deno.writeTextFile(
        path,
        JSON.stringify({ ...saved, ...extra, training: t }),
      );
    const want = { weightsSha256: saved.weightsSha256, ...training };
    await write(training);
    assertEquals(await finishedTraining(folder, 0, "ar"), want);
    for (
      const bad of [
        { ...training, engines: [{ engine: 3, fromStep: 1 }] },
        { ...training, engines: [{ engine: "tfjs", fromStep: 1.5 }] },
        { ...training, engines: [{ fromStep: 1 }] },
        { ...training, initFrom: null },
        { ...training, initFrom: "runs/other" },
        { ...training, config: [] },
      ]
    ) {
      await write(bad);
      await assertRejects(
        () => finishedTraining(folder, 0, "ar"),
        ConfigError,
        "does not record the training's figures",
        JSON.stringify(bad),
      );
    }
    // Padded to exactly 1 MiB, the most a process.json may be.
    const bytes = (pad: string) =>
      new TextEncoder().encode(
        JSON.stringify({ ...saved, pad, training }),
      ).length;
    const pad = "x".repeat((1 << 20) - bytes(""));
    await write(training, { pad });
    assertEquals((await Deno.stat(path)).size, 1 << 20);
    assertEquals(await finishedTraining(folder, 0, "ar"), want);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
