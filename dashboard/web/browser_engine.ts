/// <reference lib="dom" />
// Generation in this browser: the run's safetensors loaded over HTTP into the
// project's WGSL engine on the browser's WebGPU, sampled by the project's
// own samplers (@d3pm/diffusion's, the same code the server runs), so the
// draws follow the same law as the server's.
import { prng, sampleCategorical, tokenProbabilities } from "@d3pm/core";
import { decodeSafetensors } from "@d3pm/core";
import { maskedDiffusion, maskedLanguageModel } from "@d3pm/diffusion";
import { parameterShapes, validateConfig } from "@d3pm/transformer";
import { requestEngineDevice, WebGpuTransformer } from "@d3pm/webgpu";
import { url } from "./api.ts";

/** Whether this browser can run the engine, and why not. */
export type WebGpuStatus = { ok: true; label: string; software: boolean } | {
  ok: false;
  reason: string;
};

let status: Promise<WebGpuStatus> | undefined;
let device: Promise<GPUDevice> | undefined;

/** Probe WebGPU once. */
export function webgpuStatus(): Promise<WebGpuStatus> {
  return status ??= (async () => {
    if (!("gpu" in navigator)) {
      return {
        ok: false,
        reason:
          "this browser has no WebGPU (navigator.gpu is missing): use Chrome/Edge 113+, or Firefox/Safari with WebGPU enabled; generation runs on the server meanwhile",
      } as WebGpuStatus;
    }
    try {
      const d = await requestEngineDevice();
      device = Promise.resolve(d.device);
      return { ok: true, label: d.label, software: d.software } as WebGpuStatus;
    } catch (e) {
      return {
        ok: false,
        reason: `this browser has no usable WebGPU adapter (${
          (e as Error).message
        }); generation runs on the server`,
      } as WebGpuStatus;
    }
  })();
}

/** How a model generates, from /api/run/unmasking. */
export interface ModelInfo {
  kind: string;
  network: "causal" | "bidirectional";
  length: number;
  spec: Record<string, unknown>;
  maskId?: number;
  T?: number;
  strategy?: "ancestral" | "confidence";
  /** Tokens per block (block diffusion: `T` bounds each block's steps). */
  blockSize?: number;
  /** Why it generates on the server's tfjs only (absent: the browser can too). */
  tfjsOnly?: string;
}

/** One step of a generation in the page. */
export interface BrowserFrame {
  step: number;
  steps: number;
  tokens: Int32Array;
  forwardPasses: number;
}

/** A trained model on this browser's GPU. */
export class BrowserModel {
  private constructor(
    readonly info: ModelInfo,
    readonly engine: WebGpuTransformer,
    readonly bytes: number,
  ) {}

  static #shared = new Map<string, Promise<BrowserModel>>();

