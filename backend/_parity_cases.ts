/**
 * The kernel parity cases: each runs an op on seeded inputs, forward and
 * (where `grad`) through tfjs autograd, so a backend can be compared with the
 * `cpu` reference. Shapes are small and odd on purpose: remainders, unit
 * axes, broadcasting, transposes and batches.
 */
import * as tf from "@tensorflow/tfjs";
import { randomFloats } from "@d3pm/core";
import {
  adamwUpdate,
  gelu,
  layerNorm,
  sparseSoftmaxCrossEntropy,
} from "./fused_ops.ts";

/** One input of a case. */
export interface InputSpec {
  shape: number[];
  /** `int` inputs are ids in `[0, max)`; they are not differentiated. */
  int?: number;
  /** Values in `[lo, hi)`; default `[-1, 1)`. */
  range?: [number, number];
  /** `bool` inputs are random 0/1 masks. */
  bool?: boolean;
}

/** One parity case. */
export interface ParityCase {
  name: string;
  inputs: InputSpec[];
  f: (...xs: tf.Tensor[]) => tf.Tensor;
  /** Also compare the gradients with respect to the float inputs. */
  grad?: boolean;
  /** Relative and absolute tolerance; default 1e-4 and 1e-5. */
  rtol?: number;
  atol?: number;
  /** Backends that cannot run the case, with the reason. */
  skip?: Record<string, string>;
}

/** Seeded values for an input (the same on every backend). */
export function inputValues(
  spec: InputSpec,
  seed: number,
): Float32Array | Int32Array {
  const rand = randomFloats(seed);
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.int !== undefined) {
    return Int32Array.from({ length: n }, () => Math.floor(rand() * spec.int!));
  }
  if (spec.bool) {
    return Int32Array.from({ length: n }, () => rand() < 0.5 ? 1 : 0);
  }
  const [lo, hi] = spec.range ?? [-1, 1];
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
}

const mm = (ta: boolean, tb: boolean) => (a: tf.Tensor, b: tf.Tensor) =>
  tf.matMul(a, b, ta, tb);

const POS: [number, number] = [0.2, 2];

function matmulCases(): ParityCase[] {
  const cases: ParityCase[] = [];
  // tfjs 4.22 has no gradient for BatchMatMul when batch dimensions
  // broadcast (it throws on every backend), so those cases run forward only.
  const shapes: [string, number[], number[], boolean, boolean][] = [
    ["2-D", [17, 33], [33, 9], false, false],
    ["2-D transposeA", [33, 17], [33, 9], true, false],
    ["2-D transposeB", [17, 33], [9, 33], false, true],
    ["2-D both transposed", [33, 17], [9, 33], true, true],
    ["batched 3-D", [3, 5, 7], [3, 7, 4], false, false],
    ["3-D by 2-D (batch folded into rows)", [4, 5, 7], [7, 3], false, false],
    ["3-D by 2-D transposeA", [4, 7, 5], [7, 3], true, false],
    ["2-D by 3-D", [5, 7], [4, 7, 3], false, false],
    ["broadcast batch [2,3]×[3]", [2, 3, 5, 7], [3, 7, 4], false, false],
    ["broadcast batch [1]×[3] transposeB", [1, 5, 7], [3, 4, 7], false, true],
    [
      "4-D attention scores (transposeB)",
      [2, 3, 8, 16],
      [
        2,
        3,
        8,
        16,
      ],
      false,
      true,
    ],
    [
      "4-D attention grads (transposeA)",
      [2, 3, 8, 16],
      [
        2,
        3,
        8,
        5,
      ],
      true,
      false,
    ],
    ["K = 1 outer product", [6, 1], [1, 5], false, false],
    ["vector-like 1×K·K×1", [1, 64], [64, 1], false, false],
  ];
  for (const [name, a, b, ta, tb] of shapes) {
    cases.push({
      name: `BatchMatMul ${name}`,
      inputs: [{ shape: a }, { shape: b }],
      f: mm(ta, tb),
      grad: a.length === b.length &&
        a.slice(0, -2).join() === b.slice(0, -2).join(),
    });
  }
  for (
    const activation of [
      "linear",
      "relu",
      "relu6",
      "elu",
      "leakyrelu",
      "sigmoid",
    ] as const
  ) {
    cases.push({
      name: `_FusedMatMul bias [N], ${activation}`,
      inputs: [{ shape: [9, 13] }, { shape: [13, 6] }, { shape: [6] }],
      f: (a, b, bias) =>
        tf.fused.matMul({ a, b, bias, activation, leakyreluAlpha: 0.1 }),
      grad: activation === "linear" || activation === "relu",
    });
  }
  cases.push({
    name: "_FusedMatMul transposed, bias [M, N], batched",
    inputs: [{ shape: [2, 13, 9] }, { shape: [2, 6, 13] }, { shape: [9, 6] }],
    f: (a, b, bias) =>
      tf.fused.matMul({
        a,
        b,
        bias,
        transposeA: true,
        transposeB: true,
        activation: "relu",
      }),
    grad: true,
    skip: { wasm: "tfjs-backend-wasm's _FusedMatMul takes only a rank-1 bias" },
  });
  return cases;
}

