/// <reference lib="dom" />
// The dashboard in a real browser (headless Chromium with WebGPU): a micro
// run trains while the run page follows its curve, then the report's tables
// show, and the playground generates with the D3PM on the server and in the
// browser's WebGPU, frames showing masks filling in. The browser's engine
// and the server's sampler are held to the same law by a χ² test.
// Screenshots go to $D3PM_SCREENSHOTS (default: a temporary folder, printed).
import { assert, assertEquals } from "@std/assert";
import { prng } from "@d3pm/core";
import { ignoreUnless } from "@d3pm/core/testing";
import { initBackend } from "@d3pm/backend";
import { loadTrained } from "@d3pm/experiment";
import type { MaskedDiffusion } from "@d3pm/diffusion";
import {
  dashboardHandler,
  exportDashboard,
  GenerationService,
  pageFiles,
  trainedModelLoader,
} from "@d3pm/dashboard";
import type { Page } from "puppeteer-core";
import { chromiumMissing, launchChromium } from "./_browser.ts";
import { goodnessOfFit, homogeneity } from "./_chi2.ts";
import { ROOT } from "./_run.ts";

const missing = await chromiumMissing();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
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

/** The masked counts the D3PM panel shows, recorded by a MutationObserver. */
async function watchMasks(page: Page, kind: string): Promise<void> {
  await page.evaluate((kind) => {
    const w = globalThis as unknown as { masks: number[] };
    w.masks = [];
    const el = document.querySelector(`.tokens[data-model="${kind}"]`)!;
    new MutationObserver(() =>
      w.masks.push(Number((el as HTMLElement).dataset.masked))
    ).observe(el, {
      attributes: true,
      attributeFilter: ["data-masked"],
      childList: true,
    });
  }, kind);
}

const decreasingToZero = (xs: number[]) =>
  xs.length > 2 && xs.at(-1) === 0 &&
  xs.every((x, i) => i === 0 || x <= xs[i - 1]);

