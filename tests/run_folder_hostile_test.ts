// A second, adversarial pass over the run folder: hostile inputs aimed at
// losing or overwriting a run (races, --force, --out, locks) and at a silent
// wrong figure (swapped checkpoints, models, processes, tokenizers, data).
// Each must be refused with a line naming what is wrong, or handled without
// loss. One finished micro run is made (by subprocess) and copied; the rest
// runs in process, so the whole file takes well under a minute.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { configDifferences } from "@d3pm/train";
import {
  checkpointTies,
  collectRuns,
  ConfigError,
  D3PM,
  type DataRecord,
  initialiseFrom,
  inspectTrained,
  loadTrained,
  locateWeights,
  openTokenizer,
  parseInitFrom,
  resolveConfig,
  RunFolder,
  WEIGHTS_SEED,
  WEIGHTS_SHA256,
} from "@d3pm/experiment";
import { inspectModel, serializeModel, Transformer } from "@d3pm/transformer";
import { saveBpeTokenizer, trainBpe } from "@d3pm/tokenizer";
import { writeFileAtomic } from "@d3pm/core";
import { FAST_EVAL, once, ROOT, runTool } from "./_run.ts";
import { MAY_MOUNT, mount, withTmpfs } from "../core/_mount_test_util.ts";

// The tfjs path, named: it logs every step, which the checks of "each step
// once per model" count (`auto` trains on the CPU engine where no GPU is,
// logging every --log-every steps).
const RUN = [
  "--preset",
  "micro",
  "--steps",
  "6",
  "--warmup",
  "1",
  "--engine",
  "tfjs",
  ...FAST_EVAL,
  "--exact-blocks",
  "1",
  "--judge",
  "self",
];

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
const names = (dir: string) =>
  [...Deno.readDirSync(dir)].map((e) => e.name).sort();
const config = (out: string, extra: Record<string, unknown> = {}) =>
  resolveConfig({ preset: "micro", out, ...extra });

// One finished micro run, made once (removed when the tests end).
const made = once(async (tempDir) => {
  const root = await tempDir();
  // A space and a quote in its path (see the report's command test).
  const out = `${root}/it's a run`;
  const r = await runTool("experiment.ts", [...RUN, "--out", out]);
  assertEquals(r.code, 0, r.stderr);
  return { root };
});
/** A copy of one finished micro run (made once). */
async function finishedCopy(): Promise<string> {
  const run = `${(await made()).root}/it's a run`;
  const copy = await Deno.makeTempDir();
  await new Deno.Command("cp", { args: ["-a", `${run}/.`, copy] })
    .output();
  return copy;
}

Deno.test("hostile: three processes start, --force and --resume one folder at once; one runs, the others are refused, nothing mixes", async () => {
  const out = `${await Deno.makeTempDir()}/run`;
  const variants = [[], ["--force"], ["--resume"]];
  const results = await Promise.all(
    variants.map((extra) =>
      runTool("experiment.ts", [...RUN, ...extra, "--out", out])
    ),
  );
  const won = results.filter((r) => r.code === 0);
  assert(won.length >= 1, results.map((r) => r.stderr).join("\n---\n"));
  for (const r of results.filter((r) => r.code !== 0)) {
    assert(
      /in use by another run|already holds a run/.test(r.stderr),
      r.stderr,
    );
  }
  // Whoever ran after another finished continued or replaced it: either
  // way the folder holds one run's metrics, each step once per model.
  const steps = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim()
    .split("\n").map((l) => JSON.parse(l)).filter((m) => "loss" in m)
    .map((m) => `${m.model}:${m.step}`);
  assertEquals(new Set(steps).size, 12);
  assertEquals(await new RunFolder(out).writer(), undefined);
  await Deno.remove(out.slice(0, -4), { recursive: true });
});

