/**
 * The engine's matmul kernel on its own: timed at a given shape for
 * benchmarks ({@linkcode timeMatmul}), or run once on given operands to
 * check it against a reference ({@linkcode runMatmul}).
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

/** The kernel variant: operand layouts and output tile. */
export interface MatmulVariant {
  /** A is stored transposed, (k, m) row-major (default false: (m, k)). */
  transA?: boolean;
  /** B is stored transposed, (n, k) row-major (default false: (k, n)). */
  transB?: boolean;
  /** Outputs per workgroup side: 64 or 128 (default 64). */
  tile?: 64 | 128;
}

/** Options of {@linkcode runMatmul}. */
export interface MatmulRunOptions extends MatmulVariant {
  /**
   * Add the product to C's contents (the engine's gradient accumulation,
   * `C += A·B`) instead of overwriting them (default false).
   */
  accumulate?: boolean;
}

/**
 * Operands of {@linkcode runMatmul}: whole buffers, each operand starting at
 * a float offset inside its buffer (as the engine's views into its arena),
 * with the tight leading dimension of its stored layout.
 */
export interface MatmulOperands {
  /** The buffer holding A (m·k floats from `aOffset`). */
  a: Float32Array<ArrayBuffer>;
  /** The buffer holding B (k·n floats from `bOffset`). */
  b: Float32Array<ArrayBuffer>;
  /** C's buffer before the call (m·n floats from `cOffset`; the rest must stay untouched). */
  c: Float32Array<ArrayBuffer>;
  /** A's first float (default 0). */
  aOffset?: number;
  /** B's first float (default 0). */
  bOffset?: number;
  /** C's first float (default 0). */
  cOffset?: number;
}

function checkShape(what: string, shape: MatmulShape): void {
  for (const key of ["m", "n", "k"] as const) {
    const v = shape[key];
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(
        `${what}: ${key} must be a positive integer, got ${v}`,
      );
    }
  }
}

