// A contestant the project does not ship, defined and registered in this
// file alone, goes through everything the built-in ones do: --models, the
// experiment, results.json, the report and samples, run loading, and the
// sample and infill tools.
import { assert, assertEquals, assertMatch } from "@std/assert";
import { type MaskedLanguageModel, maskedLanguageModel } from "@d3pm/diffusion";
import {
  backbone,
  type Contestant,
  fillText,
  generateByUnmasking,
  infillFigures,
  likelihoodFigures,
  loadTrained,
  maskedEngineShape,
  measureGeneration,
  modelList,
  readRun,
  registerContestant,
  resolveConfig,
  runExperiment,
  sampleText,
  testBound,
  unmaskingBy,
  validateOver,
} from "@d3pm/experiment";

/** A masked language model that hides half the tokens (BERT hides 15%). */
const TOY: Contestant<MaskedLanguageModel> = {
  kind: "toy",
  label: { short: "Toy", title: "Toy (MLM at 50%)" },
  network: "bidirectional",
  seedStream: 9,
  bound: true,
  validation: { name: "masked loss", bound: false },
  unmasking: unmaskingBy("ancestral"),
  process: (c, data) =>
    maskedLanguageModel({
      kind: "masked-language-model",
      vocab: data.tokenizer.vocabSize,
      maskId: data.specials.mask,
      rate: 0.5,
      padId: data.specials.pad,
      steps: c.diffusionSteps,
    }),
  restore: (spec) =>
    maskedLanguageModel(spec as Parameters<typeof maskedLanguageModel>[0]),
  modelConfig: (c, vocab) => backbone(c, vocab, { kind: "bidirectional" }),
  peakLr: (c) => c.lr,
  engine: maskedEngineShape,
  validate: (p, model, data) =>
    validateOver(data, (x0, rng) => p.maskedNll(model, x0, { prng: rng })),
  async evaluate(p, model, ctx) {
    const { config: c } = ctx;
    const test = await testBound(p, model, ctx);
    const genRng = ctx.rng.fork("toy-generation");
    const { tokens: samples, ...generation } = await measureGeneration(
      ctx,
      () =>
        p.sample(model, {
          batchSize: c.genBatch,
          length: c.blockLength,
          steps: 4,
          prng: genRng,
        }),
    );
    return {
      result: {
        model: "toy",
        test: likelihoodFigures(test, ctx, true),
        generation,
        infill: await infillFigures(model, p, ctx),
      },
      samples,
    };
  },
  generate: generateByUnmasking,
};

Deno.test("a contestant registered in one file trains, evaluates, reports, loads, samples and fills blanks", async () => {
  registerContestant(TOY);
  const out = await Deno.makeTempDir();
  try {
    const config = resolveConfig({
      preset: "micro",
      models: "toy,ar",
      out,
      steps: 40,
      warmup: 5,
      checkpointEvery: 40,
      validEvery: 20,
      evalBlocks: 4,
      elboSamples: 1,
      exactBlocks: 0,
      genTokens: 32,
      genSteps: "4",
      judge: "self",
    });
    assertEquals(modelList(config), ["ar", "toy"]); // registration order
    const result = await runExperiment(config, {
      log: () => {},
      progress: false,
    });
    const toy = result.results.find((m) => m.model === "toy")!;
    assert(toy.test.bound && Number.isFinite(toy.test.nll), "bound");
    assert(toy.test.nll < Math.log(260), `${toy.test.nll} ≥ ln 260`);
    assertEquals(toy.training.tokens, 40 * 16 * 32);
    assert(toy.infill!.hidden > 0 && toy.infill!.accuracy >= 0);
    // The same blanks as any other infilling contestant would get.
    assertEquals(toy.infill!.fraction, config.infillFraction);
    assertEquals(
      JSON.parse(await Deno.readTextFile(`${out}/results.json`)).results[1]
        .model,
      "toy",
    );
    const report = await Deno.readTextFile(`${out}/report.md`);
    assert(
      report.startsWith("# AR vs Toy — micro preset"),
      report.slice(0, 40),
    );
    assertMatch(report, /\| Toy \(MLM at 50%\) \| 0 \| ≤ \d+\.\d\d \|/);
    assert(report.includes("## Infilling (Toy)"));
    assertMatch(report, /\| 0 \| Toy \| – \| /); // its speed row, by default
    assert(
      (await Deno.readTextFile(`${out}/samples.txt`)).includes(
        "--- Toy sample 1 ---",
      ),
    );
    const process = JSON.parse(
      await Deno.readTextFile(`${out}/seed-0/toy/process.json`),
    );
    assertEquals([process.kind, process.rate], ["masked-language-model", 0.5]);

    const state = await readRun(out);
    assertEquals(state.status, "finished");
    assertEquals(state.models.map((m) => [m.kind, m.trained]), [
      ["ar", true],
      ["toy", true],
    ]);
    const loaded = await loadTrained(out, { model: "toy" });
    assertEquals(loaded.contestant, TOY);
    // Rebuilt by the contestant (process.json also records the weights'
    // SHA-256 and seed and the training's figures, which are not the
    // process's).
    const { weightsSha256: _, weightsSeed: __, training: ___, ...own } =
      process;
    assertEquals(loaded.process.toJSON(), own);
    loaded.model.dispose();

    const tool = { run: out, model: "toy", seed: 0, engine: "tfjs" as const };
    const lines: string[] = [];
    await sampleText({
      ...tool,
      steps: 4,
      every: 2,
      rng: 0,
      quiet: false,
      count: 1,
      temperature: 1,
      topP: 1,
    }, (l) => lines.push(l));
    assert(lines.includes("--- step 2/4 (2 forward passes) ---"), lines[0]);
    assert(lines.some((l) => l.startsWith("=== sample 1")));
    // The AR model's samples get the same header (they ran together), and
    // --quiet prints only the texts.
    for (const quiet of [false, true]) {
      const ar: string[] = [];
      await sampleText({
        ...tool,
        model: "ar",
        rng: 0,
        quiet,
        count: 2,
        temperature: 1,
        topP: 1,
      }, (l) => ar.push(l));
      assertEquals(
        ar.filter((l) => l.startsWith("=== sample ")).map((l) =>
          l.replace(/\(\d+ forward passes\)/, "(N forward passes)")
        ),
        quiet ? [] : [
          "=== sample 1 (N forward passes) ===",
          "=== sample 2 (N forward passes) ===",
        ],
      );
      assertEquals(ar.length, quiet ? 2 : 4);
    }
    const filled: string[] = [];
    await fillText(
      { ...tool, text: "ab[MASK*3]cd", steps: 4, rng: 0, quiet: true },
      (l) => filled.push(l),
    );
    assertEquals(filled.length, 1);
    assert(filled[0].startsWith("ab") && filled[0].endsWith("cd"), filled[0]);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
