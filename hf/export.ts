/**
 * `deno task export`: a trained model of a run folder as a Hugging Face
 * directory. A causal model with learned positions becomes
 * `GPT2LMHeadModel`, one with rotary positions `GPTNeoXForCausalLM` (the
 * project's rotary convention is GPT-NeoX's with sequential residuals);
 * denoisers (the D3PM, the MLM) keep the project's network in
 * `modeling_d3pm.py`, loaded with `trust_remote_code=True`. Beside the
 * weights: `config.json`, `generation_config.json`, the tokenizer files and
 * a model card. The directory appears whole or not at all.
 *
 * @module
 */
import { SPECIAL_ORDER } from "@d3pm/tokenizer";
import {
  contestantOf,
  contestants,
  locateWeights,
  openTokenizer,
  readRun,
  RunFolder,
  TRAINING_RECORD,
  WEIGHTS_SEED,
  WEIGHTS_SHA256,
  type WeightsChoice,
} from "@d3pm/experiment";
import {
  type ModelConfig,
  parameterShapes,
  validateConfig,
} from "@d3pm/transformer";
import type { ExportTensor, SpecialIds } from "./_architecture.ts";
import { openSafetensorsFile } from "./_checkpoint.ts";
import {
  d3pmConfig,
  d3pmTensors,
  MODELING_FILE,
  modelingSource,
} from "./_d3pm.ts";
import { toFloat32 } from "./_dtype.ts";
import { readJsonObject } from "./_file.ts";
import { gpt2Config, gpt2Tensors } from "./_gpt2.ts";
import { neoxConfig, neoxRefusal, neoxTensors } from "./_gpt_neox.ts";
import {
  checkTarget,
  type Target,
  targetPath,
  writeDirectory,
  writeSafetensors,
} from "./_output.ts";
import { InteropError } from "./errors.ts";
import { type CardSource, modelCard } from "./model_card.ts";
import { tokenizerFiles } from "./tokenizer_files.ts";

/** Options of {@linkcode exportRun}. */
export interface ExportOptions {
  /** The run folder. */
  run: string;
  /** Which seed's model (default 0). */
  seed?: number;
  /** The contestant (default `ar`). */
  model?: string;
  /** The directory to write; it must not exist unless `force`. */
  to: string;
  /**
   * Which weights: `last` (the last step's), `best` (the best
   * validation's), `ema`; default: those the run evaluated.
   */
  weights?: WeightsChoice;
  /**
   * Replace an existing `to`: only an earlier export (a `config.json` with `d3pm_deno`) holding only the files an export writes, or an empty folder. A `to`
   * that is or holds the `run` folder (`--run`, compared as
   * real paths), a user's folder or a file is refused, never deleted.
   */
  force?: boolean;
}

/** What an export wrote. */
export interface ExportResult {
  /** The directory. */
  dir: string;
  /** The transformers class it loads as. */
  architecture: string;
  /** Its files, sorted. */
  files: string[];
  /** Which weights, in words. */
  weights: string;
}

/**
 * Export a trained model of a run as a Hugging Face directory that
 * transformers loads with no extra arguments (`trust_remote_code=True` for
 * a denoiser).
 *
 * @param options The run, seed, model, weights and target.
 * @returns What was written.
 * @throws {InteropError} For a model no transformers architecture matches
 *   (with the reason; a bidirectional one that does not generate by
 *   unmasking is no masked LM), an existing target without `force`, or
 *   weights that are not finite; a `ConfigError` for a missing run, model
 *   or weights.
 *
 * @example A run that does not exist is refused before anything is written
 * ```ts
 * import { exportRun } from "@d3pm/hf";
 * import { assertRejects } from "@std/assert";
 * await assertRejects(
 *   () => exportRun({ run: "runs/none", to: "/tmp/none-export" }),
 *   Error,
 *   "Cannot read run runs/none: no config.json there",
 * );
 * ```
 */
