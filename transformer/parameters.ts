/**
 * The parameter naming scheme, the shape of every parameter, and the
 * closed-form parameter count.
 *
 * @module
 */

import type { ModelConfig } from "./config.ts";

/**
 * The shape of every parameter, in the canonical order (the order of
 * initialisation and of the safetensors file).
 *
 * Names follow GPT-2 (Hugging Face `GPT2Model`, whose `Conv1D` weights are
 * stored `[in, out]` exactly as here), so a GPT-2 checkpoint maps onto this
 * scheme name for name (drop a `transformer.` prefix where present; grow
 * `wte.weight` by our extra special-token rows):
 *
 * | name | shape | note |
 * |---|---|---|
 * | `wte.weight` | `[V, d]` | token embedding, tied to the output head |
 * | `wpe.weight` | `[T, d]` | learned positions only |
 * | `h.{i}.ln_1.weight`, `.bias` | `[d]` | LayerNorm before attention |
 * | `h.{i}.attn.c_attn.weight`, `.bias` | `[d, 3d]`, `[3d]` | q, k, v (in that order) |
 * | `h.{i}.attn.c_proj.weight`, `.bias` | `[d, d]`, `[d]` | attention output |
 * | `h.{i}.ln_2.weight`, `.bias` | `[d]` | LayerNorm before the MLP |
 * | `h.{i}.mlp.c_fc.weight`, `.bias` | `[d, dMlp]`, `[dMlp]` | |
 * | `h.{i}.mlp.c_proj.weight`, `.bias` | `[dMlp, d]`, `[d]` | |
 * | `ln_f.weight`, `.bias` | `[d]` | final LayerNorm |
 *
 * Time conditioning (only when `timeConditioning` is true) adds:
 *
 * | name | shape | note |
 * |---|---|---|
 * | `time.mlp.c_fc.weight`, `.bias` | `[dTime, dTime]`, `[dTime]` | on sinusoidal features of t |
 * | `time.mlp.c_proj.weight`, `.bias` | `[dTime, dTime]`, `[dTime]` | |
 * | `h.{i}.ada.weight`, `.bias` | `[dTime, 6d]`, `[6d]` | shift, scale, gate for attention then MLP |
 * | `ln_f.ada.weight`, `.bias` | `[dTime, 2d]`, `[2d]` | shift, scale after `ln_f` |
 *
 * @param config A validated configuration.
 * @returns Name → shape, in canonical order.
 *
 * @example
 * ```ts
 * import { parameterShapes, preset } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * const shapes = parameterShapes(preset("tiny"));
 * assertEquals(shapes.get("h.0.attn.c_attn.weight"), [128, 384]);
 * ```
 */
export function parameterShapes(config: ModelConfig): Map<string, number[]> {
  const { vocabSize: v, contextLength: t, dModel: d, dMlp: m, dTime } = config;
  const shapes = new Map<string, number[]>();
  shapes.set("wte.weight", [v, d]);
  if (config.positions === "learned") shapes.set("wpe.weight", [t, d]);
  for (let i = 0; i < config.nLayer; i++) {
    const h = `h.${i}`;
    shapes.set(`${h}.ln_1.weight`, [d]);
    shapes.set(`${h}.ln_1.bias`, [d]);
    shapes.set(`${h}.attn.c_attn.weight`, [d, 3 * d]);
    shapes.set(`${h}.attn.c_attn.bias`, [3 * d]);
    shapes.set(`${h}.attn.c_proj.weight`, [d, d]);
    shapes.set(`${h}.attn.c_proj.bias`, [d]);
    shapes.set(`${h}.ln_2.weight`, [d]);
    shapes.set(`${h}.ln_2.bias`, [d]);
    shapes.set(`${h}.mlp.c_fc.weight`, [d, m]);
    shapes.set(`${h}.mlp.c_fc.bias`, [m]);
    shapes.set(`${h}.mlp.c_proj.weight`, [m, d]);
    shapes.set(`${h}.mlp.c_proj.bias`, [d]);
  }
  shapes.set("ln_f.weight", [d]);
  shapes.set("ln_f.bias", [d]);
  if (config.timeConditioning) {
    // Listed last so that the base weights drawn from a seed do not depend on
    // whether the model is time-conditioned.
    shapes.set("time.mlp.c_fc.weight", [dTime, dTime]);
    shapes.set("time.mlp.c_fc.bias", [dTime]);
    shapes.set("time.mlp.c_proj.weight", [dTime, dTime]);
    shapes.set("time.mlp.c_proj.bias", [dTime]);
    for (let i = 0; i < config.nLayer; i++) {
      shapes.set(`h.${i}.ada.weight`, [dTime, 6 * d]);
      shapes.set(`h.${i}.ada.bias`, [6 * d]);
    }
    shapes.set("ln_f.ada.weight", [dTime, 2 * d]);
    shapes.set("ln_f.ada.bias", [2 * d]);
  }
  return shapes;
}

/**
 * The number of trainable scalars, in closed form (the tied output head adds
 * none).
 *
 * The `paper` preset (GPT-2 small, vocabulary 50257 + 4 special tokens,
 * context 1024) has exactly 124,442,880 parameters: GPT-2's 124,439,808
 * plus 4 · 768 for the special-token embeddings.
 *
 * @param config A validated configuration.
 * @returns The parameter count.
 *
 * @example
 * ```ts
 * import { parameterCount, preset } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * assertEquals(parameterCount(preset("paper")), 124_442_880);
 * ```
 */
export function parameterCount(config: ModelConfig): number {
  const { vocabSize: v, contextLength: t, dModel: d, dMlp: m, dTime } = config;
  const positions = config.positions === "learned" ? t * d : 0;
  // 2 LayerNorms, qkv, attention output, MLP in and out (weights + biases).
  const block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) +
    (d * m + m) + (m * d + d);
  let total = v * d + positions + config.nLayer * block + 2 * d;
  if (config.timeConditioning) {
    total += 2 * (dTime * dTime + dTime) + // time MLP
      config.nLayer * (dTime * 6 * d + 6 * d) + // per-block adaLN
      (dTime * 2 * d + 2 * d); // final adaLN
  }
  return total;
}
