// Attention kernels run alone for the tests: one arena holding qkv, y, lse,
// dy, dqkv and D of a [B, T] batch of H heads, the kernels' uniform words
// and bindings as the recorder gives them, and a float64 reference of the
// same products (dropout masks from the same hash, ALiBi from the same
// formula). Private to the tests.

import { prng } from "@d3pm/core";
import type { AttentionBias } from "./_wgsl.ts";
import { kernelLayout } from "./_recorder.ts";

/** The shape and features of one attention call. */
export interface AttentionCase {
  batch: number;
  heads: number;
  hd: number;
  length: number;
  causal: boolean;
  /** Dropout rate on the probabilities (0: none). */
  dropout: number;
  bias: AttentionBias | null;
  /** Inputs uniform in ±spread (default 1.5; large: scores far apart). */
  spread?: number;
}

/** A kernel's source for a case (the recorder's signature). */
export type AttentionSource = (
  hd: number,
  causal: boolean,
  dropout: boolean,
  bias: AttentionBias | null,
) => string;

/** The arena's tensors (floats). */
export interface AttentionTensors {
  qkv: Float32Array;
  y: Float32Array;
  lse: Float32Array;
  dy: Float32Array;
  dqkv: Float32Array;
  D: Float32Array;
}

const SEED_BITS = 0x2545f491;

function hash(x0: number): number {
  let x = x0 >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

// _wgsl.ts's keep(site, i) for the scalars the tests bind.
function keep(rate: number, site: number, i: number): number {
  const h = hash(hash(SEED_BITS ^ hash(site)) ^ hash((i ^ 0x9e3779b9) >>> 0));
  const r = Math.fround(rate);
  return (h >>> 8) / 16777216 < r ? 0 : Math.fround(1 / (1 - r));
}

// _wgsl.ts's alibiBias.
function alibi(
  bias: AttentionBias | null,
  h: number,
  H: number,
  i: number,
  j: number,
): number {
  if (!bias) return 0;
  const nb = bias.neighbours && h < 2;
  const m = nb ? bias.slope : bias.slope * 2 ** (-8 * h / H);
  const c = nb ? (h === 0 ? -1 : 1) : 0;
  return -m * Math.abs(j - i - c);
}

/** Offsets (floats) of the tensors in the arena, and its size. */
export function arenaOffsets(c: AttentionCase): Record<string, number> {
  const n = c.batch * c.length, d = c.heads * c.hd, rows = n * c.heads;
  const o = { qkv: 5, y: 0, lse: 0, dy: 0, dqkv: 0, D: 0, size: 0 };
  o.y = o.qkv + 3 * n * d + 3;
  o.lse = o.y + n * d + 1;
  o.dy = o.lse + rows + 2;
  o.dqkv = o.dy + n * d + 7;
  o.D = o.dqkv + 3 * n * d;
  o.size = o.D + rows + 4;
  return o;
}

/** Random qkv and dy (seeded), the rest zero. */
export function randomInputs(c: AttentionCase, seed: number): AttentionTensors {
  const rng = prng(seed);
  const n = c.batch * c.length, d = c.heads * c.hd, rows = n * c.heads;
  const fill = (k: number, s: number) =>
    Float32Array.from({ length: k }, () => (rng.next() * 2 - 1) * s);
  return {
    qkv: fill(3 * n * d, c.spread ?? 1.5),
    y: new Float32Array(n * d),
    lse: new Float32Array(rows),
    dy: fill(n * d, 1),
    dqkv: new Float32Array(3 * n * d),
    D: new Float32Array(rows),
  };
}

/**
 * The float64 reference: y and lse from qkv, then D, dq, dk, dv from dy
 * (with the reference's y and lse).
 */
export function referenceAttention(
  c: AttentionCase,
  x: AttentionTensors,
): AttentionTensors {
  const { batch: B, heads: H, hd, length: T } = c;
  const d = H * hd, scale = 1 / Math.sqrt(hd), site = arenaOffsets(c).lse;
  const out: AttentionTensors = {
    qkv: x.qkv,
    y: new Float32Array(B * T * d),
    lse: new Float32Array(B * H * T),
    dy: x.dy,
    dqkv: new Float32Array(3 * B * T * d),
    D: new Float32Array(B * H * T),
  };
  const at = (b: number, t: number, part: number, h: number) =>
    (b * T + t) * 3 * d + part * d + h * hd;
  const dot = (
    a: ArrayLike<number>,
    i: number,
    b: ArrayLike<number>,
    j: number,
  ) => {
    let s = 0;
    for (let k = 0; k < hd; k++) s += a[i + k] * b[j + k];
    return s;
  };
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const row = (b * H + h) * T;
      const P = Array.from({ length: T }, () => new Float64Array(T));
      const kp = Array.from({ length: T }, () => new Float64Array(T));
      for (let i = 0; i < T; i++) {
        const s = new Float64Array(T).fill(-Infinity);
        for (let j = 0; j < (c.causal ? i + 1 : T); j++) {
          s[j] = dot(x.qkv, at(b, i, 0, h), x.qkv, at(b, j, 1, h)) * scale +
            alibi(c.bias, h, H, i, j);
        }
        const mx = Math.max(...s);
        let sum = 0;
        for (let j = 0; j < T; j++) sum += Math.exp(s[j] - mx);
        const lse = mx + Math.log(sum);
        out.lse[row + i] = lse;
        for (let j = 0; j < T; j++) {
          P[i][j] = Math.exp(s[j] - lse);
          kp[i][j] = c.dropout ? keep(c.dropout, site, (row + i) * T + j) : 1;
        }
        const y0 = (b * T + i) * d + h * hd;
        for (let k = 0; k < hd; k++) {
          let acc = 0;
          for (let j = 0; j < T; j++) {
            acc += P[i][j] * kp[i][j] * x.qkv[at(b, j, 2, h) + k];
          }
          out.y[y0 + k] = acc;
        }
      }
      backwardHead(c, x, out, { b, h, P, kp, at, dot, scale });
    }
  }
  return out;
}

