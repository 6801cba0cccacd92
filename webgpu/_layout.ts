// The engine's two memory tables (llm.c style), each entry with its shape:
// the parameter table (one buffer; gradients and Adam moments mirror it) and
// the activation arena for a fixed (batch, length). Private.

import type { StoredTensor } from "@d3pm/core";
import { type ModelConfig, parameterShapes } from "@d3pm/transformer/init";
import type { Fail } from "./_generation_checks.ts";

/** One parameter tensor inside the parameter buffer. */
export interface ParameterEntry {
  /** The tfjs model's name, e.g. `h.0.attn.c_attn.weight`. */
  name: string;
  /** The tensor's shape, as in safetensors. */
  shape: number[];
  /** Offset in floats. */
  offset: number;
  /** Its floats (the product of the shape). */
  size: number;
  /** Decoupled weight decay applies (rank ≥ 2, as the tfjs AdamW default). */
  decay: boolean;
}

/** The parameter table. */
export interface ParameterTable {
  /** Every parameter, in buffer order (decayed first). */
  entries: ParameterEntry[];
  /** The same entries by name. */
  byName: Map<string, ParameterEntry>;
  /** Total floats. */
  size: number;
  /** Entries below this offset decay (decayed tensors are laid out first). */
  decayEnd: number;
}

/**
 * Parameters in the tfjs Transformer's names and shapes (so safetensors
 * round-trip), laid out decayed-first so that AdamW needs one boundary:
 *
 * | name | shape |
 * |---|---|
 * | wte.weight | (V, d) |
 * | wpe.weight | (T, d), learned positions |
 * | h.i.attn.c_attn.weight / c_proj.weight | (d, 3d) / (d, d) |
 * | h.i.mlp.c_fc.weight / c_proj.weight | (d, dMlp) / (dMlp, d) |
 * | then every bias and LayerNorm gain/bias | (·) |
 *
 * @param config The model's configuration.
 * @returns Every parameter's offset and size in one buffer, and its total.
 *
 * @example
 * ```ts
 * import { parameterTable } from "@d3pm/webgpu/plan";
 * import { preset } from "@d3pm/transformer";
 * import { assert, assertEquals } from "@std/assert";
 * const c = preset("micro", { vocabSize: 16, contextLength: 8 });
 * const table = parameterTable(c);
 * assertEquals(table.byName.get("wte.weight")!.shape, [16, c.dModel]);
 * assert(table.entries.every((e) => e.decay === e.offset < table.decayEnd));
 * ```
 */
export function parameterTable(config: ModelConfig): ParameterTable {
  const shapes = [...parameterShapes(config)];
  const ordered = [
    ...shapes.filter(([, s]) => s.length >= 2),
    ...shapes.filter(([, s]) => s.length < 2),
  ];
  const entries: ParameterEntry[] = [];
  let offset = 0;
  let decayEnd = 0;
  for (const [name, shape] of ordered) {
    const size = shape.reduce((a, b) => a * b, 1);
    const decay = shape.length >= 2;
    entries.push({ name, shape, offset, size, decay });
    offset += size;
    if (decay) decayEnd = offset;
  }
  return {
    entries,
    byName: new Map(entries.map((e) => [e.name, e])),
    size: offset,
    decayEnd,
  };
}

/**
 * Named tensors laid out as the parameter table: exact names, shapes and
 * value counts, or a one-line error through `options.fail` (default: a
 * `RangeError`) naming `options.what` and the tensor. Both engines read
 * weights, the EMA and AdamW's moments in with it.
 *
 * @param table The parameter table of the model.
 * @param weights Every parameter by name.
 * @param options `what` the tensors are (named in errors) and the engine's `fail`.
 * @returns One table-shaped array.
 *
 * @example
 * ```ts
 * import { joinWeights, parameterTable, splitWeights } from "@d3pm/webgpu/plan";
 * import { initialWeights, preset } from "@d3pm/transformer";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const config = preset("micro", { vocabSize: 16, contextLength: 8 });
 * const table = parameterTable(config);
 * const weights = initialWeights(config, 0);
 * const flat = joinWeights(table, weights, { what: "weights" });
 * assertEquals(flat.length, table.size);
 * assertEquals(splitWeights(config, flat), weights);
 * weights.delete("wte.weight");
 * assertThrows(
 *   () => joinWeights(table, weights, { what: "weights" }),
 *   RangeError,
 *   'weights: missing tensor "wte.weight"',
 * );
 * ```
 */
