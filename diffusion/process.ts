/**
 * Masked (absorbing-state) diffusion as one object: the schedule, the
 * transition, the mask id and the objective chosen once, then `loss`,
 * `score`/`bound`, `sample`, `fillBlanks` (the user's blanks),
 * `evaluateInfill` (random blanks, to measure) and `toJSON`. A run folder stores
 * `toJSON()`; `maskedDiffusion(json)` rebuilds the same process.
 *
 * @module
 */
import {
  checkModelFits,
  type GenerativeProcess,
  type LanguageModel,
  type MaskedGenerator,
  type NllEstimate,
  type Prng,
  type Scalar,
  type TermScorer,
  type TokenBatch,
  type WeightedTokens,
} from "@d3pm/core";
import { continuousElbo, discreteElbo } from "./elbo.ts";
import {
  evaluateInfill,
  type EvaluateInfillOptions,
  type InfillEvaluation,
} from "./infill.ts";
import { d3pmLoss, mdlmLoss, mdlmTerms } from "./loss.ts";
import { sample, type SampleOptions, type SampleResult } from "./sampler.ts";
import {
  type ContinuousSchedule,
  cosineAlpha,
  type DiscreteSchedule,
  discretize,
  linearAlpha,
  logLinear,
} from "./schedule.ts";
import { absorbing, type Transition } from "./transition.ts";
import { checkStagger, type Stagger, staggeredTime } from "./stagger.ts";
import { checkClean } from "./_batch.ts";

/** A noise schedule by name: the continuous `alpha(t)` it follows. */
export type ScheduleSpec =
  | { kind: "log-linear"; eps?: number }
  | { kind: "linear" }
  | { kind: "cosine" };

/** The description of a masked diffusion process (its `toJSON()`). */
export interface MaskedDiffusionSpec {
  /** Always `masked-diffusion`. */
  kind: "masked-diffusion";
  /** Number of token ids, the mask included. */
  vocab: number;
  /** The absorbing (mask) id. */
  maskId: number;
  /** Steps `T` of the discrete process (samplers and the exact bound). */
  steps: number;
  /** The noise schedule. */
  schedule: ScheduleSpec;
  /** `mdlm` (continuous SUBS objective) or `d3pm` (discrete hybrid loss). */
  objective: "mdlm" | "d3pm";
  /** Padding id: never masked, never scored, never drawn. */
  padId?: number;
  /**
   * How the `mdlm` loss draws times (training only; bounds always use all of
   * [0, 1]): the range `[min, max]` (default [0.001, 1]; a clipped range is
   * BD3-LM's variance reduction), one time per row or per token, or
   * (`byCount`) one mask count per row ({@linkcode drawByCount}), and
   * (`fullMaskShare`, default 0) the share of rows trained fully masked at
   * t = 1 (`mdlmLoss`'s `fullMaskShare`).
   */
  times?: {
    min?: number;
    max?: number;
    perToken?: boolean;
    byCount?: boolean;
    fullMaskShare?: number;
  };
  /**
   * Staggered masking ({@linkcode Stagger}; default none): each position of
   * a span on its own clock, the right-hand ones masked first. Training,
   * bounds (by time: a count per row assumes one clock) and samplers (the
   * JavaScript one) follow it; not with `objective: "d3pm"`,
   * `times.byCount` or `times.fullMaskShare`.
   */
  stagger?: Stagger;
}

/** Options of {@linkcode MaskedDiffusion.bound}. */
export interface BoundOptions {
  /** Randomness of the times and masks. */
  prng: Prng;
  /**
   * `continuous` (default): the Monte-Carlo continuous-time ELBO;
   * `exact`: the discrete-time bound with all `T` terms (T passes per batch).
   */
  kind?: "continuous" | "exact";
  /** Time draws per row for `continuous` (default 1). */
  samples?: number;
  /**
   * How `continuous` draws (default `count`: a mask count per row, no `1/t`
   * weight, lower variance; `time`: a time per row). Both estimate the same
   * bound. A staggered process draws by time (its default; `count` is
   * refused).
   */
  draws?: "time" | "count";
}

