// Loading a finished run's tokenizer and models, for the sample and infill CLIs.
import { parseArgs } from "@std/cli";
import {
  ByteTokenizer,
  loadBpeTokenizer,
  loadGpt2Tokenizer,
  type Tokenizer,
} from "@d3pm/tokenizer";
import { loadModel, type Transformer } from "@d3pm/transformer";
import { initBackend } from "@d3pm/backend";
import { ConfigError, type ExperimentConfig } from "./config.ts";

export interface LoadedRun {
  config: ExperimentConfig;
  tokenizer: Tokenizer;
  model: Transformer;
}

export async function loadRun(
  dir: string,
  seed: number,
  kind: "ar" | "d3pm",
): Promise<LoadedRun> {
  let config: ExperimentConfig;
  try {
    config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  } catch (e) {
    throw new ConfigError(
      `Cannot read run ${dir}: ${
        e instanceof Deno.errors.NotFound
          ? "no config.json there (run deno task experiment first, or pass --run DIR)"
          : String(e)
      }`,
    );
  }
  const tokenizer = config.tokenizer === "byte"
    ? new ByteTokenizer()
    : config.tokenizer === "gpt2"
    ? await loadGpt2Tokenizer()
    : await loadBpeTokenizer(`${dir}/tokenizer.json`);
  const modelDir = `${dir}/seed-${seed}/${kind}`;
  try {
    await Deno.stat(`${modelDir}/model.safetensors`);
  } catch {
    throw new ConfigError(
      `No trained ${kind} model for seed ${seed} in ${dir} (expected ${modelDir}/model.safetensors)`,
    );
  }
  const model = await loadModel(modelDir);
  return { config, tokenizer, model };
}

/**
 * What both tools do first: start the backend and load `--run` (default
 * `runs/latest`) and `--seed`'s model of `kind`.
 */
export async function openRun(
  args: ToolArgs,
  kind: "ar" | "d3pm",
): Promise<LoadedRun> {
  await initBackend({ prefer: "auto" });
  return await loadRun(
    String(args.values.run ?? "runs/latest"),
    args.num("seed", 0),
    kind,
  );
}

/** The sampler strategy option, shared by both tools. */
export function strategyOf(args: ToolArgs): "ancestral" | "confidence" {
  return args.choice(
    "strategy",
    ["ancestral", "confidence"] as const,
    "ancestral",
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
