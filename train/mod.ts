/**
 * Training: AdamW with decoupled weight decay, warm-up + cosine learning rate,
 * clipping by global norm, EMA of weights, gradient accumulation, the loop
 * (an exported function with hooks), atomic checkpoints with exact resume,
 * an append-only metrics log and a progress line.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { train, warmupCosine } from "@d3pm/train";
 * import { assert } from "@std/assert";
 * await tf.setBackend("cpu");
 * // Fit w so that w · token ≈ 1 for tokens 1..4.
 * const w = tf.variable(tf.scalar(0));
 * const blocks = { data: Uint32Array.of(1, 2, 3, 4), count: 2, length: 2 };
 * const result = await train({
 *   variables: new Map([["w", w]]),
 *   loss: (batch) => tf.tidy(() => w.mul(tf.tensor(batch.tokens, undefined, "float32")).sub(1).square().mean()) as tf.Scalar,
 *   blocks, batchSize: 1, steps: 300, lr: warmupCosine({ peak: 0.05, warmup: 10, total: 300 }),
 *   adamw: { weightDecay: 0 }, progress: false,
 * });
 * assert(result.lastLoss < 0.5);
 * result.optimizer.dispose();
 * ```
 *
 * @module
 */
export * from "./adamw.ts";
export * from "./lr_schedule.ts";
export * from "./clip.ts";
export * from "./ema.ts";
export * from "./metrics.ts";
export * from "./progress.ts";
export * from "./checkpoint.ts";
export * from "./loop.ts";
export * from "./config_diff.ts";
