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
}

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
  const { config: c, model, specials } = facts;
  const causal = model.kind === "causal";
  const result = facts.results?.results.find((r) =>
    r.model === facts.contestant.kind && r.seed === facts.seed
  );
  const tokens = c.steps * c.batchSize * c.blockLength;
  const lines: string[] = [
    "---",
    "license: cc-by-sa-3.0",
    "library_name: transformers",
    `pipeline_tag: ${causal ? "text-generation" : "fill-mask"}`,
    "datasets:",
    "- wikitext",
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
    } trained by [d3pm-deno](https://jsr.io/@d3pm) — discrete diffusion vs autoregressive language models — and exported by \`deno task export\` as \`${facts.architecture}\`. The weights are ${facts.weights}.`,
    "",
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
      `\`modeling_d3pm.py\` beside the weights holds the network in plain PyTorch: transformers runs it with \`trust_remote_code=True\`, so read it before you load the model. It has no sampler; the model gives the denoiser's logits for every position of a partly masked block (mask id ${specials.mask}), ${
        model.timeConditioning
          ? "given the diffusion time t ∈ [0, 1] of each row"
          : "without the time (the model is not time-conditioned)"
      }. The process it was trained with (\`process.json\` of the run) is in \`config.json\` under \`d3pm_deno.process\`.`,
      "",
    );
  }
  lines.push(
    "## Training",
    "",
    `- Command: \`${
      facts.results?.command ?? `deno task experiment --preset ${c.preset}`
    }\`${facts.results ? "" : " (the run has no results.json: not evaluated)"}`,
    `- Data: ${
      facts.results?.data.source ??
        (c.data || "embedded WikiText-2 (v1, tokenized release)")
    }${
      facts.results
        ? `; ${
          facts.results.data.trainTokens.toLocaleString("en-US")
        } train tokens`
        : ""
    }`,
    `- Tokenizer: ${facts.tokenizer} (${model.vocabSize} ids; <|bos|> ${specials.bos}, <|eos|> ${specials.eos}, <|pad|> ${specials.pad}, <|mask|> ${specials.mask}); each document is wrapped in <|bos|> … <|eos|> and packed into blocks of ${c.blockLength}`,
    `- ${c.steps} steps × ${c.batchSize} blocks × ${c.blockLength} tokens (${
      tokens.toLocaleString("en-US")
    } tokens), seed ${facts.seed}; run folder \`${facts.run}\``,
    "",
  );
  if (result) {
    const t = result.test;
    const le = t.bound ? "≤ " : "";
    lines.push(
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
    );
  }
  lines.push(
    "## Architecture",
    "",
    architectureNote(facts.architecture, model),
    "",
    "## License",
    "",
    `The code of d3pm-deno is MIT-licensed. These weights were trained on WikiText: ${WIKITEXT_LICENSE}; the weights are shared under the same license.`,
    "",
  );
  return lines.join("\n");
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
