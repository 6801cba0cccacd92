/**
 * Which engine trains and evaluates the models: tfjs on the chosen backend,
 * the fused WebGPU engine, or the same plan on the CPU kernels — training a
 * model on the latter two, and placing a trained model where evaluation and
 * generation run.
 *
 * @module
 */
import {
  type EngineDevice,
  requestEngineDevice,
  WEBGPU_ENGINE_SHA256,
  WebGpuTransformer,
} from "@d3pm/webgpu";
import { CPU_ENGINE_SHA256, CpuTransformer, createCpuKernels } from "@d3pm/cpu";
import { trainEngine, type TrainResult } from "@d3pm/train";
import { contestants, readsOption } from "./registry.ts";
import { type DeviceLease, placementDevices } from "./_placement_device.ts";
import type { ModelConfig, Transformer } from "@d3pm/transformer";
import type { StoredTensor } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  ConfigError,
  type ExperimentConfig,
  tfjsOnlyOptions,
} from "./options.ts";

/** The engine a run trains on. */
export type Engine =
  | { kind: "tfjs"; reason: string }
  | { kind: "webgpu"; device: GPUDevice; reason: string }
  | { kind: "cpu"; reason: string };

// Whether the CPU engine's kernels start here (a CBLAS loads, threads
// start); the reason when not.
async function cpuKernelsProblem(): Promise<string | null> {
  try {
    (await createCpuKernels({ words: 64, threads: 1 })).dispose();
    return null;
  } catch (e) {
    return (e as Error).message.split("\n")[0];
  }
}

// `auto` without a real GPU: the CPU engine, unless the run trains the
// d3pm objective (the fused engines train mdlm only), sets an option only
// tfjs implements, or its kernels cannot start; then tfjs, saying why in
// one line.
/** What an engine choice reads of the configuration. */
export type EngineChoice =
  & Pick<ExperimentConfig, "engine" | "diffusionLoss">
  & Partial<
    Pick<ExperimentConfig, "annealSteps" | "shift" | "models" | "stagger">
  >;

/** Why a staggered process keeps off the WebGPU engine. */
const STAGGER_SAMPLER =
  "its sampler runs on the JavaScript side, which reads the model's logits from a synchronous forward pass, and the WebGPU engine's is asynchronous";

/** Why the fused engines cannot train this run (undefined: they can). */
function tfjsOnly(config: EngineChoice): string | undefined {
  // Only a contestant of the run that reads the objective binds the engine
  // (the d3pm's; unknown models: any might).
  const kinds = config.models?.split(",").filter((k) => k !== "");
  const readsLoss = kinds?.some((kind) => {
    const c = contestants().find((c) => c.kind === kind);
    return c === undefined || readsOption(c, "diffusionLoss");
  }) ?? true;
  if (config.diffusionLoss === "d3pm" && readsLoss) {
    return "the fused engines train the mdlm objective only and this run uses d3pm";
  }
  for (const kind of config.models?.split(",") ?? []) {
    const why = contestants().find((c) => c.kind === kind)?.tfjsOnly;
    if (why) return `the ${kind} contestant runs on tfjs only: ${why}`;
  }
  return tfjsOnlyOptions(config);
}

async function autoOnCpu(
  config: EngineChoice,
  why: string,
): Promise<Engine> {
  const only = tfjsOnly(config);
  if (only) return { kind: "tfjs", reason: `tfjs (${why}; ${only})` };
  const problem = await cpuKernelsProblem();
  if (problem !== null) {
    return {
      kind: "tfjs",
      reason:
        `tfjs (${why}; the CPU engine's kernels cannot start: ${problem})`,
    };
  }
  return {
    kind: "cpu",
    reason: `cpu: the fused plan on the CPU kernels (${why})`,
  };
}

