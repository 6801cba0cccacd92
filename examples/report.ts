/**
 * `deno task report --merge DIR…`: one report across run folders or a
 * sweep folder (`@d3pm/experiment`'s `collectRuns` and
 * `writeMergedReport`): per cell, and grouped over seeds (mean ± sd, best,
 * range), with plots. Folders that differ in data, tokenizer or an option
 * not swept are refused, naming the difference.
 *
 * @module
 */
import { keyOf, readCommandLine, runCli, UsageError } from "@d3pm/cli";
import {
  collectRuns,
  readSweep,
  sweepPaths,
  writeMergedReport,
} from "@d3pm/experiment";

const OPTIONS = {
  merge: {
    kind: "boolean",
    default: false,
    help: "merge the run folders or sweep folders given",
  },
  out: {
    kind: "string",
    value: "DIR",
    help: "where report.md goes (default: the sweep folder, when one is given)",
  },
  vary: {
    kind: "string",
    value: "KEYS",
    help:
      "options plain run folders may differ in, comma-separated (a sweep's own come from sweep.json)",
  },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const { values, positionals } = readCommandLine(Deno.args, {
      command: "deno task report --merge",
      summary:
        `Writes one report over finished runs: every cell, and per swept setting the
figures over seeds (mean ± sd, best, range), with loss and speed–quality plots.
Runs must share the data, the tokenizer and every option but the swept ones.`,
      options: OPTIONS,
      epilogue: `Examples:
  deno task report --merge runs/tiny-3seed                 # a sweep folder: report.md there
  deno task report --merge runs/a runs/b --out runs/ab     # plain run folders (seeds)
  deno task report --merge runs/lr1 runs/lr2 --vary lr --out runs/lr`,
    }, { positionals: true });
    if (!values.merge || positionals.length === 0) {
      throw new UsageError(
        "deno task report needs --merge and the run or sweep folders to merge (see --help)",
      );
    }
    let out = values.out;
    if (out === undefined) {
      const sweep = positionals.length === 1
        ? await Deno.stat(sweepPaths(positionals[0]).json).then(
          () => readSweep(positionals[0]),
          () => undefined,
        )
        : undefined;
      if (!sweep) {
        throw new UsageError(
          "Option --out is needed unless one sweep folder is merged (the report goes there)",
        );
      }
      out = sweep.dir;
    }
    const merge = await collectRuns(positionals, {
      vary: values.vary?.split(",").map((s) => keyOf(s.trim())).filter(Boolean),
    });
    await writeMergedReport(merge, out);
    const n = merge.runs.length;
    console.log(`report: ${out}/report.md (${n} run${n === 1 ? "" : "s"})`);
  });
}
