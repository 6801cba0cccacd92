/// <reference lib="dom" />
// The dashboard's screenshots for docs/screenshots/: the runs page, a run
// page (live when the run is still training), and the playground in the
// middle of a generation (the D3PM's masks half filled in).
//
//   deno run -A tools/dashboard_screenshots.ts --runs DIR --run ID [--live ID] [--out docs/screenshots]
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
  await page.$eval("#steps", (e) => ((e as HTMLInputElement).value = "400"));
  if (args.prompt) await page.type("#prompt", args.prompt);
  await page.click("#generate");
  const L = await page.$eval(
    '.tokens[data-model="d3pm"]',
    (e) => e.querySelectorAll(".tok").length,
  );
  for (let i = 0; i < 2000; i++) {
    const masked = Number(
      await page.$eval(
        '.tokens[data-model="d3pm"]',
        (e) => (e as HTMLElement).dataset.masked,
      ),
    );
    if (masked > 0.35 * L && masked < 0.6 * L) break;
    await sleep(5);
  }
  await page.screenshot({ path: `${out}/playground.png` });
  console.error(`wrote ${out}/runs.png, run-live.png, playground.png`);
} finally {
  await close();
  await server.shutdown();
  await generation.close();
}