export async function exportRun(options: ExportOptions): Promise<ExportResult> {
  const input = await readExport(options);
  const { model, ids, source, kind } = input;
  const { architecture, hfConfig, tensors } = architectureOf(model, kind, ids);
  const folder = new RunFolder(options.run);
  const imported = await folder.importRecord();
  hfConfig.d3pm_deno = {
    contestant: kind,
    seed: input.seed,
    weights: source.description,
    // An imported run says so; its options only where they are a run's
    // (the project's export it was imported from recorded them), not the
    // preset's that an import makes up (steps, lr, … nobody trained with).
    ...(imported === undefined ? {} : {
      imported: { from: imported.from, architecture: imported.architecture },
    }),
    ...(imported?.options === "preset" ? {} : { run: input.state.config }),
    process: input.process,
  };
  const card = modelCard({
    architecture,
    contestant: { kind, title: contestantOf(kind).label.title },
    seed: input.seed,
    run: options.run,
    config: input.state.config,
    ...(input.state.results ? { results: input.state.results } : {}),
    model,
    weights: source.description,
    tokenizer: input.tokenizer.id,
    specials: ids,
    process: input.process,
    source: await cardSource(folder, input.state.config),
    ...(input.state.results ? {} : await runningCommand(folder)),
  });
  const text = new Map<string, string>([
    ["config.json", json(hfConfig)],
    [
      "generation_config.json",
      json(generationConfig(ids, model, input.process)),
    ],
    ["README.md", card],
    ...tokenizerFiles(input.tokenizer, { contextLength: model.contextLength }),
  ]);
  if (model.kind === "bidirectional") {
    text.set(MODELING_FILE, await modelingSource());
  }
  const weights = await openSafetensorsFile(source.path);
  try {
    const shapes = parameterShapes(model);
    // Every tensor of the model's (under the prefix) is one the model has:
    // a file of more layers than its config is not exported as fewer.
    const extra = [...weights.tensors.keys()].find((n) =>
      n.startsWith(source.prefix) && !shapes.has(n.slice(source.prefix.length))
    );
    if (extra !== undefined) {
      throw new InteropError(
        `${source.path}: tensor ${
          extra.slice(0, 80)
        } is not part of the model its config.json describes (${model.nLayer} layers, width ${model.dModel})`,
      );
    }
    const stored = async (name: string): Promise<Float32Array> => {
      const t = weights.tensors.get(source.prefix + name);
      const shape = shapes.get(name)!;
      if (!t || t.shape.join() !== shape.join()) {
        throw new InteropError(
          `${source.path}: tensor ${source.prefix}${name} is ${
            t ? `[${t.shape}]` : "missing"
          }; the model needs [${shape}]`,
        );
      }
      return toFloat32(await t.read(), t.dtype, t.where);
    };
    await writeDirectory(
      input.to,
      async (dir) => {
        await writeSafetensors(
          `${dir}/model.safetensors`,
          tensors.map((t) => ({
            name: t.name,
            shape: t.shape,
            values: () => t.values(stored),
          })),
          { format: "pt" },
        );
        for (const [name, body] of text) {
          await Deno.writeTextFile(`${dir}/${name}`, body);
        }
      },
    );
  } finally {
    weights.close();
  }
  return {
    dir: input.to.path,
    architecture,
    files: ["model.safetensors", ...text.keys()].sort(),
    weights: source.description,
  };
}

// What the weights were trained on, for the card's data and license: an
// imported run's came from elsewhere; a run's --data is WikiText unless its
// data.json says it read plain text (a run without one: not known, so not
// claimed to be WikiText).
async function cardSource(
  folder: RunFolder,
  config: { data: string },
): Promise<CardSource> {
  const imported = await folder.importRecord();
  if (imported !== undefined) {
    return {
      kind: "imported",
      from: imported.from,
      architecture: imported.architecture,
    };
  }
  if (!config.data) return { kind: "wikitext" };
  const record = await folder.savedData().catch(() => undefined);
  return record !== undefined && record.format === undefined
    ? { kind: "wikitext" }
    : { kind: "text", data: config.data };
}

// The command of the process still writing a run without results (another
// contestant trains), as its lock names it.
async function runningCommand(
  folder: RunFolder,
): Promise<{ command?: string }> {
  const holder = await folder.liveHolder().catch(() => undefined);
  return holder?.command ? { command: holder.command } : {};
}

// A model's config.json, checked; a bad one is named.
function modelConfigOf(path: string, value: unknown): ModelConfig {
  try {
    return validateConfig(value);
  } catch (e) {
    throw new InteropError(
      `${path}: ${(e as Error).message.split("\n")[0]}`,
    );
  }
}

