// A run page fetched the run's state once: a run killed while its page was
// open stayed "running ● live", a resumed one "stopped … complete". An
// imported run (`deno task import`) had no badge text, its page said
// "complete" and its EventSource waited for a metrics.jsonl that never
// comes. The runs page asked for the list every 5 s whether or not the last
// answer had come: with thousands of runs the requests piled up.
import { assert, assertEquals } from "@std/assert";
import { ignoreUnless } from "@d3pm/core/testing";
import {
  dashboardHandler,
  GenerationService,
  pageFiles,
} from "@d3pm/dashboard";
import { fakeRun } from "../dashboard/_test_util.ts";
import { sleep } from "../dashboard/follow.ts";
import { chromiumMissing, launchChromium } from "./_browser.ts";

const missing = await chromiumMissing();

/** A server over `root`; `slowRunsMs` delays each /api/run(s) answer, counting those in flight. */
async function serve(root: string, slowRunsMs = 0) {
  const generation = new GenerationService(() =>
    Promise.reject(new Error("no generation here"))
  );
  const handler = dashboardHandler(
    { root, generation },
    { page: await pageFiles(), hosts: ["127.0.0.1"] },
  );
  const seen = { inFlight: 0, most: 0, lists: 0, metrics: 0 };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/api/run/metrics") seen.metrics++;
      if (path !== "/api/runs") return handler(req);
      seen.lists++;
      seen.most = Math.max(seen.most, ++seen.inFlight);
      try {
        await sleep(slowRunsMs);
        return await handler(req);
      } finally {
        seen.inFlight--;
      }
    },
  );
  return { server, seen, url: `http://127.0.0.1:${server.addr.port}` };
}

Deno.test({
  name:
    "a run page in Chromium follows its run's state: running ● live, then stopped … complete once its lock is gone, then running ● live again once resumed",
  ignore: ignoreUnless("chromium", missing),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "d3pm-state-" });
    await fakeRun(`${root}/live`, { lockPid: Deno.pid });
    const { server, url } = await serve(root);
    const { browser, close } = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`${url}/#/run/live`);
      const text = (sel: string) =>
        page.$eval(sel, (e) => e.textContent ?? "").catch(() => undefined);
      const shown = async () => [
        await text(".page-head .badge"),
        await text('[data-testid="live-state"]'),
      ];
      const until = async (want: string[]) => {
        const end = Date.now() + 15_000;
        while (Date.now() < end) {
          if (JSON.stringify(await shown()) === JSON.stringify(want)) return;
          await sleep(200);
        }
        assertEquals(await shown(), want);
      };
      await until(["running", "● live"]);
      await Deno.remove(`${root}/live/.lock`); // killed: the lock is left behind or gone; here gone
      await until(["stopped (failed or interrupted)", "complete"]);
      await Deno.writeTextFile(`${root}/live/.lock`, `${Deno.pid}\n`); // resumed
      await until(["running", "● live"]);
    } finally {
      await close();
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "an imported run in Chromium is listed as imported, and its page says it has no training log and opens no metrics stream (nor does a comparison with it); a folder skipped for its name is named on the runs page with why",
  ignore: ignoreUnless("chromium", missing),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "d3pm-imported-" });
    await fakeRun(`${root}/imp`);
    await Deno.remove(`${root}/imp/metrics.jsonl`);
    await fakeRun(`${root}/odd#1`);
    await fakeRun(`${root}/b`);
    await Deno.writeTextFile(
      `${root}/imp/import.json`,
      JSON.stringify({ from: "x", architecture: "gpt2", version: 2 }),
    );
    const { server, seen, url } = await serve(root);
    const { browser, close } = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`${url}/#/`);
      await page.waitForSelector('tr[data-run="imp"] .badge-imported', {
        timeout: 20_000,
      });
      const text = (sel: string) => page.$eval(sel, (e) => e.textContent ?? "");
      assertEquals(
        await text('tr[data-run="imp"] .badge'),
        "imported (not trained here)",
      );
      // A folder whose name an id cannot carry is named, with why.
      assertEquals(
        await text('[data-testid="skipped"]'),
        "1 folder not listed for its name" +
          'folder "odd#1" is not listed: its name has "#", outside letters, digits, spaces and . _ - = , + (rename it to list it)',
      );
      await page.goto(`${url}/#/run/imp`);
      await page.waitForSelector(".page-head .badge-imported", {
        timeout: 20_000,
      });
      await sleep(500);
      assertEquals(
        await text('[data-testid="live-state"]'),
        "no training log (imported, not trained here)",
      );
      assertEquals(seen.metrics, 0);
      // Compared with a trained run: only that one's log is followed.
      await page.goto(`${url}/#/compare/imp,b`);
      await page.waitForSelector(".page-head h1", { timeout: 20_000 });
      await sleep(800);
      assertEquals(seen.metrics, 1);
    } finally {
      await close();
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "the runs page in Chromium asks for the next list only once the last one answered: a list taking 6 s never has two requests out",
  ignore: ignoreUnless("chromium", missing),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "d3pm-slow-" });
    await fakeRun(`${root}/a`);
    const { server, seen, url } = await serve(root, 6_000);
    const { browser, close } = await launchChromium();
    try {
      const page = await browser.newPage();
      // Counted in the page: Chromium's cache holds a second request for
      // the same address until the first answers, so the server alone
      // would not see the pile-up.
      await page.evaluateOnNewDocument(`{
        const real = window.fetch.bind(window);
        window.__lists = { inFlight: 0, most: 0 };
        window.fetch = async (input, init) => {
          const list = String(input).startsWith("/api/runs");
          const c = window.__lists;
          if (list) c.most = Math.max(c.most, ++c.inFlight);
          try { return await real(input, init); }
          finally { if (list) c.inFlight--; }
        };
      }`);
      await page.goto(`${url}/#/`);
      await page.waitForSelector('tr[data-run="a"]', { timeout: 20_000 });
      await sleep(7_000); // past a second 5 s tick while the list is slow
      assert(seen.lists >= 2, `only ${seen.lists} list requests`);
      assertEquals(seen.most, 1);
      assertEquals(await page.evaluate("window.__lists.most"), 1);
    } finally {
      await close();
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  },
});
