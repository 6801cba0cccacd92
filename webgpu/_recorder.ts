// The WebGPU executor of a plan: `Recorder` implements the executor-neutral
// `Kernels` (_kernels.ts, where each call's shapes are written down) by
// recording every call as a WGSL dispatch (_wgsl.ts, _decode_wgsl.ts) on the
// buffers bound to the plan's regions. Uniform blocks and bind groups are
// built once, in `finish()`; the engine then replays the lists. Private.

import type { ModelConfig } from "@d3pm/transformer/init";
import {
  ADAMW,
  attentionBackwardKeyValueSource,
  attentionBackwardQuerySource,
  type AttentionBias,
  attentionForwardSource,
  ATTN_BLOCK,
  COLUMN_SUM,
  CROSS_ENTROPY,
  DROPOUT_BACKWARD,
  EMA,
  embedBackwardWpeSource,
  embedBackwardWteSource,
  embedForwardSource,
  gateBackwardSource,
  LAYERNORM_BACKWARD,
  LAYERNORM_FORWARD,
  LAYERNORM_PARAMS_BACKWARD,
  LOSS_REDUCE,
  matmulSource,
  matmulSourceV1,
  type MatmulTile,
  MODULATE_BACKWARD,
  NORM_FINAL,
  NORM_GROUPS,
  NORM_PARTIAL,
  ROPE,
  S,
  SILU_BACKWARD,
  WRITES_E,
} from "./_wgsl.ts";
import {
  tiledAttentionBytes,
  tiledAttentionForwardSource,
  tiledAttentionKeyValueSource,
  tiledAttentionQuerySource,
} from "./_attention_wgsl.ts";
import {
  WIDE_OWN,
  wideAttentionBytes,
  wideAttentionFits,
  wideAttentionForwardSource,
  wideAttentionKeyValueSource,
  wideAttentionQuerySource,
} from "./_attention_wide_wgsl.ts";
import {
  ARGMAX,
  COMMIT,
  decodeAttentionSource,
  decodeCombineSource,
  decodeSplitSource,
  EMBED_AT,
  SUPPRESS,
} from "./_decode_wgsl.ts";
import {
  SKINNY_MAX_ROWS,
  skinnyColumns,
  skinnySource,
} from "./_skinny_wgsl.ts";
import type { IntLayout } from "./_layout.ts";
import { decodeSplitChunk } from "./_decode.ts";
import type {
  Accumulator,
  AdamWConstants,
  AttentionBackwardArgs,
  CommitArgs,
  DecodeAttentionArgs,
  DecodeEmbedArgs,
  Epilogue,
  GateBackwardArgs,
  Kernels,
  LayerNormBackwardArgs,
  LayerNormModulation,
  MatmulDims,
  MatmulExtra,
  MatmulOperand,
  ModulateBackwardArgs,
  Operand,
  Region,
  RegionOffset,
} from "./_kernels.ts";

/**
 * The one bind-group layout of every kernel: binding 0 a uniform block,
 * bindings 1–7 storage buffers (see _wgsl.ts); one per device, so that the
 * device's pipelines (`_pipelines.ts`) serve every engine on it.
 */
export function kernelLayout(device: GPUDevice): GPUBindGroupLayout {
  return readOnlyLayout(device, []);
}

const layouts = new WeakMap<GPUDevice, Map<string, GPUBindGroupLayout>>();

/**
 * The kernel layout with the given slots (1–7) as `read-only-storage`:
 * a matmul's operands whose buffer the dispatch does not write (one per
 * device and set of slots).
 */
export function readOnlyLayout(
  device: GPUDevice,
  slots: readonly number[],
): GPUBindGroupLayout {
  let byDevice = layouts.get(device);
  if (!byDevice) layouts.set(device, byDevice = new Map());
  const key = slots.join(",");
  let layout = byDevice.get(key);
  if (!layout) {
    layout = device.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: 4, buffer: { type: "uniform" } },
        ...[1, 2, 3, 4, 5, 6, 7].map((binding) => ({
          binding,
          visibility: 4, // COMPUTE
          buffer: {
            type: slots.includes(binding)
              ? "read-only-storage" as const
              : "storage" as const,
          },
        })),
      ],
    });
    byDevice.set(key, layout);
  }
  return layout;
}

