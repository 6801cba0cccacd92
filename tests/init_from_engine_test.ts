// --init-from on the fused engines: the engine starts from the weights the
// tfjs model was given (the source's; rows the source lacks freshly drawn)
// and trains as tfjs does from them — on the CPU engine, and on WebGPU
// where an adapter answers (lavapipe in CI).
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
} from "@std/assert";
import {
  D3PM,
  initialiseFrom,
  loadTrained,
  placeModel,
  resolveConfig,
  trainOnEngine,
} from "@d3pm/experiment";
import { CpuTransformer, createCpuKernels } from "@d3pm/cpu";
import { WebGpuTransformer } from "@d3pm/webgpu";
import { ignoreUnless } from "@d3pm/core/testing";
import { sha256Hex, type StoredTensor } from "@d3pm/core";
import { Transformer } from "@d3pm/transformer";
import { AR_FAST_EVAL, DENOISER_FAST_EVAL, killAt, runTool } from "./_run.ts";
import {
  inTurnOr,
  noWebGpuAdapter,
  resumesBitIdentically,
} from "./_engine_runs.ts";

await tf.setBackend("cpu");

// No CBLAS, or no adapter: skipped with the reason.
const noKernels = ignoreUnless(
  "blas",
  await createCpuKernels({ words: 64, threads: 1 }).then(
    (k) => (k.dispose(), null),
    (e: Error) => e.message,
  ),
);
const noAdapter = await noWebGpuAdapter();

const MICRO = [
  "--preset",
  "micro",
  "--warmup",
  "5",
  "--valid-every",
  "0",
  "--exact-blocks",
  "0",
  ...AR_FAST_EVAL,
  // gen PPL of the last timed batch alone (no test reads it): no 64 rows
  // more to generate and judge in each run.
  "--gen-samples",
  "0",
];

