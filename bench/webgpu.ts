/**
 * The fused WebGPU engine's training step: tokens/s, model FLOPs per token
 * and achieved TFLOP/s, dispatches and GPU→CPU syncs per step, host µs per
 * dispatch, the matmul kernel's GFLOP/s at GPT-2 shapes, the attention
 * kernels alone at GPT-2 small's shape, tiled and wide sets side by side
 * (bench/_attention.ts), and
 * generation (bench/_generation.ts). Prints JSON lines on stdout; progress
 * goes to stderr.
 *
 *   deno task bench:webgpu [--size tiny|reference|paper] [--batch B]
 *     [--steps N] [--kind causal|bidirectional] [--positions learned|rotary]
 *     [--profile] [--no-matmul] [--no-attention] [--no-step] [--no-tfjs]
 *     [--no-generate] [--kernels new|old|both] [--attention-kernel tiled|wide]
 *     [--decode-matmul tile|skinny|both] [--decode-attention single|split|both]
 *
 * `--profile` times every kernel of one step and, when generating, of one
 * AR batch and one D3PM batch (GPU timestamps, one pass per dispatch).
 *
 * Sizes: `tiny` (default; seconds on lavapipe): 2 layers, d 64, 4 heads,
 * MLP 256, T 32, batch 2, V 512. `reference`: 4 layers, d 256, 4 heads,
 * MLP 1024, T 128, batch 8, V 4096 (the issue's reference step). `paper`:
 * GPT-2 small (12 layers, d 768, T 1024, V 50261), batch 4, dropout 0.
 *
 * FLOPs per token count 2 per multiply-add of the step's matmuls (per layer
 * qkv 3d², projection d², MLP 2·d·dMlp; the tied head V·d) and of
 * attention's two products over the keys a query sees (all T when
 * bidirectional, (T + 1)/2 on average when causal), times 3 for forward and
 * backward; LayerNorm, GELU, softmax, AdamW and the time MLP are left out.
 *
 * `--decode-matmul` picks the matmul of AR generation's cached decoding
 * passes (`decodeMatmul` of the engine): `tile` (default) or `skinny`;
 * `both` prints an AR line each (`decodeMatmul` in the line), tile first,
 * and with `--profile` profiles the last (skinny). `--decode-attention`
 * likewise picks decoding's attention (`decodeAttention`): `single`
 * (default) or `split` (split-key); `both` adds one AR line with the split
 * kernel and the last matmul listed (`--decode-matmul both
 * --decode-attention both`: tile/single, skinny/single, skinny/split; the
 * profile takes skinny/split).
 *
 * `--kernels` picks the engine's kernel generation for the training step
 * (`both`: one step line each, `old` first; `engineKernels` in the step
 * and profile lines): `new` is the double-buffered
 * vec4 matmul and the tiled attention, `old` the first kernels. The matmul
 * lines always time the new kernel, the old one and the new one with f16
 * operands (where the device has `shader-f16`), each line naming its
 * `kernel` and `dtype`.
 *
 * `--attention-kernel wide` gives the new kernels' step the wide attention
 * set instead of the tiled one; with `--kernels old` it is refused.
 * `attentionKernel` in the step and profile lines is the set the engine
 * dispatched (its `attentionKernels`), not the one asked for: `wide`,
 * `tiled` or `first` (one query per thread: the old kernels' step, or a
 * head size over 64) — not `wide` where the wide set does not take the
 * head size (a multiple of 4 up to 64) or the device's workgroup memory
 * does not hold it; `forward/backward-q/backward-kv` when the three differ. `--decode-matmul skinny` or `both` needs
 * `--gen-batch` ≤ 8 (larger batches keep the tiled matmul).
 *
 * Steps run back to back and the loss is read once at the end (the logged
 * step's one sync), after one warm-up step that is read on its own.
 * `hostMicrosPerDispatch` is the time spent recording dispatches;
 * `hostMsPerStep` is the whole `step()` call, which on lavapipe includes
 * `submitMsPerStep`, where the software queue waits for the previous step.
 *
 * @module
 */

