// WGSL sources of the engine's kernels (f32). Private: the engine builds each
// pipeline once. Every kernel shares one bind-group layout: binding 0 is the
// dispatch's uniform block (16 u32; floats are bit-cast), bindings 1–7 are
// whole storage buffers, all declared read_write so that one buffer may be
// bound to several slots (WebGPU allows aliasing writable storage):
//
// | binding | elementwise kernels | matmul |
// |---|---|---|
// | 1 | activations arena | A |
// | 2 | parameters | B |
// | 3 | gradients | C (output) |
// | 4 | Adam m / EMA copy | bias |
// | 5 | Adam v | E (residual or pre-activation) |
// | 6 | int inputs (tokens, targets, embedding-gradient index) | — |
// | 7 | scalars (loss sum, grad norm, lr, bias corrections) | — |

import type { Epilogue } from "./_kernels.ts";

/** Scalars buffer slots (f32). */
export const S = {
  lossSum: 0,
  lossSteps: 1,
  gradNorm: 2,
  clipScale: 3,
  evalSum: 4,
  evalCount: 5,
  lr: 8,
  c1: 9,
  c2: 10,
  maxNorm: 11,
  emaDecay: 12,
  dropSeed: 13, // u32 bits: this step's dropout seed
  dropRate: 14,
  size: 16,
} as const;

/** Shared head of every kernel: the uniform block and `flat_id` for 2-D grids. */
export const HEADER = `
struct U { a: vec4<u32>, b: vec4<u32>, c: vec4<u32>, d: vec4<u32> }
@group(0) @binding(0) var<uniform> u: U;
fn f(x: u32) -> f32 { return bitcast<f32>(x); }
fn flat_id(wg: vec3<u32>, nwg: vec3<u32>) -> u32 { return wg.y * nwg.x + wg.x; }
`;

// Dropout masks from a counter-based hash, so the backward recomputes the
// forward's mask: keep(site, i) is 0 with probability rate, else
// 1/(1 − rate) (tf.dropout's scaling). A site is the arena offset of the
// tensor the mask belongs to, i its element index; the seed changes per step.
/** A 32-bit integer hash (lowbias32), a bijection of u32: counter-based randomness. */
export const HASH = `
fn hash_u32(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u; x *= 0x7feb352du; x ^= x >> 15u; x *= 0x846ca68bu; x ^= x >> 16u;
  return x;
}
`;
export const DROP = `${HASH}
fn keep(site: u32, i: u32) -> f32 {
  let h = hash_u32(hash_u32(bitcast<u32>(scl[${13}]) ^ hash_u32(site)) ^ hash_u32(i ^ 0x9e3779b9u));
  let rate = scl[${14}];
  if (f32(h >> 8u) * (1.0 / 16777216.0) < rate) { return 0.0; }
  return 1.0 / (1.0 - rate);
}
`;

export function buffers(slots: Record<number, string | undefined>): string {
  return Object.entries(slots).filter(([, decl]) => decl).map(([b, decl]) =>
    `@group(0) @binding(${b}) var<storage, read_write> ${decl};`
  ).join("\n");
}

export const ACT = "act: array<f32>";
export const PAR = "par: array<f32>";
const GRD = "grd: array<f32>";
export const INT = "ints: array<i32>";
export const SCL = "scl: array<f32>";

// GELU, tanh approximation (GPT-2's gelu_new); tanh from exp with a clamp so
// that large |x| cannot overflow to inf/inf.
export const GELU = `
const GELU_C: f32 = 0.7978845608028654;
fn tanh_safe(x: f32) -> f32 {
  let e = exp(2.0 * clamp(x, -15.0, 15.0));
  return 1.0 - 2.0 / (e + 1.0);
}
fn gelu(x: f32) -> f32 {
  return 0.5 * x * (1.0 + tanh_safe(GELU_C * (x + 0.044715 * x * x * x)));
}
fn silu(x: f32) -> f32 { return x / (1.0 + exp(-x)); }
fn silu_grad(x: f32) -> f32 {
  let s = 1.0 / (1.0 + exp(-x));
  return s + x * s * (1.0 - s);
}
fn gelu_grad(x: f32) -> f32 {
  let t = tanh_safe(GELU_C * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * x * x);
}
`;

/**
 * Output tile of a matmul workgroup: 32 (8 × 8 threads, 4 × 4 outputs
 * each, K in steps of 8; small M or N), 64 (16 × 16 threads, 4 × 4, steps
 * of 16), 128 (16 × 16 threads, 8 × 8, steps of 8).
 */
export type MatmulTile = 32 | 64 | 128;

/** Variants of {@linkcode matmulSource} beyond transposes and epilogue. */
export interface MatmulSourceOptions {
  /**
   * A read as vec4 along its stored rows: A's offset, leading dimension and
   * stored row length (K, or M when transposed) are multiples of 4.
   */
  vecA?: boolean;
  /** B read as vec4 (offset, ld and stored row length — N, or K when transposed — multiples of 4). */
  vecB?: boolean;
  /** A and B stored as f16 (`shader-f16`); staging and accumulation stay f32. */
  f16?: boolean;
  /**
   * Operands declared `var<storage, read>` (their binding must then be
   * `read-only-storage`, and their buffer not written in the dispatch).
   */
  readOnly?: { a?: boolean; b?: boolean; bias?: boolean; e?: boolean };
}

/** Epilogues that write E (the pre-activation). */
export const WRITES_E: readonly Epilogue[] = ["bias_gelu", "bias_silu"];

/**
 * The statement of a matmul epilogue for one output: it sees `v` (the
 * product), `m`, `n`, `ci` (C's index), `N`, `ldc`, `cOff`, `biasOff`,
 * `eOff`, `lde` and the bindings of {@linkcode epilogueBindings}.
 */
export function matmulEpilogue(epilogue: Epilogue, dropout: boolean): string {
  // The residual branch's dropout: site = the output's offset, i = m·N + n.
  const DROPPED = dropout ? " * keep(cOff, m * N + n)" : "";
  const store: Record<Epilogue, string> = {
    store: `C[ci] = v;`,
    accumulate: `C[ci] = C[ci] + v;`,
    bias: `C[ci] = v + Bias[biasOff + n];`,
    bias_gelu: `let pre = v + Bias[biasOff + n];
      E[eOff + m * lde + n] = pre; C[ci] = gelu(pre);`,
    bias_residual:
      `C[ci] = (v + Bias[biasOff + n])${DROPPED} + E[eOff + m * lde + n];`,
    gelu_backward: `C[ci] = v * gelu_grad(E[eOff + m * lde + n]);`,
    bias_silu: `let pre = v + Bias[biasOff + n];
      E[eOff + m * lde + n] = pre; C[ci] = silu(pre);`,
    silu_backward: `C[ci] = v * silu_grad(E[eOff + m * lde + n]);`,
    bias_gate_residual: `let br = (v + Bias[biasOff + n])${DROPPED};
      X[u.d.w + m * ldc + n] = br;
      C[ci] = E[eOff + m * lde + n] + br * (1.0 + X[u.d.x + (m / u.d.z) * u.d.y + n]);`,
  };
  return store[epilogue];
}

