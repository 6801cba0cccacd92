// The split-key decode attention (`decodeAttention: "split"`,
// _decode_wgsl.ts): one call against float64 (and the single kernel against
// the same, so the check itself is sound) at GPT-2 small's decoding shape
// (4 rows × 1,024 positions, 12 heads of 64) and at odd shapes — p = 0, p
// on both sides of a chunk boundary, p = L − 1 with L not a multiple of the
// chunk, head sizes 16, 64 and 128 (chunks of 64, 32 and 16 keys), rotary
// and learned positions, scores in the hundreds (where an exp without its
// max overflows f32); every cache slot but p left as it was, slot p holding
// k (rotated) and v. Then the engine: the plan's dispatches, AR generation
// giving the single kernel's greedy and drawn tokens (the two sum in
// different orders, so logits differ by ~1e-7 of their scale: an argmax or
// a draw flips only that close to a tie, as in generate_skinny_test.ts),
// no buffer left behind, and the option refused when unknown.

import { assert, assertEquals, assertLess, assertRejects } from "@std/assert";
import { prng, type StoredTensor } from "@d3pm/core";
import { initialWeights, type ModelConfig, preset } from "@d3pm/transformer";
import { WebGpuTransformer } from "./engine.ts";
import { parameterTable } from "./_layout.ts";
import { planDecode, recordDecode } from "./_decode.ts";
import { type Kit, Recorder } from "./_recorder.ts";
import {
  type DecodeCase,
  type DecodeData,
  decodeData,
  decodeReference,
  runDecodeAttention,
} from "./_test_decode.ts";
import { gpu, testDevice } from "./_test_util.ts";

const PAPER = { batch: 4, length: 1024, nHead: 12, hd: 64, qScale: 1 };
const SMALL = { batch: 2, length: 100, nHead: 2, hd: 64, qScale: 1 };

const cases: [string, DecodeCase][] = [
  ["paper shape, rotary, p = L − 1", {
    ...PAPER,
    positions: "rotary",
    pos: 1023,
    seed: 1,
  }],
  ["paper shape, learned, p = 517", {
    ...PAPER,
    positions: "learned",
    pos: 517,
    seed: 2,
  }],
  ...[0, 31, 32, 63, 64, 99].map((pos): [string, DecodeCase] => [
    `hd 64 (chunk 32), rotary, L 100, p = ${pos}`,
    { ...SMALL, positions: "rotary", pos, seed: 10 + pos },
  ]),
  ["hd 64, learned, scores in the hundreds, p = L − 1", {
    ...SMALL,
    positions: "learned",
    pos: 99,
    qScale: 400,
    seed: 3,
  }],
  ["hd 64, rotary, scores in the hundreds, p = 70", {
    ...SMALL,
    positions: "rotary",
    pos: 70,
    qScale: 400,
    seed: 4,
  }],
  ...[47, 48, 49].map((pos): [string, DecodeCase] => [
    `hd 128 (chunk 16), rotary, L 50, p = ${pos}`,
    {
      batch: 1,
      length: 50,
      nHead: 2,
      hd: 128,
      qScale: 1,
      positions: "rotary",
      pos,
      seed: 20 + pos,
    },
  ]),
  ...[63, 64, 129].map((pos): [string, DecodeCase] => [
    `hd 16 (chunk 64), learned, L 130, p = ${pos}`,
    {
      batch: 3,
      length: 130,
      nHead: 4,
      hd: 16,
      qScale: 1,
      positions: "learned",
      pos,
      seed: 30 + pos,
    },
  ]),
];

// y within 2e-5 of float64 (|y| ≤ 1: a weighted mean of values in ±1; a
// dropped or extra key moves it by ~1/p ≥ 1e-3), slot p's k within 1e-6
// and v exact, every other slot of the caches untouched.
function checkRun(
  c: DecodeCase,
  data: DecodeData,
  ref: ReturnType<typeof decodeReference>,
  got: Float32Array,
  kernel: string,
): void {
  const { args } = data;
  const d = c.nHead * c.hd;
  let err = 0;
  for (let i = 0; i < c.batch * d; i++) {
    err = Math.max(err, Math.abs(got[args.y + i] - ref.y[i]));
  }
  assertLess(err, 2e-5, `${kernel}: y off by ${err}`);
  for (let r = 0; r < c.batch; r++) {
    for (let j = 0; j < c.length; j++) {
      for (let i = 0; i < d; i++) {
        const at = (r * c.length + j) * d + i;
        const [k, v] = [got[args.k + at], got[args.v + at]];
        if (j === c.pos) {
          assertLess(Math.abs(k - ref.k[r * d + i]), 1e-6, `${kernel}: k at p`);
          assertEquals(v, Math.fround(ref.v[r * d + i]), `${kernel}: v at p`);
        } else if (k !== data.act[args.k + at] || v !== data.act[args.v + at]) {
          throw new Error(`${kernel}: cache slot ${j} of row ${r} changed`);
        }
      }
    }
  }
}

