import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { prng } from "@d3pm/core";
import { loadModel, preset, Transformer } from "@d3pm/transformer";
import { WEBGPU_ENGINE_SHA256 } from "@d3pm/webgpu";
import {
  ConfigError,
  type Engine,
  engineFingerprint,
  type Entrant,
  evaluationModel,
  evaluationModels,
  type ExperimentConfig,
  judgeKey,
  judgePlan,
  openJudge,
  type OptionKey,
  releaseEvaluationModel,
  resolveConfig,
} from "./mod.ts";
import { selfJudge } from "./judge.ts";
import { autoregressive } from "@d3pm/autoregressive";

// Another valid value of every option. A Record over every key: an option
// added to the table does not compile here until it is classified below.
const CHANGED: Record<OptionKey, unknown> = {
  preset: "tiny",
  models: "ar",
  seeds: 3,
  firstSeed: 2,
  backend: "cpu",
  engine: "tfjs",
  logEvery: 5,
  data: "elsewhere",
  out: "elsewhere",
  resume: true,
  force: true,
  tokenizer: "bpe",
  vocabSize: 999,
  blockLength: 64,
  nLayer: 2,
  nHead: 4,
  dModel: 128,
  dMlp: 256,
  positions: "learned",
  dropout: 0.1,
  timeConditioning: true,
  alibi: 2,
  alibiMode: "neighbours",
  steps: 17,
  batchSize: 3,
  lr: 0.01,
  arLr: 0.02,
  warmup: 7,
  lrFinal: 0,
  weightDecay: 0.2,
  adamBeta2: 0.999,
  clipNorm: 0.5,
  emaDecay: 0.5,
  checkpointEvery: 3,
  diffusionLoss: "d3pm",
  diffusionSteps: 100,
  tMin: 0.2,
  tMax: 0.9,
  timesPer: "token",
  evalBlocks: 3,
  validEvery: 10,
  validBlocks: 3,
  keep: "best",
  elboSamples: 3,
  exactBlocks: 3,
  genTokens: 99,
  genBatch: 3,
  genSamples: 5,
  genSteps: "3",
  samples: 5,
  infillFraction: 0.3,
  judge: "self",
  judgeSteps: 99,
  fullMaskShare: 0.1,
  initFrom: "runs/src",
  annealSteps: 5,
  shift: true,
  stagger: 0.5,
  staggerSpan: 2,
  bd3Block: 8,
};

// What the auto judge's training reads from the configuration. `data`,
// `tokenizer` and `vocabSize` reach it through the data (the train split's
// hash, the tokenizer's id and size), tested below.
const TRAINING: readonly OptionKey[] = [
  "blockLength",
  "nLayer",
  "nHead",
  "dModel",
  "dMlp",
  "positions",
  "dropout",
  "batchSize",
  "lr",
  "arLr",
  "warmup",
  "lrFinal",
  "weightDecay",
  "adamBeta2",
  "clipNorm",
  "emaDecay",
  "judgeSteps",
];

const DATA = {
  tokenizer: { id: "byte", vocabSize: 260 },
  trainSha256: "0123",
} as const;
// An engine's fingerprint (engineFingerprint's form).
const ENGINE = "tfjs on cpu";

Deno.test("the judge's cache key changes with every option its training reads, and with no other", () => {
  const c = resolveConfig({ preset: "micro" });
  const key = judgeKey(judgePlan(c, DATA, ENGINE));
  const changing: OptionKey[] = [];
  for (const k of Object.keys(CHANGED) as OptionKey[]) {
    const other = { ...c, [k]: CHANGED[k] } as ExperimentConfig;
    assertNotEquals(JSON.stringify(other[k]), JSON.stringify(c[k]), k);
    if (judgeKey(judgePlan(other, DATA, ENGINE)) !== key) changing.push(k);
  }
  assertEquals(changing, [...TRAINING]);
});

