/**
 * The page: `web/index.html`, `web/app.css` and the bundled `web/main.ts`
 * (`deno bundle`, for browsers). The bundle is built into `dist/` and
 * rebuilt only when a source it may include changed (a hash of them is kept
 * beside it); tfjs is left out of it — the page's engine is the WGSL one —
 * by mapping its import to an empty module.
 *
 * @module
 */
import type { PageFiles } from "./server.ts";

// Decoded: a checkout path with a space is %20 in the URL.
const HERE = decodeURIComponent(new URL(".", import.meta.url).pathname);
/** The root of this checkout, ending in `/`. */
export const ROOT: string = decodeURIComponent(
  new URL("..", import.meta.url).pathname,
);
/** Where the bundle is written. */
export const DIST: string = `${HERE}dist`;

/** Folders whose sources may end up in the bundle. */
const SOURCES = [
  "dashboard/web",
  "core",
  "webgpu",
  "diffusion",
  "eval",
  "experiment",
  "transformer",
  "backend",
  "autoregressive",
];

async function sourcesHash(): Promise<string> {
  const files: string[] = [];
  for (const dir of SOURCES) {
    try {
      for await (const e of Deno.readDir(`${ROOT}${dir}`)) {
        if (
          e.isFile && e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")
        ) files.push(`${dir}/${e.name}`);
      }
    } catch { /* a folder not there */ }
  }
  files.push("deno.json", "deno.lock");
  files.sort();
  const h = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(
      (await Promise.all(
        files.map(async (f) =>
          `${f}\n${await Deno.readTextFile(`${ROOT}${f}`).catch(() => "")}`
        ),
      )).join("\n"),
    ),
  );
  return Array.from(new Uint8Array(h), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** Options of {@linkcode pageFiles} (and of the bundle task's build). */
export interface BundleOptions {
  /** Rebuild even when the sources did not change. */
  force?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

/**
 * Bundle the page's script into `dist/app.js` unless it is up to date.
 *
 * @param options Force, and where progress goes.
 * @returns The bundle's path and whether it was rebuilt.
 * @throws {Error} When `deno bundle` fails (its output in the message).
 */
export async function buildBundle(
  options: BundleOptions = {},
): Promise<{ path: string; rebuilt: boolean }> {
  const path = `${DIST}/app.js`;
  const hash = await sourcesHash();
  if (!options.force) {
    const old = await Deno.readTextFile(`${DIST}/app.js.sha256`).catch(() =>
      ""
    );
    const exists = await Deno.stat(path).then(() => true, () => false);
    if (exists && old.trim() === hash) return { path, rebuilt: false };
  }
  await Deno.mkdir(DIST, { recursive: true });
  // Its own folder for the stubs, the import map and the output (two
  // processes bundling at once, as the test lanes may, each rename a whole
  // file into place; fixed names once let one read the other's half-written
  // import map).
  const work = await Deno.makeTempDir({ dir: DIST, prefix: ".bundling-" });
  try {
    const t0 = performance.now();
    const size = await bundleInto(work, path, hash, options);
    options.log?.(
      `bundled ${(size / 1024).toFixed(0)} KiB in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return { path, rebuilt: true };
}

/**
 * Run `deno bundle` in `work` (the stubs and import map written there) and
 * rename its output to `path`, the sources' `hash` beside it.
 */
async function bundleInto(
  work: string,
  path: string,
  hash: string,
  options: BundleOptions,
): Promise<number> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  // What the page never calls but its modules import: tfjs (the page's
  // engine is the WGSL one) and Node's hash (core's sha256 in Deno).
  const stub = `${work}/_no_tfjs.js`;
  await Deno.writeTextFile(
    stub,
    "// tfjs is not part of the page: its engine is the WGSL one.\nexport {};\n",
  );
  const noCrypto = `${work}/_no_node_crypto.js`;
  await Deno.writeTextFile(
    noCrypto,
    'export function createHash() {\n  throw new Error("node:crypto is not part of the page");\n}\n',
  );
  const map = `${work}/_import_map.json`;
  await Deno.writeTextFile(
    map,
    JSON.stringify(
      {
        imports: {
          ...config.imports,
          "@tensorflow/tfjs": stub,
          "node:crypto": noCrypto,
        },
      },
      null,
      1,
    ),
  );
  options.log?.("bundling the dashboard's page (deno bundle)…");
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--platform",
      "browser",
      "--format",
      "iife",
      "--minify",
      "--import-map",
      map,
      "-o",
      `${work}/app.js`,
      `${HERE}web/main.ts`,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stderr) +
    new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`deno bundle failed:\n${text}`);
  await Deno.rename(`${work}/app.js`, path);
  await Deno.writeTextFile(`${work}/app.js.sha256`, hash + "\n");
  await Deno.rename(`${work}/app.js.sha256`, `${path}.sha256`);
  return (await Deno.stat(path)).size;
}

/**
 * The page's files, the bundle built first when needed.
 *
 * @param options Whether to rebuild the bundle.
 * @returns HTML, script and CSS.
 *
 * @example The page served; its script bundled once, then reused
 * ```ts
 * import { pageFiles } from "@d3pm/dashboard";
 * import { assert, assertEquals } from "@std/assert";
 * const page = await pageFiles();
 * assert(page.html.startsWith("<!doctype html>"));
 * assert(page.js.length > 0 && page.css.length > 0);
 * const lines: string[] = [];
 * assertEquals((await pageFiles({ log: (l) => lines.push(l) })).js, page.js);
 * assertEquals(lines, []); // up to date: not bundled again
 * ```
 */
export async function pageFiles(
  options: BundleOptions = {},
): Promise<PageFiles> {
  const { path } = await buildBundle(options);
  return {
    html: await Deno.readTextFile(`${HERE}web/index.html`),
    js: await Deno.readTextFile(path),
    css: await Deno.readTextFile(`${HERE}web/app.css`),
  };
}
