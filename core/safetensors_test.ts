import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  decodeSafetensors,
  type DecodeSafetensorsOptions,
  encodeSafetensors,
  parseSafetensorsHeader,
  readSafetensorsHeader,
  SAFETENSORS_DTYPES,
  safetensorsBound,
  SafetensorsError,
  safetensorsHeaderBytes,
  safetensorsHeaderLength,
  type StoredTensor,
} from "./safetensors.ts";

// A file with this header text (not re-encoded, so it may be malformed) and
// `dataBytes` bytes of data; `length` overrides the 8-byte header length.
function rawFile(
  header: string | object,
  dataBytes: number,
  length?: bigint,
): Uint8Array {
  const json = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(
    0,
    length ?? BigInt(json.length),
    true,
  );
  out.set(json, 8);
  return out;
}

function rejects(
  bytes: Uint8Array,
  fragment: string,
  options?: DecodeSafetensorsOptions,
): void {
  const error = assertThrows(
    () => decodeSafetensors(bytes, options),
    SafetensorsError,
  );
  assert(
    error.message.includes(fragment),
    `"${error.message}" should mention "${fragment}"`,
  );
  assert(!error.message.includes("\n"), "error messages are one line");
}

const ok = {
  a: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
  b: { dtype: "F32", shape: [], data_offsets: [24, 28] },
};

Deno.test("encodeSafetensors() and decodeSafetensors() round-trip tensors and metadata", () => {
  const tensors = new Map([
    ["w", { shape: [2, 3], data: new Float32Array([1, 2, 3, -4, 5.5, 1e-8]) }],
    ["scalar", { shape: [], data: new Float32Array([7]) }],
    ["empty", { shape: [0, 4], data: new Float32Array(0) }],
  ]);
  const bytes = encodeSafetensors(tensors, { config: '{"a":1}' });
  const headerLength = Number(
    new DataView(bytes.buffer).getBigUint64(0, true),
  );
  assertEquals(headerLength % 8, 0, "data starts 8-byte aligned");
  const back = decodeSafetensors(bytes);
  assertEquals(back.metadata, { config: '{"a":1}' });
  assertEquals([...back.tensors.keys()].sort(), ["empty", "scalar", "w"]);
  for (const [name, t] of tensors) {
    assertEquals(back.tensors.get(name)!.shape, t.shape);
    assertEquals(back.tensors.get(name)!.data, t.data);
  }
  // An unaligned view of the same bytes decodes too.
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assertEquals(
    decodeSafetensors(shifted.subarray(1)).tensors.get("w")!.data,
    tensors.get("w")!.data,
  );
});

Deno.test("decodeSafetensors() accepts a hand-written valid file", () => {
  const back = decodeSafetensors(rawFile(ok, 28));
  assertEquals(back.tensors.get("a")!.shape, [2, 3]);
  assertEquals(back.metadata, {});
});

Deno.test("decodeSafetensors() rejects bad header lengths", () => {
  rejects(new Uint8Array(5), "shorter than the 8-byte header length");
  rejects(rawFile(ok, 28, 10_000n), "exceeds the file size");
  rejects(rawFile(ok, 28, 2n ** 63n), "exceeds the maximum");
  rejects(rawFile(ok, 28), "exceeds the maximum of 16 bytes", {
    maxHeaderBytes: 16,
  });
  rejects(rawFile("", 0), "too short for a JSON object");
});

Deno.test("decodeSafetensors() rejects a header that is not a JSON object", () => {
  rejects(rawFile('{"a": {"dtype": "F32",', 0), "header is not valid JSON");
  rejects(rawFile("[1, 2, 3]", 0), "header must be a JSON object");
  const bad = rawFile("{}", 0);
  bad[8] = 0xff;
  rejects(bad, "header is not valid UTF-8");
  rejects(
    rawFile({ __metadata__: { n: 1 } }, 0),
    "__metadata__ must map strings",
  );
  rejects(rawFile({ a: [1] }, 0), 'tensor "a" must be an object');
  rejects(
    rawFile({ a: { ...ok.a, extra: 1 } }, 24),
    "must have exactly the keys dtype, shape, data_offsets",
  );
});

