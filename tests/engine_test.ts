// The fused WebGPU engine inside the experiment, on whatever adapter this
// machine has (lavapipe in CI): it follows the tfjs loss curve, and a run
// killed on it resumes to the same weights.
import {
  followsTfjs,
  noWebGpuAdapter,
  resumesOnEngine,
} from "./_engine_runs.ts";

// No adapter: skipped (a failure where WebGPU is required). Any other error
// of the device request is a failure.
const noAdapter = await noWebGpuAdapter();

Deno.test({
  name:
    "training on the fused engine follows the tfjs curve within 0.02 nats at every logged step, for all three models (ALiBi neighbour heads on the bidirectional two)",
  ignore: noAdapter,
  fn: () => followsTfjs("webgpu", "the fused engine on"),
});

Deno.test({
  name:
    "a run killed on the fused engine resumes to the same weights as an uninterrupted one",
  ignore: noAdapter,
  fn: () => resumesOnEngine("webgpu"),
});
