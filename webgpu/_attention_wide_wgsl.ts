// Wide register-tiled attention (WGSL, f32), the `attentionKernel: "wide"`
// set: a workgroup of 256 threads owns 64 queries (the forward, dq) or 64
// keys (dk, dv) of one (batch row, head) and streams the other side in
// blocks of 32. Why this shape:
//
// - The tiled kernels (_attention_wgsl.ts) give each thread 1 row × 4
//   scores and read 5 workgroup floats per 4 FMAs with scalar loads: on an
//   H100 they run at ~1.5 TFLOP/s, bound by workgroup-memory bandwidth.
//   Here every product is a register tile fed by vec4 loads. Thread t owns
//   rows 4·rg … 4·rg + 3 (rg = t / 16) of the owned block, and with
//   g = t % 16 the streamed positions 2g, 2g + 1 of a score block (4 × 2
//   scores: per head column one vec4 of Qᵀ and half a vec4 of Kᵀ, 2 loads
//   per 8 FMAs) and the head columns 4g … 4g + 3 of the output or gradient
//   rows (4 × 4: a vec4 of Pᵀ and a vec4 of V per 16 FMAs). Those layouts
//   are why operands of the score products are staged transposed
//   ([column][position]) and operands of the accumulating products row-major.
// - 256 threads × 16 accumulators hold a 64 × 64 block (dk and dv: 32 per
//   thread), so head size 64 needs no spilling; per thread 2 score vec4s,
//   2 dP vec4s, the row max, sum (or lse, D) and the accumulators.
// - Workgroup memory is capped at 32 KiB (lavapipe's limit and the common
//   one; the tests run these kernels there): at head size 64, the owned
//   block transposed (16 KiB), one streamed block (8 KiB) and one 32 × 64
//   block of P or dS (8 KiB) fill it exactly. So the backward kernels
//   restage the owned side from the arena (L2) instead of keeping both
//   halves: dq alternates the order per key block (Q, dY; then dY, Q), so
//   it restages one 16 KiB block per key block; dk/dv restages K and V per
//   query block, as its dS and row-major Q reuse that memory.
// - The forward's online softmax needs each row's block max across its 16
//   threads: each writes the max of its two scores, and after a barrier
//   every thread reads the row's 16 partials (one vec4 per 4 rows); all
//   threads then hold the same running max, so each keeps its own partial
//   row sum, added across the 16 threads once at the end.
//
// Per-thread loop counts stay small (llvmpipe stops an invocation after
// 65,535 loop iterations): ~180 per streamed block. Head sizes: multiples
// of 4 up to 64. Uniform words and bindings are the tiled kernels': a =
// (B·H·T, T, H, qkvOff), b = (yOff, lseOff, scale, dyOff), c = (dqkvOff,
// DOff); grid (⌈T/64⌉, B·H). Private; not yet timed on a GPU.

import {
  ACT,
  alibiFunction,
  type AttentionBias,
  buffers,
  DROP,
  HEADER,
  SCL,
} from "./_wgsl.ts";

/**
 * Positions a workgroup owns (the dispatch's x is ⌈T / 64⌉).
 *
 * @example
 * ```ts
 * import { WIDE_OWN } from "./_attention_wide_wgsl.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(Math.ceil(1024 / WIDE_OWN), 16);
 * ```
 */
export const WIDE_OWN = 64;
/** Positions of the other side per streamed block. */
const STREAM = 32;
const THREADS = 256;

/**
 * Whether the wide kernels take head size hd (a multiple of 4, at most 64).
 *
 * @example
 * ```ts
 * import { wideAttentionFits } from "./_attention_wide_wgsl.ts";
 * import { assert } from "@std/assert";
 * assert(wideAttentionFits(64) && wideAttentionFits(8));
 * assert(!wideAttentionFits(6) && !wideAttentionFits(128));
 * ```
 */
export function wideAttentionFits(hd: number): boolean {
  return hd % 4 === 0 && hd >= 4 && hd <= 64;
}

