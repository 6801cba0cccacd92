// Generation on the fused engine, for bench:webgpu: AR with the KV cache
// and the D3PM at several step counts, each a batch at a time with one
// sync, as the thesis measures it (batches/s generating N tokens at batch
// size 4). Weights are the seeded initial ones: speed does not depend on
// them (sample quality does; the experiment reports it).

import type { ModelConfig } from "@d3pm/transformer";
import { WebGpuTransformer } from "@d3pm/webgpu";

/** What one generation line reports. */
export interface GenerationLine {
  bench: "webgpu.generate";
  model: "ar" | "d3pm";
  steps?: number;
  cache?: boolean;
  batch: number;
  length: number;
  batches: number;
  tokens: number;
  seconds: number;
  batchesPerS: number;
  tokensPerS: number;
  forwardPassesPerBatch: number;
  msPerPass: number;
  syncsPerBatch: number;
  dispatchesPerBatch: number;
  hostMsPerBatch: number;
}

async function timeBatches(
  engine: WebGpuTransformer,
  batches: number,
  run: (i: number) => Promise<{ forwardPasses: number; syncs: number }>,
) {
  await run(-1); // warm-up: pipelines, plans
  const before = engine.counters;
  let passes = 0, syncs = 0;
  const start = performance.now();
  for (let i = 0; i < batches; i++) {
    const out = await run(i);
    passes += out.forwardPasses;
    syncs += out.syncs;
  }
  const seconds = (performance.now() - start) / 1000;
  const after = engine.counters;
  return {
    seconds,
    passes,
    syncs,
    dispatches: after.dispatches - before.dispatches,
    hostMs: after.encodeMs - before.encodeMs,
  };
}

function line(
  model: "ar" | "d3pm",
  extra: { steps?: number; cache?: boolean },
  batch: number,
  length: number,
  batches: number,
  t: Awaited<ReturnType<typeof timeBatches>>,
): GenerationLine {
  const r = (x: number, d = 3) => +x.toFixed(d);
  return {
    bench: "webgpu.generate",
    model,
    ...extra,
    batch,
    length,
    batches,
    tokens: batches * batch * length,
    seconds: r(t.seconds),
    batchesPerS: r(batches / t.seconds),
    tokensPerS: r((batches * batch * length) / t.seconds, 1),
    forwardPassesPerBatch: r(t.passes / batches, 1),
    msPerPass: r((t.seconds * 1000) / Math.max(1, t.passes)),
    syncsPerBatch: r(t.syncs / batches, 2),
    dispatchesPerBatch: r(t.dispatches / batches, 0),
    hostMsPerBatch: r(t.hostMs / batches),
  };
}

/**
 * Time AR and D3PM generation of `tokens` tokens (rounded up to whole
 * batches of `batch` rows × contextLength) on `device`, print one JSON line
 * each, and the D3PM/AR ratio of batches/s at every step count.
 */
export async function generationBench(
  device: GPUDevice,
  base: ModelConfig,
  options: {
    batch: number;
    tokens: number;
    steps: number[];
    log: (msg: string) => void;
  },
): Promise<GenerationLine[]> {
  const { batch, log } = options;
  const length = base.contextLength;
  const batches = Math.max(1, Math.ceil(options.tokens / (batch * length)));
  const lines: GenerationLine[] = [];
  const v = base.vocabSize;
  const maskId = v - 1;
  const emit = (l: GenerationLine) => {
    lines.push(l);
    console.log(JSON.stringify(l));
  };
  const create = (kind: "causal" | "bidirectional") =>
    WebGpuTransformer.create(
      { ...base, kind, timeConditioning: false, dropout: 0 },
      { batchSize: 1, length: 2, seed: 0, device },
    );
  log(`generation: ${batches} batches of ${batch} × ${length}`);
  const ar = await create("causal");
  try {
    const t = await timeBatches(ar, batches, (i) =>
      ar.generateCausal({
        batchSize: batch,
        length,
        start: 0,
        temperature: 1,
        suppress: [maskId],
        seed: i >>> 0,
      }));
    emit(line("ar", {}, batch, length, batches, t));
  } finally {
    ar.dispose();
  }
  const d3pm = await create("bidirectional");
  try {
    for (const steps of options.steps) {
      // MDLM's log-linear schedule discretised to `steps` (the reveal
      // probabilities only set which positions a step reveals).
      const alpha = (t: number) => 1 - (1 - 1e-3) * t;
      const list = Array.from({ length: steps }, (_, k) => {
        const t = 1 - k / steps, s = 1 - (k + 1) / steps;
        const aT = alpha(t), aS = k === steps - 1 ? 1 : alpha(s);
        return { t, reveal: k === steps - 1 ? 1 : (aS - aT) / (1 - aT) };
      });
      const t = await timeBatches(d3pm, batches, (i) =>
        d3pm.generateMasked({
          batchSize: batch,
          length,
          maskId,
          steps: list,
          strategy: "ancestral",
          cache: true,
          seed: i >>> 0,
        }));
      emit(line("d3pm", { steps, cache: true }, batch, length, batches, t));
    }
  } finally {
    d3pm.dispose();
  }
  const arRate = lines[0].batchesPerS;
  console.log(JSON.stringify({
    bench: "webgpu.generate.ratio",
    arBatchesPerS: arRate,
    d3pmOverAr: Object.fromEntries(
      lines.slice(1).map((
        l,
      ) => [l.steps, +(l.batchesPerS / arRate).toFixed(2)]),
    ),
    thesisRatio: +(3.97 / 1.68).toFixed(2),
  }));
  return lines;
}
