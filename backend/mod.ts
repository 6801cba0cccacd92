/**
 * Choosing and initialising the tfjs backend (`auto`, `tensorflow`, `webgpu`,
 * `blas`, `wasm`, `cpu`).
 *
 * Not implemented yet: {@linkcode initBackend} throws.
 *
 * @module
 */

/** The rungs of the backend ladder, fastest first, and `auto`. */
export type BackendName =
  | "auto"
  | "tensorflow"
  | "webgpu"
  | "blas"
  | "wasm"
  | "cpu";

/** Options of {@linkcode initBackend}. */
export interface InitBackendOptions {
  /** Which backend to use; `auto` takes the first rung that works. */
  prefer?: BackendName;
}

/** Which backend runs and why. */
export interface BackendInfo {
  /** The tfjs backend name now active. */
  name: Exclude<BackendName, "auto">;
  /** Why it was chosen, e.g. `blas: OpenBLAS 0.3.21, coretype SKYLAKEX, 2 threads`. */
  reason: string;
}

/**
 * Initialise a tfjs backend.
 *
 * @param options Which backend to prefer.
 * @returns The backend that runs and why.
 */
export function initBackend(
  options: InitBackendOptions = {},
): Promise<BackendInfo> {
  return Promise.reject(
    new Error(
      `initBackend(${
        options.prefer ?? "auto"
      }) is not implemented yet (backend issue)`,
    ),
  );
}
