// A CBLAS's own thread count, where the library lets us read and set it
// (OpenBLAS, MKL, BLIS): `@d3pm/cpu` holds it at one thread while its threads
// call the library, and benchmarks set it per contestant. Re-exported by
// cblas.ts.

/** The thread-count getters, where the library has them (cblas.ts reports them too). */
export const THREAD_GETTERS = {
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  MKL_Get_Max_Threads: { parameters: [], result: "i32", optional: true },
  bli_thread_get_num_threads: {
    parameters: [],
    result: "i64",
    optional: true,
  },
} as const;

const SYMBOLS = {
  ...THREAD_GETTERS,
  openblas_set_num_threads: {
    parameters: ["i32"],
    result: "void",
    optional: true,
  },
  MKL_Set_Num_Threads: { parameters: ["i32"], result: "void", optional: true },
  // The global setter behind MKL_Set_Num_Threads, which an MKL linked into
  // another library (PyTorch's libtorch_cpu.so) exports without the public
  // name.
  mkl_serv_set_num_threads: {
    parameters: ["i32"],
    result: "void",
    optional: true,
  },
  bli_thread_set_num_threads: {
    parameters: ["i64"],
    result: "void",
    optional: true,
  },
} as const;

/** Read and set a CBLAS's thread count (process state of the library). */
export interface BlasThreads {
  /** The threads the library's products use now. */
  get(): number;
  /** Use `n` threads from now on, in every caller of the library. */
  set(n: number): void;
  /** Close this handle to the library (the count set stays). */
  close(): void;
}

/**
 * The thread control of the library at `path` (OpenBLAS's, MKL's or BLIS's
 * setter and getter, opened with their own `Deno.dlopen`), or null if it has
 * none (Accelerate, a reference CBLAS, a path that does not load). The count
 * is the library's, shared by the whole process: restore what you change.
 *
 * @param path The library, e.g. a loaded CBLAS's `library`.
 * @returns The control, or null.
 *
 * @example Hold the library at one thread, then restore its count
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { blasThreads, loadCblas } from "@d3pm/backend/cblas";
 *
 * const blas = loadCblas();
 * const control = blasThreads(blas.library);
 * if (control !== null) {
 *   const before = control.get();
 *   control.set(1);
 *   assertEquals(control.get(), 1);
 *   control.set(before);
 *   control.close();
 * }
 * assertEquals(blasThreads("/no/such/libcblas.so"), null);
 * blas.close();
 * ```
 */
export function blasThreads(path: string): BlasThreads | null {
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(path, SYMBOLS);
  } catch {
    return null;
  }
  const s = lib.symbols;
  const close = () => lib.close();
  if (s.openblas_set_num_threads && s.openblas_get_num_threads) {
    const set = s.openblas_set_num_threads, get = s.openblas_get_num_threads;
    return { get: () => get(), set: (n) => set(n), close };
  }
  const mklSet = s.MKL_Set_Num_Threads ?? s.mkl_serv_set_num_threads;
  if (mklSet && s.MKL_Get_Max_Threads) {
    const set = mklSet, get = s.MKL_Get_Max_Threads;
    return { get: () => get(), set: (n) => set(n), close };
  }
  if (s.bli_thread_set_num_threads && s.bli_thread_get_num_threads) {
    const set = s.bli_thread_set_num_threads;
    const get = s.bli_thread_get_num_threads;
    return {
      get: () => Number(get()),
      set: (n) => set(BigInt(n)),
      close,
    };
  }
  close();
  return null;
}
