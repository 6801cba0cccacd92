/**
 * What contestants share to evaluate: the evaluation context, the draws
 * every contestant's bound and validation reuse (common random numbers),
 * generation timed and judged, likelihood figures, infilling, and the
 * network a contestant trains.
 *
 * @module
 */
import {
  type GenerateResult,
  type LanguageModel,
  type MaskedGenerator,
  type NllEstimate,
  type Prng,
  prng,
  type TokenBatch,
} from "@d3pm/core";
import type {
  MaskedDiffusion,
  MaskedLanguageModel,
  SampleResult,
} from "@d3pm/diffusion";
import {
  figures,
  generativePerplexity,
  type LikelihoodFigures,
  measureSpeed,
  overBlocks,
  type OverBlocksOptions,
  perplexityInterval,
  perSampleNll,
  sampleEntropy,
} from "@d3pm/eval";
import type { ModelConfig } from "@d3pm/transformer";
import type {
  EngineShape,
  GenerationRequest,
  Unmasking,
} from "./contestant.ts";
import type { RunData } from "./data.ts";
import type { EvalModel } from "./engine.ts";
import { type ExperimentConfig, genStepList } from "./options.ts";
import type { InfillFigures, SpeedQuality } from "./results.ts";
import { Progress } from "@d3pm/train";

/** What evaluation needs besides the model. */
export interface EvalContext {
  /** The run's configuration. */
  config: ExperimentConfig;
  /** The run's data. */
  data: RunData;
  /** The seed's evaluation randomness; each measurement takes its own fork. */
  rng: Prng;
  /** Scores samples for generative perplexity. */
  judge: (x0: TokenBatch) => Promise<NllEstimate>;
  /**
   * With `--gen-samples`, generating and judging the rows that run longer
   * than `quietSeconds` (default 10) say on `log` how far they are
   * (`generate MODEL: rows N/T  elapsed …  ETA …`, then `judge MODEL: …`,
   * as the test scoring's lines); figures and random draws unchanged.
   */
  progress?: {
    model: string;
    log: (line: string) => void;
    quietSeconds?: number;
  };
}

/** Seed of the validation draws (fixed for the whole run). */
const VALID_DRAWS = 0x5eed;

/**
 * Seed of the test bounds' (t, mask) draws, the same for every seed (common
 * random numbers): each seed's bound stays an unbiased estimate, and the
 * spread across seeds measures the models rather than the draws.
 */
const TEST_DRAWS = 0x7e57;

/** Test blocks that are infilled (and scored by pseudo-log-likelihood). */
export const INFILL_BLOCKS = 8;

/**
 * The validation draws: a fresh stream with the same seed at every
 * validation, so a validation curve's steps are comparable.
 *
 * @returns The stream.
 *
 * @example
 * ```ts
 * import { validationDraws } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(validationDraws().next(), validationDraws().next());
 * ```
 */
export function validationDraws(): Prng {
  return prng(VALID_DRAWS);
}

/**
 * The test bound's draws, shared by every seed and every contestant scored
 * by a bound (the same fork gives the same times and masks).
 *
 * @returns The stream of the continuous bound.
 *
 * @example
 * ```ts
 * import { testBoundDraws } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(testBoundDraws().next(), testBoundDraws().next());
 * ```
 */
export function testBoundDraws(): Prng {
  return prng(TEST_DRAWS).fork("bound");
}

/**
 * The draws of the exact discrete bound (a fork of the test stream beside
 * {@linkcode testBoundDraws}).
 *
 * @returns The stream.
 *
 * @example
 * ```ts
 * import { exactBoundDraws, testBoundDraws } from "@d3pm/experiment";
 * import { assert } from "@std/assert";
 * assert(exactBoundDraws().next() !== testBoundDraws().next());
 * ```
 */
export function exactBoundDraws(): Prng {
  return prng(TEST_DRAWS).fork("exact");
}

