/**
 * The process environment WebGPU needs on headless Linux machines, prepared
 * once per process before the first adapter request: a private
 * `XDG_RUNTIME_DIR` (Mesa's drivers complain without one), on NVIDIA
 * machines whose Vulkan manifest names the X-only GLX library, a manifest
 * for the headless EGL one (both in the temporary folder, removed when the
 * process returns, calls `Deno.exit` or ends on an uncaught error), and where
 * Vulkan is installed, Deno's WebGPU kept to Vulkan
 * (`DENO_WEBGPU_BACKEND=vulkan`; see {@linkcode planWebGpuBackends}).
 * Used by the backend ladder and the WebGPU engine.
 *
 * @example
 * ```ts
 * import { prepareVulkan } from "@d3pm/backend/vulkan-env";
 * import { assertEquals } from "@std/assert";
 * const note = prepareVulkan();
 * assertEquals(prepareVulkan(), note); // prepared once; the same note after
 * assertEquals(typeof Deno.env.get("XDG_RUNTIME_DIR"), "string");
 * ```
 *
 * @module
 */

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

let prepared = false;
let note: string | undefined;

/**
 * Prepare the environment for Vulkan (see the module doc); idempotent.
 *
 * @returns A note when the NVIDIA EGL manifest was chosen, else undefined.
 *
 * @example Called before the first adapter request; later calls change nothing
 * ```ts
 * import { prepareVulkan } from "@d3pm/backend/vulkan-env";
 * import { assert, assertEquals } from "@std/assert";
 * const note = prepareVulkan();
 * const dir = Deno.env.get("XDG_RUNTIME_DIR");
 * assert(dir); // Mesa's drivers stay quiet
 * assertEquals(prepareVulkan(), note);
 * assertEquals(Deno.env.get("XDG_RUNTIME_DIR"), dir);
 * ```
 */
export function prepareVulkan(): string | undefined {
  // In a browser (the dashboard's engine) there is no process to prepare.
  if (typeof Deno === "undefined") return undefined;
  if (!prepared) {
    prepared = true;
    note = headlessNvidiaIcd();
    quietRuntimeDir();
    // After the NVIDIA manifest: the ICD variables it sets count as drivers.
    vulkanOnly();
  }
  return note;
}

/**
 * Folders where NVIDIA's Vulkan manifest (`nvidia_icd.json`, or another
 * `nvidia*.json`) is looked for when neither `VK_DRIVER_FILES` nor
 * `VK_ICD_FILENAMES` is set: container runtimes mount the driver under
 * `/usr/local/nvidia`, distributions install it in the loader's folders.
 *
 * @example A folder of one's own searched before the system's
 * ```ts
 * import { NVIDIA_ICD_DIRS, NVIDIA_LIBRARY_DIRS, planHeadlessNvidiaIcd } from "@d3pm/backend/vulkan-env";
 * import { assertEquals } from "@std/assert";
 * assertEquals(NVIDIA_ICD_DIRS[0], "/usr/local/nvidia/share/vulkan/icd.d"); // the container mount first
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/nvidia_icd.json`, JSON.stringify({
 *   file_format_version: "1.0.1",
 *   ICD: { library_path: "libGLX_nvidia.so.0", api_version: "1.3.0" },
 * }));
 * Deno.writeTextFileSync(`${dir}/libEGL_nvidia.so.0`, "");
 * const plan = planHeadlessNvidiaIcd({
 *   env: () => undefined, // no display, no ICD variable set
 *   icdDirs: [dir, ...NVIDIA_ICD_DIRS],
 *   libraryDirs: [dir, ...NVIDIA_LIBRARY_DIRS],
 * })!;
 * assertEquals(plan.replaces, `${dir}/nvidia_icd.json`);
 * assertEquals(plan.variables("/tmp/egl.json"), { VK_ICD_FILENAMES: "/tmp/egl.json" });
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export const NVIDIA_ICD_DIRS: readonly string[] = [
  "/usr/local/nvidia/share/vulkan/icd.d",
  "/usr/share/vulkan/icd.d",
  "/etc/vulkan/icd.d",
  "/usr/local/share/vulkan/icd.d",
  "/usr/local/nvidia/etc/vulkan/icd.d",
];

/**
 * Folders searched for `libEGL_nvidia.so.0` (after the folder of the GLX
 * library, when the manifest names it by an absolute path).
 *
 * @example The distributions' multiarch folders come first
 * ```ts
 * import { NVIDIA_LIBRARY_DIRS } from "@d3pm/backend/vulkan-env";
 * import { assertEquals } from "@std/assert";
 * assertEquals(NVIDIA_LIBRARY_DIRS.slice(0, 2), ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]);
 * assertEquals(NVIDIA_LIBRARY_DIRS.includes("/usr/local/nvidia/lib64"), true);
 * ```
 */
