// The GPU categorical sampler against the float64 CPU sampler, statistically.
// Every test has a fixed seed, so each is deterministic; the thresholds are
// significance levels: a goodness-of-fit test fails below p = 1e-4. Each
// test also states its power against near misses (temperature 0.9 instead
// of 1, top-p off, top-k off by one, the wrong id excluded, the reveal
// probability halved): it asserts that power is ≥ 0.99 at its own sample
// size and threshold, and that float64 draws from the near miss fail it.
// SAMPLING_REPORT=1 prints the statistics.

import { prng, sampleCategorical, tokenProbabilities } from "@d3pm/core";
import { assert, assertEquals, assertLess, assertRejects } from "@std/assert";
import {
  categoricalSource,
  categoricalWords,
  type GpuDrawOptions,
  LOG_EXPONENTIAL_64,
  sampleRowsOnGpu,
  UNIT64,
} from "./_sampling.ts";
import { gpu, testDevice } from "./_test_util.ts";
import {
  chiSquare,
  chiSquarePower,
  drawFrom,
  type Fit,
  gammaQ,
  histogram,
  normalTail,
} from "../core/_test_stats.ts";

const ALPHA = 1e-4;
const REPORT = Deno.env.get("SAMPLING_REPORT") === "1";
function report(line: string): void {
  if (REPORT) console.log(line);
}

// ---- statistics (chiSquare, gammaQ: ../core/_test_stats.ts) ----------------------

/** Two-sided Poisson p-value of k events when λ are expected. */
function poissonPValue(k: number, lambda: number): number {
  // P(X ≤ k) = Q(k + 1, λ); P(X ≥ k) = 1 − Q(k, λ) = P(k, λ).
  const below = gammaQ(k + 1, lambda);
  const above = k === 0 ? 1 : 1 - gammaQ(k, lambda);
  return Math.min(1, 2 * Math.min(below, above));
}

// ---- the float64 reference --------------------------------------------------

interface Shape {
  temperature?: number;
  topK?: number;
  topP?: number;
  exclude?: number;
}

/**
 * core/categorical.ts's probabilities; top-k (which it lacks) by the same
 * rule as its top-p: order by logit, highest first, ties to the lower id
 * (a stable sort), keep the first k, suppress the rest.
 */
function reference(logits: ArrayLike<number>, s: Shape): Float64Array {
  const suppress = s.exclude === undefined ? [] : [s.exclude];
  if (s.topK) {
    const order = Array.from({ length: logits.length }, (_, i) => i)
      .filter((i) => i !== s.exclude)
      .sort((a, b) => logits[b] - logits[a]);
    suppress.push(...order.slice(s.topK));
  }
  return tokenProbabilities(Array.from(logits), {
    temperature: s.temperature,
    topP: s.topP,
    suppress,
  });
}

/** `rows` copies of one row of logits. */
function tile(row: Float32Array, rows: number): Float32Array {
  const out = new Float32Array(row.length * rows);
  for (let r = 0; r < rows; r++) out.set(row, r * row.length);
  return out;
}

// A small vocabulary: a heavy head (with a tie: ids 4 and 7), a middle, and a
// light tail whose probabilities run from ~1e-3 down to ~1e-5.
const V = 64;
const SMALL = (() => {
  const l = new Float32Array(V);
  [2.0, 1.5, 1.2, 1.0, 0.5, 0.3, 0.0, 0.5].forEach((x, i) => (l[i] = x));
  for (let i = 8; i < 40; i++) l[i] = -1 - (3 * (i - 8)) / 31;
  for (let i = 40; i < V; i++) l[i] = -3.6 - (4.7 * (i - 40)) / 23;
  return l;
})();

async function gpuDraws(
  logits: Float32Array,
  rows: number,
  draws: number,
  s: Shape & Partial<GpuDrawOptions>,
): Promise<Int32Array> {
  return (await sampleRowsOnGpu(testDevice(), tile(logits, rows), {
    vocab: logits.length,
    draws,
    seed: [12345, 678],
    ...s,
  })).tokens;
}

/** What a goodness-of-fit test rejects: an id of probability 0, or p < ALPHA. */
function rejects(fit: Fit): boolean {
  return fit.impossible > 0 || fit.p < ALPHA;
}

