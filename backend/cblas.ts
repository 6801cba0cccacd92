/**
 * A CBLAS (OpenBLAS, MKL, BLIS or Accelerate) loaded with `Deno.dlopen`, its
 * thread control, and the `cblas.h` constants its `sgemm` takes. `D3PM_CBLAS_PATH` names the
 * library; otherwise the usual names and paths are tried in order.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { loadCblas } from "@d3pm/backend/cblas";
 *
 * const blas = loadCblas();
 * assert(blas.description.length > 0); // e.g. "OpenBLAS 0.3.21, coretype Haswell, 2 threads"
 * blas.close();
 * ```
 *
 * @module
 */
import { coretypeForFlags, readCpuFlags } from "./_cpu_flags.ts";
import { type FortranSgemm, sgemmThroughFortran } from "./_fortran_sgemm.ts";
import { THREAD_GETTERS } from "./_blas_threads.ts";
export {
  coretypeForFlags,
  readCpuFlags,
  runnableCoretypes,
  X86_CORETYPES,
} from "./_cpu_flags.ts";
export { type BlasThreads, blasThreads } from "./_blas_threads.ts";

/**
 * The environment variable that names the CBLAS library to load.
 *
 * @example A path in the variable is the only library tried
 * ```ts
 * import { assertThrows } from "@std/assert";
 * import { CBLAS_PATH_ENV, loadCblas } from "@d3pm/backend/cblas";
 *
 * const before = Deno.env.get(CBLAS_PATH_ENV);
 * Deno.env.set(CBLAS_PATH_ENV, "/no/such/libcblas.so");
 * try {
 *   assertThrows(() => loadCblas(), Error, `${CBLAS_PATH_ENV}="/no/such/libcblas.so"`);
 * } finally {
 *   if (before === undefined) Deno.env.delete(CBLAS_PATH_ENV);
 *   else Deno.env.set(CBLAS_PATH_ENV, before);
 * }
 * ```
 */
export const CBLAS_PATH_ENV = "D3PM_CBLAS_PATH";

/**
 * Row-major storage, `CblasRowMajor` in `cblas.h`.
 *
 * @example Read a 2×3 matrix row by row
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, loadCblas } from "@d3pm/backend/cblas";
 *
 * const blas = loadCblas();
 * const a = new Float32Array([1, 2, 3, 4, 5, 6]); // [[1, 2, 3], [4, 5, 6]]
 * const ones = new Float32Array([1, 1, 1]); // 3×1
 * const rowSums = new Float32Array(2);
 * blas.sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, 2, 1, 3, 1, a, 3, ones, 1, 0, rowSums, 1);
 * assertEquals([...rowSums], [6, 15]);
 * blas.close();
 * ```
 */
export const CBLAS_ROW_MAJOR = 101;
/**
 * No transpose, `CblasNoTrans` in `cblas.h`.
 *
 * @example Accumulate into C with beta = 1
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, loadCblas } from "@d3pm/backend/cblas";
 *
 * const blas = loadCblas();
 * const identity = new Float32Array([1, 0, 0, 1]);
 * const b = new Float32Array([1, 2, 3, 4]);
 * const c = new Float32Array([10, 10, 10, 10]);
 * // C = 2·I·B + 1·C
 * blas.sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, 2, 2, 2, 2, identity, 2, b, 2, 1, c, 2);
 * assertEquals([...c], [12, 14, 16, 18]);
 * blas.close();
 * ```
 */
export const CBLAS_NO_TRANS = 111;
/**
 * Transpose, `CblasTrans` in `cblas.h`.
 *
 * @example Form the Gram matrix Aᵀ·A without copying A
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, CBLAS_TRANS, loadCblas } from "@d3pm/backend/cblas";
 *
 * const blas = loadCblas();
 * const a = new Float32Array([1, 2, 3, 4, 5, 6]); // 3×2: [[1, 2], [3, 4], [5, 6]]
 * const gram = new Float32Array(4); // 2×2
 * blas.sgemm(CBLAS_ROW_MAJOR, CBLAS_TRANS, CBLAS_NO_TRANS, 2, 2, 3, 1, a, 2, a, 2, 0, gram, 2);
 * assertEquals([...gram], [35, 44, 44, 56]);
 * blas.close();
 * ```
 */
