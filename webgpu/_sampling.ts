// Categorical draws on the GPU with the tail precision of the float64 CPU
// sampler (core/categorical.ts). Private: the engine records the kernel
// itself with `categoricalSource()` and `categoricalWords()`;
// `sampleRowsOnGpu()` runs it standalone (tests, one-off use).
//
// Why not a float32 uniform: an f32 uniform u has a resolution of 2^-24, so
// an exponential E = −log u is never below ≈ 2^-24 and a token whose
// probability p is well under 2^-24 (logit gap ≳ 17 nats) is drawn with
// probability ≈ p·exp(−2^-24/p) instead of p — the tail vanishes, the sample
// entropy drops, the effective temperature falls.
//
// The draw here is an exponential race (Gumbel-max in log space): token i
// wins with score s_i − log E_i, s_i = (l_i − max l)/τ, E_i ~ Exp(1)
// independent, which picks i with probability softmax(s)_i exactly. E_i
// comes from a 64-bit uniform X (two hashed u32 lanes of seed0, seed1,
// stream, row, token):
// - X < 2^63: u = X·2^-64 ∈ [2^-64, 1/2), taken to f32 with full relative
//   precision (hi and lo words converted separately), E = −log u ≥ 0.69,
//   where log has a relative error of a few ulp.
// - X ≥ 2^63: w = (2^64 − X)·2^-64 ∈ [2^-64, 1/2] exactly as above, and
//   E = −log1p(−w) = 2·atanh(z), z = w/(2 − w) ≤ 1/3, by its odd series
//   (no log near 1, whose absolute error would swamp a small E).
// So E carries a relative error of ~1e-7 down to E ≈ 2^-64: every token is
// drawn with its softmax probability to ~1e-6 relative down to gaps of
// ≈ 44 nats (p ≈ 2^-64), beyond which ties to the 64-bit grid set in.
//
// Top-k and top-p without sorting: bisection on the ordered bits of the
// logits (32 passes, each a workgroup count or probability-mass reduction)
// finds the boundary logit; ties on the boundary are then cut by index with
// one more bisection. The rules are core/categorical.ts's: order the tokens
// by logit, highest first, ties by lower id (a stable sort), and keep the
// shortest prefix — of length k for top-k, whose mass reaches topP for top-p
// (top-p after top-k, over the renormalised top-k set). One difference: the
// masses are f32 workgroup sums, so when the prefix's mass lies within ~1e-6
// of topP the GPU may keep one token more or fewer than float64 does.

import { HASH, HEADER } from "./_wgsl.ts";
import { kernelLayout } from "./_recorder.ts";
import { devicePipeline } from "./_pipelines.ts";

/** Threads per row: 256 for large vocabularies, 64 for small ones. */
export type CategoricalThreads = 64 | 256;

/** The threads {@linkcode sampleRowsOnGpu} uses for a vocabulary. */
export function categoricalThreads(vocab: number): CategoricalThreads {
  return vocab >= 2048 ? 256 : 64;
}

/** `unit64(hi, lo)`: X·2^-64 for X = hi·2^32 + lo, in f32 with full relative precision. */
export const UNIT64 = `
const P32: f32 = 2.3283064365386963e-10; // 2^-32
const P64: f32 = 5.421010862427522e-20;  // 2^-64
// Each word converted alone: no 2^-24 floor as in f32(X >> 40)·2^-24.
fn unit64(hi: u32, lo: u32) -> f32 { return f32(hi) * P32 + f32(lo) * P64; }
`;

/**
 * The precise `log_exponential`: log E for E ~ Exp(1) from the 64-bit
 * uniform X = hi_word·2^32 + lo_word of (row keys k, token i) (see the
 * module comment). The low word only moves u below f32 resolution unless
 * the high word is within 2^24 of either end, so it is hashed only then.
 */
