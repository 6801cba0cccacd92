import {
  type Cblas,
  CBLAS_NO_TRANS,
  CBLAS_ROW_MAJOR,
  CBLAS_TRANS,
} from "@d3pm/backend/cblas";

// Tight-JS versions of the hot non-matmul kernels, to the same math as the
// @d3pm/cpu WebAssembly ones: bench:cpu times both side by side (the
// measurement behind choosing WebAssembly SIMD). Plain loops over
// Float32Array, one thread. Private.

/** LayerNorm forward of rows × d. */
export function layernormForward(
  x: Float32Array,
  y: Float32Array,
  w: Float32Array,
  b: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  rows: number,
  d: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let s = 0;
    for (let c = 0; c < d; c++) s += x[o + c];
    const m = Math.fround(s / d);
    let q = 0;
    for (let c = 0; c < d; c++) {
      const z = x[o + c] - m;
      q += z * z;
    }
    const rs = Math.fround(1 / Math.sqrt(q / d + 1e-5));
    for (let c = 0; c < d; c++) y[o + c] = (x[o + c] - m) * rs * w[c] + b[c];
    mean[r] = m;
    rstd[r] = rs;
  }
}

/** y = gelu(x) (tanh form, tanh from exp with a clamp). */
export function geluForward(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    const u = Math.min(
      Math.max(0.7978845608028654 * (v + 0.044715 * v * v * v), -15),
      15,
    );
    y[i] = 0.5 * v * (2 - 2 / (Math.exp(2 * u) + 1));
  }
}

/**
 * Causal attention forward over qkv [B, T, 3d]: per head S = q·kᵀ/√hd and
 * y = P·v by cblas (as the WebAssembly kernel), the softmax in JS.
 */
export function attentionForward(
  cblas: Cblas,
  qkv: Float32Array,
  y: Float32Array,
  lse: Float32Array,
  probs: Float32Array,
  o: { batch: number; length: number; heads: number; headDim: number },
): void {
  const { batch: B, length: T, heads: H, headDim: hd } = o, d = H * hd;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      cblas.sgemm(
        CBLAS_ROW_MAJOR,
        CBLAS_NO_TRANS,
        CBLAS_TRANS,
        T,
        T,
        hd,
        1 / Math.sqrt(hd),
        qkv.subarray(b * T * 3 * d + h * hd),
        3 * d,
        qkv.subarray(b * T * 3 * d + d + h * hd),
        3 * d,
        0,
        probs.subarray((b * H + h) * T * T),
        T,
      );
    }
  }
  attentionSoftmax(probs, lse, B * H * T, T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      cblas.sgemm(
        CBLAS_ROW_MAJOR,
        CBLAS_NO_TRANS,
        CBLAS_NO_TRANS,
        T,
        hd,
        T,
        1,
        probs.subarray((b * H + h) * T * T),
        T,
        qkv.subarray(b * T * 3 * d + 2 * d + h * hd),
        3 * d,
        0,
        y.subarray(b * T * d + h * hd),
        d,
      );
    }
  }
}

/** Causal softmax in place over rows of [rows, T] (row r is query r mod T); lse. */
export function attentionSoftmax(
  s: Float32Array,
  lse: Float32Array,
  rows: number,
  T: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * T, end = (r % T) + 1;
    let mx = -3e38;
    for (let j = 0; j < end; j++) if (s[o + j] > mx) mx = s[o + j];
    let den = 0;
    for (let j = 0; j < end; j++) {
      const e = Math.exp(s[o + j] - mx);
      s[o + j] = e;
      den += e;
    }
    const inv = 1 / den;
    for (let j = 0; j < end; j++) s[o + j] *= inv;
    for (let j = end; j < T; j++) s[o + j] = 0;
    lse[r] = mx + Math.log(den);
  }
}

/** Weighted cross-entropy over rows of [rows, V], logits → their gradient. */
export function crossEntropy(
  l: Float32Array,
  targets: Int32Array,
  weights: Float32Array,
  loss: Float32Array,
  rows: number,
  V: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V, t = targets[r], w = weights[r];
    const tl = l[o + t];
    let mx = -3e38;
    for (let v = 0; v < V; v++) if (l[o + v] > mx) mx = l[o + v];
    let s = 0;
    for (let v = 0; v < V; v++) {
      const e = Math.exp(l[o + v] - mx);
      l[o + v] = e;
      s += e;
    }
    const ws = w / s;
    for (let v = 0; v < V; v++) l[o + v] *= ws;
    l[o + t] -= w;
    loss[r] = w * (mx + Math.log(s) - tl);
  }
}

/** AdamW over n parameters, decay below decayEnd. */
export function adamw(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  o: {
    decayEnd: number;
    lr: number;
    b1: number;
    b2: number;
    eps: number;
    wd: number;
    c1: number;
    c2: number;
    scale: number;
  },
): void {
  const { b1, b2, eps, lr, c1, c2, scale } = o;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * scale;
    const mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    let upd = (mi / c1) / (Math.sqrt(vi / c2) + eps);
    if (i < o.decayEnd) upd += o.wd * p[i];
    p[i] -= lr * upd;
  }
}
