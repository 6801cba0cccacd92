/**
 * The experiment's options, each defined once: its kind, default, accepted
 * range, help line, whether `--resume` may change it, and — for an option
 * added after runs had been made — the value that reproduces those runs.
 * {@linkcode ExperimentConfig}, `--help`, the range checks,
 * {@linkcode ADDED_KEYS} and {@linkcode RESUMABLE_KEYS} all come from
 * {@linkcode OPTIONS}; the checks that relate two options are
 * {@linkcode RULES}.
 *
 * @module
 */
import {
  convertOption,
  listItems,
  type OptionSpec,
  type OptionValue,
} from "@d3pm/cli";

/**
 * The headings `--help` lists the options under, by the key each option
 * names as its `group`, in the order shown. A plain `--help` shows the
 * options marked `common`; `--help all` every one.
 *
 * @example Every option names one of the groups
 * ```ts
 * import { OPTION_GROUPS, OPTIONS } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(OPTION_GROUPS[OPTIONS.lr.group], "Training");
 * assertEquals(
 *   Object.values(OPTIONS).filter((o) => !(o.group in OPTION_GROUPS)),
 *   [],
 * );
 * ```
 */
export const OPTION_GROUPS = {
  run: "Run",
  data: "Data and tokenizer",
  model: "Model",
  training: "Training",
  diffusion: "Diffusion",
  evaluation: "Evaluation and judge",
  engine: "Engine",
} as const;

/** A key of {@linkcode OPTION_GROUPS}. */
export type OptionGroup = keyof typeof OPTION_GROUPS;

/** One experiment option: a command-line option with what a resume may do with it. */
export interface ExperimentOption extends OptionSpec {
  /** The heading `--help` lists it under. */
  readonly group: OptionGroup;
  /**
   * `--resume` may change it: `true`, it steers the process, not what is
   * trained or measured; `"verified"`, it names where the run's inputs
   * are, and a resume may name another place when the files there hash to
   * the run's record of them (`data`: each split's SHA-256 in `data.json`;
   * a run without that record keeps its value).
   */
  readonly resumable?: boolean | "verified";
  /**
   * Set for an option added after runs had been made: the value that
   * reproduces what those runs did. A saved `config.json` or checkpoint
   * without the key reads as this value.
   */
  readonly olderRuns?: string | number | boolean;
  /**
   * The option only means something when another option has one of these
   * `values` (`vocabSize` only for `tokenizer: bpe`), or is `above` a number
   * (`staggerSpan` only with `stagger` above 0): giving it otherwise is an
   * error, not a value recorded and never used.
   */
  readonly appliesWhen?: {
    readonly option: string;
    readonly values?: readonly (string | number | boolean)[];
    readonly above?: number;
  };
  /**
   * Who reads the option, when not every run does: the contestants of
   * `--models` that read it (`contestants`: each contestant declares its
   * own, `Contestant.reads`), and the judges of these kinds (`judges`:
   * `auto`, `self`, or `run` for a run folder). A new run none of whose
   * readers take part refuses a value other than the option's default or
   * the preset's (`unreadOption`): it would be recorded and never used.
   */
  readonly readBy?: {
    readonly contestants?: boolean;
    readonly judges?: readonly ("auto" | "self" | "run")[];
  };
  /**
   * The value that turns the option off where it is not the default
   * (`exactBlocks`' 0: skip): never refused as unread, since a run without
   * its readers does just that.
   */
  readonly off?: string | number | boolean;
}

/**
 * Every option of the experiment, in `--help` order within each of
 * {@linkcode OPTION_GROUPS} (a plain `--help` shows the `common` ones). The flag is the key in
 * kebab-case (`blockLength` → `--block-length`). An option without a
 * default takes its preset's (the model's shape: the transformer preset of
 * the same name).
 *
 * @example A sweep reads an option's range from the table
 * ```ts
 * import { OPTIONS } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(OPTIONS.dropout.min, 0);
 * assertEquals(OPTIONS.dropout.below, 1);
 * assertEquals(OPTIONS.keep.choices, ["last", "best"]);
 * ```
 */
