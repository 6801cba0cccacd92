// One contestant per model: how it is built, trained and evaluated. The run
// composes them; none knows about another except through the judge and the
// evaluation streams they share (the same fork label gives the same draws).
import * as tf from "@tensorflow/tfjs";
import { autoregressive } from "@d3pm/autoregressive";
import {
  type NllEstimate,
  type Prng,
  prng,
  type StoredTensor,
  type Tensor,
  type TokenBatch,
  writeFileAtomic,
} from "@d3pm/core";
import {
  type MaskedDiffusion,
  maskedDiffusion,
  type MaskedLanguageModel,
  maskedLanguageModel,
} from "@d3pm/diffusion";
import {
  figures,
  generativePerplexity,
  type LikelihoodFigures,
  measureSpeed,
  overBlocks,
  sampleEntropy,
} from "@d3pm/eval";
import {
  MetricsLog,
  type StepInfo,
  train,
  type TrainOptions,
  warmupCosine,
} from "@d3pm/train";
import { type Engine, type EvalModel, trainOnEngine } from "./engine.ts";
import {
  loadModel,
  type ModelConfig,
  saveModel,
  Transformer,
} from "@d3pm/transformer";
import { ADDED_KEYS, type ExperimentConfig, genStepList } from "./config.ts";
import type { RunData } from "./data.ts";
import type {
  D3pmResult,
  InfillFigures,
  MlmResult,
  SpeedQuality,
  TrainingFigures,
} from "./results.ts";
import {
  type ModelKind,
  type RunFolder,
  trainingFingerprint,
} from "./run_folder.ts";

/** Seed of the D3PM's and the MLM's validation draws (fixed for the whole run). */
const VALID_DRAWS = 0x5eed;

/**
 * The test bounds' (t, mask) draws, the same for every seed (common random
 * numbers): each seed's bound stays an unbiased estimate, and the spread
 * across seeds measures the models rather than the draws.
 */
const TEST_DRAWS = 0x7e57;

/** BERT's masking rate, the MLM's only one. */
const MLM_RATE = 0.15;

/** Test blocks that are infilled, and scored by pseudo-log-likelihood. */
const INFILL_BLOCKS = 8;

/** What evaluation needs besides the model. */
export interface EvalContext {
  config: ExperimentConfig;
  data: RunData;
  /** The seed's evaluation randomness; each measurement takes its own fork. */
  rng: Prng;
  /** Scores samples for generative perplexity. */
  judge: (x0: TokenBatch) => Promise<NllEstimate>;
}

/** The Transformer config of a run's model of `kind`. */
export function modelConfig(
  c: ExperimentConfig,
  vocab: number,
  kind: ModelKind,
): ModelConfig {
  return {
    kind: kind === "ar" ? "causal" : "bidirectional",
    vocabSize: vocab,
    contextLength: c.blockLength,
    nLayer: c.nLayer,
    nHead: c.nHead,
    dModel: c.dModel,
    dMlp: c.dMlp,
    positions: c.positions,
    timeConditioning: kind === "d3pm" && c.timeConditioning,
    dTime: 128,
    dropout: c.dropout,
    ...(kind !== "ar" && c.alibi > 0
      ? {
        alibi: c.alibi,
        ...(c.alibiMode === "neighbours" ? { alibiMode: c.alibiMode } : {}),
      }
      : {}),
  };
}

/** The peak learning rate of a model of `kind` (each model gets its own). */
export function peakLr(c: ExperimentConfig, kind: ModelKind): number {
  return kind === "ar" && c.arLr > 0 ? c.arLr : c.lr;
}

/** The seed of a model's initial weights. */
function modelSeed(seed: number, kind: ModelKind): number {
  return 1000 * seed + { ar: 1, d3pm: 2, mlm: 3 }[kind];
}

function build(c: ExperimentConfig, vocab: number, kind: ModelKind) {
  return (seed: number) =>
    new Transformer(modelConfig(c, vocab, kind), {
      seed: modelSeed(seed, kind),
    });
}

/** Time `totalTokens` of generation and judge the last batch. */
async function speedQuality(
  ctx: EvalContext,
  generate: () => Promise<{ tokens: Int32Array; forwardPasses: number }>,
): Promise<SpeedQuality & { tokens: Int32Array }> {
  const { config: c } = ctx;
  let tokens: Int32Array = new Int32Array(0);
  const speed = await measureSpeed(async () => {
    const out = await generate();
    tokens = out.tokens;
    return out.forwardPasses;
  }, {
    totalTokens: c.genTokens,
    batchSize: c.genBatch,
    length: c.blockLength,
  });
  const q = await generativePerplexity(tokens, c.blockLength, ctx.judge);
  return {
    speed,
    genPpl: q.genPpl,
    entropy: sampleEntropy(tokens, c.blockLength),
    tokens,
  };
}