export const NVIDIA_LIBRARY_DIRS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/usr/lib64",
  "/usr/local/nvidia/lib64",
  "/usr/local/nvidia/lib",
  "/usr/lib",
  "/lib",
];

/** Where {@linkcode planHeadlessNvidiaIcd} looks; the defaults are the system's. */
export interface NvidiaIcdSearch {
  /** Reads a variable (default: `Deno.env.get`; empty counts as unset). */
  env?: (name: string) => string | undefined;
  /** Manifest folders used when no ICD variable is set (default {@linkcode NVIDIA_ICD_DIRS}). */
  icdDirs?: readonly string[];
  /** Library folders (default {@linkcode NVIDIA_LIBRARY_DIRS}). */
  libraryDirs?: readonly string[];
}

/** A Vulkan ICD manifest, as the loader reads it. */
export interface IcdManifest {
  /** The manifest format, `1.0.1`. */
  file_format_version: string;
  /** The driver library and the Vulkan version it implements. */
  ICD: { library_path: string; api_version: string };
}

/** What {@linkcode planHeadlessNvidiaIcd} decides. */
export interface HeadlessIcdPlan {
  /** The manifest to write: NVIDIA's EGL library, the GLX manifest's API version. */
  manifest: IcdManifest;
  /** The GLX manifest it stands in for. */
  replaces: string;
  /** One line for logs. */
  note: string;
  /**
   * The variables to set once the manifest is written at `path`: each ICD
   * variable that was set, its GLX entry replaced by `path` (other entries
   * kept); `VK_ICD_FILENAMES` alone when none was set.
   */
  variables(path: string): Record<string, string>;
}

