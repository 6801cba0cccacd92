/**
 * Getting a WebGPU device for the engine: the adapter, the limits the engine
 * needs raised to what the adapter allows, and a one-line error when there
 * is no adapter.
 *
 * @module
 */

import { prepareVulkan } from "@d3pm/backend/vulkan-env";

/**
 * Thrown when this process has no usable WebGPU adapter (no `navigator.gpu`,
 * no adapter, or `requestAdapter` failed), with a one-line reason; callers
 * catch it to fall back to another engine.
 *
 * @example Fall back when there is no adapter
 * ```ts
 * import { requestEngineDevice, WebGpuUnavailableError } from "@d3pm/webgpu";
 * import { assert, assertEquals } from "@std/assert";
 * const e = new WebGpuUnavailableError("No WebGPU: navigator.gpu is missing");
 * assertEquals(e.name, "WebGpuUnavailableError");
 * assert(e instanceof Error && !e.message.includes("\n"));
 * let engine: string;
 * try {
 *   (await requestEngineDevice()).device.destroy();
 *   engine = "webgpu";
 * } catch (err) {
 *   if (!(err instanceof WebGpuUnavailableError)) throw err;
 *   engine = "tfjs"; // the reason is err.message
 * }
 * assert(engine === "webgpu" || engine === "tfjs");
 * ```
 */
export class WebGpuUnavailableError extends Error {
  /**
   * An error with a one-line reason.
   *
   * @param message One line saying why.
   */
  constructor(message: string) {
    super(message);
    this.name = "WebGpuUnavailableError";
  }
}

/** What {@linkcode requestEngineDevice} returns. */
export interface EngineDevice {
  /** The device; the caller destroys it (or lets the process end). */
  device: GPUDevice;
  /** The adapter it came from (its `features` and `limits` are the hardware's). */
  adapter: GPUAdapter;
  /** The adapter's description, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  label: string;
  /** Whether the adapter is a software (fallback) adapter such as lavapipe. */
  software: boolean;
  /** How the driver was reached when that needed help (e.g. NVIDIA's EGL ICD). */
  note?: string;
}

/**
 * Request an adapter and a device with the storage-buffer and workgroup
 * limits raised to the adapter's maxima (the engine binds whole parameter
 * and activation buffers; lavapipe allows 128 MiB per binding).
 *
 * @param options `powerPreference` (default `high-performance`).
 * @returns The device, the adapter's label and whether it is software.
 * @throws {WebGpuUnavailableError} When `navigator.gpu` or an adapter is missing.
 *
 * @example
 * ```ts
 * import { requestEngineDevice, WebGpuUnavailableError } from "@d3pm/webgpu";
 * try {
 *   const { device } = await requestEngineDevice();
 *   device.destroy();
 * } catch (e) {
 *   if (!(e instanceof WebGpuUnavailableError)) throw e;
 * }
 * ```
 */
export async function requestEngineDevice(
  options: { powerPreference?: GPUPowerPreference } = {},
): Promise<EngineDevice> {
  const icdNote = prepareVulkan();
  const gpu = (navigator as { gpu?: GPU }).gpu;
  if (!gpu) {
    throw new WebGpuUnavailableError(
      "No WebGPU: navigator.gpu is missing in this Deno",
    );
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({
      powerPreference: options.powerPreference ?? "high-performance",
    });
  } catch (e) {
    throw new WebGpuUnavailableError(
      `No WebGPU adapter: requestAdapter failed (${
        e instanceof Error ? e.message.split("\n")[0] : e
      })`,
    );
  }
  if (!adapter) {
    throw new WebGpuUnavailableError(
      "No WebGPU adapter: requestAdapter returned null (no Vulkan/Metal/DX12 driver?)",
    );
  }
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    // timestamp-query for WebGpuTransformer.profileStep; shader-f16 for
    // the f16 matmul (runMatmul, timeMatmul); nothing else needs a feature.
    requiredFeatures: (["timestamp-query", "shader-f16"] as const).filter((
      x,
    ) => adapter.features.has(x)),
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxStorageBuffersPerShaderStage: Math.min(
        8,
        l.maxStorageBuffersPerShaderStage,
      ),
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    },
  });
  const info = adapter.info;
  return {
    device,
    adapter,
    label: info.description || info.vendor || "unknown adapter",
    software: info.isFallbackAdapter ||
      /llvmpipe|lavapipe|swiftshader/i.test(info.description),
    ...(icdNote ? { note: icdNote } : {}),
  };
}
