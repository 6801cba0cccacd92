/**
 * The presets of the experiment: the option table's defaults, the
 * transformer preset of the same name, and what each preset changes.
 *
 * @module
 */
import { preset as modelPreset } from "@d3pm/transformer";
import {
  type ExperimentConfig,
  type OptionKey,
  OPTIONS,
  type PresetName,
} from "./options.ts";

/** The model fields of an experiment preset: the transformer preset of the same name. */
function model(name: PresetName): Partial<ExperimentConfig> {
  const m = modelPreset(name);
  return {
    vocabSize: m.vocabSize,
    blockLength: m.contextLength,
    nLayer: m.nLayer,
    nHead: m.nHead,
    dModel: m.dModel,
    dMlp: m.dMlp,
    positions: m.positions,
    dropout: m.dropout,
  };
}

/**
 * A preset: the table's defaults, the model of `name`, then `changes`, with
 * its keys in the table's order (the order of `config.json`).
 */
function preset(
  name: PresetName,
  changes: Partial<ExperimentConfig>,
): ExperimentConfig {
  const values: Record<string, unknown> = {
    ...Object.fromEntries(
      Object.entries(OPTIONS).map(([k, s]) => [
        k,
        (s as { default?: unknown }).default,
      ]),
    ),
    ...model(name),
    ...changes,
    preset: name,
  };
  return Object.fromEntries(
    (Object.keys(OPTIONS) as OptionKey[]).map((k) => [k, values[k]]),
  ) as ExperimentConfig;
}

/**
 * The values a preset's training options held before the preset moved, by
 * preset and option: a run made then holds one of them where its command
 * named none. `report --merge` takes such a run as its sweep cell's (the
 * cell's options resolve to the preset as it is now), so that a sweep that
 * finished before the move still merges; its cells are still compared with
 * each other, so a sweep with cells from both sides of a move is refused.
 *
 * @example
 * ```ts
 * import { PRESET_MOVES, PRESETS } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(PRESET_MOVES.tiny.adamBeta2, [0.95]);
 * assertEquals(PRESETS.tiny.adamBeta2, 0.999);
 * ```
 */
export const PRESET_MOVES: Readonly<
  Record<PresetName, Readonly<Partial<Record<OptionKey, readonly unknown[]>>>>
> = {
  micro: {},
  // 2026-12-07: β2 0.95 → 0.999 (docs/adaptation.md, round three).
  tiny: { adamBeta2: [0.95] },
  small: {},
  paper: {},
};

/**
 * The presets; `tiny` is the default. Each trains the transformer preset of
 * the same name (`@d3pm/transformer`'s `preset()`), so a name means one model.
 *
 * @example
 * ```ts
 * import { PRESETS, resolveConfig } from "@d3pm/experiment";
 * import { preset } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * assertEquals(resolveConfig(), PRESETS.tiny); // no overrides: the default preset
 * assertEquals(PRESETS.micro.tokenizer, "byte");
 * for (const [name, config] of Object.entries(PRESETS)) {
 *   assertEquals(config.preset, name);
 *   assertEquals(config.nLayer, preset(config.preset).nLayer); // the same model
 *   assertEquals(config.blockLength, preset(config.preset).contextLength);
 * }
 * ```
 */
export const PRESETS: Readonly<Record<PresetName, ExperimentConfig>> = {
  // About a minute: for tests of the wiring, not for figures.
  micro: preset("micro", {
    tokenizer: "byte",
    // Enough for both models to beat the unigram entropy of bytes (3.19 nats):
    // the denoiser needs ~500 steps before it uses its context at all.
    steps: 800,
    batchSize: 16,
    lr: 5e-3,
    warmup: 20,
    emaDecay: 0.9,
    checkpointEvery: 250,
    validEvery: 100,
    validBlocks: 16,
    diffusionSteps: 50,
    evalBlocks: 64,
    elboSamples: 8,
    exactBlocks: 2,
    genTokens: 256,
    genSteps: "4,16",
    samples: 1,
    judgeSteps: 400,
  }),
  // The default: a quiet 2-core CPU in about 2½–4 minutes on the CPU engine
  // (141–223 s, judge included; README), about 8½ on the tfjs engine.
  tiny: preset("tiny", {
    // 512K training tokens. Chosen by `deno task ablate` (README): batch 4
    // (more, smaller steps at matched tokens help both models), each model
    // its own best lr, no EMA at this budget, and for the D3PM BD3-LM's
    // clipped mask rate and an ALiBi prior: heads 0 and 1 on the
    // left and right neighbour, heads 2 and 3 symmetric (slopes 1, 1/4).
    steps: 1000,
    batchSize: 4,
    lr: 1.4e-3,
    arLr: 4e-3,
    tMin: 0.3,
    tMax: 0.8,
    alibi: 16,
    alibiMode: "neighbours",
    warmup: 60,
    emaDecay: 0,
    // AdamW's β2 at MDLM's 0.999, not nanoGPT's 0.95 (the default, set for
    // batches of ~0.5M tokens): at 512 tokens a step it gains the AR 0.14 BPT
    // and the D3PM 0.13, at every one of 3 seeds (docs/adaptation.md, round
    // three); 0.99 is within noise of it.
    adamBeta2: 0.999,
    checkpointEvery: 500,
    validEvery: 100,
    // Bound draws by mask count, the same for every seed: 16 per test block
    // put the Monte-Carlo spread of the test bound near 0.01 nats.
    elboSamples: 16,
    exactBlocks: 1,
    genTokens: 2048,
    genSteps: "16,64",
    judgeSteps: 1000,
  }),
  // A 2-core CPU in about an hour; several seeds.
  small: preset("small", {
    steps: 3000,
    batchSize: 8,
    lr: 6e-4,
    warmup: 200,
    checkpointEvery: 500,
    validEvery: 250,
    validBlocks: 64,
    evalBlocks: 256,
    exactBlocks: 4,
    genTokens: 16384,
    genSteps: "32,128,256,1000",
    seeds: 3,
    judgeSteps: 6000,
  }),
  // The thesis setting, for a GPU: GPT-2 small, GPT-2 vocabulary, T = 1024, WikiText-103.
  paper: preset("paper", {
    tokenizer: "gpt2",
    steps: 100000,
    batchSize: 4,
    lr: 3e-4,
    warmup: 2000,
    emaDecay: 0.9999,
    checkpointEvery: 1000,
    validEvery: 1000,
    validBlocks: 128,
    evalBlocks: 0,
    elboSamples: 4,
    exactBlocks: 8,
    genTokens: 100000,
    genSteps: "100,250,500,1000",
    seeds: 3,
    judgeSteps: 200000,
  }),
};
