import {
  assert,
  assertEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { formatBytes } from "@d3pm/core";
import {
  checkBudget,
  ConfigError,
  CORPUS_ID_BYTES,
  D3PM,
  estimateRun,
  type ExperimentResult,
  MLM,
  readsOption,
  resolveConfig,
  unreadOption,
} from "./mod.ts";

Deno.test("the auto judge's steps must cover the run's warm-up; other judges train nothing, and refuse --judge-steps as unread", () => {
  // micro: warmup 20.
  assertThrows(
    () => resolveConfig({ preset: "micro", judgeSteps: 10 }),
    ConfigError,
    "Option --warmup (20) must not exceed --judge-steps (10): the auto judge trains with the run's warm-up",
  );
  assertEquals(
    resolveConfig({ preset: "micro", judgeSteps: 20 }).judgeSteps,
    20,
  );
  for (const judge of ["self", "runs/other"]) {
    assertThrows(
      () => resolveConfig({ preset: "micro", judgeSteps: 10, judge }),
      ConfigError,
      `Option --judge-steps is read by the auto judge only, and --judge is ${judge}: it would be recorded and never used; use --judge auto, or leave it out`,
    );
    // The preset's own steps are carried along, not asked for.
    assertEquals(resolveConfig({ preset: "micro", judge }).judge, judge);
  }
});

Deno.test("--exact-blocks may not exceed the evaluated test blocks (all of them with --eval-blocks 0)", () => {
  assertThrows(
    () => resolveConfig({ preset: "micro", evalBlocks: 4, exactBlocks: 5 }),
    ConfigError,
    "Option --exact-blocks (5) must not exceed --eval-blocks (4): the exact bound runs on the first of the evaluated test blocks",
  );
  assertEquals(
    resolveConfig({ preset: "micro", evalBlocks: 4, exactBlocks: 4 })
      .exactBlocks,
    4,
  );
  assertEquals(
    resolveConfig({ preset: "micro", evalBlocks: 0, exactBlocks: 100 })
      .exactBlocks,
    100,
  );
});

Deno.test("--gen-samples 1 is refused: no interval from one sample; 0 and 2 are taken", () => {
  assertThrows(
    () => resolveConfig({ preset: "micro", genSamples: 1 }),
    ConfigError,
    "Option --gen-samples must be 0 (the last timed batch, no interval) or at least 2 (a 95% interval needs two samples), got 1",
  );
  for (const n of [0, 2]) {
    assertEquals(
      resolveConfig({ preset: "micro", genSamples: n }).genSamples,
      n,
    );
  }
});

Deno.test("--samples may not exceed --gen-batch: samples.txt shows rows of the last timed batch", () => {
  assertThrows(
    () => resolveConfig({ preset: "micro", genBatch: 4, samples: 5 }),
    ConfigError,
    "Option --samples (5) must not exceed --gen-batch (4): samples.txt shows rows of the last timed batch; accepted: 0 to 4, or raise --gen-batch",
  );
  assertEquals(
    resolveConfig({ preset: "micro", genBatch: 4, samples: 4 }).samples,
    4,
  );
  for (const preset of ["micro", "tiny", "small", "paper"] as const) {
    const c = resolveConfig({ preset });
    assert(c.samples <= c.genBatch, preset);
  }
});

Deno.test("the memory estimate counts the exact bound's batch of --exact-blocks rows", () => {
  const c = resolveConfig({ preset: "micro", evalBlocks: 0, judge: "self" });
  const peak = (exactBlocks: number) =>
    estimateRun({ ...c, exactBlocks }).memory.reduce((s, p) => s + p.amount, 0);
  assertEquals(peak(c.batchSize), peak(1)); // within the training batch
  assert(peak(64 * c.batchSize) > 10 * peak(1));
  assertThrows(
    () => checkBudget({ ...c, exactBlocks: 1 << 20 }, { available: 2 ** 34 }),
    ConfigError,
    "--exact-blocks",
  );
});

// `deno task evaluate --samples 1000000000` failed with "Array buffer
// allocation failed" (no option named): the bound draws all samples of a
// batch of blocks at once, and nothing estimated them.
Deno.test("the memory estimate counts the test bound's draws; a scoring tool's check names its own flag", () => {
  const c = resolveConfig({ preset: "micro", judge: "self" });
  const peak = (elboSamples: number) =>
    estimateRun({ ...c, elboSamples }).memory.reduce((s, p) => s + p.amount, 0);
  assert(peak(1e6) > peak(1) + 1e6 * 8 * c.blockLength * 16);
  const evaluate = {
    available: 2 ** 34,
    memoryOnly: true,
    flags: { "--elbo-samples": "--samples" },
  };
  assertThrows(
    () => checkBudget({ ...c, elboSamples: 1e9 }, evaluate),
    ConfigError,
    "mostly for the test bound's draws (all samples of 8 blocks at once) (5.6 TiB): lower --samples",
  );
  // Memory only: a run's training is not weighed (nor its batch counted).
  assertStringIncludes(
    checkBudget({ ...c, elboSamples: 1000, batchSize: 65536 }, evaluate),
    "estimate: peak memory about",
  );
  assertThrows(
    () => checkBudget({ ...c, elboSamples: 1e9 }, { available: 2 ** 34 }),
    ConfigError,
    "lower --elbo-samples",
  );
});

Deno.test("the report's exact-bound section names the blocks the bound ran on, not --exact-blocks", () => {
  const config = resolveConfig({
    preset: "micro",
    evalBlocks: 0,
    exactBlocks: 8,
  });
  const figures = {
    nll: 3,
    bpt: 4.3,
    ppl: 20,
    bpb: 4.3,
    stderr: 0.1,
    bound: true,
    tokens: 96,
  };
  const result = {
    config,
    results: [{
      model: "d3pm",
      seed: 0,
      test: figures,
      exact: { ...figures, rows: 3 },
    }],
  } as unknown as ExperimentResult;
  const [section] = D3PM.report!.sections!(result, {} as never);
  assertStringIncludes(section, "on the first 3 test block(s)");
});

Deno.test("the D3PM's adaptation options are refused without a D3PM in --models (recorded and never used)", () => {
  const adaptation = [
    ["initFrom", "runs/src", "--init-from"],
    ["annealSteps", 5, "--anneal-steps"],
    ["shift", true, "--shift"],
    ["fullMaskShare", 0.1, "--full-mask-share"],
  ] as const;
  for (const [key, value, flag] of adaptation) {
    for (const models of ["ar", "ar,mlm", "mlm"]) {
      assertThrows(
        () => resolveConfig({ preset: "micro", models, [key]: value }),
        ConfigError,
        `Option ${flag} is read by the d3pm${
          flag === "--init-from" || flag === "--full-mask-share"
            ? " and bd3 contestants"
            : " contestant"
        } only, and --models is ${models}: it would be recorded and never used`,
      );
    }
    for (const models of ["d3pm", "ar,d3pm", "d3pm,mlm"]) {
      const c = resolveConfig({ preset: "micro", models, [key]: value });
      assertEquals(c[key], value);
    }
  }
  assertEquals(
    resolveConfig({ preset: "micro", models: "ar,mlm" }).models,
    "ar,mlm",
  );
});

Deno.test("the work estimate counts the --gen-samples rows generated beyond the timed tokens", () => {
  const c = resolveConfig({ preset: "micro", judge: "self", genSamples: 0 });
  const generation = (over: Partial<typeof c>) =>
    estimateRun({ ...c, ...over }).evaluation.find((p) =>
      p.what.startsWith("generation")
    )!.amount;
  const timed = c.genTokens / c.blockLength; // rows
  assertEquals(generation({ genSamples: timed }), generation({}));
  assertEquals(
    generation({ genSamples: 4 * timed }),
    4 * generation({ genSamples: timed }),
  );
  assertThrows(
    () => checkBudget({ ...c, genSamples: 65536 }, { available: 2 ** 40 }),
    ConfigError,
    "mostly generation (a forward pass of the block per unmasking step)",
  );
});

Deno.test("--init-from of blanks is refused as --judge's is; empty is from scratch", () => {
  assertThrows(
    () => resolveConfig({ preset: "micro", initFrom: " " }),
    ConfigError,
    'Option --init-from must be empty (from scratch) or RUN[/seed-N/ar|mlm], got " "',
  );
  assertEquals(resolveConfig({ preset: "micro", initFrom: "" }).initFrom, "");
});

// `--d-model 2 --n-head 2` passed the options' rules, then the run wrote
// config.json, data.json and seed-0/ before the Transformer refused the
// shape ("Invalid model config: rotary positions need an even head size
// dModel/nHead, got 1"): a folder that then needed --force.
Deno.test("a shape the Transformer refuses is refused with the options, before a run starts", () => {
  assertThrows(
    () => resolveConfig({ preset: "micro", dModel: 2, nHead: 2 }),
    ConfigError,
    "The options give the ar model a shape the Transformer refuses: rotary positions need an even head size --d-model/--n-head, got 1",
  );
  assertThrows(
    () =>
      resolveConfig({
        preset: "micro",
        dModel: 6,
        nHead: 2,
        models: "d3pm",
        judge: "auto",
      }),
    ConfigError,
    "the d3pm model",
  );
  resolveConfig({ preset: "micro", dModel: 2, nHead: 2, positions: "learned" });
});

Deno.test("the memory budget counts a tokenized corpus at CORPUS_ID_BYTES an id, and refuses one over it naming --data and the figure", () => {
  // A 1 GB plain-text corpus needed ~12 GB and was never refused: the
  // estimate knew only the options. With its ids counted, the same run
  // passes with a small corpus and is refused with a large one.
  const c = { ...resolveConfig({ preset: "micro" }), data: "/d/big" };
  const available = 2 ** 31; // 2 GiB
  const ok = checkBudget(c, { available, corpusIds: 1e6 });
  assertStringIncludes(
    ok,
    `with the corpus (1000000 ids, ${formatBytes(1e6 * CORPUS_ID_BYTES)})`,
  );
  const without = checkBudget(c, { available });
  assert(!without.includes("corpus"));
  const ids = 1e9;
  assertThrows(
    () => checkBudget(c, { available, corpusIds: ids }),
    ConfigError,
    `The corpus of --data /d/big is ${ids} ids, about ${
      formatBytes(ids * CORPUS_ID_BYTES)
    } of memory at ${CORPUS_ID_BYTES} bytes an id`,
  );
});

Deno.test("an option for another setting is refused unless it is the preset's own value", () => {
  // micro: --tokenizer byte, whose vocabulary is fixed; its vocabSize 260.
  resolveConfig({ preset: "micro", vocabSize: 260 });
  assertThrows(
    () => resolveConfig({ preset: "micro", vocabSize: 5000 }),
    ConfigError,
    "Option --vocab-size applies only with --tokenizer bpe, got --tokenizer byte",
  );
});

Deno.test("a contestant that runs on tfjs only is refused with --engine cpu or webgpu, and taken with tfjs or auto; the others are taken with any", () => {
  for (const engine of ["cpu", "webgpu"]) {
    assertThrows(
      () => resolveConfig({ preset: "micro", models: "ar,bd3", engine }),
      ConfigError,
      `the bd3 contestant runs on tfjs only: block diffusion needs block attention, which the fused engines lack, not --engine ${engine}`,
    );
  }
  for (const engine of ["tfjs", "auto"]) {
    resolveConfig({ preset: "micro", models: "ar,bd3", engine });
  }
  for (const engine of ["cpu", "webgpu", "tfjs", "auto"]) {
    resolveConfig({ preset: "micro", models: "ar,d3pm,mlm", engine });
  }
});

Deno.test("the shape check builds each model with its own contestant and the tokenizer's vocabulary", () => {
  const big = { preset: "micro", dModel: 4096, nHead: 32, dMlp: 16384 };
  // A BPE vocabulary of 2^19 ids at width 4096 is a 2^31-value matrix;
  // the byte tokenizer's 1,024 rows at the same width are not.
  assertThrows(
    () => resolveConfig({ ...big, tokenizer: "bpe", vocabSize: 1 << 19 }),
    ConfigError,
    "the vocabSize × --d-model weight would hold 2147483648 values",
  );
  resolveConfig(big);
  // At 42 layers the D3PM's time conditioning tips it past 2^33
  // parameters: the D3PM is refused by name, and the AR's shape is taken.
  assertThrows(
    () =>
      resolveConfig({
        ...big,
        nLayer: 42,
        models: "ar,d3pm",
        timeConditioning: true,
      }),
    ConfigError,
    "The options give the d3pm model a shape the Transformer refuses: the model would have",
  );
  resolveConfig({ ...big, nLayer: 42, models: "ar,d3pm" });
});

// --backend wasm --engine cpu was accepted, changed nothing, and results.json
// said "Backend: wasm".
Deno.test("--backend other than auto is refused with --engine cpu or webgpu in one line naming where it applies; taken with tfjs and auto", () => {
  for (const engine of ["cpu", "webgpu"]) {
    for (const backend of ["wasm", "cpu", "blas"]) {
      assertThrows(
        () => resolveConfig({ preset: "micro", engine, backend }),
        ConfigError,
        `Option --backend ${backend} picks the tfjs backend, which --engine ${engine} does not use: --backend applies with --engine tfjs or auto; leave it out with --engine ${engine}`,
      );
    }
    assertEquals(resolveConfig({ preset: "micro", engine }).backend, "auto");
  }
  for (const engine of ["tfjs", "auto"]) {
    assertEquals(
      resolveConfig({ preset: "micro", engine, backend: "wasm" }).backend,
      "wasm",
    );
  }
});

Deno.test("a value nothing in the run reads is refused in one line naming the option, its readers and what was asked; the readers' runs take it", () => {
  const refused: [Record<string, unknown>, string][] = [
    [{ models: "ar", tMin: 0.01 }, "--t-min is read by the d3pm and bd3"],
    [{ models: "ar", tMax: 0.9 }, "--t-max is read by the d3pm and bd3"],
    [{ models: "ar", timeConditioning: true }, "--time-conditioning is read"],
    [{ models: "ar", alibi: 2 }, "--alibi is read by the d3pm, mlm and bd3"],
    [{ models: "ar", diffusionSteps: 20 }, "--diffusion-steps is read"],
    [{ models: "ar", genSteps: "4,8" }, "--gen-steps is read"],
    [{ models: "ar", timesPer: "count" }, "--times-per is read"],
    [{ models: "ar", exactBlocks: 1 }, "--exact-blocks is read by the d3pm"],
    [{ models: "ar,mlm", exactBlocks: 1 }, "--exact-blocks is read"],
    [{ models: "ar", elboSamples: 3 }, "--elbo-samples is read"],
    [{ models: "ar", diffusionLoss: "d3pm" }, "--diffusion-loss is read"],
    [{ models: "bd3", infillFraction: 0.3 }, "--infill-fraction is read"],
    [
      { models: "d3pm", arLr: 0.01, judge: "runs/x" },
      "--ar-lr is read by the ar contestant and the auto judge only, and --models is d3pm and --judge is runs/x",
    ],
  ];
  for (const [asked, message] of refused) {
    let error = "";
    try {
      resolveConfig({ preset: "micro", ...asked });
    } catch (e) {
      error = (e as Error).message;
    }
    assertStringIncludes(error, `Option ${message}`, JSON.stringify(asked));
    assertStringIncludes(error, ": it would be recorded and never used; ");
    assert(!error.includes("\n"), error);
  }
  // Where a reader takes part, the value is the run's.
  const taken: Record<string, unknown>[] = [
    { models: "d3pm", tMin: 0.01, diffusionLoss: "d3pm", exactBlocks: 1 },
    { models: "bd3", tMin: 0.1, timesPer: "count", engine: "tfjs" },
    { models: "mlm", alibi: 2, diffusionSteps: 20, genSteps: "4,8" },
    { models: "d3pm", arLr: 0.01 }, // the auto judge reads it
    { models: "ar", arLr: 0.01, judge: "self" },
    // The option's own default and the preset's value are never refused.
    { models: "ar", alibi: 0, elboSamples: 2, exactBlocks: 2 },
    // --exact-blocks 0 skips the exact bound: what a run without it does.
    { models: "ar,mlm", exactBlocks: 0 },
  ];
  for (const asked of taken) {
    const c = resolveConfig({ preset: "micro", ...asked });
    for (const [k, v] of Object.entries(asked)) {
      assertEquals(
        c[k as keyof typeof c],
        v,
        `${k} of ${JSON.stringify(asked)}`,
      );
    }
  }
});

Deno.test("a resume keeps what its run recorded, even a value nothing reads; a contestant that declares no reads takes every option", () => {
  // An older run's record: --t-min with the AR alone (accepted then).
  const resumed = resolveConfig({
    preset: "micro",
    models: "ar",
    tMin: 0.01,
    resume: true,
  });
  assertEquals(resumed.tMin, 0.01);
  assertEquals(
    unreadOption({ ...resumed, resume: false })?.startsWith("Option --t-min"),
    true,
  );
  // So do the recorded configurations of older sweeps.
  assertEquals(
    resolveConfig({ preset: "micro", models: "ar", tMin: 0.01 }, {
      unread: "keep",
    }).tMin,
    0.01,
  );
  // Not every contestant says what it reads: such a one reads them all.
  assertEquals(readsOption({ ...MLM, reads: undefined }, "exactBlocks"), true);
  assertEquals(readsOption(MLM, "exactBlocks"), false);
  // --init-from and --anneal-steps follow the contestant's own flags.
  assertEquals(
    readsOption({ ...MLM, startsFromWeights: true }, "initFrom"),
    true,
  );
  assertEquals(
    readsOption({ ...D3PM, annealsAttention: false }, "annealSteps"),
    false,
  );
});
