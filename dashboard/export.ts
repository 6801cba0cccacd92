/**
 * A static export of the dashboard: the page, its script, and the data of
 * chosen runs in one folder that opens from disk (file://) with no server —
 * the run pages, curves, charts, report tables and samples as they were at
 * export time. (The playground needs the server.)
 *
 * @module
 */
import { formatBytes, readAt, readTextBounded } from "@d3pm/core";
import { followLines } from "./follow.ts";
import { GenerationService, HttpError } from "./generation.ts";
import { pageFiles } from "./page.ts";
import {
  type DashboardContext,
  EXPORT_TEXT_LIMIT,
  listRunsRoute,
  optionsRoute,
  runRoute,
} from "./routes.ts";
import {
  checkRunsRoot,
  findRuns,
  type InsideFile,
  notServed,
  openInside,
} from "./run_ids.ts";

/** Options of {@linkcode exportDashboard}. */
export interface ExportOptions {
  /** Run ids to export (default: every run under the root). */
  runs?: readonly string[];
  /** Progress lines. */
  log?: (line: string) => void;
  /**
   * The most bytes of a run's metrics log an export holds (default 64 MiB):
   * a longer log keeps every validation and evaluation record and every
   * k-th training record of each model, and says so.
   */
  maxMetricsBytes?: number;
}

// The export holds a run's report.md and samples.txt up to the limit the
// file route serves them to: one cap, defined beside that route.
export { EXPORT_TEXT_LIMIT } from "./routes.ts";

/**
 * A run's `report.md` or `samples.txt`, bounded (a 400 MB file took 2 GB of
 * memory and failed with "Invalid string length", naming nothing).
 */
async function readRunText(
  opened: InsideFile,
  name: string,
): Promise<string> {
  // Read from the handle openInside checked, never by its path again.
  using file = opened.file;
  if (opened.info.size > EXPORT_TEXT_LIMIT) {
    throw new HttpError(
      413,
      `Cannot read ${opened.real}: it is larger than the ${
        formatBytes(EXPORT_TEXT_LIMIT)
      } a run's ${name} in an export may be: shorten or remove it, or leave its run out with --only`,
    );
  }
  return new TextDecoder().decode(await readAt(file, 0, opened.info.size));
}

/**
 * The lines of a metrics log for an export, streamed (a line at a time,
 * never the file whole): every line when the log fits in `limit` bytes;
 * otherwise every line but training-loss records, and every k-th of those
 * per model and seed (k = the log's size over `limit`, rounded up), with
 * a note saying so.
 */
async function exportedMetrics(
  dir: string,
  limit: number,
): Promise<{ lines: string[]; note: string } | undefined> {
  const path = `${dir}/metrics.jsonl`;
  const opened = await openInside(dir, path);
  if (!opened) return undefined;
  const size = opened.info.size;
  // Its lines from the handle checked (the first open), not the path again.
  let first: Deno.FsFile | undefined = opened.file;
  const open = (p: string) => {
    const f = first;
    first = undefined;
    return f ? Promise.resolve(f) : openInside(dir, p).then((o) => o?.file);
  };
  const every = Math.max(1, Math.ceil(size / limit));
  const lines: string[] = [];
  const seen = new Map<string, number>();
  let training = 0;
  let read = 0; // lines of the log read, blank ones too
  try {
    for await (const f of followLines(path, { once: true, open })) {
      if ("line" in f) read++;
      if (!("line" in f) || f.line.trim() === "") continue;
      if (every > 1) {
        let r: Record<string, unknown> | undefined;
        try {
          r = JSON.parse(f.line);
        } catch { /* kept as it is: the page skips it */ }
        if (
          r && typeof r === "object" && typeof r.loss === "number" &&
          !("valid" in r)
        ) {
          training++;
          const key = `${r.model}/${r.seed}`;
          const n = seen.get(key) ?? 0;
          seen.set(key, n + 1);
          if (n % every !== 0) continue;
        }
      }
      lines.push(f.line);
    }
  } finally {
    // Not handed to followLines (the log gone from its path when it looked):
    // closed here, not left open.
    first?.close();
  }
  // Nothing read of a log that held lines when it was opened: removed, or
  // replaced by another file, before it was read (the export would say
  // "0 metrics records" as of a run that logged none).
  const gone = read === 0 && size > 0 &&
    await Deno.stat(path).then(
      (now) => now.dev !== opened.info.dev || now.ino !== opened.info.ino,
      () => true,
    );
  const note = gone
    ? `; its metrics.jsonl (${
      formatBytes(size)
    } when opened) was removed or replaced before it was read: none of its records are in the export`
    : every > 1
    ? `; metrics.jsonl is ${formatBytes(size)}, over the ${
      formatBytes(limit)
    } an export holds: 1 in ${every} of its ${training} training-loss records, and all others`
    : "";
  return { lines, note };
}

