/**
 * The backend benchmark: in one process, the reference training step (4
 * layers, d_model 256, 4 heads, MLP 1024, sequence 128, batch 8, vocabulary
 * 4096, tied embeddings, Adam) on each backend, and a 1024³ matrix product
 * through the blas backend against a direct `cblas_sgemm` call. Prints one
 * JSON line per measurement and a summary line with the ratios.
 *
 * The step is the project's own: `new Transformer(preset("tiny", …))` from
 * `@d3pm/transformer`, `causalLmLoss` from `@d3pm/autoregressive` and `AdamW` from `@d3pm/train`
 * (gradients by `tf.variableGrads`, then `opt.step`), as the experiment
 * trains it (without clipping).
 *
 *   deno task bench:backend [--steps 5] [--wasm-steps 3] [--cpu-steps 1]
 *                           [--warmup 2] [--backends blas,wasm,cpu]
 *
 * Each backend runs `--warmup` untimed steps first (JIT, Adam's moments, the
 * blas array pool; wasm 1, cpu none) and reports the median of the rest.
 *
 * `cpu` is tfjs's reference backend and takes minutes per step (its gather
 * gradient alone is ~100 s here), so it runs `--cpu-steps` (default 1) step,
 * which includes its warm-up: its tokens/s is an upper bound on its speed.
 */
import { randomFloats } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { readCommandLine, UsageError } from "@d3pm/cli";
import { BACKEND_LADDER, initBackend, loadCblas } from "@d3pm/backend";
import {
  type Cblas,
  CBLAS_NO_TRANS,
  CBLAS_ROW_MAJOR,
} from "@d3pm/backend/cblas";
import { parameterShapes, preset, Transformer } from "@d3pm/transformer";
import { AdamW } from "@d3pm/train";
import { causalLmLoss } from "@d3pm/autoregressive";

// The reference step: 4 layers, d 256, 4 heads, MLP 1024, T 128,
// V 4096, tied embeddings (the Transformer always ties them).
const MODEL = preset("tiny", {
  kind: "causal",
  vocabSize: 4096,
  contextLength: 128,
  nLayer: 4,
  dModel: 256,
  nHead: 4,
  dMlp: 1024,
  positions: "learned",
  dropout: 0,
});

const USAGE = {
  command: "deno task bench:backend",
  summary:
    `Times the reference training step (4 layers, d_model 256, seq 128, vocabulary
4096, Adam) on each backend and a 1024³ matrix product through blas against
cblas_sgemm. Prints one JSON line per measurement, then a summary line. The
cpu backend takes minutes per step.`,
  options: {
    steps: {
      kind: "integer",
      min: 1,
      default: 5,
      help: "timed steps on blas and others",
    },
    wasmSteps: {
      kind: "integer",
      min: 1,
      default: 3,
      help: "timed steps on wasm",
    },
    cpuSteps: {
      kind: "integer",
      min: 1,
      default: 1,
      help: "steps on cpu, warm-up included",
    },
    webgpuSteps: {
      kind: "integer",
      min: 1,
      default: 5,
      help: "timed steps on webgpu",
    },
    warmup: {
      kind: "integer",
      min: 0,
      default: 2,
      help: "untimed steps first; wasm at most 1, cpu none",
    },
    batch: { kind: "integer", min: 1, default: 8, help: "sequences per step" },
    backends: {
      kind: "string",
      value: "LIST",
      default: "blas,wasm,cpu",
      help: `comma-separated, of ${BACKEND_LADDER.join(", ")}`,
    },
  },
} as const;

const args = readCommandLine(Deno.args, USAGE, {
  usageExit: 2,
  check: ({ values }) => {
    for (const b of values.backends.split(",").filter((s) => s)) {
      if (!(BACKEND_LADDER as readonly string[]).includes(b)) {
        throw new UsageError(
          `Option --backends has ${b}; accepted: a comma-separated list of ${
            BACKEND_LADDER.join(", ")
          }`,
        );
      }
    }
  },
}).values;
const backends = String(args.backends).split(",").filter((s) => s);
const batch = Number(args.batch);
const seq = MODEL.contextLength;
const tokensPerStep = batch * seq;

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

// Parameters that take part in matrix products: all but the positions.
function matmulParams(): number {
  let n = 0;
  for (const [name, shape] of parameterShapes(MODEL)) {
    if (name !== "wpe.weight") n += shape.reduce((a, b) => a * b, 1);
  }
  return n;
}

// Model FLOPs per token: 6 × the parameters in matrix products (tied
// embedding included, positions not) + 12 · layers · seq · d_model for the
// attention scores and their weighted sum (PaLM, appendix B).
function modelFlopsPerToken(params: number): number {
  return 6 * params + 12 * MODEL.nLayer * seq * MODEL.dModel;
}