// One head's D, dq, dk, dv.
function backwardHead(
  c: AttentionCase,
  x: AttentionTensors,
  out: AttentionTensors,
  k: {
    b: number;
    h: number;
    P: Float64Array[];
    kp: Float64Array[];
    at: (b: number, t: number, part: number, h: number) => number;
    dot: (
      a: ArrayLike<number>,
      i: number,
      b: ArrayLike<number>,
      j: number,
    ) => number;
    scale: number;
  },
): void {
  const { length: T, hd, heads: H } = c;
  const d = H * hd, row = (k.b * H + k.h) * T;
  for (let i = 0; i < T; i++) {
    const y0 = (k.b * T + i) * d + k.h * hd;
    const D = k.dot(x.dy, y0, out.y, y0);
    out.D[row + i] = D;
    for (let j = 0; j < T; j++) {
      const p = k.P[i][j];
      if (p === 0) continue;
      const dp = k.dot(x.dy, y0, x.qkv, k.at(k.b, j, 2, k.h));
      const ds = p * (dp * k.kp[i][j] - D);
      const q = k.at(k.b, i, 0, k.h), kk = k.at(k.b, j, 1, k.h);
      const v = k.at(k.b, j, 2, k.h);
      for (let e = 0; e < hd; e++) {
        out.dqkv[q + e] += k.scale * ds * x.qkv[kk + e];
        out.dqkv[kk + e] += k.scale * ds * x.qkv[q + e];
        out.dqkv[v + e] += p * k.kp[i][j] * x.dy[y0 + e];
      }
    }
  }
}

/** What a kernel run leaves in the arena. */
export function readTensors(
  c: AttentionCase,
  arena: Float32Array,
): AttentionTensors {
  const o = arenaOffsets(c);
  const n = c.batch * c.length, d = c.heads * c.hd, rows = n * c.heads;
  return {
    qkv: arena.slice(o.qkv, o.qkv + 3 * n * d),
    y: arena.slice(o.y, o.y + n * d),
    lse: arena.slice(o.lse, o.lse + rows),
    dy: arena.slice(o.dy, o.dy + n * d),
    dqkv: arena.slice(o.dqkv, o.dqkv + 3 * n * d),
    D: arena.slice(o.D, o.D + rows),
  };
}

/**
 * Run the kernels `sources` in order, each once over grid
 * (⌈T / own⌉, B·H), on an arena holding `x`; the arena after the last.
 */
export async function runAttention(
  device: GPUDevice,
  c: AttentionCase,
  x: AttentionTensors,
  sources: AttentionSource[],
  own: number,
): Promise<AttentionTensors> {
  const o = arenaOffsets(c);
  const arena = new Float32Array(o.size);
  arena.set(x.qkv, o.qkv);
  arena.set(x.y, o.y);
  arena.set(x.lse, o.lse);
  arena.set(x.dy, o.dy);
  arena.set(x.D, o.D);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC |
    GPUBufferUsage.COPY_DST;
  const made: GPUBuffer[] = [];
  const buffer = (bytes: number, u = usage) => {
    const b = device.createBuffer({ size: bytes, usage: u });
    made.push(b);
    return b;
  };
  try {
    const act = buffer(arena.byteLength);
    device.queue.writeBuffer(act, 0, arena);
    const scl = new Float32Array(16);
    new Uint32Array(scl.buffer)[13] = SEED_BITS;
    scl[14] = c.dropout;
    const sclBuf = buffer(64);
    device.queue.writeBuffer(sclBuf, 0, scl);
    const words = new Uint32Array(16);
    const f = new Float32Array(words.buffer);
    words.set([c.batch * c.heads * c.length, c.length, c.heads, o.qkv]);
    words.set([o.y, o.lse, 0, o.dy], 4);
    f[6] = 1 / Math.sqrt(c.hd);
    words.set([o.dqkv, o.D], 8);
    const uni = buffer(64, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    device.queue.writeBuffer(uni, 0, words);
    const layout = kernelLayout(device);
    const bindGroup = device.createBindGroup({
      layout,
      entries: [
        { binding: 0, resource: { buffer: uni } },
        { binding: 1, resource: { buffer: act } },
        ...[2, 3, 4, 5, 6].map((binding) => ({
          binding,
          resource: { buffer: buffer(16) },
        })),
        { binding: 7, resource: { buffer: sclBuf } },
      ],
    });
    const enc = device.createCommandEncoder();
    for (const source of sources) {
      const code = source(c.hd, c.causal, c.dropout > 0, c.bias);
      const pipeline = device.createComputePipeline({
        layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: {
          module: device.createShaderModule({ code }),
          entryPoint: "main",
        },
      });
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(Math.ceil(c.length / own), c.batch * c.heads);
      pass.end();
    }
    const read = buffer(
      arena.byteLength,
      GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    );
    enc.copyBufferToBuffer(act, 0, read, 0, arena.byteLength);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const back = new Float32Array(read.getMappedRange().slice(0));
    read.unmap();
    return readTensors(c, back);
  } finally {
    for (const b of made) b.destroy();
  }
}
