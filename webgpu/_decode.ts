// Cached decoding on the engine: one step of the causal model for B rows at
// the current position (read from the int buffer, so one recorded step
// serves every position), the KV cache, greedy argmax and the commit of the
// next token, as calls of the executor-neutral kernels (_kernels.ts; the
// WGSL is in _decode_wgsl.ts). Private; the engine records these once per
// (B, length).

import type { ModelConfig } from "@d3pm/transformer/init";
import {
  type Arena,
  type IntLayout,
  type ParameterTable,
  planArena,
  planInts,
} from "./_layout.ts";
import type { Kernels } from "./_kernels.ts";
import { recordForward } from "./_plan.ts";

/**
 * The int buffer of a decode plan: tokens (B, L) row-major, the current
 * position p (the input of the next step is the token at p; its output goes
 * to p + 1), and B slots for the drawn tokens.
 */
export interface DecodeInts {
  /** The tokens (B, L), row-major. */
  tokens: number;
  /** The current position p (1 int). */
  pos: number;
  /** Ids never drawn: a count, then up to MAX_SUPPRESS ids (per call). */
  suppress: number;
  /** The drawn tokens (B). */
  next: number;
  /** The ints of the layout. */
  size: number;
}

/** Most ids a generation may suppress. */
export const MAX_SUPPRESS = 8;

/** The activations of one decode step plus the cache (floats). */
export interface DecodeArena {
  /** One position per row: the forward arena at (B, 1). */
  step: Arena;
  /** Per layer, the K cache (B, L, d). */
  k: number[];
  /** Per layer, the V cache (B, L, d). */
  v: number[];
  /** RoPE cosines (L, hd/2). */
  cos: number;
  /** RoPE sines (L, hd/2). */
  sin: number;
  /** Logits of the step (B, V). */
  logits: number;
  /**
   * The split decode attention's scratch, shared by the layers: per (row,
   * head, chunk of {@linkcode decodeSplitChunk} keys) the chunk's max, sum
   * and unnormalised output, (B·H, ⌈L/chunk⌉, hd + 2).
   */
  partial: number;
  /** The arena's floats. */
  size: number;
}

/**
 * Keys per chunk of the split decode attention (`decodeAttention: "split"`)
 * at head size hd: the largest power of two ≤ 64 whose key tile, chunk ×
 * (hd + 1) floats, fits 8,448 bytes of workgroup memory (32 at hd 64, 16 at
 * hd 128, 64 at hd ≤ 32).
 *
 * @param hd The head size.
 * @returns Keys per chunk.
 *
 * @example
 * ```ts
 * import { decodeSplitChunk } from "@d3pm/webgpu/plan";
 * import { assertEquals } from "@std/assert";
 * assertEquals([16, 32, 64, 128].map(decodeSplitChunk), [64, 64, 32, 16]);
 * ```
 */
export function decodeSplitChunk(hd: number): number {
  const fit = Math.min(64, Math.floor(2112 / (hd + 1)));
  let chunk = 1;
  while (chunk * 2 <= fit) chunk *= 2;
  return chunk;
}

/**
 * Plan a decode plan's memory for B rows of up to L positions: the forward
 * arena of one position per row, then per layer the K and V caches, the
 * RoPE tables, the step's logits and the split attention's scratch; and its
 * int buffer.
 *
 * @param c The model's configuration (causal).
 * @param batch B.
 * @param length L.
 * @param chunkFloats As `planArena`'s (the step's arena).
 * @returns The float arena and the int layout.
 *
 * @example
 * ```ts
 * import { planDecode } from "@d3pm/webgpu/plan";
 * import { preset } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * const c = preset("micro", { vocabSize: 16, contextLength: 8 });
 * const { arena, ints } = planDecode(c, 2, 8, 1 << 20);
 * assertEquals(arena.k.length, c.nLayer);
 * assertEquals([ints.tokens, ints.pos], [0, 2 * 8]);
 * ```
 */
