/**
 * Discrete diffusion for language: noise schedules, D3PM transitions
 * (absorbing, uniform, and a dense reference), MDLM's continuous-time SUBS
 * objective and D3PM's hybrid bound, exact and Monte-Carlo ELBOs, seeded
 * samplers, and a BERT-style masked language model scored by the same bound.
 *
 * @example
 * ```ts
 * import { absorbing, absorbingBeta } from "@d3pm/diffusion";
 * import { prng } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const q = absorbing(absorbingBeta({ steps: 1000 }), { numStates: 8, maskId: 7 });
 * const xt = q.noise([1, 2, 3, 4], 1000, prng(0)); // fully masked at t = T
 * assertEquals(Array.from(xt), [7, 7, 7, 7]);
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