function likelihood(
  est: NllEstimate,
  ctx: EvalContext,
  bound: boolean,
): LikelihoodFigures {
  return figures(est.nats, {
    tokens: est.tokens,
    bytesPerToken: ctx.data.facts.bytesPerToken,
    bound,
    ...(bound ? { stderr: est.stderr } : {}),
  });
}

/** The autoregressive contestant. */
export function arContestant(c: ExperimentConfig, data: RunData) {
  const { bos, pad, mask } = data.specials;
  const process = autoregressive({
    kind: "autoregressive",
    start: bos,
    padId: pad,
    suppress: [mask],
  });
  return {
    kind: "ar" as const,
    process,
    build: build(c, data.tokenizer.vocabSize, "ar"),
    loss: (model: Transformer, batch: TokenBatch) => process.loss(model, batch),
    /** Exact NLL on the valid blocks. */
    validate: (model: Transformer) =>
      overBlocks(data.valid, (x0) => process.score(model, x0)),
    async evaluate(model: EvalModel, ctx: EvalContext) {
      const test = await overBlocks(
        data.test,
        (x0) => process.score(model, x0),
      );
      const rng = ctx.rng.fork("ar-generation");
      const gen = await speedQuality(
        ctx,
        () =>
          process.sample(model, {
            batchSize: c.genBatch,
            length: c.blockLength,
            prng: rng,
          }),
      );
      const { tokens: samples, ...generation } = gen;
      return {
        result: {
          model: "ar" as const,
          test: likelihood(test, ctx, false),
          generation,
        },
        samples,
      };
    },
  };
}

/** The D3PM contestant. */
export function d3pmContestant(
  c: ExperimentConfig,
  data: RunData,
  options: { validDraws?: "time" | "count" } = {},
) {
  const process = maskedDiffusion({
    kind: "masked-diffusion",
    vocab: data.tokenizer.vocabSize,
    maskId: data.specials.mask,
    steps: c.diffusionSteps,
    schedule: { kind: "log-linear" },
    objective: c.diffusionLoss,
    padId: data.specials.pad,
    ...(c.tMin !== 0.001 || c.tMax !== 1 || c.timesPer !== "row"
      ? {
        times: {
          min: c.tMin,
          max: c.tMax,
          perToken: c.timesPer === "token",
          ...(c.timesPer === "count" ? { byCount: true } : {}),
        },
      }
      : {}),
  });
  return {
    kind: "d3pm" as const,
    process,
    build: build(c, data.tokenizer.vocabSize, "d3pm"),
    loss: (model: Transformer, batch: TokenBatch, rng: Prng) =>
      process.loss(model, batch, { prng: rng }),
    /**
     * The continuous bound on the valid blocks with one fixed set of draws
     * (by mask count unless `options.validDraws` says `time`), the same at
     * every validation: the curve is smooth and its steps comparable.
     */
    validate: (model: Transformer) => {
      const rng = prng(VALID_DRAWS);
      return overBlocks(
        data.valid,
        (x0) =>
          process.bound(model, x0, { prng: rng, draws: options.validDraws }),
      );
    },
    async evaluate(model: EvalModel, ctx: EvalContext) {
      const bounds = await d3pmBounds(model, process, ctx);
      const { curve, samples } = await d3pmCurve(model, process, ctx);
      const infill = await infillTest(model, process, ctx);
      const { steps: _, ...generation } = curve[curve.length - 1];
      const result: Omit<D3pmResult, "seed" | "parameters" | "training"> = {
        model: "d3pm",
        ...bounds,
        generation,
        curve,
        infill,
      };
      return { result, samples };
    },
  };
}

/** The Monte-Carlo bound on every test block and the exact one on the first few. */
async function d3pmBounds(
  model: EvalModel,
  process: MaskedDiffusion,
  ctx: EvalContext,
): Promise<Pick<D3pmResult, "test" | "exact">> {
  const { config: c, data } = ctx;
  const rng = prng(TEST_DRAWS);
  const boundRng = rng.fork("bound");
  const test = await overBlocks(
    data.test,
    (x0) =>
      process.bound(model, x0, { prng: boundRng, samples: c.elboSamples }),
  );
  if (c.exactBlocks === 0) return { test: likelihood(test, ctx, true) };
  const exactRng = rng.fork("exact");
  const e = await overBlocks(
    data.test,
    (x0) => process.bound(model, x0, { prng: exactRng, kind: "exact" }),
    { maxBlocks: c.exactBlocks, batchSize: c.exactBlocks },
  );
  return {
    test: likelihood(test, ctx, true),
    exact: {
      ...likelihood(e, ctx, true),
      rows: Math.min(c.exactBlocks, data.test.count),
    },
  };
}