/** Probabilities of top-k 5 with the boundary tie (ids 4 and 7) kept by 7. */
function tieToHigherId(): Float64Array {
  const p = reference(SMALL, {});
  const keep = [0, 1, 2, 3, 7];
  const z = keep.reduce((a, j) => a + p[j], 0);
  return p.map((x, i) => (keep.includes(i) ? x / z : 0));
}

const NEAR_MISSES: Record<string, [string, Float64Array][]> = {
  "temperature 1": [[
    "temperature 0.9",
    reference(SMALL, { temperature: 0.9 }),
  ]],
  "temperature 0.7": [[
    "temperature 0.63",
    reference(SMALL, { temperature: 0.63 }),
  ]],
  "top-k 5 (a tie on the boundary)": [
    ["top-k 4", reference(SMALL, { topK: 4 })],
    ["top-k 6", reference(SMALL, { topK: 6 })],
    ["the tie kept by the higher id", tieToHigherId()],
  ],
  "top-p 0.9": [
    ["top-p off", reference(SMALL, { temperature: 1.3 })],
    ["temperature 1.17", reference(SMALL, { topP: 0.9, temperature: 1.17 })],
  ],
  "an excluded id": [
    ["nothing excluded", reference(SMALL, {})],
    ["the next id excluded", reference(SMALL, { exclude: 2 })],
  ],
};

// Sample sizes N = rows · draws: 100,000 at the temperatures and the
// excluded id, 20,000 at top-k and top-p. The χ² test's power against every
// near miss below is ≥ 1 − 1e-6 already at N 10,000 (chiSquarePower,
// noncentral χ² at ALPHA), but N is sized for subtler errors: a temperature
// 3% off (1.03·T) has power ≥ 0.999 at N 100,000 and only 0.15 at 20,000
// (0.02 at 10,000), at T 1 and 0.7 alike. A planted ×1.03 on the
// temperature in webgpu/_sampling.ts fails here (p 2e-19 at T 1, 1e-22 at
// 0.7); at N 20,000 it passed at T 1 and failed at 0.7 only by luck of the
// draw (p 6e-7 at power 0.17). N 20,000 and 10,000 saved ~11 of 127 CPU-s.
for (
  const [label, shape, rows, draws] of [
    ["temperature 1", {}, 500, 200],
    ["temperature 0.7", { temperature: 0.7 }, 500, 200],
    ["top-k 5 (a tie on the boundary)", { topK: 5 }, 200, 100],
    ["top-p 0.9", { topP: 0.9, temperature: 1.3 }, 200, 100],
    ["an excluded id", { exclude: 1 }, 500, 200],
  ] as const
) {
  Deno.test({
    name:
      `sampleRowsOnGpu() fits the float64 probabilities (χ², p ≥ 1e-4) at ${label}, and a near miss does not`,
    ...gpu,
    fn: async () => {
      const probs = reference(SMALL, shape);
      const tokens = await gpuDraws(SMALL, rows, draws, shape);
      const fit = chiSquare(histogram(tokens, V), probs);
      report(
        `χ² ${label}: N ${tokens.length}, χ² ${
          fit.chi2.toFixed(2)
        }, df ${fit.df}, p ${fit.p.toPrecision(3)}`,
      );
      // The same test on float64 draws from each near miss must fail, and
      // its power there (noncentral χ²) must be ≥ 0.99.
      const rng = prng(77);
      for (const [miss, q] of NEAR_MISSES[label]) {
        const power = chiSquarePower(probs, q, tokens.length, ALPHA);
        const wrong = chiSquare(
          histogram(drawFrom(q, tokens.length, () => rng.next()), V),
          probs,
        );
        report(
          `  near miss ${miss}: power ${power.toFixed(4)}; its draws: χ² ${
            wrong.chi2.toFixed(1)
          }, ${wrong.impossible} impossible`,
        );
        assert(power >= 0.99, `power ${power} against ${miss}`);
        assert(rejects(wrong), `float64 draws at ${miss} pass`);
      }
      assertEquals(fit.impossible, 0, "ids of probability 0 were drawn");
      assert(!rejects(fit), `χ² ${fit.chi2} on ${fit.df} df: p ${fit.p}`);
    },
  });
}

