// GPT-NeoX (`GPTNeoXForCausalLM`): the project's causal model with rotary
// positions is GPT-NeoX with sequential residuals (`use_parallel_residual:
// false`), rotary on every channel of a head (`rotary_pct` 1) with base
// 10000 in the "rotate half" layout, GELU's tanh approximation, LayerNorm
// ε 1e-5, biases, and a tied head. Its fused query_key_value interleaves
// heads ([q, k, v] per head) where the project's c_attn puts all queries,
// then keys, then values; its Linear weights are [out, in].

import { type ModelConfig, parameterShapes } from "@d3pm/transformer";
import {
  boolean,
  type ExportTensor,
  type ImportPlan,
  type ImportTensor,
  layerCount,
  positive,
  rate,
  requireEpsilon,
  requireValue,
  type SpecialIds,
  TANH_GELU,
  transpose,
} from "./_architecture.ts";
import { InteropError } from "./errors.ts";

/** The rotary base of the project (`ropeTables`). */
const ROPE_BASE = 10000;

/**
 * Why a causal rotary model cannot be GPT-NeoX, or undefined when it is.
 * The project's block is exactly GPT-NeoX's sequential one; only what
 * GPT-NeoX has no place for is refused.
 */
export function neoxRefusal(model: ModelConfig): string | undefined {
  if (model.kind !== "causal") return "it is not a causal model";
  if (model.positions !== "rotary") return "it does not use rotary positions";
  if (model.timeConditioning) {
    return "it is time-conditioned (adaLN), which GPT-NeoX and Llama have no place for";
  }
  if (model.alibi) {
    return "it has an ALiBi prior, which GPT-NeoX has no place for";
  }
  return undefined;
}

/** GPT-NeoX's `config.json` for a project model. */
export function neoxConfig(
  model: ModelConfig,
  ids: SpecialIds,
): Record<string, unknown> {
  return {
    architectures: ["GPTNeoXForCausalLM"],
    model_type: "gpt_neox",
    vocab_size: model.vocabSize,
    hidden_size: model.dModel,
    num_hidden_layers: model.nLayer,
    num_attention_heads: model.nHead,
    intermediate_size: model.dMlp,
    hidden_act: "gelu_new",
    max_position_embeddings: model.contextLength,
    rotary_pct: 1.0,
    rotary_emb_base: ROPE_BASE,
    rope_parameters: {
      rope_type: "default",
      rope_theta: ROPE_BASE,
      partial_rotary_factor: 1.0,
    },
    use_parallel_residual: false,
    attention_bias: true,
    layer_norm_eps: 1e-5,
    attention_dropout: model.dropout,
    hidden_dropout: model.dropout,
    initializer_range: 0.02,
    tie_word_embeddings: true,
    use_cache: true,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    torch_dtype: "float32",
  };
}

// Row o of query_key_value (head h, part p ∈ {q, k, v}, channel j) is
// column p·d + h·hd + j of c_attn.
function qkvColumn(o: number, d: number, hd: number): number {
  const h = Math.floor(o / (3 * hd));
  const p = Math.floor((o % (3 * hd)) / hd);
  return p * d + h * hd + (o % hd);
}

/** c_attn.weight [d, 3d] → query_key_value.weight [3d, d]. */
export function qkvWeightToNeox(
  w: Float32Array,
  d: number,
  hd: number,
): Float32Array {
  const out = new Float32Array(w.length);
  for (let o = 0; o < 3 * d; o++) {
    const c = qkvColumn(o, d, hd);
    for (let i = 0; i < d; i++) out[o * d + i] = w[i * 3 * d + c];
  }
  return out;
}

/** query_key_value.weight [3d, d] → c_attn.weight [d, 3d]. */
export function qkvWeightFromNeox(
  w: Float32Array,
  d: number,
  hd: number,
): Float32Array {
  const out = new Float32Array(w.length);
  for (let o = 0; o < 3 * d; o++) {
    const c = qkvColumn(o, d, hd);
    for (let i = 0; i < d; i++) out[i * 3 * d + c] = w[o * d + i];
  }
  return out;
}