/**
 * Resolve `config.engine`: `webgpu` insists on the fused engine (a software
 * adapter too), `cpu` on the CPU engine (the same plan on `@d3pm/cpu`'s
 * kernels), `auto` takes the fused engine on a real GPU adapter, else the
 * CPU engine — or tfjs, saying why, when the run trains the d3pm objective
 * (the fused engines train mdlm only), sets an option only tfjs implements
 * (`tfjsOnlyOptions`: `--anneal-steps`, `--shift`), or the CPU kernels cannot
 * start. `webgpu` and `cpu` refuse those options.
 *
 * @param config The engine asked for, and the D3PM's objective (the fused
 *   engines train `mdlm` only; it binds the engine only when a contestant of
 *   `models` reads it, or when `models` is not given).
 * @returns The engine and why (a WebGPU engine's device is the caller's to
 *   destroy).
 * @throws {ConfigError} When `webgpu` is asked for and no adapter answers,
 *   or `cpu` and its kernels cannot start, or either with an option only
 *   tfjs implements.
 *
 * @example
 * ```ts
 * import { chooseEngine } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const engine = await chooseEngine({ engine: "tfjs", diffusionLoss: "mdlm" });
 * assertEquals(engine, { kind: "tfjs", reason: "tfjs (--engine tfjs)" });
 * ```
 */
export async function chooseEngine(
  config: EngineChoice,
): Promise<Engine> {
  return await chooseWith(
    config,
    requestEngineDevice,
    (device) => device.destroy(),
  );
}

// chooseEngine with the device from `request`, and `unused` called on it
// when the choice does not take it (placeModel gives back its hold on the
// shared device).
async function chooseWith(
  config: EngineChoice,
  request: () => Promise<EngineDevice>,
  unused: (device: GPUDevice) => void,
): Promise<Engine> {
  if (config.engine === "tfjs") {
    return { kind: "tfjs", reason: "tfjs (--engine tfjs)" };
  }
  const only = tfjsOnly(config);
  if (only && config.engine !== "auto") {
    throw new ConfigError(
      `${only}, not --engine ${config.engine}; use --engine tfjs`,
    );
  }
  if ((config.stagger ?? 0) > 0 && config.engine === "webgpu") {
    throw new ConfigError(
      `Option --engine webgpu: the model's process is staggered, and ${STAGGER_SAMPLER}; use --engine cpu or tfjs`,
    );
  }
  if (config.engine === "cpu") {
    const problem = await cpuKernelsProblem();
    if (problem !== null) {
      throw new ConfigError(`Option --engine cpu: ${problem}`);
    }
    return { kind: "cpu", reason: "cpu: the fused plan on the CPU kernels" };
  }
  let found;
  try {
    found = await request();
  } catch (e) {
    if (config.engine === "webgpu") {
      throw new ConfigError(
        `Option --engine webgpu: ${(e as Error).message}`,
      );
    }
    return await autoOnCpu(
      config,
      `no WebGPU adapter: ${(e as Error).message.split("\n")[0]}`,
    );
  }
  if (found.software && config.engine === "auto") {
    unused(found.device);
    return await autoOnCpu(
      config,
      `the WebGPU adapter is software, ${found.label}`,
    );
  }
  if ((config.stagger ?? 0) > 0 && config.engine === "auto") {
    // The staggered sampler reads forward(), which the WebGPU engine lacks.
    unused(found.device);
    return await autoOnCpu(config, `--stagger: ${STAGGER_SAMPLER}`);
  }
  if (only) {
    unused(found.device);
    return { kind: "tfjs", reason: `tfjs (${only})` };
  }
  return {
    kind: "webgpu",
    device: found.device,
    reason: `webgpu: the fused engine on ${found.label}${
      found.software ? " (a software adapter: correct but slow)" : ""
    }${found.note ? `; ${found.note}` : ""}`,
  };
}

/**
 * The engine of a run: {@linkcode chooseEngine} for its models less those
 * that run on tfjs only (a contestant's `tfjsOnly`, e.g. `bd3`), which fall
 * back to tfjs one by one ({@linkcode modelEngine}) while the others keep
 * the engine `auto` picks. An explicit `--engine cpu` or `webgpu` is
 * refused with such a contestant, as {@linkcode chooseEngine} refuses it.
 *
 * @param config The engine asked for, the D3PM's objective and the models.
 * @returns The run's engine (the judge's too).
 * @throws {ConfigError} As {@linkcode chooseEngine}.
 *
 * @example Without a GPU, bd3 in the models no longer keeps the run on tfjs
 * ```ts
 * import { chooseRunEngine, modelEngine } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const run = await chooseRunEngine({ engine: "tfjs", diffusionLoss: "mdlm", models: "ar,bd3" });
 * assertEquals(run.kind, "tfjs");
 * assertEquals(modelEngine(run, "bd3"), run); // on tfjs already
 * ```
 */
