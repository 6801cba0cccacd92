import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { loadCblas } from "@d3pm/backend/cblas";
import { createCpuKernels } from "./kernels.ts";
import { blas } from "./_test_util.ts";

const THREADS = {
  openblas_get_num_threads: { parameters: [], result: "i32" },
  openblas_set_num_threads: { parameters: ["i32"], result: "void" },
} as const;

function openblasThreads(
  library: string,
): Deno.DynamicLibrary<typeof THREADS> | null {
  try {
    return Deno.dlopen(library, THREADS);
  } catch {
    return null;
  }
}

Deno.test({
  name:
    "createCpuKernels() with split products sets OpenBLAS to one thread while it lives (with one kernel thread too) and restores it on dispose",
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
      // One kernel thread is one thread for the products too.
      const one = await createCpuKernels({ words: 64, threads: 1, cblas });
      assertEquals(lib.symbols.openblas_get_num_threads(), 1);
      one.dispose();
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
    "createCpuKernels() with overlapping lives keeps OpenBLAS at one thread until the last is disposed, then restores the count before the first",
  ...blas,
  fn: async () => {
    const cblas = loadCblas();
    const lib = openblasThreads(cblas.library);
    if (lib === null) return cblas.close(); // not OpenBLAS: nothing is set
    try {
      lib.symbols.openblas_set_num_threads(3);
      const a = await createCpuKernels({ words: 64, threads: 2, cblas });
      const b = await createCpuKernels({ words: 64, threads: 2, cblas });
      a.dispose();
      // b still splits its products: a threaded OpenBLAS under b's threads
      // would run two of its pools' calls at once.
      assertEquals(lib.symbols.openblas_get_num_threads(), 1);
      b.dispose();
      assertEquals(lib.symbols.openblas_get_num_threads(), 3);
    } finally {
      lib.close();
      cblas.close();
    }
  },
});

Deno.test({
  name:
    "createCpuKernels() leaves the CBLAS loaded after dispose (never unloaded while the process lives)",
  ...blas,
  ignore: blas.ignore || Deno.build.os !== "linux",
  fn: async () => {
    const loaded = (library: string) =>
      Deno.readTextFileSync("/proc/self/maps").includes(
        library.slice(library.lastIndexOf("/") + 1).replace(/\.so.*$/, ""),
      );
    for (let i = 0; i < 2; i++) {
      const k = await createCpuKernels({ words: 64, threads: 2 });
      const library = k.cblas.library;
      k.dispose();
      // Unloading ran OpenBLAS's destructor (pool joined, buffers freed) in
      // whichever thread closed the last handle, a worker tearing down among
      // them, and the next engine loaded it afresh.
      assert(loaded(library), `${library} was unloaded by dispose`);
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
