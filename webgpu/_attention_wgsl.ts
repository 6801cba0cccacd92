// Flash-style attention tiled in both directions (WGSL, f32): a workgroup
// of 128 threads owns a block of 32 queries (the forward, dq) or 32 keys
// (dk, dv) of one (batch row, head) and streams the other side through
// workgroup memory in blocks of 16. Scores of a block pair are a small
// matmul (4 threads per row, 4 entries each), the softmax is online (row
// max and sum per block), and every thread keeps only a quarter of a head
// row of accumulators (16 floats at head size 64), so T = 1024 neither
// spills registers nor runs a query's keys on one thread. Rows in
// workgroup memory are padded to HD + 1 floats (no bank conflicts). The
// uniform words and dispatch grid are the first kernels' (_wgsl.ts):
// a = (B·H·T, T, H, qkvOff), b = (yOff, lseOff, scale, dyOff),
// c = (dqkvOff, DOff); grid (⌈T/32⌉, B·H). Private.

import {
  ACT,
  alibiFunction,
  type AttentionBias,
  buffers,
  DROP,
  HEADER,
  SCL,
} from "./_wgsl.ts";

/** Positions a workgroup owns. */
const OWN = 32;
/** Positions of the other side per streamed block. */
const STREAM = 16;
const THREADS = 128;

const range = (n: number) => [...Array(n).keys()];

/**
 * Workgroup bytes of each tiled kernel at head size hd: the recorder uses
 * the tiled kernels where the device's maxComputeWorkgroupStorageSize
 * holds them (and hd ≤ 64), the first kernels elsewhere.
 */
export function tiledAttentionBytes(
  hd: number,
): { forward: number; query: number; keyValue: number } {
  const sp = hd + 1;
  return {
    forward: 4 * (OWN * sp + STREAM * sp + OWN * (STREAM + 1)),
    query: 4 * (2 * OWN * sp + 2 * STREAM * sp + OWN * (STREAM + 1) + OWN),
    keyValue: 4 *
      (2 * OWN * sp + 2 * STREAM * sp + 2 * STREAM * (OWN + 1) + 2 * STREAM),
  };
}

// A block's rows copied from the arena into workgroup memory (padded
// rows), zeros past T.
function stage(
  dst: string,
  rows: number,
  first: string,
  src: (pos: string, c: string) => string,
): string {
  return `for (var e = t; e < ${rows}u * HD; e += ${THREADS}u) {
    let i = e / HD; let c = e % HD; let pos = ${first} + i; var x = 0.0;
    if (pos < T) { x = ${src("pos", "c")}; }
    ${dst}[i * SP + c] = x;
  }`;
}

// This thread's 4 scores sc[i] = Qs[rr]·X[q4 + 4i] (+ ALiBi at key
// j = j0 + q4 + 4i), one loop over the head reading the query once.
function scores4(keys: string, alibi: string): string {
  return `var sc = vec4<f32>(0.0);
    for (var c = 0u; c < HD; c++) {
      let x = Qs[rr * SP + c];
      sc += x * vec4<f32>(${keys}[q4 * SP + c], ${keys}[(q4 + 4u) * SP + c], ${keys}[(q4 + 8u) * SP + c], ${keys}[(q4 + 12u) * SP + c]);
    }${
    alibi
      ? `
    for (var i = 0u; i < 4u; i++) { let j = j0 + q4 + 4u * i; sc[i] = sc[i]${alibi}; }`
      : ""
  }`;
}

// This thread's 8 dot products in one loop over the head: sc[i] =
// X[rr]·Y[q4 + 4i] and dpv[i] = X2[rr]·Y2[q4 + 4i] (few loop iterations:
// llvmpipe stops an invocation's loops after 65,535 in all).
function dots8(x: string, y: string, x2: string, y2: string): string {
  const four = (a: string) =>
    `vec4<f32>(${a}[q4 * SP + c], ${a}[(q4 + 4u) * SP + c], ${a}[(q4 + 8u) * SP + c], ${a}[(q4 + 12u) * SP + c])`;
  return `var sc = vec4<f32>(0.0); var dpv = vec4<f32>(0.0);
    for (var c = 0u; c < HD; c++) {
      sc += ${x}[rr * SP + c] * ${four(y)};
      dpv += ${x2}[rr * SP + c] * ${four(y2)};
    }`;
}

