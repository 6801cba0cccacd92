/**
 * `deno task import`: a Hugging Face model directory on disk as a run
 * folder of the project — a trained model with its tokenizer and process,
 * which `deno task sample`, `deno task evaluate` and an initialisation from
 * it read like any run's. Read: `config.json` with `model.safetensors`
 * (sharded or not) or `pytorch_model.bin` (torch's zip format; its pickle is
 * read without running it), of GPT-2 (`GPT2LMHeadModel`, `GPT2Model`), of
 * GPT-NeoX in the project's convention, or of the project's own denoiser;
 * anything else is refused with a reason. f16, bf16 and f64 weights are
 * converted to float32; attention-mask buffers are dropped; the vocabulary
 * gains rows for the project's special ids (see {@linkcode importCheckpoint}).
 *
 * @module
 */
import {
  checkConfig,
  contestantOf,
  contestants,
  type ExperimentConfig,
  IMPORT_VERSION,
  resolveConfig,
  RunFolder,
} from "@d3pm/experiment";
import {
  loadGpt2Tokenizer,
  saveBpeTokenizer,
  SPECIAL_ORDER,
} from "@d3pm/tokenizer";
import {
  type ModelConfig,
  parameterShapes,
  validateConfig,
} from "@d3pm/transformer";
import type { ImportPlan } from "./_architecture.ts";
import {
  type CheckpointFiles,
  openCheckpoint,
  type SourceTensor,
} from "./_checkpoint.ts";
import { d3pmImport } from "./_d3pm.ts";
import { FLOAT_DTYPES, toFloat32 } from "./_dtype.ts";
import { notRegular, readJsonObject } from "./_file.ts";
import { gpt2Import } from "./_gpt2.ts";
import { neoxImport } from "./_gpt_neox.ts";
import {
  checkTarget,
  type OutTensor,
  type Target,
  targetPath,
  writeDirectory,
  writeSafetensors,
} from "./_output.ts";
import { InteropError } from "./errors.ts";
import { type ReadTokenizer, readTokenizerFiles } from "./tokenizer_files.ts";

/** Options of {@linkcode importCheckpoint}. */
export interface ImportOptions {
  /** The Hugging Face model directory (local; nothing is downloaded). */
  from: string;
  /** The run folder to write; it must not exist unless `force`. */
  to: string;
  /**
   * Replace an existing `to`: only a run folder an import wrote (with its
   * `import.json`) holding nothing an import does not write, or an empty
   * folder. A run folder holding anything else (a user's `notes.md`, a
   * file beside the weights, a run's `metrics.jsonl`), a `to` that is or
   * holds the `from` folder (`--from`, compared as real paths), a user's
   * folder or a file is refused, never deleted.
   */
  force?: boolean;
  /**
   * Where the tokenizer comes from: `dir` (default: the directory's
   * `vocab.json` + `merges.txt` or `tokenizer.json`) or `gpt2` (the
   * project's copy of GPT-2's, for a directory without tokenizer files).
   */
  tokenizer?: "dir" | "gpt2";
  /**
   * The contestant of a denoiser whose `config.json` lacks the project's
   * `d3pm_deno` record (`d3pm`, the default, `mlm`, or another registered
   * denoiser that every engine runs): nothing else tells them apart. A
   * causal checkpoint without the record is the `ar` model; the record
   * names its own contestant (which must be registered).
   */
  model?: string;
  /**
   * Where a notice goes (default: nowhere): one line when tokens the
   * tokenizer files add are dropped (`vocabulary.droppedTokens`).
   */
  log?: (line: string) => void;
}

