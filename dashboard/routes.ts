/**
 * The dashboard's routes, each a small function from what it needs to a
 * `Response`. They read run folders (never write them), name runs by id
 * (never by path), and answer a bad id with 400 and a missing run or file
 * with 404, with one line saying why.
 *
 * @module
 */
import {
  type Contestant,
  contestantOf,
  contestants,
  inspectRun,
  openTokenizer,
  OPTIONS as EXPERIMENT_OPTIONS,
  parseJsonObject,
  processSpec,
  processStagger,
  RunFolder,
  type RunOverview,
} from "@d3pm/experiment";
import { BoundedReadError, formatBytes, readAt, tailCheck } from "@d3pm/core";
import { type Followed, followLines } from "./follow.ts";
import {
  damaged,
  type GenerationService,
  HttpError,
  inRunFolder,
  parseGenerationInput,
} from "./generation.ts";
import {
  BadRunIdError,
  filesStamp,
  findRuns,
  type InsideFile,
  insideFile,
  notServed,
  openInside,
  resolveRun,
  RunLinksOutError,
  RunUncheckedError,
  type SkippedFolder,
} from "./run_ids.ts";
import { ROOT as CHECKOUT } from "./page.ts";
import { eventResponse, type ServerEvent } from "./sse.ts";

/** What every route may use. */
export interface DashboardContext {
  /** The served root of run folders. */
  root: string;
  /** Generation on the server. */
  generation: GenerationService;
  /** How often followed files are polled, ms (default 250). */
  pollMs?: number;
  /** Keep-alive interval of event streams, ms. */
  keepAliveMs?: number;
  /** How long a request body may take to arrive, ms (default 10,000; then 408). */
  bodyTimeoutMs?: number;
  /**
   * The server's: aborted when it shuts down, it ends every open event
   * stream (metrics followed, generations) and cancels the generations, so
   * a graceful shutdown does not wait on a page that holds a stream.
   */
  signal?: AbortSignal;
  /**
   * Metrics streams open at once (default {@linkcode MAX_METRIC_STREAMS});
   * one more is a 503 with one line. Each holds a descriptor, and every
   * open of a run's file looks at each descriptor of the server: a burst of
   * hundreds stalled it.
   */
  maxStreams?: number;
}

/**
 * The metrics streams a server holds open at once by default (`serve
 * --max-streams`): a browser holds at most 6 per host over HTTP/1.1, the
 * page at most 3 per comparison.
 *
 * @example
 * ```ts
 * import { MAX_METRIC_STREAMS } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * assertEquals(MAX_METRIC_STREAMS, 64);
 * ```
 */
export const MAX_METRIC_STREAMS = 64;

/** The metrics streams open per context. */
const openStreams = new WeakMap<DashboardContext, number>();

/** The client's signal, aborted also when the server shuts down. */
function andServer(ctx: DashboardContext, signal: AbortSignal): AbortSignal {
  return ctx.signal ? AbortSignal.any([signal, ctx.signal]) : signal;
}

/**
 * A JSON response.
 *
 * @param body Any JSON value.
 * @param status The status (default 200).
 * @returns The response.
 *
 * @example
 * ```ts
 * import { json } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * assertEquals(await json({ a: 1 }).json(), { a: 1 });
 * ```
 */
export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
    },
  });
}

/**
 * An error response: `{ error }` with the status.
 *
 * @param status The status.
 * @param message One line.
 * @returns The response.
 *
 * @example
 * ```ts
 * import { errorResponse } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * assertEquals((await errorResponse(404, "No run x").json()).error, "No run x");
 * ```
 */
export function errorResponse(status: number, message: string): Response {
  return json({ error: message }, status);
}

/**
 * The folder of run `id`, or the error to answer.
 *
 * @param ctx The context.
 * @param id The id from the query (`null` when absent).
 * @returns The folder.
 * @throws {HttpError} 400 for a missing or malformed id, 404 for no such run.
 *
 * @example
 * ```ts
 * import { GenerationService, HttpError, runDir } from "@d3pm/dashboard";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/sweep/run-1`, { recursive: true });
 * await Deno.writeTextFile(`${root}/sweep/run-1/config.json`, "{}");
 * const ctx = { root, generation: new GenerationService(() => Promise.reject(new Error("unused"))) };
 * assertEquals(await runDir(ctx, "sweep/run-1"), await Deno.realPath(`${root}/sweep/run-1`));
 * const status = (id: string | null) => runDir(ctx, id).catch((e: HttpError) => e.status);
 * assertEquals([await status(null), await status("../etc"), await status("sweep/run-2")], [400, 400, 404]);
 * await assertRejects(() => runDir(ctx, "sweep/run-2"), HttpError, 'No run "sweep/run-2" under the served folder');
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function runDir(
  ctx: DashboardContext,
  id: string | null,
): Promise<string> {
  if (id === null) {
    throw new HttpError(400, "Missing ?run=ID (ids are listed at /api/runs)");
  }
  try {
    const dir = await resolveRun(ctx.root, id);
    if (!dir) {
      throw new HttpError(
        404,
        `No run ${JSON.stringify(id)} under the served folder`,
      );
    }
    return dir;
  } catch (e) {
    if (e instanceof BadRunIdError) throw new HttpError(400, e.message);
    if (e instanceof RunLinksOutError) throw new HttpError(404, e.message);
    if (e instanceof RunUncheckedError) {
      throw new HttpError(e.transient ? 503 : 404, e.message);
    }
    throw e;
  }
}

/** What the runs page shows of one run. */
export interface RunSummary {
  /** Its id. */
  id: string;
  /** Its state. */
  status: RunOverview["status"];
  /** Why it is corrupt, or what holds a held one (its lock's path by id). */
  reason?: string;
  /**
   * The command that started it: a finished run's from `results.json`; a
   * running or held one's from its lock, which names its process's command
   * line (the script's folder left out: `deno …/examples/experiment.ts
   * --preset micro`). At most {@linkcode COMMAND_CHARS} characters.
   */
  command?: string;
  /** Preset, models, seeds, steps, model size. */
  config?: Record<string, unknown>;
  /** Mean test BPT and batches/s per contestant, once finished. */
  headline?: {
    model: string;
    label: string;
    bpt: number;
    bound: boolean;
    batchesPerSecond: number;
    seeds: number;
  }[];
  /** Models whose training finished (`seed/kind`). */
  trained?: string[];
  /** Last write, ISO time. */
  updated?: string;
}

