// Training on the CPU engine: writing a batch into the step's plan, the step
// (forward, backward, clipping, AdamW, EMA: the plan's segments run in
// order), the backward alone, the evaluation of a batch with the training
// plan, and the loss readings. Private.

import { embeddingIndex } from "@d3pm/webgpu/plan";
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
  const n = p.batch * p.length;
  if (c.dropout > 0) {
    if (
      dropoutSeed !== undefined &&
      !(Number.isInteger(dropoutSeed) && dropoutSeed >= 0 &&
        dropoutSeed < 2 ** 32)
    ) {
      fail(`dropoutSeed must be a u32, got ${dropoutSeed}`);
    }
    // The WebGPU engine's seed of step k: a resumed run draws the same masks.
    s.dropSeed = dropoutSeed ??
      ((Math.imul(state.settings.seed ^ 0x9e3779b9, 0x85ebca6b) +
        Math.imul(step, 0xc2b2ae35)) >>> 0);
    s.dropRate = c.dropout;
  }
  for (const key of ["inputs", "targets", "weights"] as const) {
    const arr = batch[key];
    if (!(arr instanceof (key === "weights" ? Float32Array : Int32Array))) {
      fail(
        `batch.${key} must be a ${
          key === "weights" ? "Float32Array" : "Int32Array"
        }`,
      );
    }
    if (arr.length !== n) {
      fail(
        `batch.${key} must hold B·T = ${p.batch}·${p.length} = ${n} values, got ${arr.length}`,
      );
    }
  }
  state.checkIds(batch.inputs, "batch.inputs");
  for (let i = 0; i < n; i++) {
    if (batch.targets[i] >= c.vocabSize) {
      fail(
        `batch.targets[${i}] must be < ${c.vocabSize} (negative: ignored), got ${
          batch.targets[i]
        }`,
      );
    }
  }
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
