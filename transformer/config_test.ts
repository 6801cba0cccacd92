import { assert, assertEquals, assertThrows } from "@std/assert";
import { preset, PRESET_NAMES, validateConfig } from "./config.ts";

const base = preset("tiny");

function rejects(value: unknown, fragment: string): void {
  const error = assertThrows(() => validateConfig(value), RangeError);
  assert(
    error.message.includes(fragment),
    `"${error.message}" should mention "${fragment}"`,
  );
  assert(!error.message.includes("\n"), "error messages are one line");
}

Deno.test("validateConfig() accepts every preset and its JSON round trip", () => {
  for (const name of PRESET_NAMES) {
    const config = preset(name);
    assertEquals(validateConfig(JSON.parse(JSON.stringify(config))), config);
  }
});

Deno.test("validateConfig() rejects unknown and missing keys", () => {
  rejects({ ...base, nHed: 4 }, 'unknown key "nHed"');
  const { dropout: _, ...missing } = base;
  rejects(missing, 'missing key "dropout"');
  rejects(null, "expected an object");
  rejects([1], "expected an object");
});

Deno.test("validateConfig() rejects bad values with the accepted ones", () => {
  rejects({ ...base, kind: "encoder" }, 'kind must be "causal" or');
  rejects({ ...base, positions: "alibi" }, 'positions must be "learned" or');
  rejects(
    { ...base, timeConditioning: 1 },
    "timeConditioning must be a boolean",
  );
  rejects({ ...base, vocabSize: 0 }, "vocabSize must be a positive integer");
  rejects({ ...base, dModel: 2.5 }, "dModel must be a positive integer");
  rejects({ ...base, dropout: 1 }, "dropout must be a number in [0, 1)");
  rejects({ ...base, dropout: "0.1" }, "dropout must be a number in [0, 1)");
  rejects({ ...base, nHead: 3 }, "nHead must divide dModel");
  rejects(
    { ...base, dModel: 12, nHead: 4, positions: "rotary" },
    "rotary positions need an even head size",
  );
  rejects({ ...base, dTime: 7 }, "dTime must be even");
});

Deno.test("preset() applies overrides and rejects unknown names", () => {
  const config = preset("small", { kind: "bidirectional", vocabSize: 5000 });
  assertEquals(config.kind, "bidirectional");
  assertEquals(config.vocabSize, 5000);
  assertEquals(config.nLayer, 6);
  assertEquals(config.dModel, 384);
  const paper = preset("paper");
  assertEquals(
    [paper.nLayer, paper.dModel, paper.nHead, paper.contextLength],
    [12, 768, 12, 1024],
  );
  assertEquals(paper.vocabSize, 50257 + 4);
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => preset("huge" as any),
    RangeError,
    "accepted presets: micro, tiny, small, paper",
  );
});

Deno.test("validateConfig() refuses sizes no machine can allocate before any weight is made", () => {
  // dModel 2^30 and vocabSize 1e12 were accepted; building the model then
  // asked for terabytes.
  rejects(
    { ...base, vocabSize: 1e12 },
    "vocabSize must be at most 2^31 − 1 (ids are int32), got 1000000000000",
  );
  rejects(
    { ...base, dModel: 2 ** 30, nHead: 1 },
    `the vocabSize × dModel weight would hold ${
      base.vocabSize * 2 ** 30
    } values, more than 2^31 − 1 in one matrix`,
  );
  rejects(
    { ...base, vocabSize: 260, dMlp: 2 ** 25 },
    `the dModel × dMlp weight would hold ${base.dModel * 2 ** 25} values`,
  );
  rejects(
    { ...base, nLayer: 1e6 },
    "parameters, more than 2^33 (32 GiB of float32 weights)",
  );
  // The largest matrix allowed: vocabSize × dModel = 2^31 − 1 values (learned
  // positions: rotary needs an even head size).
  const edge = {
    ...base,
    vocabSize: 2 ** 31 - 1,
    dModel: 1,
    nHead: 1,
    dMlp: 4,
    positions: "learned",
  };
  assertEquals(validateConfig(edge).vocabSize, 2 ** 31 - 1);
});
