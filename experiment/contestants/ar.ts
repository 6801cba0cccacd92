/**
 * The autoregressive contestant: a causal decoder trained on next-token
 * cross-entropy, scored by its exact NLL, generating left to right with a
 * KV cache.
 *
 * @module
 */
import { type Autoregressive, autoregressive } from "@d3pm/autoregressive";
import { overBlocks } from "@d3pm/eval";
import type { Contestant } from "../contestant.ts";
import {
  backbone,
  likelihoodFigures,
  measureGeneration,
} from "../evaluation.ts";

/**
 * The autoregressive contestant (`ar`).
 *
 * @example
 * ```ts
 * import { AR, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const c = resolveConfig({ preset: "micro", lr: 1e-3, arLr: 4e-3 });
 * assertEquals(AR.peakLr(c), 4e-3); // its own learning rate
 * assertEquals(AR.modelConfig(c, 260).kind, "causal");
 * const process = AR.restore({ kind: "autoregressive", start: 256 });
 * assertEquals(AR.engine(process, 32), { length: 31 }); // predicts positions 1..31
 * ```
 */
export const AR: Contestant<Autoregressive> = {
  kind: "ar",
  label: { short: "AR", title: "AR (causal)" },
  network: "causal",
  seedStream: 1,
  bound: false,
  validation: { name: "NLL", bound: false },
  // Its own learning rate; none of the diffusion options.
  reads: ["arLr"],
  report: {
    likelihood: () =>
      "AR figures are exact; the AR model scores tokens 2..L of each test block.",
    generation: () => "AR left to right",
    speed: (m) => [{ setting: "AR", point: m.generation }],
  },
  process: (_c, data) =>
    autoregressive({
      kind: "autoregressive",
      start: data.specials.bos,
      padId: data.specials.pad,
      suppress: [data.specials.mask],
    }),
  restore: (spec) =>
    autoregressive(spec as Parameters<typeof autoregressive>[0]),
  modelConfig: (c, vocab) => backbone(c, vocab, { kind: "causal" }),
  peakLr: (c) => c.arLr > 0 ? c.arLr : c.lr,
  // The causal step predicts positions 1..L−1 from 0..L−2.
  engine: (_process, blockLength) => ({ length: blockLength - 1 }),
  /** `deno task evaluate`: the exact NLL of every test block. */
  scoring: {
    draws: false,
    score: (process, model, ctx, options) =>
      overBlocks(ctx.data.test, (x0) => process.score(model, x0), options),
  },
  /** Exact NLL on the valid blocks. */
  validate: (process, model, data) =>
    overBlocks(data.valid, (x0) => process.score(model, x0)),
  async evaluate(process, model, ctx) {
    const { config: c, data } = ctx;
    const test = await overBlocks(data.test, (x0) => process.score(model, x0));
    const rng = ctx.rng.fork("ar-generation");
    const { tokens: samples, ...generation } = await measureGeneration(
      ctx,
      () =>
        process.sample(model, {
          batchSize: c.genBatch,
          length: c.blockLength,
          prng: rng,
        }),
    );
    return {
      result: {
        model: "ar",
        test: likelihoodFigures(test, ctx, false),
        generation,
      },
      samples,
    };
  },
  generate(process, model, request) {
    if (request.prompt) {
      throw new RangeError(
        "The AR model generates left to right; it does not fill blanks",
      );
    }
    return process.sample(model, {
      batchSize: 1,
      length: request.length,
      prng: request.prng,
      temperature: request.temperature,
      topP: request.topP,
      ...(request.prefix ? { prefix: request.prefix } : {}),
      ...(request.onStep ? { onStep: request.onStep } : {}),
    });
  },
};
