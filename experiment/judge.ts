/**
 * The judge of generative perplexity: a causal model that is not under
 * test. By default an AR model of the run's shape, trained separately (its
 * own seed, longer) and cached per data, tokenizer and block length, so
 * every run on the same data is judged by the same model.
 *
 * @module
 */
import { autoregressive } from "@d3pm/autoregressive";
import { type NllEstimate, sha256Hex, type TokenBatch } from "@d3pm/core";
import { overBlocks } from "@d3pm/eval";
import { train, warmupCosine } from "@d3pm/train";
import {
  loadModel,
  type ModelConfig,
  saveModel,
  Transformer,
} from "@d3pm/transformer";
import { ConfigError, type ExperimentConfig } from "./options.ts";
import type { RunData } from "./data.ts";
import { RunFolder } from "./run_folder.ts";
import { AR } from "./contestants/ar.ts";
import type { EvalContext } from "./evaluation.ts";
import type { Entrant } from "./train.ts";

/** A judge: how it scores samples, and what the report says of it. */
export interface Judge {
  /** One line for the report. */
  describe: string;
  /** Scores a batch of samples (nats per predicted token). */
  score(x0: TokenBatch): Promise<NllEstimate>;
  /** Release its model. */
  dispose(): void;
}

const JUDGE_SEED = 7919;

/**
 * The judge named by `config.judge`; `self` returns undefined (the run's AR
 * model judges, once trained). Validated before the run writes anything.
 *
 * @param config The run's configuration.
 * @param data The run's data (the auto judge trains on its train split).
 * @param log Where progress lines go.
 * @returns The judge (dispose it when done), or undefined for `self`.
 * @throws {ConfigError} When the folder of `--judge` holds no usable run.
 */
export async function openJudge(
  config: ExperimentConfig,
  data: RunData,
  log: (line: string) => void,
): Promise<Judge | undefined> {
  if (config.judge === "self") return undefined;
  const process = autoregressive({
    kind: "autoregressive",
    start: data.specials.bos,
    padId: data.specials.pad,
  });
  const judged = (model: Transformer, describe: string): Judge => ({
    describe,
    score: (x0) => process.score(model, x0),
    dispose: () => model.dispose(),
  });
  if (config.judge !== "auto") return judged(...await otherRun(config, data));
  const shape = AR.modelConfig(config, data.tokenizer.vocabSize);
  const key = sha256Hex(JSON.stringify({
    tokenizer: data.tokenizer.id,
    train: data.trainSha256,
    shape,
    steps: config.judgeSteps,
    lr: AR.peakLr(config),
    batchSize: config.batchSize,
  })).slice(0, 16);
  const dir = `.cache/judges/${key}`;
  let model: Transformer;
  try {
    model = await loadModel(dir);
    log(`judge: cached AR model from ${dir}`);
  } catch {
    model = await trainJudge(config, data, shape, dir, log);
  }
  const valid = await overBlocks(data.valid, (x0) => process.score(model, x0));
  return judged(
    model,
    `a separate AR model of the same shape, trained for ${config.judgeSteps} steps (seed ${JUDGE_SEED}; valid NLL ${
      valid.nats.toFixed(3)
    } nats), cached in ${dir}`,
  );
}

async function trainJudge(
  c: ExperimentConfig,
  data: RunData,
  shape: ModelConfig,
  dir: string,
  log: (line: string) => void,
): Promise<Transformer> {
  log(
    `judge: training a separate AR model for ${c.judgeSteps} steps (cached in ${dir} for later runs)`,
  );
  const model = new Transformer(shape, { seed: JUDGE_SEED });
  const process = autoregressive({
    kind: "autoregressive",
    start: data.specials.bos,
  });
  const result = await train({
    variables: model.variables,
    loss: (batch) => process.loss(model, { ...batch, length: c.blockLength }),
    blocks: data.train,
    batchSize: c.batchSize,
    steps: c.judgeSteps,
    lr: warmupCosine({
      peak: AR.peakLr(c),
      warmup: c.warmup,
      total: c.judgeSteps,
    }),
    seed: JUDGE_SEED,
    adamw: { weightDecay: c.weightDecay },
    clipNorm: c.clipNorm,
    emaDecay: c.emaDecay > 0 ? c.emaDecay : undefined,
    progress: "judge",
  });
  if (result.ema) {
    model.setWeights(result.ema.values);
    result.ema.dispose();
  }
  result.optimizer.dispose();
  await saveModel(model, dir);
  return model;
}

/** The seed-0 AR model of another finished run, checked against this run's data. */
async function otherRun(
  c: ExperimentConfig,
  data: RunData,
): Promise<[Transformer, string]> {
  const folder = new RunFolder(c.judge);
  const other = await folder.savedConfig();
  if (!other) {
    throw new ConfigError(
      `Option --judge ${c.judge}: no finished run there (expected auto, self, or a run folder)`,
    );
  }
  let tokenizerId: unknown;
  try {
    tokenizerId = JSON.parse(await Deno.readTextFile(folder.resultsPath))
      .tokenizer?.id;
  } catch {
    throw new ConfigError(
      `Option --judge ${c.judge}: that run has not finished (no readable results.json)`,
    );
  }
  const same = other.data === c.data && other.blockLength === c.blockLength &&
    tokenizerId === data.tokenizer.id;
  if (!same) {
    throw new ConfigError(
      `Option --judge ${c.judge}: that run used other data, tokenizer or block length (${tokenizerId}, ${other.blockLength}); a judge must share them (${data.tokenizer.id}, ${c.blockLength})`,
    );
  }
  try {
    return [
      await loadModel(folder.modelDir(0, "ar")),
      `the AR model of seed 0 of the run in ${c.judge}`,
    ];
  } catch (e) {
    throw new ConfigError(
      `Option --judge ${c.judge}: cannot load its AR model (${
        (e as Error).message
      })`,
    );
  }
}

/**
 * `--judge self`: the seed's own AR model scores the samples (config
 * validation ensures it is trained).
 *
 * @param entrants The seed's contestants.
 * @param trained Their trained models, in the same order.
 * @returns The scorer.
 */
export function selfJudge(
  entrants: readonly Entrant[],
  trained: readonly { model: Transformer }[],
): EvalContext["judge"] {
  const i = entrants.findIndex((e) => e.contestant.kind === AR.kind);
  if (i < 0) throw new Error("--judge self needs the AR model in --models");
  const ar = entrants[i].process as ReturnType<typeof AR.restore>;
  return (x0) => ar.score(trained[i].model, x0);
}
