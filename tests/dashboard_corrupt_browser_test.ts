// The runs page offered a playground for a run listed as corrupt whose
// results.json is not JSON (its models count as trained), and the server
// now refuses every route of such a run: the link is no longer offered.
import { assertEquals } from "@std/assert";
import { ignoreUnless } from "@d3pm/core/testing";
import {
  dashboardHandler,
  GenerationService,
  pageFiles,
} from "@d3pm/dashboard";
import { fakeRun } from "../dashboard/_test_util.ts";
import { chromiumMissing, launchChromium } from "./_browser.ts";

const missing = await chromiumMissing();

Deno.test({
  name:
    "the runs page in Chromium offers no playground for a corrupt run, and one for a finished run beside it",
  ignore: ignoreUnless("chromium", missing),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "d3pm-corrupt-" });
    await fakeRun(`${root}/good`, { results: true });
    await fakeRun(`${root}/half`);
    await Deno.writeTextFile(`${root}/half/results.json`, '{"command": "de');
    const generation = new GenerationService(() =>
      Promise.reject(new Error("no generation here"))
    );
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      dashboardHandler(
        { root, generation },
        { page: await pageFiles(), hosts: ["127.0.0.1"] },
      ),
    );
    const { browser, close } = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.setViewport({ width: 1280, height: 500 });
      await page.goto(`http://127.0.0.1:${server.addr.port}/#/`);
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
    } finally {
      await close();
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  },
});
