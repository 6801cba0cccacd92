/**
 * `deno task study NAME [options]`: the studies of the project, by name.
 * `epochs`: the data-constrained crossover of AR and D3PM over many epochs
 * (`study_epochs.ts`); `adaptation`: D3PMs started from AR and MLM weights
 * at matched total compute (`study_adaptation.ts`). `deno task study NAME --help` lists a study's options.
 *
 * @module
 */
import { runCli, UsageError } from "@d3pm/cli";
import { studyAdaptation } from "./study_adaptation.ts";
import { studyEpochs } from "./study_epochs.ts";

const STUDIES: Record<string, (argv: string[]) => Promise<void>> = {
  epochs: studyEpochs,
  adaptation: studyAdaptation,
};

const HELP = `deno task study NAME [options]

Studies:
  epochs   AR vs D3PM trained for many epochs on a few unique tokens: best
           epochs, over-fitting, and where the D3PM's bound falls below the
           AR's best NLL (deno task study epochs --help)
  adaptation
           D3PMs started from a trained AR's or MLM's weights against a
           D3PM and an AR from scratch, at matched total compute
           (deno task study adaptation --help)
`;

if (import.meta.main) {
  await runCli(async () => {
    const [name, ...rest] = Deno.args;
    if (name === undefined || name === "--help" || name === "-h") {
      console.log(HELP);
      Deno.exit(name === undefined ? 1 : 0);
    }
    const study = STUDIES[name];
    if (!study) {
      throw new UsageError(
        `Unknown study "${name}": expected one of ${
          Object.keys(STUDIES).join(", ")
        }`,
      );
    }
    await study(rest);
  });
}