import { prng } from "@d3pm/core";
import { readCommandLine, UsageError } from "@d3pm/cli";
import { type ModelConfig, parameterCount, preset } from "@d3pm/transformer";
import {
  type AttentionKernels,
  engineMemory,
  requestEngineDevice,
  timeMatmul,
  WebGpuTransformer,
} from "@d3pm/webgpu";
import { attentionBench, PAPER_ATTENTION } from "./_attention.ts";
import { generationBench } from "./_generation.ts";
import { byFamily } from "./_gpu_profile.ts";

const SIZES = ["tiny", "reference", "paper"] as const;
/** Rows the engine's skinny decode matmul takes (more keep the tiled one). */
const SKINNY_ROWS = 8;
type Size = typeof SIZES[number];

const args = readCommandLine(Deno.args, {
  command: "deno task bench:webgpu",
  summary:
    `The fused WebGPU engine's training step: tokens/s, dispatches and GPU→CPU
syncs per step, host µs per dispatch, the matmul kernel's GFLOP/s at GPT-2
shapes, the attention kernels alone at GPT-2 small's shape, the same step on
tfjs-webgpu, and generation (AR with the KV cache, the D3PM at several step
counts). JSON lines on stdout.`,
  options: {
    size: {
      kind: "choice",
      choices: SIZES,
      default: "tiny",
      help:
        "tiny (lavapipe-friendly), reference (4×256, T 128, batch 8, V 4096) or paper (GPT-2 small, T 1024, batch 4)",
    },
    batch: {
      kind: "integer",
      min: 1,
      help: "rows per step (default by size: 2, 8, 4; halved until it fits)",
    },
    steps: {
      kind: "integer",
      min: 1,
      help: "timed steps (default: 3 tiny, 20 reference, 10 paper)",
    },
    kind: {
      kind: "choice",
      choices: ["causal", "bidirectional"],
      default: "causal",
      help: "the model",
    },
    positions: {
      kind: "choice",
      choices: ["learned", "rotary"],
      default: "learned",
      help: "positions",
    },
    time: {
      kind: "boolean",
      default: false,
      help: "a time-conditioned (adaLN) bidirectional model instead",
    },
    profile: {
      kind: "boolean",
      default: false,
      help:
        "also time every kernel of one step, and of one AR batch and one D3PM batch (the first --gen-steps) when generating (GPU timestamps, one pass per dispatch)",
    },
    kernels: {
      kind: "choice",
      choices: ["new", "old", "both"],
      default: "new",
      help:
        "the training step's kernels: new (double-buffered vec4 matmul, tiled attention), old (the first ones) or both",
    },
    attentionKernel: {
      kind: "choice",
      choices: ["tiled", "wide"],
      default: "tiled",
      help:
        "the training step's attention set with --kernels new or both (the engine's attentionKernel): tiled (default) or wide (register-tiled, not yet timed on a GPU); the step line's attentionKernel says what ran",
    },
    matmul: {
      kind: "boolean",
      default: true,
      help: "the matmul GFLOP/s lines (--no-matmul skips them)",
    },
    attention: {
      kind: "boolean",
      default: true,
      help:
        "the attention kernels' lines: forward, backward-q and backward-kv alone at GPT-2 small's shape, causal and bidirectional, the tiled and the wide set (--no-attention skips them)",
    },
    step: {
      kind: "boolean",
      default: true,
      help:
        "the training step (--no-step skips it, e.g. to time generation on its own)",
    },
    adapter: {
      kind: "boolean",
      default: false,
      help: "print the adapter's description, features and limits, then exit",
    },
    tfjs: {
      kind: "boolean",
      default: true,
      help:
        "the same step on tfjs-webgpu (the project's Transformer, causalLmLoss, clipByGlobalNorm and AdamW, as train() runs it; --no-tfjs skips it)",
    },
    generate: {
      kind: "boolean",
      default: true,
      help:
        "the generation lines, one sync per batch (the thesis's speed test: 100K tokens, batch 4; --no-generate skips them)",
    },
    genTokens: {
      kind: "integer",
      min: 1,
      help: "tokens generated (default 100000; a software adapter: 2 batches)",
    },
    genBatch: {
      kind: "integer",
      min: 1,
      default: 4,
      help: "rows per generated batch",
    },
    decodeMatmul: {
      kind: "choice",
      choices: ["tile", "skinny", "both"],
      default: "tile",
      help:
        "the matmul of AR decoding passes (the engine's decodeMatmul): tile, skinny (--gen-batch ≤ 8) or both (one AR line each, tile first; --profile profiles the last)",
    },
    decodeAttention: {
      kind: "choice",
      choices: ["single", "split", "both"],
      default: "single",
      help:
        "the attention of AR decoding passes (the engine's decodeAttention): single, split (split-key) or both (one more AR line, split with the last --decode-matmul; --profile profiles it)",
    },
    genSteps: {
      kind: "string",
      value: "LIST",
      help:
        "D3PM step counts (default 16,64,256,1024; a software adapter: 16,64)",
    },
  },
}, {
  usageExit: 2,
  check: ({ values }) => {
    if (values.kernels === "old" && values.attentionKernel === "wide") {
      throw new UsageError(
        `Option --attention-kernel wide needs --kernels new or both (the old kernels have one attention set), got --kernels old`,
      );
    }
    if (
      values.generate && values.decodeMatmul !== "tile" &&
      values.genBatch > SKINNY_ROWS
    ) {
      throw new UsageError(
        `Option --decode-matmul ${values.decodeMatmul} needs --gen-batch ≤ ${SKINNY_ROWS} (the skinny kernel takes matmuls of at most ${SKINNY_ROWS} rows; larger batches keep the tiled one), got ${values.genBatch}`,
      );
    }
    const bad = values.genSteps?.split(",").find((x) =>
      !(Number.isInteger(Number(x)) && Number(x) >= 1)
    );
    if (bad !== undefined) {
      throw new UsageError(
        `Option --gen-steps must be comma-separated positive integers, got "${values.genSteps}"`,
      );
    }
  },
}).values;
const size: Size = args.size;

