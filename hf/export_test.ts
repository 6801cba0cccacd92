// Export of run folders (seeded random weights in place of training): the
// files and configs of each architecture, the weights chosen, refusals,
// atomic replacement, and the round trip through importCheckpoint() to the
// very weights, configs, processes and test scores.
import { initBackend } from "@d3pm/backend";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { exportRun, importCheckpoint, InteropError } from "@d3pm/hf";
import {
  readRun,
  resolveConfig,
  runExperiment,
  RunFolder,
  scoreTest,
} from "@d3pm/experiment";
import { fakeRun, leftovers, readWeights, writeGpt2Dir } from "./_test_util.ts";

const AR_BASE = { steps: 10, warmup: 1, evalBlocks: 2 };
// One bound draw: a denoiser's option (refused for the AR alone).
const BASE = { ...AR_BASE, elboSamples: 1 };

Deno.test("exportRun() writes each architecture's files, and importCheckpoint() reads them back to the very weights, configs and process", async () => {
  const root = await Deno.makeTempDir();
  const cases: [string, Record<string, unknown>, Record<string, string>][] = [
    ["learned", {
      positions: "learned",
      timeConditioning: true,
      models: "ar,d3pm,mlm",
      judge: "self",
    }, {
      ar: "GPT2LMHeadModel",
      d3pm: "D3PMForMaskedLM",
      mlm: "D3PMForMaskedLM",
    }],
    ["rotary", {
      positions: "rotary",
      alibi: 4,
      alibiMode: "neighbours",
      tokenizer: "bpe",
      vocabSize: 300,
    }, { ar: "GPTNeoXForCausalLM", d3pm: "D3PMForMaskedLM" }],
  ];
  for (const [name, overrides, classes] of cases) {
    const run = `${root}/run-${name}`;
    const config = await fakeRun(run, { ...BASE, ...overrides });
    for (const kind of config.models.split(",")) {
      const out = `${root}/hf-${name}-${kind}`;
      const result = await exportRun({ run, model: kind, to: out });
      assertEquals(result.architecture, classes[kind]);
      const denoiser = kind !== "ar";
      assertEquals(result.files, [
        "README.md",
        "config.json",
        "generation_config.json",
        "merges.txt",
        "model.safetensors",
        ...(denoiser ? ["modeling_d3pm.py"] : []),
        "special_tokens_map.json",
        "tokenizer_config.json",
        "vocab.json",
      ]);
      const hf = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
      assertEquals(hf.architectures, [classes[kind]]);
      assertEquals(hf.vocab_size, config.vocabSize);
      assertEquals(hf.d3pm_deno.contestant, kind);
      assertEquals(hf.d3pm_deno.run, config);
      if (denoiser) {
        assertEquals(
          hf.auto_map.AutoModelForMaskedLM,
          "modeling_d3pm.D3PMForMaskedLM",
        );
      }
      const card = await Deno.readTextFile(`${out}/README.md`);
      assert(card.includes("license: cc-by-sa-3.0"));
      assert(
        card.includes(
          denoiser ? "trust_remote_code=True" : "AutoModelForCausalLM",
        ),
      );

      const back = `${root}/back-${name}-${kind}`;
      const imported = await importCheckpoint({ from: out, to: back });
      assertEquals(imported.model, kind);
      assertEquals(
        imported.vocabulary.added,
        {},
        "the export's special rows are kept",
      );
      const from = `${run}/seed-0/${kind}`, to = `${back}/seed-0/${kind}`;
      assertEquals(
        await readWeights(`${to}/model.safetensors`),
        await readWeights(`${from}/model.safetensors`),
      );
      assertEquals(
        JSON.parse(await Deno.readTextFile(`${to}/config.json`)),
        JSON.parse(await Deno.readTextFile(`${from}/config.json`)),
      );
      // The same process (each folder records its own weights' SHA-256).
      const processOf = async (dir: string) => {
        const { weightsSha256: _, weightsSeed: __, ...process } = JSON.parse(
          await Deno.readTextFile(`${dir}/process.json`),
        );
        return process;
      };
      assertEquals(await processOf(to), await processOf(from));
      const state = await readRun(back);
      // A run judged by its own AR model keeps that judge with the AR model only.
      const judge = config.judge === "self" && kind !== "ar"
        ? "auto"
        : config.judge;
      assertEquals(state.config, { ...config, out: back, models: kind, judge });
      assertEquals(state.status, "imported");
    }
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("an exported and re-imported run scores as the original on the test split (exact NLL and bound)", async () => {
  // The blas backend (CBLAS matmuls, fused kernels: auto's pick on a CPU),
  // both scores on it; the reference cpu kernels take several times the CPU.
  await initBackend({ prefer: "blas", log: () => {} });
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  await fakeRun(run, { ...BASE, positions: "rotary", models: "ar,d3pm" });
  for (const kind of ["ar", "d3pm"]) {
    await exportRun({ run, model: kind, to: `${root}/hf-${kind}` });
    await importCheckpoint({
      from: `${root}/hf-${kind}`,
      to: `${root}/back-${kind}`,
    });
    const a = await scoreTest(run, { model: kind });
    const b = await scoreTest(`${root}/back-${kind}`, { model: kind });
    assertEquals(b.figures, a.figures);
    assertEquals(a.blocks, 2);
    assertEquals(a.figures.bound, kind === "d3pm");
    assert(a.figures.nll > 0 && Number.isFinite(a.figures.bpt));
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("a trained run's models, exported and imported, score on the test split exactly what the run reported", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  const config = resolveConfig({
    preset: "micro",
    out: run,
    // The blas backend (auto's pick on a CPU), which scoreTest then uses
    // too: the reference cpu kernels took several times the CPU.
    backend: "blas",
    // scoreTest scores on tfjs: so does the run, for the figures to match
    // bit for bit (`auto` would score on the CPU engine where no GPU is).
    engine: "tfjs",
    steps: 4,
    warmup: 1,
    batchSize: 2,
    checkpointEvery: 4,
    validEvery: 0,
    evalBlocks: 2,
    elboSamples: 2,
    exactBlocks: 0,
    diffusionSteps: 4,
    genSteps: "2",
    genTokens: 32,
    genBatch: 1,
    // gen PPL of the last generated batch alone: no 64 rows more to
    // generate and judge on the reference kernels (what this test compares
    // is the test split's score).
    genSamples: 0,
    samples: 1,
    judge: "self",
  });
  const reported = await runExperiment(config, {
    log: () => {},
    progress: false,
  });
  for (const result of reported.results) {
    const kind = result.model;
    await exportRun({ run, model: kind, to: `${root}/hf-${kind}` });
    await importCheckpoint({
      from: `${root}/hf-${kind}`,
      to: `${root}/back-${kind}`,
    });
    const score = await scoreTest(`${root}/back-${kind}`, { model: kind });
    assertEquals(score.figures, result.test, kind);
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("exportRun() --weights takes the last step's or the EMA from where the run kept them, and no best/ a --keep last run never writes", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  // micro: EMA 0.9 evaluated; its checkpoint holds model/ (last) and ema/.
  await fakeRun(run, { ...AR_BASE, models: "ar" }, {
    checkpoint: true,
    best: true,
  });
  const dir = `${run}/seed-0/ar`;
  const checkpoint = await readWeights(`${dir}/checkpoint.safetensors`);
  const sources: Record<string, Map<string, { data: Float32Array }>> = {
    evaluated: await readWeights(`${dir}/model.safetensors`),
    last: new Map(
      [...checkpoint].filter(([n]) => n.startsWith("model/")).map((
        [n, t],
      ) => [n.slice(6), t]),
    ),
  };
  // A --keep last run writes no best/: the one fakeRun planted is not its
  // (read as the run's best validation before; plant: locateWeights'
  // `best` branch returning best/model.safetensors when it exists).
  await assertRejects(
    () =>
      exportRun({ run, model: "ar", to: `${root}/hf-best`, weights: "best" }),
    Error,
    `kept no best weights (it evaluated the last step's) (${dir}/best/model.safetensors is not this run's: a --keep last run writes none)`,
  );
  for (const weights of [undefined, "last", "ema"] as const) {
    const out = `${root}/hf-${weights ?? "default"}`;
    const result = await exportRun({ run, model: "ar", to: out, weights });
    const exported = await readWeights(`${out}/model.safetensors`);
    // The EMA of a --keep last run is what it evaluated.
    const expected = sources[weights === "last" ? weights : "evaluated"];
    assertEquals(
      exported.get("gpt_neox.layers.0.input_layernorm.bias")!.data,
      expected.get("h.0.ln_1.bias")!.data,
      String(weights),
    );
    assertEquals(
      exported.get("gpt_neox.embed_in.weight")!.data,
      expected.get("wte.weight")!.data,
    );
    assertEquals(
      result.weights,
      weights === "last"
        ? "the last step's weights"
        : "the EMA (decay 0.9) of the last step's weights",
    );
  }
  // A run without EMA has none to give.
  const plain = `${root}/plain`;
  await fakeRun(plain, { ...AR_BASE, models: "ar", emaDecay: 0 });
  await assertRejects(
    () => exportRun({ run: plain, to: `${root}/x`, weights: "ema" }),
    Error,
    "kept no EMA (--ema-decay 0): train with --ema-decay above 0 to keep one",
  );
  await assertRejects(
    () => exportRun({ run: plain, to: `${root}/x`, weights: "best" }),
    Error,
    "kept no best weights",
  );
  assertEquals(
    (await exportRun({ run: plain, to: `${root}/x`, weights: "last" })).weights,
    "the last step's weights",
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("exportRun() refuses a model the run lacks, a seed it lacks, an existing target, and non-finite weights, writing nothing", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  await fakeRun(run, { ...BASE, models: "ar,d3pm" });
  await assertRejects(
    () => exportRun({ run, model: "mlm", to: `${root}/x` }),
    InteropError,
    "has no mlm model (it trained ar, d3pm): pass --model ar|d3pm",
  );
  // One past the last seed (1) as well as far past it (3).
  for (const seed of [1, 3]) {
    await assertRejects(
      () => exportRun({ run, seed, to: `${root}/x` }),
      InteropError,
      `has seeds 0..0, not ${seed}`,
    );
  }
  const out = `${root}/out`;
  await Deno.mkdir(out);
  await Deno.writeTextFile(`${out}/mine.txt`, "keep me");
  await assertRejects(
    () => exportRun({ run, to: out }),
    InteropError,
    `${out} already exists: pass --force to replace it`,
  );
  // --force replaces only an export: a folder of the user's is kept.
  await assertRejects(
    () => exportRun({ run, to: out, force: true }),
    InteropError,
    `${out} holds files but no config.json with d3pm_deno: --force replaces only a folder deno task export wrote (or an empty folder); choose another --to`,
  );
  assertEquals(await leftovers(out), ["mine.txt"]);
  // NaN in the weights: refused, and a forced export keeps the old export.
  const prev = `${root}/prev`;
  await exportRun({ run, to: prev });
  const before = await Deno.readFile(`${prev}/model.safetensors`);
  const path = `${run}/seed-0/ar/model.safetensors`;
  const bytes = await Deno.readFile(path);
  const good = bytes.slice();
  const view = new DataView(bytes.buffer);
  view.setFloat32(bytes.length - 4, NaN, true); // the last value of the last tensor
  await Deno.writeFile(path, bytes);
  await assertRejects(
    () => exportRun({ run, to: prev, force: true }),
    InteropError,
    "holds NaN at index",
  );
  assertEquals(await Deno.readFile(`${prev}/model.safetensors`), before);
  assertEquals(await Deno.readTextFile(`${out}/mine.txt`), "keep me");
  assertEquals(
    await leftovers(root),
    ["out", "prev", "run"],
    "no temporary folders",
  );
  await Deno.writeFile(path, good);
  await exportRun({ run, to: prev, force: true });
  assertEquals(
    await leftovers(prev, [
      "README.md",
      "config.json",
      "generation_config.json",
      "merges.txt",
      "model.safetensors",
      "special_tokens_map.json",
      "tokenizer_config.json",
      "vocab.json",
    ]),
    [],
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("exportRun() --force refuses an earlier export that holds the run it exports, or a file an export does not write, deleting nothing", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  await fakeRun(run, { ...AR_BASE, models: "ar" });
  const dist = `${root}/dist`;
  await exportRun({ run, to: dist });
  // The run copied into the export, then exported from there onto it.
  const copy = `${dist}/run`;
  const cp = await new Deno.Command("cp", { args: ["-r", run, copy] })
    .output();
  assert(cp.success);
  await assertRejects(
    () => exportRun({ run: copy, to: dist, force: true }),
    InteropError,
    `--to ${dist} holds --run ${copy} itself: replacing it would delete what is read; choose a --to outside ${copy}`,
  );
  // Through a link to it, and as the very folder.
  await Deno.symlink(dist, `${root}/link`);
  await assertRejects(
    () => exportRun({ run: `${root}/link/run`, to: dist, force: true }),
    InteropError,
    "holds --run",
  );
  assertEquals((await readRun(copy)).config.models, "ar", "the run is kept");
  await Deno.remove(copy, { recursive: true });
  // A file of the user's in an earlier export.
  await Deno.writeTextFile(`${dist}/notes.md`, "keep me");
  await assertRejects(
    () => exportRun({ run, to: dist, force: true }),
    InteropError,
    `${dist} holds notes.md, which a folder deno task export wrote does not write: --force would delete it; move it out or choose another --to`,
  );
  for (const name of ["a", "b", "c"]) await Deno.mkdir(`${dist}/${name}`);
  await assertRejects(
    () => exportRun({ run, to: dist, force: true }),
    InteropError,
    `${dist} holds a, b, c, and 1 more, which`,
  );
  assertEquals(await Deno.readTextFile(`${dist}/notes.md`), "keep me");
  assertEquals(await leftovers(root), ["dist", "link", "run"]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("an imported checkpoint's export says its weights were imported, claims no training, data or license of this project's, and has no EMA or best to give", async () => {
  const root = await Deno.makeTempDir();
  const hf = `${root}/gpt2`;
  // GPT-2's vocabulary (narrow): its run configuration is the paper
  // preset's with the checkpoint's shape.
  await writeGpt2Dir(hf, {
    shape: { vocab: 50257, d: 8, layers: 1, heads: 2, positions: 16 },
  });
  for (const f of ["vocab.json", "merges.txt"]) await Deno.remove(`${hf}/${f}`);
  const im = `${root}/im`;
  await importCheckpoint({ from: hf, to: im, tokenizer: "gpt2" });
  // The synthetic run configuration claims no EMA nor best validation.
  const { config } = await readRun(im);
  assertEquals([config.emaDecay, config.keep], [0, "last"]);
  const from = await Deno.realPath(hf);
  const out = `${root}/out`;
  const result = await exportRun({ run: im, to: out });
  const source = `the weights imported from ${from} (GPT2LMHeadModel)`;
  assertEquals(result.weights, source);
  const exported = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
  assertEquals(exported.d3pm_deno.weights, source);
  // <|bos|> and <|eos|> copy <|endoftext|>'s row: transformers' generation
  // suppresses every added id (each copy would draw <|endoftext|>'s
  // probability) and stops at <|endoftext|>, which <|eos|> is scored as.
  const generation = JSON.parse(
    await Deno.readTextFile(`${out}/generation_config.json`),
  );
  assertEquals(generation.suppress_tokens, [50257, 50258, 50259, 50260]);
  assertEquals(generation.eos_token_id, [50258, 50256]);
  const card = await Deno.readTextFile(`${out}/README.md`);
  assert(card.startsWith("---\nlicense: other\n"), card.slice(0, 40));
  for (
    const claim of [
      "trained by [d3pm-deno]",
      "EMA",
      "Command:",
      "steps ×",
      "WikiText",
      "CC BY-SA",
      "datasets:",
    ]
  ) {
    assert(!card.includes(claim), `the card claims "${claim}"`);
  }
  assert(card.includes(`imported by \`deno task import\` from \`${from}\``));
  assert(
    card.includes("their license is their source's, not known to the tool"),
  );
  for (const weights of ["ema", "best"] as const) {
    await assertRejects(
      () => exportRun({ run: im, to: `${root}/x`, weights }),
      Error,
      `The run in ${im} was imported (import.json): it holds ${source} only, no ${
        weights === "ema" ? "EMA" : "best validation's weights"
      }; leave out --weights (or pass --weights last) to take them`,
    );
  }
  // The project's own export of the last step's weights of a --keep best
  // run, imported and exported again, is not "the best validation's".
  const run = `${root}/run`;
  await fakeRun(run, { ...AR_BASE, models: "ar", keep: "best" }, {
    checkpoint: true,
  });
  await exportRun({ run, to: `${root}/last`, weights: "last" });
  await importCheckpoint({ from: `${root}/last`, to: `${root}/back` });
  const again = await exportRun({ run: `${root}/back`, to: `${root}/again` });
  assertEquals(
    again.weights,
    `the weights imported from ${await Deno.realPath(
      `${root}/last`,
    )} (GPTNeoXForCausalLM; its export: the last step's weights)`,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("an imported run's export keeps its import's record under d3pm_deno, and the run's options only where the import had them, not a preset's made up", async () => {
  const root = await Deno.makeTempDir();
  const record = async (dir: string) =>
    JSON.parse(await Deno.readTextFile(`${dir}/import.json`));
  const exported = async (dir: string) =>
    JSON.parse(await Deno.readTextFile(`${dir}/config.json`)).d3pm_deno;
  // A checkpoint of no run of this project's: the import made up a
  // preset's options (100,000 steps, its lr, …); none is exported.
  const hf = `${root}/gpt2`;
  await writeGpt2Dir(hf, {
    shape: { vocab: 50257, d: 8, layers: 1, heads: 2, positions: 16 },
  });
  for (const f of ["vocab.json", "merges.txt"]) await Deno.remove(`${hf}/${f}`);
  await importCheckpoint({ from: hf, to: `${root}/im`, tokenizer: "gpt2" });
  const made = await record(`${root}/im`);
  assertEquals(made.options, "preset");
  await exportRun({ run: `${root}/im`, to: `${root}/out` });
  const foreign = await exported(`${root}/out`);
  assertEquals(Object.keys(foreign), [
    "contestant",
    "seed",
    "weights",
    "imported",
    "process",
  ]);
  assertEquals(foreign.imported, {
    from: made.from,
    architecture: made.architecture,
  });
  // Imported again, it is the same run: the preset's options made up
  // again, the process the export carries.
  await importCheckpoint({ from: `${root}/out`, to: `${root}/again` });
  assertEquals((await record(`${root}/again`)).options, "preset");
  // The project's own run, exported and imported: its options are the
  // run's, and exported again as the imported run holds them.
  const run = `${root}/run`;
  await fakeRun(run, { ...BASE, models: "d3pm" }, { checkpoint: true });
  await exportRun({ run, model: "d3pm", to: `${root}/own` });
  await importCheckpoint({ from: `${root}/own`, to: `${root}/back` });
  const own = await record(`${root}/back`);
  assertEquals(own.options, "source");
  await exportRun({ run: `${root}/back`, model: "d3pm", to: `${root}/own2` });
  const kept = await exported(`${root}/own2`);
  assertEquals(kept.imported, {
    from: own.from,
    architecture: own.architecture,
  });
  assertEquals(kept.run, (await readRun(`${root}/back`)).config);
  assertEquals(kept.run.steps, BASE.steps);
  // A denoiser without the record: its export carries the process the
  // import made up, which importing it again makes up the same.
  await exportRun({ run, model: "d3pm", to: `${root}/bare` });
  const { d3pm_deno: _, ...bare } = JSON.parse(
    await Deno.readTextFile(`${root}/bare/config.json`),
  );
  await Deno.writeTextFile(`${root}/bare/config.json`, JSON.stringify(bare));
  await importCheckpoint({ from: `${root}/bare`, to: `${root}/im2` });
  await exportRun({ run: `${root}/im2`, model: "d3pm", to: `${root}/out2` });
  assertEquals("run" in await exported(`${root}/out2`), false);
  const lines: string[] = [];
  await importCheckpoint({
    from: `${root}/out2`,
    to: `${root}/im3`,
    log: (line) => lines.push(line),
  });
  assertEquals(lines, [
    `notice: ${root}/out2/config.json has no run options in its d3pm_deno record (an export of an imported checkpoint): imported as the d3pm model with the tiny preset's process (mdlm loss, 1000 diffusion steps); the process it was trained with is not known`,
  ]);
  // An import.json written before it recorded the options: the project's
  // export (its weights quoted) had them, another checkpoint's did not.
  for (const [dir, options] of [["back", "run"], ["im", undefined]]) {
    const { options: _, ...older } = await record(`${root}/${dir}`);
    await Deno.writeTextFile(
      `${root}/${dir}/import.json`,
      JSON.stringify(older),
    );
    await exportRun({
      run: `${root}/${dir}`,
      model: dir === "back" ? "d3pm" : "ar",
      to: `${root}/older-${dir}`,
    });
    assertEquals(
      Object.keys(await exported(`${root}/older-${dir}`)).includes("run"),
      options === "run",
      dir,
    );
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("an export's card gives the license of the run's data: WikiText's CC BY-SA, or none known for the user's own text", async () => {
  const root = await Deno.makeTempDir();
  const card = async (name: string, data?: { format?: "text" }) => {
    const run = `${root}/${name}`;
    await fakeRun(run, {
      ...AR_BASE,
      models: "ar",
      ...(data ? { data: `${root}/corpus` } : {}),
    });
    if (data) {
      await Deno.writeTextFile(
        `${run}/data.json`,
        JSON.stringify({
          sha256: { train: "", valid: "", test: "" },
          tokenizer: { id: "byte-v1", vocabSize: 260 },
          ...data,
        }),
      );
    }
    await exportRun({ run, to: `${root}/hf-${name}` });
    return await Deno.readTextFile(`${root}/hf-${name}/README.md`);
  };
  const wikitext = await card("embedded");
  assert(wikitext.startsWith("---\nlicense: cc-by-sa-3.0\n"));
  assert(wikitext.includes("trained on WikiText"));
  // --data with WikiText's files (data.json without format): WikiText.
  assert((await card("wiki103", {})).includes("trained on WikiText"));
  const own = await card("own", { format: "text" });
  assert(own.startsWith("---\nlicense: other\n"));
  assert(!own.includes("WikiText") && !own.includes("datasets:"));
  assert(
    own.includes(
      `the user's data (\`${root}/corpus\`), whose license is not known to the tool`,
    ),
  );
  assert(
    own.includes("the user's own text: its license is not known to the tool"),
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("an export of a run still training names the command of the process writing it, and a missing checkpoint in a sentence", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  await fakeRun(run, { ...AR_BASE, models: "ar", keep: "best" });
  const release = await new RunFolder(run).lock();
  try {
    await exportRun({ run, to: `${root}/hf` });
  } finally {
    release();
  }
  const card = await Deno.readTextFile(`${root}/hf/README.md`);
  const command = card.match(
    /- Command: `([^`]*)` \(the command of the process still writing the run/,
  );
  if (command === null) throw new Error(card);
  assert(!command[1].includes("--preset micro"), command[1]);
  // Unlocked and without results, no command is made up.
  await exportRun({ run, to: `${root}/hf`, force: true });
  assert(
    (await Deno.readTextFile(`${root}/hf/README.md`)).includes(
      "- Command: not recorded; the run's options are in `config.json` under `d3pm_deno.run`",
    ),
  );
  await assertRejects(
    () => exportRun({ run, to: `${root}/x`, weights: "last" }),
    Error,
    `The ar model of seed 0 in ${run} has no training checkpoint to read the last step's weights from (${run}/seed-0/ar/checkpoint.safetensors is missing)`,
  );
  await Deno.remove(root, { recursive: true });
});
