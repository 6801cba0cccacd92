/**
 * `deno task experiment`: train an AR Transformer and an absorbing-state
 * D3PM with matched budgets on WikiText, evaluate both, and write a report.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(resolveConfig().preset, "tiny");
 * ```
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import {
  ConfigError,
  type ExperimentConfig,
  PRESETS,
  resolveConfig,
  RESUMABLE_KEYS,
  runExperiment,
} from "@d3pm/experiment";

const kebab = (key: string): string =>
  key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** One line per option for `--help`. */
const DESCRIBE: Partial<Record<keyof ExperimentConfig, string>> = {
  models: "contestants: ar, d3pm, mlm (BERT objective, D3PM's backbone)",
  seeds: "seeds 0..N−1, each a fresh set of models",
  backend: "tfjs backend: auto, tensorflow, webgpu, blas, wasm, cpu",
  engine: "training engine: auto (fused WebGPU on a real GPU), tfjs, webgpu",
  logEvery: "steps between loss readings on the fused engine",
  data:
    "WikiText folder (wiki.{train,valid,test}.tokens|raw[.gz]); empty: embedded WikiText-2",
  out: "run folder",
  resume: "continue the run in --out",
  force: "start afresh in --out; the old run is moved aside",
  tokenizer: "bpe (trained on the train split), gpt2, byte",
  vocabSize: "ids of a trained BPE, special tokens included",
  blockLength: "tokens per block: the models' context",
  timeConditioning: "condition the denoiser on t (adaLN)",
  alibi: "ALiBi slope of the D3PM's and MLM's first head (0: none)",
  alibiMode:
    "symmetric, or neighbours (ALiBi heads 0 and 1 look left and right)",
  steps: "optimiser steps per model (tokens matched)",
  batchSize: "blocks per step",
  lr: "peak learning rate (D3PM, MLM; AR too unless --ar-lr)",
  arLr: "peak learning rate of the AR model and judge (0: --lr)",
  emaDecay: "EMA of the evaluated weights (0: none)",
  diffusionLoss: "mdlm (continuous) or d3pm (discrete hybrid)",
  diffusionSteps: "T of the discrete process",
  tMin: "smallest training time of the D3PM loss",
  tMax: "largest training time (< 1: a clipped mask rate)",
  timesPer: "one training time per row or per token, or a mask count per row",
  evalBlocks: "test blocks evaluated (0: all)",
  validEvery: "steps between validations on the valid split (0: none)",
  validBlocks: "valid blocks per validation",
  keep: "evaluate the last step's weights or the best validation's",
  elboSamples: "draws (by mask count) per test block for the D3PM bound",
  exactBlocks: "test blocks for the exact discrete bound (0: skip)",
  genTokens: "tokens generated per speed measurement (thesis: 100000)",
  genBatch: "rows per generated batch (thesis: 4)",
  genSteps: "D3PM step counts of the speed–quality curve",
  samples: "samples per model in samples.txt",
  infillFraction: "fraction of test tokens hidden for infilling",
  judge: "judge of gen PPL: auto (separate AR, cached), self, or a run folder",
  judgeSteps: "training steps of the auto judge",
};

