/**
 * The autoregressive process, the peer of `@d3pm/diffusion`: next-token
 * loss, exact NLL, KV-cached generation, and `autoregressive()` — one object
 * with `loss`, `score`, `sample` and `toJSON`, the same shape as
 * `maskedDiffusion()`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { prng } from "@d3pm/core";
 * import { autoregressive } from "@d3pm/autoregressive";
 * import { Transformer, preset } from "@d3pm/transformer";
 * import { assert, assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const model = new Transformer(
 *   preset("micro", { kind: "causal", vocabSize: 16, contextLength: 8 }),
 *   { seed: 0 },
 * );
 * const ar = autoregressive({ kind: "autoregressive", start: 1 });
 * const x0 = { tokens: Int32Array.from({ length: 16 }, (_, i) => i % 16), batchSize: 2, length: 8 };
 * const est = await ar.score(model, x0);
 * assert(Math.abs(est.nats - Math.log(16)) < 0.5); // an untrained model is near uniform
 * const out = await ar.sample(model, { batchSize: 2, length: 8, prng: prng(0) });
 * assertEquals(out.tokens.length, 16);
 * model.dispose();
 * ```
 *
 * @module
 */
export * from "./loss.ts";
export * from "./generate.ts";
export * from "./process.ts";
