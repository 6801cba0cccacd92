// The wide attention kernels (attentionKernel: "wide"): run alone against a
// float64 reference — output, lse, D, dq, dk, dv within 1e-4 relative —
// at T not a multiple of the 64 owned or 32 streamed positions (7, 70,
// 100, 130), causal and bidirectional, dropout, both ALiBi modes, head sizes
// 64, 32 and 8, and scores hundreds apart (the online softmax's max); the
// tiled kernels run on the same cases as a check of the harness. Then
// through the engine: the wide set against the tiled one, loss, logits and
// every gradient (T 1,000 causal on a GPU, 500 on software; dropout and
// ALiBi), and the wide pipelines are the ones dispatched.

import { assert, assertEquals, assertLess, assertRejects } from "@std/assert";
import { type ModelConfig, validateConfig } from "@d3pm/transformer";
import { type TrainBatch, WebGpuTransformer } from "./mod.ts";
import {
  wideAttentionBytes,
  wideAttentionForwardSource,
  wideAttentionKeyValueSource,
  wideAttentionQuerySource,
} from "./_attention_wide_wgsl.ts";
import {
  tiledAttentionForwardSource,
  tiledAttentionKeyValueSource,
  tiledAttentionQuerySource,
} from "./_attention_wgsl.ts";
import {
  type AttentionCase,
  type AttentionSource,
  randomInputs,
  referenceAttention,
  runAttention,
} from "./_test_attention.ts";
import {
  forDevice,
  gpu,
  parityConfig,
  randomIds,
  relError,
  testDevice,
} from "./_test_util.ts";

const SETS: Record<
  string,
  {
    own: number;
    forward: AttentionSource;
    query: AttentionSource;
    keyValue: AttentionSource;
  }
> = {
  wide: {
    own: 64,
    forward: wideAttentionForwardSource,
    query: wideAttentionQuerySource,
    keyValue: wideAttentionKeyValueSource,
  },
  tiled: {
    own: 32,
    forward: tiledAttentionForwardSource,
    query: tiledAttentionQuerySource,
    keyValue: tiledAttentionKeyValueSource,
  },
};

const base = { batch: 2, heads: 3, dropout: 0, bias: null };
const cases: [string, AttentionCase][] = [
  ["causal, hd 64, T 70", { ...base, hd: 64, length: 70, causal: true }],
  [
    "bidirectional, hd 64, T 70, ALiBi neighbours, dropout 0.2",
    {
      ...base,
      hd: 64,
      length: 70,
      causal: false,
      dropout: 0.2,
      bias: { slope: 0.5, neighbours: true },
    },
  ],
  [
    "bidirectional, hd 8, T 100, ALiBi symmetric",
    {
      ...base,
      hd: 8,
      length: 100,
      causal: false,
      bias: { slope: 0.5, neighbours: false },
    },
  ],
  // Scores hundreds apart: a block max that is not the row's overflows exp.
  [
    "bidirectional, hd 64, T 70, scores hundreds apart",
    { ...base, hd: 64, length: 70, causal: false, spread: 15 },
  ],
  [
    "causal, hd 8, T 7 (under one block), dropout 0.2, 1 row",
    { ...base, batch: 1, hd: 8, length: 7, causal: true, dropout: 0.2 },
  ],
  [
    "causal, hd 32, T 130, dropout 0.3",
    { ...base, hd: 32, length: 130, causal: true, dropout: 0.3 },
  ],
];

async function checkSet(set: string, c: AttentionCase): Promise<void> {
  const k = SETS[set];
  const x = randomInputs(c, 5);
  const want = referenceAttention(c, x);
  const fwd = await runAttention(testDevice(), c, x, [k.forward], k.own);
  assertLess(relError(fwd.y, want.y), 1e-4, `${set} output`);
  assertLess(relError(fwd.lse, want.lse), 1e-5, `${set} lse`);
  // The backward from the reference's y and lse: each kernel on its own.
  const bwd = await runAttention(
    testDevice(),
    c,
    { ...x, y: want.y, lse: want.lse },
    [k.query, k.keyValue],
    k.own,
  );
  assertLess(relError(bwd.D, want.D), 1e-5, `${set} D`);
  const n = c.batch * c.length, d = c.heads * c.hd;
  for (const [part, name] of ["dq", "dk", "dv"].entries()) {
    const pick = (a: Float32Array) =>
      Float32Array.from(
        { length: n * d },
        (_, i) => a[Math.floor(i / d) * 3 * d + part * d + (i % d)],
      );
    const err = relError(pick(bwd.dqkv), pick(want.dqkv));
    assertLess(err, 1e-4, `${set} ${name}: relative error ${err}`);
  }
}

for (const [label, c] of cases) {
  for (const set of ["wide", "tiled"]) {
    Deno.test({
      name: `${set} attention kernels equal a float64 reference (${label})`,
      ...gpu,
      fn: () => checkSet(set, c),
    });
  }
}

Deno.test({
  name: "the wide kernels fit 32 KiB of workgroup memory at head size 64",
  ...gpu,
  fn: () => {
    const bytes = wideAttentionBytes(64);
    assertEquals(bytes, { forward: 32768, query: 32768, keyValue: 32768 });
    assert(
      32768 <= testDevice().limits.maxComputeWorkgroupStorageSize,
      "the test device holds the wide kernels",
    );
  },
});

