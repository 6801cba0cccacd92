// What bench:cpu and bench:cpu-profile measure the same way: medians, the
// model's FLOPs per token, and the CBLAS's rate on a large product (the
// peak MFU is read against).

import { prng } from "@d3pm/core";
import {
  type Cblas,
  CBLAS_NO_TRANS,
  CBLAS_ROW_MAJOR,
} from "@d3pm/backend/cblas";
import { type ModelConfig, parameterShapes } from "@d3pm/transformer";

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Model FLOPs per token: 6 × the parameters in matrix products (tied
 * embedding included, positions not) + 12 · layers · T · d for attention
 * (PaLM, appendix B), as bench:backend.
 */
export function flopsPerToken(c: ModelConfig): number {
  let n = 0;
  for (const [name, shape] of parameterShapes(c)) {
    if (name !== "wpe.weight") n += shape.reduce((a, b) => a * b, 1);
  }
  return 6 * n + 12 * c.nLayer * c.contextLength * c.dModel;
}

/** GFLOP/s of a 1024³ cblas_sgemm on the CBLAS's current threads (median of 15 after 2). */
export function sgemmGflops(cblas: Cblas): number {
  const n = 1024, rand = prng(3);
  const a = Float32Array.from({ length: n * n }, () => rand.next() - 0.5);
  const b = Float32Array.from({ length: n * n }, () => rand.next() - 0.5);
  const c = new Float32Array(n * n);
  const times: number[] = [];
  for (let i = 0; i < 17; i++) {
    const t0 = performance.now();
    cblas.sgemm(
      CBLAS_ROW_MAJOR,
      CBLAS_NO_TRANS,
      CBLAS_NO_TRANS,
      n,
      n,
      n,
      1,
      a,
      n,
      b,
      n,
      0,
      c,
      n,
    );
    if (i >= 2) times.push(performance.now() - t0);
  }
  return (2 * n ** 3) / (median(times) / 1000) / 1e9;
}
