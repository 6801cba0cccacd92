// The seam between a plan and the machine that runs it: the semantic kernels
// the model's plans call (`_plan.ts`, `_decode.ts`), with every tensor named
// by a region and an offset in floats, never by a device object. The WebGPU
// executor (`Recorder`, _recorder.ts) records each call as a WGSL dispatch;
// a CPU executor would implement the same interface over one Float32Array
// per region (matmuls as `cblas_sgemm` on views, transposes as flags). The
// shapes in the comments are the contract both keep. Private.

import type { ModelConfig } from "@d3pm/transformer/init";
import type { IntLayout } from "./_layout.ts";

/**
 * The memory a plan addresses, each one flat float array: the activation
 * arena (`_layout.ts`'s `Arena`, or a decode arena), the parameter table,
 * its gradient mirror (training plans), and the logits output of a forward
 * plan. Integer inputs (tokens, targets, the embedding-gradient index) are
 * one int array, addressed by `IntLayout` offsets; Adam's moments, the EMA
 * and the loss accumulators belong to the optimiser kernels alone.
 */
export type Region = "act" | "params" | "grads" | "logits";

/** A matrix in a region: its offset and row stride, in floats. */
export interface Operand {
  /** The region holding the matrix. */
  buf: Region;
  /** Offset of its first element (floats). */
  off: number;
  /** Row stride (leading dimension, floats). */
  ld: number;
}

/** Matmul epilogues. */
export type Epilogue =
  | "store" // C = AB
  | "accumulate" // C += AB
  | "bias" // C = AB + bias
  | "bias_gelu" // E = AB + bias; C = gelu(E)
  | "bias_residual" // C = AB + bias + E
  | "gelu_backward" // C = AB · gelu'(E)
  | "bias_silu" // E = AB + bias; C = silu(E)
  | "silu_backward" // C = AB · silu'(E)
  | "bias_gate_residual"; // X[aux] = AB + bias; C = E + X[aux]·(1 + X[gate of m's batch row])

/** The loss accumulators: a training step's, and `evaluate`'s. */
export type Accumulator = "loss" | "evaluation";

/** A vector in a region: its offset in floats. */
export interface RegionOffset {
  /** The region holding the vector. */
  buf: Region;
  /** Offset of its first element (floats). */
  off: number;
}

/** The sizes of a matmul: C[M, N] from op(A)[M, K] and op(B)[K, N]. */
export interface MatmulDims {
  /** Rows of C and of op(A). */
  m: number;
  /** Columns of C and of op(B). */
  n: number;
  /** The inner dimension: columns of op(A), rows of op(B). */
  k: number;
}

/** A matmul operand, stored transposed when `trans` ([K, M] for A, [N, K] for B). */
export interface MatmulOperand extends Operand {
  /** Stored transposed ([K, M] for A, [N, K] for B); default false. */
  trans?: boolean;
}

/** What a matmul epilogue reads besides A and B. */
export interface MatmulExtra {
  /** N values added to every row. */
  bias?: RegionOffset;
  /** The residual (or pre-activation) matrix, M × N. */
  e?: Operand;
  /** adaLN gate: (1 + X[off + batch row·stride + column]); the branch to X[aux]. */
  gate?: { off: number; stride: number; rows: number; aux: number };
}

/** adaLN after a LayerNorm: (shift, scale) of each batch row at `shift`, `stride` apart, `length` rows each. */
export interface LayerNormModulation {
  /** Offset (act) of the first batch row's (shift, scale) pair. */
  shift: number;
  /** Floats between two batch rows' pairs. */
  stride: number;
  /** Rows (positions) per batch row. */
  length: number;
}

/** Offsets of a LayerNorm backward. */
export interface LayerNormBackwardArgs {
  /** The output gradient (rows, d). */
  dy: number;
  /** The forward's input (rows, d). */
  x: number;
  /** The forward's mean per row (rows). */
  mean: number;
  /** The forward's reciprocal standard deviation per row (rows). */
  rstd: number;
  /** The gain (`params`). */
  w: number;
  /** Written, or added to when `add` (the residual gradient). */
  dx: number;
  /** Add to dx instead of writing it. */
  add: boolean;
  /** In `grads`. */
  gw: number;
  /** The bias gradient (`grads`). */
  gb: number;
}

/** Offsets of an adaLN gate's backward. */
export interface GateBackwardArgs {
  /** The gradient reaching the residual sum (N, d). */
  dout: number;
  /** The branch's output before its gate (N, d). */
  br: number;
  /** Offset (act) of the first batch row's gate. */
  g: number;
  /** Floats between two batch rows' gates. */
  stride: number;
  /** The branch's gradient, written (N, d). */
  dbr: number;
  /** The gate's gradient (B rows, `stride` apart), written. */
  dg: number;
  /** The dropout site of the residual sum (its arena offset). */
  site: number;
}

