// forward() against an independent float64 re-implementation written from
// the documented maths (GPT-2's pre-LN block, "rotate half" RoPE with base
// 10000, ALiBi's slopes, adaLN, the tanh GELU, LayerNorm ε = 1e-5, tied
// head), in plain loops. The other transformer tests check properties
// (causality, determinism, gradients); this one checks the numbers.

import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import { prng } from "@d3pm/core";
import { type ModelConfig, Transformer } from "./mod.ts";
import { normals } from "./_init.ts";
import { tinyConfig, useBackend } from "./_test_util.ts";

type W = Map<string, Float64Array>;

/**
 * One row's dropout multipliers (0 or 1/(1 − rate)): the embeddings [T, d],
 * and per layer the attention weights [H, T, T], the attention output and
 * the MLP output [T, d].
 */
interface Dropout {
  emb: Float32Array;
  layers: { w: Float32Array; a: Float32Array; m: Float32Array }[];
}

const layerNorm = (x: number[], g: Float64Array, b: Float64Array) => {
  const n = x.length;
  const mean = x.reduce((a, v) => a + v, 0) / n;
  const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / n; // biased, as torch
  const inv = 1 / Math.sqrt(variance + 1e-5);
  return x.map((v, i) => (v - mean) * inv * g[i] + b[i]);
};

// GPT-2's gelu_new: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
const gelu = (x: number) =>
  0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

const silu = (x: number) => x / (1 + Math.exp(-x));

// x [in] @ w [in, out] + b [out].
const linear = (x: number[], w: Float64Array, b: Float64Array) => {
  const out = b.length;
  const y = Array.from(b);
  for (let i = 0; i < x.length; i++) {
    for (let o = 0; o < out; o++) y[o] += x[i] * w[i * out + o];
  }
  return y;
};

// Rotate-half RoPE of one head vector at position p.
const rope = (v: number[], p: number) => {
  const hd = v.length, half = hd / 2;
  const out = v.slice();
  for (let j = 0; j < half; j++) {
    const angle = p / 10000 ** ((2 * j) / hd);
    const [c, s] = [Math.cos(angle), Math.sin(angle)];
    out[j] = v[j] * c - v[j + half] * s;
    out[j + half] = v[j + half] * c + v[j] * s;
  }
  return out;
};

// The additive bias of head h, query i, key j (−∞ for a hidden key).
function bias(c: ModelConfig, window: number, h: number, i: number, j: number) {
  if (c.kind === "causal" && j > i) return -Infinity;
  if (j - i > window) return -Infinity;
  if (!c.alibi) return 0;
  if (c.alibiMode === "neighbours" && h < 2) {
    const target = h === 0 ? i - 1 : i + 1; // head 0 the left neighbour
    return -c.alibi * Math.abs(j - target);
  }
  return -c.alibi * 2 ** (-8 * h / c.nHead) * Math.abs(j - i);
}

