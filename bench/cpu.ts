/**
 * The CPU benchmark (issue 23, phase A): in one process window, a training
 * step (forward, backward, clipping, AdamW) at two shapes by
 *
 * - `tfjs-blas`: the project's current path, as bench:backend builds it
 *   (`Transformer` + `causalLmLoss` + `AdamW` on the `blas` backend, no
 *   clipping);
 * - `cpu-engine`: the CPU engine (`CpuTransformer`: the WebGPU engine's
 *   plan run on the @d3pm/cpu kernels, global-norm clipping included) —
 *   the step `--engine cpu` trains with; `cpu-engine-1t` on one thread;
 *   at the tiny shape `cpu-engine-d3pm`, the tiny preset's D3PM step
 *   (bidirectional, rotary, ALiBi neighbour heads at slope 16, MDLM weights);
 * - `cpu-kernels`: the @d3pm/cpu kernels called in the WebGPU plan's order
 *   over one arena (bench/_cpu_step.ts) — every kernel the CPU engine's step
 *   will run, but not the engine: a rough lower bound of its step; products
 *   split over the kernel threads. `cpu-kernels-blas`: the same with each
 *   product one call on OpenBLAS's own threads; `cpu-kernels-1t`: one
 *   thread;
 * - `pytorch`: PyTorch eager, a nanoGPT-style GPT of the same shape
 *   (bench/peers/torch_gpt.py) in a subprocess with the same thread count,
 *   when `python3 -c "import torch"` works (the interpreter: D3PM_PEER_PYTHON,
 *   else .venv-peers/bin/python3, else python3); a skip line otherwise.
 *
 * Shapes: `tiny` (the tiny preset: 4 layers, d 128, 4 heads, MLP 512,
 * T 128, batch 4, V 4096) and `reference` (bench:backend's: d 256, MLP 1024,
 * batch 8). The machine is shared, so contestants alternate: each round
 * runs `--steps` steps of each, in a rotating order, after `--warmup`
 * steps each; medians over all rounds. Also: the kernels one by one (median
 * ms per step), a 1024³ sgemm (MFU's denominator, measured in the same
 * window), and tight JS against the WebAssembly SIMD kernels on one thread.
 * Prints JSON lines; the last line of each shape holds the ratios.
 *
 *   deno task bench:cpu [--shapes tiny,reference] [--rounds 5] [--steps 3]
 *                       [--warmup 2] [--threads 2] [--peer auto|off]
 *                       [--js-vs-wasm on|off]
 */
import * as tf from "@tensorflow/tfjs";
import { prng } from "@d3pm/core";
import { initBackend } from "@d3pm/backend";
import {
  type Cblas,
  CBLAS_NO_TRANS,
  CBLAS_ROW_MAJOR,
  loadCblas,
} from "@d3pm/backend/cblas";
import {
  adamw,
  attentionForward,
  type CpuKernels,
  CpuTransformer,
  createCpuKernels,
  crossEntropy,
  geluForward,
  layernormForward,
} from "@d3pm/cpu";
import {
  type ModelConfig,
  parameterShapes,
  preset,
  Transformer,
} from "@d3pm/transformer";
import { AdamW } from "@d3pm/train";
import { causalLmLoss } from "@d3pm/autoregressive";
import { readCommandLine, UsageError } from "@d3pm/cli";
import { planCpuStep, stepWords, type Timings } from "./_cpu_step.ts";
import * as js from "./_js_kernels.ts";

interface Shape {
  name: string;
  config: ModelConfig;
  batch: number;
}

const SHAPES: Shape[] = [
  { name: "tiny", batch: 4, config: model(128, 512) },
  { name: "reference", batch: 8, config: model(256, 1024) },
];

function model(d: number, m: number): ModelConfig {
  return preset("tiny", {
    kind: "causal",
    vocabSize: 4096,
    contextLength: 128,
    nLayer: 4,
    dModel: d,
    nHead: 4,
    dMlp: m,
    positions: "learned",
    dropout: 0,
  });
}

