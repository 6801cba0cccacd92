import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { createSha256 } from "@d3pm/core";
import { initialWeights } from "./init.ts";
import { preset } from "./config.ts";
import { parameterShapes } from "./parameters.ts";
import { Transformer } from "./transformer.ts";
import { tinyConfig } from "./_test_util.ts";

Deno.test("initialWeights() equals a seeded Transformer's variables bit for bit, every kind", async () => {
  await tf.setBackend("cpu");
  for (const kind of ["causal", "bidirectional"] as const) {
    for (const positions of ["learned", "rotary"] as const) {
      for (const timeConditioning of [false, true]) {
        const config = tinyConfig({ kind, positions, timeConditioning });
        const weights = initialWeights(config, 11);
        assertEquals([...weights.keys()], [...parameterShapes(config).keys()]);
        const model = new Transformer(config, { seed: 11 });
        for (const [name, v] of model.variables) {
          const w = weights.get(name)!;
          assertEquals(w.shape, v.shape, name);
          assertEquals(w.data, await v.data(), name);
        }
        model.dispose();
      }
    }
  }
});

Deno.test("initialWeights() draws other weights for another seed, and rejects a fractional seed", () => {
  const config = tinyConfig({});
  const a = initialWeights(config, 0).get("wte.weight")!.data;
  const b = initialWeights(config, 1).get("wte.weight")!.data;
  assertNotEquals(a, b);
  assertEquals(initialWeights(config, 0).get("wte.weight")!.data, a);
  assertThrows(
    () => initialWeights(config, 0.5),
    RangeError,
    "seed must be an integer, got 0.5",
  );
});

// SHA-256 of the concatenated float32 values, in canonical order, of
// `new Transformer(config, { seed })` before initialWeights() existed: any
// change to the initialisation (order of draws, the dropout seed drawn first,
// the rules) changes every run's weights and shows here.
Deno.test("initialWeights() gives the pinned bytes of the tiny preset's initial weights", () => {
  const pinned = [
    {
      config: preset("tiny"),
      seed: 0,
      sha256:
        "d91a0653615afc1634afb8296b796fd08ee8a23f91f00a20f8d9dbad904802e3",
    },
    {
      config: preset("tiny", {
        kind: "bidirectional",
        timeConditioning: true,
        positions: "rotary",
      }),
      seed: 3,
      sha256:
        "71448486a63ab657f27a1cb769dd01386bc54eba28863830121a076e21cbd9fb",
    },
  ];
  for (const { config, seed, sha256 } of pinned) {
    const hash = createSha256();
    for (const { data } of initialWeights(config, seed).values()) {
      hash.update(
        new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      );
    }
    assertEquals(hash.hex(), sha256, `${config.kind}, seed ${seed}`);
  }
});