/**
 * The matmul tile for a shape under `auto`: 128 while that still gives
 * ≥ 256 workgroups (GPT-2's large products), 32 when M or N is at most 32
 * or 64 would give under 64 workgroups (decoding, adaLN, small models),
 * else 64.
 */
export function matmulTile(m: number, n: number): MatmulTile {
  const groups = (t: number) => Math.ceil(m / t) * Math.ceil(n / t);
  if (groups(128) >= 256) return 128;
  if (Math.min(m, n) <= 32 || groups(64) < 64) return 32;
  return 64;
}

/** The engine-wide GPU objects a plan records against. */
export interface Kit {
  device: GPUDevice;
  /** Matmul tile: fixed, or `auto` (by shape: `matmulTile`). */
  tile: "auto" | MatmulTile;
  /** `old`: the first matmul and attention kernels (default `new`). */
  kernels?: "new" | "old";
  /**
   * `wide`: the register-tiled attention set (_attention_wide_wgsl.ts) where
   * the device holds all three kernels; `tiled` (default): the tiled set.
   */
  attentionKernel?: "tiled" | "wide";
  layout: GPUBindGroupLayout;
  /**
   * The pipeline of a key, built once; on `layout` when given (a matmul
   * with read-only operands), else on the kernel layout.
   */
  pipeline(
    key: string,
    source: () => string,
    layout?: GPUBindGroupLayout,
  ): GPUComputePipeline;
  dummy: GPUBuffer;
  /**
   * One small buffer per binding slot for the slots a kernel leaves
   * unused: browsers' WebGPU refuses one buffer bound to two writable slots.
   */
  dummies?: GPUBuffer[];
}

/**
 * The buffers a plan's dispatches bind: its own activations and ints, the
 * engine's parameters, and — training plans only — gradients, Adam
 * moments, the EMA and the scalars; a forward plan's logits output.
 */
export interface PlanBuffers {
  act: GPUBuffer;
  ints: GPUBuffer;
  params: GPUBuffer;
  grads?: GPUBuffer | null;
  m?: GPUBuffer | null;
  v?: GPUBuffer | null;
  ema?: GPUBuffer | null;
  scalars?: GPUBuffer | null;
  logits?: GPUBuffer | null;
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
  layout?: GPUBindGroupLayout;
  slot: number;
  buffers: (GPUBuffer | GPUBufferBinding | null)[]; // bindings 1..7
  x: number;
  y: number;
}

type Word = number | { f: number };

const MAX_GROUPS = 65535;

/** The epilogues the skinny matmul is tested with (webgpu/matmul_skinny_test.ts). */
const SKINNY_EPILOGUES: readonly Epilogue[] = [
  "store",
  "accumulate",
  "bias",
  "bias_gelu",
  "bias_residual",
  "bias_silu",
];

function grid(groups: number): [number, number] {
  const x = Math.min(groups, MAX_GROUPS);
  return [x, Math.ceil(groups / x)];
}

/**
 * The attention kernel family of a plan's dispatches: `wide` (the
 * register-tiled set), `tiled`, or `first` (one query per thread).
 */
export type AttentionFamily = "wide" | "tiled" | "first";

/**
 * The attention family each of the three attention kernels of head size hd
 * uses on a kit: the wide set where asked for (`attentionKernel: "wide"`),
 * with the new kernels, at a head size it takes (`wideAttentionFits`) and
 * where the device's workgroup memory holds all three (never a mix with
 * the tiled set); else per kernel the tiled one with the new kernels at
 * hd ≤ 64 where the device holds it; else the first kernel. The recorder
 * dispatches exactly these (the engine's `attentionKernels` reports them).
 */
export function attentionFamilies(
  kit: Pick<Kit, "device" | "kernels" | "attentionKernel">,
  hd: number,
): Record<"forward" | "query" | "keyValue", AttentionFamily> {
  const limit = kit.device.limits.maxComputeWorkgroupStorageSize;
  const fresh = kit.kernels !== "old";
  const wide = fresh && kit.attentionKernel === "wide" &&
    wideAttentionFits(hd) &&
    Object.values(wideAttentionBytes(hd)).every((n) => n <= limit);
  const tiled = tiledAttentionBytes(hd);
  const family = (which: "forward" | "query" | "keyValue"): AttentionFamily =>
    wide
      ? "wide"
      : fresh && hd <= 64 && tiled[which] <= limit
      ? "tiled"
      : "first";
  return {
    forward: family("forward"),
    query: family("query"),
    keyValue: family("keyValue"),
  };
}