/**
 * Workgroup bytes of each wide kernel at head size hd (32 KiB each at 64):
 * the recorder uses them only where the device holds all three.
 *
 * @example
 * ```ts
 * import { wideAttentionBytes } from "./_attention_wide_wgsl.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(wideAttentionBytes(64).forward, 32 * 1024);
 * ```
 */
export function wideAttentionBytes(
  hd: number,
): { forward: number; query: number; keyValue: number } {
  const own = WIDE_OWN * hd, stream = STREAM * hd, block = STREAM * WIDE_OWN;
  return {
    forward: 4 * (own + stream + block),
    query: 4 * (own + stream + block),
    keyValue: 4 * (Math.max(own, block + stream) + stream + block),
  };
}

const R4 = [0, 1, 2, 3];
const vec4 = (f: (k: number) => string) => `vec4<f32>(${R4.map(f).join(", ")})`;

// The arena element at position pos, head column c (both WGSL expressions).
type Source = (pos: string, c: string) => string;
const Q: Source = (p, c) => `act[base + ${p} * 3u * d + ${c}]`;
const QS: Source = (p, c) => `act[base + ${p} * 3u * d + ${c}] * scale`;
const K: Source = (p, c) => `act[base + ${p} * 3u * d + d + ${c}]`;
const V: Source = (p, c) => `act[base + ${p} * 3u * d + 2u * d + ${c}]`;
const DY: Source = (p, c) => `act[u.b.w + (b * T + ${p}) * d + h * HD + ${c}]`;

// Stage `rows` positions from `first` transposed: dst[off + c·rows/4 + q]
// holds positions 4q … 4q + 3 at head column c (zeros past T). Consecutive
// threads write consecutive vec4s.
function stageT(
  dst: string,
  rows: number,
  first: string,
  src: Source,
  off = "",
): string {
  const q = rows / 4;
  return `for (var e = t; e < ${q}u * HD; e += ${THREADS}u) {
      let c = e / ${q}u; let p0 = ${first} + 4u * (e % ${q}u); var x = vec4<f32>(0.0);
      ${
    R4.map((k) =>
      `if (p0 + ${k}u < T) { x[${k}] = ${src(`(p0 + ${k}u)`, "c")}; }`
    )
      .join(" ")
  }
      ${dst}[${off}c * ${q}u + e % ${q}u] = x;
    }`;
}

// Stage `rows` positions from `first` row-major: dst[off + i·HQ + q] holds
// head columns 4q … 4q + 3 of position first + i (zeros past T).
function stageR(
  dst: string,
  rows: number,
  first: string,
  src: Source,
  off = "",
): string {
  return `for (var e = t; e < ${rows}u * HQ; e += ${THREADS}u) {
      let pos = ${first} + e / HQ; let c = 4u * (e % HQ); var x = vec4<f32>(0.0);
      if (pos < T) { x = ${vec4((k) => src("pos", `c + ${k}u`))}; }
      ${dst}[${off}e] = x;
    }`;
}

// The thread's 4 × 2 products over the head: a0 / a1 (vec4 over its 4 owned
// rows) = own[rows]·other[2g], own[rows]·other[2g + 1], with own staged
// transposed over 64 positions and other over 32.
function dot42(
  own: string,
  other: string,
  a0: string,
  a1: string,
  declare = true,
): string {
  return `${declare ? "var " : ""}${a0} = vec4<f32>(0.0); ${
    declare ? "var " : ""
  }${a1} = vec4<f32>(0.0);
    for (var c = 0u; c < HD; c++) {
      let x = ${own}[c * 16u + rg]; let y4 = ${other}[c * 8u + g / 2u];
      let y = select(y4.xy, y4.zw, odd);
      ${a0} += x * y.x; ${a1} += x * y.y;
    }`;
}

