/**
 * The model card (`README.md`) of an export: what the model is, how to load
 * it with transformers, the run's command, data and figures, how the
 * project's model maps onto the exported architecture, and the licenses.
 *
 * @module
 */
import type { ExperimentConfig, ExperimentResult } from "@d3pm/experiment";
import { type ModelConfig, parameterCount } from "@d3pm/transformer";

/** What a model card says. */
export interface ModelCardFacts {
  /** The transformers class (`GPT2LMHeadModel`, `GPTNeoXForCausalLM`, `D3PMForMaskedLM`). */
  architecture: string;
  /** The contestant (`ar`, `d3pm`, `mlm`, …) and its report label. */
  contestant: { kind: string; title: string };
  /** The seed. */
  seed: number;
  /** The run folder it came from. */
  run: string;
  /** The run's configuration. */
  config: ExperimentConfig;
  /** The run's results, when it finished. */
  results?: ExperimentResult;
  /** The model. */
  model: ModelConfig;
  /** Which weights were exported. */
  weights: string;
  /** The tokenizer's identity. */
  tokenizer: string;
  /** The special ids. */
  specials: { bos: number; eos: number; pad: number; mask: number };
  /** The process's description (`process.json`). */
  process: unknown;
  /**
   * What the weights were trained on, for the data and license lines
   * (default: WikiText without `config.data`, else the user's text).
   */
  source?: CardSource;
  /**
   * The command of the process still writing the run (its lock), for a run
   * without results: the card names no command it cannot know.
   */
  command?: string;
}

/**
 * Where an export's weights come from: `wikitext` (the embedded WikiText-2,
 * or WikiText files of `--data`: CC BY-SA 3.0), `text` (the user's own
 * plain text of `--data`: a license the tool does not know), or `imported`
 * (`deno task import` from another tool's checkpoint: not trained here,
 * on data and under a license the tool does not know).
 */
export type CardSource =
  | { kind: "wikitext" }
  | { kind: "text"; data: string }
  | { kind: "imported"; from: string; architecture: string };

const WIKITEXT_LICENSE =
  "WikiText is © its authors and Wikipedia contributors, released under the [Creative Commons Attribution-ShareAlike 3.0](https://creativecommons.org/licenses/by-sa/3.0/) license (Merity, Xiong, Bradbury and Socher, _Pointer Sentinel Mixture Models_, 2016)";

function fixed(x: number | undefined, digits: number): string {
  return x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}

/**
 * The model card of an export, with YAML front matter for the Hub.
 *
 * @param facts What the card says.
 * @returns The Markdown text.
 *
 * @example
 * ```ts
 * import { modelCard } from "@d3pm/hf";
 * import { resolveConfig } from "@d3pm/experiment";
 * import { preset } from "@d3pm/transformer";
 * import { assert } from "@std/assert";
 * const card = modelCard({
 *   architecture: "GPTNeoXForCausalLM",
 *   contestant: { kind: "ar", title: "AR (causal)" },
 *   seed: 0, run: "runs/latest", config: resolveConfig({ preset: "micro" }),
 *   model: preset("micro"), weights: "the last step's weights", tokenizer: "byte",
 *   specials: { bos: 256, eos: 257, pad: 258, mask: 259 }, process: {},
 * });
 * assert(card.startsWith("---\nlicense: cc-by-sa-3.0\n"));
 * assert(card.includes("AutoModelForCausalLM.from_pretrained"));
 * ```
 */
