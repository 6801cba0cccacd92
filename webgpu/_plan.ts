// The model as a plan: calls of the executor-neutral kernels (_kernels.ts),
// in order — its forward (to the final LayerNorm), the logits head, the
// training head and backward, the scoring and evaluation heads. Tensors are
// regions and offsets of the two tables (_layout.ts), so any executor of
// `Kernels` runs the same plan: the WebGPU one records it as dispatches
// (_recorder.ts). Private.

import type { ModelConfig } from "@d3pm/transformer/init";
import type { Arena, IntLayout, LayerActs, ParameterTable } from "./_layout.ts";
import type { Kernels, Region } from "./_kernels.ts";

const act: Region = "act", params: Region = "params", grads: Region = "grads";

/**
 * What a cached decode step records instead of the embedding and the
 * attention (the token at the current position; attention of one query over
 * the KV cache).
 */
export interface ForwardHooks {
  /** Record the embedding of the token at the current position. */
  embed(): void;
  /** Record layer `index`'s attention of one query over the KV cache. */
  attention(layer: LayerActs, index: number): void;
}

/**
 * Record the model's forward (to the final LayerNorm) into `ops`.
 *
 * @param ops The executor recording (or running) the calls.
 * @param c The model's configuration.
 * @param t Its parameter table.
 * @param a The arena of this shape.
 * @param ints The int inputs' offsets (`planInts(batch · length)`).
 * @param batch B.
 * @param length T.
 * @param decode A cached decode step's embedding and attention instead.
 *
 * @example
 * ```ts
 * import { type Kernels, parameterTable, planArena, planInts, recordForward } from "@d3pm/webgpu/plan";
 * import { preset } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * // A recorder: every kernel call becomes its name.
 * const calls: string[] = [];
 * const ops = new Proxy({ dropout: false }, {
 *   get: (o, k) => k in o ? Reflect.get(o, k) : () => calls.push(String(k)),
 * }) as unknown as Kernels;
 * const c = preset("micro", { vocabSize: 16, contextLength: 8 });
 * const arena = planArena(c, 2, 8, "forward", 1 << 20);
 * recordForward(ops, c, parameterTable(c), arena, planInts(16), 2, 8);
 * assertEquals(calls[0], "embedForward");
 * assertEquals(calls.filter((k) => k === "attentionForward").length, c.nLayer);
 * assertEquals(calls.at(-1), "layernormForward"); // ln_f
 * ```
 */