export const OPTIONS = {
  /** The preset the run starts from. */
  preset: {
    group: "run",
    common: true,
    kind: "choice",
    choices: ["micro", "tiny", "small", "paper"],
    default: "tiny",
    help:
      "micro (about a minute, for tests of the wiring), tiny (the default: about 2½ minutes on a quiet 2-core CPU, judge included; about 8½ with --engine tfjs), small (a 2-core CPU in about an hour, 3 seeds), paper (the thesis setting, for a GPU: GPT-2 small, GPT-2 vocabulary, context 1024; pass --data DIR with WikiText-103)",
  },
  /**
   * The contestants, comma-separated (`ar`, `d3pm`, `mlm`: a BERT-style
   * masked language model on the D3PM's backbone, or any registered one);
   * stored in training order.
   */
  models: {
    group: "run",
    common: true,
    kind: "string",
    value: "LIST",
    default: "ar,d3pm",
    // Not a list: the table is built before any contestant registers
    // (deno task experiment --help lists them, from the registry).
    help:
      "contestants, comma-separated, from those registered (deno task experiment --help lists them)",
  },
  /** Number of seeds (0..seeds−1), each a fresh set of models. */
  seeds: {
    group: "run",
    common: true,
    kind: "integer",
    min: 1,
    max: 1000,
    default: 1,
    help: "seeds 0..N−1, each a fresh set of models",
  },
  /**
   * The first seed: the run trains seeds `firstSeed..firstSeed+seeds−1`, so
   * that one seed of a sweep is a run of its own (`--seeds 1 --first-seed 2`
   * is seed 2 of `--seeds 3`, bit for bit).
   */
  firstSeed: {
    group: "run",
    kind: "integer",
    min: 0,
    max: 1000,
    default: 0,
    olderRuns: 0,
    help: "first seed: the run trains seeds first-seed..first-seed+N−1",
  },
  /** tfjs backend. */
  backend: {
    group: "engine",
    kind: "choice",
    choices: ["auto", "tensorflow", "webgpu", "blas", "wasm", "cpu"],
    default: "auto",
    resumable: true,
    help:
      "tfjs backend, for --engine tfjs (or auto, for the models that run on tfjs; refused with cpu and webgpu); the GPU engine is --engine webgpu",
  },
  /**
   * Training engine: `tfjs` (the backend above), `webgpu` (the fused engine
   * of `@d3pm/webgpu`, on any adapter, software ones too), `cpu` (the same
   * plan on `@d3pm/cpu`'s kernels), or `auto` (the fused engine on a real
   * GPU adapter, else the CPU engine; tfjs for the d3pm objective).
   */
  engine: {
    group: "engine",
    common: true,
    kind: "choice",
    choices: ["auto", "tfjs", "webgpu", "cpu"],
    default: "auto",
    help:
      "training engine: auto (the fused WebGPU engine on a real GPU, else cpu; tfjs for --diffusion-loss d3pm), tfjs, webgpu, cpu (the fused plan on the CPU kernels)",
  },
  /**
   * Steps between loss readings on the fused engine (each one GPU→CPU sync;
   * a reading logs the mean loss since the last one). Every engine reports
   * the mean of the last interval as its final train loss.
   */
  logEvery: {
    group: "engine",
    kind: "integer",
    min: 1,
    default: 10,
    resumable: true,
    help:
      "steps between loss readings on the fused engine (each logs the mean since the last); the final train loss is the mean of the last interval on every engine",
  },
  /**
   * Corpus directory (`wiki.{train,valid,test}.{tokens,raw}`, or plain text
   * `train.txt`, `valid.txt`, `test.txt`); empty: the embedded WikiText-2.
   */
  data: {
    group: "data",
    common: true,
    kind: "string",
    value: "DIR",
    default: "",
    resumable: "verified",
    help:
      "corpus folder: WikiText (wiki.{train,valid,test}.tokens|raw[.gz]) or your own plain UTF-8 text (train.txt, valid.txt or validation.txt, test.txt, each optionally .gz); default: the embedded WikiText-2",
  },
  /** Run folder. */
  out: {
    group: "run",
    common: true,
    kind: "string",
    value: "DIR",
    default: "runs/latest",
    resumable: true,
    help: "run folder",
  },
  /** Continue from the checkpoints in `out`. */
  resume: {
    group: "run",
    common: true,
    kind: "boolean",
    default: false,
    resumable: true,
    help:
      "continue the run in --out (trained models are not retrained; every model is evaluated again, a finished run's too)",
  },
  /** Start afresh in a folder that holds an earlier run (moved aside, not deleted). */
  force: {
    group: "run",
    common: true,
    kind: "boolean",
    default: false,
    resumable: true,
    help: "start afresh in --out; the old run is moved aside",
  },
  /** `bpe` (trained on the train split), `gpt2` or `byte`. */
  tokenizer: {
    group: "data",
    common: true,
    kind: "choice",
    choices: ["bpe", "gpt2", "byte"],
    default: "bpe",
    help: "bpe (trained on the train split), gpt2, byte",
  },
  /** Vocabulary size of a trained BPE (special tokens included). */
  vocabSize: {
    group: "data",
    kind: "integer",
    min: 1,
    max: 1 << 20,
    appliesWhen: { option: "tokenizer", values: ["bpe"] },
    help: "ids of a trained BPE, special tokens included",
  },
  /** Tokens per block (the models' context). */
  blockLength: {
    group: "data",
    kind: "integer",
    min: 2,
    max: 16384,
    help: "tokens per block: the models' context",
  },
  /** Transformer blocks. */
  nLayer: {
    group: "model",
    kind: "integer",
    min: 1,
    max: 1024,
    help: "Transformer blocks",
  },
  /** Attention heads. */
  nHead: {
    group: "model",
    kind: "integer",
    min: 1,
    max: 1024,
    help: "attention heads",
  },
  /** Residual width. */
  dModel: {
    group: "model",
    kind: "integer",
    min: 1,
    max: 65536,
    help: "residual width",
  },
  /** MLP width. */
  dMlp: {
    group: "model",
    kind: "integer",
    min: 1,
    max: 262144,
    help: "MLP width",
  },
  /** `learned` or `rotary` positions. */
  positions: {
    group: "model",
    kind: "choice",
    choices: ["learned", "rotary"],
    help: "learned or rotary positions",
  },
  /** Dropout rate. */
  dropout: {
    group: "model",
    kind: "number",
    min: 0,
    below: 1,
    help: "dropout rate",
  },
  /** Condition the D3PM denoiser on t (adaLN). */
  timeConditioning: {
    readBy: { contestants: true },
    group: "model",
    kind: "boolean",
    default: false,
    help: "condition the D3PM's denoiser on t (adaLN)",
  },
  /**
   * ALiBi slope of the bidirectional models' first head (D3PM and MLM; 0:
   * none): a prior towards neighbouring positions.
   */
  alibi: {
    readBy: { contestants: true },
    group: "model",
    kind: "number",
    min: 0,
    note: "0: none",
    default: 0,
    olderRuns: 0,
    help: "ALiBi slope of the D3PM's and MLM's first head (0: none)",
  },
  /**
   * Where the ALiBi heads look: `symmetric` (each at the position itself),
   * or `neighbours` (heads 0 and 1 centred on the left and the right
   * neighbour, the others symmetric). Without effect when `alibi` is 0.
   */
  alibiMode: {
    readBy: { contestants: true },
    appliesWhen: { option: "alibi", above: 0 },
    group: "model",
    kind: "choice",
    choices: ["symmetric", "neighbours"],
    default: "symmetric",
    olderRuns: "symmetric",
    help: "symmetric, or neighbours (ALiBi heads 0 and 1 look left and right)",
  },
  /** Optimiser steps per model (the token budget is matched across models). */
  steps: {
    group: "training",
    common: true,
    kind: "integer",
    min: 1,
    default: 300,
    help: "optimiser steps per model (tokens matched)",
  },
  /** Blocks per step. */
  batchSize: {
    group: "training",
    common: true,
    kind: "integer",
    min: 1,
    max: 65536,
    default: 8,
    help: "blocks per step",
  },
  /** Peak learning rate (of the D3PM and the MLM, and of the AR model unless `arLr` is set). */
  lr: {
    group: "training",
    common: true,
    kind: "number",
    above: 0,
    default: 1e-3,
    help: "peak learning rate (D3PM, MLM; AR too unless --ar-lr)",
  },
  /** Peak learning rate of the AR model and its judge (0: the same as `lr`); each model gets its own best. */
  arLr: {
    readBy: { contestants: true, judges: ["auto"] },
    group: "training",
    kind: "number",
    min: 0,
    note: "0: the same as --lr",
    default: 0,
    help: "peak learning rate of the AR model and the judge (0: --lr)",
  },
  /** Warm-up steps. */
  warmup: {
    group: "training",
    kind: "integer",
    min: 0,
    default: 30,
    help: "warm-up steps",
  },
  /**
   * The learning rate the cosine ends at, as a fraction of the peak (0: it
   * decays to nothing; 0.1, every older run's, nanoGPT's).
   */
  lrFinal: {
    group: "training",
    kind: "number",
    min: 0,
    max: 1,
    default: 0.1,
    olderRuns: 0.1,
    help: "final learning rate, a fraction of the peak (0: decay to 0)",
  },
  /** AdamW weight decay. */
  weightDecay: {
    group: "training",
    kind: "number",
    min: 0,
    default: 0.1,
    help: "AdamW weight decay",
  },
  /**
   * AdamW's β2, the decay of the squared-gradient average (0.95, every older
   * run's, nanoGPT's; MDLM trains with 0.999).
   */
  adamBeta2: {
    group: "training",
    kind: "number",
    above: 0,
    below: 1,
    default: 0.95,
    olderRuns: 0.95,
    help: "AdamW beta2 (the squared-gradient average's decay)",
  },
  /** Gradient clipping (global norm). */
  clipNorm: {
    group: "training",
    kind: "number",
    above: 0,
    default: 1,
    help: "gradient clipping (global norm)",
  },
  /** EMA decay of the weights used for evaluation (0 disables). */
  emaDecay: {
    group: "training",
    kind: "number",
    min: 0,
    below: 1,
    default: 0.99,
    help: "EMA of the evaluated weights (0: none)",
  },
  /** Steps between checkpoints. */
  checkpointEvery: {
    group: "training",
    kind: "integer",
    min: 1,
    default: 100,
    help: "steps between checkpoints",
  },
  /** `mdlm` (continuous SUBS objective) or `d3pm` (discrete hybrid bound). */
  diffusionLoss: {
    readBy: { contestants: true },
    group: "diffusion",
    kind: "choice",
    choices: ["mdlm", "d3pm"],
    default: "mdlm",
    help: "mdlm (continuous SUBS objective) or d3pm (discrete hybrid)",
  },
  /** Diffusion steps T of the discrete process. */
  diffusionSteps: {
    readBy: { contestants: true },
    group: "diffusion",
    kind: "integer",
    min: 1,
    max: 100000,
    default: 1000,
    help: "T of the discrete process",
  },
  /** Smallest time the D3PM's training loss draws (MDLM: 0.001). */
  tMin: {
    readBy: { contestants: true },
    group: "diffusion",
    kind: "number",
    min: 0,
    max: 1,
    default: 0.001,
    help: "smallest training time of the D3PM loss",
  },
  /** Largest time it draws (1; below 1 with a raised `tMin`: BD3-LM's clipped rate). */
  tMax: {
    readBy: { contestants: true },
    group: "diffusion",
    kind: "number",
    min: 0,
    max: 1,
    default: 1,
    help: "largest training time (< 1: a clipped mask rate)",
  },
  /**
   * Share of the D3PM's training rows drawn fully masked, at t = 1 (0:
   * none, as older runs). A clipped `tMax` never shows the denoiser a row
   * with nothing visible; these rows do.
   */
  fullMaskShare: {
    readBy: { contestants: true },
    group: "diffusion",
    kind: "number",
    min: 0,
    max: 1,
    default: 0,
    olderRuns: 0,
    help: "share of the D3PM's training rows fully masked at t = 1 (0: none)",
  },
  /**
   * Start the D3PM's denoiser from a trained model's weights:
   * `RUN[/seed-N/ar|mlm]` (default: the same seed's `ar`). The vocabulary
   * must be the run's. Empty: from scratch, as older runs.
   */
  initFrom: {
    readBy: { contestants: true },
    group: "diffusion",
    kind: "string",
    value: "RUN",
    default: "",
    olderRuns: "",
    help:
      "start the D3PM from a trained model: RUN[/seed-N/ar|mlm], RUN alone meaning its ar of the same seed (every engine; default none: from scratch)",
  },
  /**
   * Attention-mask annealing of the D3PM: over this many first steps the
   * window of later positions each position sees grows from 0 (causal) to
   * the whole block (0: bidirectional from the start, as older runs).
   */
  annealSteps: {
    readBy: { contestants: true },
    group: "diffusion",
    kind: "integer",
    min: 0,
    default: 0,
    olderRuns: 0,
    help:
      "steps over which the D3PM's attention relaxes from causal to bidirectional (0: none; tfjs engine only)",
  },
  /**
   * DiffuGPT's shift for the D3PM: position i's output predicts position
   * i + 1 (position 0 its own), as a causal model's does (false: none, as
   * older runs).
   */
  shift: {
    readBy: { contestants: true },
    group: "diffusion",
    kind: "boolean",
    default: false,
    olderRuns: false,
    help:
      "the D3PM's position i predicts token i + 1, as a causal model's (DiffuGPT's shift; tfjs engine only)",
  },
  /**
   * Tokens per block of the `bd3` contestant (block diffusion: MDLM within
   * blocks, autoregressive across them); a divisor of the block length.
   */
  bd3Block: {
    readBy: { contestants: true },
    group: "diffusion",
    kind: "integer",
    min: 1,
    default: 4,
    olderRuns: 4,
    help:
      "tokens per block of the bd3 contestant (block diffusion; divides --block-length)",
  },
  /**
   * Staggered masking of the diffusion contestants (`Stagger` of
   * `@d3pm/diffusion`): within each span of `staggerSpan` positions each
   * position runs the schedule on its own window of t, the right-hand ones
   * masked first, so that generation reveals a span left to right more
   * often than not (0: one clock, MDLM's process, as older runs).
   */
  stagger: {
    readBy: { contestants: true },
    group: "diffusion",
    kind: "number",
    min: 0,
    below: 1,
    default: 0,
    olderRuns: 0,
    note: "0: none",
    help:
      "stagger the masking clocks within spans, right-hand positions first (0: none; → 1: left to right)",
  },
  /** Positions per span of `stagger`: divides the block length and bd3's block. */
  staggerSpan: {
    readBy: { contestants: true },
    appliesWhen: { option: "stagger", above: 0 },
    group: "diffusion",
    kind: "integer",
    min: 2,
    default: 4,
    olderRuns: 4,
    help:
      "positions per span of --stagger (divides --block-length and --bd3-block)",
  },
  /**
   * One training time per `row` (MDLM) or per `token`, or one mask `count`
   * per row (the same objective without the `1/t` weight's heavy tail).
   */
  timesPer: {
    readBy: { contestants: true },
    group: "diffusion",
    kind: "choice",
    choices: ["row", "token", "count", "block"],
    default: "row",
    help:
      "one training time per row or per token, or a mask count per row (block: a time per bd3 block; bd3 only)",
  },
  /** Test blocks evaluated (0: all). */
  evalBlocks: {
    group: "evaluation",
    kind: "integer",
    min: 0,
    note: "0: all",
    default: 64,
    help: "test blocks evaluated (0: all)",
  },
  /** Steps between validations of the models on the valid split (0: none). */
  validEvery: {
    group: "training",
    kind: "integer",
    min: 0,
    note: "0: none",
    default: 50,
    help: "steps between validations on the valid split (0: none)",
  },
  /** Valid-split blocks per validation (the D3PM reuses one fixed set of draws). */
  validBlocks: {
    group: "training",
    kind: "integer",
    min: 1,
    default: 32,
    help: "valid blocks per validation",
  },
  /** Which weights are evaluated: the `last` step's, or the `best` validation's. */
  keep: {
    group: "training",
    kind: "choice",
    choices: ["last", "best"],
    default: "last",
    help: "evaluate the last step's weights or the best validation's",
  },
  /** Monte-Carlo draws (by mask count) per test block for the continuous bound. */
  elboSamples: {
    readBy: { contestants: true },
    group: "evaluation",
    kind: "integer",
    min: 1,
    default: 2,
    help:
      "draws per test block for the diffusion bounds (by mask count; by time for a staggered process)",
  },
  /** Test blocks for the exact discrete bound (T forward passes per batch; 0 skips it). */
  exactBlocks: {
    readBy: { contestants: true },
    off: 0,
    group: "evaluation",
    kind: "integer",
    min: 0,
    note: "0: skip",
    default: 2,
    help: "test blocks for the exact discrete bound (0: skip)",
  },
  /** Tokens generated per speed measurement (the thesis: 100,000). */
  genTokens: {
    group: "evaluation",
    kind: "integer",
    min: 1,
    default: 4096,
    help: "tokens generated per speed measurement (thesis: 100000)",
  },
  /** Rows per generated batch (the thesis: 4). */
  genBatch: {
    group: "evaluation",
    kind: "integer",
    min: 1,
    max: 65536,
    default: 4,
    help: "rows per generated batch (thesis: 4)",
  },
  /**
   * Generated rows judged one by one for generative perplexity and its 95%
   * interval (and the entropy); rows beyond the timed ones are generated
   * untimed. 0: the last timed batch alone,
   * without an interval (what runs before it did).
   */
  genSamples: {
    group: "evaluation",
    kind: "integer",
    min: 0,
    max: 65536,
    note: "0: the last timed batch, no interval",
    default: 64,
    olderRuns: 0,
    help:
      "generated rows judged for gen PPL with its 95% interval (0: the last timed batch, no interval)",
  },
  /** D3PM step counts for the speed–quality curve, comma-separated. */
  genSteps: {
    readBy: { contestants: true },
    group: "evaluation",
    kind: "string",
    value: "LIST",
    default: "16,64,128",
    help:
      "D3PM step counts of the speed–quality curve, comma-separated (bd3: steps per block)",
  },
  /** Samples of each model written to samples.txt. */
  samples: {
    group: "evaluation",
    kind: "integer",
    min: 0,
    default: 3,
    help: "samples per model in samples.txt",
  },
  /** Fraction of test tokens hidden for infilling. */
  infillFraction: {
    readBy: { contestants: true },
    group: "evaluation",
    kind: "number",
    above: 0,
    below: 1,
    default: 0.15,
    help: "fraction of test tokens hidden for infilling",
  },
  /**
   * Who scores samples for generative perplexity: `auto` (an AR model of
   * the same shape trained separately for `judgeSteps`, cached per data,
   * tokenizer and block length), `self` (the run's own AR model — it then
   * judges its own samples), or the folder of another run (its seed-0 AR).
   */
  judge: {
    group: "evaluation",
    common: true,
    kind: "string",
    value: "WHO",
    default: "auto",
    help:
      "judge of gen PPL: auto (a separate AR model, trained once and cached), self (the run's AR), or a run folder (a finished run's AR, or a model brought in by deno task import)",
  },
  /** Training steps of the `auto` judge. */
  judgeSteps: {
    readBy: { judges: ["auto"] },
    group: "evaluation",
    kind: "integer",
    min: 1,
    default: 600,
    help:
      "training steps of the auto judge (at least --warmup: it trains with the run's warm-up)",
  },
} as const satisfies Readonly<Record<string, ExperimentOption>>;