/** Logits [T][V] of one row, in float64. */
function reference(
  c: ModelConfig,
  w: W,
  tokens: number[],
  t: number | null,
  window = Infinity,
  drop?: Dropout,
): number[][] {
  const d = c.dModel, T = tokens.length, H = c.nHead, hd = d / H;
  const get = (n: string) => w.get(n)!;
  let cond: number[] | null = null;
  if (c.timeConditioning) {
    const half = c.dTime / 2;
    const f: number[] = [];
    for (let j = 0; j < half; j++) {
      f[j] = Math.cos(1000 * t! * Math.exp(-Math.log(10000) * j / half));
      f[j + half] = Math.sin(1000 * t! * Math.exp(-Math.log(10000) * j / half));
    }
    const h1 = linear(f, get("time.mlp.c_fc.weight"), get("time.mlp.c_fc.bias"))
      .map(silu);
    cond = linear(
      h1,
      get("time.mlp.c_proj.weight"),
      get("time.mlp.c_proj.bias"),
    )
      .map(silu);
  }
  const wte = get("wte.weight");
  let x = tokens.map((id, p) =>
    Array.from({ length: d }, (_, k) =>
      wte[id * d + k] +
      (c.positions === "learned" ? get("wpe.weight")[p * d + k] : 0))
  );
  if (drop) x = x.map((r, p) => r.map((z, k) => z * drop.emb[p * d + k]));
  for (let l = 0; l < c.nLayer; l++) {
    const p = (n: string) => get(`h.${l}.${n}`);
    const mods = cond ? linear(cond, p("ada.weight"), p("ada.bias")) : null;
    const mod = (k: number) => mods!.slice(k * d, (k + 1) * d);
    const modulate = (v: number[], shift: number[], scale: number[]) =>
      v.map((z, k) => z * (1 + scale[k]) + shift[k]);
    let h = x.map((r) => layerNorm(r, p("ln_1.weight"), p("ln_1.bias")));
    if (mods) h = h.map((r) => modulate(r, mod(0), mod(1)));
    const qkv = h.map((r) =>
      linear(r, p("attn.c_attn.weight"), p("attn.c_attn.bias"))
    );
    const merged = x.map(() => new Array<number>(d).fill(0));
    for (let head = 0; head < H; head++) {
      const part = (r: number[], which: number, pos: number) => {
        const v = r.slice(which * d + head * hd, which * d + (head + 1) * hd);
        return c.positions === "rotary" ? rope(v, pos) : v;
      };
      const q = qkv.map((r, i) => part(r, 0, i));
      const k = qkv.map((r, j) => part(r, 1, j));
      const v = qkv.map((r) =>
        r.slice(2 * d + head * hd, 2 * d + (head + 1) * hd)
      );
      for (let i = 0; i < T; i++) {
        const s = k.map((kj, j) =>
          q[i].reduce((a, qi, e) => a + qi * kj[e], 0) / Math.sqrt(hd) +
          bias(c, window, head, i, j)
        );
        const top = Math.max(...s);
        const e = s.map((z) => Math.exp(z - top));
        const sum = e.reduce((a, z) => a + z, 0);
        for (let j = 0; j < T; j++) {
          for (let e2 = 0; e2 < hd; e2++) {
            const kept = drop ? drop.layers[l].w[(head * T + i) * T + j] : 1;
            merged[i][head * hd + e2] += (e[j] / sum) * kept * v[j][e2];
          }
        }
      }
    }
    let a = merged.map((r) =>
      linear(r, p("attn.c_proj.weight"), p("attn.c_proj.bias"))
    );
    if (drop) {
      a = a.map((r, i) => r.map((z, k) => z * drop.layers[l].a[i * d + k]));
    }
    if (mods) a = a.map((r) => r.map((z, k) => z * (1 + mod(2)[k])));
    x = x.map((r, i) => r.map((z, k) => z + a[i][k]));
    h = x.map((r) => layerNorm(r, p("ln_2.weight"), p("ln_2.bias")));
    if (mods) h = h.map((r) => modulate(r, mod(3), mod(4)));
    let m = h.map((r) =>
      linear(
        linear(r, p("mlp.c_fc.weight"), p("mlp.c_fc.bias")).map(gelu),
        p("mlp.c_proj.weight"),
        p("mlp.c_proj.bias"),
      )
    );
    if (drop) {
      m = m.map((r, i) => r.map((z, k) => z * drop.layers[l].m[i * d + k]));
    }
    if (mods) m = m.map((r) => r.map((z, k) => z * (1 + mod(5)[k])));
    x = x.map((r, i) => r.map((z, k) => z + m[i][k]));
  }
  if (c.shift) x = x.map((_, i) => x[Math.max(0, i - 1)]);
  let h = x.map((r) => layerNorm(r, get("ln_f.weight"), get("ln_f.bias")));
  if (cond) {
    const sc = linear(cond, get("ln_f.ada.weight"), get("ln_f.ada.bias"));
    h = h.map((r) => r.map((z, k) => z * (1 + sc[d + k]) + sc[k]));
  }
  // Tied head: logits = h · wteᵀ.
  return h.map((r) =>
    Array.from(
      { length: c.vocabSize },
      (_, id) => r.reduce((a, z, k) => a + z * wte[id * d + k], 0),
    )
  );
}

// Every weight random (gains, biases and adaLN included), so that no term
// hides behind a zero or a one; the float64 copies for the reference.
function randomise(model: Transformer, embStd = 1): W {
  const rng = prng(11);
  const w: W = new Map();
  const ts = new Map<string, tf.Tensor>();
  for (const [n, v] of model.variables) {
    const std = n.startsWith("wte") || n.startsWith("wpe") ? embStd : 0.3;
    const data = normals(rng, v.size, std);
    if (/ln_[12f]\.weight$/.test(n)) data.forEach((z, i) => data[i] = 1 + z);
    w.set(n, Float64Array.from(data));
    ts.set(n, tf.tensor(data, v.shape));
  }
  model.setWeights(ts);
  tf.dispose([...ts.values()]);
  return w;
}

const cases: [string, Partial<ModelConfig>, number?, number?][] = [
  ["causal, learned positions", {}],
  ["causal, rotary", { positions: "rotary" }],
  ["bidirectional, rotary, time-conditioned", {
    kind: "bidirectional",
    positions: "rotary",
    timeConditioning: true,
  }],
  ["bidirectional, ALiBi (4 heads)", {
    kind: "bidirectional",
    positions: "rotary",
    nHead: 4,
    alibi: 0.7,
  }],
  ["bidirectional, ALiBi neighbours (4 heads)", {
    kind: "bidirectional",
    positions: "rotary",
    nHead: 4,
    alibi: 0.7,
    alibiMode: "neighbours",
  }],
  ["bidirectional with shift", { kind: "bidirectional", shift: true }],
  ["bidirectional, attention window 2", { kind: "bidirectional" }, 2],
  ["causal with dropout 0.3, not training", { dropout: 0.3 }],
  // Embeddings of std 0.003 (LayerNorm's input variance ~1e-5): the ε of
  // 1e-5 moves the logits by tens of percent, so a wrong ε shows.
  ["causal, tiny embeddings", {}, Infinity, 0.003],
];