export function recordForward(
  ops: Kernels,
  c: ModelConfig,
  t: ParameterTable,
  a: Arena,
  ints: IntLayout,
  batch: number,
  length: number,
  decode?: ForwardHooks,
): void {
  const n = batch * length, d = c.dModel, m = c.dMlp, hd = d / c.nHead;
  const p = (name: string) => t.byName.get(name)!.offset;
  const timed = c.timeConditioning, dt = c.dTime;
  if (timed) {
    // cond = SiLU(SiLU(feats · Wfc + b) · Wp + b) (B, dTime); every adaLN
    // projection reads it: mods_i = cond · ada_i + b (B, 6d), modsF (B, 2d).
    ops.matmul(
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
    ops.matmul(
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
      ops.matmul(
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
  if (decode) decode.embed();
  else {
    ops.embedForward(
      n,
      d,
      length,
      ints.tokens,
      p("wte.weight"),
      c.positions === "learned" ? p("wpe.weight") : -1,
      a.res0,
    );
  }
  let res = a.res0;
  a.layers.forEach((l, i) => {
    const w = (s: string) => p(`h.${i}.${s}`);
    ops.layernormForward(
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
    ops.matmul( // qkv (N, 3d) = ln1 (N, d) · Wqkv (d, 3d) + b
      { m: n, n: 3 * d, k: d },
      { buf: act, off: l.ln1, ld: d },
      { buf: params, off: w("attn.c_attn.weight"), ld: 3 * d },
      { buf: act, off: l.qkv, ld: 3 * d },
      "bias",
      { bias: { buf: params, off: w("attn.c_attn.bias") } },
    );
    if (decode) decode.attention(l, i);
    else {
      if (c.positions === "rotary") {
        ops.rope(n, length, c.nHead, hd, l.qkv, a.ropeCos, a.ropeSin, false);
      }
      ops.attentionForward(c, batch, length, l.qkv, l.atty, l.lse);
    }
    ops.matmul( // resMid = res + (atty · Wproj + b) [· (1 + gate)]
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
    ops.layernormForward(
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
    ops.matmul( // fcGelu = gelu(fcPre), fcPre = ln2 · Wfc + b
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
    ops.matmul( // resOut = resMid + (fcGelu · Wp + b) [· (1 + gate)]
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
  ops.layernormForward(
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
 * Record the logits head after the forward: logits (N, V) = lnf · wteᵀ,
 * into the `logits` region.
 *
 * @param ops The executor recording (or running) the calls.
 * @param c The model's configuration.
 * @param t Its parameter table.
 * @param a The arena the forward was recorded on.
 * @param n N = B·T.
 *
 * @example
 * ```ts
 * import { type Kernels, parameterTable, planArena, recordHead } from "@d3pm/webgpu/plan";
 * import { preset } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * // A recorder: every kernel call becomes its name.
 * const calls: string[] = [];
 * const ops = new Proxy({ dropout: false }, {
 *   get: (o, k) => k in o ? Reflect.get(o, k) : () => calls.push(String(k)),
 * }) as unknown as Kernels;
 * const c = preset("micro", { vocabSize: 16, contextLength: 8 });
 * const arena = planArena(c, 2, 8, "forward", 1 << 20);
 * recordHead(ops, c, parameterTable(c), arena, 16);
 * assertEquals(calls, ["matmul"]);
 * ```
 */
export function recordHead(
  ops: Kernels,
  c: ModelConfig,
  t: ParameterTable,
  a: Arena,
  n: number,
): void {
  ops.matmul(
    { m: n, n: c.vocabSize, k: c.dModel },
    { buf: act, off: a.lnf, ld: c.dModel },
    {
      buf: params,
      off: t.byName.get("wte.weight")!.offset,
      ld: c.dModel,
      trans: true,
    },
    { buf: "logits", off: 0, ld: c.vocabSize },
    "store",
  );
}

/**
 * One row chunk of the head: logits (R, V) = lnf (R, d) · wteᵀ, then the
 * weighted cross-entropy of its rows (the logits become dlogits in place).
 */
function recordHeadChunk(
  ops: Kernels,
  a: Arena,
  ints: IntLayout,
  o: {
    r0: number;
    rows: number;
    d: number;
    v: number;
    wte: number;
    exclude: number;
  },
): void {
  const { r0, rows, d, v } = o;
  ops.matmul(
    { m: rows, n: v, k: d },
    { buf: act, off: a.lnf + r0 * d, ld: d },
    { buf: params, off: o.wte, ld: d, trans: true },
    { buf: act, off: a.logits, ld: v },
    "store",
  );
  ops.crossEntropy(
    rows,
    v,
    a.logits,
    r0,
    ints.targets,
    a.weights,
    a.rowLoss,
    o.exclude,
  );
}

/**
 * Record an evaluation after the forward: the chunked head and weighted
 * cross-entropy only, its sum into the evaluation accumulator.
 *
 * @param ops The executor recording (or running) the calls.
 * @param c The model's configuration.
 * @param t Its parameter table.
 * @param a The arena the forward was recorded on (mode `score` or `training`).
 * @param ints The int inputs' offsets (targets).
 * @param n N = B·T.
 * @param exclude An id left out of the softmax, 0xffffffff for none.
 *
 * @example
 * ```ts
 * import { type Kernels, parameterTable, planArena, planInts, recordEvaluation } from "@d3pm/webgpu/plan";
 * import { preset } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * // A recorder: every kernel call becomes its name.
 * const calls: string[] = [];
 * const ops = new Proxy({ dropout: false }, {
 *   get: (o, k) => k in o ? Reflect.get(o, k) : () => calls.push(String(k)),
 * }) as unknown as Kernels;
 * const c = preset("micro", { vocabSize: 16, contextLength: 8 });
 * const arena = planArena(c, 2, 8, "score", 1 << 20);
 * recordEvaluation(ops, c, parameterTable(c), arena, planInts(16), 16, 0xffffffff);
 * assertEquals(calls, ["matmul", "crossEntropy", "lossReduce"]);
 * ```
 */
export function recordEvaluation(
  ops: Kernels,
  c: ModelConfig,
  t: ParameterTable,
  a: Arena,
  ints: IntLayout,
  n: number,
  exclude: number,
): void {
  recordScore(ops, c, t, a, ints, n, exclude);
  ops.lossReduce(n, a.rowLoss, "evaluation");
}

/**
 * Record the scoring head after the forward: the chunked head and the
 * weighted cross-entropy of every position into `a.rowLoss` (N values; the
 * logits chunk is left holding its gradient, unused).
 *
 * @param ops The executor recording (or running) the calls.
 * @param c The model's configuration.
 * @param t Its parameter table.
 * @param a The arena the forward was recorded on (mode `score` or `training`).
 * @param ints The int inputs' offsets (targets).
 * @param n N = B·T.
 * @param exclude An id left out of the softmax, 0xffffffff for none.
 *
 * @example
 * ```ts
 * import { type Kernels, parameterTable, planArena, planInts, recordScore } from "@d3pm/webgpu/plan";
 * import { preset } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * // A recorder: every kernel call becomes its name.
 * const calls: string[] = [];
 * const ops = new Proxy({ dropout: false }, {
 *   get: (o, k) => k in o ? Reflect.get(o, k) : () => calls.push(String(k)),
 * }) as unknown as Kernels;
 * const c = preset("micro", { vocabSize: 16, contextLength: 8 });
 * // Logits chunks of 4 rows: 16 rows take 4 chunks.
 * const arena = planArena(c, 2, 8, "score", 4 * c.vocabSize);
 * recordScore(ops, c, parameterTable(c), arena, planInts(16), 16, 0xffffffff);
 * assertEquals(calls.filter((k) => k === "crossEntropy").length, 4);
 * ```
 */
export function recordScore(
  ops: Kernels,
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
    recordHeadChunk(ops, a, ints, { r0, rows, d, v, wte, exclude });
  }
}

/**
 * Record the training pass after the forward: the chunked head with
 * weighted cross-entropy, the loss sum, and the whole backward (to the
 * parameter gradients; the optimiser is the caller's to record).
 *
 * @param ops The executor recording (or running) the calls.
 * @param c The model's configuration.
 * @param t Its parameter table.
 * @param a The training arena the forward was recorded on.
 * @param ints The int inputs' offsets (targets, the embedding index).
 * @param batch B.
 * @param length T.
 * @param exclude An id left out of the softmax, 0xffffffff for none.
 *
 * @example
 * ```ts
 * import { type Kernels, parameterTable, planArena, planInts, recordBackward } from "@d3pm/webgpu/plan";
 * import { preset } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * // A recorder: every kernel call becomes its name.
 * const calls: string[] = [];
 * const ops = new Proxy({ dropout: false }, {
 *   get: (o, k) => k in o ? Reflect.get(o, k) : () => calls.push(String(k)),
 * }) as unknown as Kernels;
 * const c = preset("micro", { vocabSize: 16, contextLength: 8 });
 * const arena = planArena(c, 2, 8, "training", 1 << 20);
 * recordBackward(ops, c, parameterTable(c), arena, planInts(16), 2, 8, 0xffffffff);
 * assertEquals(calls.filter((k) => k === "attentionBackward").length, c.nLayer);
 * assertEquals(calls.at(-1), "embedBackward");
 * ```
 */
export function recordBackward(
  ops: Kernels,
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
  // Head, R rows at a time: logits → CE (in place to dlogits) → dlnf, dwte.
  for (let r0 = 0; r0 < n; r0 += a.chunkRows) {
    const rows = Math.min(a.chunkRows, n - r0);
    recordHeadChunk(ops, a, ints, {
      r0,
      rows,
      d,
      v,
      wte: p("wte.weight"),
      exclude,
    });
    ops.matmul( // dlnf (R, d) = dlogits (R, V) · wte (V, d)
      { m: rows, n: d, k: v },
      { buf: act, off: a.logits, ld: v },
      { buf: params, off: p("wte.weight"), ld: d },
      { buf: act, off: a.dln + r0 * d, ld: d },
      "store",
    );
    ops.matmul( // dwte (V, d) += dlogitsᵀ · lnf
      { m: v, n: d, k: rows },
      { buf: act, off: a.logits, ld: v, trans: true },
      { buf: act, off: a.lnf + r0 * d, ld: d },
      { buf: grads, off: p("wte.weight"), ld: d },
      "accumulate",
    );
  }
  ops.lossReduce(n, a.rowLoss, "loss");
  const last = a.layers.length > 0
    ? a.layers[a.layers.length - 1].resOut
    : a.res0;
  const timed = c.timeConditioning, dt = c.dTime;
  // adaLN projection backward: dcond (+)= dmods · adaᵀ, dW = condᵀ · dmods, db.
  const adaBackward = (prefix: string, width: number, first: boolean) => {
    ops.matmul(
      { m: batch, n: dt, k: width },
      { buf: act, off: a.dmods, ld: width },
      { buf: params, off: p(`${prefix}.weight`), ld: width, trans: true },
      { buf: act, off: a.dcond, ld: dt },
      first ? "store" : "accumulate",
    );
    ops.matmul(
      { m: dt, n: width, k: batch },
      { buf: act, off: a.cond, ld: dt, trans: true },
      { buf: act, off: a.dmods, ld: width },
      { buf: grads, off: p(`${prefix}.weight`), ld: width },
      "store",
    );
    ops.columnSum(batch, width, a.dmods, p(`${prefix}.bias`));
  };
  if (timed) {
    ops.modulateBackward(batch, length, d, {
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
  ops.layernormBackward(n, d, {
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
    // The gradient reaching a residual branch (output `br`, residual sum at
    // `site`): through its adaLN gate (modulation `gate`), or its dropout
    // mask, or as it is.
    const branchGrad = (br: number, gate: number, site: number): number => {
      if (timed) {
        ops.gateBackward(batch, length, d, {
          dout: a.dres,
          br,
          g: l.mods + gate * d,
          stride: 6 * d,
          dbr: a.dbr,
          dg: a.dmods + gate * d,
          site,
        });
        return a.dbr;
      }
      if (ops.dropout) {
        ops.dropoutBackward(n * d, site, a.dres, a.dbr);
        return a.dbr;
      }
      return a.dres;
    };
    const dm = branchGrad(l.mlpOut, 5, l.resOut); // the MLP branch
    ops.matmul( // dfc (N, m) = dm · Wpᵀ ⊙ gelu'(fcPre)
      { m: n, n: m, k: d },
      { buf: act, off: dm, ld: d },
      { buf: params, off: w("mlp.c_proj.weight"), ld: d, trans: true },
      { buf: act, off: a.dfc, ld: m },
      "gelu_backward",
      { e: { buf: act, off: l.fcPre, ld: m } },
    );
    ops.matmul( // dWp (m, d) = fcGeluᵀ · dm
      { m: m, n: d, k: n },
      { buf: act, off: l.fcGelu, ld: m, trans: true },
      { buf: act, off: dm, ld: d },
      { buf: grads, off: w("mlp.c_proj.weight"), ld: d },
      "store",
    );
    ops.columnSum(n, d, dm, w("mlp.c_proj.bias"));
    ops.matmul( // dln (N, d) = dfc · Wfcᵀ
      { m: n, n: d, k: m },
      { buf: act, off: a.dfc, ld: m },
      { buf: params, off: w("mlp.c_fc.weight"), ld: m, trans: true },
      { buf: act, off: a.dln, ld: d },
      "store",
    );
    ops.matmul( // dWfc (d, m) = ln2ᵀ · dfc
      { m: d, n: m, k: n },
      { buf: act, off: l.ln2, ld: d, trans: true },
      { buf: act, off: a.dfc, ld: m },
      { buf: grads, off: w("mlp.c_fc.weight"), ld: m },
      "store",
    );
    ops.columnSum(n, m, a.dfc, w("mlp.c_fc.bias"));
    if (timed) {
      ops.modulateBackward(batch, length, d, {
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
    ops.layernormBackward(n, d, {
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
    const da = branchGrad(l.attnOut, 2, l.resMid); // the attention branch
    ops.matmul( // datty (N, d) = da · Wprojᵀ
      { m: n, n: d, k: d },
      { buf: act, off: da, ld: d },
      { buf: params, off: w("attn.c_proj.weight"), ld: d, trans: true },
      { buf: act, off: a.datty, ld: d },
      "store",
    );
    ops.matmul( // dWproj (d, d) = attyᵀ · da
      { m: d, n: d, k: n },
      { buf: act, off: l.atty, ld: d, trans: true },
      { buf: act, off: da, ld: d },
      { buf: grads, off: w("attn.c_proj.weight"), ld: d },
      "store",
    );
    ops.columnSum(n, d, da, w("attn.c_proj.bias"));
    ops.attentionBackward(c, batch, length, {
      qkv: l.qkv,
      y: l.atty,
      lse: l.lse,
      dy: a.datty,
      dqkv: a.dqkv,
      D: a.attD,
    });
    if (c.positions === "rotary") {
      ops.rope(n, length, c.nHead, hd, a.dqkv, a.ropeCos, a.ropeSin, true);
    }
    ops.matmul( // dln (N, d) = dqkv · Wqkvᵀ
      { m: n, n: d, k: 3 * d },
      { buf: act, off: a.dqkv, ld: 3 * d },
      { buf: params, off: w("attn.c_attn.weight"), ld: 3 * d, trans: true },
      { buf: act, off: a.dln, ld: d },
      "store",
    );
    ops.matmul( // dWqkv (d, 3d) = ln1ᵀ · dqkv
      { m: d, n: 3 * d, k: n },
      { buf: act, off: l.ln1, ld: d, trans: true },
      { buf: act, off: a.dqkv, ld: 3 * d },
      { buf: grads, off: w("attn.c_attn.weight"), ld: 3 * d },
      "store",
    );
    ops.columnSum(n, 3 * d, a.dqkv, w("attn.c_attn.bias"));
    if (timed) {
      ops.modulateBackward(batch, length, d, {
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
    ops.layernormBackward(n, d, {
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
    ops.siluBackward(batch * dt, a.dcond, a.condPre); // dcond → dcondPre
    ops.matmul(
      { m: dt, n: dt, k: batch },
      { buf: act, off: a.hid, ld: dt, trans: true },
      { buf: act, off: a.dcond, ld: dt },
      { buf: grads, off: p("time.mlp.c_proj.weight"), ld: dt },
      "store",
    );
    ops.columnSum(batch, dt, a.dcond, p("time.mlp.c_proj.bias"));
    ops.matmul( // dhidPre = dcondPre · Wpᵀ ⊙ silu'(hidPre)
      { m: batch, n: dt, k: dt },
      { buf: act, off: a.dcond, ld: dt },
      { buf: params, off: p("time.mlp.c_proj.weight"), ld: dt, trans: true },
      { buf: act, off: a.dhid, ld: dt },
      "silu_backward",
      { e: { buf: act, off: a.hidPre, ld: dt } },
    );
    ops.matmul(
      { m: dt, n: dt, k: batch },
      { buf: act, off: a.tfeat, ld: dt, trans: true },
      { buf: act, off: a.dhid, ld: dt },
      { buf: grads, off: p("time.mlp.c_fc.weight"), ld: dt },
      "store",
    );
    ops.columnSum(batch, dt, a.dhid, p("time.mlp.c_fc.bias"));
  }
  ops.embedBackward(
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
