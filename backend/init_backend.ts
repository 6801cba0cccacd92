/**
 * Choosing the tfjs backend: {@linkcode initBackend} walks the ladder
 * `tensorflow` → `webgpu` → `blas` → `wasm` → `cpu` and reports which rung
 * runs, why, and why each rung above it did not.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { assertEquals } from "@std/assert";
 * import { initBackend } from "@d3pm/backend/init-backend";
 *
 * const info = await initBackend({ prefer: "cpu", log: () => {} });
 * assertEquals(info.name, "cpu");
 * assertEquals(tf.getBackend(), "cpu");
 * ```
 *
 * @module
 */
import { prepareVulkan } from "./vulkan_env.ts";
import * as tf from "@tensorflow/tfjs";
import { registerBlasBackend } from "./blas_backend.ts";
import { addWasmExtras } from "./_wasm_extras.ts";

/** The rungs of the backend ladder, fastest first, and `auto`. */
export type BackendName =
  | "auto"
  | "tensorflow"
  | "webgpu"
  | "blas"
  | "wasm"
  | "cpu";

/**
 * The ladder `auto` walks, fastest first.
 *
 * @example Every rung skipped sits above the one that runs
 * ```ts
 * import { assert, assertEquals } from "@std/assert";
 * import { BACKEND_LADDER, initBackend } from "@d3pm/backend";
 *
 * assertEquals(BACKEND_LADDER.at(-1), "cpu"); // the rung that always works
 * const info = await initBackend({ log: () => {} });
 * const rung = (name: string) => BACKEND_LADDER.indexOf(name as typeof BACKEND_LADDER[number]);
 * assert(rung(info.name) >= 0);
 * for (const skipped of info.skipped) assert(rung(skipped.name) < rung(info.name));
 * ```
 */
export const BACKEND_LADDER: readonly Exclude<BackendName, "auto">[] = [
  "tensorflow",
  "webgpu",
  "blas",
  "wasm",
  "cpu",
];

/** Options of {@linkcode initBackend}. */
export interface InitBackendOptions {
  /**
   * Which backend to use; `auto` (the default) takes the first rung of the
   * ladder that works. A named rung is tried first and, when it is
   * unavailable, the rungs below it follow (unless `fallback` is false).
   * Naming `webgpu` accepts a software adapter, which `auto` skips.
   */
  prefer?: BackendName;
  /** Go down the ladder when the preferred rung is unavailable; default true. */
  fallback?: boolean;
  /** Where to print each skipped rung and the choice; default `console.error`. */
  log?: (line: string) => void;
}

/** Which backend runs and why. */
export interface BackendInfo {
  /** The tfjs backend name now active. */
  name: Exclude<BackendName, "auto">;
  /** Why it was chosen, e.g. `blas: OpenBLAS 0.3.21, coretype SKYLAKEX, 2 threads`. */
  reason: string;
  /** The rungs tried before it and why each was unavailable. */
  skipped: { name: Exclude<BackendName, "auto">; reason: string }[];
}

type Rung = (strict: boolean) => Promise<string>;

/** Thrown by a rung that cannot run here; its message is the reason. */
class Unavailable extends Error {}

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0];
}

async function use(name: string): Promise<void> {
  let ok = false;
  try {
    ok = await tf.setBackend(name);
    await tf.ready();
  } catch (error) {
    throw new Unavailable(`tfjs could not initialise it: ${message(error)}`);
  }
  if (!ok || tf.getBackend() !== name) {
    throw new Unavailable("tfjs could not initialise it");
  }
}

const tensorflow: Rung = async () => {
  // Only what the import map (or D3PM_TFJS_NODE) names: resolving an unlisted
  // npm package would download it and rewrite the lock file.
  let explicit: string | undefined;
  try {
    explicit = Deno.env.get("D3PM_TFJS_NODE") || undefined;
  } catch { /* no --allow-env */ }
  const names = explicit !== undefined
    ? [explicit]
    : ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"];
  const failures: string[] = [];
  for (const name of names) {
    let specifier: string;
    try {
      specifier = import.meta.resolve(name);
    } catch {
      failures.push(`${name} is not in the import map`);
      continue;
    }
    try {
      await import(specifier);
    } catch (error) {
      failures.push(`${name} does not load (${message(error)})`);
      continue;
    }
    await use("tensorflow");
    return `tensorflow: ${name} (libtensorflow ${
      (tf.engine().backend as unknown as { binding?: { TF_Version?: string } })
        .binding?.TF_Version ?? "version unknown"
    })`;
  }
  throw new Unavailable(
    `${
      failures.join("; ")
    } (it needs libtensorflow, which its install downloads; optional)`,
  );
};