/** The kernels of AR decoding plans (the engine's decodeMatmul, decodeAttention). */
export interface DecodeKernels {
  /** Matmuls of at most 8 rows (default `tile`). */
  matmul?: "tile" | "skinny";
  /** Decode attention (default `single`). */
  attention?: "single" | "split";
}

/** Builds and holds the dispatch lists of one shape. */
export class Recorder implements Kernels {
  #kit: Kit;
  #b: PlanBuffers;
  #words: Word[][] = [];
  #lists = new Map<string, Pending[]>();
  #current: Pending[] = [];
  uniform: GPUBuffer | null = null;
  readonly act: GPUBuffer;
  readonly ints: GPUBuffer;
  /** Record the dropout variants (training with dropout > 0). */
  readonly dropout: boolean;
  /**
   * `skinny`: matmuls of at most 8 rows (A not transposed, no adaLN gate
   * or dropout) use the skinny kernel (_skinny_wgsl.ts); `tile` (default):
   * every matmul the tiled one.
   */
  readonly matmulKernel: "tile" | "skinny";
  /**
   * `split`: decode attention splits the keys into chunks over many
   * workgroups and merges them (_decode_wgsl.ts's decodeSplitSource and
   * decodeCombineSource); `single` (default): one workgroup per (row, head).
   */
  readonly decodeAttentionKernel: "single" | "split";

  constructor(
    kit: Kit,
    buffers: PlanBuffers,
    dropout = false,
    decode: DecodeKernels = {},
  ) {
    this.#kit = kit;
    this.#b = buffers;
    this.act = buffers.act;
    this.ints = buffers.ints;
    this.dropout = dropout;
    this.matmulKernel = decode.matmul ?? "tile";
    this.decodeAttentionKernel = decode.attention ?? "single";
  }

