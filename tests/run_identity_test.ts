// Where a run was identified by a path or not at all: --judge RUN (the
// experiment's and evaluate's) and report --merge compare what the data are
// (data.json), not the --data path; export's --weights last|ema reads only
// the model's own final checkpoint. Runs made by fakeRun (seeded weights,
// no training). Each test names the plant that it fails on.
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import {
  decodeSafetensors,
  encodeSafetensors,
  writeFileAtomic,
} from "@d3pm/core";
import {
  collectRuns,
  ConfigError,
  type DataRecord,
  locateWeights,
  openJudge,
  planSweep,
  prepareData,
  readRun,
  resolveConfig,
  RunFolder,
  saveSweep,
  type Sweep,
} from "@d3pm/experiment";
import { ByteTokenizer } from "@d3pm/tokenizer";
import { fakeRun } from "../hf/_test_util.ts";
import { AR_FAST_EVAL, errorLine, FAST_EVAL, runScript } from "./_run.ts";

/**
 * A micro run's command line into `out`: `steps` steps, fast evaluation
 * (no exact bound; gen PPL of the last timed batch alone), judged by its
 * own AR, with `extra` options.
 */
function microArgs(
  out: string,
  steps: number,
  extra: string[] = [],
  fast: readonly string[] = FAST_EVAL,
): string[] {
  return [
    "--preset",
    "micro",
    "--steps",
    String(steps),
    "--warmup",
    "1",
    ...fast,
    "--exact-blocks",
    "0",
    "--gen-samples",
    "0",
    "--judge",
    "self",
    ...extra,
    "--out",
    out,
  ];
}

const A = "a".repeat(64), B = "b".repeat(64), C = "c".repeat(64);
const RECORD: DataRecord = {
  sha256: { train: A, valid: B, test: C },
  tokenizer: { id: "byte-v1", vocabSize: 260 },
};
const REPLACED: DataRecord = {
  ...RECORD,
  sha256: { ...RECORD.sha256, train: "d".repeat(64) },
};

async function writeRecord(run: string, record: DataRecord): Promise<void> {
  await Deno.writeTextFile(
    new RunFolder(run).dataPath,
    JSON.stringify(record),
  );
}

// A finished AR run (fakeRun) whose config.json gives `data` as --data.
async function judgeRun(run: string, data: string): Promise<void> {
  await fakeRun(run, { models: "ar", data });
  await Deno.writeTextFile(
    `${run}/results.json`,
    JSON.stringify({ tokenizer: { id: "byte-v1" } }),
  );
}