const WEIGHTS_CHOICES: readonly string[] = ["last", "best", "ema"];

/** What an export reads from the run folder, checked before anything is written. */
async function readExport(options: ExportOptions) {
  const kind = options.model ?? "ar";
  if (
    options.weights !== undefined &&
    !WEIGHTS_CHOICES.includes(options.weights)
  ) {
    throw new InteropError(
      `weights ${JSON.stringify(options.weights)} is not one of ${
        WEIGHTS_CHOICES.join(", ")
      }`,
    );
  }
  const state = await readRun(options.run);
  const first = state.config.firstSeed ?? 0; // a sweep's cell may start at seed k
  const seed = options.seed ?? first;
  const kinds = state.config.models.split(",");
  if (!kinds.includes(kind)) {
    throw new InteropError(
      `The run in ${options.run} has no ${kind} model (it trained ${
        kinds.join(", ")
      }): pass --model ${kinds.join("|")}`,
    );
  }
  // Its layout exists on tfjs only (block attention): the exported
  // modeling code would run it with another one, silently.
  const only = contestantOf(kind).tfjsOnly;
  if (only) {
    throw new InteropError(
      `Cannot export the ${kind} model: ${only}, and so does the exported modeling code (it would run the weights with full attention)`,
    );
  }
  const notMasked = maskedLmRefusal(kind);
  if (notMasked) throw new InteropError(notMasked);
  if (
    !(Number.isInteger(seed) && seed >= first &&
      seed < first + state.config.seeds)
  ) {
    throw new InteropError(
      `The run in ${options.run} has seeds ${first}..${
        first + state.config.seeds - 1
      }, not ${seed}`,
    );
  }
  const to = exportTarget(options.to, options.force ?? false, options.run);
  await checkTarget(to);
  const source = await locateWeights(options.run, {
    seed,
    model: kind,
    weights: options.weights,
  });
  const folder = new RunFolder(options.run);
  const modelDir = folder.modelDir(seed, kind);
  const model = modelConfigOf(
    `${modelDir}/config.json`,
    await readJsonObject(`${modelDir}/config.json`, 1 << 20),
  );
  // The weights' SHA-256 and seed process.json records (checked by
  // locateWeights) are the run folder's, not the process's: an export's
  // files differ.
  const {
    [WEIGHTS_SHA256]: _,
    [WEIGHTS_SEED]: __,
    [TRAINING_RECORD]: ___,
    ...process
  } = await readJsonObject(
    folder.processPath(seed, kind),
    1 << 20,
  );
  const tokenizer = await openTokenizer(state.config, folder);
  const missing = SPECIAL_ORDER.filter((k) =>
    tokenizer.special[k] === undefined
  );
  if (missing.length) {
    throw new InteropError(
      `Tokenizer ${tokenizer.id} lacks the special tokens ${
        missing.join(", ")
      }`,
    );
  }
  if (tokenizer.vocabSize !== model.vocabSize) {
    throw new InteropError(
      `${modelDir}/config.json has ${model.vocabSize} ids but the run's tokenizer ${tokenizer.vocabSize}`,
    );
  }
  // The model's config.json must be the one its run makes (as an import
  // checks of an export): a hand-edited one (another head count, fewer
  // layers) would be exported with weights it does not describe.
  const expected = validateConfig(
    contestantOf(kind).modelConfig(state.config, tokenizer.vocabSize),
  );
  if (JSON.stringify(expected) !== JSON.stringify(model)) {
    throw new InteropError(
      `${modelDir}/config.json describes another model than the run's config.json makes (${
        JSON.stringify(model)
      } vs ${JSON.stringify(expected)})`,
    );
  }
  const ids = tokenizer.special as SpecialIds;
  return { seed, kind, state, source, model, process, tokenizer, ids, to };
}

// Every file an export writes (the tokenizer's and a denoiser's modeling
// code among them).
const EXPORT_FILES: readonly string[] = [
  "README.md",
  "config.json",
  "generation_config.json",
  "merges.txt",
  MODELING_FILE,
  "model.safetensors",
  "special_tokens_map.json",
  "tokenizer_config.json",
  "vocab.json",
];

