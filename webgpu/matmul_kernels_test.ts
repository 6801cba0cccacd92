// The matmul kernel's variants against float64 (_test_matmul.ts): vec4
// loads (operands at 4-aligned offsets) with all three tiles and every
// operand transpose at K = 768 and 3,072, mixed alignment at an odd K,
// the f16-storage path, the first kernel (`kernel: "old"`), and the tile
// chosen by shape.

import { assertEquals, assertRejects } from "@std/assert";
import { runMatmul } from "./mod.ts";
import { matmulTile } from "./_recorder.ts";
import { matmulSource } from "./_wgsl.ts";
import { check, TRANSPOSES } from "./_test_matmul.ts";
import { forDevice, gpu, testDevice } from "./_test_util.ts";
import { ignoreUnless } from "@d3pm/core/testing";

// GPT-2's K (the qkv projection's, the MLP down projection's). On a real
// GPU at GPT-2's shapes; on a software adapter (CI's lavapipe: the cost is
// M·N·K) M and N small, as in matmul_gpt2_test.ts: N 200 is 4-aligned
// (vec4 B) and not a multiple of 32 or 64 (a partial last column tile at
// every tile), M 133 two row tiles at 128; the f16 products' N 132 still
// a partial last column tile at 32, 64 and 128.
const SHAPES = {
  gpu: {
    products: [
      { k: 768, n: 2304, m: 133 }, // the qkv projection's K and N
      { k: 3072, n: 772, m: 100 }, // the MLP's down projection (N 4-aligned, not 64)
    ],
    f16N: 260,
  },
  software: {
    products: [{ k: 768, n: 200, m: 133 }, { k: 3072, n: 200, m: 100 }],
    f16N: 132,
  },
};
const shapes = forDevice(SHAPES);

for (const { k, n, m } of shapes.products) {
  Deno.test({
    name:
      `the matmul with vec4 loads equals float64 at K = ${k}: tiles 32, 64, 128, every operand transpose`,
    ...gpu,
    fn: async (t) => {
      let seed = 7 * k;
      for (const tile of [32, 64, 128] as const) {
        for (const [transA, transB] of TRANSPOSES) {
          await t.step(
            `tile ${tile}, transA ${transA}, transB ${transB}`,
            () =>
              check({
                m,
                n,
                k,
                transA,
                transB,
                tile,
                seed: seed++,
                offsets: [4, 8, 12],
              }).then(() => {}),
          );
        }
      }
    },
  });
}

Deno.test({
  name:
    "the matmul mixes vec4 and scalar loads per operand: one aligned, the other not, odd K, accumulate",
  ...gpu,
  fn: async (t) => {
    let seed = 99;
    for (const tile of [32, 64, 128] as const) {
      for (const [transA, transB] of TRANSPOSES) {
        for (
          const offsets of [[4, 5, 8], [3, 8, 4]] as [number, number, number][]
        ) {
          await t.step(
            `tile ${tile}, transA ${transA}, transB ${transB}, offsets ${offsets}`,
            () =>
              check({
                m: 68,
                n: 132,
                k: transA || transB ? 333 : 332,
                transA,
                transB,
                tile,
                offsets,
                accumulate: seed % 2 === 0,
                seed: seed++,
              }).then(() => {}),
          );
        }
      }
    }
  },
});

const f16 = gpu.ignore ? null : testDevice().features.has("shader-f16");

Deno.test({
  name:
    "the f16-storage matmul (f32 accumulation) equals float64 on the f16-rounded operands: K = 768, every transpose, aligned and not",
  ...gpu,
  ignore: gpu.ignore ||
    ignoreUnless("shader-f16", f16 ? null : "the device lacks shader-f16"),
  fn: async (t) => {
    let seed = 16;
    for (const tile of [32, 64, 128] as const) {
      for (const [transA, transB] of TRANSPOSES) {
        for (
          const offsets of [[4, 8, 12], [3, 5, 7]] as [number, number, number][]
        ) {
          await t.step(
            `tile ${tile}, transA ${transA}, transB ${transB}, offsets ${offsets}`,
            () =>
              check({
                m: 77,
                n: shapes.f16N,
                k: 768,
                transA,
                transB,
                tile,
                offsets,
                f16: true,
                seed: seed++,
              }).then(() => {}),
          );
        }
      }
    }
  },
});

Deno.test({
  name: "the first matmul kernel (kernel: old) still equals float64",
  ...gpu,
  fn: async () => {
    let seed = 1;
    for (const tile of [64, 128] as const) {
      for (const [transA, transB] of TRANSPOSES) {
        await check({
          m: 70,
          n: 90,
          k: 300,
          transA,
          transB,
          tile,
          kernel: "old",
          seed: seed++,
        });
      }
    }
  },
});

Deno.test({
  name: "runMatmul refuses an f16 old kernel and a 32 tile of the old kernel",
  ...gpu,
  fn: async () => {
    const x = new Float32Array(4);
    const shape = { m: 2, n: 2, k: 2 };
    await assertRejects(
      () =>
        runMatmul(testDevice(), shape, { a: x, b: x, c: x }, {
          kernel: "old",
          tile: 32,
        }),
      RangeError,
      "tile must be 64 or 128 (old kernel)",
    );
    await assertRejects(
      () =>
        runMatmul(testDevice(), shape, { a: x, b: x, c: x }, {
          kernel: "old",
          f16: true,
        }),
      RangeError,
      "f16 needs the new kernel",
    );
  },
});

Deno.test("the matmul tile by shape: 128 for GPT-2's wide products, 32 for skinny ones, else 64", () => {
  assertEquals(matmulTile(4096, 2304), 128); // qkv at B·T 4,096
  assertEquals(matmulTile(4096, 768), 64); // c_proj: 192 workgroups at 128
  assertEquals(matmulTile(4, 768), 32); // a decode step (M = B)
  assertEquals(matmulTile(8, 1536), 32); // adaLN's cond · ada
  assertEquals(matmulTile(254, 64), 32); // a small model: 16 workgroups at 64
  assertEquals(matmulTile(1016, 256), 64); // the reference model (B 8, T 127)
});

Deno.test("the matmul WGSL declares read-only operands and f16 storage only when asked", () => {
  const plain = matmulSource(false, true, "bias_residual", false, 64);
  const ro = matmulSource(false, true, "bias_residual", false, 64, {
    vecA: true,
    readOnly: { a: true, b: true, bias: true, e: true },
    f16: true,
  });
  assertEquals(plain.includes("var<storage, read>"), false);
  assertEquals(plain.includes("enable f16"), false);
  assertEquals(
    ro.match(/var<storage, read> (\w+)/g),
    [
      "var<storage, read> A",
      "var<storage, read> B",
      "var<storage, read> Bias",
      "var<storage, read> E",
    ],
  );
  assertEquals(ro.startsWith("enable f16;"), true);
  // E is written by bias_gelu, so it stays read_write even when asked.
  const gelu = matmulSource(false, false, "bias_gelu", false, 128, {
    readOnly: { e: true },
  });
  assertEquals(gelu.includes("var<storage, read_write> E"), true);
});
