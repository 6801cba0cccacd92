// `cblas_sgemm`'s contract over a library's Fortran `sgemm_` (column-major,
// every argument by reference). Private.
//
// A row-major C = op(A)·op(B) of shape m×n is, read column-major, Cᵀ =
// op(B)ᵀ·op(A)ᵀ of shape n×m: the same call with A and B (their transposes,
// sizes and leading dimensions) swapped, and nothing copied. A CBLAS does the
// same thing inside `cblas_sgemm`.

import type { Sgemm } from "./cblas.ts";

/** A Fortran `sgemm_` as `Deno.dlopen` binds it (13 pointers). */
export type FortranSgemm = (
  transA: ArrayBufferView,
  transB: ArrayBufferView,
  m: ArrayBufferView,
  n: ArrayBufferView,
  k: ArrayBufferView,
  alpha: ArrayBufferView,
  a: ArrayBufferView,
  lda: ArrayBufferView,
  b: ArrayBufferView,
  ldb: ArrayBufferView,
  beta: ArrayBufferView,
  c: ArrayBufferView,
  ldc: ArrayBufferView,
) => void;

const ROW_MAJOR = 101, COL_MAJOR = 102;
const NO_TRANS = 111, TRANS = 112, CONJ_TRANS = 113;

/**
 * An {@linkcode Sgemm} over `sgemm_`. Not reentrant (its argument cells are
 * shared), which no caller needs: a JS thread runs one call at a time, and
 * each thread loads its own.
 */
export function sgemmThroughFortran(fortran: FortranSgemm): Sgemm {
  const ints = new Int32Array(6);
  const [m_, n_, k_, lda_, ldb_, ldc_] = [0, 1, 2, 3, 4, 5].map((i) =>
    ints.subarray(i, i + 1)
  );
  const scalars = new Float32Array(2);
  const alpha_ = scalars.subarray(0, 1), beta_ = scalars.subarray(1, 2);
  const N = new Uint8Array([78]), T = new Uint8Array([84]); // 'N', 'T'
  const flag = (trans: number, which: string): Uint8Array => {
    if (trans === NO_TRANS) return N;
    if (trans === TRANS || trans === CONJ_TRANS) return T;
    throw new RangeError(
      `sgemm: ${which} ${trans} is not CblasNoTrans (111), CblasTrans (112) or CblasConjTrans (113)`,
    );
  };
  return (
    order,
    transA,
    transB,
    m,
    n,
    k,
    alpha,
    a,
    lda,
    b,
    ldb,
    beta,
    c,
    ldc,
  ) => {
    const fa = flag(transA, "transA"), fb = flag(transB, "transB");
    alpha_[0] = alpha;
    beta_[0] = beta;
    k_[0] = k;
    ldc_[0] = ldc;
    if (order === ROW_MAJOR) {
      m_[0] = n;
      n_[0] = m;
      lda_[0] = ldb;
      ldb_[0] = lda;
      fortran(fb, fa, m_, n_, k_, alpha_, b, lda_, a, ldb_, beta_, c, ldc_);
    } else if (order === COL_MAJOR) {
      m_[0] = m;
      n_[0] = n;
      lda_[0] = lda;
      ldb_[0] = ldb;
      fortran(fa, fb, m_, n_, k_, alpha_, a, lda_, b, ldb_, beta_, c, ldc_);
    } else {
      throw new RangeError(
        `sgemm: order ${order} is not CblasRowMajor (101) or CblasColMajor (102)`,
      );
    }
  };
}
