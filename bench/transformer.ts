/**
 * AR decoding speed with and without the KV cache, side by side in one
 * process: greedy generation of `--tokens` tokens (default 256) one at a
 * time, batch `--batch` (default 4), `tiny` preset with the context widened
 * to the generated length. Prints one JSON line on stdout; progress goes to
 * stderr.
 *
 *   deno task bench:transformer [--batch 4] [--tokens 256] [--rounds 3]
 *     [--stride auto|N] [--backend auto|blas|wasm|cpu] [--preset tiny]
 *
 * Cached: each step feeds one token and reads the argmax back. Recompute:
 * each step runs the whole prefix through `forward` (logits at the last
 * position only, as a sampler without a cache would). Recompute at every
 * length costs O(T²) — minutes on slow backends — so it is timed at the
 * midpoints of windows of `stride` lengths (auto: as fine as ~10 s per round
 * allows; cost is close to linear in length, so this estimates the mean over
 * all lengths). Each figure is the median over `--rounds` rounds after a
 * warm-up.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import {
  parameterCount,
  preset,
  PRESET_NAMES,
  type PresetName,
  Transformer,
} from "@d3pm/transformer";
import { readCommandLine, UsageError } from "@d3pm/cli";

const BACKENDS = [
  "auto",
  "tensorflow",
  "webgpu",
  "blas",
  "wasm",
  "cpu",
] as const;
const USAGE = {
  command: "deno task bench:transformer",
  summary:
    `AR decoding speed with and without the KV cache: greedy generation, one
token at a time, on a preset with the context widened to the generated length.
Prints one JSON line on stdout; progress goes to stderr.`,
  options: {
    batch: {
      kind: "integer",
      min: 1,
      default: 4,
      help: "sequences generated together",
    },
    tokens: { kind: "integer", min: 1, default: 256, help: "tokens generated" },
    rounds: {
      kind: "integer",
      min: 1,
      default: 3,
      help: "timed rounds, median reported",
    },
    stride: {
      kind: "string",
      value: "auto|N",
      default: "auto",
      help:
        "prefix lengths per timed window of recompute (auto: ~10 s a round)",
    },
    backend: {
      kind: "choice",
      choices: BACKENDS,
      default: "auto",
      value: "NAME",
      help: "tfjs backend",
    },
    preset: {
      kind: "choice",
      choices: PRESET_NAMES,
      default: "tiny",
      value: "NAME",
      help: "model preset",
    },
  },
} as const;

const parsed = readCommandLine(Deno.args, USAGE, {
  usageExit: 2,
  check: ({ values }) => {
    const n = Number(values.stride);
    if (values.stride !== "auto" && !(Number.isInteger(n) && n >= 1)) {
      throw new UsageError(
        `Option --stride must be auto or a positive integer, got ${
          JSON.stringify(values.stride)
        }`,
      );
    }
  },
}).values;
const args = {
  ...parsed,
  stride: parsed.stride === "auto" ? "auto" as const : Number(parsed.stride),
};
const { batch, tokens, rounds } = args;

const log = (msg: string) => console.error(`[bench:transformer] ${msg}`);

// The project's backend ladder when it works; tfjs's default otherwise.
async function chooseBackend(prefer: string): Promise<string> {
  try {
    const { initBackend } = await import("@d3pm/backend");
    const info = await initBackend({
      prefer: prefer as "auto" | "blas" | "wasm" | "cpu",
    });
    log(`backend ${info.name}: ${info.reason}`);
    return info.name;
  } catch (e) {
    if (prefer !== "auto") await tf.setBackend(prefer);
    await tf.ready();
    log(
      `@d3pm/backend unavailable (${
        e instanceof Error ? e.message.split("\n")[0] : e
      }); using tfjs ${tf.getBackend()}`,
    );
    return tf.getBackend();
  }
}

const backend = await chooseBackend(args.backend);
const config = preset(args.preset as PresetName, {
  contextLength: Math.max(
    tokens,
    preset(args.preset as PresetName).contextLength,
  ),
});
const model = new Transformer(config, { seed: 0 });
log(
  `${args.preset}: ${
    parameterCount(config)
  } parameters, batch ${batch}, ${tokens} tokens`,
);

async function argmaxLast(logits: tf.Tensor3D): Promise<Int32Array> {
  const next = tf.tidy(() => {
    const last = tf.slice(logits, [0, logits.shape[1] - 1, 0], [-1, 1, -1]);
    return tf.argMax(tf.reshape(last, [batch, config.vocabSize]), 1);
  });
  const values = await next.data() as Int32Array;
  next.dispose();
  return values;
}

// Greedy generation with the cache: `steps` decode calls, one token each.
// Returns the ms per token and the sequence [batch][steps + 1].
async function generateCached(
  steps: number,
): Promise<{ ms: number; seq: number[][] }> {
  const seq = Array.from(
    { length: batch },
    (_, b) => [(b * 17 + 1) % config.vocabSize],
  );
  const cache = model.createCache(batch);
  const start = performance.now();
  for (let i = 0; i < steps; i++) {
    const input = tf.tensor2d(seq.map((row) => row[i]), [batch, 1], "int32");
    const logits = model.decode(input, cache);
    const next = await argmaxLast(logits);
    tf.dispose([input, logits]);
    for (let b = 0; b < batch; b++) seq[b].push(next[b]);
  }
  const ms = (performance.now() - start) / steps;
  cache.dispose();
  return { ms, seq };
}

// One recompute step: the prefix of `length` tokens through forward().
async function recomputeStep(
  seq: number[][],
  length: number,
): Promise<{ ms: number; next: Int32Array }> {
  const input = tf.tensor2d(
    seq.map((row) => row.slice(0, length)),
    [batch, length],
    "int32",
  );
  const start = performance.now();
  const logits = model.forward(input, { lastOnly: true });
  const next = await argmaxLast(logits);
  const ms = performance.now() - start;
  tf.dispose([input, logits]);
  return { ms, next };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Warm-up: kernels, pools and JIT.
log("warm-up");
const warm = await generateCached(Math.min(16, tokens));
await recomputeStep(warm.seq, 1);
const reference = await generateCached(tokens);
await recomputeStep(reference.seq, tokens);
const fullMs = (await recomputeStep(reference.seq, tokens)).ms;

let stride: number;
if (args.stride === "auto") {
  const estimateMs = fullMs * tokens / 2; // every length, cost ∝ length
  stride = Math.min(
    Math.max(1, Math.ceil(estimateMs / 10_000)),
    Math.max(1, Math.floor(tokens / 8)),
  );
} else {
  stride = args.stride;
}
// Midpoints of windows [k·stride + 1, (k+1)·stride] of prefix lengths.
const lengths: number[] = [];
for (let lo = 1; lo <= tokens; lo += stride) {
  const hi = Math.min(lo + stride - 1, tokens);
  lengths.push(Math.round((lo + hi) / 2));
}
log(
  `full forward at ${tokens}: ${
    fullMs.toFixed(1)
  } ms; recompute timed at ${lengths.length} lengths (stride ${stride})`,
);

const cachedMs: number[] = [];
const recomputeMs: number[] = [];
let agree = true;
for (let r = 0; r < rounds; r++) {
  const cached = await generateCached(tokens);
  cachedMs.push(cached.ms);
  let total = 0;
  for (const length of lengths) {
    const { ms, next } = await recomputeStep(cached.seq, length);
    total += ms;
    // The token after a prefix of `length` is seq[b][length].
    for (let b = 0; b < batch; b++) {
      if (next[b] !== cached.seq[b][length]) agree = false;
    }
  }
  recomputeMs.push(total / lengths.length);
  log(
    `round ${r + 1}: cache ${cached.ms.toFixed(2)} ms/token, recompute ${
      recomputeMs[r].toFixed(2)
    } ms/token`,
  );
}
model.dispose();

const msCache = median(cachedMs);
const msRecompute = median(recomputeMs);
console.log(JSON.stringify({
  bench: "transformer",
  backend,
  preset: args.preset,
  parameters: parameterCount(config),
  batch,
  tokens,
  rounds,
  recompute_stride: stride,
  ms_per_token_cache: Number(msCache.toFixed(3)),
  ms_per_token_recompute: Number(msRecompute.toFixed(3)),
  kv_cache_speedup: Number((msRecompute / msCache).toFixed(2)),
  greedy_tokens_agree: agree,
  token_unit: "one generated position for the whole batch",
}));