/** What an import read and wrote. */
export interface ImportResult {
  /** The run folder written. */
  dir: string;
  /** The architecture read (`GPT2LMHeadModel`, …). */
  architecture: string;
  /** The contestant it became (`ar`, `d3pm`, `mlm`). */
  model: string;
  /** The model's configuration. */
  config: ModelConfig;
  /** What happened to the vocabulary. */
  vocabulary: {
    /** The tokenizer (`gpt2`, `bpe`, `byte`). */
    tokenizer: string;
    /** Rows of the stored embedding. */
    stored: number;
    /** Rows dropped beyond the tokenizer's ids (a padded vocabulary, or added tokens). */
    dropped: number;
    /**
     * Tokens the tokenizer files add beyond the ids kept, `"content" (id)`,
     * by id: the project's tokenizer lacks them, so their rows are dropped
     * and text holding them is read as plain text.
     */
    droppedTokens: string[];
    /** Rows added for the project's special ids, with how each was initialised. */
    added: Record<string, string>;
  };
  /** Buffers dropped (attention masks, rotary tables). */
  droppedTensors: string[];
  /** Dtypes of the weights read, with their counts. */
  dtypes: Record<string, number>;
}

const ARCHITECTURES: Record<string, { classes: string[]; contestant: string }> =
  {
    gpt2: { classes: ["GPT2LMHeadModel", "GPT2Model"], contestant: "ar" },
    gpt_neox: { classes: ["GPTNeoXForCausalLM"], contestant: "ar" },
    d3pm: { classes: ["D3PMForMaskedLM"], contestant: "d3pm" },
  };

const SUPPORTED =
  "GPT2LMHeadModel or GPT2Model (model_type gpt2), GPTNeoXForCausalLM in the project's convention, and the project's D3PMForMaskedLM (as deno task export writes them)";

