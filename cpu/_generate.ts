// Generation on the CPU engine: causal decoding with the KV cache (the
// WebGPU engine's decode plan, _decode.ts, run by the CPU executor) and
// masked-diffusion sampling over the engine's forward passes (logits made
// only for the positions drawn). The draws, the gate and the reveal run in JS
// in float64 (`@d3pm/core`'s `tokenProbabilities` and `sampleCategorical`,
// one `prng` stream per row) where the WebGPU engine runs its own kernels.
// Private.

import {
  type CausalGenerationOptions,
  type Generation,
  type MaskedGenerationOptions,
  type Prng,
  prng,
  sampleCategorical,
  tokenProbabilities,
} from "@d3pm/core";
import type { ModelConfig } from "@d3pm/transformer/init";
import {
  checkDraw,
  checkMasked,
  checkSuppress,
  type DecodeArena,
  type DecodeInts,
  type DrawSettings,
  type ParameterTable,
  type PlanCache,
  planDecode,
  recordDecode,
  ropeTables,
} from "@d3pm/webgpu/plan";
import type { CpuKernels } from "./kernels.ts";
import { CpuExecutor, type StepScalars } from "./_executor.ts";

function fail(message: string): never {
  throw new RangeError(`CpuTransformer: ${message}`);
}

/** What generation needs of the engine. */
export interface GenerationContext {
  config: ModelConfig;
  table: ParameterTable;
  kernels: CpuKernels;
  params: Float32Array;
  /** The shared inference region (act and ints). */
  act: Float32Array;
  ints: Int32Array;
  probs: Float32Array;
  scalars: StepScalars;
  chunkFloats: number;
  /** Decode plans by `${B}x${L}`. */
  plans: PlanCache<DecodePlan>;
  /**
   * The final hidden states (B·T·d) of the engine's forward passes (those of
   * `forwardIds`, in the same chunks of rows) without the head; t per row
   * when time-conditioned.
   */
  hidden(
    ids: Int32Array,
    batch: number,
    length: number,
    t?: ArrayLike<number>,
  ): Float32Array;
  /** Logits (k, V) of k rows (positions b·L + i) of `hidden`'s states. */
  headRows(
    hidden: Float32Array,
    rows: ArrayLike<number>,
    out: Float32Array,
  ): void;
  checkIds(ids: ArrayLike<number>, what: string): void;
}

/** A recorded decode step over the shared region. */
export interface DecodePlan {
  batch: number;
  length: number;
  arena: DecodeArena;
  ints: DecodeInts;
  exec: CpuExecutor;
}

/** Temperature (0: greedy), top-k (0: off), top-p and the seed, checked. */
export type Draw = DrawSettings;

const drawSettings = (o: Parameters<typeof checkDraw>[0]): Draw =>
  checkDraw(o, fail);

const suppressList = (vocab: number, ids: readonly number[] = []): number[] =>
  checkSuppress(vocab, ids, fail);

// Row r's stream of a call seeded `seed`: rows draw the same whatever the
// chunking.
function rowStream(seed: number, r: number): Prng {
  return prng((seed ^ Math.imul(r + 1, 0x9e3779b9)) >>> 0);
}

/**
 * One draw from a row of logits: float64 softmax with temperature, top-k,
 * top-p and suppressed ids; returns the id and its probability.
 */
export function drawRow(
  logits: Float32Array,
  draw: Draw,
  suppress: number[],
  rng: Prng,
): { id: number; p: number } {
  let p = tokenProbabilities(logits, {
    temperature: draw.temperature,
    topP: 1,
    suppress,
  });
  if (draw.topK > 0 && draw.topK < p.length) {
    const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b);
    const kept = new Float64Array(p.length);
    for (let i = 0; i < draw.topK; i++) kept[order[i]] = p[order[i]];
    p = kept;
  }
  if (draw.topP < 1 || draw.topK > 0) {
    let z = 0;
    for (let i = 0; i < p.length; i++) z += p[i];
    for (let i = 0; i < p.length; i++) p[i] /= z;
  }
  if (draw.topP < 1) {
    const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b);
    let acc = 0, k = 0;
    while (k < order.length && acc < draw.topP) acc += p[order[k++]];
    for (let i = k; i < order.length; i++) p[order[i]] = 0;
    for (let i = 0; i < p.length; i++) p[i] /= acc;
  }
  const id = sampleCategorical(p, rng);
  return { id, p: p[id] };
}

