// The project's denoisers (bidirectional, optionally time-conditioned, with
// or without an ALiBi prior) have no architecture in transformers: they are
// exported with the project's own tensor names and `modeling_d3pm.py`
// beside them, which transformers loads with `trust_remote_code=True` (as
// MDLM publishes its checkpoints).

import { type ModelConfig, parameterShapes } from "@d3pm/transformer";
import {
  type ExportTensor,
  type ImportPlan,
  layerCount,
  positive,
  rate,
  requireEpsilon,
  type SpecialIds,
} from "./_architecture.ts";
import { InteropError } from "./errors.ts";

/** The file of Python code exported beside a denoiser. */
export const MODELING_FILE = "modeling_d3pm.py";

/** The text of `modeling_d3pm.py`. */
export async function modelingSource(): Promise<string> {
  const url = new URL(`./${MODELING_FILE}`, import.meta.url);
  if (url.protocol === "file:") return await Deno.readTextFile(url);
  const response = await fetch(url);
  if (!response.ok) {
    throw new InteropError(`Cannot read ${url}: HTTP ${response.status}`);
  }
  return await response.text();
}

/** The denoiser's `config.json` (read by `modeling_d3pm.py`). */
export function d3pmConfig(
  model: ModelConfig,
  ids: SpecialIds,
): Record<string, unknown> {
  return {
    architectures: ["D3PMForMaskedLM"],
    model_type: "d3pm",
    auto_map: {
      AutoConfig: "modeling_d3pm.D3PMConfig",
      AutoModel: "modeling_d3pm.D3PMForMaskedLM",
      AutoModelForMaskedLM: "modeling_d3pm.D3PMForMaskedLM",
    },
    vocab_size: model.vocabSize,
    n_positions: model.contextLength,
    n_embd: model.dModel,
    n_layer: model.nLayer,
    n_head: model.nHead,
    n_inner: model.dMlp,
    positions: model.positions,
    time_conditioning: model.timeConditioning,
    d_time: model.dTime,
    alibi: model.alibi ?? 0,
    alibi_mode: model.alibiMode ?? "symmetric",
    dropout: model.dropout,
    layer_norm_epsilon: 1e-5,
    tie_word_embeddings: true,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    mask_token_id: ids.mask,
    torch_dtype: "float32",
  };
}

/** The exported tensors: the project's own names and layouts. */
export function d3pmTensors(model: ModelConfig): ExportTensor[] {
  return [...parameterShapes(model)].map(([name, shape]) => ({
    name,
    shape,
    values: (w) => w(name),
  }));
}

/**
 * Read a denoiser's config (one this project exported) for import.
 *
 * @param config The parsed `config.json`.
 * @param names The checkpoint's tensor names.
 * @returns The plan.
 * @throws {InteropError} For a value the project's model does not have.
 */
export function d3pmImport(
  config: Record<string, unknown>,
  names: readonly string[],
): ImportPlan {
  const positions = config.positions ?? "learned";
  if (positions !== "learned" && positions !== "rotary") {
    throw new InteropError(
      `config.json: positions is ${
        JSON.stringify(positions)
      } (accepted: "learned", "rotary")`,
    );
  }
  const alibiMode = config.alibi_mode ?? "symmetric";
  if (alibiMode !== "symmetric" && alibiMode !== "neighbours") {
    throw new InteropError(
      `config.json: alibi_mode is ${
        JSON.stringify(alibiMode)
      } (accepted: "symmetric", "neighbours")`,
    );
  }
  const alibi = config.alibi ?? 0;
  if (typeof alibi !== "number" || !(alibi >= 0) || !Number.isFinite(alibi)) {
    throw new InteropError(
      `config.json: alibi must be a number ≥ 0, got ${JSON.stringify(alibi)}`,
    );
  }
  if (typeof (config.time_conditioning ?? false) !== "boolean") {
    throw new InteropError("config.json: time_conditioning must be a boolean");
  }
  requireEpsilon(config, "layer_norm_epsilon");
  const model: Omit<ModelConfig, "vocabSize"> = {
    kind: "bidirectional",
    contextLength: positive(config, "n_positions"),
    nLayer: layerCount(config, "n_layer", names.length),
    nHead: positive(config, "n_head"),
    dModel: positive(config, "n_embd"),
    dMlp: positive(config, "n_inner"),
    positions,
    timeConditioning: (config.time_conditioning ?? false) as boolean,
    dTime: positive(config, "d_time", 128),
    dropout: rate(config, "dropout", 0),
    ...(alibi > 0
      ? { alibi, ...(alibiMode === "neighbours" ? { alibiMode } : {}) }
      : {}),
  };
  const tensors = [...parameterShapes({ ...model, vocabSize: 1 })]
    .filter(([name]) => name !== "wte.weight")
    .map(([name, shape]) => ({ name, source: name, sourceShape: shape }));
  return {
    model,
    embedding: "wte.weight",
    tensors,
    tied: true,
    dropped: [],
    vocabSize: positive(config, "vocab_size"),
  };
}