Deno.test("decodeSafetensors() accepts F32 only", () => {
  for (const dtype of ["F16", "BF16", "F64", "I64", "U8", "BOOL"]) {
    rejects(
      rawFile({ a: { ...ok.a, dtype } }, 24),
      `tensor "a" has dtype "${dtype}"; only F32 is accepted`,
    );
  }
});

Deno.test("decodeSafetensors() rejects shapes that disagree with the offsets", () => {
  rejects(
    rawFile({ a: { ...ok.a, shape: [2, 4] } }, 24),
    'tensor "a" has shape [2,4] but data_offsets [0, 24] span 24 bytes',
  );
  rejects(
    rawFile({ a: { ...ok.a, shape: [2, -3] } }, 24),
    "shape must be an array of non-negative integers",
  );
  rejects(
    rawFile({ a: { ...ok.a, shape: [2, 1.5] } }, 24),
    "shape must be an array of non-negative integers",
  );
  // A huge shape is refused from the offsets, without allocating.
  rejects(
    rawFile({ a: { ...ok.a, shape: [2 ** 40, 2 ** 40] } }, 24),
    "span 24 bytes",
  );
});

Deno.test("decodeSafetensors() rejects overlapping, gapped and out-of-range offsets", () => {
  rejects(
    rawFile({
      a: ok.a,
      b: { dtype: "F32", shape: [2], data_offsets: [16, 24] },
    }, 24),
    'tensor "b" data_offsets [16, 24] overlap the previous tensor',
  );
  rejects(
    rawFile({
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [2], data_offsets: [12, 20] },
    }, 20),
    "bytes [8, 12) of the data section belong to no tensor",
  );
  rejects(
    rawFile({ a: { ...ok.a, data_offsets: [0, 4096] } }, 24),
    "run past the data section of 24 bytes",
  );
  rejects(
    rawFile({ a: { ...ok.a, data_offsets: [24, 0] } }, 24),
    "data_offsets must be [begin, end] with 0 ≤ begin ≤ end",
  );
  rejects(
    rawFile({ a: { ...ok.a, data_offsets: [0] } }, 24),
    "data_offsets must be [begin, end]",
  );
  rejects(
    rawFile(ok, 40),
    "the tensors cover 28 bytes but the data section has 40",
  );
});

Deno.test("decodeSafetensors() rejects truncated data", () => {
  const bytes = encodeSafetensors(
    new Map([["w", { shape: [4], data: new Float32Array(4) }]]),
  );
  rejects(bytes.subarray(0, bytes.length - 3), "(truncated file?)");
  rejects(bytes.subarray(0, 12), "exceeds the file size");
});

Deno.test("decodeSafetensors() checks expected names and shapes", () => {
  const file = rawFile(ok, 28);
  const expect = new Map([["a", [2, 3]], ["b", []]]);
  assertEquals(decodeSafetensors(file, { expect }).tensors.size, 2);
  rejects(file, 'missing tensor "c"', {
    expect: new Map([...expect, ["c", [1]]]),
  });
  rejects(file, 'unexpected tensor "b"', { expect: new Map([["a", [2, 3]]]) });
  rejects(file, 'tensor "a" has shape [2,3], expected [3,2]', {
    expect: new Map([["a", [3, 2]], ["b", []]]),
  });
  rejects(file, 'tensor "a" has shape [2,3], expected [6]', {
    expect: () => new Map([["a", [6]], ["b", []]]),
  });
});

Deno.test("encodeSafetensors() refuses inconsistent input", () => {
  assertThrows(
    () =>
      encodeSafetensors(
        new Map([["w", { shape: [3], data: new Float32Array(2) }]]),
      ),
    RangeError,
    "has shape [3] (3 values) but 2 values",
  );
});