/**
 * A contestant's validation: `score` over the run's valid blocks with the
 * validation draws (a fresh stream of the same seed at every validation).
 *
 * @param data The run's data.
 * @param score Scores a batch of blocks with the draws it is given.
 * @returns Nats per token over the valid blocks.
 *
 * @example
 * ```ts
 * import { validateOver } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const data = { valid: { data: new Uint32Array(8), count: 2, length: 4 } } as never;
 * const est = await validateOver(data, (x0) =>
 *   Promise.resolve({ nats: 1, stderr: 0, tokens: x0.batchSize * x0.length }));
 * assertEquals([est.nats, est.tokens], [1, 8]);
 * ```
 */
export function validateOver(
  data: Pick<RunData, "valid">,
  score: (x0: TokenBatch, rng: Prng) => Promise<NllEstimate>,
): Promise<NllEstimate> {
  const rng = validationDraws();
  return overBlocks(data.valid, (x0) => score(x0, rng));
}

/**
 * The continuous test bound of a denoiser on every test block, with the
 * draws every seed and every contestant shares ({@linkcode testBoundDraws})
 * and `elboSamples` draws per block.
 *
 * @param process A masked diffusion or masked language model.
 * @param model The trained denoiser.
 * @param ctx The evaluation context.
 * @param options `onProgress`: called with test blocks done and total after
 *   each batch (figures unchanged).
 * @returns Nats per token, an upper bound.
 *
 * @example A micro denoiser on two test blocks: the same figure on every call
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { maskedDiffusion } from "@d3pm/diffusion";
 * import { resolveConfig, testBound } from "@d3pm/experiment";
 * import { preset, Transformer } from "@d3pm/transformer";
 * import { assert, assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const model = new Transformer(preset("micro", { kind: "bidirectional", vocabSize: 16, contextLength: 8, dModel: 8, dMlp: 16, dTime: 8 }), { seed: 0 });
 * const process = maskedDiffusion({
 *   kind: "masked-diffusion", vocab: 16, maskId: 15, steps: 100,
 *   schedule: { kind: "log-linear" }, objective: "mdlm",
 * });
 * const ctx = {
 *   config: resolveConfig({ preset: "micro", elboSamples: 1 }),
 *   data: { test: { data: Uint32Array.from({ length: 16 }, (_, i) => i % 15), count: 2, length: 8 } },
 * } as const;
 * const bound = await testBound(process, model, ctx as never);
 * assertEquals(bound.tokens, 16);
 * assert(bound.nats > 0 && Number.isFinite(bound.nats));
 * assertEquals((await testBound(process, model, ctx as never)).nats, bound.nats); // shared draws
 * model.dispose();
 * ```
 */
export function testBound(
  process: MaskedDiffusion | MaskedLanguageModel,
  model: EvalModel,
  ctx: Pick<EvalContext, "config" | "data">,
  options: Pick<OverBlocksOptions, "onProgress"> = {},
): Promise<NllEstimate> {
  const rng = testBoundDraws();
  return overBlocks(
    ctx.data.test,
    (x0) =>
      process.bound(model, x0, { prng: rng, samples: ctx.config.elboSamples }),
    { onProgress: options.onProgress },
  );
}

/**
 * Time `config.genTokens` tokens of generation in batches of
 * `config.genBatch` rows, and judge the last batch — or, with
 * `config.genSamples` > 0, that many rows (the timed ones, then more
 * generated untimed) one by one: generative perplexity with its 95%
 * interval, and the entropy over all of them.
 *
 * @param ctx The evaluation context.
 * @param generate Generates one batch.
 * @returns Speed, generative perplexity and entropy, and the last batch.
 *
 * @example
 * ```ts
 * import { measureGeneration, resolveConfig } from "@d3pm/experiment";
 * import { prng } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const config = resolveConfig({ preset: "micro", genTokens: 64, genBatch: 1, genSamples: 0 });
 * const ctx = {
 *   config, data: {} as never, rng: prng(0),
 *   judge: () => Promise.resolve({ nats: Math.log(2), stderr: 0, tokens: 1 }),
 * };
 * const L = config.blockLength;
 * const out = await measureGeneration(ctx, () =>
 *   Promise.resolve({ tokens: new Int32Array(L), forwardPasses: L }));
 * assertEquals(out.speed.batches, Math.ceil(64 / L));
 * assertEquals(Math.round(out.genPpl), 2);
 * ```
 */
