// The weights of a Hugging Face directory as a table of tensors that are
// read one at a time: `model.safetensors`, sharded safetensors
// (`model.safetensors.index.json`), or `pytorch_model.bin` in torch's zip
// format (its pickle read without running it). Headers are checked whole
// before any tensor is read; memory stays bounded by the largest tensor.

import {
  parseSafetensorsHeader,
  SAFETENSORS_DTYPES,
  SafetensorsError,
  safetensorsHeaderLength,
} from "@d3pm/core";
import { notRegular, RandomAccessFile, readJsonObject } from "./_file.ts";
import { readPickle, type TensorRef } from "./_pickle.ts";
import { isZip, recordDataOffset, zipRecords } from "./_zip.ts";
import { InteropError } from "./errors.ts";

/** A stored tensor, not read yet. */
export interface SourceTensor {
  /** Its name in the checkpoint. */
  name: string;
  /** Its dtype (safetensors names: F32, F16, BF16, F64, I64, BOOL, …). */
  dtype: string;
  /** Its dimensions. */
  shape: number[];
  /** Its name and file, for messages. */
  where: string;
  /** Its raw little-endian bytes. */
  read(): Promise<Uint8Array>;
}

/** The weights of a directory. */
export interface CheckpointFiles {
  /** The files read, relative to the directory. */
  files: string[];
  /** `safetensors` or `pytorch` (`pytorch_model.bin`). */
  format: "safetensors" | "pytorch";
  /** Every tensor by name, in file order. */
  tensors: Map<string, SourceTensor>;
  /** Close the files. */
  close(): void;
}

/** The most tensors one file may hold (far above any GPT-2). */
export const MAX_TENSORS = 65_536;
const MAX_INDEX_BYTES = 16 * 1024 * 1024;
const MAX_PICKLE_BYTES = 64 * 1024 * 1024;
// "little" or "big": the record is read whole, so its size is bounded first.
const MAX_BYTEORDER_BYTES = 16;

/** What the importer reads, for messages. */
export const SUPPORTED_WEIGHTS =
  "model.safetensors (or shards listed in model.safetensors.index.json) or pytorch_model.bin in torch's zip format";

// Whether a weights file is there: a regular file is, nothing is not, and
// anything else under that name (a FIFO, a device, a folder) is refused
// rather than passed over for another format or read.
async function exists(path: string): Promise<boolean> {
  const why = await notRegular(path);
  if (why === undefined) return true;
  if (why === "nothing is there") return false;
  throw new InteropError(
    `Cannot read ${path}: ${why} (expected a regular file)`,
  );
}

/**
 * Open the weights of `dir`: safetensors first, then `pytorch_model.bin`.
 *
 * @throws {InteropError} When there are none in a supported format, or a
 *   file is malformed.
 */
export async function openCheckpoint(dir: string): Promise<CheckpointFiles> {
  if (await exists(`${dir}/model.safetensors`)) {
    return await openSafetensors(dir, ["model.safetensors"]);
  }
  if (await exists(`${dir}/model.safetensors.index.json`)) {
    return await openSafetensors(dir, await shards(dir));
  }
  if (await exists(`${dir}/pytorch_model.bin`)) {
    return await openTorchZip(dir, "pytorch_model.bin");
  }
  const found: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (/\.(bin|pt|pth|h5|msgpack|ckpt|safetensors|gguf|onnx)$/.test(e.name)) {
      found.push(e.name);
    }
  }
  throw new InteropError(
    `No weights in ${dir}: expected ${SUPPORTED_WEIGHTS}${
      found.length ? `; found ${found.sort().slice(0, 5).join(", ")}` : ""
    }`,
  );
}

// The shard files an index names: plain file names inside the directory.
async function shards(dir: string): Promise<string[]> {
  const path = `${dir}/model.safetensors.index.json`;
  const index = await readJsonObject(path, MAX_INDEX_BYTES);
  const map = index.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw new InteropError(`${path} has no weight_map object`);
  }
  const files = new Set<string>();
  for (const file of Object.values(map)) {
    if (
      typeof file !== "string" || !/^[\w.-]+\.safetensors$/.test(file) ||
      file.startsWith(".")
    ) {
      throw new InteropError(
        `${path} names the shard ${
          JSON.stringify(file)
        }; shards must be .safetensors files inside the directory`,
      );
    }
    files.add(file);
  }
  if (files.size === 0) throw new InteropError(`${path} names no shards`);
  for (const file of files) {
    if (await notRegular(`${dir}/${file}`) === "nothing is there") {
      throw new InteropError(
        `${path} names the shard ${file}, which is not in ${dir} (an incomplete download?)`,
      );
    }
  }
  return [...files].sort();
}

/** Open one safetensors file (e.g. a run's weights or checkpoint). */
export async function openSafetensorsFile(
  path: string,
): Promise<CheckpointFiles> {
  const slash = path.lastIndexOf("/");
  return await openSafetensors(
    slash < 0 ? "." : path.slice(0, slash) || "/",
    [path.slice(slash + 1)],
  );
}

