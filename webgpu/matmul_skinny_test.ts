// The skinny matmul (decodeMatmul: "skinny") against float64 at every
// output (_test_skinny.ts): GPT-2 small's decoding products at M 1, 4 and
// 8 with the epilogue each uses — qkv (K 768, N 2,304, bias), the attention
// projection (768 → 768, bias_residual), the MLP (768 → 3,072, bias_gelu;
// 3,072 → 768, bias_residual) and the LM head (N 50,257, wte stored
// (V, d), store) — then every epilogue it takes with both layouts of B at
// ragged shapes (odd K and N, unaligned operands: the scalar loads and the
// partial quads), and the columns per workgroup by shape.

import { assertEquals, assertThrows } from "@std/assert";
import type { Epilogue } from "./_kernels.ts";
import { skinnyColumns, skinnySource } from "./_skinny_wgsl.ts";
import { checkSkinny } from "./_test_skinny.ts";
import { gpu, testDevice } from "./_test_util.ts";

const report = Deno.env.get("MATMUL_REPORT") === "1";

Deno.test({
  name:
    "the skinny matmul equals float64 on GPT-2 small's decoding products at M 1, 4, 8 with their epilogues",
  ...gpu,
  fn: async (t) => {
    const shapes: [string, number, number, Epilogue][] = [
      ["qkv", 768, 2304, "bias"],
      ["attention projection", 768, 768, "bias_residual"],
      ["MLP up", 768, 3072, "bias_gelu"],
      ["MLP down", 3072, 768, "bias_residual"],
    ];
    let seed = 1;
    for (const m of [1, 4, 8]) {
      for (const [name, k, n, epilogue] of shapes) {
        await t.step(
          `M ${m}: ${name} (K ${k}, N ${n}, ${epilogue})`,
          async () => {
            const worst = await checkSkinny(testDevice(), {
              m,
              n,
              k,
              transB: false,
              epilogue,
              seed: seed++,
            });
            if (report) console.log(`${m} ${name}: ${worst.toExponential(2)}`);
          },
        );
      }
    }
  },
});

Deno.test({
  name:
    "the skinny matmul equals float64 on the LM head's logits over 50,257 rows of wte (stored (V, d)) at M 1, 4, 8",
  ...gpu,
  fn: async (t) => {
    const V = 50257;
    // GPT-2's d 768 where one binding holds wte (a GPU); else (lavapipe's
    // 128 MiB) d 192: V is what the test is about (6,283 workgroups of 8
    // columns, the last holding one), d is K, split over 32 lanes in quads
    // (192: a full pass of 128 and a half one; the GPT-2 products above
    // take K 768 and 3,072), and lavapipe's cost and the float64
    // reference's are linear in it (d 640 was the widest that fits).
    const floats = testDevice().limits.maxStorageBufferBindingSize / 4 - 16;
    const d = V * 768 <= floats ? 768 : 192;
    for (const m of [1, 4, 8]) {
      await t.step(`M ${m}, d ${d}`, async () => {
        const worst = await checkSkinny(testDevice(), {
          m,
          n: V,
          k: d,
          transB: true,
          epilogue: "store",
          seed: 100 + m,
        });
        if (report) console.log(`${m} head: ${worst.toExponential(2)}`);
      });
    }
  },
});

Deno.test({
  name:
    "the skinny matmul takes every decoding epilogue with B (K, N) and (N, K), odd K and N, aligned operands and not",
  ...gpu,
  fn: async (t) => {
    const epilogues: Epilogue[] = [
      "store",
      "accumulate",
      "bias",
      "bias_gelu",
      "bias_residual",
      "bias_silu",
    ];
    let seed = 500;
    for (const transB of [false, true]) {
      for (const epilogue of epilogues) {
        for (
          const [m, n, k, offsets] of [
            [3, 133, 333, [3, 5, 7]], // scalar loads, partial quads of K and N
            [5, 132, 332, [4, 8, 12]], // vec4 loads
            [7, 135, 332, [4, 5, 12]], // vec4 A, scalar B
            [6, 136, 332, [3, 8, 12]], // scalar A, vec4 B
          ] as [number, number, number, [number, number, number]][]
        ) {
          await t.step(
            `transB ${transB}, ${epilogue}, ${m}×${n}×${k}, offsets ${offsets}`,
            () =>
              checkSkinny(testDevice(), {
                m,
                n,
                k,
                transB,
                epilogue,
                offsets,
                seed: seed++,
              }).then(() => {}),
          );
        }
      }
    }
  },
});

Deno.test("the skinny matmul's columns per workgroup by shape, and its row limit", () => {
  assertEquals(skinnyColumns(768, false), 16); // 48 workgroups
  assertEquals(skinnyColumns(3072, false), 16); // 192
  assertEquals(skinnyColumns(50257, false), 64); // 786
  assertEquals(skinnyColumns(50257, true), 8); // one warp of K per column
  assertThrows(
    () => skinnySource(9, false, "store", 16),
    RangeError,
    "skinny matmul rows must be an integer in [1, 8], got 9",
  );
});