  // The buffer bound to a region of the plan.
  #region(r: Region): GPUBuffer {
    const b = this.#b[r];
    if (!b) throw new Error(`no ${r} buffer in this plan`);
    return b;
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
    buffers: Record<number, GPUBuffer | GPUBufferBinding | null>,
    x: number,
    y = 1,
    layout?: GPUBindGroupLayout,
  ): void {
    const slot = this.#words.length;
    this.#words.push(words);
    const list: (GPUBuffer | GPUBufferBinding | null)[] = [];
    for (let b = 1; b <= 7; b++) list.push(buffers[b] ?? null);
    this.#current.push({
      key,
      pipeline: layout
        ? this.#kit.pipeline(key, source, layout)
        : this.#kit.pipeline(key, source),
      ...(layout ? { layout } : {}),
      slot,
      buffers: list,
      x,
      y,
    });
  }

  /**
   * Record a kernel of another module on the standard slots (act, params,
   * grads, m, v, ints, scalars) or the buffers given for some of them, with
   * its uniform words.
   */
  kernel(
    key: string,
    source: () => string,
    words: (number | { f: number })[],
    x: number,
    y = 1,
    slots: Record<number, GPUBuffer> = {},
  ): void {
    this.#push(key, source, words, { ...this.#std(), ...slots }, x, y);
  }

  // Non-matmul kernels bind the standard slots.
  #std(): Record<number, GPUBuffer | null> {
    const b = this.#b;
    return {
      1: b.act,
      2: b.params,
      3: b.grads ?? null,
      4: b.m ?? null,
      5: b.v ?? null,
      6: b.ints,
      7: b.scalars ?? null,
    };
  }

  matmul(
    dims: MatmulDims,
    a: MatmulOperand,
    b: MatmulOperand,
    c: Operand,
    epilogue: Epilogue,
    extra: MatmulExtra = {},
  ): void {
    const ta = a.trans ?? false, tb = b.trans ?? false;
    // Residual branches take dropout (site: the output's offset).
    const drop = this.dropout &&
      (epilogue === "bias_residual" || epilogue === "bias_gate_residual");
    const old = this.#kit.kernels === "old";
    const chosen = this.#kit.tile === "auto"
      ? matmulTile(dims.m, dims.n)
      : this.#kit.tile;
    const t = old && chosen === 32 ? 64 : chosen;
    // Operands that share a buffer (A, C and the residual all live in the
    // arena) are bound as separate ranges: WebGPU forbids one buffer in two
    // writable slots with overlapping ranges (browsers check; Deno does not).
    const { m, n, k } = dims;
    const span = (rows: number, cols: number, ld: number) =>
      rows > 0 && cols > 0 ? (rows - 1) * ld + cols : 0;
    const operands: [number, GPUBuffer, number, number][] = [
      [1, this.#region(a.buf), a.off, ta ? span(k, m, a.ld) : span(m, k, a.ld)],
      [2, this.#region(b.buf), b.off, tb ? span(n, k, b.ld) : span(k, n, b.ld)],
      [3, this.#region(c.buf), c.off, span(m, n, c.ld)],
      ...(extra.bias
        ? [
          [4, this.#region(extra.bias.buf), extra.bias.off, n] as [
            number,
            GPUBuffer,
            number,
            number,
          ],
        ]
        : []),
      ...(extra.e
        ? [
          [
            5,
            this.#region(extra.e.buf),
            extra.e.off,
            span(m, n, extra.e.ld),
          ] as [number, GPUBuffer, number, number],
        ]
        : []),
    ];
    // A dropout epilogue keys its masks by C's offset in the arena: keep
    // the arena whole there (training only; browsers only generate).
    const bound = separateRanges(
      operands,
      extra.gate || drop ? this.act : null,
      this.#kit.device.limits.minStorageBufferOffsetAlignment,
    );
    const off = (slot: number, at: number) => at - bound.shift[slot];
    // vec4 loads where the operand's offset, ld and stored row length are
    // multiples of 4 (the binding shift is a multiple of 64 floats).
    const vecA = !old && a.off % 4 === 0 && a.ld % 4 === 0 &&
      (ta ? m : k) % 4 === 0;
    const vecB = !old && b.off % 4 === 0 && b.ld % 4 === 0 &&
      (tb ? k : n) % 4 === 0;
    // Read-only bindings for operands whose buffer this dispatch does not
    // write (WebGPU forbids read-only and writable use of one buffer in a
    // dispatch): e.g. the weights in a forward, the arena in dW = xᵀ·dy.
    const written = new Set<GPUBuffer>([this.#region(c.buf)]);
    if (extra.e && WRITES_E.includes(epilogue)) {
      written.add(this.#region(extra.e.buf));
    }
    if (extra.gate) written.add(this.act);
    const readOnly = {
      a: !written.has(this.#region(a.buf)),
      b: !written.has(this.#region(b.buf)),
      bias: !!extra.bias && !written.has(this.#region(extra.bias.buf)),
      e: !!extra.e && !WRITES_E.includes(epilogue) &&
        !written.has(this.#region(extra.e.buf)),
    };
    const roSlots = old ? [] : [
      ...(readOnly.a ? [1] : []),
      ...(readOnly.b ? [2] : []),
      ...(readOnly.bias ? [4] : []),
      ...(readOnly.e ? [5] : []),
    ];
    const flags = old ? "old" : `${+vecA}${+vecB}:${roSlots.join("")}`;
    const skinny = this.matmulKernel === "skinny" && !old && !ta && !drop &&
      m <= SKINNY_MAX_ROWS && SKINNY_EPILOGUES.includes(epilogue);
    const cols = skinnyColumns(n, tb);
    const [x, y] = skinny
      ? grid(Math.ceil(n / cols))
      : [Math.ceil(n / t), Math.ceil(m / t)];
    this.#push(
      skinny
        ? `mv${m}x${cols}:${tb}:${epilogue}:${flags}`
        : `mm${t}:${ta}:${tb}:${epilogue}:${drop}:${flags}`,
      () =>
        skinny
          ? skinnySource(m, tb, epilogue, cols, { vecA, vecB, readOnly })
          : old
          ? matmulSourceV1(ta, tb, epilogue, drop, t as 64 | 128)
          : matmulSource(ta, tb, epilogue, drop, t, { vecA, vecB, readOnly }),
      [
        dims.m,
        dims.n,
        dims.k,
        a.ld,
        b.ld,
        c.ld,
        off(1, a.off),
        off(2, b.off),
        off(3, c.off),
        extra.bias ? off(4, extra.bias.off) : 0,
        extra.e ? off(5, extra.e.off) : 0,
        extra.e?.ld ?? 0,
        extra.gate?.off ?? 0,
        extra.gate?.stride ?? 0,
        extra.gate?.rows ?? 1,
        extra.gate?.aux ?? 0,
      ],
      {
        ...bound.slots,
        6: extra.gate ? this.act : null,
        7: drop ? this.#b.scalars ?? null : null,
      },
      x,
      y,
      roSlots.length ? readOnlyLayout(this.#kit.device, roSlots) : undefined,
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
    mod?: LayerNormModulation,
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
    s: LayerNormBackwardArgs,
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
    s: GateBackwardArgs,
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
    s: ModulateBackwardArgs,
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

  // The attention kernel family for hd and its dispatch grid's x.
  #attention(
    hd: number,
    which: "forward" | "query" | "keyValue",
    length: number,
  ): { family: AttentionFamily; x: number } {
    const family = attentionFamilies(this.#kit, hd)[which];
    const own = family === "wide" ? WIDE_OWN : ATTN_BLOCK;
    return { family, x: Math.ceil(length / own) };
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
    const bias = attentionBias(c);
    const { family, x } = this.#attention(hd, "forward", length);
    const source = {
      wide: wideAttentionForwardSource,
      tiled: tiledAttentionForwardSource,
      first: attentionForwardSource,
    }[family];
    this.#push(
      `attn_fwd${suffix(family)}:${hd}:${causal}:${this.dropout}:${
        JSON.stringify(bias)
      }`,
      () => source(hd, causal, this.dropout, bias),
      [rows, length, c.nHead, qkv, y, lse, { f: 1 / Math.sqrt(hd) }],
      this.#std(),
      x,
      batch * c.nHead,
    );
  }

  // dy (B, T, d) → dqkv (B, T, 3d), using qkv, y, lse; D (B, H, T) scratch.
  attentionBackward(
    c: ModelConfig,
    batch: number,
    length: number,
    s: AttentionBackwardArgs,
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
    const bias = attentionBias(c);
    const q = this.#attention(hd, "query", length);
    const kv = this.#attention(hd, "keyValue", length);
    const querySource = {
      wide: wideAttentionQuerySource,
      tiled: tiledAttentionQuerySource,
      first: attentionBackwardQuerySource,
    }[q.family];
    const keyValueSource = {
      wide: wideAttentionKeyValueSource,
      tiled: tiledAttentionKeyValueSource,
      first: attentionBackwardKeyValueSource,
    }[kv.family];
    const tail = `:${hd}:${causal}:${this.dropout}:${JSON.stringify(bias)}`;
    this.#push(
      `attn_bwd_q${suffix(q.family)}${tail}`,
      () => querySource(hd, causal, this.dropout, bias),
      words,
      this.#std(),
      q.x,
      batch * c.nHead,
    );
    this.#push(
      `attn_bwd_kv${suffix(kv.family)}${tail}`,
      () => keyValueSource(hd, causal, this.dropout, bias),
      words,
      this.#std(),
      kv.x,
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

  lossReduce(n: number, rowLoss: number, into: Accumulator): void {
    this.#push(
      "loss_reduce",
      () => LOSS_REDUCE,
      [n, rowLoss, into === "loss" ? S.lossSum : S.evalSum],
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
    h: AdamWConstants,
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
      { ...this.#std(), 4: this.#b.ema ?? null },
      Math.min(Math.ceil(n / 256), 4096),
    );
  }

  decodeEmbed(
    batch: number,
    d: number,
    length: number,
    s: DecodeEmbedArgs,
  ): void {
    this.#push(
      "dec_embed",
      () => EMBED_AT,
      [
        batch * d,
        d,
        length,
        s.tokens,
        s.wte,
        Math.max(s.wpe, 0),
        s.wpe >= 0 ? 1 : 0,
        s.out,
        s.pos,
      ],
      this.#std(),
      Math.ceil((batch * d) / 256),
    );
  }

  decodeAttention(
    c: ModelConfig,
    batch: number,
    length: number,
    s: DecodeAttentionArgs,
  ): void {
    const hd = c.dModel / c.nHead;
    const words = [
      batch,
      c.nHead,
      length,
      s.qkv,
      s.k,
      s.v,
      { f: 1 / Math.sqrt(hd) },
      s.y,
      s.pos,
      c.positions === "rotary" ? 1 : 0,
      s.cos,
      s.sin,
    ];
    if (this.decodeAttentionKernel === "single") {
      this.#push(
        `dec_attn:${hd}:${length}`,
        () => decodeAttentionSource(hd, length),
        words,
        this.#std(),
        batch * c.nHead,
      );
      return;
    }
    // Split: the chunks' partials (keys past p skipped), then their merge.
    const chunk = decodeSplitChunk(hd);
    this.#push(
      `dec_split:${hd}:${chunk}`,
      () => decodeSplitSource(hd, chunk),
      [...words, s.partial],
      this.#std(),
      batch * c.nHead,
      Math.ceil(length / chunk),
    );
    this.#push(
      `dec_combine:${hd}:${chunk}:${length}`,
      () => decodeCombineSource(hd, chunk, length),
      [...words, s.partial],
      this.#std(),
      batch * c.nHead,
    );
  }

  suppress(
    rows: number,
    vocab: number,
    logits: RegionOffset,
    list: number,
  ): void {
    this.#push("suppress", () => SUPPRESS, [rows, vocab, logits.off, list], {
      ...this.#std(),
      1: this.#region(logits.buf),
    }, 1);
  }

  argmax(rows: number, vocab: number, logits: number, out: number): void {
    this.#push(
      "dec_argmax",
      () => ARGMAX,
      [rows, vocab, logits, out],
      this.#std(),
      rows,
    );
  }

  commit(
    batch: number,
    length: number,
    s: CommitArgs,
  ): void {
    this.#push(
      "dec_commit",
      () => COMMIT,
      [batch, s.tokens, length, s.pos, s.next],
      this.#std(),
      1,
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
            layout: p.layout ?? this.#kit.layout,
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
                resource: buf === null
                  ? { buffer: this.#kit.dummies?.[i] ?? this.#kit.dummy }
                  : "buffer" in buf
                  ? buf
                  : { buffer: buf },
              })),
            ],
          }),
        })),
      );
    }
    return out;
  }
}

