/**
 * A strict reader and a writer of the safetensors format: whole float32
 * files in memory ({@linkcode decodeSafetensors},
 * {@linkcode encodeSafetensors}), and the same strict header checks for any
 * dtype, for readers that fetch tensors one at a time from a file
 * ({@linkcode safetensorsHeaderLength}, {@linkcode parseSafetensorsHeader},
 * {@linkcode safetensorsHeaderBytes}).
 *
 * Layout: an 8-byte little-endian unsigned header length N, N bytes of UTF-8
 * JSON (`{"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin,
 * end]}, "__metadata__": {"key": "string"}}`, offsets relative to the data
 * section), then the raw little-endian data, fully covered by the tensors
 * without holes or overlaps.
 *
 * Hostile headers are refused before the JSON is parsed: one pass over the
 * header bytes, allocating nothing, stops at the first of more than
 * `maxTensors` tensors (default 65,536), more than 3 fields per tensor plus
 * `__metadata__` keys in all (3 × (`maxTensors` + 1)), shapes of more than
 * 32 dimensions, or nesting that no safetensors header has (only
 * `{name: {…, shape: […], data_offsets: […]}}`). So the objects and arrays
 * parsed are bounded by `maxTensors` whatever the header size, and a file of
 * millions of tiny tensors is refused after reading about `maxTensors`
 * entries (milliseconds), not parsed (seconds, gigabytes).
 *
 * @module
 */
import { notRegularFile } from "./read_bounded.ts";

/** A float32 tensor as stored in a safetensors file. */
export interface StoredTensor {
  /** Dimensions; `[]` for a scalar. */
  shape: number[];
  /** Values, row-major. */
  data: Float32Array;
}

/** The decoded contents of a safetensors file. */
export interface SafetensorsContents {
  /** Tensors by name, in file (offset) order. */
  tensors: Map<string, StoredTensor>;
  /** The string→string `__metadata__` map (empty when absent). */
  metadata: Record<string, string>;
}

/** Options of {@linkcode decodeSafetensors}. */
export interface DecodeSafetensorsOptions {
  /** Largest accepted JSON header, in bytes (default 100 MiB). */
  maxHeaderBytes?: number;
  /**
   * Most tensors accepted (default 65,536, far above any model here), checked
   * before the header is parsed.
   */
  maxTensors?: number;
  /** The file's name, put in error messages (default: none). */
  source?: string;
  /**
   * When given, the file must hold exactly these tensor names with these
   * shapes; checked before any tensor data is copied. A function receives
   * the file's metadata (e.g. to read a stored config) and returns them.
   */
  expect?:
    | ReadonlyMap<string, readonly number[]>
    | ((
      metadata: Record<string, string>,
    ) => ReadonlyMap<string, readonly number[]>);
}

/**
 * A malformed or unexpected safetensors file; the message is one line.
 *
 * @example Tell a bad file apart from other failures
 * ```ts
 * import { decodeSafetensors, SafetensorsError } from "@d3pm/core";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const error = assertThrows(
 *   () => decodeSafetensors(new Uint8Array(4), { source: "model.safetensors" }),
 *   SafetensorsError,
 * );
 * assertEquals(error.detail, "file is 4 bytes, shorter than the 8-byte header length");
 * assertEquals(
 *   error.message,
 *   "Cannot read safetensors model.safetensors: file is 4 bytes, shorter than the 8-byte header length",
 * );
 * ```
 */
export class SafetensorsError extends Error {
  /** What is wrong, without the "Cannot read safetensors" prefix. */
  readonly detail: string;
  /**
   * An error whose message starts with "Cannot read safetensors: ", or
   * "Cannot read safetensors <source>: " when the file is named.
   *
   * @param message What is wrong.
   * @param source The file's name, when known.
   */
  constructor(message: string, source?: string) {
    super(
      `Cannot read safetensors${source ? ` ${source}` : ""}: ${message}`,
    );
    this.name = "SafetensorsError";
    this.detail = message;
  }
}

