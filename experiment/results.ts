/**
 * What a run measures, per model and seed, as JSON-ready types: a
 * discriminated union on `model`, so a report never has to assume a field.
 *
 * @module
 */
import type { LikelihoodFigures, SpeedFigures } from "@d3pm/eval";
import type { ExperimentConfig } from "./options.ts";
import type { InitFigures } from "./init_from.ts";
import type { EngineSpan } from "@d3pm/train";

/** Training figures of one model, over every session of a resumed run. */
export interface TrainingFigures {
  /** Seconds spent training. */
  seconds: number;
  /**
   * Mean training loss over the last logged interval (`@d3pm/train`'s
   * `lastLoss`): the steps after the last `--log-every` multiple or
   * checkpoint before the end — the same figure on every engine.
   */
  lastLoss: number;
  /**
   * The steps `lastLoss` averages, first and last (absent in results of
   * older versions: an older version on tfjs recorded the last step's loss,
   * and a model finished in an earlier session keeps that session's figure,
   * under its `--log-every`).
   */
  lastLossSteps?: [number, number];
  /** Tokens trained on. */
  tokens: number;
  /**
   * Validation (nats per token on the valid blocks; the D3PM's a bound):
   * at the last step, the best, its step, and which weights were evaluated.
   */
  valid?: {
    final: number;
    best: number;
    bestStep: number;
    kept: "last" | "best";
  };
  /**
   * The model it started from (`--init-from`) and what that cost to train:
   * the run's total compute is its own plus this.
   */
  initFrom?: InitFigures;
  /**
   * What ran the training steps, in order (`@d3pm/train`'s spans): one
   * entry, unless the run was resumed on another engine, thread count or
   * BLAS (its figures are then not bit-identical to an uninterrupted
   * run's, and the report says so). Absent in runs of older versions.
   */
  engines?: EngineSpan[];
}

/** Generation speed with the quality of what was generated. */
export interface SpeedQuality {
  /** Speed. */
  speed: SpeedFigures;
  /** Generative perplexity under the judge. */
  genPpl: number;
  /**
   * Its 95% interval (`--gen-samples`: the t-interval of the mean
   * per-sample judge NLL, mapped through exp) and the rows it rests on.
   */
  genPplInterval?: { low: number; high: number; samples: number };
  /** Mean per-sample token entropy, nats. */
  entropy: number;
}

/** What every model's result holds, whichever contestant made it. */
export interface ResultBase {
  /** The contestant (its registered kind: `ar`, `d3pm`, `mlm`, …). */
  model: string;
  /** Seed. */
  seed: number;
  /** Parameters. */
  parameters: number;
  /**
   * The engine this session put it on, and why: the one that evaluated it
   * and trained whatever of its steps this session ran — the run's
   * `engine`, or tfjs for a contestant that runs on tfjs only (e.g. `bd3`)
   * in a run on a fused engine. What trained each step, in every session,
   * is `training.engines`: a model finished before a resume on another
   * engine was trained there and only evaluated on this one. Absent in
   * runs made before models could differ: the run's `engine` then was
   * every model's.
   */
  engine?: string;
  /**
   * What evaluated it (test likelihood, generation, infilling), named as
   * `training.engines` names what trained it (backend, threads, BLAS), so
   * the two compare. Absent in runs made before it was recorded.
   */
  evaluatedOn?: string;
  /** Training. */
  training: TrainingFigures;
  /** Test likelihood (a bound for the D3PM and the MLM: the Monte-Carlo continuous ELBO). */
  test: LikelihoodFigures;
  /** Generation at the reported setting (D3PM: its largest step count). */
  generation: SpeedQuality;
  /** Infilling, for a contestant that fills blanks. */
  infill?: InfillFigures;
}

/** The autoregressive model's figures. */
export interface ArResult extends ResultBase {
  /** Discriminant. */
  model: "ar";
}

/** The D3PM's figures. */
export interface D3pmResult extends ResultBase {
  /** Discriminant. */
  model: "d3pm";
  /**
   * The exact discrete-time bound on the first test blocks, and how many
   * independent draws (rows) it averages: with one, it has no error bar.
   */
  exact?: LikelihoodFigures & { rows: number };
  /** Speed and quality at each step count. */
  curve: (SpeedQuality & { steps: number })[];
  /** Infilling. */
  infill: InfillFigures;
}

/**
 * Infilling of the first test blocks: the fraction asked for and the
 * fraction actually hidden, exact-match accuracy of the filled tokens, and
 * the NLL of the hidden tokens in one pass.
 */
export interface InfillFigures {
  /** Probability with which each token was hidden. */
  fraction: number;
  /** Fraction of the tokens actually hidden. */
  hiddenFraction: number;
  /** Fraction of hidden tokens filled in exactly. */
  accuracy: number;
  /** Nats per hidden token, one pass on the blanks. */
  nll: number;
  /** Tokens hidden. */
  hidden: number;
  /**
   * Test blocks it ran on (the first ones: up to 8, fewer when the test
   * split has fewer; absent in runs made before it was recorded).
   */
  blocks?: number;
}

/**
 * The masked language model's figures. `test` is the D3PM bound with the
 * MLM as the denoiser: valid but loose (it was trained at one masking rate).
 */
export interface MlmResult extends ResultBase {
  /** Discriminant. */
  model: "mlm";
  /** Its training masking rate. */
  rate: number;
  /**
   * Minus the pseudo-log-likelihood, nats per token, on the first `rows`
   * test blocks: not a likelihood, and no bound on one.
   */
  pll: { nats: number; stderr: number; tokens: number; rows: number };
  /** Unmasking steps of the generation (confidence unmasking). */
  genSteps: number;
  /** Infilling: the same positions, draws and sampler as the D3PM's. */
  infill: InfillFigures;
}

/**
 * Figures of one model and seed: the fields every contestant reports, and
 * its own besides ({@linkcode ArResult}, {@linkcode D3pmResult},
 * {@linkcode MlmResult}, or a registered contestant's); narrow on `model`
 * with a type guard.
 */
export type ModelResult = ResultBase;

/** Corpus facts for the report. */
export interface DataFacts {
  /** Where the corpus came from. */
  source: string;
  /** Tokens of the train split. */
  trainTokens: number;
  /** Tokens of the test split. */
  testTokens: number;
  /** UTF-8 bytes per token of the test split. */
  bytesPerToken: number;
  /** Unigram entropy of the train split, nats per token. */
  unigramEntropy: number;
  /**
   * Blocks each validation scores: the first `--valid-blocks`, or all of a
   * shorter valid split (undefined in runs made before it was recorded).
   */
  validBlocks?: number;
}

/** Everything a run measured (`results.json`). */
export interface ExperimentResult {
  /** The command line that ran it. */
  command: string;
  /** The resolved configuration. */
  config: ExperimentConfig;
  /**
   * The tfjs backend and why, for the models that ran on tfjs (named when
   * not all did: `… (for bd3 only, on tfjs)`, or `… (for bd3, and for the
   * judge's scoring of every model's samples, on tfjs)` when a model on tfjs
   * moved the judge's scoring there); `not used (no model ran on tfjs)` when
   * none did. Runs of older versions name the backend chosen whether or not
   * it was used.
   */
  backend: string;
  /** Training engine and why. */
  engine: string;
  /** Tokenizer identity and vocabulary. */
  tokenizer: { id: string; vocabSize: number };
  /** Corpus facts. */
  data: DataFacts;
  /** Who scored samples for generative perplexity. */
  judge: string;
  /** One entry per model and seed. */
  results: ModelResult[];
  /** Seconds for the whole run (this session). */
  seconds: number;
}