/** One matmul binding, `read` when asked (see `MatmulSourceOptions.readOnly`). */
export function matmulBinding(
  b: number,
  what: string,
  readOnly = false,
): string {
  return `@group(0) @binding(${b}) var<storage, ${
    readOnly ? "read" : "read_write"
  }> ${what};`;
}

/**
 * The bindings 3–7 an epilogue statement (`uses`, from
 * {@linkcode matmulEpilogue}) needs: C, and Bias, E, X, the scalars where
 * it reads them.
 */
export function epilogueBindings(
  epilogue: Epilogue,
  uses: string,
  ro: MatmulSourceOptions["readOnly"] = {},
): string {
  return [
    matmulBinding(3, "C: array<f32>"),
    uses.includes("Bias") ? matmulBinding(4, "Bias: array<f32>", ro.bias) : "",
    uses.includes("E[")
      ? matmulBinding(5, "E: array<f32>", ro.e && !WRITES_E.includes(epilogue))
      : "",
    uses.includes("X[") ? matmulBinding(6, "X: array<f32>") : "",
    uses.includes("keep(") ? matmulBinding(7, SCL) : "",
  ].filter((x) => x).join("\n");
}

/**
 * Tiled matmul `C[M, N] = op(A)[M, K] · op(B)[K, N]` with a fused epilogue.
 * A T × T output tile per workgroup of W × W threads (W = 8 for T = 32,
 * else 16), R = T/W rows and columns each; K in steps of BK = 4W²/T
 * through two workgroup stages (double-buffered: the next step's operands
 * are fetched into registers while the current stage is multiplied, one
 * barrier per step; 16 KiB in all at T 64 and 128). Every thread fetches 4
 * consecutive elements of each operand per step — one vec4 when aligned
 * (`vecA`, `vecB`), else 4 guarded scalars — and reads the stages as vec4
 * (its rows and columns are 4-runs, 4W apart) into vec4 accumulators. Uniform: a = (M, N, K, lda),
 * b = (ldb, ldc, aOff, bOff), c = (cOff, biasOff, eOff, lde), and for the
 * gate: d = (gateOff, gateStride, rowsPerBatch, auxOff) in X (binding 6).
 * `transA`: A is stored [K, M]; `transB`: B is stored [N, K].
 */
export function matmulSource(
  transA: boolean,
  transB: boolean,
  epilogue: Epilogue,
  dropout = false,
  tile: MatmulTile = 64,
  options: MatmulSourceOptions = {},
): string {
  if (![32, 64, 128].includes(tile)) {
    throw new RangeError(`matmul tile must be 32, 64 or 128, got ${tile}`);
  }
  const T = tile, W = T === 32 ? 8 : 16, R = T / W, BK = (4 * W * W) / T;
  const Q = T / 4, ST = BK * Q;
  const vecA = options.vecA ?? false, vecB = options.vecB ?? false;
  const half = options.f16 ?? false;
  const ro = options.readOnly ?? {};
  const el = half ? "f16" : "f32";
  const v4 = (x: string) => half ? `vec4<f32>(${x})` : x;
  const s1 = (x: string) => half ? `f32(${x})` : x;
  // Unrolled: llvmpipe caps a shader's loop iterations, so only K loops.
  const four = (f: (i: number) => string) => [0, 1, 2, 3].map(f).join(" ");
  // The fetch of one operand: 4 consecutive stored elements of the tile
  // (along the stored row), and where they go in the stage ([BK][T]).
  const fetch = (
    name: "A" | "B",
    contiguousK: boolean,
    vec: boolean,
    outer: string, // the row or column index bound (M or N)
    outer0: string, // row0 or col0
    ld: string,
    off: string,
  ) => {
    const at = (o: string, k: string) =>
      contiguousK
        ? `${off} + ${o} * ${ld} + ${k}`
        : `${off} + ${k} * ${ld} + ${o}`;
    if (contiguousK) {
      // 4 k's of one row (or column): transposed into the stage.
      const head = `let oo = tid / ${BK / 4}u; let kq = (tid % ${BK / 4}u) * 4u;
  let o = ${outer0} + oo; let k = k0 + kq;`;
      const body = vec
        ? `if (o < ${outer} && k < K) { return ${
          v4(`${name}[(${at("o", "k")}) / 4u]`)
        }; }
  return vec4<f32>(0.0);`
        : `var x = vec4<f32>(0.0);
  if (o < ${outer}) {${
          four((i) =>
            ` if (k + ${i}u < K) { x[${i}] = ${
              s1(`${name}[${at("o", `k + ${i}u`)}]`)
            }; }`
          )
        } }
  return x;`;
      const store = `let oo = tid / ${BK / 4}u; let kq = (tid % ${
        BK / 4
      }u) * 4u;
  ${
        four((i) =>
          `${name}s[s * ${ST}u + (kq + ${i}u) * ${Q}u + oo / 4u][oo % 4u] = x[${i}];`
        )
      }`;
      return { load: `${head}\n  ${body}`, store };
    }
    // 4 m's (or n's) of one k: straight into the stage as a vec4.
    const head = `let kk = tid / ${Q}u; let oq = (tid % ${Q}u) * 4u;
  let o = ${outer0} + oq; let k = k0 + kk;`;
    const body = vec
      ? `if (o < ${outer} && k < K) { return ${
        v4(`${name}[(${at("o", "k")}) / 4u]`)
      }; }
  return vec4<f32>(0.0);`
      : `var x = vec4<f32>(0.0);
  if (k < K) {${
        four((i) =>
          ` if (o + ${i}u < ${outer}) { x[${i}] = ${
            s1(`${name}[${at(`o + ${i}u`, "k")}]`)
          }; }`
        )
      } }
  return x;`;
    const store = `let kk = tid / ${Q}u; let oq = (tid % ${Q}u) * 4u;
  ${name}s[s * ${ST}u + kk * ${Q}u + oq / 4u] = x;`;
    return { load: `${head}\n  ${body}`, store };
  };
  const fa = fetch("A", !transA, vecA, "u.a.x", "row0", "u.a.w", "u.b.z");
  const fb = fetch("B", transB, vecB, "u.a.y", "col0", "u.b.x", "u.b.w");
  const uses = matmulEpilogue(epilogue, dropout);
  const range = (n: number) => [...Array(n).keys()];
  // This thread's i-th row (j-th column) inside the tile.
  const rowOf = (i: number, id: string) =>
    `${(i >> 2) * 4 * W + (i & 3)}u + 4u * lid.${id}`;
  const accDecl = range(R).flatMap((i) =>
    range(R / 4).map((c) => `var c${i}_${c} = vec4<f32>(0.0);`)
  ).join(" ");
  const value = (i: number, j: number) => `c${i}_${j >> 2}[${j & 3}]`;
  // One k of the stage: unrolled, so accumulators stay registers and only
  // the loop over K remains (llvmpipe caps a shader's loop iterations).
  const fmaStep = (kk: number) => {
    const reads = range(R / 4).map((c) =>
      `let a${c} = As[sb + ${kk * Q + c * W}u + lid.y]; let b${c} = Bs[sb + ${
        kk * Q + c * W
      }u + lid.x];`
    );
    const fmas = range(R).flatMap((i) =>
      range(R / 4).map((c) => `c${i}_${c} += a${i >> 2}[${i & 3}] * b${c};`)
    );
    return `{ ${[...reads, ...fmas].join(" ")} }`;
  };
  const fmas = range(BK).map(fmaStep).join("\n    ");
  const epilogueCode = range(R).map((i) =>
    `{
    let m = row0 + ${rowOf(i, "y")};
    if (m < M) {${
      range(R).map((j) => `
      { let n = col0 + ${rowOf(j, "x")};
        if (n < N) { let ci = cOff + m * ldc + n; let v = ${
        value(i, j)
      }; ${uses} } }`)
        .join("")
    }
    }
  }`
  ).join("\n  ");
  const bindings = [
    matmulBinding(1, `A: array<${vecA ? `vec4<${el}>` : el}>`, ro.a),
    matmulBinding(2, `B: array<${vecB ? `vec4<${el}>` : el}>`, ro.b),
    epilogueBindings(epilogue, uses, ro),
  ].join("\n");
  return `${half ? "enable f16;\n" : ""}${HEADER}${GELU}
${bindings}${uses.includes("keep(") ? DROP : ""}
var<workgroup> As: array<vec4<f32>, ${2 * ST}>; // 2 stages of [BK][T], k-major
var<workgroup> Bs: array<vec4<f32>, ${2 * ST}>;
fn loadA(k0: u32, row0: u32, tid: u32) -> vec4<f32> {
  let K = u.a.z;
  ${fa.load}
}
fn loadB(k0: u32, col0: u32, tid: u32) -> vec4<f32> {
  let K = u.a.z;
  ${fb.load}
}
fn storeA(s: u32, tid: u32, x: vec4<f32>) {
  ${fa.store}
}
fn storeB(s: u32, tid: u32, x: vec4<f32>) {
  ${fb.store}
}
@compute @workgroup_size(${W}, ${W})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = u.a.x; let N = u.a.y; let K = u.a.z;
  let ldc = u.b.y; let cOff = u.c.x; let biasOff = u.c.y; let eOff = u.c.z; let lde = u.c.w;
  let row0 = wg.y * ${T}u; let col0 = wg.x * ${T}u;
  let tid = lid.y * ${W}u + lid.x;
  ${accDecl}
  let steps = (K + ${BK - 1}u) / ${BK}u;
  var pa = loadA(0u, row0, tid); var pb = loadB(0u, col0, tid);
  storeA(0u, tid, pa); storeB(0u, tid, pb);
  workgroupBarrier();
  for (var t = 0u; t < steps; t++) {
    let s = t % 2u; let sb = s * ${ST}u;
    let more = t + 1u < steps;
    if (more) { pa = loadA((t + 1u) * ${BK}u, row0, tid); pb = loadB((t + 1u) * ${BK}u, col0, tid); }
    ${fmas}
    if (more) { storeA(1u - s, tid, pa); storeB(1u - s, tid, pb); }
    workgroupBarrier();
  }
  ${epilogueCode}
}
`;
}

