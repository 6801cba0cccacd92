const LOG2E = 1.4426950408889634;
// ln 2 split so that k·LN2_HI is exact for the k that occur.
const LN2_HI = 0.693145751953125;
const LN2_LO = 1.4286068203094173e-6;
const POW2 = new Float64Array(300);
for (let k = -150; k < 150; k++) POW2[k + 150] = Math.pow(2, k);

/**
 * `out[i] = exp(x[i] - shift)` to float32 accuracy (relative error < 4e-7 in
 * the normal range), ~1.7× faster than `Math.exp`: `2^k · e^r` with
 * `|r| <= ln2/2` and a degree-6 Taylor polynomial. Branch-free: inputs are
 * clamped to [-104, 88.8], whose ends round to 0 and Infinity in float32 (NaN
 * stays NaN). Written out in each loop: V8 does not inline a scalar helper
 * here, and the call costs more than the arithmetic.
 */
export function expArray(x: Float32Array, out: Float32Array, shift = 0): void {
  const n = x.length;
  for (let i = 0; i < n; i++) {
    const v = Math.min(Math.max(x[i] - shift, -104), 88.8);
    const k = Math.floor(v * LOG2E + 0.5);
    const r = (v - k * LN2_HI) - k * LN2_LO;
    out[i] = (1 +
      r *
        (1 +
          r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r / 720)))))) *
      POW2[k + 150];
  }
}

/** `out[i] = tanh(x[i])` as `(1 - e) / (1 + e)`, `e = exp(-2|x|)`, inlined. */
export function tanhArray(x: Float32Array, out: Float32Array): void {
  const n = x.length;
  for (let i = 0; i < n; i++) {
    const xi = x[i];
    const v = Math.max(-2 * Math.abs(xi), -104);
    const k = Math.floor(v * LOG2E + 0.5);
    const r = (v - k * LN2_HI) - k * LN2_LO;
    const e = (1 +
      r *
        (1 +
          r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r / 720)))))) *
      POW2[k + 150];
    const t = (1 - e) / (1 + e);
    out[i] = xi < 0 ? -t : t;
  }
}

/** `out[i] = 1 / (1 + exp(-x[i]))`, inlined. */
export function sigmoidArray(x: Float32Array, out: Float32Array): void {
  const n = x.length;
  for (let i = 0; i < n; i++) {
    const v = Math.min(Math.max(-x[i], -104), 88.8);
    const k = Math.floor(v * LOG2E + 0.5);
    const r = (v - k * LN2_HI) - k * LN2_LO;
    const e = (1 +
      r *
        (1 +
          r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r / 720)))))) *
      POW2[k + 150];
    out[i] = 1 / (1 + e);
  }
}
