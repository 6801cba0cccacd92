// The engine's attention kernels alone, for bench:webgpu: a one-layer
// engine at GPT-2 small's attention shape (12 heads of 64, T 1024, batch
// 2: the paper step's) whose training step is profiled (GPU timestamps per
// dispatch, the engine's profileStep) a few times; the forward, backward-q
// and backward-kv dispatches' median ms become one line each, with the
// FLOPs of the products each kernel computes. Each attention set (`tiled`,
// `wide`: the engine's attentionKernel) gets its own engine and lines, in
// one process, so the two compare on one device. Private to the bench.

import { type ModelConfig, preset } from "@d3pm/transformer";
import { type KernelTime, WebGpuTransformer } from "@d3pm/webgpu";

/** The attention shape timed. */
export interface AttentionShape {
  batch: number;
  heads: number;
  headDim: number;
  length: number;
}

/**
 * The paper step's attention (GPT-2 small at batch 2 × 1024).
 *
 * @example
 * ```ts
 * import { PAPER_ATTENTION } from "./_attention.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(PAPER_ATTENTION.heads * PAPER_ATTENTION.headDim, 768);
 * ```
 */
export const PAPER_ATTENTION: AttentionShape = {
  batch: 2,
  heads: 12,
  headDim: 64,
  length: 1024,
};

// The three kernels by their key's family (tiled or first), and the
// products of [T, hd]·[hd, keys] size each computes: the forward QKᵀ and
// PV; backward-q recomputes QKᵀ, then dY·Vᵀ and dS·K; backward-kv
// recomputes QKᵀ, then dY·Vᵀ, Pᵀ·dY and dSᵀ·Q.
const KERNELS = [
  { role: "forward", family: /^attn_fwd(_tiled|_wide)?$/, products: 2 },
  { role: "backward-q", family: /^attn_bwd_q(_tiled|_wide)?$/, products: 3 },
  { role: "backward-kv", family: /^attn_bwd_kv(_tiled|_wide)?$/, products: 4 },
] as const;

/**
 * Multiply-adds of one [T, hd]·[hd, keys] product over all rows and heads:
 * each query sees all T keys when bidirectional, (T + 1)/2 on average when
 * causal (bench/webgpu.ts's stepFlopsPerToken counts the same way).
 *
 * @param s The shape.
 * @param kind Causal (about half the keys) or bidirectional.
 * @returns Multiply-adds of one product.
 *
 * @example
 * ```ts
 * import { PAPER_ATTENTION, productMacs } from "./_attention.ts";
 * import { assertEquals } from "@std/assert";
 * // 2 rows × 12 heads × 1024 queries × 1024 keys × 64.
 * assertEquals(productMacs(PAPER_ATTENTION, "bidirectional"), 1_610_612_736);
 * assertEquals(productMacs(PAPER_ATTENTION, "causal"), 1_610_612_736 * 1025 / 2048);
 * ```
 */
export function productMacs(
  s: AttentionShape,
  kind: "causal" | "bidirectional",
): number {
  const keys = kind === "causal" ? (s.length + 1) / 2 : s.length;
  return s.batch * s.heads * s.length * keys * s.headDim;
}

/** An attention kernel set of the engine (its `attentionKernel`). */
export type AttentionSet = "tiled" | "wide";

