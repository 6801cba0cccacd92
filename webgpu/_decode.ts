// Cached decoding on the engine: one step of the causal model for B rows at
// the current position (read from the int buffer, so one recorded step
// serves every position), the KV cache, greedy argmax and the commit of the
// next token. Private; the engine records these once per (B, length).

import type { ModelConfig } from "@d3pm/transformer";
import {
  type Arena,
  type IntLayout,
  type ParameterTable,
  planArena,
  planInts,
} from "./_layout.ts";
import { recordForward } from "./_plan.ts";
import type { Recorder } from "./_recorder.ts";
import { ACT, buffers, HEADER, INT, PAR } from "./_wgsl.ts";

/**
 * The int buffer of a decode plan: tokens (B, L) row-major, the current
 * position p (the input of the next step is the token at p; its output goes
 * to p + 1), and B slots for the drawn tokens.
 */
export interface DecodeInts {
  tokens: number;
  pos: number;
  /** Ids never drawn: a count, then up to MAX_SUPPRESS ids (per call). */
  suppress: number;
  next: number;
  size: number;
}

/** Most ids a generation may suppress. */
export const MAX_SUPPRESS = 8;

/** The activations of one decode step plus the cache (floats). */
export interface DecodeArena {
  /** One position per row: the forward arena at (B, 1). */
  step: Arena;
  /** Per layer, K and V caches (B, L, d). */
  k: number[];
  v: number[];
  /** RoPE tables (L, hd/2). */
  cos: number;
  sin: number;
  /** Logits of the step (B, V). */
  logits: number;
  size: number;
}

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
  const n = batch * length;
  return {
    arena: { step, k, v, cos, sin, logits, size: off },
    ints: {
      tokens: 0,
      pos: n,
      suppress: n + 1,
      next: n + 2 + MAX_SUPPRESS,
      size: n + 2 + MAX_SUPPRESS + batch,
    },
  };
}

const EMBED_AT = `${HEADER}
${buffers({ 1: ACT, 2: PAR, 6: INT })}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) l: u32) {
  let i = flat_id(wg, nwg) * 256u + l;
  if (i >= u.a.x) { return; }
  let d = u.a.y; let r = i / d; let c = i % d;
  let pos = u32(ints[u.c.x]);
  let tok = u32(ints[u.a.w + r * u.a.z + pos]);
  var x = par[u.b.x + tok * d + c];
  if (u.b.z == 1u) { x += par[u.b.y + pos * d + c]; }
  act[u.b.w + i] = x;
}
`;

const THREADS = 64;

// One workgroup per (row, head): the new q, k (rotated at p for RoPE) and v;
// k and v stored into the cache at p; scores over keys 0..p in workgroup
// memory; softmax; the weighted sum of the cached values.
// a = (B, H, L, qkvOff), b = (kOff, vOff, scale, yOff), c = (posOff,
// rotary, cosOff, sinOff).
function decodeAttentionSource(hd: number, length: number): string {
  return `${HEADER}
${buffers({ 1: ACT, 6: INT })}
const HD: u32 = ${hd}u;
const NT: u32 = ${THREADS}u;
var<workgroup> qs: array<f32, ${hd}>;
var<workgroup> sc: array<f32, ${length}>;
var<workgroup> red: array<f32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let H = u.a.y; let L = u.a.z; let d = H * HD; let hh = HD / 2u;
  let r = wg.x / H; let h = wg.x % H;
  let pos = u32(ints[u.c.x]);
  let q0 = u.a.w + r * 3u * d + h * HD;
  let slot = (r * L + pos) * d + h * HD;
  for (var c = t; c < HD; c += NT) {
    var qv = act[q0 + c]; var kv = act[q0 + d + c];
    if (u.c.y == 1u) {
      let j = c % hh;
      let cs = act[u.c.z + pos * hh + j]; let sn = act[u.c.w + pos * hh + j];
      if (c < hh) {
        qv = qv * cs - act[q0 + c + hh] * sn; kv = kv * cs - act[q0 + d + c + hh] * sn;
      } else {
        qv = qv * cs + act[q0 + c - hh] * sn; kv = kv * cs + act[q0 + d + c - hh] * sn;
      }
    }
    qs[c] = qv * f(u.b.z);
    act[u.b.x + slot + c] = kv;
    act[u.b.y + slot + c] = act[q0 + 2u * d + c];
  }
  storageBarrier();
  workgroupBarrier();
  var mx = -3.0e38;
  for (var j = t; j <= pos; j += NT) {
    let k0 = u.b.x + (r * L + j) * d + h * HD;
    var s = 0.0;
    for (var c = 0u; c < HD; c++) { s += qs[c] * act[k0 + c]; }
    sc[j] = s;
    mx = max(mx, s);
  }
  red[t] = mx;
  workgroupBarrier();
  for (var k = NT / 2u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] = max(red[t], red[t + k]); }
    workgroupBarrier();
  }
  let m = red[0];
  workgroupBarrier();
  var den = 0.0;
  for (var j = t; j <= pos; j += NT) { let e = exp(sc[j] - m); sc[j] = e; den += e; }
  red[t] = den;
  workgroupBarrier();
  for (var k = NT / 2u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] += red[t + k]; }
    workgroupBarrier();
  }
  let total = red[0];
  for (var c = t; c < HD; c += NT) {
    var acc = 0.0;
    for (var j = 0u; j <= pos; j++) {
      acc += sc[j] * act[u.b.y + (r * L + j) * d + h * HD + c];
    }
    act[u.b.w + r * d + h * HD + c] = acc / total;
  }
}
`;
}