export function joinWeights(
  table: ParameterTable,
  weights: ReadonlyMap<string, StoredTensor>,
  options: { what: string; fail?: Fail },
): Float32Array<ArrayBuffer> {
  const { what } = options;
  const fail: Fail = options.fail ?? rangeError;
  for (const name of weights.keys()) {
    if (!table.byName.has(name)) {
      fail(`${what}: unexpected tensor "${name}" for this config`);
    }
  }
  const out = new Float32Array(table.size);
  for (const e of table.entries) {
    const w = weights.get(e.name);
    if (!w) fail(`${what}: missing tensor "${e.name}"`);
    if (w.shape.join(",") !== e.shape.join(",")) {
      fail(
        `${what}: "${e.name}" has shape [${w.shape}], expected [${e.shape}]`,
      );
    }
    if (w.data.length !== e.size) {
      fail(
        `${what}: "${e.name}" holds ${w.data.length} values, expected ${e.size}`,
      );
    }
    out.set(w.data, e.offset);
  }
  return out;
}

function rangeError(message: string): never {
  throw new RangeError(message);
}

/**
 * A table-shaped array (weights, gradients, the EMA, a moment) as named
 * tensors in the model's canonical order (that of `parameterShapes`), each
 * a copy.
 *
 * @param config The model's configuration.
 * @param data Floats laid out as `parameterTable(config)`.
 * @returns Every parameter by name.
 *
 * @example
 * ```ts
 * import { parameterTable, splitWeights } from "@d3pm/webgpu/plan";
 * import { preset } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * const config = preset("micro", { vocabSize: 16, contextLength: 8 });
 * const flat = new Float32Array(parameterTable(config).size).fill(1);
 * const named = splitWeights(config, flat);
 * assertEquals(named.get("wte.weight")!.shape, [16, config.dModel]);
 * ```
 */
export function splitWeights(
  config: ModelConfig,
  data: Float32Array,
): Map<string, StoredTensor> {
  const table = parameterTable(config);
  const out = new Map<string, StoredTensor>();
  for (const name of parameterShapes(config).keys()) {
    const e = table.byName.get(name)!;
    out.set(name, {
      shape: [...e.shape],
      data: data.slice(e.offset, e.offset + e.size),
    });
  }
  return out;
}

/** Offsets (floats) of one layer's activations in the arena. */
export interface LayerActs {
  /** The first LayerNorm's output (N, d). */
  ln1: number;
  /** Its mean per row (N). */
  ln1Mean: number;
  /** Its reciprocal standard deviation per row (N). */
  ln1Rstd: number;
  /** q, k, v (N, 3d), q and k after RoPE. */
  qkv: number;
  /** The attention output before c_proj (N, d). */
  atty: number;
  /** The log-sum-exp per query (B, H, T). */
  lse: number;
  /** The residual after attention (N, d). */
  resMid: number;
  /** The second LayerNorm's output (N, d). */
  ln2: number;
  /** Its mean per row (N). */
  ln2Mean: number;
  /** Its reciprocal standard deviation per row (N). */
  ln2Rstd: number;
  /** The MLP's hidden layer before GELU (N, dMlp). */
  fcPre: number;
  /** The MLP's hidden layer after GELU (N, dMlp). */
  fcGelu: number;
  /** The residual after the MLP (N, d): the layer's output. */
  resOut: number;
  /** Time conditioning only (−1 otherwise): the adaLN modulations (B, 6d): shift, scale, gate for attention, then for the MLP. */
  mods: number;
  /** Time conditioning only (−1 otherwise): the attention branch before its gate (N, d). */
  attnOut: number;
  /** Time conditioning only (−1 otherwise): the MLP branch before its gate (N, d). */
  mlpOut: number;
}

