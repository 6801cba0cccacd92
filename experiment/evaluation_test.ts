import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { prng } from "@d3pm/core";
import { perplexityInterval } from "@d3pm/eval";
import { measureGeneration } from "./evaluation.ts";
import { resolveConfig } from "./config.ts";

Deno.test("measureGeneration() with --gen-samples judges the timed rows and then untimed ones, each alone, in order", async () => {
  const config = resolveConfig({
    preset: "micro",
    genTokens: 1,
    genBatch: 2,
    genSamples: 5,
  });
  const L = config.blockLength;
  const test = Uint32Array.from({ length: 3 * L }, (_, i) => 1 + (i % 7));
  const ctx = {
    config,
    data: {
      test: { data: test, count: 3, length: L },
      specials: { bos: 100, eos: 101, pad: 102, mask: 103 },
    } as never,
    rng: prng(0),
    // Each row's NLL is its first id; one judged row at a time.
    judge: (x0: { tokens: Int32Array; batchSize: number }) => {
      assertEquals(x0.batchSize, 1);
      return Promise.resolve({ nats: x0.tokens[0], stderr: 0, tokens: L - 1 });
    },
  };
  let calls = 0;
  const out = await measureGeneration(ctx, () => {
    // Batch k holds rows 2k+1 and 2k+2, each filled with its number.
    const tokens = new Int32Array(2 * L);
    tokens.fill(2 * calls + 1, 0, L);
    tokens.fill(2 * calls + 2, L);
    calls++;
    return Promise.resolve({ tokens, forwardPasses: L });
  });
  assertEquals(out.speed.batches, 1); // a warm-up and one timed batch, one more untimed
  assertEquals(calls, 3);
  // Catches: the last batch alone judged, the timed rows skipped, one row
  // too many or too few.
  const want = perplexityInterval([1, 2, 3, 4, 5]);
  assertAlmostEquals(out.genPpl, want.genPpl, 1e-9);
  assertAlmostEquals(out.genPplInterval!.low, want.low, 1e-9);
  assertAlmostEquals(out.genPplInterval!.high, want.high, 1e-9);
  assertEquals(out.genPplInterval!.samples, 5);
  assert(out.entropy === 0); // every row repeats one id
  assertEquals(out.tokens.length, 2 * L); // samples.txt: the last timed batch
});

Deno.test("measureGeneration() without --gen-samples judges the last timed batch alone, as older runs did", async () => {
  const config = resolveConfig({
    preset: "micro",
    genTokens: 1,
    genBatch: 2,
    genSamples: 0,
  });
  const L = config.blockLength;
  const seen: number[] = [];
  const ctx = {
    config,
    data: {} as never,
    rng: prng(0),
    judge: (x0: { tokens: Int32Array; batchSize: number }) => {
      seen.push(x0.batchSize);
      return Promise.resolve({ nats: 2, stderr: 0, tokens: L - 1 });
    },
  };
  const out = await measureGeneration(
    ctx,
    () => Promise.resolve({ tokens: new Int32Array(2 * L), forwardPasses: L }),
  );
  assertAlmostEquals(out.genPpl, Math.exp(2), 1e-9);
  assertEquals(out.genPplInterval, undefined);
  assertEquals(seen, [2]);
});