function binaryCases(): ParityCase[] {
  const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, boolean][] = [
    ["Add", tf.add, false],
    ["Sub", tf.sub, false],
    ["Multiply", tf.mul, false],
    ["RealDiv", tf.div, true],
    ["Maximum", tf.maximum, false],
    ["Minimum", tf.minimum, false],
    ["SquaredDifference", tf.squaredDifference, false],
    ["Pow", tf.pow, true],
  ];
  const layouts: [string, number[], number[]][] = [
    ["same shape", [13, 17], [13, 17]],
    ["scalar right", [5, 9], []],
    ["scalar left", [], [5, 9]],
    ["trailing broadcast", [5, 7, 11], [11]],
    ["column broadcast", [6, 9], [6, 1]],
    ["both broadcast", [5, 1, 11], [1, 7, 1]],
    ["rank 4 mask-like", [2, 3, 8, 8], [8, 8]],
  ];
  const cases: ParityCase[] = [];
  for (const [op, f, positive] of ops) {
    for (const [layout, a, b] of layouts) {
      if (
        op === "Pow" && layout !== "same shape" && layout !== "scalar right"
      ) {
        continue;
      }
      cases.push({
        name: `${op} ${layout}`,
        inputs: [
          { shape: a, range: positive ? POS : undefined },
          { shape: b, range: positive ? POS : undefined },
        ],
        f,
        // tfjs's own Maximum/Minimum/SquaredDifference gradients do not
        // reduce broadcast axes (they throw on every backend).
        grad: layout === "same shape" ||
          !["Maximum", "Minimum", "SquaredDifference"].includes(op),
        rtol: op === "Pow" ? 5e-4 : undefined,
      });
    }
  }
  const comparisons: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ["Greater", tf.greater],
    ["GreaterEqual", tf.greaterEqual],
    ["Less", tf.less],
    ["LessEqual", tf.lessEqual],
    ["Equal", tf.equal],
    ["NotEqual", tf.notEqual],
  ];
  for (const [op, f] of comparisons) {
    cases.push({
      name: `${op} trailing broadcast (ints, so ties occur)`,
      inputs: [{ shape: [4, 9], int: 3 }, { shape: [9], int: 3 }],
      f,
    });
  }
  return cases;
}

function unaryCases(): ParityCase[] {
  const ops: [string, (x: tf.Tensor) => tf.Tensor, [number, number]?][] = [
    ["Exp", tf.exp, [-20, 20]],
    ["Expm1", tf.expm1],
    ["Log", tf.log, [0.01, 50]],
    ["Log1p", tf.log1p, [-0.5, 5]],
    ["Tanh", tf.tanh, [-6, 6]],
    ["Sqrt", tf.sqrt, [0.01, 9]],
    ["Rsqrt", tf.rsqrt, [0.05, 9]],
    ["Square", tf.square],
    ["Neg", tf.neg],
    ["Abs", tf.abs],
    ["Reciprocal", tf.reciprocal, [0.1, 3]],
    ["Relu", tf.relu],
    ["Relu6", tf.relu6, [-8, 8]],
    ["Elu", tf.elu],
    ["Sigmoid", tf.sigmoid, [-12, 12]],
    ["Softplus", tf.softplus, [-12, 12]],
    ["Erf", tf.erf, [-3, 3]],
    ["Sin", tf.sin, [-4, 4]],
    ["Cos", tf.cos, [-4, 4]],
    ["LeakyRelu", (x) => tf.leakyRelu(x, 0.1)],
    ["ClipByValue", (x) => tf.clipByValue(x, -0.3, 0.5)],
    ["Step (via Relu's gradient)", (x) => tf.step(x, 0.25)],
    ["Sign", tf.sign],
    ["Floor", (x) => tf.floor(tf.mul(x, 3))],
    ["Ceil", (x) => tf.ceil(tf.mul(x, 3))],
  ];
  return ops.map(([name, f, range]) => ({
    name: `${name} [7, 37]`,
    inputs: [{ shape: [7, 37], range }],
    f,
    grad: !["Sign", "Floor", "Ceil", "Step (via Relu's gradient)"].includes(
      name,
    ),
    rtol: name === "Erf" ? 2e-4 : undefined,
  }));
}