/**
 * The first matmul kernel (kept for `bench:webgpu --kernels old`):
 * tiled matmul `C[M, N] = op(A)[M, K] · op(B)[K, N]` with a fused epilogue.
 * A T × T output tile per workgroup of 16 × 16 threads (T = 64: 4 × 4
 * each, K in steps of 16; T = 128: 8 × 8 each, K in steps of 8), operands
 * staged through workgroup memory. Uniform: a = (M, N, K, lda),
 * b = (ldb, ldc, aOff, bOff), c = (cOff, biasOff, eOff, lde), and for the
 * gate: d = (gateOff, gateStride, rowsPerBatch, auxOff) in X (binding 6).
 * `transA`: A is stored [K, M]; `transB`: B is stored [N, K].
 */
export function matmulSourceV1(
  transA: boolean,
  transB: boolean,
  epilogue: Epilogue,
  dropout = false,
  tile: 64 | 128 = 64,
): string {
  // T × T outputs per workgroup of 16 × 16 threads, R × R each, K in steps
  // of BK through workgroup memory (2·BK·T floats = 8 KiB either way).
  const T = tile, R = tile / 16, BK = tile === 64 ? 16 : 8;
  const LOADS = (BK * T) / 256;
  // Load maps chosen so that consecutive threads read consecutive addresses.
  const loadA = transA
    ? `let kk = e / ${T}u; let mm = e % ${T}u; let m = row0 + mm; let k = k0 + kk;
       var x = 0.0; if (m < M && k < K) { x = A[aOff + k * lda + m]; }`
    : `let mm = e / ${BK}u; let kk = e % ${BK}u; let m = row0 + mm; let k = k0 + kk;
       var x = 0.0; if (m < M && k < K) { x = A[aOff + m * lda + k]; }`;
  const loadB = transB
    ? `let nn = e / ${BK}u; let kk = e % ${BK}u; let n = col0 + nn; let k = k0 + kk;
       var x = 0.0; if (n < N && k < K) { x = B[bOff + n * ldb + k]; }`
    : `let kk = e / ${T}u; let nn = e % ${T}u; let n = col0 + nn; let k = k0 + kk;
       var x = 0.0; if (n < N && k < K) { x = B[bOff + k * ldb + n]; }`;
  const uses = matmulEpilogue(epilogue, dropout);
  // Unrolled in the generated code, so the R × R accumulators are scalars
  // (registers) for every shader compiler.
  const range = [...Array(R).keys()];
  const accDecl = range.flatMap((i) =>
    range.map((j) => `var c${i}_${j} = 0.0;`)
  ).join(" ");
  // Only the loop over K remains: software rasterisers cap loop iterations
  // per invocation (llvmpipe stops a shader's loops after 65,535), and GPU
  // compilers get straight-line code.
  const loads = [...Array(LOADS).keys()].map((r) =>
    `{ let e = tid + ${r * 256}u;
      { ${loadA} As[kk * ${T}u + mm] = x; }
      { ${loadB} Bs[kk * ${T}u + nn] = x; } }`
  ).join("\n    ");
  const fmaStep = (kk: number) =>
    range.map((i) => `let a${i} = As[kk * ${T}u + lid.y + ${16 * i}u];`).concat(
      range.map((j) => `let b${j} = Bs[kk * ${T}u + lid.x + ${16 * j}u];`),
    )
      .concat(
        range.flatMap((i) => range.map((j) => `c${i}_${j} += a${i} * b${j};`)),
      ).join(" ").replaceAll("kk * ", `${kk}u * `);
  const fmas = [...Array(BK).keys()].map((kk) => `{ ${fmaStep(kk)} }`)
    .join("\n    ");
  const epilogueCode = range.map((i) =>
    `{
    let m = row0 + lid.y + ${16 * i}u;
    if (m < M) {${
      range.map((j) => `
      { let n = col0 + lid.x + ${16 * j}u;
        if (n < N) { let ci = cOff + m * ldc + n; let v = c${i}_${j}; ${uses} } }`)
        .join("")
    }
    }
  }`
  ).join("\n  ");
  return `${HEADER}${GELU}
${
    buffers({
      1: "A: array<f32>",
      2: "B: array<f32>",
      3: "C: array<f32>",
      ...(uses.includes("Bias") ? { 4: "Bias: array<f32>" } : {}),
      ...(uses.includes("E[") ? { 5: "E: array<f32>" } : {}),
      ...(uses.includes("X[") ? { 6: "X: array<f32>" } : {}),
      ...(uses.includes("keep(") ? { 7: SCL } : {}),
    })
  }${uses.includes("keep(") ? DROP : ""}
var<workgroup> As: array<f32, ${BK * T}>; // [BK][T]: k-major
var<workgroup> Bs: array<f32, ${BK * T}>; // [BK][T]
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = u.a.x; let N = u.a.y; let K = u.a.z; let lda = u.a.w;
  let ldb = u.b.x; let ldc = u.b.y; let aOff = u.b.z; let bOff = u.b.w;
  let cOff = u.c.x; let biasOff = u.c.y; let eOff = u.c.z; let lde = u.c.w;
  let row0 = wg.y * ${T}u; let col0 = wg.x * ${T}u;
  let tid = lid.y * 16u + lid.x;
  ${accDecl}
  for (var k0 = 0u; k0 < K; k0 += ${BK}u) {
    ${loads}
    workgroupBarrier();
    ${fmas}
    workgroupBarrier();
  }
  ${epilogueCode}
}
`;
}

