// AR generation with `decodeMatmul: "skinny"`: the decode plan's matmuls
// of ≤ 8 rows go to the skinny kernel (and only there: larger batches and
// every other plan keep the tiled one), and the tokens equal the tiled
// kernel's. Greedy rows must be equal: the two kernels sum K in different
// orders, so logits differ by ~1e-7 of their scale, and an argmax flips
// only on a near-tie that close — at this model's logit gaps (random
// weights, V 257) none occurs, so a flip means a wrong product. Drawn rows
// (temperature 1, one seed) are asserted equal too: a draw flips only when
// its uniform lands within ~1e-7 of a CDF boundary, about 1e-5 odds over
// these 400-odd draws, so a difference is a bug, not noise.

import { assertEquals, assertRejects } from "@std/assert";
import { prng, type StoredTensor } from "@d3pm/core";
import { initialWeights, preset } from "@d3pm/transformer";
import { WebGpuTransformer } from "./engine.ts";
import { parameterTable } from "./_layout.ts";
import { planDecode, recordDecode } from "./_decode.ts";
import { type Kit, Recorder } from "./_recorder.ts";
import { gpu, testDevice } from "./_test_util.ts";

const config = preset("micro", {
  vocabSize: 257,
  contextLength: 24,
});

// The seeded initial weights, each moved by up to ±0.4 (as the parity
// suite's perturbed models): logits far enough apart that greedy rows vary.
function perturbed(seed: number): Map<string, StoredTensor> {
  const rng = prng(seed);
  const out = new Map<string, StoredTensor>();
  for (const [name, w] of initialWeights(config, seed)) {
    const data = Float32Array.from(w.data, (x) => x + (rng.next() - 0.5) * 0.8);
    out.set(name, { shape: [...w.shape], data });
  }
  return out;
}

// The pipeline keys of a decode plan of `batch` rows, recorded without a
// device (the kit compiles nothing; buffers are stand-ins).
function decodeKeys(batch: number, matmul: "tile" | "skinny"): string[] {
  const keys: string[] = [];
  const fake = { size: 1 << 30 } as unknown as GPUBuffer;
  const kit = {
    device: { limits: { minStorageBufferOffsetAlignment: 256 } },
    tile: "auto",
    layout: {},
    dummy: fake,
    pipeline: (key: string) => {
      keys.push(key);
      return {} as GPUComputePipeline;
    },
  } as unknown as Kit;
  const rec = new Recorder(
    kit,
    { act: fake, ints: fake, params: fake },
    false,
    { matmul },
  );
  const { arena, ints } = planDecode(config, batch, 24, 1 << 20);
  recordDecode(rec, config, parameterTable(config), arena, ints, batch, 24);
  return keys.filter((k) => k.startsWith("mm") || k.startsWith("mv"));
}

Deno.test("decodeMatmul skinny sends the decode plan's matmuls of ≤ 8 rows to the skinny kernel, and no others", () => {
  const perPass = 4 * config.nLayer + 1; // qkv, projection, MLP × 2; head
  for (const batch of [1, 4, 8]) {
    const keys = decodeKeys(batch, "skinny");
    assertEquals(keys.length, perPass);
    assertEquals(keys.filter((k) => k.startsWith(`mv${batch}x`)), keys);
    assertEquals(keys.at(-1)!.split(":").slice(1, 3), ["true", "store"]);
  }
  assertEquals(decodeKeys(9, "skinny").every((k) => k.startsWith("mm")), true);
  assertEquals(decodeKeys(4, "tile").every((k) => k.startsWith("mm")), true);
});

Deno.test({
  name:
    "AR generation with decodeMatmul skinny gives the tiled kernel's greedy and drawn tokens at batch 1, 4, 8 (and 9, tiled)",
  ...gpu,
  fn: async () => {
    const weights = perturbed(5);
    const make = (decodeMatmul: "tile" | "skinny") =>
      WebGpuTransformer.create(config, {
        evaluationOnly: true,
        weights,
        device: testDevice(),
        decodeMatmul,
      });
    const tile = await make("tile"), skinny = await make("skinny");
    try {
      for (const batchSize of [1, 4, 8, 9]) {
        for (const temperature of [0, 1]) {
          const options = {
            batchSize,
            length: 24,
            start: 3,
            temperature,
            seed: 11 + batchSize,
          };
          const want = await tile.generateCausal(options);
          const got = await skinny.generateCausal(options);
          assertEquals(
            Array.from(got.tokens),
            Array.from(want.tokens),
            `batch ${batchSize}, temperature ${temperature}`,
          );
          if (temperature === 0) {
            // The greedy rows vary: the test would catch a constant output.
            assertEquals(new Set(want.tokens).size > 4, true);
          }
        }
      }
    } finally {
      tile.dispose();
      skinny.dispose();
    }
  },
});

Deno.test({
  name: "decodeMatmul other than tile or skinny is refused in one line",
  ...gpu,
  fn: async () => {
    await assertRejects(
      () =>
        WebGpuTransformer.create(config, {
          evaluationOnly: true,
          device: testDevice(),
          decodeMatmul: "gemv" as "tile",
        }),
      RangeError,
      `WebGpuTransformer: decodeMatmul must be "tile" or "skinny", got "gemv"`,
    );
  },
});
