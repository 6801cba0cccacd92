// The page held one metrics stream (an EventSource) per run it showed, open
// for good: over HTTP/1.1 a browser opens 6 connections per host, so a
// comparison of 6 runs or more, or 6 run tabs, froze the dashboard — its
// /api/health and /api/runs never answered. A run not live now lets go of
// its stream once caught up; a comparison holds at most 3.
import { assertEquals } from "@std/assert";
import type { Page } from "puppeteer-core";
import { fakeRun } from "../dashboard/_test_util.ts";
import { dashboardBrowserTest, HEALTH, until } from "./_dashboard_browser.ts";

const TEN = Array.from({ length: 10 }, (_, i) => `r${i}`);

type Handler = (req: Request) => Promise<Response>;

/**
 * The metrics streams the server has open now (`open`), counted by `wrap`
 * between the server and the dashboard: one from its answer until its body
 * ends or the browser lets go of it.
 */
function countStreams(): { open: number; wrap: (h: Handler) => Handler } {
  const counted = {
    open: 0,
    wrap: (handler: Handler): Handler => async (req) => {
      const res = await handler(req);
      if (!req.url.includes("/api/run/metrics?") || res.body === null) {
        return res;
      }
      counted.open++;
      let ended = false;
      const end = () => {
        if (!ended) counted.open--;
        ended = true;
      };
      const reader = res.body.getReader();
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          const { done, value } = await reader.read();
          if (done) {
            end();
            c.close();
          } else c.enqueue(value);
        },
        cancel(reason) {
          end();
          return reader.cancel(reason);
        },
      });
      return new Response(body, res);
    },
  };
  return counted;
}

const streams = countStreams();

dashboardBrowserTest(
  "a comparison of 10 runs in Chromium (4 live) draws every run's curve and /api/health still answers from the page; so does a 7th tab beside 6 open run pages, which follow a run resumed and name one deleted",
  {
    prefix: "streams",
    runs: async (root) => {
      for (const [i, id] of TEN.entries()) {
        await fakeRun(`${root}/${id}`, i < 4 ? { lockPid: Deno.pid } : {});
      }
    },
    wrap: streams.wrap,
  },
  async ({ page, url, root, browser }) => {
    const ids = TEN;
    await page.goto(`${url}/#/compare/${ids.join(",")}`);
    const legends = () =>
      page.$$eval(
        "[data-legend]",
        (gs) => gs.map((g) => g.textContent ?? ""),
      ).catch(() => [] as string[]);
    const drawn = (names: string[]) =>
      ids.filter((id) => names.some((n) => n.startsWith(`${id}: `)));
    await until(
      "every run's curve in the comparison",
      async () => drawn(await legends()).length === ids.length,
      20_000,
    );
    assertEquals(drawn(await legends()), ids);
    assertEquals(await page.evaluate(HEALTH), "200");
    // Six run pages of runs not live (stopped), each in its tab.
    const tabs: Page[] = [];
    for (const id of ids.slice(4)) {
      const tab = await browser.newPage();
      await tab.goto(`${url}/#/run/${id}`);
      tabs.push(tab);
    }
    for (const tab of tabs) {
      await tab.waitForFunction(
        `document.querySelector('[data-testid="live-state"]')?.textContent === "complete"`,
        { timeout: 20_000 },
      );
    }
    // The six let go of their streams (their runs are not live): the
    // server holds the comparison's 3 at most.
    await until(
      "the run pages' streams let go of (at most the comparison's 3 open)",
      () => Promise.resolve(streams.open <= 3),
      10_000,
    );
    const last = await browser.newPage();
    await last.goto(`${url}/#/`);
    await last.waitForSelector('tr[data-run="r9"]', { timeout: 10_000 });
    assertEquals(await last.evaluate(HEALTH), "200");
    assertEquals(await page.evaluate(HEALTH), "200");
    // A run let go of and resumed: its page follows it again from where it
    // got to (the next state refresh sees it live).
    await Deno.writeTextFile(`${root}/r4/.lock`, `${Deno.pid}\n`);
    await Deno.writeTextFile(
      `${root}/r4/metrics.jsonl`,
      '{"model":"ar","seed":0,"step":3,"loss":4}\n',
      { append: true },
    );
    await tabs[0].bringToFront(); // a tab behind has its timers slowed
    await tabs[0].waitForFunction(
      `document.querySelector(".progress")?.textContent?.startsWith("3 records")`,
      { timeout: 15_000 },
    );
    // A run let go of (not live) and then deleted: its page says so from
    // its state's answer, as the stream's `gone` says it for a live one.
    await Deno.remove(`${root}/r5`, { recursive: true });
    await tabs[1].bringToFront();
    await tabs[1].waitForFunction(
      `document.querySelector('[data-testid="live-state"]')?.textContent === "Run r5's folder is gone (deleted or moved): nothing more to follow"`,
      { timeout: 15_000 },
    );
  },
);

