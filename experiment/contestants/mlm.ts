/**
 * The masked language model: the D3PM's bidirectional backbone trained with
 * BERT's objective (15% of tokens masked, cross-entropy on them), evaluated
 * on the D3PM's tasks — its bound with the MLM as the denoiser, on the same
 * draws; infilling of the same positions; generation by confidence
 * unmasking — plus the pseudo-log-likelihood, which is not a likelihood.
 *
 * @module
 */
import { type MaskedLanguageModel, maskedLanguageModel } from "@d3pm/diffusion";
import { fixed, markdownTable, overBlocks, summarize } from "@d3pm/eval";
import type {
  Contestant,
  ContestantReport,
  ReportContext,
} from "../contestant.ts";
import {
  backbone,
  generateByUnmasking,
  INFILL_BLOCKS,
  infillFigures,
  likelihoodFigures,
  maskedEngineShape,
  measureGeneration,
  testBound,
  unmaskingBy,
  validateOver,
} from "../evaluation.ts";
import { genStepList } from "../options.ts";
import type { ExperimentResult, MlmResult } from "../results.ts";

/** BERT's masking rate, the MLM's only one. */
const MLM_RATE = 0.15;

const REPORT: ContestantReport = {
  likelihood: () =>
    "The MLM's figures are the same bound (the same draws) with the MLM as the denoiser: valid, but loose — it was trained at one masking rate, the bound asks about all of them. It generates by confidence unmasking.",
  generation: (m) =>
    `MLM at ${(m as MlmResult).genSteps} steps (confidence unmasking)`,
  speed: (m) => [{
    setting: `MLM ${(m as MlmResult).genSteps} (confidence)`,
    passes: m.generation.speed.forwardPassesPerBatch,
    point: m.generation,
  }],
  training: () =>
    "The MLM's validation is its own loss, nats per masked token, with fixed masks — not comparable with the others; its plateau exit reads that loss.",
  sections: (r, others) => [comparisonSection(r, others)],
};

/**
 * The masked language model contestant (`mlm`).
 *
 * @example
 * ```ts
 * import { MLM, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const c = resolveConfig({ preset: "micro", timeConditioning: true });
 * assertEquals(MLM.modelConfig(c, 260).timeConditioning, false); // never reads t
 * assertEquals(MLM.unmasking?.strategy, "confidence");
 * ```
 */
export const MLM: Contestant<MaskedLanguageModel> = {
  kind: "mlm",
  label: { short: "MLM", title: "MLM (BERT objective, D3PM bound)" },
  help: "the BERT objective on the D3PM's backbone",
  network: "bidirectional",
  seedStream: 3,
  bound: true,
  validation: { name: "masked loss", bound: false },
  // Its process's T; the D3PM's bound draws; the unmasking and infilling
  // steps; not the D3PM's training draws, objective or t.
  reads: [
    "alibi",
    "alibiMode",
    "diffusionSteps",
    "elboSamples",
    "genSteps",
    "infillFraction",
  ],
  unmasking: unmaskingBy("confidence"),
  report: REPORT,
  sampleLabel: (m) =>
    `MLM (confidence unmasking, ${(m as MlmResult).genSteps} steps)`,
  process: (c, data) =>
    maskedLanguageModel({
      kind: "masked-language-model",
      vocab: data.tokenizer.vocabSize,
      maskId: data.specials.mask,
      rate: MLM_RATE,
      padId: data.specials.pad,
      steps: c.diffusionSteps,
      schedule: { kind: "log-linear" },
    }),
  restore: (spec) =>
    maskedLanguageModel(spec as Parameters<typeof maskedLanguageModel>[0]),
  modelConfig: (c, vocab) =>
    backbone(c, vocab, { kind: "bidirectional", alibi: true }),
  peakLr: (c) => c.lr,
  engine: maskedEngineShape,
  /** `deno task evaluate`: the D3PM bound with the D3PM's draws. */
  scoring: { draws: true, score: testBound },
  /** Its own loss (nats per masked token) on the valid blocks, with fixed masks. */
  validate: (process, model, data) =>
    validateOver(
      data,
      (x0, rng) => process.maskedNll(model, x0, { prng: rng }),
    ),
  async evaluate(process, model, ctx) {
    const { config: c, data } = ctx;
    // The same draws as the D3PM's bound: the same times and masks.
    const test = await testBound(process, model, ctx);
    const rows = Math.min(INFILL_BLOCKS, data.test.count);
    const pll = await overBlocks(
      data.test,
      (x0) => process.pseudoLogLikelihood(model, x0),
      { maxBlocks: rows, batchSize: rows },
    );
    const steps = Math.max(...genStepList(c));
    const genRng = ctx.rng.fork("mlm-generation");
    const { tokens: samples, ...generation } = await measureGeneration(
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
      test: likelihoodFigures(test, ctx, true),
      pll: { ...pll, rows },
      generation,
      genSteps: steps,
      infill: await infillFigures(model, process, ctx),
    };
    return { result, samples };
  },
  generate: generateByUnmasking,
};

