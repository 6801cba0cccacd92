// Shared by the engine's tests: one device for all of them and the WebGPU
// executor of the parity suite; the device-free shapes, seeded batches and
// references (webgpu/_test_models.ts) re-exported. Private.

import { ignoreUnless } from "@d3pm/core/testing";
import { requestEngineDevice, WebGpuUnavailableError } from "./device.ts";
import { WebGpuTransformer } from "./engine.ts";
import type { Executor } from "./_parity_suite.ts";

export * from "./_test_models.ts";

let device: GPUDevice | null = null;
let software = true;
/** Why GPU tests are skipped, or null when an adapter exists. */
export let skipReason: string | null = null;
try {
  ({ device, software } = await requestEngineDevice());
} catch (e) {
  if (!(e instanceof WebGpuUnavailableError)) throw e;
  skipReason = e.message;
}

/**
 * Options of every GPU test: without an adapter, skipped with the reason in
 * the log — or, where WebGPU is required (`CI=true`, `D3PM_REQUIRE`), the
 * file fails; the device lives for the whole file, so its resources are not
 * per-test leaks.
 */
export const gpu = {
  ignore: ignoreUnless("webgpu", skipReason),
  sanitizeResources: false,
  sanitizeOps: false,
};

/** The shared device (tests run only when it exists). */
export function testDevice(): GPUDevice {
  return device!;
}

/**
 * Whether the shared device is a software adapter (lavapipe, llvmpipe,
 * SwiftShader, a fallback adapter: `requestEngineDevice().software`); true
 * when there is no adapter (the GPU tests are then skipped or fail anyway).
 * On software a test pays CPU time per multiply-add, so the GPT-2-shape
 * tests shrink the dimensions they are not about there and run the full
 * shapes on a real GPU.
 */
export function testSoftware(): boolean {
  return software;
}

/**
 * The entry of `shapes` for this device: `software` on a software adapter
 * (or none), `gpu` on a real GPU. Both entries live in one table beside the
 * test, so the GPU's shapes read as the full ones.
 */
export function forDevice<T>(shapes: { gpu: T; software: T }): T {
  return software ? shapes.software : shapes.gpu;
}

/**
 * The WebGPU engine for the parity suite (webgpu/_parity_suite.ts): on the
 * shared device; every generation one sync, and no buffer left behind.
 */
export const webgpuExecutor: Executor = {
  name: "WebGpuTransformer",
  test: gpu,
  create: (config, { scoreRows: _, ...options }) =>
    WebGpuTransformer.create(config, { ...options, device: testDevice() }),
  rowChunks: [undefined],
  syncs: (e) => (e as WebGpuTransformer).counters.syncs,
  liveBuffers: (e) => (e as WebGpuTransformer).liveBuffers,
};
