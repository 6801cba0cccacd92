// The engine's matmul kernel at GPT-2 shapes against float64: K = 768 and
// 3,072 with both tiles and every operand transpose, and the LM head's three
// products over a 50,257-row embedding. Each product runs whole on the
// device; the reference is computed in float64 for sampled outputs (every
// tile edge and corner, plus random ones). C starts poisoned (NaN) or
// random (accumulate), and guard values around C must survive: every output
// written, nothing written outside it.
//
// What these products are about is GPT-2's K (the sum's length, the K
// loop's steps, K as a leading dimension) and the head's V. On a real GPU
// (tools/gpu_run.sh) they run at GPT-2's shapes (SHAPES.gpu). On a
// software adapter (CI's lavapipe, where a product costs CPU time in
// proportion to M·N·K, rounded up to whole tiles) the other dimensions,
// which only set how many workgroups run and where the edge tiles fall,
// are small (SHAPES.software): M 133 keeps two row workgroups at tile 128
// (at K 768; M 100 at K 3,072, one partial row tile at 128, two at 64),
// N 200 several column workgroups with a partial last one at both tiles,
// and the head's 17 rows a partial row tile and, as dwte's K, a partial
// last K step after full ones at both tiles (BK 16 and 8); the head's d
// 124 a partial last column tile at both tiles and, as logits' K, a
// partial last K step (d is logits' K, which the K = 768 products cover).
//
// Tolerance (_test_matmul.ts): |c − ref| ≤ 2e-6 · Σ_k |a_ik·b_kj| per
// output. Float32 sums land near 1e-7 of that scale at any K
// (MATMUL_REPORT=1 prints the worst ratio); a product that drops one of K
// terms is off by ~1/K of it (2e-5 at K = 50,257), so even that fails.

import { check, TRANSPOSES } from "./_test_matmul.ts";
import { forDevice, gpu, testDevice } from "./_test_util.ts";

interface Shapes {
  products: { k: number; n: number; m: number }[];
  headRows: number;
  headD: number | null;
}

const SHAPES: { gpu: Shapes; software: Shapes } = {
  gpu: {
    products: [
      { k: 768, n: 2304, m: 133 }, // the qkv projection's K and N
      { k: 3072, n: 768, m: 133 }, // the MLP's down projection
    ],
    headRows: 37, // a chunk of 37 token rows
    headD: null, // d 768, or the widest multiple of 64 one binding holds
  },
  software: {
    products: [
      { k: 768, n: 200, m: 133 }, // the qkv projection's K
      { k: 3072, n: 200, m: 100 }, // the MLP's down projection's K
    ],
    headRows: 17,
    headD: 124,
  },
};
const shapes = forDevice(SHAPES);

for (const { k, n, m } of shapes.products) {
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
    const V = 50257, rows = shapes.headRows;
    // GPT-2's d 768 where one binding holds wte (V × d floats: a GPU; else
    // the widest multiple of 64 that fits), d 124 on a software adapter.
    const floats = testDevice().limits.maxStorageBufferBindingSize / 4 - 16;
    const d = shapes.headD ??
      (V * 768 <= floats ? 768 : Math.floor(floats / V / 64) * 64);
    if (d !== 768) {
      console.log(
        `head test at d ${d}, ${rows} rows (software adapter or small binding)`,
      );
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
