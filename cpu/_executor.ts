// The CPU executor of the engine's plan (`@d3pm/webgpu/plan`): the same
// `Kernels` calls the WebGPU recorder turns into dispatches, here turned
// once into closures over views of the kernels' shared memory (each region
// — act, params, grads, logits — one view; offsets become subarrays), run
// in order by name. The step's scalars (lr, the Adam step, the dropout seed
// and rate, the loss sums, the norm and clip factor) live in one host
// object the closures read when they run. Private.

import type { ModelConfig } from "@d3pm/transformer/init";
import type {
  Accumulator,
  AdamWConstants,
  AttentionBackwardArgs,
  CommitArgs,
  DecodeAttentionArgs,
  DecodeEmbedArgs,
  Epilogue,
  GateBackwardArgs,
  IntLayout,
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
} from "@d3pm/webgpu/plan";
import type { CpuKernels, Dropout } from "./kernels.ts";
import { type Runtime, runtimeOf } from "./_runtime.ts";
import { matmul as mm, type MatmulOptions } from "./matmul.ts";
import { columnSum as colSum } from "./matmul.ts";
import { layernormBackward, layernormForward } from "./layernorm.ts";
import {
  attentionBackward,
  attentionForward,
  type AttentionShape,
  rope as ropeKernel,
} from "./attention.ts";
import { siluBackward } from "./activation.ts";
import { embeddingBackward, embeddingForward } from "./embedding.ts";
import { crossEntropy as ce } from "./cross_entropy.ts";
import {
  adamw as adamKernel,
  clipFactor,
  ema as emaKernel,
  gradNorm as normKernel,
} from "./optimizer.ts";
import { dropoutBackward as dropKernel } from "./dropout.ts";
import {
  gateBackward as gateKernel,
  modulateBackward as modKernel,
} from "./adaln.ts";

/** The host-side scalars a plan's closures read and write. */
export interface StepScalars {
  lr: number;
  /** AdamW's step (1 on the first update). */
  step: number;
  dropSeed: number;
  dropRate: number;
  clipNorm: number;
  /** −1: no EMA. */
  emaDecay: number;
  lossSum: number;
  lossSteps: number;
  evalSum: number;
  evalCount: number;
  gradNorm: number;
  scale: number;
}

/** Fresh scalars. */
export function stepScalars(clipNorm: number, emaDecay: number): StepScalars {
  return {
    lr: 0,
    step: 0,
    dropSeed: 0,
    dropRate: 0,
    clipNorm,
    emaDecay,
    lossSum: 0,
    lossSteps: 0,
    evalSum: 0,
    evalCount: 0,
    gradNorm: NaN,
    scale: 1,
  };
}

/** What a plan runs on: the regions, the ints, and its attention storage. */
export interface ExecutorMemory {
  act: Float32Array;
  params: Float32Array;
  grads?: Float32Array;
  logits?: Float32Array;
  ints: Int32Array;
  /** Adam's moments and the EMA (training plans). */
  m?: Float32Array;
  v?: Float32Array;
  ema?: Float32Array | null;
  /** Attention probabilities: one (B·H·T·T) block per distinct lse offset. */
  probs: Float32Array;
  /** The attention backward's scratch (B·H·T·T; training plans). */
  scratch?: Float32Array;
  /** Dropped probabilities, one block per distinct lse offset (dropout). */
  dropped?: Float32Array;
}

type Call = () => void;

/** The `Kernels` of a plan as closures over kernel memory. */
export class CpuExecutor implements Kernels {
  readonly dropout: boolean;
  readonly lists = new Map<string, Call[]>();
  #k: CpuKernels;
  #rt: Runtime;
  #mem: ExecutorMemory;
  #s: StepScalars;
  #cur: Call[] = [];
  #probs = new Map<number, Float32Array>();
  #dropped = new Map<number, Float32Array>();
  #probsAt = 0;
  #droppedAt = 0;

  constructor(
    k: CpuKernels,
    mem: ExecutorMemory,
    scalars: StepScalars,
    dropout = false,
  ) {
    this.#k = k;
    this.#rt = runtimeOf(k);
    this.#mem = mem;
    this.#s = scalars;
    this.dropout = dropout;
  }

