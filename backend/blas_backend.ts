/**
 * The `blas` tfjs backend: tfjs's `cpu` backend with its hot kernels
 * replaced — matrix products through a CBLAS (`cblas_sgemm`), plain-loop
 * element-wise ops, reductions, softmax, transpose, gather and its gradient,
 * and the fused training ops — each falling back to `cpu`'s own kernel for
 * the cases it does not cover.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assert } from "@std/assert";
 * import { registerBlasBackend } from "@d3pm/backend/blas-backend";
 *
 * const blas = registerBlasBackend();
 * await tf.setBackend(blas.name);
 * assert(blas.kernels.includes("BatchMatMul"));
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Cblas, loadCblas } from "./cblas.ts";
import { binaryKernels } from "./_binary.ts";
import { FUSED, fusedKernels } from "./_fused.ts";
import { gatherKernels } from "./_gather.ts";
import type { FastKernel, KernelArgs } from "./_kernel_util.ts";
import { matmulKernels } from "./_matmul.ts";
import { miscKernels } from "./_misc.ts";
import { FloatPool } from "./_pool.ts";
import { reduceKernels } from "./_reduce.ts";
import { softmaxKernels } from "./_softmax.ts";
import { transposeKernels } from "./_transpose.ts";
import { unaryKernels } from "./_unary.ts";

export type { Cblas, Sgemm } from "./cblas.ts";

/**
 * The tfjs backend name under which the fast CPU backend registers.
 *
 * @example Select the fast CPU backend by name
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { BLAS_BACKEND_NAME, registerBlasBackend } from "@d3pm/backend";
 *
 * assertEquals(registerBlasBackend().name, BLAS_BACKEND_NAME);
 * await tf.setBackend(BLAS_BACKEND_NAME);
 * assertEquals(tf.getBackend(), "blas");
 * ```
 */
export const BLAS_BACKEND_NAME = "blas";

/** What {@linkcode registerBlasBackend} registered. */
export interface BlasBackend {
  /** The tfjs backend name, `blas`. */
  name: string;
  /** The CBLAS behind its matrix products. */
  cblas: Cblas;
  /** The kernels it replaces with its own; the rest are tfjs `cpu`'s. */
  kernels: readonly string[];
}

/** Options of {@linkcode registerBlasBackend}. */
export interface RegisterBlasBackendOptions {
  /** The CBLAS to use; defaults to {@linkcode loadCblas}`()`. */
  cblas?: Cblas;
  /** tfjs's priority for the backend when nothing is set; defaults to 0. */
  priority?: number;
  /** The most bytes of freed tensors kept for reuse; defaults to 1 GiB. */
  poolBytes?: number;
}

type DataStore = {
  has(id: tf.DataId): boolean;
  get(id: tf.DataId): { values?: unknown };
};

// tfjs's MathBackendCPU whose float32 outputs come from a FloatPool.
function pooledBackendClass(
  Base: new () => tf.KernelBackend,
  poolBytes: number,
): new () => tf.KernelBackend {
  return class extends Base {
    pool: FloatPool = new FloatPool(poolBytes);
    constructor() {
      super();
      // Silence tfjs's "install tfjs-node" banner: this backend is the answer.
      (this as unknown as { firstUse: boolean }).firstUse = false;
    }
    #data(): DataStore {
      return (this as unknown as { data: DataStore }).data;
    }
    override write(
      values: tf.BackendValues,
      shape: number[],
      dtype: tf.DataType,
    ): tf.DataId {
      const id = super.write(values, shape, dtype);
      this.pool.retain(values);
      return id;
    }
    override move(
      dataId: tf.DataId,
      values: tf.BackendValues,
      shape: number[],
      dtype: tf.DataType,
      refCount: number,
    ): void {
      super.move(dataId, values, shape, dtype, refCount);
      this.pool.retain(values);
    }
    override readSync(dataId: tf.DataId): tf.BackendValues {
      const data = this.#data();
      if (data.has(dataId)) this.pool.escape(data.get(dataId).values);
      return super.readSync(dataId);
    }
    override disposeData(dataId: tf.DataId, force?: boolean): boolean {
      const data = this.#data();
      const values = data.has(dataId) ? data.get(dataId).values : undefined;
      const freed = super.disposeData(dataId, force);
      if (values !== undefined && !data.has(dataId)) this.pool.release(values);
      return freed;
    }
    override dispose(): void {
      this.pool.clear();
      super.dispose();
    }
  };
}