function prologue(
  hd: number,
  dropout: boolean,
  bias: AttentionBias | null,
): string {
  return `${HEADER}
${buffers({ 1: ACT, 7: dropout ? SCL : undefined })}
${dropout ? DROP : ""}${alibiFunction(bias)}
const HD: u32 = ${hd}u;
const SP: u32 = ${hd + 1}u;`;
}

const MAIN_HEAD = `@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let T = u.a.y; let H = u.a.z; let d = H * HD;
  let b = wg.y / H; let h = wg.y % H;
  let own0 = wg.x * ${OWN}u; // the block's first position
  let scale = f(u.b.z);
  let base = u.a.w + b * T * 3u * d + h * HD; // q of position 0 of (b, h)
  let rowBase = (b * H + h) * T; // lse / D row of position 0
  let rr = t / 4u; let q4 = t % 4u; // this thread's row of the block, its quarter
  let p = own0 + rr; // this thread's position
  let live = p < T;`;

// This thread's head columns (q4 + 4g), accumulators o{g}.
function columns(hd: number): number[] {
  return range(Math.ceil(hd / 4));
}

/**
 * Forward: per key block, S = Q·Kᵀ (+ ALiBi, masked) into workgroup
 * memory; each row's 16 scores are read by its 4 threads, which update the
 * row's max and sum and keep the block's probabilities in registers; then
 * V replaces K and O ← O·corr + P·V over each thread's columns. Saves
 * lse = max + log(sum).
 */
export function tiledAttentionForwardSource(
  hd: number,
  causal: boolean,
  dropout = false,
  bias: AttentionBias | null = null,
): string {
  const G = columns(hd);
  const mask = dropout ? ` * keep(u.b.y, (rowBase + p) * T + j0 + jj)` : "";
  const alibi = bias ? ` + alibiBias(h, H, p, j)` : "";
  return `${prologue(hd, dropout, bias)}
var<workgroup> Qs: array<f32, ${OWN * (hd + 1)}>;
var<workgroup> KVs: array<f32, ${STREAM * (hd + 1)}>;
var<workgroup> Ss: array<f32, ${OWN * (STREAM + 1)}>;
${MAIN_HEAD}
  ${
    stage("Qs", OWN, "own0", (pos, c) =>
      `act[base + ${pos} * 3u * d + ${c}] * scale`)
  }
  ${G.map((g) => `var o${g} = 0.0;`).join(" ")}
  var mx = -3.0e38; var den = 0.0;
  let stop = ${causal ? `min(T, own0 + ${OWN}u)` : "T"};
  for (var j0 = 0u; j0 < stop; j0 += ${STREAM}u) {
    ${
    stage("KVs", STREAM, "j0", (pos, c) =>
      `act[base + ${pos} * 3u * d + d + ${c}]`)
  }
    workgroupBarrier();
    ${scores4("KVs", alibi)}
    for (var i = 0u; i < 4u; i++) {
      let jj = q4 + 4u * i; let j = j0 + jj;
      Ss[rr * ${STREAM + 1}u + jj] = select(-3.0e38, sc[i], live && j < T${
    causal ? " && j <= p" : ""
  });
    }
    workgroupBarrier();
    var tm = -3.0e38;
    for (var jj = 0u; jj < ${STREAM}u; jj++) { tm = max(tm, Ss[rr * ${
    STREAM + 1
  }u + jj]); }
    let m2 = max(mx, tm); let corr = exp(mx - m2);
    mx = m2; den *= corr;
    ${G.map((g) => `o${g} *= corr;`).join(" ")}
    ${
    stage("KVs", STREAM, "j0", (pos, c) =>
      `act[base + ${pos} * 3u * d + 2u * d + ${c}]`)
  }
    workgroupBarrier();
    for (var jj = 0u; jj < ${STREAM}u; jj++) {
      let s = Ss[rr * ${STREAM + 1}u + jj];
      let pr = select(0.0, exp(s - m2), s > -1.0e38);
      den += pr;
      let pv = pr${mask};
      ${
    G.map((g) =>
      `{ let c = q4 + ${
        4 * g
      }u; if (c < HD) { o${g} += pv * KVs[jj * SP + c]; } }`
    ).join(" ")
  }
    }
    workgroupBarrier();
  }
  if (!live) { return; }
  let y0 = u.b.x + (b * T + p) * d + h * HD;
  ${
    G.map((g) =>
      `{ let c = q4 + ${4 * g}u; if (c < HD) { act[y0 + c] = o${g} / den; } }`
    ).join(" ")
  }
  if (q4 == 0u) { act[u.b.y + rowBase + p] = mx + log(den); }
}
`;
}

