/// <reference lib="dom" />
// The set-up every dashboard browser test shares: a folder of runs, the
// dashboard served over it on 127.0.0.1, headless Chromium with a page, and
// all of it torn down after the test whatever it throws; skipped, saying
// why, where no Chromium can run.
import type { Browser, Page } from "puppeteer-core";
import { ignoreUnless } from "@d3pm/core/testing";
import {
  type DashboardContext,
  dashboardHandler,
  GenerationService,
  pageFiles,
} from "@d3pm/dashboard";
import { sleep } from "../dashboard/follow.ts";
import { chromiumMissing, launchChromium } from "./_browser.ts";
import { type Defer, withTeardown } from "./_teardown.ts";

/** Why no browser can run here, or null when one can. */
export const missing: string | null = await chromiumMissing();

type Handler = (req: Request) => Promise<Response>;

/** A dashboard served on 127.0.0.1 (a free port), and its address. */
export interface ServedDashboard {
  server: Deno.HttpServer<Deno.NetAddr>;
  /** `http://127.0.0.1:PORT`. */
  url: string;
}

/**
 * Serve the dashboard over `ctx.root` on 127.0.0.1, with the built page;
 * without `ctx.generation`, one that refuses every generation. `wrap`
 * stands between the server and the dashboard's handler (to count or
 * delay requests).
 */
export async function serveDashboard(
  ctx: Partial<DashboardContext> & { root: string },
  wrap: (handler: Handler) => Handler = (handler) => handler,
): Promise<ServedDashboard> {
  const generation = ctx.generation ??
    new GenerationService(() =>
      Promise.reject(new Error("no generation here"))
    );
  const handler = dashboardHandler(
    { ...ctx, generation },
    { page: await pageFiles(), hosts: ["127.0.0.1"] },
  );
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    wrap((req) => handler(req)),
  );
  return { server, url: `http://127.0.0.1:${server.addr.port}` };
}

/** What a dashboard browser test is handed. */
export interface DashboardInBrowser extends ServedDashboard {
  /** Its folder of runs (removed after). */
  root: string;
  browser: Browser;
  /** A page opened in it. */
  page: Page;
}

/** Options of {@linkcode dashboardBrowserTest}. */
export interface DashboardBrowserOptions {
  /** The runs folder's name prefix (`d3pm-PREFIX-`). */
  prefix: string;
  /** Fills the runs folder before the server starts. */
  runs?: (root: string) => Promise<void>;
  /** The dashboard's context beside its root. */
  ctx?: Partial<DashboardContext>;
  /** Stands between the server and the dashboard's handler. */
  wrap?: (handler: Handler) => Handler;
}

/**
 * A Deno test of the dashboard in Chromium: a runs folder filled by
 * `runs`, the dashboard served over it, Chromium with one page; all closed
 * and removed after `fn` (the browser, the server, the folder), each
 * whatever `fn` or another threw, an error of theirs logged rather than
 * reported in place of `fn`'s (see `withTeardown`). Skipped,
 * saying why, without Chromium. The sanitizers are off: Chromium's pipes
 * and the server's connections outlive a test's own ops.
 */
export function dashboardBrowserTest(
  name: string,
  options: DashboardBrowserOptions,
  fn: (d: DashboardInBrowser) => Promise<void>,
): void {
  Deno.test({
    name,
    ignore: ignoreUnless("chromium", missing),
    sanitizeOps: false,
    sanitizeResources: false,
    // A teardown error is logged, never in place of the test's own.
    fn: () =>
      withTeardown(async (defer) => {
        const root = await Deno.makeTempDir({
          prefix: `d3pm-${options.prefix}-`,
        });
        defer(`removing ${root}`, () => Deno.remove(root, { recursive: true }));
        await options.runs?.(root);
        const served = await serveDashboard(
          { ...options.ctx, root },
          options.wrap,
        );
        defer("shutting the dashboard down", () => served.server.shutdown());
        const { browser, close } = await launchChromium();
        defer("closing Chromium", close);
        const page = await browser.newPage();
        await fn({ ...served, root, browser, page });
      }),
  });
}

/**
 * Poll `f` every 100 ms until it gives a truthy value, and return it; past
 * `timeoutMs`, fail naming `what`. A throw of `f` counts as not yet.
 */
export async function until<T>(
  what: string,
  f: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await f().catch(() => undefined);
    if (v) return v;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The text of the first element `sel` matches in `page` (undefined: none). */
export function textOf(page: Page, sel: string): Promise<string | undefined> {
  return page.$eval(sel, (e) => e.textContent ?? "").catch(() => undefined);
}

/**
 * Record in `page`'s `masks` the masked count the playground's `kind` panel
 * shows at each change of its row or its `data-masked`. The observer watches
 * the whole page and reads the panel found at each change, so a panel built
 * again after this call is still followed (one on the element found at the
 * call recorded nothing once in CI, under load, when the panel it held was
 * no longer the one shown).
 */
export async function watchMasks(page: Page, kind: string): Promise<void> {
  await page.evaluate((kind) => {
    const w = globalThis as unknown as { masks: number[] };
    w.masks = [];
    const sel = `.tokens[data-model="${kind}"]`;
    new MutationObserver((records) => {
      const el = document.querySelector<HTMLElement>(sel);
      if (el && records.some((r) => r.target === el)) {
        w.masks.push(Number(el.dataset.masked));
      }
    }).observe(document.body, {
      attributes: true,
      attributeFilter: ["data-masked"],
      childList: true,
      subtree: true,
    });
  }, kind);
}

/** From a page: /api/health's status, or "none" when 5 s pass without one. */
export const HEALTH = `Promise.race([
  fetch("/api/health").then((r) => String(r.status)),
  new Promise((res) => setTimeout(() => res("none"), 5000)),
])`;

/**
 * Where a browser test's screenshots go: `$D3PM_SCREENSHOTS` (kept), else a
 * temporary folder removed at teardown.
 */
export async function screenshotsFolder(
  defer: Defer,
): Promise<{ shots: string; kept: boolean }> {
  const kept = Deno.env.get("D3PM_SCREENSHOTS");
  const shots = kept ?? await Deno.makeTempDir({ prefix: "d3pm-screens-" });
  if (!kept) {
    defer(`removing ${shots}`, () => Deno.remove(shots, { recursive: true }));
  }
  await Deno.mkdir(shots, { recursive: true });
  return { shots, kept: kept !== undefined };
}
