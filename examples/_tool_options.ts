// The options `deno task sample` and `deno task infill` share: which run,
// model and seed, the unmasking steps and strategy, the sampler's seed, the
// engine, and quiet output. The model choices come from the registry.
import { contestants } from "@d3pm/experiment";

/**
 * The shared options; `--model` offers the registered contestants (those
 * that fill blanks, for infill).
 */
export function toolOptions(forInfill: boolean) {
  const models = contestants().filter((c) => !forInfill || c.unmasking)
    .map((c) => c.kind);
  return {
    run: {
      kind: "string",
      value: "DIR",
      default: "runs/latest",
      help: "the run folder",
    },
    model: {
      kind: "choice",
      choices: models,
      default: "d3pm",
      value: "NAME",
      help: "the contestant",
    },
    seed: { kind: "integer", min: 0, default: 0, help: "which seed's model" },
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
        "tfjs, webgpu (the fused engine: the whole sampler on the GPU, one sync per sample, no intermediate steps shown), cpu (the fused plan on the CPU kernels: KV-cache decoding, no intermediate steps shown) or auto (webgpu on a real GPU, else cpu; tfjs if the CPU kernels cannot start). A --prompt works on every engine",
    },
    quiet: {
      kind: "boolean",
      default: false,
      help: "print only the final text",
    },
  } as const;
}
