/**
 * Discrete diffusion for language: noise schedules, D3PM transitions
 * (absorbing, uniform, and a dense reference), MDLM's continuous-time SUBS
 * objective and D3PM's hybrid bound, exact and Monte-Carlo ELBOs, seeded
 * samplers, and a BERT-style masked language model scored by the same bound.
 * The entry point is {@linkcode maskedDiffusion}: all of it as one process.
 *
 * @example The entry point: `maskedDiffusion()`, one process object
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { prng, type LanguageModel, type Tensor2D, type Tensor3D } from "@d3pm/core";
 * import { maskedDiffusion } from "@d3pm/diffusion";
 * import { assert, assertAlmostEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const process = maskedDiffusion({
 *   kind: "masked-diffusion", vocab: 9, maskId: 8, steps: 100,
 *   schedule: { kind: "log-linear" }, objective: "mdlm",
 * });
 * const uniform: LanguageModel = { // a denoiser that knows nothing
 *   config: { kind: "bidirectional", vocabSize: 9, contextLength: 16 },
 *   timeConditioned: false,
 *   forward: (x: Tensor2D) => tf.zeros([...x.shape, 9]) as Tensor3D,
 *   dispose() {},
 * };
 * const x0 = { tokens: Int32Array.from({ length: 32 }, (_, i) => i % 8), batchSize: 2, length: 16 };
 * const loss = process.loss(uniform, x0, { prng: prng(0) }); // MDLM's objective
 * assert(Number.isFinite(loss.dataSync()[0]));
 * loss.dispose();
 * const bound = await process.bound(uniform, x0, { prng: prng(0), samples: 4 });
 * assertAlmostEquals(bound.nats, Math.log(8), 1e-5); // an upper bound: ≤ ln 8
 * const { tokens } = await process.sample(uniform, { length: 16, steps: 8, prng: prng(1) });
 * assert(!tokens.includes(8)); // no mask left
 * ```
 *
 * @module
 */
export * from "./schedule.ts";
export * from "./transition.ts";
export * from "./loss.ts";
export * from "./counts.ts";
export * from "./elbo.ts";
export * from "./sampler.ts";
export * from "./infill.ts";
export * from "./process.ts";
export * from "./mlm.ts";
export * from "./orders.ts";
export * from "./block.ts";
export * from "./stagger.ts";