export async function chooseRunEngine(
  config: EngineChoice,
): Promise<Engine> {
  if (config.engine !== "auto") return await chooseEngine(config);
  const fused = (config.models ?? "").split(",").filter((k) =>
    !contestants().find((c) => c.kind === k)?.tfjsOnly
  );
  return await chooseEngine({ ...config, models: fused.join(",") });
}

/**
 * The engine one contestant of a run trains and evaluates on: the run's
 * engine ({@linkcode chooseRunEngine}), or tfjs, saying why in one line,
 * for a contestant that runs on tfjs only.
 *
 * @param run The run's engine.
 * @param kind The contestant.
 * @returns Its engine (the run's own object when it is the run's).
 *
 * @example
 * ```ts
 * import { modelEngine } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const cpu = { kind: "cpu", reason: "cpu" } as const;
 * assertEquals(modelEngine(cpu, "ar"), cpu);
 * assertEquals(modelEngine(cpu, "bd3"), {
 *   kind: "tfjs",
 *   reason: "tfjs (the bd3 contestant runs on tfjs only: block diffusion needs block attention, which the fused engines lack)",
 * });
 * ```
 */
export function modelEngine(run: Engine, kind: string): Engine {
  if (run.kind === "tfjs") return run;
  const why = contestants().find((c) => c.kind === kind)?.tfjsOnly;
  return why
    ? {
      kind: "tfjs",
      reason: `tfjs (the ${kind} contestant runs on tfjs only: ${why})`,
    }
    : run;
}

/**
 * What decides the float rounding of what an engine trains, for the cache
 * keys of trained models (the `auto` judge's): the engine's kind and, on tfjs,
 * its backend (with its BLAS and threads); on the CPU engine its kernel threads (a product's bits follow
 * its split over the threads, so 1 and 2 threads train different bits), how
 * products use them, the CBLAS (vendor, version, OpenBLAS's kernel
 * family) and the engine's build (`CPU_ENGINE_SHA256`'s first 12 digits:
 * its kernels, the host code that splits them and the plan it runs; a change to any
 * retrains the judge); on WebGPU, the adapter
 * (the engine's one line) and the engine's build (`WEBGPU_ENGINE_SHA256`'s first 12
 * digits: its WGSL and the host code around it). Engines, backends
 * and thread counts agree to float32 rounding, not bit for bit, and training
 * amplifies the difference: a model cached by one must not stand for
 * another's.
 *
 * @param engine The resolved engine.
 * @param backend On tfjs, the backend's one line (`initBackend`'s reason,
 *   e.g. `blas: OpenBLAS 0.3.21, coretype SkylakeX, 2 threads`: a threaded
 *   BLAS rounds by its thread count); without it, the backend's name.
 * @returns One line, the same for the same engine on the same machine.
 *
 * @example
 * ```ts
 * import { engineFingerprint } from "@d3pm/experiment";
 * import { assert } from "@std/assert";
 * const cpu = await engineFingerprint({ kind: "cpu", reason: "cpu" });
 * assert(cpu.startsWith("cpu: ") && cpu.includes(" threads"));
 * assert(/, build [0-9a-f]{12}$/.test(cpu));
 * ```
 */