export function modelCard(facts: ModelCardFacts): string {
  const { model } = facts;
  const causal = model.kind === "causal";
  const source: CardSource = facts.source ??
    (facts.config.data
      ? { kind: "text", data: facts.config.data }
      : { kind: "wikitext" });
  const origin = source.kind === "imported"
    ? `imported by \`deno task import\` from \`${source.from}\` (${source.architecture}; not trained by d3pm-deno)`
    : "trained by [d3pm-deno](https://jsr.io/@d3pm) — discrete diffusion vs autoregressive language models —";
  const lines: string[] = [
    "---",
    `license: ${source.kind === "wikitext" ? "cc-by-sa-3.0" : "other"}`,
    "library_name: transformers",
    `pipeline_tag: ${causal ? "text-generation" : "fill-mask"}`,
    ...(source.kind === "wikitext" ? ["datasets:", "- wikitext"] : []),
    "tags:",
    "- d3pm-deno",
    `- ${causal ? "autoregressive" : "discrete-diffusion"}`,
    ...(causal ? [] : ["- custom_code"]),
    "---",
    "",
    `# ${facts.contestant.title}, seed ${facts.seed}`,
    "",
    `A ${parameterCount(model).toLocaleString("en-US")}-parameter ${
      causal
        ? "causal (autoregressive) Transformer"
        : `bidirectional denoiser${
          model.timeConditioning ? " conditioned on the diffusion time" : ""
        }`
    } ${origin} and exported by \`deno task export\` as \`${facts.architecture}\`. The weights are ${facts.weights}.`,
    "",
    ...loadSection(model, facts.specials.mask),
    ...(source.kind === "imported"
      ? sourceSection(facts, source)
      : trainingSection(facts, source)),
    ...figuresSection(facts),
    "## Architecture",
    "",
    architectureNote(facts.architecture, model),
    "",
    "## License",
    "",
    `The code of d3pm-deno is MIT-licensed. ${licenseOf(source)}`,
    "",
  ];
  return lines.join("\n");
}

// How to load it with transformers (and, for a denoiser, what the remote
// code is).
function loadSection(model: ModelConfig, mask: number): string[] {
  const causal = model.kind === "causal";
  const lines = [
    "## Load it",
    "",
    "```python",
    causal
      ? "from transformers import AutoModelForCausalLM, AutoTokenizer"
      : "from transformers import AutoModelForMaskedLM, AutoTokenizer",
    "",
    causal
      ? 'model = AutoModelForCausalLM.from_pretrained("DIR")'
      : 'model = AutoModelForMaskedLM.from_pretrained("DIR", trust_remote_code=True)',
    causal
      ? 'tokenizer = AutoTokenizer.from_pretrained("DIR")'
      : 'tokenizer = AutoTokenizer.from_pretrained("DIR", trust_remote_code=True)',
    ...(causal
      ? [
        "# The project's documents start with <|bos|>: prepend it to a prompt.",
        'ids = tokenizer("<|bos|>The game", return_tensors="pt").input_ids',
        "out = model.generate(ids, max_new_tokens=32, do_sample=False)",
        "print(tokenizer.decode(out[0]))",
      ]
      : [
        "import torch",
        'ids = tokenizer("The <|mask|> was released in 2009 .", return_tensors="pt").input_ids',
        ...(model.timeConditioning
          ? [
            "t = torch.tensor([0.5])  # the diffusion time in [0, 1], one per row",
            "logits = model(ids, t=t).logits  # [1, T, vocab]",
          ]
          : ["logits = model(ids).logits  # [1, T, vocab]"]),
      ]),
    "```",
    "",
  ];
  if (!causal) {
    lines.push(
      `\`modeling_d3pm.py\` beside the weights holds the network in plain PyTorch: transformers runs it with \`trust_remote_code=True\`, so read it before you load the model. It has no sampler; the model gives the denoiser's logits for every position of a partly masked block (mask id ${mask}), ${
        model.timeConditioning
          ? "given the diffusion time t ∈ [0, 1] of each row"
          : "without the time (the model is not time-conditioned)"
      }. The process it was trained with (\`process.json\` of the run) is in \`config.json\` under \`d3pm_deno.process\`.`,
      "",
    );
  }
  return lines;
}

function tokenizerLine(facts: ModelCardFacts): string {
  const { specials, model } = facts;
  return `- Tokenizer: ${facts.tokenizer} (${model.vocabSize} ids; <|bos|> ${specials.bos}, <|eos|> ${specials.eos}, <|pad|> ${specials.pad}, <|mask|> ${specials.mask})`;
}

// A run trained here: its command (results.json's, or the lock's while it
// still trains), data and length.
function trainingSection(
  facts: ModelCardFacts,
  source: Exclude<CardSource, { kind: "imported" }>,
): string[] {
  const c = facts.config;
  const tokens = c.steps * c.batchSize * c.blockLength;
  const command = facts.results?.command ?? facts.command;
  const note = facts.results
    ? ""
    : facts.command
    ? " (the command of the process still writing the run: the run has no results.json yet)"
    : " (the run has no results.json: not evaluated)";
  const data = facts.results?.data.source ??
    (c.data || "embedded WikiText-2 (v1, tokenized release)");
  return [
    "## Training",
    "",
    `- Command: ${
      command === undefined
        ? "not recorded; the run's options are in `config.json` under `d3pm_deno.run`"
        : `\`${command}\``
    }${note}`,
    `- Data: ${data}${
      source.kind === "text"
        ? " (the user's own text: its license is not known to the tool)"
        : ""
    }${
      facts.results
        ? `; ${
          facts.results.data.trainTokens.toLocaleString("en-US")
        } train tokens`
        : ""
    }`,
    `${
      tokenizerLine(facts)
    }; each document is wrapped in <|bos|> … <|eos|> and packed into blocks of ${c.blockLength}`,
    `- ${c.steps} steps × ${c.batchSize} blocks × ${c.blockLength} tokens (${
      tokens.toLocaleString("en-US")
    } tokens), seed ${facts.seed}; run folder \`${facts.run}\``,
    "",
  ];
}

