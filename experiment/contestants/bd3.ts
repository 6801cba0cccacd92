/**
 * The block diffusion contestant (`bd3`, BD3-LM): a bidirectional denoiser
 * trained with MDLM's objective within blocks of `--bd3-block` tokens, each
 * block conditioned on the clean blocks before it; scored by the sum of the
 * blocks' Monte-Carlo bounds; generating block by block. Block size 1 is an
 * autoregressive model, the whole block length is MDLM: the option places it
 * between the AR and the D3PM. Its attention layout exists on tfjs only.
 *
 * @module
 */
import { type BlockDiffusion, blockDiffusion } from "@d3pm/diffusion";
import { overBlocks } from "@d3pm/eval";
import type { LanguageModel } from "@d3pm/core";
import type { Contestant } from "../contestant.ts";
import type { EvalModel } from "../engine.ts";
import {
  backbone,
  likelihoodFigures,
  staggerOf,
  staggerSentence,
  stepCurve,
  testBoundDraws,
  trainingTimes,
  validateOver,
} from "../evaluation.ts";
import { genStepList } from "../options.ts";
import type { ResultBase, SpeedQuality } from "../results.ts";

/** The BD3 contestant's figures. */
export interface Bd3Result extends ResultBase {
  /** Discriminant. */
  model: "bd3";
  /** Tokens per block. */
  blockSize: number;
  /** Speed and quality at each step count per block. */
  curve: (SpeedQuality & { steps: number })[];
}

// Its models are tfjs Transformers: the fused engines have no block attention.
function tfjsModel(model: EvalModel): LanguageModel {
  return model as LanguageModel;
}

/**
 * The block diffusion contestant (`bd3`).
 *
 * @example Its process takes the run's block size; it runs on tfjs only
 * ```ts
 * import { BD3, resolveConfig } from "@d3pm/experiment";
 * import { assert, assertEquals } from "@std/assert";
 * const c = resolveConfig({ preset: "micro", models: "ar,bd3", bd3Block: 8, engine: "tfjs" });
 * const process = BD3.process(c, {
 *   tokenizer: { vocabSize: 260 } as never,
 *   specials: { bos: 256, eos: 257, pad: 258, mask: 259 },
 * });
 * assertEquals([process.spec.blockSize, process.spec.maskId], [8, 259]);
 * assertEquals(BD3.restore(process.toJSON()).toJSON(), process.toJSON());
 * assertEquals(BD3.modelConfig(c, 260).kind, "bidirectional");
 * assert(BD3.tfjsOnly?.includes("block attention"));
 * // It generates block by block: steps per block, up to the process's T.
 * assertEquals(
 *   [BD3.blockUnmasking?.blockSize(process), BD3.blockUnmasking?.steps(process)],
 *   [8, process.spec.steps],
 * );
 * ```
 */