export async function engineFingerprint(
  engine: Engine,
  backend?: string,
): Promise<string> {
  if (engine.kind === "tfjs") {
    if (backend !== undefined) return `tfjs on ${backend}`;
    await tf.ready(); // before it, no backend is chosen
    return `tfjs on ${tf.getBackend()}`;
  }
  if (engine.kind === "webgpu") {
    return `${engine.reason}, build ${WEBGPU_ENGINE_SHA256.slice(0, 12)}`;
  }
  // The same defaults CpuTransformer.create takes (threads: defaultThreads()).
  const k = await createCpuKernels({ words: 64 });
  try {
    const b = k.cblas;
    return `cpu: ${k.threads} threads, ${k.products} products, ${b.vendor} ${b.version}${
      b.coretype ? ` ${b.coretype}` : ""
    }, build ${CPU_ENGINE_SHA256.slice(0, 12)}`;
  } finally {
    k.dispose();
  }
}

/** Options of {@linkcode trainOnEngine}: the model and what `trainEngine` needs besides the engine. */
export interface EngineRun {
  /** The engine it runs on: the fused WebGPU engine's device, or the CPU engine. */
  engine: Exclude<Engine, { kind: "tfjs" }>;
  /** The model's configuration. */
  model: ModelConfig;
  /** Seed of its initial weights (the same as the tfjs model's), and of its dropout. */
  seed: number;
  /**
   * Initial weights instead of the seeded ones (names and shapes of the
   * model's parameters): the D3PM started from a trained model.
   */
  weights?: ReadonlyMap<string, StoredTensor>;
  /** Positions per row of the engine's fixed step (AR: block − 1). */
  length: number;
  /** The mask id left out of the softmax (MDLM), if any. */
  excludeToken?: number;
  /** The loop's options. */
  options: Omit<Parameters<typeof trainEngine>[0], "engine" | "ema">;
  /** The run's batch, optimiser and EMA settings (0: no EMA). */
  config: Pick<
    ExperimentConfig,
    "batchSize" | "weightDecay" | "adamBeta2" | "clipNorm" | "emaDecay"
  >;
}

/**
 * Train one model on the fused engine and hand back its weights for
 * evaluation (the EMA when there is one).
 *
 * @param run The device, model, step shape and loop options.
 * @returns The loop's figures and the weights.
 *
 * @example Two steps of a micro causal model on the CPU engine
 * ```ts
 * import { trainOnEngine } from "@d3pm/experiment";
 * import { preset } from "@d3pm/transformer";
 * import { assert, assertEquals } from "@std/assert";
 * const model = preset("micro", { vocabSize: 16, contextLength: 8, dModel: 8, dMlp: 16 });
 * const L = 7, B = 2; // the AR's step: positions 1..7 of 8-token blocks
 * const { result, weights } = await trainOnEngine({
 *   engine: { kind: "cpu", reason: "cpu" },
 *   model,
 *   seed: 0,
 *   length: L,
 *   options: {
 *     blocks: { data: Uint32Array.from({ length: 4 * 8 }, (_, i) => i % 16), count: 4, length: 8 },
 *     batchSize: B,
 *     steps: 2,
 *     lr: () => 1e-3,
 *     terms: (batch) => ({
 *       rows: B,
 *       length: L,
 *       inputs: Int32Array.from({ length: B * L }, (_, i) => batch.tokens[Math.floor(i / L) * 8 + (i % L)]),
 *       targets: Int32Array.from({ length: B * L }, (_, i) => batch.tokens[Math.floor(i / L) * 8 + (i % L) + 1]),
 *       weights: new Float32Array(B * L).fill(1 / (B * L)),
 *     }),
 *     logEvery: 1,
 *     progress: false,
 *   },
 *   config: { batchSize: B, weightDecay: 0, adamBeta2: 0.95, clipNorm: 1, emaDecay: 0 },
 * });
 * assertEquals(result.steps, 2);
 * assert(Number.isFinite(result.lastLoss) && result.lastLoss > 0);
 * assertEquals(weights.get("wte.weight")!.shape, [16, model.dModel]);
 * ```
 */
