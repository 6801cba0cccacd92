// The jobs a kernel thread (or the host, for its own part) runs over a
// range [lo, hi) of a call's outer index: the module's kernels, and the
// jobs that also call the CBLAS — a product split by rows or columns of C
// (with its epilogue fused on its rows), and attention head by head (two or
// four products and the softmax kernel per head, one job for all heads).
// Arguments arrive as numbers (pointers are byte addresses). Private.

import {
  CBLAS_NO_TRANS,
  CBLAS_ROW_MAJOR,
  CBLAS_TRANS,
  type Sgemm,
} from "@d3pm/backend/cblas";

/** The module's kernels. */
export const KERNEL_NAMES = [
  "layernorm_forward",
  "layernorm_backward",
  "layernorm_params_backward",
  "column_sum",
  "bias_rows",
  "residual_rows",
  "gate_rows",
  "activation_rows",
  "activation_backward_rows",
  "dropout_backward",
  "embed_forward",
  "embed_backward_wte",
  "embed_backward_wpe",
  "attention_softmax_forward",
  "attention_softmax_backward",
  "rope_rows",
  "cross_entropy",
  "sum_squares",
  "adamw",
  "ema",
  "gate_backward",
  "modulate_backward",
] as const;

/** Every job, by index: the kernels, then the jobs that call the CBLAS. */
export const JOB_NAMES = [
  ...KERNEL_NAMES,
  "gemm",
  "attention_forward_heads",
  "attention_backward_heads",
] as const;

/** A job's name. */
export type JobName = typeof JOB_NAMES[number];

/** A job over [lo, hi) with its arguments. */
export type Job = (lo: number, hi: number, a: ArrayLike<number>) => void;

type Fn = (...args: number[]) => void;

/** Argument slots of the gemm job before its epilogue's. */
export const GEMM_ARGS = 16;