function qkvBias(
  b: Float32Array,
  d: number,
  hd: number,
  toNeox: boolean,
): Float32Array {
  const out = new Float32Array(b.length);
  for (let o = 0; o < 3 * d; o++) {
    const c = qkvColumn(o, d, hd);
    if (toNeox) out[o] = b[c];
    else out[c] = b[o];
  }
  return out;
}

// The project's name of each GPT-NeoX tensor, with how the values move.
function layerPairs(model: Omit<ModelConfig, "vocabSize">, i: number) {
  const d = model.dModel, m = model.dMlp, hd = d / model.nHead;
  const ours = `h.${i}`, theirs = `gpt_neox.layers.${i}`;
  return [
    {
      ours: `${ours}.ln_1.weight`,
      theirs: `${theirs}.input_layernorm.weight`,
      shape: [d],
    },
    {
      ours: `${ours}.ln_1.bias`,
      theirs: `${theirs}.input_layernorm.bias`,
      shape: [d],
    },
    {
      ours: `${ours}.attn.c_attn.weight`,
      theirs: `${theirs}.attention.query_key_value.weight`,
      shape: [3 * d, d],
      out: (x: Float32Array) => qkvWeightToNeox(x, d, hd),
      back: (x: Float32Array) => qkvWeightFromNeox(x, d, hd),
    },
    {
      ours: `${ours}.attn.c_attn.bias`,
      theirs: `${theirs}.attention.query_key_value.bias`,
      shape: [3 * d],
      out: (x: Float32Array) => qkvBias(x, d, hd, true),
      back: (x: Float32Array) => qkvBias(x, d, hd, false),
    },
    {
      ours: `${ours}.attn.c_proj.weight`,
      theirs: `${theirs}.attention.dense.weight`,
      shape: [d, d],
      out: (x: Float32Array) => transpose(x, d, d),
      back: (x: Float32Array) => transpose(x, d, d),
    },
    {
      ours: `${ours}.attn.c_proj.bias`,
      theirs: `${theirs}.attention.dense.bias`,
      shape: [d],
    },
    {
      ours: `${ours}.ln_2.weight`,
      theirs: `${theirs}.post_attention_layernorm.weight`,
      shape: [d],
    },
    {
      ours: `${ours}.ln_2.bias`,
      theirs: `${theirs}.post_attention_layernorm.bias`,
      shape: [d],
    },
    {
      ours: `${ours}.mlp.c_fc.weight`,
      theirs: `${theirs}.mlp.dense_h_to_4h.weight`,
      shape: [m, d],
      out: (x: Float32Array) => transpose(x, d, m),
      back: (x: Float32Array) => transpose(x, m, d),
    },
    {
      ours: `${ours}.mlp.c_fc.bias`,
      theirs: `${theirs}.mlp.dense_h_to_4h.bias`,
      shape: [m],
    },
    {
      ours: `${ours}.mlp.c_proj.weight`,
      theirs: `${theirs}.mlp.dense_4h_to_h.weight`,
      shape: [d, m],
      out: (x: Float32Array) => transpose(x, m, d),
      back: (x: Float32Array) => transpose(x, d, m),
    },
    {
      ours: `${ours}.mlp.c_proj.bias`,
      theirs: `${theirs}.mlp.dense_4h_to_h.bias`,
      shape: [d],
    },
  ];
}

/** The exported tensors, in GPT-NeoX's names and layouts. */
export function neoxTensors(model: ModelConfig): ExportTensor[] {
  const d = model.dModel;
  const out: ExportTensor[] = [{
    name: "gpt_neox.embed_in.weight",
    shape: [model.vocabSize, d],
    values: (w) => w("wte.weight"),
  }];
  for (let i = 0; i < model.nLayer; i++) {
    for (const p of layerPairs(model, i)) {
      out.push({
        name: p.theirs,
        shape: p.shape,
        values: async (w) => (p.out ? p.out(await w(p.ours)) : w(p.ours)),
      });
    }
  }
  out.push(
    {
      name: "gpt_neox.final_layer_norm.weight",
      shape: [d],
      values: (w) => w("ln_f.weight"),
    },
    {
      name: "gpt_neox.final_layer_norm.bias",
      shape: [d],
      values: (w) => w("ln_f.bias"),
    },
  );
  return out;
}

const DROPPED =
  /^gpt_neox\.(layers\.\d+\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)|rotary_emb\.inv_freq)$/;

