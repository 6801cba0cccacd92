// Scoring on the engine: the weighted cross-entropy per row of any list of
// term batches (`@d3pm/core`'s `TermScorer`, one sync for the list), and
// logits for token ids — each on an inference plan of its shape, a few
// kept. Private.

import type { WeightedTokens } from "@d3pm/core";
import { checkTerms } from "./_engine_checks.ts";
import { type EngineState, fail, type Plan } from "./_state.ts";

/** Inference plans kept (forward and scoring shapes together). */
const PLANS = 4;

// The forward or scoring plan of a shape (and excluded id), cached.
function plan(
  state: EngineState,
  batch: number,
  length: number,
  mode: "forward" | "score",
  exclude = 0xffffffff,
): Plan {
  return state.plans<Plan>("inference", PLANS).get(
    `${mode}:${batch}x${length}:${exclude}`,
    () => state.buildPlan(batch, length, mode, exclude),
  );
}

// Check one batch of terms; returns its positions.
function checkBatchTerms(
  state: EngineState,
  terms: WeightedTokens,
  k: number,
): number {
  const c = state.config;
  checkTerms(
    terms,
    c.contextLength,
    c.vocabSize,
    `rowLosses: batch ${k}`,
    fail,
  );
  return terms.rows * terms.length;
}

/** Per batch of terms, its rows' weighted sums (see `WebGpuTransformer.rowLosses`). */
export async function rowLosses(
  state: EngineState,
  list: readonly WeightedTokens[],
): Promise<Float64Array[]> {
  state.check();
  if (list.length === 0) return [];
  const total = list.reduce(
    (s, terms, k) => s + checkBatchTerms(state, terms, k),
    0,
  );
  const out = state.buffer(total * 4, 0x04 | 0x08); // COPY_SRC | COPY_DST
  try {
    let at = 0;
    for (const terms of list) {
      const n = terms.rows * terms.length;
      const p = plan(
        state,
        terms.rows,
        terms.length,
        "score",
        terms.excludeToken ?? 0xffffffff,
      );
      state.writeTime(p, terms.t, "rowLosses: t");
      const ints = new Int32Array(p.ints.size);
      ints.set(terms.inputs, p.ints.tokens);
      ints.set(terms.targets, p.ints.targets);
      state.device.queue.writeBuffer(p.intBuf, 0, ints);
      state.device.queue.writeBuffer(
        p.act,
        p.arena.weights * 4,
        Float32Array.from(terms.weights),
      );
      const encoder = state.device.createCommandEncoder();
      state.encode(encoder, p, ["forward", "score"]);
      encoder.copyBufferToBuffer(
        p.act,
        p.arena.rowLoss * 4,
        out,
        at * 4,
        n * 4,
      );
      state.submit(encoder);
      at += n;
    }
    const losses = await state.read(out, 0, total * 4);
    at = 0;
    return list.map(({ rows, length }) => {
      const sums = new Float64Array(rows);
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let j = 0; j < length; j++) s += losses[at + r * length + j];
        sums[r] = s;
      }
      at += rows * length;
      return sums;
    });
  } finally {
    state.destroy(out);
  }
}

/** Logits B·T·V for token ids (see `WebGpuTransformer.forwardIds`); one sync. */
export async function forwardIds(
  state: EngineState,
  ids: Int32Array,
  batch: number,
  length: number,
  t?: ArrayLike<number>,
): Promise<Float32Array> {
  state.check();
  const c = state.config;
  if (
    !Number.isInteger(batch) || batch < 1 || !Number.isInteger(length) ||
    length < 1 || length > c.contextLength ||
    ids.length !== batch * length
  ) {
    fail(
      `forward needs 1 ≤ B, 1 ≤ T ≤ ${c.contextLength} and B·T ids, got B ${batch}, T ${length}, ${ids.length} ids`,
    );
  }
  state.checkIds(ids, "tokens");
  const p = plan(state, batch, length, "forward");
  state.writeTime(p, t, "forward");
  const ints = new Int32Array(p.ints.size);
  ints.set(ids, p.ints.tokens);
  state.device.queue.writeBuffer(p.intBuf, 0, ints);
  const encoder = state.device.createCommandEncoder();
  state.encode(encoder, p, ["forward", "head"]);
  return await state.read(
    p.logits!,
    0,
    batch * length * c.vocabSize * 4,
    encoder,
  );
}