export const CBLAS_TRANS = 112;

/**
 * `cblas_sgemm` as the C library declares it: `C = alpha·op(A)·op(B) + beta·C`.
 * It mirrors the C signature argument for argument (rather than taking an
 * options object) because it sits on the hot path of every matrix product.
 */
export type Sgemm = (
  order: number,
  transA: number,
  transB: number,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
) => void;

/** A CBLAS loaded through `Deno.dlopen`. */
export interface Cblas {
  /**
   * The `cblas_sgemm` function (or, for a library with only the Fortran
   * `sgemm_`, the same contract through it: see {@linkcode Cblas.entry}).
   */
  sgemm: Sgemm;
  /**
   * The library's symbol behind {@linkcode Cblas.sgemm}: `cblas_sgemm`, or
   * the Fortran `sgemm_` of a library that exports no CBLAS (PyTorch's
   * `libtorch_cpu.so`, which carries MKL's, or a reference BLAS); row-major
   * products go through it as the transposed column-major product, which is
   * what a CBLAS does itself. Absent on a hand-made `Cblas`: `cblas_sgemm`.
   */
  entry?: "cblas_sgemm" | "sgemm_";
  /** The library file or name that loaded. */
  library: string;
  /** Which implementation it is. */
  vendor: "OpenBLAS" | "MKL" | "BLIS" | "Accelerate" | "CBLAS";
  /** The implementation's own version string, where it reports one. */
  version: string;
  /** OpenBLAS's kernel family in use (e.g. `SkylakeX`), where known. */
  coretype?: string;
  /** How many threads the library uses, where it reports it. */
  threads?: number;
  /** One line for people, e.g. `OpenBLAS 0.3.21, coretype SkylakeX, 2 threads`. */
  description: string;
  /**
   * Close this handle; `sgemm` must not be called afterwards. The library
   * itself stays loaded until the thread (the process, for the main thread)
   * ends: see {@linkcode loadCblas}.
   */
  close(): void;
}

/** Options of {@linkcode loadCblas}. */
export interface LoadCblasOptions {
  /**
   * The library to load (a file path or a name the dynamic loader finds).
   * Defaults to the `D3PM_CBLAS_PATH` environment variable, else the first of
   * the usual OpenBLAS, MKL, BLIS and Accelerate names and paths that loads.
   */
  path?: string;
  /**
   * `OPENBLAS_CORETYPE` to set before loading when the environment has none;
   * defaults to the one matching the CPU's flags (`SKYLAKEX` for AVX-512,
   * `HASWELL` for AVX2). `false` leaves the environment alone.
   */
  coretype?: string | false;
}