async function trainingStep(
  name: string,
): Promise<number | undefined> {
  const wanted = name === "cpu"
    ? Number(args.cpuSteps)
    : name === "wasm"
    ? Number(args.wasmSteps)
    : name === "webgpu"
    ? Number(args.webgpuSteps)
    : Number(args.steps);
  let info;
  try {
    info = await initBackend({
      prefer: name as "blas",
      fallback: false,
      log: () => {},
    });
  } catch (error) {
    emit({ backend: name, skipped: (error as Error).message });
    return undefined;
  }
  const model = new Transformer(MODEL, { seed: 1 });
  const opt = new AdamW(model.variables);
  const names = [...model.variables.keys()];
  const vars = [...model.variables.values()];
  const rand = randomFloats(7);
  // seq + 1 ids a row: positions 0..seq−1 predict ids 1..seq.
  const tokens = Int32Array.from(
    { length: batch * (seq + 1) },
    () => Math.floor(rand() * MODEL.vocabSize),
  );
  const step = async (): Promise<number> => {
    const { value, grads } = tf.variableGrads(
      () => causalLmLoss(model, { tokens, batchSize: batch, length: seq + 1 }),
      vars,
    );
    opt.step(new Map(names.map((n, i) => [n, grads[vars[i].name]])), 3e-4);
    // Reading the loss waits for the step on asynchronous backends (webgpu).
    const loss = (await value.data())[0];
    tf.dispose([value, ...Object.values(grads)]);
    return loss;
  };
  // cpu is too slow to spend a step on warm-up, wasm spends one (~25 s).
  const warmup = name === "cpu"
    ? 0
    : name === "wasm"
    ? Math.min(1, Number(args.warmup))
    : Number(args.warmup);
  const times: number[] = [];
  let loss = NaN;
  for (let i = 0; i < warmup + wanted; i++) {
    const t0 = performance.now();
    loss = await step();
    const dt = performance.now() - t0;
    if (i >= warmup) times.push(dt);
  }
  const stepMs = median(times);
  const tokensPerS = tokensPerStep / (stepMs / 1000);
  emit({
    backend: name,
    reason: info.reason,
    steps: times.length,
    warmup_steps: warmup,
    step_ms_median: round(stepMs, 1),
    step_ms: times.map((t) => round(t, 1)),
    tokens_per_s: round(tokensPerS, 1),
    loss: round(loss, 4),
    matmul_params: matmulParams(),
    flops_per_token: modelFlopsPerToken(matmulParams()),
  });
  opt.dispose();
  model.dispose();
  return tokensPerS;
}

/**
 * GFLOP/s of an n³ product by a direct `cblas_sgemm` call and through the
 * blas backend's `tf.matMul`, alternating call by call so that machine noise
 * hits both alike; medians of `reps`.
 */
async function matmulGflops(
  cblas: Cblas,
  n: number,
  reps: number,
): Promise<{ sgemm: number; matmul: number }> {
  await initBackend({ prefer: "blas", fallback: false, log: () => {} });
  const rand = randomFloats(3);
  const av = Float32Array.from({ length: n * n }, () => rand() - 0.5);
  const bv = Float32Array.from({ length: n * n }, () => rand() - 0.5);
  const cv = new Float32Array(n * n);
  const a = tf.tensor2d(av, [n, n]), b = tf.tensor2d(bv, [n, n]);
  const direct: number[] = [], backend: number[] = [];
  for (let i = 0; i < reps + 2; i++) {
    let t0 = performance.now();
    cblas.sgemm(
      CBLAS_ROW_MAJOR,
      CBLAS_NO_TRANS,
      CBLAS_NO_TRANS,
      n,
      n,
      n,
      1,
      av,
      n,
      bv,
      n,
      0,
      cv,
      n,
    );
    const ds = performance.now() - t0;
    // blas kernels run synchronously inside the op call, so this times the
    // whole product; not reading it back lets the pool recycle its array.
    t0 = performance.now();
    const c = tf.matMul(a, b);
    const dm = performance.now() - t0;
    c.dispose();
    if (i >= 2) {
      direct.push(ds);
      backend.push(dm);
    }
  }
  tf.dispose([a, b]);
  const gflops = (ms: number) => (2 * n ** 3) / (ms / 1000) / 1e9;
  return { sgemm: gflops(median(direct)), matmul: gflops(median(backend)) };
}

let sgemm = NaN, matmul = NaN;
async function matmulComparison(): Promise<void> {
  let cblas: Cblas | undefined;
  try {
    cblas = loadCblas();
  } catch (error) {
    emit({ sgemm: "skipped", reason: (error as Error).message });
    return;
  }
  ({ sgemm, matmul } = await matmulGflops(cblas, 1024, 15));
  emit({
    matmul: "1024x1024x1024",
    cblas: cblas.description,
    sgemm_gflops: round(sgemm, 1),
    matmul_gflops: round(matmul, 1),
  });
}

// The product comparison runs right after the blas step, so that MFU's
// denominator is measured under the same machine load as its numerator.
const tokensPerS: Record<string, number | undefined> = {};
for (const name of backends) {
  tokensPerS[name] = await trainingStep(name);
  if (name === "blas") await matmulComparison();
}
if (!backends.includes("blas")) await matmulComparison();

const flopsPerToken = modelFlopsPerToken(matmulParams());
const ratio = (a?: number, b?: number) =>
  a !== undefined && b !== undefined ? round(a / b, 2) : null;
const blasTps = tokensPerS.blas;
emit({
  blas_tokens_per_s: blasTps !== undefined ? round(blasTps, 1) : null,
  wasm_tokens_per_s: tokensPerS.wasm !== undefined
    ? round(tokensPerS.wasm, 1)
    : null,
  cpu_tokens_per_s: tokensPerS.cpu !== undefined
    ? round(tokensPerS.cpu, 2)
    : null,
  ...(tokensPerS.webgpu !== undefined
    ? { webgpu_tokens_per_s: round(tokensPerS.webgpu, 1) }
    : {}),
  blas_vs_wasm: ratio(blasTps, tokensPerS.wasm),
  blas_vs_cpu: ratio(blasTps, tokensPerS.cpu),
  sgemm_gflops: round(sgemm, 1),
  matmul_gflops: round(matmul, 1),
  matmul_vs_sgemm: round(matmul / sgemm, 3),
  mfu: blasTps !== undefined
    ? round((blasTps * flopsPerToken) / (sgemm * 1e9), 3)
    : null,
  model_gflops_per_token: round(flopsPerToken / 1e9, 5),
});