/** Options of {@linkcode MaskedDiffusion.sample}: {@linkcode SampleOptions} less what the process fixes. */
export type ProcessSampleOptions = Omit<SampleOptions, "schedule" | "maskId">;

/** A masked diffusion process; a {@linkcode GenerativeProcess} of denoisers. */
export interface MaskedDiffusion extends GenerativeProcess<LanguageModel> {
  /** Its description. */
  readonly spec: MaskedDiffusionSpec;
  /** Always false: scores are upper bounds. */
  readonly exact: false;
  /** The continuous schedule. */
  readonly continuous: ContinuousSchedule;
  /** Its discretisation with `T` steps. */
  readonly discrete: DiscreteSchedule;
  /** The absorbing transition over `vocab` states. */
  readonly transition: Transition;
  /** The training objective on a batch. */
  loss(
    model: LanguageModel,
    batch: TokenBatch,
    options: { prng: Prng; training?: boolean },
  ): Scalar;
  /** The `mdlm` loss as weighted token cross-entropy (the `d3pm` objective has none). */
  lossTerms(batch: TokenBatch, options: { prng: Prng }): WeightedTokens;
  /** The continuous bound with one time draw per row (the `GenerativeProcess` score). */
  score(
    model: LanguageModel | TermScorer,
    x0: TokenBatch,
    options: { prng: Prng },
  ): Promise<NllEstimate>;
  /**
   * The NLL bound of a batch: Monte-Carlo continuous or exact discrete.
   *
   * @param model The denoiser.
   * @param x0 Clean rows.
   * @param options Which bound and its randomness.
   * @returns Nats per token (an upper bound) with its standard error.
   */
  bound(
    model: LanguageModel | TermScorer,
    x0: TokenBatch,
    options: BoundOptions,
  ): Promise<NllEstimate>;
  /**
   * Generate from all-masked rows, or fill in a prompt's masked positions.
   * Caching follows `model.timeConditioned` (see `sample`).
   */
  sample(
    model: LanguageModel | MaskedGenerator,
    options: ProcessSampleOptions,
  ): Promise<SampleResult>;
  /**
   * Fill the blanks a user chose: the positions of `prompt` holding the mask
   * id are generated, every other token is kept (the sampler with a prompt).
   *
   * @param model The denoiser.
   * @param prompt `batchSize × length` ids (`options.batchSize`, default 1).
   * @param options Steps, strategy, randomness and draw shaping.
   * @returns The filled rows and the forward passes made.
   */
  fillBlanks(
    model: LanguageModel | MaskedGenerator,
    prompt: Int32Array,
    options: Omit<ProcessSampleOptions, "prompt" | "length">,
  ): Promise<SampleResult>;
  /**
   * Evaluate infilling: hide a random fraction of `x0`, score the hidden
   * tokens and fill them in ({@linkcode evaluateInfill}).
   *
   * @param model The denoiser.
   * @param x0 Clean rows.
   * @param options The fraction, steps and randomness.
   * @returns Accuracy and NLL of the hidden tokens.
   */
  evaluateInfill(
    model: LanguageModel | (TermScorer & MaskedGenerator),
    x0: TokenBatch,
    options: Omit<EvaluateInfillOptions, "maskId" | "schedule">,
  ): Promise<InfillEvaluation>;
  /** The spec. */
  toJSON(): MaskedDiffusionSpec;
}

