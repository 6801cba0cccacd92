/**
 * `deno task ablate`: a measured ablation of training at a small budget
 * (`@d3pm/experiment/studies`' `runAblation`). Each variant trains one model
 * of the `tiny` preset on the same number of tokens and reports its
 * validation NLL and the step at which its training loss leaves the
 * unigram plateau.
 *
 * @module
 */
import { readCommandLine, runCli } from "@d3pm/cli";
import { runAblation } from "@d3pm/experiment/studies";

const OPTIONS = {
  steps: {
    kind: "integer",
    min: 25,
    default: 250,
    help: "steps of the baseline (256K tokens at batch 8)",
  },
  out: {
    kind: "string",
    value: "DIR",
    default: "runs/ablate",
    help: "where the runs and the table go",
  },
  only: {
    kind: "string",
    value: "TEXT",
    help: "run only the variants whose name contains TEXT (several: a;b)",
  },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const { values } = readCommandLine(Deno.args, {
      command: "deno task ablate",
      summary:
        `Trains each variant of the grid (AR and D3PM learning rates; for the D3PM:
batch size, clipped mask rates, per-token times, time conditioning, EMA,
warm-up, ALiBi, the model's shape) on the tiny preset at matched tokens, and
reports validation NLL and when the training loss leaves the unigram plateau.
Results: JSON lines on stdout, ablation.jsonl and ablation.md in --out.`,
      options: OPTIONS,
    });
    await runAblation({
      steps: values.steps,
      out: values.out,
      only: values.only?.split(";").map((s) => s.trim()).filter(Boolean),
    });
  });
}
