// Weights and optimiser state in and out of the CPU engine: the parameter
// table as named tensors (the tfjs model's names and shapes, copies), the
// gradients, the EMA, and AdamW's step count and moments in the tfjs
// `AdamW.state()` shape, restored exactly for a bit-identical resume.
// Private.

import type { StoredTensor } from "@d3pm/core";
import { joinWeights, splitWeights } from "@d3pm/webgpu/plan";
import { type EngineState, fail } from "./_state.ts";
import type { CpuAdamWState } from "./engine.ts";

/** Every parameter by name, in canonical order (copies). */
export function getWeights(state: EngineState): Map<string, StoredTensor> {
  state.check();
  return splitWeights(state.config, state.params);
}

/** Overwrite every parameter (exact names and shapes); moments are kept. */
export function setWeights(
  state: EngineState,
  weights: ReadonlyMap<string, StoredTensor>,
): void {
  state.check();
  state.params.set(
    joinWeights(state.table, weights, { what: "setWeights", fail }),
  );
}

/** The gradients of the last backward or step (before clipping), by name. */
export function readGradients(state: EngineState): Map<string, StoredTensor> {
  const t = state.trainingState("readGradients");
  return splitWeights(state.config, t.grads);
}

/** The EMA of the parameters by name (requires `emaDecay`). */
export function emaWeights(state: EngineState): Map<string, StoredTensor> {
  const t = state.trainingState("emaWeights");
  if (!t.ema) fail("emaWeights needs the emaDecay option");
  return splitWeights(state.config, t.ema);
}

/** Overwrite the EMA of the parameters (requires `emaDecay`). */
export function setEmaWeights(
  state: EngineState,
  weights: ReadonlyMap<string, StoredTensor>,
): void {
  const t = state.trainingState("setEmaWeights");
  if (!t.ema) fail("setEmaWeights needs the emaDecay option");
  t.ema.set(
    joinWeights(state.table, weights, { what: "setEmaWeights", fail }),
  );
}

/** AdamW's step count and both moments by name (copies). */
export function optimizerState(state: EngineState): CpuAdamWState {
  const t = state.trainingState("optimizerState");
  const data = (x: Map<string, StoredTensor>) =>
    new Map([...x].map(([k, w]) => [k, w.data as Float32Array]));
  return {
    step: state.adamStep,
    m: data(splitWeights(state.config, t.m)),
    v: data(splitWeights(state.config, t.v)),
  };
}

/** Restore an AdamW state exactly (resuming gives the same updates). */
export function loadOptimizerState(
  state: EngineState,
  saved: {
    step: number;
    m: ReadonlyMap<string, Float32Array>;
    v: ReadonlyMap<string, Float32Array>;
  },
): void {
  const t = state.trainingState("loadOptimizerState");
  if (!Number.isInteger(saved.step) || saved.step < 0) {
    fail(`optimizer state step must be an integer ≥ 0, got ${saved.step}`);
  }
  const wrap = (x: ReadonlyMap<string, Float32Array>) =>
    new Map(
      [...x].map((
        [k, data],
      ) => [k, { shape: state.table.byName.get(k)?.shape ?? [], data }]),
    );
  t.m.set(joinWeights(state.table, wrap(saved.m), { what: "m", fail }));
  t.v.set(joinWeights(state.table, wrap(saved.v), { what: "v", fail }));
  state.adamStep = saved.step;
}
