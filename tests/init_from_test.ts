// --init-from, --anneal-steps and --shift: the D3PM started from a trained
// AR model's weights, its attention annealed from causal to bidirectional,
// and DiffuGPT's shift.
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  annealWindow,
  checkInitFrom,
  checkShape,
  checkVocabulary,
  ConfigError,
  D3PM,
  initialiseFrom,
  loadTrained,
  parseInitFrom,
  resolveConfig,
  RunFolder,
} from "@d3pm/experiment";
import { decodeSafetensors, encodeSafetensors, sha256Hex } from "@d3pm/core";
import { Transformer } from "@d3pm/transformer";
import {
  AR_FAST_EVAL,
  DENOISER_FAST_EVAL,
  errorLine,
  FAST_EVAL,
  runTool,
} from "./_run.ts";

await tf.setBackend("cpu");

const SOURCE = [
  "--preset",
  "micro",
  "--models",
  "ar",
  "--steps",
  "40",
  "--warmup",
  "5",
  "--valid-every",
  "0",
  "--exact-blocks",
  "0",
  "--judge",
  "self",
  ...AR_FAST_EVAL,
];

/** Mean cross-entropy of `logits [1, T, V]` at positions `from..T−1` against `targets`. */
function crossEntropy(
  logits: tf.Tensor3D,
  targets: number[],
  from: number,
): number {
  return tf.tidy(() => {
    const [, t, v] = logits.shape;
    const lp = tf.logSoftmax(logits.reshape([t, v])).arraySync() as number[][];
    let sum = 0;
    for (let i = from; i < t; i++) sum -= lp[i][targets[i]];
    return sum / (t - from);
  });
}

