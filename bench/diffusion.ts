// deno task bench:diffusion — the diffusion package's figures, as JSON lines:
// 1. forward passes of the cached ancestral sampler at T = 1000 (at most L + 1
//    for L tokens with a time-independent denoiser) vs the plain one;
// 2. the exact discrete bound (all T terms) vs the Monte-Carlo continuous
//    bound for a small bidirectional Transformer trained with the MDLM loss on
//    a toy corpus whose entropy is known (arithmetic progressions mod 8).
import { prng } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@d3pm/backend";
import {
  absorbing,
  absorbingBeta,
  continuousElbo,
  discreteElbo,
  logLinear,
  mdlmLoss,
  sample,
} from "@d3pm/diffusion";
import { Transformer } from "@d3pm/transformer";
import { AdamW, warmupCosine } from "@d3pm/train";
import { readCommandLine } from "@d3pm/cli";

readCommandLine(Deno.args, {
  command: "deno task bench:diffusion",
  summary:
    `Prints two JSON lines: forward passes of the cached ancestral sampler at
T = 1000 against the plain one, then the exact discrete bound against the
Monte-Carlo continuous bound for a small Transformer trained 400 steps with the
MDLM loss on a toy corpus of known entropy (minutes). It takes no options.`,
  options: {},
}, { usageExit: 2 });

const backend = await initBackend({ prefer: "auto" });
const K = 8, MASK = 8, L = 16;
function toy(b: number, seed: number) {
  const r = prng(seed);
  const tokens = new Int32Array(b * L);
  for (let i = 0; i < b; i++) {
    const s = r.nextInt(K), d = r.next() < 0.5 ? 1 : 3;
    for (let j = 0; j < L; j++) tokens[i * L + j] = (s + j * d) % K;
  }
  return { tokens, batchSize: b, length: L };
}
const model = new Transformer({
  kind: "bidirectional",
  vocabSize: K + 1,
  contextLength: L,
  nLayer: 2,
  nHead: 2,
  dModel: 64,
  dMlp: 128,
  positions: "rotary",
  timeConditioning: false,
  dTime: 128,
  dropout: 0,
}, { seed: 1 });

// 1. Sampler forward passes at T = 1000.
const schedule = absorbingBeta({ steps: 1000 });
for (const batch of [1, 4]) {
  const cached = await sample(model, {
    schedule,
    maskId: MASK,
    prng: prng(0),
    length: L,
    batchSize: batch,
    cache: true,
  });
  const plain = await sample(model, {
    schedule,
    maskId: MASK,
    prng: prng(0),
    length: L,
    batchSize: batch,
    cache: false,
  });
  const same = cached.tokens.every((x, i) => x === plain.tokens[i]);
  console.log(JSON.stringify({
    bench: "diffusion.sampler",
    backend: backend.name,
    T: 1000,
    tokens: batch * L,
    cached_forward_passes: cached.forwardPasses,
    bound_tokens_plus_1: batch * L + 1,
    plain_forward_passes: plain.forwardPasses,
    identical_samples: same,
  }));
}

// 2. Train, then compare the bounds.
const steps = 400;
const opt = new AdamW(model.variables, { weightDecay: 0 });
const lr = warmupCosine({ peak: 3e-3, warmup: 20, total: steps });
const r = prng(2);
const start = performance.now();
for (let s = 0; s < steps; s++) {
  const x0 = toy(32, s);
  const { value, grads } = tf.variableGrads(() =>
    mdlmLoss(model, x0, { schedule: logLinear(), maskId: MASK, prng: r })
  );
  const named = new Map(
    [...model.variables].map(([k, v]) => [k, grads[v.name]]),
  );
  opt.step(named, lr(s));
  tf.dispose([value, ...Object.values(grads)]);
}
const trainSeconds = (performance.now() - start) / 1000;
const evalBatch = toy(256, 999);
const mc = await continuousElbo(model, evalBatch, {
  schedule: logLinear(),
  maskId: MASK,
  prng: prng(1),
  samples: 16,
});
const exact = await discreteElbo(model, evalBatch, {
  transition: absorbing(absorbingBeta({ steps: 1000 }), {
    numStates: K + 1,
    maskId: MASK,
  }),
  prng: prng(3),
});
const entropy = Math.log(2 * K) / L; // start (8) × stride (2) choices, per token
console.log(JSON.stringify({
  bench: "diffusion.elbo",
  backend: backend.name,
  train_steps: steps,
  train_seconds: +trainSeconds.toFixed(1),
  data_entropy_nats: +entropy.toFixed(4),
  unigram_entropy_nats: +Math.log(K).toFixed(4),
  mc_continuous_nats: +mc.nats.toFixed(4),
  mc_stderr: +mc.stderr.toFixed(4),
  exact_discrete_T1000_nats: +exact.nats.toFixed(4),
  exact_stderr: +exact.stderr.toFixed(4),
  difference: +(exact.nats - mc.nats).toFixed(4),
  combined_stderr: +Math.hypot(mc.stderr, exact.stderr).toFixed(4),
}));
opt.dispose();
model.dispose();
