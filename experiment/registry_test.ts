import { assertEquals, assertThrows } from "@std/assert";
import {
  AR,
  contestants,
  judgePlan,
  registerContestant,
  resolveConfig,
  weightSeed,
} from "@d3pm/experiment";

// The initial weights of seed s come from 1000 s + seedStream: a stream of
// 1000 or more, or the judge's, would start two models from one draw.
Deno.test("registerContestant() refuses a seed stream outside 1..999, or the judge's, before it can share another model's weights seed", () => {
  for (const seedStream of [0, -1, 1.5, 1000, 1001, 2003]) {
    assertThrows(
      () => registerContestant({ ...AR, kind: "late", seedStream }),
      RangeError,
      `Cannot register contestant "late": its seed stream must be an integer in 1..999 (weights seed = 1000 × seed + stream, so a larger one is another seed's stream), got ${seedStream}`,
    );
  }
  // What 1001 would have meant: seed 0 of it is seed 1 of AR.
  assertEquals(weightSeed({ seedStream: 1001 }, 0), weightSeed(AR, 1));
  // The judge trains from seed 7919 = 1000 · 7 + 919.
  const plan = judgePlan(resolveConfig({ preset: "micro" }), {
    tokenizer: { id: "t", vocabSize: 260 },
    trainSha256: "",
  }, "tfjs");
  assertEquals(weightSeed({ seedStream: 919 }, 7), plan.seed);
  assertThrows(
    () => registerContestant({ ...AR, kind: "late", seedStream: 919 }),
    RangeError,
    "seed stream 919 is the judge's",
  );
  assertThrows(
    () => registerContestant({ ...AR, kind: "late", seedStream: 3 }),
    RangeError,
    `its seed stream must be one no other contestant uses ("mlm" has 3)`,
  );
  assertEquals(contestants().some((c) => c.kind === "late"), false);
});

Deno.test("the built-in contestants' seed streams are distinct integers in 1..999 (they register through the same checks)", () => {
  const streams = contestants().map((c) => c.seedStream);
  assertEquals(new Set(streams).size, streams.length);
  assertEquals(streams.slice(0, 4), [1, 2, 3, 4]); // existing runs' seeds
  for (const s of streams) {
    assertEquals(Number.isInteger(s) && s > 0 && s < 1000, true);
  }
});
