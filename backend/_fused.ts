// Fused kernels of the blas backend, under names of their own: the ops in
// `fused_ops.ts` run them where they are registered and compose tfjs ops
// elsewhere. Each is one or two passes over its data instead of the ~10
// kernels (and as many fresh arrays) of its composite.
import type * as tf from "@tensorflow/tfjs";
import { EXP_C, EXP_HI, EXP_LO, EXP_OFF, EXP_TABLE } from "./_expf.ts";
import {
  allocFor,
  type CpuBackend,
  floatsOf,
  type KernelArgs,
  valuesOf,
} from "./_kernel_util.ts";

/** Kernel names of the fused ops. */
export const FUSED = {
  sparseCe: "D3pmSparseSoftmaxCrossEntropy",
  sparseCeGrad: "D3pmSparseSoftmaxCrossEntropyGrad",
  gelu: "D3pmGelu",
  geluGrad: "D3pmGeluGrad",
  layerNorm: "D3pmLayerNorm",
  layerNormGrad: "D3pmLayerNormGrad",
  adamw: "D3pmAdamW",
  softmaxGrad: "D3pmSoftmaxGrad",
} as const;

type Kernel = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

function floats(backend: CpuBackend, t: tf.TensorInfo, what: string) {
  const v = floatsOf(backend, t);
  if (v === undefined) {
    throw new TypeError(`${what} must be float32, got ${t.dtype}`);
  }
  return v;
}

function ints(backend: CpuBackend, t: tf.TensorInfo, what: string) {
  const v = valuesOf(backend, t);
  if (!(v instanceof Int32Array)) {
    throw new TypeError(`${what} must be int32, got ${t.dtype}`);
  }
  return v;
}

// logits [N, V], labels [N] → losses [N], softmax [N, V]. A label outside
// [0, V) is ignored: loss 0 (and gradient 0).
const sparseCe: Kernel = ({ inputs, backend }) => {
  const b = backend as CpuBackend;
  const { logits, labels } = inputs;
  const x = floats(b, logits, "logits");
  const ids = ints(b, labels, "labels");
  const v = logits.shape[logits.shape.length - 1];
  const rows = ids.length;
  const probs = allocFor(b)(x.length);
  const loss = new Float32Array(rows);
  for (let r = 0, o = 0; r < rows; r++, o += v) {
    const row = x.subarray(o, o + v), p = probs.subarray(o, o + v);
    let max = -Infinity;
    for (let i = 0; i < v; i++) if (row[i] > max) max = row[i];
    let sum = 0;
    for (let i = 0; i < v; i++) {
      const w = Math.max(row[i] - max, -104);
      const k = Math.floor(w * EXP_C + 0.5);
      const r = (w - k * EXP_HI) - k * EXP_LO;
      const e = EXP_TABLE[k + EXP_OFF] *
        (1 + r * (1 + r * (0.5 + r * (1 / 6))));
      p[i] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let i = 0; i < v; i++) p[i] *= inv;
    const label = ids[r];
    loss[r] = label >= 0 && label < v ? Math.log(sum) + max - row[label] : 0;
  }
  return [
    b.makeTensorInfo(labels.shape, "float32", loss),
    b.makeTensorInfo(logits.shape, "float32", probs),
  ];
};

// dy [N], softmax [N, V], labels [N] → dlogits = dy · (softmax − onehot).
const sparseCeGrad: Kernel = ({ inputs, backend }) => {
  const b = backend as CpuBackend;
  const { dy, probs, labels } = inputs;
  const d = floats(b, dy, "dy");
  const p = floats(b, probs, "probs");
  const ids = ints(b, labels, "labels");
  const v = probs.shape[probs.shape.length - 1];
  const out = allocFor(b)(p.length);
  for (let r = 0, o = 0; r < ids.length; r++, o += v) {
    const label = ids[r];
    const dst = out.subarray(o, o + v);
    if (!(label >= 0 && label < v)) {
      dst.fill(0);
      continue;
    }
    const src = p.subarray(o, o + v), g = d[r];
    for (let i = 0; i < v; i++) dst[i] = g * src[i];
    dst[label] -= g;
  }
  return b.makeTensorInfo(probs.shape, "float32", out);
};

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