// A header of `count` empty tensors (valid safetensors), as a hostile file
// of millions of them would be, and `tail` before the closing brace.
function emptyTensors(count: number, tail = ""): Uint8Array {
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    parts.push(`"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
  }
  return rawFile(`{${parts.join(",")}${tail}}`, 0);
}

Deno.test("decodeSafetensors() counts tensors against maxTensors before parsing the header", () => {
  const withMetadata = rawFile({ __metadata__: { k: "v" }, ...ok }, 28);
  assertEquals(
    decodeSafetensors(withMetadata, { maxTensors: 2 }).tensors.size,
    2,
  );
  rejects(withMetadata, "header holds more than 1 tensors, the limit", {
    maxTensors: 1,
  });
  // The tail is not JSON: the count, not the parser, rejects the file.
  rejects(emptyTensors(11, ', "x": oops'), "more than 10 tensors", {
    maxTensors: 10,
  });
});

Deno.test("decodeSafetensors() refuses a header of too many empty tensors after reading a fraction of it", () => {
  // 140,000 tensors, 8.7 MB of header; the default limit is 65,536.
  const bytes = emptyTensors(140_000);
  const error = assertThrows(() => decodeSafetensors(bytes), SafetensorsError);
  const at = Number(/stopped reading at byte (\d+)/.exec(error.message)?.[1]);
  assert(
    error.message.includes("more than 65536 tensors, the limit"),
    error.message,
  );
  assert(at < bytes.length / 2, `read ${at} of ${bytes.length} bytes`);
});

Deno.test("decodeSafetensors() refuses nesting and field counts no safetensors header has", () => {
  rejects(
    rawFile({ a: { ...ok.a, shape: [[2], [3]] } }, 24),
    "header nests an array at byte",
  );
  rejects(
    rawFile({ __metadata__: { k: { deep: "x" } } }, 0),
    "header nests an object at byte",
  );
  rejects(rawFile([{}], 0), "header must be a JSON object, got an array");
  const rank32 = {
    dtype: "F32",
    shape: Array(32).fill(1),
    data_offsets: [0, 4],
  };
  assertEquals(
    decodeSafetensors(rawFile({ a: rank32 }, 4)).tensors.get("a")!.shape
      .length,
    32,
  );
  rejects(
    rawFile({ a: { ...rank32, shape: Array(33).fill(1) } }, 4),
    "header has an array of more than 32 items at byte",
  );
  const many: Record<string, number> = {};
  for (let i = 0; i < 20; i++) many[`k${i}`] = 0;
  rejects(rawFile({ a: many }, 0), "more than 6 fields in its entries", {
    maxTensors: 1,
  });
});

Deno.test("decodeSafetensors() names the file given as source and keeps hostile names short", () => {
  rejects(
    rawFile("[1]", 0),
    "Cannot read safetensors runs/x/model.safetensors: header must be",
    { source: "runs/x/model.safetensors" },
  );
  const long = "n".repeat(1_000_000);
  const error = assertThrows(
    () => decodeSafetensors(rawFile({ [long]: { ...ok.a, dtype: "F16" } }, 24)),
    SafetensorsError,
  );
  assert(error.message.length < 200, `${error.message.length} characters`);
  assert(error.message.includes("only F32 is accepted"), error.message);
});

// Bytes per value by the safetensors format's dtype names, written out
// here from their bit widths (F64 is 64 bits, F8_E4M3 8, BOOL one byte)
// rather than read from SAFETENSORS_DTYPES, so that a wrong size there fails.
const SPEC_BYTES: Record<string, number> = {
  F64: 64 / 8,
  F32: 32 / 8,
  F16: 16 / 8,
  BF16: 16 / 8,
  F8_E4M3: 8 / 8,
  F8_E5M2: 8 / 8,
  I64: 64 / 8,
  I32: 32 / 8,
  I16: 16 / 8,
  I8: 8 / 8,
  U64: 64 / 8,
  U32: 32 / 8,
  U16: 16 / 8,
  U8: 8 / 8,
  BOOL: 1,
};

Deno.test("SAFETENSORS_DTYPES gives each dtype's size by its bit width", () => {
  assertEquals({ ...SAFETENSORS_DTYPES }, SPEC_BYTES);
});

Deno.test("parseSafetensorsHeader() sizes every dtype it is asked to accept and refuses the others", () => {
  const dtypes = Object.keys(SPEC_BYTES);
  for (const dtype of dtypes) {
    const size = SPEC_BYTES[dtype];
    const header = new TextEncoder().encode(JSON.stringify({
      w: { dtype, shape: [2, 3], data_offsets: [0, 6 * size] },
    }));
    const { entries } = parseSafetensorsHeader(header, 6 * size, { dtypes });
    assertEquals(entries, [{
      name: "w",
      dtype,
      shape: [2, 3],
      begin: 0,
      end: 6 * size,
    }]);
    if (size > 1) {
      const error = assertThrows(
        () => parseSafetensorsHeader(header, 6 * size + 1, { dtypes }),
        SafetensorsError,
      );
      assert(error.message.includes("the tensors cover"), error.message);
    }
    const short = new TextEncoder().encode(JSON.stringify({
      w: { dtype, shape: [2, 3], data_offsets: [0, 6 * size - 1] },
    }));
    const e2 = assertThrows(
      () => parseSafetensorsHeader(short, 6 * size - 1, { dtypes }),
      SafetensorsError,
    );
    assert(e2.message.includes(`${dtype} needs ${size} per value`), e2.message);
  }
  const f16 = new TextEncoder().encode(JSON.stringify({
    w: { dtype: "F16", shape: [1], data_offsets: [0, 2] },
  }));
  assertThrows(
    () => parseSafetensorsHeader(f16, 2, { dtypes: ["F32", "BF16"] }),
    SafetensorsError,
    'tensor "w" has dtype "F16"; accepted: F32, BF16',
  );
  assertThrows(
    () =>
      parseSafetensorsHeader(
        new TextEncoder().encode(
          JSON.stringify({
            w: { dtype: "Q4", shape: [1], data_offsets: [0, 1] },
          }),
        ),
        1,
        { dtypes: ["Q4"] },
      ),
    SafetensorsError,
    'has dtype "Q4"',
  );
});

Deno.test("safetensorsHeaderBytes() is the head of what encodeSafetensors() writes, and safetensorsHeaderLength() reads it", () => {
  const tensors = new Map([
    ["a", { shape: [3], data: new Float32Array([1, 2, 3]) }],
    ["b", { shape: [1, 2], data: new Float32Array([4, 5]) }],
  ]);
  const file = encodeSafetensors(tensors, { k: "v" });
  const head = safetensorsHeaderBytes(
    [...tensors].map(([name, t]) => ({ name, shape: t.shape })),
    { k: "v" },
  );
  assertEquals(file.subarray(0, head.length), head);
  assertEquals(8 + safetensorsHeaderLength(file, file.length), head.length);
  assertEquals(file.length, head.length + 20);
});

// readSafetensorsHeader (inspectModel: `--init-from`'s check of its source)
// opened the file before looking at it: a FIFO put where the source's
// model.safetensors was hung the run.
Deno.test("readSafetensorsHeader() refuses a FIFO or a device unread, naming it", async () => {
  const { within } = await import("./_within_test_util.ts");
  const dir = await Deno.makeTempDir();
  const path = `${dir}/model.safetensors`;
  try {
    for (
      const [what, plant] of [
        ["a FIFO", () => new Deno.Command("mkfifo", { args: [path] }).output()],
        ["/dev/zero", () => Deno.symlink("/dev/zero", path)],
      ] as const
    ) {
      await plant();
      const got = await within(5000, () => readSafetensorsHeader(path), path);
      if (got === "timeout") {
        throw new Error(`${what}: still reading after 5 s`);
      }
      if (!("error" in got)) throw new Error(`${what}: accepted`);
      const e = got.error as Error;
      assert(e instanceof SafetensorsError, `${what}: ${e}`);
      assertEquals(
        e.message,
        `Cannot read safetensors ${path}: it is not a regular file (a folder, a FIFO or a device)`,
      );
      await Deno.remove(path);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("encodeSafetensors() refuses negative or fractional dimensions and non-float32 data instead of writing a corrupt file", () => {
  // [-1, -2] and [0.5, 4] multiply to the data's 2 values; a Float64Array
  // wrote 8 bytes a value under an F32 header.
  const write = (shape: number[], data: Float32Array) => () =>
    encodeSafetensors(new Map([["w", { shape, data }]]));
  for (const shape of [[-1, -2], [0.5, 4]]) {
    assertThrows(
      write(shape, new Float32Array(2)),
      RangeError,
      `Cannot write safetensors: "w" has shape [${shape}]; dimensions must be integers ≥ 0`,
    );
  }
  assertThrows(
    write([2], new Float64Array(2) as unknown as Float32Array),
    TypeError,
    `Cannot write safetensors: "w" holds Float64Array; only a Float32Array (F32) is accepted`,
  );
  assertThrows(
    write([2], [1, 2] as unknown as Float32Array),
    TypeError,
    `"w" holds Array; only a Float32Array`,
  );
});

// The mutation pass of docs/testing.md (☾) found these edges untested.

// An 8-byte little-endian header length, as the format stores it.
function lengthBytes(n: number | bigint, size = 8): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out.subarray(0, size);
}

Deno.test("safetensorsHeaderLength() takes a header of exactly 100 MiB, the file's size and 2 bytes, and refuses one byte past each", () => {
  const MiB100 = 104_857_600; // 100 · 2^20, written out
  const big = 2 ** 40;
  assertEquals(safetensorsHeaderLength(lengthBytes(MiB100), big), MiB100);
  assertThrows(
    () => safetensorsHeaderLength(lengthBytes(MiB100 + 1), big),
    SafetensorsError,
    `header length ${MiB100 + 1} exceeds the maximum of ${MiB100} bytes`,
  );
  assertEquals(safetensorsHeaderLength(lengthBytes(16), 24), 16);
  assertThrows(
    () => safetensorsHeaderLength(lengthBytes(16), 23),
    SafetensorsError,
    "header length 16 exceeds the file size of 23 bytes",
  );
  assertEquals(safetensorsHeaderLength(lengthBytes(2), 10), 2);
  assertThrows(
    () => safetensorsHeaderLength(lengthBytes(1), 10),
    SafetensorsError,
    "header length 1 is too short for a JSON object",
  );
  // Fewer than 8 bytes of file, or of its start handed over.
  assertThrows(
    () => safetensorsHeaderLength(lengthBytes(0), 7),
    SafetensorsError,
    "file is 7 bytes, shorter than the 8-byte header length",
  );
  assertThrows(
    () => safetensorsHeaderLength(lengthBytes(2, 7), 100),
    SafetensorsError,
    "shorter than the 8-byte header length",
  );
});

Deno.test("encodeSafetensors() writes the bytes the format spells out: the length, the JSON from byte 8, spaces to the next multiple of 8, the data", () => {
  const json =
    '{"__metadata__":{"note":"hi"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  assertEquals(json.length, 83); // padded to 88: 5 spaces
  const expected = [
    ...[88, 0, 0, 0, 0, 0, 0, 0],
    ...new TextEncoder().encode(json),
    ...[0x20, 0x20, 0x20, 0x20, 0x20],
    ...[0x00, 0x00, 0x80, 0x3f], // 1.0f = 0x3f800000, little-endian
    ...[0x00, 0x00, 0x00, 0xc0], // -2.0f = 0xc0000000
  ];
  const got = encodeSafetensors(
    new Map([["w", { shape: [2], data: Float32Array.of(1, -2) }]]),
    { note: "hi" },
  );
  assertEquals([...got], expected);
  // A header already a multiple of 8 long gets no padding.
  const eight = '{"xyz":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}';
  assertEquals(eight.length, 56);
  const none = encodeSafetensors(
    new Map([["xyz", { shape: [0], data: new Float32Array(0) }]]),
  );
  assertEquals(none.length, 8 + 56);
  assertEquals(new TextDecoder().decode(none.subarray(8)), eight);
});

Deno.test("decodeSafetensors() reads tensors listed out of offset order, and an empty one at the offset of a full one, in offset order", () => {
  // The hub's files list names alphabetically, their data in another order.
  const file = rawFile({
    a: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
    b: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    c: { dtype: "F32", shape: [0], data_offsets: [0, 0] },
  }, 12);
  const start = file.length - 12;
  new DataView(file.buffer).setFloat32(start, 1.5, true);
  new DataView(file.buffer).setFloat32(start + 4, -3, true);
  new DataView(file.buffer).setFloat32(start + 8, 7, true);
  const back = decodeSafetensors(file);
  assertEquals([...back.tensors.keys()], ["c", "b", "a"]);
  assertEquals([...back.tensors.get("b")!.data], [1.5, -3]);
  assertEquals([...back.tensors.get("a")!.data], [7]);
  // The empty tensor listed after the full one at the same offset.
  const later = rawFile({
    b: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
    c: { dtype: "F32", shape: [0, 3], data_offsets: [0, 0] },
  }, 4);
  assertEquals([...decodeSafetensors(later).tensors.keys()], ["c", "b"]);
});

Deno.test("decodeSafetensors() takes exactly maxTensors tensors beside __metadata__, and exactly 3 × (maxTensors + 1) fields", () => {
  const t = (at: number) => ({
    dtype: "F32",
    shape: [1],
    data_offsets: [at, at + 4],
  });
  const two = { __metadata__: { k: "v" }, a: t(0), b: t(4) };
  assertEquals(
    decodeSafetensors(rawFile(two, 8), { maxTensors: 2 }).tensors.size,
    2,
  );
  rejects(rawFile(two, 8), "more than 1 tensors, the limit (stopped", {
    maxTensors: 1,
  });
  // The scan counts commas inside entries: one tensor's 2 and 5 metadata
  // keys' 4 reach the limit of 3 · (1 + 1) = 6; a sixth key passes it.
  const meta = (n: number) =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]));
  assertEquals(
    decodeSafetensors(rawFile({ __metadata__: meta(5), a: t(0) }, 4), {
      maxTensors: 1,
    }).metadata,
    meta(5),
  );
  rejects(
    rawFile({ __metadata__: meta(6), a: t(0) }, 4),
    "more than 6 fields in its entries",
    { maxTensors: 1 },
  );
});

Deno.test("decodeSafetensors()'s scan before parsing stays in step after an empty string", () => {
  const t = (at: number) => ({
    dtype: "F32",
    shape: [1],
    data_offsets: [at, at + 4],
  });
  const file = rawFile(
    { __metadata__: { k: "" }, a: t(0), b: t(4), c: t(8) },
    12,
  );
  // Refused by the scan, before JSON.parse, at the second tensor's comma.
  rejects(file, "more than 1 tensors, the limit (stopped reading at byte", {
    maxTensors: 1,
  });
});

Deno.test("decodeSafetensors() quotes JSON.parse's reason for a header that is not JSON, and cuts long names and shapes at 60 characters", () => {
  const text = '{"a": {"dtype": "F32",';
  let reason = "";
  try {
    JSON.parse(text);
  } catch (e) {
    reason = (e as Error).message;
  }
  assert(reason.length > 0 && !reason.includes("\n"));
  rejects(rawFile(text, 0), `header is not valid JSON (${reason})`);
  // short(): a JSON-quoted name of 60 characters is whole, of 61 cut to 57 + "...".
  const n58 = "n".repeat(58), n59 = "n".repeat(59);
  rejects(rawFile({ [n58]: 1 }, 0), `tensor "${n58}" must be an object, got 1`);
  rejects(
    rawFile({ [n59]: 1 }, 0),
    `tensor "${"n".repeat(56)}... must be an object`,
  );
  // dims(): a shape of 60 characters is whole, of 61 cut.
  const s60 = [
    1234567,
    1234567,
    1234567,
    1234567,
    1234567,
    1234567,
    1234567,
    12,
  ];
  const s61 = [
    1234567,
    1234567,
    1234567,
    1234567,
    1234567,
    1234567,
    1234567,
    123,
  ];
  assertEquals(`[${s60}]`.length, 60);
  const w = rawFile(
    { w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } },
    4,
  );
  rejects(w, `tensor "w" has shape [1], expected [${s60}]`, {
    expect: new Map([["w", s60]]),
  });
  rejects(w, `expected [${`${s61}`.slice(0, 56)}...`, {
    expect: new Map([["w", s61]]),
  });
});

