/**
 * `deno task serve`: the dashboard of the run folders under `--runs` —
 * live training curves, the report's tables and charts, samples, several
 * runs overlaid, and a playground where the AR model and the D3PM generate
 * side by side (`@d3pm/dashboard`). `--export DIR` writes a static copy
 * instead of serving.
 *
 * @module
 */
import { listItems, readCommandLine, runCli, UsageError } from "@d3pm/cli";
import { initBackend } from "@d3pm/backend";
import {
  checkListen,
  checkRunsRoot,
  dashboardAddress,
  dashboardHandler,
  exportDashboard,
  findRuns,
  GenerationService,
  isLoopback,
  pageFiles,
  type SkippedFolder,
  trainedModelLoader,
} from "@d3pm/dashboard";

const OPTIONS = {
  runs: {
    kind: "string",
    value: "DIR",
    default: "runs",
    help: "the folder of run folders to serve (runs inside sweep folders too)",
  },
  host: {
    kind: "string",
    value: "HOST",
    default: "127.0.0.1",
    help:
      "the interface to listen on; anything but loopback needs --token (one is generated and printed when absent)",
  },
  port: {
    kind: "integer",
    min: 0,
    max: 65535,
    default: 8000,
    help: "the port (0: any free one)",
  },
  token: {
    kind: "string",
    value: "TOKEN",
    help:
      "a secret every request must carry (open http://HOST:PORT/?token=TOKEN once): letters, digits and - . _ ~ + / (then = padding), as base64 is; at least 16 characters beyond loopback",
  },
  engine: {
    kind: "choice",
    choices: ["tfjs", "webgpu", "cpu", "auto"],
    default: "tfjs",
    help: "where the server generates (tfjs streams every step)",
  },
  queue: {
    kind: "integer",
    min: 0,
    max: 64,
    default: 4,
    help:
      "generation requests waiting per model beyond the one running; more get 429",
  },
  maxGenerations: {
    kind: "integer",
    min: 1,
    max: 64,
    default: 4,
    help:
      "generations running at once over all models (each --queue waits behind its model's); a request for an idle model beyond it gets 429",
  },
  maxStreams: {
    kind: "integer",
    min: 1,
    max: 4096,
    default: 64,
    help:
      "metrics streams (pages following a run's curves) open at once; one more gets 503",
  },
  timeout: {
    kind: "integer",
    min: 1,
    max: 3600,
    default: 120,
    help: "seconds a generation may take, waiting included",
  },
  export: {
    kind: "string",
    value: "DIR",
    help:
      "write a static copy of the dashboard (no playground) into DIR and exit",
  },
  only: {
    kind: "string",
    value: "IDS",
    help:
      "with --export: the run ids to export, comma-separated (default: all)",
  },
} as const;

/** One line naming the address that cannot be listened on and what --host and --port take. */
function listenError(e: unknown, host: string, port: number): UsageError {
  const why = (e as Error).message.replace(/ \(os error \d+\)$/, "");
  return new UsageError(
    e instanceof Deno.errors.AddrInUse
      ? `Cannot listen on ${host}:${port}: the port is in use; choose another --port, or --port 0 for any free one`
      : `Cannot listen on ${host}:${port}: ${why}; --host takes an address of this machine (127.0.0.1, ::1, or 0.0.0.0 for all) or a name that resolves to one, --port a port in [0, 65535] this user may bind`,
  );
}

/** Before the page is bundled and the backend started: a port in use or a host not of this machine is named at once. */
function checkAddress(host: string, port: number): void {
  if (port === 0) return;
  try {
    Deno.listen({ hostname: host, port }).close();
  } catch (e) {
    throw listenError(e, host, port);
  }
}

/** Serve `handler` on --host and --port, printing the address once listening. */
function listen(
  values: { host: string; port: number; runs: string },
  handler: (req: Request, info: Deno.ServeHandlerInfo) => Promise<Response>,
  onListen: () => void,
  token: string | undefined,
): Deno.HttpServer {
  try {
    return Deno.serve({
      hostname: values.host,
      port: values.port,
      onListen: ({ hostname, port }) => {
        onListen();
        console.log(
          `dashboard of ${values.runs}: ${
            dashboardAddress(hostname, { port, token })
          }`,
        );
      },
    }, handler);
  } catch (e) {
    throw listenError(e, values.host, values.port);
  }
}