/**
 * Backward for the queries: D_i = dy_i·y_i (saved for the key kernel);
 * per key block (K and V staged), each thread computes 4 entries of
 * dS = P ⊙ (dY·Vᵀ − D) with P = exp(S − lse) into workgroup memory, then
 * dq_i += dS_i·K over its columns; dq = scale · Σ.
 */
export function tiledAttentionQuerySource(
  hd: number,
  causal: boolean,
  dropout = false,
  bias: AttentionBias | null = null,
): string {
  const G = columns(hd);
  const mask = dropout ? ` * keep(u.b.y, (rowBase + p) * T + j)` : "";
  const alibi = bias ? ` + alibiBias(h, H, p, j)` : "";
  return `${prologue(hd, dropout, bias)}
var<workgroup> Qs: array<f32, ${OWN * (hd + 1)}>;
var<workgroup> dYs: array<f32, ${OWN * (hd + 1)}>;
var<workgroup> Ks: array<f32, ${STREAM * (hd + 1)}>;
var<workgroup> Vs: array<f32, ${STREAM * (hd + 1)}>;
var<workgroup> Ss: array<f32, ${OWN * (STREAM + 1)}>;
var<workgroup> Ds: array<f32, ${OWN}>;
${MAIN_HEAD}
  ${
    stage("Qs", OWN, "own0", (pos, c) =>
      `act[base + ${pos} * 3u * d + ${c}] * scale`)
  }
  ${
    stage("dYs", OWN, "own0", (pos, c) =>
      `act[u.b.w + (b * T + ${pos}) * d + h * HD + ${c}]`)
  }
  workgroupBarrier();
  if (t < ${OWN}u) {
    var D = 0.0;
    if (own0 + t < T) {
      let y0 = u.b.x + (b * T + own0 + t) * d + h * HD;
      for (var c = 0u; c < HD; c++) { D += dYs[t * SP + c] * act[y0 + c]; }
      act[u.c.y + rowBase + own0 + t] = D;
    }
    Ds[t] = D;
  }
  var lse = 0.0;
  if (live) { lse = act[u.b.y + rowBase + p]; }
  workgroupBarrier();
  let D = Ds[rr];
  ${G.map((g) => `var g${g} = 0.0;`).join(" ")}
  let stop = ${causal ? `min(T, own0 + ${OWN}u)` : "T"};
  for (var j0 = 0u; j0 < stop; j0 += ${STREAM}u) {
    ${
    stage("Ks", STREAM, "j0", (pos, c) =>
      `act[base + ${pos} * 3u * d + d + ${c}]`)
  }
    ${
    stage("Vs", STREAM, "j0", (pos, c) =>
      `act[base + ${pos} * 3u * d + 2u * d + ${c}]`)
  }
    workgroupBarrier();
    ${dots8("Qs", "Ks", "dYs", "Vs")}
    for (var i = 0u; i < 4u; i++) {
      let jj = q4 + 4u * i; let j = j0 + jj; var ds = 0.0;
      if (live && j < T${causal ? " && j <= p" : ""}) {
        let s = sc[i]${alibi};
        let dp = dpv[i];
        ds = exp(s - lse) * (dp${mask} - D);
      }
      Ss[rr * ${STREAM + 1}u + jj] = ds;
    }
    workgroupBarrier();
    for (var jj = 0u; jj < ${STREAM}u; jj++) {
      let w = Ss[rr * ${STREAM + 1}u + jj];
      ${
    G.map((g) =>
      `{ let c = q4 + ${
        4 * g
      }u; if (c < HD) { g${g} += w * Ks[jj * SP + c]; } }`
    ).join(" ")
  }
    }
    workgroupBarrier();
  }
  if (!live) { return; }
  let o = u.c.x + (b * T + p) * 3u * d + h * HD;
  ${
    G.map((g) =>
      `{ let c = q4 + ${4 * g}u; if (c < HD) { act[o + c] = g${g} * scale; } }`
    ).join(" ")
  }
}
`;
}

