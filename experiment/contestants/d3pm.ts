/**
 * The D3PM contestant: a bidirectional denoiser trained with absorbing-state
 * masked diffusion (MDLM's continuous objective, or D3PM's discrete hybrid
 * loss), scored by the Monte-Carlo continuous bound and the exact discrete
 * bound, generating by ancestral unmasking at several step counts, and
 * infilling.
 *
 * @module
 */
import { type MaskedDiffusion, maskedDiffusion } from "@d3pm/diffusion";
import { fixed, markdownTable, overBlocks } from "@d3pm/eval";
import type { Contestant, ContestantReport } from "../contestant.ts";
import type { EvalModel } from "../engine.ts";
import {
  backbone,
  type EvalContext,
  exactBoundDraws,
  generateByUnmasking,
  infillFigures,
  likelihoodFigures,
  maskedEngineShape,
  staggerOf,
  staggerSentence,
  stepCurve,
  testBound,
  trainingTimes,
  unmaskingBy,
  validateOver,
} from "../evaluation.ts";
import type { ExperimentConfig } from "../options.ts";
import type { RunData } from "../data.ts";
import type { D3pmResult, ExperimentResult } from "../results.ts";

/** Options of {@linkcode d3pmContestant}. */
export interface D3pmOptions {
  /**
   * How validation draws its bound: by mask `count` (default) or by `time`
   * (as the ablation's first rows were measured).
   */
  validDraws?: "time" | "count";
}

/**
 * The D3PM contestant (`d3pm`); {@linkcode D3PM} is the one registered.
 *
 * @param options How validation draws.
 * @returns The contestant.
 *
 * @example
 * ```ts
 * import { d3pmContestant, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const d3pm = d3pmContestant({ validDraws: "time" });
 * const c = resolveConfig({ preset: "micro", timeConditioning: true });
 * assertEquals(d3pm.modelConfig(c, 260).timeConditioning, true);
 * const process = d3pm.process(c, {
 *   tokenizer: { vocabSize: 260 } as never,
 *   specials: { bos: 256, eos: 257, pad: 258, mask: 259 },
 * });
 * assertEquals(d3pm.engine(process, 32), { length: 32, excludeToken: 259 });
 * assertEquals(d3pm.restore(process.toJSON()).toJSON(), process.toJSON());
 * ```
 */
export function d3pmContestant(
  options: D3pmOptions = {},
): Contestant<MaskedDiffusion> {
  return {
    kind: "d3pm",
    label: { short: "D3PM", title: "D3PM (absorbing, MDLM loss)" },
    network: "bidirectional",
    seedStream: 2,
    bound: true,
    validation: { name: "bound", bound: true },
    startsFromWeights: true,
    annealsAttention: true,
    reads: [
      "timeConditioning",
      "alibi",
      "alibiMode",
      "diffusionLoss",
      "diffusionSteps",
      "tMin",
      "tMax",
      "fullMaskShare",
      "shift",
      "stagger",
      "staggerSpan",
      "timesPer",
      "elboSamples",
      "exactBlocks",
      "genSteps",
      "infillFraction",
    ],
    // A staggered process has no exact discrete bound (see d3pmBounds).
    exactBound: (c) => c.stagger === 0,
    unmasking: unmaskingBy("ancestral"),
    report: REPORT,
    sampleLabel: (m) => `D3PM (${(m as D3pmResult).curve.at(-1)?.steps} steps)`,
    process: d3pmProcess,
    restore: (spec) =>
      maskedDiffusion(spec as Parameters<typeof maskedDiffusion>[0]),
    modelConfig: (c, vocab) => ({
      ...backbone(c, vocab, {
        kind: "bidirectional",
        timeConditioning: c.timeConditioning,
        alibi: true,
      }),
      ...(c.shift ? { shift: true } : {}),
    }),
    peakLr: (c) => c.lr,
    engine: maskedEngineShape,
    /** `deno task evaluate`: the continuous bound (the exact one is not redone). */
    scoring: { draws: true, score: testBound },
    /**
     * The continuous bound on the valid blocks with one fixed set of draws,
     * the same at every validation: the curve is smooth and its steps
     * comparable.
     */
    validate: (process, model, data) =>
      validateOver(
        data,
        (x0, rng) =>
          process.bound(model, x0, { prng: rng, draws: options.validDraws }),
      ),
    async evaluate(process, model, ctx) {
      const bounds = await d3pmBounds(model, process, ctx);
      const { curve, samples } = await d3pmCurve(model, process, ctx);
      const infill = await infillFigures(model, process, ctx);
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
    generate: generateByUnmasking,
  };
}

/** The D3PM's process in a run: MDLM's schedule and the run's objective and training times. */
function d3pmProcess(
  c: ExperimentConfig,
  data: Pick<RunData, "tokenizer" | "specials">,
): MaskedDiffusion {
  return maskedDiffusion({
    kind: "masked-diffusion",
    vocab: data.tokenizer.vocabSize,
    maskId: data.specials.mask,
    steps: c.diffusionSteps,
    schedule: { kind: "log-linear" },
    objective: c.diffusionLoss,
    padId: data.specials.pad,
    ...trainingTimes(c),
    ...staggerOf(c),
  });
}

/** The Monte-Carlo bound on every test block and the exact one on the first few. */
async function d3pmBounds(
  model: EvalModel,
  process: MaskedDiffusion,
  ctx: EvalContext,
): Promise<Pick<D3pmResult, "test" | "exact">> {
  const { config: c, data } = ctx;
  const test = await testBound(process, model, ctx);
  // A staggered process has no exact discrete bound (it assumes one clock).
  if (c.exactBlocks === 0 || process.spec.stagger) {
    return { test: likelihoodFigures(test, ctx, true) };
  }
  const exactRng = exactBoundDraws();
  const e = await overBlocks(
    data.test,
    (x0) => process.bound(model, x0, { prng: exactRng, kind: "exact" }),
    { maxBlocks: c.exactBlocks, batchSize: c.exactBlocks },
  );
  return {
    test: likelihoodFigures(test, ctx, true),
    exact: {
      ...likelihoodFigures(e, ctx, true),
      rows: Math.min(c.exactBlocks, data.test.count),
    },
  };
}

/** Speed and quality at each step count; the samples of the last. */
function d3pmCurve(
  model: EvalModel,
  process: MaskedDiffusion,
  ctx: EvalContext,
): Promise<{ curve: D3pmResult["curve"]; samples: Int32Array }> {
  const c = ctx.config;
  return stepCurve(ctx, "generation", (steps, prng) =>
    process.sample(model, {
      batchSize: c.genBatch,
      length: c.blockLength,
      steps,
      prng,
    }));
}

/** The D3PM's parts of the report. */
const REPORT: ContestantReport = {
  likelihood: (c) =>
    `D3PM figures are upper bounds over all L tokens of each test block (Monte-Carlo continuous-time ELBO with its standard error, ${c.elboSamples} draw(s) per test block ${
      c.stagger > 0 ? "by time (staggered clocks)" : "by mask count"
    }, the same draws for every seed).`,
  generation: (m) =>
    `D3PM at ${(m as D3pmResult).curve.at(-1)?.steps} steps (ancestral)`,
  speed: (m) =>
    (m as D3pmResult).curve.map((p) => ({
      setting: String(p.steps),
      passes: p.speed.forwardPassesPerBatch,
      point: p,
    })),
  training: (c) =>
    `${
      c.tMin !== 0.001 || c.tMax !== 1
        ? `The D3PM's training loss draws t from [${c.tMin}, ${c.tMax}] (a clipped mask rate): it is a training objective, not the bound — the validation curve and the test figures are the bound. `
        : ""
    }${
      c.fullMaskShare > 0
        ? `A share ${c.fullMaskShare} of its training rows is fully masked, at t = 1. `
        : ""
    }${
      c.initFrom
        ? `The D3PM starts from the weights of ${c.initFrom} (the budget above counts the source's training tokens and FLOPs into the D3PM's total, as results.json's training.initFrom holds them; an imported checkpoint's training is not known, and not counted)${
          c.annealSteps
            ? `, its attention relaxed from causal to bidirectional over the first ${c.annealSteps} steps`
            : ""
        }. `
        : ""
    }${
      c.shift ? "Its position i predicts token i + 1 (DiffuGPT's shift). " : ""
    }${
      staggerSentence(c)
    }The D3PM's validation is its bound with one fixed set of draws, the same at every validation.`,
  sections: (r) => [exactSection(r)],
};

