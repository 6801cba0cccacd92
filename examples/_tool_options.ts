// The options `deno task sample` and `deno task infill` share: which run,
// model and seed, the unmasking steps and strategy, the sampler's seed, the
// engine, and quiet output. The model choices come from the registry. Also
// the entries the run-reading tools (evaluate, export, import) share, each
// defined once here.
import { contestants } from "@d3pm/experiment";

/** `--run DIR`: the run folder a tool reads. */
export const RUN_OPTION = {
  kind: "string",
  value: "DIR",
  default: "runs/latest",
  help: "the run folder",
} as const;

/**
 * `--temperature`: the samplers' softmax temperature; 0 is greedy (sample,
 * infill).
 */
export const TEMPERATURE_OPTION = {
  kind: "number",
  min: 0,
  default: 1,
  note: "0: greedy",
  help:
    "softmax temperature; 0 is greedy: the most likely token at each draw (a denoiser's greedy unmasking runs on --engine tfjs or cpu)",
} as const;

/**
 * `--seed`: which seed's model of the run (none: the run's first seed, 0
 * unless it was made with `--first-seed`).
 */
export const SEED_OPTION = {
  kind: "integer",
  min: 0,
  help: "which seed's model (default: the run's first seed)",
} as const;

/** `--model NAME`: any contestant the run trained (evaluate, export). */
export const TRAINED_MODEL_OPTION = {
  kind: "string",
  value: "NAME",
  default: "ar",
  help: `the contestant: ${
    contestants().map((c) => c.kind).join(", ")
  } (one the run trained)`,
} as const;

/** `--force`: replace an existing `--to` (export, import). */
export const FORCE_OPTION = {
  kind: "boolean",
  default: false,
  help:
    "replace an existing --to that this command wrote (or an empty folder); any other folder or file is kept",
} as const;

/**
 * The shared options; `--model` offers the registered contestants (those
 * that fill blanks, for infill).
 */
export function toolOptions(forInfill: boolean) {
  const models = contestants().filter((c) => !forInfill || c.unmasking)
    .map((c) => c.kind);
  return {
    run: RUN_OPTION,
    model: {
      kind: "choice",
      choices: models,
      default: "d3pm",
      value: "NAME",
      help: "the contestant",
    },
    seed: SEED_OPTION,
    steps: {
      kind: "integer",
      min: 1,
      help: "unmasking steps (default min(64, T))",
    },
    strategy: {
      kind: "choice",
      choices: ["ancestral", "confidence"],
      help:
        "unmasking strategy (default: ancestral for the D3PM, confidence for the MLM)",
    },
    rng: {
      kind: "integer",
      min: 0,
      // The sampler's PRNG takes a 32-bit seed: a larger one would wrap.
      max: 2 ** 32 - 1,
      default: 0,
      help: "seed of the sampler",
    },
    engine: {
      kind: "choice",
      choices: ["tfjs", "webgpu", "cpu", "auto"],
      default: "tfjs",
      help:
        `tfjs, webgpu (the fused engine: the whole sampler on the GPU; a denoiser's steps are shown, at one sync per step), cpu (the fused plan on the CPU kernels: KV-cache decoding; a denoiser's steps are shown) or auto (webgpu on a real GPU, else cpu; tfjs if the CPU kernels cannot start). The engine used is printed on stderr${
          forInfill ? "" : ". A --prompt works on every engine"
        }`,
    },
    quiet: {
      kind: "boolean",
      default: false,
      help: "print only the final text",
    },
  } as const;
}