// acc{r} += Σ_jj w[jj][row r] · z[jj][columns 4g …]: w is a [32][64] block
// (one vec4 over the thread's 4 rows), z row-major [32][HD].
function accumulate(
  terms: { acc: string; w: string; z: string; zOff?: string }[],
): string {
  const loads = terms.map(({ w, z, zOff }, n) =>
    `let w${n} = ${w}[jj * 16u + rg]; let z${n} = ${z}[${
      zOff ?? ""
    }jj * HQ + gc];`
  ).join(" ");
  const fmas = terms.map(({ acc }, n) =>
    R4.map((r) => `${acc}${r} += w${n}[${r}] * z${n};`).join(" ")
  ).join("\n      ");
  return `for (var jj = 0u; jj < ${STREAM}u; jj++) {
      ${loads}
      ${fmas}
    }`;
}

// The 4 owned rows' dropout multipliers (vec4) for the streamed position
// `other`; `queryOwned`: owned rows are queries (else keys).
function keep4(other: string, queryOwned: boolean): string {
  return vec4((r) =>
    queryOwned
      ? `keep(u.b.y, (rowBase + r0 + ${r}u) * T + ${other})`
      : `keep(u.b.y, (rowBase + ${other}) * T + r0 + ${r}u)`
  );
}

// The 4 owned rows' ALiBi biases (vec4) against `other`.
function alibi4(other: string, queryOwned: boolean): string {
  return vec4((r) =>
    queryOwned
      ? `alibiBias(h, H, r0 + ${r}u, ${other})`
      : `alibiBias(h, H, ${other}, r0 + ${r}u)`
  );
}

// Which of the 4 owned rows pair with `other` (vec4<bool>).
function valid4(other: string, causal: boolean, queryOwned: boolean): string {
  const order = causal
    ? queryOwned
      ? ` & (vec4<u32>(${other}) <= rows)`
      : ` & (vec4<u32>(${other}) >= rows)`
    : "";
  return `(rows < vec4<u32>(T)) & vec4<bool>(${other} < T)${order}`;
}

function prologue(
  hd: number,
  dropout: boolean,
  bias: AttentionBias | null,
  workgroup: string,
): string {
  return `${HEADER}
${buffers({ 1: ACT, 7: dropout ? SCL : undefined })}
${dropout ? DROP : ""}${alibiFunction(bias)}
const HD: u32 = ${hd}u;
const HQ: u32 = ${hd / 4}u;
${workgroup}
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let T = u.a.y; let H = u.a.z; let d = H * HD;
  let b = wg.y / H; let h = wg.y % H;
  let own0 = wg.x * ${WIDE_OWN}u; // the block's first owned position
  let scale = f(u.b.z);
  let base = u.a.w + b * T * 3u * d + h * HD; // q of position 0 of (b, h)
  let rowBase = (b * H + h) * T; // lse / D row of position 0
  let rg = t / 16u; let g = t % 16u; let odd = (g & 1u) == 1u;
  let gc = min(g, HQ - 1u); // this thread's column group, clamped for reads
  let r0 = own0 + 4u * rg; // this thread's first owned row
  let rows = vec4<u32>(r0, r0 + 1u, r0 + 2u, r0 + 3u);`;
}

// Write acc{r}·mul (columns 4g …) of the thread's live rows at
// act[at(row) + column].
function store(acc: string, at: (row: string) => string, mul = ""): string {
  return `if (g < HQ) {
    ${
    R4.map((r) =>
      `if (r0 + ${r}u < T) { let o = ${at(`(r0 + ${r}u)`)} + 4u * g; ${
        R4.map((k) => `act[o + ${k}u] = ${acc}${r}[${k}]${mul};`).join(" ")
      } }`
    ).join("\n    ")
  }
  }`;
}

const zero4 = (name: string) =>
  R4.map((r) => `var ${name}${r} = vec4<f32>(0.0);`).join(" ");

/**
 * Forward: per key block, S = Q·Kᵀ (4 × 2 per thread, + ALiBi, masked);
 * each row's block max from its 16 threads' partials; the running max,
 * O ← O·corr and the thread's partial row sum updated in registers; P
 * (dropped) to workgroup memory over the row maxima; O += P·V (4 × 4 per
 * thread). Saves lse = max + log(sum).
 *
 * @example
 * ```ts
 * import { wideAttentionForwardSource } from "./_attention_wide_wgsl.ts";
 * import { assertStringIncludes } from "@std/assert";
 * const wgsl = wideAttentionForwardSource(64, true);
 * assertStringIncludes(wgsl, "@workgroup_size(256)");
 * ```
 */