/**
 * Model FLOPs per token of a training step (forward and backward) at
 * `length` tokens per row: see the module doc for what is counted.
 */
function stepFlopsPerToken(c: ModelConfig, length: number): number {
  const d = c.dModel;
  const matmulWeights = c.nLayer * (4 * d * d + 2 * d * c.dMlp) +
    c.vocabSize * d;
  const keys = c.kind === "causal" ? (length + 1) / 2 : length;
  const attention = c.nLayer * 2 * keys * d; // QKᵀ and PV, per query
  return 3 * 2 * (matmulWeights + attention);
}

const log = (msg: string) => console.error(`[bench:webgpu] ${msg}`);
const common = {
  kind: args.time ? "bidirectional" : args.kind,
  positions: args.positions,
  timeConditioning: args.time,
  dropout: 0,
} as const;
const shapes: Record<
  Size,
  { config: ModelConfig; batch: number; steps: number }
> = {
  tiny: {
    config: preset("tiny", {
      ...common,
      vocabSize: 512,
      contextLength: 32,
      nLayer: 2,
      dModel: 64,
      nHead: 4,
      dMlp: 256,
    }),
    batch: 2,
    steps: 3,
  },
  reference: {
    config: preset("tiny", {
      ...common,
      vocabSize: 4096,
      contextLength: 128,
      nLayer: 4,
      dModel: 256,
      nHead: 4,
      dMlp: 1024,
    }),
    batch: 8,
    steps: 20,
  },
  paper: { config: preset("paper", common), batch: 4, steps: 10 },
};
const { config } = shapes[size];
const steps = args.steps ?? shapes[size].steps;
const length = config.contextLength;