const DEFAULT_MAX_HEADER = 100 * 1024 * 1024;
const DEFAULT_MAX_TENSORS = 65_536;
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const ENTRY_KEYS = ["data_offsets", "dtype", "shape"];

function isNonNegativeInteger(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function short(x: unknown): string {
  const s = JSON.stringify(x) ?? String(x);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

// A tensor name or shape for a message: a hostile one may be megabytes long.
function q(name: string): string {
  return short(name);
}
function dims(shape: readonly number[]): string {
  const s = `[${shape.slice(0, 9)}${shape.length > 9 ? ",..." : ""}]`;
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * The dtypes of the safetensors format and the bytes of one value of each.
 *
 * @example
 * ```ts
 * import { SAFETENSORS_DTYPES } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals([SAFETENSORS_DTYPES.F32, SAFETENSORS_DTYPES.BF16, SAFETENSORS_DTYPES.BOOL], [4, 2, 1]);
 * ```
 */
export const SAFETENSORS_DTYPES: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

/** One tensor of a safetensors header. */
export interface SafetensorsEntry {
  /** Its name. */
  name: string;
  /** Its dtype, a key of {@linkcode SAFETENSORS_DTYPES}. */
  dtype: string;
  /** Its dimensions. */
  shape: number[];
  /** Where its bytes begin, relative to the data section. */
  begin: number;
  /** Where they end (exclusive), relative to the data section. */
  end: number;
}

/** A parsed safetensors header. */
export interface SafetensorsHeader {
  /** The tensors, in offset order; together they cover the data section exactly. */
  entries: SafetensorsEntry[];
  /** The string→string `__metadata__` map (empty when absent). */
  metadata: Record<string, string>;
}

/** Options of {@linkcode parseSafetensorsHeader}. */
export interface ParseSafetensorsHeaderOptions {
  /** Most tensors accepted (default 65,536), checked before the header is parsed. */
  maxTensors?: number;
  /** The dtypes accepted (default `["F32"]`); others are refused by name. */
  dtypes?: readonly string[];
}

/**
 * Serialise float32 tensors (and optional string metadata) as safetensors.
 * The header is padded with spaces so the data starts 8-byte aligned.
 *
 * @param tensors Name → shape and values, written in this order.
 * @param metadata Optional string→string map stored as `__metadata__`.
 * @throws {RangeError} For a dimension that is not an integer ≥ 0, or a
 *   shape whose size differs from the data's.
 * @throws {TypeError} For data that is not a `Float32Array`.
 * @returns The file's bytes.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const bytes = encodeSafetensors(
 *   new Map([["w", { shape: [2], data: new Float32Array([1, -2]) }]]),
 *   { note: "hi" },
 * );
 * const back = decodeSafetensors(bytes);
 * assertEquals([...back.tensors.get("w")!.data], [1, -2]);
 * assertEquals(back.metadata, { note: "hi" });
 * ```
 */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, StoredTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  for (const [name, { shape, data }] of tensors) {
    checkShape(name, shape);
    if (!(data instanceof Float32Array)) {
      throw new TypeError(
        `Cannot write safetensors: "${name}" holds ${
          (data as unknown as object)?.constructor?.name ?? typeof data
        }; only a Float32Array (F32) is accepted`,
      );
    }
    const numel = shape.reduce((a, b) => a * b, 1);
    if (numel !== data.length) {
      throw new RangeError(
        `Cannot write safetensors: "${name}" has shape [${shape}] (${numel} values) but ${data.length} values`,
      );
    }
  }
  const head = safetensorsHeaderBytes(
    [...tensors].map(([name, { shape }]) => ({ name, shape })),
    metadata,
  );
  let size = head.length;
  for (const { data } of tensors.values()) size += data.byteLength;
  const out = new Uint8Array(size);
  out.set(head);
  let at = head.length;
  for (const { data } of tensors.values()) {
    if (HOST_LITTLE_ENDIAN) {
      out.set(
        new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        at,
      );
    } else {
      const view = new DataView(out.buffer, at, data.byteLength);
      for (let i = 0; i < data.length; i++) {
        view.setFloat32(4 * i, data[i], true);
      }
    }
    at += data.byteLength;
  }
  return out;
}

/** A shape a writer may write: every dimension an integer ≥ 0. */
function checkShape(name: string, shape: readonly number[]): void {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new RangeError(
      `Cannot write safetensors: "${name}" has shape [${shape}]; dimensions must be integers ≥ 0`,
    );
  }
}

/**
 * The first bytes of a float32 safetensors file: the 8-byte header length
 * and the JSON header, padded with spaces so the data starts 8-byte
 * aligned. The tensors' values follow in the order given, each row-major
 * little-endian float32 — for writers that stream them one at a time.
 *
 * @param tensors Names and shapes, in the order their data will follow.
 * @param metadata Optional string→string map stored as `__metadata__`.
 * @returns The header's bytes.
 * @throws {RangeError} For a dimension that is not an integer ≥ 0, or the
 *   reserved name `__metadata__`.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, safetensorsHeaderBytes } from "@d3pm/core";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const head = safetensorsHeaderBytes([{ name: "w", shape: [2] }]);
 * const file = new Uint8Array(head.length + 8);
 * file.set(head);
 * new DataView(file.buffer).setFloat32(head.length + 4, 1.5, true);
 * assertEquals([...decodeSafetensors(file).tensors.get("w")!.data], [0, 1.5]);
 * assertThrows(() => safetensorsHeaderBytes([{ name: "w", shape: [-2, 3] }]), RangeError, "dimensions must be integers ≥ 0");
 * ```
 */
export function safetensorsHeaderBytes(
  tensors: Iterable<{ name: string; shape: readonly number[] }>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let offset = 0;
  for (const { name, shape } of tensors) {
    if (name === "__metadata__") {
      throw new RangeError(
        'Cannot write safetensors: "__metadata__" is reserved as a tensor name',
      );
    }
    checkShape(name, shape);
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    header[name] = {
      dtype: "F32",
      shape: [...shape],
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8); // trailing spaces are valid JSON
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/**
 * Parse a safetensors file strictly. Every size is checked against the file
 * before anything is allocated from it: the header length (against the file
 * size and `maxHeaderBytes`), the tensor count and nesting (against
 * `maxTensors`, in one pass over the header bytes before it is parsed; see
 * the module doc), the JSON, each entry's keys, dtype (F32 only), shape and
 * offsets (in bounds, matching the shape, non-overlapping and covering the
 * data section exactly), and, with `expect`, the names and shapes.
 *
 * @param bytes The whole file.
 * @param options Header size and tensor count limits; the file's name for
 * messages; expected names and shapes.
 * @returns The tensors (copied, so `bytes` may be dropped) and metadata.
 * @throws {SafetensorsError} With a one-line message naming the problem (and
 * the file, given `source`).
 *
 * @example
 * ```ts
 * import { decodeSafetensors, SafetensorsError } from "@d3pm/core";
 * import { assertThrows } from "@std/assert";
 * const bytes = new Uint8Array(16); // header length 0: too short for JSON
 * assertThrows(() => decodeSafetensors(bytes), SafetensorsError, "header");
 * ```
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  options: DecodeSafetensorsOptions = {},
): SafetensorsContents {
  if (options.source === undefined) return decode(bytes, options);
  try {
    return decode(bytes, options);
  } catch (e) {
    if (e instanceof SafetensorsError) {
      throw new SafetensorsError(e.detail, options.source);
    }
    throw e;
  }
}

function decode(
  bytes: Uint8Array,
  options: DecodeSafetensorsOptions,
): SafetensorsContents {
  const n = safetensorsHeaderLength(bytes, bytes.length, options);
  const dataStart = 8 + n;
  const { entries, metadata } = parseSafetensorsHeader(
    bytes.subarray(8, dataStart),
    bytes.length - dataStart,
    options,
  );
  if (options.expect) {
    const expect = typeof options.expect === "function"
      ? options.expect(metadata)
      : options.expect;
    checkExpected(entries, expect);
  }

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tensors = new Map<string, StoredTensor>();
  for (const e of entries) {
    const count = (e.end - e.begin) / 4;
    const data = new Float32Array(count);
    const from = dataStart + e.begin;
    if (HOST_LITTLE_ENDIAN) {
      new Uint8Array(data.buffer).set(bytes.subarray(from, from + 4 * count));
    } else {
      for (let i = 0; i < count; i++) {
        data[i] = view.getFloat32(from + 4 * i, true);
      }
    }
    tensors.set(e.name, { shape: e.shape, data });
  }
  return { tensors, metadata };
}

/**
 * Check a safetensors file on disk as {@linkcode decodeSafetensors} checks
 * its bytes — the header length, the header, every entry's dtype (F32),
 * shape and offsets against the file's size, and with `expect` the names
 * and shapes — reading only its first `8 + n` bytes, not the tensors: what
 * a caller needs to refuse a file before loading it, at the cost of its
 * header.
 *
 * @param path The file.
 * @param options Header size and tensor count limits; the name for
 *   messages (default `path`); expected names and shapes.
 * @returns The entries in offset order, and the metadata.
 * @throws {SafetensorsError} With a one-line message naming the problem and
 *   the file.
 *
 * @example The header alone says what a file holds
 * ```ts
 * import { encodeSafetensors, readSafetensorsHeader, SafetensorsError } from "@d3pm/core";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const path = await Deno.makeTempFile();
 * const w = { shape: [2, 3], data: new Float32Array(6) };
 * await Deno.writeFile(path, encodeSafetensors(new Map([["w", w]]), { note: "hi" }));
 * const { entries, metadata } = await readSafetensorsHeader(path);
 * assertEquals(entries.map((e) => [e.name, e.shape]), [["w", [2, 3]]]);
 * assertEquals(metadata, { note: "hi" });
 * await assertRejects(
 *   () => readSafetensorsHeader(path, { expect: new Map([["w", [3, 2]]]) }),
 *   SafetensorsError,
 *   'tensor "w" has shape [2,3], expected [3,2]',
 * );
 * await Deno.truncate(path, 40); // the data cut short
 * await assertRejects(() => readSafetensorsHeader(path), SafetensorsError, path);
 * await Deno.remove(path);
 * ```
 */
export async function readSafetensorsHeader(
  path: string,
  options: DecodeSafetensorsOptions = {},
): Promise<SafetensorsHeader> {
  // Only a regular file: a FIFO would block the open, a device never ends.
  if (await notRegularFile(path) !== undefined) {
    throw new SafetensorsError(
      "it is not a regular file (a folder, a FIFO or a device)",
      path,
    );
  }
  const file = await Deno.open(path);
  try {
    const size = (await file.stat()).size;
    const n = safetensorsHeaderLength(
      await readExactly(file, Math.min(8, size)),
      size,
      options,
    );
    const header = parseSafetensorsHeader(
      await readExactly(file, n),
      size - 8 - n,
      options,
    );
    if (options.expect) {
      checkExpected(
        header.entries,
        typeof options.expect === "function"
          ? options.expect(header.metadata)
          : options.expect,
      );
    }
    return header;
  } catch (e) {
    if (e instanceof SafetensorsError) {
      throw new SafetensorsError(e.detail, options.source ?? path);
    }
    throw e;
  } finally {
    file.close();
  }
}

/** The next `n` bytes of a file (fewer only at its end). */
async function readExactly(file: Deno.FsFile, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const read = await file.read(out.subarray(got));
    if (read === null) return out.subarray(0, got);
    got += read;
  }
  return out;
}

/**
 * The length of a safetensors file's JSON header, from the file's first 8
 * bytes, checked against the file's size and a maximum — the first step of
 * a reader that does not hold the whole file.
 *
 * @param first The file's first bytes (at least 8 of them, when it has 8).
 * @param fileSize The file's size in bytes.
 * @param options The largest accepted header (default 100 MiB).
 * @returns The header's length `n`: the JSON is bytes `[8, 8 + n)`.
 * @throws {SafetensorsError} For a file shorter than 8 bytes, or a header
 *   longer than the maximum or the file, or too short for a JSON object.
 *
 * @example
 * ```ts
 * import { safetensorsHeaderLength, SafetensorsError } from "@d3pm/core";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const first = new Uint8Array(8);
 * first[0] = 16;
 * assertEquals(safetensorsHeaderLength(first, 100), 16);
 * assertThrows(() => safetensorsHeaderLength(first, 20), SafetensorsError, "exceeds the file size of 20 bytes");
 * ```
 */
export function safetensorsHeaderLength(
  first: Uint8Array,
  fileSize: number,
  options: { maxHeaderBytes?: number } = {},
): number {
  const maxHeader = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER;
  if (fileSize < 8 || first.length < 8) {
    throw new SafetensorsError(
      `file is ${fileSize} bytes, shorter than the 8-byte header length`,
    );
  }
  const view = new DataView(first.buffer, first.byteOffset, first.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(maxHeader)) {
    throw new SafetensorsError(
      `header length ${headerLength} exceeds the maximum of ${maxHeader} bytes`,
    );
  }
  const n = Number(headerLength);
  if (8 + n > fileSize) {
    throw new SafetensorsError(
      `header length ${n} exceeds the file size of ${fileSize} bytes`,
    );
  }
  if (n < 2) {
    throw new SafetensorsError(
      `header length ${n} is too short for a JSON object`,
    );
  }
  return n;
}

/**
 * Parse and check a safetensors JSON header against the size of the data
 * section that follows it: the tensor count and nesting before the JSON is
 * parsed (see the module doc), then each entry's keys, dtype (one of
 * `dtypes`), shape and offsets (in bounds, matching the shape and the
 * dtype's size, non-overlapping and covering the data section exactly).
 * Nothing of the data is read.
 *
 * @param header The header's bytes (bytes `[8, 8 + n)` of the file).
 * @param dataLength The size of the data section (file size − 8 − n).
 * @param options The tensor limit; the accepted dtypes (default F32 only).
 * @returns The entries in offset order, and the metadata.
 * @throws {SafetensorsError} With a one-line message naming the problem.
 *
 * @example A bfloat16 tensor, accepted when asked for
 * ```ts
 * import { parseSafetensorsHeader, SafetensorsError } from "@d3pm/core";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const header = new TextEncoder().encode(
 *   JSON.stringify({ w: { dtype: "BF16", shape: [3], data_offsets: [0, 6] } }),
 * );
 * const { entries } = parseSafetensorsHeader(header, 6, { dtypes: ["F32", "BF16"] });
 * assertEquals(entries[0], { name: "w", dtype: "BF16", shape: [3], begin: 0, end: 6 });
 * assertThrows(() => parseSafetensorsHeader(header, 6), SafetensorsError, "only F32 is accepted");
 * assertThrows(
 *   () => parseSafetensorsHeader(header, 4, { dtypes: ["BF16"] }),
 *   SafetensorsError,
 *   "truncated file?",
 * );
 * ```
 */
export function parseSafetensorsHeader(
  header: Uint8Array,
  dataLength: number,
  options: ParseSafetensorsHeaderOptions = {},
): SafetensorsHeader {
  const maxTensors = options.maxTensors ?? DEFAULT_MAX_TENSORS;
  const dtypes = options.dtypes ?? ["F32"];
  scanHeader(header, maxTensors);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(header);
  } catch {
    throw new SafetensorsError("header is not valid UTF-8");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    throw new SafetensorsError(`header is not valid JSON (${why})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new SafetensorsError(
      `header must be a JSON object, got ${short(parsed)}`,
    );
  }

  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(parsed)) {
    if (name === "__metadata__") {
      if (
        typeof raw !== "object" || raw === null || Array.isArray(raw) ||
        !Object.values(raw).every((v) => typeof v === "string")
      ) {
        throw new SafetensorsError(
          `__metadata__ must map strings to strings, got ${short(raw)}`,
        );
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    entries.push(parseEntry(name, raw, dataLength, dtypes));
  }
  if (entries.length > maxTensors) {
    throw new SafetensorsError(
      `header holds ${entries.length} tensors, more than the limit of ${maxTensors}`,
    );
  }

  // Offsets: sorted, each tensor starts where the previous ended, the last
  // ends at the end of the file.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const e of entries) {
    if (e.begin < covered) {
      throw new SafetensorsError(
        `tensor ${
          q(e.name)
        } data_offsets [${e.begin}, ${e.end}] overlap the previous tensor, which ends at ${covered}`,
      );
    }
    if (e.begin > covered) {
      throw new SafetensorsError(
        `bytes [${covered}, ${e.begin}) of the data section belong to no tensor (before ${
          q(e.name)
        })`,
      );
    }
    covered = e.end;
  }
  if (covered !== dataLength) {
    throw new SafetensorsError(
      `the tensors cover ${covered} bytes but the data section has ${dataLength}`,
    );
  }
  return { entries, metadata };
}

const MAX_RANK = 32;
const QUOTE = 0x22, BACKSLASH = 0x5c, COMMA = 0x2c;
const OPEN_OBJECT = 0x7b, CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b, CLOSE_ARRAY = 0x5d;

/**
 * One pass over the raw header, before `JSON.parse`, allocating nothing:
 * refuses structure no safetensors header has (anything but
 * `{name: {key: value or [numbers]}}`), more than `maxTensors` + 1 top-level
 * members (the tensors and `__metadata__`), and more than 3 × that many
 * members inside them. It stops at the first violation, so the cost is at
 * most linear in the header and usually a few entries' worth of bytes.
 * Malformed JSON that passes is left for `JSON.parse` to report.
 */
function scanHeader(header: Uint8Array, maxTensors: number): void {
  const maxInner = 3 * (maxTensors + 1);
  let depth = 0;
  let topMembers = 0; // commas seen at depth 1
  let innerMembers = 0; // commas seen at depth 2, in all tensor entries
  let innerIsArray = false; // the open depth-2 container is an array
  let arrayCommas = 0; // commas in the open depth-3 array
  const length = header.length;
  let i = 0;
  while (i < length) {
    const c = header[i];
    if (c === QUOTE) {
      // Skip the string; a backslash escapes the next byte (\uXXXX's digits
      // are never quotes).
      let j = i + 1;
      while (j < length) {
        const d = header[j];
        if (d === QUOTE) break;
        j += d === BACKSLASH ? 2 : 1;
      }
      i = j + 1;
      continue;
    }
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      depth++;
      const ok = depth === 1
        ? c === OPEN_OBJECT
        : depth === 2 || (depth === 3 && c === OPEN_ARRAY && !innerIsArray);
      if (depth === 1 && !ok) {
        throw new SafetensorsError(
          `header must be a JSON object, got an array`,
        );
      }
      if (!ok) {
        throw new SafetensorsError(
          `header nests ${
            c === OPEN_OBJECT ? "an object" : "an array"
          } at byte ${i} where a safetensors header cannot (expected {name: {dtype, shape: [...], data_offsets: [...]}})`,
        );
      }
      if (depth === 2) innerIsArray = c === OPEN_ARRAY;
      if (depth === 3) arrayCommas = 0;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    } else if (c === COMMA) {
      if (depth === 1 && ++topMembers > maxTensors) {
        throw new SafetensorsError(
          `header holds more than ${maxTensors} tensors, the limit (stopped reading at byte ${i})`,
        );
      }
      if (depth === 3 && ++arrayCommas >= MAX_RANK) {
        throw new SafetensorsError(
          `header has an array of more than ${MAX_RANK} items at byte ${i}; shapes have at most ${MAX_RANK} dimensions and data_offsets 2`,
        );
      }
      if (depth === 2 && ++innerMembers > maxInner) {
        throw new SafetensorsError(
          `header holds more than ${maxInner} fields in its entries, the limit for ${maxTensors} tensors (stopped reading at byte ${i})`,
        );
      }
    }
    i++;
  }
}

function parseEntry(
  name: string,
  raw: unknown,
  dataLength: number,
  dtypes: readonly string[],
): SafetensorsEntry {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new SafetensorsError(
      `tensor ${q(name)} must be an object, got ${short(raw)}`,
    );
  }
  const o = raw as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  if (keys.join() !== ENTRY_KEYS.join()) {
    throw new SafetensorsError(
      `tensor ${
        q(name)
      } must have exactly the keys dtype, shape, data_offsets, got ${
        keys.join(", ")
      }`,
    );
  }
  const dtype = o.dtype;
  if (
    typeof dtype !== "string" || !Object.hasOwn(SAFETENSORS_DTYPES, dtype) ||
    !dtypes.includes(dtype)
  ) {
    throw new SafetensorsError(
      `tensor ${q(name)} has dtype ${short(dtype)}; ${
        dtypes.length === 1
          ? `only ${dtypes[0]} is accepted`
          : `accepted: ${dtypes.join(", ")}`
      }`,
    );
  }
  const size = SAFETENSORS_DTYPES[dtype];
  const shape = o.shape;
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    throw new SafetensorsError(
      `tensor ${q(name)} shape must be an array of non-negative integers, got ${
        short(shape)
      }`,
    );
  }
  const offsets = o.data_offsets;
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every(isNonNegativeInteger) || offsets[0] > offsets[1]
  ) {
    throw new SafetensorsError(
      `tensor ${
        q(name)
      } data_offsets must be [begin, end] with 0 ≤ begin ≤ end, got ${
        short(offsets)
      }`,
    );
  }
  const [begin, end] = offsets as number[];
  if (end > dataLength) {
    throw new SafetensorsError(
      `tensor ${
        q(name)
      } data_offsets [${begin}, ${end}] run past the data section of ${dataLength} bytes (truncated file?)`,
    );
  }
  // Multiply step by step, stopping once the count outgrows the byte span,
  // so a hostile shape can never turn into a huge number.
  const span = end - begin;
  let numel = (shape as number[]).includes(0) ? 0 : 1;
  for (const dim of shape as number[]) {
    if (numel === 0 || numel * size > span) break;
    numel *= dim;
  }
  if (numel * size !== span) {
    throw new SafetensorsError(
      `tensor ${q(name)} has shape ${
        dims(shape as number[])
      } but data_offsets [${begin}, ${end}] span ${span} bytes (${dtype} needs ${size} per value)`,
    );
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

function checkExpected(
  entries: SafetensorsEntry[],
  expect: ReadonlyMap<string, readonly number[]>,
): void {
  const found = new Map(entries.map((e) => [e.name, e.shape]));
  for (const name of found.keys()) {
    if (!expect.has(name)) {
      throw new SafetensorsError(`unexpected tensor ${q(name)}`);
    }
  }
  for (const [name, shape] of expect) {
    const got = found.get(name);
    if (got === undefined) {
      throw new SafetensorsError(`missing tensor ${q(name)}`);
    }
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      throw new SafetensorsError(
        `tensor ${q(name)} has shape ${dims(got)}, expected ${dims(shape)}`,
      );
    }
  }
}

/**
 * The most bytes a safetensors file of these float32 tensors can take:
 * `copies` of each tensor's data (a checkpoint holds weights, optimiser
 * moments and perhaps an EMA), a few hundred bytes of header a tensor, and
 * 1 MiB for the rest of the header. A bound to read a file to, before its
 * size is trusted.
 *
 * @param tensors Each tensor's name and shape.
 * @param copies Float32 copies of each (default 1).
 * @returns The bound in bytes.
 *
 * @example
 * ```ts
 * import { encodeSafetensors, safetensorsBound } from "@d3pm/core";
 * import { assert } from "@std/assert";
 * const tensors = new Map([["w", { dtype: "F32" as const, shape: [3, 4], data: new Float32Array(12) }]]);
 * const bytes = encodeSafetensors(tensors).length;
 * assert(bytes <= safetensorsBound([["w", [3, 4]]]));
 * ```
 */
export function safetensorsBound(
  tensors: Iterable<readonly [string, readonly number[]]>,
  copies = 1,
): number {
  let bytes = 1 << 20;
  for (const [name, shape] of tensors) {
    const elements = shape.reduce((a, b) => a * b, 1);
    bytes += copies * (4 * elements + 256 + 2 * name.length);
  }
  return bytes;
}
