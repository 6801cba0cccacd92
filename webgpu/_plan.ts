// Recording the model as a fixed list of dispatches for one (batch, length):
// every layer is a `*Forward` / `*Backward` pair of recording calls, side by
// side, with the shapes they touch; the model's forward and backward are
// those calls in order. Uniform blocks and bind groups are built once, in
// `finish()`. Private.

import type { ModelConfig } from "@d3pm/transformer";
import {
  ADAMW,
  attentionBackwardKeyValueSource,
  attentionBackwardQuerySource,
  attentionForwardSource,
  ATTN_BLOCK,
  COLUMN_SUM,
  CROSS_ENTROPY,
  DROPOUT_BACKWARD,
  EMA,
  embedBackwardWpeSource,
  embedBackwardWteSource,
  embedForwardSource,
  type Epilogue,
  gateBackwardSource,
  LAYERNORM_BACKWARD,
  LAYERNORM_FORWARD,
  LAYERNORM_PARAMS_BACKWARD,
  LOSS_REDUCE,
  matmulSource,
  type MatmulTile,
  MODULATE_BACKWARD,
  NORM_FINAL,
  NORM_GROUPS,
  NORM_PARTIAL,
  ROPE,
  S,
  SILU_BACKWARD,
} from "./_wgsl.ts";
import type { Arena, IntLayout, ParameterTable } from "./_layout.ts";

/** The engine-wide GPU objects a plan records against. */
export interface Kit {
  device: GPUDevice;
  /** Matmul tile: fixed, or `auto` (128 when that still gives ≥ 256 workgroups). */
  tile: "auto" | MatmulTile;
  layout: GPUBindGroupLayout;
  pipeline(key: string, source: () => string): GPUComputePipeline;
  dummy: GPUBuffer;
}

/** Engine-wide buffers. */
export interface Globals {
  params: GPUBuffer;
  grads: GPUBuffer | null;
  m: GPUBuffer | null;
  v: GPUBuffer | null;
  ema: GPUBuffer | null;
  scalars: GPUBuffer | null;
}

/** One prepared dispatch. */
export interface Dispatch {
  /** The pipeline's key, e.g. `mm:false:true:store:false` (for profiles). */
  key: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  x: number;
  y: number;
}

interface Pending {
  key: string;
  pipeline: GPUComputePipeline;
  slot: number;
  buffers: (GPUBuffer | null)[]; // bindings 1..7
  x: number;
  y: number;
}

type Word = number | { f: number };

const MAX_GROUPS = 65535;

function grid(groups: number): [number, number] {
  const x = Math.min(groups, MAX_GROUPS);
  return [x, Math.ceil(groups / x)];
}

/** Operand of a matmul: a buffer, an offset and a row stride (floats). */
interface Operand {
  buf: GPUBuffer;
  off: number;
  ld: number;
}

/** Builds and holds the dispatch lists of one shape. */
export class Recorder {
  #kit: Kit;
  #g: Globals;
  #words: Word[][] = [];
  #lists = new Map<string, Pending[]>();
  #current: Pending[] = [];
  uniform: GPUBuffer | null = null;
  readonly act: GPUBuffer;
  readonly ints: GPUBuffer;
  /** Record the dropout variants (training with dropout > 0). */
  readonly dropout: boolean;

  constructor(
    kit: Kit,
    globals: Globals,
    act: GPUBuffer,
    ints: GPUBuffer,
    dropout = false,
  ) {
    this.#kit = kit;
    this.#g = globals;
    this.act = act;
    this.ints = ints;
    this.dropout = dropout;
  }

  /** The parameter buffer. */
  get params(): GPUBuffer {
    return this.#g.params;
  }

