// WGSL of cached decoding (see _decode.ts for the plan): the embedding of
// the token at the current position, attention of one query over the KV
// cache, suppressed ids, the greedy argmax and the commit of the drawn
// token. The current position lives in the int buffer, so one recorded step
// serves every position. Private.

import { ACT, buffers, HEADER, INT, PAR } from "./_wgsl.ts";

/** out (B, d) = wte[token at p] (+ wpe[p]). */
export const EMBED_AT = `${HEADER}
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
export function decodeAttentionSource(hd: number, length: number): string {
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

// The split-key ("flash-decoding") variant, for `decodeAttention:
// "split"`: keys 0..p in chunks of `chunk` positions, one workgroup per
// (row, head, chunk) on a grid (B·H, ⌈L/chunk⌉) recorded once for every
// position, so the chunks past p only pass their barriers. A chunk tiles
// its keys in workgroup memory (consecutive threads read consecutive head
// columns of a key), one thread per key takes its score, and the thread of
// column c sums the chunk's values at c (again consecutive columns); it
// writes its max m, its Σ exp(s − m) and its unnormalised output (hd) to the
// scratch, and `decodeCombineSource` merges the chunks (log-sum-exp). Key
// and value p come from the qkv rows, never from the cache: the chunk that
// holds p writes them into the cache at p (for the later positions), and no
// workgroup of this dispatch reads that slot. Uniform words as the single
// kernel's, plus d.x = the scratch's offset: per (row·H + head, chunk)
// hd + 2 floats (m, sum, output).
export function decodeSplitSource(hd: number, chunk: number): string {
  return `${HEADER}
${buffers({ 1: ACT, 6: INT })}
const HD: u32 = ${hd}u;
const C: u32 = ${chunk}u;
const KP: u32 = ${hd + 1}u;
const NT: u32 = ${THREADS}u;
var<workgroup> qs: array<f32, ${hd}>;
var<workgroup> ks: array<f32, ${chunk * (hd + 1)}>;
var<workgroup> sc: array<f32, ${chunk}>;
fn rot(row: u32, c: u32, pos: u32) -> f32 {
  let x = act[row + c];
  if (u.c.y == 0u) { return x; }
  let hh = HD / 2u; let j = c % hh;
  let cs = act[u.c.z + pos * hh + j]; let sn = act[u.c.w + pos * hh + j];
  if (c < hh) { return x * cs - act[row + c + hh] * sn; }
  return x * cs + act[row + c - hh] * sn;
}
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let H = u.a.y; let L = u.a.z; let d = H * HD;
  let r = wg.x / H; let h = wg.x % H;
  let pos = u32(ints[u.c.x]);
  let j0 = wg.y * C;
  let live = j0 <= pos;
  let n = select(0u, min(C, pos + 1u - j0), live);
  let here = live && pos < j0 + C;
  let cached = select(n, n - 1u, here);
  let q0 = u.a.w + r * 3u * d + h * HD;
  let head = h * HD;
  if (live) {
    for (var c = t; c < HD; c += NT) {
      qs[c] = rot(q0, c, pos) * f(u.b.z);
      if (here) {
        let kv = rot(q0 + d, c, pos);
        ks[cached * KP + c] = kv;
        let slot = (r * L + pos) * d + head + c;
        act[u.b.x + slot] = kv;
        act[u.b.y + slot] = act[q0 + 2u * d + c];
      }
    }
  }
  // Loops of a fixed count, guarded: the compiler may unroll them and keep
  // every load in flight (a loop to p would wait on each in turn).
  for (var k = 0u; k < ${Math.ceil((chunk * hd) / THREADS)}u; k++) {
    let i = k * NT + t; let jj = i / HD; let c = i % HD;
    if (jj < cached) {
      ks[jj * KP + c] = act[u.b.x + (r * L + j0 + jj) * d + head + c];
    }
  }
  workgroupBarrier();
  for (var jj = t; jj < n; jj += NT) {
    var s = 0.0;
    for (var c = 0u; c < HD; c++) { s += qs[c] * ks[jj * KP + c]; }
    sc[jj] = s;
  }
  workgroupBarrier();
  var m = -3.0e38;
  for (var jj = 0u; jj < n; jj++) { m = max(m, sc[jj]); }
  workgroupBarrier();
  for (var jj = t; jj < n; jj += NT) { sc[jj] = exp(sc[jj] - m); }
  workgroupBarrier();
  let base = u.d.x + (wg.x * ((L + C - 1u) / C) + wg.y) * (HD + 2u);
  for (var c = t; c < HD; c += NT) {
    var acc = 0.0;
    for (var jj = 0u; jj < C; jj++) {
      if (jj < cached) {
        acc += sc[jj] * act[u.b.y + (r * L + j0 + jj) * d + head + c];
      }
    }
    if (here) { acc += sc[cached] * act[q0 + 2u * d + c]; }
    act[base + 2u + c] = acc;
  }
  if (t == 0u && live) {
    var den = 0.0;
    for (var jj = 0u; jj < n; jj++) { den += sc[jj]; }
    act[base] = m;
    act[base + 1u] = den;
  }
}
`;
}

// The split variant's merge: one workgroup per (row, head) over the nc
// chunks that hold keys 0..p, y = Σ_k w_k o_k / Σ_k w_k sum_k with w_k =
// e^(m_k − M), M the largest chunk max: the maxima and weights loaded and
// taken in parallel into workgroup memory, then the thread of column c sums
// the chunks' outputs at c (a fixed count of ⌈L/chunk⌉, guarded). Uniform
// words as decodeSplitSource's.
export function decodeCombineSource(
  hd: number,
  chunk: number,
  length: number,
): string {
  const chunks = Math.ceil(length / chunk);
  return `${HEADER}
${buffers({ 1: ACT, 6: INT })}
const HD: u32 = ${hd}u;
const C: u32 = ${chunk}u;
const NC: u32 = ${chunks}u;
const NT: u32 = ${THREADS}u;
var<workgroup> wm: array<f32, ${chunks}>;
var<workgroup> wl: array<f32, ${chunks}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let H = u.a.y; let d = H * HD;
  let r = wg.x / H; let h = wg.x % H;
  let pos = u32(ints[u.c.x]);
  let nc = pos / C + 1u;
  let base = u.d.x + wg.x * NC * (HD + 2u);
  for (var k = t; k < nc; k += NT) { wm[k] = act[base + k * (HD + 2u)]; }
  workgroupBarrier();
  var mx = -3.0e38;
  for (var k = 0u; k < nc; k++) { mx = max(mx, wm[k]); }
  workgroupBarrier();
  for (var k = t; k < nc; k += NT) {
    let w = exp(wm[k] - mx);
    wm[k] = w;
    wl[k] = w * act[base + k * (HD + 2u) + 1u];
  }
  workgroupBarrier();
  var den = 0.0;
  for (var k = 0u; k < nc; k++) { den += wl[k]; }
  for (var c = t; c < HD; c += NT) {
    var acc = 0.0;
    for (var k = 0u; k < NC; k++) {
      if (k < nc) { acc += wm[k] * act[base + k * (HD + 2u) + 2u + c]; }
    }
    act[u.b.w + r * d + h * HD + c] = acc / den;
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
export const ARGMAX = `${HEADER}
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
export const COMMIT = `${HEADER}
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