/**
 * Import a Hugging Face model directory as a run folder: `config.json`
 * (the resolved experiment configuration, one seed, the model as its one
 * contestant), `seed-0/<kind>/` with `model.safetensors`, `config.json` and
 * `process.json`, the tokenizer (`tokenizer.json` for a BPE), and
 * `import.json` (what was read and how it was converted).
 *
 * The vocabulary: GPT-2 checkpoints have 50,257 rows; the project's GPT-2
 * tokenizer puts `<|bos|>`, `<|eos|>`, `<|pad|>`, `<|mask|>` after them. Their
 * rows are added: `<|bos|>` and `<|eos|>` copy the row of `<|endoftext|>`
 * (GPT-2's document separator, which plays both parts there) when the
 * vocabulary has it, else the mean row; `<|pad|>` and `<|mask|>` take the
 * mean of the base rows. The head is tied, so these rows are output rows
 * too: an imported causal model's process (`process.json`) keeps them out
 * of the softmax (`outputs`: the base ids), scores `<|bos|>`/`<|eos|>`
 * targets as `<|endoftext|>` (`alias`) and never draws them (`suppress`),
 * so its NLL and the gen PPL it judges are the checkpoint's own. Rows beyond the tokenizer's ids (a padded vocabulary) are dropped; a
 * directory that already holds the four (the project's own export) keeps
 * its rows. The output head must be tied to the embedding (stored equal, or
 * absent): the project's model has no separate head.
 *
 * @param options The directory, the run folder to write, the tokenizer.
 * @returns What was read and written.
 * @throws {InteropError} With a one-line reason, before anything is
 *   written: no config.json or weights, an unknown architecture, a config
 *   the project cannot run or that contradicts the tensors, a non-float or
 *   non-finite weight, an untied head, an unsupported tokenizer.
 *
 * @example An unknown architecture is refused by name
 * ```ts
 * import { importCheckpoint } from "@d3pm/hf";
 * import { assertRejects } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({
 *   model_type: "llama", architectures: ["LlamaForCausalLM"],
 * }));
 * await assertRejects(
 *   () => importCheckpoint({ from: dir, to: `${dir}/run` }),
 *   Error,
 *   "Unknown architecture LlamaForCausalLM (model_type llama)",
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function importCheckpoint(
  options: ImportOptions,
): Promise<ImportResult> {
  const from = options.from.replace(/\/+$/, "") || "/";
  const to = importTarget(options.to, options.force ?? false, from);
  await checkTarget(to);
  const { hf, modelType, architecture, contestant: fallback } =
    await readArchitecture(from);
  const checkpoint = await openCheckpoint(from);
  try {
    const names = [...checkpoint.tensors.keys()];
    const plan = modelType === "gpt2"
      ? gpt2Import(hf, names)
      : modelType === "gpt_neox"
      ? neoxImport(hf, names)
      : d3pmImport(hf, names);
    const provenance = hf.d3pm_deno as
      | {
        contestant?: unknown;
        run?: unknown;
        process?: unknown;
        weights?: unknown;
      }
      | undefined;
    const kind = importedContestant(
      modelType,
      provenance,
      fallback,
      options.model,
    );
    if (kind === "mlm" && plan.model.timeConditioning) {
      throw new InteropError(
        `${from}/config.json is time-conditioned (time_conditioning true), which an mlm model never is: import it as the d3pm model`,
      );
    }
    checkNames(from, checkpoint, plan);
    const tokenizer = await chooseTokenizer(
      from,
      options.tokenizer ?? "dir",
      plan,
    );
    // The project's own export stores trained rows for its four special
    // tokens; tokenizer files that lost them would have those rows dropped.
    if (provenance !== undefined && !tokenizer.hasSpecials) {
      throw new InteropError(
        `${from}/config.json is an export of this project (d3pm_deno) but its tokenizer files do not add <|bos|>, <|eos|>, <|pad|>, <|mask|> at ids ${tokenizer.baseSize}..${
          tokenizer.baseSize + 3
        }: restore the tokenizer_config.json deno task export wrote`,
      );
    }
    const model = validateConfig({
      ...plan.model,
      vocabSize: tokenizer.baseSize + 4,
    });
    const { config, process } = runOf(
      model,
      kind,
      tokenizer,
      to.path,
      provenance,
    );
    // Read before anything is written: an untied head is refused.
    const embedding = await importEmbedding(checkpoint, plan, tokenizer);
    const result: ImportResult = {
      dir: to.path,
      architecture,
      model: kind,
      config: model,
      vocabulary: {
        tokenizer: tokenizer.kind,
        stored: embedding.stored,
        dropped: embedding.dropped,
        droppedTokens: tokenizer.extra.map((t) =>
          `${JSON.stringify(t.content)} (${t.id})`
        ),
        added: embedding.added,
      },
      droppedTensors: plan.dropped,
      dtypes: dtypesOf(checkpoint, plan),
    };
    const { dir: _, ...record } = result;
    const provenanceRecord = {
      importVersion: IMPORT_VERSION,
      from: await Deno.realPath(from),
      files: checkpoint.files,
      format: checkpoint.format,
      tokenizerFiles: tokenizer.files,
      // What the project's own export said of its weights (an export of
      // this run describes them as imported, quoting it).
      ...(typeof provenance?.weights === "string"
        ? { sourceWeights: provenance.weights.slice(0, 200) }
        : {}),
      // The run's options: the source export's record of its run, or made
      // up here (a preset's with the checkpoint's shape), which an export
      // of this run must not pass off as anyone's.
      options: isObject(provenance?.run) ? "source" : "preset",
      ...record,
    };
    await writeDirectory(
      to,
      (dir) =>
        writeRun(dir, {
          config,
          kind,
          model,
          process,
          tokenizer,
          tensors: outTensors(model, plan, checkpoint, embedding.table),
          record: provenanceRecord,
        }),
    );
    const dropped = result.vocabulary.droppedTokens;
    if (dropped.length > 0) options.log?.(droppedNotice(from, dropped));
    if (modelType === "d3pm" && !isObject(provenance?.run)) {
      options.log?.(
        `notice: ${from}/config.json ${
          provenance === undefined
            ? "has no d3pm_deno record (deno task export writes it)"
            : "has no run options in its d3pm_deno record (an export of an imported checkpoint)"
        }: imported as the ${kind} model${
          // The record names its contestant: --model may not differ.
          options.model || provenance !== undefined
            ? ""
            : " (--model mlm for a masked LM)"} with the ${config.preset} preset's process (${config.diffusionLoss} loss, ${config.diffusionSteps} diffusion steps); the process it was trained with is not known`,
      );
    }
    return result;
  } finally {
    checkpoint.close();
  }
}

function isObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// The contestants a checkpoint of a network may become: the registered
// ones of that network that every engine runs (a tfjs-only one, as block
// diffusion, has no exported form to come back from).
function importable(network: "causal" | "bidirectional"): string[] {
  return contestants().filter((c) => c.network === network && !c.tfjsOnly)
    .map((c) => c.kind);
}

// The contestant a checkpoint becomes: the one the project's d3pm_deno
// record names (a registered one of the checkpoint's network); without the
// record, a causal one the architecture's (the AR model), a denoiser
// --model's (d3pm by default: a D3PM and an MLM have the same network).
function importedContestant(
  modelType: string,
  provenance: { contestant?: unknown } | undefined,
  fallback: string,
  model: string | undefined,
): string {
  const denoisers = importable("bidirectional");
  if (model !== undefined && !denoisers.includes(model)) {
    throw new InteropError(
      `--model ${model} is not one of ${
        denoisers.join(", ")
      } (the contestant of a denoiser without a d3pm_deno record)`,
    );
  }
  const network = modelType === "d3pm" ? "bidirectional" : "causal";
  const named = provenance?.contestant;
  if (network === "causal" && model !== undefined) {
    throw new InteropError(
      `--model ${model} is for a D3PMForMaskedLM without a d3pm_deno record; this checkpoint is causal: it is the ${
        typeof named === "string" ? named : fallback
      } model`,
    );
  }
  if (typeof named === "string") {
    const choices = importable(network);
    if (!choices.includes(named)) {
      throw new InteropError(
        `config.json's d3pm_deno record names the ${
          named.slice(0, 40)
        } model, which is not a registered ${network} contestant here (${
          choices.join(", ")
        }): register it before importing`,
      );
    }
    if (model !== undefined && model !== named) {
      throw new InteropError(
        `--model ${model}, but config.json's d3pm_deno record names the ${named} model: leave out --model`,
      );
    }
    return named;
  }
  return model ?? fallback;
}

// One line on the added tokens an import dropped: how many, the first few.
function droppedNotice(from: string, dropped: string[]): string {
  const shown = dropped.slice(0, 5).join(", ");
  const more = dropped.length > 5 ? `, and ${dropped.length - 5} more` : "";
  return `notice: ${from}'s tokenizer files add ${dropped.length} token${
    dropped.length === 1 ? "" : "s"
  } the project's tokenizer lacks, dropped with their rows (text holding them is read as plain text): ${shown}${more}; import.json lists them all`;
}

// The files an import writes (see writeRun), for each contestant it makes.
// The project's readers of a run folder (sample, evaluate, infill, the
// dashboard and its static export) write nothing into it; a run trained
// on there (metrics.jsonl, results.json, …) is no longer only an import.
// Read when an import starts: a contestant registered since is one too.
function importFiles(): string[] {
  return [
    "config.json",
    "import.json",
    "tokenizer.json",
    ...contestants().flatMap(({ kind }) =>
      ["config.json", "model.safetensors", "process.json"].map((file) =>
        `seed-0/${kind}/${file}`
      )
    ),
  ];
}

// Where an import goes: --force replaces only a run folder an import
// wrote (its import.json says so) holding nothing an import does not
// write, or an empty folder; never one that holds the directory imported.
function importTarget(path: string, force: boolean, from: string): Target {
  return {
    path: targetPath(path, "--to"),
    force,
    flag: "--to",
    sources: [{ flag: "--from", path: from }],
    writes: importFiles(),
    what: "a run folder deno task import wrote",
    marker: "import.json",
    wrote: async (dir) =>
      await notRegular(new RunFolder(dir).importPath) === undefined,
  };
}

// The run folder's files (see importCheckpoint).
async function writeRun(
  dir: string,
  run: {
    config: ExperimentConfig;
    kind: string;
    model: ModelConfig;
    process: object;
    tokenizer: ReadTokenizer;
    tensors: OutTensor[];
    record: object;
  },
): Promise<void> {
  const folder = new RunFolder(dir);
  const modelDir = folder.modelDir(0, run.kind);
  await Deno.mkdir(modelDir, { recursive: true });
  await Deno.writeTextFile(folder.configPath, json(run.config));
  if (run.tokenizer.kind === "bpe") {
    await saveBpeTokenizer(
      run.tokenizer.tokenizer as Parameters<typeof saveBpeTokenizer>[0],
      folder.tokenizerPath,
    );
  }
  await writeSafetensors(`${modelDir}/model.safetensors`, run.tensors, {
    format: "d3pm-transformer",
    config: JSON.stringify(run.model),
  });
  await Deno.writeTextFile(`${modelDir}/config.json`, json(run.model));
  await folder.writeProcess(0, run.kind, run.process);
  await Deno.writeTextFile(folder.importPath, json(run.record));
}

// The run's configuration and the model's process: those of the project's
// own export when the directory carries them (checked to describe this
// very model), else a preset's with this model's shape.
function runOf(
  model: ModelConfig,
  kind: string,
  tokenizer: ReadTokenizer,
  to: string,
  provenance: { run?: unknown; process?: unknown } | undefined,
): { config: ExperimentConfig; process: object } {
  const contestant = contestantOf(kind);
  const config = experimentConfig(provenance?.run, model, kind, tokenizer, to);
  const expected = contestant.modelConfig(config, model.vocabSize);
  if (JSON.stringify(validateConfig(expected)) !== JSON.stringify(model)) {
    throw new InteropError(
      `config.json's d3pm_deno.run describes another model than its own fields (${
        JSON.stringify(expected)
      } vs ${JSON.stringify(model)})`,
    );
  }
  const base = tokenizer.baseSize;
  const specials = { bos: base, eos: base + 1, pad: base + 2, mask: base + 3 };
  // The process is the one the run's configuration and this vocabulary
  // make. A d3pm_deno.process that says otherwise (another mask id, vocab
  // or step count) is refused, not restored: restoring it would trust its
  // sizes, and a model run with another mask id computes something else.
  const own = contestant.process(config, {
    tokenizer: tokenizer.tokenizer,
    specials,
  }).toJSON();
  // Rows added here, or an export of a model imported so (its process
  // says so), score over the checkpoint's outputs only.
  const saved = provenance?.process as { outputs?: unknown } | undefined;
  const process = !tokenizer.hasSpecials || saved?.outputs !== undefined
    ? outputsOnly(own, kind, tokenizer)
    : own;
  if (provenance?.process !== undefined) {
    const differs = firstDifference(provenance.process, process);
    if (differs !== undefined) {
      throw new InteropError(
        `config.json's d3pm_deno.process differs from the process its run and tokenizer make (at ${differs}): restore the config.json deno task export wrote`,
      );
    }
  }
  return { config, process };
}

/**
 * The causal model's process when its special rows were added: the added
 * rows are output rows too (the head is tied), so they would draw
 * probability GPT-2 never gave them — the copies of `<|endoftext|>` its
 * logit each. Scoring's softmax runs over the base ids only (`outputs`),
 * `<|bos|>`/`<|eos|>` targets are scored as `<|endoftext|>` (`alias`), and
 * the sampler never draws an added id (`suppress`): NLL, the judge's gen
 * PPL and samples are the checkpoint's own. Without `<|endoftext|>` (a BPE
 * that lacks it) nothing can stand for a document's end, and the process
 * stays the run's.
 */