// x → y = ½x(1 + tanh(u)) = x·σ(2u), u = c(x + a·x³), and s = σ(2u), kept
// for the gradient: one exp (as in _expf.ts, inlined) and one division.
const gelu: Kernel = ({ inputs, backend }) => {
  const b = backend as CpuBackend;
  const x = floats(b, inputs.x, "x");
  const n = x.length;
  const alloc = allocFor(b);
  const y = alloc(n), s = alloc(n);
  const c2 = -2 * GELU_C, a2 = -2 * GELU_C * GELU_A;
  for (let i = 0; i < n; i++) {
    const xi = x[i];
    const w = Math.min(Math.max(xi * (c2 + a2 * xi * xi), -104), 88.8); // −2u
    const k = Math.floor(w * EXP_C + 0.5);
    const r = (w - k * EXP_HI) - k * EXP_LO;
    const si = 1 /
      (1 + EXP_TABLE[k + EXP_OFF] * (1 + r * (1 + r * (0.5 + r * (1 / 6)))));
    s[i] = si;
    y[i] = xi * si;
  }
  return [
    b.makeTensorInfo(inputs.x.shape, "float32", y),
    b.makeTensorInfo(inputs.x.shape, "float32", s),
  ];
};

// dy, x, s → dx = dy · (s + 2x·s(1 − s)·c(1 + 3a·x²)).
const geluGrad: Kernel = ({ inputs, backend }) => {
  const b = backend as CpuBackend;
  const dy = floats(b, inputs.dy, "dy");
  const x = floats(b, inputs.x, "x");
  const s = floats(b, inputs.s, "s");
  const n = x.length;
  const out = allocFor(b)(n);
  const c2 = 2 * GELU_C, a3 = 3 * GELU_A;
  for (let i = 0; i < n; i++) {
    const xi = x[i], si = s[i];
    out[i] = dy[i] * (si + c2 * xi * si * (1 - si) * (1 + a3 * xi * xi));
  }
  return b.makeTensorInfo(inputs.x.shape, "float32", out);
};

// x [..., d], weight [d], bias [d] → y, and per row the mean and 1/σ.
const layerNorm: Kernel = ({ inputs, backend, attrs }) => {
  const b = backend as CpuBackend;
  const x = floats(b, inputs.x, "x");
  const g = floats(b, inputs.weight, "weight");
  const beta = floats(b, inputs.bias, "bias");
  const eps = (attrs as { epsilon: number }).epsilon;
  const d = g.length, rows = x.length / d;
  const y = allocFor(b)(x.length);
  const mean = new Float32Array(rows), rstd = new Float32Array(rows);
  for (let r = 0, o = 0; r < rows; r++, o += d) {
    const row = x.subarray(o, o + d), dst = y.subarray(o, o + d);
    let s = 0;
    for (let i = 0; i < d; i++) s += row[i];
    const mu = s / d;
    let q = 0;
    for (let i = 0; i < d; i++) q += (row[i] - mu) * (row[i] - mu);
    const rs = 1 / Math.sqrt(q / d + eps);
    for (let i = 0; i < d; i++) dst[i] = (row[i] - mu) * rs * g[i] + beta[i];
    mean[r] = mu;
    rstd[r] = rs;
  }
  const stats = [rows];
  return [
    b.makeTensorInfo(inputs.x.shape, "float32", y),
    b.makeTensorInfo(stats, "float32", mean),
    b.makeTensorInfo(stats, "float32", rstd),
  ];
};