/** The activation arena for N = B·T rows. */
export interface Arena {
  /** The embeddings (N, d). */
  res0: number;
  /** Each layer's activations (an inference arena shares one set among layers). */
  layers: LayerActs[];
  /** The final LayerNorm's output (N, d). */
  lnf: number;
  /** Its mean per row (N). */
  lnfMean: number;
  /** Its reciprocal standard deviation per row (N). */
  lnfRstd: number;
  /** RoPE cosines (T, hd/2), written by the host. */
  ropeCos: number;
  /** RoPE sines (T, hd/2), written by the host. */
  ropeSin: number;
  /** Time conditioning only (−1 otherwise): sinusoidal features of t (B, dTime), written by the host. */
  tfeat: number;
  /** Time conditioning only: the time MLP's hidden layer before SiLU (B, dTime). */
  hidPre: number;
  /** Time conditioning only: the time MLP's hidden layer (B, dTime). */
  hid: number;
  /** Time conditioning only: the time MLP's output before SiLU (B, dTime). */
  condPre: number;
  /** Time conditioning only: its SiLU (B, dTime), what every adaLN projection reads. */
  cond: number;
  /** Time conditioning only: (shift, scale) after ln_f (B, 2d). */
  modsF: number;
  /** Training and scoring (−1 otherwise): per-token loss weights (N). */
  weights: number;
  /** Training and scoring: the weighted loss per token (N). */
  rowLoss: number;
  /** Training and scoring: one chunk of rows of logits (R, V). */
  logits: number;
  /** R, the rows of a logits chunk (0 when there is none). */
  chunkRows: number;
  /** Training only (−1 otherwise): the residual stream's gradient (N, d). */
  dres: number;
  /** Training only: a LayerNorm output's gradient (N, d). */
  dln: number;
  /** Training only: the attention output's gradient (N, d). */
  datty: number;
  /** Training only: the q, k, v gradient (N, 3d). */
  dqkv: number;
  /** Training only: the MLP hidden layer's gradient (N, dMlp). */
  dfc: number;
  /** Training only: dy·y per query (B, H, T), the attention backward's scratch. */
  attD: number;
  /** Training only: 256 floats of the gradient norm's partial sums. */
  normPartial: number;
  /** Training with time conditioning only: one layer's modulation gradient (B, 6d). */
  dmods: number;
  /** Training with time conditioning only: the gradient of cond (B, dTime). */
  dcond: number;
  /** Training with time conditioning only: the gradient of hid (B, dTime). */
  dhid: number;
  /** Training with time conditioning or dropout only: a gated or dropped branch's gradient (N, d). */
  dbr: number;
  /** The arena's floats. */
  size: number;
}

/** Int inputs: tokens, targets and the embedding-gradient index (CSR). */
export interface IntLayout {
  /** The input tokens (N). */
  tokens: number;
  /** The targets (N). */
  targets: number;
  /** The count of distinct tokens (1). */
  count: number;
  /** The distinct tokens, ascending (N; `count` used). */
  uniq: number;
  /** Where each distinct token's positions start in `positions` (N + 1). */
  starts: number;
  /** The positions grouped by token (N). */
  positions: number;
  /** The ints of the layout. */
  size: number;
}

/**
 * What a plan records: the forward to logits, the forward with the weighted
 * cross-entropy head only (scoring), or the whole training step.
 */
export type PlanMode = "forward" | "score" | "training";

/**
 * Plan the activation arena once for a fixed shape: every tensor's offset
 * (floats, 256-byte aligned; −1 for one the mode does not use). An inference
 * arena keeps one set of layer activations for all layers.
 *
 * @param config The model's configuration.
 * @param batch B.
 * @param length T.
 * @param mode What the plan records (`true`: training, `false`: forward).
 * @param chunkFloats Floats of one chunk of logits rows (R = chunkFloats / V rows, at least 1).
 * @returns The offsets and the arena's size.
 *
 * @example
 * ```ts
 * import { planArena } from "@d3pm/webgpu/plan";
 * import { preset } from "@d3pm/transformer";
 * import { assert, assertEquals } from "@std/assert";
 * const c = preset("micro", { vocabSize: 16, contextLength: 8 });
 * const training = planArena(c, 2, 8, "training", 1 << 20);
 * const forward = planArena(c, 2, 8, "forward", 1 << 20);
 * assertEquals(training.layers.length, c.nLayer);
 * assertEquals(forward.dres, -1);
 * assert(forward.size < training.size);
 * ```
 */