// log E straight from chosen 64-bit words, against float64 −log(X·2^-64)
// and −log1p(−(2^64 − X)·2^-64): an absolute error ε in log E changes a
// token's probability by a factor within e^±ε, so this checks the precision
// claim down to E ≈ 2^-64 (logit gaps of 44 nats), far past what a
// frequency test can reach.
async function logExponentials(xs: bigint[]): Promise<Float32Array> {
  const device = testDevice();
  const module = device.createShaderModule({
    code: `${UNIT64}
@group(0) @binding(0) var<storage, read_write> words: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
fn hi_word(k: vec2<u32>, i: u32) -> u32 { return words[2u * i]; }
fn lo_word(k: vec2<u32>, i: u32) -> u32 { return words[2u * i + 1u]; }
${LOG_EXPONENTIAL_64}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < arrayLength(&out)) { out[g.x] = log_exponential(vec2<u32>(0u, 0u), g.x); }
}`,
  });
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module, entryPoint: "main" },
  });
  const words = new Uint32Array(xs.length * 2);
  xs.forEach((x, i) => {
    words[2 * i] = Number(x >> 32n);
    words[2 * i + 1] = Number(x & 0xffffffffn);
  });
  const S = GPUBufferUsage.STORAGE;
  const inBuf = device.createBuffer({
    size: words.byteLength,
    usage: S | GPUBufferUsage.COPY_DST,
  });
  const outBuf = device.createBuffer({
    size: xs.length * 4,
    usage: S | GPUBufferUsage.COPY_SRC,
  });
  const read = device.createBuffer({
    size: xs.length * 4,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    device.queue.writeBuffer(inBuf, 0, words);
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(
      0,
      device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: inBuf } },
          { binding: 1, resource: { buffer: outBuf } },
        ],
      }),
    );
    pass.dispatchWorkgroups(Math.ceil(xs.length / 64));
    pass.end();
    encoder.copyBufferToBuffer(outBuf, 0, read, 0, xs.length * 4);
    device.queue.submit([encoder.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(read.getMappedRange().slice(0));
    read.unmap();
    return out;
  } finally {
    for (const b of [inBuf, outBuf, read]) b.destroy();
  }
}

Deno.test({
  name:
    "the 64-bit exponential draw is within 1e-5 of float64 in log E from X = 0 to 2^64 − 1",
  ...gpu,
  fn: async () => {
    const TWO64 = 1n << 64n;
    const xs: bigint[] = [
      0n,
      1n,
      2n,
      1n << 20n,
      (1n << 32n) - 1n,
      1n << 32n,
      (1n << 40n) + 12345n,
      1n << 62n,
      (1n << 63n) - 1n,
      1n << 63n,
      (1n << 63n) + 1n,
      TWO64 - (1n << 40n),
      TWO64 - (1n << 33n) - 7n,
      TWO64 - (1n << 32n),
      TWO64 - 5n,
      TWO64 - 1n,
    ];
    const rng = prng(11);
    const word = () => BigInt(rng.nextUint32());
    for (let i = 0; i < 300; i++) {
      const x = (word() << 32n) | word();
      const shift = BigInt(rng.nextInt(64)); // log-uniform near both ends
      xs.push(x, x >> shift, TWO64 - 1n - (x >> shift));
    }
    const got = await logExponentials(xs);
    let worst = 0;
    xs.forEach((x, i) => {
      const e = x < 1n << 63n
        ? -Math.log(x === 0n ? 2 ** -65 : Number(x) / 2 ** 64)
        : -Math.log1p(-Number(TWO64 - x) / 2 ** 64);
      const err = Math.abs(got[i] - Math.log(e));
      worst = Math.max(worst, err);
      assertLess(err, 1e-5, `X = ${x}: log E ${got[i]} vs ${Math.log(e)}`);
    });
    report(
      `log E: worst |error| ${worst.toExponential(2)} over ${xs.length} X`,
    );
  },
});

// The tail: 65,520 ids each of probability ≈ 3e-8 (below 2^-24 ≈ 6e-8, the
// resolution of a float32 uniform; logit gap ≈ 17 nats), together ≈ 2e-3.
// (Gaps of 20–25 nats would need ~1e11 token evaluations to see a few
// hundred tail draws: beyond a software rasteriser.)
const TAIL_V = 65536, HEAD = 16;
const TAIL = (() => {
  const l = new Float32Array(TAIL_V).fill(-15.2);
  for (let i = 0; i < HEAD; i++) l[i] = -0.1 * i;
  return l;
})();
const TAIL_ROWS = 16, TAIL_DRAWS = 1024;

