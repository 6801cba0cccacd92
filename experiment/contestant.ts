/**
 * The contract of a contestant: one way of training and using a language
 * model that the experiment compares with the others. A contestant declares
 * its model kind, its seed stream, its process (and how to rebuild it from
 * `process.json`), how it trains on tfjs and on the fused engine, how it
 * validates and evaluates, its labels and its parts of the report, and how
 * the tools generate with it. Register one with `registerContestant`; the
 * `--models` choices, the report's rows, the sample/infill choices, run
 * loading, `deno task evaluate` (`scoring`), the import's contestant and the
 * dashboard's generation all come from the registry (what does not:
 * docs/architecture.md, "Extending").
 *
 * @module
 */
import type {
  GenerateResult,
  NllEstimate,
  Prng,
  Scalar,
  TokenBatch,
  WeightedTokens,
} from "@d3pm/core";
import type { OverBlocksOptions } from "@d3pm/eval";
import type { ModelConfig, Transformer } from "@d3pm/transformer";
import type { RunData } from "./data.ts";
import type { EvalModel } from "./engine.ts";
import type { EvalContext } from "./evaluation.ts";
import type { ExperimentConfig, OptionKey } from "./options.ts";
import type { ExperimentResult, ModelResult, SpeedQuality } from "./results.ts";

/** How a contestant is named in tables, rows and files. */
export interface ContestantLabel {
  /** Short, for column heads and sentences (`D3PM`). */
  short: string;
  /** Long, for the per-seed rows (`D3PM (absorbing, MDLM loss)`). */
  title: string;
}

/** What the fused engine's training step of a contestant needs besides the model. */
export interface EngineShape {
  /** Positions per row of the fixed step (a causal model: block − 1). */
  length: number;
  /** An id left out of the softmax (masked diffusion's mask), if any. */
  excludeToken?: number;
}

/** One row of the speed vs quality table (and one point of its chart). */
export interface SpeedRow {
  /** The generation setting, e.g. `64` (steps) or `AR`. */
  setting: string;
  /** Forward passes per batch, when they are worth showing. */
  passes?: number;
  /** Speed and quality at that setting. */
  point: SpeedQuality;
}

/** What a contestant adds to the report; every part is optional. */
export interface ContestantReport {
  /**
   * A sentence on what its likelihood figures are (exact, or which bound).
   *
   * @param c The run's configuration.
   * @returns The sentence.
   */
  likelihood?(c: ExperimentConfig): string;
  /**
   * How its reported generation was made, e.g. `D3PM at 64 steps`.
   *
   * @param result One of its results.
   * @returns A phrase, or undefined when there is nothing to say.
   */
  generation?(result: ModelResult): string | undefined;
  /**
   * Its rows of the speed vs quality table (default: one row, its label).
   *
   * @param result One of its results.
   * @returns The rows.
   */
  speed?(result: ModelResult): SpeedRow[];
  /**
   * Sentences on its training and validation.
   *
   * @param c The run's configuration.
   * @returns The sentences.
   */
  training?(c: ExperimentConfig): string;
  /**
   * Sections of its own (Markdown, each starting with `## `), placed after
   * the seed summary.
   *
   * @param r The run's results.
   * @param others What the report knows of every contestant of the run.
   * @returns The sections.
   */
  sections?(r: ExperimentResult, others: ReportContext): string[];
}

/** What the report knows of every contestant of a run, for a contestant's own sections. */
export interface ReportContext {
  /**
   * A contestant's labels (its kind, for one no longer registered).
   *
   * @param kind The contestant.
   * @returns Its labels.
   */
  label(kind: string): ContestantLabel;
  /**
   * How a result's generation was made (its contestant's `generation`).
   *
   * @param result A result.
   * @returns A phrase, e.g. `D3PM at 64 steps (ancestral)`, or its label.
   */
  generation(result: ModelResult): string;
}

/** Masked generation: the tools show the steps, take `--steps` and `--strategy`, and fill blanks. */
export interface Unmasking<P> {
  /** The sampler's default strategy. */
  strategy: "ancestral" | "confidence";
  /**
   * The mask id of a process.
   *
   * @param process The process.
   * @returns The id that marks a blank.
   */
  maskId(process: P): number;
  /**
   * The process's number of steps `T` (the tools default to min(64, T)).
   *
   * @param process The process.
   * @returns `T`.
   */
  steps(process: P): number;
}

/**
 * Block-by-block generation: left to right, each block unmasked in `steps`
 * steps given the clean blocks before it. The tools count steps per block
 * (`N/block`) and continue a prefix; no blanks are filled (a block cannot
 * see the blocks after it).
 */
export interface BlockUnmasking<P> {
  /**
   * The mask id of a process.
   *
   * @param process The process.
   * @returns The id of a position still to generate.
   */
  maskId(process: P): number;
  /**
   * The process's number of steps `T`: the most steps a block may take
   * (the tools default to min(64, T) per block).
   *
   * @param process The process.
   * @returns `T`.
   */
  steps(process: P): number;
  /**
   * Tokens per block.
   *
   * @param process The process.
   * @returns The block size.
   */
  blockSize(process: P): number;
}