  /**
   * The model of a run, loaded once per page (its kernels are compiled on
   * the first generation, which is the slow one).
   */
  static shared(
    run: string,
    seed: number,
    info: ModelInfo,
  ): Promise<BrowserModel> {
    const key = `${run}\u0000${seed}\u0000${info.kind}`;
    let m = BrowserModel.#shared.get(key);
    if (!m) {
      m = BrowserModel.load(run, seed, info);
      BrowserModel.#shared.set(key, m);
      m.catch(() => BrowserModel.#shared.delete(key));
    }
    return m;
  }

  /** Release every shared model. */
  static releaseAll(): void {
    for (const m of BrowserModel.#shared.values()) {
      m.then((x) => x.dispose(), () => {});
    }
    BrowserModel.#shared.clear();
  }

  /** Fetch the model's configuration and safetensors and build the engine. */
  static async load(
    run: string,
    seed: number,
    info: ModelInfo,
  ): Promise<BrowserModel> {
    const st = await webgpuStatus();
    if (!st.ok) throw new Error(st.reason);
    const q = { run, seed, model: info.kind };
    const [configRes, weightsRes] = await Promise.all([
      fetch(url("/api/run/model", { ...q, part: "config" })),
      fetch(url("/api/run/model", { ...q, part: "weights" })),
    ]);
    if (!configRes.ok || !weightsRes.ok) {
      throw new Error(
        `Cannot load the model's files (HTTP ${configRes.status}/${weightsRes.status})`,
      );
    }
    const config = validateConfig(await configRes.json());
    const bytes = new Uint8Array(await weightsRes.arrayBuffer());
    const { tensors } = decodeSafetensors(bytes, {
      expect: parameterShapes(config),
      source: `${run} ${info.kind}`,
    });
    const engine = await WebGpuTransformer.create(config, {
      evaluationOnly: true,
      weights: tensors,
      device: await device!,
    });
    return new BrowserModel(info, engine, bytes.length);
  }

  /**
   * Generate one or more rows. A denoiser runs @d3pm/diffusion's sampler
   * with the engine as its device generator (one call per step, so each
   * step is seen); a causal model draws each token on the CPU from the
   * engine's logits with @d3pm/core's categorical draw.
   */
  async generate(
    request: {
      prefix?: Int32Array;
      prompt?: Int32Array;
      batch?: number;
      steps?: number;
      sampler: "ancestral" | "cached" | "confidence";
      temperature: number;
      topP: number;
      rng: number;
    },
    onFrame: (f: BrowserFrame) => void,
    signal?: AbortSignal,
  ): Promise<{ tokens: Int32Array; forwardPasses: number }> {
    // A browser reports WebGPU errors (a buffer beyond its limits, a bad
    // binding) asynchronously, not as exceptions: catch them here rather
    // than show what an invalid command left behind.
    const device = this.engine.device;
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    let out: { tokens: Int32Array; forwardPasses: number } | undefined;
    let failure: unknown;
    try {
      out = await this.#generate(request, onFrame, signal);
    } catch (e) {
      failure = e;
    }
    // Both popped before awaiting (innermost first), so nothing pushed in
    // between takes one of ours.
    const errors = (await Promise.all([
      device.popErrorScope(),
      device.popErrorScope(),
    ])).filter((e) => e !== null);
    if (errors.length) {
      throw new Error(
        `WebGPU error in this browser: ${errors[0]!.message.split("\n")[0]}`,
      );
    }
    if (failure !== undefined) throw failure;
    return out!;
  }

  async #generate(
    request: {
      prefix?: Int32Array;
      prompt?: Int32Array;
      batch?: number;
      steps?: number;
      sampler: "ancestral" | "cached" | "confidence";
      temperature: number;
      topP: number;
      rng: number;
    },
    onFrame: (f: BrowserFrame) => void,
    signal?: AbortSignal,
  ): Promise<{ tokens: Int32Array; forwardPasses: number }> {
    const { info, engine } = this;
    const L = info.length, B = request.batch ?? 1;
    const rng = prng(request.rng);
    const spec = info.spec as { kind: string; maskId: number };
    // The processes this bundle knows; any other contestant's generator
    // runs on the server only (the server says so in tfjsOnly first).
    const known = info.network === "causal"
      ? spec.kind === "autoregressive"
      : spec.kind === "masked-diffusion" ||
        spec.kind === "masked-language-model";
    if (!known) {
      throw new Error(
        `the ${info.kind} model generates on the server only: this page's engine runs the AR, D3PM and MLM samplers, not a ${spec.kind} process`,
      );
    }
    if (info.network === "causal") {
      return await this.#causal(request, onFrame, signal);
    }
    const process = spec.kind === "masked-language-model"
      ? maskedLanguageModel(spec as never)
      : maskedDiffusion(spec as never);
    let prompt = request.prompt;
    if (!prompt && request.prefix) {
      prompt = new Int32Array(L).fill(spec.maskId);
      prompt.set(request.prefix);
    }
    const rows = prompt && B > 1 ? repeat(prompt, B) : prompt;
    const options = {
      prng: rng,
      steps: request.steps,
      strategy: request.sampler === "confidence"
        ? "confidence" as const
        : "ancestral" as const,
      temperature: request.temperature,
      topP: request.topP,
      cache: request.sampler === "cached",
      batchSize: B,
      onStep: (s: BrowserFrame) => {
        if (signal?.aborted) throw new DOMException("stopped", "AbortError");
        onFrame(s);
      },
    };
    return rows
      ? await process.fillBlanks(engine, rows, options)
      : await process.sample(engine, { ...options, length: L });
  }

  async #causal(
    request: {
      prefix?: Int32Array;
      temperature: number;
      topP: number;
      rng: number;
    },
    onFrame: (f: BrowserFrame) => void,
    signal?: AbortSignal,
  ): Promise<{ tokens: Int32Array; forwardPasses: number }> {
    const { info, engine } = this;
    const L = info.length;
    const spec = info.spec as {
      start: number;
      padId?: number;
      suppress?: number[];
    };
    const suppress = [
      ...(spec.padId !== undefined ? [spec.padId] : []),
      ...(spec.suppress ?? []),
    ];
    const row = new Int32Array(L);
    row[0] = spec.start;
    const prefix = request.prefix ?? new Int32Array(0);
    row.set(prefix, 1);
    const given = 1 + prefix.length;
    const rng = prng(request.rng);
    const V = engine.config.vocabSize;
    let passes = 0;
    for (let i = given; i < L; i++) {
      if (signal?.aborted) throw new DOMException("stopped", "AbortError");
      // The whole row each time (one shape, one plan): a causal model's
      // logits at i − 1 do not see the positions after it.
      const logits = await engine.forwardIds(row, 1, L);
      passes++;
      const p = tokenProbabilities(logits.subarray((i - 1) * V, i * V), {
        temperature: request.temperature,
        topP: request.topP,
        suppress,
      });
      row[i] = sampleCategorical(p, rng);
      onFrame({
        step: i - given + 1,
        steps: L - given,
        tokens: row.slice(),
        forwardPasses: passes,
      });
    }
    return { tokens: row, forwardPasses: passes };
  }

  dispose(): void {
    this.engine.dispose();
  }
}

function repeat(row: Int32Array, n: number): Int32Array {
  const out = new Int32Array(row.length * n);
  for (let r = 0; r < n; r++) out.set(row, r * row.length);
  return out;
}
