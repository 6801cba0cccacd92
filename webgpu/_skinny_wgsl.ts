// The skinny matmul for a cached decoding pass: C[M, N] = A[M, K] · op(B)
// with M ≤ 8 (the batch's rows), where the tiled matmul keeps 4 of its 32
// rows busy and K runs serially through each tile. Here a workgroup of 256
// threads owns a block of N columns and splits K among its threads; every
// thread accumulates all M rows (f32), and a workgroup-memory tree adds the
// K split's partial sums before the matmul's own epilogue (_wgsl.ts's
// `matmulEpilogue`, the same statement as the tiled kernel's). Unmeasured
// on a GPU so far: the engine uses it only for the AR decoding plan, and
// only with `decodeMatmul: "skinny"`. Private.

import type { Epilogue } from "./_kernels.ts";
import {
  epilogueBindings,
  GELU,
  HEADER,
  matmulBinding,
  matmulEpilogue,
  type MatmulSourceOptions,
} from "./_wgsl.ts";

/** Most rows (M) the skinny matmul takes. */
export const SKINNY_MAX_ROWS = 8;

// Four statements, unrolled (llvmpipe caps a shader's loop iterations).
const four = (f: (i: number) => string) => [0, 1, 2, 3].map(f).join(" ");

/** Threads per skinny workgroup. */
const THREADS = 256;

/** Threads along K per column when B is stored transposed (N, K). */
const K_LANES_T = 32;

/**
 * Columns per workgroup: B (K, N): 64 when that still gives ≥ 256
 * workgroups, else 16 (GPT-2's decoding products: 48 to 192 workgroups);
 * B stored (N, K): 256 / 32 = 8 (a warp of K lanes per column).
 */
export function skinnyColumns(n: number, transB: boolean): number {
  if (transB) return THREADS / K_LANES_T;
  return Math.ceil(n / 64) >= 256 ? 64 : 16;
}

// The tree over `lanes` partial sums `stride` apart in `red` (lane index
// `kl`), unrolled (llvmpipe caps a shader's loop iterations); a barrier
// after each level, in uniform control flow.
function tree(lanes: number, stride: number): string {
  const out: string[] = [];
  for (let s = lanes / 2; s >= 1; s /= 2) {
    out.push(
      `if (kl < ${s}u) { red[lid] = red[lid] + red[lid + ${
        s * stride
      }u]; } workgroupBarrier();`,
    );
  }
  return out.join("\n    ");
}

/**
 * The skinny matmul's WGSL: `rows` (M, 1–8, fixed in the source) × N ×
 * K, A stored (M, K), B (K, N) or transposed (N, K), the uniform block and
 * bindings of the tiled matmul (`matmulSource`), so the recorder binds it
 * the same way; dispatched as ⌈N / skinnyColumns⌉ workgroups (a 2-D grid
 * through `flat_id` where that exceeds 65,535).
 *
 * B (K, N): thread (kl, cl) = (lid / CV, lid % CV) with CV = columns / 4
 * owns 4 adjacent columns (one vec4 of B where `vecB`) and every KS-th
 * quad of K (KS = 256 / CV): per quad, 4 rows of B and 4 k's of each A row
 * (one vec4 where `vecA`), accumulated as vec4 per row; the tree then adds
 * the KS partial vec4s of each row. B (N, K): thread (cl, kl) = (lid / 32,
 * lid % 32) owns one column and every 32nd quad of K (vec4 of B and A
 * along K), and the tree adds the 32 lanes.
 */
export function skinnySource(
  rows: number,
  transB: boolean,
  epilogue: Epilogue,
  columns: number,
  options: Pick<MatmulSourceOptions, "vecA" | "vecB" | "readOnly"> = {},
): string {
  if (!Number.isInteger(rows) || rows < 1 || rows > SKINNY_MAX_ROWS) {
    throw new RangeError(
      `skinny matmul rows must be an integer in [1, ${SKINNY_MAX_ROWS}], got ${rows}`,
    );
  }
  const vecA = options.vecA ?? false, vecB = options.vecB ?? false;
  const ro = options.readOnly ?? {};
  const uses = matmulEpilogue(epilogue, false);
  const R = [...Array(rows).keys()];
  // Four k's of A's row i from k (guarded, zero past K).
  const aQuad = (i: number) =>
    vecA
      ? `let a${i} = A[(aOff + ${i}u * lda + k) / 4u];`
      : `var a${i} = vec4<f32>(0.0); ${
        four((j) =>
          `if (k + ${j}u < K) { a${i}[${j}] = A[aOff + ${i}u * lda + k + ${j}u]; }`
        )
      }`;
  const body = transB
    ? transposedBody(columns, vecB, aQuad, R, uses)
    : plainBody(columns, vecB, aQuad, R, uses);
  return `${HEADER}${GELU}
${matmulBinding(1, `A: array<${vecA ? "vec4<f32>" : "f32"}>`, ro.a)}
${matmulBinding(2, `B: array<${vecB ? "vec4<f32>" : "f32"}>`, ro.b)}
${epilogueBindings(epilogue, uses, ro)}
${body}
`;
}