function outputsOnly(
  process: object,
  kind: string,
  tokenizer: ReadTokenizer,
): object {
  const eot = tokenizer.endOfText;
  if (kind !== "ar" || eot === undefined) return process;
  const base = tokenizer.baseSize;
  const [bos, eos, pad, mask] = [base, base + 1, base + 2, base + 3];
  const ar = process as { padId?: number; suppress?: number[] };
  return {
    ...process,
    suppress: [
      ...new Set([...(ar.suppress ?? []), mask, pad, bos, eos]),
    ].filter((id) => id !== ar.padId),
    outputs: base,
    alias: [[bos, eot], [eos, eot]],
  };
}

// The first path where two JSON values differ (object keys in any order),
// or undefined when they are equal.
function firstDifference(
  a: unknown,
  b: unknown,
  path = "process",
): string | undefined {
  if (
    typeof a !== "object" || a === null || typeof b !== "object" || b === null
  ) {
    return Object.is(a, b) ? undefined : path;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return path;
  const x = a as Record<string, unknown>, y = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
  for (const k of [...keys].sort()) {
    if (!Object.hasOwn(x, k) || !Object.hasOwn(y, k)) return `${path}.${k}`;
    const d = firstDifference(x[k], y[k], `${path}.${k}`);
    if (d !== undefined) return d;
  }
  return undefined;
}

// The directory's config.json and the architecture it names, refused
// unless the importer reads it.
async function readArchitecture(from: string): Promise<{
  hf: Record<string, unknown>;
  modelType: string;
  architecture: string;
  contestant: string;
}> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(from);
  } catch {
    throw new InteropError(
      `No such directory: ${from}: --from takes a local Hugging Face model directory (config.json with ${SUPPORTED_FILES}); nothing is downloaded`,
    );
  }
  if (!info.isDirectory) {
    throw new InteropError(
      `${from} is not a directory: --from takes a Hugging Face model directory (config.json with its weights)`,
    );
  }
  let hf: Record<string, unknown>;
  try {
    hf = await readJsonObject(`${from}/config.json`, 4 << 20);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InteropError(
        `No config.json in ${from}: --from takes a Hugging Face model directory (config.json with ${SUPPORTED_FILES})`,
      );
    }
    throw e;
  }
  const modelType = String(hf.model_type ?? "");
  const classes = Array.isArray(hf.architectures)
    ? hf.architectures.map(String)
    : [];
  const known = Object.hasOwn(ARCHITECTURES, modelType)
    ? ARCHITECTURES[modelType]
    : undefined;
  const foreign = classes.filter((c) => !known?.classes.includes(c));
  if (!known || foreign.length) {
    throw new InteropError(
      `Unknown architecture ${
        (foreign.length ? foreign : classes).join(", ") || "(none named)"
      } (model_type ${
        modelType || "missing"
      }): the importer reads ${SUPPORTED}`,
    );
  }
  return {
    hf,
    modelType,
    architecture: classes[0] ?? known.classes[0],
    contestant: known.contestant,
  };
}