/** The keys of {@linkcode OPTIONS}. */
export type OptionKey = keyof typeof OPTIONS;

/** Everything a run depends on (one field per option); saved as `config.json` in the run folder. */
export type ExperimentConfig = {
  -readonly [K in OptionKey]: OptionValue<(typeof OPTIONS)[K]>;
};

/** Names of the presets (the same as the transformer presets). */
export type PresetName = ExperimentConfig["preset"];

function keysWhere(
  test: (spec: ExperimentOption) => boolean,
): OptionKey[] {
  return (Object.keys(OPTIONS) as OptionKey[]).filter((k) => test(OPTIONS[k]));
}

/**
 * Keys that may differ between a run and its `--resume`: they steer the
 * process, not what is trained or measured (the options marked `resumable`).
 *
 * @example
 * ```ts
 * import { configDiff, resolveConfig, RESUMABLE_KEYS } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(RESUMABLE_KEYS, ["backend", "logEvery", "out", "resume", "force"]);
 * const started = resolveConfig({ preset: "micro" });
 * const resumed = resolveConfig({ preset: "micro", resume: true, out: "runs/moved", backend: "cpu" });
 * assertEquals(configDiff(started, resumed), ""); // only resumable keys changed
 * ```
 */
export const RESUMABLE_KEYS: readonly OptionKey[] = keysWhere((s) =>
  s.resumable === true
);

