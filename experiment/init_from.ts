/**
 * Starting the D3PM's denoiser from a trained model (`--init-from`): which
 * model a `RUN[/seed-N/ar|mlm]` names, loading its weights after checking
 * the vocabulary, what its training cost (for matched total compute), and
 * the attention window of attention-mask annealing (`--anneal-steps`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { sha256Hex } from "@d3pm/core";
import type { Tokenizer } from "@d3pm/tokenizer";
import {
  loadModel,
  type ModelConfig,
  parameterShapes,
  readWeightsFile,
  type Transformer,
  WEIGHTS_FILE,
} from "@d3pm/transformer";
import { inspectTrained, type TrainedModelInfo } from "./load.ts";
import { ConfigError, type ExperimentConfig } from "./options.ts";
import { D3PM } from "./contestants/d3pm.ts";
import { sameFolder } from "./_paths.ts";
import { RunFolder } from "./run_folder.ts";
import { checkWeights } from "./_weights.ts";

/** The model an `--init-from` names. */
export interface InitSource {
  /** The run folder. */
  dir: string;
  /** Its seed. */
  seed: number;
  /** Its contestant: `ar` or `mlm`. */
  model: "ar" | "mlm";
}

/**
 * What the source model cost to train, counted into the run's compute: the
 * tokens and FLOPs of a run's model, none for an imported checkpoint (`deno
 * task import`), whose training is not known.
 */
export interface InitFigures extends InitSource {
  /** Tokens the source trained on (absent for an imported checkpoint). */
  tokens?: number;
  /** Its parameters. */
  parameters: number;
  /**
   * Its training work, `6 · parameters · tokens` FLOPs (forward and
   * backward; absent for an imported checkpoint).
   */
  flops?: number;
  /** An imported checkpoint's origin, from the source's `import.json`. */
  imported?: { from: string; architecture: string };
  /**
   * SHA-256 (hex) of the source's `model.safetensors` when the D3PM started
   * from it: a resumed run's checkpoint is tied to it, so a source replaced
   * at the same path is refused, not silently counted (absent in runs made
   * before it was recorded).
   */
  weightsSha256?: string;
}

/**
 * The model an `--init-from` value names: `RUN` (the same seed's `ar`),
 * `RUN/seed-N` (its `ar`), or `RUN/seed-N/ar|mlm`.
 *
 * @param spec The option's value.
 * @param seed The run's seed (the default).
 * @returns The source.
 *
 * @example
 * ```ts
 * import { parseInitFrom } from "@d3pm/experiment";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(parseInitFrom("runs/ar", 2), { dir: "runs/ar", seed: 2, model: "ar" });
 * assertEquals(parseInitFrom("runs/x/seed-0/mlm", 2), { dir: "runs/x", seed: 0, model: "mlm" });
 * assertThrows(() => parseInitFrom("runs/x/seed-0/d3pm", 0), Error, "ar or mlm");
 * ```
 */
export function parseInitFrom(spec: string, seed: number): InitSource {
  const parts = spec.replace(/\/+$/, "").split("/");
  let model: string | undefined, s = seed;
  if (parts.length >= 2 && /^seed-\d+$/.test(parts.at(-2)!)) {
    model = parts.pop();
  }
  if (parts.length >= 2 && /^seed-\d+$/.test(parts.at(-1)!)) {
    s = Number(parts.pop()!.slice(5));
  }
  if (model !== undefined && model !== "ar" && model !== "mlm") {
    throw new ConfigError(
      `Option --init-from names model "${model}" in ${spec}; accepted: RUN, RUN/seed-N, RUN/seed-N/ar or mlm`,
    );
  }
  return {
    dir: parts.join("/") || ".",
    seed: s,
    model: (model ?? "ar") as "ar" | "mlm",
  };
}

/** A text whose ids two tokenizers must agree on to share a vocabulary. */
const PROBE =
  " = Valkyria Chronicles III = \n The game 's battle system , the BliTZ system , is carried over directly from Valkyira Chronicles . @-@ 1,234 ( £ ) é";