// Plants (each fails this test): judge.ts comparing `other.data === c.data`
// again (the moved run refused, the replaced one taken); compareData
// returning {} when a record is missing (the unverified path difference
// taken).
Deno.test("--judge RUN takes a run whose data.json agrees under another --data path, and refuses one whose files were replaced at the same path, naming both", async () => {
  const dir = await Deno.makeTempDir();
  const tok = new ByteTokenizer();
  const data = (record?: DataRecord) =>
    ({
      tokenizer: { id: tok.id, vocabSize: tok.vocabSize },
      specials: tok.special,
      ...(record ? { record } : {}),
    }) as unknown as Parameters<typeof openJudge>[1];
  const open = async (judge: string, at: string, record?: DataRecord) => {
    const lines: string[] = [];
    const j = await openJudge(
      resolveConfig({ preset: "micro", judge, data: at }),
      data(record),
      { engine: { kind: "tfjs", reason: "tfjs" }, log: (l) => lines.push(l) },
    );
    j!.dispose();
    return { describe: j!.describe, lines };
  };
  try {
    // Moved: the judge's run trained on /data/old, this run reads /data/new;
    // the same files by their SHA-256.
    const moved = `${dir}/moved`;
    await judgeRun(moved, "/data/old");
    await writeRecord(moved, RECORD);
    const ok = await open(moved, "/data/new", RECORD);
    assertStringIncludes(
      ok.describe,
      `the AR model of seed 0 of the run in ${moved}`,
    );
    assertEquals(ok.lines, []);
    // Replaced: the same path, another train file.
    const replaced = `${dir}/replaced`;
    await judgeRun(replaced, "/data/same");
    await writeRecord(replaced, REPLACED);
    const e = await assertRejects(
      () => open(replaced, "/data/same", RECORD),
      ConfigError,
    );
    assertEquals(
      e.message,
      `Option --judge ${replaced}: their data differ (the same --data path "/data/same", its files replaced between the runs): train SHA-256 dddddddddddd… in ${replaced} but aaaaaaaaaaaa… in this run (their data.json); a judge must share the run's data`,
    );
    // A run made before data.json: by its path, with a note; another path
    // is refused.
    const older = `${dir}/older`;
    await judgeRun(older, "/data/same");
    const same = await open(older, "/data/same", RECORD);
    assertEquals(same.lines.length, 1);
    assertStringIncludes(
      same.lines[0],
      `note: ${older} has no data.json (made before data records): its data are taken to be this run's and ${older}'s by their --data path "/data/same" alone`,
    );
    await assertRejects(
      () => open(older, "/data/new", RECORD),
      ConfigError,
      `--data is "/data/same" in ${older} but "/data/new" in this run, and ${older} has no data.json (made before data records) to show they are the same files`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// The evaluate tool's --judge RUN goes through the same check (a
// subprocess: examples/evaluate.ts). Plant: judge.ts comparing the path.
Deno.test("evaluate --gen-samples --judge RUN: a judge run with the same data.json under another path is taken; the same path with a replaced file is refused in one line; so is a run whose own files changed since it trained", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = `${dir}/run`;
    const config = await fakeRun(run, { models: "ar", genTokens: 8 });
    // What the run's data are now (the embedded WikiText-2).
    const { record, files } = await prepareData(
      { ...config, resume: true },
      new RunFolder(run),
      () => {},
    );
    await writeRecord(run, record);
    const evaluate = (judge: string) =>
      runScript("examples/evaluate.ts", [
        "--run",
        run,
        "--gen-samples",
        "2",
        "--judge",
        judge,
      ], 300_000);
    const moved = `${dir}/moved`;
    await judgeRun(moved, "/data/wikitext-2-moved");
    await writeRecord(moved, record);
    const ok = await evaluate(moved);
    assertEquals(ok.code, 0, ok.stderr);
    assertStringIncludes(ok.stdout, `the run in ${moved}`);
    const replaced = `${dir}/replaced`;
    await judgeRun(replaced, "");
    await writeRecord(replaced, {
      ...record,
      sha256: { ...record.sha256, valid: "0".repeat(64) },
    });
    const bad = await evaluate(replaced);
    assertEquals(bad.code, 1, bad.stderr);
    assertEquals(
      errorLine(bad),
      `error: Option --judge ${replaced}: their data differ (the same --data path "", its files replaced between the runs): valid SHA-256 000000000000… in ${replaced} but ${
        record.sha256.valid.slice(0, 12)
      }… in this run (their data.json); a judge must share the run's data`,
    );
    // The evaluated run trained on other files than those at its path now
    // (its data.json): refused before any scoring, or judging. Plant:
    // evaluate.ts (and score.ts) without the folder.verifyData call.
    const test = "1".repeat(64);
    await writeRecord(run, { ...record, sha256: { ...record.sha256, test } });
    const then = await evaluate(moved);
    assertEquals(then.code, 1, then.stderr);
    const changed = `error: The test data of the run in ${run} (--data "": ${
      files!.test
    }) changed since it trained (test SHA-256 111111111111… then, ${
      record.sha256.test.slice(0, 12)
    }… now; then: its data.json): its figures would be of other files; restore the files it trained on`;
    assertEquals(errorLine(then), changed);
    // And the test split's score (scoreTest).
    const score = await runScript("examples/evaluate.ts", ["--run", run]);
    assertEquals(score.code, 1, score.stderr);
    assertEquals(errorLine(score), changed);
    await writeRecord(run, record);
    const scored = await runScript("examples/evaluate.ts", ["--run", run]);
    assertEquals(scored.code, 0, scored.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// A finished run for a merge: config.json (fakeRun) and a results.json of
// one seed measured with it.
async function mergeRun(
  run: string,
  data: string,
  seed: number,
  record?: DataRecord,
): Promise<void> {
  const config = await fakeRun(run, {
    models: "ar",
    data,
    firstSeed: seed,
  });
  await Deno.writeTextFile(
    `${run}/results.json`,
    JSON.stringify({
      config,
      tokenizer: { id: "byte-v1", vocabSize: 260 },
      data: {
        source: data || "embedded WikiText-2 (v1, tokenized release)",
        trainTokens: 100,
        testTokens: 10,
      },
      results: [{ model: "ar", seed }],
    }),
  );
  if (record) await writeRecord(run, record);
}

// Plant: resultsDiffer ignoring only RESUMABLE_KEYS (not VERIFIED_KEYS when
// data.json is there): the run refused, "one was copied or edited by hand".
Deno.test("report --merge takes a run whose --resume with a moved --data was interrupted (config.json names the new path, results.json the old) when its data.json is there", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = `${dir}/a`;
    await mergeRun(a, "/data/old", 0, RECORD);
    // The resume verified the files by data.json and rewrote config.json,
    // then was killed before results.json.
    const config = JSON.parse(await Deno.readTextFile(`${a}/config.json`));
    await writeFileAtomic(
      `${a}/config.json`,
      JSON.stringify({ ...config, data: "/data/new" }),
    );
    const m = await collectRuns([a]);
    assertEquals(m.runs.map((r) => r.dir), [a]);
    // Without data.json nothing shows they are the same files.
    await Deno.remove(`${a}/data.json`);
    await assertRejects(
      () => collectRuns([a]),
      ConfigError,
      `Cannot merge ${a}: its results.json was measured with --data "/data/old" but its config.json gives "/data/new"`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plant: merge.ts's old path — readResult reading data.json a second time
// for itself, a malformed one read as "no data.json" (`() => false`): the
// run refused as a results/config mismatch, the sweep's cell counted as
// unfinished and left out.
Deno.test("report --merge names a malformed data.json of a run interrupted while resuming with a moved --data, a sweep cell's too, instead of a results/config mismatch or an unfinished cell", async () => {
  const root = await Deno.makeTempDir();
  try {
    const malformed = '{"sha256": 1}';
    const named = (dir: string) =>
      `Cannot merge ${dir}: ${dir}/data.json is not a data record (expected {"sha256": {"train", "valid", "test"}, "tokenizer": {"id", "vocabSize"}}); restore it, or delete it to skip the data check`;
    // A run folder: config.json rewritten to the new path, results.json
    // still of the old, data.json damaged.
    const a = `${root}/a`;
    await mergeRun(a, "/data/old", 0, RECORD);
    const config = JSON.parse(await Deno.readTextFile(`${a}/config.json`));
    await writeFileAtomic(
      `${a}/config.json`,
      JSON.stringify({ ...config, data: "/data/new" }),
    );
    await Deno.writeTextFile(`${a}/data.json`, malformed);
    await assertRejects(() => collectRuns([a]), ConfigError, named(a));
    // Read as a run (the dashboard, sample, export): data.json named too,
    // not a results/config mismatch.
    await assertRejects(
      () => readRun(a),
      ConfigError,
      `${a}/data.json is not a data record`,
    );
    // A sweep's cell in the same state: refused, not left out as unfinished.
    const dir = `${root}/sw`;
    const sweep = await saveSweep(planSweep({
      options: { preset: "micro", models: "ar", data: "/data/old" },
      seeds: 2,
    }, { dir }));
    const [, c1] = sweep.cells.map((c) => c.out);
    await sweepCell(sweep, 0, "/data/old", RECORD);
    await sweepCell(sweep, 1, "/data/old", RECORD);
    const { config: measured } = JSON.parse(
      await Deno.readTextFile(`${c1}/results.json`),
    );
    await writeFileAtomic(
      `${c1}/config.json`,
      JSON.stringify({ ...measured, data: "/data/new" }),
    );
    assertEquals((await collectRuns([dir])).unfinished, []);
    await Deno.writeTextFile(`${c1}/data.json`, malformed);
    await assertRejects(() => collectRuns([dir]), ConfigError, named(c1));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

// Plants: merge.ts's configDifferences not ignoring "data" (and the
// `source` check kept for verified runs): the moved run refused; compareData
// not called from checkMergeable: the replaced one merged.
Deno.test("report --merge merges runs whose data.json agree under other --data paths, and refuses the same path with a replaced file, naming both", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = `${dir}/a`, moved = `${dir}/moved`, replaced = `${dir}/replaced`;
    await mergeRun(a, "/data/old", 0, RECORD);
    await mergeRun(moved, "/data/new", 1, RECORD);
    await mergeRun(replaced, "/data/old", 2, REPLACED);
    const notes: string[] = [];
    const m = await collectRuns([a, moved], { log: (l) => notes.push(l) });
    assertEquals(m.runs.map((r) => r.dir), [a, moved]);
    assertEquals(notes, []);
    await assertRejects(
      () => collectRuns([a, replaced]),
      ConfigError,
      `Cannot merge ${a} and ${replaced}: their data differ (the same --data path "/data/old", its files replaced between the runs): train SHA-256 dddddddddddd… in ${replaced} but aaaaaaaaaaaa… in ${a} (their data.json)`,
    );
    // Runs made before data.json: by the path, with a note.
    const old1 = `${dir}/old1`, old2 = `${dir}/old2`;
    await mergeRun(old1, "/data/old", 0);
    await mergeRun(old2, "/data/old", 1);
    await collectRuns([old1, old2], { log: (l) => notes.push(l) });
    assertEquals(notes.length, 1);
    assert(notes[0].startsWith(`note: ${old1} and ${old2} have no data.json`));
    // --vary data: runs on other data are what is compared (the results'
    // source, their --data path, refused these before; plant: no early
    // return for a swept `data` in merge.ts's dataDifference).
    const other = `${dir}/other`;
    await mergeRun(other, "/data/other", 3);
    assertEquals(
      (await collectRuns([old1, other], { vary: ["data"] })).runs.length,
      2,
    );
    await assertRejects(
      () => collectRuns([old1, moved]),
      ConfigError,
      `Cannot merge ${old1} and ${moved}: --data is "/data/new" in ${moved} but "/data/old" in ${old1}, and ${old1} has no data.json (made before data records) to show they are the same files`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plant: locateWeights without its checkFinalCheckpoint call (the
// checkpoint an export reads `last` and `ema` from, unchecked).
Deno.test("--weights last|ema read only the model's own final checkpoint: another run's or seed's copied in, or an earlier one, is refused in one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // --keep best with micro's EMA: `last` and `ema` are both read from
    // the checkpoint (model/ and ema/).
    const shape = {
      models: "ar",
      steps: 10,
      warmup: 1,
      keep: "best",
      validEvery: 10,
    };
    const run = `${dir}/run`;
    const config = await fakeRun(run, shape, { checkpoint: true });
    const folder = new RunFolder(run);
    const path = folder.checkpointPath(0, "ar");
    const own = await Deno.readFile(path);
    assertEquals(
      (await locateWeights(run, { model: "ar", weights: "last" })).path,
      path,
    );
    const refused = async (why: string) => {
      for (const weights of ["last", "ema"] as const) {
        await assertRejects(
          () => locateWeights(run, { model: "ar", weights }),
          ConfigError,
          `${path} is not the final checkpoint of the ar model of seed 0 in ${run}: ${why}; restore the checkpoint this run wrote there, or export the weights it evaluated (no --weights)`,
        );
      }
    };
    // Another run's (another --lr), copied in.
    const other = `${dir}/other`;
    await fakeRun(other, { ...shape, lr: 1e-3 }, { checkpoint: true });
    await Deno.copyFile(new RunFolder(other).checkpointPath(0, "ar"), path);
    await refused(
      `its lr is 0.001 where this run gives ${config.lr} (copied from another seed, model or run)`,
    );
    // Another seed's, and an earlier one of this model: the state edited.
    const edited = (change: (state: Record<string, unknown>) => void) => {
      const { tensors, metadata } = decodeSafetensors(own);
      const state = JSON.parse(metadata.state);
      change(state);
      return encodeSafetensors(tensors, {
        ...metadata,
        state: JSON.stringify(state),
      });
    };
    await Deno.writeFile(
      path,
      edited((s) => (s.config as Record<string, unknown>).seed = 1),
    );
    await refused(
      "its seed is 1 where this run gives 0 (copied from another seed, model or run)",
    );
    await Deno.writeFile(path, edited((s) => s.step = 5));
    await refused(
      "it is at step 5, not the run's last (10): an earlier checkpoint put back",
    );
    // A checkpoint whose state is JSON but no object (a TypeError, not a
    // refusal, reading its config).
    const { tensors, metadata } = decodeSafetensors(own);
    await Deno.writeFile(
      path,
      encodeSafetensors(tensors, { ...metadata, state: "null" }),
    );
    await refused("it cannot be read as one (its state is not a JSON object)");
    // A file that is no checkpoint.
    await Deno.copyFile(folder.weightsPath(0, "ar"), path);
    await refused(
      "it cannot be read as one (no d3pm-checkpoint-v1 state in its header)",
    );
    await Deno.writeFile(path, own);
    assertEquals(
      (await locateWeights(run, { model: "ar", weights: "ema" })).prefix,
      "ema/",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plant: Validator.restoreBest without its checkSeed/checkWeights (the
// best/ copied in becomes the model the run evaluates, and process.json
// then records it as the run's).
Deno.test("a --keep best resume refuses another seed's best/ (with or without its best.json) copied into an unfinished model, instead of evaluating it as this seed's", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/run`;
    const args = microArgs(out, 6, [
      "--models",
      "ar",
      "--keep",
      "best",
      "--log-every",
      "2",
      "--valid-every",
      "2",
      "--seeds",
      "2",
    ], AR_FAST_EVAL);
    const first = await runScript("examples/experiment.ts", args);
    assertEquals(first.code, 0, first.stderr);
    const own = `${out}/seed-0/ar`, other = `${out}/seed-1/ar`;
    const record = JSON.parse(await Deno.readTextFile(`${own}/best.json`));
    assertEquals(record.weightsSeed, 0);
    const kept = await Deno.readFile(`${own}/best/model.safetensors`);
    const unfinish = async () => {
      for (const f of ["model.safetensors", "process.json"]) {
        await Deno.remove(`${own}/${f}`).catch(() => {});
      }
    };
    const resume = () =>
      runScript("examples/experiment.ts", [...args, "--resume"]);
    // Its best/ weights alone: best.json's SHA-256.
    await unfinish();
    await Deno.copyFile(
      `${other}/best/model.safetensors`,
      `${own}/best/model.safetensors`,
    );
    const weights = await resume();
    assertEquals(weights.code, 1, weights.stderr);
    assertStringIncludes(
      errorLine(weights),
      `error: ${own}/best/model.safetensors is not the weights this run wrote there: SHA-256 `,
    );
    assertStringIncludes(
      errorLine(weights),
      `where ${own}/best.json records ${record.weightsSha256.slice(0, 12)}…`,
    );
    // With its best.json: the seed it records.
    await Deno.copyFile(`${other}/best.json`, `${own}/best.json`);
    const seed = await resume();
    assertEquals(seed.code, 1, seed.stderr);
    assertEquals(
      errorLine(seed),
      `error: ${own}/best.json records the weights of seed 1, not of seed 0 (the model folder was copied from another seed): restore this seed's folder, or train it anew (remove the folder, then --resume)`,
    );
    // Restored: the resume finishes with the model's own best weights.
    await Deno.writeFile(`${own}/best/model.safetensors`, kept);
    await Deno.writeTextFile(`${own}/best.json`, JSON.stringify(record));
    const ok = await resume();
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals(await Deno.readFile(`${own}/model.safetensors`), kept);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a --resume that trains again a model whose weights fail their check, with no checkpoint to resume from, says so in one warning line", async () => {
  // Plant: trainContestant not calling retrainedWarning (the code before:
  // the AR was trained again in silence).
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/run`;
    const args = microArgs(out, 6);
    const first = await runScript("examples/experiment.ts", args);
    assertEquals(first.code, 0, first.stderr);
    const ar = `${out}/seed-0/ar`;
    await Deno.copyFile(
      `${out}/seed-0/d3pm/model.safetensors`,
      `${ar}/model.safetensors`,
    );
    await Deno.remove(`${ar}/checkpoint.safetensors`);
    const resumed = await runScript("examples/experiment.ts", [
      ...args,
      "--resume",
    ]);
    assertEquals(resumed.code, 0, resumed.stderr);
    const warnings = resumed.stderr.split("\n").filter((l) =>
      l.startsWith("warning:")
    );
    assertEquals(warnings.length, 1, resumed.stderr);
    assertStringIncludes(
      warnings[0],
      `warning: ${ar}/model.safetensors is not the weights this run wrote there: SHA-256 `,
    );
    assertStringIncludes(
      warnings[0],
      `with no ${ar}/checkpoint.safetensors to resume from, the ar model of seed 0 is trained again from its first step, replacing it`,
    );
    // Trained again: its own weights, recorded, and a checkpoint.
    await new RunFolder(out).verifyWeights(0, "ar");
    assert(await Deno.stat(`${ar}/checkpoint.safetensors`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plants (each fails this test): trainContestant not asking
// finishedTraining (the code before: the AR was trained again in silence,
// its 6 steps appended to metrics.jsonl again and a new checkpoint
// written); reloadFinished giving the figures of a fresh training (seconds
// 0, no engines) or no validations; finishedTraining taking a process.json
// without the training record as finished (figures made up) or as a model
// to train again (the weights replaced).
// Plants (each fails this test): checkRecordedTies skipped (the swapped
// D3PM evaluated as the AR, the 3-step copy as the 6-step model: a review's
// reproduction); the ties compared without `contestant`.
Deno.test("a --resume whose finished model lost its checkpoint evaluates the model as it is, with its recorded figures, and refuses in one line when its process.json records none or another configuration", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/run`;
    const args = microArgs(out, 6, ["--log-every", "3", "--valid-every", "3"]);
    const first = await runScript("examples/experiment.ts", args);
    assertEquals(first.code, 0, first.stderr);
    const ar = `${out}/seed-0/ar`;
    const weights = await Deno.readFile(`${ar}/model.safetensors`);
    const log = await Deno.readTextFile(`${out}/metrics.jsonl`);
    const before = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
    await Deno.remove(`${ar}/checkpoint.safetensors`);
    const resumed = await runScript("examples/experiment.ts", [
      ...args,
      "--resume",
    ]);
    assertEquals(resumed.code, 0, resumed.stderr);
    assertStringIncludes(
      resumed.stderr,
      `note: ${ar}/checkpoint.safetensors is missing, but the ar model of seed 0 is trained (${ar}/model.safetensors is the one its process.json records, with its training's figures): it is evaluated as it is, not trained again`,
    );
    // Not trained again: no step logged twice, no checkpoint written.
    assertEquals(await Deno.readTextFile(`${out}/metrics.jsonl`), log);
    assertEquals(await Deno.readFile(`${ar}/model.safetensors`), weights);
    await assertRejects(() => Deno.stat(`${ar}/checkpoint.safetensors`));
    // The figures of the run that trained it.
    const after = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
    assertEquals(after.results[0].model, "ar");
    assertEquals(after.results[0].training, before.results[0].training);
    assert(before.results[0].training.valid, "the AR was validated");
    assert(before.results[0].training.engines, "the AR's engine was named");
    assertEquals(after.results[0].test, before.results[0].test);
    // A process.json without the record (an older version's, an import's):
    // refused, its weights kept.
    const whole = await Deno.readTextFile(`${ar}/process.json`);
    const process = JSON.parse(whole);
    delete process.training;
    await Deno.writeTextFile(`${ar}/process.json`, JSON.stringify(process));
    const refused = await runScript("examples/experiment.ts", [
      ...args,
      "--resume",
    ]);
    assertEquals(refused.code, 1, refused.stderr);
    assertEquals(
      errorLine(refused),
      `error: ${ar}/checkpoint.safetensors is missing, and the ar model of seed 0 beside it is trained, but its ${ar}/process.json (written by an import or an older version) does not record the training's figures a resume would read from the checkpoint: restore the checkpoint, or remove ${ar} to train the model anew`,
    );
    assertEquals(await Deno.readTextFile(`${out}/metrics.jsonl`), log);
    assertEquals(await Deno.readFile(`${ar}/model.safetensors`), weights);
    await Deno.writeTextFile(`${ar}/process.json`, whole);
    // Another contestant's finished model in its place (the D3PM's, whose
    // shapes the AR's match), or the same model trained for other steps:
    // refused as a checkpoint of theirs would be, nothing evaluated.
    const d3pm = `${out}/seed-0/d3pm`;
    await Deno.remove(`${d3pm}/checkpoint.safetensors`);
    await Deno.rename(ar, `${dir}/ar`);
    await Deno.rename(d3pm, ar);
    await Deno.rename(`${dir}/ar`, d3pm);
    const swapped = await runScript("examples/experiment.ts", [
      ...args,
      "--resume",
    ]);
    assertEquals(swapped.code, 1, swapped.stderr);
    assertEquals(
      errorLine(swapped),
      `error: Cannot resume the ar model of seed 0 in ${ar}: its checkpoint is missing and its process.json says it was trained with a different configuration (contestant: "d3pm" → "ar"); restore the checkpoint, or remove ${ar} to train it anew`,
    );
    await Deno.rename(ar, `${dir}/d3pm`);
    await Deno.rename(d3pm, ar);
    await Deno.rename(`${dir}/d3pm`, d3pm);
    const other = `${dir}/other`;
    const shorter = args.map((a) => a === out ? other : a === "6" ? "3" : a);
    assertEquals((await runScript("examples/experiment.ts", shorter)).code, 0);
    await Deno.remove(ar, { recursive: true });
    await Deno.rename(`${other}/seed-0/ar`, ar);
    await Deno.remove(`${ar}/checkpoint.safetensors`);
    const copied = await runScript("examples/experiment.ts", [
      ...args,
      "--resume",
    ]);
    assertEquals(copied.code, 1, copied.stderr);
    assertStringIncludes(
      errorLine(copied),
      `it was trained with a different configuration (steps: 3 → 6)`,
    );
    assertEquals(await Deno.readTextFile(`${out}/metrics.jsonl`), log);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a --resume whose second model lost its checkpoint and its process.json's training record is refused before the first model is reloaded or trained, in the words it was refused in when reached", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/run`;
    const args = microArgs(out, 4, ["--models", "ar,d3pm"]);
    const first = await runScript("examples/experiment.ts", args);
    assertEquals(first.code, 0, first.stderr);
    const ar = `${out}/seed-0/ar`, d3pm = `${out}/seed-0/d3pm`;
    // Both finished models lost their checkpoints: the AR, reached first,
    // would be reloaded and its validations read before the D3PM refused.
    await Deno.remove(`${ar}/checkpoint.safetensors`);
    await Deno.remove(`${d3pm}/checkpoint.safetensors`);
    const process = JSON.parse(
      await Deno.readTextFile(`${d3pm}/process.json`),
    );
    delete process.training;
    await Deno.writeTextFile(`${d3pm}/process.json`, JSON.stringify(process));
    const log = await Deno.readTextFile(`${out}/metrics.jsonl`);
    const results = await Deno.readTextFile(`${out}/results.json`);
    const refused = await runScript("examples/experiment.ts", [
      ...args,
      "--resume",
    ]);
    assertEquals(refused.code, 1, refused.stderr);
    assertEquals(
      errorLine(refused),
      `error: ${d3pm}/checkpoint.safetensors is missing, and the d3pm model of seed 0 beside it is trained, but its ${d3pm}/process.json (written by an import or an older version) does not record the training's figures a resume would read from the checkpoint: restore the checkpoint, or remove ${d3pm} to train the model anew`,
    );
    // Nothing of the AR ran: not reloaded (its note), not trained, and
    // neither the engine nor the data were prepared.
    for (const line of ["the ar model of seed 0", "seed 0 ar:", "engine:"]) {
      assert(!refused.stderr.includes(line), `${line} in ${refused.stderr}`);
    }
    assertEquals(await Deno.readTextFile(`${out}/metrics.jsonl`), log);
    assertEquals(await Deno.readTextFile(`${out}/results.json`), results);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// A sweep's finished cell: results.json measured with the cell's
// configuration but `data` as --data, and `record` as its data.json.
async function sweepCell(
  sweep: Sweep,
  i: number,
  data: string,
  record?: DataRecord,
): Promise<void> {
  const cell = sweep.cells[i];
  const { seed, ...values } = cell.values;
  const config = resolveConfig({
    ...sweep.spec.options,
    ...values,
    seeds: 1,
    firstSeed: Number(seed),
    out: cell.out,
    data,
  });
  await Deno.mkdir(cell.out, { recursive: true });
  await Deno.writeTextFile(
    `${cell.out}/results.json`,
    JSON.stringify({
      config,
      tokenizer: { id: "byte-v1", vocabSize: 260 },
      data: { source: data, trainTokens: 100, testTokens: 10 },
      results: [{ model: "ar", seed: cell.values.seed }],
    }),
  );
  if (record) await writeRecord(cell.out, record);
  else await Deno.remove(`${cell.out}/data.json`).catch(() => {});
}

// Plants (each fails this test): checkCell ignoring only RESUMABLE_KEYS
// (the code before: the moved cell "holds another run (--data is /data/new
// there but /data/old in the cell)"); checkCell ignoring `data` without
// data.json too (the unrecorded moved cell refused only by the pairwise
// comparison, not as its folder holding another run: alone it would merge);
// dataDifference skipped for a swept `data` (the replaced cell of one
// --data value merged); checkCell passing over a swept --data path where
// data.json exists (value b's run copied under value a merged as a's).
Deno.test("report --merge SWEEP identifies its cells' data by data.json: cells resumed with a moved --data merge, a file replaced at the same path is refused, naming both cells", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/sw`;
    const sweep = await saveSweep(planSweep({
      options: { preset: "micro", models: "ar", data: "/data/old" },
      seeds: 3,
    }, { dir }));
    const [c0, c1, c2] = sweep.cells.map((c) => c.out);
    await sweepCell(sweep, 0, "/data/old", RECORD);
    // Cells 1 and 2 resumed after the data moved (--resume --data NEW; the
    // resume verified the files by each cell's data.json).
    await sweepCell(sweep, 1, "/data/new", RECORD);
    await sweepCell(sweep, 2, "/data/new", RECORD);
    const merged = await collectRuns([dir]);
    assertEquals(merged.runs.map((r) => r.dir), [c0, c1, c2]);
    // A file replaced at the sweep's own path: other data, refused.
    await sweepCell(sweep, 1, "/data/old", REPLACED);
    await assertRejects(
      () => collectRuns([dir]),
      ConfigError,
      `Cannot merge ${c0} and ${c1}: their data differ (the same --data path "/data/old", its files replaced between the runs): train SHA-256 dddddddddddd… in ${c1} but aaaaaaaaaaaa… in ${c0} (their data.json)`,
    );
    // Replaced, then moved: other data under another path, refused too.
    await sweepCell(sweep, 1, "/data/new", REPLACED);
    await assertRejects(
      () => collectRuns([dir]),
      ConfigError,
      `Cannot merge ${c0} and ${c1}: their data differ (--data "/data/new" in ${c1}, "/data/old" in ${c0}): train SHA-256`,
    );
    // A moved cell without data.json: nothing shows they are the same files.
    await sweepCell(sweep, 1, "/data/new");
    await assertRejects(
      () => collectRuns([dir]),
      ConfigError,
      `Cannot merge ${dir}: cell seed-1's folder ${c1} holds another run (--data is /data/new there but /data/old in the cell)`,
    );
    // `data` swept: each value's cells share their data by data.json; the
    // values are what is compared.
    const vdir = `${root}/vary`;
    const vary = await saveSweep(planSweep({
      options: { preset: "micro", models: "ar" },
      grid: { data: ["/data/a", "/data/b"] },
      seeds: 2,
    }, { dir: vdir }));
    const other: DataRecord = {
      ...RECORD,
      sha256: { ...RECORD.sha256, valid: "e".repeat(64) },
    };
    await sweepCell(vary, 0, "/data/a", RECORD);
    await sweepCell(vary, 1, "/data/a", RECORD);
    await sweepCell(vary, 2, "/data/b", other);
    await sweepCell(vary, 3, "/data/b", other);
    assertEquals((await collectRuns([vdir])).runs.length, 4);
    // With --data swept the path is the cell's value: a run on another path
    // is another cell's (a copy of value b's run under value a), with or
    // without a data.json, even where its value has no other cell.
    const [v0] = vary.cells.map((c) => c.out);
    for (
      const [path, record] of [["/data/b", other], [
        "/data/a-moved",
        RECORD,
      ]] as const
    ) {
      await sweepCell(vary, 0, path, record);
      await assertRejects(
        () => collectRuns([vdir]),
        ConfigError,
        `Cannot merge ${vdir}: cell ${
          vary.cells[0].name
        }'s folder ${v0} holds another run (--data is ${path} there but /data/a in the cell)`,
      );
    }
    await sweepCell(vary, 0, "/data/a", RECORD);
    await sweepCell(vary, 3, "/data/b", REPLACED);
    const [, , v2, v3] = vary.cells.map((c) => c.out);
    await assertRejects(
      () => collectRuns([vdir]),
      ConfigError,
      `Cannot merge ${v2} and ${v3}: their data differ (the same --data path "/data/b", its files replaced between the runs)`,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

// Plant: bench/bound.ts or bench/order_bound.ts reading the run's data with
// prepareData (not prepareRunData, which checks them against data.json):
// the replaced test file scored, exit 0.
Deno.test("bench:bound and bench:order-bound refuse a run whose data file was replaced since it trained, in one line naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = `${dir}/data`;
    await Deno.mkdir(data);
    const line = "the cat sat on the mat and the dog ran to the park \n";
    for (const [split, n] of [["train", 400], ["valid", 40], ["test", 40]]) {
      await Deno.writeTextFile(
        `${data}/wiki.${split}.tokens`,
        line.repeat(n as number),
      );
    }
    const run = `${dir}/run`;
    const config = await fakeRun(run, { models: "d3pm", data });
    const folder = new RunFolder(run);
    const then = await prepareData(
      { ...config, resume: true },
      folder,
      () => {},
    );
    await writeRecord(run, then.record);
    // The test file replaced at the same path since the run trained.
    const test = `${data}/wiki.test.tokens`;
    await Deno.writeTextFile(test, line.toUpperCase().repeat(40));
    const now = await prepareData(
      { ...config, resume: true },
      folder,
      () => {},
    );
    const expected =
      `error: The test data of the run in ${run} (--data "${data}": ${test}) changed since it trained (test SHA-256 ${
        then.record.sha256.test.slice(0, 12)
      }… then, ${
        now.record.sha256.test.slice(0, 12)
      }… now; then: its data.json): its figures would be of other files; restore the files it trained on`;
    for (
      const [script, args] of [
        ["bench/bound.ts", ["--rates-only"]],
        ["bench/order_bound.ts", ["--blocks", "1", "--orders", "1"]],
      ] as const
    ) {
      const r = await runScript(script, ["--run", run, ...args]);
      assertEquals(r.code, 1, `${script}: ${r.stderr}`);
      assertEquals(errorLine(r), expected, script);
      assert(!/^\s+at /m.test(r.stderr), r.stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
