// Engines on one device share its compiled kernels (_pipelines.ts): a second
// engine of a shape compiles nothing, and one whose WGSL differs compiles
// its own and computes what it computes on a device of its own.
import { assert, assertEquals } from "@std/assert";
import type { ModelConfig } from "@d3pm/transformer";
import { requestEngineDevice } from "./device.ts";
import { WebGpuTransformer } from "./engine.ts";
import { gpu, parityConfig, randomIds, testDevice } from "./_test_util.ts";

const B = 2, T = 7, V = 37;
const COUNTED = [
  "createComputePipeline",
  "createShaderModule",
  "createPipelineLayout",
] as const;

// Count the device's compiles while `fn` runs (its methods wrapped).
async function compiles(
  device: GPUDevice,
  fn: () => Promise<void>,
): Promise<Record<(typeof COUNTED)[number], number>> {
  const counts = Object.fromEntries(COUNTED.map((n) => [n, 0])) as Record<
    (typeof COUNTED)[number],
    number
  >;
  const own = device as unknown as Record<string, unknown>;
  for (const name of COUNTED) {
    const original = device[name].bind(device) as (d: unknown) => unknown;
    own[name] = (d: unknown) => {
      counts[name]++;
      return original(d);
    };
  }
  try {
    await fn();
  } finally {
    for (const name of COUNTED) delete own[name];
  }
  return counts;
}

interface Outputs {
  loss: number;
  logits: Float32Array;
}

// One training step and a forward pass: the step's loss and the logits.
async function run(config: ModelConfig, device: GPUDevice): Promise<Outputs> {
  const engine = await WebGpuTransformer.create(config, {
    batchSize: B,
    length: T,
    seed: 3,
    device,
  });
  try {
    engine.step({
      inputs: randomIds(B * T, V, 1),
      targets: randomIds(B * T, V, 2),
      weights: new Float32Array(B * T).fill(1 / (B * T)),
    }, 1e-2);
    const { loss } = await engine.readLoss();
    const logits = await engine.forwardIds(randomIds(B * 5, V, 4), B, 5);
    return { loss, logits };
  } finally {
    engine.dispose();
  }
}

Deno.test({
  name:
    "a second engine of the same config on one device compiles no pipeline, shader module or pipeline layout",
  ...gpu,
  fn: async () => {
    const device = testDevice();
    // A shape no other test in this file builds first.
    const config = parityConfig("causal", "rotary", { dModel: 20, nHead: 5 });
    let first: Outputs = { loss: 0, logits: new Float32Array() };
    let second = first;
    const firstCounts = await compiles(device, async () => {
      first = await run(config, device);
    });
    assert(firstCounts.createComputePipeline > 5, JSON.stringify(firstCounts));
    const secondCounts = await compiles(device, async () => {
      second = await run(config, device);
    });
    assertEquals(secondCounts, {
      createComputePipeline: 0,
      createShaderModule: 0,
      createPipelineLayout: 0,
    });
    assertEquals(second, first); // the same kernels, the same numbers
  },
});

Deno.test({
  name:
    "configs differing only in the head width baked into the attention WGSL compile their own pipelines and compute as on a device of their own",
  ...gpu,
  fn: async () => {
    const device = testDevice();
    // Head width 8, then 12: nHead is a uniform, the head width a constant.
    const narrow = parityConfig("bidirectional", "learned", { nHead: 3 });
    const wide = parityConfig("bidirectional", "learned", { nHead: 2 });
    await run(narrow, device);
    let shared: Outputs = { loss: 0, logits: new Float32Array() };
    const counts = await compiles(device, async () => {
      shared = await run(wide, device);
    });
    // The attention kernels at least (forward, two backward).
    assert(counts.createComputePipeline >= 3, JSON.stringify(counts));
    const own = (await requestEngineDevice()).device;
    try {
      assertEquals(shared, await run(wide, own));
    } finally {
      own.destroy();
    }
  },
});