/** A micro AR trained 40 steps: the source. */
async function source(steps = 40): Promise<string> {
  const out = await Deno.makeTempDir();
  const r = await runTool("experiment.ts", [
    ...MICRO,
    "--models",
    "ar",
    "--steps",
    String(steps),
    "--judge",
    "self",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.stderr);
  return out;
}

// The 40-step source, made once for the tests below, which only read it
// (train from it, judge with it, copy it), and removed when the module
// unloads.
let shared: Promise<string> | undefined;
function sharedSource(): Promise<string> {
  return shared ??= source().then((dir) => {
    globalThis.addEventListener(
      "unload",
      () => Deno.removeSync(dir, { recursive: true }),
    );
    return dir;
  });
}

// The tfjs side of followsTfjsFrom for each source: the same run whichever
// engine it is compared with, so run once.
const tfjsFrom = new Map<string, Promise<FromRun>>();

/** What followsTfjsFrom compares of one run: its losses by step, its results.json. */
interface FromRun {
  losses: Map<number, number>;
  results: {
    results: { test: { nll: number }; training: { initFrom: unknown } }[];
  };
}

/**
 * A D3PM run on the CPU engine from `source`, long enough (80 steps,
 * checkpoints every 10) to be killed mid-run and resumed.
 */
function killable(source: string, judge: string): string[] {
  return [
    ...MICRO,
    ...DENOISER_FAST_EVAL,
    "--models",
    "d3pm",
    "--steps",
    "80",
    "--checkpoint-every",
    "10",
    "--init-from",
    source,
    "--judge",
    judge,
    "--engine",
    "cpu",
  ];
}

async function stored(m: Transformer): Promise<Map<string, StoredTensor>> {
  const out = new Map<string, StoredTensor>();
  for (const [name, v] of m.variables) {
    out.set(name, {
      shape: [...v.shape],
      data: Float32Array.from(await v.data() as Float32Array),
    });
  }
  return out;
}

/**
 * The same adapted D3PM run (10 steps, every step logged) on `engine` and on
 * tfjs: step 1 within 1e-4 (the same weights and draws), every step within
 * the engine-vs-tfjs tolerance of tests/_engine_runs.ts (0.02 nats), the
 * test NLL within 0.005.
 */
async function followsTfjsFrom(
  src: string,
  engine: "cpu" | "webgpu",
): Promise<void> {
  const run = async (on: string): Promise<FromRun> => {
    const out = await Deno.makeTempDir();
    const r = await runTool("experiment.ts", [
      ...MICRO,
      ...DENOISER_FAST_EVAL,
      "--models",
      "d3pm",
      "--steps",
      "10",
      "--log-every",
      "1",
      "--init-from",
      src,
      "--judge",
      src,
      "--engine",
      on,
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.stderr);
    assert(r.stderr.includes(`engine: ${on}`), r.stderr);
    const losses = new Map<number, number>(
      (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n")
        .map((l) => JSON.parse(l))
        .filter((x) => x.model === "d3pm" && "loss" in x)
        .map((x) => [x.step, x.loss]),
    );
    const results = JSON.parse(
      await Deno.readTextFile(`${out}/results.json`),
    );
    await Deno.remove(out, { recursive: true });
    return { losses, results };
  };
  // Independent runs (their own folders): side by side on the CPU engine,
  // in turn on WebGPU (inTurnOr); tfjs's once per source.
  const tfjsRun = () => {
    if (!tfjsFrom.has(src)) tfjsFrom.set(src, run("tfjs"));
    return tfjsFrom.get(src)!;
  };
  const [fused, tfjs] = await inTurnOr(engine === "cpu", [
    () => run(engine),
    tfjsRun,
  ]);
  assertEquals([...fused.losses.keys()], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  // Step 1: the same weights and draws, float rounding apart.
  const [a1, b1] = [fused.losses.get(1)!, tfjs.losses.get(1)!];
  assert(Math.abs(a1 - b1) < 1e-4, `step 1: ${engine} ${a1} vs tfjs ${b1}`);
  // Then within the engine-vs-tfjs tolerance of tests/_engine_runs.ts.
  for (const [step, loss] of fused.losses) {
    const theirs = tfjs.losses.get(step)!;
    assert(
      Math.abs(loss - theirs) < 0.02,
      `step ${step}: ${engine} ${loss} vs tfjs ${theirs}`,
    );
  }
  const [ra, rb] = [fused.results.results[0], tfjs.results.results[0]];
  assert(
    Math.abs(ra.test.nll - rb.test.nll) < 0.005,
    `test: ${engine} ${ra.test.nll} vs tfjs ${rb.test.nll}`,
  );
  // Both account for the source the same way.
  assertEquals(ra.training.initFrom, rb.training.initFrom);
}

Deno.test({
  name:
    "--init-from on the CPU engine: it steps from exactly the weights it is handed (the source's, the mask token's row included), its losses and test figures follow tfjs's, and a killed run resumes to the whole run's weights",
  ignore: noKernels,
  async fn() {
    const src = await sharedSource();
    // In process: the weights the engine is handed are the ones it steps
    // from (lr 0 and no decay: one step leaves them as they were).
    const ar = await loadTrained(src, { model: "ar" });
    const config = resolveConfig({ preset: "micro" });
    const v = ar.tokenizer.vocabSize;
    const modelConfig = D3PM.modelConfig(config, v);
    const denoiser = new Transformer(modelConfig, { seed: 2 });
    const fresh = await stored(new Transformer(modelConfig, { seed: 2 }));
    await initialiseFrom(
      denoiser,
      { dir: src, seed: 0, model: "ar" },
      ar.tokenizer,
    );
    const given = await stored(denoiser);
    const L = 16, B = 2;
    const data = Uint32Array.from(
      { length: 4 * L },
      (_, i) => (i * 7) % (v - 1),
    );
    const { weights } = await trainOnEngine({
      engine: { kind: "cpu", reason: "cpu" },
      model: modelConfig,
      seed: 2,
      length: L,
      weights: given,
      options: {
        blocks: { data, count: 4, length: L },
        batchSize: B,
        steps: 1,
        lr: () => 0,
        terms: (batch) => ({
          rows: B,
          length: L,
          inputs: Int32Array.from(batch.tokens),
          targets: Int32Array.from(batch.tokens),
          weights: new Float32Array(B * L).fill(1 / (B * L)),
        }),
        logEvery: 1,
        progress: false,
      },
      config: {
        batchSize: B,
        weightDecay: 0,
        adamBeta2: 0.95,
        clipNorm: 1,
        emaDecay: 0,
      },
    });
    // The engine stepped from exactly what it was handed: every weight,
    // the mask token's embedding row included.
    assertEquals([...weights.keys()], [...given.keys()]);
    for (const [name, w] of given) {
      assertEquals(weights.get(name)!.shape, w.shape, name);
      assertEquals(weights.get(name)!.data, w.data, name);
    }
    const mask = ar.tokenizer.special.mask!, d = modelConfig.dModel;
    const maskRow = weights.get("wte.weight")!.data.subarray(
      mask * d,
      (mask + 1) * d,
    );
    assert(maskRow.some((x) => x !== 0), "the mask row is not zeroed");
    // And what it was handed is the source's weights; rows the source lacks
    // (none with the byte tokenizer, whose AR has the mask row) keep the
    // denoiser's fresh draw.
    const sourceWeights = await stored(ar.model);
    assertEquals([...sourceWeights.keys()].sort(), [...given.keys()].sort());
    for (const [name, w] of sourceWeights) {
      const got = given.get(name)!;
      const n = w.data.length;
      assertEquals(got.shape[1], w.shape[1], name);
      assertEquals(got.data.subarray(0, n), w.data, name);
      assertEquals(got.data.subarray(n), fresh.get(name)!.data.subarray(n));
    }
    // Which is not the engine's own seeded draw (the same as `fresh`).
    assertNotEquals(
      weights.get("h.0.mlp.c_fc.weight")!.data,
      fresh.get("h.0.mlp.c_fc.weight")!.data,
    );
    denoiser.dispose();
    ar.model.dispose();

    await followsTfjsFrom(src, "cpu");

    // Killed mid-run on the engine and resumed: the checkpoint's weights
    // replace the source's again, to the same weights as a whole run.
    await resumesBitIdentically(killable(src, src), ["d3pm"]);
  },
});

Deno.test({
  name:
    "--init-from: the checkpoint is tied to the source's weights, so a source replaced at the same path is refused on resume (results.json records their SHA-256)",
  ignore: noKernels,
  async fn() {
    const [src, other] = await Promise.all([sharedSource(), source(30)]);
    const dir = await Deno.makeTempDir();
    const at = `${dir}/src`, cut = `${dir}/cut`, whole = `${dir}/whole`;
    const copy = async (from: string) => {
      await Deno.remove(at, { recursive: true }).catch(() => {});
      const cp = new Deno.Command("cp", { args: ["-r", from, at] });
      assertEquals((await cp.output()).code, 0);
    };
    const sha = async (run: string) =>
      sha256Hex(await Deno.readFile(`${run}/seed-0/ar/model.safetensors`));
    assertNotEquals(await sha(src), await sha(other));
    await copy(src);
    const args = killable(at, src);
    const w = await runTool("experiment.ts", [...args, "--out", whole]);
    assertEquals(w.code, 0, w.stderr);
    const results = JSON.parse(
      await Deno.readTextFile(`${whole}/results.json`),
    );
    assertEquals(
      results.results[0].training.initFrom.weightsSha256,
      await sha(src),
    );
    // Killed mid-run; the source replaced at its path (another AR); the
    // resume is refused in one line, nothing of the run is reported.
    await killAt(args, cut, '"model":"d3pm","seed":0,"step":20');
    await copy(other);
    const r = await runTool("experiment.ts", [
      ...args,
      "--out",
      cut,
      "--resume",
    ]);
    assertEquals(r.code, 1, r.stderr);
    const line = r.stderr.trim().split("\n").at(-1)!;
    assert(
      line.includes("it was trained with a different configuration") &&
        line.includes(
          `initFromWeightsSha256: "${await sha(src)}" → "${await sha(other)}"`,
        ),
      line,
    );
    assertEquals(
      await Deno.stat(`${cut}/results.json`).then(() => true, () => false),
      false,
    );
    // The same source back: the resume goes on.
    await copy(src);
    const again = await runTool("experiment.ts", [
      ...args,
      "--out",
      cut,
      "--resume",
    ]);
    assertEquals(again.code, 0, again.stderr);
    for (const d of [other, dir]) {
      await Deno.remove(d, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "--init-from on the WebGPU engine: its losses and test figures follow tfjs's from the source's weights",
  ignore: noAdapter,
  async fn() {
    await followsTfjsFrom(await sharedSource(), "webgpu");
  },
});

const SHIFT_ONLY_TFJS =
  "shift (position i predicts token i + 1) is implemented on the tfjs model only";

Deno.test({
  name:
    "a shifted denoiser stays on tfjs: the CPU engine refuses its config, placing it on auto falls back to tfjs saying why, on cpu is refused",
  ignore: noKernels,
  async fn() {
    const config = {
      ...D3PM.modelConfig(resolveConfig({ preset: "micro" }), 32),
      shift: true,
    };
    await assertRejects(
      () => CpuTransformer.create(config, { evaluationOnly: true, seed: 0 }),
      RangeError,
      SHIFT_ONLY_TFJS,
    );
    const model = new Transformer(config, { seed: 0 });
    const placed = await placeModel(model, "auto");
    assertEquals(placed.model, model);
    assert(
      placed.engine.startsWith("tfjs (") &&
        placed.engine.includes(
          "Option --shift is implemented on the tfjs engine only",
        ),
      placed.engine,
    );
    await assertRejects(
      () => placeModel(model, "cpu"),
      Error,
      "Option --shift is implemented on the tfjs engine only, not --engine cpu",
    );
    placed.dispose();
  },
});

Deno.test({
  name: "the WebGPU engine refuses a shifted denoiser's config",
  ignore: noAdapter,
  async fn() {
    const config = {
      ...D3PM.modelConfig(resolveConfig({ preset: "micro" }), 32),
      shift: true,
    };
    await assertRejects(
      () => WebGpuTransformer.create(config, { evaluationOnly: true, seed: 0 }),
      RangeError,
      SHIFT_ONLY_TFJS,
    );
  },
});
