/// <reference lib="dom" />
// The dashboard's screenshots for docs/screenshots/: the runs page, a run
// page (live when the run is still training), and the playground in the
// middle of a generation (the D3PM's masks half filled in). The playground
// is shot only once the D3PM's row has between 30 % and 70 % of its open
// positions still masked, and still has masks after the shot (a row's
// masked count only falls, so the shot lies between); a generation that
// ends first is an error, and no playground.png is written.
//
//   deno run -A tools/dashboard_screenshots.ts --runs DIR --run ID [--live ID] [--steps 400] [--out docs/screenshots]
import { readCommandLine } from "@d3pm/cli";
import { initBackend } from "@d3pm/backend";
import {
  dashboardHandler,
  GenerationService,
  pageFiles,
  trainedModelLoader,
} from "@d3pm/dashboard";
import { launchChromium } from "../tests/_browser.ts";

const { values: args } = readCommandLine(
  Deno.args,
  {
    command: "deno run -A tools/dashboard_screenshots.ts",
    summary: "Takes the dashboard's screenshots for the docs.",
    options: {
      runs: {
        kind: "string",
        value: "DIR",
        required: true,
        help: "the folder of run folders",
      },
      run: {
        kind: "string",
        value: "ID",
        required: true,
        help: "the finished run of the playground",
      },
      live: {
        kind: "string",
        value: "ID",
        help: "the run whose page is shot (default: --run)",
      },
      out: {
        kind: "string",
        value: "DIR",
        default: "docs/screenshots",
        help: "where the PNGs go",
      },
      prompt: {
        kind: "string",
        value: "TEXT",
        help: "a prompt for the playground",
      },
      steps: {
        kind: "integer",
        min: 1,
        default: 400,
        help:
          "the D3PM's steps in the playground (more: slower, easier to catch mid-way)",
      },
    },
  } as const,
);
const out = args.out;
await Deno.mkdir(out, { recursive: true });
await initBackend({ prefer: "auto" });
const generation = new GenerationService(trainedModelLoader("tfjs"));
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  dashboardHandler(
    { root: args.runs, generation, pollMs: 200 },
    { page: await pageFiles({ log: console.error }), hosts: ["127.0.0.1"] },
  ),
);
const base = `http://127.0.0.1:${server.addr.port}`;
const { browser, close } = await launchChromium();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let failure: string | undefined;
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.setViewport({ width: 1280, height: 820, deviceScaleFactor: 1 });
  await page.goto(`${base}/#/`);
  await page.waitForSelector("table.runs");
  await page.screenshot({ path: `${out}/runs.png` });
  const live = args.live ?? args.run;
  await page.goto(`${base}/#/run/${encodeURIComponent(live)}`);
  await page.waitForSelector(".chart-svg polyline");
  await sleep(4000); // a few more lines arrive
  await page.screenshot({ path: `${out}/run-live.png` });
  await page.goto(`${base}/#/play/${encodeURIComponent(args.run)}`);
  await page.waitForSelector('.tokens[data-model="d3pm"]');
  await page.$eval(
    "#steps",
    (e, n) => ((e as HTMLInputElement).value = String(n)),
    args.steps,
  );
  if (args.prompt) await page.type("#prompt", args.prompt);
  const done = () =>
    page.$eval("#app", (e) => Number((e as HTMLElement).dataset.done ?? 0));
  const before = await done();
  await page.click("#generate");
  // The D3PM's row: its positions, the prompt's, and those still masked.
  const row = () =>
    page.$eval('.tokens[data-model="d3pm"]', (e) => ({
      total: e.querySelectorAll(".tok").length,
      given: e.querySelectorAll(".tok.given").length,
      masked: e.querySelectorAll(".tok.masked").length,
    }));
  const mid = (r: { total: number; given: number; masked: number }) => {
    const open = r.total - r.given;
    return open > 0 && r.masked >= 0.3 * open && r.masked <= 0.7 * open;
  };
  // Shot to a scratch file, moved into place once known to be mid-way.
  const scratch = `${out}/.playground.png.part`;
  let last = { total: 0, given: 0, masked: 0 }, shot = false;
  const end = Date.now() + 120_000;
  while (!shot && Date.now() < end && (await done()) === before) {
    last = await row();
    if (!mid(last)) {
      await sleep(5);
      continue;
    }
    await page.screenshot({ path: scratch });
    const after = await row();
    shot = after.masked > 0 && after.total === last.total;
  }
  const said = await page.$eval(
    '[data-testid="stats-d3pm"]',
    (e) => e.textContent ?? "",
  );
  if (shot) {
    await Deno.rename(scratch, `${out}/playground.png`);
    console.error(`wrote ${out}/runs.png, run-live.png, playground.png`);
  } else {
    await Deno.remove(scratch).catch(() => {});
    failure =
      `Cannot shoot the playground mid-generation: no frame with 30–70 % of the D3PM's open positions masked was caught in time (last seen: ${last.masked} of ${
        last.total - last.given
      } masked; the D3PM panel says "${said}"); give more --steps (now ${args.steps}), at most the D3PM's T; playground.png left as it was`;
  }
} finally {
  await close();
  await server.shutdown();
  await generation.close();
}
if (failure) {
  console.error(failure);
  Deno.exit(1);
}
