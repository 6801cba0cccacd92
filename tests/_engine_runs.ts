// The experiment on a fused engine against the experiment on tfjs, for
// tests/engine_test.ts (WebGPU) and tests/cpu_engine_test.ts (the CPU engine):
// the loss curve and the test figures follow tfjs, and a run killed on the
// engine resumes to the same weights.
import { assert, assertEquals } from "@std/assert";
import { AR_FAST_EVAL, FAST_EVAL, killAt, runTool } from "./_run.ts";
import { ignoreUnless, tempDir } from "@d3pm/core/testing";
import { requestEngineDevice, WebGpuUnavailableError } from "@d3pm/webgpu";

/**
 * A 40-step micro run, validated at step 20, judged by itself; gen PPL of
 * the last timed batch alone (`--gen-samples 0`: no test here reads its
 * interval, and 64 rows more took most of the WebGPU run's evaluation on
 * lavapipe, 42 s of its 178 s under load against 6 s without).
 */
const BASE_ARGS: readonly string[] = [
  "--preset",
  "micro",
  "--steps",
  "40",
  "--warmup",
  "5",
  "--valid-every",
  "20",
  "--exact-blocks",
  "0",
  "--gen-samples",
  "0",
  "--judge",
  "self",
];
export const ARGS: readonly string[] = [...BASE_ARGS, ...FAST_EVAL];

/** {@linkcode ARGS} for a run of the AR model alone. */
export const AR_ARGS: readonly string[] = [...BASE_ARGS, ...AR_FAST_EVAL];

/**
 * All three contestants: the MLM's BERT loss goes through the engine's
 * weighted cross-entropy too; the D3PM and the MLM with neighbour heads
 * (ALiBi in the engine's attention kernels).
 */
const THREE = [
  "--models",
  "ar,d3pm,mlm",
  "--alibi",
  "2",
  "--alibi-mode",
  "neighbours",
];

function losses(text: string, model: string): Map<number, number> {
  return new Map(
    text.trim().split("\n").map((l) => JSON.parse(l))
      .filter((r) => r.model === model && "loss" in r)
      .map((r) => [r.step, r.loss]),
  );
}

/** A model's test figures in a finished run. */
export type TestFigures = { model: string; test: { nll: number } }[];

/**
 * Train all three models on `engine` and on tfjs: every logged loss within
 * 0.02 nats of the mean of tfjs's last 10 steps, the test figures within
 * 0.005 nats, the engine named on stderr (`says`) and in the report.
 *
 * @param then Further checks on the engine's run folder and figures, before
 *   the folders are removed.
 */
export async function followsTfjs(
  engine: "webgpu" | "cpu",
  says: string,
  then?: (dir: string, figures: TestFigures) => Promise<void>,
): Promise<void> {
  // Removed however the comparison ends (a failing engine's run folders
  // would otherwise stay in the temporary folder).
  await using fusedDir = await tempDir(), tfjsDir = await tempDir();
  const fused = fusedDir.path, tfjs = tfjsDir.path;
  // The two runs are independent (their own folders; the shared caches are
  // written atomically): on the CPU engine side by side, the tfjs run's one
  // JavaScript thread beside the engine's; WebGPU's (lavapipe's threads on
  // a 2-core CI machine) alone.
  const [a, b] = await inTurnOr(engine === "cpu", [
    () =>
      runTool("experiment.ts", [
        ...ARGS,
        ...THREE,
        "--engine",
        engine,
        "--out",
        fused,
      ]),
    () =>
      runTool("experiment.ts", [
        ...ARGS,
        ...THREE,
        "--engine",
        "tfjs",
        "--out",
        tfjs,
      ]),
  ]);
  assertEquals(a.code, 0, a.stderr);
  assert(a.stderr.includes(`engine: ${engine}: ${says}`), a.stderr);
  assertEquals(b.code, 0, b.stderr);
  const ga = await Deno.readTextFile(`${fused}/metrics.jsonl`);
  const cb = await Deno.readTextFile(`${tfjs}/metrics.jsonl`);
  for (const model of ["ar", "d3pm", "mlm"]) {
    const mine = losses(ga, model), theirs = losses(cb, model);
    assertEquals([...mine.keys()], [10, 20, 30, 40]); // --log-every 10
    for (const [step, loss] of mine) {
      // The engine logs the mean of the last 10 steps.
      let mean = 0;
      for (let s = step - 9; s <= step; s++) mean += theirs.get(s)! / 10;
      assert(
        Math.abs(loss - mean) < 0.02,
        `${model} step ${step}: ${loss} vs ${mean}`,
      );
    }
  }
  // Evaluation ran on the engine (the same draws as tfjs's): the test
  // figures of the two runs differ only by their training's drift — the
  // MLM's bound (the D3PM bound with the MLM as denoiser) included.
  const results = async (dir: string) =>
    JSON.parse(await Deno.readTextFile(`${dir}/results.json`))
      .results as TestFigures;
  const [eg, tf] = [await results(fused), await results(tfjs)];
  // Drift seen on WebGPU: AR 5e-4, D3PM 4e-6, MLM 5e-7 nats; 0.005 is 10×
  // the largest, and a bound scored with the mask left in the softmax
  // (D3PM +0.026, MLM +0.018) is caught.
  for (let i = 0; i < 3; i++) {
    const d = Math.abs(eg[i].test.nll - tf[i].test.nll);
    assert(d < 0.005, `${eg[i].model}: ${eg[i].test.nll} vs ${tf[i].test.nll}`);
  }
  const report = await Deno.readTextFile(`${fused}/report.md`);
  assert(
    report.includes(`Training engine: ${engine}`),
    "report names the engine",
  );
  await then?.(fused, eg);
}

