import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
} from "@std/assert";
import type { MaskedDiffusion } from "@d3pm/diffusion";
import type { Transformer } from "@d3pm/transformer";
import { MetricsLog } from "@d3pm/train";
import {
  AR,
  ConfigError,
  type Contestant,
  D3PM,
  type Engine,
  enter,
  evaluationModel,
  MLM,
  prepareData,
  registerContestant,
  releaseEvaluationModel,
  resolveConfig,
  RunFolder,
} from "./mod.ts";
import type { RunData } from "./data.ts";
import { trainContestant } from "./train.ts";
import { within } from "../core/_within_test_util.ts";

Deno.test({
  name:
    "on the CPU engine's runs, validation during training scores on the engine: its figure is the engine's score of the weights, not tfjs's",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const out = await Deno.makeTempDir();
    try {
      const config = resolveConfig({
        preset: "micro",
        out,
        models: "ar",
        steps: 2,
        warmup: 1,
        batchSize: 2,
        validEvery: 2,
        logEvery: 1,
        validBlocks: 4,
        checkpointEvery: 2,
        emaDecay: 0,
      });
      const folder = new RunFolder(out);
      const data = await prepareData(config, folder, () => {});
      const entrant = enter(AR, { config, data });
      const engine: Engine = { kind: "cpu", reason: "cpu" };
      const { model } = await trainContestant(entrant, 0, {
        config,
        data,
        folder,
        metrics: new MetricsLog(folder.metricsPath),
        progress: false,
        engine,
      });
      const valid = (await MetricsLog.read(folder.metricsPath))
        .filter((r) => typeof r.valid === "number")
        .map((r) => [r.step, r.valid]);
      assertEquals(valid.map(([step]) => step), [2]);
      // The model holds step 2's weights (keep: last): scored again on the
      // engine, the same bits; on tfjs, float32 rounding apart.
      const placed = await evaluationModel(model, engine);
      const onEngine = await AR.validate(entrant.process, placed, data);
      const onTfjs = await AR.validate(entrant.process, model, data);
      releaseEvaluationModel(placed);
      model.dispose();
      assertEquals(valid[0][1], onEngine.nats);
      assertNotEquals(onEngine.nats, onTfjs.nats);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("validation figures need every validation the run made: a log cut short gives none, not an earlier step's as the final", async () => {
  const { validationSummary } = await import("./mod.ts");
  const config = { steps: 300, validEvery: 100, keep: "best" } as const;
  const at = (step: number, valid: number, model = "ar") => ({
    model,
    seed: 0,
    step,
    valid,
  });
  const log = [
    at(100, 2.79),
    at(100, 3.16, "d3pm"),
    { model: "ar", seed: 0, step: 150, loss: 2.6 },
    at(200, 2.51),
    at(300, 2.45),
  ];
  assertEquals(validationSummary(log, "ar", 0, config), {
    valid: { final: 2.45, best: 2.45, bestStep: 300, kept: "best" },
    missing: [],
  });
  // The log lost its tail (the file cut at a byte, then a resume): the
  // final figure was step 100's, reported as the 300-step model's.
  assertEquals(validationSummary(log.slice(0, 3), "ar", 0, config), {
    valid: undefined,
    missing: [200, 300],
  });
  // A middle validation lost: its best could have been that one.
  assertEquals(
    validationSummary([at(100, 2.79), at(300, 2.45)], "ar", 0, config)
      .missing,
    [200],
  );
  // The last step validates even off the interval; none scheduled, none given.
  assertEquals(
    validationSummary([at(4, 5)], "ar", 0, { ...config, steps: 4 }).valid
      ?.final,
    5,
  );
  assertEquals(
    validationSummary([at(4, 5)], "ar", 0, { ...config, validEvery: 0 }),
    { valid: undefined, missing: [] },
  );
  assertEquals(
    validationSummary([at(100, 2), at(200, 2), at(300, 2)], "d3pm", 0, config)
      .missing,
    [100, 200, 300],
  );
});

// A corpus shorter than one block said "Cannot pack blocks: … use a
// shorter length or last: \"pad\"" — an argument of the packing function,
// not an option of the run.
Deno.test("a split shorter than one block names the split and --block-length", async () => {
  const { assertRejects } = await import("@std/assert");
  const { ConfigError } = await import("./mod.ts");
  const data = await Deno.makeTempDir(), out = await Deno.makeTempDir();
  try {
    for (const split of ["train", "valid", "test"]) {
      await Deno.writeTextFile(
        `${data}/wiki.${split}.tokens`,
        " = T = \nhello\n",
      );
    }
    const config = resolveConfig({ preset: "micro", data, out: `${out}/r` });
    await assertRejects(
      () => prepareData(config, new RunFolder(`${out}/r`), () => {}),
      ConfigError,
      "The train split is shorter than one block of --block-length 32 (16 ids with separators): lower --block-length",
    );
  } finally {
    await Deno.remove(data, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
});

// best.json of a `keep: best` run was read whole with Deno.readTextFile on
// every resume, its errors swallowed: a FIFO there hung the resume, a
// device filled memory, and a damaged record silently meant "no best yet".
Deno.test("best.json is read bounded: a FIFO, a device, a large or damaged file is refused in one line naming it; none is no best yet", async () => {
  const { readBestRecord } = await import("./train.ts");
  const dir = await Deno.makeTempDir();
  const path = `${dir}/best.json`;
  try {
    assertEquals(await readBestRecord(path), undefined);
    await Deno.writeTextFile(path, '{"step":200,"nats":2.5}\n');
    assertEquals(await readBestRecord(path), { step: 200, nats: 2.5 });
    await Deno.writeTextFile(path, '{"step":100,"nats":null}\n');
    assert(Number.isNaN((await readBestRecord(path))?.nats));
    const refused = async (why: string) => {
      const got = await within(5000, () => readBestRecord(path), path);
      if (got === "timeout") throw new Error(`${why}: still reading after 5 s`);
      if (!("error" in got)) throw new Error(`${why}: accepted`);
      const e = got.error;
      if (!(e instanceof ConfigError)) throw new Error(`${why}: ${e}`);
      const msg = e.message;
      assert(msg.includes(path) && msg.includes(why), msg);
      assert(msg.includes("delete it") && !msg.includes("\n"), msg);
      await Deno.remove(path);
    };
    await Deno.remove(path);
    await new Deno.Command("mkfifo", { args: [path] }).output();
    await refused("a FIFO");
    await Deno.symlink("/dev/zero", path);
    await refused("a character device");
    await (await Deno.create(path)).truncate(64 << 20);
    await refused("is larger than");
    for (const bad of ["{step", "null", "[]", '{"step":1.5,"nats":2}']) {
      await Deno.writeTextFile(path, bad);
      await refused(
        bad === "{step" ? "not valid JSON" : "not a best-validation record",
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Contestants the project does not ship, asked by what they declare, not by
// kind: a D3PM under another kind anneals and shifts as the D3PM does; an
// MLM copy that anneals reads --anneal-steps but not --shift (its network
// is not shifted).
const windows: number[] = [];
const D3PM_TWO: Contestant<MaskedDiffusion> = {
  ...D3PM,
  kind: "d3pm-two",
  seedStream: 41,
  // Its loss sees the attention window each training step runs with.
  process(c, data) {
    const process = D3PM.process(c, data);
    const loss = process.loss.bind(process);
    return Object.assign(process, {
      loss: (...args: Parameters<typeof loss>) => {
        windows.push((args[0] as Transformer).attentionWindow);
        return loss(...args);
      },
    });
  },
};
const ANNEALS_TWO = {
  ...MLM,
  kind: "anneals-two",
  seedStream: 42,
  annealsAttention: true,
};
registerContestant(D3PM_TWO);
registerContestant(ANNEALS_TWO);

Deno.test("trainContestant() refuses on a fused engine the tfjs-only options the contestant's training reads: annealing if it anneals, the shift if its network shifts", async () => {
  const out = await Deno.makeTempDir();
  try {
    const config = resolveConfig({
      preset: "micro",
      out,
      models: "d3pm",
      annealSteps: 5,
      shift: true,
      validEvery: 0,
    });
    const data = {
      tokenizer: { vocabSize: 260 },
      specials: { bos: 256, eos: 257, pad: 258, mask: 259 },
    } as unknown as RunData;
    const folder = new RunFolder(out);
    const ctx = {
      config,
      data,
      folder,
      metrics: new MetricsLog(folder.metricsPath),
      progress: false,
      engine: { kind: "cpu", reason: "cpu" } as Engine,
    };
    const cases: [object, string][] = [
      [D3PM, "Options --anneal-steps and --shift are"],
      [D3PM_TWO, "Options --anneal-steps and --shift are"],
      [ANNEALS_TWO, "Option --anneal-steps is"],
    ];
    for (const [contestant, options] of cases) {
      await assertRejects(
        () => trainContestant(enter(contestant as Contestant, ctx), 0, ctx),
        ConfigError,
        `${options} implemented on the tfjs engine only, not the cpu engine; use --engine tfjs`,
      );
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test({
  name:
    "trainContestant() anneals the attention of a contestant that declares annealsAttention, whatever its kind, and evaluates it bidirectional",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const out = await Deno.makeTempDir();
    try {
      const config = resolveConfig({
        preset: "micro",
        out,
        models: "d3pm",
        steps: 2,
        warmup: 1,
        batchSize: 2,
        annealSteps: 2,
        validEvery: 0,
        emaDecay: 0,
      });
      const folder = new RunFolder(out);
      const data = await prepareData(config, folder, () => {});
      const { model } = await trainContestant(
        enter(D3PM_TWO, { config, data }),
        0,
        {
          config,
          data,
          folder,
          metrics: new MetricsLog(folder.metricsPath),
          progress: false,
        },
      );
      // annealWindow(step, 2, 32): causal at step 0, half-way at step 1.
      assertEquals(windows, [0, 15]);
      assertEquals(model.attentionWindow, Infinity);
      model.dispose();
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
