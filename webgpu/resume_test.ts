// A training checkpoint is the same file whichever engine wrote it: one
// written by tfjs training resumes on the fused engine, and one written by
// the engine resumes on tfjs, each ending where an uninterrupted run on
// either engine ends (within the engines' float32 drift).

import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLess } from "@std/assert";
import type { StoredTensor } from "@d3pm/core";
import { Transformer } from "@d3pm/transformer";
import { maskedDiffusion } from "@d3pm/diffusion";
import { loadCheckpoint, train, trainEngine } from "@d3pm/train";
import { WebGpuTransformer } from "./mod.ts";
import {
  gpu,
  parityConfig,
  randomIds,
  relError,
  testDevice,
} from "./_test_util.ts";

const V = 37, MASK = 36, B = 2, T = 7, STEPS = 8, CUT = 4;
const config = parityConfig("bidirectional", "rotary");
const process = maskedDiffusion({
  kind: "masked-diffusion",
  vocab: V,
  maskId: MASK,
  steps: 100,
  schedule: { kind: "log-linear" },
  objective: "mdlm",
});
const blocks = {
  data: Uint32Array.from(randomIds(12 * T, V - 1, 3)),
  count: 12,
  length: T,
};
const common = {
  blocks,
  batchSize: B,
  lr: (s: number) => 2e-2 * (1 - s / (2 * STEPS)),
  seed: 4,
  config: { test: "cross-engine resume" },
  progress: false as const,
};

async function onTfjs(steps: number, checkpoint: string, resume: boolean) {
  await tf.setBackend("cpu");
  const model = new Transformer(config, { seed: 9 });
  const r = await train({
    ...common,
    variables: model.variables,
    loss: (batch, rng) =>
      process.loss(model, { ...batch, length: T }, { prng: rng }),
    steps,
    checkpoint,
    resume,
  });
  r.optimizer.dispose();
  const out = new Map<string, Float32Array>();
  for (const [k, v] of model.variables) {
    out.set(k, (await v.data()) as Float32Array);
  }
  model.dispose();
  return { weights: out, startStep: r.startStep };
}

async function onEngine(steps: number, checkpoint: string, resume: boolean) {
  const engine = await WebGpuTransformer.create(config, {
    batchSize: B,
    length: T,
    seed: 9,
    device: testDevice(),
    excludeToken: MASK,
  });
  const r = await trainEngine({
    ...common,
    engine,
    ema: false,
    terms: (batch, rng) =>
      process.lossTerms({ ...batch, length: T }, { prng: rng }),
    steps,
    checkpoint,
    resume,
  });
  const out = new Map<string, Float32Array>();
  for (const [k, v] of await engine.getWeights()) out.set(k, v.data);
  engine.dispose();
  return { weights: out, startStep: r.startStep };
}

/** The largest per-tensor relative error (max |a − b| / max |b|) and where. */
function worst(
  a: ReadonlyMap<string, Float32Array>,
  b: ReadonlyMap<string, Float32Array>,
): { error: number; at: string } {
  assertEquals([...a.keys()].sort(), [...b.keys()].sort());
  let error = 0, at = "";
  for (const [k, x] of a) {
    const e = relError(x, b.get(k)!);
    if (e > error) [error, at] = [e, k];
  }
  return { error, at };
}

function section(
  ck: Awaited<ReturnType<typeof loadCheckpoint>>,
  part: "model" | "adamM" | "adamV",
): Map<string, Float32Array> {
  return new Map(
    [...ck[part]].map(([k, t]: [string, StoredTensor]) => [k, t.data]),
  );
}

// Drift: 8 AdamW steps apart, the two engines' weights differ by ≤ 7e-4
// (per tensor, relative to its largest weight); a resume that lost the
// optimiser's step, swapped its moments or restarted the data differs by
// far more (see docs/testing.md).
const DRIFT = 2e-3;

Deno.test({
  name:
    "a checkpoint written by tfjs resumes on the engine, and one written by the engine resumes on tfjs, ending where uninterrupted runs end",
  ...gpu,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const tfjsWhole = await onTfjs(STEPS, `${dir}/a.safetensors`, false);
    const engineWhole = await onEngine(STEPS, `${dir}/b.safetensors`, false);
    await onTfjs(CUT, `${dir}/tfjs.safetensors`, false);
    await onEngine(CUT, `${dir}/engine.safetensors`, false);
    // The same checkpoint from either engine: state, names, shapes, values.
    const a = await loadCheckpoint(`${dir}/tfjs.safetensors`);
    const b = await loadCheckpoint(`${dir}/engine.safetensors`);
    const { elapsed: _a, lastLoss: la, ...sa } = a.state;
    const { elapsed: _b, lastLoss: lb, ...sb } = b.state;
    assertEquals(sa, sb);
    assertEquals(sa.step, CUT);
    assertLess(Math.abs(la! - lb!) / la!, 1e-4, `last loss ${la} vs ${lb}`);
    for (const part of ["model", "adamM", "adamV"] as const) {
      const { error, at } = worst(section(b, part), section(a, part));
      assertLess(error, DRIFT, `${part} ${at}: ${error}`);
    }
    assertEquals(b.ema.size, 0);
    // Each resumed on the other engine.
    const toEngine = await onEngine(STEPS, `${dir}/tfjs.safetensors`, true);
    const toTfjs = await onTfjs(STEPS, `${dir}/engine.safetensors`, true);
    assertEquals([toEngine.startStep, toTfjs.startStep], [CUT, CUT]);
    for (
      const [label, got, want] of [
        ["tfjs → engine vs the engine throughout", toEngine, engineWhole],
        ["tfjs → engine vs tfjs throughout", toEngine, tfjsWhole],
        ["engine → tfjs vs tfjs throughout", toTfjs, tfjsWhole],
        ["engine → tfjs vs the engine throughout", toTfjs, engineWhole],
      ] as const
    ) {
      const { error, at } = worst(got.weights, want.weights);
      assertLess(error, DRIFT, `${label}: ${at} ${error}`);
    }
    // And the resumed runs did train on from the checkpoint.
    assert(worst(toEngine.weights, section(a, "model")).error > 10 * DRIFT);
    await Deno.remove(dir, { recursive: true });
  },
});