/** Offsets of an adaLN modulation's backward. */
export interface ModulateBackwardArgs {
  /** The gradient of the modulated output (N, d); replaced by the gradient of LN(x)·w + b. */
  dh: number;
  /** The LayerNorm's input (N, d). */
  x: number;
  /** The LayerNorm's mean per row (N). */
  mean: number;
  /** The LayerNorm's reciprocal standard deviation per row (N). */
  rstd: number;
  /** The LayerNorm gain (`params`). */
  w: number;
  /** The LayerNorm bias (`params`). */
  bias: number;
  /** Offset (act) of the first batch row's (shift, scale) pair. */
  shift: number;
  /** Floats between two batch rows' pairs. */
  stride: number;
  /** The (shift, scale) gradients, written at the same layout. */
  dshift: number;
}

/** Offsets of the attention backward. */
export interface AttentionBackwardArgs {
  /** The forward's q, k, v (B, T, 3d). */
  qkv: number;
  /** The forward's output (B, T, d). */
  y: number;
  /** The forward's log-sum-exp (B, H, T). */
  lse: number;
  /** The output gradient (B, T, d). */
  dy: number;
  /** The q, k, v gradient, written (B, T, 3d). */
  dqkv: number;
  /** (B, H, T) scratch. */
  D: number;
}

/** AdamW's constants. */
export interface AdamWConstants {
  /** The first moment's decay. */
  beta1: number;
  /** The second moment's decay. */
  beta2: number;
  /** Added to the second moment's root. */
  eps: number;
  /** Decoupled weight decay (per unit of lr). */
  weightDecay: number;
}

/** Offsets of the decoding embedding (`wpe` < 0: none). */
export interface DecodeEmbedArgs {
  /** Int offset of the tokens (B, L). */
  tokens: number;
  /** The token embedding (`params`). */
  wte: number;
  /** The position embedding (`params`), < 0: none. */
  wpe: number;
  /** The embeddings, written (B, d). */
  out: number;
  /** Int offset of the current position p. */
  pos: number;
}

/** Offsets of the decoding attention over the KV cache. */
export interface DecodeAttentionArgs {
  /** This position's q, k, v (B, 3d). */
  qkv: number;
  /** The key cache (B, L, d). */
  k: number;
  /** The value cache (B, L, d). */
  v: number;
  /** The output, written (B, d). */
  y: number;
  /** Int offset of the current position p. */
  pos: number;
  /** RoPE cosines (L, hd/2). */
  cos: number;
  /** RoPE sines (L, hd/2). */
  sin: number;
  /**
   * The split kernel's scratch (B·H, ⌈L/chunk⌉, hd + 2): per chunk of keys
   * its max, sum and unnormalised output (executors that take the whole
   * softmax at once leave it alone).
   */
  partial: number;
}

/** Int offsets of the decoding commit. */
export interface CommitArgs {
  /** Int offset of the tokens (B, L). */
  tokens: number;
  /** Int offset of the current position p. */
  pos: number;
  /** Int offset of the drawn tokens (B). */
  next: number;
}

/**
 * The kernels of a plan, called in order; an executor records (or runs)
 * each one. Offsets are floats into the region named (`act` unless said),
 * or ints into the int inputs for `tokens`, `targets` and the like.
 */