  /** The gradient buffer (training plans only). */
  get grads(): GPUBuffer {
    if (!this.#g.grads) throw new Error("no gradient buffer in this plan");
    return this.#g.grads;
  }

  /** Start recording the named list. */
  begin(name: string): void {
    this.#current = [];
    this.#lists.set(name, this.#current);
  }

  #push(
    key: string,
    source: () => string,
    words: Word[],
    buffers: Record<number, GPUBuffer | null>,
    x: number,
    y = 1,
  ): void {
    const slot = this.#words.length;
    this.#words.push(words);
    const list: (GPUBuffer | null)[] = [];
    for (let b = 1; b <= 7; b++) list.push(buffers[b] ?? null);
    this.#current.push({
      key,
      pipeline: this.#kit.pipeline(key, source),
      slot,
      buffers: list,
      x,
      y,
    });
  }

  // Non-matmul kernels bind the standard slots.
  #std(): Record<number, GPUBuffer | null> {
    const g = this.#g;
    return {
      1: this.act,
      2: g.params,
      3: g.grads,
      4: g.m,
      5: g.v,
      6: this.ints,
      7: g.scalars,
    };
  }

  /** C[M, N] (=, +=, epilogue) op(A)[M, K] · op(B)[K, N]. */
  matmul(
    dims: { m: number; n: number; k: number },
    a: Operand & { trans?: boolean },
    b: Operand & { trans?: boolean },
    c: Operand,
    epilogue: Epilogue,
    extra: {
      bias?: { buf: GPUBuffer; off: number };
      e?: Operand;
      gate?: { off: number; stride: number; rows: number; aux: number };
    } = {},
  ): void {
    const ta = a.trans ?? false, tb = b.trans ?? false;
    // Residual branches take dropout (site: the output's offset).
    const drop = this.dropout &&
      (epilogue === "bias_residual" || epilogue === "bias_gate_residual");
    const big = Math.ceil(dims.m / 128) * Math.ceil(dims.n / 128) >= 256;
    const t = this.#kit.tile === "auto" ? (big ? 128 : 64) : this.#kit.tile;
    this.#push(
      `mm${t}:${ta}:${tb}:${epilogue}:${drop}`,
      () => matmulSource(ta, tb, epilogue, drop, t),
      [
        dims.m,
        dims.n,
        dims.k,
        a.ld,
        b.ld,
        c.ld,
        a.off,
        b.off,
        c.off,
        extra.bias?.off ?? 0,
        extra.e?.off ?? 0,
        extra.e?.ld ?? 0,
        extra.gate?.off ?? 0,
        extra.gate?.stride ?? 0,
        extra.gate?.rows ?? 1,
        extra.gate?.aux ?? 0,
      ],
      {
        1: a.buf,
        2: b.buf,
        3: c.buf,
        4: extra.bias?.buf ?? null,
        5: extra.e?.buf ?? null,
        6: extra.gate ? this.act : null,
        7: drop ? this.#g.scalars : null,
      },
      Math.ceil(dims.n / t),
      Math.ceil(dims.m / t),
    );
  }

  // x (rows, d) → y, mean, rstd.
  layernormForward(
    rows: number,
    d: number,
    x: number,
    y: number,
    w: number,
    b: number,
    mean: number,
    rstd: number,
    mod?: { shift: number; stride: number; length: number },
  ): void {
    this.#push(
      "ln_fwd",
      () => LAYERNORM_FORWARD,
      [
        rows,
        d,
        x,
        y,
        w,
        b,
        mean,
        rstd,
        mod ? 1 : 0,
        mod?.length ?? 1,
        mod?.shift ?? 0,
        mod?.stride ?? 0,
      ],
      this.#std(),
      ...grid(rows),
    );
  }

  // dy (rows, d) → dx (written, or added: the residual gradient), gw, gb.
  layernormBackward(
    rows: number,
    d: number,
    s: {
      dy: number;
      x: number;
      mean: number;
      rstd: number;
      w: number;
      dx: number;
      add: boolean;
      gw: number;
      gb: number;
    },
  ): void {
    this.#push(
      "ln_bwd",
      () => LAYERNORM_BACKWARD,
      [rows, d, s.dy, s.x, s.mean, s.rstd, s.w, s.dx, s.add ? 1 : 0],
      this.#std(),
      ...grid(rows),
    );
    this.#push(
      "ln_params_bwd",
      () => LAYERNORM_PARAMS_BACKWARD,
      [rows, d, s.dy, s.x, s.mean, s.rstd, s.gw, s.gb],
      this.#std(),
      Math.ceil(d / 16),
    );
  }

  // adaLN gate: out = res + br·(1 + g_b) → dg (into dmods), dbr.
  gateBackward(
    batch: number,
    length: number,
    d: number,
    s: {
      dout: number;
      br: number;
      g: number;
      stride: number;
      dbr: number;
      dg: number;
      site: number;
    },
  ): void {
    const drop = this.dropout;
    this.#push(
      `gate_bwd:${drop}`,
      () => gateBackwardSource(drop),
      [batch * d, d, length, s.dout, s.br, s.g, s.stride, s.dbr, s.dg, s.site],
      this.#std(),
      Math.ceil((batch * d) / 64),
    );
  }

  // adaLN modulation: h = LN(x)·(1 + scale_b) + shift_b → dshift, dscale
  // (into dmods), and dh ← dLN(x) in place.
  modulateBackward(
    batch: number,
    length: number,
    d: number,
    s: {
      dh: number;
      x: number;
      mean: number;
      rstd: number;
      w: number;
      bias: number;
      shift: number;
      stride: number;
      dshift: number;
    },
  ): void {
    this.#push(
      "modulate_bwd",
      () => MODULATE_BACKWARD,
      [
        batch * d,
        d,
        length,
        s.dh,
        s.x,
        s.mean,
        s.rstd,
        s.w,
        s.bias,
        s.shift,
        s.stride,
        s.dshift,
      ],
      this.#std(),
      Math.ceil((batch * d) / 64),
    );
  }

  // A residual branch's dropout backward: dst = src · mask(site).
  dropoutBackward(n: number, site: number, src: number, dst: number): void {
    this.#push(
      "dropout_bwd",
      () => DROPOUT_BACKWARD,
      [n, site, src, dst],
      this.#std(),
      ...grid(Math.ceil(n / 256)),
    );
  }

  // dx ← dx·silu'(pre), n values.
  siluBackward(n: number, dx: number, pre: number): void {
    this.#push(
      "silu_bwd",
      () => SILU_BACKWARD,
      [n, dx, pre],
      this.#std(),
      Math.ceil(n / 64),
    );
  }

  // Bias gradient: column sums of x (rows, cols).
  columnSum(rows: number, cols: number, x: number, out: number): void {
    this.#push(
      "colsum",
      () => COLUMN_SUM,
      [rows, cols, cols, x, out],
      this.#std(),
      Math.ceil(cols / 16),
    );
  }

  // tokens (N) → x (N, d) = wte[tok] (+ wpe[t]).
  embedForward(
    n: number,
    d: number,
    length: number,
    tokens: number,
    wte: number,
    wpe: number,
    out: number,
  ): void {
    const drop = this.dropout;
    this.#push(
      `embed_fwd:${drop}`,
      () => embedForwardSource(drop),
      [n * d, d, length, tokens, wte, Math.max(wpe, 0), wpe >= 0 ? 1 : 0, out],
      this.#std(),
      ...grid(Math.ceil((n * d) / 256)),
    );
  }

  // dx (N, d) → wte grad (scatter-add by the CSR index) and wpe grad.
  embedBackward(
    batch: number,
    length: number,
    d: number,
    dx: number,
    ints: IntLayout,
    gWte: number,
    gWpe: number,
    site: number,
  ): void {
    const n = batch * length, drop = this.dropout;
    this.#push(
      `embed_bwd_wte:${drop}`,
      () => embedBackwardWteSource(drop),
      [
        n * d,
        d,
        dx,
        ints.count,
        ints.uniq,
        ints.starts,
        ints.positions,
        gWte,
        site,
      ],
      this.#std(),
      ...grid(Math.ceil((n * d) / 256)),
    );
    if (gWpe < 0) return;
    this.#push(
      `embed_bwd_wpe:${drop}`,
      () => embedBackwardWpeSource(drop),
      [length * d, d, length, batch, dx, gWpe, site],
      this.#std(),
      ...grid(Math.ceil((length * d) / 256)),
    );
  }

  // In place on the q and k thirds of qkv (N, 3d); backward = transpose.
  rope(
    n: number,
    length: number,
    heads: number,
    hd: number,
    qkv: number,
    cos: number,
    sin: number,
    backward: boolean,
  ): void {
    this.#push(
      "rope",
      () => ROPE,
      [
        (n * heads * hd) / 2,
        length,
        heads,
        hd,
        qkv,
        cos,
        sin,
        backward ? 1 : 0,
      ],
      this.#std(),
      ...grid(Math.ceil((n * heads * hd) / 2 / 256)),
    );
  }

  // qkv (B, T, 3d) → y (B, T, d), lse (B, H, T).
  attentionForward(
    c: ModelConfig,
    batch: number,
    length: number,
    qkv: number,
    y: number,
    lse: number,
  ): void {
    const hd = c.dModel / c.nHead, causal = c.kind === "causal";
    const rows = batch * c.nHead * length;
    this.#push(
      `attn_fwd:${hd}:${causal}:${this.dropout}`,
      () => attentionForwardSource(hd, causal, this.dropout),
      [rows, length, c.nHead, qkv, y, lse, { f: 1 / Math.sqrt(hd) }],
      this.#std(),
      Math.ceil(length / ATTN_BLOCK),
      batch * c.nHead,
    );
  }

  // dy (B, T, d) → dqkv (B, T, 3d), using qkv, y, lse; D (B, H, T) scratch.
  attentionBackward(
    c: ModelConfig,
    batch: number,
    length: number,
    s: {
      qkv: number;
      y: number;
      lse: number;
      dy: number;
      dqkv: number;
      D: number;
    },
  ): void {
    const hd = c.dModel / c.nHead, causal = c.kind === "causal";
    const rows = batch * c.nHead * length;
    const words: Word[] = [
      rows,
      length,
      c.nHead,
      s.qkv,
      s.y,
      s.lse,
      { f: 1 / Math.sqrt(hd) },
      s.dy,
      s.dqkv,
      s.D,
    ];
    this.#push(
      `attn_bwd_q:${hd}:${causal}:${this.dropout}`,
      () => attentionBackwardQuerySource(hd, causal, this.dropout),
      words,
      this.#std(),
      Math.ceil(length / ATTN_BLOCK),
      batch * c.nHead,
    );
    this.#push(
      `attn_bwd_kv:${hd}:${causal}:${this.dropout}`,
      () => attentionBackwardKeyValueSource(hd, causal, this.dropout),
      words,
      this.#std(),
      Math.ceil(length / ATTN_BLOCK),
      batch * c.nHead,
    );
  }

  // logits (rows, V) → their gradient in place, per-row loss.
  crossEntropy(
    rows: number,
    vocab: number,
    logits: number,
    rowStart: number,
    targets: number,
    weights: number,
    rowLoss: number,
    exclude: number,
  ): void {
    this.#push(
      "ce",
      () => CROSS_ENTROPY,
      [rows, vocab, logits, rowStart, targets, weights, rowLoss, exclude],
      this.#std(),
      ...grid(rows),
    );
  }

  lossReduce(n: number, rowLoss: number, slot: number): void {
    this.#push(
      "loss_reduce",
      () => LOSS_REDUCE,
      [n, rowLoss, slot],
      this.#std(),
      1,
    );
  }

  gradNorm(n: number, partial: number): void {
    this.#push(
      "norm_partial",
      () => NORM_PARTIAL,
      [n, 0, partial],
      this.#std(),
      NORM_GROUPS,
    );
    this.#push("norm_final", () => NORM_FINAL, [partial], this.#std(), 1);
  }

  adamw(
    n: number,
    decayEnd: number,
    h: { beta1: number; beta2: number; eps: number; weightDecay: number },
  ): void {
    this.#push(
      "adamw",
      () => ADAMW,
      [n, decayEnd, 0, 0, { f: h.beta1 }, { f: h.beta2 }, { f: h.eps }, {
        f: h.weightDecay,
      }],
      this.#std(),
      Math.min(Math.ceil(n / 256), 4096),
    );
  }

  ema(n: number): void {
    this.#push(
      "ema",
      () => EMA,
      [n],
      { ...this.#std(), 4: this.#g.ema },
      Math.min(Math.ceil(n / 256), 4096),
    );
  }

  /** Write the uniform blocks and build every bind group. */
  finish(): Map<string, Dispatch[]> {
    const device = this.#kit.device;
    const bytes = new ArrayBuffer(Math.max(1, this.#words.length) * 256);
    const u32 = new Uint32Array(bytes), f32 = new Float32Array(bytes);
    this.#words.forEach((words, slot) => {
      if (words.length > 16) throw new Error("uniform block over 16 words");
      words.forEach((w, i) => {
        if (typeof w === "number") {
          if (!(Number.isInteger(w) && w >= 0 && w < 2 ** 32)) {
            throw new RangeError(`uniform word ${i} is not a u32: ${w}`);
          }
          u32[slot * 64 + i] = w;
        } else f32[slot * 64 + i] = w.f;
      });
    });
    this.uniform = device.createBuffer({
      size: bytes.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(this.uniform, 0, bytes);
    const out = new Map<string, Dispatch[]>();
    for (const [name, list] of this.#lists) {
      out.set(
        name,
        list.map((p) => ({
          key: p.key,
          pipeline: p.pipeline,
          x: p.x,
          y: p.y,
          bindGroup: device.createBindGroup({
            layout: this.#kit.layout,
            entries: [
              {
                binding: 0,
                resource: {
                  buffer: this.uniform!,
                  offset: p.slot * 256,
                  size: 64,
                },
              },
              ...p.buffers.map((buf, i) => ({
                binding: i + 1,
                resource: { buffer: buf ?? this.#kit.dummy },
              })),
            ],
          }),
        })),
      );
    }
    return out;
  }
}

/** Record the model's forward (to the final LayerNorm) into `rec`. */
export function recordForward(
  rec: Recorder,
  c: ModelConfig,
  t: ParameterTable,
  a: Arena,
  ints: IntLayout,
  batch: number,
  length: number,
): void {
  const n = batch * length, d = c.dModel, m = c.dMlp, hd = d / c.nHead;
  const p = (name: string) => t.byName.get(name)!.offset;
  const params = rec.params;
  const act = rec.act;
  const timed = c.timeConditioning, dt = c.dTime;
  if (timed) {
    // cond = SiLU(SiLU(feats · Wfc + b) · Wp + b) (B, dTime); every adaLN
    // projection reads it: mods_i = cond · ada_i + b (B, 6d), modsF (B, 2d).
    rec.matmul(
      { m: batch, n: dt, k: dt },
      { buf: act, off: a.tfeat, ld: dt },
      { buf: params, off: p("time.mlp.c_fc.weight"), ld: dt },
      { buf: act, off: a.hid, ld: dt },
      "bias_silu",
      {
        bias: { buf: params, off: p("time.mlp.c_fc.bias") },
        e: { buf: act, off: a.hidPre, ld: dt },
      },
    );
    rec.matmul(
      { m: batch, n: dt, k: dt },
      { buf: act, off: a.hid, ld: dt },
      { buf: params, off: p("time.mlp.c_proj.weight"), ld: dt },
      { buf: act, off: a.cond, ld: dt },
      "bias_silu",
      {
        bias: { buf: params, off: p("time.mlp.c_proj.bias") },
        e: { buf: act, off: a.condPre, ld: dt },
      },
    );
    const ada = (prefix: string, width: number, out: number) =>
      rec.matmul(
        { m: batch, n: width, k: dt },
        { buf: act, off: a.cond, ld: dt },
        { buf: params, off: p(`${prefix}.weight`), ld: width },
        { buf: act, off: out, ld: width },
        "bias",
        { bias: { buf: params, off: p(`${prefix}.bias`) } },
      );
    a.layers.forEach((l, i) => ada(`h.${i}.ada`, 6 * d, l.mods));
    ada("ln_f.ada", 2 * d, a.modsF);
  }
  const mod = (shift: number, stride: number) =>
    timed ? { shift, stride, length } : undefined;
  rec.embedForward(
    n,
    d,
    length,
    ints.tokens,
    p("wte.weight"),
    c.positions === "learned" ? p("wpe.weight") : -1,
    a.res0,
  );
  let res = a.res0;
  a.layers.forEach((l, i) => {
    const w = (s: string) => p(`h.${i}.${s}`);
    rec.layernormForward(
      n,
      d,
      res,
      l.ln1,
      w("ln_1.weight"),
      w("ln_1.bias"),
      l.ln1Mean,
      l.ln1Rstd,
      mod(l.mods, 6 * d),
    );
    rec.matmul( // qkv (N, 3d) = ln1 (N, d) · Wqkv (d, 3d) + b
      { m: n, n: 3 * d, k: d },
      { buf: act, off: l.ln1, ld: d },
      { buf: params, off: w("attn.c_attn.weight"), ld: 3 * d },
      { buf: act, off: l.qkv, ld: 3 * d },
      "bias",
      { bias: { buf: params, off: w("attn.c_attn.bias") } },
    );
    if (c.positions === "rotary") {
      rec.rope(n, length, c.nHead, hd, l.qkv, a.ropeCos, a.ropeSin, false);
    }
    rec.attentionForward(c, batch, length, l.qkv, l.atty, l.lse);
    rec.matmul( // resMid = res + (atty · Wproj + b) [· (1 + gate)]
      { m: n, n: d, k: d },
      { buf: act, off: l.atty, ld: d },
      { buf: params, off: w("attn.c_proj.weight"), ld: d },
      { buf: act, off: l.resMid, ld: d },
      timed ? "bias_gate_residual" : "bias_residual",
      {
        bias: { buf: params, off: w("attn.c_proj.bias") },
        e: { buf: act, off: res, ld: d },
        gate: timed
          ? { off: l.mods + 2 * d, stride: 6 * d, rows: length, aux: l.attnOut }
          : undefined,
      },
    );
    rec.layernormForward(
      n,
      d,
      l.resMid,
      l.ln2,
      w("ln_2.weight"),
      w("ln_2.bias"),
      l.ln2Mean,
      l.ln2Rstd,
      mod(l.mods + 3 * d, 6 * d),
    );
    rec.matmul( // fcGelu = gelu(fcPre), fcPre = ln2 · Wfc + b
      { m: n, n: m, k: d },
      { buf: act, off: l.ln2, ld: d },
      { buf: params, off: w("mlp.c_fc.weight"), ld: m },
      { buf: act, off: l.fcGelu, ld: m },
      "bias_gelu",
      {
        bias: { buf: params, off: w("mlp.c_fc.bias") },
        e: { buf: act, off: l.fcPre, ld: m },
      },
    );
    rec.matmul( // resOut = resMid + (fcGelu · Wp + b) [· (1 + gate)]
      { m: n, n: d, k: m },
      { buf: act, off: l.fcGelu, ld: m },
      { buf: params, off: w("mlp.c_proj.weight"), ld: d },
      { buf: act, off: l.resOut, ld: d },
      timed ? "bias_gate_residual" : "bias_residual",
      {
        bias: { buf: params, off: w("mlp.c_proj.bias") },
        e: { buf: act, off: l.resMid, ld: d },
        gate: timed
          ? { off: l.mods + 5 * d, stride: 6 * d, rows: length, aux: l.mlpOut }
          : undefined,
      },
    );
    res = l.resOut;
  });
  rec.layernormForward(
    n,
    d,
    res,
    a.lnf,
    p("ln_f.weight"),
    p("ln_f.bias"),
    a.lnfMean,
    a.lnfRstd,
    mod(a.modsF, 2 * d),
  );
}

/**
 * Record an evaluation after the forward: the chunked head and weighted
 * cross-entropy only, its sum into the evaluation accumulator.
 */
export function recordEvaluation(
  rec: Recorder,
  c: ModelConfig,
  t: ParameterTable,
  a: Arena,
  ints: IntLayout,
  n: number,
  exclude: number,
): void {
  const d = c.dModel, v = c.vocabSize;
  const wte = t.byName.get("wte.weight")!.offset;
  for (let r0 = 0; r0 < n; r0 += a.chunkRows) {
    const rows = Math.min(a.chunkRows, n - r0);
    rec.matmul( // logits (R, V) = lnf (R, d) · wteᵀ
      { m: rows, n: v, k: d },
      { buf: rec.act, off: a.lnf + r0 * d, ld: d },
      { buf: rec.params, off: wte, ld: d, trans: true },
      { buf: rec.act, off: a.logits, ld: v },
      "store",
    );
    rec.crossEntropy(
      rows,
      v,
      a.logits,
      r0,
      ints.targets,
      a.weights,
      a.rowLoss,
      exclude,
    );
  }
  rec.lossReduce(n, a.rowLoss, S.evalSum);
}

/**
 * Record the training pass after the forward: the chunked head with
 * weighted cross-entropy, the loss sum, and the whole backward.
 */
export function recordBackward(
  rec: Recorder,
  c: ModelConfig,
  t: ParameterTable,
  a: Arena,
  ints: IntLayout,
  batch: number,
  length: number,
  exclude: number,
): void {
  const n = batch * length, d = c.dModel, m = c.dMlp, v = c.vocabSize;
  const hd = d / c.nHead;
  const p = (name: string) => t.byName.get(name)!.offset;
  const params = rec.params, grads = rec.grads, act = rec.act;
  // Head, R rows at a time: logits → CE (in place to dlogits) → dlnf, dwte.
  for (let r0 = 0; r0 < n; r0 += a.chunkRows) {
    const rows = Math.min(a.chunkRows, n - r0);
    rec.matmul( // logits (R, V) = lnf (R, d) · wteᵀ
      { m: rows, n: v, k: d },
      { buf: act, off: a.lnf + r0 * d, ld: d },
      { buf: params, off: p("wte.weight"), ld: d, trans: true },
      { buf: act, off: a.logits, ld: v },
      "store",
    );
    rec.crossEntropy(
      rows,
      v,
      a.logits,
      r0,
      ints.targets,
      a.weights,
      a.rowLoss,
      exclude,
    );
    rec.matmul( // dlnf (R, d) = dlogits (R, V) · wte (V, d)
      { m: rows, n: d, k: v },
      { buf: act, off: a.logits, ld: v },
      { buf: params, off: p("wte.weight"), ld: d },
      { buf: act, off: a.dln + r0 * d, ld: d },
      "store",
    );
    rec.matmul( // dwte (V, d) += dlogitsᵀ · lnf
      { m: v, n: d, k: rows },
      { buf: act, off: a.logits, ld: v, trans: true },
      { buf: act, off: a.lnf + r0 * d, ld: d },
      { buf: grads, off: p("wte.weight"), ld: d },
      "accumulate",
    );
  }
  rec.lossReduce(n, a.rowLoss, S.lossSum);
  const last = a.layers.length > 0
    ? a.layers[a.layers.length - 1].resOut
    : a.res0;
  const timed = c.timeConditioning, dt = c.dTime;
  // adaLN projection backward: dcond (+)= dmods · adaᵀ, dW = condᵀ · dmods, db.
  const adaBackward = (prefix: string, width: number, first: boolean) => {
    rec.matmul(
      { m: batch, n: dt, k: width },
      { buf: act, off: a.dmods, ld: width },
      { buf: params, off: p(`${prefix}.weight`), ld: width, trans: true },
      { buf: act, off: a.dcond, ld: dt },
      first ? "store" : "accumulate",
    );
    rec.matmul(
      { m: dt, n: width, k: batch },
      { buf: act, off: a.cond, ld: dt, trans: true },
      { buf: act, off: a.dmods, ld: width },
      { buf: grads, off: p(`${prefix}.weight`), ld: width },
      "store",
    );
    rec.columnSum(batch, width, a.dmods, p(`${prefix}.bias`));
  };
  if (timed) {
    rec.modulateBackward(batch, length, d, {
      dh: a.dln,
      x: last,
      mean: a.lnfMean,
      rstd: a.lnfRstd,
      w: p("ln_f.weight"),
      bias: p("ln_f.bias"),
      shift: a.modsF,
      stride: 2 * d,
      dshift: a.dmods,
    });
    adaBackward("ln_f.ada", 2 * d, true);
  }
  rec.layernormBackward(n, d, {
    dy: a.dln,
    x: last,
    mean: a.lnfMean,
    rstd: a.lnfRstd,
    w: p("ln_f.weight"),
    dx: a.dres,
    add: false,
    gw: p("ln_f.weight"),
    gb: p("ln_f.bias"),
  });
  for (let i = a.layers.length - 1; i >= 0; i--) {
    const l = a.layers[i];
    const res = i === 0 ? a.res0 : a.layers[i - 1].resOut;
    const w = (s: string) => p(`h.${i}.${s}`);
    // MLP: resOut = resMid + (fcGelu · Wp + b) [· (1 + gate)].
    let dm = a.dres; // gradient of the MLP branch
    if (timed) {
      rec.gateBackward(batch, length, d, {
        dout: a.dres,
        br: l.mlpOut,
        g: l.mods + 5 * d,
        stride: 6 * d,
        dbr: a.dbr,
        dg: a.dmods + 5 * d,
        site: l.resOut,
      });
      dm = a.dbr;
    } else if (rec.dropout) {
      rec.dropoutBackward(n * d, l.resOut, a.dres, a.dbr);
      dm = a.dbr;
    }
    rec.matmul( // dfc (N, m) = dm · Wpᵀ ⊙ gelu'(fcPre)
      { m: n, n: m, k: d },
      { buf: act, off: dm, ld: d },
      { buf: params, off: w("mlp.c_proj.weight"), ld: d, trans: true },
      { buf: act, off: a.dfc, ld: m },
      "gelu_backward",
      { e: { buf: act, off: l.fcPre, ld: m } },
    );
    rec.matmul( // dWp (m, d) = fcGeluᵀ · dm
      { m: m, n: d, k: n },
      { buf: act, off: l.fcGelu, ld: m, trans: true },
      { buf: act, off: dm, ld: d },
      { buf: grads, off: w("mlp.c_proj.weight"), ld: d },
      "store",
    );
    rec.columnSum(n, d, dm, w("mlp.c_proj.bias"));
    rec.matmul( // dln (N, d) = dfc · Wfcᵀ
      { m: n, n: d, k: m },
      { buf: act, off: a.dfc, ld: m },
      { buf: params, off: w("mlp.c_fc.weight"), ld: m, trans: true },
      { buf: act, off: a.dln, ld: d },
      "store",
    );
    rec.matmul( // dWfc (d, m) = ln2ᵀ · dfc
      { m: d, n: m, k: n },
      { buf: act, off: l.ln2, ld: d, trans: true },
      { buf: act, off: a.dfc, ld: m },
      { buf: grads, off: w("mlp.c_fc.weight"), ld: m },
      "store",
    );
    rec.columnSum(n, m, a.dfc, w("mlp.c_fc.bias"));
    if (timed) {
      rec.modulateBackward(batch, length, d, {
        dh: a.dln,
        x: l.resMid,
        mean: l.ln2Mean,
        rstd: l.ln2Rstd,
        w: w("ln_2.weight"),
        bias: w("ln_2.bias"),
        shift: l.mods + 3 * d,
        stride: 6 * d,
        dshift: a.dmods + 3 * d,
      });
    }
    rec.layernormBackward(n, d, {
      dy: a.dln,
      x: l.resMid,
      mean: l.ln2Mean,
      rstd: l.ln2Rstd,
      w: w("ln_2.weight"),
      dx: a.dres,
      add: true,
      gw: w("ln_2.weight"),
      gb: w("ln_2.bias"),
    });
    // Attention: resMid = res + (atty · Wproj + b) [· (1 + gate)].
    let da = a.dres; // gradient of the attention branch
    if (timed) {
      rec.gateBackward(batch, length, d, {
        dout: a.dres,
        br: l.attnOut,
        g: l.mods + 2 * d,
        stride: 6 * d,
        dbr: a.dbr,
        dg: a.dmods + 2 * d,
        site: l.resMid,
      });
      da = a.dbr;
    } else if (rec.dropout) {
      rec.dropoutBackward(n * d, l.resMid, a.dres, a.dbr);
      da = a.dbr;
    }
    rec.matmul( // datty (N, d) = da · Wprojᵀ
      { m: n, n: d, k: d },
      { buf: act, off: da, ld: d },
      { buf: params, off: w("attn.c_proj.weight"), ld: d, trans: true },
      { buf: act, off: a.datty, ld: d },
      "store",
    );
    rec.matmul( // dWproj (d, d) = attyᵀ · da
      { m: d, n: d, k: n },
      { buf: act, off: l.atty, ld: d, trans: true },
      { buf: act, off: da, ld: d },
      { buf: grads, off: w("attn.c_proj.weight"), ld: d },
      "store",
    );
    rec.columnSum(n, d, da, w("attn.c_proj.bias"));
    rec.attentionBackward(c, batch, length, {
      qkv: l.qkv,
      y: l.atty,
      lse: l.lse,
      dy: a.datty,
      dqkv: a.dqkv,
      D: a.attD,
    });
    if (c.positions === "rotary") {
      rec.rope(n, length, c.nHead, hd, a.dqkv, a.ropeCos, a.ropeSin, true);
    }
    rec.matmul( // dln (N, d) = dqkv · Wqkvᵀ
      { m: n, n: d, k: 3 * d },
      { buf: act, off: a.dqkv, ld: 3 * d },
      { buf: params, off: w("attn.c_attn.weight"), ld: 3 * d, trans: true },
      { buf: act, off: a.dln, ld: d },
      "store",
    );
    rec.matmul( // dWqkv (d, 3d) = ln1ᵀ · dqkv
      { m: d, n: 3 * d, k: n },
      { buf: act, off: l.ln1, ld: d, trans: true },
      { buf: act, off: a.dqkv, ld: 3 * d },
      { buf: grads, off: w("attn.c_attn.weight"), ld: 3 * d },
      "store",
    );
    rec.columnSum(n, 3 * d, a.dqkv, w("attn.c_attn.bias"));
    if (timed) {
      rec.modulateBackward(batch, length, d, {
        dh: a.dln,
        x: res,
        mean: l.ln1Mean,
        rstd: l.ln1Rstd,
        w: w("ln_1.weight"),
        bias: w("ln_1.bias"),
        shift: l.mods,
        stride: 6 * d,
        dshift: a.dmods,
      });
    }
    rec.layernormBackward(n, d, {
      dy: a.dln,
      x: res,
      mean: l.ln1Mean,
      rstd: l.ln1Rstd,
      w: w("ln_1.weight"),
      dx: a.dres,
      add: true,
      gw: w("ln_1.weight"),
      gb: w("ln_1.bias"),
    });
    if (timed) adaBackward(`h.${i}.ada`, 6 * d, false);
  }
  if (timed) {
    // Time MLP: cond = SiLU(condPre), condPre = hid · Wp + b,
    // hid = SiLU(hidPre), hidPre = feats · Wfc + b.
    rec.siluBackward(batch * dt, a.dcond, a.condPre); // dcond → dcondPre
    rec.matmul(
      { m: dt, n: dt, k: batch },
      { buf: act, off: a.hid, ld: dt, trans: true },
      { buf: act, off: a.dcond, ld: dt },
      { buf: grads, off: p("time.mlp.c_proj.weight"), ld: dt },
      "store",
    );
    rec.columnSum(batch, dt, a.dcond, p("time.mlp.c_proj.bias"));
    rec.matmul( // dhidPre = dcondPre · Wpᵀ ⊙ silu'(hidPre)
      { m: batch, n: dt, k: dt },
      { buf: act, off: a.dcond, ld: dt },
      { buf: params, off: p("time.mlp.c_proj.weight"), ld: dt, trans: true },
      { buf: act, off: a.dhid, ld: dt },
      "silu_backward",
      { e: { buf: act, off: a.hidPre, ld: dt } },
    );
    rec.matmul(
      { m: dt, n: dt, k: batch },
      { buf: act, off: a.tfeat, ld: dt, trans: true },
      { buf: act, off: a.dhid, ld: dt },
      { buf: grads, off: p("time.mlp.c_fc.weight"), ld: dt },
      "store",
    );
    rec.columnSum(batch, dt, a.dhid, p("time.mlp.c_fc.bias"));
  }
  rec.embedBackward(
    batch,
    length,
    d,
    a.dres,
    ints,
    p("wte.weight"),
    c.positions === "learned" ? p("wpe.weight") : -1,
    a.res0,
  );
}