/**
 * Kill a run on `engine` mid-D3PM and resume it: the same weights as a whole
 * run's. On WebGPU (lavapipe: three runs in turn, about 48 s in CI at 40
 * steps) the run is 20 steps, checkpointed every 5, killed once the D3PM
 * logs step 10 (its validation and checkpoint of step 10 may not be written
 * yet; that of step 5 is): as on the CPU engine's 40 steps killed at 20, the
 * resume starts past the warm-up from a checkpoint and replays a validation.
 */
export async function resumesOnEngine(engine: "webgpu" | "cpu"): Promise<void> {
  const short = engine === "webgpu";
  await resumesBitIdentically(
    [
      ...ARGS,
      ...(short ? ["--steps", "20", "--valid-every", "10"] : []),
      "--engine",
      engine,
      "--checkpoint-every",
      short ? "5" : "10",
    ],
    ["ar", "d3pm"],
    engine === "cpu",
    short ? 10 : 20,
  );
}

/**
 * Run `jobs`: side by side when `together`, else one after the other
 * (lavapipe's worker threads, two processes' worth on two cores, are left
 * to one process at a time).
 */
export async function inTurnOr<T>(
  together: boolean,
  jobs: (() => Promise<T>)[],
): Promise<T[]> {
  if (together) return await Promise.all(jobs.map((job) => job()));
  const out: T[] = [];
  for (const job of jobs) out.push(await job());
  return out;
}

/**
 * Run `args` whole, and again killed at the D3PM's step `killStep` (20 by
 * default) and resumed (`args` must have written a D3PM checkpoint by then,
 * or the resume would start over and prove nothing): each of `models` ends
 * with the same weight bytes.
 */
export async function resumesBitIdentically(
  args: string[],
  models: string[],
  together = true,
  killStep = 20,
): Promise<void> {
  await using wholeDir = await tempDir(), cutDir = await tempDir();
  const whole = wholeDir.path, cut = cutDir.path;
  // The whole run beside the killed one and its resume (their own folders),
  // unless `together` is false (WebGPU).
  const [w, r] = await inTurnOr(together, [
    () => runTool("experiment.ts", [...args, "--out", whole]),
    () =>
      killAt(args, cut, `"model":"d3pm","seed":0,"step":${killStep}`).then(
        async () => {
          const ck = `${cut}/seed-0/d3pm/checkpoint.safetensors`;
          assert(
            await Deno.stat(ck).then(() => true, () => false),
            `the run killed at the D3PM's step ${killStep} left no checkpoint at ${ck}`,
          );
          return await runTool("experiment.ts", [
            ...args,
            "--out",
            cut,
            "--resume",
          ]);
        },
      ),
  ]);
  assertEquals(w.code, 0, w.stderr);
  assertEquals(r.code, 0, r.stderr);
  for (const m of models) {
    const a = await Deno.readFile(`${cut}/seed-0/${m}/model.safetensors`);
    const b = await Deno.readFile(`${whole}/seed-0/${m}/model.safetensors`);
    // Byte by byte: assertEquals on megabytes builds a diff that can
    // exhaust memory instead of failing with this message.
    const at = a.length !== b.length ? -1 : a.findIndex((x, i) => x !== b[i]);
    assert(
      a.length === b.length && at < 0,
      `${m} weights differ after resume (${a.length} vs ${b.length} bytes, first difference at ${at})`,
    );
  }
}

/**
 * `ignore` for a test that needs a WebGPU adapter: the reason when none
 * answers (a failure where WebGPU is required, see `ignoreUnless`); any other
 * error of the device request is thrown.
 */
export async function noWebGpuAdapter(): Promise<
  ReturnType<typeof ignoreUnless>
> {
  return ignoreUnless(
    "webgpu",
    await requestEngineDevice().then(
      (d) => (d.device.destroy(), null),
      (e: Error) => {
        if (e instanceof WebGpuUnavailableError) return e.message;
        throw e;
      },
    ),
  );
}