Deno.test("--init-from loads the AR's weights: with shift and a causal window the denoiser's step-0 loss is the AR's, from scratch it is not", async () => {
  const out = await Deno.makeTempDir();
  const r = await runTool("experiment.ts", [...SOURCE, "--out", out]);
  assertEquals(r.code, 0, r.stderr);
  const ar = await loadTrained(out, { model: "ar" });
  const config = resolveConfig({ preset: "micro", alibi: 0, shift: true });
  const v = ar.tokenizer.vocabSize;
  const fresh = () => new Transformer(D3PM.modelConfig(config, v), { seed: 2 });
  const denoiser = fresh(), scratch = fresh();
  const figures = await initialiseFrom(
    denoiser,
    { dir: out, seed: 0, model: "ar" },
    ar.tokenizer,
  );
  assertEquals(figures.tokens, 40 * 16 * ar.config.blockLength);
  assertEquals(figures.flops, 6 * figures.parameters * figures.tokens!);
  const ids = Array.from(ar.tokenizer.encode(" = Valkyria Chronicles III = "));
  const x = tf.tensor2d([ids], [1, ids.length], "int32");
  // The AR's loss: position i predicts i + 1.
  const arLogits = ar.model.forward(x);
  const arLoss = crossEntropy(
    arLogits.slice([0, 0, 0], [1, ids.length - 1, v]) as tf.Tensor3D,
    ids.slice(1),
    0,
  );
  denoiser.attentionWindow = 0;
  scratch.attentionWindow = 0;
  const [shifted, fromScratch] = [denoiser, scratch].map((m) =>
    crossEntropy(m.forward(x), ids, 1)
  );
  assert(Math.abs(shifted - arLoss) < 1e-4, `${shifted} vs the AR's ${arLoss}`);
  assert(Math.abs(fromScratch - arLoss) > 0.5, `scratch ${fromScratch}`);
  // Bidirectional again, it is no longer the AR.
  denoiser.attentionWindow = Infinity;
  assert(Math.abs(crossEntropy(denoiser.forward(x), ids, 1) - arLoss) > 1e-3);
  tf.dispose([x, arLogits]);
  [denoiser, scratch, ar.model].forEach((m) => m.dispose());

  // A run with it trains, and says what the source cost.
  const adapted = await Deno.makeTempDir();
  const a = await runTool("experiment.ts", [
    ...SOURCE,
    ...DENOISER_FAST_EVAL,
    "--models",
    "d3pm",
    "--steps",
    "10",
    "--init-from",
    out,
    "--anneal-steps",
    "5",
    "--shift",
    "--judge",
    out,
    "--out",
    adapted,
  ]);
  assertEquals(a.code, 0, a.stderr);
  const results = JSON.parse(
    await Deno.readTextFile(`${adapted}/results.json`),
  );
  assertEquals(results.results[0].training.initFrom.tokens, figures.tokens);
  assertEquals(results.config.initFrom, out);
  // The annealing reaches training: without it, step 1 (causal under
  // annealing, bidirectional without) has another loss; from step 6 on
  // both runs see the whole block.
  const plain = await Deno.makeTempDir();
  const p = await runTool("experiment.ts", [
    ...SOURCE,
    ...DENOISER_FAST_EVAL,
    "--models",
    "d3pm",
    "--steps",
    "10",
    "--init-from",
    out,
    "--shift",
    "--judge",
    out,
    "--out",
    plain,
  ]);
  assertEquals(p.code, 0, p.stderr);
  const stepLoss = async (dir: string, step: number) =>
    (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n")
      .map((l) => JSON.parse(l))
      .find((x) => x.step === step && "loss" in x).loss;
  assertNotEquals(await stepLoss(adapted, 1), await stepLoss(plain, 1));
  await Deno.remove(plain, { recursive: true });
  // --resume with another source is refused: the source is fingerprinted.
  const other = await runTool("experiment.ts", [
    ...SOURCE,
    ...DENOISER_FAST_EVAL,
    "--models",
    "d3pm",
    "--steps",
    "10",
    "--init-from",
    `${out}/seed-0/mlm`,
    "--anneal-steps",
    "5",
    "--shift",
    "--judge",
    out,
    "--out",
    adapted,
    "--resume",
  ]);
  assertNotEquals(other.code, 0);
  assert(errorLine(other).includes("--init-from"), errorLine(other));
  await Deno.remove(out, { recursive: true });
  await Deno.remove(adapted, { recursive: true });
});

Deno.test("--init-from refuses a source with another vocabulary, naming what differs", async () => {
  const tok = (id: string, probe: number[]) => ({
    id,
    vocabSize: 260,
    special: { bos: 256, eos: 257, pad: 258, mask: 259 },
    encode: () => Uint32Array.from(probe),
  });
  const source = { dir: "runs/x", seed: 0, model: "ar" as const };
  checkVocabulary(tok("byte", [1, 2]), tok("byte", [1, 2]), source);
  assertThrows(
    () => checkVocabulary(tok("bpe-a", [1]), tok("bpe-b", [1]), source),
    Error,
    "Cannot start the D3PM from runs/x/seed-0/ar: its vocabulary is not this run's (tokenizer bpe-a there, bpe-b here)",
  );
  assertThrows(
    () => checkVocabulary(tok("bpe", [1, 2]), tok("bpe", [1, 3]), source),
    Error,
    "the same text has other ids there",
  );
  await assertRejects(
    () =>
      initialiseFrom(
        new Transformer(
          D3PM.modelConfig(resolveConfig({ preset: "micro" }), 260),
        ),
        { dir: "/nonexistent-run", seed: 0, model: "ar" },
        tok("byte", []) as never,
      ),
    Error,
    "no config.json",
  );
});

Deno.test("annealing: the window grows from causal to the whole block, and a position sees exactly that many later ones", () => {
  assertEquals(
    [0, 1, 25, 50, 99, 100, 1000].map((s) => annealWindow(s, 100, 8)),
    [0, 0, 1, 3, 6, Infinity, Infinity],
  );
  const model = new Transformer(
    D3PM.modelConfig(resolveConfig({ preset: "micro", alibi: 0 }), 32),
    { seed: 1 },
  );
  const row = [1, 2, 3, 4, 5, 6, 7, 8];
  const logitsAt0 = (changed: number, w: number) => {
    model.attentionWindow = w;
    const ids = row.map((t, i) => (i === changed ? 20 : t));
    return tf.tidy(() =>
      Array.from(
        model.forward(tf.tensor2d([ids], [1, 8], "int32")).slice(
          [0, 0, 0],
          [1, 1, 32],
        ).dataSync(),
      )
    );
  };
  // With window 2, position 0 sees positions 1 and 2, not 3.
  const base = logitsAt0(-1, 2);
  assertNotEquals(logitsAt0(2, 2), base);
  assertEquals(logitsAt0(3, 2), base);
  assertNotEquals(logitsAt0(3, Infinity), logitsAt0(-1, Infinity));
  model.dispose();
});

Deno.test("shift: position i + 1 gives what position i gave without it, position 0 its own", () => {
  const config = D3PM.modelConfig(
    resolveConfig({ preset: "micro", alibi: 0 }),
    32,
  );
  const plain = new Transformer(config, { seed: 3 });
  const shifted = new Transformer({ ...config, shift: true }, { seed: 3 });
  const x = tf.tensor2d([[5, 6, 7, 8]], [1, 4], "int32");
  const a = plain.forward(x).arraySync()[0];
  const b = shifted.forward(x).arraySync()[0];
  assertEquals(b[0], a[0]);
  for (let i = 1; i < 4; i++) assertEquals(b[i], a[i - 1]);
  assertThrows(
    () =>
      new Transformer({ ...config, kind: "causal", shift: true }, { seed: 3 }),
    RangeError,
    "shift is for bidirectional models only",
  );
  x.dispose();
  plain.dispose();
  shifted.dispose();
});

Deno.test("--init-from naming no run is refused in one line before the run folder is made", async () => {
  const out = `${await Deno.makeTempDir()}/run`;
  const r = await runTool("experiment.ts", [
    "--preset",
    "micro",
    "--models",
    "d3pm",
    "--engine",
    "tfjs",
    "--init-from",
    `${out}-missing`,
    "--out",
    out,
  ]);
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(errorLine(r), `Option --init-from ${out}-missing`);
  assertEquals(await Deno.stat(out).then(() => true, () => false), false);
  await Deno.remove(out.slice(0, -4), { recursive: true });
});

Deno.test("checkShape refuses a source with weights the denoiser lacks, or other heads, and allows a missing mask row", () => {
  const source = { dir: "runs/x", seed: 0, model: "ar" as const };
  const d3pm = D3PM.modelConfig(resolveConfig({ preset: "micro" }), 260);
  const ar = { ...d3pm, kind: "causal" as const, alibi: undefined };
  checkShape({ ...ar, vocabSize: 259 }, d3pm, source);
  checkShape(ar, d3pm, source);
  const refused: [Partial<typeof d3pm>, string][] = [
    [{ nLayer: 2 }, "it has weight h.1.ln_1.weight, which the D3PM lacks"],
    [
      { positions: "learned" },
      "it has weight wpe.weight, which the D3PM lacks",
    ],
    [{ nHead: 4 }, "4 attention heads there, 2 here"],
    [{ vocabSize: 261 }, "wte.weight is [261,64] there and [260,64] here"],
    [{ dMlp: 96 }, "h.0.mlp.c_fc.weight is [64,96] there"],
  ];
  for (const [change, why] of refused) {
    assertThrows(
      () => checkShape({ ...ar, ...change }, d3pm, source),
      ConfigError,
      `Cannot start the D3PM from runs/x/seed-0/ar: ${why}`,
    );
  }
  assertThrows(
    () => checkShape(ar, { ...d3pm, nLayer: 2 }, source),
    ConfigError,
    "it has no weight h.1.ln_1.weight",
  );
});

Deno.test("--init-from a source of another shape, or the run's own folder (or --judge it), is refused before the run writes or moves anything", async () => {
  const dir = await Deno.makeTempDir();
  const quick = [
    "--preset",
    "micro",
    "--steps",
    "2",
    "--warmup",
    "1",
    "--valid-every",
    "0",
    "--exact-blocks",
    "0",
    ...FAST_EVAL,
  ];
  const self = ["--judge", "self"];
  const src = `${dir}/src`;
  const made = await runTool("experiment.ts", [
    ...quick,
    ...self,
    "--out",
    src,
  ]);
  assertEquals(made.code, 0, made.stderr);
  const files = async (d: string) =>
    (await Array.fromAsync(Deno.readDir(d), (e) => e.name)).sort();
  const before = await files(src);
  // A 2-layer D3PM from a 1-layer AR: refused before the run's AR trains.
  const wider = await runTool("experiment.ts", [
    ...quick,
    ...self,
    "--n-layer",
    "2",
    "--init-from",
    src,
    "--out",
    `${dir}/wider`,
  ]);
  assertEquals(wider.code, 1, wider.stderr);
  assertStringIncludes(errorLine(wider), "it has no weight h.1.ln_1.weight");
  assert(!wider.stderr.includes("trained in"), wider.stderr);
  // --force into the source itself: the D3PM would start from this run's
  // own new AR; refused, and the source is neither moved nor touched.
  const own = await runTool("experiment.ts", [
    ...quick,
    ...self,
    "--force",
    "--init-from",
    src,
    "--out",
    `${src}/`,
  ]);
  assertEquals(own.code, 1, own.stderr);
  assertStringIncludes(
    errorLine(own),
    `Option --init-from ${src} names the run's own --out folder`,
  );
  // The same for a judge: its AR was loaded before --force moved the run
  // aside, and the report named this run's new AR as the judge.
  const judged = await runTool("experiment.ts", [
    ...quick,
    "--force",
    "--judge",
    src,
    "--out",
    src,
  ]);
  assertEquals(judged.code, 1, judged.stderr);
  assertStringIncludes(
    errorLine(judged),
    `Option --judge ${src} names the run's own --out folder`,
  );
  assertEquals(await files(dir), ["src"]);
  assertEquals(await files(src), before);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a bad --init-from is refused before the auto judge trains", async () => {
  const out = `${await Deno.makeTempDir()}/run`;
  const r = await runTool("experiment.ts", [
    "--preset",
    "micro",
    "--models",
    "d3pm",
    // A judge no cache holds: refused before it trains, it never does.
    "--judge-steps",
    String(300 + Math.floor(Math.random() * 99)),
    "--init-from",
    `${out}-missing`,
    "--out",
    out,
  ]);
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(errorLine(r), `Option --init-from ${out}-missing`);
  assert(!r.stderr.includes("judge:"), r.stderr);
  await Deno.remove(out.slice(0, -4), { recursive: true });
});

Deno.test("--init-from reads the source's weights once: the check reads their header only, and still refuses a truncated or reshaped weights file", async () => {
  const dir = await Deno.makeTempDir();
  const src = `${dir}/src`;
  const made = await runTool("experiment.ts", [
    ...SOURCE,
    "--steps",
    "2",
    "--warmup",
    "1",
    "--out",
    src,
  ]);
  assertEquals(made.code, 0, made.stderr);
  const path = `${new RunFolder(src).modelDir(0, "ar")}/model.safetensors`;
  const original = await Deno.readFile(path);
  const ar = await loadTrained(src, { model: "ar" });
  ar.model.dispose();
  const c = resolveConfig({
    preset: "micro",
    models: "d3pm",
    initFrom: src,
    out: `${dir}/run`,
  });
  // Every opening of the source's weights by the code under test (a
  // header read opens the file, and so does the bounded whole-file read),
  // and every Deno.readFile of them.
  let opens = 0, reads = 0;
  const readFile = Deno.readFile, open = Deno.open;
  Deno.readFile = ((file, options) => {
    if (String(file) === path) reads++;
    return readFile(file, options);
  }) as typeof Deno.readFile;
  Deno.open = ((file, options) => {
    if (String(file) === path) opens++;
    return open(file, options);
  }) as typeof Deno.open;
  let figures;
  try {
    await checkInitFrom(c, ar.tokenizer);
    assertEquals([opens, reads], [1, 0], "the check read more than a header");
    opens = 0;
    const model = new Transformer(
      D3PM.modelConfig(c, ar.tokenizer.vocabSize),
      { seed: 1 },
    );
    figures = await initialiseFrom(model, parseInitFrom(src, 0), ar.tokenizer);
    model.dispose();
    // Its header checked, then the weights read (once).
    assertEquals(
      [opens, reads],
      [2, 0],
      "the D3PM's start read the weights more than once",
    );
  } finally {
    Deno.readFile = readFile;
    Deno.open = open;
  }
  assertEquals(figures.weightsSha256, sha256Hex(original));
  // The check still reads what loading would refuse: data cut short, a
  // tensor missing (a file of the right length for its own header).
  const refused =
    `Option --init-from ${src}/seed-0/ar: Cannot read safetensors ${path}: `;
  await Deno.writeFile(path, original.subarray(0, original.length - 4));
  await assertRejects(
    () => checkInitFrom(c, ar.tokenizer),
    ConfigError,
    `${refused}tensor "ln_f.bias" data_offsets`,
  );
  const { tensors, metadata } = decodeSafetensors(original);
  tensors.delete("ln_f.bias");
  await Deno.writeFile(path, encodeSafetensors(tensors, metadata));
  await assertRejects(
    () => checkInitFrom(c, ar.tokenizer),
    ConfigError,
    `${refused}missing tensor "ln_f.bias"`,
  );
  await Deno.remove(dir, { recursive: true });
});
