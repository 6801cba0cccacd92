/// <reference lib="dom" />
// The playground's BD3 panel in headless Chromium, quick: a run folder of
// micro models (untrained weights, made here) served from tfjs; the page
// lists bd3, labels its steps per block, fills its row block by block from
// the server, keeps its row from being hidden (it fills no blanks), and says
// it runs on the server only. A screenshot goes to $D3PM_SCREENSHOTS
// (printed), if set.
import { assert, assertEquals } from "@std/assert";
import * as tf from "@tensorflow/tfjs";
import { ignoreUnless } from "@d3pm/core/testing";
import {
  contestantOf,
  type ContestantProcess,
  placeModel,
  resolveConfig,
} from "@d3pm/experiment";
import { ByteTokenizer } from "@d3pm/tokenizer";
import { Transformer } from "@d3pm/transformer";
import { GenerationService, type LoadedModel } from "@d3pm/dashboard";
import { launchChromium } from "./_browser.ts";
import {
  missing,
  screenshotsFolder,
  serveDashboard,
  textOf,
  until,
  watchMasks,
} from "./_dashboard_browser.ts";
import { fakeRun } from "../dashboard/_test_util.ts";
import { withTeardown } from "./_teardown.ts";

Deno.test({
  name:
    "the playground in Chromium shows bd3 block by block from the server, its steps per block, its row not hideable",
  ignore: ignoreUnless("chromium", missing),
  sanitizeOps: false,
  sanitizeResources: false,
  // Each step of the teardown runs whatever throws; its error is logged,
  // never reported in place of the test's own.
  fn: () =>
    withTeardown(async (defer) => {
      await tf.setBackend("cpu");
      const { shots, kept } = await screenshotsFolder(defer);
      const root = await Deno.makeTempDir({ prefix: "d3pm-dash-bd3-" });
      defer(`removing ${root}`, () => Deno.remove(root, { recursive: true }));
      const tokenizer = new ByteTokenizer();
      const config = resolveConfig({
        preset: "micro",
        models: "ar,bd3",
        "block-length": 16,
        "bd3-block": 4,
        "n-layer": 1,
        "d-model": 8,
        "n-head": 1,
        tokenizer: "byte",
      });
      const specials = {
        bos: tokenizer.special.bos,
        eos: tokenizer.special.eos,
        pad: tokenizer.special.pad,
        mask: tokenizer.special.mask,
      };
      await fakeRun(`${root}/run`, { models: "ar,bd3" });
      // The run's own configuration (16 tokens, blocks of 4), real processes.
      await Deno.writeTextFile(
        `${root}/run/config.json`,
        JSON.stringify({ ...config, out: `${root}/run` }),
      );
      for (const kind of ["ar", "bd3"]) {
        await Deno.writeTextFile(
          `${root}/run/seed-0/${kind}/process.json`,
          JSON.stringify(
            contestantOf(kind).process(config, { tokenizer, specials })
              .toJSON(),
          ),
        );
      }
      const load = async (_dir: string, _seed: number, kind: string) => {
        const c = contestantOf(kind);
        const model = new Transformer(c.modelConfig(config, 260), { seed: 0 });
        return {
          contestant: c,
          process: c.process(config, {
            tokenizer,
            specials,
          }) as ContestantProcess,
          tokenizer,
          length: 16,
          placed: await placeModel(model, "tfjs", kind),
        } as LoadedModel;
      };
      const generation = new GenerationService(load);
      defer("closing the generation service", () => generation.close());
      const { server, url } = await serveDashboard({
        root,
        generation,
        pollMs: 100,
      });
      defer("shutting the dashboard down", () => server.shutdown());
      const { browser, close } = await launchChromium();
      defer("closing Chromium", close);
      const errors: string[] = [];
      const page = await browser.newPage();
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.setViewport({ width: 1280, height: 800 });
      await page.goto(`${url}/#/play/run`);
      await page.waitForSelector('.tokens[data-model="bd3"]', {
        timeout: 20_000,
      });
      const head = await page.$eval(
        '[data-panel="bd3"] .card-head',
        (e) => e.textContent ?? "",
      );
      assert(head.includes("blocks of 4"), head);
      const label = await page.$eval(
        "label:has(#steps)",
        (e) => e.textContent ?? "",
      );
      assert(label.includes("per block"), label);
      await page.$eval(
        "#steps",
        (e) => ((e as HTMLInputElement).value = "2"),
      );
      await watchMasks(page, "bd3");
      await page.type("#prompt", "ab");
      await page.click("#generate");
      await until(
        "the server's generation",
        async () =>
          await page.$eval("#app", (e) => (e as HTMLElement).dataset.done) ===
            "1",
      );
      const masks = await page.evaluate(() =>
        (globalThis as unknown as { masks: number[] }).masks
      );
      // 14 to generate, 8 steps: start, then a frame per step down to 0.
      assertEquals(masks[0], 14, `${masks}`);
      assertEquals(masks.at(-1), 0, `${masks}`);
      assert(masks.every((m, i) => i === 0 || m <= masks[i - 1]), `${masks}`);
      const stats = await page.$eval(
        '[data-testid="stats-bd3"]',
        (e) => e.textContent ?? "",
      );
      assert(stats.includes("step 8/8 (2/block: block 4/4)"), stats);
      const first = await page.$eval(
        '.tokens[data-model="bd3"]',
        (e) => e.textContent ?? "",
      );
      assert(first.startsWith("ab"), first);
      await page.screenshot({ path: `${shots}/playground-bd3.png` });
      if (kept) console.log(`screenshot: ${shots}/playground-bd3.png`);
      // Its row is not hidden by a click: it fills no blanks.
      await page.click('.tokens[data-model="bd3"] [data-pos="5"]');
      assertEquals(
        await page.$$eval(
          '.tokens[data-model="bd3"] .hidden-by-user',
          (x) => x.length,
        ),
        0,
      );
      // In the browser: the panel says it runs on the server only.
      const gpu = await page.$eval("#webgpu-status", (e) => e.textContent);
      if (gpu?.startsWith("WebGPU: ")) {
        await page.select("#where", "browser");
        await page.click("#generate");
        const stats = () => textOf(page, '[data-testid="stats-bd3"]');
        await until(
          "the server-only note",
          async () => (await stats())?.includes("server only"),
        ).catch(() => {});
        const said = await stats() ?? "";
        assert(said.includes("block attention"), said);
      }
      assertEquals(errors, []);
    }),
});