// A naive float32 draw: u = (h >> 8)·2^-24, E = −log u ≥ 2^-24 in exact
// arithmetic. The floor is written out: WGSL lets log() err by 2^-21 near 1,
// and on an NVIDIA H100 (Vulkan, 2026-12-06) −log(1 − 2^-24) came out as 0,
// so E = 0 gave a tail id an infinite score and the mutant over-drew the
// tail (54 draws for 32 expected, p ≈ 3e-4) instead of under-drawing it.
const NAIVE = `
fn log_exponential(k: vec2<u32>, i: u32) -> f32 {
  let u = f32(hi_word(k, i) >> 8u) * (1.0 / 16777216.0);
  return log(max(-log(u), 1.0 / 16777216.0));
}
`;

function tailCount(tokens: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < tokens.length; i++) if (tokens[i] >= HEAD) n++;
  return n;
}

Deno.test({
  name:
    "sampleRowsOnGpu() draws a tail of 3e-8 probabilities as often as float64 does; a float32 uniform is rejected",
  ...gpu,
  fn: async () => {
    const probs = reference(TAIL, {});
    let mass = 0;
    for (let i = HEAD; i < TAIL_V; i++) mass += probs[i];
    const n = TAIL_ROWS * TAIL_DRAWS;
    const expected = n * mass;
    // float64 CPU sampler.
    const rng = prng(99);
    let cpu = 0;
    for (let d = 0; d < n; d++) {
      if (sampleCategorical(probs, rng) >= HEAD) cpu++;
    }
    const precise = tailCount(await gpuDraws(TAIL, TAIL_ROWS, TAIL_DRAWS, {}));
    const naive = tailCount(
      await gpuDraws(TAIL, TAIL_ROWS, TAIL_DRAWS, { logExponential: NAIVE }),
    );
    const [pCpu, pGpu, pNaive] = [cpu, precise, naive].map((k) =>
      poissonPValue(k, expected)
    );
    report(
      `tail: p_i ${probs[HEAD].toPrecision(3)}, mass ${
        mass.toPrecision(3)
      }, N ${n}, expected ${expected.toFixed(1)}; float64 CPU ${cpu} (p ${
        pCpu.toPrecision(3)
      }), GPU 64-bit ${precise} (p ${
        pGpu.toPrecision(3)
      }), naive f32 ${naive} (p ${pNaive.toPrecision(3)})`,
    );
    assert(
      pCpu >= ALPHA,
      `float64 CPU: ${cpu} tail draws, ${expected} expected`,
    );
    assert(pGpu >= ALPHA, `GPU: ${precise} tail draws, ${expected} expected`);
    assertLess(
      pNaive,
      ALPHA,
      `naive: ${naive} tail draws, ${expected} expected`,
    );
  },
});

Deno.test({
  name:
    "sampleRowsOnGpu() keeps the entropy of a wide Zipf distribution (within 5 standard errors), as the CPU sampler does",
  ...gpu,
  fn: async () => {
    const Vz = 2048;
    const logits = new Float32Array(Vz).map((_, i) => -Math.log(i + 1));
    const probs = reference(logits, {});
    let h = 0, h2 = 0;
    for (const p of probs) {
      if (p > 0) {
        h -= p * Math.log(p);
        h2 += p * Math.log(p) ** 2;
      }
    }
    const rows = 64, draws = 512, n = rows * draws;
    const se = Math.sqrt((h2 - h * h) / n);
    // Plug-in entropy with the Miller–Madow correction (K − 1)/2N.
    const entropy = (tokens: ArrayLike<number>) => {
      const c = histogram(tokens, Vz);
      let e = 0, k = 0;
      for (const x of c) {
        if (x > 0) {
          k++;
          e -= (x / n) * Math.log(x / n);
        }
      }
      return e + (k - 1) / (2 * n);
    };
    const rng = prng(7);
    const cpu = entropy(
      Array.from({ length: n }, () => sampleCategorical(probs, rng)),
    );
    const gpuH = entropy(await gpuDraws(logits, rows, draws, {}));
    report(
      `entropy: exact ${h.toFixed(4)}, se ${se.toFixed(4)}, float64 CPU ${
        cpu.toFixed(4)
      }, GPU ${gpuH.toFixed(4)} (N ${n})`,
    );
    assertLess(Math.abs(cpu - h), 5 * se);
    assertLess(Math.abs(gpuH - h), 5 * se);
    // Power: at temperature 0.9 or 1.1 the estimate (≈ normal about the
    // near miss's entropy) leaves the ±5 s.e. band with probability ≥ 0.99,
    // and float64 draws there do leave it.
    for (const temperature of [0.9, 1.1]) {
      const q = reference(logits, { temperature });
      let hq = 0, hq2 = 0;
      for (const p of q) {
        if (p > 0) {
          hq -= p * Math.log(p);
          hq2 += p * Math.log(p) ** 2;
        }
      }
      const seq = Math.sqrt((hq2 - hq * hq) / n);
      const power = normalTail((h + 5 * se - hq) / seq) +
        normalTail((hq - (h - 5 * se)) / seq);
      const wrong = entropy(drawFrom(q, n, () => rng.next()));
      report(
        `  temperature ${temperature}: entropy ${hq.toFixed(4)}, power ${
          power.toFixed(4)
        }, float64 draws ${wrong.toFixed(4)}`,
      );
      assert(power >= 0.99, `power ${power} at temperature ${temperature}`);
      assert(Math.abs(wrong - h) >= 5 * se, `temperature ${temperature}`);
    }
  },
});

