// Seeded initial values: normals by Box–Muller from the project PRNG, so the
// same seed gives the same weights on every backend.

import type { Prng, StoredTensor } from "@d3pm/core";
import type { ModelConfig } from "./config.ts";
import { parameterShapes } from "./parameters.ts";

/** `size` draws from N(0, std²). */
export function normals(rng: Prng, size: number, std: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i += 2) {
    // 1 - next() is in (0, 1], so the log is finite.
    const r = Math.sqrt(-2 * Math.log(1 - rng.next())) * std;
    const theta = 2 * Math.PI * rng.next();
    out[i] = r * Math.cos(theta);
    if (i + 1 < size) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}

/** How a parameter starts, by its name (GPT-2 scheme, see parameters.ts). */
export type InitRule =
  | { kind: "normal"; std: number }
  | { kind: "constant"; value: number };

/**
 * GPT-2 initialisation: weights N(0, 0.02²), residual output projections
 * N(0, (0.02/√(2·nLayer))²) because each block adds two of them to the
 * residual stream, LayerNorm gains 1, biases 0, and the adaLN projections 0
 * so that an untrained time-conditioned model equals the unconditioned one.
 * The time MLP is N(0, 1/dTime) (LeCun, the scale of MDLM's default-initialised
 * torch Linear): at 0.02 its output would be ~1e-3 and t would reach the
 * adaLN projections only as a whisper.
 */
export function initRule(
  name: string,
  nLayer: number,
  dTime: number,
): InitRule {
  if (name.endsWith(".ada.weight") || name.endsWith(".bias")) {
    return { kind: "constant", value: 0 };
  }
  if (/^(h\.\d+\.ln_[12]|ln_f)\.weight$/.test(name)) {
    return { kind: "constant", value: 1 };
  }
  if (name.startsWith("time.mlp.")) {
    return { kind: "normal", std: 1 / Math.sqrt(dTime) };
  }
  if (/^h\.\d+\.(attn|mlp)\.c_proj\.weight$/.test(name)) {
    return { kind: "normal", std: 0.02 / Math.sqrt(2 * nLayer) };
  }
  return { kind: "normal", std: 0.02 };
}

/**
 * Every parameter of a validated config drawn from `rng` in canonical order
 * by its {@linkcode initRule} (constants draw nothing). The one source of
 * initial weights: `initialWeights` and the `Transformer` both call it.
 */
export function drawWeights(
  config: ModelConfig,
  rng: Prng,
): Map<string, StoredTensor> {
  const out = new Map<string, StoredTensor>();
  for (const [name, shape] of parameterShapes(config)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const rule = initRule(name, config.nLayer, config.dTime);
    const data = rule.kind === "normal"
      ? normals(rng, size, rule.std)
      : new Float32Array(size).fill(rule.value);
    out.set(name, { shape, data });
  }
  return out;
}
