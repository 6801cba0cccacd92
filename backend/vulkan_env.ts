/**
 * The process environment WebGPU needs on headless Linux machines, prepared
 * once per process before the first adapter request: a private
 * `XDG_RUNTIME_DIR` (Mesa's drivers complain without one), and on NVIDIA
 * machines whose Vulkan manifest names the X-only GLX library, a manifest
 * for the headless EGL one. Used by the backend ladder and the WebGPU engine.
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
 */
export function prepareVulkan(): string | undefined {
  if (!prepared) {
    prepared = true;
    note = headlessNvidiaIcd();
    quietRuntimeDir();
  }
  return note;
}

/**
 * On a headless Linux machine, NVIDIA's Vulkan ICD manifest names
 * `libGLX_nvidia.so.0`, which cannot create an instance without a display
 * ("Could not get 'vkCreateInstance'"); `libEGL_nvidia.so.0` carries the same
 * driver and works headless. Point the Vulkan loader at it — before the first
 * adapter request, since the WebGPU instance is created once — unless the
 * user chose ICDs (`VK_ICD_FILENAMES`, `VK_DRIVER_FILES`) or has a display.
 * Returns a note for the reason, or `undefined` when nothing was changed.
 */
function headlessNvidiaIcd(): string | undefined {
  if (Deno.build.os !== "linux") return undefined;
  if (
    env("VK_ICD_FILENAMES") || env("VK_DRIVER_FILES") || env("DISPLAY") ||
    env("WAYLAND_DISPLAY")
  ) return undefined;
  try {
    const manifest = [
      "/usr/share/vulkan/icd.d/nvidia_icd.json",
      "/etc/vulkan/icd.d/nvidia_icd.json",
    ].map((path) => {
      try {
        return JSON.parse(Deno.readTextFileSync(path));
      } catch {
        return undefined;
      }
    }).find((m) => /libGLX_nvidia/.test(m?.ICD?.library_path ?? ""));
    if (manifest === undefined) return undefined;
    const egl = [
      "/usr/lib/x86_64-linux-gnu",
      "/usr/lib/aarch64-linux-gnu",
      "/usr/lib64",
      "/usr/local/nvidia/lib64",
      "/usr/lib",
      "/lib",
    ].map((dir) => `${dir}/libEGL_nvidia.so.0`).find((path) => {
      try {
        return Deno.statSync(path).isFile;
      } catch {
        return false;
      }
    });
    if (egl === undefined) return undefined;
    const path = Deno.makeTempFileSync({
      prefix: "nvidia_egl_icd_",
      suffix: ".json",
    });
    Deno.writeTextFileSync(
      path,
      JSON.stringify({
        file_format_version: "1.0.1",
        ICD: {
          library_path: egl,
          api_version: manifest.ICD.api_version ?? "1.3.0",
        },
      }),
    );
    Deno.env.set("VK_ICD_FILENAMES", path);
    return "NVIDIA's EGL Vulkan ICD (headless)";
  } catch {
    return undefined; // no --allow-read/--allow-write/--allow-env
  }
}

/**
 * Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid or not set" on every
 * instance when it is unset (headless machines, CI): give this process a
 * private one (0700, as the spec asks) so that the ladder's probe stays quiet.
 */
function quietRuntimeDir(): void {
  try {
    if (Deno.env.get("XDG_RUNTIME_DIR")) return;
    const dir = Deno.makeTempDirSync({ prefix: "d3pm-xdg-" });
    Deno.chmodSync(dir, 0o700);
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch {
    // No env or write permission: the warning is harmless.
  }
}
