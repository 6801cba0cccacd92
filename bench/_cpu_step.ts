// Phase A's stand-in for the CPU engine: one training step of a causal or
// bidirectional Transformer (learned or rotary positions, ALiBi; no time
// conditioning, no dropout) as the @d3pm/cpu kernels in the order of the
// WebGPU engine's plan (webgpu/_plan.ts), over one arena, each call timed
// by kernel. It exists to time the sum of the kernels for bench:cpu (a lower
// bound of the engine's step) and to check in its test that they compose
// into the tfjs model's gradients; the engine itself will run the plan.
// Private.

import {
  adamw,
  attentionBackward,
  attentionForward,
  clipFactor,
  columnSum,
  type CpuKernels,
  crossEntropy,
  embeddingBackward,
  embeddingForward,
  embeddingIndex,
  gradNorm,
  layernormBackward,
  layernormForward,
  matmul,
  rope,
} from "@d3pm/cpu";
import { type ModelConfig, parameterShapes } from "@d3pm/transformer";

/** One parameter's views: its values and its gradient. */
export interface ParamViews {
  value: Float32Array;
  grad: Float32Array;
  shape: number[];
}

/** Words of kernel memory {@linkcode planCpuStep} takes at this shape. */
export function stepWords(
  c: ModelConfig,
  batch: number,
  length: number,
  chunkRows = 128,
): number {
  const n = batch * length, d = c.dModel, m = c.dMlp, H = c.nHead;
  const R = Math.min(n, chunkRows), att = batch * H * length * length;
  let params = 0;
  for (const s of parameterShapes(c).values()) {
    params += s.reduce((a, b) => a * b, 1);
  }
  const layer = 8 * n * d + 4 * n + 2 * n * m + batch * H * length + att;
  const shared = 8 * n * d + 9 * n + 1 + R * c.vocabSize + n * m + att +
    length * (d / H);
  // Each allocation is rounded up to 16 words; the norm's partial sums.
  const slack = 16 * (14 * c.nLayer + 40) + Math.ceil(params / 16384) + 16;
  return 4 * params + c.nLayer * layer + shared + slack;
}

/** Milliseconds by kernel name, summed over calls. */
export type Timings = Map<string, number>;

/** A step's arena and its run function. */
export interface CpuStep {
  /** Parameters by name (value and gradient views). */
  params: Map<string, ParamViews>;
  /** Every gradient, one view (the optimiser's). */
  grads: Float32Array;
  /** Run forward, backward, clipping and AdamW; returns the mean loss. */
  step(
    inputs: Int32Array,
    targets: Int32Array,
    lr: number,
    timings?: Timings,
  ): number;
  /** Forward and backward only (gradients left in `grads`); the mean loss. */
  backward(inputs: Int32Array, targets: Int32Array, timings?: Timings): number;
}

/**
 * Plan a step of `c` at [batch, length] on kernel memory: parameters
 * (decayed first, as the WebGPU table), gradients, Adam moments and
 * activations, and the head's logits in chunks of `chunkRows` rows.
 */