// The embedding with the project's special rows: a directory that adds
// the four special tokens (its own export) keeps their rows; any other
// gets them added (see importCheckpoint). The head, when stored, must
// equal the embedding.
async function importEmbedding(
  checkpoint: CheckpointFiles,
  plan: ImportPlan,
  tokenizer: ReadTokenizer,
): Promise<{
  table: Float32Array;
  stored: number;
  dropped: number;
  added: Record<string, string>;
}> {
  const source = checkpoint.tensors.get(plan.embedding)!;
  const [rows, d] = source.shape;
  const base = tokenizer.baseSize;
  const needed = tokenizer.hasSpecials ? base + 4 : base;
  if (rows < needed) {
    throw new InteropError(
      `${plan.embedding} has ${rows} rows, fewer than the tokenizer's ${needed} ids`,
    );
  }
  const wte = toFloat32(await source.read(), source.dtype, source.where);
  if (plan.head) {
    const head = checkpoint.tensors.get(plan.head)!;
    const values = toFloat32(await head.read(), head.dtype, head.where);
    if (!sameValues(values, wte)) {
      throw new InteropError(
        `${plan.head} differs from ${plan.embedding}: an untied output head; the project's models tie the head to the embedding, so only tied checkpoints are imported`,
      );
    }
  } else if (!plan.tied) {
    throw new InteropError(
      `config.json unties the head (tie_word_embeddings false) but the checkpoint stores none`,
    );
  }
  const { table, added } = tokenizer.hasSpecials
    ? { table: wte.slice(0, needed * d), added: {} }
    : extendEmbedding(wte, base, d, tokenizer.endOfText);
  return { table, stored: rows, dropped: rows - needed, added };
}

