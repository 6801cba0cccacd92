// What the three architectures (GPT-2, GPT-NeoX, the project's own D3PM
// code) have in common: how a project model's tensors become theirs on
// export, and how theirs become the project's on import.

import type { ModelConfig } from "@d3pm/transformer";
import { InteropError } from "./errors.ts";

/** The project's special ids, which a config names. */
export interface SpecialIds {
  /** Beginning of a document. */
  bos: number;
  /** End of a document. */
  eos: number;
  /** Padding. */
  pad: number;
  /** The mask. */
  mask: number;
}

/** The project's weights by name, float32, read when asked for. */
export type Weights = (name: string) => Promise<Float32Array>;

/** A tensor of an export: its name and shape there, and its values from ours. */
export interface ExportTensor {
  /** Name in the exported file. */
  name: string;
  /** Shape there. */
  shape: number[];
  /** Its values, computed from the project's weights. */
  values(w: Weights): Promise<Float32Array>;
}

/** How one of the project's tensors is made on import. */
export interface ImportTensor {
  /** The project's name (see `parameterShapes`). */
  name: string;
  /** The checkpoint's tensor it comes from. */
  source: string;
  /** The shape the checkpoint must store. */
  sourceShape: number[];
  /** Turns the stored values (converted to float32) into ours (default: as they are). */
  convert?: (stored: Float32Array) => Float32Array;
}

/** What an architecture's config and tensor names say, read for import. */
export interface ImportPlan {
  /** The model, but for its vocabulary size (the embedding's rows decide). */
  model: Omit<ModelConfig, "vocabSize">;
  /** The embedding's name in the checkpoint. */
  embedding: string;
  /** Every tensor but the embedding: ours from theirs. */
  tensors: ImportTensor[];
  /** The output head's name, when the checkpoint stores one. */
  head?: string;
  /** Whether the config ties the head to the embedding. */
  tied: boolean;
  /** Buffers and caches dropped (attention masks, rotary tables). */
  dropped: string[];
  /** The config's vocabulary size. */
  vocabSize: number;
}

/** `x` [rows, cols] transposed to [cols, rows]. */
export function transpose(
  x: Float32Array,
  rows: number,
  cols: number,
): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c];
  }
  return out;
}

/**
 * A config value, or `fallback` when the key is absent. An explicit null is
 * a value, not an absence: transformers 5 refuses it for a typed field, and
 * transformers 4 keeps it as None, which its code reads as false
 * (`scale_attn_weights: null` gives `scaling = 1.0`: no 1/√head size), so it
 * is checked like any other value and refused where the project needs
 * another.
 */
function given(
  config: Record<string, unknown>,
  key: string,
  fallback: unknown,
): unknown {
  return Object.hasOwn(config, key) ? config[key] : fallback;
}

/** A config value that must be a positive integer (its default when absent). */
export function positive(
  config: Record<string, unknown>,
  key: string,
  fallback?: number,
): number {
  const v = given(config, key, fallback);
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new InteropError(
      `config.json: ${key} must be a positive integer, got ${
        JSON.stringify(v)
      }`,
    );
  }
  return v;
}

/**
 * The layer count of a config: a positive integer no larger than the number
 * of tensors the checkpoint stores (every layer has several), checked before
 * any plan is built — n_layer 10^7 had the importer list 120 million tensor
 * names and die out of memory.
 */
export function layerCount(
  config: Record<string, unknown>,
  key: string,
  stored: number,
  fallback?: number,
): number {
  const n = positive(config, key, fallback);
  if (n > stored) {
    throw new InteropError(
      `config.json: ${key} is ${n}, more layers than the checkpoint's ${stored} tensors can hold`,
    );
  }
  return n;
}

/** A config value that must be true or false (its default when absent). */
export function boolean(
  config: Record<string, unknown>,
  key: string,
  fallback: boolean,
): boolean {
  const v = given(config, key, fallback);
  if (typeof v !== "boolean") {
    throw new InteropError(
      `config.json: ${key} must be true or false, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/** A config value that must be in [0, 1) (dropout; its default when absent). */
export function rate(
  config: Record<string, unknown>,
  key: string,
  fallback: number,
): number {
  const v = given(config, key, fallback);
  if (typeof v !== "number" || !(v >= 0 && v < 1)) {
    throw new InteropError(
      `config.json: ${key} must be a number in [0, 1), got ${
        JSON.stringify(v)
      }`,
    );
  }
  return v;
}

/** Refuse a config value the project's model cannot reproduce. */
export function requireValue(
  config: Record<string, unknown>,
  key: string,
  accepted: readonly unknown[],
  fallback: unknown,
  why: string,
): void {
  const v = given(config, key, fallback);
  if (!accepted.some((a) => a === v)) {
    throw new InteropError(
      `config.json: ${key} is ${
        JSON.stringify(v)
      }; the project's model ${why} (accepted: ${
        accepted.map((a) => JSON.stringify(a)).join(", ")
      })`,
    );
  }
}

/** The GELU spellings of transformers that are the project's (tanh approximation). */
export const TANH_GELU: readonly string[] = [
  "gelu_new",
  "gelu_pytorch_tanh",
  "gelu_fast",
];

/** Refuse a layer-norm epsilon other than the project's 1e-5. */
export function requireEpsilon(
  config: Record<string, unknown>,
  key: string,
): void {
  const v = given(config, key, 1e-5);
  if (typeof v !== "number" || Math.abs(v - 1e-5) > 1e-12) {
    throw new InteropError(
      `config.json: ${key} is ${
        JSON.stringify(v)
      }; the project's LayerNorm uses 1e-5 (accepted: 1e-5)`,
    );
  }
}