/** The options {@linkcode serve} reads. */
type ServeValues = {
  runs: string;
  host: string;
  port: number;
  token?: string;
  engine: Parameters<typeof trainedModelLoader>[0];
  queue: number;
  maxGenerations: number;
  timeout: number;
  maxStreams: number;
};

/**
 * Serve the dashboard until Ctrl-C: the server on one abort signal (the
 * first Ctrl-C ends its streams and generations, the second exits at once).
 */
async function serve(values: ServeValues): Promise<void> {
  const note = await checkRunsRoot(values.runs, { missing: "note" });
  if (note) console.error(note);
  const { token, warning } = checkListen({
    host: values.host,
    token: values.token,
  });
  checkAddress(values.host, values.port);
  const page = await pageFiles({ log: console.error });
  await initBackend({ prefer: "auto" });
  const generation = new GenerationService(
    trainedModelLoader(values.engine),
    {
      maxWaiting: values.queue,
      maxRunning: values.maxGenerations,
      timeoutMs: values.timeout * 1000,
    },
  );
  // One signal for the server: Ctrl-C aborts it, which ends every open
  // event stream and cancels the generations, so the graceful shutdown
  // does not wait for a page that follows a run.
  const stopping = new AbortController();
  const handler = dashboardHandler(
    {
      root: values.runs,
      generation,
      signal: stopping.signal,
      maxStreams: values.maxStreams,
    },
    {
      token,
      page,
      hosts: isLoopback(values.host)
        ? ["127.0.0.1", "localhost", "::1", values.host]
        : undefined,
    },
  );
  const server = listen(values, handler, () => {
    // The warning (with the token) once listening, not before a failure.
    if (warning) console.error(warning);
    // Folders whose names an id cannot carry are named, not hidden.
    const skipped: SkippedFolder[] = [];
    findRuns(values.runs, { skipped }).then(() => {
      for (const s of skipped) console.error(`note: ${s.reason}`);
    }, () => {});
  }, token);
  const stop = () => {
    if (stopping.signal.aborted) {
      // The second Ctrl-C: whatever still holds the shutdown up.
      console.error("stopped at once");
      Deno.exit(130);
    }
    console.error("stopping… (Ctrl-C again to stop at once)");
    stopping.abort("the server is shutting down");
    server.shutdown();
  };
  Deno.addSignalListener("SIGINT", stop);
  await server.finished;
  Deno.removeSignalListener("SIGINT", stop);
  await generation.close();
}

if (import.meta.main) {
  await runCli(async () => {
    const { values } = readCommandLine(Deno.args, {
      command: "deno task serve",
      summary:
        `Serves a dashboard of the run folders under --runs: each run's state, live
training curves, report tables, charts and samples, several runs overlaid, and
a playground where the AR model and the D3PM generate side by side (on the
server, or in the browser on WebGPU). Read-only towards the run folders.`,
      options: OPTIONS,
      epilogue: `Examples:
  deno task serve                      # http://127.0.0.1:8000
  deno task serve --runs runs --port 8080
  deno task serve --export dist/site --only tiny-main`,
    }, {
      check: ({ values }) => {
        if (values.only !== undefined && values.export === undefined) {
          throw new UsageError(
            "Option --only chooses the runs of an --export: give --export DIR, or leave --only out (the server shows every run)",
          );
        }
      },
    });
    if (values.export !== undefined) {
      const ids = await exportDashboard(values.runs, values.export, {
        runs: values.only === undefined
          ? undefined
          : listItems("only", values.only),
        log: console.error,
      });
      console.log(
        `wrote ${values.export}/index.html (${ids.length} ${
          ids.length === 1 ? "run" : "runs"
        }): open it in a browser`,
      );
      return;
    }
    await serve(values);
  });
}