// A workgroup of 64 threads reducing one value each.
const REDUCE64 = `
var<workgroup> red: array<f32, 64>;
fn sum64(x: f32, t: u32) -> f32 {
  red[t] = x;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn max64(x: f32, t: u32) -> f32 {
  red[t] = x;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] = max(red[t], red[t + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
`;

/**
 * LayerNorm forward, one workgroup per row: y = (x − mean)·rstd·w + b with
 * rstd = 1/√(var + 1e-5), saving mean and rstd for the backward.
 * a = (rows, d, xOff, yOff), b = (wOff, bOff, meanOff, rstdOff). With
 * c.x = 1 the output is modulated (adaLN): y·(1 + scale) + shift, the shift
 * of batch row b at act[c.z + b·c.w] and the scale d further (c.y = T).
 */
export const LAYERNORM_FORWARD = `${HEADER}${REDUCE64}
${buffers({ 1: ACT, 2: PAR })}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let row = flat_id(wg, nwg);
  let rows = u.a.x; let d = u.a.y;
  if (row >= rows) { return; }
  let x0 = u.a.z + row * d; let y0 = u.a.w + row * d;
  var s = 0.0;
  for (var c = t; c < d; c += 64u) { s += act[x0 + c]; }
  let mean = sum64(s, t) / f32(d);
  var q = 0.0;
  for (var c = t; c < d; c += 64u) { let z = act[x0 + c] - mean; q += z * z; }
  let rstd = 1.0 / sqrt(sum64(q, t) / f32(d) + 1e-5);
  let modulated = u.c.x == 1u;
  let m0 = u.c.z + (row / max(u.c.y, 1u)) * u.c.w; // shift of this row's batch
  for (var c = t; c < d; c += 64u) {
    var y = (act[x0 + c] - mean) * rstd * par[u.b.x + c] + par[u.b.y + c];
    if (modulated) { y = y * (1.0 + act[m0 + d + c]) + act[m0 + c]; }
    act[y0 + c] = y;
  }
  if (t == 0u) { act[u.b.z + row] = mean; act[u.b.w + row] = rstd; }
}
`;

/**
 * LayerNorm backward to the input, one workgroup per row:
 * dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·w; written, or added
 * to the output when c.x = 1 (the residual stream's gradient).
 * a = (rows, d, dyOff, xOff), b = (meanOff, rstdOff, wOff, dxOff), c.x = add.
 */
export const LAYERNORM_BACKWARD = `${HEADER}${REDUCE64}
${buffers({ 1: ACT, 2: PAR })}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let row = flat_id(wg, nwg);
  let rows = u.a.x; let d = u.a.y;
  if (row >= rows) { return; }
  let dy0 = u.a.z + row * d; let x0 = u.a.w + row * d; let dx0 = u.b.w + row * d;
  let mean = act[u.b.x + row]; let rstd = act[u.b.y + row];
  var s1 = 0.0; var s2 = 0.0;
  for (var c = t; c < d; c += 64u) {
    let g = act[dy0 + c] * par[u.b.z + c];
    s1 += g; s2 += g * (act[x0 + c] - mean) * rstd;
  }
  let m1 = sum64(s1, t) / f32(d);
  let m2 = sum64(s2, t) / f32(d);
  for (var c = t; c < d; c += 64u) {
    let g = act[dy0 + c] * par[u.b.z + c];
    let xh = (act[x0 + c] - mean) * rstd;
    let dx = rstd * (g - m1 - xh * m2);
    if (u.c.x == 1u) { act[dx0 + c] += dx; } else { act[dx0 + c] = dx; }
  }
}
`;

// Column reductions over rows: a workgroup of 16 columns × 16 row lanes;
// lane y sums rows y, y + 16, … in order, then a fixed tree adds the lanes,
// so the result is deterministic and 16 × more parallel than a thread per
// column.
const COLUMN_TREE = `
var<workgroup> red0: array<f32, 256>;
var<workgroup> red1: array<f32, 256>;
fn tree(lid: vec3<u32>) {
  for (var s = 8u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid.y < s) {
      red0[lid.y * 16u + lid.x] += red0[(lid.y + s) * 16u + lid.x];
      red1[lid.y * 16u + lid.x] += red1[(lid.y + s) * 16u + lid.x];
    }
  }
  workgroupBarrier();
}
`;

/**
 * LayerNorm weight and bias gradients, summed over rows (deterministic).
 * a = (rows, d, dyOff, xOff), b = (meanOff, rstdOff, gwOff, gbOff).
 */
export const LAYERNORM_PARAMS_BACKWARD = `${HEADER}${COLUMN_TREE}
${buffers({ 1: ACT, 3: GRD })}
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c = wg.x * 16u + lid.x; let rows = u.a.x; let d = u.a.y;
  var gw = 0.0; var gb = 0.0;
  if (c < d) {
    for (var r = lid.y; r < rows; r += 16u) {
      let dy = act[u.a.z + r * d + c];
      gw += dy * (act[u.a.w + r * d + c] - act[u.b.x + r]) * act[u.b.y + r];
      gb += dy;
    }
  }
  red0[lid.y * 16u + lid.x] = gw; red1[lid.y * 16u + lid.x] = gb;
  tree(lid);
  if (lid.y == 0u && c < d) { grd[u.b.z + c] = red0[lid.x]; grd[u.b.w + c] = red1[lid.x]; }
}
`;