for (const [label, c] of cases) {
  Deno.test({
    name:
      `split decode attention equals float64, as the single kernel does (${label})`,
    ...gpu,
    fn: async () => {
      const data = decodeData(c);
      const ref = decodeReference(c, data);
      for (const kernel of ["split", "single"] as const) {
        const got = await runDecodeAttention(testDevice(), c, data, kernel);
        checkRun(c, data, ref, got, kernel);
      }
    },
  });
}

// hd 64 (chunks of 32 keys), two layers: 80 positions cross two chunk
// boundaries, and the layers share the scratch.
const config = (positions: "rotary" | "learned"): ModelConfig =>
  preset("micro", {
    vocabSize: 257,
    contextLength: 80,
    nHead: 1,
    nLayer: 2,
    positions,
  });

// The seeded initial weights, each moved by up to ±0.4 (as the parity
// suite's perturbed models): logits far enough apart that greedy rows vary.
function perturbed(c: ModelConfig, seed: number): Map<string, StoredTensor> {
  const rng = prng(seed);
  const out = new Map<string, StoredTensor>();
  for (const [name, w] of initialWeights(c, seed)) {
    const data = Float32Array.from(w.data, (x) => x + (rng.next() - 0.5) * 0.8);
    out.set(name, { shape: [...w.shape], data });
  }
  return out;
}

// The pipeline keys of a decode plan's attention, recorded without a device.
function attentionKeys(attention: "single" | "split"): string[] {
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
    {
      attention,
    },
  );
  const c = config("rotary");
  const { arena, ints } = planDecode(c, 4, 80, 1 << 20);
  recordDecode(rec, c, parameterTable(c), arena, ints, 4, 80);
  return keys.filter((k) => k.startsWith("dec_"));
}

Deno.test("decodeAttention split records a chunk kernel and a merge per layer in place of the single kernel", () => {
  const split = attentionKeys("split");
  assertEquals(split.filter((k) => k.startsWith("dec_split")), [
    "dec_split:64:32",
    "dec_split:64:32",
  ]);
  assertEquals(split.filter((k) => k.startsWith("dec_combine")).length, 2);
  assertEquals(split.some((k) => k.startsWith("dec_attn")), false);
  assertEquals(
    attentionKeys("single").filter((k) => k.startsWith("dec_attn")).length,
    2,
  );
});

Deno.test({
  name:
    "AR generation with decodeAttention split gives the single kernel's greedy and drawn tokens (rotary and learned, batch 1 and 4), leaving no buffer behind",
  ...gpu,
  fn: async () => {
    for (const positions of ["rotary", "learned"] as const) {
      const c = config(positions);
      const weights = perturbed(c, 5);
      const make = (decodeAttention: "single" | "split") =>
        WebGpuTransformer.create(c, {
          evaluationOnly: true,
          weights,
          device: testDevice(),
          decodeAttention,
        });
      const single = await make("single"), split = await make("split");
      try {
        for (const batchSize of [1, 4]) {
          for (const temperature of [0, 1]) {
            const options = {
              batchSize,
              length: 80,
              start: 3,
              temperature,
              seed: 11 + batchSize,
            };
            const want = await single.generateCausal(options);
            const live = split.liveBuffers;
            const got = await split.generateCausal(options);
            const label = `${positions}, batch ${batchSize}, t ${temperature}`;
            assertEquals(
              Array.from(got.tokens),
              Array.from(want.tokens),
              label,
            );
            if (temperature === 0) {
              assert(new Set(want.tokens).size > 4, `${label}: rows vary`);
            }
            // Greedy builds the plan of this batch size; the draw reuses it.
            if (temperature === 1) {
              assertEquals(split.liveBuffers, live, `${label}: buffers`);
            }
          }
        }
        const live = split.liveBuffers;
        await split.generateCausal({
          batchSize: 4,
          length: 80,
          start: 3,
          temperature: 0,
          seed: 0,
        });
        assertEquals(split.liveBuffers, live, `${positions}: greedy again`);
      } finally {
        single.dispose();
        split.dispose();
      }
      assertEquals(split.liveBuffers, 0);
    }
  },
});

Deno.test({
  name: "decodeAttention other than single or split is refused in one line",
  ...gpu,
  fn: async () => {
    await assertRejects(
      () =>
        WebGpuTransformer.create(config("rotary"), {
          evaluationOnly: true,
          device: testDevice(),
          decodeAttention: "flash" as "split",
        }),
      RangeError,
      `WebGpuTransformer: decodeAttention must be "single" or "split", got "flash"`,
    );
  },
});
