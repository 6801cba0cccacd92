// An MKL that exports only the Fortran sgemm_ — the one inside PyTorch's
// libtorch_cpu.so, which the Python peer of the Hugging Face tests installs —
// as the CBLAS of both the tfjs backend and the CPU engine
// (D3PM_CBLAS_PATH=…/libtorch_cpu.so): named as MKL through sgemm_, its
// thread count held at one by the engine, and three training steps equal to
// OpenBLAS's within float32 rounding. In a child process (see
// tests/_mkl_torch_child.ts).
import { assert, assertEquals } from "@std/assert";
import { ignoreUnless } from "@d3pm/core/testing";
import { findPython } from "./_python.ts";
import { ROOT } from "./_run.ts";

const peer = findPython();

function torchLibrary(python: string): string {
  const out = new Deno.Command(python, {
    args: [
      "-c",
      // torch's folder without importing torch (findPython imported it
      // already: a second import is seconds more).
      "import os, importlib.util; print(os.path.join(importlib.util.find_spec('torch').submodule_search_locations[0], 'lib', 'libtorch_cpu.so'))",
    ],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test({
  name:
    "PyTorch's MKL (Fortran sgemm_ only) runs the CPU engine's products: same losses as OpenBLAS, thread count held",
  ignore: ignoreUnless("torch", peer.missing) || Deno.build.os !== "linux",
  fn: async () => {
    const library = torchLibrary(peer.python!);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}tests/_mkl_torch_child.ts`, library],
      stdout: "piped",
      stderr: "piped",
      env: { OPENBLAS_NUM_THREADS: "2" },
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(
      out.code,
      0,
      `child exited ${out.code}: ${stderr.slice(-800)}`,
    );
    const r = JSON.parse(
      new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!,
    );
    assertEquals(r.vendor, "MKL", r.description);
    assertEquals(r.openVendor, "OpenBLAS"); // not PyTorch's MKL twice
    assertEquals(r.entry, "sgemm_");
    assert(r.description.includes("through Fortran sgemm_"), r.description);
    assert(r.productDiff <= 1e-4, `product differs by ${r.productDiff}`);
    assert(r.threadControl, "no thread control found in libtorch_cpu.so");
    assertEquals(r.threadsHeld, 1);
    assertEquals(r.torchLosses.length, 3);
    for (let s = 0; s < 3; s++) {
      const [x, y] = [r.torchLosses[s], r.openLosses[s]];
      assert(Number.isFinite(x) && Number.isFinite(y), `${x} ${y}`);
      assert(
        Math.abs(x - y) <= 1e-4 * Math.abs(y),
        `step ${s}: MKL ${x} vs OpenBLAS ${y}`,
      );
    }
    // Training moved the loss: the steps really ran on both.
    assert(r.torchLosses[2] < r.torchLosses[0], `${r.torchLosses}`);
  },
});
