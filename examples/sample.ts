/**
 * `deno task sample`: generate text from a trained run, showing the D3PM
 * denoising steps on the terminal.
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

const HELP = `deno task sample [options]

Generates from the models of a finished run (deno task experiment). For the
D3PM and the MLM, prints the sequence as it is unmasked (░ = still masked).

Options:
  --run DIR          the run folder (default runs/latest)
  --model NAME       d3pm (default), ar, or mlm (a run with --models …,mlm)
  --seed N           which seed's models (default 0)
  --steps N          D3PM/MLM unmasking steps (default min(64, T))
  --strategy NAME    ancestral or confidence (default: ancestral for the
                     D3PM, confidence for the MLM)
  --count N          samples (default 1)
  --temperature X    softmax temperature (default 1)
  --top-p X          nucleus sampling (default 1)
  --rng N            random seed of the sampler (default 0)
  --engine NAME      tfjs (default), webgpu (the fused engine: the whole
                     sampler on the GPU, one sync per sample, no
                     intermediate steps shown) or auto (webgpu on a real GPU)
  --every N          show every Nth denoising step (default: about 16 frames)
  --quiet            print only the final text
  -h, --help         show this help
`;

const STRINGS = [
  "run",
  "model",
  "seed",
  "steps",
  "strategy",
  "count",
  "temperature",
  "top-p",
  "rng",
  "every",
  "engine",
];

if (import.meta.main) {
  try {
    const parsed = parseToolArgs(
      Deno.args,
      STRINGS,
      HELP,
    );
    const { quiet, num, choice } = parsed;
    const kind = choice("model", ["d3pm", "ar", "mlm"] as const, "d3pm");
    const strategy = strategyOf(parsed, kind);
    const rng = prng(num("rng", 0));
    const count = num("count", 1);
    const opts = { temperature: num("temperature", 1), topP: num("top-p", 1) };
    if (kind === "ar") {
      const { config, tokenizer, model, process } = await openRun(parsed, "ar");
      const on = await toolModel(parsed, model);
      for (let c = 0; c < count; c++) {
        const out = await process.sample(on.model, {
          batchSize: 1,
          length: config.blockLength,
          prng: rng,
          ...opts,
        });
        console.log(tokenizer.decode(out.tokens));
      }
      on.dispose();
    } else {
      const { config, tokenizer, model, process } = await openRun(
        parsed,
        kind,
      );
      const mask = process.spec.maskId;
      const steps = num("steps", Math.min(64, process.spec.steps));
      const every = num("every", Math.max(1, Math.round(steps / 16)));
      const on = await toolModel(parsed, model);
      for (let c = 0; c < count; c++) {
        const out = await process.sample(on.model, {
          prng: rng,
          length: config.blockLength,
          steps,
          strategy,
          ...opts,
          onStep: (s) => {
            if (!quiet && (s.step % every === 0 || s.step === s.steps)) {
              console.log(
                `--- step ${s.step}/${s.steps} (${s.forwardPasses} forward passes) ---`,
              );
              console.log(showMasked(tokenizer, s.tokens, mask));
            }
          },
        });
        console.log(
          quiet
            ? tokenizer.decode(out.tokens)
            : `=== sample ${c + 1} (${out.forwardPasses} forward passes) ===`,
        );
        if (!quiet) console.log(tokenizer.decode(out.tokens));
      }
      on.dispose();
    }
    tf.disposeVariables();
  } catch (e) {
    fail(e);
  }
}