const SUMMARY_KEYS = [
  "preset",
  "models",
  "seeds",
  "steps",
  "batchSize",
  "blockLength",
  "nLayer",
  "dModel",
  "nHead",
  "tokenizer",
  "vocabSize",
  "engine",
  "backend",
] as const;

/**
 * The summary of one run folder; a corrupt folder gives its reason.
 *
 * @param id The run's id.
 * @param dir Its folder.
 * @returns The summary.
 */
export async function summarizeRun(
  id: string,
  dir: string,
): Promise<RunSummary> {
  try {
    return summaryOf(id, dir, await inspectServed(dir));
  } catch (e) {
    // Moved or replaced as it was opened: this row says so, the list stands.
    if (!(e instanceof HttpError)) throw e;
    return { id, status: "corrupt", reason: e.message };
  }
}

/**
 * `inspectRun` of the run folder opened once ({@linkcode inRunFolder}): its
 * config, results and models all read from the folder that lay at `dir`,
 * never from an outside one swapped onto its path between two reads.
 */
async function inspectServed(
  dir: string,
): Promise<RunOverview & { lockCommand?: string }> {
  return await inRunFolder(dir, async (at) => {
    const o = await inspectRun(at);
    const live = o.status === "running" || o.status === "held";
    const lockCommand = live ? await lockCommandOf(dir, at) : undefined;
    return {
      ...o,
      ...(lockCommand ? { lockCommand } : {}),
      ...(o.reason ? { reason: o.reason.replaceAll(at, dir) } : {}),
      ...(o.state ? { state: { ...o.state, dir } } : {}),
    };
  });
}

/**
 * The longest command a run's summary carries, in characters; a longer one
 * is cut, ending in `…` (a lock or `results.json` may hold any length).
 *
 * @example
 * ```ts
 * import { COMMAND_CHARS } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * assertEquals(COMMAND_CHARS, 1000);
 * ```
 */
export const COMMAND_CHARS = 1000;

/** The most bytes of a `.lock` read for its command (a lock is one line). */
const LOCK_BYTES = 64 << 10;

/**
 * The command line a live run's lock names (`{"pid": …, "command": "deno
 * /abs/examples/experiment.ts --preset micro"}`), as the page shows it:
 * the script's folder left out. Undefined for a lock with none (an older
 * bare pid), not JSON, over {@linkcode LOCK_BYTES}, gone, or not a regular
 * file inside the run folder (a symlink out of it).
 */
async function lockCommandOf(
  dir: string,
  at: string,
): Promise<string | undefined> {
  const opened = await openInside(dir, `${at}/.lock`);
  if (!opened) return undefined;
  try {
    const text = await readOpenedText(opened, `${dir}/.lock`, {
      limit: LOCK_BYTES,
      what: "lock",
    });
    const command = JSON.parse(text)?.command;
    if (typeof command !== "string") return undefined;
    // `deno /home/me/d3pm/examples/experiment.ts …`: the server's paths
    // are not the page's to know. This checkout's root first (it may hold
    // a space), then any other checkout's up to the script's folder.
    return command.replaceAll(CHECKOUT, "…/").replace(
      /^(deno )\/\S*?([^/\s]+\/[^/\s]+\.ts)(?=\s|$)/,
      "$1…/$2",
    );
  } catch {
    return undefined;
  }
}

/** A command cut to {@linkcode COMMAND_CHARS}, one line. */
function shownCommand(command: string): string {
  // deno-lint-ignore no-control-regex -- the control characters are the point
  const line = command.replace(/[\x00-\x1f\x7f]+/g, " ");
  return line.length > COMMAND_CHARS
    ? `${line.slice(0, COMMAND_CHARS - 1)}…`
    : line;
}

