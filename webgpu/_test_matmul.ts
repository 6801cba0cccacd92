// Shared by the matmul tests: one product run whole on the device, checked
// against float64 at sampled outputs (every tile edge and corner, plus
// random ones). C starts poisoned (NaN) or random (accumulate), and guard
// values around C must survive: every output written, nothing written
// outside it. Tolerance: |c − ref| ≤ 2e-6 · Σ_k |a_ik·b_kj| per output
// (float32 sums land near 1e-7 of that scale at any K; MATMUL_REPORT=1
// prints the worst ratio); with `f16`, the reference takes the operands
// rounded to f16 as the kernel stores them. Private.

import { assert } from "@std/assert";
import { prng } from "@d3pm/core";
import { fromHalfBits, runMatmul, toHalfBits } from "./mod.ts";
import { testDevice } from "./_test_util.ts";

/** The tolerance: |c − ref| / Σ|ab|. */
export const TOL = 2e-6;
const GUARD = 12345.5;
const report = Deno.env.get("MATMUL_REPORT") === "1";

/** One product to check. */
export interface Case {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  tile: 32 | 64 | 128;
  accumulate?: boolean;
  seed: number;
  /** Float offsets of A, B and C in their buffers (default 3, 5, 7: scalar loads). */
  offsets?: [number, number, number];
  /** f16 operands (the device must have shader-f16). */
  f16?: boolean;
  kernel?: "new" | "old";
}

function randomFill(
  out: Float32Array,
  seed: number,
  from = 0,
  to = out.length,
) {
  const rng = prng(seed);
  for (let i = from; i < to; i++) out[i] = rng.next() * 2 - 1;
}

// Output positions to check: every tile's first and last row/column near
// the edges of the product, corners, and random ones.
function samples(c: Case, count: number): [number, number][] {
  const edge = (size: number) => [
    ...new Set(
      [0, 1, 15, 16, 63, 64, 127, 128, size - 2, size - 1].filter((x) =>
        x >= 0 && x < size
      ),
    ),
  ];
  const rows = edge(c.m), cols = edge(c.n);
  const out: [number, number][] = rows.flatMap((i) =>
    cols.map((j) => [i, j] as [number, number])
  );
  const rng = prng(c.seed + 7);
  for (let s = 0; s < count; s++) {
    out.push([
      Math.floor(rng.next() * c.m),
      Math.floor(rng.next() * c.n),
    ]);
  }
  return out;
}

/** Run and check one product; the worst ratio to Σ|ab|. */
export async function check(c: Case): Promise<number> {
  const { m, n, k, transA, transB } = c;
  // Operands at odd offsets, guards around C.
  const [aOff, bOff, cOff] = c.offsets ?? [3, 5, 7];
  const a = new Float32Array(aOff + m * k + 2);
  const b = new Float32Array(bOff + k * n + 2);
  const cBuf = new Float32Array(cOff + m * n + 9).fill(GUARD);
  randomFill(a, c.seed);
  randomFill(b, c.seed + 1);
  // What the kernel multiplies: the operands as stored.
  const stored = (x: Float32Array) =>
    c.f16 ? x.map((v) => fromHalfBits(toHalfBits(v))) : x;
  if (c.accumulate) randomFill(cBuf, c.seed + 2, cOff, cOff + m * n);
  else cBuf.fill(NaN, cOff, cOff + m * n);
  const before = cBuf.slice();
  const out = await runMatmul(testDevice(), { m, n, k }, {
    a,
    b,
    c: cBuf,
    aOffset: aOff,
    bOffset: bOff,
    cOffset: cOff,
  }, {
    transA,
    transB,
    tile: c.tile,
    accumulate: c.accumulate,
    f16: c.f16,
    kernel: c.kernel,
  });
  const sa = stored(a), sb = stored(b);
  const what =
    `${m}×${n}×${k} transA ${transA} transB ${transB} tile ${c.tile}${
      c.accumulate ? " (+=)" : ""
    } offsets ${[aOff, bOff, cOff]}${c.f16 ? " f16" : ""}${
      c.kernel === "old" ? " old" : ""
    }`;
  for (let i = 0; i < cOff; i++) {
    assert(out[i] === GUARD, `${what}: wrote before C (float ${i})`);
  }
  for (let i = cOff + m * n; i < out.length; i++) {
    assert(out[i] === GUARD, `${what}: wrote after C (float ${i})`);
  }
  for (let i = cOff; i < cOff + m * n; i++) {
    if (!Number.isFinite(out[i])) {
      const r = i - cOff;
      throw new Error(
        `${what}: C[${Math.floor(r / n)}, ${r % n}] = ${out[i]} (not written?)`,
      );
    }
  }
  const A = (i: number, kk: number) =>
    transA ? sa[aOff + kk * m + i] : sa[aOff + i * k + kk];
  const B = (kk: number, j: number) =>
    transB ? sb[bOff + j * k + kk] : sb[bOff + kk * n + j];
  let worst = 0;
  for (const [i, j] of samples(c, 200)) {
    let ref = c.accumulate ? before[cOff + i * n + j] : 0;
    let scale = Math.abs(ref);
    for (let kk = 0; kk < k; kk++) {
      const p = A(i, kk) * B(kk, j);
      ref += p;
      scale += Math.abs(p);
    }
    const got = out[cOff + i * n + j];
    const ratio = Math.abs(got - ref) / scale;
    worst = Math.max(worst, ratio);
    assert(
      ratio <= TOL,
      `${what}: C[${i}, ${j}] = ${got}, float64 ${ref} (|Δ| / Σ|ab| = ${
        ratio.toExponential(2)
      } > ${TOL})`,
    );
  }
  if (report) {
    console.log(`${what}: worst |Δ| / Σ|ab| ${worst.toExponential(2)}`);
  }
  return worst;
}

/** Every (transA, transB). */
export const TRANSPOSES = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;
