// `--backend` picks the tfjs backend. A run whose models all trained on a
// fused engine recorded the backend anyway ("Backend: wasm" after a run on
// the CPU engine, which --backend never touched): results.json and the
// report now name it only for the models that ran on tfjs.
import { assert, assertEquals } from "@std/assert";
import { ignoreUnless } from "@d3pm/core/testing";
import { createCpuKernels } from "@d3pm/cpu";
import { AR_FAST_EVAL, DENOISER_FAST_EVAL, runTool } from "./_run.ts";

// No CBLAS: auto may take tfjs; skipped, with the reason.
const noKernels = ignoreUnless(
  "blas",
  await createCpuKernels({ words: 64, threads: 1 }).then(
    (k) => (k.dispose(), null),
    (e: Error) => e.message,
  ),
);

async function backendOf(
  args: string[],
): Promise<{ backend: string; engine: string; report: string }> {
  const out = await Deno.makeTempDir();
  try {
    const r = await runTool("experiment.ts", [
      "--preset",
      "micro",
      "--steps",
      "4",
      "--warmup",
      "1",
      "--valid-every",
      "4",
      "--log-every",
      "2",
      "--judge",
      "self",
      "--exact-blocks",
      "0",
      "--gen-samples",
      "0",
      ...AR_FAST_EVAL,
      ...args,
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const results = JSON.parse(
      await Deno.readTextFile(`${out}/results.json`),
    );
    return {
      backend: results.backend,
      engine: results.engine,
      report: await Deno.readTextFile(`${out}/report.md`),
    };
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

Deno.test({
  name:
    "--engine auto records the tfjs backend as not used when every model ran on a fused engine, and for the tfjs-only model when one fell back",
  ignore: noKernels,
  async fn() {
    const fused = await backendOf([
      "--engine",
      "auto",
      "--backend",
      "wasm",
      "--models",
      "ar",
    ]);
    assertEquals(fused.backend, "not used (no model ran on tfjs)");
    assert(
      fused.report.includes("Backend: not used (no model ran on tfjs)."),
      fused.report,
    );
    const mixed = await backendOf([
      "--engine",
      "auto",
      "--backend",
      "blas",
      "--models",
      "ar,bd3",
      ...DENOISER_FAST_EVAL,
    ]);
    // Beside the CPU engine the judge scores every model's samples on tfjs
    // (bd3 on tfjs holds the CBLAS for itself); beside WebGPU it stays there.
    assert(
      mixed.engine.startsWith("cpu")
        ? /^blas: .* \(for bd3, and for the judge's scoring of every model's samples, on tfjs\)$/
          .test(mixed.backend)
        : /^blas: .* \(for bd3 only, on tfjs\)$/.test(mixed.backend),
      `${mixed.engine} / ${mixed.backend}`,
    );
    const tfjs = await backendOf([
      "--engine",
      "tfjs",
      "--backend",
      "blas",
      "--models",
      "ar",
    ]);
    assert(/^blas: [^(]*$/.test(tfjs.backend), tfjs.backend);
  },
});