function summaryOf(
  id: string,
  dir: string,
  o: RunOverview & { lockCommand?: string },
): RunSummary {
  const out: RunSummary = {
    id,
    status: o.status,
    ...(o.reason ? { reason: o.reason.replaceAll(dir, id) } : {}),
    ...(o.updated ? { updated: o.updated.toISOString() } : {}),
  };
  if (o.lockCommand) out.command = shownCommand(o.lockCommand);
  const state = o.state;
  if (!state) return out;
  const c = state.config as unknown as Record<string, unknown>;
  out.config = Object.fromEntries(
    SUMMARY_KEYS.filter((k) => k in c).map((k) => [k, c[k]]),
  );
  out.trained = state.models.filter((m) => m.trained).map((m) =>
    `${m.seed}/${m.kind}`
  );
  const r = state.results;
  if (r && Array.isArray(r.results)) {
    // A live run's lock names the process that holds it (a --resume of a
    // finished run, say): results.json names the one that wrote them.
    if (typeof r.command === "string" && !o.lockCommand) {
      out.command = shownCommand(r.command);
    }
    const kinds = [...new Set(r.results.map((m) => m.model))];
    out.headline = kinds.map((k) => {
      const ms = r.results.filter((m) => m.model === k);
      const mean = (f: (m: typeof ms[number]) => number) =>
        ms.reduce((a, m) => a + f(m), 0) / ms.length;
      return {
        model: k,
        label: labelShort(k),
        bpt: mean((m) => m.test?.bpt),
        bound: ms.some((m) => m.test?.bound),
        batchesPerSecond: mean((m) => m.generation?.speed?.batchesPerSecond),
        seeds: ms.length,
      };
    });
  }
  return out;
}

function labelShort(kind: string): string {
  return contestants().find((c) => c.kind === kind)?.label.short ?? kind;
}

/**
 * `GET /api/runs`: every run under the root with its state, configuration
 * summary and headline figures (`runs`), and the folders skipped for names
 * an id cannot carry, each with why (`skipped`: `{ folder, reason }`).
 *
 * @param ctx The context.
 * @returns The JSON list.
 *
 * @example A corrupt run is listed with its reason
 * ```ts
 * import { GenerationService, listRunsRoute } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/half`);
 * await Deno.writeTextFile(`${root}/half/config.json`, '{"models": "ar", "se');
 * const generation = new GenerationService(() => Promise.reject(new Error("none")));
 * const { runs } = await (await listRunsRoute({ root, generation })).json();
 * assertEquals([runs[0].id, runs[0].status], ["half", "corrupt"]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function listRunsRoute(ctx: DashboardContext): Promise<Response> {
  const skipped: SkippedFolder[] = [];
  const found = await findRuns(ctx.root, { skipped });
  const runs = await Promise.all(
    found.map((r) => {
      const reason = notServed(r);
      return reason === undefined
        ? summarizeRun(r.id, r.dir)
        : { id: r.id, status: "corrupt" as const, reason };
    }),
  );
  // Folders not listed for their names, each with why (not silently).
  return json({ runs, skipped });
}

/**
 * `GET /api/run?run=ID`: one run — its summary, full configuration, results
 * (once finished), the contestants' labels and which figures are bounds.
 *
 * @param ctx The context.
 * @param id The run id.
 * @returns The JSON.
 */
export async function runRoute(
  ctx: DashboardContext,
  id: string | null,
): Promise<Response> {
  const dir = await runDir(ctx, id);
  // One read of the folder opened once, for the summary and the rest.
  const o = await inspectServed(dir);
  const summary = summaryOf(id!, dir, o);
  // A corrupt run is its list row alone: what its checks reject (a torn
  // results.json beside a readable config) is not shown, nor its models.
  if (o.status === "corrupt") {
    return json({ ...summary, models: [], labels: {} });
  }
  const kinds = o.state ? o.state.config.models.split(",") : [];
  return json({
    ...summary,
    configFull: o.state?.config,
    results: o.state?.results,
    models: o.state?.models ?? [],
    labels: Object.fromEntries(kinds.map((k) => {
      const c = contestants().find((x) => x.kind === k);
      return [k, {
        short: c?.label.short ?? k,
        title: c?.label.title ?? k,
        validation: c?.validation.name ?? "validation",
        network: c?.network,
        unmasking: c?.unmasking ? true : false,
      }];
    })),
  });
}

/**
 * The most bytes of a run's `report.md` or `samples.txt` an export holds,
 * and of any of {@linkcode RUN_FILES} the file route serves (a larger one
 * is refused with 413, naming it and this limit).
 *
 * @example
 * ```ts
 * import { EXPORT_TEXT_LIMIT } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * assertEquals(EXPORT_TEXT_LIMIT, 16 * 2 ** 20); // 16 MiB
 * ```
 */
export const EXPORT_TEXT_LIMIT = 16 << 20;

/** The files of a run folder a page may read, and their types. */
export const RUN_FILES: Readonly<Record<string, string>> = {
  "report.md": "text/markdown; charset=utf-8",
  "samples.txt": "text/plain; charset=utf-8",
  "results.json": "application/json; charset=utf-8",
  "config.json": "application/json; charset=utf-8",
  "loss.svg": "image/svg+xml",
  "speed_quality.svg": "image/svg+xml",
};