// The run's tensors in canonical order, each read and converted when
// written.
function outTensors(
  model: ModelConfig,
  plan: ImportPlan,
  checkpoint: CheckpointFiles,
  embedding: Float32Array,
): OutTensor[] {
  const sources = new Map(plan.tensors.map((t) => [t.name, t]));
  return [...parameterShapes(model)].map(([name, shape]) => ({
    name,
    shape,
    values: async () => {
      if (name === "wte.weight") return embedding;
      const t = sources.get(name)!;
      const s = checkpoint.tensors.get(t.source)!;
      const values = toFloat32(await s.read(), s.dtype, s.where);
      return t.convert ? t.convert(values) : values;
    },
  }));
}

const SUPPORTED_FILES = "model.safetensors or pytorch_model.bin";

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

// Every stored tensor is one the plan reads or drops, and each it reads is
// there with the shape the config implies and a floating dtype.
function checkNames(
  from: string,
  checkpoint: CheckpointFiles,
  plan: ImportPlan,
): void {
  const used = new Map<string, number[] | null>([
    [plan.embedding, null],
    ...plan.tensors.map((t) => [t.source, t.sourceShape] as [string, number[]]),
  ]);
  if (plan.head) used.set(plan.head, null);
  const dropped = new Set(plan.dropped);
  const unexpected = [...checkpoint.tensors.keys()].filter((n) =>
    !used.has(n) && !dropped.has(n)
  );
  const describe =
    `the model config.json describes (${plan.model.nLayer} layers, width ${plan.model.dModel}, ${plan.model.nHead} heads, MLP ${plan.model.dMlp})`;
  if (unexpected.length) {
    throw new InteropError(
      `${from}: ${unexpected.length} of its ${checkpoint.tensors.size} tensors are not part of ${describe}, e.g. ${
        unexpected[0].slice(0, 80)
      }`,
    );
  }
  for (const [name, shape] of used) {
    const t: SourceTensor | undefined = checkpoint.tensors.get(name);
    if (!t) {
      throw new InteropError(
        `${from}: tensor ${name} is missing; ${describe} needs it`,
      );
    }
    if (!FLOAT_DTYPES.includes(t.dtype)) {
      throw new InteropError(
        `${t.where} has dtype ${t.dtype}; weights must be floating point (${
          FLOAT_DTYPES.join(", ")
        })`,
      );
    }
    if (shape && t.shape.join() !== shape.join()) {
      throw new InteropError(
        `${t.where} is [${t.shape}] but ${describe} needs [${shape}]`,
      );
    }
  }
  const wte = checkpoint.tensors.get(plan.embedding)!;
  if (wte.shape.length !== 2 || wte.shape[1] !== plan.model.dModel) {
    throw new InteropError(
      `${wte.where} is [${wte.shape}] but ${describe} needs [vocab, ${plan.model.dModel}]`,
    );
  }
  if (wte.shape[0] !== plan.vocabSize) {
    throw new InteropError(
      `config.json says vocab_size ${plan.vocabSize} but ${wte.where} has ${
        wte.shape[0]
      } rows`,
    );
  }
  if (plan.head) {
    const head = checkpoint.tensors.get(plan.head)!;
    if (head.shape.join() !== wte.shape.join()) {
      throw new InteropError(
        `${head.where} is [${head.shape}], not the embedding's [${wte.shape}]`,
      );
    }
  }
}

