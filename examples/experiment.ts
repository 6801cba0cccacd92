/**
 * `deno task experiment`: train an AR Transformer and an absorbing-state
 * D3PM (and any other registered contestant of `--models`) with matched
 * budgets on WikiText, evaluate them, and write a report. The work is
 * `@d3pm/experiment`'s `runExperiment`; this script reads the command line.
 *
 * @module
 */
import { flagOf, readCommandLine, runCli } from "@d3pm/cli";
import {
  commandLineOf,
  describeContestants,
  OPTION_GROUPS,
  OPTIONS,
  PRESETS,
  resolveConfig,
  RESUMABLE_KEYS,
  runExperiment,
  RunFolder,
  shellQuote,
} from "@d3pm/experiment";

const SUMMARY =
  `Trains an autoregressive Transformer (causal decoder) and a D3PM (bidirectional
denoiser, absorbing-state diffusion, MDLM objective) on WikiText (or your own
text: --data) with matched token budgets; evaluates both (NLL, bits per token,
perplexity, bits per byte — diffusion figures are ELBO upper bounds, with an
exact discrete-time bound on a subset), measures generation speed (batches/s
and tokens/s at --gen-batch rows a batch, default ${OPTIONS.genBatch.default}) and sample quality
(generative perplexity under a judge: by default a separate AR model, trained
once and cached; with the samples' entropy), and infilling; across seeds.
--models ar,d3pm,mlm adds a BERT-style masked language model on the D3PM's
backbone, evaluated on the same tasks. Writes a run folder: config.json,
data.json (each split's SHA-256 and the tokenizer), metrics.jsonl, checkpoints
(safetensors), samples.txt, results.json, report.md, loss.svg and
speed_quality.svg.

Defaults below are the tiny preset's; --preset changes them all.`;

const EPILOGUE = `Examples:
  deno task experiment --preset micro                # about a minute
  deno task experiment
  deno task experiment --preset small --seeds 3 --out runs/small
  deno task experiment --models ar,d3pm,mlm --seeds 2 --out runs/tiny-mlm
  deno task experiment --preset paper --data ~/wikitext-103 --engine webgpu
                                  # the fused engine on a GPU (auto picks it there)
  deno task experiment --out runs/latest --resume    # continue after an interruption
  deno task experiment --force                       # start afresh; the old run is moved aside

A run folder holds one run: a fresh run into a folder that holds one is refused
(--resume continues it, --force moves it aside); --resume refuses changed options
except ${RESUMABLE_KEYS.map((k) => `--${flagOf(k)}`).join(", ")}.`;

/** The option table, with the contestants the registry holds now. */
const options = {
  ...OPTIONS,
  models: {
    ...OPTIONS.models,
    help: `contestants, comma-separated, from ${describeContestants()}`,
  },
};

if (import.meta.main) {
  await runCli(async () => {
    const { given } = readCommandLine(Deno.args, {
      command: "deno task experiment",
      summary: SUMMARY,
      options,
      groups: OPTION_GROUPS,
      defaults: PRESETS.tiny,
      epilogue: EPILOGUE,
    });
    const config = resolveConfig(given);
    // Ctrl-C, or SIGTERM (kill, a batch system's time limit): say what is
    // on disk and how to continue it, and release the lock.
    const signals = Deno.build.os === "windows"
      ? [["SIGINT", 130] as const]
      : [["SIGINT", 130] as const, ["SIGTERM", 143] as const];
    for (const [signal, code] of signals) {
      Deno.addSignalListener(signal, () => {
        const { resume: _r, force: _f, ...rest } = given;
        const again = commandLineOf("deno task experiment", rest);
        console.error(new RunFolder(config.out).interruptionNote(again));
        RunFolder.releaseHeld();
        Deno.exit(code);
      });
    }
    await runExperiment(config, {
      // As typed, each word quoted for bash: a path with a space or a
      // quote in it gives the same command back.
      command: ["deno task experiment", ...Deno.args.map(shellQuote)].join(
        " ",
      ),
    });
  });
}