const FOUR = ["r0", "r1", "r2", "r3"];

dashboardBrowserTest(
  "a comparison in Chromium follows a run that becomes live after the page opened (its new points drawn), and reads again one that stops",
  {
    prefix: "streams",
    runs: async (root) => {
      for (const [i, id] of FOUR.entries()) {
        await fakeRun(`${root}/${id}`, i === 0 ? { lockPid: Deno.pid } : {});
      }
    },
  },
  async ({ page, url, root }) => {
    const ids = FOUR;
    // Whether `id`'s training curve in the comparison's chart has `n`
    // points (its legend entry's series' polyline).
    const point = (id: string, n: number) =>
      `(() => {
        const svg = document.querySelector(".chart-svg svg");
        const g = [...(svg?.querySelectorAll("[data-legend]") ?? [])]
          .find((g) => g.textContent === ${JSON.stringify(`${id}: AR train`)});
        const line = g && svg.querySelector('[data-series="' +
          g.getAttribute("data-legend") + '"] polyline');
        return line?.getAttribute("points").trim().split(/\\s+/).length === ${n};
      })()`;
    const append = (id: string, step: number) =>
      Deno.writeTextFile(
        `${root}/${id}/metrics.jsonl`,
        `{"model":"ar","seed":0,"step":${step},"loss":${5 - step / 10}}\n`,
        { append: true },
      );
    await page.goto(`${url}/#/compare/${ids.join(",")}`);
    for (const id of ids) {
      await page.waitForFunction(point(id, 2), { timeout: 20_000 });
    }
    // r2, stopped when the page opened, is resumed: live now, its new
    // lines arrive (the state refresh sees it and gives it a stream).
    await Deno.writeTextFile(`${root}/r2/.lock`, `${Deno.pid}\n`);
    await append("r2", 3);
    await page.waitForFunction(point("r2", 3), { timeout: 20_000 });
    // A line written as it stops: read once its state says so.
    await append("r2", 4);
    await Deno.remove(`${root}/r2/.lock`);
    await page.waitForFunction(point("r2", 4), { timeout: 20_000 });
    assertEquals(await page.evaluate(HEALTH), "200");
  },
);

dashboardBrowserTest(
  "a run page in Chromium whose stream the server refused (503, its bound reached) tries again on its next state refresh, for a run not live too",
  {
    prefix: "streams",
    runs: async (root) => {
      await fakeRun(`${root}/r0`, { lockPid: Deno.pid });
      await fakeRun(`${root}/r1`);
    },
    ctx: { maxStreams: 1 },
  },
  async ({ page, url }) => {
    // The server's one stream, held by this test.
    const holder = new AbortController();
    try {
      const held = await fetch(`${url}/api/run/metrics?run=r0`, {
        signal: holder.signal,
      });
      const reader = held.body!.getReader();
      await reader.read();
      // Settled at once, so that a throw of goto or waitForSelector is the
      // error reported, not this wait's rejection when the page closes.
      const refusal = page.waitForResponse(
        (r) =>
          r.url().includes("/api/run/metrics?run=r1") && r.status() === 503,
        { timeout: 20_000 },
      ).then(() => undefined, (e: unknown) => e);
      await page.goto(`${url}/#/run/r1`);
      await page.waitForSelector(".progress", { timeout: 20_000 });
      const missed = await refusal;
      if (missed !== undefined) throw missed;
      assertEquals(
        await page.evaluate(
          `document.querySelector(".progress")?.textContent?.startsWith("2 records") ?? false`,
        ),
        false,
      );
      holder.abort();
      await reader.cancel().catch(() => {});
      await page.waitForFunction(
        `document.querySelector(".progress")?.textContent?.startsWith("2 records")`,
        { timeout: 15_000 },
      );
    } finally {
      holder.abort();
    }
  },
);
