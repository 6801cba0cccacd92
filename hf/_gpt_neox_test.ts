import { assertEquals } from "@std/assert";
import { parameterShapes } from "@d3pm/transformer";
import {
  neoxTensors,
  qkvWeightFromNeox,
  qkvWeightToNeox,
} from "./_gpt_neox.ts";

Deno.test("qkvWeightToNeox() interleaves the heads as GPT-NeoX's query_key_value: [q, k, v] of head 0, then of head 1", () => {
  // d 4, two heads of 2: c_attn [in 4, out 12], column c holds value c + 100·in.
  const d = 4, hd = 2;
  const w = new Float32Array(d * 3 * d);
  for (let i = 0; i < d; i++) {
    for (let c = 0; c < 3 * d; c++) w[i * 3 * d + c] = c + 100 * i;
  }
  const neox = qkvWeightToNeox(w, d, hd); // [out 12, in 4]
  const column = (o: number) => neox[o * d]; // input 0
  // Rows: q0 q0 k0 k0 v0 v0 q1 q1 k1 k1 v1 v1, from c_attn's columns
  // q (0..3), k (4..7), v (8..11), head h at h·2 within each.
  assertEquals(
    Array.from({ length: 12 }, (_, o) => column(o)),
    [0, 1, 4, 5, 8, 9, 2, 3, 6, 7, 10, 11],
  );
  assertEquals(neox[5 * d + 3], 9 + 300); // row 5 (v0, channel 1), input 3
  assertEquals(qkvWeightFromNeox(neox, d, hd), w);
});

Deno.test("neoxTensors() stores each Linear weight as nn.Linear's [out, in], the transpose of the project's Conv1D [in, out], and the rest as they are", async () => {
  // d 4 (square attention.dense: a dropped transpose keeps its shape), MLP 6.
  const model = {
    kind: "causal",
    vocabSize: 5,
    contextLength: 8,
    nLayer: 1,
    nHead: 2,
    dModel: 4,
    dMlp: 6,
    positions: "rotary",
    timeConditioning: false,
    dTime: 8,
    dropout: 0,
  } as const;
  const shapes = parameterShapes(model);
  // Every value distinct across tensors: 1000·(tensor) + index.
  const names = [...shapes.keys()];
  const ours = (name: string) => {
    const n = shapes.get(name)!.reduce((a, b) => a * b, 1);
    const k = names.indexOf(name);
    return Float32Array.from({ length: n }, (_, i) => 1000 * k + i);
  };
  const stored = new Map<string, [number[], Float32Array]>();
  for (const t of neoxTensors(model)) {
    stored.set(t.name, [
      t.shape,
      await t.values((n) => Promise.resolve(ours(n))),
    ]);
  }
  const linear = [
    ["h.0.attn.c_proj.weight", "attention.dense.weight", 4, 4],
    ["h.0.mlp.c_fc.weight", "mlp.dense_h_to_4h.weight", 4, 6],
    ["h.0.mlp.c_proj.weight", "mlp.dense_4h_to_h.weight", 6, 4],
  ] as const;
  for (const [name, theirs, inputs, outputs] of linear) {
    const [shape, values] = stored.get(`gpt_neox.layers.0.${theirs}`)!;
    assertEquals(shape, [outputs, inputs], theirs);
    const w = ours(name); // [in, out]
    for (let o = 0; o < outputs; o++) {
      for (let i = 0; i < inputs; i++) {
        assertEquals(
          values[o * inputs + i],
          w[i * outputs + o],
          `${theirs}[${o}, ${i}]`,
        );
      }
    }
  }
  const same = [
    ["wte.weight", "gpt_neox.embed_in.weight"],
    ["h.0.ln_1.weight", "gpt_neox.layers.0.input_layernorm.weight"],
    ["h.0.ln_2.bias", "gpt_neox.layers.0.post_attention_layernorm.bias"],
    ["h.0.attn.c_proj.bias", "gpt_neox.layers.0.attention.dense.bias"],
    ["h.0.mlp.c_fc.bias", "gpt_neox.layers.0.mlp.dense_h_to_4h.bias"],
    ["h.0.mlp.c_proj.bias", "gpt_neox.layers.0.mlp.dense_4h_to_h.bias"],
    ["ln_f.weight", "gpt_neox.final_layer_norm.weight"],
    ["ln_f.bias", "gpt_neox.final_layer_norm.bias"],
  ];
  for (const [name, theirs] of same) {
    assertEquals(stored.get(theirs)![1], ours(name), theirs);
  }
});