/** Speed and quality at each step count; the samples of the last. */
async function d3pmCurve(
  model: EvalModel,
  process: MaskedDiffusion,
  ctx: EvalContext,
): Promise<{ curve: D3pmResult["curve"]; samples: Int32Array }> {
  const c = ctx.config;
  const curve: D3pmResult["curve"] = [];
  let samples: Int32Array = new Int32Array(0);
  for (const steps of genStepList(c)) {
    const genRng = ctx.rng.fork(`generation-${steps}`);
    const { tokens, ...point } = await speedQuality(
      ctx,
      () =>
        process.sample(model, {
          batchSize: c.genBatch,
          length: c.blockLength,
          steps,
          prng: genRng,
        }),
    );
    curve.push({ ...point, steps });
    samples = tokens;
  }
  return { curve, samples };
}

/**
 * Infilling on the first test blocks: hide `infillFraction` of the tokens
 * and fill them in at the largest step count, with the ancestral sampler.
 * The D3PM and the MLM draw from the same fork of the seed's stream, so they
 * are asked to fill the same positions with the same random numbers: only
 * the network differs.
 */
async function infillTest(
  model: EvalModel,
  process: MaskedDiffusion | MaskedLanguageModel,
  ctx: EvalContext,
): Promise<InfillFigures> {
  const { config: c, data } = ctx;
  const rows = Math.min(INFILL_BLOCKS, data.test.count);
  const fill = await process.evaluateInfill(model, {
    tokens: Int32Array.from(
      data.test.data.subarray(0, rows * data.test.length),
    ),
    batchSize: rows,
    length: data.test.length,
  }, {
    fraction: c.infillFraction,
    steps: Math.max(...genStepList(c)),
    prng: ctx.rng.fork("infill"),
    strategy: "ancestral",
  });
  return {
    fraction: c.infillFraction,
    hiddenFraction: fill.hidden / fill.total,
    accuracy: fill.accuracy,
    nll: fill.nll,
    hidden: fill.hidden,
  };
}

/**
 * The masked language model: the D3PM's bidirectional backbone trained with
 * BERT's objective (15% of tokens masked, cross-entropy on them), evaluated
 * on the D3PM's tasks — its bound with the MLM as the denoiser, on the same
 * draws; infilling of the same positions; generation by confidence
 * unmasking — plus the pseudo-log-likelihood, which is not a likelihood.
 */
export function mlmContestant(c: ExperimentConfig, data: RunData) {
  const process = maskedLanguageModel({
    kind: "masked-language-model",
    vocab: data.tokenizer.vocabSize,
    maskId: data.specials.mask,
    rate: MLM_RATE,
    padId: data.specials.pad,
    steps: c.diffusionSteps,
    schedule: { kind: "log-linear" },
  });
  return {
    kind: "mlm" as const,
    process,
    build: build(c, data.tokenizer.vocabSize, "mlm"),
    loss: (model: Transformer, batch: TokenBatch, rng: Prng) =>
      process.loss(model, batch, { prng: rng }),
    /** Its own loss (nats per masked token) on the valid blocks, with fixed masks. */
    validate: (model: Transformer) => {
      const rng = prng(VALID_DRAWS);
      return overBlocks(
        data.valid,
        (x0) => process.maskedNll(model, x0, { prng: rng }),
      );
    },
    async evaluate(model: EvalModel, ctx: EvalContext) {
      // The same fork as the D3PM's bound: the same times and masks.
      const boundRng = prng(TEST_DRAWS).fork("bound");
      const test = await overBlocks(
        data.test,
        (x0) =>
          process.bound(model, x0, { prng: boundRng, samples: c.elboSamples }),
      );
      const rows = Math.min(INFILL_BLOCKS, data.test.count);
      const pll = await overBlocks(
        data.test,
        (x0) => process.pseudoLogLikelihood(model, x0),
        { maxBlocks: rows, batchSize: rows },
      );
      const steps = Math.max(...genStepList(c));
      const genRng = ctx.rng.fork("mlm-generation");
      const { tokens: samples, ...generation } = await speedQuality(
        ctx,
        () =>
          process.sample(model, {
            batchSize: c.genBatch,
            length: c.blockLength,
            steps,
            prng: genRng,
          }),
      );
      const result: Omit<MlmResult, "seed" | "parameters" | "training"> = {
        model: "mlm",
        rate: MLM_RATE,
        test: likelihood(test, ctx, true),
        pll: { ...pll, rows },
        generation,
        genSteps: steps,
        infill: await infillTest(model, process, ctx),
      };
      return { result, samples };
    },
  };
}

