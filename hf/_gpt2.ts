// GPT-2 (`GPT2LMHeadModel`): the project's causal model with learned
// positions is GPT-2 name for name — its Conv1D weights are stored [in, out]
// as the project stores them — and the head is tied to `wte`.

import { type ModelConfig, parameterShapes } from "@d3pm/transformer";
import {
  boolean,
  type ExportTensor,
  type ImportPlan,
  layerCount,
  positive,
  rate,
  requireEpsilon,
  requireValue,
  type SpecialIds,
  TANH_GELU,
} from "./_architecture.ts";
import { InteropError } from "./errors.ts";

/** GPT-2's `config.json` for a project model. */
export function gpt2Config(
  model: ModelConfig,
  ids: SpecialIds,
): Record<string, unknown> {
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: model.vocabSize,
    n_positions: model.contextLength,
    n_ctx: model.contextLength,
    n_embd: model.dModel,
    n_layer: model.nLayer,
    n_head: model.nHead,
    n_inner: model.dMlp,
    activation_function: "gelu_new",
    resid_pdrop: model.dropout,
    embd_pdrop: model.dropout,
    attn_pdrop: model.dropout,
    layer_norm_epsilon: 1e-5,
    initializer_range: 0.02,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: true,
    use_cache: true,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    torch_dtype: "float32",
  };
}

/** The exported tensors: the project's, under `transformer.`. */
export function gpt2Tensors(model: ModelConfig): ExportTensor[] {
  return [...parameterShapes(model)].map(([name, shape]) => ({
    name: `transformer.${name}`,
    shape,
    values: (w) => w(name),
  }));
}

const DROPPED = /^h\.\d+\.(attn|crossattention)\.(bias|masked_bias)$/;

/**
 * Read a GPT-2 config and its tensor names for import.
 *
 * @param config The parsed `config.json`.
 * @param names The checkpoint's tensor names.
 * @returns The plan.
 * @throws {InteropError} For a config the project's model cannot run.
 */
export function gpt2Import(
  config: Record<string, unknown>,
  names: readonly string[],
): ImportPlan {
  // transformers' GPT2Config defaults, used where a key is absent.
  const dModel = positive(config, "n_embd", 768);
  const nHead = positive(config, "n_head", 12);
  const nLayer = layerCount(config, "n_layer", names.length, 12);
  const contextLength = positive(config, "n_positions", 1024);
  const inner = config.n_inner ?? null;
  const dMlp = inner === null ? 4 * dModel : positive(config, "n_inner");
  if (dModel % nHead !== 0) {
    throw new InteropError(
      `config.json: n_head ${nHead} does not divide n_embd ${dModel}`,
    );
  }
  requireValue(
    config,
    "activation_function",
    TANH_GELU,
    "gelu_new",
    "uses GELU's tanh approximation",
  );
  requireEpsilon(config, "layer_norm_epsilon");
  requireValue(
    config,
    "scale_attn_weights",
    [true],
    true,
    "scales attention by 1/√head size",
  );
  requireValue(
    config,
    "scale_attn_by_inverse_layer_idx",
    [false],
    false,
    "does not scale attention by layer",
  );
  requireValue(
    config,
    "add_cross_attention",
    [false],
    false,
    "has no cross-attention",
  );
  const model: Omit<ModelConfig, "vocabSize"> = {
    kind: "causal",
    contextLength,
    nLayer,
    nHead,
    dModel,
    dMlp,
    positions: "learned",
    timeConditioning: false,
    dTime: 128,
    dropout: rate(config, "resid_pdrop", 0.1),
  };
  // Names with or without the `transformer.` prefix of GPT2LMHeadModel.
  const prefix = names.some((n) => n.startsWith("transformer."))
    ? "transformer."
    : "";
  const tensors = [...parameterShapes({ ...model, vocabSize: 1 })]
    .filter(([name]) => name !== "wte.weight")
    .map(([name, shape]) => ({
      name,
      source: prefix + name,
      sourceShape: shape,
    }));
  const dropped = names.filter((n) =>
    n.startsWith(prefix) && DROPPED.test(n.slice(prefix.length))
  );
  return {
    model,
    embedding: `${prefix}wte.weight`,
    tensors,
    ...(names.includes("lm_head.weight") ? { head: "lm_head.weight" } : {}),
    tied: boolean(config, "tie_word_embeddings", true),
    dropped,
    vocabSize: positive(config, "vocab_size", 50257),
  };
}