function decodePlan(
  g: GenerationContext,
  batch: number,
  length: number,
): DecodePlan {
  return g.plans.get(`${batch}x${length}`, () => {
    const { arena, ints } = planDecode(g.config, batch, length, g.chunkFloats);
    const exec = new CpuExecutor(g.kernels, {
      act: g.act,
      params: g.params,
      ints: g.ints,
      probs: g.probs,
    }, g.scalars);
    recordDecode(exec, g.config, g.table, arena, ints, batch, length);
    return { batch, length, arena, ints, exec };
  });
}

// The most rows of a (·, L) decode plan the shared region holds.
function decodeRows(g: GenerationContext, b: number, l: number): number {
  const fits = (r: number) => {
    const { arena, ints } = planDecode(g.config, r, l, g.chunkFloats);
    return arena.size <= g.act.length && ints.size <= g.ints.length;
  };
  if (!fits(1)) {
    fail(
      `generateCausal: length ${l} does not fit the engine's inference region`,
    );
  }
  let lo = 1, hi = b;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** A causal generation's prefix, checked: token ids, at most `length − 1`. */
export function prefixIds(
  vocab: number,
  length: number,
  ids: ArrayLike<number> = [],
): Int32Array {
  if (ids.length > length - 1) {
    fail(
      `generateCausal: the prefix has ${ids.length} ids; at most length − 1 = ${
        length - 1
      } fit after the start token`,
    );
  }
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(Number.isInteger(id) && id >= 0 && id < vocab)) {
      fail(`prefix ids must be token ids in [0, ${vocab}), got ${id}`);
    }
  }
  return Int32Array.from(ids);
}

/** Causal generation with the KV cache (see `CpuTransformer.generateCausal`). */
export function generateCausal(
  g: GenerationContext,
  o: CausalGenerationOptions,
): Generation {
  const c = g.config;
  const { batchSize: b, length: l, start } = o;
  if (c.kind !== "causal" || c.timeConditioning) {
    fail("generateCausal needs a causal model without time conditioning");
  }
  if (!Number.isInteger(b) || b < 1) {
    fail(`batchSize must be an integer ≥ 1, got ${b}`);
  }
  if (!Number.isInteger(l) || l < 2 || l > c.contextLength) {
    fail(`length must be an integer in [2, ${c.contextLength}], got ${l}`);
  }
  if (!(Number.isInteger(start) && start >= 0 && start < c.vocabSize)) {
    fail(`start must be a token id in [0, ${c.vocabSize}), got ${start}`);
  }
  const draw = drawSettings(o);
  const suppress = suppressList(c.vocabSize, o.suppress);
  const prefix = prefixIds(c.vocabSize, l, o.prefix);
  const V = c.vocabSize, out = new Int32Array(b * l);
  const rows = decodeRows(g, b, l);
  let passes = 0;
  for (let r0 = 0; r0 < b; r0 += rows) {
    const r = Math.min(rows, b - r0);
    const p = decodePlan(g, r, l);
    const { arena, ints } = p;
    if (c.positions === "rotary") {
      const t = ropeTables(l, c.dModel / c.nHead);
      g.act.set(t.cos, arena.cos);
      g.act.set(t.sin, arena.sin);
    }
    g.ints.fill(0, 0, ints.size);
    for (let i = 0; i < r; i++) g.ints[ints.tokens + i * l] = start;
    g.ints[ints.suppress] = suppress.length;
    g.ints.set(suppress, ints.suppress + 1);
    const streams = Array.from(
      { length: r },
      (_, i) => rowStream(draw.seed, r0 + i),
    );
    for (let i = 1; i < l; i++) {
      p.exec.run(["step"]);
      if (i <= prefix.length) {
        // Teacher-forced: the prompt's id goes in, nothing is drawn.
        g.ints.fill(prefix[i - 1], ints.next, ints.next + r);
      } else if (draw.temperature === 0) p.exec.run(["argmax"]);
      else {
        for (let k = 0; k < r; k++) {
          const row = g.act.subarray(
            arena.logits + k * V,
            arena.logits + (k + 1) * V,
          );
          g.ints[ints.next + k] = drawRow(row, draw, suppress, streams[k]).id;
        }
      }
      p.exec.run(["commit"]);
      passes++;
    }
    out.set(g.ints.subarray(ints.tokens, ints.tokens + r * l), r0 * l);
  }
  return { tokens: out, forwardPasses: passes, syncs: 0 };
}