/**
 * The masked diffusion process described by `spec`.
 *
 * @param spec Vocabulary, mask id, `T`, schedule and objective.
 * @returns The process.
 * @throws {RangeError} On a missing or malformed field, or an unknown key.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { prng, type LanguageModel, type Tensor2D, type Tensor3D } from "@d3pm/core";
 * import { maskedDiffusion } from "@d3pm/diffusion";
 * import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const process = maskedDiffusion({
 *   kind: "masked-diffusion", vocab: 9, maskId: 8, steps: 100,
 *   schedule: { kind: "log-linear" }, objective: "mdlm",
 * });
 * // Rebuilt from its JSON, it is the same process.
 * assertEquals(maskedDiffusion(JSON.parse(JSON.stringify(process))).toJSON(), process.toJSON());
 * const uniform: LanguageModel = {
 *   config: { kind: "bidirectional", vocabSize: 9, contextLength: 16 },
 *   timeConditioned: false,
 *   forward: (x: Tensor2D) => tf.zeros([...x.shape, 9]) as Tensor3D,
 *   dispose() {},
 * };
 * const x0 = { tokens: Int32Array.from({ length: 64 }, (_, i) => i % 8), batchSize: 4, length: 16 };
 * const est = await process.bound(uniform, x0, { prng: prng(0), samples: 8 });
 * assertAlmostEquals(est.nats, Math.log(8), 1e-6); // uniform over 8 ids: exact by count (f32)
 * const byTime = await process.bound(uniform, x0, { prng: prng(0), samples: 8, draws: "time" });
 * assert(Math.abs(byTime.nats - Math.log(8)) < 4 * byTime.stderr); // the same in expectation
 * const out = await process.sample(uniform, { length: 16, steps: 8, prng: prng(1) });
 * assert(!out.tokens.includes(8));
 * ```
 */
export function maskedDiffusion(spec: MaskedDiffusionSpec): MaskedDiffusion {
  const s = checkSpec(spec);
  const continuous = scheduleOf(s.schedule);
  const discrete = discretize(continuous, { steps: s.steps });
  const transition = absorbing(discrete, {
    numStates: s.vocab,
    maskId: s.maskId,
  });
  const padId = s.padId;
  const suppress = padId !== undefined ? [padId] : [];
  // Only a stagger that moves a clock changes anything (delta 0 or span 1
  // is MDLM's process, drawn exactly as without one).
  const stagger = s.stagger && s.stagger.delta > 0 && s.stagger.span > 1
    ? s.stagger
    : undefined;
  const positionAlphaBar = stagger
    ? (index: number, k: number) => {
      // As discretize(): the schedule's alpha at each step but the last,
      // where every position is masked.
      if (k >= s.steps) return 0;
      return continuous.alpha(staggeredTime(stagger, index, k / s.steps).tau);
    }
    : undefined;
  // A causal decoder or another vocabulary gave plausible losses and bounds,
  // and samples with ids past the vocabulary.
  const fits = (model: object, who: string): true => {
    checkModelFits(
      model,
      { kind: "bidirectional", vocabSize: s.vocab },
      `Masked diffusion ${who}`,
    );
    return true;
  };
  const bound = (
    model: LanguageModel | TermScorer,
    x0: TokenBatch,
    options: BoundOptions,
  ): Promise<NllEstimate> => {
    const kind = options.kind ?? "continuous";
    if (kind !== "continuous" && kind !== "exact") {
      throw new RangeError(
        `bound: kind must be "continuous" or "exact", got ${
          JSON.stringify(kind)
        }`,
      );
    }
    checkClean(s, x0);
    fits(model, "bound");
    if (stagger && kind === "exact") {
      throw new RangeError(
        "The exact discrete bound follows one clock for every position; a staggered process has the continuous bound only",
      );
    }
    return kind === "continuous"
      ? continuousElbo(model, x0, {
        schedule: continuous,
        maskId: s.maskId,
        prng: options.prng,
        samples: options.samples,
        draws: options.draws ?? (stagger ? "time" : "count"),
        padId,
        ...(stagger ? { stagger } : {}),
      })
      : discreteElbo(model, x0, { transition, prng: options.prng, padId });
  };
  return {
    name: s.objective,
    spec: s,
    exact: false,
    continuous,
    discrete,
    transition,
    loss: (model, batch, { prng, training }) =>
      checkClean(s, batch) && fits(model, "loss") && s.objective === "mdlm"
        ? mdlmLoss(model, batch, {
          schedule: continuous,
          maskId: s.maskId,
          prng,
          padId,
          training,
          tMin: s.times?.min,
          tMax: s.times?.max,
          perToken: s.times?.perToken,
          byCount: s.times?.byCount,
          fullMaskShare: s.times?.fullMaskShare,
          ...(stagger ? { stagger } : {}),
        })
        : d3pmLoss(model, batch, { transition, prng, padId, training }),
    lossTerms(batch, { prng }) {
      checkClean(s, batch);
      if (s.objective !== "mdlm") {
        throw new RangeError(
          `The ${s.objective} objective has no weighted cross-entropy form (its loss is a sum of KL terms); train it on the tfjs engine`,
        );
      }
      return mdlmTerms(batch, {
        schedule: continuous,
        maskId: s.maskId,
        prng,
        padId,
        tMin: s.times?.min,
        tMax: s.times?.max,
        perToken: s.times?.perToken,
        byCount: s.times?.byCount,
        fullMaskShare: s.times?.fullMaskShare,
        ...(stagger ? { stagger } : {}),
      });
    },
    score: (model, x0, { prng }) => bound(model, x0, { prng }),
    bound,
    sample: (model, options) =>
      checkPrompt(s, options.prompt) && fits(model, "sample") &&
      sample(model, {
        ...options,
        schedule: discrete,
        ...(positionAlphaBar ? { positionAlphaBar } : {}),
        maskId: s.maskId,
        suppress: [...suppress, ...(options.suppress ?? [])],
      }),
    fillBlanks: (model, prompt, options) =>
      checkPrompt(s, prompt) && fits(model, "fillBlanks") && sample(model, {
        ...options,
        prompt,
        schedule: discrete,
        ...(positionAlphaBar ? { positionAlphaBar } : {}),
        maskId: s.maskId,
        suppress: [...suppress, ...(options.suppress ?? [])],
      }),
    evaluateInfill: (model, x0, options) =>
      checkClean(s, x0) && fits(model, "evaluateInfill") &&
      evaluateInfill(model, x0, {
        ...options,
        ...(positionAlphaBar ? { positionAlphaBar } : {}),
        maskId: s.maskId,
        schedule: discrete,
        suppress: [...suppress, ...(options.suppress ?? [])],
      }),
    toJSON: () => structuredClone(s),
  };
}

