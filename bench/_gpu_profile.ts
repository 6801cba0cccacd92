// GPU time of every dispatch a piece of engine work records, from outside
// the engine: while `profileDispatches` runs, the device's command encoders
// hand out stand-in compute passes that put each dispatch in a pass of its
// own between two timestamps (as the engine's profileStep does for the
// training step), then the stamps are read back in one extra sync. The
// engine's plans, kernels and hash are untouched; only the passes around
// the dispatches differ. Private to the benches.

import type { KernelTime } from "@d3pm/webgpu";

/** What `profileDispatches` measured. */
export interface DispatchProfile {
  /** Per pipeline (its label, the engine's kernel key), slowest first. */
  kernels: KernelTime[];
  /** GPU milliseconds of all the dispatches together. */
  totalMs: number;
  /** Dispatches timed. */
  dispatches: number;
  /** Dispatches whose stamps were unwritten (0) or out of order: counted as 0 ms. */
  badStamps: number;
}

/** Timestamps per query set (WebGPU's limit is 4,096). */
const STAMPS = 4096;

// A compute pass that records nothing itself: each dispatch opens, fills
// and ends a timestamped pass of the real encoder, with the pipeline and
// bind groups set so far.
function timedPass(
  begin: (d?: GPUComputePassDescriptor) => GPUComputePassEncoder,
  slot: () => { querySet: GPUQuerySet; index: number },
  keys: string[],
): GPUComputePassEncoder {
  let pipeline: GPUComputePipeline | null = null;
  const groups = new Map<number, [GPUBindGroup | null, number[]]>();
  const run = (go: (pass: GPUComputePassEncoder) => void) => {
    const { querySet, index } = slot();
    const pass = begin({
      timestampWrites: {
        querySet,
        beginningOfPassWriteIndex: 2 * index,
        endOfPassWriteIndex: 2 * index + 1,
      },
    });
    if (pipeline) pass.setPipeline(pipeline);
    for (const [i, [group, offsets]] of groups) {
      pass.setBindGroup(i, group, offsets);
    }
    go(pass);
    pass.end();
    keys.push(pipeline?.label || "unlabelled");
  };
  const stub = {
    label: "",
    setPipeline: (p: GPUComputePipeline) => {
      pipeline = p;
    },
    setBindGroup: (i: number, g: GPUBindGroup | null, offsets?: number[]) => {
      groups.set(i, [g, [...(offsets ?? [])]]);
    },
    dispatchWorkgroups: (x: number, y = 1, z = 1) =>
      run((p) => p.dispatchWorkgroups(x, y, z)),
    dispatchWorkgroupsIndirect: (buffer: GPUBuffer, offset: number) =>
      run((p) => p.dispatchWorkgroupsIndirect(buffer, offset)),
    end: () => {},
    pushDebugGroup: () => {},
    popDebugGroup: () => {},
    insertDebugMarker: () => {},
  };
  return stub as unknown as GPUComputePassEncoder;
}

/**
 * Run `work` with every dispatch it records on `device` timed (one pass
 * per dispatch, two timestamps each), and return its result with the
 * per-kernel GPU times. `work` must finish its GPU work before it resolves
 * (the engine's generation does: it reads its tokens back). Passes that
 * already carry timestampWrites (profileStep's) are left as they are.
 * Needs the device feature `timestamp-query`.
 *
 * @param device The device the work records on (with timestamp-query).
 * @param work The work; it resolves once its GPU work is done.
 * @returns `work`'s result and the profile.
 *
 * @example
 * ```ts ignore
 * import { profileDispatches } from "./_gpu_profile.ts";
 * import { requestEngineDevice, WebGpuTransformer } from "@d3pm/webgpu";
 * import { preset } from "@d3pm/transformer";
 * const { device } = await requestEngineDevice();
 * const engine = await WebGpuTransformer.create(preset("micro"), {
 *   batchSize: 1, length: 2, seed: 0, device,
 * });
 * const { profile } = await profileDispatches(device, () =>
 *   engine.generateCausal({ batchSize: 1, length: 8, start: 0, temperature: 0 }));
 * console.log(profile.kernels);
 * ```
 */