for (const [name, overrides, window, embStd] of cases) {
  Deno.test(`forward() equals a float64 re-implementation: ${name} (cpu)`, async () => {
    await useBackend("cpu");
    const config = tinyConfig(overrides);
    const model = new Transformer(config, { seed: 3 });
    const w = randomise(model, embStd);
    if (window !== undefined) model.attentionWindow = window;
    const rows = [[3, 17, 0, 31, 8, 8, 22, 5, 14], [1, 2, 3, 4, 5, 6, 7, 8, 9]];
    const times = [0.37, 0.81];
    const tokens = tf.tensor2d(rows, [2, 9], "int32");
    const t = tf.tensor1d(times);
    const logits = model.forward(tokens, { t });
    const got = logits.arraySync() as number[][][];
    tf.dispose([tokens, t, logits]);
    model.dispose();
    let worst = 0, scale = 0;
    rows.forEach((row, b) => {
      const want = reference(config, w, row, times[b], window);
      want.forEach((r, i) =>
        r.forEach((z, v) => {
          worst = Math.max(worst, Math.abs(z - got[b][i][v]));
          scale = Math.max(scale, Math.abs(z));
        })
      );
    });
    // float32 against float64: 1e-5 of the largest logit (observed ≤ 2e-7).
    assert(
      scale > (embStd ?? 1),
      `logits should not be tiny, max |logit| ${scale}`,
    );
    assert(
      worst <= 1e-5 * scale,
      `max |Δlogit| ${worst} > 1e-5 · ${scale.toFixed(2)}`,
    );
  });
}

for (
  const [name, overrides] of [
    ["causal, learned positions", {}],
    ["bidirectional, rotary, time-conditioned, ALiBi", {
      kind: "bidirectional",
      positions: "rotary",
      timeConditioning: true,
      alibi: 0.7,
    }],
  ] as [string, Partial<ModelConfig>][]
) {
  Deno.test(`forward({ training }) equals the float64 re-implementation with dropout on the embeddings, attention weights, attention and MLP outputs: ${name} (cpu)`, async () => {
    // The masks are tf.dropout's of the same seeds, in the order the model
    // draws them (embeddings, then per layer attention weights, attention
    // output, MLP output): a dropout moved, dropped or at another rate
    // gives other logits.
    await useBackend("cpu");
    const rate = 0.3;
    const config = tinyConfig({ ...overrides, dropout: rate });
    const model = new Transformer(config, { seed: 3 });
    const w = randomise(model);
    const seeds: number[] = [];
    const inner = prng(99);
    const recording = {
      ...inner,
      nextUint32: () => {
        const s = inner.nextUint32();
        seeds.push(s);
        return s;
      },
    };
    const rows = [[3, 17, 0, 31, 8, 8, 22, 5, 14], [1, 2, 3, 4, 5, 6, 7, 8, 9]];
    const times = [0.37, 0.81];
    const [B, T, d, H] = [2, 9, config.dModel, config.nHead];
    const tokens = tf.tensor2d(rows, [B, T], "int32");
    const t = tf.tensor1d(times);
    const logits = model.forward(tokens, {
      t,
      training: true,
      prng: recording,
    });
    const got = logits.arraySync() as number[][][];
    tf.dispose([tokens, t, logits]);
    model.dispose();
    assertEquals(seeds.length, 1 + 3 * config.nLayer, "dropout draws");
    const maskOf = (shape: number[], seed: number) =>
      tf.tidy(() =>
        tf.dropout(tf.ones(shape), rate, undefined, seed).dataSync()
      ) as Float32Array;
    const emb = maskOf([B, T, d], seeds[0]);
    const layers = Array.from({ length: config.nLayer }, (_, l) => ({
      w: maskOf([B, H, T, T], seeds[1 + 3 * l]),
      a: maskOf([B, T, d], seeds[2 + 3 * l]),
      m: maskOf([B, T, d], seeds[3 + 3 * l]),
    }));
    // The rate itself: about 30% of the embedding entries dropped.
    const zeros = emb.filter((z) => z === 0).length / emb.length;
    assert(Math.abs(zeros - rate) < 0.1, `dropped ${zeros}`);
    let worst = 0, scale = 0;
    rows.forEach((row, b) => {
      const slice = (m: Float32Array, n: number) =>
        m.subarray(b * n, (b + 1) * n);
      const drop: Dropout = {
        emb: slice(emb, T * d),
        layers: layers.map((x) => ({
          w: slice(x.w, H * T * T),
          a: slice(x.a, T * d),
          m: slice(x.m, T * d),
        })),
      };
      const want = reference(config, w, row, times[b], Infinity, drop);
      want.forEach((r, i) =>
        r.forEach((z, v) => {
          worst = Math.max(worst, Math.abs(z - got[b][i][v]));
          scale = Math.max(scale, Math.abs(z));
        })
      );
    });
    assert(scale > 1, `logits should not be tiny, max |logit| ${scale}`);
    assert(
      worst <= 1e-5 * scale,
      `max |Δlogit| ${worst} > 1e-5 · ${scale.toFixed(2)}`,
    );
  });
}
