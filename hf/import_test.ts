// Import of hand-made Hugging Face directories: what converts (and exactly
// how), and the one-line refusal of every hostile or unsupported input —
// before anything is written.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { exportRun, importCheckpoint, InteropError } from "@d3pm/hf";
import {
  ConfigError,
  IMPORT_VERSION,
  inspectTrained,
  readRun,
  RunFolder,
} from "@d3pm/experiment";
import {
  f32Bytes,
  fakeRun,
  gpt2ConfigJson,
  leftovers,
  PickleWriter,
  rawSafetensors,
  readWeights,
  stateDictPickle,
  storedZip,
  torchZip,
  writeByteBpeFiles,
  writeGpt2Dir,
} from "./_test_util.ts";

const SHAPE = { vocab: 260, d: 8, layers: 2, heads: 2, positions: 16 };

/** Import `from` into a fresh folder beside it and expect a one-line refusal mentioning `fragment`; nothing may be left. */
async function refused(from: string, fragment: string): Promise<string> {
  const parent = await Deno.makeTempDir();
  const error = await assertRejects(
    () => importCheckpoint({ from, to: `${parent}/run` }),
    InteropError,
  );
  assert(
    error.message.includes(fragment),
    `"${error.message}" should mention "${fragment}"`,
  );
  assert(!error.message.includes("\n"), "one line");
  assertEquals(await leftovers(parent), [], "nothing written");
  await Deno.remove(parent, { recursive: true });
  return error.message;
}

async function imported(
  from: string,
  extra: { tokenizer?: "dir" | "gpt2" } = {},
) {
  const to = `${await Deno.makeTempDir()}/run`;
  const result = await importCheckpoint({ from, to, ...extra });
  const weights = await readWeights(`${to}/seed-0/ar/model.safetensors`);
  return { to, result, weights };
}

Deno.test("importCheckpoint() writes a run folder of a GPT-2: the weights as stored, four special rows added, buffers dropped", async () => {
  const dir = await Deno.makeTempDir();
  const n = 16;
  const stored = await writeGpt2Dir(dir, {
    shape: SHAPE,
    extra: [0, 1].flatMap((i) => [
      {
        name: `transformer.h.${i}.attn.bias`,
        dtype: "U8",
        shape: [1, 1, n, n],
        bytes: new Uint8Array(n * n),
      },
      {
        name: `transformer.h.${i}.attn.masked_bias`,
        dtype: "F32",
        shape: [],
        bytes: f32Bytes(Float32Array.of(-1e4)),
      },
    ]),
  });
  const { to, result, weights } = await imported(dir);
  assertEquals(result.architecture, "GPT2LMHeadModel");
  assertEquals(result.droppedTensors.length, 4);
  assertEquals(result.config.vocabSize, 264); // 260 base ids + bos, eos, pad, mask
  assertEquals(result.vocabulary.tokenizer, "bpe");
  for (const [name, t] of stored) {
    if (name === "wte.weight") continue;
    assertEquals(weights.get(name)!.data, t.data, name);
  }
  const wte = weights.get("wte.weight")!;
  const base = stored.get("wte.weight")!.data;
  assertEquals(wte.shape, [264, 8]);
  assertEquals(wte.data.subarray(0, base.length), base);
  // No <|endoftext|> in this vocabulary: every added row is the mean row.
  for (let j = 0; j < 8; j++) {
    let mean = 0;
    for (let r = 0; r < 260; r++) mean += base[r * 8 + j];
    for (let r = 260; r < 264; r++) {
      assertEquals(wte.data[r * 8 + j], Math.fround(mean / 260));
    }
  }
  // The JSON files it writes are laid out as the project's run folders'
  // (two-space indent, a final newline).
  for (const name of ["config.json", "seed-0/ar/config.json", "import.json"]) {
    const text = await Deno.readTextFile(`${to}/${name}`);
    assertEquals(text, JSON.stringify(JSON.parse(text), null, 2) + "\n", name);
  }
  const state = await readRun(to);
  assertEquals(state.status, "imported");
  assertEquals(state.models, [{ seed: 0, kind: "ar", trained: true }]);
  assertEquals(state.config.tokenizer, "bpe");
  assertEquals(state.config.vocabSize, 264);
  const { weightsSha256, weightsSeed, ...process } = JSON.parse(
    await Deno.readTextFile(`${to}/seed-0/ar/process.json`),
  );
  // The weights' SHA-256 as written, which the loader checks.
  assertEquals(weightsSha256, await new RunFolder(to).weightsSha256(0, "ar"));
  assertEquals(weightsSeed, 0);
  assertEquals(process, {
    kind: "autoregressive",
    start: 260,
    padId: 262,
    suppress: [263],
  });
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(to.slice(0, -4), { recursive: true });
});

