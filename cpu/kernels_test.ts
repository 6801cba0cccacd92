import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { loadCblas } from "@d3pm/backend/cblas";
import { createCpuKernels } from "./kernels.ts";
import { blas } from "./_test_util.ts";

Deno.test({
  name:
    "createCpuKernels() with split products sets OpenBLAS to one thread while it lives and restores it on dispose",
  ...blas,
  fn: async () => {
    const cblas = loadCblas();
    let lib: Deno.DynamicLibrary<{
      openblas_get_num_threads: { parameters: []; result: "i32" };
      openblas_set_num_threads: { parameters: ["i32"]; result: "void" };
    }>;
    try {
      lib = Deno.dlopen(cblas.library, {
        openblas_get_num_threads: { parameters: [], result: "i32" },
        openblas_set_num_threads: { parameters: ["i32"], result: "void" },
      });
    } catch {
      cblas.close();
      return; // not OpenBLAS: nothing is set
    }
    try {
      lib.symbols.openblas_set_num_threads(3);
      const k = await createCpuKernels({ words: 64, threads: 2, cblas });
      assertEquals(k.products, "split");
      assertEquals(lib.symbols.openblas_get_num_threads(), 1);
      k.dispose();
      assertEquals(lib.symbols.openblas_get_num_threads(), 3);
      const b = await createCpuKernels({
        words: 64,
        threads: 2,
        cblas,
        products: "blas",
      });
      assertEquals(lib.symbols.openblas_get_num_threads(), 3);
      b.dispose();
    } finally {
      lib.close();
      cblas.close();
    }
  },
});

Deno.test({
  name:
    "createCpuKernels() refuses bad options, and allocation past the capacity names what is free",
  ...blas,
  fn: async () => {
    await assertRejects(
      () => createCpuKernels({ words: -1 }),
      RangeError,
      "words must be an integer",
    );
    await assertRejects(
      () => createCpuKernels({ words: 8, threads: 0 }),
      RangeError,
      "threads must be an integer in [1, 32], got 0",
    );
    await assertRejects(
      // @ts-expect-error: a bad mode on purpose
      () => createCpuKernels({ words: 8, products: "gpu" }),
      RangeError,
      'products must be "split" or "blas", got "gpu"',
    );
    const k = await createCpuKernels({ words: 100, threads: 1 });
    try {
      k.floats(50);
      assertThrows(
        () => k.floats(1 << 20),
        RangeError,
        "words of kernel memory are free",
      );
    } finally {
      k.dispose();
    }
    assertThrows(() => k.floats(1), Error, "disposed");
  },
});
