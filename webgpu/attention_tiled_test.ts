// The tiled (flash-style) attention kernels against the first kernels on
// the same engine state: loss, attention output (through the logits) and
// every gradient of one backward agree within 1e-4 relative, over T not a
// multiple of the 32-position block or the 16-position stream (70, 1,000),
// causal and bidirectional, rotary and learned positions, both ALiBi
// modes, head sizes 8, 32 and 64, and dropout on the probabilities (the
// masks are the same hash of (seed, site, element) in both, so the
// products must agree). tfjs parity of the tiled kernels is parity_test.ts
// (the engine's default); this file covers what tfjs cannot (dropout) and
// T = 1,000.

import { assert, assertLess } from "@std/assert";
import { type ModelConfig, validateConfig } from "@d3pm/transformer";
import { type TrainBatch, WebGpuTransformer } from "./mod.ts";
import { tiledAttentionBytes } from "./_attention_wgsl.ts";
import {
  gpu,
  parityConfig,
  randomIds,
  relError,
  testDevice,
} from "./_test_util.ts";

const V = 37;

async function gradients(
  config: ModelConfig,
  kernels: "new" | "old",
  batchSize: number,
  length: number,
) {
  const e = await WebGpuTransformer.create(config, {
    batchSize,
    length,
    seed: 3,
    device: testDevice(),
    kernels,
  });
  try {
    const n = batchSize * length;
    const batch: TrainBatch = {
      inputs: randomIds(n, V, 11),
      targets: randomIds(n, V, 12),
      weights: new Float32Array(n).fill(1 / n),
    };
    e.backward(batch, { dropoutSeed: 77 });
    const loss = (await e.readLoss()).loss;
    const grads = await e.readGradients();
    const logits = await e.forwardIds(batch.inputs, batchSize, length);
    return { loss, grads, logits };
  } finally {
    e.dispose();
  }
}

async function agree(
  config: ModelConfig,
  batchSize: number,
  length: number,
): Promise<void> {
  const hd = config.dModel / config.nHead;
  assert(
    tiledAttentionBytes(hd).keyValue <=
      testDevice().limits.maxComputeWorkgroupStorageSize,
    "the device holds the tiled kernels",
  );
  const tiled = await gradients(config, "new", batchSize, length);
  const first = await gradients(config, "old", batchSize, length);
  assertLess(Math.abs(tiled.loss - first.loss), 1e-5 * Math.abs(first.loss));
  assertLess(relError(tiled.logits, first.logits), 1e-4, "logits");
  for (const [name, g] of first.grads) {
    const err = relError(tiled.grads.get(name)!.data, g.data);
    assertLess(err, 1e-4, `gradient of ${name}: relative error ${err}`);
  }
}

const cases: [string, ModelConfig, number, number][] = [
  [
    "causal, rotary, hd 64, T 1,000",
    validateConfig({
      ...parityConfig("causal", "rotary"),
      contextLength: 1000,
      nLayer: 1,
      nHead: 2,
      dModel: 128,
      dMlp: 32,
    }),
    1,
    1000,
  ],
  [
    "bidirectional, learned, ALiBi neighbours, hd 32, T 70, dropout 0.2",
    validateConfig({
      ...parityConfig("bidirectional", "learned"),
      contextLength: 70,
      nLayer: 1,
      nHead: 4,
      dModel: 128,
      dMlp: 32,
      alibi: 0.5,
      alibiMode: "neighbours",
      dropout: 0.2,
    }),
    2,
    70,
  ],
  [
    "bidirectional, rotary, ALiBi symmetric, hd 64, T 70",
    validateConfig({
      ...parityConfig("bidirectional", "rotary"),
      contextLength: 70,
      nLayer: 1,
      nHead: 2,
      dModel: 128,
      dMlp: 32,
      alibi: 0.5,
      alibiMode: "symmetric",
    }),
    1,
    70,
  ],
  [
    "causal, learned, hd 8, T 7, dropout 0.2, 2 layers",
    validateConfig({ ...parityConfig("causal", "learned"), dropout: 0.2 }),
    2,
    7,
  ],
];

for (const [label, config, batchSize, length] of cases) {
  Deno.test({
    name: `tiled attention equals the first kernels (${label})`,
    ...gpu,
    fn: () => agree(config, batchSize, length),
  });
}