Deno.test("decodeSafetensors()'s scan skips escaped quotes and backslashes in strings, and refuses an array in an array entry", () => {
  const t = (at: number) => ({
    dtype: "F32",
    shape: [1],
    data_offsets: [at, at + 4],
  });
  // JSON text "x\"y\\": an escaped quote, then an escaped backslash before
  // the closing quote.
  for (const value of ['x"y\\', "\\", '"']) {
    rejects(
      rawFile({ __metadata__: { k: value }, a: t(0), b: t(4), c: t(8) }, 12),
      "more than 1 tensors, the limit (stopped reading at byte",
      { maxTensors: 1 },
    );
  }
  rejects(rawFile('{"a": [[1, 2]]}', 0), "header nests an array at byte 7");
});

Deno.test("safetensorsBound() is 1 MiB plus, for each copy of each tensor, its float32 bytes, 256 and twice its name's length", () => {
  assertEquals(safetensorsBound([["w", [3, 4]]]), 1_048_576 + 48 + 256 + 2);
  assertEquals(
    safetensorsBound([["w", [3, 4]], ["bias", [5]]], 3),
    1_048_576 + 3 * (48 + 256 + 2) + 3 * (20 + 256 + 8),
  );
  assertEquals(safetensorsBound([]), 1_048_576);
  // Above what encodeSafetensors() writes for three copies of them.
  const copies = new Map<string, StoredTensor>();
  for (const c of ["a", "b", "c"]) {
    copies.set(`${c}/w`, { shape: [3, 4], data: new Float32Array(12) });
  }
  assert(
    encodeSafetensors(copies).length <= safetensorsBound([["w/w", [3, 4]]], 3),
  );
});