export function planCpuStep(
  k: CpuKernels,
  c: ModelConfig,
  batch: number,
  length: number,
  options: { chunkRows?: number; clip?: number; weightDecay?: number } = {},
): CpuStep {
  if (c.timeConditioning || c.dropout > 0) {
    throw new RangeError(
      "planCpuStep covers models without time conditioning or dropout",
    );
  }
  const n = batch * length, d = c.dModel, m = c.dMlp, H = c.nHead;
  const hd = d / H, V = c.vocabSize, L = c.nLayer;
  const R = Math.min(n, options.chunkRows ?? 128);
  const shapes = [...parameterShapes(c)];
  const ordered = [
    ...shapes.filter(([, s]) => s.length >= 2),
    ...shapes.filter(([, s]) => s.length < 2),
  ];
  const total = ordered.reduce(
    (t, [, s]) => t + s.reduce((a, b) => a * b, 1),
    0,
  );
  const values = k.floats(total), grads = k.floats(total);
  const mom = k.floats(total), vel = k.floats(total);
  const params = new Map<string, ParamViews>();
  let at = 0, decayEnd = 0;
  for (const [name, shape] of ordered) {
    const size = shape.reduce((a, b) => a * b, 1);
    params.set(name, {
      value: values.subarray(at, at + size),
      grad: grads.subarray(at, at + size),
      shape,
    });
    at += size;
    if (shape.length >= 2) decayEnd = at;
  }
  const p = (name: string) => params.get(name)!.value;
  const g = (name: string) => params.get(name)!.grad;
  const layers = Array.from({ length: L }, () => ({
    ln1: k.floats(n * d),
    ln1Mean: k.floats(n),
    ln1Rstd: k.floats(n),
    qkv: k.floats(n * 3 * d),
    atty: k.floats(n * d),
    lse: k.floats(batch * H * length),
    probs: k.floats(batch * H * length * length),
    resMid: k.floats(n * d),
    ln2: k.floats(n * d),
    ln2Mean: k.floats(n),
    ln2Rstd: k.floats(n),
    fcPre: k.floats(n * m),
    fcGelu: k.floats(n * m),
    resOut: k.floats(n * d),
  }));
  const res0 = k.floats(n * d), lnf = k.floats(n * d);
  const lnfMean = k.floats(n), lnfRstd = k.floats(n);
  const logits = k.floats(R * V), rowLoss = k.floats(n), weights = k.floats(n);
  const dres = k.floats(n * d), dln = k.floats(n * d), datty = k.floats(n * d);
  const dqkv = k.floats(n * 3 * d), dfc = k.floats(n * m);
  const ds = k.floats(batch * H * length * length);
  const tokens = k.ints(n), tgt = k.ints(n);
  const index = {
    uniq: k.ints(n),
    starts: k.ints(n + 1),
    positions: k.ints(n),
  };
  const half = hd / 2;
  const cos = k.floats(length * half), sin = k.floats(length * half);
  for (let t = 0; t < length; t++) {
    for (let j = 0; j < half; j++) {
      const angle = t * Math.pow(10000, (-2 * j) / hd);
      cos[t * half + j] = Math.cos(angle);
      sin[t * half + j] = Math.sin(angle);
    }
  }
  const shape = {
    batch,
    length,
    heads: H,
    headDim: hd,
    causal: c.kind === "causal",
    alibi: c.kind === "bidirectional" && c.alibi
      ? { slope: c.alibi, neighbours: c.alibiMode === "neighbours" }
      : null,
  };
  const rotary = c.positions === "rotary";
  let adamStep = 0;

  const pass = (
    inputs: Int32Array,
    targets: Int32Array,
    t: Timings | undefined,
  ): number => {
    const time = <R>(name: string, f: () => R): R => {
      if (!t) return f();
      const t0 = performance.now();
      const r = f();
      t.set(name, (t.get(name) ?? 0) + performance.now() - t0);
      return r;
    };
    tokens.set(inputs);
    tgt.set(targets);
    weights.fill(1 / n);
    const count = time("embedding_index", () => embeddingIndex(tokens, index));
    time("embedding", () =>
      embeddingForward(k, {
        rows: n,
        d,
        length,
        tokens,
        wte: p("wte.weight"),
        wpe: rotary ? null : p("wpe.weight"),
        out: res0,
      }));
    let res = res0;
    layers.forEach((l, i) => {
      const w = (s: string) => p(`h.${i}.${s}`);
      time("layernorm", () =>
        layernormForward(k, {
          rows: n,
          d,
          x: res,
          y: l.ln1,
          weight: w("ln_1.weight"),
          bias: w("ln_1.bias"),
          mean: l.ln1Mean,
          rstd: l.ln1Rstd,
        }));
      time("matmul", () =>
        matmul(k, {
          m: n,
          n: 3 * d,
          k: d,
          a: { view: l.ln1, ld: d },
          b: { view: w("attn.c_attn.weight"), ld: 3 * d },
          c: { view: l.qkv, ld: 3 * d },
          epilogue: "bias",
          bias: w("attn.c_attn.bias"),
        }));
      if (rotary) {
        time(
          "rope",
          () =>
            rope(k, {
              rows: n,
              length,
              heads: H,
              headDim: hd,
              qkv: l.qkv,
              cos,
              sin,
            }),
        );
      }
      time("attention", () =>
        attentionForward(k, {
          ...shape,
          qkv: l.qkv,
          y: l.atty,
          lse: l.lse,
          probs: l.probs,
        }));
      time("matmul", () =>
        matmul(k, {
          m: n,
          n: d,
          k: d,
          a: { view: l.atty, ld: d },
          b: { view: w("attn.c_proj.weight"), ld: d },
          c: { view: l.resMid, ld: d },
          epilogue: "bias_residual",
          bias: w("attn.c_proj.bias"),
          e: { view: res, ld: d },
        }));
      time("layernorm", () =>
        layernormForward(k, {
          rows: n,
          d,
          x: l.resMid,
          y: l.ln2,
          weight: w("ln_2.weight"),
          bias: w("ln_2.bias"),
          mean: l.ln2Mean,
          rstd: l.ln2Rstd,
        }));
      time("matmul+gelu", () =>
        matmul(k, {
          m: n,
          n: m,
          k: d,
          a: { view: l.ln2, ld: d },
          b: { view: w("mlp.c_fc.weight"), ld: m },
          c: { view: l.fcGelu, ld: m },
          epilogue: "bias_gelu",
          bias: w("mlp.c_fc.bias"),
          e: { view: l.fcPre, ld: m },
        }));
      time("matmul", () =>
        matmul(k, {
          m: n,
          n: d,
          k: m,
          a: { view: l.fcGelu, ld: m },
          b: { view: w("mlp.c_proj.weight"), ld: d },
          c: { view: l.resOut, ld: d },
          epilogue: "bias_residual",
          bias: w("mlp.c_proj.bias"),
          e: { view: l.resMid, ld: d },
        }));
      res = l.resOut;
    });
    time("layernorm", () =>
      layernormForward(k, {
        rows: n,
        d,
        x: res,
        y: lnf,
        weight: p("ln_f.weight"),
        bias: p("ln_f.bias"),
        mean: lnfMean,
        rstd: lnfRstd,
      }));
    // The head, R rows at a time: logits → CE (in place to dlogits) → dlnf, dwte.
    for (let r0 = 0; r0 < n; r0 += R) {
      const rows = Math.min(R, n - r0);
      const lnfChunk = lnf.subarray(r0 * d);
      time("head_matmul", () =>
        matmul(k, {
          m: rows,
          n: V,
          k: d,
          a: { view: lnfChunk, ld: d },
          b: { view: p("wte.weight"), ld: d, trans: true },
          c: { view: logits, ld: V },
        }));
      time("cross_entropy", () =>
        crossEntropy(k, {
          rows,
          vocab: V,
          logits,
          targets: tgt.subarray(r0),
          weights: weights.subarray(r0),
          loss: rowLoss.subarray(r0),
        }));
      time("head_matmul", () => {
        matmul(k, {
          m: rows,
          n: d,
          k: V,
          a: { view: logits, ld: V },
          b: { view: p("wte.weight"), ld: d },
          c: { view: dln.subarray(r0 * d), ld: d },
        });
        // The first chunk writes the tied gradient, so nothing is zeroed.
        matmul(k, {
          m: V,
          n: d,
          k: rows,
          a: { view: logits, ld: V, trans: true },
          b: { view: lnfChunk, ld: d },
          c: { view: g("wte.weight"), ld: d },
          epilogue: r0 === 0 ? "store" : "accumulate",
        });
      });
    }
    let loss = 0;
    for (let i = 0; i < n; i++) loss += rowLoss[i];
    time("layernorm_backward", () =>
      layernormBackward(k, {
        rows: n,
        d,
        dy: dln,
        x: res,
        mean: lnfMean,
        rstd: lnfRstd,
        weight: p("ln_f.weight"),
        dx: dres,
        gradWeight: g("ln_f.weight"),
        gradBias: g("ln_f.bias"),
      }));
    for (let i = L - 1; i >= 0; i--) {
      const l = layers[i];
      const input = i === 0 ? res0 : layers[i - 1].resOut;
      const w = (s: string) => p(`h.${i}.${s}`);
      const gw = (s: string) => g(`h.${i}.${s}`);
      time("matmul+gelu_backward", () =>
        matmul(k, { // dfc = dres · Wpᵀ ⊙ gelu'(fcPre)
          m: n,
          n: m,
          k: d,
          a: { view: dres, ld: d },
          b: { view: w("mlp.c_proj.weight"), ld: d, trans: true },
          c: { view: dfc, ld: m },
          epilogue: "gelu_backward",
          e: { view: l.fcPre, ld: m },
        }));
      time("matmul", () => {
        matmul(k, { // dWp = fcGeluᵀ · dres
          m,
          n: d,
          k: n,
          a: { view: l.fcGelu, ld: m, trans: true },
          b: { view: dres, ld: d },
          c: { view: gw("mlp.c_proj.weight"), ld: d },
        });
      });
      time(
        "bias_backward",
        () =>
          columnSum(k, {
            rows: n,
            cols: d,
            x: dres,
            out: gw("mlp.c_proj.bias"),
          }),
      );
      time("matmul", () => {
        matmul(k, { // dln = dfc · Wfcᵀ
          m: n,
          n: d,
          k: m,
          a: { view: dfc, ld: m },
          b: { view: w("mlp.c_fc.weight"), ld: m, trans: true },
          c: { view: dln, ld: d },
        });
        matmul(k, { // dWfc = ln2ᵀ · dfc
          m: d,
          n: m,
          k: n,
          a: { view: l.ln2, ld: d, trans: true },
          b: { view: dfc, ld: m },
          c: { view: gw("mlp.c_fc.weight"), ld: m },
        });
      });
      time(
        "bias_backward",
        () =>
          columnSum(k, { rows: n, cols: m, x: dfc, out: gw("mlp.c_fc.bias") }),
      );
      time("layernorm_backward", () =>
        layernormBackward(k, {
          rows: n,
          d,
          dy: dln,
          x: l.resMid,
          mean: l.ln2Mean,
          rstd: l.ln2Rstd,
          weight: w("ln_2.weight"),
          dx: dres,
          accumulate: true,
          gradWeight: gw("ln_2.weight"),
          gradBias: gw("ln_2.bias"),
        }));
      time("matmul", () => {
        matmul(k, { // datty = dres · Wprojᵀ
          m: n,
          n: d,
          k: d,
          a: { view: dres, ld: d },
          b: { view: w("attn.c_proj.weight"), ld: d, trans: true },
          c: { view: datty, ld: d },
        });
        matmul(k, { // dWproj = attyᵀ · dres
          m: d,
          n: d,
          k: n,
          a: { view: l.atty, ld: d, trans: true },
          b: { view: dres, ld: d },
          c: { view: gw("attn.c_proj.weight"), ld: d },
        });
      });
      time(
        "bias_backward",
        () =>
          columnSum(k, {
            rows: n,
            cols: d,
            x: dres,
            out: gw("attn.c_proj.bias"),
          }),
      );
      time("attention_backward", () =>
        attentionBackward(k, {
          ...shape,
          qkv: l.qkv,
          y: l.atty,
          dy: datty,
          probs: l.probs,
          dqkv,
          scratch: ds,
        }));
      if (rotary) {
        time("rope", () =>
          rope(k, {
            rows: n,
            length,
            heads: H,
            headDim: hd,
            qkv: dqkv,
            cos,
            sin,
            backward: true,
          }));
      }
      time("matmul", () => {
        matmul(k, { // dln = dqkv · Wqkvᵀ
          m: n,
          n: d,
          k: 3 * d,
          a: { view: dqkv, ld: 3 * d },
          b: { view: w("attn.c_attn.weight"), ld: 3 * d, trans: true },
          c: { view: dln, ld: d },
        });
        matmul(k, { // dWqkv = ln1ᵀ · dqkv
          m: d,
          n: 3 * d,
          k: n,
          a: { view: l.ln1, ld: d, trans: true },
          b: { view: dqkv, ld: 3 * d },
          c: { view: gw("attn.c_attn.weight"), ld: 3 * d },
        });
      });
      time("bias_backward", () =>
        columnSum(k, {
          rows: n,
          cols: 3 * d,
          x: dqkv,
          out: gw("attn.c_attn.bias"),
        }));
      time("layernorm_backward", () =>
        layernormBackward(k, {
          rows: n,
          d,
          dy: dln,
          x: input,
          mean: l.ln1Mean,
          rstd: l.ln1Rstd,
          weight: w("ln_1.weight"),
          dx: dres,
          accumulate: true,
          gradWeight: gw("ln_1.weight"),
          gradBias: gw("ln_1.bias"),
        }));
    }
    time("embedding_backward", () =>
      embeddingBackward(k, {
        batch,
        length,
        d,
        dx: dres,
        index,
        count,
        gradWte: g("wte.weight"),
        gradWpe: rotary ? null : g("wpe.weight"),
      }));
    return loss;
  };

  return {
    params,
    grads,
    backward: (inputs, targets, timings) => pass(inputs, targets, timings),
    step(inputs, targets, lr, timings) {
      const loss = pass(inputs, targets, timings);
      const t0 = performance.now();
      const norm = gradNorm(k, grads);
      const t1 = performance.now();
      adamw(k, {
        params: values,
        grads,
        m: mom,
        v: vel,
        decayEnd,
        lr,
        step: ++adamStep,
        weightDecay: options.weightDecay ?? 0.1,
        gradScale: clipFactor(norm, options.clip ?? 1),
      });
      if (timings) {
        const t2 = performance.now();
        timings.set("grad_norm", (timings.get("grad_norm") ?? 0) + t1 - t0);
        timings.set("adamw", (timings.get("adamw") ?? 0) + t2 - t1);
      }
      return loss;
    },
  };
}