// Suppressed ids get a logit of −3e38 in every row (never drawn).
// a = (rows, V, logitsOff, listOff): the count at ints[listOff], the ids
// after it.
export const SUPPRESS = `${HEADER}
${buffers({ 1: ACT, 6: INT })}
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) t: u32) {
  let k = u32(ints[u.a.w]);
  for (var i = t; i < u.a.x * k; i += 64u) {
    let r = i / k; let id = u32(ints[u.a.w + 1u + i % k]);
    act[u.a.z + r * u.a.y + id] = -3.0e38;
  }
}
`;

// Greedy: the first largest logit of each row.
// a = (rows, V, logitsOff, outOff).
const ARGMAX = `${HEADER}
${buffers({ 1: ACT, 6: INT })}
var<workgroup> bv: array<f32, ${THREADS}>;
var<workgroup> bi: array<u32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let r = flat_id(wg, nwg);
  if (r >= u.a.x) { return; }
  let V = u.a.y; let l0 = u.a.z + r * V;
  var best = -3.4e38; var idx = 0xffffffffu;
  for (var v = t; v < V; v += ${THREADS}u) {
    let x = act[l0 + v]; if (x > best) { best = x; idx = v; }
  }
  bv[t] = best; bi[t] = idx;
  workgroupBarrier();
  for (var k = ${THREADS / 2}u; k > 0u; k >>= 1u) {
    if (t < k) {
      let ov = bv[t + k]; let oi = bi[t + k];
      if (ov > bv[t] || (ov == bv[t] && oi < bi[t])) { bv[t] = ov; bi[t] = oi; }
    }
    workgroupBarrier();
  }
  if (t == 0u) { ints[u.a.w + r] = i32(bi[0]); }
}
`;

// The drawn tokens to position p + 1 of each row, then p += 1.
// a = (B, tokensOff, L, posOff), b.x = nextOff.
const COMMIT = `${HEADER}
${buffers({ 6: INT })}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) l: u32) {
  let pos = u32(ints[u.a.w]);
  for (var r = l; r < u.a.x; r += 256u) {
    ints[u.a.y + r * u.a.z + pos + 1u] = ints[u.b.x + r];
  }
  storageBarrier();
  workgroupBarrier();
  if (l == 0u) { ints[u.a.w] = i32(pos + 1u); }
}
`;

/**
 * Record a decode plan's lists: `step` (embedding of the token at p, the
 * blocks with cached attention, final LayerNorm, logits), `argmax` (greedy
 * draw into the next slots) and `commit`.
 */
export function recordDecode(
  rec: Recorder,
  c: ModelConfig,
  table: ParameterTable,
  arena: DecodeArena,
  ints: DecodeInts,
  batch: number,
  length: number,
): void {
  const d = c.dModel, hd = d / c.nHead;
  const p = (name: string) => table.byName.get(name)!.offset;
  const a = arena.step;
  rec.begin("step");
  recordForward(rec, c, table, a, planInts(batch) as IntLayout, batch, 1, {
    embed: () =>
      rec.kernel("dec_embed", () => EMBED_AT, [
        batch * d,
        d,
        length,
        ints.tokens,
        p("wte.weight"),
        c.positions === "learned" ? p("wpe.weight") : 0,
        c.positions === "learned" ? 1 : 0,
        a.res0,
        ints.pos,
      ], Math.ceil((batch * d) / 256)),
    attention: (l, i) =>
      rec.kernel(
        `dec_attn:${hd}:${length}`,
        () => decodeAttentionSource(hd, length),
        [
          batch,
          c.nHead,
          length,
          l.qkv,
          arena.k[i],
          arena.v[i],
          { f: 1 / Math.sqrt(hd) },
          l.atty,
          ints.pos,
          c.positions === "rotary" ? 1 : 0,
          arena.cos,
          arena.sin,
        ],
        batch * c.nHead,
      ),
  });
  rec.matmul( // logits (B, V) = lnf (B, d) · wteᵀ
    { m: batch, n: c.vocabSize, k: d },
    { buf: rec.act, off: a.lnf, ld: d },
    { buf: rec.params, off: p("wte.weight"), ld: d, trans: true },
    { buf: rec.act, off: arena.logits, ld: c.vocabSize },
    "store",
  );
  rec.kernel("suppress", () => SUPPRESS, [
    batch,
    c.vocabSize,
    arena.logits,
    ints.suppress,
  ], 1);
  rec.begin("argmax");
  rec.kernel("dec_argmax", () => ARGMAX, [
    batch,
    c.vocabSize,
    arena.logits,
    ints.next,
  ], batch);
  rec.begin("commit");
  rec.kernel("dec_commit", () => COMMIT, [
    batch,
    ints.tokens,
    length,
    ints.pos,
    ints.next,
  ], 1);
}
