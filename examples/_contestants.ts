// One contestant per model: how it is built, trained and evaluated. The run
// composes them; neither knows about the other except through the judge.
import { autoregressive } from "@d3pm/autoregressive";
import {
  type NllEstimate,
  type Prng,
  type TokenBatch,
  writeFileAtomic,
} from "@d3pm/core";
import { type MaskedDiffusion, maskedDiffusion } from "@d3pm/diffusion";
import {
  figures,
  generativePerplexity,
  type LikelihoodFigures,
  measureSpeed,
  overBlocks,
  sampleEntropy,
} from "@d3pm/eval";
import { type MetricsLog, train, warmupCosine } from "@d3pm/train";
import { type ModelConfig, saveModel, Transformer } from "@d3pm/transformer";
import { type ExperimentConfig, genStepList } from "./config.ts";
import type { RunData } from "./_data.ts";
import type { D3pmResult, SpeedQuality, TrainingFigures } from "./results.ts";
import {
  type ModelKind,
  type RunFolder,
  trainingFingerprint,
} from "./run_folder.ts";

/** What evaluation needs besides the model. */
export interface EvalContext {
  config: ExperimentConfig;
  data: RunData;
  /** The seed's evaluation randomness; each measurement takes its own fork. */
  rng: Prng;
  /** Scores samples for generative perplexity. */
  judge: (x0: TokenBatch) => Promise<NllEstimate>;
}

function modelConfig(
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
  };
}

function build(c: ExperimentConfig, vocab: number, kind: ModelKind) {
  return (seed: number) =>
    new Transformer(modelConfig(c, vocab, kind), {
      seed: 1000 * seed + (kind === "ar" ? 1 : 2),
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
    async evaluate(model: Transformer, ctx: EvalContext) {
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
export function d3pmContestant(c: ExperimentConfig, data: RunData) {
  const process = maskedDiffusion({
    kind: "masked-diffusion",
    vocab: data.tokenizer.vocabSize,
    maskId: data.specials.mask,
    steps: c.diffusionSteps,
    schedule: { kind: "log-linear" },
    objective: c.diffusionLoss,
    padId: data.specials.pad,
  });
  return {
    kind: "d3pm" as const,
    process,
    build: build(c, data.tokenizer.vocabSize, "d3pm"),
    loss: (model: Transformer, batch: TokenBatch, rng: Prng) =>
      process.loss(model, batch, { prng: rng }),
    async evaluate(model: Transformer, ctx: EvalContext) {
      const bounds = await d3pmBounds(model, process, ctx);
      const { curve, samples } = await d3pmCurve(model, process, ctx);
      const rows = Math.min(8, data.test.count);
      const fill = await process.infill(model, {
        tokens: Int32Array.from(
          data.test.data.subarray(0, rows * data.test.length),
        ),
        batchSize: rows,
        length: data.test.length,
      }, {
        fraction: c.infillFraction,
        steps: Math.max(...genStepList(c)),
        prng: ctx.rng.fork("infill"),
      });
      const { steps: _, ...generation } = curve[curve.length - 1];
      const result: Omit<D3pmResult, "seed" | "parameters" | "training"> = {
        model: "d3pm",
        ...bounds,
        generation,
        curve,
        infill: {
          fraction: c.infillFraction,
          hiddenFraction: fill.hidden / fill.total,
          accuracy: fill.accuracy,
          nll: fill.nll,
          hidden: fill.hidden,
        },
      };
      return { result, samples };
    },
  };
}

/** The Monte-Carlo bound on every test block and the exact one on the first few. */
async function d3pmBounds(
  model: Transformer,
  process: MaskedDiffusion,
  ctx: EvalContext,
): Promise<Pick<D3pmResult, "test" | "exact">> {
  const { config: c, data, rng } = ctx;
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
  model: Transformer,
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

/** Either contestant. */
export type AnyContestant =
  | ReturnType<typeof arContestant>
  | ReturnType<typeof d3pmContestant>;

/**
 * Train (or resume) one contestant's model for one seed, save it with its
 * process, and give back the model with the EMA weights in place.
 */
export async function trainContestant(
  contestant: AnyContestant,
  seed: number,
  ctx: {
    config: ExperimentConfig;
    data: RunData;
    folder: RunFolder;
    metrics: MetricsLog;
    progress: boolean;
  },
): Promise<{ model: Transformer; training: TrainingFigures }> {
  const { config: c, folder, kind } = { ...ctx, kind: contestant.kind };
  const dir = folder.modelDir(seed, kind);
  await Deno.mkdir(dir, { recursive: true });
  const model = contestant.build(seed);
  const result = await train({
    variables: model.variables,
    loss: (batch, rng) =>
      contestant.loss(model, { ...batch, length: c.blockLength }, rng),
    blocks: ctx.data.train,
    batchSize: c.batchSize,
    steps: c.steps,
    lr: warmupCosine({ peak: c.lr, warmup: c.warmup, total: c.steps }),
    seed,
    adamw: { weightDecay: c.weightDecay },
    clipNorm: c.clipNorm,
    emaDecay: c.emaDecay > 0 ? c.emaDecay : undefined,
    checkpoint: folder.checkpointPath(seed, kind),
    checkpointEvery: c.checkpointEvery,
    resume: c.resume,
    config: trainingFingerprint(c),
    progress: ctx.progress ? `seed ${seed} ${kind}` : false,
    onStep: (s) => ctx.metrics.append({ model: kind, seed, ...s }),
  });
  if (result.ema) {
    model.setWeights(result.ema.values);
    result.ema.dispose();
  }
  result.optimizer.dispose();
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
    },
  };
}

/** Parameters of a model. */
export function parameterTotal(model: Transformer): number {
  let n = 0;
  for (const v of model.variables.values()) n += v.size;
  return n;
}