// dy, x, weight, mean, rstd → dx, dweight, dbias.
const layerNormGrad: Kernel = ({ inputs, backend }) => {
  const b = backend as CpuBackend;
  const dy = floats(b, inputs.dy, "dy");
  const x = floats(b, inputs.x, "x");
  const g = floats(b, inputs.weight, "weight");
  const mean = floats(b, inputs.mean, "mean");
  const rstd = floats(b, inputs.rstd, "rstd");
  const d = g.length, rows = x.length / d;
  const dx = allocFor(b)(x.length);
  const dg = new Float64Array(d), db = new Float64Array(d);
  for (let r = 0, o = 0; r < rows; r++, o += d) {
    const row = x.subarray(o, o + d), dyr = dy.subarray(o, o + d);
    const dst = dx.subarray(o, o + d);
    const mu = mean[r], rs = rstd[r];
    // With x̂ = (x − μ)/σ and ĝ = dy·w: dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))/σ.
    let s1 = 0, s2 = 0;
    for (let i = 0; i < d; i++) {
      const xh = (row[i] - mu) * rs, gy = dyr[i];
      const gh = gy * g[i];
      s1 += gh;
      s2 += gh * xh;
      dg[i] += gy * xh;
      db[i] += gy;
    }
    const m1 = s1 / d, m2 = s2 / d;
    for (let i = 0; i < d; i++) {
      const xh = (row[i] - mu) * rs;
      dst[i] = (dyr[i] * g[i] - m1 - xh * m2) * rs;
    }
  }
  return [
    b.makeTensorInfo(inputs.x.shape, "float32", dx),
    b.makeTensorInfo([d], "float32", Float32Array.from(dg)),
    b.makeTensorInfo([d], "float32", Float32Array.from(db)),
  ];
};

// dy, y = softmax(x) over the last axis → dx = y · (dy − Σ dy·y), per row.
const softmaxGrad: Kernel = ({ inputs, backend }) => {
  const b = backend as CpuBackend;
  const dy = floats(b, inputs.dy, "dy");
  const y = floats(b, inputs.y, "y");
  const shape = inputs.y.shape;
  const n = shape[shape.length - 1];
  const out = allocFor(b)(y.length);
  for (let o = 0; o < y.length; o += n) {
    const yr = y.subarray(o, o + n), dr = dy.subarray(o, o + n);
    const dst = out.subarray(o, o + n);
    let s = 0;
    for (let i = 0; i < n; i++) s += dr[i] * yr[i];
    for (let i = 0; i < n; i++) dst[i] = yr[i] * (dr[i] - s);
  }
  return b.makeTensorInfo(shape, "float32", out);
};

/** Attributes of the fused AdamW kernel. */
export interface AdamWAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Bias corrections `1 − β₁ᵗ` and `1 − β₂ᵗ`. */
  c1: number;
  c2: number;
}

// param, grad, m, v → param', m', v' in one pass.
const adamw: Kernel = ({ inputs, backend, attrs }) => {
  const b = backend as CpuBackend;
  const p = floats(b, inputs.param, "param");
  const g = floats(b, inputs.grad, "grad");
  const m = floats(b, inputs.m, "m");
  const v = floats(b, inputs.v, "v");
  const { lr, beta1, beta2, eps, weightDecay, c1, c2 } =
    attrs as unknown as AdamWAttrs;
  const n = p.length;
  const alloc = allocFor(b);
  const po = alloc(n), mo = alloc(n), vo = alloc(n);
  const ob1 = 1 - beta1, ob2 = 1 - beta2, ic1 = 1 / c1, ic2 = 1 / c2;
  for (let i = 0; i < n; i++) {
    const gi = g[i], pi = p[i];
    const m1 = beta1 * m[i] + ob1 * gi;
    const v1 = beta2 * v[i] + ob2 * gi * gi;
    mo[i] = m1;
    vo[i] = v1;
    po[i] = pi -
      lr * ((m1 * ic1) / (Math.sqrt(v1 * ic2) + eps) + weightDecay * pi);
  }
  const shape = inputs.param.shape;
  return [
    b.makeTensorInfo(shape, "float32", po),
    b.makeTensorInfo(shape, "float32", mo),
    b.makeTensorInfo(shape, "float32", vo),
  ];
};

/** The fused kernels by name. */
export function fusedKernels(): Record<string, Kernel> {
  return {
    [FUSED.sparseCe]: sparseCe,
    [FUSED.sparseCeGrad]: sparseCeGrad,
    [FUSED.gelu]: gelu,
    [FUSED.geluGrad]: geluGrad,
    [FUSED.layerNorm]: layerNorm,
    [FUSED.layerNormGrad]: layerNormGrad,
    [FUSED.adamw]: adamw,
    [FUSED.softmaxGrad]: softmaxGrad,
  };
}
