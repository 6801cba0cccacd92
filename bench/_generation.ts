// Generation on the fused engine, for bench:webgpu: AR with the KV cache
// and the D3PM at several step counts, each a batch at a time with one
// sync, as the thesis measures it (batches/s generating N tokens at batch
// size 4). Weights are the seeded initial ones: speed does not depend on
// them (sample quality does; the experiment reports it).

import type { Generation } from "@d3pm/core";
import type { ModelConfig } from "@d3pm/transformer";
import { type KernelTime, WebGpuTransformer } from "@d3pm/webgpu";
import { byFamily, profileDispatches } from "./_gpu_profile.ts";

/** What one generation line reports. */
export interface GenerationLine {
  bench: "webgpu.generate";
  model: "ar" | "d3pm";
  /** AR only: the engine's decodeMatmul. */
  decodeMatmul?: "tile" | "skinny";
  /** AR only: the engine's decodeAttention. */
  decodeAttention?: "single" | "split";
  /**
   * AR only: the warm-up generation's length — the timed one's for the
   * first AR line; 2 for the later ones, which compiles their kernels but
   * leaves building the timed shape's plan (buffers, bind groups; the
   * single kernel's pipeline, sized by L) to the timed batch.
   */
  warmUpLength?: number;
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
  warmUp: () => Promise<unknown> = () => run(-1),
) {
  await warmUp(); // pipelines, plans
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
  extra:
    & { steps?: number; cache?: boolean; warmUpLength?: number }
    & Partial<ArVariant>,
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

/** The decoding kernels of one AR line (the engine's options). */
export interface ArVariant {
  decodeMatmul: "tile" | "skinny";
  decodeAttention: "single" | "split";
}

/**
 * The AR lines of `generationBench`: the first attention kernel with every
 * matmul, then each other attention kernel with the last matmul only (the
 * new kernels together, without the cost of every pair).
 *
 * @param matmuls The decodeMatmul values to time.
 * @param attentions The decodeAttention values to time.
 * @returns The variants, in the order they run.
 *
 * @example
 * ```ts
 * import { arVariants } from "./_generation.ts";
 * import { assertEquals } from "@std/assert";
 * const both = arVariants(["tile", "skinny"], ["single", "split"]);
 * assertEquals(both.map((v) => `${v.decodeMatmul}/${v.decodeAttention}`), [
 *   "tile/single",
 *   "skinny/single",
 *   "skinny/split",
 * ]);
 * ```
 */
export function arVariants(
  matmuls: readonly ("tile" | "skinny")[],
  attentions: readonly ("single" | "split")[],
): ArVariant[] {
  return [
    ...matmuls.map((decodeMatmul) => ({
      decodeMatmul,
      decodeAttention: attentions[0],
    })),
    ...attentions.slice(1).map((decodeAttention) => ({
      decodeMatmul: matmuls[matmuls.length - 1],
      decodeAttention,
    })),
  ];
}

/** What one generation profile line reports (`--profile`). */
export interface GenerationProfileLine {
  bench: "webgpu.generate.profile";
  model: "ar" | "d3pm";
  decodeMatmul?: "tile" | "skinny";
  decodeAttention?: "single" | "split";
  steps?: number;
  batch: number;
  length: number;
  /** Forward passes of the profiled batch. */
  forwardPasses: number;
  dispatches: number;
  dispatchesPerPass: number;
  /** Dispatches with unwritten or out-of-order stamps (0 ms). */
  badStamps: number;
  /** Summed GPU time of every dispatch of the batch. */
  gpuMs: number;
  gpuMsPerPass: number;
  /** The timed (unprofiled) batches' wall ms per pass, for comparison. */
  timedMsPerPass: number;
  byFamily: Record<string, number>;
  kernels: (KernelTime & { msPerPass: number })[];
}

// One batch of `run` with every dispatch timed, as a profile line.
async function profileLine(
  device: GPUDevice,
  timed: GenerationLine,
  run: () => Promise<Generation>,
): Promise<GenerationProfileLine> {
  const { result, profile } = await profileDispatches(device, run);
  const passes = Math.max(1, result.forwardPasses);
  const r = (x: number) => +x.toFixed(4);
  return {
    bench: "webgpu.generate.profile",
    model: timed.model,
    ...(timed.decodeMatmul ? { decodeMatmul: timed.decodeMatmul } : {}),
    ...(timed.decodeAttention
      ? { decodeAttention: timed.decodeAttention }
      : {}),
    ...(timed.steps ? { steps: timed.steps } : {}),
    batch: timed.batch,
    length: timed.length,
    forwardPasses: result.forwardPasses,
    dispatches: profile.dispatches,
    dispatchesPerPass: +(profile.dispatches / passes).toFixed(1),
    badStamps: profile.badStamps,
    gpuMs: +profile.totalMs.toFixed(3),
    gpuMsPerPass: r(profile.totalMs / passes),
    timedMsPerPass: timed.msPerPass,
    byFamily: byFamily(profile.kernels),
    kernels: profile.kernels.map((k) => ({
      ...k,
      ms: +k.ms.toFixed(3),
      msPerPass: r(k.ms / passes),
    })),
  };
}

// MDLM's log-linear schedule discretised to `steps` (the reveal
// probabilities only set which positions a step reveals).
function logLinearSteps(steps: number): { t: number; reveal: number }[] {
  const alpha = (t: number) => 1 - (1 - 1e-3) * t;
  return Array.from({ length: steps }, (_, k) => {
    const t = 1 - k / steps, s = 1 - (k + 1) / steps;
    const aT = alpha(t), aS = k === steps - 1 ? 1 : alpha(s);
    return { t, reveal: k === steps - 1 ? 1 : (aS - aT) / (1 - aT) };
  });
}

/**
 * Time AR and D3PM generation of `tokens` tokens (rounded up to whole
 * batches of `batch` rows × contextLength) on `device`, print one JSON line
 * each, and the D3PM/AR ratio of batches/s at every step count. With
 * `profile`, one more batch of AR and of the D3PM at the first step count
 * runs with every dispatch timed, after the ratio line (a
 * `webgpu.generate.profile` line each; skipped with a note where the device
 * lacks timestamp-query). `decodeMatmul` and `decodeAttention` list the AR
 * engine's decoding kernels to time (default `["tile"]`, `["single"]`), one
 * AR line per {@linkcode arVariants} pair with both named: the first before
 * the D3PM lines, the others after them; the ratio line divides by the
 * first, and the profile takes the last. The first AR line warms up on a
 * whole batch, the later ones on 2 positions (`warmUpLength`).
 *
 * @param device The device.
 * @param base The model (its kind is set per generator).
 * @param options Rows per batch, tokens, D3PM step counts, the log, profile.
 * @returns The generation lines printed (not the profile lines).
 *
 * @example
 * ```ts ignore
 * import { generationBench } from "./_generation.ts";
 * import { requestEngineDevice } from "@d3pm/webgpu";
 * import { preset } from "@d3pm/transformer";
 * const { device } = await requestEngineDevice();
 * await generationBench(device, preset("micro"), {
 *   batch: 2, tokens: 64, steps: [4], log: console.error, profile: true,
 * });
 * ```
 */
export async function generationBench(
  device: GPUDevice,
  base: ModelConfig,
  options: {
    batch: number;
    tokens: number;
    steps: number[];
    log: (msg: string) => void;
    profile?: boolean;
    decodeMatmul?: ("tile" | "skinny")[];
    decodeAttention?: ("single" | "split")[];
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
  let profile = options.profile ?? false;
  if (profile && !device.features.has("timestamp-query")) {
    log(
      "--profile: this device has no timestamp-query; generation not profiled",
    );
    profile = false;
  }
  // Profiles run last: a slow one cannot cost the timed lines.
  const later: [GenerationLine, () => Promise<Generation>][] = [];
  const engines: WebGpuTransformer[] = [];
  const create = async (
    kind: "causal" | "bidirectional",
    decode: Partial<ArVariant> = {},
  ) => {
    const e = await WebGpuTransformer.create(
      { ...base, kind, timeConditioning: false, dropout: 0 },
      { batchSize: 1, length: 2, seed: 0, device, ...decode },
    );
    engines.push(e);
    return e;
  };
  log(`generation: ${batches} batches of ${batch} × ${length}`);
  try {
    // The first AR variant, the D3PM lines, then the other AR variants:
    // a slow new kernel cannot cost the D3PM lines their time.
    const variants = arVariants(
      options.decodeMatmul ?? ["tile"],
      options.decodeAttention ?? ["single"],
    );
    // The later AR lines warm up on 2 positions: at the paper size a full
    // warm-up batch costs up to 12 s a line on an H100 (gpu_run's budget).
    const arLine = async (variant: ArVariant) => {
      const ar = await create("causal", variant);
      const run = (i: number, l = length) =>
        ar.generateCausal({
          batchSize: batch,
          length: l,
          start: 0,
          temperature: 1,
          suppress: [maskId],
          seed: i >>> 0,
        });
      const warmUpLength = variant === variants[0] ? length : 2;
      const t = await timeBatches(
        ar,
        batches,
        run,
        () => run(-1, warmUpLength),
      );
      emit(
        line("ar", { ...variant, warmUpLength }, batch, length, batches, t),
      );
      if (profile && variant === variants.at(-1)) {
        later.push([lines[lines.length - 1], () => run(0)]);
      }
    };
    await arLine(variants[0]);
    const d3pm = await create("bidirectional");
    for (const steps of options.steps) {
      const list = logLinearSteps(steps);
      const run = (i: number) =>
        d3pm.generateMasked({
          batchSize: batch,
          length,
          maskId,
          steps: list,
          strategy: "ancestral",
          cache: true,
          seed: i >>> 0,
        });
      const t = await timeBatches(d3pm, batches, run);
      emit(line("d3pm", { steps, cache: true }, batch, length, batches, t));
      if (profile && steps === options.steps[0]) {
        later.push([lines[lines.length - 1], () => run(0)]);
      }
    }
    for (const variant of variants.slice(1)) await arLine(variant);
    const arRate = lines[0].batchesPerS;
    console.log(JSON.stringify({
      bench: "webgpu.generate.ratio",
      arBatchesPerS: arRate,
      arDecodeMatmul: lines[0].decodeMatmul,
      arDecodeAttention: lines[0].decodeAttention,
      d3pmOverAr: Object.fromEntries(
        lines.filter((l) => l.model === "d3pm").map((
          l,
        ) => [l.steps, +(l.batchesPerS / arRate).toFixed(2)]),
      ),
      thesisRatio: +(3.97 / 1.68).toFixed(2),
    }));
    for (const [timed, run] of later) {
      const start = performance.now();
      console.log(JSON.stringify(await profileLine(device, timed, run)));
      log(
        `profiled one ${timed.model} batch in ${
          ((performance.now() - start) / 1000).toFixed(1)
        } s`,
      );
    }
  } finally {
    for (const e of engines) e.dispose();
  }
  return lines;
}
