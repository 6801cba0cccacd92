/**
 * The engine's matmul kernel on its own: timed at a given shape for
 * benchmarks ({@linkcode timeMatmul}), or run once on given operands to
 * check it against a reference ({@linkcode runMatmul}).
 *
 * @module
 */

import { matmulSource, matmulSourceV1 } from "./_wgsl.ts";

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
  /**
   * Outputs per workgroup side: 32, 64 or 128 (default 64; the first
   * kernel has 64 and 128 only).
   */
  tile?: 32 | 64 | 128;
  /**
   * Store A and B as f16 (converted on the host, round to nearest even)
   * and accumulate in f32: needs the device's `shader-f16` feature
   * (`requestEngineDevice` enables it where the adapter has it). Default
   * false.
   */
  f16?: boolean;
  /**
   * `new` (default): the engine's kernel — double-buffered stages, vec4
   * loads where an operand's offset, leading dimension and stored row
   * length are multiples of 4, read-only A and B; `old`: the first kernel
   * (f32, scalar loads, single-buffered), for comparisons.
   */
  kernel?: "new" | "old";
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

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The f16 bits of x, rounded to nearest even (±65504 overflows to ±∞,
 * subnormals kept): what {@linkcode runMatmul} stores for `f16`.
 *
 * @example
 * ```ts
 * import { fromHalfBits, toHalfBits } from "@d3pm/webgpu";
 * import { assertEquals } from "@std/assert";
 * assertEquals(toHalfBits(1), 0x3c00);
 * assertEquals(fromHalfBits(toHalfBits(1 / 3)), 0.333251953125);
 * ```
 */
export function toHalfBits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0); // inf, NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal
    man |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = man & ((1 << shift) - 1);
    let h = man >>> shift;
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (man >>> 13);
  const rest = man & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // may carry into e
  e = h >>> 10;
  return sign | (e >= 0x1f ? 0x7c00 : h);
}

/**
 * The number an f16 bit pattern holds.
 *
 * @example
 * ```ts
 * import { fromHalfBits } from "@d3pm/webgpu";
 * import { assertEquals } from "@std/assert";
 * assertEquals(fromHalfBits(0xc000), -2);
 * ```
 */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f, man = h & 0x3ff;
  if (e === 0) return sign * man * 2 ** -24;
  if (e === 0x1f) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (e - 15);
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
  const old = variant.kernel === "old";
  if (
    variant.kernel !== undefined && !["new", "old"].includes(variant.kernel)
  ) {
    throw new RangeError(
      `${what}: kernel must be "new" or "old", got ${
        JSON.stringify(variant.kernel)
      }`,
    );
  }
  if (![32, 64, 128].includes(tile) || (old && tile === 32)) {
    throw new RangeError(
      `${what}: tile must be ${
        old ? "64 or 128 (old kernel)" : "32, 64 or 128"
      }, got ${tile}`,
    );
  }
  const half = variant.f16 ?? false;
  if (half && old) {
    throw new RangeError(`${what}: f16 needs the new kernel, got kernel "old"`);
  }
  if (half && !device.features.has("shader-f16")) {
    throw new RangeError(
      `${what}: f16 needs the device feature shader-f16, which this device lacks`,
    );
  }
  const limit = device.limits.maxStorageBufferBindingSize;
  const elt = half ? 2 : 4;
  const largest = Math.max(floats.a * elt, floats.b * elt, floats.c * 4);
  if (largest > limit) {
    throw new RangeError(
      `${what}: an operand of ${m}×${n}×${k} needs ${largest} bytes, over this device's maxStorageBufferBindingSize ${limit}`,
    );
  }
  device.pushErrorScope("validation");
  const buf = (count: number, bytes = 4) =>
    device.createBuffer({
      size: Math.max(16, Math.ceil((count * bytes) / 4) * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST |
        GPUBufferUsage.COPY_SRC,
    });
  const a = buf(floats.a, elt), b = buf(floats.b, elt), c = buf(floats.c);
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
  // vec4 loads where the operand's offset, ld and stored row are 4-aligned.
  const lda = transA ? m : k, ldb = transB ? k : n;
  const vecA = offsets.a % 4 === 0 && lda % 4 === 0;
  const vecB = offsets.b % 4 === 0 && ldb % 4 === 0;
  const code = old
    ? matmulSourceV1(transA, transB, epilogue, false, tile as 64 | 128)
    : matmulSource(transA, transB, epilogue, false, tile, {
      vecA,
      vecB,
      f16: half,
      readOnly: { a: true, b: true },
    });
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: {
      module: device.createShaderModule({ code }),
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
    half,
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
 * @param options `repeats` (default 10), `transA`, `transB` (default
 *   false), `tile` (32, 64 or 128 outputs per workgroup side; default 64),
 *   `f16` (f16 operands, f32 accumulation), `kernel` (`new` or `old`).
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
  options: MatmulVariant & { repeats?: number } = {},
): Promise<MatmulTiming> {
  checkShape("timeMatmul", shape);
  const { m, n, k } = shape;
  const repeats = options.repeats ?? 10;
  const kit = await prepare(
    device,
    "timeMatmul",
    shape,
    options,
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
    const put = (buffer: GPUBuffer, x: Float32Array<ArrayBuffer>) => {
      if (!kit.half) return device.queue.writeBuffer(buffer, 0, x);
      const bits = new Uint16Array(Math.ceil(x.length / 2) * 2);
      for (let i = 0; i < x.length; i++) bits[i] = toHalfBits(x[i]);
      device.queue.writeBuffer(buffer, 0, bits);
    };
    put(kit.a, operands.a);
    put(kit.b, operands.b);
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
