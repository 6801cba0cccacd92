// What both generators share: their draw settings and suppress list,
// checked, and the recording of one categorical draw (the float64-grade
// kernel of _sampling.ts) over rows of logits. Private.

import type { ModelConfig } from "@d3pm/transformer/init";
import {
  checkDraw,
  checkSuppress,
  type DrawSettings,
} from "./_generation_checks.ts";
import type { Recorder } from "./_recorder.ts";
import {
  categoricalSource,
  categoricalThreads,
  categoricalWords,
} from "./_sampling.ts";
import { fail } from "./_state.ts";

export type { DrawSettings } from "./_generation_checks.ts";

/** The draw settings of a generation's options, checked. */
export function drawSettings(o: {
  temperature?: number;
  topK?: number;
  topP?: number;
  seed: number;
}): DrawSettings {
  return checkDraw(o, fail);
}

/** The count and ids of a suppress list (distinct ids, at most MAX_SUPPRESS), checked. */
export function suppressList(
  vocab: number,
  ids: readonly number[] = [],
): Int32Array {
  const unique = checkSuppress(vocab, ids, fail);
  return Int32Array.of(unique.length, ...unique);
}

/**
 * Record one categorical dispatch over `rows` rows of logits at
 * `logitsOffset` of `logits`, drawing into the ints at `outputOffset`;
 * `gate`: only positions holding the mask id, each revealed with
 * probability `reveal`; `confidence`: the drawn token's probability too;
 * `list`: only the rows it lists (dispatched indirectly by the caller).
 */
export function recordDraw(
  rec: Recorder,
  c: ModelConfig,
  logits: GPUBuffer,
  draw: DrawSettings,
  p: {
    logitsOffset: number;
    rows: number;
    stream: number;
    outputOffset: number;
    gate?: { maskId: number; reveal: number; currentOffset: number };
    confidence?: { buffer: GPUBuffer; offset: number };
    /** Draw only the rows this buffer lists (`CategoricalVariant.listed`). */
    list?: GPUBuffer;
  },
): void {
  const v = c.vocabSize;
  const threads = categoricalThreads(v);
  const words = categoricalWords({
    logitsOffset: p.logitsOffset,
    rowStride: v,
    vocab: v,
    rows: p.rows,
    temperature: draw.temperature,
    topK: draw.topK,
    topP: draw.topP,
    exclude: 0xffffffff,
    seed0: draw.seed,
    seed1: 0x243f6a88,
    stream: p.stream,
    outputOffset: p.outputOffset,
    gateId: p.gate ? p.gate.maskId : 0xffffffff,
    reveal: p.gate ? p.gate.reveal : 1,
    confidenceOffset: p.confidence ? p.confidence.offset : 0xffffffff,
    currentOffset: p.gate ? p.gate.currentOffset : 0,
  });
  const listed = p.list !== undefined;
  const slots: Record<number, GPUBuffer> = { 1: logits };
  if (p.confidence) slots[3] = p.confidence.buffer;
  if (p.list) slots[2] = p.list;
  rec.kernel(
    `categorical:${threads}${listed ? ":listed" : ""}`,
    () => categoricalSource({ threads, listed }),
    Array.from(words),
    p.rows,
    1,
    slots,
  );
}