/** What the tools ask a contestant to generate. */
export interface GenerationRequest {
  /** Tokens per row. */
  length: number;
  /** Randomness of the draws. */
  prng: Prng;
  /** Unmasking steps (masked generation). */
  steps?: number;
  /** Unmasking strategy (masked generation). */
  strategy?: "ancestral" | "confidence";
  /** Softmax temperature (default 1); 0 is greedy (the argmax at each draw). */
  temperature?: number;
  /** Nucleus sampling. */
  topP?: number;
  /** A row whose mask ids are filled, the rest kept (masked generation). */
  prompt?: Int32Array;
  /**
   * Ids the row starts with, kept as given (a text prompt): a causal model
   * continues them after its start token; a denoiser holds them fixed at
   * positions 0, 1, … and generates the rest.
   */
  prefix?: Int32Array;
  /**
   * Reuse the last logits while no token changed (ancestral unmasking of a
   * model that ignores t; default: whenever exact). False forces a pass per step.
   */
  cache?: boolean;
  /**
   * Called after each unmasking step (a causal model: after each token)
   * with the row so far; a promise it returns is awaited before the next.
   */
  onStep?: (
    s: {
      step: number;
      steps: number;
      tokens: Int32Array;
      forwardPasses: number;
    },
  ) => unknown;
}

/**
 * How `deno task evaluate` scores a trained model on the test blocks again:
 * the same estimator, blocks and draws as the contestant's `evaluate`.
 *
 * @typeParam P Its process.
 */
export interface TestScoring<P> {
  /**
   * Whether the figure is a Monte-Carlo estimate drawn `elboSamples` times
   * per block (`--samples` sets the draws); false: exact, `--samples` is
   * refused.
   */
  readonly draws: boolean;
  /**
   * Its test figure (nats per token; a bound when the contestant's `bound`).
   *
   * @param process Its process.
   * @param model The trained model (tfjs or the fused engine).
   * @param ctx The run's configuration (`elboSamples`) and data (`test`).
   * @param options `onProgress`: test blocks done, after each batch.
   * @returns The estimate.
   */
  score(
    process: P,
    model: EvalModel,
    ctx: Pick<EvalContext, "config" | "data">,
    options: Pick<OverBlocksOptions, "onProgress">,
  ): Promise<NllEstimate>;
}

/** What a contestant's evaluation gives: its figures and the samples to show. */
export interface Evaluation {
  /** Its result, less what the runner adds (seed, parameters, training). */
  result: Omit<ModelResult, "seed" | "parameters" | "training">;
  /** Generated ids, `rows × blockLength`, for `samples.txt`. */
  samples: Int32Array;
}

/**
 * What the experiment asks of every contestant's process (a
 * `GenerativeProcess` of the project provides it): its loss on tfjs, the
 * same loss as weighted token terms for the fused engine, and its JSON.
 */
export interface ContestantProcess {
  /**
   * The training loss of a batch.
   *
   * @param model The network.
   * @param batch Clean tokens.
   * @param options Randomness of the corruption.
   * @returns A scalar tensor.
   */
  loss(model: Transformer, batch: TokenBatch, options: { prng: Prng }): Scalar;
  /**
   * The same loss as weighted token cross-entropy (the fused engine's form).
   *
   * @param batch Clean tokens.
   * @param options Randomness of the corruption.
   * @returns Inputs, targets and weights.
   */
  lossTerms(batch: TokenBatch, options: { prng: Prng }): WeightedTokens;
  /** Its description, saved as `process.json`. */
  toJSON(): object;
}

/**
 * A contestant: a kind of model with its generative process.
 *
 * @typeParam P Its process.
 */