/**
 * `GET /api/run/file?run=ID&name=NAME`: one of {@linkcode RUN_FILES}, when it
 * exists and lies inside the run (a symlink out of it is not found) and the
 * run is not corrupt (404 with the reason, as every route that reads a run).
 *
 * @param ctx The context.
 * @param id The run id.
 * @param name The file's name.
 * @returns The file.
 */
export async function fileRoute(
  ctx: DashboardContext,
  id: string | null,
  name: string | null,
): Promise<Response> {
  const dir = await runDir(ctx, id);
  if (name === null || !Object.hasOwn(RUN_FILES, name)) {
    throw new HttpError(
      400,
      `name must be one of ${Object.keys(RUN_FILES).join(", ")}`,
    );
  }
  // A corrupt run's report.md (figures its own check rejects) was served.
  await inRunFolder(dir, servedRun);
  // Opened, then checked: a check of the path and an open of it after was
  // a race a swapped-in link out of the run could win.
  const opened = await openInside(dir, `${dir}/${name}`);
  if (!opened) throw new HttpError(404, `Run ${id} has no ${name} (yet)`);
  const { file } = opened;
  // Capped as the export's copy is: a file of any size was streamed whole
  // to the page, which holds it as one string.
  const size = opened.info.size;
  if (size > EXPORT_TEXT_LIMIT) {
    file.close();
    throw new HttpError(
      413,
      `Cannot serve ${name} of run ${id}: it is larger than the ${
        formatBytes(EXPORT_TEXT_LIMIT)
      } the dashboard serves of a run's file; shorten or remove it`,
    );
  }
  // The bytes there when it was checked: a file still growing is cut there.
  return new Response(firstBytes(file.readable, size), {
    headers: {
      "content-type": RUN_FILES[name],
      "content-length": String(size),
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      ...(name.endsWith(".svg")
        ? {
          "content-security-policy":
            "default-src 'none'; style-src 'unsafe-inline'",
        }
        : {}),
    },
  });
}

/**
 * `GET /api/run/metrics?run=ID[&from=EVENT_ID]`: the lines of
 * `metrics.jsonl` as server-sent events, then each line appended while the
 * client listens. An event's `id` is `DEV-INO:OFFSET`, the log's identity
 * (device and inode) and the byte offset after the line, so a reconnecting
 * `EventSource` sends `Last-Event-ID` and gets only what is new — or, when
 * the log was replaced meanwhile (a `--force` rerun, a log moved over it),
 * `reset` first and the new log from its start. A plain byte offset is
 * taken too (as `from`, or an id from before identities), as an offset of
 * whatever log is there. Events: `metric` (one JSON record), `caught-up`
 * (the file's end reached once), `reset` (the file was replaced or
 * shortened: drop what you have), `gone` (the last: the run's folder was
 * deleted or moved; `{"reason": "…"}`, one line), `error` (the last: the
 * log became a link out of the run or something not a file; one line).
 * Every open of the log, the first and each after a replacement, goes
 * through {@linkcode openInside}. At most `ctx.maxStreams` are open at
 * once (default {@linkcode MAX_METRIC_STREAMS}); one more is a 503.
 *
 * @param ctx The context.
 * @param id The run id.
 * @param from Where to start (`Last-Event-ID`, else the query's `from`).
 * @param client The client's signal (the server's, `ctx.signal`, ends the stream too).
 * @returns The event stream.
 */
export async function metricsRoute(
  ctx: DashboardContext,
  id: string | null,
  from: string | null,
  client: AbortSignal,
): Promise<Response> {
  const most = ctx.maxStreams ?? MAX_METRIC_STREAMS;
  const open = openStreams.get(ctx) ?? 0;
  if (open >= most) {
    throw new HttpError(
      503,
      `The server follows ${most} metrics streams already (the bound, serve --max-streams): close a tab or try again later`,
    );
  }
  openStreams.set(ctx, open + 1);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    openStreams.set(ctx, (openStreams.get(ctx) ?? 1) - 1);
  };
  try {
    return await followedMetrics(ctx, id, from, client, release);
  } catch (e) {
    release();
    throw e;
  }
}