let registered: BlasBackend | undefined;

// tfjs's Softmax gradient is four kernels (mul, sum, mul, sub); on blas it
// becomes one pass per row. Gradients are registered per kernel, not per
// backend, so the override hands every other backend (and float32 inputs it
// cannot read) to tfjs's own gradient.
function overrideSoftmaxGradient(): void {
  const original = tf.getGradient(tf.Softmax);
  if (original === undefined) return;
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [y] = saved;
      const d = Array.isArray(dy) ? dy[0] : dy;
      if (
        tf.getBackend() !== BLAS_BACKEND_NAME || y.dtype !== "float32" ||
        d.dtype !== "float32"
      ) return original.gradFunc(dy, saved, attrs);
      return {
        logits: () =>
          tf.engine().runKernel(FUSED.softmaxGrad, { dy: d, y }) as tf.Tensor,
      };
    },
  });
}

/**
 * Register the `blas` tfjs backend: a `MathBackendCPU` with every kernel of
 * tfjs's `cpu` backend, where the hot ones (matrix products through
 * `cblas_sgemm`, element-wise ops, reductions, softmax, transpose, gather and
 * its gradient) are replaced by fast kernels that fall back to `cpu`'s own for
 * cases they do not cover. Registering twice returns the first registration.
 *
 * @param options The CBLAS to use and the backend's priority.
 * @returns The backend's name, its CBLAS and the kernels it replaces.
 * @throws {Error} When no CBLAS loads (see {@linkcode loadCblas}).
 *
 * @example Multiply on the blas backend
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { registerBlasBackend } from "@d3pm/backend/blas-backend";
 *
 * const blas = registerBlasBackend();
 * await tf.setBackend(blas.name);
 * const c = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[1], [1]]));
 * assertEquals(Array.from(await c.data()), [3, 7]);
 * ```
 */
export function registerBlasBackend(
  options: RegisterBlasBackendOptions = {},
): BlasBackend {
  if (registered !== undefined) return registered;
  const cpu = tf.findBackend("cpu");
  if (cpu === null) {
    throw new Error(
      "Cannot register the blas backend: tfjs has no cpu backend to extend (import the full @tensorflow/tfjs)",
    );
  }
  const cblas = options.cblas ?? loadCblas();
  const BlasBackend = pooledBackendClass(
    cpu.constructor as new () => tf.KernelBackend,
    options.poolBytes ?? 1024 * 1024 * 1024,
  );
  const fast: Record<string, FastKernel> = {
    ...matmulKernels(cblas.sgemm),
    ...binaryKernels(),
    ...unaryKernels(),
    ...reduceKernels(),
    ...softmaxKernels(),
    ...transposeKernels(),
    ...gatherKernels(),
    ...miscKernels(),
  };
  const replaced: string[] = [];
  for (const config of tf.getKernelsForBackend("cpu")) {
    const own = fast[config.kernelName];
    const fallback = config.kernelFunc;
    if (own === undefined) {
      tf.registerKernel({ ...config, backendName: BLAS_BACKEND_NAME });
      continue;
    }
    replaced.push(config.kernelName);
    tf.registerKernel({
      kernelName: config.kernelName,
      backendName: BLAS_BACKEND_NAME,
      kernelFunc: (args) => own(args as unknown as KernelArgs, fallback),
    });
  }
  // The fused ops' own kernels (see fused_ops.ts), which only blas has.
  for (const [kernelName, kernelFunc] of Object.entries(fusedKernels())) {
    tf.registerKernel({
      kernelName,
      backendName: BLAS_BACKEND_NAME,
      kernelFunc: (args) => kernelFunc(args as unknown as KernelArgs),
    });
  }
  overrideSoftmaxGradient();
  tf.registerBackend(
    BLAS_BACKEND_NAME,
    () => new BlasBackend(),
    options.priority ?? 0,
  );
  registered = {
    name: BLAS_BACKEND_NAME,
    cblas,
    kernels: replaced.sort(),
  };
  return registered;
}
