// Headless NVIDIA machines often ship a Vulkan manifest pointing at
// libGLX_nvidia, which needs an X display; the same driver works headless
// through libEGL_nvidia. Point Vulkan at a manifest for the EGL library when
// that is the situation (the same rule as the tfjs backend ladder's; to be
// shared once a common low-level package exists). Private.

const MANIFESTS = [
  "/usr/share/vulkan/icd.d/nvidia_icd.json",
  "/etc/vulkan/icd.d/nvidia_icd.json",
];
const LIB_DIRS = [
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/usr/lib64",
  "/usr/local/nvidia/lib64",
  "/usr/lib",
  "/lib",
];

/** Set VK_ICD_FILENAMES when needed; returns a note saying so, or undefined. */
export function headlessNvidiaIcd(): string | undefined {
  try {
    if (Deno.build.os !== "linux") return undefined;
    const env = (k: string) => Deno.env.get(k);
    if (
      env("VK_ICD_FILENAMES") || env("VK_DRIVER_FILES") || env("DISPLAY") ||
      env("WAYLAND_DISPLAY")
    ) return undefined;
    const manifest = MANIFESTS.map((path) => {
      try {
        return JSON.parse(Deno.readTextFileSync(path));
      } catch {
        return undefined;
      }
    }).find((m) => /libGLX_nvidia/.test(m?.ICD?.library_path ?? ""));
    if (manifest === undefined) return undefined;
    const egl = LIB_DIRS.map((dir) => `${dir}/libEGL_nvidia.so.0`).find(
      (path) => {
        try {
          return Deno.statSync(path).isFile;
        } catch {
          return false;
        }
      },
    );
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