/** {@linkcode metricsRoute} past its bound: `release` once the stream is over. */
async function followedMetrics(
  ctx: DashboardContext,
  id: string | null,
  from: string | null,
  client: AbortSignal,
  release: () => void,
): Promise<Response> {
  const signal = andServer(ctx, client);
  const dir = await runDir(ctx, id);
  const at = parseEventId(from);
  const path = `${dir}/metrics.jsonl`;
  // A metrics log that is a symlink out of the run is never followed: 404
  // here, and an error event once it becomes one while followed.
  if (await lstatExists(path) && !(await insideFile(dir, path))) {
    throw new HttpError(404, `Run ${id} has no metrics log inside it`);
  }
  const open = async (p: string): Promise<Deno.FsFile | undefined> => {
    // Three tries: a log renamed over the old one while it was checked
    // (a rerun's) is opened on the next, a link out on none.
    for (let i = 0; i < 3; i++) {
      const opened = await openInside(dir, p);
      if (opened) return opened.file;
      if (!(await lstatExists(p))) return undefined; // not written (yet)
    }
    throw new Error(
      `Run ${id}'s metrics.jsonl is no longer a file inside the run (a link out of it?): not followed`,
    );
  };
  let current: string | undefined; // the identity of the log read
  const onOpen = (identity: string) => current = identity;
  // An id carries the check of the bytes before its offset too: a log
  // replaced by one that got the same inode, or rewritten in place, is
  // told from the one the id was read in.
  // With no log read (none there yet, or it went away) the id keeps the
  // client's identity and check: a log written later is told from it.
  const idOf = (end: number, check?: string) => {
    const identity = current ?? at.identity;
    return identity
      ? `${identity}:${end}${check === undefined ? "" : `:${check}`}`
      : String(end);
  };
  const stop = new AbortController();
  const all = AbortSignal.any([signal, stop.signal]);
  async function* events(): AsyncGenerator<ServerEvent> {
    const once = followLines(path, {
      from: at.offset,
      identity: at.identity,
      check: at.check,
      checks: true,
      once: true,
      open,
      onOpen,
    });
    let end = at.offset;
    let check = at.check;
    for await (const f of once) {
      const e = toEvent(f, idOf);
      if ("end" in f) end = f.end;
      if ("check" in f) check = f.check;
      if ("reset" in f) [end, check] = [0, tailCheck(new Uint8Array())];
      if (e) yield e;
    }
    yield {
      event: "caught-up",
      data: JSON.stringify({ end }),
      id: idOf(end, check),
    };
    for await (
      const f of followLines(path, {
        from: end,
        check,
        checks: true,
        identity: current ?? at.identity,
        signal: all,
        pollMs: ctx.pollMs,
        folder: dir,
        open,
        onOpen,
      })
    ) {
      if ("gone" in f) {
        // The last event: the stream ends here and holds nothing more (a
        // run not written yet, its folder there, is waited for instead).
        yield {
          event: "gone",
          data: JSON.stringify({
            reason:
              `Run ${id}'s folder is gone (deleted or moved): nothing more to follow`,
          }),
        };
        return;
      }
      const e = toEvent(f, idOf);
      if (e) yield e;
    }
  }
  return eventResponse(events(), {
    signal,
    keepAliveMs: ctx.keepAliveMs,
    onClose: () => {
      stop.abort();
      release();
    },
  });
}

/**
 * Where a metrics stream starts: an event id `DEV-INO:OFFSET`, or a plain
 * byte offset (the `from` of old, an id from before identities).
 *
 * @throws {HttpError} 400 for anything else.
 */
function parseEventId(
  from: string | null,
): { offset: number; identity?: string; check?: string } {
  if (from === null || from === "") return { offset: 0 };
  const m = /^(?:(\d{1,20}-\d{1,20}):)?(\d{1,15})(?::([0-9a-f]{8}))?$/
    .exec(from);
  if (!m || (m[3] && !m[1])) {
    throw new HttpError(
      400,
      `from must be a byte offset (OFFSET, a whole number) or an event id (DEV-INO:OFFSET or DEV-INO:OFFSET:CHECK, CHECK 8 hex digits), got ${
        JSON.stringify(from.slice(0, 40))
      }`,
    );
  }
  return {
    offset: Number(m[2]),
    ...(m[1] ? { identity: m[1] } : {}),
    ...(m[3] ? { check: m[3] } : {}),
  };
}

async function lstatExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

function toEvent(
  f: Followed,
  idOf: (end: number, check?: string) => string,
): ServerEvent | undefined {
  if ("gone" in f) return undefined; // not from a follow without `folder`
  if ("reset" in f) {
    return {
      event: "reset",
      data: "{}",
      id: idOf(0, tailCheck(new Uint8Array())),
    };
  }
  if ("skipped" in f) return undefined; // over the line limit: not forwarded
  // Only JSON objects go out: a damaged line is skipped, not forwarded.
  try {
    const v = JSON.parse(f.line);
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      return undefined;
    }
  } catch {
    return undefined;
  }
  return { event: "metric", data: f.line, id: idOf(f.end, f.check) };
}

/**
 * Parse a seed and contestant of a run, checked against its models.
 *
 * @param dir The run's folder.
 * @param seed The seed (query text).
 * @param kind The contestant.
 * @returns The seed and kind of a trained model of the run.
 * @throws {HttpError} 400 or 404.
 */
async function trainedModel(
  dir: string,
  seed: string | null,
  kind: string | null,
): Promise<{ seed: number; kind: string }> {
  if (seed === null || !/^\d{1,3}$/.test(seed)) {
    throw new HttpError(400, "seed must be a whole number in [0, 999]");
  }
  if (kind === null || !/^[a-z][a-z0-9-]{0,39}$/.test(kind)) {
    throw new HttpError(400, "model must be a contestant's kind, e.g. d3pm");
  }
  // A corrupt run (a torn config.json, a results.json of another run) was
  // answered "has no model d3pm of seed 0", whatever it trained.
  const state = await inRunFolder(dir, servedRun);
  const m = state.models.find((x) =>
    x.seed === Number(seed) && x.kind === kind
  );
  if (!m) {
    throw new HttpError(404, `The run has no model ${kind} of seed ${seed}`);
  }
  if (!m.trained) {
    throw new HttpError(
      404,
      `The ${kind} model of seed ${seed} has not finished training`,
    );
  }
  return { seed: Number(seed), kind };
}