/** Masked-diffusion sampling (see `CpuTransformer.generateMasked`). */
export function generateMasked(
  g: GenerationContext,
  o: MaskedGenerationOptions,
): Generation {
  const c = g.config;
  const { batchSize: b, length: l, maskId } = o;
  const { draw, blockLength, suppress } = checkMasked(
    c,
    o,
    { maxLength: c.contextLength },
    fail,
  );
  if (o.prompt !== undefined) g.checkIds(o.prompt, "prompt");
  const n = b * l, V = c.vocabSize;
  const tokens = o.prompt ? o.prompt.slice() : new Int32Array(n).fill(maskId);
  const streams = Array.from({ length: b }, (_, r) => rowStream(draw.seed, r));
  const steps = o.steps.length;
  // A pass makes the hidden states; logits are made only for the positions
  // drawn (a revealed one once in the whole call, under ancestral
  // sampling), not B·T·V per pass.
  let hidden: Float32Array | null = null;
  let prev = -1, passes = 0;
  // Scratch: one position's row (ancestral), a block row's masked logits
  // (confidence).
  const pos = new Int32Array(1), one = new Float32Array(V);
  const rowLogits = o.strategy === "ancestral"
    ? one
    : new Float32Array(Math.min(blockLength, l) * V);
  for (let s0 = 0; s0 < l; s0 += blockLength) {
    const s1 = Math.min(l, s0 + blockLength);
    for (let k = 0; k < steps; k++) {
      const last = k === steps - 1 && o.revealAllAtEnd !== false;
      const reveal = last ? 1 : o.steps[k].reveal;
      // The gate: run a pass when the block holds masks and (without the
      // cache, on a block's first step, or when a token changed) it must.
      let count = 0;
      for (let r = 0; r < b; r++) {
        for (let i = s0; i < s1; i++) if (tokens[r * l + i] === maskId) count++;
      }
      const run = count > 0 && (!o.cache || k === 0 || count !== prev);
      prev = count;
      if (count === 0) continue;
      if (run || hidden === null) {
        const t = c.timeConditioning
          ? new Float32Array(b).fill(o.steps[k].t)
          : undefined;
        hidden = g.hidden(tokens, b, l, t);
        passes++;
      }
      const h = hidden;
      for (let r = 0; r < b; r++) {
        const rng = streams[r];
        if (o.strategy === "ancestral") {
          for (let i = s0; i < s1; i++) {
            if (tokens[r * l + i] !== maskId) continue;
            if (reveal < 1 && !(rng.next() < reveal)) continue;
            pos[0] = r * l + i;
            g.headRows(h, pos, one);
            tokens[r * l + i] = drawRow(one, draw, suppress, rng).id;
          }
        } else {
          const at: number[] = [];
          for (let i = s0; i < s1; i++) {
            if (tokens[r * l + i] === maskId) at.push(r * l + i);
          }
          g.headRows(h, at, rowLogits);
          const masked = at.map((position, j) => ({
            i: position - r * l,
            ...drawRow(
              rowLogits.subarray(j * V, (j + 1) * V),
              draw,
              suppress,
              rng,
            ),
          }));
          // round(m·reveal), halves up, in float32 as the WebGPU sampler
          // and the tfjs sampler count: a schedule's exact halves come out
          // of float64 as 0.4999… and would reveal one token fewer.
          const take = last ? masked.length : Math.floor(
            Math.fround(Math.fround(masked.length * Math.fround(reveal)) + 0.5),
          );
          masked.sort((x, y) => y.p - x.p || x.i - y.i);
          for (let j = 0; j < take; j++) {
            tokens[r * l + masked[j].i] = masked[j].id;
          }
        }
      }
    }
  }
  return { tokens, forwardPasses: passes, syncs: 0 };
}