/**
 * Write the dashboard of runs under `root` into `out`.
 *
 * @param root The folder of run folders.
 * @param out The folder to write: new, empty, or an earlier export (whose
 *   files are replaced); a folder holding anything else is refused.
 * @param options Which runs, and where progress goes.
 * @returns The ids exported.
 * @throws {HttpError} When `root` is not a folder, `out` holds other files,
 *   or a chosen run does not exist.
 *
 * @example A root without runs: the page alone; a run that is not there is named
 * ```ts
 * import { exportDashboard, HttpError } from "@d3pm/dashboard";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const root = await Deno.makeTempDir(), out = await Deno.makeTempDir();
 * assertEquals(await exportDashboard(root, out), []);
 * assertEquals([...Deno.readDirSync(out)].map((e) => e.name).sort(), ["app.css", "app.js", "data.js", "index.html"]);
 * await assertRejects(
 *   () => exportDashboard(root, out, { runs: ["tiny-main"] }),
 *   HttpError,
 *   `No run "tiny-main" under ${root} (there: none)`,
 * );
 * await Deno.remove(root, { recursive: true });
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function exportDashboard(
  root: string,
  out: string,
  options: ExportOptions = {},
): Promise<string[]> {
  await checkExportFolder(root, out);
  const limits = { metrics: options.maxMetricsBytes ?? 64 << 20 };
  const all = await findRuns(root);
  // A run with a link out of it, or whose links could not all be checked,
  // is not exported (nothing of it is read); named when chosen.
  const ids = options.runs ??
    all.filter((r) => notServed(r) === undefined).map((r) => r.id);
  for (const r of all) {
    const reason = notServed(r);
    if (reason !== undefined && !ids.includes(r.id)) {
      options.log?.(`skipped ${reason}`);
    }
  }
  for (const id of ids) {
    if (!all.some((r) => r.id === id)) {
      throw new HttpError(
        404,
        `No run ${JSON.stringify(id)} under ${root} (there: ${
          all.map((r) => r.id).join(", ") || "none"
        })`,
      );
    }
  }
  const ctx: DashboardContext = {
    root,
    generation: new GenerationService(() =>
      Promise.reject(new Error("no generation in an export"))
    ),
  };
  const runsList = await (await listRunsRoute(ctx)).json() as {
    runs: { id: string }[];
  };
  runsList.runs = runsList.runs.filter((r) => ids.includes(r.id));
  const data = {
    runs: runsList,
    options: await optionsRoute().json(),
    run: {} as Record<string, unknown>,
  };
  for (const id of ids) {
    const dir = all.find((r) => r.id === id)!.dir;
    const info = await (await runRoute(ctx, id)).json();
    if (info.status === "corrupt") {
      // As the served page: listed with its reason, nothing of it shown (a
      // report.md beside "results.json … of another run" was shipped).
      data.run[id] = { info, metrics: [], files: {} };
      options.log?.(
        `exported ${id} as corrupt, without its files (${info.reason})`,
      );
      continue;
    }
    const files: Record<string, string> = {};
    for (const name of ["report.md", "samples.txt"]) {
      const opened = await openInside(dir, `${dir}/${name}`);
      if (opened) files[name] = await readRunText(opened, name);
    }
    const kept = await exportedMetrics(dir, limits.metrics) ??
      { lines: [], note: "" };
    data.run[id] = { info, metrics: kept.lines, files };
    options.log?.(
      `exported ${id} (${kept.lines.length} metrics records${kept.note})`,
    );
  }
  const page = await pageFiles({ log: options.log });
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(
    `${out}/index.html`,
    page.html.replace("<!--DATA-->", '<script src="data.js"></script>'),
  );
  await Deno.writeTextFile(`${out}/app.js`, page.js);
  await Deno.writeTextFile(`${out}/app.css`, page.css);
  await Deno.writeTextFile(
    `${out}/data.js`,
    `window.__D3PM_STATIC__ = ${JSON.stringify(data)};\n`,
  );
  return [...ids];
}

/**
 * The files an export writes: all a folder may hold for an export to replace it.
 *
 * @example
 * ```ts
 * import { EXPORT_FILES } from "@d3pm/dashboard";
 * import { assert } from "@std/assert";
 * assert(EXPORT_FILES.includes("index.html") && EXPORT_FILES.includes("data.js"));
 * ```
 */
export const EXPORT_FILES: readonly string[] = [
  "index.html",
  "app.js",
  "app.css",
  "data.js",
];

/**
 * Refuse an export whose root is not a folder, or whose `out` is a file or
 * a folder holding anything but an earlier export's files: an export
 * replaces those files, and must never overwrite a user's own
 * (`--export ~/site` over a hand-written `index.html`).
 */
async function checkExportFolder(root: string, out: string): Promise<void> {
  const kind = async (path: string) =>
    await Deno.stat(path).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    });
  try {
    await checkRunsRoot(root);
  } catch (e) {
    throw new HttpError(404, (e as Error).message);
  }
  const o = await kind(out);
  if (o === undefined) return;
  if (!o.isDirectory) {
    throw new HttpError(409, `--export ${out} is a file, not a folder`);
  }
  const others = [...Deno.readDirSync(out)]
    .filter((e) => !(e.isFile && EXPORT_FILES.includes(e.name)))
    .map((e) => e.name).sort();
  if (others.length > 0) {
    throw new HttpError(
      409,
      `--export ${out} holds files that are not an export's (${
        others.slice(0, 3).join(", ")
      }${
        others.length > 3 ? ", …" : ""
      }): an export needs a new or empty folder, or an earlier export to replace; choose another --export`,
    );
  }
  // An earlier export holds index.html with its marker; another index.html is the user's.
  if (EXPORT_FILES.some((f) => o && existsSync(`${out}/${f}`))) {
    // An export's index.html is a few hundred bytes: a larger one (or one
    // that cannot be read) is not an export's, and is not read whole.
    const html = await readTextBounded(`${out}/index.html`, {
      limit: 1 << 20,
      what: "exported page",
    }).catch(() => "");
    if (!html.includes('<script src="data.js"></script>')) {
      throw new HttpError(
        409,
        `--export ${out} holds files that are not an export's (its index.html was not written by an export): choose another --export`,
      );
    }
  }
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
