// bench:webgpu's step and profile lines name the attention set the engine
// dispatched, not the one asked for (`--kernels both --attention-kernel
// wide` printed "wide" on the old kernels' line, whose profile listed
// attn_fwd), and the flags that cannot take effect are refused in one line.

import { fromFileUrl } from "@d3pm/core";
import { assert, assertEquals } from "@std/assert";
import { ignoreUnless } from "@d3pm/core/testing";
import { requestEngineDevice, WebGpuUnavailableError } from "@d3pm/webgpu";

const SCRIPT = fromFileUrl(new URL("./webgpu.ts", import.meta.url));

let missing: string | null = null;
try {
  (await requestEngineDevice()).device.destroy();
} catch (e) {
  if (!(e instanceof WebGpuUnavailableError)) throw e;
  missing = e.message;
}

async function bench(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("bench:webgpu refuses --attention-kernel wide with --kernels old in one line", async () => {
  const r = await bench(["--kernels", "old", "--attention-kernel", "wide"]);
  assertEquals(r.code, 2, r.stderr);
  assertEquals(r.stdout, "");
  assertEquals(
    r.stderr.trim(),
    "error: Option --attention-kernel wide needs --kernels new or both (the old kernels have one attention set), got --kernels old",
  );
});

Deno.test("bench:webgpu refuses --decode-matmul skinny or both with --gen-batch over 8 in one line", async () => {
  for (const matmul of ["skinny", "both"]) {
    const r = await bench(["--decode-matmul", matmul, "--gen-batch", "9"]);
    assertEquals(r.code, 2, r.stderr);
    assertEquals(r.stdout, "");
    assert(
      r.stderr.startsWith(
        `error: Option --decode-matmul ${matmul} needs --gen-batch ≤ 8`,
      ) && r.stderr.trim().split("\n").length === 1,
      r.stderr,
    );
  }
  // Without generation the decode matmul is never built: no refusal.
  const r = await bench([
    "--decode-matmul",
    "skinny",
    "--gen-batch",
    "9",
    "--no-generate",
    "--adapter",
  ]);
  assertEquals(r.code, missing ? 1 : 0, r.stderr);
});

Deno.test({
  name:
    "bench:webgpu's step and profile lines name the attention set that ran: first on the old kernels, wide on the new",
  ignore: ignoreUnless("webgpu", missing),
  fn: async () => {
    const r = await bench([
      "--size",
      "tiny",
      "--kernels",
      "both",
      "--attention-kernel",
      "wide",
      "--steps",
      "1",
      "--profile",
      "--no-generate",
      "--no-attention",
      "--no-matmul",
      "--no-tfjs",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const steps = lines.filter((l) => l.bench === "webgpu.step");
    assertEquals(
      steps.map((l) => [l.engineKernels, l.attentionKernel]),
      [["old", "first"], ["new", "wide"]],
    );
    for (const p of lines.filter((l) => l.bench === "webgpu.profile")) {
      const end = p.attentionKernel === "first" ? "" : `_${p.attentionKernel}`;
      const attention = (p.kernels as { kernel: string }[])
        .map((k) => k.kernel.split(":")[0])
        .filter((k) => k.startsWith("attn_"));
      assertEquals(
        [...new Set(attention)].sort(),
        [`attn_bwd_kv${end}`, `attn_bwd_q${end}`, `attn_fwd${end}`],
        `${p.engineKernels}: ${p.attentionKernel}`,
      );
    }
  },
});