Deno.test({
  name:
    "sampleRowsOnGpu() repeats a seed and stream, changes with either, and does not depend on the thread count",
  ...gpu,
  fn: async () => {
    const at = (s: Partial<GpuDrawOptions>) =>
      gpuDraws(SMALL, 16, 4, { temperature: 2, ...s });
    const a = await at({ stream: 5 });
    assertEquals(await at({ stream: 5 }), a);
    const differs = (b: Int32Array) => b.some((x, i) => x !== a[i]);
    assert(differs(await at({ stream: 9 })), "another stream");
    assert(
      differs(await at({ stream: 5, seed: [12345, 679] })),
      "another seed",
    );
    // Streams 5..8 are draws 0..3 of one call: draw 1 is stream 6.
    assertEquals(await at({ stream: 6, draws: 1 }), a.slice(16, 32));
    for (const s of [{}, { topK: 5 }, { topP: 0.9 }, { exclude: 0 }]) {
      assertEquals(
        await at({ ...s, threads: 256 }),
        await at({ ...s, threads: 64 }),
        JSON.stringify(s),
      );
    }
  },
});

Deno.test({
  name:
    "sampleRowsOnGpu() in gate mode draws only rows holding the mask, each with probability reveal",
  ...gpu,
  fn: async () => {
    const rows = 2000, mask = V - 1;
    const rng = prng(3);
    const current = Int32Array.from(
      { length: rows },
      (_, r) => r % 2 ? mask : Math.floor(rng.next() * (V - 1)),
    );
    const run = async (reveal: number) => {
      const out = await sampleRowsOnGpu(testDevice(), tile(SMALL, rows), {
        vocab: V,
        exclude: mask,
        seed: [1, 2],
        gate: { current, maskId: mask, reveal },
        confidence: true,
      });
      let drawn = 0;
      for (let r = 0; r < rows; r++) {
        if (current[r] !== mask) {
          assertEquals(out.tokens[r], current[r], `row ${r} kept`);
          assertEquals(out.confidence![r], -1);
        } else if (out.tokens[r] !== mask) {
          drawn++;
          assert(out.confidence![r] > 0);
        } else assertEquals(out.confidence![r], -1);
      }
      return drawn;
    };
    assertEquals(await run(0), 0);
    assertEquals(await run(1), rows / 2);
    const drawn = await run(0.3), m = rows / 2;
    const band = 5 * Math.sqrt(m * 0.3 * 0.7);
    report(`gate: reveal 0.3 drew ${drawn} of ${m}`);
    assertLess(Math.abs(drawn - 0.3 * m), band);
    // Power against the reveal probability halved: Binomial(m, 0.15) leaves
    // the band with probability ≥ 0.99 (normal approximation), and float64
    // draws at 0.15 do.
    const sdHalf = Math.sqrt(m * 0.15 * 0.85);
    const power = 1 - normalTail((0.3 * m - band - 0.15 * m) / sdHalf);
    assert(power >= 0.99, `power ${power} against reveal 0.15`);
    let halved = 0;
    for (let i = 0; i < m; i++) halved += rng.next() < 0.15 ? 1 : 0;
    assert(Math.abs(halved - 0.3 * m) >= band, `reveal 0.15 drew ${halved}`);
  },
});