async function openSafetensors(
  dir: string,
  names: string[],
): Promise<CheckpointFiles> {
  const opened: RandomAccessFile[] = [];
  const tensors = new Map<string, SourceTensor>();
  const close = () => opened.forEach((f) => f.close());
  try {
    for (const name of names) {
      const file = await RandomAccessFile.open(`${dir}/${name}`);
      opened.push(file);
      let parsed;
      try {
        const n = safetensorsHeaderLength(
          await file.read(0, Math.min(8, file.size)),
          file.size,
        );
        parsed = parseSafetensorsHeader(
          await file.read(8, n),
          file.size - 8 - n,
          { maxTensors: MAX_TENSORS, dtypes: Object.keys(SAFETENSORS_DTYPES) },
        );
        for (const e of parsed.entries) {
          if (tensors.has(e.name)) {
            throw new InteropError(
              `${dir}: tensor ${e.name} is in two shards (${
                tensors.get(e.name)!.where
              } and ${name})`,
            );
          }
          const start = 8 + n + e.begin;
          tensors.set(e.name, {
            name: e.name,
            dtype: e.dtype,
            shape: e.shape,
            where: `tensor ${e.name} of ${name}`,
            read: () => file.read(start, e.end - e.begin),
          });
        }
      } catch (e) {
        if (e instanceof SafetensorsError) {
          throw new InteropError(
            `Cannot read safetensors ${dir}/${name}: ${e.detail}`,
          );
        }
        throw e;
      }
    }
  } catch (e) {
    close();
    throw e;
  }
  return { files: names, format: "safetensors", tensors, close };
}

const SIZES = SAFETENSORS_DTYPES;

async function openTorchZip(
  dir: string,
  name: string,
): Promise<CheckpointFiles> {
  const path = `${dir}/${name}`;
  const file = await RandomAccessFile.open(path);
  try {
    if (!await isZip(file)) {
      throw new InteropError(
        `${path} is not in torch's zip format (PyTorch ≥ 1.6); older pickled checkpoints are not read (they run code when loaded): re-save it with torch.save, or convert it to safetensors`,
      );
    }
    const records = await zipRecords(file);
    const pkl = [...records.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkl.length !== 1) {
      throw new InteropError(
        `${path} holds ${pkl.length} data.pkl records; torch.save writes one`,
      );
    }
    const prefix = pkl[0].slice(0, -"data.pkl".length);
    const order = records.get(`${prefix}byteorder`);
    if (order) {
      if (order.size > MAX_BYTEORDER_BYTES) {
        throw new InteropError(
          `${path}: its byteorder record is ${order.size} bytes; torch.save writes "little" or "big"`,
        );
      }
      const text = new TextDecoder().decode(
        await file.read(await recordDataOffset(file, order), order.size),
      );
      if (text !== "little") {
        throw new InteropError(
          `${path} was saved on a ${
            text.replace(/[^\x20-\x7e]/g, "?")
          }-endian machine; only little-endian checkpoints are read`,
        );
      }
    }
    const pklRecord = records.get(pkl[0])!;
    if (pklRecord.size > MAX_PICKLE_BYTES) {
      throw new InteropError(
        `${path}: its data.pkl is ${pklRecord.size} bytes, more than the ${MAX_PICKLE_BYTES} a state dict needs`,
      );
    }
    const root = readPickle(
      await file.read(await recordDataOffset(file, pklRecord), pklRecord.size),
      path,
    );
    if (!(root instanceof Map)) {
      throw new InteropError(
        `${path} does not hold a state dict (a mapping of names to tensors): save model.state_dict()`,
      );
    }
    const tensors = new Map<string, SourceTensor>();
    for (const [key, value] of root) {
      if (typeof key !== "string") {
        throw new InteropError(`${path} has a key that is not a string`);
      }
      const t = value as TensorRef;
      if (typeof t !== "object" || t === null || t.kind !== "tensor") {
        throw new InteropError(
          `${path}: entry ${key} is not a tensor; expected a state dict (torch.save(model.state_dict()))`,
        );
      }
      tensors.set(key, await torchTensor(file, records, prefix, key, t));
    }
    return {
      files: [name],
      format: "pytorch",
      tensors,
      close: () => file.close(),
    };
  } catch (e) {
    file.close();
    throw e;
  }
}

async function torchTensor(
  file: RandomAccessFile,
  records: Map<
    string,
    { name: string; method: number; size: number; headerOffset: number }
  >,
  prefix: string,
  key: string,
  t: TensorRef,
): Promise<SourceTensor> {
  const dtype = t.dtype ?? t.storage.dtype;
  const size = SIZES[dtype];
  const where = `tensor ${key} of ${file.path}`;
  const record = records.get(`${prefix}data/${t.storage.key}`);
  if (!record) {
    throw new InteropError(`${where}: its storage ${t.storage.key} is missing`);
  }
  const storageBytes = t.storage.numel * SIZES[t.storage.dtype];
  if (record.size < storageBytes) {
    throw new InteropError(
      `${where}: its storage holds ${record.size} bytes, not the ${storageBytes} it declares (truncated file?)`,
    );
  }
  // Contiguous row-major only (a dimension of size 1 may have any stride).
  let expected = 1;
  for (let d = t.shape.length - 1; d >= 0; d--) {
    if (t.shape[d] !== 1 && t.stride[d] !== expected) {
      throw new InteropError(
        `${where} is not contiguous (stride [${t.stride}] for shape [${t.shape}]); save tensors made .contiguous()`,
      );
    }
    expected *= t.shape[d];
  }
  if (t.stride.length !== t.shape.length) {
    throw new InteropError(`${where}: stride and shape differ in rank`);
  }
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if ((t.offset + numel) * size > storageBytes) {
    throw new InteropError(`${where} reads past the end of its storage`);
  }
  const start = await recordDataOffset(file, record) + t.offset * size;
  return {
    name: key,
    dtype,
    shape: t.shape,
    where,
    read: () => file.read(start, numel * size),
  };
}