// The pipeline and its bind group over four buffers (uniform, A, B, C), the
// uniform written with the kernel's words; validation errors thrown as one
// line, every buffer destroyed then.
async function prepare(
  device: GPUDevice,
  what: string,
  shape: MatmulShape,
  variant: MatmulVariant & { accumulate?: boolean },
  floats: { a: number; b: number; c: number },
  offsets: { a: number; b: number; c: number },
) {
  const { m, n, k } = shape;
  const transA = variant.transA ?? false;
  const transB = variant.transB ?? false;
  const tile = variant.tile ?? 64;
  if (tile !== 64 && tile !== 128) {
    throw new RangeError(`${what}: tile must be 64 or 128, got ${tile}`);
  }
  const limit = device.limits.maxStorageBufferBindingSize;
  const largest = Math.max(floats.a, floats.b, floats.c) * 4;
  if (largest > limit) {
    throw new RangeError(
      `${what}: an operand of ${m}×${n}×${k} needs ${largest} bytes, over this device's maxStorageBufferBindingSize ${limit}`,
    );
  }
  device.pushErrorScope("validation");
  const buf = (count: number) =>
    device.createBuffer({
      size: Math.max(16, count * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST |
        GPUBufferUsage.COPY_SRC,
    });
  const a = buf(floats.a), b = buf(floats.b), c = buf(floats.c);
  const u = device.createBuffer({
    size: 64,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const buffers = [a, b, c, u];
  device.queue.writeBuffer(
    u,
    0,
    new Uint32Array([
      m,
      n,
      k,
      transA ? m : k, // lda
      transB ? k : n, // ldb
      n, // ldc
      offsets.a,
      offsets.b,
      offsets.c,
      0,
      0,
      0,
      0,
      0,
      1,
      0,
    ]),
  );
  const epilogue = variant.accumulate ? "accumulate" : "store";
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: {
      module: device.createShaderModule({
        code: matmulSource(transA, transB, epilogue, false, tile),
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
    for (const x of buffers) x.destroy();
    throw new Error(`${what}: ${invalid.message.split("\n")[0]}`);
  }
  const encode = (encoder: GPUCommandEncoder, count: number) => {
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    for (let i = 0; i < count; i++) {
      pass.dispatchWorkgroups(Math.ceil(n / tile), Math.ceil(m / tile));
    }
    pass.end();
  };
  return {
    a,
    b,
    c,
    encode,
    destroy: () => buffers.forEach((x) => x.destroy()),
  };
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
  checkShape("timeMatmul", shape);
  const { m, n, k } = shape;
  const repeats = options.repeats ?? 10;
  const kit = await prepare(
    device,
    "timeMatmul",
    shape,
    { transB: options.transB, tile: options.tile },
    { a: m * k, b: k * n, c: m * n },
    { a: 0, b: 0, c: 0 },
  );
  const run = async (count: number) => {
    const encoder = device.createCommandEncoder();
    kit.encode(encoder, count);
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
    kit.destroy();
  }
}

/**
 * Run the engine's tiled matmul kernel once, `C = op(A) · op(B)` (or
 * `C += …`), on operands at offsets inside whole buffers, and read C's whole
 * buffer back: the kernel exactly as the engine records it, for checking
 * it against a reference. One sync.
 *
 * @param device A device (e.g. from `requestEngineDevice`).
 * @param shape m, n, k.
 * @param operands The buffers of A, B and C (C's initial contents), with
 *   offsets.
 * @param options Transposes, tile, accumulate.
 * @returns C's buffer after the call (as long as `operands.c`).
 * @throws {RangeError} When a shape, offset or tile is out of range, or a
 *   buffer is too short for its operand.
 *
 * @example
 * ```ts
 * import { requestEngineDevice, runMatmul, WebGpuUnavailableError } from "@d3pm/webgpu";
 * import { assertEquals } from "@std/assert";
 * try {
 *   const { device } = await requestEngineDevice();
 *   const c = await runMatmul(device, { m: 2, n: 2, k: 3 }, {
 *     a: new Float32Array([1, 2, 3, 4, 5, 6]), // (2, 3)
 *     b: new Float32Array([1, 0, 0, 1, 1, 1]), // (3, 2)
 *     c: new Float32Array(4),
 *   });
 *   assertEquals([...c], [4, 5, 10, 11]);
 *   device.destroy();
 * } catch (e) {
 *   if (!(e instanceof WebGpuUnavailableError)) throw e;
 * }
 * ```
 */
export async function runMatmul(
  device: GPUDevice,
  shape: MatmulShape,
  operands: MatmulOperands,
  options: MatmulRunOptions = {},
): Promise<Float32Array> {
  checkShape("runMatmul", shape);
  const { m, n, k } = shape;
  const offsets = {
    a: operands.aOffset ?? 0,
    b: operands.bOffset ?? 0,
    c: operands.cOffset ?? 0,
  };
  const need = { a: m * k, b: k * n, c: m * n };
  for (const x of ["a", "b", "c"] as const) {
    const off = offsets[x];
    if (!Number.isInteger(off) || off < 0) {
      throw new RangeError(
        `runMatmul: ${x}Offset must be a non-negative integer, got ${off}`,
      );
    }
    if (operands[x].length < off + need[x]) {
      throw new RangeError(
        `runMatmul: ${x} must hold ${x}Offset + ${need[x]} = ${
          off + need[x]
        } floats for ${m}×${n}×${k}, got ${operands[x].length}`,
      );
    }
  }
  const kit = await prepare(
    device,
    "runMatmul",
    shape,
    options,
    {
      a: operands.a.length,
      b: operands.b.length,
      c: operands.c.length,
    },
    offsets,
  );
  const bytes = Math.max(16, operands.c.length * 4);
  const staging = device.createBuffer({
    size: bytes,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    device.queue.writeBuffer(kit.a, 0, operands.a);
    device.queue.writeBuffer(kit.b, 0, operands.b);
    device.queue.writeBuffer(kit.c, 0, operands.c);
    const encoder = device.createCommandEncoder();
    kit.encode(encoder, 1);
    encoder.copyBufferToBuffer(kit.c, 0, staging, 0, bytes);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    return out.subarray(0, operands.c.length);
  } finally {
    staging.destroy();
    kit.destroy();
  }
}