// B (K, N): vec4 of 4 columns per thread, K split over KS lanes.
function plainBody(
  columns: number,
  vecB: boolean,
  aQuad: (i: number) => string,
  R: number[],
  uses: string,
): string {
  const CV = columns / 4, KS = THREADS / CV;
  // Row k + j of B at this thread's 4 columns (zero past K or N).
  const bRow = (j: number) =>
    vecB
      ? `var w${j} = vec4<f32>(0.0); if (k + ${j}u < K && n0 < N) { w${j} = B[(bOff + (k + ${j}u) * ldb + n0) / 4u]; }`
      : `var w${j} = vec4<f32>(0.0); if (k + ${j}u < K) { ${
        four((c) =>
          `if (n0 + ${c}u < N) { w${j}[${c}] = B[bOff + (k + ${j}u) * ldb + n0 + ${c}u]; }`
        )
      } }`;
  const acc = R.map((i) => `var acc${i} = vec4<f32>(0.0);`).join(" ");
  const fma = R.map((i) =>
    `acc${i} += a${i}.x * w0 + a${i}.y * w1 + a${i}.z * w2 + a${i}.w * w3;`
  ).join("\n      ");
  const reduce = R.map((i) =>
    `red[lid] = acc${i}; workgroupBarrier();
    ${tree(KS, CV)}
    if (kl == 0u) {
      let r = red[cl];
      ${
      four((c) =>
        `{ let m = ${i}u; let n = n0 + ${c}u;
        if (n < N) { let ci = cOff + m * ldc + n; let v = r[${c}]; ${uses} } }`
      )
    }
    }
    workgroupBarrier();`
  ).join("\n    ");
  return `var<workgroup> red: array<vec4<f32>, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let N = u.a.y; let K = u.a.z; let lda = u.a.w;
  let ldb = u.b.x; let ldc = u.b.y; let aOff = u.b.z; let bOff = u.b.w;
  let cOff = u.c.x; let biasOff = u.c.y; let eOff = u.c.z; let lde = u.c.w;
  let cl = lid % ${CV}u; let kl = lid / ${CV}u;
  let n0 = flat_id(wg, nwg) * ${columns}u + 4u * cl;
  ${acc}
  for (var k = 4u * kl; k < K; k += ${4 * KS}u) {
    ${R.map(aQuad).join("\n    ")}
    ${[0, 1, 2, 3].map(bRow).join("\n    ")}
      ${fma}
  }
  ${reduce}
}`;
}

// B (N, K): one column per 32 lanes, vec4 along K.
function transposedBody(
  columns: number,
  vecB: boolean,
  aQuad: (i: number) => string,
  R: number[],
  uses: string,
): string {
  const KL = K_LANES_T;
  const bQuad = vecB
    ? `var w = vec4<f32>(0.0); if (n < N) { w = B[(bOff + n * ldb + k) / 4u]; }`
    : `var w = vec4<f32>(0.0); if (n < N) { ${
      four((j) =>
        `if (k + ${j}u < K) { w[${j}] = B[bOff + n * ldb + k + ${j}u]; }`
      )
    } }`;
  const acc = R.map((i) => `var acc${i} = vec4<f32>(0.0);`).join(" ");
  const fma = R.map((i) => `acc${i} += a${i} * w;`).join(" ");
  const reduce = R.map((i) =>
    `red[lid] = acc${i}.x + acc${i}.y + acc${i}.z + acc${i}.w; workgroupBarrier();
    ${tree(KL, 1)}
    if (kl == 0u && n < N) {
      let m = ${i}u; let ci = cOff + m * ldc + n; let v = red[lid]; ${uses}
    }
    workgroupBarrier();`
  ).join("\n    ");
  return `var<workgroup> red: array<f32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let N = u.a.y; let K = u.a.z; let lda = u.a.w;
  let ldb = u.b.x; let ldc = u.b.y; let aOff = u.b.z; let bOff = u.b.w;
  let cOff = u.c.x; let biasOff = u.c.y; let eOff = u.c.z; let lde = u.c.w;
  let kl = lid % ${KL}u; let cl = lid / ${KL}u;
  let n = flat_id(wg, nwg) * ${columns}u + cl;
  ${acc}
  for (var k = 4u * kl; k < K; k += ${4 * KL}u) {
    ${R.map(aQuad).join("\n    ")}
    ${bQuad}
    ${fma}
  }
  ${reduce}
}`;
}
