import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { checkBudget, estimateRun, formatFlops } from "./budget.ts";
import { MLM } from "./contestants/mlm.ts";
import { registerContestant } from "./registry.ts";
import { ConfigError, type ExperimentConfig } from "./options.ts";
import { resolveConfig } from "./config.ts";

Deno.test("formatFlops moves to the next unit when the rounded figure reaches 1000, at either kind of digits", () => {
  // Three significant digits: 999.96 rounds to 1000, so the next unit.
  assertEquals(formatFlops(999.96), "1.00 kFLOP");
  assertEquals(formatFlops(999_960), "1.00 MFLOP");
  assertEquals(formatFlops(999.4), "999 FLOP");
  assertEquals(formatFlops(999_499), "999 kFLOP");
  assertEquals(formatFlops(1000), "1.00 kFLOP");
  assertEquals(formatFlops(4.054e12), "4.05 TFLOP");
  // One decimal (the budget estimate's): 999.96 → "1000.0", so the next unit.
  assertEquals(formatFlops(999.96, { decimals: 1 }), "1.0 kFLOP");
  assertEquals(formatFlops(999.94, { decimals: 1 }), "999.9 FLOP");
  assertEquals(formatFlops(2.5e9, { decimals: 1 }), "2.5 GFLOP");
  // Four significant digits: 999.94 stays in its unit, 999.96 does not.
  assertEquals(formatFlops(999_940, { significant: 4 }), "999.9 kFLOP");
  assertEquals(formatFlops(999_960, { significant: 4 }), "1.000 MFLOP");
  assertEquals(formatFlops(Infinity), "? FLOP");
  // Past E: Z and Y, never "1.00e+3 EFLOP".
  assertEquals(formatFlops(999.4e18), "999 EFLOP");
  assertEquals(formatFlops(999.5e18), "1.00 ZFLOP");
  assertEquals(formatFlops(999.6e21), "1.00 YFLOP");
  assertEquals(formatFlops(123.4e24), "123 YFLOP");
  assertEquals(formatFlops(999.6e24), "1.00e+27 FLOP");
  assertEquals(formatFlops(1e21, { decimals: 1 }), "1.0 ZFLOP");
  assertEquals(formatFlops(999.96e21, { decimals: 1 }), "1.0 YFLOP");
  assertEquals(formatFlops(2e27, { decimals: 1 }), "2000.0 YFLOP");
  // One significant digit rounds once: 950 is 1e+3, so "1 kFLOP", not
  // 0.95 rounded again to "0.9 kFLOP".
  assertEquals(formatFlops(950, { significant: 1 }), "1 kFLOP");
  assertEquals(formatFlops(949, { significant: 1 }), "900 FLOP"); // not 9e+2
  assertEquals(formatFlops(955, { significant: 2 }), "960 FLOP");
  assertEquals(formatFlops(9.5e5, { significant: 1 }), "1 MFLOP");
  assertEquals(formatFlops(0.5), "0.500 FLOP");
  assertEquals(formatFlops(0), "0.00 FLOP");
  assertEquals(formatFlops(-999_960), "-1.00 MFLOP");
});

Deno.test("checkBudget() refuses a corpus over the memory naming the embedded WikiText-2 or --data, and the largest other part with its option, the larger remedy first", () => {
  const micro = resolveConfig({ preset: "micro" });
  const refusal = (c: ExperimentConfig, corpusIds: number) =>
    assertThrows(
      () => checkBudget(c, { available: 2 ** 20, corpusIds, engine: "cpu" }),
      ConfigError,
    ).message;
  // A corpus of 5 MB beside activations of gigabytes: --batch-size fixes it.
  const small = refusal({ ...micro, batchSize: 60000 }, 1e6);
  assertStringIncludes(
    small,
    "The corpus of the embedded WikiText-2 is 1000000 ids, about 4.8 MiB of memory at 5 bytes an id",
  );
  assertMatch(
    small,
    /; besides the corpus, most is for [^(]+\([\d.]+ GiB\): lower --batch-size[^,]*, use a smaller corpus \(--data DIR\), or free memory$/,
  );
  assert(!small.includes("(embedded)"), small);
  // A corpus of 20 GB: a smaller one first.
  const big = refusal({ ...micro, data: "/data/wt103" }, 4e9);
  assertStringIncludes(
    big,
    "The corpus of --data /data/wt103 is 4000000000 ids",
  );
  assertMatch(
    big,
    /: use a smaller corpus than --data, lower --[a-z-]+( or --[a-z-]+)*, or free memory$/,
  );
});

// Two denoisers the project does not ship: both unmask, one declares that
// its evaluation runs the exact discrete bound.
registerContestant({ ...MLM, kind: "unmasks-two", seedStream: 31 });
registerContestant({
  ...MLM,
  kind: "exact-two",
  seedStream: 32,
  exactBound: () => true,
});

Deno.test("estimateRun() charges the exact discrete bound only to the contestants whose evaluation runs it: the D3PM unstaggered, not the MLM or another unmasking denoiser", () => {
  const exactWork = (models: string, stagger = 0) =>
    estimateRun(resolveConfig({ preset: "micro", models, stagger }))
      .evaluation.find((p) => p.what.startsWith("the exact discrete bound"))!
      .amount;
  const one = exactWork("d3pm");
  assert(one > 0);
  assertEquals(exactWork("exact-two"), one);
  assertEquals(exactWork("d3pm,exact-two"), 2 * one);
  assertEquals(exactWork("mlm"), 0);
  assertEquals(exactWork("unmasks-two"), 0);
  assertEquals(exactWork("ar,d3pm,mlm,bd3,unmasks-two"), one);
  assertEquals(exactWork("d3pm", 0.5), 0);
});
