// Shared by the skinny matmul's tests: one product C[M, N] = A[M, K] ·
// op(B) with one epilogue, run whole by the skinny kernel (_skinny_wgsl.ts)
// on the device with the uniform words and alignment rules the recorder
// uses, and checked against float64 at every output. A, B, C, the bias and
// E each live in their own buffer at an offset; C starts poisoned (NaN) or
// random (accumulate), a pre-activation E poisoned, and guard values
// around C and E must survive. Tolerance: |c − ref| ≤ 2e-6 · (Σ_k |a·b| +
// |bias| + |E| + |C₀|) on the linear part (TOL of _test_matmul.ts: a
// product that drops one quad of K terms misses by ~4/K of that scale);
// GELU and SiLU are checked on the kernel's own pre-activation, within
// 2e-6 · (1 + |pre|). Private.

import { assert } from "@std/assert";
import { prng } from "@d3pm/core";
import type { Epilogue } from "./_kernels.ts";
import { skinnyColumns, skinnySource } from "./_skinny_wgsl.ts";
import { TOL } from "./_test_matmul.ts";

/** One skinny product to check. */
export interface SkinnyCase {
  m: number;
  n: number;
  k: number;
  transB: boolean;
  epilogue: Epilogue;
  seed: number;
  /** Float offsets of A, B, C (default 4, 8, 12: vec4 loads where K and N allow). */
  offsets?: [number, number, number];
}

const GUARD = 12345.5;

function random(length: number, seed: number): Float32Array<ArrayBuffer> {
  const rng = prng(seed);
  // A plain loop: Float32Array.from over { length } with a map function
  // takes ~17× as long (seconds for the head's 32M floats of wte).
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = rng.next() * 2 - 1;
  return out;
}

function gelu(x: number): number {
  const c = 0.7978845608028654;
  return 0.5 * x * (1 + Math.tanh(c * (x + 0.044715 * x * x * x)));
}

// Run the kernel once on the five buffers; returns C's and E's buffers.
async function run(
  device: GPUDevice,
  c: SkinnyCase,
  data: Record<"a" | "b" | "c" | "bias" | "e", Float32Array<ArrayBuffer>>,
  words: number[],
): Promise<{ c: Float32Array; e: Float32Array }> {
  const { m, n, k, transB, epilogue } = c;
  const [aOff, bOff] = c.offsets ?? [4, 8, 12];
  const vecA = aOff % 4 === 0 && k % 4 === 0;
  const vecB = bOff % 4 === 0 && (transB ? k : n) % 4 === 0;
  const cols = skinnyColumns(n, transB);
  const code = skinnySource(m, transB, epilogue, cols, {
    vecA,
    vecB,
    readOnly: { a: true, b: true, bias: true, e: true },
  });
  device.pushErrorScope("validation");
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST |
    GPUBufferUsage.COPY_SRC;
  const made: GPUBuffer[] = [];
  const put = (x: Float32Array<ArrayBuffer>, u = usage) => {
    const b = device.createBuffer({ size: x.byteLength, usage: u });
    device.queue.writeBuffer(b, 0, x);
    made.push(b);
    return b;
  };
  const uniform = put(
    new Float32Array(new Uint32Array(words).buffer),
    GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  );
  const bufs = [data.a, data.b, data.c, data.bias, data.e].map((x) => put(x));
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: {
      module: device.createShaderModule({ code }),
      entryPoint: "main",
    },
  });
  const layout = pipeline.getBindGroupLayout(0);
  // "auto" layouts hold only the bindings the shader uses.
  const used = [1, 2, 3, 4, 5].filter((b) => code.includes(`@binding(${b})`));
  const bindGroup = device.createBindGroup({
    layout,
    entries: [
      { binding: 0, resource: { buffer: uniform } },
      ...used.map((b) => ({ binding: b, resource: { buffer: bufs[b - 1] } })),
    ],
  });
  const groups = Math.ceil(n / cols);
  const x = Math.min(groups, 65535), y = Math.ceil(groups / x);
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(x, y);
  pass.end();
  const read = (b: GPUBuffer, bytes: number) => {
    const s = device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    made.push(s);
    encoder.copyBufferToBuffer(b, 0, s, 0, bytes);
    return s;
  };
  const sc = read(bufs[2], data.c.byteLength);
  const se = read(bufs[4], data.e.byteLength);
  device.queue.submit([encoder.finish()]);
  const invalid = await device.popErrorScope();
  try {
    if (invalid) throw new Error(`skinny matmul: ${invalid.message}`);
    await Promise.all([
      sc.mapAsync(GPUMapMode.READ),
      se.mapAsync(GPUMapMode.READ),
    ]);
    return {
      c: new Float32Array(sc.getMappedRange().slice(0)),
      e: new Float32Array(se.getMappedRange().slice(0)),
    };
  } finally {
    for (const b of made) b.destroy();
  }
}