/** The job table of one thread. */
export function makeJobs(
  exports: Record<string, unknown>,
  memory: ArrayBufferLike,
  sgemm: Sgemm,
): Job[] {
  const F = new Float32Array(memory);
  const fn = (name: string) => exports[name] as Fn;
  const kernels: Job[] = KERNEL_NAMES.map((name) => {
    const f = fn(name);
    return (lo, hi, a) =>
      f(
        lo,
        hi,
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
        a[5],
        a[6],
        a[7],
        a[8],
        a[9],
        a[10],
        a[11],
        a[12],
        a[13],
        a[14],
        a[15],
      );
  });
  const view = (ptr: number, floats: number) => F.subarray(ptr / 4 + floats);
  const op = (t: number) => (t ? CBLAS_TRANS : CBLAS_NO_TRANS);
  // C[M, N] = alpha·op(A)·op(B) + beta·C over blocks [lo, hi) of a[15] rows
  // of C (or columns, with a[13] = 1), each block one product, then the
  // epilogue kernel a[14] over the block's rows with its arguments from
  // a[16].
  const gemm: Job = (blo, bhi, a) => {
    const block = a[15], extent = a[13] ? a[3] : a[2];
    for (let i = blo; i < bhi; i++) {
      gemmRange(i * block, Math.min(extent, (i + 1) * block), a);
    }
  };
  const gemmRange = (lo: number, hi: number, a: ArrayLike<number>) => {
    const ta = a[0], tb = a[1], M = a[2], N = a[3], K = a[4], alpha = a[5];
    const A = a[6], lda = a[7], B = a[8], ldb = a[9], beta = a[10];
    const C = a[11], ldc = a[12];
    if (hi <= lo) return;
    if (a[13]) {
      sgemm(
        CBLAS_ROW_MAJOR,
        op(ta),
        op(tb),
        M,
        hi - lo,
        K,
        alpha,
        view(A, 0),
        lda,
        view(B, tb ? lo * ldb : lo),
        ldb,
        beta,
        view(C, lo),
        ldc,
      );
      return;
    }
    sgemm(
      CBLAS_ROW_MAJOR,
      op(ta),
      op(tb),
      hi - lo,
      N,
      K,
      alpha,
      view(A, ta ? lo : lo * lda),
      lda,
      view(B, 0),
      ldb,
      beta,
      view(C, lo * ldc),
      ldc,
    );
    const epilogue = a[14];
    if (epilogue >= 0) {
      kernels[epilogue](lo, hi, Array.prototype.slice.call(a, GEMM_ARGS));
    }
  };
  const softmaxForward = fn("attention_softmax_forward");
  const softmaxBackward = fn("attention_softmax_backward");
  // Heads [lo, hi) of b·H + h: S = q·kᵀ·scale, softmax (P, lse), y = P·v.
  const attentionForward: Job = (lo, hi, a) => {
    const T = a[0], H = a[1], hd = a[2], causal = a[3], qkv = a[4], y = a[5];
    const lse = a[6], probs = a[7], slope = a[8], neighbours = a[9];
    const dropped = a[10], seed = a[11], site = a[12], rate = a[13];
    const scale = a[14], d = H * hd, tt = T * T;
    for (let bh = lo; bh < hi; bh++) {
      const b = Math.floor(bh / H), h = bh % H;
      const q = b * T * 3 * d + h * hd;
      sgemm(
        CBLAS_ROW_MAJOR,
        CBLAS_NO_TRANS,
        CBLAS_TRANS,
        T,
        T,
        hd,
        scale,
        view(qkv, q),
        3 * d,
        view(qkv, q + d),
        3 * d,
        0,
        view(probs, bh * tt),
        T,
      );
      softmaxForward(
        bh * T,
        (bh + 1) * T,
        T,
        H,
        causal,
        probs,
        lse,
        slope,
        neighbours,
        dropped,
        seed,
        site,
        rate,
      );
      sgemm(
        CBLAS_ROW_MAJOR,
        CBLAS_NO_TRANS,
        CBLAS_NO_TRANS,
        T,
        hd,
        T,
        1,
        view(rate > 0 ? dropped : probs, bh * tt),
        T,
        view(qkv, q + 2 * d),
        3 * d,
        0,
        view(y, b * T * d + h * hd),
        d,
      );
    }
  };
  // Heads [lo, hi): dP = dy·vᵀ, dS (softmax backward), dv = (P·keep)ᵀ·dy,
  // dq = dS·k·scale, dk = dSᵀ·q·scale.
  const attentionBackward: Job = (lo, hi, a) => {
    const T = a[0], H = a[1], hd = a[2], causal = a[3], qkv = a[4], y = a[5];
    const dy = a[6], probs = a[7], dqkv = a[8], ds = a[9], D = a[10];
    const dropped = a[11], seed = a[12], site = a[13], rate = a[14];
    const scale = a[15], d = H * hd, tt = T * T;
    for (let bh = lo; bh < hi; bh++) {
      const b = Math.floor(bh / H), h = bh % H;
      const q = b * T * 3 * d + h * hd, g = b * T * d + h * hd;
      sgemm(
        CBLAS_ROW_MAJOR,
        CBLAS_NO_TRANS,
        CBLAS_TRANS,
        T,
        T,
        hd,
        1,
        view(dy, g),
        d,
        view(qkv, q + 2 * d),
        3 * d,
        0,
        view(ds, bh * tt),
        T,
      );
      softmaxBackward(
        bh * T,
        (bh + 1) * T,
        T,
        H,
        hd,
        causal,
        probs,
        ds,
        y,
        dy,
        D,
        dropped,
        seed,
        site,
        rate,
      );
      // dv = (P·keep)ᵀ·dy
      sgemm(
        CBLAS_ROW_MAJOR,
        CBLAS_TRANS,
        CBLAS_NO_TRANS,
        T,
        hd,
        T,
        1,
        view(rate > 0 ? dropped : probs, bh * tt),
        T,
        view(dy, g),
        d,
        0,
        view(dqkv, q + 2 * d),
        3 * d,
      );
      // dq = dS·k·scale
      sgemm(
        CBLAS_ROW_MAJOR,
        CBLAS_NO_TRANS,
        CBLAS_NO_TRANS,
        T,
        hd,
        T,
        scale,
        view(ds, bh * tt),
        T,
        view(qkv, q + d),
        3 * d,
        0,
        view(dqkv, q),
        3 * d,
      );
      // dk = dSᵀ·q·scale
      sgemm(
        CBLAS_ROW_MAJOR,
        CBLAS_TRANS,
        CBLAS_NO_TRANS,
        T,
        hd,
        T,
        scale,
        view(ds, bh * tt),
        T,
        view(qkv, q),
        3 * d,
        0,
        view(dqkv, q + d),
        3 * d,
      );
    }
  };
  return [...kernels, gemm, attentionForward, attentionBackward];
}
