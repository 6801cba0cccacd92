/// <reference lib="dom" />
// The dashboard in a real browser (headless Chromium with WebGPU): a micro
// run trains while the run page follows its curve, then the report's tables
// show, and the playground generates with the D3PM on the server and in the
// browser's WebGPU, frames showing masks filling in. The browser's engine
// and the server's sampler are held to the same law by a χ² test.
// Screenshots go to $D3PM_SCREENSHOTS (printed), if set.
import { assert, assertEquals } from "@std/assert";
import * as tf from "@tensorflow/tfjs";
import { prng, tokenProbabilities } from "@d3pm/core";
import { ignoreUnless } from "@d3pm/core/testing";
import { initBackend } from "@d3pm/backend";
import { loadTrained } from "@d3pm/experiment";
import type { MaskedDiffusion } from "@d3pm/diffusion";
import {
  exportDashboard,
  GenerationService,
  trainedModelLoader,
} from "@d3pm/dashboard";
import { launchChromium } from "./_browser.ts";
import {
  missing,
  screenshotsFolder,
  serveDashboard,
  textOf,
  until,
  watchMasks,
} from "./_dashboard_browser.ts";
import {
  type Draw,
  drawsTest,
  goodnessOfFit,
  goodnessOfFitPower,
  homogeneity,
} from "./_chi2.ts";
import { drawFrom } from "../core/_test_stats.ts";
import { ROOT } from "./_run.ts";
import { withTeardown } from "./_teardown.ts";

const decreasingToZero = (xs: number[]) =>
  xs.length > 2 && xs.at(-1) === 0 &&
  xs.every((x, i) => i === 0 || x <= xs[i - 1]);

