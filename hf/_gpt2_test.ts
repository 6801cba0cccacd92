// GPT-2's config and tensor names against the Hugging Face hub's
// openai-community/gpt2 (config.json and model.safetensors' header, quoted
// below) and transformers' GPT2Config defaults: an independent reference for
// the names, the Conv1D [in, out] shapes and the config fields that the
// export → import round trip cannot check (a mistake made the same way in
// both directions cancels out there).
import { assertEquals } from "@std/assert";
import { gpt2Config, gpt2Import, gpt2Tensors } from "./_gpt2.ts";

// openai-community/gpt2's model.safetensors: tensor → shape, GPT-2 small.
function hubTensors(): Map<string, number[]> {
  const out = new Map<string, number[]>([
    ["wte.weight", [50257, 768]],
    ["wpe.weight", [1024, 768]],
  ]);
  for (let l = 0; l < 12; l++) {
    const h = `h.${l}.`;
    out.set(`${h}ln_1.weight`, [768]).set(`${h}ln_1.bias`, [768]);
    out.set(`${h}attn.bias`, [1, 1, 1024, 1024]);
    out.set(`${h}attn.c_attn.weight`, [768, 2304]);
    out.set(`${h}attn.c_attn.bias`, [2304]);
    out.set(`${h}attn.c_proj.weight`, [768, 768]);
    out.set(`${h}attn.c_proj.bias`, [768]);
    out.set(`${h}ln_2.weight`, [768]).set(`${h}ln_2.bias`, [768]);
    out.set(`${h}mlp.c_fc.weight`, [768, 3072]);
    out.set(`${h}mlp.c_fc.bias`, [3072]);
    out.set(`${h}mlp.c_proj.weight`, [3072, 768]);
    out.set(`${h}mlp.c_proj.bias`, [768]);
  }
  return out.set("ln_f.weight", [768]).set("ln_f.bias", [768]);
}

// The attention mask buffers GPT-2 stores (`h.N.attn.bias`), not weights.
const MASK = /\.attn\.bias$/;

const SMALL = {
  kind: "causal",
  vocabSize: 50257,
  contextLength: 1024,
  nLayer: 12,
  nHead: 12,
  dModel: 768,
  dMlp: 3072,
  positions: "learned",
  timeConditioning: false,
  dTime: 128,
  dropout: 0.1,
} as const;

Deno.test("gpt2Import() of a config.json without keys reads transformers' GPT2Config defaults, and plans the hub's GPT-2 tensors at their stored Conv1D shapes", () => {
  const hub = hubTensors();
  const plan = gpt2Import({}, [...hub.keys()]);
  const { vocabSize: _, ...model } = SMALL;
  assertEquals(plan.model, model);
  assertEquals(plan.vocabSize, 50257);
  assertEquals(plan.tied, true);
  assertEquals(plan.embedding, "wte.weight");
  assertEquals(plan.head, undefined);
  // Every stored tensor is read at its stored shape, or dropped (the
  // attention mask buffers): none transposed, none missed.
  const read = new Map(plan.tensors.map((t) => [t.source, t.sourceShape]));
  for (const [name, shape] of hub) {
    if (MASK.test(name)) continue;
    if (name === "wte.weight") continue;
    assertEquals(read.get(name), shape, name);
  }
  assertEquals(read.size, hub.size - 12 - 1);
  assertEquals(plan.dropped.length, 12);
  // GPT2LMHeadModel's names carry `transformer.`; its head is lm_head.
  const prefixed = [...hub.keys()].map((n) => `transformer.${n}`);
  const lm = gpt2Import({ n_inner: 3072 }, [...prefixed, "lm_head.weight"]);
  assertEquals(lm.embedding, "transformer.wte.weight");
  assertEquals(lm.head, "lm_head.weight");
  assertEquals(
    lm.tensors.map((t) => t.source).sort(),
    prefixed.filter((n) => !MASK.test(n) && !n.endsWith("wte.weight"))
      .sort(),
  );
});

Deno.test("gpt2Config() of GPT-2 small is the hub's openai-community/gpt2 config.json, field for field, and gpt2Tensors() its names and shapes", () => {
  const config = gpt2Config(SMALL, {
    bos: 50256,
    eos: 50256,
    pad: 50256,
    mask: 50256,
  });
  // openai-community/gpt2/config.json (the keys it has).
  const hub = {
    activation_function: "gelu_new",
    architectures: ["GPT2LMHeadModel"],
    attn_pdrop: 0.1,
    bos_token_id: 50256,
    embd_pdrop: 0.1,
    eos_token_id: 50256,
    initializer_range: 0.02,
    layer_norm_epsilon: 1e-05,
    model_type: "gpt2",
    n_ctx: 1024,
    n_embd: 768,
    n_head: 12,
    n_layer: 12,
    n_positions: 1024,
    resid_pdrop: 0.1,
    vocab_size: 50257,
  };
  for (const [key, value] of Object.entries(hub)) {
    assertEquals(config[key], value, key);
  }
  // The importer reads back what the exporter writes.
  const back = gpt2Import(config, [...hubTensors().keys()]);
  const { vocabSize: _, ...model } = SMALL;
  assertEquals(back.model, model);
  const hubShapes = hubTensors();
  const exported = gpt2Tensors(SMALL);
  assertEquals(exported.length, hubShapes.size - 12);
  for (const t of exported) {
    const name = t.name.replace(/^transformer\./, "");
    assertEquals(t.shape, hubShapes.get(name), t.name);
  }
});
