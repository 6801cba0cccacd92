// Scoring and forward passes on the CPU engine: the weighted cross-entropy
// per row of any list of term batches (`@d3pm/core`'s `TermScorer`), logits
// for token ids, and for generation the final hidden states without the head
// and logits of chosen rows only — each on an inference plan of its shape
// over the shared inference region, in chunks of rows that fit it. Private.

import type { WeightedTokens } from "@d3pm/core";
import {
  CBLAS_NO_TRANS,
  CBLAS_ROW_MAJOR,
  CBLAS_TRANS,
} from "@d3pm/backend/cblas";
import { checkTerms } from "@d3pm/webgpu/plan";
import { type EngineState, fail, type Plan } from "./_state.ts";
import type { GenerationContext } from "./_generate.ts";

/** Longest stretch of scoring without a turn of the event loop. */
const TURN_MS = 50;

/** Weighted cross-entropy per row of each batch (see `CpuTransformer.rowLosses`). */
export async function rowLosses(
  state: EngineState,
  list: readonly WeightedTokens[],
): Promise<Float64Array[]> {
  state.check();
  // A list may hold thousands of passes (the exact bound: one per
  // diffusion step): between batches, turn the event loop now and then,
  // so that a signal listener (Ctrl-C) runs. Each batch is scored and
  // read out in one synchronous stretch of the shared region.
  const out: Float64Array[] = [];
  let turned = performance.now();
  for (let b = 0; b < list.length; b++) {
    if (performance.now() - turned > TURN_MS) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      turned = performance.now();
      state.check();
    }
    out.push(rowLossesOf(state, list[b], b));
  }
  return out;
}

// One batch of terms, checked, scored in chunks of `scoreRows` rows, summed
// per row in float64.
function rowLossesOf(
  state: EngineState,
  terms: WeightedTokens,
  b: number,
): Float64Array {
  const c = state.config, scoreRows = state.settings.scoreRows;
  const { rows, length } = terms;
  const what = `rowLosses: batch ${b}`;
  checkTerms(terms, c.contextLength, c.vocabSize, what, fail);
  const ex = terms.excludeToken;
  const sums = new Float64Array(rows);
  for (let r0 = 0; r0 < rows; r0 += scoreRows) {
    const r = Math.min(scoreRows, rows - r0);
    const p = state.plan(r, length, "score", ex ?? 0xffffffff);
    const a = r0 * length, m = r * length;
    state.writeRope(p);
    state.writeTime(p, terms.t?.subarray(r0, r0 + r), what);
    p.intView.set(terms.inputs.subarray(a, a + m), p.ints.tokens);
    p.intView.set(terms.targets.subarray(a, a + m), p.ints.targets);
    p.act.set(terms.weights.subarray(a, a + m), p.arena.weights);
    p.exec.run(["forward", "score"]);
    const loss = p.act.subarray(p.arena.rowLoss, p.arena.rowLoss + m);
    for (let i = 0; i < r; i++) {
      let s = 0;
      for (let j = 0; j < length; j++) s += loss[i * length + j];
      sums[r0 + i] = s;
    }
  }
  return sums;
}

/** Logits B·T·V for token ids (see `CpuTransformer.forwardIds`). */
export function forwardIds(
  state: EngineState,
  ids: Int32Array,
  batch: number,
  length: number,
  t?: ArrayLike<number>,
): Float32Array {
  state.check();
  const c = state.config, V = c.vocabSize;
  if (
    !Number.isInteger(batch) || batch < 1 || !Number.isInteger(length) ||
    length < 1 || length > c.contextLength || ids.length !== batch * length
  ) {
    fail(
      `forward needs 1 ≤ B, 1 ≤ T ≤ ${c.contextLength} and B·T ids, got B ${batch}, T ${length}, ${ids.length} ids`,
    );
  }
  state.checkIds(ids, "tokens");
  const out = new Float32Array(batch * length * V);
  passes(
    state,
    ids,
    batch,
    length,
    t,
    ["forward", "head"],
    (_, r0, r) =>
      out.set(
        state.evalLogits.subarray(0, r * length * V),
        r0 * length * V,
      ),
  );
  return out;
}