Deno.test("the judge's cache key changes with the data, the tokenizer and its real size", () => {
  const c = resolveConfig({ preset: "micro" });
  const key = judgeKey(judgePlan(c, DATA, ENGINE));
  assertNotEquals(
    judgeKey(judgePlan(c, { ...DATA, trainSha256: "4567" }, ENGINE)),
    key,
  );
  assertNotEquals(
    judgeKey(
      judgePlan(
        c,
        { ...DATA, tokenizer: { id: "bpe-x", vocabSize: 260 } },
        ENGINE,
      ),
    ),
    key,
  );
  assertNotEquals(
    judgeKey(
      judgePlan(
        c,
        { ...DATA, tokenizer: { id: "byte", vocabSize: 300 } },
        ENGINE,
      ),
    ),
    key,
  );
  // Without EMA the plan has none (and a different key from any decay).
  assertNotEquals(
    judgeKey(judgePlan({ ...c, emaDecay: 0 }, DATA, ENGINE)),
    key,
  );
});

Deno.test("the judge's cache key names the engine that trains it: kind, backend, threads, kernels", async () => {
  const c = resolveConfig({ preset: "micro" });
  const tfjs = await engineFingerprint({ kind: "tfjs", reason: "tfjs" });
  const cpu = await engineFingerprint({ kind: "cpu", reason: "cpu" });
  // No adapter needed: the fingerprint reads the engine's line, not the device.
  const webgpu = await engineFingerprint({
    kind: "webgpu",
    device: {} as GPUDevice,
    reason: "webgpu: the fused engine on an adapter",
  });
  assertEquals(
    webgpu,
    `webgpu: the fused engine on an adapter, build ${
      WEBGPU_ENGINE_SHA256.slice(0, 12)
    }`,
  );
  assertEquals(tfjs.startsWith("tfjs on "), true, tfjs);
  // The CPU engine's bits follow its thread count (products split over the
  // threads): the fingerprint names it.
  assert(cpu.includes(` ${navigator.hardwareConcurrency} threads`), cpu);
  // On tfjs, the backend's line (its BLAS threads) when the run has one.
  const blas = (n: number) =>
    engineFingerprint(
      { kind: "tfjs", reason: "tfjs" },
      `blas: OpenBLAS 0.3.21, coretype SkylakeX, ${n} threads`,
    );
  const keys = [
    tfjs,
    await blas(1),
    await blas(2),
    cpu,
    cpu.replace(/\d+ threads/, "999 threads"),
    // Another build of the CPU kernels: another judge.
    cpu.replace(/build [0-9a-f]{12}$/, "build 000000000000"),
    // The WebGPU engine: its adapter's line and its build.
    webgpu,
    webgpu.replace(/build [0-9a-f]{12}$/, "build 000000000000"),
  ].map((e) => judgeKey(judgePlan(c, DATA, e)));
  assertEquals(new Set(keys).size, 8, keys.join(" "));
  assertEquals(judgeKey(judgePlan(c, DATA, cpu)), keys[3]); // stable
});

// A few steps of the micro preset's shape on made-up data.
const V = 16, L = 32;
const SPECIALS = { bos: 12, eos: 13, pad: 14, mask: 15 };
function blocks(count: number, seed: number) {
  const r = prng(seed), data = new Uint32Array(count * L);
  for (let i = 0; i < data.length; i++) data[i] = r.nextInt(12);
  return { data, count, length: L };
}
const TINY_DATA = {
  tokenizer: { id: "made-up", vocabSize: V },
  specials: SPECIALS,
  train: blocks(64, 1),
  valid: blocks(4, 2),
  trainSha256: "made-up",
} as unknown as Parameters<typeof openJudge>[1];
// A micro judge of 6 steps, 2 rows a step, no EMA: seconds to train.
const SHORT_JUDGE = resolveConfig({
  preset: "micro",
  judgeSteps: 6,
  warmup: 1,
  batchSize: 2,
  emaDecay: 0,
});
const X0 = {
  tokens: Int32Array.from(TINY_DATA.valid.data),
  batchSize: 4,
  length: L,
};

