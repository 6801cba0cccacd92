import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  CBLAS_NO_TRANS,
  CBLAS_PATH_ENV,
  CBLAS_ROW_MAJOR,
  CBLAS_TRANS,
  loadCblas,
} from "./cblas.ts";
import { coretypeForFlags } from "./_cpu_flags.ts";

Deno.test("loadCblas() finds a CBLAS and describes it", () => {
  const blas = loadCblas();
  assert(blas.description.length > 0);
  if (blas.vendor === "OpenBLAS") {
    assert(/^OpenBLAS [\d.]+/.test(blas.description), blas.description);
    assert((blas.threads ?? 0) >= 1);
  }
  blas.close();
});

Deno.test("loadCblas() sgemm handles both transposes and leading dimensions", () => {
  const blas = loadCblas();
  // A = [[1, 2, 3], [4, 5, 6]] stored transposed (3×2), B = I₃ stored as is.
  const at = new Float32Array([1, 4, 2, 5, 3, 6]);
  const b = new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  const c = new Float32Array(6);
  blas.sgemm(
    CBLAS_ROW_MAJOR,
    CBLAS_TRANS,
    CBLAS_NO_TRANS,
    2,
    3,
    3,
    2,
    at,
    2,
    b,
    3,
    0,
    c,
    3,
  );
  assertEquals([...c], [2, 4, 6, 8, 10, 12]);
  blas.close();
});

Deno.test("loadCblas() names the path it could not load, where it came from, and the loader's reason once", () => {
  const e = assertThrows(
    () => loadCblas({ path: "/nonexistent/libcblas.so" }),
    Error,
    'Cannot load a CBLAS from path "/nonexistent/libcblas.so": /nonexistent/libcblas.so: ',
  );
  // Deno's message says "Could not open library: " twice and the path again.
  assert(!e.message.includes("Could not open library"), e.message);
  assertEquals(e.message.split("/nonexistent/libcblas.so").length, 3);
  const before = Deno.env.get(CBLAS_PATH_ENV);
  Deno.env.set(CBLAS_PATH_ENV, "/nonexistent/libcblas.so");
  try {
    assertThrows(
      () => loadCblas(),
      Error,
      `Cannot load a CBLAS from ${CBLAS_PATH_ENV}="/nonexistent/libcblas.so": `,
    );
  } finally {
    if (before === undefined) Deno.env.delete(CBLAS_PATH_ENV);
    else Deno.env.set(CBLAS_PATH_ENV, before);
  }
});

Deno.test("coretypeForFlags() maps AVX-512, AVX2 and AVX to OpenBLAS core types", () => {
  const avx512 = new Set([
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512dq",
  ]);
  assertEquals(coretypeForFlags(avx512), "SKYLAKEX");
  assertEquals(coretypeForFlags(new Set(["avx", "avx2", "fma"])), "HASWELL");
  assertEquals(coretypeForFlags(new Set(["avx"])), "SANDYBRIDGE");
  assertEquals(coretypeForFlags(new Set(["sse2"])), undefined);
});