Deno.test("importCheckpoint() converts float16, bfloat16 and float64 weights to float32 exactly", async () => {
  const dir = await Deno.makeTempDir();
  const stored = await writeGpt2Dir(dir, { shape: SHAPE, prefix: "" });
  // Rewrite ln_f.weight in each dtype, with values each dtype holds exactly
  // (subnormal, negative, large, zero) and their float32 meaning.
  const cases: [string, Uint8Array, number[]][] = [
    [
      "F16",
      Uint8Array.of(
        0x01,
        0x00,
        0x00,
        0xbc,
        0xff,
        0x7b,
        0x00,
        0x80,
        0x00,
        0x3c,
        0x55,
        0x35,
        0x00,
        0x00,
        0x00,
        0x04,
      ),
      [2 ** -24, -1, 65504, -0, 1, 0.333251953125, 0, 2 ** -14],
    ],
    [
      "BF16",
      Uint8Array.of(
        0x80,
        0x3f,
        0x00,
        0xc0,
        0x49,
        0x40,
        0x00,
        0x00,
        0x80,
        0x00,
        0x7f,
        0x7f,
        0x00,
        0x80,
        0xaa,
        0x3e,
      ),
      [1, -2, 3.140625, 0, 2 ** -126, 3.3895313892515355e38, -0, 0.33203125],
    ],
    [
      "F64",
      new Uint8Array(Float64Array.of(0.1, -2, 1e-30, 3, 5, 6, 7, 8).buffer),
      [0.1, -2, 1e-30, 3, 5, 6, 7, 8].map(Math.fround),
    ],
  ];
  for (const [dtype, bytes, expected] of cases) {
    const raw = [...stored].map(([name, t]) =>
      name === "ln_f.weight"
        ? { name, dtype, shape: t.shape, bytes }
        : { name, dtype: "F32", shape: t.shape, bytes: f32Bytes(t.data) }
    );
    await Deno.writeFile(`${dir}/model.safetensors`, rawSafetensors(raw));
    const { to, result, weights } = await imported(dir);
    assertEquals([...weights.get("ln_f.weight")!.data], expected, dtype);
    assertEquals(result.dtypes[dtype], 1);
    await Deno.remove(to.slice(0, -4), { recursive: true });
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint() gives <|bos|> and <|eos|> the row of GPT-2's <|endoftext|>, <|pad|> and <|mask|> the mean row", async () => {
  const dir = await Deno.makeTempDir();
  const shape = { vocab: 50257, d: 4, layers: 1, heads: 2, positions: 8 };
  const stored = await writeGpt2Dir(dir, { shape });
  // GPT-2's own tokenizer files.
  const { tokenizerFiles } = await import("./tokenizer_files.ts");
  const { loadGpt2Tokenizer } = await import("@d3pm/tokenizer");
  const files = tokenizerFiles(await loadGpt2Tokenizer(), { contextLength: 8 });
  await Deno.writeTextFile(`${dir}/vocab.json`, files.get("vocab.json")!);
  await Deno.writeTextFile(`${dir}/merges.txt`, files.get("merges.txt")!);
  const { to, result, weights } = await imported(dir);
  assertEquals(result.vocabulary.tokenizer, "gpt2");
  assertEquals((await readRun(to)).config.tokenizer, "gpt2");
  const wte = weights.get("wte.weight")!.data;
  const base = stored.get("wte.weight")!.data;
  const row = (t: Float32Array, r: number) => [...t.subarray(r * 4, r * 4 + 4)];
  assertEquals(row(wte, 50257), row(base, 50256)); // <|bos|>
  assertEquals(row(wte, 50258), row(base, 50256)); // <|eos|>
  const mean = [0, 1, 2, 3].map((j) => {
    let s = 0;
    for (let r = 0; r < 50257; r++) s += base[r * 4 + j];
    return Math.fround(s / 50257);
  });
  assertEquals(row(wte, 50259), mean); // <|pad|>
  assertEquals(row(wte, 50260), mean); // <|mask|>
  assertEquals(result.vocabulary.added.bos, "row of <|endoftext|> (50256)");
  // Tied, the added rows are output rows: the process scores over GPT-2's
  // 50,257 outputs, <|bos|>/<|eos|> as <|endoftext|>, and never draws them.
  const { weightsSha256: _, weightsSeed: __, ...process } = JSON.parse(
    await Deno.readTextFile(`${to}/seed-0/ar/process.json`),
  );
  assertEquals(
    process,
    {
      kind: "autoregressive",
      start: 50257,
      padId: 50259,
      suppress: [50260, 50257, 50258],
      outputs: 50257,
      alias: [[50257, 50256], [50258, 50256]],
    },
  );
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(to.slice(0, -4), { recursive: true });
});

Deno.test("an import made before outputs were recorded is told by import.json's missing importVersion, not by the wording of its added rows", async () => {
  const root = await Deno.makeTempDir();
  type Json = Record<string, unknown>;
  const edit = async (path: string, change: (o: Json) => unknown) =>
    await Deno.writeTextFile(
      path,
      JSON.stringify(change(JSON.parse(await Deno.readTextFile(path)))),
    );
  // A GPT-2 vocabulary: <|bos|> and <|eos|> copy <|endoftext|>'s row, and
  // the process scores over the checkpoint's outputs.
  const gpt2 = `${root}/gpt2`;
  await writeGpt2Dir(gpt2, {
    shape: { vocab: 50257, d: 4, layers: 1, heads: 2, positions: 8 },
  });
  const { tokenizerFiles } = await import("./tokenizer_files.ts");
  const { loadGpt2Tokenizer } = await import("@d3pm/tokenizer");
  const files = tokenizerFiles(await loadGpt2Tokenizer(), { contextLength: 8 });
  await Deno.writeTextFile(`${gpt2}/vocab.json`, files.get("vocab.json")!);
  await Deno.writeTextFile(`${gpt2}/merges.txt`, files.get("merges.txt")!);
  const run = `${root}/run`;
  await importCheckpoint({ from: gpt2, to: run });
  const record = JSON.parse(await Deno.readTextFile(`${run}/import.json`));
  assertEquals(record.importVersion, IMPORT_VERSION);
  await inspectTrained(run, { model: "ar" });
  // Imported between the outputs and the version: no version, but its
  // process has them — accepted.
  await edit(`${run}/import.json`, ({ importVersion: _, ...old }) => old);
  await inspectTrained(run, { model: "ar" });
  // Imported before: no version and no outputs (whatever its added rows
  // say) — refused with the command that imports it again.
  await edit(`${run}/seed-0/ar/process.json`, (p) => {
    const { outputs: _, alias: __, ...old } = p;
    return { ...old, suppress: [50260] };
  });
  await edit(`${run}/import.json`, (r) => ({
    ...r,
    vocabulary: {
      ...r.vocabulary as Json,
      added: { bos: "copy of the end-of-text row", eos: "the same" },
    },
  }));
  await assertRejects(
    () => inspectTrained(run, { model: "ar" }),
    ConfigError,
    `import it again with deno task import --from ${await Deno.realPath(
      gpt2,
    )} --to ${run} --force`,
  );
  // A new import whose process rightly has no outputs (no <|endoftext|>:
  // the added rows stay outputs) is accepted.
  const bpe = `${root}/bpe`;
  await writeGpt2Dir(bpe, { shape: SHAPE });
  await importCheckpoint({ from: bpe, to: `${root}/bpe-run` });
  const process = JSON.parse(
    await Deno.readTextFile(`${root}/bpe-run/seed-0/ar/process.json`),
  );
  assertEquals(process.outputs, undefined);
  await inspectTrained(`${root}/bpe-run`, { model: "ar" });
  await Deno.remove(root, { recursive: true });
});

Deno.test("importCheckpoint() says in one notice line how many added tokens it dropped and which, the first five; import.json lists them all", async () => {
  const root = await Deno.makeTempDir();
  const from = `${root}/hf`;
  // 260 base ids (4 merges), 267 embedding rows: 7 added tokens, listed by
  // tokenizer_config.json out of order, that the project's tokenizer lacks.
  await writeGpt2Dir(from, { shape: { ...SHAPE, vocab: 267 } });
  await writeByteBpeFiles(from, [[97, 97], [97, 98], [97, 99], [97, 100]]);
  const names = ["<|im_start|>", "<|im_end|>", "[PAD]", "a", "b", "c", "d"];
  await Deno.writeTextFile(
    `${from}/tokenizer_config.json`,
    JSON.stringify({
      added_tokens_decoder: Object.fromEntries(
        names.map((content, i) => [String(260 + i), { content }]).reverse(),
      ),
    }),
  );
  const lines: string[] = [];
  const result = await importCheckpoint({
    from,
    to: `${root}/run`,
    log: (line) => lines.push(line),
  });
  const all = names.map((n, i) => `${JSON.stringify(n)} (${260 + i})`);
  assertEquals(result.vocabulary.dropped, 7);
  assertEquals(result.vocabulary.droppedTokens, all);
  assertEquals(lines, [
    `notice: ${from}'s tokenizer files add 7 tokens the project's tokenizer lacks, dropped with their rows (text holding them is read as plain text): "<|im_start|>" (260), "<|im_end|>" (261), "[PAD]" (262), "a" (263), "b" (264), and 2 more; import.json lists them all`,
  ]);
  const record = JSON.parse(await Deno.readTextFile(`${root}/run/import.json`));
  assertEquals(record.vocabulary.droppedTokens, all);
  // Without added tokens: no notice.
  const plain = `${root}/plain`;
  await writeGpt2Dir(plain, { shape: SHAPE });
  await importCheckpoint({
    from: plain,
    to: `${root}/plain-run`,
    log: (line) => lines.push(line),
  });
  assertEquals(lines.length, 1);
  await Deno.remove(root, { recursive: true });
});

Deno.test("importCheckpoint() takes --tokenizer gpt2 for a directory without tokenizer files, and refuses without it", async () => {
  const dir = await Deno.makeTempDir();
  await writeGpt2Dir(dir, {
    shape: { vocab: 50257, d: 4, layers: 1, heads: 2, positions: 8 },
  });
  await Deno.remove(`${dir}/vocab.json`);
  await Deno.remove(`${dir}/merges.txt`);
  await refused(dir, "No tokenizer files in");
  const { to, result, weights } = await imported(dir, { tokenizer: "gpt2" });
  assertEquals(result.config.vocabSize, 50261);
  // The project's GPT-2 tokenizer has <|endoftext|> at 50256: <|bos|> and
  // <|eos|> copy its row, and the process scores them as it.
  const wte = weights.get("wte.weight")!.data;
  const row = (r: number) => [...wte.subarray(r * 4, r * 4 + 4)];
  assertEquals(row(50257), row(50256));
  assertEquals(row(50258), row(50256));
  assertEquals(result.vocabulary.added.eos, "row of <|endoftext|> (50256)");
  const process = JSON.parse(
    await Deno.readTextFile(`${to}/seed-0/ar/process.json`),
  );
  assertEquals(process.alias, [[50257, 50256], [50258, 50256]]);
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(to.slice(0, -4), { recursive: true });
});

Deno.test("importCheckpoint() accepts a head stored equal to the embedding and refuses an untied one", async () => {
  const dir = await Deno.makeTempDir();
  await writeGpt2Dir(dir, { shape: SHAPE, head: "equal" });
  const { to } = await imported(dir);
  await Deno.remove(to.slice(0, -4), { recursive: true });
  await writeGpt2Dir(dir, { shape: SHAPE, head: "different" });
  await refused(
    dir,
    "lm_head.weight differs from transformer.wte.weight: an untied output head",
  );
  // A head that differs in its first or its last value only.
  const wte = (await writeGpt2Dir(dir, { shape: SHAPE })).get("wte.weight")!;
  for (const at of [0, wte.data.length - 1]) {
    const head = wte.data.slice();
    head[at] += 0.5;
    await writeGpt2Dir(dir, {
      shape: SHAPE,
      extra: [{
        name: "lm_head.weight",
        dtype: "F32",
        shape: wte.shape,
        bytes: f32Bytes(head),
      }],
    });
    await refused(dir, "lm_head.weight differs from transformer.wte.weight");
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint() reads sharded safetensors through their index", async () => {
  const dir = await Deno.makeTempDir();
  const stored = await writeGpt2Dir(dir, { shape: SHAPE, prefix: "" });
  await Deno.remove(`${dir}/model.safetensors`);
  const names = [...stored.keys()];
  const shard = (part: string[]) =>
    rawSafetensors(part.map((name) => ({
      name,
      dtype: "F32",
      shape: stored.get(name)!.shape,
      bytes: f32Bytes(stored.get(name)!.data),
    })));
  const half = Math.ceil(names.length / 2);
  await Deno.writeFile(
    `${dir}/model-00001-of-00002.safetensors`,
    shard(names.slice(0, half)),
  );
  await Deno.writeFile(
    `${dir}/model-00002-of-00002.safetensors`,
    shard(names.slice(half)),
  );
  await Deno.writeTextFile(
    `${dir}/model.safetensors.index.json`,
    JSON.stringify({
      weight_map: Object.fromEntries(
        names.map((
          n,
          i,
        ) => [n, `model-0000${i < half ? 1 : 2}-of-00002.safetensors`]),
      ),
    }),
  );
  const { to, weights } = await imported(dir);
  for (const [name, t] of stored) {
    if (name !== "wte.weight") assertEquals(weights.get(name)!.data, t.data);
  }
  await Deno.remove(to.slice(0, -4), { recursive: true });
  // An index naming a file outside the directory is refused.
  await Deno.writeTextFile(
    `${dir}/model.safetensors.index.json`,
    JSON.stringify({ weight_map: { "wte.weight": "../secret.safetensors" } }),
  );
  await refused(dir, "shards must be .safetensors files inside the directory");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint() reads a torch zip pytorch_model.bin without running its pickle, and refuses what is not a state dict of tensors", async () => {
  const dir = await Deno.makeTempDir();
  const stored = await writeGpt2Dir(dir, { shape: SHAPE, prefix: "" });
  await Deno.remove(`${dir}/model.safetensors`);
  const names = [...stored.keys()];
  const storages = new Map(
    names.map((n, i) => [String(i), f32Bytes(stored.get(n)!.data)]),
  );
  const pickle = stateDictPickle(
    names.map((name, i) => ({
      name,
      shape: stored.get(name)!.shape,
      key: String(i),
    })),
  );
  await Deno.writeFile(
    `${dir}/pytorch_model.bin`,
    torchZip(pickle, storages, { byteorder: "little" }),
  );
  const { to, result, weights } = await imported(dir);
  for (const [name, t] of stored) {
    if (name !== "wte.weight") {
      assertEquals(weights.get(name)!.data, t.data, name);
    }
  }
  assertEquals(result.dtypes.F32, names.length);
  await Deno.remove(to.slice(0, -4), { recursive: true });

  // A pickle that names os.system is refused at the GLOBAL, nothing called.
  const evil = new PickleWriter().global("os", "system").str("touch /tmp/pwned")
    .op(0x85, 0x52).bytes();
  await Deno.writeFile(`${dir}/pytorch_model.bin`, torchZip(evil, new Map()));
  await refused(dir, "it names os.system, which a state dict does not use");
  // So is one building an object by another opcode (INST, OBJ, NEWOBJ).
  for (const op of [0x69, 0x6f, 0x81]) {
    const odd = new PickleWriter().op(0x7d, op).bytes();
    await Deno.writeFile(`${dir}/pytorch_model.bin`, torchZip(odd, new Map()));
    await refused(dir, "is not one a state dict uses");
  }
  // A value that is not a tensor.
  const notTensor = new PickleWriter().op(0x7d).str("x").int(3).op(0x73)
    .bytes();
  await Deno.writeFile(
    `${dir}/pytorch_model.bin`,
    torchZip(notTensor, new Map()),
  );
  await refused(dir, "entry x is not a tensor");
  // The legacy format (a bare pickle), big-endian, and compressed records.
  await Deno.writeFile(`${dir}/pytorch_model.bin`, pickle);
  await refused(dir, "not in torch's zip format");
  await Deno.writeFile(
    `${dir}/pytorch_model.bin`,
    torchZip(pickle, storages, { byteorder: "big" }),
  );
  await refused(dir, "big-endian");
  await Deno.writeFile(
    `${dir}/pytorch_model.bin`,
    storedZip([{ name: "archive/data.pkl", data: pickle, method: 8 }]),
  );
  await refused(dir, "is compressed (method 8)");
  // A storage shorter than it says (a truncated archive).
  const short = new Map(storages);
  short.set("0", short.get("0")!.subarray(0, 8));
  await Deno.writeFile(`${dir}/pytorch_model.bin`, torchZip(pickle, short));
  await refused(dir, "truncated file?");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint() refuses a truncated safetensors file", async () => {
  const dir = await Deno.makeTempDir();
  await writeGpt2Dir(dir, { shape: SHAPE });
  const bytes = await Deno.readFile(`${dir}/model.safetensors`);
  await Deno.writeFile(
    `${dir}/model.safetensors`,
    bytes.subarray(0, bytes.length - 100),
  );
  await refused(dir, "(truncated file?)");
  await Deno.writeFile(`${dir}/model.safetensors`, bytes.subarray(0, 5));
  await refused(dir, "shorter than the 8-byte header length");
  await Deno.writeFile(`${dir}/model.safetensors`, bytes.subarray(0, 60));
  await refused(dir, "exceeds the file size");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint() refuses a config.json that contradicts the tensors, naming both", async () => {
  const dir = await Deno.makeTempDir();
  await writeGpt2Dir(dir, { shape: SHAPE });
  const config = (extra: Record<string, unknown>) =>
    Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify(gpt2ConfigJson(SHAPE, extra)),
    );
  await config({ n_embd: 16 });
  await refused(
    dir,
    "wpe.weight of model.safetensors is [16,8] but the model config.json describes (2 layers, width 16, 2 heads, MLP 64) needs [16,16]",
  );
  await config({ n_layer: 3 });
  await refused(dir, "tensor transformer.h.2.ln_1.weight is missing");
  await config({ n_layer: 1 });
  await refused(
    dir,
    "12 of its 28 tensors are not part of the model config.json describes (1 layers",
  );
  await config({ vocab_size: 300 });
  await refused(
    dir,
    "config.json says vocab_size 300 but tensor transformer.wte.weight",
  );
  await config({ n_inner: 64 });
  await refused(dir, "needs [8,64]");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint() refuses 10,000 tensors by their names, before reading any data", async () => {
  const dir = await Deno.makeTempDir();
  const extra = Array.from({ length: 10_000 }, (_, i) => ({
    name: `junk.${i}`,
    dtype: "F32",
    shape: [1],
    bytes: new Uint8Array(4),
  }));
  await writeGpt2Dir(dir, { shape: SHAPE, extra });
  await refused(
    dir,
    "10000 of its 10028 tensors are not part of the model config.json describes",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint() refuses NaN and infinite weights, naming the tensor and the index", async () => {
  const dir = await Deno.makeTempDir();
  for (
    const [value, word] of [[NaN, "NaN"], [-Infinity, "-Infinity"]] as const
  ) {
    const stored = await writeGpt2Dir(dir, { shape: SHAPE, prefix: "" });
    const raw = [...stored].map(([name, t]) => {
      const data = t.data.slice();
      if (name === "h.1.mlp.c_fc.weight") data[17] = value;
      return { name, dtype: "F32", shape: t.shape, bytes: f32Bytes(data) };
    });
    await Deno.writeFile(`${dir}/model.safetensors`, rawSafetensors(raw));
    await refused(
      dir,
      `tensor h.1.mlp.c_fc.weight of model.safetensors holds ${word} at index 17 (of 256); weights must be finite`,
    );
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint() refuses weights of an integer or boolean dtype", async () => {
  const dir = await Deno.makeTempDir();
  const stored = await writeGpt2Dir(dir, { shape: SHAPE, prefix: "" });
  for (const [dtype, size] of [["I64", 8], ["BOOL", 1], ["U8", 1]] as const) {
    const raw = [...stored].map(([name, t]) =>
      name === "ln_1.bias" || name === "h.0.ln_1.bias"
        ? {
          name,
          dtype,
          shape: t.shape,
          bytes: new Uint8Array(size * t.data.length),
        }
        : { name, dtype: "F32", shape: t.shape, bytes: f32Bytes(t.data) }
    );
    await Deno.writeFile(`${dir}/model.safetensors`, rawSafetensors(raw));
    await refused(
      dir,
      `tensor h.0.ln_1.bias of model.safetensors has dtype ${dtype}; weights must be floating point (F32, F16, BF16, F64)`,
    );
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint() refuses unknown architectures and settings the project's model cannot run", async () => {
  const dir = await Deno.makeTempDir();
  await writeGpt2Dir(dir, { shape: SHAPE });
  const write = (config: Record<string, unknown>) =>
    Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  await write({ model_type: "llama", architectures: ["LlamaForCausalLM"] });
  await refused(
    dir,
    "Unknown architecture LlamaForCausalLM (model_type llama): the importer reads GPT2LMHeadModel or GPT2Model",
  );
  await write({
    ...gpt2ConfigJson(SHAPE),
    architectures: ["GPT2ForSequenceClassification"],
  });
  await refused(
    dir,
    "Unknown architecture GPT2ForSequenceClassification (model_type gpt2)",
  );
  await write({ n_embd: 8 });
  await refused(dir, "(model_type missing)");
  await write(gpt2ConfigJson(SHAPE, { activation_function: "relu" }));
  await refused(
    dir,
    "activation_function is \"relu\"; the project's model uses GELU's tanh approximation",
  );
  await write(gpt2ConfigJson(SHAPE, { layer_norm_epsilon: 1e-6 }));
  await refused(
    dir,
    "layer_norm_epsilon is 0.000001; the project's LayerNorm uses 1e-5",
  );
  await write(gpt2ConfigJson(SHAPE, { scale_attn_by_inverse_layer_idx: true }));
  await refused(dir, "scale_attn_by_inverse_layer_idx is true");
  const neox = {
    model_type: "gpt_neox",
    architectures: ["GPTNeoXForCausalLM"],
    hidden_size: 8,
    num_attention_heads: 2,
    num_hidden_layers: 2,
    intermediate_size: 32,
    hidden_act: "gelu_new",
    use_parallel_residual: false,
    rotary_pct: 1,
    vocab_size: 260,
  };
  await write({ ...neox, use_parallel_residual: true });
  await refused(
    dir,
    "use_parallel_residual is true; the project's model adds attention and MLP one after the other",
  );
  await write({ ...neox, rotary_pct: 0.25 });
  await refused(dir, "rotary embeddings on 0.25 of each head with base 10000");
  await write({ ...neox, hidden_act: "gelu" });
  await refused(dir, 'hidden_act is "gelu"');
  // A key left out means transformers' GPTNeoXConfig default, which is not
  // the project's: use_parallel_residual True, rotary_pct 0.25, hidden_act
  // "gelu" (erf). Catches an absent key read as the project's value.
  const without = (key: string) =>
    Object.fromEntries(Object.entries(neox).filter(([k]) => k !== key));
  await write(without("use_parallel_residual"));
  await refused(dir, "use_parallel_residual is true");
  await write(without("rotary_pct"));
  await refused(dir, "rotary embeddings on 0.25 of each head");
  await write(without("hidden_act"));
  await refused(dir, 'hidden_act is "gelu"');
  await Deno.writeTextFile(`${dir}/config.json`, "{ not json");
  await refused(dir, "config.json is not valid JSON");
  await Deno.remove(`${dir}/config.json`);
  await refused(dir, "No config.json in");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint() names what it reads when a directory has no weights it supports", async () => {
  const dir = await Deno.makeTempDir();
  await writeGpt2Dir(dir, { shape: SHAPE });
  await Deno.rename(`${dir}/model.safetensors`, `${dir}/tf_model.h5`);
  await refused(
    dir,
    "expected model.safetensors (or shards listed in model.safetensors.index.json) or pytorch_model.bin in torch's zip format; found tf_model.h5",
  );
  await refused(
    `${dir}/none`,
    "No such directory: " + dir +
      "/none: --from takes a local Hugging Face model directory (config.json with model.safetensors",
  );
  await refused(`${dir}/tf_model.h5`, "is not a directory");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint() refuses an existing target without force, and with force replaces only a run folder it wrote", async () => {
  const dir = await Deno.makeTempDir();
  await writeGpt2Dir(dir, { shape: SHAPE });
  const to = `${dir}/out`;
  await Deno.mkdir(to);
  await Deno.writeTextFile(`${to}/mine.txt`, "keep me");
  await assertRejects(
    () => importCheckpoint({ from: dir, to }),
    InteropError,
    `${to} already exists: pass --force to replace it, or choose another --to`,
  );
  // --force does not replace a folder of the user's, nor the source itself.
  await assertRejects(
    () => importCheckpoint({ from: dir, to, force: true }),
    InteropError,
    `${to} holds files but no import.json: --force replaces only a run folder deno task import wrote (or an empty folder); choose another --to`,
  );
  assertEquals(await Deno.readTextFile(`${to}/mine.txt`), "keep me");
  await assertRejects(
    () => importCheckpoint({ from: dir, to: dir, force: true }),
    InteropError,
    `--to ${dir} is --from ${dir} itself: replacing it would delete what is read`,
  );
  const run = `${dir}/run`;
  await importCheckpoint({ from: dir, to: run });
  const before = await Deno.readTextFile(`${run}/import.json`);
  // The checkpoint moved into the run folder it was imported to, imported
  // again onto that folder: refused, not deleted with it.
  const inside = `${run}/my-gpt2`;
  await writeGpt2Dir(inside, { shape: SHAPE });
  await assertRejects(
    () => importCheckpoint({ from: inside, to: run, force: true }),
    InteropError,
    `--to ${run} holds --from ${inside} itself: replacing it would delete what is read; choose a --to outside ${inside}`,
  );
  assert(
    (await Deno.stat(`${inside}/model.safetensors`)).isFile,
    "the checkpoint is kept",
  );
  await Deno.remove(inside, { recursive: true });
  // A failed forced import leaves the old run folder as it was.
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify(gpt2ConfigJson(SHAPE, { n_layer: 5 })),
  );
  await assertRejects(
    () => importCheckpoint({ from: dir, to: run, force: true }),
    InteropError,
  );
  assertEquals(await Deno.readTextFile(`${run}/import.json`), before);
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify(gpt2ConfigJson(SHAPE)),
  );
  await importCheckpoint({ from: dir, to: run, force: true });
  assertEquals((await readRun(run)).status, "imported");
  assertEquals(
    (await leftovers(dir)).filter((n) =>
      n.startsWith("out") || n.startsWith("run")
    ),
    ["out", "run"],
    "no temporary folders",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint() with force refuses an imported run folder holding a user's files, keeps them, and replaces one holding only its own", async () => {
  const dir = await Deno.makeTempDir();
  await writeGpt2Dir(dir, { shape: SHAPE });
  const run = `${dir}/run`;
  await importCheckpoint({ from: dir, to: run });
  const before = await Deno.readTextFile(`${run}/import.json`);
  await Deno.writeTextFile(`${run}/notes.md`, "keep me");
  await Deno.writeTextFile(`${run}/seed-0/ar/scratch.txt`, "and me");
  await Deno.mkdir(`${run}/seed-1`);
  await Deno.writeTextFile(`${run}/metrics.jsonl`, "{}\n");
  await assertRejects(
    () => importCheckpoint({ from: dir, to: run, force: true }),
    InteropError,
    `${run} holds metrics.jsonl, notes.md, seed-0/ar/scratch.txt, and 1 more, which a run folder deno task import wrote does not write: --force would delete them; move them out or choose another --to`,
  );
  assertEquals(await Deno.readTextFile(`${run}/notes.md`), "keep me");
  assertEquals(
    await Deno.readTextFile(`${run}/seed-0/ar/scratch.txt`),
    "and me",
  );
  assertEquals(await Deno.readTextFile(`${run}/import.json`), before);
  // Only the import's own files (and an empty folder of another kind):
  // replaced as before.
  for (const name of ["notes.md", "seed-0/ar/scratch.txt", "seed-1"]) {
    await Deno.remove(`${run}/${name}`);
  }
  await Deno.remove(`${run}/metrics.jsonl`);
  await Deno.mkdir(`${run}/seed-0/mlm`);
  await importCheckpoint({ from: dir, to: run, force: true });
  assertEquals((await readRun(run)).status, "imported");
  assertEquals(
    await leftovers(run),
    ["config.json", "import.json", "seed-0", "tokenizer.json"],
  );
  assertEquals(await leftovers(`${run}/seed-0`), ["ar"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint()'s notice says 1 token in the singular, lists five in full and adds 'and 1 more' from the sixth", async () => {
  const root = await Deno.makeTempDir();
  const names = ["<|im_start|>", "<|im_end|>", "[PAD]", "a", "b", "c"];
  const noticeOf = async (count: number) => {
    const from = `${root}/hf-${count}`;
    await writeGpt2Dir(from, { shape: { ...SHAPE, vocab: 260 + count } });
    await writeByteBpeFiles(from, [[97, 97], [97, 98], [97, 99], [97, 100]]);
    await Deno.writeTextFile(
      `${from}/tokenizer_config.json`,
      JSON.stringify({
        added_tokens_decoder: Object.fromEntries(
          names.slice(0, count).map((content, i) => [
            String(260 + i),
            { content },
          ]),
        ),
      }),
    );
    const lines: string[] = [];
    await importCheckpoint({
      from,
      to: `${root}/run-${count}`,
      log: (line) => lines.push(line),
    });
    return lines.map((line) =>
      line.replace(
        `notice: ${from}'s tokenizer files add `,
        "",
      ).replace(
        " the project's tokenizer lacks, dropped with their rows (text holding them is read as plain text)",
        "",
      )
    );
  };
  const five =
    `"<|im_start|>" (260), "<|im_end|>" (261), "[PAD]" (262), "a" (263), "b" (264)`;
  assertEquals(await noticeOf(1), [
    `1 token: "<|im_start|>" (260); import.json lists them all`,
  ]);
  assertEquals(await noticeOf(5), [
    `5 tokens: ${five}; import.json lists them all`,
  ]);
  assertEquals(await noticeOf(6), [
    `6 tokens: ${five}, and 1 more; import.json lists them all`,
  ]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("importCheckpoint() reads a config.json of exactly 4 MiB and refuses one byte more, before anything is written", async () => {
  const dir = await Deno.makeTempDir();
  await writeGpt2Dir(dir, { shape: SHAPE });
  const text = JSON.stringify(gpt2ConfigJson(SHAPE));
  const padded = (size: number) =>
    text.slice(0, -1) + " ".repeat(size - text.length) + "}";
  await Deno.writeTextFile(`${dir}/config.json`, padded(4 << 20));
  const { to } = await imported(dir);
  await Deno.remove(to.slice(0, -4), { recursive: true });
  await Deno.writeTextFile(`${dir}/config.json`, padded((4 << 20) + 1));
  await refused(dir, "config.json: it is larger than the 4.0 MiB");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importCheckpoint() records the first class config.json names, and a config.json that names none as its model_type's first (GPT2LMHeadModel)", async () => {
  const dir = await Deno.makeTempDir();
  await writeGpt2Dir(dir, { shape: SHAPE });
  const { architectures: _, ...config } = gpt2ConfigJson(SHAPE);
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  const { to, result } = await imported(dir);
  assertEquals(result.architecture, "GPT2LMHeadModel");
  const record = JSON.parse(await Deno.readTextFile(`${to}/import.json`));
  assertEquals(record.architecture, "GPT2LMHeadModel");
  await Deno.remove(to.slice(0, -4), { recursive: true });
  // Named, the first class named is the one recorded.
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({ ...config, architectures: ["GPT2Model"] }),
  );
  const named = await imported(dir);
  assertEquals(named.result.architecture, "GPT2Model");
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(named.to.slice(0, -4), { recursive: true });
});

Deno.test("importCheckpoint() reads a D3PMForMaskedLM without the project's d3pm_deno record as the d3pm (or --model mlm) denoiser of a preset's run with its own shape, saying so in one notice line", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  await fakeRun(run, { emaDecay: 0, models: "d3pm" });
  const hf = `${root}/hf`;
  await exportRun({ run, model: "d3pm", to: hf });
  await exportRun({ run, model: "d3pm", to: `${root}/hf-own` });
  const { d3pm_deno: _, ...config } = JSON.parse(
    await Deno.readTextFile(`${hf}/config.json`),
  );
  await Deno.writeTextFile(`${hf}/config.json`, JSON.stringify(config));
  const lines: string[] = [];
  const result = await importCheckpoint({
    from: hf,
    to: `${root}/back`,
    log: (line) => lines.push(line),
  });
  assertEquals([result.architecture, result.model], [
    "D3PMForMaskedLM",
    "d3pm",
  ]);
  // What was assumed is said in one line, with the option that sets it.
  assertEquals(lines, [
    `notice: ${hf}/config.json has no d3pm_deno record (deno task export writes it): imported as the d3pm model (--model mlm for a masked LM) with the tiny preset's process (mdlm loss, 1000 diffusion steps); the process it was trained with is not known`,
  ]);
  const mlm = await importCheckpoint({
    from: hf,
    to: `${root}/mlm`,
    model: "mlm",
    log: (line) => lines.push(line),
  });
  assertEquals(mlm.model, "mlm");
  assert(lines[1].includes("imported as the mlm model with the tiny preset's"));
  assertEquals((await readRun(`${root}/mlm`)).models[0].kind, "mlm");
  // The project's own export names its contestant: --model may not differ.
  await assertRejects(
    () =>
      importCheckpoint({
        from: `${root}/hf-own`,
        to: `${root}/x`,
        model: "mlm",
      }),
    InteropError,
    "--model mlm, but config.json's d3pm_deno record names the d3pm model: leave out --model",
  );
  assertEquals(
    result.config,
    JSON.parse(await Deno.readTextFile(`${run}/seed-0/d3pm/config.json`)),
  );
  const back = await readRun(`${root}/back`);
  assertEquals(back.models, [{ seed: 0, kind: "d3pm", trained: true }]);
  assertEquals(back.config.alibi, 0);
  await Deno.remove(root, { recursive: true });
});