const { device, adapter, label, software, note } = await requestEngineDevice();
log(
  `adapter: ${label}${software ? " (software)" : ""}${
    note ? `, via ${note}` : ""
  }`,
);
if (args.adapter) {
  const limits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === "number") limits[key] = v;
  }
  const info = adapter.info;
  console.log(JSON.stringify({
    bench: "webgpu.adapter",
    adapter: label,
    software,
    // PCI vendor id (NVIDIA 4318 = 0x10de; Mesa's software drivers 65541).
    vendor: info.vendor,
    device: info.device,
    architecture: info.architecture,
    fallback: info.isFallbackAdapter,
    // wgpu's backend choice (vulkan, gl, …) when the environment forced one.
    backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? null,
    icd: Deno.env.get("VK_DRIVER_FILES") ?? Deno.env.get("VK_ICD_FILENAMES") ??
      null,
    note: note ?? null,
    features: [...adapter.features].sort(),
    limits,
  }));
  device.destroy();
  Deno.exit(0);
}

// Without --batch: the size's batch, halved until its largest buffer fits.
const limit = Math.min(
  device.limits.maxStorageBufferBindingSize,
  device.limits.maxBufferSize,
);
let batch = args.batch ?? shapes[size].batch;
const memoryOf = (b: number) =>
  engineMemory(config, {
    batchSize: b,
    length,
    maxBindingBytes: device.limits.maxStorageBufferBindingSize,
  });
if (args.batch === undefined) {
  while (batch > 1 && memoryOf(batch).largestBuffer > limit) {
    batch = Math.floor(batch / 2);
  }
}
const memory = memoryOf(batch);
log(
  `batch ${batch}: ${(memory.total / 2 ** 20).toFixed(0)} MiB (largest buffer ${
    (memory.largestBuffer / 2 ** 20).toFixed(0)
  } MiB, limit ${(limit / 2 ** 20).toFixed(0)} MiB)`,
);

const rng = prng(1);
const n = batch * length;
const flopsPerToken = Math.round(stepFlopsPerToken(config, length));
log(
  `${config.nLayer} layers, d ${config.dModel}, MLP ${config.dMlp}, T ${length}, V ${config.vocabSize}: ${
    (flopsPerToken / 1e6).toFixed(2)
  } MFLOP per token per training step`,
);
const batches = Array.from({ length: 2 }, () => {
  const inputs = Int32Array.from(
    { length: n },
    () => Math.floor(rng.next() * config.vocabSize),
  );
  const targets = Int32Array.from(
    { length: n },
    () => Math.floor(rng.next() * config.vocabSize),
  );
  const t = Array.from({ length: batch }, () => rng.next());
  return { inputs, targets, weights: new Float32Array(n).fill(1 / n), t };
});

// The attention set an engine dispatches (not the one asked for: "wide"
// falls back with the old kernels, at head sizes it does not take, or where
// the device's workgroup memory does not hold it): one name when the three
// kernels agree, else forward/backward-q/backward-kv.
function ranAttention(k: AttentionKernels): string {
  const all = [k.forward, k.backwardQuery, k.backwardKeyValue];
  return new Set(all).size === 1 ? all[0] : all.join("/");
}