/**
 * Backward for keys and values: the block's 32 keys and values stay in
 * workgroup memory; per query block (q, dy, lse, D staged), each thread
 * computes 4 entries of P (dropped) and dS = P ⊙ (dY·Vᵀ − D)·scale into
 * workgroup memory, then dv_j += Σ_i P_ij dy_i and dk_j += Σ_i dS_ij q_i
 * over its columns.
 */
export function tiledAttentionKeyValueSource(
  hd: number,
  causal: boolean,
  dropout = false,
  bias: AttentionBias | null = null,
): string {
  const G = columns(hd);
  // Query i, key p.
  const mask = dropout ? ` * keep(u.b.y, (rowBase + i) * T + p)` : "";
  const alibi = bias ? ` + alibiBias(h, H, i, p)` : "";
  const PS = OWN + 1;
  return `${prologue(hd, dropout, bias)}
var<workgroup> Ks: array<f32, ${OWN * (hd + 1)}>;
var<workgroup> Vs: array<f32, ${OWN * (hd + 1)}>;
var<workgroup> Qs: array<f32, ${STREAM * (hd + 1)}>;
var<workgroup> dYs: array<f32, ${STREAM * (hd + 1)}>;
var<workgroup> Ps: array<f32, ${STREAM * PS}>;
var<workgroup> dSs: array<f32, ${STREAM * PS}>;
var<workgroup> Ls: array<f32, ${STREAM}>;
var<workgroup> Ds: array<f32, ${STREAM}>;
${MAIN_HEAD}
  ${
    stage("Ks", OWN, "own0", (pos, c) =>
      `act[base + ${pos} * 3u * d + d + ${c}]`)
  }
  ${
    stage("Vs", OWN, "own0", (pos, c) =>
      `act[base + ${pos} * 3u * d + 2u * d + ${c}]`)
  }
  ${G.map((g) => `var dk${g} = 0.0; var dv${g} = 0.0;`).join(" ")}
  for (var i0 = ${
    causal ? `(own0 / ${STREAM}u) * ${STREAM}u` : "0u"
  }; i0 < T; i0 += ${STREAM}u) {
    ${
    stage("Qs", STREAM, "i0", (pos, c) => `act[base + ${pos} * 3u * d + ${c}]`)
  }
    ${
    stage("dYs", STREAM, "i0", (pos, c) =>
      `act[u.b.w + (b * T + ${pos}) * d + h * HD + ${c}]`)
  }
    if (t < ${STREAM}u) {
      var lx = 0.0; var dx = 0.0;
      if (i0 + t < T) { lx = act[u.b.y + rowBase + i0 + t]; dx = act[u.c.y + rowBase + i0 + t]; }
      Ls[t] = lx; Ds[t] = dx;
    }
    workgroupBarrier();
    ${dots8("Ks", "Qs", "Vs", "dYs")}
    for (var k = 0u; k < 4u; k++) {
      let ii = q4 + 4u * k; let i = i0 + ii; var pk = 0.0; var ds = 0.0;
      if (live && i < T${causal ? " && i >= p" : ""}) {
        let s = sc[k] * scale${alibi};
        let dp = dpv[k];
        let pr = exp(s - Ls[ii]);
        pk = pr${mask};
        ds = pr * (dp${mask} - Ds[ii]) * scale;
      }
      Ps[ii * ${PS}u + rr] = pk; dSs[ii * ${PS}u + rr] = ds;
    }
    workgroupBarrier();
    for (var ii = 0u; ii < ${STREAM}u; ii++) {
      let pw = Ps[ii * ${PS}u + rr]; let sw = dSs[ii * ${PS}u + rr];
      ${
    G.map((g) =>
      `{ let c = q4 + ${
        4 * g
      }u; if (c < HD) { dv${g} += pw * dYs[ii * SP + c]; dk${g} += sw * Qs[ii * SP + c]; } }`
    ).join(" ")
  }
    }
    workgroupBarrier();
  }
  if (!live) { return; }
  let o = u.c.x + (b * T + p) * 3u * d + h * HD;
  ${
    G.map((g) =>
      `{ let c = q4 + ${
        4 * g
      }u; if (c < HD) { act[o + d + c] = dk${g}; act[o + 2u * d + c] = dv${g}; } }`
    ).join(" ")
  }
}
`;
}