const SYMBOLS = {
  cblas_sgemm: {
    optional: true,
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  // Fortran: every argument by reference. gfortran's ABI adds the two
  // character arguments' lengths after them; MKL's and OpenBLAS's sgemm_
  // (C entry points) do not read them, so they are left off.
  sgemm_: {
    optional: true,
    parameters: Array<"buffer">(13).fill("buffer"),
    result: "void",
  },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
  MKL_Get_Version_String: {
    parameters: ["buffer", "i32"],
    result: "void",
    optional: true,
  },
  bli_info_get_version_str: {
    parameters: [],
    result: "pointer",
    optional: true,
  },
  ...THREAD_GETTERS,
} as const;

/**
 * The library names and paths tried in order when no path is given.
 *
 * @example The library that loads is the first candidate that works
 * ```ts
 * import { assert } from "@std/assert";
 * import { CBLAS_CANDIDATES, CBLAS_PATH_ENV, loadCblas } from "@d3pm/backend/cblas";
 *
 * const blas = loadCblas();
 * if (!Deno.env.get(CBLAS_PATH_ENV)) assert(CBLAS_CANDIDATES.includes(blas.library));
 * assert(blas.description.length > 0);
 * blas.close();
 * ```
 */
export const CBLAS_CANDIDATES: readonly string[] = [
  "libopenblas.so.0",
  "libopenblas.so",
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib64/libopenblas.so.0",
  "/usr/lib64/libopenblasp.so.0",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
  "/usr/local/opt/openblas/lib/libopenblas.dylib",
  "libmkl_rt.so.2",
  "libmkl_rt.so",
  "/opt/intel/oneapi/mkl/latest/lib/intel64/libmkl_rt.so.2",
  "libblis.so.4",
  "libblis.so",
  "/System/Library/Frameworks/Accelerate.framework/Accelerate",
  "libopenblas.dll",
  "mkl_rt.2.dll",
];

function cString(pointer: Deno.PointerValue): string {
  return pointer === null
    ? ""
    : new Deno.UnsafePointerView(pointer).getCString();
}

function setCoretype(coretype: string | false | undefined): void {
  if (coretype === false) return;
  try {
    if (Deno.env.get("OPENBLAS_CORETYPE") !== undefined) return;
    const chosen = coretype ??
      (Deno.build.arch === "x86_64"
        ? (() => {
          const flags = readCpuFlags();
          return flags === undefined ? undefined : coretypeForFlags(flags);
        })()
        : undefined);
    if (chosen !== undefined) Deno.env.set("OPENBLAS_CORETYPE", chosen);
  } catch {
    // No --allow-env: OpenBLAS detects the CPU itself.
  }
}

function envPath(): string | undefined {
  try {
    return Deno.env.get(CBLAS_PATH_ENV) || undefined;
  } catch {
    return undefined;
  }
}

type Library = Deno.DynamicLibrary<typeof SYMBOLS>;

// One handle per library, never closed: the library is loaded once per
// thread and never unloaded. Unloading OpenBLAS runs its destructor (joins
// its thread pool, frees its buffers) in whichever thread closes the last
// handle — a kernel worker tearing down, possibly while the process exits —
// and loading it again starts a new pool; a CPU engine's dispose did both.
const pinned = new Map<string, Deno.DynamicLibrary<Record<string, never>>>();

function pin(library: string): void {
  if (!pinned.has(library)) pinned.set(library, Deno.dlopen(library, {}));
}

function describe(lib: Library, library: string): Cblas {
  const s = lib.symbols;
  const close = () => lib.close();
  let sgemm: Sgemm, entry: "cblas_sgemm" | "sgemm_", via = "";
  if (s.cblas_sgemm !== null) {
    sgemm = s.cblas_sgemm as unknown as Sgemm;
    entry = "cblas_sgemm";
  } else if (s.sgemm_ !== null) {
    sgemm = sgemmThroughFortran(s.sgemm_ as unknown as FortranSgemm);
    entry = "sgemm_";
    via = ", through Fortran sgemm_";
  } else {
    close();
    throw new Error("exports neither cblas_sgemm nor sgemm_");
  }
  if (s.openblas_get_config !== null) {
    const config = cString(s.openblas_get_config());
    const version = config.match(/OpenBLAS\s+([\d.]+)/)?.[1] ?? config;
    const coretype = s.openblas_get_corename !== null
      ? cString(s.openblas_get_corename())
      : undefined;
    const threads = s.openblas_get_num_threads?.() ?? undefined;
    return {
      sgemm,
      entry,
      library,
      vendor: "OpenBLAS",
      version,
      coretype,
      threads,
      description: `OpenBLAS ${version}${
        coretype ? `, coretype ${coretype}` : ""
      }${threads !== undefined ? `, ${threads} threads` : ""}${via}`,
      close,
    };
  }
  if (s.MKL_Get_Max_Threads !== null) {
    const threads = s.MKL_Get_Max_Threads();
    let version = "";
    if (s.MKL_Get_Version_String !== null) {
      const text = new Uint8Array(256);
      s.MKL_Get_Version_String(text, text.length);
      const end = text.indexOf(0);
      version = new TextDecoder().decode(text.subarray(0, end < 0 ? 0 : end))
        .match(/Version\s+([\w.]+)/)?.[1] ?? "";
    }
    return {
      sgemm,
      entry,
      library,
      vendor: "MKL",
      version,
      threads,
      description: `MKL${
        version ? ` ${version}` : ""
      } (${library}), ${threads} threads${via}`,
      close,
    };
  }
  if (s.bli_info_get_version_str !== null) {
    const version = cString(s.bli_info_get_version_str());
    const threads = s.bli_thread_get_num_threads !== null
      ? Number(s.bli_thread_get_num_threads())
      : undefined;
    return {
      sgemm,
      entry,
      library,
      vendor: "BLIS",
      version,
      threads,
      description: `BLIS ${version}${
        threads !== undefined ? `, ${threads} threads` : ""
      }${via}`,
      close,
    };
  }
  const vendor = library.includes("Accelerate") ? "Accelerate" : "CBLAS";
  return {
    sgemm,
    entry,
    library,
    vendor,
    version: "",
    description: `${vendor} (${library})${via}`,
    close,
  };
}

/**
 * Load a CBLAS through `Deno.dlopen` (needs `--allow-ffi`; `--allow-env` and
 * `--allow-read` let it honour `D3PM_CBLAS_PATH` and set `OPENBLAS_CORETYPE`
 * from `/proc/cpuinfo`). The first load of a library in a thread keeps it
 * loaded for the thread's life: closing the returned handle never unloads it
 * (OpenBLAS unloaded and loaded again per engine, its destructor running in
 * a worker's teardown, was a hazard at exit).
 *
 * @param options Which library to load and the OpenBLAS core type.
 * @returns The loaded library with its `sgemm`.
 * @throws {Error} When no library loads, listing what was tried and why.
 *
 * @example Multiply two 2×2 matrices
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, loadCblas } from "@d3pm/backend/cblas";
 *
 * const blas = loadCblas();
 * const a = new Float32Array([1, 2, 3, 4]);
 * const c = new Float32Array(4);
 * blas.sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, 2, 2, 2, 1, a, 2, a, 2, 0, c, 2);
 * assertEquals([...c], [7, 10, 15, 22]);
 * blas.close();
 * ```
 */
export function loadCblas(options: LoadCblasOptions = {}): Cblas {
  const explicit = options.path ?? envPath();
  const candidates = explicit !== undefined ? [explicit] : CBLAS_CANDIDATES;
  setCoretype(options.coretype);
  const failures: string[] = [];
  for (const candidate of candidates) {
    try {
      const cblas = describe(Deno.dlopen(candidate, SYMBOLS), candidate);
      pin(candidate);
      return cblas;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (/permission|--allow-ffi/i.test(message)) {
        throw new Error(
          `Cannot load a CBLAS: FFI is not permitted (run with --allow-ffi)`,
        );
      }
      // Deno's dlopen error repeats "Could not open library: " and the path.
      const why = message.split("\n")[0]
        .replace(/^(Could not open library: )+/, "")
        .replace(`${candidate}: `, "");
      failures.push(`${candidate}: ${why}`);
    }
  }
  throw new Error(
    explicit !== undefined
      ? `Cannot load a CBLAS from ${
        options.path !== undefined
          ? `path "${explicit}"`
          : `${CBLAS_PATH_ENV}="${explicit}"`
      }: ${failures[0]}`
      : `Cannot load a CBLAS: none of ${candidates.length} library names loads (install libopenblas0-pthread, or set ${CBLAS_PATH_ENV})`,
  );
}