export async function measureGeneration(
  ctx: EvalContext,
  generate: () => Promise<{ tokens: Int32Array; forwardPasses: number }>,
): Promise<SpeedQuality & { tokens: Int32Array }> {
  const { config: c } = ctx;
  let tokens: Int32Array = new Int32Array(0);
  const batches: Int32Array[] = [];
  const speed = await measureSpeed(async () => {
    const out = await generate();
    tokens = out.tokens;
    batches.push(out.tokens);
    return out.forwardPasses;
  }, {
    totalTokens: c.genTokens,
    batchSize: c.genBatch,
    length: c.blockLength,
  });
  if (c.genSamples === 0) {
    const q = await generativePerplexity(tokens, c.blockLength, ctx.judge);
    return {
      speed,
      genPpl: q.genPpl,
      entropy: sampleEntropy(tokens, c.blockLength),
      tokens,
    };
  }
  const judged = await judgedRows(ctx, batches, generate);
  return { ...judged, speed, tokens };
}

/** `genSamples` rows judged one by one (see {@linkcode measureGeneration}). */
async function judgedRows(
  ctx: EvalContext,
  batches: Int32Array[],
  generate: () => Promise<{ tokens: Int32Array }>,
): Promise<Omit<SpeedQuality, "speed">> {
  const { config: c } = ctx;
  const L = c.blockLength;
  const generated = rowProgress("generate", c.genSamples, ctx);
  let have = batches.reduce((a, b) => a + b.length / L, 0);
  while (have < c.genSamples) {
    const out = await generate();
    batches.push(out.tokens);
    have += out.tokens.length / L;
    generated?.(Math.min(have, c.genSamples));
  }
  const rows = new Int32Array(c.genSamples * L);
  let at = 0;
  for (const b of batches) {
    const take = Math.min(b.length, rows.length - at);
    rows.set(b.subarray(0, take), at);
    at += take;
    if (at === rows.length) break;
  }
  const judged = rowProgress("judge", c.genSamples, ctx);
  let done = 0;
  const judge = judged
    ? async (x0: TokenBatch) => {
      const est = await ctx.judge(x0);
      judged(done += x0.batchSize);
      return est;
    }
    : ctx.judge;
  const { nlls, tokens } = await perSampleNll(rows, L, judge);
  const q = perplexityInterval(nlls, tokens);
  return {
    genPpl: q.genPpl,
    genPplInterval: { low: q.low, high: q.high, samples: q.samples },
    entropy: sampleEntropy(rows, L),
  };
}

/**
 * The progress of `total` rows generated or judged (`ctx.progress`): silent
 * for its first `quietSeconds`, then training's lines on its `log`.
 */
function rowProgress(
  verb: string,
  total: number,
  ctx: Pick<EvalContext, "progress">,
): ((done: number) => void) | undefined {
  const o = ctx.progress;
  if (!o) return undefined;
  const progress = new Progress({
    label: `${verb} ${o.model}: rows`,
    total,
    interactive: false,
    quietSeconds: o.quietSeconds ?? 10,
    write: (s) => o.log(s.trimEnd()),
  });
  return (done) => progress.update(done);
}

/**
 * The report's likelihood figures of an estimate (BPT, PPL, bits per byte).
 *
 * @param est Nats per token.
 * @param ctx The evaluation context (bytes per token of the test split).
 * @param bound Whether the estimate is an upper bound (it keeps its stderr).
 * @returns The figures.
 *
 * @example
 * ```ts
 * import { likelihoodFigures } from "@d3pm/experiment";
 * import { assertAlmostEquals } from "@std/assert";
 * const ctx = { data: { facts: { bytesPerToken: 1 } } } as never;
 * const f = likelihoodFigures({ nats: Math.LN2, stderr: 0, tokens: 10 }, ctx, false);
 * assertAlmostEquals(f.bpt, 1);
 * ```
 */
