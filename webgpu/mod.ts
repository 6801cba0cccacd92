/**
 * A fused WebGPU engine for the project's Transformer: the same config,
 * parameter names and safetensors as `@d3pm/transformer`, a training step in
 * one command buffer of about a hundred dispatches, the loss summed on the
 * GPU and read only when asked.
 *
 * @example
 * ```ts
 * import { requestEngineDevice, WebGpuUnavailableError } from "@d3pm/webgpu";
 * import { assert } from "@std/assert";
 * try {
 *   const { device, label } = await requestEngineDevice();
 *   assert(label.length > 0);
 *   device.destroy();
 * } catch (e) {
 *   assert(e instanceof WebGpuUnavailableError); // no adapter: one-line reason
 * }
 * ```
 *
 * @module
 */
export * from "./device.ts";
export * from "./engine.ts";
export * from "./types.ts";
export * from "./matmul.ts";
export * from "./memory.ts";
export * from "./engine_hash.ts";
// Types from other workspace packages that appear in this package's signatures.
export type {
  ModelConfig,
  ModelKind,
  PositionKind,
} from "@d3pm/transformer/init";
export type { StoredTensor, Tensor1D, Tensor2D, Tensor3D } from "@d3pm/core";