/**
 * The bindings of a matmul's operands (slot, buffer, offset and extent in
 * floats): a buffer used by one slot is bound whole; a buffer used by
 * several is bound as one range per slot, starting at the offset rounded
 * down to the device's alignment (`shift`, in floats, is what the kernel's
 * offset loses), when those ranges do not overlap. A buffer also bound whole
 * elsewhere in the dispatch (`whole`, the adaLN gate's arena) stays whole.
 */
export function separateRanges(
  operands: readonly [number, GPUBuffer, number, number][],
  whole: GPUBuffer | null,
  alignBytes: number,
): {
  slots: Record<number, GPUBuffer | GPUBufferBinding>;
  shift: Record<number, number>;
} {
  const slots: Record<number, GPUBuffer | GPUBufferBinding> = {};
  const shift: Record<number, number> = {};
  const byBuffer = new Map<GPUBuffer, [number, number, number][]>();
  for (const [slot, buf, off, len] of operands) {
    shift[slot] = 0;
    slots[slot] = buf;
    byBuffer.set(buf, [...(byBuffer.get(buf) ?? []), [slot, off, len]]);
  }
  for (const [buf, uses] of byBuffer) {
    if (uses.length < 2 || buf === whole) continue;
    const ranges = uses.map(([slot, off, len]) => {
      const start = Math.floor((off * 4) / alignBytes) * alignBytes;
      const end = Math.min(buf.size, (off + Math.max(len, 1)) * 4);
      return { slot, start, end };
    });
    // Two slots on the same range (A read twice) may share it; ranges that
    // merely overlap keep the whole buffer (only browsers refuse that).
    const sorted = [...ranges].sort((x, y) => x.start - y.start);
    let overlap = false;
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i].start < sorted[i - 1].end) overlap = true;
    }
    if (overlap) continue;
    for (const r of ranges) {
      slots[r.slot] = { buffer: buf, offset: r.start, size: r.end - r.start };
      shift[r.slot] = r.start / 4;
    }
  }
  return { slots, shift };
}

// A pipeline key's suffix for an attention family (the first kernels: none).
function suffix(family: "wide" | "tiled" | "first"): string {
  return family === "first" ? "" : `_${family}`;
}

// The model's ALiBi as the attention kernels take it (null: none).
function attentionBias(c: ModelConfig): AttentionBias | null {
  return c.alibi
    ? { slope: c.alibi, neighbours: c.alibiMode === "neighbours" }
    : null;
}
