/**
 * `deno task infill`: fill the blanks of a text with a trained D3PM (or
 * MLM), showing the unmasking steps on the terminal (`@d3pm/experiment`'s
 * `fillText`).
 *
 * @module
 */
import { readCommandLine, runCli } from "@d3pm/cli";
import { initBackend } from "@d3pm/backend";
import { fillText } from "@d3pm/experiment";
import * as tf from "@tensorflow/tfjs";
import { TEMPERATURE_OPTION, toolOptions } from "./_tool_options.ts";

const OPTIONS = {
  text: {
    kind: "string",
    required: true,
    value: "TEXT",
    help: 'the text with blanks, e.g. --text "The [MASK*2] of France"',
  },
  ...toolOptions(true),
  temperature: TEMPERATURE_OPTION,
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const { values } = readCommandLine(Deno.args, {
      command: "deno task infill",
      synopsis: 'deno task infill --text "TEXT" [options]',
      summary:
        `Fills the blanks of TEXT with a denoiser (the D3PM or the MLM) of a finished
run. Write a blank as [MASK] (one token) or [MASK*N] (N tokens). The text must
fit in the model's context (tokens beyond it are an error); "\\n" in TEXT is a
line break.`,
      options: OPTIONS,
      epilogue: `Example:
  deno task infill --text " = Robert Boulter = \\n Robert Boulter is an English [MASK*3] actor ."`,
    });
    await initBackend({ prefer: "auto" });
    await fillText(
      {
        ...values,
        text: values.text.replace(/\\n/g, "\n"),
        log: console.error,
      },
      console.log,
    );
    tf.disposeVariables();
  });
}
