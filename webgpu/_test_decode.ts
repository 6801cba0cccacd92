// Shared by the decode attention's tests: one `decodeAttention` call
// recorded by the engine's recorder (single or split kernel) on an arena of
// random qkv rows, K and V caches filled at every slot (so a read past p
// or of a stale slot p shows), random RoPE tables and a poisoned (NaN)
// output, run once on the device; and the same attention in float64 (as
// cpu/_executor.ts's decodeAttention). Private.

import { prng } from "@d3pm/core";
import { type ModelConfig, validateConfig } from "@d3pm/transformer";
import { kernelLayout, type Kit, Recorder } from "./_recorder.ts";
import { decodeSplitChunk } from "./_decode.ts";
import type { DecodeAttentionArgs } from "./_kernels.ts";

/** One decode attention call to check. */
export interface DecodeCase {
  batch: number;
  length: number;
  nHead: number;
  hd: number;
  positions: "rotary" | "learned";
  /** The current position p. */
  pos: number;
  /**
   * q's values are uniform in ±qScale (k's in ±1): at 400, scores reach
   * hundreds, where an exp without its max overflows f32.
   */
  qScale: number;
  seed: number;
}

/** The arena of a case: inputs and, after a run, what the kernel wrote. */
export interface DecodeData {
  config: ModelConfig;
  args: DecodeAttentionArgs;
  /** The whole arena (floats). */
  act: Float32Array<ArrayBuffer>;
}

/** The case's arena, laid out and filled (the output NaN). */
export function decodeData(c: DecodeCase): DecodeData {
  const { batch: B, length: L, nHead: H, hd } = c;
  const d = H * hd;
  const config = validateConfig({
    kind: "causal",
    vocabSize: 8,
    contextLength: L,
    nLayer: 1,
    nHead: H,
    dModel: d,
    dMlp: 8,
    positions: c.positions,
    timeConditioning: false,
    dTime: 8,
    dropout: 0,
  });
  let off = 4; // nothing at 0: an offset that drops to 0 reads junk
  const take = (n: number) => {
    const o = off;
    off += n + 4;
    return o;
  };
  const chunks = Math.ceil(L / decodeSplitChunk(hd));
  const args: DecodeAttentionArgs = {
    qkv: take(B * 3 * d),
    k: take(B * L * d),
    v: take(B * L * d),
    cos: take(L * hd / 2),
    sin: take(L * hd / 2),
    y: take(B * d),
    partial: take(B * H * chunks * (hd + 2)),
    pos: 0,
  };
  const rng = prng(c.seed);
  // A plain loop: Float32Array.from over { length } with a map function
  // takes ~17× as long (seconds at the paper shape's 6.3M floats).
  const act = new Float32Array(off);
  for (let i = 0; i < off; i++) act[i] = rng.next() * 2 - 1;
  for (let r = 0; r < B; r++) {
    for (let i = 0; i < d; i++) act[args.qkv + r * 3 * d + i] *= c.qScale;
  }
  act.fill(NaN, args.y, args.y + B * d);
  return { config, args, act };
}

/** The float64 reference: y (B, d) and the cache slots at p (B, d) each. */
export function decodeReference(
  c: DecodeCase,
  data: DecodeData,
): { y: Float64Array; k: Float64Array; v: Float64Array } {
  const { batch: B, length: L, nHead: H, hd, pos } = c;
  const d = H * hd, hh = hd / 2, s = data.args, act = data.act;
  const y = new Float64Array(B * d), kp = new Float64Array(B * d);
  const vp = new Float64Array(B * d);
  const rotate = (row: number, i: number) => {
    const x = act[row + i];
    if (c.positions !== "rotary") return x;
    const j = i % hh;
    const cs = act[s.cos + pos * hh + j], sn = act[s.sin + pos * hh + j];
    return i < hh
      ? x * cs - act[row + i + hh] * sn
      : x * cs + act[row + i - hh] * sn;
  };
  for (let r = 0; r < B; r++) {
    for (let h = 0; h < H; h++) {
      const q0 = s.qkv + r * 3 * d + h * hd, o = r * d + h * hd;
      const q = Array.from({ length: hd }, (_, i) => rotate(q0, i));
      for (let i = 0; i < hd; i++) {
        kp[o + i] = rotate(q0 + d, i);
        vp[o + i] = act[q0 + 2 * d + i];
      }
      const key = (j: number, i: number) =>
        j === pos ? kp[o + i] : act[s.k + (r * L + j) * d + h * hd + i];
      const value = (j: number, i: number) =>
        j === pos ? vp[o + i] : act[s.v + (r * L + j) * d + h * hd + i];
      const sc = Array.from({ length: pos + 1 }, (_, j) => {
        let dot = 0;
        for (let i = 0; i < hd; i++) dot += q[i] * key(j, i);
        return dot / Math.sqrt(hd);
      });
      const mx = Math.max(...sc);
      const e = sc.map((x) => Math.exp(x - mx));
      const den = e.reduce((a, b) => a + b, 0);
      for (let i = 0; i < hd; i++) {
        let acc = 0;
        for (let j = 0; j <= pos; j++) acc += e[j] * value(j, i);
        y[o + i] = acc / den;
      }
    }
  }
  return { y, k: kp, v: vp };
}

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST |
  GPUBufferUsage.COPY_SRC;

/**
 * Run the case's call once with the given kernel; returns the whole arena
 * afterwards. Every buffer and pipeline made here is destroyed.
 */
export async function runDecodeAttention(
  device: GPUDevice,
  c: DecodeCase,
  data: DecodeData,
  attention: "single" | "split",
): Promise<Float32Array> {
  const made: GPUBuffer[] = [];
  const buffer = (bytes: number, usage = USAGE) => {
    const b = device.createBuffer({ size: Math.max(16, bytes), usage });
    made.push(b);
    return b;
  };
  const layout = kernelLayout(device);
  const pipelines = new Map<string, GPUComputePipeline>();
  const kit: Kit = {
    device,
    tile: "auto",
    layout,
    dummy: buffer(16),
    dummies: Array.from({ length: 8 }, () => buffer(16)),
    pipeline: (key, source) => {
      let p = pipelines.get(key);
      if (!p) {
        p = device.createComputePipeline({
          layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
          compute: {
            module: device.createShaderModule({ code: source() }),
            entryPoint: "main",
          },
        });
        pipelines.set(key, p);
      }
      return p;
    },
  };
  const act = buffer(data.act.byteLength);
  device.queue.writeBuffer(act, 0, data.act);
  const ints = buffer(16);
  device.queue.writeBuffer(ints, 0, new Int32Array([c.pos, 0, 0, 0]));
  const read = buffer(data.act.byteLength, 0x01 | 0x08); // MAP_READ | COPY_DST
  try {
    device.pushErrorScope("validation");
    const rec = new Recorder(kit, { act, ints, params: kit.dummy }, false, {
      attention,
    });
    rec.begin("attention");
    rec.decodeAttention(data.config, c.batch, c.length, data.args);
    const list = rec.finish().get("attention")!;
    made.push(rec.uniform!);
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (const d of list) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.x, d.y);
    }
    pass.end();
    encoder.copyBufferToBuffer(act, 0, read, 0, data.act.byteLength);
    device.queue.submit([encoder.finish()]);
    const error = await device.popErrorScope();
    if (error) throw new Error(`decode attention: ${error.message}`);
    await read.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(read.getMappedRange().slice(0));
    read.unmap();
    return out;
  } finally {
    for (const b of made) b.destroy();
  }
}
