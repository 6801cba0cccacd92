// What engines leave behind on one device: `cycles` rounds of create → step
// → readLoss → dispose of a micro training engine on one shared device,
// counting the device's createComputePipeline / createShaderModule /
// createPipelineLayout / createBindGroup calls (the device's methods
// wrapped) and the process's RSS, with no gc() between rounds (V8 sees no
// pressure from GPU objects). Run:
//   deno run -A bench/engine_lifetime.ts --cycles 30
// Private to the bench.

import { readCommandLine } from "@d3pm/cli";
import { requestEngineDevice, WebGpuTransformer } from "@d3pm/webgpu";
import { preset } from "@d3pm/transformer";

const { cycles } = readCommandLine(Deno.args, {
  command: "deno run -A bench/engine_lifetime.ts",
  summary:
    `What engines leave behind on one device: --cycles rounds of create → step
→ readLoss → dispose of a micro training engine on one shared device (a GPU, or
lavapipe), printing the device's pipeline, shader-module, pipeline-layout and
bind-group creations and the process's RSS, with no gc() between rounds.`,
  options: {
    cycles: {
      kind: "integer",
      min: 1,
      default: 30,
      help: "create → step → readLoss → dispose rounds",
    },
  },
}, { usageExit: 2 }).values;
const { device, label } = await requestEngineDevice();
const counts: Record<string, number> = {};
for (
  const name of [
    "createComputePipeline",
    "createShaderModule",
    "createPipelineLayout",
    "createBindGroup",
  ] as const
) {
  counts[name] = 0;
  const original = device[name].bind(device) as (d: unknown) => unknown;
  (device as unknown as Record<string, unknown>)[name] = (d: unknown) => {
    counts[name]++;
    return original(d);
  };
}
const config = preset("micro", { vocabSize: 64, contextLength: 16 });
const B = 2, T = 16;
const inputs = Int32Array.from({ length: B * T }, (_, i) => (i * 7) % 64);
const targets = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 1) % 64);
const weights = new Float32Array(B * T).fill(1 / (B * T));
const mb = () => (Deno.memoryUsage().rss / 2 ** 20).toFixed(0);
console.log(`${label}; ${cycles} cycles; rss at start ${mb()} MB`);
const line = (i: number) =>
  console.log(
    `after ${i} cycles: rss ${mb()} MB, pipelines ${counts.createComputePipeline}, shader modules ${counts.createShaderModule}, pipeline layouts ${counts.createPipelineLayout}, bind groups ${counts.createBindGroup}`,
  );
for (let i = 1; i <= cycles; i++) {
  const engine = await WebGpuTransformer.create(config, {
    batchSize: B,
    length: T,
    seed: i,
    device,
  });
  engine.step({ inputs, targets, weights }, 1e-3);
  await engine.readLoss();
  engine.dispose();
  if (i === 1 || i === 2 || i % 10 === 0) line(i);
}
device.destroy();
