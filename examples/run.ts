/**
 * The whole comparison, as a function: tokenizer → data → train AR and D3PM
 * with matched token budgets → evaluate → generation speed → samples → a run
 * folder with `config.json`, `metrics.jsonl`, checkpoints, `samples.txt`,
 * `results.json`, `report.md` and SVG plots.
 *
 * @module
 */
import { type Prng, prng } from "@d3pm/core";
import { initBackend } from "@d3pm/backend";
import {
  type Blocks,
  type CorpusSource,
  embeddedWikiText2,
  findWikiText,
  packBlocks,
  readArticles,
  sha256OfSource,
  type Split,
  tokenizeCorpus,
  type TokenizedCorpus,
} from "@d3pm/data";
import {
  ByteTokenizer,
  loadBpeTokenizer,
  loadGpt2Tokenizer,
  saveBpeTokenizer,
  type Tokenizer,
  trainBpe,
} from "@d3pm/tokenizer";
import { type ModelConfig, saveModel, Transformer } from "@d3pm/transformer";
import {
  absorbing,
  d3pmLoss,
  type DiscreteSchedule,
  discretize,
  logLinear,
  mdlmLoss,
} from "@d3pm/diffusion";
import { causalLmLoss, MetricsLog, train, warmupCosine } from "@d3pm/train";
import {
  arNll,
  diffusionBound,
  figures,
  generateAr,
  generateDiffusion,
  generativePerplexity,
  infill,
  type LikelihoodFigures,
  measureSpeed,
  sampleEntropy,
  type SpeedFigures,
} from "@d3pm/eval";
import { ConfigError, type ExperimentConfig, genStepList } from "./config.ts";
import { writeReport } from "./report.ts";

/** Figures of one model and seed. */
export interface ModelResult {
  /** `ar` or `d3pm`. */
  model: "ar" | "d3pm";
  /** Seed. */
  seed: number;
  /** Test likelihood (a bound for D3PM: Monte-Carlo continuous ELBO). */
  test: LikelihoodFigures;
  /** The exact discrete-time bound on a subset of test blocks (D3PM only). */
  exact?: LikelihoodFigures;
  /** Generation speed (D3PM: at the largest step count). */
  speed: SpeedFigures;
  /** Generative perplexity of samples under the trained AR model, with entropy. */
  quality: { genPpl: number; entropy: number };
  /** D3PM only: speed and quality at each step count. */
  curve?: {
    steps: number;
    speed: SpeedFigures;
    genPpl: number;
    entropy: number;
  }[];
  /** D3PM only: infilling. */
  infill?: { fraction: number; accuracy: number; nll: number; hidden: number };
  /** Parameters. */
  parameters: number;
  /** Training seconds and final training loss. */
  training: { seconds: number; lastLoss: number; tokens: number };
}

/** Everything a run measured. */
export interface ExperimentResult {
  /** The resolved configuration. */
  config: ExperimentConfig;
  /** Backend and why. */
  backend: string;
  /** Tokenizer identity and vocabulary. */
  tokenizer: { id: string; vocabSize: number };
  /** Corpus facts. */
  data: {
    source: string;
    trainTokens: number;
    testTokens: number;
    bytesPerToken: number;
    unigramEntropy: number;
  };
  /** One entry per model and seed. */
  results: ModelResult[];
  /** Seconds for the whole run. */
  seconds: number;
}