export const BD3: Contestant<BlockDiffusion> = {
  kind: "bd3",
  label: { short: "BD3", title: "BD3 (block diffusion, MDLM loss in blocks)" },
  help: "block diffusion, see --bd3-block",
  network: "bidirectional",
  seedStream: 4,
  bound: true,
  validation: { name: "bound", bound: true },
  tfjsOnly:
    "block diffusion needs block attention, which the fused engines lack",
  streams: 2,
  startsFromWeights: true,
  // The D3PM's training draws (trainingTimes, staggerOf), not its
  // objective, shift or exact bound; it does not infill.
  reads: [
    "timeConditioning",
    "alibi",
    "alibiMode",
    "diffusionSteps",
    "tMin",
    "tMax",
    "fullMaskShare",
    "bd3Block",
    "stagger",
    "staggerSpan",
    "timesPer",
    "elboSamples",
    "genSteps",
  ],
  blockUnmasking: {
    maskId: (p) => p.spec.maskId,
    steps: (p) => p.spec.steps,
    blockSize: (p) => p.spec.blockSize,
  },
  // Steps per block over the curve; a pass reads the blocks so far (half
  // the block on average).
  generationPasses: (c) =>
    genStepList(c).reduce((a, b) => a + b, 0) * (c.blockLength / c.bd3Block) /
    2,
  report: {
    likelihood: (c) =>
      `BD3 figures are upper bounds: the sum over blocks of ${c.bd3Block} tokens of each block's Monte-Carlo continuous-time ELBO given the clean blocks before it (${c.elboSamples} draw(s) per test block ${
        c.stagger > 0 ? "by time (staggered clocks)" : "by mask count"
      }, the same draws as the D3PM's).`,
    generation: (m) =>
      `BD3 at ${(m as Bd3Result).curve.at(-1)?.steps} steps per block of ${
        (m as Bd3Result).blockSize
      }`,
    speed: (m) =>
      (m as Bd3Result).curve.map((p) => ({
        setting: `${p.steps}/block`,
        passes: p.speed.forwardPassesPerBatch,
        point: p,
      })),
    training: (c) =>
      `The BD3 trains MDLM's objective within blocks of ${c.bd3Block} tokens${
        c.tMin !== 0.001 || c.tMax !== 1
          ? ` (times drawn from [${c.tMin}, ${c.tMax}], as the D3PM's)`
          : ""
      }, reading [x_t ; x_0] (twice the block's positions per pass)${
        c.initFrom
          ? `, starting from the weights of ${c.initFrom} (the budget above counts the source's training tokens and FLOPs into the BD3's total)`
          : ""
      }. ${staggerSentence(c).replace(/^Its/, "The BD3's")}`,
  },
  sampleLabel: (m) =>
    `BD3 (blocks of ${(m as Bd3Result).blockSize}, ${
      (m as Bd3Result).curve.at(-1)?.steps
    } steps each)`,
  process: (c, data) =>
    blockDiffusion({
      kind: "block-diffusion",
      blockSize: c.bd3Block,
      vocab: data.tokenizer.vocabSize,
      maskId: data.specials.mask,
      steps: c.diffusionSteps,
      schedule: { kind: "log-linear" },
      padId: data.specials.pad,
      // The D3PM's training draws, as they apply here.
      ...trainingTimes(c),
      ...staggerOf(c),
    }),
  restore: (spec) =>
    blockDiffusion(spec as Parameters<typeof blockDiffusion>[0]),
  modelConfig: (c, vocab) =>
    backbone(c, vocab, {
      kind: "bidirectional",
      timeConditioning: c.timeConditioning,
      alibi: true,
    }),
  peakLr: (c) => c.lr,
  engine() {
    throw new RangeError(
      "The bd3 contestant has no fused-engine step: block diffusion needs block attention; use --engine tfjs",
    );
  },
  /** `deno task evaluate`: its evaluation's sum of block bounds. */
  scoring: {
    draws: true,
    score: (process, model, ctx, options) => {
      const rng = testBoundDraws();
      return overBlocks(
        ctx.data.test,
        (x0) =>
          process.bound(tfjsModel(model), x0, {
            prng: rng,
            samples: ctx.config.elboSamples,
          }),
        options,
      );
    },
  },
  validate: (process, model, data) =>
    validateOver(
      data,
      (x0, rng) => process.bound(tfjsModel(model), x0, { prng: rng }),
    ),
  async evaluate(process, model, ctx) {
    const c = ctx.config;
    const rng = testBoundDraws();
    const test = await overBlocks(
      ctx.data.test,
      (x0) =>
        process.bound(tfjsModel(model), x0, {
          prng: rng,
          samples: c.elboSamples,
        }),
    );
    const { curve, samples } = await stepCurve(
      ctx,
      "bd3-generation",
      (steps, prng) =>
        process.sample(tfjsModel(model), {
          batchSize: c.genBatch,
          length: c.blockLength,
          steps,
          prng,
        }),
    );
    const result: Omit<Bd3Result, "seed" | "parameters" | "training"> = {
      model: "bd3",
      blockSize: process.spec.blockSize,
      test: likelihoodFigures(test, ctx, true),
      generation: curve[curve.length - 1],
      curve,
    };
    return { result, samples };
  },
  generate(process, model, request) {
    if (request.prompt) {
      throw new RangeError(
        "The BD3 model generates block by block, left to right; it does not fill blanks",
      );
    }
    return process.sample(tfjsModel(model), {
      batchSize: 1,
      length: request.length,
      steps: request.steps ?? Math.min(64, process.spec.steps),
      prng: request.prng,
      temperature: request.temperature,
      topP: request.topP,
      ...(request.cache !== undefined ? { cache: request.cache } : {}),
      ...(request.prefix ? { prefix: request.prefix } : {}),
      ...(request.onStep ? { onStep: request.onStep } : {}),
    });
  },
};