Deno.test("decodeSafetensors() refuses a shape whose first dimensions already fill the span and whose last is more than 1", () => {
  rejects(
    rawFile({ w: { dtype: "F32", shape: [2, 3], data_offsets: [0, 8] } }, 8),
    'tensor "w" has shape [2,3] but data_offsets [0, 8] span 8 bytes',
  );
  rejects(
    rawFile({ w: { dtype: "F32", shape: [1, 1, 2], data_offsets: [0, 4] } }, 4),
    "has shape [1,1,2] but data_offsets [0, 4] span 4 bytes",
  );
  assertEquals(
    decodeSafetensors(
      rawFile({ w: { dtype: "F32", shape: [2, 1], data_offsets: [0, 8] } }, 8),
    ).tensors.get("w")!.shape,
    [2, 1],
  );
});

Deno.test("decodeSafetensors() with expect refuses a tensor missing a trailing dimension of size 1", () => {
  const w = rawFile(
    { w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } },
    8,
  );
  rejects(w, 'tensor "w" has shape [2], expected [2,1]', {
    expect: new Map([["w", [2, 1]]]),
  });
  const w21 = rawFile({
    w: { dtype: "F32", shape: [2, 1], data_offsets: [0, 8] },
  }, 8);
  rejects(w21, 'tensor "w" has shape [2,1], expected [2]', {
    expect: new Map([["w", [2]]]),
  });
});