/**
 * Put a trained model's weights into a fresh denoiser: the source's
 * tokenizer must be the run's (the same id, size, special ids, and ids of a
 * probe text); the denoiser may have more embedding rows than the source
 * (a mask row the source lacks: it keeps its fresh initialisation), every
 * other weight must have the same shape.
 *
 * @param model The denoiser, freshly built.
 * @param source The source model.
 * @param tokenizer The run's tokenizer.
 * @returns What the source cost to train.
 *
 * @example A folder that holds no run is named, the denoiser left as built
 * ```ts
 * import { ConfigError, initialiseFrom, parseInitFrom } from "@d3pm/experiment";
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { preset, Transformer } from "@d3pm/transformer";
 * import { assertRejects } from "@std/assert";
 * const tokenizer = new ByteTokenizer();
 * const model = new Transformer(
 *   preset("micro", { kind: "bidirectional", vocabSize: 260, contextLength: 8, dModel: 8, dMlp: 16, dTime: 8 }),
 *   { seed: 0 },
 * );
 * const dir = await Deno.makeTempDir();
 * await assertRejects(
 *   () => initialiseFrom(model, parseInitFrom(dir, 0), tokenizer),
 *   ConfigError,
 *   `Option --init-from ${dir}/seed-0/ar: Cannot read run ${dir}: no config.json there (not a run folder`,
 * );
 * model.dispose();
 * await Deno.remove(dir);
 * ```
 */
export async function initialiseFrom(
  model: Transformer,
  source: InitSource,
  tokenizer: Tokenizer,
): Promise<InitFigures> {
  // Checked from its files and its weights' header; then the weights are
  // read once, hashed and loaded from the same bytes.
  const info = await inspectSource(source);
  checkVocabulary(info.tokenizer, tokenizer, source);
  checkShape(info.modelConfig, model.config, source);
  const { bytes, weightsSha256 } = await sourceWeights(source, info);
  const from = await sourceStep(
    source,
    () => loadModel(info.modelDir, { weights: bytes }),
  );
  try {
    const weights = new Map<string, tf.Tensor>();
    for (const [name, v] of model.variables) {
      const w = from.variables.get(name)!;
      const same = w.shape.every((n, i) => n === v.shape[i]);
      weights.set(
        name,
        same
          ? w
          : tf.tidy(() =>
            w.shape[0] > v.shape[0]
              ? w.slice([0, 0], [v.shape[0], -1]) // the first positions
              : tf.concat([w, v.slice([w.shape[0], 0])], 0) // + the fresh mask row
          ),
      );
    }
    model.setWeights(weights);
    for (const [name, w] of weights) {
      if (w !== from.variables.get(name)) w.dispose();
    }
    const c = info.config;
    let parameters = 0;
    for (const v of from.variables.values()) parameters += v.size;
    // An imported checkpoint's config.json holds a preset's steps, not its
    // training: its cost is unknown, and not counted.
    const imported = await new RunFolder(source.dir).importRecord().catch(
      (e: Error) => {
        throw new ConfigError(
          `Option --init-from ${describe(source)}: ${e.message}`,
        );
      },
    );
    if (imported) {
      return {
        ...source,
        parameters,
        imported,
        weightsSha256,
      };
    }
    const tokens = c.steps * c.batchSize * c.blockLength;
    return {
      ...source,
      tokens,
      parameters,
      flops: 6 * parameters * tokens,
      weightsSha256,
    };
  } finally {
    from.dispose();
  }
}

/**
 * Check, before a run writes anything, that every seed's `--init-from`
 * source is a trained model (its files as loading checks them, its weights
 * file's header, not its weights: {@linkcode initialiseFrom} reads those
 * once), is not the run's own folder, and fits the run's D3PM: the same
 * vocabulary and the same weights (so that a wrong source fails at once,
 * not after the judge and the other models have trained and the run folder
 * is written).
 *
 * @param c The run's configuration (nothing to check without
 *   `--init-from`); the caller checks that it trains a D3PM.
 * @param tokenizer The run's tokenizer.
 * @throws {ConfigError} Naming the source and what is wrong with it.
 *
 * @example
 * ```ts
 * import { checkInitFrom, ConfigError, resolveConfig } from "@d3pm/experiment";
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { assertRejects } from "@std/assert";
 * const c = resolveConfig({ preset: "micro", initFrom: "/nowhere" });
 * await assertRejects(() => checkInitFrom(c, new ByteTokenizer()), ConfigError, "Option --init-from /nowhere");
 * ```
 */
