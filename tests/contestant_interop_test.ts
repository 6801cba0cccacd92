// Contestants the project does not ship, registered in this file, go
// through export, import (and import --force) and evaluate as the
// registry describes them: no tool decides a contestant by a list of the
// built-in kinds or by which methods its process happens to have.
import { assertEquals, assertRejects } from "@std/assert";
import {
  AR,
  ConfigError,
  MLM,
  readRun,
  registerContestant,
  scoreTest,
} from "@d3pm/experiment";
import { exportRun, importCheckpoint, InteropError } from "@d3pm/hf";
import { dashboardHandler, GenerationService } from "@d3pm/dashboard";
import { fakeRun } from "../hf/_test_util.ts";
import { fakeLoader } from "../dashboard/_test_util.ts";

/**
 * A second causal contestant: AR's process and network under its own kind,
 * scored by `deno task evaluate` with a figure of its own (drawn: it takes
 * `--samples`), although its process has AR's exact `score`.
 */
const CAUSAL = {
  ...AR,
  kind: "causal-two",
  label: { short: "C2", title: "C2 (causal)" },
  seedStream: 21,
  scoring: {
    draws: true,
    score: () => Promise.resolve({ nats: 1.5, stderr: 0.25, tokens: 7 }),
  },
};
/**
 * A second denoiser: the MLM's process and network under its own kind,
 * which declares no test scoring (although its process has a bound).
 */
const DENOISER = {
  ...MLM,
  kind: "denoiser-two",
  label: { short: "D2", title: "D2 (masked)" },
  seedStream: 22,
  scoring: undefined,
};
/**
 * A denoiser that neither unmasks nor draws left to right: it generates by
 * its own `generate` alone (the MLM's, here), which the page's bundle lacks.
 */
const PLAIN = {
  ...DENOISER,
  kind: "plain-two",
  seedStream: 23,
  unmasking: undefined,
};
registerContestant(CAUSAL);
registerContestant(DENOISER);
registerContestant(PLAIN);

Deno.test("registered contestants: evaluate asks each how it is scored, the dashboard offers the browser only what its bundle runs, an export imports back as its contestant, and import --force replaces that import", async () => {
  const root = await Deno.makeTempDir();
  try {
    const run = `${root}/run`;
    await fakeRun(run, {
      emaDecay: 0,
      models: "causal-two,denoiser-two,plain-two",
    });
    // The dashboard offers the browser's engine only for what its bundle
    // runs: the AR process, and a masked diffusion or MLM that unmasks.
    const handler = dashboardHandler({
      root,
      generation: new GenerationService(fakeLoader(), {}),
    }, { page: { html: "", js: "", css: "" } });
    const serverOnly: Record<string, unknown> = {};
    for (const kind of ["causal-two", "denoiser-two", "plain-two"]) {
      const res = await handler(
        new Request(
          `http://127.0.0.1/api/run/unmasking?run=run&seed=0&model=${kind}`,
        ),
      );
      assertEquals(res.status, 200, kind);
      serverOnly[kind] = (await res.json()).tfjsOnly;
    }
    assertEquals(serverOnly, {
      "causal-two": undefined,
      "denoiser-two": undefined,
      "plain-two":
        "the page's bundle holds the AR, D3PM and MLM samplers only, not the plain-two contestant's own generator",
    });
    // The tools' --model help lists what is registered.
    const { TRAINED_MODEL_OPTION } = await import(
      "../examples/_tool_options.ts"
    );
    assertEquals(
      TRAINED_MODEL_OPTION.help,
      "the contestant: ar, d3pm, mlm, bd3, causal-two, denoiser-two, plain-two (one the run trained)",
    );
    // deno task evaluate asks the contestant, not its process's methods.
    const scored = await scoreTest(run, { model: "causal-two", samples: 3 });
    assertEquals([scored.figures.nll, scored.figures.bound], [1.5, false]);
    await assertRejects(
      () => scoreTest(run, { model: "denoiser-two" }),
      ConfigError,
      "The denoiser-two contestant declares no test scoring (Contestant.scoring): deno task evaluate cannot score it",
    );
    for (const kind of ["causal-two", "denoiser-two"]) {
      const hf = `${root}/hf-${kind}`;
      await exportRun({ run, model: kind, to: hf });
      const back = `${root}/back-${kind}`;
      const first = await importCheckpoint({ from: hf, to: back });
      // The export's record names the contestant: not "ar" for any causal one.
      assertEquals(first.model, kind);
      assertEquals((await readRun(back)).models, [
        { seed: 0, kind, trained: true },
      ]);
      // Its own import: replaced, not refused as a folder of another's.
      const again = await importCheckpoint({ from: hf, to: back, force: true });
      assertEquals(again.model, kind);
    }
    // A denoiser that does not unmask is no masked LM: refused, not
    // written as D3PMForMaskedLM with a fill-mask card.
    await assertRejects(
      () => exportRun({ run, model: "plain-two", to: `${root}/hf-plain-two` }),
      InteropError,
      "Cannot export the plain-two model: its bidirectional network does not fill blanks by unmasking (no Contestant.unmasking), and the export writes a bidirectional network as a masked LM (D3PMForMaskedLM, fill-mask); it exports a causal model or an unmasking denoiser: ar, d3pm, mlm, causal-two, denoiser-two",
    );
    await assertRejects(
      () => Deno.stat(`${root}/hf-plain-two`),
      Deno.errors.NotFound,
    );
    // A denoiser without the record: --model offers the registered
    // denoisers that every engine runs.
    await assertRejects(
      () =>
        importCheckpoint({
          from: `${root}/hf-denoiser-two`,
          to: `${root}/x`,
          model: "bd3",
        }),
      InteropError,
      "--model bd3 is not one of d3pm, mlm, denoiser-two, plain-two (the contestant of a denoiser without a d3pm_deno record)",
    );
    // A record naming a contestant of the other network, or none registered.
    const config = JSON.parse(
      await Deno.readTextFile(`${root}/hf-causal-two/config.json`),
    );
    for (const named of ["denoiser-two", "gone"]) {
      config.d3pm_deno.contestant = named;
      await Deno.writeTextFile(
        `${root}/hf-causal-two/config.json`,
        JSON.stringify(config),
      );
      await assertRejects(
        () =>
          importCheckpoint({ from: `${root}/hf-causal-two`, to: `${root}/y` }),
        InteropError,
        `config.json's d3pm_deno record names the ${named} model, which is not a registered causal contestant here (ar, causal-two): register it before importing`,
      );
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