// The forward passes of B·T ids in chunks of rows — as many as the logits
// buffer holds at this length, but a time-conditioned model's modulations
// are per row, and the inference region holds them for `scoreRows` rows
// only — each chunk's plan run over `segments`, then `take` reads it.
function passes(
  state: EngineState,
  ids: Int32Array,
  batch: number,
  length: number,
  t: ArrayLike<number> | undefined,
  segments: string[],
  take: (p: Plan, r0: number, r: number) => void,
): void {
  const c = state.config;
  const fr = Math.max(
    1,
    Math.min(
      batch,
      Math.floor(state.evalLogits.length / (length * c.vocabSize)),
      c.timeConditioning ? state.settings.scoreRows : Infinity,
    ),
  );
  for (let r0 = 0; r0 < batch; r0 += fr) {
    const r = Math.min(fr, batch - r0);
    const p = state.plan(r, length, "forward", 0xffffffff);
    state.writeRope(p);
    state.writeTime(
      p,
      t === undefined ? undefined : Array.from(t).slice(r0, r0 + r),
      "forward",
    );
    p.intView.set(
      ids.subarray(r0 * length, (r0 + r) * length),
      p.ints.tokens,
    );
    p.exec.run(segments);
    take(p, r0, r);
  }
}

// The final hidden states (lnf, B·T·d) of forwardIds's passes (the same
// chunks, so the same products and bits) without the head: masked
// generation makes logits only for the positions it draws (headRows).
function hiddenIds(
  state: EngineState,
  ids: Int32Array,
  batch: number,
  length: number,
  t?: ArrayLike<number>,
): Float32Array {
  const d = state.config.dModel;
  state.checkIds(ids, "tokens");
  const out = new Float32Array(batch * length * d);
  passes(state, ids, batch, length, t, ["forward"], (p, r0, r) =>
    out.set(
      p.act.subarray(p.arena.lnf, p.arena.lnf + r * length * d),
      r0 * length * d,
    ));
  return out;
}

// Logits (k, V) = hidden[rows] · wteᵀ for k chosen rows of hiddenIds's
// states: one product on this thread.
function headRows(
  state: EngineState,
  hidden: Float32Array,
  rows: ArrayLike<number>,
  out: Float32Array,
): void {
  const c = state.config, V = c.vocabSize, d = c.dModel, k = rows.length;
  if (k === 0) return;
  if (state.gathered.length < k * d) state.gathered = new Float32Array(k * d);
  const gathered = state.gathered;
  for (let j = 0; j < k; j++) {
    gathered.set(hidden.subarray(rows[j] * d, (rows[j] + 1) * d), j * d);
  }
  const wte = state.table.byName.get("wte.weight")!.offset;
  state.kernels.cblas.sgemm(
    CBLAS_ROW_MAJOR,
    CBLAS_NO_TRANS,
    CBLAS_TRANS,
    k,
    V,
    d,
    1,
    gathered,
    d,
    state.params.subarray(wte, wte + V * d),
    d,
    0,
    out,
    V,
  );
}

/** What `_generate.ts` needs of the engine: its views, plans and passes. */
export function generationContext(state: EngineState): GenerationContext {
  return {
    config: state.config,
    table: state.table,
    kernels: state.kernels,
    params: state.params,
    act: state.evalAct,
    ints: state.evalInts,
    probs: state.evalProbs,
    scalars: state.scalars,
    chunkFloats: state.settings.chunkFloats,
    plans: state.decodePlans,
    hidden: (ids, b, l, t) => hiddenIds(state, ids, b, l, t),
    headRows: (hidden, rows, out) => headRows(state, hidden, rows, out),
    checkIds: (ids, what) => state.checkIds(ids, what),
  };
}