// The training step: built, warmed up, timed; one JSON line (and the
// profile's with --profile).
async function trainingStep(kernels: "new" | "old"): Promise<void> {
  const buildStart = performance.now();
  const engine = await WebGpuTransformer.create(config, {
    batchSize: batch,
    length,
    seed: 0,
    device,
    kernels,
    attentionKernel: args.attentionKernel as "tiled" | "wide",
  });
  const buildMs = performance.now() - buildStart;
  const attentionKernel = ranAttention(engine.attentionKernels);
  log(
    `built ${size} (${parameterCount(config)} parameters) in ${
      buildMs.toFixed(0)
    } ms`,
  );

  // Warm-up: pipelines compiled, buffers touched.
  engine.step(batches[0], 1e-4);
  await engine.readLoss();

  const before = engine.counters;
  let hostMs = 0;
  const submitBefore = engine.counters.submitMs;
  const start = performance.now();
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    engine.step(batches[s % 2], 1e-4);
    hostMs += performance.now() - t0;
  }
  const stepSubmitMs = engine.counters.submitMs - submitBefore;
  const reading = await engine.readLoss();
  const seconds = (performance.now() - start) / 1000;
  const after = engine.counters;
  const dispatches = (after.dispatches - before.dispatches) / steps;
  console.log(JSON.stringify({
    bench: "webgpu.step",
    size,
    engineKernels: kernels,
    attentionKernel,
    adapter: label,
    software,
    kind: config.kind,
    positions: config.positions,
    timeConditioning: config.timeConditioning,
    memoryMiB: Math.round(memory.total / 2 ** 20),
    parameters: parameterCount(config),
    nLayer: config.nLayer,
    dModel: config.dModel,
    nHead: config.nHead,
    dMlp: config.dMlp,
    batch,
    length,
    vocab: config.vocabSize,
    steps,
    tokensPerSecond: Math.round((steps * n) / seconds),
    flopsPerToken,
    tflops: +((flopsPerToken * steps * n) / seconds / 1e12).toFixed(4),
    msPerStep: +((seconds * 1000) / steps).toFixed(2),
    dispatchesPerStep: dispatches,
    // The logged step's loss read is the one extra command buffer.
    commandBuffersPerStep: (after.submits - before.submits - 1) / steps,
    syncsPerLoggedStep: after.syncs - before.syncs,
    hostMicrosPerDispatch: +(
      ((after.encodeMs - before.encodeMs) * 1000) / steps / dispatches
    ).toFixed(2),
    hostMsPerStep: +(hostMs / steps).toFixed(2),
    submitMsPerStep: +(stepSubmitMs / steps).toFixed(2),
    buildMs: Math.round(buildMs),
    loss: +reading.loss.toFixed(4),
  }));
  if (args.profile) {
    if (!device.features.has("timestamp-query")) {
      log("--profile: this device has no timestamp-query; skipped");
    } else {
      const profile = await engine.profileStep(batches[0], 1e-4);
      console.log(JSON.stringify({
        bench: "webgpu.profile",
        size,
        engineKernels: kernels,
        attentionKernel,
        gpuMsPerStep: +profile.totalMs.toFixed(3),
        byFamily: byFamily(profile.kernels),
        kernels: profile.kernels.map((k) => ({ ...k, ms: +k.ms.toFixed(3) })),
      }));
    }
  }
  engine.dispose();
}
if (args.step) {
  for (
    const kernels of args.kernels === "both"
      ? ["old", "new"] as const
      : [args.kernels as "new" | "old"]
  ) {
    await trainingStep(kernels);
  }
}

if (args.tfjs && config.kind === "causal") {
  // The same model and shape on tfjs-webgpu, stepped as train() does.
  const tf = await import("@tensorflow/tfjs");
  const { initBackend } = await import("@d3pm/backend");
  const { Transformer } = await import("@d3pm/transformer");
  const { AdamW, clipByGlobalNorm } = await import("@d3pm/train");
  const { causalLmLoss } = await import("@d3pm/autoregressive");
  const info = await initBackend({ prefer: "webgpu", fallback: false, log });
  const model = new Transformer(config, { seed: 0 });
  const opt = new AdamW(model.variables);
  const blocks = Int32Array.from(
    { length: batch * (length + 1) },
    () => Math.floor(rng.next() * config.vocabSize),
  );
  const tfStep = async () => {
    const { value, grads } = tf.variableGrads(
      () =>
        causalLmLoss(model, {
          tokens: blocks,
          batchSize: batch,
          length: length + 1,
        }),
      model.trainableVariables(),
    );
    const named = new Map(
      [...model.variables].map(([k, v]) => [k, grads[v.name]]),
    );
    const clipped = await clipByGlobalNorm(named, 1); // train()'s one sync per step
    opt.step(clipped.grads, 1e-4);
    tf.dispose([...named.values(), ...clipped.grads.values()]);
    return value;
  };
  (await tfStep()).dispose(); // warm-up
  const profile = await tf.profile(async () => {
    (await tfStep()).dispose();
  });
  const tfSteps = Math.max(1, Math.min(steps, 5));
  const t0 = performance.now();
  let last: { data(): Promise<unknown>; dispose(): void } | null = null;
  for (let s = 0; s < tfSteps; s++) {
    last?.dispose();
    last = await tfStep();
  }
  await last!.data();
  last!.dispose();
  const tfSeconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({
    bench: "tfjs-webgpu.step",
    size,
    backend: info.name,
    batch,
    length,
    steps: tfSteps,
    tokensPerSecond: Math.round((tfSteps * n) / tfSeconds),
    flopsPerToken,
    tflops: +((flopsPerToken * tfSteps * n) / tfSeconds / 1e12).toFixed(4),
    msPerStep: +((tfSeconds * 1000) / tfSteps).toFixed(2),
    kernelsPerStep: profile.kernels.length,
    syncsPerStep: 1,
  }));
  opt.dispose();
  model.dispose();
}