export function planDecode(
  c: ModelConfig,
  batch: number,
  length: number,
  chunkFloats: number,
): { arena: DecodeArena; ints: DecodeInts } {
  const step = planArena(c, batch, 1, "forward", chunkFloats);
  let off = step.size;
  const take = (size: number) => {
    const o = off;
    off += Math.ceil(size / 4) * 4;
    return o;
  };
  const d = c.dModel, hh = d / c.nHead / 2;
  const k: number[] = [], v: number[] = [];
  for (let i = 0; i < c.nLayer; i++) {
    k.push(take(batch * length * d));
    v.push(take(batch * length * d));
  }
  const cos = take(length * hh), sin = take(length * hh);
  const logits = take(batch * c.vocabSize);
  const hd = d / c.nHead;
  const partial = take(
    batch * c.nHead * Math.ceil(length / decodeSplitChunk(hd)) * (hd + 2),
  );
  const n = batch * length;
  return {
    arena: { step, k, v, cos, sin, logits, partial, size: off },
    ints: {
      tokens: 0,
      pos: n,
      suppress: n + 1,
      next: n + 2 + MAX_SUPPRESS,
      size: n + 2 + MAX_SUPPRESS + batch,
    },
  };
}

/**
 * Record a decode plan's lists: `step` (embedding of the token at p, the
 * blocks with cached attention, final LayerNorm, logits, suppressed ids),
 * `argmax` (greedy draw into the next slots) and `commit`.
 *
 * @param ops The executor recording (or running) the calls.
 * @param c The model's configuration (causal).
 * @param table Its parameter table.
 * @param arena The decode arena (`planDecode`).
 * @param ints The decode int layout (`planDecode`).
 * @param batch B.
 * @param length L.
 *
 * @example
 * ```ts
 * import { type Kernels, parameterTable, planDecode, recordDecode } from "@d3pm/webgpu/plan";
 * import { preset } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * // A recorder: every kernel call becomes its name.
 * const calls: string[] = [];
 * const ops = new Proxy({ dropout: false }, {
 *   get: (o, k) => k in o ? Reflect.get(o, k) : () => calls.push(String(k)),
 * }) as unknown as Kernels;
 * const c = preset("micro", { vocabSize: 16, contextLength: 8 });
 * const { arena, ints } = planDecode(c, 2, 8, 1 << 20);
 * recordDecode(ops, c, parameterTable(c), arena, ints, 2, 8);
 * assertEquals(calls.filter((k) => k === "decodeAttention").length, c.nLayer);
 * assertEquals(calls.slice(-4), ["begin", "argmax", "begin", "commit"]);
 * ```
 */
export function recordDecode(
  ops: Kernels,
  c: ModelConfig,
  table: ParameterTable,
  arena: DecodeArena,
  ints: DecodeInts,
  batch: number,
  length: number,
): void {
  const d = c.dModel;
  const p = (name: string) => table.byName.get(name)!.offset;
  const a = arena.step;
  ops.begin("step");
  recordForward(ops, c, table, a, planInts(batch) as IntLayout, batch, 1, {
    embed: () =>
      ops.decodeEmbed(batch, d, length, {
        tokens: ints.tokens,
        wte: p("wte.weight"),
        wpe: c.positions === "learned" ? p("wpe.weight") : -1,
        out: a.res0,
        pos: ints.pos,
      }),
    attention: (l, i) =>
      ops.decodeAttention(c, batch, length, {
        qkv: l.qkv,
        k: arena.k[i],
        v: arena.v[i],
        y: l.atty,
        pos: ints.pos,
        cos: arena.cos,
        sin: arena.sin,
        partial: arena.partial,
      }),
  });
  ops.matmul( // logits (B, V) = lnf (B, d) · wteᵀ
    { m: batch, n: c.vocabSize, k: d },
    { buf: "act", off: a.lnf, ld: d },
    { buf: "params", off: p("wte.weight"), ld: d, trans: true },
    { buf: "act", off: arena.logits, ld: c.vocabSize },
    "store",
  );
  ops.suppress(
    batch,
    c.vocabSize,
    { buf: "act", off: arena.logits },
    ints.suppress,
  );
  ops.begin("argmax");
  ops.argmax(batch, c.vocabSize, arena.logits, ints.next);
  ops.begin("commit");
  ops.commit(batch, length, {
    tokens: ints.tokens,
    pos: ints.pos,
    next: ints.next,
  });
}