Deno.test({
  name:
    "sampleRowsOnGpu() writes the chosen token's tempered, truncated probability within 1e-5 of float64",
  ...gpu,
  fn: async () => {
    for (
      const shape of [
        { temperature: 0.7 },
        { temperature: 1.3, topK: 20, topP: 0.9, exclude: 3 },
      ]
    ) {
      const probs = reference(SMALL, shape);
      const out = await sampleRowsOnGpu(testDevice(), tile(SMALL, 64), {
        vocab: V,
        draws: 4,
        seed: [5, 6],
        confidence: true,
        ...shape,
      });
      out.tokens.forEach((t, i) => {
        const want = probs[t];
        assert(want > 0, `drew id ${t} of probability 0`);
        assertLess(Math.abs(out.confidence![i] - want) / want, 1e-5);
      });
    }
  },
});

Deno.test({
  name:
    "sampleRowsOnGpu() draws every row of a grid over 65,535 workgroups from its own logits",
  ...gpu,
  fn: async () => {
    const rows = 65_600;
    // Row r puts all its mass on id r mod 3 (logit gap 100).
    const logits = new Float32Array(rows * 3);
    for (let r = 0; r < rows; r++) logits[r * 3 + (r % 3)] = 100;
    const { tokens } = await sampleRowsOnGpu(testDevice(), logits, {
      vocab: 3,
    });
    assertEquals(tokens.filter((t, r) => t !== r % 3).length, 0);
  },
});

Deno.test({
  name: "sampleRowsOnGpu() destroys every buffer it creates",
  ...gpu,
  fn: async () => {
    const device = testDevice();
    const created: GPUBuffer[] = [];
    const destroyed = new Set<GPUBuffer>();
    const create = device.createBuffer;
    device.createBuffer = (d: GPUBufferDescriptor) => {
      const b = create.call(device, d);
      const destroy = b.destroy;
      b.destroy = () => {
        destroyed.add(b);
        destroy.call(b);
      };
      created.push(b);
      return b;
    };
    try {
      await sampleRowsOnGpu(device, tile(SMALL, 4), {
        vocab: V,
        draws: 3,
        confidence: true,
        gate: { current: new Int32Array(4), maskId: 0, reveal: 0.5 },
      });
    } finally {
      device.createBuffer = create;
    }
    assert(created.length > 0);
    assertEquals(created.filter((b) => !destroyed.has(b)).length, 0);
  },
});

Deno.test("sampleRowsOnGpu() rejects bad options before touching the device", async () => {
  const device = {} as GPUDevice;
  const logits = new Float32Array(8);
  for (
    const bad of [
      { vocab: 3 },
      { vocab: 8, temperature: 0 },
      { vocab: 8, topP: 1.5 },
      { vocab: 8, topK: -1 },
      { vocab: 8, draws: 0 },
    ]
  ) {
    await assertRejects(
      () => sampleRowsOnGpu(device, logits, bad),
      RangeError,
      "Cannot sample on the GPU",
    );
  }
});

Deno.test("categoricalWords() lays out the 16 uniform words, floats bit-cast", () => {
  const w = categoricalWords({
    logitsOffset: 1,
    rowStride: 2,
    vocab: 3,
    rows: 4,
    temperature: 0.5,
    topK: 6,
    topP: 0.25,
    exclude: 8,
    seed0: 9,
    seed1: 10,
    stream: 11,
    outputOffset: 12,
    gateId: 13,
    reveal: 0.75,
    confidenceOffset: 15,
    currentOffset: 16,
  });
  const f = new Float32Array(w.buffer);
  assertEquals([...w.slice(0, 4)], [1, 2, 3, 4]);
  assertEquals([f[4], w[5], f[6], w[7]], [0.5, 6, 0.25, 8]);
  assertEquals([...w.slice(8, 13)], [9, 10, 11, 12, 13]);
  assertEquals([f[13], w[14], w[15]], [0.75, 15, 16]);
  assert(categoricalSource().includes("@workgroup_size(256)"));
});
