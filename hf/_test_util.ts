// Test helpers: small Hugging Face directories written by hand (safetensors
// of any dtype, torch zip archives and their pickles), and run folders with
// seeded random weights.
import * as tf from "@tensorflow/tfjs";
import { prng, type StoredTensor } from "@d3pm/core";
import {
  checkpointTies,
  contestantOf,
  type ExperimentConfig,
  resolveConfig,
  RunFolder,
} from "@d3pm/experiment";
import { byteLevelBpe, saveBpeTokenizer } from "@d3pm/tokenizer";
import { saveCheckpoint } from "@d3pm/train";
import { parameterShapes, saveModel, Transformer } from "@d3pm/transformer";

/** A raw tensor for {@linkcode rawSafetensors}. */
export interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/** A safetensors file of any dtypes, written as given. */
export function rawSafetensors(
  tensors: RawTensor[],
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: [offset, offset + t.bytes.length],
    };
    offset += t.bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors) {
    out.set(t.bytes, at);
    at += t.bytes.length;
  }
  return out;
}

/** Little-endian float32 bytes. */
export function f32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(
    values.buffer.slice(
      values.byteOffset,
      values.byteOffset + values.byteLength,
    ),
  );
}

/** A GPT-2 config of a small model. */
export function gpt2ConfigJson(
  shape: {
    vocab: number;
    d: number;
    layers: number;
    heads: number;
    positions: number;
  },
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: shape.vocab,
    n_embd: shape.d,
    n_layer: shape.layers,
    n_head: shape.heads,
    n_positions: shape.positions,
    n_inner: null,
    activation_function: "gelu_new",
    layer_norm_epsilon: 1e-5,
    ...extra,
  };
}

/** Seeded GPT-2 weights (the project's names) for a small config. */
export function gpt2Weights(
  shape: { vocab: number; d: number; layers: number; positions: number },
  seed: number,
): Map<string, StoredTensor> {
  const rng = prng(seed);
  const shapes = parameterShapes({
    kind: "causal",
    vocabSize: shape.vocab,
    contextLength: shape.positions,
    nLayer: shape.layers,
    nHead: 2,
    dModel: shape.d,
    dMlp: 4 * shape.d,
    positions: "learned",
    timeConditioning: false,
    dTime: 128,
    dropout: 0,
  });
  const out = new Map<string, StoredTensor>();
  for (const [name, s] of shapes) {
    const data = new Float32Array(s.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (rng.next() - 0.5) * 0.2;
    out.set(name, { shape: s, data });
  }
  return out;
}

/** A project-layout BPE tokenizer as Hugging Face files (no added tokens). */
export async function writeByteBpeFiles(
  dir: string,
  merges: [number, number][],
): Promise<void> {
  const { tokenizerFiles } = await import("./tokenizer_files.ts");
  const files = tokenizerFiles(byteLevelBpe(merges), { contextLength: 16 });
  await Deno.writeTextFile(`${dir}/vocab.json`, files.get("vocab.json")!);
  await Deno.writeTextFile(`${dir}/merges.txt`, files.get("merges.txt")!);
}

/** Write a small GPT-2 directory: config.json, model.safetensors (float32), a BPE of `vocab − 256` merges. */
export async function writeGpt2Dir(
  dir: string,
  options: {
    shape?: {
      vocab: number;
      d: number;
      layers: number;
      heads: number;
      positions: number;
    };
    seed?: number;
    configExtra?: Record<string, unknown>;
    prefix?: string;
    extra?: RawTensor[];
    head?: "tied" | "equal" | "different";
  } = {},
): Promise<Map<string, StoredTensor>> {
  const shape = options.shape ??
    { vocab: 260, d: 8, layers: 2, heads: 2, positions: 16 };
  const weights = gpt2Weights(shape, options.seed ?? 1);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify(gpt2ConfigJson(shape, options.configExtra)),
  );
  const prefix = options.prefix ?? "transformer.";
  const raw: RawTensor[] = [...weights].map(([name, t]) => ({
    name: prefix + name,
    dtype: "F32",
    shape: t.shape,
    bytes: f32Bytes(t.data),
  }));
  const wte = weights.get("wte.weight")!;
  if (options.head === "equal" || options.head === "different") {
    const data = wte.data.slice();
    if (options.head === "different") data[3] += 0.5;
    raw.push({
      name: "lm_head.weight",
      dtype: "F32",
      shape: wte.shape,
      bytes: f32Bytes(data),
    });
  }
  raw.push(...(options.extra ?? []));
  await Deno.writeFile(
    `${dir}/model.safetensors`,
    rawSafetensors(raw, { format: "pt" }),
  );
  await writeByteBpeFiles(dir, uniqueMerges(shape.vocab - 256));
  return weights;
}