async function chooseTokenizer(
  from: string,
  choice: "dir" | "gpt2",
  plan: ImportPlan,
): Promise<ReadTokenizer> {
  const read = await readTokenizerFiles(from);
  if (choice === "gpt2" || !read) {
    if (choice !== "gpt2") {
      throw new InteropError(
        `No tokenizer files in ${from} (vocab.json and merges.txt, or tokenizer.json): add them, or pass --tokenizer gpt2 to use the project's copy of GPT-2's`,
      );
    }
    if (read && read.kind !== "gpt2") {
      throw new InteropError(
        `--tokenizer gpt2, but ${from} holds its own tokenizer files (${
          read.files.join(", ")
        }: ${read.baseSize} ids, not GPT-2's): leave out --tokenizer gpt2 to read them`,
      );
    }
    const gpt2 = await loadGpt2Tokenizer();
    return {
      kind: "gpt2",
      tokenizer: gpt2,
      baseSize: gpt2.baseSize,
      hasSpecials: read?.kind === "gpt2" && read.hasSpecials,
      endOfText: 50256,
      extra: read?.kind === "gpt2" ? read.extra : [],
      files: [],
    };
  }
  if (read.kind === "bpe" && plan.vocabSize < read.baseSize) {
    throw new InteropError(
      `The tokenizer in ${from} has ${read.baseSize} ids but the model ${plan.vocabSize}`,
    );
  }
  return read;
}