export async function checkInitFrom(
  c: ExperimentConfig,
  tokenizer: Tokenizer,
): Promise<void> {
  if (c.initFrom === "") return;
  const first = c.firstSeed ?? 0;
  const shape = D3PM.modelConfig(c, tokenizer.vocabSize);
  for (let seed = first; seed < first + c.seeds; seed++) {
    const source = parseInitFrom(c.initFrom, seed);
    // Its files and its weights' header: the weights are read once, when
    // the D3PM starts from them (initialiseFrom).
    const from = await inspectSource(source);
    if (await sameFolder(source.dir, c.out)) {
      throw new ConfigError(
        `Option --init-from ${c.initFrom} names the run's own --out folder: the D3PM would start from the AR model this run trains there, not the one there now (--force moves that aside); move or copy the source run elsewhere`,
      );
    }
    checkVocabulary(from.tokenizer, tokenizer, source);
    checkShape(from.modelConfig, shape, source);
  }
}

/**
 * Refuse a source whose weights are not the denoiser's: every weight of
 * one must be in the other with the same shape (the denoiser's embedding
 * may have more rows: a mask row the source lacks keeps its fresh
 * initialisation), and the heads must split them alike.
 *
 * @param theirs The source model's configuration.
 * @param ours The denoiser's.
 * @param source The source, for the message.
 * @throws {ConfigError} Naming the first difference.
 *
 * @example
 * ```ts
 * import { checkShape, D3PM, resolveConfig } from "@d3pm/experiment";
 * import { assertThrows } from "@std/assert";
 * const source = { dir: "runs/x", seed: 0, model: "ar" as const };
 * const d3pm = D3PM.modelConfig(resolveConfig({ preset: "micro" }), 260);
 * checkShape({ ...d3pm, kind: "causal", vocabSize: 259 }, d3pm, source);
 * assertThrows(
 *   () => checkShape({ ...d3pm, nLayer: 2 }, d3pm, source),
 *   Error,
 *   "it has weight h.1.ln_1.weight, which the D3PM lacks",
 * );
 * ```
 */
export function checkShape(
  theirs: ModelConfig,
  ours: ModelConfig,
  source: InitSource,
): void {
  const there = parameterShapes(theirs), here = parameterShapes(ours);
  const missing = [...here.keys()].find((n) => !there.has(n));
  const extra = [...there.keys()].find((n) => !here.has(n));
  const differs = [...here].find(([name, v]) => {
    const w = there.get(name);
    if (!w) return false;
    const moreRows = name === "wte.weight" && w[1] === v[1] && w[0] < v[0];
    // A learned position table longer than the block: its first rows.
    const fewerPositions = name === "wpe.weight" && w[1] === v[1] &&
      w[0] > v[0];
    return !moreRows && !fewerPositions && w.join() !== v.join();
  });
  const why = missing !== undefined
    ? `it has no weight ${missing}`
    : extra !== undefined
    ? `it has weight ${extra}, which the D3PM lacks`
    : differs
    ? `${differs[0]} is [${there.get(differs[0])}] there and [${
      differs[1]
    }] here`
    : theirs.nHead !== ours.nHead
    ? `${theirs.nHead} attention heads there, ${ours.nHead} here`
    : undefined;
  if (why) {
    throw new ConfigError(
      `Cannot start the D3PM from ${
        describe(source)
      }: ${why} (the model options must match: --n-layer, --d-model, --n-head, --d-mlp, --positions, --block-length, --time-conditioning)`,
    );
  }
}

/**
 * The source's trained model checked, its weights unread, or a ConfigError
 * naming the option.
 */
function inspectSource(source: InitSource): Promise<TrainedModelInfo> {
  return sourceStep(
    source,
    () =>
      inspectTrained(source.dir, { seed: source.seed, model: source.model }),
  );
}

