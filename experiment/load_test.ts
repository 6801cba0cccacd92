import { assertEquals, assertRejects } from "@std/assert";
import {
  inspectRun,
  inspectTrained,
  listRuns,
  locateWeights,
  readRun,
} from "./load.ts";
import { resolveConfig } from "./config.ts";
import { RunFolder } from "./run_folder.ts";
import { ConfigError } from "./options.ts";

Deno.test("a model the run did not train is refused naming the models and seeds it did (or none yet); one its configuration does not train, naming what it does", async () => {
  const out = await Deno.makeTempDir();
  try {
    const folder = new RunFolder(out);
    (await folder.start(
      resolveConfig({ preset: "micro", out, seeds: 2, models: "ar,d3pm" }),
    ))();
    const tail = (e: Error) => e.message.slice(e.message.indexOf("); ") + 3);
    const none = await assertRejects(
      () => locateWeights(out, { model: "ar" }),
      Error,
    );
    assertEquals(tail(none), "none trained there yet");
    for (const [seed, kind] of [[0, "ar"], [0, "d3pm"], [1, "ar"]] as const) {
      await Deno.mkdir(folder.modelDir(seed, kind), { recursive: true });
      await Deno.writeTextFile(
        `${folder.modelDir(seed, kind)}/model.safetensors`,
        "",
      );
      await Deno.writeTextFile(folder.processPath(seed, kind), "{}");
    }
    const held = "trained there: ar, d3pm of seed 0; ar of seed 1";
    const d3pm1 = await assertRejects(
      () => locateWeights(out, { model: "d3pm", seed: 1 }),
      Error,
      `No trained d3pm model for seed 1 in ${out}`,
    );
    assertEquals(tail(d3pm1), held);
    // A contestant or seed the configuration does not train is refused
    // before its folder is looked at, naming what the run trains.
    for (const [seed, kind] of [[0, "mlm"], [2, "ar"]] as const) {
      const outside = await assertRejects(
        () => inspectTrained(out, { model: kind, seed }),
        Error,
        `${out} has no ${kind} model for seed ${seed}: its config.json trains ar, d3pm for seeds 0..1`,
      );
      assertEquals(outside.message.includes("\n"), false);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

// A finished run folder written by hand: its config.json, and a
// results.json holding `results` as given (the figures are not read here).
async function handRun(
  out: string,
  results?: unknown,
): Promise<ReturnType<typeof resolveConfig>> {
  const saved = resolveConfig({ preset: "micro", out });
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(`${out}/config.json`, JSON.stringify(saved));
  if (results !== undefined) {
    await Deno.writeTextFile(`${out}/results.json`, JSON.stringify(results));
  }
  return saved;
}

Deno.test("readRun takes only an object as results.json: an array, string, number or null leaves the run stopped, with no results", async () => {
  const out = await Deno.makeTempDir();
  try {
    for (const bad of [[{ config: {} }], "finished", 3, null]) {
      await handRun(out, bad);
      const state = await readRun(out);
      assertEquals(state.status, "stopped", JSON.stringify(bad));
      assertEquals("results" in state, false);
      assertEquals("writer" in state, false);
    }
    // An object is the run's results, whole; no writer is named.
    const saved = await handRun(out);
    const results = { config: saved, results: [] };
    await Deno.writeTextFile(`${out}/results.json`, JSON.stringify(results));
    const finished = await readRun(out);
    assertEquals(finished.status, "finished");
    assertEquals(finished.results, results);
    assertEquals("writer" in finished, false);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("readRun's hint for a folder without config.json quotes a path with a space, so the command it gives runs", async () => {
  const root = await Deno.makeTempDir();
  try {
    await assertRejects(
      () => readRun(`${root}/sp ace`),
      ConfigError,
      `(not a run folder; deno task experiment --out '${root}/sp ace' makes one)`,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("readRun names the pid of the process holding a run, and no results", async () => {
  const out = await Deno.makeTempDir();
  try {
    const release = await new RunFolder(out).start(
      resolveConfig({ preset: "micro", out }),
    );
    try {
      const state = await readRun(out);
      assertEquals(state.status, "running");
      assertEquals(state.writer, Deno.pid);
      assertEquals("results" in state, false);
    } finally {
      release();
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("readRun calls a run whose lock names another host name held, with the way out, not running; this host's live process running, its gone one stopped; inspectRun gives the held words as its reason", async () => {
  const out = await Deno.makeTempDir();
  try {
    const folder = new RunFolder(out);
    const release = await folder.start(resolveConfig({ preset: "micro", out }));
    const mine = JSON.parse(await Deno.readTextFile(folder.lockPath));
    release();
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    const lock = (fields: Record<string, unknown>) =>
      Deno.writeTextFile(
        folder.lockPath,
        JSON.stringify({ ...mine, ...fields }),
      );
    // Another host name: its pid cannot be judged by this host's /proc.
    const boot = crypto.randomUUID();
    await lock({ pid: gone.pid, start: "1", host: boot, hostname: "node9" });
    const held = await readRun(out);
    const words =
      `pid ${gone.pid} on host node9 (boot ${boot}), which this host cannot check; if no run writes there, delete ${folder.lockPath}`;
    assertEquals([held.status, held.heldBy, "writer" in held], [
      "held",
      words,
      false,
    ]);
    const o = await inspectRun(out);
    assertEquals([o.status, o.reason], ["held", `held by ${words}`]);
    // This host's live process (this one): running, no held words.
    await lock({ pid: Deno.pid });
    const running = await readRun(out);
    assertEquals([running.status, running.writer, "heldBy" in running], [
      "running",
      Deno.pid,
      false,
    ]);
    assertEquals((await inspectRun(out)).reason, undefined);
    // This host's gone process: stopped (interrupted), as before.
    await lock({ pid: gone.pid, start: "1" });
    const stopped = await readRun(out);
    assertEquals([stopped.status, "writer" in stopped, "heldBy" in stopped], [
      "stopped",
      false,
      false,
    ]);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("readRun takes results.json without a configuration (the readers name it) and compares --data only where data.json did not verify the files", async () => {
  const out = await Deno.makeTempDir();
  try {
    const saved = await handRun(out);
    for (const config of [undefined, null]) {
      await handRun(out, { config, results: [] });
      assertEquals((await readRun(out)).status, "finished");
    }
    const moved = { config: { ...saved, data: "/elsewhere" }, results: [] };
    // No data.json: the two --data paths may be two data sets.
    await handRun(out, moved);
    await assertRejects(
      () => readRun(out),
      ConfigError,
      `${out}/results.json was measured with --data "/elsewhere" but its config.json gives`,
    );
    // A data.json that verified the files: the same data, moved.
    const record = {
      sha256: { train: "a", valid: "b", test: "c" },
      tokenizer: { id: "byte-v1", vocabSize: 260 },
    };
    await Deno.writeTextFile(`${out}/data.json`, JSON.stringify(record));
    assertEquals((await readRun(out)).status, "finished");
    // A malformed data.json cannot show it: it is what is named, and only
    // where the --data paths are what differ.
    await Deno.writeTextFile(`${out}/data.json`, "[]");
    await assertRejects(
      () => readRun(out),
      ConfigError,
      `${out}/data.json is not a data record`,
    );
    await handRun(out, { config: saved, results: [] });
    assertEquals((await readRun(out)).status, "finished");
    await handRun(out, { config: { ...saved, lr: saved.lr * 2 }, results: [] });
    await assertRejects(
      () => readRun(out),
      ConfigError,
      `${out}/results.json was measured with --lr ${saved.lr * 2}`,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("listRuns leaves out a folder that is not a run, and lists the runs beside it", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/a-not-a-run`);
    await Deno.writeTextFile(`${root}/c-file`, "");
    await handRun(`${root}/b`);
    const runs = await listRuns(root);
    assertEquals(runs.map((r) => [r.dir, r.status]), [
      [`${root}/b`, "stopped"],
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("inspectRun calls a folder without config.json corrupt as readRun words it, and tells a stopped run without results.json from a finished one, neither corrupt", async () => {
  const out = await Deno.makeTempDir();
  try {
    // A folder without config.json is not a run: readRun says so.
    const none = await inspectRun(out);
    assertEquals(none.status, "corrupt");
    assertEquals(
      none.reason,
      `Cannot read run ${out}: no config.json there (not a run folder; deno task experiment --out ${out} makes one)`,
    );
    const saved = await handRun(out);
    const stopped = await inspectRun(out);
    assertEquals([stopped.status, stopped.reason], ["stopped", undefined]);
    await handRun(out, { config: saved, results: [] });
    const finished = await inspectRun(out);
    assertEquals([finished.status, finished.reason], ["finished", undefined]);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