export function likelihoodFigures(
  est: NllEstimate,
  ctx: Pick<EvalContext, "data">,
  bound: boolean,
): LikelihoodFigures {
  return figures(est.nats, {
    tokens: est.tokens,
    bytesPerToken: ctx.data.facts.bytesPerToken,
    bound,
    ...(bound ? { stderr: est.stderr } : {}),
  });
}

/**
 * Infilling on the first test blocks: hide `infillFraction` of the tokens
 * and fill them in at the largest step count with the ancestral sampler.
 * Every contestant draws from the same fork of the seed's stream, so all are
 * asked to fill the same positions with the same random numbers: only the
 * network differs.
 *
 * @param model The trained denoiser.
 * @param process Its process.
 * @param ctx The evaluation context.
 * @returns The infilling figures.
 *
 * @example A micro denoiser fills half of two test blocks in 4 steps
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { prng } from "@d3pm/core";
 * import { maskedDiffusion } from "@d3pm/diffusion";
 * import { infillFigures, resolveConfig } from "@d3pm/experiment";
 * import { preset, Transformer } from "@d3pm/transformer";
 * import { assert, assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const model = new Transformer(preset("micro", { kind: "bidirectional", vocabSize: 16, contextLength: 8, dModel: 8, dMlp: 16, dTime: 8 }), { seed: 0 });
 * const process = maskedDiffusion({
 *   kind: "masked-diffusion", vocab: 16, maskId: 15, steps: 100,
 *   schedule: { kind: "log-linear" }, objective: "mdlm",
 * });
 * const ctx = {
 *   config: resolveConfig({ preset: "micro", genSteps: "4", infillFraction: 0.5 }),
 *   data: { test: { data: Uint32Array.from({ length: 16 }, (_, i) => i % 15), count: 2, length: 8 } },
 *   rng: prng(0),
 * };
 * const fill = await infillFigures(model, process, ctx as never);
 * assertEquals([fill.fraction, fill.blocks], [0.5, 2]); // every test block (up to 8)
 * assertEquals(fill.hiddenFraction, fill.hidden / 16);
 * assert(fill.accuracy >= 0 && fill.accuracy <= 1);
 * model.dispose();
 * ```
 */
export async function infillFigures(
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
    blocks: rows,
  };
}

/**
 * The Transformer a contestant trains: the run's shape, with what differs
 * between contestants given.
 *
 * @param c The run's configuration.
 * @param vocabSize The tokenizer's ids.
 * @param options The network's kind, whether it reads t, and whether the
 *   run's ALiBi prior applies to it (bidirectional models only).
 * @returns The model configuration.
 *
 * @example
 * ```ts
 * import { backbone, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const c = resolveConfig({ preset: "tiny" });
 * const m = backbone(c, 4096, { kind: "bidirectional", alibi: true });
 * assertEquals([m.nLayer, m.contextLength, m.alibi], [c.nLayer, c.blockLength, c.alibi]);
 * ```
 */
export function backbone(
  c: ExperimentConfig,
  vocabSize: number,
  options: {
    kind: "causal" | "bidirectional";
    timeConditioning?: boolean;
    alibi?: boolean;
  },
): ModelConfig {
  return {
    kind: options.kind,
    vocabSize,
    contextLength: c.blockLength,
    nLayer: c.nLayer,
    nHead: c.nHead,
    dModel: c.dModel,
    dMlp: c.dMlp,
    positions: c.positions,
    timeConditioning: options.timeConditioning ?? false,
    dTime: 128,
    dropout: c.dropout,
    ...(options.alibi && c.alibi > 0
      ? {
        alibi: c.alibi,
        ...(c.alibiMode === "neighbours" ? { alibiMode: c.alibiMode } : {}),
      }
      : {}),
  };
}