/** Options of {@linkcode runExperiment}. */
export interface RunOptions {
  /** Where progress lines go (default stderr). */
  log?: (line: string) => void;
  /** Show progress bars (default true). */
  progress?: boolean;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function source(
  config: ExperimentConfig,
  split: Split,
): Promise<CorpusSource> {
  return config.data
    ? await findWikiText(config.data, split)
    : embeddedWikiText2(split);
}

async function loadTokenizer(
  config: ExperimentConfig,
  train: { source: CorpusSource; sha256: string },
  log: (s: string) => void,
): Promise<Tokenizer> {
  if (config.tokenizer === "byte") return new ByteTokenizer();
  if (config.tokenizer === "gpt2") return await loadGpt2Tokenizer();
  const inRun = `${config.out}/tokenizer.json`;
  if (await exists(inRun)) return await loadBpeTokenizer(inRun);
  const key = train.sha256.slice(0, 16);
  const cached = `.cache/tokenizers/bpe-${config.vocabSize}-${key}.json`;
  let tok;
  if (await exists(cached)) {
    tok = await loadBpeTokenizer(cached);
    log(`tokenizer: BPE ${config.vocabSize} from ${cached}`);
  } else {
    log(
      `tokenizer: training BPE to ${config.vocabSize} ids on the train split`,
    );
    const start = performance.now();
    const texts: string[] = [];
    for await (const t of readArticles(train.source)) texts.push(t);
    tok = trainBpe(texts, { vocabSize: config.vocabSize });
    await saveBpeTokenizer(tok, cached);
    log(
      `tokenizer: trained in ${
        ((performance.now() - start) / 1000).toFixed(1)
      } s`,
    );
  }
  await saveBpeTokenizer(tok, inRun);
  return tok;
}

function unigramEntropy(ids: Uint32Array, vocab: number): number {
  const counts = new Float64Array(vocab);
  for (const x of ids) counts[x]++;
  let h = 0;
  for (const c of counts) {
    if (c > 0) h -= (c / ids.length) * Math.log(c / ids.length);
  }
  return h;
}

function modelConfig(
  c: ExperimentConfig,
  vocabSize: number,
  kind: "ar" | "d3pm",
): ModelConfig {
  return {
    kind: kind === "ar" ? "causal" : "bidirectional",
    vocabSize,
    contextLength: c.blockLength,
    nLayer: c.nLayer,
    nHead: c.nHead,
    dModel: c.dModel,
    dMlp: c.dMlp,
    positions: c.positions,
    timeConditioning: kind === "d3pm" && c.timeConditioning,
    dTime: 128,
    dropout: c.dropout,
  };
}

/**
 * Run the experiment described by `config`.
 *
 * @param config A resolved configuration (see `resolveConfig`).
 * @param options Logging.
 * @returns What was measured; the same is written to `config.out`.
 */
export async function runExperiment(
  config: ExperimentConfig,
  options: RunOptions = {},
): Promise<ExperimentResult> {
  const log = options.log ?? ((s: string) => console.error(s));
  const started = performance.now();
  const backend = await initBackend({ prefer: config.backend }); // prints which and why
  await Deno.mkdir(config.out, { recursive: true });
  const configPath = `${config.out}/config.json`;
  if (config.resume && (await exists(configPath))) {
    const saved = JSON.parse(await Deno.readTextFile(configPath));
    for (const [k, v] of Object.entries(config)) {
      if (k !== "resume" && JSON.stringify(saved[k]) !== JSON.stringify(v)) {
        throw new ConfigError(
          `Cannot resume ${config.out}: --${k} is ${
            JSON.stringify(v)
          } but the run used ${JSON.stringify(saved[k])}`,
        );
      }
    }
  } else if (!config.resume && (await exists(`${config.out}/results.json`))) {
    log(
      `note: ${config.out} holds an earlier run; its files will be replaced (metrics.jsonl is appended to)`,
    );
  }
  await Deno.writeTextFile(configPath, JSON.stringify(config, null, 2) + "\n");

  if (config.preset === "paper" && !config.data) {
    log(
      "note: the paper preset is meant for WikiText-103 (--data DIR); without it, the embedded WikiText-2 is used",
    );
  }
  // The train split is hashed once: it keys both the BPE and the token cache.
  const trainSource = await source(config, "train");
  const trainSha256 = await sha256OfSource(trainSource);
  const tokenizer = await loadTokenizer(config, {
    source: trainSource,
    sha256: trainSha256,
  }, log);
  const { bos, eos, pad, mask } = tokenizer.special;
  if (
    bos === undefined || eos === undefined || pad === undefined ||
    mask === undefined
  ) {
    throw new ConfigError(
      `Tokenizer ${tokenizer.id} lacks bos/eos/pad/mask special tokens`,
    );
  }
  const vocab = tokenizer.vocabSize;
  const cacheDir = ".cache/tokens";
  const corpora: Record<"train" | "test", TokenizedCorpus> = {
    train: await tokenizeCorpus(trainSource, tokenizer, {
      cacheDir,
      corpusSha256: trainSha256,
    }),
    test: await tokenizeCorpus(await source(config, "test"), tokenizer, {
      cacheDir,
    }),
  };
  const pack = (c: TokenizedCorpus) =>
    packBlocks(c, { length: config.blockLength, bos, eos });
  const trainBlocks = pack(corpora.train);
  const allTest = pack(corpora.test);
  const testBlocks: Blocks =
    config.evalBlocks > 0 && config.evalBlocks < allTest.count
      ? {
        ...allTest,
        count: config.evalBlocks,
        data: allTest.data.subarray(0, config.evalBlocks * allTest.length),
      }
      : allTest;
  const testText = tokenizer.decode(corpora.test.ids);
  const bytesPerToken = new TextEncoder().encode(testText).length /
    corpora.test.ids.length;
  const data = {
    source: config.data || "embedded WikiText-2 (v1, tokenized release)",
    trainTokens: corpora.train.ids.length,
    testTokens: corpora.test.ids.length,
    bytesPerToken,
    unigramEntropy: unigramEntropy(corpora.train.ids, vocab),
  };
  log(
    `data: ${data.trainTokens} train / ${data.testTokens} test tokens, ${trainBlocks.count} train blocks, ${testBlocks.count} test blocks of ${config.blockLength}`,
  );

  const metrics = new MetricsLog(`${config.out}/metrics.jsonl`);
  const T = config.diffusionSteps;
  const continuous = logLinear();
  const schedule: DiscreteSchedule = discretize(continuous, { steps: T });
  const transition = absorbing(schedule, { numStates: vocab, maskId: mask });
  const suppress = [pad, mask];
  const results: ModelResult[] = [];

  for (let seed = 0; seed < config.seeds; seed++) {
    const models: Partial<Record<"ar" | "d3pm", Transformer>> = {};
    const training: Partial<Record<"ar" | "d3pm", ModelResult["training"]>> =
      {};
    for (const kind of ["ar", "d3pm"] as const) {
      const dir = `${config.out}/seed-${seed}/${kind}`;
      await Deno.mkdir(dir, { recursive: true });
      const model = new Transformer(modelConfig(config, vocab, kind), {
        seed: 1000 * seed + (kind === "ar" ? 1 : 2),
      });
      const L = config.blockLength;
      const loss = kind === "ar"
        ? (batch: { tokens: Int32Array; batchSize: number }) =>
          causalLmLoss(model, {
            tokens: batch.tokens,
            batchSize: batch.batchSize,
            length: L,
          })
        : config.diffusionLoss === "mdlm"
        ? (
          batch: { tokens: Int32Array; batchSize: number },
          rng: Prng,
        ) =>
          mdlmLoss(model, {
            tokens: batch.tokens,
            batchSize: batch.batchSize,
            length: L,
          }, {
            schedule: continuous,
            maskId: mask,
            prng: rng,
            padId: pad,
          })
        : (
          batch: { tokens: Int32Array; batchSize: number },
          rng: Prng,
        ) =>
          d3pmLoss(model, {
            tokens: batch.tokens,
            batchSize: batch.batchSize,
            length: L,
          }, {
            transition,
            prng: rng,
            padId: pad,
          });
      const start = performance.now();
      const result = await train({
        variables: model.variables,
        loss,
        blocks: trainBlocks,
        batchSize: config.batchSize,
        steps: config.steps,
        lr: warmupCosine({
          peak: config.lr,
          warmup: config.warmup,
          total: config.steps,
        }),
        seed,
        adamw: { weightDecay: config.weightDecay },
        clipNorm: config.clipNorm,
        emaDecay: config.emaDecay > 0 ? config.emaDecay : undefined,
        checkpoint: `${dir}/checkpoint.safetensors`,
        checkpointEvery: config.checkpointEvery,
        resume: config.resume,
        config,
        progress: options.progress === false ? false : `seed ${seed} ${kind}`,
        onStep: (s) => metrics.append({ model: kind, seed, ...s }),
      });
      if (result.ema) {
        model.setWeights(result.ema.values);
        result.ema.dispose();
      }
      result.optimizer.dispose();
      await saveModel(model, dir);
      training[kind] = {
        seconds: (performance.now() - start) / 1000,
        lastLoss: result.lastLoss,
        tokens: config.steps * config.batchSize * config.blockLength,
      };
      models[kind] = model;
    }
    const ar = models.ar!, d3pm = models.d3pm!;
    const rng = prng(10_000 + seed);
    const L = config.blockLength;

    // AR: exact NLL, speed, samples judged by itself.
    log(`seed ${seed}: evaluating`);
    const arTest = await arNll(ar, testBlocks, { batchSize: 8 });
    let arSamples: Int32Array = new Int32Array(0);
    const arSpeed = await measureSpeed(async () => {
      arSamples = await generateAr(ar, {
        batchSize: config.genBatch,
        length: L,
        start: bos,
        prng: rng,
        suppress,
      });
    }, {
      totalTokens: config.genTokens,
      batchSize: config.genBatch,
      length: L,
    });
    const arQuality = await generativePerplexity(ar, arSamples, L);
    results.push({
      model: "ar",
      seed,
      test: figures(arTest.nats, { tokens: arTest.tokens, bytesPerToken }),
      speed: arSpeed,
      quality: {
        genPpl: arQuality.genPpl,
        entropy: sampleEntropy(arSamples, L),
      },
      parameters: count(ar),
      training: training.ar!,
    });

    // D3PM: bounds, speed–quality curve, infilling.
    const bound = await diffusionBound(d3pm, testBlocks, {
      kind: "continuous",
      schedule: continuous,
      maskId: mask,
      prng: rng,
      samples: config.elboSamples,
      batchSize: 8,
    });
    let exact: LikelihoodFigures | undefined;
    if (config.exactBlocks > 0) {
      const e = await diffusionBound(d3pm, testBlocks, {
        kind: "discrete",
        transition,
        prng: rng,
        maxBlocks: config.exactBlocks,
        batchSize: config.exactBlocks,
      });
      exact = figures(e.nats, {
        tokens: e.tokens,
        bytesPerToken,
        bound: true,
        stderr: e.stderr,
      });
    }
    const curve: NonNullable<ModelResult["curve"]> = [];
    let d3pmSamples: Int32Array = new Int32Array(0);
    for (const steps of genStepList(config)) {
      let passes = 0;
      const speed = await measureSpeed(async () => {
        const out = await generateDiffusion(d3pm, {
          schedule,
          maskId: mask,
          steps,
          batchSize: config.genBatch,
          length: L,
          prng: rng,
          suppress,
          cache: !config.timeConditioning,
        });
        d3pmSamples = out.tokens;
        passes = out.forwardPasses;
        return passes;
      }, {
        totalTokens: config.genTokens,
        batchSize: config.genBatch,
        length: L,
      });
      const q = await generativePerplexity(ar, d3pmSamples, L);
      curve.push({
        steps,
        speed: { ...speed, steps },
        genPpl: q.genPpl,
        entropy: sampleEntropy(d3pmSamples, L),
      });
    }
    const fill = await infill(d3pm, testBlocks, {
      fraction: config.infillFraction,
      maskId: mask,
      schedule,
      steps: Math.max(...genStepList(config)),
      prng: rng,
      maxBlocks: 8,
      suppress,
    });
    const last = curve[curve.length - 1];
    results.push({
      model: "d3pm",
      seed,
      test: figures(bound.nats, {
        tokens: bound.tokens,
        bytesPerToken,
        bound: true,
        stderr: bound.stderr,
      }),
      exact,
      speed: last.speed,
      quality: { genPpl: last.genPpl, entropy: last.entropy },
      curve,
      infill: { fraction: config.infillFraction, ...fill },
      parameters: count(d3pm),
      training: training.d3pm!,
    });

    const show = (label: string, ids: Int32Array) => {
      const out: string[] = [];
      for (let r = 0; r < Math.min(config.samples, ids.length / L); r++) {
        out.push(
          `--- ${label} sample ${r + 1} ---\n${
            tokenizer.decode(ids.subarray(r * L, (r + 1) * L))
          }\n`,
        );
      }
      return out.join("\n");
    };
    await Deno.writeTextFile(
      `${config.out}/samples.txt`,
      `=== seed ${seed} ===\n${show("AR", arSamples)}\n${
        show(`D3PM (${last.steps} steps)`, d3pmSamples)
      }\n`,
      { append: seed > 0 },
    );
    ar.dispose();
    d3pm.dispose();
  }

  const result: ExperimentResult = {
    config,
    backend: backend.reason,
    tokenizer: { id: tokenizer.id, vocabSize: vocab },
    data,
    results,
    seconds: (performance.now() - started) / 1000,
  };
  await Deno.writeTextFile(
    `${config.out}/results.json`,
    JSON.stringify(result, null, 2) + "\n",
  );
  await writeReport(result, config.out);
  log(`report: ${config.out}/report.md (${result.seconds.toFixed(0)} s)`);
  return result;
}

function count(model: Transformer): number {
  let n = 0;
  for (const v of model.variables.values()) n += v.size;
  return n;
}
