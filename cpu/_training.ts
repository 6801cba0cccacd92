// Training on the CPU engine: writing a batch into the step's plan, the step
// (forward, backward, clipping, AdamW, EMA: the plan's segments run in
// order), the backward alone, the evaluation of a batch with the training
// plan, and the loss readings. Private.

import {
  checkTrainBatch,
  embeddingIndex,
  stepDropoutSeed,
} from "@d3pm/webgpu/plan";
import { type EngineState, fail, type TrainingState } from "./_state.ts";
import type { CpuLossReading, CpuTrainBatch } from "./engine.ts";

// Check a batch for the fixed [B, T] and write it (ids, the embedding
// index, weights, t, the dropout seed of `step`) into the training plan.
function writeBatch(
  state: EngineState,
  t: TrainingState,
  batch: CpuTrainBatch,
  step: number,
  dropoutSeed?: number,
): void {
  const p = t.plan, c = state.config, s = state.scalars;
  if (c.dropout > 0) {
    // The WebGPU engine's seed of step k: a resumed run draws the same masks.
    s.dropSeed = stepDropoutSeed(state.settings.seed, step, dropoutSeed, fail);
    s.dropRate = c.dropout;
  }
  checkTrainBatch(batch, p, c.vocabSize, fail);
  state.writeTime(p, batch.t, "batch.t");
  p.intView.set(batch.inputs, p.ints.tokens);
  p.intView.set(batch.targets, p.ints.targets);
  embeddingIndex(batch.inputs, p.intView, p.ints);
  p.act.set(batch.weights, p.arena.weights);
}

/** Forward and backward without an update (see `CpuTransformer.backward`). */
export function backward(
  state: EngineState,
  batch: CpuTrainBatch,
  options: { dropoutSeed?: number },
): void {
  const t = state.trainingState("backward");
  writeBatch(state, t, batch, state.adamStep + 1, options.dropoutSeed);
  t.grads.fill(0);
  t.plan.exec.run(["forward", "backward"]);
}

/** One training step at `lr` (see `CpuTransformer.step`). */
export function step(
  state: EngineState,
  batch: CpuTrainBatch,
  lr: number,
  options: { dropoutSeed?: number },
): void {
  const t = state.trainingState("step");
  if (!(Number.isFinite(lr) && lr >= 0)) {
    fail(`lr must be finite and ≥ 0, got ${lr}`);
  }
  writeBatch(state, t, batch, state.adamStep + 1, options.dropoutSeed);
  state.adamStep++;
  state.scalars.lr = lr;
  state.scalars.step = state.adamStep;
  t.grads.fill(0);
  t.plan.exec.run(["forward", "backward", "optimizer"]);
}

/** A batch's loss into the evaluation accumulator, no dropout (see `CpuTransformer.evaluate`). */
export function evaluate(state: EngineState, batch: CpuTrainBatch): void {
  const t = state.trainingState("evaluate");
  writeBatch(state, t, batch, state.adamStep + 1);
  state.scalars.dropRate = 0;
  t.plan.exec.run(["forward", "evaluation"]);
}

/** The mean loss of the batches evaluated since the last reading; resets. */
export function readEvaluation(
  state: EngineState,
): { loss: number; batches: number } {
  state.trainingState("readEvaluation");
  const s = state.scalars;
  const out = {
    loss: s.evalCount > 0 ? Math.fround(s.evalSum) / s.evalCount : NaN,
    batches: s.evalCount,
  };
  s.evalSum = 0;
  s.evalCount = 0;
  return out;
}

/** The mean step loss since the last reading and the last gradient norm; resets. */
export function readLoss(state: EngineState): CpuLossReading {
  state.trainingState("readLoss");
  const s = state.scalars;
  const out = {
    loss: s.lossSteps > 0 ? s.lossSum / s.lossSteps : NaN,
    steps: s.lossSteps,
    gradNorm: s.gradNorm,
  };
  s.lossSum = 0;
  s.lossSteps = 0;
  return out;
}