// Merges r = 0.. that each make a new token: letter pairs, then pairs of those.
function uniqueMerges(n: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = 97; a < 123 && out.length < n; a++) {
    for (let b = 97; b < 123 && out.length < n; b++) out.push([a, b]);
  }
  return out;
}

// ---- torch zip archives and their pickles ----

/** One record of a stored (uncompressed) zip archive. */
export function storedZip(
  records: { name: string; data: Uint8Array; method?: number }[],
): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const r of records) {
    const name = enc.encode(r.name);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(8, r.method ?? 0, true);
    lv.setUint32(18, r.data.length, true);
    lv.setUint32(22, r.data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const c = new Uint8Array(46 + name.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(10, r.method ?? 0, true);
    cv.setUint32(20, r.data.length, true);
    cv.setUint32(24, r.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    c.set(name, 46);
    central.push(c);
    parts.push(local, r.data);
    offset += local.length + r.data.length;
  }
  const dirSize = central.reduce((n, c) => n + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, records.length, true);
  ev.setUint16(10, records.length, true);
  ev.setUint32(12, dirSize, true);
  ev.setUint32(16, offset, true);
  const all = [...parts, ...central, eocd];
  const out = new Uint8Array(all.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of all) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Builds pickles opcode by opcode (protocol 2, as torch.save writes). */
export class PickleWriter {
  #bytes: number[] = [0x80, 2];
  op(...codes: number[]): this {
    this.#bytes.push(...codes);
    return this;
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    this.#bytes.push(
      0x58,
      b.length & 255,
      (b.length >> 8) & 255,
      (b.length >> 16) & 255,
      b.length >>> 24,
      ...b,
    );
    return this;
  }
  int(n: number): this {
    this.#bytes.push(
      0x4a,
      n & 255,
      (n >> 8) & 255,
      (n >> 16) & 255,
      (n >>> 24) & 255,
    );
    return this;
  }
  global(module: string, name: string): this {
    this.#bytes.push(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
    return this;
  }
  /** A tuple of ints: MARK ints TUPLE. */
  ints(values: number[]): this {
    this.op(0x28);
    for (const v of values) this.int(v);
    return this.op(0x74);
  }
  bytes(): Uint8Array {
    return Uint8Array.from([...this.#bytes, 0x2e]);
  }
}

/** A state dict of contiguous float32 tensors pickled as torch.save does, one storage each. */
export function stateDictPickle(
  tensors: { name: string; shape: number[]; key: string; storage?: string }[],
): Uint8Array {
  const w = new PickleWriter().op(0x7d, 0x28); // EMPTY_DICT, MARK
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const stride = t.shape.map((_, i) =>
      t.shape.slice(i + 1).reduce((a, b) => a * b, 1)
    );
    w.str(t.name).global("torch._utils", "_rebuild_tensor_v2").op(0x28);
    w.op(0x28).str("storage").global("torch", t.storage ?? "FloatStorage").str(
      t.key,
    ).str("cpu").int(numel).op(0x74, 0x51);
    w.int(0).ints(t.shape).ints(stride).op(0x89);
    w.global("collections", "OrderedDict").op(0x29, 0x52); // OrderedDict()
    w.op(0x74, 0x52); // TUPLE, REDUCE
  }
  w.op(0x75); // SETITEMS
  const body = w.bytes();
  return body;
}

/** A torch zip archive of a state dict (`archive/data.pkl`, `archive/data/<key>`). */
export function torchZip(
  pickle: Uint8Array,
  storages: Map<string, Uint8Array>,
  options: { prefix?: string; byteorder?: string } = {},
): Uint8Array {
  const prefix = options.prefix ?? "archive/";
  return storedZip([
    { name: `${prefix}data.pkl`, data: pickle },
    ...(options.byteorder
      ? [{
        name: `${prefix}byteorder`,
        data: new TextEncoder().encode(options.byteorder),
      }]
      : []),
    ...[...storages].map(([key, data]) => ({
      name: `${prefix}data/${key}`,
      data,
    })),
  ]);
}

// ---- run folders ----

/**
 * A run folder as the experiment leaves it, with seeded random weights in
 * place of training: config.json, the tokenizer (a BPE: tokenizer.json),
 * each model's model.safetensors, config.json and process.json, and with
 * `checkpoint` a checkpoint of distinct `model/` and `ema/` weights.
 */
export async function fakeRun(
  out: string,
  overrides: Record<string, unknown>,
  options: { checkpoint?: boolean; best?: boolean } = {},
): Promise<ExperimentConfig> {
  await tf.setBackend("cpu");
  const config = resolveConfig({ preset: "micro", out, ...overrides });
  const folder = new RunFolder(out);
  (await folder.start(config))();
  let tokenizer;
  if (config.tokenizer === "bpe") {
    tokenizer = byteLevelBpe(uniqueMerges(config.vocabSize - 260));
    await saveBpeTokenizer(tokenizer, folder.tokenizerPath);
  } else {
    const { ByteTokenizer } = await import("@d3pm/tokenizer");
    tokenizer = new ByteTokenizer();
  }
  const { bos, eos, pad, mask } = tokenizer.special as Required<
    typeof tokenizer.special
  >;
  // The run's one seed: its first (0 unless `firstSeed` is given).
  const seed = config.firstSeed ?? 0;
  for (const [i, kind] of config.models.split(",").entries()) {
    const contestant = contestantOf(kind);
    const modelConfig = contestant.modelConfig(config, tokenizer.vocabSize);
    const dir = folder.modelDir(seed, kind);
    const model = new Transformer(modelConfig, { seed: 100 + i });
    await saveModel(model, dir);
    if (options.best) {
      const best = new Transformer(modelConfig, { seed: 200 + i });
      await saveModel(best, `${dir}/best`);
      best.dispose();
    }
    if (options.checkpoint) {
      const last = new Transformer(modelConfig, { seed: 300 + i });
      const ema = new Transformer(modelConfig, { seed: 400 + i });
      // The final checkpoint as train() writes it (saveCheckpoint): its
      // state carries the run's ties (no data.json here: the data ties are
      // not compared); its AdamW moments are zeros, never read here.
      const zeros = new Map(
        [...last.variables].map((
          [name, v],
        ) => [name, new Float32Array(v.size)]),
      );
      await saveCheckpoint(folder.checkpointPath(seed, kind), {
        model: last.variables,
        ema: ema.variables,
        adamM: zeros,
        adamV: zeros,
        state: {
          step: config.steps,
          optimizerStep: config.steps,
          data: { seed: 0, epoch: 0, batch: 0 },
          prng: [1, 2, 3, 4],
          config: checkpointTies(config, kind, seed, {
            sha256: { train: "", valid: "", test: "" },
            tokenizer: { id: tokenizer.id, vocabSize: tokenizer.vocabSize },
          }).config,
        },
      });
      last.dispose();
      ema.dispose();
    }
    model.dispose();
    const process = contestant.process(config, {
      tokenizer,
      specials: { bos, eos, pad, mask },
    });
    await Deno.writeTextFile(
      folder.processPath(seed, kind),
      JSON.stringify(process.toJSON()),
    );
  }
  return config;
}

/** The float32 tensors of a safetensors file, by name. */
export async function readWeights(
  path: string,
): Promise<Map<string, StoredTensor>> {
  const { decodeSafetensors } = await import("@d3pm/core");
  return decodeSafetensors(await Deno.readFile(path)).tensors;
}

/** The entries of a folder that are not `keep` (leftovers of a failed write). */
export async function leftovers(
  parent: string,
  keep: string[] = [],
): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(parent)) {
    if (!keep.includes(e.name)) out.push(e.name);
  }
  return out.sort();
}