const USAGE = {
  command: "deno task bench:cpu",
  summary:
    `Times a training step at the tiny and the reference shape by the tfjs blas
path, the @d3pm/cpu kernels in the plan's order (a lower bound of the CPU
engine's step) and PyTorch eager (when importable), alternating round by round
in one process window; the kernels one by one; a 1024³ sgemm; tight JS against
the WebAssembly SIMD kernels. Prints JSON lines.`,
  options: {
    shapes: {
      kind: "string",
      value: "LIST",
      default: "tiny,reference",
      help: "comma-separated, of tiny, reference",
    },
    rounds: {
      kind: "integer",
      min: 1,
      default: 5,
      help: "rounds of alternation",
    },
    steps: {
      kind: "integer",
      min: 1,
      default: 3,
      help: "timed steps per contestant per round",
    },
    warmup: {
      kind: "integer",
      min: 0,
      default: 2,
      help: "untimed steps per contestant first",
    },
    threads: {
      kind: "integer",
      min: 1,
      default: navigator.hardwareConcurrency,
      help:
        "threads of every contestant (the cores); the kernels and PyTorch also run on 1",
    },
    peer: {
      kind: "choice",
      choices: ["auto", "off"],
      default: "auto",
      help: "run the PyTorch peer when torch imports",
    },
    jsVsWasm: {
      kind: "choice",
      choices: ["on", "off"],
      default: "on",
      help: "time tight JS against the WebAssembly kernels",
    },
  },
} as const;

const line = readCommandLine(Deno.args, USAGE, {
  usageExit: 2,
  check: ({ values }) => {
    for (const s of values.shapes.split(",").filter((x) => x)) {
      if (!SHAPES.some((x) => x.name === s)) {
        throw new UsageError(
          `Option --shapes has ${s}; accepted: a comma-separated list of tiny, reference`,
        );
      }
    }
  },
}).values;
const args = {
  shapes: line.shapes.split(",").filter((s) => s),
  rounds: line.rounds,
  steps: line.steps,
  warmup: line.warmup,
  threads: line.threads,
  peer: line.peer === "auto",
  jsVsWasm: line.jsVsWasm === "on",
};