export interface Kernels {
  /**
   * Whether this plan applies dropout: masks from a counter-based hash of
   * (step seed, site, element), where a site is the arena offset of the
   * tensor the mask belongs to, so a backward recomputes its forward's mask.
   */
  readonly dropout: boolean;
  /** Start the named list of calls (a plan's parts: `forward`, `backward`, …). */
  begin(name: string): void;
  /**
   * C[M, N] (=, +=, epilogue) op(A)[M, K] · op(B)[K, N]; `trans`: stored
   * transposed ([K, M] for A, [N, K] for B). With dropout, the residual
   * epilogues drop the branch (site: C's offset).
   */
  matmul(
    dims: MatmulDims,
    a: MatmulOperand,
    b: MatmulOperand,
    c: Operand,
    epilogue: Epilogue,
    extra?: MatmulExtra,
  ): void;
  /**
   * x (rows, d) → y = LN(x)·w + b, mean, rstd (rows); adaLN (`mod`): then
   * y·(1 + scale) + shift, from (shift, scale) at `shift` of the row's
   * batch entry (`stride` floats apart, `length` rows each).
   */
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
  ): void;
  /**
   * dy (rows, d) → dx (written, or added: the residual gradient), and the
   * gain and bias gradients gw, gb (offsets in `grads`).
   */
  layernormBackward(
    rows: number,
    d: number,
    s: LayerNormBackwardArgs,
  ): void;
  /** adaLN gate: out = res + br·(1 + g_b) → dg (into dmods), dbr. */
  gateBackward(
    batch: number,
    length: number,
    d: number,
    s: GateBackwardArgs,
  ): void;
  /**
   * adaLN modulation: h = LN(x)·(1 + scale_b) + shift_b → dshift, dscale
   * (into dmods), and dh ← dLN(x) in place.
   */
  modulateBackward(
    batch: number,
    length: number,
    d: number,
    s: ModulateBackwardArgs,
  ): void;
  /** A residual branch's dropout backward: dst = src · mask(site), n values. */
  dropoutBackward(n: number, site: number, src: number, dst: number): void;
  /** dx ← dx·silu'(pre), n values. */
  siluBackward(n: number, dx: number, pre: number): void;
  /** A bias gradient: column sums of x (rows, cols) into `out` of `grads`. */
  columnSum(rows: number, cols: number, x: number, out: number): void;
  /**
   * tokens (N, ints) → out (N, d) = wte[tok] (+ wpe[t], `wpe` < 0: none);
   * `wte`, `wpe` offsets in `params`. With dropout: site `out`.
   */
  embedForward(
    n: number,
    d: number,
    length: number,
    tokens: number,
    wte: number,
    wpe: number,
    out: number,
  ): void;
  /**
   * dx (N, d) → the wte gradient, a scatter-add in a fixed order by the
   * batch's CSR index (`ints`), and the wpe gradient (`gWpe` < 0: none).
   */
  embedBackward(
    batch: number,
    length: number,
    d: number,
    dx: number,
    ints: IntLayout,
    gWte: number,
    gWpe: number,
    site: number,
  ): void;
  /**
   * RoPE ("rotate half") in place on the q and k thirds of qkv (N, 3d),
   * tables cos, sin (T, hd/2); backward: the transpose.
   */
  rope(
    n: number,
    length: number,
    heads: number,
    hd: number,
    qkv: number,
    cos: number,
    sin: number,
    backward: boolean,
  ): void;
  /**
   * qkv (B, T, 3d) → y (B, T, d) and the log-sum-exp lse (B, H, T): causal
   * or bidirectional by `c.kind`, ALiBi by `c.alibi`; no T × T matrix.
   */
  attentionForward(
    c: ModelConfig,
    batch: number,
    length: number,
    qkv: number,
    y: number,
    lse: number,
  ): void;
  /** dy (B, T, d) → dqkv (B, T, 3d), from qkv, y, lse; D (B, H, T) scratch. */
  attentionBackward(
    c: ModelConfig,
    batch: number,
    length: number,
    s: AttentionBackwardArgs,
  ): void;
  /**
   * A chunk of rows of logits (rows, V) → their gradient in place, and the
   * weighted loss w·CE of each row into rowLoss (rows from `rowStart`;
   * targets in ints, a negative one ignored; `exclude` left out of the
   * softmax, 0xffffffff for none).
   */
  crossEntropy(
    rows: number,
    vocab: number,
    logits: number,
    rowStart: number,
    targets: number,
    weights: number,
    rowLoss: number,
    exclude: number,
  ): void;
  /** Σ rowLoss (n values), in a fixed order, added to an accumulator. */
  lossReduce(n: number, rowLoss: number, into: Accumulator): void;
  /**
   * The global norm of the n gradients and the clip scale min(1, maxNorm /
   * norm) (1 when the norm is not finite); `partial`: 256 floats of scratch.
   */
  gradNorm(n: number, partial: number): void;
  /**
   * AdamW over all n parameters on the clipped gradients (decoupled decay
   * below `decayEnd`); lr and bias corrections are the step's.
   */
  adamw(
    n: number,
    decayEnd: number,
    h: AdamWConstants,
  ): void;
  /** ema ← decay·ema + (1 − decay)·params, n values. */
  ema(n: number): void;
  /**
   * Decoding: out (B, d) = wte[tokens[b·L + p]] (+ wpe[p]) for the current
   * position p read from ints at `pos`.
   */
  decodeEmbed(
    batch: number,
    d: number,
    length: number,
    s: DecodeEmbedArgs,
  ): void;
  /**
   * Decoding: one query per row at the current position p (ints at `pos`)
   * over the KV cache: q, k (rotated at p when `rotary`), v from qkv (B, 3d);
   * k, v stored at p of the caches (B, L, d); y (B, d).
   */
  decodeAttention(
    c: ModelConfig,
    batch: number,
    length: number,
    s: DecodeAttentionArgs,
  ): void;
  /**
   * Logits of the ids listed in ints at `list` (a count, then the ids) set
   * to −3e38 in every row of logits (rows, V) at `off` of `buf`.
   */
  suppress(
    rows: number,
    vocab: number,
    logits: RegionOffset,
    list: number,
  ): void;
  /** The first largest logit of each row (rows, V) into ints at `out`. */
  argmax(rows: number, vocab: number, logits: number, out: number): void;
  /**
   * Decoding: the drawn tokens (ints at `next`, B) to position p + 1 of each
   * row of tokens (B, L), then p += 1.
   */
  commit(
    batch: number,
    length: number,
    s: CommitArgs,
  ): void;
}
