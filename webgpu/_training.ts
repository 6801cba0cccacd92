// Training on the engine: writing a batch into the step's plan, the step
// (forward, backward, clipping, AdamW, EMA in one command buffer), the
// backward alone, the evaluation of a batch with the training plan, the
// loss readings, and the per-kernel profile of a step. Private.

import { checkTrainBatch, stepDropoutSeed } from "./_engine_checks.ts";
import { embeddingIndex } from "./_layout.ts";
import { S } from "./_wgsl.ts";
import { type EngineState, fail, type TrainingState } from "./_state.ts";
import type { KernelTime, LossReading, TrainBatch } from "./types.ts";

// Check a batch for the fixed [B, T] and write it (ids, the embedding
// index, weights, t, the dropout seed of `step`) into the training plan.
function writeBatch(
  state: EngineState,
  t: TrainingState,
  batch: TrainBatch,
  step: number,
  dropoutSeed?: number,
): void {
  const c = state.config, plan = t.plan;
  if (c.dropout > 0) {
    // The masks of step k depend only on the seed and k, so a resumed run
    // draws the masks of the run it continues.
    const seed = stepDropoutSeed(state.settings.seed, step, dropoutSeed, fail);
    const words = new ArrayBuffer(8);
    new Uint32Array(words)[0] = seed;
    new Float32Array(words)[1] = c.dropout;
    state.device.queue.writeBuffer(t.scalars, S.dropSeed * 4, words);
  }
  state.writeTime(plan, batch.t, "batch.t");
  checkTrainBatch(batch, plan, c.vocabSize, fail);
  const ints = new Int32Array(plan.ints.size);
  ints.set(batch.inputs, plan.ints.tokens);
  ints.set(batch.targets, plan.ints.targets);
  embeddingIndex(batch.inputs, ints, plan.ints);
  state.device.queue.writeBuffer(plan.intBuf, 0, ints);
  state.device.queue.writeBuffer(
    plan.act,
    plan.arena.weights * 4,
    new Float32Array(batch.weights),
  );
}

/** Forward and backward without an update (see `WebGpuTransformer.backward`). */
export function backward(
  state: EngineState,
  batch: TrainBatch,
  dropoutSeed?: number,
): void {
  const t = state.trainingState("backward");
  writeBatch(state, t, batch, t.adamStep + 1, dropoutSeed);
  const encoder = state.device.createCommandEncoder();
  encoder.clearBuffer(t.grads);
  state.lastStepDispatches = state.encode(encoder, t.plan, [
    "forward",
    "backward",
  ]);
  state.submit(encoder);
}

/** One training step in one command buffer (see `WebGpuTransformer.step`). */
export function step(
  state: EngineState,
  batch: TrainBatch,
  lr: number,
  dropoutSeed?: number,
): void {
  const t = state.trainingState("step");
  if (!(Number.isFinite(lr) && lr >= 0)) {
    fail(`lr must be finite and ≥ 0, got ${lr}`);
  }
  writeBatch(state, t, batch, t.adamStep + 1, dropoutSeed);
  t.adamStep++;
  const { adam, clipNorm, emaDecay } = state.settings;
  state.device.queue.writeBuffer(
    t.scalars,
    S.lr * 4,
    new Float32Array([
      lr,
      1 - adam.beta1 ** t.adamStep,
      1 - adam.beta2 ** t.adamStep,
      clipNorm,
      Math.max(emaDecay, 0),
    ]),
  );
  const encoder = state.device.createCommandEncoder();
  encoder.clearBuffer(t.grads);
  state.lastStepDispatches = state.encode(encoder, t.plan, [
    "forward",
    "backward",
    "optimizer",
  ]);
  state.submit(encoder);
  state.counters.steps++;
}

/** A step with every dispatch timed (see `WebGpuTransformer.profileStep`). */
export async function profileStep(
  state: EngineState,
  batch: TrainBatch,
  lr: number,
): Promise<{ kernels: KernelTime[]; totalMs: number }> {
  state.trainingState("profileStep");
  if (!state.device.features.has("timestamp-query")) {
    throw new Error(
      "WebGpuTransformer: profileStep needs the device feature timestamp-query (this device lacks it)",
    );
  }
  state.profiling = true;
  try {
    step(state, batch, lr);
  } finally {
    state.profiling = false;
  }
  const { querySet, resolve, keys } = state.profile!;
  state.profile = null;
  const bytes = keys.length * 16;
  const staging = state.buffer(bytes, 0x01 | 0x08);
  try {
    const encoder = state.device.createCommandEncoder();
    encoder.resolveQuerySet(querySet, 0, keys.length * 2, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, staging, 0, bytes);
    state.submit(encoder);
    state.counters.syncs++;
    await staging.mapAsync(1);
    const stamps = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    const byKernel = new Map<string, KernelTime>();
    let totalMs = 0;
    keys.forEach((kernel, i) => {
      const ms = Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6;
      const k = byKernel.get(kernel) ?? { kernel, count: 0, ms: 0 };
      k.count++;
      k.ms += ms;
      byKernel.set(kernel, k);
      totalMs += ms;
    });
    return {
      kernels: [...byKernel.values()].sort((a, b) => b.ms - a.ms),
      totalMs,
    };
  } finally {
    state.destroy(staging, resolve);
    querySet.destroy();
  }
}

/** The loss of a batch without training (see `WebGpuTransformer.evaluate`). */
export function evaluate(state: EngineState, batch: TrainBatch): void {
  const t = state.trainingState("evaluate");
  writeBatch(state, t, batch, t.adamStep + 1);
  if (state.config.dropout > 0) {
    // Rate 0 makes every dropout mask 1 (the forward is the training one).
    state.device.queue.writeBuffer(
      t.scalars,
      S.dropRate * 4,
      new Float32Array([0]),
    );
  }
  const encoder = state.device.createCommandEncoder();
  state.encode(encoder, t.plan, ["forward", "evaluation"]);
  state.submit(encoder);
}

/** The mean evaluated loss since the last reading; one sync, then reset. */
export async function readEvaluation(
  state: EngineState,
): Promise<{ loss: number; batches: number }> {
  const t = state.trainingState("readEvaluation");
  const s = await state.read(t.scalars, 0, 8 * 4);
  state.device.queue.writeBuffer(
    t.scalars,
    S.evalSum * 4,
    new Float32Array(2),
  );
  return {
    loss: s[S.evalCount] > 0 ? s[S.evalSum] / s[S.evalCount] : NaN,
    batches: s[S.evalCount],
  };
}

/** The mean step loss since the last reading and the gradient norm; one sync. */
export async function readLoss(state: EngineState): Promise<LossReading> {
  const t = state.trainingState("readLoss");
  const s = await state.read(t.scalars, 0, 4 * 4);
  state.device.queue.writeBuffer(t.scalars, 0, new Float32Array(2));
  return {
    loss: s[S.lossSteps] > 0 ? s[S.lossSum] / s[S.lossSteps] : NaN,
    steps: s[S.lossSteps],
    gradNorm: s[S.gradNorm],
  };
}