export const LOG_EXPONENTIAL_64 = `
fn log_exponential(k: vec2<u32>, i: u32) -> f32 {
  let hi = hi_word(k, i);
  var lo = 0x80000000u; // mid-ulp: rounds like the full X to within 2^-24
  if (hi < 0x01000000u || hi >= 0xff000000u) { lo = lo_word(k, i); }
  if (hi < 0x80000000u) {
    let u = max(unit64(hi, lo), 2.7105054312137611e-20); // X = 0: 2^-65
    return log(-log(u));
  }
  // w = 2^64 − X (two's complement of the 64-bit X), in (0, 2^63].
  let w = unit64(~hi + select(0u, 1u, lo == 0u), ~lo + 1u);
  let z = w / (2.0 - w);
  let z2 = z * z;
  let e = 2.0 * z * (1.0 + z2 * (1.0 / 3.0 + z2 * (1.0 / 5.0 + z2 * (1.0 / 7.0 +
    z2 * (1.0 / 9.0 + z2 * (1.0 / 11.0 + z2 * (1.0 / 13.0 + z2 * (1.0 / 15.0 +
    z2 * (1.0 / 17.0)))))))));
  return log(e);
}
`;

/** Variants of the `categorical` kernel. */
export interface CategoricalVariant {
  /** Threads per row (default 256; 64 suits small vocabularies). */
  threads?: CategoricalThreads;
  /**
   * WGSL defining `fn log_exponential(k: vec2<u32>, i: u32) -> f32`, the log
   * of an Exp(1) draw for token i from the row keys k, using `hi_word(k, i)`
   * and `lo_word(k, i)` (the two u32 halves of its 64 random bits) and
   * `unit64(hi, lo)`. Default {@linkcode LOG_EXPONENTIAL_64}; tests pass a
   * naive float32 one to show the difference.
   */
  logExponential?: string;
  /**
   * Draw only the rows listed at binding 2 (`array<u32>`: the count, then
   * the row indices): workgroup w draws row list[1 + w], and workgroups past
   * the count return. A row's draw is the same as unlisted (its keys, logits
   * and output follow its index), so a gated draw over a list of the gated
   * rows launches no workgroup for the rows it would leave as they are.
   */
  listed?: boolean;
}

/**
 * WGSL of the kernel `categorical`, one workgroup per row.
 *
 * Bindings (the engine's layout; the others are not declared): 1 logits
 * (`array<f32>`), 3 confidence output (`array<f32>`), 6 ints (`array<i32>`:
 * the chosen tokens, and the current tokens in gate mode). The uniform
 * layout is {@linkcode categoricalWords}'s.
 *
 * The draws do not depend on `threads`: the race's winner is the argmax
 * of per-token scores, ties to the lower id. Confidence: the chosen id's
 * probability under the tempered, truncated distribution, or −1 for a row
 * the gate left as it was. A row with no allowed id is not written.
 * Unused slots of the shared layout are simply not declared (a pipeline
 * layout may hold more bindings than its shader uses).
 *
 * @param variant Threads per row and the exponential draw.
 * @returns The WGSL source.
 */