export function wideAttentionForwardSource(
  hd: number,
  causal: boolean,
  dropout = false,
  bias: AttentionBias | null = null,
): string {
  const key = (k: number) => `(j0 + 2u * g + ${k}u)`;
  const scores = [0, 1].map((k) =>
    `s${k} = select(vec4<f32>(-3.0e38), s${k}${
      bias ? ` + ${alibi4(key(k), true)}` : ""
    }, ${valid4(key(k), causal, true)});`
  ).join("\n    ");
  const probs = [0, 1].map((k) =>
    `Y[(2u * g + ${k}u) * 16u + rg] = p${k}${
      dropout ? ` * ${keep4(key(k), true)}` : ""
    };`
  ).join(" ");
  return `${
    prologue(
      hd,
      dropout,
      bias,
      `var<workgroup> A: array<vec4<f32>, ${16 * hd}>; // Q, [column][query]
var<workgroup> X: array<vec4<f32>, ${
        8 * hd
      }>; // K [column][key], then V [key][column]
var<workgroup> Y: array<vec4<f32>, 512>; // row-max partials [g][row], P [key][query], sum partials`,
    )
  }
  ${stageT("A", WIDE_OWN, "own0", QS)}
  ${zero4("o")}
  var m = vec4<f32>(-3.0e38); var den = vec4<f32>(0.0);
  let stop = ${causal ? `min(T, own0 + ${WIDE_OWN}u)` : "T"};
  for (var j0 = 0u; j0 < stop; j0 += ${STREAM}u) {
    ${stageT("X", STREAM, "j0", K)}
    workgroupBarrier();
    ${dot42("A", "X", "s0", "s1")}
    ${scores}
    Y[g * 16u + rg] = max(s0, s1);
    workgroupBarrier();
    var bm = Y[rg];
    for (var q = 1u; q < 16u; q++) { bm = max(bm, Y[q * 16u + rg]); }
    let mn = max(m, bm); let corr = exp(m - mn); m = mn;
    let p0 = select(vec4<f32>(0.0), exp(s0 - mn), s0 > vec4<f32>(-1.0e38));
    let p1 = select(vec4<f32>(0.0), exp(s1 - mn), s1 > vec4<f32>(-1.0e38));
    den = den * corr + p0 + p1;
    ${R4.map((r) => `o${r} *= corr[${r}];`).join(" ")}
    ${stageR("X", STREAM, "j0", V)}
    workgroupBarrier();
    ${probs}
    workgroupBarrier();
    ${accumulate([{ acc: "o", w: "Y", z: "X" }])}
    workgroupBarrier();
  }
  Y[g * 16u + rg] = den;
  workgroupBarrier();
  var sum = Y[rg];
  for (var q = 1u; q < 16u; q++) { sum += Y[q * 16u + rg]; }
  ${R4.map((r) => `o${r} /= sum[${r}];`).join(" ")}
  ${store("o", (row) => `u.b.x + (b * T + ${row}) * d + h * HD`)}
  if (g == 0u) {
    ${
    R4.map((r) =>
      `if (r0 + ${r}u < T) { act[u.b.y + rowBase + r0 + ${r}u] = m[${r}] + log(sum[${r}]); }`
    ).join("\n    ")
  }
  }
}
`;
}

/**
 * Backward for the queries: D_i = dy_i·y_i (saved for the key kernel);
 * per key block, S = Q·Kᵀ with Q then dY·Vᵀ with dY restaged over the
 * same workgroup memory, dS = P ⊙ (dP − D) with P = exp(S − lse) into
 * workgroup memory, then K row-major and dq += dS·K (4 × 4 per thread);
 * dq = scale · Σ.
 *
 * @example
 * ```ts
 * import { wideAttentionQuerySource } from "./_attention_wide_wgsl.ts";
 * import { assertStringIncludes } from "@std/assert";
 * const wgsl = wideAttentionQuerySource(32, false, true);
 * assertStringIncludes(wgsl, "fn keep("); // dropout on the probabilities
 * ```
 */
export function wideAttentionQuerySource(
  hd: number,
  causal: boolean,
  dropout = false,
  bias: AttentionBias | null = null,
): string {
  const key = (k: number) => `(j0 + 2u * g + ${k}u)`;
  const grads = [0, 1].map((k) =>
    `C[(2u * g + ${k}u) * 16u + rg] = select(vec4<f32>(0.0), exp(s${k}${
      bias ? ` + ${alibi4(key(k), true)}` : ""
    } - lse) * (dp${k}${dropout ? ` * ${keep4(key(k), true)}` : ""} - D), ${
      valid4(key(k), causal, true)
    });`
  ).join("\n    ");
  return `${
    prologue(
      hd,
      dropout,
      bias,
      `var<workgroup> A: array<vec4<f32>, ${
        16 * hd
      }>; // Q, then dY, [column][query]
var<workgroup> X: array<vec4<f32>, ${
        8 * hd
      }>; // K, then V, [column][key]; K [key][column]
var<workgroup> C: array<vec4<f32>, 512>; // D of the block's queries; dS [key][query]`,
    )
  }
  if (t < ${WIDE_OWN}u) {
    let p = own0 + t; var Dp = 0.0;
    if (p < T) {
      let y0 = u.b.x + (b * T + p) * d + h * HD;
      let dy0 = u.b.w + (b * T + p) * d + h * HD;
      for (var c = 0u; c < HD; c++) { Dp += act[dy0 + c] * act[y0 + c]; }
      act[u.c.y + rowBase + p] = Dp;
    }
    C[t / 4u][t % 4u] = Dp;
  }
  var lse = vec4<f32>(0.0);
  ${
    R4.map((r) =>
      `if (r0 + ${r}u < T) { lse[${r}] = act[u.b.y + rowBase + r0 + ${r}u]; }`
    ).join(" ")
  }
  workgroupBarrier();
  let D = C[rg];
  workgroupBarrier();
  ${zero4("a")}
  let stop = ${causal ? `min(T, own0 + ${WIDE_OWN}u)` : "T"};
  for (var j0 = 0u; j0 < stop; j0 += ${STREAM}u) {
    // A ends an even block holding dY and an odd one holding Q, so the
    // next block starts with what A holds: one restaging of A per block.
    var s0: vec4<f32>; var s1: vec4<f32>; var dp0: vec4<f32>; var dp1: vec4<f32>;
    if ((j0 / ${STREAM}u) % 2u == 0u) {
      if (j0 == 0u) { ${stageT("A", WIDE_OWN, "own0", QS)} }
      ${stageT("X", STREAM, "j0", K)}
      workgroupBarrier();
      ${dot42("A", "X", "s0", "s1", false)}
      workgroupBarrier();
      ${stageT("A", WIDE_OWN, "own0", DY)}
      ${stageT("X", STREAM, "j0", V)}
      workgroupBarrier();
      ${dot42("A", "X", "dp0", "dp1", false)}
    } else {
      ${stageT("X", STREAM, "j0", V)}
      workgroupBarrier();
      ${dot42("A", "X", "dp0", "dp1", false)}
      workgroupBarrier();
      ${stageT("A", WIDE_OWN, "own0", QS)}
      ${stageT("X", STREAM, "j0", K)}
      workgroupBarrier();
      ${dot42("A", "X", "s0", "s1", false)}
    }
    ${grads}
    workgroupBarrier();
    ${stageR("X", STREAM, "j0", K)}
    workgroupBarrier();
    ${accumulate([{ acc: "a", w: "C", z: "X" }])}
    workgroupBarrier();
  }
  ${
    store("a", (row) =>
      `u.c.x + (b * T + ${row}) * 3u * d + h * HD`, " * scale")
  }
}
`;
}

/**
 * Backward for keys and values: per query block, S = K·Qᵀ then dY·Vᵀ
 * (K then V restaged over the same workgroup memory); P (dropped) and
 * dS = P ⊙ (dP − D)·scale into workgroup memory with dY and Q row-major;
 * dv += Pᵀ·dY and dk += dSᵀ·Q in one loop (4 × 4 each per thread).
 *
 * @example
 * ```ts
 * import { wideAttentionKeyValueSource } from "./_attention_wide_wgsl.ts";
 * import { assertStringIncludes } from "@std/assert";
 * const bias = { slope: 0.5, neighbours: false };
 * const wgsl = wideAttentionKeyValueSource(64, false, false, bias);
 * assertStringIncludes(wgsl, "fn alibiBias(");
 * ```
 */
export function wideAttentionKeyValueSource(
  hd: number,
  causal: boolean,
  dropout = false,
  bias: AttentionBias | null = null,
): string {
  const query = (k: number) => `(i0 + 2u * g + ${k}u)`;
  const both = [0, 1].map((k) => {
    const i = query(k);
    const kp = dropout ? ` * ${keep4(i, false)}` : "";
    return `{
      var lse = 0.0; var Dq = 0.0;
      if (${i} < T) { lse = act[u.b.y + rowBase + ${i}]; Dq = act[u.c.y + rowBase + ${i}]; }
      let pr = exp(s${k} * scale${bias ? ` + ${alibi4(i, false)}` : ""} - lse);
      let ok = ${valid4(i, causal, false)};
      pk${k} = select(vec4<f32>(0.0), pr${kp}, ok);
      ds${k} = select(vec4<f32>(0.0), pr * (dp${k}${kp} - Dq) * scale, ok);
    }`;
  }).join("\n    ");
  const QOFF = `${STREAM * WIDE_OWN / 4}u + `;
  return `${
    prologue(
      hd,
      dropout,
      bias,
      `var<workgroup> A: array<vec4<f32>, ${
        Math.max(16 * hd, 512 + 8 * hd)
      }>; // K, then V, [column][key]; dS [query][key] and Q [query][column]
var<workgroup> X: array<vec4<f32>, ${
        8 * hd
      }>; // Q, then dY, [column][query]; dY [query][column]
var<workgroup> C: array<vec4<f32>, 512>; // P (dropped) [query][key]`,
    )
  }
  ${zero4("dk")} ${zero4("dv")}
  for (var i0 = ${causal ? "own0" : "0u"}; i0 < T; i0 += ${STREAM}u) {
    ${stageT("A", WIDE_OWN, "own0", K)}
    ${stageT("X", STREAM, "i0", Q)}
    workgroupBarrier();
    ${dot42("A", "X", "s0", "s1")}
    workgroupBarrier();
    ${stageT("A", WIDE_OWN, "own0", V)}
    ${stageT("X", STREAM, "i0", DY)}
    workgroupBarrier();
    ${dot42("A", "X", "dp0", "dp1")}
    var pk0: vec4<f32>; var pk1: vec4<f32>; var ds0: vec4<f32>; var ds1: vec4<f32>;
    ${both}
    workgroupBarrier();
    C[(2u * g) * 16u + rg] = pk0; C[(2u * g + 1u) * 16u + rg] = pk1;
    A[(2u * g) * 16u + rg] = ds0; A[(2u * g + 1u) * 16u + rg] = ds1;
    ${stageR("X", STREAM, "i0", DY)}
    ${stageR("A", STREAM, "i0", Q, QOFF)}
    workgroupBarrier();
    ${
    accumulate([
      { acc: "dv", w: "C", z: "X" },
      { acc: "dk", w: "A", z: "A", zOff: QOFF },
    ])
  }
    workgroupBarrier();
  }
  ${store("dk", (row) => `u.c.x + (b * T + ${row}) * 3u * d + d + h * HD`)}
  ${store("dv", (row) => `u.c.x + (b * T + ${row}) * 3u * d + 2u * d + h * HD`)}
}
`;
}