/**
 * Bias gradient: column sums of an activation [rows, cols] (row stride ld).
 * a = (rows, cols, ld, xOff), b.x = outOff.
 */
export const COLUMN_SUM = `${HEADER}${COLUMN_TREE}
${buffers({ 1: ACT, 3: GRD })}
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c = wg.x * 16u + lid.x; let rows = u.a.x; let cols = u.a.y; let ld = u.a.z;
  var s = 0.0;
  if (c < cols) {
    for (var r = lid.y; r < rows; r += 16u) { s += act[u.a.w + r * ld + c]; }
  }
  red0[lid.y * 16u + lid.x] = s; red1[lid.y * 16u + lid.x] = 0.0;
  tree(lid);
  if (lid.y == 0u && c < cols) { grd[u.b.x + c] = red0[lid.x]; }
}
`;

/**
 * Token (+ learned position) embedding: x[n, c] = wte[tok[n], c] + wpe[n mod T, c].
 * a = (N·d, d, T, tokOff), b = (wteOff, wpeOff, learned, outOff); with
 * dropout the mask's site is outOff.
 */
export function embedForwardSource(dropout: boolean): string {
  return `${HEADER}
${buffers({ 1: ACT, 2: PAR, 6: INT, 7: dropout ? SCL : undefined })}
${dropout ? DROP : ""}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) l: u32) {
  let i = flat_id(wg, nwg) * 256u + l;
  if (i >= u.a.x) { return; }
  let d = u.a.y; let n = i / d; let c = i % d;
  let tok = u32(ints[u.a.w + n]);
  var x = par[u.b.x + tok * d + c];
  if (u.b.z == 1u) { x += par[u.b.y + (n % u.a.z) * d + c]; }
  act[u.b.w + i] = x${dropout ? " * keep(u.b.w, i)" : ""};
}
`;
}

/**
 * Embedding backward (tied wte), deterministic scatter-add: the host lists
 * the distinct tokens of the batch and, for each, its positions (CSR); one
 * thread per (distinct token, channel) sums its rows of dx in order and adds
 * them to the gradient row. a = (maxU·d, d, dxOff, countOff),
 * b = (tokensOff, startsOff, positionsOff, wteOff), c.x = dropout site.
 */
export function embedBackwardWteSource(dropout: boolean): string {
  return `${HEADER}
${buffers({ 1: ACT, 3: GRD, 6: INT, 7: dropout ? SCL : undefined })}
${dropout ? DROP : ""}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) l: u32) {
  let i = flat_id(wg, nwg) * 256u + l;
  if (i >= u.a.x) { return; }
  let d = u.a.y; let k = i / d; let c = i % d;
  if (k >= u32(ints[u.a.w])) { return; }
  let tok = u32(ints[u.b.x + k]);
  var s = 0.0;
  for (var q = u32(ints[u.b.y + k]); q < u32(ints[u.b.y + k + 1u]); q++) {
    let o = u32(ints[u.b.z + q]) * d + c;
    s += act[u.a.z + o]${dropout ? " * keep(u.c.x, o)" : ""};
  }
  grd[u.b.w + tok * d + c] += s;
}
`;
}

/**
 * Learned-position gradient: wpe[t, c] = Σ_b dx[b, t, c].
 * a = (T·d, d, T, B), b = (dxOff, wpeOff, dropout site).
 */
export function embedBackwardWpeSource(dropout: boolean): string {
  return `${HEADER}
${buffers({ 1: ACT, 3: GRD, 7: dropout ? SCL : undefined })}
${dropout ? DROP : ""}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) l: u32) {
  let i = flat_id(wg, nwg) * 256u + l;
  if (i >= u.a.x) { return; }
  var s = 0.0;
  for (var b = 0u; b < u.a.w; b++) {
    s += act[u.b.x + b * u.a.x + i]${
    dropout ? " * keep(u.b.z, b * u.a.x + i)" : ""
  };
  }
  grd[u.b.y + i] = s;
}
`;
}

/**
 * Rotary positions in place on the q and k thirds of qkv [N, 3d] ("rotate
 * half": channel j pairs with j + hd/2): forward (b.w = 0)
 * (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin), backward (b.w = 1) its
 * transpose. Tables cos, sin [T, hd/2]. a = (N·H·hd/2, T, H, hd),
 * b = (qkvOff, cosOff, sinOff, backward).
 */
export const ROPE = `${HEADER}
${buffers({ 1: ACT })}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) l: u32) {
  let i = flat_id(wg, nwg) * 256u + l;
  if (i >= u.a.x) { return; }
  let T = u.a.y; let H = u.a.z; let hd = u.a.w; let hh = hd / 2u;
  let j = i % hh; let h = (i / hh) % H; let n = i / (hh * H);
  let t = n % T;
  let c = act[u.b.y + t * hh + j];
  var s = act[u.b.z + t * hh + j];
  if (u.b.w == 1u) { s = -s; }
  let d = H * hd;
  for (var part = 0u; part < 2u; part++) {
    let o = u.b.x + n * 3u * d + part * d + h * hd + j;
    let x1 = act[o]; let x2 = act[o + hh];
    act[o] = x1 * c - x2 * s;
    act[o + hh] = x2 * c + x1 * s;
  }
}
`;

/** Workgroup memory the attention kernels stay within (WebGPU's default limit). */
const ATTN_SHARED_BYTES = 16384;

// Expands every `for (var c = 0u; c < HD; c++) { … }` over the head size
// into straight-line code, so the per-thread q, k, v and accumulators are
// registers and no loop runs HD times (software rasterisers cap loop
// iterations; see the matmul).
function unrollHead(source: string, hd: number): string {
  return source.replace(
    /for \(var c = 0u; c < HD; c\+\+\) \{([^{}]*)\}/g,
    (_, body: string) =>
      [...Array(hd).keys()].map((c) => body.replace(/\bc\b/g, `${c}u`).trim())
        .join(" "),
  );
}

/** Positions (queries, or keys) per attention workgroup. */
export const ATTN_BLOCK = 32;

/** Keys (or queries) per tile staged in workgroup memory, for head size hd. */
export function attentionTile(hd: number): number {
  return Math.max(
    1,
    Math.min(64, Math.floor((ATTN_SHARED_BYTES - 512) / (8 * hd))),
  );
}

/**
 * ALiBi of a bidirectional model, baked into the attention kernels: head h
 * adds −m_h · |j − i − c_h| to the score of query i for key j, with
 * m_h = slope · 2^(−8h/H) and c_h = 0, except with `neighbours` for heads 0
 * and 1: m = slope and c = −1, +1 (the tfjs Transformer's `alibiValues`).
 */
