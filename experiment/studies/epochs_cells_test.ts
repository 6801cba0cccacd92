import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { loadTrained } from "../load.ts";
import { ConfigError } from "../options.ts";
import { PRESETS } from "../presets.ts";
import { assertRefusesHostile, HOSTILE } from "./_hostile_test_util.ts";
import {
  collectEpochs,
  epochsCells,
  epochsSweep,
  patienceSpent,
  runEpochsCell,
  runPatience,
  studyBase,
} from "./epochs_runner.ts";
import { SCALES, type StudyScale } from "./epochs_scale.ts";

const SCALE: StudyScale = {
  ...SCALES.cpu,
  u: [100, 200, 400],
  dropouts: [0, 0.1, 0.2],
  decays: [0.1, 0.5],
};

Deno.test("epochsCells() are the serial study's runs: the AR sweep on the smallest U, the D3PM at every U, then the AR at every larger U", () => {
  const cells = epochsCells(SCALE);
  // The serial study's runs, written out by hand (its loops in
  // runEpochsStudy: sweep() over dropouts × decays, then compareAt() per U,
  // whose AR at the smallest U is the sweep's winner, not a new run).
  const sweep = [0, 0.1, 0.2].flatMap((dropout) =>
    [0.1, 0.5].map((weightDecay) => ({
      name: `sweep-u100-ar-do${dropout}-wd${weightDecay}`,
      phase: "sweep",
      u: 100,
      model: "ar",
      dropout,
      weightDecay,
      wave: 0,
    }))
  );
  const d3pm = [100, 200, 400].map((u) => ({
    name: `main-u${u}-d3pm`,
    phase: "main",
    u,
    model: "d3pm",
    wave: 0,
  }));
  const ar = [200, 400].map((u) => ({
    name: `main-u${u}-ar`,
    phase: "main",
    u,
    model: "ar",
    wave: 1,
  }));
  assertEquals(cells, [...sweep, ...d3pm, ...ar]);
  // One sweep setting: no sweep, but still the one AR run at the smallest U.
  assertEquals(
    epochsCells({ ...SCALE, dropouts: [0.1], decays: [0.1] }).map((c) =>
      c.name
    ),
    [
      "sweep-u100-ar-do0.1-wd0.1",
      "main-u100-d3pm",
      "main-u200-d3pm",
      "main-u400-d3pm",
      "main-u200-ar",
      "main-u400-ar",
    ],
  );
});

Deno.test("epochsSweep() gives each cell its folder, wave and the study's arguments with --cell", () => {
  // U from one batch (8 blocks of the tiny preset's 128 tokens) up.
  const scale = { ...SCALE, u: [2000, 4000, 8000] };
  const args = ["--u", "2000,4000,8000", "--out", "runs/e"];
  const s = epochsSweep({ scale, seed: 0, out: "runs/e/", args });
  const cells = epochsCells(scale);
  assertEquals(s.cells.length, cells.length);
  s.cells.forEach((c, i) => {
    assertEquals(c.name, cells[i].name);
    assertEquals(c.out, `runs/e/${cells[i].name}`);
    assertEquals(c.wave, cells[i].wave);
    assertEquals(c.args, ["epochs", ...args, "--cell", cells[i].name]);
  });
  assertEquals(s.collect, ["epochs", ...args, "--collect"]);
  assertEquals(s.script, "examples/study.ts");
  assertEquals(s.swept, ["phase", "u", "model", "dropout", "weightDecay"]);
});