/**
 * Keys a `--resume` may change when the run's record verifies the new
 * value (the options marked `resumable: "verified"`): `--data` moved, its
 * files the same by `data.json`'s SHA-256s (checked as the run begins
 * writing; a split that differs is refused by name). The resumed run's
 * `config.json` then records the new value: where the files it measured
 * are now.
 *
 * @example
 * ```ts
 * import { configDiff, resolveConfig, VERIFIED_KEYS } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(VERIFIED_KEYS, ["data"]);
 * const started = resolveConfig({ preset: "micro", data: "/old" });
 * const moved = resolveConfig({ preset: "micro", data: "/new", resume: true });
 * assertEquals(configDiff(started, moved, { verified: true }), "");
 * assertEquals(configDiff(started, moved), '--data is "/new" but the run used "/old"');
 * ```
 */
export const VERIFIED_KEYS: readonly OptionKey[] = keysWhere((s) =>
  s.resumable === "verified"
);

/**
 * Keys added to the configuration after runs had been made, each with the
 * value that reproduces what those runs did (the options' `olderRuns`): a
 * saved `config.json` or checkpoint without the key reads as this value, so
 * that such runs still resume (and a real change is still refused).
 *
 * @example
 * ```ts
 * import { ADDED_KEYS, configDiff, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const now = resolveConfig({ preset: "micro" });
 * const { alibi: _, alibiMode: __, firstSeed: ___, ...older } = now; // a run made before ALiBi
 * assertEquals(ADDED_KEYS, {
 *   firstSeed: 0,
 *   alibi: 0,
 *   alibiMode: "symmetric",
 *   lrFinal: 0.1,
 *   adamBeta2: 0.95,
 *   fullMaskShare: 0,
 *   initFrom: "",
 *   annealSteps: 0,
 *   shift: false,
 *   stagger: 0,
 *   staggerSpan: 4,
 *   bd3Block: 4,
 *   genSamples: 0,
 * });
 * assertEquals(configDiff(older as typeof now, now), "");
 * assertEquals(
 *   configDiff(older as typeof now, { ...now, alibi: 2 }),
 *   "--alibi is 2 but the run used 0",
 * );
 * ```
 */