/**
 * Read a GPT-NeoX config for import: only the project's convention (see the
 * module doc) is accepted.
 *
 * @param config The parsed `config.json`.
 * @param names The checkpoint's tensor names.
 * @returns The plan.
 * @throws {InteropError} Naming the first setting the project cannot run.
 */
export function neoxImport(
  config: Record<string, unknown>,
  names: readonly string[],
): ImportPlan {
  const dModel = positive(config, "hidden_size");
  const nHead = positive(config, "num_attention_heads");
  if (dModel % nHead !== 0 || (dModel / nHead) % 2 !== 0) {
    throw new InteropError(
      `config.json: num_attention_heads ${nHead} must divide hidden_size ${dModel} into heads of an even size`,
    );
  }
  requireValue(
    config,
    "use_parallel_residual",
    [false],
    true,
    "adds attention and MLP one after the other",
  );
  requireValue(
    config,
    "hidden_act",
    TANH_GELU,
    "gelu",
    "uses GELU's tanh approximation",
  );
  requireEpsilon(config, "layer_norm_eps");
  requireValue(config, "attention_bias", [true], true, "has attention biases");
  // transformers merges rope_scaling into rope_parameters (the scaling's
  // type wins): both are read, and every type either names must be the
  // default — a linear rope_scaling beside default rope_parameters scales
  // the positions there.
  const ropes = ["rope_parameters", "rope_scaling"].flatMap((key) => {
    const v = config[key];
    if (v === undefined || v === null) return [];
    if (typeof v !== "object" || Array.isArray(v)) {
      throw new InteropError(
        `config.json: ${key} must be an object or null, got ${
          JSON.stringify(v)
        }`,
      );
    }
    return [v as Record<string, unknown>];
  });
  const rope: Record<string, unknown> = Object.assign({}, ...ropes);
  const fraction = rope.partial_rotary_factor ?? config.rotary_pct ?? 0.25;
  const base = rope.rope_theta ?? config.rotary_emb_base ?? ROPE_BASE;
  const types = ropes.flatMap((r) => [r.rope_type, r.type])
    .filter((t) => t !== undefined);
  const type = types.find((t) => t !== "default") ?? "default";
  if (fraction !== 1 || base !== ROPE_BASE || type !== "default") {
    throw new InteropError(
      `config.json: rotary embeddings on ${
        JSON.stringify(fraction)
      } of each head with base ${JSON.stringify(base)} (${
        JSON.stringify(type)
      }); the project rotates every channel with base ${ROPE_BASE} (rotary_pct 1, rotary_emb_base ${ROPE_BASE}, default type)`,
    );
  }
  const model: Omit<ModelConfig, "vocabSize"> = {
    kind: "causal",
    contextLength: positive(config, "max_position_embeddings", 2048),
    nLayer: layerCount(config, "num_hidden_layers", names.length),
    nHead,
    dModel,
    dMlp: positive(config, "intermediate_size"),
    positions: "rotary",
    timeConditioning: false,
    dTime: 128,
    dropout: rate(config, "hidden_dropout", 0),
  };
  const tensors: ImportTensor[] = [];
  for (let i = 0; i < model.nLayer; i++) {
    for (const p of layerPairs(model, i)) {
      tensors.push({
        name: p.ours,
        source: p.theirs,
        sourceShape: p.shape,
        ...(p.back ? { convert: p.back } : {}),
      });
    }
  }
  tensors.push(
    {
      name: "ln_f.weight",
      source: "gpt_neox.final_layer_norm.weight",
      sourceShape: [dModel],
    },
    {
      name: "ln_f.bias",
      source: "gpt_neox.final_layer_norm.bias",
      sourceShape: [dModel],
    },
  );
  const order = [...parameterShapes({ ...model, vocabSize: 1 }).keys()];
  tensors.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  const head = ["embed_out.weight", "lm_head.weight"].find((n) =>
    names.includes(n)
  );
  return {
    model,
    embedding: "gpt_neox.embed_in.weight",
    tensors,
    ...(head ? { head } : {}),
    tied: boolean(config, "tie_word_embeddings", false),
    dropped: names.filter((n) => DROPPED.test(n)),
    vocabSize: positive(config, "vocab_size"),
  };
}
