// A run page fetched the run's state once: a run killed while its page was
// open stayed "running ● live", a resumed one "stopped … complete". An
// imported run (`deno task import`) had no badge text, its page said
// "complete" and its EventSource waited for a metrics.jsonl that never
// comes. The runs page asked for the list every 5 s whether or not the last
// answer had come: with thousands of runs the requests piled up.
import { assert, assertEquals } from "@std/assert";
import { fakeRun } from "../dashboard/_test_util.ts";
import { sleep } from "../dashboard/follow.ts";
import { dashboardBrowserTest, textOf, until } from "./_dashboard_browser.ts";

/** Requests the server saw: metrics streams, run lists (each delayed by `slowRunsMs`, those in flight counted). */
function counting(slowRunsMs = 0) {
  const seen = { inFlight: 0, most: 0, lists: 0, metrics: 0 };
  const wrap =
    (handler: (req: Request) => Promise<Response>) => async (req: Request) => {
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
    };
  return { seen, wrap };
}

dashboardBrowserTest(
  "a run page in Chromium follows its run's state: running ● live, then stopped … complete once its lock is gone, then running ● live again once resumed",
  {
    prefix: "state",
    runs: (root) => fakeRun(`${root}/live`, { lockPid: Deno.pid }),
  },
  async ({ page, url, root }) => {
    await page.goto(`${url}/#/run/live`);
    const shown = async () => [
      await textOf(page, ".page-head .badge"),
      await textOf(page, '[data-testid="live-state"]'),
    ];
    const shows = async (want: string[]) => {
      const same = async () =>
        JSON.stringify(await shown()) === JSON.stringify(want);
      await until(JSON.stringify(want), same, 15_000).catch(() => {});
      assertEquals(await shown(), want);
    };
    await shows(["running", "● live"]);
    await Deno.remove(`${root}/live/.lock`); // killed: the lock is left behind or gone; here gone
    await shows(["stopped (failed or interrupted)", "complete"]);
    await Deno.writeTextFile(`${root}/live/.lock`, `${Deno.pid}\n`); // resumed
    await shows(["running", "● live"]);
  },
);

const imported = counting();
dashboardBrowserTest(
  "an imported run in Chromium is listed as imported, and its page says it has no training log and opens no metrics stream (nor does a comparison with it); a folder skipped for its name is named on the runs page with why",
  {
    prefix: "imported",
    runs: async (root) => {
      await fakeRun(`${root}/imp`);
      await Deno.remove(`${root}/imp/metrics.jsonl`);
      await fakeRun(`${root}/odd#1`);
      await fakeRun(`${root}/b`);
      await Deno.writeTextFile(
        `${root}/imp/import.json`,
        JSON.stringify({ from: "x", architecture: "gpt2", version: 2 }),
      );
    },
    wrap: imported.wrap,
  },
  async ({ page, url }) => {
    const { seen } = imported;
    await page.goto(`${url}/#/`);
    await page.waitForSelector('tr[data-run="imp"] .badge-imported', {
      timeout: 20_000,
    });
    const text = (sel: string) => textOf(page, sel);
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
    // The page has chosen not to follow once it says so.
    await page.waitForFunction(
      `document.querySelector('[data-testid="live-state"]')?.textContent === "no training log (imported, not trained here)"`,
      { timeout: 20_000 },
    );
    assertEquals(seen.metrics, 0);
    // Compared with a trained run: only that one's log is followed, the
    // trained run's curve drawn from it (both streams would be asked for
    // before it is).
    await page.goto(`${url}/#/compare/imp,b`);
    await page.waitForFunction(
      `[...document.querySelectorAll("[data-legend]")].some((g) => g.textContent.startsWith("b: "))`,
      { timeout: 20_000 },
    );
    assertEquals(seen.metrics, 1);
  },
);

const slow = counting(6_000);
dashboardBrowserTest(
  "the runs page in Chromium asks for the next list only once the last one answered: a list taking 6 s never has two requests out",
  {
    prefix: "slow",
    runs: (root) => fakeRun(`${root}/a`),
    wrap: slow.wrap,
  },
  async ({ page, url }) => {
    const { seen } = slow;
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
    // The next list, past a 5 s tick that came while the first was slow.
    await until(
      "a second list request",
      () => Promise.resolve(seen.lists >= 2),
      20_000,
    );
    assert(seen.lists >= 2, `only ${seen.lists} list requests`);
    assertEquals(seen.most, 1);
    assertEquals(await page.evaluate("window.__lists.most"), 1);
  },
);