function experimentConfig(
  saved: unknown,
  model: ModelConfig,
  kind: string,
  tokenizer: ReadTokenizer,
  out: string,
): ExperimentConfig {
  const folder = { out, resume: false, force: false, models: kind, seeds: 1 };
  try {
    if (typeof saved === "object" && saved !== null && !Array.isArray(saved)) {
      // The project's own export: its run's configuration in this folder
      // (the caller checks that it describes the same model). A run judged
      // by its own AR model keeps that judge only with the AR model.
      const judge = (saved as { judge?: unknown }).judge;
      return checkConfig({
        ...saved,
        ...folder,
        ...(judge === "self" && kind !== "ar" ? { judge: "auto" } : {}),
      });
    }
    // A preset's options with the checkpoint's shape; its training options
    // are nobody's (an export of the run says the weights are imported),
    // but an EMA or a best validation it never had is not claimed.
    return resolveConfig({
      preset: tokenizer.kind === "gpt2" ? "paper" : "tiny",
      ...folder,
      emaDecay: 0,
      keep: "last",
      tokenizer: tokenizer.kind,
      // The vocabulary size is an option of a BPE only (the byte and GPT-2
      // tokenizers fix it): given with another, the run's options refuse it.
      ...(tokenizer.kind === "bpe" ? { vocabSize: model.vocabSize } : {}),
      blockLength: model.contextLength,
      nLayer: model.nLayer,
      nHead: model.nHead,
      dModel: model.dModel,
      dMlp: model.dMlp,
      positions: model.positions,
      dropout: model.dropout,
      ...(model.kind === "bidirectional"
        ? {
          timeConditioning: model.timeConditioning,
          alibi: model.alibi ?? 0,
          alibiMode: model.alibiMode ?? "symmetric",
        }
        : {}),
    });
  } catch (e) {
    throw new InteropError(
      `The imported model does not fit a run's options: ${
        (e as Error).message
      }`,
    );
  }
}

// How many of the tensors read are of each dtype.
function dtypesOf(
  checkpoint: CheckpointFiles,
  plan: ImportPlan,
): Record<string, number> {
  const dtypes: Record<string, number> = {};
  for (const name of [plan.embedding, ...plan.tensors.map((t) => t.source)]) {
    const dtype = checkpoint.tensors.get(name)!.dtype;
    dtypes[dtype] = (dtypes[dtype] ?? 0) + 1;
  }
  return dtypes;
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// The base rows, then <|bos|>, <|eos|>, <|pad|>, <|mask|> (see importCheckpoint).
function extendEmbedding(
  wte: Float32Array,
  base: number,
  d: number,
  endOfText: number | undefined,
): { table: Float32Array; added: Record<string, string> } {
  const table = new Float32Array((base + 4) * d);
  table.set(wte.subarray(0, base * d));
  const mean = new Float64Array(d);
  for (let r = 0; r < base; r++) {
    for (let j = 0; j < d; j++) mean[j] += wte[r * d + j];
  }
  const meanRow = Float32Array.from(mean, (x) => x / base);
  const eot = endOfText !== undefined
    ? wte.subarray(endOfText * d, (endOfText + 1) * d)
    : undefined;
  const added: Record<string, string> = {};
  for (const [i, kind] of SPECIAL_ORDER.entries()) {
    const copyEot = eot && (kind === "bos" || kind === "eos");
    table.set(copyEot ? eot : meanRow, (base + i) * d);
    added[kind] = copyEot
      ? `row of <|endoftext|> (${endOfText})`
      : `mean of the ${base} base rows`;
  }
  return { table, added };
}
