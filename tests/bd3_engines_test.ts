// Per-contestant engines: a run whose --models include bd3 (a contestant
// that runs on tfjs only) keeps the engine `auto` picks for the others; bd3
// alone trains and evaluates on tfjs, and results.json and the report say
// which engine each model used. Its figures are those of the all-tfjs run.
import {
  assert,
  assertEquals,
  assertMatch,
  assertNotEquals,
  assertRejects,
} from "@std/assert";
import {
  chooseRunEngine,
  ConfigError,
  evaluationModels,
  measuredFigures,
  modelEngine,
  resolveConfig,
  runExperiment,
} from "@d3pm/experiment";
import { preset, Transformer } from "@d3pm/transformer";
import { runTool } from "./_run.ts";

const BD3_ON_TFJS =
  /^tfjs \(the bd3 contestant runs on tfjs only: block diffusion needs block attention/;

Deno.test("under auto, bd3 in --models leaves the run on the CPU engine and falls back to tfjs alone; --engine cpu is refused, naming auto", async () => {
  const config = resolveConfig({ preset: "micro", models: "ar,d3pm,bd3" });
  const run = await chooseRunEngine(config);
  if (run.kind === "webgpu") run.device.destroy(); // a real GPU: fine too
  assert(run.kind !== "tfjs", run.reason);
  assertEquals(modelEngine(run, "ar"), run);
  assertEquals(modelEngine(run, "d3pm"), run);
  const bd3 = modelEngine(run, "bd3");
  assertEquals(bd3.kind, "tfjs");
  assertMatch(bd3.reason, BD3_ON_TFJS);
  // Each model is placed for evaluation on its own engine: bd3's is the
  // tfjs model itself (a fused engine has no forward pass to run it on).
  const shape = preset("micro", {
    vocabSize: 16,
    contextLength: 8,
    dModel: 8,
    dMlp: 16,
  });
  const models = [0, 1].map((seed) => new Transformer(shape, { seed }));
  const cpu = { kind: "cpu", reason: "cpu" } as const;
  const placed = evaluationModels(models, [cpu, modelEngine(cpu, "bd3")]);
  try {
    assert("rowLosses" in await placed.place(0));
    assertEquals(await placed.place(1), models[1]);
  } finally {
    await placed.release();
    for (const m of models) m.dispose();
  }
  // The d3pm objective still keeps the whole run on tfjs (every model).
  const d3pmLoss = await chooseRunEngine({ ...config, diffusionLoss: "d3pm" });
  assertEquals(d3pmLoss.kind, "tfjs");
  // An explicit engine is every model's: refused, before anything starts.
  await assertRejects(
    () => chooseRunEngine({ ...config, engine: "cpu" }),
    ConfigError,
    "the bd3 contestant runs on tfjs only",
  );
  let message = "";
  try {
    resolveConfig({ preset: "micro", models: "ar,bd3", engine: "cpu" });
  } catch (e) {
    message = (e as Error).message;
  }
  assertEquals(
    message,
    "the bd3 contestant runs on tfjs only: block diffusion needs block attention, which the fused engines lack, not --engine cpu; use --engine auto (then bd3 alone trains on tfjs) or tfjs",
  );
});

// A few seconds' run of the three, cut down (the run's own doc example's),
// on the BLAS backend with an auto judge: a CPU engine alive while bd3
// trains or evaluates on tfjs would hold the CBLAS at one thread.
const TINY = {
  preset: "micro",
  models: "ar,d3pm,bd3",
  bd3Block: 8,
  judgeSteps: 2,
  steps: 6,
  warmup: 1,
  batchSize: 2,
  checkpointEvery: 6,
  validEvery: 3,
  logEvery: 3,
  evalBlocks: 8,
  elboSamples: 1,
  exactBlocks: 0,
  diffusionSteps: 4,
  genSteps: "2",
  genTokens: 32,
  genBatch: 1,
  samples: 1,
};

Deno.test("a run of ar,d3pm,bd3 trains ar and d3pm on the CPU engine and bd3 on tfjs, records each model's engine, and bd3's figures are the all-tfjs run's", async () => {
  const quiet = { log: () => {}, progress: false };
  const mixedOut = await Deno.makeTempDir();
  const tfjsOut = await Deno.makeTempDir();
  try {
    const mixed = await runExperiment(
      resolveConfig({ ...TINY, out: mixedOut }),
      quiet,
    );
    assertMatch(mixed.engine, /^cpu: /);
    const [ar, d3pm, bd3] = mixed.results;
    assertEquals([ar.model, d3pm.model, bd3.model], ["ar", "d3pm", "bd3"]);
    assertEquals([ar.engine, d3pm.engine], [mixed.engine, mixed.engine]);
    assertMatch(bd3.engine!, BD3_ON_TFJS);
    // The checkpoints' spans name what trained each model's steps.
    for (const m of [ar, d3pm]) {
      assertEquals(m.training.engines?.length, 1);
      assertMatch(m.training.engines![0].engine, /^cpu: \d+ threads/);
    }
    assertMatch(bd3.training.engines![0].engine, /^tfjs on /);
    // Each was evaluated where it trained, named in the same terms.
    for (const m of [ar, d3pm, bd3]) {
      assertEquals(m.evaluatedOn, m.training.engines![0].engine, m.model);
    }
    const saved = JSON.parse(
      await Deno.readTextFile(`${mixedOut}/results.json`),
    );
    assertEquals(
      saved.results.map((m: { engine: string }) => m.engine),
      [mixed.engine, mixed.engine, bd3.engine],
    );
    const report = await Deno.readTextFile(`${mixedOut}/report.md`);
    assert(
      report.includes(
        `Training engine: ${mixed.engine}. BD3 trained and evaluated on ${bd3.engine}: its times are that engine's.`,
      ),
      report.slice(0, 800),
    );
    assert(!report.includes("Resumed on another engine"));
    assert(!report.includes("Evaluated on another engine"));

    // The same run on tfjs alone (the old behaviour of every bd3 run): bd3
    // trained the same bits, so its training and test figures agree.
    const tfjs = await runExperiment(
      resolveConfig({ ...TINY, engine: "tfjs", out: tfjsOut }),
      quiet,
    );
    assertEquals(tfjs.results.map((m) => m.engine), [
      tfjs.engine,
      tfjs.engine,
      tfjs.engine,
    ]);
    const own = tfjs.results[2];
    assertEquals(bd3.training.lastLoss, own.training.lastLoss);
    assertEquals(bd3.training.valid, own.training.valid);
    assertEquals(bd3.test, own.test);
    // Its samples too (each run's judge differs, so its gen PPL may).
    const bd3Samples = async (dir: string) =>
      (await Deno.readTextFile(`${dir}/samples.txt`)).split("BD3 (")[1];
    assertEquals(await bd3Samples(mixedOut), await bd3Samples(tfjsOut));
    // evaluate's auto judge is the one the run trained: on the CPU engine
    // here, on tfjs for a run made before models could differ (its results
    // name tfjs as the run's engine and no model's own).
    const judgeOf = (text: string) =>
      text.match(/\.cache\/judges\/[0-9a-f]{16}/)?.[0];
    const evaluatedJudge = async () => {
      const r = await runTool("evaluate.ts", [
        "--run",
        mixedOut,
        "--model",
        "ar",
        "--gen-samples",
        "2",
      ]);
      assertEquals(r.code, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split("\n").at(-1)!).judge;
    };
    assertNotEquals(judgeOf(mixed.judge), judgeOf(tfjs.judge));
    assertEquals(await evaluatedJudge(), judgeOf(mixed.judge));
    saved.engine = tfjs.engine;
    for (const m of saved.results) delete m.engine;
    await Deno.writeTextFile(`${mixedOut}/results.json`, JSON.stringify(saved));
    assertEquals(await evaluatedJudge(), judgeOf(tfjs.judge));
    // Which engine a model used is no measured figure.
    assertEquals(
      (measuredFigures(bd3) as Record<string, unknown>).engine,
      undefined,
    );
  } finally {
    await Deno.remove(mixedOut, { recursive: true });
    await Deno.remove(tfjsOut, { recursive: true });
  }
});