/** Any contestant. */
export type AnyContestant =
  | ReturnType<typeof arContestant>
  | ReturnType<typeof d3pmContestant>
  | ReturnType<typeof mlmContestant>;

/**
 * The contestant of `kind`.
 *
 * @param kind Which model.
 * @param c The configuration.
 * @param data The run's data.
 * @returns Its contestant.
 */
export function contestantOf(
  kind: ModelKind,
  c: ExperimentConfig,
  data: RunData,
): AnyContestant {
  switch (kind) {
    case "ar":
      return arContestant(c, data);
    case "d3pm":
      return d3pmContestant(c, data);
    case "mlm":
      return mlmContestant(c, data);
  }
}

/** What training a contestant needs besides the contestant. */
export interface TrainContext {
  config: ExperimentConfig;
  data: RunData;
  folder: RunFolder;
  metrics: MetricsLog;
  progress: boolean;
  /** The training engine (default tfjs). */
  engine?: Engine;
}

/**
 * Train (or resume) one contestant's model for one seed — on tfjs or on the
 * fused WebGPU engine — validating every `validEvery` steps; save it with its
 * process, and give back the model with the weights to evaluate in place
 * (the last step's EMA, or with `keep: best` the best validation's).
 */
export async function trainContestant(
  contestant: AnyContestant,
  seed: number,
  ctx: TrainContext,
): Promise<{ model: Transformer; training: TrainingFigures }> {
  const { config: c, folder } = ctx;
  const kind = contestant.kind;
  const dir = folder.modelDir(seed, kind);
  await Deno.mkdir(dir, { recursive: true });
  const model = contestant.build(seed);
  const validator = c.validEvery > 0
    ? await Validator.open(contestant, seed, ctx)
    : undefined;
  const common = {
    blocks: ctx.data.train,
    batchSize: c.batchSize,
    steps: c.steps,
    lr: warmupCosine({
      peak: peakLr(c, kind),
      warmup: c.warmup,
      total: c.steps,
    }),
    seed,
    checkpoint: folder.checkpointPath(seed, kind),
    checkpointEvery: c.checkpointEvery,
    resume: c.resume,
    config: trainingFingerprint(c),
    configDefaults: ADDED_KEYS,
    progress: ctx.progress ? `seed ${seed} ${kind}` : false as const,
    onStep: async (
      s: StepInfo,
      weights: () => Promise<ReadonlyMap<string, Tensor | StoredTensor>>,
    ) => {
      await ctx.metrics.append({ model: kind, seed, ...s });
      if (s.step % c.validEvery === 0 || s.step === c.steps) {
        await validator?.run(s.step, weights);
      }
    },
  };
  try {
    const result = ctx.engine?.kind === "webgpu"
      ? await fitOnEngine(model, contestant, ctx.engine.device, common, c)
      : await fitOnTfjs(model, contestant, common, c);
    if (c.keep === "best" && validator) await validator.restoreBest(model);
    await saveModel(model, dir);
    await writeFileAtomic(
      folder.processPath(seed, kind),
      JSON.stringify(contestant.process.toJSON(), null, 2) + "\n",
    );
    return {
      model,
      training: {
        seconds: result.seconds,
        lastLoss: result.lastLoss,
        tokens: c.steps * c.batchSize * c.blockLength,
        ...(validator ? { valid: await validator.summary() } : {}),
      },
    };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    validator?.dispose();
  }
}

type Common = Omit<TrainOptions, "variables" | "loss">;

/** Train with tfjs on the active backend; the EMA (if any) ends in `model`. */
async function fitOnTfjs(
  model: Transformer,
  contestant: AnyContestant,
  common: Common,
  c: ExperimentConfig,
): Promise<{ seconds: number; lastLoss: number }> {
  const result = await train({
    ...common,
    variables: model.variables,
    loss: (batch, rng) =>
      contestant.loss(model, { ...batch, length: c.blockLength }, rng),
    adamw: { weightDecay: c.weightDecay },
    clipNorm: c.clipNorm,
    emaDecay: c.emaDecay > 0 ? c.emaDecay : undefined,
  });
  if (result.ema) {
    model.setWeights(result.ema.values);
    result.ema.dispose();
  }
  result.optimizer.dispose();
  return result;
}