function exactSection(r: ExperimentResult): string {
  const c = r.config;
  const rows = r.results.filter((m): m is D3pmResult => m.model === "d3pm")
    .flatMap((m) =>
      m.exact
        ? [[
          m.seed,
          `≤ ${fixed(m.test.nll, 3)} ± ${fixed(m.test.stderr, 3)}`,
          `≤ ${fixed(m.exact.nll, 3)}${
            m.exact.rows > 1 && Number.isFinite(m.exact.stderr)
              ? ` ± ${fixed(m.exact.stderr, 3)}`
              : " (one draw: no error bar)"
          } (${m.exact.tokens} tokens)`,
        ]]
        : []
    );
  // The blocks it ran on (fewer than --exact-blocks on a shorter test split).
  const blocks =
    r.results.find((m): m is D3pmResult =>
      m.model === "d3pm" && (m as D3pmResult).exact !== undefined
    )?.exact?.rows ?? c.exactBlocks;
  return `## Exact discrete bound vs Monte-Carlo continuous bound (D3PM)

Exact: all T = ${c.diffusionSteps} terms plus the prior term, on the first ${blocks} test block(s); each
block is one random draw of the masks at every step, so its error bar comes from the spread across blocks.

${
    rows.length
      ? markdownTable([
        "Seed",
        "continuous (all eval blocks)",
        "exact discrete",
      ], rows)
      : c.stagger > 0
      ? "(skipped: a staggered process has no exact discrete bound: it assumes one clock for every position)"
      : "(skipped: --exact-blocks 0)"
  }`;
}

/**
 * The D3PM contestant, as registered.
 *
 * @example The run's objective and diffusion steps become its process
 * ```ts
 * import { contestantOf, D3PM, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(contestantOf("d3pm"), D3PM);
 * const c = resolveConfig({ preset: "micro", diffusionLoss: "d3pm", diffusionSteps: 100 });
 * const process = D3PM.process(c, {
 *   tokenizer: { vocabSize: 260 } as never,
 *   specials: { bos: 256, eos: 257, pad: 258, mask: 259 },
 * });
 * assertEquals([process.spec.objective, process.spec.steps, process.spec.maskId], ["d3pm", 100, 259]);
 * assertEquals([D3PM.bound, D3PM.modelConfig(c, 260).kind], [true, "bidirectional"]);
 * ```
 */
export const D3PM: Contestant<MaskedDiffusion> = d3pmContestant();
