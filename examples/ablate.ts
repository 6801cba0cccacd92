/**
 * `deno task ablate`: a measured ablation of training at a small budget
 * (`@d3pm/experiment/studies`' `runAblation`). Each variant trains one model
 * of the `tiny` preset on the same number of tokens and reports its
 * validation NLL and the step at which its training loss leaves the
 * unigram plateau. `--sweep` writes the grid as sweep cells instead
 * (`deno task sweep run DIR --on local|slurm` runs them, one `--variant`
 * each; `--collect` makes the table).
 *
 * @module
 */
import { readCommandLine, runCli, UsageError } from "@d3pm/cli";
import { saveSweep, shellQuote } from "@d3pm/experiment";
import {
  ablationSweep,
  collectAblation,
  runAblation,
  runAblationCell,
} from "@d3pm/experiment/studies";

const OPTIONS = {
  steps: {
    kind: "integer",
    min: 30,
    default: 250,
    help:
      "steps of the baseline (250: 256K tokens at batch 8); a multiple of 10, and 100 or more for the warm-up 100 and 200 variants",
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
  sweep: {
    kind: "boolean",
    default: false,
    help:
      "run nothing: write the variants as sweep cells (DIR/sweep.json, DIR the --out) for deno task sweep run DIR --on local|slurm",
  },
  variant: {
    kind: "string",
    value: "NAME",
    help:
      "run this one variant (exact name; one cell of --sweep) into its folder",
  },
  collect: {
    kind: "boolean",
    default: false,
    help:
      "run nothing: gather the variants' folders into ablation.jsonl and ablation.md; a planned variant without results is refused",
  },
  partial: {
    kind: "boolean",
    default: false,
    help:
      "with --collect: make the table without the planned variants that have not finished (ablation.md names them)",
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
    const only = values.only?.split(";").map((s) => s.trim()).filter(
      Boolean,
    );
    // " ; " would choose no variant: a run of nothing, and an empty table.
    if (only?.length === 0) {
      throw new UsageError(
        `Option --only needs a variant name (or several, separated by ;), got ${
          JSON.stringify(values.only)
        }`,
      );
    }
    const modes = [
      values.sweep && "--sweep",
      values.variant !== undefined && "--variant",
      values.collect && "--collect",
    ].filter(Boolean);
    if (values.partial && !values.collect) {
      throw new UsageError("Option --partial goes with --collect only");
    }
    if (modes.length > 1 || (only && (values.variant || values.collect))) {
      throw new UsageError(
        `Options ${
          [...modes, ...(only ? ["--only"] : [])].join(" and ")
        } do not go together: --sweep (with --only), --variant NAME or --collect`,
      );
    }
    if (values.sweep) {
      const sweep = await saveSweep(
        ablationSweep({ steps: values.steps, out: values.out, only }),
      );
      console.log(`${sweep.cells.length} cells in ${sweep.dir}:`);
      for (const c of sweep.cells) {
        console.log(
          `${String(c.index).padStart(3)}  deno run -A examples/ablate.ts ${
            c.args.map(shellQuote).join(" ")
          }`,
        );
      }
      console.log(
        `run: deno task sweep run ${sweep.dir} --on local --jobs N | --on slurm [--dry-run]`,
      );
      return;
    }
    if (values.variant !== undefined) {
      await runAblationCell({
        steps: values.steps,
        out: values.out,
        variant: values.variant,
      });
      return;
    }
    if (values.collect) {
      await collectAblation({
        steps: values.steps,
        out: values.out,
        partial: values.partial,
      });
      return;
    }
    await runAblation({ steps: values.steps, out: values.out, only });
  });
}