Deno.test("runEpochsCell() refuses an unknown cell, and a main AR cell before the sweep's cells have finished", async () => {
  const out = await Deno.makeTempDir({ prefix: "epochs-cell-" });
  await assertRejects(
    () => runEpochsCell({ scale: SCALE, seed: 0, out, cell: "main-u100-ar" }),
    ConfigError,
    'Unknown cell "main-u100-ar": --cell takes one of sweep-u100-ar-do0-wd0.1,',
  );
  await assertRejects(
    () => runEpochsCell({ scale: SCALE, seed: 0, out, cell: "main-u200-ar" }),
    ConfigError,
    "Cell main-u200-ar needs the AR sweep's winner, but sweep-u100-ar-do0-wd0.1,",
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("studyBase() pins the tiny preset's old settings (no ALiBi, tfjs) with settings pinned, and takes the preset's own with settings preset", () => {
  const pinned = studyBase(SCALES.cpu);
  assertEquals(
    [pinned.alibi, pinned.lr, pinned.arLr, pinned.warmup, pinned.engine],
    [0, 2e-3, 4e-3, 30, "tfjs"],
  );
  assertEquals(pinned.batchSize, 8);
  const today = studyBase({ ...SCALES.cpu, settings: "preset", batchSize: 4 });
  const tiny = PRESETS.tiny;
  assertEquals(
    [today.alibi, today.alibiMode, today.lr, today.arLr, today.warmup],
    [tiny.alibi, tiny.alibiMode, tiny.lr, tiny.arLr, tiny.warmup],
  );
  assertEquals([today.alibi, today.engine, today.batchSize], [16, "auto", 4]);
  const onCpu = studyBase({ ...SCALES.cpu, engine: "cpu" });
  assertEquals([onCpu.engine, onCpu.alibi], ["cpu", 0]);
  // Another preset has no pinned settings: its own either way.
  const small = studyBase(SCALES.gpu);
  assertEquals([small.lr, small.engine], [PRESETS.small.lr, "auto"]);
});

Deno.test("runPatience() and patienceSpent(): an AR run stops `patience` epochs after its best, a D3PM run only with d3pmPatience, neither at its last epoch", () => {
  const scale: StudyScale = { ...SCALES.cpu, patience: 4 };
  assertEquals(runPatience(scale, "ar"), 4);
  assertEquals(runPatience(scale, "d3pm"), undefined);
  assertEquals(runPatience({ ...scale, d3pmPatience: 10 }, "d3pm"), 10);
  assertEquals(runPatience({ ...scale, d3pmPatience: 10 }, "ar"), 4);
  const at = (epoch: number, bestEpoch: number, epochs = 50) => ({
    epoch,
    bestEpoch,
    epochs,
  });
  assertEquals(patienceSpent(at(6, 3), 4), false); // 3 epochs since the best
  assertEquals(patienceSpent(at(7, 3), 4), true); // 4
  assertEquals(patienceSpent(at(7, 3, 7), 4), false); // the last epoch: ends anyway
  assertEquals(patienceSpent(at(40, 3), undefined), false); // no patience
  assertEquals(patienceSpent(at(13, 3), 10), true);
});

Deno.test("runEpochsCell() refuses a cell of an older plan whose --tokens is below one epoch of its U, naming the way out (plan again into a new --out with the least --tokens)", async () => {
  const out = await Deno.makeTempDir({ prefix: "epochs-cell-old-" });
  // micro: blocks of 32, batch 8. One epoch is 3840 tokens at U = 4000,
  // 7936 at U = 8000: --tokens 5000 fits the first, not the second (a plan
  // --sweep refuses now, made before it checked).
  const scale: StudyScale = {
    ...SCALES.cpu,
    preset: "micro",
    u: [4000, 8000],
    tokens: 5000,
    dropouts: [0],
    decays: [0.1],
  };
  assertThrows(
    () => epochsSweep({ scale, seed: 0, out, args: [] }),
    ConfigError,
    "--tokens takes at least 7936 here",
  );
  try {
    await assertRejects(
      () => runEpochsCell({ scale, seed: 0, out, cell: "main-u8000-d3pm" }),
      ConfigError,
      "Option --tokens 5000 is less than one epoch at U = 8000 (31 steps of 8 blocks of 32): --tokens takes at least 7936 here; a plan written before --sweep checked --tokens cannot finish this cell: plan the study again into a new --out with --tokens at least 7936 (one epoch of its largest U, 8000) and run that",
    );
    assertEquals([...Deno.readDirSync(out)], [], "nothing written");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("runEpochsCell() leaves a run folder loadTrained() opens on its own: its config, data record and BPE tokenizer", async () => {
  const out = await Deno.makeTempDir({ prefix: "epochs-cell-run-" });
  // The tiny preset's BPE, a few steps of one D3PM cell.
  const scale: StudyScale = {
    ...SCALES.cpu,
    u: [1000],
    tokens: 1024,
    dropouts: [0],
    decays: [0.1],
    validBlocks: 2,
    batchSize: 2,
  };
  await runEpochsCell({ scale, seed: 3, out, cell: "main-u1000-d3pm" });
  const dir = `${out}/main-u1000-d3pm`;
  const run = await loadTrained(dir, { model: "d3pm" }); // seed 3: the run's
  try {
    assertEquals(run.config.tokenizer, "bpe");
    assertEquals(run.tokenizer.vocabSize, run.model.config.vocabSize);
    const data = JSON.parse(await Deno.readTextFile(`${dir}/data.json`));
    assertEquals(data.tokenizer.id, run.tokenizer.id);
  } finally {
    run.model.dispose();
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("collectEpochs() and runEpochsCell() refuse a cell's results.json that is a FIFO, /dev/zero or too large, in one line naming it, within 5 s", async () => {
  const out = await Deno.makeTempDir({ prefix: "epochs-hostile-" });
  const first = epochsCells(SCALE)[0].name;
  await Deno.mkdir(`${out}/${first}`);
  for (const { kind, says } of HOSTILE) {
    await assertRefusesHostile(
      `${out}/${first}/results.json`,
      kind,
      says,
      () => collectEpochs({ scale: SCALE, seed: 0, out }),
    );
    // A main AR cell reads the sweep's cells for their winner.
    await assertRefusesHostile(
      `${out}/${first}/results.json`,
      kind,
      says,
      () => runEpochsCell({ scale: SCALE, seed: 0, out, cell: "main-u200-ar" }),
    );
  }
  await Deno.remove(out, { recursive: true });
});
