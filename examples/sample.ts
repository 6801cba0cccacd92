/**
 * `deno task sample`: generate text from a trained run, showing a
 * denoiser's unmasking steps on the terminal (`@d3pm/experiment`'s
 * `sampleText`).
 *
 * @module
 */
import { readCommandLine, runCli } from "@d3pm/cli";
import { initBackend } from "@d3pm/backend";
import { sampleText } from "@d3pm/experiment";
import * as tf from "@tensorflow/tfjs";
import { TEMPERATURE_OPTION, toolOptions } from "./_tool_options.ts";

const OPTIONS = {
  ...toolOptions(false),
  count: { kind: "integer", min: 1, default: 1, help: "samples" },
  temperature: TEMPERATURE_OPTION,
  topP: {
    kind: "number",
    above: 0,
    max: 1,
    default: 1,
    help: "nucleus sampling",
  },
  prompt: {
    kind: "string",
    value: "TEXT",
    help:
      "text every sample starts from: the AR model continues it; a denoiser keeps it fixed at the start and fills in the rest",
  },
  every: {
    kind: "integer",
    min: 1,
    help: "show every Nth unmasking step (default: about 16 frames)",
  },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const { values } = readCommandLine(Deno.args, {
      command: "deno task sample",
      summary:
        `Generates from the models of a finished run (deno task experiment). For a
denoiser (the D3PM, the MLM), prints the sequence as it is unmasked
(░ = still masked). With --prompt, every sample starts from the text: the AR
model continues it, a denoiser keeps it fixed and fills in the rest.`,
      options: OPTIONS,
    });
    await initBackend({ prefer: "auto" });
    await sampleText(
      {
        ...values,
        prompt: values.prompt?.replace(/\\n/g, "\n"),
        log: console.error,
      },
      console.log,
    );
    tf.disposeVariables();
  });
}
