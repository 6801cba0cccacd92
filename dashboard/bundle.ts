// `deno task bundle`: build the dashboard's page script (dashboard/dist/app.js).
import { readCommandLine, runCli } from "@d3pm/cli";
import { buildBundle } from "./page.ts";

if (import.meta.main) {
  await runCli(async () => {
    const { values } = readCommandLine(Deno.args, {
      command: "deno task bundle",
      summary:
        "Builds the dashboard's page script, dashboard/dist/app.js, with deno bundle when its sources changed (tools/setup.sh and serve run it too).",
      options: {
        force: {
          kind: "boolean",
          default: false,
          help: "rebuild even when up to date",
        },
      },
    }, { usageExit: 2 });
    const { path, rebuilt } = await buildBundle({
      force: values.force,
      log: console.error,
    });
    console.error(rebuilt ? `wrote ${path}` : `${path} is up to date`);
  }, { usageExit: 2 });
}