/** What one attention line reports. */
export interface AttentionLine {
  bench: "webgpu.attention";
  kind: "causal" | "bidirectional";
  /** The engine's attentionKernel asked for (the key says what ran). */
  set: AttentionSet;
  /** forward, backward-q, backward-kv, or all (their sum). */
  kernel: string;
  /** The engine's pipeline key. */
  key: string;
  batch: number;
  heads: number;
  headDim: number;
  length: number;
  /** Profiled steps the median is over. */
  repeats: number;
  ms: number;
  /** Products of the kernel counted (recomputations included). */
  products: number;
  /** 2 × products × productMacs. */
  flop: number;
  tflops: number;
  /** `all` only: the model's FLOPs (forward 2 products, backward 4), as stepFlopsPerToken counts them. */
  modelFlop?: number;
  modelTflops?: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// The profiled step's dispatches of each attention kernel: per repeat, the
// ms of one dispatch (the layer's only one) and its key.
async function profileAttention(
  device: GPUDevice,
  config: ModelConfig,
  batch: number,
  repeats: number,
  set: AttentionSet,
): Promise<{ key: string; ms: number[] }[]> {
  const engine = await WebGpuTransformer.create(config, {
    batchSize: batch,
    length: config.contextLength,
    seed: 0,
    device,
    attentionKernel: set,
  });
  try {
    const n = batch * config.contextLength;
    const ids = Int32Array.from({ length: n }, (_, i) => (i * 7) % 61);
    const step = {
      inputs: ids,
      targets: ids,
      weights: new Float32Array(n).fill(1 / n),
    };
    engine.step(step, 1e-4); // warm-up: pipelines compiled
    const found = KERNELS.map(() => ({ key: "", ms: [] as number[] }));
    for (let r = 0; r < repeats; r++) {
      const { kernels } = await engine.profileStep(step, 1e-4);
      KERNELS.forEach(({ role, family }, i) => {
        const k: KernelTime | undefined = kernels.find((k) =>
          family.test(k.kernel.split(":")[0])
        );
        if (!k) throw new Error(`no ${role} attention kernel in the profile`);
        found[i].key = k.kernel;
        found[i].ms.push(k.ms / k.count);
      });
    }
    return found;
  } finally {
    engine.dispose();
  }
}

/**
 * Time the forward, backward-q and backward-kv attention kernels at `shape`,
 * causal and bidirectional, for each attention set (default both: tiled,
 * then wide), `repeats` profiled steps each; print one JSON line per kernel
 * and one `all` line per kind and set. Needs timestamp-query.
 *
 * @param device The device (with timestamp-query).
 * @param shape Rows, heads, head size and length.
 * @param options Profiled steps per kind and set, the sets, and the progress log.
 * @returns The lines printed.
 *
 * @example
 * ```ts ignore
 * import { attentionBench } from "./_attention.ts";
 * import { requestEngineDevice } from "@d3pm/webgpu";
 * const { device } = await requestEngineDevice();
 * const shape = { batch: 1, heads: 2, headDim: 8, length: 16 };
 * const lines = await attentionBench(device, shape, { repeats: 1, log: () => {} });
 * console.log(lines.map((l) => `${l.set} ${l.kind} ${l.kernel} ${l.ms} ms`));
 * ```
 */
export async function attentionBench(
  device: GPUDevice,
  shape: AttentionShape,
  options: {
    repeats: number;
    log: (msg: string) => void;
    sets?: readonly AttentionSet[];
  },
): Promise<AttentionLine[]> {
  const lines: AttentionLine[] = [];
  for (const kind of ["causal", "bidirectional"] as const) {
    for (const set of options.sets ?? ["tiled", "wide"] as const) {
      lines.push(...await benchKind(device, shape, kind, set, options));
    }
  }
  return lines;
}

// One kind and set: its three kernels' lines and their `all` line, printed.
async function benchKind(
  device: GPUDevice,
  shape: AttentionShape,
  kind: "causal" | "bidirectional",
  set: AttentionSet,
  options: { repeats: number; log: (msg: string) => void },
): Promise<AttentionLine[]> {
  // One layer with a tiny MLP and vocabulary: only attention matters.
  const config = preset("paper", {
    kind,
    nLayer: 1,
    nHead: shape.heads,
    dModel: shape.heads * shape.headDim,
    dMlp: 64,
    vocabSize: 64,
    contextLength: shape.length,
    dropout: 0,
  });
  const found = await profileAttention(
    device,
    config,
    shape.batch,
    options.repeats,
    set,
  );
  const macs = productMacs(shape, kind);
  const common = {
    bench: "webgpu.attention" as const,
    kind,
    set,
    ...shape,
    repeats: options.repeats,
  };
  const one = (
    kernel: string,
    key: string,
    ms: number,
    products: number,
  ): AttentionLine => ({
    ...common,
    kernel,
    key,
    ms: +ms.toFixed(4),
    products,
    flop: 2 * products * macs,
    tflops: +((2 * products * macs) / (ms / 1000) / 1e12).toPrecision(4),
  });
  const each = KERNELS.map(({ role, products }, i) =>
    one(role, found[i].key, median(found[i].ms), products)
  );
  const totalMs = each.reduce((s, l) => s + l.ms, 0);
  const all = one("all", "", totalMs, 9);
  all.modelFlop = 2 * 6 * macs;
  all.modelTflops = +(all.modelFlop / (totalMs / 1000) / 1e12).toPrecision(4);
  for (const l of [...each, all]) console.log(JSON.stringify(l));
  options.log(
    `attention ${kind} (${set}): ${
      totalMs.toFixed(2)
    } ms for the three kernels, ${all.modelTflops} model TFLOP/s`,
  );
  return [...each, all];
}