/**
 * A denoiser's generation for the tools: fill the request's blanks when it
 * has a prompt, else unmask a whole row (the `generate` of the D3PM and the
 * MLM).
 *
 * @param process A masked diffusion or masked language model.
 * @param model The trained denoiser.
 * @param request What to generate.
 * @returns The row and the forward passes made.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { prng, type LanguageModel, type Tensor2D, type Tensor3D } from "@d3pm/core";
 * import { maskedDiffusion } from "@d3pm/diffusion";
 * import { generateByUnmasking } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const process = maskedDiffusion({
 *   kind: "masked-diffusion", vocab: 9, maskId: 8, steps: 10,
 *   schedule: { kind: "log-linear" }, objective: "mdlm",
 * });
 * const uniform: LanguageModel = {
 *   config: { kind: "bidirectional", vocabSize: 9, contextLength: 4 },
 *   timeConditioned: false,
 *   forward: (x: Tensor2D) => tf.zeros([...x.shape, 9]) as Tensor3D,
 *   dispose() {},
 * };
 * const out = await generateByUnmasking(process, uniform, {
 *   length: 4, prng: prng(0), steps: 4, prompt: Int32Array.of(1, 8, 8, 2),
 * });
 * assertEquals([out.tokens[0], out.tokens[3]], [1, 2]); // the given tokens stay
 * ```
 */
export function generateByUnmasking(
  process: MaskedDiffusion | MaskedLanguageModel,
  model: LanguageModel | MaskedGenerator,
  request: GenerationRequest,
): Promise<SampleResult> {
  const options = {
    prng: request.prng,
    steps: request.steps,
    strategy: request.strategy,
    temperature: request.temperature,
    topP: request.topP,
    onStep: request.onStep,
    ...(request.cache !== undefined ? { cache: request.cache } : {}),
  };
  let prompt = request.prompt;
  if (!prompt && request.prefix) {
    // A text prompt: its ids fixed at the start, the rest to generate.
    if (request.prefix.length >= request.length) {
      throw new RangeError(
        `The prompt is ${request.prefix.length} tokens; it must leave room in the row of ${request.length}`,
      );
    }
    prompt = new Int32Array(request.length).fill(process.spec.maskId);
    prompt.set(request.prefix);
  }
  return prompt
    ? process.fillBlanks(model, prompt, options)
    : process.sample(model, { ...options, length: request.length });
}

/**
 * How a denoiser unmasks, for the tools: its default strategy, and its mask
 * id and `T` read from its process.
 *
 * @param strategy The sampler's default strategy.
 * @returns The `unmasking` of a masked contestant.
 *
 * @example
 * ```ts
 * import { unmaskingBy } from "@d3pm/experiment";
 * import { maskedDiffusion } from "@d3pm/diffusion";
 * import { assertEquals } from "@std/assert";
 * const p = maskedDiffusion({
 *   kind: "masked-diffusion", vocab: 9, maskId: 8, steps: 50,
 *   schedule: { kind: "log-linear" }, objective: "mdlm",
 * });
 * const u = unmaskingBy("ancestral");
 * assertEquals([u.maskId(p), u.steps(p)], [8, 50]);
 * ```
 */
export function unmaskingBy(
  strategy: "ancestral" | "confidence",
): Unmasking<MaskedDiffusion | MaskedLanguageModel> {
  return {
    strategy,
    maskId: (p) => p.spec.maskId,
    steps: (p) => p.spec.steps,
  };
}

/**
 * The fused engine's step of a denoiser: every position of the block, the
 * mask left out of the softmax (SUBS).
 *
 * @param process A masked diffusion or masked language model.
 * @param blockLength Tokens per block.
 * @returns The step's shape.
 *
 * @example
 * ```ts
 * import { maskedEngineShape } from "@d3pm/experiment";
 * import { maskedDiffusion } from "@d3pm/diffusion";
 * import { assertEquals } from "@std/assert";
 * const p = maskedDiffusion({
 *   kind: "masked-diffusion", vocab: 9, maskId: 8, steps: 50,
 *   schedule: { kind: "log-linear" }, objective: "mdlm",
 * });
 * assertEquals(maskedEngineShape(p, 32), { length: 32, excludeToken: 8 });
 * ```
 */
