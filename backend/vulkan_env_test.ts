import { assertEquals } from "@std/assert";
import { NVIDIA_ICD_DIRS, planHeadlessNvidiaIcd } from "./vulkan_env.ts";

// A fake driver layout in a temporary folder: icd.d/ with manifests,
// lib/ with libEGL_nvidia.so.0 (an empty file: only its existence counts).
function layout(
  manifests: Record<string, string>,
  egl: "lib" | "none" = "lib",
): { root: string; done: () => void } {
  const root = Deno.makeTempDirSync({ prefix: "vulkan_env_test_" });
  Deno.mkdirSync(`${root}/icd.d`);
  Deno.mkdirSync(`${root}/lib`);
  for (const [name, library] of Object.entries(manifests)) {
    Deno.writeTextFileSync(
      `${root}/icd.d/${name}`,
      JSON.stringify({
        file_format_version: "1.0.1",
        ICD: { library_path: library, api_version: "1.4.312" },
      }),
    );
  }
  if (egl === "lib") {
    Deno.writeTextFileSync(`${root}/lib/libEGL_nvidia.so.0`, "");
  }
  return { root, done: () => Deno.removeSync(root, { recursive: true }) };
}

const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("planHeadlessNvidiaIcd() swaps the GLX manifest found in the search folders for EGL", () => {
  const { root, done } = layout({
    "nvidia_icd.json": "libGLX_nvidia.so.0",
    "lvp_icd.x86_64.json": "/usr/lib/libvulkan_lvp.so",
  });
  try {
    const plan = planHeadlessNvidiaIcd({
      env: envOf({}),
      icdDirs: [`${root}/icd.d`],
      libraryDirs: [`${root}/lib`],
    })!;
    assertEquals(plan.manifest, {
      file_format_version: "1.0.1",
      ICD: {
        library_path: `${root}/lib/libEGL_nvidia.so.0`,
        api_version: "1.4.312",
      },
    });
    assertEquals(plan.replaces, `${root}/icd.d/nvidia_icd.json`);
    assertEquals(plan.variables("/x/egl.json"), {
      VK_ICD_FILENAMES: "/x/egl.json",
    });
  } finally {
    done();
  }
});

Deno.test("planHeadlessNvidiaIcd() rewrites VK_DRIVER_FILES when it names the GLX manifest, keeping other entries", () => {
  const { root, done } = layout({
    "nvidia_icd.json": "libGLX_nvidia.so.0",
    "other.json": "/usr/lib/libvulkan_other.so",
  });
  try {
    const glx = `${root}/icd.d/nvidia_icd.json`;
    const other = `${root}/icd.d/other.json`;
    const plan = planHeadlessNvidiaIcd({
      env: envOf({
        VK_DRIVER_FILES: `${other}:${glx}`,
        VK_ICD_FILENAMES: glx,
      }),
      icdDirs: [],
      libraryDirs: [`${root}/lib`],
    })!;
    assertEquals(plan.replaces, glx);
    assertEquals(plan.variables("/x/egl.json"), {
      VK_DRIVER_FILES: `${other}:/x/egl.json`,
      VK_ICD_FILENAMES: "/x/egl.json",
    });
    assertEquals(plan.note.includes("VK_DRIVER_FILES"), true);
  } finally {
    done();
  }
});

Deno.test("planHeadlessNvidiaIcd() expands a folder in VK_DRIVER_FILES and keeps its other manifests", () => {
  const { root, done } = layout({
    "a.json": "/usr/lib/libvulkan_a.so",
    "nvidia_icd.json": "libGLX_nvidia.so.0",
  });
  try {
    const plan = planHeadlessNvidiaIcd({
      env: envOf({ VK_DRIVER_FILES: `${root}/icd.d` }),
      libraryDirs: [`${root}/lib`],
    })!;
    assertEquals(plan.variables("/x/egl.json"), {
      VK_DRIVER_FILES: `${root}/icd.d/a.json:/x/egl.json`,
    });
  } finally {
    done();
  }
});

Deno.test("planHeadlessNvidiaIcd() finds libEGL_nvidia beside an absolute GLX library path", () => {
  const { root, done } = layout({ "nvidia_icd.json": "" }, "none");
  try {
    Deno.mkdirSync(`${root}/driver`);
    Deno.writeTextFileSync(`${root}/driver/libEGL_nvidia.so.0`, "");
    Deno.writeTextFileSync(
      `${root}/icd.d/nvidia_icd.json`,
      JSON.stringify({
        file_format_version: "1.0.1",
        ICD: { library_path: `${root}/driver/libGLX_nvidia.so.0` },
      }),
    );
    const plan = planHeadlessNvidiaIcd({
      env: envOf({}),
      icdDirs: [`${root}/icd.d`],
      libraryDirs: [`${root}/lib`],
    })!;
    assertEquals(plan.manifest.ICD, {
      library_path: `${root}/driver/libEGL_nvidia.so.0`,
      api_version: "1.3.0", // the GLX manifest named none
    });
  } finally {
    done();
  }
});

Deno.test("planHeadlessNvidiaIcd() changes nothing with a display, an EGL manifest in use, or no EGL library", () => {
  const { root, done } = layout({
    "nvidia_icd.json": "libGLX_nvidia.so.0",
    "nvidia_egl.json": "libEGL_nvidia.so.0",
  });
  try {
    const search = { icdDirs: [`${root}/icd.d`], libraryDirs: [`${root}/lib`] };
    assertEquals(
      planHeadlessNvidiaIcd({ ...search, env: envOf({ DISPLAY: ":0" }) }),
      undefined,
    );
    assertEquals(
      planHeadlessNvidiaIcd({
        ...search,
        env: envOf({
          // The loader reads VK_DRIVER_FILES first: the EGL one is in use.
          VK_DRIVER_FILES: `${root}/icd.d/nvidia_egl.json`,
          VK_ICD_FILENAMES: `${root}/icd.d/nvidia_icd.json`,
        }),
      }),
      undefined,
    );
    assertEquals(
      planHeadlessNvidiaIcd({
        env: envOf({}),
        icdDirs: [`${root}/icd.d`],
        libraryDirs: [`${root}/nowhere`],
      }),
      undefined,
    );
  } finally {
    done();
  }
});

Deno.test("NVIDIA_ICD_DIRS searches the container driver mount first", () => {
  assertEquals(NVIDIA_ICD_DIRS[0], "/usr/local/nvidia/share/vulkan/icd.d");
});