Deno.test({
  name:
    "the dashboard in Chromium: live curve, report tables, D3PM frames on the server and on the browser's WebGPU, one law (χ²)",
  ignore: ignoreUnless("chromium", missing),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const shots = Deno.env.get("D3PM_SCREENSHOTS") ??
      await Deno.makeTempDir({ prefix: "d3pm-screens-" });
    await Deno.mkdir(shots, { recursive: true });
    const root = await Deno.makeTempDir({ prefix: "d3pm-dash-" });
    const run = `${root}/micro`;
    // A micro run, trained while the page watches.
    const training = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}examples/experiment.ts`,
        "--preset",
        "micro",
        "--steps",
        "150",
        "--log-every",
        "5",
        "--eval-blocks",
        "4",
        "--elbo-samples",
        "1",
        "--gen-tokens",
        "32",
        "--gen-steps",
        "4,8",
        "--out",
        run,
      ],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const trainingLog = new Response(training.stderr).text();
    await initBackend({ prefer: "auto" });
    const generation = new GenerationService(trainedModelLoader("tfjs"));
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      dashboardHandler(
        { root, generation, pollMs: 100 },
        { page: await pageFiles(), hosts: ["127.0.0.1"] },
      ),
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    const { browser, close } = await launchChromium();
    const errors: string[] = [];
    try {
      const page = await browser.newPage();
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.setViewport({ width: 1280, height: 1000 });

      // The run page while it trains: the curve grows from appended lines.
      await until(
        "the first metrics",
        async () =>
          (await Deno.readTextFile(`${run}/metrics.jsonl`)).length > 0,
      );
      await page.goto(`${base}/#/run/micro`);
      const records = async () =>
        Number(
          (await page.$eval(".progress", (e) => e.textContent ?? "")).split(
            " ",
          )[0],
        );
      const first = await until(
        "records on the page",
        async () => (await records()) > 0 && await records(),
      );
      const later = await until(
        "more records",
        async () => (await records()) > first + 3 && await records(),
      );
      assert(later > first, `the page appended records: ${first} → ${later}`);
      assertEquals(
        await page.$eval("[data-testid=live-state]", (e) => e.textContent),
        "● live",
      );
      assert(
        await page.$$eval(".chart-svg polyline", (p) => p.length) >= 1,
        "a curve is drawn",
      );
      await page.screenshot({ path: `${shots}/run-live.png`, fullPage: false });

      const status = await training.status;
      assert(status.success, `the micro run failed:\n${await trainingLog}`);

      // deno task sample --prompt: both models start from the prompt.
      for (const model of ["ar", "d3pm"]) {
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            `${ROOT}examples/sample.ts`,
            "--run",
            run,
            "--model",
            model,
            "--prompt",
            "The cat",
            "--steps",
            "4",
            "--quiet",
          ],
          cwd: ROOT,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout);
        assert(out.success, new TextDecoder().decode(out.stderr));
        assert(
          text.replace("<|bos|>", "").startsWith("The cat"),
          `${model}: ${JSON.stringify(text.slice(0, 40))}`,
        );
      }

      // Finished: the report's tables and the speed-quality chart.
      await page.goto(`${base}/#/`);
      await page.waitForSelector('tr[data-run="micro"] .badge-finished', {
        timeout: 20_000,
      });
      await page.screenshot({ path: `${shots}/runs.png` });
      await page.goto(`${base}/#/run/micro`);
      await page.reload();
      await page.waitForSelector(".report-table", { timeout: 20_000 });
      assert(
        await page.$$eval(".report-table", (t) => t.length) >= 3,
        "the report's tables",
      );
      assert(
        await page.$eval("#speed-card", (e) => !(e as HTMLElement).hidden),
        "the speed-quality chart",
      );

      // The playground on the server: D3PM frames fill the masks in.
      await page.goto(`${base}/#/play/micro`);
      await page.waitForSelector('.tokens[data-model="d3pm"]');
      await page.$eval("#steps", (e) => ((e as HTMLInputElement).value = "8"));
      await watchMasks(page, "d3pm");
      await page.click("#generate");
      await until(
        "the server's generation",
        async () =>
          (await page.$eval("#app", (e) => (e as HTMLElement).dataset.done)) ===
            "1",
      );
      const serverMasks = await page.evaluate(() =>
        (globalThis as unknown as { masks: number[] }).masks
      );
      assert(
        decreasingToZero(serverMasks) && serverMasks[0] >= 30 &&
          serverMasks.some((m) => m > 0 && m < 30),
        `server frames: ${serverMasks}`,
      );
      assert(
        (await page.$eval('[data-testid="stats-d3pm"]', (e) => e.textContent))!
          .includes("tokens/s"),
      );

      // The same in the browser's WebGPU.
      const gpu = await page.$eval(
        "#webgpu-status",
        (e) => e.textContent ?? "",
      );
      assert(gpu.startsWith("WebGPU: "), `the browser has WebGPU (${gpu})`);
      await page.select("#where", "browser");
      await watchMasks(page, "d3pm");
      await page.click("#generate");
      let mid = false;
      await until("the browser's generation", async () => {
        const masked = Number(
          await page.$eval(
            '.tokens[data-model="d3pm"]',
            (e) => (e as HTMLElement).dataset.masked,
          ),
        );
        if (!mid && masked > 4 && masked < 28) {
          await page.screenshot({ path: `${shots}/playground-mid.png` });
          mid = true;
        }
        return (await page.$eval(
          "#app",
          (e) => (e as HTMLElement).dataset.done,
        )) === "2";
      }, 120_000);
      const browserMasks = await page.evaluate(() =>
        (globalThis as unknown as { masks: number[] }).masks
      );
      assert(
        decreasingToZero(browserMasks) &&
          browserMasks.some((m) => m > 0 && m < 30),
        `browser frames: ${browserMasks}`,
      );
      assert(
        (await page.$eval('[data-testid="stats-d3pm"]', (e) => e.textContent))!
          .includes("this browser (WebGPU)"),
      );
      if (!mid) await page.screenshot({ path: `${shots}/playground-mid.png` });

      // One law: 600 rows filled by the server's sampler (tfjs) and by the
      // browser's engine, the same prompt, 3 blanks, 2 ancestral steps.
      const N = 600, STEPS = 2;
      const trained = await loadTrained(run, { model: "d3pm" });
      const process = trained.process as unknown as MaskedDiffusion;
      const mask = process.spec.maskId;
      const text = Array.from(
        new TextEncoder().encode(
          " = Robert Boulter = \n Robert Boulter is an English",
        ),
      );
      const row = text.slice(0, 32);
      for (const i of [9, 10, 11]) row[i] = mask;
      const rows = new Int32Array(N * 32);
      for (let r = 0; r < N; r++) rows.set(row, r * 32);
      let serverAfter1: Int32Array | undefined;
      const server = await process.fillBlanks(trained.model, rows, {
        batchSize: N,
        steps: STEPS,
        prng: prng(7),
        onStep: (s) => {
          if (s.step === 1) serverAfter1 = s.tokens;
        },
      });
      trained.model.dispose();
      const fromBrowser = await page.evaluate(
        async (row, N, STEPS) => {
          const d3pm = (globalThis as unknown as {
            d3pm: {
              BrowserModel: {
                shared: (
                  ...a: unknown[]
                ) => Promise<
                  {
                    generate: (
                      ...a: unknown[]
                    ) => Promise<{ tokens: Int32Array }>;
                  }
                >;
              };
            };
          }).d3pm;
          const info = await (await fetch(
            "/api/run/unmasking?run=micro&seed=0&model=d3pm",
          )).json();
          const model = await d3pm.BrowserModel.shared("micro", 0, info); // the playground's, kernels compiled
          let after1: number[] = [];
          const out = await model.generate(
            {
              prompt: Int32Array.from(row),
              batch: N,
              steps: STEPS,
              sampler: "ancestral",
              temperature: 1,
              topP: 1,
              rng: 11,
            },
            (f: { step: number; tokens: Int32Array }) => {
              if (f.step === 1) after1 = Array.from(f.tokens);
            },
          );
          return { tokens: Array.from(out.tokens), after1 };
        },
        row,
        N,
        STEPS,
      );
      const at = (t: ArrayLike<number>, pos: number) =>
        Array.from({ length: N }, (_, r) => t[r * 32 + pos]);
      const masksLeft = (t: ArrayLike<number>) =>
        Array.from(
          { length: N },
          (_, r) => [9, 10, 11].filter((i) => t[r * 32 + i] === mask).length,
        );
      const tokenTest = homogeneity(
        at(server.tokens, 9),
        at(fromBrowser.tokens, 9),
      );
      const revealTest = homogeneity(
        masksLeft(serverAfter1!),
        masksLeft(fromBrowser.after1),
      );
      console.log(
        JSON.stringify({
          law: "browser WebGPU vs server tfjs",
          rows: N,
          steps: STEPS,
          token: tokenTest,
          revealed: revealTest,
        }),
      );
      assert(
        !fromBrowser.tokens.includes(mask) &&
          !Array.from(server.tokens).includes(mask),
        "every blank filled",
      );
      // Each side against the exact law of step 1: every blank stays masked
      // with probability 1 − reveal, independently (Binomial(3, ·)).
      const T = process.spec.steps;
      const aT = process.discrete.alphaBar(T);
      const aS = process.discrete.alphaBar(T / 2);
      const stay = 1 - (aS - aT) / (1 - aT);
      const exact = [0, 1, 2, 3].map((k) =>
        [1, 3, 3, 1][k] * stay ** k * (1 - stay) ** (3 - k)
      );
      const sides = [
        ["server", masksLeft(serverAfter1!)],
        ["browser", masksLeft(fromBrowser.after1)],
      ] as const;
      for (const [side, left] of sides) {
        const fit = goodnessOfFit(left, exact);
        console.log(JSON.stringify({ side, masksLeftAfterStep1: fit }));
        assert(
          fit.p > 1e-3,
          `${side}: masks left after step 1 against Binomial(3, ${stay}): χ² ${fit.chi2}, p ${fit.p}`,
        );
      }
      assert(
        tokenTest.categories >= 3,
        `the token law has several outcomes (${tokenTest.categories})`,
      );
      assert(
        tokenTest.p > 1e-3,
        `token at the first blank: χ² ${tokenTest.chi2} on ${tokenTest.df} df, p ${tokenTest.p}`,
      );
      assert(
        revealTest.p > 1e-3,
        `masks left after step 1: χ² ${revealTest.chi2} on ${revealTest.df} df, p ${revealTest.p}`,
      );

      // The static export opens from disk.
      const site = `${root}/site`;
      await exportDashboard(root, site, { runs: ["micro"] });
      await page.goto(`file://${site}/index.html#/run/micro`);
      await page.waitForSelector(".report-table", { timeout: 20_000 });
      assert(
        await page.$$eval(".chart-svg polyline", (p) => p.length) >= 1,
        "the exported curve",
      );
      assertEquals(errors, [], "no error in the page");
      console.log(`screenshots: ${shots}`);
    } finally {
      await close();
      await server.shutdown();
      await generation.close();
      try {
        training.kill();
      } catch { /* done */ }
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});