export async function profileDispatches<T>(
  device: GPUDevice,
  work: () => Promise<T>,
): Promise<{ result: T; profile: DispatchProfile }> {
  if (!device.features.has("timestamp-query")) {
    throw new Error(
      "profileDispatches needs the device feature timestamp-query (this device lacks it)",
    );
  }
  const sets: GPUQuerySet[] = [];
  const keys: string[] = [];
  let next = 0;
  const slot = () => {
    const index = next % (STAMPS / 2);
    if (index === 0) {
      sets.push(device.createQuerySet({ type: "timestamp", count: STAMPS }));
    }
    next++;
    return { querySet: sets[sets.length - 1], index };
  };
  const create = device.createCommandEncoder;
  // An own property over the prototype's method, deleted afterwards.
  device.createCommandEncoder = (descriptor?: GPUCommandEncoderDescriptor) => {
    const encoder = create.call(device, descriptor);
    const begin = encoder.beginComputePass.bind(encoder);
    encoder.beginComputePass = (d?: GPUComputePassDescriptor) =>
      d?.timestampWrites ? begin(d) : timedPass(begin, slot, keys);
    return encoder;
  };
  try {
    let result: T;
    try {
      result = await work();
    } finally {
      delete (device as { createCommandEncoder?: unknown })
        .createCommandEncoder;
    }
    const stamps = await readStamps(device, sets, next);
    return { result, profile: summarise(keys, stamps) };
  } finally {
    for (const s of sets) s.destroy(); // also when `work` threw
  }
}

// Resolve the first `count` dispatches' stamps of `sets` and read them (one sync).
async function readStamps(
  device: GPUDevice,
  sets: GPUQuerySet[],
  count: number,
): Promise<BigUint64Array> {
  const bytes = Math.max(16, count * 16);
  const resolve = device.createBuffer({ size: bytes, usage: 0x200 | 0x04 }); // QUERY_RESOLVE | COPY_SRC
  const staging = device.createBuffer({ size: bytes, usage: 0x01 | 0x08 }); // MAP_READ | COPY_DST
  try {
    const encoder = device.createCommandEncoder();
    sets.forEach((set, i) => {
      const stamps = Math.min(STAMPS, 2 * count - i * STAMPS);
      encoder.resolveQuerySet(set, 0, stamps, resolve, i * STAMPS * 8);
    });
    encoder.copyBufferToBuffer(resolve, 0, staging, 0, bytes);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(1); // GPUMapMode.READ
    const stamps = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    return stamps;
  } finally {
    resolve.destroy();
    staging.destroy();
  }
}

/**
 * GPU milliseconds by kernel family (the key before its first `:`, e.g.
 * `mm64`, `attn_fwd_tiled`, `dec_attn`), largest first, rounded to µs.
 *
 * @param kernels Per-kernel times.
 * @returns Milliseconds by family.
 *
 * @example
 * ```ts
 * import { byFamily } from "./_gpu_profile.ts";
 * import { assertEquals } from "@std/assert";
 * const kernels = [
 *   { kernel: "mm64:false:true", count: 2, ms: 1 },
 *   { kernel: "ln_fwd", count: 1, ms: 3 },
 *   { kernel: "mm64:true:false", count: 1, ms: 1 },
 * ];
 * assertEquals(byFamily(kernels), { ln_fwd: 3, mm64: 2 });
 * ```
 */
export function byFamily(
  kernels: readonly KernelTime[],
): Record<string, number> {
  const families = new Map<string, number>();
  for (const k of kernels) {
    const f = k.kernel.split(":")[0];
    families.set(f, (families.get(f) ?? 0) + k.ms);
  }
  return Object.fromEntries(
    [...families].sort((a, b) => b[1] - a[1]).map((
      [k, ms],
    ) => [k, +ms.toFixed(3)]),
  );
}

/**
 * Per-kernel sums of (end − begin) of each dispatch; a pair unwritten
 * (begin 0) or out of order (a driver's clock glitch) counts as 0 ms and
 * in `badStamps`.
 *
 * @param keys Each dispatch's kernel key, in order.
 * @param stamps Begin and end of each dispatch, nanoseconds.
 * @returns The profile.
 *
 * @example
 * ```ts
 * import { summarise } from "./_gpu_profile.ts";
 * import { assertEquals } from "@std/assert";
 * const p = summarise(["a", "a"], BigUint64Array.from([1n, 2_000_001n, 0n, 0n]));
 * assertEquals([p.totalMs, p.badStamps], [2, 1]);
 * ```
 */
export function summarise(
  keys: readonly string[],
  stamps: BigUint64Array,
): DispatchProfile {
  const byKernel = new Map<string, KernelTime>();
  let totalMs = 0, badStamps = 0;
  keys.forEach((kernel, i) => {
    const begin = stamps[2 * i], end = stamps[2 * i + 1];
    const good = begin > 0n && end >= begin;
    if (!good) badStamps++;
    const ms = good ? Number(end - begin) / 1e6 : 0;
    const k = byKernel.get(kernel) ?? { kernel, count: 0, ms: 0 };
    k.count++;
    k.ms += ms;
    byKernel.set(kernel, k);
    totalMs += ms;
  });
  return {
    kernels: [...byKernel.values()].sort((a, b) => b.ms - a.ms),
    totalMs,
    dispatches: keys.length,
    badStamps,
  };
}
