// tools/gpu_summary.ts, the human lines of a GPU run's results.jsonl, on
// the lines the run's profiles and attention bench print: one attention
// line per step and kind (its kernels in order, the `all` line's model
// TFLOP/s; each attention set apart), and generation profiles per pass.

import { fromFileUrl } from "@d3pm/core";
import { assertEquals } from "@std/assert";

const SCRIPT = fromFileUrl(new URL("../tools/gpu_summary.ts", import.meta.url));

async function summary(lines: Record<string, unknown>[]): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "gpu_summary_test_" });
  try {
    const path = `${dir}/results.jsonl`;
    await Deno.writeTextFile(
      path,
      lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-check", SCRIPT, path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout).trim().split("\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const shape = { batch: 2, heads: 12, headDim: 64, length: 1024 };
const att = (
  step: string,
  kind: string,
  kernel: string,
  ms: number,
  tflops: number,
  extra: Record<string, unknown> = {},
) => ({
  step,
  bench: "webgpu.attention",
  kind,
  kernel,
  ...shape,
  ms,
  tflops,
  ...extra,
});

Deno.test("gpu_summary prints one attention line per step and kind, with its own kernels", async () => {
  const out = await summary([
    att("paper", "causal", "forward", 1.25, 2.58),
    att("paper", "causal", "backward-q", 2.5, 1.93),
    att("paper", "bidirectional", "forward", 2.4, 2.68),
    att("paper", "causal", "backward-kv", 2.25, 2.87),
    att("paper", "causal", "all", 6, 2.42, { modelTflops: 1.61 }),
    att("paper", "bidirectional", "all", 2.4, 2.68, { modelTflops: 4.02 }),
    { step: "paper", bench: "webgpu.attention", skipped: "no timestamps" },
  ]);
  assertEquals(out, [
    "paper: attention causal 2 × 12 heads × 64, T 1024: forward 1.25 ms 2.58 TFLOP/s, backward-q 2.5 ms 1.93 TFLOP/s, backward-kv 2.25 ms 2.87 TFLOP/s; all 6 ms, 1.61 TFLOP/s at the model's FLOPs",
    "paper: attention bidirectional 2 × 12 heads × 64, T 1024: forward 2.4 ms 2.68 TFLOP/s; all 2.4 ms, 4.02 TFLOP/s at the model's FLOPs",
    "paper: attention: skipped (no timestamps)",
  ]);
});

Deno.test("gpu_summary keeps each attention set's lines apart (tiled, wide)", async () => {
  const tiled = { set: "tiled" }, wide = { set: "wide" };
  const out = await summary([
    att("paper", "causal", "forward", 1.25, 2.58, tiled),
    att("paper", "causal", "all", 1.25, 2.58, { ...tiled, modelTflops: 1.5 }),
    att("paper", "causal", "forward", 0.5, 6.45, wide),
    att("paper", "causal", "all", 0.5, 6.45, { ...wide, modelTflops: 3.75 }),
  ]);
  assertEquals(out, [
    "paper: attention causal (tiled) 2 × 12 heads × 64, T 1024: forward 1.25 ms 2.58 TFLOP/s; all 1.25 ms, 1.5 TFLOP/s at the model's FLOPs",
    "paper: attention causal (wide) 2 × 12 heads × 64, T 1024: forward 0.5 ms 6.45 TFLOP/s; all 0.5 ms, 3.75 TFLOP/s at the model's FLOPs",
  ]);
});

Deno.test("gpu_summary names an AR line's decoding matmul and attention (the matmul alone on older lines)", async () => {
  const ar = {
    step: "generate",
    bench: "webgpu.generate",
    model: "ar",
    batch: 4,
    length: 1024,
    batchesPerS: 0.5,
    tokensPerS: 2048,
    forwardPassesPerBatch: 1023,
    msPerPass: 1.95,
    syncsPerBatch: 1,
  };
  const out = await summary([
    { ...ar, decodeMatmul: "skinny", decodeAttention: "split" },
    { ...ar, decodeMatmul: "tile" },
  ]);
  assertEquals(out, [
    "generate: generate ar (skinny matmul, split attention) 4 × 1024: 0.5 batches/s, 2,048 tokens/s, 1,023 passes/batch, 1.95 ms/pass, 1 sync(s)/batch",
    "generate: generate ar (tile matmul) 4 × 1024: 0.5 batches/s, 2,048 tokens/s, 1,023 passes/batch, 1.95 ms/pass, 1 sync(s)/batch",
  ]);
});

Deno.test("gpu_summary prints a generation profile per pass, beside the timed ms per pass", async () => {
  const out = await summary([{
    step: "generate",
    bench: "webgpu.generate.profile",
    model: "ar",
    batch: 4,
    length: 1024,
    forwardPasses: 1023,
    dispatchesPerPass: 90,
    badStamps: 0,
    gpuMsPerPass: 9.5,
    timedMsPerPass: 11.31,
    byFamily: { mm32: 5115, dec_attn: 2046, ln_fwd: 1023 },
  }, {
    step: "generate",
    bench: "webgpu.generate.profile",
    model: "d3pm",
    steps: 16,
    batch: 4,
    length: 1024,
    forwardPasses: 16,
    dispatchesPerPass: 84,
    badStamps: 3,
    gpuMsPerPass: 80,
    timedMsPerPass: 83.24,
    byFamily: { mm64: 960, attn_fwd_tiled: 320 },
  }]);
  assertEquals(out, [
    "generate: generate profile ar 4 × 1024: GPU ms per pass 9.5 of 11.31 timed, 90 dispatches/pass (mm32 5, dec_attn 2, ln_fwd 1)",
    "generate: generate profile d3pm 16 steps 4 × 1024: GPU ms per pass 80 of 83.24 timed, 84 dispatches/pass (mm64 60, attn_fwd_tiled 20); 3 bad stamps",
  ]);
});
