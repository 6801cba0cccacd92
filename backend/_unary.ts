import type * as tf from "@tensorflow/tfjs";
import { expArray, sigmoidArray, tanhArray } from "./_expf.ts";
import {
  allocFor,
  type CpuBackend,
  type FastKernel,
  floatsOf,
  type KernelArgs,
} from "./_kernel_util.ts";

type Loop = (
  x: Float32Array,
  out: Float32Array,
  attrs: tf.NamedAttrMap,
) => void;

// Abramowitz & Stegun 7.1.26, the same approximation tfjs's cpu Erf uses.
const ERF_P = 0.3275911;
const ERF_A1 = 0.254829592;
const ERF_A2 = -0.284496736;
const ERF_A3 = 1.421413741;
const ERF_A4 = -1.453152027;
const ERF_A5 = 1.061405429;

const LOOPS: Record<string, Loop> = {
  Exp: (x, out) => {
    expArray(x, out);
  },
  Expm1: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = Math.expm1(x[i]);
  },
  Log: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = Math.log(x[i]);
  },
  Log1p: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = Math.log1p(x[i]);
  },
  Tanh: (x, out) => {
    tanhArray(x, out);
  },
  Sqrt: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = Math.sqrt(x[i]);
  },
  Rsqrt: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = 1 / Math.sqrt(x[i]);
  },
  Square: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = x[i] * x[i];
  },
  Neg: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = -x[i];
  },
  Abs: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = Math.abs(x[i]);
  },
  Reciprocal: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = 1 / x[i];
  },
  Sign: (x, out) => {
    for (let i = 0; i < x.length; i++) {
      out[i] = x[i] > 0 ? 1 : x[i] < 0 ? -1 : 0;
    }
  },
  Floor: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = Math.floor(x[i]);
  },
  Ceil: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = Math.ceil(x[i]);
  },
  Sin: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = Math.sin(x[i]);
  },
  Cos: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = Math.cos(x[i]);
  },
  Relu: (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = x[i] < 0 ? 0 : x[i];
  },
  Relu6: (x, out) => {
    for (let i = 0; i < x.length; i++) {
      out[i] = x[i] < 0 ? 0 : x[i] > 6 ? 6 : x[i];
    }
  },
  Elu: (x, out) => {
    for (let i = 0; i < x.length; i++) {
      out[i] = x[i] >= 0 ? x[i] : Math.exp(x[i]) - 1;
    }
  },
  Sigmoid: (x, out) => {
    sigmoidArray(x, out);
  },
  Softplus: (x, out) => {
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      out[i] = v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));
    }
  },
  Erf: (x, out) => {
    for (let i = 0; i < x.length; i++) {
      const s = Math.sign(x[i]), v = Math.abs(x[i]);
      const t = 1 / (1 + ERF_P * v);
      out[i] = s * (1 -
        (((((ERF_A5 * t + ERF_A4) * t) + ERF_A3) * t + ERF_A2) * t + ERF_A1) *
          t * Math.exp(-v * v));
    }
  },
  Step: (x, out, attrs) => {
    const alpha = (attrs.alpha as number | undefined) ?? 0;
    for (let i = 0; i < x.length; i++) {
      out[i] = x[i] > 0 ? 1 : x[i] !== x[i] ? NaN : alpha;
    }
  },
  LeakyRelu: (x, out, attrs) => {
    const alpha = attrs.alpha as number;
    for (let i = 0; i < x.length; i++) out[i] = x[i] < 0 ? alpha * x[i] : x[i];
  },
  ClipByValue: (x, out, attrs) => {
    const lo = attrs.clipValueMin as number, hi = attrs.clipValueMax as number;
    for (let i = 0; i < x.length; i++) {
      out[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
    }
  },
};

function unaryKernel(loop: Loop): FastKernel {
  return (args: KernelArgs, fallback) => {
    const backend = args.backend as CpuBackend;
    const { x } = args.inputs;
    const xv = floatsOf(backend, x);
    if (xv === undefined) return fallback(args);
    const out = allocFor(backend)(xv.length);
    loop(xv, out, args.attrs ?? {});
    return backend.makeTensorInfo(x.shape, "float32", out);
  };
}

/** Element-wise unary float32 kernels (exp, log, tanh, sqrt, erf, …). */
export function unaryKernels(): Record<string, FastKernel> {
  const out: Record<string, FastKernel> = {};
  for (const [name, loop] of Object.entries(LOOPS)) {
    out[name] = unaryKernel(loop);
  }
  return out;
}