function reduceCases(): ParityCase[] {
  const ops: [
    string,
    (x: tf.Tensor, axis?: number | number[], keep?: boolean) => tf.Tensor,
  ][] = [
    ["Sum", tf.sum],
    ["Mean", tf.mean],
    ["Max", tf.max],
    ["Min", tf.min],
    ["Prod", tf.prod],
  ];
  const axes: [string, number | number[] | undefined, boolean][] = [
    ["last axis", -1, false],
    ["last axis keepDims", -1, true],
    ["axis 0 (bias gradient)", 0, false],
    ["middle axis", 1, false],
    ["axes [0, 2]", [0, 2], true],
    ["all axes", undefined, false],
  ];
  const cases: ParityCase[] = [];
  for (const [op, f] of ops) {
    for (const [name, axis, keep] of axes) {
      cases.push({
        name: `${op} ${name} of [5, 6, 7]`,
        inputs: [{
          shape: [5, 6, 7],
          range: op === "Prod" ? [0.8, 1.2] : undefined,
        }],
        f: (x) => f(x, axis, keep),
        grad: op !== "Prod",
        rtol: op === "Prod" ? 1e-3 : undefined,
      });
    }
  }
  return cases;
}

function layoutCases(): ParityCase[] {
  const perms: [number[], number[]][] = [
    [[13, 17], [1, 0]],
    [[64, 40], [1, 0]],
    [[3, 5, 7], [0, 2, 1]],
    [[3, 5, 7], [2, 0, 1]],
    [[2, 5, 3, 4], [0, 2, 1, 3]],
    [[2, 5, 3, 4], [3, 1, 0, 2]],
    [[1, 5, 1, 4], [2, 3, 0, 1]],
  ];
  const cases: ParityCase[] = perms.map(([shape, perm]) => ({
    name: `Transpose [${shape}] by [${perm}]`,
    inputs: [{ shape }],
    f: (x: tf.Tensor) => tf.transpose(x, perm),
    grad: true,
  }));
  cases.push(
    {
      name: "Transpose int32 [3, 5, 7] by [2, 0, 1]",
      inputs: [{ shape: [3, 5, 7], int: 100 }],
      f: (x) => tf.transpose(x, [2, 0, 1]),
    },
    {
      name: "Slice a column block of [9, 12]",
      inputs: [{ shape: [9, 12] }],
      f: (x) => tf.slice(x, [2, 3], [5, 4]),
      grad: true,
    },
    {
      name: "Slice rows of [4, 6, 5]",
      inputs: [{ shape: [4, 6, 5] }],
      f: (x) => tf.slice(x, [1, 0, 0], [2, -1, -1]),
      grad: true,
    },
    {
      name: "SplitV into 3 along the last axis (fused QKV)",
      inputs: [{ shape: [6, 15] }],
      f: (x) => {
        const [a, b, c] = tf.split(x, 3, 1);
        return tf.add(tf.mul(a, 2), tf.sub(tf.mul(b, c), a));
      },
      grad: true,
    },
    {
      name: "SplitV uneven along axis 0",
      inputs: [{ shape: [7, 4] }],
      f: (x) => tf.split(x, [2, 5], 0)[1],
      grad: true,
    },
    {
      name: "Concat along axis 1 (and its Slice gradient)",
      inputs: [{ shape: [4, 3] }, { shape: [4, 5] }],
      f: (a, b) => tf.concat([a, b], 1),
      grad: true,
    },
    {
      name: "PadV2 [3, 4, 5] (the Slice gradient's pad)",
      inputs: [{ shape: [3, 4, 5] }],
      f: (x) => tf.pad(x, [[1, 0], [0, 2], [3, 1]], 0.5),
      grad: true,
    },
    {
      name: "Tile [2, 3] by [3, 2]",
      inputs: [{ shape: [2, 3] }],
      f: (x) => tf.tile(x, [3, 2]),
      grad: true,
    },
    {
      name: "Select by an element mask",
      inputs: [{ shape: [5, 6], bool: true }, { shape: [5, 6] }, {
        shape: [5, 6],
      }],
      f: (c, a, b) => tf.where(tf.cast(c, "bool"), a, b),
    },
    {
      name: "OneHot depth 11",
      inputs: [{ shape: [3, 4], int: 11 }],
      f: (ids) => tf.oneHot(ids, 11),
    },
    {
      name: "AddN of three",
      inputs: [{ shape: [4, 5] }, { shape: [4, 5] }, { shape: [4, 5] }],
      f: (a, b, c) => tf.addN([a, b, c]),
      grad: true,
    },
    {
      name: "Cast float32 → int32 → float32",
      inputs: [{ shape: [4, 5], range: [-9, 9] }],
      f: (x) => tf.cast(tf.cast(x, "int32"), "float32"),
    },
  );
  return cases;
}

