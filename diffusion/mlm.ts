/**
 * A BERT-style masked language model as a generative process: the same
 * bidirectional network, trained with BERT's objective — a fixed rate of
 * tokens replaced by the mask, cross-entropy on those tokens only — and
 * evaluated as masked diffusion would be. Its likelihood is the D3PM bound
 * computed with the MLM as the denoiser (valid, since any `p̃(x_0 | x_t)`
 * gives an upper bound, but loose: the network saw one masking rate, the
 * bound asks it about all of them); beside it, the pseudo-log-likelihood,
 * which is not a likelihood. It generates by iterative confidence
 * unmasking (MaskGIT).
 *
 * Each token is chosen with probability `rate`, and every row has at least
 * one (as BERT's pipeline has `max(1, round(0.15 n))`): a row that drew
 * none has the token of its least draw chosen, so the loss is never of
 * nothing. Masking is plain: every chosen token becomes the mask, not BERT's
 * 80/10/10 split (80% mask, 10% random, 10% kept). The network then sees
 * exactly the inputs the absorbing process makes, so the D3PM bound, the
 * sampler and the infilling ask it only what it was trained on; the 80/10/10
 * split exists for fine-tuning on unmasked text, which no evaluation here does.
 *
 * @module
 */
import {
  checkModelFits,
  type GenerativeProcess,
  isTermScorer,
  type LanguageModel,
  type MaskedGenerator,
  type NllEstimate,
  type Prng,
  type Scalar,
  type TermScorer,
  type TokenBatch,
  type WeightedTokens,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { checkBatch, checkClean } from "./_batch.ts";
import { ratioEstimate } from "./_ratio.ts";
import type { EvaluateInfillOptions, InfillEvaluation } from "./infill.ts";
import { subsCrossEntropy, tokenWeights } from "./loss.ts";
import {
  type BoundOptions,
  type MaskedDiffusion,
  maskedDiffusion,
  type ProcessSampleOptions,
  type ScheduleSpec,
} from "./process.ts";
import type { SampleResult } from "./sampler.ts";

/** The description of a masked language model (its `toJSON()`). */
export interface MaskedLanguageModelSpec {
  /** Always `masked-language-model`. */
  kind: "masked-language-model";
  /** Number of token ids, the mask included. */
  vocab: number;
  /** The mask id. */
  maskId: number;
  /** Probability that a token is masked in training (BERT: 0.15; default 0.15). */
  rate?: number;
  /** Padding id: never masked, never scored, never drawn. */
  padId?: number;
  /**
   * Steps `T` of the discrete process whose bound scores the model and whose
   * schedule paces the sampler (default 1000).
   */
  steps?: number;
  /** The noise schedule of that bound (default log-linear). */
  schedule?: ScheduleSpec;
}

/** A masked language model; a {@linkcode GenerativeProcess} of bidirectional networks. */
export interface MaskedLanguageModel extends GenerativeProcess<LanguageModel> {
  /** Its description, with every default filled in. */
  readonly spec: Required<Omit<MaskedLanguageModelSpec, "padId">> & {
    padId?: number;
  };
  /** Always false: its score is an upper bound. */
  readonly exact: false;
  /** The masked diffusion whose bound, sampler and infilling it uses. */
  readonly diffusion: MaskedDiffusion;
  /**
   * BERT's loss: mask each token with probability `rate` (at least one per
   * row: a row that drew none has its least draw masked), mean
   * cross-entropy over the masked tokens (the mask's logit left out).
   */
  loss(
    model: LanguageModel,
    batch: TokenBatch,
    options: { prng: Prng; training?: boolean },
  ): Scalar;
  /** The same loss (the same draws) as weighted token cross-entropy. */
  lossTerms(batch: TokenBatch, options: { prng: Prng }): WeightedTokens;
  /**
   * The loss as an evaluation: nats per masked token, with the standard
   * error across rows (for validation curves).
   *
   * @param model The network.
   * @param x0 Clean rows.
   * @param options Randomness of the masks.
   * @returns Nats per masked token; `tokens` counts the masked ones.
   */
  maskedNll(
    model: LanguageModel | TermScorer,
    x0: TokenBatch,
    options: { prng: Prng },
  ): Promise<NllEstimate>;
  /** The continuous D3PM bound with the MLM as the denoiser (one draw per row). */
  score(
    model: LanguageModel | TermScorer,
    x0: TokenBatch,
    options: { prng: Prng },
  ): Promise<NllEstimate>;
  /** The D3PM bound (continuous or exact) with the MLM as the denoiser. */
  bound(
    model: LanguageModel | TermScorer,
    x0: TokenBatch,
    options: BoundOptions,
  ): Promise<NllEstimate>;
  /**
   * Minus the pseudo-log-likelihood per token: `−Σ_i log p(x_i | x_{−i})`
   * over the tokens, each masked alone (one forward pass per position, all
   * rows at once). Not a likelihood: the conditionals of one sequence do
   * not multiply to a distribution, so it is no bound and compares with no
   * NLL; it is usually far below one.
   *
   * @param model The network.
   * @param x0 Clean rows.
   * @returns Nats per token, with the standard error across rows.
   */
  pseudoLogLikelihood(
    model: LanguageModel | TermScorer,
    x0: TokenBatch,
  ): Promise<NllEstimate>;
  /** Generate by confidence unmasking (`strategy` defaults to `confidence`). */
  sample(
    model: LanguageModel | MaskedGenerator,
    options: ProcessSampleOptions,
  ): Promise<SampleResult>;
  /** Fill the blanks a user chose (`strategy` defaults to `confidence`; see `MaskedDiffusion.fillBlanks`). */
  fillBlanks(
    model: LanguageModel | MaskedGenerator,
    prompt: Int32Array,
    options: Omit<ProcessSampleOptions, "prompt" | "length">,
  ): Promise<SampleResult>;
  /** Evaluate infilling: hide a random fraction of `x0`, score and fill it in (`strategy` defaults to `confidence`). */
  evaluateInfill(
    model: LanguageModel | (TermScorer & MaskedGenerator),
    x0: TokenBatch,
    options: Omit<EvaluateInfillOptions, "maskId" | "schedule">,
  ): Promise<InfillEvaluation>;
  /** The spec. */
  toJSON(): MaskedLanguageModel["spec"];
}

/**
 * The masked language model described by `spec`.
 *
 * @param spec Vocabulary, mask id, masking rate, and the bound's `T` and schedule.
 * @returns The process.
 * @throws {RangeError} On a missing or malformed field, or an unknown key.
 *
 * @example A network that knows nothing: its pseudo-log-likelihood is ln 8 per token
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { prng, type LanguageModel, type Tensor2D, type Tensor3D } from "@d3pm/core";
 * import { maskedLanguageModel } from "@d3pm/diffusion";
 * import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const mlm = maskedLanguageModel({ kind: "masked-language-model", vocab: 9, maskId: 8 });
 * assertEquals(mlm.spec.rate, 0.15);
 * assertEquals(maskedLanguageModel(JSON.parse(JSON.stringify(mlm))).toJSON(), mlm.toJSON());
 * const uniform: LanguageModel = {
 *   config: { kind: "bidirectional", vocabSize: 9, contextLength: 16 },
 *   timeConditioned: false,
 *   forward: (x: Tensor2D) => tf.zeros([...x.shape, 9]) as Tensor3D,
 *   dispose() {},
 * };
 * const x0 = { tokens: Int32Array.from({ length: 32 }, (_, i) => i % 8), batchSize: 2, length: 16 };
 * const pll = await mlm.pseudoLogLikelihood(uniform, x0);
 * assertAlmostEquals(pll.nats, Math.log(8), 1e-5); // the mask is never predicted
 * const out = await mlm.sample(uniform, { length: 16, steps: 8, prng: prng(1) });
 * assert(!out.tokens.includes(8));
 * ```
 */
export function maskedLanguageModel(
  spec: MaskedLanguageModelSpec,
): MaskedLanguageModel {
  const { s, diffusion } = checkSpec(spec);
  const { maskId, padId } = s;
  const draws = (x0: TokenBatch, prng: Prng) =>
    bertDraws(x0, { rate: s.rate, maskId, padId, prng });
  // Another vocabulary or a causal network gave plausible numbers.
  const fits = (model: object, who: string) =>
    checkModelFits(
      model,
      { kind: "bidirectional", vocabSize: s.vocab },
      `Masked language model ${who}`,
    );
  // Σ per row of the SUBS cross-entropy at the masked positions of each
  // input, on a tfjs model or a term scorer (one call for all inputs).
  const rowSums = async (
    model: LanguageModel | TermScorer,
    inputs: Int32Array[],
    x0: TokenBatch,
    who: string,
  ): Promise<Float64Array[]> => {
    refuseTimeConditioned(model);
    fits(model, who);
    const { batchSize: b, length: l, tokens } = x0;
    if (isTermScorer(model)) {
      return await model.rowLosses(inputs.map((xt) => ({
        rows: b,
        length: l,
        inputs: xt,
        targets: xt.map((x, i) => (x === maskId ? tokens[i] : -1)),
        weights: Float32Array.from(xt, (x) => (x === maskId ? 1 : 0)),
        excludeToken: maskId,
      })));
    }
    const out: Float64Array[] = [];
    for (const xt of inputs) {
      const perRow = tf.tidy(() =>
        subsCrossEntropy(
          model.forward(tf.tensor2d(xt, [b, l], "int32"), { training: false }),
          tokens,
          xt,
          maskId,
        ).sum(1)
      );
      out.push(Float64Array.from(await perRow.data()));
      perRow.dispose();
    }
    return out;
  };
  return {
    name: "mlm",
    spec: s,
    exact: false,
    diffusion,
    loss(model, batch, { prng, training }) {
      checkBatch(batch);
      checkClean(s, batch);
      refuseTimeConditioned(model);
      fits(model, "loss");
      const { xt, count } = draws(batch, prng);
      return tf.tidy(() => {
        const logits = model.forward(
          tf.tensor2d(xt, [batch.batchSize, batch.length], "int32"),
          { training: training ?? true },
        );
        return subsCrossEntropy(logits, batch.tokens, xt, maskId).sum()
          .div(Math.max(count, 1)) as Scalar;
      });
    },
    lossTerms(batch, { prng }) {
      checkBatch(batch);
      checkClean(s, batch);
      const { xt, count } = draws(batch, prng);
      const targets = new Int32Array(xt.length);
      const weights = new Float32Array(xt.length);
      for (let i = 0; i < xt.length; i++) {
        const scored = xt[i] === maskId;
        targets[i] = scored ? batch.tokens[i] : -1;
        weights[i] = scored ? 1 / Math.max(count, 1) : 0;
      }
      return {
        rows: batch.batchSize,
        length: batch.length,
        inputs: xt,
        targets,
        weights,
        excludeToken: maskId,
      };
    },
    async maskedNll(model, x0, { prng }) {
      checkBatch(x0);
      checkClean(s, x0);
      const { xt } = draws(x0, prng);
      const [sums] = await rowSums(model, [xt], x0, "maskedNll");
      const counts = new Float64Array(x0.batchSize);
      for (let i = 0; i < xt.length; i++) {
        if (xt[i] === maskId) counts[Math.floor(i / x0.length)]++;
      }
      return ratioEstimate(sums, counts, "the masked loss");
    },
    score: (model, x0, { prng }) => diffusion.bound(model, x0, { prng }),
    bound: (model, x0, options) => diffusion.bound(model, x0, options),
    async pseudoLogLikelihood(model, x0) {
      checkBatch(x0);
      checkClean(s, x0);
      const { batchSize: b, length: l, tokens } = x0;
      const w = tokenWeights(x0, padId);
      const sums = new Float64Array(b), counts = new Float64Array(b);
      for (let i = 0; i < w.length; i++) counts[Math.floor(i / l)] += w[i];
      const inputs: Int32Array[] = [];
      for (let i = 0; i < l; i++) {
        // Position i masked alone, in every row where it counts.
        const xt = tokens.slice();
        let any = false;
        for (let r = 0; r < b; r++) {
          if (w[r * l + i] > 0) {
            xt[r * l + i] = maskId;
            any = true;
          }
        }
        if (any) inputs.push(xt);
      }
      for (
        const row of await rowSums(model, inputs, x0, "pseudoLogLikelihood")
      ) {
        for (let r = 0; r < b; r++) sums[r] += row[r];
      }
      return ratioEstimate(sums, counts, "the pseudo-log-likelihood");
    },
    sample: (model, options) =>
      diffusion.sample(model, {
        ...options,
        strategy: options.strategy ?? "confidence",
      }),
    fillBlanks: (model, prompt, options) =>
      diffusion.fillBlanks(model, prompt, {
        ...options,
        strategy: options.strategy ?? "confidence",
      }),
    evaluateInfill: (model, x0, options) =>
      diffusion.evaluateInfill(model, x0, {
        ...options,
        strategy: options.strategy ?? "confidence",
      }),
    toJSON: () => structuredClone(s),
  };
}

/**
 * BERT's corruption: each non-padding token masked with probability `rate`,
 * and at least one per row (as BERT's data pipeline masks
 * `max(1, round(rate · n))` per sequence): a row that drew none has the
 * token whose draw came nearest masking it (its least draw) masked. No draw
 * is added, so every row that drew a mask is as before; without the
 * minimum a short row often drew none (0.85⁸ = 27% of 8-token rows), and a
 * batch of such rows had no loss to learn from (a step of loss 0) or to
 * validate with.
 */
function bertDraws(
  x0: TokenBatch,
  options: { rate: number; maskId: number; padId?: number; prng: Prng },
): { xt: Int32Array; count: number } {
  const { rate, maskId, padId, prng } = options;
  const { length } = x0;
  const xt = x0.tokens.slice();
  let count = 0;
  for (let row = 0; row < x0.batchSize; row++) {
    let least = Infinity, at = -1, drawn = false;
    for (let i = row * length; i < (row + 1) * length; i++) {
      if (xt[i] === padId) continue;
      const u = prng.next();
      if (u < rate) {
        xt[i] = maskId;
        count++;
        drawn = true;
      } else if (u < least) [least, at] = [u, i];
    }
    if (!drawn && at >= 0) {
      xt[at] = maskId;
      count++;
    }
  }
  return { xt, count };
}

function refuseTimeConditioned(model: { timeConditioned: boolean }): void {
  if (model.timeConditioned) {
    throw new RangeError(
      "A masked language model is not time-conditioned: build its network with timeConditioning false",
    );
  }
}

const KEYS = ["kind", "vocab", "maskId", "rate", "padId", "steps", "schedule"];

function checkSpec(
  spec: MaskedLanguageModelSpec,
): { s: MaskedLanguageModel["spec"]; diffusion: MaskedDiffusion } {
  const fail = (what: string): never => {
    throw new RangeError(`Invalid masked language model: ${what}`);
  };
  if (typeof spec !== "object" || spec === null) fail("expected an object");
  for (const k of Object.keys(spec)) {
    if (!KEYS.includes(k)) {
      fail(`unknown key "${k}"; accepted: ${KEYS.join(", ")}`);
    }
  }
  if (spec.kind !== "masked-language-model") {
    fail(
      `kind must be "masked-language-model", got ${JSON.stringify(spec.kind)}`,
    );
  }
  const rate = spec.rate ?? 0.15;
  if (typeof rate !== "number" || !(rate > 0 && rate < 1)) {
    fail(`rate must be in (0, 1), got ${JSON.stringify(spec.rate)}`);
  }
  const s: MaskedLanguageModel["spec"] = {
    kind: spec.kind,
    vocab: spec.vocab,
    maskId: spec.maskId,
    rate,
    ...(spec.padId !== undefined ? { padId: spec.padId } : {}),
    steps: spec.steps ?? 1000,
    schedule: structuredClone(spec.schedule ?? { kind: "log-linear" as const }),
  };
  try {
    // The masked diffusion checks vocab, ids, steps and schedule.
    const diffusion = maskedDiffusion({
      kind: "masked-diffusion",
      vocab: s.vocab,
      maskId: s.maskId,
      steps: s.steps,
      schedule: s.schedule,
      objective: "mdlm",
      ...(s.padId !== undefined ? { padId: s.padId } : {}),
    });
    return { s, diffusion };
  } catch (e) {
    return fail(
      (e as Error).message.replace("Invalid masked diffusion process: ", ""),
    );
  }
}
