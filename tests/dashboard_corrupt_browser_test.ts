// The runs page offered a playground for a run listed as corrupt whose
// results.json is not JSON (its models count as trained), and the server
// now refuses every route of such a run: the link is no longer offered.
import { assertEquals } from "@std/assert";
import { fakeRun } from "../dashboard/_test_util.ts";
import { dashboardBrowserTest } from "./_dashboard_browser.ts";

dashboardBrowserTest(
  "the runs page in Chromium offers no playground for a corrupt run, and one for a finished run beside it",
  {
    prefix: "corrupt",
    runs: async (root) => {
      await fakeRun(`${root}/good`, { results: true });
      await fakeRun(`${root}/half`);
      await Deno.writeTextFile(`${root}/half/results.json`, '{"command": "de');
    },
  },
  async ({ page, url }) => {
    await page.setViewport({ width: 1280, height: 500 });
    await page.goto(`${url}/#/`);
    await page.waitForSelector('tr[data-run="half"] .badge-corrupt', {
      timeout: 20_000,
    });
    const play = (id: string) =>
      page.$$eval(
        `tr[data-run="${id}"] a[href^="#/play/"]`,
        (links) => links.length,
      );
    assertEquals([await play("good"), await play("half")], [1, 0]);
    const shots = Deno.env.get("D3PM_SCREENSHOTS");
    if (shots) await page.screenshot({ path: `${shots}/runs-corrupt.png` });
  },
);