Deno.test({
  name:
    "the auto judge trains on the run's engine, is cached per engine and reused only by the same engine",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cacheDir = await Deno.makeTempDir();
    const c = SHORT_JUDGE;
    const open = async (engine: Engine) => {
      const lines: string[] = [];
      const judge = await openJudge(c, TINY_DATA, {
        engine,
        log: (l) => lines.push(l),
        cacheDir,
      });
      const nats = (await judge!.score(X0)).nats;
      judge!.dispose();
      const dir = / in (\S+) for later runs|cached AR model from (\S+)/.exec(
        lines.join("\n"),
      )!;
      return {
        trained: lines.some((l) => l.startsWith("judge: training")),
        dir: dir[1] ?? dir[2],
        nats,
      };
    };
    const tfjs: Engine = { kind: "tfjs", reason: "tfjs" };
    const cpu: Engine = { kind: "cpu", reason: "cpu" };
    try {
      const a = await open(tfjs);
      const b = await open(cpu);
      const b2 = await open(cpu);
      const a2 = await open(tfjs);
      assertEquals([a.trained, b.trained, b2.trained, a2.trained], [
        true,
        true,
        false,
        false,
      ]);
      assertNotEquals(a.dir, b.dir);
      assertEquals([b2.dir, a2.dir], [b.dir, a.dir]);
      // Each saved with saveModel (what --judge and the tools load); the
      // CPU engine's is its own training, not the tfjs one's.
      const [ma, mb] = [await loadModel(a.dir), await loadModel(b.dir)];
      // The CPU engine's judge scores on the engine: its score is the
      // engine's score of its weights, bit for bit, not tfjs's.
      const ar = autoregressive({
        kind: "autoregressive",
        start: SPECIALS.bos,
        padId: SPECIALS.pad,
      });
      const placed = await evaluationModel(mb, cpu);
      assertEquals((await ar.score(placed, X0)).nats, b.nats);
      releaseEvaluationModel(placed);
      assertNotEquals((await ar.score(mb, X0)).nats, b.nats);
      let differ = 0, most = 0;
      for (const [name, v] of ma.variables) {
        const x = v.dataSync(), y = mb.variables.get(name)!.dataSync();
        for (let i = 0; i < x.length; i++) {
          if (x[i] !== y[i]) differ++;
          most = Math.max(most, Math.abs(x[i] - y[i]));
        }
      }
      ma.dispose();
      mb.dispose();
      assert(differ > 0, "the engines trained the same bits");
      // ...to float32 rounding: 6 steps agree closely.
      assert(most < 1e-3, `largest weight difference ${most}`);
      // Scored on each engine: the same NLL to rounding, the cached judge's
      // exactly the fresh one's.
      assert(Math.abs(a.nats - b.nats) < 1e-3, `${a.nats} vs ${b.nats}`);
      assertEquals([a2.nats, b2.nats], [a.nats, b.nats]);
    } finally {
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "the auto judge trains with the run's --adam-beta2 and --lr-final, on tfjs and on the CPU engine",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cacheDir = await Deno.makeTempDir();
    const c = SHORT_JUDGE;
    const nats = async (config: ExperimentConfig, engine: Engine) => {
      const judge = await openJudge(config, TINY_DATA, {
        engine,
        log: () => {},
        cacheDir,
      });
      const n = (await judge!.score(X0)).nats;
      judge!.dispose();
      return n;
    };
    try {
      for (
        const engine of [
          { kind: "tfjs", reason: "tfjs" },
          { kind: "cpu", reason: "cpu" },
        ] as Engine[]
      ) {
        const base = await nats(c, engine);
        const beta = await nats({ ...c, adamBeta2: 0.5 }, engine);
        const final = await nats({ ...c, lrFinal: 0 }, engine);
        // Each its own training: a judge that ignored either would score
        // the default's bits.
        assertNotEquals(beta, base, engine.kind);
        assertNotEquals(final, base, engine.kind);
      }
    } finally {
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "the self judge scores with the run's AR model on the run's engine, as the auto judge does, placed once for the judge and the evaluation",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const ar = autoregressive({
      kind: "autoregressive",
      start: SPECIALS.bos,
      padId: SPECIALS.pad,
    });
    // The AR second: the judge finds it by kind, not by place.
    const entrants = [
      { contestant: { kind: "d3pm" }, process: undefined },
      { contestant: { kind: "ar" }, process: ar },
    ] as unknown as Entrant[];
    const model = new Transformer(
      preset("micro", { vocabSize: V, contextLength: L }),
      { seed: 3 },
    );
    const other = new Transformer(model.config, { seed: 4 }); // the D3PM's place
    const tfjsNats = (await ar.score(model, X0)).nats;
    const cpu = evaluationModels([other, model], {
      kind: "cpu",
      reason: "cpu",
    });
    try {
      const judge = selfJudge(entrants, cpu.place);
      const nats = (await judge(X0)).nats;
      // The CPU engine's own score of the weights, bit for bit, not tfjs's.
      const placed = await cpu.place(1);
      assertEquals((await ar.score(placed, X0)).nats, nats);
      assertNotEquals(nats, tfjsNats);
      assert(Math.abs(nats - tfjsNats) < 1e-3, `${nats} vs ${tfjsNats}`);
      // One placement, shared: the evaluation gets the judge's.
      assert(placed === await cpu.place(1));
    } finally {
      await cpu.release();
    }
    // On tfjs it is the model itself.
    const onTfjs = evaluationModels([other, model], {
      kind: "tfjs",
      reason: "tfjs",
    });
    assertEquals((await selfJudge(entrants, onTfjs.place)(X0)).nats, tfjsNats);
    await onTfjs.release();
    model.dispose();
    other.dispose();
  },
});

Deno.test("--judge names what is wrong with a folder: a file, or a run that trained no AR model", async () => {
  const dir = await Deno.makeTempDir();
  const c = resolveConfig({ preset: "micro", judgeSteps: 6, warmup: 1 });
  const tfjs: Engine = { kind: "tfjs", reason: "tfjs" };
  const open = (judge: string) =>
    openJudge({ ...c, judge }, TINY_DATA, { engine: tfjs, log: () => {} });
  await Deno.writeTextFile(`${dir}/file`, "x");
  await assertRejects(
    () => open(`${dir}/file`),
    ConfigError,
    `Option --judge ${dir}/file: ${dir}/file is not a run folder: it is a file, or a file is in its path`,
  );
  const run = `${dir}/d3pm-only`;
  await Deno.mkdir(run);
  await Deno.writeTextFile(
    `${run}/config.json`,
    JSON.stringify({ ...c, models: "d3pm", out: run }),
  );
  await Deno.writeTextFile(
    `${run}/results.json`,
    JSON.stringify({ tokenizer: TINY_DATA.tokenizer }),
  );
  await assertRejects(
    () => open(run),
    ConfigError,
    `Option --judge ${run}: that run trained no AR model (--models d3pm); a judge is a run's AR model`,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the judge's cache key is the first 16 hex digits of SHA-256 of {version: 3, plan}; the plan's seed is 7919, and no EMA, the default β2 or the default final rate adds no field", async () => {
  // Caches written by this release are found by the next only if the key's
  // form stays: recomputed here with WebCrypto. Catches the version 3 → 2, 4.
  const c = resolveConfig({ preset: "micro" });
  const plan = judgePlan(c, DATA, ENGINE);
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(JSON.stringify({ version: 3, plan })),
  );
  const hex = [...new Uint8Array(digest)].map((b) =>
    b.toString(16).padStart(2, "0")
  ).join("");
  assertEquals(judgeKey(plan), hex.slice(0, 16));
  // The seed every cached judge trained with (catches 7919 → 7918, 7920).
  assertEquals(plan.seed, 7919);
  // A judge without EMA: no emaDecay field, as version-3 keys were made
  // (catches `emaDecay > 0` → `>= 0`).
  assertEquals(
    "emaDecay" in judgePlan({ ...c, emaDecay: 0 }, DATA, ENGINE),
    false,
  );
  assertEquals(plan.emaDecay, c.emaDecay);
  // At the defaults of --adam-beta2 (0.95) and --lr-final (0.1) the plan
  // has neither field, as every judge before them: their keys are kept
  // (catches a β2 written always, or a final rate computed at the default).
  assertEquals(["adamBeta2" in plan, "min" in plan.lr], [false, false]);
  const other = judgePlan({ ...c, adamBeta2: 0.99, lrFinal: 0 }, DATA, ENGINE);
  assertEquals([other.adamBeta2, other.lr.min], [0.99, 0]);
  assertEquals(
    judgePlan({ ...c, lrFinal: 0.5 }, DATA, ENGINE).lr.min,
    0.5 * other.lr.peak,
  );
  // A WikiText judge's plan has neither format nor reading (its key is kept);
  // a plain-text one has both, so a change in how text is read (universal
  // newlines: reading 2) never serves a judge trained on the old reading.
  assertEquals(["format" in plan, "reading" in plan], [false, false]);
  const text = judgePlan(c, { ...DATA, format: "text" }, ENGINE);
  assertEquals([text.format, text.reading], ["text", 2]);
});

Deno.test("--judge self scores with the AR entrant wherever it is in --models, the first included, and refuses a run without one", async () => {
  const entrant = (kind: string) =>
    ({
      contestant: { kind },
      process: {
        score: (model: string) =>
          Promise.resolve({
            nats: Number(model.slice(1)),
            stderr: 0,
            tokens: 1,
          }),
      },
    }) as unknown as Entrant;
  const place = (i: number) => Promise.resolve(`m${i}` as never);
  const x0 = { tokens: new Int32Array(4), batchSize: 1, length: 4 };
  // Catches `i < 0` → `<= 0` or `< 1` (the AR first refused).
  assertEquals(
    (await selfJudge([entrant("ar"), entrant("d3pm")], place)(x0)).nats,
    0,
  );
  assertEquals(
    (await selfJudge([entrant("d3pm"), entrant("ar")], place)(x0)).nats,
    1,
  );
  assertThrows(
    () => selfJudge([entrant("d3pm")], place),
    Error,
    "--judge self needs the AR model in --models",
  );
});

Deno.test("--judge naming another run's folder, one made before --first-seed, opens its seed-0 AR model with the run's own process", async () => {
  const { fakeRun } = await import("../hf/_test_util.ts");
  const dir = await Deno.makeTempDir();
  try {
    const run = `${dir}/older`;
    const made = await fakeRun(run, { models: "ar" });
    // A run made before --first-seed: its config.json has no firstSeed.
    const { firstSeed: _, ...older } = made;
    await Deno.writeTextFile(`${run}/config.json`, JSON.stringify(older));
    await Deno.writeTextFile(
      `${run}/results.json`,
      JSON.stringify({ tokenizer: { id: "byte" } }),
    );
    const c = resolveConfig({ preset: "micro", judge: run });
    const data = {
      ...TINY_DATA,
      tokenizer: { id: "byte", vocabSize: 260 },
    } as Parameters<typeof openJudge>[1];
    // Its config.json reads firstSeed as 0 (the option's olderRuns value).
    // Catches the process options read from `other[1]` (the description)
    // instead of `other[2]` (an import's outputs; none here).
    const judge = await openJudge(c, data, {
      engine: { kind: "tfjs", reason: "tfjs" },
      log: () => {},
    });
    assert(
      judge!.describe.includes(`the AR model of seed 0 of the run in ${run}`),
      judge!.describe,
    );
    judge!.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
