// The CBLAS's own thread count, where the library lets us set it (OpenBLAS,
// MKL, BLIS): the kernels split products over their threads, each calling a
// single-threaded CBLAS. The count is process state shared by every set of
// kernels, so it is held, not set: the first hold saves it and sets 1, the
// last release restores it (kernels with overlapping lives used to restore it
// under each other, leaving a live engine's threads calling a threaded
// OpenBLAS at once). Private.

const SYMBOLS = {
  openblas_set_num_threads: {
    parameters: ["i32"],
    result: "void",
    optional: true,
  },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  MKL_Set_Num_Threads: { parameters: ["i32"], result: "void", optional: true },
  // The global setter behind MKL_Set_Num_Threads, which an MKL linked into
  // another library (PyTorch's libtorch_cpu.so) exports without the public
  // name.
  mkl_serv_set_num_threads: {
    parameters: ["i32"],
    result: "void",
    optional: true,
  },
  MKL_Get_Max_Threads: { parameters: [], result: "i32", optional: true },
  bli_thread_set_num_threads: {
    parameters: ["i64"],
    result: "void",
    optional: true,
  },
  bli_thread_get_num_threads: {
    parameters: [],
    result: "i64",
    optional: true,
  },
} as const;

/** Get and set a CBLAS's thread count. */
export interface BlasThreads {
  get(): number;
  set(n: number): void;
  close(): void;
}

/** The thread control of the library at `path`, or null if it has none. */
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

interface Hold {
  control: BlasThreads;
  before: number;
  holders: number;
}

const holds = new Map<string, Hold>();

/**
 * Hold the library at `path` at one thread until the returned release is
 * called; the count in force before the first hold comes back after the last
 * release. Null if the library has no thread control.
 */
export function holdSingleThreaded(path: string): (() => void) | null {
  let hold = holds.get(path);
  if (hold === undefined) {
    const control = blasThreads(path);
    if (control === null) return null;
    hold = { control, before: control.get(), holders: 0 };
    control.set(1);
    holds.set(path, hold);
  }
  const h = hold;
  h.holders++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--h.holders > 0) return;
    holds.delete(path);
    h.control.set(h.before);
    h.control.close();
  };
}