export function categoricalSource(variant: CategoricalVariant = {}): string {
  const threads = variant.threads ?? 256;
  const G = threads === 256 ? 16 : 8; // threads = G × G for the reductions
  const logExponential = variant.logExponential ?? LOG_EXPONENTIAL_64;
  const listed = variant.listed ?? false;
  // The row of this workgroup: its index, or the listed row (uniform
  // through workgroup memory, since the list is in storage).
  const rowOf = listed
    ? `let slot = flat_id(wg, nwg);
  if (t == 0u) { lrow = select(NONE, list[1u + slot], slot < list[0]); }
  let row = workgroupUniformLoad(&lrow);
  if (row == NONE || row >= u.a.w) { return; }`
    : `let row = flat_id(wg, nwg);
  if (row >= u.a.w) { return; }`;
  return `${HEADER}${HASH}${UNIT64}${logExponential}
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
${
    listed
      ? "@group(0) @binding(2) var<storage, read_write> list: array<u32>;\n"
      : ""
  }@group(0) @binding(3) var<storage, read_write> cnf: array<f32>;
@group(0) @binding(6) var<storage, read_write> ints: array<i32>;
const WG: u32 = ${threads}u;
const NONE: u32 = 0xffffffffu;
var<workgroup> rf: array<f32, ${threads}>;
var<workgroup> ru: array<u32, ${threads}>;
var<workgroup> rf2: array<f32, ${G}>;
var<workgroup> ru2: array<u32, ${G}>;
var<workgroup> out_f: f32;
var<workgroup> out_u: u32;
var<workgroup> go: u32;
${listed ? "var<workgroup> lrow: u32;\n" : ""}
// Reductions over the workgroup, results uniform (workgroupUniformLoad):
// two levels of √threads (three barriers, not a tree's six or eight — barriers dominate
// on software rasterisers, and 8 or 16 serial adds cost nothing on a GPU).
fn sum_f(x: f32, t: u32) -> f32 {
  rf[t] = x;
  workgroupBarrier();
  if (t < ${G}u) {
    var a = 0.0;
    for (var j = 0u; j < ${G}u; j++) { a += rf[t * ${G}u + j]; }
    rf2[t] = a;
  }
  workgroupBarrier();
  if (t == 0u) {
    var a = 0.0;
    for (var j = 0u; j < ${G}u; j++) { a += rf2[j]; }
    out_f = a;
  }
  return workgroupUniformLoad(&out_f);
}
fn sum_u(x: u32, t: u32) -> u32 {
  ru[t] = x;
  workgroupBarrier();
  if (t < ${G}u) {
    var a = 0u;
    for (var j = 0u; j < ${G}u; j++) { a += ru[t * ${G}u + j]; }
    ru2[t] = a;
  }
  workgroupBarrier();
  if (t == 0u) {
    var a = 0u;
    for (var j = 0u; j < ${G}u; j++) { a += ru2[j]; }
    out_u = a;
  }
  return workgroupUniformLoad(&out_u);
}
fn max_u(x: u32, t: u32) -> u32 {
  ru[t] = x;
  workgroupBarrier();
  if (t < ${G}u) {
    var a = 0u;
    for (var j = 0u; j < ${G}u; j++) { a = max(a, ru[t * ${G}u + j]); }
    ru2[t] = a;
  }
  workgroupBarrier();
  if (t == 0u) {
    var a = 0u;
    for (var j = 0u; j < ${G}u; j++) { a = max(a, ru2[j]); }
    out_u = a;
  }
  return workgroupUniformLoad(&out_u);
}
// Highest score, ties to the lower index; returns the index.
fn better(s: f32, i: u32, bs: f32, bi: u32) -> bool { return s > bs || (s == bs && i < bi); }
fn argmax(score: f32, i: u32, t: u32) -> u32 {
  rf[t] = score; ru[t] = i;
  workgroupBarrier();
  if (t < ${G}u) {
    var bs = rf[t * ${G}u]; var bi = ru[t * ${G}u];
    for (var j = 1u; j < ${G}u; j++) {
      if (better(rf[t * ${G}u + j], ru[t * ${G}u + j], bs, bi)) { bs = rf[t * ${G}u + j]; bi = ru[t * ${G}u + j]; }
    }
    rf2[t] = bs; ru2[t] = bi;
  }
  workgroupBarrier();
  if (t == 0u) {
    var bs = rf2[0]; var bi = ru2[0];
    for (var j = 1u; j < ${G}u; j++) {
      if (better(rf2[j], ru2[j], bs, bi)) { bs = rf2[j]; bi = ru2[j]; }
    }
    out_u = bi;
  }
  return workgroupUniformLoad(&out_u);
}

// f32 → u32 preserving order (negative floats reversed below positive ones).
fn key_of(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x80000000u) != 0u) { return ~b; }
  return b | 0x80000000u;
}
fn float_of(k: u32) -> f32 {
  if ((k & 0x80000000u) != 0u) { return bitcast<f32>(k & 0x7fffffffu); }
  return bitcast<f32>(~k);
}

// A kept prefix of the order (logit desc, id asc): key > kt, or key == kt
// and id ≤ ki. kt = 0, ki = NONE keeps everything.
struct Cut { kt: u32, ki: u32 }
fn in_cut(c: Cut, k: u32, i: u32) -> bool { return k > c.kt || (k == c.kt && i <= c.ki); }

// The index of the m-th (1-based) token with key kt among those in cut c.
fn tie_index(c: Cut, kt: u32, m: u32, V: u32, base: u32, t: u32) -> u32 {
  var x = 0u; // largest x with #{tied, id < x} < m: the m-th tied id
  for (var bit = i32(firstLeadingBit(V)); bit >= 0; bit--) {
    let cand = x | (1u << u32(bit));
    var n = 0u;
    for (var i = t; i < min(cand, V); i += WG) {
      let k = key_of(logits[base + i]);
      if (k == kt && in_cut(c, k, i) && i != u.b.w) { n++; }
    }
    if (sum_u(n, t) < m) { x = cand; }
  }
  return x;
}

// Per-row keys of the two hash lanes: X's hi and lo words come from
// different chains over (seed0, seed1, stream, row), so X has 64 bits.
fn row_keys(row: u32) -> vec2<u32> {
  let hi = hash_u32(hash_u32(hash_u32(hash_u32(u.c.x ^ 0x243f6a88u) ^ u.c.y) ^ u.c.z) ^ row);
  let lo = hash_u32(hash_u32(hash_u32(hash_u32(u.c.y ^ 0x85a308d3u) ^ u.c.x) ^ (u.c.z + 0x13198a2eu)) ^ (row ^ 0x03707344u));
  return vec2<u32>(hi, lo);
}
fn hi_word(k: vec2<u32>, i: u32) -> u32 { return hash_u32(k.x ^ hash_u32(i ^ 0xa4093822u)); }
fn lo_word(k: vec2<u32>, i: u32) -> u32 { return hash_u32(k.y ^ hash_u32(i ^ 0x299f31d0u)); }

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  ${rowOf}
  let V = u.a.z; let base = u.a.x + row * u.a.y;
  let tau = f(u.b.x); let topK = u.b.y; let topP = f(u.b.z); let excl = u.b.w;
  let outAt = u.c.w + row;
  let gateId = u.d.x; let reveal = f(u.d.y); let confOff = u.d.z;
  let keys = row_keys(row);
  // Gate: only rows holding gateId are drawn, each with probability reveal
  // (its own 64-bit uniform, token index V); the others keep their token.
  if (t == 0u) {
    var draw = 1u;
    if (gateId != NONE) {
      let cur = ints[u.d.w + row];
      let hit = reveal >= 1.0 || unit64(hi_word(keys, V), lo_word(keys, V)) < reveal;
      if (u32(cur) != gateId || !hit) {
        draw = 0u;
        ints[outAt] = cur;
        if (confOff != NONE) { cnf[confOff + row] = -1.0; }
      }
    }
    go = draw;
  }
  if (workgroupUniformLoad(&go) == 0u) { return; }

  // The allowed set starts as every id but the excluded one.
  var mk = 0u; var n = 0u;
  for (var i = t; i < V; i += WG) {
    if (i != excl) { mk = max(mk, key_of(logits[base + i])); n++; }
  }
  let kmax = max_u(mk, t);
  let nAll = sum_u(n, t);
  let lmax = float_of(kmax);
  var ck = Cut(0u, NONE);
  if (topK > 0u && topK < nAll) {
    // Largest kt with #{key ≥ kt} ≥ k, then the ties on kt cut by id.
    var kt = 0u;
    for (var bit = 31; bit >= 0; bit--) {
      let cand = kt | (1u << u32(bit));
      var c = 0u;
      for (var i = t; i < V; i += WG) {
        if (i != excl && key_of(logits[base + i]) >= cand) { c++; }
      }
      if (sum_u(c, t) >= topK) { kt = cand; }
    }
    var a = 0u; var e = 0u;
    for (var i = t; i < V; i += WG) {
      let k = key_of(logits[base + i]);
      if (i != excl && k > kt) { a++; }
      if (i != excl && k == kt) { e++; }
    }
    let above = sum_u(a, t);
    let tied = sum_u(e, t);
    ck = Cut(kt, NONE);
    if (above + tied > topK) { ck.ki = tie_index(ck, kt, topK - above, V, base, t); }
  }
  var zk = 1.0; // the allowed mass, needed for top-p and the confidence
  if (topP < 1.0 || confOff != NONE) {
    var z = 0.0;
    for (var i = t; i < V; i += WG) {
      let l = logits[base + i];
      if (i != excl && in_cut(ck, key_of(l), i)) { z += exp((l - lmax) / tau); }
    }
    zk = sum_f(z, t);
  }
  var cp = Cut(0u, NONE);
  if (topP < 1.0) {
    // Largest kt whose prefix mass (key ≥ kt) reaches topP, then the ties.
    let goal = topP * zk;
    var kt = 0u;
    for (var bit = 31; bit >= 0; bit--) {
      let cand = kt | (1u << u32(bit));
      var m = 0.0;
      for (var i = t; i < V; i += WG) {
        let l = logits[base + i]; let k = key_of(l);
        if (i != excl && in_cut(ck, k, i) && k >= cand) { m += exp((l - lmax) / tau); }
      }
      if (sum_f(m, t) >= goal) { kt = cand; }
    }
    var a = 0.0; var e = 0u;
    for (var i = t; i < V; i += WG) {
      let l = logits[base + i]; let k = key_of(l);
      if (i != excl && in_cut(ck, k, i) && k > kt) { a += exp((l - lmax) / tau); }
      if (i != excl && in_cut(ck, k, i) && k == kt) { e++; }
    }
    let above = sum_f(a, t);
    let tied = sum_u(e, t);
    let q = exp((float_of(kt) - lmax) / tau);
    let need = u32(clamp(ceil((goal - above) / q), 1.0, f32(tied)));
    cp = Cut(kt, NONE);
    if (need < tied) { cp.ki = tie_index(ck, kt, need, V, base, t); }
    zk = above + f32(need) * q;
  }

  // The race over the allowed ids.
  // The lowest finite f32, not −inf: browsers' WGSL compilers refuse an
  // infinite constant.
  var best = -3.4028234e38; var bi = NONE; // no id yet
  for (var i = t; i < V; i += WG) {
    let l = logits[base + i]; let k = key_of(l);
    if (i != excl && in_cut(ck, k, i) && in_cut(cp, k, i)) {
      let s = (l - lmax) / tau - log_exponential(keys, i);
      if (s > best || bi == NONE) { best = s; bi = i; }
    }
  }
  let tok = argmax(best, bi, t);
  if (t == 0u && tok != NONE) {
    ints[outAt] = i32(tok);
    if (confOff != NONE) { cnf[confOff + row] = exp((logits[base + tok] - lmax) / tau) / zk; }
  }
}
`;
}