export function maskedEngineShape(
  process: MaskedDiffusion | MaskedLanguageModel,
  blockLength: number,
): EngineShape {
  return { length: blockLength, excludeToken: process.spec.maskId };
}

/**
 * The run's training draws as a masked process's `times` (`--t-min`,
 * `--t-max`, `--times-per`, `--full-mask-share`): none when all are MDLM's
 * defaults, so that the process (and `process.json`) is what older runs
 * saved. Shared by the D3PM and block diffusion (`--times-per block` is
 * block diffusion's only).
 *
 * @param c The run's configuration.
 * @returns `{ times }`, or nothing.
 */
export function trainingTimes(c: ExperimentConfig): {
  times?: {
    min: number;
    max: number;
    perToken: boolean;
    perBlock?: true;
    byCount?: true;
    fullMaskShare?: number;
  };
} {
  if (
    c.tMin === 0.001 && c.tMax === 1 && c.timesPer === "row" &&
    c.fullMaskShare === 0
  ) {
    return {};
  }
  return {
    times: {
      min: c.tMin,
      max: c.tMax,
      perToken: c.timesPer === "token",
      ...(c.timesPer === "block" ? { perBlock: true as const } : {}),
      ...(c.timesPer === "count" ? { byCount: true as const } : {}),
      ...(c.fullMaskShare > 0 ? { fullMaskShare: c.fullMaskShare } : {}),
    },
  };
}

/**
 * The run's staggered masking (`--stagger`, `--stagger-span`) as a masked
 * process's `stagger`: none at 0, so that the process (and `process.json`)
 * is what older runs saved. Shared by the D3PM and block diffusion.
 *
 * @param c The run's configuration.
 * @returns `{ stagger }`, or nothing.
 */
export function staggerOf(
  c: Pick<ExperimentConfig, "stagger" | "staggerSpan">,
): { stagger?: { span: number; delta: number } } {
  return c.stagger > 0
    ? { stagger: { span: c.staggerSpan, delta: c.stagger } }
    : {};
}

/**
 * The report's sentence on `--stagger` ("" without one).
 *
 * @param c The run's configuration.
 * @returns The sentence, with a trailing space.
 */
export function staggerSentence(
  c: Pick<ExperimentConfig, "stagger" | "staggerSpan">,
): string {
  if (c.stagger === 0) return "";
  const width = 1 - c.stagger;
  return `Its masking is staggered (--stagger ${c.stagger}): within each span of ${c.staggerSpan} positions each position runs the schedule on its own window of t, ${
    Number(width.toFixed(3))
  } wide, the right-hand ones masked first, so that it is generated left to right more often than not; its bound is that process's ELBO, by time draws. It generates through the JavaScript sampler reading the model's forward pass (each position revealed with its own probability), not a fused engine's generator: its speed is not comparable with an unstaggered model's on the fused engines. `;
}

/**
 * The speed–quality curve of a masked generator: for each of `--gen-steps`,
 * timed and judged generation ({@linkcode measureGeneration}) with the
 * seed's stream forked as `${fork}-${steps}`; the samples of the last.
 *
 * @param ctx The evaluation context.
 * @param fork The stream's label before the step count.
 * @param sample Generates a batch at a step count with the stream given.
 * @returns The curve and the last samples.
 */
export async function stepCurve(
  ctx: EvalContext,
  fork: string,
  sample: (steps: number, prng: Prng) => Promise<GenerateResult>,
): Promise<
  { curve: (SpeedQuality & { steps: number })[]; samples: Int32Array }
> {
  const curve: (SpeedQuality & { steps: number })[] = [];
  let samples: Int32Array = new Int32Array(0);
  for (const steps of genStepList(ctx.config)) {
    const prng = ctx.rng.fork(`${fork}-${steps}`);
    const p = ctx.progress;
    const { tokens, ...point } = await measureGeneration(
      p
        ? { ...ctx, progress: { ...p, model: `${p.model} (${steps} steps)` } }
        : ctx,
      () => sample(steps, prng),
    );
    curve.push({ ...point, steps });
    samples = tokens;
  }
  return { curve, samples };
}
