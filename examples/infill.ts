/**
 * `deno task infill`: fill the blanks of a text with a trained D3PM (or MLM), showing
 * the denoising steps on the terminal.
 *
 * @module
 */
import { prng } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  fail,
  openRun,
  parseToolArgs,
  showMasked,
  strategyOf,
  toolModel,
} from "@d3pm/experiment";

const HELP = `deno task infill --text "TEXT" [options]

Fills the blanks of TEXT with the D3PM (or the MLM) of a finished run. Write a blank as
[MASK] (one token) or [MASK*N] (N tokens). The text must fit in the model's
context (tokens beyond it are an error).

Options:
  --text TEXT        the text with blanks (required)
  --run DIR          the run folder (default runs/latest)
  --model NAME       d3pm (default) or mlm (a run with --models …,mlm)
  --seed N           which seed's model (default 0)
  --steps N          denoising steps (default min(64, T))
  --strategy NAME    ancestral or confidence (default: ancestral for the
                     D3PM, confidence for the MLM)
  --rng N            random seed of the sampler (default 0)
  --engine NAME      tfjs (default), webgpu (the fused engine: the whole
                     sampler on the GPU, one sync per sample, no
                     intermediate steps shown) or auto (webgpu on a real GPU)
  --quiet            print only the final text
  -h, --help         show this help

Example:
  deno task infill --text " = Robert Boulter = \\n Robert Boulter is an English [MASK*3] actor ."
`;

const STRINGS = [
  "text",
  "run",
  "model",
  "seed",
  "steps",
  "strategy",
  "rng",
  "engine",
];

if (import.meta.main) {
  try {
    const parsed = parseToolArgs(
      Deno.args,
      STRINGS,
      HELP,
    );
    const { values: args, quiet, num } = parsed;
    if (args.text === undefined) {
      throw new Error(
        'Option --text is required, e.g. --text "The [MASK*2] of France"',
      );
    }
    const kind = parsed.choice("model", ["d3pm", "mlm"] as const, "d3pm");
    const strategy = strategyOf(parsed, kind);
    const { config, tokenizer, model, process } = await openRun(parsed, kind);
    const mask = process.spec.maskId;
    const text = String(args.text).replace(/\\n/g, "\n");
    const ids: number[] = [];
    let last = 0;
    for (const m of text.matchAll(/\[MASK(?:\*(\d+))?\]/g)) {
      ids.push(...tokenizer.encode(text.slice(last, m.index)));
      const n = m[1] === undefined ? 1 : Number(m[1]);
      if (!(n >= 1 && n <= config.blockLength)) {
        throw new Error(
          `[MASK*${m[1]}]: the count must be in [1, ${config.blockLength}]`,
        );
      }
      for (let i = 0; i < n; i++) ids.push(mask);
      last = m.index! + m[0].length;
    }
    ids.push(...tokenizer.encode(text.slice(last)));
    if (!ids.includes(mask)) {
      throw new Error(
        "The text has no blank: write [MASK] or [MASK*N] where tokens should be filled",
      );
    }
    if (ids.length > config.blockLength) {
      throw new Error(
        `The text is ${ids.length} tokens; the model's context is ${config.blockLength}`,
      );
    }
    const steps = num("steps", Math.min(64, process.spec.steps));
    const every = Math.max(1, Math.round(steps / 16));
    const on = await toolModel(parsed, model);
    const out = await process.sample(on.model, {
      prng: prng(num("rng", 0)),
      prompt: Int32Array.from(ids),
      steps,
      strategy,
      onStep: (s) => {
        if (!quiet && (s.step % every === 0 || s.step === s.steps)) {
          console.log(
            `--- step ${s.step}/${s.steps} ---\n${
              showMasked(tokenizer, s.tokens, mask)
            }`,
          );
        }
      },
    });
    if (!quiet) console.log("=== filled ===");
    console.log(tokenizer.decode(out.tokens));
    on.dispose();
    tf.disposeVariables();
  } catch (e) {
    fail(e);
  }
}
