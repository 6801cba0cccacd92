// An adversarial pass over the Hugging Face interop (audit27): each test is
// an input that was mishandled — a read that hung on a FIFO or never ended on
// a device, a --force that deleted a user's folder, a raw RangeError, a
// multi-megabyte "one-line" error, a valid checkpoint refused — and is now a
// one-line refusal (or an import) with nothing written. See hf/README.md,
// "Hostile inputs".
import { assert, assertEquals, assertRejects } from "@std/assert";
import { exportRun, importCheckpoint, InteropError } from "@d3pm/hf";
import { ConfigError, readRun } from "@d3pm/experiment";
import { within } from "../core/_within_test_util.ts";
import {
  fakeRun,
  leftovers,
  stateDictPickle,
  storedZip,
  torchZip,
  writeGpt2Dir,
} from "./_test_util.ts";
import { zipRecords } from "./_zip.ts";
import { RandomAccessFile } from "./_file.ts";

const SHAPE = { vocab: 260, d: 8, layers: 2, heads: 2, positions: 16 };

async function mkfifo(path: string): Promise<void> {
  await new Deno.Command("mkfifo", { args: [path] }).output();
}

/** The error a call ended with, failing on a hang or a success. */
function errorOf(
  out: { value: unknown } | { error: unknown } | "timeout",
  what: string,
): Error {
  if (out === "timeout") throw new Error(`${what}: hung`);
  if (!("error" in out)) throw new Error(`${what}: succeeded`);
  return out.error as Error;
}

/** The import's one-line refusal within 5 s (a FIFO read is released after), nothing written. */
async function refusedWithin(
  from: string,
  fragment: string,
  fifo?: string,
): Promise<void> {
  const parent = await Deno.makeTempDir();
  const out = await within(
    5000,
    () => importCheckpoint({ from, to: `${parent}/run` }),
    fifo,
  );
  const e = errorOf(out, fragment);
  assert(e instanceof InteropError, `${e.name}: ${e.message}`);
  assert(e.message.includes(fragment), `"${e.message}" lacks "${fragment}"`);
  assert(!e.message.includes("\n") && e.message.length < 400, "one line");
  assertEquals(await leftovers(parent), [], "nothing written");
  await Deno.remove(parent, { recursive: true });
}