function emit(record: Record<string, unknown>): void {
  console.log(JSON.stringify(record));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// Model FLOPs per token: 6 × the parameters in matrix products (tied
// embedding included, positions not) + 12 · layers · T · d for attention
// (PaLM, appendix B), as bench:backend.
function flopsPerToken(c: ModelConfig): number {
  let n = 0;
  for (const [name, shape] of parameterShapes(c)) {
    if (name !== "wpe.weight") n += shape.reduce((a, b) => a * b, 1);
  }
  return 6 * n + 12 * c.nLayer * c.contextLength * c.dModel;
}

/** GFLOP/s of a 1024³ cblas_sgemm (median of 15 after 2). */
function sgemmGflops(cblas: Cblas): number {
  const n = 1024, rand = prng(3);
  const a = Float32Array.from({ length: n * n }, () => rand.next() - 0.5);
  const b = Float32Array.from({ length: n * n }, () => rand.next() - 0.5);
  const c = new Float32Array(n * n);
  const times: number[] = [];
  for (let i = 0; i < 17; i++) {
    const t0 = performance.now();
    cblas.sgemm(
      CBLAS_ROW_MAJOR,
      CBLAS_NO_TRANS,
      CBLAS_NO_TRANS,
      n,
      n,
      n,
      1,
      a,
      n,
      b,
      n,
      0,
      c,
      n,
    );
    if (i >= 2) times.push(performance.now() - t0);
  }
  return (2 * n ** 3) / (median(times) / 1000) / 1e9;
}

// The untimed pause before each contestant's turn.
const PAUSE_MS = 300;

/** A contestant: runs one timed training step, returns ms and the loss. */
interface Contestant {
  name: string;
  /** OpenBLAS's own thread count for its turn (the process shares one). */
  blasThreads?: number;
  step(): Promise<{ ms: number; loss: number }>;
  kernels?: Timings[];
  close(): Promise<void> | void;
}

async function tfjsContestant(s: Shape): Promise<Contestant> {
  await initBackend({ prefer: "blas", fallback: false, log: () => {} });
  const c = s.config, seq = c.contextLength;
  const m = new Transformer(c, { seed: 1 });
  const opt = new AdamW(m.variables);
  const names = [...m.variables.keys()];
  const vars = [...m.variables.values()];
  const rand = prng(7);
  const tokens = Int32Array.from(
    { length: s.batch * (seq + 1) },
    () => Math.floor(rand.next() * c.vocabSize),
  );
  return {
    name: "tfjs-blas",
    blasThreads: args.threads,
    async step() {
      const t0 = performance.now();
      const { value, grads } = tf.variableGrads(
        () => causalLmLoss(m, { tokens, batchSize: s.batch, length: seq + 1 }),
        vars,
      );
      opt.step(new Map(names.map((n, i) => [n, grads[vars[i].name]])), 3e-4);
      const loss = (await value.data())[0];
      tf.dispose([value, ...Object.values(grads)]);
      return { ms: performance.now() - t0, loss };
    },
    close() {
      opt.dispose();
      m.dispose();
    },
  };
}

async function kernelContestant(
  s: Shape,
  threads: number,
  products: "split" | "blas",
  name: string,
): Promise<Contestant> {
  const c = s.config, T = c.contextLength, n = s.batch * T;
  const k = await createCpuKernels({
    words: stepWords(c, s.batch, T),
    threads,
    products,
  });
  const step = planCpuStep(k, c, s.batch, T);
  // The tfjs model's initial weights.
  tf.setBackend("cpu");
  const init = new Transformer(c, { seed: 1 });
  for (const [p, v] of init.variables) {
    step.params.get(p)!.value.set(v.dataSync());
  }
  init.dispose();
  const rand = prng(7);
  const tokens = Int32Array.from(
    { length: s.batch * (T + 1) },
    () => Math.floor(rand.next() * c.vocabSize),
  );
  const inputs = new Int32Array(n), targets = new Int32Array(n);
  for (let b = 0; b < s.batch; b++) {
    inputs.set(tokens.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    targets.set(tokens.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  const kernels: Timings[] = [];
  return {
    name,
    // Split products call a single-threaded CBLAS on each kernel thread.
    blasThreads: products === "split" || threads === 1 ? 1 : threads,
    kernels,
    step() {
      const timings: Timings = new Map();
      const t0 = performance.now();
      const loss = step.step(inputs, targets, 3e-4, timings);
      const ms = performance.now() - t0;
      kernels.push(timings);
      return Promise.resolve({ ms, loss });
    },
    close: () => k.dispose(),
  };
}

// The CPU engine (CpuTransformer: the WebGPU engine's plan on the
// kernels): the bench's causal model, or — `d3pm` — the tiny preset's
// denoiser (bidirectional, rotary, ALiBi neighbour heads at slope 16, the
// mask id out of the softmax) on an MDLM batch masking about half the block.
async function engineContestant(
  s: Shape,
  threads: number,
  name: string,
  d3pm = false,
): Promise<Contestant> {
  const T = s.config.contextLength, n = s.batch * T, V = s.config.vocabSize;
  const config: ModelConfig = d3pm
    ? {
      ...s.config,
      kind: "bidirectional",
      positions: "rotary",
      alibi: 16,
      alibiMode: "neighbours",
    }
    : s.config;
  const engine = await CpuTransformer.create(config, {
    batchSize: s.batch,
    length: T,
    seed: 1,
    threads,
    ...(d3pm ? { excludeToken: V - 1 } : {}),
  });
  const rand = prng(7);
  const tokens = Int32Array.from(
    { length: s.batch * (T + 1) },
    () => Math.floor(rand.next() * (V - 1)),
  );
  const inputs = new Int32Array(n), targets = new Int32Array(n);
  const weights = new Float32Array(n);
  for (let b = 0; b < s.batch; b++) {
    for (let i = 0; i < T; i++) {
      const x = tokens[b * (T + 1) + i], j = b * T + i;
      if (d3pm) {
        const masked = rand.next() < 0.5;
        inputs[j] = masked ? V - 1 : x;
        targets[j] = masked ? x : -1;
        weights[j] = masked ? 2 / n : 0;
      } else {
        inputs[j] = x;
        targets[j] = tokens[b * (T + 1) + i + 1];
        weights[j] = 1 / n;
      }
    }
  }
  const batch = { inputs, targets, weights };
  return {
    name,
    blasThreads: 1,
    async step() {
      const t0 = performance.now();
      engine.step(batch, 3e-4);
      const { loss } = await engine.readLoss();
      return { ms: performance.now() - t0, loss };
    },
    close: () => engine.dispose(),
  };
}

// Lines of a subprocess's stdout, one at a time.
class Lines {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  constructor(stream: ReadableStream<Uint8Array>) {
    // Typed through TransformStream: the DOM lib, checked in the same
    // program, types TextDecoderStream's writable side as BufferSource.
    const decoder: TransformStream<Uint8Array, string> =
      new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>;
    this.#reader = stream.pipeThrough(decoder).getReader();
  }
  async next(): Promise<string | null> {
    for (;;) {
      const i = this.#buffer.indexOf("\n");
      if (i >= 0) {
        const line = this.#buffer.slice(0, i);
        this.#buffer = this.#buffer.slice(i + 1);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) return null;
      this.#buffer += value;
    }
  }
}

async function peerPython(): Promise<{ python: string } | { skipped: string }> {
  const candidates = [
    Deno.env.get("D3PM_PEER_PYTHON"),
    new URL("../.venv-peers/bin/python3", import.meta.url).pathname,
    "python3",
  ].filter((x): x is string => !!x);
  const reasons: string[] = [];
  for (const python of candidates) {
    try {
      const r = await new Deno.Command(python, {
        args: ["-c", "import torch"],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (r.success) return { python };
      reasons.push(
        `${python}: ${
          new TextDecoder().decode(r.stderr).trim().split("\n").at(-1)
        }`,
      );
    } catch (e) {
      reasons.push(`${python}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  return { skipped: `no python with torch (${reasons.join("; ")})` };
}

async function torchContestant(
  s: Shape,
  python: string,
  threads: number,
  name: string,
): Promise<Contestant> {
  const c = s.config;
  const child = new Deno.Command(python, {
    args: [
      "-u",
      new URL("./peers/torch_gpt.py", import.meta.url).pathname,
      ...Object.entries({
        layers: c.nLayer,
        d: c.dModel,
        heads: c.nHead,
        mlp: c.dMlp,
        T: c.contextLength,
        batch: s.batch,
        vocab: c.vocabSize,
        threads,
      }).flatMap(([k, v]) => [`--${k}`, String(v)]),
    ],
    env: { OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) },
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = new Lines(child.stdout);
  const writer = child.stdin.getWriter();
  const read = async () => {
    const line = await lines.next();
    if (line === null) throw new Error("the PyTorch peer exited");
    return JSON.parse(line);
  };
  const ready = await read();
  emit({ shape: s.name, peer: name, ...ready });
  return {
    name,
    async step() {
      await writer.write(new TextEncoder().encode("steps 1\n"));
      const r = await read();
      return { ms: r.step_ms[0], loss: r.loss };
    },
    async close() {
      await writer.write(new TextEncoder().encode("quit\n"));
      await writer.close();
      await child.status;
    },
  };
}

async function benchShape(
  s: Shape,
  cblas: Cblas,
  python: string | null,
): Promise<void> {
  const threads = args.threads;
  const contestants: Contestant[] = [
    await tfjsContestant(s),
    await engineContestant(s, threads, "cpu-engine"),
    await kernelContestant(s, threads, "split", "cpu-kernels"),
  ];
  if (s.name === "tiny") {
    contestants.push(
      await engineContestant(s, threads, "cpu-engine-d3pm", true),
    );
  }
  if (threads > 1) {
    contestants.push(
      await engineContestant(s, 1, "cpu-engine-1t"),
      await kernelContestant(s, threads, "blas", "cpu-kernels-blas"),
      await kernelContestant(s, 1, "split", "cpu-kernels-1t"),
    );
  }
  if (python) {
    contestants.push(await torchContestant(s, python, threads, "pytorch"));
    if (threads > 1) {
      contestants.push(await torchContestant(s, python, 1, "pytorch-1t"));
    }
  }
  setBlasThreads?.(threads);
  const gflops = sgemmGflops(cblas);
  const times = new Map<string, number[]>(contestants.map((c) => [c.name, []]));
  const losses = new Map<string, number>();
  try {
    for (const c of contestants) {
      if (c.name === "tfjs-blas") {
        await initBackend({ prefer: "blas", fallback: false, log: () => {} });
      }
      if (c.blasThreads !== undefined) setBlasThreads?.(c.blasThreads);
      for (let i = 0; i < args.warmup; i++) await c.step();
      c.kernels?.splice(0);
    }
    for (let r = 0; r < args.rounds; r++) {
      for (let j = 0; j < contestants.length; j++) {
        const c = contestants[(j + r) % contestants.length];
        // Idle threads of the previous contestant (OpenBLAS's, OpenMP's)
        // spin a while before they sleep: let them, untimed.
        await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
        if (c.name === "tfjs-blas") {
          await initBackend({ prefer: "blas", fallback: false, log: () => {} });
        }
        if (c.blasThreads !== undefined) setBlasThreads?.(c.blasThreads);
        for (let i = 0; i < args.steps; i++) {
          const { ms, loss } = await c.step();
          times.get(c.name)!.push(ms);
          losses.set(c.name, loss);
        }
      }
    }
  } finally {
    for (const c of contestants) await c.close();
  }
  const tokens = s.batch * s.config.contextLength;
  const fpt = flopsPerToken(s.config);
  const tps = new Map<string, number>();
  for (const c of contestants) {
    const ms = median(times.get(c.name)!);
    tps.set(c.name, tokens / (ms / 1000));
    emit({
      shape: s.name,
      contestant: c.name,
      ...(c.name.startsWith("cpu-kernels")
        ? {
          note:
            "sum of the kernels in the plan's order: a lower bound of the CPU engine's step",
        }
        : {}),
      threads: c.name.endsWith("-1t") ? 1 : threads,
      ...(c.name.startsWith("cpu-engine")
        ? {
          note: c.name === "cpu-engine-d3pm"
            ? "CpuTransformer: the tiny preset's D3PM step (bidirectional, rotary, ALiBi neighbours 16, MDLM weights)"
            : "CpuTransformer: the WebGPU engine's plan on the CPU kernels, clipping included",
        }
        : {}),
      ...(c.name.startsWith("cpu-kernels")
        ? {
          products: c.name === "cpu-kernels-blas"
            ? "one call, OpenBLAS's threads"
            : "split over the kernel threads",
        }
        : {}),
      steps: times.get(c.name)!.length,
      step_ms_median: round(ms, 2),
      step_ms: times.get(c.name)!.map((t) => round(t, 1)),
      tokens_per_s: round(tps.get(c.name)!, 1),
      mfu: round((tps.get(c.name)! * fpt) / (gflops * 1e9), 3),
      loss: round(losses.get(c.name)!, 4),
    });
    if (c.kernels) {
      const names = new Set(c.kernels.flatMap((t) => [...t.keys()]));
      const rows = [...names].map((k) => ({
        kernel: k,
        ms: median(c.kernels!.map((t) => t.get(k) ?? 0)),
      })).sort((a, b) => b.ms - a.ms);
      const sum = rows.reduce((t, r) => t + r.ms, 0);
      for (const r of rows) {
        emit({
          shape: s.name,
          contestant: c.name,
          kernel: r.kernel,
          ms_per_step: round(r.ms, 3),
          share: round(r.ms / sum, 3),
        });
      }
      emit({
        shape: s.name,
        contestant: c.name,
        kernels_sum_ms: round(sum, 2),
      });
    }
  }
  const ratio = (a: string, b: string) =>
    tps.has(a) && tps.has(b) ? round(tps.get(a)! / tps.get(b)!, 2) : null;
  emit({
    shape: s.name,
    tokens_per_step: tokens,
    model_gflops_per_token: round(fpt / 1e9, 5),
    sgemm_gflops: round(gflops, 1),
    cpu_engine_vs_pytorch: ratio("cpu-engine", "pytorch"),
    cpu_engine_vs_tfjs_blas: ratio("cpu-engine", "tfjs-blas"),
    cpu_engine_mfu: tps.has("cpu-engine")
      ? round((tps.get("cpu-engine")! * fpt) / (gflops * 1e9), 3)
      : null,
    cpu_engine_vs_kernels: ratio("cpu-engine", "cpu-kernels"),
    cpu_engine_1t_vs_pytorch_1t: ratio("cpu-engine-1t", "pytorch-1t"),
    cpu_engine_d3pm_vs_causal: ratio("cpu-engine-d3pm", "cpu-engine"),
    cpu_kernels_vs_pytorch: ratio("cpu-kernels", "pytorch"),
    cpu_kernels_vs_tfjs_blas: ratio("cpu-kernels", "tfjs-blas"),
    cpu_kernels_split_vs_blas: ratio("cpu-kernels", "cpu-kernels-blas"),
    cpu_kernels_vs_1t: ratio("cpu-kernels", "cpu-kernels-1t"),
    pytorch_vs_tfjs_blas: ratio("pytorch", "tfjs-blas"),
    pytorch_2t_vs_1t: ratio("pytorch", "pytorch-1t"),
  });
}

// Tight JS against the WebAssembly SIMD kernels, one thread each, at the
// reference step's sizes, alternating call by call.
async function jsVsWasm(): Promise<void> {
  const N = 1024, d = 256, m = 1024, V = 4096, R = 128, T = 128, B = 8;
  const BH = 4 * B;
  const P = 4_500_000;
  const k: CpuKernels = await createCpuKernels({
    words: 6 * N * d + 2 * N * m + R * V + BH * T * (T + 1) + 4 * P + 65536,
    threads: 1,
  });
  try {
    const rand = prng(11);
    const fill = (v: Float32Array, scale: number) => {
      for (let i = 0; i < v.length; i++) v[i] = (rand.next() - 0.5) * scale;
      return v;
    };
    const x = fill(k.floats(N * d), 2), y = k.floats(N * d);
    const w = fill(k.floats(d), 1), b = fill(k.floats(d), 1);
    const mean = k.floats(N), rstd = k.floats(N);
    const pre = fill(k.floats(N * m), 6), act = k.floats(N * m);
    const logits = k.floats(R * V),
      logitsSrc = fill(new Float32Array(R * V), 16);
    const targets = k.ints(R),
      weights = k.floats(R).fill(1),
      loss = k.floats(R);
    targets.forEach((_, i) => (targets[i] = (i * 31) % V));
    const scores = k.floats(BH * T * T), lse = k.floats(BH * T);
    const qkv = fill(k.floats(B * T * 3 * d), 2), att = k.floats(B * T * d);
    const p = fill(k.floats(P), 1), g = fill(k.floats(P), 1);
    const mm = k.floats(P), vv = k.floats(P);
    const cases: [string, () => void, () => void][] = [
      [
        "layernorm_forward 1024×256",
        () => js.layernormForward(x, y, w, b, mean, rstd, N, d),
        () =>
          layernormForward(k, {
            rows: N,
            d,
            x,
            y,
            weight: w,
            bias: b,
            mean,
            rstd,
          }),
      ],
      [
        "gelu_forward 1024×1024",
        () => js.geluForward(pre, act),
        () => geluForward(k, { rows: N, cols: m, x: pre, y: act }),
      ],
      [
        "attention_forward (causal, B 8, H 4, T 128, hd 64; products by cblas on both sides)",
        () =>
          js.attentionForward(k.cblas, qkv, att, lse, scores, {
            batch: B,
            length: T,
            heads: 4,
            headDim: d / 4,
          }),
        () =>
          attentionForward(k, {
            batch: B,
            length: T,
            heads: 4,
            headDim: d / 4,
            causal: true,
            qkv,
            y: att,
            lse,
            probs: scores,
          }),
      ],
      [
        "cross_entropy 128×4096",
        () => {
          logits.set(logitsSrc);
          js.crossEntropy(logits, targets, weights, loss, R, V);
        },
        () => {
          logits.set(logitsSrc);
          crossEntropy(k, {
            rows: R,
            vocab: V,
            logits,
            targets,
            weights,
            loss,
          });
        },
      ],
      [
        "adamw 4.5M",
        () =>
          js.adamw(p, g, mm, vv, {
            decayEnd: P / 2,
            lr: 1e-4,
            b1: 0.9,
            b2: 0.95,
            eps: 1e-8,
            wd: 0.1,
            c1: 0.1,
            c2: 0.05,
            scale: 1,
          }),
        () =>
          adamw(k, {
            params: p,
            grads: g,
            m: mm,
            v: vv,
            decayEnd: P / 2,
            lr: 1e-4,
            step: 1,
          }),
      ],
    ];
    for (const [name, jsFn, wasmFn] of cases) {
      const tj: number[] = [], tw: number[] = [];
      for (let i = 0; i < 13; i++) {
        let t0 = performance.now();
        jsFn();
        const a = performance.now() - t0;
        t0 = performance.now();
        wasmFn();
        const bw = performance.now() - t0;
        if (i >= 3) {
          tj.push(a);
          tw.push(bw);
        }
      }
      emit({
        js_vs_wasm: name,
        js_ms: round(median(tj), 3),
        wasm_ms: round(median(tw), 3),
        wasm_speedup: round(median(tj) / median(tw), 2),
      });
    }
  } finally {
    k.dispose();
  }
}

const cblas = loadCblas();
// OpenBLAS's thread count is one per process: set before each turn.
let setBlasThreads: ((n: number) => void) | null = null;
try {
  const lib = Deno.dlopen(cblas.library, {
    openblas_set_num_threads: { parameters: ["i32"], result: "void" },
  });
  setBlasThreads = (n) => lib.symbols.openblas_set_num_threads(n);
} catch {
  // Not OpenBLAS: every contestant runs with the library's own setting.
}
emit({
  bench: "cpu",
  cores: navigator.hardwareConcurrency,
  threads: args.threads,
  cblas: cblas.description,
  deno: Deno.version.deno,
  v8: Deno.version.v8,
});
let python: string | null = null;
if (args.peer) {
  const found = await peerPython();
  if ("python" in found) python = found.python;
  else emit({ peer: "pytorch", skipped: found.skipped });
} else emit({ peer: "pytorch", skipped: "--peer off" });
if (args.jsVsWasm) await jsVsWasm();
for (const s of SHAPES.filter((x) => args.shapes.includes(x.name))) {
  await benchShape(s, cblas, python);
}
cblas.close();