// An imported run: where the weights came from; its training is not known.
function sourceSection(
  facts: ModelCardFacts,
  source: Extract<CardSource, { kind: "imported" }>,
): string[] {
  return [
    "## Source",
    "",
    `- Imported from \`${source.from}\` (${source.architecture}) by \`deno task import\` into the run folder \`${facts.run}\`: how and on what data it was trained is not known to the tool (see the source's own card)`,
    tokenizerLine(facts),
    "",
  ];
}

// The run's test figures (from its results.json), when it has them.
function figuresSection(facts: ModelCardFacts): string[] {
  const result = facts.results?.results.find((r) =>
    r.model === facts.contestant.kind && r.seed === facts.seed
  );
  if (!result) return [];
  const t = result.test;
  const le = t.bound ? "≤ " : "";
  return [
    "## Figures (test split, from the run's results.json)",
    "",
    "| BPT | NLL (nats) | PPL | bits per byte | test tokens |",
    "| --- | --- | --- | --- | --- |",
    `| ${le}${fixed(t.bpt, 3)} | ${le}${fixed(t.nll, 3)}${
      t.stderr !== undefined ? ` ± ${fixed(t.stderr, 3)}` : ""
    } | ${le}${fixed(t.ppl, 1)} | ${le}${fixed(t.bpb, 3)} | ${t.tokens} |`,
    "",
    t.bound
      ? "Upper bounds (the Monte-Carlo continuous ELBO of masked diffusion)."
      : "Exact next-token likelihood.",
    `Generation: ${
      fixed(result.generation.speed.tokensPerSecond, 1)
    } tokens/s on the training machine; generative perplexity ${
      fixed(result.generation.genPpl, 1)
    } under the run's judge.`,
    "",
  ];
}

// The weights' license follows their data: WikiText's CC BY-SA 3.0, or one
// the tool does not know.
function licenseOf(source: CardSource): string {
  switch (source.kind) {
    case "wikitext":
      return `These weights were trained on WikiText: ${WIKITEXT_LICENSE}; the weights are shared under the same license.`;
    case "text":
      return `These weights were trained on the user's data (\`${source.data}\`), whose license is not known to the tool: whoever shares them states it.`;
    case "imported":
      return `These weights were imported from \`${source.from}\`: their license is their source's, not known to the tool — check it before sharing them.`;
  }
}

function architectureNote(architecture: string, model: ModelConfig): string {
  switch (architecture) {
    case "GPT2LMHeadModel":
      return "GPT-2, name for name: pre-LayerNorm blocks (ε 1e-5), GELU's tanh approximation, learned positions, the head tied to the token embedding; the project's special tokens follow the base vocabulary.";
    case "GPTNeoXForCausalLM":
      return `GPT-NeoX with sequential residuals (\`use_parallel_residual: false\`): the project's pre-LayerNorm block with rotary positions on every channel of each head (\`rotary_pct\` 1, base 10000, "rotate half"), GELU's tanh approximation, biases and a tied head. Its fused \`query_key_value\` interleaves the heads ([q, k, v] per head); the export reorders the project's \`c_attn\` accordingly.`;
    default:
      return `The project's denoiser (\`modeling_d3pm.py\`): ${model.nLayer} pre-LayerNorm blocks of width ${model.dModel}, ${model.nHead} heads, bidirectional attention, ${
        model.positions === "rotary" ? "rotary" : "learned"
      } positions${
        model.alibi
          ? `, an ALiBi prior (slope ${model.alibi}, ${
            model.alibiMode ?? "symmetric"
          })`
          : ""
      }${
        model.timeConditioning ? ", adaLN conditioning on the time" : ""
      }, a head tied to the token embedding.`;
  }
}