function help(): string {
  const t = PRESETS.tiny;
  const rows = Object.entries(t).filter(([k]) => k !== "preset").map(([k, v]) =>
    `  --${kebab(k).padEnd(19)} ${JSON.stringify(v).padEnd(13)} ${
      DESCRIBE[k as keyof ExperimentConfig] ?? ""
    }`.trimEnd()
  );
  return `deno task experiment [options]

Trains an autoregressive Transformer (causal decoder) and a D3PM (bidirectional
denoiser, absorbing-state diffusion, MDLM objective) on WikiText with matched
token budgets; evaluates both (NLL, bits per token, perplexity, bits per byte —
diffusion figures are ELBO upper bounds, with an exact discrete-time bound on a
subset), measures generation speed (batches/s and tokens/s at batch size 4) and
sample quality (generative perplexity under the AR model, with entropy), and
infilling; across seeds. --models ar,d3pm,mlm adds a BERT-style masked language
model on the D3PM's backbone, evaluated on the same tasks. Writes a run folder: config.json, metrics.jsonl,
checkpoints (safetensors), samples.txt, results.json, report.md, loss.svg and
speed_quality.svg.

Presets (--preset):
  micro   seconds, for tests of the wiring (byte tokenizer, 1 layer)
  tiny    the default: a 2-core CPU in about ten minutes
  small   a 2-core CPU in about an hour, 3 seeds
  paper   the thesis setting for a GPU: GPT-2 small, GPT-2 vocabulary,
          context 1024; pass --data DIR with WikiText-103

Options (defaults of the tiny preset; every key can be overridden):
  -h, --help                          show this help
${rows.join("\n")}

Examples:
  deno task experiment
  deno task experiment --preset small --seeds 3 --out runs/small
  deno task experiment --models ar,d3pm,mlm --seeds 2 --out runs/tiny-mlm
  deno task experiment --preset paper --data ~/wikitext-103 --backend webgpu
  deno task experiment --out runs/latest --resume   # continue after an interruption
  deno task experiment --force                      # start afresh; the old run is moved aside

A run folder holds one run: a fresh run into a folder that holds one is refused
(--resume continues it, --force moves it aside); --resume refuses changed options
except ${RESUMABLE_KEYS.map((k) => "--" + kebab(k)).join(", ")}.
`;
}

/**
 * Parse the experiment's command line into config overrides. Values that
 * look like negative numbers (`--steps -5`) stay values, so validation can
 * name the option.
 *
 * @param argv The arguments.
 * @returns Overrides and whether help was asked for.
 * @throws {ConfigError} For an argument that is not an option.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "./experiment.ts";
 * import { ConfigError, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const { help, overrides } = parseCommandLine(["--preset", "micro", "--gen-steps", "4,16", "--resume"]);
 * assertEquals(help, false);
 * assertEquals(resolveConfig(overrides).genSteps, "4,16");
 * assertEquals(parseCommandLine(["-h"]).help, true);
 * // A negative number stays the option's value, so validation can name it.
 * const bad = parseCommandLine(["--steps", "-5"]).overrides;
 * assertThrows(() => resolveConfig(bad), ConfigError, "--steps must be a positive integer, got -5");
 * assertThrows(() => parseCommandLine(["micro"]), ConfigError, 'Unexpected argument "micro"');
 * ```
 */
export function parseCommandLine(
  argv: string[],
): { help: boolean; overrides: Record<string, unknown> } {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], next = argv[i + 1];
    if (
      a.startsWith("--") && !a.includes("=") && next !== undefined &&
      /^-\d|^-\.\d|^-Infinity$/.test(next)
    ) {
      joined.push(`${a}=${next}`);
      i++;
    } else joined.push(a);
  }
  const args = parseArgs(joined, {
    boolean: ["help"],
    alias: { h: "help" },
    string: ["_"],
  });
  if (args._.length > 0) {
    throw new ConfigError(
      `Unexpected argument "${
        args._[0]
      }": options look like --key value (see --help)`,
    );
  }
  const { _: _rest, help, h: _h, ...overrides } = args;
  return { help: Boolean(help), overrides };
}

if (import.meta.main) {
  let config: ExperimentConfig | undefined;
  try {
    const { help: wantsHelp, overrides } = parseCommandLine(Deno.args);
    if (wantsHelp) {
      console.log(help());
      Deno.exit(0);
    }
    config = resolveConfig(overrides);
    const out = config.out, models = config.models;
    // Ctrl-C: say where the work is and how to continue it.
    Deno.addSignalListener("SIGINT", () => {
      console.error(
        `\ninterrupted: checkpoints are in ${out}/seed-*/{${models}}/checkpoint.safetensors; continue with: deno task experiment ${
          Deno.args.filter((a) => a !== "--resume" && a !== "--force").join(" ")
        } --resume`,
      );
      Deno.exit(130);
    });
    await runExperiment(config, {
      command: ["deno task experiment", ...Deno.args].join(" "),
    });
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    if (Deno.env.get("D3PM_DEBUG")) console.error((e as Error).stack);
    Deno.exit(1);
  }
}