/** A prompt's ids are in the vocabulary (the mask id marks the blanks). */
function checkPrompt(s: MaskedDiffusionSpec, prompt?: Int32Array): true {
  for (let i = 0; prompt && i < prompt.length; i++) {
    if (!(prompt[i] >= 0 && prompt[i] < s.vocab)) {
      throw new RangeError(
        `prompt: id ${
          prompt[i]
        } at index ${i} is outside the vocabulary [0, ${s.vocab}) (the mask id ${s.maskId} marks a blank)`,
      );
    }
  }
  return true;
}

function scheduleOf(spec: ScheduleSpec): ContinuousSchedule {
  switch (spec.kind) {
    case "log-linear":
      return logLinear({ eps: spec.eps });
    case "linear":
      return linearAlpha();
    case "cosine":
      return cosineAlpha();
  }
}

const KEYS = [
  "kind",
  "vocab",
  "maskId",
  "steps",
  "schedule",
  "objective",
  "padId",
  "times",
  "stagger",
];

function checkSpec(spec: MaskedDiffusionSpec): MaskedDiffusionSpec {
  const fail = (what: string): never => {
    throw new RangeError(`Invalid masked diffusion process: ${what}`);
  };
  if (typeof spec !== "object" || spec === null) fail("expected an object");
  for (const k of Object.keys(spec)) {
    if (!KEYS.includes(k)) {
      fail(`unknown key "${k}"; accepted: ${KEYS.join(", ")}`);
    }
  }
  if (spec.kind !== "masked-diffusion") {
    fail(`kind must be "masked-diffusion", got ${JSON.stringify(spec.kind)}`);
  }
  const int = (k: string, v: unknown, min: number) => {
    if (v === undefined) fail(`${k} is missing: an integer ≥ ${min}`);
    if (!Number.isInteger(v) || (v as number) < min) {
      fail(`${k} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    }
  };
  int("vocab", spec.vocab, 2);
  int("steps", spec.steps, 1);
  int("maskId", spec.maskId, 0);
  if (spec.maskId >= spec.vocab) {
    fail(`maskId ${spec.maskId} is not below vocab ${spec.vocab}`);
  }
  if (spec.padId !== undefined) {
    int("padId", spec.padId, 0);
    if (spec.padId >= spec.vocab || spec.padId === spec.maskId) {
      fail(`padId ${spec.padId} must be below vocab and differ from maskId`);
    }
  }
  if (spec.objective !== "mdlm" && spec.objective !== "d3pm") {
    fail(
      `objective must be "mdlm" or "d3pm", got ${
        JSON.stringify(spec.objective)
      }`,
    );
  }
  const sch = spec.schedule as Record<string, unknown> | undefined;
  const kinds = ["log-linear", "linear", "cosine"];
  if (
    typeof sch !== "object" || sch === null ||
    !kinds.includes(sch.kind as string)
  ) {
    fail(
      `schedule.kind must be one of ${kinds.join(", ")}, got ${
        JSON.stringify(sch?.kind)
      }`,
    );
  }
  const extra = Object.keys(sch!).filter((k) =>
    k !== "kind" && !(k === "eps" && sch!.kind === "log-linear")
  );
  if (extra.length) fail(`unknown schedule key "${extra[0]}"`);
  scheduleOf(sch as ScheduleSpec); // validates eps
  if (spec.times !== undefined) checkTimes(spec.times, fail);
  if (spec.stagger !== undefined) {
    try {
      checkStagger(spec.stagger);
      const extra = Object.keys(spec.stagger).find((k) =>
        k !== "span" && k !== "delta"
      );
      if (extra) throw new RangeError(`unknown stagger key "${extra}"`);
    } catch (e) {
      fail((e as Error).message);
    }
    if (
      spec.objective === "d3pm" || spec.times?.byCount ||
      (spec.times?.fullMaskShare ?? 0) > 0
    ) {
      fail(
        "stagger needs the mdlm objective drawn by time (not d3pm, times.byCount or times.fullMaskShare)",
      );
    }
  }
  return structuredClone(spec);
}

function checkTimes(
  times: NonNullable<MaskedDiffusionSpec["times"]>,
  fail: (what: string) => never,
): void {
  if (typeof times !== "object" || times === null) {
    fail("times must be an object");
  }
  for (const k of Object.keys(times)) {
    if (!["min", "max", "perToken", "byCount", "fullMaskShare"].includes(k)) {
      fail(
        `unknown times key "${k}"; accepted: min, max, perToken, byCount, fullMaskShare`,
      );
    }
  }
  const min = times.min ?? 1e-3, max = times.max ?? 1;
  if (!(min >= 0 && min < max && max <= 1)) {
    fail(`times need 0 ≤ min < max ≤ 1, got min ${min}, max ${max}`);
  }
  if (times.perToken !== undefined && typeof times.perToken !== "boolean") {
    fail("times.perToken must be true or false");
  }
  if (times.byCount !== undefined && typeof times.byCount !== "boolean") {
    fail("times.byCount must be true or false");
  }
  const share = times.fullMaskShare ?? 0;
  if (!(typeof share === "number" && share >= 0 && share <= 1)) {
    fail(`times.fullMaskShare must be a number in [0, 1], got ${share}`);
  }
  if (times.byCount && times.perToken) {
    fail(
      "times.byCount draws one mask count per row; it cannot be combined with perToken",
    );
  }
}