function modelCases(): ParityCase[] {
  return [
    {
      name: "Softmax last axis [7, 33]",
      inputs: [{ shape: [7, 33], range: [-5, 5] }],
      f: (x) => tf.softmax(x),
      grad: true,
    },
    {
      name: "Softmax attention-shaped [2, 3, 8, 8]",
      inputs: [{ shape: [2, 3, 8, 8], range: [-5, 5] }],
      f: (x) => tf.softmax(x),
      grad: true,
    },
    {
      name: "logSoftmax (composed of fast kernels) [6, 50]",
      inputs: [{ shape: [6, 50], range: [-8, 8] }],
      f: (x) => tf.logSoftmax(x),
      grad: true,
    },
    {
      name: "softmaxCrossEntropy with one-hot labels",
      inputs: [{ shape: [6, 23], range: [-4, 4] }, { shape: [6], int: 23 }],
      f: (logits, ids) =>
        tf.losses.softmaxCrossEntropy(tf.oneHot(ids, 23), logits),
      grad: true,
    },
    {
      name: "GatherV2 embedding lookup with repeated ids",
      inputs: [{ shape: [37, 11] }, { shape: [5, 6], int: 37 }],
      f: (table, ids) => tf.gather(table, ids),
      grad: true,
    },
    {
      name: "GatherV2 along axis 1",
      inputs: [{ shape: [3, 9, 4] }, { shape: [7], int: 9 }],
      f: (x, ids) => tf.gather(x, ids, 1),
      grad: true,
    },
    {
      name: "UnsortedSegmentSum rows into 5 segments",
      inputs: [{ shape: [12, 7] }, { shape: [12], int: 5 }],
      f: (x, ids) => tf.unsortedSegmentSum(x, ids as tf.Tensor1D, 5),
      grad: true,
    },
    {
      name: "layer norm (mean, variance, rsqrt, broadcasts)",
      inputs: [{ shape: [6, 32] }, { shape: [32] }, { shape: [32] }],
      f: (x, g, b) => {
        const mean = tf.mean(x, -1, true);
        const xc = tf.sub(x, mean);
        const v = tf.mean(tf.square(xc), -1, true);
        return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(v, 1e-5))), g), b);
      },
      grad: true,
      rtol: 2e-4,
      atol: 2e-5,
    },
    {
      name: "tanh GELU",
      inputs: [{ shape: [5, 40], range: [-4, 4] }],
      f: (x) => {
        const inner = tf.mul(
          tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)),
          Math.sqrt(2 / Math.PI),
        );
        return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
      },
      grad: true,
      rtol: 2e-4,
    },
  ];
}