export function planArena(
  config: ModelConfig,
  batch: number,
  length: number,
  mode: PlanMode | boolean,
  chunkFloats: number,
): Arena {
  if (typeof mode === "boolean") mode = mode ? "training" : "forward";
  const { dModel: d, dMlp: m, nHead: h, vocabSize: v } = config;
  const n = batch * length;
  let off = 0;
  const take = (size: number) => {
    const o = off;
    // 256-byte alignment: a kernel may then bind each tensor as its own
    // range (browsers refuse overlapping writable ranges of one buffer).
    off += Math.ceil(size / 64) * 64;
    return o;
  };
  const none = -1;
  const timed = config.timeConditioning;
  const dt = config.dTime;
  const opt = (size: number) => (timed ? take(size) : none);
  const res0 = take(n * d);
  const layers: LayerActs[] = [];
  // Inference keeps no activation for a backward: every layer reuses one
  // set (a layer reads its input `res` before it writes its own resOut), all
  // but the adaLN modulations, which are computed for every layer first.
  let shared: Omit<LayerActs, "mods"> | null = null;
  for (let i = 0; i < config.nLayer; i++) {
    if (mode !== "training" && shared) {
      layers.push({ ...shared, mods: opt(batch * 6 * d) });
      continue;
    }
    const mods = opt(batch * 6 * d);
    layers.push({
      mods,
      attnOut: opt(n * d),
      mlpOut: opt(n * d),
      ln1: take(n * d),
      ln1Mean: take(n),
      ln1Rstd: take(n),
      qkv: take(n * 3 * d),
      atty: take(n * d),
      lse: take(batch * h * length),
      resMid: take(n * d),
      ln2: take(n * d),
      ln2Mean: take(n),
      ln2Rstd: take(n),
      fcPre: take(n * m),
      fcGelu: take(n * m),
      resOut: take(n * d),
    });
    const { mods: _, ...rest } = layers[i];
    shared = rest;
  }
  const lnf = take(n * d), lnfMean = take(n), lnfRstd = take(n);
  const half = d / h / 2;
  const ropeCos = take(length * half), ropeSin = take(length * half);
  const time = {
    tfeat: opt(batch * dt),
    hidPre: opt(batch * dt),
    hid: opt(batch * dt),
    condPre: opt(batch * dt),
    cond: opt(batch * dt),
    modsF: opt(batch * 2 * d),
  };
  const chunkRows = Math.max(1, Math.min(n, Math.floor(chunkFloats / v)));
  if (mode !== "training") {
    const score = mode === "score";
    return {
      ...time,
      dmods: none,
      dcond: none,
      dhid: none,
      dbr: none,
      res0,
      layers,
      lnf,
      lnfMean,
      lnfRstd,
      ropeCos,
      ropeSin,
      weights: score ? take(n) : none,
      rowLoss: score ? take(n) : none,
      logits: score ? take(chunkRows * v) : none,
      chunkRows: score ? chunkRows : 0,
      dres: none,
      dln: none,
      datty: none,
      dqkv: none,
      dfc: none,
      attD: none,
      normPartial: none,
      size: off,
    };
  }
  return {
    ...time,
    dmods: opt(batch * 6 * d),
    dcond: opt(batch * dt),
    dhid: opt(batch * dt),
    dbr: timed || config.dropout > 0 ? take(n * d) : none,
    res0,
    layers,
    lnf,
    lnfMean,
    lnfRstd,
    ropeCos,
    ropeSin,
    weights: take(n),
    rowLoss: take(n),
    logits: take(chunkRows * v),
    chunkRows,
    dres: take(n * d),
    dln: take(n * d),
    datty: take(n * d),
    dqkv: take(n * 3 * d),
    dfc: take(n * m),
    attD: take(batch * h * length),
    normPartial: take(256),
    size: off,
  };
}

/**
 * Plan the int inputs of N = B·T rows: tokens, targets, and the embedding
 * gradient's index (`embeddingIndex`).
 *
 * @param n N, the rows.
 * @returns The offsets and the ints needed.
 *
 * @example
 * ```ts
 * import { planInts } from "@d3pm/webgpu/plan";
 * import { assertEquals } from "@std/assert";
 * const ints = planInts(4);
 * assertEquals([ints.tokens, ints.targets, ints.size], [0, 4, 22]);
 * ```
 */
export function planInts(n: number): IntLayout {
  return {
    tokens: 0,
    targets: n,
    count: 2 * n,
    uniq: 2 * n + 1,
    starts: 3 * n + 1,
    positions: 4 * n + 2,
    size: 5 * n + 2,
  };
}