/** The uniform block of one `categorical` dispatch. */
export interface CategoricalUniform {
  /** Offset of row 0's logits in binding 1 (floats). */
  logitsOffset: number;
  /** Floats between consecutive rows' logits (≥ vocab). */
  rowStride: number;
  /** Vocabulary size V: ids 0..V−1. */
  vocab: number;
  /** Rows (one workgroup each). */
  rows: number;
  /** Softmax temperature, > 0. */
  temperature: number;
  /** Keep the k most likely ids (0 = off). */
  topK: number;
  /** Nucleus mass in (0, 1] (1 = off). */
  topP: number;
  /** An id never drawn, or 0xffffffff for none. */
  exclude: number;
  /** Seed words; with `stream` and the row they key the hash. */
  seed0: number;
  seed1: number;
  /** Changed by the caller per draw (step). */
  stream: number;
  /** Where row r's token goes in binding 6: ints[outputOffset + r]. */
  outputOffset: number;
  /** Gate: only rows whose current token is this id are drawn (0xffffffff = off). */
  gateId: number;
  /** Gate: the probability that a gated row is drawn. */
  reveal: number;
  /** Where row r's chosen-token probability goes in binding 3 (0xffffffff = off). */
  confidenceOffset: number;
  /** Gate: row r's current token is ints[currentOffset + r]. */
  currentOffset: number;
}