Deno.test("hostile: the report's command gives the run back in bash, whatever its --out holds", async () => {
  const run = await finishedCopy();
  // The path it was made in, as its configuration records it.
  const { out } = JSON.parse(await Deno.readTextFile(`${run}/config.json`));
  assert(out.includes("it's a run"), out);
  const { command } = JSON.parse(
    await Deno.readTextFile(`${run}/results.json`),
  );
  assert(command.startsWith("deno task experiment "), command);
  // The words bash reads from it (the arguments were joined unquoted:
  // `--out /tmp/x/it's a run` is an unterminated quote).
  const words = await new Deno.Command("bash", {
    args: [
      "-c",
      'eval "set -- $1" && printf "%s\\0" "$@"',
      "_",
      command.slice("deno task experiment ".length),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(words.code, 0, new TextDecoder().decode(words.stderr));
  const args = new TextDecoder().decode(words.stdout).split("\0").slice(0, -1);
  assertEquals(args, [...RUN, "--out", out]);
  assert(
    (await Deno.readTextFile(`${run}/report.md`)).includes(command),
    "report.md states the same command",
  );
  await Deno.remove(run, { recursive: true });
});

Deno.test("hostile: in one process, only one of many simultaneous acquires of a folder wins", async () => {
  const out = `${await Deno.makeTempDir()}/run`;
  const tries = await Promise.allSettled(
    Array.from({ length: 8 }, () => new RunFolder(out).acquire(config(out))),
  );
  const won = tries.filter((t) => t.status === "fulfilled");
  assertEquals(won.length, 1);
  for (const t of tries) {
    if (t.status === "rejected") {
      assert(t.reason instanceof ConfigError, String(t.reason));
    }
  }
  (won[0] as PromiseFulfilledResult<{ release(): void }>).value.release();
  assertEquals(await exists(out), false);
  await Deno.remove(out.slice(0, -4), { recursive: true });
});

Deno.test("hostile: --out paths that are not a place for a run are refused and left as they were", async () => {
  const dir = await Deno.makeTempDir();
  const run = await finishedCopy();
  await Deno.writeTextFile(`${dir}/file`, "x");
  await Deno.symlink(run, `${dir}/link`);
  await Deno.symlink(`${dir}/loop`, `${dir}/loop`);
  await new Deno.Command("cp", {
    args: ["-a", `${run}/seed-0/ar`, `${dir}/model`],
  }).output();
  const before = names(run);
  // A run inside a run folder: a --force of that run moved it aside while
  // it ran (it died on its next write), so none is started there.
  const inside = "is inside the run folder";
  const refused: [string, boolean, string][] = [
    ["/", true, "holds files but no run"],
    [ROOT, true, "holds files but no run"],
    [`${ROOT}.`, true, "holds files but no run"],
    [`${run}/seed-0`, true, inside],
    [`${run}/seed-0/ar/`, true, inside],
    [`${run}/sub`, false, `--out ${run}/sub ${inside} ${run}`],
    [`${run}/seed-0/ar/x`, false, inside],
    [`${run}/seed-0/../sub`, true, inside],
    [`${dir}/link/sub`, false, `${inside} ${run}`],
    [`${dir}/model`, true, "is not a run's configuration"],
    // The system's line, whole path and code, was all they said.
    [`${dir}/loop/run`, false, `Cannot read --out ${dir}/loop/run: Too many`],
    [`${dir}/${"x".repeat(300)}`, true, "File name too long; choose another"],
    [`${dir}/file`, true, "is a file, not a folder"],
    // The file is `file`, not `file/run` (said so once).
    [
      `${dir}/file/run`,
      false,
      `--out ${dir}/file/run is inside ${dir}/file, which is a file, not a folder; --out takes a folder`,
    ],
    [
      `${dir}/file/a/run`,
      true,
      `--out ${dir}/file/a/run is inside ${dir}/file, which is a file`,
    ],
    [run, false, "already holds a run"],
    [`${run}///`, false, "already holds a run"],
    [`${dir}/link/`, false, "already holds a run"],
  ];
  for (const [out, force, why] of refused) {
    await assertRejects(
      () => new RunFolder(out).acquire(config(out, { force })),
      Error,
      why,
      out,
    );
  }
  assertEquals(names(run), before);
  assertEquals(names(dir), ["file", "link", "loop", "model"]);
  // Through a folder not yet there and a "..": not inside a run.
  const beside = `${dir}/none/../run`;
  (await new RunFolder(beside).acquire(config(beside))).release();
  assertEquals(names(dir), ["file", "link", "loop", "model"]);
  assertEquals(await new RunFolder(run).writer(), undefined);
  // Through a link, --force moves the files of the run it points to.
  const lock = await new RunFolder(`${dir}/link`).acquire(
    config(`${dir}/link`, { force: true }),
  );
  await lock.begin();
  lock.release();
  // Beside the folder the link names (across filesystems a rename beside
  // the link failed), not beside the link.
  assertEquals(names(dir), ["file", "link", "loop", "model"]);
  const up = run.slice(0, run.lastIndexOf("/"));
  const base = run.slice(run.lastIndexOf("/") + 1);
  const aside = names(up).find((n) => n.startsWith(`${base}.replaced-`));
  assert(aside, names(up).join());
  assert(await exists(`${up}/${aside}/results.json`));
  assertEquals(names(run), ["config.json"]);
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(run, { recursive: true });
  await Deno.remove(`${up}/${aside}`, { recursive: true });
});

Deno.test("hostile: --resume of a folder holding no run (a mistyped --out) says it starts one; of a run, says nothing", async () => {
  const dir = await Deno.makeTempDir();
  const notes: string[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => notes.push(args.join(" "));
  try {
    for (const out of [`${dir}/typo`, `${dir}/typo`]) {
      const lock = await new RunFolder(out).acquire(
        config(out, { resume: true }),
      );
      await lock.begin();
      lock.release();
    }
  } finally {
    console.error = error;
  }
  // Once: the second --resume continues the run the first started.
  assertEquals(notes, [
    `note: --out ${dir}/typo holds no run yet: --resume starts one there (check --out if you meant to continue a run)`,
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("hostile: a run refused after its --out was made removes the folders made above it too, and only those", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/kept`);
  // Refused under the lock (released before begin): the folder is as it
  // was — a/b, and c and d (made through c/..), were left behind, empty.
  for (
    const out of [`${dir}/a/b/run`, `${dir}/c/../d/run`, `${dir}/kept/e/run`]
  ) {
    (await new RunFolder(out).acquire(config(out))).release();
    assertEquals(names(dir), ["kept"], out);
  }
  assertEquals(names(`${dir}/kept`), []);
  // A folder made above it that holds something by then is kept.
  const lock = await new RunFolder(`${dir}/f/run`).acquire(
    config(`${dir}/f/run`),
  );
  await Deno.writeTextFile(`${dir}/f/note`, "the user's");
  lock.release();
  assertEquals(names(`${dir}/f`), ["note"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("hostile: lock files that are garbage, empty, huge, folders, FIFOs or devices never block for good, and never let a live run be replaced", async () => {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/run`;
  const folder = new RunFolder(out);
  const stale: [string, () => Promise<void>][] = [
    ["garbage", () => Deno.writeTextFile(folder.lockPath, "not a pid")],
    ["empty", () => Deno.writeTextFile(folder.lockPath, "")],
    ["pid 0", () => Deno.writeTextFile(folder.lockPath, '{"pid":0}')],
    ["pid -1", () => Deno.writeTextFile(folder.lockPath, "-1")],
    ["pid of none", () => Deno.writeTextFile(folder.lockPath, "4194304")],
    ["huge", () => Deno.writeFile(folder.lockPath, new Uint8Array(2 << 20))],
    ["a folder", () => Deno.mkdir(folder.lockPath)],
    ["/dev/zero", () => Deno.symlink("/dev/zero", folder.lockPath)],
    ["a FIFO", async () => {
      await new Deno.Command("mkfifo", { args: [folder.lockPath] }).output();
    }],
    ["reused pid 1", () =>
      Deno.writeTextFile(
        folder.lockPath,
        JSON.stringify({ pid: 1, start: "0", command: "deno run" }),
      )],
  ];
  for (const [what, plant] of stale) {
    await Deno.mkdir(out, { recursive: true });
    await plant();
    const release = await folder.start(config(out));
    assertEquals(await folder.writer(), Deno.pid, what);
    release();
    await Deno.remove(out, { recursive: true });
  }
  // A live holder (this process, same start time): refused, --force too.
  const release = await folder.start(config(out));
  await assertRejects(
    () => folder.acquire(config(out)),
    ConfigError,
    "already holds a run",
  );
  for (const extra of [{ force: true }, { resume: true }]) {
    await assertRejects(
      () => folder.acquire(config(out, extra)),
      ConfigError,
      "in use by another run",
    );
  }
  release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("hostile: swapped checkpoints never match — contestant, seed, data, tokenizer, training options — and resumable options always do", () => {
  const c = config("runs/x");
  const data: DataRecord = {
    sha256: { train: "t", valid: "v", test: "s" },
    tokenizer: { id: "byte", vocabSize: 260 },
  };
  const saved = checkpointTies(c, "ar", 0, data);
  const differs = (now: ReturnType<typeof checkpointTies>) =>
    configDifferences(saved.config, now.config, {
      defaults: now.configDefaults,
    }).map((d) => d.key);
  const hostile: [ReturnType<typeof checkpointTies>, string][] = [
    [checkpointTies(c, "d3pm", 0, data), "contestant"],
    [checkpointTies(c, "mlm", 0, data), "contestant"],
    [checkpointTies(c, "ar", 1, data), "seed"],
    [
      checkpointTies(c, "ar", 0, {
        ...data,
        sha256: { ...data.sha256, valid: "w" },
      }),
      "dataSha256",
    ],
    [
      checkpointTies(c, "ar", 0, {
        ...data,
        tokenizer: { id: "byte", vocabSize: 261 },
      }),
      "tokenizerBuilt",
    ],
    [checkpointTies({ ...c, lr: 0.004 }, "ar", 0, data), "lr"],
    [checkpointTies({ ...c, seeds: 2 }, "ar", 0, data), "seeds"],
  ];
  for (const [now, key] of hostile) assertEquals(differs(now), [key]);
  assertEquals(
    differs(
      checkpointTies(
        { ...c, out: "y", backend: "cpu", resume: true, logEvery: 5 },
        "ar",
        0,
        data,
      ),
    ),
    [],
  );
  // A checkpoint written before the ties reads as this model's.
  const {
    contestant: _,
    seed: __,
    dataSha256: ___,
    tokenizerBuilt: ____,
    ...legacy
  } = saved.config;
  assertEquals(
    configDifferences(legacy, saved.config, { defaults: saved.configDefaults }),
    [],
  );
});

Deno.test("hostile: models, processes, tokenizers and data records put in a finished run's place are refused when it is loaded or resumed", async () => {
  const base = await finishedCopy();
  const fresh = async () => {
    const copy = await Deno.makeTempDir();
    await new Deno.Command("cp", { args: ["-a", `${base}/.`, copy] }).output();
    return copy;
  };
  const loads = async (run: string, model = "ar") => {
    const t = await loadTrained(run, { model });
    t.model.dispose();
  };
  await loads(base); // the untouched run loads
  const cases: [string, (run: string) => Promise<void>, string][] = [
    ["the D3PM's model in the AR's place", async (run) => {
      for (const f of ["model.safetensors", "config.json"]) {
        await Deno.copyFile(`${run}/seed-0/d3pm/${f}`, `${run}/seed-0/ar/${f}`);
      }
    }, 'config.json does not belong to this run: its kind is "bidirectional"'],
    [
      "the D3PM's process in the AR's place",
      (run) =>
        Deno.copyFile(
          `${run}/seed-0/d3pm/process.json`,
          `${run}/seed-0/ar/process.json`,
        ),
      'its kind is "masked-diffusion"',
    ],
    ["a process with another start id", async (run) => {
      const p = `${run}/seed-0/ar/process.json`;
      await Deno.writeTextFile(
        p,
        JSON.stringify({ ...JSON.parse(await Deno.readTextFile(p)), start: 3 }),
      );
    }, "its start is 3"],
    ["a model config with another vocabulary", async (run) => {
      const p = `${run}/seed-0/ar/config.json`;
      await Deno.writeTextFile(
        p,
        JSON.stringify({
          ...JSON.parse(await Deno.readTextFile(p)),
          vocabSize: 4096,
        }),
      );
    }, "its vocabSize is 4096"],
    [
      "a process that is an array",
      (run) => Deno.writeTextFile(`${run}/seed-0/ar/process.json`, "[]"),
      "is not a process description",
    ],
    [
      "a process that is a number",
      (run) => Deno.writeTextFile(`${run}/seed-0/ar/process.json`, "7"),
      "is not a process description",
    ],
    [
      "a process that is a string",
      (run) => Deno.writeTextFile(`${run}/seed-0/ar/process.json`, '"ar"'),
      "is not a process description",
    ],
    [
      "a 2 MiB process",
      (run) =>
        Deno.writeFile(
          `${run}/seed-0/ar/process.json`,
          new Uint8Array(2 << 20),
        ),
      "larger than the 1.0 MiB",
    ],
    ["process.json a FIFO", async (run) => {
      await Deno.remove(`${run}/seed-0/ar/process.json`);
      await new Deno.Command("mkfifo", {
        args: [`${run}/seed-0/ar/process.json`],
      }).output();
    }, "it is a FIFO"],
    [
      "a data record that is garbage",
      (run) => Deno.writeTextFile(`${run}/data.json`, '{"sha256": 1}'),
      "is not a data record",
    ],
  ];
  for (const [what, plant, why] of cases) {
    const run = await fresh();
    await plant(run);
    await assertRejects(() => loads(run), ConfigError, why, what);
    await Deno.remove(run, { recursive: true });
  }
  // A seed or a contestant the run does not train, its folder copied in
  // (of the same configuration, so every file agrees): not the run's model
  // (sample and evaluate had scored it as the run's seed 1).
  {
    const run = await fresh();
    await new Deno.Command("cp", {
      args: ["-a", `${run}/seed-0`, `${run}/seed-1`],
    }).output();
    await new Deno.Command("cp", {
      args: ["-a", `${run}/seed-0/d3pm`, `${run}/seed-0/mlm`],
    }).output();
    for (
      const [which, why] of [
        [{ seed: 1, model: "ar" }, "has no ar model for seed 1"],
        [{ seed: 0, model: "mlm" }, "has no mlm model for seed 0"],
      ] as const
    ) {
      await assertRejects(
        async () => (await loadTrained(run, which)).model.dispose(),
        ConfigError,
        `${why}: its config.json trains ar, d3pm for seed 0`,
      );
    }
    await Deno.remove(run, { recursive: true });
  }
  // A BPE run whose tokenizer.json is replaced by another BPE, of its size or not.
  const bpe = config(base, { tokenizer: "bpe", vocabSize: 270 });
  const run = await fresh();
  const folder = new RunFolder(run);
  const built = trainBpe("the cat sat on the mat ".repeat(50), {
    vocabSize: 270,
  });
  const record: DataRecord = {
    sha256: { train: "a", valid: "b", test: "c" },
    tokenizer: { id: built.id, vocabSize: built.vocabSize },
  };
  await Deno.writeTextFile(folder.dataPath, JSON.stringify(record));
  await saveBpeTokenizer(built, folder.tokenizerPath);
  assertEquals((await openTokenizer(bpe, folder)).id, built.id);
  for (const text of ["a dog ran to the log ", "zz yy xx ww "]) {
    await saveBpeTokenizer(
      trainBpe(text.repeat(50), { vocabSize: 270 }),
      folder.tokenizerPath,
    );
    await assertRejects(
      () => openTokenizer(bpe, folder),
      ConfigError,
      "not the tokenizer the run built",
    );
  }
  await Deno.remove(run, { recursive: true });
  await Deno.remove(base, { recursive: true });
});

Deno.test("hostile: weights put in a model's place (another seed's, of the same shapes) are refused by every loader; a folder without their recorded SHA-256 loads as before", async () => {
  const run = await finishedCopy();
  const folder = new RunFolder(run);
  const path = folder.weightsPath(0, "ar");
  const process = `${run}/seed-0/ar/process.json`;
  const recorded = JSON.parse(await Deno.readTextFile(process))[WEIGHTS_SHA256];
  // The experiment recorded the weights it wrote.
  assertEquals(recorded, await folder.weightsSha256(0, "ar"));
  // Another seed's weights of this configuration (`cp runB/seed-1/ar/model.safetensors`).
  const modelConfig = await inspectModel(folder.modelDir(0, "ar"));
  const other = new Transformer(modelConfig, { seed: 7 });
  const original = await Deno.readFile(path);
  await Deno.writeFile(path, serializeModel(other));
  other.dispose();
  const found = await folder.weightsSha256(0, "ar");
  const why = `${path} is not the weights this run wrote there: SHA-256 ${
    found.slice(0, 12)
  }…, where its process.json records ${recorded.slice(0, 12)}…`;
  await assertRejects(
    async () => (await loadTrained(run, { model: "ar" })).model.dispose(),
    ConfigError,
    why,
  );
  // inspectTrained reads no weights: it gives the recorded SHA-256 to
  // the reader that does, as --init-from.
  const info = await inspectTrained(run, { model: "ar" });
  assertEquals(info.weightsSha256, recorded);
  const d3pm = new Transformer(
    D3PM.modelConfig(info.config, info.tokenizer.vocabSize),
  );
  await assertRejects(
    () => initialiseFrom(d3pm, parseInitFrom(run, 0), info.tokenizer),
    ConfigError,
    `Option --init-from ${run}/seed-0/ar: ${why}`,
  );
  d3pm.dispose();
  await assertRejects(
    () => locateWeights(run, { model: "ar" }),
    ConfigError,
    why,
  );
  // The whole folder copied from another seed (its process.json records
  // the copied weights' hash, and that seed).
  await Deno.writeFile(path, original);
  const current = JSON.parse(await Deno.readTextFile(process));
  await Deno.writeTextFile(
    process,
    JSON.stringify({ ...current, [WEIGHTS_SEED]: 1 }),
  );
  const seedWhy =
    `${process} records the weights of seed 1, not of seed 0 (the model folder was copied from another seed)`;
  await assertRejects(
    async () => (await loadTrained(run, { model: "ar" })).model.dispose(),
    ConfigError,
    seedWhy,
  );
  await assertRejects(
    () => locateWeights(run, { model: "ar" }),
    ConfigError,
    seedWhy,
  );
  await Deno.writeTextFile(process, JSON.stringify(current));
  assertEquals(current[WEIGHTS_SEED], 0);
  // Restored, it loads again; a process.json of before the record loads as it did.
  await Deno.writeFile(path, original);
  (await loadTrained(run, { model: "ar" })).model.dispose();
  const { [WEIGHTS_SHA256]: _, [WEIGHTS_SEED]: __, ...older } = JSON.parse(
    await Deno.readTextFile(process),
  );
  await Deno.writeTextFile(process, JSON.stringify(older));
  await Deno.writeFile(path, serializeModel(new Transformer(modelConfig)));
  (await loadTrained(run, { model: "ar" })).model.dispose();
  await Deno.remove(run, { recursive: true });
});

Deno.test("hostile: a resume where a model's folder is a file or a FIFO is refused before anything runs", async () => {
  const run = await finishedCopy();
  const folder = new RunFolder(run);
  const c = { ...(await folder.savedConfig())!, out: run, resume: true };
  // The AR's folder gone (it trains again), the D3PM's a file: refused
  // now, not after the AR's training with "Not a directory (os error 20)".
  await Deno.remove(folder.modelDir(0, "ar"), { recursive: true });
  await Deno.remove(folder.modelDir(0, "d3pm"), { recursive: true });
  await Deno.writeTextFile(folder.modelDir(0, "d3pm"), "x");
  await assertRejects(
    () => folder.acquire(c),
    ConfigError,
    `${run}/seed-0/d3pm is a file, where the run keeps its models`,
  );
  await Deno.remove(`${run}/seed-0`, { recursive: true });
  await new Deno.Command("mkfifo", { args: [`${run}/seed-0`] }).output();
  await assertRejects(
    () => folder.acquire(c),
    ConfigError,
    `${run}/seed-0 is a FIFO, where the run keeps its models`,
  );
  assertEquals(await folder.writer(), undefined);
  await Deno.remove(run, { recursive: true });
});

Deno.test("hostile: a resume with an edited data record, or none, checks what it can and loses nothing", async () => {
  const run = await finishedCopy();
  const folder = new RunFolder(run);
  const saved = await folder.savedData();
  assert(saved, "a run records its data");
  const record: DataRecord = saved!;
  const c = { ...(await folder.savedConfig())!, out: run, resume: true };
  for (const split of ["train", "valid", "test"] as const) {
    const lock = await folder.acquire(c);
    await assertRejects(
      () =>
        lock.begin({
          ...record,
          sha256: { ...record.sha256, [split]: "0".repeat(64) },
        }),
      ConfigError,
      `the ${split} data changed since the run started`,
    );
    lock.release();
  }
  const lock = await folder.acquire(c);
  await assertRejects(
    () =>
      lock.begin({ ...record, tokenizer: { id: "gpt2", vocabSize: 50261 } }),
    ConfigError,
    "its tokenizer was byte-v1 with 260 ids, now gpt2 with 50261",
  );
  lock.release();
  assertEquals(await folder.savedData(), record); // nothing rewritten
  // A run made before data records: resumes, and gets one.
  await Deno.remove(folder.dataPath);
  const again = await folder.acquire(c);
  await again.begin(record);
  again.release();
  assertEquals(await folder.savedData(), record);
  assert(await exists(`${run}/results.json`));
  await Deno.remove(run, { recursive: true });
});

Deno.test("hostile: a run whose data moved resumes from the new --data when data.json verifies its files, and records that path; a split that differs is refused by name", async () => {
  const run = await finishedCopy();
  const folder = new RunFolder(run);
  // The run trained on the embedded WikiText-2; the same files, moved.
  const moved = await Deno.makeTempDir();
  for (const split of ["train", "valid", "test"]) {
    await Deno.copyFile(
      `${ROOT}data/corpus/wikitext-2/wiki.${split}.tokens.gz`,
      `${moved}/wiki.${split}.tokens.gz`,
    );
  }
  const before = JSON.parse(await Deno.readTextFile(`${run}/results.json`));
  const r = await runTool("experiment.ts", [
    ...RUN,
    "--out",
    run,
    "--resume",
    "--data",
    moved,
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals((await folder.savedConfig())!.data, moved);
  const after = JSON.parse(await Deno.readTextFile(`${run}/results.json`));
  assertEquals(after.config.data, moved);
  const tests = (r: { results: { test: unknown }[] }) =>
    r.results.map((m) => m.test);
  assertEquals(tests(after), tests(before), "the same figures");
  assertEquals(tests(after).length, 2);
  // One split that differs there: refused, naming it, nothing rewritten.
  const config = await Deno.readTextFile(folder.configPath);
  const other = await Deno.makeTempDir();
  for (const split of ["train", "test"]) {
    await Deno.copyFile(
      `${moved}/wiki.${split}.tokens.gz`,
      `${other}/wiki.${split}.tokens.gz`,
    );
  }
  await Deno.copyFile(
    `${ROOT}data/corpus/wikitext-2/wiki.test.tokens.gz`,
    `${other}/wiki.valid.tokens.gz`,
  );
  const refused = await runTool("experiment.ts", [
    ...RUN,
    "--out",
    run,
    "--resume",
    "--data",
    other,
  ]);
  assertEquals(refused.code, 1, refused.stderr);
  assert(
    refused.stderr.includes(
      `Cannot resume ${run}: --data is "${other}" but the run used "${moved}", and there the valid data differ from the run's (valid SHA-256 `,
    ),
    refused.stderr,
  );
  assertEquals(await Deno.readTextFile(folder.configPath), config);
  // Without data.json nothing verifies another --data: refused as before.
  await Deno.remove(folder.dataPath);
  await assertRejects(
    () => folder.acquire({ ...JSON.parse(config), data: other, resume: true }),
    ConfigError,
    `--data is "${other}" but the run used "${moved}"`,
  );
  for (const dir of [run, moved, other]) {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostile: report --merge names a torn, FIFO or foreign results.json and a run still going, instead of 'no results.json there'", async () => {
  const run = await finishedCopy();
  const other = await finishedCopy();
  const results = `${other}/results.json`;
  const config = `${other}/config.json`;
  const kept = await Deno.readTextFile(results);
  const keptConfig = await Deno.readTextFile(config);
  const merged = () => collectRuns([other, run]);
  const cases: [string, () => Promise<void>, string][] = [
    [
      "torn",
      () => Deno.writeTextFile(results, kept.slice(0, 100)),
      "is not valid JSON",
    ],
    ["a FIFO", async () => {
      await Deno.remove(results);
      await new Deno.Command("mkfifo", { args: [results] }).output();
    }, "it is a FIFO"],
    // A config.json edited since (or a results.json copied from another
    // run): the figures were not measured with what the folder says.
    [
      "config edited",
      () =>
        Deno.writeTextFile(
          config,
          keptConfig.replace(/"lr": [^,]+,/, '"lr": 0.00123,'),
        ),
      "its results.json was measured with --lr 0.005 but its config.json gives 0.00123",
    ],
  ];
  for (const [what, plant, why] of cases) {
    await plant();
    await assertRejects(merged, ConfigError, why, what);
    await Deno.remove(results).catch(() => {});
    await Deno.writeTextFile(results, kept);
    await Deno.writeTextFile(config, keptConfig);
  }
  // A resumable option differs: the same run.
  await Deno.writeTextFile(
    config,
    keptConfig.replace(/"backend": "[^"]+"/, '"backend": "wasm"'),
  );
  await assertRejects(merged, ConfigError, "both hold seed 0 of ar");
  // No results yet, its lock held by a live process (this one).
  await Deno.remove(results);
  const release = await new RunFolder(other).lock();
  await assertRejects(
    merged,
    ConfigError,
    `its run is still going (pid ${Deno.pid})`,
  );
  release();
  await assertRejects(merged, ConfigError, "no results.json there");
  // Held by a process of another host name: not claimed to be going.
  const boot = crypto.randomUUID();
  await Deno.writeTextFile(
    `${other}/.lock`,
    JSON.stringify({ pid: 4242, start: "1", host: boot, hostname: "node9" }),
  );
  await assertRejects(
    merged,
    ConfigError,
    `it has no results.json yet and is held by pid 4242 on host node9 (boot ${boot}), which this host cannot check; merge it once it has finished (if no run writes there, delete ${other}/.lock)`,
  );
  await Deno.remove(`${other}/.lock`);
  await assertRejects(
    () => collectRuns([`${other}/config.json`]),
    ConfigError,
    "it is a file, not a run folder",
  );
  await Deno.remove(run, { recursive: true });
  await Deno.remove(other, { recursive: true });
});

// A read-only mount of a finished run (root only: it mounts one).
Deno.test({
  name:
    "hostile: a run on a read-only disk is refused in one line naming --out, also with a stale lock in it",
  ignore: !MAY_MOUNT,
  fn: async () => {
    const run = await finishedCopy();
    const ro = await Deno.makeTempDir();
    // Mounts work here (MAY_MOUNT): one that fails is an error (it returned
    // and passed, having checked nothing).
    try {
      await mount("--bind", run, ro);
      await mount("-o", "remount,ro,bind", ro);
      const c = { ...(await new RunFolder(ro).savedConfig())!, resume: true };
      const refused = `Cannot lock --out ${ro}: Read-only file system`;
      await assertRejects(
        () => new RunFolder(ro).acquire(c),
        ConfigError,
        refused,
      );
      // A stale lock it cannot remove: said so (it said "another run keeps
      // taking it" after two takeovers that removed nothing).
      await mount("-o", "remount,rw,bind", ro);
      await Deno.writeTextFile(`${run}/.lock`, '{"pid": 4194303}');
      await mount("-o", "remount,ro,bind", ro);
      await assertRejects(
        () => new RunFolder(ro).acquire(c),
        ConfigError,
        refused,
      );
      // Reading it still works.
      (await loadTrained(ro, { model: "ar" })).model.dispose();
    } finally {
      await new Deno.Command("umount", { args: [ro] }).output();
      await Deno.remove(ro);
      await Deno.remove(run, { recursive: true });
    }
  },
});

// A full disk (root only: it mounts a 64 KiB tmpfs).
Deno.test({
  name:
    "hostile: a write that fills the disk names the file, keeps the old one and leaves no temporary file",
  ignore: !MAY_MOUNT,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await withTmpfs(dir, async () => {
      const path = `${dir}/checkpoint.safetensors`;
      await writeFileAtomic(path, "old");
      // It said only "No space left on device (os error 28)": which file?
      await assertRejects(
        () => writeFileAtomic(path, new Uint8Array(128 << 10)),
        Error,
        `Cannot write ${path}: No space left on device`,
      );
      assertEquals(await Deno.readTextFile(path), "old");
      assertEquals(names(dir), ["checkpoint.safetensors"]);
    }).finally(() => Deno.remove(dir, { recursive: true }));
  },
});