Deno.test("import: a FIFO or a device in place of config.json, the weights, a shard or the index is refused, not read", async () => {
  const dir = await Deno.makeTempDir();
  const from = `${dir}/hf`;
  await writeGpt2Dir(from, { shape: SHAPE });
  const config = await Deno.readTextFile(`${from}/config.json`);
  await Deno.remove(`${from}/config.json`);
  await mkfifo(`${from}/config.json`);
  await refusedWithin(
    from,
    `${from}/config.json: it is a FIFO (expected a regular file)`,
    `${from}/config.json`,
  );
  await Deno.remove(`${from}/config.json`);
  await Deno.symlink("/dev/zero", `${from}/config.json`);
  await refusedWithin(from, `${from}/config.json: it is a character device`);
  await Deno.remove(`${from}/config.json`);
  await Deno.writeTextFile(`${from}/config.json`, config);

  // model.safetensors: a FIFO is named, not passed over as "no weights".
  await Deno.rename(`${from}/model.safetensors`, `${dir}/weights`);
  await mkfifo(`${from}/model.safetensors`);
  await refusedWithin(
    from,
    `${from}/model.safetensors: it is a FIFO (expected a regular file)`,
  );
  await Deno.remove(`${from}/model.safetensors`);

  // Shards: a FIFO shard, a missing shard, a FIFO index.
  await Deno.symlink(`${dir}/weights`, `${from}/model-1.safetensors`);
  const index = (files: string[]) =>
    JSON.stringify({
      weight_map: Object.fromEntries(files.map((f, i) => [`t${i}`, f])),
    });
  await Deno.writeTextFile(
    `${from}/model.safetensors.index.json`,
    index(["model-1.safetensors", "model-2.safetensors"]),
  );
  await refusedWithin(
    from,
    "names the shard model-2.safetensors, which is not in",
  );
  await mkfifo(`${from}/model-2.safetensors`);
  await refusedWithin(
    from,
    `${from}/model-2.safetensors: it is a FIFO (expected a regular file)`,
    `${from}/model-2.safetensors`,
  );
  await Deno.remove(`${from}/model-2.safetensors`);
  await Deno.remove(`${from}/model.safetensors.index.json`);
  await mkfifo(`${from}/model.safetensors.index.json`);
  await refusedWithin(
    from,
    "model.safetensors.index.json: it is a FIFO",
    `${from}/model.safetensors.index.json`,
  );
  // The same folder with a plain index imports (a symlinked shard, as in a
  // Hugging Face cache, is read).
  await Deno.remove(`${from}/model.safetensors.index.json`);
  await Deno.writeTextFile(
    `${from}/model.safetensors.index.json`,
    index(["model-1.safetensors"]),
  );
  await importCheckpoint({ from, to: `${dir}/run` });
  assertEquals((await readRun(`${dir}/run`)).status, "imported");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("RandomAccessFile.open refuses a FIFO before opening it", async () => {
  const dir = await Deno.makeTempDir();
  await mkfifo(`${dir}/f`);
  const out = await within(
    3000,
    () => RandomAccessFile.open(`${dir}/f`),
    `${dir}/f`,
  );
  assertEquals(
    errorOf(out, "open").message,
    `Cannot read ${dir}/f: it is a FIFO (expected a regular file)`,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("export: a FIFO in place of the weights or the model's config.json is refused; a malformed config.json or process.json is named", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  await fakeRun(run, { emaDecay: 0 });
  const modelDir = `${run}/seed-0/ar`;
  // A file export reads is an InteropError; the run's own process.json, read
  // by the run folder's weights check first, a ConfigError (a broken run).
  const attempt = async (
    fragment: string,
    fifo?: string,
    kind: abstract new (...args: never[]) => Error = InteropError,
  ) => {
    const out = await within(
      5000,
      () => exportRun({ run, to: `${root}/out` }),
      fifo,
    );
    const e = errorOf(out, fragment);
    assert(e instanceof kind, `${e.name}: ${e.message}`);
    assert(e.message.includes(fragment), `"${e.message}" lacks "${fragment}"`);
    assertEquals(await leftovers(root), ["run"], "nothing written");
  };
  const aside = await Deno.makeTempDir();
  for (const name of ["model.safetensors", "config.json"]) {
    const path = `${modelDir}/${name}`;
    await Deno.rename(path, `${aside}/${name}`);
    await mkfifo(path);
    await attempt(`${path}: it is a FIFO (expected a regular file)`, path);
    await Deno.remove(path);
    await Deno.rename(`${aside}/${name}`, path);
  }
  await Deno.remove(aside, { recursive: true });
  for (const name of ["config.json", "process.json"]) {
    const path = `${modelDir}/${name}`;
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, "{bad");
    await attempt(
      `${path} is not valid JSON`,
      undefined,
      name === "process.json" ? ConfigError : InteropError,
    );
    await Deno.writeTextFile(path, text);
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("--force replaces only what the command wrote: a user's folder, a file, the source and the run stay", async () => {
  const root = await Deno.makeTempDir();
  const from = `${root}/hf`;
  await writeGpt2Dir(from, { shape: SHAPE });
  const run = `${root}/run`;
  await fakeRun(run, { emaDecay: 0 });
  const user = `${root}/user`;
  await Deno.mkdir(user);
  await Deno.writeTextFile(`${user}/thesis.tex`, "precious");
  await Deno.writeTextFile(`${root}/file`, "a file");
  const snapshot = async () =>
    JSON.stringify([
      await leftovers(root),
      await leftovers(from),
      await leftovers(run),
      await Deno.readTextFile(`${user}/thesis.tex`),
      await Deno.readTextFile(`${root}/file`),
    ]);
  const before = await snapshot();
  const cases: [() => Promise<unknown>, string][] = [
    [
      () => importCheckpoint({ from, to: user, force: true }),
      `${user} holds files but no import.json`,
    ],
    [
      () => importCheckpoint({ from, to: from, force: true }),
      `--to ${from} is --from ${from} itself`,
    ],
    [
      () => importCheckpoint({ from, to: run, force: true }),
      `${run} holds files but no import.json`,
    ],
    [
      () => importCheckpoint({ from, to: `${root}/file`, force: true }),
      `${root}/file is a file, not a folder`,
    ],
    [
      () => exportRun({ run, to: user, force: true }),
      `${user} holds files but no config.json with d3pm_deno`,
    ],
    [
      () => exportRun({ run, to: run, force: true }),
      `--to ${run} is --run ${run} itself`,
    ],
    [
      () => exportRun({ run, to: from, force: true }),
      `${from} holds files but no config.json with d3pm_deno`,
    ],
    [
      () => exportRun({ run, to: "/", force: true }),
      `--to / holds --run ${run} itself`,
    ],
  ];
  for (const [attempt, fragment] of cases) {
    const e = await assertRejects(attempt, InteropError);
    assert(e.message.includes(fragment), `"${e.message}" lacks "${fragment}"`);
  }
  assertEquals(await snapshot(), before, "nothing replaced or left behind");
  // An empty folder, an export and an imported run are replaced.
  await Deno.mkdir(`${root}/empty`);
  await exportRun({ run, to: `${root}/empty`, force: true });
  await exportRun({ run, to: `${root}/empty`, force: true });
  await importCheckpoint({ from, to: `${root}/imported` });
  await importCheckpoint({ from, to: `${root}/imported`, force: true });
  await Deno.remove(root, { recursive: true });
});

Deno.test("--to with a trailing slash writes that folder; an empty --to is refused; a failed write removes the parents it made", async () => {
  const root = await Deno.makeTempDir();
  const from = `${root}/hf`;
  await writeGpt2Dir(from, { shape: SHAPE });
  const out = await importCheckpoint({ from, to: `${root}/new//` });
  assertEquals(out.dir, `${root}/new`);
  assertEquals((await readRun(`${root}/new`)).status, "imported");
  await assertRejects(
    () => importCheckpoint({ from, to: "" }),
    InteropError,
    "--to is empty: it takes the folder to write",
  );
  for (const to of [".", "./", `${root}/new/..`]) {
    await assertRejects(
      () => importCheckpoint({ from, to, force: true }),
      InteropError,
      `--to ${to} ends in ${
        to.endsWith("..") ? ".." : "."
      }: name the folder itself`,
    );
  }
  const run = `${root}/run`;
  await fakeRun(run, { emaDecay: 0 });
  const exported = await exportRun({ run, to: `${root}/exp/` });
  assertEquals(exported.dir, `${root}/exp`);
  await assertRejects(
    () => exportRun({ run, to: "" }),
    InteropError,
    "--to is empty",
  );
  // A weight that is not finite fails the write: the folders made for
  // --to a/b/c go with it.
  const path = `${run}/seed-0/ar/model.safetensors`;
  const bytes = await Deno.readFile(path);
  new DataView(bytes.buffer).setFloat32(bytes.length - 4, NaN, true);
  await Deno.writeFile(path, bytes);
  await assertRejects(
    () => exportRun({ run, to: `${root}/a/b/c` }),
    InteropError,
    "holds NaN",
  );
  assertEquals(await leftovers(root), ["exp", "hf", "new", "run"]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("--to inside a file (or a link to one) names that file and what --to takes, for export and import, writing nothing", async () => {
  const root = await Deno.makeTempDir();
  const from = `${root}/hf`;
  await writeGpt2Dir(from, { shape: SHAPE });
  const run = `${root}/run`;
  await fakeRun(run, { emaDecay: 0 });
  await Deno.writeTextFile(`${root}/file`, "mine");
  await Deno.symlink(`${root}/file`, `${root}/link`);
  for (const file of [`${root}/file`, `${root}/link`]) {
    const to = `${file}/a/b`;
    const message =
      `--to ${to} is inside ${file}, which is a file, not a folder; --to takes a folder to write: choose another`;
    for (
      const write of [
        () => importCheckpoint({ from, to }),
        () => exportRun({ run, to }),
      ]
    ) {
      const e = await assertRejects(write, InteropError);
      assertEquals(e.message, message);
    }
  }
  assertEquals(await Deno.readTextFile(`${root}/file`), "mine");
  assertEquals(await leftovers(root), ["file", "hf", "link", "run"]);
  await Deno.remove(root, { recursive: true });
});

// `export --to RUN/sub` wrote the export inside the run folder, where a
// --force of the run would move it aside with the run; a run's --out there
// was already refused. Both now ask the same enclosingRun().
Deno.test("--to inside a run folder (or a link into one) is refused as a run's --out there is, for export and import, writing nothing", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir());
  const from = `${root}/hf`;
  await writeGpt2Dir(from, { shape: SHAPE });
  const run = `${root}/run`;
  await fakeRun(run, { emaDecay: 0 });
  const before = await leftovers(run);
  await Deno.mkdir(`${run}/keep`);
  await Deno.symlink(`${run}/keep`, `${root}/into`);
  for (
    const to of [`${run}/sub`, `${run}/a/b`, `${run}/keep/x`, `${root}/into/x`]
  ) {
    const message =
      `--to ${to} is inside the run folder ${run} (it has a run's config.json): a run folder holds one run, and a --force of it would move this folder aside with it; choose a --to outside it`;
    for (
      const write of [
        () => importCheckpoint({ from, to }),
        () => exportRun({ run, to }),
        () => exportRun({ run, to, force: true }),
      ]
    ) {
      const e = await assertRejects(write, InteropError);
      assertEquals(e.message, message);
    }
  }
  assertEquals(await leftovers(run), [...before, "keep"].sort());
  assertEquals(await leftovers(`${run}/keep`), []);
  // Beside the run is fine.
  await exportRun({ run, to: `${root}/export` });
  assert((await leftovers(`${root}/export`)).includes("config.json"));
  await Deno.remove(root, { recursive: true });
});

Deno.test("exportRun() refuses a weights choice it does not know in one line", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  await fakeRun(run, { emaDecay: 0 });
  await assertRejects(
    () => exportRun({ run, to: `${root}/x`, weights: "final" as "last" }),
    InteropError,
    'weights "final" is not one of last, best, ema',
  );
  assertEquals(await leftovers(root), ["run"]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("pickle and zip: APPENDS of 300,000 items, a 20 MB byteorder record and a ZIP64 field past its entry are one-line refusals", async () => {
  const dir = await Deno.makeTempDir();
  const from = `${dir}/hf`;
  await writeGpt2Dir(from, { shape: SHAPE });
  await Deno.remove(`${from}/model.safetensors`);
  const bin = `${from}/pytorch_model.bin`;
  // A list of 300,000 Nones appended at once: no call-stack overflow.
  const appends = new Uint8Array(300_008);
  appends.set([0x80, 2, 0x5d, 0x28]);
  appends.fill(0x4e, 4, 300_004);
  appends.set([0x65, 0x2e], 300_004);
  await Deno.writeFile(bin, torchZip(appends.subarray(0, 300_006), new Map()));
  await refusedWithin(from, "does not hold a state dict");
  // A byteorder record is "little" or "big": a huge one is not read.
  const dict = stateDictPickle([{ name: "w", shape: [2], key: "0" }]);
  await Deno.writeFile(
    bin,
    torchZip(dict, new Map([["0", new Uint8Array(8)]]), {
      byteorder: "l".repeat(20 << 20),
    }),
  );
  await refusedWithin(from, "its byteorder record is 20971520 bytes");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("zipRecords() refuses a ZIP64 field that runs past its entry's extra field", async () => {
  const dir = await Deno.makeTempDir();
  // One record whose central entry ends the directory: its size saturated
  // (0xffffffff) and a ZIP64 field claiming 100 bytes where 8 follow.
  const zip = storedZip([{ name: "a/data.pkl", data: new Uint8Array(4) }]);
  const view = new DataView(zip.buffer);
  const eocd = zip.length - 22;
  const central = view.getUint32(eocd + 16, true);
  const nameLength = view.getUint16(central + 28, true);
  const entryEnd = central + 46 + nameLength;
  const extra = new Uint8Array([1, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const out = new Uint8Array(zip.length + extra.length);
  out.set(zip.subarray(0, entryEnd));
  out.set(extra, entryEnd);
  out.set(zip.subarray(entryEnd), entryEnd + extra.length);
  const ov = new DataView(out.buffer);
  ov.setUint16(central + 30, extra.length, true);
  ov.setUint32(central + 20, 0xffffffff, true);
  ov.setUint32(central + 24, 0xffffffff, true);
  const end = out.length - 22;
  ov.setUint32(end + 12, ov.getUint32(end + 12, true) + extra.length, true);
  await Deno.writeFile(`${dir}/z.bin`, out);
  const file = await RandomAccessFile.open(`${dir}/z.bin`);
  try {
    await assertRejects(
      () => zipRecords(file),
      InteropError,
      "entry a/data.pkl: short ZIP64 field",
    );
  } finally {
    file.close();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a byte-level GPT-2 (256 ids, no merges) imports as a byte-tokenizer run", async () => {
  const dir = await Deno.makeTempDir();
  const from = `${dir}/hf`;
  await writeGpt2Dir(from, {
    shape: { vocab: 256, d: 8, layers: 1, heads: 2, positions: 16 },
  });
  const out = await importCheckpoint({ from, to: `${dir}/run` });
  assertEquals([out.vocabulary.tokenizer, out.config.vocabSize], ["byte", 260]);
  const { config } = await readRun(`${dir}/run`);
  assertEquals(config.tokenizer, "byte");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("config.json: null for a flag that changes the maths is refused, not read as its default", async () => {
  const dir = await Deno.makeTempDir();
  const cases: [Record<string, unknown>, string][] = [
    [
      { scale_attn_weights: null },
      "config.json: scale_attn_weights is null; the project's model scales attention by 1/√head size (accepted: true)",
    ],
    [
      { layer_norm_epsilon: null },
      "config.json: layer_norm_epsilon is null; the project's LayerNorm uses 1e-5",
    ],
    [
      { activation_function: null },
      "config.json: activation_function is null; the project's model uses GELU's tanh approximation (accepted: \"gelu_new\"",
    ],
    [
      { tie_word_embeddings: null },
      "config.json: tie_word_embeddings must be true or false, got null",
    ],
    [
      { n_head: null },
      "config.json: n_head must be a positive integer, got null",
    ],
  ];
  for (const [extra, message] of cases) {
    const from = `${dir}/hf`;
    await writeGpt2Dir(from, { shape: SHAPE, configExtra: extra });
    await refusedWithin(from, message);
    await Deno.remove(from, { recursive: true });
  }
  // reorder_and_upcast_attn computes the same attention (in float32) and is
  // read; n_inner null is GPT-2's 4 × n_embd.
  await writeGpt2Dir(`${dir}/hf`, {
    shape: SHAPE,
    configExtra: { reorder_and_upcast_attn: true, n_inner: null },
  });
  const out = await importCheckpoint({ from: `${dir}/hf`, to: `${dir}/run` });
  assertEquals(out.config.dMlp, 4 * SHAPE.d);
  await Deno.remove(dir, { recursive: true });
});

async function editConfig(
  dir: string,
  edit: (c: Record<string, unknown>) => void,
): Promise<void> {
  const c = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  edit(c);
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(c));
}

Deno.test("GPT-NeoX: a linear rope_scaling beside default rope_parameters is refused (transformers scales the positions), as is a rope_parameters that is not an object", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  await fakeRun(run, { emaDecay: 0, positions: "rotary" });
  const neox = `${root}/neox`;
  await exportRun({ run, to: neox });
  await editConfig(neox, (c) => c.rope_scaling = { type: "linear", factor: 2 });
  await refusedWithin(neox, 'base 10000 ("linear"); the project rotates');
  await editConfig(neox, (c) => {
    c.rope_scaling = null;
    c.rope_parameters = "default";
  });
  await refusedWithin(
    neox,
    'config.json: rope_parameters must be an object or null, got "default"',
  );
  // rope_scaling null (old GPT-NeoX configs) is no scaling.
  await editConfig(neox, (c) => {
    c.rope_scaling = null;
    c.rope_parameters = {
      rope_type: "default",
      rope_theta: 10000,
      partial_rotary_factor: 1,
    };
  });
  await importCheckpoint({ from: neox, to: `${root}/back` });
  await Deno.remove(root, { recursive: true });
});

Deno.test("an exported denoiser whose d3pm_deno.process names another mask id, vocabulary or 10^12 steps is refused, not restored", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  await fakeRun(run, { emaDecay: 0, models: "d3pm" });
  const hf = `${root}/hf`;
  await exportRun({ run, model: "d3pm", to: hf });
  const config = await Deno.readTextFile(`${hf}/config.json`);
  const process = (c: Record<string, unknown>) =>
    (c.d3pm_deno as { process: Record<string, unknown> }).process;
  const cases: [(p: Record<string, unknown>) => void, string][] = [
    [(p) => p.maskId = 5, "(at process.maskId)"],
    [(p) => p.vocab = 261, "(at process.vocab)"],
    [(p) => p.steps = 1e12, "(at process.steps)"],
  ];
  for (const [edit, fragment] of cases) {
    await Deno.writeTextFile(`${hf}/config.json`, config);
    await editConfig(hf, (c) => edit(process(c)));
    await refusedWithin(
      hf,
      `config.json's d3pm_deno.process differs from the process its run and tokenizer make ${fragment}`,
    );
  }
  await Deno.writeTextFile(`${hf}/config.json`, config);
  const out = await importCheckpoint({ from: hf, to: `${root}/back` });
  assertEquals(out.model, "d3pm");
  await Deno.remove(root, { recursive: true });
});

Deno.test("export: a model config.json that is not the run's (another head count, same shapes) or a weights file with tensors the model lacks is refused", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  await fakeRun(run, { emaDecay: 0 });
  const configPath = `${run}/seed-0/ar/config.json`;
  const config = await Deno.readTextFile(configPath);
  const attempt = async (fragment: string) => {
    const e = await assertRejects(
      () => exportRun({ run, to: `${root}/out` }),
      InteropError,
    );
    assert(e.message.includes(fragment), `"${e.message}" lacks "${fragment}"`);
    assertEquals(await leftovers(root), ["run"]);
  };
  const edited = JSON.parse(config);
  edited.nHead *= 2; // the same tensor shapes, another attention
  await Deno.writeTextFile(configPath, JSON.stringify(edited));
  await attempt(
    `${configPath} describes another model than the run's config.json makes`,
  );
  await Deno.writeTextFile(configPath, JSON.stringify({ ...edited, kind: 1 }));
  await attempt(`${configPath}: Invalid model config`);
  await Deno.writeTextFile(configPath, config);
  const { decodeSafetensors, encodeSafetensors } = await import("@d3pm/core");
  const weights = `${run}/seed-0/ar/model.safetensors`;
  const decoded = decodeSafetensors(await Deno.readFile(weights));
  decoded.tensors.set("h.7.ln_1.weight", {
    shape: [2],
    data: new Float32Array(2),
  });
  await Deno.writeFile(
    weights,
    encodeSafetensors(decoded.tensors, decoded.metadata),
  );
  await attempt(
    `${weights}: tensor h.7.ln_1.weight is not part of the model its config.json describes`,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("an export whose tokenizer files lost or reordered the four special tokens is refused, not imported with their trained rows dropped", async () => {
  const root = await Deno.makeTempDir();
  const run = `${root}/run`;
  await fakeRun(run, { emaDecay: 0 });
  const hf = `${root}/hf`;
  await exportRun({ run, to: hf });
  const path = `${hf}/tokenizer_config.json`;
  const text = await Deno.readTextFile(path);
  const config = JSON.parse(text);
  const decoder = config.added_tokens_decoder as Record<string, unknown>;
  const ids = Object.keys(decoder).map(Number).filter((i) => i >= 256);
  const [bos, eos] = [decoder[ids[0]], decoder[ids[1]]];
  decoder[ids[0]] = eos;
  decoder[ids[1]] = bos;
  await Deno.writeTextFile(path, JSON.stringify(config));
  await refusedWithin(
    hf,
    "add <|bos|>, <|eos|>, <|pad|>, <|mask|> but not at ids 256..259 in that order",
  );
  await Deno.remove(path);
  await refusedWithin(
    hf,
    "is an export of this project (d3pm_deno) but its tokenizer files do not add <|bos|>, <|eos|>, <|pad|>, <|mask|> at ids 256..259",
  );
  await Deno.writeTextFile(path, text);
  const out = await importCheckpoint({ from: hf, to: `${root}/back` });
  assertEquals([out.vocabulary.dropped, out.vocabulary.added], [0, {}]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("names quoted from a file reach the message with their control characters escaped: one line, no terminal escapes", async () => {
  const dir = await Deno.makeTempDir();
  const from = `${dir}/hf`;
  await writeGpt2Dir(from, {
    shape: SHAPE,
    configExtra: { architectures: ["\u001b[2J\u001b[31mGPT"] },
  });
  await refusedWithin(from, "Unknown architecture \\u001b[2J\\u001b[31mGPT");
  await Deno.remove(from, { recursive: true });
  await writeGpt2Dir(from, {
    shape: SHAPE,
    extra: [{
      name: "evil\nerror: all good",
      dtype: "F32",
      shape: [1],
      bytes: new Uint8Array(4),
    }],
  });
  await refusedWithin(from, "e.g. evil\\nerror: all good");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--tokenizer gpt2 over a directory whose own tokenizer files are another tokenizer is refused, not imported with GPT-2's", async () => {
  const dir = await Deno.makeTempDir();
  const from = `${dir}/hf`;
  // 50,257 rows (GPT-2's count) but the files are a BPE of its own.
  await writeGpt2Dir(from, {
    shape: { vocab: 50257, d: 8, layers: 1, heads: 2, positions: 16 },
  });
  const parent = `${dir}/out`;
  await Deno.mkdir(parent);
  await assertRejects(
    () => importCheckpoint({ from, to: `${parent}/run`, tokenizer: "gpt2" }),
    InteropError,
    `--tokenizer gpt2, but ${from} holds its own tokenizer files (vocab.json, merges.txt:`,
  );
  assertEquals(await leftovers(parent), []);
  // Without tokenizer files, --tokenizer gpt2 is what the directory needs.
  await Deno.remove(`${from}/vocab.json`);
  await Deno.remove(`${from}/merges.txt`);
  const out = await importCheckpoint({
    from,
    to: `${parent}/run`,
    tokenizer: "gpt2",
  });
  assertEquals(out.vocabulary.tokenizer, "gpt2");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a layer count beyond what the checkpoint's tensors can hold is refused before any plan is built (n_layer 10^7 ran out of memory)", async () => {
  const dir = await Deno.makeTempDir();
  const from = `${dir}/hf`;
  await writeGpt2Dir(from, {
    shape: SHAPE,
    configExtra: { n_layer: 10_000_000 },
  });
  const start = performance.now();
  await refusedWithin(
    from,
    "config.json: n_layer is 10000000, more layers than the checkpoint's 28 tensors can hold",
  );
  assert(performance.now() - start < 2000, "refused at once");
  await Deno.remove(dir, { recursive: true });
});