// The epilogue's linear part in float64 and its scale: the output (or the
// pre-activation E) and Σ|terms|.
function linear(
  epilogue: Epilogue,
  dot: number,
  scale: number,
  bias: number,
  e0: number,
  c0: number,
): [number, number] {
  switch (epilogue) {
    case "store":
      return [dot, scale];
    case "accumulate":
      return [c0 + dot, scale + Math.abs(c0)];
    case "bias":
    case "bias_gelu":
    case "bias_silu":
      return [dot + bias, scale + Math.abs(bias)];
    case "bias_residual":
      return [dot + bias + e0, scale + Math.abs(bias) + Math.abs(e0)];
    default:
      throw new Error(`no reference for the epilogue ${epilogue}`);
  }
}

// Guard values around C and E survived.
function checkGuards(
  what: string,
  buffers: [string, Float32Array, number][],
  count: number,
): void {
  for (const [name, buf, off] of buffers) {
    for (let i = 0; i < buf.length; i++) {
      if (i < off || i >= off + count) {
        assert(
          buf[i] === GUARD,
          `${what}: wrote ${name} outside it (float ${i})`,
        );
      }
    }
  }
}

/**
 * Run and check one product at every output; returns the worst ratio of
 * |Δ| to its scale on the linear part.
 */
export async function checkSkinny(
  device: GPUDevice,
  c: SkinnyCase,
): Promise<number> {
  const { m, n, k, transB, epilogue } = c;
  const [aOff, bOff, cOff] = c.offsets ?? [4, 8, 12];
  const biasOff = 1, eOff = 2;
  const writesE = epilogue === "bias_gelu" || epilogue === "bias_silu";
  const data = {
    a: random(aOff + m * k + 3, c.seed),
    b: random(bOff + k * n + 3, c.seed + 1),
    c: random(cOff + m * n + 9, c.seed + 2),
    bias: random(biasOff + n + 2, c.seed + 3),
    e: random(eOff + m * n + 5, c.seed + 4),
  };
  data.c.fill(GUARD, 0, cOff).fill(GUARD, cOff + m * n);
  if (epilogue !== "accumulate") data.c.fill(NaN, cOff, cOff + m * n);
  data.e.fill(GUARD, 0, eOff).fill(GUARD, eOff + m * n);
  if (writesE) data.e.fill(NaN, eOff, eOff + m * n);
  const words = [
    ...[m, n, k, k, transB ? k : n, n, aOff, bOff],
    ...[cOff, biasOff, eOff, n, 0, 0, 1, 0],
  ];
  const out = await run(device, c, data, words);
  const what = `${m}×${n}×${k} transB ${transB} ${epilogue} offsets ${
    c.offsets ?? [4, 8, 12]
  }`;
  checkGuards(what, [["C", out.c, cOff], ["E", out.e, eOff]], m * n);
  const A = data.a, B = data.b;
  let worst = 0;
  const row = new Float64Array(k);
  for (let i = 0; i < m; i++) {
    for (let kk = 0; kk < k; kk++) row[kk] = A[aOff + i * k + kk];
    for (let j = 0; j < n; j++) {
      let dot = 0, scale = 0;
      for (let kk = 0; kk < k; kk++) {
        const p = row[kk] *
          (transB ? B[bOff + j * k + kk] : B[bOff + kk * n + j]);
        dot += p;
        scale += Math.abs(p);
      }
      const at = i * n + j;
      const bias = data.bias[biasOff + j], e0 = data.e[eOff + at];
      const c0 = data.c[cOff + at];
      const [ref, sc] = linear(epilogue, dot, scale, bias, e0, c0);
      const got = writesE ? out.e[eOff + at] : out.c[cOff + at];
      const ratio = Math.abs(got - ref) / sc;
      worst = Math.max(worst, ratio);
      assert(
        ratio <= TOL,
        `${what}: ${
          writesE ? "E" : "C"
        }[${i}, ${j}] = ${got}, float64 ${ref} (|Δ| / scale = ${
          ratio.toExponential(2)
        } > ${TOL})`,
      );
      if (writesE) {
        const act = epilogue === "bias_gelu"
          ? gelu(got)
          : got / (1 + Math.exp(-got));
        const y = out.c[cOff + at];
        assert(
          Math.abs(y - act) <= 2e-6 * (1 + Math.abs(got)),
          `${what}: C[${i}, ${j}] = ${y}, ${epilogue} of E ${act}`,
        );
      }
    }
  }
  return worst;
}