/**
 * Every contestant of the run side by side, mean ± sd across seeds: the
 * MLM's answer to how a one-rate masked model compares with the diffusion
 * model.
 */
function comparisonSection(r: ExperimentResult, others: ReportContext): string {
  const kinds = [...new Set(r.results.map((m) => m.model))];
  const stat = (xs: number[], digits: number, prefix = "") => {
    if (xs.length === 0) return "–";
    const s = summarize(xs);
    return `${prefix}${fixed(s.mean, digits)}${
      s.n > 1 ? ` ± ${fixed(s.sd, digits)}` : ""
    }`;
  };
  const rows = kinds.map((k) => {
    const list = r.results.filter((m) => m.model === k);
    const fills = list.flatMap((m) => m.infill ? [m.infill] : []);
    const mlm = list.filter((m): m is MlmResult => m.model === "mlm");
    return [
      others.label(k).short,
      list.length,
      stat(fills.map((f) => f.accuracy), 3),
      stat(fills.map((f) => f.nll), 2),
      stat(list.map((m) => m.generation.genPpl), 0),
      stat(list.map((m) => m.generation.entropy), 2),
      stat(list.map((m) => m.test.nll), 2, list[0].test.bound ? "≤ " : ""),
      stat(mlm.map((m) => m.pll.nats), 2),
    ];
  });
  const mlm = r.results.find((m): m is MlmResult => m.model === "mlm");
  const title = kinds.map((k) => others.label(k).short);
  return `## ${title.slice(0, -1).join(", ")} and ${
    title.at(-1)
  } (mean ± sd across seeds)

Infilling: ${
    fixed(100 * r.config.infillFraction, 0)
  }% of the first test blocks hidden; the models that infill fill the same blanks (the AR model does
not infill). Generation: gen PPL under the judge and per-sample entropy; ${
    r.results.filter((m, i, all) =>
      all.findIndex((x) => x.model === m.model) === i
    ).map((m) => others.generation(m)).join(", ")
  }. Likelihood (NLL, nats per token): exact for AR; for the D3PM and the
MLM the same continuous bound (the same draws), with the network as the denoiser — for the MLM valid but loose, as
it was trained at one masking rate (${
    fixed(100 * (mlm?.rate ?? MLM_RATE), 0)
  }%) and the bound asks about every rate. PLL: minus the MLM's
pseudo-log-likelihood per token (each token masked alone) — **not a likelihood**, no bound on one, and not comparable
with the NLL column.

${
    markdownTable([
      "Model",
      "seeds",
      "infill exact-match",
      "infill NLL (nats)",
      "gen PPL (judge)",
      "entropy",
      "NLL (nats; ≤: bound)",
      "PLL (not a likelihood)",
    ], rows)
  }`;
}
