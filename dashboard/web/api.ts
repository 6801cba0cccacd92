/// <reference lib="dom" />
// The page's data: from the server's API, or, in a static export, from the
// data the export wrote beside the page (window.__D3PM_STATIC__).

/** What a static export holds. */
export interface StaticData {
  /** `/api/runs`. */
  runs: unknown;
  /** Per run id: `/api/run`, its metrics lines, and its files. */
  run: Record<
    string,
    { info: unknown; metrics: string[]; files: Record<string, string> }
  >;
  /** `/api/options`. */
  options: unknown;
}

declare global {
  interface Window {
    __D3PM_STATIC__?: StaticData;
  }
}

/** The static data, when this page is a static export. */
export const STATIC: StaticData | undefined = globalThis.window
  ?.__D3PM_STATIC__;

/** A failed request, with the server's one-line reason. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** GET a JSON route. */
export async function getJson<T>(
  path: string,
  query: Record<string, string | number> = {},
): Promise<T> {
  if (STATIC) return staticJson(path, query) as T;
  const r = await fetch(url(path, query));
  if (!r.ok) throw new ApiError(r.status, await reason(r));
  return await r.json() as T;
}

/** GET a text file of a run (null when it does not exist yet). */
export async function getRunFile(
  run: string,
  name: string,
): Promise<string | null> {
  if (STATIC) return STATIC.run[run]?.files[name] ?? null;
  const r = await fetch(url("/api/run/file", { run, name }));
  if (r.status === 404) return null;
  if (!r.ok) throw new ApiError(r.status, await reason(r));
  return await r.text();
}

/** The address of a route with its query. */
export function url(
  path: string,
  query: Record<string, string | number> = {},
): string {
  const q = new URLSearchParams(
    Object.entries(query).map(([k, v]) => [k, String(v)]),
  );
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

async function reason(r: Response): Promise<string> {
  try {
    const body = await r.json();
    return body.error ?? `HTTP ${r.status}`;
  } catch {
    return `HTTP ${r.status}`;
  }
}

function staticJson(
  path: string,
  query: Record<string, string | number>,
): unknown {
  const s = STATIC!;
  if (path === "/api/runs") return s.runs;
  if (path === "/api/options") return s.options;
  const run = s.run[String(query.run)];
  if (path === "/api/run" && run) return run.info;
  throw new ApiError(
    404,
    `${path} is not part of this static export (the playground needs deno task serve)`,
  );
}

/** A followed run's metrics stream (see {@linkcode followMetrics}). */
export interface MetricsFollow {
  /** Stop for good. */
  stop(): void;
  /**
   * Catch up again: reopen a stream let go (from the last event, so only
   * what is new arrives), or let go of an open one whose run is no longer
   * live once it has read to the end.
   */
  refresh(): void;
}

/**
 * Follow a run's metrics: every line so far, then each appended one.
 * A stream is held open only while `hold()` says the run is live: at the
 * end of the log (`caught-up`) a run that is not live lets go of its
 * connection (a browser has 6 per host over HTTP/1.1: held streams of
 * finished runs froze the page), and `refresh()` picks up from the last
 * event. In a static export, the exported lines.
 */
export function followMetrics(
  run: string,
  on: {
    line: (record: Record<string, unknown>) => void;
    caughtUp?: () => void;
    reset?: () => void;
    error?: (live: boolean) => void;
    /** The run's folder was deleted or moved: the stream is over (why, one line). */
    gone?: (reason: string) => void;
  },
  hold: () => boolean = () => true,
): MetricsFollow {
  if (STATIC) {
    for (const l of STATIC.run[run]?.metrics ?? []) {
      try {
        on.line(JSON.parse(l));
      } catch { /* skip */ }
    }
    on.caughtUp?.();
    return { stop: () => {}, refresh: () => {} };
  }
  let es: EventSource | undefined;
  let last = ""; // the last event's id: where a reopened stream starts
  let caught = false;
  let over = false; // stopped, or the run is gone
  const letGo = () => {
    es?.close();
    es = undefined;
  };
  const open = () => {
    caught = false;
    const s = es = new EventSource(
      url("/api/run/metrics", last ? { run, from: last } : { run }),
    );
    const track = (e: Event) => {
      const id = (e as MessageEvent).lastEventId;
      if (id) last = id;
    };
    s.addEventListener("metric", (e) => {
      track(e);
      try {
        on.line(JSON.parse((e as MessageEvent).data));
      } catch { /* a damaged line */ }
    });
    s.addEventListener("caught-up", (e) => {
      track(e);
      caught = true;
      on.caughtUp?.();
      if (!hold()) letGo();
    });
    s.addEventListener("reset", (e) => {
      track(e);
      on.reset?.();
    });
    // The last event: closed here, or the browser would reconnect to a run
    // that is no longer there.
    s.addEventListener("gone", (e) => {
      letGo();
      over = true;
      let reason = "the run's folder is gone";
      try {
        reason = String(JSON.parse((e as MessageEvent).data).reason ?? reason);
      } catch { /* the default */ }
      on.gone?.(reason);
    });
    s.onerror = () => {
      const retrying = s.readyState !== EventSource.CLOSED;
      // Refused (a 503 when the server holds its most streams): the next
      // refresh() tries again.
      if (!retrying && es === s) es = undefined;
      on.error?.(retrying);
    };
  };
  open();
  return {
    stop: () => {
      over = true;
      letGo();
    },
    refresh: () => {
      if (over) return;
      if (!es) open();
      else if (caught && !hold()) {
        // Live no longer: one more read from the last event, then let go.
        letGo();
        open();
      }
    },
  };
}

/** One server-sent event read from a fetch body. */
export interface StreamEvent {
  event: string;
  data: string;
}

/** POST JSON and read the answer as server-sent events. */
export async function* postEvents(
  path: string,
  body: unknown,
  signal: AbortSignal,
): AsyncGenerator<StreamEvent> {
  const r = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  if (!r.ok || !r.body) throw new ApiError(r.status, await reason(r));
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}