Deno.test({
  name:
    "the dashboard in Chromium: live curve, report tables, D3PM frames on the server and on the browser's WebGPU, one law (χ²)",
  ignore: ignoreUnless("chromium", missing),
  sanitizeOps: false,
  sanitizeResources: false,
  // Each step of the teardown runs whatever throws; its error is logged,
  // never reported in place of the test's own.
  fn: () =>
    withTeardown(async (defer) => {
      const { shots, kept } = await screenshotsFolder(defer);
      const root = await Deno.makeTempDir({ prefix: "d3pm-dash-" });
      // The training, killed, may still be writing its last files.
      defer(
        `removing ${root}`,
        () => Deno.remove(root, { recursive: true }).catch(() => {}),
      );
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
      defer("stopping the training", () => {
        try {
          training.kill();
        } catch { /* done */ }
      });
      const trainingLog = new Response(training.stderr).text();
      await initBackend({ prefer: "auto" });
      const generation = new GenerationService(trainedModelLoader("tfjs"));
      defer("closing the generation service", () => generation.close());
      const { server: dashboard, url: base } = await serveDashboard({
        root,
        generation,
        pollMs: 100,
      });
      defer("shutting the dashboard down", () => dashboard.shutdown());
      const { browser, close } = await launchChromium();
      defer("closing Chromium", close);
      const errors: string[] = [];
      const page = await browser.newPage();
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.setViewport({ width: 1280, height: 1000 });

      // The run page while it trains: the curve grows from appended lines.
      await until(
        "the first metrics",
        async () =>
          (await Deno.readTextFile(`${run}/metrics.jsonl`)).length > 0,
      );
      // The runs list names the running run's command, from its lock (the
      // script's folder left out).
      await page.goto(`${base}/#/`);
      const liveCommand = await until(
        "the running run's command",
        () => textOf(page, 'tr[data-run="micro"] .command'),
        20_000,
      );
      assert(
        liveCommand.startsWith(
          "deno …/examples/experiment.ts --preset micro --steps 150 ",
        ),
        liveCommand,
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
      await page.screenshot({
        path: `${shots}/run-live.png`,
        fullPage: false,
      });

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
            // Steps are the denoiser's (the AR model refuses them).
            ...(model === "d3pm" ? ["--steps", "4"] : []),
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
      // Finished: the command results.json records.
      const doneCommand = await textOf(page, 'tr[data-run="micro"] .command');
      assert(
        doneCommand?.startsWith(
          "deno task experiment --preset micro --steps 150 ",
        ),
        doneCommand,
      );
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
      await page.$eval(
        "#steps",
        (e) => ((e as HTMLInputElement).value = "8"),
      );
      await watchMasks(page, "d3pm");
      await page.click("#generate");
      await until(
        "the server's generation",
        async () =>
          (await page.$eval(
            "#app",
            (e) => (e as HTMLElement).dataset.done,
          )) ===
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
        (await page.$eval(
          '[data-testid="stats-d3pm"]',
          (e) => e.textContent,
        ))!
          .includes("tokens/s"),
      );

      // The same in the browser's WebGPU.
      // The page's adapter check runs beside the server's generation; wait
      // for its verdict (it read "checking WebGPU…" once, CI under load).
      const gpu = await until("the page's WebGPU check", async () => {
        const text = await page.$eval(
          "#webgpu-status",
          (e) => e.textContent ?? "",
        );
        return text.startsWith("checking") ? undefined : text;
      });
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
        (await page.$eval(
          '[data-testid="stats-d3pm"]',
          (e) => e.textContent,
        ))!
          .includes("this browser (WebGPU)"),
      );
      if (!mid) {
        await page.screenshot({ path: `${shots}/playground-mid.png` });
      }

      // Temperature 0 (greedy): the browser's engine has no synchronous
      // forward pass, so its D3PM panel says greedy runs on the server; the
      // server then runs it to the end.
      await page.$eval(
        "#temperature",
        (e) => ((e as HTMLInputElement).value = "0"),
      );
      const greedyDone = (n: string) => async () =>
        (await page.$eval("#app", (e) => (e as HTMLElement).dataset.done)) ===
          n;
      await page.click("#generate");
      await until("the browser's greedy refusal", greedyDone("3"));
      const refusal = await page.$eval(
        '[data-testid="stats-d3pm"]',
        (e) => e.textContent ?? "",
      );
      assert(
        refusal.startsWith(
          "error: temperature 0 (greedy) unmasks on the server only",
        ),
        refusal,
      );
      await page.select("#where", "server");
      await watchMasks(page, "d3pm");
      await page.click("#generate");
      await until("the server's greedy generation", greedyDone("4"));
      const greedyMasks = await page.evaluate(() =>
        (globalThis as unknown as { masks: number[] }).masks
      );
      assert(decreasingToZero(greedyMasks), `greedy frames: ${greedyMasks}`);
      await page.$eval(
        "#temperature",
        (e) => ((e as HTMLInputElement).value = "1"),
      );

      // Infilling on the server: click three tokens of the D3PM's row to
      // hide them, then fill them in. The denoiser starts from the row with
      // exactly those positions masked and fills them; the others stay.
      const d3pmRow = '.tokens[data-model="d3pm"]';
      const ids = () =>
        page.$$eval(
          `${d3pmRow} .tok`,
          (spans) =>
            spans.map((s) => Number(s.getAttribute("title")!.split("id ")[1])),
        );
      const before = await ids();
      const HIDE = [3, 10, 20];
      for (const i of HIDE) await page.click(`${d3pmRow} [data-pos="${i}"]`);
      assertEquals(
        await page.$$eval(
          `${d3pmRow} .hidden-by-user`,
          (spans) => spans.map((s) => Number(s.getAttribute("data-pos"))),
        ),
        HIDE,
      );
      await watchMasks(page, "d3pm");
      await page.click("#fill");
      await until("the server's infilling", greedyDone("5"));
      const fillMasks = await page.evaluate(() =>
        (globalThis as unknown as { masks: number[] }).masks
      );
      assert(
        fillMasks[0] === HIDE.length && decreasingToZero(fillMasks),
        `infilling frames: ${fillMasks}`,
      );
      const after = await ids();
      assertEquals(after.length, before.length);
      assertEquals(
        after.filter((_, i) => !HIDE.includes(i)),
        before.filter((_, i) => !HIDE.includes(i)),
        "the tokens left visible are kept",
      );
      assertEquals(
        await page.$eval(d3pmRow, (e) => (e as HTMLElement).dataset.masked),
        "0",
      );
      await page.select("#where", "browser");

      // A browser without WebGPU: the playground says so and keeps the
      // server.
      const noGpu = await browser.newPage();
      defer(
        "closing the page without WebGPU",
        () => noGpu.close().catch(() => {}),
      );
      await noGpu.evaluateOnNewDocument(() => {
        delete (Navigator.prototype as unknown as { gpu?: unknown }).gpu;
      });
      await noGpu.goto(`${base}/#/play/micro`);
      const noGpuNote = await until(
        "the page without WebGPU saying so",
        async () => {
          const t = await textOf(noGpu, "#webgpu-status");
          return t && !t.startsWith("checking") ? t : undefined;
        },
        20_000,
      );
      assert(
        noGpuNote.startsWith(
          "No WebGPU here: this browser has no WebGPU (navigator.gpu is missing)",
        ),
        noGpuNote,
      );
      assertEquals(
        await noGpu.$eval("#where", (e) => {
          const s = e as HTMLSelectElement;
          return [s.value, s.options[1].disabled];
        }),
        ["server", true],
      );
      await noGpu.close(); // idle from here on (its teardown's close: no-op)

      // One law: N rows filled by the server's sampler (tfjs) and by the
      // browser's engine, the same prompt, 3 blanks, 2 ancestral steps at
      // top-p 0.9. Each side is held to the exact law, draw by draw: a blank
      // revealed at step 1 was drawn from the model's probabilities at the
      // prompt (t = 1), one revealed at step 2 from those at the row after
      // step 1 (t = ½) — both computed here with the tfjs model and core's
      // float64 tokenProbabilities. The statistic towards each near miss is
      // its likelihood ratio (drawsTest, z > 4.5 rejects); the masks left
      // after step 1 fit Binomial(3, 1 − reveal) (χ², p < 1e-3 rejects).
      // Power, computed inside the test at these N and thresholds and
      // asserted ≥ 0.99: temperature 0.9 or 1.1 instead of 1, top-p off,
      // the reveal probability halved, 3 steps' reveal for 2 (off by one).
      // Measured at N = 600 (docs/testing.md): towards temperature 0.9 the
      // expected z is 8.5; 1.1 and top-p off draw outside the 0.9 nucleus
      // (the ratio alone expects z 4.7 for 1.1: top-p < 1 is what catches
      // it); float64 draws from each near miss are rejected here too.
      const N = 600, STEPS = 2, TOP_P = 0.9, BLANKS = [9, 10, 11];
      const trained = await loadTrained(run, { model: "d3pm" });
      const process = trained.process as unknown as MaskedDiffusion;
      const mask = process.spec.maskId;
      const text = Array.from(
        new TextEncoder().encode(
          " = Robert Boulter = \n Robert Boulter is an English",
        ),
      );
      const row = text.slice(0, 32);
      for (const i of BLANKS) row[i] = mask;
      const rows = new Int32Array(N * 32);
      for (let r = 0; r < N; r++) rows.set(row, r * 32);
      let serverAfter1: Int32Array | undefined;
      const server = await process.fillBlanks(trained.model, rows, {
        batchSize: N,
        steps: STEPS,
        topP: TOP_P,
        prng: prng(7),
        onStep: (s) => {
          if (s.step === 1) serverAfter1 = s.tokens;
        },
      });
      const fromBrowser = await page.evaluate(
        async (row, N, STEPS, TOP_P) => {
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
              topP: TOP_P,
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
        TOP_P,
      );
      const sides = [
        ["server", serverAfter1!, server.tokens],
        ["browser", fromBrowser.after1, fromBrowser.tokens],
      ] as const;
      for (const [side, , final] of sides) {
        assert(
          !Array.from(final).includes(mask),
          `${side}: every blank filled`,
        );
      }

      // The exact laws of every draw.
      const T = process.spec.steps;
      const logitsAt = async (
        ids: ArrayLike<number>,
        n: number,
        t: number,
      ) => {
        const out = tf.tidy(() =>
          trained.model.forward(tf.tensor2d(Int32Array.from(ids), [n, 32]), {
            t: tf.fill([n], t),
            training: false,
          })
        );
        const data = (await out.data()) as Float32Array;
        out.dispose();
        return data;
      };
      const atPrompt = await logitsAt(row, 1, 1);
      const V = atPrompt.length / 32;
      const truth = { temperature: 1, topP: TOP_P };
      const MISSES = [
        ["temperature 0.9", { temperature: 0.9, topP: TOP_P }],
        ["temperature 1.1", { temperature: 1.1, topP: TOP_P }],
        ["top-p off", { temperature: 1, topP: 1 }],
      ] as const;
      const laws = (logits: Float32Array, at: number) =>
        [truth, ...MISSES.map(([, o]) => o)].map((o) =>
          tokenProbabilities(logits.subarray(at * V, (at + 1) * V), {
            ...o,
            suppress: [mask],
          })
        );
      const firstLaws = new Map(BLANKS.map((i) => [i, laws(atPrompt, i)]));
      const drawsOf = async (
        after1: ArrayLike<number>,
        final: ArrayLike<number>,
      ): Promise<Draw[]> => {
        const second = await logitsAt(after1, N, Math.round(T / 2) / T);
        const draws: Draw[] = [];
        for (let r = 0; r < N; r++) {
          for (const i of BLANKS) {
            const at = r * 32 + i;
            const early = after1[at] !== mask;
            const [p, ...q] = early ? firstLaws.get(i)! : laws(second, at);
            draws.push({ x: early ? after1[at] : final[at], p, q });
          }
        }
        return draws;
      };
      const labels = MISSES.map(([label]) => label);
      const masksLeft = (t: ArrayLike<number>) =>
        Array.from(
          { length: N },
          (_, r) => BLANKS.filter((i) => t[r * 32 + i] === mask).length,
        );
      const stayWith = (reveal: number) =>
        [0, 1, 2, 3].map((k) =>
          [1, 3, 3, 1][k] * (1 - reveal) ** k * reveal ** (3 - k)
        );
      const aT = process.discrete.alphaBar(T);
      const revealAt = (s: number) =>
        (process.discrete.alphaBar(s) - aT) / (1 - aT);
      const reveal = revealAt(Math.round(T / 2));
      const exact = stayWith(reveal);
      const revealMisses = [
        ["reveal halved", stayWith(reveal / 2)],
        ["3 steps' reveal for 2", stayWith(revealAt(Math.round(2 * T / 3)))],
      ] as const;
      // The two sides against each other (their final token at the first
      // blank, their masks left after step 1), asserted last: a consistency
      // check with little power of its own against the temperature near
      // misses (docs/testing.md); the exact-law tests below hold each side.
      const at = (t: ArrayLike<number>, pos: number) =>
        Array.from({ length: N }, (_, r) => t[r * 32 + pos]);
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
      const next = prng(123);
      for (const [side, after1, final] of sides) {
        const draws = await drawsOf(after1, final);
        const verdict = drawsTest(draws, labels);
        const fit = goodnessOfFit(masksLeft(after1), exact);
        const revealPower = revealMisses.map(([label, q]) => ({
          label,
          power: goodnessOfFitPower(exact, q, N, 1e-3),
        }));
        console.log(
          JSON.stringify({
            side,
            draws: draws.length,
            impossible: verdict.impossible,
            towards: verdict.towards,
            masksLeftAfterStep1: fit,
            revealPower,
          }),
        );
        assertEquals(
          verdict.rejected,
          null,
          `${side}: the draws against the exact law`,
        );
        assert(
          fit.p > 1e-3,
          `${side}: masks left after step 1 against Binomial(3, ${
            1 - reveal
          }): χ² ${fit.chi2}, p ${fit.p}`,
        );
        for (const { label, power } of [...verdict.towards, ...revealPower]) {
          assert(power >= 0.99, `${side}: power against ${label} ${power}`);
        }
        if (side !== "server") continue;
        // The statistics reject float64 draws from each near miss.
        labels.forEach((label, m) => {
          const wrong = draws.map((d) => ({
            ...d,
            x: drawFrom(d.q[m], 1, () => next.next())[0],
          }));
          const seen = drawsTest(wrong, labels);
          assert(seen.rejected !== null, `draws with ${label} pass`);
          console.log(JSON.stringify({ nearMiss: label, ...seen }));
        });
        for (const [label, q] of revealMisses) {
          const left = Array.from(
            { length: N },
            () => drawFrom(q, 1, () => next.next())[0],
          );
          const seen = goodnessOfFit(left, exact);
          assert(seen.p < 1e-3, `masks left with ${label} pass: p ${seen.p}`);
          console.log(JSON.stringify({ nearMiss: label, p: seen.p }));
        }
      }
      trained.model.dispose();
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

      // A run deleted while its page follows it: the stream's last event
      // names why, and the page says so instead of reconnecting.
      const doomed = `${root}/doomed`;
      await Deno.mkdir(doomed);
      for (const f of ["config.json", "metrics.jsonl"]) {
        await Deno.copyFile(`${run}/${f}`, `${doomed}/${f}`);
      }
      await page.goto(`${base}/#/run/doomed`);
      await until(
        "the copy's log caught up",
        async () =>
          (await page.$eval(
            "[data-testid=live-state]",
            (e) => e.textContent,
          )) ===
            "complete",
      );
      await Deno.remove(doomed, { recursive: true });
      await until(
        "the page saying the run is gone",
        async () =>
          (await page.$eval(
            "[data-testid=live-state]",
            (e) => e.textContent,
          )) ===
            "Run doomed's folder is gone (deleted or moved): nothing more to follow",
        10_000,
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
      console.log(
        kept
          ? `screenshots: ${shots}`
          : "screenshots: set D3PM_SCREENSHOTS=DIR to keep them",
      );
    }),
});
