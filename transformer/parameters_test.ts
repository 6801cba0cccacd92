import * as tf from "@tensorflow/tfjs";
import { assertEquals } from "@std/assert";
import { preset, PRESET_NAMES } from "./config.ts";
import { parameterCount, parameterShapes } from "./parameters.ts";
import { Transformer } from "./transformer.ts";
import { tinyConfig } from "./_test_util.ts";

function sumOfShapes(shapes: Map<string, number[]>): number {
  let total = 0;
  for (const shape of shapes.values()) {
    total += shape.reduce((a, b) => a * b, 1);
  }
  return total;
}

Deno.test("parameterCount() matches the variables of real models", async () => {
  await tf.setBackend("cpu");
  for (const kind of ["causal", "bidirectional"] as const) {
    for (const positions of ["learned", "rotary"] as const) {
      for (const timeConditioning of [false, true]) {
        const config = tinyConfig({ kind, positions, timeConditioning });
        const model = new Transformer(config);
        const actual = model.trainableVariables().reduce(
          (n, v) => n + v.size,
          0,
        );
        assertEquals(actual, parameterCount(config));
        assertEquals(
          [...model.variables.keys()],
          [...parameterShapes(config).keys()],
        );
        model.dispose();
      }
    }
  }
});

Deno.test("parameterCount() agrees with parameterShapes() for every preset", () => {
  for (const name of PRESET_NAMES) {
    for (const timeConditioning of [false, true]) {
      for (const positions of ["learned", "rotary"] as const) {
        const config = preset(name, { timeConditioning, positions });
        assertEquals(
          parameterCount(config),
          sumOfShapes(parameterShapes(config)),
        );
      }
    }
  }
});

Deno.test("parameterCount() gives 124,442,880 for the paper preset", () => {
  // GPT-2 small (124,439,808 with its 50257 tokens) plus 4 special tokens
  // × 768.
  assertEquals(parameterCount(preset("paper")), 124_442_880);
  assertEquals(124_439_808 + 4 * 768, 124_442_880);
  // The paper-size denoiser with time conditioning (dTime 128).
  assertEquals(
    parameterCount(
      preset("paper", { kind: "bidirectional", timeConditioning: true }),
    ),
    124_442_880 + 2 * (128 * 128 + 128) + 12 * (128 * 6 * 768 + 6 * 768) +
      (128 * 2 * 768 + 2 * 768),
  );
});

Deno.test("parameterShapes() uses GPT-2 names and [in, out] layouts", () => {
  const shapes = parameterShapes(preset("paper"));
  assertEquals(shapes.get("wte.weight"), [50261, 768]);
  assertEquals(shapes.get("wpe.weight"), [1024, 768]);
  assertEquals(shapes.get("h.11.attn.c_attn.weight"), [768, 2304]);
  assertEquals(shapes.get("h.11.attn.c_proj.bias"), [768]);
  assertEquals(shapes.get("h.0.mlp.c_fc.weight"), [768, 3072]);
  assertEquals(shapes.get("h.0.mlp.c_proj.weight"), [3072, 768]);
  assertEquals(shapes.get("ln_f.bias"), [768]);
  assertEquals(shapes.size, 2 + 12 * 12 + 2);
  const rotary = parameterShapes(preset("paper", { positions: "rotary" }));
  assertEquals(rotary.has("wpe.weight"), false);
});