export interface Contestant<P extends ContestantProcess = ContestantProcess> {
  /** Its name in `--models`, the run folder (`seed-N/<kind>/`) and results (`model`). */
  readonly kind: string;
  /** How it is named in the report. */
  readonly label: ContestantLabel;
  /**
   * What it is, in a few words, for the `--help` lists of contestants
   * (`the BERT objective on the D3PM's backbone`); absent: its kind says it.
   */
  readonly help?: string;
  /** The network it trains: a causal decoder or a bidirectional denoiser. */
  readonly network: "causal" | "bidirectional";
  /**
   * Its seed stream, an integer in 1..999 that no other contestant uses, and
   * not 919 (the judge's seed 7919 is `1000 · 7 + 919`): the initial weights
   * of seed `s` come from seed `1000 s + seedStream`. The built-in ones take
   * 1 (AR) to 4 (BD3).
   */
  readonly seedStream: number;
  /** Whether its test likelihood is an upper bound (shown with ≤). */
  readonly bound: boolean;
  /** What its validation measures (`NLL`, `bound`, …) and whether it is a bound. */
  readonly validation: { name: string; bound: boolean };
  /**
   * Why it trains and evaluates on the tfjs engine only, as the end of a
   * sentence (e.g. `block diffusion needs block attention, which the fused
   * engines lack`); absent: every engine runs it.
   */
  readonly tfjsOnly?: string;
  /**
   * Positions a training or scoring pass reads per token of the block
   * (default 1; block diffusion reads `[x_t ; x_0]`: 2). The run's estimate
   * scales its work and memory by it.
   */
  readonly streams?: number;
  /**
   * The options it reads of those the option table marks as read by
   * contestants (`readBy.contestants`: the diffusion options, ALiBi,
   * `arLr`, …), but for `initFrom` and `annealSteps`, which
   * `startsFromWeights` and `annealsAttention` declare. A new run refuses
   * such an option set to other than its default when no contestant of
   * `--models` reads it. Absent: it reads them all (nothing is refused on
   * its account).
   */
  readonly reads?: readonly OptionKey[];
  /**
   * Whether `--init-from` starts it from a trained model's weights (a
   * bidirectional denoiser of the D3PM's shape; default false).
   */
  readonly startsFromWeights?: boolean;
  /**
   * Whether `--anneal-steps` anneals its attention: over the first steps
   * the window of later positions each position sees grows from 0 (causal)
   * to the whole block (the D3PM's; tfjs only, the fused kernels have no
   * window; default false: the option does not reach its training).
   */
  readonly annealsAttention?: boolean;
  /**
   * Forward passes of the whole block that generating one row costs, summed
   * over the speed–quality curve, for the run's estimate (default: the sum
   * of `--gen-steps` for a contestant that unmasks, else 1).
   *
   * @param c The run's configuration.
   * @returns Passes, in units of one pass over the block.
   */
  generationPasses?(c: ExperimentConfig): number;
  /**
   * Whether its evaluation computes the exact discrete bound on the first
   * `--exact-blocks` test blocks (a forward pass of the block per diffusion
   * step) under this configuration; the run's estimate charges that work to
   * it alone (default: it does not).
   *
   * @param c The run's configuration.
   * @returns True when its evaluation runs the exact bound.
   */
  exactBound?(c: ExperimentConfig): boolean;
  /** Present when it generates by unmasking (and so fills blanks). */
  readonly unmasking?: Unmasking<P>;
  /**
   * Present when it generates block by block, each block by unmasking
   * (steps per block; a prefix, never blanks).
   */
  readonly blockUnmasking?: BlockUnmasking<P>;
  /** What it adds to the report. */
  readonly report?: ContestantReport;
  /**
   * How `deno task evaluate` scores it on the test blocks; absent: it is
   * not rescored there (evaluate says so).
   */
  readonly scoring?: TestScoring<P>;
  /**
   * Its process in a run.
   *
   * @param c The run's configuration.
   * @param data The run's tokenizer and special ids.
   * @returns The process (its `toJSON()` is saved as `process.json`).
   */
  process(
    c: ExperimentConfig,
    data: Pick<RunData, "tokenizer" | "specials">,
  ): P;
  /**
   * Rebuild the process from `process.json`.
   *
   * @param spec The parsed JSON.
   * @returns The process.
   */
  restore(spec: unknown): P;
  /**
   * The configuration of its network.
   *
   * @param c The run's configuration.
   * @param vocabSize The tokenizer's ids.
   * @returns The model configuration.
   */
  modelConfig(c: ExperimentConfig, vocabSize: number): ModelConfig;
  /**
   * Its peak learning rate.
   *
   * @param c The run's configuration.
   * @returns The rate.
   */
  peakLr(c: ExperimentConfig): number;
  /**
   * What the fused engine's step needs (it trains `process.lossTerms`).
   *
   * @param process Its process.
   * @param blockLength Tokens per block.
   * @returns The step's shape.
   */
  engine(process: P, blockLength: number): EngineShape;
  /**
   * Its validation figure on the valid blocks (nats per token; the same
   * draws at every validation).
   *
   * @param process Its process.
   * @param model The weights to validate (tfjs, or on the run's engine).
   * @param data The run's data.
   * @returns The estimate.
   */
  validate(
    process: P,
    model: EvalModel,
    data: RunData,
  ): Promise<NllEstimate>;
  /**
   * Its test evaluation: likelihood, generation speed and quality, and
   * whatever else it measures.
   *
   * @param process Its process.
   * @param model The trained model (tfjs or the fused engine).
   * @param ctx The data, the seed's randomness and the judge.
   * @returns Its figures and samples.
   */
  evaluate(
    process: P,
    model: EvalModel,
    ctx: EvalContext,
  ): Promise<Evaluation>;
  /**
   * Generate for the tools (`deno task sample`, `deno task infill`).
   *
   * @param process Its process.
   * @param model The trained model.
   * @param request What to generate.
   * @returns One row and the forward passes made.
   */
  generate(
    process: P,
    model: EvalModel,
    request: GenerationRequest,
  ): Promise<GenerateResult>;
  /**
   * How its samples are headed in `samples.txt` (default: its short label).
   *
   * @param result Its result.
   * @returns The label.
   */
  sampleLabel?(result: ModelResult): string;
}