interface AdapterLike {
  info?: {
    vendor?: string;
    architecture?: string;
    description?: string;
    device?: string;
    isFallbackAdapter?: boolean;
  };
  isFallbackAdapter?: boolean;
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software|warp/i;

const webgpu: Rung = async (strict) => {
  const gpu = (navigator as unknown as {
    gpu?: { requestAdapter(o?: object): Promise<AdapterLike | null> };
  }).gpu;
  if (gpu === undefined) {
    throw new Unavailable(
      "navigator.gpu is missing (this Deno has no WebGPU; try --unstable-webgpu)",
    );
  }
  const icdNote = prepareVulkan();
  let adapter: AdapterLike | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (error) {
    throw new Unavailable(`requestAdapter failed: ${message(error)}`);
  }
  if (adapter === null) {
    throw new Unavailable(
      "no WebGPU adapter (no Vulkan/Metal/DX12 driver, or no libvulkan.so.1; apt: libvulkan1, and mesa-vulkan-drivers for a software one)",
    );
  }
  const info = adapter.info ?? {};
  const label = [info.description, info.vendor, info.architecture]
    .filter((s) => s).join(", ") || "unknown adapter";
  const software = adapter.isFallbackAdapter === true ||
    info.isFallbackAdapter === true || SOFTWARE.test(label);
  if (software && !strict) {
    throw new Unavailable(
      `only a software adapter (${label}), not a real GPU; asked for by name it is used anyway (--backend webgpu where a command has it; prefer: "webgpu")`,
    );
  }
  try {
    await import("@tensorflow/tfjs-backend-webgpu");
  } catch (error) {
    throw new Unavailable(
      `@tensorflow/tfjs-backend-webgpu does not load: ${message(error)}`,
    );
  }
  await use("webgpu");
  return `webgpu: ${label}${software ? " (software adapter)" : ""}${
    icdNote ? `, via ${icdNote}` : ""
  }`;
};

const blas: Rung = async () => {
  let backend;
  try {
    backend = registerBlasBackend();
  } catch (error) {
    throw new Unavailable(message(error));
  }
  await use(backend.name);
  return `blas: ${backend.cblas.description}`;
};

const wasm: Rung = async () => {
  let module: { getThreadsCount(): number };
  try {
    module = await import("@tensorflow/tfjs-backend-wasm");
  } catch (error) {
    throw new Unavailable(
      `@tensorflow/tfjs-backend-wasm does not load: ${message(error)}`,
    );
  }
  await use("wasm");
  addWasmExtras();
  const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
  return `wasm: tfjs-backend-wasm ${tf.version_core}, ${
    simd ? "SIMD" : "no SIMD"
  }, ${module.getThreadsCount()} thread(s)`;
};

const cpu: Rung = async () => {
  await use("cpu");
  return "cpu: the tfjs reference kernels (correct but slow)";
};

const RUNGS: Record<Exclude<BackendName, "auto">, Rung> = {
  tensorflow,
  webgpu,
  blas,
  wasm,
  cpu,
};

/**
 * Initialise a tfjs backend: the preferred one, else the first rung of the
 * ladder `tensorflow` → `webgpu` (a real GPU) → `blas` → `wasm` → `cpu` that
 * works. Each unavailable rung is printed with its reason, never thrown.
 *
 * @param options Which backend to prefer, whether to fall back, where to print.
 * @returns The backend that runs, why, and why the rungs above it did not.
 * @throws {Error} Only when `fallback` is false and the preferred rung fails,
 *   or when `prefer` names no rung.
 *
 * @example Pick the best backend available
 * ```ts
 * import { assert } from "@std/assert";
 * import { initBackend } from "@d3pm/backend";
 *
 * const info = await initBackend({ log: () => {} });
 * assert(["tensorflow", "webgpu", "blas", "wasm", "cpu"].includes(info.name));
 * ```
 */
export async function initBackend(
  options: InitBackendOptions = {},
): Promise<BackendInfo> {
  const prefer = options.prefer ?? "auto";
  const log = options.log ?? ((line: string) => console.error(line));
  if (prefer !== "auto" && !(prefer in RUNGS)) {
    throw new RangeError(
      `Cannot initialise backend "${prefer}": expected one of auto, ${
        BACKEND_LADDER.join(", ")
      }`,
    );
  }
  const start = prefer === "auto" ? 0 : BACKEND_LADDER.indexOf(prefer);
  const rungs = options.fallback === false
    ? [BACKEND_LADDER[start]]
    : BACKEND_LADDER.slice(start);
  const skipped: BackendInfo["skipped"] = [];
  for (const name of rungs) {
    try {
      const reason = await RUNGS[name](name === prefer);
      log(`backend ${reason}`);
      return { name, reason, skipped };
    } catch (error) {
      const reason = error instanceof Unavailable
        ? error.message
        : `failed: ${message(error)}`;
      skipped.push({ name, reason });
      log(`backend ${name} unavailable: ${reason}`);
    }
  }
  throw new Error(
    `Cannot initialise backend "${prefer}": ${
      skipped.map((s) => `${s.name}: ${s.reason}`).join("; ")
    }`,
  );
}
