// `deno task bench:dashboard [--seconds S] [--concurrency N] [--sse N]`: a
// bounded load on the dashboard over loopback, one JSON line of figures.
import { readCommandLine, runCli } from "@d3pm/cli";
import { loadTest } from "../dashboard/_load.ts";

if (import.meta.main) {
  await runCli(async () => {
    const { values } = readCommandLine(Deno.args, {
      command: "deno task bench:dashboard",
      summary:
        "Loads the dashboard on loopback (fake models) and prints one JSON line.",
      options: {
        seconds: {
          kind: "integer",
          min: 1,
          max: 600,
          default: 5,
          help: "how long",
        },
        concurrency: {
          kind: "integer",
          min: 1,
          max: 5000,
          default: 200,
          help: "request loops",
        },
        sse: {
          kind: "integer",
          min: 0,
          max: 1000,
          default: 20,
          help: "event-stream clients",
        },
      },
    });
    console.log(
      JSON.stringify(
        await loadTest({
          seconds: values.seconds,
          concurrency: values.concurrency,
          sseClients: values.sse,
        }),
      ),
    );
  });
}