/**
 * The embedding-gradient index of a batch: its distinct tokens, and for each
 * the positions holding it (CSR), so the scatter-add needs no atomics and
 * sums in a fixed order.
 *
 * @param tokens The batch's N tokens.
 * @param out The int inputs, written at `layout`'s `count`, `uniq`, `starts` and `positions`.
 * @param layout Their offsets (`planInts(N)`).
 *
 * @example
 * ```ts
 * import { embeddingIndex, planInts } from "@d3pm/webgpu/plan";
 * import { assertEquals } from "@std/assert";
 * const layout = planInts(4);
 * const out = new Int32Array(layout.size);
 * embeddingIndex(Int32Array.of(5, 2, 5, 7), out, layout);
 * assertEquals(out[layout.count], 3);
 * const at = (o: number, k: number) => Array.from(out.subarray(o, o + k));
 * assertEquals(at(layout.uniq, 3), [2, 5, 7]);
 * assertEquals(at(layout.starts, 4), [0, 1, 3, 4]);
 * assertEquals(at(layout.positions, 4), [1, 0, 2, 3]);
 * ```
 */
export function embeddingIndex(
  tokens: Int32Array,
  out: Int32Array,
  layout: IntLayout,
): void {
  const n = tokens.length;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => tokens[a] - tokens[b] || a - b);
  let count = 0;
  for (let q = 0; q < n; q++) {
    const tok = tokens[order[q]];
    if (q === 0 || tok !== tokens[order[q - 1]]) {
      out[layout.uniq + count] = tok;
      out[layout.starts + count] = q;
      count++;
    }
    out[layout.positions + q] = order[q];
  }
  out[layout.starts + count] = n;
  out[layout.count] = count;
}

/**
 * RoPE tables [T, hd/2] exactly as the tfjs model computes them (f64 → f32):
 * angle(p, j) = p · 10000^(−2j / hd).
 *
 * @param length T.
 * @param headDim hd.
 * @returns cos and sin, row-major (T, hd/2).
 *
 * @example
 * ```ts
 * import { ropeTables } from "@d3pm/webgpu/plan";
 * import { assertEquals } from "@std/assert";
 * const { cos, sin } = ropeTables(2, 4);
 * assertEquals(cos.length, 4);
 * assertEquals([cos[0], sin[0]], [1, 0]); // position 0: no rotation
 * assertEquals(cos[2], Math.fround(Math.cos(1))); // position 1, j = 0
 * ```
 */
export function ropeTables(
  length: number,
  headDim: number,
): { cos: Float32Array<ArrayBuffer>; sin: Float32Array<ArrayBuffer> } {
  const half = headDim / 2;
  const cos = new Float32Array(length * half);
  const sin = new Float32Array(length * half);
  for (let p = 0; p < length; p++) {
    for (let j = 0; j < half; j++) {
      const angle = p * Math.pow(10000, (-2 * j) / headDim);
      cos[p * half + j] = Math.cos(angle);
      sin[p * half + j] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * Sinusoidal features of t as the tfjs model computes them in float32
 * (`timeFeatures`): args = f32(f32(1000·t)·f32(freq_j)), [cos | sin].
 *
 * @param t The diffusion time of each batch row, in [0, 1].
 * @param dim The features per row (dTime).
 * @returns (B, dim), row-major.
 *
 * @example
 * ```ts
 * import { timeFeatures } from "@d3pm/webgpu/plan";
 * import { assertEquals } from "@std/assert";
 * const f = timeFeatures([0, 0.5], 4);
 * assertEquals(f.length, 8);
 * assertEquals(Array.from(f.subarray(0, 4)), [1, 1, 0, 0]); // t = 0
 * ```
 */
export function timeFeatures(
  t: ArrayLike<number>,
  dim: number,
): Float32Array<ArrayBuffer> {
  const half = dim / 2;
  const out = new Float32Array(t.length * dim);
  for (let b = 0; b < t.length; b++) {
    const scaled = Math.fround(Math.fround(t[b]) * 1000);
    for (let j = 0; j < half; j++) {
      const freq = Math.fround(Math.exp(-Math.log(10000) * j / half));
      const arg = Math.fround(scaled * freq);
      out[b * dim + j] = Math.cos(arg);
      out[b * dim + half + j] = Math.sin(arg);
    }
  }
  return out;
}