function readManifest(path: string): IcdManifest | undefined {
  try {
    const m = JSON.parse(Deno.readTextFileSync(path));
    return typeof m?.ICD?.library_path === "string" ? m : undefined;
  } catch {
    return undefined;
  }
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function jsonFiles(dir: string, pattern = /\.json$/): string[] {
  try {
    return [...Deno.readDirSync(dir)]
      .filter((e) => !e.isDirectory && pattern.test(e.name))
      .map((e) => `${dir}/${e.name}`)
      .sort();
  } catch {
    return [];
  }
}

const GLX = /libGLX_nvidia/;
const ICD_VARS = ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"] as const;

/**
 * On a headless Linux machine, NVIDIA's Vulkan ICD manifest names
 * `libGLX_nvidia.so.0`, which cannot create an instance without a display
 * ("Could not get 'vkCreateInstance'"); `libEGL_nvidia.so.0` carries the same
 * driver and works headless. This finds the GLX manifest — among the files
 * (or folders) that `VK_DRIVER_FILES` or `VK_ICD_FILENAMES` names when one is
 * set (the loader reads `VK_DRIVER_FILES` first), else in
 * {@linkcode NVIDIA_ICD_DIRS} — and the EGL library beside it, and plans the
 * replacement. Nothing is planned when a display exists (`DISPLAY`,
 * `WAYLAND_DISPLAY`), when the manifests in use already name another library,
 * or when no `libEGL_nvidia.so.0` is found. Reads files; writes nothing.
 *
 * The EGL library's own dependencies (`libnvidia-eglcore.so.*`, beside it)
 * must be on the dynamic linker's path when the process starts (e.g.
 * `LD_LIBRARY_PATH=/usr/local/nvidia/lib64`); `tools/gpu_run.sh` sets that.
 *
 * @param search Where to look (defaults: this system).
 * @returns The plan, or undefined when nothing should change.
 *
 * @example
 * ```ts
 * import { planHeadlessNvidiaIcd } from "@d3pm/backend/vulkan-env";
 * import { assertEquals } from "@std/assert";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/nvidia_icd.json`, JSON.stringify({
 *   file_format_version: "1.0.1",
 *   ICD: { library_path: "libGLX_nvidia.so.0", api_version: "1.4.312" },
 * }));
 * Deno.writeTextFileSync(`${dir}/libEGL_nvidia.so.0`, "");
 * const vars: Record<string, string> = {
 *   VK_DRIVER_FILES: `${dir}/nvidia_icd.json`, // set, but to the GLX manifest
 * };
 * const plan = planHeadlessNvidiaIcd({
 *   env: (name) => vars[name],
 *   libraryDirs: [dir],
 * })!;
 * assertEquals(plan.manifest.ICD, {
 *   library_path: `${dir}/libEGL_nvidia.so.0`,
 *   api_version: "1.4.312",
 * });
 * assertEquals(plan.variables("/tmp/egl.json"), {
 *   VK_DRIVER_FILES: "/tmp/egl.json",
 * });
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function planHeadlessNvidiaIcd(
  search: NvidiaIcdSearch = {},
): HeadlessIcdPlan | undefined {
  const get = search.env ?? env;
  if (get("DISPLAY") || get("WAYLAND_DISPLAY")) return undefined;
  // The entries of each ICD variable that is set, folders expanded.
  const set = ICD_VARS.filter((name) => get(name));
  const entries = new Map<string, { entry: string; files: string[] }[]>();
  for (const name of set) {
    entries.set(
      name,
      get(name)!.split(":").filter((e) => e !== "").map((entry) => ({
        entry,
        files: isDir(entry) ? jsonFiles(entry) : [entry],
      })),
    );
  }
  // The loader reads VK_DRIVER_FILES when it is set, else VK_ICD_FILENAMES.
  const inUse = set.length > 0
    ? entries.get(set[0])!.flatMap((e) => e.files)
    : (search.icdDirs ?? NVIDIA_ICD_DIRS).flatMap((dir) =>
      jsonFiles(dir, /^nvidia.*\.json$/)
    );
  let replaces: string | undefined;
  let glx: IcdManifest | undefined;
  for (const path of inUse) {
    const m = readManifest(path);
    if (m && GLX.test(m.ICD.library_path)) {
      replaces = path;
      glx = m;
      break;
    }
  }
  if (replaces === undefined || glx === undefined) return undefined;
  const glxPath = glx.ICD.library_path;
  const dirs = [
    ...(glxPath.startsWith("/")
      ? [glxPath.slice(0, glxPath.lastIndexOf("/"))]
      : []),
    ...(replaces.startsWith("/usr/local/nvidia/")
      ? ["/usr/local/nvidia/lib64", "/usr/local/nvidia/lib"]
      : []),
    ...(search.libraryDirs ?? NVIDIA_LIBRARY_DIRS),
  ];
  const egl = [...new Set(dirs)].map((dir) => `${dir}/libEGL_nvidia.so.0`)
    .find(isFile);
  if (egl === undefined) return undefined;
  const glxFile = replaces;
  return {
    manifest: {
      file_format_version: "1.0.1",
      ICD: { library_path: egl, api_version: glx.ICD.api_version ?? "1.3.0" },
    },
    replaces: glxFile,
    note: "NVIDIA's EGL Vulkan ICD (headless)" +
      (set.length > 0
        ? `, in place of the GLX manifest ${glxFile} that ${set[0]} named`
        : ""),
    variables(path: string): Record<string, string> {
      if (set.length === 0) return { VK_ICD_FILENAMES: path };
      const out: Record<string, string> = {};
      for (const name of set) {
        out[name] = entries.get(name)!.flatMap(({ entry, files }) => {
          if (!files.includes(glxFile)) return [entry];
          // A folder holding the GLX manifest: its other manifests stay.
          return files.map((f) => (f === glxFile ? path : f));
        }).join(":");
      }
      return out;
    },
  };
}

/**
 * Write the planned EGL manifest to a temporary file and point the ICD
 * variables at it — before the first adapter request, since the WebGPU
 * instance is created once. Returns the plan's note, or `undefined` when
 * nothing was changed.
 */
function headlessNvidiaIcd(): string | undefined {
  if (Deno.build.os !== "linux") return undefined;
  try {
    const plan = planHeadlessNvidiaIcd();
    if (plan === undefined) return undefined;
    const path = Deno.makeTempFileSync({
      prefix: "nvidia_egl_icd_",
      suffix: ".json",
    });
    removeAtExit(path);
    Deno.writeTextFileSync(path, JSON.stringify(plan.manifest));
    for (const [name, value] of Object.entries(plan.variables(path))) {
      Deno.env.set(name, value);
    }
    return plan.note;
  } catch {
    return undefined; // no --allow-read/--allow-write/--allow-env
  }
}

/**
 * Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid or not set" on every
 * instance when it is unset (headless machines, CI): give this process a
 * private one (0700, as the spec asks) so that the ladder's probe stays quiet,
 * removed when the process ends.
 */
function quietRuntimeDir(): void {
  try {
    const set = Deno.env.get("XDG_RUNTIME_DIR");
    // A folder removed when the process that made it ended (a child, or a
    // Slurm job, inherits the variable) counts as unset.
    if (set && isDir(set)) return;
    const dir = Deno.makeTempDirSync({ prefix: "d3pm-xdg-" });
    removeAtExit(dir);
    Deno.chmodSync(dir, 0o700);
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch {
    // No env or write permission: the warning is harmless.
  }
}

// What this process made in the temporary folder goes when it ends: by
// returning or by Deno.exit (a tool's handled error), which dispatch
// "unload", or by an uncaught error, which dispatches "error" or
// "unhandledrejection" and then ends it unless a listener prevents that;
// a killed process cannot clean up.
function removeAtExit(path: string): void {
  const remove = () => {
    try {
      Deno.removeSync(path, { recursive: true });
    } catch {
      // already gone
    }
  };
  globalThis.addEventListener("unload", remove);
  globalThis.addEventListener("error", (e) => e.defaultPrevented || remove());
  globalThis.addEventListener(
    "unhandledrejection",
    (e) => e.defaultPrevented || remove(),
  );
}

/**
 * The variable Deno's WebGPU reads, once, when its first adapter request
 * creates the wgpu instance: the backends it probes, comma-separated
 * (`vulkan`, `gl`, `metal`, `dx12`); unset, all of them.
 *
 * @example
 * ```ts
 * import { WEBGPU_BACKEND_ENV } from "@d3pm/backend/vulkan-env";
 * import { assertEquals } from "@std/assert";
 * assertEquals(WEBGPU_BACKEND_ENV, "DENO_WEBGPU_BACKEND");
 * // To keep OpenGL ES as a fallback, set it before the first adapter request
 * // (prepareVulkan then leaves a choice already made alone), e.g. in the shell:
 * //   DENO_WEBGPU_BACKEND=vulkan,gl deno task experiment
 * ```
 */
export const WEBGPU_BACKEND_ENV = "DENO_WEBGPU_BACKEND";

/** Where {@linkcode planWebGpuBackends} looks; the defaults are the system's. */
export interface WebGpuBackendSearch {
  /** The operating system (default: `Deno.build.os`). */
  os?: string;
  /**
   * Reads a variable (default: `Deno.env.get`). An empty value counts as set
   * for {@linkcode WEBGPU_BACKEND_ENV} (Deno then probes no backend: a choice
   * left alone), as unset for the ICD variables.
   */
  env?: (name: string) => string | undefined;
  /** Manifest folders used when no ICD variable is set (default {@linkcode NVIDIA_ICD_DIRS}: the loader's usual folders). */
  icdDirs?: readonly string[];
  /** Where the Vulkan loader `libvulkan.so.1` is looked for (default {@linkcode NVIDIA_LIBRARY_DIRS}). */
  libraryDirs?: readonly string[];
}

/**
 * The WebGPU backends to name in {@linkcode WEBGPU_BACKEND_ENV} before the
 * first adapter request: `"vulkan"` on Linux when the variable is unset and
 * Vulkan is installed (the loader `libvulkan.so.1` and at least one driver
 * manifest: the files or folders `VK_DRIVER_FILES` or `VK_ICD_FILENAMES`
 * names, else the loader's usual folders), else undefined (nothing to set).
 *
 * Why: with every backend enabled, wgpu also probes OpenGL ES through EGL
 * (libglvnd's `libEGL.so.1`, Mesa's `swrast_dri.so`) on the thread that asks
 * for the adapter, although the adapter it returns where Vulkan is installed
 * is Vulkan's (lavapipe on a machine without a GPU). That probe leaves
 * per-thread state in libglvnd, which frees it twice when that thread ends
 * while the process exits: libEGL's exit-time teardown
 * (`__eglCurrentTeardown`) frees every thread's state without holding the
 * lock that the ending thread's key destructor takes to free its own. Under
 * `deno test` the test module runs on such a thread, and Deno exits without
 * waiting for it to end: the process aborted at exit after its tests passed
 * (`double free or corruption (out)`, `corrupted size vs. prev_size in
 * fastbins`, status 134): 8 in 1,000 processes running the in-process part of
 * `tests/init_from_engine_test.ts`, 0 in 1,000 with Vulkan alone, which loads
 * no EGL library (see `docs/cpu-engine.md`, "Teardown").
 *
 * @param search Where to look (defaults: this system and process).
 * @returns `"vulkan"`, or undefined when the variable should stay as it is.
 *
 * @example
 * ```ts
 * import { planWebGpuBackends } from "@d3pm/backend/vulkan-env";
 * import { assertEquals } from "@std/assert";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/lvp_icd.x86_64.json`, "{}");
 * Deno.writeTextFileSync(`${dir}/libvulkan.so.1`, "");
 * const search = { os: "linux", icdDirs: [dir], libraryDirs: [dir] };
 * assertEquals(planWebGpuBackends({ ...search, env: () => undefined }), "vulkan");
 * // A choice already made is kept; so is every other system.
 * assertEquals(planWebGpuBackends({ ...search, env: (n) => n === "DENO_WEBGPU_BACKEND" ? "vulkan,gl" : undefined }), undefined);
 * assertEquals(planWebGpuBackends({ ...search, os: "darwin", env: () => undefined }), undefined);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function planWebGpuBackends(
  search: WebGpuBackendSearch = {},
): "vulkan" | undefined {
  if ((search.os ?? Deno.build.os) !== "linux") return undefined;
  const raw = search.env ?? rawEnv;
  if (raw(WEBGPU_BACKEND_ENV) !== undefined) return undefined;
  const get = (name: string) => raw(name) || undefined;
  const loader = (search.libraryDirs ?? NVIDIA_LIBRARY_DIRS).some((dir) =>
    isFile(`${dir}/libvulkan.so.1`)
  );
  if (!loader) return undefined;
  // The loader reads VK_DRIVER_FILES when it is set, else VK_ICD_FILENAMES,
  // else its folders.
  const named = ICD_VARS.map(get).find((v) => v !== undefined);
  const manifests = named !== undefined
    ? named.split(":").filter((e) => e !== "").flatMap((entry) =>
      isDir(entry) ? jsonFiles(entry) : isFile(entry) ? [entry] : []
    )
    : (search.icdDirs ?? NVIDIA_ICD_DIRS).flatMap((dir) => jsonFiles(dir));
  return manifests.length > 0 ? "vulkan" : undefined;
}

function rawEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Keep Deno's WebGPU to Vulkan where {@linkcode planWebGpuBackends} says so. */
function vulkanOnly(): void {
  try {
    const backends = planWebGpuBackends();
    if (backends !== undefined) Deno.env.set(WEBGPU_BACKEND_ENV, backends);
  } catch {
    // No --allow-env or --allow-read: every backend is probed, as before.
  }
}
