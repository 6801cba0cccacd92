// Loading a finished run's tokenizer and models, for the sample and infill CLIs.
import {
  chooseEngine,
  type EvalModel,
  evaluationModel,
  releaseEvaluationModel,
} from "./engine.ts";
import { parseArgs } from "@std/cli";
import type { Tokenizer } from "@d3pm/tokenizer";
import { loadModel, type Transformer } from "@d3pm/transformer";
import { initBackend } from "@d3pm/backend";
import { type Autoregressive, autoregressive } from "@d3pm/autoregressive";
import {
  type MaskedDiffusion,
  maskedDiffusion,
  type MaskedLanguageModel,
  maskedLanguageModel,
} from "@d3pm/diffusion";
import { ConfigError, type ExperimentConfig } from "./config.ts";
import { type ModelKind, RunFolder } from "./run_folder.ts";
import { openTokenizer } from "./data.ts";

/** The process of a model kind. */
export type ProcessOf<K extends ModelKind> = K extends "ar" ? Autoregressive
  : K extends "d3pm" ? MaskedDiffusion
  : MaskedLanguageModel;

/** A trained model of a run with everything needed to use it. */
export interface LoadedRun<K extends ModelKind> {
  config: ExperimentConfig;
  tokenizer: Tokenizer;
  model: Transformer;
  /** The process the model was trained with, rebuilt from `process.json`. */
  process: ProcessOf<K>;
}

/** Load `kind`'s model of `seed` from the run in `dir`, with its tokenizer and process. */
export async function loadRun<K extends ModelKind>(
  dir: string,
  seed: number,
  kind: K,
): Promise<LoadedRun<K>> {
  const folder = new RunFolder(dir);
  const config = await folder.savedConfig();
  if (!config) {
    throw new ConfigError(
      `Cannot read run ${dir}: no config.json there (run deno task experiment first, or pass --run DIR)`,
    );
  }
  const modelDir = folder.modelDir(seed, kind);
  let processJson: string;
  try {
    await Deno.stat(`${modelDir}/model.safetensors`);
    processJson = await Deno.readTextFile(folder.processPath(seed, kind));
  } catch {
    throw new ConfigError(
      `No trained ${kind} model for seed ${seed} in ${dir} (expected model.safetensors and process.json in ${modelDir}; a run that did not finish this model has none)`,
    );
  }
  const spec = JSON.parse(processJson);
  const process =
    (kind === "ar"
      ? autoregressive(spec)
      : kind === "d3pm"
      ? maskedDiffusion(spec)
      : maskedLanguageModel(spec)) as ProcessOf<K>;
  const tokenizer = await openTokenizer(config, folder);
  const model = await loadModel(modelDir);
  return { config, tokenizer, model, process };
}

/**
 * What both tools do first: start the backend and load `--run` (default
 * `runs/latest`) and `--seed`'s model of `kind`.
 */
export async function openRun<K extends ModelKind>(
  args: ToolArgs,
  kind: K,
): Promise<LoadedRun<K>> {
  await initBackend({ prefer: "auto" });
  return await loadRun(
    String(args.values.run ?? "runs/latest"),
    args.num("seed", 0),
    kind,
  );
}

/**
 * The `--engine` option of the tools: tfjs (default), webgpu (the fused
 * engine; a software adapter too) or auto (the engine on a real GPU). Gives
 * the model to sample with and how to release it (the tfjs model too).
 */
export async function toolModel(
  args: ToolArgs,
  model: Transformer,
): Promise<{ model: EvalModel; engine: string; dispose(): void }> {
  const choice = args.choice(
    "engine",
    ["tfjs", "webgpu", "auto"] as const,
    "tfjs",
  );
  const engine = await chooseEngine({
    engine: choice,
    diffusionLoss: "mdlm",
  });
  const evalModel = await evaluationModel(model, engine);
  return {
    model: evalModel,
    engine: engine.reason,
    dispose() {
      releaseEvaluationModel(evalModel);
      model.dispose();
      if (engine.kind === "webgpu") engine.device.destroy();
    },
  };
}

/** The sampler strategy option, shared by both tools (default: the model's own). */
export function strategyOf(
  args: ToolArgs,
  kind: ModelKind,
): "ancestral" | "confidence" {
  return args.choice(
    "strategy",
    ["ancestral", "confidence"] as const,
    kind === "mlm" ? "confidence" : "ancestral",
  );
}

/** Text of ids with masks shown as a block character, for terminal displays. */
export function showMasked(
  tokenizer: Tokenizer,
  ids: ArrayLike<number>,
  maskId: number,
): string {
  let out = "";
  let run: number[] = [];
  const flush = () => {
    if (run.length) out += tokenizer.decode(run);
    run = [];
  };
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === maskId) {
      flush();
      out += "░";
    } else run.push(ids[i]);
  }
  flush();
  return out;
}

/** Parsed options of a small tool: strings by name, `quiet`, and a number reader. */
export interface ToolArgs {
  values: Record<string, string | undefined>;
  quiet: boolean;
  num(name: string, fallback: number): number;
  choice<T extends string>(
    name: string,
    accepted: readonly T[],
    fallback: T,
  ): T;
}

/**
 * Parse a tool's command line: string options, `--quiet`, `-h/--help` (prints
 * `help` and exits); unknown options throw a one-line error.
 */
export function parseToolArgs(
  argv: string[],
  options: string[],
  help: string,
): ToolArgs {
  const args = parseArgs(argv, {
    string: options,
    boolean: ["help", "quiet"],
    alias: { h: "help" },
  });
  if (args.help) {
    console.log(help);
    Deno.exit(0);
  }
  const known = new Set([...options, "help", "quiet", "h", "_"]);
  for (const k of Object.keys(args)) {
    if (!known.has(k)) {
      throw new Error(
        `Unknown option --${k}: accepted ${
          options.map((s) => `--${s}`).join(", ")
        }, --quiet`,
      );
    }
  }
  const values = args as unknown as Record<string, string | undefined>;
  return {
    values,
    quiet: Boolean(args.quiet),
    num(name, fallback) {
      const v = values[name];
      if (v === undefined) return fallback;
      const n = Number(v);
      if (!Number.isFinite(n) || v.trim() === "") {
        throw new Error(
          `Option --${name} must be a number, got ${JSON.stringify(v)}`,
        );
      }
      return n;
    },
    choice(name, accepted, fallback) {
      const v = values[name] ?? fallback;
      if (!accepted.includes(v as never)) {
        throw new Error(
          `Option --${name} must be ${accepted.join(" or ")}, got ${
            JSON.stringify(v)
          }`,
        );
      }
      return v as typeof fallback;
    },
  };
}

/** Print a tool's error as one line and exit 1. */
export function fail(e: unknown): never {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(1);
}
