// cblas_sgemm's contract over a Fortran sgemm_ (backend/_fortran_sgemm.ts),
// checked on the OpenBLAS every machine here has — it exports both entries —
// against a float64 triple loop. The MKL that only exports sgemm_ (PyTorch's
// libtorch_cpu.so) is checked in tests/mkl_torch_test.ts.
import { assert, assertEquals, assertThrows } from "@std/assert";
import { CBLAS_PATH_ENV, loadCblas, type Sgemm } from "./cblas.ts";
import { type FortranSgemm, sgemmThroughFortran } from "./_fortran_sgemm.ts";

const ROW = 101, COL = 102, N = 111, T = 112;

function openFortran(): { sgemm: Sgemm; close(): void } {
  const library = loadCblas().library;
  const lib = Deno.dlopen(
    library,
    {
      sgemm_: { parameters: Array(13).fill("buffer"), result: "void" },
    } as const,
  );
  return {
    sgemm: sgemmThroughFortran(lib.symbols.sgemm_ as unknown as FortranSgemm),
    close: () => lib.close(),
  };
}

// Deterministic values in [-1, 1).
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

// Element (i, j) of op(X) for X stored in `order` with leading dimension ld.
function at(
  x: Float32Array,
  order: number,
  trans: number,
  ld: number,
  i: number,
  j: number,
): number {
  const [r, c] = trans === T ? [j, i] : [i, j];
  return order === ROW ? x[r * ld + c] : x[c * ld + r];
}

// C (m×n, row-major, ldc = n) = op(A)·op(B) within 1e-5, against float64.
function assertRowMajorProduct(
  c: Float32Array,
  [m, n, k]: [number, number, number],
  [a, ta, lda]: [Float32Array, number, number],
  [b, tb, ldb]: [Float32Array, number, number],
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) {
        sum += at(a, ROW, ta, lda, i, p) * at(b, ROW, tb, ldb, p, j);
      }
      assert(Math.abs(c[i * n + j] - sum) <= 1e-5, `(${i}, ${j})`);
    }
  }
}

Deno.test("sgemm through Fortran sgemm_ matches a float64 product for every order, transpose and padded leading dimension", () => {
  const f = openFortran();
  try {
    const [m, n, k] = [5, 7, 3];
    let cases = 0;
    for (const order of [ROW, COL]) {
      for (const ta of [N, T]) {
        for (const tb of [N, T]) {
          // Stored shapes of A and B, each padded by 2 in its leading dimension.
          const [ar, ac] = ta === T ? [k, m] : [m, k];
          const [br, bc] = tb === T ? [n, k] : [k, n];
          const lda = (order === ROW ? ac : ar) + 2;
          const ldb = (order === ROW ? bc : br) + 3;
          const ldc = (order === ROW ? n : m) + 1;
          const a = values(lda * (order === ROW ? ar : ac), 1 + cases);
          const b = values(ldb * (order === ROW ? br : bc), 100 + cases);
          const c = values(ldc * (order === ROW ? m : n), 200 + cases);
          const before = c.slice();
          const [alpha, beta] = [1.5, -0.5];
          f.sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < n; j++) {
              let sum = 0;
              for (let p = 0; p < k; p++) {
                sum += at(a, order, ta, lda, i, p) *
                  at(b, order, tb, ldb, p, j);
              }
              const idx = order === ROW ? i * ldc + j : j * ldc + i;
              const want = alpha * sum + beta * before[idx];
              assert(
                Math.abs(c[idx] - want) <= 1e-5,
                `order ${order} ${ta}/${tb} (${i}, ${j}): ${c[idx]} vs ${want}`,
              );
            }
          }
          // The padding of C is left alone.
          for (let idx = 0; idx < c.length; idx++) {
            const inside = order === ROW
              ? idx % ldc < n && Math.floor(idx / ldc) < m
              : idx % ldc < m && Math.floor(idx / ldc) < n;
            if (!inside) assertEquals(c[idx], before[idx], `padding ${idx}`);
          }
          cases++;
        }
      }
    }
    assertEquals(cases, 8);
  } finally {
    f.close();
  }
});

Deno.test("sgemm through Fortran sgemm_ works on views at an offset (the engines' arena)", () => {
  const f = openFortran();
  try {
    const arena = values(64, 7);
    const a = arena.subarray(3, 3 + 6); // 2×3
    const b = arena.subarray(20, 20 + 12); // 3×4
    const c = new Float32Array(8 + 5).subarray(5); // 2×4
    f.sgemm(ROW, N, N, 2, 4, 3, 1, a, 3, b, 4, 0, c, 4);
    assertRowMajorProduct(c, [2, 4, 3], [a, N, 3], [b, N, 4]);
  } finally {
    f.close();
  }
});

Deno.test("sgemm through Fortran sgemm_ reads CblasConjTrans (113) as the transpose of real matrices", () => {
  const f = openFortran();
  try {
    const a = values(12, 3), b = values(12, 4); // A stored 4×3 (op: 3×4), B 4×3
    const c1 = new Float32Array(9), c2 = new Float32Array(9);
    f.sgemm(ROW, 113, N, 3, 3, 4, 1, a, 3, b, 3, 0, c1, 3);
    f.sgemm(ROW, T, N, 3, 3, 4, 1, a, 3, b, 3, 0, c2, 3);
    assertEquals([...c1], [...c2]);
    assertRowMajorProduct(c1, [3, 3, 4], [a, T, 3], [b, N, 3]);
  } finally {
    f.close();
  }
});

Deno.test("sgemm through Fortran sgemm_ refuses an unknown order or transpose in one line", () => {
  const f = openFortran();
  try {
    const x = new Float32Array(4);
    assertThrows(
      () => f.sgemm(99, N, N, 2, 2, 2, 1, x, 2, x, 2, 0, x, 2),
      RangeError,
      "order 99 is not CblasRowMajor (101) or CblasColMajor (102)",
    );
    assertThrows(
      () => f.sgemm(ROW, N, 7, 2, 2, 2, 1, x, 2, x, 2, 0, x, 2),
      RangeError,
      "transB 7 is not CblasNoTrans (111)",
    );
  } finally {
    f.close();
  }
});

// A library at hand with neither symbol: glibc's (absent on musl, macOS).
const libcLoads = (() => {
  try {
    Deno.dlopen("libc.so.6", {}).close();
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name:
    "loadCblas() refuses a library with neither cblas_sgemm nor sgemm_, naming both",
  ignore: !libcLoads,
}, () => {
  assertThrows(
    () => loadCblas({ path: "libc.so.6", coretype: false }),
    Error,
    "exports neither cblas_sgemm nor sgemm_",
  );
});

Deno.test({
  name:
    "loadCblas() says which entry it uses: cblas_sgemm when the library has it",
  // D3PM_CBLAS_PATH may name a library with only sgemm_ (backend/README.md).
  ignore: Boolean(Deno.env.get(CBLAS_PATH_ENV)),
}, () => {
  const blas = loadCblas();
  try {
    assertEquals(blas.entry, "cblas_sgemm");
    assert(!blas.description.includes("sgemm_"), blas.description);
  } finally {
    blas.close();
  }
});