/**
 * The 16 uniform words of a `categorical` dispatch, floats bit-cast:
 *
 * | word | a | b | c | d |
 * |---|---|---|---|---|
 * | x | logitsOffset | temperature (f32) | seed0 | gateId (0xffffffff off) |
 * | y | rowStride | topK (0 off) | seed1 | reveal (f32) |
 * | z | vocab | topP (f32, 1 off) | stream | confidenceOffset (0xffffffff off) |
 * | w | rows | exclude (0xffffffff none) | outputOffset | currentOffset |
 *
 * @param p The dispatch's settings.
 * @returns 16 u32 words, in the order a.x, a.y, …, d.w.
 */
export function categoricalWords(p: CategoricalUniform): Uint32Array {
  const words = new Uint32Array(16);
  const floats = new Float32Array(words.buffer);
  const u32 = [
    p.logitsOffset,
    p.rowStride,
    p.vocab,
    p.rows,
    0,
    p.topK,
    0,
    p.exclude,
    p.seed0,
    p.seed1,
    p.stream,
    p.outputOffset,
    p.gateId,
    0,
    p.confidenceOffset,
    p.currentOffset,
  ];
  u32.forEach((w, i) => {
    if (!(Number.isInteger(w) && w >= 0 && w < 2 ** 32)) {
      throw new RangeError(`categorical uniform word ${i} is not a u32: ${w}`);
    }
    words[i] = w;
  });
  floats[4] = p.temperature;
  floats[6] = p.topP;
  floats[13] = p.reveal;
  return words;
}