/** A stream of at most `n` bytes of `source` (the rest cancelled). */
function firstBytes(
  source: ReadableStream<Uint8Array>,
  n: number,
): ReadableStream<Uint8Array> {
  let left = n;
  return source.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        const part = chunk.subarray(0, left);
        left -= part.length;
        if (part.length > 0) controller.enqueue(part);
        if (left === 0) controller.terminate();
      },
      start(controller) {
        if (left === 0) controller.terminate();
      },
    }),
  );
}

/**
 * `GET /api/run/model?run=ID&seed=S&model=KIND&part=config|process|weights`:
 * a trained model's configuration, process description or safetensors (the
 * browser engine loads these).
 *
 * @param ctx The context.
 * @param q The query.
 * @returns The file.
 */
export async function modelRoute(
  ctx: DashboardContext,
  q: URLSearchParams,
): Promise<Response> {
  const dir = await runDir(ctx, q.get("run"));
  const { seed, kind } = await trainedModel(dir, q.get("seed"), q.get("model"));
  const part = q.get("part");
  const files: Record<string, [string, string]> = {
    config: ["config.json", "application/json"],
    process: ["process.json", "application/json"],
    weights: ["model.safetensors", "application/octet-stream"],
  };
  if (part === null || !Object.hasOwn(files, part)) {
    throw new HttpError(400, "part must be config, process or weights");
  }
  const folder = new RunFolder(dir);
  const opened = await openInside(
    dir,
    `${folder.modelDir(seed, kind)}/${files[part][0]}`,
  );
  if (!opened) {
    throw new HttpError(
      404,
      `The ${kind} model of seed ${seed} has no ${files[part][0]}`,
    );
  }
  const size = opened.info.size;
  // The bytes there when it was opened (a file still growing is cut there).
  return new Response(firstBytes(opened.file.readable, size), {
    headers: {
      "content-type": files[part][1],
      "content-length": String(size),
      "cache-control": "no-store",
    },
  });
}

const VOCABS = new Map<
  string,
  Promise<{ pieces: string[]; special: Record<string, number> }>
>();

/**
 * The token pieces of a run's tokenizer (each id decoded alone; the page
 * shows tokens with them), cached per run folder.
 *
 * @param dir The run's folder.
 * @returns The pieces and the special ids.
 */
async function vocabOf(
  dir: string,
): Promise<{ pieces: string[]; special: Record<string, number> }> {
  // Keyed by the files too: a run retrained in its folder gets its new tokenizer's pieces.
  const folder = new RunFolder(dir);
  const key = `${dir}\u0000${await filesStamp([
    folder.configPath,
    folder.tokenizerPath,
    folder.dataPath,
  ])}`;
  let v = VOCABS.get(key);
  if (!v) {
    v = inRunFolder(dir, async (at) => {
      const state = await servedRun(at);
      const tok = await openTokenizer(state.config, new RunFolder(at));
      const pieces: string[] = [];
      for (let i = 0; i < tok.vocabSize; i++) {
        try {
          pieces.push(tok.decode([i]));
        } catch {
          pieces.push("");
        }
      }
      return { pieces, special: { ...tok.special } as Record<string, number> };
    });
    VOCABS.set(key, v);
    v.catch(() => VOCABS.delete(key));
    while (VOCABS.size > 8) VOCABS.delete(VOCABS.keys().next().value!);
  }
  return await v;
}

/**
 * `GET /api/run/vocab?run=ID`: every id's text and the special ids. A
 * tokenizer that cannot be read is a 503 in one line, called damaged for a
 * file there that does not parse (a `data.json`), as a generation's model.
 *
 * @param ctx The context.
 * @param id The run id.
 * @returns The JSON.
 */
export async function vocabRoute(
  ctx: DashboardContext,
  id: string | null,
): Promise<Response> {
  const dir = await runDir(ctx, id);
  // A damaged file (a data.json that does not parse) answered as the
  // generation answers it: a 503 in one line, not a 500.
  const vocab = await vocabOf(dir).catch((e) => {
    throw damaged(e, `Cannot read the vocabulary of run ${id}`);
  });
  return json(vocab);
}

/**
 * `GET /api/run/tokenize?run=ID&text=TEXT`: the ids of a text under the
 * run's tokenizer (the browser engine's prompts).
 *
 * @param ctx The context.
 * @param id The run id.
 * @param text The text.
 * @returns `{ ids }`.
 */
export async function tokenizeRoute(
  ctx: DashboardContext,
  id: string | null,
  text: string | null,
): Promise<Response> {
  const dir = await runDir(ctx, id);
  if (text === null) throw new HttpError(400, "Missing ?text=");
  if (text.length > ctx.generation.limits.maxPromptChars) {
    throw new HttpError(
      400,
      `text is ${text.length} characters; at most ${ctx.generation.limits.maxPromptChars}`,
    );
  }
  // "The run is corrupt" once, without saying why; a damaged file (a
  // data.json that does not parse) a 503 in one line, as for the vocabulary.
  const ids = await inRunFolder(dir, async (at) => {
    const state = await servedRun(at);
    const tok = await openTokenizer(state.config, new RunFolder(at));
    return Array.from(tok.encode(text));
  }).catch((e) => {
    throw damaged(e, `Cannot read the tokenizer of run ${id}`);
  });
  return json({ ids });
}

