// A bounded load on the dashboard over loopback: concurrent request loops
// (lists, run pages, files, generations) and server-sent event clients
// following a metrics log that grows, for a fixed time. Shared by the load
// test and `deno task bench:dashboard [--seconds S] [--concurrency N]
// [--sse N]` (this file run as a script: one JSON line of figures). It lives
// here, unpublished, beside the test fakes it serves the dashboard with.
import { readCommandLine, runCli } from "@d3pm/cli";
import { dashboardHandler } from "./server.ts";
import { GenerationService } from "./generation.ts";
import { fakeLoader, fakeRun } from "./_test_util.ts";
import { sleep } from "./follow.ts";

/** What one load run measured. */
export interface LoadFigures {
  seconds: number;
  concurrency: number;
  sseClients: number;
  requests: number;
  statuses: Record<string, number>;
  errors: string[];
  latencyMs: { p50: number; p99: number; max: number };
  appended: number;
  sseLinesPerClient: { min: number; max: number };
  rssMiB: { afterWarmup: number; end: number; growth: number };
  /** Heap in use each second, MiB (a leak climbs; garbage saws up and down). */
  heapMiB: number[];
  generations: { completed: number; refused: number; cancelled: number };
}

export async function loadTest(
  options: { seconds: number; concurrency: number; sseClients: number },
): Promise<LoadFigures> {
  const root = await Deno.makeTempDir({ prefix: "d3pm-load-" });
  await fakeRun(`${root}/good`, { results: true });
  await fakeRun(`${root}/live`, { lockPid: Deno.pid });
  // Served runs are older than this: the link check walks a run folder
  // changed within the last 2 s on every request, then keeps its verdict.
  await sleep(2_100);
  const generation = new GenerationService(fakeLoader(1), { maxWaiting: 4 });
  const handler = dashboardHandler({
    root,
    generation,
    pollMs: 50,
    keepAliveMs: 60_000,
  }, {
    page: { html: "<p>x</p>", js: "", css: "" },
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    handler,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const end = Date.now() + options.seconds * 1000;
  const statuses: Record<string, number> = {};
  const errors: string[] = [];
  const latencies: number[] = [];
  // SSE clients, each counting the metric lines it gets.
  const sse = await Promise.all(
    Array.from({ length: options.sseClients }, async () => {
      const ac = new AbortController();
      const res = await fetch(`${base}/api/run/metrics?run=live`, {
        signal: ac.signal,
      });
      const state = { lines: 0, done: Promise.resolve() };
      state.done = (async () => {
        const reader = res.body!.pipeThrough(new TextDecoderStream())
          .getReader();
        try {
          while (true) {
            const { done, value } = await reader.read();
            if (done) break;
            state.lines += value.split("event: metric\n").length - 1;
          }
        } catch { /* aborted */ }
      })();
      return { ac, state };
    }),
  );
  let appended = 2; // fakeRun's lines
  const appender = (async () => {
    while (Date.now() < end) {
      await Deno.writeTextFile(
        `${root}/live/metrics.jsonl`,
        `{"model":"ar","seed":0,"step":${++appended},"loss":4}\n`,
        { append: true },
      );
      await sleep(20);
    }
  })();
  const paths = [
    ["GET", "/api/runs"],
    ["GET", "/api/run?run=good"],
    ["GET", "/api/run/file?run=good&name=report.md"],
    ["GET", "/api/run?run=..%2Fetc"],
    ["POST", "/api/generate"],
  ] as const;
  let requests = 0;
  let rssWarm = 0;
  const warm = sleep(Math.min(1000, options.seconds * 300)).then(
    () => (rssWarm = Deno.memoryUsage().rss),
  );
  const heap: number[] = [];
  const sampler = setInterval(
    () => heap.push(+(Deno.memoryUsage().heapUsed / 2 ** 20).toFixed(1)),
    1000,
  );
  // Each client sends at least one request, however slow the machine: the
  // test asserts that every one was answered, not how many fit in the time
  // (throughput is `deno task bench:dashboard`'s).
  const worker = async (w: number) => {
    let i = w;
    do {
      const [method, path] = paths[i++ % paths.length];
      const t0 = performance.now();
      try {
        const res = await fetch(
          `${base}${path}`,
          method === "POST"
            ? {
              method,
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ run: "good", model: "d3pm", steps: 3 }),
            }
            : {},
        );
        await res.arrayBuffer();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        const expected = path.includes("..") ? 400 : 200;
        if (res.status !== expected && res.status !== 429) {
          errors.push(`${method} ${path}: ${res.status}`);
        }
      } catch (e) {
        errors.push(`${method} ${path}: ${(e as Error).message}`);
      }
      latencies.push(performance.now() - t0);
      requests++;
    } while (Date.now() < end);
  };
  await Promise.all(
    Array.from({ length: options.concurrency }, (_, w) => worker(w)),
  );
  clearInterval(sampler);
  await appender;
  await warm;
  await sleep(300); // the last appended lines reach the clients
  for (const c of sse) c.ac.abort();
  await Promise.all(sse.map((c) => c.state.done));
  const rssEnd = Deno.memoryUsage().rss;
  await server.shutdown();
  await generation.close();
  await Deno.remove(root, { recursive: true });
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    +latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]
      .toFixed(1);
  const lines = sse.map((c) => c.state.lines);
  const mib = (b: number) => +(b / 2 ** 20).toFixed(1);
  return {
    seconds: options.seconds,
    concurrency: options.concurrency,
    sseClients: options.sseClients,
    requests,
    statuses,
    errors: errors.slice(0, 10),
    latencyMs: { p50: q(0.5), p99: q(0.99), max: q(1) },
    appended,
    sseLinesPerClient: { min: Math.min(...lines), max: Math.max(...lines) },
    rssMiB: {
      afterWarmup: mib(rssWarm),
      end: mib(rssEnd),
      growth: mib(rssEnd - rssWarm),
    },
    heapMiB: heap,
    generations: {
      completed: generation.completed,
      refused: generation.refused,
      cancelled: generation.cancelled,
    },
  };
}

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
