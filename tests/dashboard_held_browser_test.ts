// A run whose lock names a process of another host (a Slurm node sharing
// the folder) was listed as running: this host cannot check that process.
// It is listed, and its page shown, as held, with the way out.
import { assertEquals } from "@std/assert";
import { fakeRun } from "../dashboard/_test_util.ts";
import { dashboardBrowserTest, textOf } from "./_dashboard_browser.ts";

const boot = crypto.randomUUID();

dashboardBrowserTest(
  "the runs page and run page in Chromium show a run locked by another host as held, with who holds it and the lock to delete, and a run of this host as running",
  {
    prefix: "held",
    runs: async (root) => {
      await fakeRun(`${root}/away`);
      await Deno.writeTextFile(
        `${root}/away/.lock`,
        JSON.stringify({
          pid: 4242,
          start: "1",
          host: boot,
          hostname: "node9",
        }),
      );
      await fakeRun(`${root}/here`, { lockPid: Deno.pid });
    },
  },
  async ({ page, url }) => {
    await page.setViewport({ width: 1280, height: 500 });
    await page.goto(`${url}/#/`);
    await page.waitForSelector('tr[data-run="away"] .badge-held', {
      timeout: 20_000,
    });
    const text = (sel: string) => textOf(page, sel);
    const words =
      `held by pid 4242 on host node9 (boot ${boot}), which this host cannot check; if no run writes there, delete away/.lock`;
    assertEquals(
      [
        await text('tr[data-run="away"] .badge'),
        await text('tr[data-run="away"] .reason'),
        await text('tr[data-run="here"] .badge'),
      ],
      ["held by another host", words, "running"],
    );
    const shots = Deno.env.get("D3PM_SCREENSHOTS");
    if (shots) await page.screenshot({ path: `${shots}/runs-held.png` });
    await page.goto(`${url}/#/run/away`);
    await page.waitForSelector(".page-head .badge-held", { timeout: 20_000 });
    assertEquals(await text(".page-head .reason"), words);
  },
);
