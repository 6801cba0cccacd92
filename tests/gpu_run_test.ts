// tools/gpu_run.sh, the one-shot GPU run, in the parts that can be checked
// without a GPU: its rule on `deno test` summaries (a real log with an
// ignored test is refused), the NVIDIA ICD discovery on fake driver layouts
// (GLX manifest under /usr/local/nvidia rewritten for EGL, a manifest written
// when only the library exists, VK_DRIVER_FILES rewritten where it names
// the GLX one), and the adapter gate on this machine (lavapipe and no
// adapter are both refused, exit 2, in seconds).
// tools/gpu_rehearse.sh (deno task gpu:rehearse) runs the whole script.

import { fromFileUrl } from "@d3pm/core";
import { assert, assertEquals, assertStringIncludes } from "@std/assert";

const SCRIPT = fromFileUrl(new URL("../tools/gpu_run.sh", import.meta.url));
const ROOT = fromFileUrl(new URL("..", import.meta.url));

async function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string; seconds: number }> {
  const start = performance.now();
  const out = await new Deno.Command("bash", {
    args: [SCRIPT, ...args],
    cwd: ROOT,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      // Kept: what it leaves in the temporary folder is checked (.ci/run).
      TMPDIR: Deno.env.get("TMPDIR") ?? "/tmp",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    stdout: text(out.stdout),
    stderr: text(out.stderr),
    seconds: (performance.now() - start) / 1000,
  };
}

function tempDir(): { dir: string; [Symbol.dispose](): void } {
  const dir = Deno.makeTempDirSync({ prefix: "gpu_run_test_" });
  return {
    dir,
    [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }),
  };
}

Deno.test("gpu_run.sh refuses a real deno test log with an ignored test, and one without a summary", async () => {
  using tmp = tempDir();
  const testFile = `${tmp.dir}/x_test.ts`;
  Deno.writeTextFileSync(
    testFile,
    `Deno.test("passes", () => {});
Deno.test({ name: "ignored", ignore: true, fn: () => {} });`,
  );
  const log = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--no-check", testFile],
    cwd: tmp.dir,
    env: { NO_COLOR: "" }, // colours on: the rule strips them
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(log.stdout);
  assertEquals(log.code, 0, "deno test itself calls this run ok");
  Deno.writeTextFileSync(`${tmp.dir}/ignored.log`, text);
  const ignored = await run(["--check-test-log", `${tmp.dir}/ignored.log`]);
  assertEquals(ignored.code, 1, ignored.stdout);
  assertEquals(ignored.stdout.trim(), "1 passed, 0 failed, 1 ignored");

  Deno.writeTextFileSync(
    `${tmp.dir}/ok.log`,
    text.replace(/ \| \S*1\S* ignored/, ""),
  );
  const ok = await run(["--check-test-log", `${tmp.dir}/ok.log`]);
  assertEquals(ok.stdout.trim(), "1 passed, 0 failed, 0 ignored");
  assertEquals(ok.code, 0);

  Deno.writeTextFileSync(
    `${tmp.dir}/failed.log`,
    "FAILED | 50 passed | 2 failed (1m)\n",
  );
  const failed = await run(["--check-test-log", `${tmp.dir}/failed.log`]);
  assertEquals([failed.code, failed.stdout.trim()], [
    1,
    "50 passed, 2 failed, 0 ignored",
  ]);

  Deno.writeTextFileSync(`${tmp.dir}/none.log`, "error: Module not found\n");
  const none = await run(["--check-test-log", `${tmp.dir}/none.log`]);
  assertEquals([none.code, none.stdout.trim()], [
    1,
    "no test summary in the log",
  ]);
});

// A fake driver: icd/ (manifests) and lib64/ (libEGL_nvidia.so.0).
function fakeDriver(dir: string, manifest: string | null, egl: boolean) {
  Deno.mkdirSync(`${dir}/icd`, { recursive: true });
  Deno.mkdirSync(`${dir}/lib64`, { recursive: true });
  if (manifest !== null) {
    Deno.writeTextFileSync(
      `${dir}/icd/nvidia_icd.json`,
      `{
    "file_format_version" : "1.0.1",
    "ICD": {
        "library_path": "${manifest}",
        "api_version" : "1.4.312"
    }
}
`,
    );
  }
  if (egl) Deno.writeTextFileSync(`${dir}/lib64/libEGL_nvidia.so.0`, "");
  return {
    GPU_RUN_ICD_DIRS: `${dir}/nowhere ${dir}/icd`,
    GPU_RUN_LIB_DIRS: `${dir}/lib64`,
  };
}