export async function trainOnEngine(
  run: EngineRun,
): Promise<{
  result: Omit<TrainResult, "ema" | "optimizer">;
  weights: Map<string, StoredTensor>;
}> {
  const c = run.config;
  const ema = c.emaDecay > 0;
  const options = {
    batchSize: c.batchSize,
    length: run.length,
    seed: run.seed,
    adamw: { weightDecay: c.weightDecay, beta2: c.adamBeta2 },
    clipNorm: c.clipNorm,
    ...(ema ? { emaDecay: c.emaDecay } : {}),
    ...(run.excludeToken !== undefined
      ? { excludeToken: run.excludeToken }
      : {}),
    ...(run.weights ? { weights: run.weights } : {}),
  };
  const engine = run.engine.kind === "webgpu"
    ? await WebGpuTransformer.create(run.model, {
      ...options,
      device: run.engine.device,
    })
    : await CpuTransformer.create(run.model, options);
  try {
    const result = await trainEngine({ ...run.options, engine, ema });
    const weights = ema ? await engine.emaWeights() : await engine.getWeights();
    return { result, weights };
  } finally {
    engine.dispose();
  }
}

/**
 * A tfjs model's weights as stored tensors (copies), for an engine to hold
 * or start from.
 *
 * @param model The tfjs model.
 * @returns Its parameters by name.
 */
export async function storedWeights(
  model: Transformer,
): Promise<Map<string, StoredTensor>> {
  const weights = new Map<string, StoredTensor>();
  for (const [name, v] of model.variables) {
    weights.set(name, {
      shape: [...v.shape],
      data: Float32Array.from((await v.data()) as Float32Array),
    });
  }
  return weights;
}

/**
 * What evaluation and generation run on: the tfjs model, or — when the run
 * trains on the fused engine — an engine holding the same weights, so that
 * bounds, NLL, samples and infilling run on the GPU (one sync per batch);
 * on the CPU engine, the tfjs model whose scoring (`rowLosses`: bounds, NLL)
 * and generation (`generateCausal` with the KV cache, or `generateMasked`)
 * run on a CPU engine holding its weights.
 */
export type EvalModel = Transformer | WebGpuTransformer;

// The CPU engines behind the scored tfjs models evaluationModel made.
const cpuScorers = new WeakMap<object, CpuTransformer>();

/**
 * The model to evaluate: `model` itself on tfjs, else a WebGPU engine with
 * its weights on the run's device, or on the CPU engine the tfjs model with
 * its scoring and generation on a CPU engine (dispose it when done; the tfjs model stays
 * the caller's).
 *
 * @param model The trained tfjs model.
 * @param engine Where evaluation runs.
 * @returns The model to evaluate.
 *
 * @example On tfjs the model itself; on the CPU engine it scores there
 * ```ts
 * import { evaluationModel, releaseEvaluationModel } from "@d3pm/experiment";
 * import { preset, Transformer } from "@d3pm/transformer";
 * import { assert, assertEquals } from "@std/assert";
 * const model = new Transformer(preset("micro", { vocabSize: 16, contextLength: 8, dModel: 8, dMlp: 16 }), { seed: 0 });
 * assertEquals(await evaluationModel(model, { kind: "tfjs", reason: "tfjs" }), model);
 * const onCpu = await evaluationModel(model, { kind: "cpu", reason: "cpu" });
 * assert("rowLosses" in onCpu && !("rowLosses" in model));
 * assertEquals(onCpu.config, model.config); // the same weights and shape
 * releaseEvaluationModel(onCpu); // its CPU engine; the tfjs model stays
 * model.dispose();
 * ```
 */