if (args.matmul) {
  // GPT-2 small shapes at B·T = 8192 (the paper step); on a software adapter
  // the rows shrink to 128 so that the run stays in seconds.
  const rows = software ? 128 : 8192;
  const cases = [
    { name: "qkv", m: rows, n: 2304, k: 768, transB: false },
    { name: "mlp_fc", m: rows, n: 3072, k: 768, transB: false },
    { name: "mlp_proj", m: rows, n: 768, k: 3072, transB: false },
    {
      name: "lm_head",
      m: software ? 64 : 2048,
      n: 50257,
      k: 768,
      transB: true,
    },
  ];
  const limit = device.limits.maxStorageBufferBindingSize;
  for (const c of cases) {
    if (Math.max(c.m * c.k, c.k * c.n, c.m * c.n) * 4 > limit) {
      console.log(JSON.stringify({
        bench: "webgpu.matmul",
        shape: c.name,
        skipped: `an operand exceeds maxStorageBufferBindingSize ${limit}`,
      }));
      continue;
    }
    // Both workgroup tiles, so one GPU run shows which to use where; the
    // new kernel, the old one, and the new one on f16 operands.
    const variants: { kernel: "new" | "old"; f16: boolean }[] = [
      { kernel: "new", f16: false },
      { kernel: "old", f16: false },
      ...(device.features.has("shader-f16")
        ? [{ kernel: "new" as const, f16: true }]
        : []),
    ];
    for (const tile of software ? [64] as const : [64, 128] as const) {
      for (const v of variants) {
        const t = await timeMatmul(device, c, {
          repeats: software ? 1 : 10,
          transB: c.transB,
          tile,
          kernel: v.kernel,
          f16: v.f16,
        });
        console.log(JSON.stringify({
          bench: "webgpu.matmul",
          shape: c.name,
          m: c.m,
          n: c.n,
          k: c.k,
          tile,
          kernel: v.kernel,
          dtype: v.f16 ? "f16 (f32 accumulate)" : "f32",
          ms: +(t.seconds * 1000).toFixed(3),
          gflops: +t.gflops.toFixed(1),
        }));
      }
    }
  }
}
if (args.attention) {
  // The paper step's attention (batch 2, 12 heads of 64, T 1024); on a
  // software adapter T shrinks to 128 so that the run stays in seconds.
  const shape = { ...PAPER_ATTENTION, length: software ? 128 : 1024 };
  if (!device.features.has("timestamp-query")) {
    console.log(JSON.stringify({
      bench: "webgpu.attention",
      ...shape,
      skipped: "the device has no timestamp-query",
    }));
  } else {
    await attentionBench(device, shape, { repeats: software ? 1 : 5, log });
  }
}
if (args.generate) {
  const genBatch = args.genBatch;
  const genSteps = (args.genSteps ?? (software ? "16,64" : "16,64,256,1024"))
    .split(",").map((x) => Number(x.trim()));
  await generationBench(device, config, {
    batch: genBatch,
    tokens: args.genTokens !== undefined
      ? args.genTokens
      : software
      ? 2 * genBatch * length
      : 100_000,
    steps: genSteps,
    log,
    profile: args.profile,
    decodeMatmul: args.decodeMatmul === "both"
      ? ["tile", "skinny"]
      : [args.decodeMatmul as "tile" | "skinny"],
    decodeAttention: args.decodeAttention === "both"
      ? ["single", "split"]
      : [args.decodeAttention as "single" | "split"],
  });
}
device.destroy();