  /**
   * Run the named lists in order, the joins between row-local jobs of the
   * same split left out (Runtime.pipelined); every job is joined before it
   * returns.
   */
  run(names: readonly string[]): void {
    const lists = names.map((name) => {
      const list = this.lists.get(name);
      if (!list) throw new Error(`CpuExecutor: no list "${name}"`);
      return list;
    });
    this.#rt.pipelined(() => {
      for (const list of lists) for (const f of list) f();
    });
  }

  // A closure that reads or writes kernel memory in JS: the threads finish
  // the jobs posted before it runs.
  #host(f: Call): Call {
    const rt = this.#rt;
    return () => {
      rt.sync();
      f();
    };
  }

  #view(buf: Region, off: number, len?: number): Float32Array {
    const r = this.#mem[buf];
    if (!r) throw new Error(`CpuExecutor: this plan has no region ${buf}`);
    return len === undefined ? r.subarray(off) : r.subarray(off, off + len);
  }

  #act(off: number, len?: number): Float32Array {
    return this.#view("act", off, len);
  }

  #ints(off: number, len: number): Int32Array {
    return this.#mem.ints.subarray(off, off + len);
  }

  #drop(site: number): Dropout {
    return { seed: this.#s.dropSeed, site, rate: this.#s.dropRate };
  }

  // One block of a pool per distinct lse offset (layers sharing an lse in
  // an inference arena share their block).
  #block(
    pool: Float32Array | undefined,
    map: Map<number, Float32Array>,
    key: number,
    size: number,
    dropped: boolean,
  ): Float32Array {
    const have = map.get(key);
    if (have && have.length >= size) return have;
    if (!pool) throw new Error("CpuExecutor: no attention storage");
    const at = dropped ? this.#droppedAt : this.#probsAt;
    if (at + size > pool.length) {
      throw new Error(
        `CpuExecutor: attention storage holds ${pool.length} floats, the plan needs more`,
      );
    }
    const v = pool.subarray(at, at + size);
    if (dropped) this.#droppedAt += size;
    else this.#probsAt += size;
    map.set(key, v);
    return v;
  }

  begin(name: string): void {
    this.#cur = [];
    this.lists.set(name, this.#cur);
  }

  matmul(
    dims: MatmulDims,
    a: MatmulOperand,
    b: MatmulOperand,
    c: Operand,
    epilogue: Epilogue,
    extra: MatmulExtra = {},
  ): void {
    const drop = this.dropout &&
      (epilogue === "bias_residual" || epilogue === "bias_gate_residual");
    const o: MatmulOptions = {
      m: dims.m,
      n: dims.n,
      k: dims.k,
      a: { view: this.#view(a.buf, a.off), ld: a.ld, trans: a.trans },
      b: { view: this.#view(b.buf, b.off), ld: b.ld, trans: b.trans },
      c: { view: this.#view(c.buf, c.off), ld: c.ld },
      epilogue,
      // Rows of activations by the weights: no join needed beside row-local
      // jobs of the same split (Runtime.run).
      rowLocal: !a.trans && b.buf === "params" && a.buf !== "params" &&
        a.buf !== "grads" && (c.buf === "act" || c.buf === "logits") &&
        extra.gate === undefined &&
        (extra.bias === undefined || extra.bias.buf === "params") &&
        (extra.e === undefined || extra.e.buf !== "params"),
    };
    if (extra.bias) o.bias = this.#view(extra.bias.buf, extra.bias.off);
    if (extra.e) {
      o.e = { view: this.#view(extra.e.buf, extra.e.off), ld: extra.e.ld };
    }
    if (extra.gate) {
      o.gate = {
        view: this.#act(extra.gate.off),
        stride: extra.gate.stride,
        rows: extra.gate.rows,
        aux: this.#act(extra.gate.aux),
      };
    }
    const k = this.#k, site = c.off;
    this.#cur.push(
      drop ? () => mm(k, { ...o, dropout: this.#drop(site) }) : () => mm(k, o),
    );
  }

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
    const o = {
      rows,
      d,
      x: this.#act(x),
      y: this.#act(y),
      weight: this.#view("params", w),
      bias: this.#view("params", b),
      mean: this.#act(mean),
      rstd: this.#act(rstd),
      modulation: mod
        ? { view: this.#act(mod.shift), stride: mod.stride, length: mod.length }
        : undefined,
    };
    const k = this.#k;
    this.#cur.push(() => layernormForward(k, o));
  }

  layernormBackward(rows: number, d: number, s: LayerNormBackwardArgs): void {
    const o = {
      rows,
      d,
      dy: this.#act(s.dy),
      x: this.#act(s.x),
      mean: this.#act(s.mean),
      rstd: this.#act(s.rstd),
      weight: this.#view("params", s.w),
      dx: this.#act(s.dx),
      accumulate: s.add,
      gradWeight: this.#view("grads", s.gw),
      gradBias: this.#view("grads", s.gb),
    };
    const k = this.#k;
    this.#cur.push(() => layernormBackward(k, o));
  }

  gateBackward(
    batch: number,
    length: number,
    d: number,
    s: GateBackwardArgs,
  ): void {
    const o = {
      batch,
      length,
      d,
      dout: this.#act(s.dout),
      br: this.#act(s.br),
      g: this.#act(s.g),
      stride: s.stride,
      dbr: this.#act(s.dbr),
      dg: this.#act(s.dg),
    };
    const k = this.#k, site = s.site;
    this.#cur.push(
      this.dropout
        ? () => gateKernel(k, { ...o, dropout: this.#drop(site) })
        : () => gateKernel(k, o),
    );
  }

  modulateBackward(
    batch: number,
    length: number,
    d: number,
    s: ModulateBackwardArgs,
  ): void {
    const o = {
      batch,
      length,
      d,
      dh: this.#act(s.dh),
      x: this.#act(s.x),
      mean: this.#act(s.mean),
      rstd: this.#act(s.rstd),
      weight: this.#view("params", s.w),
      bias: this.#view("params", s.bias),
      mods: this.#act(s.shift),
      stride: s.stride,
      dmods: this.#act(s.dshift),
    };
    const k = this.#k;
    this.#cur.push(() => modKernel(k, o));
  }

  dropoutBackward(n: number, site: number, src: number, dst: number): void {
    const s = this.#act(src, n), d = this.#act(dst, n), k = this.#k;
    this.#cur.push(() =>
      dropKernel(k, { src: s, dst: d, dropout: this.#drop(site) })
    );
  }

  siluBackward(n: number, dx: number, pre: number): void {
    const o = { rows: 1, cols: n, x: this.#act(pre, n), y: this.#act(dx, n) };
    const k = this.#k;
    this.#cur.push(() => siluBackward(k, o));
  }

  columnSum(rows: number, cols: number, x: number, out: number): void {
    const o = {
      rows,
      cols,
      x: this.#act(x),
      out: this.#view("grads", out, cols),
    };
    const k = this.#k;
    this.#cur.push(() => colSum(k, o));
  }

  embedForward(
    n: number,
    d: number,
    length: number,
    tokens: number,
    wte: number,
    wpe: number,
    out: number,
  ): void {
    const o = {
      rows: n,
      d,
      length,
      tokens: this.#ints(tokens, n),
      wte: this.#view("params", wte),
      wpe: wpe < 0 ? null : this.#view("params", wpe),
      out: this.#act(out),
    };
    const k = this.#k;
    this.#cur.push(
      this.dropout
        ? () => embeddingForward(k, { ...o, dropout: this.#drop(out) })
        : () => embeddingForward(k, o),
    );
  }

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
    const n = batch * length;
    const o = {
      batch,
      length,
      d,
      dx: this.#act(dx),
      index: {
        uniq: this.#ints(ints.uniq, n),
        starts: this.#ints(ints.starts, n + 1),
        positions: this.#ints(ints.positions, n),
      },
      count: 0,
      gradWte: this.#view("grads", gWte),
      gradWpe: gWpe < 0 ? null : this.#view("grads", gWpe),
    };
    const k = this.#k, all = this.#mem.ints, at = ints.count;
    this.#cur.push(this.#host(() =>
      embeddingBackward(k, {
        ...o,
        count: all[at],
        dropout: this.dropout ? this.#drop(site) : undefined,
      })
    ));
  }

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
    const half = length * hd / 2;
    const o = {
      rows: n,
      length,
      heads,
      headDim: hd,
      qkv: this.#act(qkv),
      cos: this.#act(cos, half),
      sin: this.#act(sin, half),
      backward,
    };
    const k = this.#k;
    this.#cur.push(() => ropeKernel(k, o));
  }

  #shape(c: ModelConfig, batch: number, length: number): AttentionShape {
    return {
      batch,
      length,
      heads: c.nHead,
      headDim: c.dModel / c.nHead,
      causal: c.kind === "causal",
      alibi: c.alibi
        ? { slope: c.alibi, neighbours: c.alibiMode === "neighbours" }
        : null,
    };
  }

  attentionForward(
    c: ModelConfig,
    batch: number,
    length: number,
    qkv: number,
    y: number,
    lse: number,
  ): void {
    const shape = this.#shape(c, batch, length);
    const size = batch * c.nHead * length * length;
    const o = {
      ...shape,
      qkv: this.#act(qkv),
      y: this.#act(y),
      lse: this.#act(lse),
      probs: this.#block(this.#mem.probs, this.#probs, lse, size, false),
    };
    const k = this.#k;
    if (this.dropout) {
      const dropped = this.#block(
        this.#mem.dropped,
        this.#dropped,
        lse,
        size,
        true,
      );
      this.#cur.push(() =>
        attentionForward(k, {
          ...o,
          dropout: { ...this.#drop(lse), dropped },
        })
      );
    } else this.#cur.push(() => attentionForward(k, o));
  }

  attentionBackward(
    c: ModelConfig,
    batch: number,
    length: number,
    s: AttentionBackwardArgs,
  ): void {
    const shape = this.#shape(c, batch, length);
    const size = batch * c.nHead * length * length;
    const probs = this.#probs.get(s.lse);
    if (!probs || !this.#mem.scratch) {
      throw new Error("CpuExecutor: attention backward before its forward");
    }
    const o = {
      ...shape,
      qkv: this.#act(s.qkv),
      y: this.#act(s.y),
      dy: this.#act(s.dy),
      probs,
      dqkv: this.#act(s.dqkv),
      scratch: this.#mem.scratch.subarray(0, size),
      D: this.#act(s.D, batch * c.nHead * length),
    };
    const k = this.#k, lse = s.lse;
    if (this.dropout) {
      const dropped = this.#dropped.get(lse)!;
      this.#cur.push(() =>
        attentionBackward(k, {
          ...o,
          dropout: { ...this.#drop(lse), dropped },
        })
      );
    } else this.#cur.push(() => attentionBackward(k, o));
  }

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
    const o = {
      rows,
      vocab,
      logits: this.#act(logits, rows * vocab),
      targets: this.#ints(targets + rowStart, rows),
      weights: this.#act(weights + rowStart, rows),
      loss: this.#act(rowLoss + rowStart, rows),
      exclude: exclude === 0xffffffff ? null : exclude,
    };
    const k = this.#k;
    this.#cur.push(() => ce(k, o));
  }

  lossReduce(n: number, rowLoss: number, into: Accumulator): void {
    const rl = this.#act(rowLoss, n), s = this.#s;
    this.#cur.push(this.#host(() => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += rl[i];
      if (into === "loss") {
        s.lossSum += sum;
        s.lossSteps += 1;
      } else {
        s.evalSum += sum;
        s.evalCount += 1;
      }
    }));
  }

  gradNorm(n: number, _partial: number): void {
    const g = this.#view("grads", 0, n), k = this.#k, s = this.#s;
    this.#cur.push(this.#host(() => {
      s.gradNorm = normKernel(k, g);
      s.scale = clipFactor(s.gradNorm, s.clipNorm);
    }));
  }

  adamw(n: number, decayEnd: number, h: AdamWConstants): void {
    const m = this.#mem;
    if (!m.m || !m.v) throw new Error("CpuExecutor: adamw needs moments");
    const o = {
      params: this.#view("params", 0, n),
      grads: this.#view("grads", 0, n),
      m: m.m.subarray(0, n),
      v: m.v.subarray(0, n),
      decayEnd,
      beta1: h.beta1,
      beta2: h.beta2,
      eps: h.eps,
      weightDecay: h.weightDecay,
    };
    const k = this.#k, s = this.#s;
    this.#cur.push(() =>
      adamKernel(k, { ...o, lr: s.lr, step: s.step, gradScale: s.scale })
    );
  }

  ema(n: number): void {
    const e = this.#mem.ema;
    if (!e) throw new Error("CpuExecutor: ema needs the EMA buffer");
    const params = this.#view("params", 0, n), ema = e.subarray(0, n);
    const k = this.#k, s = this.#s;
    this.#cur.push(() => emaKernel(k, { params, ema, decay: s.emaDecay }));
  }

  decodeEmbed(
    batch: number,
    d: number,
    length: number,
    s: DecodeEmbedArgs,
  ): void {
    const ints = this.#mem.ints, par = this.#mem.params;
    const out = this.#act(s.out, batch * d);
    this.#cur.push(this.#host(() => {
      const pos = ints[s.pos];
      for (let r = 0; r < batch; r++) {
        const tok = ints[s.tokens + r * length + pos];
        const w = s.wte + tok * d, o = r * d;
        for (let c = 0; c < d; c++) out[o + c] = par[w + c];
        if (s.wpe >= 0) {
          const p0 = s.wpe + pos * d;
          for (let c = 0; c < d; c++) out[o + c] += par[p0 + c];
        }
      }
    }));
  }

  // One query per (row, head) over the cache, in float64 (the WGSL's
  // decode attention, _decode_wgsl.ts): rotate q and k at p (RoPE), store
  // k and v at p, softmax over keys 0..p, the weighted sum of the values.
  decodeAttention(
    c: ModelConfig,
    batch: number,
    length: number,
    s: DecodeAttentionArgs,
  ): void {
    const d = c.dModel, H = c.nHead, hd = d / H, hh = hd / 2;
    const rotary = c.positions === "rotary", scale = 1 / Math.sqrt(hd);
    const act = this.#mem.act, ints = this.#mem.ints;
    const q = new Float64Array(hd), sc = new Float64Array(length);
    const acc = new Float64Array(hd);
    this.#cur.push(this.#host(() => {
      const pos = ints[s.pos];
      for (let r = 0; r < batch; r++) {
        for (let h = 0; h < H; h++) {
          const q0 = s.qkv + r * 3 * d + h * hd;
          const slot = (r * length + pos) * d + h * hd;
          for (let i = 0; i < hd; i++) {
            let qv = act[q0 + i], kv = act[q0 + d + i];
            if (rotary) {
              const j = i % hh;
              const cs = act[s.cos + pos * hh + j];
              const sn = act[s.sin + pos * hh + j];
              if (i < hh) {
                qv = qv * cs - act[q0 + i + hh] * sn;
                kv = kv * cs - act[q0 + d + i + hh] * sn;
              } else {
                qv = qv * cs + act[q0 + i - hh] * sn;
                kv = kv * cs + act[q0 + d + i - hh] * sn;
              }
            }
            q[i] = qv * scale;
            act[s.k + slot + i] = kv;
            act[s.v + slot + i] = act[q0 + 2 * d + i];
          }
          let mx = -Infinity;
          for (let j = 0; j <= pos; j++) {
            const k0 = s.k + (r * length + j) * d + h * hd;
            let dot = 0;
            for (let i = 0; i < hd; i++) dot += q[i] * act[k0 + i];
            sc[j] = dot;
            if (dot > mx) mx = dot;
          }
          let den = 0;
          acc.fill(0);
          for (let j = 0; j <= pos; j++) {
            const e = Math.exp(sc[j] - mx);
            den += e;
            const v0 = s.v + (r * length + j) * d + h * hd;
            for (let i = 0; i < hd; i++) acc[i] += e * act[v0 + i];
          }
          const y0 = s.y + r * d + h * hd;
          for (let i = 0; i < hd; i++) act[y0 + i] = acc[i] / den;
        }
      }
    }));
  }

  suppress(rows: number, vocab: number, l: RegionOffset, list: number): void {
    const ints = this.#mem.ints, x = this.#view(l.buf, l.off, rows * vocab);
    this.#cur.push(this.#host(() => {
      const k = ints[list];
      for (let r = 0; r < rows; r++) {
        for (let i = 0; i < k; i++) x[r * vocab + ints[list + 1 + i]] = -3e38;
      }
    }));
  }

  argmax(rows: number, vocab: number, logits: number, out: number): void {
    const ints = this.#mem.ints, x = this.#act(logits, rows * vocab);
    this.#cur.push(this.#host(() => {
      for (let r = 0; r < rows; r++) {
        const o = r * vocab;
        let best = -Infinity, idx = 0;
        for (let v = 0; v < vocab; v++) {
          if (x[o + v] > best) {
            best = x[o + v];
            idx = v;
          }
        }
        ints[out + r] = idx;
      }
    }));
  }

  commit(batch: number, length: number, s: CommitArgs): void {
    const ints = this.#mem.ints;
    this.#cur.push(this.#host(() => {
      const pos = ints[s.pos];
      for (let r = 0; r < batch; r++) {
        ints[s.tokens + r * length + pos + 1] = ints[s.next + r];
      }
      ints[s.pos] = pos + 1;
    }));
  }
}
