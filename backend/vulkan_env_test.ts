import { assertEquals } from "@std/assert";
import {
  NVIDIA_ICD_DIRS,
  NVIDIA_LIBRARY_DIRS,
  planHeadlessNvidiaIcd,
  planWebGpuBackends,
  WEBGPU_BACKEND_ENV,
} from "./vulkan_env.ts";

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

// A fake Vulkan install: icd.d/ with one manifest, lib/ with the loader.
function vulkanLayout(
  parts: { manifest?: boolean; loader?: boolean } = {},
): {
  root: string;
  search: { icdDirs: string[]; libraryDirs: string[] };
  done: () => void;
} {
  const root = Deno.makeTempDirSync({ prefix: "vulkan_env_test_" });
  Deno.mkdirSync(`${root}/icd.d`);
  Deno.mkdirSync(`${root}/lib`);
  if (parts.manifest ?? true) {
    Deno.writeTextFileSync(`${root}/icd.d/lvp_icd.x86_64.json`, "{}");
  }
  if (parts.loader ?? true) {
    Deno.writeTextFileSync(`${root}/lib/libvulkan.so.1`, "");
  }
  return {
    root,
    search: { icdDirs: [`${root}/icd.d`], libraryDirs: [`${root}/lib`] },
    done: () => Deno.removeSync(root, { recursive: true }),
  };
}

Deno.test("planWebGpuBackends() keeps Deno's WebGPU to Vulkan on Linux with a loader and a driver manifest, and only then", () => {
  const { root, search, done } = vulkanLayout();
  try {
    const linux = { ...search, os: "linux" };
    assertEquals(planWebGpuBackends({ ...linux, env: envOf({}) }), "vulkan");
    // A choice already made is kept, an empty one too (Deno: no backend).
    for (const value of ["vulkan,gl", "gl", ""]) {
      assertEquals(
        planWebGpuBackends({
          ...linux,
          env: envOf({ [WEBGPU_BACKEND_ENV]: value }),
        }),
        undefined,
        value,
      );
    }
    // Other systems: their backends are not Vulkan's (Metal, DX12).
    for (const os of ["darwin", "windows"]) {
      assertEquals(
        planWebGpuBackends({ ...search, os, env: envOf({}) }),
        undefined,
      );
    }
    // The ICD variables name the drivers when set: VK_DRIVER_FILES first.
    const manifest = `${root}/icd.d/lvp_icd.x86_64.json`;
    for (
      const vars of [
        { VK_ICD_FILENAMES: manifest },
        { VK_DRIVER_FILES: `${root}/icd.d` },
        { VK_DRIVER_FILES: "", VK_ICD_FILENAMES: `/nowhere.json:${manifest}` },
      ] as Record<string, string>[]
    ) {
      assertEquals(
        planWebGpuBackends({ ...linux, icdDirs: [], env: envOf(vars) }),
        "vulkan",
        JSON.stringify(vars),
      );
    }
    assertEquals(
      planWebGpuBackends({
        ...linux,
        env: envOf({
          VK_DRIVER_FILES: `${root}/none.json`,
          VK_ICD_FILENAMES: manifest,
        }),
      }),
      undefined,
    );
  } finally {
    done();
  }
  // No driver manifest, or no loader: wgpu's other backends stay.
  for (const parts of [{ manifest: false }, { loader: false }]) {
    const { search, done } = vulkanLayout(parts);
    try {
      assertEquals(
        planWebGpuBackends({ ...search, os: "linux", env: envOf({}) }),
        undefined,
        JSON.stringify(parts),
      );
    } finally {
      done();
    }
  }
});

