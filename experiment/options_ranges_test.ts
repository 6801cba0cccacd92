// Each numeric option's accepted range against a table written out here
// from what the option means (a probability is in [0, 1), a learning rate
// > 0, a block needs 2 tokens), not read from OPTIONS: the edge is taken
// and the next value past it refused. A bound moved, opened or closed in
// the table (or in convertOption's comparisons) fails this test. The
// real-valued options, listed here too, take only what float32 (the models'
// arithmetic) holds as a normal number: 0, or 2^-126 to its largest finite.

import { assertEquals, assertThrows } from "@std/assert";
import { convertOption, UsageError } from "@d3pm/cli";
import { OPTIONS } from "./options.ts";

type Range = { min?: number; max?: number; above?: number; below?: number };

const RANGES: Record<string, Range> = {
  seeds: { min: 1, max: 1000 },
  firstSeed: { min: 0, max: 1000 },
  logEvery: { min: 1 },
  vocabSize: { min: 1, max: 2 ** 20 },
  blockLength: { min: 2, max: 16384 },
  nLayer: { min: 1, max: 1024 },
  nHead: { min: 1, max: 1024 },
  dModel: { min: 1, max: 65536 },
  dMlp: { min: 1, max: 262144 },
  dropout: { min: 0, below: 1 }, // a rate of 1 drops everything
  alibi: { min: 0 },
  steps: { min: 1 },
  batchSize: { min: 1, max: 65536 },
  lr: { above: 0 },
  arLr: { min: 0 }, // 0: the D3PM's
  warmup: { min: 0 },
  lrFinal: { min: 0, max: 1 }, // a fraction of the peak; 0: decay to 0
  weightDecay: { min: 0 },
  adamBeta2: { above: 0, below: 1 }, // 1 would never move
  clipNorm: { above: 0 },
  emaDecay: { min: 0, below: 1 }, // 1 would never move
  checkpointEvery: { min: 1 },
  diffusionSteps: { min: 1, max: 100000 },
  tMin: { min: 0, max: 1 },
  tMax: { min: 0, max: 1 },
  fullMaskShare: { min: 0, max: 1 },
  annealSteps: { min: 0 },
  bd3Block: { min: 1 },
  stagger: { min: 0, below: 1 },
  staggerSpan: { min: 2 },
  evalBlocks: { min: 0 }, // 0: all
  validEvery: { min: 0 }, // 0: never
  validBlocks: { min: 1 },
  elboSamples: { min: 1 },
  exactBlocks: { min: 0 },
  genTokens: { min: 1 },
  genBatch: { min: 1, max: 65536 },
  genSamples: { min: 0, max: 65536 },
  samples: { min: 0 },
  infillFraction: { above: 0, below: 1 }, // hide something, not everything
  judgeSteps: { min: 1 },
};

Deno.test("every numeric option takes the edges of its range and refuses the next value past each", () => {
  const numeric = Object.entries(OPTIONS).filter(([, s]) =>
    s.kind === "integer" || s.kind === "number"
  ).map(([k]) => k);
  assertEquals(numeric.sort(), Object.keys(RANGES).sort());
  for (const [key, r] of Object.entries(RANGES)) {
    const spec = OPTIONS[key as keyof typeof OPTIONS];
    // The next value past an edge: 1 for integers, a little for numbers.
    const step = spec.kind === "integer" ? 1 : 1e-9;
    const ok = (x: number) =>
      assertEquals(convertOption(key, spec, x), x, `${key} ${x}`);
    const refused = (x: number) =>
      assertThrows(() => convertOption(key, spec, x), UsageError, `--`);
    if (r.min !== undefined) [ok(r.min), refused(r.min - step)];
    if (r.max !== undefined) [ok(r.max), refused(r.max + step)];
    if (r.above !== undefined) [ok(r.above + step), refused(r.above)];
    if (r.below !== undefined) [ok(r.below - step), refused(r.below)];
    // Unbounded above: a large value is taken.
    if (r.max === undefined && r.below === undefined) ok(1e6);
  }
});

// The options that hold a real number (the rest are integers or words).
const REALS = [
  "dropout",
  "alibi",
  "lr",
  "arLr",
  "lrFinal",
  "weightDecay",
  "adamBeta2",
  "clipNorm",
  "emaDecay",
  "tMin",
  "tMax",
  "fullMaskShare",
  "stagger",
  "infillFraction",
];

Deno.test("every real-valued option refuses a subnormal and a value float32 overflows on, and takes float32's normal edges", () => {
  const reals = Object.entries(OPTIONS).filter(([, s]) => s.kind === "number")
    .map(([k]) => k);
  assertEquals(reals.sort(), [...REALS].sort());
  const smallestNormal = 1.1754943508222875e-38; // 2^-126
  const largest = 3.4028234663852886e38; // (2 - 2^-23) · 2^127
  for (const key of REALS) {
    const spec = OPTIONS[key as keyof typeof OPTIONS];
    const r = RANGES[key];
    const refused = (x: number | string) =>
      assertThrows(
        () => convertOption(key, spec, x),
        UsageError,
        "that float32 holds",
        `${key} ${x}`,
      );
    for (const x of [1e-320, "1e-320", 5e-324, 1.17e-38]) refused(x);
    assertEquals(convertOption(key, spec, smallestNormal), smallestNormal);
    if (r.max === undefined && r.below === undefined) {
      assertEquals(convertOption(key, spec, largest), largest);
      refused(3.5e38);
      refused("1e39");
    }
  }
});