/**
 * The state of the run in `dir`, or a 404 saying why it is not served: one
 * wording, with the reason, for every route that needs the run read (a
 * model, the vocabulary, tokenizing); these once said "not served: …",
 * "corrupt: …" and "corrupt" with no reason. A run `inspectRun` calls
 * corrupt is refused even when it could read the rest (a `results.json`
 * that is not JSON): the list shows it corrupt with its reason and links
 * no page of it, so no route serves a part of it either (the metrics stream
 * aside: it follows a folder before it has a config.json).
 */
async function servedRun(
  dir: string,
): Promise<NonNullable<RunOverview["state"]>> {
  const o = await inspectRun(dir);
  if (o.state === undefined || o.status === "corrupt") {
    throw new HttpError(
      404,
      `The run is not served: ${
        o.reason ?? "its files cannot be read as a run"
      }`,
    );
  }
  return o.state;
}

/**
 * `GET /api/run/unmasking?run=ID&seed=S&model=KIND`: how a model generates:
 * its network, its mask id and `T` (denoisers; block diffusion adds
 * `blockSize`, and its `T` bounds the steps of each block), its start token (causal),
 * its context — read from `process.json`, no weights loaded.
 *
 * @param ctx The context.
 * @param q The query.
 * @returns The JSON.
 */
export async function unmaskingRoute(
  ctx: DashboardContext,
  q: URLSearchParams,
): Promise<Response> {
  const dir = await runDir(ctx, q.get("run"));
  const { seed, kind } = await trainedModel(dir, q.get("seed"), q.get("model"));
  const folder = new RunFolder(dir);
  const o = await inspectServed(dir);
  const c = contestantOf(kind);
  // A regular file inside the run, of at most 1 MiB: one linked to
  // /dev/zero was read whole before its size was checked.
  const opened = await openInside(dir, folder.processPath(seed, kind));
  if (!opened) {
    throw new HttpError(
      404,
      `The ${kind} model of seed ${seed} has no process.json inside the run`,
    );
  }
  // Answered as a generation of the model answers it: a process.json there
  // but not JSON or not an object is damaged, one no process restores a 503
  // in its own words (they were a 500 "Internal error").
  const { spec, process } = await openedProcess(
    opened,
    folder.processPath(seed, kind),
    c,
  ).catch((e) => {
    throw damaged(e, `Cannot load model ${kind} of seed ${seed}`);
  });
  return json({
    kind,
    network: c.network,
    length: o.state!.config.blockLength,
    timeConditioned: o.state!.config.timeConditioning === true &&
      c.network === "bidirectional",
    spec,
    // Why the browser's WebGPU engine cannot generate it (the page then
    // offers the server only).
    ...(c.tfjsOnly ? { tfjsOnly: c.tfjsOnly } : processStagger(process) > 0
      ? {
        tfjsOnly:
          "its masking is staggered, and the staggered sampler reads a synchronous forward pass, which the browser's WebGPU engine lacks",
      }
      : browserRuns(c, spec)
      ? {}
      : {
        tfjsOnly:
          `the page's bundle holds the AR, D3PM and MLM samplers only, not the ${kind} contestant's own generator`,
      }),
    ...(c.unmasking
      ? {
        maskId: c.unmasking.maskId(process),
        T: c.unmasking.steps(process),
        strategy: c.unmasking.strategy,
      }
      : c.blockUnmasking
      ? {
        maskId: c.blockUnmasking.maskId(process),
        T: c.blockUnmasking.steps(process),
        blockSize: c.blockUnmasking.blockSize(process),
      }
      : {}),
  });
}

/**
 * Whether the page's own engine (dashboard/web/browser_engine.ts, which
 * bundles no contestant) can generate a model: it rebuilds the AR process
 * (causal) or a masked diffusion or masked language model (unmasking) from
 * `process.json`, and runs no other contestant's generator.
 */
function browserRuns(c: Contestant, spec: unknown): boolean {
  const kind = (spec as { kind?: unknown } | null)?.kind;
  return c.network === "causal"
    ? kind === "autoregressive"
    : c.unmasking !== undefined &&
      (kind === "masked-diffusion" || kind === "masked-language-model");
}

/**
 * The process a model's `process.json` (opened by {@linkcode openInside} at
 * `path`) describes, and its description without the weights record the
 * run writes beside it (no process's restore, here or in the browser,
 * accepts that).
 *
 * @throws {DamagedFileError} For a file not JSON or not a JSON object
 *   ({@linkcode parseJsonObject}).
 * @throws {BoundedReadError} For a file over 1 MiB, as the loader's read
 *   refuses it (a generation of the model is then a 503 in those words).
 * @throws {RangeError} From the contestant's restore, for an object that
 *   is not its process.
 */
async function openedProcess(
  opened: InsideFile,
  path: string,
  c: Contestant,
): Promise<
  { spec: Record<string, unknown>; process: ReturnType<Contestant["restore"]> }