/**
 * The source's weights, read once, and their SHA-256, which must be the
 * one its run recorded (another seed's or run's weights put at its place
 * are refused).
 */
async function sourceWeights(
  source: InitSource,
  info: TrainedModelInfo,
): Promise<{ bytes: Uint8Array; weightsSha256: string }> {
  const path = `${info.modelDir}/${WEIGHTS_FILE}`;
  return await sourceStep(source, async () => {
    const bytes = await readWeightsFile(path, info.modelConfig);
    const weightsSha256 = sha256Hex(bytes);
    if (info.weightsSha256 !== undefined) {
      checkWeights(path, info.weightsSha256, weightsSha256);
    }
    return { bytes, weightsSha256 };
  });
}

/** A step of reading the source; its failure a ConfigError naming the option. */
async function sourceStep<T>(
  source: InitSource,
  step: () => Promise<T>,
): Promise<T> {
  try {
    return await step();
  } catch (e) {
    throw new ConfigError(
      `Option --init-from ${describe(source)}: ${
        (e as Error).message.split("\n")[0]
      }`,
    );
  }
}

function describe(s: InitSource): string {
  return `${s.dir}/seed-${s.seed}/${s.model}`;
}

/**
 * Refuse a source whose vocabulary is not the run's.
 *
 * @param theirs The source's tokenizer.
 * @param ours The run's.
 * @param source The source, for the message.
 *
 * @example The same tokenizer passes; another id is named
 * ```ts
 * import { checkVocabulary, ConfigError, parseInitFrom } from "@d3pm/experiment";
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { assertThrows } from "@std/assert";
 * const ours = new ByteTokenizer();
 * const source = parseInitFrom("runs/x", 0);
 * checkVocabulary(new ByteTokenizer(), ours, source);
 * const theirs = { id: "bpe-a", vocabSize: 260, special: ours.special, encode: (t: string) => ours.encode(t) };
 * assertThrows(
 *   () => checkVocabulary(theirs, ours, source),
 *   ConfigError,
 *   "Cannot start the D3PM from runs/x/seed-0/ar: its vocabulary is not this run's (tokenizer bpe-a there, byte-v1 here)",
 * );
 * ```
 */
export function checkVocabulary(
  theirs: Pick<Tokenizer, "id" | "vocabSize" | "special" | "encode">,
  ours: Pick<Tokenizer, "id" | "vocabSize" | "special" | "encode">,
  source: InitSource,
): void {
  const why = theirs.id !== ours.id
    ? `tokenizer ${theirs.id} there, ${ours.id} here`
    : theirs.vocabSize !== ours.vocabSize
    ? `${theirs.vocabSize} ids there, ${ours.vocabSize} here`
    : JSON.stringify(theirs.special) !== JSON.stringify(ours.special)
    ? `special ids ${JSON.stringify(theirs.special)} there, ${
      JSON.stringify(ours.special)
    } here`
    : theirs.encode(PROBE).join() !== ours.encode(PROBE).join()
    ? "the same text has other ids there"
    : undefined;
  if (why) {
    throw new ConfigError(
      `Cannot start the D3PM from ${
        describe(source)
      }: its vocabulary is not this run's (${why}); train the source with the same --tokenizer, --vocab-size and --data`,
    );
  }
}

/**
 * Attention-mask annealing: how many later positions each position sees
 * before training step `step` (counted from 0): 0 (causal) at step 0,
 * growing linearly to the whole block at `annealSteps`, then `Infinity`.
 *
 * @param step Steps done.
 * @param annealSteps Steps of the annealing (0: none).
 * @param length The block length.
 * @returns The window for `Transformer.attentionWindow`.
 *
 * @example
 * ```ts
 * import { annealWindow } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals([0, 50, 99, 100].map((s) => annealWindow(s, 100, 128)), [0, 63, 125, Infinity]);
 * assertEquals(annealWindow(0, 0, 128), Infinity);
 * ```
 */
export function annealWindow(
  step: number,
  annealSteps: number,
  length: number,
): number {
  if (annealSteps === 0 || step >= annealSteps) return Infinity;
  return Math.floor(((length - 1) * step) / annealSteps);
}