/** Train on the fused engine (the same initial weights and data); its weights end in `model`. */
async function fitOnEngine(
  model: Transformer,
  contestant: AnyContestant,
  device: GPUDevice,
  common: Common,
  c: ExperimentConfig,
): Promise<{ seconds: number; lastLoss: number }> {
  const L = c.blockLength;
  const { result, weights } = await trainOnEngine({
    device,
    model: model.config,
    seed: modelSeed(common.seed ?? 0, contestant.kind),
    // The causal step predicts positions 1..L−1 from 0..L−2.
    length: contestant.kind === "ar" ? L - 1 : L,
    excludeToken: contestant.kind === "ar"
      ? undefined
      : contestant.process.spec.maskId,
    options: {
      ...common,
      terms: (batch, rng) =>
        contestant.process.lossTerms({ ...batch, length: L }, { prng: rng }),
      logEvery: c.logEvery,
    },
    config: c,
  });
  setStoredWeights(model, weights);
  return result;
}

/** Validation during training: metrics records, and the best weights for `keep: best`. */
class Validator {
  #best: { step: number; nats: number } | undefined;
  private constructor(
    readonly contestant: AnyContestant,
    readonly seed: number,
    readonly ctx: {
      config: ExperimentConfig;
      folder: RunFolder;
      metrics: MetricsLog;
    },
    readonly scratch: Transformer,
  ) {}

  /** A validator; on resume it knows the best validation so far. */
  static async open(
    contestant: AnyContestant,
    seed: number,
    ctx: { config: ExperimentConfig; folder: RunFolder; metrics: MetricsLog },
  ): Promise<Validator> {
    const v = new Validator(contestant, seed, ctx, contestant.build(seed));
    try {
      v.#best = JSON.parse(await Deno.readTextFile(v.#bestJson));
    } catch { /* none yet */ }
    return v;
  }

  get #bestDir(): string {
    return `${this.ctx.folder.modelDir(this.seed, this.contestant.kind)}/best`;
  }
  get #bestJson(): string {
    return `${this.#bestDir}.json`;
  }

  /** Validate the weights at `step`; keep them if they are the best so far. */
  async run(
    step: number,
    weights: () => Promise<ReadonlyMap<string, Tensor | StoredTensor>>,
  ): Promise<void> {
    setStoredWeights(this.scratch, await weights());
    const { nats } = await this.contestant.validate(this.scratch);
    await this.ctx.metrics.append({
      model: this.contestant.kind,
      seed: this.seed,
      step,
      valid: nats,
    });
    if (this.#best && !(nats < this.#best.nats)) return;
    this.#best = { step, nats };
    if (this.ctx.config.keep !== "best") return;
    await saveModel(this.scratch, this.#bestDir);
    await writeFileAtomic(this.#bestJson, JSON.stringify(this.#best) + "\n");
  }

  /** Put the best validation's weights into `model`. */
  async restoreBest(model: Transformer): Promise<void> {
    const best = await loadModel(this.#bestDir);
    model.setWeights(best.variables);
    best.dispose();
  }

  /** Final and best validation, from the log (so a resumed run counts all of it). */
  async summary(): Promise<NonNullable<TrainingFigures["valid"]>> {
    const byStep = new Map<number, number>();
    for (const r of await MetricsLog.read(this.ctx.folder.metricsPath)) {
      if (
        r.model === this.contestant.kind && r.seed === this.seed &&
        typeof r.valid === "number"
      ) byStep.set(Number(r.step), r.valid);
    }
    const steps = [...byStep.keys()].sort((a, b) => a - b);
    const last = steps.at(-1)!;
    const best = steps.reduce((
      b,
      s,
    ) => (byStep.get(s)! < byStep.get(b)! ? s : b));
    return {
      final: byStep.get(last)!,
      best: byStep.get(best)!,
      bestStep: best,
      kept: this.ctx.config.keep,
    };
  }

  dispose(): void {
    this.scratch.dispose();
  }
}

/** Put weights (tfjs tensors, or stored ones read back from an engine) into a model. */
export function setStoredWeights(
  model: Transformer,
  weights: ReadonlyMap<string, Tensor | StoredTensor>,
): void {
  const made: tf.Tensor[] = [];
  const tensors = new Map<string, Tensor>();
  for (const [name, w] of weights) {
    if (w.data instanceof Float32Array) {
      const t = tf.tensor(w.data, (w as StoredTensor).shape);
      made.push(t);
      tensors.set(name, t);
    } else tensors.set(name, w as Tensor);
  }
  model.setWeights(tensors);
  tf.dispose(made);
}

/** Parameters of a model. */
export function parameterTotal(model: Transformer): number {
  let n = 0;
  for (const v of model.variables.values()) n += v.size;
  return n;
}