> {
  const what = "process description";
  const text = await readOpenedText(opened, path, { limit: 1 << 20, what });
  const spec = processSpec(parseJsonObject(text, path, what));
  return { spec, process: c.restore(spec) };
}

/**
 * The text of a file {@linkcode openInside} opened at `path`, read from its
 * handle (never by its path again), at most `limit` bytes; closes it.
 *
 * @throws {BoundedReadError} Naming `path`, for a larger file: the words of
 *   `readTextBounded`, which the model's loader reads it with.
 */
async function readOpenedText(
  opened: InsideFile,
  path: string,
  { limit, what }: { limit: number; what: string },
): Promise<string> {
  using file = opened.file;
  if (opened.info.size > limit) {
    throw new BoundedReadError(
      `Cannot read ${path}: it is larger than the ${
        formatBytes(limit)
      } a ${what} may be`,
    );
  }
  return new TextDecoder().decode(await readAt(file, 0, opened.info.size));
}

/**
 * `GET /api/options`: the experiment's option table, with each option's
 * help (the run page explains a configuration with it).
 *
 * @returns The JSON.
 *
 * @example
 * ```ts
 * import { optionsRoute } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * const options = await optionsRoute().json();
 * assertEquals(typeof options.steps.help, "string");
 * ```
 */
export function optionsRoute(): Response {
  return json(
    Object.fromEntries(
      Object.entries(EXPERIMENT_OPTIONS).map((
        [k, v],
      ) => [k, { help: v.help, kind: v.kind }]),
    ),
  );
}

/**
 * `POST /api/generate`: run a generation on the server and stream it as
 * server-sent events: `start` (the row before any step), then `frame` per
 * step, then `done`; `error` with one line if it fails midway. A full queue
 * answers 429 before the stream starts.
 *
 * @param ctx The context.
 * @param req The request (JSON body, see `parseGenerationInput`).
 * @returns The event stream.
 */
export async function generateRoute(
  ctx: DashboardContext,
  req: Request,
): Promise<Response> {
  // The media type alone, without parameters (`; charset=utf-8`).
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim()
    .toLowerCase();
  if (type !== "application/json") {
    throw new HttpError(415, "Send the request as application/json");
  }
  const text = await readLimited(req, 256 << 10, ctx.bodyTimeoutMs ?? 10_000);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, "Bad generation request: the body is not JSON");
  }
  const input = parseGenerationInput(body, ctx.generation.limits);
  const dir = await runDir(ctx, input.run);
  await trainedModel(dir, String(input.seed), input.model);
  // The client gone: its connection closed (the request's signal) or its
  // stream cancelled (the response's body), whichever comes first.
  const gone = new AbortController();
  const signal = andServer(ctx, req.signal);
  const stream = await ctx.generation.open(
    dir,
    input,
    AbortSignal.any([signal, gone.signal]),
  );
  // The checks that need the model (steps within its T, a row that fits its
  // context, a sampler it takes) run before its first event: waiting for it
  // answers them with their status and one line, not inside a 200 stream.
  const first = await stream.next();
  if (first.done) {
    throw new HttpError(503, "The generation was cancelled before it started");
  }
  async function* all() {
    try {
      yield first.value;
      yield* stream;
    } finally {
      // A stream cancelled after its first event still stops the generation
      // and frees its places (the model's turn, the bound over all models).
      await stream.return(undefined);
    }
  }
  async function* events(): AsyncGenerator<ServerEvent> {
    let last: unknown;
    try {
      for await (const e of all()) {
        if ("start" in e) {
          yield { event: "start", data: JSON.stringify(e.start) };
        } else {
          last = e.frame;
          yield { event: "frame", data: JSON.stringify(e.frame) };
        }
      }
      yield { event: "done", data: JSON.stringify(last ?? {}) };
    } catch (e) {
      yield {
        event: "error",
        data: JSON.stringify({ error: (e as Error).message.split("\n")[0] }),
      };
    }
  }
  return eventResponse(events(), {
    signal,
    onClose: () => gone.abort("the client left"),
  });
}

async function readLimited(
  req: Request,
  limit: number,
  timeoutMs: number,
): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > limit) {
    throw new HttpError(413, `The body is over ${limit >> 10} KiB`);
  }
  if (!req.body) return "";
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  // A client that never finishes its body was waited for without end.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // Rejected first: the cancel ends the pending read as if the body were whole.
      reject(
        new HttpError(
          408,
          `The request body did not arrive within ${timeoutMs / 1000} s`,
        ),
      );
      reader.cancel().catch(() => {});
    }, timeoutMs);
  });
  try {
    return await readAll();
  } finally {
    clearTimeout(timer);
  }
  async function readAll(): Promise<string> {
    while (true) {
      const { done, value } = await Promise.race([reader.read(), late]);
      if (done) break;
      n += value.length;
      if (n > limit) {
        await reader.cancel();
        throw new HttpError(413, `The body is over ${limit >> 10} KiB`);
      }
      parts.push(value);
    }
    const all = new Uint8Array(n);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(all);
    } catch {
      throw new HttpError(400, "The body is not UTF-8");
    }
  }
}
