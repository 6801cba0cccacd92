// Causal generation on the engine: the decode plan of a (B, L) — one step
// with the KV cache that serves every position (_decode.ts) — and the
// generation that chains all L − 1 steps in one command buffer. Private.

import type { CausalGenerationOptions, Generation } from "@d3pm/core";
import {
  type DecodeArena,
  type DecodeInts,
  planDecode,
  recordDecode,
} from "./_decode.ts";
import type { Dispatch } from "./_recorder.ts";
import { drawSettings, recordDraw, suppressList } from "./_draw.ts";
import { dispatchAll, type EngineState, fail } from "./_state.ts";

/** Decode plans kept. */
const PLANS = 2;

interface DecodePlan {
  batch: number;
  length: number;
  arena: DecodeArena;
  ints: DecodeInts;
  act: GPUBuffer;
  intBuf: GPUBuffer;
  lists: Map<string, Dispatch[]>;
  owned: GPUBuffer[];
}

function buildDecodePlan(
  state: EngineState,
  batch: number,
  length: number,
): DecodePlan {
  const c = state.config;
  const { arena, ints } = planDecode(
    c,
    batch,
    length,
    state.settings.chunkFloats,
  );
  const act = state.buffer(arena.size * 4);
  const intBuf = state.buffer(ints.size * 4);
  const rec = state.recorder(act, intBuf, undefined, {
    matmul: state.settings.decodeMatmul,
    attention: state.settings.decodeAttention,
  });
  recordDecode(rec, c, state.table, arena, ints, batch, length);
  const { lists, uniform } = state.finish(rec);
  state.writeRope(act, arena.cos, arena.sin, length);
  return {
    batch,
    length,
    arena,
    ints,
    act,
    intBuf,
    lists,
    owned: [act, intBuf, uniform],
  };
}

/** Rows generated with the KV cache (see `WebGpuTransformer.generateCausal`). */
export async function generateCausal(
  state: EngineState,
  options: CausalGenerationOptions,
): Promise<Generation> {
  state.check();
  const c = state.config;
  const { batchSize: b, length: l, start } = options;
  if (c.kind !== "causal" || c.timeConditioning) {
    fail("generateCausal needs a causal model without time conditioning");
  }
  if (!Number.isInteger(b) || b < 1 || b > 65535 / c.nHead) {
    fail(
      `batchSize must be an integer in [1, ${
        Math.floor(65535 / c.nHead)
      }], got ${b}`,
    );
  }
  const maxL = Math.min(c.contextLength, 3072);
  if (!Number.isInteger(l) || l < 2 || l > maxL) {
    fail(`length must be an integer in [2, ${maxL}], got ${l}`);
  }
  if (!(Number.isInteger(start) && start >= 0 && start < c.vocabSize)) {
    fail(`start must be a token id in [0, ${c.vocabSize}), got ${start}`);
  }
  const draw = drawSettings(options);
  const prefix = Int32Array.from(options.prefix ?? []);
  if (prefix.length > l - 1) {
    fail(
      `generateCausal: the prefix has ${prefix.length} ids; at most length − 1 = ${
        l - 1
      } fit after the start token`,
    );
  }
  for (const id of prefix) {
    if (!(id >= 0 && id < c.vocabSize)) {
      fail(`prefix ids must be token ids in [0, ${c.vocabSize}), got ${id}`);
    }
  }
  const plan = state.plans<DecodePlan>("decode", PLANS).get(
    `${b}x${l}`,
    () => buildDecodePlan(state, b, l),
  );
  const ints = new Int32Array(plan.ints.size);
  for (let r = 0; r < b; r++) ints[plan.ints.tokens + r * l] = start;
  ints.set(suppressList(c.vocabSize, options.suppress), plan.ints.suppress);
  state.device.queue.writeBuffer(plan.intBuf, 0, ints);
  // Greedy: the recorded argmax. Otherwise this call's draws, one
  // categorical dispatch per step (its own stream), recorded once.
  let draws: Dispatch[][] | null = null;
  let uniform: GPUBuffer | null = null;
  const P = prefix.length;
  if (draw.temperature > 0 && P < l - 1) {
    const rec = state.recorder(plan.act, plan.intBuf);
    for (let i = P + 1; i < l; i++) {
      rec.begin(`draw:${i}`);
      recordDraw(rec, c, plan.act, draw, {
        logitsOffset: plan.arena.logits,
        rows: b,
        stream: i,
        outputOffset: plan.ints.next,
      });
    }
    const done = state.finish(rec);
    uniform = done.uniform;
    draws = Array.from(
      { length: l - 1 },
      (_, k) => done.lists.get(`draw:${k + 1}`) ?? [],
    );
  }
  // The prefix, teacher-forced: step i ≤ P commits prefix[i − 1] for every
  // row, copied into the next slots between passes (no draw there).
  let forced: GPUBuffer | null = null;
  if (P > 0) {
    const rows = new Int32Array(P * b);
    for (let i = 0; i < P; i++) rows.fill(prefix[i], i * b, (i + 1) * b);
    forced = state.buffer(rows.byteLength, 0x04 | 0x08); // COPY_SRC | COPY_DST
    state.device.queue.writeBuffer(forced, 0, rows);
  }
  try {
    const encoder = state.device.createCommandEncoder();
    const start0 = performance.now();
    const stepList = plan.lists.get("step")!;
    const greedy = plan.lists.get("argmax")!;
    const commit = plan.lists.get("commit")!;
    let count = 0;
    let pass = encoder.beginComputePass();
    for (let i = 1; i < l; i++) {
      count += dispatchAll(pass, stepList);
      if (i <= P) {
        pass.end();
        encoder.copyBufferToBuffer(
          forced!,
          (i - 1) * b * 4,
          plan.intBuf,
          plan.ints.next * 4,
          b * 4,
        );
        pass = encoder.beginComputePass();
      } else count += dispatchAll(pass, draws?.[i - 1] ?? greedy);
      count += dispatchAll(pass, commit);
    }
    pass.end();
    const { ints: tokens, syncs } = await state.readInts(
      encoder,
      { start: start0, count },
      plan.intBuf,
      plan.ints.tokens,
      b * l,
    );
    return { tokens, forwardPasses: l - 1, syncs };
  } finally {
    state.destroy(uniform, forced);
  }
}