function parse(stdout: string) {
  const vars = Object.fromEntries(
    stdout.split("\n").filter((l) => /^[A-Z_]+=/.test(l)).map((l) => {
      const i = l.indexOf("=");
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );
  const manifests = stdout.split("\n").filter((l) => l.startsWith("MANIFEST "))
    .map((l) => {
      const [, path, ...json] = l.split(" ");
      return { path, json: JSON.parse(json.join(" ")) };
    });
  return { vars, manifests };
}

Deno.test("gpu_run.sh rewrites NVIDIA's GLX manifest for the EGL library beside it, headless", async () => {
  using tmp = tempDir();
  const env = fakeDriver(tmp.dir, "libGLX_nvidia.so.0", true);
  const r = await run([`${tmp.dir}/out`, "--icd-only"], env);
  assertEquals(r.code, 0, r.stderr);
  const { vars, manifests } = parse(r.stdout);
  assertEquals(manifests.length, 1);
  assertEquals(manifests[0].json.ICD, {
    library_path: `${tmp.dir}/lib64/libEGL_nvidia.so.0`,
    api_version: "1.4.312",
  });
  assertStringIncludes(vars.ICD_NOTE, "X-only libGLX_nvidia.so.0");
  assert(vars.LD_LIBRARY_PATH.endsWith(`${tmp.dir}/lib64`));

  // With a display the GLX manifest is the right one: kept.
  const shown = await run([`${tmp.dir}/out`, "--icd-only"], {
    ...env,
    DISPLAY: ":0",
  });
  assertEquals(
    parse(shown.stdout).vars.VK_DRIVER_FILES,
    `${tmp.dir}/icd/nvidia_icd.json`,
  );
});

Deno.test("gpu_run.sh writes a manifest when the driver has none, and refuses a machine without a driver", async () => {
  using tmp = tempDir();
  const env = fakeDriver(tmp.dir, null, true);
  const r = await run([`${tmp.dir}/out`, "--icd-only"], env);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(parse(r.stdout).manifests[0].json.ICD, {
    library_path: `${tmp.dir}/lib64/libEGL_nvidia.so.0`,
    api_version: "1.3.0",
  });
  Deno.removeSync(`${tmp.dir}/lib64/libEGL_nvidia.so.0`);
  const none = await run([`${tmp.dir}/out`, "--icd-only"], env);
  assertEquals(none.code, 2);
  assertStringIncludes(none.stderr, "refused: no NVIDIA Vulkan driver");
});

Deno.test("gpu_run.sh replaces the GLX manifest that VK_DRIVER_FILES names and keeps the others", async () => {
  using tmp = tempDir();
  const env = fakeDriver(tmp.dir, "/drv/libGLX_nvidia.so.0", true);
  const other = `${tmp.dir}/icd/other.json`;
  Deno.writeTextFileSync(
    other,
    '{"ICD": {"library_path": "/usr/lib/libvulkan_other.so"}}',
  );
  const r = await run([`${tmp.dir}/out`, "--icd-only"], {
    ...env,
    VK_DRIVER_FILES: `${other}:${tmp.dir}/icd/nvidia_icd.json`,
  });
  assertEquals(r.code, 0, r.stderr);
  const { vars, manifests } = parse(r.stdout);
  assertEquals(manifests.map((m) => m.json.ICD.library_path), [
    "/usr/lib/libvulkan_other.so",
    `${tmp.dir}/lib64/libEGL_nvidia.so.0`,
  ]);
  assertEquals(vars.VK_DRIVER_FILES.split(":")[0], other);
  const missing = await run([`${tmp.dir}/out`, "--icd-only"], {
    ...env,
    VK_DRIVER_FILES: `${tmp.dir}/icd/gone.json`,
  });
  assertEquals(missing.code, 2);
  assertStringIncludes(missing.stderr, "gone.json, which is not a file");
});

Deno.test("gpu_run.sh refuses a software adapter and a missing one within seconds (exit 2)", async () => {
  using tmp = tempDir();
  let lavapipe: string | undefined;
  try {
    lavapipe = [...Deno.readDirSync("/usr/share/vulkan/icd.d")]
      .map((e) => `/usr/share/vulkan/icd.d/${e.name}`)
      .find((p) => /lvp_icd/.test(p));
  } catch {
    // No Vulkan drivers installed: only the missing-adapter case runs.
  }
  Deno.writeTextFileSync(
    `${tmp.dir}/bogus.json`,
    '{"file_format_version": "1.0.1", "ICD": {"library_path": "/nonexistent/libvulkan_bogus.so", "api_version": "1.3.0"}}',
  );
  const cases = [
    ...(lavapipe ? [[lavapipe, "software adapter"]] : []),
    [`${tmp.dir}/bogus.json`, "no WebGPU adapter on Vulkan"],
  ];
  for (const [icd, why] of cases) {
    const out = `${tmp.dir}/out-${why.split(" ")[0]}`;
    const r = await run([out, "--bundle", "none"], {
      GPU_RUN_DENO: Deno.execPath(),
      VK_DRIVER_FILES: icd,
      // The caller's Deno cache (the default one is under HOME).
      HOME: Deno.env.get("HOME") ?? tmp.dir,
      ...(Deno.env.get("DENO_DIR")
        ? { DENO_DIR: Deno.env.get("DENO_DIR")! }
        : {}),
    });
    assertEquals(r.code, 2, `${icd}: ${r.stderr}`);
    const summary = Deno.readTextFileSync(`${out}/summary.txt`);
    assertStringIncludes(summary, `REFUSED: `);
    assertStringIncludes(summary, why);
    assert(r.seconds < 60, `${icd}: refused after ${r.seconds} s`);
  }
});