// A child process with a clean environment (this process's may already hold
// what an earlier prepareVulkan set): prepareVulkan, an adapter, and which
// graphics libraries that mapped.
async function adapterChild(
  vars: Record<string, string>,
): Promise<{ adapter: boolean; backend: string | null; egl: boolean }> {
  const url = new URL("./vulkan_env.ts", import.meta.url).href;
  const keep = [
    "PATH",
    "HOME",
    "DENO_DIR",
    "LD_LIBRARY_PATH",
    "VK_DRIVER_FILES",
    "VK_ICD_FILENAMES",
    "TMPDIR",
  ];
  const env: Record<string, string> = { NO_COLOR: "1", ...vars };
  for (const name of keep) {
    const value = Deno.env.get(name);
    if (value !== undefined && !(name in env)) env[name] = value;
  }
  const code = `import { prepareVulkan } from ${JSON.stringify(url)};
prepareVulkan();
const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
const maps = Deno.readTextFileSync("/proc/self/maps");
console.log(JSON.stringify({
  adapter: adapter != null,
  backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? null,
  egl: /libEGL/.test(maps),
}));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code],
    clearEnv: true,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(text.split("\n").at(-1)!);
}

Deno.test({
  name:
    "prepareVulkan() keeps wgpu's EGL probe out of a process with Vulkan installed (it aborted such processes at exit), and leaves a DENO_WEBGPU_BACKEND that is set",
  ignore: Deno.build.os !== "linux" ||
    planWebGpuBackends({
        env: (n) => n === WEBGPU_BACKEND_ENV ? undefined : Deno.env.get(n),
      }) === undefined,
  async fn() {
    const fixed = await adapterChild({});
    assertEquals(fixed, { adapter: true, backend: "vulkan", egl: false });
    // Set by the user: kept, and then wgpu probes EGL as it did before
    // (where libglvnd's libEGL is installed).
    const chosen = await adapterChild({ [WEBGPU_BACKEND_ENV]: "vulkan,gl" });
    assertEquals(chosen.adapter, true);
    assertEquals(chosen.backend, "vulkan,gl");
    const libEgl = NVIDIA_LIBRARY_DIRS.some((dir) => {
      try {
        return Deno.statSync(`${dir}/libEGL.so.1`).isFile;
      } catch {
        return false;
      }
    });
    if (libEgl) assertEquals(chosen.egl, true);
  },
});

// A child with its own empty temporary folder: prepareVulkan, then `end`;
// the XDG_RUNTIME_DIR it made and what is left in the folder after it.
async function runtimeDirChild(
  end: string,
  vars: Record<string, string> = {},
): Promise<{ made: string; left: string[]; tmp: string }> {
  const tmp = await Deno.makeTempDir({ prefix: "vulkan_env_test_" });
  try {
    const url = new URL("./vulkan_env.ts", import.meta.url).href;
    const code = `import { prepareVulkan } from ${JSON.stringify(url)};
prepareVulkan();
console.log(Deno.env.get("XDG_RUNTIME_DIR"));
${end}`;
    const env: Record<string, string> = { NO_COLOR: "1", TMPDIR: tmp, ...vars };
    for (const name of ["PATH", "HOME", "DENO_DIR"]) {
      const value = Deno.env.get(name);
      if (value !== undefined) env[name] = value;
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", code],
      clearEnv: true,
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const made = new TextDecoder().decode(out.stdout).trim();
    const left = [...Deno.readDirSync(tmp)].map((e) => e.name);
    return { made, left, tmp };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

Deno.test("prepareVulkan() removes the XDG_RUNTIME_DIR it made when the process ends, by returning, by Deno.exit or on an uncaught error", async () => {
  const ends = [
    "",
    "Deno.exit(3);",
    'throw new Error("no adapter");',
    'setTimeout(() => Promise.reject(new Error("no adapter")), 1);',
  ];
  for (const end of ends) {
    const { made, left, tmp } = await runtimeDirChild(end);
    assertEquals(made.startsWith(`${tmp}/d3pm-xdg-`), true, made);
    assertEquals(left, [], `after ${JSON.stringify(end)}`);
  }
  // One inherited from a process that has ended (its folder gone) is
  // replaced by a new one, not kept.
  const gone = await runtimeDirChild("", {
    XDG_RUNTIME_DIR: "/nonexistent/d3pm-xdg-gone",
  });
  assertEquals(gone.made.startsWith(`${gone.tmp}/d3pm-xdg-`), true, gone.made);
  assertEquals(gone.left, []);
});
