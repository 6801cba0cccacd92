/**
 * `deno task experiment`: the AR vs D3PM comparison (not built yet).
 *
 * @module
 */
import { parseArgs } from "@std/cli";

const HELP = `deno task experiment [options]

Trains an autoregressive Transformer and an absorbing-state D3PM (MDLM-style
objective) on WikiText with matched token budgets, evaluates both (NLL, BPT,
PPL, bits per byte; the D3PM figures as ELBO upper bounds), measures generation
speed (batches/s and tokens/s generating at batch size 4) and sample quality,
across seeds, and writes a run folder with config.json, metrics.jsonl,
checkpoints, samples.txt, report.md and SVG plots.

Not built yet: the training, evaluation and experiment issue will build it.

Options:
  -h, --help   show this help
`;

if (import.meta.main) {
  const args = parseArgs(Deno.args, {
    boolean: ["help"],
    alias: { h: "help" },
  });
  if (args.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  console.error(
    "error: deno task experiment is not built yet (training, evaluation and experiment issue); see --help",
  );
  Deno.exit(1);
}
