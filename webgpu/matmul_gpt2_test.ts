// The engine's matmul kernel at GPT-2 shapes against float64: K = 768 and
// 3,072 with both tiles and every operand transpose, and the LM head's three
// products over a 50,257-row embedding. Each product runs whole on the
// device; the reference is computed in float64 for sampled outputs (every
// tile edge and corner, plus random ones). C starts poisoned (NaN) or
// random (accumulate), and guard values around C must survive: every output
// written, nothing written outside it.
//
// Tolerance: |c − ref| ≤ 2e-6 · Σ_k |a_ik·b_kj| per output. Float32 sums
// land near 1e-7 of that scale at any K (MATMUL_REPORT=1 prints the worst
// ratio); a product that drops one of K terms is off by ~1/K of it
// (2e-5 at K = 50,257), so even that fails.

import { assert } from "@std/assert";
import { prng } from "@d3pm/core";
import { runMatmul } from "./mod.ts";
import { gpu, testDevice } from "./_test_util.ts";

const TOL = 2e-6;
const GUARD = 12345.5;
const report = Deno.env.get("MATMUL_REPORT") === "1";

interface Case {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  tile: 64 | 128;
  accumulate?: boolean;
  seed: number;
}

function randomFill(
  out: Float32Array,
  seed: number,
  from = 0,
  to = out.length,
) {
  const rng = prng(seed);
  for (let i = from; i < to; i++) out[i] = rng.next() * 2 - 1;
}

// Output positions to check: every tile's first and last row/column near
// the edges of the product, corners, and random ones.
function samples(c: Case, count: number): [number, number][] {
  const edge = (size: number) => [
    ...new Set(
      [0, 1, 15, 16, 63, 64, 127, 128, size - 2, size - 1].filter((x) =>
        x >= 0 && x < size
      ),
    ),
  ];
  const rows = edge(c.m), cols = edge(c.n);
  const out: [number, number][] = rows.flatMap((i) =>
    cols.map((j) => [i, j] as [number, number])
  );
  const rng = prng(c.seed + 7);
  for (let s = 0; s < count; s++) {
    out.push([
      Math.floor(rng.next() * c.m),
      Math.floor(rng.next() * c.n),
    ]);
  }
  return out;
}

async function check(c: Case): Promise<number> {
  const { m, n, k, transA, transB } = c;
  // Operands at odd offsets, guards around C.
  const aOff = 3, bOff = 5, cOff = 7;
  const a = new Float32Array(aOff + m * k + 2);
  const b = new Float32Array(bOff + k * n + 2);
  const cBuf = new Float32Array(cOff + m * n + 9).fill(GUARD);
  randomFill(a, c.seed);
  randomFill(b, c.seed + 1);
  if (c.accumulate) randomFill(cBuf, c.seed + 2, cOff, cOff + m * n);
  else cBuf.fill(NaN, cOff, cOff + m * n);
  const before = cBuf.slice();
  const out = await runMatmul(testDevice(), { m, n, k }, {
    a,
    b,
    c: cBuf,
    aOffset: aOff,
    bOffset: bOff,
    cOffset: cOff,
  }, { transA, transB, tile: c.tile, accumulate: c.accumulate });
  const what =
    `${m}×${n}×${k} transA ${transA} transB ${transB} tile ${c.tile}${
      c.accumulate ? " (+=)" : ""
    }`;
  for (let i = 0; i < cOff; i++) {
    assert(out[i] === GUARD, `${what}: wrote before C (float ${i})`);
  }
  for (let i = cOff + m * n; i < out.length; i++) {
    assert(out[i] === GUARD, `${what}: wrote after C (float ${i})`);
  }
  for (let i = cOff; i < cOff + m * n; i++) {
    if (!Number.isFinite(out[i])) {
      const r = i - cOff;
      throw new Error(
        `${what}: C[${Math.floor(r / n)}, ${r % n}] = ${out[i]} (not written?)`,
      );
    }
  }
  const A = (i: number, kk: number) =>
    transA ? a[aOff + kk * m + i] : a[aOff + i * k + kk];
  const B = (kk: number, j: number) =>
    transB ? b[bOff + j * k + kk] : b[bOff + kk * n + j];
  let worst = 0;
  for (const [i, j] of samples(c, 200)) {
    let ref = c.accumulate ? before[cOff + i * n + j] : 0;
    let scale = Math.abs(ref);
    for (let kk = 0; kk < k; kk++) {
      const p = A(i, kk) * B(kk, j);
      ref += p;
      scale += Math.abs(p);
    }
    const got = out[cOff + i * n + j];
    const ratio = Math.abs(got - ref) / scale;
    worst = Math.max(worst, ratio);
    assert(
      ratio <= TOL,
      `${what}: C[${i}, ${j}] = ${got}, float64 ${ref} (|Δ| / Σ|ab| = ${
        ratio.toExponential(2)
      } > ${TOL})`,
    );
  }
  if (report) {
    console.log(`${what}: worst |Δ| / Σ|ab| ${worst.toExponential(2)}`);
  }
  return worst;
}

const TRANSPOSES = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

for (
  const { k, n, m } of [
    { k: 768, n: 2304, m: 133 }, // the qkv projection's K and N
    { k: 3072, n: 768, m: 133 }, // the MLP's down projection
  ]
) {
  Deno.test({
    name:
      `the engine's matmul equals float64 at K = ${k} (N ${n}): tiles 64 and 128, every operand transpose`,
    ...gpu,
    fn: async (t) => {
      let seed = k;
      for (const tile of [64, 128] as const) {
        for (const [transA, transB] of TRANSPOSES) {
          await t.step(
            `tile ${tile}, transA ${transA}, transB ${transB}`,
            async () => {
              await check({ m, n, k, transA, transB, tile, seed: seed++ });
            },
          );
        }
      }
    },
  });
}

Deno.test({
  name:
    "the engine's matmul equals float64 on the LM head's products over 50,257 rows: logits, dlnf (K = 50,257), dwte +=, both tiles",
  ...gpu,
  fn: async (t) => {
    const V = 50257, rows = 37; // a chunk of 37 token rows
    // GPT-2's d 768 where one binding holds wte (V × d floats); else the
    // widest multiple of 64 that fits (lavapipe's 128 MiB: d 640).
    const floats = testDevice().limits.maxStorageBufferBindingSize / 4 - 16;
    const d = V * 768 <= floats ? 768 : Math.floor(floats / V / 64) * 64;
    if (d !== 768) {
      console.log(`head test at d ${d}: wte at d 768 exceeds one binding`);
    }
    let seed = 50257;
    for (const tile of [64, 128] as const) {
      await t.step(`tile ${tile}: logits (R, V) = lnf · wteᵀ`, async () => {
        await check({
          m: rows,
          n: V,
          k: d,
          transA: false,
          transB: true,
          tile,
          seed: seed++,
        });
      });
      await t.step(`tile ${tile}: dlnf (R, d) = dlogits · wte`, async () => {
        await check({
          m: rows,
          n: d,
          k: V,
          transA: false,
          transB: false,
          tile,
          seed: seed++,
        });
      });
      await t.step(`tile ${tile}: dwte (V, d) += dlogitsᵀ · lnf`, async () => {
        await check({
          m: V,
          n: d,
          k: rows,
          transA: true,
          transB: false,
          tile,
          accumulate: true,
          seed: seed++,
        });
      });
    }
  },
});