/** Options of {@linkcode sampleRowsOnGpu}. */
export interface GpuDrawOptions {
  /** Vocabulary size; the logits are [rows, vocab]. */
  vocab: number;
  /** Draws per row, each its own stream (default 1). */
  draws?: number;
  /** Softmax temperature, > 0 (default 1). */
  temperature?: number;
  /** Keep the k most likely ids (default 0: off). */
  topK?: number;
  /** Nucleus mass in (0, 1] (default 1: off). */
  topP?: number;
  /** An id never drawn (e.g. the mask). */
  exclude?: number;
  /** Seed: two u32 words (default [0, 0]). */
  seed?: [number, number];
  /** The first draw's stream; draw d uses stream + d (default 0). */
  stream?: number;
  /** Gate mode: draw only rows whose current token is maskId, each with probability reveal. */
  gate?: { current: Int32Array; maskId: number; reveal: number };
  /** Also return each draw's chosen-token probability (default false). */
  confidence?: boolean;
  /** Threads per row (default {@linkcode categoricalThreads} of the vocabulary). */
  threads?: CategoricalThreads;
  /** WGSL of `log_exponential` (tests: a naive variant); default the precise one. */
  logExponential?: string;
}

/** What {@linkcode sampleRowsOnGpu} returns. */
export interface GpuDraws {
  /** [draws, rows] token ids. */
  tokens: Int32Array;
  /** [draws, rows] chosen-token probabilities (−1 where a row kept its token), or null. */
  confidence: Float32Array | null;
}

const U32 = 2 ** 32;
function pipelineFor(
  device: GPUDevice,
  source: string,
): { layout: GPUBindGroupLayout; pipeline: GPUComputePipeline } {
  const layout = kernelLayout(device); // the engine's, one per device
  const pipeline = devicePipeline(device, source, layout, {
    label: "categorical",
  });
  return { layout, pipeline };
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new RangeError(`Cannot sample on the GPU: ${message}`);
}

/**
 * Draw tokens from rows of logits on the GPU: `draws` dispatches of the
 * `categorical` kernel (streams stream, stream + 1, …) in one command
 * buffer, read back once; every buffer it creates is destroyed.
 *
 * @param device The device.
 * @param logits [rows, vocab] logits.
 * @param options Vocabulary, draws and the distribution's shaping.
 * @returns [draws, rows] tokens, and confidences when asked.
 */