// Where an export goes: --force replaces only an export (its config.json
// carries d3pm_deno) holding nothing an export does not write, or an empty
// folder; never one that holds the run exported.
function exportTarget(path: string, force: boolean, run: string): Target {
  return {
    path: targetPath(path, "--to"),
    force,
    flag: "--to",
    what: "a folder deno task export wrote",
    marker: "config.json with d3pm_deno",
    sources: [{ flag: "--run", path: run }],
    writes: EXPORT_FILES,
    wrote: async (dir) => {
      try {
        const config = await readJsonObject(`${dir}/config.json`, 4 << 20);
        return Object.hasOwn(config, "d3pm_deno");
      } catch {
        return false;
      }
    },
  };
}

// A bidirectional network is written as a masked LM (`D3PMForMaskedLM`,
// fill-mask): true of a denoiser that fills blanks by unmasking (the D3PM,
// the MLM), not of one that generates otherwise, whose card would say so
// wrongly. Why a contestant's export is refused (undefined: it is not).
function maskedLmRefusal(kind: string): string | undefined {
  const c = contestantOf(kind);
  if (c.network !== "bidirectional" || c.unmasking) return undefined;
  const supported = contestants()
    .filter((x) => !x.tfjsOnly && (x.network === "causal" || x.unmasking))
    .map((x) => x.kind);
  return `Cannot export the ${kind} model: its bidirectional network does not fill blanks by unmasking (no Contestant.unmasking), and the export writes a bidirectional network as a masked LM (D3PMForMaskedLM, fill-mask); it exports a causal model or an unmasking denoiser: ${
    supported.join(", ")
  }`;
}

/** The transformers class of a model, its config and its tensors; or why none fits. */
function architectureOf(
  model: ModelConfig,
  kind: string,
  ids: SpecialIds,
): {
  architecture: string;
  hfConfig: Record<string, unknown>;
  tensors: ExportTensor[];
} {
  if (model.kind === "bidirectional") {
    return {
      architecture: "D3PMForMaskedLM",
      hfConfig: d3pmConfig(model, ids),
      tensors: d3pmTensors(model),
    };
  }
  if (model.positions === "learned") {
    if (model.timeConditioning) {
      throw new InteropError(
        `Cannot export the ${kind} model: it is causal and time-conditioned (adaLN), which no transformers architecture has`,
      );
    }
    return {
      architecture: "GPT2LMHeadModel",
      hfConfig: gpt2Config(model, ids),
      tensors: gpt2Tensors(model),
    };
  }
  const why = neoxRefusal(model);
  if (why) {
    throw new InteropError(
      `Cannot export the ${kind} model as GPT-NeoX or Llama: ${why}`,
    );
  }
  return {
    architecture: "GPTNeoXForCausalLM",
    hfConfig: neoxConfig(model, ids),
    tensors: neoxTensors(model),
  };
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

// The causal models never draw the padding or the mask (the project's AR
// sampler suppresses both); generation stops at <|eos|>. A model whose
// process scores over the checkpoint's own outputs only (an imported
// GPT-2: its <|bos|>/<|eos|> rows copy <|endoftext|>'s, so each would
// draw its probability) has every added id suppressed too, and stops at
// what <|eos|> is scored as: transformers' next-token distribution is then
// the project's (the added ids at -inf).
function generationConfig(
  ids: SpecialIds,
  model: ModelConfig,
  process: Record<string, unknown>,
): Record<string, unknown> {
  if (model.kind !== "causal") {
    return {
      bos_token_id: ids.bos,
      eos_token_id: ids.eos,
      pad_token_id: ids.pad,
    };
  }
  const outputs = typeof process.outputs === "number"
    ? process.outputs
    : model.vocabSize;
  const suppress = new Set([ids.pad, ids.mask]);
  for (const id of Array.isArray(process.suppress) ? process.suppress : []) {
    if (Number.isInteger(id)) suppress.add(id);
  }
  for (let id = outputs; id < model.vocabSize; id++) suppress.add(id);
  const alias = Array.isArray(process.alias)
    ? (process.alias as [number, number][]).find(([from]) => from === ids.eos)
    : undefined;
  return {
    bos_token_id: ids.bos,
    eos_token_id: alias ? [ids.eos, alias[1]] : ids.eos,
    pad_token_id: ids.pad,
    suppress_tokens: [...suppress].sort((a, b) => a - b),
  };
}