export interface AttentionBias {
  /** The first head's slope. */
  slope: number;
  /** Heads 0 and 1 centred on the left and right neighbour. */
  neighbours: boolean;
}

/** A WGSL f32 literal for `x`. */
function f32Literal(x: number): string {
  const s = String(x);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

export function alibiFunction(bias: AttentionBias | null): string {
  if (!bias) return "";
  const slope = f32Literal(bias.slope);
  return `
fn alibiBias(h: u32, H: u32, i: u32, j: u32) -> f32 {
  let nb = ${bias.neighbours} && h < 2u;
  let m = select(${slope} * exp2(-8.0 * f32(h) / f32(H)), ${slope}, nb);
  let c = select(0.0, select(1.0, -1.0, h == 0u), nb);
  return -m * abs(f32(j) - f32(i) - c);
}
`;
}

// Shared prologue: a workgroup of QB = 32 threads (one warp on NVIDIA, so
// small batches still spread over many multiprocessors) owns 32 consecutive
// positions (queries, or keys for the key/value kernel) of one (b, h);
// dispatch grid (⌈T/32⌉, B·H). Uniform a = (B·H·T, T, H, qkvOff), b = (yOff, lseOff,
// scale, dyOff), c = (dqkvOff, DOff).
function attentionPrologue(
  hd: number,
  tile: number,
  dropout: boolean,
  bias: AttentionBias | null = null,
): string {
  return `${HEADER}
${buffers({ 1: ACT, 7: dropout ? SCL : undefined })}
${dropout ? DROP : ""}${alibiFunction(bias)}
const HD: u32 = ${hd}u;
const TILE: u32 = ${tile}u;
@compute @workgroup_size(${ATTN_BLOCK})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let T = u.a.y; let H = u.a.z; let d = H * HD;
  let b = wg.y / H; let h = wg.y % H;
  let p = wg.x * ${ATTN_BLOCK}u + l; // this thread's position
  let live = p < T;
  let r = (b * H + h) * T + p; // row of lse / D
  let scale = f(u.b.z);
  let base = u.a.w + b * T * 3u * d + h * HD; // q of position 0 of (b, h)
  let blockEnd = min(T, wg.x * ${ATTN_BLOCK}u + ${ATTN_BLOCK}u);
`;
}

/**
 * Attention forward, flash-style: each thread owns one query and streams over
 * the keys with an online softmax; keys and values pass through workgroup
 * memory a tile at a time, so no T × T matrix exists anywhere. Saves the
 * log-sum-exp per query for the backward. qkv [B, T, 3d] → y [B, T, d],
 * lse [B, H, T].
 */
export function attentionForwardSource(
  hd: number,
  causal: boolean,
  dropout = false,
  bias: AttentionBias | null = null,
): string {
  const tile = attentionTile(hd);
  // Dropout on the probabilities: site = the layer's lse offset, i = r·T + j.
  const mask = dropout ? " * keep(u.b.y, r * T + j)" : "";
  const alibi = bias ? "\n      s += alibiBias(h, H, p, j);" : "";
  return unrollHead(
    `
var<workgroup> Ks: array<f32, ${tile * hd}>;
var<workgroup> Vs: array<f32, ${tile * hd}>;
${attentionPrologue(hd, tile, dropout, bias)}
  var q: array<f32, HD>; var acc: array<f32, HD>;
  if (live) { for (var c = 0u; c < HD; c++) { q[c] = act[base + p * 3u * d + c] * scale; } }
  var mx = -3.0e38; var den = 0.0;
  let stop = ${causal ? "blockEnd" : "T"};
  for (var j0 = 0u; j0 < stop; j0 += TILE) {
    for (var e = l; e < TILE * HD; e += ${ATTN_BLOCK}u) {
      let j = j0 + e / HD; let c = e % HD;
      var kx = 0.0; var vx = 0.0;
      if (j < T) { kx = act[base + j * 3u * d + d + c]; vx = act[base + j * 3u * d + 2u * d + c]; }
      Ks[e] = kx; Vs[e] = vx;
    }
    workgroupBarrier();
    for (var jj = 0u; jj < TILE; jj++) {
      let j = j0 + jj;
      if (!live || j >= T${causal ? " || j > p" : ""}) { continue; }
      var s = 0.0;
      for (var c = 0u; c < HD; c++) { s += q[c] * Ks[jj * HD + c]; }${alibi}
      let m2 = max(mx, s);
      let corr = exp(mx - m2); let pr = exp(s - m2);
      den = den * corr + pr;
      let pv = pr${mask};
      for (var c = 0u; c < HD; c++) { acc[c] = acc[c] * corr + pv * Vs[jj * HD + c]; }
      mx = m2;
    }
    workgroupBarrier();
  }
  if (!live) { return; }
  let y0 = u.b.x + (b * T + p) * d + h * HD;
  for (var c = 0u; c < HD; c++) { act[y0 + c] = acc[c] / den; }
  act[u.b.y + r] = mx + log(den);
}
`,
    hd,
  );
}

/**
 * Attention backward for the queries, one thread per query, keys and values
 * tiled through workgroup memory: D_i = dy_i·y_i (saved for the key kernel),
 * P_ij = exp(s_ij − lse_i), dq_i = scale · Σ_j P_ij (dy_i·v_j − D_i) k_j.
 */
export function attentionBackwardQuerySource(
  hd: number,
  causal: boolean,
  dropout = false,
  bias: AttentionBias | null = null,
): string {
  const tile = attentionTile(hd);
  const mask = dropout ? " * keep(u.b.y, r * T + j)" : "";
  const alibi = bias ? "\n      s += alibiBias(h, H, p, j);" : "";
  return unrollHead(
    `
var<workgroup> Ks: array<f32, ${tile * hd}>;
var<workgroup> Vs: array<f32, ${tile * hd}>;
${attentionPrologue(hd, tile, dropout, bias)}
  let row = (b * T + p) * d + h * HD;
  var q: array<f32, HD>; var dy: array<f32, HD>; var dq: array<f32, HD>;
  var D = 0.0; var lse = 0.0;
  if (live) {
    for (var c = 0u; c < HD; c++) {
      q[c] = act[base + p * 3u * d + c] * scale;
      dy[c] = act[u.b.w + row + c];
      D += dy[c] * act[u.b.x + row + c];
    }
    lse = act[u.b.y + r];
  }
  let stop = ${causal ? "blockEnd" : "T"};
  for (var j0 = 0u; j0 < stop; j0 += TILE) {
    for (var e = l; e < TILE * HD; e += ${ATTN_BLOCK}u) {
      let j = j0 + e / HD; let c = e % HD;
      var kx = 0.0; var vx = 0.0;
      if (j < T) { kx = act[base + j * 3u * d + d + c]; vx = act[base + j * 3u * d + 2u * d + c]; }
      Ks[e] = kx; Vs[e] = vx;
    }
    workgroupBarrier();
    for (var jj = 0u; jj < TILE; jj++) {
      let j = j0 + jj;
      if (!live || j >= T${causal ? " || j > p" : ""}) { continue; }
      var s = 0.0; var dp = 0.0;
      for (var c = 0u; c < HD; c++) { s += q[c] * Ks[jj * HD + c]; dp += dy[c] * Vs[jj * HD + c]; }${alibi}
      let ds = exp(s - lse) * (dp${mask} - D);
      for (var c = 0u; c < HD; c++) { dq[c] += ds * Ks[jj * HD + c]; }
    }
    workgroupBarrier();
  }
  if (!live) { return; }
  let o = u.c.x + (b * T + p) * 3u * d + h * HD;
  for (var c = 0u; c < HD; c++) { act[o + c] = dq[c] * scale; }
  act[u.c.y + r] = D;
}
`,
    hd,
  );
}

/**
 * Attention backward for keys and values, one thread per key, queries (with
 * their dy, lse and D) tiled through workgroup memory:
 * dv_j = Σ_i P_ij dy_i, dk_j = scale · Σ_i P_ij (dy_i·v_j − D_i) q_i.
 */
export function attentionBackwardKeyValueSource(
  hd: number,
  causal: boolean,
  dropout = false,
  bias: AttentionBias | null = null,
): string {
  const tile = attentionTile(hd);
  const mask = dropout ? " * keep(u.b.y, (rowBase + i) * T + p)" : "";
  // Query i, key p.
  const alibi = bias ? " + alibiBias(h, H, i, p)" : "";
  return unrollHead(
    `
var<workgroup> Qs: array<f32, ${tile * hd}>;
var<workgroup> dYs: array<f32, ${tile * hd}>;
var<workgroup> Ls: array<f32, 64>;
var<workgroup> Ds: array<f32, 64>;
${attentionPrologue(hd, tile, dropout, bias)}
  var k: array<f32, HD>; var v: array<f32, HD>;
  var dk: array<f32, HD>; var dv: array<f32, HD>;
  if (live) {
    for (var c = 0u; c < HD; c++) {
      k[c] = act[base + p * 3u * d + d + c];
      v[c] = act[base + p * 3u * d + 2u * d + c];
    }
  }
  let rowBase = (b * H + h) * T;
  for (var i0 = ${
      causal ? `wg.x * ${ATTN_BLOCK}u` : "0u"
    }; i0 < T; i0 += TILE) {
    for (var e = l; e < TILE * HD; e += ${ATTN_BLOCK}u) {
      let i = i0 + e / HD; let c = e % HD;
      var qx = 0.0; var gx = 0.0;
      if (i < T) { qx = act[base + i * 3u * d + c]; gx = act[u.b.w + (b * T + i) * d + h * HD + c]; }
      Qs[e] = qx; dYs[e] = gx;
    }
    for (var e = l; e < TILE; e += ${ATTN_BLOCK}u) {
      let i = i0 + e;
      var lx = 0.0; var dx = 0.0;
      if (i < T) { lx = act[u.b.y + rowBase + i]; dx = act[u.c.y + rowBase + i]; }
      Ls[e] = lx; Ds[e] = dx;
    }
    workgroupBarrier();
    for (var ii = 0u; ii < TILE; ii++) {
      let i = i0 + ii;
      if (!live || i >= T${causal ? " || i < p" : ""}) { continue; }
      var s = 0.0; var dp = 0.0;
      for (var c = 0u; c < HD; c++) { s += Qs[ii * HD + c] * k[c]; dp += dYs[ii * HD + c] * v[c]; }
      let pr = exp(s * scale${alibi} - Ls[ii]);
      let pk = pr${mask};
      let ds = pr * (dp${mask} - Ds[ii]) * scale;
      for (var c = 0u; c < HD; c++) {
        dv[c] += pk * dYs[ii * HD + c];
        dk[c] += ds * Qs[ii * HD + c];
      }
    }
    workgroupBarrier();
  }
  if (!live) { return; }
  let o = u.c.x + (b * T + p) * 3u * d + h * HD;
  for (var c = 0u; c < HD; c++) { act[o + d + c] = dk[c]; act[o + 2u * d + c] = dv[c]; }
}
`,
    hd,
  );
}

/**
 * Gate backward (adaLN), one thread per (batch row b, channel n): for
 * out = res + br·(1 + g_b), dg_b = Σ_t dout·br and dbr = dout·(1 + g_b).
 * a = (B·d, d, T, doutOff), b = (brOff, gOff, stride, dbrOff), c.x = dgOff
 * (g and dg rows of batch b at off + b·stride), c.y = dropout site (br is
 * stored already dropped; dbr gets the mask).
 */
export function gateBackwardSource(dropout: boolean): string {
  return `${HEADER}
${buffers({ 1: ACT, 7: dropout ? SCL : undefined })}
${dropout ? DROP : ""}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x; let d = u.a.y; let T = u.a.z;
  if (i >= u.a.x) { return; }
  let b = i / d; let n = i % d;
  let g = 1.0 + act[u.b.y + b * u.b.z + n];
  var s = 0.0;
  for (var t = 0u; t < T; t++) {
    let o = (b * T + t) * d + n;
    let dout = act[u.a.w + o];
    s += dout * act[u.b.x + o];
    act[u.b.w + o] = dout * g${dropout ? " * keep(u.c.y, o)" : ""};
  }
  act[u.c.x + b * u.b.z + n] = s;
}
`;
}

/**
 * A residual branch's dropout backward: dst = src · keep(site, i).
 * a = (n, site, srcOff, dstOff).
 */
export const DROPOUT_BACKWARD = `${HEADER}
${buffers({ 1: ACT, 7: SCL })}
${DROP}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) l: u32) {
  let i = flat_id(wg, nwg) * 256u + l;
  if (i >= u.a.x) { return; }
  act[u.a.w + i] = act[u.a.z + i] * keep(u.a.y, i);
}
`;

/**
 * Modulation backward (adaLN), one thread per (b, c): for
 * h = ĥ·(1 + scale_b) + shift_b with ĥ the LayerNorm output (recomputed
 * from x, mean, rstd, w, bias): dshift = Σ_t dh, dscale = Σ_t dh·ĥ, and dh
 * becomes dĥ = dh·(1 + scale_b) in place. a = (B·d, d, T, dhOff),
 * b = (xOff, meanOff, rstdOff, wOff), c = (biasOff, shiftOff, stride,
 * dShiftOff); scales sit d after shifts.
 */
export const MODULATE_BACKWARD = `${HEADER}
${buffers({ 1: ACT, 2: PAR })}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x; let d = u.a.y; let T = u.a.z;
  if (i >= u.a.x) { return; }
  let b = i / d; let c = i % d;
  let s1 = 1.0 + act[u.c.y + b * u.c.z + d + c];
  var dshift = 0.0; var dscale = 0.0;
  for (var t = 0u; t < T; t++) {
    let row = b * T + t;
    let o = row * d + c;
    let dh = act[u.a.w + o];
    let xh = (act[u.b.x + o] - act[u.b.y + row]) * act[u.b.z + row] * par[u.b.w + c] + par[u.c.x + c];
    dshift += dh; dscale += dh * xh;
    act[u.a.w + o] = dh * s1;
  }
  act[u.c.w + b * u.c.z + c] = dshift;
  act[u.c.w + b * u.c.z + d + c] = dscale;
}
`;

/** In place dx ← dx·silu'(pre) over n values. a = (n, dxOff, preOff). */
export const SILU_BACKWARD = `${HEADER}
${GELU}
${buffers({ 1: ACT })}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= u.a.x) { return; }
  act[u.a.y + i] = act[u.a.y + i] * silu_grad(act[u.a.z + i]);
}
`;

/**
 * Softmax cross-entropy with per-token weights, one workgroup per row of a
 * logits chunk [rows, V]: rowLoss = w·(lse − logit[target]); the logits are
 * overwritten by their gradient w·(softmax − onehot). A target < 0 or a zero
 * weight gives 0 loss and 0 gradient; column `exclude` (the mask id, or
 * 0xffffffff) is left out of the softmax (probability 0, gradient 0).
 * a = (rows, V, logitsOff, rowStart), b = (targetsOff, weightsOff,
 * rowLossOff, exclude).
 */
export const CROSS_ENTROPY = `${HEADER}${REDUCE64}
${buffers({ 1: ACT, 6: INT })}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let r = flat_id(wg, nwg);
  if (r >= u.a.x) { return; }
  let V = u.a.y; let row = u.a.w + r; let l0 = u.a.z + r * V;
  let ex = u.b.w;
  let tgt = ints[u.b.x + row];
  let w = act[u.b.y + row];
  var mx = -3.0e38;
  for (var v = t; v < V; v += 64u) { if (v != ex) { mx = max(mx, act[l0 + v]); } }
  mx = max64(mx, t);
  var s = 0.0;
  for (var v = t; v < V; v += 64u) { if (v != ex) { s += exp(act[l0 + v] - mx); } }
  let lse = mx + log(sum64(s, t));
  let live = tgt >= 0 && w != 0.0;
  var tl = 0.0;
  if (live) { tl = act[l0 + u32(tgt)]; }
  workgroupBarrier();
  for (var v = t; v < V; v += 64u) {
    var g = 0.0;
    if (live && v != ex) {
      g = exp(act[l0 + v] - lse);
      if (i32(v) == tgt) { g -= 1.0; }
      g *= w;
    }
    act[l0 + v] = g;
  }
  if (t == 0u) {
    var loss = 0.0;
    if (live) { loss = w * (lse - tl); }
    act[u.b.z + row] = loss;
  }
}
`;

/**
 * Adds the step's loss (Σ of the per-row losses, in order) to the scalars'
 * running sum and counts the step. One workgroup. a = (rows, rowLossOff,
 * slot): the sum at scl[slot], the count at scl[slot + 1].
 */
export const LOSS_REDUCE = `${HEADER}
${buffers({ 1: ACT, 7: SCL })}
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32) {
  var s = 0.0;
  for (var i = t; i < u.a.x; i += 256u) { s += act[u.a.y + i]; }
  red[t] = s;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] += red[t + k]; }
    workgroupBarrier();
  }
  if (t == 0u) {
    scl[u.a.z] += red[0];
    scl[u.a.z + 1u] += 1.0;
  }
}
`;

/** Workgroups of the first pass of the gradient norm. */
export const NORM_GROUPS = 256;

/**
 * Gradient norm, first pass: each of 256 workgroups sums squares of a
 * strided share of the gradients. a = (n, gOff, partialOff).
 */
export const NORM_PARTIAL = `${HEADER}
${buffers({ 1: ACT, 3: GRD })}
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  var s = 0.0;
  for (var i = wg.x * 256u + t; i < u.a.x; i += ${NORM_GROUPS * 256}u) {
    let g = grd[u.a.y + i]; s += g * g;
  }
  red[t] = s;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] += red[t + k]; }
    workgroupBarrier();
  }
  if (t == 0u) { act[u.a.z + wg.x] = red[0]; }
}
`;

/**
 * Gradient norm, second pass (one workgroup): the norm and the clip scale
 * min(1, maxNorm / norm) (1 when the norm is not finite, as clipByGlobalNorm).
 * a.x = partialOff.
 */
export const NORM_FINAL = `${HEADER}
${buffers({ 1: ACT, 7: SCL })}
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32) {
  red[t] = act[u.a.x + t];
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] += red[t + k]; }
    workgroupBarrier();
  }
  if (t == 0u) {
    let norm = sqrt(red[0]);
    let maxNorm = scl[${S.maxNorm}];
    var scale = 1.0;
    if (norm <= 3.0e38 && norm > maxNorm) { scale = maxNorm / norm; }
    scl[${S.gradNorm}] = norm;
    scl[${S.clipScale}] = scale;
  }
}
`;

/**
 * AdamW over every parameter (grid-stride): g = grad·clipScale,
 * m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g²,
 * p ← p − lr·((m/c1)/(√(v/c2) + eps) + wd·p), decay only below `decayEnd`
 * (the table puts decayed tensors first). a = (n, decayEnd), b = (β1, β2,
 * eps, wd) as f32 bits.
 */
export const ADAMW = `${HEADER}
${
  buffers({
    2: PAR,
    3: GRD,
    4: "mom: array<f32>",
    5: "vel: array<f32>",
    7: SCL,
  })
}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) l: u32) {
  let b1 = f(u.b.x); let b2 = f(u.b.y); let eps = f(u.b.z); let wd = f(u.b.w);
  let lr = scl[${S.lr}]; let c1 = scl[${S.c1}]; let c2 = scl[${S.c2}];
  let scale = scl[${S.clipScale}];
  for (var i = flat_id(wg, nwg) * 256u + l; i < u.a.x; i += nwg.x * nwg.y * 256u) {
    let g = grd[i] * scale;
    let m = b1 * mom[i] + (1.0 - b1) * g;
    let v = b2 * vel[i] + (1.0 - b2) * g * g;
    mom[i] = m; vel[i] = v;
    var upd = (m / c1) / (sqrt(v / c2) + eps);
    if (i < u.a.y) { upd += wd * par[i]; }
    par[i] = par[i] - lr * upd;
  }
}
`;

/** EMA of the parameters: e ← decay·e + (1 − decay)·p. a.x = n. */
export const EMA = `${HEADER}
${buffers({ 2: PAR, 4: "ema: array<f32>", 7: SCL })}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) l: u32) {
  let k = scl[${S.emaDecay}];
  for (var i = flat_id(wg, nwg) * 256u + l; i < u.a.x; i += nwg.x * nwg.y * 256u) {
    ema[i] = k * ema[i] + (1.0 - k) * par[i];
  }
}
`;
