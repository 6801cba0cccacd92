/**
 * Timing the engine's matmul kernel on its own, for benchmarks: GFLOP/s at
 * a given shape.
 *
 * @module
 */

import { matmulSource } from "./_wgsl.ts";

/** A matmul shape: C[m, n] = A[m, k] · B[k, n]. */
export interface MatmulShape {
  /** Rows of A and C. */
  m: number;
  /** Columns of B and C. */
  n: number;
  /** The reduced dimension. */
  k: number;
}

/** What {@linkcode timeMatmul} returns. */
export interface MatmulTiming {
  /** Seconds per matmul (mean over the repeats). */
  seconds: number;
  /** 2·m·n·k / seconds / 1e9. */
  gflops: number;
}

/**
 * Time `repeats` back-to-back dispatches of the engine's tiled matmul (f32,
 * B stored transposed as the LM head and `x · Wᵀ` use it when `transB`) in
 * one command buffer, after one warm-up; one sync for each of the two.
 *
 * @param device A device (e.g. from `requestEngineDevice`).
 * @param shape m, n, k.
 * @param options `repeats` (default 10), `transB` (default false), `tile`
 *   (64 or 128 outputs per workgroup side; default 64).
 * @returns Seconds per matmul and GFLOP/s.
 *
 * @example
 * ```ts ignore
 * import { requestEngineDevice, timeMatmul } from "@d3pm/webgpu";
 * const { device } = await requestEngineDevice();
 * console.log(await timeMatmul(device, { m: 128, n: 768, k: 768 }));
 * device.destroy();
 * ```
 */
export async function timeMatmul(
  device: GPUDevice,
  shape: MatmulShape,
  options: { repeats?: number; transB?: boolean; tile?: 64 | 128 } = {},
): Promise<MatmulTiming> {
  const { m, n, k } = shape;
  for (const [key, v] of [["m", m], ["n", n], ["k", k]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(
        `timeMatmul: ${key} must be a positive integer, got ${v}`,
      );
    }
  }
  const limit = device.limits.maxStorageBufferBindingSize;
  const largest = Math.max(m * k, k * n, m * n) * 4;
  if (largest > limit) {
    throw new RangeError(
      `timeMatmul: an operand of ${m}×${n}×${k} needs ${largest} bytes, over this device's maxStorageBufferBindingSize ${limit}`,
    );
  }
  const repeats = options.repeats ?? 10;
  const transB = options.transB ?? false;
  const tile = options.tile ?? 64;
  if (tile !== 64 && tile !== 128) {
    throw new RangeError(`timeMatmul: tile must be 64 or 128, got ${tile}`);
  }
  device.pushErrorScope("validation");
  const buf = (floats: number) =>
    device.createBuffer({
      size: floats * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
  const a = buf(m * k), b = buf(k * n), c = buf(m * n);
  const u = device.createBuffer({
    size: 64,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(
    u,
    0,
    new Uint32Array([m, n, k, k, transB ? k : n, n, 0, 0, 0, 0, 0, 0]),
  );
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: {
      module: device.createShaderModule({
        code: matmulSource(false, transB, "store", false, tile),
      }),
      entryPoint: "main",
    },
  });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [u, a, b, c].map((buffer, binding) => ({
      binding,
      resource: { buffer },
    })),
  });
  const invalid = await device.popErrorScope();
  if (invalid) {
    for (const x of [a, b, c, u]) x.destroy();
    throw new Error(`timeMatmul: ${invalid.message.split("\n")[0]}`);
  }
  const run = async (count: number) => {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    for (let i = 0; i < count; i++) {
      pass.dispatchWorkgroups(Math.ceil(n / tile), Math.ceil(m / tile));
    }
    pass.end();
    const start = performance.now();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - start) / 1000;
  };
  try {
    await run(1);
    const seconds = (await run(repeats)) / repeats;
    return { seconds, gflops: (2 * m * n * k) / seconds / 1e9 };
  } finally {
    for (const x of [a, b, c, u]) x.destroy();
  }
}
