// The engine's two memory tables (llm.c style), each entry with its shape:
// the parameter table (one buffer; gradients and Adam moments mirror it) and
// the activation arena for a fixed (batch, length). Private.

import type { StoredTensor } from "@d3pm/core";
import { type ModelConfig, parameterShapes } from "@d3pm/transformer";
import type { Fail } from "./_generation_checks.ts";

/** One parameter tensor inside the parameter buffer. */
export interface ParameterEntry {
  name: string;
  shape: number[];
  /** Offset in floats. */
  offset: number;
  size: number;
  /** Decoupled weight decay applies (rank ≥ 2, as the tfjs AdamW default). */
  decay: boolean;
}

/** The parameter table. */
export interface ParameterTable {
  entries: ParameterEntry[];
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
  ln1: number; // (N, d)
  ln1Mean: number; // (N)
  ln1Rstd: number; // (N)
  qkv: number; // (N, 3d), q and k after RoPE
  atty: number; // (N, d) attention output before c_proj
  lse: number; // (B, H, T) log-sum-exp per query
  resMid: number; // (N, d) residual after attention
  ln2: number; // (N, d)
  ln2Mean: number;
  ln2Rstd: number;
  fcPre: number; // (N, dMlp) before GELU
  fcGelu: number; // (N, dMlp)
  resOut: number; // (N, d) residual after the MLP
  // Time conditioning only (-1 otherwise):
  mods: number; // (B, 6d) shift, scale, gate (attention), shift, scale, gate (MLP)
  attnOut: number; // (N, d) attention branch before its gate
  mlpOut: number; // (N, d) MLP branch before its gate
}

/** The activation arena for N = B·T rows. */
export interface Arena {
  res0: number; // (N, d) embeddings
  layers: LayerActs[];
  lnf: number; // (N, d)
  lnfMean: number;
  lnfRstd: number;
  ropeCos: number; // (T, hd/2)
  ropeSin: number;
  // Time conditioning only (-1 otherwise):
  tfeat: number; // (B, dTime) sinusoidal features of t (written by the host)
  hidPre: number; // (B, dTime) time MLP hidden, before SiLU
  hid: number; // (B, dTime)
  condPre: number; // (B, dTime) time MLP output, before SiLU
  cond: number; // (B, dTime) SiLU of it: what every adaLN projection reads
  modsF: number; // (B, 2d) shift, scale after ln_f
  // Training only (-1 otherwise):
  weights: number; // (N) per-token loss weights
  rowLoss: number; // (N)
  logits: number; // (R, V) one chunk of rows
  chunkRows: number; // R
  dres: number; // (N, d) gradient of the residual stream
  dln: number; // (N, d)
  datty: number; // (N, d)
  dqkv: number; // (N, 3d)
  dfc: number; // (N, dMlp)
  attD: number; // (B, H, T) dy·y per query
  normPartial: number; // (256)
  dmods: number; // (B, 6d) one layer's modulation gradient (time conditioning)
  dcond: number; // (B, dTime)
  dhid: number; // (B, dTime)
  dbr: number; // (N, d) gradient of a gated branch
  size: number; // floats
}

/** Int inputs: tokens, targets and the embedding-gradient index (CSR). */
export interface IntLayout {
  tokens: number; // (N)
  targets: number; // (N)
  count: number; // (1) distinct tokens
  uniq: number; // (N)
  starts: number; // (N + 1)
  positions: number; // (N)
  size: number;
}

/**
 * What a plan records: the forward to logits, the forward with the weighted
 * cross-entropy head only (scoring), or the whole training step.
 */
export type PlanMode = "forward" | "score" | "training";

/** Plan the arena once for a fixed shape. */
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

/** Plan the int inputs. */
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

/** RoPE tables [T, hd/2] exactly as the tfjs model computes them (f64 → f32). */
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