// Through the engine: the option selects the wide set (its pipeline keys)
// and the step agrees with the tiled set's.
async function engineRun(
  config: ModelConfig,
  attentionKernel: "tiled" | "wide",
  batchSize: number,
  length: number,
) {
  const e = await WebGpuTransformer.create(config, {
    batchSize,
    length,
    seed: 3,
    device: testDevice(),
    attentionKernel,
  });
  try {
    const n = batchSize * length;
    const batch: TrainBatch = {
      inputs: randomIds(n, 37, 11),
      targets: randomIds(n, 37, 12),
      weights: new Float32Array(n).fill(1 / n),
    };
    e.backward(batch, { dropoutSeed: 77 });
    const loss = (await e.readLoss()).loss;
    const grads = await e.readGradients();
    const logits = await e.forwardIds(batch.inputs, batchSize, length);
    // The pipelines the step dispatched (timestamps: where the device has them).
    const { kernels } = testDevice().features.has("timestamp-query")
      ? await e.profileStep(batch, 0)
      : { kernels: [] };
    return { loss, grads, logits, keys: kernels.map((k) => k.kernel) };
  } finally {
    e.dispose();
  }
}

// T 1,000 on a real GPU. On a software adapter (CI's lavapipe, whose cost
// is quadratic in T) T 500: 7 owned blocks of 64 and a partial one, 15
// streamed blocks of 32 and a partial one, past the direct tests' T ≤ 130;
// the tiled set keeps T 1,000 through the engine there too
// (attention_tiled_test.ts, against the first kernels).
const WIDE_T = forDevice({ gpu: 1000, software: 500 });
const engineCases: [string, ModelConfig, number, number][] = [
  [
    `causal, rotary, hd 64, T ${WIDE_T}`,
    validateConfig({
      ...parityConfig("causal", "rotary"),
      contextLength: WIDE_T,
      nLayer: 1,
      nHead: 2,
      dModel: 128,
      dMlp: 32,
    }),
    1,
    WIDE_T,
  ],
  [
    "bidirectional, learned, ALiBi neighbours, hd 32, T 70, dropout 0.2",
    validateConfig({
      ...parityConfig("bidirectional", "learned"),
      contextLength: 70,
      nLayer: 1,
      nHead: 4,
      dModel: 128,
      dMlp: 32,
      alibi: 0.5,
      alibiMode: "neighbours",
      dropout: 0.2,
    }),
    2,
    70,
  ],
];

for (const [label, config, batchSize, length] of engineCases) {
  Deno.test({
    name: `the engine's wide attention equals its tiled attention (${label})`,
    ...gpu,
    fn: async () => {
      const wide = await engineRun(config, "wide", batchSize, length);
      const tiled = await engineRun(config, "tiled", batchSize, length);
      if (testDevice().features.has("timestamp-query")) {
        assert(wide.keys.some((k) => k.startsWith("attn_fwd_wide:")));
        assert(wide.keys.some((k) => k.startsWith("attn_bwd_q_wide:")));
        assert(wide.keys.some((k) => k.startsWith("attn_bwd_kv_wide:")));
        assert(!tiled.keys.some((k) => k.includes("_wide")));
      }
      assertLess(
        Math.abs(wide.loss - tiled.loss),
        1e-5 * Math.abs(tiled.loss),
      );
      assertLess(relError(wide.logits, tiled.logits), 1e-4, "logits");
      for (const [name, g] of tiled.grads) {
        const err = relError(wide.grads.get(name)!.data, g.data);
        assertLess(err, 1e-4, `gradient of ${name}: relative error ${err}`);
      }
    },
  });
}

Deno.test({
  name: "attentionKernel other than tiled or wide is refused in one line",
  ...gpu,
  fn: async () => {
    await assertRejects(
      () =>
        WebGpuTransformer.create(parityConfig("causal", "learned"), {
          evaluationOnly: true,
          device: testDevice(),
          attentionKernel: "flash" as "wide",
        }),
      RangeError,
      `WebGpuTransformer: attentionKernel must be "tiled" or "wide", got "flash"`,
    );
  },
});

// What the engine reports it dispatches (attentionKernels) against the
// pipelines its profiled step ran: "wide" asked for falls back silently
// with the old kernels and at head sizes the wide set does not take.
const reported: [string, ModelConfig, "new" | "old", string][] = [
  ["new kernels, hd 8", parityConfig("causal", "learned"), "new", "wide"],
  ["old kernels, hd 8", parityConfig("causal", "learned"), "old", "first"],
  [
    "new kernels, hd 6 (not a multiple of 4)",
    parityConfig("causal", "learned", { nHead: 4 }),
    "new",
    "tiled",
  ],
  [
    "new kernels, hd 72 (over 64)",
    parityConfig("bidirectional", "learned", {
      nLayer: 1,
      nHead: 2,
      dModel: 144,
    }),
    "new",
    "first",
  ],
];
for (const [label, config, kernels, family] of reported) {
  Deno.test({
    name:
      `attentionKernels names the attention set dispatched when wide is asked for (${label}: ${family})`,
    ...gpu,
    fn: async () => {
      const e = await WebGpuTransformer.create(config, {
        batchSize: 2,
        length: 9,
        seed: 1,
        device: testDevice(),
        kernels,
        attentionKernel: "wide",
      });
      try {
        assertEquals(e.attentionKernels, {
          forward: family,
          backwardQuery: family,
          backwardKeyValue: family,
        });
        if (!testDevice().features.has("timestamp-query")) return;
        const n = 18;
        const ids = randomIds(n, 37, 5);
        const { kernels: ran } = await e.profileStep({
          inputs: ids,
          targets: ids,
          weights: new Float32Array(n).fill(1 / n),
        }, 0);
        const end = family === "first" ? "" : `_${family}`;
        const attention = ran.map((k) => k.kernel.split(":")[0])
          .filter((k) => k.startsWith("attn_"));
        assertEquals(
          [...new Set(attention)].sort(),
          [`attn_bwd_kv${end}`, `attn_bwd_q${end}`, `attn_fwd${end}`],
        );
      } finally {
        e.dispose();
      }
    },
  });
}