export async function evaluationModel(
  model: Transformer,
  engine: Engine,
): Promise<EvalModel> {
  if (engine.kind === "tfjs") return model;
  const weights = await storedWeights(model);
  if (engine.kind === "cpu") {
    const scorer = await CpuTransformer.create(model.config, {
      evaluationOnly: true,
      weights,
    });
    // The tfjs model (forward, step-by-step decoding) with the engine's
    // TermScorer and generator: the processes' score and bound take
    // rowLosses first, their samplers generateCausal (KV cache) or
    // generateMasked.
    const own = new Map<PropertyKey, unknown>([
      ["rowLosses", scorer.rowLosses.bind(scorer)],
      model.config.kind === "causal"
        ? ["generateCausal", scorer.generateCausal.bind(scorer)]
        : ["generateMasked", scorer.generateMasked.bind(scorer)],
    ]);
    const scored = new Proxy(model, {
      get(target, prop) {
        if (own.has(prop)) return own.get(prop);
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
      has(target, prop) {
        return own.has(prop) || Reflect.has(target, prop);
      },
    });
    cpuScorers.set(scored, scorer);
    return scored;
  }
  // Evaluation only: no gradients, AdamW moments or training plan.
  return await WebGpuTransformer.create(model.config, {
    evaluationOnly: true,
    weights,
    device: engine.device,
  });
}

/**
 * Dispose what {@linkcode evaluationModel} made (never the tfjs model).
 *
 * @param model What it returned.
 *
 * @example The tfjs model itself is left to its owner
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { evaluationModel, releaseEvaluationModel } from "@d3pm/experiment";
 * import { preset, Transformer } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const model = new Transformer(preset("micro", { vocabSize: 16, contextLength: 8, dModel: 8, dMlp: 16 }), { seed: 0 });
 * const evaluated = await evaluationModel(model, { kind: "cpu", reason: "cpu" });
 * releaseEvaluationModel(evaluated);
 * releaseEvaluationModel(model); // nothing to release: tfjs evaluated it
 * const tokens = tf.tensor2d([[1, 2]], [1, 2], "int32");
 * const logits = model.forward(tokens); // still the caller's, still working
 * assertEquals(logits.shape, [1, 2, 16]);
 * tf.dispose([tokens, logits]);
 * model.dispose();
 * ```
 */
export function releaseEvaluationModel(model: EvalModel): void {
  if (model instanceof WebGpuTransformer) model.dispose();
  const scorer = cpuScorers.get(model);
  if (scorer) {
    cpuScorers.delete(model);
    scorer.dispose();
  }
}

/** A run's trained models placed where it evaluates, each once, when first asked for. */
export interface EvaluationModels {
  /** The `i`-th model where the run evaluates ({@linkcode evaluationModel}). */
  place(i: number): Promise<EvalModel>;
  /** Release every placed model (never the tfjs models). */
  release(): Promise<void>;
}

/**
 * Place a run's trained models on its engine lazily and once each: the
 * evaluation of model `i` and a judge that scores with model `i` (`--judge
 * self`) share one placed model.
 *
 * @param models The trained tfjs models (the caller's).
 * @param engine Where evaluation runs: the run's engine, or one per model
 *   (a contestant that runs on tfjs only is evaluated on tfjs).
 * @returns The placements.
 *
 * @example
 * ```ts
 * import { evaluationModels } from "@d3pm/experiment";
 * import { preset, Transformer } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * const model = new Transformer(preset("micro", { vocabSize: 16, contextLength: 8, dModel: 8, dMlp: 16 }), { seed: 0 });
 * const placed = evaluationModels([model], { kind: "tfjs", reason: "tfjs" });
 * assertEquals(await placed.place(0), model); // tfjs: the model itself
 * await placed.release();
 * model.dispose();
 * ```
 */
export function evaluationModels(
  models: readonly Transformer[],
  engine: Engine | readonly Engine[],
): EvaluationModels {
  const engineOf = (i: number) =>
    Array.isArray(engine) ? engine[i] : engine as Engine;
  const placed = new Map<number, Promise<EvalModel>>();
  return {
    place(i) {
      let p = placed.get(i);
      if (!p) {
        if (!models[i]) {
          throw new RangeError(
            `Cannot place model ${i}: there are ${models.length} models`,
          );
        }
        p = evaluationModel(models[i], engineOf(i));
        placed.set(i, p);
      }
      return p;
    },
    async release() {
      for (const p of placed.values()) {
        const m = await p.catch(() => undefined); // a failed one holds nothing
        if (m) releaseEvaluationModel(m);
      }
      placed.clear();
    },
  };
}

/** A trained model placed where generation runs, with what releases it all. */
export interface PlacedModel {
  /** The model to generate with. */
  model: EvalModel;
  /** Which engine, and why. */
  engine: string;
  /**
   * Release the placed model and the tfjs model, and its hold on the
   * process's WebGPU device (destroyed a few seconds after the last hold
   * goes, unless a placement takes it again). A second call does nothing.
   */
  dispose(): void;
}

/**
 * Place a trained model on an engine for generation: `tfjs` (the model
 * itself), `webgpu` (the fused engine, a software adapter too), `cpu` (the
 * engine's plan on the CPU kernels) or `auto` (see
 * {@linkcode chooseEngine}). A shifted denoiser (`config.shift`), or a model
 * of a contestant that runs on tfjs only (`kind`, e.g. `bd3`), is tfjs's
 * only: `auto` keeps it there, `webgpu` and `cpu` are refused. The placed
 * model owns `model`. Every model placed on WebGPU shares one device per
 * process (requested on first use, again after it is lost), so a reload
 * reuses the kernels compiled for the last one; when the last such model
 * is disposed the device (and its kernels) is destroyed after a few idle
 * seconds, unless a placement takes it first. A placement that ends up off
 * the device (a software adapter under `auto`, a tfjs-only model) holds
 * none.
 *
 * A model whose process is staggered (`stagger`, the process's `delta`)
 * keeps off the WebGPU engine: its sampler reads a synchronous forward
 * pass (`auto` takes the CPU engine, `webgpu` is refused).
 *
 * @param model The trained tfjs model.
 * @param choice The engine.
 * @param kind Its contestant (default: none that runs on tfjs only).
 * @param stagger Its process's stagger (`processStagger`; default 0: none).
 * @returns The placed model.
 *
 * @example
 * ```ts
 * import { placeModel } from "@d3pm/experiment";
 * import { preset, Transformer } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * const model = new Transformer(preset("micro", { vocabSize: 16, contextLength: 8, dModel: 8, dMlp: 16 }), { seed: 0 });
 * const placed = await placeModel(model, "tfjs");
 * assertEquals(placed.model, model);
 * placed.dispose();
 * ```
 */
export async function placeModel(
  model: Transformer,
  choice: "tfjs" | "webgpu" | "cpu" | "auto",
  kind?: string,
  stagger = 0,
): Promise<PlacedModel> {
  // A shifted denoiser reads output i − 1 at position i: tfjs only; so is a
  // contestant that says so (`tfjsOnly`).
  // A hold on the shared device while the placed model is on it; given
  // back at once by a choice that does not take it (`unused`).
  let lease: DeviceLease | undefined;
  const engine = await chooseWith(
    {
      engine: choice,
      diffusionLoss: "mdlm",
      shift: model.config.shift ?? false,
      ...(kind ? { models: kind } : {}),
      stagger,
    },
    async () => (lease = await placementDevices.acquire()).found,
    () => lease?.release(),
  );
  if (engine.kind !== "webgpu") lease?.release();
  let placed: EvalModel;
  try {
    placed = await evaluationModel(model, engine);
  } catch (e) {
    lease?.release();
    throw e;
  }
  let disposed = false;
  return {
    model: placed,
    engine: engine.reason,
    dispose() {
      if (disposed) return;
      disposed = true;
      releaseEvaluationModel(placed);
      model.dispose();
      lease?.release();
    },
  };
}

/**
 * The stagger of a process (its spec's `stagger.delta`; 0 without one), for
 * {@linkcode placeModel}.
 *
 * @param process A run's process.
 * @returns The delta.
 *
 * @example
 * ```ts
 * import { maskedDiffusion } from "@d3pm/diffusion";
 * import { processStagger } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const spec = { kind: "masked-diffusion", vocab: 9, maskId: 8, steps: 10, schedule: { kind: "log-linear" }, objective: "mdlm" } as const;
 * assertEquals(processStagger(maskedDiffusion(spec)), 0);
 * assertEquals(processStagger(maskedDiffusion({ ...spec, stagger: { span: 2, delta: 0.5 } })), 0.5);
 * ```
 */
export function processStagger(process: { toJSON(): unknown }): number {
  const spec = process.toJSON() as { stagger?: { delta?: unknown } } | null;
  const delta = spec?.stagger?.delta;
  return typeof delta === "number" ? delta : 0;
}