export const ADDED_KEYS: Readonly<Partial<ExperimentConfig>> = Object
  .fromEntries(
    keysWhere((s) => s.olderRuns !== undefined).map((k) => [
      k,
      (OPTIONS[k] as ExperimentOption).olderRuns,
    ]),
  );

/**
 * A check that relates options to each other (one option's own range is in
 * {@linkcode OPTIONS}).
 */
export interface Rule {
  /** The options it relates, first the one it is reported against. */
  readonly options: readonly OptionKey[];
  /**
   * Check a configuration whose every value is in its own range.
   *
   * @param c The configuration.
   * @returns The one-line message, or undefined when it holds.
   */
  check(c: ExperimentConfig): string | undefined;
}

/**
 * The D3PM step counts of `genSteps`.
 *
 * @param c The configuration.
 * @returns The step counts, in the given order.
 *
 * @example
 * ```ts
 * import { genStepList, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(genStepList(resolveConfig({ genSteps: "256, 16,64" })), [256, 16, 64]);
 * ```
 */
export function genStepList(c: Pick<ExperimentConfig, "genSteps">): number[] {
  return listItems("genSteps", c.genSteps).map(Number);
}

/**
 * A bad option or config value, or a run folder that cannot take the run;
 * the message is one line.
 *
 * @example The message names the option and what it accepts
 * ```ts
 * import { ConfigError, resolveConfig } from "@d3pm/experiment";
 * import { assertThrows } from "@std/assert";
 * assertThrows(
 *   () => resolveConfig({ steps: -5 }),
 *   ConfigError,
 *   "Option --steps must be a positive integer, got -5",
 * );
 * assertThrows(() => resolveConfig({ preset: "huge" }), ConfigError, "must be one of micro, tiny, small, paper");
 * ```
 */