export async function sampleRowsOnGpu(
  device: GPUDevice,
  logits: Float32Array,
  options: GpuDrawOptions,
): Promise<GpuDraws> {
  const V = options.vocab;
  check(
    Number.isInteger(V) && V >= 1,
    `vocab must be an integer ≥ 1, got ${V}`,
  );
  check(
    logits.length > 0 && logits.length % V === 0,
    `logits length ${logits.length} must be a positive multiple of vocab ${V}`,
  );
  const rows = logits.length / V;
  const draws = options.draws ?? 1;
  check(
    Number.isInteger(draws) && draws >= 1,
    `draws must be an integer ≥ 1, got ${draws}`,
  );
  const temperature = options.temperature ?? 1;
  check(temperature > 0, `temperature must be > 0, got ${temperature}`);
  const topK = options.topK ?? 0;
  check(
    Number.isInteger(topK) && topK >= 0,
    `topK must be an integer ≥ 0, got ${topK}`,
  );
  const topP = options.topP ?? 1;
  check(topP > 0 && topP <= 1, `topP must be in (0, 1], got ${topP}`);
  const exclude = options.exclude ?? 0xffffffff;
  check(
    exclude === 0xffffffff || (Number.isInteger(exclude) && exclude >= 0),
    `exclude must be an id ≥ 0, got ${exclude}`,
  );
  const [seed0, seed1] = options.seed ?? [0, 0];
  const stream = options.stream ?? 0;
  const gate = options.gate;
  if (gate) {
    check(
      gate.current.length === rows,
      `gate.current must have one token per row (${rows}), got ${gate.current.length}`,
    );
    check(
      gate.reveal >= 0 && gate.reveal <= 1,
      `gate.reveal must be in [0, 1], got ${gate.reveal}`,
    );
  }
  const { layout, pipeline } = pipelineFor(
    device,
    categoricalSource({
      threads: options.threads ?? categoricalThreads(V),
      logExponential: options.logExponential,
    }),
  );
  const created: GPUBuffer[] = [];
  const buffer = (bytes: number, usage: number) => {
    const b = device.createBuffer({
      size: Math.max(16, Math.ceil(bytes / 4) * 4),
      usage,
    });
    created.push(b);
    return b;
  };
  const S = GPUBufferUsage.STORAGE, CD = GPUBufferUsage.COPY_DST;
  const CS = GPUBufferUsage.COPY_SRC;
  try {
    const logitBuf = buffer(logits.byteLength, S | CD);
    device.queue.writeBuffer(logitBuf, 0, Float32Array.from(logits));
    // ints: [draws, rows] outputs, then the current tokens.
    const n = draws * rows;
    const intBuf = buffer((n + rows) * 4, S | CD | CS);
    if (gate) {
      device.queue.writeBuffer(intBuf, n * 4, Int32Array.from(gate.current));
    }
    const confBuf = options.confidence ? buffer(n * 4, S | CS) : null;
    const dummy = buffer(16, S);
    const uniform = buffer(draws * 256, GPUBufferUsage.UNIFORM | CD);
    const words = new Uint32Array(draws * 64);
    for (let d = 0; d < draws; d++) {
      words.set(
        categoricalWords({
          logitsOffset: 0,
          rowStride: V,
          vocab: V,
          rows,
          temperature,
          topK,
          topP,
          exclude,
          seed0: seed0 >>> 0,
          seed1: seed1 >>> 0,
          stream: (stream + d) % U32,
          outputOffset: d * rows,
          gateId: gate ? gate.maskId >>> 0 : 0xffffffff,
          reveal: gate ? gate.reveal : 1,
          confidenceOffset: confBuf ? d * rows : 0xffffffff,
          currentOffset: n,
        }),
        d * 64,
      );
    }
    device.queue.writeBuffer(uniform, 0, words);
    const x = Math.min(rows, 65535), y = Math.ceil(rows / x);
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    for (let d = 0; d < draws; d++) {
      const slots: Record<number, GPUBuffer> = {
        1: logitBuf,
        3: confBuf ?? dummy,
        6: intBuf,
      };
      pass.setBindGroup(
        0,
        device.createBindGroup({
          layout,
          entries: [
            {
              binding: 0,
              resource: { buffer: uniform, offset: d * 256, size: 64 },
            },
            ...[1, 2, 3, 4, 5, 6, 7].map((b) => ({
              binding: b,
              resource: { buffer: slots[b] ?? dummy },
            })),
          ],
        }),
      );
      pass.dispatchWorkgroups(x, y);
    }
    pass.end();
    const readInts = buffer(n * 4, GPUBufferUsage.MAP_READ | CD);
    encoder.copyBufferToBuffer(intBuf, 0, readInts, 0, n * 4);
    const readConf = confBuf
      ? buffer(n * 4, GPUBufferUsage.MAP_READ | CD)
      : null;
    if (confBuf && readConf) {
      encoder.copyBufferToBuffer(confBuf, 0, readConf, 0, n * 4);
    }
    device.queue.submit([encoder.finish()]);
    await readInts.mapAsync(GPUMapMode.READ);
    const tokens = new Int32Array(readInts.getMappedRange(0, n * 4).slice(0));
    readInts.unmap();
    let confidence: Float32Array | null = null;
    if (readConf) {
      await readConf.mapAsync(GPUMapMode.READ);
      confidence = new Float32Array(readConf.getMappedRange(0, n * 4).slice(0));
      readConf.unmap();
    }
    return { tokens, confidence };
  } finally {
    for (const b of created) b.destroy();
  }
}