// The fused ops: one kernel each way on blas, tfjs ops on cpu (the
// reference), wasm and webgpu.
function fusedCases(): ParityCase[] {
  return [
    {
      name: "sparseSoftmaxCrossEntropy [7, 33] with an ignored label",
      // ids − 1 spans [−1, 33): −1 is ignored (loss and gradient 0).
      inputs: [{ shape: [7, 33], range: [-6, 6] }, { shape: [7], int: 34 }],
      f: (logits, ids) =>
        sparseSoftmaxCrossEntropy(
          logits as tf.Tensor2D,
          tf.sub(ids, 1) as tf.Tensor1D,
        ),
      grad: true,
    },
    {
      name: "sparseSoftmaxCrossEntropy [12, 300] wide logits",
      inputs: [{ shape: [12, 300], range: [-20, 20] }, {
        shape: [12],
        int: 300,
      }],
      f: (logits, ids) =>
        sparseSoftmaxCrossEntropy(logits as tf.Tensor2D, ids as tf.Tensor1D),
      grad: true,
    },
    {
      name: "gelu (fused) [5, 41]",
      inputs: [{ shape: [5, 41], range: [-8, 8] }],
      f: (x) => gelu(x),
      grad: true,
      rtol: 2e-4,
    },
    {
      name: "layerNorm (fused) [6, 32]",
      inputs: [{ shape: [6, 32] }, { shape: [32] }, { shape: [32] }],
      f: (x, weight, bias) => layerNorm(x, { weight, bias }),
      grad: true,
      rtol: 2e-4,
      atol: 2e-5,
    },
    {
      name: "layerNorm (fused) [2, 3, 17], offset rows, epsilon 1e-3",
      inputs: [{ shape: [2, 3, 17], range: [2, 5] }, { shape: [17] }, {
        shape: [17],
      }],
      f: (x, weight, bias) => layerNorm(x, { weight, bias, epsilon: 1e-3 }),
      grad: true,
      rtol: 2e-4,
      atol: 2e-5,
    },
    ...[0, 0.1].map((weightDecay): ParityCase => ({
      name: `adamwUpdate [9, 13], weight decay ${weightDecay}, step 3`,
      inputs: [{ shape: [9, 13] }, { shape: [9, 13] }, { shape: [9, 13] }, {
        shape: [9, 13],
        range: [0, 0.5],
      }],
      f: (param, grad, m, v) => {
        const next = adamwUpdate({ param, grad, m, v }, {
          lr: 0.01,
          beta1: 0.9,
          beta2: 0.95,
          eps: 1e-8,
          weightDecay,
          step: 3,
        });
        return tf.concat(
          [next.param, next.m, next.v].map((t) => tf.reshape(t, [-1])),
        );
      },
    })),
  ];
}

/** Every parity case. */
export function parityCases(): ParityCase[] {
  return [
    ...matmulCases(),
    ...binaryCases(),
    ...unaryCases(),
    ...reduceCases(),
    ...layoutCases(),
    ...modelCases(),
    ...fusedCases(),
  ];
}

/** The outputs of a case (and its gradients) on the current backend. */
export async function runCase(
  c: ParityCase,
  seed: number,
): Promise<Float32Array[]> {
  const xs = c.inputs.map((spec, i) => {
    const values = inputValues(spec, seed + i);
    return spec.int !== undefined || spec.bool
      ? tf.tensor(values, spec.shape, "int32")
      : tf.tensor(values, spec.shape, "float32");
  });
  const results: Float32Array[] = [];
  const y = c.f(...xs);
  results.push(Float32Array.from(await y.data()));
  if (c.grad) {
    const floatIndex = c.inputs.map((s, i) => [s, i] as const)
      .filter(([s]) => s.int === undefined && !s.bool).map(([, i]) => i);
    // A random cotangent, so that every output element matters.
    const w = tf.tensor(
      inputValues({ shape: y.shape }, seed + 99),
      y.shape,
      "float32",
    );
    const g = tf.grads((...fs: tf.Tensor[]) => {
      const all = [...xs];
      floatIndex.forEach((i, k) => (all[i] = fs[k]));
      return tf.sum(tf.mul(c.f(...all), w));
    });
    const grads = g(floatIndex.map((i) => xs[i]));
    for (const gi of grads) results.push(Float32Array.from(await gi.data()));
    tf.dispose([w, ...grads]);
  }
  tf.dispose([y, ...xs]);
  return results;
}

/** The first element out of tolerance, as a message, or `undefined`. */
export function compare(
  actual: Float32Array[],
  expected: Float32Array[],
  rtol: number,
  atol: number,
): string | undefined {
  if (actual.length !== expected.length) {
    return `${actual.length} outputs, expected ${expected.length}`;
  }
  for (let k = 0; k < actual.length; k++) {
    const a = actual[k], e = expected[k];
    const what = k === 0 ? "output" : `gradient ${k}`;
    if (a.length !== e.length) {
      return `${what} has ${a.length} elements, expected ${e.length}`;
    }
    for (let i = 0; i < a.length; i++) {
      if (Number.isNaN(e[i]) && Number.isNaN(a[i])) continue;
      if (e[i] === a[i]) continue;
      if (!(Math.abs(a[i] - e[i]) <= atol + rtol * Math.abs(e[i]))) {
        return `${what}[${i}] = ${a[i]}, expected ${
          e[i]
        } (rtol ${rtol}, atol ${atol})`;
      }
    }
  }
  return undefined;
}