export class ConfigError extends Error {
  /**
   * A configuration error.
   *
   * @param message What is wrong and what is accepted.
   */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * The options this run sets that only the tfjs engine implements, as the
 * start of a sentence (undefined: none) — the one list the option check,
 * `--engine auto` and training read. `--anneal-steps` needs an attention
 * mask the fused kernels lack; `--shift` makes position 0's output predict
 * two tokens, where the fused cross-entropy takes one target per position
 * (and the engines' scoring and generation read output i as position i).
 * `--init-from` runs on every engine: it only sets the initial weights.
 *
 * @param c The D3PM's adaptation options.
 * @returns e.g. `Option --shift is implemented on the tfjs engine only`.
 *
 * @example
 * ```ts
 * import { tfjsOnlyOptions } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(tfjsOnlyOptions({ annealSteps: 0, shift: false }), undefined);
 * assertEquals(
 *   tfjsOnlyOptions({ annealSteps: 5, shift: true }),
 *   "Options --anneal-steps and --shift are implemented on the tfjs engine only",
 * );
 * ```
 */
export function tfjsOnlyOptions(
  c: Partial<Pick<ExperimentConfig, "annealSteps" | "shift">>,
): string | undefined {
  const set = [
    ...((c.annealSteps ?? 0) > 0 ? ["--anneal-steps"] : []),
    ...(c.shift ? ["--shift"] : []),
  ];
  if (set.length === 0) return undefined;
  return set.length === 1
    ? `Option ${set[0]} is implemented on the tfjs engine only`
    : `Options ${set.join(" and ")} are implemented on the tfjs engine only`;
}

/** Largest BPE vocabulary accepted. */
const MAX_VOCAB = 1 << 20;

/**
 * The checks between options, in the order they are tried; the first that
 * fails is the error. The contestant list (`models`) is checked against the
 * registry by `resolveConfig`.
 *
 * @example
 * ```ts
 * import { resolveConfig, RULES } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const c = resolveConfig({ preset: "micro" });
 * assertEquals(RULES.map((r) => r.check(c)).filter(Boolean), []);
 * const warmup = RULES.find((r) => r.options[0] === "warmup")!;
 * assertEquals(warmup.check({ ...c, warmup: 9, steps: 8 }), "Option --warmup (9) must not exceed --steps (8)");
 * ```
 */
export const RULES: readonly Rule[] = [
  {
    options: ["vocabSize", "tokenizer"],
    check: (c) =>
      c.tokenizer === "bpe" && (c.vocabSize < 261 || c.vocabSize > MAX_VOCAB)
        ? `Option --vocab-size must be in [261, ${MAX_VOCAB}] for a BPE tokenizer (256 bytes + 4 special tokens + at least one merge), got ${c.vocabSize}`
        : undefined,
  },
  {
    options: ["tMin", "tMax"],
    check: (c) =>
      c.tMin < c.tMax
        ? undefined
        : `Options --t-min and --t-max need 0 ≤ t-min < t-max ≤ 1, got ${c.tMin} and ${c.tMax}`,
  },
  {
    options: ["timesPer", "timeConditioning"],
    check: (c) =>
      (c.timesPer === "token" || c.timesPer === "block") && c.timeConditioning
        ? `Option --times-per ${c.timesPer} needs --time-conditioning false (a time-conditioned denoiser takes one t per row)`
        : undefined,
  },
  {
    options: ["timesPer", "models"],
    check: (c) => {
      const models = c.models.split(",");
      return c.timesPer === "block" &&
          (!models.includes("bd3") || models.includes("d3pm"))
        ? `Option --times-per block draws a time per bd3 block: it needs bd3 in --models and no d3pm (whose rows have no blocks), got --models ${c.models}`
        : undefined;
    },
  },
  {
    options: ["judge"],
    check: (c) =>
      c.judge.trim() === ""
        ? "Option --judge must be auto, self, or the folder of a finished run"
        : undefined,
  },
  {
    options: ["initFrom"],
    check: (c) =>
      c.initFrom !== "" && c.initFrom.trim() === ""
        ? `Option --init-from must be empty (from scratch) or RUN[/seed-N/ar|mlm], got ${
          JSON.stringify(c.initFrom)
        }`
        : undefined,
  },
  {
    options: ["validEvery", "logEvery"],
    check: (c) =>
      c.validEvery % c.logEvery !== 0
        ? `Option --valid-every (${c.validEvery}) must be a multiple of --log-every (${c.logEvery}): the fused engine validates on logged steps`
        : undefined,
  },
  {
    options: ["engine", "diffusionLoss"],
    check: (c) =>
      (c.engine === "webgpu" || c.engine === "cpu") &&
        c.diffusionLoss === "d3pm"
        ? `Option --engine ${c.engine} trains the mdlm objective only (d3pm's loss is a sum of KL terms); use --engine tfjs or --diffusion-loss mdlm`
        : undefined,
  },
  {
    // An explicit fused engine trains every model (a tfjs-only contestant
    // is refused with it): a tfjs backend would be recorded, never used.
    options: ["backend", "engine"],
    check: (c) =>
      c.backend !== "auto" && (c.engine === "webgpu" || c.engine === "cpu")
        ? `Option --backend ${c.backend} picks the tfjs backend, which --engine ${c.engine} does not use: --backend applies with --engine tfjs or auto; leave it out with --engine ${c.engine}`
        : undefined,
  },
  {
    options: ["engine", "annealSteps", "shift"],
    check: (c) => {
      const only = tfjsOnlyOptions(c);
      return (c.engine === "webgpu" || c.engine === "cpu") && only
        ? `${only}, not --engine ${c.engine}; use --engine tfjs`
        : undefined;
    },
  },
  {
    options: ["bd3Block", "blockLength", "models"],
    // Without bd3, --bd3-block is refused when given (nothing reads it).
    check: (c) =>
      c.models.split(",").includes("bd3") && c.blockLength % c.bd3Block !== 0
        ? `Option --bd3-block (${c.bd3Block}) must divide --block-length (${c.blockLength}): a block is a whole number of bd3 blocks`
        : undefined,
  },
  {
    options: ["stagger", "staggerSpan", "models", "blockLength", "bd3Block"],
    check: (c) => {
      // Without a contestant that reads them, the two are refused when
      // given (nothing reads them); a span checked only where it applies.
      const models = c.models.split(",");
      if (c.stagger === 0) return undefined;
      if (c.blockLength % c.staggerSpan !== 0) {
        return `Option --stagger-span (${c.staggerSpan}) must divide --block-length (${c.blockLength})`;
      }
      return models.includes("bd3") && c.bd3Block % c.staggerSpan !== 0
        ? `Option --stagger-span (${c.staggerSpan}) must divide --bd3-block (${c.bd3Block}): a span lies within one bd3 block`
        : undefined;
    },
  },
  {
    options: ["stagger", "diffusionLoss", "timesPer", "fullMaskShare"],
    check: (c) => {
      if (c.stagger === 0) return undefined;
      const clash = c.diffusionLoss === "d3pm"
        ? "--diffusion-loss d3pm"
        : c.timesPer === "count" || c.timesPer === "token"
        ? `--times-per ${c.timesPer}`
        : c.fullMaskShare > 0
        ? "--full-mask-share"
        : undefined;
      return clash
        ? `Option --stagger needs the mdlm loss drawn by a time per row or per bd3 block (each position's clock runs on that time), not ${clash}`
        : undefined;
    },
  },
  {
    options: ["stagger", "engine"],
    check: (c) =>
      c.stagger > 0 && c.engine === "webgpu"
        ? "Option --stagger samples on the JavaScript side, which reads the model's logits from a synchronous forward pass, and the WebGPU engine's is asynchronous; use --engine cpu or tfjs"
        : undefined,
  },
  {
    options: ["annealSteps", "steps"],
    check: (c) =>
      c.annealSteps > c.steps
        ? `Option --anneal-steps (${c.annealSteps}) must not exceed --steps (${c.steps})`
        : undefined,
  },
  {
    options: ["exactBlocks", "evalBlocks"],
    check: (c) =>
      c.evalBlocks > 0 && c.exactBlocks > c.evalBlocks
        ? `Option --exact-blocks (${c.exactBlocks}) must not exceed --eval-blocks (${c.evalBlocks}): the exact bound runs on the first of the evaluated test blocks`
        : undefined,
  },
  {
    options: ["genSamples"],
    check: (c) =>
      c.genSamples === 1
        ? "Option --gen-samples must be 0 (the last timed batch, no interval) or at least 2 (a 95% interval needs two samples), got 1"
        : undefined,
  },
  {
    options: ["samples", "genBatch"],
    check: (c) =>
      c.samples > c.genBatch
        ? `Option --samples (${c.samples}) must not exceed --gen-batch (${c.genBatch}): samples.txt shows rows of the last timed batch; accepted: 0 to ${c.genBatch}, or raise --gen-batch`
        : undefined,
  },
  {
    options: ["keep", "validEvery"],
    check: (c) =>
      c.keep === "best" && c.validEvery === 0
        ? "Option --keep best needs validations: set --valid-every to a positive number of steps"
        : undefined,
  },
  {
    options: ["resume", "force"],
    check: (c) =>
      c.resume && c.force
        ? "Options --resume and --force contradict each other: --resume continues the run in --out, --force starts afresh"
        : undefined,
  },
  {
    options: ["dModel", "nHead"],
    check: (c) =>
      c.dModel % c.nHead !== 0
        ? `Option --d-model (${c.dModel}) must be a multiple of --n-head (${c.nHead})`
        : undefined,
  },
  {
    options: ["alibiMode", "alibi", "nHead"],
    check: (c) =>
      c.alibi > 0 && c.alibiMode === "neighbours" && c.nHead < 2
        ? `Option --alibi-mode neighbours needs --n-head ≥ 2 (heads 0 and 1 look left and right), got ${c.nHead}`
        : undefined,
  },
  {
    options: ["warmup", "steps"],
    check: (c) =>
      c.warmup > c.steps
        ? `Option --warmup (${c.warmup}) must not exceed --steps (${c.steps})`
        : undefined,
  },
  {
    // The auto judge trains with the run's warm-up over its own steps
    // (judgePlan); the other judges train nothing.
    options: ["warmup", "judgeSteps", "judge"],
    check: (c) =>
      c.judge === "auto" && c.warmup > c.judgeSteps
        ? `Option --warmup (${c.warmup}) must not exceed --judge-steps (${c.judgeSteps}): the auto judge trains with the run's warm-up; raise --judge-steps, lower --warmup, or use --judge self or a run folder`
        : undefined,
  },
  {
    options: ["genSteps", "diffusionSteps"],
    check: (c) => {
      const each = {
        kind: "integer",
        min: 1,
        max: c.diffusionSteps,
        help: "",
      } as const;
      const bad = (why = "") =>
        `Option --gen-steps must be distinct comma-separated integers in [1, ${c.diffusionSteps}] (--diffusion-steps), got "${c.genSteps}"${why}`;
      let items: string[];
      try {
        items = listItems("genSteps", c.genSteps);
      } catch (e) {
        const twice = /lists (\S+) twice/.exec((e as Error).message);
        return bad(twice ? ` (${twice[1]} twice)` : "");
      }
      const seen = new Set<unknown>();
      for (const item of items) {
        let n: unknown;
        try {
          n = convertOption("genSteps", each, item);
        } catch {
          return bad();
        }
        if (seen.has(n)) return bad(` (${n} twice)`);
        seen.add(n);
      }
      return undefined;
    },
  },
];
